//! The `[store]` table: the default SQLite file beside the config, relative and absolute
//! paths, PostgreSQL URLs, and refusals located at `store.url` with the fix.

use std::path::PathBuf;

use ballast_config::{Source, StoreUrl};

mod support;
use support::*;

fn with_store(table: &str) -> String {
    format!("{table}\n{ONE_LISTENER}{APP}")
}

#[test]
fn default_is_a_sqlite_file_beside_the_config() {
    let c = ballast_config::parse(&with_store(""), "/etc/ballast/ballast.toml").unwrap();
    let store = c.store.expect("a store by default");
    assert!(!store.explicit);
    assert_eq!(
        store.url,
        StoreUrl::Sqlite(PathBuf::from("/etc/ballast/ballast.db"))
    );
}

#[test]
fn relative_and_absolute_sqlite_paths() {
    let src = with_store("[store]\nurl = \"sqlite://data/history.db\"");
    let c = ballast_config::parse(&src, "/srv/gw/ballast.toml").unwrap();
    let store = c.store.unwrap();
    assert!(store.explicit);
    assert_eq!(
        store.url,
        StoreUrl::Sqlite(PathBuf::from("/srv/gw/data/history.db"))
    );
    let src = with_store("[store]\nurl = \"sqlite:///var/lib/ballast/b.db\"");
    let c = ballast_config::parse(&src, "/srv/gw/ballast.toml").unwrap();
    assert_eq!(
        c.store.unwrap().url,
        StoreUrl::Sqlite(PathBuf::from("/var/lib/ballast/b.db"))
    );
}

#[test]
fn postgres_url_is_kept_and_never_printed() {
    let url = "postgres://ballast:s3cret@db.internal:5432/ops";
    let c = accept(&with_store(&format!("[store]\nurl = \"{url}\"")));
    let store = c.store.unwrap();
    assert_eq!(store.url, StoreUrl::Postgres(url.to_string()));
    assert!(!format!("{store:?}").contains("s3cret"));
}

#[test]
fn bad_urls_are_refused_at_the_key_with_the_fix() {
    for (url, says) in [
        ("mysql://db/ops", "`mysql` is not a supported store"),
        ("ballast.db", "is not a store URL"),
        ("sqlite://", "must name a SQLite file"),
        ("sqlite://x.db?mode=ro", "must name a SQLite file"),
        ("postgres://", "names no PostgreSQL server"),
    ] {
        let src = with_store(&format!("[store]\nurl = \"{url}\""));
        let msg = refused_at(&src, "store.url", &format!("url = \"{url}\""));
        assert_says(&msg, says);
        assert_says(&msg, "sqlite://ballast.db");
    }
    let src = with_store("[store]\npath = \"x.db\"");
    assert_says(&refuse(&src).to_string(), "unknown field `path`");
}

#[test]
fn the_embedded_demo_has_no_store_unless_it_asks() {
    let text: &'static str = Box::leak(with_store("").into_boxed_str());
    assert_eq!(Source::Embedded(text).load().unwrap().config.store, None);
    let text: &'static str =
        Box::leak(with_store("[store]\nurl = \"sqlite:///tmp/demo.db\"").into_boxed_str());
    let store = Source::Embedded(text).load().unwrap().config.store.unwrap();
    assert_eq!(store.url, StoreUrl::Sqlite(PathBuf::from("/tmp/demo.db")));
}

#[test]
fn spool_and_retention_have_defaults_and_bounds() {
    let c = accept(&with_store(""));
    let store = c.store.unwrap();
    assert_eq!(store.spool, 100_000);
    assert_eq!(store.retention.events.as_secs(), 90 * 86_400);
    assert_eq!(store.retention.changes.as_secs(), 400 * 86_400);
    assert_eq!(store.retention.config_versions.as_secs(), 400 * 86_400);

    let src = with_store(
        "[store]\nspool = 500\nretention = { events = \"7d\", changes = \"30d\", config_versions = \"2h\" }",
    );
    let store = accept(&src).store.unwrap();
    assert_eq!(store.spool, 500);
    assert_eq!(store.retention.events.as_secs(), 7 * 86_400);
    assert_eq!(store.retention.changes.as_secs(), 30 * 86_400);
    assert_eq!(store.retention.config_versions.as_secs(), 7200);

    // "90s" for "90d" would empty the history on the next pruning round.
    let src = with_store("[store]\nretention = { events = \"90s\" }");
    let msg = refused_at(&src, "store.retention.events", "events = \"90s\"");
    assert_says(&msg, "shorter than an hour");
    let msg = refused_at(
        &with_store("[store]\nspool = 0"),
        "store.spool",
        "spool = 0",
    );
    assert_says(&msg, "between 1 and");
}

#[test]
fn off_means_no_store() {
    let c = accept(&with_store("[store]\nurl = \"off\""));
    assert_eq!(c.store, None);
}
