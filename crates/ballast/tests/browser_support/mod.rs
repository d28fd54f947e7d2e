//! A real headless Chromium for the dashboard tests, driven over WebDriver by `fantoccini`.
//!
//! Why a real browser: the dashboard is HTML forms, cookies, redirects and a small refresh
//! script, and what matters is what a person's browser does with them (follows the 303, keeps
//! the `HttpOnly` cookie, sends the hidden CSRF field, reloads by itself). A raw HTTP client
//! would only check what the server sends.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port (its own process group, so
//! the Chromium it starts dies with it on drop) and opens one WebDriver session. The tests are
//! plain `#[test]` functions like the rest of the suite, so every call here is synchronous: the
//! browser owns a current-thread runtime and blocks on each WebDriver command. Waiting is
//! polling for a condition, never a fixed sleep.
//!
//! Without Chromium and its driver the tests say so and pass, unless `BALLAST_REQUIRE_BROWSER`
//! is set (CI sets it), in which case they fail.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::common::{free_port, local, scratch};

mod page;
pub use page::TinyPage;

/// How long a page or element may take to appear by default.
pub const PAGE: Duration = Duration::from_secs(15);

/// The browser binary the capabilities name, and the driver; both from Debian's `chromium`
/// and `chromium-driver`.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One headless Chromium session behind its own `chromedriver`; both end on drop.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    /// The driver's log (`--log-path`), named in failure messages.
    pub driver_log: PathBuf,
}

/// Whether a usable Chromium and chromedriver are installed. When they are not: fails if
/// `BALLAST_REQUIRE_BROWSER` is set, else prints a skip line for `test` and answers false.
pub fn browser_available(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("BALLAST_REQUIRE_BROWSER").is_none(),
        "BALLAST_REQUIRE_BROWSER is set but {} missing; install the Debian packages chromium and chromium-driver",
        missing.join(" and ")
    );
    eprintln!(
        "SKIPPED {test}: headless Chromium is needed ({} missing); install the Debian packages chromium and chromium-driver, or set BALLAST_REQUIRE_BROWSER=1 to make their absence fail",
        missing.join(" and ")
    );
    false
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or answers `None` (after the skip
    /// line, see [`browser_available`]) when they are not installed.
    pub fn start(test: &str) -> Option<Browser> {
        if !browser_available(test) {
            return None;
        }
        let port = free_port();
        let driver_log = scratch("chromedriver").join("chromedriver.log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", driver_log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: on drop the group is killed, Chromium included.
            .process_group(0)
            .spawn()
            .expect("spawn chromedriver");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut browser = Browser {
            rt,
            client: None,
            driver,
            driver_log,
        };
        let addr = local(port);
        let start = Instant::now();
        while !driver_ready(addr) {
            assert!(
                start.elapsed() < PAGE,
                "chromedriver did not answer on {addr} within {PAGE:?}; its log: {}",
                browser.driver_log.display()
            );
            if let Ok(Some(status)) = browser.driver.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before answering; its log: {}",
                    browser.driver_log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                ],
            },
            "timeouts": { "pageLoad": 20_000, "script": 10_000 },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("a JSON object literal")
        };
        let url = format!("http://{addr}");
        let client = browser.rt.block_on(async {
            // chromedriver is plain HTTP on loopback.
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&url)
                .await
        });
        match client {
            Ok(c) => browser.client = Some(c),
            Err(e) => panic!(
                "no WebDriver session from chromedriver on {addr}: {e}; its log: {}",
                browser.driver_log.display()
            ),
        }
        Some(browser)
    }

    /// The WebDriver client, for anything the helpers here do not cover (with [`Self::block`]).
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until drop")
    }

    /// Runs one future (a WebDriver command) to completion.
    pub fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Loads `url` and waits for it (WebDriver's navigation waits for the load event).
    pub fn goto(&self, url: &str) {
        if let Err(e) = self.block(self.client().goto(url)) {
            panic!("could not load {url}: {e}");
        }
    }

    /// The URL the browser shows now.
    pub fn url(&self) -> String {
        self.block(self.client().current_url())
            .map(|u| u.to_string())
            .unwrap_or_else(|e| panic!("no current URL: {e}"))
    }

    /// The path (and query) of the URL the browser shows now.
    pub fn path(&self) -> String {
        let u = self
            .block(self.client().current_url())
            .unwrap_or_else(|e| panic!("no current URL: {e}"));
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// The HTTP status the current document came with (Navigation Timing's
    /// `responseStatus`): what WebDriver itself does not tell.
    pub fn status(&self) -> Option<u16> {
        let script = "const n = performance.getEntriesByType('navigation')[0]; \
                      return n ? n.responseStatus : null;";
        self.block(self.client().execute(script, vec![]))
            .ok()
            .and_then(|v| v.as_u64())
            .and_then(|v| u16::try_from(v).ok())
    }

    /// Reloads the page.
    pub fn reload(&self) {
        if let Err(e) = self.block(self.client().refresh()) {
            panic!("could not reload {}: {e}", self.url());
        }
    }

    /// Every element matching `selector` now (none while the page is being replaced).
    pub fn all(&self, selector: &str) -> Vec<Element> {
        self.block(self.client().find_all(Locator::Css(selector)))
            .unwrap_or_default()
    }

    /// How many elements match `selector` now.
    pub fn count(&self, selector: &str) -> usize {
        self.all(selector).len()
    }

    /// Polls until an element matches `selector` and returns the first; fails after `within`
    /// with the URL, a screenshot and the page's text. Errors while a page is loading (it
    /// refreshes itself) count as "not yet".
    pub fn wait_for_css(&self, selector: &str, within: Duration) -> Element {
        let start = Instant::now();
        loop {
            if let Some(e) = self.all(selector).into_iter().next() {
                return e;
            }
            if start.elapsed() > within {
                self.fail(&format!("no element matches `{selector}` after {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls until no element matches `selector`.
    pub fn wait_for_no_css(&self, selector: &str, within: Duration) {
        let start = Instant::now();
        while self.count(selector) > 0 {
            if start.elapsed() > within {
                self.fail(&format!("`{selector}` still matches after {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls until `cond` (run against the current page) holds, reloading the page every
    /// `reload_every` if given (for pages whose own refresh is turned off).
    pub fn wait_until(
        &self,
        what: &str,
        within: Duration,
        reload_every: Option<Duration>,
        mut cond: impl FnMut(&Browser) -> bool,
    ) {
        let start = Instant::now();
        let mut last_reload = Instant::now();
        while !cond(self) {
            if start.elapsed() > within {
                self.fail(&format!("timed out after {within:?} waiting for {what}"));
            }
            if reload_every.is_some_and(|every| last_reload.elapsed() >= every) {
                let _ = self.block(self.client().refresh());
                last_reload = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of the first element matching `selector` (waited for).
    pub fn text(&self, selector: &str) -> String {
        let e = self.wait_for_css(selector, PAGE);
        self.block(e.text())
            .unwrap_or_else(|err| panic!("text of `{selector}`: {err}"))
    }

    /// Attribute `name` of the first element matching `selector` (waited for).
    pub fn attr(&self, selector: &str, name: &str) -> Option<String> {
        let e = self.wait_for_css(selector, PAGE);
        self.block(e.attr(name))
            .unwrap_or_else(|err| panic!("attribute {name} of `{selector}`: {err}"))
    }

    /// Clicks the first element matching `selector` (waited for).
    pub fn click(&self, selector: &str) {
        let e = self.wait_for_css(selector, PAGE);
        if let Err(err) = self.block(e.click()) {
            self.fail(&format!("could not click `{selector}`: {err}"));
        }
    }

    /// Clicks `selector` (a submit button or a link) and waits until a new document has
    /// replaced this one, so that what is looked for next is not found on the old page.
    pub fn click_to_load(&self, selector: &str) {
        let mark = "window.__ballastOldPage = true; return true;";
        if let Err(e) = self.block(self.client().execute(mark, vec![])) {
            self.fail(&format!(
                "could not mark the page before clicking `{selector}`: {e}"
            ));
        }
        self.click(selector);
        let check = "return window.__ballastOldPage === true \
                     || document.readyState !== 'complete';";
        self.wait_until(
            &format!("a new page after clicking `{selector}`"),
            PAGE,
            None,
            |b| {
                b.block(b.client().execute(check, vec![]))
                    .is_ok_and(|v| v.as_bool() == Some(false))
            },
        );
    }

    /// Clears the field matching `selector` and types `text` into it.
    pub fn fill(&self, selector: &str, text: &str) {
        let e = self.wait_for_css(selector, PAGE);
        let typed = self.block(async {
            e.clear().await?;
            e.send_keys(text).await
        });
        if let Err(err) = typed {
            self.fail(&format!("could not type into `{selector}`: {err}"));
        }
    }

    /// The value of cookie `name` as the browser holds it (HttpOnly ones included), if set.
    pub fn cookie(&self, name: &str) -> Option<fantoccini::cookies::Cookie<'static>> {
        self.block(self.client().get_named_cookie(name)).ok()
    }

    /// The page's HTML now.
    pub fn source(&self) -> String {
        self.block(self.client().source()).unwrap_or_default()
    }

    /// Saves a PNG of the window to `<target>/dashboard-screenshots/<name>.png` and returns
    /// its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .block(self.client().screenshot())
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Fails the test with `why`, the URL, a screenshot (`failure.png`) and the page's text.
    pub fn fail(&self, why: &str) -> ! {
        let url = self
            .block(self.client().current_url())
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(no URL: {e})"));
        let shot = self
            .block(self.client().screenshot())
            .ok()
            .and_then(|png| {
                let dir = screenshot_dir();
                std::fs::create_dir_all(&dir).ok()?;
                let path = dir.join("failure.png");
                std::fs::write(&path, png).ok()?;
                Some(path.display().to_string())
            })
            .unwrap_or_else(|| "(none)".into());
        let text = self
            .block(async { self.client().find(Locator::Css("body")).await?.text().await })
            .unwrap_or_else(|e| format!("(no text: {e})"));
        let text: String = text.chars().take(3000).collect();
        panic!("{why}\n  at {url}\n  screenshot: {shot}\n  page text:\n{text}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session first (the driver closes Chromium), within a bound; then kill the
        // driver's process group, which takes any Chromium process left with it.
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), client.close()).await
            });
        }
        // SAFETY: kill(2) on the process group this struct started; no memory is involved.
        unsafe {
            libc::kill(-(self.driver.id() as i32), libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

/// Whether chromedriver on `addr` answers `GET /status` with `"ready": true`.
fn driver_ready(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.replace(' ', "").contains("\"ready\":true")
}

/// `<target>/dashboard-screenshots`: `$CARGO_TARGET_DIR` when it is an absolute path, else the
/// workspace's `target`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    target.join("dashboard-screenshots")
}
