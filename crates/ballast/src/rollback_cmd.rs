//! `ballast rollback [VERSION]`: ask a running gateway to roll its config back, through
//! `POST /api/v1/config/rollback`, and say plainly what happened.
//!
//! It exists so that the rollback an incident calls for is one command on the machine: the
//! operator sees which version is running again, where the replaced file was kept (to look at
//! or restore by hand) and what the reload changed; on failure, the API's reason and a non-zero
//! exit status, so that scripts can rely on it.

use std::path::PathBuf;

use anyhow::Context;
use ballast_core::RollbackReport;
use serde_json::json;

use crate::admin_client;

pub fn run(
    version: Option<u64>,
    config: Option<PathBuf>,
    admin: Option<String>,
) -> anyhow::Result<()> {
    let body = match version {
        Some(v) => json!({ "version": v }),
        None => json!({}),
    };
    let answer = admin_client::post_json(config, admin, "/api/v1/config/rollback", &body)?;
    let r: RollbackReport =
        serde_json::from_str(&answer).context("unexpected answer from the admin API")?;
    print!("{}", describe(&r));
    Ok(())
}

/// What the operator reads after a rollback.
fn describe(r: &RollbackReport) -> String {
    let short = r.sha256.get(..12).unwrap_or(&r.sha256);
    let mut out = format!(
        "rolled back to config version {} (sha256 {short}); it is running and in {}\n",
        r.version, r.file
    );
    match &r.backup {
        Some(b) => out.push_str(&format!("the replaced file is kept as {b}\n")),
        None => out.push_str("there was no file to replace\n"),
    }
    let reload = &r.reload;
    out.push_str(&format!(
        "servers: {} added, {} removed, {} kept",
        reload.servers_added, reload.servers_removed, reload.servers_kept
    ));
    for (what, names) in [
        ("listeners started", &reload.listeners_started),
        ("listeners stopped", &reload.listeners_stopped),
    ] {
        if !names.is_empty() {
            out.push_str(&format!("; {what}: {}", names.join(", ")));
        }
    }
    out.push_str("\nrecorded as a new config version with source `rollback` (see `ballast config history`)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::{Origin, ReloadReport};

    #[test]
    fn says_what_was_restored_and_where_the_old_file_is() {
        let r = RollbackReport {
            version: 3,
            sha256: "0123456789abcdef".into(),
            file: "/etc/ballast.toml".into(),
            backup: Some("/etc/ballast.toml.bak.20261130T153012Z".into()),
            requested_by: Origin::Cli,
            reload: ReloadReport {
                servers_added: 1,
                servers_kept: 2,
                listeners_stopped: vec!["old".into()],
                ..Default::default()
            },
        };
        let text = describe(&r);
        assert!(
            text.starts_with("rolled back to config version 3 (sha256 0123456789ab)"),
            "{text}"
        );
        assert!(
            text.contains("kept as /etc/ballast.toml.bak.20261130T153012Z\n"),
            "{text}"
        );
        assert!(
            text.contains("1 added, 0 removed, 2 kept; listeners stopped: old\n"),
            "{text}"
        );
    }
}
