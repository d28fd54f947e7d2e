//! `ballast check` on upstreams (health checks, balancing, hashing, stickiness) and on routes
//! (shadowed routes, match conditions, attempts).

use ballast_config::Check;

mod support;
use support::*;

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
