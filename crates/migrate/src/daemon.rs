//! Talking to a running `ferry run` over its HTTP endpoint (`http.listen`):
//! `ferry status` reads `/status`, `ferry cutover` also asks it to stop
//! topics. Plain HTTP/1.1 over a blocking socket: two requests a command do
//! not justify an HTTP client crate.
//!
//! Every request carries the topology's `http.control_token`, when it has
//! one, as `Authorization: Bearer`: the daemon wants it for control
//! requests, and for `/status` unless `http.status_public` is set.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ferry_config::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A wildcard listen address is reached on loopback.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// One request; the status code and the body. `read_timeout` bounds the
/// wait for the answer. `Err` only when no HTTP answer came (nothing
/// listens, or the connection failed).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    token: Option<&Secret>,
    read_timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(read_timeout))?;
    let body = json_body.unwrap_or("");
    let content = if json_body.is_some() {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    } else {
        String::new()
    };
    let authorization = token
        .map(|t| format!("Authorization: Bearer {}\r\n", t.expose()))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}{content}\r\n{body}"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("malformed status line: {head}")))?;
    Ok((code, body.to_string()))
}

/// `POST path` with a JSON body, which must answer 200: the answer's body,
/// or why not (the HTTP code and the daemon's reason, or no answer).
pub fn post(
    addr: SocketAddr,
    path: &str,
    json_body: &str,
    token: Option<&Secret>,
    read_timeout: Duration,
) -> Result<String, String> {
    match request(addr, "POST", path, Some(json_body), token, read_timeout) {
        Ok((200, body)) => Ok(body),
        Ok((code, text)) => Err(format!("HTTP {code}: {}", text.trim())),
        Err(e) => Err(e.to_string()),
    }
}

/// `GET path`, which must answer 200.
pub fn get(addr: SocketAddr, path: &str, token: Option<&Secret>) -> std::io::Result<String> {
    let (code, body) = request(addr, "GET", path, None, token, Duration::from_secs(10))?;
    if code != 200 {
        return Err(std::io::Error::other(format!("HTTP {code}: {body}")));
    }
    Ok(body)
}

/// The daemon's `/status` document, if one answers at `addr`.
pub fn status(addr: SocketAddr, token: Option<&Secret>) -> std::io::Result<serde_json::Value> {
    let body = get(addr, "/status", token)?;
    serde_json::from_str(&body).map_err(|e| {
        std::io::Error::other(format!("/status answered something that is not JSON: {e}"))
    })
}
