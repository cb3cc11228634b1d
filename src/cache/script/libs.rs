//! The libraries Redis gives scripts beside Lua's own, written here: `cjson` (JSON text to
//! and from Lua values, with lua-cjson's options and errors), `bit` (LuaBitOp's 32-bit
//! operations), `cmsgpack` ([`super::msgpack`]) and `struct` ([`super::structlib`]), and the
//! host side of `redis.sha1hex` and `redis.log`.
//!
//! `cmsgpack` and `struct` are C libraries in Redis; [`c_function`] gives their functions the
//! C API's behaviour: lauxlib's argument checks and texts ([`Args`]), error messages without a
//! position (as `luaL_error` raises them from a C function), Lua 5.1's stack-slot limit for a
//! C function ([`C_STACK_SLOTS_MAX`]), and output built within the memory the Lua state may
//! still allocate ([`Output`]). Their errors are raised as the Rust functions' errors are
//! (`cjson`'s too): a script's error reply has the C code's text and position, while `pcall`
//! gives the error value mlua raises rather than a plain string.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use super::SCRIPT_MEMORY_BYTES_MAX;
use super::convert::lua_number_text;

/// lua-cjson's default nesting limit, for both directions (its `encode_max_depth` and
/// `decode_max_depth` change it, up to [`CJSON_DEPTH_MAX`]).
const CJSON_DEPTH_DEFAULT: usize = 1000;
/// Deepest nesting a script may allow cjson.
pub(crate) const CJSON_DEPTH_MAX: usize = 10_000;

/// Installs `cjson`, `bit`, `cmsgpack` and `struct` as globals and `sha1hex`, `log` and
/// `error_text` in `host`.
pub(crate) fn install(lua: &Lua, host: &Table) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson_table(lua)?)?;
    globals.raw_set("bit", bit_table(lua)?)?;
    globals.raw_set("cmsgpack", super::msgpack::table(lua)?)?;
    globals.raw_set("struct", super::structlib::table(lua)?)?;
    host.raw_set(
        "sha1hex",
        lua.create_function(|lua, s: mlua::String| {
            lua.create_string(super::sha1_hex(s.as_bytes()))
        })?,
    )?;
    host.raw_set(
        "log",
        lua.create_function(|_, (level, message): (i64, mlua::String)| {
            let message = message.to_string_lossy();
            match level {
                0 | 1 => tracing::debug!(target: "streamcache::script", "{message}"),
                2 => tracing::info!(target: "streamcache::script", "{message}"),
                _ => tracing::warn!(target: "streamcache::script", "{message}"),
            }
            Ok(())
        })?,
    )?;
    // An error a Rust function raised reaches Lua as an mlua userdata whose text carries a
    // traceback; `pcall` and `xpcall` give scripts its message instead, a string as the C
    // libraries' `luaL_error` raises.
    host.raw_set(
        "error_text",
        lua.create_function(|lua, e: Value| match e {
            Value::Error(e) => Ok(Some(lua.create_string(super::lua_message(&e))?)),
            _ => Ok(None),
        })?,
    )?;
    Ok(())
}

/// Stack slots a C function may use in Lua 5.1 (`LUAI_MAXCSTACK`). `cmsgpack` and `struct`
/// count their slots as their C code uses them and fail where its `lua_checkstack` fails: this
/// bounds how many values one call returns and how deep `cmsgpack.unpack` nests.
pub(super) const C_STACK_SLOTS_MAX: usize = 8000;

/// Stack slots (of [`C_STACK_SLOTS_MAX`]) that the functions returning any number of values
/// (`cmsgpack.unpack*`, `struct.unpack`) leave unused, so they return up to 7000 values less
/// their arguments where the C code returns up to 8000 less its: a Rust function's frame needs
/// more slots than the values (mlua's, up to 25 on a state's first call), and each string or
/// table returned holds one of mlua's references, of which a Lua state has about as many as
/// a C function has slots, shared with the few the state's own fields hold (compiled scripts
/// and functions live in a Lua table, not as references).
pub(super) const RESULT_SLOTS_RESERVED: usize = 1000;

/// How a function written after a C library function fails.
#[derive(Debug)]
pub(super) enum Raise {
    /// The message the C code raises with `luaL_error` (`luaL_argerror`, `luaL_checkstack`):
    /// raised after the position of the Lua code that called the function ("user_script:1: "),
    /// none when a C function called it (`pcall`).
    Message(Vec<u8>),
    /// An error Lua raises itself in a C function (`luaG_runerror`): no position.
    Runtime(String),
    /// An error of the Lua state itself.
    Lua(mlua::Error),
}

impl Raise {
    /// A message error.
    pub(super) fn text(message: impl Into<String>) -> Self {
        Self::Message(message.into().into_bytes())
    }

    /// Lua's out-of-memory error, as a C function gets it when the allocator refuses.
    pub(super) fn memory() -> Self {
        Self::Lua(mlua::Error::MemoryError("not enough memory".to_owned()))
    }

    /// `luaL_checkstack`: fails, as Lua 5.1 does, when `top` slots in use and `space` more
    /// would pass [`C_STACK_SLOTS_MAX`].
    pub(super) fn check_stack(top: usize, space: usize, what: &str) -> Raised<()> {
        if top.saturating_add(space) > C_STACK_SLOTS_MAX {
            return Err(Self::text(format!("stack overflow ({what})")));
        }
        Ok(())
    }
}

impl From<mlua::Error> for Raise {
    fn from(e: mlua::Error) -> Self {
        Self::Lua(e)
    }
}

impl Raise {
    /// The Lua error raised in `lua`.
    fn into_error(self, lua: &Lua) -> mlua::Error {
        match self {
            Raise::Message(m) => {
                let message = String::from_utf8_lossy(&m);
                mlua::Error::RuntimeError(format!("{}{message}", lua_where(lua)))
            }
            Raise::Runtime(m) => mlua::Error::RuntimeError(m),
            Raise::Lua(e) => e,
        }
    }
}

/// `luaL_where(L, 1)`: "source:line: " of the Lua code that called the running function, empty
/// when that is not Lua code.
fn lua_where(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let line = d.current_line().filter(|line| *line > 0)?;
        let source = d.source().short_src?.into_owned();
        Some(format!("{source}:{line}: "))
    })
    .flatten()
    .unwrap_or_default()
}

/// The result of a function written after a C library function.
pub(super) type Raised<T> = Result<T, Raise>;

/// The arguments of a call, with lauxlib's checks and error texts.
#[derive(Debug)]
pub(super) struct Args<'a> {
    /// The Lua state called.
    pub(super) lua: &'a Lua,
    values: Vec<Value>,
}

impl Args<'_> {
    /// How many arguments were passed (`lua_gettop`).
    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    /// Argument `narg` (from 1), `None` past the last.
    pub(super) fn get(&self, narg: usize) -> Option<&Value> {
        narg.checked_sub(1).and_then(|i| self.values.get(i))
    }

    /// `luaL_typename`: the type of argument `narg`, "no value" past the last.
    fn type_name(&self, narg: usize) -> &'static str {
        match self.get(narg) {
            None => "no value",
            Some(v) => lua_type_name(v),
        }
    }

    /// `luaL_argerror`: "bad argument #n to 'name' (message)", named as the caller named the
    /// function ("?" when Lua cannot tell), `self` not counted in a method call.
    pub(super) fn arg_error(&self, narg: i64, message: &[u8]) -> Raise {
        let found = self.lua.inspect_stack(0, |d| {
            let names = d.names();
            (names.name.map(Cow::into_owned), names.name_what)
        });
        let (name, what) = found.unwrap_or((None, None));
        let name = name.unwrap_or_else(|| "?".to_owned());
        let mut narg = narg;
        let mut out = Vec::new();
        if what == Some("method") {
            narg -= 1;
            if narg == 0 {
                out.extend_from_slice(format!("calling '{name}' on bad self (").as_bytes());
                out.extend_from_slice(message);
                out.push(b')');
                return Raise::Message(out);
            }
        }
        out.extend_from_slice(format!("bad argument #{narg} to '{name}' (").as_bytes());
        out.extend_from_slice(message);
        out.push(b')');
        Raise::Message(out)
    }

    /// `luaL_typerror`: "<expected> expected, got <type>".
    fn type_error(&self, narg: usize, expected: &str) -> Raise {
        let message = format!("{expected} expected, got {}", self.type_name(narg));
        self.arg_error(narg as i64, message.as_bytes())
    }

    /// `luaL_checklstring`: a string, or a number as its text.
    pub(super) fn check_lstring(&self, narg: usize) -> Raised<mlua::String> {
        match self.get(narg) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v @ (Value::Integer(_) | Value::Number(_))) => self
                .lua
                .coerce_string(v.clone())?
                .ok_or_else(|| self.type_error(narg, "string")),
            _ => Err(self.type_error(narg, "string")),
        }
    }

    /// `luaL_checknumber`: a number, or a string that is one.
    pub(super) fn check_number(&self, narg: usize) -> Raised<f64> {
        match self.get(narg) {
            Some(Value::Number(n)) => Ok(*n),
            Some(Value::Integer(n)) => Ok(*n as f64),
            Some(v @ Value::String(_)) => self
                .lua
                .coerce_number(v.clone())?
                .ok_or_else(|| self.type_error(narg, "number")),
            _ => Err(self.type_error(narg, "number")),
        }
    }

    /// `luaL_checkinteger`: a number truncated to an integer.
    pub(super) fn check_integer(&self, narg: usize) -> Raised<i64> {
        self.check_number(narg).map(c_double_to_i64)
    }

    /// `luaL_optinteger`: [`Self::check_integer`], or `default` when absent or nil.
    pub(super) fn opt_integer(&self, narg: usize, default: i64) -> Raised<i64> {
        match self.get(narg) {
            None | Some(Value::Nil) => Ok(default),
            Some(_) => self.check_integer(narg),
        }
    }
}

/// `lua_typename` of a value.
fn lua_type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A double converted to a 64-bit integer as C converts it on x86-64: truncated, and the
/// "integer indefinite" value (`i64::MIN`) when out of range or NaN.
pub(super) fn c_double_to_i64(n: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_63..TWO_63).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// A double converted to a 64-bit unsigned integer as C converts it on x86-64 (below 2^63 or
/// NaN: as to a signed one; from 2^63: 2^63 subtracted, converted, the top bit flipped).
pub(super) fn c_double_to_u64(n: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n >= TWO_63 {
        (c_double_to_i64(n - TWO_63) as u64) ^ (1 << 63)
    } else {
        c_double_to_i64(n) as u64
    }
}

/// An output buffer of a C library function, bounded by what the Lua state may still allocate
/// (the C code builds it in memory taken from the Lua state, under [`SCRIPT_MEMORY_BYTES_MAX`]):
/// past it the function fails with Lua's out-of-memory error.
#[derive(Debug)]
pub(super) struct Output {
    bytes: Vec<u8>,
    max: usize,
}

impl Output {
    /// An empty buffer for `lua`'s state.
    pub(super) fn for_state(lua: &Lua) -> Self {
        Self::with_max(SCRIPT_MEMORY_BYTES_MAX.saturating_sub(lua.used_memory()))
    }

    /// An empty buffer of at most `max` bytes.
    pub(super) fn with_max(max: usize) -> Self {
        Self {
            bytes: Vec::new(),
            max,
        }
    }

    /// Appends `bytes`.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Raised<()> {
        if bytes.len() > self.max - self.bytes.len() {
            return Err(Raise::memory());
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    /// The bytes so far.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A library function that behaves as the C function it is written after: `f` checks its
/// arguments as lauxlib does ([`Args`]) and fails with the C code's messages ([`Raise`]).
pub(super) fn c_function(
    lua: &Lua,
    f: fn(&Args<'_>) -> Raised<MultiValue>,
) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args = Args {
            lua,
            values: args.into_iter().collect(),
        };
        f(&args).map_err(|e| e.into_error(lua))
    })
}

/// `cjson.null`: the NULL light userdata, as lua-cjson's.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn cjson_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let encode_depth = Arc::new(AtomicUsize::new(CJSON_DEPTH_DEFAULT));
    let decode_depth = Arc::new(AtomicUsize::new(CJSON_DEPTH_DEFAULT));
    let invalid_numbers = Arc::new(AtomicBool::new(false));
    t.raw_set("null", null())?;
    {
        let (depth, invalid) = (encode_depth.clone(), invalid_numbers.clone());
        t.raw_set(
            "encode",
            lua.create_function(move |lua, value: Value| {
                let mut out = Vec::new();
                let opts = EncodeOptions {
                    depth_max: depth.load(Ordering::Relaxed),
                    invalid_numbers: invalid.load(Ordering::Relaxed),
                };
                encode(&value, &opts, 1, &mut out).map_err(mlua::Error::runtime)?;
                lua.create_string(out)
            })?,
        )?;
    }
    {
        let depth = decode_depth.clone();
        t.raw_set(
            "decode",
            lua.create_function(move |lua, text: mlua::String| {
                let bytes = text.as_bytes();
                let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                    mlua::Error::runtime(format!("Expected value but found invalid token: {e}"))
                })?;
                decode(lua, &json, 1, depth.load(Ordering::Relaxed))
            })?,
        )?;
    }
    let setting = |cell: Arc<AtomicUsize>| {
        lua.create_function(move |_, n: Option<i64>| {
            if let Some(n) = n {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| (1..=CJSON_DEPTH_MAX).contains(n))
                    .ok_or_else(|| {
                        mlua::Error::runtime(format!(
                            "bad argument #1 (expected integer between 1 and {CJSON_DEPTH_MAX})"
                        ))
                    })?;
                cell.store(n, Ordering::Relaxed);
            }
            Ok(cell.load(Ordering::Relaxed))
        })
    };
    t.raw_set("encode_max_depth", setting(encode_depth)?)?;
    t.raw_set("decode_max_depth", setting(decode_depth)?)?;
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |_, on: Option<Value>| {
            if let Some(on) = on {
                invalid_numbers.store(
                    matches!(on, Value::Boolean(true))
                        || matches!(&on, Value::String(s) if s.as_bytes().as_ref() == b"on"),
                    Ordering::Relaxed,
                );
            }
            Ok(invalid_numbers.load(Ordering::Relaxed))
        })?,
    )?;
    // Options about lua-cjson's internal buffers and number text, accepted for compatibility.
    for name in [
        "encode_keep_buffer",
        "encode_number_precision",
        "decode_invalid_numbers",
        "encode_sparse_array",
    ] {
        t.raw_set(name, lua.create_function(|_, _: MultiValue| Ok(true))?)?;
    }
    Ok(t)
}

/// A JSON string as lua-cjson writes it: serde_json's escapes, and `/` as `\/`. Bytes that are
/// not UTF-8 are replaced (lua-cjson copies them through, which is not JSON).
fn quote(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let quoted = serde_json::to_string(&text).map_err(|e| e.to_string())?;
    out.extend_from_slice(quoted.replace('/', "\\/").as_bytes());
    Ok(())
}

struct EncodeOptions {
    depth_max: usize,
    invalid_numbers: bool,
}

/// lua-cjson's text for `value`.
fn encode(
    value: &Value,
    opts: &EncodeOptions,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() && !opts.invalid_numbers {
                return Err("Cannot serialise number: must not be NaN or Infinity".to_owned());
            }
            let text = if n.is_nan() {
                "nan".to_owned()
            } else {
                lua_number_text(*n)
            };
            out.extend_from_slice(text.as_bytes());
        }
        Value::String(s) => quote(&s.as_bytes(), out)?,
        Value::Table(t) => {
            if depth > opts.depth_max {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            encode_table(t, opts, depth, out)?;
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ));
        }
    }
    Ok(())
}

fn encode_table(
    t: &Table,
    opts: &EncodeOptions,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let pairs: Vec<(Value, Value)> = t
        .pairs::<Value, Value>()
        .collect::<mlua::Result<_>>()
        .map_err(|e| e.to_string())?;
    // An array when every key is a positive integer and it is not excessively sparse
    // (lua-cjson's defaults: more than half empty past index 10).
    let mut max = 0usize;
    let array = pairs.iter().all(|(k, _)| {
        let n = match k {
            Value::Integer(n) => *n as f64,
            Value::Number(n) => *n,
            _ => return false,
        };
        if n >= 1.0 && n == n.trunc() && n < 1e15 {
            max = max.max(n as usize);
            true
        } else {
            false
        }
    });
    if array && max > 0 {
        if max > 10 && max > pairs.len() * 2 {
            return Err("Cannot serialise table: excessively sparse array".to_owned());
        }
        out.push(b'[');
        for i in 1..=max {
            if i > 1 {
                out.push(b',');
            }
            let v = t.raw_get::<Value>(i).map_err(|e| e.to_string())?;
            encode(&v, opts, depth + 1, out)?;
        }
        out.push(b']');
        return Ok(());
    }
    out.push(b'{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let key = match k {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            Value::Integer(n) => n.to_string(),
            Value::Number(n) => lua_number_text(*n),
            _ => {
                return Err(
                    "Cannot serialise table: table key must be a number or string".to_owned(),
                );
            }
        };
        quote(key.as_bytes(), out)?;
        out.push(b':');
        encode(v, opts, depth + 1, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON value as lua-cjson decodes it: objects and arrays to tables, null to `cjson.null`.
fn decode(
    lua: &Lua,
    json: &serde_json::Value,
    depth: usize,
    depth_max: usize,
) -> mlua::Result<Value> {
    use serde_json::Value as J;
    let nested = |depth: usize| {
        if depth > depth_max {
            Err(mlua::Error::runtime(format!(
                "Found too many nested data structures ({depth})"
            )))
        } else {
            Ok(())
        }
    };
    Ok(match json {
        J::Null => null(),
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            nested(depth)?;
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, decode(lua, item, depth + 1, depth_max)?)?;
            }
            Value::Table(t)
        }
        J::Object(map) => {
            nested(depth)?;
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                t.raw_set(k.as_str(), decode(lua, v, depth + 1, depth_max)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A number as LuaBitOp normalises it: rounded, taken modulo 2^32, as a signed 32-bit integer.
fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let r = n.round_ties_even().rem_euclid(4_294_967_296.0);
    (r as u64 as u32) as i32
}

fn bit_args(args: &MultiValue) -> mlua::Result<Vec<i32>> {
    args.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Integer(n) => Ok(tobit(*n as f64)),
            Value::Number(n) => Ok(tobit(*n)),
            Value::String(s) => s
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(tobit)
                .ok_or_else(|| {
                    mlua::Error::runtime(format!("bad argument #{} (number expected)", i + 1))
                }),
            _ => Err(mlua::Error::runtime(format!(
                "bad argument #{} (number expected, got {})",
                i + 1,
                v.type_name()
            ))),
        })
        .collect()
}

fn bit_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fold = |f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let v = bit_args(&args)?;
            let (first, rest) = v.split_first().ok_or_else(|| {
                mlua::Error::runtime("bad argument #1 (number expected, got no value)")
            })?;
            Ok(f64::from(rest.iter().fold(*first, |a, b| f(a, *b))))
        })
    };
    t.raw_set("band", fold(|a, b| a & b)?)?;
    t.raw_set("bor", fold(|a, b| a | b)?)?;
    t.raw_set("bxor", fold(|a, b| a ^ b)?)?;
    let unary = |f: fn(i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let v = bit_args(&args)?;
            let x = v.first().ok_or_else(|| {
                mlua::Error::runtime("bad argument #1 (number expected, got no value)")
            })?;
            Ok(f64::from(f(*x)))
        })
    };
    t.raw_set("tobit", unary(|x| x)?)?;
    t.raw_set("bnot", unary(|x| !x)?)?;
    t.raw_set("bswap", unary(i32::swap_bytes)?)?;
    let shift = |f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let v = bit_args(&args)?;
            match v.as_slice() {
                [x, n, ..] => Ok(f64::from(f(*x, (*n as u32) & 31))),
                _ => Err(mlua::Error::runtime(
                    "bad argument #2 (number expected, got no value)",
                )),
            }
        })
    };
    t.raw_set("lshift", shift(|x, n| ((x as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift(|x, n| ((x as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift(|x, n| x >> n)?)?;
    t.raw_set("rol", shift(|x, n| (x as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift(|x, n| (x as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|lua, args: MultiValue| {
            let v = bit_args(&args)?;
            let x = v.first().ok_or_else(|| {
                mlua::Error::runtime("bad argument #1 (number expected, got no value)")
            })?;
            let n = v.get(1).copied().unwrap_or(8);
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let full = if upper {
                format!("{:08X}", *x as u32)
            } else {
                format!("{:08x}", *x as u32)
            };
            lua.create_string(&full[8 - digits..])
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::tobit;

    #[test]
    fn tobit_wraps_as_luabitop_does() {
        assert_eq!(tobit(1.0), 1);
        assert_eq!(tobit(4_294_967_295.0), -1);
        assert_eq!(tobit(2_147_483_648.0), i32::MIN);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(f64::NAN), 0);
    }
}
