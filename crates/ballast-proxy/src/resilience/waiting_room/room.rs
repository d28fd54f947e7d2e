//! The waiting room's bookkeeping, with the clock passed in (milliseconds) so every rule can be
//! tested without sleeping.
//!
//! A slot is held by an active session (until it expires) or by a called ticket (until its
//! holder collects it or the call lapses). Slots go to tickets strictly in ticket order: each
//! visit first expires what is over, then *calls* the lowest waiting tickets into the free
//! slots. A called ticket is admitted at its holder's next visit, so a visitor presenting
//! ticket T gets in only after every earlier live ticket was called. A holder that stops
//! refreshing (unseen for 3 × refresh) is dropped from the line, and a call not collected
//! within 3 × refresh lapses, so an abandoned ticket never stalls the line.
//!
//! ```text
//!   no cookie ──(nobody waiting, a slot free)──────────────▶ Session(expires)
//!   no cookie ──(else, line not full)──▶ Waiting(ticket) ──(lowest, slot free)──▶ Called
//!   Called ──(holder's next visit)──▶ Session      Called ──(3 × refresh)──▶ dropped
//!   Waiting ──(unseen for 3 × refresh)──▶ dropped  Session ──(expires)──▶ slot free
//!   Session ──(visit with less than half the session left)──▶ Session(renewed)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use ballast_config::WaitingRoomConfig;

/// What a valid cookie says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// A place in line of room instance `epoch`.
    Ticket { epoch: u64, number: u64 },
    /// Admitted until `expires_ms` (Unix milliseconds).
    Session {
        epoch: u64,
        id: u64,
        expires_ms: u64,
    },
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward it; set this cookie on the response when given.
    Enter(Option<Pass>),
    /// Answer the queue page; set `issue` as the cookie when given (a new ticket).
    Wait {
        position: u64,
        wait_ms: u64,
        issue: Option<Pass>,
    },
    /// The line is full: a plain 503.
    Full,
}

/// A change of the room's state worth an event (never one per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The first visitor had to wait: the room is full.
    Queueing { active: u64 },
    /// The line reached `max_queue`; reported once per queueing spell.
    LineFull,
    /// Nobody is waiting any more.
    Cleared { admitted: u64, queued_ms: u64 },
}

/// Numbers for metrics and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub active: u64,
    pub waiting: u64,
    pub called: u64,
    pub next_ticket: u64,
    pub admitted: u64,
    pub queue_pages: u64,
    pub refused: u64,
    pub abandoned: u64,
}

/// Calls remembered for the admission-rate estimate.
const RATE_SAMPLES: usize = 128;
/// Calls older than this do not count towards the rate.
const RATE_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Positions are read from a sorted copy of the line rebuilt at most this often.
const RANKS_MAX_AGE_MS: u64 = 100;

pub struct Room {
    pub epoch: u64,
    capacity: u64,
    session_ms: u64,
    /// A waiting or called ticket unseen for this long is dropped.
    abandon_ms: u64,
    max_queue: u64,
    next_ticket: u64,
    next_session: u64,
    /// Waiting ticket → last seen.
    waiting: BTreeMap<u64, u64>,
    /// (last seen, ticket) of the waiting tickets, oldest first.
    seen: BTreeSet<(u64, u64)>,
    /// Called ticket → deadline. Tickets are called in order at non-decreasing times, so the
    /// first entry always has the earliest deadline.
    called: BTreeMap<u64, u64>,
    /// Active session (epoch, id) → expiry.
    sessions: HashMap<(u64, u64), u64>,
    /// (expiry, session) of the active sessions, soonest first.
    expiries: BTreeSet<(u64, (u64, u64))>,
    /// When recent tickets were called.
    calls: VecDeque<u64>,
    /// A sorted copy of the waiting tickets, for positions; rebuilt when stale.
    ranks: Vec<u64>,
    ranks_at: u64,
    ranks_dirty: bool,
    /// When the current queueing spell began, and the admissions during it.
    queue_since: Option<u64>,
    spell_admitted: u64,
    line_full_reported: bool,
    admitted: u64,
    queue_pages: u64,
    refused: u64,
    abandoned: u64,
    changes: Vec<Change>,
}

impl Room {
    pub fn new(cfg: &WaitingRoomConfig, epoch: u64) -> Self {
        let refresh_ms = cfg.refresh.as_millis() as u64;
        Room {
            epoch,
            capacity: u64::from(cfg.capacity),
            session_ms: (cfg.session.as_millis() as u64).max(1),
            abandon_ms: refresh_ms.saturating_mul(3).max(1),
            max_queue: u64::from(cfg.max_queue),
            next_ticket: 1,
            next_session: 1,
            waiting: BTreeMap::new(),
            seen: BTreeSet::new(),
            called: BTreeMap::new(),
            sessions: HashMap::new(),
            expiries: BTreeSet::new(),
            calls: VecDeque::new(),
            ranks: Vec::new(),
            ranks_at: 0,
            ranks_dirty: false,
            queue_since: None,
            spell_admitted: 0,
            line_full_reported: false,
            admitted: 0,
            queue_pages: 0,
            refused: 0,
            abandoned: 0,
            changes: Vec::new(),
        }
    }

    /// Decides one request from a visitor holding `pass` (a cookie already verified).
    pub fn visit(&mut self, pass: Option<Pass>, now: u64) -> Outcome {
        self.tick(now);
        let outcome = match pass {
            Some(Pass::Session {
                epoch,
                id,
                expires_ms,
            }) if expires_ms > now => self.session(epoch, id, expires_ms, now),
            Some(Pass::Ticket { epoch, number }) if epoch == self.epoch => {
                if self.called.remove(&number).is_some() {
                    Outcome::Enter(Some(self.admit(now)))
                } else if self.waiting.contains_key(&number) {
                    self.see(number, now);
                    self.wait(number, now, None)
                } else {
                    // Dropped as abandoned (or already admitted): back of the line.
                    self.arrive(now)
                }
            }
            // Expired, or from an earlier room: as if there were no cookie.
            _ => self.arrive(now),
        };
        self.check_cleared(now);
        outcome
    }

    /// State changes since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The numbers, brought up to date.
    pub fn snapshot(&mut self, now: u64) -> Snapshot {
        self.tick(now);
        self.check_cleared(now);
        Snapshot {
            active: self.sessions.len() as u64,
            waiting: self.waiting.len() as u64,
            called: self.called.len() as u64,
            next_ticket: self.next_ticket,
            admitted: self.admitted,
            queue_pages: self.queue_pages,
            refused: self.refused,
            abandoned: self.abandoned,
        }
    }

    /// A visitor without a usable cookie.
    fn arrive(&mut self, now: u64) -> Outcome {
        if self.waiting.is_empty() && self.free() > 0 {
            return Outcome::Enter(Some(self.admit(now)));
        }
        if (self.waiting.len() + self.called.len()) as u64 >= self.max_queue {
            self.refused += 1;
            if !self.line_full_reported {
                self.line_full_reported = true;
                self.changes.push(Change::LineFull);
            }
            return Outcome::Full;
        }
        if self.queue_since.is_none() {
            self.queue_since = Some(now);
            self.spell_admitted = 0;
            self.changes.push(Change::Queueing {
                active: self.sessions.len() as u64,
            });
        }
        let number = self.next_ticket;
        self.next_ticket += 1;
        self.waiting.insert(number, now);
        self.seen.insert((now, number));
        let ticket = Pass::Ticket {
            epoch: self.epoch,
            number,
        };
        self.wait(number, now, Some(ticket))
    }

    /// A visitor holding an unexpired session.
    fn session(&mut self, epoch: u64, id: u64, expires_ms: u64, now: u64) -> Outcome {
        let key = (epoch, id);
        let Some(&known) = self.sessions.get(&key) else {
            // Issued by an earlier room (a reload that changed the settings, or a restart with
            // the same key): honoured, and counted from now on.
            self.sessions.insert(key, expires_ms);
            self.expiries.insert((expires_ms, key));
            return Outcome::Enter(None);
        };
        if known.saturating_sub(now) * 2 >= self.session_ms {
            return Outcome::Enter(None);
        }
        let expires_ms = now.saturating_add(self.session_ms);
        self.expiries.remove(&(known, key));
        self.expiries.insert((expires_ms, key));
        self.sessions.insert(key, expires_ms);
        Outcome::Enter(Some(Pass::Session {
            epoch,
            id,
            expires_ms,
        }))
    }

    /// A new session for an admitted visitor.
    fn admit(&mut self, now: u64) -> Pass {
        let key = (self.epoch, self.next_session);
        self.next_session += 1;
        let expires_ms = now.saturating_add(self.session_ms);
        self.sessions.insert(key, expires_ms);
        self.expiries.insert((expires_ms, key));
        self.admitted += 1;
        if self.queue_since.is_some() {
            self.spell_admitted += 1;
        }
        Pass::Session {
            epoch: key.0,
            id: key.1,
            expires_ms,
        }
    }

    fn wait(&mut self, number: u64, now: u64, issue: Option<Pass>) -> Outcome {
        self.queue_pages += 1;
        let position = self.position(number, now);
        Outcome::Wait {
            position,
            wait_ms: self.estimate_ms(position, now),
            issue,
        }
    }

    fn see(&mut self, number: u64, now: u64) {
        if let Some(last) = self.waiting.insert(number, now) {
            self.seen.remove(&(last, number));
        }
        self.seen.insert((now, number));
    }

    /// Slots neither held by a session nor promised to a called ticket.
    fn free(&self) -> u64 {
        self.capacity
            .saturating_sub(self.sessions.len() as u64)
            .saturating_sub(self.called.len() as u64)
    }

    /// Expires sessions, drops abandoned tickets and lapsed calls, calls the next tickets.
    fn tick(&mut self, now: u64) {
        while let Some(&(expires, key)) = self.expiries.first() {
            if expires > now {
                break;
            }
            self.expiries.pop_first();
            self.sessions.remove(&key);
        }
        while let Some(&(last, number)) = self.seen.first() {
            if last.saturating_add(self.abandon_ms) > now {
                break;
            }
            self.seen.pop_first();
            self.waiting.remove(&number);
            self.abandoned += 1;
            self.ranks_dirty = true;
        }
        while let Some((_, &deadline)) = self.called.first_key_value() {
            if deadline > now {
                break;
            }
            self.called.pop_first();
            self.abandoned += 1;
        }
        let mut free = self.free();
        while free > 0 {
            let Some((number, last)) = self.waiting.pop_first() else {
                break;
            };
            self.seen.remove(&(last, number));
            self.called
                .insert(number, now.saturating_add(self.abandon_ms));
            if self.calls.len() == RATE_SAMPLES {
                self.calls.pop_front();
            }
            self.calls.push_back(now);
            self.ranks_dirty = true;
            free -= 1;
        }
    }

    fn check_cleared(&mut self, now: u64) {
        if self.waiting.is_empty() && self.called.is_empty() {
            if let Some(since) = self.queue_since.take() {
                self.line_full_reported = false;
                self.changes.push(Change::Cleared {
                    admitted: self.spell_admitted,
                    queued_ms: now.saturating_sub(since),
                });
            }
        }
    }

    /// 1 for the next ticket to be called. Read from a copy of the line at most
    /// `RANKS_MAX_AGE_MS` old (tickets issued since are counted exactly).
    fn position(&mut self, number: u64, now: u64) -> u64 {
        if self.ranks_dirty && now.saturating_sub(self.ranks_at) >= RANKS_MAX_AGE_MS {
            self.ranks.clear();
            self.ranks.extend(self.waiting.keys().copied());
            self.ranks_at = now;
            self.ranks_dirty = false;
        }
        let last = self.ranks.last().copied().unwrap_or(0);
        let mut position = self.ranks.partition_point(|&t| t <= number) as u64;
        if number > last {
            position += self.waiting.range(last + 1..=number).count() as u64;
        }
        position.max(1)
    }

    /// Expected wait of the visitor at `position`: from the rate at which tickets were called
    /// recently, or, before any was, as if each slot freed once per session.
    fn estimate_ms(&self, position: u64, now: u64) -> u64 {
        // `calls` is in time order: the first recent one starts the span.
        let mut recent = self
            .calls
            .iter()
            .filter(|t| now.saturating_sub(**t) <= RATE_WINDOW_MS);
        match recent.next() {
            Some(&first) => {
                let n = 1 + recent.count() as u64;
                // Calls per ms over the time since the first recent one (at least one refresh,
                // so a burst of calls does not promise an instant admission).
                let span = now.saturating_sub(first).max(self.abandon_ms / 3).max(1);
                position.saturating_mul(span) / n
            }
            None => position
                .div_ceil(self.capacity.max(1))
                .saturating_mul(self.session_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(capacity: u32, session_ms: u64, refresh_ms: u64, max_queue: u32) -> WaitingRoomConfig {
        WaitingRoomConfig {
            capacity,
            session: Duration::from_millis(session_ms),
            refresh: Duration::from_millis(refresh_ms),
            max_queue,
            cookie: "wr".into(),
            secret: None,
            page: None,
        }
    }

    /// A browser: keeps whatever cookie the room gives it.
    #[derive(Default)]
    struct Visitor(Option<Pass>);

    impl Visitor {
        fn go(&mut self, r: &mut Room, now: u64) -> Outcome {
            let o = r.visit(self.0, now);
            match &o {
                Outcome::Enter(Some(p)) | Outcome::Wait { issue: Some(p), .. } => self.0 = Some(*p),
                _ => {}
            }
            o
        }

        /// Visits and says whether it got in.
        fn enters(&mut self, r: &mut Room, now: u64) -> bool {
            matches!(self.go(r, now), Outcome::Enter(_))
        }

        fn position(&mut self, r: &mut Room, now: u64) -> u64 {
            match self.go(r, now) {
                Outcome::Wait { position, .. } => position,
                other => panic!("expected to wait, got {other:?}"),
            }
        }
    }

    #[test]
    fn admits_up_to_capacity_then_queues_in_arrival_order() {
        let mut r = Room::new(&cfg(2, 10_000, 1_000, 100), 7);
        let mut v: Vec<Visitor> = (0..5).map(|_| Visitor::default()).collect();
        assert!(v[0].enters(&mut r, 1));
        assert!(v[1].enters(&mut r, 2));
        let positions: Vec<u64> = (2..5)
            .map(|i| v[i].position(&mut r, 3 + i as u64))
            .collect();
        assert_eq!(positions, vec![1, 2, 3]);
        // The admitted keep their access.
        assert!(v[0].enters(&mut r, 20));
        let s = r.snapshot(20);
        assert_eq!(
            (s.active, s.waiting, s.next_ticket, s.admitted),
            (2, 3, 4, 2)
        );
        assert_eq!(r.take_changes(), vec![Change::Queueing { active: 2 }]);
    }

    #[test]
    fn a_later_ticket_waits_until_every_earlier_one_was_called() {
        let mut r = Room::new(&cfg(1, 1_000, 1_000, 100), 7);
        let (mut a, mut b, mut c) = (Visitor::default(), Visitor::default(), Visitor::default());
        assert!(a.enters(&mut r, 0));
        let expired = a.0;
        assert_eq!(b.position(&mut r, 10), 1);
        assert_eq!(c.position(&mut r, 20), 2);
        // a's session ends at 1000: the one slot goes to b, even though c asks first.
        assert_eq!(c.position(&mut r, 1_100), 1);
        assert!(b.enters(&mut r, 1_200));
        // c stays out while b's session lasts, however often it asks.
        for now in [1_300, 1_500, 2_000, 2_150] {
            assert!(!c.enters(&mut r, now), "{now}");
        }
        // b's session (from 1200) is over at 2200: c is next.
        assert!(c.enters(&mut r, 2_250));
        // a's long-expired session neither counts nor lets a in.
        assert!(!Visitor(expired).enters(&mut r, 2_300));
        assert_eq!(r.snapshot(2_300).active, 1);
    }

    #[test]
    fn an_abandoned_ticket_is_skipped_and_its_holder_goes_to_the_back() {
        // refresh 100 ms: unseen for 300 ms means gone.
        let mut r = Room::new(&cfg(1, 1_000, 100, 100), 7);
        let (mut a, mut b, mut c) = (Visitor::default(), Visitor::default(), Visitor::default());
        assert!(a.enters(&mut r, 0));
        b.position(&mut r, 10);
        c.position(&mut r, 20);
        let b_ticket = b.0;
        // c keeps refreshing; b goes quiet and is dropped at 310, so c moves up.
        for now in (100..=900).step_by(100) {
            assert_eq!(
                c.position(&mut r, now),
                if now < 400 { 2 } else { 1 },
                "{now}"
            );
        }
        // The slot frees at 1000 and goes to c.
        assert!(c.enters(&mut r, 1_050));
        // b returns: a new ticket at the back, not its old place.
        assert_eq!(b.position(&mut r, 1_060), 1);
        assert_ne!(b.0, b_ticket);
        assert_eq!(r.snapshot(1_060).abandoned, 1);
    }

    #[test]
    fn an_uncollected_call_lapses_and_the_next_ticket_is_called() {
        let mut r = Room::new(&cfg(1, 1_000, 100, 100), 7);
        let (mut a, mut b, mut c) = (Visitor::default(), Visitor::default(), Visitor::default());
        assert!(a.enters(&mut r, 0));
        b.position(&mut r, 10);
        c.position(&mut r, 20);
        // Both refresh until 900; then b stops, right before its turn.
        for now in (100..=900).step_by(100) {
            b.position(&mut r, now);
            c.position(&mut r, now + 1);
        }
        // At 1001 the session is over: b is called (a slot promised to it), c still waits.
        assert_eq!(c.position(&mut r, 1_001), 1);
        assert_eq!(r.snapshot(1_001).called, 1);
        assert!(!c.enters(&mut r, 1_200));
        // b never collects: its call lapses after 300 ms and c gets the slot.
        assert!(c.enters(&mut r, 1_310));
        // b, late, is at the back of the line.
        assert_eq!(b.position(&mut r, 1_320), 1);
    }

    #[test]
    fn sessions_expire_free_their_slot_and_are_renewed_while_active() {
        let mut r = Room::new(&cfg(1, 1_000, 1_000, 100), 7);
        let (mut a, mut b) = (Visitor::default(), Visitor::default());
        assert!(a.enters(&mut r, 0));
        // More than half the session left: no new cookie.
        assert_eq!(a.go(&mut r, 400), Outcome::Enter(None));
        // Less than half: renewed to 600 + 1000.
        assert!(matches!(
            a.go(&mut r, 600),
            Outcome::Enter(Some(Pass::Session {
                expires_ms: 1_600,
                ..
            }))
        ));
        assert_eq!(r.snapshot(700).active, 1);
        b.position(&mut r, 700);
        // The renewed session holds the slot until 1600, not the first cookie's 1000.
        assert!(!b.enters(&mut r, 1_500));
        assert_eq!(r.snapshot(1_600).active, 0);
        assert!(b.enters(&mut r, 1_650));
        // a, idle since 600, has lost its place.
        assert!(!a.enters(&mut r, 1_700));
    }

    #[test]
    fn a_session_from_an_earlier_room_is_honoured_and_counted() {
        let mut r = Room::new(&cfg(1, 1_000, 1_000, 100), 7);
        let foreign = Pass::Session {
            epoch: 3,
            id: 1,
            expires_ms: 900,
        };
        assert_eq!(r.visit(Some(foreign), 100), Outcome::Enter(None));
        assert_eq!(r.snapshot(100).active, 1);
        assert_eq!(Visitor::default().position(&mut r, 200), 1);
        // A ticket of another room is no ticket: a new one, behind the first.
        let mut stale = Visitor(Some(Pass::Ticket {
            epoch: 3,
            number: 1,
        }));
        assert_eq!(stale.position(&mut r, 300), 2);
        assert_eq!(
            stale.0,
            Some(Pass::Ticket {
                epoch: 7,
                number: 2
            })
        );
    }

    #[test]
    fn a_full_line_refuses_and_reports_once_then_clears() {
        let mut r = Room::new(&cfg(1, 1_000, 1_000, 2), 7);
        let mut v: Vec<Visitor> = (0..3).map(|_| Visitor::default()).collect();
        assert!(v[0].enters(&mut r, 0));
        v[1].position(&mut r, 1);
        v[2].position(&mut r, 2);
        assert_eq!(Visitor::default().go(&mut r, 3), Outcome::Full);
        assert_eq!(Visitor::default().go(&mut r, 4), Outcome::Full);
        assert_eq!(r.snapshot(5).refused, 2);
        // The two waiting refresh until both are in (the admitted stop visiting).
        let mut inside = [false; 3];
        for now in (500..=3_000).step_by(500) {
            for (i, vis) in v.iter_mut().enumerate().skip(1) {
                if !inside[i] {
                    inside[i] = vis.enters(&mut r, now + i as u64);
                }
            }
        }
        assert_eq!(inside, [false, true, true]);
        let changes = r.take_changes();
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(changes[0], Change::Queueing { active: 1 });
        assert_eq!(changes[1], Change::LineFull);
        assert!(matches!(changes[2], Change::Cleared { admitted: 2, .. }));
        // Nothing more happens while nobody waits.
        r.snapshot(10_000);
        assert!(r.take_changes().is_empty());
    }

    #[test]
    fn the_wait_estimate_follows_the_observed_rate() {
        let mut r = Room::new(&cfg(10, 60_000, 1_000, 100), 7);
        // Before any call: a slot frees once per session, `capacity` at a time.
        assert_eq!(r.estimate_ms(1, 0), 60_000);
        assert_eq!(r.estimate_ms(11, 0), 120_000);
        // Ten calls over the last 10 s: one a second.
        for t in 0..10 {
            r.calls.push_back(t * 1_000);
        }
        assert_eq!(r.estimate_ms(5, 10_000), 5_000);
    }
}
