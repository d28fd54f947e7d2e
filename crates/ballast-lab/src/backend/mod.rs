//! The lab backend: a controllable HTTP server the lab runs as its own OS processes (hidden
//! `ballast lab-backend --listen ADDR --name NAME`), so a scenario can really kill it, and
//! can make it slow, failing, hung or saturated while the proxies under test are running.
//!
//! - application requests (any path but `/healthz` and `/_lab/*`): counted, the request body
//!   read and discarded, answered per the [`Knobs`] with a body of `size` bytes (`ok\n` by
//!   default)
//! - `/healthz`: 200 `ok` (counted apart), 503 under `health_fail`, held under `hang`
//! - `PUT`/`GET /_lab/knobs`, `GET /_lab/stats`, `POST /_lab/reset`, `POST /_lab/crash`:
//!   the control endpoints, on the same port, answering even while `hang` is set
//!
//! Every answer carries `x-backend: NAME` and `x-lab-peer: IP` (the client address the
//! backend saw, so tests and scenarios can check source identities). [`BackendControl`] is
//! the harness's client for the control endpoints.

mod control;
mod knobs;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};

pub use control::BackendControl;
pub use knobs::{Knobs, KnobsError, LatencyKnob, MAX_CONCURRENCY, MAX_SIZE};
pub use state::BackendStats;

use crate::LabError;

/// Listen backlog: deep enough that an open-loop burst is queued, not refused.
const BACKLOG: u32 = 4096;

/// Runs a backend until the process is killed (or crashed through `/_lab/crash`): builds a
/// current-thread runtime, binds `listen` and serves.
pub fn run(listen: SocketAddr, name: &str) -> Result<(), LabError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::io(format!(
            "backend {name}: starting the runtime"
        )))?;
    rt.block_on(async {
        let listener = bind(listen).map_err(LabError::io(format!(
            "backend {name}: cannot listen on {listen}"
        )))?;
        serve(listener, name.to_owned()).await;
        Ok(())
    })
}

/// Serves a backend named `name` on `listener` forever. Used in-process by tests; [`run`]
/// wraps it for the backend process.
pub async fn serve(listener: TcpListener, name: String) {
    server::accept_loop(listener, Arc::new(state::State::new(name))).await
}

/// Binds with `SO_REUSEADDR`, so a backend restarted after a crash gets its port back at once.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
