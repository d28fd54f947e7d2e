//! A share written as a percentage (`"50%"`), used for caps such as the largest share of a
//! pool that passive health may eject.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a ratio could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a percentage between 0% and 100%; write e.g. \"50%\"")]
pub struct RatioError(String);

/// A fraction between 0 and 1, written as a percentage.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Ratio(f64);

impl Ratio {
    /// A ratio from a fraction in `0.0..=1.0`.
    pub fn from_fraction(f: f64) -> Option<Self> {
        (0.0..=1.0).contains(&f).then_some(Self(f))
    }

    /// The fraction in `0.0..=1.0`.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl FromStr for Ratio {
    type Err = RatioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let n: f64 = t
            .strip_suffix('%')
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| RatioError(t.to_string()))?;
        Ratio::from_fraction(n / 100.0).ok_or_else(|| RatioError(t.to_string()))
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0 * 100.0)
    }
}

impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!("50%".parse::<Ratio>().unwrap().get(), 0.5);
        assert!("150%".parse::<Ratio>().is_err());
        assert!("0.5".parse::<Ratio>().is_err());
    }
}
