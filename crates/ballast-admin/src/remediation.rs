//! The endpoints of the commands automatic remediation gives the gateway (and an operator can
//! give by hand): eject a server, reroute a route, shed a priority class.
//!
//! ```text
//! POST /api/v1/servers/{upstream}/{addr}/eject   {"for": "30s"} | {"duration_ms": 30000} | no body
//! POST /api/v1/routes/{route}/reroute            {"to": "sorry"} | {"to": "<upstream>"} | {"to": null}
//! POST /api/v1/shed                              {"class": "low", "share": 0.5} | {"class": "low", "share": null}
//! ```
//!
//! They live apart from the drain/enable handlers because they take JSON bodies, read here by
//! hand so a malformed one is answered with the API's own `{"error": ...}` 400 and a reason.
//! `to` and `share` must be written even when null: a body that forgot them must not restore a
//! route or clear a shed share by accident.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ballast_core::Command;
use serde_json::{Map, Value};

use crate::{command, AdminState, ApiError};

/// The body as a JSON object (an empty body is an empty object), with no keys but `allowed`.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = v else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown field `{k}`: expected {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

/// `key`, which must be present: a string or null.
fn string_or_null(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Ok(None),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`{key}` must be a string or null, not {other}"
        ))),
        None => Err(ApiError::BadRequest(format!(
            "`{key}` is required (null to clear)"
        ))),
    }
}

fn eject_duration(body: &[u8]) -> Result<Option<u64>, ApiError> {
    let map = object(body, &["for", "duration_ms"])?;
    match (map.get("for"), map.get("duration_ms")) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "give `for` or `duration_ms`, not both".into(),
        )),
        (Some(Value::String(s)), None) => s
            .parse::<ballast_core::Duration>()
            .map(|d| Some(d.get().as_millis() as u64))
            .map_err(|e| ApiError::BadRequest(format!("`for`: {e}"))),
        (Some(other), None) => Err(ApiError::BadRequest(format!(
            "`for` must be a duration such as \"30s\", not {other}"
        ))),
        (None, Some(v)) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`duration_ms` must be a whole number of milliseconds, not {v}"
            ))
        }),
        (None, None) => Ok(None),
    }
}

pub(crate) async fn eject(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path((upstream, server)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match eject_duration(&body) {
        Ok(duration_ms) => {
            let cmd = Command::Eject {
                upstream,
                server,
                duration_ms,
            };
            command(&state, &headers, cmd).await
        }
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn reroute(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(route): Path<String>,
    body: Bytes,
) -> Response {
    let to = object(&body, &["to"]).and_then(|m| string_or_null(&m, "to"));
    match to {
        Ok(to) => command(&state, &headers, Command::Reroute { route, to }).await,
        Err(e) => e.into_response(),
    }
}

fn shed_body(body: &[u8]) -> Result<Command, ApiError> {
    let map = object(body, &["class", "share"])?;
    let class = string_or_null(&map, "class")?
        .ok_or_else(|| ApiError::BadRequest("`class` must name a priority class".into()))?;
    let share = match map.get("share") {
        Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`share` must be a number in (0, 1] or null, not {v}"
            ))
        })?),
        None => {
            return Err(ApiError::BadRequest(
                "`share` is required (null to clear)".into(),
            ))
        }
    };
    Ok(Command::Shed { class, share })
}

pub(crate) async fn shed(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match shed_body(&body) {
        Ok(cmd) => command(&state, &headers, cmd).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use ballast_core::{CommandError, Issued, Origin, Report, Snapshot, Stamped};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::{router, BoxFuture, Control};

    /// Records the commands; answers NotFound for the names `nope` and Invalid for a share
    /// above 1, as the gateway does.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Issued>>);

    impl Control for Recorder {
        fn status(&self) -> Snapshot {
            Snapshot {
                listeners: Vec::new(),
                routes: Vec::new(),
                upstreams: Vec::new(),
                open_connections: 0,
            }
        }
        fn metrics(&self) -> String {
            "# EOF\n".into()
        }
        fn events(&self, _after: u64) -> Vec<Stamped> {
            Vec::new()
        }
        fn apply(&self, issued: Issued) -> BoxFuture<'_, Result<Report, CommandError>> {
            Box::pin(async move {
                let report = match issued.command.clone() {
                    Command::Eject { upstream, .. }
                    | Command::Reroute {
                        route: upstream, ..
                    } if upstream == "nope" => {
                        return Err(CommandError::NotFound("no such `nope`".into()))
                    }
                    Command::Shed { share: Some(s), .. } if s > 1.0 => {
                        return Err(CommandError::Invalid("share".into()))
                    }
                    Command::Eject {
                        upstream,
                        server,
                        duration_ms,
                    } => Report::Ejected {
                        upstream,
                        server,
                        ejection_ms: duration_ms.unwrap_or(10_000),
                        until_unix_ms: 1,
                    },
                    Command::Reroute { route, to } => Report::Rerouted {
                        route,
                        to,
                        changed: true,
                    },
                    Command::Shed { class, share } => Report::ShedSet {
                        class,
                        share,
                        changed: true,
                    },
                    other => panic!("not a remediation command: {other:?}"),
                };
                self.0.lock().unwrap().push(issued);
                Ok(report)
            })
        }
    }

    async fn post(
        r: &axum::Router,
        uri: &str,
        body: &str,
        origin: Option<&str>,
    ) -> (StatusCode, String) {
        let mut b = Request::post(uri);
        if let Some(o) = origin {
            b = b.header(crate::ORIGIN_HEADER, o);
        }
        let resp = r
            .clone()
            .oneshot(b.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn app() -> (axum::Router, Arc<Recorder>) {
        let rec = Arc::new(Recorder::default());
        let r = router(AdminState {
            control: rec.clone(),
            access: crate::Access::open(),
        });
        (r, rec)
    }

    fn commands(rec: &Recorder) -> Vec<Command> {
        rec.0
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.command.clone())
            .collect()
    }

    #[tokio::test]
    async fn eject_takes_an_optional_duration() {
        let (r, rec) = app();
        let uri = "/api/v1/servers/app/127.0.0.1:1/eject";
        let (s, body) = post(&r, uri, "", Some("remediation")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(body.contains(r#""result":"ejected""#), "{body}");
        assert_eq!(
            post(&r, uri, r#"{"for":"30s"}"#, None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            post(&r, uri, r#"{"duration_ms":1500}"#, None).await.0,
            StatusCode::OK
        );
        for bad in [
            r#"{"for":"30"}"#,
            r#"{"for":30}"#,
            r#"{"duration_ms":-1}"#,
            r#"{"for":"1s","duration_ms":1000}"#,
            r#"{"seconds":3}"#,
            "[1]",
            "nope",
        ] {
            let (s, body) = post(&r, uri, bad, None).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert!(body.contains("\"error\""), "{body}");
        }
        let (s, _) = post(&r, "/api/v1/servers/nope/127.0.0.1:1/eject", "", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let ejects = |d| Command::Eject {
            upstream: "app".into(),
            server: "127.0.0.1:1".into(),
            duration_ms: d,
        };
        assert_eq!(
            commands(&rec),
            [ejects(None), ejects(Some(30_000)), ejects(Some(1500))]
        );
        assert_eq!(rec.0.lock().unwrap()[0].by, Origin::Remediation);
    }

    #[tokio::test]
    async fn reroute_needs_to_written_even_as_null() {
        let (r, rec) = app();
        let uri = "/api/v1/routes/shop/reroute";
        for body in [r#"{"to":"sorry"}"#, r#"{"to":"standby"}"#, r#"{"to":null}"#] {
            let (s, text) = post(&r, uri, body, None).await;
            assert_eq!(s, StatusCode::OK, "{body}: {text}");
        }
        for bad in ["", "{}", r#"{"to":3}"#, r#"{"upstream":"x"}"#] {
            assert_eq!(
                post(&r, uri, bad, None).await.0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let (s, _) = post(&r, "/api/v1/routes/nope/reroute", r#"{"to":"x"}"#, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let to = |t: Option<&str>| Command::Reroute {
            route: "shop".into(),
            to: t.map(String::from),
        };
        assert_eq!(
            commands(&rec),
            [to(Some("sorry")), to(Some("standby")), to(None)]
        );
    }

    #[tokio::test]
    async fn shed_needs_a_class_and_a_share_or_null() {
        let (r, rec) = app();
        let uri = "/api/v1/shed";
        for body in [
            r#"{"class":"low","share":0.5}"#,
            r#"{"class":"low","share":1}"#,
            r#"{"class":"low","share":null}"#,
        ] {
            assert_eq!(post(&r, uri, body, None).await.0, StatusCode::OK, "{body}");
        }
        for bad in [
            "",
            r#"{"class":"low"}"#,
            r#"{"share":0.5}"#,
            r#"{"class":"low","share":"half"}"#,
            r#"{"class":"low","share":2}"#,
        ] {
            assert_eq!(
                post(&r, uri, bad, None).await.0,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let shed = |s| Command::Shed {
            class: "low".into(),
            share: s,
        };
        assert_eq!(
            commands(&rec),
            [shed(Some(0.5)), shed(Some(1.0)), shed(None)]
        );
    }
}
