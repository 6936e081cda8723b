//! Property tests for `OffsetMap`, `SyncEmitter` and the MM2 rule, against a
//! brute-force oracle that keeps every replicated record.

use std::num::NonZeroUsize;

use ferry_checkpoint::{
    mm2_translate, EmittedSync, OffsetMap, OffsetPair, SyncEmitter, SyncLink, Translation,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Oracle
// ---------------------------------------------------------------------------

/// Every record ever written to the target (including ones whose delivery
/// reports were lost), with the same contradiction rule as the map: a write
/// voids every earlier fact not strictly below it on both sides.
#[derive(Debug, Default, Clone)]
struct Oracle {
    facts: Vec<(i64, i64)>,
}

impl Oracle {
    fn write(&mut self, u: i64, d: i64) {
        self.facts.retain(|&(fu, fd)| fu < u && fd < d);
        self.facts.push((u, d));
    }

    /// Downstream offset of the first replicated record with upstream >= u.
    fn position(&self, u: i64) -> Option<i64> {
        self.facts
            .iter()
            .find(|&&(fu, _)| fu >= u)
            .map(|&(_, fd)| fd)
    }

    /// The highest downstream offset a resumed consumer may safely start at.
    fn bound(&self, u: i64) -> i64 {
        self.position(u)
            .unwrap_or_else(|| self.facts.last().map_or(0, |&(_, d)| d + 1))
    }

    /// What a complete live map must answer.
    fn expected(&self, u: i64) -> Translation {
        match self.facts.first() {
            None => Translation::Unknown,
            Some(&(first, _)) if u < first => Translation::Unknown,
            _ => match self.position(u) {
                Some(d) => Translation::Exact(d),
                None => Translation::Conservative(self.bound(u)),
            },
        }
    }

    fn max_upstream(&self) -> i64 {
        self.facts.iter().map(|&(u, _)| u).max().unwrap_or(0)
    }
}

/// Never ahead of the truth, and `Exact` only when it is the truth.
fn check_safe(name: &str, got: Translation, oracle: &Oracle, u: i64) -> Result<(), TestCaseError> {
    if let Some(x) = got.offset() {
        prop_assert!(
            x <= oracle.bound(u),
            "{name}: translate({u}) = {got:?} is ahead of {} (facts {:?})",
            oracle.bound(u),
            oracle.facts
        );
    }
    if let Translation::Exact(x) = got {
        prop_assert_eq!(
            Some(x),
            oracle.position(u),
            "{}: translate({}) claims exact; facts {:?}",
            name,
            u,
            &oracle.facts
        );
    }
    Ok(())
}

/// Only checks the value bound (for maps rebuilt across lost syncs, where old
/// copies may be labelled exact).
fn check_not_ahead(
    name: &str,
    got: Translation,
    oracle: &Oracle,
    u: i64,
) -> Result<(), TestCaseError> {
    if let Some(x) = got.offset() {
        prop_assert!(
            x <= oracle.bound(u),
            "{name}: translate({u}) = {got:?} is ahead of {} (facts {:?})",
            oracle.bound(u),
            oracle.facts
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scenario generation
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Step {
    Next,
    /// Upstream offsets never replicated (markers, compaction, aborts).
    UpGap(i64),
    /// Someone else wrote into the target.
    DownGap(i64),
    /// Both at once, by the same amount: the case points alone cannot tell
    /// from a contiguous run.
    BothGap(i64),
    /// Source replay (restart from older progress), same session.
    UpRewind(i64),
    /// Target truncated (unclean leader election / recreation).
    DownRewind(i64),
    /// Task restart: `orphans` writes land without delivery reports reaching
    /// the map, then a new session starts. `resume >= 0`: it replays from
    /// `resume` records before the one after the last reported record (the
    /// usual case: progress never passes a record the map did not see).
    /// `resume < 0`: progress did count the orphans, and the new session
    /// starts past them (plus `-resume - 1` unreplicated offsets).
    Restart {
        orphans: i64,
        resume: i64,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Kinds {
    up_rewind: bool,
    down_rewind: bool,
    restart: bool,
}

const ALL: Kinds = Kinds {
    up_rewind: true,
    down_rewind: true,
    restart: true,
};
const ONE_SESSION: Kinds = Kinds {
    up_rewind: true,
    down_rewind: true,
    restart: false,
};

fn step(kinds: Kinds) -> BoxedStrategy<Step> {
    let base = prop_oneof![
        12 => Just(Step::Next),
        2 => (1..4i64).prop_map(Step::UpGap),
        2 => (1..4i64).prop_map(Step::DownGap),
        2 => (1..4i64).prop_map(Step::BothGap),
    ];
    let mut s = base.boxed();
    if kinds.up_rewind {
        s = prop_oneof![12 => s, 1 => (0..6i64).prop_map(Step::UpRewind)].boxed();
    }
    if kinds.down_rewind {
        s = prop_oneof![12 => s, 1 => (0..8i64).prop_map(Step::DownRewind)].boxed();
    }
    if kinds.restart {
        s = prop_oneof![
            12 => s,
            1 => (0..3i64, -3..4i64).prop_map(|(orphans, resume)| Step::Restart { orphans, resume }),
        ]
        .boxed();
    }
    s
}

fn scenario(kinds: Kinds, max_len: usize) -> impl Strategy<Value = ((i64, i64), Vec<Step>)> {
    (
        (0..20i64, 0..20i64),
        proptest::collection::vec(step(kinds), 0..max_len),
    )
}

/// What the sequence looks like from each side.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Written and reported.
    Ack(i64, i64),
    /// Written, report lost (task died).
    Orphan(i64, i64),
    /// A new session starts before the next ack.
    Session,
}

fn events(start: (i64, i64), steps: &[Step]) -> Vec<Event> {
    let mut out = vec![Event::Ack(start.0, start.1)];
    let (mut u, mut d) = start; // last reported
    let mut written_d = d; // last written downstream offset
    for &s in steps {
        let (nu, nd) = match s {
            Step::Next => (u + 1, written_d + 1),
            Step::UpGap(k) => (u + 1 + k, written_d + 1),
            Step::DownGap(k) => (u + 1, written_d + 1 + k),
            Step::BothGap(k) => (u + 1 + k, written_d + 1 + k),
            Step::UpRewind(k) => ((u - k).max(0), written_d + 1),
            Step::DownRewind(k) => (u + 1, (written_d - k).max(0)),
            Step::Restart { orphans, resume } => {
                for i in 1..=orphans {
                    out.push(Event::Orphan(u + i, written_d + 1));
                    written_d += 1;
                }
                out.push(Event::Session);
                let nu = if resume >= 0 {
                    (u + 1 - resume).max(0)
                } else {
                    u + 1 + orphans + (-resume - 1)
                };
                (nu, written_d + 1)
            }
        };
        out.push(Event::Ack(nu, nd));
        (u, d) = (nu, nd);
        written_d = d;
    }
    out
}

/// Runs the events through a live map, an emitter and the oracle; returns
/// them with the emitted syncs in order.
struct Run {
    live: OffsetMap,
    oracle: Oracle,
    syncs: Vec<EmittedSync>,
    acks: Vec<(i64, i64)>,
}

fn play(events: &[Event], lag: u64, max_segments: Option<usize>) -> Run {
    let mut live = match max_segments {
        Some(n) => OffsetMap::with_max_segments(NonZeroUsize::new(n).unwrap()),
        None => OffsetMap::new(),
    };
    let mut emitter = SyncEmitter::new(lag);
    let mut oracle = Oracle::default();
    let mut syncs = Vec::new();
    let mut acks = Vec::new();
    for &e in events {
        match e {
            Event::Ack(u, d) => {
                oracle.write(u, d);
                live.record(u, d).unwrap();
                syncs.extend(emitter.on_ack(u, d).unwrap());
                acks.push((u, d));
            }
            Event::Orphan(u, d) => oracle.write(u, d),
            Event::Session => {
                live.start_session();
                emitter.reset();
            }
        }
    }
    Run {
        live,
        oracle,
        syncs,
        acks,
    }
}

fn rebuild<'a>(syncs: impl IntoIterator<Item = &'a EmittedSync>) -> OffsetMap {
    let mut map = OffsetMap::new();
    for s in syncs {
        map.apply_sync(s.pair, s.link).unwrap();
    }
    map
}

fn probe_range(oracle: &Oracle) -> std::ops::RangeInclusive<i64> {
    -1..=oracle.max_upstream() + 3
}

/// MM2's emission policy (OffsetSyncWriter.PartitionState.update), without
/// its coalescing of pending syncs.
fn mm2_emit(acks: &[(i64, i64)], lag: i64) -> Vec<OffsetPair> {
    let (mut prev_u, mut prev_d, mut last_sync_d) = (-1i64, -1i64, -1i64);
    let mut out = Vec::new();
    for &(u, d) in acks {
        let first = last_sync_d == -1;
        let stale = d - (last_sync_d + 1) >= lag;
        let skipped = u - prev_u != 1;
        let truncated = d < prev_d;
        if first || stale || skipped || truncated {
            last_sync_d = d;
            out.push(OffsetPair::new(u, d));
        }
        (prev_u, prev_d) = (u, d);
    }
    out
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// On a contiguous run the answer is the truth: exact inside, the end
    /// beyond, unknown before.
    #[test]
    fn contiguous_run_is_exact(u0 in 0..1_000_000i64, d0 in 0..1_000_000i64, n in 1..500i64) {
        let mut m = OffsetMap::new();
        for i in 0..n {
            m.record(u0 + i, d0 + i).unwrap();
        }
        prop_assert_eq!(m.segment_count(), 1);
        for u in u0..u0 + n {
            prop_assert_eq!(m.translate(u), Translation::Exact(d0 + (u - u0)));
        }
        prop_assert_eq!(m.translate(u0 + n), Translation::Conservative(d0 + n));
        prop_assert_eq!(m.translate(u0 + n + 1000), Translation::Conservative(d0 + n));
        prop_assert_eq!(m.translate(u0 - 1), Translation::Unknown);
    }

    /// One complete session with arbitrary gaps and rewinds on both sides:
    /// the live map answers exactly what the oracle says, after every ack.
    #[test]
    fn live_map_is_the_truth(
        (start, steps) in scenario(ONE_SESSION, 60)
    ) {
        let events = events(start, &steps);
        let mut live = OffsetMap::new();
        let mut oracle = Oracle::default();
        for e in events {
            let Event::Ack(u, d) = e else { unreachable!() };
            live.record(u, d).unwrap();
            oracle.write(u, d);
            for q in probe_range(&oracle) {
                prop_assert_eq!(live.translate(q), oracle.expected(q), "U={} facts={:?}", q, &oracle.facts);
            }
        }
        prop_assert_eq!(live.last_pair(), oracle.facts.last().map(|&(u, d)| OffsetPair::new(u, d)));
    }

    /// With a tiny segment cap: never ahead, exact only when true, within the
    /// cap, and identical to the uncapped map wherever it still answers.
    #[test]
    fn capped_map_stays_safe(
        (start, steps) in scenario(ALL, 80),
        cap in 1usize..6,
    ) {
        let events = events(start, &steps);
        let capped = play(&events, 100, Some(cap));
        let full = play(&events, 100, None);
        prop_assert!(capped.live.segment_count() <= cap);
        for q in probe_range(&capped.oracle) {
            let got = capped.live.translate(q);
            check_safe("capped", got, &capped.oracle, q)?;
            if got != Translation::Unknown {
                prop_assert_eq!(got, full.live.translate(q), "U={}", q);
            }
        }
        prop_assert!(capped.live.approx_bytes() <= std::mem::size_of::<OffsetMap>() + (2 * cap + 8) * 24);
    }

    /// The heart of rebuild-on-restart: a map rebuilt only from the syncs of
    /// one complete session (links intact) translates exactly like the live
    /// map up to the last sync, and conservatively (never above the live
    /// answer) past it. Includes equal gaps on both sides and rewinds.
    #[test]
    fn rebuilt_equals_live_up_to_last_sync(
        (start, steps) in scenario(ONE_SESSION, 80),
        lag in 0u64..12,
    ) {
        let events = events(start, &steps);
        let run = play(&events, lag, None);
        let rebuilt = rebuild(&run.syncs);
        let last = run.syncs.last().unwrap().pair;
        // Every run starts with a sync, so the rebuilt map has the same runs.
        prop_assert_eq!(rebuilt.segment_count(), run.live.segment_count());
        for q in probe_range(&run.oracle) {
            let (r, l) = (rebuilt.translate(q), run.live.translate(q));
            if q <= last.upstream {
                prop_assert_eq!(r, l, "U={} syncs={:?}", q, &run.syncs);
            } else {
                prop_assert_eq!(r, Translation::Conservative(last.downstream + 1), "U={}", q);
                prop_assert!(r.offset() <= l.offset(), "U={} rebuilt={:?} live={:?}", q, r, l);
            }
        }
    }

    /// Restarts with lost delivery reports, replays, target truncation, and
    /// compaction of the sync topic (only a suffix survives): live and
    /// rebuilt maps are never ahead and exact only when true.
    #[test]
    fn restarts_and_compaction_stay_safe(
        (start, steps) in scenario(ALL, 80),
        lag in 0u64..12,
        compacted in 0.0f64..1.0,
    ) {
        let events = events(start, &steps);
        let run = play(&events, lag, None);
        let skip = (run.syncs.len() as f64 * compacted) as usize;
        let rebuilt = rebuild(&run.syncs[skip..]);
        for q in probe_range(&run.oracle) {
            check_safe("live", run.live.translate(q), &run.oracle, q)?;
            check_safe("rebuilt", rebuilt.translate(q), &run.oracle, q)?;
        }
    }

    /// Lost sync writes (holes in the chain, emitter not told): the rebuilt
    /// map detects the broken links and stays behind the truth. Target
    /// truncation is excluded: a lost sync recording it cannot be recovered
    /// by any reader (MM2 has the same limit).
    #[test]
    fn lost_syncs_never_push_ahead(
        (start, steps) in scenario(Kinds { up_rewind: true, down_rewind: false, restart: true }, 80),
        lag in 0u64..12,
        lost in proptest::collection::vec(any::<bool>(), 0..64),
    ) {
        let events = events(start, &steps);
        let run = play(&events, lag, None);
        let kept = run
            .syncs
            .iter()
            .enumerate()
            .filter(|(i, _)| !lost.get(*i).copied().unwrap_or(false))
            .map(|(_, s)| s);
        let rebuilt = rebuild(kept);
        for q in probe_range(&run.oracle) {
            check_not_ahead("rebuilt", rebuilt.translate(q), &run.oracle, q)?;
        }
    }

    /// Without rewinds no fact is ever voided, so even a map rebuilt across
    /// lost syncs must never claim an exact answer that is not the truth: a
    /// link naming a sync we never saw must not be used to interpolate (the
    /// two ends may be collinear with a gap in between).
    #[test]
    fn lost_syncs_never_fake_exactness(
        (start, steps) in scenario(Kinds::default(), 80),
        lag in 0u64..6,
        lost in proptest::collection::vec(prop::bool::weighted(0.4), 0..64),
    ) {
        let events = events(start, &steps);
        let run = play(&events, lag, None);
        let kept = run
            .syncs
            .iter()
            .enumerate()
            .filter(|(i, _)| !lost.get(*i).copied().unwrap_or(false))
            .map(|(_, s)| s);
        let rebuilt = rebuild(kept);
        for q in probe_range(&run.oracle) {
            check_safe("rebuilt", rebuilt.translate(q), &run.oracle, q)?;
        }
    }

    /// Ferry's emitter writes a sync at every point MM2 would have to (first,
    /// upstream skip or rewind, downstream rewind), and never lets the
    /// downstream move more than `lag` past the last sync inside a run.
    #[test]
    fn emitter_covers_mm2_triggers(
        (start, steps) in scenario(ONE_SESSION, 80),
        lag in 0u64..12,
    ) {
        let events = events(start, &steps);
        let mut emitter = SyncEmitter::new(lag);
        let mut prev: Option<(i64, i64)> = None;
        for e in events {
            let Event::Ack(u, d) = e else { unreachable!() };
            let sync = emitter.on_ack(u, d).unwrap();
            let must = match prev {
                None => true,
                Some((pu, pd)) => u - pu != 1 || d < pd,
            };
            prop_assert!(!must || sync.is_some(), "missed MM2 trigger at ({u}, {d})");
            let last = emitter.last_sync().unwrap();
            prop_assert!(d - last.downstream <= lag as i64, "({u}, {d}) is {} past {last:?}", d - last.downstream);
            prev = Some((u, d));
        }
    }

    /// MM2's rule, applied to Ferry's syncs or to MM2-policy syncs, never
    /// overshoots (absent target truncation) and never re-reads less than
    /// Ferry's live map; a Ferry map rebuilt from MM2's syncs is never ahead
    /// and never re-reads more than MM2.
    #[test]
    fn mm2_rule_is_safe_but_coarser(
        (start, steps) in scenario(Kinds { up_rewind: true, down_rewind: false, restart: false }, 80),
        lag in 0u64..12,
    ) {
        let events = events(start, &steps);
        let run = play(&events, lag, None);
        let ferry_syncs: Vec<_> = run.syncs.iter().map(|s| s.pair).collect();
        let mm2_syncs = mm2_emit(&run.acks, lag as i64);
        let mut from_mm2 = OffsetMap::new();
        for &s in &mm2_syncs {
            from_mm2.apply_sync(s, SyncLink::Foreign).unwrap();
        }
        for q in probe_range(&run.oracle) {
            let live = run.live.translate(q);
            for (name, syncs) in [("ferry syncs", &ferry_syncs), ("mm2 syncs", &mm2_syncs)] {
                if let Some(m) = mm2_translate(syncs, q) {
                    prop_assert!(m <= run.oracle.bound(q), "{name}: mm2({q}) = {m} overshoots {}", run.oracle.bound(q));
                    if let Some(l) = live.offset() {
                        prop_assert!(m <= l, "{name}: mm2({q}) = {m} > ferry {l}");
                    }
                }
            }
            let rebuilt = from_mm2.translate(q);
            check_safe("rebuilt from mm2", rebuilt, &run.oracle, q)?;
            if let (Some(m), Some(r)) = (mm2_translate(&mm2_syncs, q), rebuilt.offset()) {
                prop_assert!(r >= m, "rebuilt-from-mm2({q}) = {r} re-reads more than mm2 {m}");
            }
        }
    }

    /// A flushed emitter (graceful drain) rebuilds the live map exactly,
    /// past the last regular sync too.
    #[test]
    fn flushed_rebuild_equals_live(
        (start, steps) in scenario(ONE_SESSION, 80),
        lag in 0u64..12,
    ) {
        let events = events(start, &steps);
        let mut live = OffsetMap::new();
        let mut emitter = SyncEmitter::new(lag);
        let mut rebuilt = OffsetMap::new();
        for e in &events {
            if let Event::Ack(u, d) = *e {
                live.record(u, d).unwrap();
                if let Some(s) = emitter.on_ack(u, d).unwrap() {
                    rebuilt.apply_sync(s.pair, s.link).unwrap();
                }
            }
        }
        if let Some(s) = emitter.flush() {
            rebuilt.apply_sync(s.pair, s.link).unwrap();
        }
        for q in -1..=live.last_pair().unwrap().upstream + 3 {
            prop_assert_eq!(rebuilt.translate(q), live.translate(q), "U={}", q);
        }
    }

    /// A daemon restart as the supervisor does it: every earlier session
    /// wrote its syncs (flushed when it stopped), the new session records
    /// delivery reports into a fresh map while the old history is rebuilt
    /// from the topic, then the history is absorbed. Never ahead, exact only
    /// when true.
    #[test]
    fn restart_with_absorbed_history_stays_safe(
        (start, steps) in scenario(ALL, 80),
        lag in 0u64..12,
        flush_at_stop in any::<bool>(),
    ) {
        let events = events(start, &steps);
        let last_session = events.iter().rposition(|e| matches!(e, Event::Session));
        let (before, after) = match last_session {
            Some(i) => events.split_at(i + 1),
            None => (&events[..0], &events[..]),
        };
        let mut oracle = Oracle::default();
        let mut emitter = SyncEmitter::new(lag);
        let mut history = OffsetMap::new();
        let apply = |map: &mut OffsetMap, s: Option<EmittedSync>| {
            if let Some(s) = s {
                map.apply_sync(s.pair, s.link).unwrap();
            }
        };
        for &e in before {
            match e {
                Event::Ack(u, d) => {
                    oracle.write(u, d);
                    apply(&mut history, emitter.on_ack(u, d).unwrap());
                }
                Event::Orphan(u, d) => oracle.write(u, d),
                Event::Session => {
                    if flush_at_stop {
                        apply(&mut history, emitter.flush());
                    }
                    emitter.reset();
                }
            }
        }
        let mut live = OffsetMap::new();
        live.start_session();
        for &e in after {
            match e {
                Event::Ack(u, d) => {
                    oracle.write(u, d);
                    live.record(u, d).unwrap();
                }
                Event::Orphan(u, d) => oracle.write(u, d),
                Event::Session => live.start_session(),
            }
        }
        let before_absorb: Vec<_> = probe_range(&oracle).map(|q| live.translate(q)).collect();
        live.absorb_older(history);
        for (i, q) in probe_range(&oracle).enumerate() {
            let got = live.translate(q);
            check_safe("absorbed", got, &oracle, q)?;
            // Absorbing history only ever adds knowledge.
            if let (Some(old), Some(new)) = (before_absorb[i].offset(), got.offset()) {
                prop_assert_eq!(old, new, "U={} lost the live answer", q);
            }
        }
    }
}
