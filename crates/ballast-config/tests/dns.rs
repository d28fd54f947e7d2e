//! Upstream servers written as DNS names, and the `[runtime]` settings that resolve them:
//! real TOML in, the validated model or the rendered `file:line:col: path: message` out.

use std::time::Duration;

use ballast_config::validate::servers::{DNS_INTERVAL, DNS_PORT};
use ballast_config::{parse, Config, ConfigError, ServerAddr};

const FILE: &str = "file.toml";

const HEAD: &str = r#"
[[listener]]
name = "web"
listen = "127.0.0.1:8080"

[[route]]
upstream = "app"
"#;

fn accept(src: &str) -> Config {
    parse(src, FILE).unwrap_or_else(|e| panic!("refused:\n{e}\n--- source ---\n{src}"))
}

fn refuse(src: &str) -> ConfigError {
    match parse(src, FILE) {
        Ok(_) => panic!("accepted, but should have been refused:\n{src}"),
        Err(e) => e,
    }
}

/// The message of the rendered line for `path`, which must sit where `needle` (the key) starts.
fn refused_at(src: &str, path: &str, needle: &str) -> String {
    assert_eq!(src.matches(needle).count(), 1, "`{needle}` must occur once");
    let offset = src.find(needle).unwrap();
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    let prefix = format!("{FILE}:{line}:{column}: {path}: ");
    let rendered = refuse(src).to_string();
    match rendered.lines().find(|l| l.starts_with(&prefix)) {
        Some(l) => l[prefix.len()..].to_string(),
        None => panic!("no line starting with `{prefix}` in:\n{rendered}"),
    }
}

fn with_servers(servers: &str) -> String {
    format!("{HEAD}\n[[upstream]]\nname = \"app\"\nservers = [{servers}]\n")
}

#[test]
fn names_and_ips_are_told_apart() {
    let cfg = accept(&with_servers(
        r#"{ addr = "App.Internal.:8080" }, { addr = "10.0.0.1:80" }, { addr = "localhost:81" }, { addr = "[::1]:82" }"#,
    ));
    let addrs: Vec<ServerAddr> = cfg.upstreams[0]
        .servers
        .iter()
        .map(|s| s.addr.clone())
        .collect();
    assert_eq!(
        addrs,
        vec![
            ServerAddr::Name {
                host: "app.internal".into(),
                port: 8080
            },
            ServerAddr::Ip("10.0.0.1:80".parse().unwrap()),
            ServerAddr::Ip("127.0.0.1:81".parse().unwrap()),
            ServerAddr::Ip("[::1]:82".parse().unwrap()),
        ]
    );
    assert_eq!(addrs[0].to_string(), "app.internal:8080");
}

#[test]
fn a_name_without_a_port_says_how_to_write_one() {
    let src = with_servers(r#"{ addr = "10.0.0.1:80" }, { addr = "app.internal" }"#);
    let msg = refused_at(
        &src,
        "upstream[0].servers[1].addr",
        "addr = \"app.internal\"",
    );
    assert!(msg.contains("has no port"), "{msg}");
    assert!(msg.contains("\"app.internal:8080\""), "{msg}");
}

#[test]
fn a_bad_port_or_host_is_refused_where_it_is_written() {
    let src = with_servers(r#"{ addr = "app.internal:http" }"#);
    let msg = refused_at(&src, "upstream[0].servers[0].addr", "addr");
    assert!(msg.contains("`http` is not a port"), "{msg}");

    let src = with_servers(r#"{ addr = "app.internal:0" }"#);
    let msg = refused_at(&src, "upstream[0].servers[0].addr", "addr");
    assert!(msg.contains("from 1 to 65535"), "{msg}");

    for bad in [
        "10.0.0:80",
        "app..internal:80",
        "app internal:80",
        "-app:80",
        "::1:80",
    ] {
        let src = with_servers(&format!(r#"{{ addr = "{bad}" }}"#));
        let msg = refused_at(&src, "upstream[0].servers[0].addr", "addr");
        assert!(msg.contains("DNS name and port"), "{bad}: {msg}");
    }
}

#[test]
fn a_name_listed_twice_is_refused() {
    let src = with_servers(r#"{ addr = "app.internal:80" }, { addr = "APP.internal:80" }"#);
    let msg = refused_at(&src, "upstream[0].servers[1].addr", "addr = \"APP");
    assert_eq!(msg, "app.internal:80 is listed twice in this upstream");
}

#[test]
fn runtime_resolver_and_interval() {
    let cfg = accept(&with_servers(r#"{ addr = "app.internal:80" }"#));
    assert_eq!(cfg.runtime.resolver, None);
    assert_eq!(cfg.runtime.dns_interval, DNS_INTERVAL);
    assert_eq!(DNS_INTERVAL, Duration::from_secs(30));

    let src = format!(
        "[runtime]\nresolver = \"127.0.0.1:5353\"\ndns_interval = \"5s\"\n{}",
        with_servers(r#"{ addr = "app.internal:80" }"#)
    );
    let cfg = accept(&src);
    assert_eq!(
        cfg.runtime.resolver,
        Some("127.0.0.1:5353".parse().unwrap())
    );
    assert_eq!(cfg.runtime.dns_interval, Duration::from_secs(5));

    let src = format!(
        "[runtime]\nresolver = \"::1\"\n{}",
        with_servers(r#"{ addr = "app.internal:80" }"#)
    );
    let cfg = accept(&src);
    assert_eq!(
        cfg.runtime.resolver,
        Some(std::net::SocketAddr::new("::1".parse().unwrap(), DNS_PORT))
    );
}

#[test]
fn runtime_refusals_are_located() {
    let src = format!(
        "[runtime]\nresolver = \"dns.internal:53\"\ndns_interval = \"500ms\"\n{}",
        with_servers(r#"{ addr = "app.internal:80" }"#)
    );
    let msg = refused_at(&src, "runtime.resolver", "resolver =");
    assert!(msg.contains("not a nameserver address"), "{msg}");
    assert!(msg.contains("\"127.0.0.1:5353\""), "{msg}");
    let msg = refused_at(&src, "runtime.dns_interval", "dns_interval =");
    assert!(msg.contains("at least 1s"), "{msg}");

    let src = format!(
        "[runtime]\ndns_interval = 30\n{}",
        with_servers(r#"{ addr = "a:80" }"#)
    );
    let msg = refused_at(&src, "runtime.dns_interval", "30");
    assert!(msg.contains("\"30s\""), "{msg}");
}
