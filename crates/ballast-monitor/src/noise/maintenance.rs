//! Maintenance windows: weekly recurring stretches of time, written in the config, during which
//! the alerts they match are muted (a Saturday-night database upgrade should not page anyone).
//!
//! ```toml
//! [[maintenance]]
//! name = "db-weekly"
//! days = ["sat", "sun"]        # or "mon-fri", or ["mon-wed", "fri"]; ranges may wrap: "fri-mon"
//! start = "02:00"              # local wall-clock time in `timezone`
//! duration = "2h"              # elapsed time, at most 7 days
//! timezone = "Asia/Seoul"
//! match = { service = "shop" } # label equality, all must hold; at least one
//! ```
//!
//! A window without `match` mutes no alert: it is a named stretch of time for notification
//! routes (`mute_when = ["night"]`, `active_when = ["office-hours"]`). An empty `match = {}`
//! is refused, because it reads as "mute everything".
//!
//! A window starts on each listed day at `start` local time and lasts `duration` of real time,
//! so one that starts Sunday 23:00 for 2h covers Monday 00:30. Across a daylight-saving change
//! the start is resolved as most schedulers do: a start inside the spring-forward gap (02:30 on
//! the night clocks jump from 02:00 to 03:00) moves forward by the gap (03:30), and a start
//! inside the repeated autumn hour takes its first occurrence.
//!
//! Time zones come from `jiff` with its bundled copy of the IANA database
//! (`tzdb-bundle-always`), not from `/usr/share/zoneinfo`: a container or CI machine without the
//! `tzdata` package must still put "02:00 Asia/Seoul" at the same instant, and a
//! misconfigured zone must fail at load, not silently become UTC. `jiff` was chosen over
//! `chrono-tz` because it handles the DST gap and fold explicitly (`compatible`
//! disambiguation) and parses RFC 3339, which the Alertmanager receiver needs too.

use std::collections::BTreeMap;

use ballast_core::{Duration, Labels, MatchOp, Matcher};
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::matcher::{matches_all, CompiledMatcher, MatcherError};

const DAY_MS: i64 = 86_400_000;
/// The longest window: a longer one would overlap its own next occurrence.
const MAX_DURATION_MS: i64 = 7 * DAY_MS;

/// `days` as written: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "days as a string (\"mon-fri\") or a list of strings ([\"sat\", \"sun\"])"
)]
pub enum Days {
    One(String),
    Many(Vec<String>),
}

/// One `[[maintenance]]` table of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    pub name: String,
    pub days: Days,
    /// `HH:MM`, local time in `timezone`.
    pub start: String,
    pub duration: Duration,
    /// An IANA zone name (`Asia/Seoul`, `UTC`).
    pub timezone: String,
    /// Label equality matchers; an alert is muted when all hold. Left out: the window mutes
    /// no alert by itself and only serves notification routes (`mute_when`, `active_when`).
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matchers: Option<BTreeMap<String, String>>,
}

/// Why a maintenance window was refused; each names the window.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MaintenanceError {
    #[error("a maintenance window has an empty name")]
    EmptyName,
    #[error("two maintenance windows are named {0:?}")]
    Duplicate(String),
    #[error(
        "maintenance {name:?}: days is empty; list days such as [\"sat\", \"sun\"] or \"mon-fri\""
    )]
    NoDays { name: String },
    #[error("maintenance {name:?}: {day:?} is not a day; write mon, tue, wed, thu, fri, sat, sun or a range like mon-fri")]
    BadDay { name: String, day: String },
    #[error(
        "maintenance {name:?}: start {start:?} is not a time of day; write HH:MM, e.g. \"02:00\""
    )]
    BadStart { name: String, start: String },
    #[error("maintenance {name:?}: duration {duration} must be more than 0 and at most 7 days")]
    BadDuration { name: String, duration: String },
    #[error("maintenance {name:?}: {timezone:?} is not a known time zone ({reason}); write an IANA name like \"Asia/Seoul\" or \"UTC\"")]
    BadTimezone {
        name: String,
        timezone: String,
        reason: String,
    },
    #[error("maintenance {name:?}: match is empty, so it would mute every alert; name what it covers, e.g. match = {{ service = \"shop\" }}, or leave match out for a window that only notification routes use")]
    NoMatch { name: String },
    #[error("maintenance {name:?}: {source}")]
    Matcher { name: String, source: MatcherError },
}

/// A validated window.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    name: String,
    /// Monday first.
    days: [bool; 7],
    hour: i8,
    minute: i8,
    duration_ms: i64,
    tz: TimeZone,
    /// `None`: a window for routes only, muting no alert.
    matchers: Option<Vec<CompiledMatcher>>,
}

impl MaintenanceWindow {
    pub fn new(spec: &MaintenanceSpec) -> Result<Self, MaintenanceError> {
        let name = spec.name.trim().to_string();
        if name.is_empty() {
            return Err(MaintenanceError::EmptyName);
        }
        let days = parse_days(&name, &spec.days)?;
        let (hour, minute) =
            parse_start(&spec.start).ok_or_else(|| MaintenanceError::BadStart {
                name: name.clone(),
                start: spec.start.clone(),
            })?;
        let duration_ms = i64::try_from(spec.duration.get().as_millis()).unwrap_or(i64::MAX);
        if duration_ms <= 0 || duration_ms > MAX_DURATION_MS {
            return Err(MaintenanceError::BadDuration {
                name,
                duration: spec.duration.to_string(),
            });
        }
        let tz =
            TimeZone::get(spec.timezone.trim()).map_err(|e| MaintenanceError::BadTimezone {
                name: name.clone(),
                timezone: spec.timezone.clone(),
                reason: e.to_string(),
            })?;
        let matchers = match &spec.matchers {
            None => None,
            Some(m) if m.is_empty() => return Err(MaintenanceError::NoMatch { name }),
            Some(m) => Some(m),
        };
        let matchers = matchers
            .map(|m| {
                m.iter()
                    .map(|(label, value)| {
                        CompiledMatcher::new(&Matcher {
                            name: label.clone(),
                            op: MatchOp::Equal,
                            value: value.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|source| MaintenanceError::Matcher {
                name: name.clone(),
                source,
            })?;
        Ok(MaintenanceWindow {
            name,
            days,
            hour,
            minute,
            duration_ms,
            tz,
            matchers,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether an occurrence of the window covers `now` (whatever the labels).
    pub fn active_at(&self, now_unix_ms: u64) -> bool {
        let Ok(now) = i64::try_from(now_unix_ms) else {
            return false;
        };
        let Ok(ts) = Timestamp::from_millisecond(now) else {
            return false;
        };
        // An occurrence that covers now started on today's local date or on one of the days
        // before it, as far back as the duration reaches (plus one for a DST shift).
        let mut date: Date = ts.to_zoned(self.tz.clone()).date();
        let days_back = self.duration_ms / DAY_MS + 1;
        for _ in 0..=days_back {
            if self.days[weekday_index(date.weekday())] {
                let local = date.at(self.hour, self.minute, 0, 0);
                if let Ok(start) = self.tz.to_ambiguous_timestamp(local).compatible() {
                    let start = start.as_millisecond();
                    if start <= now && now < start.saturating_add(self.duration_ms) {
                        return true;
                    }
                }
            }
            match date.yesterday() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        false
    }

    /// Whether the window is active at `now` and matches the labels.
    pub fn mutes(&self, labels: &Labels, now_unix_ms: u64) -> bool {
        self.matchers
            .as_ref()
            .is_some_and(|m| matches_all(m, labels))
            && self.active_at(now_unix_ms)
    }
}

/// Every window of the config.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceSet {
    windows: Vec<MaintenanceWindow>,
}

impl MaintenanceSet {
    /// Validates every window; names must be unique.
    pub fn new(specs: &[MaintenanceSpec]) -> Result<Self, MaintenanceError> {
        let mut windows: Vec<MaintenanceWindow> = Vec::with_capacity(specs.len());
        for spec in specs {
            let w = MaintenanceWindow::new(spec)?;
            if windows.iter().any(|o| o.name == w.name) {
                return Err(MaintenanceError::Duplicate(w.name));
            }
            windows.push(w);
        }
        Ok(MaintenanceSet { windows })
    }

    pub fn windows(&self) -> &[MaintenanceWindow] {
        &self.windows
    }

    /// The names (in config order) of the windows muting an alert with `labels` at `now`.
    pub fn muting(&self, labels: &Labels, now_unix_ms: u64) -> Vec<String> {
        self.windows
            .iter()
            .filter(|w| w.mutes(labels, now_unix_ms))
            .map(|w| w.name.clone())
            .collect()
    }
}

fn weekday_index(w: Weekday) -> usize {
    match w {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}

fn day_index(word: &str) -> Option<usize> {
    const NAMES: [(&str, &str); 7] = [
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
        ("sun", "sunday"),
    ];
    let w = word.trim().to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| w == *short || w == *long)
}

fn parse_days(name: &str, days: &Days) -> Result<[bool; 7], MaintenanceError> {
    let items: Vec<&str> = match days {
        Days::One(s) => vec![s.as_str()],
        Days::Many(v) => v.iter().map(String::as_str).collect(),
    };
    let bad = |day: &str| MaintenanceError::BadDay {
        name: name.to_string(),
        day: day.to_string(),
    };
    let mut set = [false; 7];
    for item in items {
        let (from, to) = match item.split_once('-') {
            Some((a, b)) => (
                day_index(a).ok_or_else(|| bad(item))?,
                day_index(b).ok_or_else(|| bad(item))?,
            ),
            None => {
                let d = day_index(item).ok_or_else(|| bad(item))?;
                (d, d)
            }
        };
        // Inclusive, wrapping past Sunday: "fri-mon" is fri, sat, sun, mon.
        let mut d = from;
        loop {
            if let Some(slot) = set.get_mut(d) {
                *slot = true;
            }
            if d == to {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    if !set.contains(&true) {
        return Err(MaintenanceError::NoDays {
            name: name.to_string(),
        });
    }
    Ok(set)
}

/// `HH:MM` (or `H:MM`), 00:00 to 23:59.
fn parse_start(s: &str) -> Option<(i8, i8)> {
    let (h, m) = s.trim().split_once(':')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<i8>().ok()?, m.parse::<i8>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Zoned;

    /// Milliseconds of a zoned time written like `2026-03-08T03:30[America/New_York]`.
    fn ms(s: &str) -> u64 {
        let z: Zoned = s.parse().unwrap();
        u64::try_from(z.timestamp().as_millisecond()).unwrap()
    }

    fn spec(days: Days, start: &str, duration: &str, tz: &str) -> MaintenanceSpec {
        MaintenanceSpec {
            name: "w".into(),
            days,
            start: start.into(),
            duration: duration.parse().unwrap(),
            timezone: tz.into(),
            matchers: Some([("service".to_string(), "shop".to_string())].into()),
        }
    }

    fn window(days: &[&str], start: &str, duration: &str, tz: &str) -> MaintenanceWindow {
        let days = Days::Many(days.iter().map(|d| d.to_string()).collect());
        MaintenanceWindow::new(&spec(days, start, duration, tz)).unwrap()
    }

    #[test]
    fn a_window_without_match_mutes_no_alert() {
        let mut spec = spec(Days::One("mon-sun".into()), "00:00", "7d", "UTC");
        spec.matchers = None;
        let w = MaintenanceWindow::new(&spec).unwrap();
        assert!(w.active_at(1_000_000));
        let labels = Labels::new().with("service", "shop");
        assert!(!w.mutes(&labels, 1_000_000));
    }

    #[test]
    fn weekly_window_in_its_zone() {
        // 2026-03-07 is a Saturday.
        let w = window(&["sat", "sun"], "02:00", "2h", "Asia/Seoul");
        assert!(!w.active_at(ms("2026-03-07T01:59:59[Asia/Seoul]")));
        assert!(w.active_at(ms("2026-03-07T02:00[Asia/Seoul]")));
        assert!(w.active_at(ms("2026-03-08T03:59:59[Asia/Seoul]")));
        assert!(!w.active_at(ms("2026-03-08T04:00[Asia/Seoul]")));
        // Friday at 02:30 is not a listed day.
        assert!(!w.active_at(ms("2026-03-06T02:30[Asia/Seoul]")));
        // The same instant seen from UTC: 02:30 KST is 17:30 UTC the day before.
        assert!(w.active_at(ms("2026-03-06T17:30[UTC]")));
    }

    #[test]
    fn a_window_crosses_midnight_into_the_next_day() {
        // 2026-03-01 is a Sunday.
        let w = window(&["sun"], "23:00", "2h", "Europe/Berlin");
        assert!(w.active_at(ms("2026-03-01T23:30[Europe/Berlin]")));
        assert!(w.active_at(ms("2026-03-02T00:30[Europe/Berlin]")));
        assert!(!w.active_at(ms("2026-03-02T01:00[Europe/Berlin]")));
        // A Monday window at 23:00 does not cover Monday 00:30.
        let mon = window(&["mon"], "23:00", "2h", "Europe/Berlin");
        assert!(!mon.active_at(ms("2026-03-02T00:30[Europe/Berlin]")));
        // A long window reaches back several days.
        let long = window(&["fri"], "18:00", "3d", "UTC");
        assert!(long.active_at(ms("2026-03-09T17:59[UTC]")));
        assert!(!long.active_at(ms("2026-03-09T18:00[UTC]")));
    }

    #[test]
    fn spring_forward_in_new_york() {
        // 2026-03-08 (Sunday) clocks jump from 02:00 EST to 03:00 EDT.
        // A window over the gap lasts its real duration: 01:00 EST + 2h = 04:00 EDT.
        let over = window(&["sun"], "01:00", "2h", "America/New_York");
        assert!(over.active_at(ms("2026-03-08T01:30[America/New_York]")));
        assert!(over.active_at(ms("2026-03-08T03:59[America/New_York]")));
        assert!(!over.active_at(ms("2026-03-08T04:00[America/New_York]")));
        // A start inside the gap moves forward by it: 02:30 becomes 03:30 EDT.
        let inside = window(&["sun"], "02:30", "1h", "America/New_York");
        assert!(!inside.active_at(ms("2026-03-08T03:15[America/New_York]")));
        assert!(inside.active_at(ms("2026-03-08T03:30[America/New_York]")));
        assert!(inside.active_at(ms("2026-03-08T04:29[America/New_York]")));
        assert!(!inside.active_at(ms("2026-03-08T04:30[America/New_York]")));
        // The week before and after, at the usual offsets.
        assert!(inside.active_at(ms("2026-03-01T02:45[America/New_York]")));
        assert!(inside.active_at(ms("2026-03-15T02:45[America/New_York]")));
        assert!(inside.active_at(ms("2026-03-15T06:45[UTC]")));
        assert!(inside.active_at(ms("2026-03-01T07:45[UTC]")));
    }

    #[test]
    fn fall_back_in_new_york() {
        // 2026-11-01 (Sunday) 01:00-02:00 happens twice; the first occurrence (EDT) counts.
        let w = window(&["sun"], "01:30", "1h", "America/New_York");
        assert!(w.active_at(ms("2026-11-01T05:30[UTC]"))); // 01:30 EDT
        assert!(w.active_at(ms("2026-11-01T06:15[UTC]"))); // 01:15 EST, 45 min in
        assert!(!w.active_at(ms("2026-11-01T06:30[UTC]"))); // 01:30 EST, an hour later
    }

    #[test]
    fn day_forms() {
        let d = |days: Days| parse_days("w", &days);
        let mon_fri = d(Days::One("mon-fri".into())).unwrap();
        assert_eq!(mon_fri, [true, true, true, true, true, false, false]);
        let wrap = d(Days::Many(vec!["fri-mon".into()])).unwrap();
        assert_eq!(wrap, [true, false, false, false, true, true, true]);
        let mixed = d(Days::Many(vec!["Monday".into(), "wed-thu".into()])).unwrap();
        assert_eq!(mixed, [true, false, true, true, false, false, false]);
        assert!(matches!(
            d(Days::Many(vec!["sat".into(), "funday".into()])),
            Err(MaintenanceError::BadDay { day, .. }) if day == "funday"
        ));
        assert!(matches!(
            d(Days::One("mon-".into())),
            Err(MaintenanceError::BadDay { .. })
        ));
        assert!(matches!(
            d(Days::Many(vec![])),
            Err(MaintenanceError::NoDays { .. })
        ));
    }

    #[test]
    fn start_times() {
        assert_eq!(parse_start("02:00"), Some((2, 0)));
        assert_eq!(parse_start("2:05"), Some((2, 5)));
        assert_eq!(parse_start("23:59"), Some((23, 59)));
        for bad in [
            "24:00", "12:60", "12", "12:5", "-1:00", "ab:cd", "", "123:00",
        ] {
            assert_eq!(parse_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn validation_names_the_window() {
        let one = |f: &dyn Fn(&mut MaintenanceSpec)| {
            let mut s = spec(Days::One("sat".into()), "02:00", "2h", "UTC");
            f(&mut s);
            MaintenanceWindow::new(&s).unwrap_err()
        };
        assert!(matches!(
            one(&|s| s.timezone = "Mars/Olympus".into()),
            MaintenanceError::BadTimezone { .. }
        ));
        assert!(matches!(
            one(&|s| s.start = "25:00".into()),
            MaintenanceError::BadStart { .. }
        ));
        assert!(matches!(
            one(&|s| s.duration = Duration::from_secs(0)),
            MaintenanceError::BadDuration { .. }
        ));
        assert!(matches!(
            one(&|s| s.duration = Duration::from_secs(8 * 86_400)),
            MaintenanceError::BadDuration { .. }
        ));
        assert!(matches!(
            one(&|s| s.matchers = Some(Default::default())),
            MaintenanceError::NoMatch { .. }
        ));
        assert!(matches!(
            one(&|s| s.name = " ".into()),
            MaintenanceError::EmptyName
        ));
        let e = one(&|s| {
            s.matchers
                .get_or_insert_with(Default::default)
                .insert("bad-name".into(), "x".into());
        });
        assert!(matches!(e, MaintenanceError::Matcher { .. }));
        assert!(e.to_string().contains("\"w\""), "{e}");
    }

    #[test]
    fn deserializes_strictly() {
        let spec: MaintenanceSpec = serde_json::from_value(serde_json::json!({
            "name": "db", "days": "mon-fri", "start": "02:00", "duration": "90m",
            "timezone": "Asia/Seoul", "match": {"service": "shop"}
        }))
        .unwrap();
        assert_eq!(spec.days, Days::One("mon-fri".into()));
        assert_eq!(spec.duration, Duration::from_secs(5400));
        let unknown = serde_json::from_value::<MaintenanceSpec>(serde_json::json!({
            "name": "db", "days": ["sat"], "start": "02:00", "duration": "1h",
            "timezone": "UTC", "match": {"a": "b"}, "tz": "x"
        }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
        let bare = serde_json::from_value::<MaintenanceSpec>(serde_json::json!({
            "name": "db", "days": ["sat"], "start": "02:00", "duration": 3600,
            "timezone": "UTC", "match": {"a": "b"}
        }));
        assert!(bare.is_err());
        let bad_days = serde_json::from_value::<MaintenanceSpec>(serde_json::json!({
            "name": "db", "days": 6, "start": "02:00", "duration": "1h",
            "timezone": "UTC", "match": {"a": "b"}
        }));
        assert!(bad_days
            .unwrap_err()
            .to_string()
            .contains("days as a string"));
        // It writes back the same shape (for `ballast config show`).
        let back: MaintenanceSpec =
            serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn the_set_mutes_matching_alerts_in_active_windows() {
        let mut other = spec(Days::One("mon-sun".into()), "00:00", "1h", "UTC");
        other.name = "nightly-api".into();
        other.matchers = Some([("service".to_string(), "api".to_string())].into());
        let mut weekly = spec(Days::One("sat".into()), "02:00", "2h", "UTC");
        weekly.name = "weekly-shop".into();
        let set = MaintenanceSet::new(&[weekly.clone(), other]).unwrap();
        let shop = Labels::new().with("service", "shop").with("alertname", "x");
        let api = Labels::new().with("service", "api");
        let sat = ms("2026-03-07T02:30[UTC]");
        assert_eq!(set.muting(&shop, sat), vec!["weekly-shop".to_string()]);
        assert!(set.muting(&api, sat).is_empty());
        assert_eq!(
            set.muting(&api, ms("2026-03-07T00:30[UTC]")),
            vec!["nightly-api".to_string()]
        );
        assert!(set.muting(&shop, ms("2026-03-07T04:30[UTC]")).is_empty());
        assert!(matches!(
            MaintenanceSet::new(&[weekly.clone(), weekly]).unwrap_err(),
            MaintenanceError::Duplicate(n) if n == "weekly-shop"
        ));
    }
}
