//! Redis's `long double` arithmetic for INCRBYFLOAT and HINCRBYFLOAT.
//!
//! Redis 7.0 parses both operands with `strtold`, adds them in the x87 80-bit extended format
//! (a 64-bit significand with an explicit integer bit, a 15-bit exponent, gradual underflow,
//! round to nearest even) and prints the sum with `%.17Lf` less its trailing zeros. A binary64
//! double cannot give the same text: 0.1 + 0.2 is `0.30000000000000004` there but `0.3` from
//! Redis, 1e-20 prints as `0` from Redis, and sums up to about 1.19e4932 stay finite. This module
//! computes the same bits exactly, with a small unsigned big integer for the parse, the sum and
//! the decimal expansion.

#![deny(clippy::indexing_slicing)]

use std::cmp::Ordering;

/// Longest text Redis parses as a long double: its `MAX_LONG_DOUBLE_CHARS` buffer (5 KiB) less
/// the terminating NUL. Longer operands get "value is not a valid float", as in `string2ld`.
pub(crate) const LONG_DOUBLE_CHARS_MAX: usize = 5 * 1024 - 1;

/// Exponent of the significand's lowest bit for the smallest subnormal value, 2^-16445.
const EXP_MIN: i64 = -16445;
/// Exponent of the significand's lowest bit for the largest finite value, (2^64 - 1) * 2^16320.
const EXP_MAX: i64 = 16320;
/// Decimal digits `%.17Lf` prints after the point.
const FRACTION_DIGITS: usize = 17;

/// A finite 80-bit extended value: `(-1)^neg * mant * 2^exp`, normalised (bit 63 of `mant` set)
/// unless subnormal (`exp == EXP_MIN`) or zero (`mant == 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LongDouble {
    neg: bool,
    mant: u64,
    exp: i64,
}

/// What `strtold` makes of an operand Redis accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A finite value.
    Finite(LongDouble),
    /// `inf` or `infinity`, either sign.
    Infinite,
}

impl LongDouble {
    /// Zero with the sign `neg`.
    const fn zero(neg: bool) -> Self {
        Self {
            neg,
            mant: 0,
            exp: 0,
        }
    }

    /// Parses `text` as Redis's `string2ld` does: the whole text must be a `strtold` number
    /// (decimal or hexadecimal, optional sign and exponent, `inf`/`infinity`); leading space,
    /// NaN, values that overflow or that underflow to zero, empty text and text longer than
    /// [`LONG_DOUBLE_CHARS_MAX`] are refused with `None`.
    pub(crate) fn parse(text: &[u8]) -> Option<Parsed> {
        if text.is_empty() || text.len() > LONG_DOUBLE_CHARS_MAX {
            return None;
        }
        let (neg, body) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Parsed::Infinite);
        }
        let value = match body {
            [b'0', b'x' | b'X', hex @ ..] => parse_hex(neg, hex)?,
            _ => parse_decimal(neg, body)?,
        };
        Some(Parsed::Finite(value))
    }

    /// The exactly rounded sum, or `None` when it overflows to infinity.
    pub(crate) fn add(self, other: Self) -> Option<Self> {
        if self.mant == 0 && other.mant == 0 {
            // IEEE 754: -0 + -0 is -0, any other sum of zeros +0.
            return Some(Self::zero(self.neg && other.neg));
        }
        if self.mant == 0 {
            return Some(other);
        }
        if other.mant == 0 {
            return Some(self);
        }
        let k = self.exp.min(other.exp);
        let a = Big::from_u64(self.mant).shl(shift_of(self.exp - k));
        let b = Big::from_u64(other.mant).shl(shift_of(other.exp - k));
        if self.neg == other.neg {
            return round(self.neg, &a.add(&b), k, false);
        }
        match a.cmp(&b) {
            Ordering::Equal => Some(Self::zero(false)),
            Ordering::Greater => round(self.neg, &a.sub(&b), k, false),
            Ordering::Less => round(other.neg, &b.sub(&a), k, false),
        }
    }

    /// The text Redis stores and replies: `%.17Lf` with trailing zeros (and a bare point) cut,
    /// and `-0` written `0`.
    pub(crate) fn to_human(self) -> String {
        let mut scaled = Big::from_u64(self.mant);
        scaled.mul_add_small(100_000_000, 0);
        scaled.mul_add_small(1_000_000_000, 0);
        let rounded = if self.exp >= 0 {
            scaled.shl(shift_of(self.exp))
        } else {
            shr_round_even(&scaled, self.exp.unsigned_abs(), false)
        };
        let mut digits = rounded.to_decimal();
        while digits.len() <= FRACTION_DIGITS {
            digits.insert(0, '0');
        }
        let point = digits.len() - FRACTION_DIGITS;
        let mut out = String::with_capacity(digits.len() + 2);
        if self.neg {
            out.push('-');
        }
        out.push_str(digits.get(..point).unwrap_or("0"));
        out.push('.');
        out.push_str(digits.get(point..).unwrap_or_default());
        let kept = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(kept);
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// A shift count from an exponent difference that callers have already bounded to the format's
/// range (at most `EXP_MAX - EXP_MIN` bits).
fn shift_of(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Decimal `strtold` syntax: digits with an optional point (at least one digit), then an
/// optional exponent `e[+-]digits`.
fn parse_decimal(neg: bool, body: &[u8]) -> Option<LongDouble> {
    let (digits, exp) = mantissa_and_exponent(body, u8::is_ascii_digit, b"eE")?;
    let (n, frac_len, len) = digits_value(digits, 10);
    if n.is_zero() {
        return Some(LongDouble::zero(neg));
    }
    let e = exp.saturating_sub(frac_len);
    // The value lies in [10^(e+len-1), 10^(e+len)): decide the far ends without big powers.
    // The largest finite value is about 1.19e4932, the smallest subnormal about 3.65e-4951.
    if e.saturating_add(len).saturating_sub(1) > 4932 || e.saturating_add(len) < -4952 {
        return None;
    }
    if e >= 0 {
        return nonzero(round(neg, &n.mul_pow10(e.unsigned_abs()), 0, false)?);
    }
    // n / 10^m, m = -e: a quotient of at least 66 bits with a sticky bit for the remainder
    // rounds exactly as the true quotient does. 10^m has fewer than 4m bits, and dividing by
    // 10^9 at a time composes: floor(floor(x / a) / b) = floor(x / ab).
    let m = e.unsigned_abs();
    let s = (67u64 + 4 * m).saturating_sub(n.bit_len());
    let mut q = n.shl(s);
    let mut sticky = false;
    for d in std::iter::repeat_n(1_000_000_000, usize::try_from(m / 9).ok()?)
        .chain(std::iter::once(10u32.pow((m % 9) as u32)))
    {
        let (next, r) = q.div_rem_small(d);
        sticky |= r != 0;
        q = next;
    }
    let k = -i64::try_from(s).ok()?;
    nonzero(round(neg, &q, k, sticky)?)
}

/// Hexadecimal `strtold` syntax after `0x`: hex digits with an optional point (at least one
/// digit), then an optional binary exponent `p[+-]digits`.
fn parse_hex(neg: bool, body: &[u8]) -> Option<LongDouble> {
    let (digits, exp) = mantissa_and_exponent(body, u8::is_ascii_hexdigit, b"pP")?;
    let (n, frac_digits, _) = digits_value(digits, 16);
    if n.is_zero() {
        return Some(LongDouble::zero(neg));
    }
    let frac_len = frac_digits.saturating_mul(4);
    let k = exp.saturating_sub(frac_len);
    let top = k.saturating_add(i64::try_from(n.bit_len()).unwrap_or(i64::MAX));
    if !(EXP_MIN - 1..=EXP_MAX + 64).contains(&top) {
        return None;
    }
    nonzero(round(neg, &n, k, false)?)
}

/// The integer that `digits` (in `radix`, the point skipped) spell, how many digits follow the
/// point, and how many digits it has from its first non-zero one. `digits` holds only digits of
/// `radix` and points, as [`mantissa_and_exponent`] checked.
fn digits_value(digits: &[u8], radix: u32) -> (Big, i64, i64) {
    // Digits are taken a chunk at a time: radix^7 < 2^32 for 10 and 16.
    const CHUNK: u32 = 7;
    let mut n = Big::default();
    let (mut chunk, mut chunk_len) = (0u32, 0u32);
    let (mut frac_len, mut significant, mut seen_point) = (0i64, 0i64, false);
    for &c in digits {
        let Some(d) = char::from(c).to_digit(radix) else {
            seen_point = true;
            continue;
        };
        frac_len += i64::from(seen_point);
        significant += i64::from(significant > 0 || d != 0);
        chunk = chunk * radix + d;
        chunk_len += 1;
        if chunk_len == CHUNK {
            n.mul_add_small(radix.pow(CHUNK), chunk);
            (chunk, chunk_len) = (0, 0);
        }
    }
    n.mul_add_small(radix.pow(chunk_len), chunk);
    (n, frac_len, significant)
}

/// A parse whose value rounded to zero underflowed: `strtold` sets `ERANGE` and Redis refuses it.
fn nonzero(v: LongDouble) -> Option<LongDouble> {
    (v.mant != 0).then_some(v)
}

/// Splits `body` into the significand's characters and the exponent's value. The significand
/// is digits (per `is_digit`) with at most one point and at least one digit; the exponent, when
/// present, is one of `markers`, an optional sign and at least one decimal digit. The exponent
/// saturates far outside the format's range.
fn mantissa_and_exponent<'a>(
    body: &'a [u8],
    is_digit: fn(&u8) -> bool,
    markers: &[u8],
) -> Option<(&'a [u8], i64)> {
    let split = body.iter().position(|c| markers.contains(c));
    let (digits, exponent) = match split {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let points = digits.iter().filter(|c| **c == b'.').count();
    let numerals = digits.iter().filter(|c| is_digit(c)).count();
    if points > 1 || numerals == 0 || numerals + points != digits.len() {
        return None;
    }
    let exp = match exponent {
        None => 0,
        Some(e) => {
            let (sign, digits) = match e.split_first() {
                Some((b'-', rest)) => (-1, rest),
                Some((b'+', rest)) => (1, rest),
                _ => (1, e),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let magnitude = digits.iter().fold(0i64, |acc, c| {
                acc.saturating_mul(10)
                    .saturating_add(i64::from(c - b'0'))
                    .min(1 << 40)
            });
            sign * magnitude
        }
    };
    Some((digits, exp))
}

/// Rounds `n * 2^k`, plus a fraction of `2^k` below half when `sticky`, to the extended format
/// (nearest, ties to even; subnormal below 2^-16382). `None` when it overflows. With `sticky`,
/// `n` must have at least 66 bits so that the sticky bit lies below the rounding bit.
fn round(neg: bool, n: &Big, k: i64, sticky: bool) -> Option<LongDouble> {
    if n.is_zero() {
        return Some(LongDouble::zero(neg));
    }
    let bits = i64::try_from(n.bit_len()).ok()?;
    let mut exp = k.saturating_add(bits).saturating_sub(64).max(EXP_MIN);
    let mant = if exp <= k {
        // Every bit of n fits: exact.
        n.low_u64() << shift_of(k - exp).min(63)
    } else {
        let q = shr_round_even(n, shift_of(exp - k), sticky);
        if q.bit_len() > 64 {
            // Rounding carried into a 65th bit: the significand is 2^63 one exponent up.
            exp += 1;
            1 << 63
        } else {
            q.low_u64()
        }
    };
    if exp > EXP_MAX {
        return None;
    }
    Some(LongDouble { neg, mant, exp })
}

/// `n >> shift`, rounded to nearest with ties to even; `sticky` says the true value is a little
/// more than `n`.
fn shr_round_even(n: &Big, shift: u64, sticky: bool) -> Big {
    if shift == 0 {
        return n.clone();
    }
    let mut q = n.shr(shift);
    let half = n.bit(shift - 1);
    let rest = sticky || n.any_below(shift - 1);
    if half && (rest || q.bit(0)) {
        q.mul_add_small(1, 1);
    }
    q
}

/// An unsigned big integer: little-endian 32-bit limbs without high zero limbs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Big {
    limbs: Vec<u32>,
}

impl Big {
    fn from_u64(v: u64) -> Self {
        let mut b = Self {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        b.trim();
        b
    }

    /// `self * 10^n`.
    fn mul_pow10(&self, n: u64) -> Self {
        let mut b = self.clone();
        for _ in 0..n / 9 {
            b.mul_add_small(1_000_000_000, 0);
        }
        b.mul_add_small(10u32.pow((n % 9) as u32), 0);
        b
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    fn bit_len(&self) -> u64 {
        self.limbs.last().map_or(0, |top| {
            (self.limbs.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros())
        })
    }

    fn bit(&self, i: u64) -> bool {
        let limb = usize::try_from(i / 32).unwrap_or(usize::MAX);
        self.limbs.get(limb).is_some_and(|l| l >> (i % 32) & 1 == 1)
    }

    /// Whether any bit below position `i` is set.
    fn any_below(&self, i: u64) -> bool {
        let whole = usize::try_from(i / 32).unwrap_or(usize::MAX);
        let low = self.limbs.iter().take(whole).any(|l| *l != 0);
        let partial = i % 32;
        low || (partial > 0
            && self
                .limbs
                .get(whole)
                .is_some_and(|l| l & ((1u32 << partial) - 1) != 0))
    }

    fn low_u64(&self) -> u64 {
        let lo = self.limbs.first().copied().unwrap_or(0);
        let hi = self.limbs.get(1).copied().unwrap_or(0);
        u64::from(lo) | u64::from(hi) << 32
    }

    /// `self = self * m + a`.
    fn mul_add_small(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for l in &mut self.limbs {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.limbs.push(carry as u32);
        }
        self.trim();
    }

    fn add(&self, other: &Self) -> Self {
        let len = self.limbs.len().max(other.limbs.len());
        let mut limbs = Vec::with_capacity(len + 1);
        let mut carry = 0u64;
        for i in 0..len {
            let a = self.limbs.get(i).copied().unwrap_or(0);
            let b = other.limbs.get(i).copied().unwrap_or(0);
            let v = u64::from(a) + u64::from(b) + carry;
            limbs.push(v as u32);
            carry = v >> 32;
        }
        limbs.push(carry as u32);
        let mut b = Self { limbs };
        b.trim();
        b
    }

    /// `self - other`; the caller guarantees `self >= other`.
    fn sub(&self, other: &Self) -> Self {
        let mut limbs = Vec::with_capacity(self.limbs.len());
        let mut borrow = 0i64;
        for (i, a) in self.limbs.iter().enumerate() {
            let b = other.limbs.get(i).copied().unwrap_or(0);
            let mut v = i64::from(*a) - i64::from(b) - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            limbs.push(v as u32);
        }
        let mut b = Self { limbs };
        b.trim();
        b
    }

    fn shl(&self, n: u64) -> Self {
        if self.is_zero() {
            return Self::default();
        }
        let whole = usize::try_from(n / 32).unwrap_or(usize::MAX);
        let part = (n % 32) as u32;
        let mut limbs = vec![0u32; whole];
        let mut carry = 0u32;
        for l in &self.limbs {
            limbs.push(if part == 0 { *l } else { l << part | carry });
            carry = if part == 0 { 0 } else { l >> (32 - part) };
        }
        limbs.push(carry);
        let mut b = Self { limbs };
        b.trim();
        b
    }

    fn shr(&self, n: u64) -> Self {
        let whole = usize::try_from(n / 32).unwrap_or(usize::MAX);
        let part = (n % 32) as u32;
        let src = self.limbs.get(whole..).unwrap_or_default();
        let mut limbs = Vec::with_capacity(src.len());
        for (i, l) in src.iter().enumerate() {
            let next = src.get(i + 1).copied().unwrap_or(0);
            limbs.push(if part == 0 {
                *l
            } else {
                l >> part | next << (32 - part)
            });
        }
        let mut b = Self { limbs };
        b.trim();
        b
    }

    fn div_rem_small(&self, d: u32) -> (Self, u32) {
        let mut limbs = vec![0u32; self.limbs.len()];
        let mut rem = 0u64;
        for (i, l) in self.limbs.iter().enumerate().rev() {
            let v = rem << 32 | u64::from(*l);
            if let Some(slot) = limbs.get_mut(i) {
                *slot = (v / u64::from(d)) as u32;
            }
            rem = v % u64::from(d);
        }
        let mut b = Self { limbs };
        b.trim();
        (b, rem as u32)
    }

    fn to_decimal(&self) -> String {
        let mut chunks = Vec::new();
        let mut n = self.clone();
        while !n.is_zero() {
            let (q, r) = n.div_rem_small(1_000_000_000);
            chunks.push(r);
            n = q;
        }
        let mut out = chunks
            .pop()
            .map_or_else(|| "0".to_owned(), |c| c.to_string());
        for c in chunks.iter().rev() {
            out.push_str(&format!("{c:09}"));
        }
        out
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let (Some(Parsed::Finite(a)), Some(Parsed::Finite(b))) = (
            LongDouble::parse(a.as_bytes()),
            LongDouble::parse(b.as_bytes()),
        ) else {
            return None;
        };
        a.add(b).map(LongDouble::to_human)
    }

    /// Sums and their text from Redis 7.0.15 (`SET k a`, `INCRBYFLOAT k b`) on x86-64.
    #[test]
    fn sums_print_as_redis_prints_them() {
        let cases = [
            ("0.1", "0.2", "0.3"),
            ("10.5", "0.1", "10.6"),
            ("10", "0.1", "10.1"),
            ("0", "1e-20", "0"),
            ("0", "-1e-20", "0"),
            ("3", "-3", "0"),
            ("5.0e3", "0", "5000"),
            ("1.5", "2.5", "4"),
            ("-1.5", "0.25", "-1.25"),
            ("12345.6", "0", "12345.59999999999999964"),
            ("1e20", "0", "100000000000000000000"),
            ("0x10", "0x1p-1", "16.5"),
        ];
        for (a, b, want) in cases {
            assert_eq!(incr(a, b).as_deref(), Some(want), "{a} + {b}");
        }
    }

    #[test]
    fn a_double_overflow_is_finite_in_the_extended_format() {
        // Redis 7.0.15: `SET k 1e308`, `INCRBYFLOAT k 1e308`.
        let want = "199999999999999999993371759311691291321120199694831134415594095989843469737676\
                    123744200253843777078640893494450108026446304269499187921167194841628860392837\
                    535918200039206381557326219209014213335878306791577877829121087126122536729803\
                    237260434173178506889763247582601711514636284849020905456510092687857156096";
        assert_eq!(incr("1e308", "1e308").as_deref(), Some(want));
        assert_eq!(incr("1.18e4932", "1.18e4932"), None);
    }

    #[test]
    fn parse_follows_strtold_and_string2ld() {
        for bad in [
            "",
            " 1",
            "1 ",
            "abc",
            "1e",
            "1e+",
            ".",
            "-",
            "0x",
            "0x.p1",
            "1.2.3",
            "nan",
            "-nan",
            "1e5000",
            "1e-5000",
            "0x1p99999",
            "++1",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        for good in ["1.", ".5", "+1", "-0", "1E+3", "0X1P3", "0x.8", "1e-4950"] {
            assert!(
                matches!(LongDouble::parse(good.as_bytes()), Some(Parsed::Finite(_))),
                "{good:?}"
            );
        }
        for inf in ["inf", "-INF", "Infinity", "+infinity"] {
            assert_eq!(LongDouble::parse(inf.as_bytes()), Some(Parsed::Infinite));
        }
    }

    #[test]
    fn operand_length_is_checked_at_the_limit() {
        let at_max = format!("1.{}", "0".repeat(LONG_DOUBLE_CHARS_MAX - 2));
        assert_eq!(at_max.len(), LONG_DOUBLE_CHARS_MAX);
        assert!(LongDouble::parse(at_max.as_bytes()).is_some());
        let over = format!("{at_max}0");
        assert_eq!(LongDouble::parse(over.as_bytes()), None);
    }

    #[test]
    fn ties_round_to_even_in_the_sum_and_in_the_text() {
        // 2^64 + 1 is halfway between two extended values: it rounds to the even 2^64.
        assert_eq!(
            incr("18446744073709551616", "1").as_deref(),
            Some("18446744073709551616")
        );
        assert_eq!(
            incr("18446744073709551616", "3").as_deref(),
            Some("18446744073709551620")
        );
        // 2^-18 = 0.000003814697265625 has an 18th decimal 5 after an even 17th digit.
        assert_eq!(incr("0x1p-18", "0").as_deref(), Some("0.00000381469726562"));
    }

    #[test]
    fn subnormals_are_kept_and_underflow_is_refused() {
        let tiny = LongDouble::parse(b"0x1p-16445");
        assert!(matches!(tiny, Some(Parsed::Finite(v)) if v.mant == 1 && v.exp == EXP_MIN));
        assert_eq!(LongDouble::parse(b"0x1p-16447"), None);
    }
}
