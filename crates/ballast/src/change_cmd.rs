//! `ballast change add | list`: record a change marker, and see what changed recently, through
//! a running gateway's admin API.
//!
//! It exists so that a CI/CD pipeline marks a deploy (or a flag switch, a data migration, an
//! infrastructure change, a note) with one command that needs no JSON tooling, and so that an
//! operator asks "what changed in the last two hours?" on the machine and gets one table:
//! markers, config versions and runtime commands, newest first.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use ballast_core::{Change, ChangeEntry, ChangeKind};
use clap::builder::PossibleValuesParser;
use clap::Subcommand;
use serde_json::json;

use crate::admin_client;
use crate::config_cmd::utc;

#[derive(Subcommand)]
pub enum ChangeCommand {
    /// Record a change marker: a deploy, feature flag, data migration, infrastructure change or note.
    Add {
        #[arg(long, value_parser = PossibleValuesParser::new(ChangeKind::ALL.map(ChangeKind::name)))]
        kind: String,
        /// One line saying what changed.
        #[arg(long)]
        summary: String,
        /// The service that changed.
        #[arg(long)]
        service: Option<String>,
        /// The version deployed, flag state, migration name...
        #[arg(long)]
        version: Option<String>,
        /// Who made the change (default: $USER, when set).
        #[arg(long)]
        author: Option<String>,
        /// A link to the pipeline run, pull request or ticket (http:// or https://).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// What changed recently: markers, config versions and runtime commands, newest first.
    List {
        /// How far back, with a unit: 30m, 2h, 7d.
        #[arg(long, default_value = "24h")]
        since: String,
        /// At most this many entries.
        #[arg(long, default_value_t = 500)]
        limit: u32,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
}

pub fn run(cmd: ChangeCommand) -> anyhow::Result<()> {
    match cmd {
        ChangeCommand::Add {
            kind,
            summary,
            service,
            version,
            author,
            url,
            config,
            admin,
        } => {
            let author = author.or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()));
            let body = json!({
                "kind": kind,
                "summary": summary,
                "service": service,
                "version": version,
                "author": author,
                "url": url,
            });
            let answer = admin_client::post_json(config, admin, "/api/v1/changes", &body)?;
            let stored: Change =
                serde_json::from_str(&answer).context("unexpected answer from the admin API")?;
            let id = stored.id;
            println!(
                "recorded change {id}: {}",
                ChangeEntry::Marker(stored).what()
            );
        }
        ChangeCommand::List {
            since,
            limit,
            config,
            admin,
        } => {
            // Checked here too, so that a typo is reported without a round trip.
            since
                .parse::<ballast_core::Duration>()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let path = format!(
                "/api/v1/changes?since={}&limit={limit}",
                admin_client::encode(&since)
            );
            let body = admin_client::get(config, admin, &path)?;
            let list: Vec<ChangeEntry> =
                serde_json::from_str(&body).context("unexpected answer from the admin API")?;
            print!("{}", table(&list));
        }
    }
    Ok(())
}

/// One line per change: UTC time, type (marker, config, command), who, and what.
fn table(list: &[ChangeEntry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20}  {:<7}  {:<24}  WHAT",
        "TIME (UTC)", "TYPE", "WHO"
    );
    for e in list {
        let _ = writeln!(
            out,
            "{:<20}  {:<7}  {:<24}  {}",
            utc(e.at_unix_ms()),
            e.type_name(),
            e.who(),
            e.what()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_line_per_change() {
        let list = vec![ChangeEntry::Marker(Change {
            id: 3,
            marker: ballast_core::NewChange {
                kind: ChangeKind::Deploy,
                service: Some("shop".into()),
                version: Some("1.2.3".into()),
                summary: "new checkout".into(),
                author: Some("ci".into()),
                url: None,
                at_unix_ms: 951_782_400_000,
            },
        })];
        let t = table(&list);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("TIME (UTC)"));
        assert!(lines[1].starts_with("2000-02-29T00:00:00Z  marker   ci "));
        assert!(lines[1].ends_with("deploy shop 1.2.3: new checkout"), "{t}");
    }
}
