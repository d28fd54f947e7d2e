//! The remediation guard rails through a real gateway, with alerts sent in through the
//! Alertmanager webhook (so a test can fire any labels, hostile ones included):
//!
//! - dry-run executes nothing but records the run, with what would have run;
//! - cooldown: the same alert firing again within it is refused, and recorded as refused;
//! - injection: a label value `x; rm -rf /` never reaches a command; the run is refused and
//!   recorded, and a rule's other targets still work;
//! - gateway-side actions (`route` to the sorry page, `drain`) act on the running gateway
//!   and are recorded as commands by `remediation`.

mod brain_support;
mod common;

use std::path::Path;

use brain_support::*;
use common::*;
use serde_json::{json, Value};

fn send(gw: &Gateway, alertname: &str, labels: Value, status: &str) {
    let mut l = labels;
    l["alertname"] = json!(alertname);
    l["severity"] = json!("critical");
    let mut alert = json!({
        "status": status,
        "labels": l,
        "startsAt": "2026-11-30T20:00:00Z",
    });
    if status == "resolved" {
        alert["endsAt"] = json!("2026-11-30T20:30:00Z");
    }
    let body = json!({ "version": "4", "status": status, "alerts": [alert] }).to_string();
    let (code, text) = raw_http(
        gw.admin,
        &format!(
            "POST /api/v1/alertmanager HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!((200..300).contains(&code), "{code}: {text}");
}

fn gateway(name: &str, remedies: &str) -> (Gateway, std::net::SocketAddr, Backend) {
    let port = free_port();
    let backend = Backend::start(&format!("{name}-b"));
    let config = format!(
        r#"{preamble}
[alerting]
default_rules = false

[[route]]
name = "shop"
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "{addr}" }}]

{remedies}
"#,
        preamble = preamble(port),
        addr = backend.addr,
    );
    (start_brain(name, &config), local(port), backend)
}

fn runs_of(gw: &Gateway, rule: &str) -> Vec<Value> {
    remediations(gw, &format!("?rule={rule}")).0
}

#[test]
fn dry_run_executes_nothing_but_records_what_would_have_run() {
    let dir = scratch("remedy-dry-files");
    let (gw, _, _b) = gateway(
        "remedy-dry",
        &format!(
            r#"[[remedy]]
name = "touch-dry"
when = {{ alert = "Disk" }}
target = "{{{{host}}}}"
dry_run = true
do = [{{ exec = {{ argv = ["/usr/bin/touch", "{dir}/{{{{host}}}}"] }} }}]
"#,
            dir = dir.display()
        ),
    );
    send(&gw, "Disk", json!({ "host": "web1" }), "firing");
    wait_until("the dry run recorded", WAIT, || {
        !runs_of(&gw, "touch-dry").is_empty()
    });
    let runs = runs_of(&gw, "touch-dry");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let r = &runs[0];
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["result"], "ok");
    assert_eq!(r["target"], "web1");
    let out = r["steps"][0]["output"].as_str().unwrap();
    assert_eq!(
        out,
        format!("would run: /usr/bin/touch {}/web1", dir.display())
    );
    assert!(!dir.join("web1").exists(), "a dry run executes nothing");
    let events = gw.events_of("remediation_ran");
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["dry_run"], true);
}

#[test]
fn cooldown_refuses_the_same_target_again_and_records_it() {
    let dir = scratch("remedy-cool-files");
    let (gw, _, _b) = gateway(
        "remedy-cool",
        &format!(
            r#"[[remedy]]
name = "mark"
when = {{ alert = "Queue" }}
target = "{{{{queue}}}}"
cooldown = "1h"
do = [{{ exec = {{ argv = ["/bin/mkdir", "{dir}/{{{{queue}}}}-{{{{round}}}}"] }} }}]
"#,
            dir = dir.display()
        ),
    );
    send(
        &gw,
        "Queue",
        json!({ "queue": "mail", "round": "1" }),
        "firing",
    );
    wait_until("the first run", WAIT, || runs_of(&gw, "mark").len() == 1);
    assert!(dir.join("mail-1").is_dir());
    // Another alert on the same target (a new episode) within the hour: refused.
    send(
        &gw,
        "Queue",
        json!({ "queue": "mail", "round": "2" }),
        "firing",
    );
    wait_until("the second run recorded", WAIT, || {
        runs_of(&gw, "mark").len() == 2
    });
    let runs = runs_of(&gw, "mark");
    let refused = &runs[0];
    assert_eq!(refused["result"], "refused", "{runs:#?}");
    assert_eq!(refused["target"], "mail");
    assert!(
        refused["reason"].as_str().unwrap().contains("cooldown"),
        "{refused:#}"
    );
    assert!(!dir.join("mail-2").exists(), "the cooldown held");
    // Another target is not held by it.
    send(
        &gw,
        "Queue",
        json!({ "queue": "jobs", "round": "1" }),
        "firing",
    );
    wait_until("the other target's run", WAIT, || {
        dir.join("jobs-1").is_dir()
    });
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "ballast_remediation_runs_total{rule=\"mark\",result=\"refused\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn a_hostile_label_never_reaches_a_command() {
    let dir = scratch("remedy-inject-files");
    let canary = dir.join("canary");
    std::fs::write(&canary, "still here").unwrap();
    let (gw, _, _b) = gateway(
        "remedy-inject",
        &format!(
            r#"[[remedy]]
name = "restart-unit"
when = {{ alert = "UnitDown" }}
target = "{{{{unit}}}}"
do = [{{ exec = {{ argv = ["/bin/mkdir", "{dir}/{{{{unit}}}}"] }} }}]
"#,
            dir = dir.display()
        ),
    );
    for hostile in ["x; rm -rf /", "$(touch /tmp/pwned)", "a b", "../../etc"] {
        send(&gw, "UnitDown", json!({ "unit": hostile }), "firing");
    }
    wait_until("four refusals", WAIT, || {
        runs_of(&gw, "restart-unit").len() == 4
    });
    for r in runs_of(&gw, "restart-unit") {
        assert_eq!(r["result"], "refused", "{r:#}");
        assert!(
            r["steps"].as_array().unwrap().is_empty(),
            "nothing ran: {r:#}"
        );
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains("unit"), "the label is named: {reason}");
    }
    assert!(canary.exists());
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the canary: {entries:?}");
    // A well-formed value still works.
    send(&gw, "UnitDown", json!({ "unit": "api.service" }), "firing");
    wait_until("the safe run", WAIT, || dir.join("api.service").is_dir());
    let events = gw.events_of("remediation_ran");
    assert_eq!(
        events.iter().filter(|e| e["result"] == "refused").count(),
        4,
        "{events:#?}"
    );
}

#[test]
fn gateway_side_actions_act_on_the_running_gateway() {
    let (gw, web, backend) = gateway(
        "remedy-gateway",
        r#"[[remedy]]
name = "sorry-and-drain"
when = { alert = "ShopBroken" }
do = [
  { route = { route = "shop", to = "sorry" } },
  { drain = { upstream = "app", server = "{{server}}" } },
]
"#,
    );
    assert_eq!(
        raw_http(
            web,
            "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
        )
        .0,
        200
    );
    send(
        &gw,
        "ShopBroken",
        json!({ "server": backend.addr.to_string() }),
        "firing",
    );
    wait_until("the run", WAIT, || {
        !runs_of(&gw, "sorry-and-drain").is_empty()
    });
    let run = &runs_of(&gw, "sorry-and-drain")[0];
    assert_eq!(run["result"], "ok", "{run:#}");
    let (code, body) = raw_http(
        web,
        "GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 503, "the sorry page: {body}");
    assert_eq!(gw.server_state("app", backend.addr), "draining");
    let rerouted = gw.events_of("route_rerouted");
    assert_eq!(rerouted.len(), 1, "{rerouted:#?}");
    let drained = gw.events_of("server_drained");
    assert_eq!(drained[0]["by"], "remediation", "{drained:#?}");
    let _ = Path::new("/");
}

#[test]
fn an_event_rule_runs_on_the_gateway_event_with_its_fields() {
    let dir = scratch("remedy-event-files");
    let (gw, _, backend) = gateway(
        "remedy-event",
        &format!(
            r#"[[remedy]]
name = "on-drain"
when = {{ event = "server_drained", match = {{ upstream = "app" }} }}
target = "{{{{server}}}}"
do = [{{ exec = {{ argv = ["/bin/mkdir", "{dir}/drained-{{{{server}}}}"] }} }}]
"#,
            dir = dir.display()
        ),
    );
    let server = backend.addr.to_string();
    let (code, body) = gw.admin_post(&format!("/api/v1/servers/app/{server}/drain"));
    assert_eq!(code, 200, "{body}");
    wait_until("the event's run", WAIT, || {
        !runs_of(&gw, "on-drain").is_empty()
    });
    let run = &runs_of(&gw, "on-drain")[0];
    assert_eq!(run["result"], "ok", "{run:#}");
    assert_eq!(run["target"], server);
    assert!(
        run["alert_id"].as_str().unwrap().starts_with("event-"),
        "{run:#}"
    );
    assert!(dir.join(format!("drained-{server}")).is_dir());
    // Enabling is another event kind: nothing more runs.
    let (code, _) = gw.admin_post(&format!("/api/v1/servers/app/{server}/enable"));
    assert_eq!(code, 200);
    std::thread::sleep(std::time::Duration::from_millis(1500)); // a poll of the events passes
    assert_eq!(runs_of(&gw, "on-drain").len(), 1);
}
