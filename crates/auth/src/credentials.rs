//! AWS credentials, kept out of `Debug` output.

use time::OffsetDateTime;

/// One set of AWS credentials. The secret key and session token are only
/// reachable through accessors and never printed.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    /// None for long-term keys.
    pub expiration: Option<OffsetDateTime>,
    /// Which link of the chain supplied them ("environment", "profile", ...).
    pub source: &'static str,
}

impl Credentials {
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
        expiration: Option<OffsetDateTime>,
        source: &'static str,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: session_token.filter(|t| !t.is_empty()),
            expiration,
            source,
        }
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    /// Still valid `margin` from `now`; long-term keys always are.
    pub fn valid_for(&self, now: OffsetDateTime, margin: time::Duration) -> bool {
        self.expiration.is_none_or(|e| e - now > margin)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &crate::REDACTED)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| crate::REDACTED),
            )
            .field("expiration", &self.expiration)
            .field("source", &self.source)
            .finish()
    }
}
