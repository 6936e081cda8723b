//! A flow's side tasks that work on what the latest topic discovery found
//! (ACL sync, deletion propagation): the flow hands each new scope over a
//! watch channel, scopes sent while the task works collapse into the
//! latest, and the task stops, even mid-work, at the flow's drain. Records
//! keep flowing whatever such a task does.

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// A running side task, as the flow sees it.
pub(super) struct SideTask<S> {
    /// The latest scope.
    scope: watch::Sender<S>,
    /// Stops the task.
    cancel: CancellationToken,
}

impl<S: Send + Sync + 'static> SideTask<S> {
    /// Hands `scope` to the task in `slot`, starting it on first use with
    /// `start` (given the scopes and its cancellation), under `tasks` and a
    /// child of `cancel`.
    pub fn hand<F>(
        slot: &mut Option<Self>,
        (tasks, cancel): (&TaskTracker, &CancellationToken),
        scope: S,
        span: tracing::Span,
        start: impl FnOnce(watch::Receiver<S>, CancellationToken) -> F,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match slot {
            Some(task) => {
                task.scope.send_replace(scope);
            }
            None => {
                let (tx, rx) = watch::channel(scope);
                let token = cancel.child_token();
                tasks.spawn(start(rx, token.clone()).instrument(span));
                *slot = Some(SideTask {
                    scope: tx,
                    cancel: token,
                });
            }
        }
    }

    /// Stops the task, even mid-work.
    pub fn stop(self) {
        self.cancel.cancel();
    }
}

/// The scopes a side task receives: the current one first, then each new
/// one, until the task is cancelled or the flow is gone.
pub(super) struct Scopes<S> {
    rx: watch::Receiver<S>,
    cancel: CancellationToken,
    started: bool,
}

impl<S: Clone> Scopes<S> {
    pub fn new(rx: watch::Receiver<S>, cancel: CancellationToken) -> Self {
        Scopes {
            rx,
            cancel,
            started: false,
        }
    }

    /// The next scope to work on; `None` once cancelled or closed.
    pub async fn next(&mut self) -> Option<S> {
        if self.started {
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                changed = self.rx.changed() => changed.ok()?,
            }
        }
        self.started = true;
        Some(self.rx.borrow_and_update().clone())
    }

    /// Runs `work` unless the task is cancelled first (then `None`).
    pub async fn unless_cancelled<F: std::future::Future>(&self, work: F) -> Option<F::Output> {
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            out = work => Some(out),
        }
    }
}
