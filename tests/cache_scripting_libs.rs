//! Capability: the `cmsgpack` and `struct` libraries scripts get, as Redis 7.0.15 bundles them
//! (lua-cmsgpack 0.4.0 and struct.c 1.7): exact bytes for every MessagePack integer, float,
//! string, array and map size class, the nesting limit, unpacking with offsets and limits,
//! errors on short or malformed input; `struct` formats, alignment, byte order and its errors;
//! and each input-driven limit at its maximum and one past it.
//! Method: a real TCP client on an in-process RESP server, scripts run by EVAL; packed bytes
//! are compared as hex text or raw bulk replies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

use streamcache::cache::Frame;

mod resp_common;

use resp_common::{Conn, bulk};

fn start() -> resp_common::Server {
    resp_common::serve_manual().0
}

/// Lua helpers every script below starts with.
const PRELUDE: &str = "local function hex(s) \
     return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) \
   end \
   local function unhex(h) \
     return (string.gsub(h, '..', function(x) return string.char(tonumber(x, 16)) end)) \
   end ";

/// Runs `body` (after [`PRELUDE`]) with binary `argv`.
fn eval(c: &mut Conn, body: &str, argv: &[&[u8]]) -> Frame {
    let script = format!("{PRELUDE}{body}");
    let mut args: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), b"0"];
    args.extend_from_slice(argv);
    c.raw(&args)
}

/// The bulk text `body` returns.
fn text(c: &mut Conn, body: &str) -> String {
    match eval(c, body, &[]) {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("expected a bulk reply to {body}, got {other:?}"),
    }
}

/// The error text `body` fails with.
fn error(c: &mut Conn, body: &str, argv: &[&[u8]]) -> String {
    match eval(c, body, argv) {
        Frame::Error(e) => e,
        other => panic!("expected an error from {body}, got {other:?}"),
    }
}

/// Asserts that `body` fails with the C library's `message`, after the position of the
/// script's call (as `luaL_error` raises it) and followed by the script's position.
fn assert_fails(c: &mut Conn, body: &str, argv: &[&[u8]], message: &str) {
    let e = error(c, body, argv);
    assert!(
        e.starts_with(&format!("ERR user_script:1: {message} script: ")),
        "{body}: expected {message:?}, got {e:?}"
    );
}

/// The hex of `cmsgpack.pack(<lua>)`.
fn packed(c: &mut Conn, lua: &str) -> String {
    text(c, &format!("return hex(cmsgpack.pack({lua}))"))
}

#[test]
fn integers_pack_as_the_smallest_type_at_every_boundary() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for (n, hex) in [
        ("0", "00"),
        ("127", "7f"),
        ("128", "cc80"),
        ("255", "ccff"),
        ("256", "cd0100"),
        ("65535", "cdffff"),
        ("65536", "ce00010000"),
        ("4294967295", "ceffffffff"),
        ("4294967296", "cf0000000100000000"),
        ("2^53", "cf0020000000000000"),
        ("-1", "ff"),
        ("-32", "e0"),
        ("-33", "d0df"),
        ("-128", "d080"),
        ("-129", "d1ff7f"),
        ("-32768", "d18000"),
        ("-32769", "d2ffff7fff"),
        ("-2147483648", "d280000000"),
        ("-2147483649", "d3ffffffff7fffffff"),
        ("-1099511627776", "d3ffffff0000000000"),
        ("-2^63", "d38000000000000000"),
        // Not held by a 64-bit integer: floats (exact as float 32 here).
        ("2^63", "ca5f000000"),
        ("2^64", "ca5f800000"),
        // -0 is the integer 0.
        ("-0.0", "00"),
    ] {
        assert_eq!(packed(&mut c, n), hex, "pack({n})");
    }
}

#[test]
fn floats_pack_as_float32_when_exact_else_float64() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for (n, hex) in [
        ("0.5", "ca3f000000"),
        ("1.5", "ca3fc00000"),
        ("-0.5", "cabf000000"),
        ("0.1", "cb3fb999999999999a"),
        ("1e300", "cb7e37e43c8800759c"),
        ("1/0", "ca7f800000"),
        ("-1/0", "caff800000"),
    ] {
        assert_eq!(packed(&mut c, n), hex, "pack({n})");
    }
    // NaN is never equal to itself: float 64.
    assert_eq!(
        text(&mut c, "return string.sub(hex(cmsgpack.pack(0/0)), 1, 2)"),
        "cb"
    );
}

#[test]
fn strings_pack_with_the_header_of_their_length() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for (len, header) in [
        (0, "a0"),
        (1, "a1"),
        (31, "bf"),
        (32, "d920"),
        (255, "d9ff"),
        (256, "da0100"),
        (65535, "daffff"),
        (65536, "db00010000"),
        (100_000, "db000186a0"),
    ] {
        let body = format!(
            "local s = string.rep('x', {len}) local p = cmsgpack.pack(s) \
             assert(#p == {len} + {} and string.sub(p, -{len}) == s or {len} == 0) \
             return hex(string.sub(p, 1, {}))",
            header.len() / 2,
            header.len() / 2
        );
        assert_eq!(text(&mut c, &body), header, "length {len}");
    }
    // Bytes pass through unchanged.
    assert_eq!(
        eval(&mut c, "return cmsgpack.pack(ARGV[1])", &[b"\x00\xff"]),
        Frame::bulk(b"\xa2\x00\xff".as_slice())
    );
}

#[test]
fn tables_with_keys_one_to_n_are_arrays_and_others_maps() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for (lua, hex) in [
        ("{}", "90"),
        ("{1, 2, 3}", "93010203"),
        ("{'a', true, false}", "93a161c3c2"),
        ("{[1] = 1, [2] = 2}", "920102"),
        ("{1, nil, 3}", "8201010303"),
        ("{[0] = 1}", "810001"),
        ("{[1.5] = 1}", "81ca3fc0000001"),
        ("{[2] = 1}", "810201"),
        ("{a = 1}", "81a16101"),
        ("{[2^31] = 1}", "81ce8000000001"),
        ("{{}, {a = {}}}", "929081a16190"),
    ] {
        assert_eq!(packed(&mut c, lua), hex, "pack({lua})");
    }
    // Size classes of arrays and maps: fix up to 15, 16-bit from 16, 32-bit from 65536.
    for (n, array, map) in [
        (15, "9f", "8f"),
        (16, "dc0010", "de0010"),
        (65535, "dcffff", "deffff"),
        (65536, "dd00010000", "df00010000"),
    ] {
        let body = format!(
            "local a, m = {{}}, {{}} for i = 1, {n} do a[i] = 0 m['k' .. i] = 0 end \
             local pa, pm = cmsgpack.pack(a), cmsgpack.pack(m) \
             return hex(string.sub(pa, 1, {len})) .. ' ' .. hex(string.sub(pm, 1, {len}))",
            len = array.len() / 2
        );
        assert_eq!(text(&mut c, &body), format!("{array} {map}"), "{n} items");
    }
    // Other types pack as nil; several arguments are concatenated.
    assert_eq!(packed(&mut c, "nil"), "c0");
    assert_eq!(packed(&mut c, "type"), "c0");
    assert_eq!(packed(&mut c, "cjson.null"), "c0");
    assert_eq!(packed(&mut c, "1, 'a', {}, nil, true"), "01a16190c0c3");
}

/// A Lua expression: `n` tables each holding the next, the innermost empty.
fn nested(n: usize) -> String {
    format!("(function() local t = {{}} for _ = 2, {n} do t = {{t}} end return t end)()")
}

#[test]
fn nesting_packs_sixteen_tables_and_nil_below() {
    let server = start();
    let mut c = Conn::open(server.addr);
    assert_eq!(
        packed(&mut c, &nested(16)),
        format!("{}90", "91".repeat(15))
    );
    assert_eq!(
        packed(&mut c, &nested(17)),
        format!("{}c0", "91".repeat(16))
    );
    // A table holding itself packs as a copy 16 tables deep.
    assert_eq!(
        text(&mut c, "local t = {} t[1] = t return hex(cmsgpack.pack(t))"),
        format!("{}c0", "91".repeat(16))
    );
    // Map keys count as a level too.
    assert_eq!(
        packed(&mut c, &format!("{{[{}] = 1}}", nested(16))),
        format!("81{}c001", "91".repeat(15))
    );
}

#[test]
fn unpack_round_trips_and_decodes_every_type() {
    let server = start();
    let mut c = Conn::open(server.addr);
    let body = "local v = {1, -1, 127, 128, -33, 65536, -2147483649, 2^53, 0.5, 0.1, 'x', \
                string.rep('y', 300), true, false, {a = {1, 2}, b = {}}} \
                local u = cmsgpack.unpack(cmsgpack.pack(v)) \
                for i = 1, 14 do assert(u[i] == v[i], i) end \
                assert(u[15].a[1] == 1 and u[15].a[2] == 2 and next(u[15].b) == nil) \
                local n = select('#', cmsgpack.unpack(cmsgpack.pack(1, nil, 'z'))) \
                local a, b, z = cmsgpack.unpack(cmsgpack.pack(1, nil, 'z')) \
                return {n, a, tostring(b), z}";
    assert_eq!(
        eval(&mut c, body, &[]),
        Frame::Array(vec![
            Frame::Integer(3),
            Frame::Integer(1),
            bulk("nil"),
            bulk("z"),
        ])
    );
    // Each decoder type, as bytes.
    for (hex, value) in [
        ("00", "0"),
        ("7f", "127"),
        ("ff", "-1"),
        ("e0", "-32"),
        ("cc80", "128"),
        ("d080", "-128"),
        ("cdffff", "65535"),
        ("d18000", "-32768"),
        ("ceffffffff", "4294967295"),
        ("d280000000", "-2147483648"),
        ("cf0000000100000000", "4294967296"),
        // Past 2^63 - 1 an unsigned 64-bit value wraps negative, as a Lua integer.
        ("cfffffffffffffffff", "-1"),
        ("d3ffffffffffffffff", "-1"),
        ("ca3f000000", "0.5"),
        ("cb3fb999999999999a", "0.1"),
        ("c0", "nil"),
        ("c3", "true"),
        ("c2", "false"),
        ("a3616263", "abc"),
        ("d903616263", "abc"),
        ("da0003616263", "abc"),
        ("db00000003616263", "abc"),
    ] {
        let got = text(
            &mut c,
            &format!("return tostring(cmsgpack.unpack(unhex('{hex}')))"),
        );
        assert_eq!(got, value, "unpack({hex})");
    }
    // Arrays and maps of each size class: {1, 2} and {[1] = 3, [2] = 4}.
    for (hex, pairs) in [
        ("920102", "1=1 2=2"),
        ("dc00020102", "1=1 2=2"),
        ("dd000000020102", "1=1 2=2"),
        ("8201030204", "1=3 2=4"),
        ("de00020103 0204", "1=3 2=4"),
        ("df0000000201030204", "1=3 2=4"),
        // An array's nils leave holes.
        ("93c002c0", "2=2"),
    ] {
        let hex = hex.replace(' ', "");
        let got = text(
            &mut c,
            &format!(
                "local t = cmsgpack.unpack(unhex('{hex}')) local out = {{}} \
                 for k = 1, 3 do if t[k] ~= nil then out[#out + 1] = k .. '=' .. t[k] end end \
                 return table.concat(out, ' ')"
            ),
        );
        assert_eq!(got, pairs, "unpack({hex})");
    }
}

#[test]
fn unpack_one_and_unpack_limit_return_the_next_offset() {
    let server = start();
    let mut c = Conn::open(server.addr);
    // pack(1, 'ab', {1}) = 01 a26162 9101: values at offsets 0, 1 and 4 of 6 bytes.
    let returns = |c: &mut Conn, call: &str| {
        text(
            c,
            &format!(
                "local s = cmsgpack.pack(1, 'ab', {{1}}) local r = {{{call}}} local out = {{}} \
                 for i = 1, table.maxn(r) do \
                   out[i] = type(r[i]) == 'table' and ('{{' .. r[i][1] .. '}}') or tostring(r[i]) \
                 end \
                 return table.concat(out, ' ')"
            ),
        )
    };
    assert_eq!(returns(&mut c, "cmsgpack.unpack(s)"), "1 ab {1}");
    assert_eq!(returns(&mut c, "cmsgpack.unpack_one(s)"), "1 1");
    assert_eq!(returns(&mut c, "cmsgpack.unpack_one(s, 0)"), "1 1");
    assert_eq!(returns(&mut c, "cmsgpack.unpack_one(s, 1)"), "4 ab");
    assert_eq!(returns(&mut c, "cmsgpack.unpack_one(s, 4)"), "-1 {1}");
    assert_eq!(returns(&mut c, "cmsgpack.unpack_one(s, 6)"), "-1");
    assert_eq!(returns(&mut c, "cmsgpack.unpack_limit(s, 2)"), "4 1 ab");
    assert_eq!(
        returns(&mut c, "cmsgpack.unpack_limit(s, 2, 1)"),
        "-1 ab {1}"
    );
    assert_eq!(
        returns(&mut c, "cmsgpack.unpack_limit(s, 9, 1)"),
        "-1 ab {1}"
    );
    assert_eq!(returns(&mut c, "cmsgpack.unpack_limit(s, 0, 1)"), "1");
    // Limit and offset both 0: every value, and no offset.
    assert_eq!(
        returns(&mut c, "cmsgpack.unpack_limit(s, 0, 0)"),
        "1 ab {1}"
    );
    // An offset the length, or past it; a negative offset or limit (the C code prints the
    // length for the limit).
    assert_fails(
        &mut c,
        "return cmsgpack.unpack_one(cmsgpack.pack(1, 'ab', {1}), 7)",
        &[],
        "Start offset 7 greater than input length 6.",
    );
    assert_fails(
        &mut c,
        "return cmsgpack.unpack_one(cmsgpack.pack(1, 'ab', {1}), -1)",
        &[],
        "Invalid request to unpack with offset of -1 and limit of 6.",
    );
    assert_fails(
        &mut c,
        "return cmsgpack.unpack_limit(cmsgpack.pack(1, 'ab', {1}), -1)",
        &[],
        "Invalid request to unpack with offset of 0 and limit of 6.",
    );
    // lauxlib's argument errors.
    assert_fails(
        &mut c,
        "return cmsgpack.unpack_limit('x')",
        &[],
        "bad argument #2 to 'unpack_limit' (number expected, got no value)",
    );
    assert_fails(
        &mut c,
        "return cmsgpack.unpack_one('x', {})",
        &[],
        "bad argument #2 to 'unpack_one' (number expected, got table)",
    );
    assert_fails(
        &mut c,
        "return cmsgpack.unpack()",
        &[],
        "bad argument #1 to 'unpack' (string expected, got no value)",
    );
    assert_fails(
        &mut c,
        "return cmsgpack.pack()",
        &[],
        "bad argument #0 to 'pack' (MessagePack pack needs input.)",
    );
    assert_fails(
        &mut c,
        "local p = cmsgpack.pack return p()",
        &[],
        "bad argument #0 to 'p' (MessagePack pack needs input.)",
    );
    // A number is unpacked as its text.
    assert_eq!(text(&mut c, "return tostring(cmsgpack.unpack(5))"), "53");
}

#[test]
fn unpack_fails_on_short_or_malformed_input() {
    let server = start();
    let mut c = Conn::open(server.addr);
    let body = "return cmsgpack.unpack(ARGV[1])";
    for input in [
        b"\xcc".as_slice(),
        b"\xd0",
        b"\xcd\x01",
        b"\xd1\x01",
        b"\xce\x00\x00\x00",
        b"\xd2\x00\x00\x00",
        b"\xcf\x00\x00\x00\x00\x00\x00\x00",
        b"\xd3\x00\x00\x00\x00\x00\x00\x00",
        b"\xca\x00",
        b"\xcb\x00\x00\x00\x00\x00\x00\x00",
        b"\xa5ab",
        b"\xd9",
        b"\xd9\x05abc",
        b"\xda\x00",
        b"\xda\x00\x05abc",
        b"\xdb\x00\x00\x00",
        b"\xdb\x00\x00\x00\x05ab",
        b"\x92\x01",
        b"\xdc\x00",
        b"\x82\x01\x01\x02",
        b"\xde\x00",
        b"\x81\x01",
        b"\x01\x02\xcc",
    ] {
        assert_fails(&mut c, body, &[input], "Missing bytes in input.");
    }
    for input in [
        b"\xc1".as_slice(),
        b"\xc4\x01a",
        b"\xc7\x01\x01a",
        b"\xd4\x01\x01",
        b"\xd8\x01",
        b"\x01\xc1",
        b"\x91\xc1",
    ] {
        assert_fails(&mut c, body, &[input], "Bad data format in input.");
    }
    // Storing a nil or NaN map key fails as in a Lua table (Lua's own error: no position
    // before it).
    for (input, message) in [
        (b"\x81\xc0\x01".as_slice(), "table index is nil"),
        (
            b"\x81\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00\x01",
            "table index is NaN",
        ),
    ] {
        let e = error(&mut c, body, &[input]);
        assert!(e.starts_with(&format!("ERR {message} script: ")), "{e}");
    }
    // Called by another C function (pcall), an error has no position.
    assert_eq!(
        eval(
            &mut c,
            "local ok, e = pcall(cmsgpack.unpack, ARGV[1]) e = tostring(e) \
             return {tostring(ok), string.find(e, 'Bad data format in input.', 1, true) ~= nil, \
                     string.find(e, 'user_script:1: Bad', 1, true) == nil}",
            &[b"\xc1"]
        ),
        Frame::Array(vec![bulk("false"), Frame::Integer(1), Frame::Integer(1)])
    );
    // A bad value after good ones still fails the call.
    assert_fails(
        &mut c,
        "return cmsgpack.unpack_limit(ARGV[1], 1, 1)",
        &[b"\x01\xcc"],
        "Missing bytes in input.",
    );
}

#[test]
fn a_declared_length_is_bounded_by_the_input() {
    let server = start();
    let mut c = Conn::open(server.addr);
    let count = "local t = cmsgpack.unpack(ARGV[1]) local n = 0 \
                 for _ in pairs(t) do n = n + 1 end return n";
    // As many elements as declared: decoded; one more declared than the input holds: fails.
    assert_eq!(
        eval(&mut c, count, &[b"\xdd\x00\x00\x00\x03\x01\x02\x03"]),
        Frame::Integer(3)
    );
    assert_fails(
        &mut c,
        count,
        &[b"\xdd\x00\x00\x00\x04\x01\x02\x03"],
        "Missing bytes in input.",
    );
    assert_eq!(
        eval(&mut c, count, &[b"\xdf\x00\x00\x00\x02\x01\x01\x02\x02"]),
        Frame::Integer(2)
    );
    assert_fails(
        &mut c,
        count,
        &[b"\xdf\x00\x00\x00\x03\x01\x01\x02\x02"],
        "Missing bytes in input.",
    );
    // The largest lengths allocate nothing ahead.
    for input in [
        b"\xdd\xff\xff\xff\xff".as_slice(),
        b"\xdf\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xdd\xff\xff\xff\xff\x01\x02",
    ] {
        assert_fails(&mut c, count, &[input], "Missing bytes in input.");
    }
}

#[test]
fn the_stack_slot_limits_hold_at_their_boundary() {
    let server = start();
    let mut c = Conn::open(server.addr);
    let values = "return select('#', cmsgpack.unpack(string.rep('\\0', tonumber(ARGV[1]))))";
    // Lua 5.1 gives a C function 8000 stack slots: here the argument, 1000 kept unused, and
    // the values.
    assert_eq!(eval(&mut c, values, &[b"6999"]), Frame::Integer(6999));
    assert_fails(
        &mut c,
        values,
        &[b"7000"],
        "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
    );
    let limited = "return select('#', cmsgpack.unpack_limit(string.rep('\\0', 9000), \
                   tonumber(ARGV[1])))";
    assert_eq!(eval(&mut c, limited, &[b"6997"]), Frame::Integer(6998));
    assert_fails(
        &mut c,
        limited,
        &[b"6998"],
        "stack overflow (in function mp_unpack_full)",
    );
    let depth = "local t = cmsgpack.unpack(string.rep('\\145', tonumber(ARGV[1])) .. '\\192') \
                 local d = 0 while type(t) == 'table' do d = d + 1 t = t[1] end return d";
    // Each array nested takes two slots (the table and the index of its element).
    assert_eq!(eval(&mut c, depth, &[b"3499"]), Frame::Integer(3499));
    assert_fails(
        &mut c,
        depth,
        &[b"3500"],
        "stack overflow (in function mp_decode_to_lua_array)",
    );
    let args = "local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = 0 end \
                return #cmsgpack.pack(unpack(t))";
    assert_eq!(eval(&mut c, args, &[b"4000"]), Frame::Integer(4000));
    assert_fails(
        &mut c,
        args,
        &[b"4001"],
        "bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)",
    );
    let results = "return select('#', struct.unpack(string.rep('B', tonumber(ARGV[1])), \
                   string.rep('x', 9000)))";
    assert_eq!(eval(&mut c, results, &[b"6997"]), Frame::Integer(6998));
    assert_fails(
        &mut c,
        results,
        &[b"6998"],
        "stack overflow (too many results)",
    );
}

#[test]
fn the_libraries_are_read_only() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for body in [
        "cmsgpack.pack = function() return 1 end",
        "struct.pack = function() return 1 end",
        "struct = nil",
    ] {
        let e = error(&mut c, body, &[]);
        assert!(
            e.contains("Attempt to modify a readonly table"),
            "{body}: {e}"
        );
    }
    assert_eq!(
        eval(
            &mut c,
            "return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._DESCRIPTION}",
            &[]
        ),
        Frame::Array(vec![
            bulk("cmsgpack"),
            bulk("lua-cmsgpack 0.4.0"),
            bulk("MessagePack C implementation for Lua"),
        ])
    );
}

#[test]
fn struct_packs_each_format_letter() {
    let server = start();
    let mut c = Conn::open(server.addr);
    let pack = |c: &mut Conn, args: &str| text(c, &format!("return hex(struct.pack({args}))"));
    for (args, hex) in [
        ("'b', -1", "ff"),
        ("'B', 255", "ff"),
        ("'B', -1", "ff"),
        ("'h', -2", "feff"),
        ("'>h', -2", "fffe"),
        ("'H', 258", "0201"),
        ("'>H', 258", "0102"),
        ("'<H', 258", "0201"),
        ("'l', -2", "feffffffffffffff"),
        ("'L', 1", "0100000000000000"),
        ("'T', 1", "0100000000000000"),
        ("'i', 1", "01000000"),
        ("'I3', 258", "020100"),
        ("'>i3', -1", "ffffff"),
        ("'>i2', 258", "0102"),
        ("'i', '10'", "0a000000"),
        ("'i1', 2.9", "02"),
        ("'i1', -2.9", "fe"),
        // Past 8 bytes, zeros beyond the 64-bit value.
        ("'i10', -1", "ffffffffffffffff0000"),
        ("'f', 0.5", "0000003f"),
        ("'>f', 0.5", "3f000000"),
        ("'d', 0.1", "9a9999999999b93f"),
        ("'>d', 0.1", "3fb999999999999a"),
        ("'x'", "00"),
        ("'c3', 'abcdef'", "616263"),
        ("'c0', 'abc'", "616263"),
        ("'c', 'abc'", "61"),
        ("'s', 'ab'", "616200"),
        ("'b b', 1, 2", "0102"),
        ("'bi', 1, 2", "0102000000"),
        ("'!bi', 1, 2", "0100000002000000"),
        ("'!2bi', 1, 2", "010002000000"),
        ("'!bd', 1, 0.5", "0100000000000000000000000000e03f"),
        ("'!4 b h', 1, 2", "01000200"),
        ("'!bc3', 1, 'abc'", "01616263"),
        ("'>!bi2<i2', 1, 2, 3", "010000020300"),
    ] {
        assert_eq!(pack(&mut c, args), hex, "struct.pack({args})");
    }
    // Everything after a zero byte in the format is ignored.
    assert_eq!(pack(&mut c, "'b\\0b', 1, 2"), "01");
}

#[test]
fn struct_unpacks_and_sizes() {
    let server = start();
    let mut c = Conn::open(server.addr);
    let unpack = |c: &mut Conn, args: &str| {
        text(
            c,
            &format!(
                "local r = {{struct.unpack({args})}} for i = 1, #r do r[i] = tostring(r[i]) end \
                 return table.concat(r, ' ')"
            ),
        )
    };
    for (args, values) in [
        ("'b', unhex('ff')", "-1 2"),
        ("'B', unhex('ff')", "255 2"),
        ("'<i3', unhex('ffffff')", "-1 4"),
        ("'I3', unhex('ffffff')", "16777215 4"),
        ("'>h', unhex('fffe')", "-2 3"),
        ("'>H', unhex('0102')", "258 3"),
        ("'l', unhex('feffffffffffffff')", "-2 9"),
        ("'i10', unhex('ffffffffffffffff0000')", "-1 11"),
        ("'f', unhex('0000003f')", "0.5 5"),
        ("'>d', unhex('3fb999999999999a')", "0.1 9"),
        ("'b', 'ab', 2", "98 3"),
        ("'xb', 'ab'", "98 3"),
        ("'c2', 'abc'", "ab 3"),
        ("'Bc0', unhex('03') .. 'abcd'", "abc 5"),
        ("'c1c0', '2abc'", "ab 4"),
        ("'s', 'ab\\0c'", "ab 4"),
        ("'ss', 'a\\0b\\0'", "a b 5"),
        ("'!bi', unhex('0100000002000000')", "1 2 9"),
        ("'bi', unhex('0102000000')", "1 2 6"),
        ("'', 'abc'", "1"),
    ] {
        assert_eq!(unpack(&mut c, args), values, "struct.unpack({args})");
    }
    // Round trips.
    assert_eq!(
        unpack(
            &mut c,
            "'>!4bhilTfdc3s', struct.pack('>!4bhilTfdc3s', -1, -300, 70000, -5, 9, 0.5, 0.25, \
             'abc', 'zz')"
        ),
        "-1 -300 70000 -5 9 0.5 0.25 abc zz 43"
    );
    for (fmt, size) in [
        ("''", 0),
        ("'b'", 1),
        ("'bhilT'", 23),
        ("'!bhilT'", 24),
        ("'!bd'", 16),
        ("'!4bd'", 12),
        ("'bd'", 9),
        ("'c10'", 10),
        ("'i32'", 32),
        ("'xfd'", 13),
        // Letters that are no option are ignored by size (not by pack or unpack).
        ("'z'", 0),
        ("'c2147483647'", 2_147_483_647),
        ("'!1073741824d'", 8),
    ] {
        assert_eq!(
            eval(&mut c, &format!("return struct.size({fmt})"), &[]),
            Frame::Integer(size),
            "struct.size({fmt})"
        );
    }
}

#[test]
fn struct_errors_are_the_c_librarys() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for (call, message) in [
        (
            "struct.pack('i33', 1)",
            "integral size 33 is larger than limit of 32",
        ),
        (
            "struct.size('I33')",
            "integral size 33 is larger than limit of 32",
        ),
        ("struct.size('c2147483648')", "integral size overflow"),
        ("struct.size('!2147483648')", "integral size overflow"),
        ("struct.pack('!3')", "alignment 3 is not a power of 2"),
        ("struct.pack('!0')", "alignment 0 is not a power of 2"),
        (
            "struct.pack('z')",
            "bad argument #1 to 'pack' (invalid format option 'z')",
        ),
        (
            "struct.pack('=')",
            "bad argument #1 to 'pack' (invalid format option '=')",
        ),
        (
            "struct.size('=')",
            "bad argument #1 to 'size' (invalid format option '=')",
        ),
        (
            "struct.pack('i', 'x')",
            "bad argument #2 to 'pack' (number expected, got string)",
        ),
        (
            "struct.pack('bi', 1)",
            "bad argument #3 to 'pack' (number expected, got no value)",
        ),
        (
            "struct.pack('c5', 'ab')",
            "bad argument #3 to 'pack' (string too short)",
        ),
        (
            "struct.pack('s', {})",
            "bad argument #2 to 'pack' (string expected, got table)",
        ),
        (
            "struct.pack()",
            "bad argument #1 to 'pack' (string expected, got no value)",
        ),
        (
            "struct.unpack('i', 'abc')",
            "bad argument #2 to 'unpack' (data string too short)",
        ),
        (
            "struct.unpack('b', 'abc', 4)",
            "bad argument #2 to 'unpack' (data string too short)",
        ),
        (
            "struct.unpack('b', 'abc', -1)",
            "bad argument #2 to 'unpack' (data string too short)",
        ),
        (
            "struct.unpack('b', 'abc', 0)",
            "bad argument #3 to 'unpack' (offset must be 1 or greater)",
        ),
        (
            "struct.unpack('Bc0', '\\5abc')",
            "bad argument #2 to 'unpack' (data string too short)",
        ),
        (
            "struct.unpack('c0', 'abc')",
            "format 'c0' needs a previous size",
        ),
        (
            "struct.unpack('sc0', 'ab\\0c')",
            "format 'c0' needs a previous size",
        ),
        ("struct.unpack('s', 'abc')", "unfinished string in data"),
        (
            "struct.size('s')",
            "bad argument #1 to 'size' (option 's' has no fixed size)",
        ),
        (
            "struct.size('c0')",
            "bad argument #1 to 'size' (option 'c0' has no fixed size)",
        ),
    ] {
        assert_fails(&mut c, &format!("return {call}"), &[], message);
    }
    // The size limits at their maximum: accepted.
    assert_eq!(
        text(&mut c, "return hex(struct.pack('>i32', -1))"),
        format!("{}{}", "00".repeat(24), "ff".repeat(8))
    );
    assert_eq!(
        eval(&mut c, "return struct.size('!1073741824bd')", &[]),
        Frame::Integer(16)
    );
    assert_fails(
        &mut c,
        "return struct.pack('c2147483647', 'x')",
        &[],
        "bad argument #3 to 'pack' (string too short)",
    );
}

#[test]
fn the_most_strings_return_with_the_eval_cache_full() {
    let server = start();
    let mut c = Conn::open(server.addr);
    // Every script EVAL keeps compiled holds one of the Lua state's references, as does each
    // string returned.
    for i in 0..500 {
        assert_eq!(
            c.cmd(&["EVAL", &format!("return {i}"), "0"]),
            Frame::Integer(i)
        );
    }
    let strings = "local s = string.rep(cmsgpack.pack('ab'), tonumber(ARGV[1])) \
                   local r = {cmsgpack.unpack(s)} return {#r, r[#r]}";
    assert_eq!(
        eval(&mut c, strings, &[b"6999"]),
        Frame::Array(vec![Frame::Integer(6999), bulk("ab")])
    );
    let chars = "local r = {struct.unpack(string.rep('c1', tonumber(ARGV[1])), \
                 string.rep('x', 9000))} return {#r, r[1]}";
    assert_eq!(
        eval(&mut c, chars, &[b"6997"]),
        Frame::Array(vec![Frame::Integer(6998), bulk("x")])
    );
    assert_eq!(c.cmd(&["PING"]), Frame::Simple("PONG".into()));
}

#[test]
fn pcall_and_xpcall_give_library_errors_as_strings() {
    let server = start();
    let mut c = Conn::open(server.addr);
    // (pcall's arguments, its error, the error of the same call made in a function that
    // xpcall runs: lauxlib names the function and gives the caller's line when Lua code calls
    // it, not when pcall does).
    for (call, message, called) in [
        (
            "cjson.decode, 'x'",
            "Expected value but found invalid token",
            "string:user_script:1: Expected value but found invalid token",
        ),
        (
            "cmsgpack.unpack, '\\193'",
            "Bad data format in input.",
            "string:user_script:1: Bad data format in input.",
        ),
        (
            "struct.pack, 'q', 1",
            "bad argument #1 to '?' (invalid format option 'q')",
            "string:user_script:1: bad argument #1 to 'pack' (invalid format option 'q')",
        ),
        (
            "bit.tobit",
            "bad argument #1 to '?' (number expected, got no value)",
            "string:user_script:1: bad argument #1 to 'tobit' (number expected, got no value)",
        ),
    ] {
        let body = format!(
            "local ok, e = pcall({call}) \
             local xok, xe = xpcall(function() return {call_in_fn} end, \
               function(e) return type(e) .. ':' .. e end) \
             return {{tostring(ok), type(e), e, tostring(xok), xe}}",
            call_in_fn = call_of(call),
        );
        let reply = eval(&mut c, &body, &[]);
        let Frame::Array(items) = reply else {
            panic!("{call}: {reply:?}")
        };
        let texts: Vec<String> = items
            .iter()
            .map(|f| match f {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{call}: {other:?}"),
            })
            .collect();
        assert_eq!(texts[0], "false", "{call}");
        assert_eq!(texts[1], "string", "{call}");
        assert!(texts[2].starts_with(message), "{call}: {texts:?}");
        assert!(!texts[2].contains("traceback"), "{call}: {texts:?}");
        assert_eq!(texts[3], "false", "{call}");
        assert!(texts[4].starts_with(called), "{call}: {texts:?}");
    }
    // Errors raised as tables and plain Lua errors are unchanged.
    assert_eq!(
        text(
            &mut c,
            "local ok, e = pcall(redis.call, 'nosuch') return type(e) .. ':' .. e"
        ),
        "string:ERR Unknown Redis command called from script"
    );
    assert_eq!(
        text(&mut c, "local ok, e = pcall(error, {1}) return type(e)"),
        "table"
    );
}

/// `f, a, b` as the call `f(a, b)`.
fn call_of(pcall_args: &str) -> String {
    match pcall_args.split_once(", ") {
        Some((f, args)) => format!("{f}({args})"),
        None => format!("{pcall_args}()"),
    }
}

/// An uncaught `bit` error names the function and the calling line, as LuaBitOp's
/// `luaL_checknumber` raises it. Texts are `redis-server` 7.0.15's.
#[test]
fn bit_errors_name_the_function_and_the_calling_line() {
    let server = start();
    let mut c = Conn::open(server.addr);
    for (call, narg, name, got) in [
        ("bit.tobit()", 1, "tobit", "no value"),
        ("bit.band(1, 'x')", 2, "band", "string"),
        ("bit.lshift(1)", 2, "lshift", "no value"),
        ("bit.tohex({})", 1, "tohex", "table"),
    ] {
        let script = format!("return {call}");
        let sha = streamcache::cache::script_sha1(&script);
        let text = format!("bad argument #{narg} to '{name}' (number expected, got {got})");
        assert_eq!(
            c.cmd(&["EVAL", &script, "0"]),
            Frame::Error(format!(
                "ERR user_script:1: {text} script: {sha}, on @user_script:1."
            )),
            "{script}"
        );
    }
    assert_eq!(
        eval(&mut c, "local ok, e = pcall(bit.bor, 1, {}) return e", &[]),
        bulk("bad argument #2 to '?' (number expected, got table)")
    );
    assert_eq!(
        eval(
            &mut c,
            "return {bit.tohex(255, -4), bit.band(7, '3'), bit.rol(1, 33)}",
            &[]
        ),
        Frame::Array(vec![bulk("00FF"), Frame::Integer(3), Frame::Integer(2)])
    );
}
