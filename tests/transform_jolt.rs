//! Capability: JOLT conformance. Method: data-driven — one `check` runs every upstream fixture
//! in `../shared/conformance/jolt` (format in its README) through the public `transform::Spec`
//! API, compares with JOLT's Diffy rules (object key order ignored except for sort, expected
//! null matches a missing key, modifier arrays compared as multisets), prints pass counts per
//! operation and asserts the bars: every shift, default, remove, cardinality, sort and chain
//! fixture that needs no Java class, and at least 95% of modifier cases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail loudly on broken fixtures"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use streamcache::transform::{Functions, Spec};

/// Fixtures that need custom Java classes, with the reason; they are listed, not run.
const NEEDS_JAVA: &[(&str, &str)] = &[
    (
        "chainr/context/spec_with_context.json",
        "chain uses the custom Java transforms GoodContextDrivenTransform and GoodSpecAndContextDrivenTransform",
    ),
    (
        "chainr/transforms/loadsGoodTransform.json",
        "names the custom Java transform GoodTestTransform, which must load and run",
    ),
];

fn fixture_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let relative = manifest.join("../shared/conformance/jolt");
    if relative.is_dir() {
        return relative;
    }
    if let Ok(dir) = std::env::var("STREAMCACHE_JOLT_FIXTURES") {
        return PathBuf::from(dir);
    }
    let worktree = manifest.join("../../shared/conformance/jolt");
    if worktree.is_dir() {
        return worktree;
    }
    panic!(
        "JOLT fixtures not found at {} and STREAMCACHE_JOLT_FIXTURES is unset",
        relative.display()
    );
}

/// Removes `//` comments outside strings (Jackson's ALLOW_COMMENTS).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&strip_comments(&text))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone, Copy)]
struct Mode {
    multiset: bool,
    ordered: bool,
}

const DIFFY: Mode = Mode {
    multiset: false,
    ordered: false,
};

/// Diffy: `actual` is `None` when the key is missing.
fn same(expected: &Value, actual: Option<&Value>, mode: Mode) -> bool {
    match (expected, actual) {
        (Value::Null, None | Some(Value::Null)) => true,
        (_, None) => false,
        (Value::Object(e), Some(Value::Object(a))) => {
            if a.keys().any(|k| !e.contains_key(k)) {
                return false;
            }
            if mode.ordered {
                let ek: Vec<&String> = e.keys().filter(|k| a.contains_key(k.as_str())).collect();
                let ak: Vec<&String> = a.keys().collect();
                if ek != ak {
                    return false;
                }
            }
            e.iter().all(|(k, v)| same(v, a.get(k), mode))
        }
        (Value::Array(e), Some(Value::Array(a))) => {
            if e.len() != a.len() {
                return false;
            }
            if mode.multiset {
                let mut used = vec![false; a.len()];
                e.iter().all(|ev| {
                    let found = a
                        .iter()
                        .enumerate()
                        .find(|(i, av)| !used[*i] && same(ev, Some(av), mode));
                    match found {
                        Some((i, _)) => {
                            used[i] = true;
                            true
                        }
                        None => false,
                    }
                })
            } else {
                e.iter().zip(a).all(|(ev, av)| same(ev, Some(av), mode))
            }
        }
        (e, Some(a)) => e == a,
    }
}

#[derive(Default)]
struct Tally {
    by_op: BTreeMap<&'static str, (usize, usize)>,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, op: &'static str, name: String, ok: bool) {
        let entry = self.by_op.entry(op).or_default();
        entry.1 += 1;
        if ok {
            entry.0 += 1;
        } else {
            self.failures.push(format!("{op}: {name}"));
        }
    }
}

fn chain(operation: &str, spec: &Value) -> Value {
    json!([{ "operation": operation, "spec": spec }])
}

fn run(
    spec: &Value,
    input: &Value,
    context: &Value,
    functions: &Functions,
) -> Result<Value, String> {
    let spec = Spec::parse_with_functions(spec, functions).map_err(|e| e.to_string())?;
    spec.apply_with_context(input, context)
        .map_err(|e| e.to_string())
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    out
}

fn name(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Test-only stand-ins for the custom functions `ModifierTest` registers: for a map whose keys
/// are numeric strings, the value at the smallest (or largest) key.
fn label_functions() -> Functions {
    fn pick(args: &[Value], largest: bool) -> Option<Value> {
        let Some(Value::Object(map)) = args.first() else {
            return None;
        };
        let mut best: Option<(i64, &Value)> = None;
        for (k, v) in map {
            let Ok(n) = k.parse::<i64>() else { continue };
            if best.is_none_or(|(b, _)| if largest { n > b } else { n < b }) {
                best = Some((n, v));
            }
        }
        best.map(|(_, v)| v.clone())
    }
    let mut functions = Functions::default();
    functions.insert("minLabelComputation", |args: &[Value]| pick(args, false));
    functions.insert("maxLabelComputation", |args: &[Value]| pick(args, true));
    functions
}

fn check_triples(root: &Path, folder: &str, op: &'static str, operation: &str, tally: &mut Tally) {
    let functions = Functions::default();
    for path in files(&root.join(folder)) {
        let n = name(root, &path);
        let fixture = load(&path);
        let spec = chain(operation, &fixture["spec"]);
        let must_fail = fixture.get("expected").is_none() || n.ends_with("negativeTestCases.json");
        if must_fail {
            tally.record(op, n, Spec::parse(&spec).is_err());
            continue;
        }
        let mut ok = match run(&spec, &fixture["input"], &Value::Null, &functions) {
            Ok(actual) => same(&fixture["expected"], Some(&actual), DIFFY),
            Err(_) => false,
        };
        if n.ends_with("__deepCopyTest.json") {
            // Run again with the same parsed spec: defaults must have been copied.
            let parsed = Spec::parse(&spec).unwrap();
            let first = parsed.apply(&fixture["input"]).unwrap();
            let second = parsed.apply(&fixture["input"]).unwrap();
            ok &= same(&fixture["expected"], Some(&first), DIFFY)
                && same(&fixture["expected"], Some(&second), DIFFY);
        }
        tally.record(op, n, ok);
    }
}

fn check_modifier(root: &Path, tally: &mut Tally) {
    let functions = label_functions();
    let mut paths = files(&root.join("modifier"));
    paths.extend(files(&root.join("modifier/functions")));
    for path in paths {
        let n = name(root, &path);
        let fixture = load(&path);
        let strict =
            n.ends_with("squashNullsTests.json") || n.ends_with("deleteDuplicatesTests.json");
        let mode = Mode {
            multiset: !strict,
            ordered: false,
        };
        for (flavour, operation) in [
            ("OVERWRITR", "modify-overwrite-beta"),
            ("DEFAULTR", "modify-default-beta"),
            ("DEFINR", "modify-define-beta"),
        ] {
            let Some(expected) = fixture.get(flavour) else {
                continue;
            };
            let spec = chain(operation, &fixture["spec"]);
            let context = fixture.get("context").cloned().unwrap_or(Value::Null);
            let ok = match run(&spec, &fixture["input"], &context, &functions) {
                Ok(actual) => same(expected, Some(&actual), mode),
                Err(_) => false,
            };
            tally.record("modifier", format!("{n} {flavour}"), ok);
        }
    }
    let path = root.join("modifier/validation/specThatShouldFail.json");
    let specs = load(&path);
    for (i, spec) in specs.as_array().unwrap().iter().enumerate() {
        for operation in [
            "modify-overwrite-beta",
            "modify-default-beta",
            "modify-define-beta",
        ] {
            let rejected = Spec::parse(&chain(operation, spec)).is_err();
            tally.record(
                "modifier",
                format!("modifier/validation/specThatShouldFail.json[{i}] {operation}"),
                rejected,
            );
        }
    }
}

fn check_sort(root: &Path, tally: &mut Tally) {
    let input = load(&root.join("sortr/simple/input.json"));
    let expected = load(&root.join("sortr/simple/output.json"));
    let actual = run(
        &json!([{ "operation": "sort" }]),
        &input,
        &Value::Null,
        &Functions::default(),
    );
    let ok = actual.is_ok_and(|a| {
        same(
            &expected,
            Some(&a),
            Mode {
                multiset: false,
                ordered: true,
            },
        )
    });
    tally.record("sort", "sortr/simple".into(), ok);
}

fn check_chains(root: &Path, tally: &mut Tally) {
    let functions = Functions::default();
    for path in files(&root.join("chainr/integration")) {
        let n = name(root, &path);
        let fixture = load(&path);
        let mode = Mode {
            multiset: false,
            ordered: n.ends_with("firstSample.json"),
        };
        let ok = run(
            &fixture["spec"],
            &fixture["input"],
            &Value::Null,
            &functions,
        )
        .is_ok_and(|a| same(&fixture["expected"], Some(&a), mode));
        tally.record("chain", n, ok);
    }
    let spec = Spec::parse(&load(&root.join("chainr/increments/spec.json"))).unwrap();
    for path in files(&root.join("chainr/increments")) {
        let n = name(root, &path);
        let Some((from, to)) = path.file_stem().unwrap().to_str().unwrap().split_once('-') else {
            continue;
        };
        let (from, to): (usize, usize) = (from.parse().unwrap(), to.parse().unwrap());
        let expected = load(&path);
        let ok = spec
            .apply_range(from..to, &json!({}), &Value::Null)
            .is_ok_and(|a| same(&expected, Some(&a), DIFFY));
        tally.record("chain", n, ok);
    }
    for folder in ["chainr/specformat", "chainr/specloading"] {
        for path in files(&root.join(folder)) {
            let n = name(root, &path);
            tally.record("chain", n, Spec::parse(&load(&path)).is_err());
        }
    }
    let exploding = root.join("chainr/transforms/bad_transform_loadsExplodingTransform.json");
    tally.record(
        "chain",
        name(root, &exploding),
        Spec::parse(&load(&exploding)).is_err(),
    );
}

#[test]
fn jolt_conformance() {
    let root = fixture_dir();
    let mut tally = Tally::default();
    check_triples(&root, "shiftr", "shift", "shift", &mut tally);
    check_triples(&root, "defaultr", "default", "default", &mut tally);
    check_triples(&root, "removr", "remove", "remove", &mut tally);
    check_triples(
        &root,
        "cardinality",
        "cardinality",
        "cardinality",
        &mut tally,
    );
    check_sort(&root, &mut tally);
    check_modifier(&root, &mut tally);
    check_chains(&root, &mut tally);

    println!("JOLT conformance (fixtures: {})", root.display());
    for (op, (pass, total)) in &tally.by_op {
        println!("  {op:<12} {pass:>3}/{total:<3}");
    }
    for (fixture, reason) in NEEDS_JAVA {
        assert!(
            root.join(fixture).is_file(),
            "listed fixture {fixture} is missing"
        );
        println!("  not run (needs a Java class): {fixture}: {reason}");
    }
    for failure in &tally.failures {
        println!("  FAIL {failure}");
    }
    for (op, (pass, total)) in &tally.by_op {
        if *op == "modifier" {
            assert!(
                *pass * 100 >= *total * 95,
                "modifier: {pass}/{total} is below 95%"
            );
        } else {
            assert_eq!(pass, total, "{op}: every fixture must pass");
        }
    }
}

#[test]
fn comment_stripping_keeps_urls_in_strings() {
    let text = "{\"a\": \"http://x\" // note\n}";
    assert_eq!(
        serde_json::from_str::<Value>(&strip_comments(text)).unwrap(),
        json!({"a": "http://x"})
    );
}
