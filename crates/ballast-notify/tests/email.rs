//! The email receiver against real SMTP server processes (Python's aiosmtpd): delivery, relay
//! failover (a refused port, a relay that accepts TCP and never answers, a `4xx`), every relay
//! down, every relay refusing for good, authentication, and the password never showing.
//!
//! It exists because SMTP failover is only believable against a real server: the relay pool is
//! how a site keeps mail flowing when one relay is blocked, and a mistake there is silence
//! during an outage. Needs `python3-aiosmtpd` (`.ci/run` installs it). Without it the tests say
//! so and pass, unless `BALLAST_REQUIRE_SMTP` is set, in which case they fail.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod smtp_python;
use smtp_python::python;

use ballast_core::{AlertState, Labels, Severity};
use ballast_notify::email::{EmailConfig, EmailNotifier, TlsMode};
use ballast_notify::{Locale, Message, MessageAlert, MessageStatus, Notifier, SendError};

/// A relay whose answers the test chooses: `store` keeps messages as files, `defer` answers
/// `451` to every recipient, `reject` answers `550`, `auth` demands the password in
/// `SMTP_PASSWORD` (AUTH over plain loopback), `echo_auth` refuses AUTH with an answer that
/// repeats the credentials, as a careless relay might.
const RELAY_SCRIPT: &str = r#"
import os, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
password = os.environ.get("SMTP_PASSWORD", "")

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if mode == "defer":
            return "451 4.3.0 mailbox busy, try again later"
        if mode == "reject":
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(store, "%d.eml" % len(os.listdir(store)))
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 stored"

def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    if mode == "echo_auth":
        text = "535 5.7.8 bad credentials %s:%s" % (
            auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=False, handled=False, message=text)
    return AuthResult(success=auth_data.password.decode() == password, handled=False)

kwargs = {}
if mode in ("auth", "echo_auth"):
    kwargs = dict(authenticator=authenticator, auth_require_tls=False, auth_required=True)
Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs).start()
threading.Event().wait()
"#;

const PASSWORD: &str = "pw-Sekr1t-7c1b2e";

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ballast-email-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One SMTP server process, killed on drop, with the directory it stores messages in.
struct Smtp {
    child: Child,
    port: u16,
    messages: PathBuf,
    _dir: TempDir,
}

impl Smtp {
    /// aiosmtpd's own `Mailbox` handler: stores every message in a Maildir.
    fn mailbox(python: &Path) -> Self {
        let dir = TempDir::new("maildir");
        let maildir = dir.0.join("mail");
        let port = free_port();
        let mut cmd = Command::new(python);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir);
        Self::start(cmd, port, maildir.join("new"), dir)
    }

    /// [`RELAY_SCRIPT`] in one of its modes.
    fn scripted(python: &Path, mode: &str) -> Self {
        let dir = TempDir::new(mode);
        let script = dir.0.join("relay.py");
        std::fs::write(&script, RELAY_SCRIPT).expect("write the relay script");
        let store = dir.0.join("store");
        std::fs::create_dir_all(&store).expect("create the store");
        let port = free_port();
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg(mode)
            .arg(port.to_string())
            .arg(&store)
            .env("SMTP_PASSWORD", PASSWORD);
        Self::start(cmd, port, store, dir)
    }

    fn start(mut cmd: Command, port: u16, messages: PathBuf, dir: TempDir) -> Self {
        let log = std::fs::File::create(dir.0.join("server.log")).expect("create the log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log"))
            .stderr(log)
            .spawn()
            .expect("start the SMTP server");
        let mut smtp = Smtp {
            child,
            port,
            messages,
            _dir: dir,
        };
        smtp.wait_ready();
        smtp
    }

    /// Waits (bounded) until the server greets a connection with `220`.
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

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.join("server.log")).unwrap_or_default()
    }

    fn relay(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The stored messages, oldest first, with `\r\n` turned into `\n`.
    fn stored(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.messages)
            .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| !p.to_string_lossy().ends_with(".tmp"));
        files.sort();
        files
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .expect("read a stored message")
                    .replace("\r\n", "\n")
            })
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

/// A port with nothing listening: the connection is refused.
fn refused_relay() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A relay that accepts TCP (the kernel completes the handshake into the backlog) and never
/// says a word. Keep the listener alive as long as the relay is used.
fn silent_relay() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the silent relay");
    let addr = format!(
        "127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    );
    (listener, addr)
}

fn config(relays: &[&str], timeout: &str) -> EmailConfig {
    EmailConfig {
        to: vec!["Web Ops <web-ops@example.com>".into()],
        from: "Ballast <ballast@example.com>".into(),
        relays: relays.iter().map(|r| r.to_string()).collect(),
        tls: TlsMode::None,
        username: None,
        password: None,
        password_file: None,
        password_env: None,
        timeout: timeout.parse().expect("a duration"),
    }
}

fn with_password(mut config: EmailConfig) -> EmailConfig {
    config.username = Some("ballast".into());
    config.password = Some(PASSWORD.into());
    config
}

fn message() -> Message {
    Message {
        group_key: "app-5xx/shop".into(),
        group_labels: Labels::new()
            .with("alertname", "app-5xx")
            .with("service", "shop"),
        status: MessageStatus::Firing,
        severity: Some(Severity::Critical),
        alerts: vec![MessageAlert {
            id: "3f2a9c0d1e7b4a66".into(),
            rule: "app-5xx".into(),
            labels: Labels::new()
                .with("alertname", "app-5xx")
                .with("service", "shop")
                .with("route", "/cart"),
            annotations: BTreeMap::from([(
                "runbook".to_string(),
                "https://wiki/runbooks/app-5xx".to_string(),
            )]),
            state: AlertState::Firing {
                severity: Severity::Critical,
            },
            value: Some(0.07),
            threshold: Some(0.05),
            since_unix_ms: 1_796_052_612_000,
        }],
        dashboard_url: None,
        locale: Locale::En,
        at_unix_ms: 1_796_052_622_000,
        route: 1,
        escalated_after_ms: None,
        template: None,
    }
}

/// The value of one header, unfolded.
fn header(mail: &str, name: &str) -> Option<String> {
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

fn body(mail: &str) -> &str {
    mail.split_once("\n\n").map(|(_, b)| b).unwrap_or("")
}

fn assert_alert_mail(mail: &str) {
    assert_eq!(
        header(mail, "To").as_deref(),
        Some("\"Web Ops\" <web-ops@example.com>")
    );
    assert_eq!(
        header(mail, "From").as_deref(),
        Some("Ballast <ballast@example.com>")
    );
    assert_eq!(
        header(mail, "Subject").as_deref(),
        Some("[FIRING:1] critical app-5xx shop")
    );
    let body = body(mail);
    for want in [
        "critical app-5xx (route=/cart service=shop)",
        "value 0.07 (threshold 0.05), since 2026-11-30 15:30:12 UTC",
        "runbook: https://wiki/runbooks/app-5xx",
    ] {
        assert!(body.contains(want), "the body lacks `{want}`:\n{mail}");
    }
}

fn assert_retry_naming(err: &SendError, relays: &[&str]) {
    assert!(err.is_retryable(), "{err:?}");
    let text = err.to_string();
    for relay in relays {
        assert!(text.contains(relay), "`{text}` does not name {relay}");
    }
}

#[tokio::test]
async fn delivers_through_one_relay() {
    let Some(python) = python() else { return };
    let smtp = Smtp::mailbox(&python);
    let notifier = EmailNotifier::new(config(&[&smtp.relay()], "10s")).expect("valid config");
    let delivered = notifier.send(&message()).await.expect("delivered");
    assert!(delivered.answer.contains(&smtp.relay()), "{delivered:?}");
    assert!(delivered.answer.contains("250"), "{delivered:?}");
    let stored = smtp.stored();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_alert_mail(&stored[0]);
}

#[tokio::test]
async fn a_refusing_relay_hands_the_message_to_the_next() {
    let Some(python) = python() else { return };
    let smtp = Smtp::mailbox(&python);
    let refused = refused_relay();
    let notifier =
        EmailNotifier::new(config(&[&refused, &smtp.relay()], "10s")).expect("valid config");
    let delivered = notifier.send(&message()).await.expect("delivered");
    assert!(delivered.answer.contains(&smtp.relay()), "{delivered:?}");
    let stored = smtp.stored();
    assert_eq!(stored.len(), 1);
    assert_alert_mail(&stored[0]);
}

#[tokio::test]
async fn a_silent_relay_times_out_and_the_next_delivers() {
    let Some(python) = python() else { return };
    let smtp = Smtp::mailbox(&python);
    let (_listener, silent) = silent_relay();
    let notifier =
        EmailNotifier::new(config(&[&silent, &smtp.relay()], "1s")).expect("valid config");
    let delivered = notifier.send(&message()).await.expect("delivered");
    assert!(delivered.answer.contains(&smtp.relay()), "{delivered:?}");
    assert_eq!(smtp.stored().len(), 1);
}

#[tokio::test]
async fn a_transient_4xx_hands_the_message_to_the_next() {
    let Some(python) = python() else { return };
    let deferring = Smtp::scripted(&python, "defer");
    let smtp = Smtp::mailbox(&python);
    let notifier = EmailNotifier::new(config(&[&deferring.relay(), &smtp.relay()], "10s"))
        .expect("valid config");
    let delivered = notifier.send(&message()).await.expect("delivered");
    assert!(delivered.answer.contains(&smtp.relay()), "{delivered:?}");
    assert!(deferring.stored().is_empty());
    assert_eq!(smtp.stored().len(), 1);

    // Deferred everywhere: worth retrying, and the answer is in the reason.
    let only = EmailNotifier::new(config(&[&deferring.relay()], "10s")).expect("valid config");
    let err = only.send(&message()).await.expect_err("deferred");
    assert_retry_naming(&err, &[&deferring.relay()]);
    assert!(err.to_string().contains("451"), "{err}");
}

#[tokio::test]
async fn all_relays_down_is_retry_naming_each() {
    let (_listener, silent) = silent_relay();
    let (a, b) = (refused_relay(), refused_relay());
    let notifier = EmailNotifier::new(config(&[&a, &silent, &b], "1s")).expect("valid config");
    let err = notifier
        .send(&message())
        .await
        .expect_err("nothing listens");
    assert_retry_naming(&err, &[&a, &silent, &b]);
    assert!(err.to_string().contains("refused the connection"), "{err}");
}

#[tokio::test]
async fn permanent_only_when_every_relay_refuses_for_good() {
    let Some(python) = python() else { return };
    let (r1, r2) = (
        Smtp::scripted(&python, "reject"),
        Smtp::scripted(&python, "reject"),
    );
    let both = EmailNotifier::new(config(&[&r1.relay(), &r2.relay()], "10s")).expect("valid");
    let err = both.send(&message()).await.expect_err("rejected");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("550"), "{err}");

    // One relay refuses for good, the other is down: the next try may reach a relay that
    // takes it, so this is still worth retrying.
    let refused = refused_relay();
    let mixed = EmailNotifier::new(config(&[&r1.relay(), &refused], "10s")).expect("valid");
    let err = mixed.send(&message()).await.expect_err("rejected or down");
    assert_retry_naming(&err, &[&r1.relay(), &refused]);
}

#[tokio::test]
async fn authenticates_with_the_password() {
    let Some(python) = python() else { return };
    let relay = Smtp::scripted(&python, "auth");
    let notifier =
        EmailNotifier::new(with_password(config(&[&relay.relay()], "10s"))).expect("valid");
    let delivered = notifier.send(&message()).await.expect("delivered");
    assert!(!delivered.answer.contains(PASSWORD));
    let stored = relay.stored();
    assert_eq!(stored.len(), 1);
    assert_alert_mail(&stored[0]);

    // A wrong password is refused for good (535) by the only relay.
    let mut wrong = with_password(config(&[&relay.relay()], "10s"));
    wrong.password = Some("not-the-password".into());
    let err = EmailNotifier::new(wrong)
        .expect("valid")
        .send(&message())
        .await
        .expect_err("refused");
    assert!(!err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("535"), "{err}");
}

#[tokio::test]
async fn the_password_never_shows() {
    let mut shown: Vec<String> = Vec::new();

    let config_down = with_password(config(&[&refused_relay()], "1s"));
    shown.push(format!("{config_down:?}"));
    let notifier = EmailNotifier::new(config_down.clone()).expect("valid");
    shown.push(format!("{notifier:?}"));
    let err = notifier.send(&message()).await.expect_err("down");
    shown.push(err.to_string());
    shown.push(format!("{err:?}"));

    // A refused config names the problem, not the password.
    let mut plain_remote = config_down;
    plain_remote.relays = vec!["smtp.example.com:25".into()];
    let refused = EmailNotifier::new(plain_remote).expect_err("plain to a remote relay");
    shown.push(refused.to_string());
    shown.push(format!("{refused:?}"));

    if let Some(python) = python() {
        // A relay that repeats the credentials in its answer: the password is scrubbed out.
        let echo = Smtp::scripted(&python, "echo_auth");
        let notifier =
            EmailNotifier::new(with_password(config(&[&echo.relay()], "10s"))).expect("valid");
        let err = notifier.send(&message()).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("535") && text.contains("<redacted>"),
            "the echoing relay was not reached: {text}"
        );
        shown.push(text);
        shown.push(format!("{err:?}"));
    }

    for text in &shown {
        assert!(!text.contains(PASSWORD), "the password shows in: {text}");
    }
}

#[tokio::test]
async fn messages_of_a_group_thread_together() {
    let Some(python) = python() else { return };
    let smtp = Smtp::mailbox(&python);
    let notifier = EmailNotifier::new(config(&[&smtp.relay()], "10s")).expect("valid config");
    let firing = message();
    let mut resolved = message();
    resolved.status = MessageStatus::Resolved;
    resolved.severity = None;
    resolved.alerts[0].state = AlertState::Resolved;
    notifier.send(&firing).await.expect("firing delivered");
    notifier.send(&resolved).await.expect("resolved delivered");
    let stored = smtp.stored();
    assert_eq!(stored.len(), 2);
    let ids: Vec<Option<String>> = stored.iter().map(|m| header(m, "Message-ID")).collect();
    assert!(ids.iter().all(|id| id
        .as_deref()
        .is_some_and(|id| id.ends_with("@example.com>"))));
    assert_ne!(ids[0], ids[1], "each message has its own id");
    let refs: Vec<Option<String>> = stored.iter().map(|m| header(m, "References")).collect();
    assert!(refs[0].is_some());
    assert_eq!(refs[0], refs[1], "both refer to the group's thread");
    let subjects: Vec<Option<String>> = stored.iter().map(|m| header(m, "Subject")).collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.as_deref() == Some("[RESOLVED] app-5xx shop")),
        "{subjects:?}"
    );
}

#[tokio::test]
async fn required_tls_is_never_downgraded_to_plain() {
    let Some(python) = python() else { return };
    // aiosmtpd here offers no STARTTLS and speaks no TLS: with TLS required, nothing may be
    // sent to it in clear; the failure is worth retrying (another relay, or a fixed one).
    let smtp = Smtp::mailbox(&python);
    for tls in [TlsMode::Starttls, TlsMode::Implicit] {
        let mut c = config(&[&smtp.relay()], "5s");
        c.tls = tls;
        let notifier = EmailNotifier::new(c).expect("valid config");
        let err = notifier.send(&message()).await.expect_err("no TLS there");
        assert_retry_naming(&err, &[&smtp.relay()]);
    }
    assert!(smtp.stored().is_empty(), "a message went out in clear");
}
