//! What the topic tasks of one running flow share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_admin::Admin;
use ferry_config::{Cluster, Flow};
use rdkafka::consumer::BaseConsumer;
use tokio::sync::{mpsc, oneshot, OnceCell};

use crate::checkpoints::{self, OffsetRegistry};
use crate::clients::ClusterContext;
use crate::lanes::Lanes;
use crate::lookups::Lookups;
use crate::membership::{Ownership, SlotId};
use crate::progress::{self, ProgressMap};
use crate::status::FlowStatus;
use crate::topics;
use crate::EngineError;

/// Everything the topic tasks of one running flow share. Built once per
/// start of the flow (see `FlowRun`), dropped at its drain.
pub(super) struct FlowContext {
    /// The flow as configured when this start began.
    pub flow: Flow,
    pub source: Cluster,
    pub target: Cluster,
    /// Holds the Connect offsets topic MirrorMaker 2's positions are read
    /// from.
    pub mm2_offsets_cluster: Cluster,
    pub status: Arc<FlowStatus>,
    /// The source consumers and target producers that move the records.
    pub plane: Lanes,
    /// Counts errors by kind (`ferry_errors_total`).
    pub metrics: Option<ferry_http::FlowMetrics>,
    pub target_admin: Admin,
    pub source_admin: Admin,
    /// Metadata, offsets-for-times and end-offset requests to the source.
    pub source_reader: Arc<BaseConsumer<ClusterContext>>,
    /// Batched target-topic and watermark lookups of the topic tasks.
    pub lookups: Lookups,
    /// Saved progress and MirrorMaker 2's positions, loaded once per start
    /// (see [`FlowContext::resume`]).
    pub resume: OnceCell<Resume>,
    /// For `start_from = "unconsumed"`: per (topic, partition), the smallest
    /// committed offset of the matching groups, resolved once per start.
    pub unconsumed: OnceCell<HashMap<(String, i32), i64>>,
    /// Source end offsets captured at assignment, for bounded runs.
    pub run_ends: std::sync::Mutex<HashMap<(String, i32), i64>>,
    /// Per-partition offset maps; every slot feeds its partition's map.
    pub offsets: Arc<OffsetRegistry>,
    /// Asks the flow for a progress write now; the answer says whether it
    /// landed (see [`FlowContext::persist_progress_now`]).
    pub progress_writes: mpsc::Sender<oneshot::Sender<bool>>,
    /// In a bounded run only: where a topic task sends a failure that no
    /// retry can fix before an operator acts; the run ends with it.
    pub ends_run: Option<mpsc::Sender<EngineError>>,
    /// The slots this process owns: only their partitions are copied, and
    /// only their progress is written.
    pub ownership: Arc<Ownership>,
    /// `engine.transactional_id_prefix`, for exactly-once slots.
    pub transactional_id_prefix: String,
    /// `flows[].schemas`: the schema IDs the target registry knows.
    pub schema_ids: Option<Arc<ferry_schemas::SchemaIds>>,
}

/// Where partitions resume after a start.
pub(super) struct Resume {
    /// Saved progress; the first assignment of a partition resumes here.
    /// Read again whenever the group gives this process more slots: their
    /// previous owner persisted its progress just before.
    pub progress: std::sync::Mutex<ProgressMap>,
    /// The highest epoch saved per slot, with the progress.
    pub epochs: std::sync::Mutex<HashMap<SlotId, i64>>,
    /// Where MirrorMaker 2 stopped, for partitions Ferry has no progress for.
    pub handover: HashMap<(String, i32), i64>,
}

impl FlowContext {
    /// Loads the saved progress (creating its topic on a first start) and
    /// MirrorMaker 2's positions once; the first caller loads, the others
    /// wait. Only assignment needs them, so the flow starts this at once and
    /// prepares its target topics meanwhile: the reads are a few round trips
    /// to the target that a short catch-up run would otherwise wait for.
    pub async fn resume(&self) -> Result<&Resume, EngineError> {
        self.resume
            .get_or_try_init(|| async {
                self.prepare_progress_topic().await?;
                let (progress, epochs) = self.load_progress().await?;
                tracing::info!(partitions = progress.len(), "progress loaded");
                let handover = checkpoints::mm2_resume_positions(
                    &self.flow,
                    &self.mm2_offsets_cluster,
                    &self.target,
                )
                .await?;
                Ok(Resume {
                    progress: std::sync::Mutex::new(progress),
                    epochs: std::sync::Mutex::new(epochs),
                    handover,
                })
            })
            .await
    }

    /// Creates the progress topic on a first start.
    pub async fn prepare_progress_topic(&self) -> Result<(), EngineError> {
        topics::ensure_internal_topic(
            &self.target_admin,
            &self.target.name,
            &progress::progress_topic(&self.flow.source),
            self.flow.replication_factor,
        )
        .await
    }

    /// Reads the saved progress again (after slots were assigned: their
    /// previous owners persisted theirs just before).
    pub async fn reload_progress(&self) -> Result<(), EngineError> {
        let resume = self.resume().await?;
        let (progress, epochs) = self.load_progress().await?;
        *crate::clock::lock(&resume.progress) = progress;
        *crate::clock::lock(&resume.epochs) = epochs;
        Ok(())
    }

    /// The saved progress, and the highest epoch saved per slot.
    async fn load_progress(&self) -> Result<(ProgressMap, HashMap<SlotId, i64>), EngineError> {
        let saved =
            progress::load_with_epochs(&self.target, &self.flow.source, Duration::from_secs(60))
                .await?;
        let mut epochs: HashMap<SlotId, i64> = HashMap::new();
        let mut progress = ProgressMap::with_capacity(saved.len());
        for ((topic, partition), (offset, epoch)) in saved {
            let newest = epochs
                .entry(self.flow.slot_of(&topic, partition))
                .or_insert(epoch);
            *newest = (*newest).max(epoch);
            progress.insert((topic, partition), offset);
        }
        Ok((progress, epochs))
    }

    /// True when this process copies `partition` of `topic` (it owns the
    /// partition's slot and is not handing it over).
    pub fn copies(&self, topic: &str, partition: i32) -> bool {
        self.ownership.copies(self.flow.slot_of(topic, partition))
    }

    /// Writes every partition's acknowledged watermark now and waits until
    /// the target acknowledged the write. False when the write failed (the
    /// flow's timer retries it) or the flow is stopping.
    pub async fn persist_progress_now(&self) -> bool {
        let (reply, landed) = oneshot::channel();
        if self.progress_writes.send(reply).await.is_err() {
            return false;
        }
        landed.await.unwrap_or(false)
    }
}
