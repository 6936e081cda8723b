//! A flow's share among the processes that run it, decided by Kafka's own
//! group protocol: every process subscribes to the flow's slots topic on the
//! target (`ferry-slots.<source>-<target>`, one partition per slot) in the
//! flow's group (`<prefix>.<source>-<target>`), and the partitions the group
//! coordinator assigns it are the slots it owns. Cooperative-sticky
//! assignment moves only the slots that must move when a member joins or
//! leaves, so the others never pause.
//!
//! The consumer runs on its own thread, because librdkafka calls the
//! rebalance callback from `poll` and a revocation must wait there until the
//! flow has stopped the slots' partitions and persisted their progress:
//! only then may another member take them. Nothing is ever read from the
//! slots topic; its records are the owners' *claims* (see `claim`), whose
//! offsets order the owners of a slot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_config::{Cluster, Flow};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::TopicPartitionList;
use tokio::sync::{mpsc, watch};

use rdkafka::producer::BaseRecord;

use crate::clients::{client_config, ClusterContext, Role};
use crate::internal::InternalProducer;
use crate::EngineError;

/// A slot's number, `0..flows[].slots`.
pub(crate) type SlotId = u16;

/// What the group decided, for the flow to carry out.
pub(crate) enum SlotEvent {
    /// The coordinator gave this process these slots (in addition to those
    /// it owns).
    Assigned(Vec<SlotId>),
    /// These slots go to another member. The flow stops their partitions,
    /// waits for the target's acknowledgements, persists their progress and
    /// then answers on `released`; the group moves them only after that.
    /// With `lost`, the group session already ended (this process was
    /// paused or cut off past the session timeout) and another member may
    /// own them now: the flow stops them and writes nothing more for them.
    Revoked {
        slots: Vec<SlotId>,
        lost: bool,
        released: std_mpsc::SyncSender<()>,
    },
}

/// The slots this process owns, as the flow's tasks see them.
#[derive(Debug)]
pub(crate) struct Ownership {
    state: Mutex<Owned>,
    /// False until the group assigned this process its first slots (or
    /// none): until then no partition is copied.
    joined: watch::Sender<bool>,
}

impl Default for Ownership {
    fn default() -> Self {
        Ownership {
            state: Mutex::default(),
            joined: watch::channel(false).0,
        }
    }
}

#[derive(Debug, Default)]
struct Owned {
    /// Owned slots and the epoch of each (the offset of this owner's claim).
    epochs: BTreeMap<SlotId, i64>,
    /// Owned slots being handed over: nothing new is copied for them, but
    /// their last progress is still written.
    releasing: BTreeSet<SlotId>,
}

impl Ownership {
    /// The epoch of `slot` while this process may write progress for it
    /// (it owns the slot, possibly while handing it over).
    pub(crate) fn epoch(&self, slot: SlotId) -> Option<i64> {
        crate::clock::lock(&self.state).epochs.get(&slot).copied()
    }

    /// True when this process copies the partitions of `slot`.
    pub(crate) fn copies(&self, slot: SlotId) -> bool {
        let owned = crate::clock::lock(&self.state);
        owned.epochs.contains_key(&slot) && !owned.releasing.contains(&slot)
    }

    /// True once the group answered this process's first join.
    pub(crate) fn joined(&self) -> bool {
        *self.joined.borrow()
    }

    /// Resolves once the group answered this process's first join.
    pub(crate) async fn wait_joined(&self) {
        let mut joined = self.joined.subscribe();
        // The sender lives as long as `self`.
        let _ = joined.wait_for(|j| *j).await;
    }

    /// Every owned slot with its epoch.
    pub(crate) fn owned(&self) -> BTreeMap<SlotId, i64> {
        crate::clock::lock(&self.state).epochs.clone()
    }

    pub(crate) fn add(&self, slot: SlotId, epoch: i64) {
        let mut owned = crate::clock::lock(&self.state);
        owned.epochs.insert(slot, epoch);
        owned.releasing.remove(&slot);
    }

    /// Stops copying `slots` but keeps writing their progress.
    pub(crate) fn begin_release(&self, slots: &[SlotId]) {
        crate::clock::lock(&self.state).releasing.extend(slots);
    }

    /// Gives `slots` up: nothing more is written for them.
    pub(crate) fn remove(&self, slots: &[SlotId]) {
        let mut owned = crate::clock::lock(&self.state);
        for s in slots {
            owned.epochs.remove(s);
            owned.releasing.remove(s);
        }
    }

    pub(crate) fn mark_joined(&self) {
        self.joined.send_replace(true);
    }
}

/// Appends this process's claim on `slot` to the slot's partition of the
/// slots topic and returns the offset it landed at: the slot's epoch. A
/// later owner's claim lands later in the same partition, so its epoch is
/// always higher.
pub(crate) async fn claim(
    producer: &InternalProducer,
    (cluster, slots_topic): (&str, &str),
    slot: SlotId,
    member: &str,
) -> Result<i64, EngineError> {
    let value = format!("claimed by {member} at {} ms", crate::clock::now_ms());
    let record = BaseRecord::to(slots_topic)
        .partition(i32::from(slot))
        .key("claim".as_bytes())
        .payload(value.as_bytes());
    let failed = |e| {
        EngineError::request(
            crate::Place::partition(cluster, slots_topic, i32::from(slot)),
            "cannot claim the slot",
            e,
        )
    };
    let ack = producer.send(record).await.map_err(failed)?;
    InternalProducer::acknowledged_at(ack).await.map_err(failed)
}

/// The flow's group consumer and the thread that polls it.
pub(crate) struct Membership {
    consumer: Arc<BaseConsumer<MembershipContext>>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
    /// The flow's group.
    pub group: String,
    /// How long the coordinator waits for a silent member before it moves
    /// that member's slots.
    pub session_timeout: Duration,
    /// The flow's slots topic, subscribed to once it exists.
    slots_topic: String,
    /// The target cluster's name, for errors.
    target: String,
}

/// How long a revocation may wait for the flow before the slots are
/// released anyway (the group would otherwise remove this member).
struct RevokeBudget(Duration);

/// The group consumer's context: the cluster's logging and credentials,
/// plus the rebalance hooks that hand slots to the flow.
struct MembershipContext {
    cluster: ClusterContext,
    slots_topic: String,
    events: mpsc::Sender<SlotEvent>,
    budget: RevokeBudget,
}

impl ClientContext for MembershipContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.cluster.log(level, fac, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.cluster.error(error, reason)
    }

    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.cluster.generate_oauth_token(config)
    }
}

impl MembershipContext {
    fn slots_of(&self, tpl: &TopicPartitionList) -> Vec<SlotId> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.slots_topic)
            .filter_map(|e| SlotId::try_from(e.partition()).ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

impl ConsumerContext for MembershipContext {
    /// Runs on the poll thread before librdkafka gives the slots up: it
    /// blocks until the flow released them, so that their next owner starts
    /// from the progress this one persisted.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let slots = self.slots_of(tpl);
        if slots.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        let (released, done) = std_mpsc::sync_channel(1);
        let event = SlotEvent::Revoked {
            slots: slots.clone(),
            lost,
            released,
        };
        // The flow has stopped (the daemon is shutting down and already
        // persisted everything): nothing to wait for. Lost slots may have
        // another owner already: there is nothing to hand over, and the
        // coordinator may be unreachable while this waits.
        if self.events.blocking_send(event).is_err() || lost {
            return;
        }
        if done.recv_timeout(self.budget.0).is_err() {
            tracing::error!(
                ?slots,
                waited = ?self.budget.0,
                "slots released before their progress was persisted (engine.shutdown_timeout passed); their next owner may copy again what this process copied last"
            );
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        // Nothing is read from the slots topic: its partitions are only
        // tokens of ownership.
        if let Err(e) = consumer.pause(tpl) {
            tracing::debug!(error = %e, "cannot pause the slots topic's partitions");
        }
        let slots = self.slots_of(tpl);
        let _ = self.events.blocking_send(SlotEvent::Assigned(slots));
    }
}

/// How often the group consumer is polled: it bounds how late a rebalance
/// is noticed, not how late heartbeats go out (librdkafka sends those from
/// its own threads).
const POLL: Duration = Duration::from_millis(100);

impl Membership {
    /// Creates the flow's group consumer on the target and starts polling
    /// it (it finds the group's coordinator meanwhile); [`subscribe`]
    /// joins. Slot events arrive on the returned receiver. `client_id`
    /// tells the other members which topology file this process runs.
    ///
    /// [`subscribe`]: Membership::subscribe
    pub(crate) fn start(
        flow: &Flow,
        target: &Cluster,
        group_prefix: &str,
        client_id: &str,
        revoke_budget: Duration,
    ) -> Result<(Membership, mpsc::Receiver<SlotEvent>), EngineError> {
        let group = flow.group_id(group_prefix);
        let slots_topic = flow.slots_topic();
        let (events, receiver) = mpsc::channel(16);
        let mut cfg = client_config(target, Role::Reader, client_id);
        cfg.set("group.id", &group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            // On a flow's first start the slots topic was created a moment
            // ago and has no leaders yet; the group is joined only once its
            // metadata is complete, so look again soon rather than after
            // librdkafka's default 100 ms and more.
            .set("topic.metadata.refresh.fast.interval.ms", "10");
        // An operator's explicit session timeout (in the target's `client`
        // table) wins; the defaults hand a dead member's slots over within
        // about ten seconds.
        for (key, default) in [
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ] {
            if !target.client.iter_exposed().any(|(k, _)| k == key) {
                cfg.set(key, default);
            }
        }
        let session_timeout = cfg
            .get("session.timeout.ms")
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis);
        let consumer: BaseConsumer<MembershipContext> = cfg
            .create_with_context(MembershipContext {
                cluster: ClusterContext::new(target),
                slots_topic: slots_topic.clone(),
                events,
                budget: RevokeBudget(revoke_budget),
            })
            .map_err(|e| EngineError::client_creation(target, &e))?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (consumer, stop) = (consumer.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("group {group}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        // Records of the slots topic are never wanted (its
                        // partitions stay paused); errors reach the log
                        // callback with their cause.
                        let _ = consumer.poll(POLL);
                    }
                })
                .map_err(|e| {
                    EngineError::client_creation(
                        target,
                        &format!("cannot start the group thread: {e}"),
                    )
                })?
        };
        Ok((
            Membership {
                consumer,
                stop,
                poller: Some(poller),
                group,
                session_timeout,
                slots_topic,
                target: target.name.clone(),
            },
            receiver,
        ))
    }

    /// Joins the group: subscribes to the slots topic, which must exist.
    pub(crate) fn subscribe(&self) -> Result<(), EngineError> {
        self.consumer.subscribe(&[&self.slots_topic]).map_err(|e| {
            EngineError::request(
                crate::Place::topic(&self.target, &self.slots_topic),
                format!("cannot join group {}", self.group),
                e,
            )
        })
    }

    /// This process's member id, once joined.
    pub(crate) fn member_id(&self) -> Option<String> {
        ferry_admin::member_id(self.consumer.client())
    }

    /// Leaves the group (the coordinator rebalances the others at once
    /// instead of after the session timeout). Call it after the flow
    /// persisted its progress: a revocation arriving now finds no flow to
    /// wait for.
    pub(crate) fn leave(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        // Unsubscribing runs the last revocation (which finds no flow to
        // wait for) and sends LeaveGroup; serve it until it is done.
        self.consumer.unsubscribe();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && self
                .consumer
                .assignment()
                .is_ok_and(|assigned| assigned.count() > 0)
        {
            let _ = self.consumer.poll(POLL);
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
