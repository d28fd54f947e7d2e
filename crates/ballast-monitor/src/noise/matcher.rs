//! Label matchers, compiled: the one place that decides whether an alert's labels satisfy a
//! [`Matcher`] (silences, maintenance windows and notification routes all use it).
//!
//! `ballast-core` keeps a matcher as plain data; matching needs a regex engine, so it lives
//! here. A regex is anchored to the whole value (`=~"db.*"` matches `db1`, not `mydb1`), as in
//! Alertmanager, and is compiled once when the matcher is built, with a cap on both the pattern's
//! length and the compiled program's size so that a silence typed by a person cannot make every
//! evaluation slow. A label that is absent has the value `""`, so `team=""` matches alerts
//! without a `team` label and `team!=""` matches those with one.
//!
//! [`parse_matcher`] reads the Alertmanager text form the CLI takes
//! (`ballast silence add 'service="shop"' 'route=~"/api/.*"'`), and [`format_matcher`] writes
//! it back.

use ballast_core::{Labels, MatchOp, Matcher};
use regex::{Regex, RegexBuilder};
use thiserror::Error;

/// The longest regex accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// The most memory one compiled regex may use, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Why a matcher was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MatcherError {
    #[error("a matcher has an empty label name")]
    EmptyName,
    #[error("{0:?} is not a label name (letters, digits and `_`, not starting with a digit)")]
    BadName(String),
    #[error("the regex of {name:?} is {len} bytes long; at most {max} are allowed")]
    PatternTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("the regex {pattern:?} of {name:?} is not valid: {reason}")]
    BadRegex {
        name: String,
        pattern: String,
        reason: String,
    },
    #[error("{text:?} is not a matcher ({reason}); write name=\"value\", name!=\"value\", name=~\"regex\" or name!~\"regex\"")]
    Syntax { text: String, reason: String },
}

/// A [`Matcher`] ready to match: its regex (for `=~` and `!~`) compiled once.
#[derive(Debug, Clone)]
pub struct CompiledMatcher {
    matcher: Matcher,
    regex: Option<Regex>,
}

impl CompiledMatcher {
    /// Checks the name and compiles the regex, if any.
    pub fn new(matcher: &Matcher) -> Result<Self, MatcherError> {
        check_name(&matcher.name)?;
        let regex = match matcher.op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::Regex | MatchOp::NotRegex => Some(compile(&matcher.name, &matcher.value)?),
        };
        Ok(CompiledMatcher {
            matcher: matcher.clone(),
            regex,
        })
    }

    /// A matcher in the table form routes, remedies and `[incident] open_on` write:
    /// `name = "value"` for equality, `name = "~regex"` for a regex on the whole value.
    pub fn from_table(name: &str, value: &str) -> Result<Self, MatcherError> {
        let (op, value) = match value.strip_prefix('~') {
            Some(re) => (MatchOp::Regex, re),
            None => (MatchOp::Equal, value),
        };
        CompiledMatcher::new(&Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
        })
    }

    /// The matcher as written.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Whether `value` (a label's value, `""` when absent) satisfies the matcher.
    pub fn matches_value(&self, value: &str) -> bool {
        let re = |v| self.regex.as_ref().is_some_and(|r: &Regex| r.is_match(v));
        match self.matcher.op {
            MatchOp::Equal => value == self.matcher.value,
            MatchOp::NotEqual => value != self.matcher.value,
            MatchOp::Regex => re(value),
            MatchOp::NotRegex => !re(value),
        }
    }

    /// Whether the labels satisfy the matcher (an absent label is `""`).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.matcher.name).unwrap_or(""))
    }
}

/// Compiles every matcher; the first bad one is the error.
pub fn compile_all(matchers: &[Matcher]) -> Result<Vec<CompiledMatcher>, MatcherError> {
    matchers.iter().map(CompiledMatcher::new).collect()
}

/// Whether the labels satisfy every matcher (true for none).
pub fn matches_all(matchers: &[CompiledMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

fn check_name(name: &str) -> Result<(), MatcherError> {
    let mut chars = name.chars();
    match chars.next() {
        None => Err(MatcherError::EmptyName),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {
            if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Ok(())
            } else {
                Err(MatcherError::BadName(name.to_string()))
            }
        }
        Some(_) => Err(MatcherError::BadName(name.to_string())),
    }
}

fn compile(name: &str, pattern: &str) -> Result<Regex, MatcherError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(MatcherError::PatternTooLong {
            name: name.to_string(),
            len: pattern.len(),
            max: MAX_PATTERN_LEN,
        });
    }
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| MatcherError::BadRegex {
            name: name.to_string(),
            pattern: pattern.to_string(),
            reason: e.to_string(),
        })
}

/// Reads one matcher in Alertmanager's text form: `name="value"`, `name!="value"`,
/// `name=~"regex"` or `name!~"regex"`. The value may be unquoted when it has no spaces or
/// quotes (`service=shop`); inside quotes `\"`, `\\` and `\n` are escapes. Spaces around the
/// name and the operator are allowed. The result is checked (name, regex) like
/// [`CompiledMatcher::new`].
pub fn parse_matcher(text: &str) -> Result<Matcher, MatcherError> {
    let syntax = |reason: &str| MatcherError::Syntax {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let t = text.trim();
    let op_at = t.find(['=', '!']).ok_or_else(|| syntax("no operator"))?;
    let name = t[..op_at].trim();
    let rest = &t[op_at..];
    let (op, value_text) = if let Some(v) = rest.strip_prefix("=~") {
        (MatchOp::Regex, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (MatchOp::Equal, v)
    } else {
        return Err(syntax("`!` must be followed by `=` or `~`"));
    };
    if name.is_empty() {
        return Err(syntax("no label name before the operator"));
    }
    check_name(name)?;
    let value = parse_value(value_text.trim()).map_err(|r| syntax(&r))?;
    let matcher = Matcher {
        name: name.to_string(),
        op,
        value,
    };
    CompiledMatcher::new(&matcher)?;
    Ok(matcher)
}

/// Reads a list of matchers: `{service="shop", host=~"db.*"}` (the braces are optional), split
/// at commas outside quotes. An empty list (`{}`) is refused: a caller that wants none should
/// not ask.
pub fn parse_matchers(text: &str) -> Result<Vec<Matcher>, MatcherError> {
    let t = text.trim();
    let inner = match t.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(|| MatcherError::Syntax {
            text: text.to_string(),
            reason: "the closing `}` is missing".into(),
        })?,
        None => t,
    };
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    // A trailing comma is allowed, as in Alertmanager.
    if parts.len() > 1 && parts.last().is_some_and(|p| p.trim().is_empty()) {
        parts.pop();
    }
    if parts.iter().all(|p| p.trim().is_empty()) {
        return Err(MatcherError::Syntax {
            text: text.to_string(),
            reason: "no matchers".into(),
        });
    }
    parts.into_iter().map(parse_matcher).collect()
}

fn parse_value(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        if v.contains('"') {
            return Err("a quote inside an unquoted value".into());
        }
        if v.chars().any(char::is_whitespace) {
            return Err("an unquoted value with spaces; put it in double quotes".into());
        }
        return Ok(v.to_string());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    loop {
        match chars.next() {
            None => return Err("the closing quote is missing".into()),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some(c) => return Err(format!("unknown escape \\{c}")),
                None => return Err("the closing quote is missing".into()),
            },
            Some(c) => out.push(c),
        }
    }
    if !chars.as_str().trim().is_empty() {
        return Err("text after the closing quote".into());
    }
    Ok(out)
}

/// The text form [`parse_matcher`] reads: `name="value"` with `"`, `\` and newlines escaped
/// (`Matcher`'s `Display`).
pub fn format_matcher(m: &Matcher) -> String {
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, op: MatchOp, value: &str) -> CompiledMatcher {
        CompiledMatcher::new(&Matcher {
            name: name.into(),
            op,
            value: value.into(),
        })
        .unwrap()
    }

    #[test]
    fn the_four_operators() {
        let l = Labels::new().with("service", "shop").with("host", "db1");
        assert!(m("service", MatchOp::Equal, "shop").matches(&l));
        assert!(!m("service", MatchOp::Equal, "sho").matches(&l));
        assert!(m("service", MatchOp::NotEqual, "api").matches(&l));
        assert!(!m("service", MatchOp::NotEqual, "shop").matches(&l));
        assert!(m("host", MatchOp::Regex, "db[0-9]+").matches(&l));
        assert!(!m("host", MatchOp::NotRegex, "db[0-9]+").matches(&l));
        assert!(m("host", MatchOp::NotRegex, "web.*").matches(&l));
    }

    #[test]
    fn regex_is_anchored_to_the_whole_value() {
        let l = Labels::new().with("host", "mydb1x");
        assert!(!m("host", MatchOp::Regex, "db1").matches(&l));
        assert!(m("host", MatchOp::Regex, ".*db1.*").matches(&l));
        // An alternation stays inside the anchors.
        assert!(!m("host", MatchOp::Regex, "my|x").matches(&l));
    }

    #[test]
    fn absent_label_is_empty() {
        let l = Labels::new().with("service", "shop");
        assert!(m("team", MatchOp::Equal, "").matches(&l));
        assert!(!m("team", MatchOp::NotEqual, "").matches(&l));
        assert!(m("team", MatchOp::Regex, ".*").matches(&l));
        assert!(m("team", MatchOp::NotEqual, "web").matches(&l));
    }

    #[test]
    fn bad_regex_names_the_matcher() {
        let err = CompiledMatcher::new(&Matcher {
            name: "host".into(),
            op: MatchOp::Regex,
            value: "db(".into(),
        })
        .unwrap_err();
        assert!(
            matches!(&err, MatcherError::BadRegex { name, pattern, .. } if name == "host" && pattern == "db(")
        );
        assert!(err.to_string().contains("\"db(\""), "{err}");
    }

    #[test]
    fn pattern_size_is_capped() {
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        let err = CompiledMatcher::new(&Matcher {
            name: "x".into(),
            op: MatchOp::Regex,
            value: long,
        })
        .unwrap_err();
        assert!(matches!(err, MatcherError::PatternTooLong { .. }));
        // Short but explosive once compiled.
        let err = CompiledMatcher::new(&Matcher {
            name: "x".into(),
            op: MatchOp::Regex,
            value: "(\\w{100}){100}".into(),
        })
        .unwrap_err();
        assert!(matches!(err, MatcherError::BadRegex { .. }), "{err:?}");
    }

    #[test]
    fn names_are_checked() {
        let bad = |n: &str| {
            CompiledMatcher::new(&Matcher {
                name: n.into(),
                op: MatchOp::Equal,
                value: "v".into(),
            })
            .unwrap_err()
        };
        assert_eq!(bad(""), MatcherError::EmptyName);
        assert!(matches!(bad("1x"), MatcherError::BadName(_)));
        assert!(matches!(bad("a-b"), MatcherError::BadName(_)));
    }

    #[test]
    fn parses_the_text_form() {
        let p = |t: &str| parse_matcher(t).unwrap();
        assert_eq!(
            p(r#"service="shop""#),
            Matcher {
                name: "service".into(),
                op: MatchOp::Equal,
                value: "shop".into()
            }
        );
        assert_eq!(p(r#"host=~"db.*""#).op, MatchOp::Regex);
        assert_eq!(p(r#"host!~"db.*""#).op, MatchOp::NotRegex);
        assert_eq!(p(r#"host!="db1""#).op, MatchOp::NotEqual);
        assert_eq!(p(" service = shop ").value, "shop");
        assert_eq!(p(r#"msg="a \"b\" \\ c""#).value, r#"a "b" \ c"#);
        assert_eq!(p(r#"team="""#).value, "");
        assert_eq!(p("team=").value, "");
        // The value may contain operator characters.
        assert_eq!(p(r#"q="a=b!=c""#).value, "a=b!=c");
    }

    #[test]
    fn text_form_errors_are_clear() {
        let e = |t: &str| parse_matcher(t).unwrap_err().to_string();
        assert!(e("service").contains("no operator"), "{}", e("service"));
        assert!(e(r#"="x""#).contains("no label name"));
        assert!(e(r#"a!"x""#).contains("`!` must be followed"));
        assert!(e(r#"a="x"#).contains("closing quote"));
        assert!(e(r#"a="x" y"#).contains("after the closing quote"));
        assert!(e("a=two words").contains("double quotes"));
        assert!(e(r#"a="\q""#).contains("unknown escape"));
        assert!(e(r#"host=~"(""#).contains("not valid"));
        assert!(e(r#"1a="x""#).contains("not a label name"));
    }

    #[test]
    fn parses_a_list() {
        let l = parse_matchers(r#"{service="shop", host=~"db,1|db2", msg="a\",b",}"#).unwrap();
        let names: Vec<&str> = l.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["service", "host", "msg"]);
        assert_eq!(l[1].value, "db,1|db2");
        assert_eq!(l[2].value, "a\",b");
        assert_eq!(parse_matchers("service=shop").unwrap().len(), 1);
        let e = |t: &str| parse_matchers(t).unwrap_err().to_string();
        assert!(e("{}").contains("no matchers"));
        assert!(e("  ").contains("no matchers"));
        assert!(e(r#"{a="b""#).contains("closing `}`"));
        assert!(e(r#"a="b",,c="d""#).contains("no operator"));
    }

    #[test]
    fn format_round_trips() {
        for t in [
            r#"service="shop""#,
            r#"host=~"db.*""#,
            r#"a!="x \"y\" \\ z""#,
            r#"b!~"""#,
        ] {
            let m = parse_matcher(t).unwrap();
            assert_eq!(format_matcher(&m), t);
            assert_eq!(parse_matcher(&format_matcher(&m)).unwrap(), m);
        }
    }
}
