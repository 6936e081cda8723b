//! Commands ride out retriable Kafka errors, as the daemon does: a
//! coordinator still loading its offsets (a broker that has just started)
//! is injected with librdkafka's mock cluster, which the real `ferry`
//! binary reaches over TCP.

use ferry_testkit::daemon::Ferry;
use ferry_testkit::mock::MockKafka;
use ferry_testkit::topology::one_flow;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));

#[test]
fn offsets_retries_a_loading_coordinator_and_says_so() {
    let (source, target) = (MockKafka::start(1).unwrap(), MockKafka::start(1).unwrap());
    source.create_topic("orders", 1, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("topology.toml");
    std::fs::write(
        &topology,
        format!(
            "[clusters.src]\nbootstrap_servers = \"{}\"\n[clusters.dst]\nbootstrap_servers = \"{}\"\n{}\n[log]\nlevel = \"warn\"\n",
            source.bootstrap_servers(),
            target.bootstrap_servers(),
            one_flow("")
        ),
    )
    .unwrap();
    let loading = RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    source
        .cluster()
        .request_errors(RDKafkaApiKey::OffsetFetch, &[loading, loading, loading]);
    let (code, stdout, stderr) = FERRY.output(&[
        "offsets",
        "-c",
        topology.to_str().unwrap(),
        "--flow",
        "src->dst",
        "--group",
        "billing",
    ]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ListConsumerGroupOffsets: retriable error, retry"))
        .collect();
    assert_eq!(retries.len(), 3, "one line per retry:\n{stderr}");
    assert!(retries[0].contains("CoordinatorLoadInProgress"), "{stderr}");
}
