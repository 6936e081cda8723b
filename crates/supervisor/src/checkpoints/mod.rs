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
//! # Flow-level tasks (`Checkpointing`)
//! - **Sync writer**: drains the queue into the offset-syncs topic, one
//!   record per sync with the `ferry.sync.link` header. If the queue is full
//!   the sync is dropped, counted, and the partition's emitter reset: the
//!   next sync starts a new chain, so a rebuilt map only loses precision
//!   (never correctness) across the hole. A failed write resets the emitter
//!   the same way.
//! - **Rebuild**: at start, reads the offset-syncs topic up to its end and
//!   puts the rebuilt history under the live maps
//!   (`OffsetMap::absorb_older`). Until it finished, every translation is
//!   refused ([`Translation::Unknown`](ferry_checkpoint::Translation::Unknown)):
//!   a checkpoint written from a half-rebuilt map could be behind an
//!   earlier one for no reason.
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
//! A flow's `topic_separator` replaces both dots of the checkpoints topic,
//! as MM2's `replication.policy.separator` does, so `RemoteClusterUtils`
//! configured alike finds it. The offset-syncs topic keeps its dots: only
//! Ferry reads it, and the exactly-once writer names it the same way.
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
//!
//! # Layout
//! - `registry`: [`OffsetRegistry`], [`PartitionOffsets`] and
//!   [`SessionHandle`], the live maps and sync emitters.
//! - `readers`: [`read_syncs`] and [`read_checkpoints`], internal topics
//!   read to their end.
//! - `handover`: [`mm2_resume_positions`], taking a flow over from
//!   MirrorMaker 2.
//! - `tasks`: the lifecycle of a flow's tasks (`Checkpointing`), and the
//!   rebuild of the maps at start.
//! - `writer`, `cycle`, `heartbeats`: the three running tasks.

mod cycle;
mod handover;
mod heartbeats;
mod readers;
mod registry;
mod tasks;
mod writer;

use std::time::Duration;

use ferry_admin::Admin;
use ferry_checkpoint::wire;
use ferry_checkpoint::SyncEmitter;
use ferry_config::{Cluster, Flow, SyncsLocation};
use ferry_http::FlowMetrics;
use tokio_util::sync::CancellationToken;

use crate::topics::ensure_internal_topic;
use ferry_admin::backoff::Backoff;

pub use handover::mm2_resume_positions;
pub use readers::{read_checkpoints, read_syncs, LoadedCheckpoints};
pub use registry::{
    CheckpointStats, MapFootprint, OffsetRegistry, PartitionOffsets, SessionHandle,
};
pub(crate) use tasks::{Checkpointing, Setup};
pub(crate) use writer::link_headers;

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
/// The longest wait between two attempts at an internal topic (creating
/// it, reading the offset syncs back).
const RETRY_CAP: Duration = Duration::from_secs(30);

/// Where a flow's offset syncs live: which cluster and which topic.
pub fn offset_syncs_location<'a>(
    flow: &Flow,
    source: &'a Cluster,
    target: &'a Cluster,
) -> (&'a Cluster, String) {
    let separator = &flow.topic_separator;
    match flow.offset_syncs_location {
        SyncsLocation::Target => (target, wire::offset_syncs_topic(&flow.source, separator)),
        SyncsLocation::Source => (source, wire::offset_syncs_topic(&flow.target, separator)),
    }
}

/// The checkpoints topic of a flow (on its target).
pub fn checkpoints_topic(flow: &Flow) -> String {
    wire::checkpoints_topic(&flow.source, &flow.topic_separator)
}

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
    let mut backoff = retry_backoff();
    loop {
        let Err(e) = ensure_internal_topic(admin, cluster, topic, replication).await else {
            return true;
        };
        let wait = backoff.next_wait();
        tracing::warn!(error = %e, retry_in = ?wait, "internal topic not ready");
        if let Some(m) = metrics {
            m.error("admin");
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The schedule of retries at an internal topic: from 1 s up to
/// [`RETRY_CAP`].
pub(crate) fn retry_backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), RETRY_CAP)
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
        let (_, t) = offset_syncs_location(&flow("topic_separator = \"_\""), &a, &b);
        assert_eq!(t, "mm2-offset-syncs_a_internal");
        assert_eq!(checkpoints_topic(&flow("")), "a.checkpoints.internal");
        assert_eq!(
            checkpoints_topic(&flow("topic_separator = \"_\"")),
            "a_checkpoints_internal"
        );
    }

    #[test]
    fn internal_topic_retries_start_within_a_second_and_stay_under_the_cap() {
        let mut backoff = retry_backoff();
        assert!(backoff.next_wait() <= Duration::from_secs(1));
        let waits: Vec<Duration> = (0..12).map(|_| backoff.next_wait()).collect();
        assert!(waits.iter().all(|w| *w <= RETRY_CAP), "{waits:?}");
        assert!(
            waits.iter().any(|w| *w >= RETRY_CAP / 2),
            "the schedule never reached the cap: {waits:?}"
        );
    }
}
