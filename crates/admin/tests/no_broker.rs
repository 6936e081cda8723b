//! Behaviour that needs no real broker: librdkafka's in-process mock cluster
//! (which lacks several admin APIs, standing in for an old broker) and an
//! address where nothing listens.

use std::time::{Duration, Instant};

use ferry_admin::{Admin, AdminError, ClientConfig, ConfigChange, Resource};
use rdkafka::mocking::MockCluster;
use rdkafka::types::RDKafkaApiKey;

/// librdkafka's mock cluster with an API switched off stands in for a broker
/// that lacks it. (IncrementalAlterConfigs itself cannot be tried this way:
/// the mock names no valid controller, so controller-bound requests only time
/// out; its result goes through the same classification as these.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_without_the_api_is_reported_as_unsupported() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("t", 1, 1).expect("mock topic");
    mock.apiversion(RDKafkaApiKey::ListGroups, None, None)
        .expect("disable ListGroups");
    mock.apiversion(RDKafkaApiKey::OffsetCommit, None, None)
        .expect("disable OffsetCommit");
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", mock.bootstrap_servers());
    let admin = Admin::with_timeout(&config, Duration::from_secs(10)).unwrap();

    let err = admin
        .list_consumer_groups()
        .await
        .expect_err("the mock broker has no ListGroups");
    assert!(err.is_unsupported(), "{err:?}");

    let err = admin
        .alter_consumer_group_offsets("g", &[("t", 0, 1)])
        .await
        .expect_err("the mock broker has no OffsetCommit");
    assert!(err.is_unsupported(), "{err:?}");
    match &err {
        AdminError::UnsupportedVersion { resource, .. } => {
            assert_eq!(resource, &Resource::Group("g".into()))
        }
        other => panic!("{other:?}"),
    }
    drop(admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_times_out_with_the_configured_timeout() {
    // Port 9 (discard) on loopback: nothing listens there.
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", "127.0.0.1:9");
    let admin = Admin::with_timeout(&config, Duration::from_secs(2)).unwrap();

    let started = Instant::now();
    let err = admin.list_consumer_groups().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let err = admin
        .alter_consumer_group_offsets("g", &[("t", 0, 1)])
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(err.to_string().contains("'g'"), "{err}");

    let err = admin.topic_metadata().await.unwrap_err();
    assert!(err.is_timeout() || err.code().is_some(), "{err:?}");
}

#[test]
fn bad_arguments_are_rejected_up_front() {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", "127.0.0.1:9");
    assert!(matches!(
        Admin::with_timeout(&config, Duration::ZERO),
        Err(AdminError::InvalidArgument { .. })
    ));
    let mut bad = ClientConfig::new();
    bad.set("no.such.property", "1");
    assert!(matches!(Admin::new(&bad), Err(AdminError::Client(_))));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = Admin::new(&config).unwrap();
    rt.block_on(async {
        let err = admin
            .incremental_alter_configs("t\0x", &[ConfigChange::delete("a")])
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::InvalidArgument { .. }), "{err:?}");
        let err = admin
            .list_consumer_group_offsets("g", Some(&[("t", -1)]))
            .await
            .unwrap_err();
        assert!(matches!(err, AdminError::InvalidArgument { .. }), "{err:?}");
    });
}
