//! Requests from Ferry's own commands to a running daemon: `ferry
//! cutover`'s last step, "stop replicating these topics", and `ferry
//! resume-topics`, which undoes it.
//!
//! The server runs on its own thread and runtime, and the supervisor lives
//! on the main runtime, so a request crosses over a bounded channel with a
//! one-shot reply; the process shell owns the receiving end.

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the process shell at once; a cutover sends one.
pub const CONTROL_QUEUE: usize = 4;

/// `POST /control/stop-topics` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StopTopics {
    /// The flow, as `SOURCE->TARGET`.
    pub flow: String,
    /// Source topic names (literal, not regexes).
    pub topics: Vec<String>,
}

/// The answer: which of the topics the flow was replicating.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Stopped {
    pub flow: String,
    pub stopped: Vec<String>,
}

/// `POST /control/resume-topics` body: cut-over topics to replicate again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResumeTopics {
    /// The flow, as `SOURCE->TARGET`.
    pub flow: String,
    /// Source topic names (literal, not regexes).
    pub topics: Vec<String>,
}

/// The answer: which of the topics were cut over and replicate again.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Resumed {
    pub flow: String,
    pub resumed: Vec<String>,
}

/// Why a control request was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The request does not fit the running daemon (`409`).
    #[error("{0}")]
    Refused(String),
    /// A cluster could not record the change, so nothing changed (`503`:
    /// retry once the cluster is back).
    #[error("{0}")]
    Unavailable(String),
}

/// One request and where its answer goes.
#[derive(Debug)]
pub enum ControlRequest {
    StopTopics {
        request: StopTopics,
        reply: oneshot::Sender<Result<Stopped, ControlError>>,
    },
    ResumeTopics {
        request: ResumeTopics,
        reply: oneshot::Sender<Result<Resumed, ControlError>>,
    },
}

/// The server's end of the control channel.
pub type ControlSender = mpsc::Sender<ControlRequest>;
/// The process shell's end.
pub type ControlReceiver = mpsc::Receiver<ControlRequest>;

/// A bounded control channel.
pub fn control_channel() -> (ControlSender, ControlReceiver) {
    mpsc::channel(CONTROL_QUEUE)
}
