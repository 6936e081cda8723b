//! A contender's target topic as a `read_committed` consumer sees it.
//!
//! Offsets cannot say whether the target holds every record exactly once: a
//! transactional writer leaves a marker after each transaction (and aborted
//! records) below the end offset, and an at-least-once writer may copy a
//! record twice. So records are counted by their sequence number (the
//! `bench-seq` header): duplicates and gaps are exact, and the end offsets
//! minus the records read tell whether the writer used transactions at all.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use crate::bail;
use crate::dataset::{Dataset, RecordBuf, SEQ_HEADER};
use crate::error::{Context, Result};
use crate::kafka::Offsets;
use crate::report::Delivered;

/// Offsets read back from the end of a partition to find its last committed
/// record: enough to get past the markers of a few transactions.
const TAIL: i64 = 64;
/// Upper bound of one look at the partitions' tails.
const TAIL_TIMEOUT: Duration = Duration::from_secs(5);

/// A consumer of committed records only that never joins its group, never
/// commits, and reports the end of every partition it reaches.
fn committed_reader(config: &ClientConfig) -> Result<BaseConsumer> {
    let mut config = config.clone();
    config
        .set("group.id", "ferry-bench-read-back")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        // At the end of a partition the broker answers only after this wait.
        .set("fetch.wait.max.ms", "10")
        .set("auto.offset.reset", "earliest");
    config
        .create()
        .context(|| "cannot create a read_committed reader")
}

/// The end offsets of `topic` as a client with `isolation` lists them:
/// high watermarks (`read_uncommitted`) or last stable offsets
/// (`read_committed`, below any open transaction).
fn end_offsets(
    config: &ClientConfig,
    isolation: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<i64>> {
    let mut config = config.clone();
    config.set("isolation.level", isolation);
    Offsets::new(&config)?.topic_end_offsets(topic, partitions)
}

fn seq_of(message: &BorrowedMessage<'_>) -> Option<u64> {
    let headers = message.headers()?;
    let header = headers.iter().find(|h| h.key == SEQ_HEADER)?;
    std::str::from_utf8(header.value?).ok()?.parse().ok()
}

/// Whether a copied record equals the source record rendered in `buf`:
/// key, value, the one header and the CreateTime.
pub fn same_record(
    buf: &RecordBuf,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
    timestamp: Timestamp,
) -> bool {
    key == Some(&buf.key[..])
        && value == Some(&buf.value[..])
        && headers == [(SEQ_HEADER, Some(&buf.header[..]))]
        && timestamp == Timestamp::CreateTime(buf.timestamp_ms)
}

/// What [`read_back`] found, and the last records that differ from the
/// source's (one line each).
pub struct ReadBack {
    pub delivered: Delivered,
    pub problems: Vec<String>,
}

/// Which sequence numbers of one partition were read, and how often.
struct Seen {
    want: u64,
    bits: Vec<u64>,
    distinct: u64,
}

impl Seen {
    fn new(want: u64) -> Seen {
        Seen {
            want,
            bits: vec![0; want.div_ceil(64) as usize],
            distinct: 0,
        }
    }

    /// Marks `seq`; false when it was seen before or is not the source's.
    fn mark(&mut self, seq: u64) -> Option<bool> {
        if seq >= self.want {
            return None;
        }
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        let fresh = self.bits[word] & bit == 0;
        self.bits[word] |= bit;
        self.distinct += u64::from(fresh);
        Some(fresh)
    }
}

/// Reads every committed record of `topic` (copied from `dataset`, one
/// partition to the same partition) up to its last stable offsets, counting
/// each source record's copies, and compares the last record of every
/// partition with the source's.
pub fn read_back(
    config: &ClientConfig,
    topic: &str,
    dataset: &Dataset,
    timeout: Duration,
) -> Result<ReadBack> {
    let partitions = dataset.partitions;
    let high = end_offsets(config, "read_uncommitted", topic, partitions)?;
    let stable = end_offsets(config, "read_committed", topic, partitions)?;
    let want = dataset.per_partition();
    let mut seen: Vec<Seen> = want.iter().map(|&n| Seen::new(n.max(0) as u64)).collect();
    let mut done: Vec<bool> = stable.iter().map(|&s| s <= 0).collect();
    let mut delivered = Delivered {
        end_offsets: high.iter().map(|&h| h.max(0) as u64).sum(),
        open_transaction_offsets: high
            .iter()
            .zip(&stable)
            .map(|(h, s)| (h - s).max(0) as u64)
            .sum(),
        ..Default::default()
    };
    let mut problems = Vec::new();
    let reader = committed_reader(config)?;
    let mut assignment = TopicPartitionList::new();
    for p in (0..partitions).filter(|&p| !done[p as usize]) {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .context(|| format!("bad partition {topic}/{p}"))?;
    }
    reader.assign(&assignment)?;
    let mut buf = RecordBuf::default();
    let started = Instant::now();
    while !done.iter().all(|&d| d) {
        if started.elapsed() > timeout {
            bail!(
                "reading {topic:?} back took longer than {timeout:?} ({} records read)",
                delivered.records
            );
        }
        let p = match reader.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let p = message.partition() as usize;
                delivered.records += 1;
                match seq_of(&message).and_then(|seq| Some((seq, seen[p].mark(seq)?))) {
                    None => delivered.unexpected += 1,
                    Some((_, false)) => delivered.duplicates += 1,
                    Some((seq, true)) => {
                        if seq + 1 == seen[p].want {
                            dataset.render_at(p as i32, seq, &mut buf);
                            let headers: Vec<(&str, Option<&[u8]>)> = message
                                .headers()
                                .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
                                .unwrap_or_default();
                            if !same_record(
                                &buf,
                                message.key(),
                                message.payload(),
                                &headers,
                                message.timestamp(),
                            ) {
                                problems.push(format!(
                                    "partition {p}: the last record (offset {}) differs from the source's",
                                    message.offset()
                                ));
                            }
                        }
                    }
                }
                if message.offset() + 1 >= stable[p] {
                    done[p] = true;
                }
                continue;
            }
            Some(Err(KafkaError::PartitionEOF(p))) => p as usize,
            // A leader not known yet and the like: librdkafka retries, the
            // timeout bounds it.
            Some(Err(_)) | None => continue,
        };
        // The end of what is readable: past the stable offset unless the
        // rest are markers and aborted records the reader skipped.
        if let Ok(positions) = reader.position() {
            if let Some(Offset::Offset(at)) = positions
                .find_partition(topic, p as i32)
                .map(|e| e.offset())
            {
                done[p] |= at >= stable[p];
            }
        }
    }
    delivered.missing = seen.iter().map(|s| s.want - s.distinct).sum();
    delivered.hidden_offsets = delivered.end_offsets.saturating_sub(delivered.records);
    Ok(ReadBack {
        delivered,
        problems,
    })
}

/// Tells when the last source record of every partition of a target topic
/// is visible to a `read_committed` reader: the moment a replicator has
/// copied everything, whether its offsets also hold transaction markers or
/// duplicates. Replicators copy each partition in order, so its last record
/// arrives last.
pub struct TailWatch {
    reader: BaseConsumer,
    topic: String,
    want: Vec<i64>,
    /// Partitions whose last record was seen: committed records stay.
    seen: RefCell<Vec<bool>>,
    /// The reader's metadata holds the topic (see `caught_up`).
    warmed: std::cell::Cell<bool>,
}

impl TailWatch {
    pub fn new(config: &ClientConfig, topic: &str, want: Vec<i64>) -> Result<TailWatch> {
        Ok(TailWatch {
            reader: committed_reader(config)?,
            topic: topic.to_string(),
            seen: RefCell::new(want.iter().map(|&n| n <= 0).collect()),
            want,
            warmed: std::cell::Cell::new(false),
        })
    }

    /// Whether every partition's last record is there, given the topic's
    /// last stable offsets (as [`crate::workloads::watch`] lists them): a
    /// partition whose stable offset has not reached its record count
    /// cannot hold them all yet, the others are read from a little below
    /// that offset. Errors mean "not yet"; the watch's timeout bounds them.
    pub fn caught_up(&self, stable: &[i64]) -> bool {
        if !self.warmed.get() {
            // librdkafka looks up the leaders of an assigned topic it has no
            // metadata for only on its one-second topic scan: without this,
            // the first look at the tails (near the end of a run) would
            // wait for it, and the measured time with it. The watch calls
            // this once the topic exists, long before the end.
            self.warmed.set(
                self.reader
                    .fetch_metadata(Some(&self.topic), Duration::from_secs(5))
                    .is_ok_and(|m| m.topics().iter().any(|t| !t.partitions().is_empty())),
            );
        }
        let mut seen = self.seen.borrow_mut();
        let mut ready = true;
        let mut look = Vec::new();
        for (p, &want) in self.want.iter().enumerate() {
            if seen[p] {
                continue;
            }
            let end = stable.get(p).copied().unwrap_or(0);
            if end < want {
                ready = false;
            } else {
                look.push((p as i32, end));
            }
        }
        if look.is_empty() {
            return ready && seen.iter().all(|&s| s);
        }
        for p in self.tails(&look) {
            seen[p as usize] = true;
        }
        ready && seen.iter().all(|&s| s)
    }

    /// The partitions among `look` (partition, stable offset) whose last
    /// source record is among their committed records below that offset.
    fn tails(&self, look: &[(i32, i64)]) -> Vec<i32> {
        let mut assignment = TopicPartitionList::new();
        for &(p, end) in look {
            if assignment
                .add_partition_offset(&self.topic, p, Offset::Offset((end - TAIL).max(0)))
                .is_err()
            {
                return Vec::new();
            }
        }
        if self.reader.assign(&assignment).is_err() {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut pending: Vec<(i32, i64)> = look.to_vec();
        let started = Instant::now();
        while !pending.is_empty() && started.elapsed() < TAIL_TIMEOUT {
            let p = match self.reader.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let p = message.partition();
                    let last = self.want[p as usize] as u64 - 1;
                    if seq_of(&message).is_some_and(|seq| seq >= last) && !found.contains(&p) {
                        found.push(p);
                    }
                    if !pending
                        .iter()
                        .any(|&(q, end)| q == p && message.offset() + 1 < end)
                    {
                        pending.retain(|&(q, _)| q != p);
                    }
                    continue;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => p,
                Some(Err(_)) | None => continue,
            };
            pending.retain(|&(q, _)| q != p);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_each_sequence_number_once() {
        let mut seen = Seen::new(130);
        assert_eq!(seen.mark(0), Some(true));
        assert_eq!(seen.mark(129), Some(true));
        assert_eq!(seen.mark(129), Some(false));
        assert_eq!(seen.mark(130), None);
        assert_eq!(seen.distinct, 2);
    }
}
