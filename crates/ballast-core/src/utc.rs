//! Calendar date and time (UTC) of a Unix timestamp, without a date-time dependency.
//!
//! It exists because several places print times for people and file names (`ballast config
//! history`, rollback's `NAME.bak.<time>`), each in its own format, and the day arithmetic
//! should be written once.

/// A moment in UTC on the proleptic Gregorian calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl UtcTime {
    /// The date and time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_secs(secs: u64) -> Self {
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Howard Hinnant's civil_from_days, for days since 1970-01-01.
        let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        UtcTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            // Both lie in 1..=31 and 1..=12 by construction.
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

/// RFC 3339 (`2026-11-30T19:20:05Z`).
impl std::fmt::Display for UtcTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_rfc3339() {
        assert_eq!(
            UtcTime::from_unix_secs(1_796_082_318).to_string(),
            "2026-11-30T23:45:18Z"
        );
    }

    #[test]
    fn known_moments() {
        let t = |s| UtcTime::from_unix_secs(s);
        assert_eq!(
            t(0),
            UtcTime {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0
            }
        );
        // 2000-02-29T12:34:56Z: a leap day in a year divisible by 400.
        assert_eq!(
            t(951_827_696),
            UtcTime {
                year: 2000,
                month: 2,
                day: 29,
                hour: 12,
                minute: 34,
                second: 56
            }
        );
        // 2026-11-30T15:30:12Z
        assert_eq!(
            t(1_796_052_612),
            UtcTime {
                year: 2026,
                month: 11,
                day: 30,
                hour: 15,
                minute: 30,
                second: 12
            }
        );
    }
}
