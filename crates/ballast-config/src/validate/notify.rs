//! `[[receiver]]`, `[[notify]]` and `[alerting] locale` / `dashboard_url`: checked with the
//! rest of the file, so a route naming an unknown receiver, a secret file that cannot be read
//! or a bad SMTP relay refuses the start or the reload (the running config stays), with the
//! table's line and never the secret.
//!
//! Why `[alerting] locale` and not `[notify] locale`: TOML cannot have `notify` be both the
//! array of routes (`[[notify]]`) and a table (`[notify]`).

use std::collections::BTreeSet;

use ballast_monitor::noise::MaintenanceSpec;
use ballast_notify::{Locale, NotifyPlan, ReceiverSpec, Receivers, RouteSpec, Routes, Template};

use super::Checker;

pub(super) struct Input {
    pub receivers: Vec<ReceiverSpec>,
    pub routes: Vec<RouteSpec>,
    pub locale: Locale,
    pub dashboard_url: Option<String>,
    pub windows: Vec<MaintenanceSpec>,
    pub template: Template,
}

pub(super) fn plan(c: &mut Checker, input: Input) -> NotifyPlan {
    let mut receivers = input.receivers;
    let mut names = BTreeSet::new();
    for (i, spec) in receivers.iter_mut().enumerate() {
        spec.resolve_paths(&c.base);
        let at = |field: &str| format!("receiver[{i}].{field}");
        if !names.insert(spec.name.trim().to_string()) {
            c.fail(
                at("name"),
                format!(
                    "`{}` is used by an earlier [[receiver]]; names must be unique",
                    spec.name
                ),
            );
            continue;
        }
        // Built one by one so that each problem points at its own table.
        if let Err(e) = Receivers::build(std::slice::from_ref(spec), input.locale, &input.template)
        {
            c.fail(at("name"), e.to_string());
        }
    }
    if let Some(url) = &input.dashboard_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            c.fail(
                "alerting.dashboard_url",
                format!("`{url}` is not an http:// or https:// address"),
            );
        }
    }
    if let Err(e) = input.template.validate() {
        c.fail("alerting.template", e.to_string());
    }
    let window_names: BTreeSet<String> = input.windows.iter().map(|w| w.name.clone()).collect();
    if let Err(e) = Routes::new(&input.routes, &names, &window_names) {
        let route = match &e {
            ballast_notify::RouteError::NoReceivers { route }
            | ballast_notify::RouteError::UnknownReceiver { route, .. }
            | ballast_notify::RouteError::UnknownWindow { route, .. }
            | ballast_notify::RouteError::Matcher { route, .. }
            | ballast_notify::RouteError::ZeroDuration { route, .. }
            | ballast_notify::RouteError::Group { route, .. }
            | ballast_notify::RouteError::NoEscalationTarget { route }
            | ballast_notify::RouteError::ShadowsLater { route, .. } => *route,
        };
        c.fail(
            format!("notify[{}]", route.saturating_sub(1)),
            e.to_string(),
        );
    }
    NotifyPlan {
        receivers,
        routes: input.routes,
        locale: input.locale,
        dashboard_url: input.dashboard_url,
        windows: input.windows,
        template: input.template,
    }
}
