//! `[[flows]]`: the clusters a flow joins, its topics and naming, timings
//! and record-error policy, and the cycles flows can form together.

use super::*;

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

/// `flows[].slots` when absent: more than the processes a flow is usually
/// spread over, so that three or four share the work within one slot.
const DEFAULT_SLOTS: u16 = 16;
/// `flows[].transaction_interval` when absent: short enough that a
/// `read_committed` reader sees records a tenth of a second after the
/// source, long enough that a commit costs little throughput.
const DEFAULT_TRANSACTION_INTERVAL: Duration = Duration::from_millis(100);
/// The transaction intervals a flow may use.
const TRANSACTION_INTERVALS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(60);
/// The most slots a flow may have: one partition each in the slots topic.
const MAX_SLOTS: i64 = 1024;

pub(super) fn check_flow(
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
    let topic_separator = check_separator(checker, path, raw.topic_separator);
    let rename = check_renames(checker, path, raw.rename.unwrap_or_default());
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
    let slots = match raw.slots {
        None => DEFAULT_SLOTS,
        Some(n) if (1..=MAX_SLOTS).contains(&n) => n as u16,
        Some(n) => {
            checker.issue(
                format!("{path}.slots"),
                format!("invalid slots {n}: use 1..={MAX_SLOTS}"),
            );
            DEFAULT_SLOTS
        }
    };
    let (delivery, transaction_interval) = check_delivery(
        checker,
        path,
        raw.delivery.as_deref(),
        raw.transaction_interval.as_deref(),
    );
    if delivery == Delivery::ExactlyOnce {
        // Offset syncs share the transaction of the records they describe,
        // and one transaction writes to one cluster only.
        if offset_syncs_location == SyncsLocation::Source {
            checker.issue(
                format!("{path}.offset_syncs_location"),
                "\"source\" cannot be used with delivery = \"exactly-once\": the offset syncs are written in the same transaction as the records, on the target",
            );
        }
    }
    let mm2_offsets = check_mm2_offsets(checker, path, raw.mm2_offsets, &source, &target, clusters);
    let on_record_error = check_on_record_error(
        checker,
        path,
        raw.on_record_error.as_deref(),
        raw.dead_letter_topic,
    );
    if delivery == Delivery::ExactlyOnce && on_record_error != OnRecordError::Stall {
        // A refused record aborts the slot's whole transaction; leaving it
        // out would need the transaction redone without it.
        checker.issue(
            format!("{path}.on_record_error"),
            format!(
                "\"{}\" cannot be used with delivery = \"exactly-once\" yet: use \"stall\"",
                on_record_error.as_str()
            ),
        );
    }
    let acls = super::acls::check_acl_sync(
        checker,
        path,
        (
            raw.sync_acls,
            raw.acls_exclude_principals,
            raw.acl_sync_deletes,
        ),
    );
    let deletes = check_deletes(
        checker,
        path,
        raw.propagate_deletes,
        raw.delete_grace.as_deref(),
    );
    let make_filter = |inc: Vec<String>, exc: Vec<String>| NameFilter::new(inc, exc).ok();
    let topics = make_filter(topics, topics_exclude);
    let groups = make_filter(groups, groups_exclude);

    if checker.issues.len() != before {
        return None;
    }
    let flow = Flow {
        source,
        target,
        enabled: raw.enabled.unwrap_or(true),
        topics: topics?,
        groups: groups?,
        topic_naming,
        topic_separator,
        rename,
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
        slots,
        delivery,
        transaction_interval,
        acls,
        deletes,
        // Set by the caller, which knows the registries.
        schemas: None,
    };
    check_renames_merge_nothing(checker, path, &flow);
    Some(flow)
}

/// `flows[].propagate_deletes` and `delete_grace`. A grace without
/// propagation means nothing, so it is an error rather than a silent no-op,
/// as for the ACL sync keys.
fn check_deletes(
    checker: &mut Checker<'_>,
    path: &str,
    enabled: Option<bool>,
    grace: Option<&str>,
) -> DeletePropagation {
    let enabled = enabled.unwrap_or(false);
    let set = grace.is_some();
    let grace = checker.duration(
        format!("{path}.delete_grace"),
        grace,
        DeletePropagation::DEFAULT_GRACE,
    );
    if !enabled && set {
        checker.issue(
            format!("{path}.delete_grace"),
            "only used with propagate_deletes = true",
        );
    }
    DeletePropagation { enabled, grace }
}

/// `flows[].topic_separator`: it becomes part of topic names, so it takes
/// the characters topic names do. It applies under identity naming too:
/// there it names the MirrorMaker 2 internal topics, as in MM2's
/// IdentityReplicationPolicy.
fn check_separator(checker: &mut Checker<'_>, path: &str, raw: Option<String>) -> String {
    let Some(separator) = raw else {
        return DEFAULT_TOPIC_SEPARATOR.to_string();
    };
    let why = if separator.is_empty() {
        Some("must not be empty")
    } else if !separator.chars().all(is_topic_char) {
        Some("use only ASCII letters, digits, '.', '_' and '-' (it becomes part of topic names)")
    } else {
        None
    };
    if let Some(why) = why {
        checker.issue(
            format!("{path}.topic_separator"),
            format!("invalid topic_separator \"{separator}\": {why}"),
        );
        return DEFAULT_TOPIC_SEPARATOR.to_string();
    }
    separator
}

/// `flows[].rename`: every `from` compiles, every `to` names only groups
/// its `from` has, and a `to` without references is a valid topic name.
fn check_renames(checker: &mut Checker<'_>, path: &str, raw: Vec<RawRename>) -> Vec<RenameRule> {
    let mut rules = Vec::new();
    for (i, rule) in raw.into_iter().enumerate() {
        let path = format!("{path}.rename[{i}]");
        let (Some(from), Some(to)) = (rule.from, rule.to) else {
            checker.issue(
                path,
                "needs both from (a regex) and to (the new name, $1 for its groups)",
            );
            continue;
        };
        let regex = match anchored(&from) {
            Ok(r) => r,
            Err(e) => {
                checker.issue(
                    format!("{path}.from"),
                    format!("invalid regex \"{from}\": {}", regex_reason(&e)),
                );
                continue;
            }
        };
        let unknown: Vec<&str> = group_references(&to)
            .into_iter()
            .filter(|name| match name.parse::<usize>() {
                // The anchoring group added around `from` is not numbered.
                Ok(n) => n >= regex.captures_len(),
                Err(_) => !regex.capture_names().flatten().any(|g| g == *name),
            })
            .collect();
        if !unknown.is_empty() {
            let groups = regex.captures_len() - 1;
            // `$1x` reads as the group named `1x`.
            let hint = if unknown
                .iter()
                .any(|n| n.starts_with(|c: char| c.is_ascii_digit()) && n.parse::<usize>().is_err())
            {
                "; write ${1}x, not $1x, when letters or digits follow"
            } else {
                ""
            };
            checker.issue(
                format!("{path}.to"),
                format!(
                    "\"{to}\" refers to group {} that \"{from}\" does not have (it has {groups} numbered group{}{hint})",
                    unknown.iter().map(|n| format!("${n}")).collect::<Vec<_>>().join(", "),
                    if groups == 1 { "" } else { "s" },
                ),
            );
            continue;
        }
        if !to.contains('$') {
            if let Err(why) = check_topic_name(&to) {
                checker.issue(
                    format!("{path}.to"),
                    format!("invalid topic name \"{to}\": {why}"),
                );
                continue;
            }
        }
        rules.extend(RenameRule::new(from, to).ok());
    }
    rules
}

/// The topic names a flow names literally (in `topics` or a rule's `from`)
/// and replicates: the ones known to exist as far as the file can tell.
fn literal_topics(flow: &Flow) -> BTreeSet<String> {
    flow.topics
        .include_patterns()
        .iter()
        .map(String::as_str)
        .chain(flow.rename.iter().map(RenameRule::from))
        .filter_map(literal_name)
        .filter(|t| flow.topics.matches(t) && !flow.came_from_target(t))
        .collect()
}

/// The topic name a pattern names literally: escaped dots and dashes, or
/// the name as written (as `NameFilter::names_explicitly` reads it).
fn literal_name(pattern: &str) -> Option<String> {
    let mut name = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('.' | '-')) => name.push(e),
                _ => return None,
            },
            c if is_topic_char(c) => name.push(c),
            _ => return None,
        }
    }
    check_topic_name(&name).is_ok().then_some(name)
}

/// Rename rules must not write two topics the flow names literally into
/// one target topic; regexes are checked against the actual topics by
/// `ferry plan` and at run time.
fn check_renames_merge_nothing(checker: &mut Checker<'_>, path: &str, flow: &Flow) {
    let mapped = literal_topics(flow).into_iter().map(|t| {
        let remote = flow.remote_topic(&t);
        (t, remote)
    });
    for c in collisions(mapped) {
        let rule = flow
            .rename
            .iter()
            .position(|r| r.apply(&c.second).is_some() || r.apply(&c.first).is_some())
            .unwrap_or(0);
        checker.issue(
            format!("{path}.rename[{rule}]"),
            format!(
                "source topics \"{}\" and \"{}\" would both be written to \"{}\" on {}: a rename must not merge topics",
                c.first, c.second, c.target_topic, flow.target
            ),
        );
    }
}

/// Two flows into one cluster must not write one target topic from two
/// sources, as far as the topics they name literally tell.
pub(super) fn check_shared_targets(checker: &mut Checker<'_>, flows: &[(usize, Flow)]) {
    let targets: BTreeSet<&str> = flows.iter().map(|(_, f)| f.target.as_str()).collect();
    for target in targets {
        let into: Vec<&(usize, Flow)> = flows
            .iter()
            .filter(|(_, f)| f.enabled && f.target == target)
            .collect();
        if into.len() < 2 {
            continue;
        }
        let mapped = into.iter().flat_map(|(i, f)| {
            literal_topics(f).into_iter().map(move |t| {
                let remote = f.remote_topic(&t);
                ((*i, t), remote)
            })
        });
        // Collisions inside one flow are its rename rules' (see above).
        for c in collisions(mapped)
            .into_iter()
            .filter(|c| c.first.0 != c.second.0)
        {
            let ((i, first), (j, second)) = (c.first, c.second);
            let id = |n: usize| flows.iter().find(|(k, _)| *k == n).map(|(_, f)| f.id());
            checker.issue(
                format!("flows[{j}]"),
                format!(
                    "topic \"{second}\" of flow {} and topic \"{first}\" of flows[{i}] ({}) would both be written to \"{}\" on {target}: two sources must not share a target topic",
                    id(j).map(|f| f.to_string()).unwrap_or_default(),
                    id(i).map(|f| f.to_string()).unwrap_or_default(),
                    c.target_topic
                ),
            );
        }
    }
}

/// `flows[].delivery` and `flows[].transaction_interval`.
fn check_delivery(
    checker: &mut Checker<'_>,
    path: &str,
    delivery: Option<&str>,
    interval: Option<&str>,
) -> (Delivery, Duration) {
    let delivery = match delivery {
        None | Some("at-least-once") => Delivery::AtLeastOnce,
        Some("exactly-once") => Delivery::ExactlyOnce,
        Some(other) => {
            checker.issue(
                format!("{path}.delivery"),
                format!("invalid delivery \"{other}\": use \"at-least-once\" or \"exactly-once\""),
            );
            Delivery::AtLeastOnce
        }
    };
    let key = format!("{path}.transaction_interval");
    let interval = checker.duration(key.clone(), interval, DEFAULT_TRANSACTION_INTERVAL);
    if !TRANSACTION_INTERVALS.contains(&interval) {
        checker.issue(
            key,
            format!(
                "invalid transaction_interval {}: use 10ms..=60s",
                humantime::format_duration(interval)
            ),
        );
    }
    (delivery, interval)
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

/// A character Kafka allows in a topic name.
fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Kafka's rules for a topic name.
fn check_topic_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        return Err("empty, \".\" or \"..\"");
    }
    if name.len() > 249 {
        return Err("longer than 249 characters");
    }
    if !name.chars().all(is_topic_char) {
        return Err("use only ASCII letters, digits, '.', '_' and '-'");
    }
    Ok(())
}

/// Identity naming without cycle protection loops forever around any cycle
/// of flows: the same topic name comes back to where it started.
pub(super) fn check_cycles(checker: &mut Checker<'_>, flows: &[(usize, Flow)]) {
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
