//! `$bucketAuto`'s `granularity` (MongoDB 7.0's `granularity_rounder_preferred_numbers.cpp`
//! and `granularity_rounder_powers_of_two.cpp`): boundaries rounded to a series of preferred
//! numbers (Renard R5–R80, 1-2-5, E6–E192) or to powers of two.
//!
//! A preferred-number series is held as MongoDB holds it, integer-valued doubles scaled by a
//! multiplier multiplied or divided by ten in place, so that every double comes out as
//! MongoDB's (R5 rounds 7 down to `63 × 0.1` = 6.300000000000001); a Decimal128 is rounded in
//! decimal, the series converted to 15 significant digits. Powers of two are `$pow(2, e)`:
//! an int for exponents 0–30, a long for 31–62, a double otherwise.

use std::cmp::Ordering;

use bson::Bson;

use super::super::decimal;
use super::super::document::{self, compare};
use super::super::error::Result;
use super::super::query;
use super::expr;

const R5: &[f64] = &[10.0, 16.0, 25.0, 40.0, 63.0];
const R10: &[f64] = &[
    100.0, 125.0, 160.0, 200.0, 250.0, 315.0, 400.0, 500.0, 630.0, 800.0,
];
const R20: &[f64] = &[
    100.0, 112.0, 125.0, 140.0, 160.0, 180.0, 200.0, 224.0, 250.0, 280.0, 315.0, 355.0, 400.0,
    450.0, 500.0, 560.0, 630.0, 710.0, 800.0, 900.0,
];
/// MongoDB's table has no 335.
const R40: &[f64] = &[
    100.0, 106.0, 112.0, 118.0, 125.0, 132.0, 140.0, 150.0, 160.0, 170.0, 180.0, 190.0, 200.0,
    212.0, 224.0, 236.0, 250.0, 265.0, 280.0, 300.0, 315.0, 355.0, 375.0, 400.0, 425.0, 450.0,
    475.0, 500.0, 530.0, 560.0, 600.0, 630.0, 670.0, 710.0, 750.0, 800.0, 850.0, 900.0, 950.0,
];
const R80: &[f64] = &[
    103.0, 109.0, 115.0, 122.0, 128.0, 136.0, 145.0, 155.0, 165.0, 175.0, 185.0, 195.0, 206.0,
    218.0, 230.0, 243.0, 258.0, 272.0, 290.0, 307.0, 325.0, 345.0, 365.0, 387.0, 412.0, 437.0,
    462.0, 487.0, 515.0, 545.0, 575.0, 615.0, 650.0, 690.0, 730.0, 775.0, 825.0, 875.0, 925.0,
    975.0,
];
const ONE_TWO_FIVE: &[f64] = &[10.0, 20.0, 50.0];
const E6: &[f64] = &[10.0, 15.0, 22.0, 33.0, 47.0, 68.0];
const E12: &[f64] = &[
    10.0, 12.0, 15.0, 18.0, 22.0, 27.0, 33.0, 39.0, 47.0, 56.0, 68.0, 82.0,
];
const E24: &[f64] = &[
    10.0, 11.0, 12.0, 13.0, 15.0, 16.0, 18.0, 20.0, 22.0, 24.0, 27.0, 30.0, 33.0, 36.0, 39.0, 43.0,
    47.0, 51.0, 56.0, 62.0, 68.0, 75.0, 82.0, 91.0,
];
const E48: &[f64] = &[
    100.0, 105.0, 110.0, 115.0, 121.0, 127.0, 133.0, 140.0, 147.0, 154.0, 162.0, 169.0, 178.0,
    187.0, 196.0, 205.0, 215.0, 226.0, 237.0, 249.0, 261.0, 274.0, 287.0, 301.0, 316.0, 332.0,
    348.0, 365.0, 383.0, 402.0, 422.0, 442.0, 464.0, 487.0, 511.0, 536.0, 562.0, 590.0, 619.0,
    649.0, 681.0, 715.0, 750.0, 787.0, 825.0, 866.0, 909.0, 953.0,
];
const E96: &[f64] = &[
    100.0, 102.0, 105.0, 107.0, 110.0, 113.0, 115.0, 118.0, 121.0, 124.0, 127.0, 130.0, 133.0,
    137.0, 140.0, 143.0, 147.0, 150.0, 154.0, 158.0, 162.0, 165.0, 169.0, 174.0, 178.0, 182.0,
    187.0, 191.0, 196.0, 200.0, 205.0, 210.0, 215.0, 221.0, 226.0, 232.0, 237.0, 243.0, 249.0,
    255.0, 261.0, 267.0, 274.0, 280.0, 287.0, 294.0, 301.0, 309.0, 316.0, 324.0, 332.0, 340.0,
    348.0, 357.0, 365.0, 374.0, 383.0, 392.0, 402.0, 412.0, 422.0, 432.0, 442.0, 453.0, 464.0,
    475.0, 487.0, 499.0, 511.0, 523.0, 536.0, 549.0, 562.0, 576.0, 590.0, 604.0, 619.0, 634.0,
    649.0, 665.0, 681.0, 698.0, 715.0, 732.0, 750.0, 768.0, 787.0, 806.0, 825.0, 845.0, 866.0,
    887.0, 909.0, 931.0, 953.0, 976.0,
];
const E192: &[f64] = &[
    100.0, 101.0, 102.0, 104.0, 105.0, 106.0, 107.0, 109.0, 110.0, 111.0, 113.0, 114.0, 115.0,
    117.0, 118.0, 120.0, 121.0, 123.0, 124.0, 126.0, 127.0, 129.0, 130.0, 132.0, 133.0, 135.0,
    137.0, 138.0, 140.0, 142.0, 143.0, 145.0, 147.0, 149.0, 150.0, 152.0, 154.0, 156.0, 158.0,
    160.0, 162.0, 164.0, 165.0, 167.0, 169.0, 172.0, 174.0, 176.0, 178.0, 180.0, 182.0, 184.0,
    187.0, 189.0, 191.0, 193.0, 196.0, 198.0, 200.0, 203.0, 205.0, 208.0, 210.0, 213.0, 215.0,
    218.0, 221.0, 223.0, 226.0, 229.0, 232.0, 234.0, 237.0, 240.0, 243.0, 246.0, 249.0, 252.0,
    255.0, 258.0, 261.0, 264.0, 267.0, 271.0, 274.0, 277.0, 280.0, 284.0, 287.0, 291.0, 294.0,
    298.0, 301.0, 305.0, 309.0, 312.0, 316.0, 320.0, 324.0, 328.0, 332.0, 336.0, 340.0, 344.0,
    348.0, 352.0, 357.0, 361.0, 365.0, 370.0, 374.0, 379.0, 383.0, 388.0, 392.0, 397.0, 402.0,
    407.0, 412.0, 417.0, 422.0, 427.0, 432.0, 437.0, 442.0, 448.0, 453.0, 459.0, 464.0, 470.0,
    475.0, 481.0, 487.0, 493.0, 499.0, 505.0, 511.0, 517.0, 523.0, 530.0, 536.0, 542.0, 549.0,
    556.0, 562.0, 569.0, 576.0, 583.0, 590.0, 597.0, 604.0, 612.0, 619.0, 626.0, 634.0, 642.0,
    649.0, 657.0, 665.0, 673.0, 681.0, 690.0, 698.0, 706.0, 715.0, 723.0, 732.0, 741.0, 750.0,
    759.0, 768.0, 777.0, 787.0, 796.0, 806.0, 816.0, 825.0, 835.0, 845.0, 856.0, 866.0, 876.0,
    887.0, 898.0, 909.0, 920.0, 931.0, 942.0, 953.0, 965.0, 976.0, 988.0,
];

/// A rounding granularity of `$bucketAuto`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rounder {
    Preferred(&'static [f64]),
    PowersOfTwo,
}

impl Rounder {
    /// The granularity named `v`: 40261 for a value that is not a string, 40257 for a name
    /// MongoDB does not have (names are case-sensitive).
    pub(super) fn parse(v: &Bson) -> Result<Self> {
        let Bson::String(name) = v else {
            return Err(expr::parse_error(
                40261,
                format!(
                    "The $bucketAuto 'granularity' field must be a string, but found type: {}",
                    query::type_name(Some(v))
                ),
            ));
        };
        let series = match name.as_str() {
            "R5" => R5,
            "R10" => R10,
            "R20" => R20,
            "R40" => R40,
            "R80" => R80,
            "1-2-5" => ONE_TWO_FIVE,
            "E6" => E6,
            "E12" => E12,
            "E24" => E24,
            "E48" => E48,
            "E96" => E96,
            "E192" => E192,
            "POWERSOF2" => return Ok(Self::PowersOfTwo),
            _ => {
                return Err(expr::parse_error(
                    40257,
                    format!("Unknown rounding granularity '{name}'"),
                ));
            }
        };
        Ok(Self::Preferred(series))
    }

    /// The smallest value of the granularity above `v` (a value of it rounds to the next);
    /// zero (and an infinity, for preferred numbers) as it is.
    ///
    /// # Errors
    /// MongoDB's codes for a value that is not a non-negative number (40262/40263/40268,
    /// 40265/40266/40267 for powers of two); `$bucketAuto` checks its keys first.
    pub(super) fn round_up(self, v: &Bson) -> Result<Bson> {
        self.round(v, true)
    }

    /// The largest value of the granularity below `v`, as [`Rounder::round_up`].
    pub(super) fn round_down(self, v: &Bson) -> Result<Bson> {
        self.round(v, false)
    }

    fn round(self, v: &Bson, up: bool) -> Result<Bson> {
        let (non_numeric, nan, negative) = match self {
            Self::Preferred(_) => (40262, 40263, 40268),
            Self::PowersOfTwo => (40265, 40266, 40267),
        };
        let Some(x) = document::as_f64(v) else {
            return Err(expr::parse_error(
                non_numeric,
                format!(
                    "A granularity rounder can only round numeric values, but found type: {}",
                    query::type_name(Some(v))
                ),
            ));
        };
        if x.is_nan() {
            return Err(expr::parse_error(
                nan,
                "A granularity rounder cannot round NaN",
            ));
        }
        if x < 0.0 {
            return Err(expr::parse_error(
                negative,
                "A granularity rounder can only round non-negative numbers",
            ));
        }
        if x == 0.0 {
            return Ok(v.clone());
        }
        Ok(match self {
            Self::Preferred(_) if x.is_infinite() => v.clone(),
            Self::Preferred(series) => match v {
                Bson::Decimal128(_) => preferred_decimal(series, v, up),
                _ => Bson::Double(preferred_double(series, x, up)),
            },
            Self::PowersOfTwo => power_of_two(v, x, up),
        })
    }
}

/// A preferred number of `series` above (`up`) or below `x` (positive, finite), in MongoDB's
/// order of double operations.
fn preferred_double(series: &[f64], x: f64, up: bool) -> f64 {
    let (Some(&front), Some(&back)) = (series.first(), series.last()) else {
        return x;
    };
    let mut m = 1.0_f64;
    if up {
        while x >= back * m {
            m *= 10.0;
        }
        while x < front * m {
            let previous_min = front * m;
            m /= 10.0;
            if x >= back * m {
                return previous_min;
            }
        }
        series
            .iter()
            .map(|s| s * m)
            .find(|s| x < *s)
            .unwrap_or(front * m * 10.0)
    } else {
        while x <= front * m {
            m /= 10.0;
            // Past the smallest double (MongoDB's fix of SERVER-57091).
            if m == 0.0 {
                return 0.0;
            }
        }
        while x > back * m {
            let previous_max = back * m;
            m *= 10.0;
            if x <= front * m {
                return previous_max;
            }
        }
        // The loops leave `front × m < x`: the value found is never the first.
        let at = series
            .iter()
            .position(|s| s * m >= x)
            .unwrap_or(series.len());
        series
            .get(at.saturating_sub(1))
            .map_or(front * m, |s| s * m)
    }
}

/// As [`preferred_double`], in Decimal128 arithmetic.
fn preferred_decimal(series: &[f64], v: &Bson, up: bool) -> Bson {
    let dec = |x: &Bson| decimal::to_decimal(x).unwrap_or(Bson::Null);
    let series: Vec<Bson> = series.iter().map(|s| dec(&Bson::Double(*s))).collect();
    let (Some(front), Some(back)) = (series.first(), series.last()) else {
        return v.clone();
    };
    let ten = dec(&Bson::Int32(10));
    let times = |a: &Bson, b: &Bson| decimal::multiply(a, b).unwrap_or(Bson::Null);
    let over = |a: &Bson, b: &Bson| decimal::divide_values(a, b).unwrap_or(Bson::Null);
    let cmp = |a: &Bson, b: &Bson| compare(a, b);
    let mut m = dec(&Bson::Int32(1));
    if up {
        while cmp(v, &times(back, &m)) != Ordering::Less {
            m = times(&m, &ten);
        }
        while cmp(v, &times(front, &m)) == Ordering::Less {
            let previous_min = times(front, &m);
            m = over(&m, &ten);
            if cmp(v, &times(back, &m)) != Ordering::Less {
                return previous_min;
            }
        }
        series
            .iter()
            .map(|s| times(s, &m))
            .find(|s| cmp(v, s) == Ordering::Less)
            .unwrap_or_else(|| times(&times(front, &m), &ten))
    } else {
        while cmp(v, &times(front, &m)) != Ordering::Greater {
            m = over(&m, &ten);
        }
        while cmp(v, &times(back, &m)) == Ordering::Greater {
            let previous_max = times(back, &m);
            m = times(&m, &ten);
            if cmp(v, &times(front, &m)) != Ordering::Greater {
                return previous_max;
            }
        }
        let at = series
            .iter()
            .position(|s| cmp(&times(s, &m), v) != Ordering::Less)
            .unwrap_or(series.len());
        times(series.get(at.saturating_sub(1)).unwrap_or(front), &m)
    }
}

/// The power of two above (`up`) or below `v` (positive): its exponent from the integer's
/// bits, or the logarithm of the double or decimal, then `$pow(2, exponent)`.
fn power_of_two(v: &Bson, x: f64, up: bool) -> Bson {
    let exponent = match v {
        Bson::Int32(_) | Bson::Int64(_) => {
            let n = match v {
                Bson::Int32(i) => i64::from(*i),
                Bson::Int64(i) => *i,
                _ => 0,
            };
            let leading = i64::from(n.leading_zeros());
            let trailing = i64::from(n.trailing_zeros());
            if up {
                63 - leading + 1
            } else if leading + trailing == 63 {
                63 - leading - 1
            } else {
                63 - leading
            }
        }
        _ => {
            let log = x.log2();
            #[expect(
                clippy::cast_possible_truncation,
                reason = "MongoDB's int cast of the rounded logarithm (at most ±1075 for finite \
                          doubles; an infinity saturates)"
            )]
            let e = if up {
                (log.floor() + 1.0) as i64
            } else {
                (log.ceil() - 1.0) as i64
            };
            e
        }
    };
    if matches!(v, Bson::Decimal128(_)) {
        return decimal_power_of_two(exponent);
    }
    // `$pow` of int 2 and an int exponent.
    match u32::try_from(exponent) {
        Ok(e) if e <= 30 => Bson::Int32(1 << e),
        Ok(e) if e <= 62 => Bson::Int64(1 << e),
        _ => Bson::Double(2.0_f64.powf(exponent_f64(exponent))),
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "an exponent of a double, at most ±1075 (or saturated)"
)]
fn exponent_f64(e: i64) -> f64 {
    e as f64
}

/// `2^e` in Decimal128: 2 multiplied, or 1 divided by 2, `|e|` times (exact within
/// Decimal128's range for the exponents of finite decimals that round).
fn decimal_power_of_two(e: i64) -> Bson {
    let dec = |x: i32| decimal::to_decimal(&Bson::Int32(x)).unwrap_or(Bson::Null);
    let two = dec(2);
    let mut p = dec(1);
    for _ in 0..e.unsigned_abs().min(12_000) {
        p = if e < 0 {
            decimal::divide_values(&p, &two)
        } else {
            decimal::multiply(&p, &two)
        }
        .unwrap_or(Bson::Null);
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;

    fn up(name: &str, v: Bson) -> Bson {
        Rounder::parse(&Bson::String(name.into()))
            .unwrap()
            .round_up(&v)
            .unwrap()
    }

    fn down(name: &str, v: Bson) -> Bson {
        Rounder::parse(&Bson::String(name.into()))
            .unwrap()
            .round_down(&v)
            .unwrap()
    }

    /// The doubles MongoDB's code makes (the research table of up/down for 0.8, 1, 7, 63,
    /// 1000 and 0.05).
    #[test]
    fn preferred_numbers_round_as_mongodbs_doubles() {
        let d = Bson::Double;
        let cases: &[(&str, [(f64, f64); 6])] = &[
            (
                "R5",
                [
                    (1.0, 0.63),
                    (1.6, 0.63),
                    (10.0, 6.300_000_000_000_001),
                    (100.0, 40.0),
                    (1600.0, 630.0),
                    (0.063, 0.04),
                ],
            ),
            (
                "R20",
                [
                    (0.9, 0.71),
                    (1.12, 0.9),
                    (7.100_000_000_000_000_5, 6.3),
                    (71.0, 56.0),
                    (1120.0, 900.0),
                    (0.056, 0.045_000_000_000_000_005),
                ],
            ),
            (
                "E6",
                [
                    (1.0, 0.68),
                    (1.5, 0.68),
                    (10.0, 6.800_000_000_000_001),
                    (68.0, 47.0),
                    (1500.0, 680.0),
                    (0.068, 0.047),
                ],
            ),
            (
                "1-2-5",
                [
                    (1.0, 0.5),
                    (2.0, 0.5),
                    (10.0, 5.0),
                    (100.0, 50.0),
                    (2000.0, 500.0),
                    (0.1, 0.02),
                ],
            ),
        ];
        for (name, results) in cases {
            for (x, (u, l)) in [0.8, 1.0, 7.0, 63.0, 1000.0, 0.05].iter().zip(results) {
                assert_eq!(up(name, d(*x)), d(*u), "{name} up {x}");
                assert_eq!(down(name, d(*x)), d(*l), "{name} down {x}");
            }
        }
        // Zero and infinity as they are; an int rounds to a double.
        assert_eq!(up("R5", Bson::Int32(0)), Bson::Int32(0));
        assert_eq!(down("R5", d(f64::INFINITY)), d(f64::INFINITY));
        assert_eq!(up("R5", Bson::Int32(24)), d(25.0));
        // The smallest double rounds down to zero (SERVER-57091).
        assert_eq!(down("R80", d(f64::from_bits(1))), d(0.0));
    }

    #[test]
    fn decimals_round_in_decimal() {
        let dec = |s: &str| Bson::Decimal128(s.parse().unwrap());
        assert_eq!(
            up("R5", dec("24")).to_string(),
            dec("25.0000000000000").to_string()
        );
        assert_eq!(
            down("R5", dec("1")).to_string(),
            dec("0.630000000000000").to_string()
        );
        assert!(matches!(up("R5", dec("100")), Bson::Decimal128(_)));
        assert_eq!(
            compare(&up("R5", dec("100")), &Bson::Int32(160)),
            Ordering::Equal
        );
        assert_eq!(
            compare(&up("POWERSOF2", dec("0.12")), &Bson::Double(0.125)),
            Ordering::Equal
        );
        assert_eq!(
            compare(&down("POWERSOF2", dec("0.13")), &Bson::Double(0.125)),
            Ordering::Equal
        );
    }

    /// `granularity_rounder_powers_of_two_test.cpp`, types included.
    #[test]
    fn powers_of_two_take_pows_types() {
        assert_eq!(up("POWERSOF2", Bson::Double(0.5)), Bson::Int32(1));
        for (x, want) in [(1, 2), (2, 4), (4, 8), (8, 16), (3, 4), (5, 8), (7, 8)] {
            assert_eq!(up("POWERSOF2", Bson::Int32(x)), Bson::Int32(want));
        }
        assert_eq!(up("POWERSOF2", Bson::Int64(1 << 61)), Bson::Int64(1 << 62));
        assert_eq!(
            up("POWERSOF2", Bson::Int64((1 << 62) + 1)),
            Bson::Double(9_223_372_036_854_775_808.0)
        );
        assert_eq!(
            up("POWERSOF2", Bson::Int32(1 << 30)),
            Bson::Int64(2_147_483_648)
        );
        assert_eq!(
            down("POWERSOF2", Bson::Double(9_223_372_036_854_775_808.0)),
            Bson::Int64(1 << 62)
        );
        assert_eq!(
            down("POWERSOF2", Bson::Int64(2_147_483_648)),
            Bson::Int32(1 << 30)
        );
        for (x, want) in [(0.1, 0.125), (0.2, 0.25), (0.3, 0.5)] {
            assert_eq!(up("POWERSOF2", Bson::Double(x)), Bson::Double(want));
        }
        for (x, want) in [
            (10, 8),
            (9, 8),
            (7, 4),
            (6, 4),
            (5, 4),
            (3, 2),
            (16, 8),
            (1, 0),
        ] {
            let got = down("POWERSOF2", Bson::Int32(x));
            if want == 0 {
                assert_eq!(got, Bson::Double(0.5));
            } else {
                assert_eq!(got, Bson::Int32(want), "{x}");
            }
        }
        assert_eq!(down("POWERSOF2", Bson::Double(0.7)), Bson::Double(0.5));
        assert_eq!(up("POWERSOF2", Bson::Int32(0)), Bson::Int32(0));
    }

    #[test]
    fn names_and_values_are_checked_with_mongodbs_codes() {
        let code = |r: Result<Rounder>| match r {
            Err(super::super::super::error::Error::InvalidExpression { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(Rounder::parse(&Bson::Int32(5))), 40261);
        assert_eq!(code(Rounder::parse(&Bson::Boolean(true))), 40261);
        assert_eq!(code(Rounder::parse(&Bson::String("BOGUS".into()))), 40257);
        assert_eq!(code(Rounder::parse(&Bson::String("r5".into()))), 40257);
        let r5 = Rounder::parse(&Bson::String("R5".into())).unwrap();
        let p2 = Rounder::PowersOfTwo;
        let round = |r: Rounder, v: Bson| match r.round_up(&v) {
            Err(super::super::super::error::Error::InvalidExpression { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(round(r5, Bson::String("test".into())), 40262);
        assert_eq!(round(r5, Bson::Double(f64::NAN)), 40263);
        assert_eq!(round(r5, Bson::Int32(-1)), 40268);
        assert_eq!(round(p2, Bson::String("test".into())), 40265);
        assert_eq!(round(p2, Bson::Double(f64::NAN)), 40266);
        assert_eq!(round(p2, Bson::Int32(-1)), 40267);
    }
}
