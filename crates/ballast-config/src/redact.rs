//! Hiding the secrets written inline in a config text before anyone is shown it.
//!
//! The config history keeps every text exactly as it was offered, because a rollback must
//! write back what ran. Showing it (`GET /api/v1/config/versions/{id}`, the diff, `ballast
//! config show|diff`) must not hand out a Slack webhook's token, an SMTP password or the admin
//! token. So what is shown goes through [`redact_secrets`]: in `[[receiver]]` channels every
//! `url`, `signing_secret`, `password`, `bot_token` (Telegram) and `routing_key` (PagerDuty);
//! a `[[remedy]]` webhook's `url`; `[admin] token` and each `[admin] tokens` secret; and the password of `[store] url` become `[redacted]`. Secrets read from
//! `*_file` and `*_env` are never in the text at all, which is why the docs recommend them.
//!
//! A text that does not parse (a refused config is recorded too) is redacted line by line:
//! every `url`, `password`, `signing_secret`, `token`, `bot_token` and `routing_key`
//! assignment, over-redacting rather than guessing.

use toml_edit::{DocumentMut, Item, Value};

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Keys of a receiver's channel tables that hold secrets.
const CHANNEL_SECRETS: [&str; 5] = [
    "url",
    "signing_secret",
    "password",
    "bot_token",
    "routing_key",
];

/// `text` with its inline secrets replaced by [`REDACTED`].
pub fn redact_secrets(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return redact_lines(text);
    };
    if let Some(receivers) = doc
        .get_mut("receiver")
        .and_then(Item::as_array_of_tables_mut)
    {
        for receiver in receivers.iter_mut() {
            for (_, channel) in receiver.iter_mut() {
                redact_keys(channel, &CHANNEL_SECRETS);
            }
        }
    }
    // A remediation's webhook URL may carry a token, like a receiver's.
    if let Some(remedies) = doc.get_mut("remedy").and_then(Item::as_array_of_tables_mut) {
        for remedy in remedies.iter_mut() {
            if let Some(actions) = remedy.get_mut("do").and_then(Item::as_array_mut) {
                for action in actions.iter_mut() {
                    if let Some(hook) = action
                        .as_inline_table_mut()
                        .and_then(|t| t.get_mut("webhook"))
                        .and_then(Value::as_inline_table_mut)
                    {
                        if let Some(url) = hook.get_mut("url") {
                            if url.is_str() {
                                replace(url, REDACTED);
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(admin) = doc.get_mut("admin") {
        redact_keys(admin, &["token"]);
        if let Some(tokens) = admin
            .as_table_like_mut()
            .and_then(|t| t.get_mut("tokens"))
            .and_then(Item::as_array_mut)
        {
            for t in tokens.iter_mut() {
                if let Some(secret) = t.as_inline_table_mut().and_then(|t| t.get_mut("token")) {
                    if secret.is_str() {
                        replace(secret, REDACTED);
                    }
                }
            }
        }
    }
    if let Some(url) = doc
        .get_mut("store")
        .and_then(|s| s.get_mut("url"))
        .and_then(Item::as_value_mut)
    {
        if let Some(text) = url.as_str() {
            if let Some(hidden) = without_password(text) {
                replace(url, &hidden);
            }
        }
    }
    doc.to_string()
}

/// Replaces the string values of `keys` in a table or inline table.
fn redact_keys(item: &mut Item, keys: &[&str]) {
    if let Some(t) = item.as_table_like_mut() {
        for key in keys {
            if let Some(v) = t.get_mut(key).and_then(Item::as_value_mut) {
                if v.is_str() {
                    replace(v, REDACTED);
                }
            }
        }
    }
}

/// Keeps the value's place and surrounding whitespace and comments.
fn replace(v: &mut Value, text: &str) {
    let decor = v.decor().clone();
    *v = Value::from(text);
    *v.decor_mut() = decor;
}

/// `postgres://user:[redacted]@host/db` for a URL with a password; `None` without one.
fn without_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let at = rest.find('@')?;
    let (userinfo, host) = rest.split_at(at);
    let (user, _) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:{REDACTED}{host}"))
}

fn redact_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&redact_line(line));
    }
    out
}

/// Every `KEY = "…"` of a secret-bearing key on the line, inline tables included.
fn redact_line(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    'scan: while !rest.is_empty() {
        for key in [
            "url",
            "password",
            "signing_secret",
            "token",
            "bot_token",
            "routing_key",
        ] {
            if let Some(pos) = find_key(rest, key) {
                let after = &rest[pos + key.len()..];
                let trimmed = after.trim_start();
                if let Some(value) = trimmed.strip_prefix('=') {
                    let value = value.trim_start();
                    if let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') {
                        if let Some(end) = value[1..].find(quote) {
                            let value_start = rest.len() - value.len();
                            out.push_str(&rest[..value_start]);
                            out.push_str(&format!("{quote}{REDACTED}{quote}"));
                            rest = &value[end + 2..];
                            continue 'scan;
                        }
                    }
                }
            }
        }
        out.push_str(rest);
        break;
    }
    out
}

/// The position of `key` as a whole key (not part of `url_file` or `my_url`).
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let at = from + i;
        let before_ok = at == 0
            || !text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let after = &text[at + key.len()..];
        let after_ok = !after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if before_ok && after_ok && after.trim_start().starts_with('=') {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secrets_are_hidden_and_the_rest_kept() {
        let text = r#"
[admin]
listen = "127.0.0.1:9900"
token = "admin-tok"   # who may call

[store]
url = "postgres://ballast:pg-pass@db:5432/ops"

[[receiver]]
name = "web"
slack = { url = "https://hooks.slack.com/services/T/B/slack-tok" }
email = { to = ["a@b.c"], from = "b@b.c", relays = ["smtp:587"], username = "u", password = "mail-pass" }

[[remedy]]
name = "tell"
when = { alert = "x" }
do = [{ webhook = { url = "https://hooks.example/remedy-tok" } }]

[[receiver]]
name = "hook"
[receiver.webhook]
url = "https://h.example/in/hook-tok"
signing_secret = "sign-key"
url_file = "/etc/ballast/other.url"

[[receiver]]
name = "pager"
telegram = { bot_token = "123:tg-tok", chat_id = "-100", bot_token_file = "tg.f" }
pagerduty = { routing_key = "pd-key", source = "gw" }
"#;
        let shown = redact_secrets(text);
        for secret in [
            "admin-tok",
            "pg-pass",
            "slack-tok",
            "mail-pass",
            "hook-tok",
            "sign-key",
            "tg-tok",
            "pd-key",
        ] {
            assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        }
        for kept in [
            "# who may call",
            "postgres://ballast:[redacted]@db:5432/ops",
            "relays = [\"smtp:587\"]",
            "username = \"u\"",
            "url_file = \"/etc/ballast/other.url\"",
            "listen = \"127.0.0.1:9900\"",
            "chat_id = \"-100\"",
            "bot_token_file = \"tg.f\"",
            "source = \"gw\"",
        ] {
            assert!(shown.contains(kept), "{kept} lost:\n{shown}");
        }
        // Without secrets, nothing changes.
        let plain = "[[route]]\nupstream = \"app\"\n";
        assert_eq!(redact_secrets(plain), plain);
    }

    #[test]
    fn a_text_that_does_not_parse_is_redacted_line_by_line() {
        let text = "[[receiver]\nslack = { url = \"https://x/T/B/tok\", url_file = \"f\" }\npassword='pw'\nmy_url_count = 3\n";
        let shown = redact_secrets(text);
        assert!(!shown.contains("tok") && !shown.contains("'pw'"), "{shown}");
        assert!(shown.contains("url_file = \"f\""), "{shown}");
        assert!(shown.contains("my_url_count = 3"), "{shown}");
        let shown = redact_secrets(
            "[[receiver]\ntelegram = { bot_token = \"1:tg\" }\nrouting_key = 'rk'\n",
        );
        assert!(
            !shown.contains("1:tg") && !shown.contains("'rk'"),
            "{shown}"
        );
    }
}
