//! A route's policy tables: `retry`, the upstream's `limit` (admission control), `flood`,
//! `cache` and `sorry`. Each is checked on its own (units, ranges, files read now) and turned
//! into its model value; `validate::route` puts them together.

use std::time::Duration;

use super::*;

/// A route's `retry` table, defaults filled in.
pub(super) fn retry_policy(
    c: &mut Checker,
    p: &dyn Fn(&str) -> String,
    r: Option<raw::Retry>,
) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    let Some(r) = r else {
        return policy;
    };
    policy.attempts = c.count(p("retry.attempts"), r.attempts, defaults::ATTEMPTS, 1, 10);
    if let Some(on) = r.on {
        policy.on_connect_failure = false;
        policy.on_reset = false;
        policy.on_timeout = false;
        policy.on_status.clear();
        for (k, item) in on.iter().enumerate() {
            match item.as_str() {
                "connect-failure" => policy.on_connect_failure = true,
                "reset" => policy.on_reset = true,
                "timeout" => policy.on_timeout = true,
                other => match other.parse::<u16>() {
                    Ok(code) if (500..=599).contains(&code) => policy.on_status.push(code),
                    Ok(code) if (400..=499).contains(&code) => c.fail(
                        p(&format!("retry.on[{k}]")),
                        format!("{code} is a client error: 4xx answers are never retried"),
                    ),
                    _ => c.fail(
                        p(&format!("retry.on[{k}]")),
                        format!("`{other}` is not a retryable outcome: write \"connect-failure\", \"reset\", \"timeout\" or a 5xx status such as \"503\""),
                    ),
                },
            }
        }
    }
    if let Some(b) = r.budget {
        policy.budget = b.get();
    }
    policy.min_per_second = c.count(
        p("retry.min_retries_per_second"),
        r.min_retries_per_second,
        policy.min_per_second,
        0,
        1_000_000,
    );
    if let Some(text) = r.backoff {
        let parts: Option<(ballast_core::Duration, ballast_core::Duration)> = text
            .split_once("..")
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parts {
            Some((a, b)) if a.get() <= b.get() => {
                policy.backoff_base = a.get();
                policy.backoff_max = b.get();
            }
            Some(_) => c.fail(
                p("retry.backoff"),
                "the first duration is the smallest: write e.g. \"25ms..250ms\"",
            ),
            None => c.fail(
                p("retry.backoff"),
                format!("`{text}` is not a back-off range: write two durations with units, e.g. \"25ms..250ms\""),
            ),
        }
    }
    if let Some(d) = r.retry_after_max {
        policy.retry_after_max = d.get();
    }
    policy
}

/// An upstream's `limit` table, defaults filled in.
pub(super) fn concurrency_limit(
    c: &mut Checker,
    p: &dyn Fn(&str) -> String,
    l: raw::Limit,
) -> ConcurrencyLimit {
    let algorithm = match l.algorithm.as_deref() {
        None | Some("gradient") => LimitAlgorithm::Gradient,
        Some("fixed") => LimitAlgorithm::Fixed,
        Some(other) => {
            c.fail(
                p("limit.algorithm"),
                format!("`{other}` is not a limit algorithm: write \"gradient\" or \"fixed\""),
            );
            LimitAlgorithm::Gradient
        }
    };
    let min = c.count(p("limit.min"), l.min, 4, 1, 100_000);
    let max = c.count(p("limit.max"), l.max, 1000, 1, 100_000);
    if max < min {
        c.fail(
            p("limit.max"),
            format!("must not be below limit.min ({min})"),
        );
    }
    let initial = c.count(
        p("limit.initial"),
        l.initial,
        min.max(10).min(max),
        1,
        100_000,
    );
    if initial < min || initial > max {
        c.fail(
            p("limit.initial"),
            format!("must lie between limit.min ({min}) and limit.max ({max})"),
        );
    }
    let tolerance = match l.tolerance {
        None => 1.5,
        Some(t) if (1.0..=10.0).contains(&t) => t,
        Some(t) => {
            c.fail(
                p("limit.tolerance"),
                format!("must be a factor between 1.0 and 10.0 (e.g. 1.5: latency may grow by half), got {t}"),
            );
            1.5
        }
    };
    let shares = l.shed.as_ref();
    let share = |f: fn(&raw::ShedShares) -> Option<ballast_core::Ratio>| {
        shares.and_then(f).map_or(0.0, |r| r.get())
    };
    ConcurrencyLimit {
        algorithm,
        initial,
        min,
        max,
        tolerance,
        max_wait: c.positive(p("limit.max_wait"), l.max_wait, Duration::from_millis(50)),
        max_queue: c.count(p("limit.max_queue"), l.max_queue, 1000, 0, 1_000_000),
        retry_after: c.positive(
            p("limit.retry_after"),
            l.retry_after,
            Duration::from_secs(1),
        ),
        shed: [
            0.0,
            share(|s| s.high),
            share(|s| s.normal),
            share(|s| s.low),
        ],
    }
}

/// A route's `flood` table, defaults filled in.
pub(super) fn flood(c: &mut Checker, p: &dyn Fn(&str) -> String, f: raw::Flood) -> FloodConfig {
    let key = match f.key.as_deref() {
        None | Some("client-ip") => FloodKey::ClientIp,
        Some(k) => {
            match k
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.trim().as_bytes()))
            {
                Some(Ok(name)) => FloodKey::Header(name),
                _ => {
                    c.fail(
                    p("flood.key"),
                    format!("`{k}` is not a client key: write \"client-ip\" or \"header:X-Api-Key\""),
                );
                    FloodKey::ClientIp
                }
            }
        }
    };
    let mut ips = |field: &str, list: Option<Vec<String>>| -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        for (k, text) in list.unwrap_or_default().iter().enumerate() {
            match text.parse() {
                Ok(ip) => out.push(ip),
                Err(_) => c.fail(
                    p(&format!("flood.{field}[{k}]")),
                    format!("`{text}` is not an IP address, e.g. \"10.0.0.7\" or \"::1\""),
                ),
            }
        }
        out
    };
    let allow = ips("allow", f.allow);
    let trusted_proxies = ips("trusted_proxies", f.trusted_proxies);
    FloodConfig {
        key,
        max_per_second: c.count(
            p("flood.max_per_second"),
            f.max_per_second,
            0,
            0,
            10_000_000,
        ),
        factor: f64::from(c.count(p("flood.factor"), f.factor, 10, 0, 100_000)),
        min_per_second: c.count(
            p("flood.min_per_second"),
            f.min_per_second,
            50,
            1,
            10_000_000,
        ),
        block: c.positive(p("flood.block"), f.block, Duration::from_secs(30)),
        allow,
        trusted_proxies,
    }
}

/// A route's `cache` table, defaults filled in.
pub(super) fn cache(c: &mut Checker, p: &dyn Fn(&str) -> String, k: raw::Cache) -> CacheConfig {
    let size = |c: &mut Checker, field: &str, v: Option<ballast_core::Size>, default: u64| match v {
        None => default,
        Some(s) if s.get() == 0 => {
            c.fail(
                p(&format!("cache.{field}")),
                "must be larger than zero, e.g. \"1MiB\"",
            );
            default
        }
        Some(s) => s.get(),
    };
    let max_size = size(c, "max_size", k.max_size, defaults::CACHE_MAX_SIZE);
    let mut max_object = size(c, "max_object", k.max_object, defaults::CACHE_MAX_OBJECT);
    if max_object > MAX_CACHE_OBJECT {
        c.fail(
            p("cache.max_object"),
            "must be at most \"1GiB\": a response is held in memory while it is copied",
        );
        max_object = defaults::CACHE_MAX_OBJECT;
    } else if max_object > max_size {
        let fix = if k.max_object.is_some() {
            "must not be larger than cache.max_size"
        } else {
            "the default max_object (\"1MiB\") is larger than cache.max_size: set max_object too, at most max_size"
        };
        let field = if k.max_object.is_some() {
            "cache.max_object"
        } else {
            "cache.max_size"
        };
        c.fail(p(field), fix);
    }
    let mut key = Vec::new();
    match k.key {
        None => key.extend([
            CacheKeyPart::Scheme,
            CacheKeyPart::Host,
            CacheKeyPart::Path,
            CacheKeyPart::Query,
        ]),
        Some(parts) => {
            for (j, text) in parts.iter().enumerate() {
                let part = match text.as_str() {
                    "scheme" => Some(CacheKeyPart::Scheme),
                    "host" => Some(CacheKeyPart::Host),
                    "path" => Some(CacheKeyPart::Path),
                    "query" => Some(CacheKeyPart::Query),
                    other => match other.split_once(':') {
                        Some(("header", h)) => http::HeaderName::from_bytes(h.trim().as_bytes())
                            .ok()
                            .map(CacheKeyPart::Header),
                        Some(("cookie", n)) if cookie_name(n.trim()) => {
                            Some(CacheKeyPart::Cookie(n.trim().to_string()))
                        }
                        _ => None,
                    },
                };
                match part {
                    Some(part) if key.contains(&part) => c.fail(
                        p(&format!("cache.key[{j}]")),
                        format!("`{text}` is listed twice"),
                    ),
                    Some(part) => key.push(part),
                    None => c.fail(
                        p(&format!("cache.key[{j}]")),
                        format!("`{text}` is not a key part: write \"scheme\", \"host\", \"path\", \"query\", \"header:NAME\" or \"cookie:NAME\""),
                    ),
                }
            }
            if parts.is_empty() {
                c.fail(
                    p("cache.key"),
                    "must not be empty; the default is [\"scheme\", \"host\", \"path\", \"query\"]",
                );
            } else if !key.contains(&CacheKeyPart::Path) {
                c.fail(
                    p("cache.key"),
                    "must include \"path\": without it every path would share one entry",
                );
            }
        }
    }
    let mut stale_on = vec![500, 502, 503, 504];
    if let Some(on) = k.stale_on {
        stale_on.clear();
        for (j, item) in on.iter().enumerate() {
            match item.parse::<u16>() {
                Ok(code) if (500..=599).contains(&code) => stale_on.push(code),
                _ => c.fail(
                    p(&format!("cache.stale_on[{j}]")),
                    format!("`{item}` is not a 5xx status: write e.g. \"503\" (no healthy server always gets stale content)"),
                ),
            }
        }
    }
    CacheConfig {
        max_size,
        max_object,
        max_stale: k.max_stale.map_or(defaults::CACHE_MAX_STALE, |d| d.get()),
        key,
        stale_on,
    }
}

/// Largest response a cache may hold (its weight must fit the cache's `u32`).
const MAX_CACHE_OBJECT: u64 = 1 << 30;

/// Largest sorry page accepted; it is served from memory.
const MAX_SORRY_PAGE: u64 = 1024 * 1024;

/// A route's `sorry` table: the page is read now, so a missing file is a config error.
pub(super) fn sorry_page(c: &mut Checker, p: &dyn Fn(&str) -> String, s: raw::Sorry) -> SorryPage {
    let body = match s.page {
        None => bytes::Bytes::from_static(BUILTIN_SORRY_PAGE.as_bytes()),
        Some(path) => {
            let full = c.base.join(&path);
            match std::fs::metadata(&full) {
                Ok(m) if m.len() > MAX_SORRY_PAGE => {
                    c.fail(
                        p("sorry.page"),
                        format!(
                            "{} is {} bytes; a sorry page may be at most 1 MiB",
                            full.display(),
                            m.len()
                        ),
                    );
                    bytes::Bytes::new()
                }
                _ => match std::fs::read(&full) {
                    Ok(b) => bytes::Bytes::from(b),
                    Err(e) => {
                        c.fail(
                            p("sorry.page"),
                            format!("cannot read {}: {e}", full.display()),
                        );
                        bytes::Bytes::new()
                    }
                },
            }
        }
    };
    let mut on_status = vec![502, 503, 504];
    if let Some(on) = s.on {
        on_status.clear();
        for (k, item) in on.iter().enumerate() {
            match item.parse::<u16>() {
                Ok(code) if (500..=599).contains(&code) => on_status.push(code),
                _ => c.fail(
                    p(&format!("sorry.on[{k}]")),
                    format!("`{item}` is not a 5xx status: write e.g. \"503\" (no healthy server always gets the page)"),
                ),
            }
        }
    }
    let retry_after = c.positive(
        p("sorry.retry_after"),
        s.retry_after,
        std::time::Duration::from_secs(30),
    );
    SorryPage {
        body,
        on_status,
        retry_after,
    }
}

/// The page served when a route has `sorry = {}` without a page of its own.
pub const BUILTIN_SORRY_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Back soon</title>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\n<body style=\"font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem\">\n<h1>We'll be back soon</h1>\n<p>This service is having trouble right now. Please try again in a little while.</p>\n</body></html>\n";
