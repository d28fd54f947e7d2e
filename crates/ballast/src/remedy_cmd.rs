//! `ballast remedy runs` and `ballast remedy ack TARGET`: what automatic remediation did (every
//! run, dry or real, refused or not, with its result and output) and which targets it gave up
//! on; acknowledging a target lets the rules act on it again.

use std::fmt::Write as _;

use anyhow::{bail, Context};
use ballast_core::{RemediationResult, RemediationRun};
use clap::Subcommand;
use serde_json::json;

use crate::admin_client;
use crate::config_cmd::utc;
use crate::notify_cmd::Target;

#[derive(Subcommand)]
pub enum RemedyCommand {
    /// Remediation runs, newest first, and the targets remediation leaves alone.
    Runs {
        /// How far back, with a unit: 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Show each run's steps and output.
        #[arg(long, short)]
        verbose: bool,
        /// Print the admin API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: Target,
    },
    /// A person has looked: remediation may act on TARGET again.
    Ack {
        target: String,
        /// Who acknowledges (default: $USER, else `cli`).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        admin: Target,
    },
}

/// Who the CLI acts as: `--by`, else $USER, else `cli`.
pub fn who(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "cli".to_string())
}

pub fn remedy(cmd: RemedyCommand) -> anyhow::Result<()> {
    match cmd {
        RemedyCommand::Runs {
            since,
            rule,
            target,
            limit,
            verbose,
            json,
            admin,
        } => {
            since
                .parse::<ballast_core::Duration>()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let mut path = format!(
                "/api/v1/remediations?since={}&limit={limit}",
                admin_client::encode(&since)
            );
            if let Some(r) = rule {
                let _ = write!(path, "&rule={}", admin_client::encode(&r));
            }
            if let Some(t) = target {
                let _ = write!(path, "&target={}", admin_client::encode(&t));
            }
            let body = admin_client::get(admin.config, admin.admin, &path)?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let v: serde_json::Value = serde_json::from_str(&body)
                .with_context(|| format!("unexpected answer from the admin API: {body:.200}"))?;
            let runs: Vec<RemediationRun> = serde_json::from_value(v["runs"].clone())
                .with_context(|| format!("unexpected answer from the admin API: {body:.200}"))?;
            print!("{}", table(&runs, verbose));
            if let Some(blocked) = v["blocked"].as_array().filter(|b| !b.is_empty()) {
                println!("\nblocked until a person acknowledges (`ballast remedy ack TARGET`):");
                for b in blocked {
                    println!(
                        "  {}  since {}  {}",
                        b["target"].as_str().unwrap_or("?"),
                        utc(b["since_unix_ms"].as_u64().unwrap_or(0)),
                        b["why"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        RemedyCommand::Ack { target, by, admin } => {
            let (status, body) = admin_client::post_json_status(
                admin.config,
                admin.admin,
                "/api/v1/remediations/ack",
                &json!({ "target": target, "by": who(by) }),
            )?;
            if !status.is_success() {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                bail!("{status}: {}", v["error"].as_str().unwrap_or(&body));
            }
            println!("{target}: acknowledged; remediation may act on it again");
            Ok(())
        }
    }
}

fn table(runs: &[RemediationRun], verbose: bool) -> String {
    if runs.is_empty() {
        return "no remediation runs\n".to_string();
    }
    let mut out = format!(
        "{:<20} {:<20} {:<24} {:<8} {:<4} WHY\n",
        "STARTED (UTC)", "RULE", "TARGET", "RESULT", "DRY"
    );
    for r in runs {
        let why = match &r.result {
            RemediationResult::Ok => String::new(),
            RemediationResult::Failed { reason } | RemediationResult::Refused { reason, .. } => {
                reason.lines().next().unwrap_or("").to_string()
            }
        };
        let _ = writeln!(
            out,
            "{:<20} {:<20} {:<24} {:<8} {:<4} {why}",
            utc(r.started_unix_ms),
            r.rule,
            r.target,
            r.result.name(),
            if r.dry_run { "yes" } else { "" },
        );
        if verbose {
            for s in &r.steps {
                let _ = writeln!(
                    out,
                    "    {} {}: {}",
                    s.action,
                    if s.ok { "ok" } else { "FAILED" },
                    s.output.replace('\n', "\n      ")
                );
            }
        }
    }
    out
}
