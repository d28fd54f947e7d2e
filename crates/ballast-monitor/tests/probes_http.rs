//! The `http` and `tcp` probes against real loopback servers (plain and TLS).

mod common;

use common::{closed_port, handler, pki, reading, reply, serve, serve_tls, spec};

use ballast_monitor::probe::http::{HttpProbe, HttpSpec};
use ballast_monitor::probe::tcp::{TcpProbe, TcpSpec};
use ballast_monitor::probe::Probe;

fn http(toml_text: &str) -> HttpProbe {
    HttpProbe::new(spec::<HttpSpec>(toml_text)).unwrap()
}

#[tokio::test]
async fn a_healthy_endpoint_meets_every_expectation() {
    let addr = serve(handler(|req| {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/health?deep=1");
        assert_eq!(req.header("x-probe"), Some("ballast"));
        assert_eq!(req.body.as_ref(), b"ping");
        reply(200, r#"{"status":{"db":"ok","replicas":3}}"#)
    }))
    .await;
    let probe = http(&format!(
        r#"
        url = "http://{addr}/health?deep=1"
        method = "POST"
        headers = {{ X-Probe = "ballast" }}
        body = "ping"
        expect_status = "200-299"
        body_contains = "replicas"
        json = {{ pointer = "/status/replicas", equals = 3.0 }}
        max_latency = "30s"
        "#
    ));
    assert_eq!(probe.kind(), "http");
    let out = probe.run().await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "status"), Some(200.0));
    assert!(reading(&out, "latency_ms").unwrap() > 0.0);
}

#[tokio::test]
async fn each_unmet_expectation_says_what_it_wanted() {
    let addr = serve(handler(|req| match req.path.as_str() {
        "/down" => reply(503, "maintenance"),
        _ => reply(200, r#"{"status":"degraded"}"#),
    }))
    .await;
    let cases = [
        (
            format!("url = \"http://{addr}/down\"\nexpect_status = \"200-299\""),
            "expected status 200-299, got 503",
        ),
        (
            format!("url = \"http://{addr}/down\"\nexpect_status = [200, 204]"),
            "expected status 200, 204, got 503",
        ),
        (
            format!("url = \"http://{addr}/ok\"\nbody_contains = \"healthy\""),
            "body does not contain \"healthy\"",
        ),
        (
            format!(
                "url = \"http://{addr}/ok\"\njson = {{ pointer = \"/status\", equals = \"up\" }}"
            ),
            "JSON pointer /status: expected \"up\", got \"degraded\"",
        ),
        (
            format!("url = \"http://{addr}/ok\"\njson = {{ pointer = \"/nope\", equals = 1 }}"),
            "JSON pointer /nope: not found",
        ),
    ];
    for (toml_text, want) in cases {
        let out = http(&toml_text).run().await;
        assert_eq!(out.error.as_deref(), Some(want), "{toml_text}");
        // A response came back, so it is still measured.
        assert!(reading(&out, "status").is_some());
    }
    let out = http(&format!(
        "url = \"http://{addr}/ok\"\nmax_latency = \"1ns\""
    ))
    .run()
    .await;
    let err = out.error.unwrap();
    assert!(err.contains("ms is over max_latency 1ns"), "{err}");
}

#[tokio::test]
async fn the_default_accepts_redirects_and_a_body_is_read_up_to_one_mebibyte() {
    let addr = serve(handler(|req| match req.path.as_str() {
        "/moved" => reply(302, ""),
        _ => {
            let mut body = vec![b'a'; 2 << 20];
            body.extend_from_slice(b"THE-END");
            reply(200, body)
        }
    }))
    .await;
    let out = http(&format!("url = \"http://{addr}/moved\"")).run().await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "status"), Some(302.0));

    let out = http(&format!(
        "url = \"http://{addr}/big\"\nbody_contains = \"THE-END\""
    ))
    .run()
    .await;
    let err = out.error.unwrap();
    assert!(err.contains("only the first 1 MiB was read"), "{err}");
    assert_eq!(out.detail["body_truncated"], true);
}

#[tokio::test]
async fn a_refused_connection_is_an_error_without_readings() {
    let port = closed_port().await;
    let out = http(&format!("url = \"http://127.0.0.1:{port}/\""))
        .run()
        .await;
    let err = out.error.unwrap();
    assert!(
        err.starts_with(&format!("connect to 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(out.readings.is_empty());
}

#[tokio::test]
async fn https_trusts_a_ca_file_or_nothing_when_told_not_to_verify() {
    let pki = pki(30);
    let addr = serve_tls(
        handler(|_| reply(200, "secure")),
        pki.server_config(rustls::ALL_VERSIONS),
    )
    .await;
    let url = format!("https://localhost:{}/", addr.port());

    let out = http(&format!("url = \"{url}\"\nbody_contains = \"secure\""))
        .run()
        .await;
    let err = out.error.unwrap();
    assert!(err.starts_with("TLS handshake with localhost"), "{err}");

    let ca = pki.ca_file("http");
    let out = http(&format!(
        "url = \"{url}\"\nbody_contains = \"secure\"\nca_file = \"{}\"",
        ca.display()
    ))
    .run()
    .await;
    assert_eq!(out.error, None);

    let out = http(&format!("url = \"{url}\"\ntls_verify = false"))
        .run()
        .await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "status"), Some(200.0));
}

#[test]
fn bad_specs_name_their_field() {
    let err = |t: &str| HttpProbe::new(spec::<HttpSpec>(t)).unwrap_err().field;
    assert_eq!(err("url = \"ftp://x/\""), "url");
    assert_eq!(err("url = \"http://x/\"\nmethod = \"GE T\""), "method");
    assert_eq!(
        err("url = \"http://x/\"\nheaders = { \"a b\" = \"1\" }"),
        "headers"
    );
    assert_eq!(
        err("url = \"http://x/\"\njson = { pointer = \"a\", equals = 1 }"),
        "json.pointer"
    );
    assert_eq!(
        err("url = \"http://x/\"\nca_file = \"/nonexistent/ca.pem\""),
        "ca_file"
    );
    // validate() alone (what the config crate calls) checks the CA file too.
    let e = spec::<HttpSpec>("url = \"http://x/\"\nca_file = \"/nonexistent/ca.pem\"")
        .validate()
        .unwrap_err();
    assert_eq!(e.field, "ca_file");
    assert!(spec::<HttpSpec>("url = \"http://x/\"").validate().is_ok());
    // Unknown keys and bad ranges are refused while deserializing.
    assert!(toml::from_str::<HttpSpec>("url = \"http://x/\"\nname = \"n\"").is_err());
    assert!(
        toml::from_str::<HttpSpec>("url = \"http://x/\"\nexpect_status = \"299-200\"").is_err()
    );
    assert!(toml::from_str::<HttpSpec>("url = \"http://x/\"\nmax_latency = 5").is_err());
}

#[tokio::test]
async fn tcp_measures_a_connect_and_reports_a_refusal() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let probe = TcpProbe::new(spec::<TcpSpec>(&format!("target = \"{addr}\""))).unwrap();
    assert_eq!(probe.kind(), "tcp");
    let out = probe.run().await;
    assert_eq!(out.error, None);
    assert!(reading(&out, "latency_ms").unwrap() > 0.0);

    let port = closed_port().await;
    let out = TcpProbe::new(spec::<TcpSpec>(&format!("target = \"127.0.0.1:{port}\"")))
        .unwrap()
        .run()
        .await;
    let err = out.error.unwrap();
    assert!(err.contains("refused"), "{err}");
    assert!(out.readings.is_empty());

    let e = TcpProbe::new(spec::<TcpSpec>("target = \"nohostport\"")).unwrap_err();
    assert_eq!(e.field, "target");
}
