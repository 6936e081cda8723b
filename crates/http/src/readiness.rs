//! The readiness latch.
//!
//! On shutdown Ferry must tell load balancers and Kubernetes it is going away
//! *before* it stops fetching, so nothing routes to (or waits on) a process
//! that is draining. Once draining, it never becomes ready again: a drain is
//! not undone, the process exits.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::EngineView;

/// A one-way draining latch, shared by the process shell (which trips it on
/// a signal) and the HTTP server (which reports it). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// Set once by [`Readiness::mark_draining`], never cleared.
    draining: Arc<AtomicBool>,
}

/// Why `/health/ready` answers 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// Shutdown has begun.
    Draining,
    /// A flow is not running or one of its clusters is unreachable.
    Engine,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotReady::Draining => "draining",
            NotReady::Engine => "not every flow is running with its clusters reachable",
        })
    }
}

impl Readiness {
    /// A latch that is not draining.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ready becomes false, for good. Idempotent.
    pub fn mark_draining(&self) {
        // Release pairs with the Acquire in `is_draining`; nothing else is
        // published through this flag, so this is only for clarity.
        self.draining.store(true, Ordering::Release);
    }

    /// True once [`Readiness::mark_draining`] has been called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// `Ok` when not draining and the engine says it is ready. The latch is
    /// checked first so a draining process never even asks the engine.
    pub fn check(&self, view: &dyn EngineView) -> Result<(), NotReady> {
        if self.is_draining() {
            Err(NotReady::Draining)
        } else if !view.ready() {
            Err(NotReady::Engine)
        } else {
            Ok(())
        }
    }

    /// `!draining && view.ready()`.
    pub fn is_ready(&self, view: &dyn EngineView) -> bool {
        self.check(view).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PartitionSample, TopicSample};

    struct Ready(bool);
    impl EngineView for Ready {
        fn topics(&self) -> Vec<TopicSample> {
            Vec::new()
        }
        fn partitions(&self) -> Vec<PartitionSample> {
            Vec::new()
        }
        fn ready(&self) -> bool {
            self.0
        }
        fn status(&self) -> crate::EngineDocument {
            crate::EngineDocument::default()
        }
    }

    #[test]
    fn draining_is_a_latch_shared_by_clones() {
        let readiness = Readiness::new();
        let shell = readiness.clone();
        assert_eq!(readiness.check(&Ready(true)), Ok(()));
        assert_eq!(readiness.check(&Ready(false)), Err(NotReady::Engine));
        shell.mark_draining();
        shell.mark_draining();
        assert_eq!(readiness.check(&Ready(true)), Err(NotReady::Draining));
        assert!(!readiness.is_ready(&Ready(true)));
    }
}
