//! Which source topics a flow mirrors, and making their target topics exist
//! with the right partition count and configs.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_admin::{Admin, AdminError, ConfigChange, ConfigSource, NewTopicSpec};
use ferry_config::Flow;

use crate::{EngineError, Place};

/// Topic configs never copied, as in MirrorMaker 2's default filter: they
/// describe the source cluster's operation, not the data.
pub const DEFAULT_CONFIG_EXCLUDES: &[&str] = &[
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "message.timestamp.difference.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.after.max.ms",
    "message.timestamp.type",
    "unclean.leader.election.enable",
    "min.insync.replicas",
];

/// Internal topics of Kafka, MirrorMaker 2 and Ferry itself. They are never
/// mirrored unless a flow names them literally. MirrorMaker 2 ends its
/// internal topics with its separator and `internal`
/// (`src_checkpoints_internal` under `_`).
pub fn is_internal(topic: &str, separator: &str) -> bool {
    topic.starts_with("__")
        || topic.ends_with(".internal")
        || topic
            .strip_suffix("internal")
            .is_some_and(|rest| rest.ends_with(separator))
        || topic.starts_with("mm2-")
        || topic == "heartbeats"
}

/// Whether a flow mirrors this source topic.
pub fn selects(flow: &Flow, topic: &str) -> bool {
    if !flow.topics.matches(topic) {
        return false;
    }
    if is_internal(topic, &flow.topic_separator) && !flow.topics.names_explicitly(topic) {
        return false;
    }
    // Under prefix naming, `backup.orders` on the source came from the
    // target: copying it back would re-prefix it forever.
    !flow.came_from_target(topic)
}

/// The refusal of a target topic that two source topics (`first`,
/// `second`, as the caller names them) would be written to: copying both
/// would merge them, copying one would depend on which was found first.
pub fn merge_refused(target: &str, target_topic: &str, first: &str, second: &str) -> EngineError {
    EngineError::Topic {
        cluster: target.to_string(),
        topic: target_topic.to_string(),
        cause: format!(
            "would be written from two source topics, {first} and {second}: neither is copied; change flows[].rename or topics so that every target topic has one source"
        ),
    }
}

/// The source topic configs to apply on the target: explicitly set ones
/// only (broker defaults stay the target's own), minus the excludes.
pub fn configs_to_copy(
    flow: &Flow,
    entries: &[ferry_admin::ConfigEntry],
) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .filter(|e| !e.is_read_only && !e.is_sensitive)
        .filter(|e| copyable(flow, &e.name))
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect()
}

/// Brings the target topic's configs in line with the source's: keys set on
/// the source (and not excluded) are set on the target; keys this task
/// copied earlier (`copied`) that the source no longer overrides go back to
/// the target's default. Overrides an operator set on the target for keys
/// the source never set are left alone. Uses IncrementalAlterConfigs so
/// nothing else is touched. Updates `copied` and returns the changes.
pub async fn sync_topic_configs(
    source_admin: &Admin,
    target_admin: &Admin,
    flow: &Flow,
    target_cluster: &str,
    (topic, remote): (&str, &str),
    copied: &mut std::collections::BTreeSet<String>,
) -> Result<Vec<ConfigChange>, EngineError> {
    let fail = |doing: &str, e: AdminError| {
        EngineError::request(Place::topic(target_cluster, remote), doing, e)
    };
    let wanted = configs_to_copy(
        flow,
        &source_admin
            .describe_topic_configs(topic)
            .await
            .map_err(|e| fail("cannot read the source topic's configs", e))?,
    );
    let current = target_admin
        .describe_topic_configs(remote)
        .await
        .map_err(|e| fail("cannot read the target topic's configs", e))?;
    let changes = config_changes(&wanted, &current, copied);
    if !changes.is_empty() {
        target_admin
            .incremental_alter_configs(remote, &changes)
            .await
            .map_err(|e| {
                let what = if e.is_unsupported() {
                    "the target broker does not support IncrementalAlterConfigs"
                } else {
                    "the target refused the config change"
                };
                fail(what, e)
            })?;
    }
    *copied = wanted.into_keys().collect();
    Ok(changes)
}

/// The changes that make `current` (the target's configs) match `wanted`,
/// resetting only keys previously copied from the source.
fn config_changes(
    wanted: &BTreeMap<String, String>,
    current: &[ferry_admin::ConfigEntry],
    copied: &std::collections::BTreeSet<String>,
) -> Vec<ConfigChange> {
    let overridden: BTreeMap<&str, Option<&str>> = current
        .iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    let mut changes: Vec<ConfigChange> = wanted
        .iter()
        .filter(|(k, v)| overridden.get(k.as_str()) != Some(&Some(v.as_str())))
        .map(|(k, v)| ConfigChange::set(k.clone(), v.clone()))
        .collect();
    changes.extend(
        overridden
            .keys()
            .filter(|k| !wanted.contains_key(**k) && copied.contains(**k))
            .map(|k| ConfigChange::delete(k.to_string())),
    );
    changes
}

fn copyable(flow: &Flow, key: &str) -> bool {
    !DEFAULT_CONFIG_EXCLUDES.contains(&key) && !flow.topic_configs_exclude.iter().any(|x| x == key)
}

/// Makes sure a one-partition compacted internal topic (progress, offset
/// syncs, checkpoints, heartbeats) exists. Existing topics are looked up
/// first, so a cluster that refuses CreateTopics (or an operator who
/// pre-created the topic with locked-down ACLs) is fine.
pub async fn ensure_internal_topic(
    admin: &Admin,
    cluster: &str,
    topic: &str,
    replication: Option<i32>,
) -> Result<(), EngineError> {
    let config = ("cleanup.policy", "compact");
    ensure_topic(
        admin,
        cluster,
        (topic, config, replication),
        "internal topic",
    )
    .await
}

/// Makes sure the dead-letter topic of `on_record_error = "dead-letter"`
/// exists. One partition keeps refused records in the order they were
/// refused; its `max.message.bytes` is librdkafka's largest, since the
/// records it gets are typically the ones too large for their own target
/// topic (the broker's `socket.request.max.bytes` still applies). An
/// existing topic is used as it is.
pub async fn ensure_dead_letter_topic(
    admin: &Admin,
    cluster: &str,
    topic: &str,
    replication: Option<i32>,
) -> Result<(), EngineError> {
    let config = ("max.message.bytes", crate::clients::RECORD_MAX_BYTES);
    ensure_topic(
        admin,
        cluster,
        (topic, config, replication),
        "dead-letter topic",
    )
    .await
}

/// Makes sure the flow's slots topic exists with one partition per slot,
/// and refuses to run when it has another count: members computing slots
/// over different counts would copy some partitions twice. Its records are
/// only claims (see `membership`), so a week's retention is plenty.
pub async fn ensure_slots_topic(
    admin: &Admin,
    cluster: &str,
    topic: &str,
    slots: u16,
    (replication, allow_reslot): (Option<i32>, bool),
) -> Result<(), EngineError> {
    // Created first and checked only if it existed: on a flow's first start
    // the group is joined one round trip sooner.
    let mut spec = NewTopicSpec::new(topic, i32::from(slots));
    spec.configs = vec![
        ("cleanup.policy".into(), "delete".into()),
        ("retention.ms".into(), "604800000".into()),
    ];
    spec.replication = replication;
    match create_topic(admin, spec).await {
        Ok(true) => {
            tracing::info!(cluster, topic, slots, "created the flow's slots topic");
            return Ok(());
        }
        Ok(false) => {}
        // A cluster that refuses CreateTopics (or ACLs that allow only
        // Describe) may still hold the topic, created by an operator.
        Err(e) => {
            tracing::debug!(cluster, topic, error = %e, "slots topic not created; looking it up")
        }
    }
    match slots_topic_partitions(admin, cluster, topic).await? {
        Some(n) if n == usize::from(slots) => Ok(()),
        Some(n) if !allow_reslot => Err(EngineError::Topic {
            cluster: cluster.to_string(),
            topic: topic.to_string(),
            cause: reslot_refusal(n, slots),
        }),
        Some(n) => {
            tracing::warn!(cluster, topic, from = n, to = slots, "--allow-reslot: recreating the flow's slots topic with the new slot count");
            admin.delete_topics(&[topic]).await.map_err(|e| {
                EngineError::request(
                    Place::topic(cluster, topic),
                    "cannot delete the slots topic to re-slot",
                    e,
                )
            })?;
            // Deletion completes asynchronously on the brokers.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while slots_topic_partitions(admin, cluster, topic).await?.is_some() {
                if tokio::time::Instant::now() > deadline {
                    return Err(EngineError::Topic {
                        cluster: cluster.to_string(),
                        topic: topic.to_string(),
                        cause: "the slots topic was not deleted within 30 s; re-slotting retries"
                            .into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Box::pin(ensure_slots_topic(
                admin,
                cluster,
                topic,
                slots,
                (replication, false),
            ))
            .await
        }
        None => Err(EngineError::Topic {
            cluster: cluster.to_string(),
            topic: topic.to_string(),
            cause: "the flow's slots topic does not exist and could not be created: create it with one partition per slot (flows[].slots)".into(),
        }),
    }
}

/// The partition count of the slots topic, if it exists.
pub async fn slots_topic_partitions(
    admin: &Admin,
    cluster: &str,
    topic: &str,
) -> Result<Option<usize>, EngineError> {
    Ok(admin
        .topic_metadata()
        .await
        .map_err(|e| EngineError::request(Place::topic(cluster, topic), "cannot list topics", e))?
        .get(topic)
        .copied())
}

/// Why a flow whose `slots` changed does not start.
pub fn reslot_refusal(partitions: usize, slots: u16) -> String {
    format!(
        "the flow's slots topic has {partitions} partitions but the flow has {slots} slots: every process of a flow must use the same `slots`; to change it, stop every process of the flow and start one with `ferry run --allow-reslot`"
    )
}

/// Creates a one-partition topic with one config unless it exists.
/// Existing topics are looked up first, so a cluster that refuses
/// CreateTopics (or an operator who pre-created the topic with locked-down
/// ACLs) is fine.
async fn ensure_topic(
    admin: &Admin,
    cluster: &str,
    (topic, (key, value), replication): (&str, (&str, &str), Option<i32>),
    what: &str,
) -> Result<(), EngineError> {
    let mut spec = NewTopicSpec::new(topic, 1);
    spec.configs = vec![(key.into(), value.into())];
    spec.replication = replication;
    let topic = topic.to_string();
    if admin
        .topic_metadata()
        .await
        .is_ok_and(|t| t.contains_key(&topic))
    {
        return Ok(());
    }
    match create_topic(admin, spec).await {
        Ok(created) => {
            if created {
                tracing::info!(cluster, topic, "created {what}");
            }
            Ok(())
        }
        Err(e) => Err(EngineError::request(
            Place::topic(cluster, &topic),
            "cannot create the topic",
            e,
        )),
    }
}

/// Creates one topic; `Ok(false)` when it already existed (another Ferry, or
/// an operator, may have created it meanwhile).
pub async fn create_topic(admin: &Admin, spec: NewTopicSpec) -> Result<bool, AdminError> {
    match admin.create_topics(&[spec]).await?.into_iter().next() {
        Some(Err(AdminError::TopicAlreadyExists { .. })) => Ok(false),
        Some(Err(e)) => Err(e),
        Some(Ok(_)) | None => Ok(true),
    }
}

/// What `ensure_target_topic` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetTopicAction {
    /// It already existed (or another creator won the race) with the
    /// partitions asked: nothing changed.
    Existed,
    /// It was created.
    Created,
    /// It existed with fewer partitions than asked, and grew.
    AddedPartitions {
        /// Its partition count before.
        from: i32,
        /// Its partition count now.
        to: i32,
    },
}

/// Makes sure the target topic exists with at least `partitions`
/// partitions. `existing` is its current partition count on the target, if
/// it exists; `create` creates it (see [`create_topic`]; the engine batches
/// the creations of many topics). A broker that lacks an admin API gets a clear error for this
/// topic; the caller retries it later and the other topics keep flowing.
pub async fn ensure_target_topic(
    admin: &Admin,
    create: impl AsyncFnOnce(NewTopicSpec) -> Result<bool, AdminError>,
    (target_cluster, remote): (&str, &str),
    partitions: i32,
    existing: Option<i32>,
    replication: Option<i32>,
    configs: &BTreeMap<String, String>,
) -> Result<TargetTopicAction, EngineError> {
    let fail = |doing: String, e: AdminError| {
        EngineError::request(Place::topic(target_cluster, remote), doing, e)
    };
    match existing {
        Some(n) if n >= partitions => Ok(TargetTopicAction::Existed),
        Some(n) => {
            admin
                .create_partitions(remote, partitions as usize)
                .await
                .map_err(|e| {
                    fail(
                        format!("cannot grow from {n} to {partitions} partitions"),
                        e,
                    )
                })?;
            Ok(TargetTopicAction::AddedPartitions {
                from: n,
                to: partitions,
            })
        }
        None => {
            let mut spec = NewTopicSpec::new(remote, partitions);
            spec.replication = replication;
            spec.configs = configs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match create(spec).await {
                Ok(true) => Ok(TargetTopicAction::Created),
                Ok(false) => Ok(TargetTopicAction::Existed),
                Err(e) => Err(fail(
                    format!("cannot create topic with {partitions} partitions"),
                    e,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(naming: &str, topics: &str) -> Flow {
        let text = format!(
            "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
             [[flows]]\nsource=\"a\"\ntarget=\"b\"\ntopic_naming=\"{naming}\"\ntopics=[{topics}]\n"
        );
        ferry_config::parse(&text, "t", std::path::Path::new("."))
            .unwrap()
            .topology
            .flows
            .remove(0)
    }

    #[test]
    fn internal_topics_are_skipped_unless_named() {
        let all = flow("prefix", "\".*\"");
        assert!(selects(&all, "orders"));
        assert!(!selects(&all, "__consumer_offsets"));
        assert!(!selects(&all, "mm2-offset-syncs.b.internal"));
        assert!(!selects(&all, "ferry-progress.a.internal"));
        let named = flow("prefix", "\"heartbeats\"");
        assert!(selects(&named, "heartbeats"));
    }

    #[test]
    fn a_custom_separator_names_internal_topics_and_guards_cycles() {
        let f = flow("prefix\"\ntopic_separator=\"_", "\".*\"");
        assert!(
            !selects(&f, "c_checkpoints_internal"),
            "MM2's internal topics"
        );
        assert!(!selects(&f, "b_orders"), "b_orders came from b");
        assert!(selects(&f, "b.orders"), "another separator: a topic of a");
        assert!(selects(&f, "orders_b"));
    }

    #[test]
    fn prefix_naming_never_reprefixes_the_targets_topics() {
        let f = flow("prefix", "\".*\"");
        assert!(!selects(&f, "b.orders"), "b.orders came from b");
        assert!(selects(&f, "c.orders"));
        let id = flow("identity", "\".*\"");
        assert!(selects(&id, "b.orders"));
    }
}
