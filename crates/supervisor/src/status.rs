//! Shared engine state, written by the flows and read cheaply by metrics,
//! health and `/status`. Hot counters live in the partition slots as atomics;
//! everything here is touched at most once per task tick.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use ferry_config::{FlowId, Topology};

use crate::clock::lock;
use crate::tracker::{PartitionSlot, Refusal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FlowState {
    Starting = 0,
    Running = 1,
    Draining = 2,
    Stopped = 3,
    /// Retrying after an error (see `last_error`).
    Retrying = 4,
}

impl FlowState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => FlowState::Running,
            2 => FlowState::Draining,
            3 => FlowState::Stopped,
            4 => FlowState::Retrying,
            _ => FlowState::Starting,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FlowState::Starting => "starting",
            FlowState::Running => "running",
            FlowState::Draining => "draining",
            FlowState::Stopped => "stopped",
            FlowState::Retrying => "retrying",
        }
    }
}

/// What is known about one mirrored topic.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicStatus {
    pub remote_topic: String,
    pub partitions: i32,
    pub restarts: u64,
    /// The last error, naming cluster, topic, partition and cause.
    pub last_error: Option<String>,
}

/// Something about a partition the operator must act on, found when it was
/// assigned (see `start`): shown in `/status` until the daemon restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    /// `deleted-before-copy`, `progress-beyond-log-end`, ...
    pub kind: &'static str,
    /// Names the cluster, topic, partition and offsets.
    pub message: String,
    /// True when the partition is held: nothing of it is copied.
    pub held: bool,
}

/// Refused records a partition resolved by `on_record_error` (skipped or
/// written to the dead-letter topic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartitionSkips {
    /// Count per refusal reason (`Refusal::as_str`).
    pub by_reason: BTreeMap<&'static str, u64>,
    /// The source offset of the last one.
    pub last_offset: i64,
}

impl PartitionSkips {
    pub(crate) fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
}

/// Resolved refused records per (topic, partition), for the life of the
/// process: counted by the slots when they resolve one (rarely), read by
/// `/status` and the metrics.
#[derive(Debug, Default)]
pub(crate) struct SkipLedger(Mutex<BTreeMap<(String, i32), PartitionSkips>>);

impl SkipLedger {
    pub(crate) fn record(&self, topic: &str, partition: i32, offset: i64, refusal: Refusal) {
        let mut skips = lock(&self.0);
        let entry = skips.entry((topic.to_string(), partition)).or_default();
        *entry.by_reason.entry(refusal.as_str()).or_default() += 1;
        entry.last_offset = offset;
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<(String, i32), PartitionSkips> {
        lock(&self.0).clone()
    }
}

/// One partition's end offset on the source, as last seen, for lag.
#[derive(Debug, Default)]
pub struct FlowStatus {
    state: AtomicU8,
    last_error: Mutex<Option<String>>,
    /// Current slot per source (topic, partition).
    slots: Mutex<HashMap<(String, i32), Arc<PartitionSlot>>>,
    topics: Mutex<BTreeMap<String, TopicStatus>>,
    /// Source end offsets per (topic, partition), refreshed periodically.
    end_offsets: Mutex<HashMap<(String, i32), i64>>,
    /// Records and bytes of replaced slots, per topic.
    retired: Mutex<HashMap<String, (u64, u64)>>,
    /// Notices per source (topic, partition, kind).
    notices: Mutex<BTreeMap<(String, i32, &'static str), Notice>>,
    /// Refused records resolved by `on_record_error`.
    pub(crate) skips: Arc<SkipLedger>,
    /// Topics handed over to the target, which the flow no longer copies.
    cut_over: Mutex<crate::cut_over::CutOverTopics>,
    /// This process's place in the flow's group, as last reported.
    membership: Mutex<Option<ferry_http::MembershipDocument>>,
    /// The flow's delivery mode and last commit, as last reported.
    delivery: Mutex<Option<ferry_http::DeliveryDocument>>,
}

impl FlowStatus {
    pub(crate) fn state(&self) -> FlowState {
        FlowState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, s: FlowState) {
        self.state.store(s as u8, Ordering::Release);
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub(crate) fn set_error(&self, e: Option<String>) {
        *lock(&self.last_error) = e;
    }

    /// This process's slots and the group's members, for `/status`.
    pub(crate) fn membership(&self) -> Option<ferry_http::MembershipDocument> {
        lock(&self.membership).clone()
    }

    pub(crate) fn set_membership(&self, doc: Option<ferry_http::MembershipDocument>) {
        *lock(&self.membership) = doc;
    }

    /// The flow's delivery mode and last commit, for `/status`.
    pub(crate) fn delivery(&self) -> Option<ferry_http::DeliveryDocument> {
        lock(&self.delivery).clone()
    }

    /// Reports the flow's delivery mode and, under exactly-once, its
    /// transaction interval and last commit (epoch milliseconds).
    pub(crate) fn set_delivery(&self, flow: &ferry_config::Flow, last_commit_ms: Option<i64>) {
        let exactly_once = flow.exactly_once();
        let at = |ms: i64| {
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        };
        *lock(&self.delivery) = Some(ferry_http::DeliveryDocument {
            mode: flow.delivery.as_str().to_string(),
            transaction_interval_ms: exactly_once
                .then(|| flow.transaction_interval.as_millis() as u64),
            last_commit: last_commit_ms
                .map(|ms| humantime::format_rfc3339_millis(at(ms)).to_string()),
            seconds_since_commit: last_commit_ms
                .map(|ms| (crate::clock::now_ms() - ms).max(0) as f64 / 1000.0),
        });
    }

    /// Installs the current slot of a partition. The replaced slot's counts
    /// move into the topic's retired totals, so counters stay monotonic
    /// across task restarts.
    pub(crate) fn put_slot(&self, slot: Arc<PartitionSlot>) {
        let old = lock(&self.slots).insert((slot.topic.to_string(), slot.partition), slot.clone());
        if let Some(old) = old {
            self.retire(&old);
        }
    }

    /// Forgets a partition another process copies now; its counts stay in
    /// the topic's totals.
    pub(crate) fn remove_slot(&self, topic: &str, partition: i32) {
        let old = lock(&self.slots).remove(&(topic.to_string(), partition));
        if let Some(old) = old {
            self.retire(&old);
        }
    }

    fn retire(&self, old: &PartitionSlot) {
        let mut retired = lock(&self.retired);
        let entry = retired.entry(old.topic.to_string()).or_default();
        entry.0 += old.records_acked.load(Ordering::Relaxed);
        entry.1 += old.bytes_acked.load(Ordering::Relaxed);
    }

    /// Records and bytes acknowledged per topic since the daemon started.
    pub fn replicated_totals(&self) -> BTreeMap<String, (u64, u64)> {
        let mut totals: BTreeMap<String, (u64, u64)> =
            lock(&self.retired).clone().into_iter().collect();
        for s in self.slots() {
            let e = totals.entry(s.topic.to_string()).or_default();
            e.0 += s.records_acked.load(Ordering::Relaxed);
            e.1 += s.bytes_acked.load(Ordering::Relaxed);
        }
        totals
    }

    /// A snapshot of the current slots.
    pub(crate) fn slot_count(&self) -> usize {
        lock(&self.slots).len()
    }

    pub(crate) fn slots(&self) -> Vec<Arc<PartitionSlot>> {
        lock(&self.slots).values().cloned().collect()
    }

    pub(crate) fn slot(&self, topic: &str, partition: i32) -> Option<Arc<PartitionSlot>> {
        lock(&self.slots)
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    pub(crate) fn update_topic(&self, topic: &str, f: impl FnOnce(&mut TopicStatus)) {
        f(lock(&self.topics).entry(topic.to_string()).or_default());
    }

    /// Forgets a topic that is no longer mirrored. Its slots stay so the
    /// flow persists their final progress once in-flight records drain.
    pub(crate) fn remove_topic(&self, topic: &str) {
        lock(&self.topics).remove(topic);
    }

    pub(crate) fn topics(&self) -> BTreeMap<String, TopicStatus> {
        lock(&self.topics).clone()
    }

    /// Records a notice for a partition (replacing one of the same kind).
    pub(crate) fn notice(&self, topic: &str, partition: i32, notice: Notice) {
        lock(&self.notices).insert((topic.to_string(), partition, notice.kind), notice);
    }

    /// Every notice, by (topic, partition).
    pub(crate) fn notices(&self) -> Vec<((String, i32), Notice)> {
        lock(&self.notices)
            .iter()
            .map(|((t, p, _), n)| ((t.clone(), *p), n.clone()))
            .collect()
    }

    /// True when a partition is held (see `start`): it has no slot and
    /// copies nothing.
    pub(crate) fn is_held(&self, topic: &str, partition: i32) -> bool {
        lock(&self.notices)
            .iter()
            .any(|((t, p, _), n)| n.held && t == topic && *p == partition)
    }

    pub(crate) fn set_cut_over(&self, topics: crate::cut_over::CutOverTopics) {
        *lock(&self.cut_over) = topics;
    }

    /// The flow's cut-over topics.
    pub(crate) fn cut_over(&self) -> crate::cut_over::CutOverTopics {
        lock(&self.cut_over).clone()
    }

    pub(crate) fn set_end_offsets(&self, ends: HashMap<(String, i32), i64>) {
        *lock(&self.end_offsets) = ends;
    }

    /// Records not yet copied, per (topic, partition): source end offset
    /// minus the acknowledged watermark.
    pub fn lag(&self) -> Vec<((String, i32), i64)> {
        let ends = lock(&self.end_offsets).clone();
        let topics = lock(&self.topics)
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>();
        self.slots()
            .into_iter()
            .filter(|s| topics.contains(&*s.topic))
            .map(|s| {
                let key = (s.topic.to_string(), s.partition);
                let end = ends.get(&key).copied().unwrap_or(0);
                let lag = (end - s.watermark()).max(0);
                (key, lag)
            })
            .collect()
    }
}

/// Status of every flow in the running topology.
#[derive(Debug, Default)]
pub struct EngineStatus {
    flows: Mutex<BTreeMap<FlowId, Arc<FlowStatus>>>,
    /// SHA-256 of the running topology file.
    digest: Mutex<String>,
}

impl EngineStatus {
    pub(crate) fn new(topology: &Topology) -> Self {
        let s = Self::default();
        for f in topology.flows.iter().filter(|f| f.enabled) {
            s.flow(&f.id());
        }
        s.set_digest(&topology.digest);
        s
    }

    pub(crate) fn set_digest(&self, digest: &str) {
        *lock(&self.digest) = digest.to_string();
    }

    pub(crate) fn digest(&self) -> String {
        lock(&self.digest).clone()
    }

    pub(crate) fn remove_flow(&self, id: &FlowId) {
        lock(&self.flows).remove(id);
    }

    /// The status of a flow, created on first use.
    pub(crate) fn flow(&self, id: &FlowId) -> Arc<FlowStatus> {
        lock(&self.flows).entry(id.clone()).or_default().clone()
    }

    /// Every flow's status, by flow id.
    pub fn flows(&self) -> Vec<(FlowId, Arc<FlowStatus>)> {
        lock(&self.flows)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// True when every flow is running (for readiness).
    pub(crate) fn all_running(&self) -> bool {
        let flows = lock(&self.flows);
        !flows.is_empty() && flows.values().all(|f| f.state() == FlowState::Running)
    }
}
