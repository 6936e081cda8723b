//! Cluster-side helpers the harness needs beyond `ferry-testkit`: creating
//! and deleting many topics at once, and reading the end offsets of many
//! partitions with one ListOffsets request per broker (polling 4,000
//! partitions one watermark request at a time would load the very broker
//! being measured).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::bail;
use crate::error::{Context, Result};

/// Upper bound of one admin or metadata request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Topics per CreateTopics/DeleteTopics request.
const ADMIN_CHUNK: usize = 200;

/// A client config for `bootstrap` (plaintext loopback brokers).
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    cfg
}

fn admin(config: &ClientConfig) -> Result<AdminClient<DefaultClientContext>> {
    config.create().context(|| "cannot create an admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT))
}

/// Creates `names` with `partitions` partitions each (replication factor 1)
/// and waits until metadata shows every partition led.
pub fn create_topics(config: &ClientConfig, names: &[String], partitions: i32) -> Result<()> {
    let admin = admin(config)?;
    for chunk in names.chunks(ADMIN_CHUNK) {
        let topics: Vec<NewTopic<'_>> = chunk
            .iter()
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
            .collect();
        let results = futures::executor::block_on(admin.create_topics(&topics, &admin_options()))
            .context(|| format!("cannot create {} topics", chunk.len()))?;
        for result in results {
            if let Err((name, code)) = result {
                if code != RDKafkaErrorCode::TopicAlreadyExists {
                    bail!("cannot create topic {name:?}: {code}");
                }
            }
        }
    }
    wait_for_topics(config, names, partitions)
}

/// Deletes the topics that exist among `names`.
pub fn delete_topics(config: &ClientConfig, names: &[String]) -> Result<()> {
    let admin = admin(config)?;
    for chunk in names.chunks(ADMIN_CHUNK) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let results = futures::executor::block_on(admin.delete_topics(&refs, &admin_options()))
            .context(|| format!("cannot delete {} topics", chunk.len()))?;
        for result in results {
            if let Err((name, code)) = result {
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    bail!("cannot delete topic {name:?}: {code}");
                }
            }
        }
    }
    Ok(())
}

fn wait_for_topics(config: &ClientConfig, names: &[String], partitions: i32) -> Result<()> {
    let client = Offsets::new(config)?;
    let started = Instant::now();
    loop {
        let topics = client.topics()?;
        let missing = names
            .iter()
            .filter(|n| topics.get(n.as_str()) != Some(&partitions))
            .count();
        if missing == 0 {
            return Ok(());
        }
        if started.elapsed() > REQUEST_TIMEOUT {
            bail!(
                "{missing} of {} new topics still have no led partitions after {REQUEST_TIMEOUT:?}",
                names.len()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads topic metadata and end offsets from one cluster.
pub struct Offsets {
    consumer: BaseConsumer,
}

impl Offsets {
    pub fn new(config: &ClientConfig) -> Result<Offsets> {
        let mut config = config.clone();
        config
            .set("group.id", "ferry-bench-offsets")
            .set("enable.auto.commit", "false");
        Ok(Offsets {
            consumer: config
                .create()
                .context(|| "cannot create a metadata client")?,
        })
    }

    /// Every topic with all partitions led: name → partition count.
    pub fn topics(&self) -> Result<BTreeMap<String, i32>> {
        let metadata = self
            .consumer
            .fetch_metadata(None, REQUEST_TIMEOUT)
            .context(|| "cannot fetch metadata")?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .filter(|t| t.partitions().iter().all(|p| p.leader() >= 0))
            .map(|t| (t.name().to_string(), t.partitions().len() as i32))
            .collect())
    }

    /// End offsets (high watermarks) of every partition of `topics`
    /// (name → partition count); the inner index is the partition.
    pub fn end_offsets(
        &self,
        topics: &BTreeMap<String, i32>,
    ) -> Result<BTreeMap<String, Vec<i64>>> {
        let mut list = TopicPartitionList::new();
        for (topic, &partitions) in topics {
            for p in 0..partitions {
                list.add_partition_offset(topic, p, Offset::End)
                    .context(|| format!("bad partition {topic}/{p}"))?;
            }
        }
        let mut out: BTreeMap<String, Vec<i64>> = topics
            .iter()
            .map(|(t, &n)| (t.clone(), vec![0; n as usize]))
            .collect();
        if list.count() == 0 {
            return Ok(out);
        }
        // ListOffsets with timestamp -1 (`Offset::End`) answers the latest
        // offset: one request per leader for all partitions.
        let answered = self
            .consumer
            .offsets_for_times(list, REQUEST_TIMEOUT)
            .context(|| "cannot list end offsets")?;
        for element in answered.elements() {
            if let (Offset::Offset(offset), Some(slots)) =
                (element.offset(), out.get_mut(element.topic()))
            {
                if let Some(slot) = slots.get_mut(element.partition() as usize) {
                    *slot = offset;
                }
            }
        }
        Ok(out)
    }

    /// End offsets of one topic.
    pub fn topic_end_offsets(&self, topic: &str, partitions: i32) -> Result<Vec<i64>> {
        let topics = BTreeMap::from([(topic.to_string(), partitions)]);
        Ok(self.end_offsets(&topics)?.remove(topic).unwrap_or_default())
    }
}
