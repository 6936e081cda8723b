//! Persisting the flow's progress: every partition's acknowledged watermark,
//! written to the progress topic on the target and counted as committed
//! only once the target acknowledged the write.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::error::KafkaError;
use rdkafka::producer::BaseRecord;

use super::context::FlowContext;
use super::count_error;
use crate::internal::InternalProducer;
use crate::membership::Ownership;
use crate::progress;
use crate::status::FlowStatus;
use crate::{EngineError, Place};

/// The last watermark the target acknowledged per (topic, partition). Keyed
/// by the slots' shared topic names: the map is compared against every
/// partition several times a second, and a `String` key would allocate for
/// each of them.
pub(super) type CommittedProgress = HashMap<PartitionKey, i64>;
pub(super) type PartitionKey = (Arc<str>, i32);

/// Whose progress is written: the flow's partitions in the slots this
/// process owns.
#[derive(Clone, Copy)]
pub(super) struct Owner<'a> {
    pub flow: &'a ferry_config::Flow,
    pub ownership: &'a Ownership,
}

/// A partition whose watermark moved since its last acknowledged write.
struct MovedWatermark {
    key: PartitionKey,
    watermark: i64,
    /// The progress record's key (see [`progress::encode_key`]).
    record_key: String,
    /// The progress record's value: the watermark as decimal text.
    record_value: String,
}

/// One progress write for the flow, freeing the window's budget when it
/// lands; a failure is logged and retried by the next write. True when it
/// landed.
pub(super) async fn persist_progress(
    ctx: &FlowContext,
    committer: &InternalProducer,
    committed: &mut CommittedProgress,
) -> bool {
    let acked = ctx.plane.begin_write();
    let owner = Owner {
        flow: &ctx.flow,
        ownership: &ctx.ownership,
    };
    match write_progress(&ctx.target.name, owner, &ctx.status, committer, committed).await {
        Ok(()) => {
            // Under exactly-once the lanes' commits persist, not this.
            if !ctx.flow.exactly_once() {
                ctx.plane.persisted_up_to(acked);
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "persisting progress failed; retrying");
            count_error(&ctx.metrics, "progress");
            false
        }
    }
}

/// Writes the watermark of every partition whose watermark moved, and
/// records it as committed only once the target acknowledged it. Only
/// partitions of slots this process owns are written, each with its slot's
/// epoch.
pub(super) async fn write_progress(
    target: &str,
    owner: Owner<'_>,
    status: &FlowStatus,
    producer: &InternalProducer,
    committed: &mut CommittedProgress,
) -> Result<(), EngineError> {
    let topic = progress::progress_topic(&owner.flow.source);
    let changed: Vec<MovedWatermark> = status
        .slots()
        .into_iter()
        // A transactional slot's progress is written in its transactions.
        .filter(|slot| !slot.is_transactional())
        .filter_map(|slot| {
            let key = (slot.topic.clone(), slot.partition);
            let watermark = slot.watermark();
            if committed.get(&key) == Some(&watermark) {
                return None;
            }
            let epoch = owner.ownership.epoch(owner.flow.slot_of(&key.0, key.1))?;
            Some(MovedWatermark {
                record_key: progress::encode_key(&key.0, key.1),
                record_value: progress::encode_value(watermark, epoch),
                key,
                watermark,
            })
        })
        .collect();
    // Hand all to librdkafka, then await all: one round trip for the whole
    // batch instead of one per partition.
    let fail = |key: &PartitionKey, e: KafkaError| {
        EngineError::request(
            Place::topic(target, &topic),
            format!("writing progress of {}:{} failed", key.0, key.1),
            e,
        )
    };
    let mut first_error = None;
    let mut pending = Vec::with_capacity(changed.len());
    for moved in &changed {
        let record = BaseRecord::to(&topic)
            .key(moved.record_key.as_bytes())
            .payload(moved.record_value.as_bytes());
        match producer.send(record).await {
            Ok(ack) => pending.push((moved, ack)),
            Err(e) => {
                first_error.get_or_insert(fail(&moved.key, e));
            }
        }
    }
    for (moved, ack) in pending {
        match InternalProducer::acknowledged(ack).await {
            Ok(()) => {
                committed.insert(moved.key.clone(), moved.watermark);
            }
            Err(e) => {
                first_error.get_or_insert(fail(&moved.key, e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
