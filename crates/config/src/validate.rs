//! Raw TOML → typed `Topology`, collecting every problem with its key path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::model::*;
use crate::raw::*;
use crate::secret::{interpolate, ClientProperties, Secret};
use crate::Issue;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9644";
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The window counts bytes until persisted progress covers them, so it must
/// hold the producer's whole pipeline plus what waits for the next progress
/// write: at 64 MiB, 2 KB records at ~250 MB/s on loopback stalled the pump
/// for a third of the time; 256 MiB never did. Memory stays bounded by the
/// producer's own queue limits, and a crash re-copies at most this much.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: u64 = 256 * 1024 * 1024;

/// Properties Ferry sets itself; letting users override them would break the
/// delivery guarantees (offsets are Ferry's, reads are read_committed).
const MANAGED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "transactional.id",
];

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

/// Cluster names end up in topic names (`primary.orders`) and metric labels.
fn valid_cluster_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_bootstrap(list: &str) -> Result<(), String> {
    if list.trim().is_empty() {
        return Err("must list at least one host:port".into());
    }
    for server in list.split(',').map(str::trim) {
        let server = server
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(server);
        let Some((host, port)) = server.rsplit_once(':') else {
            return Err(format!("\"{server}\" is not host:port"));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "\"{server}\" is not host:port with a port from 1 to 65535"
            ));
        }
    }
    Ok(())
}

/// Accepts `67108864`, `"64MiB"`, `"512KiB"`, `"1GiB"` or `"100MB"`.
fn parse_bytes(value: &toml::Value) -> Result<u64, String> {
    match value {
        toml::Value::Integer(n) if *n > 0 => Ok(*n as u64),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: u64 = num
                .parse()
                .map_err(|_| format!("invalid size \"{s}\": expected e.g. \"64MiB\""))?;
            let mult: u64 = match unit.trim() {
                "" | "B" => 1,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                "KB" => 1_000,
                "MB" => 1_000_000,
                "GB" => 1_000_000_000,
                other => {
                    return Err(format!(
                        "invalid size unit \"{other}\": use B, KiB, MiB, GiB, KB, MB or GB"
                    ))
                }
            };
            match n.checked_mul(mult) {
                Some(0) | None => Err(format!(
                    "size \"{s}\" must be greater than zero and fit in 64 bits"
                )),
                Some(b) => Ok(b),
            }
        }
        _ => Err("must be a positive integer number of bytes or a string like \"64MiB\"".into()),
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

fn parse_start_from(raw: &str) -> Result<StartFrom, String> {
    match raw {
        "earliest" => Ok(StartFrom::Earliest),
        "latest" => Ok(StartFrom::Latest),
        "unconsumed" => Ok(StartFrom::Unconsumed),
        ts => time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
            .map(|t| StartFrom::Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
            .map_err(|e| {
                format!("invalid start_from \"{ts}\": use earliest, latest, unconsumed or an RFC 3339 timestamp ({e})")
            }),
    }
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
        let Some(raw) = checker.section::<RawFlow>(&path, v) else {
            continue;
        };
        if let Some(flow) = check_flow(checker, &path, raw, &known_clusters) {
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

    if !checker.issues.is_empty() {
        return None;
    }
    Some(Topology {
        clusters,
        flows: flows.into_iter().map(|(_, f)| f).collect(),
        http,
        log: LogSettings {
            level: log_level,
            format,
        },
        engine: EngineSettings { shutdown_timeout },
        digest,
    })
}

/// `http.tls_cert`, `http.tls_key` and `http.tls_ca`: both of the first two
/// or neither, each a readable PEM file of the right kind. The key file's
/// contents are never quoted; the certificates are parsed in full when the
/// server loads them.
fn check_http_tls(
    checker: &mut Checker<'_>,
    cert: &Option<String>,
    key: &Option<String>,
    ca: &Option<String>,
) -> Option<HttpTls> {
    let (cert, key) = match (cert, key) {
        (None, None) => {
            if ca.is_some() {
                checker.issue(
                    "http.tls_ca",
                    "only meaningful with http.tls_cert and http.tls_key",
                );
            }
            return None;
        }
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            checker.issue(
                "http.tls_key",
                "missing: http.tls_cert needs its private key",
            );
            return None;
        }
        (None, Some(_)) => {
            checker.issue(
                "http.tls_cert",
                "missing: http.tls_key needs its certificate",
            );
            return None;
        }
    };
    let cert = check_pem_file(checker, "http.tls_cert", cert, &["CERTIFICATE"]);
    let key = check_pem_file(
        checker,
        "http.tls_key",
        key,
        &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
    );
    let ca = ca
        .as_ref()
        .map(|ca| check_pem_file(checker, "http.tls_ca", ca, &["CERTIFICATE"]));
    Some(HttpTls {
        cert: cert?,
        key: key?,
        ca: match ca {
            Some(ca) => Some(ca?),
            None => None,
        },
    })
}

/// A file path (relative to the topology file) that must hold at least one
/// PEM block of one of `kinds`. Messages name the path and the key, never
/// the contents.
fn check_pem_file(
    checker: &mut Checker<'_>,
    key: &str,
    raw: &str,
    kinds: &[&str],
) -> Option<PathBuf> {
    let path = checker.base_dir.join(raw);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            checker.issue(key, format!("cannot read \"{}\": {e}", path.display()));
            return None;
        }
    };
    let found = kinds
        .iter()
        .any(|kind| text.contains(&format!("-----BEGIN {kind}-----")));
    if !found {
        checker.issue(
            key,
            format!(
                "\"{}\" holds no PEM {} block",
                path.display(),
                kinds.join(" or ")
            ),
        );
        return None;
    }
    Some(path)
}

/// `http.control_token`: usually `${file:…}` or `${env:…}`. It travels as
/// `Authorization: Bearer <token>`, so it must be one non-empty word. No
/// message here quotes the value, nor the raw text, which may be the token
/// written literally.
fn check_control_token(checker: &mut Checker<'_>, raw: &str) -> Option<Secret> {
    const KEY: &str = "http.control_token";
    let (value, from_secret_source) = checker.interpolated(KEY, raw)?;
    if value.trim().is_empty() {
        checker.issue(
            KEY,
            "the control token is empty; put a random token in it, e.g. `openssl rand -hex 32`",
        );
        return None;
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        checker.issue(
            KEY,
            "the control token contains spaces or control characters; it is sent as one HTTP header word",
        );
        return None;
    }
    if !from_secret_source {
        checker.warnings.push(format!(
            "{KEY}: written literally in the topology file; prefer \"${{file:PATH}}\" or \"${{env:NAME}}\""
        ));
    }
    Some(Secret::new(value))
}

fn check_cluster(checker: &mut Checker<'_>, name: &str, raw: RawCluster) -> Option<Cluster> {
    let path = format!("clusters.{name}");
    let before = checker.issues.len();
    if !valid_cluster_name(name) {
        checker.issue(
            &path,
            format!(
                "invalid cluster name \"{name}\": use letters, digits, '_' and '-' (at most 64)"
            ),
        );
    }
    let bootstrap = match raw.bootstrap_servers {
        None => {
            checker.issue(
                format!("{path}.bootstrap_servers"),
                "missing (e.g. \"broker1:9092,broker2:9092\")",
            );
            String::new()
        }
        Some(b) => {
            let key = format!("{path}.bootstrap_servers");
            match checker.interpolated(&key, &b) {
                Some((value, _)) => {
                    if let Err(e) = valid_bootstrap(&value) {
                        checker.issue(key, e);
                    }
                    value
                }
                None => String::new(),
            }
        }
    };
    let mut client = ClientProperties::default();
    for (key, value) in raw.client {
        let key_path = format!("{path}.client.\"{key}\"");
        if MANAGED_PROPERTIES.contains(&key.as_str()) {
            let hint = if key == "bootstrap.servers" {
                "set bootstrap_servers on the cluster instead"
            } else {
                "Ferry manages it to keep its delivery guarantees"
            };
            checker.issue(
                key_path,
                format!("property \"{key}\" cannot be set here: {hint}"),
            );
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            _ => {
                checker.issue(key_path, "must be a string, number or boolean");
                continue;
            }
        };
        if let Some((value, secret)) = checker.interpolated(&key_path, &text) {
            client.insert(key, value, secret);
        }
    }
    let msk_iam_configured = raw.aws_msk_iam.is_some();
    let aws_msk_iam = raw
        .aws_msk_iam
        .and_then(|iam| check_aws_msk_iam(checker, &path, iam, &client));
    // MSK IAM is an OAUTHBEARER provider of its own (its rules above).
    if !msk_iam_configured {
        check_oauthbearer(checker, &path, &client);
    }
    (checker.issues.len() == before).then(|| Cluster {
        name: name.to_string(),
        bootstrap_servers: bootstrap,
        client,
        aws_msk_iam,
    })
}

/// MSK IAM owns the cluster's SASL settings: Ferry sets SASL_SSL and
/// OAUTHBEARER and supplies the token, so any other mechanism, a username or
/// password, or another OAUTHBEARER token source is a contradiction.
fn check_aws_msk_iam(
    checker: &mut Checker<'_>,
    path: &str,
    raw: RawAwsMskIam,
    client: &ClientProperties,
) -> Option<AwsMskIam> {
    let iam_path = format!("{path}.aws_msk_iam");
    for (key, value) in client.iter_exposed() {
        let conflict = match key {
            "sasl.username" | "sasl.password" => Some(format!(
                "cannot be set together with {iam_path}: MSK IAM signs in with AWS credentials, not a username and password"
            )),
            "sasl.mechanism" | "sasl.mechanisms" if !value.eq_ignore_ascii_case("OAUTHBEARER") => {
                Some(format!(
                    "\"{value}\" conflicts with {iam_path}, which uses OAUTHBEARER (omit it; Ferry sets it)"
                ))
            }
            "security.protocol" if !value.eq_ignore_ascii_case("SASL_SSL") => Some(format!(
                "\"{value}\" conflicts with {iam_path}: MSK IAM listeners use SASL_SSL (omit it; Ferry sets it)"
            )),
            k if k.starts_with("sasl.oauthbearer.") || k == "enable.sasl.oauthbearer.unsecure.jwt" => {
                Some(format!(
                    "cannot be set together with {iam_path}, which provides the OAUTHBEARER token itself"
                ))
            }
            _ => None,
        };
        if let Some(message) = conflict {
            checker.issue(format!("{path}.client.\"{key}\""), message);
        }
    }
    let region = match raw.region {
        None => {
            checker.issue(
                format!("{iam_path}.region"),
                "missing: the cluster's AWS region (e.g. \"us-east-1\")",
            );
            None
        }
        Some(r) => {
            let key = format!("{iam_path}.region");
            checker
                .interpolated(&key, &r)
                .map(|(v, _)| v)
                .filter(|v| {
                    let ok = valid_aws_region(v);
                    if !ok {
                        checker.issue(
                            &key,
                            format!("invalid region \"{v}\": expected an AWS region code such as \"us-east-1\" or \"eu-central-1\""),
                        );
                    }
                    ok
                })
        }
    };
    let profile = match raw.profile {
        Some(p) if p.trim().is_empty() => {
            checker.issue(
                format!("{iam_path}.profile"),
                "must name a profile of the shared AWS files, or be omitted",
            );
            None
        }
        Some(p) => checker
            .interpolated(&format!("{iam_path}.profile"), &p)
            .map(|(v, _)| v),
        None => None,
    };
    Some(AwsMskIam {
        region: region?,
        profile,
    })
}

/// `us-east-1`, `eu-central-1`, `us-gov-west-1`, `cn-north-1`: lower-case
/// words joined by dashes, ending in a number. The region is signed into
/// every token, so a typo would only surface as a rejected login.
pub(crate) fn valid_aws_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

fn check_flow(
    checker: &mut Checker<'_>,
    path: &str,
    raw: RawFlow,
    clusters: &BTreeSet<String>,
) -> Option<Flow> {
    let before = checker.issues.len();
    let mut cluster_ref = |field: &str, value: Option<String>| -> String {
        match value {
            None => {
                checker.issue(
                    format!("{path}.{field}"),
                    "missing: name a cluster from [clusters]",
                );
                String::new()
            }
            Some(name) if !clusters.contains(&name) => {
                let known: Vec<&str> = clusters.iter().map(String::as_str).collect();
                checker.issue(
                    format!("{path}.{field}"),
                    format!("unknown cluster \"{name}\" (known: {})", known.join(", ")),
                );
                name
            }
            Some(name) => name,
        }
    };
    let source = cluster_ref("source", raw.source);
    let target = cluster_ref("target", raw.target);
    if !source.is_empty() && source == target {
        checker.issue(
            format!("{path}.target"),
            format!("a flow cannot replicate cluster \"{source}\" to itself"),
        );
    }

    let topics = raw.topics.unwrap_or_else(|| vec![".*".into()]);
    let topics_exclude = raw.topics_exclude.unwrap_or_default();
    let groups = raw.groups.unwrap_or_else(|| vec![".*".into()]);
    let groups_exclude = raw.groups_exclude.unwrap_or_default();
    checker.regexes(&format!("{path}.topics"), &topics);
    checker.regexes(&format!("{path}.topics_exclude"), &topics_exclude);
    checker.regexes(&format!("{path}.groups"), &groups);
    checker.regexes(&format!("{path}.groups_exclude"), &groups_exclude);

    let topic_naming = match raw.topic_naming.as_deref().unwrap_or("prefix") {
        "prefix" => TopicNaming::Prefix,
        "identity" => TopicNaming::Identity,
        other => {
            checker.issue(
                format!("{path}.topic_naming"),
                format!("invalid topic_naming \"{other}\": use \"prefix\" or \"identity\""),
            );
            TopicNaming::Prefix
        }
    };
    let start_from = match parse_start_from(raw.start_from.as_deref().unwrap_or("earliest")) {
        Ok(s) => s,
        Err(e) => {
            checker.issue(format!("{path}.start_from"), e);
            StartFrom::Earliest
        }
    };
    let unconsumed_fallback = match raw.unconsumed_fallback.as_deref().unwrap_or("earliest") {
        "earliest" => Fallback::Earliest,
        "latest" => Fallback::Latest,
        other => {
            checker.issue(
                format!("{path}.unconsumed_fallback"),
                format!("invalid value \"{other}\": use \"earliest\" or \"latest\""),
            );
            Fallback::Earliest
        }
    };
    let offset_syncs_location = match raw.offset_syncs_location.as_deref().unwrap_or("target") {
        "target" => SyncsLocation::Target,
        "source" => SyncsLocation::Source,
        other => {
            checker.issue(
                format!("{path}.offset_syncs_location"),
                format!("invalid value \"{other}\": use \"target\" or \"source\""),
            );
            SyncsLocation::Target
        }
    };
    let checkpoint_interval = checker.duration(
        format!("{path}.checkpoint_interval"),
        raw.checkpoint_interval.as_deref(),
        DEFAULT_CHECKPOINT_INTERVAL,
    );
    let refresh_interval = checker.duration(
        format!("{path}.refresh_interval"),
        raw.refresh_interval.as_deref(),
        DEFAULT_REFRESH_INTERVAL,
    );
    let heartbeat_interval = checker.duration(
        format!("{path}.heartbeat_interval"),
        raw.heartbeat_interval.as_deref(),
        DEFAULT_HEARTBEAT_INTERVAL,
    );
    if let Some(rf) = raw.replication_factor {
        if rf != -1 && !(1..=32).contains(&rf) {
            checker.issue(
                format!("{path}.replication_factor"),
                format!("invalid replication_factor {rf}: use 1..=32, or omit it for the broker default"),
            );
        }
    }
    let max_in_flight_bytes = match raw.max_in_flight_bytes.as_ref().map(parse_bytes) {
        None => DEFAULT_MAX_IN_FLIGHT_BYTES,
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            checker.issue(format!("{path}.max_in_flight_bytes"), e);
            DEFAULT_MAX_IN_FLIGHT_BYTES
        }
    };
    let mm2_offsets = check_mm2_offsets(checker, path, raw.mm2_offsets, &source, &target, clusters);
    let on_record_error = check_on_record_error(
        checker,
        path,
        raw.on_record_error.as_deref(),
        raw.dead_letter_topic,
    );
    let make_filter = |inc: Vec<String>, exc: Vec<String>| NameFilter::new(inc, exc).ok();
    let topics = make_filter(topics, topics_exclude);
    let groups = make_filter(groups, groups_exclude);

    if checker.issues.len() != before {
        return None;
    }
    Some(Flow {
        source,
        target,
        enabled: raw.enabled.unwrap_or(true),
        topics: topics?,
        groups: groups?,
        topic_naming,
        start_from,
        unconsumed_fallback,
        sync_topic_configs: raw.sync_topic_configs.unwrap_or(true),
        topic_configs_exclude: raw.topic_configs_exclude.unwrap_or_default(),
        sync_group_offsets: raw.sync_group_offsets.unwrap_or(true),
        emit_checkpoints: raw.emit_checkpoints.unwrap_or(true),
        emit_heartbeats: raw.emit_heartbeats.unwrap_or(true),
        checkpoint_interval,
        refresh_interval,
        heartbeat_interval,
        replication_factor: raw.replication_factor.filter(|rf| *rf != -1),
        max_in_flight_bytes,
        cycle_protection: raw.cycle_protection.unwrap_or(true),
        offset_syncs_location,
        mm2_offsets,
        on_record_error,
    })
}

/// `flows[].mm2_offsets`: absent means MirrorMaker 2 in dedicated mode. When
/// given, the offsets topic and the connector are required (Connect has no
/// default an operator could rely on), the cluster defaults to the target.
fn check_mm2_offsets(
    checker: &mut Checker<'_>,
    path: &str,
    raw: Option<RawMm2Offsets>,
    source: &str,
    target: &str,
    clusters: &BTreeSet<String>,
) -> Mm2Offsets {
    let Some(raw) = raw else {
        return Mm2Offsets::dedicated(source, target);
    };
    let path = format!("{path}.mm2_offsets");
    let cluster = match raw.cluster {
        None => target.to_string(),
        Some(name) => {
            if !clusters.contains(&name) {
                let known: Vec<&str> = clusters.iter().map(String::as_str).collect();
                checker.issue(
                    format!("{path}.cluster"),
                    format!(
                        "unknown cluster \"{name}\" (known: {}): name the cluster that holds the Connect offsets topic",
                        known.join(", ")
                    ),
                );
            }
            name
        }
    };
    let mut required = |key: &str, value: Option<String>, example: &str| -> String {
        match value.filter(|v| !v.trim().is_empty()) {
            Some(v) => v,
            None => {
                checker.issue(
                    format!("{path}.{key}"),
                    format!("missing or empty: {example}"),
                );
                String::new()
            }
        }
    };
    let topic = required(
        "topic",
        raw.topic,
        "name the Connect worker's offset.storage.topic, e.g. \"connect-offsets\"",
    );
    let connector = required(
        "connector",
        raw.connector,
        "name the MirrorSourceConnector as created in Connect, e.g. \"mm2-source\"",
    );
    Mm2Offsets {
        cluster,
        topic,
        connector,
    }
}

/// `on_record_error` and the `dead_letter_topic` that `"dead-letter"` needs
/// (and nothing else takes).
fn check_on_record_error(
    checker: &mut Checker<'_>,
    path: &str,
    policy: Option<&str>,
    dead_letter_topic: Option<String>,
) -> OnRecordError {
    let topic_path = format!("{path}.dead_letter_topic");
    match (policy.unwrap_or("stall"), dead_letter_topic) {
        ("stall", None) => OnRecordError::Stall,
        ("skip", None) => OnRecordError::Skip,
        ("dead-letter", Some(topic)) => {
            if let Err(why) = check_topic_name(&topic) {
                checker.issue(topic_path, format!("invalid topic name \"{topic}\": {why}"));
            }
            OnRecordError::DeadLetter { topic }
        }
        ("dead-letter", None) => {
            checker.issue(
                topic_path,
                "missing: on_record_error = \"dead-letter\" needs the target topic to write refused records to",
            );
            OnRecordError::Stall
        }
        (policy @ ("stall" | "skip"), Some(_)) => {
            checker.issue(
                topic_path,
                format!("only used with on_record_error = \"dead-letter\" (it is \"{policy}\")"),
            );
            OnRecordError::Stall
        }
        (other, _) => {
            checker.issue(
                format!("{path}.on_record_error"),
                format!("invalid value \"{other}\": use \"stall\", \"skip\" or \"dead-letter\""),
            );
            OnRecordError::Stall
        }
    }
}

/// Kafka's rules for a topic name.
fn check_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("empty, \".\" or \"..\"");
    }
    if name.len() > 249 {
        return Err("longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("use only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Identity naming without cycle protection loops forever around any cycle
/// of flows: the same topic name comes back to where it started.
fn check_cycles(checker: &mut Checker<'_>, flows: &[(usize, Flow)]) {
    let unprotected: Vec<&(usize, Flow)> = flows
        .iter()
        .filter(|(_, f)| f.topic_naming == TopicNaming::Identity && !f.cycle_protection)
        .collect();
    for (i, flow) in &unprotected {
        // Is there a path back from flow.target to flow.source over
        // unprotected identity flows?
        let mut stack = vec![flow.target.as_str()];
        let mut visited = BTreeSet::new();
        let mut closes = false;
        while let Some(node) = stack.pop() {
            if node == flow.source {
                closes = true;
                break;
            }
            if visited.insert(node) {
                stack.extend(
                    unprotected
                        .iter()
                        .filter(|(_, f)| f.source == node)
                        .map(|(_, f)| f.target.as_str()),
                );
            }
        }
        if closes {
            checker.issue(
                format!("flows[{i}]"),
                format!(
                    "flow {} is part of a cycle under identity naming with cycle_protection = false; \
                     records would loop forever. Set cycle_protection = true or topic_naming = \"prefix\"",
                    flow.id()
                ),
            );
        }
    }
}

/// What an OIDC client-credentials login needs, each under its librdkafka
/// name and, where librdkafka has one, its alias.
const OIDC_REQUIRED: &[(&str, Option<&str>)] = &[
    (
        "sasl.oauthbearer.client.id",
        Some("sasl.oauthbearer.client.credentials.client.id"),
    ),
    (
        "sasl.oauthbearer.client.secret",
        Some("sasl.oauthbearer.client.credentials.client.secret"),
    ),
    ("sasl.oauthbearer.token.endpoint.url", None),
];

/// SASL OAUTHBEARER needs someone to fetch tokens. Ferry registers no token
/// callback, so the provider is librdkafka's OIDC client credentials login;
/// without it the client would never authenticate, and an OIDC login with a
/// key missing fails only once the daemon runs. Every gap is named at once.
fn check_oauthbearer(checker: &mut Checker<'_>, path: &str, client: &ClientProperties) {
    let mechanism = client
        .get("sasl.mechanism")
        .or_else(|| client.get("sasl.mechanisms"));
    if !mechanism.is_some_and(|m| m.expose().trim().eq_ignore_ascii_case("OAUTHBEARER")) {
        return;
    }
    let key_path = |key: &str| format!("{path}.client.\"{key}\"");
    match client.get("sasl.oauthbearer.method") {
        Some(m) if m.expose().trim().eq_ignore_ascii_case("oidc") => {}
        Some(m) => checker.issue(
            key_path("sasl.oauthbearer.method"),
            format!(
                "\"{}\" cannot authenticate with sasl.mechanism OAUTHBEARER: set \"oidc\" \
                 (OAuth 2.0 client credentials from a token endpoint)",
                m.display()
            ),
        ),
        None => checker.issue(
            key_path("sasl.oauthbearer.method"),
            "missing: sasl.mechanism OAUTHBEARER needs a token provider; set \"oidc\" \
             (OAuth 2.0 client credentials from a token endpoint)",
        ),
    }
    for (key, alias) in OIDC_REQUIRED {
        let given = client
            .get(key)
            .or_else(|| alias.and_then(|a| client.get(a)))
            .is_some_and(|v| !v.expose().trim().is_empty());
        // A value that failed to load (unset `${env:…}`) is already reported.
        let reported = checker.issues.iter().any(|i| i.path == key_path(key));
        if !given && !reported {
            checker.issue(
                key_path(key),
                "missing: sasl.mechanism OAUTHBEARER with sasl.oauthbearer.method \"oidc\" needs it",
            );
        }
    }
}
