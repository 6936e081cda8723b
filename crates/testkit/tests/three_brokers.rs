//! A three-node cluster whose brokers the test kills and restarts.

use ferry_testkit::data::{self, SequenceSpec};
use ferry_testkit::{proc, KafkaOptions};

#[test]
fn acknowledged_writes_survive_a_leader_crash_and_a_restart() {
    let cluster = KafkaOptions::new().brokers(3).start().unwrap();
    assert_eq!(cluster.broker_ids(), [1, 2, 3]);
    let config = cluster.client_config();
    let topic = data::unique_name("crash");
    // -1: the broker default, which a three-node cluster sets to 3.
    data::create_topic(&config, &topic, 1, -1, &[]).unwrap();

    let spec = SequenceSpec::new(1, 200);
    let batch = |first_seq| SequenceSpec {
        first_seq,
        records_per_partition: 100,
        ..spec.clone()
    };
    data::produce_sequence(&config, &topic, &batch(0)).unwrap();

    // A broker JVM is a real, measurable process.
    let leader = data::partition_leader(&config, &topic, 0).unwrap();
    let pid = cluster.broker_pid(leader).unwrap();
    let stats = proc::sample(pid).unwrap();
    assert!(stats.peak_rss_bytes > 50 << 20, "{stats:?}");

    // Crash the leader: with two of three replicas left, min.insync.replicas=2
    // still accepts acks=all writes, and nothing acknowledged is lost.
    cluster.kill_broker(leader).unwrap();
    assert!(cluster.broker_pid(leader).is_none());
    assert!(cluster.kill_broker(leader).is_err(), "already dead");
    data::produce_sequence(&config, &topic, &batch(100)).unwrap();
    let new_leader = data::partition_leader(&config, &topic, 0).unwrap();
    assert_ne!(new_leader, leader);

    let read = data::read_partition(&config, &topic, 0, 0, None).unwrap();
    let seqs: Vec<u64> = read.iter().map(|r| r.sequence().unwrap().seq).collect();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    for record in &read {
        let mut expected = spec.record(0, record.sequence().unwrap().seq);
        expected.offset = record.offset;
        assert_eq!(record, &expected);
    }

    // Bring it back, then stop another broker gracefully.
    cluster.start_broker(leader).unwrap();
    assert!(cluster.start_broker(leader).is_err(), "already running");
    let other = cluster
        .broker_ids()
        .into_iter()
        .find(|id| *id != leader)
        .unwrap();
    cluster.stop_broker(other).unwrap();
    data::produce_sequence(&config, &topic, &batch(200)).unwrap();
    assert_eq!(data::end_offsets(&config, &topic).unwrap(), vec![300]);
    assert!(cluster.broker_log_tail(leader, 5).lines().count() <= 5);
}
