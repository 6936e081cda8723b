//! Talking to a running daemon's endpoint: `ferry status` reads `/status`,
//! `ferry cutover` and `ferry resume-topics` post control requests, and the
//! tests read what they check, all through this one client.
//!
//! Blocking (ureq) on purpose: the commands have no runtime of their own at
//! that point, and a test must be able to ask while every tokio runtime it
//! owns is busy. HTTPS uses rustls with the same *ring* provider as the
//! server.
//!
//! A token, when given, is sent as `Authorization: Bearer`; the daemon wants
//! it for control requests, and for `/status` unless `http.status_public` is
//! set. It never appears in an error: ureq's errors name the URL and the
//! cause, never a header's value.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::StatusDocument;

/// How long connecting may take, on top of a request's read timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `/status` may take to answer.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No HTTP answer came: nothing listens, the TLS handshake failed, the
    /// connection broke, or the method is not one this client makes.
    #[error(transparent)]
    NoAnswer(#[from] ureq::Error),
    /// An answer other than `200`, with the daemon's reason.
    #[error("HTTP {code}: {}", reason.trim())]
    Refused {
        /// The HTTP status code.
        code: u16,
        /// The answer's body.
        reason: String,
    },
    /// `200`, but the body is not a document of the expected shape.
    #[error("{path} answered something that is not {what}: {source}")]
    Unreadable {
        /// The path asked.
        path: String,
        /// What was expected.
        what: &'static str,
        /// Where parsing failed.
        source: serde_json::Error,
    },
}

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

/// Where a daemon answers, and how to reach it: plain HTTP, or HTTPS
/// trusting given certificates. The certificate must name the address
/// reached (127.0.0.1 when the daemon listens on a wildcard address).
#[derive(Clone)]
pub struct Endpoint {
    /// The address connected to.
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
    /// A plain-HTTP endpoint at `addr`.
    pub fn plain(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            trusted: None,
        }
    }

    /// An HTTPS endpoint at `addr` trusting the certificates in `pem`;
    /// `None` when `pem` holds no certificate.
    pub fn https(addr: SocketAddr, pem: &[u8]) -> Option<Endpoint> {
        let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        (!certificates.is_empty()).then(|| Endpoint {
            addr,
            trusted: Some(Arc::new(certificates)),
        })
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

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body of a `200` answer; any other is [`ClientError::Refused`].
    pub fn ok_body(self) -> Result<String, ClientError> {
        match self.status {
            200 => Ok(self.body),
            code => Err(ClientError::Refused {
                code,
                reason: self.body,
            }),
        }
    }
}

/// One `GET` or `POST` (with `json_body`), whatever status it answers.
/// `read_timeout` bounds the wait for the answer.
pub fn request(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    token: Option<&str>,
    read_timeout: Duration,
) -> Result<Reply, ClientError> {
    let agent = endpoint.agent(read_timeout);
    let url = endpoint.url(path);
    let bearer = token.map(|t| format!("Bearer {t}"));
    let answer = match method {
        "GET" => {
            let mut req = agent.get(&url);
            if let Some(b) = &bearer {
                req = req.header("Authorization", b);
            }
            req.call()
        }
        "POST" => {
            let mut req = agent.post(&url);
            if let Some(b) = &bearer {
                req = req.header("Authorization", b);
            }
            req.content_type("application/json")
                .send(json_body.unwrap_or(""))
        }
        _ => Err(ureq::Error::BadUri(format!(
            "{method} {path}: this client only makes GET and POST requests"
        ))),
    };
    let mut response = answer?;
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(Reply {
        status: response.status().as_u16(),
        headers,
        body: response.body_mut().read_to_string()?,
    })
}

/// The daemon's `/status` document.
pub fn status(endpoint: &Endpoint, token: Option<&str>) -> Result<StatusDocument, ClientError> {
    let body = request(endpoint, "GET", "/status", None, token, STATUS_TIMEOUT)?.ok_body()?;
    serde_json::from_str(&body).map_err(|source| ClientError::Unreadable {
        path: "/status".into(),
        what: "a status document",
        source,
    })
}
