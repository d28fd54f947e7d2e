//! "What changed recently?" over HTTP: `POST /api/v1/changes` records a change marker (from a
//! CI/CD pipeline or a person), `GET /api/v1/changes?since=2h` answers with markers, config
//! versions and runtime commands merged newest first, and `GET /api/v1/config/drift` says which
//! instances sharing the store run another config.
//!
//! It exists so that a pipeline can mark a deploy with one `curl`, and so that whoever is
//! looking at an incident gets every recent change in one list. This module owns the HTTP side:
//! reading the body and the query without ever panicking, and refusing bad input with a 400
//! that says what to write. What is checked is decided in `ballast_core::changes`; where the
//! records come from stays behind [`crate::Control`].

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ballast_core::changes::{check_marker, marker_kind};
use ballast_core::NewChange;
use serde::Deserialize;

use crate::{AdminState, ApiError};

/// The window of `GET /api/v1/changes` without `?since=`.
pub const DEFAULT_SINCE: &str = "24h";
/// Entries when `?limit=` is absent, and the most one request may ask for.
pub const DEFAULT_LIMIT: u32 = 500;
pub const MAX_LIMIT: u32 = 5000;

/// The body of `POST /api/v1/changes`. Unknown fields are refused, so that a misspelt
/// `sumary` is an error rather than a marker without its summary.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerRequest {
    kind: String,
    summary: String,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// Defaults to the time the request arrives.
    #[serde(default)]
    at_unix_ms: Option<u64>,
}

/// Reads and checks a marker from a request body: the 400 message on failure.
fn marker(body: &[u8], now_unix_ms: u64) -> Result<NewChange, String> {
    let req: MarkerRequest = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body must be a JSON object with \"kind\" and \"summary\" (and optionally service, version, author, url, at_unix_ms): {e}"
        )
    })?;
    let change = NewChange {
        kind: marker_kind(&req.kind).map_err(|e| e.to_string())?,
        service: req.service,
        version: req.version,
        summary: req.summary,
        author: req.author,
        url: req.url,
        at_unix_ms: req.at_unix_ms.unwrap_or(now_unix_ms),
    };
    check_marker(&change, now_unix_ms).map_err(|e| e.to_string())?;
    Ok(change)
}

pub(crate) async fn record(State(state): State<AdminState>, body: Bytes) -> Response {
    let change = match marker(&body, now_unix_ms()) {
        Ok(c) => c,
        Err(reason) => return ApiError::BadRequest(reason).into_response(),
    };
    match state.control.record_change(change).await {
        Ok(stored) => (StatusCode::CREATED, Json(stored)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    since: Option<String>,
    limit: Option<String>,
}

/// `since` and `limit` of a listing, or the 400 message.
fn window(q: &ListQuery, now_unix_ms: u64) -> Result<(u64, u32), String> {
    let text = q.since.as_deref().unwrap_or(DEFAULT_SINCE);
    let since: ballast_core::Duration = text
        .parse()
        .map_err(|e| format!("since: {e}; e.g. ?since=2h or ?since=7d"))?;
    let ms = u64::try_from(since.get().as_millis()).unwrap_or(u64::MAX);
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                format!("limit must be a whole number from 1 to {MAX_LIMIT} (got {t:?})")
            })?,
    };
    Ok((now_unix_ms.saturating_sub(ms), limit))
}

pub(crate) async fn list(State(state): State<AdminState>, Query(q): Query<ListQuery>) -> Response {
    let (since, limit) = match window(&q, now_unix_ms()) {
        Ok(w) => w,
        Err(reason) => return ApiError::BadRequest(reason).into_response(),
    };
    match state.control.changes(since, limit).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub(crate) async fn drift(State(state): State<AdminState>) -> Response {
    match state.control.drift().await {
        Ok(report) => Json(report).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::ChangeKind;

    #[test]
    fn a_full_marker_and_a_minimal_one() {
        let body = br#"{"kind":"deploy","summary":"shop 1.2.3","service":"shop","version":"1.2.3",
            "author":"ci","url":"https://ci.example/run/7","at_unix_ms":5000}"#;
        let c = marker(body, 6000).unwrap();
        assert_eq!(c.kind, ChangeKind::Deploy);
        assert_eq!(c.service.as_deref(), Some("shop"));
        assert_eq!(c.at_unix_ms, 5000);
        let c = marker(br#"{"kind":"note","summary":"x"}"#, 6000).unwrap();
        assert_eq!((c.author, c.at_unix_ms), (None, 6000));
        let c = marker(br#"{"kind":"flag","summary":"x","service":null}"#, 1).unwrap();
        assert_eq!(c.service, None);
    }

    #[test]
    fn bad_bodies_say_why() {
        let cases: [(&[u8], &str); 10] = [
            (b"", "must be a JSON object"),
            (b"not json", "must be a JSON object"),
            (b"[1,2]", "must be a JSON object"),
            (br#"{"kind":"deploy"}"#, "missing field `summary`"),
            (br#"{"summary":"x"}"#, "missing field `kind`"),
            (
                br#"{"kind":"deploys","summary":"x"}"#,
                "kind must be one of",
            ),
            (
                br#"{"kind":"note","summary":" "}"#,
                "summary must not be empty",
            ),
            (
                br#"{"kind":"note","summary":"x","sumary":"y"}"#,
                "unknown field `sumary`",
            ),
            (
                br#"{"kind":"note","summary":"x","at_unix_ms":-1}"#,
                "expected u64",
            ),
            (
                br#"{"kind":"note","summary":"x","url":"javascript:x"}"#,
                "url must start",
            ),
        ];
        for (body, expected) in cases {
            let e = marker(body, 1000).unwrap_err();
            assert!(
                e.contains(expected),
                "{}: {e}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(marker(&[0xff, 0xfe, b'{'], 1000).is_err());
    }

    fn q(since: Option<&str>, limit: Option<&str>) -> ListQuery {
        ListQuery {
            since: since.map(String::from),
            limit: limit.map(String::from),
        }
    }

    #[test]
    fn windows_have_units_and_bounds() {
        let now = 100 * 3_600_000;
        assert_eq!(
            window(&q(None, None), now),
            Ok((76 * 3_600_000, DEFAULT_LIMIT))
        );
        assert_eq!(
            window(&q(Some("2h"), Some("10")), now),
            Ok((98 * 3_600_000, 10))
        );
        assert_eq!(window(&q(Some("1000d"), None), now).unwrap().0, 0);
        let e = window(&q(Some("2"), None), now).unwrap_err();
        assert!(e.contains("needs a unit"), "{e}");
        let e = window(&q(Some("soon"), None), now).unwrap_err();
        assert!(e.starts_with("since:"), "{e}");
        for bad in ["0", "-1", "x", "5001"] {
            let e = window(&q(None, Some(bad)), now).unwrap_err();
            assert!(e.contains("limit must be"), "{e}");
        }
    }
}
