//! Helpers shared by the `check*` test files: parse real TOML text and find where a rendered
//! error line points.
#![allow(dead_code)]

use ballast_config::{parse, Config, ConfigError};

pub const FILE: &str = "file.toml";

/// A valid upstream section, appended to configs whose point lies elsewhere.
pub const APP: &str = r#"
[[upstream]]
name = "app"
servers = [{ addr = "127.0.0.1:9001" }, { addr = "127.0.0.1:9002" }]
"#;

/// One listener with a catch-all route to `app` (append [`APP`]).
pub const ONE_LISTENER: &str =
    "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\n[[route]]\nupstream = \"app\"\n";

pub fn accept(src: &str) -> Config {
    parse(src, FILE).unwrap_or_else(|e| panic!("refused:\n{e}\n--- source ---\n{src}"))
}

pub fn refuse(src: &str) -> ConfigError {
    match parse(src, FILE) {
        Ok(_) => panic!("accepted, but should have been refused:\n{src}"),
        Err(e) => e,
    }
}

/// 1-based line and column where `needle` starts; it must occur exactly once in `src`.
pub fn position(src: &str, needle: &str) -> (usize, usize) {
    assert_eq!(
        src.matches(needle).count(),
        1,
        "`{needle}` must occur once in:\n{src}"
    );
    let offset = src.find(needle).unwrap();
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, column)
}

/// Asserts that the rendered error has a line for `path` located where `needle` starts, and
/// returns that line's message.
pub fn problem_at(err: &ConfigError, src: &str, path: &str, needle: &str) -> String {
    let (line, column) = position(src, needle);
    let prefix = format!("{FILE}:{line}:{column}: {path}: ");
    let rendered = err.to_string();
    match rendered.lines().find(|l| l.starts_with(&prefix)) {
        Some(l) => l[prefix.len()..].to_string(),
        None => panic!("no line starting with `{prefix}` in:\n{rendered}"),
    }
}

/// Refuses `src` and returns the message located at `needle` for `path`.
pub fn refused_at(src: &str, path: &str, needle: &str) -> String {
    problem_at(&refuse(src), src, path, needle)
}

pub fn assert_says(message: &str, expected: &str) {
    assert!(
        message.contains(expected),
        "message `{message}` should contain `{expected}`"
    );
}
