//! Taking a flow over from MirrorMaker 2: where it stopped copying, read
//! from its Connect offsets topic.

use std::collections::HashMap;
use std::time::Duration;

use ferry_config::{Cluster, Flow, Mm2Offsets};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::readers::read_topic_blocking;
use super::READ_TIMEOUT;
use crate::clients::{client_config, ClusterContext, Role};
use crate::{topics, EngineError};

/// One position MirrorMaker 2's source task stored for a source partition.
#[derive(Debug, PartialEq, Eq)]
struct Mm2Position {
    /// The source topic and partition.
    partition: (String, i32),
    /// The last offset it copied; `None` for a tombstone (forgotten).
    last_copied: Option<i64>,
}

/// One record of a Connect offsets topic, if it is a position of
/// `connector` (Connect keys each position `[connector name, partition]`)
/// for a partition of `source_alias`, as MirrorMaker 2's source task writes
/// it.
fn parse_mm2_offset(
    connector: &str,
    source_alias: &str,
    key: &[u8],
    value: Option<&[u8]>,
) -> Option<Mm2Position> {
    let key: serde_json::Value = serde_json::from_slice(key).ok()?;
    let [namespace, partition] = key.as_array()?.as_slice() else {
        return None;
    };
    if namespace.as_str()? != connector || partition.get("cluster")?.as_str()? != source_alias {
        return None;
    }
    let topic = partition.get("topic")?.as_str()?.to_string();
    let number = i32::try_from(partition.get("partition")?.as_i64()?).ok()?;
    let offset = match value {
        None => None,
        Some(v) => Some(
            serde_json::from_slice::<serde_json::Value>(v)
                .ok()?
                .get("offset")?
                .as_i64()?,
        ),
    };
    Some(Mm2Position {
        partition: (topic, number),
        last_copied: offset,
    })
}

/// Where MirrorMaker 2 stopped copying, per source partition of this flow:
/// the next source offset to copy (MM2 stores its last copied record and
/// resumes one past it). Read from the Connect offsets topic the flow's
/// `mm2_offsets` names (by default the one MM2's dedicated mode keeps on the
/// target), held by `offsets_cluster`, so Ferry can take a flow over from
/// MM2 without copying again what MM2 copied. Only partitions whose target
/// topic, under this flow's naming, already holds records count: a naming
/// mismatch must never make Ferry skip data. Empty when MM2 never ran.
pub async fn mm2_resume_positions(
    flow: &Flow,
    offsets_cluster: &Cluster,
    target: &Cluster,
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    let (flow, offsets_cluster, target) = (flow.clone(), offsets_cluster.clone(), target.clone());
    let Mm2Offsets {
        topic, connector, ..
    } = flow.mm2_offsets.clone();
    tokio::task::spawn_blocking(move || {
        let mut positions: HashMap<(String, i32), i64> = HashMap::new();
        let what = format!("cannot read MirrorMaker 2's offsets (connector {connector})");
        read_topic_blocking(&offsets_cluster, &topic, READ_TIMEOUT, &what, |msg| {
            if let Some(position) = msg
                .key()
                .and_then(|k| parse_mm2_offset(&connector, &flow.source, k, msg.payload()))
            {
                match position.last_copied {
                    Some(o) => positions.insert(position.partition, o + 1),
                    None => positions.remove(&position.partition),
                };
            }
        })?;
        if positions.is_empty() {
            return Ok(positions);
        }
        let reader: BaseConsumer<ClusterContext> =
            client_config(&target, Role::Reader, "ferry-handover")
                .create_with_context(ClusterContext::new(&target))
                .inspect(crate::clients::serve_token_refresh)
                .map_err(|e| EngineError::client_creation(&target, &e))?;
        positions.retain(|(t, p), next| {
            let remote = flow.remote_topic(t);
            let copied = reader
                .fetch_watermarks(&remote, *p, Duration::from_secs(15))
                .is_ok_and(|(_, high)| high > 0);
            if copied && topics::selects(&flow, t) {
                tracing::info!(
                    topic = %t, partition = p, resume_at = *next, target_topic = %remote,
                    connector = %connector, offsets_topic = %topic,
                    "taking over from MirrorMaker 2: it copied this partition up to here"
                );
            }
            copied
        });
        Ok(positions)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("MirrorMaker 2 offsets reader failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mm2_connect_offsets_are_parsed_for_this_source_only() {
        const DEDICATED: &str = Mm2Offsets::DEDICATED_CONNECTOR;
        let position = |topic: &str, partition, last_copied| {
            Some(Mm2Position {
                partition: (topic.to_string(), partition),
                last_copied,
            })
        };
        let key = br#"["MirrorSourceConnector",{"cluster":"a","partition":3,"topic":"orders"}]"#;
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", key, Some(br#"{"offset":41}"#)),
            position("orders", 3, Some(41))
        );
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", key, None),
            position("orders", 3, None)
        );
        assert_eq!(
            parse_mm2_offset(DEDICATED, "b", key, Some(br#"{"offset":41}"#)),
            None
        );
        let checkpoint_connector =
            br#"["MirrorCheckpointConnector",{"cluster":"a","partition":3,"topic":"orders"}]"#;
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", checkpoint_connector, Some(b"{}")),
            None
        );
        assert_eq!(parse_mm2_offset(DEDICATED, "a", b"not json", None), None);
        assert_eq!(parse_mm2_offset(DEDICATED, "a", key, Some(b"{}")), None);
        // MM2 hosted in Connect: the key names the connector as created.
        let hosted = br#"["mm2-src",{"cluster":"a","partition":0,"topic":"orders"}]"#;
        assert_eq!(
            parse_mm2_offset("mm2-src", "a", hosted, Some(br#"{"offset":7}"#)),
            position("orders", 0, Some(7))
        );
        assert_eq!(
            parse_mm2_offset(DEDICATED, "a", hosted, Some(br#"{"offset":7}"#)),
            None
        );
        assert_eq!(
            parse_mm2_offset("mm2-src", "a", key, Some(br#"{"offset":7}"#)),
            None
        );
    }
}
