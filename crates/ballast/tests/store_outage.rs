//! A store that cannot be written, under load, two ways an operator meets it:
//!
//! - PostgreSQL goes away: the gateway reaches the real PostgreSQL through a TCP relay that the
//!   test cuts, then restores;
//! - the SQLite file's disk fills: the gateway's file size limit (`RLIMIT_FSIZE`, set on the
//!   running process with `prlimit`) is lowered to just above what its files hold, then lifted.
//!
//! Meanwhile clients send requests and an operator drains and enables a server (each an event).
//! Clients must see no error; `ballast_store_up` must go 1 → 0 → 1; once the store is back,
//! every event generated during the outage must be in the store, counted one by one against the
//! gateway's own event log, with `store_unavailable` and `store_recovered` (nothing dropped)
//! among them.

mod common;
#[path = "../../ballast-store/tests/relay/mod.rs"]
mod relay;

use std::collections::BTreeSet;
use std::time::Duration;

use ballast_core::EventQuery;
use ballast_store::test_support::{drop_schema, url_with_search_path};
use ballast_store::{Store, StoreOptions};
use common::*;
use relay::Relay;

const PG: &str = "127.0.0.1:5432";
/// Drain + enable cycles during the outage: two events each.
const CYCLES: usize = 15;

fn store_up(gw: &Gateway) -> Option<f64> {
    metric_value(&gw.metrics(), "ballast_store_up")
}

/// Checks that the store holds exactly the events in the gateway's log (by sequence number,
/// once each), with `CYCLES` drains and enables and one outage with its recovery among them;
/// returns how many there are.
fn assert_every_logged_event_is_stored(
    gw: &Gateway,
    rt: &tokio::runtime::Runtime,
    store: &Store,
) -> usize {
    // Every event the gateway logged is in the store, once: compared by sequence number.
    let (code, body) = gw.admin_get("/api/v1/events");
    assert_eq!(code, 200);
    let logged: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let logged: BTreeSet<u64> = logged.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let stored = rt.block_on(async {
        let mut stored = Vec::new();
        // The last events (store_recovered itself) may still be on their way.
        for _ in 0..100 {
            stored = store.events(&EventQuery::default()).await.unwrap();
            if stored.len() >= logged.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stored
    });
    let stored_seqs: Vec<u64> = stored.iter().map(|e| e.stamped.seq).collect();
    let unique: BTreeSet<u64> = stored_seqs.iter().copied().collect();
    assert_eq!(unique.len(), stored_seqs.len(), "no event stored twice");
    if unique != logged {
        let m = gw.metrics();
        let store_lines: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with("ballast_store"))
            .collect();
        eprintln!("METRICS {store_lines:?}");
        for l in gw
            .stderr()
            .lines()
            .filter(|l| l.contains("store") || l.contains("WARN") || l.contains("ERROR"))
        {
            eprintln!("STDERR {l}");
        }
    }
    assert_eq!(unique, logged, "the store holds exactly the logged events");
    let count = |kind: &str| {
        stored
            .iter()
            .filter(|e| serde_json::to_value(&e.stamped.event).unwrap()["kind"] == kind)
            .count()
    };
    assert_eq!(count("server_drained"), CYCLES);
    assert_eq!(count("server_enabled"), CYCLES);
    assert_eq!(count("store_unavailable"), 1);
    assert_eq!(count("store_recovered"), 1);
    stored.len()
}

/// Runs load through `port` while the store fails: `fault` starts the outage, events are
/// generated over about 1.5 s, `ballast_store_up` must drop to 0, then `repair` ends it and
/// the spool must drain. Returns what the clients saw, after checking the outage's events
/// and counters.
fn outage_under_load(
    gw: &Gateway,
    rt: &tokio::runtime::Runtime,
    port: u16,
    server: std::net::SocketAddr,
    fault: impl FnOnce(),
    repair: impl FnOnce(),
) -> Tally {
    wait_until("the store to open", Duration::from_secs(20), || {
        store_up(gw) == Some(1.0)
    });
    let drain = format!("/api/v1/servers/app/{server}/drain");
    let enable = format!("/api/v1/servers/app/{server}/enable");
    let tally = rt.block_on(async {
        let run = LoadRun::start(local(port), 8, "/");
        wait_for(
            "100 requests before the fault",
            Duration::from_secs(30),
            || run.completed() >= 100,
        )
        .await;

        fault();
        // Events spread over the outage (about 1.5 s), while the clients go on.
        for _ in 0..CYCLES {
            assert_eq!(gw.admin_post(&drain).0, 200);
            assert_eq!(gw.admin_post(&enable).0, 200);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_for("ballast_store_up 0", Duration::from_secs(20), || {
            store_up(gw) == Some(0.0)
        })
        .await;
        let during = run.completed();
        wait_for("traffic during the outage", Duration::from_secs(30), || {
            run.completed() >= during + 200
        })
        .await;
        let spooled = metric_value(&gw.metrics(), "ballast_store_spool_records").unwrap();
        assert!(spooled >= 1.0, "spool holds {spooled}");

        repair();
        wait_for("ballast_store_up 1", Duration::from_secs(30), || {
            store_up(gw) == Some(1.0)
        })
        .await;
        wait_for("the spool written", Duration::from_secs(30), || {
            metric_value(&gw.metrics(), "ballast_store_spool_records") == Some(0.0)
        })
        .await;
        let after = run.completed();
        wait_for("traffic after the outage", Duration::from_secs(30), || {
            run.completed() >= after + 100
        })
        .await;
        run.finish().await
    });
    assert_eq!(tally.errors, 0, "clients saw errors: {:?}", tally.samples);
    assert!(tally.ok > 400, "{}", tally.ok);

    let recovered = gw.events_of("store_recovered");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["dropped"], 0, "{recovered:?}");
    assert!(recovered[0]["outage_ms"].as_u64().unwrap() > 0);
    assert_eq!(gw.events_of("store_unavailable").len(), 1);
    let m = gw.metrics();
    assert_eq!(metric_value(&m, "ballast_store_dropped_total"), Some(0.0));
    assert_eq!(
        metric_value(&m, "ballast_events_dropped_total{reason=\"sink_full\"}"),
        Some(0.0)
    );
    eprintln!(
        "{} requests ok, 0 errors; {:?}; {:?}",
        tally.ok,
        gw.events_of("store_unavailable")[0]["error"],
        recovered[0]
    );
    tally
}

#[test]
fn a_postgres_outage_under_load_loses_no_event_and_no_request() {
    let schema = format!(
        "ballast_outage_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    );
    let relay = Relay::start(PG.parse().unwrap());
    let rt = rt();
    // The schema and its tables exist before the gateway starts (the test reads them directly
    // afterwards, bypassing the relay).
    let mut direct = StoreOptions::new(format!("postgres://postgres@{PG}/test"));
    direct.schema = Some(schema.clone());
    let store: Store = rt
        .block_on(Store::open_with(direct))
        .expect("the test PostgreSQL at 127.0.0.1:5432");

    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let url = url_with_search_path(&format!("postgres://postgres@{}/test", relay.addr), &schema);
    let config = format!(
        "[store]\nurl = \"{url}\"\n{}",
        one_upstream_config(port, Extra::default(), &weight1(&[a.addr, b.addr])),
    );
    let gw = Gateway::start("store-outage", &config);
    outage_under_load(&gw, &rt, port, a.addr, || relay.cut(), || relay.restore());
    let stored = assert_every_logged_event_is_stored(&gw, &rt, &store);
    eprintln!("postgres outage: {stored} events stored");

    drop(gw);
    rt.block_on(async {
        store.close().await;
        drop_schema(&format!("postgres://postgres@{PG}/test"), &schema)
            .await
            .expect("dropping the test schema");
    });
}

/// Sets the soft and hard file size limit of process `pid` (`None`: unlimited).
fn set_file_size_limit(pid: i32, bytes: Option<u64>) {
    let limit = libc::rlimit {
        rlim_cur: bytes.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child with a valid rlimit and no old-value pointer.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_full_disk_under_sqlite_loses_no_event_and_no_request() {
    let rt = rt();
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let config = format!(
        "[store]\nurl = \"sqlite://store.db\"\n{}",
        one_upstream_config(port, Extra::default(), &weight1(&[a.addr, b.addr])),
    );
    let gw = Gateway::start("store-disk-full", &config);
    let db = gw.dir.join("store.db");
    outage_under_load(
        &gw,
        &rt,
        port,
        a.addr,
        // No file of the gateway may grow past 4 KiB: the WAL cannot take a frame, nor the
        // database a page (not even after a checkpoint), nor the logs a line, as on a full
        // disk, until the limit is lifted.
        || set_file_size_limit(gw.pid(), Some(4096)),
        || set_file_size_limit(gw.pid(), None),
    );
    let store = rt
        .block_on(Store::open_sqlite_file(&db))
        .expect("opening the gateway's SQLite store");
    let stored = assert_every_logged_event_is_stored(&gw, &rt, &store);
    eprintln!("sqlite disk full: {stored} events stored");
    let dropped = metric_value(&gw.metrics(), "ballast_access_log_dropped_total").unwrap();
    assert!(
        dropped > 0.0,
        "the access log hit the limit too, and counted what it lost"
    );
    drop(gw);
    rt.block_on(store.close());
}
