//! Command implementations, one file per value type (strings, HyperLogLogs, hashes, lists, sets, sorted sets, streams) plus keys and server commands, and the
//! argument helpers they share. Each handler is `fn(&mut Ctx, &Inner, &[&[u8]]) -> Frame` with
//! `args[0]` the command name; arity has been checked by the dispatcher. Arguments borrow the
//! request bytes: a handler that keeps one (a list element, a hash field) copies it.

pub(crate) mod bits;
pub(crate) mod geo;
pub(crate) mod hash;
pub(crate) mod hll;
pub(crate) mod keys;
pub(crate) mod list;
pub(crate) mod server;
pub(crate) mod set;
pub(crate) mod sort;
pub(crate) mod stream;
pub(crate) mod strings;
pub(crate) mod zset;

use bytes::Bytes;

use crate::cache::EventKind;
use crate::cache::keyspace::Ctx;
use crate::cache::longdouble::{LongDouble, Parsed};
use crate::cache::resp::frame::{Frame, parse_i64};

/// Redis's WRONGTYPE reply text.
pub(crate) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
/// Redis's reply to a non-integer argument.
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// Redis's reply to a non-float argument.
pub(crate) const NOT_FLOAT: &str = "ERR value is not a valid float";
/// Redis's reply when INCRBYFLOAT or HINCRBYFLOAT would store an infinity.
pub(crate) const NAN_OR_INFINITY: &str = "ERR increment would produce NaN or Infinity";
/// Redis's generic syntax error.
pub(crate) const SYNTAX: &str = "ERR syntax error";

/// Returns the `Err` frame from the enclosing handler.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return f,
        }
    };
}
pub(crate) use tri;

/// Argument `i`, or an empty slice when absent (arity was checked by the dispatcher).
pub(crate) fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

/// Argument `i` as an integer, or Redis's "not an integer" reply.
pub(crate) fn int_arg(args: &[&[u8]], i: usize) -> Result<i64, Frame> {
    parse_i64(arg(args, i)).ok_or_else(|| Frame::error(NOT_INTEGER))
}

/// A count argument as Redis's `getPositiveLongFromObjectOrReply` reads it: `msg` answers a
/// negative number and a text that is no number alike.
pub(crate) fn positive_or(text: &[u8], msg: &str) -> Result<usize, Frame> {
    match parse_i64(text) {
        Some(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(Frame::error(msg.to_owned())),
    }
}

/// [`positive_or`] with Redis's default message.
pub(crate) fn positive(text: &[u8]) -> Result<usize, Frame> {
    positive_or(text, "ERR value is out of range, must be positive")
}

/// Parses a float the way Redis's `strtold`-based checks do (no spaces, no NaN).
pub(crate) fn parse_f64(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let v = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        other => {
            if other.contains("nan") || other.starts_with("0x") || other.starts_with("-0x") {
                return None;
            }
            other.parse::<f64>().ok()?
        }
    };
    if v.is_nan() { None } else { Some(v) }
}

/// Text parsed as Redis parses INCRBYFLOAT's operands (`strtold` into a `long double`), or
/// Redis's "not a valid float" reply.
pub(crate) fn long_double(text: &[u8]) -> Result<Parsed, Frame> {
    LongDouble::parse(text).ok_or_else(|| Frame::error(NOT_FLOAT))
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub(crate) fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Lower-cased command name for error texts (allocates: for error paths only).
pub(crate) fn name(args: &[&[u8]]) -> String {
    String::from_utf8_lossy(arg(args, 0)).to_ascii_lowercase()
}

/// Resolves Redis's `start`/`stop` range (negative counts from the end) over `len` items into
/// an inclusive index pair, or `None` for an empty range.
pub(crate) fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let mut s = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    };
    let mut e = if stop < 0 {
        len.saturating_add(stop)
    } else {
        stop
    };
    if s < 0 {
        s = 0;
    }
    if e >= len {
        e = len - 1;
    }
    if s > e || s >= len || len == 0 {
        return None;
    }
    Some((usize::try_from(s).ok()?, usize::try_from(e).ok()?))
}

/// Glob matching as Redis's `stringmatchlen` (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), in
/// O(pattern × text) time: only the most recent `*` is ever backtracked to.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        if pattern.get(pi) == Some(&b'*') {
            while pattern.get(pi) == Some(&b'*') {
                pi += 1;
            }
            star = Some((pi, ti));
            continue;
        }
        if let Some(c) = text.get(ti)
            && let Some(next) = match_one(pattern, pi, *c, nocase)
        {
            pi = next;
            ti += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while pattern.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi >= pattern.len()
}

/// Matches one pattern token at `pi` against `c`; returns the index after the token.
fn match_one(p: &[u8], pi: usize, c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    match *p.get(pi)? {
        b'?' => Some(pi + 1),
        b'\\' if pi + 1 < p.len() => eq(*p.get(pi + 1)?, c).then_some(pi + 2),
        b'[' => {
            let mut i = pi + 1;
            let not = p.get(i) == Some(&b'^');
            if not {
                i += 1;
            }
            let mut matched = false;
            loop {
                match p.get(i) {
                    None => {
                        // Unterminated class: Redis treats the end of pattern as its close.
                        break;
                    }
                    Some(b']') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < p.len() => {
                        if p.get(i + 1).is_some_and(|&x| eq(x, c)) {
                            matched = true;
                        }
                        i += 2;
                    }
                    Some(&lo)
                        if p.get(i + 1) == Some(&b'-')
                            && p.get(i + 2).is_some_and(|&x| x != b']') =>
                    {
                        let hi = p.get(i + 2).copied().unwrap_or(lo);
                        let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                        let in_range = |x: u8| x >= lo && x <= hi;
                        if in_range(c)
                            || (nocase
                                && (in_range(c.to_ascii_lowercase())
                                    || in_range(c.to_ascii_uppercase())))
                        {
                            matched = true;
                        }
                        i += 3;
                    }
                    Some(&x) => {
                        if eq(x, c) {
                            matched = true;
                        }
                        i += 1;
                    }
                }
            }
            (matched != not).then_some(i)
        }
        x => eq(x, c).then_some(pi + 1),
    }
}

/// An integer reply from a count.
/// Settles a collection after a change and records it: Redis's notification `event` of
/// `class` (a `notify` bit), then `del` when the collection became empty and was removed.
pub(crate) fn changed(ctx: &mut Ctx<'_>, key: &[u8], class: u32, event: &'static str) {
    if ctx.settle(key) {
        ctx.touched(key, EventKind::Set);
        ctx.notify(class, event, key);
    } else {
        ctx.touched(key, EventKind::Del);
        ctx.notify(class, event, key);
        ctx.notify(crate::cache::notify::GENERIC, "del", key);
    }
}

/// A container command's HELP reply as Redis's `addReplyHelp` writes it: the `<COMMAND>
/// <subcommand> …` header, `lines`, then HELP's own entry.
pub(crate) fn help_reply(command: &str, lines: &[&'static str]) -> Frame {
    let header = format!("{command} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Frame::Simple(header.into()));
    out.extend(lines.iter().map(|l| Frame::simple(l)));
    out.push(Frame::simple("HELP"));
    out.push(Frame::simple("    Prints this help."));
    Frame::Array(out)
}

pub(crate) fn int(n: usize) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// [`int`] of a `u64` (times, offsets, counters).
pub(crate) fn int64(n: u64) -> Frame {
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A SCAN cursor as Redis 7.0's `parseScanCursorOrReply` reads it with C's `strtoul`: an
/// optional sign (a negative one wraps modulo 2^64), decimal digits, nothing after them (the
/// empty string is 0), no leading space, and no magnitude past `u64::MAX`.
pub(crate) fn parse_cursor(text: &[u8]) -> Option<u64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        // strtoul read nothing: its end is the text's start, valid only when that is its end.
        return text.is_empty().then_some(0);
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(if negative { n.wrapping_neg() } else { n })
}

/// Parses `COUNT n`-style SCAN options shared by SCAN, HSCAN and SSCAN: returns
/// (cursor, pattern, count, type filter).
pub(crate) fn scan_options(
    args: &[&[u8]],
    cursor_at: usize,
    allow_type: bool,
) -> Result<(u64, Option<Bytes>, usize, Option<Bytes>), Frame> {
    let cursor =
        parse_cursor(arg(args, cursor_at)).ok_or_else(|| Frame::error("ERR invalid cursor"))?;
    let mut pattern = None;
    let mut count = 10usize;
    let mut kind = None;
    let mut i = cursor_at + 1;
    while i < args.len() {
        let opt = arg(args, i);
        let val = args.get(i + 1).ok_or_else(|| Frame::error(SYNTAX))?;
        if is(opt, "match") {
            pattern = Some(Bytes::copy_from_slice(val));
        } else if is(opt, "count") {
            let n = parse_i64(val).ok_or_else(|| Frame::error(NOT_INTEGER))?;
            if n < 1 {
                return Err(Frame::error(SYNTAX));
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if allow_type && is(opt, "type") {
            kind = Some(Bytes::copy_from_slice(val));
        } else {
            return Err(Frame::error(SYNTAX));
        }
        i += 2;
    }
    Ok((cursor, pattern, count, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_as_strtoul() {
        for (text, want) in [
            (&b"0"[..], Some(0)),
            (b"", Some(0)),
            (b"+5", Some(5)),
            (b"-0", Some(0)),
            (b"-1", Some(u64::MAX)),
            (b"-18446744073709551615", Some(1)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"-18446744073709551616", None),
            (b"-", None),
            (b"+", None),
            (b" 1", None),
            (b"1 ", None),
            (b"0x1", None),
            (b"--1", None),
        ] {
            assert_eq!(parse_cursor(text), want, "{text:?}");
        }
    }

    #[test]
    fn glob_like_redis() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(!glob_match(b"foo*bar", b"foobaz", false));
        assert!(glob_match(b"*a*b", b"xxaxxb", false));
        let long = vec![b'a'; 40];
        assert!(!glob_match(
            b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
            &long,
            false
        ));
    }

    #[test]
    fn ranges() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(0, 0, 0), None);
    }
}
