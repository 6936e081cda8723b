//! Retriable errors injected by librdkafka's mock cluster: a coordinator
//! still loading its offsets (as on a broker that has just started) fails a
//! plain handle's call, and a handle made `with_retry` rides it out.

use std::time::Duration;

use ferry_admin::{Admin, ClientConfig, ErrorCode, RetryPolicy};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const LOADING: RDKafkaRespErr = RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;

fn admin(mock: &MockCluster<'_, DefaultProducerContext>) -> Admin {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", mock.bootstrap_servers());
    Admin::with_timeout(&config, Duration::from_secs(10)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loading_coordinator_fails_once_but_is_retried_with_a_policy() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("t", 1, 1).expect("mock topic");

    mock.request_errors(RDKafkaApiKey::OffsetFetch, &[LOADING]);
    let err = admin(&mock)
        .list_consumer_group_offsets("g", None)
        .await
        .expect_err("the injected error reaches a plain handle");
    assert_eq!(
        err.code(),
        Some(ErrorCode::CoordinatorLoadInProgress),
        "{err}"
    );
    assert!(err.is_retriable(), "{err}");

    mock.request_errors(RDKafkaApiKey::OffsetFetch, &[LOADING, LOADING, LOADING]);
    let policy = RetryPolicy {
        deadline: Duration::from_secs(30),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    let offsets = admin(&mock)
        .with_retry(policy)
        .list_consumer_group_offsets("g", None)
        .await
        .expect("retried past three loading answers");
    assert!(offsets.is_empty(), "{offsets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_loading_past_the_deadline_is_reported() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.request_errors(RDKafkaApiKey::OffsetFetch, &[LOADING; 50]);
    let policy = RetryPolicy {
        deadline: Duration::from_millis(300),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
    };
    let err = admin(&mock)
        .with_retry(policy)
        .list_consumer_group_offsets("g", None)
        .await
        .expect_err("still loading at the deadline");
    assert_eq!(
        err.code(),
        Some(ErrorCode::CoordinatorLoadInProgress),
        "{err}"
    );
}
