//! The time zone of a date expression, as MongoDB's `TimeZone` (`date_time_support.cpp`): UTC,
//! a fixed offset, or an IANA zone from the tz database bundled into the binary (jiff's
//! `tzdb-bundle-always`, so no host zoneinfo is read). Also the two conversions every date
//! operator is built from: a UTC instant to the local wall clock, and a local wall-clock time
//! back to an instant the way timelib (MongoDB's date library, 2022.x) resolves one that falls
//! in a DST gap or fold.
//!
//! Names are looked up as MongoDB does: case-sensitively among the database's names, `UTC`
//! being the UTC zone itself and every other name (`Etc/UTC`, `GMT` …) an IANA zone. A lookup
//! costs a binary search whatever the name's length, so names need no length limit; the last
//! name looked up on a thread is kept, so a constant `timezone` operand is looked up once per
//! thread rather than once per document.

use std::cell::Cell;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A time zone.
#[derive(Debug, Clone)]
pub(super) enum Zone {
    /// UTC (offset 0) or a fixed offset, in seconds east of UTC.
    Fixed(i64),
    /// An IANA zone.
    Named(TimeZone),
}

thread_local! {
    /// The last IANA name looked up on this thread and its zone.
    static LAST_NAMED: Cell<Option<(String, TimeZone)>> = const { Cell::new(None) };
}

/// 400 Gregorian years in seconds: the calendar, and so a zone's rule for future years,
/// repeats with this period.
const CYCLE_SECONDS: i64 = 146_097 * 86_400;

/// What a zone says of one instant (timelib's `timelib_get_time_zone_offset_info`).
#[derive(Debug, Clone, Copy)]
struct Period {
    /// Seconds east of UTC.
    offset: i64,
    /// Whether the offset is daylight saving time.
    dst: bool,
    /// When the period holding the instant began (seconds since the epoch), `None` before
    /// the zone's first transition.
    since: Option<i64>,
}

impl Zone {
    /// UTC.
    pub(super) const UTC: Zone = Zone::Fixed(0);

    /// The zone called `name`: `UTC`, a fixed offset (`±hh`, `±hhmm`, `±hh:mm`) or an IANA
    /// name, case-sensitively (MongoDB's `TimeZoneDatabase::getTimeZone`).
    pub(super) fn named(name: &str) -> Option<Zone> {
        if name == "UTC" {
            return Some(Zone::UTC);
        }
        if let Some(seconds) = parse_offset(name) {
            return Some(Zone::Fixed(seconds));
        }
        let cached = LAST_NAMED.with(|last| {
            let entry = last.take();
            let hit = entry
                .as_ref()
                .filter(|(n, _)| n == name)
                .map(|(_, tz)| tz.clone());
            last.set(entry);
            hit
        });
        if let Some(tz) = cached {
            return Some(Zone::Named(tz));
        }
        let tz = jiff::tz::db().get(name).ok()?;
        // jiff ignores case (and knows `Etc/Unknown`, which has no IANA name); MongoDB's map
        // holds the database's names as they are spelled.
        if tz.iana_name() != Some(name) {
            return None;
        }
        LAST_NAMED.with(|last| last.set(Some((name.to_owned(), tz.clone()))));
        Some(Zone::Named(tz))
    }

    /// Whether this is MongoDB's UTC zone (`UTC`, no zone, or a zero offset), which
    /// `$dateToString` writes with a `Z` and `$dateFromString` lets a string's own offset
    /// override.
    pub(super) fn is_utc(&self) -> bool {
        matches!(self, Zone::Fixed(0))
    }

    /// The offset in seconds in effect at `ms` (MongoDB's `utcOffset`, for `%z` and `%Z`; the
    /// instant taken in whole seconds toward zero, as there).
    pub(super) fn utc_offset(&self, ms: i64) -> i64 {
        match self {
            Zone::Fixed(seconds) => *seconds,
            Zone::Named(tz) => offset_at(tz, ms / 1000),
        }
    }

    /// The offset in seconds of the local time of `ms` (timelib's `unixtime2local`, which
    /// takes the instant's whole seconds toward the past): the local time is `ms` plus it.
    pub(super) fn local_offset(&self, ms: i64) -> i64 {
        match self {
            Zone::Fixed(seconds) => *seconds,
            Zone::Named(tz) => offset_at(tz, ms.div_euclid(1000)),
        }
    }

    /// The local wall-clock time of the instant `ms`, in milliseconds since 1970-01-01 local,
    /// held to the range of a 64-bit millisecond count.
    pub(super) fn to_local(&self, ms: i64) -> i64 {
        ms.saturating_add(self.local_offset(ms).saturating_mul(1000))
    }

    /// Whether daylight saving time is in effect at `ms` (the `dst` flag timelib keeps with a
    /// local time; it decides a fold in [`Zone::instant_of_local`]).
    pub(super) fn is_dst(&self, ms: i64) -> bool {
        match self {
            Zone::Fixed(_) => false,
            Zone::Named(tz) => period(tz, ms.div_euclid(1000)).dst,
        }
    }

    /// The instant of the local wall-clock time `local` (milliseconds since 1970-01-01 local).
    /// In an IANA zone this is timelib's `do_adjust_timezone` with the `dst` flag `dst`:
    /// a time in a gap is read at the offset before the gap (02:30 on a spring-forward night
    /// in New York is 03:30 EDT); a time in a fold is read at the daylight saving offset when
    /// `dst`, else at the standard one. `None` past the range of a 64-bit millisecond count.
    pub(super) fn instant_of_local(&self, local: i64, dst: bool) -> Option<i64> {
        match self {
            Zone::Fixed(seconds) => local.checked_sub(seconds.checked_mul(1000)?),
            Zone::Named(tz) => {
                let seconds = local.div_euclid(1000);
                let millis = local.rem_euclid(1000);
                resolve_local(tz, seconds, dst)
                    .checked_mul(1000)?
                    .checked_add(millis)
            }
        }
    }
}

/// A fixed offset `±hh`, `±hhmm` or `±hh:mm`, in seconds (MongoDB's `parseUtcOffset`).
fn parse_offset(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, s.get(1..)?),
        Some(b'-') => (-1, s.get(1..)?),
        _ => return None,
    };
    let digits = |t: &str| -> Option<i64> {
        if t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (h, m) = match rest.len() {
        2 => (digits(rest)?, 0),
        4 => (digits(rest.get(..2)?)?, digits(rest.get(2..)?)?),
        5 if rest.as_bytes().get(2) == Some(&b':') => {
            (digits(rest.get(..2)?)?, digits(rest.get(3..)?)?)
        }
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60))
}

/// `seconds` as a jiff timestamp, and the seconds it was moved by to be one: an instant
/// before jiff's range is read at its first instant (every zone is constant that far back),
/// one after it whole 400-year cycles earlier, where the zone's rule gives the same offsets.
fn in_range(seconds: i64) -> (Timestamp, i64) {
    let first = Timestamp::MIN.as_second();
    // One second short of the end, so the instant just after is a timestamp too.
    let last = Timestamp::MAX.as_second() - 1;
    let (at, shift) = if seconds < first {
        (first, 0)
    } else if seconds > last {
        let cycles = (seconds - last).div_euclid(CYCLE_SECONDS) + 1;
        let shift = cycles.saturating_mul(CYCLE_SECONDS);
        (seconds - shift, shift)
    } else {
        (seconds, 0)
    };
    // `at` lies within jiff's range by construction, so this is never the fallback.
    (
        Timestamp::from_second(at).unwrap_or(Timestamp::UNIX_EPOCH),
        shift,
    )
}

/// The offset of `tz` at `seconds`, in seconds.
fn offset_at(tz: &TimeZone, seconds: i64) -> i64 {
    i64::from(tz.to_offset(in_range(seconds).0).seconds())
}

/// The period of `tz` holding `seconds`.
fn period(tz: &TimeZone, seconds: i64) -> Period {
    let (at, shift) = in_range(seconds);
    let info = tz.to_offset_info(at);
    // `preceding` yields transitions strictly before its argument; a transition is a whole
    // second, so those before the next second are the ones at or before `at`.
    let next = Timestamp::from_second(at.as_second() + 1).unwrap_or(at);
    let since = tz
        .preceding(next)
        .next()
        .map(|t| t.timestamp().as_second().saturating_add(shift));
    Period {
        offset: i64::from(info.offset().seconds()),
        dst: info.dst().is_dst(),
        since,
    }
}

/// The instant (seconds) of the local time `local` (seconds since 1970-01-01 local) in `tz`,
/// step for step as timelib's `do_adjust_timezone` for a time with a zone (`have_zone`) whose
/// `dst` flag is `dst`: look the local time up as if it were UTC, then again that offset
/// earlier, and settle on one of the two offsets (or one two hours away when a fold hides
/// the change).
fn resolve_local(tz: &TimeZone, local: i64, dst: bool) -> i64 {
    let current = period(tz, local);
    let after = period(tz, local.saturating_sub(current.offset));
    let mut actual = after;
    if current.offset == after.offset {
        if current.offset >= 0 && dst && !current.dst {
            // East of UTC: the local time read as UTC has already left DST.
            let earlier = period(tz, local.saturating_sub(current.offset + 7200));
            if earlier.offset != after.offset
                && after
                    .since
                    .is_some_and(|t| local.saturating_sub(earlier.offset) < t)
            {
                actual = earlier;
            }
        } else if current.offset <= 0 && current.dst && !dst {
            // West of UTC: the local time read as UTC has not yet left DST.
            let later = period(tz, local.saturating_sub(current.offset - 7200));
            if later.offset != after.offset
                && later
                    .since
                    .is_none_or(|t| local.saturating_sub(later.offset) >= t)
            {
                actual = later;
            }
        }
    }
    let in_transition = actual.since.is_some_and(|t| {
        let at = local.saturating_sub(actual.offset);
        at >= t.saturating_add(current.offset - actual.offset) && at < t
    });
    let offset = if current.offset != actual.offset && !in_transition {
        actual.offset
    } else {
        current.offset
    };
    local.saturating_sub(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds of a UTC date-time (or of a local one read as if it were UTC).
    fn utc([y, mo, d, h, mi]: [i64; 5]) -> i64 {
        super::super::date::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    #[test]
    fn names_and_offsets_are_read_as_mongodb_reads_them() {
        assert!(Zone::named("UTC").unwrap().is_utc());
        assert!(Zone::named("+00:00").unwrap().is_utc());
        for (name, seconds) in [("+05:30", 19_800), ("-0800", -28_800), ("+03", 10_800)] {
            assert!(
                matches!(Zone::named(name), Some(Zone::Fixed(s)) if s == seconds),
                "{name}"
            );
        }
        // Europe/Paris twice: the second comes from the thread's cache.
        for name in ["Etc/UTC", "Europe/Paris", "Europe/Paris", "US/Eastern"] {
            assert!(matches!(Zone::named(name), Some(Zone::Named(_))), "{name}");
        }
        let unknown = [
            "+3",
            "+05:3",
            "europe/paris",
            "utc",
            "Etc/Unknown",
            "Z",
            "Mars/Base",
        ];
        for name in unknown {
            assert!(Zone::named(name).is_none(), "{name}");
        }
    }

    #[test]
    fn local_times_in_gaps_and_folds_resolve_as_timelib_does() {
        // (zone, local time, DST flag, instant). New York: 2024-03-10 02:00 EST jumps to 03:00
        // EDT at 07:00Z, so 02:30 is read at EST; 2024-11-03 02:00 EDT falls back to 01:00 EST
        // at 06:00Z, so 01:30 happens twice. Paris: 2024-10-27 03:00 CEST falls back to 02:00
        // CET at 01:00Z.
        const NY: &str = "America/New_York";
        const PARIS: &str = "Europe/Paris";
        let cases = [
            (NY, [2024, 3, 10, 2, 30], false, [2024, 3, 10, 7, 30]),
            (NY, [2024, 3, 10, 2, 30], true, [2024, 3, 10, 7, 30]),
            (NY, [2024, 11, 3, 1, 30], true, [2024, 11, 3, 5, 30]),
            (NY, [2024, 11, 3, 1, 30], false, [2024, 11, 3, 6, 30]),
            (PARIS, [2024, 10, 27, 2, 30], true, [2024, 10, 27, 0, 30]),
            (PARIS, [2024, 10, 27, 2, 30], false, [2024, 10, 27, 1, 30]),
            (PARIS, [2024, 7, 1, 12, 0], false, [2024, 7, 1, 10, 0]),
            (PARIS, [2024, 7, 1, 12, 0], true, [2024, 7, 1, 10, 0]),
        ];
        for (name, local, dst, want) in cases {
            let tz = TimeZone::get(name).unwrap();
            let got = resolve_local(&tz, utc(local), dst);
            assert_eq!(got, utc(want), "{name} {local:?} {dst}");
        }
    }

    #[test]
    fn instants_past_jiffs_range_still_have_an_offset() {
        let ny = Zone::named("America/New_York").unwrap();
        // 2024-07-01 and 400 000 years later fall on the same day of the cycle.
        let summer = utc([2024, 7, 1, 12, 0]) * 1000;
        let later = summer + 1000 * CYCLE_SECONDS * 1000;
        assert_eq!(ny.utc_offset(summer), -4 * 3600);
        assert_eq!(ny.utc_offset(later), -4 * 3600);
        assert_eq!(ny.utc_offset(i64::MAX), ny.utc_offset(i64::MAX - 1));
        assert_eq!(ny.to_local(i64::MIN), i64::MIN);
    }
}
