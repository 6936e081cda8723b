//! The deletion part of a plan (`propagate_deletes = true`): target topics
//! whose source topic is gone, which the daemon deletes once it has seen
//! the source topic missing for `delete_grace`, or keeps because another
//! flow writes to them. The rules are the daemon's own
//! (`ferry_supervisor::deletes`). A plan only shows them: neither `plan`
//! nor `plan --apply` deletes anything.

use std::collections::BTreeSet;
use std::time::Duration;

use ferry_config::{Cluster, Flow, Topology};
use ferry_supervisor::deletes::{self, Orphan};
use ferry_supervisor::progress::ProgressMap;
use ferry_supervisor::{cut_over, EngineError};
use serde::Serialize;

use crate::units::format_duration;

/// How long one listing may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// The flow's pending deletions.
#[derive(Debug, Clone, Serialize)]
pub struct DeletesPlan {
    /// `delete_grace`, in seconds: how long the daemon must see a source
    /// topic missing before it deletes the target topic.
    pub grace_seconds: f64,
    pub topics: Vec<PendingDeletion>,
}

/// One target topic whose source topic is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingDeletion {
    pub source_topic: String,
    pub target_topic: String,
    /// Why it is kept (another source topic is copied into it); `None`
    /// when the daemon deletes it after `delete_grace`.
    pub kept_because: Option<String>,
}

/// The pending deletions of `flow` (`None` without `propagate_deletes`).
/// The evidence that the flow mirrored a source topic is its saved
/// progress (`saved`): a plan has no memory of what a daemon saw. The
/// daemon itself deletes only topics it saw on the source before they went.
pub async fn plan_deletes(
    topology: &Topology,
    flow: &Flow,
    (source, target): (&Cluster, &Cluster),
    saved: &ProgressMap,
) -> Result<Option<DeletesPlan>, EngineError> {
    if !flow.deletes.enabled {
        return Ok(None);
    }
    // Topics cut over are not the flow's any more, as in the daemon.
    let cut = cut_over::load(target, &flow.id()).await?;
    let mut flow = flow.clone();
    flow.topics = flow.topics.excluding(cut.keys().map(String::as_str));
    let source_names = list(source).await?;
    let target_names = list(target).await?;
    let known: BTreeSet<&str> = saved.keys().map(|(t, _)| t.as_str()).collect();
    let orphans = deletes::orphans(topology, &flow, known, &source_names, &target_names);
    let others = if orphans.is_empty() {
        Vec::new()
    } else {
        deletes::other_writers(topology, &flow, |c| async move { list(&c).await }).await?
    };
    let topics = orphans
        .iter()
        .map(|o: &Orphan| {
            let writers = deletes::writers(&flow, o, &source_names, &others);
            PendingDeletion {
                source_topic: o.source_topic.clone(),
                target_topic: o.target_topic.clone(),
                kept_because: (!writers.is_empty())
                    .then(|| format!("written by {}", writers.join(", "))),
            }
        })
        .collect();
    Ok(Some(DeletesPlan {
        grace_seconds: flow.deletes.grace.as_secs_f64(),
        topics,
    }))
}

/// Every topic name of `cluster`, those in an error state too.
async fn list(cluster: &Cluster) -> Result<BTreeSet<String>, EngineError> {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || deletes::list_cluster(&cluster, LIST_TIMEOUT))
        .await
        .map_err(|e| EngineError::Internal(format!("listing task failed: {e}")))?
}

/// The section of the human-readable plan.
pub fn render(target: &str, plan: &DeletesPlan) -> String {
    let mut out = format!(
        "\ntarget topics whose source topic is gone (propagate_deletes: a daemon that saw the source topic deletes them after delete_grace = {}): ",
        format_duration(plan.grace_seconds)
    );
    if plan.topics.is_empty() {
        out.push_str("none\n");
        return out;
    }
    out.push_str(&format!("{}\n", plan.topics.len()));
    let rows: Vec<[String; 2]> = plan
        .topics
        .iter()
        .map(|d| {
            let what = match &d.kept_because {
                None => format!(
                    "DELETE from {target} once {} has been gone for {}",
                    d.source_topic,
                    format_duration(plan.grace_seconds)
                ),
                Some(why) => format!("KEEP ({} is gone, but {why})", d.source_topic),
            };
            [d.target_topic.clone(), what]
        })
        .collect();
    out.push_str(&crate::verify::table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_and_kept_deletions_read_as_what_the_daemon_does() {
        let plan = DeletesPlan {
            grace_seconds: 600.0,
            topics: vec![
                PendingDeletion {
                    source_topic: "orders".into(),
                    target_topic: "a.orders".into(),
                    kept_because: None,
                },
                PendingDeletion {
                    source_topic: "pay".into(),
                    target_topic: "pay".into(),
                    kept_because: Some("written by source topic pay of flow c->b".into()),
                },
            ],
        };
        let text = render("b", &plan);
        assert!(
            text.contains("a daemon that saw the source topic deletes them after delete_grace = 10m 00s): 2\n"),
            "{text}"
        );
        assert!(
            text.contains("a.orders  DELETE from b once orders has been gone for 10m 00s"),
            "{text}"
        );
        assert!(
            text.contains(
                "pay       KEEP (pay is gone, but written by source topic pay of flow c->b)"
            ),
            "{text}"
        );
        let none = DeletesPlan {
            grace_seconds: 3.0,
            topics: Vec::new(),
        };
        assert!(render("b", &none).ends_with("delete_grace = 3s): none\n"));
    }
}
