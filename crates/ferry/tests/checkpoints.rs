//! Offset translation end to end, against real Apache Kafka: offset syncs,
//! checkpoints, group offset sync and heartbeats written by the real `ferry`
//! binary, read back by consumers that fail over, by `ferry offsets`, and by
//! MirrorMaker 2's own Java client.
//!
//! The golden vectors of the three MM2 record formats are unit tests of the
//! `ferry-checkpoint` crate (`crates/checkpoint/src/wire.rs`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use ferry_testkit::check::{all_sequences, assert_exactly, assert_same, sequences, try_total};
use ferry_testkit::daemon::{signal, stop_daemon, stop_daemon_with, wait_for, Daemon, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, Record, SequenceId, SequenceSpec};
use ferry_testkit::groups::{
    commit_group_offsets, consume_and_commit, consume_from_committed, group_offsets,
    remote_cluster_utils_translate, ActiveMember,
};
use ferry_testkit::scrape::metric;
use ferry_testkit::topology::{one_flow, rename_clusters, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

/// Every checkpoint in `<source>.checkpoints.internal` (the default
/// separator) on `target`, in
/// topic order; none before the topic exists. A read that fails or a record
/// that does not decode fails the test.
fn read_checkpoints(
    target: &KafkaCluster,
    source_alias: &str,
    separator: &str,
) -> Vec<ferry_checkpoint::wire::Checkpoint> {
    let topic = ferry_checkpoint::wire::checkpoints_topic(source_alias, separator);
    let topics = ferry_testkit::inspect::topic_partition_counts(&target.client_config())
        .unwrap_or_else(|e| panic!("listing topics: {e}"));
    if !topics.contains_key(&topic) {
        return Vec::new();
    }
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
        .collect()
}

/// The last checkpoint per partition for `group` and remote `topic`:
/// (upstream offset, downstream offset).
fn last_checkpoints(
    target: &KafkaCluster,
    (source_alias, separator): (&str, &str),
    group: &str,
    topic: &str,
) -> BTreeMap<i32, (i64, i64)> {
    read_checkpoints(target, source_alias, separator)
        .into_iter()
        .filter(|c| c.group == group && c.topic == topic)
        .map(|c| (c.partition, (c.upstream_offset, c.downstream_offset)))
        .collect()
}

/// One `src -> dst` flow for `topic` and `group` with a fast checkpoint
/// cycle, plus `extra` keys.
fn flow(topic: &str, groups: &[&str], extra: &str) -> String {
    let groups: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
    one_flow(&format!(
        "topics = [\"{topic}\"]\ngroups = [{}]\ncheckpoint_interval = \"1s\"\n{extra}",
        groups.join(", ")
    ))
}

fn failover_without_duplicates(naming: &str) {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name(&format!("failover-{naming}"));
    let group = unique_name("failover-group");
    data::create_topic(&source.client_config(), &topic, 3, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(3, 400)).expect("produce");
    // The group reads part of each partition (all of partition 2) and
    // commits.
    let (consumed, committed) =
        consume_and_commit(source, &group, &topic, &[(0, 137), (1, 250), (2, 400)]);
    assert_eq!(committed, BTreeMap::from([(0, 137), (1, 250), (2, 400)]));

    let dir = tempfile::tempdir().unwrap();
    let extra = format!("topic_naming = \"{naming}\"");
    let topology = write_topology(dir.path(), source, target, &flow(&topic, &[&group], &extra));
    let daemon = FERRY.start(&topology);
    let remote = if naming == "prefix" {
        format!("src.{topic}")
    } else {
        topic.clone()
    };
    // After a checkpoint cycle the target group holds translated offsets.
    // A cycle that runs before the copy reaches a committed offset writes a
    // conservative offset (never ahead) and a later cycle moves it forward,
    // so wait for the settled value rather than the first one.
    let synced = wait_for(
        "group offsets on the target",
        Duration::from_secs(90),
        || {
            let offsets = group_offsets(target, &group, &remote);
            (offsets.len() == 3 && offsets == committed).then_some(offsets)
        },
    );
    // Replication runs on while the source group is idle.
    let mut more = SequenceSpec::new(3, 100);
    more.first_seq = 400;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");
    wait_for(
        "the new records on the target",
        Duration::from_secs(60),
        || (try_total(target, &remote).ok()? == 1500).then_some(()),
    );
    let (_, metrics) = daemon.get("/metrics");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // Fresh topic, contiguous copy: target offsets equal source offsets.
    assert_eq!(synced, committed, "synced offsets are exact");
    let checkpoints = last_checkpoints(target, ("src", "."), &group, &remote);
    for (p, offset) in &committed {
        assert_eq!(
            checkpoints.get(p),
            Some(&(*offset, *offset)),
            "checkpoint of partition {p}"
        );
    }
    let series = |name: &str| metric(&metrics, name).unwrap_or(0.0);
    assert!(
        series("ferry_checkpoints_emitted_total{flow=\"src->dst\"}") >= 3.0,
        "{metrics}"
    );
    assert!(
        series("ferry_group_offsets_synced_total{flow=\"src->dst\",result=\"synced\"}") >= 3.0,
        "{metrics}"
    );
    // Every acknowledged record observed its latency.
    assert!(
        series("ferry_replication_latency_seconds_count{flow=\"src->dst\"}") >= 1500.0,
        "{metrics}"
    );
    // MirrorMaker 2-format heartbeats of this flow, recent ones.
    let heartbeats: Vec<ferry_checkpoint::wire::Heartbeat> =
        data::read_partition(&target.client_config(), "heartbeats", 0, 0, None)
            .expect("heartbeats topic")
            .iter()
            .filter_map(|r| {
                ferry_checkpoint::wire::Heartbeat::decode(r.key.as_deref()?, r.value.as_deref()?)
                    .ok()
            })
            .filter(|h| h.source_alias == "src" && h.target_alias == "dst")
            .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!(
        heartbeats
            .iter()
            .any(|h| (now_ms - h.timestamp_ms).abs() < 60_000),
        "no recent heartbeat src->dst among {}",
        heartbeats.len()
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
fn failover_without_duplicates_prefix_naming() {
    failover_without_duplicates("prefix");
}

#[test]
fn failover_without_duplicates_identity_naming() {
    failover_without_duplicates("identity");
}

/// Runs `ferry offsets` and returns (exit code, stdout, stderr).
fn ferry_offsets(topology: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["offsets", "-c", topology.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = FERRY.command(&all).output().expect("ferry runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Writes `junk` records without sequence numbers straight into a target
/// partition, as another producer on the target would.
fn write_foreign(target: &KafkaCluster, topic: &str, partition: i32, n: usize) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = target.client_config().create().expect("producer");
    for i in 0..n {
        let value = format!("foreign-{i}");
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .partition(partition)
                    .key("foreign")
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

#[test]
fn mm2_remote_cluster_utils_reads_ferrys_exact_offsets() {
    let topic = unique_name("java-client");
    let remote = format!("src.{topic}");
    remote_cluster_utils_agrees_with_ferry_offsets("src", &topic, &remote, ".", "");
}

/// With `topic_separator = "_"` the checkpoints go to
/// `<source>_checkpoints_internal`, where MM2's client configured with the
/// same `replication.policy.separator` finds them, and they name the renamed
/// target topic.
#[test]
fn mm2_remote_cluster_utils_with_a_custom_separator_reads_renamed_topics() {
    let name = unique_name("java-sep");
    let topic = format!("legacy.{name}");
    let remote = format!("sep_{name}");
    let extra = "topic_separator = \"_\"\nrename = [{ from = \"legacy\\\\.(.*)\", to = \"$1\" }]";
    remote_cluster_utils_agrees_with_ferry_offsets("sep", &topic, &remote, "_", extra);
    let (_, target) = shared_pair().expect("test brokers start");
    let topics = ferry_testkit::inspect::topic_partition_counts(&target.client_config())
        .unwrap_or_else(|e| panic!("listing topics: {e}"));
    assert!(
        topics.contains_key("sep_checkpoints_internal"),
        "{topics:?}"
    );
}

/// Copies `topic` to `remote` (a target topic already holding 50 other
/// records per partition, so the translation is not the identity) with a
/// flow from the source cluster named `alias` shaped by `extra`, then asks
/// `RemoteClusterUtils` (configured with `separator`) and `ferry offsets`
/// for the group's translated offsets.
fn remote_cluster_utils_agrees_with_ferry_offsets(
    alias: &str,
    topic: &str,
    remote: &str,
    separator: &str,
    extra: &str,
) {
    let (source, target) = shared_pair().expect("test brokers start");
    let group = unique_name("java-group");
    data::create_topic(&source.client_config(), topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), topic, &SequenceSpec::new(2, 300)).expect("produce");
    data::create_topic(&target.client_config(), remote, 2, 1, &[]).expect("create remote");
    write_foreign(target, remote, 0, 50);
    write_foreign(target, remote, 1, 50);
    let (_, committed) = consume_and_commit(source, &group, topic, &[(0, 100), (1, 200)]);

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &flow(
            topic,
            &[&group],
            &format!("sync_group_offsets = false\n{extra}"),
        ),
    );
    rename_clusters(&topology, &[("src", alias)]);
    // A bounded run writes its last checkpoints at the drain.
    FERRY.run_until_caught_up(&topology);

    let from_java = remote_cluster_utils_translate(target, alias, separator, &group);
    let expected: BTreeMap<(String, i32), i64> = committed
        .iter()
        .map(|(p, o)| ((remote.to_string(), *p), o + 50))
        .collect();
    assert_eq!(from_java, expected, "RemoteClusterUtils.translateOffsets");
    // The same numbers in the topic.
    let checkpoints = last_checkpoints(target, (alias, separator), &group, remote);
    assert_eq!(
        checkpoints,
        BTreeMap::from([(0, (100, 150)), (1, (200, 250))])
    );
    let (code, stdout, stderr) = ferry_offsets(
        &topology,
        &["--flow", &format!("{alias}->dst"), "--group", &group],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.len() > 2 && cells[0] == group && cells[1] == topic && cells[2] == "1"
        })
        .unwrap_or_else(|| panic!("no line for partition 1:\n{stdout}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // GROUP TOPIC PARTITION SOURCE TARGET-TOPIC TRANSLATED PRECISION CHECKPOINT TARGET-GROUP
    assert_eq!(
        &cells[2..],
        ["1", "200", remote, "250", "exact", "250", "-"],
        "{stdout}"
    );
}

#[test]
fn ferry_offsets_refuses_an_unknown_flow() {
    let (source, target) = shared_pair().expect("test brokers start");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(dir.path(), source, target, &one_flow("topics = [\"x\"]"));
    let (code, _, stderr) = ferry_offsets(&topology, &["--flow", "dst->src"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no flow dst->src"), "{stderr}");
    let (code, _, stderr) = ferry_offsets(&topology, &["--flow", "nonsense"]);
    assert_eq!(code, Some(2), "{stderr}");
}

/// The target offset of the first Ferry copy of source sequence `seq` or
/// later in `partition` (foreign records skipped): where a failed-over
/// consumer must resume to miss nothing and re-read nothing.
fn true_position(target: &[Record], partition: i32, seq: u64) -> i64 {
    target
        .iter()
        .filter(|r| r.partition == partition)
        .find(|r| r.sequence().is_some_and(|s| s.seq >= seq))
        .map(|r| r.offset)
        .unwrap_or_else(|| target.iter().filter(|r| r.partition == partition).count() as i64)
}

#[test]
fn foreign_writes_into_the_target_keep_translation_safe_and_exact() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("foreign");
    let remote = format!("src.{topic}");
    let group = unique_name("foreign-group");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    data::create_topic(&target.client_config(), &remote, 2, 1, &[]).expect("create remote");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(dir.path(), source, target, &flow(&topic, &[&group], ""));
    let daemon = FERRY.start(&topology);
    // Another producer writes into the target topic while Ferry copies
    // batches from the source: Ferry's copies are interleaved with others.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let foreign = {
        let (stop, config, remote) = (stop.clone(), target.client_config(), remote.clone());
        std::thread::spawn(move || {
            use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
            let producer: BaseProducer = config.create().expect("producer");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let value = format!("foreign-{n}");
                let _ = producer.send(
                    BaseRecord::<str, str>::to(&remote)
                        .partition((n % 2) as i32)
                        .key("foreign")
                        .payload(&value),
                );
                producer.poll(Duration::ZERO);
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            producer.flush(Duration::from_secs(30)).expect("flush");
            n
        })
    };
    for batch in 0..20u64 {
        let mut spec = SequenceSpec::new(2, 25);
        spec.first_seq = batch * 25;
        produce_sequence(&source.client_config(), &topic, &spec).expect("produce");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("every record copied", Duration::from_secs(60), || {
        let copied = all_sequences(target, &remote).len();
        (copied == 1000).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let foreign_written = foreign.join().unwrap();

    let (consumed, committed) = consume_and_commit(source, &group, &topic, &[(0, 77), (1, 333)]);
    let synced = wait_for(
        "group offsets on the target",
        Duration::from_secs(60),
        || {
            let offsets = group_offsets(target, &group, &remote);
            (offsets.len() == 2).then_some(offsets)
        },
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    let on_target: Vec<Record> = data::read_topic(&target.client_config(), &remote)
        .expect("read")
        .into_iter()
        .flatten()
        .collect();
    for (p, upstream) in &committed {
        // Fresh source topic without transactions: offset = sequence number.
        let truth = true_position(&on_target, *p, *upstream as u64);
        let translated = synced[p];
        assert!(
            translated <= truth,
            "partition {p}: translated {translated} is ahead of the true position {truth}"
        );
        let reread = on_target
            .iter()
            .filter(|r| r.partition == *p && r.offset >= translated && r.offset < truth)
            .filter(|r| r.sequence().is_some())
            .count();
        eprintln!(
            "partition {p}: source {upstream} -> target {translated}, true position {truth}, \
             re-read {reread} records ({foreign_written} foreign records interleaved in the topic)"
        );
        assert_eq!(
            reread, 0,
            "Ferry saw every write: exact despite the foreign records"
        );
    }
    let read: BTreeSet<SequenceId> = sequences(&consumed).into_iter().collect();
    let expected: BTreeSet<SequenceId> = all_sequences(source, &topic)
        .into_iter()
        .filter(|s| !read.contains(s))
        .collect();
    let got: Vec<SequenceId> = consume_from_committed(target, &group, &remote, &[0, 1])
        .iter()
        .filter_map(Record::sequence)
        .collect();
    assert_exactly("failed-over consumer", &got, &expected);
}

#[test]
fn restarts_keep_checkpoints_monotonic_and_translate_after_the_rebuild() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("restart");
    let remote = format!("src.{topic}");
    let group = unique_name("restart-group");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 200)).expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(dir.path(), source, target, &flow(&topic, &[&group], ""));
    let (group_ref, remote_ref) = (&group, &remote);
    // The newest checkpoint of every partition names `offsets` upstream;
    // `exact`: and the same offset downstream. A checkpoint taken while the
    // copy is still behind the group is conservative (downstream behind), so
    // a run on contiguous data is waited for until its translation is exact.
    let checkpoints_at = |offsets: &BTreeMap<i32, i64>, exact: bool| {
        let want: BTreeMap<i32, i64> = offsets.clone();
        let (group, remote) = (group_ref, remote_ref);
        move || {
            let last = last_checkpoints(target, ("src", "."), group, remote);
            let upstream: BTreeMap<i32, i64> = last.iter().map(|(p, (u, _))| (*p, *u)).collect();
            let settled = !exact || last.values().all(|(u, d)| u == d);
            (upstream == want && settled).then_some(())
        }
    };
    let mut consumed = Vec::new();
    let debug = [("RUST_LOG", "info,ferry_supervisor::checkpoints=debug")];

    // Run 1, stopped gracefully.
    let (read, committed) = consume_and_commit(source, &group, &topic, &[(0, 50), (1, 60)]);
    consumed.extend(read);
    let daemon = FERRY.start_with_env(&topology, &debug);
    wait_for(
        "run 1 checkpoints",
        Duration::from_secs(60),
        checkpoints_at(&committed, true),
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // Run 2 resumes with more data and a group that moved on, then crashes.
    let mut more = SequenceSpec::new(2, 100);
    more.first_seq = 200;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce");
    let (read, committed) = consume_and_commit(source, &group, &topic, &[(0, 50), (1, 50)]);
    consumed.extend(read);
    let daemon = FERRY.start_with_env(&topology, &debug);
    wait_for(
        "run 2 checkpoints",
        Duration::from_secs(60),
        checkpoints_at(&committed, true),
    );
    let log2 = daemon.log();
    let (code, _) = stop_daemon_with(daemon, libc::SIGKILL);
    assert_eq!(code, None);
    // Translation only after the rebuild: the first completed cycle of run 2
    // comes after the rebuild finished.
    let rebuilt = log2
        .find("translation enabled")
        .unwrap_or_else(|| panic!("no rebuild line in:\n{log2}"));
    let first_cycle = log2
        .find("checkpoint cycle done")
        .unwrap_or_else(|| panic!("no cycle line in:\n{log2}"));
    assert!(
        rebuilt < first_cycle,
        "a cycle ran before the rebuild:\n{log2}"
    );

    // Run 3 after the crash. Offset syncs after the last flush (each cycle)
    // died with run 2, and records acknowledged but not yet in saved progress
    // are copied again: translations there may be conservative, never ahead.
    let (read, committed) = consume_and_commit(source, &group, &topic, &[(0, 100), (1, 100)]);
    consumed.extend(read);
    let daemon = FERRY.start_with_env(&topology, &debug);
    wait_for(
        "run 3 checkpoints",
        Duration::from_secs(60),
        checkpoints_at(&committed, false),
    );
    let synced = wait_for("synced offsets", Duration::from_secs(30), || {
        let o = group_offsets(target, &group, &remote);
        let last = last_checkpoints(target, ("src", "."), &group, &remote);
        (o.len() == 2 && o.iter().all(|(p, d)| last.get(p).map(|c| c.1) == Some(*d))).then_some(o)
    });
    // Fail over only once everything is copied (duplicates from the crash
    // may make the target hold more than the source).
    wait_for(
        "run 3 to copy every record",
        Duration::from_secs(60),
        || (try_total(target, &remote).ok()? >= try_total(source, &topic).ok()?).then_some(()),
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // Monotonic per partition, in topic order, across the three runs; never
    // ahead before the crash (runs 1 and 2 were waited for until exact).
    let history = read_checkpoints(target, "src", ".");
    for p in [0, 1] {
        let series: Vec<(i64, i64)> = history
            .iter()
            .filter(|c| c.group == group && c.topic == remote && c.partition == p)
            .map(|c| (c.upstream_offset, c.downstream_offset))
            .collect();
        assert!(series.len() >= 3, "partition {p}: {series:?}");
        assert!(
            series
                .windows(2)
                .all(|w| w[0].1 <= w[1].1 && w[0].0 <= w[1].0),
            "partition {p} went backwards: {series:?}"
        );
        let before_crash: Vec<_> = series.iter().filter(|(u, _)| *u < committed[&p]).collect();
        assert!(
            before_crash.iter().all(|(u, d)| d <= u),
            "partition {p}: ahead before the crash: {series:?}"
        );
        eprintln!(
            "partition {p}: checkpoints {series:?}, synced {}",
            synced[&p]
        );
    }
    // The group fails over: nothing missing. Duplicates only where the crash
    // made Ferry copy records twice or the translation conservative.
    let read: BTreeSet<SequenceId> = sequences(&consumed).into_iter().collect();
    let expected: BTreeSet<SequenceId> = all_sequences(source, &topic)
        .into_iter()
        .filter(|s| !read.contains(s))
        .collect();
    let got = sequences(&consume_from_committed(target, &group, &remote, &[0, 1]));
    let seen: BTreeSet<SequenceId> = got.iter().copied().collect();
    let missing: Vec<_> = expected.difference(&seen).collect();
    if !missing.is_empty() {
        let on_target = data::read_topic(&target.client_config(), &remote).expect("read");
        let layout: Vec<String> = on_target
            .iter()
            .map(|records| {
                let seqs: Vec<String> = records
                    .iter()
                    .filter(|r| r.offset >= 190)
                    .map(|r| format!("{}:{}", r.offset, r.sequence().map_or(-1, |s| s.seq as i64)))
                    .collect();
                format!("{} records, from 190: {}", records.len(), seqs.join(" "))
            })
            .collect();
        panic!(
            "missed {} after the crash (read {}): {:?}...\ntarget: {layout:#?}\nrun 3 log:\n{log}",
            missing.len(),
            got.len(),
            &missing[..missing.len().min(5)]
        );
    }
    eprintln!(
        "after a SIGKILL: {} records read again by the failed-over consumer",
        got.len() - expected.len()
    );
}

#[test]
fn active_target_groups_are_never_overwritten_and_no_group_moves_backwards() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("groupsync");
    let remote = format!("src.{topic}");
    let (active, ahead, fresh) = (
        unique_name("active-group"),
        unique_name("ahead-group"),
        unique_name("fresh-group"),
    );
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    data::create_topic(&target.client_config(), &remote, 1, 1, &[]).expect("create remote");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(1, 500)).expect("produce");
    for g in [&active, &ahead, &fresh] {
        commit_group_offsets(source, g, &[(&topic, 0, 300)]);
    }
    // On the target: one group is further along already, one is consuming.
    commit_group_offsets(target, &ahead, &[(&remote, 0, 400)]);
    let member = ActiveMember::join(target, &active, &remote);

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &flow(&topic, &[&active, &ahead, &fresh], ""),
    );
    let daemon = FERRY.start(&topology);
    wait_for("the fresh group synced", Duration::from_secs(60), || {
        (group_offsets(target, &fresh, &remote).get(&0) == Some(&300)).then_some(())
    });
    let skipped = |daemon: &Daemon| {
        let (_, metrics) = daemon.get("/metrics");
        let n = metric(
            &metrics,
            "ferry_group_offsets_synced_total{flow=\"src->dst\",result=\"skipped\"}",
        )
        .unwrap_or(0.0);
        (n, metrics)
    };
    // The translation is final now; a cycle that ran mid-copy may have
    // skipped the same groups at a smaller translated offset before.
    let (settled, _) = skipped(&daemon);
    // Two more sync cycles, observed: the fresh group moves on the source
    // twice, and each move reaches the target in a cycle that also looked
    // at the active and the ahead group.
    for offset in [350, 400] {
        commit_group_offsets(source, &fresh, &[(&topic, 0, offset)]);
        wait_for(
            &format!("the fresh group synced at {offset}"),
            Duration::from_secs(60),
            || (group_offsets(target, &fresh, &remote).get(&0) == Some(&offset)).then_some(()),
        );
    }
    assert_eq!(
        group_offsets(target, &active, &remote),
        BTreeMap::new(),
        "active group untouched"
    );
    assert_eq!(
        group_offsets(target, &ahead, &remote),
        BTreeMap::from([(0, 400)]),
        "never backwards"
    );
    // One skip each for the active and the ahead group per translated
    // offset, counted once, not every cycle.
    let (after, metrics) = skipped(&daemon);
    assert!(settled >= 2.0, "both groups skipped: {metrics}");
    assert_eq!(after, settled, "no skip counted again: {metrics}");

    // Once the member leaves, the group is idle and gets its offsets.
    drop(member);
    wait_for(
        "the formerly active group synced",
        Duration::from_secs(60),
        || (group_offsets(target, &active, &remote).get(&0) == Some(&300)).then_some(()),
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        group_offsets(target, &ahead, &remote),
        BTreeMap::from([(0, 400)])
    );
}

#[test]
fn aborted_transactions_translate_exactly_and_a_failed_over_consumer_misses_nothing() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("txn-offsets");
    let remote = format!("src.{topic}");
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
    let producer: BaseProducer = source
        .client_config()
        .set("transactional.id", unique_name("txn-producer"))
        .create()
        .expect("transactional producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    let mut committed_values = Vec::new();
    for txn in 0..12u32 {
        producer.begin_transaction().expect("begin");
        for i in 0..20u32 {
            let value = format!("txn{txn}-{i}");
            producer
                .send(
                    BaseRecord::<str, str>::to(&topic)
                        .partition(0)
                        .key("k")
                        .payload(&value),
                )
                .expect("send");
            if txn % 3 != 1 {
                committed_values.push(value);
            }
        }
        producer.flush(timeout).expect("flush");
        if txn % 3 == 1 {
            producer.abort_transaction(timeout).expect("abort");
        } else {
            producer.commit_transaction(timeout).expect("commit");
        }
    }
    // Groups stopping at every interesting place: mid-transaction, at the
    // last record before a commit marker, just before an aborted
    // transaction, right after one, at the very end.
    let stops = [1usize, 19, 20, 21, 40, 41, 79, 80, 100, 160];
    let groups: Vec<(String, usize)> = stops
        .iter()
        .map(|n| (unique_name(&format!("txn-group-{n}")), *n))
        .collect();
    let mut consumed = BTreeMap::new();
    for (g, n) in &groups {
        let (read, _) = consume_and_commit(source, g, &topic, &[(0, *n)]);
        consumed.insert(g.clone(), read);
    }
    let names: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(dir.path(), source, target, &flow(&topic, &names, ""));
    FERRY.run_until_caught_up(&topology);

    let on_target =
        data::read_partition(&target.client_config(), &remote, 0, 0, None).expect("read");
    let value = |r: &Record| String::from_utf8(r.value.clone().unwrap()).unwrap();
    assert_eq!(
        on_target.iter().map(value).collect::<Vec<_>>(),
        committed_values
    );
    for (g, n) in &groups {
        // The right resume point: the copy of the first committed record
        // after the n-th.
        let truth = on_target
            .get(*n)
            .map_or(on_target.len() as i64, |r| r.offset);
        let synced = group_offsets(target, g, &remote);
        assert_eq!(
            synced.get(&0),
            Some(&truth),
            "group stopping after {n} records"
        );
        let got: Vec<String> = consume_from_committed(target, g, &remote, &[0])
            .iter()
            .map(value)
            .collect();
        let read: Vec<String> = consumed[g].iter().map(value).collect();
        assert_eq!(read, committed_values[..*n]);
        assert_eq!(
            got,
            committed_values[*n..],
            "group stopping after {n} records"
        );
    }
}

/// MirrorMaker 2 (dedicated mode, from the same jars as the brokers)
/// mirroring `topic` from `source` (cluster alias `alias`, unique per test:
/// MM2's Connect topics and group are named after it) to `target`,
/// checkpoints for `group` every second. Killed when dropped.
struct MirrorMaker2 {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl MirrorMaker2 {
    fn start(
        dir: &std::path::Path,
        source: &KafkaCluster,
        target: &KafkaCluster,
        alias: &str,
        topic: &str,
        group: &str,
        (target_alias, separator): (&str, &str),
    ) -> Self {
        let properties = dir.join("mm2.properties");
        let dst = target_alias;
        std::fs::write(
            &properties,
            format!(
                r#"clusters = {alias}, {dst}
{alias}.bootstrap.servers = {source}
{dst}.bootstrap.servers = {target}
{alias}->{dst}.enabled = true
{alias}->{dst}.topics = {topic}
{alias}->{dst}.groups = {group}
{dst}->{alias}.enabled = false
{dst}->{alias}.emit.heartbeats.enabled = false
tasks.max = 1
replication.factor = 1
offset-syncs.topic.replication.factor = 1
checkpoints.topic.replication.factor = 1
heartbeats.topic.replication.factor = 1
offset.storage.replication.factor = 1
config.storage.replication.factor = 1
status.storage.replication.factor = 1
refresh.topics.interval.seconds = 1
refresh.groups.interval.seconds = 1
emit.checkpoints.interval.seconds = 1
sync.group.offsets.enabled = false
sync.topic.acls.enabled = false
offset.flush.interval.ms = 1000
replication.policy.separator = {separator}
"#,
                source = source.bootstrap_servers(),
                target = target.bootstrap_servers(),
            ),
        )
        .unwrap();
        let log = dir.join("mm2.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = ferry_testkit::kafka::KafkaHome::locate()
            .expect("Kafka jars installed")
            .java(&["-Xmx512m"], "org.apache.kafka.connect.mirror.MirrorMaker");
        cmd.arg(&properties)
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = ferry_testkit::proc::spawn_tied(cmd).expect("start MirrorMaker 2");
        MirrorMaker2 { child, log }
    }
}

impl MirrorMaker2 {
    /// SIGTERM: Connect commits the source positions on the way out.
    fn stop(mut self) {
        signal(&self.child, libc::SIGTERM);
        let status = self.child.wait().expect("MirrorMaker 2 exits");
        eprintln!("MirrorMaker 2 stopped: {status}");
    }
}

impl Drop for MirrorMaker2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- MirrorMaker 2 log (tail) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// The same source, the same group, Ferry and MirrorMaker 2 side by side:
/// how many already-consumed records each one's translated offsets make a
/// failed-over consumer read again.
#[test]
fn side_by_side_with_mirrormaker2_ferry_rereads_nothing() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("side-by-side");
    let group = unique_name("side-by-side-group");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 1000))
        .expect("produce");
    let (_, committed) = consume_and_commit(source, &group, &topic, &[(0, 137), (1, 777)]);

    let dir = tempfile::tempdir().unwrap();
    let alias = unique_name("mm2side");
    let mm2 = MirrorMaker2::start(
        dir.path(),
        source,
        target,
        &alias,
        &topic,
        &group,
        ("dst", "."),
    );
    let topology = write_topology(dir.path(), source, target, &flow(&topic, &[&group], ""));
    let daemon = FERRY.start(&topology);
    let (ferry_remote, mm2_remote) = (format!("src.{topic}"), format!("{alias}.{topic}"));
    // Checkpoints written while the copy is still behind a committed
    // offset are conservative; compare what each writes once its copy is
    // complete (MirrorMaker 2's wait below is the same), two checkpoint
    // cycles later.
    wait_for(
        "Ferry's copy and checkpoints",
        Duration::from_secs(120),
        || {
            let c = last_checkpoints(target, ("src", "."), &group, &ferry_remote);
            (c.len() == 2 && try_total(target, &ferry_remote).ok()? == 2000).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let ferry_cp = last_checkpoints(target, ("src", "."), &group, &ferry_remote);
    let mm2_cp = wait_for(
        "MirrorMaker 2's checkpoints",
        Duration::from_secs(180),
        || {
            let c = last_checkpoints(target, (&alias, "."), &group, &mm2_remote);
            (c.len() == 2 && try_total(target, &mm2_remote).ok()? == 2000).then_some(c)
        },
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    drop(mm2);

    let mut reread = BTreeMap::new();
    for (name, remote, checkpoints) in [
        ("ferry", &ferry_remote, &ferry_cp),
        ("mm2", &mm2_remote, &mm2_cp),
    ] {
        let copied: Vec<Record> = data::read_topic(&target.client_config(), remote)
            .expect("read")
            .into_iter()
            .flatten()
            .collect();
        let mut total_reread = 0;
        for (p, upstream) in &committed {
            let truth = true_position(&copied, *p, *upstream as u64);
            let (cp_upstream, translated) = checkpoints[p];
            assert_eq!(
                cp_upstream, *upstream,
                "{name}: checkpoint of the committed offset"
            );
            assert!(
                translated <= truth,
                "{name} partition {p}: {translated} ahead of {truth}"
            );
            let n = copied
                .iter()
                .filter(|r| r.partition == *p && r.offset >= translated && r.offset < truth)
                .count();
            eprintln!("{name}: partition {p}: source {upstream} -> {translated} (true position {truth}), re-reads {n}");
            total_reread += n;
        }
        reread.insert(name, total_reread);
    }
    eprintln!(
        "records a failed-over consumer re-reads: Ferry {}, MirrorMaker 2 {}",
        reread["ferry"], reread["mm2"]
    );
    assert_eq!(reread["ferry"], 0);
}

/// A handover: MirrorMaker 2 replicated a topic and checkpointed a group;
/// Ferry takes the flow over (same cluster alias, so the same target topic
/// and checkpoints topic; offset syncs where MM2 keeps them, on the source),
/// copies only what MM2 had not, keeps MM2's checkpoints monotonic and
/// translates exactly from where it took over.
#[test]
fn handover_from_mirrormaker2_copies_nothing_twice() {
    handover_from_mirrormaker2(".");
}

/// The same handover from MirrorMaker 2 with `replication.policy.separator
/// = _`: every name MM2 derives (remote topic, checkpoints and offset-syncs
/// topics) uses the separator, and Ferry with `topic_separator = "_"` finds
/// all of them.
#[test]
fn handover_from_mirrormaker2_with_a_custom_separator_copies_nothing_twice() {
    handover_from_mirrormaker2("_");
}

fn handover_from_mirrormaker2(separator: &str) {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("handover");
    let group = unique_name("handover-group");
    let alias = unique_name("mm2hand");
    // MM2 keeps its offset syncs on the source in
    // `mm2-offset-syncs<sep><target alias><sep>internal`. Kafka refuses a
    // name that differs from an existing one only in `.` versus `_`, and
    // other tests' flows into `dst` keep theirs on this source too.
    let target_alias = unique_name("back");
    let remote = format!("{alias}{separator}{topic}");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 1000))
        .expect("produce");
    let (mut consumed, _) = consume_and_commit(source, &group, &topic, &[(0, 137), (1, 777)]);

    let dir = tempfile::tempdir().unwrap();
    let mm2 = MirrorMaker2::start(
        dir.path(),
        source,
        target,
        &alias,
        &topic,
        &group,
        (&target_alias, separator),
    );
    let mm2_checkpoints = wait_for(
        "MirrorMaker 2's copy and checkpoints",
        Duration::from_secs(180),
        || {
            let c = last_checkpoints(target, (&alias, separator), &group, &remote);
            (c.len() == 2 && try_total(target, &remote).ok()? == 2000).then_some(c)
        },
    );
    // Let a connector offset flush happen, then stop MM2 cleanly.
    std::thread::sleep(Duration::from_secs(3));
    mm2.stop();

    // Traffic goes on while nobody replicates.
    let mut more = SequenceSpec::new(2, 500);
    more.first_seq = 1000;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");

    // Ferry with MM2's cluster alias.
    let topology = dir.path().join("handover.toml");
    std::fs::write(
        &topology,
        format!(
            r#"[clusters.{alias}]
bootstrap_servers = "{}"
[clusters.{target_alias}]
bootstrap_servers = "{}"

[[flows]]
source = "{alias}"
target = "{target_alias}"
topics = ["{topic}"]
groups = ["{group}"]
offset_syncs_location = "source"
topic_separator = "{separator}"
checkpoint_interval = "1s"
refresh_interval = "2s"

[http]
listen = "127.0.0.1:0"
"#,
            source.bootstrap_servers(),
            target.bootstrap_servers()
        ),
    )
    .unwrap();
    ferry_testkit::topology::give_own_group(&topology);
    let log = FERRY.run_until_caught_up(&topology);
    assert!(log.contains("taking over from MirrorMaker 2"), "{log}");
    // Every source record exactly once in the target topic: MM2's copies,
    // then Ferry's, nothing copied twice.
    assert_same(source, &topic, target, &remote, 3000);

    // MM2's checkpoints were the starting point: Ferry never went below.
    let ferry_checkpoints = last_checkpoints(target, (&alias, separator), &group, &remote);
    for (p, (_, mm2_down)) in &mm2_checkpoints {
        assert!(
            ferry_checkpoints[p].1 >= *mm2_down,
            "partition {p}: {ferry_checkpoints:?} vs {mm2_checkpoints:?}"
        );
    }
    // The group moves into what Ferry copied: exact from there.
    let (read, committed) = consume_and_commit(source, &group, &topic, &[(0, 1100), (1, 400)]);
    consumed.extend(read);
    FERRY.run_until_caught_up(&topology);
    let copied: Vec<Record> = data::read_topic(&target.client_config(), &remote)
        .expect("read")
        .into_iter()
        .flatten()
        .collect();
    let after = last_checkpoints(target, (&alias, separator), &group, &remote);
    for (p, upstream) in &committed {
        let truth = true_position(&copied, *p, *upstream as u64);
        assert_eq!(
            after[p],
            (*upstream, truth),
            "partition {p}: exact after the handover"
        );
    }
    let history = read_checkpoints(target, &alias, separator);
    for p in [0, 1] {
        let series: Vec<i64> = history
            .iter()
            .filter(|c| c.group == group && c.topic == remote && c.partition == p)
            .map(|c| c.downstream_offset)
            .collect();
        // Monotonic means something only from two checkpoints on.
        assert!(series.len() >= 2, "partition {p}: {series:?}");
        assert!(
            series.windows(2).all(|w| w[0] <= w[1]),
            "partition {p}: {series:?}"
        );
    }
}

/// A handover from MirrorMaker 2 hosted in Kafka Connect (as Strimzi or MSK
/// Connect run it): its positions are in the Connect worker's offsets topic
/// under the connector's name. Named in `mm2_offsets`, Ferry continues from
/// them: every source record exactly once on the target, including those
/// produced after MM2 stopped, and `ferry plan` says where it takes over.
#[test]
fn handover_from_mirrormaker2_in_kafka_connect_copies_nothing_twice() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("connect-handover");
    let alias = unique_name("mm2conn");
    let connector = unique_name("mm2-source");
    let remote = format!("{alias}.{topic}");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 1000))
        .expect("produce");

    // Connect's own cluster is the target: a source connector writes there.
    let mut worker = ferry_testkit::ConnectWorker::start(target, &unique_name("connect"))
        .expect("a Kafka Connect worker starts");
    let byte_array = "org.apache.kafka.connect.converters.ByteArrayConverter";
    worker
        .put_connector(
            &connector,
            &[
                (
                    "connector.class",
                    "org.apache.kafka.connect.mirror.MirrorSourceConnector",
                ),
                ("source.cluster.alias", &alias),
                ("target.cluster.alias", "dst"),
                (
                    "source.cluster.bootstrap.servers",
                    source.bootstrap_servers(),
                ),
                (
                    "target.cluster.bootstrap.servers",
                    target.bootstrap_servers(),
                ),
                ("topics", &topic),
                ("tasks.max", "1"),
                ("key.converter", byte_array),
                ("value.converter", byte_array),
                ("header.converter", byte_array),
                ("replication.factor", "1"),
                ("offset-syncs.topic.replication.factor", "1"),
                ("sync.topic.acls.enabled", "false"),
                ("refresh.topics.interval.seconds", "1"),
            ],
        )
        .expect("Connect accepts the MirrorSourceConnector");
    worker
        .wait_running(&connector, Duration::from_secs(120))
        .expect("the MirrorSourceConnector runs");
    wait_for(
        "MirrorMaker 2 in Connect to copy 2000 records",
        Duration::from_secs(180),
        || (try_total(target, &remote).ok()? == 2000).then_some(()),
    );
    // Let an offset flush happen; stopping the worker commits the rest.
    std::thread::sleep(Duration::from_secs(3));
    let offsets_topic = worker.offsets_topic().to_string();
    let status = worker.stop().expect("the Connect worker stops");
    eprintln!("Connect worker stopped: {status}");

    // Traffic goes on while nobody replicates.
    let mut more = SequenceSpec::new(2, 500);
    more.first_seq = 1000;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");

    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("connect-handover.toml");
    std::fs::write(
        &topology,
        format!(
            r#"[clusters.{alias}]
bootstrap_servers = "{}"
[clusters.dst]
bootstrap_servers = "{}"

[[flows]]
source = "{alias}"
target = "dst"
topics = ["{topic}"]
refresh_interval = "2s"
mm2_offsets = {{ cluster = "dst", topic = "{offsets_topic}", connector = "{connector}" }}

[http]
listen = "127.0.0.1:0"
"#,
            source.bootstrap_servers(),
            target.bootstrap_servers()
        ),
    )
    .unwrap();
    ferry_testkit::topology::give_own_group(&topology);

    let (code, plan, stderr) = FERRY.output(&["plan", "-c", topology.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{plan}{stderr}");
    let expected = format!(
        "taking over from MirrorMaker 2: 2 partitions start where it stopped, per {offsets_topic} \
         on dst (connector {connector})"
    );
    assert!(plan.contains(&expected), "{plan}");
    assert_eq!(
        plan.matches("where MirrorMaker 2 stopped").count(),
        2,
        "{plan}"
    );

    let log = FERRY.run_until_caught_up(&topology);
    assert!(log.contains("taking over from MirrorMaker 2"), "{log}");
    // MM2's copies, then Ferry's: every source record exactly once.
    assert_same(source, &topic, target, &remote, 3000);
}
