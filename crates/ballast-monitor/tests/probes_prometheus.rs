//! The `prometheus` probe against a loopback server answering like Prometheus's query API
//! (the real Prometheus is exercised by the integration tests).

mod common;

use std::sync::{Arc, Mutex};

use common::{handler, reply, serve, spec};

use ballast_core::Labels;
use ballast_monitor::probe::prometheus::{PrometheusProbe, PrometheusSpec};
use ballast_monitor::probe::{Probe, Reading};

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
  {"metric":{"__name__":"up","instance":"a:9100","job":"node"},"value":[1764500000.123,"1"]},
  {"metric":{"__name__":"up","instance":"b:9100","job":"node"},"value":[1764500000.123,"0"]}
]}}"#;
const SCALAR: &str =
    r#"{"status":"success","data":{"resultType":"scalar","result":[1764500000.1,"42.5"]}}"#;
const EMPTY: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
const ERROR: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#;

/// Serves `body` for every query and records the request paths.
async fn prometheus(
    status: u16,
    body: &'static str,
) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let addr = serve(handler(move |req| {
        log.lock().unwrap().push(req.path.clone());
        let mut r = reply(status, body);
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    }))
    .await;
    (addr, seen)
}

fn probe(toml_text: &str) -> PrometheusProbe {
    PrometheusProbe::new(spec::<PrometheusSpec>(toml_text)).unwrap()
}

#[tokio::test]
async fn a_vector_gives_one_reading_per_series_without_the_metric_name() {
    let (addr, seen) = prometheus(200, VECTOR).await;
    let p = probe(&format!(
        "url = \"http://{addr}/\"\nquery = 'up{{job=\"node\"}} == 1'\nvalue = \"up\""
    ));
    assert_eq!(p.kind(), "prometheus");
    let out = p.run().await;
    assert_eq!(out.error, None);
    let series = |instance: &str, n: f64| {
        Reading::new(
            "up",
            Labels::new().with("instance", instance).with("job", "node"),
            n,
        )
    };
    assert_eq!(
        out.readings,
        vec![series("a:9100", 1.0), series("b:9100", 0.0)]
    );
    assert_eq!(out.detail["series"], 2);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["/api/v1/query?query=up%7Bjob%3D%22node%22%7D%20%3D%3D%201"]
    );
}

#[tokio::test]
async fn a_scalar_gives_one_unlabelled_reading_and_an_empty_vector_none() {
    let (addr, _) = prometheus(200, SCALAR).await;
    let out = probe(&format!("url = \"http://{addr}\"\nquery = \"scalar(1)\""))
        .run()
        .await;
    assert_eq!(out.error, None);
    assert_eq!(
        out.readings,
        vec![Reading::new("value", Labels::new(), 42.5)]
    );

    let (addr, _) = prometheus(200, EMPTY).await;
    let out = probe(&format!(
        "url = \"http://{addr}\"\nquery = \"absent_metric\""
    ))
    .run()
    .await;
    assert_eq!(out.error, None);
    assert!(out.readings.is_empty());
}

#[tokio::test]
async fn errors_bad_json_and_ranges_are_errors() {
    let (addr, _) = prometheus(400, ERROR).await;
    let out = probe(&format!("url = \"http://{addr}\"\nquery = \"up{{\""))
        .run()
        .await;
    assert_eq!(
        out.error.as_deref(),
        Some("prometheus: bad_data: invalid parameter \"query\": 1:5: parse error")
    );

    let (addr, _) = prometheus(502, "<html>bad gateway</html>").await;
    let out = probe(&format!("url = \"http://{addr}\"\nquery = \"up\""))
        .run()
        .await;
    let err = out.error.unwrap();
    assert!(err.starts_with("status 502: body is not JSON"), "{err}");

    let (addr, _) = prometheus(200, MATRIX).await;
    let out = probe(&format!("url = \"http://{addr}\"\nquery = \"up[5m]\""))
        .run()
        .await;
    assert!(out.error.unwrap().contains("\"matrix\" is not supported"));
    assert!(out.readings.is_empty());
}

#[test]
fn bad_specs_name_their_field() {
    let err = |t: &str| {
        PrometheusProbe::new(spec::<PrometheusSpec>(t))
            .unwrap_err()
            .field
    };
    assert_eq!(err("url = \"localhost:9090\"\nquery = \"up\""), "url");
    assert_eq!(err("url = \"http://p:9090/?x=1\"\nquery = \"up\""), "url");
    assert_eq!(err("url = \"http://p:9090\"\nquery = \" \""), "query");
    assert_eq!(
        err("url = \"http://p:9090\"\nquery = \"up\"\nvalue = \"\""),
        "value"
    );
    assert!(toml::from_str::<PrometheusSpec>(
        "url = \"http://p\"\nquery = \"up\"\ninterval = \"5s\""
    )
    .is_err());
}
