//! `[[remedy]]`, `[remediation]`, `[incident]`, `[review]` and a route's `function`: what the config keeps
//! of them, and the refusals, each at its table's line — including an `exec` whose program
//! holds a placeholder, refused at load so that an alert's labels can never choose what runs.

use ballast_config::FunctionScope;
use ballast_incident::severity::Sev;

mod support;
use support::*;

const RECEIVER: &str =
    "\n[[receiver]]\nname = \"ops\"\nwebhook = { url = \"https://hooks.example.com/x\" }\n";

fn with(tables: &str) -> String {
    format!("{ONE_LISTENER}{APP}{RECEIVER}\n{tables}")
}

const RESTART: &str = r#"
[[remedy]]
name = "restart-app"
when = { alert = "app-down", match = { service = "shop" }, severity = "critical" }
do = [{ restart = { command = ["systemctl", "restart", "app@{{port}}"] } }]
target = "{{server}}"
cooldown = "2m"
max_runs = { count = 2, per = "1h", rule_count = 5 }
escalate_after = 2
verify = "30s"
escalate_to = "ops"
"#;

#[test]
fn absent_tables_give_the_defaults() {
    let c = accept(&with(""));
    assert!(c.remedy.rules.is_empty());
    assert_eq!(c.remedy.rate.count, 10);
    assert_eq!(c.remedy.rate.per.get().as_secs(), 60);
    assert_eq!(c.incident, None);
    assert_eq!(c.routes[0].function, FunctionScope::Auxiliary);
}

#[test]
fn rules_rate_incident_and_function_are_kept() {
    let src = with(&format!(
        "{RESTART}\n[remediation]\nrate = {{ count = 4, per = \"5m\" }}\n\n[incident]\nopen_on = {{ severity = \"warning\", match = {{ service = \"~shop|cart\" }} }}\nreceivers = [\"ops\"]\njoin_window = \"10m\"\nmatrix = {{ all = {{ auxiliary = \"SEV1\", core = \"SEV1\" }} }}\n"
    ))
    .replace(
        "[[route]]\nupstream = \"app\"\n",
        "[[route]]\nupstream = \"app\"\nfunction = \"core\"\n",
    );
    let c = accept(&src);
    assert_eq!(c.remedy.rules.len(), 1);
    assert_eq!(c.remedy.rules[0].name, "restart-app");
    assert_eq!(c.remedy.rules[0].escalate_to.as_deref(), Some("ops"));
    assert_eq!(
        (c.remedy.rate.count, c.remedy.rate.per.get().as_secs()),
        (4, 300)
    );
    // What was kept builds the engine's rules without another error.
    ballast_remedy::rule::Rules::new(&c.remedy.rules, &["ops".to_string()].into()).unwrap();
    let incident = c.incident.as_ref().unwrap();
    assert_eq!(incident.receivers, ["ops"]);
    let compiled = incident.compile(&["ops".to_string()].into()).unwrap();
    assert_eq!(
        compiled
            .matrix
            .severity(ballast_incident::UserScope::All, FunctionScope::Auxiliary),
        Sev::Sev1
    );
    assert_eq!(c.routes[0].function, FunctionScope::Core);
    assert_eq!(c.function_scopes()["route-0"], FunctionScope::Core);
    assert_eq!(c.clone(), c, "the config stays comparable");
}

#[test]
fn a_placeholder_in_an_exec_program_is_refused_at_load() {
    let src = with(
        "[[remedy]]\nname = \"run-it\"\nwhen = { alert = \"app-down\" }\ndo = [{ exec = { argv = [\"{{command}}\", \"--now\"] } }]\n",
    );
    let m = refused_at(&src, "remedy[0].do[0]", "{ exec");
    assert!(m.contains("run-it") && m.contains("placeholder"), "{m}");
    // In an argument it is allowed: the label is checked against [A-Za-z0-9._:/-]+ at run time.
    accept(&src.replace(
        "\"{{command}}\", \"--now\"",
        "\"/usr/bin/kick\", \"{{server}}\"",
    ));
}

#[test]
fn each_broken_rule_is_refused_at_its_own_key() {
    let rule = |body: &str| with(&format!("[[remedy]]\nname = \"r\"\n{body}\n"));
    let act = "do = [{ restart = { command = [\"true\"] } }]";
    let m = refused_at(
        &rule(&format!("when = {{}}\n{act}")),
        "remedy[0].when",
        "when",
    );
    assert!(m.contains("needs `alert`, `event` or `match`"), "{m}");
    let m = refused_at(
        &rule("when = { alert = \"a\" }\ndo = []"),
        "remedy[0].do",
        "do",
    );
    assert!(m.contains("`do` is empty"), "{m}");
    let m = refused_at(
        &rule(&format!(
            "when = {{ alert = \"a\" }}\n{act}\nescalate_to = \"nobody\""
        )),
        "remedy[0].escalate_to",
        "escalate_to",
    );
    assert!(
        m.contains("\"nobody\"") && m.contains("[[receiver]]"),
        "{m}"
    );
    let m = refused_at(
        &rule(&format!(
            "when = {{ alert = \"a\", match = {{ service = \"~(\" }} }}\n{act}"
        )),
        "remedy[0].when.match",
        "match",
    );
    assert!(m.contains("when.match"), "{m}");
    let m = refused_at(
        &rule(&format!(
            "when = {{ alert = \"a\" }}\n{act}\nmax_runs = {{ count = 0, per = \"1h\" }}"
        )),
        "remedy[0].max_runs.count",
        "count",
    );
    assert!(m.contains("max_runs.count must be more than 0"), "{m}");
    let m = refused_at(
        &rule(&format!(
            "when = {{ alert = \"a\" }}\n{act}\ntarget = \"{{{{server\""
        )),
        "remedy[0].target",
        "target",
    );
    assert!(m.contains("target"), "{m}");
}

#[test]
fn every_problem_is_reported_and_duplicates_are_refused() {
    let src = with(&format!(
        "{RESTART}\n[[remedy]]\nname = \"restart-app\"\nwhen = {{ alert = \"x\" }}\ndo = [{{ restart = {{ command = [\"true\"] }} }}]\n\n[[remedy]]\nname = \"third\"\nwhen = {{}}\ndo = []\n\n[remediation]\nrate = {{ count = 0, per = \"1m\" }}\n"
    ));
    let err = refuse(&src);
    let second = src
        .match_indices("name = \"restart-app\"")
        .nth(1)
        .unwrap()
        .0;
    let line = src[..second].matches('\n').count() + 1;
    assert!(
        err.to_string().contains(&format!(
            "{FILE}:{line}:1: remedy[1].name: remedy \"restart-app\" is defined twice"
        )),
        "{err}"
    );
    assert!(err.to_string().contains("remedy[2].when"), "{err}");
    let m = problem_at(&err, &src, "remediation.rate", "rate = { count = 0");
    assert!(m.contains("more than 0"), "{m}");
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let e = refuse(&with(&format!("{RESTART}dryrun = true\n"))).to_string();
    assert!(e.contains("dryrun"), "{e}");
    let e = refuse(&with("[remediation]\nrate_limit = 1\n")).to_string();
    assert!(e.contains("rate_limit"), "{e}");
    let e = refuse(&with("[incident]\nopen_when = {}\n")).to_string();
    assert!(e.contains("open_when"), "{e}");
    let src = format!("{ONE_LISTENER}{APP}").replace(
        "upstream = \"app\"\n",
        "upstream = \"app\"\nfunction = \"vital\"\n",
    );
    let e = refuse(&src).to_string();
    assert!(
        e.contains("route[0].function") && e.contains("vital"),
        "{e}"
    );
}

#[test]
fn incident_problems_are_located_at_their_key() {
    let m = refused_at(
        &with("[incident]\nreceivers = [\"nobody\"]\n"),
        "incident.receivers",
        "receivers",
    );
    assert!(m.contains("\"nobody\" is not defined"), "{m}");
    assert!(!m.starts_with("incident."), "the path is not repeated: {m}");
    let m = refused_at(
        &with("[incident]\njoin_window = \"0s\"\n"),
        "incident.join_window",
        "join_window",
    );
    assert!(m.contains("more than 0s"), "{m}");
    let m = refused_at(
        &with("[incident]\nopen_on = { match = { service = \"~(\" } }\n"),
        "incident.open_on.match.service",
        "service",
    );
    assert!(!m.is_empty());
    let m = refused_at(
        &with("[incident]\njoin_on = [\"1x\"]\n"),
        "incident.join_on",
        "join_on",
    );
    assert!(m.contains("\"1x\""), "{m}");
    // A cell milder than its narrower neighbour: located at the matrix cell.
    let m = refused_at(
        &with("[incident]\nmatrix = { all = { whole = \"SEV4\" } }\n"),
        "incident.matrix.all.whole",
        "whole",
    );
    assert!(m.contains("must not make an incident milder"), "{m}");
}

#[test]
fn gateway_actions_must_name_an_existing_upstream_or_route() {
    let rule = |action: &str| {
        with(&format!(
            "[[remedy]]\nname = \"g\"\nwhen = {{ alert = \"a\" }}\ndo = [{action}]\n"
        ))
    };
    let m = refused_at(
        &rule("{ drain = { upstream = \"nope\", server = \"127.0.0.1:9001\" } }"),
        "remedy[0].do[0].drain.upstream",
        "upstream = \"nope\"",
    );
    assert_eq!(m, "no [[upstream]] is named `nope`");
    let m = refused_at(
        &rule("{ route = { route = \"route-0\", to = \"elsewhere\" } }"),
        "remedy[0].do[0].route.to",
        "to = ",
    );
    assert!(m.contains("`elsewhere`"), "{m}");
    let m = refused_at(
        &rule("{ route = { route = \"shop\", to = \"sorry\" } }"),
        "remedy[0].do[0].route.route",
        "route = \"shop\"",
    );
    assert_eq!(m, "no [[route]] is named `shop`");
    // Existing names, and names only known when the alert fires, are accepted.
    accept(&rule("{ route = { route = \"route-0\", to = \"sorry\" } }"));
    accept(&rule(
        "{ eject = { upstream = \"{{upstream}}\", server = \"{{server}}\", for = \"1m\" } }",
    ));
}

#[test]
fn review_defaults_and_refusals() {
    let c = accept(&with(""));
    assert_eq!(c.review.every.as_secs(), 7 * 86_400);
    assert_eq!(c.review.since.as_secs(), 30 * 86_400);
    assert!(c.review.enabled && c.review.receiver.is_none());
    let c = accept(&with(
        "[review]\nevery = \"1d\"\nsince = \"7d\"\nreceiver = \"ops\"\nenabled = false\n",
    ));
    assert_eq!(c.review.every.as_secs(), 86_400);
    assert_eq!(c.review.receiver.as_deref(), Some("ops"));
    assert!(!c.review.enabled);
    let src = with("[review]\nreceiver = \"nobody\"\n");
    assert_says(
        &refused_at(&src, "review.receiver", "receiver = \"nobody\""),
        "receiver \"nobody\" is not defined",
    );
    let src = with("[review]\nevery = \"1s\"\n");
    assert_says(
        &refused_at(&src, "review.every", "every = \"1s\""),
        "at least 10s",
    );
    let src = with("[review]\nsince = \"500d\"\n");
    assert_says(
        &refused_at(&src, "review.since", "since = \"500d\""),
        "from 1h to 400d",
    );
}
