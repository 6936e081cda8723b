//! A flow's lanes: the data planes its records move on. The slots this
//! process owns are spread over the lanes by slot number, so one process
//! uses as many pump and delivery threads (each lane with its own source
//! consumer and target producer) as the machine has cores, and a
//! partition's records always take the same lane, in order.
//!
//! The in-flight cap (`max_in_flight_bytes`) is shared out evenly: the
//! process as a whole still holds at most that much.

use std::time::Duration;

use ferry_config::{Cluster, Flow};
use futures::future::{join_all, select_all};

use crate::membership::SlotId;
use crate::pump::{DataPlane, PumpCommand};
use crate::transactions::SlotTransactions;
use crate::EngineError;

/// The most lanes a flow gets, whatever the core count: each lane is two
/// more librdkafka clients with their broker threads.
const MAX_LANES: usize = 8;

/// The data planes of one flow.
pub(crate) struct Lanes {
    lanes: Vec<DataPlane>,
    /// The flow's slot count: a partition's lane follows from its slot.
    slots: u16,
    /// The flow's progress topic on the target (exactly-once producers
    /// connect by asking for its metadata).
    progress_topic: String,
}

/// How many lanes a flow of `slots` slots gets on this machine.
fn lane_count(slots: u16) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(usize::from(slots))
        .clamp(1, MAX_LANES)
}

impl Lanes {
    /// Starts the flow's lanes.
    pub fn start(
        flow: &Flow,
        source: &Cluster,
        target: &Cluster,
        metrics: Option<ferry_http::FlowMetrics>,
        schemas: Option<&std::sync::Arc<ferry_schemas::SchemaIds>>,
    ) -> Result<Self, EngineError> {
        let count = lane_count(flow.slots);
        let cap = (flow.max_in_flight_bytes / count as u64).max(1);
        let lanes = (0..count)
            .map(|lane| {
                DataPlane::start(
                    flow,
                    (source, target),
                    metrics.clone(),
                    (lane, cap),
                    schemas,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Lanes {
            lanes,
            slots: flow.slots,
            progress_topic: crate::progress::progress_topic(&flow.source),
        })
    }

    fn lane_of(&self, topic: &str, partition: i32) -> usize {
        usize::from(ferry_config::slot_of(topic, partition, self.slots)) % self.lanes.len()
    }

    /// Hands each partition of `command` to its lane.
    pub async fn send(&self, command: PumpCommand) -> Result<(), EngineError> {
        let count = self.lanes.len();
        match command {
            PumpCommand::Assign(assignments) => {
                let mut by_lane: Vec<Vec<_>> = (0..count).map(|_| Vec::new()).collect();
                for (slot, start) in assignments {
                    by_lane[self.lane_of(&slot.topic, slot.partition)].push((slot, start));
                }
                for (lane, part) in self.lanes.iter().zip(by_lane) {
                    if !part.is_empty() {
                        lane.send(PumpCommand::Assign(part)).await?;
                    }
                }
            }
            PumpCommand::Unassign(slots) => {
                let mut by_lane: Vec<Vec<_>> = (0..count).map(|_| Vec::new()).collect();
                for slot in slots {
                    by_lane[self.lane_of(&slot.topic, slot.partition)].push(slot);
                }
                for (lane, part) in self.lanes.iter().zip(by_lane) {
                    if !part.is_empty() {
                        lane.send(PumpCommand::Unassign(part)).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until every lane's producer sees `partitions` of `topic`.
    pub async fn await_target_partitions(
        &self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        join_all(
            self.lanes
                .iter()
                .map(|l| l.await_target_partitions(topic, partitions, timeout)),
        )
        .await
        .into_iter()
        .collect()
    }

    /// Puts `topic` into every lane's source metadata cache.
    pub async fn warm_source_metadata(&self, topic: &str) {
        join_all(self.lanes.iter().map(|l| l.warm_source_metadata(topic))).await;
    }

    /// Resolves when any lane's acknowledged bytes call for a progress
    /// write before the flow's timer.
    pub async fn write_due(&self) {
        select_all(self.lanes.iter().map(|l| Box::pin(l.window.write_due()))).await;
    }

    /// Snapshots taken before watermarks are read for a progress write.
    pub fn begin_write(&self) -> Vec<u64> {
        self.lanes.iter().map(|l| l.window.begin_write()).collect()
    }

    /// Everything the snapshots cover is in persisted progress now.
    pub fn persisted_up_to(&self, snapshots: Vec<u64>) {
        for (lane, snapshot) in self.lanes.iter().zip(snapshots) {
            lane.window.persisted_up_to(snapshot);
        }
    }

    /// The lane a slot's partitions take.
    fn lane_of_slot(&self, slot: SlotId) -> &DataPlane {
        &self.lanes[usize::from(slot) % self.lanes.len()]
    }

    /// Under exactly-once: starts a transactional producer for each of
    /// `slots` (`(slot, transactional id)`), all at once. Each one's
    /// `InitTransactions` aborts what an earlier owner of the slot left
    /// open and fences it; only then may the slot's progress be read.
    pub async fn start_transactions(
        &self,
        target: &Cluster,
        slots: Vec<(SlotId, String)>,
    ) -> Result<(), EngineError> {
        let started = join_all(slots.into_iter().map(|(slot, id)| {
            let (target, context, warm) = (
                target.clone(),
                self.lane_of_slot(slot).delivery_context(target),
                self.progress_topic.clone(),
            );
            tokio::task::spawn_blocking(move || {
                SlotTransactions::start(&target, id, slot, context, &warm)
            })
        }))
        .await;
        let mut first_error = None;
        let mut replaced = Vec::new();
        for result in started {
            match result {
                Ok(Ok(txns)) => {
                    let lane = self.lane_of_slot(txns.slot);
                    replaced.extend(lane.transactions.insert(std::sync::Arc::new(txns)));
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(EngineError::Internal(format!(
                        "starting a transactional producer panicked: {e}"
                    )));
                }
            }
        }
        drop_off_runtime(replaced).await;
        first_error.map_or(Ok(()), Err)
    }

    /// The epoch a slot's transactions write into its progress.
    pub fn set_epoch(&self, slot: SlotId, epoch: i64) {
        if let Some(t) = self.lane_of_slot(slot).transactions.get(slot) {
            t.set_epoch(epoch);
        }
    }

    /// The slots among `slots` whose transactional producer failed fatally
    /// (not fenced): they need a new one before their partitions restart.
    pub fn broken_transactions(&self, slots: impl IntoIterator<Item = SlotId>) -> Vec<SlotId> {
        slots
            .into_iter()
            .filter(|s| {
                self.lane_of_slot(*s)
                    .transactions
                    .get(*s)
                    .is_some_and(|t| t.is_broken())
            })
            .collect()
    }

    /// Closes the transactional producers of slots this process gave up.
    /// Their partitions are off the pumps by now.
    pub async fn end_transactions(&self, slots: &[SlotId]) {
        let ended: Vec<_> = slots
            .iter()
            .filter_map(|s| self.lane_of_slot(*s).transactions.remove(*s))
            .collect();
        drop_off_runtime(ended).await;
    }

    /// Epoch milliseconds of the flow's last committed transaction.
    pub fn last_commit_ms(&self) -> Option<i64> {
        self.lanes
            .iter()
            .map(|l| {
                l.transactions
                    .last_commit_ms
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .max()
            .filter(|ms| *ms > 0)
    }

    /// Stops every lane and waits for the target to acknowledge what is in
    /// flight; the first failure is returned.
    pub async fn shutdown(self, timeout: Duration) -> Result<(), EngineError> {
        join_all(self.lanes.into_iter().map(|l| l.shutdown(timeout)))
            .await
            .into_iter()
            .collect()
    }
}

/// Drops producers on a blocking thread: closing one joins its threads.
async fn drop_off_runtime(producers: Vec<std::sync::Arc<SlotTransactions>>) {
    if producers.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || drop(producers)).await;
}
