//! Capability: JOLT behaviours the upstream fixtures do not cover, pinned to what the Java
//! implementation (jolt-core) does. Method: apply small specs through the public API and
//! compare with the output jolt-core gives for the same spec and input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use serde_json::{Value, json};
use streamcache::transform::Spec;

fn apply(spec: Value, input: Value) -> Value {
    Spec::parse(&spec).unwrap().apply(&input).unwrap()
}

/// `CardinalitySpec.parse` splits nothing: `a|b` is a key literally named `a|b`, and `&`
/// is a plain character.
#[test]
fn cardinality_keys_are_literal_except_at_and_stars() {
    let spec = json!([{"operation": "cardinality", "spec": {"a|b": "MANY", "&": "MANY"}}]);
    assert_eq!(
        apply(spec.clone(), json!({"a": 1, "b": 2, "&": 3})),
        json!({"a": 1, "b": 2, "&": [3]})
    );
    assert_eq!(apply(spec, json!({"a|b": 1})), json!({"a|b": [1]}));
    let stars = json!([{"operation": "cardinality", "spec": {"x*": "MANY", "*": "ONE"}}]);
    assert_eq!(
        apply(stars, json!({"xa": 1, "y": [4, 5]})),
        json!({"xa": [1], "y": 4})
    );
    let bad = json!([{"operation": "cardinality", "spec": {"a@": "MANY"}}]);
    assert!(Spec::parse(&bad).is_err());
}

/// `divideAndRound` rounds the quotient's exact binary value half up, as
/// `new BigDecimal(double).setScale(d, HALF_UP)` does: a price of 3 / 20 = 0.15 (stored as
/// 0.1499…) rounds to 0.1 at one digit.
#[test]
fn divide_and_round_matches_big_decimal() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "r": "=divideAndRound(1, @(1,a), @(1,b))",
        "pair": "=divideAndRound(2, @(1,ops))"
    }}]);
    assert_eq!(
        apply(spec, json!({"a": 3, "b": 20, "ops": [10, 3]})),
        json!({"a": 3, "b": 20, "ops": [10, 3], "r": 0.1, "pair": 3.33})
    );
}

/// `Sortr` orders keys with `String.compareTo`, which compares UTF-16 code units: an emoji
/// (a surrogate pair starting 0xD83D) sorts before U+FF61, though its UTF-8 bytes sort after.
#[test]
fn sort_orders_keys_by_utf16_code_units() {
    let spec = json!([{"operation": "sort"}]);
    let out = apply(
        spec,
        json!({"\u{FF61}": 1, "\u{1F600}": 2, "~z": 3, "a": {"\u{FF61}": 4, "\u{1F600}": 5}}),
    );
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["~z", "a", "\u{1F600}", "\u{FF61}"]);
    let inner: Vec<&str> = out["a"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(inner, ["\u{1F600}", "\u{FF61}"]);
}

/// In the modifiers, `@0` (an `@` with no sub-path) reads the leaf's own tree reference, which
/// is null when the key is missing, and `TransposePathElement.objectEvaluate` returns it as
/// present: every flavour writes null, and a function gets one null argument.
#[test]
fn modifier_self_reference_to_a_missing_key_is_a_present_null() {
    for op in [
        "modify-overwrite-beta",
        "modify-default-beta",
        "modify-define-beta",
    ] {
        let spec = json!([{"operation": op, "spec": {
            "x": "@0",
            "y": ["@(0,)", "fallback"],
            "z": "=isNull(@0)",
            "w": ["=notNull(@0)", "fallback"],
            "v": ["@(1,missing)", "fallback"]
        }}]);
        assert_eq!(
            apply(spec, json!({})),
            json!({"x": null, "y": null, "z": null, "w": "fallback", "v": "fallback"}),
            "{op}"
        );
    }
}

/// `@` and `^` lookups walk with jolt-core's traversal steps, which check the container type:
/// a plain step (`a.0`) reads only an object's key and `[N]` reads only an array's element.
#[test]
fn lookups_check_the_container_type_of_each_step() {
    let input = json!({"arr": ["p", "q"], "obj": {"0": "zero"}});
    let shift = json!([{"operation": "shift", "spec": {
        "@(0,arr.0)": "plain",
        "@(0,arr[1])": "indexed",
        "@(0,obj.0)": "objplain",
        "@(0,obj[0])": "objindexed"
    }}]);
    assert_eq!(
        apply(shift, input.clone()),
        json!({"indexed": "q", "objplain": "zero"})
    );
    let modify = json!([{"operation": "modify-overwrite-beta", "spec": {
        "a": "@(1,arr.0)",
        "b": "@(1,arr[1])",
        "c": "@(1,obj[0])",
        "d": "@(1,obj.0)",
        "e": "^arr.0",
        "f": "^arr[1]",
        "g": "^obj[0]",
        "h": "^obj.0"
    }}]);
    let out = Spec::parse(&modify)
        .unwrap()
        .apply_with_context(&input, &input)
        .unwrap();
    assert_eq!(
        out,
        json!({"arr": ["p", "q"], "obj": {"0": "zero"}, "b": "q", "d": "zero", "f": "q", "h": "zero"})
    );
}

/// `squashNulls` and `recursivelySquashNulls` edit their argument in place, and a modifier's
/// `@` argument is the document's own value, not a copy: the source is squashed too, even
/// when the flavour then declines the write. With several arguments they squash
/// `Arrays.asList(args)`, which throws when an argument is null, so nothing is written.
#[test]
fn squash_functions_edit_their_source_in_place() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "clean": "=squashNulls(@(1,raw))",
        "deep": "=recursivelySquashNulls(@(1,nested))"
    }}]);
    assert_eq!(
        apply(
            spec,
            json!({"raw": [1, null, 2], "nested": {"a": null, "b": [null, 1]}})
        ),
        json!({
            "raw": [1, 2], "nested": {"b": [1]},
            "clean": [1, 2], "deep": {"b": [1]}
        })
    );
    let define = json!([{"operation": "modify-define-beta", "spec": {"raw": "=squashNulls"}}]);
    assert_eq!(
        apply(define, json!({"raw": [1, null]})),
        json!({"raw": [1]})
    );
    let many = json!([{"operation": "modify-overwrite-beta", "spec": {
        "s": ["=squashNulls(@(1,a), @(1,missing))", "fallback"],
        "r": "=recursivelySquashNulls(@(1,a), @(1,b))"
    }}]);
    assert_eq!(
        apply(many, json!({"a": {"x": null, "y": 1}, "b": [1, null]})),
        json!({"a": {"y": 1}, "b": [1], "s": "fallback", "r": [{"y": 1}, [1]]})
    );
}

/// Output paths are parsed by `PathElementBuilder.parseSingleKeyLHS`: `|` is a plain
/// character there (only spec keys are split on it), and an element with `#` is a
/// `HashPathElement`, which is not valid in an output path. On the left, `#(text)` is the
/// literal `text`, as `HashPathElement` strips the parentheses.
#[test]
fn hash_and_bar_in_shift_paths_follow_path_element_builder() {
    let bar = json!([{"operation": "shift", "spec": {"a": "x|y.z"}}]);
    assert_eq!(apply(bar, json!({"a": 1})), json!({"x|y": {"z": 1}}));
    for rhs in ["#x", "out.#x", "out.a#b"] {
        let hash = json!([{"operation": "shift", "spec": {"a": rhs}}]);
        assert!(Spec::parse(&hash).is_err(), "{rhs}");
    }
    let escaped = json!([{"operation": "shift", "spec": {"a": "\\#x"}}]);
    assert_eq!(apply(escaped, json!({"a": 1})), json!({"#x": 1}));
    let lhs = json!([{"operation": "shift", "spec": {"a": {"#(yes)": "flag", "#no": "other"}}}]);
    assert_eq!(
        apply(lhs, json!({"a": 1})),
        json!({"flag": "yes", "other": "no"})
    );
    for key in ["#", "#(open", "a#b"] {
        let bad = json!([{"operation": "shift", "spec": {"a": {key: "flag"}}}]);
        assert!(Spec::parse(&bad).is_err(), "{key}");
    }
}

/// A scalar that a spec matches as a key is `input.toString()` in `ExecutionStrategy`, so a
/// double is spelled as Java's `Double.toString` spells it: from 10^7 up and below 10^-3 in
/// computerized scientific notation, with at least one digit after the point.
#[test]
fn a_double_matched_as_a_key_is_spelled_as_java_spells_it() {
    let spec = json!([{"operation": "shift", "spec": {"*": {"*": {"$": "&2"}}}}]);
    assert_eq!(
        apply(
            spec,
            json!({"big": 12345678.5, "ten": 1e7, "small": 0.0001, "plain": 2.5, "int": 12345678,
                "huge": 18446744073709551615_u64})
        ),
        json!({"big": "1.23456785E7", "ten": "1.0E7", "small": "1.0E-4", "plain": "2.5", "int": "12345678",
            "huge": "18446744073709551615"})
    );
    let literal = json!([{"operation": "shift", "spec": {"v": {"1.0E7": {"#hit": "x"}}}}]);
    assert_eq!(apply(literal, json!({"v": 1e7})), json!({"x": "hit"}));
}

/// The `sort` function is `Arrays.sort` over an `Object[]`: longs compare as longs (two past
/// 2^53 that share a nearest double still sort), and a list of one element is never compared,
/// so it comes back whatever its type.
#[test]
fn sort_function_compares_longs_exactly_and_keeps_one_element_lists() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "longs": "=sort(@(1,longs))",
        "sortedOne": "=sort(@(1,one))",
        "sortedNull": "=sort(@(1,null))",
        "sortedMixed": "=sort(@(1,mixed))"
    }}]);
    let out = apply(
        spec,
        json!({
            "longs": [9007199254740993_i64, 9007199254740992_i64, 3000000000_i64],
            "one": [{"a": 1}],
            "null": [null],
            "mixed": [2, 3000000000_i64]
        }),
    );
    assert_eq!(
        out,
        json!({
            "longs": [3000000000_i64, 9007199254740992_i64, 9007199254740993_i64],
            "one": [{"a": 1}],
            "null": [null],
            "mixed": [2, 3000000000_i64],
            "sortedOne": [{"a": 1}],
            "sortedNull": [null]
        })
    );
}

/// A function's literal argument is a number when `Objects.toNumber` reads one, and that
/// parses doubles with `Double.parseDouble`, which takes a `d`/`f` type suffix.
#[test]
fn function_literal_arguments_are_numbers_as_java_parses_them() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "d": "=concat(x, 1d)",
        "f": "=concat(x, 2.5F)",
        "list": "=toList(1d)",
        "int": "=concat(x, 007)",
        "text": "=concat(x, 1e)"
    }}]);
    assert_eq!(
        apply(spec, json!({})),
        json!({"d": "x1.0", "f": "x2.5", "list": [1.0], "int": "x7", "text": "x1e"})
    );
}

/// `leftPad`/`rightPad` take a filler of one Java `char`: a character outside the Basic
/// Multilingual Plane is two UTF-16 code units, so the function gives nothing.
#[test]
fn pad_fillers_are_one_utf16_code_unit() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "wide": "=leftPad(@(1,s), 4, '\u{1F600}')",
        "bmp": "=rightPad(@(1,s), 4, '\u{e9}')"
    }}]);
    assert_eq!(
        apply(spec, json!({"s": "ab"})),
        json!({"s": "ab", "bmp": "ab\u{e9}\u{e9}"})
    );
}

/// Removr splits a key on `|` into one spec per alternative, and under a list each one is
/// read on its own: a literal is an index as `Integer.parseInt` reads it (`01` is 1) and `*`
/// is every index.
#[test]
fn remove_alternatives_under_a_list_are_read_one_by_one() {
    let spec = json!([{"operation": "remove", "spec": {
        "all": {"x|*": ""},
        "padded": {"01|x": ""},
        "nested": {"x|*": {"a": ""}}
    }}]);
    assert_eq!(
        apply(
            spec,
            json!({
                "all": [1, 2, 3],
                "padded": [1, 2, 3],
                "nested": [{"a": 1, "b": 2}, {"a": 3}]
            })
        ),
        json!({"all": [], "padded": [1, 3], "nested": [{"b": 2}, {}]})
    );
}

/// Computed keys of one kind are tried longest canonical form first, then alphabetically, as
/// `ComputedKeysComparator` compares Java strings: `é*` and `*b` are both two UTF-16 code
/// units long (`é*` is three bytes), so `*b` sorts first and takes `éb`.
#[test]
fn computed_key_precedence_measures_keys_in_utf16_code_units() {
    let spec = json!([{"operation": "shift", "spec": {
        "\u{e9}*": "second.&(0,1)",
        "*b": "first.&(0,1)"
    }}]);
    assert_eq!(
        apply(spec, json!({"\u{e9}b": 1})),
        json!({"first": {"\u{e9}": 1}})
    );
    let modify = json!([{"operation": "modify-overwrite-beta", "spec": {
        "\u{e9}*": "second",
        "*b": "first"
    }}]);
    assert_eq!(
        apply(modify, json!({"\u{e9}b": 1})),
        json!({"\u{e9}b": "first"})
    );
}

/// Spec keys are split on `|` with Java's `String.split`, which drops trailing empty
/// alternatives: `a|` is the key `a` alone, not also the empty key, and a shift object whose
/// only key is `|` has no children, which Shiftr refuses.
#[test]
fn a_trailing_bar_adds_no_empty_key() {
    let input = json!({"a": 1, "": 2});
    let shift = json!([{"operation": "shift", "spec": {"a|": "x"}}]);
    assert_eq!(apply(shift, input.clone()), json!({"x": 1}));
    let modify = json!([{"operation": "modify-overwrite-beta", "spec": {"b|": "v"}}]);
    assert_eq!(
        apply(modify, input.clone()),
        json!({"a": 1, "": 2, "b": "v"})
    );
    let remove = json!([{"operation": "remove", "spec": {"a|": "", "|": ""}}]);
    assert_eq!(apply(remove, input), json!({"": 2}));
    let bars_only = json!([{"operation": "shift", "spec": {"k": {"|": "x"}}}]);
    assert!(Spec::parse(&bars_only).is_err());
}

/// `RemovrSpec` reads its keys verbatim: a backslash escapes nothing (`a\*` is a star
/// pattern whose prefix ends in a backslash, `a\|b` is the keys `a\` and `b`).
#[test]
fn remove_keys_have_no_escapes() {
    let spec = json!([{"operation": "remove", "spec": {"a\\*": "", "b\\|c": "", "d\\.e": ""}}]);
    assert_eq!(
        apply(
            spec,
            json!({"a*": 1, "a\\x": 2, "b|c": 3, "b\\": 4, "c": 5, "d.e": 6, "d\\.e": 7})
        ),
        json!({"a*": 1, "b|c": 3, "d.e": 6})
    );
}

/// `PathEvaluatingTraversal` reads a blank output path (`StringTools.isBlank`: only Java
/// whitespace) as the root, as it does an empty one; a non-breaking space is not blank.
#[test]
fn a_blank_output_path_is_the_root() {
    for blank in ["  ", "\t", "\u{2003}"] {
        let spec = json!([{"operation": "shift", "spec": {"a": blank}}]);
        assert_eq!(
            apply(spec, json!({"a": {"q": 1}})),
            json!({"q": 1}),
            "{blank:?}"
        );
    }
    let nbsp = json!([{"operation": "shift", "spec": {"a": "\u{a0}"}}]);
    assert_eq!(
        apply(nbsp, json!({"a": {"q": 1}})),
        json!({"\u{a0}": {"q": 1}})
    );
}

/// Defaultr strips `[]` from every key and only uses it to create a list for children, so
/// `name[]` with a value that is not an object is a plain default of `name` (a common way to
/// make sure an empty list is there).
#[test]
fn a_default_key_ending_in_brackets_with_a_plain_value_defaults_the_name() {
    let spec = json!([{"operation": "default", "spec": {"items[]": [], "n[]": 5}}]);
    assert_eq!(apply(spec.clone(), json!({})), json!({"items": [], "n": 5}));
    assert_eq!(
        apply(spec, json!({"items": [1], "n": null})),
        json!({"items": [1], "n": 5})
    );
}

/// A `$` match has one sub-key, the key itself: jolt-core's `DollarPathElement.match` builds
/// `new MatchedElement( evaled )` (DollarPathElement.java:46), and `&(0,1)` on the right-hand
/// side then calls `getSubKeyRef(1)`, which throws `IndexOutOfBoundsException`
/// (MatchedElement.java:74, reached from AmpPathElement.java:120 while `ShiftrLeafSpec.apply`
/// writes, ShiftrLeafSpec.java:139). The spec builds; the transform fails. A reference past the
/// walked path (`&9`) fails the same way (`WalkedPath.elementFromEnd`, WalkedPath.java:68).
#[test]
fn a_reference_to_a_capture_the_matched_key_lacks_fails_the_transform() {
    for rhs in ["&(0,1)", "out.&(0,1)", "&(1,2)", "&9", "x.[&(0,1)]"] {
        let spec = json!([{"operation": "shift", "spec": {"a*": {"$": rhs}}}]);
        let spec = Spec::parse(&spec).unwrap();
        let err = spec.apply(&json!({"ab": 1})).unwrap_err();
        assert!(err.to_string().contains("reference"), "{rhs}: {err}");
    }
    // In range, the same spec writes.
    let ok = json!([{"operation": "shift", "spec": {"a*": {"$": "&(0,0).&(1,1)"}}}]);
    assert_eq!(apply(ok, json!({"ab": 1})), json!({"ab": {"b": "ab"}}));
}

/// A lone `*` captures nothing: `StarAllPathElement.match` builds `new MatchedElement( dataKey )`
/// (StarAllPathElement.java:51), whose only sub-key is the whole key, so `&(0,1)` (or `&(1,1)`
/// a level down) throws in `MatchedElement.getSubKeyRef` (MatchedElement.java:74) and the
/// transform fails; `&(0,0)` and `&` are the key. A star pattern such as `a*` does capture.
#[test]
fn a_lone_star_has_no_capture_group_one() {
    for spec in [
        json!({"*": "out.&(0,1)"}),
        json!({"*": {"b": "&(1,1)"}}),
        json!({"*": "[&(0,1)]"}),
    ] {
        let spec = Spec::parse(&json!([{"operation": "shift", "spec": spec}])).unwrap();
        let err = spec.apply(&json!({"a": {"b": 1}})).unwrap_err();
        assert!(err.to_string().contains("reference"), "{err}");
    }
    let whole = json!([{"operation": "shift", "spec": {"*": "out.&(0,0).&"}}]);
    assert_eq!(
        apply(whole, json!({"a": 1})),
        json!({"out": {"a": {"a": 1}}})
    );
}

/// A left-hand `$(N,M)` or `&(N,M)` key naming a group the matched key lacks throws while the
/// key is matched: `DollarPathElement.match` evaluates `getSubKeyRef` (DollarPathElement.java:40,
/// MatchedElement.java:74), as does `AmpPathElement.match` (AmpPathElement.java:120), and
/// `Shiftr.transform` lets it through. The transform fails; it does not skip the key.
#[test]
fn a_left_hand_reference_to_a_missing_capture_fails_the_transform() {
    for spec in [
        json!({"*": {"$(0,1)": "k"}}),
        json!({"a*": {"$(1,2)": "k"}}),
        json!({"a*": {"&(1,2)": "k"}}),
        json!({"a*": {"x": {"&(1,2)": "k"}}}),
    ] {
        let parsed = Spec::parse(&json!([{"operation": "shift", "spec": spec}])).unwrap();
        let err = parsed
            .apply(&json!({"ab": {"x": {"b": 1}, "b": 2}}))
            .unwrap_err();
        assert!(err.to_string().contains("reference"), "{spec}: {err}");
    }
    let ok = json!([{"operation": "shift", "spec": {"a*": {"$(0,1)": "k", "&(0,1)": "v"}}}]);
    assert_eq!(
        apply(ok, json!({"ab": {"b": 2}})),
        json!({"k": "b", "v": 2})
    );
}

/// `max` and `min` keep doubles with `java.lang.Math.max`/`min` (Math.java, `max( List )` and
/// `min( List )` in jolt-core's modifier/function/Math.java:53 and :121), which order -0.0
/// below 0.0: the max of the two is 0.0 and the min -0.0, in either order.
#[test]
fn max_and_min_order_negative_zero_below_zero() {
    let sign_negative = |f: &str, args: &str| {
        let spec = json!([{"operation": "modify-overwrite-beta",
                           "spec": {"m": format!("={f}(@(1,{args}))")}}]);
        let out = apply(spec, json!({"ab": [-0.0, 0.0], "ba": [0.0, -0.0]}));
        out["m"].as_f64().unwrap().is_sign_negative()
    };
    assert!(!sign_negative("max", "ab"));
    assert!(!sign_negative("max", "ba"));
    assert!(sign_negative("min", "ab"));
    assert!(sign_negative("min", "ba"));
}

/// `[#N]` in a shift output path reads the match count `N` levels up the walked path, which
/// holds the root and one level per key matched down to the leaf (`WalkedPath.elementFromEnd`,
/// WalkedPath.java:68). `N` past the root indexes before the list's start, which throws
/// (`ArrayList.get(-1)`), and `Shiftr.transform` lets it through: the transform fails; it does
/// not skip the write. The walked path starts with two root levels, `Shiftr.transform`'s and
/// the root spec's own (Shiftr.java:503, ShiftrCompositeSpec.java:214), so under `a` and `*`
/// the leaf `v` is level 4: `[#4]` is the outermost root's count (0 while its spec is still
/// being walked) and `[#5]` is past it.
#[test]
fn an_output_hash_index_past_the_walked_path_fails_the_transform() {
    let input = json!({"a": {"x": {"v": 1}}});
    for rhs in ["out[#5]", "out[#9].y", "[#6]"] {
        let spec = json!([{"operation": "shift", "spec": {"a": {"*": {"v": rhs}}}}]);
        let spec = Spec::parse(&spec).unwrap();
        let err = spec.apply(&input).unwrap_err();
        assert!(err.to_string().contains("[#"), "{rhs}: {err}");
    }
    let ok = json!([{"operation": "shift", "spec": {"a": {"*": {"v": "out[#4]"}}}}]);
    assert_eq!(apply(ok, input), json!({"out": [1]}));
}

/// `Integer.parseInt` and `Long.parseLong`, which `Objects.toNumber` tries first, read any
/// Unicode decimal digit (`Character.digit`: Arabic-Indic `٤٢`, Devanagari `४२`, fullwidth
/// `４２`, mixed with ASCII too); `Double.parseDouble`, tried last, reads ASCII digits only, so
/// such text past the long range is no number. So `toInteger("٤٢")` is 42 and `toDouble` 42.0.
#[test]
fn to_integer_reads_unicode_decimal_digits_as_java_parse_int_does() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "i": "=toInteger", "l": "=toLong", "d": "=toDouble", "n": "=toInteger"
    }}]);
    for (text, int) in [
        ("٤٢", 42),
        ("-४२", -42),
        ("４２", 42),
        ("+1٢", 12),
        ("۱۲۳", 123),
    ] {
        let out = apply(
            spec.clone(),
            json!({"i": text, "l": text, "d": text, "n": 0}),
        );
        assert_eq!(out["i"], json!(int), "{text}");
        assert_eq!(out["l"], json!(int), "{text}");
        assert_eq!(out["d"], json!(f64::from(int)), "{text}");
    }
    // A long's worth of Arabic-Indic digits is a long; past it, `parseDouble` refuses them.
    let long = "٩".repeat(18);
    let past = "٩".repeat(20);
    let out = apply(spec, json!({"i": long, "l": long, "d": past, "n": "٤٢x"}));
    assert_eq!(out["l"], json!(999_999_999_999_999_999_i64));
    assert_eq!(out["d"], json!(past), "not a number: left as it is");
    assert_eq!(out["n"], json!("٤٢x"));
    // `i` is the long's `intValue()`, its low 32 bits.
    assert_eq!(out["i"], json!(999_999_999_999_999_999_i64 as i32));
}

/// `Double.parseDouble` reads text past the double range as an infinity (`"1e400"`), and
/// `Objects.toDouble` keeps it: jolt-core's output then holds `Double.POSITIVE_INFINITY`, which
/// Jackson (`JsonUtils`, `QUOTE_NON_NUMERIC_NUMBERS` on by default) writes as the string
/// `"Infinity"`; `"-1e400"` gives `"-Infinity"` and `"NaN"` `"NaN"`. `toInteger` and `toLong`
/// narrow the infinity as Java's `intValue()`/`longValue()` do, to the type's maximum or
/// minimum (NaN to 0).
#[test]
fn to_double_past_the_double_range_is_infinity_as_jackson_writes_it() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "d": "=toDouble", "m": "=toDouble", "nan": "=toDouble",
        "i": "=toInteger", "l": "=toLong", "im": "=toInteger", "inan": "=toInteger"
    }}]);
    let out = apply(
        spec,
        json!({"d": "1e400", "m": "-1e400", "nan": "NaN",
               "i": "1e400", "l": "1e400", "im": "-1e400", "inan": "NaN"}),
    );
    assert_eq!(out["d"], json!("Infinity"));
    assert_eq!(out["m"], json!("-Infinity"));
    assert_eq!(out["nan"], json!("NaN"));
    assert_eq!(out["i"], json!(i32::MAX));
    assert_eq!(out["l"], json!(i64::MAX));
    assert_eq!(out["im"], json!(i32::MIN));
    assert_eq!(out["inan"], json!(0));
    // A sum past the double range is an infinity too (`Math.doubleSum`, Math.java:220).
    let sum = json!([{"operation": "modify-overwrite-beta",
                      "spec": {"s": "=doubleSum(@(1,big))"}}]);
    let out = apply(sum, json!({"big": [1e308, 1e308]}));
    assert_eq!(out["s"], json!("Infinity"));
}

/// `Double.parseDouble` (FloatingDecimal.readJavaFormatString) takes a `d`/`f` type suffix
/// after digits only: `Infinity` and `NaN` must end the text, so `"Infinityd"` and `"NaNf"` are
/// no number and `toDouble` leaves them as they are, while `"1e400d"` is an infinity.
#[test]
fn infinity_and_nan_take_no_type_suffix() {
    let spec = json!([{"operation": "modify-overwrite-beta", "spec": {
        "a": "=toDouble", "b": "=toDouble", "c": "=toDouble", "d": "=toDouble"
    }}]);
    let out = apply(
        spec,
        json!({"a": "Infinityd", "b": "-NaNf", "c": "1e400d", "d": "-Infinity"}),
    );
    assert_eq!(
        out,
        json!({"a": "Infinityd", "b": "-NaNf", "c": "Infinity", "d": "-Infinity"})
    );
}

/// `Double.parseDouble` reads hexadecimal floating-point text as Java's grammar has it
/// (`Double.valueOf`): an optional sign, `0x`/`0X`, hex digits with an optional `.` fraction
/// (`0x1.`, `0x.8`, never `0x.`), a binary exponent `p`/`P` that cannot be left out, and an
/// optional `d`/`f` suffix; the value rounds to the nearest double, ties to even, subnormals
/// included, past the range to an infinity. Text outside the grammar stays as it is.
#[test]
fn to_double_reads_hexadecimal_floating_point_text() {
    let to_double = |text: &str| -> Value {
        let spec = json!([{"operation": "modify-overwrite-beta", "spec": {"n": "=toDouble"}}]);
        apply(spec, json!({ "n": text }))["n"].clone()
    };
    let bits = |text: &str| -> u64 {
        let out = to_double(text);
        out.as_f64()
            .unwrap_or_else(|| panic!("{text:?} gave {out}"))
            .to_bits()
    };
    let cases: [(&str, f64); 21] = [
        ("0x1p3", 8.0),
        ("-0X1.8P1", -3.0),
        ("0x1p3d", 8.0),
        ("+0xAp-1F", 5.0),
        (" 0x.8p1 ", 1.0),
        ("0x1.p1", 2.0),
        ("0x0p0", 0.0),
        ("-0x0p99999999999", -0.0),
        ("0x00000000000000000000001.0p0", 1.0),
        // Halfway between 1 and the next double: ties to even, down; past halfway, up.
        ("0x1.00000000000008p0", 1.0),
        ("0x1.000000000000080000000000001p0", 1.0 + f64::EPSILON),
        ("0x1.00000000000018p0", 1.0 + 2.0 * f64::EPSILON),
        ("0x1.fffffffffffffp1023", f64::MAX),
        ("0x1p-1022", f64::MIN_POSITIVE),
        // Subnormals: the smallest, a tie to even above it, and halfway to zero.
        ("0x1p-1074", f64::from_bits(1)),
        ("0x1.8p-1074", f64::from_bits(2)),
        ("0x1p-1075", 0.0),
        ("0x1.0000000000000000001p-1075", f64::from_bits(1)),
        ("0x0.fffffffffffff8p-1022", f64::MIN_POSITIVE),
        ("0x1p-2147483647", 0.0),
        ("0x1p-99999999999", 0.0),
    ];
    for (text, expected) in cases {
        assert_eq!(bits(text), expected.to_bits(), "{text:?}");
    }
    for text in [
        "0x1.fffffffffffff8p1023",
        "0x1p1024",
        "0x1p2147483647",
        "0x1p99999999999",
    ] {
        assert_eq!(to_double(text), json!("Infinity"), "{text:?}");
    }
    assert_eq!(to_double("-0x1p1024"), json!("-Infinity"));
    for text in [
        "0x1", "0x1.8", "0x.p1", "0xp1", "0x1p", "0x1p+", "0x1pd", "0x1gp1", "0x1p1.5", "0x 1p1",
        "0x1p١", "--0x1p1", "0x-1p1", "0x1p1x", "1p3", "0x1p1dd", "x1p1", "0x1p1 d",
    ] {
        assert_eq!(to_double(text), json!(text), "{text:?}");
    }
}
