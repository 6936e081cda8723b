//! The engine as the HTTP crate sees it: samples read from atomics at scrape
//! time, readiness, and the `/status` document. Nothing here blocks or takes
//! a lock for longer than a copy.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferry_config::FlowId;
use ferry_http::{
    CutOverDocument, EngineDocument, EngineView, FlowDocument, PartitionDocument, PartitionSample,
    TopicDocument, TopicSample, WarningDocument,
};

use crate::clock::now_ms;
use crate::status::{EngineStatus, FlowState, FlowStatus};

/// Adapts `EngineStatus` to `ferry_http::EngineView`.
pub struct StatusView(pub Arc<EngineStatus>);

/// Per topic: (lag records, lag seconds). Lag seconds is the age of the last
/// acknowledged record while anything is behind: an upper bound on the age
/// of the oldest record not yet copied, so alerts err on the early side.
fn topic_lag(flow: &crate::FlowStatus) -> BTreeMap<String, (u64, f64)> {
    let now = now_ms();
    let mut out: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for ((topic, partition), lag) in flow.lag() {
        let entry = out.entry(topic.clone()).or_default();
        entry.0 += lag as u64;
        if lag > 0 {
            if let Some(slot) = flow.slot(&topic, partition) {
                let ts = slot.last_timestamp_ms.load(Ordering::Relaxed);
                if ts >= 0 {
                    entry.1 = entry.1.max((now - ts).max(0) as f64 / 1000.0);
                }
            }
        }
    }
    out
}

impl EngineView for StatusView {
    fn topics(&self) -> Vec<TopicSample> {
        let mut samples = Vec::new();
        for (id, flow) in self.0.flows() {
            let totals = flow.replicated_totals();
            let lags = topic_lag(&flow);
            let skips = flow.skips.snapshot();
            for (topic, status) in flow.topics() {
                let mut records_skipped_total = std::collections::BTreeMap::new();
                for (_, partition) in
                    skips.range((topic.clone(), i32::MIN)..=(topic.clone(), i32::MAX))
                {
                    for (reason, n) in &partition.by_reason {
                        *records_skipped_total.entry(*reason).or_default() += n;
                    }
                }
                let (records, bytes) = totals.get(&topic).copied().unwrap_or_default();
                let (lag_records, lag_seconds) = lags.get(&topic).copied().unwrap_or_default();
                samples.push(TopicSample {
                    flow: id.to_string(),
                    topic,
                    records_replicated_total: records,
                    bytes_replicated_total: bytes,
                    lag_records,
                    lag_seconds,
                    task_restarts_total: status.restarts,
                    records_skipped_total,
                });
            }
        }
        samples
    }

    fn partitions(&self) -> Vec<PartitionSample> {
        self.0
            .flows()
            .into_iter()
            .flat_map(|(id, flow)| {
                flow.lag()
                    .into_iter()
                    .map(move |((topic, partition), lag)| PartitionSample {
                        flow: id.to_string(),
                        topic,
                        partition,
                        lag_records: lag as u64,
                    })
            })
            .collect()
    }

    fn ready(&self) -> bool {
        self.0.all_running()
    }

    fn status(&self) -> EngineDocument {
        EngineDocument {
            config_digest: self.0.digest(),
            flows: self
                .0
                .flows()
                .into_iter()
                .map(|(id, flow)| flow_document(&id, &flow))
                .collect(),
        }
    }
}

fn flow_document(id: &FlowId, flow: &FlowStatus) -> FlowDocument {
    let totals = flow.replicated_totals();
    let mut lag = flow.lag();
    // By partition, so the document reads the same on every request.
    lag.sort();
    let skips = flow.skips.snapshot();
    let topics = flow
        .topics()
        .into_iter()
        .map(|(topic, t)| {
            let (records, bytes) = totals.get(&topic).copied().unwrap_or_default();
            let partition_status = lag
                .iter()
                .filter(|((name, _), _)| *name == topic)
                .map(|((_, p), l)| {
                    let slot = flow.slot(&topic, *p);
                    let skipped = skips.get(&(topic.clone(), *p));
                    PartitionDocument {
                        partition: *p,
                        lag_records: *l,
                        next_source_offset: slot.as_ref().map(|s| s.watermark()),
                        in_flight: slot.as_ref().map(|s| s.in_flight() as u64),
                        error: slot
                            .and_then(|s| s.failure())
                            .map(|f| format!("offset {}: {}", f.offset, f.cause)),
                        // Refused records resolved by on_record_error.
                        records_skipped: skipped.map_or(0, |s| s.total()),
                        last_skipped_offset: skipped.map(|s| s.last_offset),
                    }
                })
                .collect();
            TopicDocument {
                records_skipped: skips
                    .iter()
                    .filter(|((name, _), _)| *name == topic)
                    .map(|(_, s)| s.total())
                    .sum(),
                topic,
                target_topic: t.remote_topic,
                partitions: t.partitions,
                records_replicated: records,
                bytes_replicated: bytes,
                restarts: t.restarts,
                last_error: t.last_error,
                partition_status,
            }
        })
        .collect();
    let warnings = flow
        .notices()
        .into_iter()
        .map(|((topic, partition), n)| WarningDocument {
            topic,
            partition,
            kind: n.kind.to_string(),
            held: n.held,
            message: n.message,
        })
        .collect();
    let cut_over = flow
        .cut_over()
        .into_values()
        .map(|c| CutOverDocument {
            flow: c.flow,
            topic: c.topic,
            at: c.at,
            by: c.by,
        })
        .collect();
    FlowDocument {
        flow: id.to_string(),
        state: flow.state().as_str().to_string(),
        running: flow.state() == FlowState::Running,
        last_error: flow.last_error(),
        membership: flow.membership(),
        delivery: flow.delivery(),
        warnings,
        topics,
        cut_over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cut_over::CutOver;
    use crate::status::Notice;
    use crate::tracker::{PartitionSlot, Refusal};

    fn flow_id(source: &str, target: &str) -> FlowId {
        FlowId {
            source: source.into(),
            target: target.into(),
        }
    }

    /// Two flows: one running with a partition in flight, a failed
    /// partition, skipped records, a held partition and a cut-over topic;
    /// one retrying with nothing assigned.
    fn engine() -> Arc<EngineStatus> {
        let engine = Arc::new(EngineStatus::default());
        engine.set_digest("3f1c");

        let flow = engine.flow(&flow_id("src", "dst"));
        flow.set_state(FlowState::Running);
        flow.update_topic("orders", |t| {
            t.remote_topic = "src.orders".into();
            t.partitions = 2;
            t.restarts = 1;
        });
        flow.update_topic("payments", |t| {
            t.remote_topic = "src.payments".into();
            t.partitions = 1;
            t.last_error = Some("cluster dst: topic src.payments: authorization failed".into());
        });
        let copying = PartitionSlot::new("orders".into(), 0, "src.orders".into(), 5);
        copying.on_produced(5, 100);
        copying.on_produced(6, 100);
        copying.records_acked.store(5, Ordering::Relaxed);
        copying.bytes_acked.store(500, Ordering::Relaxed);
        flow.put_slot(Arc::new(copying));
        let failed = PartitionSlot::new("orders".into(), 1, "src.orders".into(), 10);
        failed.on_produced(10, 1);
        failed.fail_local(10, "record too large for src.orders");
        flow.put_slot(Arc::new(failed));
        flow.put_slot(Arc::new(PartitionSlot::new(
            "payments".into(),
            0,
            "src.payments".into(),
            3,
        )));
        flow.set_end_offsets(
            [
                (("orders".to_string(), 0), 9),
                (("orders".to_string(), 1), 12),
                (("payments".to_string(), 0), 3),
            ]
            .into(),
        );
        flow.skips.record("orders", 1, 7, Refusal::TooLarge);
        flow.skips.record("orders", 1, 8, Refusal::InvalidRecord);
        flow.notice(
            "payments",
            0,
            Notice {
                kind: "deleted-before-copy",
                message: "cluster src: payments[0] starts at 40, progress says 3".into(),
                held: true,
            },
        );
        flow.set_cut_over(
            [(
                "invoices".to_string(),
                CutOver {
                    flow: "src->dst".into(),
                    topic: "invoices".into(),
                    at: "2026-01-02T03:04:05Z".into(),
                    by: "ferry cutover".into(),
                },
            )]
            .into(),
        );

        let retrying = engine.flow(&flow_id("src", "dr"));
        retrying.set_state(FlowState::Retrying);
        retrying.set_error(Some("cluster dr: no broker answers".into()));
        engine
    }

    /// The document as `/status` has always served it: every field, `null`
    /// for an absent value rather than a missing key, integers as integers
    /// and keys in the same order, byte for byte.
    #[test]
    fn the_status_document_keeps_its_json_shape() {
        let expected = serde_json::json!({
            "config_digest": "3f1c",
            "flows": [
                {
                    "flow": "src->dr",
                    "state": "retrying",
                    "running": false,
                    "last_error": "cluster dr: no broker answers",
                    "warnings": [],
                    "topics": [],
                    "cut_over": [],
                    "membership": null,
                    "delivery": null,
                },
                {
                    "flow": "src->dst",
                    "state": "running",
                    "running": true,
                    "last_error": null,
                    "warnings": [{
                        "topic": "payments",
                        "partition": 0,
                        "kind": "deleted-before-copy",
                        "held": true,
                        "message": "cluster src: payments[0] starts at 40, progress says 3",
                    }],
                    "topics": [
                        {
                            "topic": "orders",
                            "target_topic": "src.orders",
                            "partitions": 2,
                            "records_replicated": 5,
                            "bytes_replicated": 500,
                            "restarts": 1,
                            "records_skipped": 2,
                            "last_error": null,
                            "partition_status": [
                                {
                                    "partition": 0,
                                    "lag_records": 4,
                                    "next_source_offset": 5,
                                    "in_flight": 2,
                                    "error": null,
                                    "records_skipped": 0,
                                    "last_skipped_offset": null,
                                },
                                {
                                    "partition": 1,
                                    "lag_records": 2,
                                    "next_source_offset": 10,
                                    "in_flight": 0,
                                    "error": "offset 10: record too large for src.orders",
                                    "records_skipped": 2,
                                    "last_skipped_offset": 8,
                                },
                            ],
                        },
                        {
                            "topic": "payments",
                            "target_topic": "src.payments",
                            "partitions": 1,
                            "records_replicated": 0,
                            "bytes_replicated": 0,
                            "restarts": 0,
                            "records_skipped": 0,
                            "last_error": "cluster dst: topic src.payments: authorization failed",
                            "partition_status": [{
                                "partition": 0,
                                "lag_records": 0,
                                "next_source_offset": 3,
                                "in_flight": 0,
                                "error": null,
                                "records_skipped": 0,
                                "last_skipped_offset": null,
                            }],
                        },
                    ],
                    "cut_over": [{
                        "flow": "src->dst",
                        "topic": "invoices",
                        "at": "2026-01-02T03:04:05Z",
                        "by": "ferry cutover",
                    }],
                    // Not joined to the flow's group yet.
                    "membership": null,
                    "delivery": null,
                },
            ],
        });
        let served = serde_json::to_string(&StatusView(engine()).status()).unwrap();
        assert_eq!(served, serde_json::to_string(&expected).unwrap());
    }
}
