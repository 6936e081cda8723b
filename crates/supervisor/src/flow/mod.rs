//! One flow's control plane: discovers source topics, runs one async mirror
//! task per topic (target topic, start positions, failure and restart), and
//! persists progress. Records themselves move on the data plane (`pump`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferry_admin::Admin;
use ferry_config::{Cluster, Flow, OnRecordError, StartFrom};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backoff::Backoff;
use crate::checkpoints::{self, Checkpointing, OffsetRegistry};
use crate::clients::{client_config, ClusterContext, Role};
use crate::internal::InternalProducer;
use crate::lookups::{self, Lookups};
use crate::progress::{self, ProgressMap};
use crate::pump::{DataPlane, PumpCommand};
use crate::start;
use crate::status::{FlowState, FlowStatus, Notice};
use crate::topics::{self, TargetTopicAction};
use crate::tracker::{PartitionFailure, PartitionSlot, Resolution};
use crate::EngineError;

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
/// Longest wait for a stopped partition's records in flight to be
/// acknowledged or refused before its acknowledged watermark is taken.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
#[test]
fn lag_refresh_slows_down_with_thousands_of_partitions_only() {
    assert_eq!(lag_refresh_interval(0), Duration::from_secs(1));
    assert_eq!(lag_refresh_interval(1000), Duration::from_secs(1));
    assert_eq!(lag_refresh_interval(4000), Duration::from_secs(4));
    assert_eq!(lag_refresh_interval(50_000), Duration::from_secs(10));
}

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
}

/// Everything the topic tasks of one running flow share.
struct FlowContext {
    flow: Flow,
    source: Cluster,
    target: Cluster,
    mm2_offsets_cluster: Cluster,
    status: Arc<FlowStatus>,
    plane: DataPlane,
    /// Counts errors by kind (`ferry_errors_total`).
    metrics: Option<ferry_http::FlowMetrics>,
    target_admin: Admin,
    source_admin: Admin,
    source_reader: Arc<BaseConsumer<ClusterContext>>,
    /// Batched target-topic and watermark lookups of the topic tasks.
    lookups: Lookups,
    /// Saved progress and MirrorMaker 2's positions, loaded once per start
    /// (see [`FlowContext::resume`]).
    resume: tokio::sync::OnceCell<Resume>,
    /// For `start_from = "unconsumed"`: per (topic, partition), the smallest
    /// committed offset of the matching groups, resolved once per start.
    unconsumed: tokio::sync::OnceCell<HashMap<(String, i32), i64>>,
    /// Source end offsets captured at assignment, for bounded runs.
    run_ends: std::sync::Mutex<HashMap<(String, i32), i64>>,
    /// Per-partition offset maps; every slot feeds its partition's map.
    offsets: Arc<OffsetRegistry>,
    /// Asks the flow for a progress write now; the answer says whether it
    /// landed (see [`FlowContext::persist_progress_now`]).
    progress_writes: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<bool>>,
}

/// Where partitions resume after a start.
struct Resume {
    /// Saved progress; the first assignment of a partition resumes here.
    progress: ProgressMap,
    /// Where MirrorMaker 2 stopped, for partitions Ferry has no progress for.
    handover: HashMap<(String, i32), i64>,
}

impl FlowContext {
    /// Loads the saved progress (creating its topic on a first start) and
    /// MirrorMaker 2's positions once; the first caller loads, the others
    /// wait. Only assignment needs them, so the flow starts this at once and
    /// prepares its target topics meanwhile: the reads are a few round trips
    /// to the target that a short catch-up run would otherwise wait for.
    async fn resume(&self) -> Result<&Resume, EngineError> {
        self.resume
            .get_or_try_init(|| async {
                topics::ensure_internal_topic(
                    &self.target_admin,
                    &self.target.name,
                    &progress::progress_topic(&self.flow.source),
                    self.flow.replication_factor,
                )
                .await?;
                let progress =
                    progress::load(&self.target, &self.flow.source, Duration::from_secs(60))
                        .await?;
                tracing::info!(partitions = progress.len(), "progress loaded");
                let handover = checkpoints::mm2_resume_positions(
                    &self.flow,
                    &self.mm2_offsets_cluster,
                    &self.target,
                )
                .await?;
                Ok(Resume { progress, handover })
            })
            .await
    }

    /// Writes every partition's acknowledged watermark now and waits until
    /// the target acknowledged the write. False when the write failed (the
    /// flow's timer retries it) or the flow is stopping.
    async fn persist_progress_now(&self) -> bool {
        let (reply, landed) = tokio::sync::oneshot::channel();
        if self.progress_writes.send(reply).await.is_err() {
            return false;
        }
        landed.await.unwrap_or(false)
    }
}

fn reader(cluster: &Cluster, name: &str) -> Result<Arc<BaseConsumer<ClusterContext>>, EngineError> {
    client_config(cluster, Role::Reader, name)
        .create_with_context(ClusterContext::new(cluster))
        .inspect(crate::clients::serve_token_refresh)
        .map(Arc::new)
        .map_err(|e| EngineError::Client {
            cluster: cluster.name.clone(),
            cause: e.to_string(),
        })
}

fn admin(cluster: &Cluster) -> Result<Admin, EngineError> {
    crate::clients::admin(cluster, "ferry-admin").map_err(|e| EngineError::Client {
        cluster: cluster.name.clone(),
        cause: e.to_string(),
    })
}

/// Runs a blocking librdkafka call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("blocking task failed: {e}")))?
}

/// Every topic of the cluster with its partition count (topics whose
/// metadata carries an error, e.g. still being created, are left out).
async fn topic_partitions(
    reader: &Arc<BaseConsumer<ClusterContext>>,
    cluster: &str,
) -> Result<BTreeMap<String, i32>, EngineError> {
    let reader = reader.clone();
    let cluster = cluster.to_string();
    blocking(move || {
        crate::clients::serve_token_refresh(&reader);
        let md = reader
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .map_err(|e| EngineError::Client {
                cluster: cluster.clone(),
                cause: format!(
                    "metadata request failed: {}",
                    reader.context().scrub(&e.to_string())
                ),
            })?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    })
    .await
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
        }
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
                        tracing::error!(error = %e, retry_in = ?wait, "flow failed; restarting");
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

    async fn run_once(&mut self, cancel: &CancellationToken) -> Result<(), EngineError> {
        let target_admin = admin(&self.target)?;
        let target_reader = reader(&self.target, "ferry-target-reader")?;
        let (offsets, syncs_rx) = OffsetRegistry::new();
        let (progress_writes, mut write_requests) = tokio::sync::mpsc::channel(64);
        let source_reader = reader(&self.source, "ferry-source-reader")?;
        let lookups = Lookups::start(
            (&self.source.name, source_reader.clone()),
            (&self.target.name, target_reader, target_admin.clone()),
            REQUEST_TIMEOUT,
        );
        let ctx = Arc::new(FlowContext {
            flow: self.flow.clone(),
            source: self.source.clone(),
            target: self.target.clone(),
            mm2_offsets_cluster: self.mm2_offsets_cluster.clone(),
            status: self.status.clone(),
            plane: DataPlane::start(&self.flow, &self.source, &self.target, self.metrics.clone())?,
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
        })?;
        // Filled once the progress is loaded; until then no partition is
        // assigned, so there is nothing to write.
        let mut committed = CommittedProgress::new();
        // Polled to the end by the loop: dropping it mid-load would make the
        // next caller start the reads again.
        let mut resumed = false;
        let mut resume = Box::pin(ctx.resume());

        let tasks = TaskTracker::new();
        let mut running: HashMap<String, (CancellationToken, watch::Sender<i32>)> = HashMap::new();
        let mut refresh = tokio::time::interval(self.flow.refresh_interval);
        let mut commit = tokio::time::interval(COMMIT_INTERVAL);
        let mut discovered_once = false;
        let mut last_lag_refresh: Option<std::time::Instant> = None;
        self.status.set_error(None);
        let mut live_open = true;
        let mut progress_writable = true;
        let outcome = loop {
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                loaded = &mut resume, if !resumed => {
                    match loaded {
                        Ok(r) => {
                            resumed = true;
                            committed.extend(r.progress.iter().map(|((t, p), v)| ((Arc::from(t.as_str()), *p), *v)));
                        }
                        Err(e) => break Err(e),
                    }
                }
                changed = self.live.changed(), if live_open => {
                    match changed {
                        Ok(()) => {
                            self.flow = self.live.borrow_and_update().clone();
                            tracing::info!(topics = ?self.flow.topics.include_patterns(), "topic filters reloaded");
                            refresh.reset_immediately();
                        }
                        Err(_) => live_open = false,
                    }
                }
                _ = refresh.tick() => {
                    match topic_partitions(&ctx.source_reader, &ctx.source.name).await {
                        Ok(found) => {
                            self.reconcile(&ctx, &tasks, &mut running, found, cancel);
                            discovered_once = true;
                            self.status.set_state(FlowState::Running);
                        }
                        Err(e) => {
                            // Not ready while the source cannot be reached;
                            // copying continues where librdkafka can.
                            tracing::warn!(error = %e, "topic discovery failed; retrying next refresh");
                            count_error(&ctx.metrics, "metadata");
                            self.status.set_error(Some(e.to_string()));
                            self.status.set_state(FlowState::Retrying);
                        }
                    }
                }
                // A topic task stopped a partition and waits for its
                // watermark to be persisted before retrying it.
                Some(reply) = write_requests.recv() => {
                    progress_writable = persist_progress(&ctx, &committer, &mut committed).await;
                    let _ = reply.send(progress_writable);
                }
                // Early writes only while writes succeed: a failing one is
                // retried on the timer, not in a loop.
                _ = ctx.plane.window.write_due(), if progress_writable => {
                    progress_writable = persist_progress(&ctx, &committer, &mut committed).await;
                }
                _ = commit.tick() => {
                    progress_writable = persist_progress(&ctx, &committer, &mut committed).await;
                    let due = lag_refresh_interval(ctx.status.slot_count());
                    if last_lag_refresh.is_none_or(|at| at.elapsed() >= due) {
                        last_lag_refresh = Some(std::time::Instant::now());
                        refresh_end_offsets(&ctx).await;
                    }
                    if self.mode == RunMode::UntilCaughtUp && discovered_once && caught_up(&ctx, &running) {
                        tracing::info!("every partition reached the end offsets captured at start");
                        break Ok(());
                    }
                }
            }
        };

        drop(resume);
        // Tasks waiting for a progress write get "not written" from here on.
        drop(write_requests);
        // Drain: stop the tasks (they unassign), wait for the target to
        // acknowledge what is in flight, then persist the final progress.
        self.status.set_state(FlowState::Draining);
        for (token, _) in running.values() {
            token.cancel();
        }
        tasks.close();
        tasks.wait().await;
        let FlowContext {
            plane,
            target,
            flow,
            status,
            ..
        } = Arc::into_inner(ctx)
            .ok_or_else(|| EngineError::Internal("topic tasks still hold the flow".into()))?;
        let flush = plane.shutdown(self.shutdown_timeout).await;
        let persisted = write_progress(
            &target.name,
            &flow.source,
            &status,
            &committer,
            &mut committed,
        )
        .await;
        // Everything is acknowledged: final syncs and a last checkpoint.
        checkpointing.finish(self.shutdown_timeout).await;
        flush.and(persisted).and(outcome)
    }

    /// Starts tasks for new topics, stops tasks for topics that vanished or
    /// no longer match, and tells running tasks about partition growth.
    fn reconcile(
        &self,
        ctx: &Arc<FlowContext>,
        tasks: &TaskTracker,
        running: &mut HashMap<String, (CancellationToken, watch::Sender<i32>)>,
        found: BTreeMap<String, i32>,
        cancel: &CancellationToken,
    ) {
        let selected: BTreeMap<String, i32> = found
            .into_iter()
            .filter(|(t, _)| topics::selects(&self.flow, t))
            .collect();
        running.retain(|topic, (token, _)| {
            let keep = selected.contains_key(topic);
            if !keep {
                tracing::info!(
                    topic,
                    "topic no longer selected or deleted on the source; stopping its task"
                );
                token.cancel();
                ctx.status.remove_topic(topic);
            }
            keep
        });
        for (topic, partitions) in selected {
            if let Some((_, tx)) = running.get(&topic) {
                tx.send_if_modified(|n| {
                    let grew = partitions > *n;
                    if grew {
                        *n = partitions;
                    }
                    grew
                });
                continue;
            }
            let token = cancel.child_token();
            let (tx, rx) = watch::channel(partitions);
            let span = tracing::info_span!("topic", topic = %topic);
            tasks.spawn(
                mirror_topic(ctx.clone(), topic.clone(), rx, token.clone()).instrument(span),
            );
            running.insert(topic, (token, tx));
        }
    }
}

/// One progress write for the flow, freeing the window's budget when it
/// lands; a failure is logged and retried by the next write. True when it
/// landed.
async fn persist_progress(
    ctx: &FlowContext,
    committer: &InternalProducer,
    committed: &mut CommittedProgress,
) -> bool {
    let acked = ctx.plane.window.begin_write();
    match write_progress(
        &ctx.target.name,
        &ctx.flow.source,
        &ctx.status,
        committer,
        committed,
    )
    .await
    {
        Ok(()) => {
            ctx.plane.window.persisted_up_to(acked);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "persisting progress failed; retrying");
            count_error(&ctx.metrics, "progress");
            false
        }
    }
}

/// The last watermark the target acknowledged per (topic, partition). Keyed
/// by the slots' shared topic names: the map is compared against every
/// partition several times a second, and a `String` key would allocate for
/// each of them.
type CommittedProgress = HashMap<PartitionKey, i64>;
type PartitionKey = (Arc<str>, i32);

/// Writes the watermark of every partition whose watermark moved, and
/// records it as committed only once the target acknowledged it.
async fn write_progress(
    target: &str,
    source_alias: &str,
    status: &FlowStatus,
    producer: &InternalProducer,
    committed: &mut CommittedProgress,
) -> Result<(), EngineError> {
    let topic = progress::progress_topic(source_alias);
    let changed: Vec<(PartitionKey, i64, String, String)> = status
        .slots()
        .into_iter()
        .filter_map(|slot| {
            let key = (slot.topic.clone(), slot.partition);
            let watermark = slot.watermark();
            (committed.get(&key) != Some(&watermark)).then(|| {
                let record_key = progress::encode_key(&key.0, key.1);
                (key, watermark, record_key, watermark.to_string())
            })
        })
        .collect();
    // Hand all to librdkafka, then await all: one round trip for the whole
    // batch instead of one per partition.
    let fail = |key: &PartitionKey, e: &dyn std::fmt::Display| EngineError::Progress {
        cluster: target.to_string(),
        topic: topic.clone(),
        cause: format!("writing progress of {}:{} failed: {e}", key.0, key.1),
    };
    let mut first_error = None;
    let mut pending = Vec::with_capacity(changed.len());
    for (key, watermark, record_key, value) in &changed {
        let record = BaseRecord::to(&topic)
            .key(record_key.as_bytes())
            .payload(value.as_bytes());
        match producer.send(record).await {
            Ok(ack) => pending.push((key, *watermark, ack)),
            Err(e) => {
                first_error.get_or_insert(fail(key, &e));
            }
        }
    }
    for (key, watermark, ack) in pending {
        match InternalProducer::acknowledged(ack).await {
            Ok(()) => {
                committed.insert(key.clone(), watermark);
            }
            Err(e) => {
                first_error.get_or_insert(fail(key, &e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn count_error(metrics: &Option<ferry_http::FlowMetrics>, kind: &'static str) {
    if let Some(m) = metrics {
        m.error(kind);
    }
}

/// Refreshes the source end offsets used for lag: one ListOffsets request
/// per source broker for every partition of the flow (the latest offset,
/// under read_committed the last stable one: what can be copied now).
/// A request per partition, as before, kept a thread busy all the time
/// with thousands of partitions.
async fn refresh_end_offsets(ctx: &Arc<FlowContext>) {
    let slots = ctx.status.slots();
    if slots.is_empty() {
        return;
    }
    let reader = ctx.source_reader.clone();
    let ends = blocking(move || {
        let partitions: Vec<(String, i32)> = slots
            .iter()
            .map(|s| (s.topic.to_string(), s.partition))
            .collect();
        let ends: HashMap<(String, i32), i64> =
            lookups::list_offsets(&reader, &partitions, Offset::End, REQUEST_TIMEOUT)
                .map_err(|e| EngineError::Internal(format!("cannot list end offsets: {e}")))?
                .into_iter()
                .filter_map(|(key, end)| Some((key, end.ok()?)))
                .collect();
        for s in &slots {
            if let Some(end) = ends.get(&(s.topic.to_string(), s.partition)) {
                s.source_end
                    .store(*end, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(ends)
    })
    .await;
    match ends {
        Ok(ends) => ctx.status.set_end_offsets(ends),
        Err(e) => tracing::debug!(error = %e, "end offsets not refreshed; lag keeps the last ones"),
    }
}

fn caught_up(
    ctx: &FlowContext,
    running: &HashMap<String, (CancellationToken, watch::Sender<i32>)>,
) -> bool {
    let ends = ctx
        .run_ends
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    running.iter().all(|(topic, (_, tx))| {
        let partitions = *tx.borrow();
        (0..partitions).all(|p| {
            // A held partition copies nothing: waiting for it would never end.
            if ctx.status.is_held(topic, p) {
                return true;
            }
            let Some(end) = ends.get(&(topic.clone(), p)) else {
                return false;
            };
            ctx.status
                .slot(topic, p)
                .is_some_and(|s| !s.is_failed() && s.in_flight() == 0 && s.watermark() >= *end)
        })
    })
}

/// One topic's mirror task: retries the topic with backoff after any
/// failure, never affecting the other topics.
async fn mirror_topic(
    ctx: Arc<FlowContext>,
    topic: String,
    mut partitions: watch::Receiver<i32>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::standard();
    let mut resume: HashMap<i32, i64> = HashMap::new();
    loop {
        match run_topic(&ctx, &topic, &mut partitions, &cancel, &mut resume).await {
            Ok(()) => return,
            Err(e) => {
                let message = e.to_string();
                let wait = backoff.next_wait();
                tracing::error!(error = %message, retry_in = ?wait, "topic stopped; retrying");
                count_error(&ctx.metrics, "topic");
                ctx.status.update_topic(&topic, |t| {
                    t.restarts += 1;
                    t.last_error = Some(message);
                });
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

async fn run_topic(
    ctx: &Arc<FlowContext>,
    topic: &str,
    partitions: &mut watch::Receiver<i32>,
    cancel: &CancellationToken,
    resume: &mut HashMap<i32, i64>,
) -> Result<(), EngineError> {
    let remote = ctx.flow.remote_topic(topic);
    let count = *partitions.borrow_and_update();
    let (action, created_with) = prepare_target(ctx, topic, &remote, count).await?;
    if action == TargetTopicAction::Created {
        report_lost_target(ctx, topic, &remote, resume).await?;
    }
    ctx.status.update_topic(topic, |t| {
        t.remote_topic = remote.clone();
        t.partitions = count;
    });
    // A topic created just now already has the source's configs; one that
    // existed is brought in line before the first record is copied, so that
    // it accepts every record the source did (`max.message.bytes`).
    let mut copied_configs: std::collections::BTreeSet<String> = created_with.into_keys().collect();
    if ctx.flow.sync_topic_configs && action != TargetTopicAction::Created {
        sync_configs(ctx, topic, &remote, &mut copied_configs).await;
    }
    // Woken by a failing partition: a thousand topic tasks polling their
    // partitions would add up at rest.
    let failures = Arc::new(tokio::sync::Notify::new());
    let mut task = TopicTask {
        ctx,
        topic,
        remote: &remote,
        slots: assign(
            ctx,
            topic,
            &remote,
            0..count,
            resume,
            &failures,
            &mut HashMap::new(),
        )
        .await?,
        failures,
        count,
        stalled: BTreeMap::new(),
        retries: HashMap::new(),
        resolutions: HashMap::new(),
    };
    let outcome = task.run(partitions, cancel, resume, copied_configs).await;
    if outcome.is_err() {
        // The next attempt resumes every partition where the target's
        // acknowledgements got to, not from older progress.
        let slots = std::mem::take(&mut task.slots);
        stop_partitions(ctx, &slots, resume).await?;
    }
    outcome
}

/// A topic's running partitions and those stopped after a failure.
struct TopicTask<'a> {
    ctx: &'a Arc<FlowContext>,
    topic: &'a str,
    remote: &'a str,
    /// The partitions being copied.
    slots: Vec<Arc<PartitionSlot>>,
    failures: Arc<tokio::sync::Notify>,
    count: i32,
    /// Stopped partitions and when each is assigned again.
    stalled: BTreeMap<i32, tokio::time::Instant>,
    retries: HashMap<i32, PartitionRetry>,
    /// Refused records that stalled partitions resolve by `on_record_error`
    /// when they are assigned again.
    resolutions: HashMap<i32, Resolution>,
}

/// A partition's retry schedule: its backoff grows while it keeps failing
/// at the same offset, and starts over once it got past it.
struct PartitionRetry {
    offset: i64,
    backoff: Backoff,
}

impl TopicTask<'_> {
    async fn run(
        &mut self,
        partitions: &mut watch::Receiver<i32>,
        cancel: &CancellationToken,
        resume: &mut HashMap<i32, i64>,
        mut copied_configs: std::collections::BTreeSet<String>,
    ) -> Result<(), EngineError> {
        let (ctx, topic, remote) = (self.ctx, self.topic, self.remote);
        let mut config_sync = tokio::time::interval_at(
            tokio::time::Instant::now() + ctx.flow.refresh_interval,
            ctx.flow.refresh_interval,
        );
        loop {
            let next_retry = self.stalled.values().min().copied();
            tokio::select! {
                _ = config_sync.tick(), if ctx.flow.sync_topic_configs => {
                    sync_configs(ctx, topic, remote, &mut copied_configs).await;
                }
                _ = cancel.cancelled() => {
                    ctx.plane.send(PumpCommand::Unassign(std::mem::take(&mut self.slots))).await?;
                    return Ok(());
                }
                changed = partitions.changed() => {
                    if changed.is_err() {
                        ctx.plane.send(PumpCommand::Unassign(std::mem::take(&mut self.slots))).await?;
                        return Ok(());
                    }
                    let grown = *partitions.borrow_and_update();
                    if grown > self.count {
                        tracing::info!(from = self.count, to = grown, "source topic grew; adding partitions");
                        prepare_target(ctx, topic, remote, grown).await?;
                        let added = assign(ctx, topic, remote, self.count..grown, resume, &self.failures, &mut self.resolutions).await?;
                        self.slots.extend(added);
                        self.count = grown;
                        ctx.status.update_topic(topic, |t| t.partitions = self.count);
                    }
                }
                _ = self.failures.notified() => self.stall_failed(resume).await?,
                _ = sleep_until_some(next_retry), if next_retry.is_some() => {
                    self.retry_due(resume).await?;
                }
            }
        }
    }

    /// Stops the failed partitions only: the topic's other partitions, and
    /// every other topic, keep copying while they wait for their retry.
    async fn stall_failed(&mut self, resume: &mut HashMap<i32, i64>) -> Result<(), EngineError> {
        let (failed, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.slots)
            .into_iter()
            .partition(|s| s.is_failed());
        self.slots = running;
        if failed.is_empty() {
            return Ok(());
        }
        stop_partitions(self.ctx, &failed, resume).await?;
        for slot in &failed {
            let partition = slot.partition;
            let failure = slot.failure().unwrap_or_else(|| PartitionFailure {
                offset: slot.watermark(),
                cause: "unknown failure".into(),
                refusal: None,
            });
            // A record the target refused for what it is: under "skip" or
            // "dead-letter" the partition resolves it and goes on at once.
            // Only when everything before it was acknowledged, so that the
            // resolved record is the one at the watermark.
            let policy = &self.ctx.flow.on_record_error;
            if let (Some(refusal), false) = (failure.refusal, *policy == OnRecordError::Stall) {
                if slot.watermark() == failure.offset {
                    tracing::warn!(
                        cluster = %self.ctx.target.name,
                        target_topic = %self.remote,
                        partition,
                        offset = failure.offset,
                        cause = %failure.cause,
                        on_record_error = policy.as_str(),
                        "the target refused a record; resolving it by on_record_error"
                    );
                    self.resolutions.insert(
                        partition,
                        Resolution {
                            offset: failure.offset,
                            refusal,
                            cause: failure.cause,
                            copied_until: slot.acknowledged_past_failure(),
                        },
                    );
                    self.stalled.insert(partition, tokio::time::Instant::now());
                    continue;
                }
            }
            let retry = self
                .retries
                .entry(partition)
                .or_insert_with(|| PartitionRetry {
                    offset: failure.offset,
                    backoff: Backoff::standard(),
                });
            if retry.offset != failure.offset {
                retry.offset = failure.offset;
                retry.backoff.reset();
            }
            let wait = retry.backoff.next_wait();
            self.stalled
                .insert(partition, tokio::time::Instant::now() + wait);
            let error = EngineError::Partition {
                cluster: self.ctx.target.name.clone(),
                topic: self.remote.to_string(),
                partition,
                cause: format!(
                    "delivery of source {}/{partition} offset {} failed: {}",
                    self.topic, failure.offset, failure.cause
                ),
            };
            let message = error.to_string();
            tracing::error!(error = %message, retry_in = ?wait, "partition stopped; retrying it");
            count_error(&self.ctx.metrics, "topic");
            self.ctx.status.update_topic(self.topic, |t| {
                t.restarts += 1;
                t.last_error = Some(message);
            });
        }
        Ok(())
    }

    /// Assigns the stalled partitions whose wait is over, from their
    /// acknowledged watermarks.
    async fn retry_due(&mut self, resume: &mut HashMap<i32, i64>) -> Result<(), EngineError> {
        let now = tokio::time::Instant::now();
        let due: Vec<i32> = self
            .stalled
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let (ctx, topic, remote) = (self.ctx, self.topic, self.remote);
        // The failure may have been the target topic itself (deleted, say):
        // make sure it exists before copying into it again.
        prepare_target(ctx, topic, remote, self.count).await?;
        for partition in due {
            self.stalled.remove(&partition);
            let added = assign(
                ctx,
                topic,
                remote,
                partition..partition + 1,
                resume,
                &self.failures,
                &mut self.resolutions,
            )
            .await?;
            self.slots.extend(added);
        }
        Ok(())
    }
}

/// Brings the target topic's configs in line with the source topic's.
/// Best effort: records keep flowing, an error is visible in the log and the
/// topic's status.
async fn sync_configs(
    ctx: &FlowContext,
    topic: &str,
    remote: &str,
    copied_configs: &mut std::collections::BTreeSet<String>,
) {
    match topics::sync_topic_configs(
        &ctx.source_admin,
        &ctx.target_admin,
        &ctx.flow,
        &ctx.target.name,
        (topic, remote),
        copied_configs,
    )
    .await
    {
        Ok(changes) if !changes.is_empty() => {
            tracing::info!(target_topic = %remote, ?changes, "topic configs synced");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "topic config sync failed");
            count_error(&ctx.metrics, "config");
            ctx.status
                .update_topic(topic, |t| t.last_error = Some(e.to_string()));
        }
    }
}

/// Sleeps until `at`; `None` never comes (the caller's guard disables it).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Stops copying these partitions and records where each resumes: waits
/// (bounded) for the target's answer to every record in flight, so the
/// watermark includes all it acknowledged, then persists it. Without the
/// wait a partition stopped right after a refusal would resume before
/// records the target had already taken, and copy them again on every
/// retry.
async fn stop_partitions(
    ctx: &FlowContext,
    slots: &[Arc<PartitionSlot>],
    resume: &mut HashMap<i32, i64>,
) -> Result<(), EngineError> {
    if slots.is_empty() {
        return Ok(());
    }
    ctx.plane
        .send(PumpCommand::Unassign(slots.to_vec()))
        .await?;
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    while slots.iter().any(|s| s.in_flight() > 0) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                timeout = ?SETTLE_TIMEOUT,
                "records of stopped partitions still unanswered by the target; they may be copied again"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for s in slots {
        resume.insert(s.partition, s.watermark());
    }
    // Persisted before any retry: a restart while a partition is stalled
    // resumes where the target's acknowledgements got to as well.
    if !ctx.persist_progress_now().await {
        tracing::warn!(
            "progress of stopped partitions not persisted yet; the flow's next write covers it"
        );
    }
    Ok(())
}

/// A target topic had to be created although progress exists for its
/// partitions (saved, or from this process before a topic restart): it was
/// deleted after records were copied. Copying resumes from the progress,
/// so the records before it are not on the target: say so loudly, per
/// partition, in the log and `/status`.
async fn report_lost_target(
    ctx: &Arc<FlowContext>,
    topic: &str,
    remote: &str,
    resume: &HashMap<i32, i64>,
) -> Result<(), EngineError> {
    let saved = &ctx.resume().await?.progress;
    let mut positions: BTreeMap<i32, i64> = saved
        .iter()
        .filter(|((t, _), _)| t == topic)
        .map(|((_, p), o)| (*p, *o))
        .collect();
    positions.extend(resume.iter().map(|(p, o)| (*p, *o)));
    for (partition, offset) in positions {
        let message = start::target_lost(
            &ctx.flow.id().to_string(),
            &ctx.target.name,
            remote,
            topic,
            partition,
            offset,
        );
        tracing::error!(cluster = %ctx.target.name, target_topic = remote, partition, "{message}");
        ctx.status.notice(
            topic,
            partition,
            Notice {
                kind: start::TARGET_LOST,
                message,
                held: false,
            },
        );
    }
    Ok(())
}

/// Creates or grows the target topic, copying the source topic's configs.
/// Returns what it did and the configs a new topic was created with.
async fn prepare_target(
    ctx: &FlowContext,
    topic: &str,
    remote: &str,
    partitions: i32,
) -> Result<(TargetTopicAction, BTreeMap<String, String>), EngineError> {
    let existing = ctx.lookups.target_partitions(remote).await?;
    let configs = if ctx.flow.sync_topic_configs && existing.is_none() {
        match ctx.source_admin.describe_topic_configs(topic).await {
            Ok(entries) => topics::configs_to_copy(&ctx.flow, &entries),
            Err(e) => {
                tracing::warn!(cluster = %ctx.source.name, error = %e, "cannot read source topic configs; creating target topic with broker defaults");
                BTreeMap::new()
            }
        }
    } else {
        BTreeMap::new()
    };
    let action = topics::ensure_target_topic(
        &ctx.target_admin,
        async |spec| ctx.lookups.create_topic(spec).await,
        (&ctx.target.name, remote),
        partitions,
        existing,
        ctx.flow.replication_factor,
        &configs,
    )
    .await?;
    if action != TargetTopicAction::Existed {
        tracing::info!(target_topic = remote, ?action, "target topic prepared");
    }
    ctx.plane
        .await_target_partitions(remote, partitions, REQUEST_TIMEOUT)
        .await?;
    tracing::debug!(
        target_topic = remote,
        partitions,
        "target partitions visible to the producer"
    );
    let created_with = if action == TargetTopicAction::Created {
        configs
    } else {
        BTreeMap::new()
    };
    Ok((action, created_with))
}

/// Creates slots for the partitions, resolving where each starts (see
/// `start`): the in-memory watermark after a restart, else persisted
/// progress, else where MirrorMaker 2 stopped (handover), else the flow's
/// `start_from`. A held partition gets no slot.
async fn assign(
    ctx: &Arc<FlowContext>,
    topic: &str,
    remote: &str,
    range: std::ops::Range<i32>,
    resume: &mut HashMap<i32, i64>,
    failures: &Arc<tokio::sync::Notify>,
    resolutions: &mut HashMap<i32, Resolution>,
) -> Result<Vec<Arc<PartitionSlot>>, EngineError> {
    let topic_arc: Arc<str> = Arc::from(topic);
    let remote_arc: Arc<str> = Arc::from(remote);
    let mut assignments = Vec::new();
    let saved = ctx.resume().await?;
    // All partitions at once, so they share the flow's lookup rounds.
    let (marks, ()) = tokio::join!(
        futures::future::join_all(
            range
                .clone()
                .map(|p| ctx.lookups.source_watermarks(topic, p)),
        ),
        ctx.plane.warm_source_metadata(topic),
    );
    for (p, marks) in range.zip(marks) {
        let (low, high) = marks?;
        tracing::debug!(partition = p, low, high, "watermarks read");
        // Held for the life of the process: a source log that grew past
        // the saved progress since does not make it right to resume there.
        if ctx.status.is_held(topic, p) {
            continue;
        }
        let key = (topic.to_string(), p);
        let remembered = start::Origin::remembered(
            resume
                .get(&p)
                .copied()
                .or_else(|| saved.progress.get(&key).copied()),
            saved.handover.get(&key).copied(),
        );
        let origin = match remembered {
            Some(origin) => origin,
            None => start::Origin::Policy(start_policy(ctx, topic, p).await?),
        };
        let decision = start::decide(origin, low, high);
        if let Some(warning) = decision.warning {
            let message = warning.describe(&ctx.source.name, topic, p, decision.reason);
            tracing::error!(cluster = %ctx.source.name, topic, partition = p, "{message}");
            ctx.status.notice(
                topic,
                p,
                Notice {
                    kind: warning.kind(),
                    message,
                    held: decision.is_held(),
                },
            );
        }
        let Some(start) = decision.start else {
            continue;
        };
        ctx.run_ends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_string(), p), high);
        let mut slot = PartitionSlot::new(topic_arc.clone(), p, remote_arc.clone(), start)
            .with_offsets(ctx.offsets.attach(&topic_arc, p))
            .with_failure_notify(failures.clone())
            .with_skip_ledger(ctx.status.skips.clone());
        if let Some(resolution) = resolutions.remove(&p) {
            slot = slot.with_resolution(resolution);
        }
        let slot = Arc::new(slot);
        ctx.status.put_slot(slot.clone());
        assignments.push((slot, start));
    }
    let slots: Vec<_> = assignments.iter().map(|(s, _)| s.clone()).collect();
    ctx.plane.send(PumpCommand::Assign(assignments)).await?;
    tracing::debug!(partitions = slots.len(), "partitions handed to the pump");
    Ok(slots)
}

/// The flow's `start_from` for a partition nothing is remembered for, with
/// its lookup (timestamp, committed group offsets) resolved.
async fn start_policy(
    ctx: &Arc<FlowContext>,
    topic: &str,
    partition: i32,
) -> Result<start::Policy, EngineError> {
    Ok(match ctx.flow.start_from {
        StartFrom::Earliest => start::Policy::Earliest,
        StartFrom::Latest => start::Policy::Latest,
        StartFrom::Timestamp(ms) => {
            let reader = ctx.source_reader.clone();
            let (cluster, t) = (ctx.source.name.clone(), topic.to_string());
            let found = blocking(move || {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&t, partition, Offset::Offset(ms))
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                let found = reader
                    .offsets_for_times(tpl, REQUEST_TIMEOUT)
                    .map_err(|e| EngineError::Partition {
                        cluster,
                        topic: t.clone(),
                        partition,
                        cause: format!("cannot look up offsets for timestamp {ms}: {e}"),
                    })?;
                Ok(
                    match found.find_partition(&t, partition).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => Some(o),
                        // No record at or after the timestamp yet.
                        _ => None,
                    },
                )
            })
            .await?;
            start::Policy::Timestamp { found }
        }
        StartFrom::Unconsumed => {
            let committed = ctx
                .unconsumed
                .get_or_try_init(|| smallest_committed_offsets(ctx))
                .await?;
            start::Policy::Unconsumed {
                committed: committed.get(&(topic.to_string(), partition)).copied(),
                fallback: ctx.flow.unconsumed_fallback,
            }
        }
    })
}

/// Per (topic, partition), the smallest offset committed by any source group
/// that matches the flow's group filters.
async fn smallest_committed_offsets(
    ctx: &Arc<FlowContext>,
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    let fail = |cause: String| EngineError::Client {
        cluster: ctx.source.name.clone(),
        cause,
    };
    let groups = ctx.source_admin.list_consumer_groups().await.map_err(|e| {
        fail(format!(
            "cannot list consumer groups for start_from = \"unconsumed\": {e}"
        ))
    })?;
    let mut smallest: HashMap<(String, i32), i64> = HashMap::new();
    for g in groups
        .iter()
        .filter(|g| ctx.flow.groups.matches(&g.group_id))
    {
        let offsets = ctx
            .source_admin
            .list_consumer_group_offsets(&g.group_id, None)
            .await
            .map_err(|e| fail(format!("cannot read offsets of group {}: {e}", g.group_id)))?;
        for o in offsets {
            let Some(offset) = o.offset else { continue };
            let entry = smallest
                .entry((o.topic.clone(), o.partition))
                .or_insert(offset);
            *entry = (*entry).min(offset);
        }
    }
    tracing::info!(
        partitions = smallest.len(),
        "resolved unconsumed start offsets from source groups"
    );
    Ok(smallest)
}
