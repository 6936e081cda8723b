//! The benchmark records: a pure function of `(dataset, index)`, so the
//! preload, the limit's produce-only writer and the spot checks all agree on
//! every byte without keeping records in memory.
//!
//! Record `i` goes to partition `i % partitions` with per-partition sequence
//! number `seq = i / partitions`:
//!
//! - key `key-PP-SSSSSSSSSSSS` (19 bytes: partition and seq, zero-padded);
//! - value exactly `value_size` bytes: `p<P>:s<seq>:` followed by a slice of
//!   a fixed pseudo-random text made of JSON-ish words, so LZ4 compresses it
//!   about as well as typical event payloads (not a run of one byte, which
//!   would flatter every contender's MB/s);
//! - one header `bench-seq` = the seq in decimal;
//! - CreateTime `base_timestamp_ms + seq`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::bail;
use crate::error::{Context, Result};

/// Name of the one header every record carries.
pub const SEQ_HEADER: &str = "bench-seq";

/// A set of records spread round-robin over a topic's partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    pub partitions: i32,
    pub records: u64,
    pub value_size: usize,
    pub base_timestamp_ms: i64,
}

/// The reusable buffers one record is rendered into.
#[derive(Default)]
pub struct RecordBuf {
    pub partition: i32,
    pub seq: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub header: Vec<u8>,
    pub timestamp_ms: i64,
}

impl RecordBuf {
    /// Bytes counted for MB/s: key + value + header name and value.
    pub fn size(&self) -> u64 {
        (self.key.len() + self.value.len() + SEQ_HEADER.len() + self.header.len()) as u64
    }
}

impl Dataset {
    pub fn new(partitions: i32, records: u64, value_size: usize) -> Dataset {
        Dataset {
            partitions,
            records,
            value_size,
            // Recent, so that retention and the broker's timestamp checks
            // accept it, and the same for every contender.
            base_timestamp_ms: now_ms() - 10 * 60 * 1000,
        }
    }

    /// Renders record `index` into `buf`.
    pub fn render(&self, index: u64, buf: &mut RecordBuf) {
        let partition = (index % self.partitions as u64) as i32;
        let seq = index / self.partitions as u64;
        self.render_at(partition, seq, buf);
    }

    /// Renders the record with number `seq` in `partition` into `buf`.
    pub fn render_at(&self, partition: i32, seq: u64, buf: &mut RecordBuf) {
        use std::io::Write as _;
        buf.partition = partition;
        buf.seq = seq;
        buf.key.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(buf.key, "key-{partition:02}-{seq:012}");
        buf.value.clear();
        let _ = write!(buf.value, "p{partition}:s{seq}:");
        let corpus = corpus();
        let fill = self
            .value_size
            .saturating_sub(buf.value.len())
            .min(corpus.len());
        let span = (corpus.len() - fill + 1) as u64;
        let start = (seq.wrapping_mul(7919) + partition as u64 * 104_729) % span;
        let start = start as usize;
        buf.value.extend_from_slice(&corpus[start..start + fill]);
        buf.header.clear();
        let _ = write!(buf.header, "{seq}");
        buf.timestamp_ms = self.base_timestamp_ms + seq as i64;
    }

    /// Records per partition, by partition.
    pub fn per_partition(&self) -> Vec<i64> {
        let p = self.partitions as u64;
        (0..p)
            .map(|i| (self.records / p + u64::from(i < self.records % p)) as i64)
            .collect()
    }

    /// Total bytes as [`RecordBuf::size`] counts them (renders every
    /// record: well under a second for millions).
    pub fn total_bytes(&self) -> u64 {
        let mut buf = RecordBuf::default();
        (0..self.records)
            .map(|i| {
                self.render(i, &mut buf);
                buf.size()
            })
            .sum()
    }
}

/// 64 KiB of JSON-ish text from a fixed seed.
fn corpus() -> &'static [u8] {
    static CORPUS: OnceLock<Vec<u8>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        const WORDS: &[&str] = &[
            "\"user_id\":",
            "\"order\":",
            "\"status\":",
            "\"active\"",
            "\"pending\"",
            "\"amount\":",
            "\"currency\":\"EUR\"",
            "\"sku\":",
            "\"region\":\"eu-west\"",
            "\"ts\":",
            "\"session\":",
            "\"items\":[",
            "],",
            "{",
            "},",
            "\"ok\":true,",
            "\"retry\":false,",
            "\"country\":\"DE\"",
            "\"device\":\"mobile\"",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::with_capacity(64 * 1024 + 64);
        while out.len() < 64 * 1024 {
            let r = next();
            out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
            // A number after most words: digits are what real payloads vary.
            if r & 0x300 != 0 {
                out.extend_from_slice(((r >> 20) % 1_000_000).to_string().as_bytes());
                out.push(b',');
            }
        }
        out.truncate(64 * 1024);
        out
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// A producer with Ferry's target-producer settings (`crates/supervisor/src/
/// clients.rs`, `Role::TargetProducer`): idempotent, `acks=all`, 5 ms
/// linger, 1 MB batches, LZ4, 256 MiB of queue.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("client.id", "ferry-bench-producer")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.kbytes", "262144")
        .set("max.in.flight.requests.per.connection", "5")
        .set("message.timeout.ms", "300000");
    cfg
}

/// Counts delivery failures and keeps the first one.
#[derive(Default)]
pub struct DeliveryCounter {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Sends one rendered record, waiting (by serving delivery reports) while
/// librdkafka's queue is full.
pub fn send(
    producer: &BaseProducer<DeliveryCounter>,
    topic: &str,
    buf: &RecordBuf,
    deadline: Instant,
) -> Result<()> {
    let headers = OwnedHeaders::new_with_capacity(1).insert(Header {
        key: SEQ_HEADER,
        value: Some(&buf.header),
    });
    let mut record = BaseRecord::to(topic)
        .partition(buf.partition)
        .key(&buf.key[..])
        .payload(&buf.value[..])
        .headers(headers)
        .timestamp(buf.timestamp_ms);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                if Instant::now() > deadline {
                    bail!(
                        "producing to {topic:?}: librdkafka's queue stayed full past the deadline"
                    );
                }
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => bail!("cannot produce to {topic:?}: {e}"),
        }
    }
}

/// Produces all of `dataset` to `topic` and waits until every record is
/// acknowledged. Returns the bytes written.
pub fn produce_dataset(config: &ClientConfig, topic: &str, dataset: &Dataset) -> Result<u64> {
    let producer: BaseProducer<DeliveryCounter> = config
        .create_with_context(DeliveryCounter::default())
        .context(|| "cannot create a producer")?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut buf = RecordBuf::default();
    let mut bytes = 0;
    for index in 0..dataset.records {
        dataset.render(index, &mut buf);
        bytes += buf.size();
        send(&producer, topic, &buf, deadline)?;
        if index % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .context(|| format!("producing to {topic:?} did not finish"))?;
    let counter = producer.context();
    let failed = counter.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = counter
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        bail!("{failed} records to {topic:?} failed, the first with: {first}");
    }
    Ok(bytes)
}

/// Transactions [`warm_transactions`] commits.
const WARM_TRANSACTIONS: u64 = 20;

/// Commits `WARM_TRANSACTIONS` (20) transactions of `dataset`'s first records
/// to `topic`. The first transactional producer on a fresh cluster waits
/// while the broker creates `__transaction_state` and loads its
/// coordinators (about a second here), and the broker compiles its
/// transaction paths on first use: a one-time cost of the cluster that a
/// running deployment never pays.
pub fn warm_transactions(config: &ClientConfig, topic: &str, dataset: &Dataset) -> Result<()> {
    let mut config = config.clone();
    config
        .set("transactional.id", "ferry-bench-warm-up")
        .set("message.timeout.ms", "60000");
    let producer: BaseProducer<DeliveryCounter> = config
        .create_with_context(DeliveryCounter::default())
        .context(|| "cannot create a transactional producer")?;
    let timeout = Duration::from_secs(120);
    producer
        .init_transactions(timeout)
        .context(|| "cannot initialise transactions")?;
    let per_transaction = (dataset.records / WARM_TRANSACTIONS).clamp(1, 10_000);
    let deadline = Instant::now() + timeout;
    let mut buf = RecordBuf::default();
    for first in (0..WARM_TRANSACTIONS).map(|t| t * per_transaction) {
        producer
            .begin_transaction()
            .context(|| "cannot begin a transaction")?;
        for index in first..first + per_transaction {
            dataset.render(index, &mut buf);
            send(&producer, topic, &buf, deadline)?;
        }
        producer
            .commit_transaction(timeout)
            .context(|| format!("cannot commit a transaction to {topic:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_exact_sizes_and_spread_round_robin() {
        let ds = Dataset::new(8, 100, 200);
        let mut buf = RecordBuf::default();
        ds.render(13, &mut buf);
        assert_eq!((buf.partition, buf.seq), (5, 1));
        assert_eq!(buf.key, b"key-05-000000000001");
        assert_eq!(buf.value.len(), 200);
        assert!(buf.value.starts_with(b"p5:s1:"));
        assert_eq!(buf.header, b"1");
        assert_eq!(buf.timestamp_ms, ds.base_timestamp_ms + 1);
        assert_eq!(ds.per_partition(), vec![13, 13, 13, 13, 12, 12, 12, 12]);

        let big = Dataset::new(8, 10, 2048);
        big.render(9, &mut buf);
        assert_eq!(buf.value.len(), 2048);
    }

    #[test]
    fn total_bytes_counts_key_value_and_header() {
        // 20 records over 2 partitions: seq 0..=9, so one-digit headers.
        let ds = Dataset::new(2, 20, 200);
        assert_eq!(
            ds.total_bytes(),
            20 * (19 + 200 + SEQ_HEADER.len() as u64 + 1)
        );
    }

    #[test]
    fn values_compress_like_text_not_like_padding() {
        let text = corpus();
        let distinct: std::collections::HashSet<&[u8]> = text.windows(8).collect();
        assert!(distinct.len() > 2000, "{}", distinct.len());
    }
}
