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

pub use crate::pair::OffsetMapError;
use crate::pair::{OffsetPair, SyncLink};

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

    /// Translates a committed **downstream** offset back upstream: "the next
    /// record to read downstream is `downstream`" becomes the upstream offset
    /// after the last replicated record the reader has consumed, i.e. after
    /// the record at `downstream - 1` or the last one before it. Used to hand
    /// a group back to the cluster it came from (failback).
    /// - `downstream - 1` inside a segment: [`Translation::Exact`].
    /// - In a known-empty gap (those downstream offsets hold no copied
    ///   record): `Exact` end of the preceding segment.
    /// - In an unknown gap, or past the last fact:
    ///   [`Translation::Conservative`]`(end of the preceding segment)`: any
    ///   record copied from there on comes from at or after it.
    /// - At or before the first fact's downstream offset:
    ///   [`Translation::Unknown`] (what came before is not known).
    pub fn translate_back(&self, downstream: i64) -> Translation {
        let Some(first) = self.segments.front() else {
            return Translation::Unknown;
        };
        if downstream <= first.downstream {
            return Translation::Unknown;
        }
        // Last segment starting before `downstream`; exists since
        // first.downstream < downstream.
        let idx = self.segments.partition_point(|s| s.downstream < downstream) - 1;
        let seg = &self.segments[idx];
        if downstream <= seg.downstream_end() {
            return Translation::Exact(seg.upstream + (downstream - seg.downstream));
        }
        match self.segments.get(idx + 1) {
            Some(_) if seg.gap_after == Gap::KnownEmpty => Translation::Exact(seg.upstream_end()),
            _ => Translation::Conservative(seg.upstream_end()),
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
mod tests;
