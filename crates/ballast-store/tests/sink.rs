//! The event sink against real databases: events and config versions reach the store in order;
//! a PostgreSQL that goes away (a relay the test cuts) leaves events in the spool, raises
//! `store_unavailable`, and on return every spooled event is written and `store_recovered`
//! says how long the outage was and that nothing was dropped; a spool that overflows drops and
//! counts exactly the excess; a record the store can never take is set aside alone.

#[allow(dead_code)] // the conformance runners are not used here
mod harness;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ballast_core::{ConfigOutcome, Event, EventQuery, NewConfigVersion, Origin, Stamped};
use ballast_store::sink::{self, SinkInputs, SinkOptions, SinkState};
use ballast_store::{Store, StoreOptions};
use harness::{pg_url, unique};
use relay::Relay;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

fn event(seq: u64) -> Stamped {
    Stamped {
        seq,
        at_unix_ms: 1_000 + seq,
        event: Event::RetryBudgetExhausted {
            route: format!("r{seq}"),
        },
    }
}

fn config(text: &str, outcome: ConfigOutcome) -> NewConfigVersion {
    NewConfigVersion {
        text: text.to_string(),
        source: Origin::Signal,
        at_unix_ms: 5_000,
        host: "h".to_string(),
        instance: "i".to_string(),
        outcome,
    }
}

/// A running sink and its ends.
struct Running {
    events: mpsc::Sender<Stamped>,
    configs: mpsc::Sender<NewConfigVersion>,
    raised: mpsc::Receiver<Event>,
    state: Arc<SinkState>,
    task: JoinHandle<()>,
    /// Dropping it stops the sink, like the gateway's shutdown.
    stop: oneshot::Sender<()>,
}

fn start(options: StoreOptions, spool: usize) -> Running {
    let (events, events_rx) = mpsc::channel(10_000);
    let (configs, configs_rx) = mpsc::channel(16);
    let (raised_tx, raised) = mpsc::channel(16);
    let (stop, stop_rx) = oneshot::channel();
    let state = Arc::new(SinkState::default());
    let mut sink_options = SinkOptions::new("i", "h", spool);
    sink_options.retry_min = Duration::from_millis(50);
    sink_options.retry_max = Duration::from_millis(200);
    sink_options.write_timeout = Duration::from_secs(3);
    let task = sink::spawn(
        move || Store::open_with(options.clone()),
        sink_options,
        SinkInputs {
            events: events_rx,
            configs: configs_rx,
            stop: stop_rx,
        },
        state.clone(),
        raised_tx,
    );
    Running {
        events,
        configs,
        raised,
        state,
        task,
        stop,
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sequence numbers of the stored events, in store order.
async fn seqs(store: &Store) -> Vec<u64> {
    store
        .events(&EventQuery::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.stamped.seq)
        .collect()
}

async fn count(store: &Store) -> u64 {
    store.count_events(&EventQuery::default()).await.unwrap()
}

/// A PostgreSQL schema of its own, reached through `relay`; dropped by [`drop_schema`].
async fn pg_through(relay: &Relay) -> (StoreOptions, StoreOptions, String) {
    let schema = unique("ballast_sink");
    let direct_url = pg_url();
    let via = direct_url.replacen("127.0.0.1:5432", &relay.addr.to_string(), 1);
    assert_ne!(via, direct_url, "the test URL must name 127.0.0.1:5432");
    let mut through = StoreOptions::new(via);
    through.schema = Some(schema.clone());
    through.connect_timeout = Duration::from_secs(2);
    let mut direct = StoreOptions::new(direct_url);
    direct.schema = Some(schema.clone());
    (through, direct, schema)
}

async fn drop_schema(schema: &str) {
    let mut conn = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
}

fn pg_addr() -> SocketAddr {
    "127.0.0.1:5432".parse().unwrap()
}

#[tokio::test]
async fn events_and_config_versions_reach_sqlite_in_order() {
    let dir = std::env::temp_dir().join(unique("ballast-sink"));
    std::fs::create_dir_all(&dir).unwrap();
    let options = StoreOptions::new(format!("sqlite://{}", dir.join("s.db").display()));
    let run = start(options.clone(), 100);
    for seq in 1..=3 {
        run.events.try_send(event(seq)).unwrap();
    }
    run.configs
        .try_send(config("a = 1", ConfigOutcome::Applied))
        .unwrap();
    run.events.try_send(event(4)).unwrap();
    drop((run.events, run.configs, run.stop));
    run.task.await.unwrap();
    assert!(run.state.is_up());
    assert_eq!(run.state.written(), 5);
    assert_eq!(run.state.spooled(), 0);

    let store = Store::open_with(options).await.unwrap();
    let stored = store.events(&EventQuery::default()).await.unwrap();
    let seqs: Vec<u64> = stored.iter().map(|e| e.stamped.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert!(stored.iter().all(|e| e.instance == "i"));
    let versions = store.config_versions(10).await.unwrap();
    assert_eq!(versions.len(), 1);
    // The applied version became the instance's running config.
    let instances = store.instances().await.unwrap();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].config_sha256, versions[0].sha256);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_postgres_outage_spools_everything_and_recovery_writes_it() {
    let relay = Relay::start(pg_addr());
    let (through, direct, schema) = pg_through(&relay).await;
    let mut run = start(through, 10_000);
    for seq in 1..=100 {
        run.events.try_send(event(seq)).unwrap();
    }
    wait_for("the first 100 written", || run.state.written() == 100).await;
    assert!(run.state.is_up());

    relay.cut();
    for seq in 101..=400 {
        run.events.try_send(event(seq)).unwrap();
    }
    wait_for("the sink to notice the outage", || !run.state.is_up()).await;
    let raised = run.raised.recv().await.unwrap();
    assert!(
        matches!(raised, Event::StoreUnavailable { .. }),
        "{raised:?}"
    );
    assert!(run.state.spooled() > 0);
    // A config version offered during the outage waits too.
    run.configs
        .try_send(config("during = true", ConfigOutcome::Applied))
        .unwrap();

    relay.restore();
    wait_for("all 401 records written", || run.state.written() == 401).await;
    let raised = run.raised.recv().await.unwrap();
    let Event::StoreRecovered {
        outage_ms,
        spooled,
        dropped,
    } = raised
    else {
        panic!("expected store_recovered, got {raised:?}");
    };
    assert_eq!(dropped, 0);
    assert!(spooled >= 1, "{spooled}");
    assert!(outage_ms > 0);
    assert!(run.state.is_up());
    assert_eq!(run.state.dropped(), 0);

    let store = Store::open_with(direct).await.unwrap();
    assert_eq!(count(&store).await, 400);
    let seqs = seqs(&store).await;
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "in order, once each");
    assert_eq!(store.config_versions(10).await.unwrap().len(), 1);
    drop((run.events, run.configs, run.stop));
    run.task.await.unwrap();
    store.close().await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn beyond_the_spool_events_are_dropped_and_counted_exactly() {
    let relay = Relay::start(pg_addr());
    let (through, direct, schema) = pg_through(&relay).await;
    // The schema exists before the outage, so that the sink's later open only migrates.
    Store::open_with(direct.clone())
        .await
        .unwrap()
        .close()
        .await;
    relay.cut();
    let mut run = start(through, 10);
    wait_for("the failed open", || run.state.last_error().is_some()).await;
    for seq in 1..=25 {
        run.events.try_send(event(seq)).unwrap();
    }
    wait_for("15 dropped", || run.state.dropped() == 15).await;
    assert_eq!(run.state.spooled(), 10);
    assert!(!run.state.is_up());

    relay.restore();
    wait_for("the spool written", || run.state.written() == 10).await;
    let mut recovered = None;
    while let Ok(e) = run.raised.try_recv() {
        if let Event::StoreRecovered { dropped, .. } = e {
            recovered = Some(dropped);
        }
    }
    assert_eq!(recovered, Some(15));
    let store = Store::open_with(direct).await.unwrap();
    let seqs = seqs(&store).await;
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "the oldest are kept");
    drop((run.events, run.configs, run.stop));
    run.task.await.unwrap();
    store.close().await;
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_record_the_store_cannot_take_is_set_aside_alone() {
    let dir = std::env::temp_dir().join(unique("ballast-sink"));
    std::fs::create_dir_all(&dir).unwrap();
    let options = StoreOptions::new(format!("sqlite://{}", dir.join("s.db").display()));
    // Open first, so that all three events go out in one batch.
    Store::open_with(options.clone())
        .await
        .unwrap()
        .close()
        .await;
    let run = start(options.clone(), 100);
    wait_for("the store to open", || run.state.is_up()).await;
    let mut too_big = event(2);
    too_big.seq = u64::MAX; // above the store's signed 64-bit integers
    for e in [event(1), too_big, event(3)] {
        run.events.try_send(e).unwrap();
    }
    drop((run.events, run.configs, run.stop));
    run.task.await.unwrap();
    assert_eq!(run.state.written(), 2);
    assert_eq!(run.state.dropped(), 1);
    let store = Store::open_with(options).await.unwrap();
    let seqs = seqs(&store).await;
    assert_eq!(seqs, [1, 3]);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
