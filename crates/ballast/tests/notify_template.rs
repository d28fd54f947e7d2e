//! Overridden texts through the binary: `[alerting] template` sets every receiver's title, a
//! receiver's own `template` replaces the alert heading for it alone, in its locale; a
//! template with a placeholder that does not exist is refused by `ballast check`, naming it.

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;

use std::time::Duration;

use common::*;
use notify_support::*;
use notify_tb::*;

#[test]
fn templates_shape_titles_and_headings_per_receiver() {
    let (plain, own) = (Receiver::start(), Receiver::start());
    let extra = format!(
        r#"
[alerting.template]
title = "ops: {{{{status}}}} {{{{group}}}} ×{{{{count}}}} {{{{escalation}}}}"

[[receiver]]
name = "plain"
webhook = {{ url = "{plain}" }}

[[receiver]]
name = "own"
webhook = {{ url = "{own}" }}
locale = "ko"
template = {{ alert = "{{{{severity}}}} {{{{label.server}}}}: {{{{rule}}}} {{{{annotation.owner}}}}" }}

[[notify]]
receivers = ["plain", "own"]
group_wait = "0s"
"#,
        plain = plain.url("/p"),
        own = own.url("/o"),
    );
    // `[alerting.template]` joins the [alerting] table notify_gateway writes.
    let gw = notify_gateway("notify-template", &extra);
    let mut alert = am_alert(
        "firing",
        &[
            ("alertname", "DiskFull"),
            ("severity", "critical"),
            ("server", "db-7"),
        ],
        now_ms(),
    );
    alert["annotations"]["owner"] = "team-db".into();
    am_post(&gw, vec![alert]);
    let p = plain.wait_for(1, Duration::from_secs(20))[0].json();
    let o = own.wait_for(1, Duration::from_secs(20))[0].json();
    assert_eq!(p["title"], "ops: FIRING DiskFull ×1", "{p}");
    assert_eq!(o["title"], "ops: 발생 DiskFull ×1", "{o}");
    // The heading: built-in for `plain`, the receiver's own for `own`.
    let (pt, ot) = (p["text"].as_str().unwrap(), o["text"].as_str().unwrap());
    assert!(pt.contains("critical DiskFull (server=db-7"), "{pt}");
    assert!(ot.contains("심각 db-7: DiskFull team-db"), "{ot}");
    // The rest of the body is still the renderer's.
    assert!(ot.contains("http://ballast.test:9900/alerts#"), "{ot}");
}

#[test]
fn a_template_with_an_unknown_placeholder_is_refused() {
    let dir = scratch("notify-template-check");
    let path = dir.join("ballast.toml");
    std::fs::write(
        &path,
        format!(
            r#"{}
[[route]]
upstream = "app"
[[upstream]]
name = "app"
servers = [{{ addr = "127.0.0.1:9" }}]
[alerting]
template = {{ title = "{{{{stauts}}}} {{{{group}}}}" }}
"#,
            preamble(free_port())
                .replace("{ADMIN}", "127.0.0.1:9")
                .replace("{ACCESS_LOG}", "off")
        ),
    )
    .unwrap();
    let (code, out, err) = cli(&["check", "--config", path.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        err.contains("alerting.template") && err.contains("{{stauts}} is not a placeholder"),
        "{out}{err}"
    );
}
