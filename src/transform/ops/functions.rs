//! JOLT 0.1.8's modifier function library, and the table of custom functions callers can add.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::transform::{PAD_WIDTH_MAX, REGEX_COMPILED_BYTES_MAX, SPLIT_REGEX_BYTES_MAX};

/// A custom modifier function: gets the evaluated arguments (a missing value is `null`) and
/// returns the value to write, or `None` to write nothing.
pub(crate) type CustomFn = dyn Fn(&[Value]) -> Option<Value> + Send + Sync;

/// Custom functions for modifier specs, by name (see
/// [`Spec::parse_with_functions`](crate::transform::Spec::parse_with_functions)).
#[derive(Clone, Default)]
pub struct Functions {
    map: BTreeMap<String, Arc<CustomFn>>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Functions {
    /// Adds (or replaces) the function `name`.
    pub fn insert(
        &mut self,
        name: &str,
        function: impl Fn(&[Value]) -> Option<Value> + Send + Sync + 'static,
    ) {
        self.map.insert(name.to_owned(), Arc::new(function));
    }

    /// The custom function `name`, if any.
    #[allow(
        dead_code,
        reason = "called by the modifier once function lookup is wired"
    )]
    pub(crate) fn get(&self, name: &str) -> Option<Arc<CustomFn>> {
        self.map.get(name).cloned()
    }
}

/// A number as JOLT's Java code sees it: JSON integers that fit 32 bits are `Integer`, larger
/// ones `Long`, and decimals `Double`.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i32),
    Long(i64),
    Double(f64),
}

impl Num {
    fn of(v: &Value) -> Option<Num> {
        let Value::Number(n) = v else { return None };
        if let Some(i) = n.as_i64() {
            return Some(i32::try_from(i).map_or(Num::Long(i), Num::Int));
        }
        n.as_f64().map(Num::Double)
    }

    /// Java's `Objects.toNumber`: numbers, and strings that parse as int, long or double.
    fn parse(v: &Value) -> Option<Num> {
        match v {
            Value::Number(_) => Num::of(v),
            // `Integer.parseInt` accepts exactly the text `Long.parseLong` does within the int
            // range.
            Value::String(s) => match java_parse_long(s) {
                Some(l) => Some(i32::try_from(l).map_or(Num::Long(l), Num::Int)),
                None => java_parse_double(s).map(Num::Double),
            },
            _ => None,
        }
    }

    fn to_value(self) -> Value {
        match self {
            Num::Int(i) => Value::from(i),
            Num::Long(l) => Value::from(l),
            Num::Double(d) => double_value(d),
        }
    }

    fn double(self) -> f64 {
        match self {
            Num::Int(i) => f64::from(i),
            #[allow(
                clippy::cast_precision_loss,
                reason = "Java's Number.doubleValue() loses the same precision"
            )]
            Num::Long(l) => l as f64,
            Num::Double(d) => d,
        }
    }

    fn long(self) -> i64 {
        match self {
            Num::Int(i) => i64::from(i),
            Num::Long(l) => l,
            #[allow(
                clippy::cast_possible_truncation,
                reason = "Java's (long) cast saturates the same way"
            )]
            Num::Double(d) => d as i64,
        }
    }

    fn int(self) -> i32 {
        match self {
            Num::Int(i) => i,
            #[allow(
                clippy::cast_possible_truncation,
                reason = "Java's Number.intValue() truncates the same way"
            )]
            Num::Long(l) => l as i32,
            #[allow(
                clippy::cast_possible_truncation,
                reason = "Java's (int) cast saturates the same way"
            )]
            Num::Double(d) => d as i32,
        }
    }
}

/// A function argument's literal text as `FunctionArg.forLiteral` reads it with
/// `Objects.toNumber`: an int, a long, or a double as `Double.parseDouble` reads it (`1d`,
/// `2.5f`); `None` for text that is not a number and for NaN and infinities, which JSON
/// cannot hold (the argument stays text).
pub(crate) fn literal_number(text: &str) -> Option<Value> {
    match Num::parse(&Value::from(text))? {
        Num::Double(d) if !d.is_finite() => None,
        n => Some(n.to_value()),
    }
}

/// The code points of the digit zero of every run of Unicode decimal digits (general category
/// Nd) in the Basic Multilingual Plane, as of Unicode 14 (no later version adds one there); each
/// run holds 0 to 9 in order. Java's `Character.digit(char, 10)` reads these; a digit outside
/// the plane is two `char`s, neither of them a digit.
const DECIMAL_DIGIT_ZEROS: [u32; 37] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10,
];

/// Java's `Character.digit(c, 10)`: the value of a Unicode decimal digit of the Basic
/// Multilingual Plane (`٤` is 4, `４` is 4), `None` for anything else.
fn java_decimal_digit(c: char) -> Option<u32> {
    let c = u32::from(c);
    // The zeros are sorted: the run `c` may belong to starts at the last zero at or below it.
    let zero = DECIMAL_DIGIT_ZEROS
        .iter()
        .copied()
        .take_while(|z| *z <= c)
        .last()?;
    let value = c - zero;
    (value < 10).then_some(value)
}

/// Java's `Long.parseLong`: an optional ASCII `+` or `-`, then one or more decimal digits of
/// any script ([`java_decimal_digit`]), within the long range; no whitespace.
fn java_parse_long(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated negatively, as Java does, so that the long minimum fits.
    let mut value: i64 = 0;
    for c in digits.chars() {
        let digit = i64::from(java_decimal_digit(c)?);
        value = value.checked_mul(10)?.checked_sub(digit)?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// A double as jolt-core's output holds it and Jackson writes it: a finite one as a JSON
/// number, an infinity or NaN (`Double.parseDouble("1e400")`, a sum past the double range) as
/// the string Jackson writes for it (`QUOTE_NON_NUMERIC_NUMBERS`, on by default): `"Infinity"`,
/// `"-Infinity"`, `"NaN"`. Java's `Objects.toNumber` reads those strings back as the same
/// double, so a later function sees the value it would have seen in jolt-core.
fn double_value(d: f64) -> Value {
    serde_json::Number::from_f64(d).map_or_else(|| Value::from(java_double(d)), Value::Number)
}

/// Java's `Double.parseDouble`, close enough: surrounding whitespace allowed, `NaN` and
/// `Infinity` spelled Java's way, hexadecimal text ([`java_parse_hex_double`]), and a trailing
/// `d`/`f` type suffix after digits (never after `NaN` or `Infinity`, which must end the text).
fn java_parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let t = match t.strip_suffix(['d', 'D', 'f', 'F']) {
        Some(rest) if rest.ends_with("Infinity") || rest.ends_with("NaN") => return None,
        Some(rest) => rest,
        None => t,
    };
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        let magnitude = java_parse_hex_double(hex)?;
        return Some(if negative { -magnitude } else { magnitude });
    }
    let lower = t.to_ascii_lowercase();
    if lower.contains("inf") && !t.contains("Infinity")
        || lower.contains("nan") && !t.contains("NaN")
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// The magnitude of hexadecimal floating-point text after its sign and `0x`, in the grammar of
/// Java's `Double.valueOf`: hex digits with an optional `.` and fraction digits (at least one
/// digit in all), then a binary exponent that cannot be left out (`p`/`P`, an optional sign,
/// ASCII digits). The value is rounded to the nearest double, ties to even, through the
/// subnormals and past the largest double to infinity. As in `FloatingDecimal.parseHexString`, a
/// zero significand is zero whatever the exponent, and an exponent past the `int` range is an
/// infinity or zero by its sign.
fn java_parse_hex_double(text: &str) -> Option<f64> {
    let (significand, exponent) = text.split_once(['p', 'P'])?;
    let (whole, fraction) = significand.split_once('.').unwrap_or((significand, ""));
    if whole.len() + fraction.len() == 0 {
        return None;
    }
    let (exponent_negative, exponent_digits) = match exponent.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exponent.strip_prefix('+').unwrap_or(exponent)),
    };
    if exponent_digits.is_empty() || !exponent_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The significand's first 16 significant hex digits (at least 61 bits, more than a double's
    // 53 and a rounding bit), the count of digits after them, and whether any of those is not 0.
    let mut top: u64 = 0;
    let mut top_digits = 0_i64;
    let mut rest_digits = 0_i64;
    let mut rest_nonzero = false;
    for c in whole.chars().chain(fraction.chars()) {
        let digit = c.to_digit(16)?;
        if top_digits < 16 {
            if top != 0 || digit != 0 {
                top = top << 4 | u64::from(digit);
                top_digits += 1;
            }
        } else {
            rest_digits += 1;
            rest_nonzero |= digit != 0;
        }
    }
    if top == 0 {
        return Some(0.0);
    }
    let Ok(exponent) = exponent_digits.parse::<i32>() else {
        return Some(if exponent_negative {
            0.0
        } else {
            f64::INFINITY
        });
    };
    let exponent = if exponent_negative {
        -i64::from(exponent)
    } else {
        i64::from(exponent)
    };
    // The text's digit counts are bounded by its length, far inside an i64.
    let fraction_digits = i64::try_from(fraction.len()).ok()?;
    let scale = exponent - 4 * fraction_digits + 4 * rest_digits;
    Some(round_to_double(top, scale, rest_nonzero))
}

/// The double nearest `m * 2^scale` (ties to even), where `sticky` says the true value lies a
/// little above that (digits past `m` that are not all zero). `m` is not zero.
fn round_to_double(m: u64, scale: i64, sticky: bool) -> f64 {
    const MANTISSA_BITS: i64 = 52;
    const EXPONENT_MIN: i64 = -1022;
    const EXPONENT_MAX: i64 = 1023;
    let bits = i64::from(u64::BITS - m.leading_zeros());
    // The power of two of the value's leading bit, and how many bits of it a double keeps there.
    let leading = scale + bits - 1;
    if leading > EXPONENT_MAX {
        return f64::INFINITY;
    }
    let kept = if leading >= EXPONENT_MIN {
        MANTISSA_BITS + 1
    } else {
        leading - EXPONENT_MIN + MANTISSA_BITS + 1
    };
    let shift = bits - kept;
    let m = u128::from(m);
    let q = if shift <= 0 {
        // Every bit fits: no rounding, and `sticky` is only ever set past 53 bits.
        m << -shift
    } else if shift > bits {
        // Below half the smallest subnormal.
        return 0.0;
    } else {
        let q = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let up = rem > half || rem == half && (sticky || q & 1 == 1);
        q + u128::from(up)
    };
    // The power of two of `q`'s last bit: the smallest subnormal's when the value is one.
    let unit = leading + 1 - kept;
    let (q, unit) = if q >> (MANTISSA_BITS + 1) != 0 {
        (q >> 1, unit + 1)
    } else {
        (q, unit)
    };
    if q == 0 {
        return 0.0;
    }
    let implicit = 1_u128 << MANTISSA_BITS;
    let raw = if q >= implicit {
        let biased = unit + MANTISSA_BITS - EXPONENT_MIN + 1;
        if biased > 2 * EXPONENT_MAX {
            return f64::INFINITY;
        }
        // `biased` is in 1..=2046 here (the leading bit was checked against both ends).
        u128::from(biased.unsigned_abs()) << MANTISSA_BITS | (q - implicit)
    } else {
        q
    };
    u64::try_from(raw).map_or(f64::INFINITY, f64::from_bits)
}

/// Java's `Double.toString`.
fn java_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let abs = d.abs();
    if d == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{d:?}");
        return if s.contains('.') || s.contains('e') {
            s
        } else {
            format!("{s}.0")
        };
    }
    let s = format!("{d:E}");
    match s.split_once('E') {
        Some((mantissa, exp)) if !mantissa.contains('.') => format!("{mantissa}.0E{exp}"),
        _ => s,
    }
}

/// Java's `String.valueOf` of a JSON value (`List.toString`, `Map.toString` for containers).
pub(crate) fn java_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        // An integer past i64 is a `BigInteger` to Jackson, spelled in full.
        Value::Number(n) if n.is_u64() => v.to_string(),
        Value::Number(_) => match Num::of(v) {
            Some(Num::Double(d)) => java_double(d),
            Some(n) => n.long().to_string(),
            None => v.to_string(),
        },
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(java_string).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| format!("{k}={}", java_string(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

fn is_java_integer(v: &Value) -> Option<i32> {
    match Num::of(v) {
        Some(Num::Int(i)) => Some(i),
        _ => None,
    }
}

/// The stock functions of JOLT 0.1.8's `Modifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stock {
    ToLower,
    ToUpper,
    Concat,
    Join,
    Split,
    Substring,
    Trim,
    LeftPad,
    RightPad,
    Min,
    Max,
    Abs,
    Avg,
    IntSum,
    DoubleSum,
    LongSum,
    IntSubtract,
    DoubleSubtract,
    LongSubtract,
    Divide,
    DivideAndRound,
    ToInteger,
    ToDouble,
    ToLong,
    ToBoolean,
    ToStringFn,
    Size,
    SquashNulls,
    RecursivelySquashNulls,
    SquashDuplicates,
    Noop,
    IsPresent,
    NotNull,
    IsNull,
    FirstElement,
    LastElement,
    ElementAt,
    ToList,
    Sort,
}

impl Stock {
    /// The stock function called `name`.
    pub(crate) fn by_name(name: &str) -> Option<Stock> {
        Some(match name {
            "toLower" => Stock::ToLower,
            "toUpper" => Stock::ToUpper,
            "concat" => Stock::Concat,
            "join" => Stock::Join,
            "split" => Stock::Split,
            "substring" => Stock::Substring,
            "trim" => Stock::Trim,
            "leftPad" => Stock::LeftPad,
            "rightPad" => Stock::RightPad,
            "min" => Stock::Min,
            "max" => Stock::Max,
            "abs" => Stock::Abs,
            "avg" => Stock::Avg,
            "intSum" => Stock::IntSum,
            "doubleSum" => Stock::DoubleSum,
            "longSum" => Stock::LongSum,
            "intSubtract" => Stock::IntSubtract,
            "doubleSubtract" => Stock::DoubleSubtract,
            "longSubtract" => Stock::LongSubtract,
            "divide" => Stock::Divide,
            "divideAndRound" => Stock::DivideAndRound,
            "toInteger" => Stock::ToInteger,
            "toDouble" => Stock::ToDouble,
            "toLong" => Stock::ToLong,
            "toBoolean" => Stock::ToBoolean,
            "toString" => Stock::ToStringFn,
            "size" => Stock::Size,
            "squashNulls" => Stock::SquashNulls,
            "recursivelySquashNulls" => Stock::RecursivelySquashNulls,
            "squashDuplicates" => Stock::SquashDuplicates,
            "noop" => Stock::Noop,
            "isPresent" => Stock::IsPresent,
            "notNull" => Stock::NotNull,
            "isNull" => Stock::IsNull,
            "firstElement" => Stock::FirstElement,
            "lastElement" => Stock::LastElement,
            "elementAt" => Stock::ElementAt,
            "toList" => Stock::ToList,
            "sort" => Stock::Sort,
            _ => return None,
        })
    }

    /// Calls the function. `args` are the evaluated arguments: empty when there were none
    /// (or the only one was missing), one value, or several (missing ones as null).
    pub(crate) fn call(self, args: &[Value]) -> Option<Value> {
        match self {
            Stock::Noop => None,
            Stock::IsPresent => args.first().cloned(),
            Stock::NotNull => args.first().filter(|v| !v.is_null()).cloned(),
            Stock::IsNull => args.first().filter(|v| v.is_null()).cloned(),
            Stock::Size => size(args),
            Stock::SquashNulls | Stock::RecursivelySquashNulls | Stock::SquashDuplicates => {
                squash(self, args)
            }
            Stock::Join
            | Stock::Split
            | Stock::LeftPad
            | Stock::RightPad
            | Stock::ElementAt
            | Stock::DivideAndRound => arg_driven(self, args),
            _ => base(self, args),
        }
    }
}

/// Java's `BaseFunction.apply`: one list argument or several arguments go to the list form,
/// one other non-null argument to the single form.
fn base(f: Stock, args: &[Value]) -> Option<Value> {
    match args {
        [] => None,
        [Value::Array(items)] => {
            if items.is_empty() {
                None
            } else {
                apply_list(f, items)
            }
        }
        [Value::Null] => None,
        [single] => apply_single(f, single),
        many => apply_list(f, many),
    }
}

/// The single-value form; for list-style functions there is none.
fn apply_single(f: Stock, arg: &Value) -> Option<Value> {
    match f {
        Stock::ToLower => arg.as_str().map(|s| Value::from(s.to_lowercase())),
        Stock::ToUpper => arg.as_str().map(|s| Value::from(s.to_uppercase())),
        Stock::Trim => arg
            .as_str()
            .map(|s| Value::from(s.trim_matches(|c: char| c <= ' '))),
        Stock::Min | Stock::Max => arg.is_number().then(|| arg.clone()),
        Stock::Abs => abs(arg),
        Stock::ToInteger => to_integer(arg),
        Stock::ToDouble => match arg {
            Value::Number(_) | Value::String(_) => {
                Num::parse(arg).map(|n| double_value(n.double()))
            }
            _ => None,
        },
        Stock::ToLong => match arg {
            Value::Number(_) | Value::String(_) => Num::parse(arg).map(|n| Value::from(n.long())),
            _ => None,
        },
        Stock::ToBoolean => match arg {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
            _ => None,
        },
        Stock::ToStringFn => Some(Value::from(java_string(arg))),
        Stock::ToList => Some(Value::Array(vec![arg.clone()])),
        Stock::Sort => Some(arg.clone()),
        _ => None,
    }
}

fn to_integer(arg: &Value) -> Option<Value> {
    match arg {
        Value::Number(_) | Value::String(_) => Num::parse(arg).map(|n| Value::from(n.int())),
        _ => None,
    }
}

fn abs(arg: &Value) -> Option<Value> {
    let n = match arg {
        Value::Number(_) => Num::of(arg)?,
        Value::String(_) => Num::parse(arg)?,
        _ => return None,
    };
    Some(match n {
        Num::Int(i) => Value::from(i.wrapping_abs()),
        Num::Long(l) => Value::from(l.wrapping_abs()),
        Num::Double(d) => double_value(d.abs()),
    })
}

/// The list form.
fn apply_list(f: Stock, items: &[Value]) -> Option<Value> {
    match f {
        // Single-value functions map over the list, keeping elements they cannot convert.
        Stock::ToLower
        | Stock::ToUpper
        | Stock::Trim
        | Stock::Abs
        | Stock::ToInteger
        | Stock::ToDouble
        | Stock::ToLong
        | Stock::ToBoolean
        | Stock::ToStringFn => Some(Value::Array(
            items
                .iter()
                .map(|v| apply_single(f, v).unwrap_or_else(|| v.clone()))
                .collect(),
        )),
        Stock::Concat => Some(Value::from(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(java_string)
                .collect::<String>(),
        )),
        Stock::Substring => substring(items),
        Stock::Min => min_max(items, false),
        Stock::Max => min_max(items, true),
        Stock::Avg => {
            let nums: Vec<f64> = items
                .iter()
                .filter_map(Num::parse)
                .map(Num::double)
                .collect();
            #[allow(clippy::cast_precision_loss, reason = "a count of list elements")]
            let count = nums.len() as f64;
            (!nums.is_empty()).then(|| double_value(nums.iter().sum::<f64>() / count))
        }
        Stock::IntSum => Some(Value::from(
            items
                .iter()
                .filter_map(|v| to_integer(v).and_then(|i| Num::of(&i)))
                .fold(0i32, |a, n| a.wrapping_add(n.int())),
        )),
        Stock::DoubleSum => Some(double_value(
            items
                .iter()
                .filter(|v| v.is_number() || v.is_string())
                .filter_map(Num::parse)
                .map(Num::double)
                .sum::<f64>(),
        )),
        Stock::LongSum => Some(Value::from(
            items
                .iter()
                .filter(|v| v.is_number() || v.is_string())
                .filter_map(Num::parse)
                .fold(0i64, |a, n| a.wrapping_add(n.long())),
        )),
        Stock::IntSubtract => match items {
            [a, b] => Some(Value::from(
                is_java_integer(a)?.wrapping_sub(is_java_integer(b)?),
            )),
            _ => None,
        },
        Stock::DoubleSubtract => match (
            items,
            items.iter().map(Num::of).collect::<Vec<_>>().as_slice(),
        ) {
            (_, [Some(Num::Double(a)), Some(Num::Double(b))]) => Some(double_value(a - b)),
            _ => None,
        },
        Stock::LongSubtract => match items.iter().map(Num::of).collect::<Vec<_>>().as_slice() {
            [Some(Num::Long(a)), Some(Num::Long(b))] => Some(Value::from(a.wrapping_sub(*b))),
            _ => None,
        },
        Stock::Divide => divide(items).map(double_value),
        Stock::FirstElement => items.first().cloned(),
        Stock::LastElement => items.last().cloned(),
        Stock::ToList => Some(Value::Array(items.to_vec())),
        Stock::Sort => sort(items),
        _ => None,
    }
}

fn divide(items: &[Value]) -> Option<f64> {
    let [a, b] = items else { return None };
    let numerator = Num::parse(a)?.double();
    let denominator = Num::parse(b)?.double();
    if denominator == 0.0 {
        return None;
    }
    Some(numerator / denominator)
}

/// Digits after the point of the longest exact decimal expansion of an `f64` (the smallest
/// subnormal, 2^-1074, has 1074).
const F64_EXACT_FRACTION_DIGITS: usize = 1074;

/// `new BigDecimal(value).setScale(digits, HALF_UP).doubleValue()`: the exact binary value is
/// rounded (so 0.15, stored as 0.1499…, rounds to 0.1 at one digit), ties away from zero, and
/// the decimal result converted back to the nearest double. `digits` may be negative (tens,
/// hundreds, …). A value that is not finite is returned as it is.
fn round_half_up(value: f64, digits: i32) -> f64 {
    if !value.is_finite() {
        return value;
    }
    // Formatting with every fraction digit the type can have is exact: nothing is rounded.
    let exact = format!("{:.*}", F64_EXACT_FRACTION_DIGITS, value.abs());
    let Some((int, frac)) = exact.split_once('.') else {
        return value;
    };
    let int = int.trim_start_matches('0');
    // All digits, with the decimal point after the first `point` of them.
    let all: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let point = i64::try_from(int.len()).unwrap_or(i64::MAX);
    // Digits kept: those before the rounding position, 10^-digits.
    let keep = point.saturating_add(i64::from(digits));
    let Ok(kept) = usize::try_from(keep) else {
        // The rounding unit exceeds twice the value: it rounds to zero.
        return 0.0;
    };
    if kept >= all.len() {
        return value;
    }
    let mut mantissa: Vec<u8> = all.get(..kept).map(<[u8]>::to_vec).unwrap_or_default();
    if all.get(kept).is_some_and(|d| *d >= 5) {
        let mut carry = true;
        for d in mantissa.iter_mut().rev() {
            if *d == 9 {
                *d = 0;
            } else {
                *d += 1;
                carry = false;
                break;
            }
        }
        if carry {
            mantissa.insert(0, 1);
        }
    }
    if mantissa.iter().all(|d| *d == 0) {
        return 0.0;
    }
    let digits_text: String = mantissa.iter().map(|d| char::from(b'0' + d)).collect();
    // mantissa × 10^-digits, parsed to the nearest double as `doubleValue` converts.
    let Ok(rounded) = format!("{digits_text}e{}", -i64::from(digits)).parse::<f64>() else {
        return value;
    };
    if value < 0.0 { -rounded } else { rounded }
}

fn substring(items: &[Value]) -> Option<Value> {
    let [Value::String(s), start, end] = items else {
        return None;
    };
    let start = is_java_integer(start)?;
    let end = is_java_integer(end)?;
    let len = i32::try_from(s.encode_utf16().count()).ok()?;
    if start >= end || start < 0 || end < 1 || end > len {
        return None;
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    let slice = units.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)?;
    Some(Value::from(String::from_utf16_lossy(slice)))
}

/// Java's `Math.min`/`Math.max` over mixed Integer, Long and Double arguments (strings parsed),
/// returning the winner in its own type.
fn min_max(items: &[Value], max: bool) -> Option<Value> {
    let mut best_int: Option<i32> = None;
    let mut best_long: Option<i64> = None;
    let mut best_double: Option<f64> = None;
    for item in items {
        let n = match item {
            Value::Number(_) => Num::of(item),
            Value::String(_) => Num::parse(item),
            _ => None,
        };
        match n {
            Some(Num::Int(i)) => {
                best_int = Some(best_int.map_or(i, |b| if max { b.max(i) } else { b.min(i) }))
            }
            Some(Num::Long(l)) => {
                best_long = Some(best_long.map_or(l, |b| if max { b.max(l) } else { b.min(l) }))
            }
            Some(Num::Double(d)) => {
                best_double = Some(
                    best_double.map_or(d, |b| if max { java_max(b, d) } else { java_min(b, d) }),
                )
            }
            None => {}
        }
    }
    if best_int.is_none() && best_long.is_none() && best_double.is_none() {
        return None;
    }
    // Java compares the candidates through longValue(), with unset ones at the extreme.
    let (int, long, double) = if max {
        (
            best_int.unwrap_or(i32::MIN),
            best_long.unwrap_or(i64::MIN),
            best_double.unwrap_or(-f64::MAX),
        )
    } else {
        (
            best_int.unwrap_or(i32::MAX),
            best_long.unwrap_or(i64::MAX),
            best_double.unwrap_or(f64::MAX),
        )
    };
    let dl = Num::Double(double).long();
    let il = i64::from(int);
    let pick = if max {
        if il >= dl && il >= long {
            Num::Int(int)
        } else if long >= dl {
            Num::Long(long)
        } else {
            Num::Double(double)
        }
    } else if il <= dl && il <= long {
        Num::Int(int)
    } else if long <= dl {
        Num::Long(long)
    } else {
        Num::Double(double)
    };
    Some(pick.to_value())
}

/// `java.lang.Math.max` for doubles: -0.0 is below 0.0 (Rust's `f64::max` may return
/// either). JSON holds no NaN.
fn java_max(a: f64, b: f64) -> f64 {
    if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a >= b {
        a
    } else {
        b
    }
}

/// `java.lang.Math.min` for doubles: -0.0 is below 0.0.
fn java_min(a: f64, b: f64) -> f64 {
    if a == 0.0 && b == 0.0 {
        if b.is_sign_negative() { b } else { a }
    } else if a <= b {
        a
    } else {
        b
    }
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units, so a character outside
/// the Basic Multilingual Plane (a surrogate pair, 0xD800–0xDFFF) sorts before U+E000–U+FFFF.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `Arrays.sort` over comparable values of one type; mixed or incomparable types give nothing.
/// Fewer than two elements are never compared, so one of any type comes back as it is.
fn sort(items: &[Value]) -> Option<Value> {
    let mut sorted = items.to_vec();
    if items.len() < 2 {
        return Some(Value::Array(sorted));
    }
    if items.iter().all(Value::is_string) {
        sorted.sort_by(|a, b| {
            utf16_cmp(
                a.as_str().unwrap_or_default(),
                b.as_str().unwrap_or_default(),
            )
        });
    } else if items.iter().all(Value::is_boolean) {
        sorted.sort_by_key(|v| v.as_bool());
    } else {
        let nums: Vec<Num> = items.iter().map(Num::of).collect::<Option<Vec<_>>>()?;
        let same = nums.iter().all(|n| matches!(n, Num::Int(_)))
            || nums.iter().all(|n| matches!(n, Num::Long(_)))
            || nums.iter().all(|n| matches!(n, Num::Double(_)));
        if !same {
            return None;
        }
        let mut pairs: Vec<(Num, Value)> = nums.into_iter().zip(items.iter().cloned()).collect();
        // Each type compares by its own value: longs past 2^53 are distinct though their
        // doubles are not.
        pairs.sort_by(|(a, _), (b, _)| match (a, b) {
            (Num::Int(a), Num::Int(b)) => a.cmp(b),
            (Num::Long(a), Num::Long(b)) => a.cmp(b),
            _ => a.double().total_cmp(&b.double()),
        });
        sorted = pairs.into_iter().map(|(_, v)| v).collect();
    }
    Some(Value::Array(sorted))
}

fn size(args: &[Value]) -> Option<Value> {
    match args {
        [] | [Value::Null] => None,
        [Value::Array(items)] => Some(Value::from(items.len())),
        [Value::String(s)] => Some(Value::from(s.encode_utf16().count())),
        [Value::Object(map)] => Some(Value::from(map.len())),
        [_] => None,
        many => Some(Value::from(many.len())),
    }
}

/// Java's `SquashFunction.apply`. Several arguments are squashed as `Arrays.asList(args)`,
/// a fixed-size list whose `removeIf` throws when it finds a null, so `squashNulls` and
/// `recursivelySquashNulls` give nothing when any argument is null.
fn squash(f: Stock, args: &[Value]) -> Option<Value> {
    let arg = match args {
        [] | [Value::Null] => return None,
        [Value::Array(items)] if items.is_empty() => return None,
        [single] => single.clone(),
        many if f != Stock::SquashDuplicates && many.iter().any(Value::is_null) => return None,
        many => Value::Array(many.to_vec()),
    };
    let mut arg = arg;
    match f {
        Stock::SquashNulls => squash_nulls(&mut arg),
        Stock::RecursivelySquashNulls => squash_nulls_deep(&mut arg),
        _ => {
            if let Value::Array(items) = &mut arg {
                let mut seen: Vec<Value> = Vec::with_capacity(items.len());
                for item in items.drain(..) {
                    if !seen.contains(&item) {
                        seen.push(item);
                    }
                }
                *items = seen;
            }
        }
    }
    Some(arg)
}

/// Removes the null elements or members of an array or object, in place.
pub(crate) fn squash_nulls(v: &mut Value) {
    match v {
        Value::Array(items) => items.retain(|i| !i.is_null()),
        Value::Object(map) => map.retain(|_, i| !i.is_null()),
        _ => {}
    }
}

/// [`squash_nulls`] at every level. Depth is bounded by the document depth limit checked
/// before every operation.
pub(crate) fn squash_nulls_deep(v: &mut Value) {
    squash_nulls(v);
    match v {
        Value::Array(items) => items.iter_mut().for_each(squash_nulls_deep),
        Value::Object(map) => map.values_mut().for_each(squash_nulls_deep),
        _ => {}
    }
}

/// Java's `ArgDrivenFunction.apply`: the first argument is special (a string separator or
/// source, or an integer index), the rest the input.
fn arg_driven(f: Stock, args: &[Value]) -> Option<Value> {
    let args: &[Value] = match args {
        [Value::Array(items)] => items,
        other => other,
    };
    let [special, rest @ ..] = args else {
        return None;
    };
    if rest.is_empty() {
        return None;
    }
    let special_ok = match f {
        Stock::ElementAt | Stock::DivideAndRound => is_java_integer(special).is_some(),
        _ => special.is_string(),
    };
    if !special_ok {
        return None;
    }
    match rest {
        [Value::Array(items)] => arg_list(f, special, items),
        [one] => arg_single(f, special, one),
        many => arg_list(f, special, many),
    }
}

fn arg_single(f: Stock, special: &Value, arg: &Value) -> Option<Value> {
    match f {
        Stock::Split => split(special.as_str()?, arg),
        _ => None,
    }
}

fn arg_list(f: Stock, special: &Value, items: &[Value]) -> Option<Value> {
    match f {
        Stock::Split => Some(Value::Array(
            items
                .iter()
                .map(|v| arg_single(f, special, v).unwrap_or_else(|| v.clone()))
                .collect(),
        )),
        Stock::Join => {
            let sep = special.as_str()?;
            let mut out = String::new();
            let last = items.len().saturating_sub(1);
            for (i, item) in items.iter().enumerate() {
                if item.is_null() {
                    continue;
                }
                let s = java_string(item);
                if !s.is_empty() {
                    out.push_str(&s);
                    if i < last {
                        out.push_str(sep);
                    }
                }
            }
            Some(Value::from(out))
        }
        Stock::ElementAt => {
            let index = usize::try_from(is_java_integer(special)?).ok()?;
            items.get(index).cloned()
        }
        Stock::LeftPad | Stock::RightPad => pad(f == Stock::LeftPad, special.as_str()?, items),
        Stock::DivideAndRound => {
            let quotient = divide(items)?;
            Some(double_value(round_half_up(
                quotient,
                is_java_integer(special)?,
            )))
        }
        _ => None,
    }
}

fn split(separator: &str, source: &Value) -> Option<Value> {
    let Value::String(s) = source else {
        return None;
    };
    if separator.len() > SPLIT_REGEX_BYTES_MAX {
        return None;
    }
    let re = regex::RegexBuilder::new(separator)
        .size_limit(REGEX_COMPILED_BYTES_MAX)
        .build()
        .ok()?;
    let mut parts: Vec<&str> = re.split(s).collect();
    if re.is_match(s) {
        // Java's String.split drops trailing empty strings.
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        // …and a leading empty string produced by a zero-width match at the start.
        if parts.first().is_some_and(|p| p.is_empty()) && re.find(s).is_some_and(|m| m.is_empty()) {
            parts.remove(0);
        }
    }
    Some(Value::Array(parts.into_iter().map(Value::from).collect()))
}

fn pad(left: bool, source: &str, items: &[Value]) -> Option<Value> {
    let [width, Value::String(filler), ..] = items else {
        return None;
    };
    let width = is_java_integer(width)?;
    if width <= 0 || usize::try_from(width).ok()? > PAD_WIDTH_MAX {
        return None;
    }
    // One UTF-16 code unit, as Java's `filler.length() != 1` asks: a character outside the
    // Basic Multilingual Plane is two and fails the function.
    let mut fill = filler.chars();
    let (Some(c), None) = (fill.next(), fill.next()) else {
        return None;
    };
    if c.len_utf16() != 1 {
        return None;
    }
    let len = i32::try_from(source.encode_utf16().count()).ok()?;
    if width <= len {
        return Some(Value::from(source));
    }
    let padding: String = std::iter::repeat_n(c, usize::try_from(width - len).ok()?).collect();
    Some(Value::from(if left {
        format!("{padding}{source}")
    } else {
        format!("{source}{padding}")
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn java_strings_match_java() {
        assert_eq!(java_string(&json!(1.0)), "1.0");
        assert_eq!(java_string(&json!(1e10)), "1.0E10");
        assert_eq!(java_string(&json!([1, "a"])), "[1, a]");
        assert_eq!(java_string(&json!(2)), "2");
    }

    #[test]
    fn decimal_digits_are_read_in_every_run_and_nowhere_else() {
        for zero in DECIMAL_DIGIT_ZEROS {
            for value in 0..10 {
                let c = char::from_u32(zero + value).unwrap();
                assert_eq!(java_decimal_digit(c), Some(value), "{c:?}");
            }
            // Just past each run (the runs do not touch).
            let after = char::from_u32(zero + 10).unwrap();
            assert_eq!(java_decimal_digit(after), None, "{after:?}");
        }
        for c in [
            '/',
            ':',
            'a',
            '\u{065F}',
            '\u{00B2}',
            '\u{2163}',
            '\u{FF1A}',
            '\u{1D7CE}',
        ] {
            assert_eq!(java_decimal_digit(c), None, "{c:?}");
        }
        assert_eq!(java_parse_long("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(java_parse_long("9223372036854775808"), None);
        assert_eq!(java_parse_long("+"), None);
        assert_eq!(java_parse_long(" 1"), None);
    }

    #[test]
    fn min_max_keep_the_winners_type() {
        assert_eq!(
            Stock::Max.call(&[json!(-2), json!(1.0), json!(0)]),
            Some(json!(1.0))
        );
        assert_eq!(
            Stock::Min.call(&[json!(-2), json!(1.0), json!(0.0)]),
            Some(json!(-2))
        );
    }

    #[test]
    fn split_drops_trailing_empties() {
        assert_eq!(
            Stock::Split.call(&[json!(","), json!("a,b,,")]),
            Some(json!(["a", "b"]))
        );
    }

    /// `new BigDecimal(double).setScale(d, HALF_UP)` rounds the double's exact binary value:
    /// 3 / 20 is stored as 0.1499…, so it rounds down, where scaling by 10 and rounding would
    /// give 0.2. Exact ties (0.125, 2.5) go away from zero, and negative scales round to tens.
    #[test]
    fn divide_and_round_rounds_the_exact_value_half_up() {
        let round =
            |d: i64, a: f64, b: f64| Stock::DivideAndRound.call(&[json!(d), json!(a), json!(b)]);
        assert_eq!(round(1, 3.0, 20.0), Some(json!(0.1)));
        assert_eq!(round(2, 2.0, 25.0), Some(json!(0.08)));
        assert_eq!(round(2, 3.0, 40.0), Some(json!(0.07)));
        assert_eq!(round(2, 1.0, 8.0), Some(json!(0.13)));
        assert_eq!(round(2, -1.0, 8.0), Some(json!(-0.13)));
        assert_eq!(round(0, 5.0, 2.0), Some(json!(3.0)));
        assert_eq!(round(-1, 125.0, 1.0), Some(json!(130.0)));
        assert_eq!(round(-1, 4.0, 1.0), Some(json!(0.0)));
        assert_eq!(round(-3, 5.0, 1.0), Some(json!(0.0)));
        assert_eq!(round(3, 2.0, 3.0), Some(json!(0.667)));
        assert_eq!(round(0, 19.0, 2.0), Some(json!(10.0)));
        assert_eq!(round(0, 99.5, 1.0), Some(json!(100.0)));
        assert_eq!(round(2000, 1.0, 3.0), Some(json!(1.0 / 3.0)));
        assert_eq!(round(2, 1.0, 0.0), None);
    }

    /// Java's argument-driven form: the digits first, then the two operands as one list.
    #[test]
    fn divide_and_round_takes_its_operands_as_a_list() {
        assert_eq!(
            Stock::DivideAndRound.call(&[json!(2), json!([10, 3])]),
            Some(json!(3.33))
        );
        assert_eq!(
            Stock::DivideAndRound.call(&[json!([2, 10, 3])]),
            Some(json!(3.33))
        );
        assert_eq!(Stock::DivideAndRound.call(&[json!(2), json!(10)]), None);
        assert_eq!(
            Stock::DivideAndRound.call(&[json!("2"), json!(10), json!(3)]),
            None
        );
    }
}
