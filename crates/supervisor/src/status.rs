//! Shared engine state, written by the flows and read cheaply by metrics,
//! health and `/status`. Hot counters live in the partition slots as atomics;
//! everything here is touched at most once per task tick.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferry_config::{FlowId, Topology};

use crate::tracker::PartitionSlot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FlowState {
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

    pub fn as_str(self) -> &'static str {
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
pub struct TopicStatus {
    pub remote_topic: String,
    pub partitions: i32,
    pub restarts: u64,
    /// The last error, naming cluster, topic, partition and cause.
    pub last_error: Option<String>,
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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FlowStatus {
    pub fn state(&self) -> FlowState {
        FlowState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, s: FlowState) {
        self.state.store(s as u8, Ordering::Release);
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    pub(crate) fn set_error(&self, e: Option<String>) {
        *lock(&self.last_error) = e;
    }

    pub(crate) fn put_slot(&self, slot: Arc<PartitionSlot>) {
        lock(&self.slots).insert((slot.topic.to_string(), slot.partition), slot);
    }

    /// A snapshot of the current slots.
    pub fn slots(&self) -> Vec<Arc<PartitionSlot>> {
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

    pub(crate) fn remove_topic(&self, topic: &str) {
        lock(&self.topics).remove(topic);
        lock(&self.slots).retain(|(t, _), _| t != topic);
    }

    pub fn topics(&self) -> BTreeMap<String, TopicStatus> {
        lock(&self.topics).clone()
    }

    pub(crate) fn set_end_offsets(&self, ends: HashMap<(String, i32), i64>) {
        *lock(&self.end_offsets) = ends;
    }

    /// Records not yet copied, per (topic, partition): source end offset
    /// minus the acknowledged watermark.
    pub fn lag(&self) -> Vec<((String, i32), i64)> {
        let ends = lock(&self.end_offsets).clone();
        self.slots()
            .into_iter()
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
}

impl EngineStatus {
    pub fn new(topology: &Topology) -> Self {
        let s = Self::default();
        for f in topology.flows.iter().filter(|f| f.enabled) {
            s.flow(&f.id());
        }
        s
    }

    /// The status of a flow, created on first use.
    pub fn flow(&self, id: &FlowId) -> Arc<FlowStatus> {
        lock(&self.flows).entry(id.clone()).or_default().clone()
    }

    pub fn flows(&self) -> Vec<(FlowId, Arc<FlowStatus>)> {
        lock(&self.flows)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// True when every flow is running (for readiness).
    pub fn all_running(&self) -> bool {
        let flows = lock(&self.flows);
        !flows.is_empty() && flows.values().all(|f| f.state() == FlowState::Running)
    }
}
