//! A one-page HTTP server on loopback for checking the browser harness itself, apart from the
//! dashboard: `GET /` answers a form; `POST /submit` answers a page echoing the form's body
//! and sets a cookie. If this works, a dashboard failure is the dashboard's, not the harness's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The tiny server; stopped on drop.
pub struct TinyPage {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const FORM: &str = r#"<!doctype html><html><head><title>harness</title></head><body>
<h1>harness</h1>
<form id="f" method="post" action="/submit">
<input type="hidden" name="csrf" value="abc">
<input name="who" type="text">
<button id="go" type="submit">Go</button>
</form></body></html>"#;

impl TinyPage {
    pub fn start() -> TinyPage {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tiny page server");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn);
                }
            }
        });
        TinyPage {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TinyPage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request, closing the connection after it.
fn serve(conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (extra, page) = if line.starts_with("POST /submit") {
        let got = String::from_utf8_lossy(&body).replace('<', "&lt;");
        (
            "Set-Cookie: seen=yes; HttpOnly; SameSite=Strict; Path=/\r\n",
            format!("<!doctype html><html><body><p id=\"got\">{got}</p></body></html>"),
        )
    } else {
        ("", FORM.to_string())
    };
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    )?;
    conn.flush()
}
