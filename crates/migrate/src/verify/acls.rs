//! `ferry verify --acls`: compares the ACLs each flow expects on its target
//! (derived from the source's, by the daemon's own rules in
//! `ferry_supervisor::acls`) with the target's.
//!
//! A flow's ACLs `match` when the target has every expected ACL and, with
//! `acl_sync_deletes = true`, nothing extra on the flow's resources.
//! Without it, extra ACLs are listed but are not a mismatch: the daemon
//! leaves them alone by design. A cluster that cannot be read makes the
//! report `error`.

use std::collections::BTreeSet;

use ferry_config::{Flow, Topology};
use ferry_supervisor::topics;
use serde::Serialize;

use super::Outcome;
use crate::plan::acls::{acl_line, AclEntry};

/// The report `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct AclReport {
    pub result: Outcome,
    pub flows: Vec<FlowAcls>,
}

/// One flow's comparison.
#[derive(Debug, Clone, Serialize)]
pub struct FlowAcls {
    pub flow: String,
    pub result: Outcome,
    /// Whether the flow syncs ACLs (`sync_acls`); compared either way.
    pub sync_acls: bool,
    /// Expected ACLs the target has.
    pub matching: usize,
    /// Expected ACLs the target lacks.
    pub missing: Vec<AclEntry>,
    /// Target ACLs on the flow's resources without a source counterpart.
    pub extra: Vec<AclEntry>,
    /// The source reported no ACLs at all: with librdkafka that may also
    /// mean it has no authorizer or refused Ferry `DESCRIBE` on the cluster.
    pub source_reported_none: bool,
    /// Why the flow could not be compared.
    pub error: Option<String>,
}

/// Compares every flow's ACLs.
pub async fn verify_acls(topology: &Topology, flows: &[Flow]) -> AclReport {
    let mut out = Vec::new();
    for flow in flows {
        out.push(match compare_flow(topology, flow).await {
            Ok(report) => report,
            Err(e) => FlowAcls {
                flow: flow.id().to_string(),
                result: Outcome::Error,
                sync_acls: flow.acls.enabled,
                matching: 0,
                missing: Vec::new(),
                extra: Vec::new(),
                source_reported_none: false,
                error: Some(e.to_string()),
            },
        });
    }
    let result = out
        .iter()
        .map(|f| f.result)
        .max_by_key(|r| severity(*r))
        .unwrap_or(Outcome::Match);
    AclReport { result, flows: out }
}

fn severity(o: Outcome) -> u8 {
    match o {
        Outcome::Match => 0,
        Outcome::Mismatch => 1,
        Outcome::Incomplete => 2,
        Outcome::Error => 3,
    }
}

async fn compare_flow(
    topology: &Topology,
    flow: &Flow,
) -> Result<FlowAcls, ferry_supervisor::EngineError> {
    let (source, target) = crate::clusters(topology, flow)?;
    let source_admin = crate::admin(source, "ferry-verify")?;
    let target_admin = crate::admin(target, "ferry-verify")?;
    let mirrored: BTreeSet<String> = crate::list_topics(&source_admin, source)
        .await?
        .into_keys()
        .filter(|t| topics::selects(flow, t))
        .collect();
    let diff = ferry_supervisor::acls::compare(
        (&source_admin, &target_admin),
        (&source.name, &target.name),
        flow,
        &mirrored,
    )
    .await?;
    let mismatch = !diff.missing.is_empty() || (flow.acls.deletes && !diff.extra.is_empty());
    Ok(FlowAcls {
        flow: flow.id().to_string(),
        result: if mismatch {
            Outcome::Mismatch
        } else {
            Outcome::Match
        },
        sync_acls: flow.acls.enabled,
        matching: diff.matching,
        missing: diff.missing.iter().map(AclEntry::from).collect(),
        extra: diff.extra.iter().map(AclEntry::from).collect(),
        source_reported_none: diff.source_reported_none,
        error: None,
    })
}

/// The report, for people.
pub fn render(report: &AclReport) -> String {
    let mut out = String::new();
    for f in &report.flows {
        out.push_str(&format!(
            "flow {}: ACLs {}{}\n",
            f.flow,
            outcome_word(f.result),
            if f.sync_acls {
                ""
            } else {
                " (sync_acls is off)"
            }
        ));
        if let Some(e) = &f.error {
            out.push_str(&format!("  error: {e}\n"));
            continue;
        }
        out.push_str(&format!(
            "  {} expected ACLs on the target, {} missing, {} extra\n",
            f.matching,
            f.missing.len(),
            f.extra.len()
        ));
        if f.source_reported_none {
            out.push_str(
                "  note: the source reported no ACLs at all; a source without an authorizer, or one \
                 refusing Ferry DESCRIBE on the cluster, looks the same\n",
            );
        }
        for a in &f.missing {
            out.push_str(&format!("  missing on target: {}\n", acl_line(a)));
        }
        for a in &f.extra {
            out.push_str(&format!("  extra on target:   {}\n", acl_line(a)));
        }
    }
    out.push_str(&format!("result: {}\n", outcome_word(report.result)));
    out
}

/// How a report names an outcome.
pub(super) fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Match => "match",
        Outcome::Mismatch => "MISMATCH",
        Outcome::Incomplete => "incomplete",
        Outcome::Error => "ERROR",
    }
}
