//! The replication engine: flows, per-topic mirror tasks, at-least-once
//! delivery.
//!
//! # Layout
//! The run, from the top:
//! - [`Supervisor`] (this file): runs the enabled flows of a topology,
//!   applies reloads as transactions, cut-over and resume of topics.
//! - `flow`: one flow's control plane. `flow` restarts a failed flow with
//!   backoff; `flow::run` is one start of it, an event loop (progress
//!   loaded, filters reloaded, discovery, progress writes) ending in a
//!   drain; `flow::topic` is one async mirror task per topic (target topic,
//!   config sync, partition growth, stalled partitions); `flow::assign`
//!   decides where each partition starts; `flow::progress_writes` persists
//!   acknowledged watermarks; `flow::context` is what a flow's tasks share.
//! - `membership`: the flow's share among the processes that run it: its
//!   consumer group on the target assigns this process slots (cooperative
//!   sticky), a revocation waits until their progress is persisted, and
//!   each owner claims its slots with an epoch that its progress records
//!   carry.
//! - `lanes`: the flow's data planes, one per core: owned slots spread over
//!   them by number.
//! - `pump`: one data plane (lane): a source consumer and a target producer
//!   on dedicated threads, bounded by in-flight bytes.
//! - `tracker`: the per-partition ack tracker (contiguous acknowledged
//!   watermark, fencing by slot, refused records).
//!
//! What the flow asks and writes:
//! - `start`: where a partition starts (saved progress, MirrorMaker 2
//!   handover, `start_from`), shared with `ferry plan`.
//! - `progress`: the progress store on the target (next source offset per
//!   partition, compacted topic).
//! - `cut_over`: the topics handed over by a cutover, persisted on the
//!   target so they stay stopped across restarts.
//! - `topics`: target topic creation, partition growth, config filtering,
//!   internal-topic rules.
//! - `deletes`: which target topics `propagate_deletes` may delete;
//!   `flow/delete_sync.rs` applies the grace period and deletes them.
//! - `acls`: ACL sync rules (what a flow copies, what it becomes under each
//!   naming, what it may delete); `flow/acl_sync.rs` runs it after each
//!   topic discovery.
//! - `checkpoints`: per-partition offset maps fed by delivery reports,
//!   MirrorMaker 2-format offset syncs, checkpoints, group offset sync and
//!   heartbeats.
//! - `lookups`: the target-topic and watermark questions of many topic
//!   tasks, answered in batches (`batch` is the batching itself).
//! - `internal`: the producer of a flow's low-volume internal topics
//!   (progress, checkpoints, heartbeats, offset syncs).
//! - `clients`: librdkafka configs per cluster and role, a context that names
//!   the cluster in every log line and scrubs secrets, connection probes.
//! - `error`: [`EngineError`], with the client's error as its source and
//!   whether a retry can help.
//! - `clock`: wall-clock milliseconds, Kafka's timestamp unit.
//!
//! What others read:
//! - `status`: shared engine state written by the flows ([`EngineStatus`]).
//! - `view`: the engine as the HTTP crate sees it: metrics samples,
//!   readiness, the `/status` document.
//!
//! Invariant: the offset persisted for a partition is the first source offset
//! whose record, or any earlier one, the target has not acknowledged.

#![warn(missing_docs)]

pub mod acls;
mod batch;
pub mod checkpoints;
pub mod clients;
mod clock;
pub mod cut_over;
pub mod deletes;
mod error;
mod flow;
mod internal;
mod lanes;
mod lookups;
mod membership;
pub mod progress;
mod pump;
pub mod start;
mod status;
pub mod topics;
mod tracker;
mod transactions;
pub mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cut_over::CutOverTopics;
use ferry_config::{Flow, FlowId, Topology};
use ferry_http::ControlError;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::{Cause, EngineError, Place};
pub use flow::RunMode;
pub use pump::PROVENANCE_HEADER;
pub use status::{EngineStatus, FlowStatus};

/// A running flow: its cancellation, its task, and the channel that hands
/// it topic-filter changes on reload without a restart.
struct RunningFlow {
    flow: Flow,
    cancel: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), EngineError>>,
    live: watch::Sender<Flow>,
}

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Flows added (or newly enabled) by the reload.
    pub started: Vec<FlowId>,
    /// Flows removed (or disabled): drained, their progress persisted.
    pub stopped: Vec<FlowId>,
    /// Flows changed beyond their topic filters: drained, then started
    /// again from their persisted progress.
    pub restarted: Vec<FlowId>,
    /// Flows whose topic filters changed in place, without a pause.
    pub refiltered: Vec<FlowId>,
}

/// A reload refused as a whole: nothing of the new topology applies.
#[derive(Debug, thiserror::Error)]
#[error("reload rejected, the running topology is unchanged: {}", reasons.join("; "))]
pub struct ReloadRejected {
    /// Every reason, each naming the setting or flow at fault.
    pub reasons: Vec<String>,
}

/// Runs the enabled flows of a topology, applies reloads as transactions,
/// and drains everything on cancellation: fetching stops, in-flight records
/// are acknowledged, progress is persisted.
pub struct Supervisor {
    topology: Topology,
    status: Arc<EngineStatus>,
    metrics: Arc<ferry_http::Metrics>,
    mode: RunMode,
    flows: BTreeMap<FlowId, RunningFlow>,
    /// Topics handed over by `ferry cutover`, per flow, as persisted on the
    /// flow's target: never replicated, whatever a reload or a restart
    /// says, so nothing copies into a cluster that consumers and producers
    /// already moved to, until `ferry resume-topics` undoes it.
    cut_over: BTreeMap<FlowId, CutOverTopics>,
    /// Flows whose persisted cut-over state is loaded into `cut_over`.
    restored: BTreeSet<FlowId>,
    /// `ferry run --allow-reslot`: a slots topic with another partition
    /// count than the flow's `slots` is recreated instead of refused.
    allow_reslot: bool,
    /// The running topology as the flows see it: a flow deleting a target
    /// topic checks that no other flow writes to it, as of the last reload.
    shared: watch::Sender<Arc<Topology>>,
}

impl Supervisor {
    /// A supervisor of `topology`'s flows, none started yet; `metrics`
    /// receives every flow's series.
    pub fn new(topology: Topology, mode: RunMode, metrics: Arc<ferry_http::Metrics>) -> Self {
        Self {
            status: Arc::new(EngineStatus::new(&topology)),
            shared: watch::channel(Arc::new(topology.clone())).0,
            topology,
            metrics,
            mode,
            flows: BTreeMap::new(),
            cut_over: BTreeMap::new(),
            restored: BTreeSet::new(),
            allow_reslot: false,
        }
    }

    /// Recreates a flow's slots topic whose partition count differs from
    /// the flow's `slots` (`ferry run --allow-reslot`).
    pub fn allow_reslot(mut self, allow: bool) -> Self {
        self.allow_reslot = allow;
        self
    }

    /// Shared, cheap-to-read state for metrics, health and `/status`.
    pub fn status(&self) -> Arc<EngineStatus> {
        self.status.clone()
    }

    /// Starts every enabled flow under `parent`.
    pub fn start(&mut self, parent: &CancellationToken) -> Result<(), EngineError> {
        let flows: Vec<Flow> = self
            .topology
            .flows
            .iter()
            .filter(|f| f.enabled)
            .cloned()
            .collect();
        for flow in flows {
            self.spawn_flow(flow, parent)?;
        }
        Ok(())
    }

    fn spawn_flow(&mut self, flow: Flow, parent: &CancellationToken) -> Result<(), EngineError> {
        let flow = self.without_cut_over(flow);
        let source = cluster_of(&self.topology, &flow, &flow.source)?;
        let target = cluster_of(&self.topology, &flow, &flow.target)?;
        let mm2_offsets_cluster = cluster_of(&self.topology, &flow, &flow.mm2_offsets.cluster)?;
        let id = flow.id();
        self.status
            .flow(&id)
            .set_cut_over(self.cut_over.get(&id).cloned().unwrap_or_default());
        let cancel = parent.child_token();
        let (live, live_rx) = watch::channel(flow.clone());
        // Series start at zero, so `increase()` alerts see the first event.
        let flow_metrics = self.metrics.flow(&id.to_string());
        let runner = flow::FlowRunner::new(
            live_rx,
            source,
            target,
            self.status.flow(&id),
            self.topology.engine.shutdown_timeout,
            self.mode,
        )
        .with_mm2_offsets_cluster(mm2_offsets_cluster)
        .with_metrics(flow_metrics)
        .with_topology(self.shared.subscribe())
        .with_group(flow::GroupSettings {
            allow_reslot: self.allow_reslot,
            prefix: self.topology.engine.group_prefix.clone(),
            transactional_id_prefix: self.topology.engine.transactional_id_prefix.clone(),
            // Members compare these to see who runs another topology file.
            client_id: format!(
                "ferry-{}",
                &self.topology.digest[..self.topology.digest.len().min(12)]
            ),
        });
        let handle = tokio::spawn(runner.run(cancel.clone()));
        self.flows.insert(
            id,
            RunningFlow {
                flow,
                cancel,
                handle,
                live,
            },
        );
        Ok(())
    }

    /// Stops one flow: drain, persist progress.
    async fn stop_flow(&mut self, id: &FlowId) -> Result<(), EngineError> {
        let Some(running) = self.flows.remove(id) else {
            return Ok(());
        };
        running.cancel.cancel();
        let result = running
            .handle
            .await
            .map_err(|e| EngineError::Internal(format!("flow task panicked: {e}")))?;
        self.status.remove_flow(id);
        self.metrics.forget_flow(&id.to_string());
        result
    }

    /// Applies a new, already validated topology as a transaction: settings
    /// that cannot change at runtime reject the whole reload (the running
    /// topology stays as it is); otherwise removed flows drain and stop,
    /// added flows start, flows whose only change is their topic filters
    /// pick the change up in place (untouched topics do not pause), and any
    /// other changed flow restarts from its persisted progress.
    pub async fn reload(
        &mut self,
        new: Topology,
        parent: &CancellationToken,
    ) -> Result<ReloadSummary, ReloadRejected> {
        let d = ferry_config::diff(&self.topology, &new);
        if !d.not_reloadable.is_empty() {
            return Err(ReloadRejected {
                reasons: d.not_reloadable,
            });
        }
        // A flow new to this process may have been cut over before it
        // started: its state is read before anything changes.
        for flow in new.flows.iter().filter(|f| f.enabled) {
            if let Err(e) = self.restore_flow(&new, flow).await {
                return Err(ReloadRejected {
                    reasons: vec![format!("flow {}: {e}", flow.id())],
                });
            }
        }
        let desired: BTreeMap<FlowId, Flow> = new
            .flows
            .iter()
            .filter(|f| f.enabled)
            .map(|f| (f.id(), self.without_cut_over(f.clone())))
            .collect();
        let mut summary = ReloadSummary::default();
        let running: Vec<FlowId> = self.flows.keys().cloned().collect();
        let old = std::mem::replace(&mut self.topology, new.clone());
        self.shared.send_replace(Arc::new(new.clone()));
        self.status.set_digest(&new.digest);
        for id in running {
            let Some(wanted) = desired.get(&id) else {
                if let Err(e) = self.stop_flow(&id).await {
                    tracing::warn!(flow = %id, error = %e, "flow stopped with an error");
                }
                summary.stopped.push(id);
                continue;
            };
            let current = &self.flows[&id];
            let clusters_same = [&wanted.source, &wanted.target]
                .iter()
                .all(|c| old.cluster(c) == new.cluster(c));
            if &current.flow == wanted && clusters_same {
                continue;
            }
            if clusters_same && only_topic_filters_differ(&current.flow, wanted) {
                let entry = self.flows.get_mut(&id).expect("present");
                entry.flow = wanted.clone();
                let _ = entry.live.send(wanted.clone());
                summary.refiltered.push(id);
            } else {
                if let Err(e) = self.stop_flow(&id).await {
                    tracing::warn!(flow = %id, error = %e, "flow stopped with an error");
                }
                if let Err(e) = self.spawn_flow(wanted.clone(), parent) {
                    tracing::error!(flow = %id, error = %e, "cannot restart flow");
                }
                summary.restarted.push(id);
            }
        }
        for (id, flow) in desired {
            if !self.flows.contains_key(&id) {
                if let Err(e) = self.spawn_flow(flow, parent) {
                    tracing::error!(flow = %id, error = %e, "cannot start flow");
                }
                summary.started.push(id);
            }
        }
        Ok(summary)
    }

    /// A flow with the topics already cut over excluded.
    fn without_cut_over(&self, mut flow: Flow) -> Flow {
        if let Some(names) = self.cut_over.get(&flow.id()) {
            flow.topics = flow.topics.excluding(names.keys().map(String::as_str));
        }
        flow
    }

    /// Loads the persisted cut-over state of every enabled flow, so that
    /// `start` leaves those topics stopped: starting without it could copy
    /// into topics that already moved to the target. A daemon retries a
    /// target that cannot be read (each failure logged, naming the cluster
    /// and topic) until it answers or `cancel` fires; a bounded run
    /// returns the error.
    pub async fn restore_cut_over(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<(), EngineError> {
        let topology = self.topology.clone();
        for flow in topology.flows.iter().filter(|f| f.enabled) {
            let mut backoff = checkpoints::retry_backoff();
            while let Err(e) = self.restore_flow(&topology, flow).await {
                if self.mode == RunMode::UntilCaughtUp {
                    return Err(e);
                }
                let wait = backoff.next_wait();
                tracing::error!(flow = %flow.id(), error = %e, retry_in = ?wait, "cannot read the cut-over state; the flow waits for it");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        Ok(())
    }

    /// Reads `flow`'s persisted cut-over state once per process.
    async fn restore_flow(&mut self, topology: &Topology, flow: &Flow) -> Result<(), EngineError> {
        let id = flow.id();
        if self.restored.contains(&id) {
            return Ok(());
        }
        let target = cluster_of(topology, flow, &flow.target)?;
        let topics = cut_over::load(&target, &id).await?;
        if !topics.is_empty() {
            tracing::info!(flow = %id, topics = ?topics.keys().collect::<Vec<_>>(), "cut over earlier: these topics stay stopped (ferry resume-topics undoes it)");
        }
        self.cut_over.entry(id.clone()).or_default().extend(topics);
        self.restored.insert(id);
        Ok(())
    }

    /// Stops replicating `topics` in a running flow (the last step of
    /// `ferry cutover` against a daemon). The stop is persisted on the
    /// flow's target first, and acknowledged there, so it survives
    /// restarts; if that fails nothing changes and the error says why.
    /// Then the topics' tasks stop in place and the flow's other topics do
    /// not pause. Returns the topics the flow was replicating among them.
    pub async fn stop_topics(
        &mut self,
        id: &FlowId,
        topics: &[String],
    ) -> Result<Vec<String>, ControlError> {
        let Some(running) = self.flows.get(id) else {
            return Err(ControlError::Refused(self.not_running(id)));
        };
        let flow = running.flow.clone();
        let stopped: Vec<String> = topics
            .iter()
            .filter(|t| topics::selects(&flow, t))
            .cloned()
            .collect();
        let target = cluster_of(&self.topology, &flow, &flow.target)
            .map_err(|e| ControlError::Refused(e.to_string()))?;
        let recorded = cut_over::record(
            &target,
            id,
            topics,
            "POST /control/stop-topics",
            flow.replication_factor,
        )
        .await
        .map_err(|e| {
            tracing::error!(flow = %id, error = %e, "cannot persist the cutover; nothing was stopped");
            ControlError::Unavailable(format!("nothing was stopped: {e}"))
        })?;
        let entry = self.cut_over.entry(id.clone()).or_default();
        for (topic, cut) in recorded {
            // The first cutover's time and cause stay.
            entry.entry(topic).or_insert(cut);
        }
        self.status.flow(id).set_cut_over(entry.clone());
        let narrowed = self.without_cut_over(flow);
        let running = self.flows.get_mut(id).expect("checked above");
        running.flow = narrowed.clone();
        let _ = running.live.send(narrowed);
        tracing::info!(flow = %id, topics = ?stopped, "cut over: these topics are no longer replicated (persisted on the target)");
        Ok(stopped)
    }

    /// Undoes a cutover (`ferry resume-topics` against a daemon): the
    /// persisted state of `topics` is removed on the target first
    /// (tombstones, acknowledged), then the flow restarts so the topics
    /// replicate again from their saved progress (its other topics pause
    /// for the drain). Returns the topics that were cut over among them.
    pub async fn resume_topics(
        &mut self,
        id: &FlowId,
        topics: &[String],
        parent: &CancellationToken,
    ) -> Result<Vec<String>, ControlError> {
        let Some(configured) = self.topology.flow(id).cloned() else {
            return Err(ControlError::Refused(format!(
                "flow {id} is not in the running topology"
            )));
        };
        let resumed: Vec<String> = topics
            .iter()
            .filter(|t| self.cut_over.get(id).is_some_and(|c| c.contains_key(*t)))
            .cloned()
            .collect();
        if resumed.is_empty() {
            return Err(ControlError::Refused(format!(
                "flow {id}: none of {} is cut over here",
                topics.join(", ")
            )));
        }
        let target = cluster_of(&self.topology, &configured, &configured.target)
            .map_err(|e| ControlError::Refused(e.to_string()))?;
        cut_over::remove(&target, id, &resumed, configured.replication_factor)
            .await
            .map_err(|e| {
                tracing::error!(flow = %id, error = %e, "cannot remove the cut-over state; nothing was resumed");
                ControlError::Unavailable(format!("nothing was resumed: {e}"))
            })?;
        if let Some(cut) = self.cut_over.get_mut(id) {
            cut.retain(|t, _| !resumed.contains(t));
        }
        tracing::info!(flow = %id, topics = ?resumed, "cutover undone: these topics replicate again from their saved progress");
        // A restart, not a filter change in place: the topics resume from
        // the progress persisted when they stopped, which a running flow
        // only reads at its start.
        if self.flows.contains_key(id) {
            if let Err(e) = self.stop_flow(id).await {
                tracing::warn!(flow = %id, error = %e, "flow stopped with an error");
            }
            if configured.enabled {
                self.spawn_flow(configured, parent).map_err(|e| {
                    ControlError::Unavailable(format!("cannot restart the flow: {e}"))
                })?;
            }
        }
        Ok(resumed)
    }

    fn not_running(&self, id: &FlowId) -> String {
        let known: Vec<String> = self.flows.keys().map(|f| f.to_string()).collect();
        format!(
            "flow {id} is not running here (running: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    }

    /// Waits for every flow to finish (after cancellation, or in a bounded
    /// run once each caught up). Returns the first flow error.
    pub async fn wait(self) -> Result<(), EngineError> {
        let mut first_error = None;
        for (id, running) in self.flows {
            match running.handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(flow = %id, error = %e, "flow stopped");
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error
                        .get_or_insert(EngineError::Internal(format!("flow task panicked: {e}")));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Starts, then waits: the whole life of a non-reloading run.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), EngineError> {
        self.start(&cancel)?;
        self.wait().await
    }
}

/// True when two versions of a flow differ at most in their topic filters.
fn only_topic_filters_differ(old: &Flow, new: &Flow) -> bool {
    let mut aligned = new.clone();
    aligned.topics = old.topics.clone();
    &aligned == old
}

/// The cluster `alias` of `flow`'s validated topology; missing is a bug.
fn cluster_of(
    topology: &Topology,
    flow: &Flow,
    alias: &str,
) -> Result<ferry_config::Cluster, EngineError> {
    topology.cluster(alias).cloned().ok_or_else(|| {
        EngineError::Internal(format!(
            "flow {} names a cluster missing from the validated topology",
            flow.id()
        ))
    })
}

/// A flow whose `slots` differ from its slots topic's partition count: the
/// flow ran with another slot count before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedSlots {
    /// The flow's index in the topology file (`flows[N]`).
    pub index: usize,
    /// What is wrong and how to proceed.
    pub message: String,
}

/// Checks, before anything starts, that every enabled flow's slots topic
/// (if it exists) has one partition per slot. A target that does not answer
/// within a few seconds is not checked here: the flow itself refuses to run
/// with a changed slot count, and says so in its status.
pub async fn changed_slots(topology: &Topology) -> Vec<ChangedSlots> {
    let mut changed = Vec::new();
    for (index, flow) in topology.flows.iter().enumerate() {
        let Some(target) = topology.clusters.get(&flow.target).filter(|_| flow.enabled) else {
            continue;
        };
        let Ok(admin) = clients::admin(target, "ferry-preflight")
            .and_then(|a| a.clone_with_timeout(std::time::Duration::from_secs(5)))
        else {
            continue;
        };
        let topic = flow.slots_topic();
        if let Ok(Some(partitions)) =
            topics::slots_topic_partitions(&admin, &target.name, &topic).await
        {
            if partitions != usize::from(flow.slots) {
                changed.push(ChangedSlots {
                    index,
                    message: format!(
                        "cluster {}, topic {topic}: {}",
                        target.name,
                        topics::reslot_refusal(partitions, flow.slots)
                    ),
                });
            }
        }
    }
    changed
}
