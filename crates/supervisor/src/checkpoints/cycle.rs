//! The checkpoint cycle: translates the source groups' committed offsets,
//! writes the checkpoints that changed and syncs them into idle target
//! groups.

use crate::membership::Ownership;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_admin::{Admin, AdminError};
use ferry_checkpoint::group_sync::{self, SkipReason, TargetGroup};
use ferry_checkpoint::wire::Checkpoint;
use ferry_checkpoint::{CheckpointKey, CheckpointLedger, Decision};
use ferry_config::{Cluster, Flow};
use ferry_http::{FlowMetrics, SyncResult};
use futures::StreamExt;
use rdkafka::producer::BaseRecord;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::readers::{read_checkpoints, LoadedCheckpoints};
use super::registry::OffsetRegistry;
use super::READ_TIMEOUT;
use crate::internal::InternalProducer;
use crate::topics::{self, ensure_internal_topic};
use crate::{EngineError, Place};

/// Admin requests of one group in flight at once, per cycle.
const GROUP_CONCURRENCY: usize = 8;

/// One group's committed offsets on replicated source partitions.
struct GroupOffsets {
    group: String,
    offsets: Vec<CommittedOffset>,
}

/// A source group's committed offset on one partition.
struct CommittedOffset {
    /// The source topic.
    topic: String,
    partition: i32,
    offset: i64,
    /// The commit's metadata, carried into the checkpoint.
    metadata: String,
}

/// A translation worth a checkpoint.
struct DueCheckpoint {
    key: CheckpointKey,
    upstream: i64,
    downstream: i64,
    metadata: String,
}

/// The last group-sync skip counted for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReportedSkip {
    offset: i64,
    reason: SkipReason,
}

/// One flow's checkpoint cycle and what it remembers between runs.
pub(super) struct Cycle {
    pub(super) flow: Flow,
    pub(super) live: watch::Receiver<Flow>,
    pub(super) source: Cluster,
    pub(super) target: Cluster,
    pub(super) source_admin: Admin,
    pub(super) target_admin: Admin,
    pub(super) producer: InternalProducer,
    pub(super) registry: Arc<OffsetRegistry>,
    pub(super) metrics: Option<FlowMetrics>,
    pub(super) checkpoints_topic: String,
    /// Loaded from the checkpoints topic before the first write.
    pub(super) ledger: Option<CheckpointLedger>,
    /// Last skip counted per (group, remote topic, partition): a skip is
    /// counted once per translated offset and reason, not every cycle.
    pub(super) reported_skips: HashMap<CheckpointKey, ReportedSkip>,
    pub(super) topic_ready: bool,
    /// Checkpoints and group offsets are written for the partitions of
    /// these slots only.
    pub(super) ownership: Arc<Ownership>,
    /// The slots owned when the ledger was loaded: a slot gained since may
    /// have had checkpoints written by its previous owner, so the ledger is
    /// read again.
    pub(super) ledger_slots: std::collections::BTreeSet<u16>,
}

impl Cycle {
    pub(super) async fn run(mut self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.flow.checkpoint_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = self.once().await {
                        tracing::warn!(error = %e, "checkpoint cycle failed; retrying next interval");
                        self.count_error("checkpoint");
                    }
                }
            }
        }
        // The drain: everything in flight is acknowledged now. Wait for the
        // rebuild if it is still running (bounded by the caller).
        while !self.registry.is_ready() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Err(e) = self.once().await {
            tracing::warn!(error = %e, "the last checkpoint cycle failed");
            self.count_error("checkpoint");
        }
    }

    fn count_error(&self, kind: &'static str) {
        if let Some(m) = &self.metrics {
            m.error(kind);
        }
    }

    async fn once(&mut self) -> Result<(), EngineError> {
        if self.flow.emit_checkpoints && !self.topic_ready {
            ensure_internal_topic(
                &self.target_admin,
                &self.target.name,
                &self.checkpoints_topic,
                self.flow.replication_factor,
            )
            .await?;
            self.topic_ready = true;
        }
        let owned: std::collections::BTreeSet<u16> = self.ownership.owned().into_keys().collect();
        if !owned.is_subset(&self.ledger_slots) {
            self.ledger = None;
        }
        if self.ledger.is_none() {
            self.ledger_slots = owned;
            let LoadedCheckpoints { ledger, skipped } =
                read_checkpoints(&self.target, &self.checkpoints_topic, READ_TIMEOUT).await?;
            tracing::info!(
                topic = %self.checkpoints_topic,
                checkpoints = ledger.len(),
                skipped,
                "last checkpoints loaded"
            );
            self.ledger = Some(ledger);
        }
        if !self.registry.is_ready() {
            tracing::debug!("offset maps are still being rebuilt; translation refused this cycle");
            return Ok(());
        }
        let started = Instant::now();
        self.registry.flush_syncs();
        let flow = self.live.borrow().clone();
        let groups = self.source_groups(&flow).await?;
        let written = if self.flow.emit_checkpoints {
            self.write_checkpoints(&flow, &groups).await
        } else {
            self.record_translations(&flow, &groups);
            0
        };
        if self.flow.sync_group_offsets {
            self.sync_groups(&flow, &groups).await;
        }
        self.registry.stats().cycles.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            groups = groups.len(),
            checkpoints = written,
            took = ?started.elapsed(),
            "checkpoint cycle done"
        );
        Ok(())
    }

    /// Committed offsets of every matching source group on partitions this
    /// flow replicates.
    async fn source_groups(&self, flow: &Flow) -> Result<Vec<GroupOffsets>, EngineError> {
        let at_source = || Place::cluster(&self.source.name);
        let listed = self
            .source_admin
            .list_consumer_groups()
            .await
            .map_err(|e| EngineError::request(at_source(), "cannot list consumer groups", e))?;
        let names: Vec<String> = listed
            .into_iter()
            .map(|g| g.group_id)
            .filter(|g| self.flow.groups.matches(g))
            .collect();
        let admin = &self.source_admin;
        let registry = &self.registry;
        let ownership = &self.ownership;
        let results: Vec<Result<GroupOffsets, EngineError>> = futures::stream::iter(names)
            .map(|group| async move {
                let offsets = admin
                    .list_consumer_group_offsets(&group, None)
                    .await
                    .map_err(|e| {
                        EngineError::request(
                            at_source(),
                            format!("cannot read the offsets of group {group}"),
                            e,
                        )
                    })?;
                let offsets = offsets
                    .into_iter()
                    .filter_map(|o| {
                        Some(CommittedOffset {
                            offset: o.offset?,
                            topic: o.topic,
                            partition: o.partition,
                            metadata: o.metadata,
                        })
                    })
                    .filter(|c| {
                        topics::selects(flow, &c.topic)
                            && registry.get(&c.topic, c.partition).is_some()
                            && ownership
                                .epoch(flow.slot_of(&c.topic, c.partition))
                                .is_some()
                    })
                    .collect();
                Ok(GroupOffsets { group, offsets })
            })
            .buffer_unordered(GROUP_CONCURRENCY)
            .collect()
            .await;
        let mut groups = Vec::new();
        for r in results {
            match r {
                Ok(g) if !g.offsets.is_empty() => groups.push(g),
                Ok(_) => {}
                // One unreadable group must not stop the others.
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a group this cycle");
                    self.count_error("checkpoint");
                }
            }
        }
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(groups)
    }

    /// Translations worth a checkpoint.
    fn due(&self, flow: &Flow, groups: &[GroupOffsets]) -> Vec<DueCheckpoint> {
        let ledger = self.ledger.as_ref().expect("loaded before use");
        let mut due = Vec::new();
        for g in groups {
            for CommittedOffset {
                topic,
                partition,
                offset: upstream,
                metadata,
            } in &g.offsets
            {
                let key = CheckpointKey {
                    group: g.group.clone(),
                    topic: flow.remote_topic(topic),
                    partition: *partition,
                };
                let translation = self.registry.translate(topic, *partition, *upstream);
                match ledger.decide(&key, *upstream, translation) {
                    Decision::Emit { downstream } => due.push(DueCheckpoint {
                        key,
                        upstream: *upstream,
                        downstream,
                        metadata: metadata.clone(),
                    }),
                    Decision::WouldRewind { last } => tracing::debug!(
                        group = %g.group, topic = %topic, partition, upstream, ?translation,
                        last_downstream = last.downstream,
                        "checkpoint kept: the translation is behind the last checkpoint"
                    ),
                    Decision::Unknown => tracing::debug!(
                        group = %g.group, topic = %topic, partition, upstream,
                        "no checkpoint: the offset is older than anything the offset map knows"
                    ),
                    Decision::Unchanged => {}
                }
            }
        }
        due
    }

    /// Without checkpoints, the ledger still tracks translations so group
    /// offset sync has something to commit.
    fn record_translations(&mut self, flow: &Flow, groups: &[GroupOffsets]) {
        for due in self.due(flow, groups) {
            if let Some(l) = self.ledger.as_mut() {
                l.commit(due.key, due.upstream, due.downstream);
            }
        }
    }

    async fn write_checkpoints(&mut self, flow: &Flow, groups: &[GroupOffsets]) -> usize {
        let due = self.due(flow, groups);
        let mut pending = Vec::with_capacity(due.len());
        for due in due {
            let cp = Checkpoint {
                group: due.key.group.clone(),
                topic: due.key.topic.clone(),
                partition: due.key.partition,
                upstream_offset: due.upstream,
                downstream_offset: due.downstream,
                metadata: due.metadata.clone(),
            };
            let encoded = cp.encode_key().and_then(|k| Ok((k, cp.encode_value()?)));
            let sent = match encoded {
                Ok((k, v)) => {
                    let rec = BaseRecord::<[u8], [u8]>::to(&self.checkpoints_topic)
                        .partition(0)
                        .key(&k[..])
                        .payload(&v[..]);
                    // Only logged and counted (the next cycle writes it
                    // again), so one text for both kinds of failure.
                    self.producer.send(rec).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            pending.push((due, sent));
        }
        let mut written = 0;
        for (
            DueCheckpoint {
                key,
                upstream,
                downstream,
                ..
            },
            sent,
        ) in pending
        {
            let result = match sent {
                Ok(ack) => InternalProducer::acknowledged(ack)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    written += 1;
                    self.registry
                        .stats()
                        .checkpoints_written
                        .fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = &self.metrics {
                        m.checkpoint_emitted();
                    }
                    if let Some(l) = self.ledger.as_mut() {
                        l.commit(key, upstream, downstream);
                    }
                }
                Err(cause) => {
                    self.count_error("checkpoint");
                    tracing::warn!(
                        cluster = %self.target.name,
                        topic = %self.checkpoints_topic,
                        group = %key.group,
                        remote_topic = %key.topic,
                        partition = key.partition,
                        error = %cause,
                        "writing a checkpoint failed; retrying next cycle"
                    );
                }
            }
        }
        written
    }

    fn count_sync(&self, result: SyncResult, n: usize) {
        if n == 0 {
            return;
        }
        let stats = self.registry.stats();
        let counter = match result {
            SyncResult::Synced => &stats.group_offsets_synced,
            SyncResult::Skipped => &stats.group_offsets_skipped,
            SyncResult::Failed => &stats.group_offsets_failed,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.group_offsets_synced(result, n as u64);
        }
    }

    /// Commits the latest checkpoints of each group seen this cycle into
    /// the target group, if it is idle there, forwards only.
    async fn sync_groups(&mut self, flow: &Flow, groups: &[GroupOffsets]) {
        let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
        if names.is_empty() {
            return;
        }
        let states = match self.target_admin.describe_consumer_groups(&names).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(cluster = %self.target.name, error = %e, "cannot describe target groups; group offset sync skipped this cycle");
                self.count_error("group_sync");
                return;
            }
        };
        // `None`: the coordinator could not describe the group (moving,
        // loading): leave it alone this cycle. Reading its offsets now would
        // also risk librdkafka's crash on a NOT_COORDINATOR answer to an
        // admin OffsetFetch (confluentinc/librdkafka#5040).
        let state_of: HashMap<String, Option<TargetGroup>> = states
            .into_iter()
            .map(|d| {
                let state = match &d.error {
                    Some(AdminError::GroupNotFound { .. }) => Some(TargetGroup::Idle),
                    Some(e) => {
                        tracing::debug!(group = %d.group_id, error = %e, "target group not described; not syncing it this cycle");
                        None
                    }
                    None if d.state.has_no_members() => Some(TargetGroup::Idle),
                    None => Some(TargetGroup::Active),
                };
                (d.group_id, state)
            })
            .collect();
        for g in groups {
            let remote_topics: std::collections::BTreeSet<String> = g
                .offsets
                .iter()
                .map(|c| flow.remote_topic(&c.topic))
                .collect();
            let desired: BTreeMap<(String, i32), i64> = self
                .ledger
                .as_ref()
                .expect("loaded before use")
                .group(&g.group)
                .filter(|(k, _)| remote_topics.contains(&k.topic))
                .map(|(k, w)| ((k.topic.clone(), k.partition), w.downstream))
                .collect();
            if desired.is_empty() {
                continue;
            }
            let Some(state) = state_of.get(&g.group).copied().flatten() else {
                continue;
            };
            let parts: Vec<(&str, i32)> = desired.keys().map(|(t, p)| (t.as_str(), *p)).collect();
            let current = match self.target_admin.committed_offsets(&g.group, &parts).await {
                Ok(current) => current,
                Err(e) => {
                    tracing::warn!(cluster = %self.target.name, group = %g.group, error = %e, "cannot read the target group's offsets; not syncing it this cycle");
                    self.count_error("group_sync");
                    continue;
                }
            };
            let plan = group_sync::plan(
                state,
                desired.iter().map(|((t, p), o)| (t.as_str(), *p, *o)),
                &current,
            );
            self.report_skips(&g.group, &plan.skip);
            if plan.write.is_empty() {
                continue;
            }
            let offsets: Vec<(&str, i32, i64)> = plan
                .write
                .iter()
                .map(|(t, p, o)| (t.as_str(), *p, *o))
                .collect();
            match self
                .target_admin
                .alter_consumer_group_offsets(&g.group, &offsets)
                .await
            {
                Ok(()) => {
                    tracing::debug!(group = %g.group, partitions = offsets.len(), "group offsets synced to the target");
                    for (t, p, _) in &plan.write {
                        self.reported_skips.remove(&CheckpointKey {
                            group: g.group.clone(),
                            topic: t.clone(),
                            partition: *p,
                        });
                    }
                    self.count_sync(SyncResult::Synced, offsets.len());
                }
                Err(AdminError::GroupNotEmpty { .. }) => {
                    // A consumer joined between the check and the commit.
                    let skipped: Vec<_> = plan
                        .write
                        .iter()
                        .map(|(t, p, o)| (t.clone(), *p, *o, SkipReason::GroupActive))
                        .collect();
                    self.report_skips(&g.group, &skipped);
                }
                Err(e) => {
                    tracing::warn!(cluster = %self.target.name, group = %g.group, error = %e, "committing translated offsets into the target group failed");
                    self.count_sync(SyncResult::Failed, offsets.len());
                    self.count_error("group_sync");
                }
            }
        }
    }

    fn report_skips(&mut self, group: &str, skips: &[(String, i32, i64, SkipReason)]) {
        let mut fresh = 0;
        for (topic, partition, offset, reason) in skips {
            let key = CheckpointKey {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            let skip = ReportedSkip {
                offset: *offset,
                reason: *reason,
            };
            if self.reported_skips.get(&key) != Some(&skip) {
                tracing::debug!(group, topic = %topic, partition, offset, %reason, "group offset not synced");
                self.reported_skips.insert(key, skip);
                fresh += 1;
            }
        }
        self.count_sync(SyncResult::Skipped, fresh);
    }
}
