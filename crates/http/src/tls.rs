//! HTTPS on the HTTP listener (`[http] tls_cert`, `tls_key`).
//!
//! The certificate and key live in a [`TlsIdentity`] that every handshake
//! asks for the current pair, so a renewed certificate is installed by
//! [`TlsIdentity::install`] (on SIGHUP) without rebinding the port or
//! dropping connections. Handshakes run as their own tasks, bounded by a
//! timeout, so one slow or silent client never holds up the others; only
//! finished TLS streams reach the HTTP server.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::lock::{read, write};

/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the HTTP server to pick them up.
const ACCEPT_QUEUE: usize = 64;

/// Why a certificate or key could not be used. Each names the topology key
/// and the file; none quotes a key's contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{key}: cannot read \"{}\": {source}", path.display())]
    Read {
        /// `http.tls_cert` or `http.tls_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file holds no usable PEM certificate or key.
    #[error("{key}: \"{}\": {reason}", path.display())]
    Parse {
        /// `http.tls_cert` or `http.tls_key`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, without the contents.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("http.tls_key: the key in \"{}\" does not match the certificate in \"{}\"", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// The listener's certificate and key, replaceable while serving.
pub struct TlsIdentity {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// A certificate chain with its key, read and checked, ready to install.
pub struct LoadedIdentity(Arc<CertifiedKey>);

impl fmt::Debug for LoadedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedIdentity").finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// Reads both files; the error names the key and file at fault.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<TlsIdentity>, TlsError> {
        let loaded = Self::read(cert, key)?;
        Ok(Arc::new(TlsIdentity {
            current: RwLock::new(loaded.0),
        }))
    }

    /// Reads and checks a certificate and key without installing them, so a
    /// reload can refuse bad files before it changes anything.
    pub fn read(cert: &Path, key: &Path) -> Result<LoadedIdentity, TlsError> {
        let read_error = |key, path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Read { key, path, source }
        };
        let cert_pem = std::fs::read(cert).map_err(read_error("http.tls_cert", cert))?;
        let key_pem = std::fs::read(key).map_err(read_error("http.tls_key", key))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Parse {
                key: "http.tls_cert",
                path: cert.to_path_buf(),
                reason: format!("not a PEM certificate chain ({e})"),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Parse {
                key: "http.tls_cert",
                path: cert.to_path_buf(),
                reason: "no PEM certificate in it".into(),
            });
        }
        // The parser's own message could quote the key; say only what kind
        // of problem it is.
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Parse {
            key: "http.tls_key",
            path: key.to_path_buf(),
            reason: "no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".into(),
        })?;
        let signer = crypto_provider()
            .key_provider
            .load_private_key(private)
            .map_err(|_| TlsError::Parse {
                key: "http.tls_key",
                path: key.to_path_buf(),
                reason: "unsupported private key type".into(),
            })?;
        let certified = CertifiedKey::new(chain, signer);
        certified.keys_match().map_err(|_| TlsError::Mismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        })?;
        Ok(LoadedIdentity(Arc::new(certified)))
    }

    /// Serves `loaded` to every handshake from now on; connections already
    /// open keep the certificate they were made with.
    pub fn install(&self, loaded: LoadedIdentity) {
        *write(&self.current) = loaded.0;
    }

    fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = ServerConfig::builder_with_provider(Arc::new(crypto_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

/// rustls with *ring*: the aws-lc-rs provider rustls now prefers needs
/// cmake and a C++ toolchain to build, and its extra (post-quantum key
/// exchange) is not what an operator's metrics and control endpoint lacks.
#[allow(deprecated)]
fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl ResolvesServerCert for TlsIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&read(&self.current)))
    }
}

/// TLS streams that finished their handshake, for `axum::serve`.
pub(crate) struct TlsListener {
    streams: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener` in a task of the current runtime; each
    /// handshake runs in its own task.
    pub(crate) fn start(listener: TcpListener, identity: &Arc<TlsIdentity>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let acceptor = identity.acceptor();
        let (ready, streams) = mpsc::channel(ACCEPT_QUEUE);
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!(%error, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = ready.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            streams,
            local_addr,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.streams.recv().await {
            Some(accepted) => accepted,
            // The accept task ended with its runtime: nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
