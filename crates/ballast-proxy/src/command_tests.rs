//! `Gateway::apply` for the remediation commands (`Eject`, `Reroute`, `Shed`): what each
//! changes in the running gateway's state, what it reports, which event records it, what it
//! refuses, and how route overrides fare across a reload. Requests through real sockets are in
//! `tests/remediation.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ballast_config::{Loaded, Priority, Source};
use ballast_core::{Command, CommandError, Event, Issued, Origin, Report};

use crate::clock::now_ms;
use crate::gateway::Gateway;
use crate::overrides::Rerouted;

const A: &str = "127.0.0.1:9";
const B: &str = "127.0.0.1:10";

fn text(port: u16, with_standby: bool) -> String {
    let standby = if with_standby {
        "[[upstream]]\nname = \"standby\"\nservers = [{ addr = \"127.0.0.1:11\" }]\n"
    } else {
        ""
    };
    format!(
        r#"
[log]
access = "off"
[[listener]]
name = "web"
listen = "127.0.0.1:{port}"
[[route]]
name = "shop"
upstream = "app"
priority = "low"
[[upstream]]
name = "app"
passive = {{ ejection = "7s" }}
servers = [{{ addr = "{A}" }}, {{ addr = "{B}" }}]
{standby}"#
    )
}

/// A gateway over `text(.., true)` whose reloads read a file this test can rewrite.
async fn gateway() -> (Gateway, PathBuf, u16) {
    static N: AtomicU32 = AtomicU32::new(0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = std::env::temp_dir().join(format!(
        "ballast-command-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let text = text(port, true);
    std::fs::write(&path, &text).unwrap();
    let config = ballast_config::parse(&text, "test.toml").unwrap();
    let gw = Gateway::start(Loaded { config, text }, Source::File(path.clone()))
        .await
        .unwrap();
    (gw, path, port)
}

async fn apply(gw: &Gateway, command: Command) -> Result<Report, CommandError> {
    gw.apply(Issued {
        command,
        by: Origin::Remediation,
        who: None,
    })
    .await
}

fn events_of(gw: &Gateway, f: impl Fn(&Event) -> bool) -> Vec<Event> {
    gw.events(0)
        .into_iter()
        .map(|s| s.event)
        .filter(|e| f(e))
        .collect()
}

fn reroute(route: &str, to: Option<&str>) -> Command {
    Command::Reroute {
        route: route.into(),
        to: to.map(String::from),
    }
}

#[tokio::test]
async fn eject_takes_a_server_out_for_the_time_asked_or_the_configured_period() {
    let (gw, path, _) = gateway().await;
    let report = apply(
        &gw,
        Command::Eject {
            upstream: "app".into(),
            server: A.into(),
            duration_ms: Some(60_000),
        },
    )
    .await
    .unwrap();
    let Report::Ejected {
        ejection_ms,
        until_unix_ms,
        ..
    } = report
    else {
        panic!("{report:?}")
    };
    assert!((59_000..=60_000).contains(&ejection_ms), "{ejection_ms}");
    assert!(until_unix_ms > 1_700_000_000_000);
    let (_, a) = gw.server("app", A).unwrap();
    assert!(a.is_ejected(now_ms()) && !a.is_available(now_ms()));
    assert!(gw.server("app", B).unwrap().1.is_available(now_ms()));
    let ev = events_of(&gw, |e| matches!(e, Event::ServerEjectOrdered { .. }));
    assert!(
        matches!(&ev[..], [Event::ServerEjectOrdered { server, by: Origin::Remediation, .. }] if server == A),
        "{ev:?}"
    );

    // Without a duration: the upstream's `passive.ejection` (7s here).
    let Ok(Report::Ejected { ejection_ms, .. }) = apply(
        &gw,
        Command::Eject {
            upstream: "app".into(),
            server: B.into(),
            duration_ms: None,
        },
    )
    .await
    else {
        panic!()
    };
    assert!((6_000..=7_000).contains(&ejection_ms), "{ejection_ms}");

    // Refusals change nothing.
    let eject = |upstream: &str, server: &str, ms| Command::Eject {
        upstream: upstream.into(),
        server: server.into(),
        duration_ms: ms,
    };
    assert!(matches!(
        apply(&gw, eject("nope", A, None)).await,
        Err(CommandError::NotFound(m)) if m.contains("nope")
    ));
    assert!(matches!(
        apply(&gw, eject("app", "127.0.0.1:1", None)).await,
        Err(CommandError::NotFound(_))
    ));
    for bad in [0, 25 * 3600 * 1000] {
        assert!(matches!(
            apply(&gw, eject("app", A, Some(bad))).await,
            Err(CommandError::Invalid(_))
        ));
    }
    assert_eq!(
        events_of(&gw, |e| matches!(e, Event::ServerEjectOrdered { .. })).len(),
        2
    );
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn reroute_sets_and_clears_the_route_override() {
    let (gw, path, _) = gateway().await;
    let overrides = &gw.inner.shared.overrides;
    assert!(overrides.route("shop").is_none());

    let r = apply(&gw, reroute("shop", Some("standby"))).await.unwrap();
    assert_eq!(
        r,
        Report::Rerouted {
            route: "shop".into(),
            to: Some("standby".into()),
            changed: true
        }
    );
    match overrides.route("shop") {
        Some(Rerouted::To(rt)) => {
            assert_eq!(rt.upstream.name, "standby");
            assert_eq!(rt.cfg.name, "shop");
            assert!(rt.cache.is_none());
        }
        _ => panic!("not rerouted to standby"),
    }
    // The same again changes nothing and records nothing.
    let r = apply(&gw, reroute("shop", Some("standby"))).await.unwrap();
    assert!(matches!(r, Report::Rerouted { changed: false, .. }));

    // The sorry page: the built-in one, since the route has none.
    apply(&gw, reroute("shop", Some("sorry"))).await.unwrap();
    match overrides.route("shop") {
        Some(Rerouted::Sorry(page)) => {
            assert!(std::str::from_utf8(&page.body)
                .unwrap()
                .contains("back soon"));
        }
        _ => panic!("not rerouted to the sorry page"),
    }

    // Unknown names: NotFound, and the override in force stays.
    assert!(matches!(
        apply(&gw, reroute("nope", Some("standby"))).await,
        Err(CommandError::NotFound(m)) if m.contains("nope")
    ));
    assert!(matches!(
        apply(&gw, reroute("shop", Some("elsewhere"))).await,
        Err(CommandError::NotFound(m)) if m.contains("elsewhere")
    ));
    assert_eq!(overrides.route_target("shop").as_deref(), Some("sorry"));

    // Restored.
    let r = apply(&gw, reroute("shop", None)).await.unwrap();
    assert!(matches!(
        r,
        Report::Rerouted {
            changed: true,
            to: None,
            ..
        }
    ));
    assert!(overrides.route("shop").is_none());
    let tos: Vec<Option<String>> = events_of(&gw, |e| matches!(e, Event::RouteRerouted { .. }))
        .into_iter()
        .map(|e| match e {
            Event::RouteRerouted { to, by, .. } => {
                assert_eq!(by, Origin::Remediation);
                to
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(tos, [Some("standby".into()), Some("sorry".into()), None]);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn route_overrides_survive_reloads_while_route_and_target_exist() {
    let (gw, path, port) = gateway().await;
    let overrides = &gw.inner.shared.overrides;
    apply(&gw, reroute("shop", Some("standby"))).await.unwrap();
    let before = match overrides.route("shop") {
        Some(Rerouted::To(rt)) => rt.upstream.clone(),
        _ => panic!(),
    };

    // A reload that keeps both: the override is rebuilt over the new upstreams.
    let changed = text(port, true).replace("ejection = \"7s\"", "ejection = \"8s\"");
    std::fs::write(&path, changed).unwrap();
    apply(&gw, Command::Reload).await.unwrap();
    match overrides.route("shop") {
        Some(Rerouted::To(rt)) => {
            assert_eq!(rt.upstream.name, "standby");
            assert!(
                !std::sync::Arc::ptr_eq(&rt.upstream, &before),
                "rebuilt over the reloaded upstream"
            );
        }
        _ => panic!("the override was lost on reload"),
    }

    // A reload that removes the target: dropped, and recorded as a restore by the gateway.
    std::fs::write(&path, text_without_standby(port)).unwrap();
    apply(&gw, Command::Reload).await.unwrap();
    assert!(overrides.route("shop").is_none());
    let last = events_of(&gw, |e| matches!(e, Event::RouteRerouted { .. }))
        .pop()
        .unwrap();
    assert_eq!(
        last,
        Event::RouteRerouted {
            route: "shop".into(),
            to: None,
            by: Origin::Gateway,
            who: None,
        }
    );

    // The sorry page needs no target: it survives any reload that keeps the route.
    apply(&gw, reroute("shop", Some("sorry"))).await.unwrap();
    std::fs::write(&path, text(port, true)).unwrap();
    apply(&gw, Command::Reload).await.unwrap();
    assert_eq!(overrides.route_target("shop").as_deref(), Some("sorry"));
    let _ = std::fs::remove_file(path);
}

fn text_without_standby(port: u16) -> String {
    text(port, false)
}

#[tokio::test]
async fn shed_sets_checks_and_clears_a_class_share() {
    let (gw, path, _) = gateway().await;
    let overrides = &gw.inner.shared.overrides;
    let shed = |class: &str, share| Command::Shed {
        class: class.into(),
        share,
    };
    let r = apply(&gw, shed("low", Some(0.5))).await.unwrap();
    assert_eq!(
        r,
        Report::ShedSet {
            class: "low".into(),
            share: Some(0.5),
            changed: true
        }
    );
    assert_eq!(overrides.shed_share(Priority::Low), Some(0.5));
    assert_eq!(overrides.shed_share(Priority::Critical), None);
    for bad in [0.0, 1.01, -1.0, f64::NAN] {
        assert!(
            matches!(
                apply(&gw, shed("low", Some(bad))).await,
                Err(CommandError::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        apply(&gw, shed("urgent", Some(0.5))).await,
        Err(CommandError::Invalid(m)) if m.contains("urgent")
    ));
    assert_eq!(overrides.shed_share(Priority::Low), Some(0.5));
    let r = apply(&gw, shed("low", None)).await.unwrap();
    assert!(matches!(
        r,
        Report::ShedSet {
            changed: true,
            share: None,
            ..
        }
    ));
    assert_eq!(overrides.shed_share(Priority::Low), None);
    let shares: Vec<Option<f64>> = events_of(&gw, |e| matches!(e, Event::ShedShareSet { .. }))
        .into_iter()
        .map(|e| match e {
            Event::ShedShareSet { share, .. } => share,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(shares, [Some(0.5), None]);
    let _ = std::fs::remove_file(path);
}
