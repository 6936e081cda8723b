//! `ferry plan`: what a flow would do to its target, without doing it.
//!
//! Per flow: the target topics that would be created (partition count and
//! the configs that would be copied) or grown, existing target topics whose
//! configs would change (or, with `sync_topic_configs = false`, conflict),
//! source topics the flow skips and why, the backlog per partition for the
//! flow's `start_from` (records, and bytes estimated from a sample), the
//! consumer groups the flow syncs with their translated offsets on the
//! target and what `--apply` would write, and warnings.
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
//! Reads only; `crate::apply` does what a plan says.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ferry_admin::{Admin, ConfigEntry, ConfigSource, GroupState};
use ferry_checkpoint::group_sync::{self, TargetGroup};
use ferry_checkpoint::Translation;
use ferry_config::{Cluster, Fallback, Flow, StartFrom, TopicNaming, Topology};
use ferry_supervisor::checkpoints;
use ferry_supervisor::topics::{self, DEFAULT_CONFIG_EXCLUDES};
use ferry_supervisor::{progress, start, EngineError};
use futures::StreamExt;
use rdkafka::message::{Headers, Message};
use regex::Regex;
use serde::Serialize;

use crate::offsets_report::{offsets_report, OffsetRow};
use crate::records::reader::{range_consumer, RangeReader};
use crate::units::{format_bytes, format_duration, format_ms, format_rate};

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

/// The whole plan (`--json` prints this).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub schema: u32,
    pub throughput_bytes_per_sec: f64,
    pub flows: Vec<FlowPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlowPlan {
    pub flow: String,
    pub source: String,
    pub target: String,
    /// `prefix` or `identity`.
    pub topic_naming: &'static str,
    /// `earliest`, `latest`, `unconsumed` or `timestamp:<ms since epoch>`.
    pub start_from: String,
    /// `earliest` or `latest`.
    pub unconsumed_fallback: &'static str,
    pub sync_topic_configs: bool,
    pub sync_group_offsets: bool,
    /// `None`: the target broker's default.
    pub replication_factor: Option<i32>,
    /// Every source topic the flow replicates, by name.
    pub topics: Vec<TopicPlan>,
    /// Source topics the flow's `topics` patterns match but that it skips.
    pub skipped: Vec<SkippedTopic>,
    pub groups: Vec<GroupPlan>,
    pub backlog: Backlog,
    /// `backlog.bytes / throughput`.
    pub catch_up_seconds: f64,
    pub warnings: Vec<Warning>,
    /// Where MirrorMaker 2's positions were looked for (`mm2_offsets`).
    pub mm2_offsets: Mm2OffsetsPlan,
}

/// The Connect offsets a flow takes over from MirrorMaker 2 with.
#[derive(Debug, Clone, Serialize)]
pub struct Mm2OffsetsPlan {
    pub cluster: String,
    pub topic: String,
    pub connector: String,
}

impl FlowPlan {
    /// Topics `--apply` would create.
    pub fn to_create(&self) -> impl Iterator<Item = &TopicPlan> {
        self.topics
            .iter()
            .filter(|t| t.action == TopicAction::Create)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopicAction {
    /// The target topic does not exist: create it.
    Create,
    /// It exists with fewer partitions: grow it.
    AddPartitions,
    /// It exists with at least as many partitions.
    Exists,
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicPlan {
    pub source_topic: String,
    pub target_topic: String,
    pub partitions: i32,
    /// `None`: the target topic does not exist.
    pub target_partitions: Option<i32>,
    pub action: TopicAction,
    /// True when this flow has saved progress (or a MirrorMaker 2 handover
    /// position) for the topic: it wrote the target topic. An existing
    /// target topic that holds records and was not written by the flow is
    /// warned about.
    pub written_by_flow: bool,
    /// The configs copied to the target (`sync_topic_configs`): set on
    /// create, kept in sync afterwards. Empty when not syncing.
    pub configs: BTreeMap<String, String>,
    /// For an existing target topic: keys whose value would change (with
    /// `sync_topic_configs`) or that differ (without).
    pub config_changes: Vec<ConfigDiff>,
    /// For an existing target topic: its own overrides of keys the source
    /// does not set. Ferry leaves them as they are.
    pub target_only_configs: BTreeMap<String, String>,
    /// The source topic's `retention.ms`; `None` when time does not delete
    /// records (compaction only) or it is unknown.
    pub retention_ms: Option<i64>,
    /// The sampled average record size; `None` when nothing was sampled.
    pub avg_record_bytes: Option<f64>,
    pub backlog: Backlog,
    pub partition_backlog: Vec<PartitionBacklog>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    pub key: String,
    /// The target topic's current value (its override or the default).
    pub target: Option<String>,
    /// The source's value, which it would get.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Backlog {
    pub records: u64,
    pub bytes: u64,
}

/// Why a partition starts where it does (the engine's own reasons).
pub use ferry_supervisor::start::Reason as StartReason;

#[derive(Debug, Clone, Serialize)]
pub struct PartitionBacklog {
    pub partition: i32,
    pub log_start: i64,
    pub end: i64,
    /// Where replication would start (for a held partition: its saved
    /// progress, where it would resume once the source log reaches it).
    pub start: i64,
    pub from: StartReason,
    /// True when the engine holds the partition (saved progress past the
    /// source log end): nothing is copied until its progress is reset.
    pub held: bool,
    pub records: u64,
    pub bytes: u64,
    /// For `unconsumed`: the groups whose committed offset is `start`.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Matches `topics_exclude`.
    Excluded,
    /// An internal topic not named literally.
    Internal,
    /// Under prefix naming, a topic that came from the target.
    RePrefix,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedTopic {
    pub topic: String,
    pub reason: SkipReason,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetGroupState {
    /// Not on the target (or dead).
    Absent,
    /// On the target, no members.
    Empty,
    /// Members are joined or joining: never written.
    Active,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupPlan {
    pub group: String,
    pub target_state: TargetGroupState,
    pub partitions: Vec<GroupPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    Exact,
    Conservative,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsetAction {
    Write,
    /// The target group is already there.
    Unchanged,
    Skip,
}

/// What `--apply` does with one group partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OffsetDecision {
    pub action: OffsetAction,
    pub offset: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupPartition {
    pub topic: String,
    pub partition: i32,
    pub target_topic: String,
    /// The group's committed offset on the source.
    pub source_offset: i64,
    /// Its translation from the offset map; `None`: unknown until
    /// replicated.
    pub translated: Option<i64>,
    pub precision: Precision,
    /// The group's committed offset on the target now.
    pub target_offset: Option<i64>,
    pub apply: OffsetDecision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// Source retention shorter than the estimated catch-up time.
    Retention,
    /// Two source topics would land in one target topic.
    Collision,
    /// The target topic holds records this flow did not write.
    ForeignTargetTopic,
    /// The target topic has more partitions than the source.
    Partitions,
    /// Configs differ and `sync_topic_configs` is off.
    ConfigConflict,
    /// A group is active on the target: its offsets are not written.
    GroupActive,
    /// Saved progress (or MirrorMaker 2's position) is behind the source
    /// log start: records were deleted before they were copied.
    DeletedBeforeCopy,
    /// Saved progress (or MirrorMaker 2's position) is past the source log
    /// end: the source topic was recreated or truncated. The partition is
    /// held.
    ProgressBeyondLogEnd,
    /// The target topic is missing although saved progress exists for it:
    /// it was deleted after records were copied, and the next run would
    /// recreate it empty and resume from the progress.
    TargetTopicRecreated,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub message: String,
}

// ---------------------------------------------------------------------------
// Building a plan
// ---------------------------------------------------------------------------

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

/// Why the flow skips a source topic its `topics` patterns match; `None`
/// for topics it replicates or that its patterns do not match. The same
/// rules, in the same order, as `topics::selects`.
pub fn skip_reason(flow: &Flow, include: &[Regex], topic: &str) -> Option<(SkipReason, String)> {
    if !include.iter().any(|r| r.is_match(topic)) {
        return None;
    }
    if !flow.topics.matches(topic) {
        return Some((SkipReason::Excluded, "matches topics_exclude".into()));
    }
    if topics::is_internal(topic) && !flow.topics.names_explicitly(topic) {
        return Some((
            SkipReason::Internal,
            "an internal topic (name it literally in topics to copy it)".into(),
        ));
    }
    if flow.topic_naming == TopicNaming::Prefix
        && TopicNaming::Prefix
            .upstream_of(&flow.target, topic)
            .is_some()
    {
        return Some((
            SkipReason::RePrefix,
            format!(
                "came from {} under prefix naming; copying it back would re-prefix it",
                flow.target
            ),
        ));
    }
    None
}

fn include_patterns(flow: &Flow) -> Vec<Regex> {
    flow.topics
        .include_patterns()
        .iter()
        .filter_map(|p| Regex::new(&format!("^(?:{p})$")).ok())
        .collect()
}

fn copyable(flow: &Flow, key: &str) -> bool {
    !DEFAULT_CONFIG_EXCLUDES.contains(&key) && !flow.topic_configs_exclude.iter().any(|x| x == key)
}

/// How an existing target topic's configs compare with what the flow
/// copies: the keys `topics::sync_topic_configs` would set (the source
/// value differs from the target's override, or the target has none), and
/// the target's own overrides of copyable keys the source does not set,
/// which the engine leaves alone.
pub fn config_diff(
    flow: &Flow,
    wanted: &BTreeMap<String, String>,
    current: &[ConfigEntry],
) -> (Vec<ConfigDiff>, BTreeMap<String, String>) {
    let overridden: BTreeMap<&str, Option<&str>> = current
        .iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    let value_of = |k: &str| {
        current
            .iter()
            .find(|e| e.name == k)
            .and_then(|e| e.value.clone())
    };
    let changes = wanted
        .iter()
        .filter(|(k, v)| overridden.get(k.as_str()) != Some(&Some(v.as_str())))
        .map(|(k, v)| ConfigDiff {
            key: k.clone(),
            target: value_of(k),
            source: Some(v.clone()),
        })
        .collect();
    let kept = overridden
        .iter()
        .filter(|(k, _)| !wanted.contains_key(**k) && copyable(flow, k))
        .filter_map(|(k, v)| Some((k.to_string(), v.map(str::to_string)?)))
        .collect();
    (changes, kept)
}

/// `retention.ms` when time-based deletion applies to the topic.
fn retention_ms(entries: &[ConfigEntry]) -> Option<i64> {
    let value = |k: &str| {
        entries
            .iter()
            .find(|e| e.name == k)
            .and_then(|e| e.value.as_deref())
    };
    let deletes =
        value("cleanup.policy").is_none_or(|p| p.split(',').any(|x| x.trim() == "delete"));
    let ms: i64 = value("retention.ms")?.parse().ok()?;
    (deletes && ms >= 0).then_some(ms)
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

/// What the target holds for a partition a group has an offset on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPartition {
    /// The topic or partition does not exist yet: `--apply` creates it
    /// empty.
    WillBeCreated,
    /// Exists without records; the end is where the next record goes.
    Empty { end: i64 },
    /// Holds records.
    HasRecords,
}

/// Where `--apply` would put one group partition on the target, and why.
///
/// A translated offset (exact or conservative) is used as it is. Without
/// one — nothing of the partition has been replicated — the data is not
/// there to translate to: for a metadata-only migration the group starts at
/// the beginning of the new, empty target partition (offset 0 for a topic
/// `--apply` creates, the end of an existing empty one), which is where the
/// first record producers write after the switch lands, so consumers miss
/// nothing written to the target. If the target partition already holds
/// records Ferry did not copy, no offset is right: it is skipped. Then the
/// group-sync rule: never a group active on the target, never backwards.
pub fn decide(
    state: TargetGroupState,
    translated: Translation,
    target: TargetPartition,
    current: Option<i64>,
    remote: &str,
    partition: i32,
) -> OffsetDecision {
    let (offset, why) = match (translated, target) {
        (Translation::Exact(d), _) => (d, "translated (exact)".to_string()),
        (Translation::Conservative(d), _) => (
            d,
            "translated (conservative: may re-read a few records)".to_string(),
        ),
        (Translation::Unknown, TargetPartition::WillBeCreated) => (
            0,
            "no data copied: the start of the new, empty target topic".to_string(),
        ),
        (Translation::Unknown, TargetPartition::Empty { end }) => (
            end,
            "no data copied: the end of the empty target partition, where the first new record lands"
                .to_string(),
        ),
        (Translation::Unknown, TargetPartition::HasRecords) => {
            return OffsetDecision {
                action: OffsetAction::Skip,
                offset: None,
                reason: "unknown until replicated: the target partition holds records Ferry did not copy".into(),
            }
        }
    };
    let group = match state {
        TargetGroupState::Active => TargetGroup::Active,
        _ => TargetGroup::Idle,
    };
    let current_map: HashMap<(String, i32), i64> = current
        .map(|c| ((remote.to_string(), partition), c))
        .into_iter()
        .collect();
    let p = group_sync::plan(group, [(remote, partition, offset)], &current_map);
    if let Some((_, _, _, reason)) = p.skip.first() {
        return OffsetDecision {
            action: OffsetAction::Skip,
            offset: Some(offset),
            reason: reason.to_string(),
        };
    }
    if p.write.is_empty() {
        return OffsetDecision {
            action: OffsetAction::Unchanged,
            offset: Some(offset),
            reason: "the target group is already there".into(),
        };
    }
    OffsetDecision {
        action: OffsetAction::Write,
        offset: Some(offset),
        reason: why,
    }
}

/// Watermarks of many partitions, a few requests at a time.
async fn watermarks_of(
    admin: &Admin,
    cluster: &Cluster,
    parts: Vec<(String, i32)>,
) -> Result<HashMap<(String, i32), (i64, i64)>, EngineError> {
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
        out.insert(key, (w.low, w.high));
    }
    Ok(out)
}

/// Average record size per topic, from up to [`SAMPLE_RECORDS`] records at
/// `(topic, partition, start, end)`. Topics that cannot be sampled are left
/// out (logged).
async fn sample_sizes(
    cluster: &Cluster,
    picks: Vec<(String, i32, i64, i64)>,
) -> HashMap<String, f64> {
    if picks.is_empty() {
        return HashMap::new();
    }
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = HashMap::new();
        let consumer = match range_consumer(&cluster, "ferry-plan") {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot sample record sizes");
                return out;
            }
        };
        for (topic, partition, start, end) in picks {
            let end = end.min(start + SAMPLE_RECORDS);
            let sampled = (|| -> Result<Option<f64>, String> {
                let mut reader = RangeReader::new(&consumer, &topic, partition, start, end)?
                    .with_stall_timeout(Duration::from_secs(15));
                let (mut n, mut bytes) = (0u64, 0u64);
                while let Some(m) = reader.next_record()? {
                    n += 1;
                    bytes += (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len))
                        as u64;
                    if let Some(h) = m.headers() {
                        bytes += (0..h.count())
                            .filter_map(|i| h.try_get(i))
                            .map(|h| (h.key.len() + h.value.map_or(0, <[u8]>::len)) as u64)
                            .sum::<u64>();
                    }
                }
                Ok((n > 0).then(|| bytes as f64 / n as f64))
            })();
            match sampled {
                Ok(Some(avg)) => {
                    out.insert(topic, avg);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(cluster = %cluster.name, topic, partition, error = %e, "cannot sample record sizes")
                }
            }
        }
        out
    })
    .await
    .unwrap_or_default()
}

/// Target topic names other flows into the same target would write, with
/// their flow and source topic (for collisions).
async fn other_flows_remotes(
    topology: &Topology,
    flow: &Flow,
) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for other in topology
        .flows
        .iter()
        .filter(|f| f.enabled && f.target == flow.target && f.id() != flow.id())
    {
        let (source, _) = crate::clusters(topology, other)?;
        let names = crate::admin(source, "ferry-plan")?
            .topic_metadata()
            .await
            .map_err(crate::client_err(source, "cannot list topics"))?;
        for t in names.keys().filter(|t| topics::selects(other, t)) {
            out.entry(other.remote_topic(t))
                .or_default()
                .push(format!("{t} (flow {})", other.id()));
        }
    }
    Ok(out)
}

async fn plan_flow(
    topology: &Topology,
    flow: &Flow,
    options: &PlanOptions,
) -> Result<FlowPlan, EngineError> {
    let (source, target) = crate::clusters(topology, flow)?;
    let source_admin = crate::admin(source, "ferry-plan")?;
    let target_admin = crate::admin(target, "ferry-plan")?;
    let source_topics = source_admin
        .topic_metadata()
        .await
        .map_err(crate::client_err(source, "cannot list topics"))?;
    let target_topics = target_admin
        .topic_metadata()
        .await
        .map_err(crate::client_err(target, "cannot list topics"))?;
    let include = include_patterns(flow);
    let mut skipped = Vec::new();
    let mut selected: Vec<(String, i32)> = Vec::new();
    for (t, n) in &source_topics {
        if topics::selects(flow, t) {
            selected.push((t.clone(), *n as i32));
        } else if let Some((reason, detail)) = skip_reason(flow, &include, t) {
            skipped.push(SkippedTopic {
                topic: t.clone(),
                reason,
                detail,
            });
        }
    }
    let saved = progress::load(target, &flow.source, INTERNAL_READ_TIMEOUT).await?;
    let mm2_offsets_cluster = topology.cluster(&flow.mm2_offsets.cluster).ok_or_else(|| {
        EngineError::Internal(format!(
            "flow {} names a cluster missing from the validated topology",
            flow.id()
        ))
    })?;
    let handover = checkpoints::mm2_resume_positions(flow, mm2_offsets_cluster, target).await?;
    let rows = offsets_report(flow, source, target, None).await?;
    let mut warnings = Vec::new();

    // Watermarks of every source partition and of every partition of the
    // target topics that exist.
    let parts: Vec<(String, i32)> = selected
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p)))
        .collect();
    let source_marks = watermarks_of(&source_admin, source, parts).await?;
    let target_parts: Vec<(String, i32)> = selected
        .iter()
        .map(|(t, _)| flow.remote_topic(t))
        .filter_map(|r| Some((target_topics.get(&r).copied()?, r)))
        .flat_map(|(n, r)| (0..n as i32).map(move |p| (r.clone(), p)))
        .collect();
    let target_marks = watermarks_of(&target_admin, target, target_parts).await?;

    // Unconsumed: the smallest committed offset per partition and the
    // groups at it.
    let mut smallest: HashMap<(String, i32), (i64, Vec<String>)> = HashMap::new();
    for r in &rows {
        let e = smallest
            .entry((r.topic.clone(), r.partition))
            .or_insert((r.source_offset, Vec::new()));
        if r.source_offset < e.0 {
            *e = (r.source_offset, Vec::new());
        }
        if r.source_offset == e.0 {
            e.1.push(r.group.clone());
        }
    }

    let mut topic_plans = Vec::new();
    for (topic, partitions) in &selected {
        let remote = flow.remote_topic(topic);
        let entries =
            source_admin
                .describe_topic_configs(topic)
                .await
                .map_err(crate::client_err(
                    source,
                    &format!("cannot read the configs of topic {topic}"),
                ))?;
        let configs = if flow.sync_topic_configs {
            topics::configs_to_copy(flow, &entries)
        } else {
            BTreeMap::new()
        };
        let target_partitions = target_topics.get(&remote).map(|n| *n as i32);
        let action = match target_partitions {
            None => TopicAction::Create,
            Some(n) if n < *partitions => TopicAction::AddPartitions,
            Some(_) => TopicAction::Exists,
        };
        let written_by_flow = (0..*partitions).any(|p| {
            let key = (topic.clone(), p);
            saved.contains_key(&key) || handover.contains_key(&key)
        });
        if action == TopicAction::Create {
            for p in 0..*partitions {
                if let Some(offset) = saved.get(&(topic.clone(), p)) {
                    warnings.push(Warning {
                        kind: WarningKind::TargetTopicRecreated,
                        message: start::target_lost(
                            &flow.id().to_string(),
                            &flow.target,
                            &remote,
                            topic,
                            p,
                            *offset,
                        ),
                    });
                }
            }
        }
        let mut config_changes = Vec::new();
        let mut target_only_configs = BTreeMap::new();
        if let Some(n) = target_partitions {
            let current =
                target_admin
                    .describe_topic_configs(&remote)
                    .await
                    .map_err(crate::client_err(
                        target,
                        &format!("cannot read the configs of topic {remote}"),
                    ))?;
            let wanted = topics::configs_to_copy(flow, &entries);
            (config_changes, target_only_configs) = config_diff(flow, &wanted, &current);
            let records: i64 = (0..n)
                .filter_map(|p| target_marks.get(&(remote.clone(), p)))
                .map(|(low, high)| high - low)
                .sum();
            if !written_by_flow && records > 0 {
                warnings.push(Warning {
                    kind: WarningKind::ForeignTargetTopic,
                    message: format!(
                        "{remote} on {} holds {records} records this flow did not write (no saved progress): Ferry would append after them",
                        flow.target
                    ),
                });
            }
            if n > *partitions {
                warnings.push(Warning {
                    kind: WarningKind::Partitions,
                    message: format!(
                        "{remote} has {n} partitions on {}, {topic} has {partitions} on {}: records keep their partition, so partitions {}..{} receive nothing from this flow",
                        flow.target,
                        flow.source,
                        partitions,
                        n - 1
                    ),
                });
            }
            if !flow.sync_topic_configs && !config_changes.is_empty() {
                warnings.push(Warning {
                    kind: WarningKind::ConfigConflict,
                    message: format!(
                        "{remote} differs from {topic} in {} and sync_topic_configs = false leaves it so",
                        config_changes
                            .iter()
                            .map(|c| c.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let timestamps: HashMap<i32, Option<i64>> = match flow.start_from {
            StartFrom::Timestamp(ms) => {
                let query: Vec<(&str, i32, i64)> =
                    (0..*partitions).map(|p| (topic.as_str(), p, ms)).collect();
                source_admin
                    .offsets_for_times(&query)
                    .await
                    .map_err(crate::client_err(
                        source,
                        &format!("cannot look up offsets for timestamp {ms} in {topic}"),
                    ))?
                    .into_iter()
                    .map(|o| (o.partition, o.offset))
                    .collect()
            }
            _ => HashMap::new(),
        };
        let mut partition_backlog = Vec::new();
        for p in 0..*partitions {
            let key = (topic.clone(), p);
            let (low, high) = source_marks.get(&key).copied().unwrap_or((0, 0));
            let mut groups = Vec::new();
            let origin = match start::Origin::remembered(
                saved.get(&key).copied(),
                handover.get(&key).copied(),
            ) {
                Some(origin) => origin,
                None => start::Origin::Policy(match flow.start_from {
                    StartFrom::Earliest => start::Policy::Earliest,
                    StartFrom::Latest => start::Policy::Latest,
                    StartFrom::Timestamp(_) => start::Policy::Timestamp {
                        found: timestamps.get(&p).copied().flatten(),
                    },
                    StartFrom::Unconsumed => start::Policy::Unconsumed {
                        committed: smallest.get(&key).map(|(o, g)| {
                            groups = g.clone();
                            groups.sort();
                            *o
                        }),
                        fallback: flow.unconsumed_fallback,
                    },
                }),
            };
            let decision = start::decide(origin, low, high);
            if let Some(w) = decision.warning {
                warnings.push(Warning {
                    kind: match w {
                        start::Warning::DeletedBeforeCopy { .. } => WarningKind::DeletedBeforeCopy,
                        start::Warning::BeyondLogEnd { .. } => WarningKind::ProgressBeyondLogEnd,
                    },
                    message: w.describe(&flow.source, topic, p, decision.reason),
                });
            }
            let held = decision.is_held();
            let start = match (decision.start, origin) {
                (Some(o), _) => o,
                (None, start::Origin::Progress(o) | start::Origin::Handover(o)) => o,
                (None, start::Origin::Policy(_)) => high,
            };
            let from = decision.reason;
            partition_backlog.push(PartitionBacklog {
                partition: p,
                log_start: low,
                end: high,
                start,
                from,
                held,
                records: if held {
                    0
                } else {
                    (high - start).max(0) as u64
                },
                bytes: 0,
                groups,
            });
        }
        topic_plans.push(TopicPlan {
            source_topic: topic.clone(),
            target_topic: remote,
            partitions: *partitions,
            target_partitions,
            action,
            written_by_flow,
            configs,
            config_changes,
            target_only_configs,
            retention_ms: retention_ms(&entries),
            avg_record_bytes: None,
            backlog: Backlog::default(),
            partition_backlog,
        });
    }

    // Sizes: sample each topic's largest backlog.
    let picks: Vec<(String, i32, i64, i64)> = topic_plans
        .iter()
        .filter_map(|t| {
            let b = t
                .partition_backlog
                .iter()
                .filter(|b| b.records > 0)
                .max_by_key(|b| (b.records, std::cmp::Reverse(b.partition)))?;
            Some((t.source_topic.clone(), b.partition, b.start, b.end))
        })
        .collect();
    let sizes = sample_sizes(source, picks).await;
    let mut total = Backlog::default();
    for t in &mut topic_plans {
        t.avg_record_bytes = sizes.get(&t.source_topic).copied();
        let avg = t.avg_record_bytes.unwrap_or(0.0);
        for b in &mut t.partition_backlog {
            b.bytes = (b.records as f64 * avg).round() as u64;
            t.backlog.records += b.records;
            t.backlog.bytes += b.bytes;
        }
        total.records += t.backlog.records;
        total.bytes += t.backlog.bytes;
    }
    let catch_up_seconds = total.bytes as f64 / options.throughput;
    for t in &topic_plans {
        if let Some(ms) = t.retention_ms {
            if t.backlog.records > 0 && catch_up_seconds * 1000.0 > ms as f64 {
                warnings.push(Warning {
                    kind: WarningKind::Retention,
                    message: format!(
                        "{}: retention.ms on {} is {ms} ({}), shorter than the estimated catch-up time of {} at {}: records may be deleted before they are copied",
                        t.source_topic,
                        flow.source,
                        format_ms(ms),
                        format_duration(catch_up_seconds),
                        format_rate(options.throughput)
                    ),
                });
            }
        }
    }
    let others = other_flows_remotes(topology, flow).await?;
    for t in &topic_plans {
        if let Some(from) = others.get(&t.target_topic) {
            warnings.push(Warning {
                kind: WarningKind::Collision,
                message: format!(
                    "{} on {} would receive {} (this flow) and {}",
                    t.target_topic,
                    flow.target,
                    t.source_topic,
                    from.join(", ")
                ),
            });
        }
    }

    let groups = plan_groups(
        flow,
        &target_admin,
        target,
        &rows,
        &topic_plans,
        &target_marks,
        &mut warnings,
    )
    .await?;
    skipped.sort_by(|a, b| a.topic.cmp(&b.topic));
    Ok(FlowPlan {
        flow: flow.id().to_string(),
        source: flow.source.clone(),
        target: flow.target.clone(),
        topic_naming: naming(flow.topic_naming),
        start_from: start_from(flow.start_from),
        unconsumed_fallback: fallback(flow.unconsumed_fallback),
        sync_topic_configs: flow.sync_topic_configs,
        sync_group_offsets: flow.sync_group_offsets,
        replication_factor: flow.replication_factor,
        topics: topic_plans,
        skipped,
        groups,
        backlog: total,
        catch_up_seconds,
        warnings,
        mm2_offsets: Mm2OffsetsPlan {
            cluster: flow.mm2_offsets.cluster.clone(),
            topic: flow.mm2_offsets.topic.clone(),
            connector: flow.mm2_offsets.connector.clone(),
        },
    })
}

/// The state of groups on the target.
pub(crate) async fn target_states(
    admin: &Admin,
    cluster: &Cluster,
    groups: &[&str],
) -> Result<HashMap<String, (TargetGroupState, usize)>, EngineError> {
    let described = admin
        .describe_consumer_groups(groups)
        .await
        .map_err(crate::client_err(
            cluster,
            "cannot describe consumer groups",
        ))?;
    Ok(described
        .into_iter()
        .map(|d| {
            let state = if d.error.is_some() || d.state == GroupState::Dead {
                TargetGroupState::Absent
            } else if d.state.has_no_members() {
                TargetGroupState::Empty
            } else {
                TargetGroupState::Active
            };
            (d.group_id, (state, d.member_count))
        })
        .collect())
}

async fn plan_groups(
    flow: &Flow,
    target_admin: &Admin,
    target: &Cluster,
    rows: &[OffsetRow],
    topic_plans: &[TopicPlan],
    target_marks: &HashMap<(String, i32), (i64, i64)>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<GroupPlan>, EngineError> {
    let mut by_group: BTreeMap<&str, Vec<&OffsetRow>> = BTreeMap::new();
    for r in rows {
        by_group.entry(r.group.as_str()).or_default().push(r);
    }
    if by_group.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = by_group.keys().copied().collect();
    let states = target_states(target_admin, target, &names).await?;
    let existing: HashMap<&str, Option<i32>> = topic_plans
        .iter()
        .map(|t| (t.target_topic.as_str(), t.target_partitions))
        .collect();
    let mut out = Vec::new();
    for (group, mut group_rows) in by_group {
        group_rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let (state, members) = states
            .get(group)
            .copied()
            .unwrap_or((TargetGroupState::Absent, 0));
        if state == TargetGroupState::Active && flow.sync_group_offsets {
            warnings.push(Warning {
                kind: WarningKind::GroupActive,
                message: format!(
                    "group {group} is active on {} ({members} member{}): its offsets are not written there while it is",
                    flow.target,
                    if members == 1 { "" } else { "s" }
                ),
            });
        }
        let partitions = group_rows
            .into_iter()
            .map(|r| {
                let target_partition = match existing.get(r.remote_topic.as_str()) {
                    Some(Some(n)) if r.partition < *n => {
                        match target_marks.get(&(r.remote_topic.clone(), r.partition)) {
                            Some((low, high)) if low == high => {
                                TargetPartition::Empty { end: *high }
                            }
                            _ => TargetPartition::HasRecords,
                        }
                    }
                    _ => TargetPartition::WillBeCreated,
                };
                GroupPartition {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    target_topic: r.remote_topic.clone(),
                    source_offset: r.source_offset,
                    translated: r.translated.offset(),
                    precision: match r.translated {
                        Translation::Exact(_) => Precision::Exact,
                        Translation::Conservative(_) => Precision::Conservative,
                        Translation::Unknown => Precision::Unknown,
                    },
                    target_offset: r.target_offset,
                    apply: decide(
                        state,
                        r.translated,
                        target_partition,
                        r.target_offset,
                        &r.remote_topic,
                        r.partition,
                    ),
                }
            })
            .collect();
        out.push(GroupPlan {
            group: group.to_string(),
            target_state: state,
            partitions,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn configs_line(configs: &BTreeMap<String, String>) -> String {
    if configs.is_empty() {
        return "none".into();
    }
    configs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn diff_line(diffs: &[ConfigDiff]) -> String {
    diffs
        .iter()
        .map(|d| {
            format!(
                "{} {} -> {}",
                d.key,
                d.target.as_deref().unwrap_or("(unset)"),
                d.source.as_deref().unwrap_or("(unset)")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The human-readable plan.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    for (i, f) in plan.flows.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        render_flow(&mut out, f, plan.throughput_bytes_per_sec);
    }
    out
}

fn render_flow(out: &mut String, f: &FlowPlan, throughput: f64) {
    let start = if f.start_from == "unconsumed" {
        format!("unconsumed (fallback {})", f.unconsumed_fallback)
    } else {
        f.start_from.clone()
    };
    out.push_str(&format!(
        "flow {}: {} naming, start_from = {start}, sync_topic_configs = {}, sync_group_offsets = {}\n",
        f.flow, f.topic_naming, f.sync_topic_configs, f.sync_group_offsets
    ));
    let replication = f
        .replication_factor
        .map_or("broker default".to_string(), |r| r.to_string());

    let create: Vec<&TopicPlan> = f.to_create().collect();
    out.push_str(&format!("\ntopics to create on {}: ", f.target));
    if create.is_empty() {
        out.push_str("none\n");
    } else {
        out.push_str(&format!("{}\n", create.len()));
        for t in &create {
            out.push_str(&format!(
                "  {} <- {}: {}, replication factor {replication}\n    configs: {}\n",
                t.target_topic,
                t.source_topic,
                plural(t.partitions as usize, "partition", "partitions"),
                configs_line(&t.configs)
            ));
        }
    }

    let existing: Vec<&TopicPlan> = f
        .topics
        .iter()
        .filter(|t| t.action != TopicAction::Create)
        .collect();
    out.push_str(&format!("\nexisting topics on {}: ", f.target));
    if existing.is_empty() {
        out.push_str("none\n");
    } else {
        out.push_str(&format!("{}\n", existing.len()));
        for t in &existing {
            let n = t.target_partitions.unwrap_or(0);
            let partitions = match t.action {
                TopicAction::AddPartitions => format!(
                    "{} on {}, {n} on {}: would add {}",
                    t.partitions,
                    f.source,
                    f.target,
                    plural((t.partitions - n) as usize, "partition", "partitions")
                ),
                _ if n == t.partitions => plural(n as usize, "partition", "partitions"),
                _ => format!("{} on {}, {n} on {}", t.partitions, f.source, f.target),
            };
            out.push_str(&format!(
                "  {} <- {}: {partitions}\n",
                t.target_topic, t.source_topic
            ));
            let label = if f.sync_topic_configs {
                "configs that would change"
            } else {
                "configs that differ (not synced)"
            };
            if t.config_changes.is_empty() {
                out.push_str("    configs: in sync\n");
            } else {
                out.push_str(&format!("    {label}: {}\n", diff_line(&t.config_changes)));
            }
            if !t.target_only_configs.is_empty() {
                out.push_str(&format!(
                    "    kept (set on {} only): {}\n",
                    f.target,
                    configs_line(&t.target_only_configs)
                ));
            }
        }
    }

    out.push_str("\nskipped source topics: ");
    if f.skipped.is_empty() {
        out.push_str("none\n");
    } else {
        out.push_str(&format!("{}\n", f.skipped.len()));
        let rows: Vec<[String; 2]> = f
            .skipped
            .iter()
            .map(|s| [s.topic.clone(), s.detail.clone()])
            .collect();
        out.push_str(&crate::verify::table(&rows));
    }

    out.push_str(&format!(
        "\nbacklog: {} records, about {}; catch-up at {}: {}\n",
        f.backlog.records,
        format_bytes(f.backlog.bytes),
        format_rate(throughput),
        format_duration(f.catch_up_seconds)
    ));
    let mut rows = vec![[
        "TOPIC",
        "PARTITION",
        "LOG START",
        "START",
        "END",
        "RECORDS",
        "BYTES",
        "STARTS AT",
    ]
    .map(String::from)];
    for t in &f.topics {
        for b in &t.partition_backlog {
            let from = match b.from {
                StartReason::Progress => "saved progress".to_string(),
                StartReason::Mm2Handover => "where MirrorMaker 2 stopped".to_string(),
                StartReason::Earliest => "earliest".to_string(),
                StartReason::Latest => "latest".to_string(),
                StartReason::Timestamp => "timestamp".to_string(),
                StartReason::Unconsumed => {
                    format!("smallest committed offset ({})", b.groups.join(", "))
                }
                StartReason::FallbackEarliest => "no committed offset: earliest".to_string(),
                StartReason::FallbackLatest => "no committed offset: latest".to_string(),
            };
            let from = if b.held {
                format!("HELD: {from} past the source log end (see warnings)")
            } else {
                from
            };
            rows.push([
                t.source_topic.clone(),
                b.partition.to_string(),
                b.log_start.to_string(),
                b.start.to_string(),
                b.end.to_string(),
                b.records.to_string(),
                format_bytes(b.bytes),
                from,
            ]);
        }
    }
    if rows.len() > 1 {
        out.push_str(&crate::verify::table(&rows));
    }
    let handed_over = f
        .topics
        .iter()
        .flat_map(|t| &t.partition_backlog)
        .filter(|b| b.from == StartReason::Mm2Handover)
        .count();
    if handed_over > 0 {
        let m = &f.mm2_offsets;
        out.push_str(&format!(
            "taking over from MirrorMaker 2: {} start where it stopped, per {} on {} (connector {})\n",
            plural(handed_over, "partition", "partitions"),
            m.topic,
            m.cluster,
            m.connector
        ));
    }

    out.push_str("\nconsumer groups: ");
    if f.groups.is_empty() {
        out.push_str("none with committed offsets on replicated topics\n");
    } else {
        out.push_str(&format!("{}\n", f.groups.len()));
        let mut rows = vec![[
            "GROUP",
            "ON TARGET",
            "TOPIC",
            "PARTITION",
            "SOURCE OFFSET",
            "TARGET TOPIC",
            "TRANSLATED",
            "TARGET OFFSET",
            "--apply",
        ]
        .map(String::from)];
        for g in &f.groups {
            for p in &g.partitions {
                let translated = match (p.translated, p.precision) {
                    (Some(o), Precision::Exact) => format!("{o} (exact)"),
                    (Some(o), _) => format!("{o} (conservative)"),
                    (None, _) => "unknown until replicated".to_string(),
                };
                let apply = match (p.apply.action, p.apply.offset) {
                    (OffsetAction::Write, Some(o)) => format!("set {o}: {}", p.apply.reason),
                    (OffsetAction::Unchanged, _) => "unchanged".to_string(),
                    (_, _) => format!("skip: {}", p.apply.reason),
                };
                rows.push([
                    g.group.clone(),
                    match g.target_state {
                        TargetGroupState::Absent => "absent",
                        TargetGroupState::Empty => "empty",
                        TargetGroupState::Active => "active",
                    }
                    .to_string(),
                    p.topic.clone(),
                    p.partition.to_string(),
                    p.source_offset.to_string(),
                    p.target_topic.clone(),
                    translated,
                    p.target_offset.map_or("-".to_string(), |o| o.to_string()),
                    apply,
                ]);
            }
        }
        out.push_str(&crate::verify::table(&rows));
    }

    out.push_str("\nwarnings: ");
    if f.warnings.is_empty() {
        out.push_str("none\n");
    } else {
        out.push_str(&format!("{}\n", f.warnings.len()));
        for w in &f.warnings {
            out.push_str(&format!("  - {}\n", w.message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(extra: &str) -> Flow {
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

    fn entry(name: &str, value: &str, source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: Some(value.into()),
            is_default: source == ConfigSource::Default,
            is_sensitive: false,
            is_read_only: false,
            source,
        }
    }

    #[test]
    fn skip_reasons_agree_with_the_engine() {
        let f = flow("topics = [\".*\", \"heartbeats\"]\ntopics_exclude = [\".*\\\\.tmp\"]");
        let include = include_patterns(&f);
        let names = [
            "orders",
            "orders.tmp",
            "__consumer_offsets",
            "mm2-offset-syncs.b.internal",
            "heartbeats",
            "b.orders",
            "c.orders",
        ];
        for n in names {
            assert_eq!(
                skip_reason(&f, &include, n).is_none(),
                topics::selects(&f, n),
                "{n}"
            );
        }
        let reason = |n: &str| skip_reason(&f, &include, n).map(|(r, _)| r);
        assert_eq!(reason("orders.tmp"), Some(SkipReason::Excluded));
        assert_eq!(reason("__consumer_offsets"), Some(SkipReason::Internal));
        assert_eq!(reason("b.orders"), Some(SkipReason::RePrefix));
        assert_eq!(reason("heartbeats"), None, "named literally");
        let narrow = flow("topics = [\"orders\"]");
        assert_eq!(
            skip_reason(&narrow, &include_patterns(&narrow), "b.x"),
            None
        );
    }

    #[test]
    fn config_diff_sets_what_differs_and_keeps_target_overrides() {
        let f = flow("topic_configs_exclude = [\"segment.bytes\"]");
        let wanted = BTreeMap::from([
            ("retention.ms".to_string(), "1000".to_string()),
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("max.compaction.lag.ms".to_string(), "60000".to_string()),
        ]);
        let current = vec![
            entry("retention.ms", "5000", ConfigSource::DynamicTopic),
            entry("cleanup.policy", "compact", ConfigSource::DynamicTopic),
            entry("max.compaction.lag.ms", "9", ConfigSource::Default),
            entry("max.message.bytes", "9999", ConfigSource::DynamicTopic),
            entry("segment.bytes", "1", ConfigSource::DynamicTopic),
            entry("min.insync.replicas", "2", ConfigSource::DynamicTopic),
        ];
        let (changes, kept) = config_diff(&f, &wanted, &current);
        assert_eq!(
            changes,
            vec![
                ConfigDiff {
                    key: "max.compaction.lag.ms".into(),
                    target: Some("9".into()),
                    source: Some("60000".into())
                },
                ConfigDiff {
                    key: "retention.ms".into(),
                    target: Some("5000".into()),
                    source: Some("1000".into())
                },
            ]
        );
        assert_eq!(
            diff_line(&changes),
            "max.compaction.lag.ms 9 -> 60000; retention.ms 5000 -> 1000"
        );
        // Excluded keys are the target's business, not a difference.
        assert_eq!(
            kept,
            BTreeMap::from([("max.message.bytes".to_string(), "9999".to_string())])
        );
    }

    #[test]
    fn retention_applies_only_to_deleting_topics() {
        let e = |policy: &str, ms: &str| {
            vec![
                entry("cleanup.policy", policy, ConfigSource::Default),
                entry("retention.ms", ms, ConfigSource::Default),
            ]
        };
        assert_eq!(retention_ms(&e("delete", "1000")), Some(1000));
        assert_eq!(retention_ms(&e("compact,delete", "1000")), Some(1000));
        assert_eq!(retention_ms(&e("compact", "1000")), None);
        assert_eq!(retention_ms(&e("delete", "-1")), None);
    }

    #[test]
    fn metadata_only_offsets_start_at_the_new_topic_and_never_go_back() {
        use TargetGroupState::*;
        let d = |state, t, target, current| decide(state, t, target, current, "src.t", 0);
        let new = d(
            Absent,
            Translation::Unknown,
            TargetPartition::WillBeCreated,
            None,
        );
        assert_eq!((new.action, new.offset), (OffsetAction::Write, Some(0)));
        assert!(new.reason.contains("new, empty"), "{}", new.reason);
        let empty = d(
            Empty,
            Translation::Unknown,
            TargetPartition::Empty { end: 7 },
            None,
        );
        assert_eq!(empty.offset, Some(7));
        let foreign = d(
            Absent,
            Translation::Unknown,
            TargetPartition::HasRecords,
            None,
        );
        assert_eq!((foreign.action, foreign.offset), (OffsetAction::Skip, None));
        let exact = d(
            Empty,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            Some(10),
        );
        assert_eq!(
            (exact.action, exact.offset),
            (OffsetAction::Write, Some(40))
        );
        let behind = d(
            Empty,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            Some(50),
        );
        assert_eq!(behind.action, OffsetAction::Skip);
        assert!(behind.reason.contains("already at offset 50"));
        let same = d(
            Empty,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            Some(40),
        );
        assert_eq!(same.action, OffsetAction::Unchanged);
        let active = d(
            Active,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            None,
        );
        assert_eq!(active.action, OffsetAction::Skip);
    }
}
