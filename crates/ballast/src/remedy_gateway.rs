//! The gateway-side remediation actions, carried out on the running gateway: `drain`,
//! `enable`, `eject`, `route` and `shed` as gateway [`Command`]s issued by
//! [`Origin::Remediation`] (so they land in the event log and the change timeline like a
//! person's), and `webhook` as a POST of the run's job.
//!
//! It exists because `ballast-remedy` has no handle on the gateway (the engines never depend
//! on each other): the crate renders and guards the actions, the binary applies them here.

use std::time::Duration;

use ballast_core::{Command, Issued, Origin};
use ballast_notify::http::{Endpoint, HttpClient};
use ballast_notify::Secret;
use ballast_proxy::Gateway;
use ballast_remedy::action::gateway::{drain_command, enable_command};
use ballast_remedy::action::Action;
use ballast_remedy::run::{GatewaySide, Job};
use serde_json::json;

/// The longest a remediation webhook may take to answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies gateway-side actions to one gateway.
pub struct GatewayActions {
    gateway: Gateway,
    http: Option<HttpClient>,
}

impl GatewayActions {
    pub fn new(gateway: Gateway) -> Self {
        let http = HttpClient::new()
            .map_err(|e| tracing::error!(error = %e, "remediation webhooks cannot be sent"))
            .ok();
        GatewayActions { gateway, http }
    }

    async fn command(&self, command: Command) -> Result<String, String> {
        let name = command.name();
        self.gateway
            .apply(Issued {
                command,
                by: Origin::Remediation,
                who: None,
            })
            .await
            .map(|report| {
                serde_json::to_string(&report).unwrap_or_else(|_| format!("{name} applied"))
            })
            .map_err(|e| format!("{name} refused: {e}"))
    }

    async fn webhook(&self, job: &Job, url: &str) -> Result<String, String> {
        let http = self
            .http
            .as_ref()
            .ok_or("webhook: no HTTP client could be built")?;
        let endpoint = Endpoint::parse("remediation", "webhook.url", &Secret::new(url))
            .map_err(|e| format!("webhook: {e}"))?;
        let body = json!({
            "rule": job.rule,
            "target": job.target,
            "alert_id": job.alert_id,
            "dry_run": job.dry_run,
            "started_unix_ms": job.started_unix_ms,
            "actions": job.actions,
        });
        let body = serde_json::to_vec(&body).map_err(|e| format!("webhook: {e}"))?;
        match tokio::time::timeout(WEBHOOK_TIMEOUT, http.post_json(&endpoint, body.into())).await {
            Err(_) => Err("webhook: no answer in time".into()),
            Ok(Err(e)) => Err(format!("webhook: {e}")),
            Ok(Ok(r)) if (200..300).contains(&r.status) => {
                Ok(format!("webhook answered {}", r.status))
            }
            Ok(Ok(r)) => Err(format!("webhook answered {}", r.status)),
        }
    }
}

impl GatewaySide for GatewayActions {
    async fn apply(&self, job: &Job, action: &Action) -> Result<String, String> {
        match action {
            Action::Drain(s) => self.command(drain_command(s)).await,
            Action::Enable(s) => self.command(enable_command(s)).await,
            Action::Eject(s) => {
                self.command(Command::Eject {
                    upstream: s.upstream.clone(),
                    server: s.server.clone(),
                    duration_ms: s
                        .duration
                        .map(|d| u64::try_from(d.get().as_millis()).unwrap_or(u64::MAX)),
                })
                .await
            }
            Action::Route(r) => {
                self.command(Command::Reroute {
                    route: r.route.clone(),
                    to: Some(r.to.clone()),
                })
                .await
            }
            Action::Shed(s) => {
                let share = s.share.get();
                self.command(Command::Shed {
                    class: s.class.clone(),
                    // 0 % clears the class's share.
                    share: (share > 0.0).then_some(share),
                })
                .await
            }
            Action::Webhook(w) => self.webhook(job, &w.url).await,
            Action::Exec(_) | Action::Restart(_) | Action::Clean(_) => Err(format!(
                "{} is carried out by the remediation itself, not the gateway",
                action.kind()
            )),
        }
    }
}
