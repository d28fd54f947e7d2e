//! The waiting room's cookie: a [`Pass`] in plain text with an HMAC-SHA256 tag, so a visitor can
//! read its ticket but cannot change it, make one up, or move one to another route (the route's
//! name is part of the signed text). Verification is constant-time (`ring::hmac::verify`).
//! Anything that does not verify — garbage, a changed digit, another key — is simply no pass:
//! the visitor is treated as new, never shown an error.
//!
//! ```text
//!   t.<epoch>.<ticket>.<tag>              s.<epoch>.<id>.<expires ms>.<tag>     (hex numbers)
//! ```

use ring::hmac;

use super::room::Pass;

/// Longer values are refused unread (a real one is under 140 bytes).
const MAX_LEN: usize = 200;
/// An HMAC-SHA256 tag in hex.
const TAG_HEX_LEN: usize = 64;

/// The cookie text for `pass` on `route`.
pub fn encode(key: &hmac::Key, route: &str, pass: Pass) -> String {
    let payload = match pass {
        Pass::Ticket { epoch, number } => format!("t.{epoch:x}.{number:x}"),
        Pass::Session {
            epoch,
            id,
            expires_ms,
        } => format!("s.{epoch:x}.{id:x}.{expires_ms:x}"),
    };
    let tag = hmac::sign(key, &signed_text(route, &payload));
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(payload.len() + 1 + TAG_HEX_LEN);
    out.push_str(&payload);
    out.push('.');
    // By table: `format!("{b:02x}")` per byte cost more than the HMAC itself.
    for b in tag.as_ref() {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// The pass in `value`, if it was made by `encode` with the same key and route.
pub fn decode(key: &hmac::Key, route: &str, value: &str) -> Option<Pass> {
    if value.len() > MAX_LEN {
        return None;
    }
    let (payload, tag_hex) = value.rsplit_once('.')?;
    if tag_hex.len() != TAG_HEX_LEN {
        return None;
    }
    let tag = unhex(tag_hex)?;
    hmac::verify(key, &signed_text(route, payload), &tag).ok()?;
    // Signed by us, so well formed; parsed defensively all the same.
    let mut parts = payload.split('.');
    let kind = parts.next()?;
    let mut num = || u64::from_str_radix(parts.next()?, 16).ok();
    let pass = match kind {
        "t" => Pass::Ticket {
            epoch: num()?,
            number: num()?,
        },
        "s" => Pass::Session {
            epoch: num()?,
            id: num()?,
            expires_ms: num()?,
        },
        _ => return None,
    };
    parts.next().is_none().then_some(pass)
}

fn signed_text(route: &str, payload: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(route.len() + 1 + payload.len());
    v.extend_from_slice(route.as_bytes());
    v.push(0);
    v.extend_from_slice(payload.as_bytes());
    v
}

/// Bytes of a hex string.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, k)
    }

    const TICKET: Pass = Pass::Ticket {
        epoch: 0xfeed,
        number: 42,
    };
    const SESSION: Pass = Pass::Session {
        epoch: 1,
        id: 7,
        expires_ms: 1_700_000_000_000,
    };

    #[test]
    fn round_trips() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        for p in [TICKET, SESSION] {
            let text = encode(&k, "shop", p);
            assert!(text.len() < MAX_LEN, "{text}");
            assert_eq!(decode(&k, "shop", &text), Some(p));
        }
    }

    #[test]
    fn any_change_wrong_key_or_route_is_no_pass() {
        let k = key(b"0123456789abcdef0123456789abcdef");
        let text = encode(&k, "shop", TICKET);
        // Each single character changed, anywhere, is refused.
        for i in 0..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] = if b[i] == b'1' { b'2' } else { b'1' };
            let changed = String::from_utf8(b).unwrap();
            assert_eq!(decode(&k, "shop", &changed), None, "{changed}");
        }
        // A better ticket with the old tag.
        let tag = text.rsplit_once('.').unwrap().1;
        assert_eq!(decode(&k, "shop", &format!("t.feed.1.{tag}")), None);
        assert_eq!(
            decode(&key(b"another key, just as long......."), "shop", &text),
            None
        );
        assert_eq!(decode(&k, "admin", &text), None);
    }

    #[test]
    fn garbage_is_no_pass() {
        let k = key(b"k");
        for g in [
            "",
            ".",
            "t",
            "t.1.1",
            "t.1.1.",
            "t.1.1.zz",
            "t.1.1.abc",
            "s.1.1.1.00",
            "é.é",
            &"a".repeat(10_000),
        ] {
            assert_eq!(decode(&k, "r", g), None, "{g}");
        }
    }
}
