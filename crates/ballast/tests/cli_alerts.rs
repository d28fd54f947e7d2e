//! `ballast alerts`, `ballast ack` and `ballast silence add | list | expire` against a real
//! gateway.
//!
//! The gateway runs a `process` monitor looking for a process that does not exist and a `min`
//! rule on its count, so an alert fires critical within a few seconds of start. The CLI then
//! lists it, acknowledges it, silences it, lists and expires the silence; each step is checked
//! through the CLI's own output (table and `--json`). Bad input (a matcher that does not parse,
//! an alert or silence that does not exist) exits non-zero with the reason.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const RULE: &str = "job-missing";

fn config(port: u16) -> String {
    // `[x]` so that the pattern does not match a command line that contains the pattern itself.
    format!(
        r#"{}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "127.0.0.1:9" }}]

[[monitor]]
name = "job"
kind = "process"
cmdline = "no-such-process-[x]yz"
interval = "200ms"

[[rule]]
name = "{RULE}"
monitor = "job"
value = "count"
min = {{ below = 1 }}
"#,
        preamble(port)
    )
}

/// Runs the CLI against `gw`; panics (with its output) unless it exits 0; returns stdout.
fn ok(gw: &Gateway, args: &[&str]) -> String {
    let admin = gw.admin.to_string();
    let mut all = args.to_vec();
    all.extend(["--admin", &admin]);
    let (code, out, err) = cli(&all);
    assert_eq!(code, Some(0), "ballast {args:?}: {out}{err}");
    out
}

/// Runs the CLI against `gw` expecting failure; returns (exit code, stderr).
fn fails(gw: &Gateway, args: &[&str]) -> (Option<i32>, String) {
    let admin = gw.admin.to_string();
    let mut all = args.to_vec();
    all.extend(["--admin", &admin]);
    let (code, out, err) = cli(&all);
    assert_ne!(code, Some(0), "ballast {args:?} should fail: {out}{err}");
    assert!(code.is_some(), "ballast {args:?} died of a signal: {err}");
    (code, err)
}

/// Our rule's alert, from `ballast alerts --json`.
fn our_alert(gw: &Gateway) -> Option<Value> {
    let out = ok(gw, &["alerts", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    list.into_iter().find(|a| a["rule"] == RULE)
}

/// Waits until monitoring answers: it starts once the store has given back the alerts and
/// silences it kept, and until then the API answers 503 (which the CLI reports and exits 1).
fn wait_monitoring(gw: &Gateway) {
    let admin = gw.admin.to_string();
    wait_until("monitoring to answer", Duration::from_secs(20), || {
        let (code, _, err) = cli(&["alerts", "--admin", &admin]);
        assert!(
            code == Some(0) || err.contains("503"),
            "ballast alerts: {err}"
        );
        code == Some(0)
    });
}

/// Our rule's line of the `ballast alerts` table.
fn our_line(gw: &Gateway, args: &[&str]) -> Option<String> {
    let mut all = vec!["alerts"];
    all.extend(args);
    ok(gw, &all)
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(RULE))
        .map(str::to_string)
}

fn flag(alert: &Value, name: &str) -> bool {
    alert[name]
        .as_bool()
        .unwrap_or_else(|| panic!("{name} in {alert}"))
}

#[test]
fn list_ack_silence_and_expire_through_the_cli() {
    let port = free_port();
    let gw = Gateway::start("cli-alerts", &config(port));
    wait_monitoring(&gw);
    wait_until(
        "the min rule to fire critical",
        Duration::from_secs(20),
        || our_alert(&gw).is_some_and(|a| a["state"] == "firing" && a["severity"] == "critical"),
    );

    // The table: id, firing/critical, the rule, value 0, not muted.
    let line = our_line(&gw, &[]).expect("our alert in the table");
    let cols: Vec<&str> = line.split_whitespace().collect();
    let id = cols[0].to_string();
    assert_eq!(cols[1], "firing/critical", "{line}");
    assert_eq!(cols[3], "0", "{line}");
    assert!(line.contains("  -  "), "no flags yet: {line}");
    assert_eq!(our_alert(&gw).unwrap()["id"], id.as_str());
    // --state filters on the API's side.
    assert!(our_line(&gw, &["--state", "firing"]).is_some());
    assert!(our_line(&gw, &["--state", "resolved"]).is_none());

    // Acknowledge: recorded with who and why; the table says so.
    let out = ok(&gw, &["ack", &id, "--comment", "x"]);
    assert!(out.contains(&format!("acknowledged alert {id}")), "{out}");
    assert!(out.contains("as cli"), "by defaults to the origin: {out}");
    let a = our_alert(&gw).unwrap();
    assert!(flag(&a, "acknowledged"), "{a}");
    assert_eq!(a["ack"]["by"], "cli", "{a}");
    assert_eq!(a["ack"]["comment"], "x", "{a}");
    assert!(flag(&a, "acknowledged") && !flag(&a, "silenced"), "{a}");
    let line = our_line(&gw, &[]).unwrap();
    assert!(line.contains(r#"acked by cli: "x""#), "{line}");
    // --by names the person.
    let out = ok(&gw, &["ack", &id, "--by", "alice"]);
    assert!(out.contains("as alice"), "{out}");

    // Silence it: the id alone on stdout; the alert shows silenced by it.
    let out = ok(
        &gw,
        &[
            "silence",
            "add",
            &format!("alertname=\"{RULE}\""),
            "--duration",
            "1h",
            "--comment",
            "test",
            "--author",
            "bob",
        ],
    );
    let silence: u64 = out
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {out:?}"));
    wait_until(
        "the alert to show silenced",
        Duration::from_secs(10),
        || our_alert(&gw).is_some_and(|a| flag(&a, "silenced")),
    );
    let a = our_alert(&gw).unwrap();
    assert_eq!(
        a["mute"]["silenced_by"],
        serde_json::json!([silence]),
        "{a}"
    );
    let line = our_line(&gw, &[]).unwrap();
    assert!(line.contains(&format!("silenced #{silence}")), "{line}");

    // It is listed, in force, with its matcher, author and comment.
    let list = ok(&gw, &["silence", "list"]);
    let row = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&silence.to_string()))
        .unwrap_or_else(|| panic!("silence {silence} listed: {list}"));
    assert!(row.contains(" active "), "{row}");
    assert!(row.contains(&format!("alertname=\"{RULE}\"")), "{row}");
    assert!(row.contains(" bob "), "{row}");
    assert!(row.ends_with("test"), "{row}");
    let json: Vec<Value> = serde_json::from_str(&ok(&gw, &["silence", "list", "--json"])).unwrap();
    assert!(json.iter().any(|s| s["id"] == silence), "{json:?}");

    // Expire it: the alert is no longer silenced; the silence is listed only with --expired.
    let out = ok(&gw, &["silence", "expire", &silence.to_string()]);
    assert!(out.contains(&format!("expired silence {silence}")), "{out}");
    wait_until(
        "the alert to be unsilenced",
        Duration::from_secs(10),
        || our_alert(&gw).is_some_and(|a| !flag(&a, "silenced")),
    );
    let a = our_alert(&gw).unwrap();
    assert_eq!(a["state"], "firing", "{a}");
    let listed = |args: &[&str]| {
        ok(&gw, args)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&silence.to_string()))
    };
    assert!(!listed(&["silence", "list"]));
    assert!(listed(&["silence", "list", "--expired"]));
}

#[test]
fn bad_input_exits_non_zero_with_the_reason() {
    let port = free_port();
    let gw = Gateway::start("cli-alerts-bad", &config(port));
    wait_monitoring(&gw);

    // A matcher that does not parse is refused before anything is sent.
    let (_, err) = fails(
        &gw,
        &[
            "silence",
            "add",
            "alertname",
            "--duration",
            "1h",
            "--comment",
            "c",
        ],
    );
    assert!(err.contains(r#"matcher "alertname""#), "{err}");
    assert!(err.contains("no operator"), "{err}");
    let (_, err) = fails(
        &gw,
        &[
            "silence",
            "add",
            r#"service=~"(shop""#,
            "--duration",
            "1h",
            "--comment",
            "c",
        ],
    );
    assert!(err.contains("service"), "{err}");
    let (_, err) = fails(
        &gw,
        &[
            "silence",
            "add",
            "a=b",
            "--duration",
            "soon",
            "--comment",
            "c",
        ],
    );
    assert!(err.contains("--duration"), "{err}");
    // Nothing was stored.
    assert!(ok(&gw, &["silence", "list", "--expired"]).lines().count() == 1);

    // An alert or silence that does not exist: the API's 404 and its message.
    let (_, err) = fails(&gw, &["ack", "no-such-alert", "--comment", "x"]);
    assert!(err.contains("404"), "{err}");
    assert!(err.contains("no alert no-such-alert"), "{err}");
    let (_, err) = fails(&gw, &["ack", "../../x y?", "--comment", "x"]);
    assert!(err.contains("404"), "{err}");
    let (_, err) = fails(&gw, &["silence", "expire", "999999"]);
    assert!(
        err.contains("404") && err.contains("no silence 999999"),
        "{err}"
    );
    // Not a number: refused by the argument parser.
    let (code, err) = fails(&gw, &["silence", "expire", "abc"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = fails(&gw, &["alerts", "--state", "burning"]);
    assert_eq!(code, Some(2), "{err}");

    // Nobody listening: a clear error, not a panic.
    let nobody = local(free_port()).to_string();
    let (code, _, err) = cli(&["alerts", "--admin", &nobody]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot reach the admin API"), "{err}");
}
