//! Capability: the `cjson` library scripts get behaves as Redis 7.0.15's lua-cjson 2.1.0 at
//! its nesting limits — `encode_max_depth` and `decode_max_depth` (default 1000, settable up
//! to `INT_MAX`), the deepest nesting followed whatever the setting
//! ([`SCRIPT_CJSON_DEPTH_MAX`]), each tested at max and max+1 with lua-cjson's error texts —
//! and a table holding itself fails with an error instead of taking the server down; decoding
//! gives lua-cjson's values and parse errors (token names and character positions); wide
//! arrays and objects encode.
//! Method: scripts run by EVAL through `Cache::execute` — the path the RESP server's script
//! threads take — on a thread with a 2 MiB stack, the size of the threads that run scripts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::sync::Arc;

use bytes::Bytes;
use streamcache::cache::{Cache, CacheConfig, Frame, SCRIPT_CJSON_DEPTH_MAX as MAX};
use streamcache::clock::ManualClock;

/// The stack of the threads scripts run on (Rust's default for spawned threads, tokio's
/// blocking pool and the RESP thread).
const SCRIPT_THREAD_STACK_BYTES: usize = 2 * 1024 * 1024;

/// Runs each `(script, argv)` with EVAL on one cache, on a thread with a 2 MiB stack.
fn eval_all(scripts: &[(&str, &[&str])]) -> Vec<Frame> {
    let scripts: Vec<Vec<Bytes>> = scripts
        .iter()
        .map(|(script, argv)| {
            let mut args = vec![
                Bytes::from_static(b"EVAL"),
                Bytes::copy_from_slice(script.as_bytes()),
                Bytes::from_static(b"0"),
            ];
            args.extend(argv.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())));
            args
        })
        .collect();
    std::thread::Builder::new()
        .stack_size(SCRIPT_THREAD_STACK_BYTES)
        .spawn(move || {
            let cache = Cache::new(
                CacheConfig::default(),
                Arc::new(ManualClock::new(1_000_000)),
            );
            scripts.iter().map(|args| cache.execute(0, args)).collect()
        })
        .unwrap()
        .join()
        .expect("the script thread ends without overflowing its stack")
}

fn bulk(s: &str) -> Frame {
    Frame::bulk(s.as_bytes())
}

/// Builds `t`, `depth` tables nested through key `a` (objects) or index 1 (arrays), in Lua.
fn nested(depth: usize, object: bool) -> String {
    let link = if object { "cur.a = n" } else { "cur[1] = n" };
    format!(
        "local t = {{}} local cur = t \
         for i = 2, {depth} do local n = {{}} {link} cur = n end "
    )
}

/// The error a call fails with, as `pcall` gives it.
fn pcall_error(call: &str) -> String {
    format!("local ok, e = pcall({call}) if ok then return 'no error' end return e")
}

#[test]
fn encoding_follows_nesting_to_the_maximum_and_fails_past_it() {
    let deepest = format!(
        "cjson.encode_max_depth(2147483647) {} return #cjson.encode(t)",
        nested(MAX, true)
    );
    let past = format!(
        "cjson.encode_max_depth(2147483647) {} {}",
        nested(MAX + 1, true),
        pcall_error("cjson.encode, t")
    );
    let arrays = format!(
        "cjson.encode_max_depth(2147483647) {} return #cjson.encode(t)",
        nested(MAX, false)
    );
    let arrays_past = format!(
        "cjson.encode_max_depth(2147483647) {} {}",
        nested(MAX + 1, false),
        pcall_error("cjson.encode, t")
    );
    // A table holding itself, with a limit far past the maximum.
    let itself = format!(
        "cjson.encode_max_depth(10000) local t = {{}} t[1] = t {}",
        pcall_error("cjson.encode, t")
    );
    let replies = eval_all(&[
        (&deepest, &[]),
        (&past, &[]),
        (&arrays, &[]),
        (&arrays_past, &[]),
        (&itself, &[]),
    ]);
    // `{"a":` and `}` for each level but the innermost, `{}`.
    let len = 6 * (MAX - 1) + 2;
    let excessive = |n: usize| bulk(&format!("Cannot serialise, excessive nesting ({n})"));
    assert_eq!(replies[0], Frame::Integer(i64::try_from(len).unwrap()));
    assert_eq!(replies[1], excessive(MAX + 1));
    // `[` and `]` for each level but the innermost, an empty table: `{}`.
    let len = 2 * (MAX - 1) + 2;
    assert_eq!(replies[2], Frame::Integer(i64::try_from(len).unwrap()));
    assert_eq!(replies[3], excessive(MAX + 1));
    assert_eq!(replies[4], excessive(MAX + 1));
}

#[test]
fn encoding_stops_at_the_encode_max_depth_setting() {
    let at = |depth: usize| format!("{} return #cjson.encode(t)", nested(depth, true));
    let past = |depth: usize| format!("{} {}", nested(depth, true), pcall_error("cjson.encode, t"));
    let (default_at, default_past) = (at(1000), past(1001));
    let lowered_at = format!("cjson.encode_max_depth(3) {}", at(3));
    let lowered_past = format!("cjson.encode_max_depth(3) {}", past(4));
    let replies = eval_all(&[
        (&default_at, &[]),
        (&default_past, &[]),
        (&lowered_at, &[]),
        (&lowered_past, &[]),
        ("return cjson.encode_max_depth()", &[]),
    ]);
    assert_eq!(replies[0], Frame::Integer(6 * 999 + 2));
    assert_eq!(
        replies[1],
        bulk("Cannot serialise, excessive nesting (1001)")
    );
    assert_eq!(replies[2], Frame::Integer(6 * 2 + 2));
    assert_eq!(replies[3], bulk("Cannot serialise, excessive nesting (4)"));
    // Each script's Lua state keeps the setting of the script before it (as Redis's does).
    assert_eq!(replies[4], Frame::Integer(3));
}

#[test]
fn decoding_follows_nesting_to_the_maximum_and_fails_past_it() {
    // Walks the decoded nesting and returns its depth.
    let depth_of = "local d, cur = 0, t \
                    while type(cur) == 'table' do d = d + 1 cur = cur.a or cur[1] end \
                    return d";
    let objects = |n: usize| format!("{}{{}}{}", "{\"a\":".repeat(n - 1), "}".repeat(n - 1));
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let decode =
        format!("cjson.decode_max_depth(2147483647) local t = cjson.decode(ARGV[1]) {depth_of}");
    let refuse = format!(
        "cjson.decode_max_depth(2147483647) {}",
        pcall_error("cjson.decode, ARGV[1]")
    );
    let (obj_at, obj_past) = (objects(MAX), objects(MAX + 1));
    let (arr_at, arr_past) = (arrays(MAX), arrays(MAX + 1));
    let replies = eval_all(&[
        (&decode, &[&obj_at]),
        (&refuse, &[&obj_past]),
        (&decode, &[&arr_at]),
        (&refuse, &[&arr_past]),
    ]);
    let max = i64::try_from(MAX).unwrap();
    assert_eq!(replies[0], Frame::Integer(max));
    // The character is the one after the bracket that opened one level too many.
    assert_eq!(
        replies[1],
        bulk(&format!(
            "Found too many nested data structures ({}) at character {}",
            MAX + 1,
            5 * MAX + 1
        ))
    );
    assert_eq!(replies[2], Frame::Integer(max));
    assert_eq!(
        replies[3],
        bulk(&format!(
            "Found too many nested data structures ({}) at character {}",
            MAX + 1,
            MAX + 1
        ))
    );
}

#[test]
fn decoding_stops_at_the_decode_max_depth_setting() {
    let count = "local t, d = cjson.decode(ARGV[1]), 0 \
                 while type(t) == 'table' do d = d + 1 t = t[1] end return d";
    let refuse = pcall_error("cjson.decode, ARGV[1]");
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let (at, past) = (arrays(1000), arrays(1001));
    // Past serde_json's 128 levels, which a decoder built on it could not follow.
    let deep = arrays(200);
    let lowered = format!("cjson.decode_max_depth(2) {refuse}");
    let replies = eval_all(&[
        (count, &[&at]),
        (&refuse, &[&past]),
        (count, &[&deep]),
        (&lowered, &[r#"{"a":[[]]}"#]),
        ("return cjson.decode_max_depth()", &[]),
    ]);
    assert_eq!(replies[0], Frame::Integer(1000));
    assert_eq!(
        replies[1],
        bulk("Found too many nested data structures (1001) at character 1001")
    );
    assert_eq!(replies[2], Frame::Integer(200));
    assert_eq!(
        replies[3],
        bulk("Found too many nested data structures (3) at character 7")
    );
    assert_eq!(replies[4], Frame::Integer(2));
}

#[test]
fn depth_settings_take_what_lua_cjson_takes() {
    let replies = eval_all(&[
        ("return cjson.encode_max_depth(2147483647)", &[]),
        (&pcall_error("cjson.encode_max_depth, 0"), &[]),
        // Stored in a C int, 2^31 is negative: refused.
        (&pcall_error("cjson.decode_max_depth, 2147483648"), &[]),
        (&pcall_error("cjson.decode_max_depth, 'x'"), &[]),
        (&pcall_error("cjson.encode_max_depth, 1, 2"), &[]),
        ("return cjson.decode_max_depth(nil)", &[]),
    ]);
    assert_eq!(replies[0], Frame::Integer(2_147_483_647));
    assert_eq!(
        replies[1],
        bulk("bad argument #1 to '?' (expected integer between 1 and 2147483647)")
    );
    assert_eq!(
        replies[2],
        bulk("bad argument #1 to '?' (expected integer between 1 and 2147483647)")
    );
    assert_eq!(
        replies[3],
        bulk("bad argument #1 to '?' (number expected, got string)")
    );
    assert_eq!(
        replies[4],
        bulk("bad argument #2 to '?' (found too many arguments)")
    );
    assert_eq!(replies[5], Frame::Integer(1000));
}

#[test]
fn decoding_errors_name_the_token_and_its_character() {
    let cases: &[(&str, &str)] = &[
        ("", "Expected value but found T_END at character 1"),
        ("  ", "Expected value but found T_END at character 3"),
        ("[1,]", "Expected value but found T_ARR_END at character 4"),
        (
            "[1 2]",
            "Expected comma or array end but found T_NUMBER at character 4",
        ),
        (
            "{1:2}",
            "Expected object key string but found T_NUMBER at character 2",
        ),
        (
            "{\"a\" 1}",
            "Expected colon but found T_NUMBER at character 6",
        ),
        (
            "{\"a\":1 \"b\"}",
            "Expected comma or object end but found T_STRING at character 8",
        ),
        (
            "{\"a\":1,}",
            "Expected object key string but found T_OBJ_END at character 8",
        ),
        (
            "[1] x",
            "Expected the end but found invalid token at character 5",
        ),
        (
            "[1] 2",
            "Expected the end but found T_NUMBER at character 5",
        ),
        (
            "tru",
            "Expected value but found invalid token at character 1",
        ),
        (
            "\"abc",
            "Expected value but found unexpected end of string at character 5",
        ),
        (
            "\"a\\qb\"",
            "Expected value but found invalid escape code at character 3",
        ),
        (
            "\"\\u12x4\"",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "\"\\udc00\"",
            "Expected value but found invalid unicode escape code at character 2",
        ),
        (
            "-",
            "Expected value but found invalid number at character 1",
        ),
        (
            ".5",
            "Expected value but found invalid token at character 1",
        ),
    ];
    let script = pcall_error("cjson.decode, ARGV[1]");
    let scripts: Vec<(&str, &[&str])> = cases
        .iter()
        .map(|(text, _)| (script.as_str(), std::slice::from_ref(text)))
        .collect();
    let replies = eval_all(&scripts);
    for ((text, want), got) in cases.iter().zip(replies) {
        assert_eq!(got, bulk(want), "{text:?}");
    }
}

#[test]
fn decoding_gives_lua_cjsons_values() {
    let show = "local function show(v) \
                  if type(v) ~= 'table' then return tostring(v) end \
                  local parts = {} \
                  for i = 1, #v do parts[i] = show(v[i]) end \
                  return '[' .. table.concat(parts, ',') .. ']' \
                end \
                return show(cjson.decode(ARGV[1]))";
    let cases: &[(&str, &str)] = &[
        (
            "[1, -2.5, 1e3, 1E-2, 0x10, -0x1p4, 007, +3, 1.]",
            "[1,-2.5,1000,0.01,16,-16,7,3,1]",
        ),
        ("[true, false, \"x\\/y\\n\"]", "[true,false,x/y\n]"),
        ("[-inf, Infinity, 1e400]", "[-inf,inf,inf]"),
        ("\"\\u00e9\\ud83d\\ude00\"", "\u{e9}\u{1f600}"),
        (" [ [ ] , [ [ ] ] ] ", "[[],[[]]]"),
        ("\"tab\there\"", "tab\there"),
    ];
    let scripts: Vec<(&str, &[&str])> = cases
        .iter()
        .map(|(text, _)| (show, std::slice::from_ref(text)))
        .collect();
    let replies = eval_all(&scripts);
    for ((text, want), got) in cases.iter().zip(replies) {
        assert_eq!(got, bulk(want), "{text:?}");
    }
    let replies = eval_all(&[(
        "local t = cjson.decode(ARGV[1]) \
         return {t.a, tostring(t.n == cjson.null), t.e.x, t.b and 1 or 0}",
        &[r#"{"a":"1","n":null,"e":{"x":"y"},"b":true,"a":"2"}"#],
    )]);
    assert_eq!(
        replies[0],
        Frame::Array(vec![bulk("2"), bulk("true"), bulk("y"), Frame::Integer(1)])
    );
}

#[test]
fn wide_tables_encode() {
    let replies = eval_all(&[
        (
            "local t = {} for i = 1, 20000 do t[i] = 'x' .. i end \
             local s = cjson.encode(t) return {#s, string.sub(s, 1, 12)}",
            &[],
        ),
        (
            "local t = {} for i = 1, 20000 do t['k' .. i] = {i} end \
             local back = cjson.decode(cjson.encode(t)) \
             local n = 0 for k, v in pairs(back) do n = n + v[1] end return n",
            &[],
        ),
        ("return cjson.encode({[true] = 1})", &[]),
        ("return cjson.encode({1, 2, {a = 'x/y'}, {}})", &[]),
    ]);
    // `"x1"` … `"x20000"`, commas and brackets.
    let digits: usize = (1..=20000usize).map(|i| i.to_string().len()).sum();
    let len = 3 * 20000 + digits + 19999 + 2;
    assert_eq!(
        replies[0],
        Frame::Array(vec![
            Frame::Integer(i64::try_from(len).unwrap()),
            bulk(r#"["x1","x2",""#)
        ])
    );
    assert_eq!(replies[1], Frame::Integer(20000 * 20001 / 2));
    let Frame::Error(e) = &replies[2] else {
        panic!("{:?}", replies[2])
    };
    assert!(
        e.starts_with(
            "ERR user_script:1: Cannot serialise boolean: table key must be a number or string"
        ),
        "{e}"
    );
    assert_eq!(replies[3], bulk(r#"[1,2,{"a":"x\/y"},{}]"#));
}

/// An uncaught cjson error carries the position of the script line that called it, as
/// lua-cjson raises every error with `luaL_error`; caught by `pcall` (a C caller) it has none.
/// Texts are `redis-server` 7.0.15's.
#[test]
fn uncaught_errors_name_the_calling_line_as_lual_error_does() {
    let cases: &[(&str, &str)] = &[
        (
            "return cjson.encode({f=function() end})",
            "Cannot serialise function: type not supported",
        ),
        (
            "return cjson.encode({[1]=1,[100]=2})",
            "Cannot serialise table: excessively sparse array",
        ),
        (
            "return cjson.encode(0/0)",
            "Cannot serialise number: must not be NaN or Inf",
        ),
        (
            "return cjson.decode('[[[')",
            "Expected value but found T_END at character 4",
        ),
        (
            "cjson.decode_max_depth(1) return cjson.decode('[[1]]')",
            "Found too many nested data structures (2) at character 2",
        ),
        (
            "return cjson.decode(string.char(0,1))",
            "JSON parser does not support UTF-16 or UTF-32",
        ),
        (
            "cjson.encode_max_depth(1) return cjson.encode({{1}})",
            "Cannot serialise, excessive nesting (2)",
        ),
        (
            "return cjson.encode({[true]=1})",
            "Cannot serialise boolean: table key must be a number or string",
        ),
    ];
    let scripts: Vec<(&str, &[&str])> = cases.iter().map(|(s, _)| (*s, &[][..])).collect();
    let replies = eval_all(&scripts);
    for ((script, text), reply) in cases.iter().zip(replies) {
        let sha = streamcache::cache::script_sha1(script);
        assert_eq!(
            reply,
            Frame::Error(format!(
                "ERR user_script:1: {text} script: {sha}, on @user_script:1."
            )),
            "{script}"
        );
    }
    let caught = eval_all(&[(&pcall_error("cjson.decode, '{'"), &[])]);
    assert_eq!(
        caught,
        vec![Frame::bulk(
            b"Expected object key string but found T_END at character 2"
        )]
    );
}
