//! W4 in process: Ferry's offset maps at 10,000 partitions, and the CPU part
//! of a checkpoint cycle over them (`ferry-bench w4-map`, a hidden
//! subcommand the harness runs as its own process, so that its heap and
//! peak RSS are the maps' and nothing else's).
//!
//! Every partition gets what the supervisor keeps per replicated partition
//! (`ferry_supervisor::checkpoints::PartitionOffsets`): an [`OffsetMap`] and
//! a [`SyncEmitter`], fed with one delivery report per record, in order, as
//! the delivery thread feeds them. The records are either contiguous (one
//! segment per partition) or transactions of `gap_every` records, each
//! followed by a commit marker that is not copied (a new segment per
//! transaction, the gap between them known to be empty).
//!
//! A cycle then does, for every group and every partition, what
//! `Cycle::once` does between its admin round trips: translate the committed
//! offset, ask the [`CheckpointLedger`] whether it is worth a checkpoint,
//! encode the checkpoint record and commit it to the ledger. It leaves out
//! listing groups, reading their offsets and producing the records (I/O the
//! broker part of W4 measures for real). Every group advances every cycle,
//! so every cycle writes nearly every checkpoint: the worst case.
//!
//! Afterwards every translation is checked against the true downstream
//! position, which the generated layout gives in closed form, and so is
//! MirrorMaker 2's rule applied to the syncs the emitters wrote.

use std::collections::BTreeMap;
use std::time::Instant;

use ferry_checkpoint::wire::Checkpoint;
use ferry_checkpoint::{
    mm2_translate, CheckpointKey, CheckpointLedger, Decision, OffsetMap, OffsetPair, SyncEmitter,
};

use crate::error::Result;
use crate::report::{CycleTimes, OffsetMapScale, TranslationError};

/// Partitions per topic, as in the broker part.
const PARTITIONS_PER_TOPIC: u64 = 8;
/// How far each group's committed offset moves per cycle.
const STEP: i64 = 7;
/// The source alias of the remote topic names (`src.<topic>`).
const ALIAS: &str = "src";

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub partitions: u64,
    pub records_per_partition: u64,
    /// Records per transaction; `None` = contiguous.
    pub gap_every: Option<u64>,
    pub groups: u64,
    pub cycles: u64,
}

impl Shape {
    /// Source and target offsets of the `i`-th copied record of a partition.
    fn pair(&self, i: i64) -> (i64, i64) {
        match self.gap_every {
            None => (i, i),
            // Transaction k holds upstream [k(T+1), k(T+1)+T), its marker
            // sits at k(T+1)+T; downstream is contiguous.
            Some(t) => {
                let t = t as i64;
                ((i / t) * (t + 1) + i % t, i)
            }
        }
    }

    /// The source partition's end offset.
    fn upstream_end(&self) -> i64 {
        self.pair(self.records_per_partition as i64 - 1).0 + 1
    }

    /// Target offset of the first copied record at or after upstream `u`
    /// (the target's end when there is none).
    fn truth(&self, u: i64) -> i64 {
        match self.gap_every {
            None => u.min(self.records_per_partition as i64),
            Some(t) => {
                let t = t as i64;
                let (k, r) = (u / (t + 1), u % (t + 1));
                let d = if r < t { k * t + r } else { (k + 1) * t };
                d.min(self.records_per_partition as i64)
            }
        }
    }

    /// Group `g`'s committed offset on partition `index` in cycle `cycle`:
    /// spread over the partition, moving by [`STEP`] per cycle, group 0
    /// always at the end (caught up).
    fn committed(&self, g: u64, index: u64, cycle: u64) -> i64 {
        let end = self.upstream_end();
        if g == 0 {
            return end;
        }
        let room = (end - (self.cycles as i64 - 1) * STEP).max(1);
        let base = (splitmix(g << 32 | index) % room as u64) as i64;
        (base + cycle as i64 * STEP).min(end)
    }
}

/// A well-mixed hash, so committed offsets spread without a pattern.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes the allocator hands out right now (glibc: every arena plus mmapped
/// chunks).
fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// What the supervisor keeps per replicated partition.
struct PartitionState {
    map: OffsetMap,
    emitter: SyncEmitter,
}

/// `ferry-bench w4-map`: builds, cycles, checks; prints the
/// [`OffsetMapScale`] as one JSON line.
pub fn main(shape: Shape) -> Result<()> {
    let scale = measure(shape)?;
    println!("{}", serde_json::to_string(&scale)?);
    Ok(())
}

pub fn measure(shape: Shape) -> Result<OffsetMapScale> {
    if shape.partitions == 0 || shape.records_per_partition == 0 || shape.cycles == 0 {
        crate::bail!("w4-map needs partitions, records and cycles above 0");
    }
    let topics: Vec<String> = (0..shape.partitions.div_ceil(PARTITIONS_PER_TOPIC))
        .map(|t| format!("w4-{t:04}"))
        .collect();
    // Partition index → (topic, partition).
    let layout: Vec<(usize, i32)> = (0..shape.partitions)
        .map(|i| {
            (
                (i / PARTITIONS_PER_TOPIC) as usize,
                (i % PARTITIONS_PER_TOPIC) as i32,
            )
        })
        .collect();

    let heap_before = heap_in_use();
    let started = Instant::now();
    // Source topic → partitions, as the registry keys them.
    let mut registry: BTreeMap<&str, Vec<PartitionState>> = BTreeMap::new();
    let mut offset_syncs = 0u64;
    for &(topic, _) in &layout {
        let mut state = PartitionState {
            map: OffsetMap::new(),
            emitter: SyncEmitter::default(),
        };
        for i in 0..shape.records_per_partition as i64 {
            let (u, d) = shape.pair(i);
            state.map.record(u, d)?;
            if state.emitter.on_ack(u, d).ok().flatten().is_some() {
                offset_syncs += 1;
            }
        }
        registry
            .entry(topics[topic].as_str())
            .or_default()
            .push(state);
    }
    let build_seconds = started.elapsed().as_secs_f64();
    let heap_bytes = heap_in_use()
        .zip(heap_before)
        .map(|(a, b)| a.saturating_sub(b));
    let (segments, map_bytes) = registry.values().flatten().fold((0u64, 0u64), |(s, b), p| {
        (
            s + p.map.segment_count() as u64,
            b + p.map.approx_bytes() as u64,
        )
    });

    let groups: Vec<String> = (0..shape.groups).map(|g| format!("group-{g:03}")).collect();
    let mut ledger = CheckpointLedger::new();
    let ledger_before = heap_in_use();
    let mut times = Vec::new();
    let mut written = Vec::new();
    for cycle in 0..shape.cycles {
        let started = Instant::now();
        // The cycle first ends every sync chain at the last ack.
        for state in registry.values_mut().flatten() {
            if state.emitter.flush().is_some() {
                offset_syncs += 1;
            }
        }
        let mut checkpoints = 0u64;
        let mut bytes = 0usize;
        for (g, group) in groups.iter().enumerate() {
            let mut index = 0u64;
            for (topic, partitions) in &registry {
                for (p, state) in partitions.iter().enumerate() {
                    let upstream = shape.committed(g as u64, index, cycle);
                    index += 1;
                    let key = CheckpointKey {
                        group: group.clone(),
                        topic: format!("{ALIAS}.{topic}"),
                        partition: p as i32,
                    };
                    let translation = state.map.translate(upstream);
                    if let Decision::Emit { downstream } =
                        ledger.decide(&key, upstream, translation)
                    {
                        let cp = Checkpoint {
                            group: key.group.clone(),
                            topic: key.topic.clone(),
                            partition: key.partition,
                            upstream_offset: upstream,
                            downstream_offset: downstream,
                            metadata: String::new(),
                        };
                        let encoded = cp.encode_key().and_then(|k| Ok((k, cp.encode_value()?)));
                        if let Ok((k, v)) = encoded {
                            bytes += k.len() + v.len();
                        }
                        ledger.commit(key, upstream, downstream);
                        checkpoints += 1;
                    }
                }
            }
        }
        times.push(started.elapsed().as_secs_f64());
        // Keep the encoded bytes observable so the encoding is not optimised
        // away.
        std::hint::black_box(bytes);
        written.push(checkpoints);
    }
    let ledger_heap_bytes = heap_in_use()
        .zip(ledger_before)
        .map(|(a, b)| a.saturating_sub(b));

    // Check the last cycle's offsets against the truth, for Ferry's maps
    // and for MM2's rule on the syncs the emitters wrote (regenerated per
    // partition: keeping them all would inflate the heap measured above).
    let last = shape.cycles - 1;
    let mut translation = TranslationError::default();
    let mut mm2_rule = TranslationError::default();
    let mut index = 0u64;
    for partitions in registry.values() {
        for state in partitions {
            let mut emitter = SyncEmitter::default();
            let mut syncs: Vec<OffsetPair> = (0..shape.records_per_partition as i64)
                .filter_map(|i| {
                    let (u, d) = shape.pair(i);
                    emitter.on_ack(u, d).ok().flatten().map(|s| s.pair)
                })
                .collect();
            syncs.extend(emitter.flush().map(|s| s.pair));
            for g in 0..shape.groups {
                let upstream = shape.committed(g, index, last);
                let truth = shape.truth(upstream);
                translation.add(state.map.translate(upstream).offset(), truth);
                mm2_rule.add(mm2_translate(&syncs, upstream), truth);
            }
            index += 1;
        }
    }
    Ok(OffsetMapScale {
        partitions: shape.partitions,
        records_per_partition: shape.records_per_partition,
        gap_every: shape.gap_every,
        segments,
        map_bytes,
        heap_bytes,
        build_seconds,
        groups: shape.groups,
        offsets_per_cycle: shape.groups * shape.partitions,
        // The steady cycles: the first one also fills the empty ledger.
        checkpoints_per_cycle: written
            .iter()
            .skip(1)
            .min()
            .or(written.first())
            .copied()
            .unwrap_or(0),
        cycle: CycleTimes::of(times),
        ledger_heap_bytes,
        translation,
        mm2_rule_on_syncs: mm2_rule,
        offset_syncs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_is_the_first_copied_record_at_or_after_the_offset() {
        let shape = Shape {
            partitions: 1,
            records_per_partition: 10,
            gap_every: Some(4),
            groups: 1,
            cycles: 1,
        };
        // Upstream 0..4 → 0..4, marker 4, 5..9 → 4..8, marker 9, 10,11 → 8,9.
        assert_eq!(shape.pair(4), (5, 4));
        assert_eq!(shape.upstream_end(), 12);
        assert_eq!(shape.truth(3), 3);
        assert_eq!(shape.truth(4), 4);
        assert_eq!(shape.truth(9), 8);
        assert_eq!(shape.truth(12), 10);
    }

    #[test]
    fn ferry_translates_exactly_and_mm2s_rule_re_reads() {
        for gap_every in [None, Some(50)] {
            let shape = Shape {
                partitions: 16,
                records_per_partition: 1000,
                gap_every,
                groups: 4,
                cycles: 2,
            };
            let scale = measure(shape).unwrap();
            assert_eq!(scale.translation.offsets, 64);
            assert_eq!(scale.translation.exact, 64, "{gap_every:?}");
            assert_eq!(scale.mm2_rule_on_syncs.ahead, 0);
            assert!(scale.mm2_rule_on_syncs.behind > 0, "{gap_every:?}");
            assert_eq!(scale.cycle.cycles, 2);
            let per_partition = if gap_every.is_some() { 20 } else { 1 };
            assert_eq!(scale.segments, 16 * per_partition);
        }
    }
}
