//! Ferry's MSK IAM token equals, byte for byte, the one AWS's official
//! signer (aws-msk-iam-sasl-signer-js) produced for the same credentials,
//! region and time. The expected tokens are checked in under `golden/`;
//! `golden/generate.mjs` regenerates them (see its header).

use std::path::Path;

use ferry_auth::{sign_msk_token, Credentials};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Deserialize)]
struct Golden {
    region: String,
    time: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expiration: Option<String>,
    user_agent: String,
    token: String,
    expiry_ms: i64,
}

fn parse(t: &str) -> OffsetDateTime {
    OffsetDateTime::parse(t, &Rfc3339).unwrap()
}

#[test]
fn tokens_match_the_official_signer_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") || name.starts_with("package") {
            continue;
        }
        let golden: Golden =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let credentials = Credentials::new(
            golden.access_key_id,
            golden.secret_access_key,
            golden.session_token,
            golden.expiration.as_deref().map(parse),
            "golden",
        );
        let token = sign_msk_token(
            &credentials,
            &golden.region,
            parse(&golden.time),
            &golden.user_agent,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            token.token, golden.token,
            "{name}: token differs from the official signer's"
        );
        assert_eq!(
            token.expires_at_ms, golden.expiry_ms,
            "{name}: expiry differs"
        );
        checked.push(name);
    }
    // All four vectors, including a session token and expiring credentials.
    assert_eq!(checked.len(), 4, "golden vectors found: {checked:?}");
}
