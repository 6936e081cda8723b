//! `ferry plan`: what a flow would do to its target, without doing it.
//!
//! Per flow: the target topics that would be created (partition count and
//! the configs that would be copied) or grown, existing target topics whose
//! configs would change (or, with `sync_topic_configs = false`, conflict),
//! source topics the flow skips and why, the backlog per partition for the
//! flow's `start_from` (records, and bytes estimated from a sample), the
//! consumer groups the flow syncs with their translated offsets on the
//! target and what `--apply` would write, with `propagate_deletes` the
//! target topics whose source topic is gone, and warnings.
//!
//! The engine's own rules decide every answer: topic selection
//! (`topics::selects`), config filtering (`topics::configs_to_copy`), saved
//! progress, MirrorMaker 2 handover positions, offset translation
//! (`crate::offsets_report`, on the engine's readers) and the group-sync rule
//! (`ferry_checkpoint::group_sync`): a plan and the run that follows it
//! agree.
//!
//! Where a partition starts is the engine's own rule (`ferry_supervisor::
//! start`): saved progress, else where MirrorMaker 2 stopped, else
//! `start_from` — `earliest` the log start, `latest` the end, a timestamp
//! the first record at or after it, `unconsumed` the smallest offset any
//! matching group committed (the groups at that offset are named), else
//! `unconsumed_fallback`. A saved position before the log start starts
//! there with a warning; one past the log end holds the partition (no
//! backlog, a warning). Records are `end - start` (an upper
//! bound: transaction markers, aborted records and records cycle protection
//! skips count). Bytes are records times the average size (key + value +
//! header keys and values) of up to [`SAMPLE_RECORDS`] records read at the
//! start of the topic's largest backlog.
//!
//! A plan is built in phases, each returning a typed result the next ones
//! read, each a pure function over what was read from the clusters where
//! possible: the [`inventory`] (topics selected and skipped, what each
//! becomes on the target), the start [`positions`], the [`sizes`], the
//! flow-wide [`warnings`] and the consumer [`groups`]. [`render`] prints
//! the result section by section.
//!
//! Reads only; `crate::apply` does what a plan says.

use std::collections::HashMap;
use std::time::Duration;

use ferry_admin::{Admin, Watermarks};
use ferry_config::{Cluster, Fallback, Flow, StartFrom, TopicNaming, Topology};
use ferry_supervisor::{checkpoints, progress, EngineError};
use futures::StreamExt;

pub mod acls;
pub mod deletes;
pub mod groups;
pub mod inventory;
mod model;
pub mod positions;
mod render;
pub mod schemas;
pub mod sizes;
pub mod warnings;

pub(crate) use groups::target_states;
pub use groups::{decide, GroupOnTarget, TargetPartition};
pub use inventory::{config_diff, skip_reason};
pub use model::*;
pub use render::render;

use inventory::{ExistingTarget, Inventory, Remembered};
use positions::StartInputs;

/// The version of the JSON schema (`docs/migration.md`). Fields are only
/// ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;
/// Records read per topic to estimate the average record size.
pub const SAMPLE_RECORDS: i64 = 16;
/// Admin requests in flight at once.
const CONCURRENCY: usize = 16;
const INTERNAL_READ_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Assumed catch-up throughput, bytes per second.
    pub throughput: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            throughput: crate::units::DEFAULT_THROUGHPUT_BYTES_PER_SEC,
        }
    }
}

/// Plans `flows` of `topology`.
pub async fn plan(
    topology: &Topology,
    flows: &[Flow],
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    let mut out = Vec::new();
    for flow in flows {
        out.push(plan_flow(topology, flow, options).await?);
    }
    Ok(Plan {
        schema: SCHEMA_VERSION,
        throughput_bytes_per_sec: options.throughput,
        flows: out,
    })
}

fn naming(n: TopicNaming) -> &'static str {
    match n {
        TopicNaming::Prefix => "prefix",
        TopicNaming::Identity => "identity",
    }
}

fn fallback(f: Fallback) -> &'static str {
    match f {
        Fallback::Earliest => "earliest",
        Fallback::Latest => "latest",
    }
}

fn start_from(s: StartFrom) -> String {
    match s {
        StartFrom::Earliest => "earliest".into(),
        StartFrom::Latest => "latest".into(),
        StartFrom::Unconsumed => "unconsumed".into(),
        StartFrom::Timestamp(ms) => format!("timestamp:{ms}"),
    }
}

/// Watermarks of many partitions, a few requests at a time.
async fn watermarks_of(
    admin: &Admin,
    cluster: &Cluster,
    parts: Vec<(String, i32)>,
) -> Result<HashMap<(String, i32), Watermarks>, EngineError> {
    let results: Vec<_> = futures::stream::iter(parts.into_iter().map(|(t, p)| {
        let admin = admin.clone();
        async move {
            let w = admin.watermarks(&t, p).await;
            ((t, p), w)
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .collect()
    .await;
    let mut out = HashMap::new();
    for (key, w) in results {
        let w = w.map_err(crate::client_err(
            cluster,
            &format!("cannot read the watermarks of {}[{}]", key.0, key.1),
        ))?;
        out.insert(key, w);
    }
    Ok(out)
}

/// For `start_from = timestamp`: the first offset at or after it in each
/// partition of `topic`; empty for other policies.
async fn timestamp_offsets(
    flow: &Flow,
    admin: &Admin,
    source: &Cluster,
    topic: &inventory::SourceTopic,
) -> Result<HashMap<i32, Option<i64>>, EngineError> {
    let StartFrom::Timestamp(ms) = flow.start_from else {
        return Ok(HashMap::new());
    };
    let query: Vec<(&str, i32, i64)> = (0..topic.partitions)
        .map(|p| (topic.name.as_str(), p, ms))
        .collect();
    Ok(admin
        .offsets_for_times(&query)
        .await
        .map_err(crate::client_err(
            source,
            &format!(
                "cannot look up offsets for timestamp {ms} in {}",
                topic.name
            ),
        ))?
        .into_iter()
        .map(|o| (o.partition, o.offset))
        .collect())
}

/// The target topic `remote` as it is now, if it exists (`partitions`:
/// its partition count as listed).
async fn existing_target(
    admin: &Admin,
    target: &Cluster,
    remote: &str,
    partitions: Option<usize>,
    marks: &HashMap<(String, i32), Watermarks>,
) -> Result<Option<ExistingTarget>, EngineError> {
    let Some(partitions) = partitions.map(|n| n as i32) else {
        return Ok(None);
    };
    let configs = admin
        .describe_topic_configs(remote)
        .await
        .map_err(crate::client_err(
            target,
            &format!("cannot read the configs of topic {remote}"),
        ))?;
    let records = (0..partitions)
        .filter_map(|p| marks.get(&(remote.to_string(), p)))
        .map(|w| w.high - w.low)
        .sum();
    Ok(Some(ExistingTarget {
        partitions,
        configs,
        records,
    }))
}

/// Reads what the phases need from both clusters and runs them in order.
async fn plan_flow(
    topology: &Topology,
    flow: &Flow,
    options: &PlanOptions,
) -> Result<FlowPlan, EngineError> {
    let (source, target) = crate::clusters(topology, flow)?;
    let source_admin = crate::admin(source, "ferry-plan")?;
    let target_admin = crate::admin(target, "ferry-plan")?;
    let source_topics = crate::list_topics(&source_admin, source).await?;
    let target_topics = crate::list_topics(&target_admin, target).await?;
    let Inventory { selected, skipped } = inventory::inventory(flow, &source_topics);
    let others = warnings::other_flows_remotes(topology, flow).await?;
    warnings::refuse_merges(flow, &selected, others)?;
    let saved = progress::load(target, &flow.source, INTERNAL_READ_TIMEOUT).await?;
    let mm2_offsets_cluster = topology.cluster(&flow.mm2_offsets.cluster).ok_or_else(|| {
        EngineError::Internal(format!(
            "flow {} names a cluster missing from the validated topology",
            flow.id()
        ))
    })?;
    let handover = checkpoints::mm2_resume_positions(flow, mm2_offsets_cluster, target).await?;
    let deletions = deletes::plan_deletes(topology, flow, (source, target), &saved).await?;
    let remembered = Remembered { saved, handover };
    let rows = crate::offsets_report::offsets_report(flow, source, target, None).await?;

    // Watermarks of every source partition and of every partition of the
    // target topics that exist.
    let parts: Vec<(String, i32)> = selected
        .iter()
        .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
        .collect();
    let source_marks = watermarks_of(&source_admin, source, parts).await?;
    let target_parts: Vec<(String, i32)> = selected
        .iter()
        .map(|t| flow.remote_topic(&t.name))
        .filter_map(|r| Some((target_topics.get(&r).copied()?, r)))
        .flat_map(|(n, r)| (0..n as i32).map(move |p| (r.clone(), p)))
        .collect();
    let target_marks = watermarks_of(&target_admin, target, target_parts).await?;
    let unconsumed = positions::unconsumed(&rows);

    let mut warnings = Vec::new();
    let mut topic_plans = Vec::new();
    for topic in &selected {
        let remote = flow.remote_topic(&topic.name);
        let source_configs = source_admin
            .describe_topic_configs(&topic.name)
            .await
            .map_err(crate::client_err(
                source,
                &format!("cannot read the configs of topic {}", topic.name),
            ))?;
        let existing = existing_target(
            &target_admin,
            target,
            &remote,
            target_topics.get(&remote).copied(),
            &target_marks,
        )
        .await?;
        let shaped = inventory::shape(flow, topic, &source_configs, existing.as_ref(), &remembered);
        let timestamps = timestamp_offsets(flow, &source_admin, source, topic).await?;
        let starts = positions::start_positions(
            flow,
            topic,
            StartInputs {
                remembered: &remembered,
                marks: &source_marks,
                timestamps: &timestamps,
                unconsumed: &unconsumed,
            },
        );
        warnings.extend(shaped.warnings);
        warnings.extend(starts.warnings);
        let mut topic_plan = shaped.plan;
        topic_plan.partition_backlog = starts.partitions;
        topic_plans.push(topic_plan);
    }

    let sampled = sizes::sample_sizes(source, sizes::sample_picks(&topic_plans)).await;
    let total = sizes::apply_sizes(&mut topic_plans, &sampled);
    let catch_up_seconds = total.bytes as f64 / options.throughput;
    warnings.extend(warnings::retention(
        flow,
        &topic_plans,
        catch_up_seconds,
        options.throughput,
    ));
    let groups = groups::plan_groups(
        flow,
        &target_admin,
        target,
        &rows,
        &topic_plans,
        &target_marks,
    )
    .await?;
    warnings.extend(groups.warnings);
    let mirrored = selected.iter().map(|t| t.name.clone()).collect();
    let acls = acls::plan_acls(
        flow,
        (&source_admin, &target_admin),
        (source, target),
        &mirrored,
    )
    .await?;
    let schemas = schemas::plan_schemas(flow).await;
    Ok(FlowPlan {
        flow: flow.id().to_string(),
        source: flow.source.clone(),
        target: flow.target.clone(),
        topic_naming: naming(flow.topic_naming),
        start_from: start_from(flow.start_from),
        unconsumed_fallback: fallback(flow.unconsumed_fallback),
        sync_topic_configs: flow.sync_topic_configs,
        sync_group_offsets: flow.sync_group_offsets,
        delivery: flow.delivery.as_str(),
        replication_factor: flow.replication_factor,
        topics: topic_plans,
        skipped,
        groups: groups.groups,
        backlog: total,
        catch_up_seconds,
        warnings,
        acls,
        deletions,
        schemas,
        mm2_offsets: Mm2OffsetsPlan {
            cluster: flow.mm2_offsets.cluster.clone(),
            topic: flow.mm2_offsets.topic.clone(),
            connector: flow.mm2_offsets.connector.clone(),
        },
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferry_admin::{ConfigEntry, ConfigSource};

    pub fn flow(extra: &str) -> Flow {
        let text = format!(
            "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
             [[flows]]\nsource=\"a\"\ntarget=\"b\"\n{extra}\n"
        );
        ferry_config::parse(&text, "t", std::path::Path::new("."))
            .unwrap()
            .topology
            .flows
            .remove(0)
    }

    pub fn entry(name: &str, value: &str, source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            is_default: source == ConfigSource::Default,
            is_sensitive: false,
            is_read_only: false,
            source,
        }
    }

    /// A topic to create, `a.<name>` on the target, with partitions
    /// `(partition, start, end)` starting at `earliest`.
    pub fn topic_plan(name: &str, partitions: &[(i32, i64, i64)]) -> TopicPlan {
        TopicPlan {
            source_topic: name.into(),
            target_topic: format!("a.{name}"),
            partitions: partitions.len() as i32,
            target_partitions: None,
            action: TopicAction::Create,
            written_by_flow: false,
            configs: Default::default(),
            config_changes: Vec::new(),
            target_only_configs: Default::default(),
            retention_ms: None,
            avg_record_bytes: None,
            backlog: Backlog::default(),
            partition_backlog: partitions
                .iter()
                .map(|&(partition, start, end)| PartitionBacklog {
                    partition,
                    log_start: 0,
                    end,
                    start,
                    from: StartReason::Earliest,
                    held: false,
                    records: (end - start).max(0) as u64,
                    bytes: 0,
                    groups: Vec::new(),
                })
                .collect(),
        }
    }

    /// The plan of a flow with no topics and no groups.
    pub fn empty_flow_plan() -> FlowPlan {
        FlowPlan {
            flow: "a->b".into(),
            source: "a".into(),
            target: "b".into(),
            topic_naming: "prefix",
            start_from: "unconsumed".into(),
            unconsumed_fallback: "earliest",
            sync_topic_configs: true,
            sync_group_offsets: true,
            delivery: "at-least-once",
            replication_factor: None,
            topics: Vec::new(),
            skipped: Vec::new(),
            groups: Vec::new(),
            backlog: Backlog::default(),
            catch_up_seconds: 0.0,
            warnings: Vec::new(),
            acls: None,
            deletions: None,
            schemas: None,
            mm2_offsets: Mm2OffsetsPlan {
                cluster: "a".into(),
                topic: "mm2-offsets".into(),
                connector: "mm2".into(),
            },
        }
    }

    #[test]
    fn settings_are_named_as_the_topology_writes_them() {
        assert_eq!(naming(TopicNaming::Identity), "identity");
        assert_eq!(fallback(Fallback::Latest), "latest");
        assert_eq!(start_from(StartFrom::Timestamp(5)), "timestamp:5");
        assert_eq!(start_from(StartFrom::Unconsumed), "unconsumed");
    }
}
