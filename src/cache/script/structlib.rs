//! `struct`: binary records for scripts, as the Lua `struct` library (struct.c 1.7, the one
//! Redis 7.0 gives scripts) packs and unpacks them, on x86-64 as Redis runs it.
//!
//! `struct.pack(fmt, ...)` returns a string, `struct.unpack(fmt, s [, pos])` the values and the
//! position after them, `struct.size(fmt)` the length of a fixed-size record. Format letters:
//! `>` big endian, `<` little endian (the default, the host's), `![n]` alignment (default
//! [`ALIGN_DEFAULT`]), `x` a zero byte, `b`/`B` signed/unsigned char, `h`/`H` short, `l`/`L`
//! long (8 bytes), `T` size_t (8), `i[n]`/`I[n]` an integer of n bytes (default 4, at most
//! [`INT_SIZE_MAX`]), `c[n]` n chars (`c0`: the whole string to pack, or a length taken from
//! the value unpacked before), `s` a zero-terminated string, `f` float, `d` double, space
//! ignored. Errors are the C code's texts.
//!
//! Limits, as the C code has them: a number in a format is at most `i32::MAX` ("integral size
//! overflow"); an integer is at most [`INT_SIZE_MAX`] bytes; an alignment is a power of two;
//! a count of chars is bounded by the string to pack or unpack; `unpack` returns no more
//! values than Lua 5.1 gives a C function stack slots
//! ([`C_STACK_SLOTS_MAX`](super::libs::C_STACK_SLOTS_MAX)), less [`RESULT_SLOTS_RESERVED`]
//! (up to 6998 with two arguments, where the C code returns 7998), failing with its "stack
//! overflow (too many results)"; `pack`'s output is bounded by the Lua state's memory
//! ([`Output`]). Conversions of out-of-range
//! numbers are x86-64's, as the C casts compile there.

use mlua::{Lua, MultiValue, Table, Value};

use super::libs::{
    Args, Output, RESULT_SLOTS_RESERVED, Raise, Raised, c_double_to_i64, c_double_to_u64,
    c_function,
};

/// Largest integer size in bytes (`MAXINTSIZE`).
pub(crate) const INT_SIZE_MAX: usize = 32;

/// Alignment `!` sets without a number (`MAXALIGN`: the alignment of a double, 8 on x86-64).
pub(crate) const ALIGN_DEFAULT: i32 = 8;

/// The `struct` table.
pub(super) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", c_function(lua, pack)?)?;
    t.raw_set("unpack", c_function(lua, unpack)?)?;
    t.raw_set("size", c_function(lua, size)?)?;
    Ok(t)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Big,
    Little,
}

/// Byte order and alignment in force.
struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    /// `defaultoptions`: the host's order (little endian), no alignment.
    fn new() -> Self {
        Self {
            endian: Endian::Little,
            align: 1,
        }
    }
}

/// A format being read: up to its first zero byte, as C reads the string.
struct Format<'a> {
    fmt: &'a [u8],
    pos: usize,
}

impl<'a> Format<'a> {
    fn new(fmt: &'a [u8]) -> Self {
        let end = fmt.iter().position(|&b| b == 0).unwrap_or(fmt.len());
        Self {
            fmt: &fmt[..end],
            pos: 0,
        }
    }

    fn next_option(&mut self) -> Option<u8> {
        let opt = self.fmt.get(self.pos).copied()?;
        self.pos += 1;
        Some(opt)
    }

    /// `getnum`: the number that follows, or `default` when none does.
    fn number(&mut self, default: i32) -> Raised<i32> {
        let mut a: Option<i32> = None;
        while let Some(d) = self.fmt.get(self.pos).filter(|d| d.is_ascii_digit()) {
            let digit = i32::from(d - b'0');
            let so_far = a.unwrap_or(0);
            if so_far > i32::MAX / 10 || so_far * 10 > i32::MAX - digit {
                return Err(Raise::text("integral size overflow"));
            }
            a = Some(so_far * 10 + digit);
            self.pos += 1;
        }
        Ok(a.unwrap_or(default))
    }

    /// `optsize`: the size of option `opt` (0 for options without one).
    fn size(&mut self, opt: u8) -> Raised<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'f' => 4,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'c' => self.number(1)? as usize,
            b'i' | b'I' => {
                let sz = self.number(4)?;
                if sz as usize > INT_SIZE_MAX {
                    return Err(Raise::text(format!(
                        "integral size {sz} is larger than limit of {INT_SIZE_MAX}"
                    )));
                }
                sz as usize
            }
            _ => 0,
        })
    }
}

/// `gettoalign`: padding before an item of `size` at `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

/// `controloptions`: byte order, alignment, space; anything else is an invalid option.
fn control(args: &Args<'_>, opt: u8, f: &mut Format<'_>, h: &mut Header) -> Raised<()> {
    match opt {
        b' ' => {}
        b'>' => h.endian = Endian::Big,
        b'<' => h.endian = Endian::Little,
        b'!' => {
            let a = f.number(ALIGN_DEFAULT)?;
            if a <= 0 || a & (a - 1) != 0 {
                return Err(Raise::text(format!("alignment {a} is not a power of 2")));
            }
            h.align = a as usize;
        }
        _ => {
            let mut message = b"invalid format option '".to_vec();
            message.push(opt);
            message.push(b'\'');
            return Err(args.arg_error(1, &message));
        }
    }
    Ok(())
}

fn is_integer_option(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// `putinteger`: `n` as `size` bytes (past 8, zeros beyond the 64-bit value).
fn put_integer(out: &mut Output, n: f64, endian: Endian, size: usize) -> Raised<()> {
    let mut value = if n < 0.0 {
        c_double_to_i64(n) as u64
    } else {
        c_double_to_u64(n)
    };
    let mut buf = [0u8; INT_SIZE_MAX];
    let buf = &mut buf[..size];
    for i in 0..size {
        let at = if endian == Endian::Little {
            i
        } else {
            size - 1 - i
        };
        buf[at] = (value & 0xff) as u8;
        value >>= 8;
    }
    out.push(buf)
}

/// `getinteger`: the number `bytes` hold (past 8 bytes, the low 64 bits), sign-extended as
/// x86-64 runs the C code's shift.
fn get_integer(bytes: &[u8], endian: Endian, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut add = |b: u8| l = (l << 8) | u64::from(b);
    if endian == Endian::Big {
        bytes.iter().for_each(|&b| add(b));
    } else {
        bytes.iter().rev().for_each(|&b| add(b));
    }
    if !signed {
        return l as f64;
    }
    // `~0 << (size*8 - 1)`: x86-64 takes the shift count modulo 64.
    let shift = (bytes.len() * 8).wrapping_sub(1) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// `struct.pack(fmt, ...)`.
fn pack(args: &Args<'_>) -> Raised<MultiValue> {
    let fmt = args.check_lstring(1)?;
    let fmt = fmt.as_bytes();
    let mut f = Format::new(&fmt);
    let mut h = Header::new();
    let mut arg = 2usize;
    let mut total = 0usize;
    let mut out = Output::for_state(args.lua);
    while let Some(opt) = f.next_option() {
        let mut size = f.size(opt)?;
        let pad = to_align(total, &h, opt, size);
        total = total.wrapping_add(pad);
        out.push(&[0u8; INT_SIZE_MAX][..pad])?;
        match opt {
            _ if is_integer_option(opt) => {
                let n = args.check_number(arg)?;
                arg += 1;
                put_integer(&mut out, n, h.endian, size)?;
            }
            b'x' => out.push(&[0])?,
            b'f' => {
                let v = args.check_number(arg)? as f32;
                arg += 1;
                out.push(&match h.endian {
                    Endian::Little => v.to_le_bytes(),
                    Endian::Big => v.to_be_bytes(),
                })?;
            }
            b'd' => {
                let v = args.check_number(arg)?;
                arg += 1;
                out.push(&match h.endian {
                    Endian::Little => v.to_le_bytes(),
                    Endian::Big => v.to_be_bytes(),
                })?;
            }
            b'c' | b's' => {
                let s = args.check_lstring(arg)?;
                arg += 1;
                let s = s.as_bytes();
                if size == 0 {
                    size = s.len();
                }
                // The C code counts the argument after the string here.
                let Some(bytes) = s.get(..size) else {
                    return Err(args.arg_error(arg as i64, b"string too short"));
                };
                out.push(bytes)?;
                if opt == b's' {
                    out.push(&[0])?;
                    size += 1;
                }
            }
            _ => control(args, opt, &mut f, &mut h)?,
        }
        total = total.wrapping_add(size);
    }
    let s = args.lua.create_string(out.bytes())?;
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

/// Whether `v` is a number or a string that converts to one (`lua_isnumber`), and which.
fn as_number(lua: &Lua, v: &Value) -> Raised<Option<f64>> {
    Ok(match v {
        Value::Integer(n) => Some(*n as f64),
        Value::Number(n) => Some(*n),
        Value::String(_) => lua.coerce_number(v.clone())?,
        _ => None,
    })
}

/// `struct.unpack(fmt, s [, pos])`.
fn unpack(args: &Args<'_>) -> Raised<MultiValue> {
    let fmt = args.check_lstring(1)?;
    let fmt = fmt.as_bytes();
    let data = args.check_lstring(2)?;
    let data = data.as_bytes();
    let ld = data.len();
    // A size_t in the C code: a negative position is a huge one.
    let mut pos = args.opt_integer(3, 1)? as u64 as usize;
    if pos == 0 {
        return Err(args.arg_error(3, b"offset must be 1 or greater"));
    }
    pos -= 1;
    let too_short = || args.arg_error(2, b"data string too short");
    let fits = |pos: usize, size: usize| size <= ld && pos <= ld - size;
    let mut f = Format::new(&fmt);
    let mut h = Header::new();
    let mut results: Vec<Value> = Vec::new();
    while let Some(opt) = f.next_option() {
        let mut size = f.size(opt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if !fits(pos, size) {
            return Err(too_short());
        }
        // The item and the position after it, with the arguments and the reserved slots in use.
        let top = args.len() + RESULT_SLOTS_RESERVED + results.len();
        Raise::check_stack(top, 2, "too many results")?;
        let item = data.get(pos..pos + size).ok_or_else(too_short)?;
        match opt {
            _ if is_integer_option(opt) => {
                let n = get_integer(item, h.endian, opt.is_ascii_lowercase());
                results.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let b: [u8; 4] = item.try_into().map_err(|_| too_short())?;
                let v = match h.endian {
                    Endian::Little => f32::from_le_bytes(b),
                    Endian::Big => f32::from_be_bytes(b),
                };
                results.push(Value::Number(f64::from(v)));
            }
            b'd' => {
                let b: [u8; 8] = item.try_into().map_err(|_| too_short())?;
                let v = match h.endian {
                    Endian::Little => f64::from_le_bytes(b),
                    Endian::Big => f64::from_be_bytes(b),
                };
                results.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    let previous = match results.last() {
                        Some(v) => as_number(args.lua, v)?,
                        None => None,
                    };
                    let Some(n) = previous else {
                        return Err(Raise::text("format 'c0' needs a previous size"));
                    };
                    size = c_double_to_u64(n) as usize;
                    results.pop();
                    if !fits(pos, size) {
                        return Err(too_short());
                    }
                }
                let bytes = data.get(pos..pos + size).ok_or_else(too_short)?;
                results.push(Value::String(args.lua.create_string(bytes)?));
            }
            b's' => {
                let rest = data.get(pos..).unwrap_or_default();
                let Some(end) = rest.iter().position(|&b| b == 0) else {
                    return Err(Raise::text("unfinished string in data"));
                };
                size = end + 1;
                results.push(Value::String(args.lua.create_string(&rest[..end])?));
            }
            _ => control(args, opt, &mut f, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_vec(results))
}

/// `struct.size(fmt)`.
fn size(args: &Args<'_>) -> Raised<MultiValue> {
    let fmt = args.check_lstring(1)?;
    let fmt = fmt.as_bytes();
    let mut f = Format::new(&fmt);
    let mut h = Header::new();
    let mut pos = 0usize;
    while let Some(opt) = f.next_option() {
        let size = f.size(opt)?;
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            return Err(args.arg_error(1, b"option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(args.arg_error(1, b"option 'c0' has no fixed size"));
        }
        // Letters and digits that are no option are ignored here (not in pack and unpack).
        if !opt.is_ascii_alphanumeric() {
            control(args, opt, &mut f, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(MultiValue::from_vec(vec![Value::Number(pos as i64 as f64)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_sign_extend_as_the_c_code_does() {
        assert_eq!(get_integer(&[0xff], Endian::Little, true), -1.0);
        assert_eq!(get_integer(&[0xff], Endian::Little, false), 255.0);
        assert_eq!(get_integer(&[0x80, 0], Endian::Big, true), -32768.0);
        assert_eq!(get_integer(&[], Endian::Big, true), 0.0);
        // 16 bytes: the low 64 bits, sign from bit 63.
        let mut b = [0u8; 16];
        b[7] = 0x80;
        assert_eq!(get_integer(&b, Endian::Little, true), i64::MIN as f64);
    }

    #[test]
    fn number_limits() {
        assert!(matches!(Format::new(b"2147483647").number(1), Ok(i32::MAX)));
        assert!(Format::new(b"2147483648").number(1).is_err());
        assert!(matches!(Format::new(b"x").number(7), Ok(7)));
        assert!(matches!(Format::new(b"32").size(b'i'), Ok(32)));
        assert!(Format::new(b"33").size(b'i').is_err());
    }

    #[test]
    fn padding() {
        let h = Header {
            endian: Endian::Little,
            align: 8,
        };
        assert_eq!(to_align(1, &h, b'i', 4), 3);
        assert_eq!(to_align(1, &h, b'd', 8), 7);
        assert_eq!(to_align(1, &h, b'i', 16), 7);
        assert_eq!(to_align(1, &h, b'c', 8), 0);
        assert_eq!(to_align(1, &h, b'x', 1), 0);
    }
}
