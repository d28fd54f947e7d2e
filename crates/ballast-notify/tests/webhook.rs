//! The `webhook` receiver against a real local HTTP server: the exact JSON schema, the
//! HMAC-SHA256 signature checked with ring, the answers (2xx, 429 Retry-After, 5xx, 4xx, a
//! refused connection), a storm carrying every alert, and no secret in any error.

mod common;

use std::time::Duration;

use ballast_core::AlertState;
use ballast_notify::webhook::{WebhookConfig, WebhookNotifier};
use ballast_notify::{Locale, Notifier, SendError};
use common::*;
use serde_json::json;

const TOKEN: &str = "/hooks/sekret-token?x=1";

fn notifier(toml_text: &str) -> WebhookNotifier {
    let config: WebhookConfig = toml::from_str(toml_text).unwrap();
    WebhookNotifier::new(config).unwrap()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn exact_schema_and_signature() {
    let mut server = Server::start(vec![Reply::new(204, "")]).await;
    let n = notifier(&format!(
        "url = {:?}\nsigning_secret = \"key-sekret\"",
        server.url(TOKEN)
    ));
    assert_eq!(n.kind(), "webhook");
    let mut resolved = alert("upstream-down", "10.0.0.2:80", AlertState::Resolved);
    resolved.value = None;
    resolved.threshold = None;
    resolved.annotations.clear();
    let m = message(
        vec![alert("upstream-down", "10.0.0.1:80", CRIT), resolved],
        Locale::En,
    );
    let (id1, id2) = (m.alerts[0].id.clone(), m.alerts[1].id.clone());
    assert_eq!(n.send(&m).await.unwrap().answer, "204");
    let req = server.next().await;
    assert_eq!(req.path, TOKEN);
    assert_eq!(req.header("content-type"), Some("application/json"));

    let sig = req.header("x-ballast-signature").unwrap();
    let hex = sig.strip_prefix("sha256=").unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key-sekret");
    ring::hmac::verify(&key, &req.body, &hex_decode(hex)).expect("the signature verifies");
    assert!(ring::hmac::verify(&key, b"{}", &hex_decode(hex)).is_err());

    let v = req.json();
    let text = v["text"].as_str().unwrap().to_string();
    assert!(
        text.starts_with("[FIRING:1] critical upstream-down app\n\n"),
        "{text}"
    );
    assert_eq!(
        v,
        json!({
            "version": "1",
            "status": "firing",
            "group_key": "{}:{alertname=\"upstream-down\"}",
            "group_labels": {"alertname": "upstream-down", "upstream": "app"},
            "severity": "critical",
            "title": "[FIRING:1] critical upstream-down app",
            "text": text,
            "dashboard_url": "https://ballast.example",
            "at": "2026-11-30T19:20:05Z",
            "alerts": [
                {
                    "id": id1,
                    "rule": "upstream-down",
                    "labels": {"alertname": "upstream-down", "monitor": "shop-gateway", "server": "10.0.0.1:80", "upstream": "app"},
                    "annotations": {"runbook": "https://wiki/rb", "summary": "app is down"},
                    "state": "firing",
                    "severity": "critical",
                    "value": 0.0,
                    "threshold": 1.0,
                    "since": "2026-11-30T19:20:05Z",
                    "since_unix_ms": AT,
                    "url": format!("https://ballast.example/alerts#{id1}"),
                },
                {
                    "id": id2,
                    "rule": "upstream-down",
                    "labels": {"alertname": "upstream-down", "monitor": "shop-gateway", "server": "10.0.0.2:80", "upstream": "app"},
                    "annotations": {},
                    "state": "resolved",
                    "severity": null,
                    "value": null,
                    "threshold": null,
                    "since": "2026-11-30T19:20:05Z",
                    "since_unix_ms": AT,
                    "url": format!("https://ballast.example/alerts#{id2}"),
                },
            ],
        })
    );
}

#[tokio::test]
async fn unsigned_without_a_secret() {
    let mut server = Server::start(vec![Reply::new(200, "")]).await;
    let n = notifier(&format!("url = {:?}", server.url(TOKEN)));
    n.send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap();
    assert_eq!(server.next().await.header("x-ballast-signature"), None);
}

#[tokio::test]
async fn a_storm_carries_every_alert() {
    let mut server = Server::start(vec![Reply::new(200, "")]).await;
    let n = notifier(&format!("url = {:?}", server.url(TOKEN)));
    let m = storm();
    n.send(&m).await.unwrap();
    let v = server.next().await.json();
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 500);
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("and 480 more: "), "{text}");
    for r in 0..25 {
        assert!(text.contains(&format!("rule-{r:02}")));
    }
}

#[tokio::test]
async fn answers_classify() {
    let server = Server::start(vec![
        Reply::new(429, "slow down").header("Retry-After", "7"),
        Reply::new(503, ""),
        Reply::new(400, "{\"error\":\"bad\"}"),
        Reply::new(404, "Cannot POST /hooks/sekret-token?x=1"),
    ])
    .await;
    let n = notifier(&format!(
        "url = {:?}\nsigning_secret = \"key-sekret\"",
        server.url(TOKEN)
    ));
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    let errors = [
        n.send(&m).await.unwrap_err(),
        n.send(&m).await.unwrap_err(),
        n.send(&m).await.unwrap_err(),
        n.send(&m).await.unwrap_err(),
    ];
    // A receiver echoing the path does not leak the token into the error.
    assert_eq!(
        errors[3],
        SendError::permanent("webhook receiver: refused with 404 Cannot POST [redacted]")
    );
    assert_eq!(
        errors[0],
        SendError::Retry {
            reason: "webhook receiver: answered 429 slow down".into(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    assert_eq!(
        errors[1],
        SendError::retry("webhook receiver: answered 503")
    );
    assert_eq!(
        errors[2],
        SendError::permanent("webhook receiver: refused with 400 {\"error\":\"bad\"}")
    );
    for e in &errors {
        assert!(!e.to_string().contains("sekret"));
        assert!(!format!("{e:?}").contains("sekret"));
    }
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let url = closed_port_url(TOKEN).await;
    let n = notifier(&format!("url = {url:?}"));
    let e = n
        .send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    assert!(e
        .to_string()
        .starts_with("webhook receiver: connect failed: "));
    assert!(!e.to_string().contains("sekret"));
    assert!(!format!("{e:?}").contains("sekret"));
}
