//! Data helpers over rdkafka: names, topics, sequence-numbered records,
//! reading partitions back and comparing a topic with its replica.
//!
//! All functions block (with bounded waits, see [`TIMEOUT`]) and take the
//! [`ClientConfig`] of the cluster to talk to, e.g.
//! [`KafkaCluster::client_config`](crate::KafkaCluster::client_config).

mod compare;
mod producers;
mod read;
mod sequence;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Timestamp;

pub use compare::{compare_partitions, compare_records, CompareReport, PartitionReport};
pub use producers::Producers;
pub use read::{end_offsets, read_partition, read_topic};
pub use sequence::{produce_sequence, sequence_of, SequenceId, SequenceSpec};

use crate::client::{consumer_failure, ErrorCapture};
use crate::error::{HarnessError, Result};

/// How long one helper call may wait for the cluster (topic creation,
/// producing, reading to the end).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// One record, owned: what was produced or read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    /// `-1` until a broker has assigned one.
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// In order, repeated names kept; a `None` value is a null header value,
    /// which Kafka distinguishes from an empty one.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Timestamp,
}

impl Record {
    /// The sequence id this record carries, if it came from
    /// [`produce_sequence`].
    pub fn sequence(&self) -> Option<SequenceId> {
        sequence_of(self.key.as_deref(), self.value.as_deref())
    }

    /// Describes the first difference in what replication must preserve: key,
    /// value, headers (in order) and timestamp. Partition and offset are not
    /// compared; a replica may well have other offsets.
    pub fn content_diff(&self, other: &Record) -> Option<String> {
        if self.key != other.key {
            return Some(format!(
                "key {} != {}",
                show(self.key.as_deref()),
                show(other.key.as_deref())
            ));
        }
        if self.value != other.value {
            return Some(format!(
                "value {} != {}",
                show(self.value.as_deref()),
                show(other.value.as_deref())
            ));
        }
        if self.headers != other.headers {
            return Some(format!(
                "headers {} != {}",
                show_headers(&self.headers),
                show_headers(&other.headers)
            ));
        }
        if self.timestamp != other.timestamp {
            return Some(format!(
                "timestamp {:?} != {:?}",
                self.timestamp, other.timestamp
            ));
        }
        None
    }
}

/// Bytes as text when they are printable (sequence records are), otherwise
/// hex; long values are cut.
fn show(bytes: Option<&[u8]>) -> String {
    const MAX: usize = 64;
    let Some(bytes) = bytes else {
        return "null".into();
    };
    let cut = &bytes[..bytes.len().min(MAX)];
    let more = if bytes.len() > MAX { "..." } else { "" };
    match std::str::from_utf8(cut) {
        Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}{more}"),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

fn show_headers(headers: &[(String, Option<Vec<u8>>)]) -> String {
    let items: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k}={}", show(v.as_deref())))
        .collect();
    format!("[{}]", items.join(", "))
}

/// A topic or group name that no other test, test binary or earlier run on
/// the same cluster uses: `prefix` (invalid characters replaced by `-`), the
/// process id, a per-process counter and random bits.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix: String = prefix
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    format!(
        "{prefix}-{}-{}-{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

/// Creates a topic and waits until metadata shows every partition with a
/// leader. `replication` -1 takes the broker's default (1 on a single node, 3
/// on three); `configs` are topic configs such as `("cleanup.policy", "compact")`.
pub fn create_topic(
    config: &ClientConfig,
    name: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) -> Result<()> {
    let topic = configs.iter().fold(
        NewTopic::new(name, partitions, TopicReplication::Fixed(replication)),
        |topic, (key, value)| topic.set(key, value),
    );
    let context = format!("cannot create topic {name:?}");
    admin(config, &context, |admin, options| {
        futures::executor::block_on(admin.create_topics([&topic], options))
    })?;
    wait_for_partitions(config, name, partitions as usize)
}

/// Grows a topic to `total` partitions and waits until metadata shows them.
pub fn add_partitions(config: &ClientConfig, name: &str, total: usize) -> Result<()> {
    let partitions = NewPartitions::new(name, total);
    let context = format!("cannot grow topic {name:?} to {total} partitions");
    admin(config, &context, |admin, options| {
        futures::executor::block_on(admin.create_partitions([&partitions], options))
    })?;
    wait_for_partitions(config, name, total)
}

/// Runs one admin request for one topic and turns both the request's and the
/// topic's error into a [`HarnessError`].
fn admin(
    config: &ClientConfig,
    context: &str,
    request: impl FnOnce(
        &AdminClient<ErrorCapture>,
        &AdminOptions,
    ) -> std::result::Result<Vec<rdkafka::admin::TopicResult>, KafkaError>,
) -> Result<()> {
    let admin: AdminClient<ErrorCapture> = config
        .create_with_context(ErrorCapture::default())
        .map_err(|e| HarnessError::kafka("cannot create an admin client", e))?;
    let options = AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT));
    let results =
        request(&admin, &options).map_err(|e| admin.inner().context().fail(context, e))?;
    for result in results {
        if let Err((_, code)) = result {
            return Err(admin
                .inner()
                .context()
                .fail(context, KafkaError::AdminOp(code)));
        }
    }
    Ok(())
}

/// Waits until the cluster's metadata shows `name` with `partitions`
/// partitions, each with a leader, so that producing to it succeeds at once.
fn wait_for_partitions(config: &ClientConfig, name: &str, partitions: usize) -> Result<()> {
    let consumer = metadata_client(config)?;
    let started = Instant::now();
    let mut seen = String::from("nothing yet");
    while started.elapsed() < TIMEOUT {
        match consumer.fetch_metadata(Some(name), Duration::from_secs(5)) {
            Ok(metadata) => {
                if let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) {
                    let led = topic
                        .partitions()
                        .iter()
                        .filter(|p| p.leader() >= 0)
                        .count();
                    if topic.error().is_none() && led == partitions {
                        return Ok(());
                    }
                    seen = format!(
                        "{} partitions, {led} with a leader, error {:?}",
                        topic.partitions().len(),
                        topic.error()
                    );
                }
            }
            Err(e) => seen = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(HarnessError::Timeout {
        what: format!(
            "waiting for topic {name:?} to have {partitions} led partitions (last seen: {seen})"
        ),
        waited: started.elapsed(),
    })
}

/// The broker id leading a partition, e.g. to kill exactly that broker.
pub fn partition_leader(config: &ClientConfig, topic: &str, partition: i32) -> Result<i32> {
    with_topic_metadata(config, topic, |t| {
        t.partitions()
            .iter()
            .find(|p| p.id() == partition)
            .map(|p| p.leader())
            .filter(|leader| *leader >= 0)
            .ok_or_else(|| format!("partition {partition} has no leader"))
    })
}

/// Number of partitions of an existing topic.
pub fn partition_count(config: &ClientConfig, topic: &str) -> Result<usize> {
    with_topic_metadata(config, topic, |t| Ok(t.partitions().len()))
}

fn with_topic_metadata<T>(
    config: &ClientConfig,
    topic: &str,
    pick: impl FnOnce(&rdkafka::metadata::MetadataTopic) -> std::result::Result<T, String>,
) -> Result<T> {
    let consumer = metadata_client(config)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(|e| consumer_failure(&consumer, format!("no metadata for topic {topic:?}"), e))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .ok_or_else(|| format!("topic {topic:?} does not exist"))
        .and_then(pick);
    found.map_err(|why| HarnessError::Usage(format!("{why} (topic {topic:?})")))
}

fn metadata_client(config: &ClientConfig) -> Result<BaseConsumer<ErrorCapture>> {
    config
        .create_with_context(ErrorCapture::default())
        .map_err(|e| HarnessError::kafka("cannot create a Kafka client", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_valid_topic_names() {
        let a = unique_name("repl test/1");
        let b = unique_name("repl test/1");
        assert_ne!(a, b);
        assert!(a.starts_with("repl-test-1-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)));
    }

    #[test]
    fn show_prints_text_or_hex() {
        assert_eq!(show(None), "null");
        assert_eq!(show(Some(b"p1:s2:")), "\"p1:s2:\"");
        assert_eq!(show(Some(&[0, 255])), "0x00ff");
    }
}
