//! The group phase: each consumer group with offsets on the flow's topics,
//! its translated offsets on the target and what `--apply` would write.

use std::collections::{BTreeMap, HashMap};

use crate::offsets_report::OffsetRow;
use ferry_admin::{Admin, GroupState, Watermarks};
use ferry_checkpoint::group_sync::{self, TargetGroup};
use ferry_checkpoint::Translation;
use ferry_config::{Cluster, Flow};
use ferry_supervisor::EngineError;

use super::{
    GroupPartition, GroupPlan, OffsetAction, OffsetDecision, Precision, TargetGroupState,
    TopicPlan, Warning, WarningKind,
};

/// What the target holds for a partition a group has an offset on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPartition {
    /// The topic or partition does not exist yet: `--apply` creates it
    /// empty.
    WillBeCreated,
    /// Exists without records; the end is where the next record goes.
    Empty { end: i64 },
    /// Holds records.
    HasRecords,
}

/// Where `--apply` would put one group partition on the target, and why.
///
/// A translated offset (exact or conservative) is used as it is. Without
/// one — nothing of the partition has been replicated — the data is not
/// there to translate to: for a metadata-only migration the group starts at
/// the beginning of the new, empty target partition (offset 0 for a topic
/// `--apply` creates, the end of an existing empty one), which is where the
/// first record producers write after the switch lands, so consumers miss
/// nothing written to the target. If the target partition already holds
/// records Ferry did not copy, no offset is right: it is skipped. Then the
/// group-sync rule: never a group active on the target, never backwards.
pub fn decide(
    state: TargetGroupState,
    translated: Translation,
    target: TargetPartition,
    current: Option<i64>,
    remote: &str,
    partition: i32,
) -> OffsetDecision {
    let (offset, why) = match (translated, target) {
        (Translation::Exact(d), _) => (d, "translated (exact)".to_string()),
        (Translation::Conservative(d), _) => (
            d,
            "translated (conservative: may re-read a few records)".to_string(),
        ),
        (Translation::Unknown, TargetPartition::WillBeCreated) => (
            0,
            "no data copied: the start of the new, empty target topic".to_string(),
        ),
        (Translation::Unknown, TargetPartition::Empty { end }) => (
            end,
            "no data copied: the end of the empty target partition, where the first new record lands"
                .to_string(),
        ),
        (Translation::Unknown, TargetPartition::HasRecords) => {
            return OffsetDecision {
                action: OffsetAction::Skip,
                offset: None,
                reason: "unknown until replicated: the target partition holds records Ferry did not copy".into(),
            }
        }
    };
    let group = match state {
        TargetGroupState::Active => TargetGroup::Active,
        _ => TargetGroup::Idle,
    };
    let current_map: HashMap<(String, i32), i64> = current
        .map(|c| ((remote.to_string(), partition), c))
        .into_iter()
        .collect();
    let p = group_sync::plan(group, [(remote, partition, offset)], &current_map);
    if let Some((_, _, _, reason)) = p.skip.first() {
        return OffsetDecision {
            action: OffsetAction::Skip,
            offset: Some(offset),
            reason: reason.to_string(),
        };
    }
    if p.write.is_empty() {
        return OffsetDecision {
            action: OffsetAction::Unchanged,
            offset: Some(offset),
            reason: "the target group is already there".into(),
        };
    }
    OffsetDecision {
        action: OffsetAction::Write,
        offset: Some(offset),
        reason: why,
    }
}

/// A consumer group as the target sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupOnTarget {
    pub state: TargetGroupState,
    pub members: usize,
}

/// The state of groups on the target.
pub(crate) async fn target_states(
    admin: &Admin,
    cluster: &Cluster,
    groups: &[&str],
) -> Result<HashMap<String, GroupOnTarget>, EngineError> {
    let described = admin
        .describe_consumer_groups(groups)
        .await
        .map_err(crate::client_err(
            cluster,
            "cannot describe consumer groups",
        ))?;
    Ok(described
        .into_iter()
        .map(|d| {
            let state = if d.error.is_some() || d.state == GroupState::Dead {
                TargetGroupState::Absent
            } else if d.state.has_no_members() {
                TargetGroupState::Empty
            } else {
                TargetGroupState::Active
            };
            (
                d.group_id,
                GroupOnTarget {
                    state,
                    members: d.member_count,
                },
            )
        })
        .collect())
}

/// The groups of a flow, and the warnings about groups active on the
/// target.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// In group name order, each group's partitions in topic and
    /// partition order.
    pub groups: Vec<GroupPlan>,
    pub warnings: Vec<Warning>,
}

/// The group phase's reads: the groups' states on the target, then
/// [`group_plans`].
pub async fn plan_groups(
    flow: &Flow,
    target_admin: &Admin,
    target: &Cluster,
    rows: &[OffsetRow],
    topic_plans: &[TopicPlan],
    target_marks: &HashMap<(String, i32), Watermarks>,
) -> Result<Groups, EngineError> {
    let mut names: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(Groups::default());
    }
    let states = target_states(target_admin, target, &names).await?;
    Ok(group_plans(flow, rows, &states, topic_plans, target_marks))
}

/// Each group's partitions with their translation and what `--apply` would
/// write, given the groups' `states` on the target, the planned topics and
/// the target's watermarks.
pub fn group_plans(
    flow: &Flow,
    rows: &[OffsetRow],
    states: &HashMap<String, GroupOnTarget>,
    topic_plans: &[TopicPlan],
    target_marks: &HashMap<(String, i32), Watermarks>,
) -> Groups {
    let mut by_group: BTreeMap<&str, Vec<&OffsetRow>> = BTreeMap::new();
    for r in rows {
        by_group.entry(r.group.as_str()).or_default().push(r);
    }
    let existing: HashMap<&str, Option<i32>> = topic_plans
        .iter()
        .map(|t| (t.target_topic.as_str(), t.target_partitions))
        .collect();
    let mut out = Groups::default();
    for (group, mut group_rows) in by_group {
        group_rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let GroupOnTarget { state, members } =
            states.get(group).copied().unwrap_or(GroupOnTarget {
                state: TargetGroupState::Absent,
                members: 0,
            });
        if state == TargetGroupState::Active && flow.sync_group_offsets {
            out.warnings.push(Warning {
                kind: WarningKind::GroupActive,
                message: format!(
                    "group {group} is active on {} ({members} member{}): its offsets are not written there while it is",
                    flow.target,
                    if members == 1 { "" } else { "s" }
                ),
            });
        }
        let partitions = group_rows
            .into_iter()
            .map(|r| {
                let target_partition = match existing.get(r.remote_topic.as_str()) {
                    Some(Some(n)) if r.partition < *n => {
                        match target_marks.get(&(r.remote_topic.clone(), r.partition)) {
                            Some(w) if w.low == w.high => TargetPartition::Empty { end: w.high },
                            _ => TargetPartition::HasRecords,
                        }
                    }
                    _ => TargetPartition::WillBeCreated,
                };
                GroupPartition {
                    topic: r.topic.clone(),
                    partition: r.partition,
                    target_topic: r.remote_topic.clone(),
                    source_offset: r.source_offset,
                    translated: r.translated.offset(),
                    precision: match r.translated {
                        Translation::Exact(_) => Precision::Exact,
                        Translation::Conservative(_) => Precision::Conservative,
                        Translation::Unknown => Precision::Unknown,
                    },
                    target_offset: r.target_offset,
                    apply: decide(
                        state,
                        r.translated,
                        target_partition,
                        r.target_offset,
                        &r.remote_topic,
                        r.partition,
                    ),
                }
            })
            .collect();
        out.groups.push(GroupPlan {
            group: group.to_string(),
            target_state: state,
            partitions,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{flow, topic_plan};
    use super::*;

    #[test]
    fn metadata_only_offsets_start_at_the_new_topic_and_never_go_back() {
        use TargetGroupState::*;
        let d = |state, t, target, current| decide(state, t, target, current, "src.t", 0);
        let new = d(
            Absent,
            Translation::Unknown,
            TargetPartition::WillBeCreated,
            None,
        );
        assert_eq!((new.action, new.offset), (OffsetAction::Write, Some(0)));
        assert!(new.reason.contains("new, empty"), "{}", new.reason);
        let empty = d(
            Empty,
            Translation::Unknown,
            TargetPartition::Empty { end: 7 },
            None,
        );
        assert_eq!(empty.offset, Some(7));
        let foreign = d(
            Absent,
            Translation::Unknown,
            TargetPartition::HasRecords,
            None,
        );
        assert_eq!((foreign.action, foreign.offset), (OffsetAction::Skip, None));
        let exact = d(
            Empty,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            Some(10),
        );
        assert_eq!(
            (exact.action, exact.offset),
            (OffsetAction::Write, Some(40))
        );
        let behind = d(
            Empty,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            Some(50),
        );
        assert_eq!(behind.action, OffsetAction::Skip);
        assert!(behind.reason.contains("already at offset 50"));
        let same = d(
            Empty,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            Some(40),
        );
        assert_eq!(same.action, OffsetAction::Unchanged);
        let active = d(
            Active,
            Translation::Exact(40),
            TargetPartition::HasRecords,
            None,
        );
        assert_eq!(active.action, OffsetAction::Skip);
    }

    fn row(group: &str, partition: i32, translated: Translation) -> OffsetRow {
        OffsetRow {
            group: group.into(),
            topic: "orders".into(),
            partition,
            remote_topic: "a.orders".into(),
            source_offset: 10,
            translated,
            checkpoint: None,
            target_offset: None,
        }
    }

    #[test]
    fn groups_are_sorted_and_read_the_target_partition_they_land_in() {
        let f = flow("");
        let rows = [
            row("b", 1, Translation::Unknown),
            row("b", 0, Translation::Unknown),
            row("a", 2, Translation::Conservative(3)),
        ];
        let mut orders = topic_plan("orders", &[]);
        orders.target_partitions = Some(2);
        let marks = HashMap::from([
            (("a.orders".to_string(), 0), Watermarks { low: 4, high: 4 }),
            (("a.orders".to_string(), 1), Watermarks { low: 0, high: 9 }),
        ]);
        let states = HashMap::from([(
            "b".to_string(),
            GroupOnTarget {
                state: TargetGroupState::Empty,
                members: 0,
            },
        )]);
        let g = group_plans(&f, &rows, &states, &[orders], &marks);
        assert!(g.warnings.is_empty());
        let names: Vec<&str> = g.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &g.groups[0];
        assert_eq!(a.target_state, TargetGroupState::Absent, "not described");
        assert_eq!(a.partitions[0].precision, Precision::Conservative);
        assert_eq!(
            a.partitions[0].apply.offset,
            Some(3),
            "partition 2 does not exist yet, the translation is used"
        );
        let b: Vec<(i32, OffsetAction, Option<i64>)> = g.groups[1]
            .partitions
            .iter()
            .map(|p| (p.partition, p.apply.action, p.apply.offset))
            .collect();
        assert_eq!(
            b,
            vec![
                (0, OffsetAction::Write, Some(4)),
                (1, OffsetAction::Skip, None)
            ],
            "an empty partition starts at its end; one with records is skipped"
        );
    }

    #[test]
    fn an_active_group_is_warned_about_when_offsets_are_synced() {
        let rows = [row("g", 0, Translation::Exact(5))];
        let states = HashMap::from([(
            "g".to_string(),
            GroupOnTarget {
                state: TargetGroupState::Active,
                members: 1,
            },
        )]);
        let synced = group_plans(&flow(""), &rows, &states, &[], &HashMap::new());
        assert_eq!(synced.warnings.len(), 1);
        assert!(
            synced.warnings[0].message.contains("(1 member)"),
            "{}",
            synced.warnings[0].message
        );
        assert_eq!(
            synced.groups[0].partitions[0].apply.action,
            OffsetAction::Skip
        );
        let unsynced = group_plans(
            &flow("sync_group_offsets = false"),
            &rows,
            &states,
            &[],
            &HashMap::new(),
        );
        assert!(unsynced.warnings.is_empty());
    }
}
