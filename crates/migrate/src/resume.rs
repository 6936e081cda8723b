//! `ferry resume-topics`: undoes a cutover. The chosen cut-over topics of a
//! flow lose their persisted cut-over state on the target (tombstones in
//! `ferry-cutover.<source>.internal`), and replicate again from their saved
//! progress: at once in the daemon at `http.listen` when one runs the flow
//! (`POST /control/resume-topics`, which removes the state itself), else at
//! the next `ferry run`.

use std::net::SocketAddr;
use std::time::Duration;

use ferry_config::{Flow, Topology};
use ferry_supervisor::cut_over;
use regex::Regex;

use crate::clusters;
use crate::cutover::{find_daemon, CutoverError, Replicator};

/// How long the daemon may take to answer (it drains and restarts the flow).
const DAEMON_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Bad input: the regex names no cut-over topic of the flow. Exit 2.
    #[error("{0}")]
    BadInput(String),
    /// The target or the daemon could not be asked, or refused. Exit 1.
    #[error("{0}")]
    Failed(String),
}

/// What was resumed, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeReport {
    pub flow: String,
    pub topics: Vec<String>,
    /// The daemon that replicates them again now, if one runs the flow.
    pub daemon: Option<SocketAddr>,
}

/// Resumes the cut-over topics of `flow` whose whole name `topics` matches.
pub async fn resume_topics(
    topology: &Topology,
    flow: &Flow,
    topics: &Regex,
) -> Result<ResumeReport, ResumeError> {
    let failed = |e: &dyn std::fmt::Display| ResumeError::Failed(e.to_string());
    let (_, target) = clusters(topology, flow).map_err(|e| failed(&e))?;
    let id = flow.id();
    let cut = cut_over::load(target, &id).await.map_err(|e| failed(&e))?;
    let chosen: Vec<String> = cut.keys().filter(|t| topics.is_match(t)).cloned().collect();
    if chosen.is_empty() {
        return Err(ResumeError::BadInput(format!(
            "--topics \"{}\" matches no cut-over topic of flow {id} (cut over: {})",
            crate::verify::filter_pattern(topics),
            crate::list_or_none(&cut.keys().cloned().collect::<Vec<_>>())
        )));
    }
    let daemon = match find_daemon(topology, flow) {
        Ok(Replicator::Daemon(addr)) => Some(addr),
        Ok(Replicator::Standalone) => None,
        Err(CutoverError::Refused { reason, .. }) => {
            return Err(ResumeError::Failed(format!(
                "{reason}; nothing was resumed"
            )))
        }
        Err(e) => return Err(failed(&e)),
    };
    match daemon {
        Some(addr) => {
            let request = ferry_http::ResumeTopics {
                flow: id.to_string(),
                topics: chosen.clone(),
            };
            let body = serde_json::to_string(&request).expect("plain strings serialize");
            let token = topology.http.control_token.clone();
            // find_daemon read this topology's endpoint a moment ago.
            let endpoint = crate::daemon::endpoint(&topology.http).map_err(|e| failed(&e))?;
            tokio::task::spawn_blocking(move || {
                crate::daemon::post(
                    &endpoint,
                    "/control/resume-topics",
                    &body,
                    token.as_ref(),
                    DAEMON_TIMEOUT,
                )
            })
            .await
            .map_err(|e| failed(&format!("request task failed: {e}")))?
            .map_err(|why| {
                ResumeError::Failed(format!("the daemon at {addr}: {why}; nothing was resumed"))
            })?;
        }
        None => cut_over::remove(target, &id, &chosen, flow.replication_factor)
            .await
            .map_err(|e| failed(&format!("{e}; nothing was resumed")))?,
    }
    Ok(ResumeReport {
        flow: id.to_string(),
        topics: chosen,
        daemon,
    })
}

/// What the command prints.
pub fn render(report: &ResumeReport) -> String {
    let mut out = format!(
        "resumed {} topic(s) of flow {}: {}\n",
        report.topics.len(),
        report.flow,
        report.topics.join(", ")
    );
    out.push_str(&match report.daemon {
        Some(addr) => format!(
            "the daemon at {addr} replicates them again from their saved progress\n"
        ),
        None => "no daemon runs this flow; the next `ferry run` replicates them from their saved progress\n".to_string(),
    });
    out
}
