//! Broker failures under load: no acknowledged record is lost and
//! replication resumes by itself. Real Apache Kafka for a leader moving in a
//! three-broker target and for a whole target down for 20 s; librdkafka's
//! mock cluster for injected transport errors and leader changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferry_testkit::check::{total, try_total};
use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, Record, SequenceId, SequenceSpec};
use ferry_testkit::mock::MockKafka;
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared, KafkaCluster, KafkaOptions};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

/// Produces `batches` × 500 records per partition in the background, with a
/// pause between batches, so failures land under load.
fn background_load(
    config: rdkafka::ClientConfig,
    topic: String,
    partitions: i32,
    batches: u64,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for b in 0..batches {
            let mut spec = SequenceSpec::new(partitions, 500);
            spec.first_seq = b * 500;
            produce_sequence(&config, &topic, &spec).expect("produce");
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

/// The in-flight window of every flow here: small, so that the duplicates
/// at-least-once allows have a meaningful bound.
const WINDOW_BYTES: usize = 64 * 1024;

/// At least once, checked record by record: every source record is on the
/// target with the same key, value, headers and timestamp; nothing else is
/// there; and copies are duplicated only as far as `faults` re-sent
/// windows allow (each fault re-copies at most one window of unacknowledged
/// records).
fn assert_at_least_once(
    source: &ClientConfig,
    target: &ClientConfig,
    (src_topic, dst_topic): (&str, &str),
    expected: usize,
    faults: usize,
) {
    let source_records = data::read_topic(source, src_topic).expect("read the source");
    let target_records = data::read_topic(target, dst_topic).expect("read the target");
    assert_eq!(
        source_records.len(),
        target_records.len(),
        "partition counts"
    );
    let by_id: BTreeMap<SequenceId, &Record> = source_records
        .iter()
        .flatten()
        .map(|r| (r.sequence().expect("sequence record"), r))
        .collect();
    assert_eq!(by_id.len(), expected, "records produced");
    let mut copies: BTreeMap<SequenceId, usize> = BTreeMap::new();
    let (mut unexpected, mut mismatched) = (Vec::new(), Vec::new());
    for (partition, records) in target_records.iter().enumerate() {
        for r in records {
            match r.sequence().and_then(|id| Some((id, by_id.get(&id)?))) {
                Some((id, original)) if id.partition == partition as i32 => {
                    *copies.entry(id).or_default() += 1;
                    if let Some(diff) = original.content_diff(r) {
                        mismatched.push(format!("{id} at target offset {}: {diff}", r.offset));
                    }
                }
                _ => unexpected.push(format!("partition {partition} offset {}", r.offset)),
            }
        }
    }
    let missing = by_id.keys().filter(|id| !copies.contains_key(id)).count();
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    assert_eq!(missing, 0, "acknowledged records lost");
    assert!(
        unexpected.is_empty(),
        "records the source never had: {unexpected:?}"
    );
    assert!(
        mismatched.is_empty(),
        "records altered on the way: {mismatched:?}"
    );
    // Counting the smallest record makes the bound an upper one, whatever
    // overhead the window adds per record.
    let smallest = by_id
        .values()
        .map(|r| r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len))
        .min()
        .unwrap_or(1)
        .max(1);
    let bound = faults * WINDOW_BYTES / smallest;
    eprintln!("{duplicates} duplicate copies after {faults} faults (bound {bound})");
    assert!(
        duplicates <= bound,
        "{duplicates} duplicate copies exceed {faults} windows ({bound} records)"
    );
}

/// The records on `topic`, asserting that a fault is about to start mid-copy:
/// some, but not all, of the `expected` records are there.
fn copied_so_far(target: &KafkaCluster, topic: &str, expected: i64) -> i64 {
    let copied = total(target, topic);
    assert!(
        copied > 0 && copied < expected,
        "the fault must start mid-copy: {copied} of {expected} records copied"
    );
    copied
}

#[test]
fn a_killed_leader_in_a_three_broker_target_loses_nothing() {
    let source = shared().expect("source cluster");
    let target = KafkaOptions::new()
        .brokers(3)
        .start()
        .expect("three-broker target");
    let topic = unique_name("leaderkill");
    data::create_topic(&source.client_config(), &topic, 4, 1, &[]).expect("create");
    let load = background_load(source.client_config(), topic.clone(), 4, 20);
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        &target,
        &one_flow(&format!(
            "topics = [\"{topic}\"]\nreplication_factor = 3\nmax_in_flight_bytes = {WINDOW_BYTES}"
        )),
    );
    let daemon = FERRY.start(&topology);
    let remote = format!("src.{topic}");
    wait_for("copying to start", Duration::from_secs(60), || {
        (try_total(&target, &remote).ok()? > 1_000).then_some(())
    });
    copied_so_far(&target, &remote, 40_000);
    let leader = data::partition_leader(&target.client_config(), &remote, 0).expect("leader");
    target.kill_broker(leader).expect("kill the leader");
    std::thread::sleep(Duration::from_secs(8));
    target.start_broker(leader).expect("restart it");
    load.join().expect("load");
    wait_for("every record", Duration::from_secs(120), || {
        (try_total(&target, &remote).ok()? >= 40_000).then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    // The kill and the leader's return each move partition leadership.
    assert_at_least_once(
        &source.client_config(),
        &target.client_config(),
        (&topic, &remote),
        40_000,
        2,
    );
}

#[test]
fn a_target_down_for_20_seconds_resumes_by_itself() {
    let source = shared().expect("source cluster");
    let target = KafkaOptions::new().start().expect("dedicated target");
    let topic = unique_name("outage");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    let load = background_load(source.client_config(), topic.clone(), 2, 30);
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        &target,
        &one_flow(&format!(
            "topics = [\"{topic}\"]\nmax_in_flight_bytes = {WINDOW_BYTES}"
        )),
    );
    let daemon = FERRY.start(&topology);
    let remote = format!("src.{topic}");
    wait_for("copying to start", Duration::from_secs(60), || {
        (try_total(&target, &remote).ok()? > 500).then_some(())
    });
    copied_so_far(&target, &remote, 30_000);
    target.stop_broker(1).expect("stop the target");
    std::thread::sleep(Duration::from_secs(20));
    target.start_broker(1).expect("start it again");
    load.join().expect("load");
    wait_for("every record", Duration::from_secs(180), || {
        (try_total(&target, &remote).ok()? >= 30_000).then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    // The stop and the start.
    assert_at_least_once(
        &source.client_config(),
        &target.client_config(),
        (&topic, &remote),
        30_000,
        2,
    );
}

fn mock_topology(
    dir: &Path,
    source: &MockKafka,
    target: &MockKafka,
    topic: &str,
) -> std::path::PathBuf {
    let path = dir.join("mock.toml");
    std::fs::write(
        &path,
        format!(
            "[clusters.src]\nbootstrap_servers = \"{}\"\n[clusters.dst]\nbootstrap_servers = \"{}\"\n\
             [[flows]]\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"{topic}\"]\nsync_topic_configs = false\n\
             sync_group_offsets = false\nrefresh_interval = \"2s\"\nmax_in_flight_bytes = {WINDOW_BYTES}\n[http]\nlisten = \"127.0.0.1:0\"\n",
            source.bootstrap_servers(),
            target.bootstrap_servers()
        ),
    )
    .unwrap();
    path
}

#[test]
fn injected_transport_errors_and_leader_moves_on_the_mock_lose_nothing() {
    let source = MockKafka::start(3).expect("mock source");
    let target = MockKafka::start(3).expect("mock target");
    let topic = "orders";
    source.create_topic(topic, 4, 1).unwrap();
    // The mock lacks CreateTopics: create what Ferry would.
    target.create_topic("src.orders", 4, 1).unwrap();
    target
        .create_topic("ferry-progress.src.internal", 1, 1)
        .unwrap();
    target.create_topic("ferry-slots.src-dst", 16, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let daemon = FERRY.start(&mock_topology(dir.path(), &source, &target, topic));

    let target_cfg = target.client_config();
    let copied = || -> i64 {
        data::end_offsets(&target_cfg, "src.orders")
            .expect("end offsets of the mock target")
            .iter()
            .sum()
    };
    let mut produced = 0;
    for round in 0..6u64 {
        // Faults on both sides, queued before the round's records: the
        // mock fails the next requests, which are those copying them.
        // Round 0's faults can keep the first fetches back for a while on a
        // loaded machine; wait until copying runs rather than assume when.
        if round > 0 {
            wait_for(
                "the copy to run before the next faults",
                Duration::from_secs(60),
                || (copied() > 0).then_some(()),
            );
        }
        target.cluster().request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT; 3],
        );
        source.cluster().request_errors(
            RDKafkaApiKey::Fetch,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT; 3],
        );
        let p = (round % 4) as i32;
        target
            .cluster()
            .partition_leader("src.orders", p, Some(1 + (round % 3) as i32))
            .unwrap();
        source
            .cluster()
            .partition_leader(topic, p, Some(1 + ((round + 1) % 3) as i32))
            .unwrap();
        let mut spec = SequenceSpec::new(4, 500);
        spec.first_seq = round * 500;
        produce_sequence(&source.client_config(), topic, &spec).expect("produce to the mock");
        produced += 2_000;
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_for(
        "every record on the mock target",
        Duration::from_secs(120),
        || (copied() >= produced).then_some(()),
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    // One fault per round may re-send a window.
    assert_at_least_once(
        &source.client_config(),
        &target_cfg,
        (topic, "src.orders"),
        produced as usize,
        6,
    );
}

#[test]
fn an_authorization_error_on_one_topic_is_named_and_others_keep_flowing() {
    let source = MockKafka::start(1).expect("mock source");
    let target = MockKafka::start(1).expect("mock target");
    for t in ["locked", "open"] {
        source.create_topic(t, 2, 1).unwrap();
        target.create_topic(&format!("src.{t}"), 2, 1).unwrap();
    }
    target
        .create_topic("ferry-progress.src.internal", 1, 1)
        .unwrap();
    target.create_topic("ferry-slots.src-dst", 16, 1).unwrap();
    target
        .cluster()
        .topic_error(
            "src.locked",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topology = mock_topology(dir.path(), &source, &target, "locked|open");
    let daemon = FERRY.start(&topology);
    for t in ["locked", "open"] {
        produce_sequence(&source.client_config(), t, &SequenceSpec::new(2, 200)).expect("produce");
    }
    let target_cfg = target.client_config();
    wait_for("the open topic", Duration::from_secs(60), || {
        let n: i64 = data::end_offsets(&target_cfg, "src.open")
            .ok()?
            .iter()
            .sum();
        (n == 400).then_some(())
    });
    wait_for(
        "the error named in the log",
        Duration::from_secs(60),
        || {
            daemon
                .log()
                .lines()
                .any(|l| {
                    l.contains("cluster dst, topic src.locked")
                        && l.to_lowercase().contains("authoriz")
                })
                .then_some(())
        },
    );
    // Access granted again: the topic recovers by itself.
    target
        .cluster()
        .topic_error("src.locked", RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        .unwrap();
    wait_for(
        "the locked topic after access returns",
        Duration::from_secs(120),
        || {
            let n: i64 = data::end_offsets(&target_cfg, "src.locked")
                .ok()?
                .iter()
                .sum();
            (n >= 400).then_some(())
        },
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    // A refused record is not written, so nothing is copied twice.
    assert_at_least_once(
        &source.client_config(),
        &target_cfg,
        ("locked", "src.locked"),
        400,
        0,
    );
}
