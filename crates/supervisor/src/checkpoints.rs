//! Offset translation at run time: offset syncs, the per-partition offset
//! maps, checkpoints, group offset sync and heartbeats, in MirrorMaker 2's
//! formats (`ferry_checkpoint` holds the pure logic; this module does the
//! I/O).
//!
//! # Where the facts come from
//! Every acknowledged record is an exact fact "source offset `u` is at target
//! offset `d`". The delivery thread hands each one, in order, to the
//! partition's [`SessionHandle::on_ack`] (from the ack tracker, under the
//! slot's lock): one uncontended mutex and an O(1) map update, no
//! allocation. The same call asks the partition's `SyncEmitter` whether an
//! offset sync is due and, if so, pushes it onto the flow's bounded sync
//! queue (`try_send`, never blocking the delivery thread).
//!
//! # The registry and sessions
//! [`OffsetRegistry`] keeps one [`PartitionOffsets`] per source partition for
//! the life of the flow, so the map survives task restarts: each new ack
//! tracker (slot) [`attach`](OffsetRegistry::attach)es and starts a new
//! *session*. Reports addressed to an older session (a fenced slot whose
//! records land after its successor started) are ignored, and the gap
//! between sessions is unknown to the map, which keeps translations there
//! conservative. A slot whose partition failed stops feeding the map: the
//! records after a refused one are re-copied by the next session.
//!
//! # Flow-level tasks ([`Checkpointing`])
//! - **Sync writer**: drains the queue into the offset-syncs topic, one
//!   record per sync with the `ferry.sync.link` header. If the queue is full
//!   the sync is dropped, counted, and the partition's emitter reset: the
//!   next sync starts a new chain, so a rebuilt map only loses precision
//!   (never correctness) across the hole. A failed write resets the emitter
//!   the same way.
//! - **Rebuild**: at start, reads the offset-syncs topic up to its end and
//!   puts the rebuilt history under the live maps
//!   (`OffsetMap::absorb_older`). Until it finished, every translation is
//!   refused ([`Translation::Unknown`]): a checkpoint written from a
//!   half-rebuilt map could be behind an earlier one for no reason.
//! - **Checkpoint cycle**, every `checkpoint_interval` once the rebuild is
//!   done: flushes every emitter (one sync at the last ack, so a rebuild
//!   after a crash is exact up to the last cycle), lists the source groups
//!   matching the flow's filters, translates their committed offsets on
//!   replicated partitions, writes checkpoints that changed (see
//!   `ferry_checkpoint::ledger` for the rule; the ledger is loaded from the
//!   checkpoints topic first, so checkpoints stay monotonic across
//!   restarts), then, with `sync_group_offsets`, commits them into idle
//!   target groups, forwards only. A last cycle runs at the drain, after the
//!   data plane acknowledged everything in flight.
//! - **Heartbeats**, every `heartbeat_interval`.
//!
//! # Topic names
//! Exactly MirrorMaker 2's (`MirrorSourceConfig.offsetSyncsTopic`): the
//! offset-syncs topic is named after the *other* cluster, so it is
//! `mm2-offset-syncs.<source>.internal` on the target (Ferry's default
//! location) and `mm2-offset-syncs.<target>.internal` on the source. This is
//! what MM2 writes with `offset-syncs.topic.location = target`, and it keeps
//! two flows into one target from mixing their syncs (the key names only the
//! source topic and partition). Checkpoints go to
//! `<source>.checkpoints.internal` and heartbeats to `heartbeats`, on the
//! target. All three are created when missing: one partition, compacted.
//!
//! # Memory bound
//! Per replicated partition: one `PartitionOffsets` (about 200 bytes) plus
//! 24 bytes per segment of its map. A segment starts at each discontinuity
//! (transaction markers, cycle-protection skips, another producer writing
//! into the target, a task restart), so a non-transactional partition holds
//! one. The map keeps at most [`MAX_SEGMENTS_PER_PARTITION`] segments
//! (24 KiB); beyond that the oldest is dropped, and committed offsets older
//! than the oldest kept segment translate to `Unknown`: no new checkpoint is
//! written for them and the last one stays (always safe, possibly stale).
//! At 10,000 partitions the worst case is 240 MiB, the common case about
//! 2 MiB. The sync queue holds at most [`SYNC_QUEUE_CAPACITY`] syncs
//! (about 80 bytes each).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_admin::{Admin, AdminError};
use ferry_checkpoint::group_sync::{self, SkipReason, TargetGroup};
use ferry_checkpoint::wire::{self, Checkpoint, Heartbeat};
use ferry_checkpoint::{
    CheckpointKey, CheckpointLedger, Decision, EmittedSync, OffsetMap, SyncEmitter, SyncReplay,
    Translation,
};
use ferry_config::{Cluster, Flow, Mm2Offsets, SyncsLocation};
use ferry_http::{FlowMetrics, SyncResult};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clients::{client_config, ClusterContext, Role};
use crate::internal::InternalProducer;
use crate::{topics, EngineError};

/// Most segments one partition's map keeps (24 bytes each); see the module
/// docs for the memory bound.
pub const MAX_SEGMENTS_PER_PARTITION: usize = 1024;
/// Syncs waiting for the writer, per flow.
pub const SYNC_QUEUE_CAPACITY: usize = 16_384;
/// MM2's `offset.lag.max` default: an MM2 reader of Ferry's syncs re-reads
/// at most this many records minus one inside a run.
pub const OFFSET_LAG_MAX: u64 = SyncEmitter::DEFAULT_OFFSET_LAG_MAX;
/// How long reading an internal topic to its end may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Admin requests of one group in flight at once, per cycle.
const GROUP_CONCURRENCY: usize = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Where a flow's offset syncs live: which cluster and which topic.
pub fn offset_syncs_location<'a>(
    flow: &Flow,
    source: &'a Cluster,
    target: &'a Cluster,
) -> (&'a Cluster, String) {
    match flow.offset_syncs_location {
        SyncsLocation::Target => (target, wire::offset_syncs_topic(&flow.source)),
        SyncsLocation::Source => (source, wire::offset_syncs_topic(&flow.target)),
    }
}

/// The checkpoints topic of a flow (on its target).
pub fn checkpoints_topic(flow: &Flow) -> String {
    wire::checkpoints_topic(&flow.source)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/// One sync on its way to the offset-syncs topic.
#[derive(Debug)]
pub(crate) struct SyncMsg {
    topic: Arc<str>,
    partition: i32,
    sync: EmittedSync,
}

/// Counters of one flow's checkpointing, cheap to read (for status and
/// tests; the Prometheus families are counted separately).
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub syncs_written: AtomicU64,
    /// Syncs dropped because the queue was full (or the writer gone).
    pub syncs_dropped: AtomicU64,
    pub sync_write_errors: AtomicU64,
    pub checkpoints_written: AtomicU64,
    pub group_offsets_synced: AtomicU64,
    pub group_offsets_skipped: AtomicU64,
    pub group_offsets_failed: AtomicU64,
    /// Checkpoint cycles completed.
    pub cycles: AtomicU64,
}

struct OffsetsState {
    map: OffsetMap,
    emitter: SyncEmitter,
    session: u64,
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

    /// Segments and approximate bytes of the map.
    pub fn footprint(&self) -> (usize, usize) {
        let s = self.state();
        (s.map.segment_count(), s.map.approx_bytes())
    }
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
                    }),
                    syncs: self.syncs.clone(),
                    stats: self.stats.clone(),
                })
            })
            .clone()
    }

    /// Starts a new session for a new ack tracker of `topic`/`partition`:
    /// earlier sessions' late reports are ignored from now on.
    pub fn attach(&self, topic: &Arc<str>, partition: i32) -> SessionHandle {
        let offsets = self.entry(topic, partition);
        let session = {
            let mut s = offsets.state();
            s.session += 1;
            s.map.start_session();
            s.emitter.reset();
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

    /// Emits, for every partition, a sync at its last acknowledged record if
    /// the chain does not end there yet.
    pub(crate) fn flush_syncs(&self) {
        for offsets in self.all() {
            let mut guard = offsets.state();
            let state = &mut *guard;
            if let Some(sync) = state.emitter.flush() {
                offsets.send(state, sync);
            }
        }
    }

    fn reset_emitter(&self, topic: &str, partition: i32) {
        if let Some(p) = self.get(topic, partition) {
            p.state().emitter.reset();
        }
    }

    /// Partitions, segments and approximate bytes of every map.
    pub fn footprint(&self) -> (usize, usize, usize) {
        self.all()
            .iter()
            .map(|p| p.footprint())
            .fold((0, 0, 0), |(n, s, b), (ps, pb)| (n + 1, s + ps, b + pb))
    }
}

// ---------------------------------------------------------------------------
// Reading internal topics
// ---------------------------------------------------------------------------

/// Reads every partition of `topic` from the beginning up to the end offsets
/// seen at start, calling `f` per record. `Ok(false)` if the topic does not
/// exist.
fn read_topic_blocking(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<bool, String> {
    let consumer: BaseConsumer<ClusterContext> =
        client_config(cluster, Role::Reader, "ferry-internal-reader")
            .create_with_context(ClusterContext::new(cluster))
            .inspect(crate::clients::serve_token_refresh)
            .map_err(|e| e.to_string())?;
    let scrub = |e: &dyn std::fmt::Display| consumer.context().scrub(&e.to_string());
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout.min(Duration::from_secs(30)))
        .map_err(|e| format!("metadata request failed: {}", scrub(&e)))?;
    let Some(meta) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    else {
        return Ok(false);
    };
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in meta.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(15))
            .map_err(|e| {
                format!(
                    "cannot read watermarks of partition {}: {}",
                    p.id(),
                    scrub(&e)
                )
            })?;
        if high > low {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
    }
    if ends.is_empty() {
        return Ok(true);
    }
    consumer.assign(&tpl).map_err(|e| scrub(&e))?;
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} reading to the end"));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Err(e)) => return Err(scrub(&e)),
            Some(Ok(msg)) => {
                f(&msg);
                if ends
                    .get(&msg.partition())
                    .is_some_and(|e| msg.offset() + 1 >= *e)
                {
                    ends.remove(&msg.partition());
                }
            }
            None => {
                // Control records at the end never reach poll: compare the
                // position instead.
                if let Ok(positions) = consumer.position() {
                    for e in positions.elements() {
                        if let (Offset::Offset(o), Some(end)) =
                            (e.offset(), ends.get(&e.partition()))
                        {
                            if o >= *end {
                                ends.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(true)
}

/// Rebuilds per-partition offset maps from an offset-syncs topic (Ferry's
/// or MirrorMaker 2's). A missing topic gives an empty replay.
pub async fn read_syncs(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
) -> Result<SyncReplay, EngineError> {
    let (cluster, topic) = (cluster.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let mut replay =
            SyncReplay::new(NonZeroUsize::new(MAX_SEGMENTS_PER_PARTITION).expect("non-zero"));
        read_topic_blocking(&cluster, &topic, timeout, |msg| {
            let link = msg.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == wire::SYNC_LINK_HEADER)
                    .and_then(|h| h.value)
            });
            replay.apply_record(msg.key(), msg.payload(), link);
        })
        .map_err(|cause| EngineError::Topic {
            cluster: cluster.name.clone(),
            topic: topic.clone(),
            cause: format!("cannot read offset syncs: {cause}"),
        })?;
        Ok(replay)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("offset-syncs reader failed: {e}")))?
}

/// The last checkpoint per key from a checkpoints topic (Ferry's or
/// MirrorMaker 2's), and how many records were not checkpoints.
pub async fn read_checkpoints(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
) -> Result<(CheckpointLedger, u64), EngineError> {
    let (cluster, topic) = (cluster.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let mut ledger = CheckpointLedger::new();
        let mut skipped = 0u64;
        read_topic_blocking(&cluster, &topic, timeout, |msg| {
            match (msg.key(), msg.payload()) {
                (Some(k), Some(v)) => match Checkpoint::decode(k, v) {
                    Ok(cp) => ledger.load(&cp),
                    Err(_) => skipped += 1,
                },
                _ => skipped += 1,
            }
        })
        .map_err(|cause| EngineError::Topic {
            cluster: cluster.name.clone(),
            topic: topic.clone(),
            cause: format!("cannot read checkpoints: {cause}"),
        })?;
        Ok((ledger, skipped))
    })
    .await
    .map_err(|e| EngineError::Internal(format!("checkpoints reader failed: {e}")))?
}

// ---------------------------------------------------------------------------
// Handover from MirrorMaker 2
// ---------------------------------------------------------------------------

/// One record of a Connect offsets topic, if it is a position of
/// `connector` (Connect keys each position `[connector name, partition]`)
/// for a partition of `source_alias`, as MirrorMaker 2's source task writes
/// it: ((topic, partition), last copied offset, or `None` for a tombstone).
fn parse_mm2_offset(
    connector: &str,
    source_alias: &str,
    key: &[u8],
    value: Option<&[u8]>,
) -> Option<((String, i32), Option<i64>)> {
    let key: serde_json::Value = serde_json::from_slice(key).ok()?;
    let [namespace, partition] = key.as_array()?.as_slice() else {
        return None;
    };
    if namespace.as_str()? != connector || partition.get("cluster")?.as_str()? != source_alias {
        return None;
    }
    let topic = partition.get("topic")?.as_str()?.to_string();
    let number = i32::try_from(partition.get("partition")?.as_i64()?).ok()?;
    let offset = match value {
        None => None,
        Some(v) => Some(
            serde_json::from_slice::<serde_json::Value>(v)
                .ok()?
                .get("offset")?
                .as_i64()?,
        ),
    };
    Some(((topic, number), offset))
}

/// Where MirrorMaker 2 stopped copying, per source partition of this flow:
/// the next source offset to copy (MM2 stores its last copied record and
/// resumes one past it). Read from the Connect offsets topic the flow's
/// `mm2_offsets` names (by default the one MM2's dedicated mode keeps on the
/// target), held by `offsets_cluster`, so Ferry can take a flow over from
/// MM2 without copying again what MM2 copied. Only partitions whose target
/// topic, under this flow's naming, already holds records count: a naming
/// mismatch must never make Ferry skip data. Empty when MM2 never ran.
pub async fn mm2_resume_positions(
    flow: &Flow,
    offsets_cluster: &Cluster,
    target: &Cluster,
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    let (flow, offsets_cluster, target) = (flow.clone(), offsets_cluster.clone(), target.clone());
    let Mm2Offsets {
        topic, connector, ..
    } = flow.mm2_offsets.clone();
    tokio::task::spawn_blocking(move || {
        let mut positions: HashMap<(String, i32), i64> = HashMap::new();
        read_topic_blocking(&offsets_cluster, &topic, READ_TIMEOUT, |msg| {
            if let Some((key, offset)) = msg
                .key()
                .and_then(|k| parse_mm2_offset(&connector, &flow.source, k, msg.payload()))
            {
                match offset {
                    Some(o) => positions.insert(key, o + 1),
                    None => positions.remove(&key),
                };
            }
        })
        .map_err(|cause| EngineError::Topic {
            cluster: offsets_cluster.name.clone(),
            topic: topic.clone(),
            cause: format!("cannot read MirrorMaker 2's offsets (connector {connector}): {cause}"),
        })?;
        if positions.is_empty() {
            return Ok(positions);
        }
        let reader: BaseConsumer<ClusterContext> =
            client_config(&target, Role::Reader, "ferry-handover")
                .create_with_context(ClusterContext::new(&target))
                .inspect(crate::clients::serve_token_refresh)
                .map_err(|e| EngineError::Client {
                    cluster: target.name.clone(),
                    cause: e.to_string(),
                })?;
        positions.retain(|(t, p), next| {
            let remote = flow.remote_topic(t);
            let copied = reader
                .fetch_watermarks(&remote, *p, Duration::from_secs(15))
                .is_ok_and(|(_, high)| high > 0);
            if copied && topics::selects(&flow, t) {
                tracing::info!(
                    topic = %t, partition = p, resume_at = *next, target_topic = %remote,
                    connector = %connector, offsets_topic = %topic,
                    "taking over from MirrorMaker 2: it copied this partition up to here"
                );
            }
            copied
        });
        Ok(positions)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("MirrorMaker 2 offsets reader failed: {e}")))?
}

// ---------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------

use topics::ensure_internal_topic;

/// Creates an internal topic, retrying with backoff until it works or
/// `stop` fires. Returns false if stopped first.
async fn ensure_with_retry(
    admin: &Admin,
    cluster: &str,
    topic: &str,
    replication: Option<i32>,
    metrics: &Option<FlowMetrics>,
    stop: &CancellationToken,
) -> bool {
    let mut backoff = Duration::from_secs(1);
    loop {
        match ensure_internal_topic(admin, cluster, topic, replication).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "internal topic not ready");
                if let Some(m) = metrics {
                    m.error("admin");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

// ---------------------------------------------------------------------------
// Flow-level tasks
// ---------------------------------------------------------------------------

/// What the checkpointing tasks of one flow need.
pub(crate) struct Setup {
    pub flow: Flow,
    /// The flow as reloaded (topic filters change in place).
    pub live: watch::Receiver<Flow>,
    pub source: Cluster,
    pub target: Cluster,
    pub source_admin: Admin,
    pub target_admin: Admin,
    pub metrics: Option<FlowMetrics>,
    pub registry: Arc<OffsetRegistry>,
    pub syncs: mpsc::Receiver<SyncMsg>,
    /// The flow's producer for internal topics on the target.
    pub internal: InternalProducer,
}

/// The running checkpointing tasks of one flow. Dropping it stops them.
pub(crate) struct Checkpointing {
    registry: Arc<OffsetRegistry>,
    stop_cycle: CancellationToken,
    stop_writer: CancellationToken,
    stop_heartbeats: CancellationToken,
    cycle: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    rebuild: Option<JoinHandle<()>>,
    heartbeats: Option<JoinHandle<()>>,
}

/// Without [`Checkpointing::finish`] (the flow stopped on an error and will
/// restart with a fresh registry) the tasks are aborted: no last cycle, so a
/// stale ledger can never write behind the next run's checkpoints.
impl Drop for Checkpointing {
    fn drop(&mut self) {
        self.stop_cycle.cancel();
        self.stop_writer.cancel();
        self.stop_heartbeats.cancel();
        for handle in [&self.cycle, &self.writer, &self.rebuild, &self.heartbeats]
            .into_iter()
            .flatten()
        {
            handle.abort();
        }
    }
}

impl Checkpointing {
    pub fn start(setup: Setup) -> Result<Self, EngineError> {
        let Setup {
            flow,
            live,
            source,
            target,
            source_admin,
            target_admin,
            metrics,
            registry,
            syncs,
            internal,
        } = setup;
        let stop_cycle = CancellationToken::new();
        let stop_writer = CancellationToken::new();
        let stop_heartbeats = CancellationToken::new();

        let (syncs_cluster, syncs_topic) = offset_syncs_location(&flow, &source, &target);
        let syncs_cluster = syncs_cluster.clone();
        let (syncs_admin, syncs_replication) = match flow.offset_syncs_location {
            SyncsLocation::Target => (target_admin.clone(), flow.replication_factor),
            SyncsLocation::Source => (source_admin.clone(), None),
        };
        let syncs_producer = match flow.offset_syncs_location {
            SyncsLocation::Target => internal.clone(),
            SyncsLocation::Source => InternalProducer::new(&syncs_cluster, "ferry-offset-syncs")?,
        };
        let target_producer = internal;

        // The topic exists before the rebuild reads it and the writer writes.
        let topic_ready = Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            producer: syncs_producer,
            cluster: syncs_cluster.name.clone(),
            topic: syncs_topic.clone(),
            registry: registry.clone(),
            metrics: metrics.clone(),
        };
        let writer = {
            let (admin, cluster, topic, metrics, stop, ready) = (
                syncs_admin,
                syncs_cluster.name.clone(),
                syncs_topic.clone(),
                metrics.clone(),
                stop_writer.clone(),
                topic_ready.clone(),
            );
            tokio::spawn(async move {
                ensure_with_retry(&admin, &cluster, &topic, syncs_replication, &metrics, &stop)
                    .await;
                ready.notify_one();
                writer.run(syncs, stop).await;
            })
        };
        let rebuild = {
            let (registry, cluster, topic, metrics) = (
                registry.clone(),
                syncs_cluster.clone(),
                syncs_topic,
                metrics.clone(),
            );
            tokio::spawn(async move {
                topic_ready.notified().await;
                rebuild_history(&registry, &cluster, &topic, &metrics).await;
            })
        };

        let cycle = (flow.emit_checkpoints || flow.sync_group_offsets).then(|| {
            let cycle = Cycle {
                checkpoints_topic: checkpoints_topic(&flow),
                flow: flow.clone(),
                live,
                source: source.clone(),
                target: target.clone(),
                source_admin,
                target_admin: target_admin.clone(),
                producer: target_producer.clone(),
                registry: registry.clone(),
                metrics: metrics.clone(),
                ledger: None,
                reported_skips: HashMap::new(),
                topic_ready: false,
            };
            tokio::spawn(cycle.run(stop_cycle.clone()))
        });
        let heartbeats = flow.emit_heartbeats.then(|| {
            tokio::spawn(heartbeats(
                flow.clone(),
                target.name.clone(),
                target_admin,
                target_producer,
                metrics,
                stop_heartbeats.clone(),
            ))
        });
        Ok(Checkpointing {
            registry,
            stop_cycle,
            stop_writer,
            stop_heartbeats,
            cycle,
            writer: Some(writer),
            rebuild: Some(rebuild),
            heartbeats,
        })
    }

    /// At the drain, after the data plane acknowledged everything: flushes
    /// the sync chains, runs a last checkpoint cycle, writes the remaining
    /// syncs, stops heartbeats. Bounded by `timeout` overall.
    pub async fn finish(mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        self.registry.flush_syncs();
        self.stop_cycle.cancel();
        if let Some(mut cycle) = self.cycle.take() {
            if tokio::time::timeout_at(deadline, &mut cycle).await.is_err() {
                tracing::warn!("the last checkpoint cycle did not finish in time");
                cycle.abort();
            }
        }
        // The last cycle may have flushed more.
        self.stop_writer.cancel();
        if let Some(mut writer) = self.writer.take() {
            if tokio::time::timeout_at(deadline, &mut writer)
                .await
                .is_err()
            {
                tracing::warn!("offset syncs still queued at shutdown were not written");
                writer.abort();
            }
        }
        self.stop_heartbeats.cancel();
        if let Some(mut h) = self.heartbeats.take() {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
            }
        }
    }
}

/// Rebuilds the history from the offset-syncs topic, retrying until it
/// worked (translation stays refused meanwhile).
async fn rebuild_history(
    registry: &OffsetRegistry,
    cluster: &Cluster,
    topic: &str,
    metrics: &Option<FlowMetrics>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        match read_syncs(cluster, topic, READ_TIMEOUT).await {
            Ok(replay) => {
                tracing::info!(
                    cluster = %cluster.name,
                    topic,
                    partitions = replay.partitions(),
                    syncs = replay.applied,
                    foreign = replay.foreign,
                    skipped = replay.skipped,
                    took = ?started.elapsed(),
                    "offset maps rebuilt from the offset-syncs topic; translation enabled"
                );
                registry.install_history(replay);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "rebuilding offset maps failed; translation stays off");
                if let Some(m) = metrics {
                    m.error("offset_sync");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

struct Writer {
    producer: InternalProducer,
    cluster: String,
    topic: String,
    registry: Arc<OffsetRegistry>,
    metrics: Option<FlowMetrics>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<SyncMsg>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(1024);
        let mut reported_drops = 0;
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        return;
                    }
                }
                _ = stop.cancelled() => {
                    while let Ok(m) = rx.try_recv() {
                        batch.push(m);
                    }
                    self.write(&mut batch).await;
                    return;
                }
            }
            self.write(&mut batch).await;
            let dropped = self.registry.stats.syncs_dropped.load(Ordering::Relaxed);
            if dropped > reported_drops {
                tracing::warn!(
                    dropped = dropped - reported_drops,
                    "offset-sync queue overflowed; syncs dropped and their chains restarted (translation stays exact live, a restart rebuilds more conservatively)"
                );
                reported_drops = dropped;
            }
        }
    }

    async fn write(&self, batch: &mut Vec<SyncMsg>) {
        let mut pending = Vec::with_capacity(batch.len());
        for m in batch.drain(..) {
            let record = m.sync.to_offset_sync(&m.topic, m.partition);
            let key = match record.encode_key() {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(topic = %m.topic, partition = m.partition, error = %e, "cannot encode offset sync");
                    continue;
                }
            };
            let value = record.encode_value();
            let link = wire::encode_sync_link(&m.sync.link);
            let mut rec = BaseRecord::<[u8], [u8]>::to(&self.topic)
                .partition(0)
                .key(&key[..])
                .payload(&value[..]);
            if let Some(link) = &link {
                rec = rec.headers(OwnedHeaders::new().insert(Header {
                    key: wire::SYNC_LINK_HEADER,
                    value: Some(&link[..]),
                }));
            }
            let sent = self.producer.send(rec).await;
            pending.push((m, sent));
        }
        for (m, sent) in pending {
            let result = match sent {
                Ok(ack) => InternalProducer::acknowledged(ack).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.registry
                        .stats
                        .syncs_written
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(cause) => {
                    self.registry
                        .stats
                        .sync_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.registry.reset_emitter(&m.topic, m.partition);
                    if let Some(metrics) = &self.metrics {
                        metrics.error("offset_sync");
                    }
                    tracing::warn!(
                        cluster = %self.cluster,
                        topic = %self.topic,
                        source_topic = %m.topic,
                        source_partition = m.partition,
                        error = %cause,
                        "writing an offset sync failed; its chain restarts"
                    );
                }
            }
        }
    }
}

/// One group's committed offsets on replicated source partitions.
struct GroupOffsets {
    group: String,
    /// (source topic, partition, offset, metadata)
    offsets: Vec<(String, i32, i64, String)>,
}

struct Cycle {
    flow: Flow,
    live: watch::Receiver<Flow>,
    source: Cluster,
    target: Cluster,
    source_admin: Admin,
    target_admin: Admin,
    producer: InternalProducer,
    registry: Arc<OffsetRegistry>,
    metrics: Option<FlowMetrics>,
    checkpoints_topic: String,
    /// Loaded from the checkpoints topic before the first write.
    ledger: Option<CheckpointLedger>,
    /// Last skip counted per (group, remote topic, partition): a skip is
    /// counted once per translated offset and reason, not every cycle.
    reported_skips: HashMap<CheckpointKey, (i64, SkipReason)>,
    topic_ready: bool,
}

impl Cycle {
    async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.flow.checkpoint_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = self.once().await {
                        tracing::warn!(error = %e, "checkpoint cycle failed; retrying next interval");
                        self.count_error("checkpoint");
                    }
                }
            }
        }
        // The drain: everything in flight is acknowledged now. Wait for the
        // rebuild if it is still running (bounded by the caller).
        while !self.registry.is_ready() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Err(e) = self.once().await {
            tracing::warn!(error = %e, "the last checkpoint cycle failed");
            self.count_error("checkpoint");
        }
    }

    fn count_error(&self, kind: &'static str) {
        if let Some(m) = &self.metrics {
            m.error(kind);
        }
    }

    async fn once(&mut self) -> Result<(), EngineError> {
        if self.flow.emit_checkpoints && !self.topic_ready {
            ensure_internal_topic(
                &self.target_admin,
                &self.target.name,
                &self.checkpoints_topic,
                self.flow.replication_factor,
            )
            .await?;
            self.topic_ready = true;
        }
        if self.ledger.is_none() {
            let (ledger, skipped) =
                read_checkpoints(&self.target, &self.checkpoints_topic, READ_TIMEOUT).await?;
            tracing::info!(
                topic = %self.checkpoints_topic,
                checkpoints = ledger.len(),
                skipped,
                "last checkpoints loaded"
            );
            self.ledger = Some(ledger);
        }
        if !self.registry.is_ready() {
            tracing::debug!("offset maps are still being rebuilt; translation refused this cycle");
            return Ok(());
        }
        let started = Instant::now();
        self.registry.flush_syncs();
        let flow = self.live.borrow().clone();
        let groups = self.source_groups(&flow).await?;
        let written = if self.flow.emit_checkpoints {
            self.write_checkpoints(&flow, &groups).await
        } else {
            self.record_translations(&flow, &groups);
            0
        };
        if self.flow.sync_group_offsets {
            self.sync_groups(&flow, &groups).await;
        }
        self.registry.stats.cycles.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            groups = groups.len(),
            checkpoints = written,
            took = ?started.elapsed(),
            "checkpoint cycle done"
        );
        Ok(())
    }

    /// Committed offsets of every matching source group on partitions this
    /// flow replicates.
    async fn source_groups(&self, flow: &Flow) -> Result<Vec<GroupOffsets>, EngineError> {
        let fail = |cause: String| EngineError::Client {
            cluster: self.source.name.clone(),
            cause,
        };
        let listed = self
            .source_admin
            .list_consumer_groups()
            .await
            .map_err(|e| fail(format!("cannot list consumer groups: {e}")))?;
        let names: Vec<String> = listed
            .into_iter()
            .map(|g| g.group_id)
            .filter(|g| self.flow.groups.matches(g))
            .collect();
        let admin = &self.source_admin;
        let registry = &self.registry;
        let results: Vec<Result<GroupOffsets, EngineError>> = futures::stream::iter(names)
            .map(|group| async move {
                let offsets = admin
                    .list_consumer_group_offsets(&group, None)
                    .await
                    .map_err(|e| EngineError::Client {
                        cluster: self.source.name.clone(),
                        cause: format!("cannot read the offsets of group {group}: {e}"),
                    })?;
                let offsets = offsets
                    .into_iter()
                    .filter_map(|o| Some((o.topic, o.partition, o.offset?, o.metadata)))
                    .filter(|(t, p, _, _)| {
                        topics::selects(flow, t) && registry.get(t, *p).is_some()
                    })
                    .collect();
                Ok(GroupOffsets { group, offsets })
            })
            .buffer_unordered(GROUP_CONCURRENCY)
            .collect()
            .await;
        let mut groups = Vec::new();
        for r in results {
            match r {
                Ok(g) if !g.offsets.is_empty() => groups.push(g),
                Ok(_) => {}
                // One unreadable group must not stop the others.
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a group this cycle");
                    self.count_error("checkpoint");
                }
            }
        }
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(groups)
    }

    /// Translations worth a checkpoint: (key, upstream, downstream, metadata).
    fn due(&self, flow: &Flow, groups: &[GroupOffsets]) -> Vec<(CheckpointKey, i64, i64, String)> {
        let ledger = self.ledger.as_ref().expect("loaded before use");
        let mut due = Vec::new();
        for g in groups {
            for (topic, partition, upstream, metadata) in &g.offsets {
                let key = CheckpointKey {
                    group: g.group.clone(),
                    topic: flow.remote_topic(topic),
                    partition: *partition,
                };
                let translation = self.registry.translate(topic, *partition, *upstream);
                match ledger.decide(&key, *upstream, translation) {
                    Decision::Emit { downstream } => {
                        due.push((key, *upstream, downstream, metadata.clone()))
                    }
                    Decision::WouldRewind { last } => tracing::debug!(
                        group = %g.group, topic = %topic, partition, upstream, ?translation,
                        last_downstream = last.downstream,
                        "checkpoint kept: the translation is behind the last checkpoint"
                    ),
                    Decision::Unknown => tracing::debug!(
                        group = %g.group, topic = %topic, partition, upstream,
                        "no checkpoint: the offset is older than anything the offset map knows"
                    ),
                    Decision::Unchanged => {}
                }
            }
        }
        due
    }

    /// Without checkpoints, the ledger still tracks translations so group
    /// offset sync has something to commit.
    fn record_translations(&mut self, flow: &Flow, groups: &[GroupOffsets]) {
        for (key, upstream, downstream, _) in self.due(flow, groups) {
            if let Some(l) = self.ledger.as_mut() {
                l.commit(key, upstream, downstream);
            }
        }
    }

    async fn write_checkpoints(&mut self, flow: &Flow, groups: &[GroupOffsets]) -> usize {
        let due = self.due(flow, groups);
        let mut pending = Vec::with_capacity(due.len());
        for (key, upstream, downstream, metadata) in due {
            let cp = Checkpoint {
                group: key.group.clone(),
                topic: key.topic.clone(),
                partition: key.partition,
                upstream_offset: upstream,
                downstream_offset: downstream,
                metadata,
            };
            let encoded = cp.encode_key().and_then(|k| Ok((k, cp.encode_value()?)));
            let sent = match encoded {
                Ok((k, v)) => {
                    let rec = BaseRecord::<[u8], [u8]>::to(&self.checkpoints_topic)
                        .partition(0)
                        .key(&k[..])
                        .payload(&v[..]);
                    self.producer.send(rec).await
                }
                Err(e) => Err(e.to_string()),
            };
            pending.push((key, upstream, downstream, sent));
        }
        let mut written = 0;
        for (key, upstream, downstream, sent) in pending {
            let result = match sent {
                Ok(ack) => InternalProducer::acknowledged(ack).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    written += 1;
                    self.registry
                        .stats
                        .checkpoints_written
                        .fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = &self.metrics {
                        m.checkpoint_emitted();
                    }
                    if let Some(l) = self.ledger.as_mut() {
                        l.commit(key, upstream, downstream);
                    }
                }
                Err(cause) => {
                    self.count_error("checkpoint");
                    tracing::warn!(
                        cluster = %self.target.name,
                        topic = %self.checkpoints_topic,
                        group = %key.group,
                        remote_topic = %key.topic,
                        partition = key.partition,
                        error = %cause,
                        "writing a checkpoint failed; retrying next cycle"
                    );
                }
            }
        }
        written
    }

    fn count_sync(&self, result: SyncResult, n: usize) {
        if n == 0 {
            return;
        }
        let stats = &self.registry.stats;
        let counter = match result {
            SyncResult::Synced => &stats.group_offsets_synced,
            SyncResult::Skipped => &stats.group_offsets_skipped,
            SyncResult::Failed => &stats.group_offsets_failed,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.group_offsets_synced(result, n as u64);
        }
    }

    /// Commits the latest checkpoints of each group seen this cycle into
    /// the target group, if it is idle there, forwards only.
    async fn sync_groups(&mut self, flow: &Flow, groups: &[GroupOffsets]) {
        let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
        if names.is_empty() {
            return;
        }
        let states = match self.target_admin.describe_consumer_groups(&names).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(cluster = %self.target.name, error = %e, "cannot describe target groups; group offset sync skipped this cycle");
                self.count_error("group_sync");
                return;
            }
        };
        // `None`: the coordinator could not describe the group (moving,
        // loading): leave it alone this cycle. Reading its offsets now would
        // also risk librdkafka's crash on a NOT_COORDINATOR answer to an
        // admin OffsetFetch (confluentinc/librdkafka#5040).
        let state_of: HashMap<String, Option<TargetGroup>> = states
            .into_iter()
            .map(|d| {
                let state = match &d.error {
                    Some(AdminError::GroupNotFound { .. }) => Some(TargetGroup::Idle),
                    Some(e) => {
                        tracing::debug!(group = %d.group_id, error = %e, "target group not described; not syncing it this cycle");
                        None
                    }
                    None if d.state.has_no_members() => Some(TargetGroup::Idle),
                    None => Some(TargetGroup::Active),
                };
                (d.group_id, state)
            })
            .collect();
        for g in groups {
            let remote_topics: std::collections::BTreeSet<String> = g
                .offsets
                .iter()
                .map(|(t, _, _, _)| flow.remote_topic(t))
                .collect();
            let desired: BTreeMap<(String, i32), i64> = self
                .ledger
                .as_ref()
                .expect("loaded before use")
                .group(&g.group)
                .filter(|(k, _)| remote_topics.contains(&k.topic))
                .map(|(k, w)| ((k.topic.clone(), k.partition), w.downstream))
                .collect();
            if desired.is_empty() {
                continue;
            }
            let Some(state) = state_of.get(&g.group).copied().flatten() else {
                continue;
            };
            let parts: Vec<(&str, i32)> = desired.keys().map(|(t, p)| (t.as_str(), *p)).collect();
            let current: HashMap<(String, i32), i64> = match self
                .target_admin
                .list_consumer_group_offsets(&g.group, Some(&parts))
                .await
            {
                Ok(list) => list
                    .into_iter()
                    .filter_map(|o| Some(((o.topic, o.partition), o.offset?)))
                    .collect(),
                Err(AdminError::GroupNotFound { .. }) => HashMap::new(),
                Err(e) => {
                    tracing::warn!(cluster = %self.target.name, group = %g.group, error = %e, "cannot read the target group's offsets; not syncing it this cycle");
                    self.count_error("group_sync");
                    continue;
                }
            };
            let plan = group_sync::plan(
                state,
                desired.iter().map(|((t, p), o)| (t.as_str(), *p, *o)),
                &current,
            );
            self.report_skips(&g.group, &plan.skip);
            if plan.write.is_empty() {
                continue;
            }
            let offsets: Vec<(&str, i32, i64)> = plan
                .write
                .iter()
                .map(|(t, p, o)| (t.as_str(), *p, *o))
                .collect();
            match self
                .target_admin
                .alter_consumer_group_offsets(&g.group, &offsets)
                .await
            {
                Ok(()) => {
                    tracing::debug!(group = %g.group, partitions = offsets.len(), "group offsets synced to the target");
                    for (t, p, _) in &plan.write {
                        self.reported_skips.remove(&CheckpointKey {
                            group: g.group.clone(),
                            topic: t.clone(),
                            partition: *p,
                        });
                    }
                    self.count_sync(SyncResult::Synced, offsets.len());
                }
                Err(AdminError::GroupNotEmpty { .. }) => {
                    // A consumer joined between the check and the commit.
                    let skipped: Vec<_> = plan
                        .write
                        .iter()
                        .map(|(t, p, o)| (t.clone(), *p, *o, SkipReason::GroupActive))
                        .collect();
                    self.report_skips(&g.group, &skipped);
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.target.name, group = %g.group, error = %e, "committing translated offsets into the target group failed");
                    self.count_sync(SyncResult::Failed, offsets.len());
                    self.count_error("group_sync");
                }
            }
        }
    }

    fn report_skips(&mut self, group: &str, skips: &[(String, i32, i64, SkipReason)]) {
        let mut fresh = 0;
        for (topic, partition, offset, reason) in skips {
            let key = CheckpointKey {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            let seen = self.reported_skips.get(&key) == Some(&(*offset, *reason));
            if !seen {
                tracing::debug!(group, topic = %topic, partition, offset, %reason, "group offset not synced");
                self.reported_skips.insert(key, (*offset, *reason));
                fresh += 1;
            }
        }
        self.count_sync(SyncResult::Skipped, fresh);
    }
}

async fn heartbeats(
    flow: Flow,
    target: String,
    admin: Admin,
    producer: InternalProducer,
    metrics: Option<FlowMetrics>,
    stop: CancellationToken,
) {
    let topic = wire::HEARTBEATS_TOPIC;
    if !ensure_with_retry(
        &admin,
        &target,
        topic,
        flow.replication_factor,
        &metrics,
        &stop,
    )
    .await
    {
        return;
    }
    let key = match (Heartbeat {
        source_alias: flow.source.clone(),
        target_alias: flow.target.clone(),
        timestamp_ms: 0,
    })
    .encode_key()
    {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode heartbeat keys; heartbeats off");
            return;
        }
    };
    let mut tick = tokio::time::interval(flow.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let value = Heartbeat {
            source_alias: flow.source.clone(),
            target_alias: flow.target.clone(),
            timestamp_ms: now_ms(),
        }
        .encode_value();
        let rec = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(0)
            .key(&key[..])
            .payload(&value[..]);
        let result = producer.write(rec).await;
        match result {
            Ok(()) => failing = false,
            Err(cause) => {
                if let Some(m) = &metrics {
                    m.error("heartbeat");
                }
                if !failing {
                    tracing::warn!(cluster = %target, topic, error = %cause, "writing a heartbeat failed");
                }
                failing = true;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// `ferry offsets`
// ---------------------------------------------------------------------------

/// One line of `ferry offsets`.
#[derive(Debug, Clone)]
pub struct OffsetRow {
    pub group: String,
    /// The source topic.
    pub topic: String,
    pub partition: i32,
    pub remote_topic: String,
    /// The group's committed offset on the source.
    pub source_offset: i64,
    /// Ferry's translation from the offset-syncs topic.
    pub translated: Translation,
    /// The last checkpoint's downstream offset, if any.
    pub checkpoint: Option<i64>,
    /// The group's committed offset on the target.
    pub target_offset: Option<i64>,
}

/// What `ferry offsets` shows for a flow: per matching source group (or only
/// `group`) and replicated partition, the source offset, its translation
/// rebuilt from the offset-syncs topic, the last checkpoint and the target
/// group's offset. Needs no running daemon.
pub async fn offsets_report(
    flow: &Flow,
    source: &Cluster,
    target: &Cluster,
    group: Option<&str>,
) -> Result<Vec<OffsetRow>, EngineError> {
    // Run by commands, which retry what the daemon would ride out.
    let admin_of = |c: &Cluster| {
        crate::clients::admin(c, "ferry-offsets")
            .map(|a| a.with_retry(ferry_admin::RetryPolicy::COMMAND))
            .map_err(|e| EngineError::Client {
                cluster: c.name.clone(),
                cause: e.to_string(),
            })
    };
    let (source_admin, target_admin) = (admin_of(source)?, admin_of(target)?);
    let (syncs_cluster, syncs_topic) = offset_syncs_location(flow, source, target);
    let replay = read_syncs(syncs_cluster, &syncs_topic, READ_TIMEOUT).await?;
    let (ledger, _) = read_checkpoints(target, &checkpoints_topic(flow), READ_TIMEOUT).await?;
    let groups: Vec<String> = match group {
        Some(g) => vec![g.to_string()],
        None => source_admin
            .list_consumer_groups()
            .await
            .map_err(|e| EngineError::Client {
                cluster: source.name.clone(),
                cause: format!("cannot list consumer groups: {e}"),
            })?
            .into_iter()
            .map(|g| g.group_id)
            .filter(|g| flow.groups.matches(g))
            .collect(),
    };
    let mut rows = Vec::new();
    for g in groups {
        let committed = source_admin
            .list_consumer_group_offsets(&g, None)
            .await
            .map_err(|e| EngineError::Client {
                cluster: source.name.clone(),
                cause: format!("cannot read the offsets of group {g}: {e}"),
            })?;
        let mut group_rows: Vec<OffsetRow> = committed
            .into_iter()
            .filter(|o| topics::selects(flow, &o.topic))
            .filter_map(|o| {
                let offset = o.offset?;
                let remote_topic = flow.remote_topic(&o.topic);
                let translated = replay
                    .map(&o.topic, o.partition)
                    .map_or(Translation::Unknown, |m| m.translate(offset));
                let checkpoint = ledger
                    .get(&CheckpointKey {
                        group: g.clone(),
                        topic: remote_topic.clone(),
                        partition: o.partition,
                    })
                    .map(|w| w.downstream);
                Some(OffsetRow {
                    group: g.clone(),
                    topic: o.topic,
                    partition: o.partition,
                    remote_topic,
                    source_offset: offset,
                    translated,
                    checkpoint,
                    target_offset: None,
                })
            })
            .collect();
        if group_rows.is_empty() {
            continue;
        }
        let parts: Vec<(&str, i32)> = group_rows
            .iter()
            .map(|r| (r.remote_topic.as_str(), r.partition))
            .collect();
        let on_target: HashMap<(String, i32), i64> = match target_admin
            .list_consumer_group_offsets(&g, Some(&parts))
            .await
        {
            Ok(list) => list
                .into_iter()
                .filter_map(|o| Some(((o.topic, o.partition), o.offset?)))
                .collect(),
            Err(AdminError::GroupNotFound { .. }) => HashMap::new(),
            Err(e) => {
                return Err(EngineError::Client {
                    cluster: target.name.clone(),
                    cause: format!("cannot read the offsets of group {g}: {e}"),
                })
            }
        };
        for r in &mut group_rows {
            r.target_offset = on_target
                .get(&(r.remote_topic.clone(), r.partition))
                .copied();
        }
        group_rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        rows.extend(group_rows);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(extra: &str) -> Flow {
        let text = format!(
            "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
             [[flows]]\nsource=\"a\"\ntarget=\"b\"\ntopics=[\".*\"]\n{extra}\n"
        );
        ferry_config::parse(&text, "t", std::path::Path::new("."))
            .unwrap()
            .topology
            .flows
            .remove(0)
    }

    fn cluster(name: &str) -> Cluster {
        Cluster {
            name: name.into(),
            bootstrap_servers: format!("{name}:1"),
            client: Default::default(),
            aws_msk_iam: None,
        }
    }

    #[test]
    fn sync_topic_names_follow_mm2() {
        let (a, b) = (cluster("a"), cluster("b"));
        let (c, t) = offset_syncs_location(&flow(""), &a, &b);
        assert_eq!(
            (c.name.as_str(), t.as_str()),
            ("b", "mm2-offset-syncs.a.internal")
        );
        let (c, t) = offset_syncs_location(&flow("offset_syncs_location = \"source\""), &a, &b);
        assert_eq!(
            (c.name.as_str(), t.as_str()),
            ("a", "mm2-offset-syncs.b.internal")
        );
        assert_eq!(checkpoints_topic(&flow("")), "a.checkpoints.internal");
    }

    #[test]
    fn mm2_connect_offsets_are_parsed_for_this_source_only() {
        const DEDICATED: &str = Mm2Offsets::DEDICATED_CONNECTOR;
        let key = br#"["MirrorSourceConnector",{"cluster":"a","partition":3,"topic":"orders"}]"#;
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", key, Some(br#"{"offset":41}"#)),
            Some((("orders".into(), 3), Some(41)))
        );
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", key, None),
            Some((("orders".into(), 3), None))
        );
        assert_eq!(
            parse_mm2_offset(DEDICATED, "b", key, Some(br#"{"offset":41}"#)),
            None
        );
        let checkpoint_connector =
            br#"["MirrorCheckpointConnector",{"cluster":"a","partition":3,"topic":"orders"}]"#;
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", checkpoint_connector, Some(b"{}")),
            None
        );
        assert_eq!(parse_mm2_offset(DEDICATED, "a", b"not json", None), None);
        assert_eq!(parse_mm2_offset(DEDICATED, "a", key, Some(b"{}")), None);
        // MM2 hosted in Connect: the key names the connector as created.
        let hosted = br#"["mm2-src",{"cluster":"a","partition":0,"topic":"orders"}]"#;
        assert_eq!(
            parse_mm2_offset("mm2-src", "a", hosted, Some(br#"{"offset":7}"#)),
            Some((("orders".into(), 0), Some(7)))
        );
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", hosted, Some(br#"{"offset":7}"#)),
            None
        );
        assert_eq!(
            parse_mm2_offset("mm2-src", "a", key, Some(br#"{"offset":7}"#)),
            None
        );
    }

    #[tokio::test]
    async fn sessions_fence_late_reports_and_queue_syncs() {
        let (registry, mut rx) = OffsetRegistry::new();
        let topic: Arc<str> = Arc::from("orders");
        let first = registry.attach(&topic, 0);
        for i in 0..10 {
            first.on_ack(i, 100 + i);
        }
        // Not rebuilt yet: translation refused.
        assert_eq!(registry.translate("orders", 0, 5), Translation::Unknown);
        registry.install_history(SyncReplay::default());
        assert_eq!(registry.translate("orders", 0, 5), Translation::Exact(105));
        // A new session; the old slot's late reports no longer count.
        let second = registry.attach(&topic, 0);
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
        assert_eq!(registry.footprint().0, 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_restarts_the_chain() {
        let (registry, mut rx) = OffsetRegistry::new();
        let topic: Arc<str> = Arc::from("t");
        let h = registry.attach(&topic, 0);
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
}
