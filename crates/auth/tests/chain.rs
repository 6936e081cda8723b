//! The credential chain against its real sources: variables, profile files
//! on disk, and real HTTP servers on loopback standing in for STS, the
//! container endpoint and instance metadata (reached through the endpoint
//! overrides AWS documents).

use ferry_auth::{AuthError, CredentialChain, Env, MskIamSettings, MskTokenProvider};
use ferry_testkit::http_stub::StubServer as Server;

fn json_credentials(key: &str, expiration: &str) -> String {
    format!(
        r#"{{"Code":"Success","AccessKeyId":"{key}","SecretAccessKey":"secret-{key}","Token":"token-{key}","Expiration":"{expiration}"}}"#
    )
}

fn resolve(vars: &[(&str, &str)]) -> Result<ferry_auth::Credentials, AuthError> {
    resolve_profile(vars, None)
}

fn resolve_profile(
    vars: &[(&str, &str)],
    profile: Option<&str>,
) -> Result<ferry_auth::Credentials, AuthError> {
    let mut all: Vec<(&str, &str)> = vec![
        // Nothing may fall through to the real instance metadata address.
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"),
        ("HOME", "/nonexistent"),
    ];
    all.extend_from_slice(vars);
    CredentialChain::new(Env::fixed(all), "eu-west-1", profile)
        .unwrap()
        .resolve()
}

#[test]
fn environment_variables_come_first() {
    let c = resolve(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:9/never",
        ),
    ])
    .unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.source),
        ("AKIDENV", "environment")
    );
    assert_eq!(c.secret_access_key(), "env-secret");
    assert_eq!(c.session_token(), Some("env-token"));

    let err = resolve(&[("AWS_ACCESS_KEY_ID", "AKIDENV")]).unwrap_err();
    assert!(
        err.to_string().contains("AWS_SECRET_ACCESS_KEY is not"),
        "{err}"
    );
}

#[test]
fn profiles_come_from_the_shared_files() {
    let dir = tempfile::tempdir().unwrap();
    let aws = dir.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("credentials"),
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n\
         [prod]\naws_access_key_id = AKIDPROD\naws_secret_access_key = prod-secret\naws_session_token = prod-token\n",
    )
    .unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile prod]\nregion = eu-west-1\n[profile sso]\nsso_session = corp\n",
    )
    .unwrap();
    let home = dir.path().to_str().unwrap();

    let c = resolve(&[("HOME", home)]).unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.source),
        ("AKIDDEFAULT", "profile")
    );

    // AWS_PROFILE, and the configured profile over AWS_PROFILE.
    let c = resolve(&[("HOME", home), ("AWS_PROFILE", "prod")]).unwrap();
    assert_eq!(c.access_key_id, "AKIDPROD");
    assert_eq!(c.session_token(), Some("prod-token"));
    let c = resolve_profile(&[("HOME", home), ("AWS_PROFILE", "nope")], Some("prod")).unwrap();
    assert_eq!(c.access_key_id, "AKIDPROD");

    // A named profile that is missing, or unsupported, is an error, not a
    // silent fall-through to another identity.
    let err = resolve_profile(&[("HOME", home)], Some("missing")).unwrap_err();
    assert!(
        err.to_string().contains("profile \"missing\" is not in"),
        "{err}"
    );
    let err = resolve_profile(&[("HOME", home)], Some("sso")).unwrap_err();
    assert!(err.to_string().contains("sso_session"), "{err}");

    // AWS_SHARED_CREDENTIALS_FILE moves the file.
    let moved = dir.path().join("creds");
    std::fs::write(
        &moved,
        "[default]\naws_access_key_id=AKIDMOVED\naws_secret_access_key=s\n",
    )
    .unwrap();
    let c = resolve(&[("AWS_SHARED_CREDENTIALS_FILE", moved.to_str().unwrap())]).unwrap();
    assert_eq!(c.access_key_id, "AKIDMOVED");
}

const STS_ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId>
      <SecretAccessKey>web-secret</SecretAccessKey>
      <SessionToken>web-session&amp;token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

#[test]
fn web_identity_trades_the_token_file_at_sts() {
    let sts = Server::start(|r| {
        if r.body.contains("WebIdentityToken=good-jwt") {
            (200, STS_ANSWER.to_string())
        } else {
            (400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>Couldn't retrieve verification key</Message></Error></ErrorResponse>".into())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "good-jwt\n").unwrap();
    let vars = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ferry"),
        ("AWS_ROLE_SESSION_NAME", "ferry-test"),
        ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
    ];
    let c = resolve(&vars).unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.source),
        ("ASIAWEBIDENTITY", "web identity")
    );
    assert_eq!(c.secret_access_key(), "web-secret");
    assert_eq!(c.session_token(), Some("web-session&token"));
    assert!(c.expiration.is_some());
    let request = &sts.requests()[0];
    assert_eq!(request.method, "POST");
    let form: Vec<&str> = request.body.split('&').collect();
    for field in [
        "Action=AssumeRoleWithWebIdentity",
        "Version=2011-06-15",
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fferry",
        "RoleSessionName=ferry-test",
        "WebIdentityToken=good-jwt",
    ] {
        assert!(form.contains(&field), "{field} missing from {form:?}");
    }

    // The kubelet rotates the file; a rejected token names STS's cause and
    // never the token itself.
    std::fs::write(&token_file, "revoked-jwt").unwrap();
    let err = resolve(&vars).unwrap_err().to_string();
    assert!(
        err.contains("InvalidIdentityToken") && err.contains("HTTP 400"),
        "{err}"
    );
    assert!(!err.contains("revoked-jwt"), "{err}");

    // The same through a profile's role_arn + web_identity_token_file.
    std::fs::write(&token_file, "good-jwt").unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[profile eks]\nrole_arn = arn:aws:iam::123456789012:role/ferry\nweb_identity_token_file = {}\n",
            token_file.display()
        ),
    )
    .unwrap();
    let c = resolve_profile(
        &[
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
        ],
        Some("eks"),
    )
    .unwrap();
    assert_eq!(c.access_key_id, "ASIAWEBIDENTITY");
}

#[test]
fn container_endpoint_with_authorization() {
    let server = Server::start(|r| match r.header("Authorization") {
        Some("Bearer pod-identity") => (
            200,
            json_credentials("ASIACONTAINER", "2099-01-01T00:00:00Z"),
        ),
        _ => (401, String::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("auth");
    std::fs::write(&auth_file, "Bearer pod-identity\n").unwrap();
    let full_uri = format!("{}/v2/credentials/abc", server.url);
    let c = resolve(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            auth_file.to_str().unwrap(),
        ),
    ])
    .unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.source),
        ("ASIACONTAINER", "container")
    );
    assert_eq!(c.session_token(), Some("token-ASIACONTAINER"));
    assert_eq!(server.requests()[0].path, "/v2/credentials/abc");

    let err = resolve(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str())])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HTTP 401") && err.contains("container"),
        "{err}"
    );
}

#[test]
fn instance_metadata_v2_session_then_role() {
    let server = Server::start(|r| {
        let session = r.header("X-aws-ec2-metadata-token");
        match (r.method.as_str(), r.path.as_str(), session) {
            ("PUT", "/latest/api/token", None)
                if r.header("X-aws-ec2-metadata-token-ttl-seconds").is_some() =>
            {
                (200, "imds-session".into())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/", Some("imds-session")) => {
                (200, "ferry-node-role\n".into())
            }
            (
                "GET",
                "/latest/meta-data/iam/security-credentials/ferry-node-role",
                Some("imds-session"),
            ) => (
                200,
                json_credentials("ASIAINSTANCE", "2099-01-01T00:00:00Z"),
            ),
            // IMDSv1-style requests (no session) are refused, as on
            // instances that require v2.
            _ => (401, String::new()),
        }
    });
    let c = resolve(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url.as_str())]).unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.source),
        ("ASIAINSTANCE", "instance metadata")
    );
    assert_eq!(server.requests().len(), 3);

    let err = resolve(&[("AWS_EC2_METADATA_DISABLED", "true")]).unwrap_err();
    assert!(matches!(err, AuthError::NoCredentials { .. }), "{err}");
    // Nothing anywhere: the error lists what was looked at.
    let err = resolve(&[]).unwrap_err().to_string();
    assert!(
        err.starts_with("no AWS credentials found") && err.contains("instance metadata"),
        "{err}"
    );
}

/// Credentials that expire soon are fetched again before the next token, and
/// a token never outlives its credentials.
#[test]
fn short_lived_credentials_are_refreshed_for_each_token() {
    let server = Server::start(|_| {
        let expiry = time::OffsetDateTime::now_utc() + time::Duration::seconds(60);
        let expiry = expiry
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        (200, json_credentials("ASIASHORT", &expiry))
    });
    let uri = format!("{}/creds", server.url);
    let provider = MskTokenProvider::new(
        MskIamSettings {
            region: "eu-west-1".into(),
            profile: None,
        },
        Env::fixed([
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            ("HOME", "/nonexistent"),
        ]),
    )
    .unwrap();
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let first = provider.token().unwrap();
    assert!(
        first.expires_at_ms <= now_ms + 61_000,
        "token outlives its credentials"
    );
    provider.token().unwrap();
    assert_eq!(
        server.requests().len(),
        2,
        "credentials within the refresh margin must be fetched again"
    );
}

/// Credentials far from expiry are reused: a daemon signing a token every
/// few minutes does not ask the endpoint each time.
#[test]
fn long_lived_credentials_are_reused() {
    let server = Server::start(|_| (200, json_credentials("ASIALONG", "2099-01-01T00:00:00Z")));
    let uri = format!("{}/creds", server.url);
    let provider = MskTokenProvider::new(
        MskIamSettings {
            region: "eu-west-1".into(),
            profile: None,
        },
        Env::fixed([
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            ("HOME", "/nonexistent"),
        ]),
    )
    .unwrap();
    let first = provider.token().unwrap();
    let second = provider.token().unwrap();
    assert_eq!(
        server.requests().len(),
        1,
        "credentials valid until 2099 were fetched again"
    );
    // Capped at MSK's 15 minutes even though the credentials live longer.
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    assert!(second.expires_at_ms <= now_ms + 900_000 && first.expires_at_ms > now_ms);
}
