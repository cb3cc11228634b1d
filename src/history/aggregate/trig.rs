//! Trigonometric expressions, as MongoDB 7.0's `expression_trigonometric.h`: `$sin $cos $tan`,
//! their inverses `$asin $acos $atan $atan2`, the hyperbolic `$sinh $cosh $tanh $asinh $acosh
//! $atanh`, and `$degreesToRadians`/`$radiansToDegrees`.
//!
//! A null or missing operand gives null, any other non-number 28765 (`$atan2`: 51044 for the
//! first operand, 51045 for the second). An integer or a double gives a double; a Decimal128
//! gives a Decimal128. The bounded functions refuse an operand outside their domain with 50989
//! (`cannot apply $acos to -2, value must in [-1,1]`); NaN passes through unchanged.
//!
//! IMPORTANT: MongoDB computes the functions of a Decimal128 in decimal (34 digits); this store
//! computes them in double and converts the result to a Decimal128 (15 significant digits), as
//! it does for `$sqrt` and `$exp`. The domain check of a decimal is exact, and the degree and
//! radian conversions multiply in decimal by MongoDB's 34-digit factors.

use std::cmp::Ordering;

use bson::Bson;

use super::super::decimal;
use super::super::document;
use super::super::error::Result;
use super::expr::{eval_error, nullish, numeric, type_of};
use super::text::format_g;

/// π to 34 digits, as MongoDB's `Decimal128::kPi` (rounded from 50 digits).
const DECIMAL_PI: &str = "3.141592653589793238462643383279503";

/// A trigonometric operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrigOp {
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    /// `[y, x]`.
    Atan2,
    DegreesToRadians,
    RadiansToDegrees,
}

/// Where a bounded function is defined.
enum Domain {
    /// Everywhere, infinities included.
    All,
    /// `[lower, upper]`.
    Inclusive(f64, f64),
    /// `(lower, upper)`.
    Exclusive(f64, f64),
}

impl TrigOp {
    /// The operator called `name`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Some(match name {
            "$sin" => Self::Sin,
            "$cos" => Self::Cos,
            "$tan" => Self::Tan,
            "$asin" => Self::Asin,
            "$acos" => Self::Acos,
            "$atan" => Self::Atan,
            "$sinh" => Self::Sinh,
            "$cosh" => Self::Cosh,
            "$tanh" => Self::Tanh,
            "$asinh" => Self::Asinh,
            "$acosh" => Self::Acosh,
            "$atanh" => Self::Atanh,
            "$atan2" => Self::Atan2,
            "$degreesToRadians" => Self::DegreesToRadians,
            "$radiansToDegrees" => Self::RadiansToDegrees,
            _ => return None,
        })
    }

    /// How many operands the operator takes.
    pub(crate) fn arity(self) -> usize {
        if self == Self::Atan2 { 2 } else { 1 }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sin => "$sin",
            Self::Cos => "$cos",
            Self::Tan => "$tan",
            Self::Asin => "$asin",
            Self::Acos => "$acos",
            Self::Atan => "$atan",
            Self::Sinh => "$sinh",
            Self::Cosh => "$cosh",
            Self::Tanh => "$tanh",
            Self::Asinh => "$asinh",
            Self::Acosh => "$acosh",
            Self::Atanh => "$atanh",
            Self::Atan2 => "$atan2",
            Self::DegreesToRadians => "$degreesToRadians",
            Self::RadiansToDegrees => "$radiansToDegrees",
        }
    }

    fn domain(self) -> Domain {
        match self {
            Self::Acos | Self::Asin | Self::Atanh => Domain::Inclusive(-1.0, 1.0),
            Self::Acosh => Domain::Inclusive(1.0, f64::INFINITY),
            Self::Sin | Self::Cos | Self::Tan => {
                Domain::Exclusive(f64::NEG_INFINITY, f64::INFINITY)
            }
            _ => Domain::All,
        }
    }

    fn apply_f64(self, x: f64) -> f64 {
        match self {
            Self::Sin => x.sin(),
            Self::Cos => x.cos(),
            Self::Tan => x.tan(),
            Self::Asin => x.asin(),
            Self::Acos => x.acos(),
            Self::Atan => x.atan(),
            Self::Sinh => x.sinh(),
            Self::Cosh => x.cosh(),
            Self::Tanh => x.tanh(),
            Self::Asinh => x.asinh(),
            Self::Acosh => x.acosh(),
            Self::Atanh => x.atanh(),
            Self::DegreesToRadians => x * (std::f64::consts::PI / 180.0),
            Self::RadiansToDegrees => x * (180.0 / std::f64::consts::PI),
            Self::Atan2 => f64::NAN,
        }
    }
}

/// Evaluates a trigonometric operator over its evaluated operands.
///
/// # Errors
/// 28765/51044/51045 for a non-numeric operand, 50989 for one outside the domain.
pub(crate) fn apply(op: TrigOp, vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let first = vals.first().and_then(Option::as_ref);
    if op == TrigOp::Atan2 {
        return atan2(first, vals.get(1).and_then(Option::as_ref));
    }
    if nullish(first) {
        return Ok(Some(Bson::Null));
    }
    let Some(x) = first.filter(|v| numeric(v)) else {
        return Err(eval_error(
            28765,
            format!(
                "{} only supports numeric types, not {}",
                op.name(),
                type_of(first)
            ),
        ));
    };
    let is_decimal = matches!(x, Bson::Decimal128(_));
    if matches!(op, TrigOp::DegreesToRadians | TrigOp::RadiansToDegrees) && is_decimal {
        return Ok(Some(convert_decimal(op, x)));
    }
    let d = document::as_f64(x).unwrap_or(f64::NAN);
    if d.is_nan() {
        // NaN passes through, as the same type.
        return Ok(Some(x.clone()));
    }
    check_domain(op, x, d)?;
    let r = op.apply_f64(d);
    Ok(Some(if is_decimal {
        decimal::to_decimal(&Bson::Double(r)).unwrap_or(Bson::Double(r))
    } else {
        Bson::Double(r)
    }))
}

/// MongoDB's 50989 for an operand outside a bounded function's domain (a decimal compared
/// exactly with the bounds).
fn check_domain(op: TrigOp, x: &Bson, d: f64) -> Result<()> {
    let (lower, upper, inclusive) = match op.domain() {
        Domain::All => return Ok(()),
        Domain::Inclusive(l, u) => (l, u, true),
        Domain::Exclusive(l, u) => (l, u, false),
    };
    let order = |bound: f64| {
        if matches!(x, Bson::Decimal128(_)) {
            decimal::compare(x, &Bson::Double(bound)).unwrap_or(Ordering::Equal)
        } else {
            d.partial_cmp(&bound).unwrap_or(Ordering::Equal)
        }
    };
    let (lo, hi) = (order(lower), order(upper));
    let inside = if inclusive {
        lo != Ordering::Less && hi != Ordering::Greater
    } else {
        lo == Ordering::Greater && hi == Ordering::Less
    };
    if inside {
        return Ok(());
    }
    let shown = match x {
        Bson::Decimal128(v) => v.to_string(),
        _ => format_g(d),
    };
    let (open, close) = if inclusive { ('[', ']') } else { ('(', ')') };
    Err(eval_error(
        50989,
        format!(
            "cannot apply {} to {shown}, value must in {open}{},{}{close}",
            op.name(),
            format_g(lower),
            format_g(upper)
        ),
    ))
}

/// `$degreesToRadians`/`$radiansToDegrees` of a Decimal128: multiplied in decimal by π/180 or
/// 180/π, each rounded to 34 digits as MongoDB's `kPiOver180` and `k180OverPi`.
fn convert_decimal(op: TrigOp, x: &Bson) -> Bson {
    let pi = DECIMAL_PI.parse().ok().map(Bson::Decimal128);
    let ratio = pi.and_then(|pi| {
        let degrees = Bson::Int32(180);
        if op == TrigOp::DegreesToRadians {
            decimal::divide_values(&pi, &degrees)
        } else {
            decimal::divide_values(&degrees, &pi)
        }
    });
    ratio
        .and_then(|r| decimal::multiply(x, &r))
        .unwrap_or_else(|| {
            let r = op.apply_f64(document::as_f64(x).unwrap_or(f64::NAN));
            decimal::to_decimal(&Bson::Double(r)).unwrap_or(Bson::Double(r))
        })
}

/// `$atan2: [y, x]`: null when `y` is null or missing, else `y` must be a number (51044); the
/// same then for `x` (51045). A decimal operand gives a decimal.
fn atan2(y: Option<&Bson>, x: Option<&Bson>) -> Result<Option<Bson>> {
    let check = |v: Option<&Bson>, code: i32| -> Result<Option<f64>> {
        if nullish(v) {
            return Ok(None);
        }
        match v.filter(|v| numeric(v)) {
            Some(n) => Ok(Some(document::as_f64(n).unwrap_or(f64::NAN))),
            None => Err(eval_error(
                code,
                format!("$atan2 only supports numeric types, not {}", type_of(v)),
            )),
        }
    };
    let Some(yd) = check(y, 51044)? else {
        return Ok(Some(Bson::Null));
    };
    let Some(xd) = check(x, 51045)? else {
        return Ok(Some(Bson::Null));
    };
    let r = yd.atan2(xd);
    let is_decimal =
        matches!(y, Some(Bson::Decimal128(_))) || matches!(x, Some(Bson::Decimal128(_)));
    Ok(Some(if is_decimal {
        decimal::to_decimal(&Bson::Double(r)).unwrap_or(Bson::Double(r))
    } else {
        Bson::Double(r)
    }))
}
