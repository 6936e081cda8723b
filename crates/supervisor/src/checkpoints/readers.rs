//! Reading internal topics (offset syncs, checkpoints) from the beginning
//! up to their end.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use ferry_checkpoint::wire::{self, Checkpoint};
use ferry_checkpoint::{CheckpointLedger, SyncReplay};
use ferry_config::Cluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::MAX_SEGMENTS_PER_PARTITION;
use crate::clients::{client_config, ClusterContext, Role};
use crate::{EngineError, Place};

/// Reads every partition of `topic` from the beginning up to the end offsets
/// seen at start, calling `f` per record. `Ok(false)` if the topic does not
/// exist. `what` begins every error's text ("cannot read offset syncs").
pub(super) fn read_topic_blocking(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut(&rdkafka::message::BorrowedMessage<'_>),
) -> Result<bool, EngineError> {
    let failed = |place: Place, doing: &str, e: KafkaError| {
        EngineError::request(place, format!("{what}: {doing}"), e)
    };
    let at_topic = || Place::topic(&cluster.name, topic);
    let consumer: BaseConsumer<ClusterContext> =
        client_config(cluster, Role::Reader, "ferry-internal-reader")
            .create_with_context(ClusterContext::new(cluster))
            .inspect(crate::clients::serve_token_refresh)
            .map_err(|e| {
                EngineError::client_creation_for(cluster, topic, &format!("{what}: {e}"))
            })?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout.min(Duration::from_secs(30)))
        .map_err(|e| failed(at_topic(), "metadata request failed", e))?;
    let Some(meta) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    else {
        return Ok(false);
    };
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in meta.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(15))
            .map_err(|e| {
                failed(
                    Place::partition(&cluster.name, topic, p.id()),
                    "cannot read watermarks",
                    e,
                )
            })?;
        if high > low {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .map_err(|e| failed(at_topic(), "cannot assign the partitions", e))?;
        }
    }
    if ends.is_empty() {
        return Ok(true);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| failed(at_topic(), "cannot assign the partitions", e))?;
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() {
        if Instant::now() > deadline {
            // Ferry's own deadline, no client error beneath: retriable text.
            return Err(EngineError::Topic {
                cluster: cluster.name.clone(),
                topic: topic.to_string(),
                cause: format!("{what}: timed out after {timeout:?} reading to the end"),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Err(e)) => return Err(failed(at_topic(), "cannot read", e)),
            Some(Ok(msg)) => {
                f(&msg);
                if ends
                    .get(&msg.partition())
                    .is_some_and(|e| msg.offset() + 1 >= *e)
                {
                    ends.remove(&msg.partition());
                }
            }
            None => {
                // Control records at the end never reach poll: compare the
                // position instead.
                if let Ok(positions) = consumer.position() {
                    for e in positions.elements() {
                        if let (Offset::Offset(o), Some(end)) =
                            (e.offset(), ends.get(&e.partition()))
                        {
                            if o >= *end {
                                ends.remove(&e.partition());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(true)
}

/// Rebuilds per-partition offset maps from an offset-syncs topic (Ferry's
/// or MirrorMaker 2's). A missing topic gives an empty replay.
pub async fn read_syncs(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
) -> Result<SyncReplay, EngineError> {
    let (cluster, topic) = (cluster.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let mut replay =
            SyncReplay::new(NonZeroUsize::new(MAX_SEGMENTS_PER_PARTITION).expect("non-zero"));
        read_topic_blocking(
            &cluster,
            &topic,
            timeout,
            "cannot read offset syncs",
            |msg| {
                let link = msg.headers().and_then(|h| {
                    h.iter()
                        .find(|h| h.key == wire::SYNC_LINK_HEADER)
                        .and_then(|h| h.value)
                });
                replay.apply_record(msg.key(), msg.payload(), link);
            },
        )?;
        Ok(replay)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("offset-syncs reader failed: {e}")))?
}

/// What a checkpoints topic holds.
#[derive(Debug)]
pub struct LoadedCheckpoints {
    /// The last checkpoint per key.
    pub ledger: CheckpointLedger,
    /// Records that were not checkpoints.
    pub skipped: u64,
}

/// The last checkpoint per key from a checkpoints topic (Ferry's or
/// MirrorMaker 2's), and how many records were not checkpoints.
pub async fn read_checkpoints(
    cluster: &Cluster,
    topic: &str,
    timeout: Duration,
) -> Result<LoadedCheckpoints, EngineError> {
    let (cluster, topic) = (cluster.clone(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let mut ledger = CheckpointLedger::new();
        let mut skipped = 0u64;
        read_topic_blocking(
            &cluster,
            &topic,
            timeout,
            "cannot read checkpoints",
            |msg| match (msg.key(), msg.payload()) {
                (Some(k), Some(v)) => match Checkpoint::decode(k, v) {
                    Ok(cp) => ledger.load(&cp),
                    Err(_) => skipped += 1,
                },
                _ => skipped += 1,
            },
        )?;
        Ok(LoadedCheckpoints { ledger, skipped })
    })
    .await
    .map_err(|e| EngineError::Internal(format!("checkpoints reader failed: {e}")))?
}
