//! Secrets of the HTTP receivers: loaded from `url_file` and `url_env`, and never shown by any
//! error's `Display` or `Debug`, nor by a config's or a notifier's `Debug`.

mod common;

use ballast_notify::dooray::{DoorayConfig, DoorayNotifier};
use ballast_notify::slack::{SlackConfig, SlackNotifier};
use ballast_notify::webhook::{WebhookConfig, WebhookNotifier};
use ballast_notify::{ConfigError, Locale, Notifier};
use common::*;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ballast-notify-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_hidden(what: &str) {
    assert!(!what.contains("sekret"), "a secret shows: {what}");
}

#[tokio::test]
async fn url_from_a_file_and_from_the_environment() {
    let mut server = Server::start(vec![Reply::new(200, "ok")]).await;
    let dir = temp_dir("url-file");
    let file = dir.join("slack.url");
    std::fs::write(
        &file,
        format!("{}\n", server.url("/services/T/B/sekret-file")),
    )
    .unwrap();
    let config: SlackConfig = toml::from_str(&format!("url_file = {file:?}")).unwrap();
    let n = SlackNotifier::new(config).unwrap();
    assert_hidden(&format!("{n:?}"));
    n.send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap();
    assert_eq!(server.next().await.path, "/services/T/B/sekret-file");

    std::env::set_var(
        "BALLAST_NOTIFY_TEST_DOORAY_URL",
        server.url("/services/1/2/sekret-env"),
    );
    let config: DoorayConfig =
        toml::from_str("url_env = \"BALLAST_NOTIFY_TEST_DOORAY_URL\"").unwrap();
    let n = DoorayNotifier::new(config).unwrap();
    assert_hidden(&format!("{n:?}"));
    n.send(&message(vec![alert("a", "s", CRIT)], Locale::En))
        .await
        .unwrap();
    assert_eq!(server.next().await.path, "/services/1/2/sekret-env");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_errors_name_the_source_not_the_content() {
    let dir = temp_dir("bad");
    let file = dir.join("bad.url");
    std::fs::write(&file, "ftp://hooks.example/sekret\n").unwrap();
    let config: SlackConfig = toml::from_str(&format!("url_file = {file:?}")).unwrap();
    let e = SlackNotifier::new(config).unwrap_err();
    assert!(matches!(e, ConfigError::BadUrl { .. }));
    assert_eq!(
        e.to_string(),
        "slack receiver: bad url: the scheme must be http or https"
    );
    assert_hidden(&format!("{e:?}"));

    let missing = dir.join("missing.url");
    let config: WebhookConfig = toml::from_str(&format!("url_file = {missing:?}")).unwrap();
    let e = WebhookNotifier::new(config).unwrap_err();
    assert!(e.to_string().contains("missing.url"), "{e}");

    let config: WebhookConfig = toml::from_str(
        "url = \"https://x/sekret\"\nsigning_secret_env = \"BALLAST_NOTIFY_TEST_UNSET\"",
    )
    .unwrap();
    let e = WebhookNotifier::new(config).unwrap_err();
    assert_eq!(
        e.to_string(),
        "webhook receiver: signing_secret: the environment variable BALLAST_NOTIFY_TEST_UNSET is not set"
    );
    assert_hidden(&format!("{e:?}"));

    let config: WebhookConfig =
        toml::from_str("url = \"https://x/sekret\"\nurl_env = \"X\"").unwrap();
    let e = WebhookNotifier::new(config).unwrap_err();
    assert_eq!(
        e.to_string(),
        "webhook receiver: give only one of url, url_file and url_env"
    );

    let config: WebhookConfig =
        toml::from_str("url = \"https://x/y\"\nsigning_secret = \"sekret-key\"").unwrap();
    assert_hidden(&format!("{config:?}"));
    let n = WebhookNotifier::new(config).unwrap();
    assert_hidden(&format!("{n:?}"));

    assert!(toml::from_str::<DoorayConfig>("url = \"https://x/\"\nbotName = \"x\"").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
