//! `ballast demo`: three demo backends as child processes (so one can be killed for real), the
//! gateway with the embedded `examples/demo.toml`, and a short guide printed to the terminal.

use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::app;

const DEMO: &str = include_str!("../../../examples/demo.toml");
const BACKENDS: [(&str, &str); 3] = [
    ("alpha", "127.0.0.1:9101"),
    ("bravo", "127.0.0.1:9102"),
    ("charlie", "127.0.0.1:9103"),
];

/// Kills the demo backends when the demo ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn run() -> anyhow::Result<()> {
    let config = ballast_config::parse(DEMO, "<embedded demo config>")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let exe = std::env::current_exe().context("cannot find the ballast executable")?;
    let mut children = Children(Vec::new());
    for (name, addr) in BACKENDS {
        let child = Command::new(&exe)
            .args(["backend", "--listen", addr, "--name", name])
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start demo backend {name}"))?;
        children.0.push(child);
    }
    let pids: Vec<String> = children
        .0
        .iter()
        .zip(BACKENDS)
        .map(|(c, (name, addr))| format!("    {name:<8} {addr}  pid {}", c.id()))
        .collect();
    eprintln!(
        "\nBallast demo\n\
         \n  Demo backends (round-robin web pool with sticky cookie; charlie is the backup):\n{}\n\
         \n  Try:\n\
         \x20   curl -i http://127.0.0.1:8080/                 # answered by alpha or bravo, sets BALLAST_SRV\n\
         \x20   curl http://127.0.0.1:8080/api/hello           # the least-connections api pool\n\
         \x20   curl -s http://127.0.0.1:9900/api/v1/status    # servers, health, in-flight, drain state\n\
         \x20   curl -X POST http://127.0.0.1:9900/api/v1/servers/web/127.0.0.1:9101/drain\n\
         \x20   kill {}                                     # kill alpha: no client sees an error;\n\
         \x20                                                  # status shows it down after 2 failed checks\n\
         \x20   curl -s http://127.0.0.1:9900/api/v1/events    # what changed, as values: the drain (by whom),\n\
         \x20                                                  # alpha down, the config applied at start\n\
         \x20   curl -s http://127.0.0.1:9900/metrics          # Prometheus metrics\n\
         \n  Config history is off in the demo (its config is compiled in; `ballast run` keeps it\n\
         \x20 in ballast.db beside the config file: docs/operations.md).\n\
         \n  Access log lines follow on stdout. Ctrl-C stops everything.\n",
        pids.join("\n"),
        children.0[0].id()
    );
    let result = app::run(
        ballast_config::Loaded {
            config,
            text: DEMO.to_string(),
        },
        ballast_config::Source::Embedded(DEMO),
    );
    drop(children);
    result
}
