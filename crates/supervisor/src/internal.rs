//! The producer for a flow's low-volume internal topics on one cluster:
//! progress, checkpoints, heartbeats and (on the target) offset syncs.
//!
//! One is shared by all of them because every librdkafka instance brings its
//! own threads and connections. It is built on `BaseProducer` with its own
//! poll thread rather than on `FutureProducer`, whose poll thread busy-waits
//! the last millisecond of every 100 ms poll (see `ACK_POLL`), a cost paid
//! even at rest.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_config::Cluster;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use tokio::sync::oneshot;

use crate::clients::{client_config, ClusterContext, Role};
use crate::EngineError;

/// How long the poll thread waits for acknowledgements per poll.
/// rust-rdkafka hands librdkafka what is left of a producer poll in whole
/// milliseconds, rounded down, and polls again without waiting until its
/// own deadline passes: a poll of exactly 100 ms sleeps 99 and busy-waits
/// the last one. The extra microseconds make the rounded-down wait end just
/// past that deadline instead.
pub(crate) const ACK_POLL: Duration = Duration::from_micros(100_050);

/// How long `send` keeps retrying while librdkafka's queue is full.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(30);

/// Resolves once the cluster acknowledged the record (`Ok`) or gave up on
/// it. The error is librdkafka's, typed, so that a refusal (authorization)
/// can be told from a passing failure; a delivery error carries only a
/// code, never text that could echo a secret.
pub(crate) type Ack = oneshot::Receiver<KafkaResult<i64>>;

type AckSender = Box<oneshot::Sender<KafkaResult<i64>>>;

struct AckContext {
    cluster: ClusterContext,
}

impl ClientContext for AckContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.cluster.log(level, fac, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.cluster.error(error, reason)
    }
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        self.cluster.generate_oauth_token(config)
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = AckSender;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: AckSender) {
        let outcome = match result {
            Ok(m) => Ok(rdkafka::Message::offset(m)),
            Err((e, _)) => Err(e.clone()),
        };
        // The sender's side may have stopped waiting; nothing to tell then.
        let _ = ack.send(outcome);
    }
}

#[derive(Clone)]
pub(crate) struct InternalProducer {
    shared: Arc<Shared>,
}

struct Shared {
    producer: Arc<BaseProducer<AckContext>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The poll thread ends within one poll and drops the last handle,
        // which fails whatever is still queued (each `Ack` then resolves).
        self.stop.store(true, Ordering::Release);
    }
}

impl InternalProducer {
    pub fn new(cluster: &Cluster, client_id: &str) -> Result<Self, EngineError> {
        let producer: BaseProducer<AckContext> =
            client_config(cluster, Role::InternalProducer, client_id)
                .create_with_context(AckContext {
                    cluster: ClusterContext::new(cluster),
                })
                .map_err(|e| EngineError::client_creation(cluster, &e))?;
        let producer = Arc::new(producer);
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (producer, stop) = (producer.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("acks {client_id}"))
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        producer.poll(ACK_POLL);
                    }
                })
                .map_err(|e| {
                    EngineError::client_creation(
                        cluster,
                        &format!("cannot start the poll thread: {e}"),
                    )
                })?;
        }
        Ok(Self {
            shared: Arc::new(Shared { producer, stop }),
        })
    }

    /// Hands `record` to librdkafka now, waiting while its queue is full,
    /// and returns what resolves when the cluster answers.
    pub async fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> KafkaResult<Ack> {
        let deadline = Instant::now() + QUEUE_FULL_PATIENCE;
        let (tx, rx) = oneshot::channel();
        let mut record = BaseRecord {
            topic: record.topic,
            partition: record.partition,
            payload: record.payload,
            key: record.key,
            timestamp: record.timestamp,
            headers: record.headers,
            delivery_opaque: Box::new(tx),
        };
        loop {
            match self.shared.producer.send(record) {
                Ok(()) => return Ok(rx),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Waits for the cluster's answer to a sent record. `Canceled` when
    /// the producer was dropped before delivery.
    pub async fn acknowledged(ack: Ack) -> KafkaResult<()> {
        Self::acknowledged_at(ack).await.map(drop)
    }

    /// Waits for the cluster's answer to a sent record: the offset the
    /// record was written at.
    pub async fn acknowledged_at(ack: Ack) -> KafkaResult<i64> {
        ack.await.unwrap_or(Err(KafkaError::Canceled))
    }

    /// Sends `record` and waits for the cluster's answer.
    pub async fn write(&self, record: BaseRecord<'_, [u8], [u8]>) -> KafkaResult<()> {
        Self::acknowledged(self.send(record).await?).await
    }
}
