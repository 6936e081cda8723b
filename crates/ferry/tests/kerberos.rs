//! Kerberos (SASL GSSAPI) end to end: an MIT KDC that the harness starts and
//! provisions with keytabs, an Apache Kafka cluster whose client listener
//! authenticates with GSSAPI, and the real `ferry` binary copying records
//! from it to a PLAINTEXT cluster and back. The keytab's contents never show
//! up in Ferry's output, and a principal the KDC does not know fails
//! `ferry check --connect` with an error naming the cluster.
//!
//! Needs Debian's krb5-kdc, krb5-admin-server and krb5-user (scripts/test.sh
//! installs them); without them the test fails saying which is missing.

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use ferry_testkit::check::assert_same;
use ferry_testkit::daemon::Ferry;
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::{KafkaCluster, KafkaOptions, KdcServer};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

/// Topics: `krb -> plain` copies `topics.0`, `plain -> krb` copies `topics.1`.
fn topology(
    dir: &Path,
    krb: &KafkaCluster,
    principal: &str,
    plain: &KafkaCluster,
    topics: (&str, &str),
) -> String {
    let keytab = krb.kerberos_keytab().expect("client keytab");
    let path = dir.join(format!(
        "kerberos-{}.toml",
        principal.replace(['@', '/'], "_")
    ));
    std::fs::write(
        &path,
        format!(
            r#"
[clusters.krb]
bootstrap_servers = "{}"
[clusters.krb.client]
"security.protocol" = "SASL_PLAINTEXT"
"sasl.mechanism" = "GSSAPI"
"sasl.kerberos.service.name" = "kafka"
"sasl.kerberos.principal" = "{principal}"
"sasl.kerberos.keytab" = "{}"

[clusters.plain]
bootstrap_servers = "{}"

[[flows]]
source = "krb"
target = "plain"
topics = ["{}"]

[[flows]]
source = "plain"
target = "krb"
topics = ["{}"]

[http]
listen = "127.0.0.1:0"
"#,
            krb.bootstrap_servers(),
            keytab.display(),
            plain.bootstrap_servers(),
            topics.0,
            topics.1,
        ),
    )
    .expect("write topology");
    path.to_str().unwrap().to_string()
}

/// Runs `ferry` as a Kerberos client of `kdc`, with a credential cache of
/// its own (so no ticket from another run can stand in for a failed kinit).
fn ferry_with_kdc(kdc: &KdcServer, dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let ccache = dir.join(format!("ccache-{}", unique_name("ferry")));
    let out: Output = FERRY
        .command(args)
        .envs(kdc.client_env(&ccache))
        .env("RUST_LOG", "debug")
        .output()
        .expect("ferry runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all)
}

/// Fails if any part of the keytab shows in `output`: its base64 lines, its
/// hex, or any 12-byte run of its raw bytes.
fn assert_no_keytab_material(keytab: &[u8], output: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(keytab);
    for line in encoded.as_bytes().chunks(64) {
        let line = std::str::from_utf8(line).unwrap();
        assert!(!output.contains(line), "keytab base64 {line} leaked");
    }
    let hex: String = keytab.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!output.to_lowercase().contains(&hex), "keytab hex leaked");
    for window in keytab.windows(12) {
        assert!(
            !output.as_bytes().windows(window.len()).any(|w| w == window),
            "raw keytab bytes {window:?} leaked"
        );
    }
}

#[test]
fn replicates_between_a_kerberos_cluster_and_a_plaintext_one() {
    // No KDC, no test: this fails with the reason (missing package, krb5kdc
    // log), it never skips.
    let kdc = KdcServer::start().unwrap_or_else(|e| panic!("cannot start the Kerberos KDC: {e}"));
    // Before any Kafka client exists: the harness's own clients authenticate.
    kdc.export_client_env();
    let (krb, plain) = std::thread::scope(|s| {
        let plain = s.spawn(|| KafkaOptions::new().start().expect("plaintext cluster"));
        let krb = KafkaOptions::new()
            .kerberos(&kdc)
            .start()
            .unwrap_or_else(|e| panic!("Kerberos cluster: {e}\nKDC log:\n{}", kdc.log()));
        (krb, plain.join().expect("plaintext thread"))
    });
    let principal = krb.kerberos_principal().expect("principal").to_string();
    let keytab = std::fs::read(krb.kerberos_keytab().unwrap()).expect("read keytab");
    assert!(
        keytab.len() > 40,
        "a keytab with keys: {} bytes",
        keytab.len()
    );

    let topic_in = unique_name("krb-in");
    let topic_out = unique_name("krb-out");
    data::create_topic(&krb.client_config(), &topic_in, 2, 1, &[]).expect("create over GSSAPI");
    produce_sequence(&krb.client_config(), &topic_in, &SequenceSpec::new(2, 300))
        .expect("produce over GSSAPI");
    data::create_topic(&plain.client_config(), &topic_out, 2, 1, &[]).expect("create");
    produce_sequence(
        &plain.client_config(),
        &topic_out,
        &SequenceSpec::new(2, 200),
    )
    .expect("produce");

    let dir = tempfile::tempdir().unwrap();
    let topics = (topic_in.as_str(), topic_out.as_str());
    let good = topology(dir.path(), &krb, &principal, &plain, topics);

    let (code, check) = ferry_with_kdc(&kdc, dir.path(), &["check", "-c", &good, "--connect"]);
    assert_eq!(code, Some(0), "{check}\nKDC log:\n{}", kdc.log());
    assert!(check.contains("connected: cluster krb"), "{check}");

    let (code, log) = ferry_with_kdc(
        &kdc,
        dir.path(),
        &["run", "-c", &good, "--until", "caught-up"],
    );
    assert_eq!(code, Some(0), "ferry run failed:\n{log}");
    assert_same(&krb, &topic_in, &plain, &format!("krb.{topic_in}"), 600);
    assert_same(&plain, &topic_out, &krb, &format!("plain.{topic_out}"), 400);

    assert_no_keytab_material(&keytab, &check);
    assert_no_keytab_material(&keytab, &log);

    // A principal the KDC does not know: kinit fails, so does authentication,
    // and the error names the cluster.
    let wrong = topology(dir.path(), &krb, "nobody@FERRY.TEST", &plain, topics);
    let (code, out) = ferry_with_kdc(&kdc, dir.path(), &["check", "-c", &wrong, "--connect"]);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("error:") && l.contains("cluster krb"))
        .unwrap_or_else(|| panic!("no error naming cluster krb:\n{out}"));
    assert!(
        out.contains("connected: cluster plain"),
        "only the Kerberos cluster fails: {out}"
    );
    assert!(
        line.contains("Kerberos") && line.contains("nobody@FERRY.TEST"),
        "cause named: {line}"
    );
    assert_no_keytab_material(&keytab, &out);
}
