//! `ferry cutover` end to end against real Apache Kafka: the full
//! migration drill (a daemon replicating while producers and consumers run
//! on the source, producers stop, cutover, consumers resume on the target)
//! and every refusal path (lag not zero, verify mismatch, a group already
//! active on the target).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ferry_testkit::check::{
    all_sequences, assert_exactly, assert_same, sequences, total, try_total,
};
use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{
    self, produce_sequence, unique_name, Producers, SequenceId, SequenceSpec,
};
use ferry_testkit::groups::{consume_and_commit, consume_from_committed, group_offsets};
use ferry_testkit::scrape::{cut_over_topics, metric, replicated_topics};
use ferry_testkit::topology::{lock_http, one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

const PARTITIONS: i32 = 3;
/// The daemon's control token in the drill.
const DRILL_TOKEN: &str = "drill-control-token-0b7e";

fn flow(topic: &str, group: &str) -> String {
    one_flow(&format!(
        "topics = [\"{topic}\"]\ngroups = [\"{group}\"]\ncheckpoint_interval = \"1s\""
    ))
}

/// The topology, with `http.listen` on a free port so that `ferry cutover`
/// finds the daemon there.
fn topology_with_port(
    dir: &Path,
    source: &KafkaCluster,
    target: &KafkaCluster,
    flows: &str,
) -> PathBuf {
    let path = write_topology(dir, source, target, flows);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&path, text).unwrap();
    path
}

fn cutover(topology: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec![
        "cutover",
        "-c",
        topology.to_str().unwrap(),
        "--flow",
        "src->dst",
    ];
    args.extend_from_slice(extra);
    FERRY.output(&args)
}

#[test]
fn migration_drill_moves_consumers_without_loss_or_duplicates() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("drill");
    let group = unique_name("drill-group");
    let remote = format!("src.{topic}");
    data::create_topic(&source.client_config(), &topic, PARTITIONS, 1, &[]).expect("create");
    let dir = tempfile::tempdir().unwrap();
    let topology = topology_with_port(dir.path(), source, target, &flow(&topic, &group));
    // The daemon takes control requests only with a token; cutover reads
    // it from the same topology file.
    lock_http(&topology, DRILL_TOKEN);

    // Producers and a consumer group at work on the source while the
    // daemon replicates.
    let producers = Producers::start(
        source.client_config(),
        &topic,
        PARTITIONS,
        0,
        (50, Duration::from_millis(100)),
    );
    let daemon = FERRY.start(&topology);
    wait_for("records on the source", Duration::from_secs(30), || {
        (try_total(source, &topic).ok()? >= 600).then_some(())
    });
    let (mut consumed, _) =
        consume_and_commit(source, &group, &topic, &[(0, 120), (1, 60), (2, 200)]);
    let (more, committed) = consume_and_commit(source, &group, &topic, &[(0, 30), (1, 90), (2, 1)]);
    consumed.extend(more);
    // Producers stop; the consumers stop too (they move next).
    let produced = producers.stop();
    assert!(produced >= 200, "producers wrote {produced} per partition");

    let (code, stdout, stderr) = cutover(&topology, &["--settle", "3s", "--wait", "120s"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}\n{}", daemon.log());
    assert!(
        stdout.contains("replicates flow src->dst; cutover observes it"),
        "{stdout}"
    );
    assert!(stdout.contains("[5/6] verify: match"), "{stdout}");
    assert!(
        stdout.contains("no longer replicates these topics"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("group {group}")), "{stdout}");

    // The group's offsets on the target: translated, for every partition.
    let on_target = group_offsets(target, &group, &remote);
    assert_eq!(
        on_target.len(),
        committed.len(),
        "{on_target:?} vs {committed:?}"
    );

    // Consumers restart on the target: exactly what they had not read.
    let read = consume_from_committed(target, &group, &remote, &[0, 1, 2]);
    let everything: BTreeSet<SequenceId> = all_sequences(source, &topic).into_iter().collect();
    let already: BTreeSet<SequenceId> = sequences(&consumed).into_iter().collect();
    let remaining: BTreeSet<SequenceId> = everything.difference(&already).copied().collect();
    assert!(!remaining.is_empty());
    assert_exactly("the group on the target", &sequences(&read), &remaining);

    // The daemon no longer replicates the topic: a late source record
    // stays on the source, also after topic discovery (which starts every
    // topic the flow selects) has run twice since.
    let discoveries = || {
        let (code, body) = http_request(
            daemon.http_addr(),
            "GET",
            "/metrics",
            Some(DRILL_TOKEN),
            None,
        );
        assert_eq!(code, 200, "{body}");
        metric(&body, "ferry_topic_discoveries_total{flow=\"src->dst\"}")
            .unwrap_or_else(|| panic!("no discovery counter for src->dst:\n{body}"))
    };
    let copied = total(target, &remote);
    let mut late = SequenceSpec::new(1, 5);
    late.first_seq = 1_000_000;
    produce_sequence(&source.client_config(), &topic, &late).expect("produce late");
    let discovered = discoveries();
    wait_for("two topic discoveries", Duration::from_secs(30), || {
        (discoveries() >= discovered + 2.0).then_some(())
    });
    assert_eq!(
        total(target, &remote),
        copied,
        "nothing copied after cutover"
    );
    let (code, status) = http_request(
        daemon.http_addr(),
        "GET",
        "/status",
        Some(DRILL_TOKEN),
        None,
    );
    assert_eq!(code, 200, "{status}");
    assert!(!replicated_topics(&status).contains(&topic), "{status}");
    // Other tests share the clusters and the flow's name: theirs may be
    // listed too.
    assert!(cut_over_topics(&status).contains(&topic), "{status}");

    // Running cutover again is safe: the topics are already handed over.
    let (code, stdout, stderr) = cutover(&topology, &["--settle", "1s", "--wait", "5s"]);
    assert_eq!(
        code,
        Some(1),
        "the late record is not on the target:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("refused at step \"lag\""), "{stderr}");

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn cutover_refuses_while_producers_still_write() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("cutover-busy");
    let group = unique_name("cutover-busy-group");
    data::create_topic(&source.client_config(), &topic, PARTITIONS, 1, &[]).expect("create");
    produce_sequence(
        &source.client_config(),
        &topic,
        &SequenceSpec::new(PARTITIONS, 100),
    )
    .expect("produce");
    consume_and_commit(source, &group, &topic, &[(0, 10), (1, 10), (2, 10)]);
    let dir = tempfile::tempdir().unwrap();
    let topology = topology_with_port(dir.path(), source, target, &flow(&topic, &group));

    let producers = Producers::start(
        source.client_config(),
        &topic,
        PARTITIONS,
        100,
        (5, Duration::from_millis(200)),
    );
    let (code, stdout, stderr) = cutover(&topology, &["--settle", "3s", "--wait", "15s"]);
    producers.stop();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"lag\""), "{stderr}");
    assert!(
        stderr.contains("producers still write to the source"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{topic}[")),
        "names the partitions: {stderr}"
    );
    // Refused before the hand-over step.
    assert!(!stdout.contains("[4/6]"), "{stdout}");
}

#[test]
fn cutover_standalone_then_refuses_on_a_verify_mismatch() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("cutover-verify");
    let group = unique_name("cutover-verify-group");
    let remote = format!("src.{topic}");
    data::create_topic(&source.client_config(), &topic, PARTITIONS, 1, &[]).expect("create");
    produce_sequence(
        &source.client_config(),
        &topic,
        &SequenceSpec::new(PARTITIONS, 200),
    )
    .expect("produce");
    let (_, committed) = consume_and_commit(source, &group, &topic, &[(0, 50), (1, 199), (2, 200)]);
    let dir = tempfile::tempdir().unwrap();
    let topology = topology_with_port(dir.path(), source, target, &flow(&topic, &group));

    // No daemon runs: cutover replicates the topic itself, then hands over.
    let (code, stdout, stderr) = cutover(&topology, &["--settle", "2s", "--wait", "120s"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("cutover replicates the topics itself"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[5/6] verify: match: 3 partition(s), 600 record(s)"),
        "{stdout}"
    );
    // A fresh target topic: translated offsets equal the source's.
    assert_eq!(group_offsets(target, &group, &remote), committed);

    // One record the source never had appears on the target.
    let mut foreign = SequenceSpec::new(1, 1);
    foreign.first_seq = 9_999;
    produce_sequence(&target.client_config(), &remote, &foreign).expect("produce foreign");
    let (code, stdout, stderr) = cutover(&topology, &["--settle", "1s", "--wait", "60s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"verify\""), "{stderr}");
    assert!(
        stderr.contains("the target has a record the source does not"),
        "names the divergence: {stderr}"
    );
    assert!(!stdout.contains("[6/6]"), "{stdout}");
}

#[test]
fn cutover_refuses_when_a_group_is_active_on_the_target() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("cutover-active");
    let group = unique_name("cutover-active-group");
    let remote = format!("src.{topic}");
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(1, 50)).expect("produce");
    consume_and_commit(source, &group, &topic, &[(0, 20)]);
    data::create_topic(&target.client_config(), &remote, 1, 1, &[]).expect("create remote");

    // A consumer of the same group already runs against the target.
    let running = Arc::new(AtomicBool::new(true));
    let polls = Arc::new(AtomicU64::new(0));
    let consumer_thread = {
        let (running, polls) = (running.clone(), polls.clone());
        let consumer: BaseConsumer = target
            .client_config()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&remote]).expect("subscribe");
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
                polls.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let topology = topology_with_port(dir.path(), source, target, &flow(&topic, &group));
    // Wait until the group has a member on the target.
    let admin_config = target.client_config();
    wait_for(
        "the group's member on the target",
        Duration::from_secs(60),
        || {
            let admin: BaseConsumer = admin_config
                .clone()
                .set("group.id", "probe")
                .create()
                .ok()?;
            let list = admin
                .fetch_group_list(Some(&group), Duration::from_secs(5))
                .ok()?;
            list.groups()
                .iter()
                .any(|g| g.name() == group && !g.members().is_empty())
                .then_some(())
        },
    );

    let (code, stdout, stderr) = cutover(&topology, &["--settle", "1s", "--wait", "60s"]);
    running.store(false, Ordering::Relaxed);
    consumer_thread.join().unwrap();
    assert!(polls.load(Ordering::Relaxed) > 0);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"preflight\""), "{stderr}");
    assert!(
        stderr.contains(&format!("{group} (1 member(s)")),
        "{stderr}"
    );
    assert!(
        stderr.contains("already active on target cluster dst"),
        "{stderr}"
    );
    // Nothing was copied: the refusal came before replication started.
    assert_eq!(total(target, &remote), 0);
}

#[test]
fn cutover_names_bad_input_and_exits_2() {
    let (source, target) = shared_pair().expect("test brokers start");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow("topics = [\"nothing-here-.*\"]"),
    );
    let (code, _, stderr) = cutover(&topology, &["--topics", "orders("]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--topics: invalid regex \"orders(\""),
        "{stderr}"
    );
    let (code, _, stderr) = cutover(&topology, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("flow src->dst selects no topic on cluster src"),
        "{stderr}"
    );
    let (code, _, stderr) = FERRY.output(&[
        "cutover",
        "-c",
        topology.to_str().unwrap(),
        "--flow",
        "src->nowhere",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("src->nowhere"), "{stderr}");
}

/// Cutover never replicates next to a daemon it cannot control: a daemon
/// without a control token, or one whose `/status` refuses this topology's
/// (missing) token, stops it at the preflight, before any group moves.
#[test]
fn cutover_refuses_a_daemon_it_cannot_stop() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("cutover-locked");
    let group = unique_name("cutover-locked-group");
    data::create_topic(&source.client_config(), &topic, PARTITIONS, 1, &[]).expect("create");
    let dir = tempfile::tempdir().unwrap();
    let open = topology_with_port(dir.path(), source, target, &flow(&topic, &group));
    let locked = dir.path().join("locked.toml");
    std::fs::copy(&open, &locked).unwrap();
    lock_http(&locked, "locked-token-93d2");

    // No token configured: the daemon's control endpoint is disabled.
    let daemon = FERRY.start(&open);
    wait_for("the daemon runs the flow", Duration::from_secs(30), || {
        let (code, body) = daemon.get("/status");
        (code == 200 && body.contains(&format!("\"{topic}\""))).then_some(())
    });
    let (code, stdout, stderr) = cutover(&open, &["--settle", "1s", "--wait", "30s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"preflight\""), "{stderr}");
    assert!(stderr.contains("sets no http.control_token"), "{stderr}");
    assert!(!stdout.contains("[2/6]"), "{stdout}");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // A locked daemon, and a cutover whose topology lacks the token: the
    // daemon's 401 is a refusal, not "no daemon here".
    let daemon = FERRY.start(&locked);
    wait_for("the locked daemon answers", Duration::from_secs(30), || {
        (daemon.get("/status").0 == 401).then_some(())
    });
    let (code, stdout, stderr) = cutover(&open, &["--settle", "1s", "--wait", "30s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"preflight\""), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(!stdout.contains("replicates the topics itself"), "{stdout}");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}

/// A standalone cutover is recorded on the target: a daemon started later
/// leaves the topic stopped while it copies the flow's other topic, and
/// lists it in `ferry status`; `ferry resume-topics` without a daemon
/// removes the record, and the next run copies the topic from its saved
/// progress, nothing missing, nothing doubled.
#[test]
fn a_standalone_cutover_keeps_the_topic_stopped_in_later_runs() {
    let (source, target) = shared_pair().expect("test brokers start");
    let moved = unique_name("cutover-moved");
    let kept = unique_name("cutover-kept");
    for topic in [&moved, &kept] {
        data::create_topic(&source.client_config(), topic, 1, 1, &[]).expect("create");
        produce_sequence(&source.client_config(), topic, &SequenceSpec::new(1, 20))
            .expect("produce");
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = topology_with_port(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{moved}\", \"{kept}\"]")),
    );
    let (code, stdout, stderr) = cutover(
        &topology,
        &["--topics", &moved, "--settle", "2s", "--wait", "120s"],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("cutover replicates the topics itself"),
        "{stdout}"
    );
    assert!(stdout.contains("[6/6] stop: recorded on dst"), "{stdout}");
    let remote = format!("src.{moved}");
    assert_eq!(total(target, &remote), 20);

    let more = |topic: &str, first: u64| {
        let mut spec = SequenceSpec::new(1, 5);
        spec.first_seq = first;
        produce_sequence(&source.client_config(), topic, &spec).expect("produce");
    };
    let daemon = FERRY.start(&topology);
    more(&moved, 20);
    more(&kept, 20);
    wait_for("the kept topic copied", Duration::from_secs(60), || {
        (try_total(target, &format!("src.{kept}")).ok()? == 25).then_some(())
    });
    // The daemon started both topics' tasks together; a second round on the
    // kept topic, produced after the first was copied, gives a wrongly
    // resumed topic the time the kept one needed twice over.
    more(&kept, 25);
    wait_for(
        "the kept topic's second round",
        Duration::from_secs(60),
        || (try_total(target, &format!("src.{kept}")).ok()? == 30).then_some(()),
    );
    assert_eq!(
        total(target, &remote),
        20,
        "the daemon copied a cut-over topic:\n{}",
        daemon.log()
    );
    let config = topology.to_str().unwrap();
    let (code, table, stderr) = FERRY.output(&["status", "-c", config]);
    assert_eq!(code, Some(0), "{table}\n{stderr}");
    assert!(
        table.contains(&format!("cut over: {moved}")) && table.contains("by ferry cutover"),
        "{table}"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    let (code, stdout, stderr) = FERRY.output(&[
        "resume-topics",
        "-c",
        config,
        "--flow",
        "src->dst",
        "--topics",
        &format!("{moved}.*"),
    ]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("no daemon runs this flow"), "{stdout}");
    FERRY.run_until_caught_up(&topology);
    assert_same(source, &moved, target, &remote, 25);
    // Nothing left to resume.
    let (code, _, stderr) = FERRY.output(&[
        "resume-topics",
        "-c",
        config,
        "--flow",
        "src->dst",
        "--topics",
        &moved,
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("--topics \"{moved}\" matches no cut-over topic")),
        "{stderr}"
    );
}
