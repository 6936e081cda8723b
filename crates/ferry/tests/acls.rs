//! ACL sync end to end: two Apache Kafka clusters enforcing ACLs with KRaft's
//! StandardAuthorizer on SCRAM listeners (Ferry is a super user), real
//! clients authenticating as other users. The daemon, `ferry plan`,
//! `plan --apply` and `verify --acls` all run as the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

use ferry_admin::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType, Admin,
};
use ferry_supervisor::acls::AclDiff;
use ferry_testkit::daemon::{stop_daemon, wait_for, Ferry};
use ferry_testkit::data::{self, produce_sequence, unique_name, SequenceSpec};
use ferry_testkit::{KafkaCluster, KafkaOptions};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const FERRY: Ferry = Ferry::at(env!("CARGO_BIN_EXE_ferry"));
const PASSWORD: &str = "acl-test-password";
/// Users other than Ferry's, on both clusters.
const USERS: &[&str] = &["alice", "bob", "carol", "dave", "eve", "frank", "admin"];
const RECORDS: usize = 40;

/// Two clusters that enforce ACLs, started side by side.
fn clusters() -> (KafkaCluster, KafkaCluster) {
    let options = USERS.iter().fold(
        KafkaOptions::new()
            .sasl_scram(true)
            .authorizer(true)
            // Two JVMs starting at once on a loaded machine.
            .start_timeout(Duration::from_secs(180)),
        |o, user| o.scram_user(*user, PASSWORD),
    );
    std::thread::scope(|s| {
        let source = s.spawn(|| options.start().expect("source cluster starts"));
        let target = options.start().expect("target cluster starts");
        (source.join().expect("source thread"), target)
    })
}

fn topology(
    dir: &Path,
    (source, target): (&KafkaCluster, &KafkaCluster),
    naming: &str,
    topic: &str,
    extra: &str,
) -> PathBuf {
    let cluster = |name: &str, c: &KafkaCluster| {
        format!(
            "[clusters.{name}]\nbootstrap_servers = \"{}\"\n[clusters.{name}.client]\n\
             \"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\
             \"sasl.username\" = \"{}\"\n\"sasl.password\" = \"{}\"\n",
            c.bootstrap_servers(),
            c.sasl_user().expect("scram user"),
            c.sasl_password().expect("scram password"),
        )
    };
    let path = dir.join(format!("acls-{naming}.toml"));
    std::fs::write(
        &path,
        format!(
            "{}{}\n[[flows]]\nsource = \"src\"\ntarget = \"dst\"\ntopics = [\"{topic}\"]\n\
             topic_naming = \"{naming}\"\nrefresh_interval = \"1s\"\nsync_acls = true\n\
             acls_exclude_principals = [\"User:admin\"]\n{extra}\n\
             [http]\nlisten = \"127.0.0.1:0\"\n",
            cluster("src", source),
            cluster("dst", target),
        ),
    )
    .expect("write topology");
    path
}

fn allow(
    resource_type: AclResourceType,
    (pattern_type, name): (AclPatternType, &str),
    user: &str,
    operation: AclOperation,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type,
        principal: format!("User:{user}"),
        host: "*".into(),
        operation,
        permission: AclPermission::Allow,
    }
}

fn deny(binding: AclBinding) -> AclBinding {
    AclBinding {
        permission: AclPermission::Deny,
        ..binding
    }
}

fn topic_acl(name: &str, user: &str, op: AclOperation) -> AclBinding {
    allow(
        AclResourceType::Topic,
        (AclPatternType::Literal, name),
        user,
        op,
    )
}

fn group_acl(name: &str, user: &str) -> AclBinding {
    allow(
        AclResourceType::Group,
        (AclPatternType::Literal, name),
        user,
        AclOperation::Read,
    )
}

/// Admin calls as Ferry's (super) user.
struct Acls {
    rt: tokio::runtime::Runtime,
    admin: Admin,
}

impl Acls {
    fn on(cluster: &KafkaCluster) -> Acls {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin = rt.block_on(async { Admin::new(&cluster.client_config()).unwrap() });
        Acls { rt, admin }
    }

    /// Creates the ACLs and waits until the broker enforces them (they
    /// reach it through the metadata log a moment after the answer).
    fn create(&self, acls: &[AclBinding]) {
        let results = self
            .rt
            .block_on(self.admin.create_acls(acls))
            .expect("CreateAcls");
        for (acl, r) in acls.iter().zip(results) {
            r.unwrap_or_else(|e| panic!("creating {acl}: {e}"));
        }
        wait_for("the created ACLs", Duration::from_secs(15), || {
            let all = self.all();
            acls.iter().all(|a| all.contains(a)).then_some(())
        });
    }

    fn delete(&self, acl: &AclBinding) {
        let deleted = self
            .rt
            .block_on(self.admin.delete_acls(std::slice::from_ref(acl)))
            .expect("DeleteAcls");
        assert_eq!(deleted[0].as_ref().ok(), Some(&1), "deleting {acl}");
    }

    fn all(&self) -> Vec<AclBinding> {
        self.rt
            .block_on(self.admin.describe_acls(&AclFilter::default()))
            .expect("DescribeAcls")
    }

    fn has(&self, acl: &AclBinding) -> bool {
        self.all().contains(acl)
    }

    fn of(&self, user: &str) -> Vec<AclBinding> {
        let principal = format!("User:{user}");
        self.all()
            .into_iter()
            .filter(|a| a.principal == principal)
            .collect()
    }
}

/// Consumes `topic` in `group` as `user` until it has read `want` records
/// (`Ok`), or the brokers refuse it (`Err`, the error).
fn consume_as(
    cluster: &KafkaCluster,
    user: &str,
    (topic, group): (&str, &str),
    want: usize,
) -> Result<usize, String> {
    let consumer: BaseConsumer = cluster
        .client_config_as(user, PASSWORD)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut read = 0;
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(_)) => {
                read += 1;
                if read >= want {
                    return Ok(read);
                }
            }
            Some(Err(e)) if e.to_string().contains("uthoriz") => return Err(e.to_string()),
            Some(Err(_)) | None => {}
        }
    }
    panic!("{user} neither read {want} records of {topic} nor was refused (read {read})");
}

/// Produces one record to `topic` as `user`: the error if refused.
fn produce_as(cluster: &KafkaCluster, user: &str, topic: &str) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let producer: FutureProducer = cluster
            .client_config_as(user, PASSWORD)
            .set("message.timeout.ms", "15000")
            .create()
            .expect("producer");
        producer
            .send(
                FutureRecord::to(topic).key("k").payload("v"),
                Duration::from_secs(15),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    })
}

fn ferry(args: &[&str]) -> (Option<i32>, String) {
    let (code, out, err) = FERRY.output(args);
    (code, format!("{out}{err}"))
}

fn metric(daemon: &ferry_testkit::daemon::Daemon, series: &str) -> f64 {
    let (_, body) = daemon.get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn identity_naming_copies_allow_and_deny_and_plan_verify_see_the_same() {
    let (source, target) = clusters();
    let src = Acls::on(&source);
    let dst = Acls::on(&target);
    let orders = unique_name("orders");
    let group = unique_name("g-alice");
    data::create_topic(&source.client_config(), &orders, 2, 1, &[]).expect("create orders");
    produce_sequence(
        &source.client_config(),
        &orders,
        &SequenceSpec::new(2, RECORDS as u64 / 2),
    )
    .expect("produce");

    let alice_topic = topic_acl(&orders, "alice", AclOperation::Read);
    let alice_group = group_acl(&group, "alice");
    // carol may read everything starting with the topic's name, but not
    // the topic itself: Deny wins.
    let carol_prefixed = allow(
        AclResourceType::Topic,
        (AclPatternType::Prefixed, &orders[..6]),
        "carol",
        AclOperation::Read,
    );
    let carol_deny = deny(topic_acl(&orders, "carol", AclOperation::Read));
    let carol_group = group_acl("g-carol", "carol");
    let admin_all = topic_acl(&orders, "admin", AclOperation::All);
    src.create(&[
        alice_topic.clone(),
        alice_group.clone(),
        carol_prefixed.clone(),
        carol_deny.clone(),
        carol_group.clone(),
        admin_all.clone(),
    ]);
    assert_eq!(
        consume_as(&source, "alice", (&orders, &group), RECORDS),
        Ok(RECORDS)
    );
    // An ACL only the target has, on the flow's topic: kept without
    // acl_sync_deletes.
    let eve_target_only = topic_acl(&orders, "eve", AclOperation::Read);
    dst.create(std::slice::from_ref(&eve_target_only));

    let dir = tempfile::tempdir().unwrap();
    let topo = topology(dir.path(), (&source, &target), "identity", &orders, "");
    let topo_arg = topo.to_str().unwrap();
    let expected = [
        &alice_topic,
        &alice_group,
        &carol_prefixed,
        &carol_deny,
        &carol_group,
    ];

    // plan lists what it would create, text and JSON; admin's is excluded.
    let (code, text) = ferry(&["plan", "-c", topo_arg]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ACLs: 5 to create"), "{text}");
    assert!(text.contains(&format!("create {alice_topic}")), "{text}");
    assert!(!text.contains("User:admin"), "{text}");
    let (code, json, err) = FERRY.output(&["plan", "-c", topo_arg, "--json"]);
    assert_eq!(code, Some(0), "{json}{err}");
    let plan: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let acls = &plan["flows"][0]["acls"];
    assert_eq!(acls["create"].as_array().map(Vec::len), Some(5), "{acls}");
    assert_eq!(acls["extra"][0]["principal"], "User:eve", "{acls}");
    assert_eq!(acls["deletes"], false);
    assert!(!dst.has(&alice_topic), "plan alone changes nothing");

    // --apply creates them.
    let (code, text) = ferry(&["plan", "-c", topo_arg, "--apply"]);
    assert_eq!(code, Some(0), "{text}");
    // Created ACLs reach the brokers through the metadata log a moment later.
    wait_for("the applied ACLs", Duration::from_secs(15), || {
        expected.iter().all(|acl| dst.has(acl)).then_some(())
    });
    assert!(!dst.has(&admin_all), "excluded principal copied");

    // verify --acls: a match (eve's extra ACL is listed, not a mismatch)…
    let (code, text) = ferry(&["verify", "-c", topo_arg, "--acls"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ACLs match") && text.contains("extra on target"),
        "{text}"
    );
    // …until one is deleted on the target by hand.
    dst.delete(&alice_topic);
    wait_for("the hand-made delete", Duration::from_secs(15), || {
        (!dst.has(&alice_topic)).then_some(())
    });
    let (code, text) = ferry(&["verify", "-c", topo_arg, "--acls"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("MISMATCH") && text.contains(&format!("missing on target: {alice_topic}")),
        "{text}"
    );
    let (code, json) = ferry(&["verify", "-c", topo_arg, "--acls", "--json"]);
    assert_eq!(code, Some(1), "{json}");
    assert!(json.contains("\"result\": \"mismatch\""), "{json}");

    // The daemon puts it back within refresh_interval and copies the data.
    let daemon = FERRY.start(&topo);
    wait_for(
        "the daemon to re-create alice's ACL",
        Duration::from_secs(120),
        || dst.has(&alice_topic).then_some(()),
    );
    wait_for(
        "the records on the target",
        Duration::from_secs(120),
        || {
            let ends = data::end_offsets(&target.client_config(), &orders).ok()?;
            (ends.iter().sum::<i64>() >= RECORDS as i64).then_some(())
        },
    );
    wait_for(
        "the created ACL to be counted",
        Duration::from_secs(30),
        || {
            let series = "ferry_acls_synced_total{flow=\"src->dst\",result=\"created\"}";
            (metric(&daemon, series) >= 1.0).then_some(())
        },
    );

    // 1. alice reads on the target as she did on the source.
    assert_eq!(
        consume_as(&target, "alice", (&orders, &group), RECORDS),
        Ok(RECORDS)
    );
    // 2. bob has no ACL: refused.
    let refused = consume_as(&target, "bob", (&orders, "g-bob"), 1);
    assert!(refused.is_err(), "bob read the target: {refused:?}");
    // 3. carol's Deny came along: refused despite her prefixed Allow.
    let refused = consume_as(&target, "carol", (&orders, "g-carol"), 1);
    assert!(refused.is_err(), "carol read the target: {refused:?}");
    // Nothing deleted without acl_sync_deletes; the excluded principal's
    // ACL never copied.
    assert!(dst.has(&eve_target_only));
    assert!(!dst.has(&admin_all));
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let (code, text) = ferry(&["verify", "-c", topo_arg, "--acls"]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn prefix_naming_never_lets_anyone_write_to_the_remote_topic() {
    let (source, target) = clusters();
    let src = Acls::on(&source);
    let dst = Acls::on(&target);
    let payments = unique_name("payments");
    let remote = format!("src.{payments}");
    let group = unique_name("g-dave");
    data::create_topic(&source.client_config(), &payments, 1, 1, &[]).expect("create payments");
    produce_sequence(
        &source.client_config(),
        &payments,
        &SequenceSpec::new(1, RECORDS as u64),
    )
    .expect("produce");
    src.create(&[
        topic_acl(&payments, "dave", AclOperation::Write),
        topic_acl(&payments, "dave", AclOperation::Read),
        group_acl(&group, "dave"),
        topic_acl(&payments, "frank", AclOperation::All),
    ]);
    assert_eq!(produce_as(&source, "dave", &payments), Ok(()));
    // On the flow's remote topic, without a source counterpart: deleted
    // (acl_sync_deletes). On a topic the flow does not own: kept.
    let eve_remote = topic_acl(&remote, "eve", AclOperation::Read);
    let eve_local = topic_acl("local-topic", "eve", AclOperation::Write);
    dst.create(&[eve_remote.clone(), eve_local.clone()]);

    let dir = tempfile::tempdir().unwrap();
    let topo = topology(
        dir.path(),
        (&source, &target),
        "prefix",
        &payments,
        "acl_sync_deletes = true",
    );
    let daemon = FERRY.start(&topo);
    let dave_read = topic_acl(&remote, "dave", AclOperation::Read);
    wait_for(
        "dave's ACLs on the target",
        Duration::from_secs(120),
        || (dst.has(&dave_read) && dst.has(&group_acl(&group, "dave"))).then_some(()),
    );
    wait_for(
        "the records on the target",
        Duration::from_secs(120),
        || {
            let ends = data::end_offsets(&target.client_config(), &remote).ok()?;
            (ends.iter().sum::<i64>() > RECORDS as i64).then_some(())
        },
    );
    wait_for(
        "eve's remote-topic ACL to be deleted",
        Duration::from_secs(30),
        || (!dst.has(&eve_remote)).then_some(()),
    );
    assert!(
        dst.has(&eve_local),
        "an ACL the flow does not own was deleted"
    );
    let deleted = "ferry_acls_synced_total{flow=\"src->dst\",result=\"deleted\"}";
    assert!(metric(&daemon, deleted) >= 1.0);

    // WRITE was not copied, ALL became READ.
    let dave: Vec<AclOperation> = dst.of("dave").iter().map(|a| a.operation).collect();
    assert!(!dave.contains(&AclOperation::Write), "{dave:?}");
    assert_eq!(
        dst.of("frank"),
        vec![topic_acl(&remote, "frank", AclOperation::Read)]
    );
    // 4. dave can read the remote topic, and not write to it.
    assert!(consume_as(&target, "dave", (&remote, &group), RECORDS).is_ok());
    let refused = produce_as(&target, "dave", &remote);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("uthoriz")),
        "dave wrote to the remote topic: {refused:?}"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");

    // ACLs the target refuses (here: one with an empty resource name, which
    // the broker refuses, and one with an operation librdkafka cannot
    // send) are skipped; the others are still created.
    let broker_refuses = topic_acl("", "eve", AclOperation::Read);
    let unsendable = AclBinding {
        operation: AclOperation::Other(99),
        ..topic_acl(&remote, "eve", AclOperation::Read)
    };
    let good = topic_acl(&remote, "frank", AclOperation::Describe);
    let diff = AclDiff {
        missing: vec![broker_refuses.clone(), unsendable.clone(), good.clone()],
        extra: Vec::new(),
        matching: 0,
        source_reported_none: false,
    };
    let outcome = dst
        .rt
        .block_on(ferry_supervisor::acls::apply(
            &dst.admin, "dst", &diff, false,
        ))
        .expect("the request as a whole succeeds");
    assert_eq!(outcome.created, vec![good.clone()]);
    let refused: Vec<&AclBinding> = outcome.rejected.iter().map(|(a, _)| a).collect();
    assert_eq!(
        refused,
        vec![&broker_refuses, &unsendable],
        "{:?}",
        outcome.rejected
    );
    wait_for("the good ACL", Duration::from_secs(15), || {
        dst.has(&good).then_some(())
    });

    // A source that reports no ACLs at all may be one that cannot say
    // (librdkafka drops DescribeAcls' error): nothing is deleted on its word.
    let unsure = AclDiff {
        missing: Vec::new(),
        extra: vec![good.clone()],
        matching: 0,
        source_reported_none: true,
    };
    let outcome = dst
        .rt
        .block_on(ferry_supervisor::acls::apply(
            &dst.admin, "dst", &unsure, true,
        ))
        .expect("apply");
    assert!(outcome.deleted.is_empty());
    assert!(dst.has(&good));
}
