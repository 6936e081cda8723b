//! `delivery = "exactly-once"` against real Apache Kafka: whatever happens
//! to the processes (SIGKILL, a paused zombie, rolling restarts) or to the
//! target's brokers, a `read_committed` reader of the target sees every
//! source record exactly once, in order, and checkpoints stay exact with
//! transaction markers taking up target offsets.
//!
//! Every check reads the target with `read_committed` (librdkafka's
//! default) through the testkit's independent compare, which knows nothing
//! of Ferry's progress or offset maps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_testkit::daemon::{stop_daemon, stop_daemon_with, wait_for, Ferry};
use ferry_testkit::data::{self, unique_name, SequenceSpec};
use ferry_testkit::members::{tally, wait_until_balanced, CopyTally, Load, Member};
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};

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
/// foreign or out of order.
fn assert_copied_exactly_once(source: &KafkaCluster, target: &KafkaCluster, topic: &str) {
    let mut last = None;
    let complete = wait_for(
        "every source record committed on the target",
        CATCH_UP,
        || {
            let t = tally_of(source, target, topic);
            let done = t.missing == 0;
            last = Some((t.records, t.missing));
            if !done {
                std::thread::sleep(Duration::from_secs(2));
            }
            done.then_some(t)
        },
    );
    eprintln!("copy complete: {last:?}");
    assert_exactly_once(&complete, topic);
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
    // 8 partitions × 50 records every 100 ms, 500 times: 200,000 records
    // over about a minute, so each kill lands while records are on their
    // way.
    let load = start_load(source, &topic, 50, 500);
    let mut ferry = Member::start(FERRY, &topology);
    for round in 1..=3 {
        let threshold = round * 30_000;
        wait_for("the copy to grow", Duration::from_secs(120), || {
            (target_end(target, &topic) > threshold).then_some(())
        });
        let (_, log) = stop_daemon_with(ferry.into_daemon(), libc::SIGKILL);
        eprintln!(
            "kill {round} at {} target offsets",
            target_end(target, &topic)
        );
        assert!(
            !log.contains("panicked"),
            "the daemon panicked before the kill:\n{log}"
        );
        ferry = Member::start(FERRY, &topology);
    }
    let per_partition = load.finish();
    assert_eq!(per_partition * PARTITIONS as u64, 200_000);
    assert_copied_exactly_once(source, target, &topic);
    let (shares, _) = wait_until_balanced(&[&ferry], FLOW, Duration::from_secs(60));
    assert!(shares.exactly_once(), "one member owns every slot");
    let (code, log) = stop_daemon(ferry.into_daemon());
    assert_eq!(code, Some(0), "a clean stop after the kills:\n{log}");
    // Nothing the clean stop committed was a second copy either.
    assert_exactly_once(&tally_of(source, target, &topic), &topic);
}
