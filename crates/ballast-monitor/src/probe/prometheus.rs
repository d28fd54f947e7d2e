//! The `prometheus` probe: an instant PromQL query against a Prometheus HTTP API, one reading
//! per series.
//!
//! It exists so that whatever an existing Prometheus already measures (a queue's depth, a
//! database's replication lag) can feed Ballast's rules, with their warning and critical
//! levels, minimums and hysteresis, without Ballast scraping it again.
//!
//! ```toml
//! [[monitor]]
//! name = "queue-depth"
//! kind = "prometheus"
//! url = "http://127.0.0.1:9090"       # the base; /api/v1/query is added
//! query = "sum by (queue) (rabbitmq_queue_messages)"
//! value = "depth"                     # the readings' name; default "value"
//! headers = { Authorization = "Bearer x" }   # optional
//! ca_file = "/etc/ballast/ca.pem"     # optional, for https
//! tls_verify = true
//! ```
//!
//! A vector result gives one reading per series, labelled with the series' labels except
//! `__name__`; a scalar gives one reading with no labels; an empty vector gives no readings
//! (which a `min` rule counts as 0). A matrix or string result, `"status":"error"` or a body
//! that is not the API's JSON is an error.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ballast_core::Labels;
use http::Method;
use serde::Deserialize;
use serde_json::Value;

use super::client::{validate_ca_file, HttpClient, Request, Response, Target};
use super::http::{parse_json, validate_headers, yes};
use super::{BoxFuture, Outcome, Probe, SpecError};

fn default_value() -> String {
    "value".into()
}

/// `kind = "prometheus"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    pub url: String,
    pub query: String,
    #[serde(default = "default_value")]
    pub value: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "yes")]
    pub tls_verify: bool,
}

impl PrometheusSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        Target::parse(&self.query_url()).map_err(|e| SpecError::new("url", e.to_string()))?;
        if self.url.contains('?') || self.url.contains('#') {
            return Err(SpecError::new(
                "url",
                "give the base URL only (e.g. \"http://127.0.0.1:9090\"); the query is added",
            ));
        }
        if self.query.trim().is_empty() {
            return Err(SpecError::new("query", "is empty"));
        }
        if self.value.trim().is_empty() {
            return Err(SpecError::new("value", "is empty"));
        }
        validate_headers("headers", &self.headers)?;
        validate_ca_file("ca_file", self.ca_file.as_deref())
    }

    fn query_url(&self) -> String {
        format!(
            "{}/api/v1/query?query={}",
            self.url.trim_end_matches('/'),
            encode(&self.query)
        )
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs a [`PrometheusSpec`].
#[derive(Debug)]
pub struct PrometheusProbe {
    value: String,
    client: HttpClient,
    request: Request,
}

impl PrometheusProbe {
    pub fn new(spec: PrometheusSpec) -> Result<PrometheusProbe, SpecError> {
        spec.validate()?;
        let client = HttpClient::new(spec.ca_file.as_deref(), spec.tls_verify)
            .map_err(|e| SpecError::new("ca_file", e.to_string()))?;
        let mut request = Request::new(Method::GET, &spec.query_url())
            .map_err(|e| SpecError::new("url", e.to_string()))?;
        for (name, value) in &spec.headers {
            request
                .header(name, value)
                .map_err(|e| SpecError::new("headers", e.to_string()))?;
        }
        request
            .header("accept", "application/json")
            .map_err(|e| SpecError::new("headers", e.to_string()))?;
        Ok(PrometheusProbe {
            value: spec.value.trim().to_string(),
            client,
            request,
        })
    }

    async fn run_once(&self) -> Outcome {
        match self.client.send(&self.request).await {
            Ok(resp) => parse_response(&self.value, &resp),
            Err(e) => Outcome::failed(e.to_string()),
        }
    }
}

/// Turns a query API response into readings named `value`.
pub(crate) fn parse_response(value: &str, resp: &Response) -> Outcome {
    let doc = match parse_json(&resp.body) {
        Ok(d) => d,
        Err(e) => return Outcome::failed(format!("status {}: {e}", resp.status)),
    };
    let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    match str_of(&doc, "status").as_deref() {
        Some("success") => {}
        Some("error") => {
            let kind = str_of(&doc, "errorType").unwrap_or_else(|| "error".into());
            let msg = str_of(&doc, "error").unwrap_or_default();
            return Outcome::failed(format!("prometheus: {kind}: {msg}"));
        }
        _ => {
            return Outcome::failed(format!(
                "status {}: not a Prometheus query response (no \"status\")",
                resp.status
            ))
        }
    }
    let Some(data) = doc.get("data") else {
        return Outcome::failed("prometheus: the response has no \"data\"");
    };
    let kind = str_of(data, "resultType").unwrap_or_default();
    let result = data.get("result").unwrap_or(&Value::Null);
    let mut out = Outcome::default();
    match kind.as_str() {
        "vector" => {
            let Some(series) = result.as_array() else {
                return Outcome::failed("prometheus: a vector result that is not a list");
            };
            for s in series {
                let mut labels = Labels::new();
                if let Some(metric) = s.get("metric").and_then(Value::as_object) {
                    for (k, v) in metric {
                        if k != "__name__" {
                            labels.insert(k.clone(), v.as_str().unwrap_or_default());
                        }
                    }
                }
                match sample(s.get("value")) {
                    Some(n) => out.push(value, labels, n),
                    None => {
                        return Outcome::failed("prometheus: a series without a [time, \"value\"]")
                    }
                }
            }
        }
        "scalar" => match sample(Some(result)) {
            Some(n) => out.push(value, Labels::new(), n),
            None => return Outcome::failed("prometheus: a scalar without a [time, \"value\"]"),
        },
        other => {
            return Outcome::failed(format!(
                "prometheus: result type {other:?} is not supported (only vector and scalar; \
                 an instant query should not return a range)"
            ))
        }
    }
    out.detail = serde_json::json!({ "result_type": kind, "series": out.readings.len() });
    out
}

/// The number of a `[time, "value"]` pair; Prometheus writes `NaN`, `+Inf` and `-Inf` too.
fn sample(pair: Option<&Value>) -> Option<f64> {
    let text = pair?.as_array()?.get(1)?.as_str()?;
    text.trim().parse::<f64>().ok()
}

impl Probe for PrometheusProbe {
    fn kind(&self) -> &'static str {
        "prometheus"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_queries() {
        assert_eq!(encode("up{job=\"a b\"}"), "up%7Bjob%3D%22a%20b%22%7D");
        assert_eq!(
            sample(Some(&serde_json::json!([1.5, "+Inf"]))),
            Some(f64::INFINITY)
        );
        assert!(sample(Some(&serde_json::json!([1.5, "NaN"]))).is_some_and(f64::is_nan));
        assert_eq!(sample(Some(&serde_json::json!([1.5]))), None);
    }
}
