//! Requests from Ferry's own commands to a running daemon: today only
//! `ferry cutover`'s last step, "stop replicating these topics".
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

/// One request and where its answer goes (`Err`: why it was refused).
#[derive(Debug)]
pub struct ControlRequest {
    pub stop: StopTopics,
    pub reply: oneshot::Sender<Result<Stopped, String>>,
}

/// The server's end of the control channel.
pub type ControlSender = mpsc::Sender<ControlRequest>;
/// The process shell's end.
pub type ControlReceiver = mpsc::Receiver<ControlRequest>;

/// A bounded control channel.
pub fn control_channel() -> (ControlSender, ControlReceiver) {
    mpsc::channel(CONTROL_QUEUE)
}
