//! The shared single-node clusters and the data helpers against them.

mod common;

use std::time::Duration;

use ferry_testkit::data::{self, SequenceSpec};
use ferry_testkit::kafka::probe;
use ferry_testkit::{shared, shared_pair};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[test]
fn produced_sequence_reads_back_exactly() {
    let cluster = shared().unwrap();
    let config = cluster.client_config();
    let topic = data::unique_name("exact");
    data::create_topic(&config, &topic, 3, 1, &[("cleanup.policy", "delete")]).unwrap();
    let spec = SequenceSpec {
        tombstone_every: 4,
        value_padding: 100,
        ..SequenceSpec::new(3, 40)
    };
    let produced = data::produce_sequence(&config, &topic, &spec).unwrap();
    assert_eq!(produced.len(), 120);
    assert_eq!(
        data::end_offsets(&config, &topic).unwrap(),
        vec![40, 40, 40]
    );

    let read = data::read_partition(&config, &topic, 1, 0, None).unwrap();
    assert_eq!(read.len(), 40);
    for (seq, record) in read.iter().enumerate() {
        // Everything replication must preserve survives the broker: null
        // keys, tombstones, repeated, empty and null headers, timestamps.
        let mut expected = spec.record(1, seq as u64);
        expected.offset = seq as i64;
        assert_eq!(record, &expected);
    }
    assert!(read.iter().any(|r| r.key.is_none()));
    assert!(read.iter().any(|r| r.value.is_none()));

    // A sub-range.
    let middle = data::read_partition(&config, &topic, 2, 10, Some(15)).unwrap();
    let offsets: Vec<i64> = middle.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [10, 11, 12, 13, 14]);

    let report = data::compare_partitions(&config, &topic, &config, &topic).unwrap();
    assert!(report.is_match(), "{report}");
    assert_eq!(report.source_count(), 120);
}

/// Produces one record outside any sequence spec.
fn produce_raw(config: &ClientConfig, topic: &str, key: &[u8], value: &[u8], timestamp: i64) {
    let producer: BaseProducer = config.create().unwrap();
    let headers = OwnedHeaders::new().insert(Header {
        key: "ferry-seq",
        value: Some("7"),
    });
    producer
        .send(
            BaseRecord::to(topic)
                .partition(0)
                .key(key)
                .payload(value)
                .timestamp(timestamp)
                .headers(headers),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn compare_detects_an_altered_and_a_missing_record() {
    let config = shared().unwrap().client_config();
    let spec = SequenceSpec::new(1, 20);
    let first = SequenceSpec {
        records_per_partition: 7,
        ..spec.clone()
    };
    let rest = SequenceSpec {
        first_seq: 8,
        records_per_partition: 12,
        ..spec.clone()
    };
    let [source, altered, gap] = ["source", "altered", "gap"].map(data::unique_name);
    for topic in [&source, &altered, &gap] {
        data::create_topic(&config, topic, 1, 1, &[]).unwrap();
    }
    data::produce_sequence(&config, &source, &spec).unwrap();

    // "altered": seq 7 carries another value.
    data::produce_sequence(&config, &altered, &first).unwrap();
    let original = spec.record(0, 7);
    let ts = original.timestamp.to_millis().unwrap();
    produce_raw(
        &config,
        &altered,
        original.key.as_deref().unwrap(),
        b"p0:s7:tampered",
        ts,
    );
    data::produce_sequence(&config, &altered, &rest).unwrap();

    let report = data::compare_partitions(&config, &source, &config, &altered).unwrap();
    assert!(!report.is_match(), "{report}");
    let p0 = &report.partitions[0];
    assert_eq!((p0.source_count, p0.target_count), (20, 20));
    assert!(
        p0.missing.is_empty() && p0.duplicates.is_empty(),
        "{report}"
    );
    let mismatch = p0.first_mismatch.as_deref().unwrap();
    assert!(
        mismatch.starts_with("at index 7") && mismatch.contains("value"),
        "{mismatch}"
    );

    // "gap": seq 7 never produced.
    data::produce_sequence(&config, &gap, &first).unwrap();
    data::produce_sequence(&config, &gap, &rest).unwrap();
    let report = data::compare_partitions(&config, &source, &config, &gap).unwrap();
    assert!(!report.is_match());
    let missing: Vec<String> = report.partitions[0]
        .missing
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(missing, ["p0:s7"], "{report}");
    assert!(report.to_string().contains("1 missing: p0:s7"), "{report}");
}

#[test]
fn shared_pair_gives_two_clusters_that_compare_across() {
    let (source, target) = shared_pair().unwrap();
    assert_ne!(source.bootstrap_servers(), target.bootstrap_servers());
    // shared() is the source of the pair.
    assert_eq!(
        shared().unwrap().bootstrap_servers(),
        source.bootstrap_servers()
    );

    let (source, target) = (source.client_config(), target.client_config());
    let topic = data::unique_name("pair");
    let spec = SequenceSpec::new(2, 25);
    for config in [&source, &target] {
        data::create_topic(config, &topic, 2, 1, &[]).unwrap();
        data::produce_sequence(config, &topic, &spec).unwrap();
    }
    let report = data::compare_partitions(&source, &topic, &target, &topic).unwrap();
    assert!(report.is_match(), "{report}");
}

#[test]
fn partitions_can_be_added_and_their_leaders_found() {
    let config = shared().unwrap().client_config();
    let topic = data::unique_name("grow");
    data::create_topic(&config, &topic, 1, 1, &[]).unwrap();
    data::add_partitions(&config, &topic, 3).unwrap();
    assert_eq!(data::partition_count(&config, &topic).unwrap(), 3);
    assert_eq!(data::end_offsets(&config, &topic).unwrap(), vec![0, 0, 0]);
    let leader = data::partition_leader(&config, &topic, 2).unwrap();
    assert!(leader >= 1, "{leader}");
    let err = data::partition_leader(&config, &data::unique_name("absent"), 0).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn read_partition_waits_for_records_that_are_still_coming() {
    let config = shared().unwrap().client_config();
    let topic = data::unique_name("late");
    data::create_topic(&config, &topic, 1, 1, &[]).unwrap();
    let spec = SequenceSpec::new(1, 10);
    let writer = {
        let (config, topic, spec) = (config.clone(), topic.clone(), spec.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            data::produce_sequence(&config, &topic, &spec).unwrap()
        })
    };
    let read = data::read_partition(&config, &topic, 0, 0, Some(10)).unwrap();
    assert_eq!(read, writer.join().unwrap());
}

#[test]
fn probe_explains_an_unreachable_cluster() {
    // Port 1 on loopback: nothing listens there.
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", "127.0.0.1:1");
    let err = probe(&config, Duration::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("last client error"), "{err}");
}

#[tokio::test]
async fn helpers_work_from_async_tests() {
    // Blocking helpers run on a blocking thread, leaving the runtime free
    // for whatever else the test runs (e.g. Ferry itself).
    let produced = tokio::task::spawn_blocking(|| {
        let config = shared().unwrap().client_config();
        let topic = data::unique_name("async");
        data::create_topic(&config, &topic, 1, 1, &[]).unwrap();
        data::produce_sequence(&config, &topic, &SequenceSpec::new(1, 5)).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(produced.len(), 5);
    // Or directly, when nothing else needs the runtime meanwhile.
    common::round_trip(&shared().unwrap().client_config(), 1);
}
