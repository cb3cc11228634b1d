//! Time, injected: the [`Clock`] trait and its two implementations.
//!
//! This is the only file in the crate that reads the operating system's clocks; `clippy.toml`
//! bans `SystemTime::now` and `Instant::now` everywhere else. Engines take an `Arc<dyn Clock>` in
//! their constructors, so tests drive TTLs, retention and timeouts with a [`ManualClock`]
//! instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch (wall clock; may jump). Used for TTLs, `EXPIREAT`,
    /// record timestamps and retention by age.
    fn now_ms(&self) -> u64;

    /// A monotonic reading in nanoseconds from an arbitrary origin. Used for timeouts and
    /// latency measurement; never goes backwards.
    fn monotonic_ns(&self) -> u64;
}

/// A shared, dynamically dispatched clock, as engines hold it.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clocks.
#[derive(Debug, Clone)]
pub struct SystemClock {
    /// Origin of [`Clock::monotonic_ns`].
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is now.
    #[must_use]
    pub fn new() -> Self {
        #[expect(
            clippy::disallowed_methods,
            reason = "clock.rs is the one place allowed to read the OS clock"
        )]
        let origin = Instant::now();
        Self { origin }
    }

    /// A system clock behind an `Arc`, ready to hand to engines.
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        #[expect(
            clippy::disallowed_methods,
            reason = "clock.rs is the one place allowed to read the OS clock"
        )]
        let now = SystemTime::now();
        // A clock set before 1970 reads as the epoch rather than failing every caller.
        now.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn monotonic_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when a test tells it to.
///
/// Both readings advance together: [`ManualClock::advance`] adds the same duration to the wall
/// clock and to the monotonic reading.
///
/// ```
/// use std::time::Duration;
/// use streamcache::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.now_ms(), 1_250);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    /// Wall-clock milliseconds since the epoch.
    now_ms: AtomicU64,
    /// Monotonic nanoseconds.
    monotonic_ns: AtomicU64,
}

impl ManualClock {
    /// A manual clock reading `now_ms` on the wall clock and 0 on the monotonic one.
    #[must_use]
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
            monotonic_ns: AtomicU64::new(0),
        }
    }

    /// A manual clock behind an `Arc`; keep one clone to advance it and hand the other out.
    #[must_use]
    pub fn shared(now_ms: u64) -> Arc<Self> {
        Arc::new(Self::new(now_ms))
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
        self.monotonic_ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// Sets the wall clock to `now_ms` (it may go backwards, as a real wall clock can); the
    /// monotonic reading is unchanged.
    pub fn set_ms(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn monotonic_ns(&self) -> u64 {
        self.monotonic_ns.load(Ordering::SeqCst)
    }
}
