//! The replication engine: flows, per-topic mirror tasks, at-least-once
//! delivery.
//!
//! # Layout
//! - `clients`: librdkafka configs per cluster and role, a context that names
//!   the cluster in every log line and scrubs secrets, connection probes.
//! - `pump`: the data plane of one flow: a source consumer and a target
//!   producer on dedicated threads, bounded by in-flight bytes.
//! - `tracker`: the per-partition ack tracker (contiguous acknowledged
//!   watermark, fencing by slot).
//! - `progress`: the progress store on the target (next source offset per
//!   partition, compacted topic).
//! - `flow`: one flow's control plane: topic discovery, one async mirror task
//!   per topic, progress commits, drain on shutdown.
//! - `topics`: target topic creation, partition growth, config filtering,
//!   internal-topic rules.
//!
//! Invariant: the offset persisted for a partition is the first source offset
//! whose record, or any earlier one, the target has not acknowledged.

pub mod clients;
mod flow;
pub mod progress;
mod pump;
pub mod status;
pub mod topics;
pub mod tracker;
pub mod verify;

use std::sync::Arc;

use ferry_config::Topology;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use flow::RunMode;
pub use pump::PROVENANCE_HEADER;
pub use status::{EngineStatus, FlowStatus};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cluster {cluster}: {cause}")]
    Client { cluster: String, cause: String },
    #[error("cluster {cluster}, progress topic {topic}: {cause}")]
    Progress {
        cluster: String,
        topic: String,
        cause: String,
    },
    #[error("cluster {cluster}, topic {topic}: {cause}")]
    Topic {
        cluster: String,
        topic: String,
        cause: String,
    },
    #[error("cluster {cluster}, topic {topic}, partition {partition}: {cause}")]
    Partition {
        cluster: String,
        topic: String,
        partition: i32,
        cause: String,
    },
    #[error("flow {flow}: {cause}")]
    Flow { flow: String, cause: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Runs every enabled flow of a topology until `cancel` fires (or, in a
/// bounded run, until every flow has caught up), then drains: fetching stops,
/// in-flight records are acknowledged, progress is persisted.
pub struct Supervisor {
    topology: Topology,
    status: Arc<EngineStatus>,
    mode: RunMode,
}

impl Supervisor {
    pub fn new(topology: Topology, mode: RunMode) -> Self {
        Self {
            status: Arc::new(EngineStatus::new(&topology)),
            topology,
            mode,
        }
    }

    /// Shared, cheap-to-read state for metrics, health and `/status`.
    pub fn status(&self) -> Arc<EngineStatus> {
        self.status.clone()
    }

    /// Runs until cancelled. Returns the first flow error, if any flow
    /// stopped on one; other flows keep running until then.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), EngineError> {
        let tracker = TaskTracker::new();
        let mut handles = Vec::new();
        for flow in self.topology.flows.iter().filter(|f| f.enabled) {
            let (Some(source), Some(target)) = (
                self.topology.cluster(&flow.source),
                self.topology.cluster(&flow.target),
            ) else {
                return Err(EngineError::Internal(format!(
                    "flow {} names a cluster missing from the validated topology",
                    flow.id()
                )));
            };
            let runner = flow::FlowRunner::new(
                flow.clone(),
                source.clone(),
                target.clone(),
                self.status.flow(&flow.id()),
                self.topology.engine.shutdown_timeout,
                self.mode,
            );
            handles.push(tracker.spawn(runner.run(cancel.child_token())));
        }
        tracker.close();
        let mut first_error = None;
        for h in handles {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "flow stopped");
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error
                        .get_or_insert(EngineError::Internal(format!("flow task panicked: {e}")));
                }
            }
        }
        tracker.wait().await;
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
