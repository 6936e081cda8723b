//! Where partitions start after a restart, against real Apache Kafka: the
//! engine and `ferry plan` agree, saved progress past the source log end
//! holds the partition instead of copying everything again.

mod common;

use std::time::Duration;

use common::*;

use ferry_testkit::check::assert_same;
use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::inspect::topics_containing;
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

/// Writes one progress record of the `src -> dst` flow, as the engine
/// would: `<topic>:<partition>` = `<next source offset>@<epoch>`, with an
/// epoch above any the daemon's claims reached, as a later owner's would
/// be (an older owner's record never wins over the daemon's own).
fn write_progress(target: &KafkaCluster, topic: &str, partition: i32, offset: i64) {
    let producer: BaseProducer = target.client_config().create().expect("producer");
    let key = format!("{topic}:{partition}");
    let value = format!("{offset}@1000000000");
    producer
        .send(
            BaseRecord::to("ferry-progress.src.internal")
                .key(&key)
                .payload(&value),
        )
        .map_err(|(e, _)| e)
        .expect("send progress");
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn ends(cluster: &KafkaCluster, topic: &str) -> Vec<i64> {
    data::end_offsets(&cluster.client_config(), topic).expect("end offsets")
}

/// `ferry reset-progress` for the `src -> dst` flow: exit code, stdout,
/// stderr.
fn reset_progress(config: &str, topics: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec![
        "reset-progress",
        "-c",
        config,
        "--flow",
        "src->dst",
        "--topics",
        topics,
    ];
    args.extend_from_slice(extra);
    FERRY.output(&args)
}

fn plan_json(topology: &std::path::Path) -> Value {
    let (code, stdout, stderr) =
        FERRY.output(&["plan", "-c", topology.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "plan failed: {stderr}");
    serde_json::from_str(&stdout).expect("plan --json")
}

/// A source topic of 2 partitions × 100 records, copied by a bounded run
/// of a `src -> dst` flow with prefix naming.
struct Copied {
    source: &'static KafkaCluster,
    target: &'static KafkaCluster,
    topic: String,
    remote: String,
    topology: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Copied {
    fn new(prefix: &str) -> Copied {
        let (source, target) = shared_pair().expect("clusters");
        let topic = unique_name(prefix);
        data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
        produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 100))
            .expect("produce");
        let dir = tempfile::tempdir().unwrap();
        let topology = write_topology(
            dir.path(),
            source,
            target,
            &one_flow(&format!("topics = [\"{topic}\"]")),
        );
        FERRY.run_until_caught_up(&topology);
        let remote = format!("src.{topic}");
        assert_same(source, &topic, target, &remote, 200);
        Copied {
            source,
            target,
            topic,
            remote,
            topology,
            _dir: dir,
        }
    }
}

#[test]
fn progress_past_the_source_end_holds_the_partition_in_run_and_plan() {
    let copied = Copied::new("beyondend");
    let (source, target, topic, remote) =
        (copied.source, copied.target, &copied.topic, &copied.remote);
    let topology = copied.topology.clone();

    // Progress of partition 0 now says 1,000 records were copied: what
    // remains of a source topic recreated with fewer records.
    write_progress(target, topic, 0, 1000);
    let mut more = SequenceSpec::new(2, 50);
    more.first_seq = 100;
    produce_sequence(&source.client_config(), topic, &more).expect("produce more");

    let plan = plan_json(&topology);
    let t = &plan["flows"][0]["topics"][0];
    let p0 = &t["partition_backlog"][0];
    let p1 = &t["partition_backlog"][1];
    assert_eq!(p0["held"], true, "{p0}");
    assert_eq!(p0["records"], 0, "{p0}");
    assert_eq!(p0["start"], 1000, "{p0}");
    assert_eq!(p1["held"], false, "{p1}");
    assert_eq!(
        (&p1["start"], &p1["records"]),
        (&Value::from(100), &Value::from(50))
    );
    let warnings = plan["flows"][0]["warnings"].as_array().unwrap();
    let held = warnings
        .iter()
        .find(|w| w["kind"] == "progress-beyond-log-end")
        .unwrap_or_else(|| panic!("no held warning in {warnings:?}"));
    let message = held["message"].as_str().unwrap();
    let expected = format!(
        "cluster src, topic {topic}, partition 0: saved progress is at offset 1000 but the source log ends at 150"
    );
    assert!(message.starts_with(&expected), "{message}");

    let daemon = FERRY.start(&topology);
    // Partition 1 copies its new records: the flow runs.
    wait_for("partition 1 copied", Duration::from_secs(60), || {
        (ends(target, remote)[1] == 150).then_some(())
    });
    let status: Value = wait_for(
        "the held partition in /status",
        Duration::from_secs(30),
        || {
            let (_, body) = daemon.get("/status");
            let v: Value = serde_json::from_str(&body).ok()?;
            let w = v["flows"][0]["warnings"].as_array()?.first()?.clone();
            Some(w)
        },
    );
    assert_eq!(status["kind"], "progress-beyond-log-end", "{status}");
    assert_eq!(status["held"], true, "{status}");
    assert_eq!(status["partition"], 0, "{status}");
    // The engine said the same as the plan.
    assert_eq!(status["message"].as_str().unwrap(), message);
    std::thread::sleep(Duration::from_secs(3));
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains(&expected), "{log}");
    // Nothing of partition 0 was copied again.
    assert_eq!(ends(target, remote), vec![100, 150], "{log}");

    // Resetting partition 0's progress releases it: the next run starts it
    // by start_from (earliest) and leaves partition 1 alone.
    let config = topology.to_str().unwrap();
    let (code, stdout, stderr) = reset_progress(config, topic, &["--partitions", "0"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "reset: {topic} partition 0 (saved progress was offset 1000)"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("partition 1"), "{stdout}");
    let log = FERRY.run_until_caught_up(&topology);
    assert!(!log.contains("the partition is held"), "{log}");
    assert_eq!(ends(target, remote), vec![250, 150], "{log}");
}

#[test]
fn a_deleted_target_topic_is_reported_and_reset_progress_copies_it_again() {
    let copied = Copied::new("lostdst");
    let (source, target, topic, remote) =
        (copied.source, copied.target, &copied.topic, &copied.remote);
    let topology = copied.topology.clone();
    let config = topology.to_str().unwrap();

    let admin = ferry_admin::Admin::new(&target.client_config()).expect("admin client");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(admin.delete_topics(&[remote.as_str()]))
        .expect("delete the target topic")
        .into_iter()
        .for_each(|r| {
            r.expect("deleted");
        });
    wait_for("the target topic gone", Duration::from_secs(30), || {
        topics_containing(&target.client_config(), remote)
            .expect("list topics")
            .is_empty()
            .then_some(())
    });

    // plan names both partitions before anything is recreated.
    let plan = plan_json(&topology);
    let lost: Vec<&str> = plan["flows"][0]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "target-topic-recreated")
        .filter_map(|w| w["message"].as_str())
        .collect();
    assert_eq!(lost.len(), 2, "{plan}");
    let expected = format!(
        "cluster dst, topic {remote}: the target topic is missing (deleted?) although saved progress of source topic {topic} partition 0 is at offset 100"
    );
    assert!(lost[0].starts_with(&expected), "{}", lost[0]);

    // The daemon recreates it empty, says so in its log and /status. It
    // listens on a known port so reset-progress can see it running.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&topology).unwrap();
    std::fs::write(
        &topology,
        text.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        ),
    )
    .unwrap();
    let daemon = FERRY.start(&topology);
    let warnings: Vec<Value> = wait_for(
        "the lost target in /status",
        Duration::from_secs(60),
        || {
            let (_, body) = daemon.get("/status");
            let v: Value = serde_json::from_str(&body).ok()?;
            let w: Vec<Value> = v["flows"][0]["warnings"]
                .as_array()?
                .iter()
                .filter(|w| w["kind"] == "target-topic-recreated")
                .cloned()
                .collect();
            (w.len() == 2).then_some(w)
        },
    );
    assert_eq!(warnings[0]["message"].as_str().unwrap(), lost[0]);
    assert_eq!(warnings[0]["held"], false);
    let (code, _, stderr) = reset_progress(config, topic, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("stop it first"), "{stderr}");
    let (code, stdout, stderr) = FERRY.output(&["status", "-c", config]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("  warning: {expected}")),
        "{stdout}"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains(&expected), "{log}");
    assert_eq!(
        ends(target, remote),
        vec![0, 0],
        "resumed after the copied records"
    );

    // The remedy: forget the progress, and the next run copies everything.
    let (code, _, stderr) = reset_progress(config, "nomatch.*", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("nothing reset"), "{stderr}");
    let (code, _, stderr) = reset_progress(config, "(", &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stdout, stderr) = reset_progress(config, topic, &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "reset: {topic} partition 1 (saved progress was offset 100)"
        )),
        "{stdout}"
    );
    FERRY.run_until_caught_up(&topology);
    assert_same(source, topic, target, remote, 200);
}
