//! Comparing a topic with its replica.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rdkafka::config::ClientConfig;

use super::{read_topic, Record, SequenceId};
use crate::error::Result;

/// How one partition of a replica differs from its source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionReport {
    pub partition: i32,
    pub source_count: usize,
    pub target_count: usize,
    /// Sequence records in the source that the target lacks.
    pub missing: Vec<SequenceId>,
    /// Sequence records the target holds more than once (each listed once).
    pub duplicates: Vec<SequenceId>,
    /// Sequence records in the target that this source partition lacks
    /// (e.g. records that went to the wrong partition).
    pub unexpected: Vec<SequenceId>,
    /// The first position whose records differ in key, value, headers or
    /// timestamp, described; or where one side ends before the other.
    pub first_mismatch: Option<String>,
}

impl PartitionReport {
    /// Whether the target partition holds exactly the source's records, in
    /// the same order.
    pub fn is_match(&self) -> bool {
        self.first_mismatch.is_none()
            && self.source_count == self.target_count
            && self.missing.is_empty()
            && self.duplicates.is_empty()
            && self.unexpected.is_empty()
    }
}

/// The result of [`compare_partitions`]. Its `Display` is written for a
/// failing assertion: `assert!(report.is_match(), "{report}")`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompareReport {
    pub source_partitions: usize,
    pub target_partitions: usize,
    pub partitions: Vec<PartitionReport>,
}

impl CompareReport {
    /// Whether both topics have the same partitions with the same records.
    pub fn is_match(&self) -> bool {
        self.source_partitions == self.target_partitions
            && self.partitions.iter().all(PartitionReport::is_match)
    }

    /// Records in the source, over all partitions.
    pub fn source_count(&self) -> usize {
        self.partitions.iter().map(|p| p.source_count).sum()
    }

    /// Records in the target, over all partitions.
    pub fn target_count(&self) -> usize {
        self.partitions.iter().map(|p| p.target_count).sum()
    }
}

impl fmt::Display for CompareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_match() {
            return write!(
                f,
                "topics match: {} partitions, {} records",
                self.source_partitions,
                self.source_count()
            );
        }
        write!(
            f,
            "topics differ: source has {} partitions and {} records, target {} and {}",
            self.source_partitions,
            self.source_count(),
            self.target_partitions,
            self.target_count()
        )?;
        for p in self.partitions.iter().filter(|p| !p.is_match()) {
            write!(
                f,
                "\n  partition {}: {} records in source, {} in target",
                p.partition, p.source_count, p.target_count
            )?;
            for (label, ids) in [
                ("missing", &p.missing),
                ("duplicated", &p.duplicates),
                ("unexpected", &p.unexpected),
            ] {
                if !ids.is_empty() {
                    write!(f, "; {} {label}: {}", ids.len(), show_ids(ids))?;
                }
            }
            if let Some(mismatch) = &p.first_mismatch {
                write!(f, "; first mismatch {mismatch}")?;
            }
        }
        Ok(())
    }
}

fn show_ids(ids: &[SequenceId]) -> String {
    const SHOWN: usize = 10;
    let mut text: Vec<String> = ids.iter().take(SHOWN).map(ToString::to_string).collect();
    if ids.len() > SHOWN {
        text.push("...".into());
    }
    text.join(" ")
}

/// Reads both topics to their current ends and compares them partition by
/// partition. To wait for a replica to catch up first, read it up to the
/// source's [`end_offsets`](super::end_offsets).
pub fn compare_partitions(
    source_config: &ClientConfig,
    source_topic: &str,
    target_config: &ClientConfig,
    target_topic: &str,
) -> Result<CompareReport> {
    let source = read_topic(source_config, source_topic)?;
    let target = read_topic(target_config, target_topic)?;
    let partitions = (0..source.len().max(target.len()))
        .map(|p| {
            let source = source.get(p).map(Vec::as_slice).unwrap_or_default();
            let target = target.get(p).map(Vec::as_slice).unwrap_or_default();
            compare_records(p as i32, source, target)
        })
        .collect();
    Ok(CompareReport {
        source_partitions: source.len(),
        target_partitions: target.len(),
        partitions,
    })
}

/// Compares one partition's records, read from source and target.
pub fn compare_records(partition: i32, source: &[Record], target: &[Record]) -> PartitionReport {
    let source_ids: BTreeSet<SequenceId> = source.iter().filter_map(Record::sequence).collect();
    let mut target_counts: BTreeMap<SequenceId, usize> = BTreeMap::new();
    for id in target.iter().filter_map(Record::sequence) {
        *target_counts.entry(id).or_default() += 1;
    }
    let first_mismatch = source
        .iter()
        .zip(target)
        .enumerate()
        .find_map(|(i, (s, t))| {
            s.content_diff(t).map(|diff| {
                format!(
                    "at index {i} (source offset {}, target offset {}): {diff}",
                    s.offset, t.offset
                )
            })
        })
        .or_else(|| {
            let common = source.len().min(target.len());
            let (longer, side) = match source.len() > target.len() {
                true => (source, "target ends"),
                false => (target, "source ends"),
            };
            longer.get(common).map(|extra| {
                format!(
                    "at index {common}: {side} before offset {} ({:?})",
                    extra.offset,
                    extra.sequence()
                )
            })
        });
    PartitionReport {
        partition,
        source_count: source.len(),
        target_count: target.len(),
        missing: source_ids
            .iter()
            .filter(|id| !target_counts.contains_key(id))
            .copied()
            .collect(),
        duplicates: target_counts
            .iter()
            .filter(|(_, &n)| n > 1)
            .map(|(id, _)| *id)
            .collect(),
        unexpected: target_counts
            .keys()
            .filter(|id| !source_ids.contains(id))
            .copied()
            .collect(),
        first_mismatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SequenceSpec;

    fn partition(spec: &SequenceSpec, p: i32) -> Vec<Record> {
        let mut records: Vec<Record> = spec
            .records()
            .into_iter()
            .filter(|r| r.partition == p)
            .collect();
        for (offset, r) in records.iter_mut().enumerate() {
            r.offset = offset as i64;
        }
        records
    }

    #[test]
    fn identical_partitions_match() {
        let spec = SequenceSpec::new(2, 5);
        let records = partition(&spec, 1);
        let report = compare_records(1, &records, &records);
        assert!(report.is_match(), "{report:?}");
    }

    #[test]
    fn missing_duplicate_and_altered_records_are_reported() {
        let spec = SequenceSpec::new(1, 6);
        let source = partition(&spec, 0);
        let mut target = source.clone();
        target.remove(2); // s2 missing
        target.push(source[4].clone()); // s4 twice
        target[0].headers.swap(1, 2); // header order changed
        let report = compare_records(0, &source, &target);
        assert!(!report.is_match());
        let ids = |seqs: &[u64]| {
            seqs.iter()
                .map(|&seq| SequenceId { partition: 0, seq })
                .collect::<Vec<_>>()
        };
        assert_eq!(report.missing, ids(&[2]));
        assert_eq!(report.duplicates, ids(&[4]));
        assert!(report.unexpected.is_empty());
        let mismatch = report.first_mismatch.unwrap();
        assert!(
            mismatch.starts_with("at index 0") && mismatch.contains("headers"),
            "{mismatch}"
        );
    }

    #[test]
    fn a_short_target_is_reported_where_it_ends() {
        let spec = SequenceSpec::new(1, 3);
        let source = partition(&spec, 0);
        let report = compare_records(0, &source, &source[..2]);
        let mismatch = report.first_mismatch.unwrap();
        assert!(
            mismatch.contains("target ends before offset 2"),
            "{mismatch}"
        );

        let full = CompareReport {
            source_partitions: 1,
            target_partitions: 1,
            partitions: vec![compare_records(0, &source, &source[..2])],
        };
        let text = full.to_string();
        assert!(text.contains("1 missing: p0:s2"), "{text}");
    }
}
