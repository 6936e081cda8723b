//! MSK IAM tokens for librdkafka's OAUTHBEARER refresh callback, with
//! credentials cached until shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use time::OffsetDateTime;

use crate::chain::CredentialChain;
use crate::credentials::Credentials;
use crate::env::Env;
use crate::sigv4::{sign_msk_token, MskToken};
use crate::AuthError;

/// Sent as the token's `User-Agent` parameter (not signed), so MSK's logs
/// show which client connected.
pub const USER_AGENT: &str = concat!("ferry/", env!("CARGO_PKG_VERSION"));

/// Temporary credentials are fetched again once they have less than this
/// left, so a token never outlives them by much and a slow endpoint has
/// time to answer before they lapse.
const CREDENTIAL_REFRESH_MARGIN: time::Duration = time::Duration::minutes(5);

/// `clusters.NAME.aws_msk_iam` as the provider needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MskIamSettings {
    pub region: String,
    pub profile: Option<String>,
}

pub struct MskTokenProvider {
    settings: MskIamSettings,
    chain: CredentialChain,
    cached: Mutex<Option<Credentials>>,
}

impl MskTokenProvider {
    pub fn new(settings: MskIamSettings, env: Env) -> Result<Self, AuthError> {
        Ok(Self {
            chain: CredentialChain::new(env, &settings.region, settings.profile.as_deref())?,
            settings,
            cached: Mutex::new(None),
        })
    }

    /// One provider per region and profile for the whole process, reading
    /// the process environment: every client of every cluster with these
    /// settings shares its cached credentials, so a daemon with dozens of
    /// clients asks the metadata endpoint once, not dozens of times.
    pub fn shared(settings: &MskIamSettings) -> Result<Arc<Self>, AuthError> {
        static PROVIDERS: OnceLock<Mutex<HashMap<MskIamSettings, Arc<MskTokenProvider>>>> =
            OnceLock::new();
        let mut providers = PROVIDERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(p) = providers.get(settings) {
            return Ok(p.clone());
        }
        let provider = Arc::new(Self::new(settings.clone(), Env::Process)?);
        providers.insert(settings.clone(), provider.clone());
        Ok(provider)
    }

    pub fn settings(&self) -> &MskIamSettings {
        &self.settings
    }

    /// A fresh token signed now. Blocks while credentials are fetched, which
    /// happens only when the cached ones are close to expiry.
    pub fn token(&self) -> Result<MskToken, AuthError> {
        let credentials = self.credentials()?;
        sign_msk_token(
            &credentials,
            &self.settings.region,
            OffsetDateTime::now_utc(),
            USER_AGENT,
        )
    }

    fn credentials(&self) -> Result<Credentials, AuthError> {
        // Held while fetching, so clients refreshing at the same moment wait
        // for one answer instead of each asking the endpoint.
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_ref() {
            if c.valid_for(OffsetDateTime::now_utc(), CREDENTIAL_REFRESH_MARGIN) {
                return Ok(c.clone());
            }
        }
        let fresh = self.chain.resolve()?;
        // Long-term keys are read again each time (cheap, and an edited
        // credentials file takes effect); only temporary ones are cached.
        *cached = fresh.expiration.is_some().then(|| fresh.clone());
        Ok(fresh)
    }
}
