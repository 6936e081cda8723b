use super::*;
use crate::sync::SyncEmitter;
use Translation::{Conservative, Exact, Unknown};

fn p(u: i64, d: i64) -> OffsetPair {
    OffsetPair::new(u, d)
}

fn map_of(pairs: &[(i64, i64)]) -> OffsetMap {
    let mut m = OffsetMap::new();
    for &(u, d) in pairs {
        m.record(u, d).unwrap();
    }
    m
}

fn run(u: i64, d: i64, n: i64) -> Vec<(i64, i64)> {
    (0..n).map(|i| (u + i, d + i)).collect()
}

fn shape(m: &OffsetMap) -> Vec<(i64, i64, u64)> {
    m.segments()
        .map(|s| (s.upstream_start(), s.downstream_start(), s.len()))
        .collect()
}

#[test]
fn segment_is_24_bytes() {
    assert_eq!(std::mem::size_of::<Segment>(), 24);
}

#[test]
fn empty_map_knows_nothing() {
    let m = OffsetMap::new();
    assert_eq!(m.translate(0), Unknown);
    assert_eq!(m.last_pair(), None);
    assert!(m.is_empty());
}

#[test]
fn contiguous_run() {
    let m = map_of(&run(100, 500, 10));
    assert_eq!(shape(&m), vec![(100, 500, 10)]);
    assert_eq!(m.translate(99), Unknown);
    assert_eq!(m.translate(100), Exact(500));
    assert_eq!(m.translate(109), Exact(509));
    // Everything up to 109 replicated, nothing after yet.
    assert_eq!(m.translate(110), Conservative(510));
    assert_eq!(m.translate(10_000), Conservative(510));
    assert_eq!(m.translate(-1), Unknown);
}

#[test]
fn upstream_gap_is_exact() {
    // 10..=12 never replicated (e.g. a commit marker at 10, aborted 11-12).
    let mut pairs = run(0, 0, 10);
    pairs.extend(run(13, 10, 5));
    let m = map_of(&pairs);
    assert_eq!(shape(&m), vec![(0, 0, 10), (13, 10, 5)]);
    assert_eq!(m.translate(9), Exact(9));
    for u in 10..=13 {
        assert_eq!(m.translate(u), Exact(10), "u={u}");
    }
    assert_eq!(m.translate(17), Exact(14));
    assert_eq!(m.translate(18), Conservative(15));
}

#[test]
fn downstream_gap_is_exact() {
    // Someone else wrote downstream 5..8.
    let mut pairs = run(0, 0, 5);
    pairs.extend(run(5, 8, 5));
    let m = map_of(&pairs);
    assert_eq!(shape(&m), vec![(0, 0, 5), (5, 8, 5)]);
    assert_eq!(m.translate(4), Exact(4));
    assert_eq!(m.translate(5), Exact(8));
}

#[test]
fn equal_gaps_on_both_sides_stay_two_segments() {
    let mut pairs = run(0, 0, 5);
    pairs.extend(run(7, 7, 5));
    let m = map_of(&pairs);
    assert_eq!(m.segment_count(), 2);
    // 5 and 6 were not replicated: the next record is 7 at 7.
    assert_eq!(m.translate(5), Exact(7));
}

#[test]
fn downstream_truncation_drops_contradicted_facts() {
    // Target truncated back to 6 after an unclean election; replication
    // goes on with upstream 10.
    let mut pairs = run(0, 0, 10);
    pairs.push((10, 6));
    let m = map_of(&pairs);
    assert_eq!(shape(&m), vec![(0, 0, 6), (10, 6, 1)]);
    assert_eq!(m.translate(5), Exact(5));
    // Upstream 6..9 are gone from the target; the next present record is
    // upstream 10 at 6.
    assert_eq!(m.translate(7), Exact(6));
    assert_eq!(m.translate(11), Conservative(7));
}

#[test]
fn target_recreated_resets_the_map() {
    let mut m = map_of(&run(50, 1000, 20));
    m.record(70, 0).unwrap();
    assert_eq!(shape(&m), vec![(70, 0, 1)]);
    assert_eq!(m.translate(60), Unknown);
    assert_eq!(m.translate(70), Exact(0));
}

#[test]
fn upstream_replay_maps_to_new_copies() {
    // Restart from progress 5 after records up to 9 were written.
    let mut pairs = run(0, 0, 10);
    pairs.extend(run(5, 10, 5));
    let m = map_of(&pairs);
    assert_eq!(shape(&m), vec![(0, 0, 5), (5, 10, 5)]);
    assert_eq!(m.translate(4), Exact(4));
    assert_eq!(m.translate(5), Exact(10));
    assert_eq!(m.translate(9), Exact(14));
}

#[test]
fn rewind_onto_an_existing_fact_truncates_and_reextends() {
    // Downstream offset 5 reused for upstream 5: everything from 5 on is
    // void, then the new fact continues the shortened run.
    let mut m = map_of(&run(0, 0, 10));
    m.record(5, 5).unwrap();
    assert_eq!(shape(&m), vec![(0, 0, 6)]);
    assert_eq!(m.translate(7), Conservative(6));
}

#[test]
fn session_break_makes_the_gap_unknown() {
    let mut m = map_of(&run(0, 0, 10));
    m.start_session();
    m.record(20, 30).unwrap();
    assert_eq!(m.segments().next().unwrap().gap_after(), Gap::Unknown);
    // Records 10..19 may have been written by the old session unseen.
    assert_eq!(m.translate(10), Conservative(10));
    assert_eq!(m.translate(19), Conservative(10));
    assert_eq!(m.translate(20), Exact(30));
    // A break that continues exactly is still one run: nothing can hide
    // between adjacent offsets.
    m.start_session();
    m.record(21, 31).unwrap();
    assert_eq!(m.segment_count(), 2);
}

#[test]
fn invalid_offsets_rejected_without_change() {
    let mut m = map_of(&run(0, 0, 3));
    assert_eq!(
        m.record(-1, 5),
        Err(OffsetMapError::InvalidOffset {
            upstream: -1,
            downstream: 5
        })
    );
    assert!(m.record(5, i64::MAX).is_err());
    assert!(m.apply_sync(p(i64::MAX, 0), SyncLink::Foreign).is_err());
    assert_eq!(shape(&m), vec![(0, 0, 3)]);
}

#[test]
fn eviction_drops_oldest_and_keeps_known_gap() {
    let mut m = OffsetMap::with_max_segments(NonZeroUsize::new(2).unwrap());
    for (u, d) in [(0, 0), (1, 1), (5, 2), (6, 3), (10, 4), (20, 5)] {
        m.record(u, d).unwrap();
    }
    // Segments were (0,0,2) (5,2,2) (10,4,1) (20,5,1); two evicted.
    assert_eq!(shape(&m), vec![(10, 4, 1), (20, 5, 1)]);
    assert_eq!(m.evictions(), 2);
    assert!(m.segment_count() <= m.max_segments());
    assert_eq!(m.translate(6), Unknown);
    // Gap 7..10 after the evicted (5,2,2) was known empty.
    assert_eq!(m.translate(7), Exact(4));
    assert_eq!(m.translate(10), Exact(4));
    assert_eq!(m.translate(11), Exact(5));
}

#[test]
fn eviction_of_unknown_gap_leaves_no_floor() {
    let mut m = OffsetMap::with_max_segments(NonZeroUsize::new(1).unwrap());
    m.record(0, 0).unwrap();
    m.start_session();
    m.record(5, 5).unwrap();
    assert_eq!(shape(&m), vec![(5, 5, 1)]);
    assert_eq!(m.translate(3), Unknown);
    assert_eq!(m.translate(5), Exact(5));
}

#[test]
fn approx_bytes_tracks_capacity() {
    let mut m = OffsetMap::new();
    let empty = m.approx_bytes();
    for i in 0..1000 {
        m.record(2 * i, i).unwrap(); // every record its own segment
    }
    assert_eq!(m.segment_count(), 1000);
    assert!(m.approx_bytes() >= empty + 1000 * 24);
    assert!(m.approx_bytes() <= empty + 2048 * 24);
}

#[test]
fn long_runs_split_at_u32_max() {
    let mut m = OffsetMap::new();
    m.apply_sync(p(0, 0), SyncLink::ChainStart).unwrap();
    let far = 3 * u64::from(u32::MAX) as i64;
    m.apply_sync(p(far, far), SyncLink::Continues { prev: p(0, 0) })
        .unwrap();
    assert_eq!(m.segment_count(), 4);
    assert_eq!(m.last_pair(), Some(p(far, far)));
    for u in [
        0,
        i64::from(u32::MAX) - 1,
        i64::from(u32::MAX),
        far - 1,
        far,
    ] {
        assert_eq!(m.translate(u), Exact(u));
    }
    assert_eq!(m.translate(far + 1), Conservative(far + 1));
}

#[test]
fn rebuild_from_linked_syncs_matches_live() {
    let pairs: Vec<_> = run(0, 0, 30)
        .into_iter()
        .chain(run(31, 30, 10)) // upstream marker at 30
        .chain(run(45, 45, 20)) // 4 skipped on both sides
        .chain(run(65, 60, 5)) // target truncated to 60
        .collect();
    let mut live = OffsetMap::new();
    let mut emitter = SyncEmitter::new(7);
    let mut rebuilt = OffsetMap::new();
    for &(u, d) in &pairs {
        live.record(u, d).unwrap();
        if let Some(s) = emitter.on_ack(u, d).unwrap() {
            rebuilt.apply_sync(s.pair, s.link).unwrap();
        }
    }
    let last = emitter.last_sync().unwrap();
    for u in 0..=last.upstream {
        assert_eq!(rebuilt.translate(u), live.translate(u), "u={u}");
    }
    assert_eq!(
        rebuilt.translate(last.upstream + 1),
        Conservative(last.downstream + 1)
    );
}

/// Why syncs carry links: with a gap of the same size on both sides, the
/// sync points are collinear, exactly as if the run were contiguous.
/// Interpolating would answer 10 for upstream 10, but upstream 10 and 11
/// were never replicated: the right answer is 12.
#[test]
fn equal_gaps_need_the_link() {
    let pairs: Vec<_> = run(0, 0, 10).into_iter().chain(run(12, 12, 5)).collect();
    let mut emitter = SyncEmitter::new(100);
    let syncs: Vec<_> = pairs
        .iter()
        .filter_map(|&(u, d)| emitter.on_ack(u, d).unwrap())
        .collect();
    let points: Vec<_> = syncs.iter().map(|s| s.pair).collect();
    assert_eq!(points, vec![p(0, 0), p(12, 12)]);

    let mut linked = OffsetMap::new();
    let mut points_only = OffsetMap::new();
    for s in &syncs {
        linked.apply_sync(s.pair, s.link).unwrap();
        points_only.apply_sync(s.pair, SyncLink::Foreign).unwrap();
    }
    assert_eq!(linked.translate(9), Exact(9));
    assert_eq!(linked.translate(10), Exact(12));
    assert_eq!(points_only.translate(9), Conservative(1));
    assert_eq!(points_only.translate(10), Conservative(1));
}

#[test]
fn foreign_syncs_behave_like_mm2_points() {
    let mut m = OffsetMap::new();
    m.apply_sync(p(10, 100), SyncLink::Foreign).unwrap();
    m.apply_sync(p(20, 110), SyncLink::Foreign).unwrap();
    m.apply_sync(p(20, 110), SyncLink::Foreign).unwrap(); // duplicate
    assert_eq!(m.segment_count(), 2);
    assert_eq!(m.translate(9), Unknown);
    assert_eq!(m.translate(10), Exact(100));
    assert_eq!(m.translate(15), Conservative(101));
    assert_eq!(m.translate(20), Exact(110));
    assert_eq!(m.translate(25), Conservative(111));
}

#[test]
fn broken_chain_trusts_points_only() {
    let mut m = OffsetMap::new();
    m.apply_sync(p(0, 0), SyncLink::ChainStart).unwrap();
    // The sync at (10, 10) was lost (or compacted away).
    m.apply_sync(p(20, 20), SyncLink::Continues { prev: p(10, 10) })
        .unwrap();
    assert_eq!(m.translate(5), Conservative(1));
    assert_eq!(m.translate(20), Exact(20));
    // The chain restarts at the point we applied.
    m.apply_sync(p(30, 30), SyncLink::Continues { prev: p(20, 20) })
        .unwrap();
    assert_eq!(m.translate(25), Exact(25));
    // A link that does not line up with its own claim is not trusted.
    m.apply_sync(p(40, 45), SyncLink::Continues { prev: p(30, 30) })
        .unwrap();
    assert_eq!(m.translate(35), Conservative(31));
}

#[test]
fn record_after_rebuild_starts_a_new_session() {
    let mut m = OffsetMap::new();
    m.apply_sync(p(0, 0), SyncLink::ChainStart).unwrap();
    m.apply_sync(p(50, 50), SyncLink::Continues { prev: p(0, 0) })
        .unwrap();
    // The new task resumes from progress 60; old-task records after the
    // last sync are unseen.
    m.record(60, 70).unwrap();
    assert_eq!(m.translate(50), Exact(50));
    assert_eq!(m.translate(55), Conservative(51));
    assert_eq!(m.translate(60), Exact(70));
}

#[test]
fn absorbing_a_rebuilt_history_keeps_both_and_the_live_cursor() {
    // Before the restart: 0..50 at 0..50, synced and flushed.
    let mut emitter = SyncEmitter::new(10);
    let mut older = OffsetMap::new();
    for (u, d) in run(0, 0, 50) {
        if let Some(s) = emitter.on_ack(u, d).unwrap() {
            older.apply_sync(s.pair, s.link).unwrap();
        }
    }
    let s = emitter.flush().unwrap();
    older.apply_sync(s.pair, s.link).unwrap();
    // The new session resumes at 55 (50..54 were transaction markers the
    // old session may or may not have seen) while the rebuild still runs.
    let mut live = OffsetMap::new();
    live.start_session();
    for (u, d) in run(55, 50, 10).into_iter().chain(run(67, 60, 3)) {
        live.record(u, d).unwrap();
    }
    assert_eq!(live.translate(10), Unknown);
    live.absorb_older(older);
    assert_eq!(shape(&live), vec![(0, 0, 50), (55, 50, 10), (67, 60, 3)]);
    assert_eq!(live.translate(10), Exact(10));
    assert_eq!(live.translate(52), Conservative(50), "unknown gap");
    assert_eq!(live.translate(55), Exact(50));
    assert_eq!(live.translate(66), Exact(60), "known gap kept");
    // Still live: the next delivery report extends the last run.
    live.record(70, 63).unwrap();
    assert_eq!(live.segment_count(), 3);
    assert_eq!(live.translate(70), Exact(63));
}

#[test]
fn absorbing_drops_contradicted_history_and_respects_the_cap() {
    // The old session wrote up to upstream 100; the new one replays from
    // 80 (older progress) onto a target truncated to 70.
    let older = map_of(&run(0, 0, 100));
    let mut live = OffsetMap::with_max_segments(NonZeroUsize::new(2).unwrap());
    live.start_session();
    for (u, d) in run(80, 70, 5) {
        live.record(u, d).unwrap();
    }
    live.absorb_older(older);
    assert_eq!(shape(&live), vec![(0, 0, 70), (80, 70, 5)]);
    assert_eq!(live.translate(75), Conservative(70), "unknown gap");
    // A map that already evicted ignores history: it could have gaps.
    let mut evicted = OffsetMap::with_max_segments(NonZeroUsize::new(1).unwrap());
    evicted.record(200, 200).unwrap();
    evicted.record(210, 201).unwrap();
    evicted.absorb_older(map_of(&run(0, 0, 100)));
    assert_eq!(shape(&evicted), vec![(210, 201, 1)]);
    // Over-long history is trimmed from the front.
    let mut small = OffsetMap::with_max_segments(NonZeroUsize::new(2).unwrap());
    small.record(500, 500).unwrap();
    let mut history = OffsetMap::new();
    for (u, d) in [(0, 0), (10, 1), (20, 2)] {
        history.record(u, d).unwrap();
    }
    small.absorb_older(history);
    assert_eq!(shape(&small), vec![(20, 2, 1), (500, 500, 1)]);
}

#[test]
fn mm2_overshoots_after_target_truncation_ferry_does_not() {
    use crate::sync::mm2_translate;
    let mut pairs = run(0, 0, 102);
    pairs.extend(run(150, 50, 1)); // target truncated to 50
    let mut live = OffsetMap::new();
    let mut emitter = SyncEmitter::new(100);
    let mut syncs = Vec::new();
    for &(u, d) in &pairs {
        live.record(u, d).unwrap();
        syncs.extend(emitter.on_ack(u, d).unwrap().map(|s| s.pair));
    }
    assert_eq!(syncs, vec![p(0, 0), p(101, 101), p(150, 50)]);
    // First present record with upstream >= 120 is 150, now at 50.
    assert_eq!(live.translate(120), Exact(50));
    assert_eq!(mm2_translate(&syncs, 120), Some(102));
}

#[test]
fn translate_back_inverts_runs_and_known_gaps() {
    // upstream 10..15 -> downstream 100..105, then (known-empty gaps on
    // both sides) upstream 20..23 -> downstream 110..113.
    let mut pairs = run(10, 100, 5);
    pairs.extend(run(20, 110, 3));
    let m = map_of(&pairs);
    assert_eq!(m.translate_back(100), Unknown, "nothing known before");
    assert_eq!(m.translate_back(101), Exact(11));
    assert_eq!(m.translate_back(105), Exact(15), "the run's end");
    assert_eq!(m.translate_back(108), Exact(15), "inside the known gap");
    assert_eq!(m.translate_back(110), Exact(15), "before the next run");
    assert_eq!(m.translate_back(111), Exact(21));
    assert_eq!(m.translate_back(113), Exact(23));
    assert_eq!(
        m.translate_back(120),
        Conservative(23),
        "past the last fact"
    );
    assert_eq!(OffsetMap::new().translate_back(5), Unknown);
    // Every exact answer agrees with the forward translation.
    for d in 101..=113 {
        if let Exact(u) = m.translate_back(d) {
            assert!(m.translate(u).offset().unwrap() >= d, "{d} -> {u}");
        }
    }
}

#[test]
fn translate_back_is_conservative_across_unknown_gaps() {
    let mut m = map_of(&run(0, 0, 4));
    m.start_session();
    m.record(10, 20).unwrap();
    assert_eq!(m.translate_back(4), Exact(4));
    assert_eq!(m.translate_back(15), Conservative(4));
    assert_eq!(m.translate_back(21), Exact(11));
}
