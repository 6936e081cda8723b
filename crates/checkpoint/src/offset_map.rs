//! Exact upstream → downstream offset translation for one replicated
//! partition.
//!
//! # Conventions
//! - Offsets are Kafka offsets: `i64` in `0..i64::MAX`. Anything else is an
//!   [`OffsetMapError::InvalidOffset`].
//! - A **fact** is a pair `(u, d)`: upstream record `u` was written at
//!   downstream offset `d`. Facts come from delivery reports
//!   ([`OffsetMap::record`]) or offset syncs ([`OffsetMap::apply_sync`]).
//! - A **segment** `(u, d, len)` is a run of facts in lockstep: upstream
//!   `[u, u + len)` was written to downstream `[d, d + len)`. Ranges are
//!   half-open; `upstream_end()`/`downstream_end()` are exclusive. Facts
//!   strictly increase on both sides across the whole map.
//! - Between two segments lies a **gap**, marked [`Gap::KnownEmpty`] when the
//!   map saw every write in between (one complete, in-order stream of delivery
//!   reports, or an unbroken Ferry sync chain): those upstream offsets were
//!   never replicated (transaction markers, compacted or aborted records), and
//!   the downstream offsets in between belong to someone else. Otherwise the
//!   gap is [`Gap::Unknown`] (session boundary, MM2 syncs, broken sync chain).
//!
//! # What `translate(U)` answers
//! `U` is a consumer group's committed upstream offset: "the next record to
//! read is `U`". The right downstream offset to commit is the downstream
//! offset of **the first replicated record whose upstream offset is ≥ `U`**.
//! Resuming there re-reads nothing the group has consumed and skips nothing it
//! has not.
//! - `U` inside a segment: [`Translation::Exact`]`(d + (U - u))`.
//! - `U` in a known-empty gap (including `U` equal to a segment's end):
//!   `Exact` start of the next segment.
//! - `U` in an unknown gap, or beyond the last fact:
//!   [`Translation::Conservative`]`(end of the preceding segment)`. Every
//!   replicated record with upstream ≥ `U` sits at or after that downstream
//!   offset, so the answer is never ahead of the truth; it may re-read.
//! - `U` before the first segment: [`Translation::Unknown`] (we do not know
//!   what was replicated before, so we refuse rather than guess), except in a
//!   known-empty region left by eviction (see below).
//!
//! # Contradictions (rewinds)
//! Facts must increase on both sides. A new fact `(u, d)` that does not lie
//! after the last one **removes every fact `(u', d')` with `u' >= u` or
//! `d' >= d`**, then is appended. Why this is right:
//! - Downstream went backwards (`d < last d`): the target partition was
//!   truncated (unclean leader election) or recreated; offsets from `d` on now
//!   hold other records, so facts pointing there are void. A recreated topic
//!   (`d` back to 0) empties the map: old offsets become `Unknown`.
//! - Upstream went backwards (`u <= last u`): the source is being replayed
//!   (restart from an older progress offset). The new copies are the ones a
//!   resumed consumer should read; older copies of `u..` stay in the target
//!   but are no longer mapped, which at worst re-reads duplicates.
//!
//! # Bounded memory
//! At most `max_segments` segments are kept (default
//! [`OffsetMap::DEFAULT_MAX_SEGMENTS`]); a segment is 24 bytes. When a new
//! segment would exceed the cap, the **oldest segment is dropped**: offsets
//! before the new first segment become `Unknown` — never a wrong answer, and
//! MM2 itself declines to translate offsets that old. If the dropped
//! segment's gap was known empty, offsets in that gap keep their exact answer
//! (the start of the new first segment). Runs longer than `u32::MAX` records
//! are split into several contiguous segments.
//!
//! # Rebuilt maps
//! A map rebuilt from Ferry's syncs with unbroken links equals the live map
//! for every `U` up to the last sync's upstream offset (see [`crate::sync`]).
//! Past the last sync it cannot know how far the run went on, so it answers
//! `Conservative(last sync downstream + 1)`, as MM2 would.

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use crate::sync::{OffsetPair, SyncLink};

/// The downstream position for a committed upstream offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Translation {
    /// The downstream offset of the first replicated record with upstream
    /// offset ≥ the input.
    Exact(i64),
    /// A downstream offset at or before that position: safe to resume from,
    /// may re-read some records. Also the answer past the last known record.
    Conservative(i64),
    /// The input is older than anything the map knows; do not translate.
    Unknown,
}

impl Translation {
    /// The downstream offset, exact or conservative.
    pub fn offset(self) -> Option<i64> {
        match self {
            Translation::Exact(d) | Translation::Conservative(d) => Some(d),
            Translation::Unknown => None,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Translation::Exact(_))
    }
}

/// Errors from [`OffsetMap`] and [`crate::SyncEmitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffsetMapError {
    #[error("invalid offset pair upstream={upstream} downstream={downstream}: Kafka offsets are in 0..i64::MAX")]
    InvalidOffset { upstream: i64, downstream: i64 },
}

/// What is known about the upstream offsets between a segment's end and the
/// next segment's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gap {
    /// No record with an upstream offset in the gap was replicated.
    KnownEmpty,
    /// Records may have been replicated there without the map seeing them.
    Unknown,
}

impl Gap {
    fn and(self, other: Gap) -> Gap {
        if self == Gap::KnownEmpty && other == Gap::KnownEmpty {
            Gap::KnownEmpty
        } else {
            Gap::Unknown
        }
    }
}

/// A lockstep run: upstream `[u, u + len)` → downstream `[d, d + len)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    upstream: i64,
    downstream: i64,
    // u32 keeps a segment at 24 bytes; longer runs are split.
    len: u32,
    // For the last segment this is a placeholder (`KnownEmpty`): the region
    // after the last fact is described by the next fact's continuity instead.
    gap_after: Gap,
}

impl Segment {
    fn point(pair: OffsetPair) -> Self {
        Segment {
            upstream: pair.upstream,
            downstream: pair.downstream,
            len: 1,
            gap_after: Gap::KnownEmpty,
        }
    }

    pub fn upstream_start(&self) -> i64 {
        self.upstream
    }

    pub fn downstream_start(&self) -> i64 {
        self.downstream
    }

    /// Number of records in the run (≥ 1).
    pub fn len(&self) -> u64 {
        u64::from(self.len)
    }

    /// Always false: a segment holds at least one fact.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Exclusive upstream end.
    pub fn upstream_end(&self) -> i64 {
        self.upstream + i64::from(self.len)
    }

    /// Exclusive downstream end.
    pub fn downstream_end(&self) -> i64 {
        self.downstream + i64::from(self.len)
    }

    /// What is known between this segment and the next one (meaningless for
    /// the last segment).
    pub fn gap_after(&self) -> Gap {
        self.gap_after
    }

    fn last_pair(&self) -> OffsetPair {
        OffsetPair::new(self.upstream_end() - 1, self.downstream_end() - 1)
    }
}

/// How the next fact relates to the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Nothing known about what comes next (new map, after
    /// [`OffsetMap::start_session`], after a foreign sync).
    Detached,
    /// The last fact came from `record` in the current session: the next
    /// `record` sees everything in between.
    Live,
    /// The last fact is this Ferry sync; a sync linking to it continues the
    /// chain.
    Chain(OffsetPair),
}

/// Run-length map of one replicated partition's upstream → downstream
/// offsets. See the [module docs](self) for the conventions.
#[derive(Debug, Clone)]
pub struct OffsetMap {
    segments: VecDeque<Segment>,
    max_segments: usize,
    /// Upstream offsets in `[floor, first segment start)` are known to hold no
    /// replicated record (left behind by eviction of a segment whose gap was
    /// known empty).
    floor: Option<i64>,
    cursor: Cursor,
    evictions: u64,
    /// The smallest upstream and the smallest downstream offset of any fact
    /// ever inserted: every older fact at or above either was contradicted,
    /// even if the contradicting fact is gone since (see `absorb_older`).
    low: Option<OffsetPair>,
}

impl Default for OffsetMap {
    fn default() -> Self {
        Self::new()
    }
}

impl OffsetMap {
    /// Default cap on segments per partition (96 KiB of segments).
    pub const DEFAULT_MAX_SEGMENTS: usize = 4096;

    pub fn new() -> Self {
        Self::with_max_segments(
            NonZeroUsize::new(Self::DEFAULT_MAX_SEGMENTS).expect("non-zero default"),
        )
    }

    /// A map that keeps at most `max_segments` segments (oldest dropped
    /// first).
    pub fn with_max_segments(max_segments: NonZeroUsize) -> Self {
        OffsetMap {
            segments: VecDeque::new(),
            max_segments: max_segments.get(),
            floor: None,
            cursor: Cursor::Detached,
            evictions: 0,
            low: None,
        }
    }

    /// Records an acknowledged write: upstream record `upstream` landed at
    /// downstream offset `downstream`. Call in delivery-report order; O(1)
    /// unless the pair rewinds.
    #[inline]
    pub fn record(&mut self, upstream: i64, downstream: i64) -> Result<(), OffsetMapError> {
        let pair = OffsetPair::new(upstream, downstream).validate()?;
        let gap = if self.cursor == Cursor::Live {
            Gap::KnownEmpty
        } else {
            Gap::Unknown
        };
        self.insert(pair, gap);
        self.cursor = Cursor::Live;
        Ok(())
    }

    /// Declares that the next [`record`](Self::record) does not continue a
    /// complete stream of delivery reports: a new task or fencing epoch took
    /// over, and writes may have landed that this map never heard of. The gap
    /// before the next fact becomes [`Gap::Unknown`].
    pub fn start_session(&mut self) {
        self.cursor = Cursor::Detached;
    }

    /// Applies one offset sync read from the offset-syncs topic, in topic
    /// order, typically to rebuild the map at start-up or on handover from
    /// MM2. `link` is [`SyncLink::Foreign`] for MM2's syncs and comes from the
    /// [`crate::wire::SYNC_LINK_HEADER`] for Ferry's.
    ///
    /// A link is trusted only if it names the sync applied just before it
    /// (and nothing else touched the map in between); otherwise only the
    /// point itself is trusted. Re-applying the last fact is a no-op.
    pub fn apply_sync(&mut self, pair: OffsetPair, link: SyncLink) -> Result<(), OffsetMapError> {
        let pair = pair.validate()?;
        let chained =
            |prev: OffsetPair| self.cursor == Cursor::Chain(prev) && self.last_pair() == Some(prev);
        let gap = match link {
            SyncLink::Foreign => {
                self.insert_sync(pair, Gap::Unknown);
                self.cursor = Cursor::Detached;
                return Ok(());
            }
            SyncLink::Continues { prev }
                if chained(prev)
                    && pair.upstream > prev.upstream
                    && pair.upstream - prev.upstream == pair.downstream - prev.downstream =>
            {
                // Everything from prev to here was lockstep.
                self.extend_last((pair.upstream - prev.upstream) as u64);
                self.cursor = Cursor::Chain(pair);
                return Ok(());
            }
            SyncLink::NewRun { prev, prev_run_end }
                if chained(prev)
                    && prev_run_end > prev.upstream
                    && prev
                        .downstream
                        .checked_add(prev_run_end - prev.upstream)
                        .is_some() =>
            {
                // The previous run went on in lockstep up to prev_run_end;
                // nothing was replicated between it and this sync.
                self.extend_last((prev_run_end - prev.upstream - 1) as u64);
                Gap::KnownEmpty
            }
            // Chain start, broken chain (compaction, lost write, another
            // writer) or an inconsistent link: trust the point only.
            _ => Gap::Unknown,
        };
        self.insert_sync(pair, gap);
        self.cursor = Cursor::Chain(pair);
        Ok(())
    }

    /// Puts `older` in front of this map's facts. `older` describes the same
    /// partition from before this map's first fact: typically it was rebuilt
    /// from the offset-syncs topic while this map already recorded the new
    /// session's delivery reports.
    ///
    /// Nothing is known between the two (the gap is [`Gap::Unknown`], as
    /// after [`start_session`](Self::start_session)). Older facts that any
    /// fact this map ever recorded contradicts are dropped by the usual
    /// rewind rule, even if that fact was itself dropped since (a replay
    /// followed by a truncation must not bring old copies back). The map's
    /// cursor is
    /// kept, so [`record`](Self::record) goes on as before, and so is its
    /// segment cap (the oldest segments are dropped if the sum exceeds it).
    /// If this map has already evicted segments, facts between the two maps
    /// may be lost, so `older` is ignored.
    pub fn absorb_older(&mut self, older: OffsetMap) {
        if self.evictions > 0 || older.is_empty() {
            return;
        }
        let mut merged = older;
        merged.max_segments = self.max_segments;
        // Every fact this map ever recorded voids the older facts it
        // contradicts, including facts this map itself dropped since.
        if let Some(low) = self.low {
            merged.truncate(low, Gap::Unknown);
        }
        while merged.segments.len() > merged.max_segments {
            merged.evict_oldest();
        }
        let mut gap = Gap::Unknown;
        for seg in std::mem::take(&mut self.segments) {
            merged.insert(OffsetPair::new(seg.upstream, seg.downstream), gap);
            if seg.len > 1 {
                merged.extend_last(u64::from(seg.len - 1));
            }
            gap = seg.gap_after;
        }
        merged.cursor = self.cursor;
        merged.low = self.low.or(merged.low);
        *self = merged;
    }

    /// Translates a committed upstream offset (see the module docs). O(log n).
    pub fn translate(&self, upstream: i64) -> Translation {
        let Some(first) = self.segments.front() else {
            return Translation::Unknown;
        };
        if upstream < first.upstream {
            return match self.floor {
                Some(floor) if upstream >= floor => Translation::Exact(first.downstream),
                _ => Translation::Unknown,
            };
        }
        // Last segment starting at or before `upstream`; exists since
        // first.upstream <= upstream.
        let idx = self.segments.partition_point(|s| s.upstream <= upstream) - 1;
        let seg = &self.segments[idx];
        let offset = upstream - seg.upstream;
        if offset < i64::from(seg.len) {
            return Translation::Exact(seg.downstream + offset);
        }
        match self.segments.get(idx + 1) {
            Some(next) if seg.gap_after == Gap::KnownEmpty => Translation::Exact(next.downstream),
            _ => Translation::Conservative(seg.downstream_end()),
        }
    }

    /// The segments, oldest first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment> + '_ {
        self.segments.iter().copied()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The newest fact.
    pub fn last_pair(&self) -> Option<OffsetPair> {
        self.segments.back().map(Segment::last_pair)
    }

    pub fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// How many segments were dropped to respect the cap (for metrics).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Approximate heap + inline bytes used by this map.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.segments.capacity() * std::mem::size_of::<Segment>()
    }

    fn insert_sync(&mut self, pair: OffsetPair, gap: Gap) {
        // A re-delivered sync (producer retry, re-read) contradicts nothing.
        if self.last_pair() != Some(pair) {
            self.insert(pair, gap);
        }
    }

    /// Appends a fact; `gap` says what is known between the previous fact
    /// and this one.
    fn insert(&mut self, pair: OffsetPair, mut gap: Gap) {
        self.low = Some(match self.low {
            None => pair,
            Some(low) => OffsetPair::new(
                low.upstream.min(pair.upstream),
                low.downstream.min(pair.downstream),
            ),
        });
        let (u, d) = (pair.upstream, pair.downstream);
        if let Some(&last) = self.segments.back() {
            if u == last.upstream_end() && d == last.downstream_end() {
                self.extend_last(1);
                return;
            }
            if u < last.upstream_end() || d < last.downstream_end() {
                gap = self.truncate(pair, gap);
                if let Some(&last) = self.segments.back() {
                    if u == last.upstream_end() && d == last.downstream_end() {
                        self.extend_last(1);
                        return;
                    }
                }
            }
        }
        if let Some(last) = self.segments.back_mut() {
            last.gap_after = gap;
        }
        self.push(Segment::point(pair));
    }

    /// Removes every fact not strictly before `pair` on both sides. Returns
    /// what is known about the region between the remaining facts and
    /// `pair`: known empty only if `gap` is and every region it spans was.
    fn truncate(&mut self, pair: OffsetPair, gap: Gap) -> Gap {
        let mut acc = gap;
        while let Some(last) = self.segments.back_mut() {
            acc = acc.and(last.gap_after);
            // Facts of `last` below `pair` on both sides form a prefix.
            let keep = (pair.upstream - last.upstream).min(pair.downstream - last.downstream);
            if keep <= 0 {
                self.segments.pop_back();
                continue;
            }
            if keep < i64::from(last.len) {
                // keep < len <= u32::MAX
                last.len = keep as u32;
            }
            last.gap_after = Gap::KnownEmpty; // now the last segment
            return acc;
        }
        // Nothing older survives: the eviction floor described a prefix of
        // facts that are all gone now.
        self.floor = None;
        acc
    }

    fn extend_last(&mut self, mut n: u64) {
        while n > 0 {
            let last = self
                .segments
                .back_mut()
                .expect("extend_last needs a segment");
            let room = u64::from(u32::MAX - last.len);
            if room == 0 {
                let next =
                    Segment::point(OffsetPair::new(last.upstream_end(), last.downstream_end()));
                self.push(next);
                n -= 1;
            } else {
                let step = room.min(n);
                // step <= room <= u32::MAX
                last.len += step as u32;
                n -= step;
            }
        }
    }

    fn push(&mut self, segment: Segment) {
        if self.segments.len() >= self.max_segments {
            self.evict_oldest();
        }
        self.segments.push_back(segment);
    }

    fn evict_oldest(&mut self) {
        if let Some(old) = self.segments.pop_front() {
            self.evictions += 1;
            self.floor = match old.gap_after {
                Gap::KnownEmpty => Some(old.upstream_end()),
                Gap::Unknown => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncEmitter;
    use Translation::{Conservative, Exact, Unknown};

    fn p(u: i64, d: i64) -> OffsetPair {
        OffsetPair::new(u, d)
    }

    fn map_of(pairs: &[(i64, i64)]) -> OffsetMap {
        let mut m = OffsetMap::new();
        for &(u, d) in pairs {
            m.record(u, d).unwrap();
        }
        m
    }

    fn run(u: i64, d: i64, n: i64) -> Vec<(i64, i64)> {
        (0..n).map(|i| (u + i, d + i)).collect()
    }

    fn shape(m: &OffsetMap) -> Vec<(i64, i64, u64)> {
        m.segments()
            .map(|s| (s.upstream_start(), s.downstream_start(), s.len()))
            .collect()
    }

    #[test]
    fn segment_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Segment>(), 24);
    }

    #[test]
    fn empty_map_knows_nothing() {
        let m = OffsetMap::new();
        assert_eq!(m.translate(0), Unknown);
        assert_eq!(m.last_pair(), None);
        assert!(m.is_empty());
    }

    #[test]
    fn contiguous_run() {
        let m = map_of(&run(100, 500, 10));
        assert_eq!(shape(&m), vec![(100, 500, 10)]);
        assert_eq!(m.translate(99), Unknown);
        assert_eq!(m.translate(100), Exact(500));
        assert_eq!(m.translate(109), Exact(509));
        // Everything up to 109 replicated, nothing after yet.
        assert_eq!(m.translate(110), Conservative(510));
        assert_eq!(m.translate(10_000), Conservative(510));
        assert_eq!(m.translate(-1), Unknown);
    }

    #[test]
    fn upstream_gap_is_exact() {
        // 10..=12 never replicated (e.g. a commit marker at 10, aborted 11-12).
        let mut pairs = run(0, 0, 10);
        pairs.extend(run(13, 10, 5));
        let m = map_of(&pairs);
        assert_eq!(shape(&m), vec![(0, 0, 10), (13, 10, 5)]);
        assert_eq!(m.translate(9), Exact(9));
        for u in 10..=13 {
            assert_eq!(m.translate(u), Exact(10), "u={u}");
        }
        assert_eq!(m.translate(17), Exact(14));
        assert_eq!(m.translate(18), Conservative(15));
    }

    #[test]
    fn downstream_gap_is_exact() {
        // Someone else wrote downstream 5..8.
        let mut pairs = run(0, 0, 5);
        pairs.extend(run(5, 8, 5));
        let m = map_of(&pairs);
        assert_eq!(shape(&m), vec![(0, 0, 5), (5, 8, 5)]);
        assert_eq!(m.translate(4), Exact(4));
        assert_eq!(m.translate(5), Exact(8));
    }

    #[test]
    fn equal_gaps_on_both_sides_stay_two_segments() {
        let mut pairs = run(0, 0, 5);
        pairs.extend(run(7, 7, 5));
        let m = map_of(&pairs);
        assert_eq!(m.segment_count(), 2);
        // 5 and 6 were not replicated: the next record is 7 at 7.
        assert_eq!(m.translate(5), Exact(7));
    }

    #[test]
    fn downstream_truncation_drops_contradicted_facts() {
        // Target truncated back to 6 after an unclean election; replication
        // goes on with upstream 10.
        let mut pairs = run(0, 0, 10);
        pairs.push((10, 6));
        let m = map_of(&pairs);
        assert_eq!(shape(&m), vec![(0, 0, 6), (10, 6, 1)]);
        assert_eq!(m.translate(5), Exact(5));
        // Upstream 6..9 are gone from the target; the next present record is
        // upstream 10 at 6.
        assert_eq!(m.translate(7), Exact(6));
        assert_eq!(m.translate(11), Conservative(7));
    }

    #[test]
    fn target_recreated_resets_the_map() {
        let mut m = map_of(&run(50, 1000, 20));
        m.record(70, 0).unwrap();
        assert_eq!(shape(&m), vec![(70, 0, 1)]);
        assert_eq!(m.translate(60), Unknown);
        assert_eq!(m.translate(70), Exact(0));
    }

    #[test]
    fn upstream_replay_maps_to_new_copies() {
        // Restart from progress 5 after records up to 9 were written.
        let mut pairs = run(0, 0, 10);
        pairs.extend(run(5, 10, 5));
        let m = map_of(&pairs);
        assert_eq!(shape(&m), vec![(0, 0, 5), (5, 10, 5)]);
        assert_eq!(m.translate(4), Exact(4));
        assert_eq!(m.translate(5), Exact(10));
        assert_eq!(m.translate(9), Exact(14));
    }

    #[test]
    fn rewind_onto_an_existing_fact_truncates_and_reextends() {
        // Downstream offset 5 reused for upstream 5: everything from 5 on is
        // void, then the new fact continues the shortened run.
        let mut m = map_of(&run(0, 0, 10));
        m.record(5, 5).unwrap();
        assert_eq!(shape(&m), vec![(0, 0, 6)]);
        assert_eq!(m.translate(7), Conservative(6));
    }

    #[test]
    fn session_break_makes_the_gap_unknown() {
        let mut m = map_of(&run(0, 0, 10));
        m.start_session();
        m.record(20, 30).unwrap();
        assert_eq!(m.segments().next().unwrap().gap_after(), Gap::Unknown);
        // Records 10..19 may have been written by the old session unseen.
        assert_eq!(m.translate(10), Conservative(10));
        assert_eq!(m.translate(19), Conservative(10));
        assert_eq!(m.translate(20), Exact(30));
        // A break that continues exactly is still one run: nothing can hide
        // between adjacent offsets.
        m.start_session();
        m.record(21, 31).unwrap();
        assert_eq!(m.segment_count(), 2);
    }

    #[test]
    fn invalid_offsets_rejected_without_change() {
        let mut m = map_of(&run(0, 0, 3));
        assert_eq!(
            m.record(-1, 5),
            Err(OffsetMapError::InvalidOffset {
                upstream: -1,
                downstream: 5
            })
        );
        assert!(m.record(5, i64::MAX).is_err());
        assert!(m.apply_sync(p(i64::MAX, 0), SyncLink::Foreign).is_err());
        assert_eq!(shape(&m), vec![(0, 0, 3)]);
    }

    #[test]
    fn eviction_drops_oldest_and_keeps_known_gap() {
        let mut m = OffsetMap::with_max_segments(NonZeroUsize::new(2).unwrap());
        for (u, d) in [(0, 0), (1, 1), (5, 2), (6, 3), (10, 4), (20, 5)] {
            m.record(u, d).unwrap();
        }
        // Segments were (0,0,2) (5,2,2) (10,4,1) (20,5,1); two evicted.
        assert_eq!(shape(&m), vec![(10, 4, 1), (20, 5, 1)]);
        assert_eq!(m.evictions(), 2);
        assert!(m.segment_count() <= m.max_segments());
        assert_eq!(m.translate(6), Unknown);
        // Gap 7..10 after the evicted (5,2,2) was known empty.
        assert_eq!(m.translate(7), Exact(4));
        assert_eq!(m.translate(10), Exact(4));
        assert_eq!(m.translate(11), Exact(5));
    }

    #[test]
    fn eviction_of_unknown_gap_leaves_no_floor() {
        let mut m = OffsetMap::with_max_segments(NonZeroUsize::new(1).unwrap());
        m.record(0, 0).unwrap();
        m.start_session();
        m.record(5, 5).unwrap();
        assert_eq!(shape(&m), vec![(5, 5, 1)]);
        assert_eq!(m.translate(3), Unknown);
        assert_eq!(m.translate(5), Exact(5));
    }

    #[test]
    fn approx_bytes_tracks_capacity() {
        let mut m = OffsetMap::new();
        let empty = m.approx_bytes();
        for i in 0..1000 {
            m.record(2 * i, i).unwrap(); // every record its own segment
        }
        assert_eq!(m.segment_count(), 1000);
        assert!(m.approx_bytes() >= empty + 1000 * 24);
        assert!(m.approx_bytes() <= empty + 2048 * 24);
    }

    #[test]
    fn long_runs_split_at_u32_max() {
        let mut m = OffsetMap::new();
        m.apply_sync(p(0, 0), SyncLink::ChainStart).unwrap();
        let far = 3 * u64::from(u32::MAX) as i64;
        m.apply_sync(p(far, far), SyncLink::Continues { prev: p(0, 0) })
            .unwrap();
        assert_eq!(m.segment_count(), 4);
        assert_eq!(m.last_pair(), Some(p(far, far)));
        for u in [
            0,
            i64::from(u32::MAX) - 1,
            i64::from(u32::MAX),
            far - 1,
            far,
        ] {
            assert_eq!(m.translate(u), Exact(u));
        }
        assert_eq!(m.translate(far + 1), Conservative(far + 1));
    }

    #[test]
    fn rebuild_from_linked_syncs_matches_live() {
        let pairs: Vec<_> = run(0, 0, 30)
            .into_iter()
            .chain(run(31, 30, 10)) // upstream marker at 30
            .chain(run(45, 45, 20)) // 4 skipped on both sides
            .chain(run(65, 60, 5)) // target truncated to 60
            .collect();
        let mut live = OffsetMap::new();
        let mut emitter = SyncEmitter::new(7);
        let mut rebuilt = OffsetMap::new();
        for &(u, d) in &pairs {
            live.record(u, d).unwrap();
            if let Some(s) = emitter.on_ack(u, d).unwrap() {
                rebuilt.apply_sync(s.pair, s.link).unwrap();
            }
        }
        let last = emitter.last_sync().unwrap();
        for u in 0..=last.upstream {
            assert_eq!(rebuilt.translate(u), live.translate(u), "u={u}");
        }
        assert_eq!(
            rebuilt.translate(last.upstream + 1),
            Conservative(last.downstream + 1)
        );
    }

    /// Why syncs carry links: with a gap of the same size on both sides, the
    /// sync points are collinear, exactly as if the run were contiguous.
    /// Interpolating would answer 10 for upstream 10, but upstream 10 and 11
    /// were never replicated: the right answer is 12.
    #[test]
    fn equal_gaps_need_the_link() {
        let pairs: Vec<_> = run(0, 0, 10).into_iter().chain(run(12, 12, 5)).collect();
        let mut emitter = SyncEmitter::new(100);
        let syncs: Vec<_> = pairs
            .iter()
            .filter_map(|&(u, d)| emitter.on_ack(u, d).unwrap())
            .collect();
        let points: Vec<_> = syncs.iter().map(|s| s.pair).collect();
        assert_eq!(points, vec![p(0, 0), p(12, 12)]);

        let mut linked = OffsetMap::new();
        let mut points_only = OffsetMap::new();
        for s in &syncs {
            linked.apply_sync(s.pair, s.link).unwrap();
            points_only.apply_sync(s.pair, SyncLink::Foreign).unwrap();
        }
        assert_eq!(linked.translate(9), Exact(9));
        assert_eq!(linked.translate(10), Exact(12));
        assert_eq!(points_only.translate(9), Conservative(1));
        assert_eq!(points_only.translate(10), Conservative(1));
    }

    #[test]
    fn foreign_syncs_behave_like_mm2_points() {
        let mut m = OffsetMap::new();
        m.apply_sync(p(10, 100), SyncLink::Foreign).unwrap();
        m.apply_sync(p(20, 110), SyncLink::Foreign).unwrap();
        m.apply_sync(p(20, 110), SyncLink::Foreign).unwrap(); // duplicate
        assert_eq!(m.segment_count(), 2);
        assert_eq!(m.translate(9), Unknown);
        assert_eq!(m.translate(10), Exact(100));
        assert_eq!(m.translate(15), Conservative(101));
        assert_eq!(m.translate(20), Exact(110));
        assert_eq!(m.translate(25), Conservative(111));
    }

    #[test]
    fn broken_chain_trusts_points_only() {
        let mut m = OffsetMap::new();
        m.apply_sync(p(0, 0), SyncLink::ChainStart).unwrap();
        // The sync at (10, 10) was lost (or compacted away).
        m.apply_sync(p(20, 20), SyncLink::Continues { prev: p(10, 10) })
            .unwrap();
        assert_eq!(m.translate(5), Conservative(1));
        assert_eq!(m.translate(20), Exact(20));
        // The chain restarts at the point we applied.
        m.apply_sync(p(30, 30), SyncLink::Continues { prev: p(20, 20) })
            .unwrap();
        assert_eq!(m.translate(25), Exact(25));
        // A link that does not line up with its own claim is not trusted.
        m.apply_sync(p(40, 45), SyncLink::Continues { prev: p(30, 30) })
            .unwrap();
        assert_eq!(m.translate(35), Conservative(31));
    }

    #[test]
    fn record_after_rebuild_starts_a_new_session() {
        let mut m = OffsetMap::new();
        m.apply_sync(p(0, 0), SyncLink::ChainStart).unwrap();
        m.apply_sync(p(50, 50), SyncLink::Continues { prev: p(0, 0) })
            .unwrap();
        // The new task resumes from progress 60; old-task records after the
        // last sync are unseen.
        m.record(60, 70).unwrap();
        assert_eq!(m.translate(50), Exact(50));
        assert_eq!(m.translate(55), Conservative(51));
        assert_eq!(m.translate(60), Exact(70));
    }

    #[test]
    fn absorbing_a_rebuilt_history_keeps_both_and_the_live_cursor() {
        // Before the restart: 0..50 at 0..50, synced and flushed.
        let mut emitter = SyncEmitter::new(10);
        let mut older = OffsetMap::new();
        for (u, d) in run(0, 0, 50) {
            if let Some(s) = emitter.on_ack(u, d).unwrap() {
                older.apply_sync(s.pair, s.link).unwrap();
            }
        }
        let s = emitter.flush().unwrap();
        older.apply_sync(s.pair, s.link).unwrap();
        // The new session resumes at 55 (50..54 were transaction markers the
        // old session may or may not have seen) while the rebuild still runs.
        let mut live = OffsetMap::new();
        live.start_session();
        for (u, d) in run(55, 50, 10).into_iter().chain(run(67, 60, 3)) {
            live.record(u, d).unwrap();
        }
        assert_eq!(live.translate(10), Unknown);
        live.absorb_older(older);
        assert_eq!(shape(&live), vec![(0, 0, 50), (55, 50, 10), (67, 60, 3)]);
        assert_eq!(live.translate(10), Exact(10));
        assert_eq!(live.translate(52), Conservative(50), "unknown gap");
        assert_eq!(live.translate(55), Exact(50));
        assert_eq!(live.translate(66), Exact(60), "known gap kept");
        // Still live: the next delivery report extends the last run.
        live.record(70, 63).unwrap();
        assert_eq!(live.segment_count(), 3);
        assert_eq!(live.translate(70), Exact(63));
    }

    #[test]
    fn absorbing_drops_contradicted_history_and_respects_the_cap() {
        // The old session wrote up to upstream 100; the new one replays from
        // 80 (older progress) onto a target truncated to 70.
        let older = map_of(&run(0, 0, 100));
        let mut live = OffsetMap::with_max_segments(NonZeroUsize::new(2).unwrap());
        live.start_session();
        for (u, d) in run(80, 70, 5) {
            live.record(u, d).unwrap();
        }
        live.absorb_older(older);
        assert_eq!(shape(&live), vec![(0, 0, 70), (80, 70, 5)]);
        assert_eq!(live.translate(75), Conservative(70), "unknown gap");
        // A map that already evicted ignores history: it could have gaps.
        let mut evicted = OffsetMap::with_max_segments(NonZeroUsize::new(1).unwrap());
        evicted.record(200, 200).unwrap();
        evicted.record(210, 201).unwrap();
        evicted.absorb_older(map_of(&run(0, 0, 100)));
        assert_eq!(shape(&evicted), vec![(210, 201, 1)]);
        // Over-long history is trimmed from the front.
        let mut small = OffsetMap::with_max_segments(NonZeroUsize::new(2).unwrap());
        small.record(500, 500).unwrap();
        let mut history = OffsetMap::new();
        for (u, d) in [(0, 0), (10, 1), (20, 2)] {
            history.record(u, d).unwrap();
        }
        small.absorb_older(history);
        assert_eq!(shape(&small), vec![(20, 2, 1), (500, 500, 1)]);
    }

    #[test]
    fn mm2_overshoots_after_target_truncation_ferry_does_not() {
        use crate::sync::mm2_translate;
        let mut pairs = run(0, 0, 102);
        pairs.extend(run(150, 50, 1)); // target truncated to 50
        let mut live = OffsetMap::new();
        let mut emitter = SyncEmitter::new(100);
        let mut syncs = Vec::new();
        for &(u, d) in &pairs {
            live.record(u, d).unwrap();
            syncs.extend(emitter.on_ack(u, d).unwrap().map(|s| s.pair));
        }
        assert_eq!(syncs, vec![p(0, 0), p(101, 101), p(150, 50)]);
        // First present record with upstream >= 120 is 150, now at 50.
        assert_eq!(live.translate(120), Exact(50));
        assert_eq!(mm2_translate(&syncs, 120), Some(102));
    }
}
