//! The sync writer: drains a flow's sync queue into the offset-syncs topic.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferry_checkpoint::{wire, EncodedSync};
use ferry_http::FlowMetrics;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::registry::{OffsetRegistry, SyncMsg};
use crate::internal::InternalProducer;

/// Writes one flow's offset syncs, one record per sync.
pub(super) struct Writer {
    pub(super) producer: InternalProducer,
    pub(super) cluster: String,
    pub(super) topic: String,
    pub(super) registry: Arc<OffsetRegistry>,
    pub(super) metrics: Option<FlowMetrics>,
}

impl Writer {
    pub(super) async fn run(self, mut rx: mpsc::Receiver<SyncMsg>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(1024);
        let mut reported_drops = 0;
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 1024) => {
                    if n == 0 {
                        return;
                    }
                }
                _ = stop.cancelled() => {
                    while let Ok(m) = rx.try_recv() {
                        batch.push(m);
                    }
                    self.write(&mut batch).await;
                    return;
                }
            }
            self.write(&mut batch).await;
            let dropped = self.registry.stats().syncs_dropped.load(Ordering::Relaxed);
            if dropped > reported_drops {
                tracing::warn!(
                    dropped = dropped - reported_drops,
                    "offset-sync queue overflowed; syncs dropped and their chains restarted (translation stays exact live, a restart rebuilds more conservatively)"
                );
                reported_drops = dropped;
            }
        }
    }

    async fn write(&self, batch: &mut Vec<SyncMsg>) {
        let mut pending = Vec::with_capacity(batch.len());
        for m in batch.drain(..) {
            let encoded = match m.sync.encode(&m.topic, m.partition) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(topic = %m.topic, partition = m.partition, error = %e, "cannot encode offset sync");
                    continue;
                }
            };
            let mut rec = BaseRecord::<[u8], [u8]>::to(&self.topic)
                .partition(0)
                .key(&encoded.key[..])
                .payload(&encoded.value[..]);
            if let Some(headers) = link_headers(&encoded) {
                rec = rec.headers(headers);
            }
            let sent = self.producer.send(rec).await;
            pending.push((m, sent));
        }
        for (m, sent) in pending {
            let result = match sent {
                Ok(ack) => InternalProducer::acknowledged(ack).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.registry
                        .stats()
                        .syncs_written
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(cause) => {
                    self.registry
                        .stats()
                        .sync_write_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.registry.reset_emitter(&m.topic, m.partition);
                    if let Some(metrics) = &self.metrics {
                        metrics.error("offset_sync");
                    }
                    tracing::warn!(
                        cluster = %self.cluster,
                        topic = %self.topic,
                        source_topic = %m.topic,
                        source_partition = m.partition,
                        error = %cause,
                        "writing an offset sync failed; its chain restarts"
                    );
                }
            }
        }
    }
}

/// The header carrying a sync's link, if it has one.
pub(crate) fn link_headers(sync: &EncodedSync) -> Option<OwnedHeaders> {
    let link = sync.link.as_ref()?;
    Some(OwnedHeaders::new().insert(Header {
        key: wire::SYNC_LINK_HEADER,
        value: Some(&link[..]),
    }))
}
