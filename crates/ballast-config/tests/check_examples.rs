//! The files we ship are accepted as documented: every example parses, the demo is what the
//! binary promises, defaults are filled in, and `examples/full.toml` plus the docs cover every
//! key of the schema.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ballast_config::validate::defaults;
use ballast_config::{parse, AccessLog, Balance, Check, HashKey, Protocol};

mod support;
use support::*;

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
    &["store"],
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
    &["alerting"],
    &["receiver"],
    &["receiver", "rate"],
    &["notify"],
    &["notify", "escalate"],
    &["remedy"],
    &["remedy", "when"],
    &["remedy", "max_runs"],
    &["remediation"],
    &["remediation", "rate"],
    &["incident"],
    &["incident", "open_on"],
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
    let docs = ["configuration.md", "configuration-alerting.md"]
        .iter()
        .map(|f| std::fs::read_to_string(examples_dir().join("../docs").join(f)).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
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
                    "`{path}` is not documented in docs/configuration.md or docs/configuration-alerting.md"
                ));
            }
        }
    }
    assert!(total > 50, "only {total} keys found; is the probe working?");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
