//! The shutdown signal every long-running task takes as an argument.
//!
//! A [`Shutdown`] trigger is owned by whoever started the tasks (the `serve` command, or a test);
//! each task holds a [`ShutdownSignal`] and returns once it fires. Passing the trigger in instead
//! of reading a global lets a test stop exactly the servers it started.

use std::sync::Arc;

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
