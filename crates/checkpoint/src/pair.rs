//! The vocabulary [`crate::offset_map`], [`crate::sync`] and [`crate::wire`]
//! share: offset pairs, the link between consecutive syncs, and the error for
//! a pair that is not a pair of Kafka offsets.
//!
//! A leaf: it imports nothing from the rest of the crate, so the map, the
//! emitter and the record codecs depend on it and not on each other.

/// Errors from [`crate::OffsetMap`] and [`crate::SyncEmitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffsetMapError {
    #[error("invalid offset pair upstream={upstream} downstream={downstream}: Kafka offsets are in 0..i64::MAX")]
    InvalidOffset { upstream: i64, downstream: i64 },
}

/// An (upstream offset, downstream offset) pair: one replicated record, or
/// one sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetPair {
    pub upstream: i64,
    pub downstream: i64,
}

impl OffsetPair {
    pub const fn new(upstream: i64, downstream: i64) -> Self {
        OffsetPair {
            upstream,
            downstream,
        }
    }

    /// Kafka offsets are `0..i64::MAX`; the exclusive upper bound keeps
    /// `offset + 1` representable.
    pub(crate) fn validate(self) -> Result<Self, OffsetMapError> {
        let ok = |o: i64| (0..i64::MAX).contains(&o);
        if ok(self.upstream) && ok(self.downstream) {
            Ok(self)
        } else {
            Err(OffsetMapError::InvalidOffset {
                upstream: self.upstream,
                downstream: self.downstream,
            })
        }
    }
}

/// How a sync relates to the previous sync of the same writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncLink {
    /// No promise beyond the point itself: MirrorMaker 2's syncs, Ferry syncs
    /// without a (valid) link header.
    Foreign,
    /// First sync of a Ferry chain (new emitter or after a reset). Nothing is
    /// known about the records between the previous sync and this one.
    ChainStart,
    /// Every record from `prev` to this sync was replicated in lockstep
    /// (upstream and downstream both contiguous).
    Continues { prev: OffsetPair },
    /// The run that `prev` belongs to ended at upstream `prev_run_end`
    /// (exclusive; the run is lockstep from `prev` to there). This sync starts
    /// a new run, and no record was replicated between the two runs.
    NewRun { prev: OffsetPair, prev_run_end: i64 },
}
