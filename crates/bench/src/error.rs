//! One error type for the whole harness: a message that says what failed and
//! why, built up with [`Context`] as it travels outwards.

use std::fmt::Display;

/// What went wrong, as a sentence for the operator running the benchmark.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

impl BenchError {
    pub fn new(message: impl Into<String>) -> Self {
        BenchError(message.into())
    }
}

macro_rules! from_display {
    ($($source:ty),* $(,)?) => {
        $(impl From<$source> for BenchError {
            fn from(e: $source) -> Self {
                BenchError(e.to_string())
            }
        })*
    };
}

from_display!(
    std::io::Error,
    ferry_testkit::HarnessError,
    rdkafka::error::KafkaError,
    serde_json::Error,
    ferry_checkpoint::OffsetMapError,
    ferry_checkpoint::DecodeError,
);

/// Prefixes an error with what was being done.
pub trait Context<T> {
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| BenchError(format!("{}: {e}", what().into())))
    }
}

/// Returns early with a formatted [`BenchError`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::BenchError(format!($($arg)*)))
    };
}
