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
/// `decode_max_depth` change it).
const CJSON_DEPTH_DEFAULT: usize = 1000;
/// The largest nesting limit `encode_max_depth` and `decode_max_depth` accept: lua-cjson's,
/// `INT_MAX`.
const CJSON_DEPTH_SETTING_MAX: usize = i32::MAX as usize;
/// Deepest nesting `cjson.encode` and `cjson.decode` follow, whatever the settings say: one
/// level more fails with lua-cjson's nesting error, as lua-cjson's check of the Lua stack makes
/// it fail in Redis (there at about 4000 levels of objects and 8000 of arrays; the default
/// setting, 1000, stops both sooner). Both walk the nesting with a stack of their own, so the
/// thread's stack does not bound the depth; what does is that each open level holds one or two
/// of the Lua state's about 8000 mlua references.
pub const CJSON_DEPTH_MAX: usize = 2000;

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

    /// The bytes, taken out.
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.bytes
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
    f: impl Fn(&Args<'_>) -> Raised<MultiValue> + Send + 'static,
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
    // Lua's own `next`, taken before any script runs (a script cannot change what cjson uses).
    let next: Function = lua.globals().raw_get("next")?;
    t.raw_set("null", null())?;
    {
        let (depth, invalid) = (encode_depth.clone(), invalid_numbers.clone());
        t.raw_set(
            "encode",
            lua.create_function(move |lua, value: Value| {
                let opts = EncodeOptions {
                    depth_max: depth.load(Ordering::Relaxed),
                    invalid_numbers: invalid.load(Ordering::Relaxed),
                };
                let out = encode(lua, value, &opts, &next).map_err(|e| e.into_error(lua))?;
                lua.create_string(out)
            })?,
        )?;
    }
    {
        let depth = decode_depth.clone();
        t.raw_set(
            "decode",
            lua.create_function(move |lua, text: mlua::String| {
                decode(lua, &text.as_bytes(), depth.load(Ordering::Relaxed))
                    .map_err(|e| e.into_error(lua))
            })?,
        )?;
    }
    t.raw_set("encode_max_depth", depth_setting(lua, encode_depth)?)?;
    t.raw_set("decode_max_depth", depth_setting(lua, decode_depth)?)?;
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

/// `cjson.encode_max_depth` / `cjson.decode_max_depth` over `cell`, as lua-cjson's
/// `json_integer_option`: no argument or nil reads the setting; otherwise the argument is
/// taken as a C `int` (truncated, as the C assignment does) and must be 1 to `INT_MAX`
/// ([`CJSON_DEPTH_SETTING_MAX`]). Returns the setting.
fn depth_setting(lua: &Lua, cell: Arc<AtomicUsize>) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let args = Args {
            lua,
            values: args.into_iter().collect(),
        };
        let set = || -> Raised<()> {
            if args.len() > 1 {
                return Err(args.arg_error(2, b"found too many arguments"));
            }
            if matches!(args.get(1), None | Some(Value::Nil)) {
                return Ok(());
            }
            // lua-cjson stores `luaL_checkinteger`'s value in an `int`.
            let value = i64::from(args.check_integer(1)? as i32);
            let n = usize::try_from(value)
                .ok()
                .filter(|n| (1..=CJSON_DEPTH_SETTING_MAX).contains(n))
                .ok_or_else(|| {
                    let message =
                        format!("expected integer between 1 and {CJSON_DEPTH_SETTING_MAX}");
                    args.arg_error(1, message.as_bytes())
                })?;
            cell.store(n, Ordering::Relaxed);
            Ok(())
        };
        set().map_err(|e| e.into_error(lua))?;
        Ok(cell.load(Ordering::Relaxed))
    })
}

/// A JSON string as lua-cjson writes it: serde_json's escapes, and `/` as `\/`. Bytes that are
/// not UTF-8 are replaced (lua-cjson copies them through, which is not JSON).
fn quote(bytes: &[u8], out: &mut Output) -> Raised<()> {
    let text = String::from_utf8_lossy(bytes);
    let quoted = serde_json::to_string(&text).map_err(|e| Raise::Runtime(e.to_string()))?;
    out.push(quoted.replace('/', "\\/").as_bytes())
}

struct EncodeOptions {
    depth_max: usize,
    invalid_numbers: bool,
}

/// A table being encoded, with where its walk stands.
enum EncodeLevel {
    /// A table encoded as an array: the index of the element to write next, and the last.
    Array {
        table: Table,
        next: usize,
        len: usize,
    },
    /// A table encoded as an object: the key written last (nil before the first), from which
    /// `next` goes on.
    Object { table: Table, key: Value },
}

/// lua-cjson's text for `value`. The nesting is walked with a stack of [`EncodeLevel`]s rather
/// than recursion, so how deep it goes does not depend on the thread's stack: a table deeper
/// than the `encode_max_depth` setting or [`CJSON_DEPTH_MAX`] fails with lua-cjson's "excessive
/// nesting" error. `next` is Lua's own, which walks an object without copying its pairs. The
/// text is an [`Output`]: a table reached many times (one holding itself, say) fails with Lua's
/// out-of-memory error once the text would pass what the Lua state may still allocate.
fn encode(lua: &Lua, value: Value, opts: &EncodeOptions, next: &Function) -> Raised<Vec<u8>> {
    let mut out = Output::for_state(lua);
    let mut levels: Vec<EncodeLevel> = Vec::new();
    let mut pending = Some(value);
    loop {
        match pending.take() {
            Some(Value::Table(table)) => {
                let depth = levels.len() + 1;
                if depth > opts.depth_max || depth > CJSON_DEPTH_MAX {
                    return Err(Raise::text(format!(
                        "Cannot serialise, excessive nesting ({depth})"
                    )));
                }
                let len = array_length(&table)?;
                if len > 0 {
                    out.push(b"[")?;
                    levels.push(EncodeLevel::Array {
                        table,
                        next: 1,
                        len,
                    });
                } else {
                    out.push(b"{")?;
                    levels.push(EncodeLevel::Object {
                        table,
                        key: Value::Nil,
                    });
                }
            }
            Some(scalar) => encode_scalar(&scalar, opts, &mut out)?,
            None => {}
        }
        let Some(level) = levels.last_mut() else {
            break;
        };
        let closed = match level {
            EncodeLevel::Array { table, next, len } => {
                if *next > *len {
                    Some(b"]")
                } else {
                    if *next > 1 {
                        out.push(b",")?;
                    }
                    pending = Some(table.raw_get(*next)?);
                    *next += 1;
                    None
                }
            }
            EncodeLevel::Object { table, key } => {
                let (k, v): (Value, Value) = next.call((table.clone(), key.clone()))?;
                if k.is_nil() {
                    Some(b"}")
                } else {
                    if !key.is_nil() {
                        out.push(b",")?;
                    }
                    encode_key(&k, opts, &mut out)?;
                    *key = k;
                    pending = Some(v);
                    None
                }
            }
        };
        if let Some(end) = closed {
            out.push(end)?;
            levels.pop();
        }
    }
    Ok(out.into_bytes())
}

/// lua-cjson's `lua_array_length`: the largest key when every key is a positive integer and
/// the table is not excessively sparse (its defaults: more than half empty past index 10 is an
/// error); 0 for a table encoded as an object (an empty one included).
fn array_length(table: &Table) -> Raised<usize> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in table.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Ok(0),
        };
        if !(n >= 1.0 && n == n.trunc() && n < 1e15) {
            return Ok(0);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if max > 10 && max > items.saturating_mul(2) {
        return Err(Raise::text(
            "Cannot serialise table: excessively sparse array".to_owned(),
        ));
    }
    Ok(max)
}

/// The text of a number, refused when it is NaN or infinite unless `encode_invalid_numbers`.
fn number_text(n: f64, opts: &EncodeOptions) -> Raised<String> {
    if !n.is_finite() && !opts.invalid_numbers {
        return Err(Raise::text(
            "Cannot serialise number: must not be NaN or Inf".to_owned(),
        ));
    }
    Ok(if n.is_nan() {
        "nan".to_owned()
    } else {
        lua_number_text(n)
    })
}

/// lua-cjson's text for a value that is not a table.
fn encode_scalar(value: &Value, opts: &EncodeOptions, out: &mut Output) -> Raised<()> {
    match value {
        Value::Nil => out.push(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.push(b"null"),
        Value::Boolean(b) => out.push(if *b { b"true" } else { b"false" }),
        Value::Integer(n) => out.push(n.to_string().as_bytes()),
        Value::Number(n) => out.push(number_text(*n, opts)?.as_bytes()),
        Value::String(s) => quote(&s.as_bytes(), out),
        other => Err(Raise::text(format!(
            "Cannot serialise {}: type not supported",
            lua_type_name(other)
        ))),
    }
}

/// An object's key and its colon: a string, or a number as its text in quotes.
fn encode_key(key: &Value, opts: &EncodeOptions, out: &mut Output) -> Raised<()> {
    match key {
        Value::String(s) => quote(&s.as_bytes(), out)?,
        Value::Integer(n) => out.push(format!("\"{n}\"").as_bytes())?,
        Value::Number(n) => out.push(format!("\"{}\"", number_text(*n, opts)?).as_bytes())?,
        other => {
            return Err(Raise::text(format!(
                "Cannot serialise {}: table key must be a number or string",
                lua_type_name(other)
            )));
        }
    }
    out.push(b":")
}

/// A token of lua-cjson's decoder.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// Text that is no token, with lua-cjson's description of it.
    Error(&'static str),
}

impl Token {
    /// How lua-cjson's errors name it.
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

/// lua-cjson's tokenizer (`json_next_token`) over the text up to its first NUL (lua-cjson
/// reads a C string), with its default `decode_invalid_numbers`: a number is whatever C's
/// `strtod` reads, so `0x10`, `-inf`, `NaN` and `+1` decode too.
struct Lexer<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// The byte at `i`, NUL past the end (where the C string ends).
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn rest(&self) -> &[u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// The next token and its index (for an error token, where the error is).
    fn next_token(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let single = match self.at(start) {
            b'{' => Token::ObjBegin,
            b'}' => Token::ObjEnd,
            b'[' => Token::ArrBegin,
            b']' => Token::ArrEnd,
            b',' => Token::Comma,
            b':' => Token::Colon,
            0 => return (Token::End, start),
            b'"' => return self.string(),
            b'-' | b'0'..=b'9' => return self.number(),
            b't' if self.rest().starts_with(b"true") => {
                self.pos += 4;
                return (Token::Boolean(true), start);
            }
            b'f' if self.rest().starts_with(b"false") => {
                self.pos += 5;
                return (Token::Boolean(false), start);
            }
            b'n' if self.rest().starts_with(b"null") => {
                self.pos += 4;
                return (Token::Null, start);
            }
            b'+' => return self.number(),
            b'i' | b'I' | b'n' | b'N'
                if starts_with_ignore_case(self.rest(), b"inf")
                    || starts_with_ignore_case(self.rest(), b"nan") =>
            {
                return self.number();
            }
            _ => return (Token::Error("invalid token"), start),
        };
        self.pos += 1;
        (single, start)
    }

    /// A string token (`json_next_string_token`): escapes decoded, other bytes as they are.
    fn string(&mut self) -> (Token, usize) {
        let start = self.pos;
        self.pos += 1;
        let mut s = Vec::new();
        loop {
            let c = self.at(self.pos);
            match c {
                b'"' => {
                    self.pos += 1;
                    return (Token::Str(s), start);
                }
                0 => return (Token::Error("unexpected end of string"), self.pos),
                b'\\' => {
                    let unescaped = match self.at(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape(&mut s).is_none() {
                                return (Token::Error("invalid unicode escape code"), self.pos);
                            }
                            continue;
                        }
                        _ => return (Token::Error("invalid escape code"), self.pos),
                    };
                    s.push(unescaped);
                    self.pos += 2;
                }
                _ => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `\uXXXX` at `pos` (a surrogate pair as two), appended as UTF-8
    /// (`json_append_unicode_escape`); `None`, reading nothing, when it is not a valid one.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let hex4 = |at: usize| -> Option<u32> {
            (0..4).try_fold(0u32, |v, i| {
                Some(v * 16 + char::from(self.at(at + i)).to_digit(16)?)
            })
        };
        let mut code = hex4(self.pos + 2)?;
        let mut len = 6;
        if code & 0xF800 == 0xD800 {
            // A high surrogate, then a low one.
            if code & 0x400 != 0 || self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u'
            {
                return None;
            }
            let low = hex4(self.pos + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let c = char::from_u32(code)?;
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        self.pos += len;
        Some(())
    }

    /// A number token: what `strtod` reads at `pos`.
    fn number(&mut self) -> (Token, usize) {
        let start = self.pos;
        match strtod(self.rest()) {
            Some((n, used)) => {
                self.pos += used;
                (Token::Number(n), start)
            }
            None => (Token::Error("invalid number"), start),
        }
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// C's `strtod` at the start of `s` (which holds no leading space): the value and the bytes
/// read, `None` when no number starts there. Decimal and hexadecimal numbers, `inf`,
/// `infinity` and `nan` (any case, `nan(chars)` too), each after an optional sign.
fn strtod(s: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let (sign, i) = match at(0) {
        b'-' => (-1.0, 1),
        b'+' => (1.0, 1),
        _ => (1.0, 0),
    };
    let body = s.get(i..).unwrap_or_default();
    if starts_with_ignore_case(body, b"inf") {
        let len = if starts_with_ignore_case(body, b"infinity") {
            8
        } else {
            3
        };
        return Some((sign * f64::INFINITY, i + len));
    }
    if starts_with_ignore_case(body, b"nan") {
        let mut end = i + 3;
        if at(end) == b'(' {
            let mut j = end + 1;
            while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                j += 1;
            }
            if at(j) == b')' {
                end = j + 1;
            }
        }
        return Some((f64::NAN, end));
    }
    if at(i) == b'0' && at(i + 1) | 0x20 == b'x' {
        return Some(match hex_float(s.get(i + 2..).unwrap_or_default()) {
            Some((v, used)) => (sign * v, i + 2 + used),
            // "0x" with no hexadecimal digit after it: the "0".
            None => (sign * 0.0, i + 1),
        });
    }
    let mut j = i;
    while at(j).is_ascii_digit() {
        j += 1;
    }
    let mut digits = j - i;
    if at(j) == b'.' {
        let from = j + 1;
        j = from;
        while at(j).is_ascii_digit() {
            j += 1;
        }
        digits += j - from;
    }
    if digits == 0 {
        return None;
    }
    if at(j) | 0x20 == b'e' {
        let mut k = j + 1;
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        let from = k;
        while at(k).is_ascii_digit() {
            k += 1;
        }
        if k > from {
            j = k;
        }
    }
    let text = std::str::from_utf8(s.get(i..j)?).ok()?;
    Some((sign * text.parse::<f64>().ok()?, j))
}

/// The value of the hexadecimal digits (with an optional point and `p` exponent) at the start
/// of `s`, after "0x", and the bytes read; `None` without a digit.
fn hex_float(s: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let digit = |c: u8| char::from(c).to_digit(16).map(u64::from);
    let (mut mantissa, mut exp, mut any) = (0u64, 0i64, false);
    let mut j = 0;
    while let Some(d) = digit(at(j)) {
        if mantissa >> 56 == 0 {
            mantissa = mantissa * 16 + d;
        } else {
            exp += 4;
        }
        any = true;
        j += 1;
    }
    if at(j) == b'.' {
        let mut k = j + 1;
        while let Some(d) = digit(at(k)) {
            if mantissa >> 56 == 0 {
                mantissa = mantissa * 16 + d;
                exp -= 4;
            }
            any = true;
            k += 1;
        }
        if any {
            j = k;
        }
    }
    if !any {
        return None;
    }
    if at(j) | 0x20 == b'p' {
        let mut k = j + 1;
        let negative = at(k) == b'-';
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        let from = k;
        let mut e = 0i64;
        while at(k).is_ascii_digit() {
            e = (e * 10 + i64::from(at(k) - b'0')).min(100_000);
            k += 1;
        }
        if k > from {
            exp += if negative { -e } else { e };
            j = k;
        }
    }
    // Scaled in two steps, so a large mantissa with a very negative exponent keeps its value.
    let half = i32::try_from((exp / 2).clamp(-100_000, 100_000)).unwrap_or(0);
    let rest = i32::try_from((exp - exp / 2).clamp(-100_000, 100_000)).unwrap_or(0);
    Some((mantissa as f64 * 2f64.powi(half) * 2f64.powi(rest), j))
}

/// A table being decoded.
enum DecodeLevel {
    /// An array: how many elements it has so far.
    Array { table: Table, len: usize },
    /// An object: the key whose value comes next.
    Object { table: Table, key: Vec<u8> },
}

impl DecodeLevel {
    fn into_table(self) -> Table {
        match self {
            DecodeLevel::Array { table, .. } | DecodeLevel::Object { table, .. } => table,
        }
    }
}

/// lua-cjson's "Expected <what> but found <token> at character <n>".
fn parse_error(expected: &str, (token, index): &(Token, usize)) -> Raise {
    Raise::text(format!(
        "Expected {expected} but found {} at character {}",
        token.name(),
        index + 1
    ))
}

/// After `{` or `,` in an object: the key token `key` (a string, else lua-cjson's error), then
/// its colon.
fn object_key(lexer: &mut Lexer<'_>, key: (Token, usize)) -> Raised<Vec<u8>> {
    let (Token::Str(name), _) = key else {
        return Err(parse_error("object key string", &key));
    };
    let colon = lexer.next_token();
    if colon.0 != Token::Colon {
        return Err(parse_error("colon", &colon));
    }
    Ok(name)
}

/// A JSON text as lua-cjson decodes it: objects and arrays to tables, null to `cjson.null`,
/// with its error texts. The nesting is walked with a stack of [`DecodeLevel`]s rather than
/// recursion: a container deeper than `depth_max` (the `decode_max_depth` setting) or
/// [`CJSON_DEPTH_MAX`] fails with lua-cjson's "Found too many nested data structures".
fn decode(lua: &Lua, text: &[u8], depth_max: usize) -> Raised<Value> {
    if text.len() >= 2 && (text.first() == Some(&0) || text.get(1) == Some(&0)) {
        return Err(Raise::text(
            "JSON parser does not support UTF-16 or UTF-32".to_owned(),
        ));
    }
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let mut lexer = Lexer {
        data: text.get(..end).unwrap_or_default(),
        pos: 0,
    };
    let mut levels: Vec<DecodeLevel> = Vec::new();
    let mut token = lexer.next_token();
    loop {
        // `token` starts a value: a scalar, an empty container, or a container to descend into.
        let mut value = match token {
            (Token::Str(s), _) => Value::String(lua.create_string(&s)?),
            (Token::Number(n), _) => Value::Number(n),
            (Token::Boolean(b), _) => Value::Boolean(b),
            (Token::Null, _) => null(),
            (open @ (Token::ObjBegin | Token::ArrBegin), _) => {
                let depth = levels.len() + 1;
                if depth > depth_max || depth > CJSON_DEPTH_MAX {
                    return Err(Raise::text(format!(
                        "Found too many nested data structures ({depth}) at character {}",
                        lexer.pos
                    )));
                }
                let table = lua.create_table()?;
                let first = lexer.next_token();
                match (open, first) {
                    (Token::ObjBegin, (Token::ObjEnd, _)) | (_, (Token::ArrEnd, _)) => {
                        Value::Table(table)
                    }
                    (Token::ObjBegin, first) => {
                        let key = object_key(&mut lexer, first)?;
                        levels.push(DecodeLevel::Object { table, key });
                        token = lexer.next_token();
                        continue;
                    }
                    (_, first) => {
                        levels.push(DecodeLevel::Array { table, len: 0 });
                        token = first;
                        continue;
                    }
                }
            }
            other => return Err(parse_error("value", &other)),
        };
        // Store the value in its container; each container it ends closes, and is stored in
        // its own, until one goes on with a comma.
        loop {
            let Some(level) = levels.last_mut() else {
                let end = lexer.next_token();
                if end.0 != Token::End {
                    return Err(parse_error("the end", &end));
                }
                return Ok(value);
            };
            let array = match level {
                DecodeLevel::Array { table, len } => {
                    *len += 1;
                    table.raw_set(*len, value)?;
                    true
                }
                DecodeLevel::Object { table, key } => {
                    table.raw_set(lua.create_string(&*key)?, value)?;
                    false
                }
            };
            let after = lexer.next_token();
            let close = if array { Token::ArrEnd } else { Token::ObjEnd };
            if after.0 == close {
                let Some(done) = levels.pop() else {
                    return Err(parse_error("value", &after));
                };
                value = Value::Table(done.into_table());
                continue;
            }
            if after.0 != Token::Comma {
                let expected = if array {
                    "comma or array end"
                } else {
                    "comma or object end"
                };
                return Err(parse_error(expected, &after));
            }
            let next = lexer.next_token();
            if let Some(DecodeLevel::Object { key, .. }) = levels.last_mut() {
                *key = object_key(&mut lexer, next)?;
                token = lexer.next_token();
            } else {
                token = next;
            }
            break;
        }
    }
}

/// A number as LuaBitOp normalises it: rounded, taken modulo 2^32, as a signed 32-bit integer.
fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    let r = n.round_ties_even().rem_euclid(4_294_967_296.0);
    (r as u64 as u32) as i32
}

/// LuaBitOp's `barg`: argument `narg` by `luaL_checknumber` (its errors name the function and
/// the calling line), wrapped to 32 bits.
fn bit_arg(args: &Args<'_>, narg: usize) -> Raised<i32> {
    args.check_number(narg).map(tobit)
}

/// One number, as LuaBitOp returns its results.
fn bit_result(n: i32) -> Raised<MultiValue> {
    Ok(MultiValue::from_iter([Value::Number(f64::from(n))]))
}

/// A LuaBitOp operation of one operand.
type BitOp1 = fn(i32) -> i32;
/// A LuaBitOp operation of two operands.
type BitOp2 = fn(i32, i32) -> i32;
/// A LuaBitOp shift or rotation by a count of 0 to 31.
type BitShift = fn(i32, u32) -> i32;

/// `band`, `bor`, `bxor`: `op` folded over every argument (at least one).
fn bit_fold(args: &Args<'_>, op: BitOp2) -> Raised<MultiValue> {
    let mut acc = bit_arg(args, 1)?;
    for narg in 2..=args.len() {
        acc = op(acc, bit_arg(args, narg)?);
    }
    bit_result(acc)
}

/// `lshift`, `rshift`, `arshift`, `rol`, `ror`: the first argument by the second's low 5 bits.
fn bit_shift(args: &Args<'_>, op: BitShift) -> Raised<MultiValue> {
    let x = bit_arg(args, 1)?;
    let n = bit_arg(args, 2)?;
    bit_result(op(x, (n as u32) & 31))
}

fn bit_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let folds: [(&str, BitOp2); 3] = [
        ("band", |x, y| x & y),
        ("bor", |x, y| x | y),
        ("bxor", |x, y| x ^ y),
    ];
    for (name, op) in folds {
        t.raw_set(name, c_function(lua, move |a| bit_fold(a, op))?)?;
    }
    let unary: [(&str, BitOp1); 3] = [
        ("tobit", |x| x),
        ("bnot", |x| !x),
        ("bswap", i32::swap_bytes),
    ];
    for (name, op) in unary {
        t.raw_set(
            name,
            c_function(lua, move |a| bit_result(op(bit_arg(a, 1)?)))?,
        )?;
    }
    let shifts: [(&str, BitShift); 5] = [
        ("lshift", |x, n| ((x as u32) << n) as i32),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ];
    for (name, op) in shifts {
        t.raw_set(name, c_function(lua, move |a| bit_shift(a, op))?)?;
    }
    t.raw_set(
        "tohex",
        c_function(lua, |a| {
            let x = bit_arg(a, 1)?;
            let n = if a.len() >= 2 { bit_arg(a, 2)? } else { 8 };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let full = if upper {
                format!("{:08X}", x as u32)
            } else {
                format!("{:08x}", x as u32)
            };
            let text = a
                .lua
                .create_string(full.get(8 - digits..).unwrap_or_default())?;
            Ok(MultiValue::from_iter([Value::String(text)]))
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
