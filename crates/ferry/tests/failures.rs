//! Broker failures under load: no acknowledged record is lost and
//! replication resumes by itself. Real Apache Kafka for a leader moving in a
//! three-broker target and for a whole target down for 20 s; librdkafka's
//! mock cluster for injected transport errors and leader changes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::mock::MockKafka;
use ferry_testkit::{shared, KafkaOptions};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

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

fn assert_nothing_lost(report: &ferry_testkit::data::CompareReport, expected: usize) {
    let missing: usize = report.partitions.iter().map(|p| p.missing.len()).sum();
    let duplicates: usize = report.partitions.iter().map(|p| p.duplicates.len()).sum();
    assert_eq!(report.source_count(), expected);
    assert_eq!(missing, 0, "acknowledged records lost:\n{report}");
    eprintln!("duplicates: {duplicates}");
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
        &one_flow(&format!("topics = [\"{topic}\"]\nreplication_factor = 3")),
    );
    let daemon = start_daemon(&topology);
    let remote = format!("src.{topic}");
    wait_for("copying to start", Duration::from_secs(60), || {
        (total(&target, &remote) > 1_000).then_some(())
    });
    let leader = data::partition_leader(&target.client_config(), &remote, 0).expect("leader");
    target.kill_broker(leader).expect("kill the leader");
    std::thread::sleep(Duration::from_secs(8));
    target.start_broker(leader).expect("restart it");
    load.join().expect("load");
    wait_for("every record", Duration::from_secs(120), || {
        (total(&target, &remote) >= 40_000).then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_nothing_lost(&compare(source, &topic, &target, &remote), 40_000);
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
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    let daemon = start_daemon(&topology);
    let remote = format!("src.{topic}");
    wait_for("copying to start", Duration::from_secs(60), || {
        (total(&target, &remote) > 500).then_some(())
    });
    target.stop_broker(1).expect("stop the target");
    std::thread::sleep(Duration::from_secs(20));
    target.start_broker(1).expect("start it again");
    load.join().expect("load");
    wait_for("every record", Duration::from_secs(180), || {
        (total(&target, &remote) >= 30_000).then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_nothing_lost(&compare(source, &topic, &target, &remote), 30_000);
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
             sync_group_offsets = false\nrefresh_interval = \"2s\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
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
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(&mock_topology(dir.path(), &source, &target, topic));

    let mut produced = 0;
    for round in 0..6u64 {
        let mut spec = SequenceSpec::new(4, 500);
        spec.first_seq = round * 500;
        produce_sequence(&source.client_config(), topic, &spec).expect("produce to the mock");
        produced += 2_000;
        // Faults on both sides while records flow.
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
        std::thread::sleep(Duration::from_millis(500));
    }
    let target_cfg = target.client_config();
    wait_for(
        "every record on the mock target",
        Duration::from_secs(120),
        || {
            let n: i64 = data::end_offsets(&target_cfg, "src.orders")
                .ok()?
                .iter()
                .sum();
            (n >= produced).then_some(())
        },
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let report = data::compare_partitions(
        &source.client_config(),
        topic,
        &target.client_config(),
        "src.orders",
    )
    .expect("compare");
    assert_nothing_lost(&report, produced as usize);
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
    target
        .cluster()
        .topic_error(
            "src.locked",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topology = mock_topology(dir.path(), &source, &target, "locked|open");
    let daemon = start_daemon(&topology);
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
    let report =
        data::compare_partitions(&source.client_config(), "locked", &target_cfg, "src.locked")
            .expect("compare");
    assert_nothing_lost(&report, 400);
}
