//! The `dns` probe against a real DNS server on loopback: a small UDP responder built with
//! hickory-proto that knows one name.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::{reading, spec};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

use ballast_monitor::probe::dns::{DnsProbe, DnsSpec};
use ballast_monitor::probe::Probe;

/// Answers `app.test.` with 10.0.0.1 and 10.0.0.2 and every other name with NXDOMAIN.
async fn dns_server() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let known = Name::from_ascii("app.test.").unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut resp = Message::new();
            resp.set_id(req.id())
                .set_message_type(MessageType::Response)
                .set_op_code(req.op_code())
                .set_recursion_desired(req.recursion_desired())
                .set_recursion_available(true)
                .set_authoritative(true);
            for q in req.queries() {
                resp.add_query(q.clone());
                if q.name() != &known {
                    resp.set_response_code(ResponseCode::NXDomain);
                } else if q.query_type() == RecordType::A {
                    for last in [1, 2] {
                        let a = RData::A(A(Ipv4Addr::new(10, 0, 0, last)));
                        resp.add_answer(Record::from_rdata(known.clone(), 60, a));
                    }
                }
            }
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

fn probe(toml_text: &str) -> DnsProbe {
    DnsProbe::new(spec::<DnsSpec>(toml_text)).unwrap()
}

#[tokio::test]
async fn a_name_resolves_to_the_expected_set_in_any_order() {
    let server = dns_server().await;
    let p = probe(&format!(
        "host = \"app.test\"\nexpect = [\"10.0.0.2\", \"10.0.0.1\"]\nresolver = \"{server}\""
    ));
    assert_eq!(p.kind(), "dns");
    let out = p.run().await;
    assert_eq!(out.error, None);
    assert_eq!(reading(&out, "addresses"), Some(2.0));
    assert!(reading(&out, "latency_ms").unwrap() > 0.0);
    assert_eq!(
        out.detail["addresses"],
        serde_json::json!(["10.0.0.1", "10.0.0.2"])
    );
}

#[tokio::test]
async fn a_different_set_or_no_answer_is_an_error() {
    let server = dns_server().await;
    let out = probe(&format!(
        "host = \"app.test\"\nexpect = [\"10.0.0.1\"]\nresolver = \"{server}\""
    ))
    .run()
    .await;
    assert_eq!(
        out.error.as_deref(),
        Some("app.test resolves to [10.0.0.1, 10.0.0.2], expected [10.0.0.1]")
    );
    assert_eq!(reading(&out, "addresses"), Some(2.0));

    let out = probe(&format!("host = \"gone.test\"\nresolver = \"{server}\""))
        .run()
        .await;
    assert_eq!(out.error.as_deref(), Some("gone.test has no addresses"));
    assert_eq!(reading(&out, "addresses"), Some(0.0));
}

#[tokio::test]
async fn the_system_configuration_reads_the_hosts_file() {
    // `localhost` is in /etc/hosts on every machine this runs on; the system configuration
    // consults it before any server.
    let out = probe("host = \"localhost\"").run().await;
    assert_eq!(out.error, None, "{:?}", out.detail);
    assert!(reading(&out, "addresses").unwrap() >= 1.0);
}

#[test]
fn bad_specs_name_their_field() {
    let err = |t: &str| DnsProbe::new(spec::<DnsSpec>(t)).unwrap_err().field;
    assert_eq!(err("host = \"\""), "host");
    assert_eq!(err("host = \"a\"\nexpect = [\"10.0.0.300\"]"), "expect");
    assert_eq!(err("host = \"a\"\nresolver = \"10.0.0.2\""), "resolver");
    assert!(toml::from_str::<DnsSpec>("host = \"a\"\nname = \"b\"").is_err());
}
