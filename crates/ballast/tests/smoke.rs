//! The gateway proxies through real sockets to real backend processes.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_to_a_backend() {
    let b = Backend::start("alpha");
    let port = free_port();
    let gw = Gateway::start(
        "smoke",
        &one_upstream_config(port, Extra::default(), &[(b.addr, 1)]),
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let r = get(addr, "/hello", &[]).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.backend(), Some("alpha"));
    assert!(r.headers.contains_key("x-request-id"));
    wait_until("access log line", std::time::Duration::from_secs(5), || {
        !gw.access_lines().is_empty()
    });
    let line = &gw.access_lines()[0];
    assert_eq!(line["status"], 200);
    assert_eq!(line["server"], b.addr.to_string());
    assert_eq!(line["path"], "/hello");
}
