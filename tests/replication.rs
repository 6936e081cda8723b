//! The replication engine end to end, against real Apache Kafka: the real
//! `ferry` binary copies between two single-node clusters, and the target is
//! compared with the source record for record (key, value, headers in order,
//! timestamp, partition).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::data::{self, compare_partitions, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::{shared_pair, KafkaCluster};

/// A topology for one flow between the shared clusters.
fn write_topology(
    dir: &Path,
    source: &KafkaCluster,
    target: &KafkaCluster,
    flow_extra: &str,
) -> PathBuf {
    let path = dir.join("topology.toml");
    let text = format!(
        r#"
[clusters.src]
bootstrap_servers = "{}"
[clusters.dst]
bootstrap_servers = "{}"

[[flows]]
source = "src"
target = "dst"
refresh_interval = "2s"
{flow_extra}

[log]
level = "info"
"#,
        source.bootstrap_servers(),
        target.bootstrap_servers()
    );
    std::fs::write(&path, text).expect("write topology");
    path
}

fn ferry(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `ferry run --until caught-up` and returns its output, failing the
/// test with the daemon's log if it does not exit 0.
fn run_until_caught_up(topology: &Path) -> String {
    let out = ferry(&[
        "run",
        "-c",
        topology.to_str().unwrap(),
        "--until",
        "caught-up",
    ])
    .output()
    .expect("ferry runs");
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "ferry run --until caught-up failed:\n{log}"
    );
    log
}

fn assert_same(
    source: &KafkaCluster,
    src_topic: &str,
    target: &KafkaCluster,
    dst_topic: &str,
    expected: usize,
) {
    let report = compare_partitions(
        &source.client_config(),
        src_topic,
        &target.client_config(),
        dst_topic,
    )
    .expect("compare");
    assert!(
        report.is_match(),
        "{src_topic} -> {dst_topic} differs:\n{report}"
    );
    assert_eq!(report.source_count(), expected);
    assert_eq!(report.target_count(), expected);
}

#[test]
fn copies_every_record_faithfully_partition_by_partition() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("fidelity");
    let topics: Vec<String> = (0..3).map(|i| format!("{prefix}-{i}")).collect();
    // 3 topics × 4 partitions × 8,334 records ≈ 100,000 records, with
    // headers (including a repeated name and a null value), null keys,
    // tombstones and explicit CreateTime timestamps.
    let mut spec = SequenceSpec::new(4, 8_334);
    spec.tombstone_every = 7;
    spec.null_key_every = 5;
    for t in &topics {
        data::create_topic(&source.client_config(), t, 4, 1, &[]).expect("create source topic");
        produce_sequence(&source.client_config(), t, &spec).expect("produce");
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &format!("topics = [\"{prefix}-.*\"]"),
    );
    run_until_caught_up(&topology);
    for t in &topics {
        assert_same(source, t, target, &format!("src.{t}"), 4 * 8_334);
        assert_eq!(
            data::partition_count(&target.client_config(), &format!("src.{t}")).unwrap(),
            4
        );
    }
    // A second bounded run finds nothing new to copy: progress was saved.
    run_until_caught_up(&topology);
    for t in &topics {
        assert_same(source, t, target, &format!("src.{t}"), 4 * 8_334);
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sigterm(child: &Child) {
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0, "SIGTERM delivered");
}

#[test]
fn sigterm_under_load_then_restart_loses_nothing_and_duplicates_nothing() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("sigterm");
    data::create_topic(&source.client_config(), &topic, 4, 1, &[]).expect("create");
    let mut spec = SequenceSpec::new(4, 25_000);
    spec.value_padding = 200;
    produce_sequence(&source.client_config(), &topic, &spec).expect("produce");

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &format!("topics = [\"{topic}\"]"),
    );
    // Tied to this test process: it cannot outlive a failed test.
    let child = ferry_testkit::proc::spawn_tied(ferry(&["run", "-c", topology.to_str().unwrap()]))
        .expect("start ferry");
    let remote = format!("src.{topic}");
    // Stop it mid-copy: once some, but not all, records have arrived.
    wait_for("replication to start", Duration::from_secs(60), || {
        let ends = data::end_offsets(&target.client_config(), &remote).ok()?;
        (ends.iter().sum::<i64>() > 0).then_some(())
    });
    sigterm(&child);
    let out = child.wait_with_output().expect("ferry exits");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "graceful stop exits 0:\n{log}");
    let copied: i64 = data::end_offsets(&target.client_config(), &remote)
        .unwrap()
        .iter()
        .sum();
    assert!(
        copied < 100_000,
        "the stop should land mid-copy (copied {copied}); make the data larger"
    );

    // More traffic while stopped, then resume to the end.
    spec.first_seq = 25_000;
    spec.records_per_partition = 5_000;
    produce_sequence(&source.client_config(), &topic, &spec).expect("produce more");
    run_until_caught_up(&topology);
    assert_same(source, &topic, target, &remote, 4 * 30_000);
}
