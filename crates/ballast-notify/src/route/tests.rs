//! Unit tests of routing: config parsing, validation, first match, `continue`, the default
//! route, time intervals and escalation.

use super::*;
use ballast_monitor::noise::{Days, MaintenanceSpec};

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn parse(toml_text: &str) -> Vec<RouteSpec> {
    #[derive(Deserialize)]
    struct File {
        notify: Vec<RouteSpec>,
    }
    let f: File = toml::from_str(toml_text).unwrap();
    f.notify
}

fn routes(toml_text: &str) -> Result<Routes, RouteError> {
    Routes::new(
        &parse(toml_text),
        &names(&["page", "chat", "mail", "second"]),
        &names(&["night", "hours"]),
    )
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().fold(Labels::new(), |l, (k, v)| l.with(*k, *v))
}

fn hits(r: &Routes, l: &Labels) -> Vec<usize> {
    r.matching(l).iter().map(|r| r.index()).collect()
}

const TREE: &str = r#"
[[notify]]
match = { severity = "critical", service = "shop" }
receivers = ["page"]

[[notify]]
match = { service = "~shop|cart" }
receivers = ["chat"]
continue = true

[[notify]]
match = { team = "web" }
receivers = ["chat"]

[[notify]]
receivers = ["mail"]
"#;

#[test]
fn first_match_wins() {
    let r = routes(TREE).unwrap();
    let crit = labels(&[
        ("severity", "critical"),
        ("service", "shop"),
        ("team", "web"),
    ]);
    assert_eq!(hits(&r, &crit), vec![1]);
    assert_eq!(r.matching(&crit)[0].receivers(), ["page".to_string()]);
}

#[test]
fn continue_lets_later_routes_match() {
    let r = routes(TREE).unwrap();
    // Route 2 continues; route 3 matches and stops before the default.
    let warn = labels(&[
        ("severity", "warning"),
        ("service", "cart"),
        ("team", "web"),
    ]);
    assert_eq!(hits(&r, &warn), vec![2, 3]);
    // Route 2 continues, route 3 does not match, the default catches it.
    let other = labels(&[("service", "shop"), ("team", "db")]);
    assert_eq!(hits(&r, &other), vec![2, 4]);
}

#[test]
fn regex_is_anchored_and_absent_is_empty() {
    let r = routes(TREE).unwrap();
    // "myshop" is not "shop|cart" as a whole value.
    assert_eq!(hits(&r, &labels(&[("service", "myshop")])), vec![4]);
    assert_eq!(hits(&r, &labels(&[])), vec![4]);
}

#[test]
fn no_match_without_default_route() {
    let r = routes(
        r#"
[[notify]]
match = { team = "web" }
receivers = ["chat"]
"#,
    )
    .unwrap();
    assert!(r.matching(&labels(&[("team", "db")])).is_empty());
    assert_eq!(hits(&r, &labels(&[("team", "web")])), vec![1]);
}

#[test]
fn defaults_depend_on_severity() {
    let r = routes(TREE).unwrap();
    let crit = r.routes()[0].group_spec();
    assert_eq!(crit.group_wait_ms, 0);
    assert_eq!(crit.group_interval_ms, 60_000);
    assert_eq!(crit.repeat_interval_ms, 4 * 3_600_000);
    assert_eq!(crit.group_by, vec!["alertname".to_string()]);
    assert_eq!(r.routes()[1].group_spec().group_wait_ms, 10_000);

    let r = routes(
        r#"
[[notify]]
match = { severity = "critical" }
receivers = ["page"]
group_by = ["alertname", "service"]
group_wait = "2s"
group_interval = "30s"
repeat = "1h"
"#,
    )
    .unwrap();
    let g = r.routes()[0].group_spec();
    assert_eq!(
        (g.group_wait_ms, g.group_interval_ms, g.repeat_interval_ms),
        (2000, 30_000, 3_600_000)
    );
    assert_eq!(
        g.group_by,
        vec!["alertname".to_string(), "service".to_string()]
    );
}

#[test]
fn validation_names_the_route() {
    let err = |text: &str| routes(text).unwrap_err();
    assert_eq!(
        err("[[notify]]\nreceivers = [\"pager\"]"),
        RouteError::UnknownReceiver {
            route: 1,
            name: "pager".to_string()
        }
    );
    assert_eq!(
        err("[[notify]]\nreceivers = []"),
        RouteError::NoReceivers { route: 1 }
    );
    assert_eq!(
        err("[[notify]]\nreceivers = [\"page\"]\nmute_when = [\"weekend\"]"),
        RouteError::UnknownWindow {
            route: 1,
            name: "weekend".to_string()
        }
    );
    assert!(matches!(
        err("[[notify]]\nmatch = { service = \"~(\" }\nreceivers = [\"page\"]"),
        RouteError::Matcher { route: 1, .. }
    ));
    assert!(matches!(
        err("[[notify]]\nreceivers = [\"page\"]\ngroup_interval = \"0s\""),
        RouteError::Group { route: 1, .. }
    ));
    assert_eq!(
        err("[[notify]]\nreceivers = [\"page\"]\nescalate = { after = \"10m\", to = [\"boss\"] }"),
        RouteError::UnknownReceiver {
            route: 1,
            name: "boss".to_string()
        }
    );
    assert_eq!(
        err("[[notify]]\nreceivers = [\"page\"]\nescalate = { after = \"0s\", to = [\"second\"] }"),
        RouteError::ZeroDuration {
            route: 1,
            field: "escalate.after"
        }
    );
    assert_eq!(
        err("[[notify]]\nreceivers = [\"page\"]\nescalate = { after = \"1m\", to = [] }"),
        RouteError::NoEscalationTarget { route: 1 }
    );
    assert_eq!(
        err("[[notify]]\nreceivers = [\"mail\"]\n[[notify]]\nreceivers = [\"page\"]"),
        RouteError::ShadowsLater { route: 1, next: 2 }
    );
    // A catch-all that continues hides nothing.
    assert!(routes(
        "[[notify]]\nreceivers = [\"mail\"]\ncontinue = true\n[[notify]]\nreceivers = [\"page\"]"
    )
    .is_ok());
}

#[test]
fn config_shape_is_strict() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct File {
        notify: Vec<RouteSpec>,
    }
    let bad = |text: &str| toml::from_str::<File>(text).unwrap_err().to_string();
    assert!(
        bad("[[notify]]\nreceivers = [\"a\"]\nrepeat_intervall = \"1h\"")
            .contains("repeat_intervall")
    );
    // Durations need their unit.
    assert!(bad("[[notify]]\nreceivers = [\"a\"]\ngroup_wait = \"10\"").contains("unit"));
    assert!(bad(
        "[[notify]]\nreceivers = [\"a\"]\nescalate = { after = \"1m\", to = [\"a\"], x = 1 }"
    )
    .contains("x"));
}

#[test]
fn escalation_selection() {
    let r = routes(
        r#"
[[notify]]
match = { severity = "critical" }
receivers = ["page"]
escalate = { after = "10m", to = ["second"] }
continue = true

[[notify]]
match = { service = "shop" }
receivers = ["chat"]
escalate = { after = "5m", to = ["second", "mail"] }
"#,
    )
    .unwrap();
    let crit = labels(&[("severity", "critical"), ("service", "shop")]);
    let c = Some(Severity::Critical);
    let ten_min = 600_000;
    // Not yet: under 5 minutes.
    assert!(r.escalations(&crit, c, false, 0, 299_999).is_empty());
    // Route 2's 5 minutes passed; route 1's 10 minutes not yet.
    assert_eq!(
        r.escalations(&crit, c, false, 0, 300_000),
        vec!["second", "mail"]
    );
    // Both due: each receiver once, in route order.
    assert_eq!(
        r.escalations(&crit, c, false, 0, ten_min),
        vec!["second", "mail"]
    );
    // Acknowledged, a warning, or resolved: never.
    assert!(r.escalations(&crit, c, true, 0, ten_min).is_empty());
    assert!(r
        .escalations(&crit, Some(Severity::Warning), false, 0, ten_min)
        .is_empty());
    assert!(r.escalations(&crit, None, false, 0, ten_min).is_empty());
    // Only from the routes that match.
    let other = labels(&[("severity", "critical"), ("service", "db")]);
    assert_eq!(
        r.escalations(&other, c, false, 0, 300_000),
        Vec::<&str>::new()
    );
    assert_eq!(r.escalations(&other, c, false, 0, ten_min), vec!["second"]);
    // A start in the far future or a huge delay does not overflow.
    assert!(r
        .escalations(&crit, c, false, u64::MAX, u64::MAX - 1)
        .is_empty());
}

#[test]
fn mute_and_active_windows() {
    let r = routes(
        r#"
[[notify]]
match = { team = "db" }
receivers = ["page"]
mute_when = ["night"]

[[notify]]
match = { team = "web" }
receivers = ["chat"]
active_when = ["hours"]

[[notify]]
receivers = ["mail"]
"#,
    )
    .unwrap();
    let [db, web, all] = r.routes() else {
        panic!("three routes")
    };
    let at = |active: &'static [&'static str]| move |name: &str, _now: u64| active.contains(&name);
    assert!(!db.muted_by(0, at(&[])));
    assert!(db.muted_by(0, at(&["night"])));
    assert!(web.muted_by(0, at(&[])));
    assert!(!web.muted_by(0, at(&["hours"])));
    assert!(web.muted_by(0, at(&["night"])));
    assert!(!all.muted_by(0, at(&["night", "hours"])));

    // With real weekly windows: "night" is 22:00-06:00 UTC every day.
    let spec = |name: &str, start: &str, duration: &str| MaintenanceSpec {
        name: name.to_string(),
        days: Days::One("mon-sun".to_string()),
        start: start.to_string(),
        duration: duration.parse().unwrap(),
        timezone: "UTC".to_string(),
        matchers: Some(BTreeMap::from([("x".to_string(), "y".to_string())])),
    };
    let windows =
        MaintenanceSet::new(&[spec("night", "22:00", "8h"), spec("hours", "09:00", "9h")]).unwrap();
    // 2026-11-30 (a Monday) 23:00 UTC and 12:00 UTC.
    let night = 1_796_079_600_000;
    let noon = night - 11 * 3_600_000;
    assert!(db.muted_at(&windows, night));
    assert!(!db.muted_at(&windows, noon));
    assert!(web.muted_at(&windows, night));
    assert!(!web.muted_at(&windows, noon));
}
