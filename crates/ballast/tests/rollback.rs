//! Config rollback with real processes: a gateway on the default SQLite store applies three
//! configs (at start, by edit + SIGHUP, by edit + `POST /api/v1/reload`) and refuses an invalid
//! one; `ballast rollback 1` then puts version 1 back in the file and in traffic (a server
//! removed in version 2 serves again), keeps the replaced file as `ballast.toml.bak.<time>`, and
//! is recorded with source `rollback`; without an argument it goes to the previous good
//! version. Rollbacks that cannot happen (a refused or unknown version, a config the gateway
//! refuses now, no store) fail with the reason and leave the file as it was. A restart keeps
//! the history and the change markers, and runs the rolled-back config.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use common::*;

fn config(port: u16, servers: &[(SocketAddr, u32)]) -> String {
    one_upstream_config(port, Extra::default(), servers)
}

/// `ballast ARGS --admin ADDR`: (exit code, stdout, stderr).
fn ballast(gw: &Gateway, args: &[&str]) -> (Option<i32>, String, String) {
    let admin = gw.admin.to_string();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--admin", &admin]);
    cli(&all)
}

/// `ballast rollback [VERSION]`; panics unless it succeeds. Returns stdout.
fn rollback_ok(gw: &Gateway, version: Option<&str>) -> String {
    let mut args = vec!["rollback"];
    args.extend(version);
    let (code, out, err) = ballast(gw, &args);
    assert_eq!(code, Some(0), "ballast {}: {out}\n{err}", args.join(" "));
    out
}

/// `ballast rollback VERSION`, which must fail; returns stderr.
fn rollback_fails(gw: &Gateway, version: &str) -> String {
    let (code, out, err) = ballast(gw, &["rollback", version]);
    assert_ne!(code, Some(0), "ballast rollback {version} succeeded: {out}");
    err
}

/// `(id, source, outcome)` of each row of `ballast config history`, newest first.
fn history(gw: &Gateway) -> Vec<(u64, String, String)> {
    let (code, out, err) = ballast(gw, &["config", "history"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    history_rows(&out)
}

fn row(id: u64, source: &str, outcome: &str) -> (u64, String, String) {
    (id, source.to_string(), outcome.to_string())
}

fn file_text(gw: &Gateway) -> String {
    std::fs::read_to_string(&gw.config_path).unwrap()
}

/// The kept copies `ballast.toml.bak.*` beside the config, oldest first.
fn backups(gw: &Gateway) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(&gw.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ballast.toml.bak.")
        })
        .collect();
    found.sort();
    found
}

/// 200 answers per backend for `n` requests through the gateway.
fn tally(port: u16, n: usize) -> Tally {
    let t = rt().block_on(tally_requests(local(port), n, "/", &[]));
    assert_eq!(t.errors, 0, "{:?}", t.samples);
    t
}

#[test]
fn rollback_restores_a_version_in_the_file_and_in_traffic() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let mut gw = Gateway::start("rollback", &config(port, &[(a.addr, 1), (b.addr, 1)]));
    wait_versions(&gw, 1);
    let v1 = file_text(&gw);
    assert!(tally(port, 10).of("b") > 0, "B serves under version 1");

    // v2: edit + SIGHUP, without B.
    gw.write_config(&config(port, &[(a.addr, 1)]));
    let v2 = file_text(&gw);
    gw.signal(libc::SIGHUP);
    wait_versions(&gw, 2);
    assert_eq!(tally(port, 10).of("b"), 0, "B is out of version 2");

    // v3: another edit + POST /api/v1/reload.
    gw.write_config(&config(port, &[(a.addr, 2)]));
    let v3 = file_text(&gw);
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    wait_versions(&gw, 3);

    // An invalid file is refused (and recorded); then the operator puts v3 back, unapplied.
    std::fs::write(&gw.config_path, "[[listener]]\nname = 3\n").unwrap();
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    wait_versions(&gw, 4);
    std::fs::write(&gw.config_path, &v3).unwrap();

    assert_eq!(
        history(&gw),
        [
            row(4, "api", "refused"),
            row(3, "api", "applied"),
            row(2, "signal", "applied"),
            row(1, "start", "applied"),
        ]
    );
    let (code, diff, err) = ballast(&gw, &["config", "diff", "1", "2"]);
    assert_eq!(code, Some(0), "{err}");
    let servers = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("servers = "))
            .unwrap()
            .to_string()
    };
    assert!(diff.contains(&format!("\n-{}\n", servers(&v1))), "{diff}");
    assert!(diff.contains(&format!("\n+{}\n", servers(&v2))), "{diff}");

    // Versions that cannot be rolled back to: nothing is written, kept or recorded.
    let err = rollback_fails(&gw, "4");
    assert!(
        err.contains("409") && err.contains("version 4 was refused"),
        "{err}"
    );
    let err = rollback_fails(&gw, "99");
    assert!(
        err.contains("404") && err.contains("no config version 99"),
        "{err}"
    );
    assert_eq!(file_text(&gw), v3);
    assert!(backups(&gw).is_empty(), "{:?}", backups(&gw));
    assert_eq!(versions(&gw).len(), 4);

    // Roll back to version 1: the file, the traffic and the history follow.
    let out = rollback_ok(&gw, Some("1"));
    assert!(out.starts_with("rolled back to config version 1 "), "{out}");
    assert_eq!(std::fs::read(&gw.config_path).unwrap(), v1.as_bytes());
    let kept = backups(&gw);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), v3.as_bytes());
    assert!(
        out.contains(&format!("kept as {}\n", kept[0].display())),
        "{out}"
    );
    let b_before = b.app_count();
    wait_until("B to serve again", Duration::from_secs(10), || {
        tally(port, 4);
        b.app_count() > b_before
    });
    wait_versions(&gw, 5);
    assert_eq!(history(&gw)[0], row(5, "rollback", "applied"));
    let listed = versions(&gw);
    assert_eq!(listed[0]["sha256"], listed[4]["sha256"], "v5 is v1's text");
    let reloads = gw.events_of("reload_applied");
    assert_eq!(reloads.last().unwrap()["by"], "rollback", "{reloads:?}");

    // Without a version: the previous good one, i.e. the applied version before the running
    // one with a different text (v3); and again, back to v1's text (v5).
    let out = rollback_ok(&gw, None);
    assert!(out.starts_with("rolled back to config version 3 "), "{out}");
    assert_eq!(file_text(&gw), v3);
    assert_eq!(tally(port, 10).of("b"), 0, "B is out of version 3");
    let out = rollback_ok(&gw, None);
    assert!(out.starts_with("rolled back to config version 5 "), "{out}");
    assert_eq!(file_text(&gw), v1);
    wait_versions(&gw, 7);
    assert_eq!(backups(&gw).len(), 3);
    // Version 5's text is running and in the file: nothing to do, nothing kept.
    let err = rollback_fails(&gw, "5");
    assert!(
        err.contains("409") && err.contains("already the running config"),
        "{err}"
    );
    assert_eq!(backups(&gw).len(), 3);

    // A change marker, as a pipeline would post it before the restart.
    let (code, out, err) = ballast(
        &gw,
        &[
            "change",
            "add",
            "--kind",
            "deploy",
            "--summary",
            "shop 2.0 after the rollback",
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");

    // A restart keeps the history and the markers, and runs the rolled-back config.
    gw.restart();
    wait_versions(&gw, 8);
    let (code, body) = gw.admin_get("/api/v1/changes?since=1h");
    assert_eq!(code, 200, "{body}");
    let changes: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let markers: Vec<&serde_json::Value> =
        changes.iter().filter(|c| c["type"] == "marker").collect();
    assert_eq!(markers.len(), 1, "{body}");
    assert_eq!(markers[0]["summary"], "shop 2.0 after the rollback");
    assert_eq!(
        history(&gw),
        [
            row(8, "start", "applied"),
            row(7, "rollback", "applied"),
            row(6, "rollback", "applied"),
            row(5, "rollback", "applied"),
            row(4, "api", "refused"),
            row(3, "api", "applied"),
            row(2, "signal", "applied"),
            row(1, "start", "applied"),
        ]
    );
    assert_eq!(file_text(&gw), v1);
    let b_before = b.app_count();
    wait_until(
        "B to serve after the restart",
        Duration::from_secs(10),
        || {
            tally(port, 4);
            b.app_count() > b_before
        },
    );
    // The restart recorded v1's text again (v8, like v7): the previous good version skips
    // what has the running text and lands on v6 (v3's).
    let out = rollback_ok(&gw, None);
    assert!(out.starts_with("rolled back to config version 6 "), "{out}");
    assert_eq!(file_text(&gw), v3);
}

#[test]
fn a_rollback_the_gateway_refuses_puts_the_file_back() {
    let a = Backend::start("a");
    let (old_port, new_port) = (free_port(), free_port());
    let gw = Gateway::start("rollback-refused", &config(old_port, &[(a.addr, 1)]));
    wait_versions(&gw, 1);
    let v1 = file_text(&gw);
    // v2 moves the listener; something else then takes the old port.
    gw.write_config(&config(new_port, &[(a.addr, 1)]));
    let v2 = file_text(&gw);
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    let mut squatter = None;
    wait_until("the old port to be free", Duration::from_secs(10), || {
        squatter = TcpListener::bind(local(old_port)).ok();
        squatter.is_some()
    });

    let err = rollback_fails(&gw, "1");
    assert!(
        err.contains("422") && err.contains("refused version 1"),
        "{err}"
    );
    assert!(err.contains("was put back as it was"), "{err}");
    assert_eq!(file_text(&gw), v2);
    assert!(backups(&gw).is_empty(), "{:?}", backups(&gw));
    assert_eq!(tally(new_port, 4).ok, 4, "the running config is unchanged");
    wait_versions(&gw, 3);
    assert_eq!(history(&gw)[0], row(3, "rollback", "refused"));

    // Once the port is free again, the same rollback goes through.
    drop(squatter);
    rollback_ok(&gw, Some("1"));
    assert_eq!(file_text(&gw), v1);
    assert_eq!(tally(old_port, 4).ok, 4);
}

#[test]
fn without_a_store_there_is_nothing_to_roll_back_to() {
    let a = Backend::start("a");
    let port = free_port();
    let store = "[store]\nurl = \"sqlite:///nonexistent-ballast-dir/x.db\"\n";
    let gw = Gateway::start(
        "rollback-no-store",
        &format!("{store}{}", config(port, &[(a.addr, 1)])),
    );
    let before = file_text(&gw);
    for body in ["", r#"{"version": 1}"#] {
        let (code, answer) = raw_http(
            gw.admin,
            &format!(
                "POST /api/v1/config/rollback HTTP/1.1\r\nHost: admin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert_eq!(code, 503, "{answer}");
        assert!(answer.contains("is not open yet"), "{answer}");
    }
    let err = rollback_fails(&gw, "1");
    assert!(err.contains("503"), "{err}");
    assert_eq!(file_text(&gw), before);
    assert!(backups(&gw).is_empty());
}
