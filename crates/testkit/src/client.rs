//! A librdkafka client context shared by the harness's short-lived clients.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use crate::error::HarnessError;

/// Remembers the last error librdkafka reported, through its error callback
/// or as an error or warning log line.
///
/// A failed or timed-out request only says *that* it failed; these say why
/// (connection refused, TLS handshake failed, authentication failed), which is
/// what a failing test's message should show. rdkafka delivers both as events
/// that only polling serves, so a client that does not poll on its own must
/// go through [`consumer_failure`].
#[derive(Default)]
pub(crate) struct ErrorCapture {
    last: Mutex<Option<String>>,
}

impl ErrorCapture {
    pub(crate) fn last(&self) -> Option<String> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A [`HarnessError::Kafka`] carrying the last reported client error.
    pub(crate) fn fail(&self, context: impl Into<String>, source: KafkaError) -> HarnessError {
        HarnessError::Kafka {
            context: context.into(),
            source: Box::new(source),
            client_error: self.last(),
        }
    }
}

impl ErrorCapture {
    fn remember(&self, what: String) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(what);
    }
}

impl ClientContext for ErrorCapture {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if level as i32 <= RDKafkaLogLevel::Warning as i32 {
            self.remember(format!("{facility}: {message}"));
        }
        tracing::debug!(target: "librdkafka", ?level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.remember(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for ErrorCapture {}

/// Builds the error for a failed request of a metadata/consumer client,
/// after serving its queued events so that the reason has reached the
/// context.
pub(crate) fn consumer_failure(
    consumer: &BaseConsumer<ErrorCapture>,
    context: impl Into<String>,
    source: KafkaError,
) -> HarnessError {
    // Each poll returns at the first error event; a few rounds get past them.
    for _ in 0..16 {
        if consumer.poll(Duration::ZERO).is_none() {
            break;
        }
    }
    consumer.context().fail(context, source)
}
