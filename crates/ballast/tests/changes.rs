//! Change markers, the change timeline and config drift with real processes.
//!
//! On the default SQLite store: markers posted with `ballast change add` and with
//! `POST /api/v1/changes` come back from `GET /api/v1/changes?since=1h` (and
//! `ballast change list`) merged, newest first, with the config versions the gateway applied
//! and refused; bad bodies and queries get a 400 that says why and store nothing; all of it
//! survives a restart. Runtime commands (drain, enable) join the timeline through the event
//! sink, and a reload shows once (as its config version), not twice.
//!
//! On PostgreSQL: two gateway processes with different configs share one database (a schema of
//! its own per run, dropped afterwards). Each sees both instances' config versions and markers,
//! `/api/v1/config/drift` on either names both as differing, and once the second is given the
//! first one's config (edit + reload), drift is empty. Both listen on port 0, so that the same
//! config text can run twice on one machine; the admin address is read from the log.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ballast_store::test_support::{drop_schema, url_with_search_path};
use ballast_store::{Store, StoreOptions};
use common::*;
use serde_json::Value;

fn get(admin: SocketAddr, path: &str) -> Value {
    let (code, body) = raw_http(
        admin,
        &format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The JSON of `GET path` if it answers 200 (the store opens in the background, so the
/// history API answers 503 for a moment after start).
fn try_get(admin: SocketAddr, path: &str) -> Option<Value> {
    let (code, body) = raw_http(
        admin,
        &format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"),
    );
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Waits until the store has opened and answers.
fn wait_store(admin: SocketAddr) {
    wait_until("the store to open", Duration::from_secs(15), || {
        try_get(admin, "/api/v1/changes").is_some()
    });
}

fn post(admin: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let (code, text) = raw_http(
        admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"));
    (code, v)
}

fn changes(admin: SocketAddr) -> Vec<Value> {
    get(admin, "/api/v1/changes?since=1h")
        .as_array()
        .unwrap()
        .clone()
}

/// Each entry as `type` and what tells it apart, newest first.
fn shape(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "marker" => format!("marker {}", e["summary"].as_str().unwrap()),
            "config" => format!(
                "config {} {}",
                e["source"].as_str().unwrap(),
                e["outcome"].as_str().unwrap()
            ),
            "command" => format!("command {}", e["kind"].as_str().unwrap()),
            other => panic!("unknown entry type {other}: {e}"),
        })
        .collect()
}

fn newest_first(list: &[Value]) -> bool {
    list.windows(2)
        .all(|w| w[0]["at_unix_ms"].as_u64() >= w[1]["at_unix_ms"].as_u64())
}

fn wait_shape(admin: SocketAddr, what: &str, f: impl Fn(&[String]) -> bool) {
    wait_until(what, Duration::from_secs(15), || {
        try_get(admin, "/api/v1/changes?since=1h").is_some_and(|v| f(&shape(v.as_array().unwrap())))
    });
}

/// A pause so that consecutive changes get distinct millisecond stamps.
fn tick() {
    std::thread::sleep(Duration::from_millis(20));
}

#[test]
fn markers_and_config_versions_merge_newest_first_and_survive_a_restart() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let v1 = one_upstream_config(port, Extra::default(), &weight1(&[a.addr, b.addr]));
    let mut gw = Gateway::start("changes", &v1);
    let admin = gw.admin.to_string();
    wait_shape(gw.admin, "the start config", |s| {
        s == ["config start applied"]
    });
    tick();

    let (code, out, err) = cli(&[
        "change",
        "add",
        "--kind",
        "deploy",
        "--summary",
        "shop 1.2.3",
        "--service",
        "shop",
        "--version",
        "1.2.3",
        "--author",
        "ci",
        "--url",
        "https://ci.example/run/7",
        "--admin",
        &admin,
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("recorded change 1: deploy shop 1.2.3: shop 1.2.3"),
        "{out}"
    );
    tick();

    // v2: edit + SIGHUP.
    let v2 = one_upstream_config(port, Extra::default(), &weight1(&[a.addr]));
    gw.write_config(&v2);
    gw.signal(libc::SIGHUP);
    wait_shape(gw.admin, "the reload", |s| s.len() == 3);
    tick();

    let (code, v) = post(
        gw.admin,
        "/api/v1/changes",
        r#"{"kind":"flag","summary":"new checkout on","service":"shop","version":"on","author":"ana"}"#,
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["kind"], "flag");
    tick();

    // A refused reload is a change too (nothing changed, but someone tried).
    std::fs::write(&gw.config_path, "[[listener]]\nname = 3\n").unwrap();
    let (code, _, _) = cli(&["reload", "--admin", &admin]);
    assert_ne!(code, Some(0));
    gw.write_config(&v2);
    wait_shape(gw.admin, "the refused reload", |s| s.len() == 5);
    tick();

    // Without --author, the CLI says who ran it ($USER).
    let (code, out, err) = cli(&[
        "change",
        "add",
        "--kind",
        "data",
        "--summary",
        "db migration 42",
        "--admin",
        &admin,
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");

    let list = changes(gw.admin);
    let expected = [
        "marker db migration 42",
        "config cli refused",
        "marker new checkout on",
        "config signal applied",
        "marker shop 1.2.3",
        "config start applied",
    ];
    assert_eq!(shape(&list), expected, "{list:#?}");
    assert!(newest_first(&list), "{list:#?}");
    let deploy = &list[4];
    assert_eq!(deploy["kind"], "deploy");
    assert_eq!(deploy["service"], "shop");
    assert_eq!(deploy["version"], "1.2.3");
    assert_eq!(deploy["author"], "ci");
    assert_eq!(deploy["url"], "https://ci.example/run/7");
    assert_eq!(list[2]["author"], "ana");
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
    assert_eq!(list[0]["author"].as_str(), user.as_deref());
    assert!(
        list[1]["error"]
            .as_str()
            .unwrap()
            .contains("listener[0].name"),
        "{}",
        list[1]
    );
    assert!(
        list[1].get("text").is_none(),
        "no config text in the timeline"
    );
    assert_eq!(list[5]["instance"], list[3]["instance"]);
    assert!(list[5]["instance"].as_str().unwrap().ends_with(&admin));

    // `ballast change list`: one line per entry, in the same order.
    let (code, out, err) = cli(&["change", "list", "--since", "1h", "--admin", &admin]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    assert!(lines[0].starts_with("TIME (UTC)"), "{out}");
    assert!(
        lines[1].contains("marker") && lines[1].contains("data: db migration 42"),
        "{out}"
    );
    assert!(lines[2].contains("config version 3 refused (cli)"), "{out}");
    assert!(
        lines[5].contains(" ci ") && lines[5].contains("deploy shop 1.2.3: shop 1.2.3"),
        "{out}"
    );
    assert!(
        lines[6].contains("config version 1 applied (start)"),
        "{out}"
    );
    // A narrow window leaves the older entries out.
    std::thread::sleep(Duration::from_millis(1100));
    let v = get(gw.admin, "/api/v1/changes?since=1s");
    assert!(v.as_array().unwrap().is_empty(), "{v}");

    // Bad input: a 400 that says why, and nothing stored.
    for (body, reason) in [
        ("", "must be a JSON object"),
        ("kind=deploy&summary=x", "must be a JSON object"),
        (r#"{"kind":"deploy"}"#, "missing field `summary`"),
        (r#"{"kind":"release","summary":"x"}"#, "kind must be one of"),
        (
            r#"{"kind":"note","summary":"   "}"#,
            "summary must not be empty",
        ),
        (
            r#"{"kind":"note","summary":"x","sumary":"y"}"#,
            "unknown field `sumary`",
        ),
        (
            r#"{"kind":"note","summary":"x","url":"javascript:alert(1)"}"#,
            "url must start",
        ),
        (
            r#"{"kind":"note","summary":"x","at_unix_ms":"soon"}"#,
            "must be a JSON object",
        ),
    ] {
        let (code, v) = post(gw.admin, "/api/v1/changes", body);
        assert_eq!(code, 400, "{body}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(reason), "{body}: {e}");
    }
    let huge = format!(r#"{{"kind":"note","summary":"{}"}}"#, "é".repeat(5000));
    let (code, v) = post(gw.admin, "/api/v1/changes", &huge);
    assert_eq!(code, 400, "{v}");
    for query in ["since=2", "since=lately", "limit=0"] {
        let (code, body) = gw.admin_get(&format!("/api/v1/changes?{query}"));
        assert_eq!(code, 400, "{query}: {body}");
        assert!(body.contains("error"), "{body}");
    }
    let (code, out, err) = cli(&[
        "change",
        "add",
        "--kind",
        "note",
        "--summary",
        "x",
        "--url",
        "ftp://x",
        "--admin",
        &admin,
    ]);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        err.contains("400") && err.contains("url must start"),
        "{err}"
    );
    let (code, _, err) = cli(&[
        "change",
        "add",
        "--kind",
        "release",
        "--summary",
        "x",
        "--admin",
        &admin,
    ]);
    assert_eq!(code, Some(2), "clap refuses an unknown kind: {err}");
    assert!(err.contains("deploy"), "{err}");
    assert_eq!(
        shape(&changes(gw.admin)),
        expected,
        "bad input stored nothing"
    );

    // A restart keeps everything and adds the config it started with.
    gw.restart();
    wait_shape(gw.admin, "the history after a restart", |s| s.len() == 7);
    let after = changes(gw.admin);
    assert_eq!(shape(&after[..1]), ["config start applied"]);
    assert_eq!(after[1..], list[..], "the earlier entries are unchanged");
}

/// Runtime commands reach the timeline through the event sink (events are stored
/// asynchronously, so this waits for them), and a reload counts once: as its config version.
#[test]
fn runtime_commands_join_the_timeline() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let config = one_upstream_config(port, Extra::default(), &weight1(&[a.addr, b.addr]));
    let mut gw = Gateway::start("changes-commands", &config);
    let admin = gw.admin.to_string();
    wait_shape(gw.admin, "the start config", |s| s.len() == 1);
    tick();
    let (code, v) = post(gw.admin, "/api/v1/reload", "");
    assert_eq!(code, 200, "{v}");
    tick();
    let server = a.addr.to_string();
    let (code, out, err) = cli(&["drain", "app", &server, "--admin", &admin]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    tick();
    let (code, v) = post(
        gw.admin,
        &format!("/api/v1/servers/app/{server}/enable"),
        "",
    );
    assert_eq!(code, 200, "{v}");
    let expected = [
        "command server_enabled",
        "command server_drained",
        "config api applied",
        "config start applied",
    ];
    wait_shape(gw.admin, "the drain and enable commands", |s| {
        s.iter()
            .filter(|e| e.starts_with("command server_"))
            .count()
            == 2
    });
    let list = changes(gw.admin);
    assert_eq!(shape(&list), expected, "{list:#?}");
    assert_eq!(list[1]["by"], "cli");
    assert_eq!(list[0]["by"], "api");
    assert_eq!(list[1]["server"], server.as_str());

    gw.restart();
    wait_shape(gw.admin, "the timeline after a restart", |s| s.len() == 5);
    assert_eq!(shape(&changes(gw.admin))[1..], expected);
}

/// A PostgreSQL schema for one test run: created and migrated at the start, dropped at the end
/// (also when the test fails).
struct PgSchema {
    base: String,
    schema: String,
    /// The `[store] url` that puts a gateway in this schema.
    url: String,
}

impl PgSchema {
    fn create() -> Self {
        let base = std::env::var("BALLAST_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let schema = format!(
            "ballast_changes_{}_{}",
            std::process::id(),
            fastrand::u32(..)
        );
        let mut options = StoreOptions::new(base.clone());
        options.schema = Some(schema.clone());
        rt().block_on(async {
            let store = Store::open_with(options)
                .await
                .unwrap_or_else(|e| panic!("the test PostgreSQL at {base}: {e}"));
            store.close().await;
        });
        let url = url_with_search_path(&base, &schema);
        PgSchema { base, schema, url }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Err(e) = rt().block_on(drop_schema(&self.base, &self.schema)) {
            eprintln!("dropping test schema {}: {e}", self.schema);
        }
    }
}

/// A gateway whose admin API and listener are on port 0 (so that two of them can run the same
/// config text); its admin address is read from its "ballast is serving" log line. Killed on
/// drop.
struct Node {
    dir: PathBuf,
    config: PathBuf,
    admin: SocketAddr,
    child: Child,
}

impl Node {
    fn start(name: &str, text: &str) -> Self {
        let dir = scratch(name);
        let config = dir.join("ballast.toml");
        std::fs::write(&config, text).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("BALLAST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn ballast");
        let log = dir.join("stderr.log");
        let start = Instant::now();
        let admin = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = serving_admin(&text) {
                break addr;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("ballast exited with {status}: {text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "ballast did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Node {
            dir,
            config,
            admin,
            child,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin address in the JSON log line `ballast is serving`.
fn serving_admin(log: &str) -> Option<SocketAddr> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["message"] == "ballast is serving")
        .and_then(|v| v["fields"]["admin"].as_str()?.parse().ok())
}

/// A config that runs unchanged in several processes on one machine.
fn shared_config(store_url: &str, backend: SocketAddr, weight: u32) -> String {
    format!(
        r#"[store]
url = "{store_url}"
[admin]
listen = "127.0.0.1:0"
[log]
access = "off"
[[listener]]
name = "web"
listen = "127.0.0.1:0"
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}", weight = {weight} }}]
"#
    )
}

fn sorted(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn two_instances_share_postgres_and_see_drift() {
    let pg = PgSchema::create();
    let a = Backend::start("a");
    let config_one = shared_config(&pg.url, a.addr, 1);
    let one = Node::start("pg-one", &config_one);
    let two = Node::start("pg-two", &shared_config(&pg.url, a.addr, 2));
    wait_store(one.admin);
    wait_store(two.admin);
    let name_one = get(one.admin, "/api/v1/config/drift")["instance"]
        .as_str()
        .unwrap()
        .to_string();
    let name_two = get(two.admin, "/api/v1/config/drift")["instance"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(name_one, name_two);
    assert!(name_one.ends_with(&one.admin.to_string()), "{name_one}");
    let mut both = vec![name_one.clone(), name_two.clone()];
    both.sort();

    // Both histories are visible from either instance.
    for node in [&one, &two] {
        wait_until(
            "both instances' start configs",
            Duration::from_secs(15),
            || {
                let versions = get(node.admin, "/api/v1/config/versions");
                let mut instances: Vec<String> = versions
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["instance"].as_str().unwrap().to_string())
                    .collect();
                instances.sort();
                instances == both
            },
        );
    }

    // Different configs, one each: no majority, both are named on either side.
    for node in [&one, &two] {
        wait_until("drift naming both", Duration::from_secs(15), || {
            let d = get(node.admin, "/api/v1/config/drift");
            sorted(&d["differing"]) == both && d["instances"].as_array().unwrap().len() == 2
        });
        let d = get(node.admin, "/api/v1/config/drift");
        assert_eq!(d["in_agreement"], false, "{d}");
        let shas: Vec<&str> = d["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["config_sha256"].as_str().unwrap())
            .collect();
        assert_ne!(shas[0], shas[1], "{d}");
    }

    // A marker posted to one instance is on the other's timeline, with both configs.
    let (code, out, err) = cli(&[
        "change",
        "add",
        "--kind",
        "infra",
        "--summary",
        "second gateway added",
        "--admin",
        &one.admin.to_string(),
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let list = changes(two.admin);
    assert_eq!(
        shape(&list[..1]),
        ["marker second gateway added"],
        "{list:#?}"
    );
    let mut config_instances: Vec<String> = list
        .iter()
        .filter(|e| e["type"] == "config")
        .map(|e| e["instance"].as_str().unwrap().to_string())
        .collect();
    config_instances.sort();
    assert_eq!(config_instances, both);

    // The same config on both (edit + reload): no drift, on either side.
    std::fs::write(&two.config, &config_one).unwrap();
    let (code, v) = post(two.admin, "/api/v1/reload", "");
    assert_eq!(code, 200, "{v}\n{}", two.stderr());
    for node in [&one, &two] {
        wait_until("drift to clear", Duration::from_secs(15), || {
            let d = get(node.admin, "/api/v1/config/drift");
            d["differing"].as_array().unwrap().is_empty()
                && d["instances"].as_array().unwrap().len() == 2
        });
        let d = get(node.admin, "/api/v1/config/drift");
        assert_eq!(d["in_agreement"], true, "{d}");
        let shas: Vec<&str> = d["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["config_sha256"].as_str().unwrap())
            .collect();
        assert_eq!(shas[0], shas[1], "{d}");
    }
    assert!(
        one.stderr().contains("operations store open"),
        "{}",
        one.stderr()
    );
}
