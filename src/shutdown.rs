//! The shutdown signal every long-running task takes as an argument.
//!
//! A [`Shutdown`] trigger is owned by whoever started the tasks (the `serve` command, or a test);
//! each task holds a [`ShutdownSignal`] and returns once it fires. Passing the trigger in instead
//! of reading a global lets a test stop exactly the servers it started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// The trigger side: call [`Shutdown::trigger`] once to ask every task to stop. Clones fire the
/// same signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    /// `true` once shutdown has been requested.
    tx: Arc<watch::Sender<bool>>,
}

/// The listening side, cheap to clone into each task.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    /// Mirrors [`Shutdown::tx`].
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A trigger that has not fired yet.
    #[must_use]
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self { tx: Arc::new(tx) }
    }

    /// A new listener for this trigger.
    #[must_use]
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }

    /// Fires the signal; every current and future listener sees it. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    /// Whether shutdown has been requested.
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been requested (at once if it already was). If the trigger
    /// is dropped without firing, that also counts as shutdown: nobody is left to keep us alive.
    pub async fn wait(&mut self) {
        // `wait_for` returns an error only when the sender is gone, which we treat as shutdown.
        let _ = self.rx.wait_for(|fired| *fired).await;
    }
}

/// A store's fatal-fault flag: set once and never cleared, read on every write, and awaitable,
/// so the supervisor that turns a fault into a shutdown waits for it instead of polling.
#[derive(Debug)]
pub(crate) struct FaultLatch {
    /// Read on the write paths: one atomic load.
    set: AtomicBool,
    /// Wakes the waiters.
    tripped: watch::Sender<bool>,
}

impl Default for FaultLatch {
    fn default() -> Self {
        Self {
            set: AtomicBool::new(false),
            tripped: watch::Sender::new(false),
        }
    }
}

impl FaultLatch {
    /// Sets the latch and wakes every [`FaultLatch::wait`].
    pub(crate) fn trip(&self) {
        self.set.store(true, Ordering::Release);
        self.tripped.send_replace(true);
    }

    /// Whether the latch is set.
    pub(crate) fn is_tripped(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Resolves once the latch is set (at once if it already is).
    pub(crate) async fn wait(&self) {
        let mut rx = self.tripped.subscribe();
        // The sender lives in `self`, which outlives this future: `wait_for` cannot fail.
        let _ = rx.wait_for(|tripped| *tripped).await;
    }
}

#[cfg(test)]
mod latch_tests {
    use std::sync::Arc;

    use super::FaultLatch;

    #[tokio::test]
    async fn a_wait_ends_when_the_latch_trips_and_at_once_afterwards() {
        let latch = Arc::new(FaultLatch::default());
        assert!(!latch.is_tripped());
        let waiter = tokio::spawn({
            let latch = latch.clone();
            async move { latch.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "an untripped latch keeps its waiters waiting"
        );
        latch.trip();
        waiter.await.unwrap();
        assert!(latch.is_tripped());
        latch.trip();
        latch.wait().await;
    }
}
