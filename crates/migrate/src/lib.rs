//! Ferry's migration toolkit: the commands an operator runs around a
//! migration, as library calls the `ferry` binary renders.
//!
//! # Layout
//! - [`verify`]: `ferry verify`, source and target compared partition by
//!   partition over the replicated range (counts, order-sensitive digests,
//!   the first divergent record of each side).
//! - [`plan`]: `ferry plan`, a dry run of what a flow would do to its target
//!   (topics, configs, consumer groups, backlog, warnings), human-readable
//!   or JSON.
//! - [`apply`]: `ferry plan --apply`, the metadata-only migration: create the
//!   planned topics with their configs and write consumer-group offsets,
//!   without copying data.
//! - [`cutover`]: `ferry cutover`, the guided switch of a flow's topics:
//!   lag settled at 0, final group offset sync, verify, stop replicating,
//!   next steps; each step a check that refuses to go on.
//! - [`failback`]: `ferry failback`, which hands a flow's topics and
//!   groups back to its source after a failover: the records written on
//!   the target meanwhile are copied back, none that the source holds.
//! - [`reset`]: `ferry reset-progress`, forgetting saved progress so the
//!   next run starts those partitions by `start_from`.
//! - [`resume`]: `ferry resume-topics`, which undoes a cutover: the topics
//!   replicate again from their saved progress.
//! - [`offsets_report`]: `ferry offsets`, a flow's group offsets next to
//!   their translations, checkpoints and target group offsets (also the
//!   input of `plan` and `cutover`).
//! - [`daemon`]: the running daemon's HTTP endpoint (`/status`, control).
//! - [`units`]: sizes, throughputs and durations as people read them.
//! - [`records`]: the record-level building blocks (reading a partition
//!   range, what "the same record" means, the digest, record descriptions),
//!   shared with `ferry demo`.
//!
//! Topic selection, config filtering, progress and offset maps are the
//! engine's own (`ferry_supervisor::{topics, progress, checkpoints}`), so
//! the toolkit and the daemon never disagree about what a flow replicates.
//!
//! Nothing here writes to a cluster except [`apply`], [`cutover`], [`failback`],
//! [`reset`] and [`resume`].
//!
//! `docs/migration.md` in this crate documents the commands, their exit
//! codes and the JSON schemas.

pub mod apply;
pub mod cutover;
pub mod daemon;
pub mod failback;
pub mod offsets_report;
pub mod plan;
pub mod records;
pub mod reset;
pub mod resume;
pub mod units;
pub mod verify;

use std::collections::BTreeMap;

use ferry_admin::{Admin, RetryPolicy};
use ferry_config::{Cluster, Flow, FlowId, Topology};
use ferry_supervisor::{EngineError, Place};

/// A `--flow` value that names no flow of the topology.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowSelectionError {
    /// Not `SOURCE->TARGET`; the message says so and quotes the value.
    #[error("--flow: {0}")]
    Invalid(String),
    /// A well-formed flow the topology does not have.
    #[error("--flow: no flow \"{id}\" in the topology (flows: {})", list_or_none(.known))]
    Unknown {
        id: FlowId,
        /// Every flow of the topology, by name.
        known: Vec<String>,
    },
}

pub(crate) fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The flows a command works on: the one named by `--flow` (even if
/// disabled), else every enabled flow. `Err` is bad input that names the
/// value and the flows there are.
pub fn select_flows(
    topology: &Topology,
    flow: Option<&str>,
) -> Result<Vec<Flow>, FlowSelectionError> {
    let Some(name) = flow else {
        return Ok(topology
            .flows
            .iter()
            .filter(|f| f.enabled)
            .cloned()
            .collect());
    };
    let id: FlowId = name.parse().map_err(FlowSelectionError::Invalid)?;
    match topology.flow(&id) {
        Some(f) => Ok(vec![f.clone()]),
        None => Err(FlowSelectionError::Unknown {
            id,
            known: topology.flows.iter().map(|f| f.id().to_string()).collect(),
        }),
    }
}

/// The source and target clusters of a validated flow.
pub(crate) fn clusters<'a>(
    topology: &'a Topology,
    flow: &Flow,
) -> Result<(&'a Cluster, &'a Cluster), EngineError> {
    match (
        topology.cluster(&flow.source),
        topology.cluster(&flow.target),
    ) {
        (Some(s), Some(t)) => Ok((s, t)),
        _ => Err(EngineError::Internal(format!(
            "flow {} names a cluster missing from the validated topology",
            flow.id()
        ))),
    }
}

/// An admin client for a cluster (Ferry's reader settings plus the
/// operator's properties). Its calls retry retriable errors (a coordinator
/// still loading, a leader election, a lost connection) for up to a minute,
/// logging one warning per retry, as the daemon rides them out.
pub(crate) fn admin(cluster: &Cluster, client_id: &str) -> Result<Admin, EngineError> {
    ferry_supervisor::clients::admin(cluster, client_id)
        .map(|a| a.with_retry(RetryPolicy::COMMAND))
        .map_err(|e| EngineError::Client {
            cluster: cluster.name.clone(),
            cause: e.to_string(),
        })
}

/// Every topic of `cluster` with its partition count.
pub(crate) async fn list_topics(
    admin: &Admin,
    cluster: &Cluster,
) -> Result<BTreeMap<String, usize>, EngineError> {
    admin
        .topic_metadata()
        .await
        .map_err(client_err(cluster, "cannot list topics"))
}

/// Wraps an admin error with the cluster it came from and what was asked.
pub(crate) fn client_err(
    cluster: &Cluster,
    what: &str,
) -> impl FnOnce(ferry_admin::AdminError) -> EngineError {
    let place = Place::cluster(&cluster.name);
    let what = what.to_string();
    // The admin error stays the source, so callers can tell an
    // authorization failure from one a retry may fix.
    move |e| EngineError::request(place, what, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let text =
            "[clusters.a]\nbootstrap_servers=\"a:1\"\n[clusters.b]\nbootstrap_servers=\"b:1\"\n\
             [[flows]]\nsource=\"a\"\ntarget=\"b\"\n\
             [[flows]]\nsource=\"b\"\ntarget=\"a\"\nenabled=false\n";
        ferry_config::parse(text, "t", std::path::Path::new("."))
            .unwrap()
            .topology
    }

    #[test]
    fn flows_are_selected_by_name_or_enabled() {
        let t = topology();
        let all = select_flows(&t, None).unwrap();
        assert_eq!(all.len(), 1, "disabled flows only when named");
        assert_eq!(select_flows(&t, Some("b->a")).unwrap()[0].source, "b");
        let err = select_flows(&t, Some("a->c")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--flow: no flow \"a->c\" in the topology (flows: a->b, b->a)"
        );
        let err = select_flows(&t, Some("nonsense")).unwrap_err();
        assert!(matches!(err, FlowSelectionError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("nonsense"), "{err}");
    }
}
