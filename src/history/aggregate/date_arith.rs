//! Date arithmetic, as MongoDB 7.0's `date_time_support.cpp` computes it: `$dateAdd` and
//! `$dateSubtract` (days and longer in the local calendar keeping the local clock time, a day
//! past the month's end clamped to its last day; hours and shorter as fixed durations),
//! `$dateDiff` (the unit boundaries crossed between two dates in the local calendar, hours and
//! shorter corrected by the change of offset) and `$dateTrunc` (bins of `binSize` units
//! counted from 2000-01-01 local, weeks from the first `startOfWeek` on or after it). In UTC,
//! at a fixed offset or in an IANA zone (`zone.rs`, which resolves DST gaps and folds as
//! timelib does).

use bson::Bson;

use super::super::error::{Error, Result};
use super::date::{MS_PER_DAY, days_from_civil, days_in_month, parts_of, timezone};
use super::expr::{self, Expr, eval_error, named_operands, nullish, parse_error, type_of};
use super::zone::Zone;

/// The date arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateArith {
    /// `[startDate, unit, amount, timezone]`.
    Add,
    /// `[startDate, unit, amount, timezone]`.
    Subtract,
    /// `[startDate, endDate, unit, timezone, startOfWeek]`.
    Diff,
    /// `[date, unit, binSize, timezone, startOfWeek]`.
    Trunc,
}

impl DateArith {
    /// The operator called `name`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Some(match name {
            "$dateAdd" => Self::Add,
            "$dateSubtract" => Self::Subtract,
            "$dateDiff" => Self::Diff,
            "$dateTrunc" => Self::Trunc,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Add => "$dateAdd",
            Self::Subtract => "$dateSubtract",
            Self::Diff => "$dateDiff",
            Self::Trunc => "$dateTrunc",
        }
    }
}

/// A time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    /// Months, quarters (3) and years (12).
    Months(i64),
}

/// The largest `binSize` of a `$dateTrunc` in days or longer units (MongoDB's `truncateDate`:
/// "a limit up to which dateAdd() can properly handle"); past it 5439006.
const DATE_TRUNC_BIN_MAX: i64 = 100_000_000_000;

impl Unit {
    /// The unit's name, as MongoDB's `serializeTimeUnit` writes it ([`UNIT_NAMES`]; every
    /// unit is made from a name there, so the fallback is never taken).
    pub(super) fn name(self) -> &'static str {
        UNIT_NAMES
            .iter()
            .find(|(_, u)| *u == self)
            .map_or("month", |(n, _)| n)
    }

    /// The bound of a `$dateAdd` amount in this unit, exclusive either way (MongoDB's
    /// `isDateAddAmountValid`: about the range of a date; 5976500 past it); milliseconds have
    /// none (their sum is checked).
    fn date_add_amount_max(self) -> Option<i64> {
        // Days in the range of an unsigned 64-bit millisecond count, rounded up, as there.
        const DAYS: i64 = (u64::MAX / 86_400_000) as i64 + 1;
        const YEARS: i64 = DAYS / 365 + 1;
        Some(match self {
            Self::Millisecond => return None,
            Self::Second => DAYS * 86_400,
            Self::Minute => DAYS * 1_440,
            Self::Hour => DAYS * 24,
            Self::Day => DAYS,
            Self::Week => DAYS / 7,
            Self::Months(3) => YEARS * 4,
            Self::Months(12) => YEARS,
            Self::Months(_) => YEARS * 12,
        })
    }

    /// The length of a fixed-length unit in milliseconds.
    pub(super) fn millis(self) -> Option<i64> {
        Some(match self {
            Self::Millisecond => 1,
            Self::Second => 1000,
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => MS_PER_DAY,
            Self::Week => 7 * MS_PER_DAY,
            Self::Months(_) => return None,
        })
    }
}

/// Parses a `unit` value (MongoDB's `parseTimeUnit`).
fn parse_unit(v: &Bson, op: &str) -> Result<Unit> {
    let Bson::String(s) = v else {
        return Err(eval_error(
            5_439_013,
            format!(
                "{op} requires 'unit' to be a string, but got {}",
                type_of(Some(v))
            ),
        ));
    };
    unit_named(s).ok_or_else(|| {
        eval_error(
            9,
            format!(
                "{op} parameter 'unit' value parsing failed :: caused by :: unknown time unit value: {s}"
            ),
        )
    })
}

/// The unit a name stands for (MongoDB's `parseTimeUnit`): `millisecond` … `year`.
pub(super) fn unit_named(s: &str) -> Option<Unit> {
    UNIT_NAMES.iter().find(|(n, _)| *n == s).map(|(_, u)| *u)
}

/// MongoDB's time unit names and their units, both ways.
const UNIT_NAMES: [(&str, Unit); 9] = [
    ("millisecond", Unit::Millisecond),
    ("second", Unit::Second),
    ("minute", Unit::Minute),
    ("hour", Unit::Hour),
    ("day", Unit::Day),
    ("week", Unit::Week),
    ("month", Unit::Months(1)),
    ("quarter", Unit::Months(3)),
    ("year", Unit::Months(12)),
];

/// Parses a `startOfWeek` value: ISO day 1 (Monday) ..= 7 (Sunday).
fn parse_day_of_week(v: &Bson, op: &str) -> Result<i64> {
    let Bson::String(s) = v else {
        return Err(eval_error(
            5_439_015,
            format!(
                "{op} requires 'startOfWeek' to be a string, but got {}",
                type_of(Some(v))
            ),
        ));
    };
    let days = [
        ("monday", "mon"),
        ("tuesday", "tue"),
        ("wednesday", "wed"),
        ("thursday", "thu"),
        ("friday", "fri"),
        ("saturday", "sat"),
        ("sunday", "sun"),
    ];
    let lower = s.to_ascii_lowercase();
    let found = days
        .iter()
        .position(|(long, short)| lower == *long || lower == *short);
    match found {
        Some(i) => Ok(i64::try_from(i).unwrap_or(0) + 1),
        None => Err(eval_error(
            5_439_016,
            format!(
                "{op} parameter 'startOfWeek' value cannot be recognized as a day of a week: {s}"
            ),
        )),
    }
}

/// A parse-time error from a constant operand checked as the evaluation would.
fn at_parse(e: Error) -> Error {
    match e {
        Error::Expression { code, message } => parse_error(code, message),
        other => other,
    }
}

/// Compiles `$dateAdd`/`$dateSubtract`/`$dateDiff`/`$dateTrunc`; a constant `unit` or
/// `startOfWeek` is checked here, as MongoDB does.
///
/// # Errors
/// MongoDB's parse codes: 5166400–5166402, 5166301–5166305, 5439007–5439010, and the unit and
/// day-of-week ones.
pub(crate) fn compile(
    op: DateArith,
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let name = op.name();
    let (names, not_object, unknown_tail): (&[&str], (i32, String), &str) = match op {
        DateArith::Add | DateArith::Subtract => (
            &["startDate", "unit", "amount", "timezone"],
            (
                5_166_400,
                format!("{name} expects an object as its argument"),
            ),
            ". Expected arguments are startDate, unit, amount, and optionally timezone.",
        ),
        DateArith::Diff => (
            &["startDate", "endDate", "unit", "timezone", "startOfWeek"],
            (
                5_166_301,
                "$dateDiff only supports an object as its argument".to_owned(),
            ),
            "",
        ),
        DateArith::Trunc => (
            &["date", "unit", "binSize", "timezone", "startOfWeek"],
            (
                5_439_007,
                "$dateTrunc only supports an object as its argument".to_owned(),
            ),
            ". Expected arguments are date, unit, and optionally, binSize, timezone, startOfWeek",
        ),
    };
    let Bson::Document(spec) = arg else {
        return Err(parse_error(not_object.0, not_object.1));
    };
    let unknown_code = match op {
        DateArith::Add | DateArith::Subtract => 5_166_401,
        DateArith::Diff => 5_166_302,
        DateArith::Trunc => 5_439_008,
    };
    let got = named_operands(spec, names, |k| {
        parse_error(
            unknown_code,
            format!("Unrecognized argument to {name}: {k}{unknown_tail}"),
        )
    })?;
    let has = |i: usize| got.get(i).copied().flatten().is_some();
    match op {
        DateArith::Add | DateArith::Subtract => {
            if !(has(0) && has(1) && has(2)) {
                return Err(parse_error(
                    5_166_402,
                    format!("{name} requires startDate, unit, and amount to be present"),
                ));
            }
        }
        DateArith::Diff => {
            for (i, code, what) in [
                (0, 5_166_303, "startDate"),
                (1, 5_166_304, "endDate"),
                (2, 5_166_305, "unit"),
            ] {
                if !has(i) {
                    return Err(parse_error(
                        code,
                        format!("Missing '{what}' parameter to $dateDiff"),
                    ));
                }
            }
        }
        DateArith::Trunc => {
            for (i, code, what) in [(0, 5_439_009, "date"), (1, 5_439_010, "unit")] {
                if !has(i) {
                    return Err(parse_error(
                        code,
                        format!("Missing '{what}' parameter to $dateTrunc"),
                    ));
                }
            }
        }
    }
    let unit_at = usize::from(op == DateArith::Diff) + 1;
    if let Some(u) = got.get(unit_at).copied().flatten()
        && !nullish(Some(u))
        && !is_expression(u)
    {
        parse_unit(u, name).map_err(at_parse)?;
    }
    if let Some(d) = got.get(4).copied().flatten()
        && !nullish(Some(d))
        && !is_expression(d)
    {
        parse_day_of_week(d, name).map_err(at_parse)?;
    }
    let mut args = Vec::with_capacity(names.len());
    for v in &got {
        args.push(match v {
            Some(v) => compile(v)?,
            None => Expr::Absent,
        });
    }
    Ok(Expr::Op(expr::Op::DateArith(op), args))
}

/// Whether an operand is evaluated (a path or an operator), not a constant.
fn is_expression(v: &Bson) -> bool {
    match v {
        Bson::String(s) => s.starts_with('$'),
        Bson::Document(_) | Bson::Array(_) => true,
        _ => false,
    }
}

/// A value as a date in milliseconds, if it is one MongoDB converts (a date, a timestamp, an
/// ObjectId).
fn as_date(v: &Bson) -> Option<i64> {
    match v {
        Bson::DateTime(d) => Some(d.timestamp_millis()),
        Bson::Timestamp(t) => Some(i64::from(t.time) * 1000),
        Bson::ObjectId(o) => Some(o.timestamp().timestamp_millis()),
        _ => None,
    }
}

/// `timezone` with `$dateDiff`'s/`$dateTrunc`'s context on its errors.
fn timezone_in(op: &str, v: Option<&Bson>, given: bool) -> Result<Option<Zone>> {
    timezone(v, given).map_err(|e| match e {
        Error::Expression { code, message } => eval_error(
            code,
            format!("{op} parameter 'timezone' value parsing failed :: caused by :: {message}"),
        ),
        other => other,
    })
}

/// Evaluates a date arithmetic operator over its evaluated operands.
///
/// # Errors
/// MongoDB's codes for operands of the wrong type or value, and for a result outside the
/// range of a date.
pub(crate) fn apply(op: DateArith, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let get = |i: usize| vals.get(i).and_then(Option::as_ref);
    let given = |i: usize| vals.get(i).is_some_and(Option::is_some);
    let null = Ok(Some(Bson::Null));
    let name = op.name();
    match op {
        DateArith::Add | DateArith::Subtract => {
            let (Some(start), Some(unit)) = (get(0), get(1)) else {
                return null;
            };
            if nullish(Some(start)) || nullish(Some(unit)) {
                return null;
            }
            let unit = parse_unit(unit, name)?;
            let Some(amount) = get(2).filter(|a| !nullish(Some(a))) else {
                return null;
            };
            let Some(zone) = timezone(get(3), given(3))? else {
                return null;
            };
            let Some(start) = as_date(start) else {
                return Err(eval_error(
                    5_166_403,
                    format!("{name} requires startDate to be convertible to a date"),
                ));
            };
            let Some(mut amount) = super::super::document::integral_i64(amount) else {
                return Err(eval_error(
                    5_166_405,
                    format!("{name} expects integer amount of time units"),
                ));
            };
            if op == DateArith::Subtract {
                amount = amount.checked_neg().ok_or_else(|| {
                    eval_error(
                        6_045_000,
                        format!("invalid $dateSubtract 'amount' parameter value: {amount}"),
                    )
                })?;
            }
            if let Some(max) = unit.date_add_amount_max()
                && !(-max < amount && amount < max)
            {
                return Err(eval_error(
                    5_976_500,
                    format!(
                        "invalid dateAdd 'amount' parameter value: {amount} {}",
                        unit.name()
                    ),
                ));
            }
            let out = date_add(start, unit, amount, &zone)
                .ok_or_else(|| eval_error(5_166_406, "dateAdd overflowed"))?;
            Ok(Some(Bson::DateTime(bson::DateTime::from_millis(out))))
        }
        DateArith::Diff => {
            let (Some(start), Some(end), Some(unit)) = (get(0), get(1), get(2)) else {
                return null;
            };
            if nullish(Some(start)) || nullish(Some(end)) || nullish(Some(unit)) {
                return null;
            }
            let unit = parse_unit(unit, name)?;
            let Some((week_start, zone)) = week_and_zone(name, unit, vals)? else {
                return null;
            };
            let start = convert_date(start, name, "startDate")?;
            let end = convert_date(end, name, "endDate")?;
            let diff = date_diff(start, end, unit, &zone, week_start)
                .ok_or_else(|| eval_error(5_166_308, "dateDiff overflowed"))?;
            Ok(Some(Bson::Int64(diff)))
        }
        DateArith::Trunc => {
            let Some(date) = get(0).filter(|d| !nullish(Some(d))) else {
                return null;
            };
            let mut bin = 1;
            if given(2) {
                match get(2) {
                    Some(b) if !nullish(Some(b)) => bin = bin_size(b)?,
                    _ => return null,
                }
            }
            let Some(unit) = get(1).filter(|u| !nullish(Some(u))) else {
                return null;
            };
            let unit = parse_unit(unit, name)?;
            let Some((week_start, zone)) = week_and_zone(name, unit, vals)? else {
                return null;
            };
            let ms = convert_date(date, name, "date")?;
            if unit.millis().is_none_or(|len| len >= MS_PER_DAY) && bin > DATE_TRUNC_BIN_MAX {
                return Err(eval_error(5_439_006, "dateTrunc unsupported binSize value"));
            }
            let out = date_trunc(ms, unit, bin, &zone, week_start)
                .ok_or_else(|| eval_error(5_439_000, "dateTrunc overflowed"))?;
            Ok(Some(Bson::DateTime(bson::DateTime::from_millis(out))))
        }
    }
}

/// `$dateDiff`'s and `$dateTrunc`'s `startOfWeek` (operand 4; read for weeks only, default
/// Sunday) and `timezone` (operand 3); `None` when either is null or missing but given.
fn week_and_zone(op: &str, unit: Unit, vals: &[Option<Bson>]) -> Result<Option<(i64, Zone)>> {
    let given = |i: usize| vals.get(i).is_some_and(Option::is_some);
    let get = |i: usize| vals.get(i).and_then(Option::as_ref);
    let mut week_start = 7;
    if unit == Unit::Week && given(4) {
        match get(4) {
            Some(d) if !nullish(Some(d)) => week_start = parse_day_of_week(d, op)?,
            _ => return Ok(None),
        }
    }
    Ok(timezone_in(op, get(3), given(3))?.map(|zone| (week_start, zone)))
}

/// A `$dateDiff`/`$dateTrunc` operand `what` as a date (MongoDB's `convertDate`: 5166307).
fn convert_date(v: &Bson, op: &str, what: &str) -> Result<i64> {
    as_date(v).ok_or_else(|| {
        eval_error(
            5_166_307,
            format!(
                "{op} requires '{what}' to be a date, but got {}",
                type_of(Some(v))
            ),
        )
    })
}

/// `$dateTrunc`'s `binSize`: a positive 64-bit integer.
fn bin_size(v: &Bson) -> Result<i64> {
    let Some(n) = super::super::document::integral_i64(v) else {
        return Err(eval_error(
            5_439_017,
            format!(
                "$dateTrunc requires 'binSize' to be a 64-bit integer, but got value '{}' of type {}",
                super::text::render(Some(v)),
                type_of(Some(v))
            ),
        ));
    };
    if n <= 0 {
        return Err(eval_error(
            5_439_018,
            format!("$dateTrunc requires 'binSize' to be greater than 0, but got value {n}"),
        ));
    }
    Ok(n)
}

/// The local wall-clock time of `ms` in `zone`; `None` past the range of a date.
fn local_of(ms: i64, zone: &Zone) -> Option<i64> {
    ms.checked_add(zone.local_offset(ms).checked_mul(1000)?)
}

/// `ms` plus `amount` units in `zone`; `None` past the range of a date. As MongoDB's `dateAdd`:
/// hours and shorter are fixed durations; days and longer move the local calendar and keep
/// the local clock time (a month past its end clamped to its last day), the result read back
/// with the DST flag the zone had at `ms` (a time in a gap moves forward by the gap, one in a
/// fold takes the side `ms` was on). At UTC or a fixed offset both come to the same.
pub(super) fn date_add(ms: i64, unit: Unit, amount: i64, zone: &Zone) -> Option<i64> {
    let on_calendar = match unit {
        Unit::Months(_) => true,
        Unit::Day | Unit::Week => matches!(zone, Zone::Named(_)),
        _ => false,
    };
    if !on_calendar {
        return ms.checked_add(amount.checked_mul(unit.millis()?)?);
    }
    let local = local_of(ms, zone)?;
    let moved = match unit {
        Unit::Months(per) => {
            let p = parts_of(local);
            let total = (p.year.checked_mul(12)?)
                .checked_add(p.month - 1)?
                .checked_add(amount.checked_mul(per)?)?;
            let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
            // A 64-bit millisecond count spans about ±292 million years; past that there is
            // no date (and the day arithmetic below would overflow).
            if !(-YEARS_OF_A_DATE..=YEARS_OF_A_DATE).contains(&y) {
                return None;
            }
            let d = p.day.min(days_in_month(y, m));
            days_from_civil(y, m, d)
                .checked_mul(MS_PER_DAY)?
                .checked_add(local.rem_euclid(MS_PER_DAY))?
        }
        fixed => local.checked_add(amount.checked_mul(fixed.millis()?)?)?,
    };
    zone.instant_of_local(moved, zone.is_dst(ms))
}

/// Years beyond every date a 64-bit millisecond count can hold (about 292 million either way).
const YEARS_OF_A_DATE: i64 = 300_000_000;

/// The day (since 1970-01-01) a week on ISO day `week_start` begins on, on or after
/// 2000-01-01 (a Saturday, ISO day 6): the reference of week bins.
fn week_reference_day(week_start: i64) -> i64 {
    10_957 + (week_start - 6).rem_euclid(7)
}

/// The number of `unit` boundaries from `start` to `end` in `zone` (MongoDB's `dateDiff`):
/// days and longer counted on the local calendar; hours, minutes and seconds on the local
/// clock, corrected by the change of offset between the two dates (so across a DST change
/// they count the time that passed, in whole units toward zero).
fn date_diff(start: i64, end: i64, unit: Unit, zone: &Zone, week_start: i64) -> Option<i64> {
    if unit == Unit::Millisecond {
        return end.checked_sub(start);
    }
    let (a, b) = (local_of(start, zone)?, local_of(end, zone)?);
    match unit {
        Unit::Week => {
            let r = week_reference_day(week_start);
            let weeks = |ms: i64| (ms.div_euclid(MS_PER_DAY) - r).div_euclid(7);
            weeks(b).checked_sub(weeks(a))
        }
        Unit::Months(per) => {
            let months = |ms: i64| {
                let p = parts_of(ms);
                (p.year * 12 + p.month - 1).div_euclid(per)
            };
            months(b).checked_sub(months(a))
        }
        fixed => {
            let len = fixed.millis()?;
            let crossed = b.div_euclid(len).checked_sub(a.div_euclid(len))?;
            if fixed == Unit::Day {
                return Some(crossed);
            }
            // timelib's `z` of each date, in seconds; C's division truncates toward zero.
            let change = zone.local_offset(start) - zone.local_offset(end);
            crossed.checked_add(change / (len / 1000))
        }
    }
}

/// `ms` truncated to its bin of `bin` units in `zone` (MongoDB's `truncateDate`). Bins count
/// from 2000-01-01T00:00 local at the offset the zone had at 2000-01-01T00:00Z (weeks from the
/// first `startOfWeek` on or after it): hours and shorter as fixed durations from there; days
/// and longer on the local calendar, the bin's start then added to the reference as
/// `$dateAdd` adds (local midnight, read back with the reference's DST flag).
fn date_trunc(ms: i64, unit: Unit, bin: i64, zone: &Zone, week_start: i64) -> Option<i64> {
    // 2000-01-01T00:00:00.000Z.
    const REFERENCE_MS: i64 = 946_684_800_000;
    let reference = REFERENCE_MS.checked_sub(zone.utc_offset(REFERENCE_MS).checked_mul(1000)?)?;
    let distance = match unit {
        Unit::Millisecond | Unit::Second | Unit::Minute | Unit::Hour => {
            let step = unit.millis()?.checked_mul(bin)?;
            return ms.checked_sub(ms.checked_sub(reference)?.rem_euclid(step));
        }
        Unit::Day => local_of(ms, zone)?.div_euclid(MS_PER_DAY) - 10_957,
        Unit::Week => (local_of(ms, zone)?.div_euclid(MS_PER_DAY) - week_reference_day(week_start))
            .div_euclid(7),
        Unit::Months(per) => {
            let p = parts_of(local_of(ms, zone)?);
            ((p.year - 2000) * 12 + p.month - 1).div_euclid(per)
        }
    };
    let reference = match unit {
        Unit::Week => {
            reference.checked_add((week_reference_day(week_start) - 10_957) * MS_PER_DAY)?
        }
        _ => reference,
    };
    date_add(reference, unit, distance - distance.rem_euclid(bin), zone)
}
