//! Support for the notification tests through the binary (storm, relay failover, escalation,
//! resolution): alerts injected through `POST /api/v1/alertmanager`, a gateway config with a
//! SQLite store and no built-in rules, and real SMTP servers (Python's aiosmtpd) whose stored
//! messages the tests read.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::alerts_support::*;
use super::common::*;

/// A gateway with a SQLite store, no built-in rules, one catch-all route to a backend that is
/// nowhere, and `extra` ([[receiver]], [[notify]]...) appended.
pub fn notify_gateway(name: &str, extra: &str) -> Gateway {
    let port = free_port();
    let config = format!(
        r#"{preamble}
[store]
url = "sqlite://store.db"

[alerting]
default_rules = false
dashboard_url = "http://ballast.test:9900"

[[route]]
upstream = "app"

[[upstream]]
name = "app"
servers = [{{ addr = "{backend}" }}]

{extra}
"#,
        preamble = preamble(port),
        backend = nowhere(),
    );
    start(name, &config)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// RFC 3339 (UTC, whole seconds) of `unix_ms`.
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, s) = (secs / 86_400, secs % 86_400);
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// One alert of an Alertmanager webhook: `status` (`firing`, `resolved`) and its labels.
/// Firing alerts start at `starts_ms`; resolved ones carry no end (Ballast takes "now").
pub fn am_alert(status: &str, labels: &[(&str, &str)], starts_ms: u64) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    json!({
        "status": status,
        "labels": labels,
        "annotations": { "summary": "injected by the test" },
        "startsAt": rfc3339(starts_ms),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
    })
}

/// Posts `alerts` as one Alertmanager webhook v4 payload; asserts it was taken.
pub fn am_post(gw: &Gateway, alerts: Vec<Value>) {
    let firing = alerts.iter().any(|a| a["status"] == "firing");
    let body = json!({
        "version": "4",
        "status": if firing { "firing" } else { "resolved" },
        "receiver": "ballast",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test",
        "alerts": alerts,
    })
    .to_string();
    let (code, text) = post_json(gw, "/api/v1/alertmanager", &body);
    assert_eq!(code, 200, "{text}");
}

/// The id of the listed alert of `rule` with `server`, once listed.
pub fn alert_id(gw: &Gateway, rule: &str, server: &str) -> String {
    let mut id = String::new();
    wait_until(
        &format!("alert {rule} on {server} listed"),
        Duration::from_secs(10),
        || match alert_of(gw, rule, &[("server", server)]) {
            Some(a) => {
                id = a["id"].as_str().unwrap().to_string();
                true
            }
            None => false,
        },
    );
    id
}

/// The log's lines of `target` (`receiver/kind`).
pub fn log_of(gw: &Gateway, target: &str) -> Vec<Value> {
    super::notify_support::notification_log(gw, "")
        .into_iter()
        .filter(|l| l["receiver"] == target)
        .collect()
}

#[path = "../../../ballast-notify/tests/smtp_python/mod.rs"]
mod smtp_python;
#[allow(unused_imports)] // not every test binary that includes this module runs SMTP
pub use smtp_python::python;

/// A relay that stores what it takes as files, or refuses every recipient with `554`
/// (`reject` mode), logging each RCPT it saw.
const RELAY_SCRIPT: &str = r#"
import os, sys, threading
from aiosmtpd.controller import Controller

mode, port, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with open(os.path.join(store, "rcpt.log"), "a") as f:
            f.write(address + "\n")
        if mode == "reject":
            return "554 5.7.1 relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(store, "%04d.eml" % len([n for n in os.listdir(store) if n.endswith(".eml")]))
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 stored"

Controller(Handler(), hostname="127.0.0.1", port=port).start()
threading.Event().wait()
"#;

/// One SMTP server process (killed on drop) and the directory of what it stored.
pub struct Smtp {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Smtp {
    /// A relay in `mode`: `store` keeps every message, `reject` answers `554` to RCPT.
    pub fn start(python: &Path, mode: &str) -> Smtp {
        let dir = scratch(&format!("smtp-{mode}"));
        let script = dir.join("relay.py");
        std::fs::write(&script, RELAY_SCRIPT).unwrap();
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let port = free_port();
        let child = Command::new(python)
            .arg(&script)
            .arg(mode)
            .arg(port.to_string())
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the SMTP server");
        let mut smtp = Smtp { child, port, dir };
        smtp.wait_ready();
        smtp
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the SMTP server exited ({status}): {}", self.log());
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut greeting = [0u8; 3];
                if stream.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP server on port {} never greeted: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`.
    pub fn relay(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The recipients this relay was asked for (RCPT), accepted or not.
    pub fn rcpts(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("store").join("rcpt.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The stored messages, oldest first, `\r\n` turned into `\n`.
    pub fn stored(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("store"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap().replace("\r\n", "\n"))
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of header `name` of `mail`, unfolded.
pub fn mail_header(mail: &str, name: &str) -> Option<String> {
    let head = mail.split("\n\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line);
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case(name) {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// The body of `mail`, decoded when it is quoted-printable.
pub fn mail_body(mail: &str) -> String {
    let body = mail.split_once("\n\n").map(|(_, b)| b).unwrap_or("");
    let encoding = mail_header(mail, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "7bit" | "8bit" => body.to_string(),
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let bytes = joined.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() + 1 {
                    if let Ok(b) = u8::from_str_radix(
                        std::str::from_utf8(&bytes[i + 1..(i + 3).min(bytes.len())]).unwrap_or(""),
                        16,
                    ) {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        other => panic!("unexpected Content-Transfer-Encoding {other}: {mail}"),
    }
}
