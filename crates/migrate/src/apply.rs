//! `ferry plan --apply`: the metadata-only migration. What a fresh
//! [`FlowPlan`] says, done on the target, without copying any data:
//!
//! 1. create the planned target topics with the configs the flow copies
//!    (`sync_topic_configs`), and grow those with fewer partitions;
//! 2. bring existing target topics' configs in line (`sync_topic_configs`);
//! 3. write consumer-group offsets (`sync_group_offsets`) where the plan
//!    says `write`: translated offsets where Ferry has replicated data, else
//!    the start of the new, empty target partition (see
//!    [`crate::plan::decide`]). Right before writing, each group's state and
//!    offsets on the target are read again: a group that became active is
//!    skipped, and no partition moves backwards.
//!
//! Every step uses the engine's own calls (`topics::ensure_target_topic`,
//! `topics::sync_topic_configs`, the group-sync rule), so the result is what
//! `ferry run` would have set up. A failed step is reported and the others
//! go on; running `--apply` again finishes what is left (every step is
//! idempotent).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferry_admin::backoff::Backoff;
use ferry_admin::{Admin, AdminError, ConfigOp};
use ferry_checkpoint::group_sync::{self, TargetGroup};
use ferry_config::{Flow, Topology};
use ferry_supervisor::topics::{self, TargetTopicAction};
use serde::Serialize;

use crate::plan::acls::AclPlan;
use crate::plan::{FlowPlan, GroupOnTarget, OffsetAction, TargetGroupState, TopicAction};

/// How long writing a group's offsets may be retried while freshly created
/// topics propagate.
const GROUP_WRITE_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    CreatedTopic,
    /// Someone created it between the plan and the apply.
    TopicExisted,
    AddedPartitions,
    ChangedConfigs,
    WroteGroupOffsets,
    SkippedGroupOffsets,
    CreatedAcl,
    DeletedAcl,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    /// The target topic or group.
    pub target: String,
    pub detail: String,
}

/// What `--apply` did for one flow.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub flow: String,
    pub actions: Vec<Action>,
    /// Steps that failed, each naming what and why.
    pub errors: Vec<String>,
}

/// Applies `plan` (made just before, for `flow`) to the flow's target.
pub async fn apply(topology: &Topology, flow: &Flow, plan: &FlowPlan) -> Applied {
    let mut out = Applied {
        flow: plan.flow.clone(),
        actions: Vec::new(),
        errors: Vec::new(),
    };
    if let Err(e) = run(topology, flow, plan, &mut out).await {
        out.errors.push(e.to_string());
    }
    out
}

async fn run(
    topology: &Topology,
    flow: &Flow,
    plan: &FlowPlan,
    out: &mut Applied,
) -> Result<(), ferry_supervisor::EngineError> {
    let (source, target) = crate::clusters(topology, flow)?;
    let source_admin = crate::admin(source, "ferry-plan")?;
    let target_admin = crate::admin(target, "ferry-plan")?;
    let mut ready: HashMap<&str, bool> = HashMap::new();

    for t in &plan.topics {
        if t.action == TopicAction::Exists {
            ready.insert(&t.target_topic, true);
            continue;
        }
        let done = topics::ensure_target_topic(
            &target_admin,
            async |spec| topics::create_topic(&target_admin, spec).await,
            (&target.name, &t.target_topic),
            t.partitions,
            t.target_partitions,
            flow.replication_factor,
            &t.configs,
        )
        .await;
        match done {
            Ok(TargetTopicAction::Created) => out.actions.push(Action {
                kind: ActionKind::CreatedTopic,
                target: t.target_topic.clone(),
                detail: format!(
                    "{} partition{}, configs: {}",
                    t.partitions,
                    if t.partitions == 1 { "" } else { "s" },
                    if t.configs.is_empty() {
                        "none".to_string()
                    } else {
                        t.configs
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            }),
            Ok(TargetTopicAction::Existed) => out.actions.push(Action {
                kind: ActionKind::TopicExisted,
                target: t.target_topic.clone(),
                detail: "created meanwhile by someone else; left as it is".into(),
            }),
            Ok(TargetTopicAction::AddedPartitions { from, to }) => out.actions.push(Action {
                kind: ActionKind::AddedPartitions,
                target: t.target_topic.clone(),
                detail: format!("{from} -> {to} partitions"),
            }),
            Err(e) => {
                out.errors.push(e.to_string());
                continue;
            }
        }
        ready.insert(&t.target_topic, true);
    }

    if flow.sync_topic_configs {
        for t in plan
            .topics
            .iter()
            .filter(|t| t.target_partitions.is_some() && !t.config_changes.is_empty())
        {
            match topics::sync_topic_configs(
                &source_admin,
                &target_admin,
                flow,
                &target.name,
                (&t.source_topic, &t.target_topic),
                // Nothing copied earlier by this run: only sets, no resets.
                &mut std::collections::BTreeSet::new(),
            )
            .await
            {
                Ok(changes) if changes.is_empty() => {}
                Ok(changes) => out.actions.push(Action {
                    kind: ActionKind::ChangedConfigs,
                    target: t.target_topic.clone(),
                    detail: changes
                        .iter()
                        .map(|c| match &c.op {
                            ConfigOp::Set(v) => format!("{}={v}", c.key),
                            ConfigOp::Delete => format!("{} -> broker default", c.key),
                            other => format!("{} {other:?}", c.key),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
                Err(e) => out.errors.push(e.to_string()),
            }
        }
    }

    for g in &plan.groups {
        let wanted: Vec<(&str, i32, i64)> = g
            .partitions
            .iter()
            .filter(|p| p.apply.action == OffsetAction::Write)
            .filter(|p| ready.get(p.target_topic.as_str()).copied().unwrap_or(false))
            .filter_map(|p| Some((p.target_topic.as_str(), p.partition, p.apply.offset?)))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        if !flow.sync_group_offsets {
            out.actions.push(Action {
                kind: ActionKind::SkippedGroupOffsets,
                target: g.group.clone(),
                detail: "sync_group_offsets = false".into(),
            });
            continue;
        }
        // Fresh state: the plan may be minutes old.
        let states = crate::plan::target_states(&target_admin, target, &[g.group.as_str()]).await?;
        if matches!(
            states.get(&g.group),
            Some(GroupOnTarget {
                state: TargetGroupState::Active,
                ..
            })
        ) {
            out.actions.push(Action {
                kind: ActionKind::SkippedGroupOffsets,
                target: g.group.clone(),
                detail: format!("the group is active on {}", target.name),
            });
            continue;
        }
        let parts: Vec<(&str, i32)> = wanted.iter().map(|(t, p, _)| (*t, *p)).collect();
        let current = match target_admin.committed_offsets(&g.group, &parts).await {
            Ok(current) => current,
            Err(e) => {
                out.errors.push(format!(
                    "cluster {}: cannot read the offsets of group {}: {e}",
                    target.name, g.group
                ));
                continue;
            }
        };
        let decided = group_sync::plan(TargetGroup::Idle, wanted.iter().copied(), &current);
        for (topic, partition, offset, reason) in &decided.skip {
            out.actions.push(Action {
                kind: ActionKind::SkippedGroupOffsets,
                target: g.group.clone(),
                detail: format!("{topic}[{partition}] not set to {offset}: {reason}"),
            });
        }
        if decided.write.is_empty() {
            continue;
        }
        let writes: Vec<(&str, i32, i64)> = decided
            .write
            .iter()
            .map(|(t, p, o)| (t.as_str(), *p, *o))
            .collect();
        match write_offsets(&target_admin, &g.group, &writes).await {
            Ok(()) => out.actions.push(Action {
                kind: ActionKind::WroteGroupOffsets,
                target: g.group.clone(),
                detail: writes
                    .iter()
                    .map(|(t, p, o)| format!("{t}[{p}]={o}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            Err(AdminError::GroupNotEmpty { .. }) => out.actions.push(Action {
                kind: ActionKind::SkippedGroupOffsets,
                target: g.group.clone(),
                detail: format!("the group became active on {}", target.name),
            }),
            Err(e) => out.errors.push(format!(
                "cluster {}: cannot write the offsets of group {}: {e}",
                target.name, g.group
            )),
        }
    }
    if let Some(acls) = &plan.acls {
        apply_acls(&target_admin, &target.name, acls, out).await?;
    }
    Ok(())
}

/// Creates the ACLs the plan lists (and deletes the extra ones with
/// `acl_sync_deletes = true`). An ACL the target refuses is a failed step;
/// the others are still applied.
async fn apply_acls(
    target_admin: &Admin,
    target: &str,
    plan: &AclPlan,
    out: &mut Applied,
) -> Result<(), ferry_supervisor::EngineError> {
    let done =
        ferry_supervisor::acls::apply(target_admin, target, &plan.diff, plan.deletes).await?;
    let mut push = |kind, acl: &ferry_admin::AclBinding| {
        out.actions.push(Action {
            kind,
            target: target.to_string(),
            detail: acl.to_string(),
        })
    };
    for acl in &done.created {
        push(ActionKind::CreatedAcl, acl);
    }
    for acl in &done.deleted {
        push(ActionKind::DeletedAcl, acl);
    }
    for (acl, e) in &done.rejected {
        out.errors
            .push(format!("cluster {target}: the ACL {acl} was refused: {e}"));
    }
    Ok(())
}

/// Commits offsets, retrying while freshly created topics are not yet known
/// to the group coordinator.
async fn write_offsets(
    admin: &ferry_admin::Admin,
    group: &str,
    offsets: &[(&str, i32, i64)],
) -> Result<(), AdminError> {
    let deadline = Instant::now() + GROUP_WRITE_RETRY;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    loop {
        match admin.alter_consumer_group_offsets(group, offsets).await {
            Ok(()) => return Ok(()),
            Err(e @ AdminError::GroupNotEmpty { .. }) => return Err(e),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::debug!(group, error = %e, "writing group offsets; retrying");
                tokio::time::sleep(backoff.next_wait()).await;
            }
        }
    }
}

/// What was done, for people.
pub fn render(applied: &[Applied]) -> String {
    let mut out = String::new();
    for a in applied {
        out.push_str(&format!("applied flow {}:", a.flow));
        if a.actions.is_empty() && a.errors.is_empty() {
            out.push_str(" nothing to do\n");
            continue;
        }
        out.push('\n');
        for act in &a.actions {
            let what = match act.kind {
                ActionKind::CreatedTopic => "created topic",
                ActionKind::TopicExisted => "topic already existed",
                ActionKind::AddedPartitions => "added partitions to",
                ActionKind::ChangedConfigs => "changed configs of",
                ActionKind::WroteGroupOffsets => "wrote offsets of group",
                ActionKind::SkippedGroupOffsets => "did not write offsets of group",
                ActionKind::CreatedAcl => "created ACL on",
                ActionKind::DeletedAcl => "deleted ACL on",
            };
            out.push_str(&format!("  {what} {}: {}\n", act.target, act.detail));
        }
        for e in &a.errors {
            out.push_str(&format!("  FAILED: {e}\n"));
        }
    }
    if applied
        .iter()
        .flat_map(|a| &a.actions)
        .any(|a| a.kind == ActionKind::WroteGroupOffsets)
    {
        out.push_str(
            "note: where no data was copied, group offsets point at the start of the new, empty \
             target partitions: consumers that move to the target read every record producers \
             write there, from the first one.\n",
        );
    }
    out
}
