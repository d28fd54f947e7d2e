//! A byte size that must be written with its unit (`"64KiB"`, `"1MB"`, `"512B"`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The value had no unit.
    #[error("a size needs a unit: write \"{0}B\" or \"{0}KiB\", not a bare number")]
    MissingUnit(String),
    /// The text did not parse.
    #[error("`{0}` is not a size; write e.g. \"512B\", \"64KiB\" or \"1MiB\"")]
    Invalid(String),
}

/// A number of bytes written with an explicit unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(u64);

impl Size {
    /// A size of `n` bytes.
    pub const fn bytes(n: u64) -> Self {
        Self(n)
    }

    /// The number of bytes.
    pub const fn get(self) -> u64 {
        self.0
    }
}

const UNITS: &[(&str, u64)] = &[
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("kB", 1000),
    ("B", 1),
];

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            return Err(SizeError::MissingUnit(t.to_string()));
        }
        for (unit, mult) in UNITS {
            if let Some(num) = t.strip_suffix(unit) {
                let n: u64 = num
                    .trim()
                    .parse()
                    .map_err(|_| SizeError::Invalid(t.to_string()))?;
                return n
                    .checked_mul(*mult)
                    .map(Size)
                    .ok_or_else(|| SizeError::Invalid(t.to_string()));
            }
        }
        Err(SizeError::Invalid(t.to_string()))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n != 0 && n.is_multiple_of(1 << 20) {
            write!(f, "{}MiB", n >> 20)
        } else if n != 0 && n.is_multiple_of(1 << 10) {
            write!(f, "{}KiB", n >> 10)
        } else {
            write!(f, "{n}B")
        }
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size string with a unit, e.g. \"64KiB\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                Err(E::custom(SizeError::MissingUnit(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Err(E::custom(SizeError::MissingUnit(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!("64KiB".parse::<Size>().unwrap().get(), 65536);
        assert_eq!("1MB".parse::<Size>().unwrap().get(), 1_000_000);
        assert_eq!("512B".parse::<Size>().unwrap().get(), 512);
    }

    #[test]
    fn bare_number_is_refused() {
        assert!(matches!(
            "64".parse::<Size>(),
            Err(SizeError::MissingUnit(_))
        ));
        assert!(matches!("64XB".parse::<Size>(), Err(SizeError::Invalid(_))));
    }
}
