use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::error::KafkaError;

/// Result type of the harness.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;

/// Why the harness could not do what a test asked.
///
/// `Debug` prints the same text as `Display`, so that `unwrap()` and tests
/// returning `Result` show a readable message with real line breaks in broker
/// log tails instead of an escaped struct dump.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// The Kafka jars are not installed where the harness looks for them.
    #[error(
        "Apache Kafka is not installed in {}: {detail}. Run `bash tests/brokers/install.sh` \
         (it installs there; set FERRY_KAFKA_HOME to use another directory)",
        home.display()
    )]
    KafkaNotInstalled { home: PathBuf, detail: String },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },

    /// A helper command (keytool, Kafka's StorageTool, ...) failed.
    #[error("{what} failed ({status}); its output:\n{output}")]
    Command {
        what: String,
        status: String,
        output: String,
    },

    /// A broker process exited while the harness needed it running.
    #[error("Kafka broker {broker} exited {phase} ({status}); last lines of its log:\n{log_tail}")]
    BrokerExited {
        broker: i32,
        phase: String,
        status: String,
        log_tail: String,
    },

    /// A started cluster did not answer Metadata requests in time.
    #[error(
        "Kafka cluster {bootstrap} did not become ready within {waited:?}; last client error: \
         {last_error}\n{log_tail}"
    )]
    NotReady {
        bootstrap: String,
        waited: Duration,
        last_error: String,
        log_tail: String,
    },

    /// A Kafka client operation failed.
    #[error("{context}: {source}{}", client_note(.client_error))]
    Kafka {
        context: String,
        /// Boxed: a `KafkaError` is large, and every `Result` carries the
        /// size of its biggest error.
        source: Box<KafkaError>,
        /// The last error librdkafka reported through its error callback,
        /// which often says why (refused connection, failed authentication).
        client_error: Option<String>,
    },

    /// Something did not happen within the time the harness allows.
    #[error("timed out after {waited:?} {what}")]
    Timeout { what: String, waited: Duration },

    /// A process-wide shared cluster failed to start; every test asking for
    /// it gets this copy of the first failure.
    #[error("the shared {which} Kafka cluster could not be started: {message}")]
    SharedCluster {
        which: &'static str,
        message: String,
    },

    /// The harness was called in a way it does not support.
    #[error("{0}")]
    Usage(String),
}

fn client_note(client_error: &Option<String>) -> String {
    match client_error {
        Some(e) => format!(" (last client error: {e})"),
        None => String::new(),
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        HarnessError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        HarnessError::Kafka {
            context: context.into(),
            source: Box::new(source),
            client_error: None,
        }
    }
}

/// Adds a context string to I/O results.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| HarnessError::io(context(), e))
    }
}
