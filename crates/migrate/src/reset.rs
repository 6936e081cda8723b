//! `ferry reset-progress`: forgets a flow's saved progress for the source
//! topics matching a filter, so the next run starts their partitions by
//! `start_from` (or where MirrorMaker 2 stopped) instead of resuming.
//!
//! The remedy for a target topic deleted under kept progress (the engine
//! recreates it empty and would resume after the records it held) and for a
//! partition held because its saved progress is past the source log end.
//! It writes a tombstone per partition to the flow's progress topic on the
//! target; the daemon must not run meanwhile, or its next progress write
//! brings the progress back.

use std::net::SocketAddr;

use ferry_config::{Flow, Topology};
use ferry_supervisor::{progress, EngineError};
use regex::Regex;

/// How long reading the progress topic may take.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// One partition whose progress was forgotten, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetPartition {
    pub topic: String,
    pub partition: i32,
    pub was: i64,
}

/// Why a reset was refused before anything was written.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("a daemon replicating flow {flow} answers at {addr} (http.listen): stop it first, or its next progress write brings the progress back")]
    DaemonRunning { flow: String, addr: SocketAddr },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The daemon's address when one answering at the topology's `http.listen`
/// runs `flow`, or answers but will not show which flows it runs (a
/// `/status` that needs a token this topology lacks): resetting next to it
/// is not safe either. A daemon elsewhere, or listening on port 0, is not
/// seen.
pub fn daemon_runs(topology: &Topology, flow: &Flow) -> Option<SocketAddr> {
    if topology.http.listen.port() == 0 {
        return None;
    }
    // Unreadable certificate files: no HTTPS request can be made, but a
    // daemon may run; the plain address is the one to name.
    let Ok(endpoint) = crate::daemon::endpoint(&topology.http) else {
        return Some(ferry_http::client::reachable(topology.http.listen));
    };
    let token = topology.http.control_token.as_ref();
    match crate::daemon::status(&endpoint, token) {
        Err(ferry_http::client::ClientError::NoAnswer(_)) => None,
        Ok(doc) => doc.flow(&flow.id().to_string()).map(|_| endpoint.addr),
        // A refusal or a document this version cannot read.
        Err(_) => Some(endpoint.addr),
    }
}

/// Forgets the saved progress of every partition of `flow` whose source
/// topic matches `topics` (only `partitions`, unless empty); returns them,
/// sorted. Refuses while a daemon for the flow is seen running.
pub async fn reset_progress(
    topology: &Topology,
    flow: &Flow,
    topics: &Regex,
    partitions: &[i32],
) -> Result<Vec<ResetPartition>, ResetError> {
    if let Some(addr) = daemon_runs(topology, flow) {
        return Err(ResetError::DaemonRunning {
            flow: flow.id().to_string(),
            addr,
        });
    }
    let (_, target) = crate::clusters(topology, flow)?;
    let saved = progress::load(target, &flow.source, READ_TIMEOUT).await?;
    let mut chosen: Vec<ResetPartition> = saved
        .into_iter()
        .filter(|((t, p), _)| {
            topics.is_match(t) && (partitions.is_empty() || partitions.contains(p))
        })
        .map(|((topic, partition), was)| ResetPartition {
            topic,
            partition,
            was,
        })
        .collect();
    chosen.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let keys: Vec<(String, i32)> = chosen
        .iter()
        .map(|r| (r.topic.clone(), r.partition))
        .collect();
    progress::reset(target, &flow.source, &keys).await?;
    Ok(chosen)
}
