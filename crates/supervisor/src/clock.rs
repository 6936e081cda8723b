//! Wall-clock time in Kafka's unit, and the engine's one rule for a
//! poisoned lock.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as Kafka timestamps count them; 0 if
/// the system clock is set before 1970 (a timestamp, not a reason to fail).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Locks `m`, also after a panic elsewhere poisoned it. The engine's mutexes
/// guard counters, maps and queues that every update leaves consistent, so
/// the data a panicking task left behind is still the truth; refusing it
/// would turn one task's panic into a stop of every flow.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
