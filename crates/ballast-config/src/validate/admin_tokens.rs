//! `[admin] tokens`: named bearer tokens, each a `viewer` (reads) or an `operator` (also
//! acts), so a dashboard on a wall or a metrics scraper can read without being able to drain.
//!
//! ```toml
//! [admin]
//! tokens = [
//!   { name = "ana", token_file = "/etc/ballast/ana.token", role = "operator" },
//!   { name = "wallboard", token = "a-long-random-secret", role = "viewer" },
//! ]
//! ```
//!
//! Checked here: a name and a secret (inline or from a file relative to the config file,
//! trimmed), each used once, and
//! different from `[admin] token` (which is the operator `admin`).

use std::collections::BTreeSet;

use crate::model::AdminToken;
use crate::raw::AdminToken as RawToken;

use super::Checker;

pub(super) fn check(
    c: &mut Checker,
    raw: Vec<RawToken>,
    admin_token: Option<&str>,
) -> Vec<AdminToken> {
    let mut names = BTreeSet::from(["admin".to_string()]);
    let mut secrets: BTreeSet<String> = admin_token.map(str::to_string).into_iter().collect();
    let mut out = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let p = |f: &str| format!("admin.tokens[{i}].{f}");
        let name = t.name.trim().to_string();
        if name.is_empty() {
            c.fail(p("name"), "must not be empty");
            continue;
        }
        if !names.insert(name.clone()) {
            c.fail(
                p("name"),
                format!("{name:?} is used twice (`admin` is [admin] token's)"),
            );
            continue;
        }
        let secret = match (t.token, t.token_file) {
            (Some(s), None) => s,
            (None, Some(path)) => match std::fs::read_to_string(c.base.join(&path)) {
                Ok(s) => s.trim().to_string(),
                Err(e) => {
                    c.fail(
                        p("token_file"),
                        format!("cannot read {}: {e}", path.display()),
                    );
                    continue;
                }
            },
            _ => {
                c.fail(p("token"), "give exactly one of token and token_file");
                continue;
            }
        };
        if secret.is_empty() {
            c.fail(p("token"), "must not be empty");
            continue;
        }
        if !secrets.insert(secret.clone()) {
            c.fail(
                p("token"),
                "the same secret is given to two names; each needs its own",
            );
            continue;
        }
        out.push(AdminToken {
            name,
            secret,
            role: t.role,
        });
    }
    out
}
