//! librdkafka's mock cluster through the same data helpers.

use ferry_testkit::data::{self, SequenceSpec};
use ferry_testkit::mock::MockKafka;

#[test]
fn mock_cluster_round_trip_and_broker_outage() {
    let mock = MockKafka::start(3).unwrap();
    let config = mock.client_config();
    assert_eq!(
        config.get("bootstrap.servers"),
        Some(mock.bootstrap_servers().as_str())
    );
    mock.create_topic("orders", 2, 3).unwrap();
    let spec = SequenceSpec::new(2, 20);
    let produced = data::produce_sequence(&config, "orders", &spec).unwrap();
    let read = data::read_partition(&config, "orders", 1, 0, None).unwrap();
    let expected: Vec<_> = produced.into_iter().filter(|r| r.partition == 1).collect();
    assert_eq!(read, expected);

    // With every broker down, producing fails within the message timeout.
    for broker in 1..=3 {
        mock.cluster().broker_down(broker).unwrap();
    }
    let mut impatient = config.clone();
    impatient.set("message.timeout.ms", "1500");
    let more = SequenceSpec {
        first_seq: 20,
        ..spec.clone()
    };
    let err = data::produce_sequence(&impatient, "orders", &more).unwrap_err();
    assert!(err.to_string().contains("orders"), "{err}");

    for broker in 1..=3 {
        mock.cluster().broker_up(broker).unwrap();
    }
    let more = SequenceSpec {
        first_seq: 40,
        ..spec
    };
    data::produce_sequence(&config, "orders", &more).unwrap();
}
