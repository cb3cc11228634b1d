//! Date expressions: the parts of a date (`$year` … `$millisecond`, `$dayOfWeek`, `$dayOfYear`,
//! `$week`, the ISO week), `$dateToString` and `$dateFromString`, in UTC, at a fixed offset
//! (`"+02:00"`, `"-0530"`, `"+03"`) or in any IANA zone (`"Europe/Paris"`), DST included; the
//! `timezone` operand is read here (40517, 40485) and the zone itself is `zone.rs`'s.
//!
//! Calendar arithmetic is proleptic Gregorian on days since 1970-01-01 (Howard Hinnant's
//! `days_from_civil`/`civil_from_days`), so any `i64` of milliseconds has a date.

use bson::Bson;

use super::super::error::Result;
use super::expr::{
    self, Expr, Lazy, Scope, eval_error, named_operands, nullish, parse_error, type_of,
};
use super::text::render;
use super::zone::Zone;

/// The date operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateOp {
    Year,
    Month,
    DayOfMonth,
    Hour,
    Minute,
    Second,
    Millisecond,
    DayOfWeek,
    DayOfYear,
    IsoWeek,
    IsoWeekYear,
    IsoDayOfWeek,
    /// `$week`: 0 ..= 53, weeks from Sunday, the days before the year's first Sunday in 0.
    Week,
    /// `[date, format, timezone, onNull]`.
    ToString,
}

impl DateOp {
    /// The date-part operator called `name`.
    pub(crate) fn part_named(name: &str) -> Option<Self> {
        Some(match name {
            "$year" => Self::Year,
            "$month" => Self::Month,
            "$dayOfMonth" => Self::DayOfMonth,
            "$hour" => Self::Hour,
            "$minute" => Self::Minute,
            "$second" => Self::Second,
            "$millisecond" => Self::Millisecond,
            "$dayOfWeek" => Self::DayOfWeek,
            "$dayOfYear" => Self::DayOfYear,
            "$isoWeek" => Self::IsoWeek,
            "$isoWeekYear" => Self::IsoWeekYear,
            "$isoDayOfWeek" => Self::IsoDayOfWeek,
            "$week" => Self::Week,
            _ => return None,
        })
    }
}

/// Compiles a date part: `{$year: <date>}`, `{$year: [<date>]}` or
/// `{$year: {date, timezone}}`.
pub(crate) fn compile_part(
    part: DateOp,
    op: &str,
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let (date, timezone) = match arg {
        Bson::Document(spec) if !spec.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let got = named_operands(spec, &["date", "timezone"], |k| {
                parse_error(40535, format!("unrecognized option to {op}: \"{k}\""))
            })?;
            let Some(date) = got.first().copied().flatten() else {
                return Err(parse_error(
                    40539,
                    format!(
                        "missing 'date' argument to {op}, provided: {op}: {}",
                        super::super::document::render_value(arg)
                    ),
                ));
            };
            let tz = match got.get(1).copied().flatten() {
                Some(t) => compile(t)?,
                None => Expr::Absent,
            };
            (compile(date)?, tz)
        }
        Bson::Array(items) => {
            let [only] = items.as_slice() else {
                return Err(parse_error(
                    40536,
                    format!(
                        "{op} accepts exactly one argument if given an array, but was given {}",
                        items.len()
                    ),
                ));
            };
            (compile(only)?, Expr::Absent)
        }
        other => (compile(other)?, Expr::Absent),
    };
    Ok(Expr::Op(expr::Op::Date(part), vec![date, timezone]))
}

/// Compiles `$dateToString: {date, format, timezone, onNull}`; a constant format is checked
/// here, as MongoDB does.
pub(crate) fn compile_to_string(
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            18629,
            "$dateToString only supports an object as its argument",
        ));
    };
    let got = named_operands(spec, &["date", "format", "timezone", "onNull"], |k| {
        parse_error(
            18534,
            format!("Unrecognized parameter to $dateToString: {k}"),
        )
    })?;
    let Some(date) = got.first().copied().flatten() else {
        return Err(parse_error(
            18628,
            "Missing 'date' parameter to $dateToString",
        ));
    };
    if let Some(Bson::String(f)) = got.get(1).copied().flatten() {
        check_format(f).map_err(|e| match e {
            super::super::Error::Expression { code, message } => parse_error(code, message),
            other => other,
        })?;
    }
    let mut args = vec![compile(date)?];
    for i in 1..4 {
        args.push(match got.get(i).copied().flatten() {
            Some(v) => compile(v)?,
            None => Expr::Absent,
        });
    }
    Ok(Expr::Op(expr::Op::Date(DateOp::ToString), args))
}

/// Compiles `$dateFromString: {dateString, format, timezone, onError, onNull}`.
pub(crate) fn compile_from_string(
    arg: &Bson,
    mut compile: impl FnMut(&Bson) -> Result<Expr>,
) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            40540,
            format!(
                "$dateFromString only supports an object as an argument, found: {}",
                type_of(Some(arg))
            ),
        ));
    };
    let names = ["dateString", "format", "timezone", "onError", "onNull"];
    let got = named_operands(spec, &names, |k| {
        parse_error(
            40541,
            format!("Unrecognized argument to $dateFromString: {k}"),
        )
    })?;
    if got.first().copied().flatten().is_none() {
        return Err(parse_error(
            40542,
            "Missing 'dateString' parameter to $dateFromString",
        ));
    }
    let mut args = Vec::with_capacity(names.len());
    for i in 0..names.len() {
        args.push(match got.get(i).copied().flatten() {
            Some(v) => compile(v)?,
            None => Expr::Absent,
        });
    }
    Ok(Expr::Lazy(Lazy::DateFromString, args))
}

/// The `timezone` operand: `None` when it is null (the result is then null); absent, UTC.
///
/// # Errors
/// 40517 for a value that is no string, 40485 for a name no zone has.
pub(super) fn timezone(v: Option<&Bson>, given: bool) -> Result<Option<Zone>> {
    if !given {
        return Ok(Some(Zone::UTC));
    }
    let Some(v) = v.filter(|v| !nullish(Some(v))) else {
        return Ok(None);
    };
    let Bson::String(s) = v else {
        return Err(eval_error(
            40517,
            format!(
                "timezone must evaluate to a string, found {}",
                type_of(Some(v))
            ),
        ));
    };
    Zone::named(s)
        .map(Some)
        .ok_or_else(|| eval_error(40485, format!("unrecognized time zone identifier: \"{s}\"")))
}

/// A value as a date in milliseconds (MongoDB's `coerceToDate`: a date, a timestamp's seconds,
/// an ObjectId's creation time); other types fail with code 16006.
pub(super) fn coerce_to_date(v: &Bson) -> Result<i64> {
    match v {
        Bson::DateTime(d) => Ok(d.timestamp_millis()),
        Bson::Timestamp(t) => Ok(i64::from(t.time) * 1000),
        Bson::ObjectId(o) => Ok(o.timestamp().timestamp_millis()),
        other => Err(eval_error(
            16006,
            format!(
                "can't convert from BSON type {} to Date",
                type_of(Some(other))
            ),
        )),
    }
}

/// The calendar fields of an instant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Parts {
    pub(super) year: i64,
    pub(super) month: i64,
    pub(super) day: i64,
    pub(super) hour: i64,
    pub(super) minute: i64,
    pub(super) second: i64,
    pub(super) millis: i64,
    /// Days since 1970-01-01.
    pub(super) days: i64,
}

pub(super) const MS_PER_DAY: i64 = 86_400_000;

pub(super) fn parts_of(ms: i64) -> Parts {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: in_day / 3_600_000,
        minute: in_day / 60_000 % 60,
        second: in_day / 1000 % 60,
        millis: in_day % 1000,
        days,
    }
}

/// (year, month 1..=12, day 1..=31) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number of (year, month, day).
pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(super) fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Parts {
    /// 1 (Sunday) ..= 7 (Saturday).
    fn day_of_week(&self) -> i64 {
        (self.days + 4).rem_euclid(7) + 1
    }

    /// 1 (Monday) ..= 7 (Sunday).
    pub(super) fn iso_day_of_week(&self) -> i64 {
        (self.days + 3).rem_euclid(7) + 1
    }

    /// 1 ..= 366.
    fn day_of_year(&self) -> i64 {
        self.days - days_from_civil(self.year, 1, 1) + 1
    }

    /// (ISO week-numbering year, ISO week 1 ..= 53): the week holding this week's Thursday.
    pub(super) fn iso_week(&self) -> (i64, i64) {
        let thursday = self.days - (self.iso_day_of_week() - 1) + 3;
        let (year, _, _) = civil_from_days(thursday);
        (year, (thursday - days_from_civil(year, 1, 1)) / 7 + 1)
    }

    /// 0 ..= 53: weeks starting on Sunday, days before the year's first Sunday in week 0.
    fn week_of_year(&self) -> i64 {
        (self.day_of_year() - 1 + 7 - (self.day_of_week() - 1)) / 7
    }
}

/// A date as MongoDB writes one in text: `1970-01-01T00:00:00.000Z`.
pub(crate) fn iso_string(ms: i64) -> String {
    format_date(ms, &Zone::UTC, ISO_FORMAT_Z).unwrap_or_default()
}

/// `$dateToString`'s default format in UTC.
const ISO_FORMAT_Z: &str = "%Y-%m-%dT%H:%M:%S.%LZ";
/// `$dateToString`'s default format in any other zone (an IANA name for UTC, such as
/// `Etc/UTC`, included: MongoDB keeps the `Z` for its UTC zone only).
const ISO_FORMAT: &str = "%Y-%m-%dT%H:%M:%S.%L";

/// Checks a `$dateToString` format (codes 18535, 18536).
fn check_format(format: &str) -> Result<()> {
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        match chars.next() {
            None => return Err(eval_error(18535, "Unmatched '%' at end of format string")),
            Some(
                'd' | 'G' | 'H' | 'j' | 'L' | 'm' | 'M' | 'S' | 'u' | 'U' | 'V' | 'w' | 'Y' | 'z'
                | 'Z' | '%',
            ) => {}
            Some(other) => {
                return Err(eval_error(
                    18536,
                    format!("Invalid format character '%{other}' in format string"),
                ));
            }
        }
    }
    Ok(())
}

/// Formats `ms` (UTC) in `zone`.
fn format_date(ms: i64, zone: &Zone, format: &str) -> Result<String> {
    check_format(format)?;
    let p = parts_of(zone.to_local(ms));
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let piece = match chars.next().unwrap_or('%') {
            'd' => format!("{:02}", p.day),
            'G' => format!("{:04}", p.iso_week().0),
            'H' => format!("{:02}", p.hour),
            'j' => format!("{:03}", p.day_of_year()),
            'L' => format!("{:03}", p.millis),
            'm' => format!("{:02}", p.month),
            'M' => format!("{:02}", p.minute),
            'S' => format!("{:02}", p.second),
            'u' => p.iso_day_of_week().to_string(),
            'U' => format!("{:02}", p.week_of_year()),
            'V' => format!("{:02}", p.iso_week().1),
            'w' => p.day_of_week().to_string(),
            'Y' => format!("{:04}", p.year),
            // MongoDB's `utcOffset` in seconds: `%z` as ±hhmm (whole hours, then the
            // minutes left, both toward zero), `%Z` as signed minutes with no `+`.
            'z' => {
                let offset = zone.utc_offset(ms);
                format!(
                    "{}{:02}{:02}",
                    if offset < 0 { '-' } else { '+' },
                    (offset / 3600).abs(),
                    (offset / 60).abs() % 60
                )
            }
            'Z' => (zone.utc_offset(ms) / 60).to_string(),
            _ => "%".to_owned(),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

/// Evaluates a date operator over its evaluated operands.
pub(crate) fn apply(op: DateOp, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let get = |i: usize| vals.get(i).and_then(Option::as_ref);
    let given = |i: usize| vals.get(i).is_some_and(Option::is_some);
    if op == DateOp::ToString {
        return to_string(vals);
    }
    let date = get(0);
    if nullish(date) {
        return Ok(Some(Bson::Null));
    }
    let Some(zone) = timezone(get(1), given(1))? else {
        return Ok(Some(Bson::Null));
    };
    let ms = coerce_to_date(date.unwrap_or(&Bson::Null))?;
    let p = parts_of(zone.to_local(ms));
    let n = match op {
        DateOp::Year => p.year,
        DateOp::Month => p.month,
        DateOp::DayOfMonth => p.day,
        DateOp::Hour => p.hour,
        DateOp::Minute => p.minute,
        DateOp::Second => p.second,
        DateOp::Millisecond => p.millis,
        DateOp::DayOfWeek => p.day_of_week(),
        DateOp::DayOfYear => p.day_of_year(),
        DateOp::IsoWeek => p.iso_week().1,
        DateOp::IsoWeekYear => p.iso_week().0,
        DateOp::Week => p.week_of_year(),
        DateOp::IsoDayOfWeek | DateOp::ToString => p.iso_day_of_week(),
    };
    Ok(Some(i32::try_from(n).map_or(Bson::Int64(n), Bson::Int32)))
}

/// `$dateToString` over `[date, format, timezone, onNull]`.
fn to_string(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let get = |i: usize| vals.get(i).and_then(Option::as_ref);
    let format = get(1);
    if let Some(f) = format.filter(|f| !nullish(Some(f))) {
        let Bson::String(f) = f else {
            return Err(eval_error(
                18533,
                format!(
                    "$dateToString requires that 'format' be a string, found: {} with value {}",
                    type_of(Some(f)),
                    render(Some(f))
                ),
            ));
        };
        check_format(f)?;
    }
    let date = get(0);
    if nullish(date) {
        // onNull is given when its operand was (a missing onNull gives missing).
        return Ok(match vals.get(3) {
            Some(v @ Some(_)) => v.clone(),
            _ => Some(Bson::Null),
        });
    }
    let format_given = vals.get(1).is_some_and(Option::is_some);
    if format_given && nullish(format) {
        return Ok(Some(Bson::Null));
    }
    let tz_given = vals.get(2).is_some_and(Option::is_some);
    let Some(zone) = timezone(get(2), tz_given)? else {
        return Ok(Some(Bson::Null));
    };
    let ms = coerce_to_date(date.unwrap_or(&Bson::Null))?;
    let format = match format {
        Some(Bson::String(f)) => f.as_str(),
        _ if zone.is_utc() => ISO_FORMAT_Z,
        _ => ISO_FORMAT,
    };
    Ok(Some(Bson::String(format_date(ms, &zone, format)?)))
}

/// Evaluates `$dateFromString`'s `[dateString, format, timezone, onError, onNull]`.
pub(crate) fn eval_from_string(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let arg = |i: usize| args.get(i).unwrap_or(&expr::ABSENT);
    let input = arg(0).eval(cx)?;
    let format = arg(1).eval(cx)?;
    let tz = arg(2).eval(cx)?;
    if nullish(input.as_ref()) {
        return match arg(4) {
            Expr::Absent => Ok(Some(Bson::Null)),
            on_null => on_null.eval(cx),
        };
    }
    let fail = |message: String, cx: &mut Scope<'_>| match arg(3) {
        Expr::Absent => Err(eval_error(241, message)),
        on_error => on_error.eval(cx),
    };
    let Some(Bson::String(s)) = input.as_ref() else {
        return fail(
            format!(
                "$dateFromString requires that 'dateString' be a string, found: {} with value {}",
                type_of(input.as_ref()),
                render(input.as_ref())
            ),
            cx,
        );
    };
    let format = match (&format, matches!(arg(1), Expr::Absent)) {
        (_, true) => None,
        (Some(Bson::String(f)), false) => Some(f.as_str()),
        (f, false) if nullish(f.as_ref()) => return Ok(Some(Bson::Null)),
        (f, false) => {
            return Err(eval_error(
                40684,
                format!(
                    "$dateFromString requires that 'format' be a string, found: {} with value {}",
                    type_of(f.as_ref()),
                    render(f.as_ref())
                ),
            ));
        }
    };
    let Some(zone) = timezone(tz.as_ref(), !matches!(arg(2), Expr::Absent))? else {
        return Ok(Some(Bson::Null));
    };
    let parsed = match format {
        None => read_iso(s),
        Some(f) => read_with_format(s, f),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(reason) => return fail(format!("Error parsing date string '{s}'; {reason}"), cx),
    };
    match parsed.instant(&zone) {
        Ok(ms) => Ok(Some(Bson::DateTime(bson::DateTime::from_millis(ms)))),
        Err(message) => fail(message.to_owned(), cx),
    }
}

/// A zone a date string names itself.
#[derive(Debug, Clone, Copy)]
enum TextZone {
    /// `Z`, which timelib reads as a zone abbreviation.
    Z,
    /// `±hh[[:]mm]`, in minutes east of UTC.
    Offset(i64),
}

/// A date read from text, before its zone is applied.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    /// The wall-clock time the text gives, in milliseconds since 1970-01-01.
    local: i64,
    /// The zone the text names, if any.
    zone: Option<TextZone>,
}

impl Parsed {
    /// The instant, as MongoDB's `TimeZoneDatabase::fromString` gives it: at the text's own
    /// zone when it names one (refused with a `timezone` other than UTC), else in `zone`,
    /// a DST fold decided by the zone's flag at 1970-01-01T00:00Z (timelib sets the parsed
    /// time's zone at its zero instant).
    fn instant(self, zone: &Zone) -> std::result::Result<i64, &'static str> {
        match self.zone {
            Some(TextZone::Offset(_)) if !zone.is_utc() => Err(
                "you cannot pass in a date/time string with GMT offset together with a timezone argument",
            ),
            Some(TextZone::Z) if !zone.is_utc() => Err(
                "you cannot pass in a date/time string with time zone information ('Z') together with a timezone argument",
            ),
            Some(TextZone::Offset(minutes)) => Ok(self.local.saturating_sub(minutes * 60_000)),
            Some(TextZone::Z) => Ok(self.local),
            // A year of four digits keeps the instant far inside the range of a date.
            None => Ok(zone
                .instant_of_local(self.local, zone.is_dst(0))
                .unwrap_or(self.local)),
        }
    }
}

/// A reader over date text.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` digits.
    fn digits(&mut self, n: usize) -> std::result::Result<i64, String> {
        let mut v = 0i64;
        for _ in 0..n {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    v = v * 10 + i64::from(b - b'0');
                    self.at += 1;
                }
                _ => return Err(format!("{}: Unexpected data found.", self.at)),
            }
        }
        Ok(v)
    }

    /// One to `max` digits, scaled as a fraction to milliseconds.
    fn fraction_ms(&mut self) -> std::result::Result<i64, String> {
        let start = self.at;
        let mut ms = 0i64;
        let mut n = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            if n < 3 {
                ms = ms * 10 + i64::from(b - b'0');
            }
            n += 1;
            self.at += 1;
        }
        if self.at == start {
            return Err(format!("{}: Unexpected data found.", self.at));
        }
        for _ in n..3 {
            ms *= 10;
        }
        Ok(ms)
    }

    /// `Z`, `±hh`, `±hhmm` or `±hh:mm`; `None` when there is none.
    fn zone(&mut self) -> std::result::Result<Option<TextZone>, String> {
        if self.eat(b'Z') {
            return Ok(Some(TextZone::Z));
        }
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Ok(None),
        };
        self.at += 1;
        let h = self.digits(2)?;
        let colon = self.eat(b':');
        let m = if colon || self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.digits(2)?
        } else {
            0
        };
        Ok(Some(TextZone::Offset(sign * (h * 60 + m))))
    }
}

/// A checked calendar date and time, and the zone its text named.
fn parsed(
    (y, mo, d): (i64, i64, i64),
    (h, mi, s, ms): (i64, i64, i64, i64),
    zone: Option<TextZone>,
) -> std::result::Result<Parsed, String> {
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return Err("The parsed date was invalid".to_owned());
    }
    if h > 23 || mi > 59 || s > 59 {
        return Err("The parsed time was invalid".to_owned());
    }
    Ok(Parsed {
        local: days_from_civil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + ms,
        zone,
    })
}

/// An ISO-8601 date read in UTC (`$convert`'s string to date), as [`read_iso`] reads it.
pub(crate) fn parse_iso(s: &str) -> std::result::Result<i64, String> {
    read_iso(s)?.instant(&Zone::UTC).map_err(str::to_owned)
}

/// An ISO-8601 date: `YYYY-MM-DD`, optionally `T` (or a space) `HH:MM[:SS[.fff]]` and a zone
/// (`Z`, `±hh[:mm]`).
fn read_iso(s: &str) -> std::result::Result<Parsed, String> {
    let mut r = Reader {
        text: s.as_bytes(),
        at: 0,
    };
    let y = r.digits(4)?;
    let sep = r.eat(b'-');
    let mo = r.digits(2)?;
    if sep && !r.eat(b'-') {
        return Err(format!("{}: Unexpected data found.", r.at));
    }
    let d = r.digits(2)?;
    let (mut h, mut mi, mut sec, mut ms) = (0, 0, 0, 0);
    if r.eat(b'T') || r.eat(b' ') {
        h = r.digits(2)?;
        let colon = r.eat(b':');
        mi = r.digits(2)?;
        if (colon && r.eat(b':')) || (!colon && r.peek().is_some_and(|b| b.is_ascii_digit())) {
            sec = r.digits(2)?;
            if r.eat(b'.') || r.eat(b',') {
                ms = r.fraction_ms()?;
            }
        }
    }
    let zone = r.zone()?;
    if r.at != r.text.len() {
        return Err(format!("{}: Trailing data", r.at));
    }
    parsed((y, mo, d), (h, mi, sec, ms), zone)
}

/// A date read with a `$dateFromString` format (`%Y %m %d %H %M %S %L %z %Z %%`).
fn read_with_format(s: &str, format: &str) -> std::result::Result<Parsed, String> {
    let mut r = Reader {
        text: s.as_bytes(),
        at: 0,
    };
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut ms) = (1970, 1, 1, 0, 0, 0, 0);
    let mut zone = None;
    let mut f = format.chars();
    while let Some(c) = f.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                if !r.eat(b) {
                    return Err(format!("{}: Format literal not found", r.at));
                }
            }
            continue;
        }
        match f.next() {
            Some('Y') => y = r.digits(4)?,
            Some('m') => mo = r.digits(2)?,
            Some('d') => d = r.digits(2)?,
            Some('H') => h = r.digits(2)?,
            Some('M') => mi = r.digits(2)?,
            Some('S') => sec = r.digits(2)?,
            Some('L') => ms = r.fraction_ms()?,
            Some('z' | 'Z') => zone = r.zone()?,
            Some('%') => {
                if !r.eat(b'%') {
                    return Err(format!("{}: Format literal not found", r.at));
                }
            }
            Some(other) => {
                return Err(format!("Format specifier '%{other}' is not supported here"));
            }
            None => return Err("Unmatched '%' at end of format string".to_owned()),
        }
    }
    if r.at != r.text.len() {
        return Err(format!("{}: Trailing data", r.at));
    }
    parsed((y, mo, d), (h, mi, sec, ms), zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips_and_knows_iso_weeks() {
        for days in [-800_000, -1, 0, 59, 365, 10_957, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2021-01-03 is a Sunday in ISO week 53 of 2020; 2021-01-04 starts week 1.
        let sunday = parts_of(days_from_civil(2021, 1, 3) * MS_PER_DAY);
        assert_eq!((sunday.day_of_week(), sunday.iso_day_of_week()), (1, 7));
        assert_eq!(sunday.iso_week(), (2020, 53));
        let monday = parts_of(days_from_civil(2021, 1, 4) * MS_PER_DAY);
        assert_eq!(monday.iso_week(), (2021, 1));
        assert_eq!(parse_iso("1970-01-02"), Ok(MS_PER_DAY));
        assert_eq!(parse_iso("1970-01-01T01:00:00.5+01:00"), Ok(500));
    }
}
