//! MirrorMaker 2 internal-topic record formats, byte for byte, plus Ferry's
//! optional sync-link header.
//!
//! Source of truth: Apache Kafka `OffsetSync.java` (connect/mirror) and
//! `Checkpoint.java` / `Heartbeat.java` (connect/mirror-client). Everything is
//! Kafka protocol `Type` encoding, big-endian:
//!
//! | record     | key                                            | value                                                     |
//! |------------|------------------------------------------------|-----------------------------------------------------------|
//! | OffsetSync | topic STRING, partition INT32 (source TP)      | upstreamOffset INT64, offset INT64 — no version header    |
//! | Checkpoint | group STRING, topic STRING (remote), partition INT32 | version INT16 (=0), upstreamOffset INT64, offset INT64, metadata STRING |
//! | Heartbeat  | sourceClusterAlias STRING, targetClusterAlias STRING | version INT16 (=0), timestamp INT64                 |
//!
//! `STRING` is an INT16 byte length followed by that many UTF-8 bytes; it has
//! no null form.
//!
//! # Decoding policy
//! - Truncated input, negative string lengths, invalid UTF-8 and negative
//!   versions are rejected with a [`DecodeError`] naming the field.
//! - **Version 0 values and all keys are strict**: trailing bytes are an error.
//!   MM2 itself ignores trailing bytes, but at a known version the layout is
//!   fully known, so extra bytes mean corruption or a writer bug; silently
//!   accepting them would also make two different keys compare as "the same"
//!   record for us but not for log compaction.
//! - **Higher versions decode like MM2 does.** MM2's `valueSchema(version)` is
//!   `assert version == 0; return VALUE_SCHEMA_V0;`, and Java assertions are off
//!   in production, so MM2 reads the v0 fields as a prefix and ignores the
//!   rest. We do the same (a future version can only append fields and stay
//!   readable by deployed MM2), and expose [`Checkpoint::value_version`] /
//!   [`Heartbeat::value_version`] so callers can log that they saw one.
//! - Invalid UTF-8 is an error here; Java would silently substitute U+FFFD,
//!   which would turn a corrupt group name into a different, real-looking one.
//!
//! Values that are absent (compaction tombstones) are the reader's business:
//! MM2 never writes them, and this module only sees bytes.

use std::fmt;
use std::str::Utf8Error;

use crate::pair::{OffsetPair, SyncLink};

/// Topic that holds heartbeats on the target cluster of each flow.
pub const HEARTBEATS_TOPIC: &str = "heartbeats";

/// Version written in checkpoint values (MM2 `Checkpoint.VERSION`).
pub const CHECKPOINT_VERSION: i16 = 0;

/// Version written in heartbeat values (MM2 `Heartbeat.VERSION`).
pub const HEARTBEAT_VERSION: i16 = 0;

/// Kafka record header carrying a [`SyncLink`] on offset syncs that Ferry
/// writes. MM2 readers only look at key and value, so the header costs them
/// nothing; a Ferry reader uses it to rebuild exact segments (see
/// [`crate::sync`]).
pub const SYNC_LINK_HEADER: &str = "ferry.sync.link";

/// Version of the [`SYNC_LINK_HEADER`] value layout.
pub const SYNC_LINK_VERSION: i16 = 0;

/// Longest STRING payload in bytes (Kafka `Type.STRING` uses an INT16 length).
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// `mm2-offset-syncs.<alias>.internal`: MM2's offset-syncs topic, named
/// after the cluster at the other end of the flow from where it lives. Like
/// the checkpoints topic, DefaultReplicationPolicy puts its
/// `replication.policy.separator` in place of both dots
/// (`mm2-offset-syncs_<alias>_internal`), so a flow taking over from MM2
/// with that separator finds MM2's syncs.
pub fn offset_syncs_topic(alias: &str, separator: &str) -> String {
    format!("mm2-offset-syncs{separator}{alias}{separator}internal")
}

/// `<source>.checkpoints.internal`: MM2's checkpoints topic (on the target)
/// for flows from `source_alias`. MM2's DefaultReplicationPolicy puts its
/// `replication.policy.separator` in place of both dots
/// (`<source>_checkpoints_internal`), and `RemoteClusterUtils` configured
/// with that separator reads that name.
pub fn checkpoints_topic(source_alias: &str, separator: &str) -> String {
    format!("{source_alias}{separator}checkpoints{separator}internal")
}

/// Which record a field belongs to, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    OffsetSync,
    Checkpoint,
    Heartbeat,
    /// Ferry's [`SYNC_LINK_HEADER`] value.
    SyncLink,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordKind::OffsetSync => "OffsetSync",
            RecordKind::Checkpoint => "Checkpoint",
            RecordKind::Heartbeat => "Heartbeat",
            RecordKind::SyncLink => "SyncLink",
        })
    }
}

/// Which part of a Kafka record a field lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Key,
    Value,
    Header,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Key => "key",
            Part::Value => "value",
            Part::Header => "header",
        })
    }
}

/// A field of a record, named as in MM2's Java schema (`upstreamOffset`,
/// `offset`, ...), so errors can be matched against the Java sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldRef {
    pub record: RecordKind,
    pub part: Part,
    pub field: &'static str,
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} field `{}`", self.record, self.part, self.field)
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{at}: truncated, needs {needed} bytes but only {available} remain")]
    Truncated {
        at: FieldRef,
        needed: usize,
        available: usize,
    },
    #[error("{at}: negative string length {len}")]
    NegativeStringLength { at: FieldRef, len: i16 },
    #[error("{at}: invalid UTF-8")]
    InvalidUtf8 {
        at: FieldRef,
        #[source]
        source: Utf8Error,
    },
    #[error("{at}: unsupported version {version}")]
    UnsupportedVersion { at: FieldRef, version: i16 },
    #[error("{at}: unknown value {value}")]
    UnknownKind { at: FieldRef, value: i8 },
    #[error("{record} {part}: {count} unexpected trailing bytes after the last field")]
    TrailingBytes {
        record: RecordKind,
        part: Part,
        count: usize,
    },
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{at}: string is {len} bytes, STRING holds at most {MAX_STRING_LEN}")]
    StringTooLong { at: FieldRef, len: usize },
}

// ---------------------------------------------------------------------------
// Primitive codec
// ---------------------------------------------------------------------------

const fn field(record: RecordKind, part: Part, field: &'static str) -> FieldRef {
    FieldRef {
        record,
        part,
        field,
    }
}

/// Cursor over one record part. Carries record/part so every error can say
/// exactly where it happened.
struct Reader<'a> {
    buf: &'a [u8],
    record: RecordKind,
    part: Part,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], record: RecordKind, part: Part) -> Self {
        Reader { buf, record, part }
    }

    fn at(&self, name: &'static str) -> FieldRef {
        field(self.record, self.part, name)
    }

    fn take(&mut self, n: usize, name: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                at: self.at(name),
                needed: n,
                available: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, name: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, name)?;
        // `take` returned exactly N bytes.
        Ok(bytes.try_into().expect("take returned N bytes"))
    }

    fn i8(&mut self, name: &'static str) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.array(name)?))
    }

    fn i16(&mut self, name: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(name)?))
    }

    fn i32(&mut self, name: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(name)?))
    }

    fn i64(&mut self, name: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(name)?))
    }

    fn string(&mut self, name: &'static str) -> Result<String, DecodeError> {
        let len = self.i16(name)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::NegativeStringLength {
            at: self.at(name),
            len,
        })?;
        let bytes = self.take(len, name)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|source| DecodeError::InvalidUtf8 {
                at: self.at(name),
                source,
            })
    }

    /// Reads a version header. Negative versions are garbage, not "older".
    fn version(&mut self, name: &'static str) -> Result<i16, DecodeError> {
        let version = self.i16(name)?;
        if version < 0 {
            return Err(DecodeError::UnsupportedVersion {
                at: self.at(name),
                version,
            });
        }
        Ok(version)
    }

    /// Strict end: no bytes may remain.
    fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                record: self.record,
                part: self.part,
                count: self.buf.len(),
            })
        }
    }

    /// End of a versioned value: strict at the version we know, lenient
    /// (MM2-compatible) above it.
    fn finish_versioned(self, version: i16, known: i16) -> Result<(), DecodeError> {
        if version > known {
            Ok(())
        } else {
            self.finish()
        }
    }
}

fn string_len(s: &str, at: FieldRef) -> Result<usize, EncodeError> {
    if s.len() > MAX_STRING_LEN {
        return Err(EncodeError::StringTooLong { at, len: s.len() });
    }
    Ok(2 + s.len())
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    // Length already checked by `string_len`.
    let len = i16::try_from(s.len()).expect("string length checked before encoding");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

// ---------------------------------------------------------------------------
// OffsetSync
// ---------------------------------------------------------------------------

/// MM2 `OffsetSync`: upstream record `upstream_offset` of the **source**
/// `topic`/`partition` was written at `downstream_offset` on the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetSync {
    pub topic: String,
    pub partition: i32,
    pub upstream_offset: i64,
    pub downstream_offset: i64,
}

impl OffsetSync {
    const KEY_TOPIC: FieldRef = field(RecordKind::OffsetSync, Part::Key, "topic");

    /// Value size: two INT64, no version header.
    pub const VALUE_LEN: usize = 16;

    /// Key bytes: topic STRING, partition INT32.
    pub fn encode_key(&self) -> Result<Vec<u8>, EncodeError> {
        let len = string_len(&self.topic, Self::KEY_TOPIC)? + 4;
        let mut buf = Vec::with_capacity(len);
        put_string(&mut buf, &self.topic);
        buf.extend_from_slice(&self.partition.to_be_bytes());
        Ok(buf)
    }

    /// Value bytes: upstreamOffset INT64, offset INT64.
    pub fn encode_value(&self) -> [u8; Self::VALUE_LEN] {
        let mut buf = [0u8; Self::VALUE_LEN];
        buf[..8].copy_from_slice(&self.upstream_offset.to_be_bytes());
        buf[8..].copy_from_slice(&self.downstream_offset.to_be_bytes());
        buf
    }

    /// Decodes a whole record. Both parts are strict (no version to hide
    /// behind: an unversioned value that grew would be a format break).
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new(key, RecordKind::OffsetSync, Part::Key);
        let topic = k.string("topic")?;
        let partition = k.i32("partition")?;
        k.finish()?;
        let mut v = Reader::new(value, RecordKind::OffsetSync, Part::Value);
        let upstream_offset = v.i64("upstreamOffset")?;
        let downstream_offset = v.i64("offset")?;
        v.finish()?;
        Ok(OffsetSync {
            topic,
            partition,
            upstream_offset,
            downstream_offset,
        })
    }

    /// The offset pair, for [`crate::OffsetMap::apply_sync`].
    pub fn pair(&self) -> OffsetPair {
        OffsetPair::new(self.upstream_offset, self.downstream_offset)
    }
}

// ---------------------------------------------------------------------------
// Checkpoint
// ---------------------------------------------------------------------------

/// MM2 `Checkpoint`: consumer `group`'s committed offset `upstream_offset` on
/// the source translates to `downstream_offset` on the target. `topic` is the
/// **remote** (target-side) topic name, e.g. `src.orders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub upstream_offset: i64,
    pub downstream_offset: i64,
    pub metadata: String,
}

impl Checkpoint {
    const KEY_GROUP: FieldRef = field(RecordKind::Checkpoint, Part::Key, "group");
    const KEY_TOPIC: FieldRef = field(RecordKind::Checkpoint, Part::Key, "topic");
    const VALUE_METADATA: FieldRef = field(RecordKind::Checkpoint, Part::Value, "metadata");

    /// Key bytes: group STRING, topic STRING, partition INT32.
    pub fn encode_key(&self) -> Result<Vec<u8>, EncodeError> {
        let len = string_len(&self.group, Self::KEY_GROUP)?
            + string_len(&self.topic, Self::KEY_TOPIC)?
            + 4;
        let mut buf = Vec::with_capacity(len);
        put_string(&mut buf, &self.group);
        put_string(&mut buf, &self.topic);
        buf.extend_from_slice(&self.partition.to_be_bytes());
        Ok(buf)
    }

    /// Value bytes at [`CHECKPOINT_VERSION`]: version INT16, upstreamOffset
    /// INT64, offset INT64, metadata STRING.
    pub fn encode_value(&self) -> Result<Vec<u8>, EncodeError> {
        let len = 2 + 8 + 8 + string_len(&self.metadata, Self::VALUE_METADATA)?;
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&CHECKPOINT_VERSION.to_be_bytes());
        buf.extend_from_slice(&self.upstream_offset.to_be_bytes());
        buf.extend_from_slice(&self.downstream_offset.to_be_bytes());
        put_string(&mut buf, &self.metadata);
        Ok(buf)
    }

    /// Decodes a whole record. See the module docs for the version policy.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new(key, RecordKind::Checkpoint, Part::Key);
        let group = k.string("group")?;
        let topic = k.string("topic")?;
        let partition = k.i32("partition")?;
        k.finish()?;
        let mut v = Reader::new(value, RecordKind::Checkpoint, Part::Value);
        let version = v.version("version")?;
        let upstream_offset = v.i64("upstreamOffset")?;
        let downstream_offset = v.i64("offset")?;
        let metadata = v.string("metadata")?;
        v.finish_versioned(version, CHECKPOINT_VERSION)?;
        Ok(Checkpoint {
            group,
            topic,
            partition,
            upstream_offset,
            downstream_offset,
            metadata,
        })
    }

    /// The version header of a checkpoint value, without decoding the rest.
    pub fn value_version(value: &[u8]) -> Result<i16, DecodeError> {
        Reader::new(value, RecordKind::Checkpoint, Part::Value).version("version")
    }
}

// ---------------------------------------------------------------------------
// Heartbeat
// ---------------------------------------------------------------------------

/// MM2 `Heartbeat`: emitted on the target of the `source_alias` →
/// `target_alias` flow at `timestamp_ms` (epoch milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Heartbeat {
    pub source_alias: String,
    pub target_alias: String,
    pub timestamp_ms: i64,
}

impl Heartbeat {
    const KEY_SOURCE: FieldRef = field(RecordKind::Heartbeat, Part::Key, "sourceClusterAlias");
    const KEY_TARGET: FieldRef = field(RecordKind::Heartbeat, Part::Key, "targetClusterAlias");

    /// Value size at [`HEARTBEAT_VERSION`]: version INT16 + timestamp INT64.
    pub const VALUE_LEN: usize = 10;

    /// Key bytes: sourceClusterAlias STRING, targetClusterAlias STRING.
    pub fn encode_key(&self) -> Result<Vec<u8>, EncodeError> {
        let len = string_len(&self.source_alias, Self::KEY_SOURCE)?
            + string_len(&self.target_alias, Self::KEY_TARGET)?;
        let mut buf = Vec::with_capacity(len);
        put_string(&mut buf, &self.source_alias);
        put_string(&mut buf, &self.target_alias);
        Ok(buf)
    }

    /// Value bytes: version INT16, timestamp INT64.
    pub fn encode_value(&self) -> [u8; Self::VALUE_LEN] {
        let mut buf = [0u8; Self::VALUE_LEN];
        buf[..2].copy_from_slice(&HEARTBEAT_VERSION.to_be_bytes());
        buf[2..].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        buf
    }

    /// Decodes a whole record. See the module docs for the version policy.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self, DecodeError> {
        let mut k = Reader::new(key, RecordKind::Heartbeat, Part::Key);
        let source_alias = k.string("sourceClusterAlias")?;
        let target_alias = k.string("targetClusterAlias")?;
        k.finish()?;
        let mut v = Reader::new(value, RecordKind::Heartbeat, Part::Value);
        let version = v.version("version")?;
        let timestamp_ms = v.i64("timestamp")?;
        v.finish_versioned(version, HEARTBEAT_VERSION)?;
        Ok(Heartbeat {
            source_alias,
            target_alias,
            timestamp_ms,
        })
    }

    /// The version header of a heartbeat value, without decoding the rest.
    pub fn value_version(value: &[u8]) -> Result<i16, DecodeError> {
        Reader::new(value, RecordKind::Heartbeat, Part::Value).version("version")
    }
}

// ---------------------------------------------------------------------------
// Ferry sync-link header
// ---------------------------------------------------------------------------

const LINK_CHAIN_START: i8 = 0;
const LINK_CONTINUES: i8 = 1;
const LINK_NEW_RUN: i8 = 2;

/// Encodes the [`SYNC_LINK_HEADER`] value for a sync Ferry writes; `None` for
/// [`SyncLink::Foreign`] (write no header).
///
/// Layout: version INT16 (=0), kind INT8 (0 chain start, 1 continues,
/// 2 new run), then for kinds 1 and 2 the previous sync's upstream INT64 and
/// downstream INT64, then for kind 2 the previous run's exclusive upstream end
/// INT64.
pub fn encode_sync_link(link: &SyncLink) -> Option<Vec<u8>> {
    let (kind, prev, run_end) = match *link {
        SyncLink::Foreign => return None,
        SyncLink::ChainStart => (LINK_CHAIN_START, None, None),
        SyncLink::Continues { prev } => (LINK_CONTINUES, Some(prev), None),
        SyncLink::NewRun { prev, prev_run_end } => (LINK_NEW_RUN, Some(prev), Some(prev_run_end)),
    };
    let mut buf = Vec::with_capacity(2 + 1 + 8 + 8 + 8);
    buf.extend_from_slice(&SYNC_LINK_VERSION.to_be_bytes());
    buf.extend_from_slice(&kind.to_be_bytes());
    if let Some(prev) = prev {
        buf.extend_from_slice(&prev.upstream.to_be_bytes());
        buf.extend_from_slice(&prev.downstream.to_be_bytes());
    }
    if let Some(end) = run_end {
        buf.extend_from_slice(&end.to_be_bytes());
    }
    Some(buf)
}

/// Decodes the [`SYNC_LINK_HEADER`] value of an offset-sync record; a missing
/// header (`None`) is [`SyncLink::Foreign`].
///
/// Unlike the MM2 records, a newer version is an error, not a prefix to read:
/// a link we misunderstand could make a rebuilt map claim exactness it does
/// not have. Callers should treat **any error as [`SyncLink::Foreign`]**,
/// which is always safe (MM2-level precision for that sync).
pub fn decode_sync_link(header: Option<&[u8]>) -> Result<SyncLink, DecodeError> {
    let Some(bytes) = header else {
        return Ok(SyncLink::Foreign);
    };
    let mut r = Reader::new(bytes, RecordKind::SyncLink, Part::Header);
    let version = r.version("version")?;
    if version != SYNC_LINK_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            at: r.at("version"),
            version,
        });
    }
    let link = match r.i8("kind")? {
        LINK_CHAIN_START => SyncLink::ChainStart,
        kind @ (LINK_CONTINUES | LINK_NEW_RUN) => {
            let prev = OffsetPair::new(r.i64("prevUpstream")?, r.i64("prevDownstream")?);
            if kind == LINK_CONTINUES {
                SyncLink::Continues { prev }
            } else {
                SyncLink::NewRun {
                    prev,
                    prev_run_end: r.i64("prevRunEnd")?,
                }
            }
        }
        value => {
            return Err(DecodeError::UnknownKind {
                at: r.at("kind"),
                value,
            })
        }
    };
    r.finish()?;
    Ok(link)
}

#[cfg(test)]
mod tests;
