//! An incident from an alert to its post-mortem, through a real gateway with a store, a
//! webhook receiver and the CLI:
//!
//! - a deploy marker and a config reload happen first; then a critical alert about the
//!   `shop` service arrives and opens an incident, announced to the incident's receivers;
//! - "what changed" names both; the severity is the matrix's grade of the measured scope;
//! - people triage it, write notes and the root cause from the CLI; the alert resolves and
//!   the incident recovers by itself; the post-mortem export holds the whole timeline;
//! - a gateway restart keeps the incident and the remediation runs, opens nothing twice, and
//!   runs nothing again.

mod brain_support;
mod common;
mod notify_support;

use std::time::{Duration, Instant};

use brain_support::*;
use common::*;
use notify_support::Receiver;
use serde_json::{json, Value};

/// Now, as Alertmanager writes it.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ballast_core::UtcTime::from_unix_secs(secs).to_string()
}

/// ShopDown as Alertmanager sends it: starting `started` (RFC 3339), and ending now when
/// `status` is `resolved`.
fn send(gw: &Gateway, status: &str, started: &str) {
    let mut alert = json!({
        "status": status,
        "labels": { "alertname": "ShopDown", "severity": "critical", "service": "shop" },
        "annotations": { "summary": "the shop answers 5xx" },
        "startsAt": started,
    });
    if status == "resolved" {
        alert["endsAt"] = json!(now_rfc3339());
    }
    let body = json!({ "version": "4", "status": status, "alerts": [alert] }).to_string();
    let (code, text) = post(gw, "/api/v1/alertmanager", &body);
    assert!((200..300).contains(&code), "{code}: {text}");
}

fn post(gw: &Gateway, path: &str, body: &str) -> (u16, String) {
    raw_http(
        gw.admin,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn config(
    port: u16,
    db: &str,
    hook: &str,
    backend: std::net::SocketAddr,
    dir: &str,
    extra_route: bool,
) -> String {
    let extra = if extra_route {
        "[[route]]\nname = \"blog\"\nupstream = \"app\"\nmatch = { path_prefix = \"/blog\" }\n"
    } else {
        ""
    };
    format!(
        r#"{preamble}
[store]
url = "sqlite://{db}"

[alerting]
default_rules = false

{extra}
[[route]]
name = "shop"
upstream = "app"
function = "core"

[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]

[[remedy]]
name = "mark-shop"
when = {{ alert = "ShopDown" }}
target = "{{{{service}}}}"
do = [{{ exec = {{ argv = ["/bin/mkdir", "-p", "{dir}/{{{{service}}}}"] }} }}]

{ops}"#,
        preamble = preamble(port),
        ops = ops_toml(hook),
    )
}

/// A gateway on [`config`] with its receiver, backend and remedy directory.
struct Setup {
    hook: Receiver,
    backend: Backend,
    files: std::path::PathBuf,
    port: u16,
    /// The config again, with or without the extra route (for a reload).
    config: Box<dyn Fn(bool) -> String>,
    gw: Gateway,
}

impl Setup {
    fn start(name: &str) -> Setup {
        let hook = Receiver::start();
        let backend = Backend::start(&format!("{name}-b"));
        let db = scratch(&format!("{name}-store")).join("ops.db");
        let files = scratch(&format!("{name}-files"));
        let port = free_port();
        let (url, addr, dir) = (hook.url("/hook"), backend.addr, files.display().to_string());
        let db = db.display().to_string();
        let config: Box<dyn Fn(bool) -> String> =
            Box::new(move |extra| self::config(port, &db, &url, addr, &dir, extra));
        let gw = start_brain(name, &config(false));
        Setup {
            hook,
            backend,
            files,
            port,
            config,
            gw,
        }
    }
}

fn cli_ok(args: &[&str]) -> String {
    let (code, out, err) = cli(args);
    assert_eq!(code, Some(0), "ballast {}: {out}{err}", args.join(" "));
    out
}

#[test]
fn an_incident_from_an_alert_to_its_postmortem_and_through_a_restart() {
    let Setup {
        hook,
        backend,
        files,
        port,
        config: text_of,
        mut gw,
    } = Setup::start("incident-flow");
    let admin = gw.admin.to_string();

    // The changes before: a deploy marker, and a config change applied by a reload.
    let (code, body) = post(
        &gw,
        "/api/v1/changes",
        r#"{"kind":"deploy","summary":"shop 2.4.1","service":"shop","version":"2.4.1","author":"ci"}"#,
    );
    assert!((200..300).contains(&code), "{code}: {body}");
    gw.write_config(&text_of(true));
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");

    // Users start failing, then the alert arrives.
    backend.force(503);
    let _traffic = Traffic::start(local(port), "127.0.0.1", "/", Duration::from_millis(20));
    wait_until("failing requests", WAIT, || {
        raw_http(
            local(port),
            "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
        )
        .0 == 503
    });
    std::thread::sleep(Duration::from_millis(1500)); // a second and a half of failures to measure
    let sent = Instant::now();
    let started = now_rfc3339();
    send(&gw, "firing", &started);
    wait_until("the incident announced", Duration::from_secs(30), || {
        hook.received()
            .iter()
            .any(|r| r.body.contains("incident #"))
    });
    println!(
        "alert in → incident announced: {} ms",
        sent.elapsed().as_millis()
    );

    let list = incidents(&gw);
    assert_eq!(list.len(), 1, "{list:#?}");
    let id = list[0]["id"].as_u64().unwrap();
    assert_eq!(list[0]["title"], "the shop answers 5xx");
    let i = incident(&gw, id);
    let scope = &i["scope"];
    assert_eq!(scope["source"], "measured", "{scope:#}");
    assert!(scope["failed"].as_u64().unwrap() > 0, "{scope:#}");
    assert_eq!(scope["routes"], json!(["shop"]));
    assert_eq!(
        scope["function"], "core",
        "shop is core, blog is not affected"
    );
    assert_eq!(
        i["severity"],
        default_matrix(scope["user"].as_str().unwrap(), "core"),
        "{scope:#}"
    );
    let changed = i["what_changed"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|c| c["kind"] == "deploy" && c["summary"] == "shop 2.4.1"),
        "the deploy marker: {changed:#?}"
    );
    assert!(
        changed
            .iter()
            .any(|c| c["type"] == "config" && c["source"] == "api"),
        "the reloaded config: {changed:#?}"
    );
    wait_until("the remediation run", WAIT, || files.join("shop").is_dir());

    // People work it from the CLI.
    cli_ok(&[
        "incident",
        "status",
        &id.to_string(),
        "triage",
        "--by",
        "ana",
        "--admin",
        &admin,
    ]);
    cli_ok(&[
        "incident",
        "note",
        &id.to_string(),
        "rolled shop back to 2.4.0",
        "--by",
        "ana",
        "--admin",
        &admin,
    ]);
    let noted = gw.events_of("incident_noted");
    assert!(noted.iter().any(|e| e["by"] == "ana"), "{noted:#?}");
    let shown = cli_ok(&["incident", "show", &id.to_string(), "--admin", &admin]);
    assert!(
        shown.contains("rolled shop back to 2.4.0") && shown.contains("shop 2.4.1"),
        "{shown}"
    );

    // A server drained and enabled during the incident lands on its timeline.
    let server = backend.addr.to_string();
    cli_ok(&["drain", "app", &server, "--admin", &admin]);
    cli_ok(&["drain", "app", &server, "--enable", "--admin", &admin]);

    // A restart keeps the incident and the runs; nothing is opened or run twice.
    let runs_before = remediations(&gw, "").0.len();
    let before = incident(&gw, id);
    gw.restart();
    wait_brain(&gw);
    let after = incident(&gw, id);
    assert_eq!(after["title"], before["title"]);
    assert_eq!(after["severity"], before["severity"]);
    assert_eq!(after["lifecycle"], before["lifecycle"]);
    assert_eq!(incidents(&gw).len(), 1);
    std::thread::sleep(Duration::from_secs(2)); // two rounds of the brain over the restored alert
    assert_eq!(
        incidents(&gw).len(),
        1,
        "the restored alert opened nothing new"
    );
    assert_eq!(
        remediations(&gw, "").0.len(),
        runs_before,
        "nothing ran again"
    );

    // The alert resolves: the incident recovers by itself.
    backend.force(200);
    send(&gw, "resolved", &started);
    wait_until("the incident recovered", WAIT, || {
        incident(&gw, id)["lifecycle"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["status"] == "analyse"))
    });
    cli_ok(&[
        "incident",
        "status",
        &id.to_string(),
        "retrospective",
        "--by",
        "ana",
        "--root-cause",
        "shop 2.4.1 shipped a broken payment client",
        "--admin",
        &admin,
    ]);

    let out = scratch("incident-export").join("pm.md");
    cli_ok(&[
        "incident",
        "export",
        &id.to_string(),
        "--output",
        &out.display().to_string(),
        "--admin",
        &admin,
    ]);
    let md = std::fs::read_to_string(&out).unwrap();
    let full = incident(&gw, id);
    let timeline: Vec<Value> = full["timeline"].as_array().unwrap().clone();
    for kind in [
        "alert_fired",
        "notification",
        "remediation",
        "note",
        "status",
        "drain",
        "alert_resolved",
    ] {
        assert!(
            timeline.iter().any(|e| e["kind"] == kind),
            "no {kind}: {timeline:#?}"
        );
    }
    for e in &timeline {
        let summary = e["summary"].as_str().unwrap().replace('|', "\\|");
        assert!(
            md.contains(&summary),
            "the post-mortem lacks {summary:?}:\n{md}"
        );
    }
    assert!(
        md.contains("shop 2.4.1 shipped a broken payment client"),
        "{md}"
    );
    assert!(md.contains("## What changed"), "{md}");
    assert!(md.contains("Add a test case"), "{md}");
    let listed = cli_ok(&["incident", "list", "--admin", &admin]);
    assert!(
        listed.contains("retrospective") && listed.contains("the shop answers 5xx"),
        "{listed}"
    );
    let events = gw.events_of("incident_status_changed");
    assert!(events.iter().any(|e| e["by"] == "ana"), "{events:#?}");
}

#[test]
fn an_incident_opened_by_hand_and_bad_requests() {
    let (code, out, err) = cli(&["incident", "show", "1", "--admin", "127.0.0.1:9"]);
    assert_ne!(code, Some(0), "{out}{err}");
    let backend = Backend::start("incident-hand-b");
    let port = free_port();
    let gw = start_brain(
        "incident-hand",
        &format!(
            "{}\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nservers = [{{ addr = \"{}\" }}]\n",
            preamble(port),
            backend.addr
        ),
    );
    let admin = gw.admin.to_string();
    let opened = cli_ok(&[
        "incident",
        "open",
        "payments slow for staff",
        "--users",
        "internal",
        "--by",
        "bo",
        "--admin",
        &admin,
    ]);
    assert!(opened.contains("incident 1 opened"), "{opened}");
    let i = incident(&gw, 1);
    assert_eq!(i["scope"]["user"], "internal");
    assert_eq!(i["severity"], default_matrix("internal", "auxiliary"));
    // More users turn out to be hurt: the matrix grades it again; then a person overrides it.
    let out = cli_ok(&[
        "incident", "severity", "1", "--users", "most", "--by", "bo", "--admin", &admin,
    ]);
    assert!(out.contains(default_matrix("most", "auxiliary")), "{out}");
    let out = cli_ok(&[
        "incident", "severity", "1", "--sev", "SEV1", "--by", "bo", "--admin", &admin,
    ]);
    assert!(out.contains("SEV1"), "{out}");
    let i = incident(&gw, 1);
    assert_eq!(i["severity"], "SEV1");
    assert_eq!(i["severity_set_by"], "bo");
    let graded = gw.events_of("incident_graded");
    assert!(
        graded
            .iter()
            .any(|e| e["by"] == "bo" && e["severity"] == "SEV1"),
        "{graded:#?}"
    );
    let kinds: Vec<String> = i["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kinds.iter().any(|s| s.contains("set by hand")),
        "{kinds:#?}"
    );
    // Bad input gets a clear error and changes nothing.
    for (path, body, want) in [
        (
            "/api/v1/incidents",
            r#"{"title":""}"#,
            "title must not be empty",
        ),
        ("/api/v1/incidents", "not json", "the body must be"),
        (
            "/api/v1/incidents/1/status",
            r#"{"status":"detect"}"#,
            "already at detect",
        ),
        (
            "/api/v1/incidents/1/status",
            r#"{"status":"sideways"}"#,
            "unknown variant",
        ),
        (
            "/api/v1/incidents/1/severity",
            r#"{"by":"bo"}"#,
            "give severity, user_scope or both",
        ),
        (
            "/api/v1/incidents/1/severity",
            r#"{"severity":"SEV9"}"#,
            "unknown variant",
        ),
        (
            "/api/v1/incidents/abc/notes",
            r#"{"text":"x"}"#,
            "not an incident id",
        ),
        (
            "/api/v1/incidents/1/notes",
            r#"{"text":""}"#,
            "note is empty",
        ),
    ] {
        let (code, text) = post(&gw, path, body);
        assert_eq!(code, 400, "{path} {body}: {text}");
        assert!(text.contains(want), "{path} {body}: {text}");
    }
    let (code, text) = post(&gw, "/api/v1/incidents/99/notes", r#"{"text":"x"}"#);
    assert_eq!(code, 404, "{text}");
    assert_eq!(gw.admin_get("/api/v1/incidents/99/postmortem.md").0, 404);
    let (code, md) = gw.admin_get("/api/v1/incidents/1/postmortem.md");
    assert_eq!(code, 200);
    assert!(
        md.starts_with("# Incident 1: payments slow for staff"),
        "{md}"
    );
}

#[test]
fn top_talkers_name_the_flooding_client() {
    let Setup {
        port,
        mut gw,
        backend: _backend,
        hook: _hook,
        ..
    } = Setup::start("incident-flood");
    // One client floods /search; two others browse at a normal pace.
    let flood = Traffic::start(local(port), "127.0.0.2", "/search?q=x", Duration::ZERO);
    let _a = Traffic::start(local(port), "127.0.0.3", "/", Duration::from_millis(100));
    let _b = Traffic::start(local(port), "127.0.0.4", "/", Duration::from_millis(100));
    wait_until("a few hundred flood requests", WAIT, || {
        flood.ok.load(std::sync::atomic::Ordering::Relaxed)
            + flood.failed.load(std::sync::atomic::Ordering::Relaxed)
            > 300
    });
    send(&gw, "firing", &now_rfc3339());
    wait_until("the incident", WAIT, || !incidents(&gw).is_empty());
    let id = incidents(&gw)[0]["id"].as_u64().unwrap();
    let i = incident(&gw, id);
    let t = &i["top_talkers"];
    assert_eq!(t["clients"][0]["key"], "127.0.0.2", "{t:#}");
    let flood_n = t["clients"][0]["requests"].as_u64().unwrap();
    let next = t["clients"][1]["requests"].as_u64().unwrap_or(0);
    assert!(flood_n > 5 * next, "the flood stands out: {t:#}");
    assert_eq!(t["paths"][0]["key"], "/search", "{t:#}");
    let (code, md) = gw.admin_get(&format!("/api/v1/incidents/{id}/postmortem.md"));
    assert_eq!(code, 200);
    assert!(
        md.contains("## Top talkers") && md.contains("| 127.0.0.2 ("),
        "{md}"
    );
    let shown = cli_ok(&[
        "incident",
        "show",
        &id.to_string(),
        "--admin",
        &gw.admin.to_string(),
    ]);
    assert!(shown.contains("clients   127.0.0.2"), "{shown}");
    drop(flood);

    // Closed while its alert still fires, then a restart: the restored alert opens nothing.
    let (code, body) = post(
        &gw,
        &format!("/api/v1/incidents/{id}/status"),
        r#"{"status":"closed","by":"bo"}"#,
    );
    assert_eq!(code, 200, "{body}");
    gw.restart();
    wait_brain(&gw);
    std::thread::sleep(Duration::from_secs(2)); // two rounds of the incident task
    let list = incidents(&gw);
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!(list[0]["status"], "closed");
}

#[test]
fn a_relapse_after_recovery_opens_a_new_incident() {
    let Setup {
        gw,
        backend: _backend,
        hook: _hook,
        ..
    } = Setup::start("incident-relapse");
    let first = now_rfc3339();
    send(&gw, "firing", &first);
    wait_until("the incident", WAIT, || incidents(&gw).len() == 1);
    send(&gw, "resolved", &first);
    let recovered = |id: u64| {
        incident(&gw, id)["lifecycle"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["status"] == "analyse"))
    };
    wait_until("the incident recovered", WAIT, || recovered(1));
    // The same alert fires again.
    std::thread::sleep(Duration::from_millis(1100)); // a new startsAt second
    let again = now_rfc3339();
    send(&gw, "firing", &again);
    wait_until("the relapse incident", WAIT, || incidents(&gw).len() == 2);
    let list = incidents(&gw);
    let newest = &list[0];
    assert_eq!(
        newest["title"], "relapse of #1: the shop answers 5xx",
        "{list:#?}"
    );
    let old = incident(&gw, 1);
    let notes: Vec<&str> = old["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("relapse: ShopDown fired again")),
        "{notes:?}"
    );
    // Its resolution goes to the new incident, which recovers by itself.
    let id = newest["id"].as_u64().unwrap();
    send(&gw, "resolved", &again);
    wait_until("the relapse recovered", WAIT, || recovered(id));
}
