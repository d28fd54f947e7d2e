//! A route's `waiting_room` table: defaults filled in, the signing key and the page template
//! read now (so a missing file is a config error, not a failure at the first queued visitor),
//! and the cookie names checked across routes (two rooms, or a room and a sticky upstream,
//! sharing a cookie would overwrite each other's cookie in the browser).

use std::time::Duration;

use super::{cookie_name, Checker};
use crate::model::{Route, Secret, Upstream, WaitingRoomConfig};
use crate::raw;

/// Defaults, quoted by `docs/configuration.md`.
pub const SESSION: Duration = Duration::from_secs(600);
pub const REFRESH: Duration = Duration::from_secs(5);
pub const MAX_QUEUE: u32 = 10_000;
pub const COOKIE: &str = "ballast_wr";
/// A signing key shorter than this is refused.
pub const MIN_SECRET: usize = 16;
/// Largest page template accepted; it is kept in memory.
const MAX_PAGE: u64 = 1024 * 1024;

pub(super) fn waiting_room(
    c: &mut Checker,
    p: &dyn Fn(&str) -> String,
    w: raw::WaitingRoom,
) -> WaitingRoomConfig {
    let capacity = match w.capacity {
        None => {
            c.fail(
                p("waiting_room"),
                "`capacity` is required: the number of visitors let in at once, e.g. { capacity = 500 }",
            );
            1
        }
        Some(_) => c.count(p("waiting_room.capacity"), w.capacity, 1, 1, 10_000_000),
    };
    let session = c.positive(p("waiting_room.session"), w.session, SESSION);
    let refresh = c.positive(p("waiting_room.refresh"), w.refresh, REFRESH);
    if refresh < Duration::from_secs(1) {
        c.fail(
            p("waiting_room.refresh"),
            "must be at least \"1s\": browsers refresh the queue page in whole seconds",
        );
    }
    let max_queue = c.count(
        p("waiting_room.max_queue"),
        w.max_queue,
        MAX_QUEUE,
        1,
        10_000_000,
    );
    let cookie = w.cookie.unwrap_or_else(|| COOKIE.to_string());
    if !cookie_name(&cookie) {
        c.fail(
            p("waiting_room.cookie"),
            format!("`{cookie}` is not a cookie name: use letters, digits, '_' or '-'"),
        );
    }
    let secret = w.secret_file.and_then(|path| {
        let full = c.base.join(&path);
        match std::fs::read(&full) {
            Ok(mut key) => {
                // A trailing newline from `echo` or an editor is not part of the key.
                while key.last().is_some_and(u8::is_ascii_whitespace) {
                    key.pop();
                }
                if key.len() < MIN_SECRET {
                    c.fail(
                        p("waiting_room.secret_file"),
                        format!(
                            "{} holds {} bytes; a signing key needs at least {MIN_SECRET}, e.g. `head -c 32 /dev/urandom | base64 > {}`",
                            full.display(),
                            key.len(),
                            full.display()
                        ),
                    );
                    return None;
                }
                Some(Secret(key))
            }
            Err(e) => {
                c.fail(
                    p("waiting_room.secret_file"),
                    format!("cannot read {}: {e}", full.display()),
                );
                None
            }
        }
    });
    let page = w.page.and_then(|path| {
        let full = c.base.join(&path);
        let text = match std::fs::metadata(&full) {
            Ok(m) if m.len() > MAX_PAGE => Err(format!(
                "{} is {} bytes; a queue page may be at most 1 MiB",
                full.display(),
                m.len()
            )),
            _ => std::fs::read(&full)
                .map_err(|e| format!("cannot read {}: {e}", full.display()))
                .and_then(|b| {
                    String::from_utf8(b)
                        .map_err(|_| format!("{} is not UTF-8 text", full.display()))
                }),
        };
        text.map_err(|msg| c.fail(p("waiting_room.page"), msg)).ok()
    });
    WaitingRoomConfig {
        capacity,
        session,
        refresh,
        max_queue,
        cookie,
        secret,
        page,
    }
}

/// Each waiting room needs a cookie of its own: not another room's, not its upstream's sticky
/// cookie.
pub(super) fn distinct_cookies(c: &mut Checker, routes: &[Route], upstreams: &[Upstream]) {
    for (i, r) in routes.iter().enumerate() {
        let Some(w) = &r.waiting_room else { continue };
        let path = format!("route[{i}].waiting_room.cookie");
        if let Some(j) = (0..i).find(|&j| {
            routes[j]
                .waiting_room
                .as_ref()
                .is_some_and(|o| o.cookie == w.cookie)
        }) {
            c.fail(
                path,
                format!(
                    "`{}` is already the cookie of route[{j}]'s waiting room; give each room its own cookie",
                    w.cookie
                ),
            );
        } else if upstreams
            .iter()
            .find(|u| u.name == r.upstream)
            .and_then(|u| u.sticky.as_ref())
            .is_some_and(|s| s.cookie == w.cookie)
        {
            c.fail(
                path,
                format!(
                    "`{}` is also the sticky cookie of upstream `{}`; use another name",
                    w.cookie, r.upstream
                ),
            );
        }
    }
}
