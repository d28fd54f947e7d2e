//! Renders what a lab run measured: Markdown for people, SVG plots of the timelines, JSON for
//! the record.
//!
//! The report is the lab's output, so it must be readable without the harness: each scenario
//! says what it measured and under which load, gives every target's raw figures, and divides
//! Ballast's by each peer's with the direction ("better"/"worse") spelled out. It renders only
//! from [`LabReport`]; rendering never panics nor prints `NaN`/`inf`, whatever the
//! measurements hold (missing values and ratios that cannot be formed show as "—"). Only
//! serializing and writing files return errors.
//!
//! A results directory written by [`write_all`] holds:
//! - `results.json`: the whole [`LabReport`];
//! - `README.md`: run facts, the summary table, every scenario section with its plot;
//! - `<scenario>.md` and `<scenario>.svg` for each scenario (the name restricted to
//!   `[A-Za-z0-9._-]` and made unique, so it always names a file inside the directory).

mod figures;
mod json;
mod markdown;
mod svg;

use std::path::{Path, PathBuf};

pub use json::{read_results, results_json};
pub use markdown::{lab_doc_section, scenario_markdown, summary_table};
pub use svg::scenario_svg;

use crate::result::LabReport;
use crate::LabError;

/// The whole report as the `README.md` of a results directory (links to `<scenario>.md` and
/// `<scenario>.svg` next to it).
pub fn readme(report: &LabReport) -> String {
    markdown::readme(report, &figures::file_stems(&report.scenarios))
}

/// Creates `dir` and writes `results.json`, `README.md`, and `<scenario>.md` and
/// `<scenario>.svg` for each scenario into it. Returns the paths written, in that order.
pub fn write_all(report: &LabReport, dir: &Path) -> Result<Vec<PathBuf>, LabError> {
    std::fs::create_dir_all(dir).map_err(|source| LabError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let stems = figures::file_stems(&report.scenarios);
    let mut files: Vec<(PathBuf, String)> = vec![
        (dir.join("results.json"), results_json(report)?),
        (dir.join("README.md"), markdown::readme(report, &stems)),
    ];
    for (s, stem) in report.scenarios.iter().zip(&stems) {
        files.push((
            dir.join(format!("{stem}.md")),
            markdown::scenario_page(report, s, stem),
        ));
        files.push((dir.join(format!("{stem}.svg")), scenario_svg(s)));
    }
    let mut written = Vec::with_capacity(files.len());
    for (path, contents) in files {
        std::fs::write(&path, contents).map_err(|source| LabError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
