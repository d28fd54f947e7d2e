//! Reading a gateway's config history in tests: the API's version list, waiting for versions
//! to be recorded (the store opens in the background, so the API may answer 503 for a moment
//! after start), and the rows of `ballast config history`.

use std::time::Duration;

use super::{wait_until, Gateway};

/// The versions `/api/v1/config/versions` lists, newest first; panics unless it answers 200.
pub fn versions(gw: &Gateway) -> Vec<serde_json::Value> {
    let (code, body) = gw.admin_get("/api/v1/config/versions");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until at least `n` versions are listed.
pub fn wait_versions(gw: &Gateway, n: usize) {
    wait_until(
        &format!("{n} recorded config versions"),
        Duration::from_secs(10),
        || {
            let (code, body) = gw.admin_get("/api/v1/config/versions");
            code == 200
                && serde_json::from_str::<Vec<serde_json::Value>>(&body)
                    .map(|v| v.len() >= n)
                    .unwrap_or(false)
        },
    );
}

/// `(id, source, outcome)` of each row of `ballast config history`'s output, newest first.
pub fn history_rows(out: &str) -> Vec<(u64, String, String)> {
    out.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}
