//! Offset-sync emission policy and MM2's translation rule.
//!
//! # What a sync promises
//! An OffsetSync `(u, d)` is a point fact: "upstream record `u` was written at
//! downstream offset `d`". MM2 readers use only that (see [`mm2_translate`]).
//!
//! Ferry wants a map rebuilt from its own syncs to be *exact*, but points
//! alone cannot say what lies between two syncs:
//! - The record after the last sync of a run may continue the run or be the
//!   last one; when the next sync starts a new run we do not know where the
//!   previous run ended.
//! - A gap of `k` offsets on **both** sides (e.g. a transaction marker
//!   upstream and a foreign record downstream) leaves every fact on the same
//!   line `d - u = const` as a fully contiguous run would. No set of true
//!   `(u, d)` points can tell the two apart.
//! - Syncs can be missing: compaction removes old ones, a failed write leaves
//!   a hole, another writer may interleave. Interpolating across a hole can
//!   put the answer *ahead* of the truth (data loss for a failed-over
//!   consumer).
//!
//! So each sync Ferry writes carries a [`SyncLink`] in a record header
//! ([`crate::wire::SYNC_LINK_HEADER`]; MM2 ignores headers). The link names
//! the previous sync of the same emitter, which lets a reader check the chain
//! is unbroken, and says whether everything since it ran in lockstep
//! ([`SyncLink::Continues`]) or where the previous run ended
//! ([`SyncLink::NewRun`]). A map rebuilt from an unbroken chain is identical
//! to the live map up to the last sync; anything else degrades to MM2-style
//! point facts, which are never ahead.
//!
//! # Emission policy ([`SyncEmitter`])
//! A sync is emitted for an acknowledged pair when
//! - it is the first pair since the emitter was created or [reset](SyncEmitter::reset);
//! - it does not continue the previous pair on both sides (upstream skip or
//!   rewind, downstream skip or rewind): a new run starts;
//! - the downstream offset moved more than `offset_lag_max` past the last
//!   sync. This is MM2's own condition
//!   (`downstream - (lastSyncDownstream + 1) >= offset.lag.max`), so an MM2
//!   reader of Ferry's topic re-reads at most `offset_lag_max - 1` records
//!   inside a run, as with MM2.
//!
//! Every MM2 trigger is also a Ferry trigger (MM2 does not sync on downstream
//! skips; Ferry does), so Ferry writes at least the syncs MM2 would.

use crate::pair::{OffsetMapError, OffsetPair, SyncLink};
use crate::wire::OffsetSync;

/// An offset sync encoded as the offset-syncs topic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSync {
    /// MM2's key: topic and partition.
    pub key: Vec<u8>,
    /// MM2's value: upstream and downstream offsets.
    pub value: [u8; OffsetSync::VALUE_LEN],
    /// The value of [`crate::wire::SYNC_LINK_HEADER`], if any.
    pub link: Option<Vec<u8>>,
}

/// A sync the caller must write to the offset-syncs topic: key/value from
/// `pair` (see [`EmittedSync::to_offset_sync`]), header from `link`
/// ([`crate::wire::encode_sync_link`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmittedSync {
    pub pair: OffsetPair,
    pub link: SyncLink,
}

impl EmittedSync {
    /// The MM2 record for this sync; `topic`/`partition` name the **source**
    /// topic-partition.
    pub fn to_offset_sync(&self, topic: &str, partition: i32) -> OffsetSync {
        OffsetSync {
            topic: topic.to_owned(),
            partition,
            upstream_offset: self.pair.upstream,
            downstream_offset: self.pair.downstream,
        }
    }

    /// The record to write for this sync: MM2's key and value, and Ferry's
    /// link header (none for a foreign link).
    pub fn encode(&self, topic: &str, partition: i32) -> Result<EncodedSync, crate::EncodeError> {
        let record = self.to_offset_sync(topic, partition);
        Ok(EncodedSync {
            key: record.encode_key()?,
            value: record.encode_value(),
            link: crate::wire::encode_sync_link(&self.link),
        })
    }
}

/// Decides, for each acknowledged pair of one partition, whether an offset
/// sync must be written (see the module docs for the policy).
///
/// Feed it the same pairs, in the same order, as [`crate::OffsetMap::record`].
#[derive(Debug, Clone)]
pub struct SyncEmitter {
    offset_lag_max: u64,
    last_sync: Option<OffsetPair>,
    last_ack: Option<OffsetPair>,
}

impl Default for SyncEmitter {
    fn default() -> Self {
        Self::new(Self::DEFAULT_OFFSET_LAG_MAX)
    }
}

impl SyncEmitter {
    /// MM2's default `offset.lag.max`.
    pub const DEFAULT_OFFSET_LAG_MAX: u64 = 100;

    /// `offset_lag_max` as in MM2's `offset.lag.max`; 0 syncs every record.
    pub fn new(offset_lag_max: u64) -> Self {
        SyncEmitter {
            offset_lag_max,
            last_sync: None,
            last_ack: None,
        }
    }

    pub fn offset_lag_max(&self) -> u64 {
        self.offset_lag_max
    }

    /// The last sync this emitter asked for, if any since the last reset.
    pub fn last_sync(&self) -> Option<OffsetPair> {
        self.last_sync
    }

    /// Observes one acknowledged pair; returns the sync to write, if any.
    pub fn on_ack(
        &mut self,
        upstream: i64,
        downstream: i64,
    ) -> Result<Option<EmittedSync>, OffsetMapError> {
        let pair = OffsetPair::new(upstream, downstream).validate()?;
        let link = match (self.last_sync, self.last_ack) {
            (Some(sync), Some(ack)) => {
                let lockstep = upstream == ack.upstream + 1 && downstream == ack.downstream + 1;
                if !lockstep {
                    Some(SyncLink::NewRun {
                        prev: sync,
                        prev_run_end: ack.upstream + 1,
                    })
                } else if downstream.abs_diff(sync.downstream) > self.offset_lag_max {
                    // Inside a run downstream > sync.downstream, so abs_diff
                    // is the plain distance.
                    Some(SyncLink::Continues { prev: sync })
                } else {
                    None
                }
            }
            _ => Some(SyncLink::ChainStart),
        };
        self.last_ack = Some(pair);
        Ok(link.map(|link| {
            self.last_sync = Some(pair);
            EmittedSync { pair, link }
        }))
    }

    /// A sync for the last acknowledged pair, if it is not the last sync
    /// already: ends the chain's current run exactly where the acks stand.
    ///
    /// Every discontinuity emits a sync, so everything from the last sync to
    /// the last ack ran in lockstep and the flushed sync continues the chain
    /// ([`SyncLink::Continues`]). Call it at a drain, and now and then while
    /// idle, so a map rebuilt from the topic is exact up to the last ack
    /// rather than up to the last sync. Writing more syncs never hurts an
    /// MM2 reader.
    pub fn flush(&mut self) -> Option<EmittedSync> {
        let (sync, ack) = (self.last_sync?, self.last_ack?);
        if sync == ack {
            return None;
        }
        self.last_sync = Some(ack);
        Some(EmittedSync {
            pair: ack,
            link: SyncLink::Continues { prev: sync },
        })
    }

    /// Forget the chain: the next pair starts a new one.
    ///
    /// Call when a sync write failed (so readers do not link across the hole;
    /// they would detect it anyway, this just restarts precision sooner), or
    /// when the acks feeding this emitter stop being a complete, in-order
    /// stream (task restart, new fencing epoch) — together with
    /// [`crate::OffsetMap::start_session`].
    pub fn reset(&mut self) {
        self.last_sync = None;
        self.last_ack = None;
    }
}

/// MirrorMaker 2's translation rule, for comparison: among the syncs since the
/// last upstream rewind, take the newest `S` with `S.upstream <= upstream`;
/// answer `S.downstream` if equal, else `S.downstream + 1`. `None` when no
/// such sync exists (MM2 declines to translate).
///
/// `syncs` is in topic order. This models MM2's `OffsetSyncStore` with
/// unlimited retention: the real store clears itself when a sync's upstream
/// offset is below the latest one (as here), but keeps only ~64
/// exponentially spaced syncs per partition, and only the latest one after a
/// restart, so real MM2 is at best as precise as this function.
///
/// Note: MM2 does not clear on a *downstream* rewind, so after the target
/// partition is truncated this rule can answer ahead of the truth; Ferry's
/// [`crate::OffsetMap`] drops the contradicted facts instead.
pub fn mm2_translate(syncs: &[OffsetPair], upstream: i64) -> Option<i64> {
    let start = syncs
        .windows(2)
        .rposition(|w| w[1].upstream < w[0].upstream)
        .map_or(0, |i| i + 1);
    syncs[start..]
        .iter()
        .rev()
        .find(|s| s.upstream <= upstream)
        .map(|s| s.downstream + i64::from(s.upstream != upstream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(u: i64, d: i64) -> OffsetPair {
        OffsetPair::new(u, d)
    }

    /// Feeds pairs, returns the emitted syncs.
    fn emit(emitter: &mut SyncEmitter, pairs: &[(i64, i64)]) -> Vec<EmittedSync> {
        pairs
            .iter()
            .filter_map(|&(u, d)| emitter.on_ack(u, d).unwrap())
            .collect()
    }

    #[test]
    fn first_ack_starts_a_chain() {
        let mut e = SyncEmitter::default();
        assert_eq!(
            e.on_ack(10, 20).unwrap(),
            Some(EmittedSync {
                pair: p(10, 20),
                link: SyncLink::ChainStart
            })
        );
        assert_eq!(e.on_ack(11, 21).unwrap(), None);
    }

    #[test]
    fn lag_condition_matches_mm2() {
        // MM2: sync when d - (lastSyncD + 1) >= lag, i.e. d - lastSyncD > lag.
        let mut e = SyncEmitter::new(100);
        let pairs: Vec<_> = (0..=202).map(|i| (i, i)).collect();
        let syncs = emit(&mut e, &pairs);
        let at: Vec<_> = syncs.iter().map(|s| s.pair.upstream).collect();
        assert_eq!(at, vec![0, 101, 202]);
        assert_eq!(syncs[2].link, SyncLink::Continues { prev: p(101, 101) });
        // An MM2 reader of these syncs is off by at most lag - 1 = 99.
        assert_eq!(mm2_translate(&[p(0, 0), p(101, 101)], 100), Some(1));
    }

    #[test]
    fn discontinuities_start_new_runs() {
        let mut e = SyncEmitter::new(1000);
        let syncs = emit(
            &mut e,
            &[
                (0, 0),
                (1, 1),
                (3, 2), // upstream skip (transaction marker)
                (4, 4), // downstream skip (foreign write)
                (6, 6), // skip on both sides
                (2, 7), // upstream rewind (replay)
                (3, 1), // downstream rewind (truncated target)
                (4, 2), // continues
            ],
        );
        let got: Vec<_> = syncs.iter().map(|s| (s.pair, s.link)).collect();
        assert_eq!(
            got,
            vec![
                (p(0, 0), SyncLink::ChainStart),
                (
                    p(3, 2),
                    SyncLink::NewRun {
                        prev: p(0, 0),
                        prev_run_end: 2
                    }
                ),
                (
                    p(4, 4),
                    SyncLink::NewRun {
                        prev: p(3, 2),
                        prev_run_end: 4
                    }
                ),
                (
                    p(6, 6),
                    SyncLink::NewRun {
                        prev: p(4, 4),
                        prev_run_end: 5
                    }
                ),
                (
                    p(2, 7),
                    SyncLink::NewRun {
                        prev: p(6, 6),
                        prev_run_end: 7
                    }
                ),
                (
                    p(3, 1),
                    SyncLink::NewRun {
                        prev: p(2, 7),
                        prev_run_end: 3
                    }
                ),
            ]
        );
    }

    #[test]
    fn flush_ends_the_run_at_the_last_ack() {
        let mut e = SyncEmitter::new(100);
        assert_eq!(e.flush(), None, "nothing acknowledged yet");
        let syncs = emit(&mut e, &(10..40).map(|i| (i, i + 5)).collect::<Vec<_>>());
        assert_eq!(syncs.len(), 1);
        let flushed = e.flush().unwrap();
        assert_eq!(flushed.pair, p(39, 44));
        assert_eq!(flushed.link, SyncLink::Continues { prev: p(10, 15) });
        assert_eq!(e.flush(), None, "already flushed");
        // The chain goes on from the flushed sync.
        assert_eq!(e.last_sync(), Some(p(39, 44)));
        assert_eq!(e.on_ack(40, 45).unwrap(), None);
        let gap = e.on_ack(42, 46).unwrap().unwrap();
        assert_eq!(
            gap.link,
            SyncLink::NewRun {
                prev: p(39, 44),
                prev_run_end: 41
            }
        );
    }

    #[test]
    fn flushed_chain_rebuilds_exactly_up_to_the_last_ack() {
        use crate::{OffsetMap, Translation};
        let pairs: Vec<(i64, i64)> = (0..50)
            .map(|i| (i, i))
            .chain((53..90).map(|i| (i, i - 3)))
            .collect();
        let mut e = SyncEmitter::new(100);
        let mut live = OffsetMap::new();
        let mut rebuilt = OffsetMap::new();
        for &(u, d) in &pairs {
            live.record(u, d).unwrap();
            if let Some(s) = e.on_ack(u, d).unwrap() {
                rebuilt.apply_sync(s.pair, s.link).unwrap();
            }
        }
        let s = e.flush().unwrap();
        rebuilt.apply_sync(s.pair, s.link).unwrap();
        for u in 0..=89 {
            assert_eq!(rebuilt.translate(u), live.translate(u), "u={u}");
        }
        assert_eq!(rebuilt.translate(51), Translation::Exact(50));
    }

    #[test]
    fn reset_restarts_the_chain() {
        let mut e = SyncEmitter::new(10);
        emit(&mut e, &[(0, 0), (1, 1)]);
        e.reset();
        assert_eq!(e.last_sync(), None);
        assert_eq!(e.on_ack(2, 2).unwrap().unwrap().link, SyncLink::ChainStart);
    }

    #[test]
    fn zero_lag_syncs_every_record() {
        let mut e = SyncEmitter::new(0);
        let syncs = emit(&mut e, &[(0, 0), (1, 1), (2, 2)]);
        assert_eq!(syncs.len(), 3);
        assert_eq!(syncs[2].link, SyncLink::Continues { prev: p(1, 1) });
    }

    #[test]
    fn invalid_offsets_rejected() {
        let mut e = SyncEmitter::default();
        assert!(e.on_ack(-1, 0).is_err());
        assert!(e.on_ack(0, i64::MAX).is_err());
        assert_eq!(e.last_sync(), None);
    }

    #[test]
    fn to_offset_sync_uses_source_partition() {
        let s = EmittedSync {
            pair: p(42, 40),
            link: SyncLink::ChainStart,
        };
        let rec = s.to_offset_sync("orders", 3);
        assert_eq!(rec.pair(), p(42, 40));
        assert_eq!((rec.topic.as_str(), rec.partition), ("orders", 3));
    }

    #[test]
    fn mm2_rule() {
        let syncs = [p(10, 100), p(20, 110)];
        assert_eq!(mm2_translate(&syncs, 9), None);
        assert_eq!(mm2_translate(&syncs, 10), Some(100));
        assert_eq!(mm2_translate(&syncs, 15), Some(101));
        assert_eq!(mm2_translate(&syncs, 20), Some(110));
        assert_eq!(mm2_translate(&syncs, 1000), Some(111));
        assert_eq!(mm2_translate(&[], 5), None);
    }

    #[test]
    fn mm2_rule_clears_on_upstream_rewind() {
        // OffsetSyncStore clears when a sync goes below the latest upstream.
        let syncs = [p(0, 0), p(100, 100), p(50, 200), p(60, 210)];
        assert_eq!(mm2_translate(&syncs, 10), None);
        assert_eq!(mm2_translate(&syncs, 55), Some(201));
        assert_eq!(mm2_translate(&syncs, 120), Some(211));
    }
}
