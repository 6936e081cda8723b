//! Where a partition starts copying. One pure rule, called by the engine when
//! it assigns a partition and by `ferry plan` when it reports the backlog, so
//! a plan and the run that follows it never disagree.
//!
//! The origin, in order: the saved progress of an earlier run, else where
//! MirrorMaker 2 stopped (handover), else the flow's `start_from` with its
//! per-partition lookup resolved by the caller ([`Policy`]).
//!
//! A saved or handed-over position is checked against the source log:
//! - below the log start: the records in between were deleted on the source
//!   before they were copied; the partition starts at the log start and the
//!   loss is reported ([`Warning::DeletedBeforeCopy`]);
//! - past the log end: the source partition was recreated or truncated since
//!   the position was saved. Starting at the log start would silently copy
//!   everything again, starting at the end would silently skip whatever the
//!   new log holds, so the partition is **held**: nothing is copied and its
//!   progress stays as it is until the operator resets it
//!   (`ferry reset-progress`), after which it starts by `start_from`
//!   ([`Warning::BeyondLogEnd`]). The flow's other partitions keep copying.
//!
//! Offsets found by `start_from` (a timestamp lookup, a committed group
//! offset) are clamped into the log: they are fresh reads of the log as it
//! is, not a memory of an earlier one.

use ferry_config::Fallback;
use serde::Serialize;

/// `start_from` for one partition, with its lookup resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The log start: copy everything the source still holds.
    Earliest,
    /// The log end: copy only what is produced from now on.
    Latest,
    /// The first offset whose timestamp is at or after the flow's; `None`
    /// when no such record exists yet.
    Timestamp {
        /// The offset the source's timestamp lookup returned.
        found: Option<i64>,
    },
    /// The smallest offset committed by a matching source group; `None`
    /// when none committed on this partition.
    Unconsumed {
        /// The smallest committed offset, if any group committed.
        committed: Option<i64>,
        /// Where to start when no group committed here.
        fallback: Fallback,
    },
}

/// Where the start position comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Saved progress of an earlier run (or of this process before a
    /// restart of the topic).
    Progress(i64),
    /// Where MirrorMaker 2 stopped.
    Handover(i64),
    /// No position is known: the flow's `start_from`.
    Policy(Policy),
}

impl Origin {
    /// The remembered position, if any: saved progress wins over the
    /// handover. `None` means the caller resolves `start_from` and passes
    /// [`Origin::Policy`].
    pub fn remembered(saved: Option<i64>, handover: Option<i64>) -> Option<Origin> {
        saved
            .map(Origin::Progress)
            .or(handover.map(Origin::Handover))
    }
}

/// Why a partition starts where it does (the `from` of `ferry plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Saved progress of an earlier run.
    Progress,
    /// Where MirrorMaker 2 stopped.
    Mm2Handover,
    /// `start_from: earliest`.
    Earliest,
    /// `start_from: latest`.
    Latest,
    /// `start_from` a timestamp.
    Timestamp,
    /// The smallest committed offset of the matching groups.
    Unconsumed,
    /// `unconsumed`, but no matching group committed here: its fallback,
    /// the log start.
    FallbackEarliest,
    /// `unconsumed`, but no matching group committed here: its fallback,
    /// the log end.
    FallbackLatest,
}

/// Something the operator must hear about a partition's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// The remembered position is below the log start: the records in
    /// between were deleted on the source before they were copied.
    DeletedBeforeCopy {
        /// The remembered position.
        resume_at: i64,
        /// The source log's first offset, where the partition starts.
        log_start: i64,
    },
    /// The remembered position is past the log end: the source partition was
    /// recreated or truncated. The partition is held.
    BeyondLogEnd {
        /// The remembered position.
        resume_at: i64,
        /// The source log's end offset.
        log_end: i64,
    },
}

impl Warning {
    /// A stable name for `/status` and `ferry plan --json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Warning::DeletedBeforeCopy { .. } => "deleted-before-copy",
            Warning::BeyondLogEnd { .. } => "progress-beyond-log-end",
        }
    }

    /// The message the engine logs and shows in `/status`, and `ferry plan`
    /// prints: the same words everywhere.
    pub fn describe(&self, cluster: &str, topic: &str, partition: i32, reason: Reason) -> String {
        let what = match reason {
            Reason::Mm2Handover => "MirrorMaker 2 stopped",
            _ => "saved progress is",
        };
        match *self {
            Warning::DeletedBeforeCopy {
                resume_at,
                log_start,
            } => format!(
                "cluster {cluster}, topic {topic}, partition {partition}: {what} at offset {resume_at} but the source log starts at {log_start}: {} records were deleted before they were copied; starting at {log_start}",
                log_start - resume_at
            ),
            Warning::BeyondLogEnd { resume_at, log_end } => format!(
                "cluster {cluster}, topic {topic}, partition {partition}: {what} at offset {resume_at} but the source log ends at {log_end}: the source topic was recreated or truncated; the partition is held (nothing copied) until its progress is reset with `ferry reset-progress`"
            ),
        }
    }
}

/// The `kind` of [`target_lost`] in `/status` and `ferry plan --json`.
pub const TARGET_LOST: &str = "target-topic-recreated";

/// What the engine logs (and `/status` and `ferry plan` show) when the
/// target topic of a partition with saved progress does not exist: it was
/// deleted after records were copied, and resuming from the saved progress
/// creates it empty and never copies the records before it again.
pub fn target_lost(
    flow: &str,
    target_cluster: &str,
    target_topic: &str,
    source_topic: &str,
    partition: i32,
    saved: i64,
) -> String {
    format!(
        "cluster {target_cluster}, topic {target_topic}: the target topic is missing (deleted?) although saved progress of source topic {source_topic} partition {partition} is at offset {saved}: resuming there leaves the records before it off the target; to copy them again, stop the daemon and run `ferry reset-progress -c <topology> --flow {flow} --topics '{source_topic}'`"
    )
}

/// Where a partition starts, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The first source offset to copy; `None` when the partition is held.
    pub start: Option<i64>,
    /// Where the start comes from.
    pub reason: Reason,
    /// What the operator must hear about it, if anything.
    pub warning: Option<Warning>,
}

impl Decision {
    /// True when nothing of the partition is copied until its progress is
    /// reset ([`Warning::BeyondLogEnd`]).
    pub fn is_held(&self) -> bool {
        self.start.is_none()
    }
}

/// Decides where a partition whose source log spans `log_start..log_end`
/// starts.
pub fn decide(origin: Origin, log_start: i64, log_end: i64) -> Decision {
    let remembered = |resume_at: i64, reason: Reason| {
        if resume_at < log_start {
            Decision {
                start: Some(log_start),
                reason,
                warning: Some(Warning::DeletedBeforeCopy {
                    resume_at,
                    log_start,
                }),
            }
        } else if resume_at > log_end {
            Decision {
                start: None,
                reason,
                warning: Some(Warning::BeyondLogEnd { resume_at, log_end }),
            }
        } else {
            Decision {
                start: Some(resume_at),
                reason,
                warning: None,
            }
        }
    };
    let found = |offset: i64, reason: Reason| Decision {
        start: Some(offset.clamp(log_start, log_end.max(log_start))),
        reason,
        warning: None,
    };
    match origin {
        Origin::Progress(o) => remembered(o, Reason::Progress),
        Origin::Handover(o) => remembered(o, Reason::Mm2Handover),
        Origin::Policy(Policy::Earliest) => found(log_start, Reason::Earliest),
        Origin::Policy(Policy::Latest) => found(log_end, Reason::Latest),
        Origin::Policy(Policy::Timestamp { found: offset }) => {
            found(offset.unwrap_or(log_end), Reason::Timestamp)
        }
        Origin::Policy(Policy::Unconsumed {
            committed: Some(o), ..
        }) => found(o, Reason::Unconsumed),
        Origin::Policy(Policy::Unconsumed {
            committed: None,
            fallback: Fallback::Earliest,
        }) => found(log_start, Reason::FallbackEarliest),
        Origin::Policy(Policy::Unconsumed {
            committed: None,
            fallback: Fallback::Latest,
        }) => found(log_end, Reason::FallbackLatest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: i64, reason: Reason) -> Decision {
        Decision {
            start: Some(start),
            reason,
            warning: None,
        }
    }

    #[test]
    fn saved_progress_inside_the_log_is_used_as_is() {
        let d = decide(Origin::Progress(50), 10, 100);
        assert_eq!(d, at(50, Reason::Progress));
        // At either edge it is still inside: nothing lost, nothing to redo.
        assert_eq!(decide(Origin::Progress(10), 10, 100).start, Some(10));
        assert_eq!(decide(Origin::Progress(100), 10, 100).start, Some(100));
    }

    #[test]
    fn saved_progress_before_the_log_start_starts_there_and_reports_the_loss() {
        let d = decide(Origin::Progress(4), 10, 100);
        assert_eq!(d.start, Some(10));
        assert_eq!(d.reason, Reason::Progress);
        assert_eq!(
            d.warning,
            Some(Warning::DeletedBeforeCopy {
                resume_at: 4,
                log_start: 10
            })
        );
        let text = d.warning.unwrap().describe("src", "orders", 3, d.reason);
        assert!(
            text.contains("cluster src, topic orders, partition 3")
                && text.contains("6 records were deleted"),
            "{text}"
        );
    }

    #[test]
    fn saved_progress_past_the_log_end_holds_the_partition() {
        let d = decide(Origin::Progress(500), 0, 20);
        assert!(d.is_held(), "{d:?}");
        assert_eq!(
            d.warning,
            Some(Warning::BeyondLogEnd {
                resume_at: 500,
                log_end: 20
            })
        );
        let text = d.warning.unwrap().describe("src", "orders", 0, d.reason);
        assert!(
            text.contains("offset 500")
                && text.contains("ends at 20")
                && text.contains("held")
                && text.contains("ferry reset-progress"),
            "{text}"
        );
    }

    #[test]
    fn handover_follows_the_same_rules_as_progress() {
        assert_eq!(
            decide(Origin::Handover(30), 10, 100),
            at(30, Reason::Mm2Handover)
        );
        let before = decide(Origin::Handover(2), 10, 100);
        assert_eq!(before.start, Some(10));
        assert!(matches!(
            before.warning,
            Some(Warning::DeletedBeforeCopy { .. })
        ));
        assert!(before
            .warning
            .unwrap()
            .describe("s", "t", 0, before.reason)
            .contains("MirrorMaker 2 stopped at offset 2"));
        assert!(decide(Origin::Handover(101), 10, 100).is_held());
    }

    #[test]
    fn progress_wins_over_handover_which_wins_over_start_from() {
        assert_eq!(
            Origin::remembered(Some(5), Some(9)),
            Some(Origin::Progress(5))
        );
        assert_eq!(Origin::remembered(None, Some(9)), Some(Origin::Handover(9)));
        assert_eq!(Origin::remembered(None, None), None);
    }

    #[test]
    fn earliest_and_latest_are_the_log_edges() {
        assert_eq!(
            decide(Origin::Policy(Policy::Earliest), 10, 100),
            at(10, Reason::Earliest)
        );
        assert_eq!(
            decide(Origin::Policy(Policy::Latest), 10, 100),
            at(100, Reason::Latest)
        );
    }

    #[test]
    fn timestamp_starts_at_the_found_offset_or_the_end() {
        let ts = |found| Origin::Policy(Policy::Timestamp { found });
        assert_eq!(decide(ts(Some(42)), 10, 100), at(42, Reason::Timestamp));
        assert_eq!(decide(ts(None), 10, 100), at(100, Reason::Timestamp));
    }

    #[test]
    fn unconsumed_uses_commits_or_the_fallback() {
        let u = |committed, fallback| {
            Origin::Policy(Policy::Unconsumed {
                committed,
                fallback,
            })
        };
        assert_eq!(
            decide(u(Some(40), Fallback::Earliest), 10, 100),
            at(40, Reason::Unconsumed)
        );
        // A commit outside the log is clamped into it: it was read now.
        assert_eq!(
            decide(u(Some(3), Fallback::Latest), 10, 100).start,
            Some(10)
        );
        assert_eq!(
            decide(u(Some(300), Fallback::Earliest), 10, 100).start,
            Some(100)
        );
        assert_eq!(
            decide(u(None, Fallback::Earliest), 10, 100),
            at(10, Reason::FallbackEarliest)
        );
        assert_eq!(
            decide(u(None, Fallback::Latest), 10, 100),
            at(100, Reason::FallbackLatest)
        );
    }

    #[test]
    fn a_truncated_log_holds_nothing_to_copy() {
        // Every record deleted: start == end.
        assert_eq!(
            decide(Origin::Policy(Policy::Earliest), 70, 70),
            at(70, Reason::Earliest)
        );
        let behind = decide(Origin::Progress(40), 70, 70);
        assert_eq!(behind.start, Some(70));
        assert!(matches!(
            behind.warning,
            Some(Warning::DeletedBeforeCopy { .. })
        ));
        assert!(decide(Origin::Progress(90), 70, 70).is_held());
        assert_eq!(
            decide(Origin::Progress(70), 70, 70),
            at(70, Reason::Progress)
        );
    }
}
