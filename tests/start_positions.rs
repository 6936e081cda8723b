//! Where partitions start after a restart, against real Apache Kafka: the
//! engine and `ferry plan` agree, saved progress past the source log end
//! holds the partition instead of copying everything again.

mod common;

use std::time::Duration;

use common::*;
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::{shared_pair, KafkaCluster};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

/// Writes one progress record of the `src -> dst` flow, as the engine
/// would: `<topic>:<partition>` = next source offset.
fn write_progress(target: &KafkaCluster, topic: &str, partition: i32, offset: i64) {
    let producer: BaseProducer = target.client_config().create().expect("producer");
    let key = format!("{topic}:{partition}");
    let value = offset.to_string();
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

fn plan_json(topology: &std::path::Path) -> Value {
    let (code, stdout, stderr) =
        ferry_output(&["plan", "-c", topology.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "plan failed: {stderr}");
    serde_json::from_str(&stdout).expect("plan --json")
}

#[test]
fn progress_past_the_source_end_holds_the_partition_in_run_and_plan() {
    let (source, target) = shared_pair().expect("clusters");
    let topic = unique_name("beyondend");
    data::create_topic(&source.client_config(), &topic, 2, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &topic, &SequenceSpec::new(2, 100)).expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{topic}\"]")),
    );
    run_until_caught_up(&topology);
    let remote = format!("src.{topic}");
    assert_eq!(ends(target, &remote), vec![100, 100]);

    // Progress of partition 0 now says 1,000 records were copied: what
    // remains of a source topic recreated with fewer records.
    write_progress(target, &topic, 0, 1000);
    let mut more = SequenceSpec::new(2, 50);
    more.first_seq = 100;
    produce_sequence(&source.client_config(), &topic, &more).expect("produce more");

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

    let daemon = start_daemon(&topology);
    // Partition 1 copies its new records: the flow runs.
    wait_for("partition 1 copied", Duration::from_secs(60), || {
        (ends(target, &remote)[1] == 150).then_some(())
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
    assert_eq!(ends(target, &remote), vec![100, 150], "{log}");
}
