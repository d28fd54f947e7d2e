//! The queue page: the visitor's place in line and the expected wait, refreshed by the browser
//! every `refresh` (`Refresh` header and a meta refresh in the built-in page). An operator's own
//! template gets the same values through placeholders. A client asking for JSON gets the
//! numbers alone.

/// The page served when the room has no `page` of its own.
pub const BUILTIN: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>You are in line</title>\n<meta http-equiv=\"refresh\" content=\"{{refresh}}\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\n<body style=\"font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem\">\n<h1>You are in line</h1>\n<p>The site is busy, so visitors are let in one after another. Keep this page open: it\nrefreshes itself and lets you in when it is your turn.</p>\n<p>Your place in line: <strong id=\"position\">{{position}}</strong></p>\n<p>Estimated wait: <strong id=\"wait\">{{wait}}</strong></p>\n</body></html>\n";

/// `template` with `{{position}}`, `{{wait}}` (words), `{{wait_seconds}}` and `{{refresh}}`
/// (seconds) filled in.
pub fn html(template: &str, position: u64, wait_ms: u64, refresh_s: u64) -> String {
    template
        .replace("{{position}}", &position.to_string())
        .replace("{{wait_seconds}}", &wait_ms.div_ceil(1000).to_string())
        .replace("{{wait}}", &words(wait_ms))
        .replace("{{refresh}}", &refresh_s.to_string())
}

/// `{"position":N,"estimated_wait_s":S,"refresh_s":R}`.
pub fn json(position: u64, wait_ms: u64, refresh_s: u64) -> String {
    format!(
        "{{\"position\":{position},\"estimated_wait_s\":{},\"refresh_s\":{refresh_s}}}\n",
        wait_ms.div_ceil(1000)
    )
}

/// Whether the client prefers JSON (it names `application/json` and not `text/html`).
pub fn wants_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// A wait in words, rounded up: "less than a minute", "about 1 minute", "about 7 minutes",
/// "about 2 hours".
pub fn words(ms: u64) -> String {
    let minutes = ms.div_ceil(60_000);
    match minutes {
        0 | 1 if ms < 60_000 => "less than a minute".to_string(),
        1 => "about 1 minute".to_string(),
        2..=90 => format!("about {minutes} minutes"),
        _ => format!("about {} hours", minutes.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        let page = html(BUILTIN, 3, 125_000, 5);
        assert!(
            page.contains("<strong id=\"position\">3</strong>"),
            "{page}"
        );
        assert!(page.contains("about 3 minutes"), "{page}");
        assert!(page.contains("content=\"5\""), "{page}");
        assert!(!page.contains("{{"), "{page}");
        assert_eq!(
            html("{{position}}|{{wait_seconds}}|{{refresh}}", 12, 1_001, 2),
            "12|2|2"
        );
    }

    #[test]
    fn json_and_words() {
        assert_eq!(
            json(2, 4_500, 5),
            "{\"position\":2,\"estimated_wait_s\":5,\"refresh_s\":5}\n"
        );
        assert!(wants_json(Some("application/json")));
        assert!(!wants_json(Some("text/html,application/json;q=0.9")));
        assert!(!wants_json(None));
        assert_eq!(words(0), "less than a minute");
        assert_eq!(words(59_999), "less than a minute");
        assert_eq!(words(60_000), "about 1 minute");
        assert_eq!(words(61_000), "about 2 minutes");
        assert_eq!(words(3 * 3_600_000), "about 3 hours");
    }
}
