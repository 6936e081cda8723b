//! The engine on its own, against librdkafka's in-process mock clusters: a
//! `Supervisor` runs a topology, records are produced to the source, and
//! what lands on the target and in the saved progress is read back with
//! independent clients (`ferry_testkit::data`).
//!
//! The mock cluster lacks CreateTopics, DescribeConfigs and ListGroups, so
//! each test creates the target topics Ferry would create, and the flows
//! leave config sync, checkpoints and group offset sync off.

use std::sync::Arc;
use std::time::Duration;

use ferry_config::{Cluster, Topology};
use ferry_supervisor::{progress, EngineError, RunMode, Supervisor};
use ferry_testkit::daemon::wait_for;
use ferry_testkit::data::{self, produce_sequence, SequenceSpec};
use ferry_testkit::mock::MockKafka;
use rdkafka::types::RDKafkaRespErr;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

const PROGRESS_TOPIC: &str = "ferry-progress.src.internal";

/// A source and a target mock cluster, one broker each.
struct Clusters {
    source: MockKafka,
    target: MockKafka,
}

impl Clusters {
    /// `topics` (name, partitions) on the source, their `src.` copies and
    /// the internal topics on the target (without the offset-syncs topic,
    /// say, a drain would wait its whole timeout to write the last syncs).
    fn start(topics: &[(&str, i32)]) -> Clusters {
        let clusters = Clusters {
            source: MockKafka::start(1).expect("mock source"),
            target: MockKafka::start(1).expect("mock target"),
        };
        for (topic, partitions) in topics {
            clusters.source.create_topic(topic, *partitions, 1).unwrap();
            clusters
                .target
                .create_topic(&format!("src.{topic}"), *partitions, 1)
                .unwrap();
        }
        // Ferry's and MirrorMaker 2's internal topics, likewise.
        for internal in [
            PROGRESS_TOPIC,
            "mm2-offset-syncs.src.internal",
            "src.checkpoints.internal",
            "heartbeats",
        ] {
            clusters.target.create_topic(internal, 1, 1).unwrap();
        }
        // One partition per slot of the flow (16 by default).
        clusters
            .target
            .create_topic("ferry-slots.src-dst", 16, 1)
            .unwrap();
        clusters
    }

    /// One flow src->dst over `topics` (a list of names or patterns);
    /// `enabled = false` turns it off.
    fn topology(&self, topics: &[&str], enabled: bool) -> Topology {
        let topics = topics
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            r#"
[clusters.src]
bootstrap_servers = "{}"
[clusters.dst]
bootstrap_servers = "{}"

[[flows]]
source = "src"
target = "dst"
enabled = {enabled}
topics = [{topics}]
start_from = "earliest"
refresh_interval = "1s"
sync_topic_configs = false
emit_checkpoints = false
sync_group_offsets = false
"#,
            self.source.bootstrap_servers(),
            self.target.bootstrap_servers(),
        );
        ferry_config::parse(&text, "engine test topology", std::path::Path::new("."))
            .expect("valid topology")
            .topology
    }

    fn produce(&self, topic: &str, partitions: i32, first_seq: u64, records: u64) {
        let mut spec = SequenceSpec::new(partitions, records);
        spec.first_seq = first_seq;
        produce_sequence(&self.source.client_config(), topic, &spec).expect("produce to the mock");
    }

    /// Asserts that the target copy of `topic` holds exactly the source's
    /// records, in order, partition by partition, with nothing duplicated.
    fn assert_copied(&self, topic: &str, records: usize) {
        let report = data::compare_partitions(
            &self.source.client_config(),
            topic,
            &self.target.client_config(),
            &format!("src.{topic}"),
        )
        .expect("compare");
        assert!(report.is_match(), "{report}");
        assert_eq!(report.target_count(), records, "{report}");
    }

    /// Records on the target copy of `topic`, summed over its partitions.
    fn copied(&self, topic: &str) -> i64 {
        data::end_offsets(&self.target.client_config(), &format!("src.{topic}"))
            .map(|ends| ends.iter().sum())
            .unwrap_or(-1)
    }

    /// The progress saved on the target for `topic`, per partition.
    fn saved_progress(&self, rt: &Runtime, topology: &Topology, topic: &str) -> Vec<i64> {
        let target: &Cluster = &topology.clusters["dst"];
        let saved = rt
            .block_on(progress::load(target, "src", Duration::from_secs(30)))
            .expect("progress readable");
        let mut positions: Vec<(i32, i64)> = saved
            .into_iter()
            .filter(|((t, _), _)| t == topic)
            .map(|((_, p), offset)| (p, offset))
            .collect();
        positions.sort();
        positions.into_iter().map(|(_, offset)| offset).collect()
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn supervisor(topology: Topology, mode: RunMode) -> Supervisor {
    let metrics = Arc::new(ferry_http::Metrics::new(
        ferry_http::MetricsOptions::default(),
    ));
    Supervisor::new(topology, mode, metrics)
}

/// A bounded run, as `ferry run --until caught-up`, that must end by itself.
fn run_until_caught_up(rt: &Runtime, topology: Topology) -> Result<(), EngineError> {
    rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(90),
            supervisor(topology, RunMode::UntilCaughtUp).run(CancellationToken::new()),
        )
        .await
        .expect("the bounded run ends by itself")
    })
}

#[test]
fn a_bounded_run_copies_every_record_in_order_and_saves_where_each_partition_ended() {
    let clusters = Clusters::start(&[("orders", 3)]);
    let topology = clusters.topology(&["orders"], true);
    clusters.produce("orders", 3, 0, 400);
    let rt = runtime();

    run_until_caught_up(&rt, topology.clone()).expect("the run succeeds");

    clusters.assert_copied("orders", 1_200);
    assert_eq!(
        clusters.saved_progress(&rt, &topology, "orders"),
        vec![400, 400, 400],
        "the saved progress is the next offset to copy of each partition"
    );
}

#[test]
fn a_second_run_resumes_from_the_saved_progress_and_copies_nothing_twice() {
    let clusters = Clusters::start(&[("orders", 2)]);
    let topology = clusters.topology(&["orders"], true);
    let rt = runtime();
    clusters.produce("orders", 2, 0, 300);
    run_until_caught_up(&rt, topology.clone()).expect("the first run succeeds");

    // start_from = "earliest" would copy the first 300 again: only the
    // saved progress makes the second run start after them.
    clusters.produce("orders", 2, 300, 200);
    run_until_caught_up(&rt, topology.clone()).expect("the second run succeeds");

    clusters.assert_copied("orders", 1_000);
    assert_eq!(
        clusters.saved_progress(&rt, &topology, "orders"),
        vec![500, 500]
    );
}

#[test]
fn a_reload_adds_a_topic_in_place_and_a_disabled_flow_drains_and_saves_its_progress() {
    let clusters = Clusters::start(&[("orders", 2), ("payments", 2)]);
    let only_orders = clusters.topology(&["orders"], true);
    let rt = runtime();
    let _entered = rt.enter();
    let cancel = CancellationToken::new();
    let mut engine = supervisor(only_orders.clone(), RunMode::Continuous);
    rt.block_on(engine.restore_cut_over(&cancel))
        .expect("cut-over state readable");
    engine.start(&cancel).expect("flows start");

    clusters.produce("orders", 2, 0, 250);
    clusters.produce("payments", 2, 0, 150);
    wait_for("orders on the target", Duration::from_secs(60), || {
        (clusters.copied("orders") == 500).then_some(())
    });

    let both = clusters.topology(&["orders", "payments"], true);
    let summary = rt
        .block_on(engine.reload(both, &cancel))
        .expect("reload accepted");
    let flow = only_orders.flows[0].id();
    assert_eq!(summary.refiltered, vec![flow.clone()], "{summary:?}");
    assert!(summary.restarted.is_empty(), "{summary:?}");
    wait_for("payments on the target", Duration::from_secs(60), || {
        (clusters.copied("payments") == 300).then_some(())
    });

    // More records, then the flow is switched off: its drain must persist
    // where every partition got to, acknowledged records included.
    clusters.produce("orders", 2, 250, 50);
    wait_for(
        "the new orders on the target",
        Duration::from_secs(60),
        || (clusters.copied("orders") == 600).then_some(()),
    );
    let disabled = clusters.topology(&["orders", "payments"], false);
    let summary = rt
        .block_on(engine.reload(disabled.clone(), &cancel))
        .expect("reload accepted");
    assert_eq!(summary.stopped, vec![flow], "{summary:?}");
    assert!(
        engine.status().flows().is_empty(),
        "the stopped flow left /status"
    );

    assert_eq!(
        clusters.saved_progress(&rt, &disabled, "orders"),
        vec![300, 300]
    );
    assert_eq!(
        clusters.saved_progress(&rt, &disabled, "payments"),
        vec![150, 150]
    );
    clusters.assert_copied("orders", 600);
    clusters.assert_copied("payments", 300);
    cancel.cancel();
    rt.block_on(engine.wait()).expect("clean stop");
}

#[test]
fn a_target_topic_refused_for_good_ends_a_bounded_run_naming_cluster_topic_and_cause() {
    let clusters = Clusters::start(&[("locked", 2)]);
    clusters.produce("locked", 2, 0, 10);
    clusters
        .target
        .cluster()
        .topic_error(
            "src.locked",
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let topology = clusters.topology(&["locked"], true);
    let rt = runtime();

    let error = run_until_caught_up(&rt, topology).expect_err("the run fails");

    assert!(error.is_fatal(), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("cluster dst, topic src.locked"), "{text}");
    assert!(text.to_lowercase().contains("authoriz"), "{text}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "the client's error is kept as the source: {error:?}"
    );
}

/// A bounded run gets here only after creating its internal topics, which
/// the mock cannot (no CreateTopics): so the load is exercised on its own.
#[test]
fn saved_progress_the_target_refuses_to_show_is_a_fatal_error_not_an_empty_start() {
    let clusters = Clusters::start(&[("orders", 1)]);
    clusters
        .target
        .cluster()
        .topic_error(
            PROGRESS_TOPIC,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        )
        .unwrap();
    let topology = clusters.topology(&["orders"], true);
    let rt = runtime();

    let error = rt
        .block_on(progress::load(
            &topology.clusters["dst"],
            "src",
            Duration::from_secs(30),
        ))
        .expect_err("a refused progress topic is not read as empty");

    assert!(error.is_fatal(), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("cluster dst, topic {PROGRESS_TOPIC}")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("authoriz"), "{text}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "the client's error is kept as the source: {error:?}"
    );
}
