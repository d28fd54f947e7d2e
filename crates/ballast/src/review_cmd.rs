//! `ballast review [--since 30d] [--json] [--output FILE]`: the threshold review of a running
//! gateway (through its admin API), as the Markdown report, or the JSON behind it.

use anyhow::Context;
use clap::Args;

use crate::admin_client;
use crate::notify_cmd::Target;

#[derive(Args)]
pub struct ReviewArgs {
    /// How much history, with a unit: 7d, 30d.
    #[arg(long, default_value = "30d")]
    since: String,
    /// Print the JSON instead of the Markdown report.
    #[arg(long)]
    json: bool,
    /// Write the report to this file instead of stdout.
    #[arg(long, short)]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    admin: Target,
}

pub fn review(args: ReviewArgs) -> anyhow::Result<()> {
    args.since
        .parse::<ballast_core::Duration>()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let format = if args.json { "json" } else { "markdown" };
    let path = format!(
        "/api/v1/review?since={}&format={format}",
        admin_client::encode(&args.since)
    );
    let body = admin_client::get(args.admin.config, args.admin.admin, &path)?;
    match args.output {
        Some(file) => {
            std::fs::write(&file, body)
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!("review written to {}", file.display());
        }
        None => print!("{body}"),
    }
    Ok(())
}
