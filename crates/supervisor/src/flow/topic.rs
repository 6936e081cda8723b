//! One topic's mirror task: prepares the target topic, assigns the
//! partitions to the data plane, keeps the target topic's configs in line,
//! follows partition growth, and stalls and retries failed partitions alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferry_config::OnRecordError;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::assign::assign;
use super::context::FlowContext;
use super::{count_error, REQUEST_TIMEOUT};
use crate::pump::PumpCommand;
use crate::start;
use crate::status::Notice;
use crate::topics::{self, TargetTopicAction};
use crate::tracker::{PartitionFailure, PartitionSlot, Resolution};
use crate::EngineError;
use ferry_admin::backoff::Backoff;

/// Longest wait for a stopped partition's records in flight to be
/// acknowledged or refused before its acknowledged watermark is taken.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One topic's mirror task: retries the topic with backoff after any
/// failure, never affecting the other topics. A failure no retry can fix
/// before an operator acts (see [`EngineError::is_fatal`]) is retried all
/// the same in a daemon, where the operator may fix ACLs or settings at
/// any time, but ends a bounded run, which would otherwise wait forever.
pub(super) async fn mirror_topic(
    ctx: Arc<FlowContext>,
    topic: String,
    mut partitions: watch::Receiver<i32>,
    mut slots_changed: mpsc::Receiver<SlotsChanged>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::standard();
    let mut resume: HashMap<i32, i64> = HashMap::new();
    loop {
        let run = run_topic(
            &ctx,
            &topic,
            (&mut partitions, &mut slots_changed),
            &cancel,
            &mut resume,
        );
        let Err(e) = run.await else {
            return;
        };
        let message = e.to_string();
        count_error(&ctx.metrics, "topic");
        if e.is_fatal() {
            if let Some(ends_run) = &ctx.ends_run {
                tracing::error!(error = %message, "topic stopped: retrying cannot help before an operator acts; the bounded run ends");
                ctx.status
                    .update_topic(&topic, |t| t.last_error = Some(message));
                // Full only when another topic's error already ends the run.
                let _ = ends_run.try_send(e);
                return;
            }
        }
        let wait = backoff.next_wait();
        if e.is_fatal() {
            tracing::error!(error = %message, retry_in = ?wait, "topic stopped; it needs an operator (access or settings) and is retried until then");
        } else {
            tracing::error!(error = %message, retry_in = ?wait, "topic stopped; retrying");
        }
        ctx.status.update_topic(&topic, |t| {
            t.restarts += 1;
            t.last_error = Some(message);
        });
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = &mut sleep => break,
                // Nothing runs until the retry, and the retry assigns only
                // what this process owns then.
                Some(done) = slots_changed.recv() => {
                    forget_resume_of_other_slots(&ctx, &topic, &mut resume);
                    let _ = done.send(());
                }
            }
        }
    }
}

/// Asks a topic task to bring its partitions in line with the slots this
/// process owns now; answered once the partitions of slots it no longer
/// copies are stopped and their records in flight answered.
pub(super) type SlotsChanged = oneshot::Sender<()>;

/// Positions remembered for partitions of slots another process copies now
/// are stale by the time this process owns them again.
fn forget_resume_of_other_slots(ctx: &FlowContext, topic: &str, resume: &mut HashMap<i32, i64>) {
    resume.retain(|p, _| ctx.copies(topic, *p));
}

async fn run_topic(
    ctx: &Arc<FlowContext>,
    topic: &str,
    (partitions, slots_changed): (&mut watch::Receiver<i32>, &mut mpsc::Receiver<SlotsChanged>),
    cancel: &CancellationToken,
    resume: &mut HashMap<i32, i64>,
) -> Result<(), EngineError> {
    let remote = ctx.flow.remote_topic(topic);
    let count = *partitions.borrow_and_update();
    // Prepared while the group assigns this process its slots.
    let (action, created_with) = prepare_target(ctx, topic, &remote, count).await?;
    // What this process copies is known once the group answered: until
    // then a lost target topic could not be told from one this process
    // has nothing to copy into.
    tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        _ = ctx.ownership.wait_joined() => {}
    }
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
    let mut copied_configs: BTreeSet<String> = created_with.into_keys().collect();
    if ctx.flow.sync_topic_configs && action != TargetTopicAction::Created {
        sync_configs(ctx, topic, &remote, &mut copied_configs).await;
    }
    // Woken by a failing partition: a thousand topic tasks polling their
    // partitions would add up at rest.
    let failures = Arc::new(Notify::new());
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
    let outcome = task
        .run((partitions, slots_changed), cancel, resume, copied_configs)
        .await;
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
    failures: Arc<Notify>,
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
        (partitions, slots_changed): (&mut watch::Receiver<i32>, &mut mpsc::Receiver<SlotsChanged>),
        cancel: &CancellationToken,
        resume: &mut HashMap<i32, i64>,
        mut copied_configs: BTreeSet<String>,
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
                Some(done) = slots_changed.recv() => {
                    self.follow_slots(resume).await?;
                    let _ = done.send(());
                }
                _ = sleep_until_some(next_retry), if next_retry.is_some() => {
                    self.retry_due(resume).await?;
                }
            }
        }
    }

    /// Stops the partitions of slots this process no longer copies (their
    /// records in flight answered first, so that the flow persists their
    /// final progress before the slots move), and starts those of slots it
    /// was given.
    async fn follow_slots(&mut self, resume: &mut HashMap<i32, i64>) -> Result<(), EngineError> {
        let (ctx, topic) = (self.ctx, self.topic);
        let (moving, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.slots)
            .into_iter()
            .partition(|s| !ctx.copies(topic, s.partition));
        self.slots = kept;
        // Slots handed over keep their epoch until their progress is
        // persisted: wait for what is in flight. Lost ones (no epoch) write
        // nothing more, and their target may be the cluster that is down.
        let (handed_over, lost): (Vec<_>, Vec<_>) = moving.iter().cloned().partition(|s| {
            ctx.ownership
                .epoch(ctx.flow.slot_of(topic, s.partition))
                .is_some()
        });
        settle_partitions(ctx, &handed_over).await?;
        if !lost.is_empty() {
            ctx.plane.send(PumpCommand::Unassign(lost)).await?;
        }
        forget_resume_of_other_slots(ctx, topic, resume);
        self.stalled.retain(|p, _| ctx.copies(topic, *p));
        self.retries.retain(|p, _| ctx.copies(topic, *p));
        self.resolutions.retain(|p, _| ctx.copies(topic, *p));
        let busy: BTreeSet<i32> = self
            .slots
            .iter()
            .map(|s| s.partition)
            .chain(self.stalled.keys().copied())
            .collect();
        let gained: Vec<i32> = (0..self.count)
            .filter(|p| !busy.contains(p) && ctx.copies(topic, *p))
            .collect();
        if !moving.is_empty() || !gained.is_empty() {
            tracing::info!(
                stopped = moving.len(),
                started = gained.len(),
                "partitions follow the slots this process owns"
            );
        }
        if !gained.is_empty() {
            let added = assign(
                ctx,
                topic,
                self.remote,
                gained,
                resume,
                &self.failures,
                &mut self.resolutions,
            )
            .await?;
            self.slots.extend(added);
        }
        Ok(())
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
            // Text: the partition's tracker keeps the delivery failure
            // as text, and this error is only reported; the partition
            // retries on its own backoff whatever the cause.
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
    copied_configs: &mut BTreeSet<String>,
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
    settle_partitions(ctx, slots).await?;
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

/// Takes partitions off the data plane and waits (up to `SETTLE_TIMEOUT`)
/// until the pump let go of them and the target answered their records in
/// flight, so that their acknowledged watermarks are final.
async fn settle_partitions(
    ctx: &FlowContext,
    slots: &[Arc<PartitionSlot>],
) -> Result<(), EngineError> {
    if slots.is_empty() {
        return Ok(());
    }
    ctx.plane
        .send(PumpCommand::Unassign(slots.to_vec()))
        .await?;
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    // The pump fences a slot when it takes the partition off; a record it
    // was forwarding until then counts as in flight by that time, so only
    // then does "nothing in flight" mean the watermark is final.
    while slots.iter().any(|s| !s.is_fenced() || s.in_flight() > 0) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                timeout = ?SETTLE_TIMEOUT,
                "records of stopped partitions still unanswered by the target; they may be copied again"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
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
    let mut positions: BTreeMap<i32, i64> = crate::clock::lock(saved)
        .iter()
        .filter(|((t, p), _)| t == topic && ctx.copies(t, *p))
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
