//! One upstream (`/ui/upstreams/{name}`): its servers with their last hour, and the drain and
//! enable buttons, which issue the same commands as `POST /api/v1/servers/.../drain`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ballast_core::{Command, Issued, Origin};

use super::overview::{gateway_monitor, points_of, series, ServerRow, CHART_SPAN_MS};
use super::session::Viewer;
use super::{refused, render, svg, Ctx, Posted};
use crate::AdminState;

struct ServerCharts {
    addr: String,
    rate: String,
    errors: String,
}

#[derive(Template)]
#[template(path = "upstream.html")]
struct UpstreamPage {
    ctx: Ctx,
    servers: Vec<ServerRow>,
    charts: Vec<ServerCharts>,
    balance: String,
}

pub(crate) async fn page(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    let status = state.control.status();
    let Some(up) = status.upstreams.iter().find(|u| u.name == name) else {
        return refused(
            StatusCode::NOT_FOUND,
            &format!("no upstream is named {name:?}"),
        );
    };
    let (rates, errors) = match gateway_monitor(&state) {
        Some(m) => (
            series(&state, &m, "requests_per_s", CHART_SPAN_MS).await,
            series(&state, &m, "error_ratio", CHART_SPAN_MS).await,
        ),
        None => Default::default(),
    };
    let charts = up
        .servers
        .iter()
        .map(|s| {
            let key = [("upstream", name.as_str()), ("server", s.addr.as_str())];
            ServerCharts {
                addr: s.addr.clone(),
                rate: svg::chart(points_of(&rates, &key), "requests per second", "req/s"),
                errors: svg::chart(
                    &points_of(&errors, &key)
                        .iter()
                        .map(|(t, v)| (*t, v * 100.0))
                        .collect::<Vec<_>>(),
                    "5xx share",
                    "%",
                ),
            }
        })
        .collect();
    render(&UpstreamPage {
        ctx: Ctx::new(
            &state,
            &viewer,
            format!("Upstream {name}"),
            "overview",
            format!("/ui/upstreams/{name}"),
        )
        .refreshing(),
        servers: up
            .servers
            .iter()
            .map(|s| ServerRow::of(&up.name, s))
            .collect(),
        charts,
        balance: up.balance.clone(),
    })
}

/// `POST /ui/servers/{upstream}/{server}/{drain|enable}`.
pub(crate) async fn act(
    State(state): State<AdminState>,
    Extension(viewer): Extension<Viewer>,
    Path((upstream, server, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let form = Posted::new(&state, &viewer, body, "/");
    let command = match action.as_str() {
        "drain" => Command::Drain {
            upstream: upstream.clone(),
            server: server.clone(),
        },
        "enable" => Command::Enable {
            upstream: upstream.clone(),
            server: server.clone(),
        },
        other => {
            return refused(
                StatusCode::NOT_FOUND,
                &format!("servers can be drained or enabled, not {other:?}"),
            )
        }
    };
    let issued = Issued {
        command,
        by: Origin::Dashboard,
        who: Some(form.who()),
    };
    let verb = if action == "drain" {
        "drained"
    } else {
        "enabled"
    };
    form.outcome(
        state.control.apply(issued).await,
        |_| format!("{server} in {upstream} {verb}"),
        &format!("{action} {server}"),
    )
}
