//! A read's time limit: MongoDB's `maxTimeMS` on `find`, `count` and `aggregate`, and for a
//! read that passes none the store's `default_max_time_ms` (MongoDB 8.0's `defaultMaxTimeMS`).
//! Past it the read fails with code 50 `MaxTimeMSExpired`, "operation exceeded time limit",
//! and returns nothing. 0 means no limit, as in MongoDB. `History::with_time_limit` runs any
//! calls under such a limit; the Data API runs its writes so (a write stopped by it commits
//! nothing).
//!
//! Without it one request could hold a thread for hours: `$reduce` copies its value into every
//! step, so one that grows it (`$concatArrays`, `$concat`) does work quadratic in its input's
//! length, and a `$map` inside a `$map` over the same array does as many steps as the
//! array's length squared — with an array of a million elements in a 16 MiB document, either
//! is about 10¹² operations, inside every limit on sizes.
//!
//! The limit is held per thread while the read runs ([`run`]): a read runs on the calling
//! thread from start to end, its `$lookup`/`$unionWith` sub-pipelines and `$facet` branches
//! included, so the loops that can run long check it ([`check`]) without it being passed
//! through every stage and expression: each document a read fetches or scans, each document an
//! expression is evaluated against, each step of `$map`, `$filter` and `$reduce`, each
//! document a `$graphLookup` round or a `$lookup` equality tries. A change stream runs its
//! pipeline under the store's default limit, once per event. A check
//! reads the injected clock's monotonic time once every [`CHECK_INTERVAL`] calls; a thread
//! with no read running pays one thread-local lookup.

use std::cell::RefCell;

use super::error::{Error, Result};
use crate::clock::SharedClock;

/// Largest `maxTimeMS` (and `default_max_time_ms`) accepted: MongoDB's, a non-negative
/// 32-bit integer (about 24.8 days).
pub const MAX_TIME_MS_MAX: u64 = i32::MAX as u64;

/// Checks between two readings of the clock.
const CHECK_INTERVAL: u32 = 64;

/// The limit of the read running on this thread.
struct Active {
    clock: SharedClock,
    /// Monotonic nanoseconds at which the read expires.
    deadline_ns: u64,
    /// Checks left before the next clock reading.
    countdown: u32,
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// Restores the limit that was active before [`run`] set its own, also when the read unwinds.
struct Restore(Option<Active>);

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.0.take();
        ACTIVE.with(|a| *a.borrow_mut() = outer);
    }
}

/// Runs the read `f` under a limit of `max_time_ms` milliseconds on `clock`'s monotonic time
/// (0: no limit of its own). A read run inside another keeps the earlier of the two
/// deadlines (an aggregation runs its own reads with none of their own).
///
/// # Errors
/// Whatever `f` returns; [`Error::MaxTimeExpired`] from a [`check`] inside it past the limit.
pub(crate) fn run<T>(
    clock: &SharedClock,
    max_time_ms: u64,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if max_time_ms == 0 {
        return f();
    }
    let deadline_ns = clock
        .monotonic_ns()
        .saturating_add(max_time_ms.saturating_mul(1_000_000));
    let outer = ACTIVE.with(|a| a.borrow_mut().take());
    let deadline_ns = outer
        .as_ref()
        .map_or(deadline_ns, |o| o.deadline_ns.min(deadline_ns));
    let _restore = Restore(outer);
    ACTIVE.with(|a| {
        *a.borrow_mut() = Some(Active {
            clock: clock.clone(),
            deadline_ns,
            countdown: CHECK_INTERVAL,
        });
    });
    f()
}

/// Fails once the read running on this thread is past its limit; reads the clock once every
/// [`CHECK_INTERVAL`] calls.
///
/// # Errors
/// [`Error::MaxTimeExpired`].
pub(crate) fn check() -> Result<()> {
    ACTIVE.with(|a| {
        let mut a = a.borrow_mut();
        let Some(active) = a.as_mut() else {
            return Ok(());
        };
        active.countdown = active.countdown.saturating_sub(1);
        if active.countdown > 0 {
            return Ok(());
        }
        if active.clock.monotonic_ns() >= active.deadline_ns {
            // Every later check of this read fails too.
            active.countdown = 1;
            return Err(Error::MaxTimeExpired);
        }
        active.countdown = CHECK_INTERVAL;
        Ok(())
    })
}

/// Reads `maxTimeMS` as MongoDB's `parseMaxTimeMS` does: a number (a double must be
/// integral) in `0..=`[`MAX_TIME_MS_MAX`].
///
/// # Errors
/// [`Error::BadValue`] with MongoDB's message.
pub fn parse_max_time_ms(v: &bson::Bson) -> Result<u64> {
    let n = match v {
        bson::Bson::Int32(n) => f64::from(*n),
        #[expect(
            clippy::cast_precision_loss,
            reason = "only compared with the range, which a double holds exactly"
        )]
        bson::Bson::Int64(n) => *n as f64,
        bson::Bson::Double(d) => *d,
        bson::Bson::Decimal128(d) => d.to_string().parse::<f64>().unwrap_or(f64::NAN),
        _ => return Err(Error::bad("maxTimeMS must be a number")),
    };
    // `!(..)` also refuses NaN.
    #[expect(
        clippy::cast_precision_loss,
        reason = "MAX_TIME_MS_MAX is a 32-bit integer, exact in a double"
    )]
    if !(0.0..=MAX_TIME_MS_MAX as f64).contains(&n) {
        return Err(Error::bad("maxTimeMS is out of range"));
    }
    if n.fract() != 0.0 {
        return Err(Error::bad("maxTimeMS has non-integral value"));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an integral value in 0..=i32::MAX"
    )]
    Ok(n as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use std::time::Duration;

    use bson::Bson;

    use super::*;
    use crate::clock::ManualClock;

    /// Calls [`check`] `n` times, stopping at the first failure.
    fn spin(n: u32) -> Result<()> {
        (0..n).try_for_each(|_| check())
    }

    #[test]
    fn a_read_fails_at_the_first_clock_reading_past_its_limit_and_from_then_on() {
        let clock = ManualClock::shared(1_000);
        let shared: SharedClock = clock.clone();
        let r: Result<()> = run(&shared, 5, || {
            // Before the limit, any number of checks pass.
            spin(10 * CHECK_INTERVAL)?;
            clock.advance(Duration::from_micros(4_999));
            spin(10 * CHECK_INTERVAL)?;
            clock.advance(Duration::from_micros(1));
            // The next reading is at most CHECK_INTERVAL checks away, and every check after
            // it fails.
            let e = spin(CHECK_INTERVAL).unwrap_err();
            assert!(matches!(e, Error::MaxTimeExpired));
            assert!(matches!(check(), Err(Error::MaxTimeExpired)));
            Err(e)
        });
        assert!(matches!(r, Err(Error::MaxTimeExpired)));
        // The limit ends with the read.
        clock.advance(Duration::from_secs(60));
        spin(10 * CHECK_INTERVAL).unwrap();
    }

    #[test]
    fn no_limit_and_nested_reads_keep_the_earlier_deadline() {
        let clock = ManualClock::shared(1_000);
        let shared: SharedClock = clock.clone();
        run(&shared, 0, || {
            clock.advance(Duration::from_secs(3600));
            spin(10 * CHECK_INTERVAL)
        })
        .unwrap();
        // An inner read with a longer limit still ends at the outer deadline.
        run(&shared, 10, || {
            let inner = run(&shared, 1_000, || {
                clock.advance(Duration::from_millis(10));
                spin(CHECK_INTERVAL)
            });
            assert!(matches!(inner, Err(Error::MaxTimeExpired)));
            // Back in the outer read, its own deadline has passed as well.
            assert!(matches!(spin(CHECK_INTERVAL), Err(Error::MaxTimeExpired)));
            Ok(())
        })
        .unwrap();
        // An inner read with a shorter limit ends first; the outer read goes on under its own.
        run(&shared, 1_000, || {
            let inner = run(&shared, 5, || {
                clock.advance(Duration::from_millis(5));
                spin(CHECK_INTERVAL)
            });
            assert!(matches!(inner, Err(Error::MaxTimeExpired)));
            spin(10 * CHECK_INTERVAL)
        })
        .unwrap();
    }

    #[test]
    fn max_time_ms_is_parsed_as_mongodb_parses_it() {
        let max = i32::MAX;
        assert_eq!(parse_max_time_ms(&Bson::Int32(0)).unwrap(), 0);
        assert_eq!(
            parse_max_time_ms(&Bson::Int32(max)).unwrap(),
            MAX_TIME_MS_MAX
        );
        assert_eq!(
            parse_max_time_ms(&Bson::Int64(i64::from(max))).unwrap(),
            MAX_TIME_MS_MAX
        );
        assert_eq!(parse_max_time_ms(&Bson::Double(1500.0)).unwrap(), 1500);
        let bad = |v: Bson| parse_max_time_ms(&v).unwrap_err().to_string();
        assert_eq!(
            bad(Bson::Int64(i64::from(max) + 1)),
            "maxTimeMS is out of range"
        );
        assert_eq!(bad(Bson::Int32(-1)), "maxTimeMS is out of range");
        assert_eq!(bad(Bson::Double(f64::NAN)), "maxTimeMS is out of range");
        assert_eq!(bad(Bson::Double(1.5)), "maxTimeMS has non-integral value");
        assert_eq!(bad(Bson::String("5".into())), "maxTimeMS must be a number");
    }
}
