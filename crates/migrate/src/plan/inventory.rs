//! The inventory phase: which source topics a flow replicates, which it
//! skips and why, and what each replicated topic would become on the target
//! (created, grown or kept; the configs copied or differing; the warnings
//! about the target topic).

use std::collections::{BTreeMap, HashMap};

use ferry_admin::{ConfigEntry, ConfigSource};
use ferry_config::Flow;
use ferry_supervisor::progress::ProgressMap;
use ferry_supervisor::start;
use ferry_supervisor::topics::{self, DEFAULT_CONFIG_EXCLUDES};
use regex::Regex;

use super::{
    Backlog, ConfigDiff, SkipReason, SkippedTopic, TopicAction, TopicPlan, Warning, WarningKind,
};

/// A source topic the flow replicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTopic {
    pub name: String,
    pub partitions: i32,
}

/// The source topics of a flow: those it replicates, in name order, and
/// those its `topics` patterns match but that it skips.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub selected: Vec<SourceTopic>,
    pub skipped: Vec<SkippedTopic>,
}

/// Sorts the source cluster's topics (name and partition count) into the
/// flow's selected and skipped ones, by the engine's own rules.
pub fn inventory(flow: &Flow, source_topics: &BTreeMap<String, usize>) -> Inventory {
    let include = include_patterns(flow);
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for (name, partitions) in source_topics {
        if topics::selects(flow, name) {
            selected.push(SourceTopic {
                name: name.clone(),
                partitions: *partitions as i32,
            });
        } else if let Some((reason, detail)) = skip_reason(flow, &include, name) {
            skipped.push(SkippedTopic {
                topic: name.clone(),
                reason,
                detail,
            });
        }
    }
    skipped.sort_by(|a, b| a.topic.cmp(&b.topic));
    Inventory { selected, skipped }
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
    if topics::is_internal(topic, &flow.topic_separator) && !flow.topics.names_explicitly(topic) {
        return Some((
            SkipReason::Internal,
            "an internal topic (name it literally in topics to copy it)".into(),
        ));
    }
    if flow.came_from_target(topic) {
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

pub(super) fn include_patterns(flow: &Flow) -> Vec<Regex> {
    flow.topics
        .include_patterns()
        .iter()
        .filter_map(|p| Regex::new(&format!("^(?:{p})$")).ok())
        .collect()
}

/// Where a flow wrote before: its saved progress and the MirrorMaker 2
/// handover positions, per source partition.
#[derive(Debug, Clone, Default)]
pub struct Remembered {
    pub saved: ProgressMap,
    pub handover: HashMap<(String, i32), i64>,
}

impl Remembered {
    /// True when the flow has a position for any partition of `topic`: it
    /// wrote the target topic.
    pub fn wrote(&self, topic: &SourceTopic) -> bool {
        (0..topic.partitions).any(|p| {
            let key = (topic.name.clone(), p);
            self.saved.contains_key(&key) || self.handover.contains_key(&key)
        })
    }
}

/// A target topic that already exists.
#[derive(Debug, Clone)]
pub struct ExistingTarget {
    pub partitions: i32,
    /// Its configs as the target describes them.
    pub configs: Vec<ConfigEntry>,
    /// Records it holds (high minus low watermark over its partitions).
    pub records: i64,
}

/// One topic's place on the target: its plan (the backlog still empty,
/// filled by the later phases) and the warnings about the target topic.
#[derive(Debug, Clone)]
pub struct TopicShape {
    pub plan: TopicPlan,
    pub warnings: Vec<Warning>,
}

/// What `topic` would become on the target, given its source configs and
/// the target topic if it exists.
pub fn shape(
    flow: &Flow,
    topic: &SourceTopic,
    source_configs: &[ConfigEntry],
    existing: Option<&ExistingTarget>,
    remembered: &Remembered,
) -> TopicShape {
    let name = &topic.name;
    let partitions = topic.partitions;
    let remote = flow.remote_topic(name);
    let wanted = topics::configs_to_copy(flow, source_configs);
    let configs = if flow.sync_topic_configs {
        wanted.clone()
    } else {
        BTreeMap::new()
    };
    let target_partitions = existing.map(|e| e.partitions);
    let action = match target_partitions {
        None => TopicAction::Create,
        Some(n) if n < partitions => TopicAction::AddPartitions,
        Some(_) => TopicAction::Exists,
    };
    let written_by_flow = remembered.wrote(topic);
    let mut warnings = Vec::new();
    if action == TopicAction::Create {
        for p in 0..partitions {
            if let Some(offset) = remembered.saved.get(&(name.clone(), p)) {
                warnings.push(Warning {
                    kind: WarningKind::TargetTopicRecreated,
                    message: start::target_lost(
                        &flow.id().to_string(),
                        &flow.target,
                        &remote,
                        name,
                        p,
                        *offset,
                    ),
                });
            }
        }
    }
    let mut config_changes = Vec::new();
    let mut target_only_configs = BTreeMap::new();
    if let Some(target) = existing {
        let n = target.partitions;
        (config_changes, target_only_configs) = config_diff(flow, &wanted, &target.configs);
        if !written_by_flow && target.records > 0 {
            warnings.push(Warning {
                kind: WarningKind::ForeignTargetTopic,
                message: format!(
                    "{remote} on {} holds {} records this flow did not write (no saved progress): Ferry would append after them",
                    flow.target, target.records
                ),
            });
        }
        if n > partitions {
            warnings.push(Warning {
                kind: WarningKind::Partitions,
                message: format!(
                    "{remote} has {n} partitions on {}, {name} has {partitions} on {}: records keep their partition, so partitions {}..{} receive nothing from this flow",
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
                    "{remote} differs from {name} in {} and sync_topic_configs = false leaves it so",
                    config_changes
                        .iter()
                        .map(|c| c.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    TopicShape {
        plan: TopicPlan {
            source_topic: name.clone(),
            target_topic: remote,
            partitions,
            target_partitions,
            action,
            written_by_flow,
            configs,
            config_changes,
            target_only_configs,
            retention_ms: retention_ms(source_configs),
            avg_record_bytes: None,
            backlog: Backlog::default(),
            partition_backlog: Vec::new(),
        },
        warnings,
    }
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

#[cfg(test)]
mod tests {
    use super::super::tests::{entry, flow};
    use super::*;

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
    fn the_inventory_selects_by_engine_rules_and_sorts_skips_by_name() {
        let f = flow("topics = [\".*\"]\ntopics_exclude = [\"z.*\"]");
        let listed = BTreeMap::from([
            ("orders".to_string(), 3),
            ("zeta".to_string(), 1),
            ("b.orders".to_string(), 2),
            ("__consumer_offsets".to_string(), 50),
            ("payments".to_string(), 1),
        ]);
        let inv = inventory(&f, &listed);
        assert_eq!(
            inv.selected,
            vec![
                SourceTopic {
                    name: "orders".into(),
                    partitions: 3
                },
                SourceTopic {
                    name: "payments".into(),
                    partitions: 1
                },
            ]
        );
        let skipped: Vec<(&str, SkipReason)> = inv
            .skipped
            .iter()
            .map(|s| (s.topic.as_str(), s.reason))
            .collect();
        assert_eq!(
            skipped,
            vec![
                ("__consumer_offsets", SkipReason::Internal),
                ("b.orders", SkipReason::RePrefix),
                ("zeta", SkipReason::Excluded),
            ]
        );
    }

    #[test]
    fn a_missing_target_topic_is_created_and_lost_progress_is_warned_about() {
        let f = flow("");
        let topic = SourceTopic {
            name: "orders".into(),
            partitions: 2,
        };
        let source = vec![entry("retention.ms", "1000", ConfigSource::DynamicTopic)];
        let fresh = shape(&f, &topic, &source, None, &Remembered::default());
        assert_eq!(fresh.plan.action, TopicAction::Create);
        assert_eq!(fresh.plan.target_topic, "a.orders");
        assert_eq!(fresh.plan.retention_ms, Some(1000));
        assert!(!fresh.plan.written_by_flow);
        assert!(fresh.warnings.is_empty());

        let remembered = Remembered {
            saved: ProgressMap::from([(("orders".to_string(), 1), 40)]),
            handover: HashMap::new(),
        };
        let lost = shape(&f, &topic, &source, None, &remembered);
        assert!(lost.plan.written_by_flow);
        let kinds: Vec<WarningKind> = lost.warnings.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, vec![WarningKind::TargetTopicRecreated]);
    }

    #[test]
    fn an_existing_target_topic_is_compared_and_warned_about() {
        let f = flow("sync_topic_configs = false");
        let topic = SourceTopic {
            name: "orders".into(),
            partitions: 2,
        };
        let source = vec![entry("retention.ms", "1000", ConfigSource::DynamicTopic)];
        let existing = ExistingTarget {
            partitions: 4,
            configs: vec![entry("retention.ms", "5000", ConfigSource::DynamicTopic)],
            records: 12,
        };
        let s = shape(&f, &topic, &source, Some(&existing), &Remembered::default());
        assert_eq!(s.plan.action, TopicAction::Exists);
        assert_eq!(s.plan.target_partitions, Some(4));
        assert!(s.plan.configs.is_empty(), "not syncing: nothing copied");
        assert_eq!(s.plan.config_changes.len(), 1);
        let kinds: Vec<WarningKind> = s.warnings.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            vec![
                WarningKind::ForeignTargetTopic,
                WarningKind::Partitions,
                WarningKind::ConfigConflict
            ]
        );
        assert!(
            s.warnings[1].message.contains("partitions 2..3"),
            "{}",
            s.warnings[1].message
        );

        let smaller = ExistingTarget {
            partitions: 1,
            configs: Vec::new(),
            records: 0,
        };
        let grown = shape(&f, &topic, &source, Some(&smaller), &Remembered::default());
        assert_eq!(grown.plan.action, TopicAction::AddPartitions);
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
}
