//! One SMTP relay address (`host:port`) as the config writes it, and whether it is loopback.
//!
//! It exists because plain SMTP (`tls = "none"`) is refused unless every relay is on this
//! machine: the check must read the address the same way the connection will, without a DNS
//! lookup that could say something different later.

use std::fmt;
use std::net::IpAddr;

/// A relay's host and port. `Display` gives `host:port` (`[::1]:25` for IPv6), which is safe
/// to show in errors and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
}

impl Relay {
    /// Reads `host:port`, `host` (then `default_port`), `[v6]:port` or `[v6]`.
    pub fn parse(text: &str, default_port: u16) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the relay is empty".into());
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| "an IPv6 address needs its closing `]`".to_string())?;
            match after {
                "" => (host, None),
                p => match p.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err("expected `:port` after `]`".into()),
                },
            }
        } else {
            match text.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err("write an IPv6 address in brackets: `[::1]:25`".into())
                }
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        if host.is_empty() {
            return Err("the relay has no host".into());
        }
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the host contains spaces".into());
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(format!("`{p}` is not a port (1-65535)")),
                Ok(n) => n,
            },
        };
        Ok(Relay {
            host: host.to_string(),
            port,
        })
    }

    /// True for `localhost` and loopback IP addresses (`127.0.0.0/8`, `::1`). Other names are
    /// not resolved: a name could point elsewhere tomorrow.
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        self.host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
    }
}

impl fmt::Display for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let r = Relay::parse("smtp1.example.com:587", 25).unwrap();
        assert_eq!((r.host.as_str(), r.port), ("smtp1.example.com", 587));
        assert_eq!(Relay::parse("mail", 465).unwrap().port, 465);
        let v6 = Relay::parse("[::1]:2525", 25).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 2525));
        assert_eq!(v6.to_string(), "[::1]:2525");
        assert_eq!(Relay::parse("[::1]", 25).unwrap().port, 25);
    }

    #[test]
    fn refusals() {
        for bad in [
            "", ":25", "h:0", "h:70000", "h:x", "::1:25", "[::1", "[::1]x", "a b:25",
        ] {
            assert!(Relay::parse(bad, 25).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn loopback() {
        for yes in ["127.0.0.1:25", "127.3.4.5:25", "[::1]:25", "LocalHost:25"] {
            assert!(Relay::parse(yes, 25).unwrap().is_loopback(), "{yes}");
        }
        for no in [
            "10.0.0.1:25",
            "smtp.example.com:25",
            "localhost.example.com:25",
        ] {
            assert!(!Relay::parse(no, 25).unwrap().is_loopback(), "{no}");
        }
    }
}
