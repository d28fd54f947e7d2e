//! Relay failover through the binary: an email receiver with `relays = [first, second]` on a
//! route for critical alerts. The first relay refuses (nothing listens on its port; or a real
//! SMTP server answers `554` to the recipient), and the message goes through the second (an
//! aiosmtpd that stores it): the right To, Subject and a body naming the alert. The log shows
//! it delivered once, in one attempt, by the second relay; the gateway's log names the first
//! relay's failure. Needs python3-aiosmtpd (skipped with a note without it, unless
//! `BALLAST_REQUIRE_SMTP` is set).

mod alerts_support;
mod common;
mod notify_support;
mod notify_tb;

use std::time::Duration;

use common::*;
use notify_tb::*;

const WAIT: Duration = Duration::from_secs(30);

fn gateway(name: &str, first: &str, second: &str) -> Gateway {
    let extra = format!(
        r#"
[[receiver]]
name = "mail"
email = {{ to = ["Web Ops <web-ops@example.com>"], from = "Ballast <ballast@example.com>", relays = ["{first}", "{second}"], tls = "none", timeout = "3s" }}

[[notify]]
match = {{ severity = "critical" }}
receivers = ["mail"]
"#
    );
    notify_gateway(name, &extra)
}

/// Fires one critical alert and checks that exactly one mail about it reached `second`.
fn fire_and_check(gw: &Gateway, first: &str, second: &Smtp, server: &str) {
    am_post(
        gw,
        vec![am_alert(
            "firing",
            &[
                ("alertname", "DiskFull"),
                ("severity", "critical"),
                ("server", server),
            ],
            now_ms(),
        )],
    );
    let id = alert_id(gw, "DiskFull", server);
    wait_until("the mail at the second relay", WAIT, || {
        !second.stored().is_empty()
    });
    wait_until("the log to say delivered", WAIT, || {
        log_of(gw, "mail/email")
            .iter()
            .any(|l| l["state"] == "delivered")
    });
    // Nothing more comes.
    std::thread::sleep(Duration::from_secs(2));
    let mails = second.stored();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(
        mail_header(mail, "To").as_deref(),
        Some("\"Web Ops\" <web-ops@example.com>"),
        "{mail}"
    );
    assert_eq!(
        mail_header(mail, "Subject").as_deref(),
        Some("[FIRING:1] critical DiskFull"),
        "{mail}"
    );
    let body = mail_body(mail);
    for want in [
        "1 firing",
        "critical DiskFull (",
        &format!("server={server}"),
        "injected by the test",
        &format!("http://ballast.test:9900/alerts#{id}"),
    ] {
        assert!(body.contains(want), "{want:?} missing from {body}");
    }
    let log = log_of(gw, "mail/email");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["state"], "delivered", "{log:?}");
    assert_eq!(log[0]["attempts"], 1, "{log:?}");
    let result = log[0]["result"].as_str().unwrap_or("");
    assert!(
        result.starts_with(&format!("{} 250", second.relay())),
        "delivered by the second relay: {result}"
    );
    // The first relay's failure is in the gateway's log.
    let stderr = gw.stderr();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("email relay failed") && l.contains(first)),
        "{stderr}"
    );
}

#[test]
fn a_refused_first_relay_hands_the_mail_to_the_second() {
    let Some(python) = python() else { return };
    let second = Smtp::start(&python, "store");
    let first = alerts_support::nowhere().to_string();
    let gw = gateway("notify-email-refused", &first, &second.relay());
    fire_and_check(&gw, &first, &second, "db-1");
}

#[test]
fn a_first_relay_answering_554_hands_the_mail_to_the_second() {
    let Some(python) = python() else { return };
    let first = Smtp::start(&python, "reject");
    let second = Smtp::start(&python, "store");
    let gw = gateway("notify-email-554", &first.relay(), &second.relay());
    fire_and_check(&gw, &first.relay(), &second, "db-2");
    // The first relay was asked, refused, and stored nothing.
    assert_eq!(first.rcpts(), ["web-ops@example.com"], "{}", first.log());
    assert!(first.stored().is_empty());
}
