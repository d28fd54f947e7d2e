//! Wires the engines together and runs them: the gateway, the admin listener, and the signals
//! that drive reload (SIGHUP) and graceful shutdown (SIGTERM, SIGINT).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use ballast_admin::{AdminState, BoxFuture, Control, NotFound};
use ballast_config::Config;
use ballast_proxy::Gateway;
use serde_json::Value;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Where the configuration comes from, so reload can read it again.
#[derive(Clone)]
pub enum Source {
    File(PathBuf),
    Embedded(&'static str),
}

impl Source {
    fn load(&self) -> Result<Config, String> {
        match self {
            Source::File(p) => ballast_config::load(p).map_err(|e| e.to_string()),
            Source::Embedded(src) => {
                ballast_config::parse(src, "<embedded demo config>").map_err(|e| e.to_string())
            }
        }
    }
}

/// The admin API's view of the running gateway.
struct App {
    gateway: Gateway,
    source: Source,
}

impl App {
    async fn reload(&self) -> Result<Value, String> {
        let cfg = match self.source.load() {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: invalid config; the running config stays");
                // Counted like a refused apply: `ballast_reloads_total{result="error"}`.
                self.gateway.record_refused_reload();
                return Err(e);
            }
        };
        match self.gateway.reload(cfg).await {
            Ok(report) => {
                tracing::info!(?report, "config reloaded");
                serde_json::to_value(report).map_err(|e| e.to_string())
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the running config stays");
                Err(e.to_string())
            }
        }
    }
}

impl Control for App {
    fn status(&self) -> Value {
        serde_json::to_value(self.gateway.status()).unwrap_or(Value::Null)
    }

    fn metrics(&self) -> String {
        self.gateway.encode_metrics()
    }

    fn set_drain(&self, upstream: &str, addr: &str, drained: bool) -> Result<(), NotFound> {
        self.gateway
            .set_drain(upstream, addr, drained)
            .map_err(|e| NotFound(e.to_string()))
    }

    fn reload(&self) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(App::reload(self))
    }

    fn events(&self, after: u64) -> Value {
        serde_json::to_value(self.gateway.events(after)).unwrap_or(Value::Null)
    }

    fn purge_cache(&self, route: Option<&str>, prefix: Option<&str>) -> Result<Value, NotFound> {
        self.gateway
            .purge_cache(route, prefix)
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .map_err(|e| NotFound(e.to_string()))
    }
}

/// Runs the gateway until SIGTERM/SIGINT, then drains within the configured grace period.
pub fn run(config: Config, source: Source) -> anyhow::Result<()> {
    // One thread: the current-thread scheduler skips the work-stealing machinery.
    let mut rt = match config.runtime.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 0 {
                b.worker_threads(n);
            }
            b
        }
    };
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(config, source))
}

async fn serve(config: Config, source: Source) -> anyhow::Result<()> {
    let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .with_context(|| format!("admin: cannot listen on {}", config.admin.listen))?;
    let gateway = Gateway::start(config.clone()).await?;
    let app = Arc::new(App {
        gateway: gateway.clone(),
        source,
    });
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let admin_state = AdminState {
        control: app.clone(),
        token: config.admin.token.as_deref().map(Arc::from),
    };
    let admin = tokio::spawn(ballast_admin::serve(
        admin_listener,
        admin_state,
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    ));
    tracing::info!(
        listeners = ?config.listeners.iter().map(|l| format!("{}={}", l.name, l.listen)).collect::<Vec<_>>(),
        admin = %config.admin.listen,
        "ballast is serving"
    );

    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = app.reload().await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let grace = gateway.config().runtime.grace;
    tracing::info!(grace = ?grace, open = gateway.open_connections(), "shutting down: no new connections, finishing in-flight requests");
    let left = gateway.shutdown(grace).await;
    let _ = stop_tx.send(true);
    let _ = admin.await;
    if left > 0 {
        tracing::warn!(left, "grace period over; closing remaining connections");
    } else {
        tracing::info!("all connections finished; bye");
    }
    Ok(())
}
