//! The ACL part of a plan (`sync_acls = true`): which ACLs `--apply`
//! creates on the target, and which target ACLs on the flow's resources
//! have no source counterpart. The rules are the daemon's own
//! (`ferry_supervisor::acls`); `ferry verify --acls` reports the same diff.

use std::collections::BTreeSet;

use ferry_admin::{AclBinding, Admin};
use ferry_config::{Cluster, Flow};
use ferry_supervisor::acls::{self, AclDiff};
use ferry_supervisor::EngineError;
use serde::Serialize;

/// One ACL, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AclEntry {
    /// `Topic` or `Group`.
    pub resource_type: String,
    /// `LITERAL` or `PREFIXED`.
    pub pattern_type: String,
    pub resource_name: String,
    /// `Type:name`.
    pub principal: String,
    pub host: String,
    /// `READ`, `WRITE`, `ALL`, …
    pub operation: String,
    /// `ALLOW` or `DENY`.
    pub permission: String,
}

impl From<&AclBinding> for AclEntry {
    fn from(a: &AclBinding) -> Self {
        AclEntry {
            resource_type: a.resource_type.to_string(),
            pattern_type: a.pattern_type.to_string(),
            resource_name: a.resource_name.clone(),
            principal: a.principal.clone(),
            host: a.host.clone(),
            operation: a.operation.to_string(),
            permission: a.permission.to_string(),
        }
    }
}

/// How the target's ACLs for a flow compare with the source's.
#[derive(Debug, Clone, Serialize)]
pub struct AclPlan {
    /// Source ACLs the target lacks (as they become on the target):
    /// `--apply` and the daemon create them.
    pub create: Vec<AclEntry>,
    /// Target ACLs on the flow's topics and groups that no source ACL
    /// accounts for.
    pub extra: Vec<AclEntry>,
    /// Whether `extra` is deleted (`acl_sync_deletes = true`).
    pub deletes: bool,
    /// Expected ACLs the target already has.
    pub matching: usize,
    /// The diff itself, for `--apply`.
    #[serde(skip)]
    pub diff: AclDiff,
}

impl AclPlan {
    fn new(diff: AclDiff, deletes: bool) -> AclPlan {
        AclPlan {
            create: diff.missing.iter().map(AclEntry::from).collect(),
            extra: diff.extra.iter().map(AclEntry::from).collect(),
            deletes,
            matching: diff.matching,
            diff,
        }
    }
}

/// Compares the ACLs of `flow` on both clusters; `None` when the flow does
/// not sync ACLs. `topics` are the source topics it mirrors.
pub async fn plan_acls(
    flow: &Flow,
    (source_admin, target_admin): (&Admin, &Admin),
    (source, target): (&Cluster, &Cluster),
    topics: &BTreeSet<String>,
) -> Result<Option<AclPlan>, EngineError> {
    if !flow.acls.enabled {
        return Ok(None);
    }
    let diff = acls::compare(
        (source_admin, target_admin),
        (&source.name, &target.name),
        flow,
        topics,
    )
    .await?;
    Ok(Some(AclPlan::new(diff, flow.acls.deletes)))
}

/// `Topic:LITERAL:orders User:alice@* ALLOW READ`.
pub fn acl_line(a: &AclEntry) -> String {
    format!(
        "{}:{}:{} {}@{} {} {}",
        a.resource_type,
        a.pattern_type,
        a.resource_name,
        a.principal,
        a.host,
        a.permission,
        a.operation
    )
}

/// The plan's ACL section, for people.
pub fn render(plan: &AclPlan) -> String {
    let mut out = format!(
        "ACLs: {} to create, {} already on the target, {} on the flow's resources without a source counterpart{}\n",
        plan.create.len(),
        plan.matching,
        plan.extra.len(),
        match (plan.extra.is_empty(), plan.deletes) {
            (true, _) => "",
            (false, true) => " (deleted: acl_sync_deletes = true)",
            (false, false) => " (kept: acl_sync_deletes = false)",
        }
    );
    for a in &plan.create {
        out.push_str(&format!("  create {}\n", acl_line(a)));
    }
    for a in &plan.extra {
        let verb = if plan.deletes { "delete" } else { "keep  " };
        out.push_str(&format!("  {verb} {}\n", acl_line(a)));
    }
    out
}
