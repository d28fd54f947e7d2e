//! HTTPS receivers: the client verifies the receiver's certificate against the public web
//! roots, so a receiver with a self-signed certificate fails the handshake, which is reported
//! as worth retrying, without the URL.

use std::sync::Arc;

use ballast_notify::webhook::{WebhookConfig, WebhookNotifier};
use ballast_notify::{Locale, Message, MessageStatus, Notifier};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

#[tokio::test]
async fn an_untrusted_certificate_fails_the_handshake_without_showing_the_url() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        if let Ok((stream, _)) = listener.accept().await {
            // The client gives up during the handshake; its failure is what is tested.
            let _ = acceptor.accept(stream).await;
        }
    });

    let url = format!("https://127.0.0.1:{port}/hooks/sekret-token");
    let config: WebhookConfig = toml::from_str(&format!("url = {url:?}")).unwrap();
    let n = WebhookNotifier::new(config).unwrap();
    let m = Message {
        group_key: "g".into(),
        group_labels: Default::default(),
        status: MessageStatus::Resolved,
        severity: None,
        alerts: Vec::new(),
        dashboard_url: None,
        locale: Locale::En,
        at_unix_ms: 0,
        route: 1,
        escalated_after_ms: None,
        template: None,
    };
    let e = n.send(&m).await.unwrap_err();
    assert!(e.is_retryable());
    let shown = e.to_string();
    assert!(
        shown.starts_with("webhook receiver: TLS handshake failed: "),
        "{shown}"
    );
    assert!(!format!("{shown} {e:?}").contains("sekret"));
    server.abort();
}
