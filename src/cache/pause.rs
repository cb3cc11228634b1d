//! CLIENT PAUSE and CLIENT UNPAUSE, as Redis 7.0.15's `pauseClients`: until a wall-clock
//! deadline, RESP clients' commands wait before they run — every command (ALL), or only those
//! that may write or replicate (WRITE: Redis's `write` and `may_replicate` flags, a script
//! unless it declares `no-writes`, an EXEC whose queue holds such a command). A command with
//! a syntax error (unknown, wrong arity) is answered at once. While paused the active expiry
//! cycle stops, a read-only command other than a script sees an expired key as missing
//! without removing it (a script's commands may write, which needs the key gone), and a RESP
//! client's command evicts nothing over `maxmemory` (`Cache::evict_for_client`); a second
//! pause keeps the later deadline and the stronger mode; UNPAUSE ends it at once.
//!
//! The state is one atomic word (deadline in the low 63 bits, ALL in the top bit): reading it
//! is the only cost a command pays while nothing is paused. Writes made outside RESP (the
//! pipeline's flows, the HTTP API) are not held.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

const ALL_BIT: u64 = 1 << 63;

/// The pause.
#[derive(Debug, Default)]
pub(crate) struct Pause {
    /// Deadline (wall-clock ms, 0: none) with [`ALL_BIT`] for ALL.
    state: AtomicU64,
    /// Woken when a pause ends early or changes.
    changed: Notify,
}

/// What a pause holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// Every command.
    All,
    /// Commands that may write or replicate.
    Writes,
}

impl Pause {
    /// Pauses until wall-clock `until_ms` (WRITE, or ALL with `all`), keeping a pause in force
    /// when it ends later or is stronger.
    pub(crate) fn start(&self, until_ms: u64, all: bool, now_ms: u64) {
        let until_ms = until_ms.min(!ALL_BIT);
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                let (old_until, old_all) = (s & !ALL_BIT, s & ALL_BIT != 0);
                let live = old_until > now_ms;
                let until = if live {
                    old_until.max(until_ms)
                } else {
                    until_ms
                };
                let all = all || (live && old_all);
                Some(until | if all { ALL_BIT } else { 0 })
            });
        self.changed.notify_waiters();
    }

    /// Ends any pause.
    pub(crate) fn end(&self) {
        self.state.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// What is held at wall-clock `now_ms`, and until when (`None`: nothing).
    pub(crate) fn held(&self, now_ms: u64) -> Option<(Held, u64)> {
        let s = self.state.load(Ordering::Acquire);
        let until = s & !ALL_BIT;
        if until <= now_ms {
            return None;
        }
        let held = if s & ALL_BIT != 0 {
            Held::All
        } else {
            Held::Writes
        };
        Some((held, until))
    }

    /// Returns when a pause starts, changes or ends (register before checking the state).
    pub(crate) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_until_its_deadline_and_unpause_ends_it() {
        let p = Pause::default();
        assert_eq!(p.held(0), None);
        p.start(100, false, 0);
        assert_eq!(p.held(99), Some((Held::Writes, 100)));
        assert_eq!(p.held(100), None);
        p.start(200, true, 0);
        assert_eq!(p.held(150), Some((Held::All, 200)));
        p.end();
        assert_eq!(p.held(150), None);
    }

    #[test]
    fn a_second_pause_keeps_the_later_deadline_and_the_stronger_mode() {
        let p = Pause::default();
        p.start(500, true, 0);
        p.start(100, false, 0);
        assert_eq!(p.held(400), Some((Held::All, 500)));
        // Once the first has ended, a new one stands on its own.
        p.start(900, false, 600);
        assert_eq!(p.held(700), Some((Held::Writes, 900)));
    }
}
