//! The Prometheus text format's one rule every engine that adds lines to `/metrics` needs: a
//! label value escapes `\`, `"` and newlines. Written once so no engine gets it subtly wrong.

/// `v` as the inside of a quoted label value.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_backslash_quote_and_newline() {
        assert_eq!(super::label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(super::label_value("plain"), "plain");
    }
}
