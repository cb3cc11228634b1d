//! Bitmap commands over strings: BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO (SETBIT and
//! GETBIT live with the other string commands). Bits are numbered from the most significant bit
//! of the first byte; every check, clamp and reply follows Redis 7.0.15's `bitops.c`, in its
//! order (a missing key answers before the range arguments are read, as there).

use super::strings::{check_len, get_bytes, get_str, put_raw};
use super::{NOT_INTEGER, SYNTAX, arg, int_arg, is, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::value::Value;
use crate::cache::{EventKind, Inner, VALUE_BYTES_MAX, notify};

/// Redis's reply to a bad bit offset.
const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
/// Redis's reply to a bad BITFIELD type.
const BAD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// Set bits in `bytes`.
fn popcount(bytes: &[u8]) -> i64 {
    bytes.iter().map(|b| i64::from(b.count_ones())).sum()
}

/// Redis's `redisBitpos`: the position of the first `bit` in `bytes`; for a clear bit not found,
/// the first position past them (the string reads as zero-padded), for a set bit, -1.
fn first_bit(bytes: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u8 } else { 0xff };
    match bytes.iter().position(|b| *b != skip) {
        Some(i) => {
            let b = bytes.get(i).copied().unwrap_or(skip);
            let within = if bit {
                b.leading_zeros()
            } else {
                b.leading_ones()
            };
            to_i64(i) * 8 + i64::from(within)
        }
        None if bit => -1,
        None => to_i64(bytes.len()) * 8,
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An index already clamped into `0..len` (Redis's `long long` arithmetic on a string length).
fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// BYTE or BIT (the range unit of BITCOUNT and BITPOS), or Redis's syntax error.
fn unit_is_bit(word: &[u8]) -> Result<bool, Frame> {
    if is(word, "bit") {
        Ok(true)
    } else if is(word, "byte") {
        Ok(false)
    } else {
        Err(Frame::error(SYNTAX))
    }
}

/// Clamps `start..=end` to a string of `len` bytes (`len * 8` bits when `bit`), as Redis does;
/// in bit units, returns the byte range and the masks of the bits outside it in the edge bytes.
fn clamp(len: usize, mut start: i64, mut end: i64, bit: bool) -> (i64, i64, u8, u8) {
    let mut total = to_i64(len);
    if bit {
        total = total.saturating_mul(8);
    }
    if start < 0 {
        start = total.saturating_add(start);
    }
    if end < 0 {
        end = total.saturating_add(end);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if bit && start <= end {
        // Bits of the first and last bytes that lie outside the range.
        first_mask = !(0xffu8 >> (start & 7));
        last_mask = (1u8 << (7 - (end & 7))).wrapping_sub(1);
        start >>= 3;
        end >>= 3;
    }
    (start, end, first_mask, last_mask)
}

/// `BITCOUNT key [start end [BYTE|BIT]]`.
pub(crate) fn bitcount(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let Some(s) = tri!(get_bytes(ctx, arg(args, 1))) else {
        return Frame::Integer(0);
    };
    let (start, end, first_mask, last_mask) = match args.len() {
        2 => (0, to_i64(s.len()) - 1, 0, 0),
        4 | 5 => {
            let start = tri!(int_arg(args, 2));
            let end = tri!(int_arg(args, 3));
            if start < 0 && end < 0 && start > end {
                return Frame::Integer(0);
            }
            let bit = args.len() == 5 && tri!(unit_is_bit(arg(args, 4)));
            clamp(s.len(), start, end, bit)
        }
        _ => return Frame::error(SYNTAX),
    };
    if start > end {
        return Frame::Integer(0);
    }
    let (start, end) = (to_usize(start), to_usize(end));
    let Some(range) = s.get(start..=end) else {
        return Frame::Integer(0);
    };
    let mut count = popcount(range);
    // The edge bytes' bits outside the range were counted: take them off.
    count -= popcount(&[
        range.first().map_or(0, |b| b & first_mask),
        range.last().map_or(0, |b| b & last_mask),
    ]);
    Frame::Integer(count)
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`.
pub(crate) fn bitpos(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let bit = match parse_i64(arg(args, 2)) {
        Some(0) => false,
        Some(1) => true,
        Some(_) => return Frame::error("ERR The bit argument must be 1 or 0."),
        None => return Frame::error(NOT_INTEGER),
    };
    let Some(s) = tri!(get_bytes(ctx, arg(args, 1))) else {
        return Frame::Integer(if bit { -1 } else { 0 });
    };
    let mut end_given = false;
    let (mut start, end, first_mask, last_mask) = match args.len() {
        3 => (0, to_i64(s.len()) - 1, 0, 0),
        4..=6 => {
            let start = tri!(int_arg(args, 3));
            let bit_unit = args.len() == 6 && tri!(unit_is_bit(arg(args, 5)));
            let end = if args.len() >= 5 {
                end_given = true;
                tri!(int_arg(args, 4))
            } else {
                to_i64(s.len()) - 1
            };
            clamp(s.len(), start, end, bit_unit)
        }
        _ => return Frame::error(SYNTAX),
    };
    if start > end {
        return Frame::Integer(-1);
    }
    let mut bytes = end - start + 1;
    let byte_at = |i: i64| s.get(to_usize(i)).copied().unwrap_or(0);
    // Bits outside the range read as the opposite of what is sought.
    let hide = |b: u8, mask: u8| if bit { b & !mask } else { b | mask };
    let pos = 'found: {
        if first_mask != 0 {
            let mut first = hide(byte_at(start), first_mask);
            if last_mask != 0 && bytes == 1 {
                first = hide(first, last_mask);
            }
            let pos = first_bit(&[first], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let whole = bytes - i64::from(last_mask != 0);
        if whole > 0 {
            let from = to_usize(start);
            let run = s.get(from..from + to_usize(whole)).unwrap_or_default();
            let pos = first_bit(run, bit);
            if bytes == whole || (pos != -1 && pos != whole * 8) {
                break 'found pos;
            }
            start += whole;
            bytes -= whole;
        }
        first_bit(&[hide(byte_at(end), last_mask)], bit)
    };
    // With an explicit end, a clear bit past the range is not in it.
    if end_given && !bit && pos == bytes * 8 {
        return Frame::Integer(-1);
    }
    Frame::Integer(if pos == -1 { -1 } else { pos + start * 8 })
}

/// `BITOP AND|OR|XOR|NOT destkey key [key ...]`.
pub(crate) fn bitop(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let name = arg(args, 1);
    let op = if is(name, "and") {
        Op::And
    } else if is(name, "or") {
        Op::Or
    } else if is(name, "xor") {
        Op::Xor
    } else if is(name, "not") {
        Op::Not
    } else {
        return Frame::error(SYNTAX);
    };
    if op == Op::Not && args.len() != 4 {
        return Frame::error("ERR BITOP NOT must be called with a single source key.");
    }
    let dest = arg(args, 2);
    let mut sources: Vec<Vec<u8>> = Vec::with_capacity(args.len().saturating_sub(3));
    // The sources are read as Redis's `lookupKeyRead` reads them.
    for key in args.iter().skip(3) {
        sources.push(tri!(ctx.reading(|ctx| {
            get_bytes(ctx, key).map(|s| s.map(<[u8]>::to_vec).unwrap_or_default())
        })));
    }
    let max = sources.iter().map(Vec::len).max().unwrap_or(0);
    if max == 0 {
        if ctx.delete(dest) {
            ctx.touched(dest, EventKind::Del);
            ctx.notify(notify::GENERIC, "del", dest);
        }
        return Frame::Integer(0);
    }
    let byte = |src: &[u8], i: usize| src.get(i).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(max);
    let (first, rest) = sources
        .split_first()
        .map_or((&[][..], &[][..]), |(f, r)| (f.as_slice(), r));
    for i in 0..max {
        let mut v = byte(first, i);
        match op {
            Op::Not => v = !v,
            Op::And => rest.iter().for_each(|s| v &= byte(s, i)),
            Op::Or => rest.iter().for_each(|s| v |= byte(s, i)),
            Op::Xor => rest.iter().for_each(|s| v ^= byte(s, i)),
        }
        out.push(v);
    }
    put_raw(ctx, dest, &out);
    ctx.touched(dest, EventKind::Set);
    ctx.notify(notify::STRING, "set", dest);
    Frame::Integer(to_i64(max))
}

/// A BITFIELD integer type: signedness and width (`i1`–`i64`, `u1`–`u63`).
#[derive(Clone, Copy)]
struct Field {
    signed: bool,
    bits: u32,
}

fn field_type(text: &[u8]) -> Result<Field, Frame> {
    let bad = || Frame::error(BAD_TYPE);
    let (signed, digits) = match text.split_first() {
        Some((b'i', d)) => (true, d),
        Some((b'u', d)) => (false, d),
        _ => return Err(bad()),
    };
    let bits = parse_i64(digits).ok_or_else(bad)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(bad());
    }
    Ok(Field {
        signed,
        bits: u32::try_from(bits).map_err(|_| bad())?,
    })
}

/// A bit offset argument; `#n` counts in units of the field's width.
fn field_offset(text: &[u8], bits: u32) -> Result<u64, Frame> {
    let bad = || Frame::error(BAD_OFFSET);
    let (hash, digits) = match text.split_first() {
        Some((b'#', d)) => (true, d),
        _ => (false, text),
    };
    let mut offset = parse_i64(digits).ok_or_else(bad)?;
    if hash {
        offset = offset.checked_mul(i64::from(bits)).ok_or_else(bad)?;
    }
    let bytes_max = i64::try_from(VALUE_BYTES_MAX).unwrap_or(i64::MAX);
    if offset < 0 || (offset >> 3) >= bytes_max {
        return Err(bad());
    }
    u64::try_from(offset).map_err(|_| bad())
}

/// What BITFIELD does on overflow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// One BITFIELD operation.
#[derive(Clone, Copy)]
enum FieldOp {
    Get,
    Set(i64),
    IncrBy(i64),
}

/// The `bits`-wide unsigned field at bit `offset` of `s` (bits past the end read as zero).
fn read_field(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..u64::from(bits) {
        let at = offset + j;
        let byte = usize::try_from(at >> 3).map_or(0, |i| s.get(i).copied().unwrap_or(0));
        v = (v << 1) | u64::from((byte >> (7 - (at & 7))) & 1);
    }
    v
}

/// Writes the low `bits` bits of `v` at bit `offset` of `s` (long enough).
fn write_field(s: &mut [u8], offset: u64, bits: u32, v: u64) {
    for j in 0..u64::from(bits) {
        let at = offset + j;
        let on = (v >> (u64::from(bits) - 1 - j)) & 1 == 1;
        let mask = 0x80u8 >> (at & 7);
        if let Some(b) = usize::try_from(at >> 3).ok().and_then(|i| s.get_mut(i)) {
            if on { *b |= mask } else { *b &= !mask }
        }
    }
}

/// Sign-extends a `bits`-wide field.
#[expect(
    clippy::cast_possible_wrap,
    reason = "the field's bits are reinterpreted as two's complement, as Redis does"
)]
fn signed(v: u64, bits: u32) -> i64 {
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// A field's bits as the integer BITFIELD replies with (sign-extended when signed; an
/// unsigned field is at most 63 bits wide, so it fits).
fn field_int(field: Field, v: u64) -> i64 {
    signed(v, if field.signed { field.bits } else { 64 })
}

/// `value + incr` in a `bits`-wide field: the stored result, and whether it overflowed.
/// Wrapping keeps the low bits; saturation stops at the type's bounds. As Redis's
/// `check{Signed,Unsigned}BitfieldOverflow`.
#[expect(
    clippy::cast_sign_loss,
    reason = "two's complement arithmetic on the field, as Redis does"
)]
fn add_field(field: Field, value: u64, incr: i64, overflow: Overflow) -> (u64, bool) {
    let bits = field.bits;
    if field.signed {
        let value = signed(value, bits);
        let max = if bits == 64 {
            i64::MAX
        } else {
            (1i64 << (bits - 1)) - 1
        };
        let min = -max - 1;
        let sum = i128::from(value) + i128::from(incr);
        let over = sum > i128::from(max);
        let under = sum < i128::from(min);
        if !over && !under {
            return ((sum as i64) as u64 & mask(bits), false);
        }
        let stored = match overflow {
            Overflow::Sat if over => max as u64,
            Overflow::Sat => min as u64,
            _ => (value as u64).wrapping_add(incr as u64),
        };
        (stored & mask(bits), true)
    } else {
        let max = mask(bits);
        let sum = i128::from(value) + i128::from(incr);
        let over = sum > i128::from(max);
        let under = sum < 0;
        if !over && !under {
            return (sum as u64, false);
        }
        let stored = match overflow {
            Overflow::Sat if over => max,
            Overflow::Sat => 0,
            _ => value.wrapping_add(incr as u64) & max,
        };
        (stored, true)
    }
}

/// The field SET stores for `v`: `v` itself when the type holds it (an unsigned type reads a
/// negative `v` as its 64-bit pattern, which it never holds), else its low bits (wrap) or the
/// bound it passed (sat).
#[expect(
    clippy::cast_sign_loss,
    reason = "two's complement patterns of the value, as Redis does"
)]
fn set_field(field: Field, v: i64, overflow: Overflow) -> (u64, bool) {
    let bits = field.bits;
    if field.signed {
        let max = if bits == 64 {
            i64::MAX
        } else {
            (1i64 << (bits - 1)) - 1
        };
        let min = -max - 1;
        if (min..=max).contains(&v) {
            return ((v as u64) & mask(bits), false);
        }
        let stored = match overflow {
            Overflow::Sat if v > max => max as u64,
            Overflow::Sat => min as u64,
            _ => v as u64,
        };
        (stored & mask(bits), true)
    } else {
        let pattern = v as u64;
        if pattern <= mask(bits) {
            return (pattern, false);
        }
        let stored = match overflow {
            Overflow::Sat => mask(bits),
            _ => pattern & mask(bits),
        };
        (stored, true)
    }
}

/// The low `bits` bits set.
fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ...`.
pub(crate) fn bitfield(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    bitfield_generic(ctx, inner, args, false)
}

/// `BITFIELD_RO key [GET type offset] ...`.
pub(crate) fn bitfield_ro(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    bitfield_generic(ctx, inner, args, true)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]], read_only: bool) -> Frame {
    let mut ops: Vec<(FieldOp, Field, u64, Overflow)> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest_write: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = arg(args, j);
        let kind = if is(sub, "get") && remaining >= 2 {
            0
        } else if is(sub, "set") && remaining >= 3 {
            1
        } else if is(sub, "incrby") && remaining >= 3 {
            2
        } else if is(sub, "overflow") && remaining >= 1 {
            let mode = arg(args, j + 1);
            overflow = if is(mode, "wrap") {
                Overflow::Wrap
            } else if is(mode, "sat") {
                Overflow::Sat
            } else if is(mode, "fail") {
                Overflow::Fail
            } else {
                return Frame::error("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return Frame::error(SYNTAX);
        };
        let field = tri!(field_type(arg(args, j + 1)));
        let offset = tri!(field_offset(arg(args, j + 2), field.bits));
        let op = match kind {
            0 => FieldOp::Get,
            _ => {
                let last = offset + u64::from(field.bits) - 1;
                highest_write = Some(highest_write.map_or(last, |h| h.max(last)));
                let v = tri!(int_arg(args, j + 3));
                if kind == 1 {
                    FieldOp::Set(v)
                } else {
                    FieldOp::IncrBy(v)
                }
            }
        };
        ops.push((op, field, offset, overflow));
        j += if kind == 0 { 3 } else { 4 };
    }
    let key = arg(args, 1);
    let Some(highest) = highest_write else {
        // Only GETs: a missing key reads as zeros. BITFIELD reads it as BITFIELD_RO does
        // (Redis's `lookupKeyRead`).
        return tri!(ctx.reading(|ctx| {
            let s = get_bytes(ctx, key)?.unwrap_or_default();
            Ok::<_, Frame>(Frame::Array(
                ops.iter()
                    .map(|(_, field, offset, _)| {
                        Frame::Integer(field_int(*field, read_field(s, *offset, field.bits)))
                    })
                    .collect(),
            ))
        }));
    };
    if read_only {
        return Frame::error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let need = usize::try_from(highest >> 3).map_or(usize::MAX, |b| b.saturating_add(1));
    tri!(check_len(need));
    let mut dirty = false;
    if tri!(get_bytes(ctx, key)).is_none() {
        ctx.put(key, Value::Str(Vec::new()), 0);
        dirty = true;
    }
    let Some(s) = tri!(get_str(ctx, key)) else {
        return Frame::Integer(0);
    };
    if s.len() < need {
        s.resize(need, 0);
        dirty = true;
    }
    let mut changes = 0usize;
    let mut replies = Vec::with_capacity(ops.len());
    for (op, field, offset, overflow) in ops {
        let old = read_field(s, offset, field.bits);
        let as_int = |v: u64| field_int(field, v);
        let (new, reply, over) = match op {
            FieldOp::Get => {
                replies.push(Frame::Integer(as_int(old)));
                continue;
            }
            FieldOp::IncrBy(by) => {
                let (new, over) = add_field(field, old, by, overflow);
                (new, as_int(new), over)
            }
            FieldOp::Set(v) => {
                let (new, over) = set_field(field, v, overflow);
                (new, as_int(old), over)
            }
        };
        if over && overflow == Overflow::Fail {
            replies.push(Frame::Null);
            continue;
        }
        write_field(s, offset, field.bits, new);
        replies.push(Frame::Integer(reply));
        if dirty || old != new {
            changes += 1;
        }
    }
    ctx.settle(key);
    if changes > 0 {
        ctx.touched(key, EventKind::Set);
        ctx.notify(notify::STRING, "setbit", key);
    }
    Frame::Array(replies)
}
