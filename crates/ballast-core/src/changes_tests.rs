//! Tests of `changes`: the merge, the one-line descriptions, marker checks and drift.

use super::*;
use crate::event::{Origin, Stamped};
use crate::history::ConfigOutcome;

fn marker(id: u64, at: u64) -> Change {
    Change {
        id,
        marker: NewChange {
            kind: ChangeKind::Deploy,
            service: Some("shop".into()),
            version: Some("1.2.3".into()),
            summary: "shop 1.2.3\nwith notes".into(),
            author: Some("ci".into()),
            url: Some("https://ci.example/1".into()),
            at_unix_ms: at,
        },
    }
}

fn config(id: u64, at: u64, instance: &str, sha: &str, applied: bool) -> ConfigSummary {
    ConfigSummary {
        id,
        sha256: sha.into(),
        source: Origin::Signal,
        at_unix_ms: at,
        host: "h".into(),
        instance: instance.into(),
        outcome: if applied {
            ConfigOutcome::Applied
        } else {
            ConfigOutcome::Refused {
                error: "x.toml:1:1: bad\nmore".into(),
            }
        },
    }
}

fn stored(id: u64, at: u64, instance: &str, event: Event) -> StoredEvent {
    StoredEvent {
        id,
        instance: instance.into(),
        stamped: Stamped {
            seq: id,
            at_unix_ms: at,
            event,
        },
    }
}

fn drained(id: u64, at: u64) -> StoredEvent {
    stored(
        id,
        at,
        "i1",
        Event::ServerDrained {
            upstream: "app".into(),
            server: "10.0.0.1:80".into(),
            by: Origin::Cli,
            who: None,
        },
    )
}

fn applied(id: u64, at: u64, instance: &str, sha: &str) -> StoredEvent {
    stored(
        id,
        at,
        instance,
        Event::ReloadApplied {
            sha256: sha.into(),
            by: Origin::Signal,
            who: None,
            listeners_started: vec![],
            listeners_stopped: vec![],
            servers_added: 1,
            servers_removed: 0,
        },
    )
}

fn order(list: &[ChangeEntry]) -> Vec<(&'static str, u64)> {
    list.iter().map(|e| (e.type_name(), id(e))).collect()
}

#[test]
fn command_kinds_match_is_command() {
    let commands = [
        drained(1, 1).stamped.event,
        Event::ServerEnabled {
            upstream: "a".into(),
            server: "s".into(),
            by: Origin::Api,
            who: None,
        },
        applied(1, 1, "i", "x").stamped.event,
        Event::ReloadRefused {
            sha256: None,
            by: Origin::Api,
            who: None,
            error: "e".into(),
        },
        Event::CachePurged {
            route: "r".into(),
            prefix: None,
            removed: 1,
            who: None,
        },
        Event::ServerEjectOrdered {
            upstream: "a".into(),
            server: "s".into(),
            ejection_ms: 30_000,
            until_unix_ms: 1,
            by: Origin::Remediation,
            who: None,
        },
        Event::RouteRerouted {
            route: "r".into(),
            to: Some("sorry".into()),
            by: Origin::Remediation,
            who: None,
        },
        Event::ShedShareSet {
            class: "low".into(),
            share: Some(0.5),
            by: Origin::Remediation,
            who: None,
        },
    ];
    let lines: Vec<String> = commands[5..].iter().map(command_line).collect();
    assert_eq!(
        lines,
        [
            "ejected a s for 30s (remediation)",
            "route r serves its sorry page (remediation)",
            "shedding 50% of low (remediation)"
        ]
    );
    let mut kinds: Vec<String> = commands
        .iter()
        .inspect(|e| assert!(is_command(e), "{e:?}"))
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    kinds.sort();
    let mut listed = COMMAND_KINDS.map(String::from).to_vec();
    listed.sort();
    assert_eq!(kinds, listed);
    assert!(!is_command(&Event::BreakerOpened {
        upstream: "a".into(),
        server: "s".into()
    }));
}

#[test]
fn merge_is_newest_first_with_stable_ties() {
    let merged = merge(
        vec![marker(1, 100), marker(2, 300)],
        vec![
            config(7, 200, "i1", "a", true),
            config(8, 300, "i1", "b", false),
        ],
        vec![drained(40, 250), drained(41, 300)],
        100,
    );
    assert_eq!(
        order(&merged),
        [
            ("marker", 2),
            ("config", 8),
            ("command", 41),
            ("command", 40),
            ("config", 7),
            ("marker", 1)
        ]
    );
    let merged = merge(vec![marker(1, 100), marker(2, 300)], vec![], vec![], 1);
    assert_eq!(order(&merged), [("marker", 2)]);
    assert!(merge(vec![], vec![], vec![], 10).is_empty());
}

#[test]
fn non_commands_are_left_out() {
    let breaker = stored(
        5,
        10,
        "i1",
        Event::BreakerOpened {
            upstream: "a".into(),
            server: "s".into(),
        },
    );
    let merged = merge(vec![], vec![], vec![breaker, drained(6, 11)], 10);
    assert_eq!(order(&merged), [("command", 6)]);
}

#[test]
fn a_reload_shows_once_as_its_config_version() {
    // The config version recorded for a reload absorbs the gateway's event for it.
    let configs = vec![
        config(1, 1_000, "i1", "a", true),
        config(2, 5_000, "i1", "b", false),
    ];
    let refused = stored(
        11,
        4_990,
        "i1",
        Event::ReloadRefused {
            sha256: Some("b".into()),
            by: Origin::Cli,
            who: None,
            error: "bad".into(),
        },
    );
    let events = vec![applied(10, 990, "i1", "a"), refused];
    let merged = merge(vec![], configs.clone(), events, 10);
    assert_eq!(order(&merged), [("config", 2), ("config", 1)]);

    // Not absorbed: another instance, another sha256, too far apart, or a second event
    // for a version that already absorbed one.
    let events = vec![
        applied(20, 1_000, "i2", "a"),
        applied(21, 1_001, "i1", "c"),
        applied(22, 1_000 + RELOAD_MATCH_MS + 1_001, "i1", "a"),
        applied(23, 1_002, "i1", "a"),
        applied(24, 1_003, "i1", "a"),
    ];
    let merged = merge(vec![], configs, events, 10);
    let commands: Vec<u64> = merged
        .iter()
        .filter(|e| e.type_name() == "command")
        .map(id)
        .collect();
    assert_eq!(
        commands,
        [22, 24, 21, 20],
        "23 took version 1; 24 found it taken"
    );
}

#[test]
fn entries_are_tagged_by_source_and_round_trip() {
    let entries = vec![
        ChangeEntry::Marker(marker(1, 100)),
        ChangeEntry::Config(config(2, 200, "i1", "abc", false)),
        ChangeEntry::Command(drained(3, 300)),
    ];
    let json = serde_json::to_value(&entries).unwrap();
    assert_eq!(json[0]["type"], "marker");
    assert_eq!(json[0]["kind"], "deploy");
    assert_eq!(json[1]["type"], "config");
    assert_eq!(json[1]["source"], "signal");
    assert_eq!(json[1]["outcome"], "refused");
    assert_eq!(json[2]["type"], "command");
    assert_eq!(json[2]["kind"], "server_drained");
    assert_eq!(json[2]["upstream"], "app");
    let back: Vec<ChangeEntry> = serde_json::from_value(json).unwrap();
    assert_eq!(back, entries);
}

#[test]
fn one_line_descriptions() {
    let m = ChangeEntry::Marker(marker(1, 1));
    assert_eq!(m.what(), "deploy shop 1.2.3: shop 1.2.3");
    assert_eq!(m.who(), "ci");
    let c = ChangeEntry::Config(config(2, 1, "i1", "0123456789abcdef", true));
    assert_eq!(
        c.what(),
        "config version 2 applied (signal), sha256 0123456789ab"
    );
    assert_eq!(c.who(), "i1");
    let r = ChangeEntry::Config(config(3, 1, "i1", "x", false));
    assert_eq!(
        r.what(),
        "config version 3 refused (signal): x.toml:1:1: bad"
    );
    let d = ChangeEntry::Command(drained(4, 1));
    assert_eq!(d.what(), "drained app 10.0.0.1:80 (cli)");
}

#[test]
fn a_command_names_the_person_who_asked_when_known() {
    // Without a person (an open API, SIGHUP, a remediation): the instance, as before.
    let d = ChangeEntry::Command(drained(4, 1));
    assert_eq!(d.who(), "i1");
    let by_person = |event| ChangeEntry::Command(stored(5, 1, "i1", event));
    let d = by_person(Event::ServerDrained {
        upstream: "app".into(),
        server: "10.0.0.1:80".into(),
        by: Origin::Dashboard,
        who: Some("ana".into()),
    });
    assert_eq!(d.who(), "ana");
    assert_eq!(d.what(), "drained app 10.0.0.1:80 (dashboard)");
    let p = by_person(Event::CachePurged {
        route: "r".into(),
        prefix: None,
        removed: 2,
        who: Some("bo".into()),
    });
    assert_eq!(p.who(), "bo");
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["type"], "command");
    assert_eq!(json["who"], "ana");
    assert_eq!(json["by"], "dashboard");
    assert_eq!(serde_json::from_value::<ChangeEntry>(json).unwrap(), d);
}

fn new(summary: &str) -> NewChange {
    NewChange {
        kind: ChangeKind::Note,
        service: None,
        version: None,
        summary: summary.into(),
        author: None,
        url: None,
        at_unix_ms: 1_000,
    }
}

#[test]
fn markers_are_checked() {
    let now = 1_000;
    assert_eq!(check_marker(&new("ok"), now), Ok(()));
    assert_eq!(
        check_marker(&new("  \n"), now),
        Err(MarkerError::EmptySummary)
    );
    let long = "é".repeat(MAX_SUMMARY + 1);
    assert!(matches!(
        check_marker(&new(&long), now),
        Err(MarkerError::TooLong {
            field: "summary",
            ..
        })
    ));
    assert_eq!(check_marker(&new(&"é".repeat(MAX_SUMMARY)), now), Ok(()));
    assert_eq!(
        check_marker(&new("a\u{1b}[31m"), now),
        Err(MarkerError::Control("summary"))
    );
    let with = |f: fn(&mut NewChange)| {
        let mut c = new("ok");
        f(&mut c);
        check_marker(&c, now)
    };
    assert_eq!(
        with(|c| c.service = Some(String::new())),
        Err(MarkerError::Empty("service"))
    );
    assert_eq!(
        with(|c| c.author = Some("a\nb".into())),
        Err(MarkerError::Control("author"))
    );
    assert!(matches!(
        with(|c| c.version = Some("v".repeat(MAX_FIELD + 1))),
        Err(MarkerError::TooLong {
            field: "version",
            ..
        })
    ));
    for bad in ["javascript:alert(1)", "ftp://x", "https://", "http://a b"] {
        let mut c = new("ok");
        c.url = Some(bad.into());
        assert_eq!(
            check_marker(&c, now),
            Err(MarkerError::Url(bad.into())),
            "{bad}"
        );
    }
    assert_eq!(with(|c| c.url = Some("HTTPS://ci/1".into())), Ok(()));
    assert_eq!(with(|c| c.at_unix_ms = 1_000 + MAX_FUTURE_MS), Ok(()));
    assert!(matches!(
        with(|c| c.at_unix_ms = 1_001 + MAX_FUTURE_MS),
        Err(MarkerError::Future { .. })
    ));
    assert_eq!(marker_kind("flag"), Ok(ChangeKind::Flag));
    let e = marker_kind("deploys").unwrap_err();
    assert!(
        e.to_string().contains("deploy, flag, data, infra, note"),
        "{e}"
    );
}

fn inst(name: &str, sha: &str, seen: u64) -> Instance {
    Instance {
        instance: name.into(),
        host: "h".into(),
        config_sha256: sha.into(),
        first_seen_unix_ms: 0,
        last_seen_unix_ms: seen,
    }
}

#[test]
fn drift_report() {
    let alone = DriftReport::assess("a", vec![inst("a", "x", 100)], 50);
    assert!(alone.in_agreement);
    assert!(alone.differing.is_empty());
    assert_eq!(alone.instances.len(), 1);

    let two = vec![
        inst("a", "x", 100),
        inst("b", "y", 100),
        inst("old", "z", 10),
    ];
    let r = DriftReport::assess("a", two, 50);
    assert_eq!(r.differing, ["a", "b"]);
    assert!(!r.in_agreement);
    assert_eq!(r.instances.len(), 2, "gone instances are not listed");

    let three = vec![
        inst("a", "x", 100),
        inst("b", "y", 100),
        inst("c", "x", 100),
    ];
    assert!(DriftReport::assess("a", three.clone(), 50).in_agreement);
    assert!(!DriftReport::assess("b", three, 50).in_agreement);

    // Its own heartbeat never arrived: nothing is known about it.
    let r = DriftReport::assess("me", vec![inst("a", "x", 100)], 50);
    assert!(!r.in_agreement);
}
