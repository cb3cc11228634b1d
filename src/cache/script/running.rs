//! The script running now, as other clients see it.
//!
//! A script holds the keyspace gate and the scripting lock while it runs, so nothing that needs
//! either can answer meanwhile. [`Running`] is what can: SCRIPT KILL, FUNCTION KILL and FUNCTION
//! STATS read and set it without those locks, and the RESP server reads it to hold other
//! clients' commands back while a script runs, then, once the script has run past
//! `busy-reply-threshold`, to answer them with Redis's BUSY errors (as Redis does from inside
//! the script's hook). The script's own hook ([`Running::check`]) marks it busy and stops it
//! when it was killed or ran past [`SCRIPT_RUN_MS_MAX`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use super::Calling;
use crate::cache::resp::frame::Frame;

/// How long any script may run. Redis lets a script run until SCRIPT KILL (or, once it has
/// written, SHUTDOWN NOSAVE); here the pipeline's flows and the HTTP API share the cache with
/// the RESP clients, and a script nobody kills would stop them all, so past this it is stopped
/// with an error, the writes it made before kept.
pub const SCRIPT_RUN_MS_MAX: u64 = 60_000;

/// Redis's reply to other commands while an EVAL script runs past the threshold.
pub(crate) const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The same while a function runs.
pub(crate) const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";
const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
/// The error a killed script stops with (Redis's text, for FUNCTION KILL as well).
const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// What FUNCTION STATS shows of a running function.
#[derive(Debug)]
struct Current {
    calling: Calling,
    /// A function's name (FCALL's first argument; empty for EVAL).
    name: Bytes,
    /// The command that runs a function (empty for EVAL).
    command: Vec<Bytes>,
}

/// The running script's state; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Running {
    /// Script commands the RESP server handed to another thread and has not had back: until
    /// they return, its other clients' commands wait (or get BUSY once [`Running::busy`]).
    handed_off: AtomicUsize,
    /// The script that runs (set under the keyspace gate: at most one at a time).
    current: Mutex<Option<Current>>,
    /// Monotonic time the current script started.
    started_ns: AtomicU64,
    /// It ran past `busy-reply-threshold`.
    busy: AtomicBool,
    /// It ran a write command (SCRIPT KILL refuses it).
    wrote: AtomicBool,
    /// SCRIPT KILL or FUNCTION KILL asked it to stop.
    killed: AtomicBool,
    /// Fired when the script turns busy or ends and when a handed-off command returns.
    changed: Notify,
}

impl Running {
    fn current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A script run by `command` starts at monotonic time `now_ns`.
    pub(crate) fn begin(&self, calling: Calling, command: &[&[u8]], now_ns: u64) {
        self.busy.store(false, Ordering::SeqCst);
        self.wrote.store(false, Ordering::SeqCst);
        self.killed.store(false, Ordering::SeqCst);
        self.started_ns.store(now_ns, Ordering::SeqCst);
        // Only FUNCTION STATS shows the command, and only a function's.
        let (name, command) = match calling {
            Calling::Eval => (Bytes::new(), Vec::new()),
            Calling::Function => (
                Bytes::copy_from_slice(command.get(1).copied().unwrap_or_default()),
                command.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
            ),
        };
        *self.current() = Some(Current {
            calling,
            name,
            command,
        });
    }

    /// The script ended.
    pub(crate) fn end(&self) {
        *self.current() = None;
        self.busy.store(false, Ordering::SeqCst);
        self.killed.store(false, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// The script ran a write command.
    pub(crate) fn note_write(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// Called by the script's hook at monotonic time `now_ns`: marks it busy once it has run
    /// `threshold_ms`, and returns the error that stops it when it was killed or ran past
    /// [`SCRIPT_RUN_MS_MAX`].
    pub(crate) fn check(&self, now_ns: u64, threshold_ms: u64) -> Option<String> {
        let ran_ms = now_ns.saturating_sub(self.started_ns.load(Ordering::Relaxed)) / 1_000_000;
        if ran_ms >= threshold_ms && !self.busy.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                ran_ms,
                "slow script detected: still in execution; SCRIPT KILL or FUNCTION KILL stops it"
            );
            self.changed.notify_waiters();
        }
        if self.killed.load(Ordering::SeqCst) {
            return Some(KILLED.to_owned());
        }
        (ran_ms >= SCRIPT_RUN_MS_MAX).then(|| {
            format!(
                "Script stopped after {SCRIPT_RUN_MS_MAX} ms; the writes it made before stopping are kept"
            )
        })
    }

    /// The RESP server hands a script command to another thread.
    pub(crate) fn hand_off(&self) {
        self.handed_off.fetch_add(1, Ordering::SeqCst);
    }

    /// A handed-off command returned.
    pub(crate) fn handed_back(&self) {
        self.handed_off.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether a RESP command must wait: a handed-off script has not returned and is not (yet)
    /// busy.
    pub(crate) fn must_wait(&self) -> bool {
        self.handed_off.load(Ordering::SeqCst) > 0 && !self.busy.load(Ordering::SeqCst)
    }

    /// Waits until [`Running::must_wait`] turns false.
    pub(crate) async fn wait_turn(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.must_wait() {
                return;
            }
            changed.await;
        }
    }

    /// The BUSY error other commands get while a script runs past the threshold.
    pub(crate) fn busy_error(&self) -> Option<Frame> {
        if !self.busy.load(Ordering::SeqCst) {
            return None;
        }
        let calling = self.current().as_ref().map(|c| c.calling)?;
        Some(Frame::error(busy_text(calling)))
    }

    /// SCRIPT KILL (`calling` Eval) or FUNCTION KILL (Function), and FUNCTION STATS while a
    /// function runs: answered here, without the locks the script holds. `None` when no
    /// script runs (the command then runs as usual). `now_ns` is the monotonic time now.
    pub(crate) fn answer(
        &self,
        calling: Calling,
        stats: bool,
        engines: Frame,
        now_ns: u64,
    ) -> Option<Frame> {
        let current = self.current();
        let run = current.as_ref()?;
        if stats {
            if run.calling == Calling::Eval {
                return Some(Frame::error(BUSY_EVAL));
            }
            let ms = now_ns.saturating_sub(self.started_ns.load(Ordering::Relaxed)) / 1_000_000;
            return Some(Frame::Map(vec![
                (
                    Frame::bulk(b"running_script"),
                    Frame::Map(vec![
                        (Frame::bulk(b"name"), Frame::Bulk(run.name.clone())),
                        (
                            Frame::bulk(b"command"),
                            Frame::Array(run.command.iter().cloned().map(Frame::Bulk).collect()),
                        ),
                        (
                            Frame::bulk(b"duration_ms"),
                            Frame::Integer(i64::try_from(ms).unwrap_or(i64::MAX)),
                        ),
                    ]),
                ),
                (Frame::bulk(b"engines"), engines),
            ]));
        }
        Some(if self.wrote.load(Ordering::SeqCst) {
            Frame::error(UNKILLABLE)
        } else if run.calling != calling {
            Frame::error(busy_text(run.calling))
        } else {
            self.killed.store(true, Ordering::SeqCst);
            Frame::ok()
        })
    }

    /// SCRIPT KILL or FUNCTION KILL when no script runs.
    pub(crate) fn not_busy() -> Frame {
        Frame::error(NOTBUSY)
    }
}

fn busy_text(calling: Calling) -> &'static str {
    match calling {
        Calling::Eval => BUSY_EVAL,
        Calling::Function => BUSY_FUNCTION,
    }
}
