//! One start of a flow, from its clients' creation to its drain: a loop of
//! events (progress loaded, topic filters reloaded, discovery due, progress
//! write asked or due, commit tick, a bounded run's final error), each
//! handled by one method of [`FlowRun`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Offset;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::acl_sync::{run_acl_sync, AclScope};
use super::context::FlowContext;
use super::delete_sync::{run_delete_sync, DeleteScope};
use super::progress_writes::{persist_progress, write_progress, CommittedProgress, Owner};
use super::side_task::SideTask;
use super::topic::{mirror_topic, SlotsChanged};
use super::{
    blocking, count_error, lag_refresh_interval, FlowRunner, Joining, RunMode, REQUEST_TIMEOUT,
};
use crate::checkpoints::Checkpointing;
use crate::clients::ClusterContext;
use crate::internal::InternalProducer;
use crate::lookups;
use crate::membership::{claim, Membership, SlotEvent, SlotId};
use crate::status::FlowState;
use crate::topics;
use crate::{EngineError, Place};

/// How often `/status` and the metrics get this process's slots between
/// rebalances (for the seconds since the last one).
const MEMBERSHIP_REFRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// How long after a rebalance the group's members are described.
const MEMBERS_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// How the loop goes on after an event: `Break` carries the run's outcome.
type Next = ControlFlow<Result<(), EngineError>>;

/// The saved progress and MirrorMaker 2's positions being loaded (see
/// [`FlowContext::resume`]); it holds a reference to the context until it
/// completes.
type Loading = Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send>>;

/// A running topic task, as the flow sees it.
struct TopicHandle {
    /// Stops the task (it unassigns its partitions).
    cancel: CancellationToken,
    /// The source topic's partition count, sent to the task when it grows.
    partitions: watch::Sender<i32>,
    /// Tells the task that the slots this process owns changed.
    slots_changed: mpsc::Sender<SlotsChanged>,
}

/// One start of a flow: what its event loop reads and changes.
pub(super) struct FlowRun<'r> {
    /// The flow's configuration; its `flow` is replaced in place when topic
    /// filters are reloaded, so a restart after a failure keeps them.
    runner: &'r mut FlowRunner,
    /// What the topic tasks share.
    ctx: Arc<FlowContext>,
    /// Writes progress records to the target (and nothing else here).
    committer: InternalProducer,
    /// Offset syncs, checkpoints, group offset sync and heartbeats; finished
    /// after the drain, once everything is acknowledged.
    checkpointing: Checkpointing,
    /// The last watermark written and acknowledged per partition. Filled
    /// from the saved progress once it is loaded; until then no partition
    /// is assigned, so there is nothing to write.
    committed: CommittedProgress,
    /// Polled to completion by the loop, then `None`: dropping it mid-load
    /// would make the next caller start the reads again.
    loading: Option<Loading>,
    /// The topic tasks, waited for at the drain.
    tasks: TaskTracker,
    /// The running topic tasks by source topic.
    running: HashMap<String, TopicHandle>,
    /// Topic discovery, every `refresh_interval` (at once after a reload).
    refresh: Interval,
    /// Progress writes, every `COMMIT_INTERVAL`; also checks lag and, in a
    /// bounded run, whether every partition caught up.
    commit: Interval,
    /// Topic tasks asking for a progress write now (a stopped partition's
    /// watermark, before it is retried); closed at the drain.
    write_requests: mpsc::Receiver<oneshot::Sender<bool>>,
    /// Failures of topic tasks that end a bounded run (see
    /// [`FlowContext::ends_run`]).
    final_errors: mpsc::Receiver<EngineError>,
    /// A bounded run is never done before the first discovery.
    discovered_once: bool,
    /// The flow's last error is a refusal of merged topics, to be cleared
    /// once no topics are refused any more.
    refusing_merges: bool,
    /// When the source end offsets (for lag) were last read.
    last_lag_refresh: Option<Instant>,
    /// False once the supervisor dropped the sender of filter changes.
    live_open: bool,
    /// Early writes (when the in-flight window asks for one) only while
    /// writes succeed: a failing one is retried on the timer, not in a loop.
    progress_writable: bool,
    /// This process's membership in the flow's group; left at the drain.
    membership: Option<Membership>,
    /// What the group decided; `None` until joined, closed at the drain.
    slot_events: Option<mpsc::Receiver<SlotEvent>>,
    /// The group being joined, polled by the loop until done.
    joining: Option<Joining>,
    /// Rebalances this process went through, and when the last one was.
    rebalances: u64,
    last_rebalance: Instant,
    /// The group's members as the coordinator last described them.
    members: Vec<ferry_http::MemberDocument>,
    /// True while a member runs another topology file than this process.
    topology_mismatch: bool,
    /// When `/status` last got this process's membership.
    last_published: Instant,
    /// When the commit timer last fired: a much longer gap means this
    /// process did not run (stopped, frozen) and may have lost its group
    /// session without knowing yet.
    last_commit_tick: Instant,
    /// Progress writes wait until then after such a gap (see
    /// [`FlowRun::on_commit_tick`]).
    writes_held_until: Option<Instant>,
    /// When to ask the coordinator for the group's members: a moment after
    /// each rebalance. Asked only then, because those requests go to the
    /// group coordinator, which may be the broker that is down.
    members_due: Option<Instant>,
    /// The ACL sync task (`sync_acls = true`), started by the first
    /// discovery that finds it enabled.
    acl_sync: Option<SideTask<AclScope>>,
    /// The deletion task (`propagate_deletes = true`), started by the first
    /// discovery that finds it enabled.
    delete_sync: Option<SideTask<DeleteScope>>,
    /// Stops the schema sync task (`flows[].schemas`), started by the
    /// first discovery.
    schema_sync: Option<CancellationToken>,
}

impl<'r> FlowRun<'r> {
    pub(super) fn new(
        runner: &'r mut FlowRunner,
        ctx: Arc<FlowContext>,
        committer: InternalProducer,
        checkpointing: Checkpointing,
        (write_requests, final_errors): (
            mpsc::Receiver<oneshot::Sender<bool>>,
            mpsc::Receiver<EngineError>,
        ),
        joining: Joining,
    ) -> Self {
        // Under exactly-once, progress is read only once the slots' earlier
        // owners are fenced: a transaction a dead process left open would
        // hold a `read_committed` reader until it times out. Its topic is
        // made ready meanwhile.
        let loading: Loading = {
            let ctx = ctx.clone();
            if runner.flow.exactly_once() {
                Box::pin(async move { ctx.prepare_progress_topic().await })
            } else {
                Box::pin(async move { ctx.resume().await.map(|_| ()) })
            }
        };
        let loading = Some(loading);
        Self {
            refresh: tokio::time::interval(runner.flow.refresh_interval),
            commit: tokio::time::interval(super::COMMIT_INTERVAL),
            runner,
            ctx,
            committer,
            checkpointing,
            committed: CommittedProgress::new(),
            loading,
            tasks: TaskTracker::new(),
            running: HashMap::new(),
            write_requests,
            final_errors,
            discovered_once: false,
            refusing_merges: false,
            last_lag_refresh: None,
            live_open: true,
            progress_writable: true,
            membership: None,
            slot_events: None,
            joining: Some(joining),
            rebalances: 0,
            last_rebalance: Instant::now(),
            members: Vec::new(),
            topology_mismatch: false,
            last_published: Instant::now(),
            last_commit_tick: Instant::now(),
            writes_held_until: None,
            members_due: None,
            acl_sync: None,
            delete_sync: None,
            schema_sync: None,
        }
    }

    /// Runs the flow until `cancel` fires, a bounded run caught up, or the
    /// flow fails; then drains it.
    pub(super) async fn run(mut self, cancel: &CancellationToken) -> Result<(), EngineError> {
        self.runner.status.set_error(None);
        let outcome = loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => Next::Break(Ok(())),
                loaded = poll_loading(&mut self.loading), if self.loading.is_some() => {
                    self.on_progress_loaded(loaded)
                }
                changed = self.runner.live.changed(), if self.live_open => {
                    self.on_filters_changed(changed.is_ok())
                }
                _ = self.refresh.tick() => self.on_discovery_due(cancel).await,
                // A topic task stopped a partition and waits for its
                // watermark to be persisted before retrying it.
                Some(reply) = self.write_requests.recv() => self.on_write_asked(reply).await,
                _ = self.ctx.plane.write_due(), if self.progress_writable => {
                    self.on_write_due().await
                }
                _ = self.commit.tick() => self.on_commit_tick().await,
                joined = poll_joining(&mut self.joining), if self.joining.is_some() => {
                    self.joining = None;
                    match joined {
                        Ok((membership, events)) => {
                            self.membership = Some(membership);
                            self.slot_events = Some(events);
                            Next::Continue(())
                        }
                        Err(e) => Next::Break(Err(e)),
                    }
                }
                Some(event) = next_slot_event(&mut self.slot_events) => self.on_slot_event(event).await,
                Some(e) = self.final_errors.recv() => Next::Break(Err(e)),
            };
            if let Next::Break(outcome) = next {
                break outcome;
            }
        };
        self.drain(outcome).await
    }

    /// The saved progress is loaded: it is what is committed so far.
    fn on_progress_loaded(&mut self, loaded: Result<(), EngineError>) -> Next {
        self.loading = None;
        if let Err(e) = loaded {
            return Next::Break(Err(e));
        }
        self.adopt_saved_progress();
        Next::Continue(())
    }

    /// What the progress topic holds is committed: no need to write it
    /// again.
    fn adopt_saved_progress(&mut self) {
        if let Some(resume) = self.ctx.resume.get() {
            self.committed.extend(
                crate::clock::lock(&resume.progress)
                    .iter()
                    .map(|((t, p), v)| ((Arc::from(t.as_str()), *p), *v)),
            );
        }
    }

    /// A reload changed the flow's topic filters: they apply at once,
    /// without a restart.
    fn on_filters_changed(&mut self, open: bool) -> Next {
        if !open {
            self.live_open = false;
            return Next::Continue(());
        }
        let runner = &mut *self.runner;
        runner.flow = runner.live.borrow_and_update().clone();
        tracing::info!(topics = ?runner.flow.topics.include_patterns(), "topic filters reloaded");
        self.refresh.reset_immediately();
        Next::Continue(())
    }

    /// Lists the source topics and reconciles the topic tasks with them.
    async fn on_discovery_due(&mut self, cancel: &CancellationToken) -> Next {
        match topic_partitions(&self.ctx.source_reader, &self.ctx.source.name).await {
            Ok(found) => {
                self.reconcile(found.partitions, cancel);
                self.sync_acls(cancel);
                if let Some(names) = found.names {
                    self.propagate_deletes(names, cancel);
                }
                self.sync_schemas(cancel);
                self.discovered_once = true;
                if let Some(metrics) = &self.ctx.metrics {
                    metrics.topic_discovery();
                }
                self.runner.status.set_state(FlowState::Running);
            }
            Err(e) => {
                // Not ready while the source cannot be reached; copying
                // continues where librdkafka can.
                tracing::warn!(error = %e, "topic discovery failed; retrying next refresh");
                count_error(&self.ctx.metrics, "metadata");
                self.runner.status.set_error(Some(e.to_string()));
                self.runner.status.set_state(FlowState::Retrying);
            }
        }
        Next::Continue(())
    }

    /// A topic task asked for a progress write and waits for its outcome.
    async fn on_write_asked(&mut self, reply: oneshot::Sender<bool>) -> Next {
        self.persist().await;
        let _ = reply.send(self.progress_writable);
        Next::Continue(())
    }

    /// The in-flight window holds enough acknowledged bytes to ask for a
    /// write before the timer.
    async fn on_write_due(&mut self) -> Next {
        self.persist().await;
        Next::Continue(())
    }

    /// The timer's progress write, the lag refresh when due, and in a
    /// bounded run the check whether every partition caught up.
    async fn on_commit_tick(&mut self) -> Next {
        self.notice_pause();
        self.persist().await;
        if self.members_due.is_some_and(|due| Instant::now() >= due) {
            self.members_due = None;
            self.describe_members().await;
            self.publish_membership();
        }
        if self.ctx.ownership.joined() && self.last_published.elapsed() >= MEMBERSHIP_REFRESH {
            self.publish_membership();
        }
        let due = lag_refresh_interval(self.ctx.status.slot_count());
        if self.last_lag_refresh.is_none_or(|at| at.elapsed() >= due) {
            self.last_lag_refresh = Some(Instant::now());
            refresh_end_offsets(&self.ctx).await;
        }
        if self.runner.mode == RunMode::UntilCaughtUp
            && self.discovered_once
            && caught_up(&self.ctx, &self.running)
        {
            tracing::info!("every partition reached the end offsets captured at start");
            return Next::Break(Ok(()));
        }
        Next::Continue(())
    }

    /// The group assigned or revoked slots.
    async fn on_slot_event(&mut self, event: SlotEvent) -> Next {
        // The coordinator answered: what this process owns is known again.
        self.writes_held_until = None;
        let next = match event {
            SlotEvent::Assigned(slots) => self.on_slots_assigned(slots).await,
            SlotEvent::Revoked {
                slots,
                lost,
                released,
            } => {
                self.on_slots_revoked(&slots, lost).await;
                let _ = released.send(());
                Next::Continue(())
            }
        };
        self.rebalances += 1;
        self.last_rebalance = Instant::now();
        if let Some(m) = &self.ctx.metrics {
            m.membership().rebalanced();
        }
        // The others may still be syncing: ask who is in the group once it
        // settled, not now.
        self.members_due = Some(Instant::now() + MEMBERS_SETTLE);
        self.publish_membership();
        next
    }

    /// Asks the group coordinator who the members are and which topology
    /// file each runs (its client id names the file's digest). Members on
    /// different files still never copy a partition twice (the group gives
    /// each slot to one of them), but they may copy different topics or
    /// name them differently: that is worth an operator's attention.
    async fn describe_members(&mut self) {
        let Some(membership) = &self.membership else {
            return;
        };
        let group = membership.group.clone();
        let described = self
            .ctx
            .target_admin
            .describe_consumer_groups(&[group.as_str()])
            .await;
        let Some(description) = described.ok().and_then(|d| d.into_iter().next()) else {
            tracing::debug!(
                group,
                "cannot describe the flow's group; members not refreshed"
            );
            return;
        };
        let own = self.runner.group.client_id.as_str();
        let slots_topic = self.ctx.flow.slots_topic();
        self.members = description
            .members
            .into_iter()
            .map(|m| ferry_http::MemberDocument {
                slots: m
                    .assignment
                    .iter()
                    .filter(|(t, _)| *t == slots_topic)
                    .filter_map(|(_, p)| SlotId::try_from(*p).ok())
                    .collect(),
                client_id: m.client_id,
                host: m.host,
                member_id: m.consumer_id,
            })
            .collect();
        let mismatch = self.members.iter().any(|m| m.client_id != own);
        if mismatch && !self.topology_mismatch {
            let others: Vec<&str> = self
                .members
                .iter()
                .filter(|m| m.client_id != own)
                .map(|m| m.host.as_str())
                .collect();
            tracing::error!(
                group,
                ?others,
                "members of this flow's group run a different topology file (their client id names another digest): each partition is still copied by one process only, but which topics are copied and how they are named may differ; give every process the same file"
            );
        }
        self.topology_mismatch = mismatch;
        if let Some(m) = &self.ctx.metrics {
            m.membership().set_members(self.members.len());
            m.membership().set_topology_mismatch(mismatch);
        }
    }

    /// Claims the new slots, reads the progress their previous owners
    /// persisted, and starts their partitions.
    ///
    /// A slot's epoch is its claim's offset in the slots topic, which grows
    /// with every owner; but never below an epoch already saved for the
    /// slot's partitions (the slots topic may have been recreated to change
    /// `slots`), so this owner's progress always wins over what is saved.
    async fn on_slots_assigned(&mut self, slots: Vec<SlotId>) -> Next {
        let member = self
            .membership
            .as_ref()
            .and_then(Membership::member_id)
            .unwrap_or_default();
        let slots_topic = self.ctx.flow.slots_topic();
        // One round trip for all the claims.
        let claims = futures::future::join_all(slots.iter().map(|slot| {
            claim(
                &self.committer,
                (&self.ctx.target.name, &slots_topic),
                *slot,
                &member,
            )
        }))
        .await;
        let claims: Vec<(SlotId, i64)> = match slots
            .iter()
            .zip(claims)
            .map(|(slot, claimed)| claimed.map(|offset| (*slot, offset)))
            .collect()
        {
            Ok(claims) => claims,
            Err(e) => return Next::Break(Err(e)),
        };
        // The first load is polled by the event loop, which is here now.
        if let Some(loading) = self.loading.take() {
            if let Next::Break(outcome) = self.on_progress_loaded(loading.await) {
                return Next::Break(outcome);
            }
        }
        let exactly_once = self.ctx.flow.exactly_once();
        if exactly_once {
            // Fences every earlier owner of the slots: whatever they left
            // open is aborted, so the progress read next is final.
            let ids = slots
                .iter()
                .map(|s| {
                    let id =
                        (self.ctx.flow).transactional_id(&self.ctx.transactional_id_prefix, *s);
                    (*s, id)
                })
                .collect();
            if let Err(e) = self
                .ctx
                .plane
                .start_transactions(&self.ctx.target, ids)
                .await
            {
                return Next::Break(Err(e));
            }
        }
        // A claim at offset 0 is the slot's first: nobody persisted progress
        // for it since the load at start. Any other had an owner before,
        // which persisted its progress just before letting it go (or, under
        // exactly-once, committed it before being fenced just now).
        if self.ctx.resume.get().is_none() {
            // Exactly-once: the first load, after the fencing.
            if let Err(e) = self.ctx.resume().await {
                return Next::Break(Err(e));
            }
            self.adopt_saved_progress();
        } else if exactly_once || claims.iter().any(|(_, offset)| *offset > 0) {
            if let Err(e) = self.ctx.reload_progress().await {
                return Next::Break(Err(e));
            }
            self.adopt_saved_progress();
        }
        let saved_epochs = self
            .ctx
            .resume
            .get()
            .map(|r| crate::clock::lock(&r.epochs).clone())
            .unwrap_or_default();
        for (slot, offset) in claims {
            let saved = saved_epochs.get(&slot).map_or(offset, |e| e + 1);
            let epoch = offset.max(saved);
            self.ctx.ownership.add(slot, epoch);
            self.ctx.plane.set_epoch(slot, epoch);
        }
        self.ctx.ownership.mark_joined();
        tracing::info!(
            ?slots,
            owned = self.ctx.ownership.owned().len(),
            "slots assigned"
        );
        // Their offset maps start over and take the whole history from the
        // offset-syncs topic, the previous owner's last syncs included.
        let flow = self.ctx.flow.clone();
        let gained = move |t: &str, p: i32| slots.contains(&flow.slot_of(t, p));
        self.checkpointing.release(&gained);
        self.tell_topics().await;
        self.checkpointing.take_over(gained);
        Next::Continue(())
    }

    /// Hands slots over: their partitions stop, the target answers what is
    /// in flight, their progress is persisted, and only then are they given
    /// up. With `lost`, another member may own them already: they stop and
    /// nothing more is written for them.
    async fn on_slots_revoked(&mut self, slots: &[SlotId], lost: bool) {
        if lost {
            tracing::warn!(
                ?slots,
                "group session lost (this process was paused or cut off past the session timeout): slots given up without a hand-over, nothing more is written for them"
            );
            self.ctx.ownership.remove(slots);
            if let Some(m) = &self.ctx.metrics {
                m.membership().fenced(slots.len());
            }
        } else {
            self.ctx.ownership.begin_release(slots);
        }
        self.tell_topics().await;
        // Their partitions are off the pumps, their records committed.
        self.ctx.plane.end_transactions(slots).await;
        let flow = self.ctx.flow.clone();
        let released: Vec<SlotId> = slots.to_vec();
        self.checkpointing
            .release(move |t, p| released.contains(&flow.slot_of(t, p)));
        if !lost {
            self.persist().await;
            if !self.progress_writable {
                tracing::warn!(?slots, "the last progress of handed-over slots was not persisted; their next owner may copy some records again");
            }
            self.ctx.ownership.remove(slots);
        }
        let flow = &self.ctx.flow;
        for partition in self.ctx.status.slots() {
            if slots.contains(&flow.slot_of(&partition.topic, partition.partition)) {
                self.ctx
                    .status
                    .remove_slot(&partition.topic, partition.partition);
            }
        }
        tracing::info!(
            ?slots,
            owned = self.ctx.ownership.owned().len(),
            "slots revoked"
        );
    }

    /// Tells every topic task that the owned slots changed and waits until
    /// each stopped the partitions it no longer copies. Progress writes the
    /// tasks ask for meanwhile are served, so that none waits for the other.
    async fn tell_topics(&mut self) {
        let mut answers = futures::stream::FuturesUnordered::new();
        for task in self.running.values() {
            let (done, answer) = oneshot::channel();
            if task.slots_changed.send(done).await.is_ok() {
                answers.push(answer);
            }
        }
        let deadline = tokio::time::sleep(self.runner.shutdown_timeout);
        tokio::pin!(deadline);
        while !answers.is_empty() {
            tokio::select! {
                _ = answers.next() => {}
                Some(reply) = self.write_requests.recv() => {
                    self.persist().await;
                    let _ = reply.send(self.progress_writable);
                }
                _ = &mut deadline => {
                    tracing::warn!(waiting = answers.len(), "topic tasks did not follow the new slots within engine.shutdown_timeout");
                    break;
                }
            }
        }
    }

    /// Puts this process's slots and the group's members into `/status`
    /// and the metrics.
    fn publish_membership(&mut self) {
        self.last_published = Instant::now();
        self.ctx
            .status
            .set_delivery(&self.ctx.flow, self.ctx.plane.last_commit_ms());
        let owned = self.ctx.ownership.owned();
        let flow = &self.ctx.flow;
        let partitions = self.ctx.status.slots();
        let per_slot = |slot: SlotId| {
            partitions
                .iter()
                .filter(|p| flow.slot_of(&p.topic, p.partition) == slot)
                .count()
        };
        let membership = self.membership.as_ref();
        let doc = ferry_http::MembershipDocument {
            generation: None,
            group: membership.map(|m| m.group.clone()).unwrap_or_default(),
            member_id: membership
                .and_then(Membership::member_id)
                .unwrap_or_default(),
            members: self.members.clone(),
            partitions: partitions.len(),
            rebalances: self.rebalances,
            seconds_since_rebalance: self.last_rebalance.elapsed().as_secs_f64(),
            slots: owned
                .iter()
                .map(|(slot, epoch)| ferry_http::SlotDocument {
                    epoch: *epoch,
                    partitions: per_slot(*slot),
                    slot: *slot,
                })
                .collect(),
            slots_total: flow.slots,
            topology_mismatch: self.topology_mismatch,
        };
        if let Some(m) = &self.ctx.metrics {
            m.membership().set_slots_owned(owned.len());
            m.membership()
                .set_seconds_since_rebalance(doc.seconds_since_rebalance);
        }
        self.ctx.status.set_membership(Some(doc));
    }

    /// A process that did not run for longer than its group session (it was
    /// stopped or frozen) has probably lost its slots, but learns so only
    /// from the coordinator's next answer. Its progress writes wait for one
    /// session timeout: the group's verdict arrives first (the slots are
    /// revoked as lost, and nothing more is written for them), or it keeps
    /// its slots and writing resumes. Its records would lose to the next
    /// owner's higher epoch anyway; this keeps them off the progress topic.
    fn notice_pause(&mut self) {
        let now = Instant::now();
        let gap = now.duration_since(self.last_commit_tick);
        self.last_commit_tick = now;
        let Some(session) = self.membership.as_ref().map(|m| m.session_timeout) else {
            return;
        };
        if gap > session {
            tracing::warn!(
                ?gap,
                "this process did not run for longer than its group session; progress writes wait until the group confirms or moves its slots"
            );
            self.writes_held_until = Some(now + session);
        }
    }

    async fn persist(&mut self) {
        if let Some(until) = self.writes_held_until {
            if Instant::now() < until {
                self.progress_writable = false;
                return;
            }
            self.writes_held_until = None;
        }
        self.progress_writable =
            persist_progress(&self.ctx, &self.committer, &mut self.committed).await;
    }

    /// Starts tasks for new topics, stops tasks for topics that vanished or
    /// no longer match, and tells running tasks about partition growth.
    fn reconcile(&mut self, found: BTreeMap<String, i32>, cancel: &CancellationToken) {
        let selected: BTreeMap<String, i32> = found
            .into_iter()
            .filter(|(t, _)| topics::selects(&self.runner.flow, t))
            .collect();
        let selected = self.without_merged_topics(selected);
        let ctx = &self.ctx;
        self.running.retain(|topic, task| {
            let keep = selected.contains_key(topic);
            if !keep {
                tracing::info!(
                    topic,
                    "topic no longer selected or deleted on the source; stopping its task"
                );
                task.cancel.cancel();
                ctx.status.remove_topic(topic);
            }
            keep
        });
        for (topic, partitions) in selected {
            if let Some(task) = self.running.get(&topic) {
                task.partitions.send_if_modified(|n| {
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
            let (slots_changed, slots_rx) = mpsc::channel(4);
            let span = tracing::info_span!("topic", topic = %topic);
            self.tasks.spawn(
                mirror_topic(self.ctx.clone(), topic.clone(), rx, slots_rx, token.clone())
                    .instrument(span),
            );
            self.running.insert(
                topic,
                TopicHandle {
                    cancel: token,
                    partitions: tx,
                    slots_changed,
                },
            );
        }
    }

    /// Leaves out source topics that would be written into one target topic
    /// (rename rules matching more names than meant), with an error naming
    /// them (see [`topics::merge_refused`]). They stay out until the rules or
    /// the topics change; a bounded run ends with the error.
    fn without_merged_topics(
        &mut self,
        mut selected: BTreeMap<String, i32>,
    ) -> BTreeMap<String, i32> {
        let flow = &self.runner.flow;
        let mapped = selected.keys().map(|t| (t.clone(), flow.remote_topic(t)));
        let collisions = ferry_config::collisions(mapped);
        if collisions.is_empty() && std::mem::take(&mut self.refusing_merges) {
            self.runner.status.set_error(None);
        }
        for c in collisions {
            self.refusing_merges = true;
            let e = topics::merge_refused(&flow.target, &c.target_topic, &c.first, &c.second);
            tracing::error!(error = %e, "source topics refused");
            self.runner.status.set_error(Some(e.to_string()));
            selected.remove(&c.first);
            selected.remove(&c.second);
            if let Some(ends_run) = &self.ctx.ends_run {
                // Full only when another error already ends the run.
                let _ = ends_run.try_send(e);
            }
        }
        selected
    }

    /// Hands the ACL sync task the topics just discovered (starting it on
    /// first use): ACLs are synced every `refresh_interval`, alongside the
    /// topic configs, without holding up this loop.
    fn sync_acls(&mut self, cancel: &CancellationToken) {
        if !self.runner.flow.acls.enabled {
            return;
        }
        let scope: AclScope = Arc::new((
            self.runner.flow.clone(),
            self.running.keys().cloned().collect(),
        ));
        let ctx = self.ctx.clone();
        SideTask::hand(
            &mut self.acl_sync,
            (&self.tasks, cancel),
            scope,
            tracing::info_span!("acls"),
            |rx, token| run_acl_sync(ctx, rx, token),
        );
    }

    /// Hands the deletion task the source's topic names just listed
    /// (starting it on first use). Off unless `propagate_deletes = true`;
    /// turned off by a reload, the task stops with the flow's restart.
    fn propagate_deletes(&mut self, names: BTreeSet<String>, cancel: &CancellationToken) {
        if !self.runner.flow.deletes.enabled {
            return;
        }
        let Some(topology) = self.runner.topology.clone() else {
            return;
        };
        let scope: DeleteScope = Arc::new((self.runner.flow.clone(), names));
        let ctx = self.ctx.clone();
        SideTask::hand(
            &mut self.delete_sync,
            (&self.tasks, cancel),
            scope,
            tracing::info_span!("deletes"),
            |rx, token| run_delete_sync(ctx, topology, rx, token),
        );
    }

    /// Starts the schema sync task once: it runs every `refresh_interval`
    /// on its own, and whenever a record waits for a schema.
    fn sync_schemas(&mut self, cancel: &CancellationToken) {
        let (Some(settings), Some(ids), None) = (
            &self.runner.flow.schemas,
            &self.ctx.schema_ids,
            &self.schema_sync,
        ) else {
            return;
        };
        let token = cancel.child_token();
        self.tasks.spawn(
            super::schema_sync::run_schema_sync(
                self.runner.flow.clone(),
                settings.clone(),
                ids.clone(),
                token.clone(),
            )
            .instrument(tracing::info_span!("schemas")),
        );
        self.schema_sync = Some(token);
    }

    /// Stops the topic tasks (they unassign), waits for the target to
    /// acknowledge what is in flight, then persists the final progress and
    /// a last checkpoint. The first error wins: the flush, the final write,
    /// then the run's own outcome.
    async fn drain(self, outcome: Result<(), EngineError>) -> Result<(), EngineError> {
        let Self {
            runner,
            ctx,
            committer,
            checkpointing,
            mut committed,
            loading,
            tasks,
            running,
            write_requests,
            membership,
            slot_events,
            joining,
            acl_sync,
            delete_sync,
            schema_sync,
            ..
        } = self;
        drop(joining);
        // A revocation from now on does not wait for this flow: the drain
        // persists everything anyway, and the group learns of it when this
        // process leaves below.
        drop(slot_events);
        drop(loading);
        // Tasks waiting for a progress write get "not written" from here on.
        drop(write_requests);
        runner.status.set_state(FlowState::Draining);
        for task in running.values() {
            task.cancel.cancel();
        }
        if let Some(task) = acl_sync {
            task.stop();
        }
        if let Some(task) = delete_sync {
            task.stop();
        }
        if let Some(schema_sync) = schema_sync {
            schema_sync.cancel();
        }
        tasks.close();
        tasks.wait().await;
        let FlowContext {
            plane,
            target,
            flow,
            status,
            ownership,
            ..
        } = Arc::into_inner(ctx)
            .ok_or_else(|| EngineError::Internal("topic tasks still hold the flow".into()))?;
        let flush = plane.shutdown(runner.shutdown_timeout).await;
        let owner = Owner {
            flow: &flow,
            ownership: &ownership,
        };
        let persisted =
            write_progress(&target.name, owner, &status, &committer, &mut committed).await;
        // Everything is acknowledged: final syncs and a last checkpoint.
        checkpointing.finish(runner.shutdown_timeout).await;
        status.set_membership(None);
        if let Some(membership) = membership {
            // Leaving serves the group's last revocation on this thread.
            let _ = tokio::task::spawn_blocking(move || membership.leave()).await;
        }
        flush.and(persisted).and(outcome)
    }
}

/// Waits for the group to be joined; the caller's guard keeps it from
/// being polled once done.
async fn poll_joining(
    joining: &mut Option<Joining>,
) -> Result<(Membership, mpsc::Receiver<SlotEvent>), EngineError> {
    match joining {
        Some(joining) => joining.await,
        None => std::future::pending().await,
    }
}

/// The group's next decision, once joined.
async fn next_slot_event(events: &mut Option<mpsc::Receiver<SlotEvent>>) -> Option<SlotEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits for the progress to load; the caller's guard keeps it from being
/// polled once done.
async fn poll_loading(loading: &mut Option<Loading>) -> Result<(), EngineError> {
    match loading {
        Some(loading) => loading.await,
        None => std::future::pending().await,
    }
}

/// One listing of the source's topics.
struct Listing {
    /// Every topic with its partition count (topics whose metadata carries
    /// an error, e.g. still being created, are left out).
    partitions: BTreeMap<String, i32>,
    /// Every topic name, those with an error too; `None` when the answer
    /// named no broker, so that it cannot count as proof that a topic is
    /// gone.
    names: Option<BTreeSet<String>>,
}

/// Lists the cluster's topics.
async fn topic_partitions(
    reader: &Arc<BaseConsumer<ClusterContext>>,
    cluster: &str,
) -> Result<Listing, EngineError> {
    let reader = reader.clone();
    let cluster = cluster.to_string();
    blocking(move || {
        crate::clients::serve_token_refresh(&reader);
        let md = reader.fetch_metadata(None, REQUEST_TIMEOUT).map_err(|e| {
            EngineError::request(Place::cluster(&cluster), "metadata request failed", e)
        })?;
        let partitions = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect();
        let names = (!md.brokers().is_empty())
            .then(|| md.topics().iter().map(|t| t.name().to_string()).collect());
        Ok(Listing { partitions, names })
    })
    .await
}
/// Refreshes the source end offsets used for lag: one ListOffsets request
/// per source broker for every partition of the flow (the latest offset,
/// under read_committed the last stable one: what can be copied now).
/// A request per partition, as before, kept a thread busy all the time
/// with thousands of partitions.
async fn refresh_end_offsets(ctx: &FlowContext) {
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

/// True when every partition of every running topic reached the source end
/// offset captured when it was assigned, with nothing in flight.
fn caught_up(ctx: &FlowContext, running: &HashMap<String, TopicHandle>) -> bool {
    // Nothing is copied before the group assigned this process its slots.
    if !ctx.ownership.joined() {
        return false;
    }
    let ends = crate::clock::lock(&ctx.run_ends).clone();
    running.iter().all(|(topic, task)| {
        let partitions = *task.partitions.borrow();
        (0..partitions).all(|p| {
            // A held partition copies nothing: waiting for it would never end.
            // Another process copies the partitions of its own slots.
            if ctx.status.is_held(topic, p) || !ctx.copies(topic, p) {
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
