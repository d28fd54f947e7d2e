//! `ballast lab`: measures Ballast against HAProxy and nginx under the same load and the same
//! injected faults, in one run, and reports ratios rather than absolute times.
//!
//! Ballast claims to be better in the moments that matter (a server dies, hangs, slows down,
//! errors, the traffic doubles); this crate is the instrument that checks the claim. It starts
//! its own backends as separate processes (so they can really be killed or stopped), runs each
//! proxy with an equivalent configuration and the same CPU allowance, drives load with an
//! open-loop or closed-loop generator, injects the scenario's fault, and writes Markdown, SVG
//! and JSON reports.

pub mod backend;
mod error;
pub mod load;
pub mod peers;
pub mod report;
pub mod result;
pub mod runner;
pub mod scenarios;

pub use error::LabError;
pub use runner::{harness_problems, run, LabOptions};
