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

/// `GET path` from a plain-HTTP daemon at `addr`: (status code, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, None, None)
}

/// One `GET` or `POST` to a plain-HTTP daemon at `addr`, with
/// `Authorization: Bearer <token>` when a token is given and a JSON body
/// when one is given: (status code, body). Through the client `ferry`
/// itself uses; the wait covers a control request's 60 s answer.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json_body: Option<&str>,
) -> (u16, String) {
    let endpoint = ferry_http::client::Endpoint::plain(addr);
    let reply = ferry_http::client::request(
        &endpoint,
        method,
        path,
        json_body,
        token,
        Duration::from_secs(70),
    )
    .unwrap_or_else(|e| panic!("{method} {path} at {addr}: {e}"));
    (reply.status, reply.body)
}
