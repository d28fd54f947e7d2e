//! Conversions between Ballast's unsigned values and the store's signed 64-bit integers.
//!
//! Both backends store integers as signed 64-bit; these helpers make an out-of-range value a
//! typed error on the way in and a negative one (a hand-edited row) a typed error on the way
//! out, instead of a silent wrap.

use crate::error::StoreError;

/// `value` as a store integer, or [`StoreError::OutOfRange`].
pub(crate) fn to_db(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A store integer read from `table` row `id` as unsigned, or [`StoreError::Corrupt`].
pub(crate) fn from_db(
    table: &'static str,
    id: i64,
    field: &str,
    value: i64,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        id,
        reason: format!("{field} is negative ({value})"),
    })
}

/// A limit as a store integer (`None`: no limit).
pub(crate) fn limit(limit: Option<u32>) -> i64 {
    limit.map_or(i64::MAX, i64::from)
}
