//! Rebuilding offset maps from the records of an offset-syncs topic.
//!
//! [`SyncReplay`] takes the raw records (key, value, [`SYNC_LINK_HEADER`]
//! value) in topic order and keeps one [`OffsetMap`] per source
//! topic-partition. Ferry's syncs carry links and rebuild exact segments;
//! MirrorMaker 2's (no header) or undecodable links count as
//! [`SyncLink::Foreign`] points, which is always safe.
//!
//! Records that are not offset syncs (tombstones, garbage, another writer's
//! format) are skipped and counted, never fatal: a bad record must not stop
//! translation for every other partition.
//!
//! [`SYNC_LINK_HEADER`]: crate::wire::SYNC_LINK_HEADER

use std::collections::HashMap;
use std::num::NonZeroUsize;

use crate::offset_map::OffsetMap;
use crate::pair::SyncLink;
use crate::wire::{self, OffsetSync};

/// Per-partition maps rebuilt from an offset-syncs topic.
#[derive(Debug, Clone)]
pub struct SyncReplay {
    maps: HashMap<(String, i32), OffsetMap>,
    max_segments: NonZeroUsize,
    /// Syncs applied.
    pub applied: u64,
    /// Syncs without a usable Ferry link (MM2's, or a bad header).
    pub foreign: u64,
    /// Records that were not decodable offset syncs.
    pub skipped: u64,
}

impl Default for SyncReplay {
    fn default() -> Self {
        Self::new(NonZeroUsize::new(OffsetMap::DEFAULT_MAX_SEGMENTS).expect("non-zero default"))
    }
}

impl SyncReplay {
    /// Maps are created with `max_segments` (see [`OffsetMap`]'s memory
    /// bound).
    pub fn new(max_segments: NonZeroUsize) -> Self {
        SyncReplay {
            maps: HashMap::new(),
            max_segments,
            applied: 0,
            foreign: 0,
            skipped: 0,
        }
    }

    /// Applies one record of the topic; `value` is `None` for a tombstone,
    /// `link_header` is the [`wire::SYNC_LINK_HEADER`] value if present.
    pub fn apply_record(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        link_header: Option<&[u8]>,
    ) {
        let (Some(key), Some(value)) = (key, value) else {
            self.skipped += 1;
            return;
        };
        let Ok(sync) = OffsetSync::decode(key, value) else {
            self.skipped += 1;
            return;
        };
        let link = wire::decode_sync_link(link_header).unwrap_or(SyncLink::Foreign);
        if link == SyncLink::Foreign {
            self.foreign += 1;
        }
        let max = self.max_segments;
        let map = self
            .maps
            .entry((sync.topic.clone(), sync.partition))
            .or_insert_with(|| OffsetMap::with_max_segments(max));
        match map.apply_sync(sync.pair(), link) {
            Ok(()) => self.applied += 1,
            Err(_) => self.skipped += 1,
        }
    }

    /// The rebuilt map of one source partition.
    pub fn map(&self, topic: &str, partition: i32) -> Option<&OffsetMap> {
        self.maps.get(&(topic.to_string(), partition))
    }

    /// Number of partitions with at least one sync.
    pub fn partitions(&self) -> usize {
        self.maps.len()
    }

    /// Every rebuilt map, keyed by source (topic, partition).
    pub fn into_maps(self) -> HashMap<(String, i32), OffsetMap> {
        self.maps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncEmitter;
    use crate::Translation::{Conservative, Exact, Unknown};

    fn record(topic: &str, p: i32, s: &crate::EmittedSync) -> (Vec<u8>, Vec<u8>, Option<Vec<u8>>) {
        let r = s.to_offset_sync(topic, p);
        (
            r.encode_key().unwrap(),
            r.encode_value().to_vec(),
            wire::encode_sync_link(&s.link),
        )
    }

    #[test]
    fn rebuilds_each_partition_from_its_own_chain() {
        let mut replay = SyncReplay::default();
        let mut a = SyncEmitter::new(5);
        let mut b = SyncEmitter::new(5);
        for i in 0..20 {
            for (emitter, p, (u, d)) in [(&mut a, 0, (i, i)), (&mut b, 1, (2 * i, i))] {
                if let Some(s) = emitter.on_ack(u, d).unwrap() {
                    let (k, v, h) = record("orders", p, &s);
                    replay.apply_record(Some(&k), Some(&v), h.as_deref());
                }
            }
        }
        for (emitter, p) in [(&mut a, 0), (&mut b, 1)] {
            // Partition 1 synced every record (each one after a gap).
            if let Some(s) = emitter.flush() {
                let (k, v, h) = record("orders", p, &s);
                replay.apply_record(Some(&k), Some(&v), h.as_deref());
            }
        }
        assert_eq!(replay.partitions(), 2);
        assert_eq!(replay.foreign, 0);
        let m0 = replay.map("orders", 0).unwrap();
        assert_eq!(m0.translate(13), Exact(13));
        let m1 = replay.map("orders", 1).unwrap();
        // Every other upstream offset is a gap: the next record is exact.
        assert_eq!(m1.translate(13), Exact(7));
        assert_eq!(m1.translate(40), Conservative(20));
        assert!(replay.map("orders", 2).is_none());
    }

    #[test]
    fn mm2_records_are_points_and_garbage_is_skipped() {
        let mut replay = SyncReplay::default();
        for (u, d) in [(10, 100), (20, 110)] {
            let r = OffsetSync {
                topic: "t".into(),
                partition: 0,
                upstream_offset: u,
                downstream_offset: d,
            };
            replay.apply_record(
                Some(&r.encode_key().unwrap()),
                Some(&r.encode_value()),
                None,
            );
        }
        replay.apply_record(Some(b"junk"), Some(b"junk"), None);
        replay.apply_record(Some(b"junk"), None, None);
        replay.apply_record(None, Some(b"x"), None);
        assert_eq!((replay.applied, replay.foreign, replay.skipped), (2, 2, 3));
        let m = replay.map("t", 0).unwrap();
        assert_eq!(m.translate(5), Unknown);
        assert_eq!(m.translate(15), Conservative(101));
        assert_eq!(m.translate(20), Exact(110));
    }

    #[test]
    fn a_bad_link_header_degrades_to_a_point() {
        let mut replay = SyncReplay::default();
        let r = OffsetSync {
            topic: "t".into(),
            partition: 0,
            upstream_offset: 1,
            downstream_offset: 1,
        };
        replay.apply_record(
            Some(&r.encode_key().unwrap()),
            Some(&r.encode_value()),
            Some(b"\x7f"),
        );
        assert_eq!((replay.applied, replay.foreign), (1, 1));
    }
}
