//! Where each partition of a topic starts, and its hand-over to the data
//! plane (see `start` for the rules).

use std::collections::HashMap;
use std::sync::Arc;

use ferry_config::StartFrom;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;

use super::context::FlowContext;
use super::{blocking, REQUEST_TIMEOUT};
use crate::lookups::Watermarks;
use crate::pump::PumpCommand;
use crate::start;
use crate::status::Notice;
use crate::tracker::{PartitionSlot, Resolution};
use crate::{EngineError, Place};

/// Creates slots for the partitions, resolving where each starts (see
/// `start`): the in-memory watermark after a restart, else persisted
/// progress, else where MirrorMaker 2 stopped (handover), else the flow's
/// `start_from`. A held partition gets no slot.
pub(super) async fn assign(
    ctx: &Arc<FlowContext>,
    topic: &str,
    remote: &str,
    partitions: impl IntoIterator<Item = i32>,
    resume: &mut HashMap<i32, i64>,
    failures: &Arc<Notify>,
    resolutions: &mut HashMap<i32, Resolution>,
) -> Result<Vec<Arc<PartitionSlot>>, EngineError> {
    let topic_arc: Arc<str> = Arc::from(topic);
    let remote_arc: Arc<str> = Arc::from(remote);
    let mut assignments = Vec::new();
    let saved = ctx.resume().await?;
    // All partitions at once, so they share the flow's lookup rounds.
    // Only partitions of the slots this process copies.
    let partitions: Vec<i32> = partitions
        .into_iter()
        .filter(|p| ctx.copies(topic, *p))
        .collect();
    let (marks, ()) = tokio::join!(
        futures::future::join_all(
            partitions
                .iter()
                .map(|p| ctx.lookups.source_watermarks(topic, *p)),
        ),
        ctx.plane.warm_source_metadata(topic),
    );
    for (p, marks) in partitions.into_iter().zip(marks) {
        let Watermarks { low, high } = marks?;
        tracing::debug!(partition = p, low, high, "watermarks read");
        // Held for the life of the process: a source log that grew past
        // the saved progress since does not make it right to resume there.
        if ctx.status.is_held(topic, p) {
            continue;
        }
        let key = (topic.to_string(), p);
        let saved_progress = crate::clock::lock(&saved.progress).get(&key).copied();
        let remembered = start::Origin::remembered(
            resume.get(&p).copied().or(saved_progress),
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
        crate::clock::lock(&ctx.run_ends).insert((topic.to_string(), p), high);
        let exactly_once = ctx.flow.exactly_once();
        let mut slot = PartitionSlot::new(topic_arc.clone(), p, remote_arc.clone(), start)
            .with_offsets(ctx.offsets.attach(&topic_arc, p, exactly_once))
            .with_failure_notify(failures.clone())
            .with_skip_ledger(ctx.status.skips.clone());
        if let Some(resolution) = resolutions.remove(&p) {
            slot = slot.with_resolution(resolution);
        }
        if exactly_once {
            slot = slot.with_transactions();
        }
        let slot = Arc::new(slot);
        ctx.status.put_slot(slot.clone());
        assignments.push((slot, start));
    }
    if ctx.flow.exactly_once() {
        renew_broken_transactions(ctx, &assignments).await?;
    }
    let slots: Vec<_> = assignments.iter().map(|(s, _)| s.clone()).collect();
    ctx.plane.send(PumpCommand::Assign(assignments)).await?;
    tracing::debug!(partitions = slots.len(), "partitions handed to the pump");
    Ok(slots)
}

/// Partitions restarting after their slot's transactional producer failed
/// fatally get a new one first (a fenced one is not renewed: another
/// process owns the slot).
async fn renew_broken_transactions(
    ctx: &FlowContext,
    assignments: &[(Arc<PartitionSlot>, i64)],
) -> Result<(), EngineError> {
    let slots: std::collections::BTreeSet<_> = assignments
        .iter()
        .map(|(s, _)| ctx.flow.slot_of(&s.topic, s.partition))
        .collect();
    let broken = ctx.plane.broken_transactions(slots);
    if broken.is_empty() {
        return Ok(());
    }
    let ids = broken
        .iter()
        .map(|slot| (*slot, ctx.flow.transactional_id(&ctx.transactional_id_prefix, *slot)))
        .collect();
    ctx.plane.start_transactions(&ctx.target, ids).await?;
    for slot in broken {
        if let Some(epoch) = ctx.ownership.epoch(slot) {
            ctx.plane.set_epoch(slot, epoch);
        }
    }
    Ok(())
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
                    .map_err(|e| {
                        EngineError::request(
                            Place::partition(&cluster, &t, partition),
                            format!("cannot look up offsets for timestamp {ms}"),
                            e,
                        )
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
    let fail = |doing: String, e: ferry_admin::AdminError| {
        EngineError::request(Place::cluster(&ctx.source.name), doing, e)
    };
    let groups = ctx.source_admin.list_consumer_groups().await.map_err(|e| {
        fail(
            "cannot list consumer groups for start_from = \"unconsumed\"".into(),
            e,
        )
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
            .map_err(|e| fail(format!("cannot read offsets of group {}", g.group_id), e))?;
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
