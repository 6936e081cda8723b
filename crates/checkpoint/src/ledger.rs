//! Which checkpoints to write: the last checkpoint per (group, remote topic,
//! partition) and the rule that decides whether a new translation is worth
//! a record.
//!
//! # The rule ([`CheckpointLedger::decide`])
//! For a group's committed source offset `U` and its translation:
//! - `Unknown` translations are never written (we refuse rather than guess).
//! - The first checkpoint of a key is written.
//! - A checkpoint is written when the downstream offset **advances** past the
//!   last one written.
//! - It is **not** written when the downstream offset would move backwards
//!   while `U` did not: that happens after a restart, when the rebuilt map
//!   only knows a conservative answer for an offset it translated exactly
//!   before. Keeping the older, higher checkpoint is right: it was true and
//!   still is. This is what makes checkpoints monotonic across restarts (the
//!   ledger is loaded from the checkpoints topic at start).
//! - The one exception, as in MirrorMaker 2: when the source group itself
//!   moved back (`U` below the last checkpoint's upstream offset, an
//!   operator reset the group to re-read), the lower checkpoint is written,
//!   so a consumer that fails over re-reads what the group chose to re-read.
//!   Group offset sync still never moves a target group backwards.
//! - Otherwise (same downstream offset) nothing is written: the translated
//!   offset did not change.

use std::collections::HashMap;

use crate::offset_map::Translation;
use crate::wire::Checkpoint;

/// Identifies a checkpoint record: the compaction key of the checkpoints
/// topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointKey {
    pub group: String,
    /// The remote (target-side) topic name.
    pub topic: String,
    pub partition: i32,
}

/// Offsets of the last checkpoint written for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub upstream: i64,
    pub downstream: i64,
}

/// What to do with one translated group offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write a checkpoint with this downstream offset.
    Emit { downstream: i64 },
    /// Nothing new: the downstream offset did not change.
    Unchanged,
    /// The translation is below the last checkpoint although the group did
    /// not move back (a conservative answer after a restart): keep the last.
    WouldRewind { last: Written },
    /// Translation refused.
    Unknown,
}

/// The last checkpoint per key. Load it from the checkpoints topic at start
/// ([`CheckpointLedger::load`]), then [`decide`](CheckpointLedger::decide)
/// and, once the write is acknowledged, [`commit`](CheckpointLedger::commit).
#[derive(Debug, Clone, Default)]
pub struct CheckpointLedger {
    last: HashMap<CheckpointKey, Written>,
}

impl CheckpointLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a checkpoint read from the topic (in topic order: the last one
    /// per key wins, as compaction would have it).
    pub fn load(&mut self, cp: &Checkpoint) {
        self.last.insert(
            CheckpointKey {
                group: cp.group.clone(),
                topic: cp.topic.clone(),
                partition: cp.partition,
            },
            Written {
                upstream: cp.upstream_offset,
                downstream: cp.downstream_offset,
            },
        );
    }

    /// See the [module docs](self) for the rule.
    pub fn decide(&self, key: &CheckpointKey, upstream: i64, translation: Translation) -> Decision {
        let Some(downstream) = translation.offset() else {
            return Decision::Unknown;
        };
        match self.last.get(key) {
            None => Decision::Emit { downstream },
            Some(last) if upstream < last.upstream && downstream != last.downstream => {
                Decision::Emit { downstream }
            }
            Some(last) if downstream > last.downstream => Decision::Emit { downstream },
            Some(last) if downstream < last.downstream => Decision::WouldRewind { last: *last },
            Some(_) => Decision::Unchanged,
        }
    }

    /// Records a checkpoint as written.
    pub fn commit(&mut self, key: CheckpointKey, upstream: i64, downstream: i64) {
        self.last.insert(
            key,
            Written {
                upstream,
                downstream,
            },
        );
    }

    pub fn get(&self, key: &CheckpointKey) -> Option<Written> {
        self.last.get(key).copied()
    }

    /// Every key of `group`, with its last checkpoint.
    pub fn group(&self, group: &str) -> impl Iterator<Item = (&CheckpointKey, Written)> + '_ {
        let group = group.to_string();
        self.last
            .iter()
            .filter(move |(k, _)| k.group == group)
            .map(|(k, w)| (k, *w))
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Translation::{Conservative, Exact, Unknown};

    fn key() -> CheckpointKey {
        CheckpointKey {
            group: "g".into(),
            topic: "src.orders".into(),
            partition: 0,
        }
    }

    #[test]
    fn first_then_only_changes() {
        let mut l = CheckpointLedger::new();
        assert_eq!(l.decide(&key(), 10, Unknown), Decision::Unknown);
        assert_eq!(
            l.decide(&key(), 10, Exact(8)),
            Decision::Emit { downstream: 8 }
        );
        l.commit(key(), 10, 8);
        assert_eq!(l.decide(&key(), 10, Exact(8)), Decision::Unchanged);
        // The group moved across a gap: same downstream, nothing to write.
        assert_eq!(l.decide(&key(), 12, Exact(8)), Decision::Unchanged);
        assert_eq!(
            l.decide(&key(), 20, Exact(18)),
            Decision::Emit { downstream: 18 }
        );
    }

    #[test]
    fn never_rewinds_on_a_coarser_answer() {
        let mut l = CheckpointLedger::new();
        l.commit(key(), 100, 100);
        // After a restart the rebuilt map only knows a conservative answer.
        assert_eq!(
            l.decide(&key(), 100, Conservative(60)),
            Decision::WouldRewind {
                last: Written {
                    upstream: 100,
                    downstream: 100
                }
            }
        );
        assert_eq!(
            l.decide(&key(), 150, Conservative(90)),
            Decision::WouldRewind {
                last: Written {
                    upstream: 100,
                    downstream: 100
                }
            }
        );
        assert_eq!(
            l.decide(&key(), 150, Exact(150)),
            Decision::Emit { downstream: 150 }
        );
    }

    #[test]
    fn follows_a_source_group_reset_like_mm2() {
        let mut l = CheckpointLedger::new();
        l.commit(key(), 100, 100);
        assert_eq!(
            l.decide(&key(), 40, Exact(40)),
            Decision::Emit { downstream: 40 }
        );
    }

    #[test]
    fn loads_the_last_checkpoint_per_key() {
        let mut l = CheckpointLedger::new();
        for (u, d) in [(5, 5), (9, 9)] {
            l.load(&Checkpoint {
                group: "g".into(),
                topic: "src.orders".into(),
                partition: 0,
                upstream_offset: u,
                downstream_offset: d,
                metadata: String::new(),
            });
        }
        assert_eq!(
            l.get(&key()),
            Some(Written {
                upstream: 9,
                downstream: 9
            })
        );
        assert_eq!(l.group("g").count(), 1);
        assert_eq!(l.group("other").count(), 0);
    }
}
