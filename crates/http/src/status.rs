//! The `/status` document, typed: the engine builds it, the server serves it,
//! and `ferry status` and `ferry cutover` read it back with the same types,
//! so a renamed or retyped field fails to compile or to parse instead of
//! showing up as `?` on the reading side.
//!
//! Every struct declares its fields in alphabetical order, so the keys come
//! out sorted as a JSON map's would: readers that diff or hash the document
//! see a stable order. Optional values are written as `null`, never left
//! out.

use serde::{Deserialize, Serialize};

/// `GET /status`: the engine's part ([`EngineDocument`]) plus what the HTTP
/// side knows, readiness and the version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    /// SHA-256 of the running topology file.
    pub config_digest: String,
    /// One entry per flow of the running topology, by flow name.
    pub flows: Vec<FlowDocument>,
    /// What `/health/ready` answers: every flow running and not draining.
    pub ready: bool,
    /// The daemon's version.
    pub version: String,
}

impl StatusDocument {
    /// The engine's document with the HTTP side's readiness and version.
    pub fn new(engine: EngineDocument, ready: bool) -> StatusDocument {
        StatusDocument {
            config_digest: engine.config_digest,
            flows: engine.flows,
            ready,
            version: crate::VERSION.to_string(),
        }
    }

    /// The flow named `flow` (`source->target`), if the daemon runs it.
    pub fn flow(&self, flow: &str) -> Option<&FlowDocument> {
        self.flows.iter().find(|f| f.flow == flow)
    }
}

/// What the engine reports for `/status` ([`EngineView::status`](crate::EngineView::status)):
/// the document without the HTTP side's fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineDocument {
    /// SHA-256 of the running topology file.
    pub config_digest: String,
    /// One entry per flow.
    pub flows: Vec<FlowDocument>,
}

/// One flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowDocument {
    /// Topics handed over to the target, which the flow no longer copies.
    pub cut_over: Vec<CutOverDocument>,
    /// How records reach the target; `None` until the flow started.
    #[serde(default)]
    pub delivery: Option<DeliveryDocument>,
    /// The flow's name, `source->target`.
    pub flow: String,
    /// Why the flow last failed, naming cluster, topic, partition and cause.
    pub last_error: Option<String>,
    /// This process's place in the flow's consumer group; `None` until it
    /// joined.
    #[serde(default)]
    pub membership: Option<MembershipDocument>,
    /// `state == "running"`.
    pub running: bool,
    /// `starting`, `running`, `draining`, `stopped` or `retrying`.
    pub state: String,
    /// The topics it replicates, by source topic name.
    pub topics: Vec<TopicDocument>,
    /// What the operator must act on, per partition.
    pub warnings: Vec<WarningDocument>,
}

/// A flow's delivery guarantee and, under exactly-once, its transactions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryDocument {
    /// Under exactly-once: when this process last committed a transaction
    /// of the flow (RFC 3339), `None` before its first commit.
    pub last_commit: Option<String>,
    /// `at-least-once` or `exactly-once` (`flows[].delivery`).
    pub mode: String,
    /// Under exactly-once: seconds since that commit.
    pub seconds_since_commit: Option<f64>,
    /// Under exactly-once: `flows[].transaction_interval` in milliseconds.
    pub transaction_interval_ms: Option<u64>,
}

/// A process's share of a flow: the slots its group assigned it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MembershipDocument {
    /// The group's generation when this process last joined, if known.
    pub generation: Option<i32>,
    /// The flow's consumer group, `<prefix>.<source>-<target>`.
    pub group: String,
    /// This process's member id in the group.
    pub member_id: String,
    /// Every member the coordinator last described, this one included.
    pub members: Vec<MemberDocument>,
    /// Source partitions in the slots this process owns.
    pub partitions: usize,
    /// Rebalances this process went through.
    pub rebalances: u64,
    /// Seconds since this process's slots last changed.
    pub seconds_since_rebalance: f64,
    /// The slots this process owns, in order.
    pub slots: Vec<SlotDocument>,
    /// The flow's slot count (`flows[].slots`).
    pub slots_total: u16,
    /// True while another member runs a different topology file.
    pub topology_mismatch: bool,
}

/// One slot this process owns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotDocument {
    /// The slot's epoch: the offset of this owner's claim in the slots
    /// topic, higher for every later owner.
    pub epoch: i64,
    /// Source partitions of the slot this process copies.
    pub partitions: usize,
    /// The slot's number.
    pub slot: u16,
}

/// Another process of the flow's group (or this one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberDocument {
    /// `ferry-<first 12 hex digits of its topology digest>`.
    pub client_id: String,
    /// Where the coordinator sees it connect from.
    pub host: String,
    /// Its member id.
    pub member_id: String,
    /// The slots the coordinator assigned it.
    pub slots: Vec<u16>,
}

/// One replicated topic of a flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicDocument {
    /// Key + value + header bytes the target acknowledged since the start.
    pub bytes_replicated: u64,
    /// The topic's last error, naming cluster, topic, partition and cause.
    pub last_error: Option<String>,
    /// Per source partition assigned to this process.
    pub partition_status: Vec<PartitionDocument>,
    /// The source topic's partition count.
    pub partitions: i32,
    /// Records the target acknowledged since the start.
    pub records_replicated: u64,
    /// Refused records resolved by `on_record_error`.
    pub records_skipped: u64,
    /// Restarts of the topic's task after a failure.
    pub restarts: u64,
    /// The topic it is copied to on the target.
    pub target_topic: String,
    /// The source topic.
    pub topic: String,
}

/// One source partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionDocument {
    /// Why the partition stopped: `offset <n>: <cause>`.
    pub error: Option<String>,
    /// Records produced and not yet acknowledged.
    pub in_flight: Option<u64>,
    /// Source end offset minus the next offset to copy.
    pub lag_records: i64,
    /// Source offset of the last refused record resolved by `on_record_error`.
    pub last_skipped_offset: Option<i64>,
    /// The next source offset to copy if the process stopped now.
    pub next_source_offset: Option<i64>,
    /// The source partition.
    pub partition: i32,
    /// Refused records resolved by `on_record_error`.
    pub records_skipped: u64,
}

/// Something about a partition the operator must act on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarningDocument {
    /// True when nothing of the partition is copied.
    pub held: bool,
    /// A fixed word: `deleted-before-copy`, `progress-beyond-log-end`, ...
    pub kind: String,
    /// Names the cluster, topic, partition and offsets.
    pub message: String,
    /// The source partition.
    pub partition: i32,
    /// The source topic.
    pub topic: String,
}

/// A topic handed over to the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CutOverDocument {
    /// When, RFC 3339 in UTC.
    pub at: String,
    /// What stopped it (`ferry cutover`, a control request).
    pub by: String,
    /// The flow, `source->target`.
    pub flow: String,
    /// The source topic.
    pub topic: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> StatusDocument {
        StatusDocument {
            config_digest: "3f1c".into(),
            flows: vec![FlowDocument {
                cut_over: vec![CutOverDocument {
                    at: "2026-01-02T03:04:05Z".into(),
                    by: "ferry cutover".into(),
                    flow: "src->dst".into(),
                    topic: "invoices".into(),
                }],
                flow: "src->dst".into(),
                last_error: Some("cluster dst: unreachable".into()),
                membership: Some(MembershipDocument {
                    generation: Some(4),
                    group: "ferry.src-dst".into(),
                    member_id: "rdkafka-1".into(),
                    members: vec![MemberDocument {
                        client_id: "ferry-3f1c00000000".into(),
                        host: "/127.0.0.1".into(),
                        member_id: "rdkafka-1".into(),
                        slots: vec![0, 5],
                    }],
                    partitions: 3,
                    rebalances: 2,
                    seconds_since_rebalance: 1.5,
                    slots: vec![SlotDocument {
                        epoch: 7,
                        partitions: 2,
                        slot: 0,
                    }],
                    slots_total: 16,
                    topology_mismatch: false,
                }),
                delivery: Some(DeliveryDocument {
                    mode: "exactly-once".into(),
                    transaction_interval_ms: Some(100),
                    last_commit: Some("2026-01-02T03:04:05.678Z".into()),
                    seconds_since_commit: Some(0.25),
                }),
                running: false,
                state: "retrying".into(),
                topics: vec![TopicDocument {
                    bytes_replicated: 500,
                    last_error: None,
                    partition_status: vec![
                        PartitionDocument {
                            error: Some("offset 10: too large".into()),
                            in_flight: Some(2),
                            lag_records: 4,
                            last_skipped_offset: Some(8),
                            next_source_offset: Some(10),
                            partition: 1,
                            records_skipped: 2,
                        },
                        PartitionDocument::default(),
                    ],
                    partitions: 2,
                    records_replicated: 5,
                    records_skipped: 2,
                    restarts: 1,
                    target_topic: "src.orders".into(),
                    topic: "orders".into(),
                }],
                warnings: vec![WarningDocument {
                    held: true,
                    kind: "deleted-before-copy".into(),
                    message: "cluster src: payments[0] starts at 40".into(),
                    partition: 0,
                    topic: "payments".into(),
                }],
            }],
            ready: true,
            version: crate::VERSION.into(),
        }
    }

    #[test]
    fn a_full_document_survives_the_wire() {
        let doc = full();
        let text = serde_json::to_string(&doc).unwrap();
        assert_eq!(serde_json::from_str::<StatusDocument>(&text).unwrap(), doc);
    }

    #[test]
    fn absent_values_are_null_not_missing() {
        let value = serde_json::to_value(full()).unwrap();
        let partition = &value["flows"][0]["topics"][0]["partition_status"][1];
        for key in [
            "error",
            "in_flight",
            "last_skipped_offset",
            "next_source_offset",
        ] {
            assert_eq!(partition.get(key), Some(&serde_json::Value::Null), "{key}");
        }
        assert_eq!(
            value["flows"][0]["topics"][0].get("last_error"),
            Some(&serde_json::Value::Null)
        );
    }

    #[test]
    fn fields_are_serialized_in_the_order_a_json_map_sorts_them() {
        // A map sorts its keys: the struct order must equal it at every level.
        let text = serde_json::to_string(&full()).unwrap();
        let as_map: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, serde_json::to_string(&as_map).unwrap());
    }

    #[test]
    fn a_renamed_field_is_an_error_not_a_default() {
        let mut value = serde_json::to_value(full()).unwrap();
        let flow = value["flows"][0].as_object_mut().unwrap();
        let state = flow.remove("state").unwrap();
        flow.insert("phase".into(), state);
        let err = serde_json::from_value::<StatusDocument>(value).unwrap_err();
        assert!(err.to_string().contains("missing field `state`"), "{err}");
    }

    #[test]
    fn flow_finds_a_flow_by_name() {
        let doc = full();
        assert_eq!(doc.flow("src->dst").map(|f| f.topics.len()), Some(1));
        assert!(doc.flow("src->dr").is_none());
    }
}
