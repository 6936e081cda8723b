//! `ferry failback` end to end against real Apache Kafka: the whole
//! disaster story (replicate primary -> backup, lose primary, fail
//! consumers and producers over to backup, write there, bring primary
//! back, fail back) and the refusals (primary unreachable, producers still
//! writing on either side, records primary holds that never reached
//! backup, offsets without an exact translation).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_testkit::check::{all_sequences, assert_exactly, sequences, total, try_total};
use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{
    self, produce_sequence, unique_name, Producers, SequenceId, SequenceSpec,
};
use ferry_testkit::groups::{
    commit_group_offsets, consume_and_commit, consume_from_committed, group_offsets,
};
use ferry_testkit::topology::{one_flow, rename_clusters, write_topology};
use ferry_testkit::{shared, shared_pair, KafkaCluster, KafkaOptions};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));
/// Producers still at work: 3 records a partition every 200 ms.
const BUSY: (u64, Duration) = (3, Duration::from_millis(200));

/// A `primary -> backup` flow under identity naming (the migration and
/// disaster-recovery style failback needs).
fn topology(
    dir: &Path,
    primary: &KafkaCluster,
    backup: &KafkaCluster,
    topic: &str,
    group: &str,
) -> PathBuf {
    let path = write_topology(
        dir,
        primary,
        backup,
        &one_flow(&format!(
            "topics = [\"{topic}\"]\ngroups = [\"{group}\"]\ntopic_naming = \"identity\"\n\
             checkpoint_interval = \"1s\"\nsync_group_offsets = true"
        )),
    );
    rename_clusters(&path, &[("src", "primary"), ("dst", "backup")]);
    path
}

fn failback(topology: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec![
        "failback",
        "-c",
        topology.to_str().unwrap(),
        "--flow",
        "primary->backup",
    ];
    args.extend_from_slice(extra);
    FERRY.output(&args)
}

fn produce(cluster: &KafkaCluster, topic: &str, partitions: i32, first: u64, n: u64) {
    let mut spec = SequenceSpec::new(partitions, n);
    spec.first_seq = first;
    produce_sequence(&cluster.client_config(), topic, &spec).expect("produce");
}

/// `n` records on partition 0 that say they came from `primary`.
fn produce_copies(cluster: &KafkaCluster, topic: &str, n: u64) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = cluster.client_config().create().expect("producer");
    for i in 0..n {
        let value = format!("copied before syncs existed {i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "ferry.provenance",
            value: Some("primary"),
        });
        producer
            .send(
                BaseRecord::<(), str>::to(topic)
                    .partition(0)
                    .payload(&value)
                    .headers(headers),
            )
            .expect("queue");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

#[test]
fn failback_after_a_disaster_loses_nothing_and_copies_nothing_twice() {
    let primary = KafkaOptions::new().start().expect("a primary of its own");
    let backup = shared().expect("backup cluster");
    let topic = unique_name("failback");
    let group = unique_name("failback-group");
    data::create_topic(&primary.client_config(), &topic, 3, 1, &[]).expect("create");
    produce(&primary, &topic, 3, 0, 200);
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), &primary, backup, &topic, &group);

    // 1. primary -> backup, with the group at work on primary.
    let (mut consumed, committed) =
        consume_and_commit(&primary, &group, &topic, &[(0, 40), (1, 120), (2, 200)]);
    let daemon = FERRY.start(&topology);
    wait_for(
        "every record and the group's offsets on backup",
        Duration::from_secs(90),
        || {
            (try_total(backup, &topic).ok()? == 600
                && group_offsets(backup, &group, &topic) == committed)
                .then_some(())
        },
    );
    // Consumers stopped; their offsets are translated on backup, exactly.
    let config = topology.to_str().unwrap();
    let (code, table, stderr) = FERRY.output(&[
        "offsets",
        "-c",
        config,
        "--flow",
        "primary->backup",
        "--group",
        &group,
    ]);
    assert_eq!(code, Some(0), "{table}\n{stderr}");
    // Partition 2's group is at the end: "conservative" there is the true
    // position (nothing follows it), as the group offsets above show.
    assert_eq!(table.matches(" exact ").count(), 2, "{table}");

    // 2. primary is lost; consumers and producers fail over to backup.
    primary.kill_broker(1).expect("kill primary");
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let (code, stdout, stderr) = failback(&topology, &["--settle", "1s", "--wait", "30s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("failback refused at step \"preflight\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("cluster primary") && stderr.contains("unreachable"),
        "{stderr}"
    );
    // On backup the group goes on: partition 0 stays inside the copied
    // prefix, partition 1 reads into the records written on backup,
    // partition 2 stays at the boundary.
    let (read, _) = consume_and_commit(backup, &group, &topic, &[(0, 100), (1, 30)]);
    consumed.extend(read);
    // 3. producers write on backup.
    produce(backup, &topic, 3, 200, 100);
    let (read, _) = consume_and_commit(backup, &group, &topic, &[(1, 100)]);
    consumed.extend(read);
    let before_failback = group_offsets(backup, &group, &topic);
    assert_eq!(
        before_failback.values().copied().collect::<Vec<_>>(),
        vec![140, 250, 200]
    );

    // 4. primary is back. Producers still on backup: refused at the lag
    // check, after part of the copy back (run again, it resumes).
    primary.start_broker(1).expect("primary back");
    let busy = Producers::start(backup.client_config(), &topic, 3, 10_000, BUSY);
    let (code, stdout, stderr) = failback(&topology, &["--settle", "3s", "--wait", "15s"]);
    let extra = busy.stop();
    assert!(extra > 0);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"lag\""), "{stderr}");
    assert!(
        stderr.contains("producers still write to the source"),
        "{stderr}"
    );

    // Producers stopped: failback runs through.
    let (code, stdout, stderr) = failback(&topology, &["--settle", "3s", "--wait", "120s"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(stdout.contains("failback [3/4] boundary"), "{stdout}");
    assert!(stdout.contains("[5/6] verify: match"), "{stdout}");
    assert!(stdout.contains(&format!("group {group}")), "{stdout}");
    assert!(
        stdout.contains("failback through flow backup->primary complete")
            && stdout.contains("3. to replicate primary to backup again, run flow primary->backup")
            && !stdout.contains("remove these topics from flow backup->primary"),
        "{stdout}"
    );

    // 5. consumers return to primary: exactly what they had not read.
    let everything: BTreeSet<SequenceId> = all_sequences(backup, &topic).into_iter().collect();
    assert_eq!(everything.len() as u64, 600 + 300 + 3 * extra);
    let on_primary = all_sequences(&primary, &topic);
    assert_exactly("primary after failback", &on_primary, &everything);
    let back = consume_from_committed(&primary, &group, &topic, &[0, 1, 2]);
    let already: BTreeSet<SequenceId> = sequences(&consumed).into_iter().collect();
    let remaining: BTreeSet<SequenceId> = everything.difference(&already).copied().collect();
    assert!(!remaining.is_empty());
    assert_exactly("the group back on primary", &sequences(&back), &remaining);

    // Failing back again needs the reverse flow's topics resumed first.
    let (code, stdout, stderr) = failback(&topology, &["--settle", "1s", "--wait", "10s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused at step \"preflight\"")
            && stderr.contains("recorded as cut over on primary")
            && stderr.contains("ferry resume-topics --flow backup->primary"),
        "{stderr}"
    );

    // The forward flow resumes and copies none of the records copied back.
    let copied = total(backup, &topic);
    FERRY.run_until_caught_up(&topology);
    assert_eq!(total(backup, &topic), copied, "nothing copied twice");
}

#[test]
fn failback_refuses_writers_a_primary_tail_and_inexact_offsets() {
    let (primary, backup) = shared_pair().expect("test brokers start");
    let topic = unique_name("failback-refusals");
    let group = unique_name("failback-refusals-group");
    data::create_topic(&primary.client_config(), &topic, 1, 1, &[]).expect("create");
    // Backup's topic held 5 copies from primary, by a run whose offset
    // syncs are gone, before this flow's copy began.
    data::create_topic(&backup.client_config(), &topic, 1, 1, &[]).expect("create on backup");
    produce_copies(backup, &topic, 5);
    produce(primary, &topic, 1, 0, 50);
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), primary, backup, &topic, &group);
    FERRY.run_until_caught_up(&topology);
    assert_eq!(total(backup, &topic), 55);
    // A group on backup sits among those copies: nothing says which
    // primary offset corresponds.
    commit_group_offsets(backup, &group, &[(&topic, 0, 3)]);

    // Producers still write to primary.
    let busy = Producers::start(primary.client_config(), &topic, 1, 100, BUSY);
    let (code, stdout, stderr) = failback(&topology, &["--settle", "3s", "--wait", "30s"]);
    busy.stop();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"writers\""), "{stderr}");
    assert!(
        stderr.contains("producers still write to primary")
            && stderr.contains(&format!("{topic}[0]")),
        "{stderr}"
    );
    assert!(!stdout.contains("[3/4]"), "{stdout}");

    // What they wrote never reached backup.
    let (code, stdout, stderr) = failback(&topology, &["--settle", "1s", "--wait", "30s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refused at step \"boundary\""), "{stderr}");
    assert!(
        stderr.contains("never reached backup")
            && stderr.contains(&format!("{topic}[0] offsets 50.."))
            && stderr.contains("--accept-primary-tail"),
        "{stderr}"
    );

    // Accepted, failback goes on and refuses the group's offset.
    let (code, stdout, stderr) = failback(
        &topology,
        &["--settle", "1s", "--wait", "30s", "--accept-primary-tail"],
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("accepted: primary holds records"),
        "{stdout}"
    );
    assert!(
        stderr.contains("refused at step \"group offsets\"")
            && stderr.contains("cannot be translated exactly")
            && stderr.contains(&format!("group {group} {topic}[0] at offset 3")),
        "{stderr}"
    );
    assert!(!stdout.contains("[5/6]"), "{stdout}");
    // Nothing was written to primary's group.
    assert!(group_offsets(primary, &group, &topic).is_empty());
}

/// With `--accept-primary-tail` the records primary got after the last copy
/// stay before the records copied back: a group still inside the prefix
/// reads them, a group past the boundary does not.
#[test]
fn an_accepted_primary_tail_stays_before_the_records_copied_back() {
    let (primary, backup) = shared_pair().expect("test brokers start");
    let topic = unique_name("failback-tail");
    let groups = unique_name("failback-tail-group");
    let (inside, past) = (format!("{groups}-in"), format!("{groups}-past"));
    data::create_topic(&primary.client_config(), &topic, 1, 1, &[]).expect("create");
    produce(primary, &topic, 1, 0, 30);
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), primary, backup, &topic, &format!("{groups}-.*"));
    FERRY.run_until_caught_up(&topology);
    assert_eq!(total(backup, &topic), 30);
    // The outage: 5 records reach primary but not backup, 10 are written
    // on backup; one group stopped inside the prefix, one past it.
    produce(primary, &topic, 1, 30, 5);
    produce(backup, &topic, 1, 100, 10);
    commit_group_offsets(backup, &inside, &[(&topic, 0, 10)]);
    commit_group_offsets(backup, &past, &[(&topic, 0, 35)]);

    let (code, stdout, stderr) = failback(
        &topology,
        &["--settle", "1s", "--wait", "60s", "--accept-primary-tail"],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "accepted: primary holds records that never reached backup (written before the outage, after the last copy): {topic}[0] offsets 30..34 (5 record(s))"
        )),
        "{stdout}"
    );
    // primary: 30 of its own, its 5 tail records, then the 10 copied back.
    let on_primary = all_sequences(primary, &topic);
    assert_eq!(on_primary.len(), 45);
    assert_eq!(on_primary.iter().collect::<BTreeSet<_>>().len(), 45);
    assert_eq!(
        on_primary[35..].iter().map(|s| s.seq).collect::<Vec<_>>(),
        (100..110).collect::<Vec<_>>()
    );
    assert_eq!(group_offsets(primary, &inside, &topic).get(&0), Some(&10));
    // Backup offset 35 is the 6th record written there: primary's 41st.
    assert_eq!(group_offsets(primary, &past, &topic).get(&0), Some(&40));
}

/// Records backup held of its own before the copy began sit inside the
/// prefix: failback would never copy them back, so it refuses.
#[test]
fn failback_refuses_backup_records_inside_the_copied_prefix() {
    let (primary, backup) = shared_pair().expect("test brokers start");
    let topic = unique_name("failback-inside");
    let group = unique_name("failback-inside-group");
    data::create_topic(&primary.client_config(), &topic, 1, 1, &[]).expect("create");
    data::create_topic(&backup.client_config(), &topic, 1, 1, &[]).expect("create on backup");
    produce(backup, &topic, 1, 1_000, 2);
    produce(primary, &topic, 1, 0, 20);
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), primary, backup, &topic, &group);
    FERRY.run_until_caught_up(&topology);
    assert_eq!(total(backup, &topic), 22);
    let (code, stdout, stderr) = failback(&topology, &["--settle", "1s", "--wait", "30s"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("refused at step \"boundary\"")
            && stderr.contains(&format!(
                "{topic}[0] on backup: offset 0 holds a record written on backup among the records copied from primary"
            )),
        "{stderr}"
    );
    assert!(!stdout.contains("[4/4]"), "{stdout}");
}

#[test]
fn failback_names_bad_input_and_exits_2() {
    let (primary, backup) = shared_pair().expect("test brokers start");
    let dir = tempfile::tempdir().unwrap();
    let path = write_topology(
        dir.path(),
        primary,
        backup,
        &one_flow("topics = [\"failback-prefixed\"]"),
    );
    rename_clusters(&path, &[("src", "primary"), ("dst", "backup")]);
    let (code, _, stderr) = failback(&path, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("flow primary->backup: failback needs topic_naming = \"identity\""),
        "{stderr}"
    );
    let (code, _, stderr) = FERRY.output(&[
        "failback",
        "-c",
        path.to_str().unwrap(),
        "--flow",
        "primary->elsewhere",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("primary->elsewhere"), "{stderr}");
}
