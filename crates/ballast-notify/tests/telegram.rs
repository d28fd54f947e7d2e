//! The `telegram` receiver against a real local HTTP server standing in for the Bot API: the
//! exact `sendMessage` request, HTML markup, the Bot API's answers (429 with
//! `parameters.retry_after` or `Retry-After`, 5xx, 4xx descriptions, a refused connection), a
//! storm cut to one message within 4096 characters, Korean, and the token in no error.

mod common;

use std::time::Duration;

use ballast_notify::telegram::{utf16_len, TelegramConfig, TelegramNotifier, MAX_TEXT};
use ballast_notify::{Locale, Notifier, SendError};
use common::*;
use serde_json::json;

const TOKEN: &str = "123456:AAsekret-token_xyz";

fn notifier(api_url: &str, extra: &str) -> TelegramNotifier {
    let config: TelegramConfig = toml::from_str(&format!(
        "bot_token = {TOKEN:?}\nchat_id = \"-1001234567890\"\napi_url = {api_url:?}\n{extra}"
    ))
    .unwrap();
    TelegramNotifier::new(config).unwrap()
}

const OK: &str = r#"{"ok":true,"result":{"message_id":42}}"#;

#[tokio::test]
async fn exact_payload() {
    let mut server = Server::start(vec![Reply::new(200, OK)]).await;
    let n = notifier(&server.url(""), "");
    assert_eq!(n.kind(), "telegram");
    let m = message(
        vec![alert("upstream-down", "10.0.0.1:80", CRIT)],
        Locale::En,
    );
    let id = m.alerts[0].id.clone();
    assert_eq!(n.send(&m).await.unwrap().answer, "200 ok");
    let req = server.next().await;
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.json(),
        json!({
            "chat_id": "-1001234567890",
            "text": format!(
                "[FIRING:1] critical upstream-down app\n\n\
                 critical upstream-down (server=10.0.0.1:80 upstream=app)\n\
                 value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\napp is down\n\
                 runbook: https://wiki/rb\nalert: https://ballast.example/alerts#{id} · \
                 silence: https://ballast.example/alerts?silence={id}"
            ),
        })
    );
}

#[tokio::test]
async fn html_bolds_the_headings_and_escapes_the_rest() {
    let mut server = Server::start(vec![Reply::new(200, OK)]).await;
    // Unknown keys are refused.
    let config: Result<TelegramConfig, _> = toml::from_str(&format!(
        "bot_token = {TOKEN:?}\nchat_id = 5\napi_url = \"{}/\"\nparse_mode = \"HTML\"\nchat_id_unused = 1",
        server.url("")
    ));
    assert!(config.is_err());
    let config: TelegramConfig = toml::from_str(&format!(
        "bot_token = {TOKEN:?}\nchat_id = 5\napi_url = \"{}/\"\nparse_mode = \"HTML\"",
        server.url("")
    ))
    .unwrap();
    let n = TelegramNotifier::new(config).unwrap();
    let mut a = alert("upstream-down", "<b>&", WARN);
    a.annotations.clear();
    let m = message(vec![a], Locale::En);
    n.send(&m).await.unwrap();
    let req = server.next().await;
    assert_eq!(req.path, format!("/bot{TOKEN}/sendMessage"));
    let v = req.json();
    assert_eq!(v["chat_id"], 5);
    assert_eq!(v["parse_mode"], "HTML");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<b>[FIRING:1] warning upstream-down app</b>\n\n\
             <b>warning upstream-down (server=&lt;b&gt;&amp; upstream=app)</b>\n\
             value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\n"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn rate_limited_429_is_retried_after_what_telegram_said() {
    let server = Server::start(vec![
        Reply::new(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#,
        ),
        Reply::new(429, "").header("Retry-After", "3"),
    ])
    .await;
    let n = notifier(&server.url(""), "");
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::Retry {
            reason: "telegram receiver: answered 429 Too Many Requests: retry after 5".into(),
            retry_after: Some(Duration::from_secs(5)),
        }
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::Retry {
            reason: "telegram receiver: answered 429".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    );
}

#[tokio::test]
async fn server_error_is_retried_and_refusal_is_permanent() {
    let server = Server::start(vec![
        Reply::new(502, "Bad Gateway"),
        Reply::new(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        ),
        Reply::new(
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        ),
    ])
    .await;
    let n = notifier(&server.url(""), "");
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::Retry {
            reason: "telegram receiver: answered 502 Bad Gateway".into(),
            retry_after: None
        }
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::permanent("telegram receiver: refused with 400 Bad Request: chat not found")
    );
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::permanent(
            "telegram receiver: refused with 403 Forbidden: bot was blocked by the user"
        )
    );
}

#[tokio::test]
async fn the_token_is_in_no_error_nor_debug() {
    // A server quoting the path (and so the token) in its answer.
    let server = Server::start(vec![Reply::new(
        404,
        r#"{"ok":false,"error_code":404,"description":"Not Found: /bot123456:AAsekret-token_xyz/sendMessage; key AAsekret-token_xyz"}"#,
    )])
    .await;
    let n = notifier(&server.url(""), "");
    let e = n
        .send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    let url = closed_port_url("").await;
    let refused = notifier(&url, "")
        .send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap_err();
    assert!(refused.is_retryable());
    assert!(
        refused
            .to_string()
            .starts_with("telegram receiver: connect failed: "),
        "{refused}"
    );
    let config: TelegramConfig =
        toml::from_str(&format!("bot_token = {TOKEN:?}\nchat_id = \"1\"")).unwrap();
    for s in [
        e.to_string(),
        format!("{e:?}"),
        refused.to_string(),
        format!("{refused:?}"),
        format!("{n:?}"),
        format!("{config:?}"),
    ] {
        assert!(!s.contains("sekret"), "{s}");
    }
    assert_eq!(
        e.to_string(),
        "telegram receiver: refused with 404 Not Found: /bot[redacted]/sendMessage; key [redacted]"
    );
}

#[tokio::test]
async fn a_storm_is_one_message_within_the_limit_naming_every_rule() {
    let mut server = Server::start(vec![Reply::new(200, OK)]).await;
    let n = notifier(&server.url(""), "");
    let storm = storm();
    n.send(&storm).await.unwrap();
    let text = server.next().await.json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(utf16_len(&text) <= MAX_TEXT, "{} long", utf16_len(&text));
    assert!(
        text.starts_with("[FIRING:500] critical upstream-down app\n\ncritical rule-00 ("),
        "{text}"
    );
    // One alert written out, the other 499 summed up: every rule with its count, and as many
    // alerts named per rule as fit (more than one each here).
    assert!(
        text.contains("\n\nand 499 more: rule-01 ×20 (server="),
        "{text}"
    );
    for r in 1..25 {
        assert!(text.contains(&format!("rule-{r:02} ×20 (")), "rule-{r:02}");
    }
    assert!(text.contains("rule-00 ×19 ("), "{text}");
    let named = storm
        .alerts
        .iter()
        .filter(|a| text.contains(a.labels.get("server").unwrap()))
        .count();
    // 1 written out + 6 per rule here.
    assert!(named > 125, "only {named} alerts named");
    // No more room: the next name per rule would not have fitted.
    assert!(
        utf16_len(&text) > MAX_TEXT - 25 * 25,
        "{}",
        utf16_len(&text)
    );
}

#[tokio::test]
async fn a_small_group_is_written_out_in_full() {
    let mut server = Server::start(vec![Reply::new(200, OK)]).await;
    let n = notifier(&server.url(""), "max_alerts = 2");
    let alerts = (0..4)
        .map(|i| alert("upstream-down", &format!("10.0.0.{i}:80"), CRIT))
        .collect();
    n.send(&message(alerts, Locale::En)).await.unwrap();
    let text = server.next().await.json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(text.matches("\ncritical upstream-down (").count(), 2);
    assert!(
        text.ends_with("\n\nand 2 more: upstream-down ×2 (server=10.0.0.2:80, server=10.0.0.3:80)"),
        "{text}"
    );
}

#[tokio::test]
async fn korean() {
    let mut server = Server::start(vec![Reply::new(200, OK)]).await;
    let n = notifier(&server.url(""), "parse_mode = \"MarkdownV2\"");
    n.send(&message(
        vec![alert("upstream-down", "s", CRIT)],
        Locale::Ko,
    ))
    .await
    .unwrap();
    let v = server.next().await.json();
    assert_eq!(v["parse_mode"], "MarkdownV2");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("*\\[발생:1\\] 심각 upstream\\-down app*\n\n"),
        "{text}"
    );
    assert!(
        text.contains("값 0 \\(임계값 1\\), 2026\\-11\\-30 19:20:05 UTC부터"),
        "{text}"
    );
}
