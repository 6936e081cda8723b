//! What a plan says: the serializable result of every phase (`--json`
//! prints a [`Plan`]; `docs/migration.md` documents the schema).

use std::collections::BTreeMap;

use serde::Serialize;

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
    /// `at-least-once` or `exactly-once`.
    pub delivery: &'static str,
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
    /// The flow's ACLs on both clusters; `None` without `sync_acls`.
    pub acls: Option<super::acls::AclPlan>,
    /// Target topics whose source topic is gone; `None` without
    /// `propagate_deletes`.
    pub deletions: Option<super::deletes::DeletesPlan>,
    /// The flow's schemas in both registries; `None` without `schemas`.
    pub schemas: Option<super::schemas::SchemaPlan>,
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
