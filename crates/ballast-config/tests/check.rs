//! What `ballast check` tells an operator: real TOML text in, rendered errors out.
//!
//! Every refusal is asserted on the rendered line, `file:line:col: path: message`, with the line
//! and column computed from where the offending text sits in the source, so a test fails if the
//! path, the location or the advice is wrong. This file: units, unknown keys, references,
//! counts, the admin table, several problems at once. Listeners, upstreams and routes, route
//! policies and the examples have files of their own (`check_*.rs`).

use std::path::Path;

use ballast_config::ConfigError;

mod support;
use support::*;

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

// ── Admin ──────────────────────────────────────────────────────────────────────────────────

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
