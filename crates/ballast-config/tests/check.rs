//! What `ballast check` tells an operator: real TOML text in, rendered errors out.
//!
//! Every refusal is asserted on the rendered line, `file:line:col: path: message`, with the line
//! and column computed from where the offending text sits in the source, so a test fails if the
//! path, the location or the advice is wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ballast_config::validate::defaults;
use ballast_config::{parse, AccessLog, Balance, Check, Config, ConfigError, HashKey, Protocol};

const FILE: &str = "file.toml";

/// A valid upstream section, appended to configs whose point lies elsewhere.
const APP: &str = r#"
[[upstream]]
name = "app"
servers = [{ addr = "127.0.0.1:9001" }, { addr = "127.0.0.1:9002" }]
"#;

fn accept(src: &str) -> Config {
    parse(src, FILE).unwrap_or_else(|e| panic!("refused:\n{e}\n--- source ---\n{src}"))
}

fn refuse(src: &str) -> ConfigError {
    match parse(src, FILE) {
        Ok(_) => panic!("accepted, but should have been refused:\n{src}"),
        Err(e) => e,
    }
}

/// 1-based line and column where `needle` starts; it must occur exactly once in `src`.
fn position(src: &str, needle: &str) -> (usize, usize) {
    assert_eq!(
        src.matches(needle).count(),
        1,
        "`{needle}` must occur once in:\n{src}"
    );
    let offset = src.find(needle).unwrap();
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, column)
}

/// Asserts that the rendered error has a line for `path` located where `needle` starts, and
/// returns that line's message.
fn problem_at(err: &ConfigError, src: &str, path: &str, needle: &str) -> String {
    let (line, column) = position(src, needle);
    let prefix = format!("{FILE}:{line}:{column}: {path}: ");
    let rendered = err.to_string();
    match rendered.lines().find(|l| l.starts_with(&prefix)) {
        Some(l) => l[prefix.len()..].to_string(),
        None => panic!("no line starting with `{prefix}` in:\n{rendered}"),
    }
}

/// Refuses `src` and returns the message located at `needle` for `path`.
fn refused_at(src: &str, path: &str, needle: &str) -> String {
    problem_at(&refuse(src), src, path, needle)
}

fn assert_says(message: &str, expected: &str) {
    assert!(
        message.contains(expected),
        "message `{message}` should contain `{expected}`"
    );
}

// ── Units ──────────────────────────────────────────────────────────────────────────────────

#[test]
fn bare_number_timeout_names_the_field_the_line_and_the_fix() {
    let src = format!(
        r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "app"
timeout = {{ connect = 300 }}
{APP}"#
    );
    let msg = refused_at(&src, "route[0].timeout.connect", "300 }");
    assert_says(&msg, "\"300ms\"");
    assert_says(&msg, "unit");
    // The line itself is what the operator sees first.
    assert!(refuse(&src)
        .to_string()
        .starts_with("file.toml:8:23: route[0].timeout.connect: "));
}

#[test]
fn bare_number_size_and_share_say_what_to_write() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\nmax_header_size = 65536\n[[route]]\nupstream = \"app\"\n{APP}"
    );
    let msg = refused_at(&src, "listener[0].max_header_size", "65536");
    assert_says(&msg, "\"65536B\"");

    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n{APP}passive = {{ max_ejected = 0.5 }}\n"
    );
    let msg = refused_at(&src, "upstream[0].passive.max_ejected", "0.5");
    assert_says(&msg, "\"50%\"");
    assert_says(&msg, "0.5");
}

#[test]
fn quoted_count_asks_for_a_whole_number() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\nretry = {{ attempts = \"2\" }}\n{APP}"
    );
    let msg = refused_at(&src, "route[0].retry.attempts", "\"2\"");
    assert_says(&msg, "whole number without quotes");
}

#[test]
fn zero_duration_is_refused_where_it_makes_no_sense() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\ntimeout = {{ response = \"0s\" }}\n{APP}"
    );
    let msg = refused_at(&src, "route[0].timeout.response", "response");
    assert_says(&msg, "longer than zero");
}

// ── Unknown keys ───────────────────────────────────────────────────────────────────────────

#[test]
fn unknown_top_level_key_is_named_and_located() {
    let src = format!(
        "threads = 4
{ONE_LISTENER}{APP}"
    );
    let msg = refused_at(&src, "threads", "threads");
    assert_says(&msg, "unknown field `threads`");
    assert_says(&msg, "`runtime`");

    let src = format!("{ONE_LISTENER}{APP}\n[colour]\nshade = 1\n");
    let msg = refused_at(&src, "colour", "colour");
    assert_says(&msg, "unknown field `colour`");
    assert_says(&msg, "`upstream`");
}

#[test]
fn unknown_key_in_a_route_is_named_and_located() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n[[route]]\nupstream = \"app\"\nretries = 2\n{APP}"
    );
    let msg = refused_at(&src, "route[1].retries", "retries");
    assert_says(&msg, "unknown field `retries`");
    assert_says(&msg, "`retry`");
}

#[test]
fn unknown_key_in_a_server_inline_table_is_named_and_located() {
    let src = r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [
  { addr = "127.0.0.1:9001" },
  { addr = "127.0.0.1:9002", wieght = 2 },
]
"#;
    let msg = refused_at(src, "upstream[0].servers[1].wieght", "wieght");
    assert_says(&msg, "unknown field `wieght`");
    assert_says(&msg, "`weight`");
}

#[test]
fn unknown_key_in_a_sub_table_is_named_and_located() {
    let src = r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{ addr = "127.0.0.1:9001" }]
[upstream.health]
path = "/healthz"
intreval = "1s"
"#;
    let msg = refused_at(src, "upstream[0].health.intreval", "intreval");
    assert_says(&msg, "unknown field `intreval`");
}

// ── References and names ───────────────────────────────────────────────────────────────────

#[test]
fn route_to_unknown_upstream() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"ap\"\n{APP}"
    );
    let msg = refused_at(&src, "route[0].upstream", "upstream = \"ap\"");
    assert_says(&msg, "no [[upstream]] is named `ap`");
}

#[test]
fn route_to_unknown_or_tcp_listener() {
    let src = format!(
        r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[listener]]
name = "raw"
listen = "127.0.0.1:8081"
protocol = "tcp"
upstream = "app"

[[route]]
listener = "wbe"
upstream = "app"

[[route]]
listener = "raw"
upstream = "app"

[[route]]
upstream = "app"
{APP}"#
    );
    let err = refuse(&src);
    assert_says(
        &problem_at(&err, &src, "route[0].listener", "listener = \"wbe\""),
        "no [[listener]] is named `wbe`",
    );
    assert_says(
        &problem_at(&err, &src, "route[1].listener", "listener = \"raw\""),
        "is a tcp listener",
    );
    assert_eq!(err.problems().len(), 2, "{err}");
}

#[test]
fn duplicate_upstream_names() {
    let src = r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{ addr = "127.0.0.1:9001" }]

[[upstream]]
name = "app"   # second
servers = [{ addr = "127.0.0.1:9002" }]
"#;
    let msg = refused_at(src, "upstream[1].name", "name = \"app\"   # second");
    assert_says(&msg, "`app` is used by an earlier [[upstream]]");
}

#[test]
fn duplicate_listener_names() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[listener]]\nname = \"web\" # again\nlisten = \"127.0.0.1:8081\"\n[[route]]\nupstream = \"app\"\n{APP}"
    );
    let msg = refused_at(&src, "listener[1].name", "name = \"web\" # again");
    assert_says(&msg, "`web` is used by an earlier [[listener]]");
}

#[test]
fn duplicate_route_names() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nname = \"a\"\nmatch = {{ path_prefix = \"/x\" }}\nupstream = \"app\"\n[[route]]\nname = \"a\" # again\nupstream = \"app\"\n{APP}"
    );
    let msg = refused_at(&src, "route[1].name", "name = \"a\" # again");
    assert_says(&msg, "`a` is used by an earlier [[route]]");
}

#[test]
fn a_listener_with_a_bad_address_keeps_the_indices_of_the_others() {
    // Listener 0 cannot be used; the duplicate is still reported as listener[2], where it is,
    // and the route naming listener 0 gets no second, misleading "no such listener".
    let src = format!(
        r#"
[[listener]]
name = "web"
listen = "nowhere"

[[listener]]
name = "admin-ish"
listen = "127.0.0.1:8081"

[[listener]]
name = "admin-ish" # again
listen = "127.0.0.1:8082"

[[route]]
listener = "web"
upstream = "app"

[[route]]
upstream = "app"
{APP}"#
    );
    let err = refuse(&src);
    assert_says(
        &problem_at(&err, &src, "listener[0].listen", "listen = \"nowhere\""),
        "is not an address",
    );
    problem_at(
        &err,
        &src,
        "listener[2].name",
        "name = \"admin-ish\" # again",
    );
    assert_eq!(err.problems().len(), 2, "{err}");
}

// ── Counts and weights ─────────────────────────────────────────────────────────────────────

#[test]
fn rise_zero_is_refused() {
    let src = format!(
        "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n{APP}health = {{ path = \"/\", rise = 0 }}\n"
    );
    let msg = refused_at(&src, "upstream[0].health.rise", "rise");
    assert_says(&msg, "must be between 1 and 100, got 0");
}

#[test]
fn negative_and_zero_weights_are_refused() {
    for w in ["-1", "0"] {
        let src = format!(
            "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nservers = [\n  {{ addr = \"127.0.0.1:9001\" }},\n  {{ addr = \"127.0.0.1:9002\", weight = {w} }},\n]\n"
        );
        let msg = refused_at(&src, "upstream[0].servers[1].weight", "weight");
        assert_says(&msg, &format!("must be at least 1, got {w}"));
        assert_says(&msg, "drain");
    }
}

#[test]
fn every_server_a_backup_is_refused() {
    let src = "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\nservers = [\n  { addr = \"127.0.0.1:9001\", backup = true },\n  { addr = \"127.0.0.1:9002\", backup = true },\n]\n";
    let msg = refused_at(src, "upstream[0].servers", "servers");
    assert_says(&msg, "every server is a backup");
}

#[test]
fn an_upstream_without_servers_is_refused() {
    let src = "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n[[upstream]]\nname = \"app\"\n";
    // Nothing to point at but the table itself.
    let msg = refused_at(src, "upstream[0].servers", "[[upstream]]");
    assert_says(&msg, "at least one server");
}

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

// ── Admin ──────────────────────────────────────────────────────────────────────────────────

const ONE_LISTENER: &str =
    "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n";

#[test]
fn admin_on_all_interfaces_without_a_token_is_refused() {
    let src = format!("[admin]\nlisten = \"0.0.0.0:9900\"\n{ONE_LISTENER}{APP}");
    let msg = refused_at(&src, "admin.listen", "listen = \"0.0.0.0:9900\"");
    assert_says(&msg, "not a loopback address");
    assert_says(&msg, "admin.token");
}

#[test]
fn admin_on_all_interfaces_with_a_token_is_accepted() {
    let src = format!(
        "[admin]\nlisten = \"0.0.0.0:9900\"\ntoken = \"s3cret-s3cret\"\n{ONE_LISTENER}{APP}"
    );
    let c = accept(&src);
    assert_eq!(c.admin.listen, "0.0.0.0:9900".parse().unwrap());
    assert_eq!(c.admin.token.as_deref(), Some("s3cret-s3cret"));
}

#[test]
fn empty_admin_token_is_refused() {
    let src = format!("[admin]\nlisten = \"0.0.0.0:9900\"\ntoken = \"\"\n{ONE_LISTENER}{APP}");
    assert_says(
        &refused_at(&src, "admin.token", "token"),
        "must not be empty",
    );
}

// ── Health, balancing, hashing ─────────────────────────────────────────────────────────────

#[test]
fn bad_status_ranges_in_health_expect() {
    for bad in ["600-700", "399-200", "2xx", "abc"] {
        let src =
            format!("{ONE_LISTENER}{APP}health = {{ path = \"/healthz\", expect = \"{bad}\" }}\n");
        let msg = refused_at(&src, "upstream[0].health.expect", "expect");
        assert_says(&msg, &format!("`{bad}` is not a status range"));
        assert_says(&msg, "\"200-399\"");
    }
    for good in ["200-299", "204", "100-599"] {
        accept(&format!(
            "{ONE_LISTENER}{APP}health = {{ path = \"/healthz\", expect = \"{good}\" }}\n"
        ));
    }
}

#[test]
fn health_timeout_longer_than_interval() {
    let src = format!("{ONE_LISTENER}{APP}health = {{ interval = \"1s\", timeout = \"2s\" }}\n");
    assert_says(
        &refused_at(&src, "upstream[0].health.timeout", "timeout"),
        "must not be longer than health.interval",
    );
}

#[test]
fn http_only_keys_on_a_tcp_check_are_named() {
    let src = format!("{ONE_LISTENER}{APP}health = {{ kind = \"tcp\", expect = \"200\" }}\n");
    let msg = refused_at(&src, "upstream[0].health.expect", "expect");
    assert_says(&msg, "does not apply to a tcp check");
    // Without `kind` and without `path`, the check is tcp too; the advice is to add a path.
    let src = format!("{ONE_LISTENER}{APP}health = {{ host = \"x.internal\" }}\n");
    assert_says(
        &refused_at(&src, "upstream[0].health.host", "host"),
        "add path =",
    );
}

#[test]
fn health_method_is_case_insensitive() {
    let c = accept(&format!(
        "{ONE_LISTENER}{APP}health = {{ path = \"/\", method = \"head\" }}\n"
    ));
    match &c.upstreams[0].health.as_ref().unwrap().check {
        Check::Http { method, .. } => assert_eq!(method, http::Method::HEAD),
        other => panic!("expected an http check, got {other:?}"),
    }
}

#[test]
fn bad_hash_key() {
    let src = format!("{ONE_LISTENER}{APP}balance = \"hash\"\nhash = {{ on = \"ip\" }}\n");
    let msg = refused_at(&src, "upstream[0].hash.on", "on =");
    assert_says(&msg, "`ip` is not a hash key");
    assert_says(&msg, "client-ip");
}

#[test]
fn hash_on_header_needs_a_valid_name_and_client_ip_takes_none() {
    let src = format!("{ONE_LISTENER}{APP}balance = \"hash\"\nhash = {{ on = \"header\" }}\n");
    assert_says(
        &refused_at(&src, "upstream[0].hash.on", "on ="),
        "needs `name = ",
    );

    let src = format!(
        "{ONE_LISTENER}{APP}balance = \"hash\"\nhash = {{ on = \"header\", name = \"X Bad\" }}\n"
    );
    assert_says(
        &refused_at(&src, "upstream[0].hash.name", "name = \"X Bad\""),
        "not a valid header name",
    );

    let src = format!("{ONE_LISTENER}{APP}balance = \"hash\"\nhash = {{ on = \"client-ip\", name = \"X-User\" }}\n");
    assert_says(
        &refused_at(&src, "upstream[0].hash.name", "name = \"X-User\""),
        "takes no name",
    );
}

#[test]
fn balance_hash_without_hash_table() {
    let src = format!("{ONE_LISTENER}{APP}balance = \"hash\"\n");
    let msg = refused_at(&src, "upstream[0].balance", "balance");
    assert_says(&msg, "needs `hash = { on = \"client-ip\" }`");
}

#[test]
fn hash_table_without_balance_hash() {
    let src = format!("{ONE_LISTENER}{APP}hash = {{ on = \"path\" }}\n");
    assert_says(
        &refused_at(&src, "upstream[0].hash", "hash"),
        "only applies with balance = \"hash\"",
    );
}

#[test]
fn unknown_algorithm_lists_the_choices() {
    let src = format!("{ONE_LISTENER}{APP}balance = \"random\"\n");
    let msg = refused_at(&src, "upstream[0].balance", "balance");
    assert_says(&msg, "`random` is not an algorithm");
    assert_says(&msg, "least-connections");
}

#[test]
fn sticky_cookie_name_is_checked() {
    let src = format!("{ONE_LISTENER}{APP}sticky = {{ cookie = \"my cookie\" }}\n");
    assert_says(
        &refused_at(&src, "upstream[0].sticky.cookie", "cookie ="),
        "not a cookie name",
    );
}

// ── Routes ─────────────────────────────────────────────────────────────────────────────────

#[test]
fn a_route_after_a_catch_all_can_never_match() {
    let src = format!(
        r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "app"

[[route]]   # shadowed
match = {{ path_prefix = "/api/" }}
upstream = "app"
{APP}"#
    );
    let msg = refused_at(&src, "route[1]", "[[route]]   # shadowed");
    assert_says(&msg, "can never match: route[0]");
}

#[test]
fn a_catch_all_for_one_listener_does_not_shadow_routes_for_others() {
    let src = format!(
        "[[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:8080\"\n[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:8081\"\n[[route]]\nlistener = \"a\"\nupstream = \"app\"\n[[route]]\nmatch = {{ path_prefix = \"/\" }}\nupstream = \"app\"\n{APP}"
    );
    assert_eq!(accept(&src).routes.len(), 2);
}

#[test]
fn match_conditions_are_checked() {
    let src = format!(
        r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
match = {{ host = "shop.example.com:8080", path_prefix = "api", method = ["GET", "G ET"], header = {{ name = "X Bad" }} }}
upstream = "app"

[[route]]
upstream = "app"
{APP}"#
    );
    let err = refuse(&src);
    assert_says(
        &problem_at(&err, &src, "route[0].match.host", "host"),
        "without a port: \"shop.example.com\"",
    );
    assert_says(
        &problem_at(&err, &src, "route[0].match.path_prefix", "path_prefix"),
        "must start with '/', e.g. \"/api\"",
    );
    assert_says(
        &problem_at(&err, &src, "route[0].match.method[1]", "\"G ET\""),
        "`G ET` is not an HTTP method",
    );
    assert_says(
        &problem_at(&err, &src, "route[0].match.header.name", "name = \"X Bad\""),
        "not a valid header name",
    );
    // The refused match is not mistaken for a catch-all shadowing route[1].
    assert_eq!(err.problems().len(), 4, "{err}");
}

#[test]
fn method_of_the_wrong_type_says_what_to_write() {
    let src = format!("{ONE_LISTENER}match = {{ method = 5 }}\n{APP}");
    let msg = refused_at(&src, "route[0].match.method", "5 }");
    assert_says(&msg, "[\"GET\", \"HEAD\"]");
}

#[test]
fn attempts_out_of_range() {
    let src = format!("{ONE_LISTENER}retry = {{ attempts = 0 }}\n{APP}");
    assert_says(
        &refused_at(&src, "route[0].retry.attempts", "attempts"),
        "must be between 1 and 10, got 0",
    );
}

// ── Several problems, syntax errors ────────────────────────────────────────────────────────

#[test]
fn every_semantic_problem_is_reported_in_file_order() {
    let src = r#"
[admin]
listen = "0.0.0.0:9900"

[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "nope"
retry = { attempts = 11 }

[[upstream]]
name = "app"
balance = "hash"
health = { path = "/healthz", rise = 0 }
servers = [{ addr = "127.0.0.1:9001", weight = 0 }]
"#;
    let err = refuse(src);
    let expected = [
        ("admin.listen", "listen = \"0.0.0.0:9900\""),
        ("route[0].upstream", "upstream = \"nope\""),
        ("route[0].retry.attempts", "attempts"),
        ("upstream[0].balance", "balance"),
        ("upstream[0].health.rise", "rise"),
        ("upstream[0].servers[0].weight", "weight"),
    ];
    for (path, needle) in expected {
        problem_at(&err, src, path, needle);
    }
    assert_eq!(err.problems().len(), expected.len(), "{err}");
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    let in_order: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths, in_order, "problems should be listed in file order");
    assert_eq!(err.to_string().lines().count(), expected.len());
}

#[test]
fn a_syntax_error_is_one_located_line() {
    let src = format!("{ONE_LISTENER}{APP}slow_start = \n");
    let err = refuse(&src);
    let rendered = err.to_string();
    assert_eq!(rendered.lines().count(), 1, "{rendered}");
    let (line, _) = position(&src, "slow_start");
    assert!(
        rendered.starts_with(&format!("{FILE}:{line}:")),
        "{rendered}"
    );
}

#[test]
fn a_missing_required_key_names_the_table() {
    let src = format!("{ONE_LISTENER}[[upstream]]\nservers = [{{ addr = \"127.0.0.1:9001\" }}]\n");
    let msg = refused_at(&src, "upstream[0]", "[[upstream]]");
    assert_says(&msg, "missing field `name`");
}

#[test]
fn an_unreadable_file_names_the_file() {
    let path = Path::new("/nonexistent/ballast.toml");
    let err = ballast_config::load(path).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/ballast.toml: cannot read: "),
        "{err}"
    );
}

// ── Accepted files ─────────────────────────────────────────────────────────────────────────

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_parses() {
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "basic.toml",
        "demo.toml",
        "full.toml",
        "hashing.toml",
        "https.toml",
        "tcp.toml",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "examples/{required} is missing: {names:?}"
        );
    }
    for f in &files {
        if let Err(e) = ballast_config::load(f) {
            panic!("{} is refused:\n{e}", f.display());
        }
    }
}

#[test]
fn demo_is_what_the_binary_promises() {
    let c = ballast_config::load(&examples_dir().join("demo.toml")).unwrap();
    assert_eq!(c.admin.listen, "127.0.0.1:9900".parse().unwrap());
    assert_eq!(c.access_log, AccessLog::Stdout);
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "web");
    assert_eq!(c.listeners[0].listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.listeners[0].protocol, Protocol::Http);

    let routes: Vec<_> = c.routes_for("web").collect();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0].matcher.path_prefix.as_deref(), Some("/api/"));
    assert_eq!(routes[0].upstream, "api");
    assert_eq!(
        routes[1].matcher,
        Default::default(),
        "the last route is the default route"
    );
    assert_eq!(routes[1].upstream, "web");

    let backends: Vec<std::net::SocketAddr> =
        ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]
            .map(|a| a.parse().unwrap())
            .to_vec();
    let web = c.upstream("web").unwrap();
    assert_eq!(web.balance, Balance::RoundRobin);
    assert_eq!(web.sticky.as_ref().unwrap().cookie, "BALLAST_SRV");
    assert_eq!(web.slow_start, Some(Duration::from_secs(10)));
    assert_eq!(
        web.servers
            .iter()
            .map(|s| s.addr.ip().unwrap())
            .collect::<Vec<_>>(),
        backends
    );
    assert_eq!(
        web.servers.iter().map(|s| s.backup).collect::<Vec<_>>(),
        [false, false, true]
    );

    let api = c.upstream("api").unwrap();
    assert_eq!(api.balance, Balance::LeastConnections);
    assert_eq!(
        api.servers
            .iter()
            .map(|s| s.addr.ip().unwrap())
            .collect::<Vec<_>>(),
        backends
    );
    assert!(api.servers.iter().all(|s| !s.backup));

    for u in [web, api] {
        let h = u.health.as_ref().unwrap();
        assert_eq!(
            (h.interval, h.timeout, h.rise, h.fall),
            (Duration::from_secs(1), Duration::from_millis(500), 2, 2)
        );
        match &h.check {
            Check::Http { path, .. } => assert_eq!(path, "/healthz"),
            other => panic!("{}: expected an http check, got {other:?}", u.name),
        }
    }
}

#[test]
fn hashing_example_hashes_by_header() {
    let c = ballast_config::load(&examples_dir().join("hashing.toml")).unwrap();
    assert_eq!(
        c.upstreams[0].balance,
        Balance::Hash(HashKey::Header(http::HeaderName::from_static(
            "x-tenant-id"
        )))
    );
}

#[test]
fn defaults_are_filled_in() {
    let c = accept(&format!(
        "[[listener]]\nname = \"web\"\nlisten = \"localhost:8080\"\n[[route]]\nupstream = \"app\"\n{APP}health = {{ path = \"/healthz\" }}\n"
    ));
    // Literal values as well as the named constants, so that a changed default shows up here
    // and in review of docs/configuration.md.
    assert_eq!(c.admin.listen, "127.0.0.1:9900".parse().unwrap());
    assert_eq!(c.admin.token, None);
    assert_eq!(c.access_log, AccessLog::Stdout);
    assert_eq!(c.runtime.threads, 0);
    assert_eq!(c.runtime.grace, Duration::from_secs(30));

    let l = &c.listeners[0];
    assert_eq!(
        l.listen,
        "127.0.0.1:8080".parse().unwrap(),
        "localhost means 127.0.0.1"
    );
    assert_eq!(l.protocol, Protocol::Http);
    assert_eq!(l.max_header_size, 64 * 1024);
    assert_eq!(l.max_headers, 100);
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.idle_timeout, Duration::from_secs(60));

    let r = &c.routes[0];
    assert_eq!(r.name, "route-0");
    assert_eq!(r.listener, None);
    assert_eq!(r.retry.attempts, 3);
    assert_eq!(r.retry.attempts, defaults::ATTEMPTS);
    assert_eq!(r.connect_timeout, Duration::from_secs(1));
    assert_eq!(r.connect_timeout, defaults::CONNECT_TIMEOUT);
    assert_eq!(r.response_timeout, Duration::from_secs(30));

    let u = &c.upstreams[0];
    assert_eq!(u.balance, Balance::RoundRobin);
    assert_eq!(u.sticky, None);
    assert_eq!(u.slow_start, None);
    assert_eq!(
        (u.pool.max_idle, u.pool.idle_timeout),
        (256, Duration::from_secs(60))
    );
    assert!(u.servers.iter().all(|s| s.weight == 1 && !s.backup));

    let h = u.health.as_ref().unwrap();
    assert_eq!(
        (h.interval, h.timeout, h.rise, h.fall),
        (Duration::from_secs(2), Duration::from_secs(1), 2, 3)
    );
    match &h.check {
        Check::Http {
            method,
            path,
            host,
            expect,
            body,
        } => {
            assert_eq!(method, http::Method::GET);
            assert_eq!(path, "/healthz");
            assert_eq!(host, &None);
            assert_eq!(expect, &(200..=399));
            assert_eq!(body, &None);
        }
        other => panic!("a health table with a path is an http check, got {other:?}"),
    }

    let p = u.passive.as_ref().expect("passive health is on by default");
    assert_eq!(p.consecutive_failures, 5);
    assert_eq!(
        (p.ejection, p.max_ejection),
        (Duration::from_secs(10), Duration::from_secs(300))
    );
    assert_eq!(p.max_ejected, 0.5);
}

#[test]
fn optional_features_switch_off_as_documented() {
    let c = accept(&format!(
        "[log]\naccess = \"off\"\n{ONE_LISTENER}{APP}passive = {{ enabled = false }}\nslow_start = \"0s\"\nhealth = {{ interval = \"5s\" }}\n"
    ));
    assert_eq!(c.access_log, AccessLog::Off);
    let u = &c.upstreams[0];
    assert_eq!(u.passive, None);
    assert_eq!(u.slow_start, None, "a zero slow start is no slow start");
    assert_eq!(
        u.health.as_ref().unwrap().check,
        Check::Tcp,
        "no path: a tcp check"
    );
    // Without a health table there are no active checks at all.
    assert_eq!(
        accept(&format!("{ONE_LISTENER}{APP}")).upstreams[0].health,
        None
    );
}

// ── full.toml and the docs cover the whole schema ──────────────────────────────────────────

/// Tables of the schema, as paths into examples/full.toml (first element of arrays).
const TABLES: &[&[&str]] = &[
    &[],
    &["admin"],
    &["log"],
    &["runtime"],
    &["listener"],
    &["listener", "timeout"],
    &["listener#1", "tls"],
    &["listener#3", "tls", "certs"],
    &["route"],
    &["route", "match"],
    &["route#1", "match", "header"],
    &["route", "timeout"],
    &["route", "retry"],
    &["route", "sorry"],
    &["route", "flood"],
    &["route#3", "waiting_room"],
    &["route", "cache"],
    &["upstream"],
    &["upstream#2", "hash"],
    &["upstream", "sticky"],
    &["upstream", "health"],
    &["upstream", "passive"],
    &["upstream", "breaker"],
    &["upstream", "limit"],
    &["upstream", "limit", "shed"],
    &["upstream", "pool"],
    &["upstream", "servers"],
];

/// The keys serde allows in one table, read from the "unknown field" message it gives for a
/// key that cannot exist — so this follows raw.rs without a hand-kept list.
fn schema_keys(full: &str, table: &[&str]) -> Vec<String> {
    let mut doc: toml_edit::DocumentMut = full.parse().unwrap();
    let mut item = doc.as_item_mut();
    for seg in table {
        let (key, index) = seg
            .split_once('#')
            .map_or((*seg, 0), |(k, i)| (k, i.parse().unwrap()));
        item = &mut item[key];
        item = match item {
            toml_edit::Item::ArrayOfTables(_) => &mut item[index],
            _ => item,
        };
    }
    let probe = toml_edit::value(1);
    match item {
        toml_edit::Item::ArrayOfTables(a) => {
            a.get_mut(0).unwrap().insert("zz_not_a_key", probe);
        }
        toml_edit::Item::Value(toml_edit::Value::Array(a)) => {
            let first = a.get_mut(0).unwrap().as_inline_table_mut().unwrap();
            first.insert("zz_not_a_key", 1.into());
        }
        other => {
            other
                .as_table_like_mut()
                .unwrap()
                .insert("zz_not_a_key", probe);
        }
    }
    let err = parse(&doc.to_string(), FILE).unwrap_err().to_string();
    let expected = err
        .split_once("unknown field `zz_not_a_key`, expected")
        .unwrap_or_else(|| panic!("{table:?}: unexpected error {err}"))
        .1;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every key used in a document, as dotted paths without array indices
/// (`upstream.servers.weight`).
fn used_keys(prefix: &str, table: &dyn toml_edit::TableLike, out: &mut Vec<String>) {
    for (key, item) in table.iter() {
        let path = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        match item {
            toml_edit::Item::ArrayOfTables(a) => a.iter().for_each(|t| used_keys(&path, t, out)),
            toml_edit::Item::Value(toml_edit::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_inline_table())
                .for_each(|t| used_keys(&path, t, out)),
            other => {
                if let Some(t) = other.as_table_like() {
                    used_keys(&path, t, out);
                }
            }
        }
        out.push(path);
    }
}

#[test]
fn full_example_and_docs_cover_every_key() {
    let full = std::fs::read_to_string(examples_dir().join("full.toml")).unwrap();
    let docs = std::fs::read_to_string(examples_dir().join("../docs/configuration.md")).unwrap();
    let doc: toml_edit::DocumentMut = full.parse().unwrap();
    let mut used = Vec::new();
    used_keys("", doc.as_table(), &mut used);
    let mut missing = Vec::new();
    let mut total = 0;
    for table in TABLES {
        let prefix: Vec<&str> = table.iter().map(|s| s.split('#').next().unwrap()).collect();
        for key in schema_keys(&full, table) {
            total += 1;
            let path = prefix
                .iter()
                .copied()
                .chain([key.as_str()])
                .collect::<Vec<_>>()
                .join(".");
            if !used.contains(&path) {
                missing.push(format!("`{path}` is not used in examples/full.toml"));
            }
            let documented = [
                format!("`{key}`"),
                format!("`[{key}]`"),
                format!("`[[{key}]]`"),
            ]
            .iter()
            .any(|form| docs.contains(form.as_str()));
            if !documented {
                missing.push(format!(
                    "`{path}` is not documented in docs/configuration.md"
                ));
            }
        }
    }
    assert!(total > 50, "only {total} keys found; is the probe working?");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

// ── Retry contract and sorry page ───────────────────────────────────────────────────────────

const WEB: &str = "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n";

#[test]
fn retry_policy_is_read_with_defaults_filled_in() {
    let src = format!("{WEB}[[route]]\nupstream = \"app\"\n{APP}");
    let r = &accept(&src).routes[0].retry;
    assert_eq!(r.attempts, 3);
    assert!(r.on_connect_failure && r.on_reset && !r.on_timeout);
    assert_eq!(r.on_status, vec![502, 503]);
    assert_eq!(r.budget, 0.1);
    assert_eq!(r.min_per_second, 5);

    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\nretry = {{ attempts = 2, on = [\"timeout\", \"504\"], budget = \"20%\", min_retries_per_second = 0, backoff = \"10ms..1s\", retry_after_max = \"3s\" }}\n{APP}"
    );
    let r = &accept(&src).routes[0].retry;
    assert_eq!(r.attempts, 2);
    assert!(!r.on_connect_failure && !r.on_reset && r.on_timeout);
    assert_eq!(r.on_status, vec![504]);
    assert_eq!(r.budget, 0.2);
    assert_eq!(r.min_per_second, 0);
    assert_eq!(r.backoff_base, std::time::Duration::from_millis(10));
    assert_eq!(r.backoff_max, std::time::Duration::from_secs(1));
    assert_eq!(r.retry_after_max, std::time::Duration::from_secs(3));
}

#[test]
fn retrying_a_4xx_or_an_unknown_outcome_is_refused() {
    let src = format!("{WEB}[[route]]\nupstream = \"app\"\nretry = {{ on = [\"503\", \"404\", \"sometimes\"] }}\n{APP}");
    let msg = refused_at(&src, "route[0].retry.on[1]", "\"404\"");
    assert_says(&msg, "4xx answers are never retried");
    let msg = refused_at(&src, "route[0].retry.on[2]", "\"sometimes\"");
    assert_says(&msg, "connect-failure");
}

#[test]
fn a_backoff_range_needs_two_ordered_durations() {
    for (bad, says) in [
        ("250ms..25ms", "the first duration is the smallest"),
        ("25..250", "write two durations with units"),
        ("25ms", "write two durations with units"),
    ] {
        let src =
            format!("{WEB}[[route]]\nupstream = \"app\"\nretry = {{ backoff = \"{bad}\" }}\n{APP}");
        let msg = refused_at(&src, "route[0].retry.backoff", "backoff");
        assert_says(&msg, says);
    }
}

#[test]
fn a_sorry_page_must_exist_and_only_replace_5xx() {
    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\nsorry = {{ page = \"no/such/page.html\" }}\n{APP}"
    );
    let msg = refused_at(&src, "route[0].sorry.page", "page =");
    assert_says(&msg, "cannot read");

    let src = format!("{WEB}[[route]]\nupstream = \"app\"\nsorry = {{ on = [\"404\"] }}\n{APP}");
    let msg = refused_at(&src, "route[0].sorry.on[0]", "\"404\"");
    assert_says(&msg, "not a 5xx status");

    let src = format!("{WEB}[[route]]\nupstream = \"app\"\nsorry = {{}}\n{APP}");
    let page = accept(&src).routes[0].sorry.clone().expect("sorry page");
    assert!(String::from_utf8_lossy(&page.body).contains("back soon"));
    assert_eq!(page.on_status, vec![502, 503, 504]);
    assert_eq!(page.retry_after, std::time::Duration::from_secs(30));
}

// ── Priority classes and the concurrency limit ──────────────────────────────────────────────

#[test]
fn priority_and_limit_are_read_with_defaults_filled_in() {
    use ballast_config::{LimitAlgorithm, Priority};
    let src = format!(
        "{WEB}[[route]]\nmatch = {{ path_prefix = \"/pay/\" }}\nupstream = \"app\"\npriority = \"critical\"\n[[route]]\nname = \"rest\"\nupstream = \"app\"\n{APP}limit = {{}}\n"
    );
    let c = accept(&src);
    assert_eq!(c.routes[0].priority, Priority::Critical);
    assert_eq!(c.routes[1].priority, Priority::Normal);
    let l = c.upstreams[0].limit.as_ref().expect("limit on");
    assert_eq!(l.algorithm, LimitAlgorithm::Gradient);
    assert_eq!((l.initial, l.min, l.max), (10, 4, 1000));
    assert_eq!(l.max_wait, Duration::from_millis(50));
    assert_eq!(l.shed, [0.0; 4]);

    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\n{APP}limit = {{ algorithm = \"fixed\", initial = 12, min = 2, max = 50, tolerance = 2.0, max_wait = \"1s\", max_queue = 0, retry_after = \"3s\", shed = {{ low = \"50%\", normal = \"10%\" }} }}\n"
    );
    let l = accept(&src).upstreams[0].limit.clone().unwrap();
    assert_eq!(l.algorithm, LimitAlgorithm::Fixed);
    assert_eq!((l.initial, l.min, l.max, l.max_queue), (12, 2, 50, 0));
    assert_eq!(l.tolerance, 2.0);
    assert_eq!(l.retry_after, Duration::from_secs(3));
    assert_eq!(l.shed, [0.0, 0.0, 0.1, 0.5]);
}

#[test]
fn impossible_priorities_and_limits_are_refused() {
    let src = format!("{WEB}[[route]]\nupstream = \"app\"\npriority = \"urgent\"\n{APP}");
    let msg = refused_at(&src, "route[0].priority", "priority =");
    assert_says(&msg, "write \"critical\", \"high\", \"normal\" or \"low\"");

    let src = format!("{WEB}[[route]]\nupstream = \"app\"\n{APP}limit = {{ min = 20, max = 10, tolerance = 0.5, algorithm = \"vegas\" }}\n");
    let err = refuse(&src);
    assert_says(
        &problem_at(&err, &src, "upstream[0].limit.max", "max = 10"),
        "must not be below limit.min (20)",
    );
    assert_says(
        &problem_at(&err, &src, "upstream[0].limit.tolerance", "tolerance"),
        "between 1.0 and 10.0",
    );
    assert_says(
        &problem_at(&err, &src, "upstream[0].limit.algorithm", "algorithm ="),
        "write \"gradient\" or \"fixed\"",
    );

    // Critical is never shed by share: the key does not exist.
    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\n{APP}limit = {{ shed = {{ critical = \"10%\" }} }}\n"
    );
    assert_says(&refuse(&src).to_string(), "unknown field `critical`");
    // A bare number for a share says to add the %.
    let src =
        format!("{WEB}[[route]]\nupstream = \"app\"\n{APP}limit = {{ shed = {{ low = 50 }} }}\n");
    assert_says(&refuse(&src).to_string(), "\"50%\"");
}

// ── Waiting room ────────────────────────────────────────────────────────────────────────────

/// A file in a fresh temporary directory, by absolute path.
fn temp_file(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-check-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn a_waiting_room_is_read_with_defaults_filled_in() {
    let src =
        format!("{WEB}[[route]]\nupstream = \"app\"\nwaiting_room = {{ capacity = 2 }}\n{APP}");
    let w = accept(&src).routes[0].waiting_room.clone().expect("room");
    assert_eq!(w.capacity, 2);
    assert_eq!(w.session, Duration::from_secs(600));
    assert_eq!(w.refresh, Duration::from_secs(5));
    assert_eq!(w.max_queue, 10_000);
    assert_eq!(w.cookie, "ballast_wr");
    assert_eq!((w.secret, w.page), (None, None));

    let key = temp_file("wr.key", b"0123456789abcdef0123\n");
    let page = temp_file("q.html", "Platz {{position}} — {{wait}}".as_bytes());
    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\nwaiting_room = {{ capacity = 500, session = \"90s\", refresh = \"2s\", max_queue = 7, cookie = \"line\", secret_file = \"{}\", page = \"{}\" }}\n{APP}",
        key.display(),
        page.display()
    );
    let w = accept(&src).routes[0].waiting_room.clone().expect("room");
    assert_eq!(
        (
            w.capacity,
            w.session,
            w.refresh,
            w.max_queue,
            w.cookie.as_str()
        ),
        (
            500,
            Duration::from_secs(90),
            Duration::from_secs(2),
            7,
            "line"
        )
    );
    // The trailing newline is not part of the key, and the key is never printed.
    assert_eq!(w.secret.as_ref().unwrap().0, b"0123456789abcdef0123");
    assert!(!format!("{w:?}").contains("0123456789"));
    assert_eq!(w.page.as_deref(), Some("Platz {{position}} — {{wait}}"));
}

#[test]
fn a_waiting_room_needs_a_capacity_and_sane_settings() {
    let src =
        format!("{WEB}[[route]]\nupstream = \"app\"\nwaiting_room = {{ session = \"1m\" }}\n{APP}");
    let msg = refused_at(&src, "route[0].waiting_room", "waiting_room =");
    assert_says(&msg, "`capacity` is required");

    for (bad, path, needle, says) in [
        ("capacity = 0", "capacity", "capacity", "between 1 and"),
        (
            "capacity = 1, refresh = \"500ms\"",
            "refresh",
            "refresh",
            "at least \"1s\"",
        ),
        ("capacity = 1, session = 600", "session", "600", "\"600ms\""),
        (
            "capacity = 1, max_queue = 0",
            "max_queue",
            "max_queue",
            "between 1 and",
        ),
        (
            "capacity = 1, cookie = \"a b\"",
            "cookie",
            "cookie",
            "not a cookie name",
        ),
        (
            "capacity = 1, page = \"no/such.html\"",
            "page",
            "page",
            "cannot read",
        ),
        (
            "capacity = 1, secret_file = \"no/such.key\"",
            "secret_file",
            "secret_file",
            "cannot read",
        ),
    ] {
        let src = format!("{WEB}[[route]]\nupstream = \"app\"\nwaiting_room = {{ {bad} }}\n{APP}");
        let msg = refused_at(&src, &format!("route[0].waiting_room.{path}"), needle);
        assert_says(&msg, says);
    }

    let short = temp_file("short.key", b"too short\n");
    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\nwaiting_room = {{ capacity = 1, secret_file = \"{}\" }}\n{APP}",
        short.display()
    );
    let msg = refused_at(&src, "route[0].waiting_room.secret_file", "secret_file");
    assert_says(&msg, "holds 9 bytes");
    assert_says(&msg, "at least 16");
}

#[test]
fn each_waiting_room_needs_its_own_cookie() {
    let src = format!(
        "{WEB}[[route]]\nname = \"a\"\nmatch = {{ path_prefix = \"/a/\" }}\nupstream = \"app\"\nwaiting_room = {{ capacity = 1 }}\n[[route]]\nname = \"b\"\nupstream = \"app\"\nwaiting_room = {{ capacity = 2 }}\n{APP}"
    );
    // The default cookie is not written: the line of the room is shown.
    let msg = refused_at(
        &src,
        "route[1].waiting_room.cookie",
        "waiting_room = { capacity = 2",
    );
    assert_says(&msg, "already the cookie of route[0]'s waiting room");

    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\nwaiting_room = {{ capacity = 1, cookie = \"SRV\" }}\n{APP}sticky = {{ cookie = \"SRV\" }}\n"
    );
    let msg = refused_at(
        &src,
        "route[0].waiting_room.cookie",
        "cookie = \"SRV\" }\n\n[",
    );
    assert_says(&msg, "sticky cookie of upstream `app`");
}

// ── Response cache ──────────────────────────────────────────────────────────────────────────

#[test]
fn a_cache_is_read_with_defaults_filled_in() {
    use ballast_config::CacheKeyPart;
    let src = format!("{WEB}[[route]]\nupstream = \"app\"\ncache = {{}}\n{APP}");
    let c = accept(&src).routes[0].cache.clone().expect("cache");
    assert_eq!(c.max_size, 64 << 20);
    assert_eq!(c.max_object, 1 << 20);
    assert_eq!(c.max_stale, Duration::from_secs(600));
    assert_eq!(
        c.key,
        vec![
            CacheKeyPart::Scheme,
            CacheKeyPart::Host,
            CacheKeyPart::Path,
            CacheKeyPart::Query
        ]
    );
    assert_eq!(c.stale_on, vec![500, 502, 503, 504]);

    let src = format!(
        "{WEB}[[route]]\nupstream = \"app\"\ncache = {{ max_size = \"8MiB\", max_object = \"64KiB\", max_stale = \"0s\", key = [\"path\", \"header:Accept-Language\", \"cookie:lang\"], stale_on = [\"503\"] }}\n{APP}"
    );
    let c = accept(&src).routes[0].cache.clone().expect("cache");
    assert_eq!((c.max_size, c.max_object), (8 << 20, 64 << 10));
    assert_eq!(c.max_stale, Duration::ZERO);
    assert_eq!(
        c.key,
        vec![
            CacheKeyPart::Path,
            CacheKeyPart::Header(http::header::ACCEPT_LANGUAGE),
            CacheKeyPart::Cookie("lang".into())
        ]
    );
    assert_eq!(c.stale_on, vec![503]);
    assert!(
        accept(&format!("{WEB}[[route]]\nupstream = \"app\"\n{APP}")).routes[0]
            .cache
            .is_none()
    );
}

#[test]
fn cache_sizes_must_fit_and_carry_units() {
    let route =
        |cache: &str| format!("{WEB}[[route]]\nupstream = \"app\"\ncache = {{ {cache} }}\n{APP}");
    let src = route("max_size = \"1MiB\", max_object = \"2MiB\"");
    let msg = refused_at(&src, "route[0].cache.max_object", "max_object");
    assert_says(&msg, "must not be larger than cache.max_size");
    let src = route("max_size = \"512KiB\"");
    let msg = refused_at(&src, "route[0].cache.max_size", "max_size");
    assert_says(&msg, "set max_object too");
    let src = route("max_size = \"0B\"");
    let msg = refused_at(&src, "route[0].cache.max_size", "max_size");
    assert_says(&msg, "larger than zero");
    let src = route("max_size = \"4GiB\", max_object = \"2GiB\"");
    let msg = refused_at(&src, "route[0].cache.max_object", "max_object");
    assert_says(&msg, "at most \"1GiB\"");
    let src = route("max_size = 1000");
    let msg = refused_at(&src, "route[0].cache.max_size", "1000");
    assert_says(&msg, "needs a unit");
}

#[test]
fn cache_keys_need_a_path_and_known_parts() {
    let route =
        |cache: &str| format!("{WEB}[[route]]\nupstream = \"app\"\ncache = {{ {cache} }}\n{APP}");
    let src = route("key = [\"host\", \"method\", \"header:bad header\"]");
    let err = refuse(&src);
    let msg = problem_at(&err, &src, "route[0].cache.key[1]", "\"method\"");
    assert_says(&msg, "not a key part");
    let msg = problem_at(&err, &src, "route[0].cache.key[2]", "\"header:bad header\"");
    assert_says(&msg, "not a key part");
    let msg = problem_at(&err, &src, "route[0].cache.key", "key =");
    assert_says(&msg, "must include \"path\"");
    let src = route("key = []");
    assert_says(
        &refused_at(&src, "route[0].cache.key", "key ="),
        "must not be empty",
    );
    let src = route("key = [\"path\", \"path\"]");
    assert_says(
        &refused_at(&src, "route[0].cache.key[1]", "\"path\"]"),
        "listed twice",
    );
    let src = route("stale_on = [\"503\", \"404\"]");
    let msg = refused_at(&src, "route[0].cache.stale_on[1]", "\"404\"");
    assert_says(&msg, "not a 5xx status");
    let src = route("ttl = \"5m\"");
    let msg = refused_at(&src, "route[0].cache.ttl", "ttl");
    assert_says(&msg, "unknown field");
}
