//! `ferry import-mm2` as operators run it: realistic MirrorMaker 2 files
//! translate with exit 0, every untranslatable property is named on stderr,
//! no secret is printed, and the topology written passes the real `ferry
//! check` (and, on librdkafka's mock clusters, `ferry check --connect`,
//! which hands every translated client property to librdkafka). Bad input
//! exits 2 naming the file, the line and the property.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testkit::mock::MockKafka;

/// Every secret in the fixtures contains this.
const SECRET_MARK: &str = "5ecret";

fn ferry(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("ferry binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mm2-import/tests/fixtures")
        .join(name)
}

/// The environment variables `import-mm2` asks for on stderr
/// (`note: set NAME to …`), each with a value `ferry check` accepts.
fn requested_env(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("note: set "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, _)| {
            let value = if name.ends_with("_AWS_REGION") {
                "us-east-1"
            } else {
                "from-the-environment"
            };
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// Imports a fixture to a file, checks it with `ferry check`, and returns
/// import's stderr.
fn import_and_check(name: &str, dir: &Path) -> String {
    let out_file = dir.join(format!("{name}.toml"));
    let out = ferry(
        &[
            "import-mm2",
            fixture(name).to_str().unwrap(),
            "-o",
            out_file.to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{name}:\n{stderr}");
    assert!(stdout.is_empty(), "-o writes nothing to stdout: {stdout}");
    let topology = std::fs::read_to_string(&out_file).unwrap();
    for output in [&stderr, &topology] {
        assert!(!output.contains(SECRET_MARK), "{name}:\n{output}");
    }
    // The same text as on stdout.
    let out = ferry(&["import-mm2", fixture(name).to_str().unwrap()], &[]);
    assert_eq!(text(&out).0, topology);

    let env = requested_env(&stderr);
    let out = ferry(&["check", "-c", out_file.to_str().unwrap()], &env);
    let (check_out, check_err) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: ferry check refused the translation:\n{check_err}\n{topology}"
    );
    assert!(!check_out.contains(SECRET_MARK) && !check_err.contains(SECRET_MARK));
    stderr
}

fn assert_warns(stderr: &str, file: &str, line: usize, property: &str) {
    let located = format!("{file}:{line}: {property}: ");
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains(&located)),
        "no warning for {located} in:\n{stderr}"
    );
}

#[test]
fn strimzi_style_file_translates_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = import_and_check("strimzi.properties", dir.path());
    for (line, property) in [
        (12, "source.ssl.truststore.location"),
        (13, "source.ssl.truststore.password"),
        (33, "offset-syncs.topic.replication.factor"),
        (36, "sync.topic.acls.enabled"),
        (47, "tasks.max"),
        (50, "key.converter"),
        (54, "target.status.storage.replication.factor"),
    ] {
        assert_warns(&stderr, "strimzi.properties", line, property);
    }
    for var in [
        "FERRY_SOURCE_SASL_PASSWORD",
        "FERRY_TARGET_SSL_KEYSTORE_PASSWORD",
        "FERRY_TARGET_SSL_KEY_PASSWORD",
    ] {
        assert!(stderr.contains(&format!("note: set {var} to ")), "{stderr}");
    }
}

#[test]
fn msk_migration_translates_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = import_and_check("msk-migration.properties", dir.path());
    assert_warns(
        &stderr,
        "msk-migration.properties",
        14,
        "onprem.consumer.max.poll.records",
    );
    assert_warns(
        &stderr,
        "msk-migration.properties",
        23,
        "msk.producer.max.request.size",
    );
    assert_warns(&stderr, "msk-migration.properties", 37, "tasks.max");
    let topology =
        std::fs::read_to_string(dir.path().join("msk-migration.properties.toml")).unwrap();
    assert!(
        topology.contains("aws_msk_iam = { region = 'eu-west-1', profile = 'replication' }"),
        "{topology}"
    );
    assert!(topology.contains("topic_naming = 'identity'"));
    assert!(topology.contains("sync_group_offsets = true"));
}

#[test]
fn active_active_translates_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = import_and_check("active-active.properties", dir.path());
    assert!(
        !stderr.contains("warning:"),
        "everything translates:\n{stderr}"
    );
    let topology =
        std::fs::read_to_string(dir.path().join("active-active.properties.toml")).unwrap();
    assert_eq!(
        topology.matches("topic_naming = 'identity'").count(),
        2,
        "{topology}"
    );
}

#[test]
fn custom_separator_is_written_as_the_flow_key_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = import_and_check("custom-separator.properties", dir.path());
    let stdout =
        std::fs::read_to_string(dir.path().join("custom-separator.properties.toml")).unwrap();
    assert!(stdout.contains("# from custom-separator.properties:8 replication.policy.separator\ntopic_separator = '_'\n"), "{stdout}");
    assert_warns(
        &stderr,
        "custom-separator.properties",
        9,
        "topic.filter.class",
    );
}

/// Every Java client property the translation maps reaches librdkafka under
/// a name and with a value it takes: `ferry check --connect` builds the
/// clients with them and connects to two mock clusters.
#[test]
fn translated_client_properties_are_accepted_by_librdkafka() {
    let (a, b) = (MockKafka::start(1).unwrap(), MockKafka::start(1).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mm2 = dir.path().join("mm2.properties");
    std::fs::write(
        &mm2,
        format!(
            "clusters = a, b\n\
             a.bootstrap.servers = {}\n\
             b.bootstrap.servers = {}\n\
             a->b.enabled = true\n\
             security.protocol = PLAINTEXT\n\
             ssl.endpoint.identification.algorithm =\n\
             sasl.kerberos.service.name = kafka\n\
             sasl.kerberos.min.time.before.relogin = 60000\n\
             admin.client.rack = rack-a\n\
             admin.connections.max.idle.ms = 540000\n\
             admin.metadata.max.age.ms = 300000\n\
             admin.reconnect.backoff.ms = 50\n\
             admin.reconnect.backoff.max.ms = 1000\n\
             admin.socket.connection.setup.timeout.ms = 10000\n\
             admin.receive.buffer.bytes = 65536\n\
             admin.send.buffer.bytes = 131072\n\
             b.producer.acks = all\n\
             b.producer.linger.ms = 5\n\
             b.producer.batch.size = 100000\n\
             b.producer.compression.type = lz4\n\
             b.producer.request.timeout.ms = 30000\n\
             b.producer.retries = 5\n\
             b.producer.retry.backoff.ms = 100\n\
             b.producer.retry.backoff.max.ms = 1000\n\
             b.producer.max.in.flight.requests.per.connection = 5\n\
             b.producer.delivery.timeout.ms = 120000\n\
             b.producer.transaction.timeout.ms = 60000\n\
             b.producer.buffer.memory = 33554432\n\
             a.consumer.fetch.min.bytes = 1\n\
             a.consumer.fetch.max.bytes = 52428800\n\
             a.consumer.max.partition.fetch.bytes = 1048576\n\
             a.consumer.fetch.max.wait.ms = 500\n\
             a.consumer.session.timeout.ms = 45000\n\
             a.consumer.heartbeat.interval.ms = 3000\n\
             a.consumer.max.poll.interval.ms = 300000\n\
             a.consumer.auto.offset.reset = latest\n",
            a.bootstrap_servers(),
            b.bootstrap_servers()
        ),
    )
    .unwrap();
    let topology = dir.path().join("topology.toml");
    let out = ferry(
        &[
            "import-mm2",
            mm2.to_str().unwrap(),
            "-o",
            topology.to_str().unwrap(),
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("warning:"),
        "every property translates:\n{stderr}"
    );
    let written = std::fs::read_to_string(&topology).unwrap();
    assert!(
        written.contains("\"fetch.wait.max.ms\" = '500'"),
        "{written}"
    );
    assert!(
        written.contains("\"queue.buffering.max.kbytes\" = '32768'"),
        "{written}"
    );
    assert!(written.contains("start_from = 'latest'"), "{written}");

    let out = ferry(
        &[
            "check",
            "-c",
            topology.to_str().unwrap(),
            "--connect",
            "--timeout",
            "5s",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}\n{written}");
    assert!(
        stdout.contains("connected: cluster a") && stdout.contains("connected: cluster b"),
        "{stdout}"
    );
}

#[test]
fn bad_input_exits_2_naming_file_line_and_property() {
    let dir = tempfile::tempdir().unwrap();
    let header = "clusters = a, b\na.bootstrap.servers = a1:9092\nb.bootstrap.servers = b1:9092\na->b.enabled = true\n";
    let cases = [
        ("no-separator", format!("{header}a.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required password=\"pw-5ecret\";\nstray-line\n"), ":6: stray-line: no \"=\""),
        ("unknown-alias", format!("{header}a->c.enabled = true\n"), ":5: a->c.enabled: unknown cluster alias \"c\""),
        ("bad-regex", format!("{header}a->b.topics = orders, (unclosed\n"), ":5: a->b.topics: invalid regex \"(unclosed\""),
        ("bad-jaas", format!("{header}b.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required password=\"pw-5ecret\"\n"), ":5: b.sasl.jaas.config: cannot read the JAAS configuration"),
    ];
    for (name, content, expected) in cases {
        let file = dir.path().join(format!("{name}.properties"));
        std::fs::write(&file, content).unwrap();
        let out = ferry(&["import-mm2", file.to_str().unwrap()], &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stdout.is_empty(),
            "{name}: no topology on bad input: {stdout}"
        );
        let located = format!("error: {}{expected}", file.display());
        assert!(
            stderr.contains(&located),
            "{name}: expected `{located}` in:\n{stderr}"
        );
        assert!(!stderr.contains(SECRET_MARK), "{name}: {stderr}");
    }
    let missing = dir.path().join("absent.properties");
    let out = ferry(&["import-mm2", missing.to_str().unwrap()], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {}", missing.display())),
        "{stderr}"
    );
    assert_eq!(
        ferry(&["import-mm2"], &[]).status.code(),
        Some(2),
        "no file named"
    );
}

/// A translated topology runs: `ferry run --until caught-up` copies the
/// topics its filters select between two mock clusters, under MirrorMaker
/// 2's prefix naming, record for record.
#[test]
fn translated_topology_replicates_between_mock_clusters() {
    use ferry_testkit::data::{self, SequenceSpec};

    let (a, b) = (MockKafka::start(1).unwrap(), MockKafka::start(1).unwrap());
    a.create_topic("orders", 2, 1).unwrap();
    // The mock has no CreateTopics: create what Ferry would on the target.
    b.create_topic("a.orders", 2, 1).unwrap();
    b.create_topic("ferry-progress.a.internal", 1, 1).unwrap();
    b.create_topic("ferry-slots.a-b", 16, 1).unwrap();
    for internal in ["mm2-offset-syncs.a.internal", "heartbeats"] {
        b.create_topic(internal, 1, 1).unwrap();
    }
    let produced = data::produce_sequence(&a.client_config(), "orders", &SequenceSpec::new(2, 200))
        .expect("produce to the mock source");

    let dir = tempfile::tempdir().unwrap();
    let mm2 = dir.path().join("mm2.properties");
    std::fs::write(
        &mm2,
        format!(
            "clusters = a, b\n\
             a.bootstrap.servers = {}\n\
             b.bootstrap.servers = {}\n\
             a->b.enabled = true\n\
             a->b.topics = orders, payments-.*\n\
             # The mock has no DescribeConfigs or ListGroups.\n\
             sync.topic.configs.enabled = false\n\
             emit.checkpoints.enabled = false\n\
             refresh.topics.interval.seconds = 2\n",
            a.bootstrap_servers(),
            b.bootstrap_servers()
        ),
    )
    .unwrap();
    let topology = dir.path().join("topology.toml");
    let out = ferry(
        &[
            "import-mm2",
            mm2.to_str().unwrap(),
            "-o",
            topology.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let out = ferry(
        &[
            "run",
            "-c",
            topology.to_str().unwrap(),
            "--until",
            "caught-up",
            "--http-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let (_, log) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");

    let copied: Vec<_> = data::read_topic(&b.client_config(), "a.orders")
        .expect("read the mock target")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(copied.len(), produced.len(), "{log}");
    for record in &produced {
        assert!(
            copied.iter().any(|c| c.content_diff(record).is_none()),
            "record {:?} not copied",
            record.sequence()
        );
    }
}
