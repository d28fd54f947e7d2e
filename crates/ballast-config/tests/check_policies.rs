//! `ballast check` on route policies: the retry contract and sorry page, priority classes and
//! the concurrency limit, waiting rooms, response caches.

use std::path::PathBuf;
use std::time::Duration;

mod support;
use support::*;

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
