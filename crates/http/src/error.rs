//! [`HttpError`], on its own so that the modules that fail with it (the
//! server, the metrics encoder) do not import each other for it.

use std::io;
use std::net::SocketAddr;

/// What can go wrong running the HTTP server. Each names the address, since
/// that is what the operator set (`http.listen`) and can fix.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound (in use, not local, privileged).
    #[error("cannot listen on {addr} (http.listen): {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The server thread or its runtime could not be started.
    #[error("cannot start the HTTP server on {addr}: {source}")]
    Start {
        /// The bound address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("HTTP server on {addr} failed: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The metric families could not be encoded (a bug: families are built
    /// from the [`METRICS`](crate::METRICS) table).
    #[error("cannot encode metrics: {0}")]
    Encode(#[from] prometheus::Error),
}
