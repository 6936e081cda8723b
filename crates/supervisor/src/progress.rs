//! The progress store: for each mirrored source partition, the next source
//! offset to copy. It lives on the *target* in a compacted topic, so the
//! source can stay read-only (Read and Describe only).
//!
//! Record format (human-readable so `kafka-console-consumer` can show it):
//! key `"<source topic>:<partition>"`, value the offset in decimal. Topic
//! names cannot contain ':' so the key is unambiguous.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferry_config::Cluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{client_config, ClusterContext, Role};
use crate::internal::InternalProducer;
use crate::{EngineError, Place};

/// The progress topic for everything replicated from `source` onto a target.
pub fn progress_topic(source_alias: &str) -> String {
    format!("ferry-progress.{source_alias}.internal")
}

/// The key of `topic`'s `partition` in the progress topic.
pub(crate) fn encode_key(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

/// A progress record's partition and offset; `None` for a tombstone or a
/// record that is not Ferry's.
fn decode(key: &[u8], value: Option<&[u8]>) -> Option<((String, i32), i64)> {
    let key = decode_key(key)?;
    let offset = std::str::from_utf8(value?).ok()?.parse().ok()?;
    Some((key, offset))
}

/// The (source topic, partition) a progress record is about.
fn decode_key(key: &[u8]) -> Option<(String, i32)> {
    let key = std::str::from_utf8(key).ok()?;
    let (topic, partition) = key.rsplit_once(':')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

/// Saved progress: the next source offset to copy, per (source topic,
/// partition).
pub type ProgressMap = HashMap<(String, i32), i64>;

/// Reads the whole progress topic (last value per key wins). A missing topic
/// means a first start: an empty map.
pub async fn load(
    target: &Cluster,
    source_alias: &str,
    timeout: Duration,
) -> Result<ProgressMap, EngineError> {
    let target = target.clone();
    let topic = progress_topic(source_alias);
    tokio::task::spawn_blocking(move || load_blocking(&target, &topic, timeout))
        .await
        .map_err(|e| EngineError::Internal(format!("progress loader panicked: {e}")))?
}

fn load_blocking(
    target: &Cluster,
    topic: &str,
    timeout: Duration,
) -> Result<ProgressMap, EngineError> {
    let mut map = ProgressMap::new();
    read_compacted(
        target,
        topic,
        "ferry-progress-loader",
        timeout,
        "cannot load saved progress",
        |key, value| match value {
            // A tombstone (`ferry reset-progress`) forgets the partition's
            // progress until compaction removes both.
            None => {
                if let Some(k) = decode_key(key) {
                    map.remove(&k);
                }
            }
            Some(_) => {
                if let Some((k, v)) = decode(key, value) {
                    map.insert(k, v);
                }
            }
        },
    )?;
    Ok(map)
}

/// Reads partition 0 of a one-partition internal topic on `cluster` from
/// the beginning to the end offset seen at the start, handing each keyed
/// record (`None` value: a tombstone) to `on_record` in order. A missing
/// topic reads as empty. Blocking: call it off the async workers. `what`
/// begins every error's text ("cannot load saved progress").
pub(crate) fn read_compacted(
    cluster: &Cluster,
    topic: &str,
    client_id: &str,
    timeout: Duration,
    what: &str,
    mut on_record: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<(), EngineError> {
    let place = || Place::topic(&cluster.name, topic);
    let failed =
        |doing: &str, e: KafkaError| EngineError::request(place(), format!("{what}: {doing}"), e);
    let consumer: BaseConsumer<ClusterContext> = client_config(cluster, Role::Reader, client_id)
        .create_with_context(ClusterContext::new(cluster))
        .inspect(crate::clients::serve_token_refresh)
        .map_err(|e| EngineError::client_creation_for(cluster, topic, &format!("{what}: {e}")))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| failed("metadata request failed", e))?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    // Not allowed to see it is not "absent": reading that as empty would
    // forget what the topic holds.
    if let Some(err) = found.and_then(|t| t.error()).filter(|e| {
        *e == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
    }) {
        return Err(EngineError::request(
            place(),
            format!("{what}: not authorized to read the topic"),
            RDKafkaErrorCode::from(err),
        ));
    }
    let exists = found.is_some_and(|t| t.error().is_none() && !t.partitions().is_empty());
    if !exists {
        return Ok(());
    }
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, timeout)
        .map_err(|e| failed("cannot read watermarks", e))?;
    if high <= low {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(|e| failed("cannot assign the partition", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| failed("cannot assign the partition", e))?;
    let deadline = Instant::now() + timeout;
    loop {
        if Instant::now() > deadline {
            // Ferry's own deadline, no client error beneath: retriable text.
            return Err(EngineError::Topic {
                cluster: cluster.name.clone(),
                topic: topic.to_string(),
                cause: format!("{what}: timed out after {timeout:?} reading up to offset {high}"),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(e)) => return Err(failed("cannot read", e)),
            Some(Ok(msg)) => {
                if let Some(key) = msg.key() {
                    on_record(key, msg.payload());
                }
                if msg.offset() + 1 >= high {
                    return Ok(());
                }
            }
        }
    }
}

/// Forgets the saved progress of `partitions` by writing a tombstone for
/// each to the progress topic, and waits until the target acknowledged
/// every one. A flow started afterwards starts them by `start_from` (or
/// where MirrorMaker 2 stopped). Must not run while a daemon replicates
/// them: its next progress write would bring the progress back.
pub async fn reset(
    target: &Cluster,
    source_alias: &str,
    partitions: &[(String, i32)],
) -> Result<(), EngineError> {
    let topic = progress_topic(source_alias);
    let fail = |doing: String, e: KafkaError| {
        EngineError::request(Place::topic(&target.name, &topic), doing, e)
    };
    let producer = InternalProducer::new(target, "ferry-reset-progress")?;
    let mut acks = Vec::with_capacity(partitions.len());
    for (t, p) in partitions {
        let key = encode_key(t, *p);
        let record = BaseRecord::to(&topic).key(key.as_bytes());
        let ack = producer
            .send(record)
            .await
            .map_err(|e| fail(format!("cannot reset the progress of {key}"), e))?;
        acks.push((key, ack));
    }
    for (key, ack) in acks {
        InternalProducer::acknowledged(ack)
            .await
            .map_err(|e| fail(format!("resetting the progress of {key} failed"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_with_dots_and_colons_free_topics() {
        let k = encode_key("orders.eu-1", 7);
        assert_eq!(
            decode(k.as_bytes(), Some(b"42")),
            Some((("orders.eu-1".to_string(), 7), 42))
        );
        assert_eq!(decode(b"nonsense", Some(b"1")), None);
        assert_eq!(decode(b"t:1", None), None, "tombstones carry no progress");
    }
}
