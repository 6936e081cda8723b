//! The progress store: for each mirrored source partition, the next source
//! offset to copy. It lives on the *target* in a compacted topic, so the
//! source can stay read-only (Read and Describe only).
//!
//! Record format (human-readable so `kafka-console-consumer` can show it):
//! key `"<source topic>:<partition>"`, value `"<offset>@<epoch>"` in
//! decimal. Topic names cannot contain ':' so the key is unambiguous.
//!
//! The epoch is that of the writer's slot (see `membership`): a later owner
//! of a partition always writes a higher one. When progress is loaded, the
//! record with the highest epoch wins per key, so a process that lost the
//! partition and still wrote for it (paused past its group session, cut
//! off) can never take the partition back to its older position. A value
//! without an epoch (written before slots existed) counts as the oldest.

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

/// The value of a progress record.
pub(crate) fn encode_value(offset: i64, epoch: i64) -> String {
    format!("{offset}@{epoch}")
}

/// The epoch of a value written before epochs existed.
const NO_EPOCH: i64 = -1;

/// A progress record's partition, offset and epoch; `None` for a tombstone
/// or a record that is not Ferry's.
fn decode(key: &[u8], value: Option<&[u8]>) -> Option<((String, i32), i64, i64)> {
    let key = decode_key(key)?;
    let value = std::str::from_utf8(value?).ok()?;
    let (offset, epoch) = match value.split_once('@') {
        Some((offset, epoch)) => (offset.parse().ok()?, epoch.parse().ok()?),
        None => (value.parse().ok()?, NO_EPOCH),
    };
    Some((key, offset, epoch))
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
    Ok(load_with_epochs(target, source_alias, timeout)
        .await?
        .into_iter()
        .map(|(k, (offset, _))| (k, offset))
        .collect())
}

/// Saved progress with the epoch of each winning record: per (source
/// topic, partition), (next offset, epoch).
pub(crate) type EpochProgress = HashMap<(String, i32), (i64, i64)>;

/// Reads the whole progress topic, keeping each partition's epoch (see
/// [`load`]).
pub(crate) async fn load_with_epochs(
    target: &Cluster,
    source_alias: &str,
    timeout: Duration,
) -> Result<EpochProgress, EngineError> {
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
) -> Result<EpochProgress, EngineError> {
    // Per partition: the offset and epoch of the winning record so far.
    let mut newest = EpochProgress::new();
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
                    newest.remove(&k);
                }
            }
            Some(_) => {
                if let Some((k, offset, epoch)) = decode(key, value) {
                    // A later record of the same or a newer owner wins; an
                    // older owner's late record does not.
                    if newest.get(&k).is_none_or(|(_, e)| epoch >= *e) {
                        newest.insert(k, (offset, epoch));
                    }
                }
            }
        },
    )?;
    Ok(newest)
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
            None => {
                // Under exactly-once the topic ends with a transaction's
                // commit marker, which never reaches poll: compare the
                // position, which moves past markers and aborted records.
                // It passes `high` only once every transaction open below
                // it has ended, so nothing committed before the start is
                // missed.
                let position = consumer
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, 0).and_then(|e| e.offset().to_raw()));
                if position.is_some_and(|p| p >= high) {
                    return Ok(());
                }
            }
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

/// Moves the saved progress of `partitions` (source topic, partition,
/// offset) forward to the given offsets, so a flow started afterwards
/// resumes there; progress already at or past its offset is left alone.
/// Creates the progress topic if needed and waits until the target
/// acknowledged every write. Returns the partitions it moved, with where
/// they were (`None`: no progress). Each value keeps the partition's saved
/// epoch, so it wins over what it replaces and loses to any later owner's
/// write. Must not run while a daemon replicates them.
pub async fn advance(
    target: &Cluster,
    source_alias: &str,
    partitions: &[(String, i32, i64)],
    replication: Option<i32>,
) -> Result<Vec<((String, i32), Option<i64>)>, EngineError> {
    let topic = progress_topic(source_alias);
    let admin =
        crate::clients::admin(target, "ferry-progress").map_err(|e| EngineError::Client {
            cluster: target.name.clone(),
            cause: e.to_string(),
        })?;
    crate::topics::ensure_internal_topic(&admin, &target.name, &topic, replication).await?;
    let saved = load_with_epochs(target, source_alias, Duration::from_secs(60)).await?;
    let fail = |doing: String, e: KafkaError| {
        EngineError::request(Place::topic(&target.name, &topic), doing, e)
    };
    let producer = InternalProducer::new(target, "ferry-progress")?;
    let mut moved = Vec::new();
    let mut acks = Vec::new();
    for (t, p, offset) in partitions {
        let key = (t.clone(), *p);
        let was = saved.get(&key).copied();
        if was.is_some_and(|(at, _)| at >= *offset) {
            continue;
        }
        let epoch = was.map_or(NO_EPOCH, |(_, e)| e);
        let (record_key, value) = (encode_key(t, *p), encode_value(*offset, epoch));
        let record = BaseRecord::to(&topic)
            .key(record_key.as_bytes())
            .payload(value.as_bytes());
        let ack = producer
            .send(record)
            .await
            .map_err(|e| fail(format!("cannot write the progress of {record_key}"), e))?;
        acks.push((record_key, ack));
        moved.push((key, was.map(|(at, _)| at)));
    }
    for (key, ack) in acks {
        InternalProducer::acknowledged(ack)
            .await
            .map_err(|e| fail(format!("writing the progress of {key} failed"), e))?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_with_dots_and_colons_free_topics() {
        let k = encode_key("orders.eu-1", 7);
        assert_eq!(
            decode(k.as_bytes(), Some(b"42")),
            Some((("orders.eu-1".to_string(), 7), 42, NO_EPOCH))
        );
        assert_eq!(
            decode(k.as_bytes(), Some(encode_value(42, 9).as_bytes())),
            Some((("orders.eu-1".to_string(), 7), 42, 9))
        );
        assert_eq!(decode(b"nonsense", Some(b"1")), None);
        assert_eq!(decode(b"t:1", None), None, "tombstones carry no progress");
    }
}
