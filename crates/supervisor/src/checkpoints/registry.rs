//! The per-partition offset maps and sync emitters of one flow, and the
//! sessions through which ack trackers feed them.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_checkpoint::{EmittedSync, OffsetMap, SyncEmitter, SyncReplay, Translation};
use tokio::sync::mpsc;

use super::{MAX_SEGMENTS_PER_PARTITION, OFFSET_LAG_MAX, SYNC_QUEUE_CAPACITY};
use crate::clock::lock;

/// One sync on its way to the offset-syncs topic.
#[derive(Debug)]
pub(crate) struct SyncMsg {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) sync: EmittedSync,
}

/// Counters of one flow's checkpointing, cheap to read (for status and
/// tests; the Prometheus families are counted separately).
#[derive(Debug, Default)]
pub struct CheckpointStats {
    /// Offset syncs the target acknowledged.
    pub syncs_written: AtomicU64,
    /// Syncs dropped because the queue was full (or the writer gone).
    pub syncs_dropped: AtomicU64,
    /// Offset syncs the target refused or never acknowledged; the
    /// partition's next sync is emitted afresh.
    pub sync_write_errors: AtomicU64,
    /// Checkpoint records the target acknowledged.
    pub checkpoints_written: AtomicU64,
    /// Group offsets committed on the target.
    pub group_offsets_synced: AtomicU64,
    /// Group offsets deliberately not synced, counted once per group,
    /// partition, offset and reason (the debug log says which reason).
    pub group_offsets_skipped: AtomicU64,
    /// Group offsets whose commit on the target failed.
    pub group_offsets_failed: AtomicU64,
    /// Checkpoint cycles completed.
    pub cycles: AtomicU64,
}

struct OffsetsState {
    map: OffsetMap,
    emitter: SyncEmitter,
    session: u64,
    /// Under exactly-once: the acknowledged pairs of the open transaction.
    /// They become facts of the map only once the transaction commits, so
    /// no translation ever points at records a reader may never see.
    staged: Option<Vec<(i64, i64)>>,
}

/// The offset map and sync emitter of one source partition, shared by its
/// successive ack trackers.
pub struct PartitionOffsets {
    topic: Arc<str>,
    partition: i32,
    state: Mutex<OffsetsState>,
    syncs: mpsc::Sender<SyncMsg>,
    stats: Arc<CheckpointStats>,
}

impl std::fmt::Debug for PartitionOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionOffsets")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl PartitionOffsets {
    fn state(&self) -> MutexGuard<'_, OffsetsState> {
        lock(&self.state)
    }

    /// Queues a sync; on overflow drops it and restarts the chain, so a
    /// reader never links across the hole.
    fn send(&self, state: &mut OffsetsState, sync: EmittedSync) {
        let msg = SyncMsg {
            topic: self.topic.clone(),
            partition: self.partition,
            sync,
        };
        if self.syncs.try_send(msg).is_err() {
            state.emitter.reset();
            self.stats.syncs_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Translates a committed source offset of this partition.
    pub fn translate(&self, upstream: i64) -> Translation {
        self.state().map.translate(upstream)
    }

    /// The size of this partition's map.
    pub fn footprint(&self) -> MapFootprint {
        let s = self.state();
        MapFootprint {
            partitions: 1,
            segments: s.map.segment_count(),
            bytes: s.map.approx_bytes(),
        }
    }
}

/// The size of offset maps (see the module docs for the memory bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapFootprint {
    /// Partitions counted.
    pub partitions: usize,
    /// Segments of their maps (runs of offsets copied in lockstep).
    pub segments: usize,
    /// Approximate.
    pub bytes: usize,
}

/// An ack tracker's connection to its partition's offset map: one session.
pub struct SessionHandle {
    offsets: Arc<PartitionOffsets>,
    session: u64,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("topic", &self.offsets.topic)
            .field("partition", &self.offsets.partition)
            .field("session", &self.session)
            .finish()
    }
}

impl SessionHandle {
    /// Source record `upstream` was acknowledged at target offset
    /// `downstream`. Call in delivery-report order. O(1), no allocation.
    #[inline]
    pub fn on_ack(&self, upstream: i64, downstream: i64) {
        let mut guard = self.offsets.state();
        let state = &mut *guard;
        if state.session != self.session {
            return; // a newer session owns the partition
        }
        if let Some(staged) = &mut state.staged {
            staged.push((upstream, downstream));
            return;
        }
        if state.map.record(upstream, downstream).is_err() {
            // A report without a usable offset: what follows does not
            // continue what the map knows.
            state.map.start_session();
            state.emitter.reset();
            return;
        }
        if let Ok(Some(sync)) = state.emitter.on_ack(upstream, downstream) {
            self.offsets.send(state, sync);
        }
    }
}

/// What a transaction commits for one partition's offsets: the syncs to
/// write inside it, and the emitter as it stands once they are written.
#[derive(Debug)]
pub(crate) struct StagedSyncs {
    pub syncs: Vec<EmittedSync>,
    emitter: SyncEmitter,
}

impl SessionHandle {
    /// Under exactly-once: the offset syncs describing the staged pairs
    /// (as the live emitter would have emitted them) and one at the last
    /// staged pair, so a map rebuilt from the topic is exact up to the
    /// transaction's end. Nothing changes until [`Self::commit_staged`].
    pub(crate) fn stage_syncs(&self) -> Option<StagedSyncs> {
        let state = self.offsets.state();
        if state.session != self.session {
            return None;
        }
        let staged = state.staged.as_ref()?;
        let mut emitter = state.emitter.clone();
        let mut syncs = Vec::new();
        for &(upstream, downstream) in staged {
            match emitter.on_ack(upstream, downstream) {
                Ok(Some(sync)) => syncs.push(sync),
                Ok(None) => {}
                Err(_) => emitter.reset(),
            }
        }
        syncs.extend(emitter.flush());
        Some(StagedSyncs { syncs, emitter })
    }

    /// The transaction holding the staged pairs and `syncs` committed: the
    /// pairs become facts of the map.
    pub(crate) fn commit_staged(&self, syncs: StagedSyncs) {
        let mut guard = self.offsets.state();
        let state = &mut *guard;
        if state.session != self.session {
            return;
        }
        let staged = state.staged.replace(Vec::new()).unwrap_or_default();
        for (upstream, downstream) in staged {
            if state.map.record(upstream, downstream).is_err() {
                state.map.start_session();
            }
        }
        state.emitter = syncs.emitter;
    }

    /// The transaction holding the staged pairs aborted: they never reach a
    /// reader, and what this session copies next does not continue them.
    pub(crate) fn abort_staged(&self) {
        let mut state = self.offsets.state();
        if state.session == self.session {
            if let Some(staged) = &mut state.staged {
                staged.clear();
            }
            state.map.start_session();
            state.emitter.reset();
        }
    }
}

impl SessionHandle {
    /// A source record of this session will never be on the target (the
    /// target refused it and it was skipped or dead-lettered): the map must
    /// not treat the gap around it as known empty, and the next sync starts
    /// a new chain, so translations across it stay conservative.
    pub fn on_unreplicated(&self) {
        let mut state = self.offsets.state();
        if state.session == self.session {
            state.map.start_session();
            state.emitter.reset();
        }
    }
}

/// Source topic → partition → offsets.
type PartitionsByTopic = HashMap<Arc<str>, HashMap<i32, Arc<PartitionOffsets>>>;

/// Every replicated partition's offsets, for one running flow.
pub struct OffsetRegistry {
    partitions: Mutex<PartitionsByTopic>,
    ready: AtomicBool,
    syncs: mpsc::Sender<SyncMsg>,
    stats: Arc<CheckpointStats>,
    max_segments: NonZeroUsize,
}

impl std::fmt::Debug for OffsetRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetRegistry")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl OffsetRegistry {
    /// A registry and the receiving end of its sync queue (for the writer).
    pub(crate) fn new() -> (Arc<Self>, mpsc::Receiver<SyncMsg>) {
        let (tx, rx) = mpsc::channel(SYNC_QUEUE_CAPACITY);
        let registry = OffsetRegistry {
            partitions: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
            syncs: tx,
            stats: Arc::new(CheckpointStats::default()),
            max_segments: NonZeroUsize::new(MAX_SEGMENTS_PER_PARTITION).expect("non-zero"),
        };
        (Arc::new(registry), rx)
    }

    /// The flow's checkpointing counters.
    pub fn stats(&self) -> &CheckpointStats {
        &self.stats
    }

    /// True once the history was rebuilt from the offset-syncs topic.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn entry(&self, topic: &Arc<str>, partition: i32) -> Arc<PartitionOffsets> {
        let mut partitions = lock(&self.partitions);
        partitions
            .entry(topic.clone())
            .or_default()
            .entry(partition)
            .or_insert_with(|| {
                Arc::new(PartitionOffsets {
                    topic: topic.clone(),
                    partition,
                    state: Mutex::new(OffsetsState {
                        map: OffsetMap::with_max_segments(self.max_segments),
                        emitter: SyncEmitter::new(OFFSET_LAG_MAX),
                        session: 0,
                        staged: None,
                    }),
                    syncs: self.syncs.clone(),
                    stats: self.stats.clone(),
                })
            })
            .clone()
    }

    /// Starts a new session for a new ack tracker of `topic`/`partition`:
    /// earlier sessions' late reports are ignored from now on.
    /// Under exactly-once (`transactional`), the session's pairs are staged
    /// until their transaction commits (see `SessionHandle::stage_syncs`).
    pub fn attach(&self, topic: &Arc<str>, partition: i32, transactional: bool) -> SessionHandle {
        let offsets = self.entry(topic, partition);
        let session = {
            let mut s = offsets.state();
            s.session += 1;
            s.map.start_session();
            s.emitter.reset();
            s.staged = transactional.then(Vec::new);
            s.session
        };
        SessionHandle { offsets, session }
    }

    /// The offsets of one partition, if it was ever replicated or synced.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionOffsets>> {
        lock(&self.partitions)
            .get(topic)
            .and_then(|p| p.get(&partition))
            .cloned()
    }

    /// Translates `upstream` for a partition; `Unknown` until the history
    /// was rebuilt, or for a partition never seen.
    pub fn translate(&self, topic: &str, partition: i32, upstream: i64) -> Translation {
        if !self.is_ready() {
            return Translation::Unknown;
        }
        self.get(topic, partition)
            .map_or(Translation::Unknown, |p| p.translate(upstream))
    }

    /// Every partition with a map.
    pub(crate) fn partitions(&self) -> Vec<(String, i32)> {
        lock(&self.partitions)
            .iter()
            .flat_map(|(t, p)| p.keys().map(move |p| (t.to_string(), *p)))
            .collect()
    }

    fn all(&self) -> Vec<Arc<PartitionOffsets>> {
        lock(&self.partitions)
            .values()
            .flat_map(|p| p.values().cloned())
            .collect()
    }

    /// Puts the history rebuilt from the offset-syncs topic under the live
    /// maps and allows translation.
    pub(crate) fn install_history(&self, replay: SyncReplay) {
        for ((topic, partition), older) in replay.into_maps() {
            let topic: Arc<str> = Arc::from(topic.as_str());
            let offsets = self.entry(&topic, partition);
            offsets.state().map.absorb_older(older);
        }
        self.ready.store(true, Ordering::Release);
    }

    /// Forgets a partition another process copies now: if this process
    /// owns it again later, its map starts over and takes the history (its
    /// own and the other owners') from the offset-syncs topic again.
    pub(crate) fn forget(&self, topic: &str, partition: i32) {
        if let Some(partitions) = lock(&self.partitions).get_mut(topic) {
            partitions.remove(&partition);
        }
    }

    /// Puts the history replayed from the offset-syncs topic under the live
    /// maps of the partitions `wanted` selects (partitions this process
    /// just started to copy), leaving the others alone.
    pub(crate) fn absorb_history_of(&self, replay: SyncReplay, wanted: impl Fn(&str, i32) -> bool) {
        for ((topic, partition), older) in replay.into_maps() {
            if !wanted(&topic, partition) {
                continue;
            }
            let topic: Arc<str> = Arc::from(topic.as_str());
            self.entry(&topic, partition)
                .state()
                .map
                .absorb_older(older);
        }
    }

    /// Emits, for every partition, a sync at its last acknowledged record if
    /// the chain does not end there yet.
    pub(crate) fn flush_syncs(&self) {
        for offsets in self.all() {
            let mut guard = offsets.state();
            let state = &mut *guard;
            // A transactional session writes its syncs in its transactions.
            if state.staged.is_some() {
                continue;
            }
            if let Some(sync) = state.emitter.flush() {
                offsets.send(state, sync);
            }
        }
    }

    pub(super) fn reset_emitter(&self, topic: &str, partition: i32) {
        if let Some(p) = self.get(topic, partition) {
            p.state().emitter.reset();
        }
    }

    /// The size of every map together.
    pub fn footprint(&self) -> MapFootprint {
        self.all()
            .iter()
            .map(|p| p.footprint())
            .fold(MapFootprint::default(), |sum, p| MapFootprint {
                partitions: sum.partitions + p.partitions,
                segments: sum.segments + p.segments,
                bytes: sum.bytes + p.bytes,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_fence_late_reports_and_queue_syncs() {
        let (registry, mut rx) = OffsetRegistry::new();
        let topic: Arc<str> = Arc::from("orders");
        let first = registry.attach(&topic, 0, false);
        for i in 0..10 {
            first.on_ack(i, 100 + i);
        }
        // Not rebuilt yet: translation refused.
        assert_eq!(registry.translate("orders", 0, 5), Translation::Unknown);
        registry.install_history(SyncReplay::default());
        assert_eq!(registry.translate("orders", 0, 5), Translation::Exact(105));
        // A new session; the old slot's late reports no longer count.
        let second = registry.attach(&topic, 0, false);
        first.on_ack(10, 110);
        second.on_ack(10, 111);
        assert_eq!(registry.translate("orders", 0, 10), Translation::Exact(111));
        assert_eq!(registry.translate("orders", 0, 9), Translation::Exact(109));
        // Syncs: chain start, then the new session's chain start.
        let mut got = Vec::new();
        while let Ok(m) = rx.try_recv() {
            got.push((m.partition, m.sync.pair.upstream, m.sync.link));
        }
        assert_eq!(got.len(), 2, "{got:?}");
        registry.flush_syncs();
        assert!(
            rx.try_recv().is_err(),
            "nothing after the last sync to flush"
        );
        second.on_ack(11, 112);
        registry.flush_syncs();
        let flushed = rx.try_recv().unwrap();
        assert_eq!(flushed.sync.pair.upstream, 11);
        assert_eq!(registry.footprint().partitions, 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_restarts_the_chain() {
        let (registry, mut rx) = OffsetRegistry::new();
        let topic: Arc<str> = Arc::from("t");
        let h = registry.attach(&topic, 0, false);
        // Every record after a gap: one sync each.
        for i in 0..(SYNC_QUEUE_CAPACITY as i64 + 10) {
            h.on_ack(2 * i, i);
        }
        assert_eq!(registry.stats().syncs_dropped.load(Ordering::Relaxed), 10);
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, SYNC_QUEUE_CAPACITY);
        // The next sync starts a new chain.
        h.on_ack(1_000_000, 1_000_000);
        let m = rx.try_recv().unwrap();
        assert_eq!(m.sync.link, ferry_checkpoint::SyncLink::ChainStart);
    }

    #[tokio::test]
    async fn transactional_sessions_make_facts_and_syncs_only_at_commit() {
        let (registry, mut rx) = OffsetRegistry::new();
        registry.install_history(SyncReplay::default());
        let topic: Arc<str> = Arc::from("t");
        let h = registry.attach(&topic, 0, true);
        for i in 0..5 {
            h.on_ack(i, 100 + i);
        }
        // Acknowledged in an open transaction: no fact, no queued sync.
        assert_eq!(registry.translate("t", 0, 2), Translation::Unknown);
        registry.flush_syncs();
        assert!(rx.try_recv().is_err(), "syncs go into the transaction");
        let staged = h.stage_syncs().expect("a transactional session");
        let upstream: Vec<i64> = staged.syncs.iter().map(|s| s.pair.upstream).collect();
        assert_eq!(
            upstream,
            [0, 4],
            "the chain start and the transaction's end"
        );
        h.commit_staged(staged);
        assert_eq!(registry.translate("t", 0, 2), Translation::Exact(102));
        // The next transaction's first copy sits after a commit marker
        // (offset 105); that transaction aborts.
        h.on_ack(5, 106);
        let staged = h.stage_syncs().unwrap();
        assert!(
            matches!(
                staged.syncs[0].link,
                ferry_checkpoint::SyncLink::NewRun { .. }
            ),
            "{staged:?}"
        );
        h.abort_staged();
        // Never a translation into the aborted copy: conservative, at the
        // end of what was committed.
        assert_eq!(
            registry.translate("t", 0, 5),
            Translation::Conservative(105)
        );
        // The copy again, committed this time.
        h.on_ack(5, 108);
        let staged = h.stage_syncs().unwrap();
        assert_eq!(staged.syncs[0].link, ferry_checkpoint::SyncLink::ChainStart);
        h.commit_staged(staged);
        assert_eq!(registry.translate("t", 0, 5), Translation::Exact(108));
        assert!(rx.try_recv().is_err());
    }
}
