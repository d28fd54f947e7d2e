//! Commands through the typed boundary (`Gateway::apply`): drain, enable, reload and purge
//! asked by the admin API, the CLI and SIGHUP are carried out, answered with typed reports or
//! errors, and recorded as events that name who asked.

mod common;

use std::time::Duration;

use common::*;

fn sha256_hex(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn drain_enable_and_reloads_are_events_naming_who_asked() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let port = free_port();
    let cfg = |servers: &[std::net::SocketAddr]| {
        one_upstream_config(port, Extra::default(), &weight1(servers))
    };
    let gw = Gateway::start("commands", &cfg(&[a.addr, b.addr]));
    let admin = gw.admin.to_string();
    let a_addr = a.addr.to_string();

    // Start: the applied config is recorded with the file's sha256.
    let started = gw.events_of("reload_applied");
    assert_eq!(started.len(), 1, "{started:?}");
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    assert_eq!(started[0]["by"], "start");
    assert_eq!(started[0]["sha256"], sha256_hex(&text));
    assert_eq!(started[0]["servers_added"], 2);

    // Drain through the API: a typed report, and an event by `api`.
    let (code, body) = gw.admin_post(&format!("/api/v1/servers/app/{a_addr}/drain"));
    assert_eq!(code, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["result"], "drained");
    assert_eq!(report["changed"], true);
    // Draining again changes nothing and records nothing.
    let (_, body) = gw.admin_post(&format!("/api/v1/servers/app/{a_addr}/drain"));
    assert!(body.contains("\"changed\":false"), "{body}");
    let drained = gw.events_of("server_drained");
    assert_eq!(drained.len(), 1, "{drained:?}");
    assert_eq!(drained[0]["by"], "api");
    assert_eq!(drained[0]["upstream"], "app");
    assert_eq!(drained[0]["server"], a_addr.as_str());
    // The status is the typed snapshot: it reads back into `ballast_core::Snapshot`.
    let (_, body) = gw.admin_get("/api/v1/status");
    let snap: ballast_core::Snapshot = serde_json::from_str(&body).unwrap();
    let server = &snap.upstreams[0].servers[0];
    assert_eq!(
        (server.addr.as_str(), server.state.as_str()),
        (a_addr.as_str(), "draining")
    );
    assert!(server.drained);

    // Enable through the CLI: the event says `cli`.
    let (code, out, err) = cli(&["drain", "app", &a_addr, "--enable", "--admin", &admin]);
    assert_eq!(code, Some(0), "{out} {err}");
    let enabled = gw.events_of("server_enabled");
    assert_eq!(enabled.len(), 1, "{enabled:?}");
    assert_eq!(enabled[0]["by"], "cli");
    assert_eq!(gw.server_state("app", a.addr), "up");

    // Unknown names: 404 with the reason, no event.
    let (code, body) = gw.admin_post(&format!("/api/v1/servers/nope/{a_addr}/drain"));
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("nope"), "{body}");
    let (code, body) = gw.admin_post("/api/v1/cache/purge?prefix=img");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("must start with"), "{body}");

    // SIGHUP with a changed file: applied, by `signal`, with the new text's sha256.
    let one = cfg(&[a.addr]);
    gw.write_config(&one);
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    gw.signal(libc::SIGHUP);
    wait_until("the SIGHUP reload", Duration::from_secs(10), || {
        gw.events_of("reload_applied").len() == 2
    });
    let applied = gw.events_of("reload_applied");
    assert_eq!(applied[1]["by"], "signal");
    assert_eq!(applied[1]["sha256"], sha256_hex(&text));
    assert_eq!(applied[1]["servers_removed"], 1);

    // A broken file through the API: 422, refused by `api`, and the running config stays.
    std::fs::write(&gw.config_path, "[[listener]\nname = ").unwrap();
    let (code, body) = gw.admin_post("/api/v1/reload");
    assert_eq!(code, 422, "{body}");
    let refused = gw.events_of("reload_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["by"], "api");
    assert!(refused[0]["error"]
        .as_str()
        .unwrap()
        .contains("ballast.toml"));
    assert_eq!(
        refused[0]["sha256"],
        sha256_hex("[[listener]\nname = "),
        "{refused:?}"
    );
    let (status, body) = raw_http(
        local(port),
        "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((status, body.as_str()), (200, "hello from a\n"));
    let m = gw.metrics();
    assert_eq!(
        metric_value(&m, "ballast_reloads_total{result=\"error\"}"),
        Some(1.0),
        "{m}"
    );
}
