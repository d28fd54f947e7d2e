//! The `tls` probe against real TLS listeners serving certificates the test makes.

mod common;

use common::{closed_port, handler, pki, reading, reply, serve_tls, spec};

use ballast_monitor::probe::tls::{TlsProbe, TlsSpec};
use ballast_monitor::probe::Probe;

fn probe(toml_text: &str) -> TlsProbe {
    TlsProbe::new(spec::<TlsSpec>(toml_text)).unwrap()
}

#[tokio::test]
async fn days_left_and_the_chain_verdict_with_and_without_the_ca() {
    let pki = pki(20);
    let addr = serve_tls(
        handler(|_| reply(200, "")),
        pki.server_config(&[&rustls::version::TLS13]),
    )
    .await;
    let target = format!(
        "target = \"127.0.0.1:{}\"\nserver_name = \"localhost\"",
        addr.port()
    );

    let p = probe(&target);
    assert_eq!(p.kind(), "tls");
    let out = p.run().await;
    assert_eq!(out.error, None);
    let days = reading(&out, "days_left").unwrap();
    // Midnight UTC twenty days from now: between 19 and 20 days away.
    assert!((19.0..=20.0).contains(&days), "{days}");
    assert_eq!(reading(&out, "chain_valid"), Some(0.0));
    assert_eq!(reading(&out, "tls_version"), Some(13.0));
    assert_eq!(out.detail["protocol"], "TLSv1.3");
    assert!(out.detail["subject"]
        .as_str()
        .unwrap()
        .contains("localhost"));
    assert!(out.detail["issuer"]
        .as_str()
        .unwrap()
        .contains("Ballast Test CA"));
    assert!(out.detail["not_after"]
        .as_str()
        .unwrap()
        .ends_with("T00:00:00Z"));
    assert!(out.detail["verification_error"].as_str().is_some());

    let ca = pki.ca_file("tls");
    let out = probe(&format!("{target}\nca_file = \"{}\"", ca.display()))
        .run()
        .await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "chain_valid"), Some(1.0));
    assert!(out.detail["verification_error"].is_null());

    // The verdict includes the name: the CA is trusted but the certificate is not for this one.
    let out = probe(&format!(
        "target = \"127.0.0.1:{}\"\nserver_name = \"other.example\"\nca_file = \"{}\"",
        addr.port(),
        ca.display()
    ))
    .run()
    .await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "chain_valid"), Some(0.0));
}

#[tokio::test]
async fn the_protocol_version_is_reported() {
    let pki = pki(100);
    let addr = serve_tls(
        handler(|_| reply(200, "")),
        pki.server_config(&[&rustls::version::TLS12]),
    )
    .await;
    // Without server_name the target's host (an IP address) is offered and verified.
    let ca = pki.ca_file("tls12");
    let out = probe(&format!(
        "target = \"127.0.0.1:{}\"\nca_file = \"{}\"",
        addr.port(),
        ca.display()
    ))
    .run()
    .await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "tls_version"), Some(12.0));
    assert_eq!(reading(&out, "chain_valid"), Some(1.0));
    let days = reading(&out, "days_left").unwrap();
    assert!((99.0..=100.0).contains(&days), "{days}");
}

#[tokio::test]
async fn no_listener_or_no_tls_is_an_error() {
    let port = closed_port().await;
    let out = probe(&format!("target = \"127.0.0.1:{port}\"")).run().await;
    assert!(out.error.unwrap().contains("refused"));
    assert!(out.readings.is_empty());

    // A plain HTTP server does not speak TLS.
    let addr = common::serve(handler(|_| reply(200, ""))).await;
    let out = probe(&format!("target = \"{addr}\"")).run().await;
    let err = out.error.unwrap();
    assert!(err.starts_with("TLS handshake with 127.0.0.1"), "{err}");
}

#[test]
fn bad_specs_name_their_field() {
    let err = |t: &str| TlsProbe::new(spec::<TlsSpec>(t)).unwrap_err().field;
    assert_eq!(err("target = \"example.com\""), "target");
    assert_eq!(
        err("target = \"a:443\"\nserver_name = \"bad name\""),
        "server_name"
    );
    assert_eq!(
        err("target = \"a:443\"\nca_file = \"/nonexistent.pem\""),
        "ca_file"
    );
}
