//! Owned, plain-Rust request and result types. Nothing here points into
//! librdkafka memory.

use crate::error::AdminError;

/// State of a consumer group, as reported by the group coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; committed offsets may be altered.
    Empty,
    /// Members joined and have an assignment.
    Stable,
    /// A rebalance is starting.
    PreparingRebalance,
    /// Members are waiting for their assignment.
    CompletingRebalance,
    /// The group has no members and no metadata (or does not exist).
    Dead,
    /// A state librdkafka does not know (e.g. KIP-848 `Assigning`).
    Unknown,
}

impl GroupState {
    /// True only for [`GroupState::Empty`] and [`GroupState::Dead`]: no live
    /// members, so the broker accepts offset changes.
    pub fn has_no_members(self) -> bool {
        matches!(self, GroupState::Empty | GroupState::Dead)
    }
}

/// Which group protocol a group uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// The classic (JoinGroup/SyncGroup) protocol.
    Classic,
    /// The KIP-848 consumer protocol.
    Consumer,
    /// Not reported (old broker) or not known to librdkafka.
    Unknown,
}

/// One entry of [`crate::Admin::list_consumer_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Current state.
    pub state: GroupState,
    /// True for "simple" groups: offsets committed without group membership
    /// (empty protocol type).
    pub is_simple: bool,
    /// Group protocol.
    pub group_type: GroupType,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id assigned by the coordinator.
    pub consumer_id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// Host the member connected from.
    pub host: String,
    /// Static membership id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// Partitions currently assigned to the member.
    pub assignment: Vec<(String, i32)>,
}

/// One entry of [`crate::Admin::describe_consumer_groups`].
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Current state ([`GroupState::Dead`] for a group that does not exist on
    /// brokers that do not report an error for that).
    pub state: GroupState,
    /// Number of members.
    pub member_count: usize,
    /// The members.
    pub members: Vec<GroupMember>,
    /// True for "simple" groups.
    pub is_simple: bool,
    /// Partition assignor in use (`range`, `cooperative-sticky`, …), may be
    /// empty.
    pub partition_assignor: String,
    /// Group protocol.
    pub group_type: GroupType,
    /// Broker id of the group coordinator, if known.
    pub coordinator: Option<i32>,
    /// Set when this group could not be described (e.g.
    /// [`AdminError::GroupNotFound`]); the other fields are then defaults.
    pub error: Option<AdminError>,
}

/// A committed offset of a group, from
/// [`crate::Admin::list_consumer_group_offsets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The committed offset (the next offset the group will read), or `None`
    /// when the group has no committed offset for this partition.
    pub offset: Option<i64>,
    /// Metadata string stored with the commit (often empty).
    pub metadata: String,
}

/// An operation of [`crate::Admin::incremental_alter_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set the key to this value.
    Set(String),
    /// Remove the key's override so it reverts to the broker default.
    Delete,
    /// Append to a list-typed key.
    Append(String),
    /// Remove from a list-typed key.
    Subtract(String),
}

/// One change of [`crate::Admin::incremental_alter_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// The config key, e.g. `retention.ms`.
    pub key: String,
    /// What to do with it.
    pub op: ConfigOp,
}

impl ConfigChange {
    /// `key = value`.
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Self {
        ConfigChange {
            key: key.into(),
            op: ConfigOp::Set(value.into()),
        }
    }

    /// Revert `key` to its default.
    pub fn delete(key: impl Into<String>) -> Self {
        ConfigChange {
            key: key.into(),
            op: ConfigOp::Delete,
        }
    }
}

/// Where a config value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Not reported.
    Unknown,
    /// A per-topic override.
    DynamicTopic,
    /// A per-broker dynamic config.
    DynamicBroker,
    /// The cluster-wide dynamic default.
    DynamicDefaultBroker,
    /// A dynamic client-metrics / group config (newer brokers).
    DynamicOther,
    /// `server.properties`.
    StaticBroker,
    /// The built-in default.
    Default,
}

/// One config key of a topic, from [`crate::Admin::describe_topic_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Key.
    pub name: String,
    /// Value; `None` for sensitive keys or keys without a value.
    pub value: Option<String>,
    /// True when the value is the default (not overridden on the topic).
    pub is_default: bool,
    /// True when the value is secret (then `value` is `None`).
    pub is_sensitive: bool,
    /// True when the key cannot be altered.
    pub is_read_only: bool,
    /// Where the value comes from.
    pub source: ConfigSource,
}

/// A topic to create with [`crate::Admin::create_topics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor; `None` uses the broker's
    /// `default.replication.factor`.
    pub replication: Option<i32>,
    /// Topic config overrides.
    pub configs: Vec<(String, String)>,
}

impl NewTopicSpec {
    /// A topic with `partitions` partitions, broker-default replication and
    /// no config overrides.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopicSpec {
            name: name.into(),
            partitions,
            replication: None,
            configs: Vec::new(),
        }
    }

    /// Sets the replication factor.
    pub fn replication(mut self, replication: i32) -> Self {
        self.replication = Some(replication);
        self
    }

    /// Adds a config override.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// Low and high watermarks of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// First offset still in the log.
    pub low: i64,
    /// Offset the next produced record will get.
    pub high: i64,
}

/// The result for one partition of [`crate::Admin::offsets_for_times`] or
/// [`crate::Admin::delete_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffset {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// The offset; `None` when there is none (for `offsets_for_times`: no
    /// record at or after the timestamp).
    pub offset: Option<i64>,
}

/// The kind of resource an ACL is about (Kafka's `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster (`kafka-cluster`).
    Cluster,
    /// A transactional id.
    TransactionalId,
    /// A type librdkafka does not model (delegation tokens, users, …),
    /// with the raw number the broker sent.
    Other(i32),
}

/// How an ACL's resource name matches resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPatternType {
    /// The name is the resource's exact name (`*` meaning every resource).
    Literal,
    /// The name is a prefix of the resources' names.
    Prefixed,
    /// A type librdkafka does not model, with the raw number.
    Other(i32),
}

/// What an ACL allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    /// An operation librdkafka does not model, with the raw number.
    Other(i32),
}

/// Whether an ACL allows or denies its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPermission {
    /// Grants the operation (unless a Deny matches too).
    Allow,
    /// Refuses the operation; wins over any Allow.
    Deny,
    /// A value librdkafka does not model, with the raw number.
    Other(i32),
}

/// One ACL: who (`principal` from `host`) may or may not do `operation` on
/// the resources `resource_type`/`pattern_type`/`resource_name` describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// Kind of resource.
    pub resource_type: AclResourceType,
    /// Resource name or prefix (`*`: every resource of the type).
    pub resource_name: String,
    /// Literal name or prefix.
    pub pattern_type: AclPatternType,
    /// `Type:name`, e.g. `User:alice`.
    pub principal: String,
    /// Client host, `*` for any.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

/// Which ACLs [`crate::Admin::describe_acls`] returns: every field that is
/// `None` matches anything; patterns of both types are returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    /// Only ACLs on this kind of resource.
    pub resource_type: Option<AclResourceType>,
    /// Only ACLs whose resource name is exactly this.
    pub resource_name: Option<String>,
    /// Only ACLs of this principal.
    pub principal: Option<String>,
}

impl AclFilter {
    /// Every ACL on resources of `resource_type`.
    pub fn resource_type(resource_type: AclResourceType) -> Self {
        AclFilter {
            resource_type: Some(resource_type),
            ..AclFilter::default()
        }
    }
}

impl std::fmt::Display for AclResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclResourceType::Topic => f.write_str("Topic"),
            AclResourceType::Group => f.write_str("Group"),
            AclResourceType::Cluster => f.write_str("Cluster"),
            AclResourceType::TransactionalId => f.write_str("TransactionalId"),
            AclResourceType::Other(n) => write!(f, "ResourceType({n})"),
        }
    }
}

impl std::fmt::Display for AclPatternType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclPatternType::Literal => f.write_str("LITERAL"),
            AclPatternType::Prefixed => f.write_str("PREFIXED"),
            AclPatternType::Other(n) => write!(f, "PatternType({n})"),
        }
    }
}

impl std::fmt::Display for AclOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
            AclOperation::Other(n) => return write!(f, "Operation({n})"),
        };
        f.write_str(name)
    }
}

impl std::fmt::Display for AclPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclPermission::Allow => f.write_str("ALLOW"),
            AclPermission::Deny => f.write_str("DENY"),
            AclPermission::Other(n) => write!(f, "Permission({n})"),
        }
    }
}

impl std::fmt::Display for AclBinding {
    /// `Topic:LITERAL:orders User:alice@* ALLOW READ`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{} {}@{} {} {}",
            self.resource_type,
            self.pattern_type,
            self.resource_name,
            self.principal,
            self.host,
            self.permission,
            self.operation
        )
    }
}
