//! The start-position phase: where each partition of a topic would start,
//! by the engine's own rule (`ferry_supervisor::start`), and the backlog
//! in records from there.

use std::collections::HashMap;

use crate::offsets_report::OffsetRow;
use ferry_admin::Watermarks;
use ferry_config::{Flow, StartFrom};
use ferry_supervisor::start;

use super::inventory::{Remembered, SourceTopic};
use super::{PartitionBacklog, Warning, WarningKind};

/// The smallest offset any group committed on a source partition, and the
/// groups at it (what `start_from = "unconsumed"` starts from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconsumed {
    pub offset: i64,
    /// In name order.
    pub groups: Vec<String>,
}

/// [`Unconsumed`] per source partition, from the groups' committed offsets.
pub fn unconsumed(rows: &[OffsetRow]) -> HashMap<(String, i32), Unconsumed> {
    let mut smallest: HashMap<(String, i32), Unconsumed> = HashMap::new();
    for r in rows {
        let e = smallest
            .entry((r.topic.clone(), r.partition))
            .or_insert(Unconsumed {
                offset: r.source_offset,
                groups: Vec::new(),
            });
        if r.source_offset < e.offset {
            *e = Unconsumed {
                offset: r.source_offset,
                groups: Vec::new(),
            };
        }
        if r.source_offset == e.offset {
            e.groups.push(r.group.clone());
        }
    }
    for u in smallest.values_mut() {
        u.groups.sort();
    }
    smallest
}

/// The start of every partition of one topic, and the warnings about
/// positions that no longer fit the source log.
#[derive(Debug, Clone)]
pub struct StartPositions {
    /// One per partition, in partition order; bytes are still 0.
    pub partitions: Vec<PartitionBacklog>,
    pub warnings: Vec<Warning>,
}

/// What the start-position phase reads about one topic.
#[derive(Debug, Clone, Copy)]
pub struct StartInputs<'a> {
    pub remembered: &'a Remembered,
    /// Source watermarks per partition (a partition missing reads as
    /// empty).
    pub marks: &'a HashMap<(String, i32), Watermarks>,
    /// For `start_from = timestamp`: the first offset at or after it, per
    /// partition (`None`: no such record).
    pub timestamps: &'a HashMap<i32, Option<i64>>,
    pub unconsumed: &'a HashMap<(String, i32), Unconsumed>,
}

/// Where each partition of `topic` starts: saved progress, else where
/// MirrorMaker 2 stopped, else the flow's `start_from`.
pub fn start_positions(flow: &Flow, topic: &SourceTopic, inputs: StartInputs) -> StartPositions {
    let mut partitions = Vec::new();
    let mut warnings = Vec::new();
    for p in 0..topic.partitions {
        let key = (topic.name.clone(), p);
        let Watermarks { low, high } = inputs
            .marks
            .get(&key)
            .copied()
            .unwrap_or(Watermarks { low: 0, high: 0 });
        let mut groups = Vec::new();
        let origin = match start::Origin::remembered(
            inputs.remembered.saved.get(&key).copied(),
            inputs.remembered.handover.get(&key).copied(),
        ) {
            Some(origin) => origin,
            None => start::Origin::Policy(match flow.start_from {
                StartFrom::Earliest => start::Policy::Earliest,
                StartFrom::Latest => start::Policy::Latest,
                StartFrom::Timestamp(_) => start::Policy::Timestamp {
                    found: inputs.timestamps.get(&p).copied().flatten(),
                },
                StartFrom::Unconsumed => start::Policy::Unconsumed {
                    committed: inputs.unconsumed.get(&key).map(|u| {
                        groups = u.groups.clone();
                        u.offset
                    }),
                    fallback: flow.unconsumed_fallback,
                },
            }),
        };
        let decision = start::decide(origin, low, high);
        if let Some(w) = decision.warning {
            warnings.push(Warning {
                kind: match w {
                    start::Warning::DeletedBeforeCopy { .. } => WarningKind::DeletedBeforeCopy,
                    start::Warning::BeyondLogEnd { .. } => WarningKind::ProgressBeyondLogEnd,
                },
                message: w.describe(&flow.source, &topic.name, p, decision.reason),
            });
        }
        let held = decision.is_held();
        let start = match (decision.start, origin) {
            (Some(o), _) => o,
            (None, start::Origin::Progress(o) | start::Origin::Handover(o)) => o,
            (None, start::Origin::Policy(_)) => high,
        };
        partitions.push(PartitionBacklog {
            partition: p,
            log_start: low,
            end: high,
            start,
            from: decision.reason,
            held,
            records: if held {
                0
            } else {
                (high - start).max(0) as u64
            },
            bytes: 0,
            groups,
        });
    }
    StartPositions {
        partitions,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::flow;
    use super::super::StartReason;
    use super::*;
    use ferry_checkpoint::Translation;

    fn row(group: &str, partition: i32, offset: i64) -> OffsetRow {
        OffsetRow {
            group: group.into(),
            topic: "orders".into(),
            partition,
            remote_topic: "a.orders".into(),
            source_offset: offset,
            translated: Translation::Unknown,
            checkpoint: None,
            target_offset: None,
        }
    }

    fn marks(parts: &[(i32, i64, i64)]) -> HashMap<(String, i32), Watermarks> {
        parts
            .iter()
            .map(|&(p, low, high)| (("orders".to_string(), p), Watermarks { low, high }))
            .collect()
    }

    fn orders(partitions: i32) -> SourceTopic {
        SourceTopic {
            name: "orders".into(),
            partitions,
        }
    }

    #[test]
    fn unconsumed_keeps_the_smallest_offset_and_every_group_at_it() {
        let u = unconsumed(&[
            row("late", 0, 30),
            row("b", 0, 10),
            row("a", 0, 10),
            row("only", 1, 5),
        ]);
        assert_eq!(
            u[&("orders".to_string(), 0)],
            Unconsumed {
                offset: 10,
                groups: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(u[&("orders".to_string(), 1)].offset, 5);
    }

    #[test]
    fn saved_progress_wins_over_start_from_and_the_rest_follows_policy() {
        let f = flow("start_from = \"unconsumed\"\nunconsumed_fallback = \"latest\"");
        let remembered = Remembered {
            saved: HashMap::from([(("orders".to_string(), 0), 7)]),
            handover: HashMap::new(),
        };
        let marks = marks(&[(0, 0, 10), (1, 0, 20), (2, 5, 9)]);
        let u = unconsumed(&[row("g", 1, 12)]);
        let s = start_positions(
            &f,
            &orders(3),
            StartInputs {
                remembered: &remembered,
                marks: &marks,
                timestamps: &HashMap::new(),
                unconsumed: &u,
            },
        );
        assert!(s.warnings.is_empty());
        let got: Vec<(i64, StartReason, u64, Vec<String>)> = s
            .partitions
            .iter()
            .map(|b| (b.start, b.from, b.records, b.groups.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (7, StartReason::Progress, 3, vec![]),
                (12, StartReason::Unconsumed, 8, vec!["g".to_string()]),
                (9, StartReason::FallbackLatest, 0, vec![]),
            ]
        );
    }

    #[test]
    fn progress_past_the_log_end_holds_the_partition_with_a_warning() {
        let f = flow("");
        let remembered = Remembered {
            saved: HashMap::from([
                (("orders".to_string(), 0), 50),
                (("orders".to_string(), 1), 2),
            ]),
            handover: HashMap::new(),
        };
        let marks = marks(&[(0, 0, 10), (1, 5, 10)]);
        let s = start_positions(
            &f,
            &orders(2),
            StartInputs {
                remembered: &remembered,
                marks: &marks,
                timestamps: &HashMap::new(),
                unconsumed: &HashMap::new(),
            },
        );
        let held = &s.partitions[0];
        assert!(held.held);
        assert_eq!((held.start, held.records), (50, 0));
        let behind = &s.partitions[1];
        assert_eq!((behind.start, behind.records), (5, 5));
        let kinds: Vec<WarningKind> = s.warnings.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            vec![
                WarningKind::ProgressBeyondLogEnd,
                WarningKind::DeletedBeforeCopy
            ]
        );
    }

    #[test]
    fn a_timestamp_start_uses_the_offset_found_for_it() {
        let f = flow("start_from = \"2024-01-01T00:00:00Z\"");
        let marks = marks(&[(0, 0, 10)]);
        let s = start_positions(
            &f,
            &orders(1),
            StartInputs {
                remembered: &Remembered::default(),
                marks: &marks,
                timestamps: &HashMap::from([(0, Some(4))]),
                unconsumed: &HashMap::new(),
            },
        );
        let b = &s.partitions[0];
        assert_eq!((b.start, b.from, b.records), (4, StartReason::Timestamp, 6));
    }
}
