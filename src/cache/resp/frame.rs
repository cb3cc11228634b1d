//! The RESP codec: [`Frame`] (RESP2 and RESP3 types), reply encoding for either protocol
//! version, the request decoder (multibulk and inline, with Redis's own protocol error texts) and
//! a general frame decoder used by clients, round-trip tests and the fuzz target.
//!
//! Everything here is pure: bytes in, frames or bytes out. "Need more bytes" is `Ok(None)`,
//! never an error. Nothing here allocates more than the input justifies: array capacities are
//! capped before the elements have arrived.
#![deny(clippy::indexing_slicing)]

use std::borrow::Cow;

use bytes::Bytes;

use crate::cache::error::ProtocolError;
use crate::cache::{RESP_UNAUTH_BULK_BYTES_MAX, RESP_UNAUTH_MULTIBULK_LEN_MAX};

/// Most elements reserved up front for an array whose elements have not arrived yet.
const PREALLOC_MAX: usize = 1024;

/// One RESP value. Requests are arrays of bulk strings; replies use every variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK` (a status reply; the fixed replies — OK, QUEUED, PONG — are borrowed, not allocated).
    Simple(Cow<'static, str>),
    /// `-ERR …` (the text includes its error code prefix).
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo` (binary safe).
    Bulk(Bytes),
    /// The null bulk (`$-1` in RESP2, `_` in RESP3).
    Null,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NullArray,
    /// `*n` followed by `n` frames.
    Array(Vec<Frame>),
    /// RESP3 `,1.5` (a bulk string in RESP2).
    Double(f64),
    /// RESP3 `#t` (an integer 1/0 in RESP2).
    Boolean(bool),
    /// RESP3 `%n` key/value pairs (a flat array in RESP2).
    Map(Vec<(Frame, Frame)>),
    /// RESP3 `~n` (an array in RESP2).
    Set(Vec<Frame>),
    /// RESP3 `>n` out-of-band push (an array in RESP2).
    Push(Vec<Frame>),
    /// RESP3 `=n\r\ntxt:…` verbatim string (a bulk string in RESP2).
    Verbatim(Bytes),
    /// RESP3 `(n` big number, kept as its decimal text (a bulk string in RESP2).
    BigNumber(String),
}

impl Frame {
    /// `+OK`.
    #[must_use]
    pub fn ok() -> Self {
        Self::Simple(Cow::Borrowed("OK"))
    }

    /// A status reply with fixed text, e.g. `QUEUED` (no allocation).
    #[must_use]
    pub fn simple(text: &'static str) -> Self {
        Self::Simple(Cow::Borrowed(text))
    }

    /// An error reply; `text` carries its code, e.g. `ERR syntax error`.
    #[must_use]
    pub fn error(text: impl Into<String>) -> Self {
        Self::Error(text.into())
    }

    /// A bulk string copied from `data`.
    #[must_use]
    pub fn bulk(data: &[u8]) -> Self {
        Self::Bulk(Bytes::copy_from_slice(data))
    }

    /// Whether this is an error reply.
    #[must_use]
    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }

    /// Encodes this frame for a client speaking protocol `proto` (2 or 3) onto `out`.
    pub fn encode(&self, proto: u8, out: &mut Vec<u8>) {
        let resp3 = proto >= 3;
        match self {
            Self::Simple(s) => status_line(out, b'+', s.as_bytes()),
            Self::Error(s) => status_line(out, b'-', s.as_bytes()),
            Self::Integer(n) => int_line(out, b':', *n),
            Self::Bulk(b) => bulk(out, b),
            Self::Null if resp3 => out.extend_from_slice(b"_\r\n"),
            Self::Null => out.extend_from_slice(b"$-1\r\n"),
            Self::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Self::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Self::Array(items) => seq(out, b'*', items, proto),
            Self::Set(items) => seq(out, if resp3 { b'~' } else { b'*' }, items, proto),
            Self::Push(items) => seq(out, if resp3 { b'>' } else { b'*' }, items, proto),
            Self::Double(d) => {
                let text = format_double(*d);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Self::Boolean(b) if resp3 => {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" })
            }
            Self::Boolean(b) => int_line(out, b':', i64::from(*b)),
            Self::Map(pairs) => {
                if resp3 {
                    len_line(out, b'%', pairs.len());
                } else {
                    len_line(out, b'*', pairs.len().saturating_mul(2));
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Self::Verbatim(b) if resp3 => {
                len_line(out, b'=', b.len().saturating_add(4));
                out.extend_from_slice(b"txt:");
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Self::Verbatim(b) => bulk(out, b),
            Self::BigNumber(s) if resp3 => line(out, b'(', s.as_bytes()),
            Self::BigNumber(s) => bulk(out, s.as_bytes()),
        }
    }
}

/// A double as Redis's `addReplyDouble` prints it: C's `%.17g` (17 significant digits, the
/// shorter of fixed and exponent form, trailing zeros dropped), so `0.1` is
/// `0.10000000000000001` and `1e300` is `1.0000000000000001e+300`; infinities as
/// `inf`/`-inf`.
#[must_use]
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    if d.is_nan() {
        return "nan".to_owned();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // The exponent of the value rounded to 17 significant digits decides the form.
    let sci = format!("{d:.16e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..17).contains(&exp) {
        let decimals = usize::try_from(16 - exp).unwrap_or(0);
        trim_fraction(format!("{d:.decimals$}"))
    } else {
        let mantissa = trim_fraction(mantissa.to_owned());
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Drops trailing zeros of a fraction, and the point when nothing is left after it.
fn trim_fraction(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

fn line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
    out.push(tag);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// A simple-string or error line: CR and LF in `text` become spaces, as Redis writes them, so
/// a reply that echoes a client's argument cannot end early and forge the replies after it.
fn status_line(out: &mut Vec<u8>, tag: u8, text: &[u8]) {
    out.push(tag);
    let start = out.len();
    out.extend_from_slice(text);
    if let Some(written) = out.get_mut(start..) {
        for b in written {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

fn int_line(out: &mut Vec<u8>, tag: u8, n: i64) {
    out.push(tag);
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal(n.unsigned_abs(), n < 0, &mut digits));
    out.extend_from_slice(b"\r\n");
}

/// An array header of `len` items (`*len`, the same in RESP2 and RESP3), for a reply whose
/// items are written one by one (EXEC's: each in the protocol of its moment).
pub(crate) fn encode_array_len(len: usize, out: &mut Vec<u8>) {
    len_line(out, b'*', len);
}

fn len_line(out: &mut Vec<u8>, tag: u8, n: usize) {
    out.push(tag);
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal(n as u64, false, &mut digits));
    out.extend_from_slice(b"\r\n");
}

/// The decimal text of the number with this magnitude and sign, written at the end of `buf`
/// without allocating (20 bytes hold any `u64`, and any `i64` with its sign).
pub(crate) fn decimal(mut magnitude: u64, negative: bool, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (magnitude % 10) as u8;
        }
        magnitude /= 10;
        if magnitude == 0 || i == 0 {
            break;
        }
    }
    if negative && i > 0 {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'-';
        }
    }
    buf.get(i..).unwrap_or_default()
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    len_line(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn seq(out: &mut Vec<u8>, tag: u8, items: &[Frame], proto: u8) {
    len_line(out, tag, items.len());
    for item in items {
        item.encode(proto, out);
    }
}

/// Limits the request decoder enforces, from the module's Limits block and CONFIG.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest bulk string, in bytes (`proto-max-bulk-len`).
    pub bulk_bytes_max: usize,
    /// Most elements in one multibulk request.
    pub multibulk_len_max: usize,
    /// Longest inline request or header line, in bytes.
    pub inline_bytes_max: usize,
}

/// Position of the `\r` that ends the first header line of `buf`, once its `\n` has arrived.
fn find_crlf(buf: &[u8]) -> Option<usize> {
    let cr = buf.iter().position(|&b| b == b'\r')?;
    if cr + 1 < buf.len() { Some(cr) } else { None }
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Parses a decimal `i64` the way Redis's `string2ll` does (no spaces, no `+`, no leading zeros
/// except `0` itself).
#[must_use]
pub(crate) fn parse_i64(text: &[u8]) -> Option<i64> {
    // Byte by byte, without a UTF-8 check: every header line of every request goes through here.
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if negative => return None,
        [b'0', _, ..] => return None,
        _ => {}
    }
    if digits.len() > 19 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        let d = i64::from(c.wrapping_sub(b'0'));
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// Decodes one client request: a multibulk array of bulk strings, or an inline command line.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((args, consumed)))` for a complete
/// request (an empty `args` is a blank line or `*0`/`*-1` to skip), and the protocol error whose
/// text Redis sends before closing the connection.
///
/// # Errors
/// A [`ProtocolError`] for malformed input or a limit exceeded.
pub fn decode_request(
    buf: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => decode_multibulk(buf, limits),
        Some(_) => decode_inline(buf, limits),
    }
}

fn header_line(
    buf: &[u8],
    limits: &DecodeLimits,
    too_big: ProtocolError,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(end) = find_crlf(buf) else {
        if buf.len() > limits.inline_bytes_max {
            return Err(too_big);
        }
        return Ok(None);
    };
    let text = buf.get(1..end).unwrap_or_default();
    Ok(Some((parse_i64(text).unwrap_or(i64::MIN), end + 2)))
}

fn decode_multibulk(
    buf: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ProtocolError> {
    let mut args = Vec::new();
    let used = multibulk_spans(buf, limits, true, |start, end| {
        args.push(Bytes::copy_from_slice(
            buf.get(start..end).unwrap_or_default(),
        ));
    })?;
    Ok(used.map(|used| (args, used)))
}

/// A request decoded by [`decode_request_spans`].
#[derive(Debug, PartialEq)]
pub(crate) enum Request {
    /// A multibulk request: its arguments are the byte ranges pushed onto `spans`, inside the
    /// first `used` bytes of the buffer.
    Spans {
        /// Bytes the request occupies.
        used: usize,
    },
    /// An inline request, unescaped into owned arguments (empty for a blank line).
    Inline {
        /// The arguments.
        args: Vec<Bytes>,
        /// Bytes the request occupies.
        used: usize,
    },
}

/// Decodes one client request as [`decode_request`] does, but without copying a multibulk
/// request's arguments: their `(start, end)` ranges into `buf` are appended to `spans` (which
/// the caller clears and reuses), so a command that stores no argument allocates nothing here.
///
/// A client that has not `authenticated` (a password is set and it has not given it) is held
/// to Redis's limits for such clients: at most [`RESP_UNAUTH_MULTIBULK_LEN_MAX`] elements and
/// [`RESP_UNAUTH_BULK_BYTES_MAX`] bytes a bulk in a multibulk request (inline requests keep the
/// inline limit, as in Redis), so what it can make the server buffer stays small.
///
/// # Errors
/// A [`ProtocolError`] for malformed input or a limit exceeded.
pub(crate) fn decode_request_spans(
    buf: &[u8],
    limits: &DecodeLimits,
    authenticated: bool,
    spans: &mut Vec<(usize, usize)>,
) -> Result<Option<Request>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => {
            let at = spans.len();
            let used = multibulk_spans(buf, limits, authenticated, |start, end| {
                spans.push((start, end));
            })?;
            if used.is_none() {
                spans.truncate(at);
            }
            Ok(used.map(|used| Request::Spans { used }))
        }
        Some(_) => {
            Ok(decode_inline(buf, limits)?.map(|(args, used)| Request::Inline { args, used }))
        }
    }
}

/// Walks one multibulk request, handing each argument's byte range to `arg`; returns the bytes
/// the request occupies, or `None` when more are needed. Each length is checked as soon as its
/// header line has arrived, against the unauthenticated limits too unless `authenticated`
/// (Redis's `processMultibulkBuffer` order: the general limit first).
fn multibulk_spans(
    buf: &[u8],
    limits: &DecodeLimits,
    authenticated: bool,
    mut arg: impl FnMut(usize, usize),
) -> Result<Option<usize>, ProtocolError> {
    let Some((count, mut pos)) = header_line(buf, limits, ProtocolError::MultibulkCountTooBig)?
    else {
        return Ok(None);
    };
    if count == i64::MIN || count > i64::try_from(limits.multibulk_len_max).unwrap_or(i64::MAX) {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    if !authenticated && count > i64::try_from(RESP_UNAUTH_MULTIBULK_LEN_MAX).unwrap_or(i64::MAX) {
        return Err(ProtocolError::UnauthenticatedMultibulkLength);
    }
    if count <= 0 {
        return Ok(Some(pos));
    }
    let count = usize::try_from(count).unwrap_or(0);
    for _ in 0..count {
        let rest = buf.get(pos..).unwrap_or_default();
        match rest.first() {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(char::from(other))),
        }
        let Some((len, head)) = header_line(rest, limits, ProtocolError::BulkCountTooBig)? else {
            return Ok(None);
        };
        if len < 0
            || len == i64::MIN
            || len > i64::try_from(limits.bulk_bytes_max).unwrap_or(i64::MAX)
        {
            return Err(ProtocolError::InvalidBulkLength);
        }
        if !authenticated && len > i64::try_from(RESP_UNAUTH_BULK_BYTES_MAX).unwrap_or(i64::MAX) {
            return Err(ProtocolError::UnauthenticatedBulkLength);
        }
        let len = usize::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        let start = pos + head;
        let end = start
            .checked_add(len)
            .ok_or(ProtocolError::InvalidBulkLength)?;
        if buf.len() < end.saturating_add(2) {
            return Ok(None);
        }
        arg(start, end);
        pos = end + 2;
    }
    Ok(Some(pos))
}

fn decode_inline(
    buf: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<(Vec<Bytes>, usize)>, ProtocolError> {
    let Some(nl) = memchr_newline(buf) else {
        if buf.len() > limits.inline_bytes_max {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    if nl > limits.inline_bytes_max {
        return Err(ProtocolError::InlineTooBig);
    }
    let mut text = buf.get(..nl).unwrap_or_default();
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    let args = split_args(text).ok_or(ProtocolError::UnbalancedQuotes)?;
    Ok(Some((args, nl + 1)))
}

/// Splits an inline command line the way Redis's `sdssplitargs` does: whitespace separates,
/// `"…"` understands `\n \r \t \b \a \\ \" \xHH`, `'…'` understands `\'`; a closing quote must be
/// followed by whitespace or the end. `None` means unbalanced quotes.
#[must_use]
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let mut args = Vec::new();
    let mut i = 0;
    let at = |i: usize| line.get(i).copied();
    loop {
        while at(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if at(i).is_none() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = at(i);
            if in_dq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if at(i + 1) == Some(b'x')
                            && at(i + 2).is_some_and(|h| h.is_ascii_hexdigit())
                            && at(i + 3).is_some_and(|h| h.is_ascii_hexdigit()) =>
                    {
                        let hi = hex_val(at(i + 2).unwrap_or(b'0'));
                        let lo = hex_val(at(i + 3).unwrap_or(b'0'));
                        cur.push(hi * 16 + lo);
                        i += 3;
                    }
                    Some(b'\\') if at(i + 1).is_some() => {
                        i += 1;
                        cur.push(match at(i).unwrap_or(b'\\') {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => cur.push(other),
                }
            } else if in_sq {
                match c {
                    None => return None,
                    Some(b'\\') if at(i + 1) == Some(b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(other) => cur.push(other),
                }
            } else {
                match c {
                    None => break,
                    Some(w) if w.is_ascii_whitespace() => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(other) => cur.push(other),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Most nesting levels [`decode_frame`] follows before refusing the input.
pub const FRAME_DEPTH_MAX: usize = 64;

/// Decodes one complete RESP2/RESP3 frame of any type (what a client reads).
///
/// Returns `Ok(None)` when more bytes are needed and `Ok(Some((frame, consumed)))` otherwise.
///
/// # Errors
/// [`ProtocolError::Malformed`] for input that is not RESP, nests deeper than
/// [`FRAME_DEPTH_MAX`], or declares a length above `limits`.
pub fn decode_frame(
    buf: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<(Frame, usize)>, ProtocolError> {
    decode_at(buf, limits, 0)
}

fn decode_at(
    buf: &[u8],
    limits: &DecodeLimits,
    depth: usize,
) -> Result<Option<(Frame, usize)>, ProtocolError> {
    if depth > FRAME_DEPTH_MAX {
        return Err(ProtocolError::Malformed("nesting too deep"));
    }
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let Some(end) = find_crlf(buf) else {
        if buf.len() > limits.inline_bytes_max {
            return Err(ProtocolError::Malformed("header line too long"));
        }
        return Ok(None);
    };
    let text = buf.get(1..end).unwrap_or_default();
    let next = end + 2;
    let as_str = || {
        std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|_| ProtocolError::Malformed("line is not UTF-8"))
    };
    let as_len = |max: usize| -> Result<Option<usize>, ProtocolError> {
        let n = parse_i64(text).ok_or(ProtocolError::Malformed("bad length"))?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| ProtocolError::Malformed("bad length"))?;
        if n > max {
            return Err(ProtocolError::Malformed("length above limit"));
        }
        Ok(Some(n))
    };
    let frame = match tag {
        b'+' => (Frame::Simple(Cow::Owned(as_str()?)), next),
        b'-' => (Frame::Error(as_str()?), next),
        b':' => (
            Frame::Integer(parse_i64(text).ok_or(ProtocolError::Malformed("bad integer"))?),
            next,
        ),
        b'_' if text.is_empty() => (Frame::Null, next),
        b'#' => match text {
            b"t" => (Frame::Boolean(true), next),
            b"f" => (Frame::Boolean(false), next),
            _ => return Err(ProtocolError::Malformed("bad boolean")),
        },
        b',' => {
            let s = as_str()?;
            let d = match s.as_str() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => other
                    .parse::<f64>()
                    .map_err(|_| ProtocolError::Malformed("bad double"))?,
            };
            (Frame::Double(d), next)
        }
        b'(' => {
            let s = as_str()?;
            let digits = s.strip_prefix('-').unwrap_or(&s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ProtocolError::Malformed("bad big number"));
            }
            (Frame::BigNumber(s), next)
        }
        b'$' | b'=' => {
            let Some(len) = as_len(limits.bulk_bytes_max)? else {
                return if tag == b'$' {
                    Ok(Some((Frame::Null, next)))
                } else {
                    Err(ProtocolError::Malformed("bad length"))
                };
            };
            let stop = next
                .checked_add(len)
                .ok_or(ProtocolError::Malformed("bad length"))?;
            if buf.len() < stop.saturating_add(2) {
                return Ok(None);
            }
            if buf.get(stop..stop + 2) != Some(b"\r\n") {
                return Err(ProtocolError::Malformed("bulk not terminated by CRLF"));
            }
            let data = buf.get(next..stop).unwrap_or_default();
            if tag == b'=' {
                let body = data
                    .get(4..)
                    .filter(|_| data.get(3) == Some(&b':'))
                    .ok_or(ProtocolError::Malformed("bad verbatim"))?;
                (Frame::Verbatim(Bytes::copy_from_slice(body)), stop + 2)
            } else {
                (Frame::Bulk(Bytes::copy_from_slice(data)), stop + 2)
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let Some(len) = as_len(limits.multibulk_len_max)? else {
                return if tag == b'*' {
                    Ok(Some((Frame::NullArray, next)))
                } else {
                    Err(ProtocolError::Malformed("bad length"))
                };
            };
            let items = if tag == b'%' {
                len.saturating_mul(2)
            } else {
                len
            };
            let mut out = Vec::with_capacity(items.min(PREALLOC_MAX));
            let mut pos = next;
            for _ in 0..items {
                let rest = buf.get(pos..).unwrap_or_default();
                let Some((item, used)) = decode_at(rest, limits, depth + 1)? else {
                    return Ok(None);
                };
                out.push(item);
                pos += used;
            }
            let frame = match tag {
                b'*' => Frame::Array(out),
                b'~' => Frame::Set(out),
                b'>' => Frame::Push(out),
                _ => {
                    let mut pairs = Vec::with_capacity(len.min(PREALLOC_MAX));
                    let mut it = out.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
            };
            (frame, pos)
        }
        _ => return Err(ProtocolError::Malformed("unknown type byte")),
    };
    Ok(Some(frame))
}

/// The body of the `resp_frame` fuzz target, also replayed over the committed corpus by
/// `cargo test`: both decoders must return without panicking and never claim more bytes than
/// they were given, and a decoded frame must re-encode to bytes that decode to the same
/// encoding (RESP3, so every type survives).
///
/// # Panics
/// Only when one of those properties is broken, which is the point of a fuzz target.
pub fn fuzz_resp_frame(data: &[u8]) {
    let limits = DecodeLimits {
        bulk_bytes_max: 1 << 20,
        multibulk_len_max: 1 << 16,
        inline_bytes_max: 1 << 12,
    };
    if let Ok(Some((_, used))) = decode_request(data, &limits) {
        assert!(
            used <= data.len(),
            "request decoder consumed past its input"
        );
    }
    if let Ok(Some((frame, used))) = decode_frame(data, &limits) {
        assert!(used <= data.len(), "frame decoder consumed past its input");
        let mut once = Vec::new();
        frame.encode(3, &mut once);
        let again = decode_frame(&once, &limits);
        assert!(
            matches!(again, Ok(Some(_))),
            "re-encoded frame did not decode: {frame:?}"
        );
        if let Ok(Some((back, n))) = again {
            assert_eq!(n, once.len(), "re-decoding left bytes over");
            let mut twice = Vec::new();
            back.encode(3, &mut twice);
            assert_eq!(once, twice, "encoding is not stable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_every_i64_and_u64_like_display() {
        for n in [0, 1, -1, 9, 10, -10, 12_345, i64::MAX, i64::MIN] {
            let mut buf = [0u8; 20];
            assert_eq!(
                decimal(n.unsigned_abs(), n < 0, &mut buf),
                n.to_string().as_bytes()
            );
        }
        let mut buf = [0u8; 20];
        assert_eq!(
            decimal(u64::MAX, false, &mut buf),
            u64::MAX.to_string().as_bytes()
        );
    }

    const LIMITS: DecodeLimits = DecodeLimits {
        bulk_bytes_max: 16,
        multibulk_len_max: 4,
        inline_bytes_max: 32,
    };

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn multibulk_decodes_and_waits_for_more() {
        let req = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(
            decode_request(req, &LIMITS),
            Ok(Some((args(&["GET", "k"]), req.len())))
        );
        for cut in 0..req.len() {
            assert_eq!(decode_request(&req[..cut], &LIMITS), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn spans_point_into_the_buffer_and_wait_for_more() {
        let req = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n+rest";
        let mut spans = vec![(9, 9)];
        spans.clear();
        let used = req.len() - 5;
        assert_eq!(
            decode_request_spans(req, &LIMITS, true, &mut spans),
            Ok(Some(Request::Spans { used }))
        );
        let got: Vec<&[u8]> = spans.iter().map(|&(a, b)| &req[a..b]).collect();
        assert_eq!(got, [&b"GET"[..], b"k"]);
        for cut in 0..used {
            spans.clear();
            assert_eq!(
                decode_request_spans(&req[..cut], &LIMITS, true, &mut spans),
                Ok(None),
                "cut {cut}"
            );
            assert!(spans.is_empty(), "cut {cut}");
        }
        assert_eq!(
            decode_request_spans(b"set \"a b\" c\r\n", &LIMITS, true, &mut spans),
            Ok(Some(Request::Inline {
                args: args(&["set", "a b", "c"]),
                used: 13
            }))
        );
        assert_eq!(
            decode_request_spans(b"*5\r\n", &LIMITS, true, &mut spans),
            Err(ProtocolError::InvalidMultibulkLength)
        );
    }

    #[test]
    fn integers_parse_like_string2ll() {
        for (text, want) in [
            (&b"0"[..], Some(0)),
            (b"42", Some(42)),
            (b"-42", Some(-42)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"12345678901234567890", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"007", None),
            (b"+1", None),
            (b" 1", None),
            (b"1x", None),
            (b"\xff", None),
        ] {
            assert_eq!(parse_i64(text), want, "{text:?}");
        }
    }

    #[test]
    fn limits_at_max_and_above() {
        let ok = b"*4\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$16\r\naaaaaaaaaaaaaaaa\r\n";
        assert!(decode_request(ok, &LIMITS).unwrap().is_some());
        assert_eq!(
            decode_request(b"*5\r\n", &LIMITS),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            decode_request(b"*1\r\n$17\r\n", &LIMITS),
            Err(ProtocolError::InvalidBulkLength)
        );
        let inline_ok = vec![b'a'; 32];
        assert_eq!(decode_request(&inline_ok, &LIMITS), Ok(None));
        let inline_bad = vec![b'a'; 33];
        assert_eq!(
            decode_request(&inline_bad, &LIMITS),
            Err(ProtocolError::InlineTooBig)
        );
    }

    #[test]
    fn unauthenticated_limits_at_max_and_above() {
        use crate::cache::{RESP_UNAUTH_BULK_BYTES_MAX, RESP_UNAUTH_MULTIBULK_LEN_MAX};
        let wide = DecodeLimits {
            bulk_bytes_max: 1 << 20,
            multibulk_len_max: 1 << 20,
            inline_bytes_max: 1 << 16,
        };
        let mut spans = Vec::new();
        let mut decode = |req: &[u8], authenticated: bool| {
            spans.clear();
            decode_request_spans(req, &wide, authenticated, &mut spans)
        };
        let count = |n: usize| format!("*{n}\r\n").into_bytes();
        let bulk = |n: usize| format!("*1\r\n${n}\r\n").into_bytes();
        // At the limit the decoder waits for the rest; one past it is refused on the header.
        assert_eq!(
            decode(&count(RESP_UNAUTH_MULTIBULK_LEN_MAX), false),
            Ok(None)
        );
        assert_eq!(
            decode(&count(RESP_UNAUTH_MULTIBULK_LEN_MAX + 1), false),
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        );
        assert_eq!(decode(&bulk(RESP_UNAUTH_BULK_BYTES_MAX), false), Ok(None));
        assert_eq!(
            decode(&bulk(RESP_UNAUTH_BULK_BYTES_MAX + 1), false),
            Err(ProtocolError::UnauthenticatedBulkLength)
        );
        // An authenticated client has only the general limits.
        assert_eq!(
            decode(&count(RESP_UNAUTH_MULTIBULK_LEN_MAX + 1), true),
            Ok(None)
        );
        assert_eq!(
            decode(&bulk(RESP_UNAUTH_BULK_BYTES_MAX + 1), true),
            Ok(None)
        );
        // The general limits are checked first, as Redis does; negative counts still skip.
        assert_eq!(
            decode(&count((1 << 20) + 1), false),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            decode(&bulk((1 << 20) + 1), false),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            decode(b"*-1\r\n", false),
            Ok(Some(Request::Spans { used: 5 }))
        );
        // Inline requests keep the inline limit only.
        let inline = vec![b'a'; 1 << 16];
        assert_eq!(decode(&inline, false), Ok(None));
        assert_eq!(
            ProtocolError::UnauthenticatedMultibulkLength.to_string(),
            "ERR Protocol error: unauthenticated multibulk length"
        );
        assert_eq!(
            ProtocolError::UnauthenticatedBulkLength.to_string(),
            "ERR Protocol error: unauthenticated bulk length"
        );
    }

    #[test]
    fn redis_protocol_errors() {
        assert_eq!(
            decode_request(b"*1\r\nfoo\r\n", &LIMITS),
            Err(ProtocolError::ExpectedBulk('f'))
        );
        assert_eq!(
            decode_request(b"*1\r\n$-10\r\n", &LIMITS),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            decode_request(b"*x\r\n", &LIMITS),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            ProtocolError::ExpectedBulk('f').to_string(),
            "ERR Protocol error: expected '$', got 'f'"
        );
    }

    #[test]
    fn inline_quotes() {
        assert_eq!(
            split_args(b"set \"a b\" 'c\\'d' \"\\x41\\n\""),
            Some(args(&["set", "a b", "c'd", "A\n"]))
        );
        assert_eq!(split_args(b"set \"\"\"k\"\"\" v"), None);
        assert_eq!(split_args(b"  "), Some(vec![]));
    }

    #[test]
    fn encode_resp2_and_resp3() {
        let f = Frame::Map(vec![(Frame::bulk(b"a"), Frame::Integer(1))]);
        let mut two = Vec::new();
        f.encode(2, &mut two);
        assert_eq!(two, b"*2\r\n$1\r\na\r\n:1\r\n");
        let mut three = Vec::new();
        f.encode(3, &mut three);
        assert_eq!(three, b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(
            decode_frame(&three, &LIMITS).unwrap(),
            Some((f, three.len()))
        );
    }

    #[test]
    fn error_and_status_lines_carry_no_cr_or_lf() {
        let mut out = Vec::new();
        Frame::error("ERR bad 'a\r\n+OK'").encode(2, &mut out);
        Frame::Simple(Cow::Owned("x\ny".to_owned())).encode(3, &mut out);
        assert_eq!(out, b"-ERR bad 'a  +OK'\r\n+x y\r\n");
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        // `%.17g`, as Redis 7.0's addReplyDouble.
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(1e300), "1.0000000000000001e+300");
        assert_eq!(format_double(-0.0), "-0");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(12345678901234567.0), "12345678901234568");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(-2.5e-10), "-2.5000000000000002e-10");
    }
}
