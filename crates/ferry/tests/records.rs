//! Records the target refuses, and records larger than librdkafka's
//! defaults, against real Apache Kafka: a refused record stalls only its
//! partition and is never copied twice, big records are copied
//! byte-identical, and `on_record_error` skips or dead-letters what the
//! target still refuses.

mod common;

use std::time::Duration;

use common::*;
use ferry_testkit::check::{assert_same, total, try_total};
use ferry_testkit::daemon::{stop_daemon, wait_for, Daemon, Ferry};
use ferry_testkit::data::{self, unique_name};
use ferry_testkit::inspect::topic_overrides;
use ferry_testkit::scrape::metric;
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

const MIB: usize = 1024 * 1024;

/// A value of `len` bytes that starts with `tag`, then pseudo-random
/// bytes derived from it: the same for the same tag, and incompressible, so
/// that its size on the wire is its size (LZ4 would shrink a repeated byte
/// below any limit).
fn value(tag: &str, len: usize) -> Vec<u8> {
    let mut v = format!("{tag}:").into_bytes();
    let mut state = tag.bytes().fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
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

/// Creates `topic` with two partitions on the source, taking records up to
/// 5 MiB, and its target topic `src.<topic>` refusing anything over 1 MiB.
fn source_over_a_smaller_target(source: &KafkaCluster, target: &KafkaCluster, topic: &str) {
    let five_mib = (5 * MIB).to_string();
    for (cluster, name, limit) in [
        (source, topic.to_string(), five_mib.as_str()),
        (target, format!("src.{topic}"), "1048576"),
    ] {
        data::create_topic(
            &cluster.client_config(),
            &name,
            2,
            1,
            &[("max.message.bytes", limit)],
        )
        .unwrap();
    }
}

/// A retried stalled partition resumes after the records the target already
/// acknowledged, so none is copied twice.
#[test]
fn a_refused_record_stalls_only_its_partition_and_nothing_is_copied_twice() {
    let (source, target) = shared_pair().expect("test brokers start");
    let stalled = unique_name("stall");
    let other = unique_name("stall-other");
    // Configs are not synced: the 2 MiB record at offset 1 can never be
    // copied.
    source_over_a_smaller_target(source, target, &stalled);
    data::create_topic(&source.client_config(), &other, 1, 1, &[]).unwrap();
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
    let daemon = FERRY.start(&topology);
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
            let other = try_total(target, &format!("src.{other}")).ok()?;
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
    assert_eq!(
        tags(&copies),
        ["p0-0"],
        "offset 0 is on the target exactly once"
    );
    assert!(copies[0].value == Some(value("p0-0", 100)));
    // Nothing the stall interrupted was copied twice elsewhere either.
    assert_eq!(
        partition_records(target, &format!("src.{stalled}"), 1).len(),
        50
    );
    assert_eq!(total(target, &format!("src.{other}")), 50);
}

/// A 2 MiB record the source accepted is copied, though librdkafka's own
/// producer limit is 1,000,000 bytes. Both for a target topic Ferry creates
/// and for one that already existed with the broker's default limit, every
/// record arrives byte-identical.
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
    let daemon = FERRY.start(&topology);
    wait_for("all six records", Duration::from_secs(90), || {
        (try_total(target, &format!("src.{created}")).ok()? == 3
            && try_total(target, &format!("src.{existing}")).ok()? == 3)
            .then_some(())
    });
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    for t in [&created, &existing] {
        assert_same(source, t, target, &format!("src.{t}"), 3);
        assert_eq!(
            topic_overrides(&target.client_config(), &format!("src.{t}"))
                .expect("describe configs")
                .get("max.message.bytes"),
            Some(&five_mib),
            "the target topic takes what the source takes"
        );
    }
}

/// What `on_record_error` left on the target for one refused record.
struct Refused {
    topic: String,
    target_p0: Vec<data::Record>,
    status: serde_json::Value,
    metrics: String,
    log: String,
}

/// A source topic taking 5 MiB records, its target topic pre-created with a
/// 1 MiB limit and configs not synced, so the target refuses the 2 MiB
/// record at partition 0, offset 1. Runs the flow with `policy` until both
/// partitions are through.
fn refused_record_under(policy: &str) -> Refused {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("refused");
    source_over_a_smaller_target(source, target, &topic);
    produce(
        source,
        &topic,
        &[
            (0, "a", value("a", 100)),
            (0, "b", value("b", 2 * MIB)),
            (0, "c", value("c", 100)),
            (1, "d", value("d", 100)),
            (1, "e", value("e", 100)),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!(
            "topics = [\"{topic}\"]\nsync_topic_configs = false\n{policy}"
        )),
    );
    let daemon = FERRY.start(&topology);
    let remote = format!("src.{topic}");
    wait_for("both partitions through", Duration::from_secs(60), || {
        let p0 = status_partition(&daemon, &topic, 0)?;
        let p1 = status_partition(&daemon, &topic, 1)?;
        (p0["next_source_offset"] == 3 && p1["next_source_offset"] == 2).then_some(())
    });
    let status = topic_status(&daemon, &topic).expect("topic in /status");
    let (_, metrics) = daemon.get("/metrics");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(partition_records(target, &remote, 1).len(), 2);
    Refused {
        target_p0: partition_records(target, &remote, 0),
        topic,
        status,
        metrics,
        log,
    }
}

fn status_partition(daemon: &Daemon, topic: &str, partition: i32) -> Option<serde_json::Value> {
    topic_status(daemon, topic)?["partition_status"]
        .as_array()?
        .iter()
        .find(|p| p["partition"] == partition)
        .cloned()
}

/// The refused record is counted, shown and logged; the records around it
/// are on the target once each.
fn assert_resolved(refused: &Refused) {
    assert_eq!(tags(&refused.target_p0), ["a", "c"]);
    assert!(refused.target_p0[0].value == Some(value("a", 100)));
    assert!(refused.target_p0[1].value == Some(value("c", 100)));
    let p0 = refused.status["partition_status"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["partition"] == 0))
        .expect("partition 0 in /status");
    assert_eq!(p0["records_skipped"], 1, "{}", refused.status);
    assert_eq!(p0["last_skipped_offset"], 1, "{}", refused.status);
    assert_eq!(refused.status["records_skipped"], 1, "{}", refused.status);
    let series = format!(
        "ferry_records_skipped_total{{flow=\"src->dst\",topic=\"{}\",reason=\"too_large\"}}",
        refused.topic
    );
    assert_eq!(
        metric(&refused.metrics, &series),
        Some(1.0),
        "{series} in:\n{}",
        refused.metrics
    );
    assert!(
        refused
            .log
            .lines()
            .any(|l| l.contains("resolved by on_record_error")
                && l.contains(&format!("topic={}", refused.topic))
                && l.contains("partition=0")
                && l.contains("offset=1")),
        "the refused record is logged with topic, partition and offset:\n{}",
        refused.log
    );
}

#[test]
fn skip_leaves_out_only_the_refused_record() {
    let refused = refused_record_under("on_record_error = \"skip\"");
    assert_resolved(&refused);
    assert!(refused.log.contains("action=\"skip\"") || refused.log.contains("action=skip"));
}

#[test]
fn dead_letter_writes_the_refused_record_with_its_origin() {
    let dlq = unique_name("dlq");
    let refused = refused_record_under(&format!(
        "on_record_error = \"dead-letter\"\ndead_letter_topic = \"{dlq}\""
    ));
    assert_resolved(&refused);
    let (_, target) = shared_pair().expect("test brokers start");
    let letters = partition_records(target, &dlq, 0);
    assert_eq!(letters.len(), 1, "one dead letter");
    let letter = &letters[0];
    assert_eq!(letter.key.as_deref(), Some(&b"b"[..]));
    assert!(
        letter.value == Some(value("b", 2 * MIB)),
        "the value, byte for byte"
    );
    let header = |name: &str| {
        letter
            .headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8_lossy(&v).to_string())
    };
    assert_eq!(header("origin").as_deref(), Some("test"), "its own headers");
    assert_eq!(header("ferry.source.cluster").as_deref(), Some("src"));
    assert_eq!(header("ferry.source.topic"), Some(refused.topic.clone()));
    assert_eq!(header("ferry.source.partition").as_deref(), Some("0"));
    assert_eq!(header("ferry.source.offset").as_deref(), Some("1"));
    let error = header("ferry.error").expect("ferry.error header");
    assert!(error.to_lowercase().contains("too large"), "{error}");
}
