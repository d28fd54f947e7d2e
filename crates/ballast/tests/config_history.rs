//! Config history with real processes: a gateway on the default SQLite store beside its config
//! file records the config it started with, an edit + SIGHUP, an edit + `POST /api/v1/reload`
//! and a refused invalid file; `ballast config history | show | diff` read them back through
//! the admin API; a restart keeps them. A store that cannot be opened must not stop the
//! gateway: it serves, `ballast_store_up` is 0 and the history API answers 503.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;

/// The common one-upstream config, with `store` (a `[store]` table or nothing) on top.
fn config(store: &str, port: u16, servers: &[SocketAddr]) -> String {
    format!(
        "{store}\n{}",
        one_upstream_config(port, Extra::default(), &weight1(servers))
    )
}

/// `ballast config ARGS --admin ADDR`; panics unless it succeeds. Returns stdout.
fn config_cli(gw: &Gateway, args: &[&str]) -> String {
    let admin = gw.admin.to_string();
    let mut all = vec!["config"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--admin", &admin]);
    let (code, out, err) = cli(&all);
    assert_eq!(code, Some(0), "ballast {}: {out}\n{err}", all.join(" "));
    out
}

fn get_through(port: u16) -> u16 {
    raw_http(
        local(port),
        "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    )
    .0
}

#[test]
fn every_config_is_recorded_and_survives_a_restart() {
    let a = Backend::start("a");
    let b = Backend::start("b");
    let port = free_port();
    let v1 = config("", port, &[a.addr]);
    let mut gw = Gateway::start("config-history", &v1);
    wait_versions(&gw, 1);
    assert!(
        gw.dir.join("ballast.db").exists(),
        "the default store is a SQLite file beside the config"
    );
    let text_of = |gw: &Gateway| std::fs::read_to_string(&gw.config_path).unwrap();
    let v1_text = text_of(&gw);

    // v2: edit + SIGHUP.
    gw.write_config(&config("", port, &[a.addr, b.addr]));
    let v2_text = text_of(&gw);
    gw.signal(libc::SIGHUP);
    wait_versions(&gw, 2);

    // v3: edit + POST /api/v1/reload.
    gw.write_config(&config("", port, &[b.addr]));
    let v3_text = text_of(&gw);
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    wait_versions(&gw, 3);

    // An invalid file, reloaded from the CLI: refused and recorded with its error.
    std::fs::write(&gw.config_path, "[[listener]]\nname = 3\n").unwrap();
    let (code, out, _) = cli(&["reload", "--admin", &gw.admin.to_string()]);
    assert_ne!(code, Some(0), "{out}");
    wait_versions(&gw, 4);
    assert_eq!(
        get_through(port),
        200,
        "the running config (v3) still serves"
    );

    let out = config_cli(&gw, &["history"]);
    assert_eq!(
        history_rows(&out),
        [
            (4, "cli".into(), "refused".into()),
            (3, "api".into(), "applied".into()),
            (2, "signal".into(), "applied".into()),
            (1, "start".into(), "applied".into()),
        ],
        "{out}"
    );
    assert!(
        out.contains("listener[0].name"),
        "the refusal says why: {out}"
    );
    let listed = versions(&gw);
    assert!(listed[0]["error"]
        .as_str()
        .unwrap()
        .contains("ballast.toml:2:"));
    assert!(listed.iter().all(|v| v.get("text").is_none()));

    assert_eq!(config_cli(&gw, &["show", "2"]), v2_text);
    assert_eq!(config_cli(&gw, &["show", "1"]), v1_text);

    let diff = config_cli(&gw, &["diff", "1", "2"]);
    let servers_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("servers = "))
            .unwrap()
            .to_string()
    };
    assert!(
        diff.contains(&format!("\n-{}\n", servers_line(&v1_text))),
        "{diff}"
    );
    assert!(
        diff.contains(&format!("\n+{}\n", servers_line(&v2_text))),
        "{diff}"
    );
    // No arguments: the running version (3) against the applied one before it (2).
    let diff = config_cli(&gw, &["diff"]);
    assert!(diff.contains("--- version 2 (signal)"), "{diff}");
    assert!(diff.contains("+++ version 3 (api)"), "{diff}");
    assert!(
        diff.contains(&format!("\n+{}\n", servers_line(&v3_text))),
        "{diff}"
    );
    assert_eq!(
        metric_value(&gw.metrics(), "ballast_store_up"),
        Some(1.0),
        "{}",
        gw.metrics()
    );
    let (code, _) = gw.admin_get("/api/v1/config/versions/99");
    assert_eq!(code, 404);

    // Restart on the same directory (with a valid file again): the history is intact, plus
    // the version it started with.
    std::fs::write(&gw.config_path, &v3_text).unwrap();
    gw.restart();
    wait_versions(&gw, 5);
    let rows = history_rows(&config_cli(&gw, &["history"]));
    assert_eq!(rows[0], (5, "start".into(), "applied".into()));
    assert_eq!(
        rows[1..].iter().map(|r| r.0).collect::<Vec<_>>(),
        [4, 3, 2, 1]
    );
    assert_eq!(config_cli(&gw, &["show", "2"]), v2_text);
    let listed = versions(&gw);
    assert_eq!(listed[0]["sha256"], listed[2]["sha256"], "v5 is v3's text");
    // The running version is now 5, and 3 before it has the same text.
    let out = config_cli(&gw, &["diff"]);
    assert_eq!(out.trim(), "versions 3 and 5 have the same text");
    assert_eq!(get_through(port), 200);
}

#[test]
fn a_store_that_cannot_open_leaves_the_gateway_serving() {
    let a = Backend::start("a");
    let port = free_port();
    let store = "[store]\nurl = \"sqlite:///nonexistent-ballast-dir/x.db\"";
    let gw = Gateway::start("store-down", &config(store, port, &[a.addr]));
    assert_eq!(get_through(port), 200);
    assert_eq!(
        metric_value(&gw.metrics(), "ballast_store_up"),
        Some(0.0),
        "{}",
        gw.metrics()
    );
    for path in [
        "/api/v1/config/versions",
        "/api/v1/config/versions/1",
        "/api/v1/config/diff",
    ] {
        let (code, body) = gw.admin_get(path);
        assert_eq!(code, 503, "{path}: {body}");
        assert!(body.contains("is not open yet"), "{body}");
        assert!(body.contains("events wait in memory"), "{body}");
    }
    // Reloads still work without the store.
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 200, "{body}");
    assert_eq!(get_through(port), 200);
    let (code, _, err) = cli(&["config", "history", "--admin", &gw.admin.to_string()]);
    assert_ne!(code, Some(0));
    assert!(err.contains("503"), "{err}");
    wait_until(
        "the sink to log the outage",
        Duration::from_secs(10),
        || {
            gw.stderr()
                .contains("operations store unavailable; events wait in memory")
        },
    );
}
