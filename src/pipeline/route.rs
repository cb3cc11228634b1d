//! Route predicates (NiFi's RouteOnAttribute on JSON content): conditions parsed once, evaluated
//! per record. Pure functions over `serde_json::Value`.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};
use serde_json::{Number, Value};

use super::config::Condition;
use super::path::JsonPath;
use super::{IN_VALUES_MAX, REGEX_BYTES_MAX, REGEX_COMPILED_BYTES_MAX};

/// A checked [`Condition`].
#[derive(Debug, Clone)]
pub(crate) struct Predicate {
    /// Where the value is.
    path: JsonPath,
    /// Operators that must all hold.
    ops: Vec<Op>,
}

/// One operator of a condition.
#[derive(Debug, Clone)]
enum Op {
    Equals(Value),
    Exists(bool),
    In(Vec<Value>),
    Regex(Regex),
    Gt(Number),
    Gte(Number),
    Lt(Number),
    Lte(Number),
}

impl Predicate {
    /// Checks and compiles `condition`; the error names the offending operator.
    pub(crate) fn parse(condition: &Condition) -> Result<Self, (&'static str, String)> {
        let path = JsonPath::parse(&condition.path).map_err(|e| ("path", e))?;
        let mut ops = Vec::new();
        if let Some(v) = &condition.equals {
            ops.push(Op::Equals(v.clone()));
        }
        if let Some(v) = condition.exists {
            ops.push(Op::Exists(v));
        }
        if let Some(values) = &condition.one_of {
            if values.is_empty() || values.len() > IN_VALUES_MAX {
                return Err((
                    "in",
                    format!("has {} values (1 to {IN_VALUES_MAX})", values.len()),
                ));
            }
            ops.push(Op::In(values.clone()));
        }
        if let Some(pattern) = &condition.regex {
            ops.push(Op::Regex(compile_regex(pattern).map_err(|e| ("regex", e))?));
        }
        // A `Number` is finite by construction (serde_json refuses NaN and infinities).
        for (bound, make) in [
            (&condition.gt, Op::Gt as fn(Number) -> Op),
            (&condition.gte, Op::Gte),
            (&condition.lt, Op::Lt),
            (&condition.lte, Op::Lte),
        ] {
            if let Some(bound) = bound {
                ops.push(make(bound.clone()));
            }
        }
        if ops.is_empty() {
            return Err((
                "path",
                "the condition has no operator (equals, exists, in, regex, gt, gte, lt, lte)"
                    .into(),
            ));
        }
        Ok(Self { path, ops })
    }

    /// Whether every operator holds for `doc`.
    pub(crate) fn matches(&self, doc: &Value) -> bool {
        let value = self.path.lookup(doc).filter(|v| !v.is_null());
        self.ops.iter().all(|op| match (op, value) {
            (Op::Exists(wanted), v) => v.is_some() == *wanted,
            (_, None) => false,
            (Op::Equals(expected), Some(v)) => json_equal(v, expected),
            (Op::In(options), Some(v)) => options.iter().any(|o| json_equal(v, o)),
            (Op::Regex(re), Some(Value::String(s))) => re.is_match(s),
            (Op::Regex(_), Some(_)) => false,
            (Op::Gt(b), Some(v)) => compare(v, b).is_some_and(Ordering::is_gt),
            (Op::Gte(b), Some(v)) => compare(v, b).is_some_and(Ordering::is_ge),
            (Op::Lt(b), Some(v)) => compare(v, b).is_some_and(Ordering::is_lt),
            (Op::Lte(b), Some(v)) => compare(v, b).is_some_and(Ordering::is_le),
        })
    }
}

/// Compiles `pattern` under the byte and compiled-size limits.
fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > REGEX_BYTES_MAX {
        return Err(format!(
            "the pattern is {} bytes (at most {REGEX_BYTES_MAX})",
            pattern.len()
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_COMPILED_BYTES_MAX)
        .build()
        .map_err(|e| format!("not a valid regular expression: {e}"))
}

/// An integer's exact value (JSON integers are `i64` or `u64`), `None` for a float.
fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// How the integer `i` compares with the finite `f`, exactly: an integer past 2^53 read as a
/// double would be rounded to its neighbour (2^53 + 1 to 2^53).
fn compare_integer(i: i128, f: f64) -> Ordering {
    // 2^127: every JSON integer lies well inside ±2^127, where an integral double converts to
    // `i128` exactly.
    const I128_BOUND: f64 = 1.7014118346046923e38;
    if f >= I128_BOUND {
        return Ordering::Less;
    }
    if f < -I128_BOUND {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "an integral double inside ±2^127 converts exactly"
    )]
    let whole_i = whole as i128;
    i.cmp(&whole_i).then_with(|| {
        // Same integer part: the fraction decides.
        0.0_f64.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal)
    })
}

/// How the value `v` compares with the bound `b`: a number by its value, a string holding a
/// base-10 number ([`text_number`]) by the number's value; `None` for anything else.
fn compare(v: &Value, b: &Number) -> Option<Ordering> {
    match v {
        Value::Number(n) => compare_numbers(n, b),
        Value::String(s) => match (text_number(s)?, integer(b)) {
            (TextNumber::Integer(x), Some(y)) => Some(x.cmp(&y)),
            (TextNumber::Integer(i), None) => Some(compare_integer(i, b.as_f64()?)),
            (TextNumber::Double(f), Some(i)) => Some(compare_integer(i, f).reverse()),
            (TextNumber::Double(f), None) => f.partial_cmp(&b.as_f64()?),
        },
        _ => None,
    }
}

/// The value of a number written as text.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TextNumber {
    /// An integer, exactly (every integer of at most 38 digits fits).
    Integer(i128),
    /// Anything else, read as the nearest double; infinite past a double's range, as Java's
    /// `Double.valueOf` reads it. Never NaN.
    Double(f64),
}

/// The number `text` holds, as NiFi's expression language `toNumber()` reads an attribute
/// before `gt`/`ge`/`lt`/`le`: the text trimmed as Java's `String.trim` does (every character
/// up to U+0020), then an optional sign and base-10 digits, with a fraction (`.` and digits), an
/// exponent (`e`/`E`, an optional sign, digits) or both; the integer part may be left out
/// before a fraction (`.5`). Digits are ASCII only (Java's `\d`). NiFi's hexadecimal forms,
/// `NaN` and `Infinity` are not read: a JSON document writes numbers in base 10.
fn text_number(text: &str) -> Option<TextNumber> {
    let t = text.trim_matches(|c: char| c <= ' ');
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let whole = digits(unsigned);
    let rest = unsigned.get(whole..)?;
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let n = digits(after);
            if n == 0 {
                return None;
            }
            (n, after.get(n..)?)
        }
        None => (0, rest),
    };
    let exponent = match rest.strip_prefix(['e', 'E']) {
        Some(after) => {
            let after = after.strip_prefix(['+', '-']).unwrap_or(after);
            let n = digits(after);
            if n == 0 || n != after.len() {
                return None;
            }
            true
        }
        None if rest.is_empty() => false,
        None => return None,
    };
    if whole == 0 && fraction == 0 {
        return None;
    }
    if fraction == 0
        && !exponent
        && let Ok(i) = t.parse::<i128>()
    {
        return Some(TextNumber::Integer(i));
    }
    // Checked above to be a decimal number, which Rust's parser reads (to infinity when past
    // a double's range); it never yields NaN.
    t.parse::<f64>().ok().map(TextNumber::Double)
}

/// How two JSON numbers compare by value: integers exactly (past 2^53 too), an integer and a
/// fraction exactly, two fractions as doubles.
fn compare_numbers(x: &Number, y: &Number) -> Option<Ordering> {
    match (integer(x), integer(y)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        (Some(i), None) => Some(compare_integer(i, y.as_f64()?)),
        (None, Some(i)) => Some(compare_integer(i, x.as_f64()?).reverse()),
        (None, None) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// JSON equality where numbers compare by value (`10 == 10.0`, and integers exactly, past 2^53
/// too), inside arrays and objects too.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y).is_some_and(Ordering::is_eq),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn num(f: f64) -> Number {
        Number::from_f64(f).unwrap()
    }

    fn cond(path: &str) -> Condition {
        Condition {
            path: path.into(),
            equals: None,
            exists: None,
            one_of: None,
            regex: None,
            gt: None,
            gte: None,
            lt: None,
            lte: None,
        }
    }

    #[test]
    fn each_operator_matches() {
        let doc = json!({"status": "Shipped", "total": 120.5, "n": 10, "c": {"country": "France"}});
        let check = |c: Condition| Predicate::parse(&c).unwrap().matches(&doc);
        assert!(check(Condition {
            equals: Some(json!("Shipped")),
            ..cond("status")
        }));
        assert!(check(Condition {
            equals: Some(json!(10.0)),
            ..cond("n")
        }));
        // Numbers compare by value inside objects and arrays too; other values as they are.
        let nested = json!({"o": {"a": 10, "b": [1, 2.5]}});
        let nested_check = |expected| {
            Predicate::parse(&Condition {
                equals: Some(expected),
                ..cond("o")
            })
            .unwrap()
            .matches(&nested)
        };
        assert!(nested_check(json!({"b": [1.0, 2.5], "a": 10.0})));
        assert!(!nested_check(json!({"a": 10, "b": [1, 2.5, 3]})));
        assert!(!nested_check(json!({"a": 10, "b": [1, 2.5], "c": null})));
        assert!(!nested_check(json!({"a": "10", "b": [1, 2.5]})));
        assert!(!check(Condition {
            equals: Some(json!("x")),
            ..cond("status")
        }));
        assert!(check(Condition {
            exists: Some(true),
            ..cond("c.country")
        }));
        assert!(check(Condition {
            exists: Some(false),
            ..cond("c.city")
        }));
        assert!(check(Condition {
            one_of: Some(vec![json!("USA"), json!("France")]),
            ..cond("c.country")
        }));
        assert!(check(Condition {
            regex: Some("^Sh".into()),
            ..cond("status")
        }));
        assert!(!check(Condition {
            regex: Some("^Sh".into()),
            ..cond("total")
        }));
        assert!(check(Condition {
            gt: Some(num(100.0)),
            lte: Some(num(120.5)),
            ..cond("total")
        }));
        assert!(!check(Condition {
            lt: Some(num(100.0)),
            ..cond("total")
        }));
        assert!(!check(Condition {
            gte: Some(num(0.0)),
            ..cond("status")
        }));
        assert!(!check(Condition {
            gte: Some(num(0.0)),
            ..cond("missing")
        }));
    }

    #[test]
    fn integers_past_2_pow_53_compare_exactly() {
        // 2^53 + 1 has no f64 of its own: read as a double it is 2^53.
        let doc = json!({"id": 9_007_199_254_740_993_i64, "big": u64::MAX, "neg": i64::MIN});
        let check = |c: Condition| Predicate::parse(&c).unwrap().matches(&doc);
        let two_53 = 9_007_199_254_740_992.0;
        assert!(check(Condition {
            gt: Some(num(two_53)),
            ..cond("id")
        }));
        assert!(!check(Condition {
            lte: Some(num(two_53)),
            ..cond("id")
        }));
        assert!(check(Condition {
            gte: Some(num(two_53)),
            lt: Some(num(two_53 + 2.0)),
            ..cond("id")
        }));
        assert!(!check(Condition {
            equals: Some(json!(two_53)),
            ..cond("id")
        }));
        assert!(check(Condition {
            equals: Some(json!(9_007_199_254_740_993_i64)),
            ..cond("id")
        }));
        assert!(!check(Condition {
            equals: Some(json!(u64::MAX - 1)),
            ..cond("big")
        }));
        assert!(check(Condition {
            one_of: Some(vec![json!(u64::MAX - 1), json!(u64::MAX)]),
            ..cond("big")
        }));
        assert!(check(Condition {
            lt: Some(num(1.8446744073709552e19)),
            ..cond("big")
        }));
        assert!(check(Condition {
            gt: Some(num(-9.3e18)),
            lt: Some(num(-9.2e18)),
            ..cond("neg")
        }));
        // Integers and fractions still compare by value.
        assert!(check(Condition {
            gt: Some(num(9_007_199_254_740_992.5 - 0.5)),
            ..cond("id")
        }));
        assert!(!check(Condition {
            equals: Some(json!(-9.223_372_036_854_776e18)),
            ..cond("big")
        }));
    }

    #[test]
    fn integer_bounds_past_2_pow_53_compare_exactly() {
        // Written in TOML, 2^53 + 1 is an integer bound, not the double 2^53.
        let parse =
            |text: &str| Predicate::parse(&toml::from_str::<Condition>(text).unwrap()).unwrap();
        let at = |n: u64| json!({ "id": n });
        let lt = parse("path = \"id\"\nlt = 9007199254740993");
        assert!(lt.matches(&at(9_007_199_254_740_992)));
        assert!(!lt.matches(&at(9_007_199_254_740_993)));
        let gt = parse("path = \"id\"\ngt = 9007199254740993");
        assert!(!gt.matches(&at(9_007_199_254_740_993)));
        assert!(gt.matches(&at(9_007_199_254_740_994)));
        let gte = parse("path = \"id\"\ngte = 9007199254740993\nlte = 9007199254740993");
        assert!(gte.matches(&at(9_007_199_254_740_993)));
        assert!(!gte.matches(&at(9_007_199_254_740_992)));
        // A fractional bound against integers and fractions.
        let half = parse("path = \"id\"\ngt = 2.5");
        assert!(half.matches(&at(3)));
        assert!(!half.matches(&json!({"id": 2.5})));
    }

    #[test]
    fn numeric_comparisons_read_a_string_holding_a_decimal_number_by_its_value() {
        // NiFi's RouteOnAttribute compares attributes, which are text, with `gt`/`lt` after
        // `toNumber()`: trimmed, base-10 integers and decimals read as numbers.
        let parse =
            |text: &str| Predicate::parse(&toml::from_str::<Condition>(text).unwrap()).unwrap();
        let gt = parse("path = \"n\"\ngt = 10");
        let at = |s: &str| json!({ "n": s });
        for holds in ["42", " 42 ", "+11", "10.5", "1e2", ".5e2", "2E+1", "\t11\n"] {
            assert!(gt.matches(&at(holds)), "{holds:?}");
        }
        for fails in [
            "10", "9.99", "-42", "abc", "", "42abc", "1_000", "0x1F", "Infinity", "NaN", "5.", "١٢",
        ] {
            assert!(!gt.matches(&at(fails)), "{fails:?}");
        }
        // Past a double's range, as Java's `Double.valueOf` reads it (infinite).
        assert!(gt.matches(&at("1e400")));
        assert!(parse("path = \"n\"\nlt = 0").matches(&at("-1e400")));
        // Integer text compares exactly, past 2^53 and past 64 bits too.
        let big = parse("path = \"n\"\ngt = 9007199254740992");
        assert!(big.matches(&at("9007199254740993")));
        assert!(!big.matches(&at("9007199254740992")));
        assert!(
            parse("path = \"n\"\ngt = 18446744073709551615").matches(&at("18446744073709551616"))
        );
        // Only the numeric operators read text as a number: `equals` keeps JSON's types.
        assert!(!parse("path = \"n\"\nequals = 42").matches(&at("42")));
    }

    #[test]
    fn bad_conditions_name_the_operator() {
        assert_eq!(Predicate::parse(&cond("a")).unwrap_err().0, "path");
        let bad = Condition {
            regex: Some("(".into()),
            ..cond("a")
        };
        assert_eq!(Predicate::parse(&bad).unwrap_err().0, "regex");
        let empty = Condition {
            one_of: Some(vec![]),
            ..cond("a")
        };
        assert_eq!(Predicate::parse(&empty).unwrap_err().0, "in");
        // A bound that is not a JSON number does not get past the configuration's parsing.
        assert!(toml::from_str::<Condition>("path = \"a\"\ngt = nan").is_err());
        assert!(toml::from_str::<Condition>("path = \"a\"\nlt = inf").is_err());
    }

    #[test]
    fn limits_at_max_and_max_plus_one() {
        let at = Condition {
            one_of: Some(vec![json!(1); IN_VALUES_MAX]),
            ..cond("a")
        };
        assert!(Predicate::parse(&at).is_ok());
        let over = Condition {
            one_of: Some(vec![json!(1); IN_VALUES_MAX + 1]),
            ..cond("a")
        };
        assert!(Predicate::parse(&over).is_err());
        let at = Condition {
            regex: Some("a".repeat(REGEX_BYTES_MAX)),
            ..cond("a")
        };
        assert!(Predicate::parse(&at).is_ok());
        let over = Condition {
            regex: Some("a".repeat(REGEX_BYTES_MAX + 1)),
            ..cond("a")
        };
        assert!(Predicate::parse(&over).is_err());
    }
}
