//! `$dateToParts` (`{date, timezone, iso8601}`) and `$dateFromParts` (`{year, month, day, hour,
//! minute, second, millisecond, timezone}` or `{isoWeekYear, isoWeek, isoDayOfWeek, …}`), as
//! MongoDB 7.0's `expression.cpp`, in UTC, at a fixed offset or in an IANA zone (`date.rs`'s
//! `timezone`; a local time in a DST gap or fold resolved as `zone.rs` does).
//!
//! `$dateFromParts` evaluates hour, minute, second and millisecond, then the time zone, then
//! the date fields, and gives null at the first one that is null or missing. A given part must
//! be an integral number representable as a long (40515); month, day, hour, minute, ISO week and
//! ISO day of week must lie in [`DATE_PART_MIN`]..=[`DATE_PART_MAX`] (31034), the year or ISO
//! week-numbering year in [`YEAR_MIN`]..=[`YEAR_MAX`] (40523, 31095). A part past its usual
//! range carries into the next larger unit, as MongoDB's timelib does (month 13 is January of
//! the next year, day 0 the last day of the month before, hour -1 the day before's last hour).
//! A result beyond the range of a 64-bit millisecond count saturates (in MongoDB it is
//! timelib's overflow).

use bson::{Bson, Document};

use super::super::document;
use super::super::error::Result;
use super::date::{self, MS_PER_DAY, days_from_civil, parts_of};
use super::expr::{
    ABSENT, Expr, Lazy, Scope, eval_error, named_operands, nullish, parse_error, type_of,
};
use super::text::render;
use super::zone::Zone;

/// Smallest value of a bounded date part (MongoDB's `kMinValueForDatePart`).
pub(crate) const DATE_PART_MIN: i64 = -32_768;
/// Largest value of a bounded date part (MongoDB's `kMaxValueForDatePart`).
pub(crate) const DATE_PART_MAX: i64 = 32_767;
/// Smallest year (or ISO week-numbering year) `$dateFromParts` accepts.
pub(crate) const YEAR_MIN: i64 = 1;
/// Largest year (or ISO week-numbering year) `$dateFromParts` accepts.
pub(crate) const YEAR_MAX: i64 = 9_999;

/// `$dateFromParts`'s operands, in the order of [`Lazy::DateFromParts`]'s arguments.
const FROM_PARTS: [&str; 11] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "millisecond",
    "isoWeekYear",
    "isoWeek",
    "isoDayOfWeek",
    "timezone",
];

/// Compiles `$dateFromParts` (40516, 40518, 40519, 40489, 40525).
pub(crate) fn compile_from(
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            40519,
            "$dateFromParts only supports an object as its argument",
        ));
    };
    let got = named_operands(spec, &FROM_PARTS, |k| {
        parse_error(
            40518,
            format!("Unrecognized argument to $dateFromParts: {k}"),
        )
    })?;
    let given = |i: usize| got.get(i).is_some_and(Option::is_some);
    let (year, iso_year) = (given(0), given(7));
    if !year && !iso_year {
        return Err(parse_error(
            40516,
            "$dateFromParts requires either 'year' or 'isoWeekYear' to be present",
        ));
    }
    if year && (iso_year || given(8) || given(9)) {
        return Err(parse_error(
            40489,
            "$dateFromParts does not allow mixing natural dates with ISO dates",
        ));
    }
    if iso_year && (given(1) || given(2)) {
        return Err(parse_error(
            40525,
            "$dateFromParts does not allow mixing ISO dates with natural dates",
        ));
    }
    let mut args = Vec::with_capacity(FROM_PARTS.len());
    for v in got {
        args.push(match v {
            Some(v) => compile(v)?,
            None => Expr::Absent,
        });
    }
    Ok(Expr::Lazy(Lazy::DateFromParts, args))
}

/// Compiles `$dateToParts` (40520, 40522, 40524).
pub(crate) fn compile_to(
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            40524,
            "$dateToParts only supports an object as its argument",
        ));
    };
    let got = named_operands(spec, &["date", "timezone", "iso8601"], |k| {
        parse_error(40520, format!("Unrecognized argument to $dateToParts: {k}"))
    })?;
    if got.first().copied().flatten().is_none() {
        return Err(parse_error(
            40522,
            "Missing 'date' parameter to $dateToParts",
        ));
    }
    let mut args = Vec::with_capacity(3);
    for v in got {
        args.push(match v {
            Some(v) => compile(v)?,
            None => Expr::Absent,
        });
    }
    Ok(Expr::Lazy(Lazy::DateToParts, args))
}

/// A part's value: its default when not given, `None` when null or missing, else an integral
/// number as a long (40515), held to the part bounds when `bounded` (31034).
fn part(
    e: &Expr,
    name: &str,
    default: i64,
    bounded: bool,
    cx: &mut Scope<'_>,
) -> Result<Option<i64>> {
    if matches!(e, Expr::Absent) {
        return Ok(Some(default));
    }
    let v = e.eval(cx)?;
    if nullish(v.as_ref()) {
        return Ok(None);
    }
    let n = v.as_ref().and_then(document::integral_i64).ok_or_else(|| {
        eval_error(
            40515,
            format!(
                "'{name}' must evaluate to an integer, found {} with value {}",
                type_of(v.as_ref()),
                render(v.as_ref())
            ),
        )
    })?;
    if bounded && !(DATE_PART_MIN..=DATE_PART_MAX).contains(&n) {
        return Err(eval_error(
            31034,
            format!(
                "'{name}' must evaluate to a value in the range [{DATE_PART_MIN}, {DATE_PART_MAX}]; value {n} is not in range"
            ),
        ));
    }
    Ok(Some(n))
}

/// Evaluates `$dateFromParts`.
///
/// # Errors
/// 40515, 31034, 40523, 31095 for a part; 40517/40485 for the time zone.
pub(crate) fn eval_from(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let arg = |i: usize| args.get(i).unwrap_or(&ABSENT);
    let mut time = [0i64; 4];
    for (slot, (i, bounded)) in time
        .iter_mut()
        .zip([(3, true), (4, true), (5, false), (6, false)])
    {
        let name = FROM_PARTS.get(i).copied().unwrap_or_default();
        let Some(n) = part(arg(i), name, 0, bounded, cx)? else {
            return Ok(Some(Bson::Null));
        };
        *slot = n;
    }
    let tz = arg(10);
    let tz_value = tz.eval(cx)?;
    let Some(zone) = date::timezone(tz_value.as_ref(), !matches!(tz, Expr::Absent))? else {
        return Ok(Some(Bson::Null));
    };
    let days = if matches!(arg(0), Expr::Absent) {
        let mut iso = [0i64; 3];
        for (slot, (i, default, bounded)) in
            iso.iter_mut()
                .zip([(7, 1970, false), (8, 1, true), (9, 1, true)])
        {
            let name = FROM_PARTS.get(i).copied().unwrap_or_default();
            let Some(n) = part(arg(i), name, default, bounded, cx)? else {
                return Ok(Some(Bson::Null));
            };
            *slot = n;
        }
        let [year, week, day] = iso;
        check_year(31095, "isoWeekYear", year)?;
        // Week 1 is the week (from Monday) holding 4 January.
        let jan4 = days_from_civil(year, 1, 4);
        let monday = jan4 - (jan4 + 3).rem_euclid(7);
        i128::from(monday) + (i128::from(week) - 1) * 7 + i128::from(day) - 1
    } else {
        let mut ymd = [0i64; 3];
        for (slot, (i, default, bounded)) in
            ymd.iter_mut()
                .zip([(0, 1970, false), (1, 1, true), (2, 1, true)])
        {
            let name = FROM_PARTS.get(i).copied().unwrap_or_default();
            let Some(n) = part(arg(i), name, default, bounded, cx)? else {
                return Ok(Some(Bson::Null));
            };
            *slot = n;
        }
        let [year, month, day] = ymd;
        check_year(40523, "year", year)?;
        let months = year * 12 + month - 1;
        let first = days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1);
        i128::from(first) + i128::from(day) - 1
    };
    let [hour, minute, second, millis] = time.map(i128::from);
    let local =
        days * i128::from(MS_PER_DAY) + hour * 3_600_000 + minute * 60_000 + second * 1000 + millis;
    let saturate = |ms: i128| i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX });
    let ms = match zone {
        Zone::Fixed(seconds) => saturate(local - i128::from(seconds) * 1000),
        // timelib's `createFromDateParts` sets the zone on a time at the zero instant, so a
        // local time in a DST fold takes the offset whose DST flag the zone had at
        // 1970-01-01T00:00Z (standard time in most zones: the later of the two instants).
        Zone::Named(_) => zone
            .instant_of_local(saturate(local), zone.is_dst(0))
            .unwrap_or(if local < 0 { i64::MIN } else { i64::MAX }),
    };
    Ok(Some(Bson::DateTime(bson::DateTime::from_millis(ms))))
}

fn check_year(code: i32, name: &str, year: i64) -> Result<()> {
    if (YEAR_MIN..=YEAR_MAX).contains(&year) {
        return Ok(());
    }
    Err(eval_error(
        code,
        format!(
            "'{name}' must evaluate to an integer in the range {YEAR_MIN} to {YEAR_MAX}, found {year}"
        ),
    ))
}

/// Evaluates `$dateToParts`: the time zone (null gives null), then `iso8601` (a bool, 40521;
/// null gives null), then the date (null gives null; 16006 for a non-date).
///
/// # Errors
/// 40517/40485 for the time zone, 40521, 16006.
pub(crate) fn eval_to(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let arg = |i: usize| args.get(i).unwrap_or(&ABSENT);
    let date_value = arg(0).eval(cx)?;
    let tz = arg(1);
    let tz_value = tz.eval(cx)?;
    let Some(zone) = date::timezone(tz_value.as_ref(), !matches!(tz, Expr::Absent))? else {
        return Ok(Some(Bson::Null));
    };
    let iso = match arg(2) {
        Expr::Absent => false,
        e => match e.eval(cx)? {
            Some(Bson::Boolean(b)) => b,
            v if nullish(v.as_ref()) => return Ok(Some(Bson::Null)),
            v => {
                return Err(eval_error(
                    40521,
                    format!(
                        "iso8601 must evaluate to a bool, found {}",
                        type_of(v.as_ref())
                    ),
                ));
            }
        },
    };
    let Some(date_value) = date_value.filter(|v| !nullish(Some(v))) else {
        return Ok(Some(Bson::Null));
    };
    let ms = date::coerce_to_date(&date_value)?;
    let p = parts_of(zone.to_local(ms));
    let int = |n: i64| Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX));
    let mut out = Document::new();
    if iso {
        let (year, week) = p.iso_week();
        out.insert("isoWeekYear", int(year));
        out.insert("isoWeek", int(week));
        out.insert("isoDayOfWeek", int(p.iso_day_of_week()));
    } else {
        out.insert("year", int(p.year));
        out.insert("month", int(p.month));
        out.insert("day", int(p.day));
    }
    out.insert("hour", int(p.hour));
    out.insert("minute", int(p.minute));
    out.insert("second", int(p.second));
    out.insert("millisecond", int(p.millis));
    Ok(Some(Bson::Document(out)))
}
