//! Watchers (the Laravel watcher of the reference system): history's change feed in, channel
//! events out. One task reads every change event once, in oplog order, and hands it to each
//! configured [`Watcher`], which publishes to the hub (and so to SSE and Pusher subscribers).
//!
//! The stream reads the durable oplog, so a slow hub never loses an event here; a stream that
//! falls behind oplog retention (286) is reopened at the latest event and says so in the log.

use std::sync::Arc;

use bson::Bson;

use crate::history::{FullDocument, History, WatchOptions, WatchScope};
use crate::realtime::{Hub, Watcher};
use crate::shutdown::ShutdownSignal;

/// Consecutive stream failures after which the task gives up (each failure reopens the stream).
const REOPEN_ATTEMPTS_MAX: u32 = 5;

/// Runs until `shutdown` fires.
pub(crate) async fn run(
    history: History,
    hub: Arc<Hub>,
    watchers: Vec<Watcher>,
    mut shutdown: ShutdownSignal,
) {
    if watchers.is_empty() {
        return;
    }
    let options = || WatchOptions {
        full_document: FullDocument::UpdateLookup,
        ..WatchOptions::default()
    };
    let mut failures = 0u32;
    let mut stream = match history.watch(WatchScope::All, options()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::error!(error = %e, "watchers: cannot open the change stream; no channel events will be published");
            return;
        }
    };
    loop {
        let next = tokio::select! {
            () = shutdown.wait() => return,
            next = stream.next() => next,
        };
        match next {
            Ok(Some(event)) => {
                failures = 0;
                let change = Bson::Document(event).into_relaxed_extjson();
                for watcher in &watchers {
                    if let Err(e) = watcher.publish(&hub, &change) {
                        tracing::warn!(channel = watcher.channel(), error = %e, "watcher could not publish a change");
                    }
                }
                // IMPORTANT: a committed batch puts hundreds of events in the feed at once, and
                // reading them never waits. Without yielding, this task would keep its worker
                // through the whole burst while the subscribers it just woke sit in that
                // worker's LIFO slot (which other workers cannot steal) and fall behind the
                // hub's buffer, ending in `resync`. Spending the cooperative budget yields
                // every so often.
                tokio::task::consume_budget().await;
            }
            Ok(None) => return,
            Err(e) => {
                failures += 1;
                if failures > REOPEN_ATTEMPTS_MAX {
                    tracing::error!(error = %e, "watchers: change stream failed {REOPEN_ATTEMPTS_MAX} times in a row; stopping");
                    return;
                }
                tracing::warn!(error = %e, "watchers: change stream failed; reopening at the latest event");
                match history.watch(WatchScope::All, options()) {
                    Ok(s) => stream = s,
                    Err(e) => {
                        tracing::warn!(error = %e, "watchers: reopening the change stream failed")
                    }
                }
            }
        }
    }
}
