//! The `telegram` receiver kind: a bot posting to a chat through the Bot API's `sendMessage`.
//!
//! `POST {api_url}/bot{token}/sendMessage` with `{"chat_id": …, "text": …}` (plus `parse_mode`
//! when configured). The text is the shared renderer's (title, the alerts written out, the rest
//! summed up per rule), as plain text by default; with `parse_mode = "HTML"` or `"MarkdownV2"`
//! the title and each alert's heading are bold and everything else is escaped, so a label value
//! can never break the markup.
//!
//! Telegram refuses a text longer than 4096 characters (counted after the markup is parsed,
//! in UTF-16 code units, which is what is counted here). Ballast sends **one message, cut to the
//! limit, never a split series**: several posts for one storm would arrive as several
//! notifications, possibly out of order, and spend the bot's rate limit. To fit, fewer alerts
//! are written out (down to the worst one), so that more of them are named in the compact
//! summary; when even that summary is too long, every rule keeps its name and count and as
//! many alerts per rule are named as fit (`rule-a ×300 (server=a, server=b, …)`).
//!
//! The bot token sits in the URL's path, so it is a [`Secret`]: no error, log line or `Debug`
//! output shows it, and an answer quoting it is redacted. Answers: `200` with `"ok": true` is
//! delivered; `429` is retried after the answer's `parameters.retry_after` (or `Retry-After`);
//! `408` and `5xx` and no answer at all are retried; other `4xx` (`chat not found`, `bot was
//! blocked by the user`) are permanent, with Telegram's `description` quoted.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::http::{
    answer_word, json_body, retry_after, Endpoint, HttpClient, HttpError, HttpResponse,
    MAX_RETRY_AFTER,
};
use crate::message::Message;
use crate::notifier::{BoxFuture, Delivered, Notifier, SendError};
use crate::render::{self, DEFAULT_LISTED};
use crate::secret::{load_required, ConfigError, Secret};

const KIND: &str = "telegram";

/// The Bot API's address when none is configured.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Telegram's limit on a message's text, in UTF-16 code units after the markup is parsed.
pub const MAX_TEXT: usize = 4096;

/// When a message must be cut: the most the title, the written-out alert's heading and its
/// body may take, so that the storm's summary keeps room.
const MAX_TITLE: usize = 256;
const MAX_BODY: usize = 1024;

/// How Telegram reads the text (`parse_mode`). The legacy `Markdown` mode is not offered: it
/// has no escape for every character a label may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ParseMode {
    #[serde(rename = "HTML")]
    Html,
    MarkdownV2,
}

impl ParseMode {
    fn name(self) -> &'static str {
        match self {
            ParseMode::Html => "HTML",
            ParseMode::MarkdownV2 => "MarkdownV2",
        }
    }
}

/// A chat: its numeric id (`-1001234567890`) or a channel's `@username`; written as a string
/// or a number, and sent as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    Number(i64),
    Text(String),
}

/// `[[receiver]] telegram = { … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// The bot's token (`123456:ABC…`); one of `bot_token`, `bot_token_file`, `bot_token_env`.
    pub bot_token: Option<Secret>,
    pub bot_token_file: Option<PathBuf>,
    pub bot_token_env: Option<String>,
    pub chat_id: ChatId,
    /// The Bot API's address (default `https://api.telegram.org`; a local Bot API server, or a
    /// test's loopback server).
    pub api_url: Option<String>,
    /// How many alerts are written out in full at most (default 20, at most 100).
    pub max_alerts: Option<usize>,
    pub parse_mode: Option<ParseMode>,
}

/// A piece of the text: bold (the title, an alert's heading) or plain.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub bold: bool,
    pub text: String,
}

fn bold(text: impl Into<String>) -> Segment {
    Segment {
        bold: true,
        text: text.into(),
    }
}

fn plain(text: impl Into<String>) -> Segment {
    Segment {
        bold: false,
        text: text.into(),
    }
}

/// The length Telegram counts: UTF-16 code units.
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn segments_len(segments: &[Segment]) -> usize {
    segments.iter().map(|s| utf16_len(&s.text)).sum()
}

/// `s` cut to at most `max` UTF-16 code units, ending with `…` when cut.
pub fn truncate_utf16(s: &str, max: usize) -> String {
    if utf16_len(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut len = 0;
    for c in s.chars() {
        if len + c.len_utf16() + 1 > max {
            break;
        }
        out.push(c);
        len += c.len_utf16();
    }
    if max > 0 {
        out.push('…');
    }
    out
}

fn written_out(rendered: &render::Rendered) -> Vec<Segment> {
    let mut out = vec![bold(rendered.title.clone())];
    for a in &rendered.alerts {
        out.push(plain("\n\n"));
        out.push(bold(a.heading.clone()));
        out.push(plain(format!("\n{}", a.body)));
    }
    if let Some(more) = &rendered.more {
        out.push(plain(format!("\n\n{more}")));
    }
    out
}

/// The storm's summary within `room`: every rule with its count, and the first `k` alerts of
/// each rule named, for the largest `k` that fits; cut with `…` when even the rules alone do
/// not fit.
pub fn fit_summary(message: &Message, listed: usize, rest: usize, room: usize) -> String {
    let rules = render::rest_by_rule(message, listed);
    let heading = render::more_heading(message.locale, rest);
    let build = |k: usize| {
        let parts: Vec<String> = rules
            .iter()
            .map(|(rule, wheres)| {
                let n = wheres.len();
                if k == 0 {
                    return format!("{rule} ×{n}");
                }
                let mut named = wheres[..k.min(n)].join(", ");
                if n > k {
                    named.push_str(", …");
                }
                format!("{rule} ×{n} ({named})")
            })
            .collect();
        format!("{heading}: {}", parts.join("; "))
    };
    let most = rules.iter().map(|(_, w)| w.len()).max().unwrap_or(0);
    let mut best = build(0);
    if utf16_len(&best) > room {
        return truncate_utf16(&best, room);
    }
    for k in 1..=most {
        let text = build(k);
        if utf16_len(&text) > room {
            break;
        }
        best = text;
    }
    best
}

/// The text of `message` as segments, within [`MAX_TEXT`] (see the module's notes).
pub fn segments(message: &Message, max_alerts: usize) -> Vec<Segment> {
    let top = max_alerts.min(message.alerts.len());
    for n in (1..=top).rev() {
        let s = written_out(&render::render(message, n));
        if segments_len(&s) <= MAX_TEXT {
            return s;
        }
    }
    let r = render::render(message, top.min(1));
    let mut out = vec![bold(truncate_utf16(&r.title, MAX_TITLE))];
    if let Some(a) = r.alerts.first() {
        let heading = truncate_utf16(&a.heading, MAX_TITLE);
        let used = segments_len(&out) + 2 + utf16_len(&heading) + 1;
        let room = if r.rest > 0 {
            MAX_BODY
        } else {
            MAX_TEXT.saturating_sub(used)
        };
        out.push(plain("\n\n"));
        out.push(bold(heading));
        out.push(plain(format!("\n{}", truncate_utf16(&a.body, room))));
    }
    if r.rest > 0 {
        let room = MAX_TEXT.saturating_sub(segments_len(&out) + 2);
        let summary = fit_summary(message, r.listed, r.rest, room);
        out.push(plain(format!("\n\n{summary}")));
    }
    out
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape_markdown_v2(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The segments written for `parse_mode`: plain text as is; HTML with `<b>`; MarkdownV2 with
/// `*`; everything escaped.
pub fn format(segments: &[Segment], parse_mode: Option<ParseMode>) -> String {
    segments
        .iter()
        .map(|s| match (parse_mode, s.bold) {
            (None, _) => s.text.clone(),
            (Some(ParseMode::Html), true) => format!("<b>{}</b>", escape_html(&s.text)),
            (Some(ParseMode::Html), false) => escape_html(&s.text),
            (Some(ParseMode::MarkdownV2), true) => format!("*{}*", escape_markdown_v2(&s.text)),
            (Some(ParseMode::MarkdownV2), false) => escape_markdown_v2(&s.text),
        })
        .collect()
}

/// The JSON `sendMessage` receives for `message`.
pub fn payload(
    message: &Message,
    chat_id: &ChatId,
    parse_mode: Option<ParseMode>,
    max_alerts: usize,
) -> Value {
    let mut body = Map::new();
    body.insert(
        "chat_id".into(),
        match chat_id {
            ChatId::Number(n) => Value::from(*n),
            ChatId::Text(t) => Value::String(t.clone()),
        },
    );
    body.insert(
        "text".into(),
        Value::String(format(&segments(message, max_alerts), parse_mode)),
    );
    if let Some(mode) = parse_mode {
        body.insert("parse_mode".into(), Value::String(mode.name().into()));
    }
    Value::Object(body)
}

/// What the Bot API answers: `{"ok": false, "error_code": 429, "description": "…",
/// "parameters": {"retry_after": 5}}`.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    ok: Option<bool>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Debug, Default, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// How the Bot API's answer classifies (see the module's notes). `redact` hides the token in
/// whatever of the answer is quoted.
pub fn classify(
    result: Result<HttpResponse, HttpError>,
    redact: impl Fn(&str) -> String,
) -> Result<Delivered, SendError> {
    let resp = match result {
        Ok(r) => r,
        Err(e) => return Err(SendError::retry(format!("{KIND} receiver: {e}"))),
    };
    let answer: Answer = serde_json::from_slice(&resp.body).unwrap_or_default();
    let words = answer
        .description
        .as_deref()
        .map(|d| answer_word(d.as_bytes()))
        .unwrap_or_else(|| answer_word(&resp.body));
    let words = redact(&words);
    let quoted = if words.is_empty() {
        resp.status.to_string()
    } else {
        format!("{} {words}", resp.status)
    };
    let params = answer.parameters.unwrap_or_default();
    match resp.status {
        200..=299 if answer.ok != Some(false) => Ok(Delivered {
            answer: format!("{} ok", resp.status),
        }),
        408 | 429 | 500..=599 => Err(SendError::Retry {
            reason: format!("{KIND} receiver: answered {quoted}"),
            retry_after: params
                .retry_after
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
                .or_else(|| retry_after(&resp.headers)),
        }),
        _ => {
            let mut reason = format!("{KIND} receiver: refused with {quoted}");
            if let Some(id) = params.migrate_to_chat_id {
                reason.push_str(&format!(
                    " (the group is now a supergroup: set chat_id = \"{id}\")"
                ));
            }
            Err(SendError::permanent(reason))
        }
    }
}

/// Sends messages to one chat through one bot.
pub struct TelegramNotifier {
    endpoint: Endpoint,
    token: Secret,
    chat_id: ChatId,
    parse_mode: Option<ParseMode>,
    max_alerts: usize,
    client: HttpClient,
}

impl fmt::Debug for TelegramNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramNotifier")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token)
            .field("chat_id", &self.chat_id)
            .field("parse_mode", &self.parse_mode)
            .field("max_alerts", &self.max_alerts)
            .finish()
    }
}

fn invalid(reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        kind: KIND,
        reason: reason.into(),
    }
}

impl TelegramNotifier {
    pub fn new(config: TelegramConfig) -> Result<TelegramNotifier, ConfigError> {
        let token = load_required(
            KIND,
            "bot_token",
            config.bot_token.as_ref(),
            config.bot_token_file.as_deref(),
            config.bot_token_env.as_deref(),
        )?;
        // The token goes into the URL's path: only the characters a token has, so it cannot
        // change the path (and the error does not quote it).
        let t = token.expose();
        if t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
        {
            return Err(invalid(
                "bot_token must look like 123456:ABC-DEF (letters, digits, ':', '_', '-')",
            ));
        }
        match &config.chat_id {
            ChatId::Text(s) if s.trim().is_empty() => {
                return Err(invalid("chat_id is empty"));
            }
            _ => {}
        }
        let max_alerts = config.max_alerts.unwrap_or(DEFAULT_LISTED);
        if max_alerts == 0 || max_alerts > 100 {
            return Err(invalid("max_alerts must be between 1 and 100"));
        }
        let api = config.api_url.as_deref().unwrap_or(DEFAULT_API_URL).trim();
        if api.contains(['?', '#']) {
            return Err(ConfigError::BadUrl {
                kind: KIND,
                field: "api_url",
                reason: "no query or fragment is allowed".into(),
            });
        }
        let url = Secret::new(format!(
            "{}/bot{}/sendMessage",
            api.trim_end_matches('/'),
            token.expose()
        ));
        Ok(TelegramNotifier {
            endpoint: Endpoint::parse(KIND, "api_url", &url)?,
            token,
            chat_id: config.chat_id,
            parse_mode: config.parse_mode,
            max_alerts,
            client: HttpClient::new().map_err(|e| invalid(e.to_string()))?,
        })
    }

    /// `text` with the token (and its secret half after `:`) replaced by `[redacted]`. Only
    /// the token: the rest of the path (`/sendMessage`) is no secret.
    fn redact(&self, text: &str) -> String {
        let token = self.token.expose();
        let mut out = text.replace(token, "[redacted]");
        if let Some((_, key)) = token.split_once(':') {
            if key.len() >= 6 {
                out = out.replace(key, "[redacted]");
            }
        }
        out
    }

    async fn post(&self, message: &Message) -> Result<Delivered, SendError> {
        let body = payload(message, &self.chat_id, self.parse_mode, self.max_alerts);
        let body = json_body(KIND, &body)?;
        let result = self.client.post_json(&self.endpoint, body).await;
        classify(result, |t| self.redact(t))
    }
}

impl Notifier for TelegramNotifier {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn send<'a>(&'a self, message: &'a Message) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(self.post(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    #[test]
    fn escapes_each_parse_mode() {
        let s = vec![bold("a<b>&c"), plain(" x_1.2 (y) [z]!")];
        assert_eq!(format(&s, None), "a<b>&c x_1.2 (y) [z]!");
        assert_eq!(
            format(&s, Some(ParseMode::Html)),
            "<b>a&lt;b&gt;&amp;c</b> x_1.2 (y) [z]!"
        );
        assert_eq!(
            format(&s, Some(ParseMode::MarkdownV2)),
            "*a<b\\>&c* x\\_1\\.2 \\(y\\) \\[z\\]\\!"
        );
    }

    #[test]
    fn utf16_truncation() {
        assert_eq!(utf16_len("가😀"), 3);
        assert_eq!(truncate_utf16("abcdef", 4), "abc…");
        assert_eq!(truncate_utf16("ab😀cd", 4), "ab…");
        assert_eq!(truncate_utf16("abc", 3), "abc");
    }

    #[test]
    fn answers_classify() {
        let resp = |status: u16, body: &'static str| {
            Ok(HttpResponse {
                status,
                headers: HeaderMap::new(),
                body: bytes::Bytes::from_static(body.as_bytes()),
                truncated: false,
            })
        };
        let same = |t: &str| t.to_string();
        assert_eq!(
            classify(resp(200, r#"{"ok":true,"result":{}}"#), same),
            Ok(Delivered {
                answer: "200 ok".into()
            })
        );
        assert_eq!(
            classify(
                resp(
                    429,
                    r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#
                ),
                same
            ),
            Err(SendError::Retry {
                reason: "telegram receiver: answered 429 Too Many Requests: retry after 7".into(),
                retry_after: Some(Duration::from_secs(7)),
            })
        );
        assert_eq!(
            classify(
                resp(
                    400,
                    r#"{"ok":false,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001}}"#
                ),
                same
            ),
            Err(SendError::permanent(
                "telegram receiver: refused with 400 Bad Request: group chat was upgraded to a \
                 supergroup chat (the group is now a supergroup: set chat_id = \"-1001\")"
            ))
        );
        assert!(classify(resp(502, "Bad Gateway"), same)
            .unwrap_err()
            .is_retryable());
    }

    #[test]
    fn bad_tokens_are_refused_without_being_quoted() {
        for token in ["12:ab/../x-sekret", "12:ab?sekret", ""] {
            let c = TelegramConfig {
                bot_token: Some(Secret::new(token)),
                bot_token_file: None,
                bot_token_env: None,
                chat_id: ChatId::Text("1".into()),
                api_url: None,
                max_alerts: None,
                parse_mode: None,
            };
            let e = TelegramNotifier::new(c).unwrap_err().to_string();
            assert!(e.contains("bot_token"), "{e}");
            assert!(token.is_empty() || !e.contains("sekret"), "{e}");
        }
    }
}
