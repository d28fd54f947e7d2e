//! The `journey` probe: ordered HTTP steps that act like a user (log in, open a page, read a
//! value), sharing a cookie jar and passing captured values from step to step.
//!
//! It exists because a service can answer its health check and still fail its users: a
//! journey finds the broken step. Each step has the `http` probe's expectations; a step may
//! capture values (from a JSON pointer, a response header, or a regex's first group on the
//! body) that later steps use as `{{name}}` in their URL, header values and body. A
//! placeholder that no earlier step captures is refused when the spec is read. The steps
//! share one cookie jar: a `Set-Cookie` is stored for the host that sent it (its `Domain` and
//! `Path` are ignored), sent back to that host as `Cookie`, and removed by `Max-Age=0` or an
//! `Expires` in the past. The journey stops at the first step that fails.
//!
//! ```toml
//! [[monitor]]
//! name = "checkout"
//! kind = "journey"
//! ca_file = "/etc/ballast/ca.pem"     # optional, as for `http`
//! tls_verify = true
//!
//! [[monitor.steps]]
//! name = "login"
//! method = "POST"
//! url = "https://shop/login"
//! body = "user=probe"
//! expect_status = "200-299"
//! capture = [{ name = "token", json = "/token" }, { name = "req", header = "X-Request-Id" }]
//!
//! [[monitor.steps]]
//! name = "profile"
//! url = "https://shop/me"
//! headers = { Authorization = "Bearer {{token}}" }
//! json = { pointer = "/user/name", equals = "probe" }
//! capture = [{ name = "cart", regex = "cart=(\\w+)" }]
//!
//! [[monitor.steps]]
//! name = "cart"
//! url = "https://shop/cart/{{cart}}"
//! body_contains = "items"
//! ```
//!
//! (TOML inline tables must fit on one line, so long steps read best as `[[monitor.steps]]`
//! tables.)
//!
//! Readings: `latency_ms` (the steps' total), `step_latency_ms{step=NAME}` for each step that
//! ran, and `failed_step` (0 when all passed, else the failed step's 1-based index). The error
//! reads `step 2 ("profile"): expected status 200, got 500`; the detail lists each step that
//! ran with its name, status, latency_ms, ok and error. Captured values are inserted as they
//! are (not URL-encoded) and are not shown in the detail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use ballast_core::Labels;
use bytes::Bytes;
use http::{HeaderMap, Method};
use regex::Regex;
use serde::Deserialize;

use super::client::{validate_ca_file, HttpClient, Request, Response, Target};
use super::http::{
    check_response, default_method, parse_json, parse_method, validate_headers, validate_pointer,
    yes, ExpectStatus, JsonExpect,
};
use super::{BoxFuture, Outcome, Probe, SpecError};

/// `kind = "journey"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneySpec {
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "yes")]
    pub tls_verify: bool,
}

/// One step of a journey.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
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
    pub capture: Vec<CaptureSpec>,
}

/// A value a step takes from its response: exactly one of `json`, `header` or `regex`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSpec {
    pub name: String,
    /// A JSON pointer into the body; a string is taken as is, anything else as JSON text.
    #[serde(default)]
    pub json: Option<String>,
    /// A response header's value.
    #[serde(default)]
    pub header: Option<String>,
    /// A pattern with at least one group, matched on the body; the first group is taken.
    #[serde(default)]
    pub regex: Option<String>,
}

impl JourneySpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_ca_file("ca_file", self.ca_file.as_deref())?;
        compile(self).map(|_| ())
    }
}

/// Text with `{{name}}` placeholders.
#[derive(Debug, Clone)]
struct Template(Vec<Piece>);

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Var(String),
}

impl Template {
    fn parse(field: &str, text: &str) -> Result<Template, SpecError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let (before, after) = rest.split_at(open);
            let after = after.get(2..).unwrap_or_default();
            let close = after
                .find("}}")
                .ok_or_else(|| SpecError::new(field, "a `{{` is not closed by `}}`"))?;
            let (name, tail) = after.split_at(close);
            let name = name.trim();
            if !valid_name(name) {
                return Err(SpecError::new(
                    field,
                    format!("{{{{{name}}}}} is not a placeholder (letters, digits, _ and -)"),
                ));
            }
            if !before.is_empty() {
                pieces.push(Piece::Text(before.to_string()));
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = tail.get(2..).unwrap_or_default();
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template(pieces))
    }

    fn vars(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fills the placeholders; a missing value (which validation rules out) renders empty.
    fn render(&self, vars: &HashMap<String, String>) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(vars.get(v).map(String::as_str).unwrap_or("")),
            }
        }
        out
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[derive(Debug)]
enum Source {
    Json(String),
    Header(http::HeaderName),
    Regex(Regex),
}

#[derive(Debug)]
struct Capture {
    name: String,
    from: Source,
}

#[derive(Debug)]
struct Step {
    name: String,
    method: Method,
    url: Template,
    headers: Vec<(String, Template)>,
    body: Option<Template>,
    expect_status: ExpectStatus,
    body_contains: Option<String>,
    json: Option<JsonExpect>,
    captures: Vec<Capture>,
}

/// Validates the spec and compiles its steps.
fn compile(spec: &JourneySpec) -> Result<Vec<Step>, SpecError> {
    if spec.steps.is_empty() {
        return Err(SpecError::new("steps", "a journey needs at least one step"));
    }
    let mut names = HashSet::new();
    let mut captured: HashSet<String> = HashSet::new();
    let mut steps = Vec::with_capacity(spec.steps.len());
    for (i, s) in spec.steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        if s.name.trim().is_empty() {
            return Err(SpecError::new(at("name"), "is empty"));
        }
        if !names.insert(s.name.as_str()) {
            return Err(SpecError::new(
                at("name"),
                format!("two steps are named {:?}", s.name),
            ));
        }
        let method = parse_method(&at("method"), &s.method)?;
        let url = Template::parse(&at("url"), &s.url)?;
        // The URL must parse with its placeholders filled in.
        let probe: HashMap<String, String> = url
            .vars()
            .map(|v| (v.to_string(), "x".to_string()))
            .collect();
        Target::parse(&url.render(&probe)).map_err(|e| SpecError::new(at("url"), e.to_string()))?;
        validate_headers(&at("headers"), &s.headers)?;
        let mut headers = Vec::new();
        for (name, value) in &s.headers {
            headers.push((
                name.clone(),
                Template::parse(&format!("{}.{name}", at("headers")), value)?,
            ));
        }
        let body = match &s.body {
            Some(b) => Some(Template::parse(&at("body"), b)?),
            None => None,
        };
        let mut fields = vec![(at("url"), &url)];
        fields.extend(
            headers
                .iter()
                .map(|(n, t)| (format!("{}.{n}", at("headers")), t)),
        );
        if let Some(b) = &body {
            fields.push((at("body"), b));
        }
        for (field, template) in fields {
            if let Some(v) = template.vars().find(|v| !captured.contains(*v)) {
                return Err(SpecError::new(
                    field,
                    format!("{{{{{v}}}}} is not captured by an earlier step"),
                ));
            }
        }
        if let Some(json) = &s.json {
            json.validate(&at("json"))?;
        }
        let mut captures = Vec::new();
        for (j, c) in s.capture.iter().enumerate() {
            let cat = |f: &str| format!("steps[{i}].capture[{j}]{f}");
            if !valid_name(&c.name) {
                return Err(SpecError::new(
                    cat(".name"),
                    format!("{:?} is not a name (letters, digits, _ and -)", c.name),
                ));
            }
            let from = match (&c.json, &c.header, &c.regex) {
                (Some(p), None, None) => {
                    validate_pointer(&cat(".json"), p)?;
                    Source::Json(p.clone())
                }
                (None, Some(h), None) => {
                    Source::Header(http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                        SpecError::new(cat(".header"), format!("{h:?} is not a header name"))
                    })?)
                }
                (None, None, Some(r)) => {
                    let re =
                        Regex::new(r).map_err(|e| SpecError::new(cat(".regex"), e.to_string()))?;
                    if re.captures_len() < 2 {
                        return Err(SpecError::new(
                            cat(".regex"),
                            "needs a group, e.g. \"token=(\\\\w+)\"; its first group is captured",
                        ));
                    }
                    Source::Regex(re)
                }
                _ => {
                    return Err(SpecError::new(
                        cat(""),
                        "give exactly one of json, header or regex",
                    ))
                }
            };
            captures.push(Capture {
                name: c.name.clone(),
                from,
            });
        }
        for c in &captures {
            captured.insert(c.name.clone());
        }
        steps.push(Step {
            name: s.name.clone(),
            method,
            url,
            headers,
            body,
            expect_status: s.expect_status.clone(),
            body_contains: s.body_contains.clone(),
            json: s.json.clone(),
            captures,
        });
    }
    Ok(steps)
}

/// Cookies by host, as a journey's steps share them.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    hosts: HashMap<String, BTreeMap<String, Cookie>>,
}

#[derive(Debug, Clone)]
struct Cookie {
    value: String,
    expires: Option<SystemTime>,
}

impl CookieJar {
    /// Stores (or deletes) the cookies of every `Set-Cookie` in `headers`.
    pub(crate) fn store(&mut self, host: &str, headers: &HeaderMap, now: SystemTime) {
        for value in headers.get_all(http::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let mut max_age: Option<i64> = None;
            let mut expires: Option<SystemTime> = None;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("max-age") {
                    max_age = v.parse().ok();
                } else if k.eq_ignore_ascii_case("expires") {
                    expires = httpdate::parse_http_date(v).ok();
                }
            }
            // Max-Age wins over Expires (RFC 6265 5.3).
            let expires = match max_age {
                Some(secs) if secs <= 0 => Some(SystemTime::UNIX_EPOCH),
                Some(secs) => now.checked_add(std::time::Duration::from_secs(secs.unsigned_abs())),
                None => expires,
            };
            let cookies = self.hosts.entry(host.to_ascii_lowercase()).or_default();
            if expires.is_some_and(|e| e <= now) {
                cookies.remove(name);
            } else {
                let value = val.trim().to_string();
                cookies.insert(name.to_string(), Cookie { value, expires });
            }
        }
    }

    /// The `Cookie` header for `host`, if it has unexpired cookies.
    pub(crate) fn header(&self, host: &str, now: SystemTime) -> Option<String> {
        let cookies = self.hosts.get(&host.to_ascii_lowercase())?;
        let pairs: Vec<String> = cookies
            .iter()
            .filter(|(_, c)| c.expires.is_none_or(|e| e > now))
            .map(|(n, c)| format!("{n}={}", c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }
}

/// Runs a [`JourneySpec`].
#[derive(Debug)]
pub struct JourneyProbe {
    steps: Vec<Step>,
    client: HttpClient,
}

/// What one step did.
struct StepRun {
    status: Option<u16>,
    latency_ms: f64,
    error: Option<String>,
}

impl JourneyProbe {
    pub fn new(spec: JourneySpec) -> Result<JourneyProbe, SpecError> {
        spec.validate()?;
        let steps = compile(&spec)?;
        let client = HttpClient::new(spec.ca_file.as_deref(), spec.tls_verify)
            .map_err(|e| SpecError::new("ca_file", e.to_string()))?;
        Ok(JourneyProbe { steps, client })
    }

    async fn run_once(&self) -> Outcome {
        let mut vars = HashMap::new();
        let mut jar = CookieJar::default();
        let mut out = Outcome::default();
        let mut total = 0.0;
        let mut failed = 0usize;
        let mut detail = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let run = self.run_step(step, &mut vars, &mut jar).await;
            total += run.latency_ms;
            out.push(
                "step_latency_ms",
                Labels::new().with("step", step.name.clone()),
                run.latency_ms,
            );
            detail.push(serde_json::json!({
                "name": step.name,
                "status": run.status,
                "latency_ms": run.latency_ms,
                "ok": run.error.is_none(),
                "error": run.error,
            }));
            if let Some(e) = run.error {
                failed = i + 1;
                out.error = Some(format!("step {} ({:?}): {e}", i + 1, step.name));
                break;
            }
        }
        out.push("latency_ms", Labels::new(), total);
        out.push("failed_step", Labels::new(), failed as f64);
        out.detail = serde_json::Value::Array(detail);
        out
    }

    async fn run_step(
        &self,
        step: &Step,
        vars: &mut HashMap<String, String>,
        jar: &mut CookieJar,
    ) -> StepRun {
        let start = Instant::now();
        let result = self.exchange(step, vars, jar).await;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(resp) => {
                let mut error = check_response(
                    &resp,
                    &step.expect_status,
                    step.body_contains.as_deref(),
                    step.json.as_ref(),
                )
                .err();
                if error.is_none() {
                    error = capture(step, &resp, vars).err();
                }
                StepRun {
                    status: Some(resp.status),
                    latency_ms: resp.latency_ms(),
                    error,
                }
            }
            Err(e) => StepRun {
                status: None,
                latency_ms: elapsed,
                error: Some(e),
            },
        }
    }

    /// Builds the step's request from the captured values and the jar, sends it, and stores
    /// the cookies it set.
    async fn exchange(
        &self,
        step: &Step,
        vars: &HashMap<String, String>,
        jar: &mut CookieJar,
    ) -> Result<Response, String> {
        let url = step.url.render(vars);
        let mut req = Request::new(step.method.clone(), &url).map_err(|e| e.to_string())?;
        for (name, value) in &step.headers {
            req.header(name, &value.render(vars))
                .map_err(|e| e.to_string())?;
        }
        if let Some(body) = &step.body {
            req.body = Bytes::from(body.render(vars));
        }
        let host = req.target.host.clone();
        if let Some(cookies) = jar.header(&host, SystemTime::now()) {
            let merged = match req
                .headers
                .remove(http::header::COOKIE)
                .and_then(|v| v.to_str().map(str::to_string).ok())
            {
                Some(own) => format!("{own}; {cookies}"),
                None => cookies,
            };
            req.header("cookie", &merged).map_err(|e| e.to_string())?;
        }
        let resp = self.client.send(&req).await.map_err(|e| e.to_string())?;
        jar.store(&host, &resp.headers, SystemTime::now());
        Ok(resp)
    }
}

/// Takes the step's captures from its response into `vars`.
fn capture(step: &Step, resp: &Response, vars: &mut HashMap<String, String>) -> Result<(), String> {
    let mut doc = None;
    for c in &step.captures {
        let value = match &c.from {
            Source::Json(pointer) => {
                if doc.is_none() {
                    doc = Some(parse_json(&resp.body).map_err(|e| capture_err(c, &e))?);
                }
                let found = doc
                    .as_ref()
                    .and_then(|d| d.pointer(pointer))
                    .ok_or_else(|| capture_err(c, &format!("JSON pointer {pointer} not found")))?;
                match found {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            }
            Source::Header(name) => resp
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| capture_err(c, &format!("no {name} header")))?,
            Source::Regex(re) => {
                let body = String::from_utf8_lossy(&resp.body);
                re.captures(&body)
                    .and_then(|m| m.get(1))
                    .map(|m| m.as_str().to_string())
                    .ok_or_else(|| capture_err(c, &format!("/{re}/ does not match the body")))?
            }
        };
        vars.insert(c.name.clone(), value);
    }
    Ok(())
}

fn capture_err(c: &Capture, why: &str) -> String {
    format!("capture {:?}: {why}", c.name)
}

impl Probe for JourneyProbe {
    fn kind(&self) -> &'static str {
        "journey"
    }

    fn run(&self) -> BoxFuture<'_, Outcome> {
        Box::pin(self.run_once())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::Duration;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn templates() {
        let t = Template::parse("f", "a/{{ id }}/b?{{x}}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), ["id", "x"]);
        assert_eq!(t.render(&vars(&[("id", "7"), ("x", "y")])), "a/7/b?y");
        assert!(Template::parse("f", "a {{oops").is_err());
        assert!(Template::parse("f", "a {{no way}}").is_err());
        assert_eq!(
            Template::parse("f", "plain").unwrap().render(&vars(&[])),
            "plain"
        );
    }

    #[test]
    fn cookies_are_stored_sent_and_expired() {
        let now = SystemTime::now();
        let mut jar = CookieJar::default();
        let mut h = HeaderMap::new();
        h.append(
            "set-cookie",
            HeaderValue::from_static("sid=abc; Path=/; HttpOnly"),
        );
        h.append(
            "set-cookie",
            HeaderValue::from_static("theme=dark; Max-Age=60"),
        );
        jar.store("Shop", &h, now);
        assert_eq!(
            jar.header("shop", now).as_deref(),
            Some("sid=abc; theme=dark")
        );
        assert_eq!(jar.header("other", now), None);
        // Expired by time passing.
        let later = now + Duration::from_secs(120);
        assert_eq!(jar.header("shop", later).as_deref(), Some("sid=abc"));
        // Deleted by Max-Age=0 and by an Expires in the past.
        let mut h = HeaderMap::new();
        h.append("set-cookie", HeaderValue::from_static("sid=; Max-Age=0"));
        h.append(
            "set-cookie",
            HeaderValue::from_static("theme=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        );
        jar.store("shop", &h, now);
        assert_eq!(jar.header("shop", now), None);
    }
}
