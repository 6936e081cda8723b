//! Topic deletion propagation end to end, against real Apache Kafka: the
//! real `ferry` binary deletes a target topic once its source topic has
//! been gone for `delete_grace`, not before; keeps a target topic another
//! flow writes to; deletes nothing without `propagate_deletes`; and
//! `ferry plan` shows the pending deletion without deleting it.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::DaemonHttp;
use ferry_testkit::check::try_total;
use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));
const GRACE: Duration = Duration::from_secs(8);

/// Admin calls on one cluster.
struct Topics {
    rt: tokio::runtime::Runtime,
    admin: ferry_admin::Admin,
}

impl Topics {
    fn on(cluster: &KafkaCluster) -> Topics {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin =
            rt.block_on(async { ferry_admin::Admin::new(&cluster.client_config()).unwrap() });
        Topics { rt, admin }
    }

    fn names(&self) -> BTreeSet<String> {
        self.rt
            .block_on(self.admin.topic_metadata())
            .expect("list topics")
            .into_keys()
            .collect()
    }

    fn exists(&self, topic: &str) -> bool {
        self.names().contains(topic)
    }

    fn delete(&self, topic: &str) {
        let results = self
            .rt
            .block_on(self.admin.delete_topics(&[topic]))
            .expect("DeleteTopics");
        for r in results {
            r.expect("topic deleted");
        }
        wait_for(
            &format!("{topic} to disappear"),
            Duration::from_secs(30),
            || (!self.exists(topic)).then_some(()),
        );
    }
}

fn create_with_records(cluster: &KafkaCluster, topic: &str, records: u64) {
    data::create_topic(&cluster.client_config(), topic, 1, 1, &[]).expect("create topic");
    produce_sequence(
        &cluster.client_config(),
        topic,
        &SequenceSpec::new(1, records),
    )
    .expect("produce");
}

fn wait_copied(target: &KafkaCluster, topic: &str, records: i64) {
    wait_for(
        &format!("{records} records in {topic}"),
        Duration::from_secs(90),
        || (try_total(target, topic).ok()? == records).then_some(()),
    );
}

fn metric(daemon: &ferry_testkit::daemon::Daemon, series: &str) -> Option<f64> {
    let (code, body) = daemon.get("/metrics");
    assert_eq!(code, 200);
    ferry_testkit::scrape::metric(&body, series)
}

#[test]
fn a_deleted_source_topic_deletes_its_target_topic_after_the_grace_unless_another_flow_writes_it() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("propagate");
    let gone = format!("{prefix}-gone");
    let kept = format!("{prefix}-kept");
    let stays = format!("{prefix}-stays");
    for t in [&gone, &kept, &stays] {
        create_with_records(source, t, 20);
    }
    // A second flow, from another alias of the same brokers, copies its own
    // `src.<prefix>-kept` into the very target topic the first flow names
    // `src.<prefix>-kept` (identity naming).
    let other_source = format!("src.{kept}");
    create_with_records(source, &other_source, 5);
    let dir = tempfile::tempdir().unwrap();
    let deleting = one_flow(&format!(
        "topics = [\"{prefix}-.*\"]\nrefresh_interval = \"1s\"\n\
         propagate_deletes = true\ndelete_grace = \"{}s\"",
        GRACE.as_secs()
    ))
    .replace("refresh_interval = \"2s\"\n", "");
    let flows = format!(
        "{deleting}[[flows]]\nsource = \"src2\"\ntarget = \"dst\"\ntopic_naming = \"identity\"\n\
         topics = [\"src\\\\.{kept}\"]\nrefresh_interval = \"1s\"\n"
    );
    let topology = write_topology(dir.path(), source, target, &flows);
    let text = std::fs::read_to_string(&topology).unwrap().replacen(
        "[clusters.dst]",
        &format!(
            "[clusters.src2]\nbootstrap_servers = \"{}\"\n[clusters.dst]",
            source.bootstrap_servers()
        ),
        1,
    );
    std::fs::write(&topology, text).unwrap();

    let daemon = FERRY.start(&topology);
    let remote = |t: &str| format!("src.{t}");
    wait_copied(target, &remote(&gone), 20);
    wait_copied(target, &remote(&stays), 20);
    // Both flows wrote the shared target topic.
    wait_copied(target, &remote(&kept), 25);
    let on_source = Topics::on(source);
    let on_target = Topics::on(target);

    on_source.delete(&gone);
    on_source.delete(&kept);
    let deleted_at = Instant::now();
    // Not before the grace: the target topic is there well into it, and
    // the flow counts it as pending.
    wait_for(
        "the pending deletion to be counted",
        GRACE - Duration::from_secs(3),
        || {
            (metric(&daemon, "ferry_topic_deletions_pending{flow=\"src->dst\"}")? >= 1.0)
                .then_some(())
        },
    );
    std::thread::sleep(GRACE.saturating_sub(deleted_at.elapsed() + Duration::from_secs(2)));
    assert!(
        on_target.exists(&remote(&gone)),
        "deleted before delete_grace ({:?} after the source topic)",
        deleted_at.elapsed()
    );
    wait_for(
        "the target topic to be deleted",
        Duration::from_secs(60),
        || (!on_target.exists(&remote(&gone))).then_some(()),
    );
    let after = deleted_at.elapsed();
    assert!(after >= GRACE, "deleted after {after:?}, grace {GRACE:?}");
    assert_eq!(
        metric(&daemon, "ferry_topics_deleted_total{flow=\"src->dst\"}"),
        Some(1.0)
    );
    // The shared target topic is kept (the other flow's source exists), so
    // is the target topic of a source topic still there.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        on_target.exists(&remote(&kept)),
        "a topic another flow writes was deleted"
    );
    assert!(on_target.exists(&remote(&stays)));
    assert!(on_source.exists(&other_source));
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let deletion = log
        .lines()
        .find(|l| l.contains("target topic deleted") && l.contains(&remote(&gone)))
        .unwrap_or_else(|| panic!("the deletion is logged:\n{log}"));
    assert!(
        deletion.contains("cluster=dst") && deletion.contains(&format!("source_topic={gone}")),
        "{deletion}"
    );
    assert!(
        log.lines().any(|l| l.contains("target topic is kept")
            && l.contains(&remote(&kept))
            && l.contains("flow src2->dst")),
        "why the shared topic is kept is logged:\n{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("target topic deleted"))
            .count(),
        1,
        "only one topic deleted, once:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("saved progress of the deleted topic forgotten")),
        "{log}"
    );

    // A topic created again under the deleted name, after a restart, is
    // copied from the start into a new target topic: the deleted one's
    // saved progress went with it (otherwise its partition would be held,
    // its progress beyond the new log's end, and nothing copied).
    create_with_records(source, &gone, 7);
    let log = FERRY.run_until_caught_up(&topology);
    assert_eq!(try_total(target, &remote(&gone)).unwrap(), 7);
    assert!(
        !log.contains("the partition is held")
            && !log
                .lines()
                .any(|l| l.contains("ERROR") && l.contains(&remote(&gone))),
        "the topic created again is copied afresh, without a held partition or a lost-target error:\n{log}"
    );
}

#[test]
fn nothing_is_deleted_without_propagate_deletes_and_plan_shows_the_pending_deletion() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("nodelete");
    let remote = format!("src.{topic}");
    create_with_records(source, &topic, 10);
    let dir = tempfile::tempdir().unwrap();
    let flow = one_flow(&format!(
        "topics = [\"{topic}\"]\nrefresh_interval = \"1s\"\n"
    ))
    .replace("refresh_interval = \"2s\"\n", "");
    let topology = write_topology(dir.path(), source, target, &flow);
    let daemon = FERRY.start(&topology);
    wait_copied(target, &remote, 10);
    let on_source = Topics::on(source);
    let on_target = Topics::on(target);
    on_source.delete(&topic);
    // Several discoveries later, with a grace of zero it would be gone.
    std::thread::sleep(Duration::from_secs(6));
    assert!(on_target.exists(&remote));
    assert_eq!(
        metric(&daemon, "ferry_topics_deleted_total{flow=\"src->dst\"}"),
        Some(0.0)
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("target topic deleted"), "{log}");

    // With propagate_deletes, the plan shows what the daemon would delete,
    // and neither plan nor plan --apply deletes it.
    let text = std::fs::read_to_string(&topology).unwrap().replacen(
        "[[flows]]",
        "[[flows]]\npropagate_deletes = true\ndelete_grace = \"1h\"",
        1,
    );
    let with_deletes = dir.path().join("with-deletes.toml");
    std::fs::write(&with_deletes, text).unwrap();
    let path = with_deletes.to_str().unwrap();
    let (code, stdout, stderr) = FERRY.output(&["plan", "-c", path, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect("plan --json");
    let deletions = &plan["flows"][0]["deletions"];
    assert_eq!(deletions["grace_seconds"], 3600.0, "{deletions}");
    assert_eq!(
        deletions["topics"],
        serde_json::json!([{"source_topic": topic, "target_topic": remote, "kept_because": null}]),
        "{deletions}"
    );
    let (code, stdout, stderr) = FERRY.output(&["plan", "-c", path, "--apply"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "target topics whose source topic is gone (propagate_deletes: a daemon that saw the source topic deletes them after delete_grace = 1h 00m): 1\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.contains(&remote)
            && l.contains(&format!(
                "DELETE from dst once {topic} has been gone for 1h 00m"
            ))),
        "{stdout}"
    );
    assert!(on_target.exists(&remote), "plan never deletes");
    // A daemon that never saw the source topic (it went while no daemon
    // ran) does not delete its target topic, saved progress or not: to it,
    // the topic might as well be on another cluster.
    let short = std::fs::read_to_string(&with_deletes)
        .unwrap()
        .replace("delete_grace = \"1h\"", "delete_grace = \"2s\"");
    std::fs::write(&with_deletes, short).unwrap();
    let daemon = FERRY.start(&with_deletes);
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        on_target.exists(&remote),
        "deleted without having seen the source topic"
    );
    assert_eq!(
        metric(&daemon, "ferry_topics_deleted_total{flow=\"src->dst\"}"),
        Some(0.0)
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    // Without propagate_deletes the plan has no deletion section.
    let (code, stdout, _) = FERRY.output(&["plan", "-c", topology.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0));
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(plan["flows"][0]["deletions"].is_null());
}

#[test]
fn a_source_topic_that_comes_back_within_the_grace_stops_the_clock() {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name("comeback");
    let remote = format!("src.{topic}");
    create_with_records(source, &topic, 10);
    let dir = tempfile::tempdir().unwrap();
    let flow = one_flow(&format!(
        "topics = [\"{topic}\"]\nrefresh_interval = \"1s\"\n\
         propagate_deletes = true\ndelete_grace = \"{}s\"",
        GRACE.as_secs()
    ))
    .replace("refresh_interval = \"2s\"\n", "");
    let topology = write_topology(dir.path(), source, target, &flow);
    let daemon = FERRY.start(&topology);
    wait_copied(target, &remote, 10);
    let on_source = Topics::on(source);
    let on_target = Topics::on(target);

    // Gone for half the grace, then back (a topic recreated by hand).
    on_source.delete(&topic);
    let first = Instant::now();
    std::thread::sleep(GRACE / 2);
    data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create again");
    // Well past the first disappearance's grace, the target topic is there.
    std::thread::sleep((GRACE + Duration::from_secs(4)).saturating_sub(first.elapsed()));
    assert!(
        on_target.exists(&remote),
        "deleted although the source came back"
    );
    assert_eq!(
        metric(&daemon, "ferry_topic_deletions_pending{flow=\"src->dst\"}"),
        Some(0.0)
    );

    // Gone again: a new grace, counted from this disappearance.
    on_source.delete(&topic);
    let second = Instant::now();
    wait_for(
        "the target topic to be deleted",
        Duration::from_secs(60),
        || (!on_target.exists(&remote)).then_some(()),
    );
    assert!(
        second.elapsed() >= GRACE,
        "deleted {:?} after the second disappearance, grace {GRACE:?}",
        second.elapsed()
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("source topic is back") && l.contains(&topic)),
        "{log}"
    );
}
