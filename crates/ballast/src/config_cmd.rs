//! `ballast config history | show | diff`: the config history of a running gateway, read
//! through its admin API and printed for a person.
//!
//! It exists so that an operator answers "what changed in the config, and when?" with one
//! command on the machine, without JSON tooling: the history is a table, `show` prints a
//! version's text exactly as it was offered (so it can be saved back to a file), and `diff`
//! prints a unified diff. Scripts wanting JSON use the API (`/api/v1/config/...`) directly.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use ballast_admin::history::{Diff, VersionSummary};
use ballast_core::{ConfigOutcome, ConfigVersion};
use clap::Subcommand;

use crate::admin_client;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// List recorded config versions, newest first: applied and refused, with their source.
    History {
        /// At most this many versions.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// Print the text of one recorded config version.
    Show {
        version: u64,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// Unified diff from version A to version B. Without B: A against the running version;
    /// without either: the running version against the applied one before it.
    Diff {
        a: Option<u64>,
        b: Option<u64>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::History {
            limit,
            config,
            admin,
        } => {
            let body = admin_client::get(
                config,
                admin,
                &format!("/api/v1/config/versions?limit={limit}"),
            )?;
            let list: Vec<VersionSummary> =
                serde_json::from_str(&body).context("unexpected answer from the admin API")?;
            print!("{}", table(&list));
        }
        ConfigCommand::Show {
            version,
            config,
            admin,
        } => {
            let body =
                admin_client::get(config, admin, &format!("/api/v1/config/versions/{version}"))?;
            let v: ConfigVersion =
                serde_json::from_str(&body).context("unexpected answer from the admin API")?;
            print!("{}", v.text);
        }
        ConfigCommand::Diff {
            a,
            b,
            config,
            admin,
        } => {
            let query: Vec<String> = [("from", a), ("to", b)]
                .into_iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", v?)))
                .collect();
            let mut path = "/api/v1/config/diff".to_string();
            if !query.is_empty() {
                path = format!("{path}?{}", query.join("&"));
            }
            let body = admin_client::get(config, admin, &path)?;
            let d: Diff =
                serde_json::from_str(&body).context("unexpected answer from the admin API")?;
            if d.diff.is_empty() {
                println!("versions {} and {} have the same text", d.from, d.to);
            } else {
                print!("{}", d.diff);
            }
        }
    }
    Ok(())
}

/// One line per version: id, UTC time, source, outcome, host, short sha256, and the refusal.
fn table(list: &[VersionSummary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<20}  {:<8}  {:<7}  {:<16}  {:<12}  ERROR",
        "ID", "TIME (UTC)", "SOURCE", "OUTCOME", "HOST", "SHA256"
    );
    for v in list {
        let error = match &v.outcome {
            ConfigOutcome::Applied => "",
            ConfigOutcome::Refused { error } => error.lines().next().unwrap_or(""),
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:<8}  {:<7}  {:<16}  {:<12}  {}",
            v.id,
            utc(v.at_unix_ms),
            v.source.name(),
            v.outcome.name(),
            v.host,
            v.sha256.get(..12).unwrap_or(&v.sha256),
            error
        );
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ` for milliseconds since the Unix epoch (proleptic Gregorian).
pub(crate) fn utc(unix_ms: u64) -> String {
    let t = ballast_core::UtcTime::from_unix_secs(unix_ms / 1000);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_365_428_604), "2026-11-22T16:37:08Z");
    }
}
