//! The size phase: the average record size of each topic, sampled at the
//! start of its largest backlog, turns record counts into bytes.

use std::collections::HashMap;
use std::time::Duration;

use ferry_config::Cluster;
use rdkafka::message::{Headers, Message};

use super::{Backlog, TopicPlan, SAMPLE_RECORDS};
use crate::records::reader::{range_consumer, RangeReader};

/// Where a topic's record sizes are sampled: `[start, end)` of one
/// partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePick {
    pub topic: String,
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// One pick per topic with a backlog: the partition with the most records
/// to copy (the lowest-numbered one among equals), from where copying
/// would start.
pub fn sample_picks(topics: &[TopicPlan]) -> Vec<SamplePick> {
    topics
        .iter()
        .filter_map(|t| {
            let b = t
                .partition_backlog
                .iter()
                .filter(|b| b.records > 0)
                .max_by_key(|b| (b.records, std::cmp::Reverse(b.partition)))?;
            Some(SamplePick {
                topic: t.source_topic.clone(),
                partition: b.partition,
                start: b.start,
                end: b.end,
            })
        })
        .collect()
}

/// Sets each topic's average record size from `sizes` (by source topic;
/// unsampled topics count 0 bytes), and its partitions' and its own
/// backlog in bytes. Returns the flow's whole backlog.
pub fn apply_sizes(topics: &mut [TopicPlan], sizes: &HashMap<String, f64>) -> Backlog {
    let mut total = Backlog::default();
    for t in topics {
        t.avg_record_bytes = sizes.get(&t.source_topic).copied();
        let avg = t.avg_record_bytes.unwrap_or(0.0);
        for b in &mut t.partition_backlog {
            b.bytes = (b.records as f64 * avg).round() as u64;
            t.backlog.records += b.records;
            t.backlog.bytes += b.bytes;
        }
        total.records += t.backlog.records;
        total.bytes += t.backlog.bytes;
    }
    total
}

/// Size of a record as counted for the backlog: key, value, header keys and
/// values.
fn record_bytes<M: Message>(m: &M) -> u64 {
    let mut bytes = (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
    if let Some(h) = m.headers() {
        bytes += (0..h.count())
            .filter_map(|i| h.try_get(i))
            .map(|h| (h.key.len() + h.value.map_or(0, <[u8]>::len)) as u64)
            .sum::<u64>();
    }
    bytes
}

/// Average record size per topic, from up to [`SAMPLE_RECORDS`] records at
/// each pick. Topics that cannot be sampled are left out (logged).
pub async fn sample_sizes(cluster: &Cluster, picks: Vec<SamplePick>) -> HashMap<String, f64> {
    if picks.is_empty() {
        return HashMap::new();
    }
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = HashMap::new();
        let consumer = match range_consumer(&cluster, "ferry-plan") {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sample record sizes");
                return out;
            }
        };
        for pick in picks {
            let end = pick.end.min(pick.start + SAMPLE_RECORDS);
            let sampled = (|| -> Result<Option<f64>, String> {
                let mut reader =
                    RangeReader::new(&consumer, &pick.topic, pick.partition, pick.start, end)?
                        .with_stall_timeout(Duration::from_secs(15));
                let (mut n, mut bytes) = (0u64, 0u64);
                while let Some(m) = reader.next_record()? {
                    n += 1;
                    bytes += record_bytes(&m);
                }
                Ok((n > 0).then(|| bytes as f64 / n as f64))
            })();
            match sampled {
                Ok(Some(avg)) => {
                    out.insert(pick.topic, avg);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(cluster = %cluster.name, topic = pick.topic, partition = pick.partition, error = %e, "cannot sample record sizes")
                }
            }
        }
        out
    })
    .await
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::tests::topic_plan;
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    #[test]
    fn each_topic_is_sampled_at_its_largest_backlog() {
        let topics = vec![
            topic_plan("orders", &[(0, 5, 10), (1, 0, 30), (2, 0, 30)]),
            topic_plan("idle", &[(0, 10, 10)]),
        ];
        assert_eq!(
            sample_picks(&topics),
            vec![SamplePick {
                topic: "orders".into(),
                partition: 1,
                start: 0,
                end: 30
            }]
        );
    }

    #[test]
    fn sizes_turn_records_into_bytes_per_partition_topic_and_flow() {
        let mut topics = vec![
            topic_plan("orders", &[(0, 0, 3), (1, 0, 1)]),
            topic_plan("unsampled", &[(0, 0, 7)]),
        ];
        let total = apply_sizes(&mut topics, &HashMap::from([("orders".to_string(), 2.5)]));
        let orders = &topics[0];
        assert_eq!(orders.avg_record_bytes, Some(2.5));
        let bytes: Vec<u64> = orders.partition_backlog.iter().map(|b| b.bytes).collect();
        assert_eq!(bytes, vec![8, 3], "rounded per partition");
        assert_eq!(
            orders.backlog,
            Backlog {
                records: 4,
                bytes: 11
            }
        );
        assert_eq!(topics[1].avg_record_bytes, None);
        assert_eq!(
            total,
            Backlog {
                records: 11,
                bytes: 11
            }
        );
    }

    #[test]
    fn a_record_counts_key_value_and_headers() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ab",
                value: Some(b"xyz"),
            })
            .insert(Header {
                key: "n",
                value: None::<&[u8]>,
            });
        let m = OwnedMessage::new(
            Some(b"value".to_vec()),
            Some(b"k".to_vec()),
            "t".into(),
            Timestamp::CreateTime(1),
            0,
            0,
            Some(headers),
        );
        assert_eq!(record_bytes(&m), 1 + 5 + 2 + 3 + 1);
    }
}
