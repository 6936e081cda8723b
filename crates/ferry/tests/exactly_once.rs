//! `delivery = "exactly-once"` against real Apache Kafka: whatever happens
//! to the processes (SIGKILL, a paused zombie, rolling restarts) or to the
//! target's brokers, a `read_committed` reader of the target sees every
//! source record exactly once, in order, and checkpoints stay exact with
//! transaction markers taking up target offsets.
//!
//! Every check reads the target with `read_committed` (librdkafka's
//! default) through the testkit's independent compare, which knows nothing
//! of Ferry's progress or offset maps.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_testkit::check::{all_sequences, assert_exactly, sequences};
use ferry_testkit::daemon::{stop_daemon, stop_daemon_with, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceId, SequenceSpec};
use ferry_testkit::groups::{
    consume_and_commit, consume_from_committed, group_offsets, remote_cluster_utils_translate,
};
use ferry_testkit::members::{tally, wait_until_balanced, CopyTally, Load, Member};
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster, KafkaOptions};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

const FLOW: &str = "src->dst";

/// The group session timeout of every test: the broker's smallest, so a
/// killed or paused member's slots move quickly.
const SESSION: Duration = Duration::from_secs(6);

/// Partitions of every source topic.
const PARTITIONS: i32 = 8;

/// How long a copy may take to become complete after the last fault.
const CATCH_UP: Duration = Duration::from_secs(180);

/// An exactly-once topology copying `<prefix>-.*`, with `extra` flow keys
/// and `target_client` lines under the target's client properties.
fn topology(
    dir: &Path,
    (source, target): (&KafkaCluster, &KafkaCluster),
    prefix: &str,
    extra: &str,
    target_client: &str,
) -> PathBuf {
    let flow = one_flow(&format!(
        "topics = [\"{prefix}-.*\"]\ndelivery = \"exactly-once\"\n{extra}"
    ));
    let session_ms = SESSION.as_millis();
    write_topology(
        dir,
        source,
        target,
        &format!(
            "{flow}\n[clusters.dst.client]\n\"session.timeout.ms\" = \"{session_ms}\"\n\
             \"heartbeat.interval.ms\" = \"1000\"\n{target_client}"
        ),
    )
}

fn remote(topic: &str) -> String {
    format!("src.{topic}")
}

/// Creates `<prefix>-0` with [`PARTITIONS`] partitions on the source.
fn source_topic(source: &KafkaCluster, prefix: &str) -> String {
    let topic = format!("{prefix}-0");
    data::create_topic(&source.client_config(), &topic, PARTITIONS, 1, &[])
        .expect("create a source topic");
    topic
}

/// `per_batch` records to every partition of `topic` every 100 ms,
/// `batches` times.
fn start_load(source: &KafkaCluster, topic: &str, per_batch: u64, batches: u64) -> Load {
    let mut batch = SequenceSpec::new(PARTITIONS, per_batch);
    batch.value_padding = 100;
    Load::batches(
        source.client_config(),
        vec![topic.to_string()],
        batch,
        Duration::from_millis(100),
        batches,
    )
}

/// The target's committed copy of `topic` against the source.
fn tally_of(source: &KafkaCluster, target: &KafkaCluster, topic: &str) -> CopyTally {
    tally(
        &source.client_config(),
        topic,
        &target.client_config(),
        &remote(topic),
    )
}

/// Waits until a `read_committed` reader finds every source record on the
/// target, then asserts exactly once: nothing missing, duplicated, altered,
/// foreign or out of order. On a time-out, `logs` (the daemons' logs) go
/// with the failure.
fn assert_copied_exactly_once(
    source: &KafkaCluster,
    target: &KafkaCluster,
    topic: &str,
    logs: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + CATCH_UP;
    loop {
        let t = tally_of(source, target, topic);
        if t.missing == 0 {
            eprintln!("copy complete: {} records", t.records);
            return assert_exactly_once(&t, topic);
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{topic}: {} of {} records still missing after {CATCH_UP:?}; the daemons' logs:\n{}",
                t.missing,
                t.records,
                logs()
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The logs of some members, for a failure message.
fn logs_of(members: &[&Member]) -> String {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| format!("--- member {i}\n{}", m.log()))
        .collect()
}

fn assert_exactly_once(t: &CopyTally, topic: &str) {
    assert!(
        t.missing == 0
            && t.duplicates == 0
            && t.unexpected.is_empty()
            && t.altered.is_empty()
            && t.reordered.is_empty(),
        "{topic}: exactly once broken: {} of {} missing, {} duplicates; unexpected {:?}; altered {:?}; reordered {:?}",
        t.missing,
        t.records,
        t.duplicates,
        &t.unexpected[..t.unexpected.len().min(5)],
        &t.altered[..t.altered.len().min(5)],
        &t.reordered[..t.reordered.len().min(5)],
    );
}

/// Records on the target's copy, transaction markers and aborted records
/// included: grows while the copy runs.
fn target_end(target: &KafkaCluster, topic: &str) -> i64 {
    ferry_testkit::check::try_total(target, &remote(topic)).unwrap_or(0)
}

#[test]
fn sigkill_three_times_during_a_200k_copy_leaves_no_duplicate_and_no_gap() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("eos-kill");
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), (source, target), &prefix, "", "");
    let topic = source_topic(source, &prefix);
    // 8 partitions × 250 records a batch, 100 batches: 200,000 records
    // produced over half a minute or more, so each kill lands while
    // records are on their way.
    let load = start_load(source, &topic, 250, 100);
    let started = std::time::Instant::now();
    let mut ferry = Member::start(FERRY, &topology);
    for round in 1..=3 {
        let threshold = round * 40_000;
        wait_for("the copy to grow", Duration::from_secs(120), || {
            (target_end(target, &topic) > threshold).then_some(())
        });
        let (_, log) = stop_daemon_with(ferry.into_daemon(), libc::SIGKILL);
        eprintln!(
            "kill {round} at {} target offsets after {:?}",
            target_end(target, &topic),
            started.elapsed()
        );
        assert!(
            !log.contains("panicked"),
            "the daemon panicked before the kill:\n{log}"
        );
        ferry = Member::start(FERRY, &topology);
    }
    let per_partition = load.finish();
    assert_eq!(per_partition * PARTITIONS as u64, 200_000);
    eprintln!("load done after {:?}", started.elapsed());
    assert_copied_exactly_once(source, target, &topic, || logs_of(&[&ferry]));
    let (shares, _) = wait_until_balanced(&[&ferry], FLOW, Duration::from_secs(60));
    assert!(shares.exactly_once(), "one member owns every slot");
    let (code, log) = stop_daemon(ferry.into_daemon());
    assert_eq!(code, Some(0), "a clean stop after the kills:\n{log}");
    // Nothing the clean stop committed was a second copy either.
    assert_exactly_once(&tally_of(source, target, &topic), &topic);
}

/// The log line of a process whose producer another process fenced.
const FENCED_BY_ANOTHER: &str = "fenced by another Ferry process";

#[test]
fn a_zombie_paused_past_its_session_and_transaction_timeouts_is_fenced_and_copies_nothing_twice() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("eos-zombie");
    let dir = tempfile::tempdir().unwrap();
    // Transactions time out on the broker after 10 s: the zombie's open
    // transaction is aborted by then, or fenced sooner by the new owner.
    let topology = topology(
        dir.path(),
        (source, target),
        &prefix,
        "",
        "\"transaction.timeout.ms\" = \"10000\"\n",
    );
    let topic = source_topic(source, &prefix);
    let members = [
        Member::start(FERRY, &topology),
        Member::start(FERRY, &topology),
    ];
    wait_until_balanced(
        &members.iter().collect::<Vec<_>>(),
        FLOW,
        Duration::from_secs(60),
    );
    let load = start_load(source, &topic, 40, 100);
    wait_for("copying under load", Duration::from_secs(60), || {
        (target_end(target, &topic) > 3_000).then_some(())
    });
    // A topic's partitions fill consecutive slots, so one member may hold
    // none of them: the zombie is a member that copies.
    let held: Vec<_> = members
        .iter()
        .map(|m| m.membership(FLOW).expect("each member's membership"))
        .collect();
    let zombie_at = usize::from(held[0].partitions == 0);
    let (zombie, survivor) = (&members[zombie_at], &members[1 - zombie_at]);
    assert!(
        held[zombie_at].partitions > 0,
        "the zombie copies: {:?}",
        held[zombie_at]
    );
    zombie.signal(libc::SIGSTOP);
    // Past the session (6 s) and the transaction timeout (10 s): the other
    // member owns every slot and copies on.
    let (taken, took) = wait_until_balanced(&[survivor], FLOW, Duration::from_secs(60));
    eprintln!("the survivor took every slot after {took:?}: {taken}");
    std::thread::sleep(Duration::from_secs(12));
    zombie.signal(libc::SIGCONT);
    let (_, settled) = wait_until_balanced(
        &members.iter().collect::<Vec<_>>(),
        FLOW,
        Duration::from_secs(90),
    );
    eprintln!("both members settled again after {settled:?}");
    let log = zombie.log();
    assert!(
        log.contains(FENCED_BY_ANOTHER) || log.contains("session lost"),
        "the resumed zombie notices it lost its slots:\n{log}"
    );
    load.finish();
    assert_copied_exactly_once(source, target, &topic, || {
        logs_of(&members.iter().collect::<Vec<_>>())
    });
    for m in members {
        let (code, log) = stop_daemon(m.into_daemon());
        assert_eq!(code, Some(0), "no crash loop, a clean stop:\n{log}");
        assert!(!log.contains("panicked"), "{log}");
    }
    assert_exactly_once(&tally_of(source, target, &topic), &topic);
}

#[test]
fn three_processes_with_a_rolling_restart_copy_exactly_once() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("eos-rolling");
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), (source, target), &prefix, "", "");
    let topic = source_topic(source, &prefix);
    let mut members: Vec<Member> = (0..3).map(|_| Member::start(FERRY, &topology)).collect();
    wait_until_balanced(
        &members.iter().collect::<Vec<_>>(),
        FLOW,
        Duration::from_secs(60),
    );
    let load = start_load(source, &topic, 40, 100);
    for i in 0..3 {
        std::thread::sleep(Duration::from_secs(3));
        let old = std::mem::replace(&mut members[i], Member::start(FERRY, &topology));
        let (code, log) = stop_daemon(old.into_daemon());
        assert_eq!(code, Some(0), "member {i} stops cleanly:\n{log}");
        let (_, took) = wait_until_balanced(
            &members.iter().collect::<Vec<_>>(),
            FLOW,
            Duration::from_secs(90),
        );
        eprintln!("restart {i}: settled after {took:?}");
    }
    load.finish();
    assert_copied_exactly_once(source, target, &topic, || {
        logs_of(&members.iter().collect::<Vec<_>>())
    });
    for m in members {
        let (code, log) = stop_daemon(m.into_daemon());
        assert_eq!(code, Some(0), "{log}");
    }
    assert_exactly_once(&tally_of(source, target, &topic), &topic);
}

/// Per partition, the target offset of the copy of each source record,
/// by its sequence number (= its source offset in these tests).
fn copy_offsets(target: &KafkaCluster, remote: &str, partitions: i32) -> Vec<BTreeMap<u64, i64>> {
    (0..partitions)
        .map(|p| {
            data::read_partition(&target.client_config(), remote, p, 0, None)
                .unwrap_or_else(|e| panic!("reading {remote} partition {p}: {e}"))
                .iter()
                .filter_map(|r| Some((r.sequence()?.seq, r.offset)))
                .collect()
        })
        .collect()
}

#[test]
fn checkpoints_across_transaction_markers_fail_a_group_over_exactly_and_match_remote_cluster_utils()
{
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("eos-ckpt");
    let group = unique_name("eos-ckpt-group");
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        (source, target),
        &prefix,
        &format!("groups = [\"{group}\"]\ncheckpoint_interval = \"1s\""),
        "",
    );
    let topic = format!("{prefix}-0");
    data::create_topic(&source.client_config(), &topic, 3, 1, &[]).expect("create");
    let daemon = FERRY.start(&topology);
    // Eight batches a while apart: every batch is copied in transactions
    // of its own, so commit markers sit between the copies on the target
    // and target offsets drift from source offsets.
    for batch in 0..8u64 {
        let mut spec = SequenceSpec::new(3, 50);
        spec.first_seq = batch * 50;
        produce_sequence(&source.client_config(), &topic, &spec).expect("produce");
        std::thread::sleep(Duration::from_millis(400));
    }
    let (consumed, committed) =
        consume_and_commit(source, &group, &topic, &[(0, 137), (1, 250), (2, 333)]);
    let remote = remote(&topic);
    assert_copied_exactly_once(source, target, &topic, || daemon.log());
    let copies = copy_offsets(target, &remote, 3);
    // The translation of a committed offset is the target offset of the
    // copy of the record the group reads next.
    let expected: BTreeMap<i32, i64> = committed
        .iter()
        .map(|(p, o)| (*p, copies[*p as usize][&(*o as u64)]))
        .collect();
    assert!(
        expected.iter().any(|(p, d)| committed[p] != *d),
        "markers shift target offsets: {expected:?} against {committed:?}"
    );
    let synced = wait_for(
        "translated group offsets on the target",
        Duration::from_secs(90),
        || {
            let offsets = group_offsets(target, &group, &remote);
            (offsets == expected).then_some(offsets)
        },
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(synced, expected);

    // `ferry verify` compares the copy record for record, markers between.
    let (code, stdout, stderr) = FERRY.output(&["verify", "-c", topology.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("result: match: 3 partitions, compared 1200 of 1200 source records"),
        "{stdout}"
    );

    // MirrorMaker 2's own client reads the same offsets from Ferry's
    // checkpoints, and `ferry offsets` prints them as exact.
    let from_java = remote_cluster_utils_translate(target, "src", ".", &group);
    let expected_java: BTreeMap<(String, i32), i64> = expected
        .iter()
        .map(|(p, d)| ((remote.clone(), *p), *d))
        .collect();
    assert_eq!(
        from_java, expected_java,
        "RemoteClusterUtils.translateOffsets"
    );
    let (code, stdout, stderr) = FERRY.output(&[
        "offsets",
        "-c",
        topology.to_str().unwrap(),
        "--flow",
        FLOW,
        "--group",
        &group,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for (p, d) in &expected {
        let line = stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|c| c.len() > 6 && c[0] == group && c[2] == p.to_string())
            .unwrap_or_else(|| panic!("no line for partition {p}:\n{stdout}"));
        // GROUP TOPIC PARTITION SOURCE TARGET-TOPIC TRANSLATED PRECISION ...
        assert_eq!(
            (line[5], line[6]),
            (d.to_string().as_str(), "exact"),
            "partition {p}:\n{stdout}"
        );
    }

    // The group fails over: exactly the records it had not consumed, none
    // read twice.
    let got = sequences(&consume_from_committed(target, &group, &remote, &[0, 1, 2]));
    let read: BTreeSet<SequenceId> = sequences(&consumed).into_iter().collect();
    let unread: BTreeSet<SequenceId> = all_sequences(source, &topic)
        .into_iter()
        .filter(|s| !read.contains(s))
        .collect();
    assert_eq!(unread.len(), 1200 - 720);
    assert_exactly("failed-over consumer", &got, &unread);
}

#[test]
fn a_target_leader_killed_mid_transaction_in_a_three_broker_cluster_copies_exactly_once() {
    let source = ferry_testkit::shared().expect("source cluster");
    let target = KafkaOptions::new()
        .brokers(3)
        .start()
        .expect("three-broker target");
    let prefix = unique_name("eos-leader");
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        (source, &target),
        &prefix,
        "replication_factor = 3",
        "",
    );
    let topic = source_topic(source, &prefix);
    let daemon = FERRY.start(&topology);
    let load = start_load(source, &topic, 20, 300);
    let remote = remote(&topic);
    wait_for("copying to start", Duration::from_secs(90), || {
        (target_end(&target, &topic) > 5_000).then_some(())
    });
    // The leader of a copied partition: transactions are open there all
    // the time, so the kill lands in one.
    let leader = data::partition_leader(&target.client_config(), &remote, 0).expect("leader");
    target.kill_broker(leader).expect("kill the leader");
    std::thread::sleep(Duration::from_secs(8));
    target.start_broker(leader).expect("restart it");
    load.finish();
    assert_copied_exactly_once(source, &target, &topic, || daemon.log());
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_exactly_once(&tally_of(source, &target, &topic), &topic);
}
