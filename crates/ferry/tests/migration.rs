//! The migration toolkit end to end, against real Apache Kafka: `ferry
//! verify` after a bounded run and on crafted differences, `ferry plan`
//! against a golden file (and changing nothing), and `ferry plan --apply`
//! (the metadata-only migration).
//!
//! The golden file is `tests/golden/plan.txt`; after an intended change of
//! the output, regenerate it with `FERRY_UPDATE_GOLDEN=1 cargo test -p
//! ferry --test migration plan_` and review the diff.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::groups::{commit_group_offsets, group_offsets};
use ferry_testkit::inspect::{topic_overrides, topics_containing};
use ferry_testkit::topology::{one_flow, write_topology};
use ferry_testkit::{shared_pair, KafkaCluster};
use serde_json::Value;

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

fn config_arg(topology: &Path) -> &str {
    topology.to_str().unwrap()
}

/// `ferry verify --json` with extra args: exit code and the parsed report.
fn verify_json(topology: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["verify", "-c", config_arg(topology), "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = FERRY.output(&args);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verify --json is not JSON ({e}):\n{stdout}\n{stderr}"));
    (code, report)
}

/// The report's partitions by (source topic, partition).
fn partitions(report: &Value) -> BTreeMap<(String, i64), Value> {
    report["flows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["partitions"].as_array().unwrap().iter())
        .map(|p| {
            (
                (
                    p["topic"].as_str().unwrap().to_string(),
                    p["partition"].as_i64().unwrap(),
                ),
                p.clone(),
            )
        })
        .collect()
}

/// Committed transactions of 30 records around an aborted one of 20 and
/// plain records: source offsets run ahead of target offsets (markers and
/// aborted records are never copied).
fn produce_with_transactions(cluster: &KafkaCluster, topic: &str) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = cluster
        .client_config()
        .set("transactional.id", unique_name("verify-txn"))
        .create()
        .expect("transactional producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    for (txn, count, commit) in [(0, 30, true), (1, 20, false), (2, 30, true)] {
        producer.begin_transaction().expect("begin");
        for i in 0..count {
            let value = format!("txn{txn}-{i}");
            producer
                .send(
                    BaseRecord::<str, str>::to(topic)
                        .partition(0)
                        .key(&value)
                        .payload(&value),
                )
                .expect("send");
        }
        producer.flush(timeout).expect("flush");
        if commit {
            producer.commit_transaction(timeout).expect("commit");
        } else {
            producer.abort_transaction(timeout).expect("abort");
        }
    }
}

#[test]
fn verify_matches_after_a_bounded_run_and_catches_a_record_added_later() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("verify-ok");
    let (plain, txn, late) = (
        format!("{prefix}-plain"),
        format!("{prefix}-txn"),
        format!("{prefix}-late"),
    );
    data::create_topic(&source.client_config(), &plain, 3, 1, &[]).expect("create");
    data::create_topic(&source.client_config(), &txn, 1, 1, &[]).expect("create");
    // A target topic that already held 7 records of its own: the copies
    // start at target offset 7.
    data::create_topic(&source.client_config(), &late, 1, 1, &[]).expect("create");
    produce_sequence(&source.client_config(), &late, &SequenceSpec::new(1, 40)).expect("produce");
    let remote_late = format!("src.{late}");
    data::create_topic(&target.client_config(), &remote_late, 1, 1, &[]).expect("create");
    let mut foreign = SequenceSpec::new(1, 7);
    foreign.first_seq = 1_000;
    produce_sequence(&target.client_config(), &remote_late, &foreign).expect("produce");
    let mut spec = SequenceSpec::new(3, 300);
    spec.tombstone_every = 7;
    produce_sequence(&source.client_config(), &plain, &spec).expect("produce");
    produce_with_transactions(source, &txn);

    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{prefix}-.*\"]")),
    );
    FERRY.run_until_caught_up(&topology);

    let (code, stdout, stderr) = FERRY.output(&["verify", "-c", config_arg(&topology)]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "result: match: 5 partitions, compared 1000 of 1000 source records, 1000 records on each side"
        ),
        "{stdout}"
    );

    let (code, report) = verify_json(&topology, &["--flow", "src->dst"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["result"], "match");
    let parts = partitions(&report);
    assert_eq!(parts.len(), 5);
    for p in parts.values() {
        assert_eq!(p["result"], "match", "{p:#}");
        assert_eq!(p["basis"], "offset-map", "{p:#}");
        assert_eq!(p["source"]["records"], p["target"]["records"], "{p:#}");
        assert_eq!(p["source"]["digest"], p["target"]["digest"], "{p:#}");
        assert_eq!(coverage(p).0, coverage(p).1, "{p:#}");
        assert_eq!(
            Some(coverage(p).0),
            p["source"]["records"].as_u64(),
            "{p:#}"
        );
    }
    // Markers and the aborted transaction: the offsets differ, the records
    // align.
    let t = &parts[&(txn.clone(), 0)];
    assert_eq!(t["source"]["records"], 60);
    assert_eq!(t["target"]["end"], 60);
    assert!(t["source"]["end"].as_i64().unwrap() > 60, "{t:#}");
    let l = &parts[&(late.clone(), 0)];
    assert_eq!(
        (l["target"]["start"].as_i64(), l["target"]["end"].as_i64()),
        (Some(7), Some(47)),
        "{l:#}"
    );
    assert_eq!(
        (
            l["source"]["start"].as_i64(),
            l["source"]["records"].as_u64()
        ),
        (Some(0), Some(40))
    );
    // Reads only: the readers never joined or committed a group.
    use rdkafka::consumer::Consumer;
    let lister: rdkafka::consumer::BaseConsumer = source.client_config().create().expect("client");
    let groups = lister
        .fetch_group_list(None, Duration::from_secs(30))
        .expect("list groups");
    assert!(groups
        .groups()
        .iter()
        .all(|g| !g.name().starts_with("ferry-")));

    // A record written straight into the target is extra.
    let mut extra = SequenceSpec::new(3, 1);
    extra.partitions = vec![1];
    extra.first_seq = 300;
    produce_sequence(&target.client_config(), &format!("src.{plain}"), &extra)
        .expect("produce into the target");
    let (code, report) = verify_json(&topology, &["--topics", &format!("{prefix}-pl.*")]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["result"], "mismatch");
    assert_eq!(
        (report["partitions"].as_u64(), report["mismatched"].as_u64()),
        (Some(3), Some(1))
    );
    let p = &partitions(&report)[&(plain.clone(), 1)];
    let d = &p["divergence"];
    assert_eq!(d["kind"], "extra", "{p:#}");
    assert_eq!(
        (d["source_offset"].as_i64(), d["target_offset"].as_i64()),
        (Some(300), Some(300))
    );
    assert!(d["source_record"].is_null());
    assert_eq!(d["target_record"]["value"]["preview"], "\"p1:s300:\"");
    assert_eq!(
        (
            p["source"]["records"].as_u64(),
            p["target"]["records"].as_u64()
        ),
        (Some(300), Some(301))
    );
}

#[test]
fn verify_reports_the_first_divergence_of_altered_missing_and_extra_records() {
    let (source, target) = shared_pair().expect("test brokers start");
    let prefix = unique_name("verify-diff");
    let spec = SequenceSpec::new(1, 50);
    let part = |from: u64, count: u64| {
        let mut s = spec.clone();
        s.first_seq = from;
        s.records_per_partition = count;
        s
    };
    // The record at offset 20 differs in each target topic.
    let mut altered = part(20, 1);
    altered.value_padding = 3;
    let mut foreign = part(9_999, 1);
    foreign.base_timestamp_ms += 1;
    let cases: [(&str, Vec<SequenceSpec>); 4] = [
        ("same", vec![part(0, 50)]),
        ("altered", vec![part(0, 20), altered, part(21, 29)]),
        ("missing", vec![part(0, 20), part(21, 29)]),
        ("extra", vec![part(0, 20), foreign, part(20, 30)]),
    ];
    for (case, target_specs) in &cases {
        let topic = format!("{prefix}-{case}");
        data::create_topic(&source.client_config(), &topic, 1, 1, &[]).expect("create");
        produce_sequence(&source.client_config(), &topic, &spec).expect("produce");
        let remote = format!("src.{topic}");
        data::create_topic(&target.client_config(), &remote, 1, 1, &[]).expect("create");
        for s in target_specs {
            produce_sequence(&target.client_config(), &remote, s).expect("produce");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = write_topology(
        dir.path(),
        source,
        target,
        &one_flow(&format!("topics = [\"{prefix}-.*\"]")),
    );

    let (code, stdout, stderr) = FERRY.output(&["verify", "-c", config_arg(&topology)]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    for case in ["altered", "missing", "extra"] {
        let line = format!(
            "{prefix}-{case}[0] -> src.{prefix}-{case}[0]: first divergent source offset 20 (target offset 20)"
        );
        assert!(stdout.contains(&line), "{line}\n{stdout}");
    }
    assert!(stdout.contains("the records differ in value"), "{stdout}");
    assert!(
        stdout.contains("    source: offset 20, timestamp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("result: MISMATCH: 3 of 4 partitions differ"),
        "{stdout}"
    );

    let (code, report) = verify_json(&topology, &[]);
    assert_eq!(code, Some(1));
    let parts = partitions(&report);
    let get = |case: &str| &parts[&(format!("{prefix}-{case}"), 0)];
    assert_eq!(get("same")["result"], "match");
    assert_eq!(get("same")["basis"], "log-start");
    for (case, kind, target_records) in [
        ("altered", "altered", 50),
        ("missing", "missing", 49),
        ("extra", "extra", 51),
    ] {
        let p = get(case);
        let d = &p["divergence"];
        assert_eq!(p["result"], "mismatch", "{p:#}");
        assert_eq!(d["kind"], kind, "{p:#}");
        assert_eq!(d["source_offset"], 20, "{p:#}");
        assert_eq!(d["target_offset"], 20, "{p:#}");
        assert_eq!(p["source"]["records"], 50);
        assert_eq!(p["target"]["records"], target_records, "{p:#}");
        assert_ne!(p["source"]["digest"], p["target"]["digest"]);
        // Both records described.
        assert_eq!(d["source_record"]["offset"], 20, "{p:#}");
        assert_eq!(d["target_record"]["offset"], 20, "{p:#}");
        assert!(d["source_record"]["headers"].as_array().unwrap().len() == 5);
    }
    let altered = &get("altered")["divergence"];
    assert_eq!(altered["fields"], serde_json::json!(["value"]));
    assert_eq!(altered["source_record"]["value"]["preview"], "\"p0:s20:\"");
    assert_eq!(
        altered["target_record"]["value"]["preview"],
        "\"p0:s20:xxx\""
    );
    // Missing: the target's record 20 is the source's 21.
    assert_eq!(
        get("missing")["divergence"]["target_record"]["value"]["preview"],
        "\"p0:s21:\""
    );
}

/// A source topic of `partitions` x `records` sequence records, copied by
/// `ferry run --until caught-up` over one flow with `extra` keys: (the
/// topic, the directory holding the topology, the topology file).
fn copied_topic(
    prefix: &str,
    partitions: i32,
    records: u64,
    extra: &str,
) -> (String, tempfile::TempDir, std::path::PathBuf) {
    let (source, target) = shared_pair().expect("test brokers start");
    let topic = unique_name(prefix);
    data::create_topic(&source.client_config(), &topic, partitions, 1, &[]).expect("create");
    let spec = SequenceSpec::new(partitions, records);
    produce_sequence(&source.client_config(), &topic, &spec).expect("produce");
    let dir = tempfile::tempdir().unwrap();
    let flow = one_flow(&format!("topics = [\"{topic}\"]\n{extra}"));
    let topology = write_topology(dir.path(), source, target, &flow);
    FERRY.run_until_caught_up(&topology);
    (topic, dir, topology)
}

/// Continues the sequence of [`copied_topic`] on the source.
fn produce_more(topic: &str, partitions: i32, from: u64, records: u64) {
    let (source, _) = shared_pair().expect("test brokers start");
    let mut more = SequenceSpec::new(partitions, records);
    more.first_seq = from;
    produce_sequence(&source.client_config(), topic, &more).expect("produce more");
}

/// Coverage of one partition of a `verify --json` report: (records
/// compared, source records in the range).
fn coverage(p: &Value) -> (u64, u64) {
    (
        p["coverage"]["compared"]
            .as_u64()
            .expect("coverage.compared"),
        p["coverage"]["in_range"]
            .as_u64()
            .expect("coverage.in_range"),
    )
}

#[test]
fn verify_compares_the_whole_source_range_while_a_restarted_daemon_runs() {
    let (topic, _dir, topology) = copied_topic("verify-whole", 2, 500, "");
    // The daemon starts again from its saved progress and writes offset
    // syncs of its own; more records arrive while it runs, and verify waits
    // for them to be copied.
    let daemon = FERRY.start(&topology);
    produce_more(&topic, 2, 500, 100);

    let (code, report) = verify_json(&topology, &["--wait", "60s"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["result"], "match");
    let parts = partitions(&report);
    assert_eq!(parts.len(), 2);
    for p in parts.values() {
        assert_eq!(p["result"], "match", "{p:#}");
        assert_eq!(coverage(p), (600, 600), "{p:#}");
        assert_eq!(
            (p["source"]["start"].as_i64(), p["source"]["end"].as_i64()),
            (Some(0), Some(600)),
            "{p:#}"
        );
        assert_eq!(p["target"]["records"], 600, "{p:#}");
    }
    assert_eq!(
        (report["compared"].as_u64(), report["in_range"].as_u64()),
        (Some(1200), Some(1200))
    );

    let (code, stdout, stderr) = FERRY.output(&["verify", "-c", config_arg(&topology)]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("600/600"),
        "per-partition coverage: {stdout}"
    );
    assert!(
        stdout.contains("result: match: 2 partitions, compared 1200 of 1200 source records"),
        "{stdout}"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn verify_is_incomplete_while_source_records_are_not_yet_on_the_target() {
    let (topic, _dir, topology) = copied_topic("verify-behind", 1, 100, "");
    // Written after the copy, with no daemon running.
    produce_more(&topic, 1, 100, 50);

    let (code, stdout, stderr) =
        FERRY.output(&["verify", "-c", config_arg(&topology), "--wait", "2s"]);
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(!stdout.contains("result: match"), "{stdout}");
    assert!(stdout.contains("100/150"), "{stdout}");
    assert!(
        stdout.contains("50 source records from offset 100 are not (yet) on the target"),
        "{stdout}"
    );
    assert!(stdout.contains("result: INCOMPLETE"), "{stdout}");
    let (code, report) = verify_json(&topology, &["--wait", "0s"]);
    assert_eq!(code, Some(3), "{report:#}");
    assert_eq!(report["result"], "incomplete");
    let p = &partitions(&report)[&(topic.clone(), 0)];
    assert_eq!(p["result"], "incomplete", "{p:#}");
    assert_eq!(coverage(p), (100, 150), "{p:#}");
    assert!(p["divergence"].is_null(), "{p:#}");

    // Once copied, the same range matches.
    FERRY.run_until_caught_up(&topology);
    let (code, report) = verify_json(&topology, &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(coverage(&partitions(&report)[&(topic, 0)]), (150, 150));
}

#[test]
fn verify_treats_records_written_into_a_one_way_target_as_a_mismatch() {
    let (source, target) = shared_pair().expect("test brokers start");
    let one_way = "topic_naming = \"identity\"";
    let (topic, dir, topology) = copied_topic("verify-foreign", 1, 40, one_way);
    // A record written straight into the target topic (same name).
    let mut stray = SequenceSpec::new(1, 1);
    stray.first_seq = 7_000;
    produce_sequence(&target.client_config(), &topic, &stray).expect("produce into the target");

    let (code, stdout, stderr) = FERRY.output(&["verify", "-c", config_arg(&topology)]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the target has a record that was not copied from src"),
        "{stdout}"
    );
    assert!(
        stdout.contains("p0:s7000:"),
        "the foreign record is shown: {stdout}"
    );
    let (code, report) = verify_json(&topology, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let p = &partitions(&report)[&(topic.clone(), 0)];
    assert_eq!(p["result"], "mismatch", "{p:#}");
    assert_eq!(p["divergence"]["kind"], "foreign", "{p:#}");
    assert_eq!(p["divergence"]["target_offset"], 40, "{p:#}");
    assert_eq!(coverage(p), (40, 40), "{p:#}");

    // With a reverse flow over the same topics (active-active), records
    // written on the target are expected: counted, not a mismatch.
    let identity = format!("topics = [\"{topic}\"]\n{one_way}");
    let both = format!(
        "{}\n[[flows]]\nsource = \"dst\"\ntarget = \"src\"\nrefresh_interval = \"2s\"\n{identity}\n",
        one_flow(&identity)
    );
    let active_active = dir.path().join("active-active");
    std::fs::create_dir_all(&active_active).unwrap();
    let topology = write_topology(&active_active, source, target, &both);
    let (code, stdout, stderr) =
        FERRY.output(&["verify", "-c", config_arg(&topology), "--flow", "src->dst"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 target records not copied from src (expected: flow dst->src writes to this topic too)"),
        "{stdout}"
    );
}

#[test]
fn verify_and_plan_name_bad_input_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("topology.toml");
    std::fs::write(
        &path,
        "[clusters.src]\nbootstrap_servers = \"127.0.0.1:1\"\n[clusters.dst]\nbootstrap_servers = \"127.0.0.1:1\"\n\
         [[flows]]\nsource = \"src\"\ntarget = \"dst\"\n",
    )
    .unwrap();
    let config = config_arg(&path);
    for (args, needle) in [
        (
            vec!["verify", "-c", config, "--flow", "src->nope"],
            "\"src->nope\"",
        ),
        (
            vec!["verify", "-c", config, "--topics", "orders("],
            "invalid regex \"orders(\": unclosed group",
        ),
        (
            vec!["plan", "-c", config, "--flow", "nope"],
            "invalid flow \"nope\"",
        ),
        (
            vec!["plan", "-c", config, "--throughput", "fast"],
            "invalid throughput \"fast\"",
        ),
        (vec!["verify", "-c", config, "--parallel", "0"], "0"),
    ] {
        let (code, stdout, stderr) = FERRY.output(&args);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// plan
// ---------------------------------------------------------------------------

/// A fixed-length unique prefix, so column widths (and the golden file) do
/// not depend on it.
fn plan_prefix() -> String {
    format!("plan{:08x}", rand::random::<u32>())
}

/// Source topics that exercise every section of a plan, and two groups.
fn prepare_plan_pair(source: &KafkaCluster, target: &KafkaCluster, p: &str) -> std::path::PathBuf {
    let src = source.client_config();
    let create = |name: &str, partitions: i32, configs: &[(&str, &str)], records: u64| {
        data::create_topic(&src, name, partitions, 1, configs).expect("create");
        if records > 0 {
            produce_sequence(&src, name, &SequenceSpec::new(partitions, records)).expect("produce");
        }
    };
    create(
        &format!("{p}-a"),
        3,
        &[("retention.ms", "3600000"), ("max.message.bytes", "200000")],
        200,
    );
    create(&format!("{p}-b"), 1, &[], 100);
    create(&format!("{p}-c"), 2, &[("retention.ms", "86400000")], 50);
    create(&format!("{p}-tmp"), 1, &[], 0);
    create(&format!("{p}-x.internal"), 1, &[], 0);
    create(&format!("dst.{p}-loop"), 1, &[], 0);
    // The target already has src.<p>-c: fewer partitions, other configs.
    data::create_topic(
        &target.client_config(),
        &format!("src.{p}-c"),
        1,
        1,
        &[
            ("retention.ms", "43200000"),
            ("max.message.bytes", "300000"),
        ],
    )
    .expect("create on the target");
    // ... and records someone else wrote.
    produce_sequence(
        &target.client_config(),
        &format!("src.{p}-c"),
        &SequenceSpec::new(1, 5),
    )
    .expect("produce on the target");
    let a = format!("{p}-a");
    let b = format!("{p}-b");
    commit_group_offsets(source, &format!("{p}-g1"), &[(&a, 0, 50), (&a, 1, 80)]);
    commit_group_offsets(source, &format!("{p}-g2"), &[(&a, 0, 30), (&b, 0, 100)]);
    let dir = tempfile::tempdir().unwrap().keep();
    write_topology(
        &dir,
        source,
        target,
        &one_flow(&format!(
            "topics = [\".*{p}.*\"]\ntopics_exclude = [\".*-tmp\"]\ngroups = [\"{p}-.*\"]\nstart_from = \"unconsumed\""
        )),
    )
}

/// Everything `plan` must leave alone on the target: topics, partition
/// counts, topic configs, group offsets.
type Snapshot = (
    BTreeMap<String, usize>,
    BTreeMap<String, BTreeMap<String, String>>,
    BTreeMap<String, BTreeMap<i32, i64>>,
);

fn target_snapshot(target: &KafkaCluster, p: &str) -> Snapshot {
    let topics = topics_containing(&target.client_config(), p).expect("list topics");
    let configs = topics
        .keys()
        .map(|t| {
            (
                t.clone(),
                topic_overrides(&target.client_config(), t).expect("describe configs"),
            )
        })
        .collect();
    let mut groups = BTreeMap::new();
    for g in ["g1", "g2"] {
        for t in ["a", "b", "c"] {
            let offsets = group_offsets(target, &format!("{p}-{g}"), &format!("src.{p}-{t}"));
            groups.insert(format!("{g}/{t}"), offsets);
        }
    }
    (topics, configs, groups)
}

#[test]
fn plan_matches_the_golden_file_and_changes_nothing() {
    let (source, target) = shared_pair().expect("test brokers start");
    let p = plan_prefix();
    let topology = prepare_plan_pair(source, target, &p);
    let before = target_snapshot(target, &p);

    let args = [
        "plan",
        "-c",
        config_arg(&topology),
        "--flow",
        "src->dst",
        "--throughput",
        "5B/s",
    ];
    let (code, stdout, stderr) = FERRY.output(&args);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    // The placeholder is as long as the prefix, so columns stay aligned.
    let text = stdout.replace(&p, "<prefix....>");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/plan.txt");
    if std::env::var_os("FERRY_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).expect("tests/golden/plan.txt");
    assert_eq!(
        text,
        expected,
        "plan output differs from {} (FERRY_UPDATE_GOLDEN=1 regenerates it)",
        golden.display()
    );

    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, stdout, _) = FERRY.output(&json_args);
    assert_eq!(code, Some(0));
    let plan: Value = serde_json::from_str(&stdout).expect("plan --json");
    assert_eq!(plan["schema"], 1);
    let flow = &plan["flows"][0];
    assert_eq!(flow["delivery"], "at-least-once");
    let actions: Vec<(&str, &str)> = flow["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["target_topic"].as_str().unwrap(),
                t["action"].as_str().unwrap(),
            )
        })
        .collect();
    let (a, b, c) = (
        format!("src.{p}-a"),
        format!("src.{p}-b"),
        format!("src.{p}-c"),
    );
    assert_eq!(
        actions,
        vec![
            (a.as_str(), "create"),
            (b.as_str(), "create"),
            (c.as_str(), "add-partitions")
        ]
    );
    let reasons: Vec<&str> = flow["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["re-prefix", "excluded", "internal"]);
    assert_eq!(flow["backlog"]["records"], 590);
    let a0 = &flow["topics"][0]["partition_backlog"][0];
    assert_eq!(
        (a0["start"].as_i64(), a0["from"].as_str()),
        (Some(30), Some("unconsumed"))
    );
    assert_eq!(a0["groups"], serde_json::json!([format!("{p}-g2")]));

    assert_eq!(
        target_snapshot(target, &p),
        before,
        "plan changed the target"
    );
}

#[test]
fn plan_apply_creates_topics_configs_and_group_offsets() {
    let (source, target) = shared_pair().expect("test brokers start");
    let p = plan_prefix();
    let topology = prepare_plan_pair(source, target, &p);
    let (code, stdout, stderr) = FERRY.output(&["plan", "-c", config_arg(&topology), "--apply"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let (a, b, c) = (
        format!("src.{p}-a"),
        format!("src.{p}-b"),
        format!("src.{p}-c"),
    );
    for line in [
        format!("  created topic {a}: 3 partitions, configs: max.message.bytes=200000, retention.ms=3600000"),
        format!("  created topic {b}: 1 partition, configs: none"),
        format!("  added partitions to {c}: 1 -> 2 partitions"),
        format!("  changed configs of {c}: retention.ms=86400000"),
        format!("  wrote offsets of group {p}-g1: {a}[0]=0, {a}[1]=0"),
        format!("  wrote offsets of group {p}-g2: {a}[0]=0, {b}[0]=0"),
        "note: where no data was copied".to_string(),
    ] {
        assert!(stdout.contains(&line), "missing {line:?} in:\n{stdout}");
    }

    let topics = topics_containing(&target.client_config(), &p).expect("list topics");
    assert_eq!(
        topics,
        BTreeMap::from([(a.clone(), 3), (b.clone(), 1), (c.clone(), 2)])
    );
    assert_eq!(
        topic_overrides(&target.client_config(), &a).expect("describe configs"),
        BTreeMap::from([
            ("max.message.bytes".to_string(), "200000".to_string()),
            ("retention.ms".to_string(), "3600000".to_string())
        ])
    );
    // Config changes reach the other brokers' views a moment later.
    wait_for("the config change", Duration::from_secs(30), || {
        (topic_overrides(&target.client_config(), &c).expect("describe configs")
            == BTreeMap::from([
                ("max.message.bytes".to_string(), "300000".to_string()),
                ("retention.ms".to_string(), "86400000".to_string()),
            ]))
        .then_some(())
    });
    assert_eq!(
        group_offsets(target, &format!("{p}-g1"), &a),
        BTreeMap::from([(0, 0), (1, 0)])
    );
    assert_eq!(
        group_offsets(target, &format!("{p}-g2"), &a),
        BTreeMap::from([(0, 0)])
    );
    assert_eq!(
        group_offsets(target, &format!("{p}-g2"), &b),
        BTreeMap::from([(0, 0)])
    );

    // A second plan has nothing left to create, and --apply changes nothing.
    let (code, stdout, _) = FERRY.output(&["plan", "-c", config_arg(&topology)]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("topics to create on dst: none"), "{stdout}");
    let (code, stdout, _) = FERRY.output(&["plan", "-c", config_arg(&topology), "--json"]);
    assert_eq!(code, Some(0));
    let plan: Value = serde_json::from_str(&stdout).unwrap();
    for t in plan["flows"][0]["topics"].as_array().unwrap() {
        assert_eq!(t["action"], "exists", "{t:#}");
        assert_eq!(t["config_changes"], serde_json::json!([]), "{t:#}");
    }
    for g in plan["flows"][0]["groups"].as_array().unwrap() {
        for part in g["partitions"].as_array().unwrap() {
            assert_eq!(part["apply"]["action"], "unchanged", "{part:#}");
        }
    }
    let (code, stdout, _) = FERRY.output(&["plan", "-c", config_arg(&topology), "--apply"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("applied flow src->dst: nothing to do"),
        "{stdout}"
    );
}
