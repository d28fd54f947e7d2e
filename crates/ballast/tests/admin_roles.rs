//! Admin tokens with roles, through a real gateway: a viewer reads and gets 403 when it tries
//! to act (and nothing happens), an operator acts and is recorded by its token's name (on its
//! incidents, and on the drain's event and change-timeline entry), a
//! token read from a file works, a reload rotates the tokens without a restart, shown config
//! versions never carry a secret, and the CLI uses `$BALLAST_TOKEN`.

mod common;

use common::*;

fn with_token(gw: &Gateway, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    raw_http(
        gw.admin,
        &format!(
            "{method} {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn config(
    port: u16,
    backend: std::net::SocketAddr,
    viewer: &str,
    file: &std::path::Path,
) -> String {
    format!(
        r#"
[admin]
listen = "{{ADMIN}}"
tokens = [
  {{ name = "wallboard", token = "{viewer}", role = "viewer" }},
  {{ name = "ana", token_file = "{file}", role = "operator" }},
]
[log]
access = "{{ACCESS_LOG}}"
[store]
url = "sqlite://{{ADMIN_DIR}}/ops.db"
[[listener]]
name = "web"
listen = "127.0.0.1:{port}"
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]
"#,
        file = file.display(),
    )
}

#[test]
fn viewers_read_operators_act_and_tokens_rotate_on_reload() {
    let backend = Backend::start("roles-b");
    let dir = scratch("roles-secrets");
    let file = dir.join("ana.token");
    std::fs::write(&file, "operator-secret-1\n").unwrap();
    let port = free_port();
    let text = config(port, backend.addr, "viewer-secret-1", &file)
        .replace("{ADMIN_DIR}", &dir.display().to_string());
    let gw = Gateway::start("roles", &text);
    let server = backend.addr.to_string();
    let drain = format!("/api/v1/servers/app/{server}/drain");

    // No token: 401, even to read.
    assert_eq!(gw.admin_get("/api/v1/status").0, 401);
    // The viewer reads, and may not act: nothing happens.
    let (code, body) = with_token(&gw, "GET", "/api/v1/status", "viewer-secret-1", "");
    assert_eq!(code, 200, "{body}");
    let (code, body) = with_token(&gw, "POST", &drain, "viewer-secret-1", "");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("wallboard has a viewer's token"), "{body}");
    let status = with_token(&gw, "GET", "/api/v1/status", "viewer-secret-1", "").1;
    assert!(!status.contains("\"draining\""), "{status}");
    // The operator (its token from a file, newline trimmed) acts.
    let (code, body) = with_token(&gw, "POST", &drain, "operator-secret-1", "");
    assert_eq!(code, 200, "{body}");
    // The drain is recorded with the person, beside the origin: in the event log...
    let (code, events) = with_token(&gw, "GET", "/api/v1/events", "viewer-secret-1", "");
    assert_eq!(code, 200, "{events}");
    let events: serde_json::Value = serde_json::from_str(&events).unwrap();
    let drained: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "server_drained")
        .collect();
    assert_eq!(drained.len(), 1, "{events:#}");
    assert_eq!(drained[0]["who"], "ana", "{events:#}");
    assert_eq!(drained[0]["by"], "api", "{events:#}");
    assert_eq!(drained[0]["server"], server.as_str(), "{events:#}");
    // ... and in the change timeline, once the event reached the store.
    let mut changes = serde_json::Value::Null;
    wait_until(
        "the drain to reach the change timeline",
        std::time::Duration::from_secs(30),
        || {
            let (code, body) = with_token(&gw, "GET", "/api/v1/changes", "viewer-secret-1", "");
            changes = serde_json::from_str(&body).unwrap_or_default();
            code == 200
                && changes
                    .as_array()
                    .is_some_and(|l| l.iter().any(|c| c["kind"] == "server_drained"))
        },
    );
    let listed: Vec<ballast_core::ChangeEntry> = serde_json::from_value(changes.clone()).unwrap();
    let drain_entry = listed
        .iter()
        .find(|c| c.type_name() == "command" && c.what().starts_with("drained app"))
        .unwrap_or_else(|| panic!("{changes:#}"));
    assert_eq!(drain_entry.who(), "ana", "{changes:#}");
    let raw = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "server_drained")
        .unwrap();
    assert_eq!(raw["who"], "ana", "{changes:#}");
    // Who acts is the token's name, whatever the body says.
    wait_until(
        "incidents to answer",
        std::time::Duration::from_secs(30),
        || with_token(&gw, "GET", "/api/v1/incidents", "viewer-secret-1", "").0 == 200,
    );
    let (code, body) = with_token(
        &gw,
        "POST",
        "/api/v1/incidents",
        "operator-secret-1",
        r#"{"title":"checkout slow","by":"someone-else"}"#,
    );
    assert_eq!(code, 201, "{body}");
    let incident: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(incident["opened_by"]["author"], "ana", "{incident:#}");

    // The CLI with $BALLAST_TOKEN.
    let run = |token: &str| {
        std::process::Command::new(BIN)
            .args([
                "drain",
                "app",
                &server,
                "--enable",
                "--admin",
                &gw.admin.to_string(),
            ])
            .env("BALLAST_TOKEN", token)
            .output()
            .unwrap()
    };
    let out = run("viewer-secret-1");
    assert!(!out.status.success(), "a viewer's CLI may not enable");
    let out = run("operator-secret-1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Shown config versions carry no secret.
    let (code, versions) = with_token(
        &gw,
        "GET",
        "/api/v1/config/versions/1",
        "viewer-secret-1",
        "",
    );
    assert_eq!(code, 200, "{versions}");
    assert!(
        !versions.contains("viewer-secret-1") && versions.contains("[redacted]"),
        "{versions}"
    );

    // A reload rotates the tokens: the old ones stop working, the new ones work.
    std::fs::write(&file, "operator-secret-2\n").unwrap();
    gw.write_config(
        &config(port, backend.addr, "viewer-secret-2", &file)
            .replace("{ADMIN_DIR}", &dir.display().to_string()),
    );
    let (code, body) = with_token(&gw, "POST", "/api/v1/reload", "operator-secret-1", "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        with_token(&gw, "GET", "/api/v1/status", "viewer-secret-1", "").0,
        401
    );
    assert_eq!(
        with_token(&gw, "GET", "/api/v1/status", "viewer-secret-2", "").0,
        200
    );
    assert_eq!(
        with_token(&gw, "POST", &drain, "operator-secret-2", "").0,
        200
    );
}

#[test]
fn bad_tokens_are_refused_at_load() {
    let dir = scratch("roles-bad");
    let cases = [
        (
            r#"tokens = [{ name = "a", token = "x", token_file = "/y", role = "viewer" }]"#,
            "exactly one of token and token_file",
        ),
        (
            r#"tokens = [{ name = "a", token = "x", role = "boss" }]"#,
            "unknown variant",
        ),
        (
            r#"tokens = [{ name = "a", token = "x", role = "viewer" }, { name = "a", token = "y", role = "viewer" }]"#,
            "used twice",
        ),
        (
            r#"tokens = [{ name = "a", token = "x", role = "viewer" }, { name = "b", token = "x", role = "viewer" }]"#,
            "two names",
        ),
        (
            r#"tokens = [{ name = "a", token_file = "/nonexistent/ballast.token", role = "viewer" }]"#,
            "cannot read",
        ),
    ];
    for (tokens, want) in cases {
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            format!("[admin]\nlisten = \"127.0.0.1:9\"\n{tokens}\n[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:1\"\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nservers = [{{ addr = \"127.0.0.1:9\" }}]\n"),
        )
        .unwrap();
        let (code, out, err) = cli(&["check", "--config", &path.display().to_string()]);
        assert_eq!(code, Some(64), "{tokens}: {out}{err}");
        assert!(err.contains(want), "{tokens}: {err}");
    }
}
