//! Several `ferry run` processes on one topology, against real Apache Kafka:
//! they share each flow's slots through the flow's consumer group, copy
//! every record exactly once while the group is stable, hand slots over on
//! SIGTERM, SIGKILL and a paused process (a zombie) without losing a
//! record, and never write progress or checkpoints that contradict the
//! current owner's.
//!
//! The flows' group uses a 6 s session timeout (set on the target's client
//! properties) so that a lost member is noticed quickly; each test's
//! topology directory has a group of its own, so tests running side by side
//! on the shared brokers never join each other's group.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferry_testkit::check::{all_sequences, assert_exactly, assert_same, sequences, try_total};
use ferry_testkit::daemon::{stop_daemon, stop_daemon_after_signal, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceId, SequenceSpec};
use ferry_testkit::groups::{
    commit_group_offsets, consume_and_commit, consume_from_committed, group_offsets,
};
use ferry_testkit::members::{
    longest_stall, tally, wait_until_balanced, CopyTally, EndOffsetSampler, EndSample, Load,
    Member, SlotShares, Watched,
};
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

/// The flow every test runs.
const FLOW: &str = "src->dst";

/// `flows[].slots` of every test: the default.
const SLOTS: u16 = 16;

/// The group session timeout, `session.timeout.ms` on the target's client:
/// the broker's smallest allowed value, so a lost member is noticed fast.
const SESSION: Duration = Duration::from_secs(6);

/// `max_in_flight_bytes` of every flow: small, so that what a killed
/// process may have copied without persisting its progress is a clear
/// bound.
const WINDOW_BYTES: usize = 128 * 1024;

/// How long a group may take to settle after members start or stop.
const SETTLE: Duration = Duration::from_secs(60);

/// The log line of a process that finds its group session lost and gives
/// up its slots.
const FENCED_LOG: &str = "session lost";

/// A topology whose flow copies the topics matching `topics` with
/// [`SLOTS`] slots, a small window and a short session timeout, plus
/// `extra` flow keys. Its group is the test directory's own (see
/// `write_topology`), so every member must run this very file.
fn topology(
    dir: &Path,
    source: &KafkaCluster,
    target: &KafkaCluster,
    topics: &str,
    extra: &str,
) -> PathBuf {
    let flow = one_flow(&format!(
        "topics = [\"{topics}\"]\nslots = {SLOTS}\nmax_in_flight_bytes = {WINDOW_BYTES}\n{extra}"
    ));
    let session_ms = SESSION.as_millis();
    write_topology(
        dir,
        source,
        target,
        &format!(
            "{flow}\n[clusters.dst.client]\n\"session.timeout.ms\" = \"{session_ms}\"\n\
             \"heartbeat.interval.ms\" = \"1000\"\n"
        ),
    )
}

/// Partitions of every source topic of the load tests.
const PARTITIONS: i32 = 8;

/// One test's clusters, source topics (`<prefix>-<i>` with [`PARTITIONS`]
/// partitions each) and the topology copying them.
struct Scene {
    source: &'static KafkaCluster,
    target: &'static KafkaCluster,
    /// Every topic of the scene is `<prefix>-<something>`.
    prefix: String,
    /// The topics the load goes to.
    topics: Vec<String>,
    topology: PathBuf,
    /// Holds the topology and the members' logs.
    _dir: tempfile::TempDir,
}

impl Scene {
    fn new(name: &str, topic_count: usize) -> Scene {
        let (source, target) = shared_pair().expect("test brokers start");
        let prefix = unique_name(name);
        let dir = tempfile::tempdir().unwrap();
        let topology = topology(dir.path(), source, target, &format!("{prefix}-.*"), "");
        let mut scene = Scene {
            source,
            target,
            prefix,
            topics: Vec::new(),
            topology,
            _dir: dir,
        };
        scene.topics = (0..topic_count)
            .map(|i| scene.add_topic(&i.to_string()))
            .collect();
        scene
    }

    /// Creates `<prefix>-<suffix>` with [`PARTITIONS`] partitions on the
    /// source: a topic the flow copies, outside the load.
    fn add_topic(&self, suffix: &str) -> String {
        let topic = format!("{}-{suffix}", self.prefix);
        data::create_topic(&self.source.client_config(), &topic, PARTITIONS, 1, &[])
            .expect("create a source topic");
        topic
    }

    /// Background load on every partition: `per_batch` records with 100
    /// bytes of padding to each, every 100 ms; returns once the members
    /// copy it.
    fn start_load(&self, per_batch: u64) -> Load {
        let mut batch = SequenceSpec::new(PARTITIONS, per_batch);
        batch.value_padding = 100;
        let load = Load::start(
            self.source.client_config(),
            self.topics.clone(),
            batch,
            Duration::from_millis(100),
        );
        wait_for("copying under load", Duration::from_secs(60), || {
            (self.copied() > 2_000).then_some(())
        });
        load
    }

    /// Records on the target, over every copy, duplicates included.
    fn copied(&self) -> i64 {
        self.topics
            .iter()
            .map(|t| try_total(self.target, &remote(t)).unwrap_or(0))
            .sum()
    }

    /// Waits until every copy holds at least `per_partition` records per
    /// partition and then stops growing for 3 s: with the load stopped, a
    /// total that no longer moves is final, duplicates or not.
    fn wait_until_copied(&self, per_partition: u64) {
        let expected = i64::from(PARTITIONS) * per_partition as i64;
        let mut last: (Vec<i64>, Instant) = (Vec::new(), Instant::now());
        wait_for(
            &format!("{expected} records in each copy, then quiet"),
            Duration::from_secs(180),
            || {
                let totals: Vec<i64> = self
                    .topics
                    .iter()
                    .map(|t| try_total(self.target, &remote(t)).ok())
                    .collect::<Option<_>>()?;
                if totals != last.0 {
                    last = (totals, Instant::now());
                    return None;
                }
                (totals.iter().all(|&n| n >= expected)
                    && last.1.elapsed() >= Duration::from_secs(3))
                .then_some(())
            },
        );
    }

    /// Exactly once: every copy equals its source record for record, in
    /// order, `per_partition` records in each partition.
    fn assert_copied_exactly(&self, per_partition: u64) {
        for t in &self.topics {
            let records = PARTITIONS as usize * per_partition as usize;
            assert_same(self.source, t, self.target, &remote(t), records);
        }
    }

    /// At least once: the tally of the copies of the load's topics and of
    /// `more`, summed, after asserting that nothing is missing, altered,
    /// foreign or out of order.
    fn assert_nothing_lost(&self, more: &[String]) -> CopyTally {
        let mut sum = CopyTally::default();
        for topic in self.topics.iter().chain(more) {
            let t = tally(
                &self.source.client_config(),
                topic,
                &self.target.client_config(),
                &remote(topic),
            );
            assert!(
                t.at_least_once(),
                "{topic}: {} of {} records missing; unexpected {:?}; altered {:?}; reordered {:?}",
                t.missing,
                t.records,
                &t.unexpected[..t.unexpected.len().min(5)],
                &t.altered[..t.altered.len().min(5)],
                &t.reordered[..t.reordered.len().min(5)],
            );
            sum.records += t.records;
            sum.duplicates += t.duplicates;
        }
        sum
    }

    /// Every source partition whose slot is in `slots`.
    fn partitions_in(&self, slots: &BTreeSet<u16>) -> Vec<Watched> {
        self.topics
            .iter()
            .flat_map(|t| (0..PARTITIONS).map(move |p| (t, p)))
            .filter(|(t, p)| slots.contains(&ferry_config::slot_of(t, *p, SLOTS)))
            .map(|(t, p)| Watched {
                source_topic: t.clone(),
                target_topic: remote(t),
                partition: p,
            })
            .collect()
    }
}

fn start_members(topology: &Path, count: usize) -> Vec<Member> {
    (0..count).map(|_| Member::start(FERRY, topology)).collect()
}

fn remote(topic: &str) -> String {
    format!("src.{topic}")
}

/// SIGTERM, asserting a clean exit.
fn stop_gracefully(member: Member) {
    let (code, log) = stop_daemon(member.into_daemon());
    assert_eq!(code, Some(0), "a member stops cleanly on SIGTERM:\n{log}");
}

/// Asserts that at-least-once left no more duplicates than `windows`
/// windows of records could hold, and reports the number.
fn assert_duplicates_within(tally: &CopyTally, windows: usize, what: &str) {
    let bound = windows * records_per_window(SMALLEST_LOAD_RECORD);
    eprintln!(
        "{what}: {} of {} records duplicated (bound: {windows} window(s), {bound} records)",
        tally.duplicates, tally.records
    );
    assert!(
        tally.duplicates <= bound,
        "{what}: {} duplicates exceed {windows} window(s) of {bound} records",
        tally.duplicates
    );
}

/// The records one window of `WINDOW_BYTES` can hold at most: counted by
/// key and value only (the window also counts headers), so an upper bound.
fn records_per_window(smallest_record_bytes: usize) -> usize {
    WINDOW_BYTES / smallest_record_bytes.max(1)
}

/// Key plus value bytes of the smallest record the load produces
/// (`key-p<p>-s<seq>` may be null; the value is `p<p>:s<seq>:` + padding).
const SMALLEST_LOAD_RECORD: usize = "p0:s0:".len() + 100;

/// The longest stall among the sampled partitions listed in `which`.
fn longest_stall_of(samples: &[EndSample], all: &[Watched], which: &[Watched]) -> Duration {
    all.iter()
        .enumerate()
        .filter(|(_, w)| which.contains(w))
        .map(|(i, _)| longest_stall(samples, i))
        .max()
        .unwrap_or_default()
}

fn slot_set(shares: &SlotShares, member: usize) -> BTreeSet<u16> {
    shares.owned[member].iter().copied().collect()
}

#[test]
fn three_processes_share_the_slots_and_copy_everything() {
    let scene = Scene::new("share", 3);
    let members = start_members(&scene.topology, 3);
    let all: Vec<&Member> = members.iter().collect();

    let (shares, took) = wait_until_balanced(&all, FLOW, SETTLE);
    eprintln!("three members settled in {took:?}: {shares}");
    for (i, owned) in shares.owned.iter().enumerate() {
        // 16 / 3 = 5.33: an even share is 5 or 6 slots.
        assert!(
            (5..=6).contains(&owned.len()),
            "member {i} owns {} slots: {shares}",
            owned.len()
        );
    }

    // Each process copies exactly the partitions of its own slots, and
    // says so in `/status` and `/metrics`.
    wait_for(
        "every partition shown by exactly its slot's owner",
        Duration::from_secs(60),
        || {
            let mut shown: BTreeMap<(String, i32), usize> = BTreeMap::new();
            for (i, m) in members.iter().enumerate() {
                let status = m.status()?;
                let owned = slot_set(&shares, i);
                for t in &status.flow(FLOW)?.topics {
                    for p in &t.partition_status {
                        let slot = ferry_config::slot_of(&t.topic, p.partition, SLOTS);
                        assert!(
                            owned.contains(&slot),
                            "member {i} copies {} partition {} of slot {slot}, which it does \
                             not own: {shares}",
                            t.topic,
                            p.partition
                        );
                        *shown.entry((t.topic.clone(), p.partition)).or_default() += 1;
                    }
                }
            }
            (shown.len() == 24 && shown.values().all(|&n| n == 1)).then_some(())
        },
    );
    let mut partitions = 0;
    for (i, m) in members.iter().enumerate() {
        let doc = m.membership(FLOW).expect("membership");
        assert_eq!(doc.slots_total, SLOTS);
        assert_eq!(
            m.metric(&format!("ferry_slots_owned{{flow=\"{FLOW}\"}}")),
            Some(doc.slots.len() as f64),
            "member {i}: ferry_slots_owned matches /status"
        );
        partitions += doc.partitions;
    }
    assert_eq!(
        partitions, 24,
        "the members' partitions add up to every partition"
    );

    let mut spec = SequenceSpec::new(PARTITIONS, 2_000);
    spec.value_padding = 50;
    for t in &scene.topics {
        produce_sequence(&scene.source.client_config(), t, &spec).expect("produce");
    }
    scene.wait_until_copied(2_000);
    for m in members {
        stop_gracefully(m);
    }
    scene.assert_copied_exactly(2_000);
}

#[test]
fn kill_9_one_of_three_under_load_moves_its_slots_and_loses_nothing() {
    let scene = Scene::new("kill9", 2);
    let burst = scene.add_topic("burst");
    let mut members = start_members(&scene.topology, 3);
    let (shares, _) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);

    let load = scene.start_load(50);
    // The victim: a member that copies some of the burst (topic names are
    // random, so which slots the burst's partitions fall in is too).
    let burst_slots: BTreeSet<u16> = (0..PARTITIONS)
        .map(|p| ferry_config::slot_of(&burst, p, SLOTS))
        .collect();
    let index = (0..members.len())
        .find(|i| !slot_set(&shares, *i).is_disjoint(&burst_slots))
        .expect("the burst's slots are owned by some member");
    let victim = members.remove(index);
    let lost = slot_set(&shares, index);
    let victim_doc = victim.membership(FLOW).expect("the victim's membership");
    assert!(
        victim_doc.partitions > 0,
        "the victim must be copying something: {victim_doc:?}"
    );
    // A burst on top of the steady load, and the kill once the victim has
    // copied a tenth of its share of it: it is then busy copying, with
    // records in flight and acknowledged ones not yet in persisted
    // progress.
    const BURST: i64 = 20_000;
    let mut big = SequenceSpec::new(PARTITIONS, BURST as u64);
    big.value_padding = 100;
    let producing = {
        let (config, burst) = (scene.source.client_config(), burst.clone());
        std::thread::spawn(move || produce_sequence(&config, &burst, &big).expect("the burst"))
    };
    let victims: Vec<i32> = (0..PARTITIONS)
        .filter(|p| lost.contains(&ferry_config::slot_of(&burst, *p, SLOTS)))
        .collect();
    assert!(
        !victims.is_empty(),
        "the victim copies none of the burst: {shares}"
    );
    let victims_share = BURST * victims.len() as i64;
    let copied_by_victim = || -> Option<i64> {
        let ends = data::end_offsets(&scene.target.client_config(), &remote(&burst)).ok()?;
        Some(victims.iter().map(|p| ends[*p as usize]).sum())
    };
    wait_for(
        "the victim copying the burst",
        Duration::from_secs(60),
        || copied_by_victim().filter(|n| *n >= victims_share / 10),
    );
    let killed_at = Instant::now();
    victim.signal(libc::SIGKILL);
    let at_kill = copied_by_victim().unwrap_or(0);
    eprintln!("killed with {at_kill} of the victim's {victims_share} burst records copied");
    assert!(
        at_kill < victims_share,
        "the kill must land while the victim copies: it had copied all {victims_share}"
    );
    let (code, _) = stop_daemon_after_signal(victim.into_daemon());
    assert_eq!(code, None, "killed by the signal");

    let survivors: Vec<&Member> = members.iter().collect();
    let (after, _) = wait_until_balanced(&survivors, FLOW, SESSION + Duration::from_secs(10));
    let handover = killed_at.elapsed();
    eprintln!(
        "the killed member's slots {lost:?} reached the survivors {handover:?} after the kill \
         (session timeout {SESSION:?}): {after}"
    );
    for s in &victim_doc.slots {
        assert!(
            after.epochs[&s.slot] > s.epoch,
            "slot {} has a new epoch under its new owner: {} after {}",
            s.slot,
            after.epochs[&s.slot],
            s.epoch
        );
    }

    producing.join().expect("the burst's producer");
    let burst_records = i64::from(PARTITIONS) * BURST;
    wait_for("the whole burst copied", Duration::from_secs(180), || {
        (try_total(scene.target, &remote(&burst)).ok()? >= burst_records).then_some(())
    });
    let per_partition = load.stop();
    scene.wait_until_copied(per_partition);
    for m in members {
        stop_gracefully(m);
    }
    let tally = scene.assert_nothing_lost(&[burst]);
    // The killed process held at most one window of records that were
    // fetched but not acknowledged, or acknowledged but not yet covered by
    // its persisted progress (the window counts both, and progress is
    // written whenever an eighth of it is acknowledged-but-unpersisted):
    // only those can be copied again by the slots' new owners. The
    // survivors' own slots never move (cooperative-sticky), so they add
    // none.
    assert_duplicates_within(&tally, 1, "after kill -9");
}

#[test]
fn rolling_restart_of_three_under_load_loses_and_duplicates_nothing() {
    let scene = Scene::new("rolling", 2);
    let mut members = start_members(&scene.topology, 3);
    wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);

    let load = scene.start_load(50);
    for round in 0..3 {
        let restarted = Instant::now();
        stop_gracefully(members.remove(0));
        let (_, without) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);
        members.push(Member::start(FERRY, &scene.topology));
        let (shares, with) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);
        eprintln!(
            "restart {round}: two members settled after {without:?}, three after another \
             {with:?} ({:?} in all): {shares}",
            restarted.elapsed()
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let per_partition = load.stop();
    scene.wait_until_copied(per_partition);
    for m in members {
        stop_gracefully(m);
    }
    // Every hand-over persisted progress before its slot moved: nothing
    // missing and nothing copied twice.
    scene.assert_copied_exactly(per_partition);
}

/// One progress record of the flow, as written.
struct ProgressRecord {
    topic: String,
    partition: i32,
    /// The next source offset to copy.
    offset: i64,
    /// The writer's epoch of the partition's slot.
    epoch: i64,
    /// CreateTime, ms.
    at_ms: i64,
}

/// The progress records of `topics` on the target, in the order written.
fn progress_records(target: &KafkaCluster, topics: &[String]) -> Vec<ProgressRecord> {
    let topic = "ferry-progress.src.internal";
    data::read_topic(&target.client_config(), topic)
        .unwrap_or_else(|e| panic!("reading {topic}: {e}"))
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let key = String::from_utf8(r.key?).expect("UTF-8 progress key");
            let (t, p) = key.rsplit_once(':')?;
            if !topics.iter().any(|ours| ours == t) {
                return None;
            }
            let value = String::from_utf8(r.value?).expect("UTF-8 progress value");
            let (offset, epoch) = value
                .split_once('@')
                .unwrap_or_else(|| panic!("progress {key} = {value} carries no epoch"));
            Some(ProgressRecord {
                topic: t.to_string(),
                partition: p.parse().expect("partition"),
                offset: offset.parse().expect("progress offset"),
                epoch: epoch.parse().expect("progress epoch"),
                at_ms: match r.timestamp {
                    rdkafka::message::Timestamp::CreateTime(ms)
                    | rdkafka::message::Timestamp::LogAppendTime(ms) => ms,
                    rdkafka::message::Timestamp::NotAvailable => 0,
                },
            })
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_zombie_under_sigstop_never_wins_and_skips_nothing() {
    let scene = Scene::new("zombie", 2);
    let members = start_members(&scene.topology, 3);
    let (shares, _) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);

    let load = scene.start_load(50);
    // The zombie: a member that copies (a topic's partitions fill
    // consecutive slots, so a member may hold none of them).
    let (zombie_at, before) = members
        .iter()
        .map(|m| m.membership(FLOW).expect("each member's membership"))
        .enumerate()
        .find(|(_, doc)| doc.partitions > 0)
        .expect("some member copies");
    let zombie = &members[zombie_at];
    let old_epochs: BTreeMap<u16, i64> = before.slots.iter().map(|s| (s.slot, s.epoch)).collect();
    let stopped_at = Instant::now();
    zombie.signal(libc::SIGSTOP);
    let survivors: Vec<&Member> = (0..members.len())
        .filter(|i| *i != zombie_at)
        .map(|i| &members[i])
        .collect();
    let (taken, _) = wait_until_balanced(&survivors, FLOW, SESSION + Duration::from_secs(30));
    eprintln!(
        "the survivors took the paused member's slots {:?} after {:?}: {taken}",
        slot_set(&shares, zombie_at),
        stopped_at.elapsed()
    );
    for (slot, old) in &old_epochs {
        assert!(
            taken.epochs[slot] > *old,
            "slot {slot}: the new owner's epoch {} is above the zombie's {old}",
            taken.epochs[slot]
        );
    }
    // The survivors copy more while the zombie is paused.
    let more_from = scene.copied();
    wait_for(
        "more copies while the zombie is paused",
        Duration::from_secs(60),
        || (scene.copied() > more_from + 5_000).then_some(()),
    );

    let resumed_ms = now_ms();
    zombie.signal(libc::SIGCONT);
    let fenced = wait_for("the zombie noticing its lost session", SETTLE, || {
        let log = zombie.log();
        let line = log.lines().find(|l| l.contains(FENCED_LOG))?;
        Some(line.to_string())
    });
    eprintln!("the zombie, resumed: {fenced}");
    let (rejoined, took) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);
    eprintln!("after SIGCONT the three settled in {took:?}: {rejoined}");
    let now = zombie.membership(FLOW).expect("the zombie's membership");
    for s in &now.slots {
        if let Some(old) = old_epochs.get(&s.slot) {
            assert!(
                s.epoch > *old,
                "the resumed member shows slot {} with epoch {} after losing it at epoch {old}",
                s.slot,
                s.epoch
            );
        }
    }
    assert!(
        zombie
            .metric(&format!("ferry_slots_fenced_total{{flow=\"{FLOW}\"}}"))
            .unwrap_or(0.0)
            >= old_epochs.len() as f64,
        "the zombie counts the slots it gave up"
    );

    std::thread::sleep(Duration::from_secs(3));
    let per_partition = load.stop();
    scene.wait_until_copied(per_partition);
    for m in members {
        stop_gracefully(m);
    }
    let tally = scene.assert_nothing_lost(&[]);

    // Its progress never wins: per partition, the record with the highest
    // epoch is the final one, at the source's end. A record with a lower
    // epoch than one written before it is a late write of a lost owner.
    let progress = progress_records(scene.target, &scene.topics);
    let mut highest: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
    let mut stale = Vec::new();
    for r in &progress {
        let key = (r.topic.clone(), r.partition);
        match highest.get(&key) {
            Some(&(_, top)) if r.epoch < top => stale.push(r),
            _ => {
                highest.insert(key, (r.offset, r.epoch));
            }
        }
    }
    for topic in &scene.topics {
        let ends = data::end_offsets(&scene.source.client_config(), topic).expect("source ends");
        for (p, end) in ends.iter().enumerate() {
            let key = (topic.clone(), p as i32);
            assert_eq!(
                highest.get(&key).map(|(offset, _)| *offset),
                Some(*end),
                "{topic} partition {p}: the winning progress is the source's end"
            );
        }
    }
    // It stops writing for the lost slots once it notices: no stale record
    // is stamped later than a session timeout after it resumed.
    let last_stale = stale.iter().map(|r| r.at_ms).max();
    eprintln!(
        "zombie: {} stale progress records (lower epoch, never winning), the last {:?} ms \
         after SIGCONT",
        stale.len(),
        last_stale.map(|at| at - resumed_ms)
    );
    if let Some(at) = last_stale {
        assert!(
            at - resumed_ms <= SESSION.as_millis() as i64,
            "the zombie wrote stale progress {} ms after resuming",
            at - resumed_ms
        );
    }
    // What the zombie held unpersisted is copied again by the new owners
    // (one window), and what it had queued to the target when paused may
    // still go out when it resumes (another window at most).
    assert_duplicates_within(&tally, 2, "after the zombie");
}

#[test]
fn scale_1_to_3_then_3_to_1_while_copying_loses_nothing() {
    let scene = Scene::new("scale", 2);
    let first = Member::start(FERRY, &scene.topology);
    let (alone, _) = wait_until_balanced(&[&first], FLOW, SETTLE);
    assert_eq!(
        alone.owned[0].len(),
        SLOTS as usize,
        "a lone process owns every slot"
    );

    let load = scene.start_load(20);
    let watched = scene.partitions_in(&(0..SLOTS).collect());
    let sample = || {
        EndOffsetSampler::start(
            &scene.source.client_config(),
            &scene.target.client_config(),
            watched.clone(),
            Duration::from_millis(200),
        )
    };

    // 1 -> 3.
    let sampler = sample();
    std::thread::sleep(Duration::from_secs(2));
    let joined = [
        Member::start(FERRY, &scene.topology),
        Member::start(FERRY, &scene.topology),
    ];
    let (three, took) = wait_until_balanced(&[&first, &joined[0], &joined[1]], FLOW, SETTLE);
    std::thread::sleep(Duration::from_secs(2));
    let samples = sampler.stop();
    let kept = scene.partitions_in(&slot_set(&three, 0));
    let moved: Vec<Watched> = watched
        .iter()
        .filter(|w| !kept.contains(w))
        .cloned()
        .collect();
    let kept_stall = longest_stall_of(&samples, &watched, &kept);
    let moved_stall = longest_stall_of(&samples, &watched, &moved);
    eprintln!(
        "1 -> 3 settled in {took:?}; longest copy stall of the {} partitions whose slots stayed: \
         {kept_stall:?}; of the {} that moved: {moved_stall:?} ({} samples)",
        kept.len(),
        moved.len(),
        samples.len()
    );
    assert!(
        samples.len() >= 10,
        "too few end-offset samples: {}",
        samples.len()
    );
    // Cooperative-sticky revokes only the slots that move; the others keep
    // copying. 2 s leaves room for a loaded 2-core machine.
    assert!(
        kept_stall <= Duration::from_secs(2),
        "partitions whose slots did not move stalled for {kept_stall:?} during the join"
    );

    // 3 -> 1.
    let sampler = sample();
    for m in &joined {
        m.signal(libc::SIGTERM);
    }
    for m in joined {
        let (code, log) = stop_daemon_after_signal(m.into_daemon());
        assert_eq!(code, Some(0), "{log}");
    }
    let (back, took) = wait_until_balanced(&[&first], FLOW, SETTLE);
    assert_eq!(back.owned[0].len(), SLOTS as usize);
    std::thread::sleep(Duration::from_secs(2));
    let samples = sampler.stop();
    let moved_stall = longest_stall_of(&samples, &watched, &moved);
    let kept_stall = longest_stall_of(&samples, &watched, &kept);
    eprintln!(
        "3 -> 1 settled in {took:?}; longest copy stall of the partitions handed back: \
         {moved_stall:?}; of those the survivor kept: {kept_stall:?}"
    );

    std::thread::sleep(Duration::from_secs(2));
    let per_partition = load.stop();
    scene.wait_until_copied(per_partition);
    stop_gracefully(first);
    let tally = scene.assert_nothing_lost(&[]);
    eprintln!(
        "1 -> 3 -> 1: {} duplicates of {} records",
        tally.duplicates, tally.records
    );
}

/// Every checkpoint of `group` in `src.checkpoints.internal` on `target`.
fn checkpoints_of(target: &KafkaCluster, group: &str) -> Vec<ferry_checkpoint::wire::Checkpoint> {
    let topic = ferry_checkpoint::wire::checkpoints_topic("src", ".");
    data::read_partition(&target.client_config(), &topic, 0, 0, None)
        .unwrap_or_else(|e| panic!("reading {topic}: {e}"))
        .into_iter()
        .map(|r| {
            ferry_checkpoint::wire::Checkpoint::decode(
                r.key.as_deref().unwrap_or_default(),
                r.value.as_deref().unwrap_or_default(),
            )
            .unwrap_or_else(|e| panic!("{topic} offset {}: {e}", r.offset))
        })
        .filter(|c| c.group == group)
        .collect()
}

/// Waits until `group` on the target holds exactly `expected` offsets of
/// `remote`, printing every other state seen on the way (what the last
/// one was is what explains a time-out).
fn wait_for_synced_offsets(
    target: &KafkaCluster,
    group: &str,
    remote: &str,
    expected: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, i64> {
    let mut last = BTreeMap::new();
    wait_for(
        &format!("group offsets {expected:?} on the target"),
        Duration::from_secs(90),
        || {
            let offsets = group_offsets(target, group, remote);
            if offsets == *expected {
                return Some(offsets);
            }
            if offsets != last {
                eprintln!("target group offsets so far: {offsets:?}");
                last = offsets;
            }
            None
        },
    )
}

#[test]
fn three_processes_keep_consumer_failover_exact() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("failover3");
    let group = unique_name("failover3-group");
    data::create_topic(&source.client_config(), &topic, 3, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(3, 400)).expect("produce");
    let (consumed, committed) =
        consume_and_commit(source, &group, &topic, &[(0, 137), (1, 250), (2, 400)]);
    assert_eq!(committed, BTreeMap::from([(0, 137), (1, 250), (2, 400)]));

    let dir = tempfile::tempdir().unwrap();
    let extra = format!("groups = [\"{group}\"]\ncheckpoint_interval = \"1s\"");
    let topology = topology(dir.path(), source, target, &topic, &extra);
    let members = start_members(&topology, 3);
    let (shares, _) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);
    eprintln!("{shares}");
    let remote = remote(&topic);
    // The members start one after the other, so the first one owns every
    // slot for a moment and may copy before handing slots on: the copy
    // must still be exact, which also keeps the translation exact.
    wait_for("every record copied", Duration::from_secs(60), || {
        (try_total(target, &remote).ok()? >= 1200).then_some(())
    });
    assert_same(source, &topic, target, &remote, 1200);
    let synced = wait_for_synced_offsets(target, &group, &remote, &committed);
    let mut more = SequenceSpec::new(3, 100);
    more.first_seq = 400;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");
    wait_for(
        "the new records on the target",
        Duration::from_secs(60),
        || (try_total(target, &remote).ok()? >= 1500).then_some(()),
    );
    // A few more checkpoint cycles, for a second writer to show itself.
    std::thread::sleep(Duration::from_secs(3));
    for m in members {
        stop_gracefully(m);
    }
    assert_eq!(try_total(target, &remote).unwrap(), 1500, "copied once");
    assert_eq!(synced, committed, "synced offsets are exact");

    let checkpoints = checkpoints_of(target, &group);
    let last: BTreeMap<i32, (i64, i64)> = checkpoints
        .iter()
        .filter(|c| c.topic == remote)
        .map(|c| (c.partition, (c.upstream_offset, c.downstream_offset)))
        .collect();
    for (p, offset) in &committed {
        assert_eq!(
            last.get(p),
            Some(&(*offset, *offset)),
            "checkpoint of partition {p}"
        );
    }
    // Never written twice with different values: one downstream offset per
    // (group, topic, partition, upstream offset).
    let mut values: BTreeMap<(String, i32, i64), BTreeSet<i64>> = BTreeMap::new();
    for c in &checkpoints {
        values
            .entry((c.topic.clone(), c.partition, c.upstream_offset))
            .or_default()
            .insert(c.downstream_offset);
    }
    let conflicting: Vec<_> = values.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        conflicting.is_empty(),
        "checkpoints written with different values: {conflicting:?}"
    );

    // The group fails over: exactly the records it had not consumed.
    let got = sequences(&consume_from_committed(target, &group, &remote, &[0, 1, 2]));
    let read: BTreeSet<SequenceId> = sequences(&consumed).into_iter().collect();
    let expected: BTreeSet<SequenceId> = all_sequences(source, &topic)
        .into_iter()
        .filter(|s| !read.contains(s))
        .collect();
    assert_eq!(expected.len(), 1500 - 787);
    assert_exactly("failed-over consumer", &got, &expected);
}

#[test]
fn group_offsets_keep_syncing_after_their_partitions_move() {
    // Three members copy and sync a group; one stops, and the others take
    // its partitions. The group moves on at the source within records the
    // stopped member copied: their new owners must translate offsets they
    // did not copy themselves.
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("moved-syncs");
    let group = unique_name("moved-syncs-group");
    data::create_topic(&source.client_config(), &topic, PARTITIONS, 1, &[]).expect("create");
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("groups = [\"{group}\"]\ncheckpoint_interval = \"1s\"");
    let topology = topology(dir.path(), source, target, &topic, &extra);
    let mut members = start_members(&topology, 3);
    let (shares, _) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);

    // Produced once every member runs: each copies its own partitions.
    produce_sequence(
        &source.client_config(),
        &topic,
        &SequenceSpec::new(PARTITIONS, 400),
    )
    .expect("produce");
    let first: Vec<(i32, usize)> = (0..PARTITIONS).map(|p| (p, 100)).collect();
    let (_, committed) = consume_and_commit(source, &group, &topic, &first);
    let remote = remote(&topic);
    wait_for("every record copied", Duration::from_secs(60), || {
        (try_total(target, &remote).ok()? == i64::from(PARTITIONS) * 400).then_some(())
    });
    wait_for_synced_offsets(target, &group, &remote, &committed);

    // The member that stops: one that copies some of the topic (its name
    // is random, so which slots its partitions fall in is too).
    let topic_slots: BTreeSet<u16> = (0..PARTITIONS)
        .map(|p| ferry_config::slot_of(&topic, p, SLOTS))
        .collect();
    let index = (0..members.len())
        .find(|i| !slot_set(&shares, *i).is_disjoint(&topic_slots))
        .expect("the topic's slots are owned by some member");
    let leaving = slot_set(&shares, index);
    let moved: Vec<i32> = (0..PARTITIONS)
        .filter(|p| leaving.contains(&ferry_config::slot_of(&topic, *p, SLOTS)))
        .collect();
    stop_gracefully(members.remove(index));
    let (after, _) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);
    eprintln!("partitions {moved:?} moved to the remaining members: {after}");

    let later: Vec<(&str, i32, i64)> = (0..PARTITIONS).map(|p| (topic.as_str(), p, 300)).collect();
    commit_group_offsets(source, &group, &later);
    let expected: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 300)).collect();
    wait_for_synced_offsets(target, &group, &remote, &expected);
    for m in members {
        stop_gracefully(m);
    }
    // Fresh topic, contiguous copy: every checkpoint maps an offset to
    // itself, whoever wrote it.
    for c in checkpoints_of(target, &group) {
        assert_eq!(c.upstream_offset, c.downstream_offset, "{c:?}");
    }
}

#[test]
fn status_shows_every_member_and_its_slots() {
    let scene = Scene::new("members", 1);
    let members = start_members(&scene.topology, 3);
    let (shares, _) = wait_until_balanced(&members.iter().collect::<Vec<_>>(), FLOW, SETTLE);
    let digest = members[0].status().expect("status").config_digest;
    let client_id = format!("ferry-{}", &digest[..12]);

    for (i, m) in members.iter().enumerate() {
        // The group as the coordinator describes it: every member with the
        // slots it was assigned, this one included.
        let mut last = None;
        let doc = wait_for(
            &format!("member {i} listing the three members"),
            Duration::from_secs(30),
            || {
                let doc = m.membership(FLOW)?;
                if doc.members.len() == 3 {
                    return Some(doc);
                }
                if last.as_ref() != Some(&doc.members) {
                    eprintln!("member {i} lists {:?}", doc.members);
                    last = Some(doc.members);
                }
                None
            },
        );
        let mut listed: Vec<u16> = doc.members.iter().flat_map(|o| o.slots.clone()).collect();
        listed.sort_unstable();
        assert_eq!(
            listed,
            (0..SLOTS).collect::<Vec<_>>(),
            "member {i}: {doc:?}"
        );
        let me = doc
            .members
            .iter()
            .find(|o| o.member_id == doc.member_id)
            .unwrap_or_else(|| panic!("member {i} is not among the members it lists: {doc:?}"));
        let mut assigned = me.slots.clone();
        assigned.sort_unstable();
        assert_eq!(assigned, shares.owned[i], "member {i}: {doc:?}");
        for o in &doc.members {
            assert_eq!(o.client_id, client_id, "one topology file: {doc:?}");
        }
        assert!(!doc.topology_mismatch, "member {i}: {doc:?}");
        let series = |name: &str| m.metric(&format!("{name}{{flow=\"{FLOW}\"}}"));
        assert_eq!(series("ferry_group_members"), Some(3.0), "member {i}");
        assert_eq!(series("ferry_topology_mismatch"), Some(0.0), "member {i}");
    }

    // The time since the last rebalance goes on counting while the group
    // is stable, in /status and in /metrics.
    let since = |m: &Member| {
        let doc = m.membership(FLOW).expect("membership");
        let metric = m
            .metric(&format!("ferry_seconds_since_rebalance{{flow=\"{FLOW}\"}}"))
            .expect("ferry_seconds_since_rebalance");
        (doc.seconds_since_rebalance, metric)
    };
    let before = since(&members[0]);
    std::thread::sleep(Duration::from_secs(3));
    let after = since(&members[0]);
    assert!(
        after.0 - before.0 >= 2.0 && after.1 - before.1 >= 2.0,
        "seconds since the last rebalance (status, metric): {before:?}, 3 s later {after:?}"
    );
}
