//! HTTP for the suites that read a running daemon's `/metrics` and
//! `/status`; everything else they share is in `ferry_testkit`.

use std::time::Duration;

use ferry_testkit::daemon::Daemon;

/// GET from a running daemon.
pub trait DaemonHttp {
    /// GET `path` from the daemon: (status code, body).
    fn get(&self, path: &str) -> (u16, String);
}

impl DaemonHttp for Daemon {
    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http_addr(), path)
    }
}

/// A minimal HTTP/1.1 GET over loopback, enough for /metrics and /status.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, None, None)
}

/// One HTTP/1.1 request over loopback, with `Authorization: Bearer <token>`
/// when a token is given and a JSON body when one is given.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(70)))
        .unwrap();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = json_body.unwrap_or("");
    let content = json_body
        .map(|b| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            )
        })
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}{content}\r\n{body}"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
