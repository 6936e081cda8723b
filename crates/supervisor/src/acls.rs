//! ACL sync (`sync_acls = true`): which ACLs of the source a flow copies to
//! the target, what they become there, and making the target match.
//!
//! # What is copied
//!
//! * ACLs on the topics the flow mirrors, literal and prefixed, renamed like
//!   the topics ([`Flow::remote_topic`]). A literal ACL is copied when its
//!   topic is mirrored; a prefixed one when it covers at least one mirrored
//!   topic. The literal wildcard `*` is never copied: on the target it would
//!   cover every topic, not only the flow's.
//! * ACLs on the consumer groups the flow's group filter matches (for a
//!   prefixed ACL: the filter matches the prefix itself), unchanged: group
//!   names are the same on both sides.
//! * Never the ACLs of `acls_exclude_principals`, and never cluster or
//!   transactional-id ACLs: they are about the source cluster itself.
//!
//! # What they become
//!
//! Identity naming (a migration) copies Allow and Deny exactly. Prefix naming
//! (disaster recovery) follows MirrorMaker 2's rule that nobody but Ferry
//! writes to a remote topic: Allow ALL becomes Allow READ, Allow READ,
//! DESCRIBE and DESCRIBE_CONFIGS are kept, and every other Allow (WRITE,
//! CREATE, DELETE, ALTER, ALTER_CONFIGS) is not copied. WRITE does not become
//! READ: it would give a producer read access the source never gave it.
//! Deny ACLs only take access away, so they are copied as they are.
//!
//! # Deletes
//!
//! Nothing is deleted unless `acl_sync_deletes = true`. Then a target ACL is
//! deleted when it has no source counterpart, it is on a resource the flow
//! owns (a pattern a source ACL of the flow could have become), and its
//! principal is not excluded. Never when the source reported no ACLs at
//! all: librdkafka drops DescribeAcls' error, so that is also what a source
//! without an authorizer, or one that refuses Ferry, looks like.

use std::collections::BTreeSet;

use ferry_admin::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType, Admin,
    AdminError,
};
use ferry_config::{Flow, TopicNaming};

use crate::{EngineError, Place};

/// The target ACL that `acl` (a source ACL) becomes under `flow`, or `None`
/// when the flow does not copy it. `topics` are the source topics the flow
/// mirrors.
pub fn target_acl(flow: &Flow, topics: &BTreeSet<String>, acl: &AclBinding) -> Option<AclBinding> {
    if !flow.acls.includes(&acl.principal) {
        return None;
    }
    match acl.resource_type {
        AclResourceType::Topic => {
            if !covers_mirrored_topic(topics, acl.pattern_type, &acl.resource_name) {
                return None;
            }
            let operation = match flow.topic_naming {
                TopicNaming::Identity => acl.operation,
                TopicNaming::Prefix => remote_operation(acl.permission, acl.operation)?,
            };
            Some(AclBinding {
                resource_name: flow.remote_topic(&acl.resource_name),
                operation,
                ..acl.clone()
            })
        }
        AclResourceType::Group => {
            covers_flow_groups(flow, acl.pattern_type, &acl.resource_name).then(|| acl.clone())
        }
        _ => None,
    }
}

/// MirrorMaker 2's rule for remote topics (see the module docs): `None` for
/// an Allow that would let someone change a remote topic.
fn remote_operation(permission: AclPermission, operation: AclOperation) -> Option<AclOperation> {
    match (permission, operation) {
        (AclPermission::Deny, op) => Some(op),
        (AclPermission::Allow, AclOperation::All) => Some(AclOperation::Read),
        (
            AclPermission::Allow,
            op @ (AclOperation::Read | AclOperation::Describe | AclOperation::DescribeConfigs),
        ) => Some(op),
        _ => None,
    }
}

fn covers_mirrored_topic(topics: &BTreeSet<String>, pattern: AclPatternType, name: &str) -> bool {
    match pattern {
        AclPatternType::Literal => name != "*" && topics.contains(name),
        AclPatternType::Prefixed => topics.iter().any(|t| t.starts_with(name)),
        AclPatternType::Other(_) => false,
    }
}

fn covers_flow_groups(flow: &Flow, pattern: AclPatternType, name: &str) -> bool {
    match pattern {
        AclPatternType::Literal => name != "*" && flow.groups.matches(name),
        AclPatternType::Prefixed => flow.groups.matches(name),
        AclPatternType::Other(_) => false,
    }
}

/// Whether a target ACL is on a resource this flow owns: one a source ACL of
/// the flow could have become. Only such ACLs are ever deleted.
pub fn owned_by_flow(flow: &Flow, topics: &BTreeSet<String>, acl: &AclBinding) -> bool {
    if !flow.acls.includes(&acl.principal) {
        return false;
    }
    let name = acl.resource_name.as_str();
    match (acl.resource_type, acl.pattern_type) {
        (AclResourceType::Topic, AclPatternType::Literal) => {
            name != "*" && topics.iter().any(|t| flow.remote_topic(t) == name)
        }
        (AclResourceType::Topic, AclPatternType::Prefixed) => topics.iter().any(|t| {
            flow.remote_topic(t).starts_with(name)
                && (1..=t.len())
                    .filter(|k| t.is_char_boundary(*k))
                    .any(|k| flow.remote_topic(&t[..k]) == name)
        }),
        (AclResourceType::Group, pattern) => covers_flow_groups(flow, pattern, name),
        _ => false,
    }
}

/// The ACLs the target should have for this flow, from the source's ACLs.
pub fn expected_acls(
    flow: &Flow,
    topics: &BTreeSet<String>,
    source_acls: &[AclBinding],
) -> BTreeSet<AclBinding> {
    source_acls
        .iter()
        .filter_map(|acl| target_acl(flow, topics, acl))
        .collect()
}

/// How the target's ACLs differ from what the flow expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclDiff {
    /// Expected ACLs the target lacks: to create.
    pub missing: Vec<AclBinding>,
    /// Target ACLs on the flow's resources with no source counterpart:
    /// deleted only with `acl_sync_deletes = true`.
    pub extra: Vec<AclBinding>,
    /// How many expected ACLs the target has already.
    pub matching: usize,
    /// The source reported no ACLs at all. librdkafka drops DescribeAcls'
    /// error, so a source without an authorizer, or one that refuses Ferry
    /// `DESCRIBE` on the cluster, looks exactly like this: nothing is
    /// deleted on its word.
    pub source_reported_none: bool,
}

impl AclDiff {
    /// True when the target has every expected ACL and nothing extra.
    pub fn is_match(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Compares what the flow expects with the target's ACLs.
pub fn diff(
    flow: &Flow,
    topics: &BTreeSet<String>,
    expected: &BTreeSet<AclBinding>,
    target_acls: &[AclBinding],
) -> AclDiff {
    let present: BTreeSet<&AclBinding> = target_acls.iter().collect();
    let (have, missing): (Vec<&AclBinding>, Vec<&AclBinding>) =
        expected.iter().partition(|a| present.contains(a));
    let extra = present
        .into_iter()
        .filter(|a| !expected.contains(*a) && owned_by_flow(flow, topics, a))
        .cloned()
        .collect();
    AclDiff {
        missing: missing.into_iter().cloned().collect(),
        extra,
        matching: have.len(),
        source_reported_none: false,
    }
}

/// Every ACL of a cluster (one DescribeAcls).
async fn all_acls(admin: &Admin, cluster: &str) -> Result<Vec<AclBinding>, EngineError> {
    admin
        .describe_acls(&AclFilter::default())
        .await
        .map_err(|e| EngineError::request(Place::cluster(cluster), "cannot describe the ACLs", e))
}

fn topic_and_group(acls: Vec<AclBinding>) -> Vec<AclBinding> {
    acls.into_iter()
        .filter(|a| {
            matches!(
                a.resource_type,
                AclResourceType::Topic | AclResourceType::Group
            )
        })
        .collect()
}

/// Reads both sides' ACLs and compares them: what a sync would change.
pub async fn compare(
    (source_admin, target_admin): (&Admin, &Admin),
    (source_cluster, target_cluster): (&str, &str),
    flow: &Flow,
    topics: &BTreeSet<String>,
) -> Result<AclDiff, EngineError> {
    let source = all_acls(source_admin, source_cluster).await?;
    let source_reported_none = source.is_empty();
    let target = topic_and_group(all_acls(target_admin, target_cluster).await?);
    let expected = expected_acls(flow, topics, &topic_and_group(source));
    Ok(AclDiff {
        source_reported_none,
        ..diff(flow, topics, &expected, &target)
    })
}

/// What one sync did.
#[derive(Debug, Default)]
pub struct AclSyncOutcome {
    /// ACLs created on the target.
    pub created: Vec<AclBinding>,
    /// ACLs deleted from the target.
    pub deleted: Vec<AclBinding>,
    /// ACLs the target refused, each with why. They are skipped; the rest
    /// of the sync goes on.
    pub rejected: Vec<(AclBinding, AdminError)>,
}

/// Creates the missing ACLs and, when `deletes`, deletes the extra ones.
/// An ACL the target refuses is logged (cluster, resource, principal) and
/// reported in [`AclSyncOutcome::rejected`]; only a request that fails as a
/// whole is an error.
pub async fn apply(
    target_admin: &Admin,
    target_cluster: &str,
    diff: &AclDiff,
    deletes: bool,
) -> Result<AclSyncOutcome, EngineError> {
    let fail = |doing: &str, e| EngineError::request(Place::cluster(target_cluster), doing, e);
    let mut outcome = AclSyncOutcome::default();
    let created = target_admin
        .create_acls(&diff.missing)
        .await
        .map_err(|e| fail("cannot create ACLs", e))?;
    for (acl, result) in diff.missing.iter().zip(created) {
        match result {
            Ok(()) => outcome.created.push(acl.clone()),
            Err(e) => outcome.rejected.push((acl.clone(), e)),
        }
    }
    if deletes && diff.source_reported_none && !diff.extra.is_empty() {
        tracing::warn!(
            cluster = target_cluster,
            extra = diff.extra.len(),
            "the source reported no ACLs at all, which is also how a source without an authorizer \
             or one refusing Ferry DESCRIBE on the cluster looks: nothing deleted"
        );
    } else if deletes {
        let deleted = target_admin
            .delete_acls(&diff.extra)
            .await
            .map_err(|e| fail("cannot delete ACLs", e))?;
        for (acl, result) in diff.extra.iter().zip(deleted) {
            match result {
                Ok(_) => outcome.deleted.push(acl.clone()),
                Err(e) => outcome.rejected.push((acl.clone(), e)),
            }
        }
    }
    for (acl, e) in &outcome.rejected {
        tracing::warn!(
            cluster = target_cluster,
            resource = %format_args!("{}:{}:{}", acl.resource_type, acl.pattern_type, acl.resource_name),
            principal = %acl.principal,
            acl = %acl,
            error = %e,
            "the target refused an ACL; skipped"
        );
    }
    Ok(outcome)
}

/// One sync of a flow's ACLs: compare, then apply.
pub async fn sync_acls(
    (source_admin, target_admin): (&Admin, &Admin),
    (source_cluster, target_cluster): (&str, &str),
    flow: &Flow,
    topics: &BTreeSet<String>,
) -> Result<AclSyncOutcome, EngineError> {
    let diff = compare(
        (source_admin, target_admin),
        (source_cluster, target_cluster),
        flow,
        topics,
    )
    .await?;
    apply(target_admin, target_cluster, &diff, flow.acls.deletes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(naming: &str, extra: &str) -> Flow {
        let text = format!(
            "[clusters.src]\nbootstrap_servers = \"x:1\"\n[clusters.dst]\nbootstrap_servers = \"y:1\"\n\
             [[flows]]\nsource = \"src\"\ntarget = \"dst\"\ntopic_naming = \"{naming}\"\n\
             groups = [\"app-.*\"]\nsync_acls = true\n{extra}"
        );
        ferry_config::parse(&text, "t.toml", std::path::Path::new("."))
            .unwrap_or_else(|e| panic!("{e}"))
            .topology
            .flows
            .remove(0)
    }

    fn acl(
        resource_type: AclResourceType,
        pattern_type: AclPatternType,
        name: &str,
        principal: &str,
        (permission, operation): (AclPermission, AclOperation),
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    use AclOperation::*;
    use AclPatternType::{Literal, Prefixed};
    use AclPermission::{Allow, Deny};
    use AclResourceType::{Group, Topic};

    fn topics() -> BTreeSet<String> {
        ["orders".to_string(), "payments".to_string()].into()
    }

    #[test]
    fn identity_naming_copies_allow_and_deny_exactly() {
        let f = flow("identity", "");
        for rule in [(Allow, Write), (Allow, All), (Deny, Read), (Allow, Alter)] {
            let a = acl(Topic, Literal, "orders", "User:a", rule);
            assert_eq!(target_acl(&f, &topics(), &a), Some(a.clone()));
        }
    }

    #[test]
    fn prefix_naming_renames_and_never_lets_anyone_write() {
        let f = flow("prefix", "");
        let t = topics();
        let got = |rule, pattern, name: &str| {
            target_acl(&f, &t, &acl(Topic, pattern, name, "User:a", rule))
                .map(|a| (a.resource_name, a.pattern_type, a.permission, a.operation))
        };
        assert_eq!(
            got((Allow, Read), Literal, "orders"),
            Some(("src.orders".into(), Literal, Allow, Read))
        );
        assert_eq!(
            got((Allow, All), Literal, "orders"),
            Some(("src.orders".into(), Literal, Allow, Read))
        );
        assert_eq!(got((Allow, Write), Literal, "orders"), None);
        assert_eq!(got((Allow, Create), Literal, "orders"), None);
        assert_eq!(got((Allow, AlterConfigs), Literal, "orders"), None);
        assert_eq!(
            got((Deny, Write), Literal, "orders"),
            Some(("src.orders".into(), Literal, Deny, Write))
        );
        assert_eq!(
            got((Allow, Read), Prefixed, "ord"),
            Some(("src.ord".into(), Prefixed, Allow, Read))
        );
    }

    #[test]
    fn only_the_flows_topics_and_groups_and_included_principals() {
        let f = flow("identity", "acls_exclude_principals = [\"User:admin\"]\n");
        let t = topics();
        let copied = |a: AclBinding| target_acl(&f, &t, &a).is_some();
        let read = (Allow, Read);
        assert!(!copied(acl(Topic, Literal, "other", "User:a", read)));
        assert!(!copied(acl(Topic, Literal, "*", "User:a", read)));
        assert!(!copied(acl(Topic, Prefixed, "x", "User:a", read)));
        assert!(!copied(acl(Topic, Literal, "orders", "User:admin", read)));
        assert!(copied(acl(Group, Literal, "app-1", "User:a", read)));
        assert!(copied(acl(Group, Prefixed, "app-", "User:a", read)));
        assert!(!copied(acl(Group, Literal, "batch", "User:a", read)));
        assert!(!copied(acl(
            AclResourceType::Cluster,
            Literal,
            "kafka-cluster",
            "User:a",
            read
        )));
    }

    #[test]
    fn deletes_only_touch_the_flows_resources() {
        let f = flow("prefix", "acls_exclude_principals = [\"User:admin\"]\n");
        let t = topics();
        let source = [acl(Topic, Literal, "orders", "User:a", (Allow, Read))];
        let expected = expected_acls(&f, &t, &source);
        let target = vec![
            acl(Topic, Literal, "src.orders", "User:a", (Allow, Read)),
            // No counterpart, on the flow's topic: extra.
            acl(Topic, Literal, "src.orders", "User:b", (Allow, Read)),
            acl(Topic, Prefixed, "src.ord", "User:b", (Allow, Read)),
            // Not the flow's: left alone.
            acl(Topic, Literal, "local", "User:b", (Allow, Write)),
            acl(Topic, Prefixed, "sr", "User:b", (Allow, Read)),
            acl(Topic, Literal, "src.orders", "User:admin", (Allow, All)),
            acl(Group, Literal, "batch", "User:b", (Allow, Read)),
        ];
        let d = diff(&f, &t, &expected, &target);
        assert_eq!(d.matching, 1);
        assert!(d.missing.is_empty());
        assert_eq!(d.extra, vec![target[2].clone(), target[1].clone()]);
        let after_delete = diff(&f, &t, &expected, &target[..1]);
        assert!(after_delete.is_match());
    }
}
