//! Records the target refuses, and records larger than librdkafka's
//! defaults, against real Apache Kafka: a refused record stalls only its
//! partition and is never copied twice, big records are copied
//! byte-identical, and `on_record_error` skips or dead-letters what the
//! target still refuses.

mod common;

use std::time::Duration;

use common::*;
use ferry_testkit::data::{self, unique_name};
use ferry_testkit::{shared_pair, KafkaCluster};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const MIB: usize = 1024 * 1024;

/// A value of `len` bytes that starts with `tag`, then pseudo-random
/// bytes derived from it: the same for the same tag, and incompressible, so
/// that its size on the wire is its size (LZ4 would shrink a repeated byte
/// below any limit).
fn value(tag: &str, len: usize) -> Vec<u8> {
    let mut v = format!("{tag}:").into_bytes();
    let mut state = tag
        .bytes()
        .fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    while v.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v.extend_from_slice(&state.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The tags of the records' values (what `value` put before the colon).
fn tags(records: &[data::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            let v = r.value.as_deref().unwrap_or_default();
            let end = v.iter().position(|b| *b == b':').unwrap_or(0);
            String::from_utf8_lossy(&v[..end]).to_string()
        })
        .collect()
}

/// Produces `(partition, key, value)` in order, with one header each, and
/// waits for every acknowledgement. Big enough for records of several MiB.
fn produce(cluster: &KafkaCluster, topic: &str, records: &[(i32, &str, Vec<u8>)]) {
    let producer: BaseProducer = cluster
        .client_config()
        .set("message.max.bytes", "10000000")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for (partition, key, value) in records {
        let headers = OwnedHeaders::new().insert(Header {
            key: "origin",
            value: Some("test"),
        });
        producer
            .send(
                BaseRecord::<str, [u8]>::to(topic)
                    .partition(*partition)
                    .key(*key)
                    .payload(value.as_slice())
                    .headers(headers),
            )
            .map_err(|(e, _)| e)
            .expect("produce");
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// The records of one partition of `topic`, read to its end.
fn partition_records(cluster: &KafkaCluster, topic: &str, partition: i32) -> Vec<data::Record> {
    let mut config = cluster.client_config();
    config.set("fetch.message.max.bytes", "10000000");
    data::read_partition(&config, topic, partition, 0, None).expect("read partition")
}

fn status_json(daemon: &Daemon) -> serde_json::Value {
    let (code, body) = daemon.get("/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("status is JSON")
}

/// The `/status` entry of a source topic.
fn topic_status(daemon: &Daemon, topic: &str) -> Option<serde_json::Value> {
    status_json(daemon)["flows"][0]["topics"]
        .as_array()?
        .iter()
        .find(|t| t["topic"] == topic)
        .cloned()
}

fn restarts(daemon: &Daemon, topic: &str) -> u64 {
    topic_status(daemon, topic)
        .and_then(|t| t["restarts"].as_u64())
        .unwrap_or(0)
}

fn end_offset_sum(cluster: &KafkaCluster, topic: &str) -> i64 {
    data::end_offsets(&cluster.client_config(), topic)
        .map(|e| e.iter().sum())
        .unwrap_or(0)
}

/// Item: every retry of a stalled partition used to resume before records
/// the target had already acknowledged, copying them again.
#[test]
fn a_refused_record_stalls_only_its_partition_and_nothing_is_copied_twice() {
    let (source, target) = shared_pair().expect("test brokers start");
    let stalled = unique_name("stall");
    let other = unique_name("stall-other");
    let five_mib = (5 * MIB).to_string();
    data::create_topic(
        &source.client_config(),
        &stalled,
        2,
        1,
        &[("max.message.bytes", &five_mib)],
    )
    .unwrap();
    data::create_topic(&source.client_config(), &other, 1, 1, &[]).unwrap();
    // The target topic refuses anything over 1 MiB, and configs are not
    // synced: the 2 MiB record at offset 1 can never be copied.
    data::create_topic(
        &target.client_config(),
        &format!("src.{stalled}"),
        2,
        1,
        &[("max.message.bytes", "1048576")],
    )
    .unwrap();
    produce(
        source,
        &stalled,
        &[
            (0, "k0", value("p0-0", 100)),
            (0, "k1", value("p0-1", 2 * MIB)),
        ],
    );

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!(
            "topics = [\"{stalled}\", \"{other}\"]\nsync_topic_configs = false"
        )),
    );
    let daemon = start_daemon(&topology);
    wait_for("the first stall", Duration::from_secs(60), || {
        (restarts(&daemon, &stalled) >= 1).then_some(())
    });

    // While partition 0 is stalled, its sibling partition and another
    // topic keep copying.
    let sibling: Vec<_> = (0..50)
        .map(|i| (1, "s", value(&format!("p1-{i}"), 100)))
        .collect();
    produce(source, &stalled, &sibling);
    let others: Vec<_> = (0..50)
        .map(|i| (0, "o", value(&format!("o-{i}"), 100)))
        .collect();
    produce(source, &other, &others);
    wait_for(
        "the sibling partition and the other topic",
        Duration::from_secs(60),
        || {
            let sibling = partition_records(target, &format!("src.{stalled}"), 1).len();
            let other = end_offset_sum(target, &format!("src.{other}"));
            (sibling == 50 && other == 50).then_some(())
        },
    );

    // Several retries of the stalled partition.
    wait_for("three retries", Duration::from_secs(90), || {
        (restarts(&daemon, &stalled) >= 4).then_some(())
    });
    let status = topic_status(&daemon, &stalled).expect("topic in /status");
    let p0 = status["partition_status"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["partition"] == 0).cloned())
        .expect("partition 0 in /status");
    assert_eq!(
        p0["next_source_offset"], 1,
        "progress stops at the refused record: {status}"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!("cluster dst, topic src.{stalled}, partition 0"))
            && log.contains("offset 1"),
        "the error names cluster, topic, partition and offset:\n{log}"
    );

    let copies = partition_records(target, &format!("src.{stalled}"), 0);
    assert_eq!(tags(&copies), ["p0-0"], "offset 0 is on the target exactly once");
    assert!(copies[0].value == Some(value("p0-0", 100)));
    // Nothing the stall interrupted was copied twice elsewhere either.
    assert_eq!(
        partition_records(target, &format!("src.{stalled}"), 1).len(),
        50
    );
    assert_eq!(end_offset_sum(target, &format!("src.{other}")), 50);
}

/// Item: a 2 MiB record the source accepted stalled its partition forever
/// (the target producer kept librdkafka's 1,000,000-byte limit). Both for a
/// target topic Ferry creates and for one that already existed with the
/// broker's default limit, every record arrives byte-identical.
#[test]
fn records_over_a_megabyte_are_copied_byte_identical() {
    let (source, target) = shared_pair().expect("test brokers start");
    let created = unique_name("big-created");
    let existing = unique_name("big-existing");
    let five_mib = (5 * MIB).to_string();
    for t in [&created, &existing] {
        data::create_topic(
            &source.client_config(),
            t,
            1,
            1,
            &[("max.message.bytes", &five_mib)],
        )
        .unwrap();
        produce(
            source,
            t,
            &[
                (0, "a", value("small-1", 100)),
                (0, "b", value("big", 2 * MIB)),
                (0, "c", value("small-2", 100)),
            ],
        );
    }
    // Pre-created with the broker's defaults (about 1 MiB).
    data::create_topic(
        &target.client_config(),
        &format!("src.{existing}"),
        1,
        1,
        &[],
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{created}\", \"{existing}\"]")),
    );
    let daemon = start_daemon(&topology);
    wait_for("all six records", Duration::from_secs(90), || {
        (end_offset_sum(target, &format!("src.{created}")) == 3
            && end_offset_sum(target, &format!("src.{existing}")) == 3)
            .then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    for t in [&created, &existing] {
        assert_same(source, t, target, &format!("src.{t}"), 3);
        assert_eq!(
            topic_overrides(target, &format!("src.{t}")).get("max.message.bytes"),
            Some(&five_mib),
            "the target topic takes what the source takes"
        );
    }
}
