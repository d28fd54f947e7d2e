//! `ballast incident list|show|open|note|status|severity|export`: incidents of a running gateway from
//! the command line, through its admin API. Every change names who made it (`--by`, else
//! $USER) and lands on the incident's timeline.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::builder::PossibleValuesParser;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::admin_client;
use crate::config_cmd::utc;
use crate::notify_cmd::Target;
use crate::remedy_cmd::who;

const STATUSES: [&str; 8] = [
    "detect",
    "propagate",
    "triage",
    "recover",
    "analyse",
    "share",
    "retrospective",
    "closed",
];

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Incidents, newest first.
    List {
        #[arg(long, value_parser = PossibleValuesParser::new(STATUSES))]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: Target,
    },
    /// One incident: severity, scopes, status, what changed before it, and its timeline.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: Target,
    },
    /// Open an incident by hand.
    Open {
        title: String,
        #[arg(long, value_parser = PossibleValuesParser::new(["SEV1", "SEV2", "SEV3", "SEV4"]))]
        severity: Option<String>,
        /// Users affected, when known: none, internal, some, most, all.
        #[arg(long, value_parser = PossibleValuesParser::new(["none", "internal", "some", "most", "all"]))]
        users: Option<String>,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        admin: Target,
    },
    /// Add a note to an incident's timeline.
    Note {
        id: u64,
        text: String,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        admin: Target,
    },
    /// Move an incident to a step of its lifecycle.
    Status {
        id: u64,
        #[arg(value_parser = PossibleValuesParser::new(STATUSES))]
        status: String,
        /// The root cause, when known (it goes into the post-mortem).
        #[arg(long)]
        root_cause: Option<String>,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        admin: Target,
    },
    /// Grade an incident by hand (--sev), or say how many users are hurt (--users; the matrix
    /// grades that unless a severity was set by hand).
    Severity {
        id: u64,
        #[arg(long, value_parser = PossibleValuesParser::new(["SEV1", "SEV2", "SEV3", "SEV4"]))]
        sev: Option<String>,
        #[arg(long, value_parser = PossibleValuesParser::new(["none", "internal", "some", "most", "all"]))]
        users: Option<String>,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        admin: Target,
    },
    /// Write the post-mortem (Markdown) to stdout or a file.
    Export {
        id: u64,
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        admin: Target,
    },
}

fn post(admin: Target, path: &str, body: &Value) -> anyhow::Result<Value> {
    let (status, text) = admin_client::post_json_status(admin.config, admin.admin, path, body)?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("unexpected answer from the admin API: {text:.200}"))?;
    if !status.is_success() {
        bail!("{status}: {}", v["error"].as_str().unwrap_or(&text));
    }
    Ok(v)
}

pub fn incident(cmd: IncidentCommand) -> anyhow::Result<()> {
    match cmd {
        IncidentCommand::List {
            status,
            limit,
            json,
            admin,
        } => {
            let mut path = format!("/api/v1/incidents?limit={limit}");
            if let Some(s) = status {
                let _ = write!(path, "&status={s}");
            }
            let body = admin_client::get(admin.config, admin.admin, &path)?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let list: Vec<Value> = serde_json::from_str(&body)
                .with_context(|| format!("unexpected answer from the admin API: {body:.200}"))?;
            print!("{}", list_table(&list));
            Ok(())
        }
        IncidentCommand::Show { id, json, admin } => {
            let body = admin_client::get(
                admin.config,
                admin.admin,
                &format!("/api/v1/incidents/{id}"),
            )?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let v: Value = serde_json::from_str(&body)
                .with_context(|| format!("unexpected answer from the admin API: {body:.200}"))?;
            print!("{}", show_text(&v));
            Ok(())
        }
        IncidentCommand::Open {
            title,
            severity,
            users,
            by,
            admin,
        } => {
            let mut body = json!({ "title": title, "by": who(by) });
            if let Some(s) = severity {
                body["severity"] = json!(s);
            }
            if let Some(u) = users {
                body["user_scope"] = json!(u);
            }
            let v = post(admin, "/api/v1/incidents", &body)?;
            println!(
                "incident {} opened: {} ({})",
                v["id"],
                v["title"].as_str().unwrap_or(""),
                v["severity"].as_str().unwrap_or("")
            );
            Ok(())
        }
        IncidentCommand::Note {
            id,
            text,
            by,
            admin,
        } => {
            post(
                admin,
                &format!("/api/v1/incidents/{id}/notes"),
                &json!({ "text": text, "by": who(by) }),
            )?;
            println!("incident {id}: note added");
            Ok(())
        }
        IncidentCommand::Status {
            id,
            status,
            root_cause,
            by,
            admin,
        } => {
            let mut body = json!({ "status": status, "by": who(by) });
            if let Some(r) = root_cause {
                body["root_cause"] = json!(r);
            }
            post(admin, &format!("/api/v1/incidents/{id}/status"), &body)?;
            println!("incident {id}: {status}");
            Ok(())
        }
        IncidentCommand::Severity {
            id,
            sev,
            users,
            by,
            admin,
        } => {
            let mut body = json!({ "by": who(by) });
            if let Some(s) = sev {
                body["severity"] = json!(s);
            }
            if let Some(u) = users {
                body["user_scope"] = json!(u);
            }
            let v = post(admin, &format!("/api/v1/incidents/{id}/severity"), &body)?;
            println!(
                "incident {id}: {} (users {})",
                v["severity"].as_str().unwrap_or("?"),
                v["scope"]["user"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        IncidentCommand::Export { id, output, admin } => {
            let md = admin_client::get(
                admin.config,
                admin.admin,
                &format!("/api/v1/incidents/{id}/postmortem.md"),
            )?;
            match output {
                Some(path) => {
                    std::fs::write(&path, md)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("incident {id}: post-mortem written to {}", path.display());
                }
                None => print!("{md}"),
            }
            Ok(())
        }
    }
}

fn list_table(list: &[Value]) -> String {
    if list.is_empty() {
        return "no incidents\n".to_string();
    }
    let mut out = format!(
        "{:>5}  {:<5} {:<13} {:<20} {:>6}  TITLE\n",
        "ID", "SEV", "STATUS", "OPENED (UTC)", "ALERTS"
    );
    for i in list {
        let _ = writeln!(
            out,
            "{:>5}  {:<5} {:<13} {:<20} {:>6}  {}",
            i["id"].as_u64().unwrap_or(0),
            i["severity"].as_str().unwrap_or("?"),
            i["status"].as_str().unwrap_or("?"),
            utc(i["opened_unix_ms"].as_u64().unwrap_or(0)),
            i["alerts"].as_u64().unwrap_or(0),
            i["title"].as_str().unwrap_or("")
        );
    }
    out
}

fn show_text(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "incident {}: {}\nseverity {}  users {}  functions {}",
        v["id"],
        v["title"].as_str().unwrap_or(""),
        v["severity"].as_str().unwrap_or("?"),
        v["scope"]["user"].as_str().unwrap_or("?"),
        v["scope"]["function"].as_str().unwrap_or("?"),
    );
    let steps = v["lifecycle"].as_array().cloned().unwrap_or_default();
    if let Some(last) = steps.last() {
        let _ = writeln!(out, "status {}", last["status"].as_str().unwrap_or("?"));
    }
    let _ = writeln!(out, "\nwhat changed in the 2 hours before:");
    let changes: Vec<ballast_core::ChangeEntry> =
        serde_json::from_value(v["what_changed"].clone()).unwrap_or_default();
    if changes.is_empty() {
        out.push_str("  nothing recorded\n");
    }
    for c in &changes {
        let who = match c.who() {
            "" => String::new(),
            w => format!(" ({w})"),
        };
        let _ = writeln!(out, "  {}  {}{who}", utc(c.at_unix_ms()), c.what());
    }
    if let Some(t) = v["top_talkers"].as_object() {
        let _ = writeln!(out, "\ntop talkers (first minutes):");
        for (name, list) in [
            ("clients", "clients"),
            ("paths", "paths"),
            ("statuses", "statuses"),
        ] {
            let items: Vec<String> = t
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|x| format!("{} ({})", x["key"].as_str().unwrap_or("?"), x["requests"]))
                .collect();
            let _ = writeln!(out, "  {name:<9} {}", items.join(", "));
        }
    }
    let _ = writeln!(out, "\ntimeline:");
    for e in v["timeline"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {}  {:<14} {}{}",
            utc(e["at_unix_ms"].as_u64().unwrap_or(0)),
            e["kind"].as_str().unwrap_or(""),
            e["summary"].as_str().unwrap_or(""),
            e["author"]
                .as_str()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        );
    }
    out
}
