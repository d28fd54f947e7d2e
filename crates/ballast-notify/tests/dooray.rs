//! The `dooray` receiver against a real local HTTP server: the exact payload (`botName`,
//! `botIconImage`, `text`, `attachments` with colours), a storm summed up per rule, Korean,
//! and the answers.

mod common;

use ballast_core::AlertState;
use ballast_notify::dooray::{DoorayConfig, DoorayNotifier, MAX_ATTACHMENT_TEXT};
use ballast_notify::{Locale, Notifier, SendError};
use common::*;
use serde_json::json;

const TOKEN: &str = "/services/123/456/sekret-token";

fn notifier(toml_text: &str) -> DoorayNotifier {
    let config: DoorayConfig = toml::from_str(toml_text).unwrap();
    DoorayNotifier::new(config).unwrap()
}

#[tokio::test]
async fn exact_payload() {
    let mut server = Server::start(vec![Reply::new(
        200,
        "{\"header\":{\"isSuccessful\":true}}",
    )])
    .await;
    let n = notifier(&format!(
        "url = {:?}\nbot_name = \"Ops\"\nbot_icon_image = \"https://img.example/b.png\"",
        server.url(TOKEN)
    ));
    assert_eq!(n.kind(), "dooray");
    let mut ok = alert("upstream-down", "10.0.0.3:80", AlertState::Resolved);
    ok.annotations.clear();
    let m = message(
        vec![
            alert("upstream-down", "10.0.0.1:80", CRIT),
            alert("upstream-slow", "10.0.0.2:80", WARN),
            ok,
        ],
        Locale::En,
    );
    let ids: Vec<String> = m.alerts.iter().map(|a| a.id.clone()).collect();
    n.send(&m).await.unwrap();
    let req = server.next().await;
    assert_eq!(req.path, TOKEN);
    assert_eq!(req.header("content-type"), Some("application/json"));
    let links = |id: &str| {
        format!(
            "alert: https://ballast.example/alerts#{id} · silence: https://ballast.example/alerts?silence={id}"
        )
    };
    assert_eq!(
        req.json(),
        json!({
            "botName": "Ops",
            "botIconImage": "https://img.example/b.png",
            "text": "[FIRING:2] critical upstream-down app",
            "attachments": [
                {
                    "title": "critical upstream-down (server=10.0.0.1:80 upstream=app)",
                    "titleLink": format!("https://ballast.example/alerts#{}", ids[0]),
                    "text": format!("value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\napp is down\nrunbook: https://wiki/rb\n{}", links(&ids[0])),
                    "color": "red",
                },
                {
                    "title": "warning upstream-slow (server=10.0.0.2:80 upstream=app)",
                    "titleLink": format!("https://ballast.example/alerts#{}", ids[1]),
                    "text": format!("value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\napp is down\nrunbook: https://wiki/rb\n{}", links(&ids[1])),
                    "color": "orange",
                },
                {
                    "title": "resolved upstream-down (server=10.0.0.3:80 upstream=app)",
                    "titleLink": format!("https://ballast.example/alerts#{}", ids[2]),
                    "text": format!("value 0 (threshold 1), since 2026-11-30 19:20:05 UTC\n{}", links(&ids[2])),
                    "color": "green",
                },
            ],
        })
    );
}

#[tokio::test]
async fn default_bot_name_no_icon_no_dashboard() {
    let mut server = Server::start(vec![Reply::new(200, "")]).await;
    let n = notifier(&format!("url = {:?}", server.url(TOKEN)));
    let mut m = message(vec![alert("a", "s", CRIT)], Locale::En);
    m.dashboard_url = None;
    n.send(&m).await.unwrap();
    let v = server.next().await.json();
    assert_eq!(v["botName"], "Ballast");
    assert!(v.get("botIconImage").is_none());
    let att = v["attachments"][0].as_object().unwrap();
    assert!(!att.contains_key("titleLink"));
    assert!(!att["text"].as_str().unwrap().contains("silence"));
}

#[tokio::test]
async fn a_storm_is_summed_up_and_names_every_alert() {
    let mut server = Server::start(vec![Reply::new(200, "")]).await;
    let n = notifier(&format!("url = {:?}", server.url(TOKEN)));
    let storm = storm();
    n.send(&storm).await.unwrap();
    let v = server.next().await.json();
    let atts = v["attachments"].as_array().unwrap();
    // 20 written out, then the rest in as many attachments as the text limit takes.
    assert!(atts.len() > 21, "{} attachments", atts.len());
    assert_eq!(atts[20]["title"], "and 480 more");
    for a in &atts[20..] {
        assert_eq!(a["color"], "gray");
        assert!(a["text"].as_str().unwrap().chars().count() <= MAX_ATTACHMENT_TEXT);
    }
    let all = serde_json::to_string(&v).unwrap();
    assert!(all.len() < 64 * 1024, "{} bytes", all.len());
    for r in 0..25 {
        assert!(all.contains(&format!("rule-{r:02}")));
    }
    for a in &storm.alerts {
        let server = a.labels.get("server").unwrap();
        assert!(all.contains(server), "{server} is not named");
    }
}

#[tokio::test]
async fn korean() {
    let mut server = Server::start(vec![Reply::new(200, "")]).await;
    let n = notifier(&format!("url = {:?}", server.url(TOKEN)));
    let mut m = storm();
    m.locale = Locale::Ko;
    n.send(&m).await.unwrap();
    let v = server.next().await.json();
    assert_eq!(v["text"], "[발생:500] 심각 upstream-down app");
    assert_eq!(v["attachments"][20]["title"], "외 480건");
    assert!(v["attachments"][0]["text"]
        .as_str()
        .unwrap()
        .contains("런북: https://wiki/rb"));
}

#[tokio::test]
async fn answers_classify() {
    let server = Server::start(vec![
        Reply::new(502, "bad gateway"),
        Reply::new(403, "forbidden"),
    ])
    .await;
    let n = notifier(&format!("url = {:?}", server.url(TOKEN)));
    let m = message(vec![alert("a", "s", CRIT)], Locale::En);
    assert!(n.send(&m).await.unwrap_err().is_retryable());
    assert_eq!(
        n.send(&m).await.unwrap_err(),
        SendError::permanent("dooray receiver: refused with 403 forbidden")
    );
    let n = notifier(&format!("url = {:?}", closed_port_url(TOKEN).await));
    let e = n.send(&m).await.unwrap_err();
    assert!(e.is_retryable());
    assert!(!format!("{e} {e:?}").contains("sekret"));
}
