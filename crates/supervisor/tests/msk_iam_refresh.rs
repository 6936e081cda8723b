//! librdkafka asks Ferry's client context for a fresh MSK IAM token before
//! the current one expires. The credentials come from a container
//! credentials endpoint (a real HTTP server on loopback) that hands out
//! credentials living only a few seconds, so each token lives that long and
//! every refresh shows up as a request to the endpoint.
//!
//! One test per binary: it sets process environment variables, which the
//! credential chain reads.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use ferry_config::{AwsMskIam, Cluster};
use ferry_supervisor::clients::{client_config, ClusterContext, Role};
use ferry_testkit::http_stub::StubServer;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const CREDENTIAL_LIFETIME_SECS: i64 = 6;

#[test]
fn msk_iam_tokens_are_refreshed_before_they_expire() {
    let issued = AtomicU32::new(0);
    let issued_at = Arc::new(Mutex::new(Vec::new()));
    let log = issued_at.clone();
    let server = StubServer::start(move |_| {
        let n = issued.fetch_add(1, Ordering::SeqCst);
        log.lock().unwrap().push(Instant::now());
        let expiry = OffsetDateTime::now_utc() + time::Duration::seconds(CREDENTIAL_LIFETIME_SECS);
        let body = format!(
            r#"{{"AccessKeyId":"ASIAREFRESH{n}","SecretAccessKey":"refresh-secret-{n}","Token":"refresh-token-{n}","Expiration":"{}"}}"#,
            expiry.format(&Rfc3339).unwrap()
        );
        (200, body)
    });
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HOME", "/nonexistent");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/credentials", server.url),
    );

    let cluster = Cluster {
        name: "msk".into(),
        // Nothing listens there: the refresh schedule does not depend on a
        // broker connection.
        bootstrap_servers: "127.0.0.1:1".into(),
        client: Default::default(),
        aws_msk_iam: Some(AwsMskIam {
            region: "eu-west-1".into(),
            profile: None,
        }),
    };
    let config = client_config(&cluster, Role::Reader, "ferry-refresh-test");
    assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
    assert_eq!(config.get("sasl.mechanism"), Some("OAUTHBEARER"));
    let consumer: BaseConsumer<ClusterContext> = config
        .create_with_context(ClusterContext::new(&cluster))
        .unwrap();

    // The first token is asked for at creation; each lives until its
    // credentials expire and librdkafka refreshes it at 80% of that.
    let deadline = Instant::now() + Duration::from_secs(40);
    while server.requests().len() < 3 && Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(200));
    }
    assert!(
        server.requests().len() >= 3,
        "librdkafka asked for {} token(s) in 40 s; tokens living {CREDENTIAL_LIFETIME_SECS} s must be refreshed",
        server.requests().len()
    );

    // Each refresh came while the previous credentials (and so the token
    // signed with them) were still valid.
    let issued_at = issued_at.lock().unwrap().clone();
    for pair in issued_at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < Duration::from_secs(CREDENTIAL_LIFETIME_SECS as u64),
            "a token was refreshed {gap:?} after the previous one, past its {CREDENTIAL_LIFETIME_SECS} s lifetime"
        );
    }

    // What the callback hands librdkafka: a token for this region signed
    // with the newest credentials, expiring with them.
    let before_ms = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let token = consumer.context().generate_oauth_token(None).unwrap();
    let url = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token.token)
            .unwrap(),
    )
    .unwrap();
    let newest = server.requests().len() - 1;
    assert!(
        url.starts_with("https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"),
        "{url}"
    );
    assert!(
        url.contains(&format!("X-Amz-Credential=ASIAREFRESH{newest}%2F")),
        "{url}"
    );
    assert!(
        url.contains(&format!("X-Amz-Security-Token=refresh-token-{newest}&")),
        "{url}"
    );
    assert!(
        token.lifetime_ms > before_ms
            && token.lifetime_ms <= before_ms + (CREDENTIAL_LIFETIME_SECS + 1) * 1000,
        "lifetime {} not within the credentials' {CREDENTIAL_LIFETIME_SECS} s after {before_ms}",
        token.lifetime_ms
    );
}
