//! `ballast notify test RECEIVER` and `ballast notify log`: check that a receiver really
//! reaches people before an outage does, and see what was sent, to whom, when, after how many
//! attempts and with what result, through a running gateway's admin API.
//!
//! `test` exits non-zero when any channel of the receiver failed, so it can gate a deploy of
//! a new Slack URL or SMTP password.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context};
use ballast_core::NotificationLog;
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin_client;
use crate::config_cmd::utc;

/// Where the admin API is.
#[derive(Args)]
pub struct Target {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub admin: Option<String>,
}

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Send a test message to every channel of RECEIVER now and print how each went.
    Test {
        /// The `[[receiver]]` name.
        receiver: String,
        /// Who asks (recorded in the message; default: $USER, else `cli`).
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// The notification log, newest first.
    Log {
        /// How far back, with a unit: 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Only this receiver (or one channel of it: `web-oncall/slack`).
        #[arg(long)]
        receiver: Option<String>,
        #[arg(long, value_parser = PossibleValuesParser::new(["pending", "delivered", "failed", "expired"]))]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print the admin API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

pub fn notify(cmd: NotifyCommand) -> anyhow::Result<()> {
    match cmd {
        NotifyCommand::Test {
            receiver,
            by,
            target,
        } => test(&receiver, by, target),
        NotifyCommand::Log {
            since,
            receiver,
            state,
            limit,
            json,
            target,
        } => {
            since
                .parse::<ballast_core::Duration>()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let mut path = format!(
                "/api/v1/notifications?since={}&limit={limit}",
                admin_client::encode(&since)
            );
            if let Some(r) = receiver {
                let _ = write!(path, "&receiver={}", admin_client::encode(&r));
            }
            if let Some(s) = state {
                let _ = write!(path, "&state={s}");
            }
            let body = admin_client::get(target.config, target.admin, &path)?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let lines: Vec<NotificationLog> = serde_json::from_str(&body)
                .with_context(|| format!("unexpected answer from the admin API: {body:.200}"))?;
            print!("{}", log_table(&lines));
            Ok(())
        }
    }
}

fn test(receiver: &str, by: Option<String>, target: Target) -> anyhow::Result<()> {
    let by = by
        .filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "cli".to_string());
    let path = format!(
        "/api/v1/receivers/{}/test",
        admin_client::encode(receiver).replace('/', "%2F")
    );
    let (status, body) =
        admin_client::post_json_status(target.config, target.admin, &path, &json!({ "by": by }))?;
    let value: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("unexpected answer from the admin API: {body:.200}"))?;
    let Some(results) = value.as_array() else {
        let message = value["error"].as_str().unwrap_or(&body);
        bail!("notify test {receiver}: {status}: {message}");
    };
    let mut failed = 0;
    for r in results {
        let ok = r["ok"].as_bool().unwrap_or(false);
        failed += usize::from(!ok);
        println!(
            "{:<28} {:<6} {}",
            r["target"].as_str().unwrap_or("?"),
            if ok { "ok" } else { "FAILED" },
            r["result"].as_str().unwrap_or("")
        );
    }
    if failed > 0 {
        bail!(
            "{failed} of {} channels of {receiver} failed",
            results.len()
        );
    }
    Ok(())
}

fn log_table(lines: &[NotificationLog]) -> String {
    if lines.is_empty() {
        return "no notifications\n".to_string();
    }
    let mut out = format!(
        "{:<20} {:<24} {:<10} {:>3}  {:<36} RESULT\n",
        "QUEUED (UTC)", "TO", "STATE", "TRY", "WHAT"
    );
    for l in lines {
        let what: String = l.group_key.chars().take(36).collect();
        let _ = writeln!(
            out,
            "{:<20} {:<24} {:<10} {:>3}  {:<36} {}",
            utc(l.created_unix_ms),
            l.receiver,
            l.state.name(),
            l.attempts,
            what,
            l.result.as_deref().unwrap_or("")
        );
    }
    out
}
