//! `ballast alerts`, `ballast ack ID` and `ballast silence add | list | expire`: the alerts of a
//! running gateway and the silences that mute them, through its admin API.
//!
//! It exists so that the person on call answers "what is firing, and is anyone on it?" with one
//! command on the machine: one line per alert with its state and severity, what it measured,
//! how long it has been so, and whether it is silenced, inhibited or acknowledged (and by what or
//! whom). Acknowledging and silencing are one command each, with the author and reason recorded.
//! `--json` prints the API's own answer for scripts.
//!
//! Matchers and durations are checked here before anything is sent, so a typo is reported
//! without a round trip and with the same words the gateway would use; the matchers are still
//! sent as text, and the gateway checks them again.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ballast_core::{AlertRecord, AlertView, Silence};
use ballast_monitor::noise::{format_matcher, parse_matcher};
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::admin_client;
use crate::config_cmd::utc;

/// `ballast alerts`.
#[derive(Args)]
pub struct AlertsArgs {
    /// Only alerts in this state.
    #[arg(long, value_parser = PossibleValuesParser::new(["firing", "pending", "resolved"]))]
    state: Option<String>,
    /// Print the admin API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long)]
    admin: Option<String>,
}

/// `ballast ack ID`.
#[derive(Args)]
pub struct AckArgs {
    /// The alert's id (the first column of `ballast alerts`).
    id: String,
    /// Why, or what is being done about it.
    #[arg(long)]
    comment: Option<String>,
    /// Who acknowledges (default: the gateway records `cli`).
    #[arg(long)]
    by: Option<String>,
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long)]
    admin: Option<String>,
}

#[derive(Subcommand)]
pub enum SilenceCommand {
    /// Mute every alert whose labels match all MATCHERs, for a while; prints the silence's id.
    Add {
        /// Label matchers: alertname="disk-used", service!="shop", service=~"shop|web", host!~"db.*".
        #[arg(required = true, value_name = "MATCHER")]
        matchers: Vec<String>,
        /// How long, with a unit: 30m, 2h, 1d.
        #[arg(long)]
        duration: String,
        /// Why: what is being done, a ticket.
        #[arg(long)]
        comment: String,
        /// Who silences (default: $USER, else `cli`).
        #[arg(long)]
        author: Option<String>,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// Silences in force or still to start; with --expired, ended ones too.
    List {
        #[arg(long)]
        expired: bool,
        /// Print the admin API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
    /// End a silence now (it stays listed with --expired).
    Expire {
        id: u64,
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[arg(long)]
        admin: Option<String>,
    },
}

fn unexpected(body: &str) -> String {
    let first: String = body.chars().take(200).collect();
    format!("unexpected answer from the admin API: {first}")
}

/// The API's JSON, indented for reading (as it came, if it is not JSON).
fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_string())
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An alert id as one path segment: everything but unreserved characters escaped.
fn segment(id: &str) -> String {
    admin_client::encode(id).replace('/', "%2F")
}

pub fn alerts(args: AlertsArgs) -> anyhow::Result<()> {
    let path = match &args.state {
        Some(s) => format!("/api/v1/alerts?state={}", admin_client::encode(s)),
        None => "/api/v1/alerts".to_string(),
    };
    let body = admin_client::get(args.config, args.admin, &path)?;
    if args.json {
        println!("{}", pretty(&body));
        return Ok(());
    }
    let list: Vec<AlertView> = serde_json::from_str(&body).with_context(|| unexpected(&body))?;
    print!("{}", alert_table(&list, now_unix_ms()));
    Ok(())
}

pub fn ack(args: AckArgs) -> anyhow::Result<()> {
    let body = json!({ "by": args.by, "comment": args.comment });
    let path = format!("/api/v1/alerts/{}/ack", segment(&args.id));
    let answer = admin_client::post_json(args.config, args.admin, &path, &body)?;
    let record: AlertRecord = serde_json::from_str(&answer).with_context(|| unexpected(&answer))?;
    let by = record.ack.as_ref().map_or("?", |a| a.by.as_str());
    println!(
        "acknowledged alert {} ({}, {}) as {by}",
        record.id,
        record.rule,
        state_text(&record)
    );
    Ok(())
}

pub fn silence(cmd: SilenceCommand) -> anyhow::Result<()> {
    match cmd {
        SilenceCommand::Add {
            matchers,
            duration,
            comment,
            author,
            config,
            admin,
        } => {
            // Checked here too, so that a typo is reported without a round trip.
            for m in &matchers {
                parse_matcher(m).map_err(|e| anyhow::anyhow!("matcher {m:?}: {e}"))?;
            }
            duration
                .parse::<ballast_core::Duration>()
                .map_err(|e| anyhow::anyhow!("--duration: {e}"))?;
            let author = author
                .filter(|a| !a.trim().is_empty())
                .or_else(|| std::env::var("USER").ok().filter(|u| !u.trim().is_empty()))
                .unwrap_or_else(|| "cli".to_string());
            let body = json!({
                "matchers": matchers,
                "duration": duration,
                "author": author,
                "comment": comment,
            });
            let answer = admin_client::post_json(config, admin, "/api/v1/silences", &body)?;
            let s: Silence = serde_json::from_str(&answer).with_context(|| unexpected(&answer))?;
            // The id alone on stdout, for `ID=$(ballast silence add ...)`; the rest for people.
            println!("{}", s.id);
            eprintln!(
                "silenced {} until {}",
                matchers_text(&s),
                utc(s.silence.ends_unix_ms)
            );
        }
        SilenceCommand::List {
            expired,
            json,
            config,
            admin,
        } => {
            let path = format!("/api/v1/silences?expired={expired}");
            let body = admin_client::get(config, admin, &path)?;
            if json {
                println!("{}", pretty(&body));
                return Ok(());
            }
            let list: Vec<Silence> =
                serde_json::from_str(&body).with_context(|| unexpected(&body))?;
            print!("{}", silence_table(&list, now_unix_ms()));
        }
        SilenceCommand::Expire { id, config, admin } => {
            let answer = admin_client::delete(config, admin, &format!("/api/v1/silences/{id}"))?;
            let s: Silence = serde_json::from_str(&answer).with_context(|| unexpected(&answer))?;
            println!(
                "expired silence {} ({}) at {}",
                s.id,
                matchers_text(&s),
                utc(s.silence.ends_unix_ms)
            );
        }
    }
    Ok(())
}

/// `firing/critical`, `pending`, `resolved`.
fn state_text(a: &AlertRecord) -> String {
    match a.state.severity() {
        Some(s) => format!("{}/{}", a.state.name(), s.name()),
        None => a.state.name().to_string(),
    }
}

/// A value as short as it reads: `3`, `0.0123`, `1.5e9`; `-` for no data.
fn value_text(v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".to_string();
    };
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    if v.abs() >= 1e6 || v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// How long ago, in at most two units: `42s`, `3m05s`, `2h10m`, `4d3h`.
fn age(since_unix_ms: u64, now_unix_ms: u64) -> String {
    let s = now_unix_ms.saturating_sub(since_unix_ms) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// The labels as `name=value,...`, without `alertname` (the rule column says it).
fn labels_text(a: &AlertRecord) -> String {
    let parts: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, v)| !(*k == "alertname" && *v == a.rule))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(",")
    }
}

/// At most `max` characters, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Why an alert is muted or handled, short: `silenced #3`, `maintenance nightly`,
/// `inhibited by upstream-down`, `acked by alice: "on it"`; `-` when none applies.
fn flags(v: &AlertView, all: &[AlertView]) -> String {
    let mut out = Vec::new();
    if v.silenced || !v.mute.silenced_by.is_empty() {
        let ids: Vec<String> = v.mute.silenced_by.iter().map(|i| format!("#{i}")).collect();
        out.push(format!("silenced {}", ids.join(",")).trim_end().to_string());
    }
    for w in &v.mute.maintenance {
        out.push(format!("maintenance {w}"));
    }
    if v.inhibited || !v.mute.inhibited_by.is_empty() {
        // The inhibiting alert's rule when it is listed, else its id.
        let by: Vec<&str> = v
            .mute
            .inhibited_by
            .iter()
            .map(|id| {
                all.iter()
                    .find(|o| &o.alert.id == id)
                    .map_or(id.as_str(), |o| o.alert.rule.as_str())
            })
            .collect();
        out.push(
            format!("inhibited by {}", by.join(","))
                .trim_end()
                .to_string(),
        );
    }
    if let Some(ack) = v.alert.ack.as_ref().filter(|_| v.acknowledged) {
        let mut s = format!("acked by {}", ack.by);
        let comment = ack.comment.lines().next().unwrap_or("").trim();
        if !comment.is_empty() {
            let _ = write!(s, ": {:?}", cut(comment, 40));
        }
        out.push(s);
    } else if v.acknowledged {
        out.push("acked".to_string());
    }
    if out.is_empty() {
        "-".to_string()
    } else {
        out.join("; ")
    }
}

/// One line per alert: id, state/severity, rule, value, age, flags, labels.
fn alert_table(list: &[AlertView], now_unix_ms: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}  {:<17}  {:<24}  {:>10}  {:>7}  {:<30}  LABELS",
        "ID", "STATE", "RULE", "VALUE", "SINCE", "FLAGS"
    );
    for v in list {
        let a = &v.alert;
        let _ = writeln!(
            out,
            "{:<16}  {:<17}  {:<24}  {:>10}  {:>7}  {:<30}  {}",
            a.id,
            state_text(a),
            a.rule,
            value_text(a.value),
            age(a.since_unix_ms, now_unix_ms),
            flags(v, list),
            labels_text(a)
        );
    }
    out
}

/// `name="value", ...` as written on the command line.
fn matchers_text(s: &Silence) -> String {
    s.silence
        .matchers
        .iter()
        .map(format_matcher)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per silence: id, whether it is in force, start, end, author, matchers, comment.
fn silence_table(list: &[Silence], now_unix_ms: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<7}  {:<20}  {:<20}  {:<16}  {:<40}  COMMENT",
        "ID", "STATE", "STARTS (UTC)", "ENDS (UTC)", "AUTHOR", "MATCHERS"
    );
    for s in list {
        let state = if s.active_at(now_unix_ms) {
            "active"
        } else if now_unix_ms < s.silence.starts_unix_ms {
            "pending"
        } else {
            "expired"
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<7}  {:<20}  {:<20}  {:<16}  {:<40}  {}",
            s.id,
            state,
            utc(s.silence.starts_unix_ms),
            utc(s.silence.ends_unix_ms),
            s.silence.author,
            matchers_text(s),
            s.silence.comment.lines().next().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::{Ack, AlertSource, AlertState, Labels, MatchOp, Matcher, Mute, NewSilence};

    fn view() -> AlertView {
        AlertView {
            alert: AlertRecord {
                id: "0123456789abcdef".into(),
                rule: "job-missing".into(),
                labels: Labels::new()
                    .with("alertname", "job-missing")
                    .with("service", "shop"),
                annotations: Default::default(),
                state: AlertState::Firing {
                    severity: ballast_core::Severity::Critical,
                },
                source: AlertSource::Rule,
                value: Some(0.0),
                threshold: Some(1.0),
                since_unix_ms: 1_000,
                updated_unix_ms: 2_000,
                ack: Some(Ack {
                    by: "alice".into(),
                    comment: "on it\nsecond line".into(),
                    at_unix_ms: 1_500,
                }),
            },
            silenced: true,
            inhibited: false,
            acknowledged: true,
            mute: Mute {
                silenced_by: vec![3],
                reason: "silenced by silence 3".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_alert_table_says_state_value_age_and_why_it_is_muted() {
        let t = alert_table(&[view()], 1_000 + 125_000);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("ID "));
        assert!(
            lines[1].starts_with("0123456789abcdef  firing/critical    job-missing "),
            "{t}"
        );
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cols[3..5], ["0", "2m05s"], "{t}");
        assert!(
            lines[1].contains(r#"silenced #3; acked by alice: "on it""#),
            "{t}"
        );
        assert!(lines[1].ends_with("  service=shop"), "{t}");
    }

    #[test]
    fn values_and_ages_are_short() {
        assert_eq!(value_text(None), "-");
        assert_eq!(value_text(Some(3.0)), "3");
        assert_eq!(value_text(Some(0.0125)), "0.0125");
        assert_eq!(value_text(Some(12.5)), "12.5");
        assert_eq!(value_text(Some(f64::NAN)), "NaN");
        assert_eq!(value_text(Some(2.5e9)), "2500000000");
        assert_eq!(value_text(Some(1_234_567.5)), "1.235e6");
        assert_eq!(value_text(Some(-1.25e-5)), "-1.250e-5");
        assert_eq!(age(0, 59_999), "59s");
        assert_eq!(age(0, 3_600_000 + 61_000), "1h01m");
        assert_eq!(age(0, 2 * 86_400_000 + 3 * 3_600_000), "2d3h");
        // A clock behind the gateway's does not underflow.
        assert_eq!(age(5_000, 1_000), "0s");
    }

    #[test]
    fn an_inhibited_alert_names_the_rule_that_inhibits_it() {
        let mut crit = view();
        crit.alert.id = "aaaa".into();
        crit.alert.rule = "pg-down".into();
        let mut warn = view();
        warn.silenced = false;
        warn.acknowledged = false;
        warn.inhibited = true;
        warn.mute = Mute {
            inhibited_by: vec!["aaaa".into(), "gone".into()],
            ..Default::default()
        };
        let all = vec![crit, warn.clone()];
        assert_eq!(flags(&warn, &all), "inhibited by pg-down,gone");
    }

    #[test]
    fn the_silence_table_says_whether_each_is_in_force() {
        let s = |id, starts, ends| Silence {
            id,
            silence: NewSilence {
                matchers: vec![Matcher {
                    name: "alertname".into(),
                    op: MatchOp::Equal,
                    value: "job-missing".into(),
                }],
                starts_unix_ms: starts,
                ends_unix_ms: ends,
                author: "bob".into(),
                comment: "deploy".into(),
            },
            created_unix_ms: 0,
        };
        let t = silence_table(
            &[s(1, 0, 10_000), s(2, 0, 1_000), s(3, 9_000, 10_000)],
            5_000,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[1].starts_with("    1  active "), "{t}");
        assert!(lines[2].starts_with("    2  expired "), "{t}");
        assert!(lines[3].starts_with("    3  pending "), "{t}");
        assert!(lines[1].contains(r#"alertname="job-missing""#), "{t}");
        assert!(lines[1].ends_with("deploy"), "{t}");
    }

    #[test]
    fn alert_ids_are_one_path_segment() {
        assert_eq!(segment("ab/c d"), "ab%2Fc%20d");
    }
}
