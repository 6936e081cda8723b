//! Deterministic sequence-numbered records, and producing them.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::{Record, TIMEOUT};
use crate::client::ErrorCapture;
use crate::error::{HarnessError, Result};

/// Where a sequence record was produced: its partition and its number there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SequenceId {
    pub partition: i32,
    pub seq: u64,
}

impl fmt::Display for SequenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}:s{}", self.partition, self.seq)
    }
}

/// What [`produce_sequence`] produces. Every record is a pure function of
/// `(partition, seq)` and the spec ([`SequenceSpec::record`]), so a test can
/// recompute what it expects anywhere, and [`sequence_of`] recovers
/// `(partition, seq)` from any record, tombstones included:
///
/// - key `key-p<partition>-s<seq>`, or null for every `null_key_every`-th
///   record (tombstones always keep their key, as compaction needs one);
/// - value `p<partition>:s<seq>:` followed by `value_padding` bytes `x`, or
///   null (a tombstone) for every `tombstone_every`-th record;
/// - headers, in this order: `ferry-seq=<seq>`, `trace=first`,
///   `trace=second-<seq>` (a repeated name), `empty=""`, `null=<null>`;
/// - CreateTime timestamp `base_timestamp_ms + seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceSpec {
    /// Partitions to produce to; each gets its own sequence.
    pub partitions: Vec<i32>,
    pub records_per_partition: u64,
    /// First sequence number, so a test can continue an earlier sequence.
    pub first_seq: u64,
    /// Every n-th record has a null key; 0 for never.
    pub null_key_every: u64,
    /// Every n-th record is a tombstone (null value); 0 for never.
    pub tombstone_every: u64,
    /// Extra value bytes, for realistic record sizes.
    pub value_padding: usize,
    pub base_timestamp_ms: i64,
}

impl SequenceSpec {
    /// `records_per_partition` records to each of partitions `0..partitions`,
    /// every 10th key null, no tombstones, timestamps from ten minutes ago.
    ///
    /// The timestamps are recent because brokers reject records stamped more
    /// than an hour ahead and time-based retention deletes old ones.
    pub fn new(partitions: i32, records_per_partition: u64) -> SequenceSpec {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        SequenceSpec {
            partitions: (0..partitions).collect(),
            records_per_partition,
            first_seq: 0,
            null_key_every: 10,
            tombstone_every: 0,
            value_padding: 0,
            base_timestamp_ms: now_ms - 10 * 60 * 1000,
        }
    }

    /// The record with number `seq` in `partition` (offset `-1`).
    pub fn record(&self, partition: i32, seq: u64) -> Record {
        let nth = |every: u64| every > 0 && seq % every == every - 1;
        let tombstone = nth(self.tombstone_every);
        let key = (tombstone || !nth(self.null_key_every))
            .then(|| format!("key-p{partition}-s{seq}").into_bytes());
        let value = (!tombstone).then(|| {
            let mut value = format!("p{partition}:s{seq}:").into_bytes();
            value.resize(value.len() + self.value_padding, b'x');
            value
        });
        let header =
            |name: &str, value: Option<&[u8]>| (name.to_string(), value.map(<[u8]>::to_vec));
        Record {
            partition,
            offset: -1,
            key,
            value,
            headers: vec![
                header("ferry-seq", Some(seq.to_string().as_bytes())),
                header("trace", Some(b"first")),
                header("trace", Some(format!("second-{seq}").as_bytes())),
                header("empty", Some(b"")),
                header("null", None),
            ],
            timestamp: Timestamp::CreateTime(self.base_timestamp_ms + seq as i64),
        }
    }

    /// Every record of the spec in production order: sequence numbers
    /// ascending, partitions interleaved.
    pub fn records(&self) -> Vec<Record> {
        let seqs = self.first_seq..self.first_seq + self.records_per_partition;
        seqs.flat_map(|seq| self.partitions.iter().map(move |&p| self.record(p, seq)))
            .collect()
    }
}

/// Recovers `(partition, seq)` from a record made by [`SequenceSpec`], from
/// its value or, for tombstones, its key.
pub fn sequence_of(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<SequenceId> {
    fn parse(bytes: &[u8], prefix: &str, separator: &str) -> Option<SequenceId> {
        // Only the head matters; the padding may be long.
        let head = &bytes[..bytes.len().min(64)];
        let text = String::from_utf8_lossy(head);
        let rest = text.strip_prefix(prefix)?;
        let (partition, rest) = rest.split_once(separator)?;
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        Some(SequenceId {
            partition: partition.parse().ok()?,
            seq: digits.parse().ok()?,
        })
    }
    value
        .and_then(|v| parse(v, "p", ":s"))
        .or_else(|| key.and_then(|k| parse(k, "key-p", "-s")))
}

/// Produces `spec`'s records to `topic` with explicit partitions and
/// timestamps and returns them with the offsets the broker assigned, ordered
/// by partition and offset.
///
/// Unless `config` says otherwise the producer is idempotent with
/// `acks=all`, so retries during a leader change neither reorder nor
/// duplicate the sequence.
pub fn produce_sequence(
    config: &ClientConfig,
    topic: &str,
    spec: &SequenceSpec,
) -> Result<Vec<Record>> {
    let mut records = spec.records();
    let mut config = config.clone();
    let timeout_ms = TIMEOUT.as_millis().to_string();
    for (key, value) in [
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("message.timeout.ms", timeout_ms.as_str()),
    ] {
        if config.get(key).is_none() {
            config.set(key, value);
        }
    }
    let context = DeliveryLog {
        capture: ErrorCapture::default(),
        offsets: Mutex::new(vec![None; records.len()]),
    };
    let producer: BaseProducer<DeliveryLog> = config
        .create_with_context(context)
        .map_err(|e| HarnessError::kafka("cannot create a producer", e))?;
    let failed = |what: String, e: KafkaError| producer.context().capture.fail(what, e);

    for (index, record) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        let mut pending = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, index)
            .partition(record.partition)
            .headers(headers);
        if let Some(ms) = record.timestamp.to_millis() {
            pending = pending.timestamp(ms);
        }
        if let Some(key) = &record.key {
            pending = pending.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            pending = pending.payload(value.as_slice());
        }
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Serve delivery reports to make room, then retry.
                    pending = back;
                    producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => {
                    return Err(failed(format!("cannot produce to {topic:?}"), e));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(TIMEOUT)
        .map_err(|e| failed(format!("producing to {topic:?} did not finish"), e))?;

    let offsets = std::mem::take(
        &mut *producer
            .context()
            .offsets
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    for (record, offset) in records.iter_mut().zip(offsets) {
        match offset {
            Some(Ok(offset)) => record.offset = offset,
            Some(Err(e)) => {
                return Err(failed(
                    format!("record {:?} to {topic:?} failed", record.sequence()),
                    e,
                ))
            }
            None => {
                return Err(HarnessError::Usage(format!(
                    "no delivery report for record {:?} to {topic:?} after flush",
                    record.sequence()
                )))
            }
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// Collects the delivery report of every record, by its index.
struct DeliveryLog {
    capture: ErrorCapture,
    offsets: Mutex<Vec<Option<std::result::Result<i64, KafkaError>>>>,
}

impl ClientContext for DeliveryLog {
    fn error(&self, error: KafkaError, reason: &str) {
        ClientContext::error(&self.capture, error, reason);
    }
}

impl ProducerContext for DeliveryLog {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((e, _)) => Err(e.clone()),
        };
        let mut offsets = self.offsets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = offsets.get_mut(index) {
            *slot = Some(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_follow_the_spec() {
        let spec = SequenceSpec {
            tombstone_every: 4,
            value_padding: 3,
            ..SequenceSpec::new(2, 10)
        };
        let records = spec.records();
        assert_eq!(records.len(), 20);
        assert_eq!((records[0].partition, records[1].partition), (0, 1));

        let r = spec.record(1, 2);
        assert_eq!(r.key.as_deref(), Some(&b"key-p1-s2"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"p1:s2:xxx"[..]));
        assert_eq!(
            r.timestamp,
            Timestamp::CreateTime(spec.base_timestamp_ms + 2)
        );
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["ferry-seq", "trace", "trace", "empty", "null"]);
        assert_eq!(r.headers[3].1, Some(Vec::new()));
        assert_eq!(r.headers[4].1, None);

        // seq 3 is a tombstone (every 4th) and keeps its key.
        let tombstone = spec.record(0, 3);
        assert_eq!(tombstone.value, None);
        assert!(tombstone.key.is_some());
        // seq 9 has a null key (every 10th).
        assert_eq!(spec.record(0, 9).key, None);
        // seq 19 would be both; the tombstone wins and keeps its key.
        let spec = SequenceSpec {
            first_seq: 19,
            ..spec
        };
        assert!(spec.record(0, 19).key.is_some());
    }

    #[test]
    fn sequence_is_recovered_from_value_or_key() {
        let spec = SequenceSpec {
            tombstone_every: 2,
            value_padding: 1000,
            ..SequenceSpec::new(3, 12)
        };
        for record in spec.records() {
            let id = record
                .sequence()
                .expect("every record carries its sequence");
            assert_eq!(id.partition, record.partition);
            assert_eq!(record, spec.record(id.partition, id.seq));
        }
        assert_eq!(sequence_of(None, Some(b"other")), None);
        assert_eq!(sequence_of(None, None), None);
        assert_eq!(
            sequence_of(None, Some(b"p7:s42:")),
            Some(SequenceId {
                partition: 7,
                seq: 42
            })
        );
    }
}
