//! The validated, typed topology. Every value here has already been checked:
//! code that receives a `Topology` never re-parses a string.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::secret::{ClientProperties, Secret};

/// The whole topology file, validated.
#[derive(Debug, Clone)]
pub struct Topology {
    pub clusters: BTreeMap<String, Cluster>,
    pub flows: Vec<Flow>,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub engine: EngineSettings,
    /// SHA-256 of the file as written (references like `${env:X}` are not
    /// expanded), so `/status` can show which file is running without
    /// revealing any secret.
    pub digest: String,
}

impl Topology {
    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.get(name)
    }

    pub fn flow(&self, id: &FlowId) -> Option<&Flow> {
        self.flows.iter().find(|f| &f.id() == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
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
    pub source: String,
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

    pub fn include_patterns(&self) -> &[String] {
        &self.include_patterns
    }

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

/// Compiles a pattern so that it must match the whole name.
pub(crate) fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicNaming {
    /// `<source>.<topic>`, like MirrorMaker 2's DefaultReplicationPolicy.
    Prefix,
    /// The same name on both sides.
    Identity,
}

impl TopicNaming {
    /// The target topic for a source topic under this policy.
    pub fn remote_topic(self, source_alias: &str, topic: &str) -> String {
        match self {
            TopicNaming::Prefix => format!("{source_alias}{PREFIX_SEPARATOR}{topic}"),
            TopicNaming::Identity => topic.to_string(),
        }
    }

    /// The upstream topic a target topic was replicated from, if the naming
    /// policy encodes one (`primary.orders` under prefix naming came from
    /// `orders` on `primary`).
    pub fn upstream_of(self, source_alias: &str, remote: &str) -> Option<String> {
        match self {
            TopicNaming::Prefix => remote
                .strip_prefix(source_alias)
                .and_then(|rest| rest.strip_prefix(PREFIX_SEPARATOR))
                .map(str::to_string),
            TopicNaming::Identity => Some(remote.to_string()),
        }
    }
}

/// The separator used by prefix naming, as in MirrorMaker 2.
pub const PREFIX_SEPARATOR: &str = ".";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
    /// Per partition, the smallest offset committed by any matching group.
    Unconsumed,
    /// The first record with a timestamp at or after this many ms since the epoch.
    Timestamp(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncsLocation {
    Source,
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
    DeadLetter { topic: String },
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub source: String,
    pub target: String,
    pub enabled: bool,
    pub topics: NameFilter,
    pub groups: NameFilter,
    pub topic_naming: TopicNaming,
    pub start_from: StartFrom,
    /// Where `unconsumed` starts on partitions no matching group has committed.
    pub unconsumed_fallback: Fallback,
    pub sync_topic_configs: bool,
    /// Topic config names never copied to the target (exact names).
    pub topic_configs_exclude: Vec<String>,
    pub sync_group_offsets: bool,
    pub emit_checkpoints: bool,
    pub emit_heartbeats: bool,
    pub checkpoint_interval: Duration,
    pub refresh_interval: Duration,
    pub heartbeat_interval: Duration,
    /// None: the target broker's default.
    pub replication_factor: Option<i32>,
    /// Cap on bytes fetched but not yet acknowledged by the target.
    pub max_in_flight_bytes: u64,
    /// Mark replicated records with a provenance header and never send a
    /// record to a cluster it has already visited.
    pub cycle_protection: bool,
    pub offset_syncs_location: SyncsLocation,
    /// Where MirrorMaker 2 kept its positions, for taking the flow over.
    pub mm2_offsets: Mm2Offsets,
    /// What to do with a record the target refuses.
    pub on_record_error: OnRecordError,
}

impl Flow {
    pub fn id(&self) -> FlowId {
        FlowId {
            source: self.source.clone(),
            target: self.target.clone(),
        }
    }

    pub fn remote_topic(&self, topic: &str) -> String {
        self.topic_naming.remote_topic(&self.source, topic)
    }
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A tracing filter directive such as `info` or `info,ferry_supervisor=debug`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// How long a graceful shutdown may take before tasks are aborted.
    pub shutdown_timeout: Duration,
}
