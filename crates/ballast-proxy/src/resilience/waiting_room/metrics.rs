//! The waiting rooms' series for `/metrics`, one row per route that has a room in the running
//! configuration. Reading them brings each room up to date first (expired sessions leave,
//! abandoned tickets are dropped), so an idle room does not report stale numbers.
//! The counters belong to the room: when a reload changes a room's settings, the new room
//! starts from zero (a counter reset, which `rate()` handles).

use prometheus_client::encoding::DescriptorEncoder;

use crate::gateway::Inner;
use crate::metrics::{counter, gauge};

pub(crate) fn encode(enc: &mut DescriptorEncoder, inner: &Inner) -> std::fmt::Result {
    let shared = &inner.shared;
    let config = inner.config.load();
    let rooms: Vec<_> = config
        .routes
        .iter()
        .filter_map(|r| {
            let room = shared.registry.room(&r.name, r.waiting_room.as_ref()?)?;
            Some((r.name.clone(), room.status(&r.name, &shared.events)))
        })
        .collect();
    let gauges = |f: fn(&super::RoomStatus) -> u64| -> Vec<(Vec<(&'static str, String)>, i64)> {
        rooms
            .iter()
            .map(|(route, s)| (vec![("route", route.clone())], f(s) as i64))
            .collect()
    };
    let counters = |f: fn(&super::RoomStatus) -> u64| -> Vec<(Vec<(&'static str, String)>, u64)> {
        rooms
            .iter()
            .map(|(route, s)| (vec![("route", route.clone())], f(s)))
            .collect()
    };
    gauge(
        enc,
        "ballast_waiting_room_capacity",
        "Visitors a route's waiting room lets in at once.",
        &gauges(|s| u64::from(s.capacity)),
    )?;
    gauge(
        enc,
        "ballast_waiting_room_active",
        "Admitted visitors whose session has not expired, by route.",
        &gauges(|s| s.active),
    )?;
    gauge(
        enc,
        "ballast_waiting_room_waiting",
        "Visitors in line (including those called but not yet back), by route.",
        &gauges(|s| s.waiting + s.called),
    )?;
    counter(
        enc,
        "ballast_waiting_room_admitted",
        "Visitors let in by a waiting room, by route.",
        &counters(|s| s.admitted),
    )?;
    counter(
        enc,
        "ballast_waiting_room_queue_pages",
        "Queue pages served, by route.",
        &counters(|s| s.queue_pages),
    )?;
    counter(
        enc,
        "ballast_waiting_room_refused",
        "Visitors refused with 503 because the line was full, by route.",
        &counters(|s| s.refused),
    )?;
    counter(
        enc,
        "ballast_waiting_room_abandoned",
        "Tickets dropped because their holder stopped refreshing, by route.",
        &counters(|s| s.abandoned),
    )
}
