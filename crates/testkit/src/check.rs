//! Assertions over what a replica holds: record-for-record comparison with
//! the source, record counts, and exactly-once checks on sequence records.
//!
//! A read that fails fails the test with its cause: no helper here turns an
//! error into "nothing", which would let a check for nothing pass.

use std::collections::BTreeSet;

use crate::data::{self, CompareReport, Record, SequenceId};
use crate::KafkaCluster;

/// Compares `src_topic` on `source` with `dst_topic` on `target`, partition
/// by partition.
pub fn compare(
    source: &KafkaCluster,
    src_topic: &str,
    target: &KafkaCluster,
    dst_topic: &str,
) -> CompareReport {
    data::compare_partitions(
        &source.client_config(),
        src_topic,
        &target.client_config(),
        dst_topic,
    )
    .unwrap_or_else(|e| panic!("comparing {src_topic} with {dst_topic}: {e}"))
}

/// The target topic equals the source topic record for record, and both
/// hold `expected` records.
pub fn assert_same(
    source: &KafkaCluster,
    src_topic: &str,
    target: &KafkaCluster,
    dst_topic: &str,
    expected: usize,
) {
    let report = compare(source, src_topic, target, dst_topic);
    assert!(
        report.is_match(),
        "{src_topic} -> {dst_topic} differs:\n{report}"
    );
    assert_eq!(report.source_count(), expected);
    assert_eq!(report.target_count(), expected);
}

/// Total records in a topic: the sum of its end offsets (test topics are
/// never truncated). An error, including "no such topic", is an `Err`.
pub fn try_total(cluster: &KafkaCluster, topic: &str) -> crate::Result<i64> {
    data::end_offsets(&cluster.client_config(), topic).map(|ends| ends.iter().sum())
}

/// [`try_total`] that fails the test on an error; while waiting for a topic
/// to appear, poll with `try_total(..).ok()?` instead.
pub fn total(cluster: &KafkaCluster, topic: &str) -> i64 {
    try_total(cluster, topic).unwrap_or_else(|e| panic!("counting the records of {topic}: {e}"))
}

/// The sequence ids of the sequence records among `records`.
pub fn sequences(records: &[Record]) -> Vec<SequenceId> {
    records.iter().filter_map(Record::sequence).collect()
}

/// The sequence ids of every sequence record in a topic, partition by
/// partition.
pub fn all_sequences(cluster: &KafkaCluster, topic: &str) -> Vec<SequenceId> {
    data::read_topic(&cluster.client_config(), topic)
        .unwrap_or_else(|e| panic!("reading {topic}: {e}"))
        .iter()
        .flatten()
        .filter_map(Record::sequence)
        .collect()
}

/// Asserts that `got` (e.g. what a failed-over consumer read) is exactly
/// `expected`: no duplicate, nothing missing, nothing else.
pub fn assert_exactly(what: &str, got: &[SequenceId], expected: &BTreeSet<SequenceId>) {
    let mut seen = BTreeSet::new();
    let duplicates: Vec<_> = got.iter().filter(|s| !seen.insert(**s)).collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    let unexpected: Vec<_> = seen.difference(expected).collect();
    assert!(
        duplicates.is_empty() && missing.is_empty() && unexpected.is_empty(),
        "{what}: {} duplicates {:?}..., {} missing {:?}..., {} unexpected {:?}...",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)],
        missing.len(),
        &missing[..missing.len().min(5)],
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)],
    );
}
