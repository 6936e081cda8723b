//! Talking to a running `ferry run` over its HTTP endpoint (`http.listen`):
//! `ferry status` reads `/status`, `ferry cutover` also asks it to stop
//! topics, over HTTP or, with `http.tls_cert`, HTTPS (ureq: blocking, and
//! rustls with the same *ring* provider as the server).
//!
//! Every request carries the topology's `http.control_token`, when it has
//! one, as `Authorization: Bearer`: the daemon wants it for control
//! requests, and for `/status` unless `http.status_public` is set.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_config::{HttpSettings, Secret};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

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

/// Why a topology's HTTPS settings give no endpoint to reach. Each names
/// the key (`http.tls_ca` or `http.tls_cert`) and its file.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{key}: cannot read \"{}\": {source}", path.display())]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: \"{}\" holds no PEM certificate", path.display())]
    NoCertificate { key: &'static str, path: PathBuf },
}

/// Where a topology's daemon answers, and how to reach it: plain HTTP, or
/// HTTPS trusting `http.tls_ca` (else the certificates of `http.tls_cert`,
/// which covers a self-signed certificate and a chain that includes its CA).
/// The certificate must name the address reached (127.0.0.1 when the daemon
/// listens on a wildcard address).
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The certificates trusted for HTTPS; `None`: plain HTTP.
    trusted: Option<Arc<Vec<Certificate<'static>>>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.trusted {
            Some(_) => write!(f, "https://{}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl Endpoint {
    /// The endpoint of `http`. `Err` names the key whose file cannot be
    /// read or holds no certificate.
    pub fn of(http: &HttpSettings) -> Result<Endpoint, EndpointError> {
        let addr = reachable(http.listen);
        let Some(tls) = &http.tls else {
            return Ok(Endpoint {
                addr,
                trusted: None,
            });
        };
        let (key, path) = match &tls.ca {
            Some(ca) => ("http.tls_ca", ca),
            None => ("http.tls_cert", &tls.cert),
        };
        let pem = std::fs::read(path).map_err(|source| EndpointError::Unreadable {
            key,
            path: path.clone(),
            source,
        })?;
        let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        if certificates.is_empty() {
            return Err(EndpointError::NoCertificate {
                key,
                path: path.clone(),
            });
        }
        Ok(Endpoint {
            addr,
            trusted: Some(Arc::new(certificates)),
        })
    }

    /// A plain-HTTP endpoint at `addr`.
    pub fn plain(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            trusted: None,
        }
    }

    fn url(&self, path: &str) -> String {
        match self.trusted {
            Some(_) => format!("https://{}{path}", self.addr),
            None => format!("http://{}{path}", self.addr),
        }
    }

    fn agent(&self, read_timeout: Duration) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(CONNECT_TIMEOUT + read_timeout))
            // Every status is an answer the caller reads (401, 409, ...).
            .http_status_as_error(false);
        if let Some(trusted) = &self.trusted {
            config = config.tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::Rustls)
                    .root_certs(RootCerts::Specific(Arc::clone(trusted)))
                    .build(),
            );
        }
        config.build().into()
    }
}

/// One request; the status code and the body. `read_timeout` bounds the
/// wait for the answer. `Err` only when no HTTP answer came (nothing
/// listens, the TLS handshake failed, the connection broke).
pub fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    token: Option<&Secret>,
    read_timeout: Duration,
) -> std::io::Result<(u16, String)> {
    let agent = endpoint.agent(read_timeout);
    let url = endpoint.url(path);
    let bearer = token.map(|t| format!("Bearer {}", t.expose()));
    let answer = match (method, json_body) {
        ("GET", None) => {
            let mut req = agent.get(&url);
            if let Some(b) = &bearer {
                req = req.header("Authorization", b);
            }
            req.call()
        }
        ("POST", body) => {
            let mut req = agent.post(&url);
            if let Some(b) = &bearer {
                req = req.header("Authorization", b);
            }
            req.content_type("application/json")
                .send(body.unwrap_or(""))
        }
        _ => {
            return Err(std::io::Error::other(format!(
                "unsupported request {method} {path}"
            )))
        }
    };
    // ureq's errors name the URL and the cause, never a header's value.
    let mut response = answer.map_err(std::io::Error::other)?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(std::io::Error::other)?;
    Ok((code, body))
}

/// `POST path` with a JSON body, which must answer 200: the answer's body,
/// or why not (the HTTP code and the daemon's reason, or no answer).
pub fn post(
    endpoint: &Endpoint,
    path: &str,
    json_body: &str,
    token: Option<&Secret>,
    read_timeout: Duration,
) -> Result<String, String> {
    match request(endpoint, "POST", path, Some(json_body), token, read_timeout) {
        Ok((200, body)) => Ok(body),
        Ok((code, text)) => Err(format!("HTTP {code}: {}", text.trim())),
        Err(e) => Err(e.to_string()),
    }
}

/// `GET path`, which must answer 200.
pub fn get(endpoint: &Endpoint, path: &str, token: Option<&Secret>) -> std::io::Result<String> {
    let (code, body) = request(endpoint, "GET", path, None, token, Duration::from_secs(10))?;
    if code != 200 {
        return Err(std::io::Error::other(format!("HTTP {code}: {body}")));
    }
    Ok(body)
}

/// The daemon's `/status` document, if one answers at `addr`.
pub fn status(endpoint: &Endpoint, token: Option<&Secret>) -> std::io::Result<serde_json::Value> {
    let body = get(endpoint, "/status", token)?;
    serde_json::from_str(&body).map_err(|e| {
        std::io::Error::other(format!("/status answered something that is not JSON: {e}"))
    })
}
