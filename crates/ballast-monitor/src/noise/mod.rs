//! Noise control: what keeps Ballast's alerts worth reading (issue 12, item 4).
//!
//! "Never send meaningless alarms": a disk-full outage was missed because false alarms had
//! trained people to ignore them. Everything here is pure logic over plain values (time passed
//! in as ms since the Unix epoch), wired in by the runtime and the API:
//!
//! - [`matcher`]: label matchers, compiled, and their text form for the CLI;
//! - [`silence`]: which silences mute an alert; validation of a new silence;
//! - [`maintenance`]: weekly recurring maintenance windows from the config, in a time zone;
//! - [`inhibit`]: critical over warning, and `depends_on`;
//! - [`status`]: every alert's [`status::Mute`] (silenced, in maintenance, inhibited, and why);
//! - [`group`]: grouping and deduplication of notifications.
//!
//! Wiring, each evaluation round at `now`: build a [`NoiseControl`] whenever the config or the
//! silences change (its parts refuse bad input with errors that name it); call
//! [`NoiseControl::status`] on every alert (own and received, see [`crate::alertmanager`]) and
//! show each [`Mute`] in `GET /api/v1/alerts`; for each notification route, pass the alerts it
//! matches that are not muted to its [`Grouper::update`], then send what [`Grouper::due`]
//! returns (and sleep until [`Grouper::next_due`] at most). After a restart,
//! [`Grouper::restore`] the alerts already notified. `POST /api/v1/silences` runs
//! [`silence::validate`] first; the CLI reads matchers with [`parse_matcher`].

pub mod group;
pub mod inhibit;
pub mod maintenance;
pub mod matcher;
pub mod silence;
pub mod status;

pub use group::{Flush, FlushReason, GroupError, GroupSpec, Grouper};
pub use inhibit::{inhibitions, Dependencies, DependsOn, DependsOnEqual, InhibitError, Inhibition};
pub use maintenance::{Days, MaintenanceError, MaintenanceSet, MaintenanceSpec, MaintenanceWindow};
pub use matcher::{format_matcher, parse_matcher, parse_matchers, CompiledMatcher, MatcherError};
pub use silence::{SilenceError, SilenceSet};
pub use status::{mute_status, Mute, NoiseControl};
