//! `ferry-admin` against a real Apache Kafka broker (the testkit's shared
//! cluster, or the one named by `FERRY_TEST_KAFKA_SOURCE`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_admin::{
    Admin, AdminError, ClientConfig, ConfigChange, ConfigEntry, ConfigSource, GroupDescription,
    GroupOffset, GroupState, NewTopicSpec, Resource,
};
use ferry_testkit::data::unique_name;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(60);

fn config() -> ClientConfig {
    ferry_testkit::kafka::shared()
        .expect("the shared Kafka cluster must start")
        .client_config()
}

async fn setup() -> (ClientConfig, Admin) {
    let config = tokio::task::spawn_blocking(config).await.unwrap();
    let admin = Admin::new(&config).expect("admin client");
    (config, admin)
}

async fn new_topic(admin: &Admin, prefix: &str, partitions: i32) -> String {
    let name = unique_name(prefix);
    let results = admin
        .create_topics(&[NewTopicSpec::new(&name, partitions)])
        .await
        .expect("CreateTopics request");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().expect("topic created"), &name);
    name
}

/// A consumer-group member on its own thread: subscribes, waits for an
/// assignment, commits `commits`, then keeps polling until `leave`.
struct Member {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    async fn join(
        config: &ClientConfig,
        group: &str,
        topic: &str,
        commits: &[(i32, i64)],
    ) -> Member {
        let mut cfg = config.clone();
        cfg.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
        let topic = topic.to_string();
        let commits = commits.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let consumer: BaseConsumer = cfg.create().expect("consumer");
            consumer.subscribe(&[&topic]).expect("subscribe");
            let mut ready_tx = Some(ready_tx);
            while !thread_stop.load(Ordering::Relaxed) {
                if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                    eprintln!("consumer error: {e}");
                }
                if ready_tx.is_some() && consumer.assignment().map_or(0, |a| a.count()) > 0 {
                    if !commits.is_empty() {
                        let mut tpl = TopicPartitionList::new();
                        for (p, o) in &commits {
                            tpl.add_partition_offset(&topic, *p, Offset::Offset(*o))
                                .unwrap();
                        }
                        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
                    }
                    let _ = ready_tx.take().unwrap().send(());
                }
            }
            // Dropping the consumer closes it: it leaves the group.
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("the consumer got no assignment in time")
            .expect("the consumer thread died");
        Member {
            stop,
            thread: Some(thread),
        }
    }

    async fn leave(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().expect("consumer thread panicked"))
            .await
            .unwrap();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

async fn describe_one(admin: &Admin, group: &str) -> GroupDescription {
    let mut d = admin
        .describe_consumer_groups(&[group])
        .await
        .expect("DescribeConsumerGroups");
    assert_eq!(d.len(), 1, "{d:?}");
    d.remove(0)
}

async fn wait_for_state(admin: &Admin, group: &str, state: GroupState) -> GroupDescription {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let d = describe_one(admin, group).await;
        if d.state == state {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group {group} never reached {state:?}: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sorted(mut offsets: Vec<GroupOffset>) -> Vec<(String, i32, Option<i64>)> {
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    offsets
        .into_iter()
        .map(|o| (o.topic, o.partition, o.offset))
        .collect()
}

fn entry<'a>(entries: &'a [ConfigEntry], key: &str) -> &'a ConfigEntry {
    entries
        .iter()
        .find(|e| e.name == key)
        .unwrap_or_else(|| panic!("no config entry {key}"))
}

/// Config changes reach the broker that answers DescribeConfigs through
/// metadata propagation, a moment after the controller accepted them.
async fn wait_for_configs(
    admin: &Admin,
    topic: &str,
    what: &str,
    done: impl Fn(&[ConfigEntry]) -> bool,
) -> Vec<ConfigEntry> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // Right after creation the answering broker may not know the topic.
        let last = match admin.describe_topic_configs(topic).await {
            Ok(entries) if done(&entries) => return entries,
            Ok(_) => "not yet".to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic}: never saw {what} ({last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_group_is_listed_described_and_its_offsets_listed() {
    let (config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-empty", 2).await;
    let group = unique_name("adm-empty-g");

    let member = Member::join(&config, &group, &topic, &[(0, 5), (1, 7)]).await;
    member.leave().await;

    let d = wait_for_state(&admin, &group, GroupState::Empty).await;
    assert_eq!(d.member_count, 0);
    assert!(d.members.is_empty());
    assert!(d.error.is_none(), "{d:?}");
    assert!(!d.is_simple);

    let listing = admin
        .list_consumer_groups()
        .await
        .expect("ListConsumerGroups");
    let g = listing
        .iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("{group} not listed in {listing:?}"));
    assert_eq!(g.state, GroupState::Empty);
    assert!(!g.is_simple);

    let all = admin
        .list_consumer_group_offsets(&group, None)
        .await
        .expect("ListConsumerGroupOffsets");
    assert_eq!(
        sorted(all),
        vec![(topic.clone(), 0, Some(5)), (topic.clone(), 1, Some(7))]
    );

    let one = admin
        .list_consumer_group_offsets(&group, Some(&[(topic.as_str(), 1)]))
        .await
        .expect("ListConsumerGroupOffsets for one partition");
    assert_eq!(sorted(one), vec![(topic.clone(), 1, Some(7))]);

    // A group that never committed anything has no offsets.
    let none = admin
        .list_consumer_group_offsets(&unique_name("adm-nobody"), None)
        .await
        .expect("ListConsumerGroupOffsets of an unknown group");
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stable_group_is_described_with_its_member() {
    let (config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-stable", 2).await;
    let group = unique_name("adm-stable-g");

    let member = Member::join(&config, &group, &topic, &[]).await;
    let d = wait_for_state(&admin, &group, GroupState::Stable).await;
    assert_eq!(d.member_count, 1);
    assert_eq!(d.members.len(), 1);
    let mut assigned = d.members[0].assignment.clone();
    assigned.sort();
    assert_eq!(assigned, vec![(topic.clone(), 0), (topic.clone(), 1)]);
    assert!(d.coordinator.is_some());

    let listing = admin
        .list_consumer_groups()
        .await
        .expect("ListConsumerGroups");
    let g = listing
        .iter()
        .find(|g| g.group_id == group)
        .expect("listed");
    assert_eq!(g.state, GroupState::Stable);
    member.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describing_an_unknown_group_reports_it() {
    let (_config, admin) = setup().await;
    let group = unique_name("adm-ghost");
    let d = describe_one(&admin, &group).await;
    // Brokers either say GROUP_ID_NOT_FOUND or describe a Dead group.
    match &d.error {
        Some(AdminError::GroupNotFound { group: g, .. }) => assert_eq!(g, &group),
        Some(other) => panic!("unexpected error {other}"),
        None => assert_eq!(d.state, GroupState::Dead, "{d:?}"),
    }
    assert!(admin
        .describe_consumer_groups(&[])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_offsets_of_an_empty_group_and_read_them_back() {
    let (config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-alter", 2).await;
    let group = unique_name("adm-alter-g");

    let member = Member::join(&config, &group, &topic, &[(0, 5), (1, 7)]).await;
    member.leave().await;
    wait_for_state(&admin, &group, GroupState::Empty).await;

    admin
        .alter_consumer_group_offsets(&group, &[(&topic, 0, 42), (&topic, 1, 0)])
        .await
        .expect("AlterConsumerGroupOffsets on an empty group");
    let back = admin
        .list_consumer_group_offsets(&group, None)
        .await
        .unwrap();
    assert_eq!(
        sorted(back),
        vec![(topic.clone(), 0, Some(42)), (topic.clone(), 1, Some(0))]
    );

    // A group that does not exist yet is created by the commit.
    let fresh = unique_name("adm-alter-fresh");
    admin
        .alter_consumer_group_offsets(&fresh, &[(&topic, 1, 3)])
        .await
        .expect("AlterConsumerGroupOffsets on a new group");
    let back = admin
        .list_consumer_group_offsets(&fresh, None)
        .await
        .unwrap();
    assert_eq!(sorted(back), vec![(topic.clone(), 1, Some(3))]);

    // The same read as a map of what is committed: a partition without a
    // commit is absent, and a group that does not exist has committed
    // nothing.
    let parts = [(topic.as_str(), 0), (topic.as_str(), 1)];
    let committed = admin.committed_offsets(&fresh, &parts).await.unwrap();
    assert_eq!(
        committed,
        std::collections::HashMap::from([((topic.clone(), 1), 3)])
    );
    let nobody = admin
        .committed_offsets(&unique_name("adm-alter-nobody"), &parts)
        .await
        .unwrap();
    assert!(nobody.is_empty(), "{nobody:?}");

    // Bad input is refused before anything is sent, naming the partition.
    let err = admin
        .alter_consumer_group_offsets(&group, &[(&topic, 0, -5)])
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains(&format!("{topic}/0")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_offsets_of_an_active_group_is_group_not_empty() {
    let (config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-active", 1).await;
    let group = unique_name("adm-active-g");

    let member = Member::join(&config, &group, &topic, &[(0, 1)]).await;
    wait_for_state(&admin, &group, GroupState::Stable).await;

    let err = admin
        .alter_consumer_group_offsets(&group, &[(&topic, 0, 100)])
        .await
        .expect_err("the broker must refuse to alter an active group's offsets");
    match &err {
        AdminError::GroupNotEmpty { group: g, .. } => assert_eq!(g, &group),
        other => panic!("expected GroupNotEmpty, got {other:?}"),
    }
    assert!(err.to_string().contains(&group), "{err}");

    // Deleting an active group is refused the same way.
    let deleted = admin.delete_consumer_groups(&[&group]).await.unwrap();
    assert!(
        matches!(&deleted[0], Err(AdminError::GroupNotEmpty { .. })),
        "{deleted:?}"
    );

    member.leave().await;
    // The offset is untouched.
    let back = admin
        .list_consumer_group_offsets(&group, None)
        .await
        .unwrap();
    assert_eq!(sorted(back), vec![(topic.clone(), 0, Some(1))]);

    wait_for_state(&admin, &group, GroupState::Empty).await;
    let deleted = admin.delete_consumer_groups(&[&group]).await.unwrap();
    assert_eq!(deleted[0].as_ref().unwrap(), &group);
    let deleted = admin.delete_consumer_groups(&[&group]).await.unwrap();
    assert!(
        matches!(&deleted[0], Err(AdminError::GroupNotFound { .. })),
        "{deleted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_sets_and_deletes() {
    let (_config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-config", 1).await;

    admin
        .incremental_alter_configs(
            &topic,
            &[
                ConfigChange::set("retention.ms", "123456"),
                ConfigChange::set("max.message.bytes", "200000"),
            ],
        )
        .await
        .expect("IncrementalAlterConfigs set");
    let entries = wait_for_configs(&admin, &topic, "retention.ms set", |e| {
        entry(e, "retention.ms").value.as_deref() == Some("123456")
    })
    .await;
    let retention = entry(&entries, "retention.ms");
    assert_eq!(retention.value.as_deref(), Some("123456"));
    assert!(!retention.is_default);
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert_eq!(
        entry(&entries, "max.message.bytes").value.as_deref(),
        Some("200000")
    );

    admin
        .incremental_alter_configs(&topic, &[ConfigChange::delete("retention.ms")])
        .await
        .expect("IncrementalAlterConfigs delete");
    let entries = wait_for_configs(&admin, &topic, "retention.ms deleted", |e| {
        entry(e, "retention.ms").is_default
    })
    .await;
    let retention = entry(&entries, "retention.ms");
    assert!(retention.is_default, "{retention:?}");
    assert_ne!(retention.source, ConfigSource::DynamicTopic);
    assert_ne!(retention.value.as_deref(), Some("123456"));
    // Incremental: the other key is untouched.
    assert_eq!(
        entry(&entries, "max.message.bytes").value.as_deref(),
        Some("200000")
    );

    // A value the broker rejects: the error names the topic and key.
    let err = admin
        .incremental_alter_configs(&topic, &[ConfigChange::set("retention.ms", "soon")])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains("retention.ms"),
        "{text}"
    );
    assert!(err.code().is_some(), "{err:?}");

    // Unknown topic.
    let ghost = unique_name("adm-ghost-topic");
    let err = admin.describe_topic_configs(&ghost).await.unwrap_err();
    assert!(
        matches!(&err, AdminError::UnknownTopicOrPartition { resource: Resource::Topic(t), .. } if t == &ghost),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_twice_reports_already_exists() {
    let (_config, admin) = setup().await;
    let first = unique_name("adm-twice");
    let second = unique_name("adm-twice-b");
    let spec = NewTopicSpec::new(&first, 2).config("cleanup.policy", "compact");

    let r = admin
        .create_topics(std::slice::from_ref(&spec))
        .await
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &first);

    let r = admin
        .create_topics(&[spec, NewTopicSpec::new(&second, 1).replication(1)])
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    let mut again = None;
    let mut created = None;
    for res in r {
        match res {
            Err(AdminError::TopicAlreadyExists { topic, .. }) => again = Some(topic),
            Ok(name) => created = Some(name),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(again.as_deref(), Some(first.as_str()));
    assert_eq!(created.as_deref(), Some(second.as_str()));

    wait_for_configs(&admin, &first, "cleanup.policy=compact", |e| {
        entry(e, "cleanup.policy").value.as_deref() == Some("compact")
    })
    .await;

    let deleted = admin.delete_topics(&[&first, &second]).await.unwrap();
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    let deleted = admin.delete_topics(&[&first]).await.unwrap();
    assert!(
        matches!(&deleted[0], Err(AdminError::UnknownTopicOrPartition { .. })),
        "{deleted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_a_topic() {
    let (_config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-grow", 1).await;

    admin
        .create_partitions(&topic, 3)
        .await
        .expect("CreatePartitions");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let md: BTreeMap<String, usize> = admin.topic_metadata().await.unwrap();
        if md.get(&topic) == Some(&3) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{topic}: {:?}",
            md.get(&topic)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Shrinking is refused, naming the topic.
    let err = admin.create_partitions(&topic, 2).await.unwrap_err();
    assert!(err.to_string().contains(&topic), "{err}");
    assert_eq!(
        err.code(),
        Some(ferry_admin::ErrorCode::InvalidPartitions),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_offsets_for_times_and_delete_records() {
    let (config, admin) = setup().await;
    let topic = new_topic(&admin, "adm-records", 1).await;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = now - 60_000;
    {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            let producer: BaseProducer = config.create().unwrap();
            for i in 0..10i64 {
                producer
                    .send(
                        BaseRecord::to(&topic)
                            .partition(0)
                            .key("k")
                            .payload("v")
                            .timestamp(base + i * 1000),
                    )
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
            producer.flush(Duration::from_secs(30)).unwrap();
        })
        .await
        .unwrap();
    }

    let w = admin.watermarks(&topic, 0).await.unwrap();
    assert_eq!((w.low, w.high), (0, 10));

    let found = admin
        .offsets_for_times(&[(&topic, 0, base + 3500)])
        .await
        .unwrap();
    let later = admin
        .offsets_for_times(&[(&topic, 0, now + 3_600_000)])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].topic.as_str(), found[0].partition),
        (topic.as_str(), 0)
    );
    assert_eq!(found[0].offset, Some(4), "{found:?}");
    assert_eq!(later[0].offset, None, "{later:?}");
    // One partition twice is refused before the broker sees it.
    let err = admin
        .offsets_for_times(&[(&topic, 0, base), (&topic, 0, base + 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::InvalidArgument { .. }), "{err:?}");

    let low = admin.delete_records(&[(&topic, 0, 4)]).await.unwrap();
    assert_eq!(low[0].offset, Some(4), "{low:?}");
    let w = admin.watermarks(&topic, 0).await.unwrap();
    assert_eq!((w.low, w.high), (4, 10));

    let err = admin.watermarks(&topic, 7).await.unwrap_err();
    assert!(err.to_string().contains(&format!("{topic}/7")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_are_shared_and_dropping_mid_request_is_safe() {
    let (_config, admin) = setup().await;
    let other = admin.clone_with_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(other.timeout(), Duration::from_secs(10));

    // Start requests and abandon them, then drop every handle: the client
    // must outlive the abandoned requests and be torn down without a crash.
    for _ in 0..5 {
        let fut = other.list_consumer_groups();
        let _ = tokio::time::timeout(Duration::from_millis(1), fut).await;
        let fut = other.describe_topic_configs("adm-does-not-matter");
        let _ = tokio::time::timeout(Duration::from_millis(1), fut).await;
    }
    drop(other);
    // The remaining handle still works.
    admin.list_consumer_groups().await.unwrap();
    drop(admin);
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Without an authorizer the broker answers every ACL call with
/// SECURITY_DISABLED. Creating refuses each ACL on its own (so ACL sync
/// skips and counts them rather than failing). Describing returns no ACLs:
/// librdkafka 2.12 drops DescribeAcls' top-level error, which is why ACL
/// sync never deletes on the word of a source that reports no ACLs at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_calls_on_a_cluster_without_an_authorizer() {
    use ferry_admin::{
        AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
        ErrorCode,
    };
    let (_, admin) = setup().await;
    // Should librdkafka start reporting the error, this fails: then ACL
    // sync can tell "no ACLs" from "cannot say" and its guard can go.
    let described = admin.describe_acls(&AclFilter::default()).await;
    assert_eq!(described.ok(), Some(Vec::new()));
    let acl = AclBinding {
        resource_type: AclResourceType::Topic,
        resource_name: "orders".into(),
        pattern_type: AclPatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    };
    let created = admin
        .create_acls(std::slice::from_ref(&acl))
        .await
        .expect("the request as a whole is answered");
    let refused = created[0].as_ref().expect_err("refused");
    assert_eq!(
        refused.code(),
        Some(ErrorCode::SecurityDisabled),
        "{refused}"
    );
    assert!(refused.to_string().contains("User:alice"), "{refused}");
}
