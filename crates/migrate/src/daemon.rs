//! Reaching the daemon that runs a topology, over its HTTP endpoint
//! (`http.listen`): the topology's keys turned into a
//! [`ferry_http::client::Endpoint`], and its control token into the bearer
//! token the client sends.
//!
//! Every request carries the topology's `http.control_token`, when it has
//! one: the daemon wants it for control requests, and for `/status` unless
//! `http.status_public` is set.

use std::path::PathBuf;
use std::time::Duration;

use ferry_config::{HttpSettings, Secret};
pub use ferry_http::client::Endpoint;
use ferry_http::client::{self, ClientError};
use ferry_http::StatusDocument;

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

/// The endpoint of `http`: plain HTTP, or HTTPS trusting `http.tls_ca`
/// (else the certificates of `http.tls_cert`, which covers a self-signed
/// certificate and a chain that includes its CA). `Err` names the key whose
/// file cannot be read or holds no certificate.
pub fn endpoint(http: &HttpSettings) -> Result<Endpoint, EndpointError> {
    let addr = client::reachable(http.listen);
    let Some(tls) = &http.tls else {
        return Ok(Endpoint::plain(addr));
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
    Endpoint::https(addr, &pem).ok_or_else(|| EndpointError::NoCertificate {
        key,
        path: path.clone(),
    })
}

/// `POST path` with a JSON body, which must answer 200: the answer's body,
/// or why not ([`ClientError::Refused`] with the HTTP code and the daemon's
/// reason, or [`ClientError::NoAnswer`]).
pub fn post(
    endpoint: &Endpoint,
    path: &str,
    json_body: &str,
    token: Option<&Secret>,
    read_timeout: Duration,
) -> Result<String, ClientError> {
    client::request(
        endpoint,
        "POST",
        path,
        Some(json_body),
        token.map(Secret::expose),
        read_timeout,
    )
    .and_then(client::Reply::ok_body)
}

/// The daemon's `/status` document.
pub fn status(endpoint: &Endpoint, token: Option<&Secret>) -> Result<StatusDocument, ClientError> {
    client::status(endpoint, token.map(Secret::expose))
}
