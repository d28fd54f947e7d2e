//! The machine-readable results file, `results.json`.
//!
//! The Markdown and the plots are views; the JSON is the record. It holds every measured
//! figure (the whole [`LabReport`]), so a later reader can recompute a ratio, re-render the
//! report after a change to this module, or compare two runs without rerunning the lab.

use std::path::Path;

use crate::result::LabReport;
use crate::LabError;

/// The report as pretty-printed JSON, newline-terminated.
///
/// `serde_json` writes a non-finite `f64` (NaN, ±inf) as `null`, which does not read back into
/// an `f64`: the lab's producers are expected to record missing figures by leaving them out
/// (e.g. absent from `Run::metrics`), not as NaN.
pub fn results_json(report: &LabReport) -> Result<String, LabError> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}

/// Reads a `results.json` written by [`results_json`] (or `write_all`).
pub fn read_results(path: &Path) -> Result<LabReport, LabError> {
    let text = std::fs::read_to_string(path)
        .map_err(LabError::io(format!("reading {}", path.display())))?;
    Ok(serde_json::from_str(&text)?)
}
