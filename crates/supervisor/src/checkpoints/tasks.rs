//! The lifecycle of one flow's checkpointing tasks: the sync writer, the
//! rebuild of the offset maps, the checkpoint cycle and heartbeats.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_admin::Admin;
use ferry_config::{Cluster, Flow, SyncsLocation};
use ferry_http::FlowMetrics;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cycle::Cycle;
use super::heartbeats::heartbeats;
use super::readers::read_syncs;
use super::registry::{OffsetRegistry, SyncMsg};
use super::writer::Writer;
use super::{
    checkpoints_topic, ensure_with_retry, offset_syncs_location, retry_backoff, READ_TIMEOUT,
};
use crate::internal::InternalProducer;
use crate::membership::Ownership;
use crate::EngineError;

/// What the checkpointing tasks of one flow need.
pub(crate) struct Setup {
    pub flow: Flow,
    /// The flow as reloaded (topic filters change in place).
    pub live: watch::Receiver<Flow>,
    pub source: Cluster,
    pub target: Cluster,
    pub source_admin: Admin,
    pub target_admin: Admin,
    pub metrics: Option<FlowMetrics>,
    pub registry: Arc<OffsetRegistry>,
    pub syncs: mpsc::Receiver<SyncMsg>,
    /// The flow's producer for internal topics on the target.
    pub internal: InternalProducer,
    /// The slots this process owns: checkpoints and group offsets only for
    /// their partitions, heartbeats only by the owner of slot 0.
    pub ownership: Arc<Ownership>,
}

/// The running checkpointing tasks of one flow. Dropping it stops them.
pub(crate) struct Checkpointing {
    registry: Arc<OffsetRegistry>,
    /// Where the flow's offset syncs are: read again for partitions of
    /// slots this process is given.
    syncs_at: (Cluster, String),
    stop_cycle: CancellationToken,
    stop_writer: CancellationToken,
    stop_heartbeats: CancellationToken,
    cycle: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
    rebuild: Option<JoinHandle<()>>,
    heartbeats: Option<JoinHandle<()>>,
}

/// Without [`Checkpointing::finish`] (the flow stopped on an error and will
/// restart with a fresh registry) the tasks are aborted: no last cycle, so a
/// stale ledger can never write behind the next run's checkpoints.
impl Drop for Checkpointing {
    fn drop(&mut self) {
        self.stop_cycle.cancel();
        self.stop_writer.cancel();
        self.stop_heartbeats.cancel();
        for handle in [&self.cycle, &self.writer, &self.rebuild, &self.heartbeats]
            .into_iter()
            .flatten()
        {
            handle.abort();
        }
    }
}

impl Checkpointing {
    pub fn start(setup: Setup) -> Result<Self, EngineError> {
        let Setup {
            flow,
            live,
            source,
            target,
            source_admin,
            target_admin,
            metrics,
            registry,
            syncs,
            internal,
            ownership,
        } = setup;
        let stop_cycle = CancellationToken::new();
        let stop_writer = CancellationToken::new();
        let stop_heartbeats = CancellationToken::new();

        let (syncs_cluster, syncs_topic) = offset_syncs_location(&flow, &source, &target);
        let syncs_cluster = syncs_cluster.clone();
        let syncs_topic_name = syncs_topic.clone();
        let (syncs_admin, syncs_replication) = match flow.offset_syncs_location {
            SyncsLocation::Target => (target_admin.clone(), flow.replication_factor),
            SyncsLocation::Source => (source_admin.clone(), None),
        };
        let syncs_producer = match flow.offset_syncs_location {
            SyncsLocation::Target => internal.clone(),
            SyncsLocation::Source => InternalProducer::new(&syncs_cluster, "ferry-offset-syncs")?,
        };
        let target_producer = internal;

        // The topic exists before the rebuild reads it and the writer writes.
        let topic_ready = Arc::new(tokio::sync::Notify::new());
        let writer = Writer {
            producer: syncs_producer,
            cluster: syncs_cluster.name.clone(),
            topic: syncs_topic.clone(),
            registry: registry.clone(),
            metrics: metrics.clone(),
        };
        let writer = {
            let (admin, cluster, topic, metrics, stop, ready) = (
                syncs_admin,
                syncs_cluster.name.clone(),
                syncs_topic.clone(),
                metrics.clone(),
                stop_writer.clone(),
                topic_ready.clone(),
            );
            tokio::spawn(async move {
                ensure_with_retry(&admin, &cluster, &topic, syncs_replication, &metrics, &stop)
                    .await;
                ready.notify_one();
                writer.run(syncs, stop).await;
            })
        };
        let rebuild = {
            let (registry, cluster, topic, metrics) = (
                registry.clone(),
                syncs_cluster.clone(),
                syncs_topic,
                metrics.clone(),
            );
            tokio::spawn(async move {
                topic_ready.notified().await;
                rebuild_history(&registry, &cluster, &topic, &metrics).await;
            })
        };

        let cycle = (flow.emit_checkpoints || flow.sync_group_offsets).then(|| {
            let cycle = Cycle {
                checkpoints_topic: checkpoints_topic(&flow),
                flow: flow.clone(),
                live,
                source: source.clone(),
                target: target.clone(),
                source_admin,
                target_admin: target_admin.clone(),
                producer: target_producer.clone(),
                registry: registry.clone(),
                metrics: metrics.clone(),
                ledger: None,
                reported_skips: HashMap::new(),
                topic_ready: false,
                ownership: ownership.clone(),
                ledger_slots: Default::default(),
            };
            tokio::spawn(cycle.run(stop_cycle.clone()))
        });
        let heartbeats = flow.emit_heartbeats.then(|| {
            tokio::spawn(heartbeats(
                flow.clone(),
                target.name.clone(),
                target_admin,
                target_producer,
                metrics,
                ownership,
                stop_heartbeats.clone(),
            ))
        });
        Ok(Checkpointing {
            syncs_at: (syncs_cluster.clone(), syncs_topic_name),
            registry,
            stop_cycle,
            stop_writer,
            stop_heartbeats,
            cycle,
            writer: Some(writer),
            rebuild: Some(rebuild),
            heartbeats,
        })
    }

    /// Partitions change hands: every sync chain ends at its last
    /// acknowledged record (for the next owner to read), and the maps of
    /// the partitions `is_released` selects are forgotten here.
    pub fn release(&self, is_released: impl Fn(&str, i32) -> bool) {
        self.registry.flush_syncs();
        for (topic, partition) in self.registry.partitions() {
            if is_released(&topic, partition) {
                self.registry.forget(&topic, partition);
            }
        }
    }

    /// This process was given partitions another one copied: their history
    /// is read from the offset-syncs topic in the background and put under
    /// what this process records from now on. Until it is there, offsets
    /// older than this process's first copy translate to nothing (no
    /// checkpoint, never a wrong one).
    pub fn take_over(&self, is_taken: impl Fn(&str, i32) -> bool + Send + 'static) {
        let registry = self.registry.clone();
        let (cluster, topic) = self.syncs_at.clone();
        tokio::spawn(async move {
            let mut backoff = retry_backoff();
            for _ in 0..5 {
                match read_syncs(&cluster, &topic, READ_TIMEOUT).await {
                    Ok(replay) => {
                        registry.absorb_history_of(replay, is_taken);
                        return;
                    }
                    Err(e) => {
                        let wait = backoff.next_wait();
                        tracing::warn!(error = %e, retry_in = ?wait, "reading the offset history of partitions taken over failed");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        });
    }

    /// At the drain, after the data plane acknowledged everything: flushes
    /// the sync chains, runs a last checkpoint cycle, writes the remaining
    /// syncs, stops heartbeats. Bounded by `timeout` overall.
    pub async fn finish(mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        self.registry.flush_syncs();
        self.stop_cycle.cancel();
        if let Some(mut cycle) = self.cycle.take() {
            if tokio::time::timeout_at(deadline, &mut cycle).await.is_err() {
                tracing::warn!("the last checkpoint cycle did not finish in time");
                cycle.abort();
            }
        }
        // The last cycle may have flushed more.
        self.stop_writer.cancel();
        if let Some(mut writer) = self.writer.take() {
            if tokio::time::timeout_at(deadline, &mut writer)
                .await
                .is_err()
            {
                tracing::warn!("offset syncs still queued at shutdown were not written");
                writer.abort();
            }
        }
        self.stop_heartbeats.cancel();
        if let Some(mut h) = self.heartbeats.take() {
            if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
                h.abort();
            }
        }
    }
}

/// Rebuilds the history from the offset-syncs topic, retrying until it
/// worked (translation stays refused meanwhile).
async fn rebuild_history(
    registry: &OffsetRegistry,
    cluster: &Cluster,
    topic: &str,
    metrics: &Option<FlowMetrics>,
) {
    let mut backoff = retry_backoff();
    loop {
        let started = Instant::now();
        match read_syncs(cluster, topic, READ_TIMEOUT).await {
            Ok(replay) => {
                tracing::info!(
                    cluster = %cluster.name,
                    topic,
                    partitions = replay.partitions(),
                    syncs = replay.applied,
                    foreign = replay.foreign,
                    skipped = replay.skipped,
                    took = ?started.elapsed(),
                    "offset maps rebuilt from the offset-syncs topic; translation enabled"
                );
                registry.install_history(replay);
                return;
            }
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!(error = %e, retry_in = ?wait, "rebuilding offset maps failed; translation stays off");
                if let Some(m) = metrics {
                    m.error("offset_sync");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}
