//! `ballast check` on listeners: protocols, TLS certificates (short and SNI forms), routes per
//! listener, shared ports.

use std::path::PathBuf;

mod support;
use support::*;

// ── Listeners ──────────────────────────────────────────────────────────────────────────────

#[test]
fn https_listener_without_tls() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8443\"\nprotocol = \"https\"\n[[route]]\nupstream = \"app\"\n{APP}"
    );
    let msg = refused_at(&src, "listener[0].protocol", "protocol");
    assert_says(&msg, "needs `tls = { cert = ");
}

#[test]
fn tls_on_a_plain_listener_is_refused() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\ntls = {{ cert = \"a.crt\", key = \"a.key\" }}\n[[route]]\nupstream = \"app\"\n{APP}"
    );
    assert_says(
        &refused_at(&src, "listener[0].tls", "tls"),
        "only for protocol = \"https\"",
    );
}

fn https(tls: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8443\"\nprotocol = \"https\"\ntls = {tls}\n[[route]]\nupstream = \"app\"\n{APP}"
    )
}

#[test]
fn short_tls_form_is_one_default_certificate() {
    let cfg = accept(&https(r#"{ cert = "a.crt", key = "a.key" }"#));
    let tls = cfg.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certs.len(), 1);
    assert_eq!(tls.default, 0);
    assert_eq!(tls.certs[0].cert, PathBuf::from("a.crt"));
    assert_eq!(tls.certs[0].field("key"), "tls.key");
    assert!(tls.certs[0].names.is_empty());
}

#[test]
fn sni_certificates_keep_order_names_and_default() {
    let cfg = accept(&https(
        r#"{ certs = [{ cert = "a.crt", key = "a.key", names = ["A.Example"] }, { cert = "d.crt", key = "d.key" }, { cert = "b.crt", key = "b.key", names = ["*.b.example", "b.example"] }] }"#,
    ));
    let tls = cfg.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certs.len(), 3);
    assert_eq!(tls.certs[0].names, ["a.example"], "names are lower-cased");
    assert_eq!(tls.default, 1, "the entry without names is the default");
    assert_eq!(tls.certs[2].names, ["*.b.example", "b.example"]);
    assert_eq!(tls.certs[2].field("cert"), "tls.certs[2].cert");

    // Every entry named: the first is the default.
    let cfg = accept(&https(
        r#"{ certs = [{ cert = "a.crt", key = "a.key", names = ["a.example"] }, { cert = "b.crt", key = "b.key", names = ["b.example"] }] }"#,
    ));
    assert_eq!(cfg.listeners[0].tls.as_ref().unwrap().default, 0);
}

#[test]
fn tls_forms_cannot_be_mixed_or_left_empty() {
    let src = https(r#"{ cert = "a.crt", key = "a.key", certs = [] }"#);
    assert_says(
        &refused_at(&src, "listener[0].tls.certs", "certs"),
        "not both",
    );
    let src = https(r#"{ certs = [] }"#);
    assert_says(
        &refused_at(&src, "listener[0].tls.certs", "certs"),
        "at least one certificate",
    );
    let src = https(r#"{ cert = "a.crt" }"#);
    let err = refuse(&src);
    assert!(
        err.to_string().contains("listener[0].tls.key: required"),
        "{err}"
    );
}

#[test]
fn sni_names_are_checked() {
    let src = https(r#"{ certs = [{ cert = "a.crt", key = "a.key", names = ["bad name"] }] }"#);
    assert_says(
        &refused_at(&src, "listener[0].tls.certs[0].names", "names"),
        "`bad name` is not a host name",
    );
    let src = https(
        r#"{ certs = [{ cert = "a.crt", key = "a.key", names = ["x.example"] }, { cert = "b.crt", key = "b.key", names = ["X.example"] }] }"#,
    );
    let err = refuse(&src);
    assert!(
        err.to_string().contains(
            "listener[0].tls.certs[1].names: `x.example` is already served by tls.certs[0]"
        ),
        "{err}"
    );
    let src = https(
        r#"{ certs = [{ cert = "a.crt", key = "a.key" }, { cert = "b.crt", key = "b.key" }] }"#,
    );
    let err = refuse(&src);
    assert!(
        err.to_string()
            .contains("listener[0].tls.certs[1]: only one certificate may go without `names`"),
        "{err}"
    );
}

#[test]
fn tcp_listener_without_upstream() {
    let src = format!(
        "[[listener]]\nname = \"db\"\nlisten = \"127.0.0.1:5433\"\nprotocol = \"tcp\"\n{APP}"
    );
    let msg = refused_at(&src, "listener[0].protocol", "protocol");
    assert_says(&msg, "a tcp listener needs `upstream = \"name\"`");
}

#[test]
fn unknown_protocol_is_the_only_complaint_about_that_listener() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\nprotocol = \"htps\"\ntls = {{ cert = \"a.crt\", key = \"a.key\" }}\n[[route]]\nupstream = \"app\"\n{APP}"
    );
    let err = refuse(&src);
    assert_says(
        &problem_at(&err, &src, "listener[0].protocol", "protocol"),
        "`htps` is not a protocol",
    );
    assert_eq!(err.problems().len(), 1, "{err}");
}

#[test]
fn listener_with_no_route() {
    let src = format!(
        r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[listener]]
name = "other"
listen = "127.0.0.1:8081"

[[route]]
listener = "web"
upstream = "app"
{APP}"#
    );
    let msg = refused_at(&src, "listener[1].name", "name = \"other\"");
    assert_says(&msg, "no [[route]] serves listener `other`");
}

#[test]
fn a_file_without_listeners_is_refused() {
    // An empty or truncated file must not pass a reload and close every port.
    let err = refuse("");
    assert_eq!(err.problems().len(), 1);
    assert!(
        err.to_string()
            .starts_with("file.toml: listener: no [[listener]] is defined"),
        "{err}"
    );
}

#[test]
fn listeners_may_not_share_a_port() {
    let src = format!(
        r#"
[admin]
listen = "127.0.0.1:9900"

[[listener]]
name = "a"
listen = "0.0.0.0:8080"

[[listener]]
name = "b"
listen = "127.0.0.1:8080"

[[listener]]
name = "c"
listen = "0.0.0.0:9900"

[[listener]]
name = "d"
listen = "127.0.0.2:8081"

[[route]]
upstream = "app"
{APP}"#
    );
    let err = refuse(&src);
    assert_says(
        &problem_at(
            &err,
            &src,
            "listener[1].listen",
            "listen = \"127.0.0.1:8080\"",
        ),
        "collides with listener[0] (0.0.0.0:8080)",
    );
    assert_says(
        &problem_at(
            &err,
            &src,
            "listener[2].listen",
            "listen = \"0.0.0.0:9900\"",
        ),
        "collides with admin.listen (127.0.0.1:9900)",
    );
    assert_eq!(err.problems().len(), 2, "{err}");
}

#[test]
fn port_zero_listeners_never_collide() {
    let src = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\n[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:0\"\n[[route]]\nupstream = \"app\"\n{APP}"
    );
    assert_eq!(accept(&src).listeners.len(), 2);
}
