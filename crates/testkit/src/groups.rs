//! Consumer groups the way applications use them: reading and committing
//! offsets through the group coordinator, consuming from committed offsets
//! after a failover, and members that keep a group active.
//!
//! These helpers assert as they go: a read that fails fails the test with
//! the cause, it never stands in for "no offsets".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::data::Record;
use crate::KafkaCluster;

/// A consumer handle of `group` that never joins it: used to read and
/// commit the group's offsets the way clients do (OffsetFetch/OffsetCommit
/// through the group coordinator).
///
/// Why not the admin API: librdkafka 2.12's admin ListConsumerGroupOffsets
/// dereferences a null consumer-group handle when the broker answers
/// NOT_COORDINATOR (confluentinc/librdkafka#5040), which a freshly started
/// cluster does while `__consumer_offsets` loads; a consumer handle has a
/// group, so the same answer just re-queries the coordinator.
fn offsets_handle(cluster: &KafkaCluster, group: &str) -> BaseConsumer {
    cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Retries what a fresh cluster may refuse for a while (the group
/// coordinator is still loading `__consumer_offsets`), then fails the test
/// with the last error.
fn retrying<T>(what: &str, mut attempt: impl FnMut() -> Result<T, KafkaError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match attempt() {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// A group's committed offsets for `topic`, by partition. Partitions without
/// a committed offset are absent, and so is everything when `topic` does not
/// exist on the cluster (its metadata lists every topic, so a failed read
/// is told apart from a missing topic and fails the test).
pub fn group_offsets(cluster: &KafkaCluster, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let topics = crate::inspect::topic_partition_counts(&cluster.client_config())
        .unwrap_or_else(|e| panic!("listing topics to read group {group}'s offsets: {e}"));
    let Some(&partitions) = topics.get(topic) else {
        return BTreeMap::new();
    };
    let consumer = offsets_handle(cluster, group);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition(topic, p);
    }
    let committed = retrying(&format!("reading the offsets of group {group}"), || {
        consumer.committed_offsets(tpl.clone(), Duration::from_secs(15))
    });
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Commits offsets for a group without consuming (the group must be idle).
pub fn commit_group_offsets(cluster: &KafkaCluster, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer = offsets_handle(cluster, group);
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in offsets {
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .expect("a valid offset");
    }
    retrying(&format!("committing offsets of group {group}"), || {
        consumer.commit(&tpl, CommitMode::Sync)
    });
}

/// The group coordinator of a freshly started cluster is not ready for a
/// moment (`__consumer_offsets` is being created and loaded); librdkafka
/// retries on its own and reports it on the way.
fn coordinator_not_ready(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e,
        KafkaError::MessageConsumption(
            C::NotCoordinator | C::CoordinatorLoadInProgress | C::CoordinatorNotAvailable
        )
    )
}

fn group_consumer(cluster: &KafkaCluster, group: &str, offset_reset: &str) -> BaseConsumer {
    cluster
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "20")
        .set("auto.offset.reset", offset_reset)
        .create()
        .expect("consumer")
}

fn owned(msg: &BorrowedMessage<'_>) -> Record {
    Record {
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers: Vec::new(),
        timestamp: msg.timestamp(),
    }
}

/// A consumer of `group` reads `counts[p]` records of each listed partition
/// of `topic` (from the group's committed offset, else the beginning) and
/// commits like a real consumer: the offset after the last record it
/// processed. Returns the records read and the committed offsets.
pub fn consume_and_commit(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    counts: &[(i32, usize)],
) -> (Vec<Record>, BTreeMap<i32, i64>) {
    let consumer = group_consumer(cluster, group, "earliest");
    // The committed offsets are read (and retried while a fresh cluster's
    // coordinator loads) here, not by librdkafka's own fetch.
    let stored = group_offsets(cluster, group, topic);
    let mut tpl = TopicPartitionList::new();
    for (p, _) in counts {
        let start = stored
            .get(p)
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(topic, *p, start)
            .expect("a valid offset");
    }
    consumer.assign(&tpl).expect("assign");
    let mut read: BTreeMap<i32, Vec<Record>> =
        counts.iter().map(|(p, _)| (*p, Vec::new())).collect();
    let want: BTreeMap<i32, usize> = counts.iter().copied().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while read.iter().any(|(p, r)| r.len() < want[p]) {
        assert!(
            Instant::now() < deadline,
            "{group} could not read {counts:?} from {topic}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let records = read
                    .get_mut(&msg.partition())
                    .expect("only assigned partitions");
                if records.len() < want[&msg.partition()] {
                    records.push(owned(&msg));
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) if coordinator_not_ready(&e) => {}
            Some(Err(e)) => panic!("{group} reading {topic}: {e}"),
        }
    }
    let mut commit = TopicPartitionList::new();
    let mut committed = BTreeMap::new();
    for (p, records) in &read {
        let next = records
            .last()
            .map(|r| r.offset + 1)
            .expect("read something");
        commit
            .add_partition_offset(topic, *p, Offset::Offset(next))
            .expect("a valid offset");
        committed.insert(*p, next);
    }
    consumer.commit(&commit, CommitMode::Sync).expect("commit");
    (read.into_values().flatten().collect(), committed)
}

/// What a consumer of `group` reads from `topic` after failing over: from
/// the group's committed offsets (an error if a partition has none, rather
/// than a silent reset), to the end of each listed partition.
pub fn consume_from_committed(
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<Record> {
    let consumer = group_consumer(cluster, group, "error");
    let stored = group_offsets(cluster, group, topic);
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let Some(start) = stored.get(p) else {
            panic!("{group} has no committed offset for {topic}/{p} on the target: {stored:?}");
        };
        tpl.add_partition_offset(topic, *p, Offset::Offset(*start))
            .expect("a valid offset");
    }
    consumer.assign(&tpl).expect("assign");
    let mut at_end = BTreeSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while at_end.len() < partitions.len() {
        assert!(
            Instant::now() < deadline,
            "{group} did not reach the end of {topic}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                at_end.remove(&msg.partition());
                out.push(owned(&msg));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            None => {}
            Some(Err(e)) if coordinator_not_ready(&e) => {}
            Some(Err(e)) => panic!("{group} failing over to {topic}: {e}"),
        }
    }
    out
}

/// A member that keeps `group` active on a cluster (subscribed to `topic`,
/// polling) until dropped.
pub struct ActiveMember {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActiveMember {
    /// Joins `group`, returning once the member has an assignment.
    pub fn join(cluster: &KafkaCluster, group: &str, topic: &str) -> ActiveMember {
        let consumer: BaseConsumer = cluster
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut told = false;
                while !stop.load(Ordering::Relaxed) {
                    let _ = consumer.poll(Duration::from_millis(100));
                    if !told
                        && consumer
                            .assignment()
                            .map(|a| a.count() > 0)
                            .unwrap_or(false)
                    {
                        let _ = ready_tx.send(());
                        told = true;
                    }
                }
                consumer.unsubscribe();
            })
        };
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the member joined and got an assignment");
        ActiveMember {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ActiveMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// MirrorMaker 2's own client, `RemoteClusterUtils.translateOffsets`, run as
/// a Java single-file program against the target with
/// `replication.policy.separator` = `separator`: remote topic-partition →
/// translated offset.
pub fn remote_cluster_utils_translate(
    target: &KafkaCluster,
    source_alias: &str,
    separator: &str,
    group: &str,
) -> BTreeMap<(String, i32), i64> {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("Translate.java");
    std::fs::write(
        &program,
        r#"
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.mirror.RemoteClusterUtils;

public class Translate {
    public static void main(String[] args) throws Exception {
        Map<String, Object> props = new HashMap<>();
        props.put("bootstrap.servers", args[0]);
        props.put("replication.policy.separator", args[3]);
        Map<TopicPartition, OffsetAndMetadata> offsets =
            RemoteClusterUtils.translateOffsets(props, args[1], args[2], Duration.ofSeconds(30));
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
            System.out.println("OFFSET " + e.getKey().topic() + " " + e.getKey().partition() + " " + e.getValue().offset());
        }
    }
}
"#,
    )
    .unwrap();
    let home = crate::kafka::KafkaHome::locate().expect("Kafka jars installed");
    let out = home
        .java(&["-Xmx256m"], program.to_str().unwrap())
        .args([target.bootstrap_servers(), source_alias, group, separator])
        .output()
        .expect("java runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "RemoteClusterUtils failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.strip_prefix("OFFSET ")?.split(' ');
            Some((
                (it.next()?.to_string(), it.next()?.parse().ok()?),
                it.next()?.parse().ok()?,
            ))
        })
        .collect()
}
