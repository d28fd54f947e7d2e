//! Ballast's automatic remediation: "when this alert fires, do that", bounded.
//!
//! Operators restart daemons, drain servers and clean disks by hand at night; this crate lets
//! the config say so once. Because autonomous control is a stopgap that can hide the real
//! problem (or make it worse), every run is guarded and recorded:
//!
//! - `rule.rs`: `[[remedy]]` as written, validated, and matched to firing alerts;
//! - `event.rs`: gateway events as one-shot triggers (`when = { event = "..." }`);
//! - `placeholder.rs`: `{{label}}` substitution that never lets an alert's value reach a shell;
//! - `guard.rs`: dry-run, cooldown, budgets per target and rule, a global rate, and escalation
//!   to a person (pure, time passed in);
//! - `action/`: the actions as values and the one exhaustive `apply` of the process-side kinds;
//! - `run.rs`: one remediation from a firing alert to the `ballast_core::RemediationRun` record
//!   (kept in `ballast-core` so the store, the API and incidents share it);
//! - `verify.rs`: a run that did not make its alert resolve in time counts as failed.
//!
//! Not here: reading alerts from a channel, the timer for `verify`, persisting runs, notifying the
//! escalation receiver and applying the gateway-side actions. The binary wires those.

pub mod action;
pub mod event;
pub mod guard;
pub mod placeholder;
pub mod rule;
pub mod run;
pub mod verify;
