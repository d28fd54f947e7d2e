//! A TCP relay on loopback that a test can cut and restore: the way to make a real PostgreSQL
//! "go away" mid-run without stopping the server other tests share.
//!
//! While cut, every relayed connection is shut down and new ones are accepted and closed at
//! once, which is what a client sees when a database host drops off the network and comes back
//! refusing (the reset arrives at once; no test waits on TCP timeouts). Plain threads, so that
//! both async and blocking tests can use it. Shared by the store's sink tests and the gateway's
//! store-outage test (`#[path]`), so that there is one relay.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct Relay {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays a new loopback port to `target`.
    pub fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the relay");
        let addr = listener.local_addr().expect("relay address");
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let relay = Relay {
            addr,
            cut: cut.clone(),
            stop: stop.clone(),
            open: open.clone(),
        };
        thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if cut.load(SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let _ = pipe(client, server, &open);
            }
        });
        relay
    }

    /// Drops every relayed connection and refuses new ones until [`Relay::restore`].
    pub fn cut(&self) {
        self.cut.store(true, SeqCst);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for s in open.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.cut.store(false, SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        self.cut();
        // Wakes the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies both ways between `a` and `b` on two threads; both sockets are remembered so that a
/// cut can shut them down.
fn pipe(a: TcpStream, b: TcpStream, open: &Mutex<Vec<TcpStream>>) -> io::Result<()> {
    {
        let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
        open.push(a.try_clone()?);
        open.push(b.try_clone()?);
    }
    let (mut a_read, mut b_write) = (a.try_clone()?, b.try_clone()?);
    let (mut b_read, mut a_write) = (b, a);
    thread::spawn(move || {
        let _ = io::copy(&mut a_read, &mut b_write);
        let _ = b_write.shutdown(Shutdown::Write);
    });
    thread::spawn(move || {
        let _ = io::copy(&mut b_read, &mut a_write);
        let _ = a_write.shutdown(Shutdown::Write);
    });
    Ok(())
}
