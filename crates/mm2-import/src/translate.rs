//! The whole file → Ferry clusters and flows.
//!
//! MirrorMaker 2 reads a setting from the most specific place it is given:
//! a flow's `A->B.<property>` over the top-level `<property>`; for a
//! cluster's clients `X.producer.<p>` (or `consumer.`, `admin.`) over
//! `X.<p>` over the top-level `producer.<p>` over the top-level `<p>`. The
//! translation resolves the same way. Every property it reads is marked
//! used; whatever is left unused at the end is reported with the reason
//! Ferry has no equivalent.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::{self, Rule};
use crate::emit::{self, ClusterOut, FlowOut, Setting, Value};
use crate::properties::{self, Entry};
use crate::security;
use crate::{EnvVar, ImportError, Problem, Translation, Warning};

/// MirrorMaker 2's `topics.exclude` when unset (`DefaultTopicFilter`).
const MM2_TOPICS_EXCLUDE: &[&str] = &[r".*[\-\.]internal", r".*\.replica", "__.*"];
/// MirrorMaker 2's `groups.exclude` when unset (`DefaultGroupFilter`).
const MM2_GROUPS_EXCLUDE: &[&str] = &["console-consumer-.*", "connect-.*", "__.*"];

/// MirrorMaker 2's own settings whose names start like client roles.
const MM2_ROLE_LOOKALIKES: &[&str] = &["admin.timeout.ms", "consumer.poll.timeout.ms"];

/// The built-in classes MirrorMaker 2 uses when none is configured: naming
/// them changes nothing.
const DEFAULT_CLASSES: &[(&str, &str)] = &[
    (
        "topic.filter.class",
        "org.apache.kafka.connect.mirror.DefaultTopicFilter",
    ),
    (
        "group.filter.class",
        "org.apache.kafka.connect.mirror.DefaultGroupFilter",
    ),
    (
        "config.property.filter.class",
        "org.apache.kafka.connect.mirror.DefaultConfigPropertyFilter",
    ),
];

/// Shared state of one translation: the file's properties, what was read
/// from them, and everything found on the way.
pub(crate) struct Ctx {
    origin: String,
    /// The file name only, for comments: the output must not carry the
    /// path of the machine it was made on.
    file_name: String,
    props: BTreeMap<String, Entry>,
    used: BTreeSet<String>,
    pub warnings: Vec<Warning>,
    pub problems: Vec<Problem>,
    pub env_vars: Vec<EnvVar>,
}

impl Ctx {
    /// The property's entry, marked used.
    pub fn get(&mut self, key: &str) -> Option<Entry> {
        let entry = self.props.get(key).cloned();
        if entry.is_some() {
            self.used.insert(key.to_string());
        }
        entry
    }

    pub fn warn(&mut self, entry: &Entry, message: impl Into<String>) {
        self.warn_at(Some(entry.line), &entry.key.clone(), message);
    }

    pub fn problem(&mut self, line: Option<usize>, property: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            origin: self.origin.clone(),
            line,
            property: property.to_string(),
            message: message.into(),
        });
    }

    /// A warning that is not about one line of the file.
    pub fn warn_at(&mut self, line: Option<usize>, property: &str, message: impl Into<String>) {
        self.warnings.push(Warning {
            origin: self.origin.clone(),
            line,
            property: property.to_string(),
            message: message.into(),
        });
    }

    /// `mm2.properties:12`.
    pub fn place(&self, entry: &Entry) -> String {
        format!("{}:{}", self.file_name, entry.line)
    }

    /// `from mm2.properties:12 primary.bootstrap.servers`.
    pub fn from(&self, entry: &Entry) -> String {
        format!("from {} {}", self.place(entry), entry.key)
    }

    /// A value the output reads from `FERRY_<CLUSTER>_<PROPERTY>`: every
    /// secret (its value is dropped here), and what the file does not say.
    pub fn env_var(&mut self, cluster: &str, property: &str, holds: String) -> Value {
        let name = format!("FERRY_{}_{}", env_part(cluster), env_part(property));
        if !self.env_vars.iter().any(|s| s.name == name) {
            self.env_vars.push(EnvVar {
                name: name.clone(),
                holds,
            });
        }
        Value::Env(name)
    }

    /// A boolean as MirrorMaker 2's `ConfigDef` reads it.
    fn bool(&mut self, entry: &Entry) -> Option<bool> {
        match entry.value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.problem(
                    Some(entry.line),
                    &entry.key,
                    format!(
                        "invalid boolean \"{}\": use true or false",
                        entry.value.trim()
                    ),
                );
                None
            }
        }
    }

    /// A whole number of seconds (MirrorMaker 2's `*.interval.seconds`).
    fn seconds(&mut self, entry: &Entry) -> Option<i64> {
        match entry.value.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.problem(
                    Some(entry.line),
                    &entry.key,
                    format!(
                        "invalid number of seconds \"{}\": expected a whole number",
                        entry.value.trim()
                    ),
                );
                None
            }
        }
    }
}

fn env_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn run(text: &str, origin: &str) -> Result<Translation, ImportError> {
    let entries = properties::parse(text).map_err(|e| ImportError::Invalid {
        problems: vec![Problem {
            origin: origin.to_string(),
            line: Some(e.line),
            property: if e.key.is_empty() {
                "(no name)".into()
            } else {
                e.key
            },
            message: e.message,
        }],
    })?;
    let file_name = std::path::Path::new(origin)
        .file_name()
        .map_or_else(|| origin.to_string(), |n| n.to_string_lossy().into_owned());
    let mut ctx = Ctx {
        origin: origin.to_string(),
        file_name,
        props: BTreeMap::new(),
        used: BTreeSet::new(),
        warnings: Vec::new(),
        problems: Vec::new(),
        env_vars: Vec::new(),
    };
    for entry in entries {
        if let Some(earlier) = ctx.props.get(&entry.key).cloned() {
            ctx.warn(
                &earlier,
                format!(
                    "set again on line {}; MirrorMaker 2 uses the later value, and so does this translation",
                    entry.line
                ),
            );
        }
        ctx.props.insert(entry.key.clone(), entry);
    }

    let aliases = cluster_aliases(&mut ctx);
    check_flow_keys(&mut ctx, &aliases);
    let mut clusters = Vec::new();
    let mut start_from = BTreeMap::new();
    for alias in &aliases {
        let (cluster, start) = translate_cluster(&mut ctx, alias);
        clusters.push(cluster);
        if let Some(start) = start {
            start_from.insert(alias.clone(), start);
        }
    }
    let flows = translate_flows(&mut ctx, &aliases, &start_from);
    report_unused(&mut ctx, &aliases);

    if !ctx.problems.is_empty() {
        ctx.problems.sort_by_key(|p| p.line);
        return Err(ImportError::Invalid {
            problems: ctx.problems,
        });
    }
    let mut seen = BTreeSet::new();
    ctx.warnings.retain(|w| seen.insert(w.to_string()));
    ctx.warnings.sort_by_key(|w| w.line);
    let toml = emit::render(&ctx.file_name, &clusters, &flows, &ctx.env_vars);
    Ok(Translation {
        toml,
        warnings: ctx.warnings,
        env_vars: ctx.env_vars,
    })
}

/// `clusters = a, b`: the aliases, each a valid Ferry cluster name.
fn cluster_aliases(ctx: &mut Ctx) -> Vec<String> {
    let Some(entry) = ctx.get("clusters") else {
        ctx.problem(
            None,
            "clusters",
            "missing: list the cluster aliases, e.g. clusters = primary, backup",
        );
        return Vec::new();
    };
    let mut aliases: Vec<String> = Vec::new();
    for alias in list(&entry.value) {
        let valid = alias.len() <= 64
            && alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            ctx.problem(
                Some(entry.line),
                "clusters",
                format!("alias \"{alias}\" cannot name a Ferry cluster: use letters, digits, '_' and '-' (at most 64)"),
            );
        } else if !aliases.contains(&alias) {
            aliases.push(alias);
        }
    }
    if aliases.is_empty() && ctx.problems.is_empty() {
        ctx.problem(Some(entry.line), "clusters", "lists no cluster alias");
    }
    aliases
}

/// A MirrorMaker 2 list: comma-separated, blanks around items ignored.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `A->B.<property>` split into the flow and the property.
fn flow_key(key: &str) -> Option<(&str, &str, &str)> {
    let (source, rest) = key.split_once("->")?;
    let (target, property) = rest.split_once('.').unwrap_or((rest, ""));
    Some((source, target, property))
}

/// Every `A->B.` key must name two known, different clusters.
fn check_flow_keys(ctx: &mut Ctx, aliases: &[String]) {
    let keys: Vec<Entry> = ctx
        .props
        .values()
        .filter(|e| e.key.contains("->"))
        .cloned()
        .collect();
    for entry in keys {
        let Some((source, target, property)) = flow_key(&entry.key) else {
            continue;
        };
        for alias in [source, target] {
            if !aliases.iter().any(|a| a == alias) {
                ctx.problem(
                    Some(entry.line),
                    &entry.key,
                    format!(
                        "unknown cluster alias \"{alias}\" (clusters: {})",
                        aliases.join(", ")
                    ),
                );
            }
        }
        if property.is_empty() {
            ctx.problem(
                Some(entry.line),
                &entry.key,
                "expected SOURCE->TARGET.<property>, e.g. primary->backup.enabled",
            );
        } else if source == target {
            ctx.problem(
                Some(entry.line),
                &entry.key,
                format!("a flow cannot replicate cluster \"{source}\" to itself"),
            );
        }
    }
}

/// Where a flow from this cluster starts, from its consumers'
/// `auto.offset.reset`: (`start_from`, the comment).
pub(crate) type StartFrom = (String, String);

fn translate_cluster(ctx: &mut Ctx, alias: &str) -> (ClusterOut, Option<StartFrom>) {
    let mut out = ClusterOut {
        name: alias.to_string(),
        ..Default::default()
    };
    let bootstrap_key = format!("{alias}.bootstrap.servers");
    let mut bootstrap = None;
    match ctx.get(&bootstrap_key) {
        Some(entry) if entry.value.contains("${") => {
            ctx.warn(
                &entry,
                "a Kafka config provider reference; set the environment variable named in the output",
            );
            let value = ctx.env_var(
                alias,
                "bootstrap.servers",
                format!("the bootstrap servers of cluster {alias}"),
            );
            out.settings
                .push(Setting::new("bootstrap_servers", value, ctx.from(&entry)));
        }
        Some(entry) if !entry.value.trim().is_empty() => {
            let servers = list(&entry.value).join(",");
            out.settings.push(Setting::new(
                "bootstrap_servers",
                Value::Str(servers.clone()),
                ctx.from(&entry),
            ));
            bootstrap = Some(servers);
        }
        found => {
            let line = found
                .map(|e| e.line)
                .or_else(|| ctx.props.get("clusters").map(|e| e.line));
            ctx.problem(
                line,
                &bootstrap_key,
                format!("missing or empty: cluster {alias} needs its bootstrap servers"),
            );
        }
    }
    let effective = effective_client(ctx, alias);
    let start = security::translate(ctx, alias, bootstrap.as_deref(), effective, &mut out);
    (out, start)
}

/// The Java client properties that apply to `alias`'s clients, by
/// unprefixed name, each from the most specific place it is given.
fn effective_client(ctx: &mut Ctx, alias: &str) -> BTreeMap<String, Entry> {
    const ROLES: &[&str] = &["producer.", "consumer.", "admin."];
    let cluster_prefix = format!("{alias}.");
    // (name, rank, entry): a higher rank is more specific.
    let mut candidates: Vec<(String, u8, Entry)> = Vec::new();
    let keys: Vec<String> = ctx.props.keys().cloned().collect();
    for key in keys {
        if key.contains("->") {
            continue;
        }
        let (scoped, rest) = match key.strip_prefix(&cluster_prefix) {
            Some(rest) => (true, rest),
            None => (false, key.as_str()),
        };
        // MirrorMaker 2 settings that only look like client properties.
        if MM2_ROLE_LOOKALIKES.contains(&rest) {
            continue;
        }
        let role = ROLES.iter().find_map(|r| rest.strip_prefix(r));
        let (name, rank) = match (scoped, role) {
            (true, Some(name)) => (name, 4),
            // MirrorMaker 2 hands only connection and security settings
            // from `X.<p>` to X's clients.
            (true, None) if client::is_cluster_wide(rest) => (rest, 3),
            (false, Some(name)) => (name, 2),
            (false, None) if client::is_cluster_wide(rest) => (rest, 1),
            _ => continue,
        };
        if rest == "bootstrap.servers" {
            continue;
        }
        let name = name.to_string();
        let entry = ctx.get(&key).expect("listed key exists");
        candidates.push((name, rank, entry));
    }
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut effective: BTreeMap<String, Entry> = BTreeMap::new();
    let mut winner_rank: BTreeMap<String, u8> = BTreeMap::new();
    for (name, rank, entry) in candidates {
        match effective.get(&name) {
            None => {
                winner_rank.insert(name.clone(), rank);
                effective.insert(name, entry);
            }
            Some(winner) if winner_rank[&name] == rank && winner.value != entry.value => {
                let message = format!(
                    "differs from {} (line {}): Ferry has one client configuration per cluster ([clusters.{alias}.client]), which takes line {}",
                    winner.key, winner.line, winner.line
                );
                ctx.warn(&entry, message);
            }
            Some(_) => {}
        }
    }
    effective
}

fn translate_flows(
    ctx: &mut Ctx,
    aliases: &[String],
    start_from: &BTreeMap<String, StartFrom>,
) -> Vec<FlowOut> {
    let mut enabled: Vec<Entry> = ctx
        .props
        .values()
        .filter(|e| matches!(flow_key(&e.key), Some((_, _, "enabled"))))
        .cloned()
        .collect();
    // Flows in the order the file names them.
    enabled.sort_by_key(|e| e.line);
    let mut flows = Vec::new();
    for entry in enabled {
        let Some((source, target, _)) = flow_key(&entry.key) else {
            continue;
        };
        let (source, target) = (source.to_string(), target.to_string());
        ctx.used.insert(entry.key.clone());
        if !aliases.contains(&source) || !aliases.contains(&target) || source == target {
            continue; // already a problem
        }
        let Some(enabled) = ctx.bool(&entry) else {
            continue;
        };
        let mut flow = FlowOut::default();
        let from = ctx.from(&entry);
        flow.settings
            .push(Setting::new("source", Value::Str(source.clone()), from));
        flow.settings
            .push(Setting::new("target", Value::Str(target.clone()), ""));
        if !enabled {
            flow.settings.push(Setting::new(
                "enabled",
                Value::Bool(false),
                "disabled in MirrorMaker 2: kept, validated, not run",
            ));
        }
        FlowTranslation {
            ctx,
            flow: &mut flow,
            source: &source,
            target: &target,
        }
        .translate(start_from.get(&source));
        flows.push(flow);
    }
    if flows.is_empty() && ctx.problems.is_empty() {
        ctx.warn_at(
            None,
            "SOURCE->TARGET.enabled",
            "no flow is enabled: a Ferry topology needs at least one [[flows]]",
        );
    }
    flows
}

struct FlowTranslation<'a> {
    ctx: &'a mut Ctx,
    flow: &'a mut FlowOut,
    source: &'a str,
    target: &'a str,
}

impl FlowTranslation<'_> {
    /// The flow's own `A->B.<property>`, else the top-level one. Both are
    /// marked used.
    fn lookup(&mut self, property: &str) -> Option<Entry> {
        let own = self
            .ctx
            .get(&format!("{}->{}.{property}", self.source, self.target));
        let top = self.ctx.get(property);
        own.or(top)
    }

    /// The first of `names` (a property and its old aliases) that is set.
    fn lookup_any(&mut self, names: &[&str]) -> Option<Entry> {
        let found: Vec<Option<Entry>> = names.iter().map(|n| self.lookup(n)).collect();
        found.into_iter().flatten().next()
    }

    fn push(&mut self, key: &str, value: Value, comment: String) {
        self.flow.settings.push(Setting::new(key, value, comment));
    }

    fn translate(mut self, start_from: Option<&StartFrom>) {
        self.filter(
            "topics",
            &["topics"],
            "topics_exclude",
            &["topics.exclude", "topics.blacklist"],
            MM2_TOPICS_EXCLUDE,
        );
        self.filter(
            "groups",
            &["groups"],
            "groups_exclude",
            &["groups.exclude", "groups.blacklist"],
            MM2_GROUPS_EXCLUDE,
        );
        self.naming();
        if let Some((value, comment)) = start_from {
            self.push("start_from", Value::Str(value.clone()), comment.clone());
        }
        self.topic_configs();
        self.checkpoints_and_group_sync();
        self.heartbeats();
        self.refresh();
        if let Some(entry) = self.lookup("offset-syncs.topic.location") {
            match entry.value.trim().to_ascii_lowercase().as_str() {
                location @ ("source" | "target") => {
                    let from = self.ctx.from(&entry);
                    self.push("offset_syncs_location", Value::Str(location.into()), from);
                }
                other => self.ctx.problem(
                    Some(entry.line),
                    &entry.key,
                    format!("invalid value \"{other}\": use source or target"),
                ),
            }
        }
        if let Some(entry) = self.lookup("replication.factor") {
            match entry.value.trim().parse::<i32>() {
                Ok(rf) if rf == -1 || (1..=32).contains(&rf) => {
                    let from = self.ctx.from(&entry);
                    self.push("replication_factor", Value::Int(rf.into()), from);
                }
                _ => self.ctx.problem(
                    Some(entry.line),
                    &entry.key,
                    format!(
                        "invalid replication factor \"{}\": use 1 to 32, or -1 for the broker default",
                        entry.value.trim()
                    ),
                ),
            }
        }
    }

    /// Include and exclude lists of regexes. MirrorMaker 2 joins a list's
    /// items with `|` and matches the whole name; Ferry matches each item
    /// against the whole name, which selects the same names.
    fn filter(
        &mut self,
        key: &str,
        names: &[&str],
        exclude_key: &str,
        exclude_names: &[&str],
        default_exclude: &[&str],
    ) {
        let (include, comment) = match self.lookup_any(names) {
            Some(entry) => (self.patterns(&entry), self.ctx.from(&entry)),
            None => (
                vec![".*".to_string()],
                format!("MirrorMaker 2's default ({} unset)", names[0]),
            ),
        };
        self.push(key, Value::List(include), comment);
        let (exclude, comment) = match self.lookup_any(exclude_names) {
            Some(entry) => {
                let mut comment = self.ctx.from(&entry);
                if entry.key.ends_with(".blacklist") {
                    comment.push_str(&format!(" (the old name of {})", exclude_names[0]));
                }
                (self.patterns(&entry), comment)
            }
            None => (
                default_exclude.iter().map(|s| s.to_string()).collect(),
                format!("MirrorMaker 2's default ({} unset)", exclude_names[0]),
            ),
        };
        self.push(exclude_key, Value::List(exclude), comment);
    }

    /// A list of Java regexes as Ferry patterns; one that Ferry's regex
    /// syntax cannot compile is a problem (dropping it would widen or
    /// narrow what is replicated).
    fn patterns(&mut self, entry: &Entry) -> Vec<String> {
        let mut out = Vec::new();
        for item in list(&entry.value) {
            if possessive(&item) {
                self.ctx.problem(
                    Some(entry.line),
                    &entry.key,
                    format!("invalid regex \"{item}\" for Ferry: it has no possessive quantifiers (*+, ++, ?+, {{n}}+); write the pattern without them"),
                );
                continue;
            }
            let pattern = java_regex(&item);
            match ferry_config::anchored(&pattern) {
                Ok(_) => out.push(pattern),
                Err(e) => {
                    // The regex crate's last line is the cause ("unclosed group").
                    let text = e.to_string();
                    let why = text.lines().last().unwrap_or_default().trim();
                    let why = why.strip_prefix("error: ").unwrap_or(why);
                    self.ctx.problem(
                        Some(entry.line),
                        &entry.key,
                        format!(
                            "invalid regex \"{item}\" (or one Ferry's regex syntax lacks): {why}"
                        ),
                    )
                }
            }
        }
        out
    }

    fn naming(&mut self) {
        let naming = match self.lookup("replication.policy.class") {
            None => (
                "prefix",
                "MirrorMaker 2's default DefaultReplicationPolicy: <source>.<topic>".to_string(),
            ),
            Some(entry) => match entry.value.trim() {
                "org.apache.kafka.connect.mirror.DefaultReplicationPolicy" => {
                    ("prefix", self.ctx.from(&entry))
                }
                "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
                | "io.strimzi.kafka.connect.mirror.IdentityReplicationPolicy" => {
                    ("identity", self.ctx.from(&entry))
                }
                class => {
                    let message = format!(
                        "custom replication policy {class} not translated: Ferry names target topics \"prefix\" (<source>.<topic>) or \"identity\"; prefix is used, check it matches"
                    );
                    self.ctx.warn(&entry, message);
                    (
                        "prefix",
                        format!("{} (custom class, see warnings)", self.ctx.from(&entry)),
                    )
                }
            },
        };
        self.push("topic_naming", Value::Str(naming.0.into()), naming.1);
        if let Some(entry) = self.lookup("replication.policy.separator") {
            if entry.value != "." {
                let from = self.ctx.from(&entry);
                self.push("topic_separator", Value::Str(entry.value.clone()), from);
            }
        }
    }

    fn topic_configs(&mut self) {
        if let Some((on, entry)) = self.flag("sync.topic.configs.enabled") {
            let from = self.ctx.from(&entry);
            self.push("sync_topic_configs", Value::Bool(on), from);
        }
        let Some(entry) =
            self.lookup_any(&["config.properties.exclude", "config.properties.blacklist"])
        else {
            return;
        };
        // Ferry excludes exact config names; MirrorMaker 2 takes regexes,
        // usually literal names with escaped dots.
        let mut names = Vec::new();
        for item in list(&entry.value) {
            let name = item.replace("\\.", ".");
            if name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                names.push(name);
            } else {
                self.ctx.warn(
                    &entry,
                    format!("pattern \"{item}\" not translated: Ferry's topic_configs_exclude takes exact config names"),
                );
            }
        }
        let from = self.ctx.from(&entry);
        self.push("topic_configs_exclude", Value::List(names), from);
    }

    /// A boolean property: its value and where it came from.
    fn flag(&mut self, property: &str) -> Option<(bool, Entry)> {
        let entry = self.lookup(property)?;
        self.ctx.bool(&entry).map(|on| (on, entry))
    }

    /// Ferry translates offsets, writes checkpoints and syncs group offsets
    /// in one cycle every `checkpoint_interval`: MirrorMaker 2's two
    /// intervals become the shorter of them. A negative interval is
    /// MirrorMaker 2's "off".
    fn checkpoints_and_group_sync(&mut self) {
        let mut emit_checkpoints = self.flag("emit.checkpoints.enabled");
        let mut sync_groups = self.flag("sync.group.offsets.enabled");
        let mut interval: Option<(i64, Vec<Entry>)> = None;
        for (property, switch) in [
            ("emit.checkpoints.interval.seconds", &mut emit_checkpoints),
            ("sync.group.offsets.interval.seconds", &mut sync_groups),
        ] {
            let Some(entry) = self.lookup(property) else {
                continue;
            };
            match self.ctx.seconds(&entry) {
                Some(n) if n < 0 => *switch = Some((false, entry)),
                Some(0) => self.ctx.warn(
                    &entry,
                    "0 is not an interval Ferry can use; its default checkpoint_interval (5s) is kept",
                ),
                Some(n) => match &mut interval {
                    None => interval = Some((n, vec![entry])),
                    Some((shortest, entries)) => {
                        if *shortest != n {
                            let message = format!(
                                "Ferry checkpoints and syncs group offsets in one cycle (checkpoint_interval): the shorter interval, {}s, is used for both",
                                n.min(*shortest)
                            );
                            self.ctx.warn(&entry, message);
                        }
                        *shortest = n.min(*shortest);
                        entries.push(entry);
                    }
                },
                None => {}
            }
        }
        if let Some((on, entry)) = emit_checkpoints {
            let from = self.ctx.from(&entry);
            self.push("emit_checkpoints", Value::Bool(on), from);
        }
        if let Some((secs, entries)) = interval {
            let from: Vec<String> = entries.iter().map(|e| self.ctx.from(e)).collect();
            self.push(
                "checkpoint_interval",
                Value::Str(format!("{secs}s")),
                from.join("\n"),
            );
        }
        let (on, comment) = match sync_groups {
            Some((on, entry)) => (on, self.ctx.from(&entry)),
            None => (
                false,
                "MirrorMaker 2's default (sync.group.offsets.enabled unset)".to_string(),
            ),
        };
        self.push("sync_group_offsets", Value::Bool(on), comment);
    }

    fn heartbeats(&mut self) {
        let mut enabled = self.flag("emit.heartbeats.enabled");
        if let Some(entry) = self.lookup("emit.heartbeats.interval.seconds") {
            match self.ctx.seconds(&entry) {
                Some(n) if n < 0 => enabled = Some((false, entry)),
                Some(0) => self.ctx.warn(
                    &entry,
                    "0 is not an interval Ferry can use; its default heartbeat_interval (1s) is kept",
                ),
                Some(n) => {
                    let from = self.ctx.from(&entry);
                    self.push("heartbeat_interval", Value::Str(format!("{n}s")), from);
                }
                None => {}
            }
        }
        if let Some((on, entry)) = enabled {
            let from = self.ctx.from(&entry);
            self.push("emit_heartbeats", Value::Bool(on), from);
        }
    }

    fn refresh(&mut self) {
        if let Some(entry) = self.lookup("refresh.topics.interval.seconds") {
            match self.ctx.seconds(&entry) {
                Some(n) if n > 0 => {
                    let from = self.ctx.from(&entry);
                    self.push("refresh_interval", Value::Str(format!("{n}s")), from);
                }
                Some(_) => self.ctx.warn(
                    &entry,
                    "Ferry always looks for new topics; its default refresh_interval (30s) is kept",
                ),
                None => {}
            }
        }
        if let Some(entry) = self.lookup("refresh.groups.interval.seconds") {
            self.ctx.warn(
                &entry,
                "no separate setting in Ferry: it lists consumer groups on every checkpoint cycle (checkpoint_interval)",
            );
        }
    }
}

/// Java regex syntax → Ferry's (Rust `regex`). They agree on everything a
/// topic or group pattern normally uses; `\Q…\E` quoting is rewritten.
/// What Rust's syntax lacks (look-around, back-references, possessive
/// quantifiers) fails to compile and is reported.
fn java_regex(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("\\Q") {
        out.push_str(&rest[..start]);
        let quoted = &rest[start + 2..];
        let (literal, after) = quoted.split_once("\\E").unwrap_or((quoted, ""));
        out.push_str(&regex::escape(literal));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// True when a Java regex uses a possessive quantifier. Rust's syntax reads
/// `a*+` as `(a*)+`, which matches other names than Java's `a*+` would, so
/// it must not pass silently.
fn possessive(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    let mut in_class = false;
    let mut after_quantifier = false;
    while let Some(c) = chars.next() {
        let quantifier = match c {
            '\\' => {
                chars.next();
                false
            }
            '[' => {
                in_class = true;
                false
            }
            ']' => {
                in_class = false;
                false
            }
            '*' | '+' | '?' | '}' if !in_class => true,
            _ => false,
        };
        // `a+` after a quantifier is possessive; `a+?` (lazy) is fine.
        if c == '+' && after_quantifier {
            return true;
        }
        after_quantifier = quantifier;
    }
    false
}

/// Properties not read by the translation: why Ferry has no equivalent.
fn report_unused(ctx: &mut Ctx, aliases: &[String]) {
    let unused: Vec<Entry> = ctx
        .props
        .values()
        .filter(|e| !ctx.used.contains(&e.key))
        .cloned()
        .collect();
    // Flows MirrorMaker 2 would run or that are kept disabled.
    let enabled_flows: BTreeSet<(String, String)> = ctx
        .props
        .keys()
        .filter_map(|k| match flow_key(k) {
            Some((source, target, "enabled")) => Some((source.to_string(), target.to_string())),
            _ => None,
        })
        .collect();
    for entry in unused {
        let reason = unused_reason(&entry, aliases, &enabled_flows);
        if let Some(reason) = reason {
            ctx.warn(&entry, reason);
        }
    }
}

fn unused_reason(
    entry: &Entry,
    aliases: &[String],
    enabled_flows: &BTreeSet<(String, String)>,
) -> Option<String> {
    let key = entry.key.as_str();
    if let Some((source, target, property)) = flow_key(key) {
        if !enabled_flows.contains(&(source.to_string(), target.to_string())) {
            return Some(format!(
                "not translated: flow {source}->{target} is not enabled (no {source}->{target}.enabled = true)"
            ));
        }
        if property.starts_with("producer.")
            || property.starts_with("consumer.")
            || property.starts_with("admin.")
            || client::rule(property).is_some()
        {
            return Some(format!(
                "not translated: client settings are per cluster in Ferry; set it in [clusters.{source}.client] or [clusters.{target}.client]"
            ));
        }
        return Some(format!(
            "not translated: {}",
            property_reason(property).unwrap_or_else(|| "unknown property".into())
        ));
    }
    let property = aliases
        .iter()
        .find_map(|a| key.strip_prefix(&format!("{a}.")))
        .unwrap_or(key);
    let role_property = ["producer.", "consumer.", "admin."]
        .iter()
        .find_map(|r| property.strip_prefix(r))
        .filter(|_| !MM2_ROLE_LOOKALIKES.contains(&property));
    if let Some(name) = role_property {
        return Some(match client::rule(name) {
            Some(Rule::Skip(reason)) => format!("not translated: {reason}"),
            _ => format!("not translated: no librdkafka equivalent of the Java client property {name} is known"),
        });
    }
    if DEFAULT_CLASSES
        .iter()
        .any(|(k, v)| *k == property && entry.value.trim() == *v)
    {
        return None;
    }
    let scoped = property.len() != key.len();
    if scoped && !matches!(client::rule(property), None | Some(Rule::Skip(_))) {
        return Some(format!(
            "not translated: MirrorMaker 2 gives a cluster's clients only its connection and security settings from <alias>.<property>; write <alias>.producer.{property} (or consumer., admin.)"
        ));
    }
    Some(format!(
        "not translated: {}",
        property_reason(property).unwrap_or_else(|| "unknown property".into())
    ))
}

/// Why a known MirrorMaker 2 or Kafka Connect setting has no Ferry
/// equivalent.
fn property_reason(property: &str) -> Option<String> {
    const CONNECT: &str = "a Kafka Connect worker setting; Ferry runs no Connect worker";
    let reason = match property {
        "tasks.max" => "Ferry spreads a flow over cores and processes itself (flows[].slots)",
        "sync.topic.acls.enabled" | "sync.topic.acls.interval.seconds" => {
            "Ferry does not copy ACLs; grant them on the target"
        }
        "sync.topic.configs.interval.seconds" => "Ferry has no separate interval for topic config sync",
        "emit.offset-syncs.enabled" => "Ferry always writes offset syncs",
        "offset.lag.max" => {
            "Ferry writes offset syncs at least as often as MirrorMaker 2 would, and at every discontinuity"
        }
        "offset-syncs.topic.replication.factor"
        | "checkpoints.topic.replication.factor"
        | "heartbeats.topic.replication.factor"
        | "offset-syncs.topic.partitions" => "Ferry creates its internal topics itself",
        "topic.filter.class" | "group.filter.class" | "config.property.filter.class"
        | "forwarding.admin.class" | "replication.policy.class" => {
            "a Java class; Ferry cannot load it (only the built-in filters translate)"
        }
        "exactly.once.source.support" => {
            "the Connect worker's exactly-once; in Ferry set flows[].delivery = \"exactly-once\""
        }
        "bootstrap.servers" => "each cluster's addresses come from <alias>.bootstrap.servers",
        "source.cluster.alias" | "target.cluster.alias" | "connector.class" | "name" => {
            "a connector setting: this command reads MirrorMaker 2's dedicated-mode file (clusters, <alias>.*, A->B.*)"
        }
        "replication.policy.internal.topic.separator.enabled" => {
            "Ferry always names its checkpoints and offset-syncs topics with topic_separator, as MM2 does when this is true (its default)"
        }
        "add.source.alias.to.metrics" | "admin.timeout.ms" | "consumer.poll.timeout.ms" => {
            "no equivalent in Ferry"
        }
        "heartbeats.topic.retention.ms" | "checkpoints.topic.retention.ms" => {
            "Ferry creates its internal topics itself"
        }
        "dedicated.mode.enable.internal.rest" | "listeners" | "plugin.path" | "group.id"
        | "key.converter" | "value.converter" | "header.converter"
        | "offset.flush.interval.ms" | "offset.flush.timeout.ms"
        | "connector.client.config.override.policy" | "scheduled.rebalance.max.delay.ms"
        | "task.shutdown.graceful.timeout.ms" => CONNECT,
        p if p.starts_with("offset.storage.")
            || p.starts_with("config.storage.")
            || p.starts_with("status.storage.")
            || p.starts_with("rest.")
            || p.starts_with("key.converter.")
            || p.starts_with("value.converter.") =>
        {
            CONNECT
        }
        p if p.starts_with("config.providers") => {
            "Kafka config providers; Ferry reads secrets with ${env:NAME} or ${file:PATH}"
        }
        p if p.starts_with("metric.reporters") || p.starts_with("metrics.") => {
            "Ferry serves Prometheus metrics at [http] listen"
        }
        p => match client::rule(p) {
            Some(Rule::Skip(reason)) => reason,
            _ => return None,
        },
    };
    Some(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possessive_quantifiers_are_recognised() {
        for p in ["a*+", "a++", "a?+", "a{2}+", "x(ab)*+y"] {
            assert!(possessive(p), "{p}");
        }
        for p in ["a+", "a+?", "a*?", r"\*+", "[*+]", "(?:a)+", "a{2,3}"] {
            assert!(!possessive(p), "{p}");
        }
    }

    #[test]
    fn quoted_java_literals_are_escaped() {
        assert_eq!(java_regex(r"\Qa.b\E.*"), r"a\.b.*");
        assert_eq!(java_regex(r"x\Q(y"), r"x\(y");
        assert_eq!(java_regex("plain.*"), "plain.*");
    }
}
