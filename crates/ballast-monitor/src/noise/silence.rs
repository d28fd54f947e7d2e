//! Silences: which of the kept silences mute an alert now, and whether a silence asked for
//! through the API or CLI may be kept at all.
//!
//! A silence mutes every alert all of whose matchers match, from its start until its end
//! ([`Silence::active_at`]); expiring it early sets its end. A silence is refused when it has
//! no matcher, or when every matcher matches the empty string (`alertname=~".*"`,
//! `team!="x"`): such a silence mutes every alert there is, including ones nobody has thought
//! of yet, which is how a real outage goes unnoticed. Alertmanager refuses these for the same
//! reason.

use ballast_core::{Labels, NewSilence, Silence};
use thiserror::Error;

use super::matcher::{compile_all, matches_all, CompiledMatcher, MatcherError};

/// The most matchers one silence may have.
pub const MAX_MATCHERS: usize = 64;
/// The longest author, in bytes.
pub const MAX_AUTHOR_LEN: usize = 256;
/// The longest comment, in bytes.
pub const MAX_COMMENT_LEN: usize = 4096;

/// Why a silence was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SilenceError {
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    #[error("a silence may have at most {max} matchers, not {count}")]
    TooManyMatchers { count: usize, max: usize },
    #[error("every matcher of this silence matches an empty label, so it would mute every alert; add a matcher that names something, e.g. service=\"shop\"")]
    MatchesEverything,
    #[error("a silence must end after it starts (starts {starts_unix_ms}, ends {ends_unix_ms})")]
    EndsBeforeStart {
        starts_unix_ms: u64,
        ends_unix_ms: u64,
    },
    #[error("this silence has already ended (ends {ends_unix_ms}, now {now_unix_ms})")]
    AlreadyEnded { ends_unix_ms: u64, now_unix_ms: u64 },
    #[error("a silence needs an author")]
    NoAuthor,
    #[error("the silence's {field} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error(transparent)]
    Matcher(#[from] MatcherError),
}

/// Checks a silence as asked for at `now`: at least one matcher (and at most
/// [`MAX_MATCHERS`]), valid, not all matching the empty string; an end after its start and
/// after `now`; a non-blank author; author and comment within [`MAX_AUTHOR_LEN`] and
/// [`MAX_COMMENT_LEN`]. Returns its compiled matchers.
pub fn validate(new: &NewSilence, now_unix_ms: u64) -> Result<Vec<CompiledMatcher>, SilenceError> {
    if new.matchers.is_empty() {
        return Err(SilenceError::NoMatchers);
    }
    if new.matchers.len() > MAX_MATCHERS {
        return Err(SilenceError::TooManyMatchers {
            count: new.matchers.len(),
            max: MAX_MATCHERS,
        });
    }
    let compiled = compile_all(&new.matchers)?;
    if compiled.iter().all(|m| m.matches_value("")) {
        return Err(SilenceError::MatchesEverything);
    }
    if new.ends_unix_ms <= new.starts_unix_ms {
        return Err(SilenceError::EndsBeforeStart {
            starts_unix_ms: new.starts_unix_ms,
            ends_unix_ms: new.ends_unix_ms,
        });
    }
    if new.ends_unix_ms <= now_unix_ms {
        return Err(SilenceError::AlreadyEnded {
            ends_unix_ms: new.ends_unix_ms,
            now_unix_ms,
        });
    }
    if new.author.trim().is_empty() {
        return Err(SilenceError::NoAuthor);
    }
    for (field, text, max) in [
        ("author", &new.author, MAX_AUTHOR_LEN),
        ("comment", &new.comment, MAX_COMMENT_LEN),
    ] {
        if text.len() > max {
            return Err(SilenceError::TooLong {
                field,
                len: text.len(),
                max,
            });
        }
    }
    Ok(compiled)
}

/// The kept silences with their matchers compiled once; rebuilt when a silence is added or
/// expired.
#[derive(Debug, Clone, Default)]
pub struct SilenceSet {
    silences: Vec<(Silence, Vec<CompiledMatcher>)>,
    invalid: Vec<(u64, SilenceError)>,
}

impl SilenceSet {
    /// Compiles every silence. One whose matchers no longer compile (kept by an older release,
    /// say) is left out and listed in [`SilenceSet::invalid`] instead of failing the others;
    /// so is one without matchers or matching everything, which would mute every alert.
    pub fn new(silences: impl IntoIterator<Item = Silence>) -> Self {
        let mut set = SilenceSet::default();
        for s in silences {
            if s.silence.matchers.is_empty() {
                set.invalid.push((s.id, SilenceError::NoMatchers));
                continue;
            }
            match compile_all(&s.silence.matchers) {
                Ok(c) if c.iter().all(|m| m.matches_value("")) => {
                    set.invalid.push((s.id, SilenceError::MatchesEverything))
                }
                Ok(c) => set.silences.push((s, c)),
                Err(e) => set.invalid.push((s.id, SilenceError::Matcher(e))),
            }
        }
        set.silences.sort_by_key(|(s, _)| s.id);
        set
    }

    /// Silences left out, by id, with why.
    pub fn invalid(&self) -> &[(u64, SilenceError)] {
        &self.invalid
    }

    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.silences.iter().map(|(s, _)| s)
    }

    /// The ids (ascending) of the silences active at `now` that mute an alert with `labels`.
    pub fn muting(&self, labels: &Labels, now_unix_ms: u64) -> Vec<u64> {
        self.silences
            .iter()
            .filter(|(s, m)| s.active_at(now_unix_ms) && matches_all(m, labels))
            .map(|(s, _)| s.id)
            .collect()
    }

    pub fn get(&self, id: u64) -> Option<&Silence> {
        self.silences
            .iter()
            .find(|(s, _)| s.id == id)
            .map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballast_core::{MatchOp, Matcher};

    fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    fn new(matchers: Vec<Matcher>, starts: u64, ends: u64) -> NewSilence {
        NewSilence {
            matchers,
            starts_unix_ms: starts,
            ends_unix_ms: ends,
            author: "alice".into(),
            comment: "db upgrade".into(),
        }
    }

    fn kept(id: u64, matchers: Vec<Matcher>, starts: u64, ends: u64) -> Silence {
        Silence {
            id,
            silence: new(matchers, starts, ends),
            created_unix_ms: starts,
        }
    }

    #[test]
    fn a_silence_mutes_while_active_and_its_expiry_unmutes() {
        let shop = matcher("service", MatchOp::Equal, "shop");
        let set = SilenceSet::new([kept(7, vec![shop], 1_000, 2_000)]);
        let l = Labels::new().with("service", "shop").with("alertname", "x");
        assert!(set.muting(&l, 999).is_empty());
        assert_eq!(set.muting(&l, 1_000), vec![7]);
        assert_eq!(set.muting(&l, 1_999), vec![7]);
        assert!(set.muting(&l, 2_000).is_empty());
        let other = Labels::new().with("service", "api");
        assert!(set.muting(&other, 1_500).is_empty());
    }

    #[test]
    fn all_matchers_must_match_and_every_muting_id_is_listed() {
        let set = SilenceSet::new([
            kept(
                2,
                vec![
                    matcher("service", MatchOp::Equal, "shop"),
                    matcher("host", MatchOp::Regex, "db.*"),
                ],
                0,
                100,
            ),
            kept(1, vec![matcher("service", MatchOp::Equal, "shop")], 0, 100),
        ]);
        let db = Labels::new().with("service", "shop").with("host", "db1");
        let web = Labels::new().with("service", "shop").with("host", "web1");
        assert_eq!(set.muting(&db, 50), vec![1, 2]);
        assert_eq!(set.muting(&web, 50), vec![1]);
    }

    #[test]
    fn a_bad_kept_silence_is_left_out_not_fatal() {
        let set = SilenceSet::new([
            kept(1, vec![matcher("h", MatchOp::Regex, "(")], 0, 100),
            kept(2, vec![], 0, 100),
            kept(4, vec![matcher("h", MatchOp::Regex, ".*")], 0, 100),
            kept(3, vec![matcher("h", MatchOp::Equal, "a")], 0, 100),
        ]);
        assert_eq!(set.silences().count(), 1);
        let ids: Vec<u64> = set.invalid().iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![1, 2, 4]);
        assert!(set.muting(&Labels::new(), 50).is_empty());
    }

    #[test]
    fn validation() {
        let shop = || vec![matcher("service", MatchOp::Equal, "shop")];
        assert!(validate(&new(shop(), 10, 20), 5).is_ok());
        assert_eq!(
            validate(&new(vec![], 10, 20), 5).unwrap_err(),
            SilenceError::NoMatchers
        );
        assert!(matches!(
            validate(&new(shop(), 20, 20), 5).unwrap_err(),
            SilenceError::EndsBeforeStart { .. }
        ));
        assert!(matches!(
            validate(&new(shop(), 10, 20), 20).unwrap_err(),
            SilenceError::AlreadyEnded { .. }
        ));
        let mut anon = new(shop(), 10, 20);
        anon.author = "  ".into();
        assert_eq!(validate(&anon, 5).unwrap_err(), SilenceError::NoAuthor);
        let bad = vec![matcher("host", MatchOp::Regex, "db(")];
        assert!(matches!(
            validate(&new(bad, 10, 20), 5).unwrap_err(),
            SilenceError::Matcher(MatcherError::BadRegex { .. })
        ));
        let mut long = new(shop(), 10, 20);
        long.comment = "x".repeat(MAX_COMMENT_LEN + 1);
        assert!(matches!(
            validate(&long, 5).unwrap_err(),
            SilenceError::TooLong {
                field: "comment",
                ..
            }
        ));
        let many = vec![matcher("a", MatchOp::Equal, "b"); MAX_MATCHERS + 1];
        assert!(matches!(
            validate(&new(many, 10, 20), 5).unwrap_err(),
            SilenceError::TooManyMatchers { .. }
        ));
    }

    #[test]
    fn a_silence_that_mutes_everything_is_refused() {
        for everything in [
            vec![matcher("alertname", MatchOp::Regex, ".*")],
            vec![matcher("team", MatchOp::NotEqual, "web")],
            vec![
                matcher("team", MatchOp::Equal, ""),
                matcher("x", MatchOp::NotRegex, "a+"),
            ],
        ] {
            assert_eq!(
                validate(&new(everything, 10, 20), 5).unwrap_err(),
                SilenceError::MatchesEverything
            );
        }
        // One matcher that needs a value is enough.
        let ok = vec![
            matcher("alertname", MatchOp::Regex, ".*"),
            matcher("service", MatchOp::Equal, "shop"),
        ];
        assert!(validate(&new(ok, 10, 20), 5).is_ok());
    }
}
