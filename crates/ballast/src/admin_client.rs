//! A tiny HTTP client for the CLI commands that talk to a running gateway's admin API.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Sends `method path` to the admin API found from `config` or `admin`, prints the answer.
pub fn call(
    config: Option<PathBuf>,
    admin: Option<String>,
    method: &str,
    path: &str,
) -> anyhow::Result<()> {
    let (addr, token) = target(config, admin)?;
    let (status, body) = send(&addr, token.as_deref(), method, path, None)?;
    let pretty = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(body);
    println!("{pretty}");
    if !status.is_success() {
        bail!("admin API at {addr} answered {status}");
    }
    Ok(())
}

/// `GET path` from the admin API; the body of a successful answer, else an error carrying
/// the API's own message.
pub fn get(config: Option<PathBuf>, admin: Option<String>, path: &str) -> anyhow::Result<String> {
    let (addr, token) = target(config, admin)?;
    let (status, body) = send(&addr, token.as_deref(), "GET", path, None)?;
    answer(&addr, status, body)
}

/// `POST path` with a JSON body to the admin API; the body of a successful answer, else an
/// error carrying the API's own message.
pub fn post_json(
    config: Option<PathBuf>,
    admin: Option<String>,
    path: &str,
    json: &serde_json::Value,
) -> anyhow::Result<String> {
    let (addr, token) = target(config, admin)?;
    let json = json.to_string();
    let (status, body) = send(&addr, token.as_deref(), "POST", path, Some(&json))?;
    answer(&addr, status, body)
}

/// `POST path` with a JSON body; the status and body whatever the status (for answers that
/// carry results with a failure status, like `notify test`'s 502).
pub fn post_json_status(
    config: Option<PathBuf>,
    admin: Option<String>,
    path: &str,
    json: &serde_json::Value,
) -> anyhow::Result<(http::StatusCode, String)> {
    let (addr, token) = target(config, admin)?;
    let json = json.to_string();
    send(&addr, token.as_deref(), "POST", path, Some(&json))
}

/// `DELETE path` on the admin API; the body of a successful answer, else an error carrying
/// the API's own message.
pub fn delete(
    config: Option<PathBuf>,
    admin: Option<String>,
    path: &str,
) -> anyhow::Result<String> {
    let (addr, token) = target(config, admin)?;
    let (status, body) = send(&addr, token.as_deref(), "DELETE", path, None)?;
    answer(&addr, status, body)
}

/// The body of a successful answer, else an error with the API's `error` message.
fn answer(addr: &str, status: http::StatusCode, body: String) -> anyhow::Result<String> {
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("admin API at {addr} answered {status}: {message}");
    }
    Ok(body)
}

/// The admin address, from `--admin`, else the config file, else the default; the token from
/// `$BALLAST_TOKEN`, else the config's first operator token.
fn target(
    config: Option<PathBuf>,
    admin: Option<String>,
) -> anyhow::Result<(String, Option<String>)> {
    // A person's own token ($BALLAST_TOKEN) wins; else the config's operator token.
    let own = std::env::var("BALLAST_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let operator = |c: &ballast_config::Config| {
        c.admin
            .all_tokens()
            .into_iter()
            .find(|t| t.role == ballast_config::Role::Operator)
            .map(|t| t.secret)
    };
    let (addr, token) = match (admin, config) {
        (Some(a), cfg) => (
            a,
            cfg.and_then(|c| ballast_config::load(&c).ok())
                .and_then(|c| operator(&c)),
        ),
        (None, Some(c)) => {
            let cfg = ballast_config::load(&c).map_err(|e| anyhow::anyhow!("{e}"))?;
            (cfg.admin.listen.to_string(), operator(&cfg))
        }
        (None, None) => ("127.0.0.1:9900".to_string(), None),
    };
    Ok((addr, own.or(token)))
}

fn send(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(http::StatusCode, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(request(addr, token, method, path, json))
}

/// Percent-encodes a query value (everything but unreserved characters and `/`).
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn request(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> anyhow::Result<(http::StatusCode, String)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach the admin API at {addr}; is ballast running?"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr)
        .header(ballast_admin::ORIGIN_HEADER, "cli");
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if json.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let body = Full::new(Bytes::from(json.unwrap_or_default().to_string()));
    let resp = sender.send_request(req.body(body)?).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
