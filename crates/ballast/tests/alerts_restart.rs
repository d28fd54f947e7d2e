//! A restart while an alert fires, through a real gateway with a SQLite store: a `min` rule
//! on a process that does not exist fires; an operator acknowledges it; the gateway is
//! restarted (SIGTERM, then started again on the same config and store). After the restart
//! the alert is firing again with the same `since_unix_ms` and the acknowledgement, and the
//! new process's event log holds no transition of it to `firing`: it was not announced again.

mod alerts_support;
mod common;

use alerts_support::*;
use ballast_store::Store;
use common::*;

const RULE: &str = "ghost-missing";
const MONITOR: &str = "ghost";

/// How many runs monitor `name` has made in this process (0 before monitoring answers).
fn runs_of(gw: &Gateway, name: &str) -> u64 {
    let (code, body) = gw.admin_get("/api/v1/monitors");
    if code != 200 {
        return 0;
    }
    let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    all.iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["runs"].as_u64())
        .unwrap_or(0)
}

/// The alert `id` as the store at `db` keeps it, read directly (not through the gateway).
fn stored(
    rt: &tokio::runtime::Runtime,
    db: &std::path::Path,
    id: &str,
) -> Option<serde_json::Value> {
    rt.block_on(async {
        let store = Store::open_sqlite_file(db).await.ok()?;
        let all = store.alerts(false).await.ok();
        store.close().await;
        all?.into_iter()
            .find(|a| a.id == id)
            .map(|a| serde_json::to_value(a).unwrap())
    })
}

#[test]
fn a_firing_alert_and_its_ack_survive_a_restart_without_a_second_firing() {
    let rt = rt();
    let port = free_port();
    let ghost = format!("^no-such-process-{}-{}$", std::process::id(), free_port());
    let config = format!(
        r#"{preamble}
[store]
url = "sqlite://store.db"

[alerting]
default_rules = false

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "127.0.0.1:9" }}]

[[monitor]]
name = "{MONITOR}"
kind = "process"
cmdline = '{ghost}'
interval = "1s"

[[rule]]
name = "{RULE}"
monitor = "{MONITOR}"
value = "count"
min = {{ below = 1 }}
"#,
        preamble = preamble(port),
    );
    let mut gw = start("alerts-restart", &config);
    let db = gw.dir.join("store.db");

    let before = wait_alert(&gw, RULE, &[], "firing/critical", ALERT_WAIT);
    let id = before["id"].as_str().unwrap().to_string();
    let since = before["since_unix_ms"].as_u64().unwrap();
    assert_eq!(
        changes_of(&gw, &id),
        ["inactive→firing/critical"],
        "announced once before the restart"
    );

    let (code, body) = post_json(
        &gw,
        &format!("/api/v1/alerts/{id}/ack"),
        r#"{"by":"ana","comment":"on it"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let acked = wait_alert(&gw, RULE, &[], "firing/critical", ALERT_WAIT);
    assert_eq!(acked["acknowledged"], true, "{acked}");
    assert_eq!(gw.events_of("alert_acknowledged").len(), 1);

    // Saves are written in the background: the restart comes once the store holds the ack
    // (read from the file directly, as another process would).
    wait_until("the store to hold the ack", ALERT_WAIT, || {
        stored(&rt, &db, &id).is_some_and(|a| a["ack"]["by"] == "ana" && a["state"] == "firing")
    });

    gw.restart();
    wait_until("monitoring to answer after the restart", ALERT_WAIT, || {
        gw.admin_get("/api/v1/monitors").0 == 200
    });
    let after = wait_alert(&gw, RULE, &[], "firing/critical", ALERT_WAIT);
    assert_eq!(after["id"], id.as_str(), "{after}");
    assert_eq!(
        after["since_unix_ms"].as_u64(),
        Some(since),
        "firing since before the restart: {after}"
    );
    assert_eq!(after["acknowledged"], true, "{after}");
    assert_eq!(after["ack"]["by"], "ana", "{after}");
    assert_eq!(after["ack"]["comment"], "on it", "{after}");

    // Let the restarted engine evaluate the rule a few times: the process is still missing,
    // the alert stays firing, and nothing is announced.
    wait_until(
        "three runs of the monitor after the restart",
        ALERT_WAIT,
        || runs_of(&gw, MONITOR) >= 3,
    );
    let again = wait_alert(&gw, RULE, &[], "firing/critical", ALERT_WAIT);
    assert_eq!(again["since_unix_ms"].as_u64(), Some(since), "{again}");
    let events: Vec<serde_json::Value> = {
        let (code, body) = gw.admin_get("/api/v1/events");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    };
    assert!(
        events.iter().any(|e| e["kind"] != "alert_changed"),
        "the restarted gateway logs events: {events:?}"
    );
    let firing: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "alert_changed" && e["to"]["state"] == "firing")
        .collect();
    assert!(
        firing.is_empty(),
        "no alert announced firing again after the restart: {firing:#?}"
    );
    assert_eq!(
        changes_of(&gw, &id),
        Vec::<String>::new(),
        "no transition of the restored alert"
    );
}
