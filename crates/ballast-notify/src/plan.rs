//! The notification part of a config: receivers, routes and the shared message settings, as
//! the config crate checked them. Comparable, so a reload that changes nothing here leaves
//! delivery and grouping untouched.

use ballast_monitor::noise::MaintenanceSpec;

use crate::message::Locale;
use crate::receiver::{ReceiverSpec, Receivers};
use crate::route::{RouteSpec, Routes};

/// `[[receiver]]`, `[[notify]]`, and `[alerting] locale` / `dashboard_url`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyPlan {
    pub receivers: Vec<ReceiverSpec>,
    pub routes: Vec<RouteSpec>,
    pub locale: Locale,
    /// The dashboard's address for links in messages (default: none, no links).
    pub dashboard_url: Option<String>,
    /// The maintenance windows `mute_when` and `active_when` name.
    pub windows: Vec<MaintenanceSpec>,
    /// `[alerting] template`: texts every receiver uses unless it has its own.
    pub template: crate::template::Template,
}

/// Why a notification plan was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Receiver(#[from] crate::receiver::ReceiverError),
    #[error(transparent)]
    Route(#[from] crate::route::RouteError),
    #[error("maintenance: {0}")]
    Windows(#[from] ballast_monitor::noise::MaintenanceError),
}

impl NotifyPlan {
    /// Whether anything would be sent: at least one route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Builds the receivers (reading their secrets) and checks the routes against them and
    /// the windows.
    pub fn build(
        &self,
    ) -> Result<(Receivers, Routes, ballast_monitor::noise::MaintenanceSet), PlanError> {
        let receivers = Receivers::build(&self.receivers, self.locale, &self.template)?;
        let names = receivers.names().map(str::to_string).collect();
        let windows = ballast_monitor::noise::MaintenanceSet::new(&self.windows)?;
        let window_names = windows
            .windows()
            .iter()
            .map(|w| w.name().to_string())
            .collect();
        let routes = Routes::new(&self.routes, &names, &window_names)?;
        Ok((receivers, routes, windows))
    }
}
