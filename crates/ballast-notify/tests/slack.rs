//! The `slack` receiver against a real local HTTP server: the exact payload, Slack's answers
//! (429 with Retry-After, 5xx, 4xx error words, a refused connection), a storm within Slack's
//! limits, Korean, and no secret in any error.

mod common;

use std::time::Duration;

use ballast_notify::slack::{SlackConfig, SlackNotifier, MAX_BLOCKS, MAX_HEADER, MAX_SECTION};
use ballast_notify::{Locale, Notifier, SendError};
use common::*;
use serde_json::json;

const TOKEN: &str = "/services/T000/B000/sekret-token";

fn notifier(url: &str) -> SlackNotifier {
    let config: SlackConfig = toml::from_str(&format!("url = {url:?}")).unwrap();
    SlackNotifier::new(config).unwrap()
}

#[tokio::test]
async fn exact_payload() {
    let mut server = Server::start(vec![Reply::new(200, "ok")]).await;
    let n = notifier(&server.url(TOKEN));
    assert_eq!(n.kind(), "slack");
    let m = message(
        vec![alert("upstream-down", "10.0.0.1:80", CRIT)],
        Locale::En,
    );
    let id = m.alerts[0].id.clone();
    let delivered = n.send(&m).await.unwrap();
    assert_eq!(delivered.answer, "200 ok");
    let req = server.next().await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, TOKEN);
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = format!(
        "value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\napp is down\nrunbook: \
         https://wiki/rb\nalert: https://ballast.example/alerts#{id} · silence: \
         https://ballast.example/alerts?silence={id}"
    );
    let heading = "critical upstream-down (server=10.0.0.1:80 upstream=app)";
    assert_eq!(
        req.json(),
        json!({
            "text": format!("[FIRING:1] critical upstream-down app\n\n{heading}\n{body}"),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "[FIRING:1] critical upstream-down app", "emoji": true}},
                {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{heading}*\n{body}")}},
            ],
            "attachments": [{"color": "#d32f2f", "fallback": "[FIRING:1] critical upstream-down app", "text": "1 firing"}],
        })
    );
}

#[tokio::test]
async fn colours_by_severity() {
    let mut server = Server::start(vec![Reply::new(200, "ok")]).await;
    let n = notifier(&server.url(TOKEN));
    let cases = [
        (vec![alert("a", "s", WARN)], "#f9a825"),
        (
            vec![alert("a", "s", WARN), alert("b", "s", CRIT)],
            "#d32f2f",
        ),
        (
            vec![alert("a", "s", ballast_core::AlertState::Resolved)],
            "#2e7d32",
        ),
    ];
    for (alerts, colour) in cases {
        n.send(&message(alerts, Locale::En)).await.unwrap();
        let v = server.next().await.json();
        assert_eq!(v["attachments"][0]["color"], colour);
    }
}

#[tokio::test]
async fn rate_limited_429_is_retried_after_what_slack_said() {
    let server = Server::start(vec![
        Reply::new(429, "rate_limited").header("Retry-After", "2")
    ])
    .await;
    let n = notifier(&server.url(TOKEN));
    let e = n
        .send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        SendError::Retry {
            reason: "slack receiver: answered 429 rate_limited".into(),
            retry_after: Some(Duration::from_secs(2)),
        }
    );
}

#[tokio::test]
async fn server_error_is_retried_and_refusal_is_permanent() {
    let server = Server::start(vec![
        Reply::new(500, "rollup_error"),
        Reply::new(400, "invalid_payload"),
        Reply::new(404, "channel_not_found"),
    ])
    .await;
    let n = notifier(&server.url(TOKEN));
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::Retry {
            reason: "slack receiver: answered 500 rollup_error".into(),
            retry_after: None
        }
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::permanent("slack receiver: refused with 400 invalid_payload")
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::permanent("slack receiver: refused with 404 channel_not_found")
    );
}

#[tokio::test]
async fn connection_refused_is_retried_without_the_url() {
    let url = closed_port_url(TOKEN).await;
    let n = notifier(&url);
    let e = n
        .send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap_err();
    assert!(e.is_retryable());
    let (shown, debug) = (e.to_string(), format!("{e:?}"));
    assert!(
        shown.starts_with("slack receiver: connect failed: "),
        "{shown}"
    );
    for s in [&shown, &debug] {
        assert!(!s.contains("sekret"), "{s}");
        assert!(!s.contains(&url), "{s}");
    }
    assert!(!format!("{n:?}").contains("sekret"));
}

#[tokio::test]
async fn a_storm_fits_slacks_limits_and_names_every_alert() {
    let mut server = Server::start(vec![Reply::new(200, "ok")]).await;
    let n = notifier(&server.url(TOKEN));
    n.send(&storm()).await.unwrap();
    let v = server.next().await.json();
    let blocks = v["blocks"].as_array().unwrap();
    assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
    assert_eq!(
        blocks[0]["text"]["text"],
        "[FIRING:500] critical upstream-down app"
    );
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= MAX_HEADER);
    for b in &blocks[1..] {
        assert_eq!(b["type"], "section");
        assert!(b["text"]["text"].as_str().unwrap().chars().count() <= MAX_SECTION);
    }
    // 20 written out, then the rest per rule, in as many sections as that takes.
    assert!(blocks.len() > 22, "{} blocks", blocks.len());
    let first_more = blocks[21]["text"]["text"].as_str().unwrap();
    assert!(first_more.starts_with("and 480 more: "), "{first_more}");
    let all = serde_json::to_string(&v["blocks"]).unwrap();
    for r in 0..25 {
        assert!(all.contains(&format!("rule-{r:02}")), "rule-{r:02} missing");
    }
    // Every alert is named: its server appears in the blocks.
    let storm = storm();
    for a in &storm.alerts {
        let server = a.labels.get("server").unwrap();
        assert!(all.contains(server), "{server} is not named");
    }
    assert!(v["text"].as_str().unwrap().chars().count() <= 4000);
    assert_eq!(v["attachments"][0]["text"], "500 firing");
}

#[tokio::test]
async fn korean() {
    let mut server = Server::start(vec![Reply::new(200, "ok")]).await;
    let n = notifier(&server.url(TOKEN));
    n.send(&message(
        vec![alert("upstream-down", "s", CRIT)],
        Locale::Ko,
    ))
    .await
    .unwrap();
    let v = server.next().await.json();
    assert_eq!(
        v["blocks"][0]["text"]["text"],
        "[발생:1] 심각 upstream-down app"
    );
    let section = v["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("값 0 (임계값 1), 2026-11-30 19:20:05 UTC부터"),
        "{section}"
    );
    assert_eq!(v["attachments"][0]["text"], "발생 1");
    n.send(&message(
        vec![alert(
            "upstream-down",
            "s",
            ballast_core::AlertState::Resolved,
        )],
        Locale::Ko,
    ))
    .await
    .unwrap();
    let v = server.next().await.json();
    assert_eq!(v["blocks"][0]["text"]["text"], "[해결] upstream-down app");
}
