//! The engine as the HTTP crate sees it: samples read from atomics at scrape
//! time, readiness, and the `/status` document. Nothing here blocks or takes
//! a lock for longer than a copy.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_http::{EngineView, PartitionSample, TopicSample};
use serde_json::json;

use crate::status::{EngineStatus, FlowState};

/// Adapts `EngineStatus` to `ferry_http::EngineView`.
pub struct StatusView(pub Arc<EngineStatus>);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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

    fn status(&self) -> serde_json::Value {
        let flows: Vec<serde_json::Value> = self
            .0
            .flows()
            .into_iter()
            .map(|(id, flow)| {
                let totals = flow.replicated_totals();
                let lag = flow.lag();
                let skips = flow.skips.snapshot();
                let topics: Vec<serde_json::Value> = flow
                    .topics()
                    .into_iter()
                    .map(|(topic, t)| {
                        let (records, bytes) = totals.get(&topic).copied().unwrap_or_default();
                        let partitions: Vec<serde_json::Value> = lag
                            .iter()
                            .filter(|((name, _), _)| *name == topic)
                            .map(|((_, p), l)| {
                                let slot = flow.slot(&topic, *p);
                                let skipped = skips.get(&(topic.clone(), *p));
                                json!({
                                    "partition": p,
                                    "lag_records": l,
                                    "next_source_offset": slot.as_ref().map(|s| s.watermark()),
                                    "in_flight": slot.as_ref().map(|s| s.in_flight()),
                                    "error": slot.and_then(|s| s.failure()).map(|f| format!("offset {}: {}", f.offset, f.cause)),
                                    // Refused records resolved by on_record_error.
                                    "records_skipped": skipped.map_or(0, |s| s.total()),
                                    "last_skipped_offset": skipped.map(|s| s.last_offset),
                                })
                            })
                            .collect();
                        json!({
                            "topic": topic,
                            "target_topic": t.remote_topic,
                            "partitions": t.partitions,
                            "records_replicated": records,
                            "bytes_replicated": bytes,
                            "restarts": t.restarts,
                            "records_skipped": skips
                                .iter()
                                .filter(|((name, _), _)| *name == topic)
                                .map(|(_, s)| s.total())
                                .sum::<u64>(),
                            "last_error": t.last_error,
                            "partition_status": partitions,
                        })
                    })
                    .collect();
                let warnings: Vec<serde_json::Value> = flow
                    .notices()
                    .into_iter()
                    .map(|((topic, partition), n)| {
                        json!({
                            "topic": topic,
                            "partition": partition,
                            "kind": n.kind,
                            "held": n.held,
                            "message": n.message,
                        })
                    })
                    .collect();
                json!({
                    "flow": id.to_string(),
                    "state": flow.state().as_str(),
                    "running": flow.state() == FlowState::Running,
                    "last_error": flow.last_error(),
                    "warnings": warnings,
                    "topics": topics,
                    "cut_over": flow.cut_over().into_values().collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "config_digest": self.0.digest(), "flows": flows })
    }
}
