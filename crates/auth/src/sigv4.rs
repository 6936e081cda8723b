//! SigV4 query presigning of the MSK IAM `kafka-cluster:Connect` request,
//! producing the same token as AWS's own signers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::AuthError;

const SERVICE: &str = "kafka-cluster";
const ACTION: &str = "kafka-cluster:Connect";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The longest lifetime MSK accepts for a signed connect request.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 900;

/// A signed MSK IAM token. `Debug` leaves the token out: it is a bearer
/// credential for as long as it lives.
#[derive(Clone, PartialEq, Eq)]
pub struct MskToken {
    /// base64url (no padding) of the presigned URL.
    pub token: String,
    /// When the signature stops being accepted, in ms since the Unix epoch.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for MskToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskToken")
            .field("token", &crate::REDACTED)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// Signs the connect request for `region` at `now`. The token lives 900 s, or
/// until the credentials expire if that is sooner; `user_agent` is added
/// after signing, as AWS's signers do.
pub fn sign_msk_token(
    credentials: &Credentials,
    region: &str,
    now: OffsetDateTime,
    user_agent: &str,
) -> Result<MskToken, AuthError> {
    let now = now.replace_nanosecond(0).expect("0 is a valid nanosecond");
    let lifetime = match credentials.expiration {
        None => MAX_TOKEN_LIFETIME_SECS,
        Some(expiry) => (expiry - now).whole_seconds().min(MAX_TOKEN_LIFETIME_SECS),
    };
    if lifetime < 1 {
        return Err(AuthError::Expired {
            source_name: credentials.source,
        });
    }
    let host = format!("kafka.{region}.amazonaws.com");
    let long_date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let short_date = &long_date[..8];
    let scope = format!("{short_date}/{region}/{SERVICE}/aws4_request");

    let mut query: Vec<(&str, String)> = vec![
        ("Action", ACTION.to_string()),
        ("X-Amz-Algorithm", ALGORITHM.to_string()),
        (
            "X-Amz-Credential",
            format!("{}/{scope}", credentials.access_key_id),
        ),
        ("X-Amz-Date", long_date.clone()),
        ("X-Amz-Expires", lifetime.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = credentials.session_token() {
        query.push(("X-Amz-Security-Token", token.to_string()));
    }
    query.sort_by(|a, b| a.0.cmp(b.0));

    let canonical_request = format!(
        "GET\n/\n{}\nhost:{host}\n\nhost\n{}",
        query_string(&query),
        hex::encode(Sha256::digest(b""))
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{long_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", credentials.secret_access_key()).as_bytes(),
        short_date.as_bytes(),
    );
    for part in [region, SERVICE, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));

    query.push(("X-Amz-Signature", signature));
    query.push(("User-Agent", user_agent.to_string()));
    query.sort_by(|a, b| a.0.cmp(b.0));
    let url = format!("https://{host}/?{}", query_string(&query));
    Ok(MskToken {
        token: URL_SAFE_NO_PAD.encode(url.as_bytes()),
        expires_at_ms: (now.unix_timestamp() + lifetime) * 1000,
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn query_string(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4's encoding: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`.
pub(crate) fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
