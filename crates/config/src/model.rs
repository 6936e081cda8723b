//! The validated, typed topology. Every value here has already been checked:
//! code that receives a `Topology` never re-parses a string.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::naming::RenameRule;
use crate::secret::{ClientProperties, Secret};

/// The whole topology file, validated.
#[derive(Debug, Clone)]
pub struct Topology {
    /// `[clusters.NAME]`, by name.
    pub clusters: BTreeMap<String, Cluster>,
    /// `[[flows]]`, in file order.
    pub flows: Vec<Flow>,
    /// `[http]`.
    pub http: HttpSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[engine]`.
    pub engine: EngineSettings,
    /// `[registries.NAME]`, by name.
    pub registries: BTreeMap<String, Registry>,
    /// SHA-256 of the file as written (references like `${env:X}` are not
    /// expanded), so `/status` can show which file is running without
    /// revealing any secret.
    pub digest: String,
}

impl Topology {
    /// The cluster of this name.
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    /// The flow with this source and target.
    pub fn flow(&self, id: &FlowId) -> Option<&Flow> {
        self.flows.iter().find(|f| &f.id() == id)
    }
}

/// `[clusters.NAME]`: how to reach and log in to one Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The name flows refer to it by; also the MirrorMaker 2 alias in topic
    /// names (`primary.orders`) and a metric label.
    pub name: String,
    /// `bootstrap_servers`: `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// librdkafka properties passed through as-is (secrets redacted in Debug).
    pub client: ClientProperties,
    /// Authenticate with AWS IAM (OAUTHBEARER tokens Ferry signs itself).
    pub aws_msk_iam: Option<AwsMskIam>,
}

/// `clusters.NAME.aws_msk_iam`: Ferry signs MSK IAM tokens from the standard
/// AWS credential chain and sets `security.protocol = SASL_SSL` and
/// `sasl.mechanism = OAUTHBEARER` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsMskIam {
    /// The cluster's region, e.g. `us-east-1`; part of the signed request.
    pub region: String,
    /// A profile of the shared AWS files; otherwise `AWS_PROFILE`, then
    /// `default`.
    pub profile: Option<String>,
}

/// `source->target`, the way operators name a flow on the command line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId {
    /// The source cluster's name.
    pub source: String,
    /// The target cluster's name.
    pub target: String,
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.source, self.target)
    }
}

impl std::str::FromStr for FlowId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (source, target) = s
            .split_once("->")
            .filter(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
            .ok_or_else(|| format!("invalid flow \"{s}\": expected SOURCE->TARGET"))?;
        Ok(FlowId {
            source: source.trim().to_string(),
            target: target.trim().to_string(),
        })
    }
}

/// Include/exclude regexes, each matched against the whole name.
#[derive(Debug, Clone)]
pub struct NameFilter {
    include_patterns: Vec<String>,
    exclude_patterns: Vec<String>,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl NameFilter {
    /// Patterns must already be known to compile (see `validate`).
    pub(crate) fn new(include: Vec<String>, exclude: Vec<String>) -> Result<Self, regex::Error> {
        let compile = |ps: &[String]| {
            ps.iter()
                .map(|p| anchored(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: compile(&include)?,
            exclude: compile(&exclude)?,
            include_patterns: include,
            exclude_patterns: exclude,
        })
    }

    /// True when an include pattern matches the whole name and no exclude
    /// pattern does.
    pub fn matches(&self, name: &str) -> bool {
        self.include.iter().any(|r| r.is_match(name))
            && !self.exclude.iter().any(|r| r.is_match(name))
    }

    /// True when the name is named by an include pattern that is a literal
    /// (no regex metacharacters), i.e. the operator asked for it explicitly.
    pub fn names_explicitly(&self, name: &str) -> bool {
        self.include_patterns
            .iter()
            .any(|p| regex::escape(name) == *p || p == name)
    }

    /// The include patterns as written.
    pub fn include_patterns(&self) -> &[String] {
        &self.include_patterns
    }

    /// The exclude patterns as written.
    pub fn exclude_patterns(&self) -> &[String] {
        &self.exclude_patterns
    }

    /// A filter that selects exactly these names (each escaped, so no name
    /// is read as a regex). Commands that act on a chosen set of topics
    /// (`ferry cutover`) run the engine with it.
    pub fn exactly<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let include: Vec<String> = names.into_iter().map(regex::escape).collect();
        Self::new(include, Vec::new()).expect("escaped literals always compile")
    }

    /// This filter with these names excluded as well (literally).
    pub fn excluding<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut exclude = self.exclude_patterns.clone();
        for name in names {
            let literal = regex::escape(name);
            if !exclude.contains(&literal) {
                exclude.push(literal);
            }
        }
        Self::new(self.include_patterns.clone(), exclude)
            .expect("validated patterns and escaped literals compile")
    }
}

impl PartialEq for NameFilter {
    fn eq(&self, other: &Self) -> bool {
        self.include_patterns == other.include_patterns
            && self.exclude_patterns == other.exclude_patterns
    }
}

impl Eq for NameFilter {}

/// Compiles a pattern so that it must match the whole name, as every
/// topic and group filter does.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// `flows[].topic_naming`: what a source topic is called on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicNaming {
    /// `<source><separator><topic>`, like MirrorMaker 2's
    /// DefaultReplicationPolicy.
    Prefix,
    /// The same name on both sides.
    Identity,
}

impl TopicNaming {
    /// The target topic for a source topic under this policy.
    pub fn remote_topic(self, source_alias: &str, separator: &str, topic: &str) -> String {
        match self {
            TopicNaming::Prefix => format!("{source_alias}{separator}{topic}"),
            TopicNaming::Identity => topic.to_string(),
        }
    }

    /// The upstream topic a target topic was replicated from, if the naming
    /// policy encodes one (`primary.orders` under prefix naming came from
    /// `orders` on `primary`). Rename rules are not undone: see
    /// [`Flow::remote_topic`].
    pub fn upstream_of(self, source_alias: &str, separator: &str, remote: &str) -> Option<String> {
        match self {
            TopicNaming::Prefix => remote
                .strip_prefix(source_alias)
                .and_then(|rest| rest.strip_prefix(separator))
                .map(str::to_string),
            TopicNaming::Identity => Some(remote.to_string()),
        }
    }
}

/// `flows[].topic_separator` when unset: MirrorMaker 2's default
/// `replication.policy.separator`.
pub const DEFAULT_TOPIC_SEPARATOR: &str = ".";

/// `flows[].start_from`: where a partition without saved progress starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The first record still in the source log.
    Earliest,
    /// Only records written after the flow starts.
    Latest,
    /// Per partition, the smallest offset committed by any matching group.
    Unconsumed,
    /// The first record with a timestamp at or after this many ms since the epoch.
    Timestamp(i64),
}

/// `flows[].unconsumed_fallback`: where [`StartFrom::Unconsumed`] starts a
/// partition that no matching group has committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The first record still in the source log.
    Earliest,
    /// Only records written after the flow starts.
    Latest,
}

/// `flows[].offset_syncs_location`: the cluster holding the flow's
/// MirrorMaker 2-format offset syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncsLocation {
    /// `mm2-offset-syncs.<target>.internal` on the source (MM2's default).
    Source,
    /// `mm2-offset-syncs.<source>.internal` on the target.
    Target,
}

/// What a flow does with a record the target refuses (too large for the
/// target topic, invalid there).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnRecordError {
    /// The partition stops at the record and is retried with backoff until
    /// the target takes it.
    #[default]
    Stall,
    /// The record is left out; the partition moves on.
    Skip,
    /// The record goes to this topic on the target instead, with headers
    /// naming where it came from and why it was refused.
    DeadLetter {
        /// `flows[].dead_letter_topic`.
        topic: String,
    },
}

impl OnRecordError {
    /// The value as written in the topology file.
    pub fn as_str(&self) -> &'static str {
        match self {
            OnRecordError::Stall => "stall",
            OnRecordError::Skip => "skip",
            OnRecordError::DeadLetter { .. } => "dead-letter",
        }
    }
}

/// `[[flows]]`: one direction of replication, from `source` to `target`,
/// with everything that shapes it. A flow is identified by its two cluster
/// names ([`Flow::id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The cluster records are read from.
    pub source: String,
    /// The cluster records are written to.
    pub target: String,
    /// A disabled flow is kept in the file but not run.
    pub enabled: bool,
    /// Which source topics are copied.
    pub topics: NameFilter,
    /// Which consumer groups have their offsets translated (checkpoints,
    /// group offset sync, `unconsumed`).
    pub groups: NameFilter,
    /// What a source topic is called on the target.
    pub topic_naming: TopicNaming,
    /// Between the source alias and the topic under prefix naming, and in
    /// the MirrorMaker 2 internal topic names that follow the policy
    /// (`<source><sep>checkpoints<sep>internal`).
    pub topic_separator: String,
    /// Explicit renames, applied before the naming policy; the first rule
    /// whose pattern matches the whole source topic name wins.
    pub rename: Vec<RenameRule>,
    /// Where a partition without saved progress starts.
    pub start_from: StartFrom,
    /// Where `unconsumed` starts on partitions no matching group has committed.
    pub unconsumed_fallback: Fallback,
    /// Copy topic configs (retention, compaction, …) to the target.
    pub sync_topic_configs: bool,
    /// Topic config names never copied to the target (exact names).
    pub topic_configs_exclude: Vec<String>,
    /// Commit translated offsets into idle target consumer groups.
    pub sync_group_offsets: bool,
    /// Write MirrorMaker 2-format checkpoints on the target.
    pub emit_checkpoints: bool,
    /// Write MirrorMaker 2-format heartbeats on the target.
    pub emit_heartbeats: bool,
    /// How often group offsets are translated and checkpointed.
    pub checkpoint_interval: Duration,
    /// How often new source topics and partitions are looked for.
    pub refresh_interval: Duration,
    /// How often a heartbeat is written.
    pub heartbeat_interval: Duration,
    /// None: the target broker's default.
    pub replication_factor: Option<i32>,
    /// Cap on bytes fetched but not yet acknowledged by the target.
    pub max_in_flight_bytes: u64,
    /// Mark replicated records with a provenance header and never send a
    /// record to a cluster it has already visited.
    pub cycle_protection: bool,
    /// The cluster holding the flow's offset syncs.
    pub offset_syncs_location: SyncsLocation,
    /// Where MirrorMaker 2 kept its positions, for taking the flow over.
    pub mm2_offsets: Mm2Offsets,
    /// What to do with a record the target refuses.
    pub on_record_error: OnRecordError,
    /// How many slots the flow's partitions are spread over; the processes
    /// running the flow share the slots through a Kafka consumer group.
    pub slots: u16,
    /// At-least-once (idempotent writes, progress after acknowledgement) or
    /// exactly-once (transactional writes per slot).
    pub delivery: Delivery,
    /// Under exactly-once: how long a slot's transaction stays open at
    /// most before it is committed.
    pub transaction_interval: Duration,
    /// Whether and how the ACLs of the flow's topics and groups are copied.
    pub acls: AclSync,
    /// Whether target topics whose source topic was deleted are deleted.
    pub deletes: DeletePropagation,
    /// `flows[].schemas`: the Schema Registry subjects copied along with
    /// the records, if any.
    pub schemas: Option<SchemaSync>,
}

/// `flows[].propagate_deletes`, `delete_grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletePropagation {
    /// Delete a target topic the flow mirrors once its source topic has
    /// been seen missing for `grace`, unless another flow writes to it.
    pub enabled: bool,
    /// How long the source topic must stay missing, in every successful
    /// listing of the source, before its target topic is deleted.
    pub grace: Duration,
}

impl DeletePropagation {
    /// `delete_grace` when unset: long enough to ride out a topic being
    /// recreated by hand or a source cluster's metadata settling.
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);
}

impl Default for DeletePropagation {
    fn default() -> Self {
        DeletePropagation {
            enabled: false,
            grace: Self::DEFAULT_GRACE,
        }
    }
}

/// `[registries.NAME]`: how to reach one Schema Registry through the
/// Confluent REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The name `flows[].schemas` refers to it by.
    pub name: String,
    /// The API's base URL, without a trailing `/`
    /// (`https://registry:8081`, `http://host/apis/ccompat/v7`).
    pub url: String,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// PEM certificates trusted for `https` besides the system's.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) and its private key (PEM, PKCS#8), for
    /// registries that authenticate clients by certificate.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// How long one request may take.
    pub timeout: Duration,
}

/// `username` and `password` of a `[registries.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// Sent as is; not a secret.
    pub username: String,
    /// Usually `${env:…}` or `${file:…}`; `Debug` shows `***`.
    pub password: Secret,
}

/// `flows[].schemas.mode`: what the target registry's schema IDs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaMode {
    /// Every version is registered on the target with its source ID and
    /// version number (the target in IMPORT mode): records stay
    /// byte-identical.
    PreserveIds,
    /// The target gives its own IDs; the 4-byte schema ID of each copied
    /// key and value is rewritten to the target's.
    TranslateIds,
}

impl SchemaMode {
    /// The value as written in the topology file.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaMode::PreserveIds => "preserve-ids",
            SchemaMode::TranslateIds => "translate-ids",
        }
    }
}

/// `flows[].schemas`: which subjects go from which registry to which, and
/// how their IDs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSync {
    /// The registry the source cluster's producers use.
    pub source: Registry,
    /// The registry the target cluster's consumers will use.
    pub target: Registry,
    /// Which source subjects are copied (regexes matching the whole name).
    pub subjects: NameFilter,
    /// How schema IDs carry over.
    pub mode: SchemaMode,
    /// When the registries cannot be reached, records that carry a schema
    /// ID wait (`true`) rather than being copied before their schema
    /// (`false`, the default; `translate-ids` records always wait, since
    /// they cannot be written without the target's ID).
    pub required: bool,
}

/// `flows[].sync_acls`, `acls_exclude_principals`, `acl_sync_deletes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclSync {
    /// Copy the ACLs of the flow's topics and groups to the target, every
    /// `refresh_interval`.
    pub enabled: bool,
    /// Principals (`Type:name`) whose ACLs are never copied, nor deleted.
    pub exclude_principals: Vec<String>,
    /// Delete the target ACLs on the flow's resources that have no source
    /// counterpart.
    pub deletes: bool,
}

impl AclSync {
    /// Whether the ACLs of `principal` are synced.
    pub fn includes(&self, principal: &str) -> bool {
        !self.exclude_principals.iter().any(|p| p == principal)
    }
}

/// `flows[].delivery`: what a crash or a fail-over may leave on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Records are written idempotently and progress is saved once the
    /// target acknowledged them: a crash may copy up to the in-flight
    /// window again.
    #[default]
    AtLeastOnce,
    /// Each slot writes through its own transactional producer, with the
    /// progress and offset syncs of its records in the same transaction:
    /// a `read_committed` reader sees every record exactly once.
    ExactlyOnce,
}

impl Delivery {
    /// The value as written in the topology file.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::AtLeastOnce => "at-least-once",
            Delivery::ExactlyOnce => "exactly-once",
        }
    }
}

impl Flow {
    /// `source->target`.
    pub fn id(&self) -> FlowId {
        FlowId {
            source: self.source.clone(),
            target: self.target.clone(),
        }
    }

    /// The target topic a source topic is copied to: renamed by the first
    /// matching rule, then named by the policy, so that prefix naming keeps
    /// its prefix (`legacy.orders` renamed to `orders` lands in
    /// `primary.orders`) and cycle protection keeps recognising it.
    pub fn remote_topic(&self, topic: &str) -> String {
        let renamed = crate::naming::renamed(&self.rename, topic);
        self.topic_naming
            .remote_topic(&self.source, &self.topic_separator, &renamed)
    }

    /// The target subject of a source Schema Registry subject: a
    /// TopicNameStrategy subject (`<topic>-key`, `<topic>-value`) of a
    /// topic the flow copies follows its topic (`orders-value` becomes
    /// `a.orders-value` under prefix naming); any other subject keeps its
    /// name.
    pub fn remote_subject(&self, subject: &str) -> String {
        for suffix in ["-key", "-value"] {
            if let Some(topic) = subject.strip_suffix(suffix) {
                if !topic.is_empty() && self.topics.matches(topic) {
                    return format!("{}{suffix}", self.remote_topic(topic));
                }
            }
        }
        subject.to_string()
    }

    /// Whether a source topic came from this flow's target under prefix
    /// naming: it carries the target's alias and the flow's separator in
    /// front (`backup.orders` on a flow into `backup`), and copying it back
    /// would re-prefix it forever.
    pub fn came_from_target(&self, topic: &str) -> bool {
        self.topic_naming == TopicNaming::Prefix
            && TopicNaming::Prefix
                .upstream_of(&self.target, &self.topic_separator, topic)
                .is_some()
    }

    /// The slot a source partition belongs to: a stable hash of the topic
    /// name plus the partition, so that it never depends on which topics
    /// exist or in what order they were found, and consecutive partitions
    /// of one topic spread over consecutive slots.
    pub fn slot_of(&self, topic: &str, partition: i32) -> u16 {
        slot_of(topic, partition, self.slots)
    }

    /// The consumer group the processes running this flow join:
    /// `<prefix>.<source>-<target>`.
    pub fn group_id(&self, prefix: &str) -> String {
        format!("{prefix}.{}-{}", self.source, self.target)
    }

    /// The internal topic on the target whose partitions are the flow's
    /// slots: `ferry-slots.<source>-<target>`.
    pub fn slots_topic(&self) -> String {
        format!("ferry-slots.{}-{}", self.source, self.target)
    }

    /// The transactional id of `slot` under exactly-once:
    /// `<prefix>.<source>-<target>.<slot>`. The slot's next owner uses the
    /// same id, which is what fences the previous one.
    pub fn transactional_id(&self, prefix: &str, slot: u16) -> String {
        format!("{prefix}.{}-{}.{slot}", self.source, self.target)
    }

    /// Whether the flow writes through transactions.
    pub fn exactly_once(&self) -> bool {
        self.delivery == Delivery::ExactlyOnce
    }
}

/// The slot of `partition` of `topic` among `slots` (see [`Flow::slot_of`]).
/// FNV-1a over the name: fixed by its definition, so every version and
/// every member of a group computes the same slot.
pub fn slot_of(topic: &str, partition: i32, slots: u16) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let slots = u64::from(slots.max(1));
    ((hash % slots + u64::from(partition.unsigned_abs()) % slots) % slots) as u16
}

/// The Kafka Connect offsets topic and key namespace holding MirrorMaker 2's
/// source positions, which Ferry reads once at start to take a flow over
/// from MM2 without copying again what MM2 copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mm2Offsets {
    /// The cluster holding the offsets topic (Connect's own Kafka cluster).
    pub cluster: String,
    /// Connect's `offset.storage.topic`.
    pub topic: String,
    /// The connector's name: Connect keys every position by it.
    pub connector: String,
}

impl Mm2Offsets {
    /// The connector name MirrorMaker 2's dedicated mode gives its source
    /// connector (it names each connector after its class).
    pub const DEDICATED_CONNECTOR: &'static str = "MirrorSourceConnector";

    /// MirrorMaker 2 in dedicated mode (`connect-mirror-maker`): it keeps
    /// the offsets of flows from `source` on the target, in
    /// `mm2-offsets.<source>.internal`.
    pub fn dedicated(source: &str, target: &str) -> Self {
        Mm2Offsets {
            cluster: target.to_string(),
            topic: format!("mm2-offsets.{source}.internal"),
            connector: Self::DEDICATED_CONNECTOR.to_string(),
        }
    }
}

/// `[http]`: the listener for metrics, health, `/status` and control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// `http.listen`: the address served.
    pub listen: SocketAddr,
    /// The bearer token control requests (and `/status`, unless public)
    /// must carry. None: the control endpoint is disabled.
    pub control_token: Option<Secret>,
    /// `/status` answers without the token.
    pub status_public: bool,
    /// Export one lag series per source partition (high cardinality).
    pub partition_metrics: bool,
    /// Serve HTTPS instead of HTTP.
    pub tls: Option<HttpTls>,
}

/// TLS on the HTTP listener. The files are read when the server starts and
/// again on every reload, so a renewed certificate needs only a SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTls {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key. Its contents are a secret: no message quotes them.
    pub key: PathBuf,
    /// PEM certificates `ferry status` and `ferry cutover` trust when they
    /// reach the daemon; `None`: the certificates in `cert` (enough for a
    /// self-signed certificate or a chain that includes its CA).
    pub ca: Option<PathBuf>,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A tracing filter directive such as `info` or `info,ferry_supervisor=debug`.
    pub level: String,
    /// How each line is written.
    pub format: LogFormat,
}

/// `[engine]`: settings of the whole process rather than of one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// How long a graceful shutdown may take before tasks are aborted.
    pub shutdown_timeout: Duration,
    /// The first part of each flow's consumer group name
    /// (`<prefix>.<source>-<target>`).
    pub group_prefix: String,
    /// The first part of each exactly-once slot's transactional id
    /// (`<prefix>.<source>-<target>.<slot>`); defaults to `group_prefix`.
    pub transactional_id_prefix: String,
}

impl EngineSettings {
    /// The default `engine.group_prefix`.
    pub const DEFAULT_GROUP_PREFIX: &'static str = "ferry";
}
