//! TLS and SASL/SCRAM end to end against Apache Kafka: Ferry replicates from
//! a cluster with a TLS listener (certificate generated at test time,
//! verified through the CA named in the topology) to a cluster with a
//! SCRAM-SHA-512 listener whose password Ferry reads from `${file:…}`. A
//! wrong password or an untrusted certificate fails with an error naming the
//! cluster, and never the secret.

mod common;

use std::path::Path;

use common::*;
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::{KafkaCluster, KafkaOptions};

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
    let out = ferry(&["check", "-c", topology.to_str().unwrap(), "--connect"])
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

    let log = run_until_caught_up(&good);
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
