//! `ballast demo`: three demo backends as child processes (so one can be killed for real), the
//! gateway with the embedded `examples/demo.toml`, and a short guide printed to the terminal.
//!
//! The embedded config is written to a fresh directory (`$TMPDIR/ballast-demo`) and run from
//! there like any config file, so that everything `ballast run` does works in the demo too:
//! the operations store (a SQLite file beside it) with events and config history, edits with
//! reload, and rollback.

use std::process::{Child, Command, Stdio};

use anyhow::Context;

use crate::app;

const DEMO: &str = include_str!("../../../examples/demo.toml");
const BACKENDS: [(&str, &str); 3] = [
    ("alpha", "127.0.0.1:9101"),
    ("bravo", "127.0.0.1:9102"),
    ("charlie", "127.0.0.1:9103"),
];

/// Kills the demo backends when the demo ends, however it ends: its children, and the
/// backends the restart remedy started (their pids are in `revived-*.pid` in the directory).
struct Children(Vec<Child>, std::path::PathBuf);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        let Ok(entries) = std::fs::read_dir(&self.1) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !(name.starts_with("revived-") && name.ends_with(".pid")) {
                continue;
            }
            let pid = std::fs::read_to_string(e.path())
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok());
            if let Some(pid) = pid.filter(|p| *p > 1) {
                // SAFETY: kill(2) on a pid this demo's remedy started; no memory effects.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

pub fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("ballast-demo");
    // A fresh history each time: the demo's store holds only this run.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the demo directory {}", dir.display()))?;
    let path = dir.join("ballast.toml");
    let exe = std::env::current_exe().context("cannot find the ballast executable")?;
    // The restart remedy runs this binary, and keeps the pid files of what it started here.
    let text = DEMO
        .replace("{BALLAST}", &exe.display().to_string())
        .replace("{DIR}", &dir.display().to_string());
    std::fs::write(&path, text)
        .with_context(|| format!("cannot write the demo config {}", path.display()))?;
    let source = ballast_config::Source::File(path.clone());
    let loaded = source.load().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut children = Children(Vec::new(), dir.clone());
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
         \n  Dashboard: http://127.0.0.1:9900/   (open it in a browser; no login on loopback)\n\
         \x20   1. kill {}                                     # kill alpha, then watch the overview:\n\
         \x20      alpha goes down, the server-down alert fires, Messages shows what demo-chat was sent,\n\
         \x20      Remediation shows the restart, and alpha is back up within a few seconds\n\
         \x20   2. Incidents -> #1: the timeline (alert, message, restart, recovery), notes, status\n\
         \x20      buttons, and the post-mortem to download\n\
         \x20   3. Drain and Enable buttons on the overview; a silence on Alerts; a rollback on Changes\n\
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
         \n  Monitoring (the gateway's own traffic, the host, an HTTP check, a journey, a heartbeat):\n\
         \x20   ballast alerts                                 # after killing alpha: upstream-degraded (warning)\n\
         \x20   curl -s http://127.0.0.1:9900/api/v1/monitors  # every monitor's last result\n\
         \x20   curl -X POST http://127.0.0.1:9900/api/v1/heartbeat/nightly-report\n\
         \x20                                                  # without a ping for 90 s, report-late fires\n\
         \x20   ballast silence add 'alertname=\"report-late\"' --duration 1h --comment demo\n\
         \n  Notifications (a webhook on charlie prints each one here, grouped per rule):\n\
         \x20   ballast notify log                             # what was sent, to whom, attempts, result\n\
         \x20   ballast notify test demo-chat                  # a test message, now\n\
         \n  Remediation and incidents (kill alpha as above, then watch):\n\
         \x20   ballast remedy runs -v                         # alpha restarted by the remedy, with its output\n\
         \x20   ballast incident list                          # the incident server-down opened (critical)\n\
         \x20   ballast incident show 1                        # severity, what changed, top talkers, timeline\n\
         \x20   ballast incident note 1 'looking at it'        # people's notes go on the timeline\n\
         \x20   ballast incident export 1                      # the post-mortem in Markdown\n\
         \n  Everything is kept in the operations store, {dir}/ballast.db:\n\
         \x20   ballast config history --config {cfg}\n\
         \x20   (edit {cfg}, e.g. remove bravo)\n\
         \x20   ballast reload --config {cfg}       # applied, recorded as version 2\n\
         \x20   ballast config diff --config {cfg}  # what the edit changed\n\
         \x20   ballast rollback --config {cfg}     # version 1 again, in traffic and in the file\n\
         \n  Access log lines follow on stdout. Ctrl-C stops everything.\n",
        pids.join("\n"),
        children.0[0].id(),
        children.0[0].id(),
        dir = dir.display(),
        cfg = path.display(),
    );
    let result = app::run(loaded, source);
    drop(children);
    result
}
