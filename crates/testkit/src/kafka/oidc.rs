//! The identity provider of the `sasl_oauthbearer` variant: an OAuth 2.0
//! token endpoint on loopback that implements the client credentials grant
//! (RFC 6749 §4.4) and issues RS256-signed JWTs, plus the JWKS file with its
//! public key that the brokers' `OAuthBearerValidatorCallbackHandler` checks
//! every token against. The key pair is generated at start-up, so no token
//! outlives its cluster.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use crate::error::{HarnessError, IoContext, Result};

/// The `aud` claim of every token, which the brokers require.
pub(crate) const AUDIENCE: &str = "ferry-test-kafka";
/// The client the provider knows.
const CLIENT_ID: &str = "ferry";
/// Names the one signing key, in the JWT header and in the JWKS.
const KEY_ID: &str = "ferry-test-key";
const TOKEN_PATH: &str = "/oauth2/token";
const TOKEN_LIFETIME_SECS: u64 = 3600;

/// How many token requests the endpoint answered, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenRequests {
    /// Requests with the right client credentials: a signed token.
    pub issued: usize,
    /// Requests refused (unknown client, wrong secret, other grant type).
    pub refused: usize,
}

/// A running token endpoint; stopped when dropped.
pub(crate) struct OidcProvider {
    pub client_id: String,
    pub client_secret: String,
    /// `http://127.0.0.1:<port>/oauth2/token`.
    pub token_endpoint: String,
    /// The `iss` claim of every token, which the brokers require.
    pub issuer: String,
    /// `file:///…/jwks.json`, for `sasl.oauthbearer.jwks.endpoint.url`.
    pub jwks_url: String,
    issuer_state: Arc<TokenIssuer>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct TokenIssuer {
    client_id: String,
    client_secret: String,
    issuer: String,
    key: PKey<Private>,
    issued: AtomicUsize,
    refused: AtomicUsize,
}

impl OidcProvider {
    /// Generates the key pair, writes `dir/jwks.json` and starts serving.
    pub(crate) fn start(dir: &Path, client_secret: String) -> Result<OidcProvider> {
        fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        // Kafka's validator accepts RSA keys from 2048 bits on.
        let rsa = Rsa::generate(2048).map_err(|e| openssl_error("generate an RSA key", e))?;
        let jwks = json!({ "keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": KEY_ID,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        }]});
        let jwks_path = dir.join("jwks.json");
        fs::write(&jwks_path, jwks.to_string())
            .context(|| format!("cannot write {}", jwks_path.display()))?;
        let key = PKey::from_rsa(rsa).map_err(|e| openssl_error("wrap the RSA key", e))?;

        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context(|| "cannot bind the OIDC token endpoint".to_string())?;
        listener
            .set_nonblocking(true)
            .context(|| "cannot make the token endpoint's socket non-blocking".to_string())?;
        let port = listener
            .local_addr()
            .context(|| "cannot read the token endpoint's address".to_string())?
            .port();
        let issuer = format!("http://127.0.0.1:{port}");
        let state = Arc::new(TokenIssuer {
            client_id: CLIENT_ID.to_string(),
            client_secret: client_secret.clone(),
            issuer: issuer.clone(),
            key,
            issued: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
        });

        // Its own thread and runtime: the harness is blocking and must work
        // from plain `#[test]`s as well as from inside any runtime.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context(|| "cannot start a runtime for the token endpoint".to_string())?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .route(TOKEN_PATH, post(issue_token))
            .with_state(state.clone());
        let thread = std::thread::Builder::new()
            .name("oidc-token-endpoint".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("the OIDC token endpoint cannot listen: {e}");
                            return;
                        }
                    };
                    // Leaving block_on drops the runtime with every open
                    // connection, so a drop never waits for idle clients.
                    tokio::select! {
                        served = axum::serve(listener, app) => {
                            if let Err(e) = served {
                                tracing::error!("the OIDC token endpoint stopped: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                })
            })
            .context(|| "cannot start the token endpoint's thread".to_string())?;

        Ok(OidcProvider {
            client_id: CLIENT_ID.to_string(),
            client_secret,
            token_endpoint: format!("{issuer}{TOKEN_PATH}"),
            issuer,
            jwks_url: format!("file://{}", jwks_path.display()),
            issuer_state: state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub(crate) fn requests(&self) -> TokenRequests {
        TokenRequests {
            issued: self.issuer_state.issued.load(Ordering::Relaxed),
            refused: self.issuer_state.refused.load(Ordering::Relaxed),
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn openssl_error(what: &str, e: openssl::error::ErrorStack) -> HarnessError {
    HarnessError::Usage(format!("OpenSSL could not {what}: {e}"))
}

/// The form of a token request. Client credentials may come in the body
/// (RFC 6749 §2.3.1 allows it) or, as librdkafka sends them, as HTTP Basic.
#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn issue_token(
    State(issuer): State<Arc<TokenIssuer>>,
    headers: HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Response {
    if request.grant_type.as_deref() != Some("client_credentials") {
        issuer.refused.fetch_add(1, Ordering::Relaxed);
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let credentials = basic_credentials(&headers).or(request.client_id.zip(request.client_secret));
    match credentials {
        Some((id, secret)) if id == issuer.client_id && secret == issuer.client_secret => {}
        _ => {
            issuer.refused.fetch_add(1, Ordering::Relaxed);
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
    }
    match issuer.sign_token() {
        Ok(token) => {
            issuer.issued.fetch_add(1, Ordering::Relaxed);
            Json(json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS,
            }))
            .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// `Authorization: Basic base64(id:secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

impl TokenIssuer {
    /// A compact JWS: the claims Kafka's broker validator requires (`exp`,
    /// `iat`, `sub`) plus the audience and issuer it is configured to expect.
    fn sign_token(&self) -> Result<String, openssl::error::ErrorStack> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": KEY_ID });
        let claims = json!({
            "sub": self.client_id,
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // RSASSA-PKCS1-v1_5 with SHA-256 (OpenSSL's default RSA padding).
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
        signer.update(signing_input.as_bytes())?;
        let signature = signer.sign_to_vec()?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::bn::BigNum;
    use openssl::sign::Verifier;

    #[test]
    fn tokens_verify_with_the_published_jwks_key() {
        let dir = tempfile::tempdir().unwrap();
        let provider = OidcProvider::start(dir.path(), "s3cret".into()).unwrap();
        let token = provider.issuer_state.sign_token().unwrap();

        // Rebuild the public key from the JWKS file, as a broker does.
        let jwks: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join("jwks.json")).unwrap())
                .unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(key["kid"], KEY_ID);
        let component = |name: &str| {
            let bytes = URL_SAFE_NO_PAD.decode(key[name].as_str().unwrap()).unwrap();
            BigNum::from_slice(&bytes).unwrap()
        };
        let public =
            PKey::from_rsa(Rsa::from_public_components(component("n"), component("e")).unwrap())
                .unwrap();

        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(signing_input.as_bytes()).unwrap();
        assert!(verifier
            .verify(&URL_SAFE_NO_PAD.decode(signature).unwrap())
            .unwrap());

        let claims_part = signing_input.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_part).unwrap()).unwrap();
        assert_eq!(claims["sub"], CLIENT_ID);
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(claims["iss"], provider.issuer.as_str());
        assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("ferry:pa:ss"));
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            basic_credentials(&headers),
            Some(("ferry".to_string(), "pa:ss".to_string()))
        );
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }
}
