//! Notifications through the operations an operator meets, with the ballast binary, alerts
//! injected through `POST /api/v1/alertmanager`, and receivers that are real HTTP servers:
//!
//! - the store (a real PostgreSQL reached through a TCP relay the test cuts) goes away while
//!   alerts fire: every alert is still delivered, `ballast_notifications_unsaved` says what
//!   waits for the store, and once it is back the store's outbox holds every notification as
//!   delivered, once each;
//! - a reload that adds a receiver and a route while an alert fires announces nothing again to
//!   the first receiver, and routes new alerts to both;
//! - a reload naming a receiver whose secret file is missing, or a route naming an unknown
//!   receiver, is refused naming it, and notifications keep flowing on the running config;
//! - `ballast notify test RECEIVER` prints one line per channel, exits non-zero when one
//!   failed, and `ballast notify log` shows the test messages, filtered by receiver and state;
//! - a reload after a secret file changed (same config text) sends to the new address;
//! - a resolution waiting for its group interval is still sent, once, across a reload that
//!   rebuilds the groupers.

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;
#[path = "../../ballast-store/tests/relay/mod.rs"]
mod relay;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ballast_core::NotificationState;
use ballast_store::test_support::{drop_schema, url_with_search_path};
use ballast_store::{Store, StoreOptions};
use common::*;
use notify_support::*;
use notify_tb::{am_alert, am_post, now_ms};
use relay::Relay;
use serde_json::Value;

const PG: &str = "127.0.0.1:5432";
const WAIT: Duration = Duration::from_secs(20);

/// A gateway config: a listener on `port` with a catch-all route to `backend`, `store` (a
/// `[store]` table), no built-in rules, and `extra` (receivers and routes) appended.
fn config(port: u16, backend: SocketAddr, store: &str, extra: &str) -> String {
    format!(
        r#"{preamble}
{store}

[alerting]
default_rules = false

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]

{extra}
"#,
        preamble = preamble(port),
    )
}

const SQLITE: &str = "[store]\nurl = \"sqlite://store.db\"";

/// `[[receiver]] NAME` with one webhook channel at `hook`.
fn webhook_receiver(name: &str, hook: &Receiver) -> String {
    format!(
        "\n[[receiver]]\nname = \"{name}\"\nwebhook = {{ url = \"{}\" }}\n",
        hook.url(&format!("/{name}"))
    )
}

/// A `[[notify]]` route to `receiver`: one message per alertname, at once.
fn route(matchers: &str, receiver: &str, continues: bool) -> String {
    format!(
        r#"
[[notify]]
{matchers}
receivers = ["{receiver}"]
continue = {continues}
group_by = ["alertname"]
group_wait = "0s"
group_interval = "1s"
"#
    )
}

/// Fires alert `name` (critical) with `service`, started now.
fn fire(gw: &Gateway, name: &str, service: &str) {
    am_post(
        gw,
        vec![am_alert(
            "firing",
            &[
                ("alertname", name),
                ("severity", "critical"),
                ("service", service),
            ],
            now_ms().saturating_sub(1000),
        )],
    );
}

/// Resolves alert `name` of `service` (the same labels as [`fire`]).
fn resolve(gw: &Gateway, name: &str, service: &str) {
    am_post(
        gw,
        vec![am_alert(
            "resolved",
            &[
                ("alertname", name),
                ("severity", "critical"),
                ("service", service),
            ],
            now_ms().saturating_sub(1000),
        )],
    );
}

/// The alertnames of the messages with `status` that `hook` got, in arrival order (one entry
/// per alert of each message).
fn names_of(hook: &Receiver, status: &str) -> Vec<String> {
    hook.received()
        .iter()
        .map(Received::json)
        .filter(|m| m["status"] == status)
        .flat_map(|m| {
            m["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn unsaved(gw: &Gateway) -> Option<f64> {
    metric_value(&gw.metrics(), "ballast_notifications_unsaved")
}

/// The alertname a log line's group key names (`{alertname="X"}`).
fn alertname_of(group_key: &str) -> String {
    group_key
        .split("alertname=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. The store goes away while alerts fire.

#[test]
fn the_store_going_away_while_alerts_fire_delays_no_notification_and_loses_none() {
    let t0 = Instant::now();
    let schema = format!(
        "ballast_notify_ops_{}_{}",
        std::process::id(),
        fastrand::u32(..)
    );
    let relay = Relay::start(PG.parse().unwrap());
    let rt = rt();
    // The schema exists before the gateway starts; the test reads it directly, not through
    // the relay.
    let mut direct = StoreOptions::new(format!("postgres://postgres@{PG}/test"));
    direct.schema = Some(schema.clone());
    let store: Store = rt
        .block_on(Store::open_with(direct))
        .expect("the test PostgreSQL at 127.0.0.1:5432");

    let hook = Receiver::start();
    let backend = Backend::start("app");
    let port = free_port();
    let url = url_with_search_path(&format!("postgres://postgres@{}/test", relay.addr), &schema);
    let gw = alerts_support::start(
        "notify-store-outage",
        &config(
            port,
            backend.addr,
            &format!("[store]\nurl = \"{url}\""),
            &format!(
                "{}{}",
                webhook_receiver("ops", &hook),
                route("", "ops", false)
            ),
        ),
    );
    let store_up = |gw: &Gateway| metric_value(&gw.metrics(), "ballast_store_up");
    wait_until("the store to open", WAIT, || store_up(&gw) == Some(1.0));

    fire(&gw, "before-outage", "shop");
    hook.wait_for(1, WAIT);
    wait_until("the first notification written", WAIT, || {
        unsaved(&gw) == Some(0.0)
            && rt
                .block_on(store.notification_log(0, 100))
                .unwrap()
                .iter()
                .any(|l| l.state == NotificationState::Delivered)
    });

    relay.cut();
    let during = ["during-a", "during-b", "during-c", "during-d"];
    for name in during {
        fire(&gw, name, "shop");
    }
    // The data plane of notifications does not wait for the store.
    let cut_at = Instant::now();
    wait_until(
        "every alert delivered while the store is away",
        WAIT,
        || {
            let names = names_of(&hook, "firing");
            during.iter().all(|n| names.iter().any(|m| m == n))
        },
    );
    println!(
        "store cut → 4 alerts delivered in {} ms",
        cut_at.elapsed().as_millis()
    );
    wait_until("ballast_store_up 0", WAIT, || store_up(&gw) == Some(0.0));
    let waiting = unsaved(&gw).unwrap();
    assert!(waiting >= 4.0, "unsaved while the store is away: {waiting}");
    // The log answers from memory meanwhile, every notification delivered.
    let asked = Instant::now();
    let log = notification_log(&gw, "?limit=100");
    println!(
        "log during the outage answered in {} ms: {} lines",
        asked.elapsed().as_millis(),
        log.len()
    );
    assert_eq!(log.len(), 5, "{log:#?}");
    assert!(log.iter().all(|l| l["state"] == "delivered"), "{log:#?}");
    // So does the data plane.
    let (code, _) = raw_http(
        local(port),
        "GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 200);
    // Still away a little longer: nothing more is sent, nothing becomes saved.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.received().len(), 5);
    assert!(unsaved(&gw).unwrap() >= 4.0);

    relay.restore();
    let restored_at = Instant::now();
    wait_until(
        "ballast_notifications_unsaved 0",
        Duration::from_secs(30),
        || unsaved(&gw) == Some(0.0),
    );
    println!(
        "store back → outbox written in {} ms",
        restored_at.elapsed().as_millis()
    );
    wait_until("ballast_store_up 1", WAIT, || store_up(&gw) == Some(1.0));

    // Read the outbox straight from PostgreSQL.
    let rows = rt.block_on(store.notification_log(0, 1000)).unwrap();
    let names: Vec<String> = rows.iter().map(|l| alertname_of(&l.group_key)).collect();
    let mut all = strings(&during);
    all.push("before-outage".into());
    assert_eq!(sorted(names), sorted(all.clone()), "{rows:#?}");
    for l in &rows {
        assert_eq!(l.receiver, "ops/webhook", "{l:?}");
        assert_eq!(l.state, NotificationState::Delivered, "{l:?}");
        assert_eq!(l.attempts, 1, "{l:?}");
        assert!(l.delivered_unix_ms.is_some(), "{l:?}");
    }
    let keys: BTreeSet<&str> = rows.iter().map(|l| l.dedup_key.as_str()).collect();
    assert_eq!(keys.len(), rows.len(), "one row per notification");

    // Nothing delivered twice, then or later.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sorted(names_of(&hook, "firing")), sorted(all));
    assert_eq!(hook.received().len(), 5);
    assert_eq!(unsaved(&gw), Some(0.0));
    let m = gw.metrics();
    assert_eq!(
        metric_value(
            &m,
            "ballast_notifications_total{target=\"ops/webhook\",result=\"delivered\"}"
        ),
        Some(5.0),
        "{m}"
    );
    let api = notification_log(&gw, "?limit=100");
    assert_eq!(api.len(), 5, "{api:#?}");
    let stored_ids: BTreeSet<u64> = rows.iter().map(|l| l.id).collect();
    let api_ids: BTreeSet<u64> = api.iter().map(|l| l["id"].as_u64().unwrap()).collect();
    assert_eq!(api_ids, stored_ids, "the API shows the store's rows");

    drop(gw);
    rt.block_on(async {
        store.close().await;
        drop_schema(&format!("postgres://postgres@{PG}/test"), &schema)
            .await
            .expect("dropping the test schema");
    });
    println!("test took {} ms", t0.elapsed().as_millis());
}

// ---------------------------------------------------------------------------------------------
// 2. Reloads.

/// Reloads through the CLI; returns (exit code, stdout + stderr).
fn cli_reload(gw: &Gateway) -> (Option<i32>, String) {
    let path = gw.config_path.display().to_string();
    let (code, out, err) = cli(&["reload", "--config", &path]);
    (code, format!("{out}{err}"))
}

#[test]
fn a_reload_adding_a_receiver_and_route_while_an_alert_fires_announces_nothing_again() {
    let t0 = Instant::now();
    let ops = Receiver::start();
    let team = Receiver::start();
    let port = free_port();
    let backend = alerts_support::nowhere();
    let v1 = config(
        port,
        backend,
        SQLITE,
        &format!(
            "{}{}",
            webhook_receiver("ops", &ops),
            route("", "ops", false)
        ),
    );
    let gw = alerts_support::start("notify-reload-add", &v1);

    fire(&gw, "steady", "shop");
    ops.wait_for(1, WAIT);
    assert_eq!(names_of(&ops, "firing"), ["steady"]);

    // The new, narrower route goes first (a route without match must be last), and continues
    // so that ops still hears about everything.
    let v2 = config(
        port,
        backend,
        SQLITE,
        &format!(
            "{}{}{}{}",
            webhook_receiver("ops", &ops),
            webhook_receiver("team", &team),
            route("match = { service = \"shop\" }", "team", true),
            route("", "ops", false),
        ),
    );
    gw.write_config(&v2);
    let (code, out) = cli_reload(&gw);
    assert_eq!(code, Some(0), "{out}");
    wait_until("the reload applied", WAIT, || {
        gw.stderr().contains("notifications run the new plan")
    });

    // The team had not heard of `steady`: it is told, once. Ops had: it is not told again.
    team.wait_for(1, WAIT);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(names_of(&team, "firing"), ["steady"]);
    assert_eq!(
        names_of(&ops, "firing"),
        ["steady"],
        "the reload announced steady to ops again"
    );

    // New alerts go where they are routed: shop to both, db to ops only.
    fire(&gw, "fresh-shop", "shop");
    fire(&gw, "fresh-db", "db");
    wait_until("the new alerts delivered", WAIT, || {
        ops.received().len() >= 3 && team.received().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sorted(names_of(&ops, "firing")),
        strings(&["fresh-db", "fresh-shop", "steady"])
    );
    assert_eq!(
        sorted(names_of(&team, "firing")),
        strings(&["fresh-shop", "steady"])
    );

    // Its resolution reaches each once.
    resolve(&gw, "steady", "shop");
    wait_until("the resolutions", WAIT, || {
        !names_of(&ops, "resolved").is_empty() && !names_of(&team, "resolved").is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names_of(&ops, "resolved"), ["steady"]);
    assert_eq!(names_of(&team, "resolved"), ["steady"]);
    assert_eq!(ops.received().len(), 4);
    assert_eq!(team.received().len(), 3);

    let log = notification_log(&gw, "?limit=100");
    let of = |target: &str| log.iter().filter(|l| l["receiver"] == target).count();
    assert_eq!((of("ops/webhook"), of("team/webhook")), (4, 3), "{log:#?}");
    assert!(log.iter().all(|l| l["state"] == "delivered"), "{log:#?}");
    println!("test took {} ms", t0.elapsed().as_millis());
}

#[test]
fn a_reload_with_a_broken_receiver_is_refused_naming_it_and_notifications_keep_flowing() {
    let t0 = Instant::now();
    let ops = Receiver::start();
    let team = Receiver::start();
    let port = free_port();
    let backend = alerts_support::nowhere();
    let v1 = config(
        port,
        backend,
        SQLITE,
        &format!(
            "{}{}",
            webhook_receiver("ops", &ops),
            route("", "ops", false)
        ),
    );
    let gw = alerts_support::start("notify-reload-broken", &v1);
    fire(&gw, "first", "shop");
    ops.wait_for(1, WAIT);

    // A receiver whose secret file does not exist.
    let missing = gw.dir.join("no-such-dir").join("team.url");
    let broken_secret = config(
        port,
        backend,
        SQLITE,
        &format!(
            "\n[[receiver]]\nname = \"team\"\nwebhook = {{ url_file = \"{}\" }}\n{}{}{}",
            missing.display(),
            webhook_receiver("ops", &ops),
            route("match = { service = \"shop\" }", "team", true),
            route("", "ops", false),
        ),
    );
    gw.write_config(&broken_secret);
    let (code, out) = cli_reload(&gw);
    println!("ballast reload (missing url_file) → {code:?}\n{out}");
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("receiver \"team\""), "{out}");
    assert!(out.contains(&missing.display().to_string()), "{out}");
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("receiver \\\"team\\\""), "{body}");

    // A route naming a receiver that is not defined.
    let unknown = config(
        port,
        backend,
        SQLITE,
        &format!(
            "{}{}{}",
            webhook_receiver("ops", &ops),
            route("match = { service = \"shop\" }", "nobody", true),
            route("", "ops", false),
        ),
    );
    gw.write_config(&unknown);
    let (code, body) = gw.admin_post("/api/v1/reload");
    println!("POST /api/v1/reload (unknown receiver) → {code}: {body}");
    assert_eq!(code, 422, "{body}");
    let msg: Value = serde_json::from_str(&body).unwrap();
    let msg = msg["error"].as_str().unwrap_or(&body).to_string();
    assert!(msg.contains("notify route 1"), "{msg}");
    assert!(msg.contains("\"nobody\" is not defined"), "{msg}");
    // SIGHUP with the same file: refused too, and the process keeps running.
    gw.signal(libc::SIGHUP);
    wait_until("the refused SIGHUP reload counted", WAIT, || {
        metric_value(&gw.metrics(), "ballast_reloads_total{result=\"error\"}") == Some(3.0)
    });
    assert_eq!(
        metric_value(&gw.metrics(), "ballast_reloads_total{result=\"ok\"}"),
        Some(0.0)
    );
    assert!(!gw.stderr().contains("notifications run the new plan"));

    // The running config stays: a new alert reaches ops, and only ops.
    fire(&gw, "second", "shop");
    wait_until("the alert after the refused reloads", WAIT, || {
        names_of(&ops, "firing").len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names_of(&ops, "firing"), ["first", "second"]);
    assert!(team.received().is_empty());
    let (code, out, err) = cli(&["notify", "test", "team", "--admin", &gw.admin.to_string()]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("404 Not Found: no receiver is named \"team\""),
        "{err}"
    );

    // A valid file again: applied, and team hears of what fires for it, ops of nothing again.
    std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
    std::fs::write(&missing, format!("{}\n", team.url("/team-from-file"))).unwrap();
    gw.write_config(&broken_secret);
    let (code, out) = cli_reload(&gw);
    assert_eq!(code, Some(0), "{out}");
    wait_until("team told what fires", WAIT, || team.received().len() >= 2);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sorted(names_of(&team, "firing")),
        strings(&["first", "second"])
    );
    assert!(team.received().iter().all(|r| r.path == "/team-from-file"));
    assert_eq!(names_of(&ops, "firing"), ["first", "second"]);
    println!("test took {} ms", t0.elapsed().as_millis());
}

// ---------------------------------------------------------------------------------------------
// 3. `ballast notify test` and `ballast notify log`.

/// The table's lines (without its header) that name `target`.
fn table_lines<'a>(table: &'a str, target: &str) -> Vec<&'a str> {
    table
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some(target))
        .collect()
}

#[test]
fn notify_test_prints_each_channel_and_the_log_shows_it() {
    let t0 = Instant::now();
    let hook = Receiver::start();
    let closed = free_port();
    let gw = alerts_support::start(
        "notify-test-cli",
        &config(
            free_port(),
            alerts_support::nowhere(),
            SQLITE,
            &format!(
                r#"
[[receiver]]
name = "mixed"
webhook = {{ url = "{hook_url}" }}
slack = {{ url = "http://127.0.0.1:{closed}/services/T1/B1/x" }}
{good}
{route}"#,
                hook_url = hook.url("/mixed"),
                good = webhook_receiver("good", &hook),
                route = route("", "good", false),
            ),
        ),
    );
    let admin = gw.admin.to_string();

    // All channels answer: one line, ok, exit 0.
    let (code, out, err) = cli(&[
        "notify", "test", "good", "--by", "tester", "--admin", &admin,
    ]);
    println!("notify test good → {code:?}\n{out}{err}");
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(&cols[..2], ["good/webhook", "ok"], "{out}");
    let got = hook.wait_for(1, WAIT);
    assert_eq!(got[0].path, "/good");
    let m = got[0].json();
    assert_eq!(m["alerts"][0]["labels"]["alertname"], "ballast-test", "{m}");
    assert_eq!(m["alerts"][0]["labels"]["requested_by"], "tester", "{m}");

    // One channel fails: a line per channel, FAILED for Slack, non-zero exit.
    let (code, out, err) = cli(&["notify", "test", "mixed", "--admin", &admin]);
    println!("notify test mixed → {code:?}\n{out}{err}");
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let status = |target: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(target))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("no line for {target}: {out}"))
            .to_string()
    };
    assert_eq!(status("mixed/webhook"), "ok");
    assert_eq!(status("mixed/slack"), "FAILED");
    assert!(err.contains("1 of 2 channels of mixed failed"), "{err}");
    let got = hook.wait_for(2, WAIT);
    assert_eq!(got[1].path, "/mixed");

    // An unknown receiver: non-zero, saying so.
    let (code, out, err) = cli(&["notify", "test", "nobody", "--admin", &admin]);
    println!("notify test nobody → {code:?}\n{out}{err}");
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("404 Not Found: no receiver is named \"nobody\""),
        "{err}"
    );

    // The log: the three test messages, newest first.
    let (code, table, err) = cli(&["notify", "log", "--admin", &admin]);
    println!("notify log →\n{table}{err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(table.starts_with("QUEUED (UTC)"), "{table}");
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{table}");
    for (target, state) in [
        ("good/webhook", "delivered"),
        ("mixed/webhook", "delivered"),
        ("mixed/slack", "failed"),
    ] {
        let l = table_lines(&table, target);
        assert_eq!(l.len(), 1, "{target}: {table}");
        let cols: Vec<&str> = l[0].split_whitespace().collect();
        assert_eq!(cols[2], state, "{target}: {}", l[0]);
        assert_eq!(cols[3], "1", "one attempt: {}", l[0]);
        assert!(l[0].contains("{alertname=\"ballast-test\"}"), "{}", l[0]);
    }
    assert_eq!(
        rows[2].split_whitespace().nth(1),
        Some("good/webhook"),
        "newest first: {table}"
    );

    // --receiver: a receiver (both channels) or one channel.
    let (_, t, _) = cli(&["notify", "log", "--receiver", "mixed", "--admin", &admin]);
    assert_eq!(t.lines().count(), 3, "{t}");
    assert_eq!(table_lines(&t, "mixed/webhook").len(), 1, "{t}");
    assert_eq!(table_lines(&t, "mixed/slack").len(), 1, "{t}");
    let (_, t, _) = cli(&[
        "notify",
        "log",
        "--receiver",
        "mixed/slack",
        "--admin",
        &admin,
    ]);
    assert_eq!(t.lines().count(), 2, "{t}");
    assert_eq!(table_lines(&t, "mixed/slack").len(), 1, "{t}");
    // --state.
    let (_, t, _) = cli(&["notify", "log", "--state", "failed", "--admin", &admin]);
    assert_eq!(t.lines().count(), 2, "{t}");
    let failed = table_lines(&t, "mixed/slack");
    assert_eq!(failed.len(), 1, "{t}");
    assert!(
        failed[0].contains("slack receiver: connect failed: Connection refused"),
        "{t}"
    );
    let (_, t, _) = cli(&["notify", "log", "--state", "delivered", "--admin", &admin]);
    assert_eq!(t.lines().count(), 3, "{t}");
    assert!(table_lines(&t, "mixed/slack").is_empty(), "{t}");
    let (_, t, _) = cli(&[
        "notify",
        "log",
        "--receiver",
        "good",
        "--state",
        "failed",
        "--admin",
        &admin,
    ]);
    assert_eq!(t, "no notifications\n");
    // --json: the same three, parseable.
    let (_, j, _) = cli(&["notify", "log", "--json", "--admin", &admin]);
    let j: Vec<Value> = serde_json::from_str(j.trim()).unwrap();
    assert_eq!(j.len(), 3, "{j:#?}");
    println!("test took {} ms", t0.elapsed().as_millis());
}

// ---------------------------------------------------------------------------------------------
// More reloads: a rotated secret file, and a resolution waiting for its group interval.

#[test]
fn a_reload_after_a_secret_file_changed_sends_to_the_new_address() {
    let t0 = Instant::now();
    let old = Receiver::start();
    let new = Receiver::start();
    let port = free_port();
    let backend = alerts_support::nowhere();
    let dir = scratch("notify-rotate-secret");
    let url_file = dir.join("ops.url");
    std::fs::write(&url_file, format!("{}\n", old.url("/old"))).unwrap();
    let text = config(
        port,
        backend,
        SQLITE,
        &format!(
            "\n[[receiver]]\nname = \"ops\"\nwebhook = {{ url_file = \"{}\" }}\n{}",
            url_file.display(),
            route("", "ops", false)
        ),
    );
    let gw = alerts_support::start("notify-rotate-secret", &text);
    fire(&gw, "one", "shop");
    old.wait_for(1, WAIT);

    // The operator rotates the URL in the file and reloads; the config text is unchanged.
    std::fs::write(&url_file, format!("{}\n", new.url("/new"))).unwrap();
    let (code, out) = cli_reload(&gw);
    assert_eq!(code, Some(0), "{out}");
    fire(&gw, "two", "shop");
    wait_until("two delivered somewhere", WAIT, || {
        old.received().len() + new.received().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names_of(&old, "firing"), ["one"], "sent to the old address");
    assert_eq!(names_of(&new, "firing"), ["two"]);
    println!("test took {} ms", t0.elapsed().as_millis());
}

#[test]
fn a_resolution_waiting_for_its_group_interval_survives_a_reload() {
    let t0 = Instant::now();
    let ops = Receiver::start();
    let team = Receiver::start();
    let port = free_port();
    let backend = alerts_support::nowhere();
    let slow = |matchers: &str, receiver: &str, continues: bool| {
        route(matchers, receiver, continues)
            .replace("group_interval = \"1s\"", "group_interval = \"8s\"")
    };
    let v1 = config(
        port,
        backend,
        SQLITE,
        &format!(
            "{}{}",
            webhook_receiver("ops", &ops),
            slow("", "ops", false)
        ),
    );
    let gw = alerts_support::start("notify-reload-resolution", &v1);
    fire(&gw, "flappy", "shop");
    ops.wait_for(1, WAIT);
    let notified = Instant::now();
    resolve(&gw, "flappy", "shop");

    // Before the group interval is over, a reload changes the plan (a route for another
    // service, which flappy does not match).
    let v2 = config(
        port,
        backend,
        SQLITE,
        &format!(
            "{}{}{}{}",
            webhook_receiver("ops", &ops),
            webhook_receiver("team", &team),
            slow("match = { service = \"db\" }", "team", true),
            slow("", "ops", false),
        ),
    );
    gw.write_config(&v2);
    let (code, out) = cli_reload(&gw);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        notified.elapsed() < Duration::from_secs(6),
        "too slow to prove anything"
    );

    wait_until("the resolution", Duration::from_secs(25), || {
        !names_of(&ops, "resolved").is_empty()
    });
    println!(
        "resolution {} ms after the firing message",
        notified.elapsed().as_millis()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names_of(&ops, "resolved"), ["flappy"]);
    assert_eq!(names_of(&ops, "firing"), ["flappy"]);
    assert!(team.received().is_empty());
    println!("test took {} ms", t0.elapsed().as_millis());
}
