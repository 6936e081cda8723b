//! Raw TOML → typed `Topology`, collecting every problem with its key path.
//!
//! This module checks the document as a whole and holds the [`Checker`] the
//! parts share; `cluster`, `flow` and `http` check one table each.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::model::*;
use crate::naming::{collisions, group_references, RenameRule};
use crate::raw::*;
use crate::secret::{interpolate, ClientProperties, Secret};
use crate::Issue;

mod acls;
mod cluster;
mod flow;
mod http;
mod schemas;

use cluster::check_cluster;
#[cfg(test)]
pub(crate) use cluster::valid_aws_region;
use flow::{check_cycles, check_flow, check_shared_targets};
use http::{check_control_token, check_http_tls};

/// `http.listen` when unset: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9644";
/// `flows[].checkpoint_interval` when unset.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// `flows[].refresh_interval` when unset.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The window counts bytes until persisted progress covers them, so it must
/// hold the producer's whole pipeline plus what waits for the next progress
/// write, or the pump stalls at high rates (figures in
/// crates/bench/README.md). Memory stays bounded by the producer's own queue
/// limits, and a crash re-copies at most this much.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: u64 = 256 * 1024 * 1024;

/// Accumulates issues and warnings while the file is checked.
pub(crate) struct Checker<'a> {
    pub issues: Vec<Issue>,
    pub warnings: Vec<String>,
    base_dir: &'a Path,
}

impl<'a> Checker<'a> {
    pub fn new(base_dir: &'a Path) -> Self {
        Self {
            issues: Vec::new(),
            warnings: Vec::new(),
            base_dir,
        }
    }

    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Deserializes one section, recording unknown keys and type errors
    /// under `base` instead of stopping at the first one.
    /// `None` when the section's shape is wrong; its contents are then not
    /// checked further, to avoid follow-on errors.
    fn section<T: DeserializeOwned>(&mut self, base: &str, value: toml::Value) -> Option<T> {
        let mut unknown = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let result = {
            let de = serde_path_to_error::Deserializer::new(value, &mut track);
            serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
        };
        for key in unknown {
            self.issue(join(base, &dotted_to_path(&key)), "unknown key");
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = dotted_to_path(&track.path().to_string());
                self.issue(join(base, &inner), e.to_string().trim().to_string());
                None
            }
        }
    }

    fn duration(&mut self, path: String, raw: Option<&str>, default: Duration) -> Duration {
        let Some(raw) = raw else { return default };
        match humantime::parse_duration(raw) {
            Ok(d) if d.is_zero() => {
                self.issue(
                    path,
                    format!("duration \"{raw}\" must be greater than zero"),
                );
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.issue(
                    path,
                    format!("invalid duration \"{raw}\": {e} (examples: \"5s\", \"1m 30s\")"),
                );
                default
            }
        }
    }

    fn interpolated(&mut self, path: &str, raw: &str) -> Option<(String, bool)> {
        match interpolate(raw, self.base_dir) {
            Ok(got) => {
                for w in got.warnings {
                    self.warnings.push(format!("{path}: {w}"));
                }
                Some((got.value, got.used_secret))
            }
            Err(e) => {
                self.issue(path, e);
                None
            }
        }
    }

    fn regexes(&mut self, path: &str, patterns: &[String]) {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(e) = anchored(p) {
                self.issue(
                    format!("{path}[{i}]"),
                    format!("invalid regex \"{p}\": {}", regex_reason(&e)),
                );
            }
        }
    }
}

/// The one-line cause from a regex error ("unclosed group").
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or(text)
}

/// `flows.1.topics.0` (serde's paths) → `flows[1].topics[0]`.
fn dotted_to_path(dotted: &str) -> String {
    let mut out = String::new();
    for part in dotted.split('.').filter(|p| !p.is_empty() && *p != "?") {
        if part.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn join(base: &str, inner: &str) -> String {
    match (base.is_empty(), inner.is_empty()) {
        (_, true) => base.to_string(),
        (true, false) => inner.to_string(),
        (false, false) if inner.starts_with('[') => format!("{base}{inner}"),
        _ => format!("{base}.{inner}"),
    }
}

fn parse_log_level(level: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let lvl = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if !LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "invalid level \"{lvl}\" in \"{level}\": use trace, debug, info, warn, error or off"
            ));
        }
    }
    Ok(())
}

/// Checks the whole document. Returns a topology only when there are no issues.
pub(crate) fn check_document(
    checker: &mut Checker<'_>,
    doc: toml::Table,
    digest: String,
) -> Option<Topology> {
    let mut clusters = BTreeMap::new();
    // Every declared name counts as known, even one with problems of its
    // own, so a flow naming it is not reported twice.
    let mut known_clusters: BTreeSet<String> = BTreeSet::new();
    let mut raw_flows: Vec<toml::Value> = Vec::new();
    let mut http = RawHttp::default();
    let mut log = RawLog::default();
    let mut engine = RawEngine::default();
    // Every declared registry, `None` when it has problems of its own (so
    // a flow naming it is not reported twice).
    let mut registries: BTreeMap<String, Option<Registry>> = BTreeMap::new();

    for (key, value) in doc {
        match key.as_str() {
            "clusters" => match value {
                toml::Value::Table(t) => {
                    for (name, v) in t {
                        known_clusters.insert(name.clone());
                        let path = format!("clusters.{name}");
                        let Some(raw) = checker.section::<RawCluster>(&path, v) else {
                            continue;
                        };
                        if let Some(c) = check_cluster(checker, &name, raw) {
                            clusters.insert(name, c);
                        }
                    }
                }
                _ => checker.issue("clusters", "must be a table of clusters ([clusters.NAME])"),
            },
            "flows" => match value {
                toml::Value::Array(a) => raw_flows = a,
                _ => checker.issue("flows", "must be an array of tables ([[flows]])"),
            },
            "http" => http = checker.section("http", value).unwrap_or_default(),
            "log" => log = checker.section("log", value).unwrap_or_default(),
            "engine" => engine = checker.section("engine", value).unwrap_or_default(),
            "registries" => match value {
                toml::Value::Table(t) => {
                    for (name, v) in t {
                        let path = format!("registries.{name}");
                        let checked = checker
                            .section::<RawRegistry>(&path, v)
                            .and_then(|raw| schemas::check_registry(checker, &name, raw));
                        registries.insert(name, checked);
                    }
                }
                _ => checker.issue(
                    "registries",
                    "must be a table of registries ([registries.NAME])",
                ),
            },
            _ => checker.issue(key, "unknown key"),
        }
    }

    if known_clusters.is_empty()
        && !checker
            .issues
            .iter()
            .any(|i| i.path.starts_with("clusters"))
    {
        checker.issue("clusters", "at least one cluster is required");
    }
    if raw_flows.is_empty() && !checker.issues.iter().any(|i| i.path == "flows") {
        checker.issue(
            "flows",
            "at least one flow is required ([[flows]] with source and target)",
        );
    }

    let mut flows = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (i, v) in raw_flows.into_iter().enumerate() {
        let path = format!("flows[{i}]");
        let Some(mut raw) = checker.section::<RawFlow>(&path, v) else {
            continue;
        };
        let raw_schemas = raw.schemas.take();
        let schemas =
            raw_schemas.and_then(|r| schemas::check_schemas(checker, &path, r, &registries));
        if let Some(mut flow) = check_flow(checker, &path, raw, &known_clusters) {
            flow.schemas = schemas;
            let key = (flow.source.clone(), flow.target.clone());
            if let Some(first) = seen.get(&key) {
                checker.issue(
                    path,
                    format!(
                        "duplicate flow {}: flows[{first}] already replicates {}",
                        flow.id(),
                        flow.id()
                    ),
                );
            } else {
                seen.insert(key, i);
                flows.push((i, flow));
            }
        }
    }
    check_cycles(checker, &flows);
    check_shared_targets(checker, &flows);

    let http = HttpSettings {
        listen: match http
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
            .parse::<SocketAddr>()
        {
            Ok(a) => a,
            Err(_) => {
                let raw = http.listen.unwrap_or_default();
                checker.issue(
                    "http.listen",
                    format!("invalid listen address \"{raw}\": expected IP:PORT such as \"127.0.0.1:9644\""),
                );
                DEFAULT_LISTEN
                    .parse()
                    .expect("default listen address parses")
            }
        },
        control_token: http
            .control_token
            .as_deref()
            .and_then(|raw| check_control_token(checker, raw)),
        status_public: http.status_public.unwrap_or(false),
        partition_metrics: http.partition_metrics.unwrap_or(false),
        tls: check_http_tls(checker, &http.tls_cert, &http.tls_key, &http.tls_ca),
    };
    let log_level = log.level.unwrap_or_else(|| "info".into());
    if let Err(e) = parse_log_level(&log_level) {
        checker.issue("log.level", e);
    }
    let format = match log.format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            checker.issue(
                "log.format",
                format!("invalid format \"{other}\": use \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    let shutdown_timeout = checker.duration(
        "engine.shutdown_timeout".into(),
        engine.shutdown_timeout.as_deref(),
        DEFAULT_SHUTDOWN_TIMEOUT,
    );

    let group_prefix = engine
        .group_prefix
        .unwrap_or_else(|| EngineSettings::DEFAULT_GROUP_PREFIX.to_string());
    check_name_prefix(checker, "engine.group_prefix", &group_prefix);

    let transactional_id_prefix = engine
        .transactional_id_prefix
        .unwrap_or_else(|| group_prefix.clone());
    check_name_prefix(
        checker,
        "engine.transactional_id_prefix",
        &transactional_id_prefix,
    );
    check_transaction_timeouts(checker, &clusters, &flows);

    let used: BTreeSet<&str> = flows
        .iter()
        .flat_map(|(_, f)| {
            [
                f.source.as_str(),
                f.target.as_str(),
                f.mm2_offsets.cluster.as_str(),
            ]
        })
        .collect();
    for name in known_clusters.iter().filter(|n| !used.contains(n.as_str())) {
        checker
            .warnings
            .push(format!("clusters.{name}: not used by any flow"));
    }

    let used_registries: BTreeSet<&str> = flows
        .iter()
        .filter_map(|(_, f)| f.schemas.as_ref())
        .flat_map(|s| [s.source.name.as_str(), s.target.name.as_str()])
        .collect();
    for name in registries
        .keys()
        .filter(|n| !used_registries.contains(n.as_str()))
    {
        checker
            .warnings
            .push(format!("registries.{name}: not used by any flow"));
    }

    if !checker.issues.is_empty() {
        return None;
    }
    Some(Topology {
        registries: registries
            .into_iter()
            .filter_map(|(name, r)| Some((name, r?)))
            .collect(),
        clusters,
        flows: flows.into_iter().map(|(_, f)| f).collect(),
        http,
        log: LogSettings {
            level: log_level,
            format,
        },
        engine: EngineSettings {
            shutdown_timeout,
            group_prefix,
            transactional_id_prefix,
        },
        digest,
    })
}

/// Test support: the first flow of `text` as `pick` sees it, or every
/// problem as (key path, message).
#[cfg(test)]
pub(crate) fn first_flow<T>(
    text: &str,
    pick: impl Fn(&Flow) -> T,
) -> Result<T, Vec<(String, String)>> {
    match crate::parse(text, "test.toml", Path::new(".")) {
        Ok(loaded) => Ok(pick(&loaded.topology.flows[0])),
        Err(e) => Err(e
            .issues()
            .iter()
            .map(|i| (i.path.clone(), i.message.clone()))
            .collect()),
    }
}

/// A prefix of Kafka group or transactional ids: characters every broker
/// accepts in a name.
fn check_name_prefix(checker: &mut Checker<'_>, key: &str, prefix: &str) {
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        let name = key.rsplit('.').next().unwrap_or(key);
        checker.issue(
            key,
            format!("invalid {name} \"{prefix}\": use letters, digits, '.', '_' or '-'"),
        );
    }
}

/// The target's `transaction.timeout.ms` must outlast a flow's
/// transaction interval: the broker would abort every transaction before
/// Ferry commits it.
fn check_transaction_timeouts(
    checker: &mut Checker<'_>,
    clusters: &BTreeMap<String, Cluster>,
    flows: &[(usize, Flow)],
) {
    for (i, flow) in flows.iter().filter(|(_, f)| f.exactly_once()) {
        let Some(raw) = clusters
            .get(&flow.target)
            .and_then(|c| c.client.get("transaction.timeout.ms"))
        else {
            continue;
        };
        let key = format!("clusters.{}.client.\"transaction.timeout.ms\"", flow.target);
        match raw.expose().trim().parse::<u64>() {
            Ok(ms) if u128::from(ms) < flow.transaction_interval.as_millis() => checker.issue(
                key,
                format!(
                    "{ms} ms is shorter than flows[{i}].transaction_interval ({}): the broker would abort every transaction before it is committed",
                    humantime::format_duration(flow.transaction_interval)
                ),
            ),
            Ok(_) => {}
            Err(_) => checker.issue(
                key,
                format!("invalid value \"{}\": expected milliseconds", raw.expose()),
            ),
        }
    }
}
