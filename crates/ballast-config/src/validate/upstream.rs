//! An `[[upstream]]` table: balancing and its hash key, stickiness, active health checks,
//! passive health, breaker, pool and servers, with defaults filled in.

use std::time::Duration;

use super::*;

pub(super) fn upstream(c: &mut Checker, i: usize, u: raw::Upstream) -> Upstream {
    let p = |f: &str| format!("upstream[{i}].{f}");
    let balance = match u.balance.as_deref().unwrap_or("round-robin") {
        "round-robin" => Balance::RoundRobin,
        "weighted-round-robin" => Balance::WeightedRoundRobin,
        "least-connections" => Balance::LeastConnections,
        "weighted-least-connections" => Balance::WeightedLeastConnections,
        "fastest-response" => Balance::FastestResponse,
        "peak-ewma" | "p2c" => Balance::PeakEwma,
        "hash" => match &u.hash {
            None => {
                c.fail(p("balance"), "balance = \"hash\" needs `hash = { on = \"client-ip\" }` (or header, cookie, path)");
                Balance::RoundRobin
            }
            Some(h) => Balance::Hash(hash_key(c, i, h)),
        },
        other => {
            c.fail(
                p("balance"),
                format!("`{other}` is not an algorithm; write one of round-robin, weighted-round-robin, least-connections, weighted-least-connections, fastest-response, peak-ewma, hash"),
            );
            Balance::RoundRobin
        }
    };
    if u.hash.is_some() && !matches!(balance, Balance::Hash(_)) {
        c.fail(p("hash"), "`hash` only applies with balance = \"hash\"");
    }
    let sticky = u.sticky.map(|s| {
        if !cookie_name(&s.cookie) {
            c.fail(
                p("sticky.cookie"),
                format!("`{}` is not a cookie name; use letters, digits, '_' or '-', e.g. \"BALLAST_SRV\"", s.cookie),
            );
        }
        Sticky { cookie: s.cookie }
    });
    let health = u.health.map(|h| health(c, i, h));
    let passive = match u.passive {
        None => Some(Passive {
            consecutive_failures: defaults::PASSIVE_FAILURES,
            ejection: defaults::EJECTION,
            max_ejection: defaults::MAX_EJECTION,
            max_ejected: defaults::MAX_EJECTED,
            uneject_on_check: true,
        }),
        Some(ps) if ps.enabled == Some(false) => None,
        Some(ps) => {
            let ejection = c.positive(p("passive.ejection"), ps.ejection, defaults::EJECTION);
            let max_ejection = c.positive(
                p("passive.max_ejection"),
                ps.max_ejection,
                defaults::MAX_EJECTION,
            );
            if max_ejection < ejection {
                c.fail(
                    p("passive.max_ejection"),
                    "must not be shorter than passive.ejection",
                );
            }
            Some(Passive {
                consecutive_failures: c.count(
                    p("passive.consecutive_failures"),
                    ps.consecutive_failures,
                    defaults::PASSIVE_FAILURES,
                    1,
                    1000,
                ),
                ejection,
                max_ejection,
                max_ejected: ps.max_ejected.map_or(defaults::MAX_EJECTED, |r| r.get()),
                uneject_on_check: ps.uneject_on_check.unwrap_or(true),
            })
        }
    };
    let breaker = u.breaker.map(|b| BreakerConfig {
        consecutive_failures: c.count(
            p("breaker.consecutive_failures"),
            b.consecutive_failures,
            5,
            0,
            1000,
        ),
        error_ratio: b.error_ratio.map_or(0.5, |r| r.get()),
        min_requests: c.count(p("breaker.min_requests"), b.min_requests, 20, 1, 1_000_000),
        window: c.positive(p("breaker.window"), b.window, Duration::from_secs(10)),
        cool_down: c.positive(p("breaker.cool_down"), b.cool_down, Duration::from_secs(5)),
        probes: c.count(p("breaker.probes"), b.probes, 3, 1, 100),
    });
    if let Some(b) = &breaker {
        if b.error_ratio <= 0.0 {
            c.fail(
                p("breaker.error_ratio"),
                "must be above 0%: at 0% every failure would open the breaker; use consecutive_failures = 1 for that",
            );
        }
    }
    let limit = u.limit.map(|l| concurrency_limit(c, &p, l));
    let pool = match u.pool {
        None => Pool {
            max_idle: defaults::POOL_MAX_IDLE,
            idle_timeout: defaults::POOL_IDLE_TIMEOUT,
        },
        Some(pl) => Pool {
            max_idle: c.count(
                p("pool.max_idle"),
                pl.max_idle,
                defaults::POOL_MAX_IDLE as u32,
                0,
                100_000,
            ) as usize,
            idle_timeout: c.positive(
                p("pool.idle_timeout"),
                pl.idle_timeout,
                defaults::POOL_IDLE_TIMEOUT,
            ),
        },
    };
    let servers = servers::servers(c, i, u.servers);
    Upstream {
        name: u.name,
        balance,
        sticky,
        health,
        passive,
        breaker,
        limit,
        slow_start: u.slow_start.map(|d| d.get()).filter(|d| !d.is_zero()),
        pool,
        servers,
    }
}

fn hash_key(c: &mut Checker, i: usize, h: &raw::Hash) -> HashKey {
    let p = format!("upstream[{i}].hash");
    let named = |c: &mut Checker| match &h.name {
        Some(n) if !n.is_empty() => Some(n.clone()),
        _ => {
            c.fail(
                format!("{p}.on"),
                format!("hash on `{}` needs `name = \"...\"`", h.on),
            );
            None
        }
    };
    match h.on.as_str() {
        "client-ip" | "path" => {
            if h.name.is_some() {
                c.fail(
                    format!("{p}.name"),
                    format!(
                        "hash on `{}` takes no name; only header and cookie do",
                        h.on
                    ),
                );
            }
            if h.on == "path" {
                HashKey::Path
            } else {
                HashKey::ClientIp
            }
        }
        "cookie" => match named(c) {
            Some(n) if cookie_name(&n) => HashKey::Cookie(n),
            Some(n) => {
                c.fail(
                    format!("{p}.name"),
                    format!("`{n}` is not a cookie name; use letters, digits, '_' or '-'"),
                );
                HashKey::ClientIp
            }
            None => HashKey::ClientIp,
        },
        "header" => match named(c).map(|n| (http::HeaderName::from_bytes(n.as_bytes()), n)) {
            Some((Ok(name), _)) => HashKey::Header(name),
            Some((Err(_), n)) => {
                c.fail(
                    format!("{p}.name"),
                    format!("`{n}` is not a valid header name"),
                );
                HashKey::ClientIp
            }
            None => HashKey::ClientIp,
        },
        other => {
            c.fail(
                format!("{p}.on"),
                format!("`{other}` is not a hash key; write \"client-ip\", \"header\", \"cookie\" or \"path\""),
            );
            HashKey::ClientIp
        }
    }
}

fn health(c: &mut Checker, i: usize, h: raw::Health) -> Health {
    let p = |f: &str| format!("upstream[{i}].health.{f}");
    let kind = h.kind.clone().unwrap_or_else(|| {
        if h.path.is_some() {
            "http".into()
        } else {
            "tcp".into()
        }
    });
    let check = match kind.as_str() {
        "tcp" => {
            let http_only = [
                ("path", h.path.is_some()),
                ("method", h.method.is_some()),
                ("host", h.host.is_some()),
                ("expect", h.expect.is_some()),
                ("body", h.body.is_some()),
            ];
            for (field, _) in http_only.iter().filter(|(_, set)| *set) {
                let fix = if h.kind.is_some() {
                    "a tcp check only connects; remove it or write kind = \"http\""
                } else {
                    "it belongs to HTTP checks; add path = \"/...\" (or kind = \"http\")"
                };
                c.fail(
                    p(field),
                    format!("`{field}` does not apply to a tcp check: {fix}"),
                );
            }
            Check::Tcp
        }
        "http" => {
            let method = match h.method.as_deref() {
                None => http::Method::GET,
                Some(m) => method(m).unwrap_or_else(|| {
                    c.fail(p("method"), format!("`{m}` is not an HTTP method"));
                    http::Method::GET
                }),
            };
            let path = h.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                c.fail(p("path"), format!("must start with '/', e.g. \"/{path}\""));
            }
            let expect = match h.expect.as_deref() {
                None => 200..=399,
                Some(e) => {
                    match parse_status_range(e) {
                        Some(r) => r,
                        None => {
                            c.fail(p("expect"), format!("`{e}` is not a status range; write e.g. \"200-399\" or \"204\""));
                            200..=399
                        }
                    }
                }
            };
            Check::Http {
                method,
                path,
                host: h.host.clone(),
                expect,
                body: h.body.clone(),
            }
        }
        other => {
            c.fail(
                p("kind"),
                format!("`{other}` is not a check; write \"http\" or \"tcp\""),
            );
            Check::Tcp
        }
    };
    let interval = c.positive(p("interval"), h.interval, defaults::HEALTH_INTERVAL);
    let timeout = c.positive(p("timeout"), h.timeout, defaults::HEALTH_TIMEOUT);
    if timeout > interval {
        c.fail(p("timeout"), "must not be longer than health.interval");
    }
    Health {
        check,
        interval,
        timeout,
        rise: c.count(p("rise"), h.rise, defaults::RISE, 1, 100),
        fall: c.count(p("fall"), h.fall, defaults::FALL, 1, 100),
    }
}

fn parse_status_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let v: u16 = s.trim().parse().ok()?;
            (v, v)
        }
    };
    ((100..=599).contains(&a) && (100..=599).contains(&b) && a <= b).then_some(a..=b)
}
