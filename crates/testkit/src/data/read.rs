//! Reading partitions back as owned records.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{metadata_client, partition_count, Record, TIMEOUT};
use crate::client::{consumer_failure, ErrorCapture};
use crate::error::{HarnessError, Result};

/// Reads `partition` of `topic` from offset `from` up to, not including,
/// offset `to`, or with `to = None` up to the end of the partition as it is
/// when the reader gets there. Waits (up to [`TIMEOUT`]) for records below
/// `to` that have not arrived yet, so a test can wait for a replica to catch
/// up by reading it to the source's end offset.
///
/// The reader uses `config` as given (`isolation.level` included, which
/// librdkafka defaults to `read_committed`) plus its own settings: no group
/// membership, no commits, reset to earliest.
pub fn read_partition(
    config: &ClientConfig,
    topic: &str,
    partition: i32,
    from: i64,
    to: Option<i64>,
) -> Result<Vec<Record>> {
    if to.is_some_and(|to| from >= to) {
        return Ok(Vec::new());
    }
    let mut config = config.clone();
    if config.get("group.id").is_none() {
        // librdkafka refuses `assign` without a group id. The reader never
        // joins or commits, so the group leaves no state on the broker.
        config.set("group.id", "ferry-testkit-reader");
    }
    config
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The end of the partition is where the broker says so: past the
        // last record, past aborted records and transaction markers.
        .set("enable.partition.eof", "true")
        // At the end of the partition a fetch is answered only after this
        // wait (default 500 ms); tests read to the end all the time.
        .set("fetch.wait.max.ms", "20")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer<ErrorCapture> = config
        .create_with_context(ErrorCapture::default())
        .map_err(|e| HarnessError::kafka("cannot create a consumer", e))?;
    let what = format!("{topic:?} partition {partition}");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(from))
        .and_then(|()| consumer.assign(&assignment))
        .map_err(|e| consumer_failure(&consumer, format!("cannot read {what}"), e))?;

    let started = Instant::now();
    let mut records = Vec::new();
    let mut next = from;
    loop {
        if to.is_some_and(|to| next >= to) {
            return Ok(records);
        }
        if started.elapsed() > TIMEOUT {
            return Err(HarnessError::Timeout {
                what: format!(
                    "reading {what} from offset {from} to {}: got {} records, next offset {next}{}",
                    to.map_or("its end".to_string(), |to| to.to_string()),
                    records.len(),
                    consumer
                        .context()
                        .last()
                        .map(|e| format!(", last client error: {e}"))
                        .unwrap_or_default()
                ),
                waited: started.elapsed(),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Ok(message)) => {
                if to.is_some_and(|to| message.offset() >= to) {
                    return Ok(records);
                }
                next = message.offset() + 1;
                records.push(owned(&message));
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let Some(to) = to else {
                    return Ok(records);
                };
                // Offsets below `to` may be control records the consumer
                // never returns; its position tells whether it is past them.
                let position = consumer.position().ok().and_then(|positions| {
                    positions
                        .find_partition(topic, partition)
                        .map(|p| p.offset())
                });
                if let Some(Offset::Offset(position)) = position {
                    next = next.max(position);
                }
                if next >= to {
                    return Ok(records);
                }
            }
            Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                return Err(consumer_failure(
                    &consumer,
                    format!("cannot read {what}"),
                    e,
                ));
            }
            // Anything else (a broker going away, a leader change) librdkafka
            // retries by itself; the deadline bounds how long that may take.
            Some(Err(_)) => {}
        }
    }
}

/// Reads every partition of `topic` from its start to its current end; the
/// outer index is the partition.
///
/// The ends are taken first: reading "until the broker reports the end"
/// never finishes on a partition that another producer keeps writing,
/// because every fetch at the end finds a new record before its wait runs
/// out.
pub fn read_topic(config: &ClientConfig, topic: &str) -> Result<Vec<Vec<Record>>> {
    end_offsets(config, topic)?
        .into_iter()
        .enumerate()
        .map(|(partition, end)| read_partition(config, topic, partition as i32, 0, Some(end)))
        .collect()
}

/// The end offset (high watermark) of every partition of `topic`; the index
/// is the partition.
pub fn end_offsets(config: &ClientConfig, topic: &str) -> Result<Vec<i64>> {
    let consumer = metadata_client(config)?;
    (0..partition_count(config, topic)? as i32)
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, TIMEOUT)
                .map(|(_low, high)| high)
                .map_err(|e| {
                    consumer_failure(
                        &consumer,
                        format!("cannot get the end offset of {topic:?} partition {partition}"),
                        e,
                    )
                })
        })
        .collect()
}

fn owned(message: &BorrowedMessage<'_>) -> Record {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Record {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: message.timestamp(),
    }
}
