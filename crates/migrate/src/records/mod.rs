//! Reading partitions back and deciding whether two records are the same
//! replicated record. The building blocks of `ferry verify` (and `ferry
//! plan`'s size samples) and of `ferry demo`'s final check.
//!
//! # What "the same record" means
//! Key, value, headers in order (repeated names kept, a null header value
//! distinct from an empty one) and timestamp in milliseconds. Ferry's own
//! [`PROVENANCE_HEADER`] is ignored: the target has it and the source may
//! not. The timestamp *type* is not compared (a target topic configured with
//! `LogAppendTime` shows up as a timestamp difference anyway). Offsets and
//! partitions are positions, not content: callers align them.
//!
//! # Digest
//! [`RecordDigest`] is SHA-256 over the records in order, each framed
//! unambiguously (lengths before bytes, a flag for null), so equal digests
//! mean equal sequences of records and the value is stable across Ferry
//! versions and machines.
//!
//! # Reading
//! `reader::RangeReader` streams one partition's records in `[from, end)`
//! from a consumer that is assigned manually (no group is joined, nothing is
//! committed) and reads committed records only. It holds one record at a
//! time; librdkafka's prefetch is bounded by `reader::range_consumer`'s
//! settings. The consumer can be reused for one partition after another.

pub(crate) mod reader;

use std::time::Duration;

use ferry_config::Cluster;
use ferry_supervisor::{EngineError, PROVENANCE_HEADER};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

use reader::{range_consumer, RangeReader};

/// Headers that count as content: all but Ferry's provenance header.
fn content_headers<M: Message>(m: &M) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
    m.headers()
        .into_iter()
        .flat_map(|h| (0..h.count()).filter_map(move |i| h.try_get(i)))
        .filter(|h| h.key != PROVENANCE_HEADER)
        .map(|h| (h.key, h.value))
}

/// A part of a record that can differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Field {
    Key,
    Value,
    Headers,
    Timestamp,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::Key => "key",
            Field::Value => "value",
            Field::Headers => "headers",
            Field::Timestamp => "timestamp",
        })
    }
}

/// Every part in which two records differ (empty when they are the same
/// replicated record; see the module docs).
pub fn differences<A: Message, B: Message>(a: &A, b: &B) -> Vec<Field> {
    let mut out = Vec::new();
    if a.key() != b.key() {
        out.push(Field::Key);
    }
    if a.payload() != b.payload() {
        out.push(Field::Value);
    }
    if !content_headers(a).eq(content_headers(b)) {
        out.push(Field::Headers);
    }
    if a.timestamp().to_millis() != b.timestamp().to_millis() {
        out.push(Field::Timestamp);
    }
    out
}

/// True when two records are the same replicated record.
pub fn same_record<A: Message, B: Message>(a: &A, b: &B) -> bool {
    a.key() == b.key()
        && a.payload() == b.payload()
        && a.timestamp().to_millis() == b.timestamp().to_millis()
        && content_headers(a).eq(content_headers(b))
}

/// The provenance trail of a record (clusters it has been on, oldest first).
pub fn provenance<M: Message>(m: &M) -> Option<String> {
    let h = m.headers()?;
    (0..h.count())
        .filter_map(|i| h.try_get(i))
        .find(|h| h.key == PROVENANCE_HEADER)
        .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
}

/// Order-sensitive SHA-256 of a sequence of records (see the module docs).
#[derive(Clone)]
pub struct RecordDigest {
    hasher: Sha256,
    records: u64,
}

impl Default for RecordDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordDigest {
    pub fn new() -> Self {
        Self {
            hasher: Sha256::new(),
            records: 0,
        }
    }

    pub fn add<M: Message>(&mut self, m: &M) {
        fn bytes(h: &mut Sha256, b: Option<&[u8]>) {
            match b {
                None => h.update([0u8]),
                Some(b) => {
                    h.update([1u8]);
                    h.update((b.len() as u64).to_be_bytes());
                    h.update(b);
                }
            }
        }
        let h = &mut self.hasher;
        h.update(m.timestamp().to_millis().unwrap_or(i64::MIN).to_be_bytes());
        bytes(h, m.key());
        bytes(h, m.payload());
        h.update((content_headers(m).count() as u64).to_be_bytes());
        for (k, v) in content_headers(m) {
            bytes(h, Some(k.as_bytes()));
            bytes(h, v);
        }
        self.records += 1;
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// The digest in lower-case hex (64 characters).
    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes shown to a person: size and a short preview, as text when printable
/// UTF-8, else hex. `size: None` is null (no key, a tombstone, a null header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BytesPreview {
    pub size: Option<usize>,
    /// `"text"` (quoted in [`Display`](std::fmt::Display)) or `0x…` hex;
    /// cut to [`PREVIEW_BYTES`] with `…` appended.
    pub preview: Option<String>,
}

/// How many bytes a preview shows.
pub const PREVIEW_BYTES: usize = 32;

impl BytesPreview {
    pub fn of(bytes: Option<&[u8]>) -> Self {
        let Some(bytes) = bytes else {
            return Self {
                size: None,
                preview: None,
            };
        };
        let cut = &bytes[..bytes.len().min(PREVIEW_BYTES)];
        let more = if bytes.len() > PREVIEW_BYTES {
            "…"
        } else {
            ""
        };
        let preview = match std::str::from_utf8(cut) {
            Ok(text) if !text.chars().any(char::is_control) => format!("{text:?}{more}"),
            _ => format!("0x{}{more}", hex(cut)),
        };
        Self {
            size: Some(bytes.len()),
            preview: Some(preview),
        }
    }
}

impl std::fmt::Display for BytesPreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.size, &self.preview) {
            (Some(n), Some(p)) => write!(f, "{n} B {p}"),
            _ => f.write_str("null"),
        }
    }
}

/// One header of a [`RecordDescription`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderPreview {
    pub key: String,
    pub value: BytesPreview,
}

/// A record described for a person: where it is and what it holds, in
/// short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordDescription {
    pub offset: i64,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// `create-time`, `log-append-time` or `none`.
    pub timestamp_type: &'static str,
    pub key: BytesPreview,
    pub value: BytesPreview,
    /// Every header in order, Ferry's provenance header included (it is
    /// shown, though never compared).
    pub headers: Vec<HeaderPreview>,
}

/// Describes a record (see [`RecordDescription`]).
pub fn describe<M: Message>(m: &M) -> RecordDescription {
    let (timestamp, timestamp_type) = match m.timestamp() {
        Timestamp::NotAvailable => (None, "none"),
        Timestamp::CreateTime(t) => (Some(t), "create-time"),
        Timestamp::LogAppendTime(t) => (Some(t), "log-append-time"),
    };
    let headers = m
        .headers()
        .into_iter()
        .flat_map(|h| (0..h.count()).filter_map(move |i| h.try_get(i)))
        .map(|h| HeaderPreview {
            key: h.key.to_string(),
            value: BytesPreview::of(h.value),
        })
        .collect();
    RecordDescription {
        offset: m.offset(),
        timestamp,
        timestamp_type,
        key: BytesPreview::of(m.key()),
        value: BytesPreview::of(m.payload()),
        headers,
    }
}

impl std::fmt::Display for RecordDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "offset {}, timestamp ", self.offset)?;
        match self.timestamp {
            Some(t) => write!(f, "{t} ({})", self.timestamp_type)?,
            None => f.write_str("none")?,
        }
        write!(f, ", key {}, value {}, headers [", self.key, self.value)?;
        for (i, h) in self.headers.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match &h.value.preview {
                Some(p) => write!(f, "{sep}{}={p}", h.key)?,
                None => write!(f, "{sep}{}=null", h.key)?,
            }
        }
        f.write_str("]")
    }
}

/// Record count and order-sensitive digest of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionDigest {
    pub records: u64,
    /// The first 8 bytes of the [`RecordDigest`].
    pub digest: u64,
}

/// Reads `topic`/`partition` from its log start to its current end and
/// digests every record (see the module docs). Blocking: call from a
/// blocking thread. `timeout` bounds each wait for a record.
pub fn digest_partition(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<PartitionDigest, EngineError> {
    let fail = |cause: String| EngineError::Partition {
        cluster: cluster.name.clone(),
        topic: topic.to_string(),
        partition,
        cause,
    };
    let consumer = range_consumer(cluster, "ferry-verify")?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, timeout)
        .map_err(|e| fail(format!("cannot read watermarks: {e}")))?;
    let mut reader = RangeReader::new(&consumer, topic, partition, low, high)
        .map_err(fail)?
        .with_stall_timeout(timeout);
    let mut digest = RecordDigest::new();
    while let Some(msg) = reader.next_record().map_err(fail)? {
        digest.add(&msg);
    }
    drop(reader);
    let records = digest.records();
    let full = digest.finish();
    Ok(PartitionDigest {
        records,
        digest: u64::from_str_radix(&full[..16], 16).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

    fn msg(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        ts: i64,
    ) -> OwnedMessage {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header { key: k, value: *v });
        }
        OwnedMessage::new(
            value.map(<[u8]>::to_vec),
            key.map(<[u8]>::to_vec),
            "t".into(),
            Timestamp::CreateTime(ts),
            0,
            7,
            Some(h),
        )
    }

    fn digest(msgs: &[&OwnedMessage]) -> String {
        let mut d = RecordDigest::new();
        for m in msgs {
            d.add(*m);
        }
        d.finish()
    }

    #[test]
    fn provenance_is_ignored_everything_else_compared() {
        let a = msg(Some(b"k"), Some(b"v"), &[("h", Some(b"1"))], 5);
        let b = msg(
            Some(b"k"),
            Some(b"v"),
            &[("h", Some(b"1")), (PROVENANCE_HEADER, Some(b"src"))],
            5,
        );
        assert!(same_record(&a, &b));
        assert!(differences(&a, &b).is_empty());
        assert_eq!(digest(&[&a]), digest(&[&b]));

        let other_header = msg(Some(b"k"), Some(b"v"), &[("h", None)], 5);
        assert_eq!(differences(&a, &other_header), vec![Field::Headers]);
        let empty_header = msg(Some(b"k"), Some(b"v"), &[("h", Some(b""))], 5);
        assert_ne!(digest(&[&other_header]), digest(&[&empty_header]));
        let other = msg(None, Some(b"w"), &[("h", Some(b"1"))], 6);
        assert_eq!(
            differences(&a, &other),
            vec![Field::Key, Field::Value, Field::Timestamp]
        );
        assert!(!same_record(&a, &other));
    }

    #[test]
    fn the_digest_is_order_sensitive_and_framed() {
        let a = msg(Some(b"ab"), Some(b"c"), &[], 1);
        let b = msg(Some(b"a"), Some(b"bc"), &[], 1);
        assert_ne!(digest(&[&a]), digest(&[&b]), "framing keeps fields apart");
        assert_ne!(digest(&[&a, &b]), digest(&[&b, &a]));
        let tombstone = msg(Some(b"ab"), None, &[], 1);
        let empty = msg(Some(b"ab"), Some(b""), &[], 1);
        assert_ne!(digest(&[&tombstone]), digest(&[&empty]));
        assert_eq!(digest(&[]).len(), 64);
    }

    #[test]
    fn descriptions_are_short_and_readable() {
        let long = vec![b'x'; 100];
        let m = msg(
            Some(b"key-1"),
            Some(&long),
            &[("bin", Some(&[0, 255])), ("n", None)],
            42,
        );
        let d = describe(&m);
        assert_eq!(d.offset, 7);
        assert_eq!(d.value.size, Some(100));
        let text = d.to_string();
        assert!(
            text.starts_with(
                "offset 7, timestamp 42 (create-time), key 5 B \"key-1\", value 100 B \"xxxx"
            ),
            "{text}"
        );
        assert!(text.contains("…, headers [bin=0x00ff, n=null]"), "{text}");
        let tombstone = describe(&msg(None, None, &[], 1));
        assert!(tombstone.to_string().contains("key null, value null"));
    }
}
