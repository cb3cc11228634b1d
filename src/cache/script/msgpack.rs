//! `cmsgpack`: MessagePack for scripts, as lua-cmsgpack 0.4.0 (the library Redis 7.0 gives
//! scripts) packs and unpacks it.
//!
//! - `pack(v, ...)` encodes each argument and concatenates the encodings. A table whose keys
//!   are exactly 1..n is an array, any other table a map (keys in `next` order); a number that
//!   a 64-bit integer holds exactly is the smallest integer type, any other a float 32 when
//!   that is exact, else a float 64; a string is a fixstr, str 8, str 16 or str 32 by length;
//!   a table nested [`PACK_NESTING_MAX`] deep, a function, userdata or nil packs as nil.
//! - `unpack(s)` returns every value `s` holds; `unpack_one(s, offset)` the offset after the
//!   first value from `offset` (-1 at the end) and the value; `unpack_limit(s, limit,
//!   offset)` the offset and up to `limit` values. Bin, ext and fixext types are "Bad data
//!   format in input."; a value cut short is "Missing bytes in input.".
//!
//! Sizes and limits. A declared array or map length allocates nothing ahead (as in the C
//! code): each element is decoded from at least one byte of the input before it is stored, so
//! a length the input does not hold fails with "Missing bytes in input." after at most as many
//! elements as the input has bytes. The values one call returns and how deep unpacked tables
//! nest are bounded by Lua 5.1's stack slots for a C function ([`C_STACK_SLOTS_MAX`]), counted
//! as the C code uses them, with its "stack overflow (...)" errors, less
//! [`RESULT_SLOTS_RESERVED`] (so up to 6999 values from `unpack(s)` and 3499 nested arrays,
//! where the C code has 7999 and 3999). `pack` takes at most [`PACK_ARGS_MAX`] arguments (as
//! the C code), encodes at most [`PACK_VALUES_MAX`] values (not a C limit), and its output is
//! bounded by the Lua state's memory ([`Output`]). A map key that is nil or NaN fails as
//! storing it in a Lua table fails.

use mlua::{Lua, MultiValue, Table, Value};

use super::SCRIPT_MEMORY_BYTES_MAX;
use super::libs::{
    Args, C_STACK_SLOTS_MAX, Output, RESULT_SLOTS_RESERVED, Raise, Raised, c_double_to_i64,
    c_function,
};

/// Deepest table nesting `pack` encodes (lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`): a table at
/// this depth (the arguments are depth 0) packs as nil, so a table that contains itself packs
/// as a finite copy.
pub(crate) const PACK_NESTING_MAX: usize = 16;

/// Most arguments `pack` takes: it asks Lua for as many stack slots again as it was given
/// arguments, which Lua 5.1 refuses past [`C_STACK_SLOTS_MAX`] slots in all.
pub(crate) const PACK_ARGS_MAX: usize = C_STACK_SLOTS_MAX / 2;

/// Most values (map keys included) one `pack` encodes: as many as a Lua state under
/// [`SCRIPT_MEMORY_BYTES_MAX`] could hold (16 bytes a value in a table), so only a table
/// reached more than once (shared, or containing itself down to [`PACK_NESTING_MAX`]) reaches
/// it, and such a table packs in bounded time. lua-cmsgpack has no such limit.
pub(crate) const PACK_VALUES_MAX: usize = SCRIPT_MEMORY_BYTES_MAX / 16;

/// `luaL_checkstack` message of `mp_decode_to_lua_type`.
const TOO_MANY_VALUES: &str =
    "too many return values at once; use unpack_one or unpack_limit instead.";

/// The `cmsgpack` table.
pub(super) fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", c_function(lua, pack)?)?;
    t.raw_set("unpack", c_function(lua, unpack)?)?;
    t.raw_set("unpack_one", c_function(lua, unpack_one)?)?;
    t.raw_set("unpack_limit", c_function(lua, unpack_limit)?)?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

/// `cmsgpack.pack(...)`.
fn pack(args: &Args<'_>) -> Raised<MultiValue> {
    let mut p = Pack {
        out: Output::for_state(args.lua),
        values_left: PACK_VALUES_MAX,
    };
    pack_into(args, &mut p)?;
    let s = args.lua.create_string(p.out.bytes())?;
    Ok(MultiValue::from_vec(vec![Value::String(s)]))
}

/// A packing in progress.
struct Pack {
    out: Output,
    /// Values that may still be encoded ([`PACK_VALUES_MAX`] at first).
    values_left: usize,
}

/// Encodes every argument into `p`.
fn pack_into(args: &Args<'_>, p: &mut Pack) -> Raised<()> {
    let nargs = args.len();
    if nargs == 0 {
        return Err(args.arg_error(0, b"MessagePack pack needs input."));
    }
    if nargs > PACK_ARGS_MAX {
        return Err(args.arg_error(0, b"Too many arguments for MessagePack pack."));
    }
    for i in 1..=nargs {
        // The arguments, the encodings so far, then this argument's copy.
        let top = nargs + i - 1;
        Raise::check_stack(top, 1, "in function mp_check")?;
        let value = args.get(i).cloned().unwrap_or(Value::Nil);
        encode(p, &value, 0, top + 1)?;
    }
    Ok(())
}

/// Whether `n` converts to a 64-bit integer and back unchanged (`IS_INT64_EQUIVALENT`).
fn is_int64_equivalent(n: f64) -> bool {
    !n.is_infinite() && c_double_to_i64(n) as f64 == n
}

/// Encodes `value` at nesting `level`, with `top` stack slots in use (the value included).
fn encode(p: &mut Pack, value: &Value, level: usize, top: usize) -> Raised<()> {
    p.values_left = p.values_left.checked_sub(1).ok_or_else(|| {
        Raise::text(format!(
            "Too many values for MessagePack pack (more than {PACK_VALUES_MAX})."
        ))
    })?;
    let out = &mut p.out;
    match value {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(&[if *b { 0xc3 } else { 0xc2 }]),
        Value::Integer(n) => encode_number(out, *n as f64),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(t) if level < PACK_NESTING_MAX => encode_table(p, t, level, top),
        _ => out.push(&[0xc0]),
    }
}

fn encode_number(out: &mut Output, n: f64) -> Raised<()> {
    if is_int64_equivalent(n) {
        encode_int(out, n as i64)
    } else {
        encode_double(out, n)
    }
}

fn encode_bytes(out: &mut Output, s: &[u8]) -> Raised<()> {
    let len = s.len();
    if len < 32 {
        out.push(&[0xa0 | len as u8])?;
    } else if let Ok(len) = u8::try_from(len) {
        out.push(&[0xd9, len])?;
    } else if let Ok(len) = u16::try_from(len) {
        let b = len.to_be_bytes();
        out.push(&[0xda, b[0], b[1]])?;
    } else {
        // A Lua string here is smaller than the Lua state's memory cap, well under 4 GiB; the
        // C code writes the low 32 bits of a longer length.
        let b = (len as u32).to_be_bytes();
        out.push(&[0xdb, b[0], b[1], b[2], b[3]])?;
    }
    out.push(s)
}

fn encode_double(out: &mut Output, d: f64) -> Raised<()> {
    let f = d as f32;
    if f64::from(f) == d {
        let b = f.to_be_bytes();
        out.push(&[0xca, b[0], b[1], b[2], b[3]])
    } else {
        let mut b = [0xcb; 9];
        b[1..].copy_from_slice(&d.to_be_bytes());
        out.push(&b)
    }
}

fn encode_int(out: &mut Output, n: i64) -> Raised<()> {
    if n >= 0 {
        if n <= 127 {
            out.push(&[n as u8])
        } else if let Ok(v) = u8::try_from(n) {
            out.push(&[0xcc, v])
        } else if let Ok(v) = u16::try_from(n) {
            let b = v.to_be_bytes();
            out.push(&[0xcd, b[0], b[1]])
        } else if let Ok(v) = u32::try_from(n) {
            let b = v.to_be_bytes();
            out.push(&[0xce, b[0], b[1], b[2], b[3]])
        } else {
            let mut b = [0xcf; 9];
            b[1..].copy_from_slice(&n.to_be_bytes());
            out.push(&b)
        }
    } else if n >= -32 {
        out.push(&[n as u8])
    } else if let Ok(v) = i8::try_from(n) {
        out.push(&[0xd0, v as u8])
    } else if let Ok(v) = i16::try_from(n) {
        let b = v.to_be_bytes();
        out.push(&[0xd1, b[0], b[1]])
    } else if let Ok(v) = i32::try_from(n) {
        let b = v.to_be_bytes();
        out.push(&[0xd2, b[0], b[1], b[2], b[3]])
    } else {
        let mut b = [0xd3; 9];
        b[1..].copy_from_slice(&n.to_be_bytes());
        out.push(&b)
    }
}

/// An array (map) header: fix, 16-bit or 32-bit length. Lengths past 32 bits cannot occur (a
/// table that large exceeds the Lua state's memory cap).
fn encode_len(out: &mut Output, n: usize, fix: u8, len16: u8) -> Raised<()> {
    if n <= 15 {
        out.push(&[fix | n as u8])
    } else if let Ok(v) = u16::try_from(n) {
        let b = v.to_be_bytes();
        out.push(&[len16, b[0], b[1]])
    } else {
        let b = (n as u32).to_be_bytes();
        out.push(&[len16 + 1, b[0], b[1], b[2], b[3]])
    }
}

/// The key as an array index (`table_is_an_array`): a positive number a C `int` holds
/// exactly.
fn array_index(key: &Value) -> Option<i64> {
    let n = match key {
        Value::Integer(n) => *n as f64,
        Value::Number(n) => *n,
        _ => return None,
    };
    (n > 0.0 && n <= f64::from(i32::MAX) && n.trunc() == n).then_some(n as i64)
}

fn encode_table(p: &mut Pack, t: &Table, level: usize, top: usize) -> Raised<()> {
    Raise::check_stack(top, 2, "in function table_is_an_array")?;
    // An array when every key is an index and the largest is the number of keys: 1..n.
    let (mut count, mut max, mut array) = (0i64, 0i64, true);
    t.for_each(|k: Value, _: Value| {
        if array {
            match array_index(&k) {
                Some(n) => {
                    max = max.max(n);
                    count += 1;
                }
                None => array = false,
            }
        }
        Ok(())
    })?;
    if array && max == count {
        Raise::check_stack(top, 1, "in function mp_encode_lua_table_as_array")?;
        encode_len(&mut p.out, count as usize, 0x90, 0xdc)?;
        for j in 1..=count {
            let v: Value = t.raw_get(j)?;
            encode(p, &v, level + 1, top + 1)?;
        }
        return Ok(());
    }
    Raise::check_stack(top, 3, "in function mp_encode_lua_table_as_map")?;
    let mut len = 0usize;
    t.for_each(|_: Value, _: Value| {
        len += 1;
        Ok(())
    })?;
    encode_len(&mut p.out, len, 0x80, 0xde)?;
    // Errors inside the iteration (only `Raise`s of this encoder) are carried out of it.
    let mut failed = None;
    t.for_each(|k: Value, v: Value| {
        if failed.is_none() {
            let done =
                encode(p, &k, level + 1, top + 3).and_then(|()| encode(p, &v, level + 1, top + 2));
            if let Err(e) = done {
                failed = Some(e);
            }
        }
        Ok(())
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `cmsgpack.unpack(s)`: every value.
fn unpack(args: &Args<'_>) -> Raised<MultiValue> {
    unpack_full(args, 0, 0, args.len())
}

/// `cmsgpack.unpack_one(s [, offset])`.
fn unpack_one(args: &Args<'_>) -> Raised<MultiValue> {
    let offset = args.opt_integer(2, 0)?;
    unpack_full(args, 1, offset, 1)
}

/// `cmsgpack.unpack_limit(s, limit [, offset])`.
fn unpack_limit(args: &Args<'_>) -> Raised<MultiValue> {
    let limit = args.check_integer(2)?;
    let offset = args.opt_integer(3, 0)?;
    unpack_full(args, limit, offset, 1)
}

/// `mp_unpack_full`: up to `limit` values from `offset` (every value, and no offset returned,
/// when both are 0), with `base` stack slots in use (the arguments the C code leaves on the
/// stack; here every argument stays, and [`RESULT_SLOTS_RESERVED`] more are kept).
fn unpack_full(args: &Args<'_>, limit: i64, offset: i64, base: usize) -> Raised<MultiValue> {
    let s = args.check_lstring(1)?;
    let bytes = s.as_bytes();
    let len = bytes.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The C code prints the input's length where it means the limit.
        return Err(Raise::text(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    if start > len {
        return Err(Raise::text(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut decoder = Decoder {
        lua: args.lua,
        input: &bytes[..],
        pos: start,
        top: base.max(args.len()) + RESULT_SLOTS_RESERVED,
    };
    let mut values = Vec::new();
    while decoder.pos < len && (values.len() as i64) < limit {
        values.push(decoder.value()?);
    }
    if decode_all {
        return Ok(MultiValue::from_vec(values));
    }
    Raise::check_stack(decoder.top, 1, "in function mp_unpack_full")?;
    let next = if decoder.pos == len {
        -1
    } else {
        decoder.pos as i64
    };
    values.insert(0, Value::Integer(next));
    Ok(MultiValue::from_vec(values))
}

/// Why decoding stopped.
enum Stop {
    /// The input ended inside a value.
    Eof,
    /// A type byte lua-cmsgpack does not decode.
    BadFormat,
    /// Another error (stack slots, a nil or NaN map key, the Lua state).
    Raise(Raise),
}

impl From<Raise> for Stop {
    fn from(e: Raise) -> Self {
        Self::Raise(e)
    }
}

impl From<mlua::Error> for Stop {
    fn from(e: mlua::Error) -> Self {
        Self::Raise(Raise::Lua(e))
    }
}

impl From<Stop> for Raise {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Eof => Raise::text("Missing bytes in input."),
            Stop::BadFormat => Raise::text("Bad data format in input."),
            Stop::Raise(e) => e,
        }
    }
}

/// A table being filled.
enum Open {
    /// An array: the index of the next element, and how many are left.
    Array { t: Table, index: i64, left: u64 },
    /// A map: how many pairs are left, and the key decoded when a value is next.
    Map {
        t: Table,
        left: u64,
        key: Option<Value>,
    },
}

/// What a type byte starts.
enum Item {
    Value(Value),
    Array(u64),
    Map(u64),
}

struct Decoder<'a> {
    lua: &'a Lua,
    input: &'a [u8],
    pos: usize,
    /// Stack slots the C decoder would have in use.
    top: usize,
}

impl Decoder<'_> {
    /// `mp_cur_need`: `n` more bytes from the cursor, or the end of input.
    fn need(&self, n: usize) -> Result<&[u8], Stop> {
        self.input
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or(Stop::Eof)
    }

    fn take<const N: usize>(&mut self, at: usize) -> Result<[u8; N], Stop> {
        let bytes = self.need(at + N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes[at..]);
        Ok(out)
    }

    fn string(&mut self, header: usize, len: usize) -> Result<Item, Stop> {
        let bytes = self.need(header.saturating_add(len))?;
        let s = self.lua.create_string(&bytes[header..])?;
        self.pos += header + len;
        Ok(Item::Value(Value::String(s)))
    }

    /// Decodes the type byte at the cursor and any scalar it starts.
    fn item(&mut self) -> Result<Item, Stop> {
        let first = self.need(1)?[0];
        Raise::check_stack(self.top, 1, TOO_MANY_VALUES)?;
        let number = |n: f64| Item::Value(Value::Number(n));
        let (item, used) = match first {
            0xcc => (number(f64::from(self.take::<1>(1)?[0])), 2),
            0xd0 => (number(f64::from(self.take::<1>(1)?[0] as i8)), 2),
            0xcd => (number(f64::from(u16::from_be_bytes(self.take(1)?))), 3),
            0xd1 => (number(f64::from(i16::from_be_bytes(self.take(1)?))), 3),
            0xce => (number(f64::from(u32::from_be_bytes(self.take(1)?))), 5),
            0xd2 => (number(f64::from(i32::from_be_bytes(self.take(1)?))), 5),
            // Pushed as a Lua integer (64-bit signed): past 2^63 - 1 it wraps negative.
            0xcf => (number(u64::from_be_bytes(self.take(1)?) as i64 as f64), 9),
            0xd3 => (number(i64::from_be_bytes(self.take(1)?) as f64), 9),
            0xc0 => (Item::Value(Value::Nil), 1),
            0xc3 => (Item::Value(Value::Boolean(true)), 1),
            0xc2 => (Item::Value(Value::Boolean(false)), 1),
            0xca => (number(f64::from(f32::from_be_bytes(self.take(1)?))), 5),
            0xcb => (number(f64::from_be_bytes(self.take(1)?)), 9),
            0xd9 => {
                let len = usize::from(self.take::<1>(1)?[0]);
                return self.string(2, len);
            }
            0xda => {
                let len = usize::from(u16::from_be_bytes(self.take(1)?));
                return self.string(3, len);
            }
            0xdb => {
                let len = u32::from_be_bytes(self.take(1)?) as usize;
                return self.string(5, len);
            }
            0xdc => (Item::Array(u64::from(u16::from_be_bytes(self.take(1)?))), 3),
            0xdd => (Item::Array(u64::from(u32::from_be_bytes(self.take(1)?))), 5),
            0xde => (Item::Map(u64::from(u16::from_be_bytes(self.take(1)?))), 3),
            0xdf => (Item::Map(u64::from(u32::from_be_bytes(self.take(1)?))), 5),
            b if b & 0x80 == 0 => (number(f64::from(b)), 1),
            b if b & 0xe0 == 0xe0 => (number(f64::from(b as i8)), 1),
            b if b & 0xe0 == 0xa0 => return self.string(1, usize::from(b & 0x1f)),
            b if b & 0xf0 == 0x90 => (Item::Array(u64::from(b & 0xf)), 1),
            b if b & 0xf0 == 0x80 => (Item::Map(u64::from(b & 0xf)), 1),
            _ => return Err(Stop::BadFormat),
        };
        self.pos += used;
        Ok(item)
    }

    /// `mp_decode_to_lua_type` for one top-level value, nested tables filled without
    /// recursion; leaves the value's slot counted in `top`.
    fn value(&mut self) -> Raised<Value> {
        self.decode().map_err(Raise::from)
    }

    fn decode(&mut self) -> Result<Value, Stop> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let mut done = match self.item()? {
                Item::Value(v) => {
                    self.top += 1;
                    Some(v)
                }
                Item::Array(n) => {
                    let t = self.lua.create_table()?;
                    self.top += 1;
                    Raise::check_stack(self.top, 1, "in function mp_decode_to_lua_array")?;
                    if n == 0 {
                        Some(Value::Table(t))
                    } else {
                        // The index of the first element.
                        self.top += 1;
                        open.push(Open::Array {
                            t,
                            index: 1,
                            left: n,
                        });
                        None
                    }
                }
                Item::Map(n) => {
                    let t = self.lua.create_table()?;
                    self.top += 1;
                    if n == 0 {
                        Some(Value::Table(t))
                    } else {
                        open.push(Open::Map {
                            t,
                            left: n,
                            key: None,
                        });
                        None
                    }
                }
            };
            // Store each finished value in its table; a filled table is finished in turn.
            while let Some(value) = done.take() {
                let Some(parent) = open.last_mut() else {
                    return Ok(value);
                };
                match parent {
                    Open::Array { t, index, left } => {
                        t.raw_set(*index, value)?;
                        self.top -= 2;
                        *index += 1;
                        *left -= 1;
                        if *left > 0 {
                            self.top += 1;
                        }
                    }
                    Open::Map {
                        key: key @ None, ..
                    } => {
                        *key = Some(value);
                    }
                    Open::Map { t, left, key } => {
                        let k = key.take().unwrap_or(Value::Nil);
                        match &k {
                            Value::Nil => {
                                return Err(Raise::Runtime("table index is nil".into()).into());
                            }
                            Value::Number(n) if n.is_nan() => {
                                return Err(Raise::Runtime("table index is NaN".into()).into());
                            }
                            _ => {}
                        }
                        t.raw_set(k, value)?;
                        self.top -= 2;
                        *left -= 1;
                    }
                }
                let filled = match parent {
                    Open::Array { left, .. } | Open::Map { left, .. } => *left == 0,
                };
                if filled {
                    done = open.pop().map(|o| match o {
                        Open::Array { t, .. } | Open::Map { t, .. } => Value::Table(t),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    /// `value` packed with at most `bytes_max` bytes of output and `values_max` values.
    fn pack_with(value: &Value, bytes_max: usize, values_max: usize) -> Raised<Vec<u8>> {
        let mut p = Pack {
            out: Output::with_max(bytes_max),
            values_left: values_max,
        };
        encode(&mut p, value, 0, 1)?;
        Ok(p.out.bytes().to_vec())
    }

    #[test]
    fn numbers_that_an_int64_holds_exactly_are_integers() {
        assert!(is_int64_equivalent(0.0));
        assert!(is_int64_equivalent(-0.0));
        assert!(is_int64_equivalent(-9_223_372_036_854_775_808.0));
        assert!(!is_int64_equivalent(9_223_372_036_854_775_808.0));
        assert!(!is_int64_equivalent(0.5));
        assert!(!is_int64_equivalent(f64::NAN));
        assert!(!is_int64_equivalent(f64::INFINITY));
    }

    #[test]
    fn the_output_is_bounded_by_the_memory_left() {
        let lua = Lua::new();
        let n = Value::Integer(65535);
        assert_eq!(pack_with(&n, 3, 1).unwrap(), [0xcd, 0xff, 0xff]);
        assert!(matches!(
            pack_with(&Value::Integer(65536), 3, 1),
            Err(Raise::Lua(mlua::Error::MemoryError(_)))
        ));
        let s = Value::String(lua.create_string("abcde").unwrap());
        assert_eq!(pack_with(&s, 6, 1).unwrap(), b"\xa5abcde");
        assert!(pack_with(&s, 5, 1).is_err());
    }

    #[test]
    fn the_values_packed_are_bounded() {
        let lua = Lua::new();
        // A table holding itself twice: 2^16 - 1 tables to the nesting limit, 2^16 nils below.
        let t = lua.create_table().unwrap();
        t.raw_set(1, t.clone()).unwrap();
        t.raw_set(2, t.clone()).unwrap();
        let values = (1 << 17) - 1;
        let packed = pack_with(&Value::Table(t.clone()), 1 << 20, values).unwrap();
        assert_eq!(packed.len(), values);
        assert!(matches!(
            pack_with(&Value::Table(t), 1 << 20, values - 1),
            Err(Raise::Message(m)) if m.starts_with(b"Too many values for MessagePack pack")
        ));
    }

    #[test]
    fn pack_encodes_pack_values_max_values_and_refuses_one_more() {
        let lua = Lua::new();
        // 4095 references to one table of 4096 integers: 1 + 4095 × (1 + 4096) = 2^24 values.
        let inner = lua.create_sequence_from(0..4096).unwrap();
        let outer = lua
            .create_sequence_from(std::iter::repeat_n(inner, 4095))
            .unwrap();
        assert_eq!(1 + 4095 * (1 + 4096), PACK_VALUES_MAX);
        let pack_fn: mlua::Function = table(&lua).unwrap().get("pack").unwrap();
        let packed: mlua::String = pack_fn.call(outer.clone()).unwrap();
        // The outer array's header (0xdc + 2 bytes), each inner's (0xdc + 2 bytes), then the
        // integers: 0..=127 in one byte, 128..=255 in two, the rest in three.
        let inner_bytes = 3 + 128 + 128 * 2 + (4096 - 256) * 3;
        assert_eq!(packed.as_bytes().len(), 3 + 4095 * inner_bytes);
        let refused = pack_fn.call::<mlua::String>((outer, 0)).unwrap_err();
        assert!(
            refused.to_string().contains(&format!(
                "Too many values for MessagePack pack (more than {PACK_VALUES_MAX})"
            )),
            "{refused}"
        );
    }
}
