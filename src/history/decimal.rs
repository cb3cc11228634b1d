//! Exact Decimal128 arithmetic and comparison when an operand is a Decimal128, as MongoDB
//! computes them: `$inc`, `$mul`, `$add`, `$subtract`, `$multiply`, `$divide`, `$sum`, `$avg`,
//! and the order of filters, sorts and `$group` keys. IEEE 754-2008 decimal128 (34 digits,
//! exponents -6176..=6111, BID encoding as BSON stores it), results rounded half to even, an
//! overflow giving an infinity. The other operand is converted first: an integer exactly; a
//! double for arithmetic rounded to 15 significant digits (MongoDB's `Decimal128(double)`),
//! for a comparison at its exact binary value (so `NumberDecimal("0.1")` is below the double
//! 0.1, as in MongoDB).
//!
//! Coefficients are held as decimal digits while computing, so every intermediate result is
//! exact and rounded once. Operands come from stored values, so exponents are in range and an
//! alignment needs at most the width of that range in digits.
//!
//! Not here: index keys, which order numbers by their nearest double (see `keys.rs`).

use std::cmp::Ordering;

use bson::{Bson, Decimal128};

/// Significant digits of a decimal128 coefficient.
const DIGITS_MAX: usize = 34;
/// Largest exponent (of the coefficient's last digit).
const EXP_MAX: i32 = 6111;
/// Smallest exponent.
const EXP_MIN: i32 = -6176;
/// Added to the exponent in the encoding.
const EXP_BIAS: i32 = 6176;
/// Bits below the exponent in the first encoding form.
const COEFFICIENT_BITS: u32 = 113;
/// Largest canonical coefficient, 10^34 − 1; a bigger encoded one means zero.
const COEFFICIENT_MAX: u128 = 9_999_999_999_999_999_999_999_999_999_999_999;
/// Significant digits a double keeps when it becomes a decimal (MongoDB's default).
const DOUBLE_DIGITS: usize = 15;
/// Significant digits that hold any double exactly (the longest exact decimal expansion of a
/// double has 767): a comparison with a decimal uses the double's exact value, as MongoDB's
/// `compareDecimalToDouble` does.
const DOUBLE_EXACT_DIGITS: usize = 767;

/// An unpacked decimal128 value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dec {
    NaN,
    Infinity { negative: bool },
    Finite(Finite),
}

/// `(-1)^negative × coefficient × 10^exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finite {
    negative: bool,
    /// Coefficient digits, least significant first, without leading zeros (empty for zero).
    digits: Vec<u8>,
    exp: i32,
}

/// `a + b` computed in decimal when either is a Decimal128; `None` when neither is, or when
/// one is not a number.
pub(crate) fn add(a: &Bson, b: &Bson) -> Option<Bson> {
    let (x, y) = operands(a, b)?;
    Some(encode(&sum(x, y)))
}

/// `a × b` computed in decimal when either is a Decimal128; `None` as for [`add`].
pub(crate) fn multiply(a: &Bson, b: &Bson) -> Option<Bson> {
    let (x, y) = operands(a, b)?;
    Some(encode(&product(x, y)))
}

/// A number as a Decimal128 (a double to 15 digits, as MongoDB's arithmetic converts it);
/// `None` for anything else.
pub(crate) fn to_decimal(v: &Bson) -> Option<Bson> {
    Some(encode(&from_bson(v)?))
}

/// `a − b` computed in decimal when either is a Decimal128; `None` as for [`add`].
pub(crate) fn subtract(a: &Bson, b: &Bson) -> Option<Bson> {
    let (x, y) = operands(a, b)?;
    Some(encode(&sum(x, negate(y))))
}

/// `a / b` computed in decimal when either is a Decimal128 (34 digits, half to even); `None`
/// as for [`add`] and when `b` is zero (the caller reports the division by zero).
pub(crate) fn divide_values(a: &Bson, b: &Bson) -> Option<Bson> {
    let (x, y) = operands(a, b)?;
    Some(encode(&division(x, y)?))
}

/// `total / count` in decimal (`$avg` of values including a Decimal128); `None` when `total`
/// is not a Decimal128 or `count` is 0.
pub(crate) fn divide(total: &Bson, count: u64) -> Option<Bson> {
    let Bson::Decimal128(d) = total else {
        return None;
    };
    if count == 0 {
        return None;
    }
    Some(encode(&quotient(decode(d), count)))
}

/// How [`quantize`] and its integer and double kin drop digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    /// To nearest, a tie to the even digit (`$round`).
    HalfEven,
    /// Toward zero (`$trunc`).
    Down,
    /// Toward negative infinity (`$floor`).
    Floor,
    /// Toward positive infinity (`$ceil`).
    Ceiling,
}

/// Drops the `n` least significant digits of a magnitude by `mode` (`negative`: the value's
/// sign, for the directed modes).
fn drop_digits_by(digits: &[u8], n: usize, negative: bool, mode: Rounding) -> Vec<u8> {
    if mode == Rounding::HalfEven {
        return drop_digits(digits, n, false);
    }
    let dropped = digits.iter().take(n).any(|d| *d != 0);
    let mut kept: Vec<u8> = digits.get(n..).map(<[u8]>::to_vec).unwrap_or_default();
    let away = match mode {
        Rounding::Floor => negative,
        Rounding::Ceiling => !negative,
        Rounding::HalfEven | Rounding::Down => false,
    };
    if dropped && away {
        kept = add_magnitudes(&kept, &[1]);
    }
    trim(&mut kept);
    kept
}

/// A Decimal128 with exponent `exp` (MongoDB's `Decimal128::quantize`): the digits below it
/// dropped by `mode`, or zeros appended; a result past 34 digits is NaN, as IEEE's quantize
/// gives. NaN and infinities stay as they are; other values are returned unchanged.
pub(crate) fn quantize(v: &Bson, exp: i32, mode: Rounding) -> Bson {
    let Bson::Decimal128(d) = v else {
        return v.clone();
    };
    match decode(d) {
        Dec::Finite(f) => {
            let digits = if f.exp < exp {
                let n = usize::try_from(i64::from(exp) - i64::from(f.exp)).unwrap_or(usize::MAX);
                drop_digits_by(&f.digits, n, f.negative, mode)
            } else {
                scaled(&f.digits, f.exp - exp)
            };
            if digits.len() > DIGITS_MAX {
                return encode(&Dec::NaN);
            }
            encode(&Dec::Finite(Finite {
                negative: f.negative,
                digits,
                exp,
            }))
        }
        other => encode(&other),
    }
}

/// An integer rounded by `mode` to `place` (negative: tens, hundreds …), saturating at the
/// `i64` range.
pub(crate) fn round_integer(i: i64, place: i32, mode: Rounding) -> i64 {
    if place >= 0 {
        return i;
    }
    let n = usize::try_from(-i64::from(place)).unwrap_or(0);
    let kept = drop_digits_by(&digits_of(u128::from(i.unsigned_abs())), n, i < 0, mode);
    let magnitude = scaled(&kept, -place).iter().rev().fold(0i128, |acc, d| {
        acc.saturating_mul(10).saturating_add(i128::from(*d))
    });
    let signed = if i < 0 { -magnitude } else { magnitude };
    i64::try_from(signed).unwrap_or(if i < 0 { i64::MIN } else { i64::MAX })
}

/// A double rounded by `mode` to `place` decimal places through its 34-digit decimal value,
/// as MongoDB's `$round`/`$trunc` do (so 2.675, which is 2.67499999…, rounds to 2.67).
pub(crate) fn round_double(x: f64, place: i32, mode: Rounding) -> f64 {
    let Dec::Finite(f) = from_double_digits(x, DIGITS_MAX) else {
        return x;
    };
    if f.digits.is_empty() || f.exp >= -place {
        return x;
    }
    let n = usize::try_from(i64::from(-place) - i64::from(f.exp)).unwrap_or(usize::MAX);
    let kept = drop_digits_by(&f.digits, n, f.negative, mode);
    let text: String = kept.iter().rev().map(|d| char::from(b'0' + d)).collect();
    let text = if text.is_empty() {
        "0".to_owned()
    } else {
        text
    };
    let sign = if f.negative { "-" } else { "" };
    format!("{sign}{text}e{}", -place).parse().unwrap_or(x)
}

/// The absolute value of a Decimal128 (NaN stays NaN).
pub(crate) fn abs(v: &Bson) -> Bson {
    let Bson::Decimal128(d) = v else {
        return v.clone();
    };
    encode(&match decode(d) {
        Dec::Finite(f) => Dec::Finite(Finite {
            negative: false,
            ..f
        }),
        Dec::Infinity { .. } => Dec::Infinity { negative: false },
        Dec::NaN => Dec::NaN,
    })
}

/// `a mod b` in decimal when either is a Decimal128 (the result has `a`'s sign, computed
/// exactly); `None` as for [`add`]. The caller refuses a zero `b`.
pub(crate) fn remainder(a: &Bson, b: &Bson) -> Option<Bson> {
    let (x, y) = operands(a, b)?;
    Some(encode(&match (x, y) {
        (Dec::NaN, _) | (_, Dec::NaN) | (Dec::Infinity { .. }, _) => Dec::NaN,
        (x, Dec::Infinity { .. }) => x,
        (Dec::Finite(x), Dec::Finite(y)) => {
            let exp = x.exp.min(y.exp);
            let dividend = scaled(&x.digits, x.exp - exp);
            let divisor = scaled(&y.digits, y.exp - exp);
            let mut r: Vec<u8> = Vec::new();
            for digit in dividend.iter().rev() {
                r.insert(0, *digit);
                trim(&mut r);
                while compare_magnitudes(&r, &divisor) != Ordering::Less {
                    r = subtract_magnitudes(&r, &divisor);
                    trim(&mut r);
                }
            }
            Dec::Finite(Finite {
                negative: x.negative,
                digits: r,
                exp,
            })
        }
    }))
}

/// A Decimal128 NaN or infinity as the double of the same kind; `None` for a finite decimal
/// and for any other value.
pub(crate) fn non_finite(v: &Bson) -> Option<f64> {
    let Bson::Decimal128(d) = v else {
        return None;
    };
    match decode(d) {
        Dec::NaN => Some(f64::NAN),
        Dec::Infinity { negative: true } => Some(f64::NEG_INFINITY),
        Dec::Infinity { negative: false } => Some(f64::INFINITY),
        _ => None,
    }
}

/// The exact order of two numbers when either is a Decimal128 (NaN below every number and
/// equal to itself, -0 equal to 0); `None` when neither is, or one is not a number.
pub(crate) fn compare(a: &Bson, b: &Bson) -> Option<Ordering> {
    if !matches!(a, Bson::Decimal128(_)) && !matches!(b, Bson::Decimal128(_)) {
        return None;
    }
    let (x, y) = (for_comparison(a)?, for_comparison(b)?);
    Some(match (x, y) {
        (Dec::NaN, Dec::NaN) => Ordering::Equal,
        (Dec::NaN, _) => Ordering::Less,
        (_, Dec::NaN) => Ordering::Greater,
        (x, y) => rank(&x).cmp(&rank(&y)).then_with(|| match (x, y) {
            (Dec::Finite(x), Dec::Finite(y)) => compare_finite(&x, &y),
            _ => Ordering::Equal,
        }),
    })
}

/// A number for comparing: a double at its exact value.
fn for_comparison(v: &Bson) -> Option<Dec> {
    match v {
        Bson::Double(d) => Some(from_double_digits(*d, DOUBLE_EXACT_DIGITS)),
        other => from_bson(other),
    }
}

/// −∞, negative, zero, positive, +∞ as -2..=2 (NaN is handled before).
fn rank(d: &Dec) -> i8 {
    match d {
        Dec::Infinity { negative: true } => -2,
        Dec::Infinity { negative: false } => 2,
        Dec::Finite(f) if f.digits.is_empty() => 0,
        Dec::Finite(f) if f.negative => -1,
        _ => 1,
    }
}

/// Two finite values of the same sign (both nonzero, or both zero).
fn compare_finite(a: &Finite, b: &Finite) -> Ordering {
    if a.digits.is_empty() || b.digits.is_empty() {
        return Ordering::Equal;
    }
    // The exponent of the leading digit decides first; equal ones leave the exponents at most
    // a double's exact digits apart, so aligning stays small.
    let lead = |f: &Finite| i64::from(f.exp) + i64::try_from(f.digits.len()).unwrap_or(0);
    let magnitude = lead(a).cmp(&lead(b)).then_with(|| {
        let exp = a.exp.min(b.exp);
        compare_magnitudes(
            &scaled(&a.digits, a.exp - exp),
            &scaled(&b.digits, b.exp - exp),
        )
    });
    if a.negative {
        magnitude.reverse()
    } else {
        magnitude
    }
}

fn negate(d: Dec) -> Dec {
    match d {
        Dec::NaN => Dec::NaN,
        Dec::Infinity { negative } => Dec::Infinity {
            negative: !negative,
        },
        Dec::Finite(f) => Dec::Finite(Finite {
            negative: !f.negative,
            ..f
        }),
    }
}

/// Both operands as decimals, when one of them is a Decimal128.
fn operands(a: &Bson, b: &Bson) -> Option<(Dec, Dec)> {
    if !matches!(a, Bson::Decimal128(_)) && !matches!(b, Bson::Decimal128(_)) {
        return None;
    }
    Some((from_bson(a)?, from_bson(b)?))
}

fn from_bson(v: &Bson) -> Option<Dec> {
    match v {
        Bson::Decimal128(d) => Some(decode(d)),
        Bson::Int32(i) => Some(from_integer(i64::from(*i))),
        Bson::Int64(i) => Some(from_integer(*i)),
        Bson::Double(d) => Some(from_double(*d)),
        _ => None,
    }
}

fn from_integer(i: i64) -> Dec {
    Dec::Finite(Finite {
        negative: i < 0,
        digits: digits_of(u128::from(i.unsigned_abs())),
        exp: 0,
    })
}

/// A double rounded to [`DOUBLE_DIGITS`] significant digits (trailing zeros kept, as MongoDB
/// keeps them: 0.1 becomes 0.100000000000000).
fn from_double(d: f64) -> Dec {
    from_double_digits(d, DOUBLE_DIGITS)
}

/// A double rounded to `significant` digits, half to even.
fn from_double_digits(d: f64, significant: usize) -> Dec {
    if d.is_nan() {
        return Dec::NaN;
    }
    if d.is_infinite() {
        return Dec::Infinity { negative: d < 0.0 };
    }
    let negative = d.is_sign_negative();
    if d == 0.0 {
        return Dec::Finite(Finite {
            negative,
            digits: Vec::new(),
            exp: 0,
        });
    }
    // Rust's `{:e}` with a precision is correctly rounded (half to even on the exact binary
    // value): "d.dddddddddddddde±x".
    let text = format!("{:.*e}", significant - 1, d.abs());
    let (mantissa, exp10) = text.split_once('e').unwrap_or((&text, "0"));
    let exp10: i32 = exp10.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .rev()
        .collect();
    trim(&mut digits);
    let exp = exp10 - (extra_i32(significant) - 1);
    Dec::Finite(Finite {
        negative,
        digits,
        exp,
    })
}

/// Unpacks the BID encoding (little-endian bytes, as BSON stores them).
fn decode(d: &Decimal128) -> Dec {
    let bits = u128::from_le_bytes(d.bytes());
    let negative = bits >> 127 == 1;
    let combination = (bits >> 122) & 0x1F;
    if combination == 0x1F {
        return Dec::NaN;
    }
    if combination == 0x1E {
        return Dec::Infinity { negative };
    }
    let (biased, coefficient) = if (bits >> 125) & 0b11 == 0b11 {
        // The second form only holds coefficients above 10^34 − 1: non-canonical, zero.
        ((bits >> 111) & 0x3FFF, 0)
    } else {
        (
            (bits >> COEFFICIENT_BITS) & 0x3FFF,
            bits & ((1 << COEFFICIENT_BITS) - 1),
        )
    };
    let coefficient = if coefficient > COEFFICIENT_MAX {
        0
    } else {
        coefficient
    };
    // A 14-bit field: the conversion cannot fail.
    let exp = i32::try_from(biased).unwrap_or(0) - EXP_BIAS;
    Dec::Finite(Finite {
        negative,
        digits: digits_of(coefficient),
        exp,
    })
}

/// Rounds to 34 digits and the exponent range, and packs the result.
fn encode(d: &Dec) -> Bson {
    let bits = match round(d.clone(), false) {
        Dec::NaN => 0x1F << 122,
        Dec::Infinity { negative } => (u128::from(negative) << 127) | (0x1E << 122),
        Dec::Finite(f) => {
            let coefficient = f
                .digits
                .iter()
                .rev()
                .fold(0u128, |acc, digit| acc * 10 + u128::from(*digit));
            // round() keeps the exponent in EXP_MIN..=EXP_MAX, so the biased one is positive.
            let biased = u128::try_from(f.exp + EXP_BIAS).unwrap_or(0);
            (u128::from(f.negative) << 127) | (biased << COEFFICIENT_BITS) | coefficient
        }
    };
    Bson::Decimal128(Decimal128::from_bytes(bits.to_le_bytes()))
}

fn sum(a: Dec, b: Dec) -> Dec {
    match (a, b) {
        (Dec::NaN, _) | (_, Dec::NaN) => Dec::NaN,
        (Dec::Infinity { negative: x }, Dec::Infinity { negative: y }) if x != y => Dec::NaN,
        (inf @ Dec::Infinity { .. }, _) | (_, inf @ Dec::Infinity { .. }) => inf,
        (Dec::Finite(a), Dec::Finite(b)) => {
            let exp = a.exp.min(b.exp);
            let x = scaled(&a.digits, a.exp - exp);
            let y = scaled(&b.digits, b.exp - exp);
            let (negative, digits) = if a.negative == b.negative {
                (a.negative, add_magnitudes(&x, &y))
            } else {
                match compare_magnitudes(&x, &y) {
                    Ordering::Greater => (a.negative, subtract_magnitudes(&x, &y)),
                    Ordering::Less => (b.negative, subtract_magnitudes(&y, &x)),
                    // An exact zero from opposite signs is +0 when rounding half to even.
                    Ordering::Equal => (false, Vec::new()),
                }
            };
            Dec::Finite(Finite {
                negative,
                digits,
                exp,
            })
        }
    }
}

fn product(a: Dec, b: Dec) -> Dec {
    let zero = |d: &Dec| matches!(d, Dec::Finite(f) if f.digits.is_empty());
    match (a, b) {
        (Dec::NaN, _) | (_, Dec::NaN) => Dec::NaN,
        (Dec::Infinity { .. }, ref z) | (ref z, Dec::Infinity { .. }) if zero(z) => Dec::NaN,
        (Dec::Infinity { negative: x }, other) | (other, Dec::Infinity { negative: x }) => {
            Dec::Infinity {
                negative: x != is_negative(&other),
            }
        }
        (Dec::Finite(a), Dec::Finite(b)) => Dec::Finite(Finite {
            negative: a.negative != b.negative,
            digits: multiply_magnitudes(&a.digits, &b.digits),
            exp: a.exp + b.exp,
        }),
    }
}

fn is_negative(d: &Dec) -> bool {
    match d {
        Dec::NaN => false,
        Dec::Infinity { negative } => *negative,
        Dec::Finite(f) => f.negative,
    }
}

/// `a / count` for a positive count (see [`quotient_of`]).
fn quotient(a: Dec, count: u64) -> Dec {
    let Dec::Finite(a) = a else {
        return a;
    };
    quotient_of(&a, u128::from(count), false, 0)
}

/// `a / b`; `None` when `b` is zero.
fn division(a: Dec, b: Dec) -> Option<Dec> {
    Some(match (a, b) {
        (Dec::NaN, _) | (_, Dec::NaN) | (Dec::Infinity { .. }, Dec::Infinity { .. }) => Dec::NaN,
        (Dec::Infinity { negative }, other) => Dec::Infinity {
            negative: negative != is_negative(&other),
        },
        (Dec::Finite(a), Dec::Infinity { negative }) => Dec::Finite(Finite {
            negative: a.negative != negative,
            digits: Vec::new(),
            exp: EXP_MIN,
        }),
        (Dec::Finite(a), Dec::Finite(b)) => {
            if b.digits.is_empty() {
                return None;
            }
            // A coefficient has at most 34 digits, so it fits in a u128.
            let divisor = b
                .digits
                .iter()
                .rev()
                .fold(0u128, |acc, digit| acc * 10 + u128::from(*digit));
            quotient_of(&a, divisor, b.negative, b.exp)
        }
    })
}

/// `a / (divisor × 10^divisor_exp)` for a positive divisor below 10^34: 34 digits rounded half
/// to even; an exact quotient keeps the preferred exponent (the dividend's minus the
/// divisor's) when it can, as IEEE 754 divides.
fn quotient_of(a: &Finite, divisor: u128, divisor_negative: bool, divisor_exp: i32) -> Dec {
    let negative = a.negative != divisor_negative;
    let preferred = a.exp - divisor_exp;
    if a.digits.is_empty() {
        return round(
            Dec::Finite(Finite {
                negative,
                digits: Vec::new(),
                exp: preferred,
            }),
            false,
        );
    }
    // Enough extra digits that the quotient has at least 35 (a guard digit beyond 34).
    let extra = DIGITS_MAX + 1 + digits_of(divisor).len();
    let dividend = scaled(&a.digits, extra_i32(extra));
    let mut digits = Vec::with_capacity(dividend.len());
    // remainder < divisor < 10^34, so remainder × 10 + 9 fits in a u128.
    let mut remainder: u128 = 0;
    for digit in dividend.iter().rev() {
        remainder = remainder * 10 + u128::from(*digit);
        let q = remainder / divisor;
        remainder %= divisor;
        digits.push(digit_u8(q));
    }
    digits.reverse();
    trim(&mut digits);
    let mut exp = preferred - extra_i32(extra);
    if remainder == 0 {
        // Exact: drop the zeros the scaling added, down to the preferred exponent.
        while exp < preferred && digits.first() == Some(&0) {
            digits.remove(0);
            exp += 1;
        }
    }
    round(
        Dec::Finite(Finite {
            negative,
            digits,
            exp,
        }),
        remainder != 0,
    )
}

fn extra_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Rounds a finite value to 34 digits (half to even, `inexact` meaning nonzero digits were
/// already dropped below the last one) and into the exponent range: a too small exponent
/// drops more digits (subnormal), a too large one pads the coefficient with zeros or
/// overflows to infinity.
fn round(d: Dec, inexact: bool) -> Dec {
    let Dec::Finite(Finite {
        negative,
        mut digits,
        mut exp,
    }) = d
    else {
        return d;
    };
    trim(&mut digits);
    let excess = digits.len().saturating_sub(DIGITS_MAX);
    let below_min = usize::try_from(i64::from(EXP_MIN) - i64::from(exp)).unwrap_or(0);
    let drop = excess.max(below_min);
    if drop > 0 {
        digits = drop_digits(&digits, drop, inexact);
        exp = exp.saturating_add(extra_i32(drop));
        if digits.len() > DIGITS_MAX {
            // 99…9 rounded up to 10…0: one more (zero) digit goes.
            digits.remove(0);
            exp = exp.saturating_add(1);
        }
    }
    if exp > EXP_MAX {
        if digits.is_empty() {
            exp = EXP_MAX;
        } else {
            let pad = usize::try_from(exp - EXP_MAX).unwrap_or(usize::MAX);
            if digits.len().saturating_add(pad) > DIGITS_MAX {
                return Dec::Infinity { negative };
            }
            digits = scaled(&digits, exp - EXP_MAX);
            exp = EXP_MAX;
        }
    }
    if digits.is_empty() {
        exp = exp.clamp(EXP_MIN, EXP_MAX);
    }
    Dec::Finite(Finite {
        negative,
        digits,
        exp,
    })
}

/// Drops the `n` least significant digits, rounding half to even.
fn drop_digits(digits: &[u8], n: usize, inexact: bool) -> Vec<u8> {
    let guard = n
        .checked_sub(1)
        .and_then(|i| digits.get(i))
        .copied()
        .unwrap_or(0);
    let rest = inexact
        || digits
            .iter()
            .take(n.saturating_sub(1))
            .any(|digit| *digit != 0);
    let mut kept: Vec<u8> = digits.get(n..).map(<[u8]>::to_vec).unwrap_or_default();
    let odd = kept.first().is_some_and(|digit| digit % 2 == 1);
    if guard > 5 || (guard == 5 && (rest || odd)) {
        kept = add_magnitudes(&kept, &[1]);
    }
    trim(&mut kept);
    kept
}

/// A value below 10 as a digit.
fn digit_u8(d: u128) -> u8 {
    debug_assert!(d < 10, "not a digit: {d}");
    u8::try_from(d).unwrap_or(0)
}

/// The digits of `n`, least significant first.
fn digits_of(mut n: u128) -> Vec<u8> {
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(digit_u8(n % 10));
        n /= 10;
    }
    digits
}

/// Removes leading zeros (at the end: digits are least significant first).
fn trim(digits: &mut Vec<u8>) {
    while digits.last() == Some(&0) {
        digits.pop();
    }
}

/// `digits × 10^by` (`by` ≥ 0).
fn scaled(digits: &[u8], by: i32) -> Vec<u8> {
    if digits.is_empty() {
        return Vec::new();
    }
    let by = usize::try_from(by).unwrap_or(0);
    let mut out = vec![0; by];
    out.extend_from_slice(digits);
    out
}

fn compare_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.iter().rev().cmp(b.iter().rev()))
}

fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let mut carry = 0;
    for i in 0..a.len().max(b.len()) {
        let s = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    if carry > 0 {
        out.push(carry);
    }
    out
}

/// `a − b` for `a ≥ b`.
fn subtract_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0;
    for (i, x) in a.iter().enumerate() {
        let y = b.get(i).copied().unwrap_or(0) + borrow;
        if *x >= y {
            out.push(x - y);
            borrow = 0;
        } else {
            out.push(x + 10 - y);
            borrow = 1;
        }
    }
    trim(&mut out);
    out
}

fn multiply_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    // Column sums stay below 81 × 34 digits' worth, far inside u32.
    let mut columns = vec![0u32; a.len() + b.len()];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            if let Some(c) = columns.get_mut(i + j) {
                *c += u32::from(*x) * u32::from(*y);
            }
        }
    }
    let mut out = Vec::with_capacity(columns.len());
    let mut carry = 0u32;
    for c in columns {
        let s = c + carry;
        out.push(digit_u8(u128::from(s % 10)));
        carry = s / 10;
    }
    while carry > 0 {
        out.push(digit_u8(u128::from(carry % 10)));
        carry /= 10;
    }
    trim(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Bson {
        Bson::Decimal128(s.parse().unwrap())
    }

    fn text(v: &Bson) -> String {
        match v {
            Bson::Decimal128(d) => d.to_string(),
            other => panic!("not a decimal: {other:?}"),
        }
    }

    #[test]
    fn decode_and_encode_round_trip() {
        for s in [
            "0",
            "-0",
            "0.1",
            "1",
            "-1.50",
            "12345678901234567890123456789012.34",
            "9.999999999999999999999999999999999E+6144",
            "1E-6176",
            "-1.000E+10",
            "Infinity",
            "-Infinity",
            "NaN",
        ] {
            let d: Decimal128 = s.parse().unwrap();
            assert_eq!(encode(&decode(&d)), Bson::Decimal128(d), "{s}");
        }
    }

    #[test]
    fn sums_are_exact_and_keep_the_smaller_exponent() {
        let cases = [
            ("0.1", "0.2", "0.3"),
            ("1.10", "2.2", "3.30"),
            ("-1", "1", "0"),
            ("-0.5", "0.25", "-0.25"),
            ("1E+2", "1", "101"),
            ("Infinity", "1", "Infinity"),
            ("Infinity", "-Infinity", "NaN"),
            ("NaN", "1", "NaN"),
        ];
        for (a, b, want) in cases {
            assert_eq!(text(&add(&dec(a), &dec(b)).unwrap()), want, "{a} + {b}");
        }
    }

    #[test]
    fn results_round_half_to_even_at_34_digits_and_overflow_to_infinity() {
        // 34 nines plus one carry into a 35th digit.
        let nines = "9".repeat(34);
        assert_eq!(
            text(&add(&dec(&nines), &dec("1")).unwrap()),
            "1.000000000000000000000000000000000E+34"
        );
        // A tie rounds to the even neighbour, anything above it up.
        let ones = format!("1{}", "0".repeat(33));
        assert_eq!(
            text(&add(&dec(&ones), &dec("0.5")).unwrap()),
            format!("1{}", "0".repeat(33))
        );
        assert_eq!(
            text(&add(&dec(&format!("1{}1", "0".repeat(32))), &dec("0.5")).unwrap()),
            format!("1{}2", "0".repeat(32))
        );
        assert_eq!(
            text(&add(&dec(&ones), &dec("0.51")).unwrap()),
            format!("1{}1", "0".repeat(32))
        );
        // Far apart: the small one only decides the rounding.
        assert_eq!(
            text(&add(&dec("1E+40"), &dec("-1E-6000")).unwrap()),
            "1.000000000000000000000000000000000E+40"
        );
        let max = "9.999999999999999999999999999999999E+6144";
        assert_eq!(text(&multiply(&dec(max), &dec("10")).unwrap()), "Infinity");
        assert_eq!(
            text(&multiply(&dec(max), &dec("-1")).unwrap()),
            format!("-{max}")
        );
        assert_eq!(
            text(&multiply(&dec("1E-6176"), &dec("0.1")).unwrap()),
            "0E-6176"
        );
        assert_eq!(
            text(&multiply(&dec("1E+6111"), &dec("10")).unwrap()),
            "1.0E+6112"
        );
    }

    #[test]
    fn products_and_quotients() {
        assert_eq!(text(&multiply(&dec("1.5"), &dec("0.2")).unwrap()), "0.30");
        assert_eq!(text(&multiply(&dec("-2"), &dec("0")).unwrap()), "-0");
        assert_eq!(text(&multiply(&dec("Infinity"), &dec("0")).unwrap()), "NaN");
        assert_eq!(text(&divide(&dec("0.6"), 3).unwrap()), "0.2");
        assert_eq!(text(&divide(&dec("1"), 4).unwrap()), "0.25");
        assert_eq!(text(&divide(&dec("10"), 2).unwrap()), "5");
        assert_eq!(
            text(&divide(&dec("1"), 3).unwrap()),
            "0.3333333333333333333333333333333333"
        );
        assert_eq!(
            text(&divide(&dec("2"), 3).unwrap()),
            "0.6666666666666666666666666666666667"
        );
        assert_eq!(divide(&dec("1"), 0), None);
    }

    #[test]
    fn comparisons_are_exact() {
        use Ordering::{Equal, Greater, Less};
        let cases = [
            (dec("9007199254740993"), dec("9007199254740992"), Greater),
            (dec("0.3"), dec("0.30"), Equal),
            (dec("-0"), dec("0"), Equal),
            (dec("-2"), dec("-1"), Less),
            (dec("1E-6176"), dec("0"), Greater),
            (dec("1E+2"), Bson::Int32(100), Equal),
            (dec("9223372036854775807"), Bson::Int64(i64::MAX), Equal),
            (dec("9223372036854775806.5"), Bson::Int64(i64::MAX), Less),
            (
                dec("9007199254740993"),
                Bson::Double(9_007_199_254_740_992.0),
                Greater,
            ),
            // The double 0.1 is 0.1000000000000000055511151231257827021181583404541015625.
            (dec("0.1"), Bson::Double(0.1), Less),
            (
                dec("0.1000000000000000055511151231257827"),
                Bson::Double(0.1),
                Less,
            ),
            (dec("0.5"), Bson::Double(0.5), Equal),
            (dec("NaN"), dec("-Infinity"), Less),
            (dec("NaN"), Bson::Double(f64::NAN), Equal),
            (
                dec("-Infinity"),
                dec("-9.999999999999999999999999999999999E+6144"),
                Less,
            ),
            (dec("Infinity"), Bson::Double(f64::INFINITY), Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(&a, &b), Some(want), "{a} vs {b}");
            assert_eq!(compare(&b, &a), Some(want.reverse()), "{b} vs {a}");
        }
        assert_eq!(compare(&Bson::Int32(1), &Bson::Double(1.0)), None);
        assert_eq!(compare(&dec("1"), &Bson::String("1".into())), None);
    }

    #[test]
    fn differences_and_quotients_of_decimals() {
        assert_eq!(text(&subtract(&dec("0.3"), &dec("0.1")).unwrap()), "0.2");
        assert_eq!(text(&subtract(&dec("1"), &Bson::Int32(3)).unwrap()), "-2");
        assert_eq!(
            text(&divide_values(&dec("1"), &Bson::Int32(3)).unwrap()),
            "0.3333333333333333333333333333333333"
        );
        assert_eq!(text(&divide_values(&dec("0.6"), &dec("0.2")).unwrap()), "3");
        assert_eq!(
            text(&divide_values(&dec("-6"), &dec("0.2")).unwrap()),
            "-3E+1"
        );
        assert_eq!(text(&divide_values(&dec("1"), &dec("8")).unwrap()), "0.125");
        assert_eq!(
            text(&divide_values(&dec("2"), &dec("3")).unwrap()),
            "0.6666666666666666666666666666666667"
        );
        assert_eq!(
            text(&divide_values(&dec("Infinity"), &Bson::Int32(-2)).unwrap()),
            "-Infinity"
        );
        assert_eq!(divide_values(&dec("1"), &dec("0")), None);
        assert_eq!(divide_values(&Bson::Int32(1), &Bson::Int32(2)), None);
    }

    #[test]
    fn other_numbers_convert_exactly_or_to_15_digits() {
        assert_eq!(text(&add(&dec("0.1"), &Bson::Int32(2)).unwrap()), "2.1");
        assert_eq!(
            text(&add(&dec("0"), &Bson::Int64(i64::MIN)).unwrap()),
            "-9223372036854775808"
        );
        assert_eq!(
            text(&add(&dec("0"), &Bson::Double(0.1)).unwrap()),
            "0.100000000000000"
        );
        assert_eq!(
            text(&multiply(&Bson::Int32(0), &dec("1.5")).unwrap()),
            "0.0"
        );
        assert_eq!(add(&Bson::Int32(1), &Bson::Double(0.5)), None);
        assert_eq!(add(&dec("1"), &Bson::String("x".into())), None);
    }
}
