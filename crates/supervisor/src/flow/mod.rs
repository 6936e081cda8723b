//! One flow's control plane: discovers source topics, runs one async mirror
//! task per topic (target topic, start positions, failure and restart), and
//! persists progress. Records themselves move on the data plane (`pump`).
//!
//! - this module: [`FlowRunner`], which restarts a failed flow with backoff,
//!   and the setup of each start;
//! - `run`: one start of a flow, an event loop with one method per event,
//!   then the drain;
//! - `context`: what the topic tasks of a running flow share;
//! - `progress_writes`: persisting acknowledged watermarks;
//! - `side_task`: tasks working on each discovery's result (`acl_sync`,
//!   `delete_sync`);
//! - `topic`: one topic's mirror task (target topic, config sync, growth,
//!   stalled partitions);
//! - `assign`: where each partition starts, and its hand-over to the pump.

mod acl_sync;
mod assign;
mod context;
mod delete_sync;
mod progress_writes;
mod run;
mod schema_sync;
mod side_task;
mod topic;

use std::sync::Arc;
use std::time::Duration;

use ferry_admin::Admin;
use ferry_config::{Cluster, Flow, OnRecordError};
use rdkafka::consumer::BaseConsumer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::checkpoints::{self, Checkpointing, OffsetRegistry};
use crate::clients::{client_config, ClusterContext, Role};
use crate::internal::InternalProducer;
use crate::lanes::Lanes;
use crate::lookups::Lookups;
use crate::membership::Membership;
use crate::status::{FlowState, FlowStatus};
use crate::topics;
use crate::EngineError;
use context::FlowContext;
use ferry_admin::backoff::Backoff;
use run::FlowRun;

/// The flow's group being joined (see `membership`): the membership and
/// the group's decisions once done.
pub(super) type Joining = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<
                    (
                        Membership,
                        tokio::sync::mpsc::Receiver<crate::membership::SlotEvent>,
                    ),
                    EngineError,
                >,
            > + Send,
    >,
>;

/// How long one metadata or offsets request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How often acknowledged progress is persisted. It bounds the duplicates a
/// crash can cause, not the data at risk (nothing unacknowledged is ever
/// recorded as done).
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// How often source end offsets are read for lag (one ListOffsets request
/// per broker and 500 partitions): every second for up to 1,000 partitions,
/// then a second more per 1,000, up to 10 s, so that a flow at rest with
/// thousands of partitions does not keep the source busy answering.
fn lag_refresh_interval(partitions: usize) -> Duration {
    Duration::from_secs((partitions as u64).div_ceil(1000).clamp(1, 10))
}

#[cfg(test)]
#[test]
fn lag_refresh_slows_down_with_thousands_of_partitions_only() {
    assert_eq!(lag_refresh_interval(0), Duration::from_secs(1));
    assert_eq!(lag_refresh_interval(1000), Duration::from_secs(1));
    assert_eq!(lag_refresh_interval(4000), Duration::from_secs(4));
    assert_eq!(lag_refresh_interval(50_000), Duration::from_secs(10));
}

/// How long flows run: a daemon's until stopped, or a bounded copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Replicate until told to stop.
    Continuous,
    /// Capture source end offsets at start, stop when every partition
    /// reached them (`ferry run --until caught-up`).
    UntilCaughtUp,
}

pub(crate) struct FlowRunner {
    /// The flow as currently configured; topic-filter changes arrive on
    /// `live` at reload and apply without a restart.
    flow: Flow,
    live: watch::Receiver<Flow>,
    source: Cluster,
    target: Cluster,
    /// Holds the Connect offsets topic MirrorMaker 2's positions are read
    /// from (the flow's `mm2_offsets.cluster`; the target by default).
    mm2_offsets_cluster: Cluster,
    status: Arc<FlowStatus>,
    shutdown_timeout: Duration,
    mode: RunMode,
    /// Event metrics (checkpoints, group offset sync, latency, errors).
    metrics: Option<ferry_http::FlowMetrics>,
    /// How this process joins the flow's group.
    group: GroupSettings,
    /// The whole running topology, for the other flows that may write a
    /// target topic due for deletion; deletions are off without it.
    topology: Option<watch::Receiver<Arc<ferry_config::Topology>>>,
}

/// How a flow's processes find each other (see `membership`).
#[derive(Debug, Clone)]
pub(crate) struct GroupSettings {
    /// `engine.group_prefix`.
    pub prefix: String,
    /// The client id the other members see: names the topology file.
    pub client_id: String,
    /// Recreate a slots topic whose partition count is not `slots`.
    pub allow_reslot: bool,
    /// `engine.transactional_id_prefix`.
    pub transactional_id_prefix: String,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            prefix: ferry_config::EngineSettings::DEFAULT_GROUP_PREFIX.to_string(),
            client_id: "ferry".to_string(),
            allow_reslot: false,
            transactional_id_prefix: ferry_config::EngineSettings::DEFAULT_GROUP_PREFIX.to_string(),
        }
    }
}

fn reader(cluster: &Cluster, name: &str) -> Result<Arc<BaseConsumer<ClusterContext>>, EngineError> {
    client_config(cluster, Role::Reader, name)
        .create_with_context(ClusterContext::new(cluster))
        .inspect(crate::clients::serve_token_refresh)
        .map(Arc::new)
        .map_err(|e| EngineError::client_creation(cluster, &e))
}

fn admin(cluster: &Cluster) -> Result<Admin, EngineError> {
    crate::clients::admin(cluster, "ferry-admin")
        .map_err(|e| EngineError::client_creation(cluster, &e))
}

/// Runs a blocking librdkafka call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("blocking task failed: {e}")))?
}

fn count_error(metrics: &Option<ferry_http::FlowMetrics>, kind: &'static str) {
    if let Some(m) = metrics {
        m.error(kind);
    }
}

impl FlowRunner {
    pub fn new(
        live: watch::Receiver<Flow>,
        source: Cluster,
        target: Cluster,
        status: Arc<FlowStatus>,
        shutdown_timeout: Duration,
        mode: RunMode,
    ) -> Self {
        let flow = live.borrow().clone();
        Self {
            flow,
            live,
            source,
            mm2_offsets_cluster: target.clone(),
            target,
            status,
            shutdown_timeout,
            mode,
            metrics: None,
            group: GroupSettings::default(),
            topology: None,
        }
    }

    /// Joins the flow's group with these settings.
    pub fn with_group(mut self, group: GroupSettings) -> Self {
        self.group = group;
        self
    }

    /// Sees the running topology, as reloads change it (for
    /// `propagate_deletes`).
    pub fn with_topology(mut self, topology: watch::Receiver<Arc<ferry_config::Topology>>) -> Self {
        self.topology = Some(topology);
        self
    }

    /// Reads MirrorMaker 2's positions from this cluster instead of the
    /// target (a Connect cluster named by the flow's `mm2_offsets.cluster`).
    pub fn with_mm2_offsets_cluster(mut self, cluster: Cluster) -> Self {
        self.mm2_offsets_cluster = cluster;
        self
    }

    /// Counts the flow's events (checkpoints, group offset sync, replication
    /// latency, errors) into these metrics.
    pub fn with_metrics(mut self, metrics: ferry_http::FlowMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs the flow, restarting it with backoff after flow-level failures
    /// (a cluster unreachable, the progress topic unreadable) so a daemon
    /// survives outages; a bounded run reports the failure instead.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), EngineError> {
        let span = tracing::info_span!("flow", flow = %self.flow.id());
        async move {
            let mut backoff = Backoff::standard();
            loop {
                self.status.set_state(FlowState::Starting);
                match self.run_once(&cancel).await {
                    Ok(()) => {
                        self.status.set_state(FlowState::Stopped);
                        return Ok(());
                    }
                    Err(e) if self.mode == RunMode::UntilCaughtUp => {
                        self.status.set_state(FlowState::Stopped);
                        return Err(e);
                    }
                    Err(e) => {
                        let wait = backoff.next_wait();
                        if e.is_fatal() {
                            tracing::error!(error = %e, retry_in = ?wait, "flow failed; it needs an operator (access or settings) and is restarted until then");
                        } else {
                            tracing::error!(error = %e, retry_in = ?wait, "flow failed; restarting");
                        }
                        self.status.set_error(Some(e.to_string()));
                        self.status.set_state(FlowState::Retrying);
                        tokio::select! {
                            _ = cancel.cancelled() => {
                                self.status.set_state(FlowState::Stopped);
                                return Ok(());
                            }
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One start: creates the flow's clients, data plane and checkpointing,
    /// then runs its event loop (see [`FlowRun`]) until it stops or fails.
    async fn run_once(&mut self, cancel: &CancellationToken) -> Result<(), EngineError> {
        let target_admin = admin(&self.target)?;
        // The group consumer starts now (it looks up the coordinator) and
        // joins while the rest of the flow starts: creating the slots topic
        // on a first start takes the target a few hundred milliseconds.
        let (membership, slot_events) = Membership::start(
            &self.flow,
            &self.target,
            &self.group.prefix,
            &self.group.client_id,
            self.shutdown_timeout,
        )?;
        let joining: Joining = {
            let (admin, flow, target) = (
                target_admin.clone(),
                self.flow.clone(),
                self.target.name.clone(),
            );
            let allow_reslot = self.group.allow_reslot;
            Box::pin(async move {
                topics::ensure_slots_topic(
                    &admin,
                    &target,
                    &flow.slots_topic(),
                    flow.slots,
                    (flow.replication_factor, allow_reslot),
                )
                .await?;
                membership.subscribe()?;
                Ok((membership, slot_events))
            })
        };
        let target_reader = reader(&self.target, "ferry-target-reader")?;
        let (offsets, syncs_rx) = OffsetRegistry::new();
        let (progress_writes, write_requests) = tokio::sync::mpsc::channel(64);
        let source_reader = reader(&self.source, "ferry-source-reader")?;
        let (ends_run, final_errors) = tokio::sync::mpsc::channel(1);
        let lookups = Lookups::start(
            (&self.source.name, source_reader.clone()),
            (&self.target.name, target_reader, target_admin.clone()),
            REQUEST_TIMEOUT,
        );
        // Shared by the lanes' pumps (which check records against it) and
        // the schema sync task (which fills it).
        let schema_ids = self
            .flow
            .schemas
            .as_ref()
            .map(|s| ferry_schemas::SchemaIds::new(s.mode, s.required));
        let ctx = Arc::new(FlowContext {
            flow: self.flow.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            mm2_offsets_cluster: self.mm2_offsets_cluster.clone(),
            status: self.status.clone(),
            plane: Lanes::start(
                &self.flow,
                &self.source,
                &self.target,
                self.metrics.clone(),
                schema_ids.as_ref(),
            )?,
            schema_ids,
            metrics: self.metrics.clone(),
            source_admin: admin(&self.source)?,
            target_admin,
            lookups,
            source_reader,
            resume: tokio::sync::OnceCell::new(),
            unconsumed: tokio::sync::OnceCell::new(),
            run_ends: Default::default(),
            offsets: offsets.clone(),
            progress_writes,
            ends_run: (self.mode == RunMode::UntilCaughtUp).then_some(ends_run),
            ownership: Arc::default(),
            transactional_id_prefix: self.group.transactional_id_prefix.clone(),
        });
        if let OnRecordError::DeadLetter { topic } = &self.flow.on_record_error {
            topics::ensure_dead_letter_topic(
                &ctx.target_admin,
                &self.target.name,
                topic,
                self.flow.replication_factor,
            )
            .await?;
        }
        let committer = InternalProducer::new(&self.target, "ferry-internal")?;
        let checkpointing = Checkpointing::start(checkpoints::Setup {
            flow: self.flow.clone(),
            live: self.live.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            source_admin: ctx.source_admin.clone(),
            target_admin: ctx.target_admin.clone(),
            metrics: self.metrics.clone(),
            registry: offsets,
            syncs: syncs_rx,
            internal: committer.clone(),
            ownership: ctx.ownership.clone(),
        })?;
        FlowRun::new(
            self,
            ctx,
            committer,
            checkpointing,
            (write_requests, final_errors),
            joining,
        )
        .run(cancel)
        .await
    }
}
