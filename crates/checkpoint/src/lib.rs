//! Ferry's checkpoint crate: exact offset translation and MirrorMaker 2
//! compatible internal-topic records.
//!
//! Ferry sees every delivery report, so it knows exactly where upstream and
//! downstream offsets advance in lockstep. [`OffsetMap`] keeps that knowledge
//! compactly per partition and translates consumer-group offsets exactly
//! where the truth is determined, conservatively (never ahead) elsewhere.
//! [`SyncEmitter`] decides which offset syncs to write so that MM2 readers
//! keep their usual precision and a Ferry restart can rebuild the map
//! exactly.
//!
//! # Layout
//! - [`wire`]: byte-for-byte MM2 record formats (`OffsetSync`, `Checkpoint`,
//!   `Heartbeat`), MM2 topic names, and Ferry's sync-link header codec.
//! - [`offset_map`]: [`OffsetMap`], [`Translation`], [`Segment`], [`Gap`],
//!   [`OffsetMapError`]; the conventions for translation live there.
//! - `pair`: [`OffsetPair`], [`SyncLink`] and [`OffsetMapError`], shared by
//!   the modules below (it depends on none of them).
//! - [`sync`]: [`SyncEmitter`] (sync emission policy) and [`mm2_translate`]
//!   (MM2's rule, for comparison).
//! - [`rebuild`]: [`SyncReplay`], per-partition maps rebuilt from the raw
//!   records of an offset-syncs topic (Ferry's or MM2's).
//! - [`ledger`]: [`CheckpointLedger`], the last checkpoint per key and the
//!   rule deciding which checkpoints to write (only changes, never a rewind
//!   the source group did not make).
//! - [`group_sync`]: [`group_sync::plan`], which translated offsets to commit
//!   into a target consumer group (idle groups only, forwards only).
//!
//! # Example
//! ```
//! use ferry_checkpoint::{wire, OffsetMap, SyncEmitter, SyncLink, Translation};
//!
//! // Live: every delivery report of source partition orders/3, in order.
//! let mut map = OffsetMap::new();
//! let mut emitter = SyncEmitter::default();
//! let mut topic = Vec::new(); // stands in for the offset-syncs topic
//! for (upstream, downstream) in [(0, 0), (1, 1), (3, 2)] {
//!     // upstream 2 was a transaction marker
//!     map.record(upstream, downstream)?;
//!     if let Some(sync) = emitter.on_ack(upstream, downstream)? {
//!         let record = sync.to_offset_sync("orders", 3);
//!         let header = wire::encode_sync_link(&sync.link); // as wire::SYNC_LINK_HEADER
//!         topic.push((record.encode_key()?, record.encode_value(), header));
//!     }
//! }
//! assert_eq!(map.translate(2), Translation::Exact(2));
//! assert_eq!(map.translate(4), Translation::Conservative(3));
//!
//! // Restart: rebuild from the topic. A bad or missing header is `Foreign`.
//! let mut rebuilt = OffsetMap::new();
//! for (key, value, header) in &topic {
//!     let sync = wire::OffsetSync::decode(key, value)?;
//!     let link = wire::decode_sync_link(header.as_deref()).unwrap_or(SyncLink::Foreign);
//!     rebuilt.apply_sync(sync.pair(), link)?;
//! }
//! assert_eq!(rebuilt.translate(2), Translation::Exact(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything here is pure logic without I/O. The Kafka-facing writers and
//! readers (offset syncs, checkpoints, heartbeats, group offset sync) live in
//! the supervisor (`ferry_supervisor::checkpoints`), built on these types.

pub mod group_sync;
pub mod ledger;
pub mod offset_map;
mod pair;
pub mod rebuild;
pub mod sync;
pub mod wire;

pub use group_sync::{GroupSyncPlan, SkipReason, TargetGroup};
pub use ledger::{CheckpointKey, CheckpointLedger, Decision, Written};
pub use offset_map::{Gap, OffsetMap, OffsetMapError, Segment, Translation};
pub use pair::{OffsetPair, SyncLink};
pub use rebuild::SyncReplay;
pub use sync::{mm2_translate, EmittedSync, EncodedSync, SyncEmitter};
pub use wire::{DecodeError, EncodeError};
