//! `Admin::with_token_source` against a real Apache Kafka broker whose
//! client listener also accepts OAUTHBEARER (Kafka's built-in validator of
//! unsecured JWTs): every handle of the admin client (the rust-rdkafka admin
//! client, the request handle, the lazily created consumer) authenticates
//! with the application's token, gets a new one before it expires, and
//! fails when there is none.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ferry_admin::{Admin, ClientConfig, NewTopicSpec, TokenSource};
use ferry_testkit::data::unique_name;
use ferry_testkit::KafkaOptions;

/// Short, so that refreshes happen within the test.
const TOKEN_LIFETIME_MS: i64 = 4_000;

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An unsecured JWT (`alg: none`), which the broker's default OAUTHBEARER
/// validator accepts while it has not expired.
fn unsecured_jwt(expires_ms: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"ferry","iat":{},"exp":{}}}"#,
        unix_ms() / 1000,
        expires_ms / 1000
    ));
    format!("{header}.{claims}.")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_handle_authenticates_with_the_token_source() {
    let cluster = tokio::task::spawn_blocking(|| {
        KafkaOptions::new()
            .sasl_scram(true)
            .broker_config("sasl.enabled.mechanisms", "SCRAM-SHA-512,OAUTHBEARER")
            .broker_config(
                "listener.name.client.oauthbearer.sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            )
            .start()
    })
    .await
    .unwrap()
    .expect("Kafka with an OAUTHBEARER client listener must start");
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER");

    let issued = Arc::new(AtomicU32::new(0));
    let counter = issued.clone();
    let tokens: TokenSource = Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let expires = unix_ms() + TOKEN_LIFETIME_MS;
        // Seconds in the JWT, so the token's claimed expiry is never later
        // than the one librdkafka is told.
        let expires = expires / 1000 * 1000;
        Ok((unsecured_jwt(expires), expires))
    });
    let admin = Admin::with_token_source(&config, tokens).unwrap();

    // The rust-rdkafka admin handle.
    let topic = unique_name("oauth");
    let created = admin
        .create_topics(&[NewTopicSpec::new(&topic, 2)])
        .await
        .expect("CreateTopics with the application's token");
    assert_eq!(created[0].as_ref().unwrap(), &topic);
    // The request handle.
    admin
        .list_consumer_groups()
        .await
        .expect("ListGroups with the application's token");

    // Past two token lifetimes: refreshed, and still accepted.
    let deadline = Instant::now() + Duration::from_secs(30);
    while issued.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        issued.load(Ordering::SeqCst) >= 3,
        "{} token(s) made in 30 s for tokens living {TOKEN_LIFETIME_MS} ms",
        issued.load(Ordering::SeqCst)
    );
    // The consumer handle, created now, with a fresh token.
    let offsets = admin
        .offsets_for_times(&[(topic.as_str(), 0, 0)])
        .await
        .expect("ListOffsets with the application's token");
    assert_eq!(offsets.len(), 1);
    assert!(admin.topic_metadata().await.unwrap().contains_key(&topic));

    // Without a token no request gets through.
    let failing: TokenSource = Arc::new(|| Err("no credentials for this test".into()));
    let refused = Admin::with_timeout_and_token_source(&config, Duration::from_secs(3), failing)
        .unwrap()
        .topic_metadata()
        .await;
    assert!(
        refused.is_err(),
        "a metadata request succeeded without a token: {refused:?}"
    );
}
