//! The `http` probe: one request to a dependency, with expectations on what comes back.
//!
//! It exists so that an HTTP dependency (an API the service calls, a health endpoint) is
//! watched from the outside the way a user meets it: the status must fall in a range, the body
//! may have to contain a string or hold a value at a JSON pointer, and the whole exchange must
//! finish within `max_latency`. The expectations ([`ExpectStatus`], [`JsonExpect`] and
//! [`check_response`]) are shared with the `journey` probe's steps.
//!
//! ```toml
//! [[monitor]]
//! name = "payments-api"
//! kind = "http"
//! url = "https://payments.internal/health"
//! method = "GET"                      # default
//! headers = { Authorization = "Bearer x" }
//! expect_status = "200-299"           # or [200, 204]; default "200-399"
//! body_contains = "ok"
//! json = { pointer = "/status", equals = "up" }
//! max_latency = "500ms"
//! ca_file = "/etc/ballast/internal-ca.pem"   # trusted besides the public roots
//! tls_verify = true                   # false accepts any certificate
//! ```
//!
//! Redirects are not followed: a 3xx is the status checked. Readings: `latency_ms` and `status` (both present whenever a response came back, even when
//! an expectation failed). Only the first [`MAX_BODY`](super::client::MAX_BODY) bytes of a body
//! are read and checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use ballast_core::{Duration, Labels};
use bytes::Bytes;
use http::Method;
use serde::Deserialize;

use super::client::{validate_ca_file, HttpClient, Request, Response, Target};
use super::{BoxFuture, Outcome, Probe, SpecError};

/// The statuses a response may have: ranges of codes, inclusive. Written `"200-299"`, `"204"`,
/// `204` or `[200, 204]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawStatus")]
pub struct ExpectStatus {
    ranges: Vec<(u16, u16)>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawStatus {
    Code(u16),
    Text(String),
    List(Vec<u16>),
}

impl TryFrom<RawStatus> for ExpectStatus {
    type Error = String;

    fn try_from(raw: RawStatus) -> Result<Self, String> {
        match raw {
            RawStatus::Code(c) => ExpectStatus::from_codes(&[c]),
            RawStatus::List(codes) => ExpectStatus::from_codes(&codes),
            RawStatus::Text(text) => ExpectStatus::parse(&text),
        }
    }
}

impl ExpectStatus {
    /// Parses `"200-299"` or `"200"`.
    pub fn parse(text: &str) -> Result<ExpectStatus, String> {
        let bad = || format!("{text:?} is not a status range like \"200-299\" or \"204\"");
        let (lo, hi) = match text.split_once('-') {
            Some((lo, hi)) => (lo.trim(), hi.trim()),
            None => (text.trim(), text.trim()),
        };
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        if !(100..=599).contains(&lo) || !(100..=599).contains(&hi) || lo > hi {
            return Err(bad());
        }
        Ok(ExpectStatus {
            ranges: vec![(lo, hi)],
        })
    }

    pub fn from_codes(codes: &[u16]) -> Result<ExpectStatus, String> {
        if codes.is_empty() {
            return Err("the list of statuses is empty".into());
        }
        if let Some(c) = codes.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(format!("{c} is not an HTTP status"));
        }
        Ok(ExpectStatus {
            ranges: codes.iter().map(|&c| (c, c)).collect(),
        })
    }

    pub fn matches(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl Default for ExpectStatus {
    /// 200-399: success and redirects (which the probe does not follow).
    fn default() -> Self {
        ExpectStatus {
            ranges: vec![(200, 399)],
        }
    }
}

impl fmt::Display for ExpectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// The body must be JSON with `equals` at `pointer` (RFC 6901). Numbers compare by value
/// (`5` equals `5.0`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpect {
    pub pointer: String,
    pub equals: serde_json::Value,
}

impl JsonExpect {
    pub fn validate(&self, field: &str) -> Result<(), SpecError> {
        validate_pointer(&format!("{field}.pointer"), &self.pointer)
    }
}

/// A JSON pointer is empty (the whole document) or starts with `/`.
pub(crate) fn validate_pointer(field: &str, pointer: &str) -> Result<(), SpecError> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(SpecError::new(
            field,
            format!("{pointer:?} is not a JSON pointer: it must start with '/'"),
        ))
    }
}

/// Whether two JSON values are equal, numbers by value.
pub(crate) fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Checks a response against the expectations; the error says which one failed and how.
pub(crate) fn check_response(
    resp: &Response,
    expect_status: &ExpectStatus,
    body_contains: Option<&str>,
    json: Option<&JsonExpect>,
) -> Result<(), String> {
    if !expect_status.matches(resp.status) {
        return Err(format!(
            "expected status {expect_status}, got {}",
            resp.status
        ));
    }
    let partial = if resp.truncated {
        " (only the first 1 MiB was read)"
    } else {
        ""
    };
    if let Some(needle) = body_contains {
        let body = String::from_utf8_lossy(&resp.body);
        if !body.contains(needle) {
            return Err(format!("body does not contain {needle:?}{partial}"));
        }
    }
    if let Some(json) = json {
        let doc = parse_json(&resp.body).map_err(|e| format!("{e}{partial}"))?;
        match doc.pointer(&json.pointer) {
            None => return Err(format!("JSON pointer {}: not found", json.pointer)),
            Some(found) if !json_equal(found, &json.equals) => {
                return Err(format!(
                    "JSON pointer {}: expected {}, got {}",
                    json.pointer, json.equals, found
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub(crate) fn parse_json(body: &Bytes) -> Result<serde_json::Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
}

/// Validates a method name.
pub(crate) fn parse_method(field: &str, method: &str) -> Result<Method, SpecError> {
    Method::from_bytes(method.as_bytes())
        .map_err(|_| SpecError::new(field, format!("{method:?} is not an HTTP method")))
}

/// Validates header names and values.
pub(crate) fn validate_headers(
    field: &str,
    headers: &BTreeMap<String, String>,
) -> Result<(), SpecError> {
    for (name, value) in headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(SpecError::new(
                field,
                format!("{name:?} is not a header name"),
            ));
        }
        if http::HeaderValue::from_str(value).is_err() {
            return Err(SpecError::new(
                format!("{field}.{name}"),
                "the value has characters a header cannot carry",
            ));
        }
    }
    Ok(())
}

pub(crate) fn default_method() -> String {
    "GET".into()
}

pub(crate) fn yes() -> bool {
    true
}

/// `kind = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub expect_status: ExpectStatus,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub json: Option<JsonExpect>,
    #[serde(default)]
    pub max_latency: Option<Duration>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "yes")]
    pub tls_verify: bool,
}

impl HttpSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        Target::parse(&self.url).map_err(|e| SpecError::new("url", e.to_string()))?;
        parse_method("method", &self.method)?;
        validate_headers("headers", &self.headers)?;
        validate_ca_file("ca_file", self.ca_file.as_deref())?;
        if let Some(json) = &self.json {
            json.validate("json")?;
        }
        if self.max_latency.is_some_and(|d| d.is_zero()) {
            return Err(SpecError::new("max_latency", "must be above zero"));
        }
        Ok(())
    }
}

/// Runs an [`HttpSpec`].
#[derive(Debug)]
pub struct HttpProbe {
    spec: HttpSpec,
    client: HttpClient,
    request: Request,
}

impl HttpProbe {
    pub fn new(spec: HttpSpec) -> Result<HttpProbe, SpecError> {
        spec.validate()?;
        let client = HttpClient::new(spec.ca_file.as_deref(), spec.tls_verify)
            .map_err(|e| SpecError::new("ca_file", e.to_string()))?;
        let method = parse_method("method", &spec.method)?;
        let mut request =
            Request::new(method, &spec.url).map_err(|e| SpecError::new("url", e.to_string()))?;
        for (name, value) in &spec.headers {
            request
                .header(name, value)
                .map_err(|e| SpecError::new("headers", e.to_string()))?;
        }
        if let Some(body) = &spec.body {
            request.body = Bytes::from(body.clone());
        }
        Ok(HttpProbe {
            spec,
            client,
            request,
        })
    }

    async fn run_once(&self) -> Outcome {
        let resp = match self.client.send(&self.request).await {
            Ok(r) => r,
            Err(e) => return Outcome::failed(e.to_string()),
        };
        let latency_ms = resp.latency_ms();
        let mut out = Outcome::default();
        out.push("latency_ms", Labels::new(), latency_ms);
        out.push("status", Labels::new(), f64::from(resp.status));
        out.detail = serde_json::json!({
            "status": resp.status,
            "latency_ms": latency_ms,
            "body_truncated": resp.truncated,
        });
        let s = &self.spec;
        let mut verdict = check_response(
            &resp,
            &s.expect_status,
            s.body_contains.as_deref(),
            s.json.as_ref(),
        );
        if let (Ok(()), Some(max)) = (&verdict, s.max_latency) {
            if resp.latency > max.get() {
                verdict = Err(format!(
                    "latency {latency_ms:.1} ms is over max_latency {:?}",
                    max.get()
                ));
            }
        }
        out.error = verdict.err();
        out
    }
}

impl Probe for HttpProbe {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_ranges() {
        let s = ExpectStatus::parse("200-299").unwrap();
        assert!(s.matches(204) && !s.matches(300));
        assert_eq!(s.to_string(), "200-299");
        let s = ExpectStatus::from_codes(&[200, 404]).unwrap();
        assert!(s.matches(404) && !s.matches(201));
        assert_eq!(s.to_string(), "200, 404");
        assert!(ExpectStatus::parse("299-200").is_err());
        assert!(ExpectStatus::parse("abc").is_err());
        assert!(ExpectStatus::parse("700").is_err());
        assert!(ExpectStatus::default().matches(302));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_equal(&json!(5), &json!(5.0)));
        assert!(json_equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equal(&json!("5"), &json!(5)));
    }
}
