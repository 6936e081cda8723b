//! The TLS and SASL/SCRAM variants, each on a cluster of its own.

mod common;

use std::time::Duration;

use ferry_testkit::kafka::probe;
use ferry_testkit::KafkaOptions;

#[test]
fn tls_cluster_serves_clients_that_trust_its_ca() {
    let cluster = KafkaOptions::new().tls(true).start().unwrap();
    let config = cluster.client_config();
    assert_eq!(config.get("security.protocol"), Some("SSL"));
    let ca = cluster.ca_pem_path().expect("a TLS cluster has a CA");
    assert_eq!(config.get("ssl.ca.location"), ca.to_str());
    let pem = std::fs::read_to_string(ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    common::round_trip(&config, 1);

    // Without our CA the broker certificate does not verify.
    let mut untrusting = config.clone();
    untrusting.remove("ssl.ca.location");
    let err = probe(&untrusting, Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate verify failed"), "{err}");
}

#[test]
fn scram_cluster_authenticates_its_user_and_rejects_a_wrong_password() {
    let cluster = KafkaOptions::new().sasl_scram(true).start().unwrap();
    let config = cluster.client_config();
    assert_eq!(config.get("security.protocol"), Some("SASL_PLAINTEXT"));
    assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
    assert_eq!(cluster.sasl_user(), Some("ferry"));
    assert_eq!(config.get("sasl.username"), cluster.sasl_user());
    assert_eq!(config.get("sasl.password"), cluster.sasl_password());

    common::round_trip(&config, 1);

    let mut wrong = config.clone();
    wrong.set("sasl.password", "not-the-password");
    let err = probe(&wrong, Duration::from_secs(5))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Authentication failed"), "{err}");
}
