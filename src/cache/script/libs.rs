//! The libraries Redis gives scripts beside Lua's own, written here: `cjson` (JSON text to
//! and from Lua values, with lua-cjson's options and errors), `bit` (LuaBitOp's 32-bit
//! operations) and the host side of `redis.sha1hex` and `redis.log`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::convert::lua_number_text;

/// lua-cjson's default nesting limit, for both directions (its `encode_max_depth` and
/// `decode_max_depth` change it, up to [`CJSON_DEPTH_MAX`]).
const CJSON_DEPTH_DEFAULT: usize = 1000;
/// Deepest nesting a script may allow cjson.
pub(crate) const CJSON_DEPTH_MAX: usize = 10_000;

/// Installs `cjson` and `bit` as globals and `sha1hex`/`log` in `host`.
pub(crate) fn install(lua: &Lua, host: &Table) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson_table(lua)?)?;
    globals.raw_set("bit", bit_table(lua)?)?;
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
    Ok(())
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
