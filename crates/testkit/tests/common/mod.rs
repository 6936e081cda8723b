//! Checks that several test binaries share.

use ferry_testkit::data::{self, SequenceSpec};
use rdkafka::config::ClientConfig;

/// Creates a topic, produces a sequence with tombstones and null keys, reads
/// every partition back and expects exactly what was produced.
pub fn round_trip(config: &ClientConfig, replication: i32) {
    let topic = data::unique_name("round-trip");
    data::create_topic(config, &topic, 2, replication, &[]).unwrap();
    let spec = SequenceSpec {
        tombstone_every: 5,
        ..SequenceSpec::new(2, 30)
    };
    let produced = data::produce_sequence(config, &topic, &spec).unwrap();
    assert_eq!(produced.len(), 60);
    for partition in 0..2 {
        let read = data::read_partition(config, &topic, partition, 0, None).unwrap();
        let expected: Vec<_> = produced
            .iter()
            .filter(|r| r.partition == partition)
            .cloned()
            .collect();
        assert_eq!(read, expected, "partition {partition} of {topic}");
    }
    let report = data::compare_partitions(config, &topic, config, &topic).unwrap();
    assert!(report.is_match(), "{report}");
}
