//! Talking to a running `ferry run` over its HTTP endpoint (`http.listen`):
//! `ferry status` reads `/status`, `ferry cutover` also asks it to stop
//! topics. Plain HTTP/1.1 over a blocking socket: two requests a command do
//! not justify an HTTP client crate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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
/// wait for the answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&str>,
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
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{content}\r\n{body}"
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

/// `GET path`, which must answer 200.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let (code, body) = request(addr, "GET", path, None, Duration::from_secs(10))?;
    if code != 200 {
        return Err(std::io::Error::other(format!("HTTP {code}: {body}")));
    }
    Ok(body)
}

/// The daemon's `/status` document, if one answers at `addr`.
pub fn status(addr: SocketAddr) -> std::io::Result<serde_json::Value> {
    let body = get(addr, "/status")?;
    serde_json::from_str(&body).map_err(|e| {
        std::io::Error::other(format!("/status answered something that is not JSON: {e}"))
    })
}
