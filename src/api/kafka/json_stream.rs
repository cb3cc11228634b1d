//! Framing of a body of concatenated JSON values (the v3 streaming produce): an incremental
//! syntax scanner that keeps its state across body chunks, so each byte is examined once however
//! the body is cut, and hands each complete top-level value to serde_json once.
//!
//! The scanner follows JSON's grammar byte by byte (brackets, strings and their escapes,
//! numbers, literals), so malformed input is reported at the byte that makes it so, without
//! waiting for the value to end. What it leaves to serde_json — UTF-8, surrogate pairs in `\u`
//! escapes, numbers beyond `f64` — is reported when the complete value is parsed. Nothing here
//! knows about records or HTTP.

use serde_json::Value;

/// Why a stream of JSON values cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Not JSON: `reason`, found at body byte `at` (from 0).
    Malformed {
        /// Offset in the body of the offending byte (the value's end for serde_json's errors).
        at: u64,
        /// What is wrong.
        reason: String,
    },
    /// A top-level value of more than `max` bytes (`len` is where the scan stopped).
    TooLarge {
        /// Bytes of the value seen so far.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Brackets nested more than `max` deep, at body byte `at`.
    TooDeep {
        /// Offset in the body of the bracket one level too deep.
        at: u64,
        /// The limit.
        max: usize,
    },
}

/// Where the scanner is in JSON's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between top-level values.
    Between,
    /// A value must start (after `:`, or `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After `,` in an object: a key.
    Key,
    /// After a key: `:`.
    Colon,
    /// After a value inside a container: `,` or the container's closing bracket.
    Next,
    /// Inside a string; `key` when it is an object's key.
    Str { key: bool },
    /// After a backslash inside a string.
    Escape { key: bool },
    /// Inside a `\u` escape, `left` hex digits to go.
    Unicode { key: bool, left: u8 },
    /// After a number's `-`.
    Minus,
    /// A number's integer part is `0` (no digit may follow).
    Zero,
    /// In a number's integer part.
    Int,
    /// After a number's `.`.
    Dot,
    /// In a number's fraction.
    Frac,
    /// After a number's `e`.
    Exp,
    /// After the exponent's sign.
    ExpSign,
    /// In the exponent's digits.
    ExpInt,
    /// The bytes still due of `true`, `false` or `null`.
    Literal { rest: &'static [u8] },
    /// A top-level literal is complete; the next byte says whether it ends well.
    LiteralEnd,
}

/// What one byte did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing ended (the byte is whitespace between values or part of one going on).
    More,
    /// The byte ends a top-level value.
    End,
    /// A top-level number or literal ended just before the byte, which must be scanned again.
    EndBefore,
    /// Not JSON.
    Bad(&'static str),
    /// A bracket beyond the depth limit.
    TooDeep,
}

/// JSON's whitespace (RFC 8259: space, tab, line feed, carriage return; not form feed).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The incremental scanner: the grammar state plus a stack of open containers.
#[derive(Debug)]
struct Scanner {
    /// Where the next byte falls in the grammar.
    state: State,
    /// Open containers, innermost at bit `depth - 1`: 1 for an object, 0 for an array.
    stack: u128,
    /// Open containers.
    depth: usize,
    /// Most containers open at once.
    depth_max: usize,
}

impl Scanner {
    fn new(depth_max: usize) -> Self {
        Self {
            state: State::Between,
            stack: 0,
            depth: 0,
            // The stack has one bit per level.
            depth_max: depth_max.min(u128::BITS as usize),
        }
    }

    /// Whether a top-level value has started and not ended.
    fn in_value(&self) -> bool {
        self.state != State::Between
    }

    /// Scans one byte.
    fn step(&mut self, b: u8) -> Step {
        use State as S;
        match self.state {
            // Whitespace between tokens.
            S::Between
            | S::Value
            | S::ArrayFirst
            | S::ObjectFirst
            | S::Key
            | S::Colon
            | S::Next
                if is_space(b) =>
            {
                Step::More
            }
            S::Between | S::Value => self.start_value(b),
            S::ArrayFirst if b == b']' => self.close(),
            S::ArrayFirst => self.start_value(b),
            S::ObjectFirst if b == b'}' => self.close(),
            S::ObjectFirst | S::Key if b == b'"' => {
                self.state = S::Str { key: true };
                Step::More
            }
            S::ObjectFirst | S::Key => Step::Bad("expected a key string"),
            S::Colon if b == b':' => {
                self.state = S::Value;
                Step::More
            }
            S::Colon => Step::Bad("expected `:`"),
            S::Next => match (b, self.top_is_object()) {
                (b',', true) => {
                    self.state = S::Key;
                    Step::More
                }
                (b',', false) => {
                    self.state = S::Value;
                    Step::More
                }
                (b'}', true) | (b']', false) => self.close(),
                _ => Step::Bad("expected `,` or the closing bracket"),
            },
            S::Str { key } => match b {
                b'"' if key => {
                    self.state = S::Colon;
                    Step::More
                }
                b'"' => self.value_done(),
                b'\\' => {
                    self.state = S::Escape { key };
                    Step::More
                }
                0..=0x1f => Step::Bad("control character in a string"),
                _ => Step::More,
            },
            S::Escape { key } => {
                self.state = match b {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => S::Str { key },
                    b'u' => S::Unicode { key, left: 4 },
                    _ => return Step::Bad("invalid escape in a string"),
                };
                Step::More
            }
            S::Unicode { key, left } => {
                if !b.is_ascii_hexdigit() {
                    return Step::Bad("invalid \\u escape in a string");
                }
                self.state = match left {
                    0 | 1 => S::Str { key },
                    _ => S::Unicode {
                        key,
                        left: left - 1,
                    },
                };
                Step::More
            }
            S::Minus => self.number(b, None, Some(S::Zero), Some(S::Int), None),
            S::Zero => match b {
                b'0'..=b'9' => Step::Bad("a number with a leading zero"),
                _ => self.number(b, Some(S::Dot), None, None, Some(S::Exp)),
            },
            S::Int => self.number(b, Some(S::Dot), Some(S::Int), Some(S::Int), Some(S::Exp)),
            S::Dot => self.number(b, None, Some(S::Frac), Some(S::Frac), None),
            S::Frac => self.number(b, None, Some(S::Frac), Some(S::Frac), Some(S::Exp)),
            S::Exp if matches!(b, b'+' | b'-') => {
                self.state = S::ExpSign;
                Step::More
            }
            S::Exp | S::ExpSign => self.number(b, None, Some(S::ExpInt), Some(S::ExpInt), None),
            S::ExpInt => self.number(b, None, Some(S::ExpInt), Some(S::ExpInt), None),
            S::Literal { rest } => match rest.split_first() {
                Some((&want, tail)) if want == b => {
                    if !tail.is_empty() {
                        self.state = S::Literal { rest: tail };
                    } else if self.depth == 0 {
                        self.state = S::LiteralEnd;
                    } else {
                        self.state = S::Next;
                    }
                    Step::More
                }
                _ => Step::Bad("invalid literal (true, false or null)"),
            },
            S::LiteralEnd => self.scalar_end(b),
        }
    }

    /// One byte of a number: `dot`, `zero`, `digit` and `exp` are the states that `.`, `0`,
    /// `1`–`9` and `e`/`E` lead to (`None`: not allowed here). Any other byte ends the number
    /// where that is allowed (after a digit), else it is an error.
    fn number(
        &mut self,
        b: u8,
        dot: Option<State>,
        zero: Option<State>,
        digit: Option<State>,
        exp: Option<State>,
    ) -> Step {
        let next = match b {
            b'.' => dot,
            b'0' => zero,
            b'1'..=b'9' => digit,
            b'e' | b'E' => exp,
            _ if matches!(
                self.state,
                State::Zero | State::Int | State::Frac | State::ExpInt
            ) =>
            {
                return self.scalar_end(b);
            }
            _ => None,
        };
        match next {
            Some(s) => {
                self.state = s;
                Step::More
            }
            None => Step::Bad("invalid number"),
        }
    }

    /// A number, or a top-level literal, ended just before `b`. At the top level only
    /// whitespace or a bracket, quote, comma or colon may follow it, as serde_json's stream
    /// reader requires (the last four then fail as the start of the next value).
    fn scalar_end(&mut self, b: u8) -> Step {
        if self.depth > 0 {
            // Inside a container the byte is scanned again as what follows a value; `Next`
            // never leads back here.
            self.state = State::Next;
            return self.step(b);
        }
        if is_space(b) || matches!(b, b'{' | b'[' | b'"' | b']' | b'}' | b',' | b':') {
            self.state = State::Between;
            Step::EndBefore
        } else {
            Step::Bad("trailing characters after a number or literal")
        }
    }

    /// The first byte of a value.
    fn start_value(&mut self, b: u8) -> Step {
        self.state = match b {
            b'{' | b'[' => return self.open(b == b'{'),
            b'"' => State::Str { key: false },
            b'-' => State::Minus,
            b'0' => State::Zero,
            b'1'..=b'9' => State::Int,
            b't' => State::Literal { rest: b"rue" },
            b'f' => State::Literal { rest: b"alse" },
            b'n' => State::Literal { rest: b"ull" },
            _ => return Step::Bad("expected a value"),
        };
        Step::More
    }

    /// An opening bracket.
    fn open(&mut self, object: bool) -> Step {
        if self.depth >= self.depth_max {
            return Step::TooDeep;
        }
        let bit = 1u128 << self.depth;
        if object {
            self.stack |= bit;
            self.state = State::ObjectFirst;
        } else {
            self.stack &= !bit;
            self.state = State::ArrayFirst;
        }
        self.depth += 1;
        Step::More
    }

    /// A closing bracket that matches the innermost container.
    fn close(&mut self) -> Step {
        self.depth = self.depth.saturating_sub(1);
        self.value_done()
    }

    /// Whether the innermost open container is an object.
    fn top_is_object(&self) -> bool {
        self.depth
            .checked_sub(1)
            .is_some_and(|top| (self.stack >> top) & 1 == 1)
    }

    /// A value ended with the current byte.
    fn value_done(&mut self) -> Step {
        if self.depth == 0 {
            self.state = State::Between;
            Step::End
        } else {
            self.state = State::Next;
            Step::More
        }
    }

    /// The body ended: ends a top-level number, or reports a value left open.
    fn finish(&mut self) -> Step {
        match self.state {
            State::Between => Step::More,
            State::Zero | State::Int | State::Frac | State::ExpInt | State::LiteralEnd
                if self.depth == 0 =>
            {
                self.state = State::Between;
                Step::End
            }
            _ => Step::Bad("the body ends inside a value"),
        }
    }
}

/// Splits a body that arrives in chunks into its top-level JSON values.
#[derive(Debug)]
pub(crate) struct Framer {
    /// The grammar state, carried from chunk to chunk.
    scanner: Scanner,
    /// The bytes of the value in progress that came in earlier chunks.
    partial: Vec<u8>,
    /// Bytes of the value in progress so far.
    value_len: usize,
    /// Most bytes one top-level value may have.
    value_bytes_max: usize,
    /// Body bytes in the chunks scanned before the current one.
    offset: u64,
    /// Scanner steps taken (a byte ending a top-level number or literal is scanned twice).
    #[cfg(test)]
    examined: u64,
    /// Bytes handed to serde_json.
    #[cfg(test)]
    parsed: u64,
}

impl Framer {
    /// A framer for values of at most `value_bytes_max` bytes nested at most `depth_max` deep
    /// (at most 128, the bits of the scanner's stack).
    pub(crate) fn new(value_bytes_max: usize, depth_max: usize) -> Self {
        Self {
            scanner: Scanner::new(depth_max),
            partial: Vec::new(),
            value_len: 0,
            value_bytes_max,
            offset: 0,
            #[cfg(test)]
            examined: 0,
            #[cfg(test)]
            parsed: 0,
        }
    }

    /// Scans the next chunk of the body, passing each value it completes to `emit`, in order.
    ///
    /// # Errors
    ///
    /// The first malformed, oversized or too deeply nested value; the values before it have been
    /// emitted, and the framer must not be used again.
    pub(crate) fn push(
        &mut self,
        chunk: &[u8],
        mut emit: impl FnMut(Value),
    ) -> Result<(), FrameError> {
        // Where the value in progress starts in this chunk (0 when it began in an earlier one).
        let mut start = 0;
        let mut i = 0;
        while let Some(&b) = chunk.get(i) {
            let was_in_value = self.scanner.in_value();
            #[cfg(test)]
            {
                self.examined += 1;
            }
            match self.scanner.step(b) {
                Step::More => {
                    if self.scanner.in_value() {
                        if !was_in_value {
                            start = i;
                        }
                        self.count_byte()?;
                    }
                    i += 1;
                }
                Step::End => {
                    self.count_byte()?;
                    i += 1;
                    self.complete(chunk.get(start..i).unwrap_or_default(), &mut emit)?;
                }
                Step::EndBefore => {
                    // `i` is not advanced: the byte is scanned again between values.
                    self.complete(chunk.get(start..i).unwrap_or_default(), &mut emit)?;
                }
                Step::Bad(reason) => {
                    return Err(FrameError::Malformed {
                        at: self.offset + i as u64,
                        reason: reason.to_owned(),
                    });
                }
                Step::TooDeep => {
                    return Err(FrameError::TooDeep {
                        at: self.offset + i as u64,
                        max: self.scanner.depth_max,
                    });
                }
            }
        }
        if self.scanner.in_value() {
            self.partial
                .extend_from_slice(chunk.get(start..).unwrap_or_default());
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }

    /// The body ended: emits a top-level number still open.
    ///
    /// # Errors
    ///
    /// [`FrameError::Malformed`] when the body ends inside a value.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(Value)) -> Result<(), FrameError> {
        match self.scanner.finish() {
            Step::End => self.complete(&[], &mut emit),
            Step::Bad(reason) => Err(FrameError::Malformed {
                at: self.offset,
                reason: reason.to_owned(),
            }),
            Step::More | Step::EndBefore | Step::TooDeep => Ok(()),
        }
    }

    /// Counts one more byte of the value in progress against the limit.
    fn count_byte(&mut self) -> Result<(), FrameError> {
        self.value_len += 1;
        if self.value_len > self.value_bytes_max {
            return Err(FrameError::TooLarge {
                len: self.value_len,
                max: self.value_bytes_max,
            });
        }
        Ok(())
    }

    /// A value ended: `tail` is its part in the current chunk, after `partial`.
    fn complete(&mut self, tail: &[u8], emit: &mut impl FnMut(Value)) -> Result<(), FrameError> {
        self.value_len = 0;
        let parsed = if self.partial.is_empty() {
            self.parse(tail)
        } else {
            let mut whole = std::mem::take(&mut self.partial);
            whole.extend_from_slice(tail);
            self.parse(&whole)
        };
        emit(parsed?);
        Ok(())
    }

    /// Parses one complete value the scanner accepted.
    fn parse(&mut self, bytes: &[u8]) -> Result<Value, FrameError> {
        #[cfg(test)]
        {
            self.parsed += bytes.len() as u64;
        }
        serde_json::from_slice(bytes).map_err(|e| FrameError::Malformed {
            at: self.offset,
            reason: e.to_string(),
        })
    }
}

/// What serde_json's own stream reader makes of `body`: the values before its first error, and
/// whether there was one.
fn serde_stream_values(body: &[u8]) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        match v {
            Ok(v) => out.push(v),
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

/// The body of the `json_stream` fuzz target, also replayed over the committed corpus by
/// `cargo test`: the first byte picks a chunk size (1 to 16), the rest is a streaming produce
/// body fed to a [`Framer`] in chunks of that size. The framer must find the values serde_json's
/// own stream reader finds in the whole body, and fail exactly when that reader does.
///
/// # Panics
/// Only when one of those properties is broken, which is the point of a fuzz target.
pub fn fuzz_json_stream(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 16) + 1;
    let mut framer = Framer::new(usize::MAX, super::STREAM_OBJECT_DEPTH_MAX);
    let mut got = Vec::new();
    let mut failed = false;
    for c in body.chunks(chunk) {
        if framer.push(c, |v| got.push(v)).is_err() {
            failed = true;
            break;
        }
    }
    if !failed {
        failed = framer.finish(|v| got.push(v)).is_err();
    }
    let (want, serde_failed) = serde_stream_values(body);
    assert_eq!(got, want, "the framer's values differ from serde_json's");
    assert_eq!(
        failed, serde_failed,
        "the framer and serde_json disagree on failing"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;
    const DEPTH: usize = 127;

    /// Feeds `body` in chunks of `chunk` bytes, then ends it: the values, and the error that
    /// stopped the stream.
    fn frame(body: &[u8], chunk: usize) -> (Vec<Value>, Option<FrameError>, Framer) {
        let mut f = Framer::new(MAX, DEPTH);
        let mut out = Vec::new();
        for c in body.chunks(chunk.max(1)) {
            if let Err(e) = f.push(c, |v| out.push(v)) {
                return (out, Some(e), f);
            }
        }
        let err = f.finish(|v| out.push(v)).err();
        (out, err, f)
    }

    fn serde_values(body: &[u8]) -> (Vec<Value>, bool) {
        serde_stream_values(body)
    }

    #[test]
    fn a_large_object_fed_byte_by_byte_is_examined_once() {
        let data = "x".repeat(MAX - 64);
        let body = format!(r#"{{"value":{{"type":"STRING","data":"{data}"}}}}"#);
        let n = body.len() as u64;
        let (values, err, f) = frame(body.as_bytes(), 1);
        assert_eq!(err, None);
        assert_eq!(values.len(), 1);
        assert_eq!(
            values[0]["value"]["data"].as_str().map(str::len),
            Some(data.len())
        );
        // Each byte is scanned once and parsed once: linear in the body, whatever the chunks.
        assert_eq!((f.examined, f.parsed), (n, n));
        let (_, _, f) = frame(body.as_bytes(), 100);
        assert_eq!((f.examined, f.parsed), (n, n));
    }

    #[test]
    fn many_values_in_small_chunks_are_examined_once() {
        let one = r#"{"value":{"data":[1,-2.5e3,true,null,"a\"b\u00e9"]}} 7 "s" [0]"#;
        let body = one.repeat(1000);
        let (values, err, f) = frame(body.as_bytes(), 7);
        assert_eq!(err, None);
        assert_eq!(values.len(), 4000);
        assert_eq!(values, serde_values(body.as_bytes()).0);
        // A number's terminator is scanned twice: once ending it, once after it.
        let numbers = 1000;
        assert_eq!(f.examined, body.len() as u64 + numbers);
        assert!(f.parsed <= body.len() as u64);
    }

    #[test]
    fn malformed_input_is_reported_at_its_byte_before_the_value_ends() {
        for (body, at) in [
            (&b"{ not json"[..], 2),
            (b"x", 0),
            (b"  {\"a\" 1", 7),
            (b"{\"a\":01", 6),
            (b"[1,]", 3),
            (b"{\"a\":1,}", 7),
            (b"[1}", 2),
            (b"\"a\x01", 2),
            (b"\"\\x", 2),
            (b"\"\\u12g", 5),
            (b"[tru ", 4),
            (b"1x", 1),
            (b"true1", 4),
            (b"{} ]", 3),
            (b"[1.]", 3),
            (b"[1e]", 3),
            (b"[-]", 2),
            (b"\x0c{}", 0),
        ] {
            let mut f = Framer::new(MAX, DEPTH);
            let mut out = Vec::new();
            let mut err = None;
            // Byte by byte, the body left open: the error must not wait for more input.
            for c in body.chunks(1) {
                if let Err(e) = f.push(c, |v| out.push(v)) {
                    err = Some(e);
                    break;
                }
            }
            match err {
                Some(FrameError::Malformed { at: got, .. }) => {
                    assert_eq!(got, at, "{:?}", String::from_utf8_lossy(body));
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
            assert!(serde_values(body).1, "serde_json agrees");
        }
    }

    #[test]
    fn a_body_ending_inside_a_value_is_malformed_and_a_final_number_is_a_value() {
        for body in [
            &b"{\"a\":1"[..],
            b"[",
            b"\"abc",
            b"tru",
            b"-",
            b"1.",
            b"1e+",
        ] {
            let (_, err, _) = frame(body, 1);
            assert!(
                matches!(err, Some(FrameError::Malformed { .. })),
                "{body:?}: {err:?}"
            );
        }
        let (values, err, _) = frame(b"{} 12.5e2 null", 1);
        let want = vec![json(b"{}"), json(b"1250.0"), Value::Null];
        assert_eq!((values, err), (want, None));
    }

    fn json(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn a_value_of_the_byte_limit_is_accepted_and_one_more_is_not() {
        let head = r#"{"v":""#;
        let at_max = format!("{head}{}\"}}", "a".repeat(MAX - head.len() - 2));
        assert_eq!(at_max.len(), MAX);
        let (values, err, _) = frame(format!("{at_max}{at_max}").as_bytes(), 4096);
        assert_eq!((values.len(), err), (2, None));
        let over = format!("{head}{}\"}}", "a".repeat(MAX - head.len() - 1));
        // Refused as soon as the value passes the limit, though it has not ended.
        let mut f = Framer::new(MAX, DEPTH);
        let mut out = Vec::new();
        let err = f.push(over.as_bytes().get(..=MAX).unwrap(), |v| out.push(v));
        assert_eq!(
            err,
            Err(FrameError::TooLarge {
                len: MAX + 1,
                max: MAX
            })
        );
        // Whitespace between values does not count.
        let (values, err, _) = frame(format!("   {at_max}\r\n  {at_max}  ").as_bytes(), 3);
        assert_eq!((values.len(), err), (2, None));
    }

    #[test]
    fn nesting_to_the_depth_limit_is_accepted_and_one_more_level_is_not() {
        let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        let (values, err, _) = frame(nested(DEPTH).as_bytes(), 1);
        assert_eq!((values.len(), err), (1, None));
        let (_, err, _) = frame(nested(DEPTH + 1).as_bytes(), 1);
        assert_eq!(
            err,
            Some(FrameError::TooDeep {
                at: DEPTH as u64,
                max: DEPTH
            })
        );
        // The limit is serde_json's own, so a value the scanner passes always parses.
        assert!(serde_json::from_str::<Value>(&nested(DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(DEPTH + 1)).is_err());
    }

    #[test]
    fn what_serde_json_rejects_after_the_scan_is_malformed() {
        for body in [&b"\"\xff\""[..], b"\"\\ud800\"", b"1e999", b"[1e999]"] {
            let (values, err, _) = frame(body, 1);
            assert!(values.is_empty());
            assert!(matches!(err, Some(FrameError::Malformed { .. })), "{err:?}");
        }
    }

    /// Any JSON value (strings with escapes and non-ASCII, numbers in every form).
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC*".prop_map(Value::String),
            Just(Value::String("\"\\/\u{8}\u{c}\n\r\t\u{1}é😀".into())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("\\PC{0,8}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn values_written_apart_come_back_whole_however_the_body_is_cut(
            values in prop::collection::vec(any_json(), 0..6),
            pretty in any::<bool>(),
            chunk in 1usize..40,
        ) {
            let mut body = Vec::new();
            for v in &values {
                if pretty {
                    body.extend(serde_json::to_vec_pretty(v).unwrap());
                } else {
                    body.extend(serde_json::to_vec(v).unwrap());
                }
                body.extend_from_slice(b" \n");
            }
            let (got, err, f) = frame(&body, chunk);
            prop_assert_eq!(err, None);
            // serde_json's floats need not round-trip exactly: compare with its own reading.
            prop_assert_eq!(got.len(), values.len());
            prop_assert_eq!(&got, &serde_values(&body).0);
            prop_assert!(f.examined <= body.len() as u64 + values.len() as u64);
        }

        #[test]
        fn any_bytes_split_as_serde_json_splits_them(
            body in prop::collection::vec(
                prop::sample::select(&b"{}[]:,\"\\ \n0123456789-+.eEtrufalsnx\x01\xc3\xa9"[..]),
                0..48,
            ),
            chunk in 1usize..8,
        ) {
            let (got, err, _) = frame(&body, chunk);
            let (want, serde_failed) = serde_values(&body);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(err.is_some(), serde_failed);
        }
    }
}
