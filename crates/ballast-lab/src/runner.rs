//! Runs the chosen scenarios against every target, one run at a time, with progress bars, and
//! writes the report. This is what `ballast lab` calls.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::peers::{self, process};
use crate::result::{LabReport, ScenarioResult, Target};
use crate::scenarios::{self, env::Settings};
use crate::LabError;

/// What `ballast lab` was asked to do.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Short runs at a low rate: checks the harness, not the proxies.
    pub quick: bool,
    /// Scenarios to run; empty means all ten.
    pub scenarios: Vec<String>,
    /// Report directory.
    pub out: PathBuf,
    /// Load duration per run (default 20 s, quick 4 s).
    pub duration: Option<Duration>,
    /// Open-loop rate of the main client population (default 1000 req/s, quick 200).
    pub rate: Option<f64>,
    /// The `ballast` binary: runs Ballast and the lab backends.
    pub ballast_bin: PathBuf,
    /// Targets; empty means Ballast, HAProxy and nginx.
    pub targets: Vec<Target>,
    /// Draw progress bars (off when stderr is not a terminal is handled by indicatif).
    pub progress: bool,
}

impl LabOptions {
    fn settings(&self) -> Result<Settings, LabError> {
        let duration = self.duration.unwrap_or(if self.quick {
            Duration::from_secs(4)
        } else {
            Duration::from_secs(20)
        });
        if duration < Duration::from_secs(2) {
            return Err(LabError::Usage("--duration must be at least 2s".into()));
        }
        let rate = self.rate.unwrap_or(if self.quick { 200.0 } else { 1000.0 });
        if !(rate.is_finite() && rate >= 10.0) {
            return Err(LabError::Usage(
                "--rate must be at least 10 (requests/s)".into(),
            ));
        }
        Ok(Settings {
            quick: self.quick,
            duration,
            rate,
            ballast_bin: self.ballast_bin.clone(),
            work: self.out.join("work"),
        })
    }
}

/// Runs the lab and writes the report into `opts.out`; returns what was measured.
pub fn run(opts: &LabOptions) -> Result<LabReport, LabError> {
    let settings = opts.settings()?;
    let names: Vec<String> = if opts.scenarios.is_empty() {
        scenarios::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        opts.scenarios.clone()
    };
    for n in &names {
        if scenarios::describe(n).is_none() {
            return Err(LabError::Usage(format!(
                "unknown scenario '{n}' (known: {})",
                scenarios::ALL.join(", ")
            )));
        }
    }
    let targets = if opts.targets.is_empty() {
        Target::PROXIES.to_vec()
    } else {
        opts.targets.clone()
    };
    for t in &targets {
        if let Some(exe) = peers::executable(*t) {
            if !peers::installed(exe) {
                return Err(LabError::MissingTool {
                    tool: exe.into(),
                    hint: format!("install the Debian package: apt-get install -y {exe}"),
                });
            }
        }
    }
    std::fs::create_dir_all(&settings.work).map_err(LabError::io(format!(
        "creating {}",
        settings.work.display()
    )))?;

    // CPU plan: the load generator (this process) and the backends on CPU 1, the proxy under
    // test alone on CPU 0. With a single CPU, everything shares it.
    let machine = machine();
    let pinned = process::cpus_available() >= 2 && process::pin_self(scenarios::env::LOAD_CPU);
    let cpu_plan = if pinned {
        "proxy under test pinned to CPU 0 with one worker (Ballast `threads = 1`, HAProxy `nbthread 1`, nginx `worker_processes 1`); the three lab backends and the load generator share CPU 1".to_string()
    } else {
        "not pinned: fewer than 2 CPUs available or pinning refused; every process shares the CPUs"
            .to_string()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LabError::io("starting the lab runtime"))?;

    let mut report = LabReport {
        started: now_rfc3339(),
        machine,
        cpu_plan,
        quick: opts.quick,
        ballast_version: format!("Ballast {}", env!("CARGO_PKG_VERSION")),
        scenarios: Vec::new(),
    };
    let total_runs: usize = names
        .iter()
        .map(|n| targets.len() + usize::from(scenarios::has_direct(n)))
        .sum();
    let multi = if opts.progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    let overall = bar(
        &multi,
        total_runs as u64,
        "{prefix:>14} [{bar:30}] {pos}/{len} runs {msg}",
    );
    overall.set_prefix("lab");
    for name in &names {
        let (title, measures) = scenarios::describe(name).unwrap_or(("", ""));
        let mut result = ScenarioResult {
            name: name.clone(),
            title: title.into(),
            measures: measures.into(),
            load: if name == "baseline" {
                "closed loop, 64 connections".into()
            } else if name == "overload" {
                "open loop, 2× backend capacity".into()
            } else {
                format!("open loop, {:.0} req/s", settings.rate)
            },
            duration_s: settings.duration.as_secs_f64(),
            runs: Vec::new(),
            metrics: scenarios::metrics(name),
        };
        let mut run_targets = targets.clone();
        if scenarios::has_direct(name) {
            run_targets.push(Target::Direct);
        }
        for target in run_targets {
            overall.set_message(format!("{name} · {}", target.label()));
            let peer = peers::peer(target, &opts.ballast_bin);
            let done = Arc::new(AtomicU64::new(0));
            let ticker = spawn_ticker(&multi, done.clone());
            let res = runtime.block_on(scenarios::run(
                name,
                &settings,
                target,
                peer.as_deref(),
                done.clone(),
            ));
            ticker.finish_and_clear();
            match res {
                Ok(run) => {
                    let line = format!(
                        "{name:>14} {:<8} ok {:>8} errors {:>6} p99 {:>8.2} ms",
                        target.label(),
                        run.load.ok,
                        run.load.errors.total(),
                        run.load.latency.p99_us as f64 / 1000.0
                    );
                    if opts.progress {
                        let _ = multi.println(line);
                    } else {
                        eprintln!("{line}");
                    }
                    result.runs.push(run);
                }
                Err(e) => {
                    overall.finish_and_clear();
                    return Err(LabError::Process(format!(
                        "{name} with {}: {e}",
                        target.label()
                    )));
                }
            }
            overall.inc(1);
        }
        report.scenarios.push(result);
    }
    overall.finish_and_clear();
    crate::report::write_all(&report, &opts.out)?;
    Ok(report)
}

fn bar(multi: &MultiProgress, len: u64, template: &str) -> ProgressBar {
    let b = multi.add(ProgressBar::new(len));
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b
}

/// A spinner for the current run, showing completed requests and elapsed time.
fn spawn_ticker(multi: &MultiProgress, done: Arc<AtomicU64>) -> ProgressBar {
    let b = multi.add(ProgressBar::new_spinner());
    if let Ok(style) = ProgressStyle::with_template("{prefix:>14} {spinner} {elapsed} {msg}") {
        b.set_style(style);
    }
    b.set_prefix("run");
    b.enable_steady_tick(Duration::from_millis(200));
    let c = b.clone();
    std::thread::spawn(move || {
        while !c.is_finished() {
            c.set_message(format!("{} requests", done.load(Relaxed)));
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    b
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t = ballast_core::UtcTime::from_unix_secs(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// CPU model, count, memory and kernel, read from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} × {model}, {:.0} GiB, Linux {}",
        process::cpus_available(),
        mem_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

/// What did not work in the harness itself: a target that served no traffic, a fault that
/// was not injected or not seen. Empty when the harness worked. Says nothing about speed.
pub fn harness_problems(report: &LabReport) -> Vec<String> {
    let mut out = Vec::new();
    for s in &report.scenarios {
        for r in &s.runs {
            let who = r.target.map_or("?", Target::label);
            if r.load.ok == 0 && r.groups.values().all(|g| g.ok == 0) {
                out.push(format!("{}: {who} served no successful request", s.name));
            }
            if let Some(f) = &r.fault {
                if !f.injected {
                    out.push(format!(
                        "{}: {who}: fault '{}' was not injected",
                        s.name, f.what
                    ));
                } else if !f.seen {
                    out.push(format!(
                        "{}: {who}: fault '{}' was not seen ({})",
                        s.name, f.what, f.evidence
                    ));
                }
            }
        }
    }
    out
}
