//! Reading a partition back and comparing source with target, record by
//! record: key, value, headers in order, and timestamp. Used by `ferry demo`
//! today and by `ferry verify` as it grows.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use ferry_config::Cluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{client_config, ClusterContext, Role};
use crate::EngineError;

/// Order-sensitive digest of a partition's records plus their count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionDigest {
    pub records: u64,
    pub digest: u64,
}

/// Reads `topic`/`partition` from its log start to its current end and
/// digests every record (skipping Ferry's own provenance header, which the
/// source never has). Blocking: call from a blocking thread.
pub fn digest_partition(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<PartitionDigest, EngineError> {
    let fail = |cause: String| EngineError::Partition {
        cluster: cluster.name.clone(),
        topic: topic.to_string(),
        partition,
        cause,
    };
    let consumer: BaseConsumer<ClusterContext> =
        client_config(cluster, Role::Reader, "ferry-verify")
            .create_with_context(ClusterContext::new(cluster))
            .map_err(|e| fail(e.to_string()))?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, timeout)
        .map_err(|e| fail(format!("cannot read watermarks: {e}")))?;
    let mut hasher = DefaultHasher::new();
    let mut records = 0u64;
    if high > low {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(low))
            .map_err(|e| fail(e.to_string()))?;
        consumer.assign(&tpl).map_err(|e| fail(e.to_string()))?;
        let deadline = Instant::now() + timeout;
        loop {
            if Instant::now() > deadline {
                return Err(fail(format!("timed out reading up to offset {high}")));
            }
            let Some(res) = consumer.poll(Duration::from_millis(200)) else {
                // With read_committed the last offsets may be transaction
                // markers that are never returned; the position tells.
                let done = consumer
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, partition).map(|e| e.offset()))
                    .is_some_and(|o| matches!(o, Offset::Offset(o) if o >= high));
                if done {
                    break;
                }
                continue;
            };
            let msg = res.map_err(|e| fail(e.to_string()))?;
            msg.key().hash(&mut hasher);
            msg.payload().hash(&mut hasher);
            msg.timestamp().to_millis().hash(&mut hasher);
            if let Some(h) = msg.headers() {
                for header in h.iter().filter(|h| h.key != crate::PROVENANCE_HEADER) {
                    header.key.hash(&mut hasher);
                    header.value.hash(&mut hasher);
                }
            }
            records += 1;
            if msg.offset() + 1 >= high {
                break;
            }
        }
    }
    Ok(PartitionDigest {
        records,
        digest: hasher.finish(),
    })
}
