//! Credentials and SASL tokens that Ferry obtains itself rather than reading
//! from its topology file.
//!
//! Today this is AWS MSK IAM: [`MskTokenProvider`] resolves AWS credentials
//! through the standard chain ([`CredentialChain`]: environment, shared
//! profile, web identity, container, instance metadata) and signs the
//! `kafka-cluster:Connect` request that MSK accepts as an OAUTHBEARER token
//! ([`sign_msk_token`]), byte for byte what AWS's own signers produce.
//!
//! Nothing here prints a secret: credentials and tokens redact themselves in
//! `Debug`, and errors name sources, endpoints and causes only.

mod chain;
mod credentials;
mod env;
mod http;
mod provider;
mod sigv4;

pub use chain::CredentialChain;
pub use credentials::Credentials;
pub use env::Env;
pub use provider::{MskIamSettings, MskTokenProvider, USER_AGENT};
pub use sigv4::{sign_msk_token, MskToken, MAX_TOKEN_LIFETIME_SECS};

/// What redacted values print as.
pub const REDACTED: &str = "[redacted]";

/// Why no token could be made. Messages name the credential source and the
/// endpoint, never a key, token or secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("AWS credentials from {source_name}: {detail}")]
    Incomplete {
        source_name: &'static str,
        detail: String,
    },
    #[error("AWS credentials from {source_name} ({url}): {detail}")]
    Endpoint {
        source_name: &'static str,
        url: String,
        detail: String,
    },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("AWS credentials from {source_name} have expired")]
    Expired { source_name: &'static str },
    #[error(
        "no AWS credentials found: none in the environment (AWS_ACCESS_KEY_ID), the shared \
         profile files, web identity (AWS_WEB_IDENTITY_TOKEN_FILE) or the container endpoint \
         (AWS_CONTAINER_CREDENTIALS_*), and {reason}"
    )]
    NoCredentials { reason: String },
}
