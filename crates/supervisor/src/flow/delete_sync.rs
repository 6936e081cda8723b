//! The flow's deletion task (`propagate_deletes = true`): after every
//! successful topic discovery, notes which source topics the flow mirrored
//! are gone, and deletes their target topics once they stayed gone for
//! `delete_grace` (the rules are in [`crate::deletes`]). Best effort and
//! conservative: anything unknown keeps the topic until the next discovery.
//!
//! The grace clock lives in this process: a restart, or the task moving to
//! another process, starts it again. That only ever delays a deletion. So
//! does the evidence: only source topics this process saw, on a source
//! cluster with the same id, are ever deleted on the target.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_config::{Flow, Topology};
use rdkafka::consumer::Consumer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context::FlowContext;
use super::side_task::Scopes;
use super::{blocking, count_error, REQUEST_TIMEOUT};
use crate::deletes::{self, Orphan};

/// What one round covers: the flow as last reloaded, and every topic name
/// of a successful listing of the source.
pub(super) type DeleteScope = Arc<(Flow, BTreeSet<String>)>;

/// What the task remembers between rounds.
#[derive(Default)]
struct Tracker {
    /// The id of the source cluster the rounds saw; what was seen on one
    /// cluster says nothing about another answering under the same name.
    cluster_id: Option<String>,
    /// Selected source topics this process saw on the source: the evidence
    /// that the flow mirrored them.
    seen: BTreeSet<String>,
    /// Orphans' source topics, and since when they have been missing from
    /// every listing (with their target topic there).
    missing_since: BTreeMap<String, Instant>,
    /// Orphans kept because something else writes to them, with why, so
    /// that the reason is logged when it changes, not every round.
    kept: BTreeMap<String, String>,
}

/// Runs one round per scope received, until cancelled or the sender is
/// gone. `topology` is the whole running topology, for the other flows
/// that may write the same target topics.
pub(super) async fn run_delete_sync(
    ctx: Arc<FlowContext>,
    topology: watch::Receiver<Arc<Topology>>,
    scope: watch::Receiver<DeleteScope>,
    cancel: CancellationToken,
) {
    let mut tracker = Tracker::default();
    let mut scopes = Scopes::new(scope, cancel);
    while let Some(current) = scopes.next().await {
        let (flow, source) = &*current;
        let topology = topology.borrow().clone();
        let work = round(&ctx, &topology, flow, source, &mut tracker);
        if scopes.unless_cancelled(work).await.is_none() {
            return;
        }
    }
}

/// One round: update the clocks, publish how many deletions are pending,
/// and delete what is due (only on the owner of slot 0).
async fn round(
    ctx: &FlowContext,
    topology: &Topology,
    flow: &Flow,
    source: &BTreeSet<String>,
    tracker: &mut Tracker,
) {
    if !same_cluster(ctx, tracker).await {
        return;
    }
    let now = Instant::now();
    tracker.seen.extend(
        source
            .iter()
            .filter(|t| crate::topics::selects(flow, t))
            .cloned(),
    );
    // Only what this process saw counts, not the saved progress: after a
    // restart with the cluster's address pointing elsewhere (a new, empty
    // cluster under the old name), saved progress would make every topic
    // look deleted.
    let known = &tracker.seen;
    let missing: Vec<&str> = known
        .iter()
        .filter(|t| crate::topics::selects(flow, t) && !source.contains(*t))
        .map(String::as_str)
        .collect();
    let mut target_partitions = BTreeMap::new();
    let orphans = if missing.is_empty() {
        Vec::new()
    } else {
        match ctx.target_admin.topic_metadata().await {
            Ok(target) => {
                target_partitions = target;
                let names: BTreeSet<String> = target_partitions.keys().cloned().collect();
                deletes::orphans(topology, flow, missing, source, &names)
            }
            Err(e) => {
                tracing::warn!(cluster = %ctx.target.name, error = %e, "cannot list the target's topics; deletions wait for the next discovery");
                count_error(&ctx.metrics, "admin");
                return;
            }
        }
    };
    // The clock of an orphan starts when it is first one (its source topic
    // missing, its target topic there), and stops as soon as it is not.
    tracker.missing_since.retain(|t, _| {
        let still = orphans.iter().any(|o| &o.source_topic == t);
        if !still && source.contains(t) {
            tracing::info!(source_topic = %t, "source topic is back: its target topic is kept");
        }
        still
    });
    for o in &orphans {
        tracker
            .missing_since
            .entry(o.source_topic.clone())
            .or_insert(now);
    }
    set_pending(ctx, orphans.len());
    tracker
        .kept
        .retain(|t, _| orphans.iter().any(|o| &o.target_topic == t));
    // One process of the flow acts, as for heartbeats: the owner of slot 0.
    if ctx.ownership.epoch(0).is_none() {
        return;
    }
    let grace = flow.deletes.grace;
    let due: Vec<&Orphan> = orphans
        .iter()
        .filter(|o| {
            tracker
                .missing_since
                .get(&o.source_topic)
                .is_some_and(|since| now.duration_since(*since) >= grace)
        })
        .collect();
    if due.is_empty() {
        return;
    }
    let others = match deletes::other_writers(topology, flow, |cluster| {
        blocking(move || deletes::list_cluster(&cluster, REQUEST_TIMEOUT))
    })
    .await
    {
        Ok(others) => others,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the topics of the other flows into this cluster, so cannot tell whether they write the target topics due for deletion; kept until the next discovery");
            count_error(&ctx.metrics, "metadata");
            return;
        }
    };
    let mut deleted = 0;
    for orphan in due {
        let writers = deletes::writers(flow, orphan, source, &others);
        if !writers.is_empty() {
            let why = writers.join(", ");
            if tracker.kept.get(&orphan.target_topic) != Some(&why) {
                tracing::info!(cluster = %ctx.target.name, topic = %orphan.target_topic, source_topic = %orphan.source_topic, written_by = %why, "source topic deleted, but the target topic is kept: another source topic is copied into it");
                tracker
                    .kept
                    .insert(orphan.target_topic.clone(), why.clone());
            }
            continue;
        }
        let partitions = target_partitions
            .get(&orphan.target_topic)
            .copied()
            .unwrap_or(0);
        if delete_one(ctx, flow, (orphan, partitions), tracker).await {
            deleted += 1;
        }
    }
    if deleted > 0 {
        set_pending(ctx, orphans.len() - deleted);
    }
}

/// Reads the source cluster's id: false (the round does nothing) when it
/// cannot be read, and when it changed, everything seen so far is
/// forgotten and every clock starts again.
async fn same_cluster(ctx: &FlowContext, tracker: &mut Tracker) -> bool {
    let reader = ctx.source_reader.clone();
    let id = blocking(move || Ok(reader.client().fetch_cluster_id(REQUEST_TIMEOUT)))
        .await
        .ok()
        .flatten();
    let Some(id) = id else {
        tracing::warn!(cluster = %ctx.source.name, "cannot read the source cluster's id; deletions wait for the next discovery");
        return false;
    };
    if tracker
        .cluster_id
        .as_ref()
        .is_some_and(|known| *known != id)
    {
        tracing::warn!(cluster = %ctx.source.name, before = ?tracker.cluster_id, now = %id, "the source answers with another cluster id: what was seen on the other cluster is forgotten, and no target topic is deleted for it");
        *tracker = Tracker::default();
    }
    tracker.cluster_id = Some(id);
    true
}

/// Asks the source once more for the topic by name, then deletes its
/// target topic. True when it is gone from the target now.
/// `partitions`: the target topic's partition count (at least the source
/// topic's: Ferry grows it to match).
async fn delete_one(
    ctx: &FlowContext,
    flow: &Flow,
    (orphan, partitions): (&Orphan, usize),
    tracker: &mut Tracker,
) -> bool {
    let (reader, cluster, topic) = (
        ctx.source_reader.clone(),
        ctx.source.name.clone(),
        orphan.source_topic.clone(),
    );
    match blocking(move || deletes::confirmed_gone(&reader, &cluster, &topic, REQUEST_TIMEOUT))
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(cluster = %ctx.source.name, source_topic = %orphan.source_topic, "the source topic is missing from the listing but the source does not say it is unknown (no DESCRIBE on it, or it is being created); its target topic is kept");
            return false;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot confirm the source topic is gone; its target topic is kept until the next discovery");
            count_error(&ctx.metrics, "metadata");
            return false;
        }
    }
    let missing_for = tracker
        .missing_since
        .get(&orphan.source_topic)
        .map_or(Duration::ZERO, Instant::elapsed);
    let outcome = ctx
        .target_admin
        .delete_topics(&[orphan.target_topic.as_str()])
        .await
        .and_then(|mut results| results.pop().map_or(Ok(()), |r| r.map(drop)));
    let gone = match outcome {
        Ok(()) => {
            tracing::warn!(
                cluster = %ctx.target.name,
                topic = %orphan.target_topic,
                source_cluster = %flow.source,
                source_topic = %orphan.source_topic,
                missing_for = ?missing_for,
                "target topic deleted: its source topic was deleted (propagate_deletes = true)"
            );
            if let Some(m) = &ctx.metrics {
                m.topic_deleted();
            }
            true
        }
        Err(e) if e.code() == Some(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition) => {
            tracing::info!(cluster = %ctx.target.name, topic = %orphan.target_topic, "target topic already deleted");
            true
        }
        Err(e) => {
            tracing::warn!(cluster = %ctx.target.name, topic = %orphan.target_topic, error = %e, "cannot delete the target topic; retried after the next discovery");
            count_error(&ctx.metrics, "admin");
            false
        }
    };
    if gone {
        forget_progress(ctx, &orphan.source_topic, partitions).await;
        tracker.missing_since.remove(&orphan.source_topic);
        tracker.seen.remove(&orphan.source_topic);
        tracker.kept.remove(&orphan.target_topic);
    }
    gone
}

/// Forgets the saved progress of a source topic whose target topic was
/// deleted (tombstones on the progress topic, and this process's copy), so
/// that a topic created again under its name is copied from `start_from`
/// into a new target topic, instead of being held because its saved
/// progress lies beyond the new log's end. No topic task writes it any more:
/// the topic is gone from the source, so its task stopped. Every partition
/// up to `count` gets a tombstone (progress written during this run is not
/// in the copy loaded at start), and any other the loaded copy names.
async fn forget_progress(ctx: &FlowContext, topic: &str, count: usize) {
    let mut partitions: BTreeSet<(String, i32)> =
        (0..count as i32).map(|p| (topic.to_string(), p)).collect();
    if let Some(resume) = ctx.resume.get() {
        partitions.extend(
            crate::clock::lock(&resume.progress)
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned(),
        );
    }
    if partitions.is_empty() {
        return;
    }
    let partitions: Vec<(String, i32)> = partitions.into_iter().collect();
    match crate::progress::reset(&ctx.target, &ctx.flow.source, &partitions).await {
        Ok(()) => {
            if let Some(resume) = ctx.resume.get() {
                crate::clock::lock(&resume.progress).retain(|(t, _), _| t != topic);
            }
            tracing::info!(source_topic = %topic, partitions = partitions.len(), "saved progress of the deleted topic forgotten: a topic created again under its name is copied from start_from");
        }
        Err(e) => {
            tracing::warn!(source_topic = %topic, error = %e, "cannot forget the saved progress of the deleted topic; if it is created again on the source, its partitions are held until `ferry reset-progress`");
            count_error(&ctx.metrics, "progress");
        }
    }
}

fn set_pending(ctx: &FlowContext, n: usize) {
    if let Some(m) = &ctx.metrics {
        m.set_deletions_pending(n);
    }
}
