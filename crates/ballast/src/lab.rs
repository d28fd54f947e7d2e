//! `ballast lab` and the hidden `ballast lab-backend`: argument handling around
//! [`ballast_lab`], which does the work.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ballast_lab::result::Target;

/// Arguments of `ballast lab`.
#[derive(clap::Args)]
pub struct LabArgs {
    /// Short runs at a low rate that check the harness (a few minutes); figures are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Run only this scenario (repeatable): baseline, backend-crash, backend-hang, slow-backend,
    /// error-storm, overload, total-outage, reload, slow-clients, flood.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Report directory (Markdown, SVG plots, results.json).
    #[arg(long, default_value = "lab-report")]
    out: PathBuf,
    /// Load duration of each run, e.g. "20s" (default 20s, 4s with --quick).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Open-loop rate of the main clients in requests/s (default 1000, 200 with --quick).
    #[arg(long)]
    rate: Option<f64>,
    /// Only these targets (comma-separated): ballast, haproxy, nginx.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// No progress bars (plain lines instead).
    #[arg(long)]
    no_progress: bool,
    /// Run nothing: print the docs/lab.md results section for an existing results.json
    /// (plots linked under `lab/`).
    #[arg(long, value_name = "RESULTS_JSON")]
    doc_section: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<ballast_core::Duration>()
        .map(ballast_core::Duration::get)
        .map_err(|e| e.to_string())
}

pub fn run(args: LabArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.doc_section {
        let report = ballast_lab::report::read_results(path)?;
        print!("{}", ballast_lab::report::lab_doc_section(&report, "lab"));
        return Ok(());
    }
    let targets = args
        .only
        .iter()
        .map(|t| match t.trim() {
            "ballast" => Ok(Target::Ballast),
            "haproxy" => Ok(Target::Haproxy),
            "nginx" => Ok(Target::Nginx),
            other => {
                anyhow::bail!("--only: unknown target '{other}' (expected ballast, haproxy, nginx)")
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = ballast_lab::LabOptions {
        quick: args.quick,
        scenarios: args.scenarios,
        out: args.out.clone(),
        duration: args.duration,
        rate: args.rate,
        ballast_bin: std::env::current_exe().context("finding the ballast binary")?,
        targets,
        progress: !args.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = ballast_lab::run(&opts)?;
    let failed = ballast_lab::harness_problems(&report);
    println!("report: {}", args.out.join("README.md").display());
    if !failed.is_empty() {
        anyhow::bail!(
            "the harness did not work as intended:\n  {}",
            failed.join("\n  ")
        );
    }
    Ok(())
}

/// `ballast lab-backend`: one lab backend process.
pub fn backend(listen: &str, name: &str) -> anyhow::Result<()> {
    let addr = listen
        .parse()
        .with_context(|| format!("--listen {listen}: expected IP:PORT"))?;
    ballast_lab::backend::run(addr, name)?;
    Ok(())
}
