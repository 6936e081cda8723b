//! Heartbeats, in MirrorMaker 2's format, on the target.

use crate::membership::Ownership;
use ferry_admin::Admin;
use ferry_checkpoint::wire::{self, Heartbeat};
use ferry_config::Flow;
use ferry_http::FlowMetrics;
use rdkafka::producer::BaseRecord;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::ensure_with_retry;
use crate::clock::now_ms;
use crate::internal::InternalProducer;

/// Writes a heartbeat every `heartbeat_interval` until `stop` fires.
pub(super) async fn heartbeats(
    flow: Flow,
    target: String,
    admin: Admin,
    producer: InternalProducer,
    metrics: Option<FlowMetrics>,
    ownership: Arc<Ownership>,
    stop: CancellationToken,
) {
    let topic = wire::HEARTBEATS_TOPIC;
    if !ensure_with_retry(
        &admin,
        &target,
        topic,
        flow.replication_factor,
        &metrics,
        &stop,
    )
    .await
    {
        return;
    }
    let key = match (Heartbeat {
        source_alias: flow.source.clone(),
        target_alias: flow.target.clone(),
        timestamp_ms: 0,
    })
    .encode_key()
    {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode heartbeat keys; heartbeats off");
            return;
        }
    };
    let mut tick = tokio::time::interval(flow.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // One process writes them: the owner of slot 0.
        if ownership.epoch(0).is_none() {
            continue;
        }
        let value = Heartbeat {
            source_alias: flow.source.clone(),
            target_alias: flow.target.clone(),
            timestamp_ms: now_ms(),
        }
        .encode_value();
        let rec = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(0)
            .key(&key[..])
            .payload(&value[..]);
        let result = producer.write(rec).await;
        match result {
            Ok(()) => failing = false,
            Err(cause) => {
                if let Some(m) = &metrics {
                    m.error("heartbeat");
                }
                if !failing {
                    tracing::warn!(cluster = %target, topic, error = %cause, "writing a heartbeat failed");
                }
                failing = true;
            }
        }
    }
}
