//! Replies to Lua values and back, as Redis 7.0 converts them (`redisProtocolToLuaType`,
//! `luaReplyToRedisReply`).
//!
//! Reply → Lua, RESP2 (the default): integer → number, bulk → string, null → `false`, array →
//! table, status → `{ok = …}`, error → `{err = …}`; a RESP3-only reply arrives as RESP2 sends
//! it (a map as a flat array, a double as its text). After `redis.setresp(3)`: null → `nil`,
//! boolean → boolean, double → `{double = n}`, map → `{map = {…}}`, set → `{set = {k = true}}`,
//! big number → `{big_number = "…"}`, verbatim → `{verbatim_string = {format, string}}`.
//!
//! Lua → reply: string → bulk, number → integer (truncated), `true` → 1 and `false` → null
//! (RESP3: booleans), a table with `err`/`ok`/`double`/`big_number`/`verbatim_string`/`map`/
//! `set` → that reply, any other table → the array of its items 1, 2, … up to the first nil;
//! anything else → null.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::cache::resp::frame::{FRAME_DEPTH_MAX, Frame, format_double};

/// Deepest nesting of a script's reply: a table that contains itself becomes arrays nested this
/// deep around Redis's "reached lua stack limit" error, as Redis ends it at its Lua stack
/// limit. Kept below [`FRAME_DEPTH_MAX`] (the nesting this crate's own reply decoder reads):
/// replies are encoded and dropped recursively.
pub const REPLY_DEPTH_MAX: usize = FRAME_DEPTH_MAX - 4;

/// `{err = text}`.
pub(crate) fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(Value::Table(t))
}

/// A reply as the Lua value a script sees.
pub(crate) fn to_lua(lua: &Lua, frame: Frame, resp3: bool) -> mlua::Result<Value> {
    let single = |key: &str, value: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(key, value)?;
        Ok(Value::Table(t))
    };
    let string = |bytes: &[u8]| lua.create_string(bytes).map(Value::String);
    let array = |items: Vec<Frame>| -> mlua::Result<Value> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.into_iter().enumerate() {
            t.raw_set(i + 1, to_lua(lua, item, resp3)?)?;
        }
        Ok(Value::Table(t))
    };
    Ok(match frame {
        Frame::Simple(s) => single("ok", string(s.as_bytes())?)?,
        Frame::Error(e) => single("err", string(e.as_bytes())?)?,
        Frame::Integer(n) => Value::Number(n as f64),
        Frame::Bulk(b) => string(&b)?,
        Frame::Null | Frame::NullArray if resp3 => Value::Nil,
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) | Frame::Push(items) => array(items)?,
        Frame::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(to_lua(lua, item, resp3)?, true)?;
            }
            single("set", Value::Table(set))?
        }
        Frame::Set(items) => array(items)?,
        Frame::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(to_lua(lua, k, resp3)?, to_lua(lua, v, resp3)?)?;
            }
            single("map", Value::Table(map))?
        }
        Frame::Map(pairs) => array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())?,
        Frame::Double(d) if resp3 => single("double", Value::Number(d))?,
        Frame::Double(d) => string(format_double(d).as_bytes())?,
        Frame::Boolean(b) if resp3 => Value::Boolean(b),
        Frame::Boolean(b) => Value::Number(f64::from(u8::from(b))),
        Frame::BigNumber(s) if resp3 => single("big_number", string(s.as_bytes())?)?,
        Frame::BigNumber(s) => string(s.as_bytes())?,
        Frame::Verbatim(b) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(&b)?)?;
            single("verbatim_string", Value::Table(v))?
        }
        Frame::Verbatim(b) => string(&b)?,
    })
}

/// A script's return value as a reply; `resp3` is the protocol the script last chose.
pub(crate) fn to_frame(value: &Value, resp3: bool) -> Frame {
    to_frame_at(value, resp3, 0)
}

fn to_frame_at(value: &Value, resp3: bool, depth: usize) -> Frame {
    if depth > REPLY_DEPTH_MAX {
        return Frame::error("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Frame::Boolean(*b),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) => Frame::Null,
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(*n as i64),
        Value::Table(t) => table_to_frame(t, resp3, depth),
        _ => Frame::Null,
    }
}

fn table_to_frame(t: &Table, resp3: bool, depth: usize) -> Frame {
    let field = |key: &str| t.raw_get::<Value>(key).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        let text = e.to_string_lossy();
        return Frame::error(one_line(text.strip_prefix('-').unwrap_or(&text)));
    }
    if let Value::String(ok) = field("ok") {
        return Frame::Simple(one_line(&ok.to_string_lossy()).into());
    }
    match field("double") {
        Value::Number(d) => return Frame::Double(d),
        Value::Integer(n) => return Frame::Double(n as f64),
        _ => {}
    }
    if let Value::String(n) = field("big_number") {
        return Frame::BigNumber(one_line(&n.to_string_lossy()));
    }
    if let Value::Table(v) = field("verbatim_string")
        && let (Ok(Value::String(_)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
    {
        return Frame::Verbatim(Bytes::copy_from_slice(&s.as_bytes()));
    }
    if let Value::Table(map) = field("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| {
                (
                    to_frame_at(&k, resp3, depth + 1),
                    to_frame_at(&v, resp3, depth + 1),
                )
            })
            .collect();
        return Frame::Map(pairs);
    }
    if let Value::Table(set) = field("set") {
        let items = set
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, _)| to_frame_at(&k, resp3, depth + 1))
            .collect();
        return Frame::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_frame_at(&v, resp3, depth + 1)),
        }
    }
    Frame::Array(items)
}

/// `text` with CR and LF as spaces (a status or error reply is one line).
pub(crate) fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// A number as Lua's `tostring` writes it (`%.14g`).
pub(crate) fn lua_number_text(n: f64) -> String {
    if n.is_nan() {
        return "nan".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if n == n.trunc() && n.abs() < 1e14 {
        return format!("{}", n as i64);
    }
    let sci = format!("{n:.13e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if (-4..14).contains(&exp) {
        let decimals = usize::try_from(13 - exp).unwrap_or(0);
        trim(format!("{n:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim(mantissa.to_owned()),
            exp.unsigned_abs()
        )
    }
}

/// A value for an error message.
pub(crate) fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string_lossy(),
        Value::Number(n) => lua_number_text(*n),
        Value::Integer(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".to_owned(),
        other => other.type_name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::lua_number_text;

    #[test]
    fn numbers_print_as_lua_prints_them() {
        for (n, text) in [
            (0.0, "0"),
            (-5000.0, "-5000"),
            (0.0003, "0.0003"),
            (1023.2, "1023.2"),
            (0.1, "0.1"),
            (1e100, "1e+100"),
            (123_456_789_012_345.0, "1.2345678901234e+14"),
            (1.5e-7, "1.5e-07"),
        ] {
            assert_eq!(lua_number_text(n), text, "{n}");
        }
    }
}
