//! TLS and SASL/SCRAM end to end against Apache Kafka: Ferry replicates from
//! a cluster with a TLS listener (certificate generated at test time,
//! verified through the CA named in the topology) to a cluster with a
//! SCRAM-SHA-512 listener whose password Ferry reads from `${file:…}`. A
//! wrong password or an untrusted certificate fails with an error naming the
//! cluster, and never the secret. OAUTHBEARER with OIDC client credentials:
//! Ferry fetches signed JWTs from a token endpoint the harness serves, which
//! the brokers validate against a JWKS file.

mod common;

use std::path::Path;

use common::*;

use ferry_testkit::check::{assert_same, try_total};
use ferry_testkit::daemon::{signal, stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::{KafkaCluster, KafkaOptions};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

fn topology(
    dir: &Path,
    tls: &KafkaCluster,
    ca: &Path,
    sasl: &KafkaCluster,
    password_file: &Path,
    topic: &str,
) -> std::path::PathBuf {
    let path = dir.join("secure.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[clusters.tls]
bootstrap_servers = "{}"
[clusters.tls.client]
"security.protocol" = "SSL"
"ssl.ca.location" = "{}"

[clusters.scram]
bootstrap_servers = "{}"
[clusters.scram.client]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{}"
"sasl.password" = "${{file:{}}}"

[[flows]]
source = "tls"
target = "scram"
topics = ["{topic}"]

[http]
listen = "127.0.0.1:0"
"#,
            tls.bootstrap_servers(),
            ca.display(),
            sasl.bootstrap_servers(),
            sasl.sasl_user().expect("scram user"),
            password_file.display(),
        ),
    )
    .expect("write topology");
    path
}

fn check_connect(topology: &Path) -> (Option<i32>, String) {
    let out = FERRY
        .command(&["check", "-c", topology.to_str().unwrap(), "--connect"])
        .output()
        .expect("ferry runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all)
}

#[test]
fn replicates_from_tls_to_scram_and_names_the_cluster_on_bad_credentials() {
    let (tls, sasl) = std::thread::scope(|s| {
        let tls = s.spawn(|| {
            KafkaOptions::new()
                .tls(true)
                .start()
                .expect("TLS cluster starts")
        });
        let sasl = KafkaOptions::new()
            .sasl_scram(true)
            .start()
            .expect("SCRAM cluster starts");
        (tls.join().expect("tls thread"), sasl)
    });
    let ca = tls.ca_pem_path().expect("CA file").to_path_buf();
    let password = sasl.sasl_password().expect("scram password").to_string();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("scram-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let topic = unique_name("secure");
    data::create_topic(&tls.client_config(), &topic, 2, 1, &[]).expect("create over TLS");
    produce_sequence(&tls.client_config(), &topic, &SequenceSpec::new(2, 500))
        .expect("produce over TLS");

    let good = topology(dir.path(), &tls, &ca, &sasl, &password_file, &topic);
    let (code, out) = check_connect(&good);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("connected: cluster tls") && out.contains("connected: cluster scram"),
        "{out}"
    );

    let log = FERRY.run_until_caught_up(&good);
    assert_same(&tls, &topic, &sasl, &format!("tls.{topic}"), 1000);
    assert!(
        !log.contains(&password),
        "the SCRAM password leaked into the log"
    );

    // A wrong password: the error names the cluster, never either password.
    std::fs::write(&password_file, "definitely-wrong-password\n").unwrap();
    let (code, out) = check_connect(&good);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("cluster scram"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.to_lowercase().contains("authentication"),
        "cause named: {line}\n{out}"
    );
    assert!(
        !out.contains("definitely-wrong-password") && !out.contains(&password),
        "{out}"
    );

    // A CA that did not sign the broker's certificate: refused, cluster named.
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let other = KafkaOptions::new()
        .tls(true)
        .start()
        .expect("second TLS cluster");
    std::fs::copy(other.ca_pem_path().unwrap(), &other_ca).unwrap();
    drop(other);
    let untrusted = topology(dir.path(), &tls, &other_ca, &sasl, &password_file, &topic);
    let (code, out) = check_connect(&untrusted);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("cluster tls"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.to_lowercase().contains("certificate"),
        "cause named: {line}"
    );
}

#[test]
fn a_rotated_scram_password_is_read_again_on_sighup_and_other_flows_keep_copying() {
    let (source, target) = ferry_testkit::shared_pair().expect("test brokers start");
    let mut scram = KafkaOptions::new()
        .sasl_scram(true)
        .start()
        .expect("SCRAM cluster starts");
    let prefix = unique_name("rotate");
    let (steady, secured) = (format!("{prefix}-steady"), format!("{prefix}-secured"));
    for t in [&steady, &secured] {
        data::create_topic(&source.client_config(), t, 2, 1, &[]).expect("create");
    }
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("scram-password");
    std::fs::write(&password_file, scram.sasl_password().expect("password")).unwrap();
    let topology = dir.path().join("rotate.toml");
    std::fs::write(
        &topology,
        format!(
            r#"
[clusters.src]
bootstrap_servers = "{}"
[clusters.dst]
bootstrap_servers = "{}"
[clusters.scram]
bootstrap_servers = "{}"
[clusters.scram.client]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{}"
"sasl.password" = "${{file:{}}}"

[[flows]]
source = "src"
target = "dst"
topics = ["{steady}"]

[[flows]]
source = "src"
target = "scram"
topics = ["{secured}"]

[http]
listen = "127.0.0.1:0"
"#,
            source.bootstrap_servers(),
            target.bootstrap_servers(),
            scram.bootstrap_servers(),
            scram.sasl_user().expect("scram user"),
            password_file.display(),
        ),
    )
    .unwrap();
    ferry_testkit::topology::give_own_group(&topology);
    let daemon = FERRY.start(&topology);

    // Steady traffic on the flow that does not touch the SCRAM cluster, all
    // through the rotation.
    let producer = {
        let (config, topic) = (source.client_config(), steady.clone());
        std::thread::spawn(move || {
            for batch in 0..20u64 {
                let mut spec = SequenceSpec::new(2, 250);
                spec.first_seq = batch * 250;
                produce_sequence(&config, &topic, &spec).expect("produce");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
    };
    produce_sequence(
        &source.client_config(),
        &secured,
        &SequenceSpec::new(2, 100),
    )
    .expect("produce");
    let remote = format!("src.{secured}");
    wait_for(
        "the first records copied to the SCRAM cluster",
        std::time::Duration::from_secs(60),
        || (try_total(&scram, &remote).ok()? == 200).then_some(()),
    );

    // Rotate: the broker first, then the file, then SIGHUP.
    let old_password = scram.sasl_password().expect("password").to_string();
    let new_password = format!("rotated-{}", rand::random::<u32>());
    scram
        .change_scram_password(&new_password)
        .expect("change the SCRAM password");
    std::fs::write(&password_file, &new_password).unwrap();
    signal(daemon.child(), libc::SIGHUP);
    let mut more = SequenceSpec::new(2, 100);
    more.first_seq = 100;
    produce_sequence(&source.client_config(), &secured, &more).expect("produce");
    // New connections to the SCRAM cluster only work with the new password.
    wait_for(
        "records after the rotation copied with the new password",
        std::time::Duration::from_secs(90),
        || (try_total(&scram, &remote).ok()? == 400).then_some(()),
    );

    producer.join().expect("producer");
    wait_for(
        "the steady flow caught up",
        std::time::Duration::from_secs(60),
        || (try_total(target, &format!("src.{steady}")).ok()? == 10_000).then_some(()),
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let applied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reload applied"))
        .collect();
    assert_eq!(applied.len(), 1, "{log}");
    assert!(
        applied[0].contains(r#"restarted: [FlowId { source: "src", target: "scram" }]"#)
            && !applied[0].contains(r#"target: "dst""#),
        "only the flow that uses the credential restarts: {}",
        applied[0]
    );
    for secret in [&old_password, &new_password] {
        assert!(!log.contains(secret.as_str()), "a password reached the log");
    }
    // Nothing lost or copied twice on either flow.
    assert_same(source, &steady, target, &format!("src.{steady}"), 10_000);
    assert_same(source, &secured, &scram, &remote, 400);
}

fn write_secret(path: &Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn oidc_client_credentials_copy_both_ways_and_a_wrong_secret_names_the_token_endpoint() {
    let (_, plain) = ferry_testkit::shared_pair().expect("test brokers start");
    let oauth = KafkaOptions::new()
        .sasl_oauthbearer(true)
        .start()
        .expect("OAUTHBEARER cluster starts");
    let endpoint = oauth.oidc_token_endpoint().expect("token endpoint");
    let secret = oauth
        .oidc_client_secret()
        .expect("client secret")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("oidc-client-secret");
    write_secret(&secret_file, &secret);

    let prefix = unique_name("oidc");
    let (outbound, inbound) = (format!("{prefix}-out"), format!("{prefix}-in"));
    data::create_topic(&oauth.client_config(), &outbound, 2, 1, &[]).expect("create (OAUTHBEARER)");
    data::create_topic(&plain.client_config(), &inbound, 2, 1, &[]).expect("create (PLAINTEXT)");
    produce_sequence(
        &oauth.client_config(),
        &outbound,
        &SequenceSpec::new(2, 300),
    )
    .expect("produce over OAUTHBEARER");
    produce_sequence(&plain.client_config(), &inbound, &SequenceSpec::new(2, 200))
        .expect("produce over PLAINTEXT");

    let topology = dir.path().join("oidc.toml");
    std::fs::write(
        &topology,
        format!(
            r#"
[clusters.idp]
bootstrap_servers = "{}"
[clusters.idp.client]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "OAUTHBEARER"
"sasl.oauthbearer.method" = "oidc"
"sasl.oauthbearer.client.id" = "{}"
"sasl.oauthbearer.client.secret" = "${{file:{}}}"
"sasl.oauthbearer.token.endpoint.url" = "{endpoint}"

[clusters.plain]
bootstrap_servers = "{}"

[[flows]]
source = "idp"
target = "plain"
topics = ["{outbound}"]
refresh_interval = "2s"

[[flows]]
source = "plain"
target = "idp"
topics = ["{inbound}"]
refresh_interval = "2s"

[http]
listen = "127.0.0.1:0"
status_public = true   # the test reads /status to look for the secret
"#,
            oauth.bootstrap_servers(),
            oauth.oidc_client_id().expect("client id"),
            secret_file.display(),
            plain.bootstrap_servers(),
        ),
    )
    .unwrap();
    ferry_testkit::topology::give_own_group(&topology);

    let (code, out) = check_connect(&topology);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("connected: cluster idp"), "{out}");
    // The listener validates tokens: librdkafka's unsigned development token
    // for the same subject is refused.
    let mut unsigned = oauth.client_config();
    unsigned
        .set("sasl.oauthbearer.method", "default")
        .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
        .set("sasl.oauthbearer.config", "principal=ferry");
    let refused = ferry_testkit::kafka::probe(&unsigned, std::time::Duration::from_secs(5))
        .expect_err("the broker accepted an unsigned token")
        .to_string();
    assert!(refused.contains("SASL authentication error"), "{refused}");

    let issued_before = oauth.oidc_token_requests().expect("token endpoint").issued;
    let daemon = FERRY.start(&topology);
    let (outbound_copy, inbound_copy) = (format!("idp.{outbound}"), format!("plain.{inbound}"));
    wait_for(
        "both directions copied",
        std::time::Duration::from_secs(90),
        || {
            (try_total(plain, &outbound_copy).ok()? == 600
                && try_total(&oauth, &inbound_copy).ok()? == 400)
                .then_some(())
        },
    );
    // The secret is in none of what the daemon serves.
    for path in ["/status", "/metrics"] {
        let (status, body) = daemon.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !body.contains(&secret),
            "the OIDC client secret leaked into {path}"
        );
    }
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        !log.contains(&secret),
        "the OIDC client secret leaked into the log"
    );
    assert!(
        oauth.oidc_token_requests().expect("token endpoint").issued > issued_before,
        "Ferry fetched its tokens from the endpoint"
    );
    assert_same(&oauth, &outbound, plain, &outbound_copy, 600);
    assert_same(plain, &inbound, &oauth, &inbound_copy, 400);

    // A wrong secret: the token endpoint refuses it, and the error names the
    // cluster and the endpoint, never either secret.
    let refused_before = oauth.oidc_token_requests().expect("token endpoint").refused;
    write_secret(&secret_file, "wrong-oidc-sentinel-secret");
    let (code, out) = check_connect(&topology);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("error:") && l.contains("cluster idp"))
        .unwrap_or_else(|| panic!("no error naming cluster idp:\n{out}"));
    assert!(
        line.contains(endpoint),
        "token endpoint named: {line}\n{out}"
    );
    assert!(
        !out.contains("wrong-oidc-sentinel-secret") && !out.contains(&secret),
        "{out}"
    );
    assert!(
        oauth.oidc_token_requests().expect("token endpoint").refused > refused_before,
        "the endpoint saw and refused the wrong secret"
    );
}
