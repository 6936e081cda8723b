//! Which translated offsets to commit into a consumer group on the target.
//!
//! Rules (MirrorMaker 2's, made explicit):
//! - Only a group with no live members on the target is written: absent,
//!   `Empty` or `Dead`. A group with members is consuming there; moving its
//!   offsets under it would make it skip or re-read, so every partition is
//!   skipped ([`SkipReason::GroupActive`]).
//! - A target group never moves backwards: a partition whose target offset
//!   is already at or past the translated one is left alone
//!   ([`SkipReason::TargetAhead`] when strictly past, nothing at all when
//!   equal: there is nothing to do).
//! - Partitions without a target offset are written.

use std::collections::HashMap;
use std::fmt;

/// The state of the group on the target, as far as the decision cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetGroup {
    /// The group does not exist, or has no members (`Empty`, `Dead`).
    Idle,
    /// Members are joined or joining.
    Active,
}

/// Why a partition's translated offset was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The group has live members on the target.
    GroupActive,
    /// The target group is already past the translated offset.
    TargetAhead { current: i64 },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::GroupActive => write!(f, "the group has active members on the target"),
            SkipReason::TargetAhead { current } => {
                write!(f, "the target group is already at offset {current}")
            }
        }
    }
}

/// The outcome of [`plan`] for one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSyncPlan {
    /// `(remote topic, partition, offset)` to commit.
    pub write: Vec<(String, i32, i64)>,
    /// `(remote topic, partition, translated offset, reason)` not written.
    pub skip: Vec<(String, i32, i64, SkipReason)>,
}

/// Plans the commit for one group. `desired` holds the translated
/// (downstream) offsets per remote `(topic, partition)`, `current` the
/// target group's committed offsets.
pub fn plan<'a>(
    state: TargetGroup,
    desired: impl IntoIterator<Item = (&'a str, i32, i64)>,
    current: &HashMap<(String, i32), i64>,
) -> GroupSyncPlan {
    let mut out = GroupSyncPlan::default();
    for (topic, partition, offset) in desired {
        let now = current.get(&(topic.to_string(), partition)).copied();
        if now == Some(offset) {
            continue;
        }
        match (state, now) {
            (TargetGroup::Active, _) => out.skip.push((
                topic.to_string(),
                partition,
                offset,
                SkipReason::GroupActive,
            )),
            (TargetGroup::Idle, Some(current)) if current > offset => out.skip.push((
                topic.to_string(),
                partition,
                offset,
                SkipReason::TargetAhead { current },
            )),
            (TargetGroup::Idle, _) => out.write.push((topic.to_string(), partition, offset)),
        }
    }
    out.write.sort();
    out.skip.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(entries: &[(&str, i32, i64)]) -> HashMap<(String, i32), i64> {
        entries
            .iter()
            .map(|&(t, p, o)| ((t.to_string(), p), o))
            .collect()
    }

    #[test]
    fn idle_group_moves_forward_only() {
        let now = current(&[("t", 0, 10), ("t", 1, 50), ("t", 2, 7)]);
        let plan = plan(
            TargetGroup::Idle,
            [("t", 0, 20), ("t", 1, 40), ("t", 2, 7), ("t", 3, 5)],
            &now,
        );
        assert_eq!(plan.write, vec![("t".into(), 0, 20), ("t".into(), 3, 5)]);
        assert_eq!(
            plan.skip,
            vec![("t".into(), 1, 40, SkipReason::TargetAhead { current: 50 })]
        );
    }

    #[test]
    fn active_group_is_never_written() {
        let plan = plan(
            TargetGroup::Active,
            [("t", 0, 20), ("t", 1, 3)],
            &current(&[("t", 1, 3)]),
        );
        assert!(plan.write.is_empty());
        assert_eq!(
            plan.skip,
            vec![("t".into(), 0, 20, SkipReason::GroupActive)]
        );
        assert_eq!(
            SkipReason::GroupActive.to_string(),
            "the group has active members on the target"
        );
    }
}
