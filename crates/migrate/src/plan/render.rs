//! The human-readable plan: one section per phase, each a function of the
//! flow's plan.

use std::collections::BTreeMap;

use super::{
    ConfigDiff, FlowPlan, GroupPartition, OffsetAction, PartitionBacklog, Plan, Precision,
    StartReason, TargetGroupState, TopicAction, TopicPlan,
};
use crate::units::{format_bytes, format_duration, format_rate};
use crate::verify::table;

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
    out.push_str(&header(f));
    out.push_str(&topics_to_create(f));
    out.push_str(&existing_topics(f));
    out.push_str(&skipped(f));
    out.push_str(&backlog(f, throughput));
    out.push_str(&groups(f));
    if let Some(acls) = &f.acls {
        out.push_str(&super::acls::render(acls));
    }
    if let Some(deletions) = &f.deletions {
        out.push_str(&super::deletes::render(&f.target, deletions));
    }
    if let Some(schemas) = &f.schemas {
        out.push_str(&super::schemas::render(schemas));
    }
    out.push_str(&warnings(f));
}

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

/// A section title followed by `none` or the count, as every list is
/// introduced.
fn title(out: &mut String, title: &str, count: usize, none: &str) {
    out.push_str(title);
    if count == 0 {
        out.push_str(none);
        out.push('\n');
    } else {
        out.push_str(&format!("{count}\n"));
    }
}

fn header(f: &FlowPlan) -> String {
    let start = if f.start_from == "unconsumed" {
        format!("unconsumed (fallback {})", f.unconsumed_fallback)
    } else {
        f.start_from.clone()
    };
    format!(
        "flow {}: {} naming, start_from = {start}, sync_topic_configs = {}, sync_group_offsets = {}, delivery = {}\n",
        f.flow, f.topic_naming, f.sync_topic_configs, f.sync_group_offsets, f.delivery
    )
}

fn topics_to_create(f: &FlowPlan) -> String {
    let replication = f
        .replication_factor
        .map_or("broker default".to_string(), |r| r.to_string());
    let create: Vec<&TopicPlan> = f.to_create().collect();
    let mut out = String::new();
    title(
        &mut out,
        &format!("\ntopics to create on {}: ", f.target),
        create.len(),
        "none",
    );
    for t in &create {
        out.push_str(&format!(
            "  {} <- {}: {}, replication factor {replication}\n    configs: {}\n",
            t.target_topic,
            t.source_topic,
            plural(t.partitions as usize, "partition", "partitions"),
            configs_line(&t.configs)
        ));
    }
    out
}

fn existing_topics(f: &FlowPlan) -> String {
    let existing: Vec<&TopicPlan> = f
        .topics
        .iter()
        .filter(|t| t.action != TopicAction::Create)
        .collect();
    let mut out = String::new();
    title(
        &mut out,
        &format!("\nexisting topics on {}: ", f.target),
        existing.len(),
        "none",
    );
    let label = if f.sync_topic_configs {
        "configs that would change"
    } else {
        "configs that differ (not synced)"
    };
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
    out
}

fn skipped(f: &FlowPlan) -> String {
    let mut out = String::new();
    title(
        &mut out,
        "\nskipped source topics: ",
        f.skipped.len(),
        "none",
    );
    if !f.skipped.is_empty() {
        let rows: Vec<[String; 2]> = f
            .skipped
            .iter()
            .map(|s| [s.topic.clone(), s.detail.clone()])
            .collect();
        out.push_str(&table(&rows));
    }
    out
}

/// Why a partition starts where it does, for a person.
fn starts_at(b: &PartitionBacklog) -> String {
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
    if b.held {
        format!("HELD: {from} past the source log end (see warnings)")
    } else {
        from
    }
}

fn backlog(f: &FlowPlan, throughput: f64) -> String {
    let mut out = format!(
        "\nbacklog: {} records, about {}; catch-up at {}: {}\n",
        f.backlog.records,
        format_bytes(f.backlog.bytes),
        format_rate(throughput),
        format_duration(f.catch_up_seconds)
    );
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
            rows.push([
                t.source_topic.clone(),
                b.partition.to_string(),
                b.log_start.to_string(),
                b.start.to_string(),
                b.end.to_string(),
                b.records.to_string(),
                format_bytes(b.bytes),
                starts_at(b),
            ]);
        }
    }
    if rows.len() > 1 {
        out.push_str(&table(&rows));
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
    out
}

/// The `TRANSLATED` and `--apply` cells of a group partition.
fn translation_and_apply(p: &GroupPartition) -> (String, String) {
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
    (translated, apply)
}

fn groups(f: &FlowPlan) -> String {
    let mut out = String::new();
    title(
        &mut out,
        "\nconsumer groups: ",
        f.groups.len(),
        "none with committed offsets on replicated topics",
    );
    if f.groups.is_empty() {
        return out;
    }
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
        let state = match g.target_state {
            TargetGroupState::Absent => "absent",
            TargetGroupState::Empty => "empty",
            TargetGroupState::Active => "active",
        };
        for p in &g.partitions {
            let (translated, apply) = translation_and_apply(p);
            rows.push([
                g.group.clone(),
                state.to_string(),
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
    out.push_str(&table(&rows));
    out
}

fn warnings(f: &FlowPlan) -> String {
    let mut out = String::new();
    title(&mut out, "\nwarnings: ", f.warnings.len(), "none");
    for w in &f.warnings {
        out.push_str(&format!("  - {}\n", w.message));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{empty_flow_plan, topic_plan};
    use super::super::{GroupPlan, OffsetDecision, SkipReason, SkippedTopic, Warning, WarningKind};
    use super::*;

    #[test]
    fn config_differences_read_as_from_to() {
        let changes = [
            ConfigDiff {
                key: "max.compaction.lag.ms".into(),
                target: Some("9".into()),
                source: Some("60000".into()),
            },
            ConfigDiff {
                key: "retention.ms".into(),
                target: None,
                source: Some("1000".into()),
            },
        ];
        assert_eq!(
            diff_line(&changes),
            "max.compaction.lag.ms 9 -> 60000; retention.ms (unset) -> 1000"
        );
    }

    #[test]
    fn an_empty_flow_says_none_in_every_section() {
        let mut f = empty_flow_plan();
        assert_eq!(
            header(&f),
            "flow a->b: prefix naming, start_from = unconsumed (fallback earliest), sync_topic_configs = true, sync_group_offsets = true, delivery = at-least-once\n"
        );
        f.delivery = "exactly-once";
        assert!(
            header(&f).ends_with(", delivery = exactly-once\n"),
            "{}",
            header(&f)
        );
        assert_eq!(topics_to_create(&f), "\ntopics to create on b: none\n");
        assert_eq!(existing_topics(&f), "\nexisting topics on b: none\n");
        assert_eq!(skipped(&f), "\nskipped source topics: none\n");
        assert_eq!(
            groups(&f),
            "\nconsumer groups: none with committed offsets on replicated topics\n"
        );
        assert_eq!(warnings(&f), "\nwarnings: none\n");
        assert_eq!(
            backlog(&f, 50e6),
            "\nbacklog: 0 records, about 0 B; catch-up at 50 MB/s: under 1s\n"
        );
    }

    #[test]
    fn topics_are_listed_by_what_happens_to_them() {
        let mut f = empty_flow_plan();
        let mut create = topic_plan("orders", &[]);
        create.partitions = 1;
        create.configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let mut grow = topic_plan("payments", &[]);
        grow.action = TopicAction::AddPartitions;
        grow.partitions = 3;
        grow.target_partitions = Some(1);
        grow.target_only_configs =
            BTreeMap::from([("min.insync.replicas".to_string(), "2".to_string())]);
        f.topics = vec![create, grow];
        assert_eq!(
            topics_to_create(&f),
            "\ntopics to create on b: 1\n  a.orders <- orders: 1 partition, replication factor broker default\n    configs: retention.ms=1000\n"
        );
        assert_eq!(
            existing_topics(&f),
            "\nexisting topics on b: 1\n  a.payments <- payments: 3 on a, 1 on b: would add 2 partitions\n    configs: in sync\n    kept (set on b only): min.insync.replicas=2\n"
        );
        f.skipped = vec![SkippedTopic {
            topic: "b.x".into(),
            reason: SkipReason::RePrefix,
            detail: "came from b".into(),
        }];
        let text = skipped(&f);
        assert!(text.starts_with("\nskipped source topics: 1\n"), "{text}");
        assert!(
            text.contains("b.x") && text.contains("came from b"),
            "{text}"
        );
    }

    #[test]
    fn a_held_partition_and_a_handover_are_spelled_out() {
        let mut f = empty_flow_plan();
        let mut t = topic_plan("orders", &[(0, 3, 10), (1, 50, 10)]);
        t.partition_backlog[0].from = StartReason::Mm2Handover;
        t.partition_backlog[1].from = StartReason::Progress;
        t.partition_backlog[1].held = true;
        f.topics = vec![t];
        let text = backlog(&f, 50e6);
        assert!(text.contains("where MirrorMaker 2 stopped"), "{text}");
        assert!(
            text.contains("HELD: saved progress past the source log end (see warnings)"),
            "{text}"
        );
        assert!(
            text.ends_with("taking over from MirrorMaker 2: 1 partition start where it stopped, per mm2-offsets on a (connector mm2)\n"),
            "{text}"
        );
    }

    #[test]
    fn group_partitions_say_their_translation_and_what_apply_does() {
        let mut f = empty_flow_plan();
        let partition = |translated, precision, action, offset| GroupPartition {
            topic: "orders".into(),
            partition: 0,
            target_topic: "a.orders".into(),
            source_offset: 10,
            translated,
            precision,
            target_offset: None,
            apply: OffsetDecision {
                action,
                offset,
                reason: "why".into(),
            },
        };
        let cells = |p: &GroupPartition| translation_and_apply(p);
        assert_eq!(
            cells(&partition(
                Some(4),
                Precision::Exact,
                OffsetAction::Write,
                Some(4)
            )),
            ("4 (exact)".to_string(), "set 4: why".to_string())
        );
        assert_eq!(
            cells(&partition(
                Some(4),
                Precision::Conservative,
                OffsetAction::Unchanged,
                Some(4)
            )),
            ("4 (conservative)".to_string(), "unchanged".to_string())
        );
        assert_eq!(
            cells(&partition(
                None,
                Precision::Unknown,
                OffsetAction::Skip,
                None
            )),
            (
                "unknown until replicated".to_string(),
                "skip: why".to_string()
            )
        );
        f.groups = vec![GroupPlan {
            group: "g".into(),
            target_state: TargetGroupState::Active,
            partitions: vec![partition(
                None,
                Precision::Unknown,
                OffsetAction::Skip,
                None,
            )],
        }];
        let text = groups(&f);
        assert!(text.starts_with("\nconsumer groups: 1\n"), "{text}");
        assert!(text.contains("active"), "{text}");
        f.warnings = vec![Warning {
            kind: WarningKind::GroupActive,
            message: "group g is active".into(),
        }];
        assert_eq!(warnings(&f), "\nwarnings: 1\n  - group g is active\n");
    }
}
