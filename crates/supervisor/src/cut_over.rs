//! The cut-over store: source topics a flow no longer replicates because
//! `ferry cutover` (or a `POST /control/stop-topics`) handed them over to
//! the target. Like the progress, it lives on the *target* in a compacted
//! topic, so a restarted daemon keeps those topics stopped; only
//! `ferry resume-topics` (a tombstone) undoes a cutover.
//!
//! Record format (human-readable for `kafka-console-consumer`): key
//! `"<SOURCE->TARGET>:<source topic>"` (topic names cannot contain ':'),
//! value JSON `{"flow", "topic", "at", "by"}`; a tombstone removes the key.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use ferry_config::{Cluster, FlowId};
use rdkafka::error::KafkaError;
use rdkafka::producer::BaseRecord;
use serde::{Deserialize, Serialize};

use crate::internal::InternalProducer;
use crate::{EngineError, Place};

/// How long reading the store may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a write may wait for the target's acknowledgements: within the
/// daemon's 60 s answer to a control request, so a target that does not
/// answer fails the request instead of timing it out.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The cut-over topic for flows from `source` onto a target.
pub fn cut_over_topic(source_alias: &str) -> String {
    format!("ferry-cutover.{source_alias}.internal")
}

/// One cut-over topic: when and by what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutOver {
    /// The flow's id (`source->target`); one cut-over topic serves every
    /// flow from the same source onto the target.
    pub flow: String,
    /// The source topic no longer replicated.
    pub topic: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// What stopped it (`ferry cutover`, a control request).
    pub by: String,
}

/// A flow's cut-over topics, by source topic name.
pub type CutOverTopics = BTreeMap<String, CutOver>;

fn encode_key(flow: &FlowId, topic: &str) -> String {
    format!("{flow}:{topic}")
}

/// The (flow, topic) of a key.
fn decode_key(key: &[u8]) -> Option<(&str, &str)> {
    std::str::from_utf8(key).ok()?.rsplit_once(':')
}

/// Applies one record of the store to `topics` (those of `flow`).
fn apply(topics: &mut CutOverTopics, flow: &str, key: &[u8], value: Option<&[u8]>) {
    let Some((key_flow, topic)) = decode_key(key) else {
        return;
    };
    if key_flow != flow {
        return;
    }
    match value.map(serde_json::from_slice::<CutOver>) {
        None => {
            topics.remove(topic);
        }
        Some(Ok(entry)) => {
            topics.insert(topic.to_string(), entry);
        }
        // Unreadable values are not a cutover Ferry wrote; the key still
        // says the topic was handed over, so it stays stopped.
        Some(Err(_)) => {
            topics.insert(
                topic.to_string(),
                CutOver {
                    flow: flow.to_string(),
                    topic: topic.to_string(),
                    at: "?".into(),
                    by: "?".into(),
                },
            );
        }
    }
}

/// A failure of the store known only as text: an acknowledgement that does
/// not come in time.
fn store_error(target: &Cluster, flow: &FlowId, cause: String) -> EngineError {
    EngineError::Topic {
        cluster: target.name.clone(),
        topic: cut_over_topic(&flow.source),
        cause,
    }
}

/// The cut-over topics of `flow`, read from its target. A missing store
/// means none.
pub async fn load(target: &Cluster, flow: &FlowId) -> Result<CutOverTopics, EngineError> {
    let (cluster, id) = (target.clone(), flow.clone());
    tokio::task::spawn_blocking(move || {
        let name = id.to_string();
        let mut topics = CutOverTopics::new();
        crate::progress::read_compacted(
            &cluster,
            &cut_over_topic(&id.source),
            "ferry-cutover-loader",
            READ_TIMEOUT,
            "cannot read cut-over state",
            |key, value| apply(&mut topics, &name, key, value),
        )?;
        Ok(topics)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("cut-over loader panicked: {e}")))?
}

/// Persists `topics` as cut over in `flow` and returns what was written,
/// once the target acknowledged every record.
pub async fn record(
    target: &Cluster,
    flow: &FlowId,
    topics: &[String],
    by: &str,
    replication: Option<i32>,
) -> Result<CutOverTopics, EngineError> {
    let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let entries: CutOverTopics = topics
        .iter()
        .map(|t| {
            let entry = CutOver {
                flow: flow.to_string(),
                topic: t.clone(),
                at: at.clone(),
                by: by.to_string(),
            };
            (t.clone(), entry)
        })
        .collect();
    let values: Vec<(String, Option<Vec<u8>>)> = entries
        .values()
        .map(|e| {
            let value = serde_json::to_vec(e).expect("plain strings serialize");
            (e.topic.clone(), Some(value))
        })
        .collect();
    write(target, flow, &values, replication).await?;
    Ok(entries)
}

/// Removes `topics` from `flow`'s cut-over state (tombstones), once the
/// target acknowledged every tombstone.
pub async fn remove(
    target: &Cluster,
    flow: &FlowId,
    topics: &[String],
    replication: Option<i32>,
) -> Result<(), EngineError> {
    let tombstones: Vec<(String, Option<Vec<u8>>)> =
        topics.iter().map(|t| (t.clone(), None)).collect();
    write(target, flow, &tombstones, replication).await
}

/// Writes one record per topic (`None`: a tombstone) and waits for every
/// acknowledgement; the first failure is the error.
async fn write(
    target: &Cluster,
    flow: &FlowId,
    records: &[(String, Option<Vec<u8>>)],
    replication: Option<i32>,
) -> Result<(), EngineError> {
    let topic = cut_over_topic(&flow.source);
    // The same admin client as every other of the target's (MSK IAM tokens
    // included).
    let admin = crate::clients::admin(target, "ferry-cutover")
        .map_err(|e| EngineError::client_creation_for(target, &topic, &e))?;
    crate::topics::ensure_internal_topic(&admin, &target.name, &topic, replication).await?;
    let producer = InternalProducer::new(target, "ferry-cutover")?;
    let write_failed = |source_topic: &str, e: KafkaError| {
        EngineError::request(
            Place::topic(&target.name, &topic),
            format!("writing {source_topic} failed"),
            e,
        )
    };
    let mut pending = Vec::with_capacity(records.len());
    for (source_topic, value) in records {
        let key = encode_key(flow, source_topic);
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&topic).key(key.as_bytes());
        if let Some(value) = value {
            record = record.payload(value.as_slice());
        }
        let ack = producer
            .send(record)
            .await
            .map_err(|e| write_failed(source_topic, e))?;
        pending.push((source_topic, ack));
    }
    let acknowledged = async {
        for (source_topic, ack) in pending {
            InternalProducer::acknowledged(ack)
                .await
                .map_err(|e| write_failed(source_topic, e))?;
        }
        Ok(())
    };
    tokio::time::timeout(WRITE_TIMEOUT, acknowledged)
        .await
        .map_err(|_| {
            store_error(
                target,
                flow,
                format!("no acknowledgement within {WRITE_TIMEOUT:?}"),
            )
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(topic: &str) -> Vec<u8> {
        serde_json::to_vec(&CutOver {
            flow: "a->b".into(),
            topic: topic.into(),
            at: "2026-01-01T00:00:00Z".into(),
            by: "ferry cutover".into(),
        })
        .unwrap()
    }

    #[test]
    fn records_of_other_flows_are_ignored_and_tombstones_undo() {
        let flow: FlowId = "a->b".parse().unwrap();
        let mut topics = CutOverTopics::new();
        let orders = encode_key(&flow, "orders.v1");
        apply(
            &mut topics,
            "a->b",
            orders.as_bytes(),
            Some(&entry("orders.v1")),
        );
        apply(
            &mut topics,
            "a->b",
            b"a->c:payments",
            Some(&entry("payments")),
        );
        apply(&mut topics, "a->b", b"a->b:clicks", Some(b"not json"));
        assert_eq!(
            topics.keys().collect::<Vec<_>>(),
            ["clicks", "orders.v1"],
            "other flows are not ours; unreadable values still stop the topic"
        );
        assert_eq!(topics["orders.v1"].by, "ferry cutover");
        apply(&mut topics, "a->b", orders.as_bytes(), None);
        assert_eq!(topics.keys().collect::<Vec<_>>(), ["clicks"]);
    }
}
