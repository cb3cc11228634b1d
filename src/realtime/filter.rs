//! A compiled MongoDB `$match` filter and projection over `serde_json` values, for watchers.
//!
//! Supported: dotted paths (through arrays, as MongoDB does; an operator holds for an array field
//! when it holds for the array or one of its elements), implicit equality, `$eq $ne $gt
//! $gte $lt $lte $in $nin $exists $regex $not`, and `$and $or $nor`. Anything else is refused
//! when the configuration is loaded, not when an event arrives.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::{
    MATCH_DEPTH_MAX, MATCH_IN_VALUES_MAX, MATCH_REGEX_BYTES_MAX, MATCH_REGEX_COMPILED_BYTES_MAX,
};

/// Why a filter or projection does not compile.
pub(crate) type CompileError = String;

/// A compiled `$match` filter.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Every clause holds.
    And(Vec<Filter>),
    /// At least one clause holds.
    Or(Vec<Filter>),
    /// No clause holds.
    Nor(Vec<Filter>),
    /// The value at a dotted path satisfies every operator.
    Field {
        /// Path segments.
        path: Vec<String>,
        /// Operators, all of which must hold.
        ops: Vec<Op>,
    },
}

/// One field operator.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Regex(Regex),
    Not(Vec<Op>),
}

impl Filter {
    /// Compiles a `$match` document.
    pub(crate) fn compile(doc: &Value) -> Result<Self, CompileError> {
        compile_doc(doc, 1)
    }

    /// Appends every field path the filter reads (as segments) to `out`.
    pub(crate) fn paths<'a>(&'a self, out: &mut Vec<&'a [String]>) {
        match self {
            Self::And(fs) | Self::Or(fs) | Self::Nor(fs) => fs.iter().for_each(|f| f.paths(out)),
            Self::Field { path, .. } => out.push(path),
        }
    }

    /// Whether `value` matches.
    pub(crate) fn matches(&self, value: &Value) -> bool {
        match self {
            Self::And(fs) => fs.iter().all(|f| f.matches(value)),
            Self::Or(fs) => fs.iter().any(|f| f.matches(value)),
            Self::Nor(fs) => !fs.iter().any(|f| f.matches(value)),
            Self::Field { path, ops } => {
                let mut found = Vec::new();
                resolve(value, path, &mut found);
                ops.iter().all(|op| op.holds(&found))
            }
        }
    }
}

fn depth_error(depth: usize) -> CompileError {
    format!("match filter nests {depth} levels, at most {MATCH_DEPTH_MAX} allowed")
}

fn compile_doc(doc: &Value, depth: usize) -> Result<Filter, CompileError> {
    if depth > MATCH_DEPTH_MAX {
        return Err(depth_error(depth));
    }
    let obj = doc.as_object().ok_or("a match filter must be an object")?;
    let mut clauses = Vec::new();
    for (key, value) in obj {
        let list = |v: &Value| -> Result<Vec<Filter>, CompileError> {
            let items = v
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or(format!("{key} needs a non-empty array"))?;
            items.iter().map(|d| compile_doc(d, depth + 1)).collect()
        };
        clauses.push(match key.as_str() {
            "$and" => Filter::And(list(value)?),
            "$or" => Filter::Or(list(value)?),
            "$nor" => Filter::Nor(list(value)?),
            k if k.starts_with('$') => {
                return Err(format!("operator {k} is not supported at the top level"));
            }
            k => Filter::Field {
                path: k.split('.').map(str::to_owned).collect(),
                ops: compile_ops(value, depth + 1)?,
            },
        });
    }
    Ok(Filter::And(clauses))
}

fn compile_ops(value: &Value, depth: usize) -> Result<Vec<Op>, CompileError> {
    if depth > MATCH_DEPTH_MAX {
        return Err(depth_error(depth));
    }
    let Some(obj) = value
        .as_object()
        .filter(|o| o.keys().next().is_some_and(|k| k.starts_with('$')))
    else {
        return Ok(vec![Op::Eq(value.clone())]);
    };
    let array = |k: &str, v: &Value| -> Result<Vec<Value>, CompileError> {
        let items = v.as_array().ok_or(format!("{k} needs an array"))?;
        if items.len() > MATCH_IN_VALUES_MAX {
            return Err(format!(
                "{k} has {} values, at most {MATCH_IN_VALUES_MAX} allowed",
                items.len()
            ));
        }
        Ok(items.clone())
    };
    obj.iter()
        .map(|(k, v)| {
            Ok(match k.as_str() {
                "$eq" => Op::Eq(v.clone()),
                "$ne" => Op::Ne(v.clone()),
                "$gt" => Op::Cmp(Ordering::Greater, false, v.clone()),
                "$gte" => Op::Cmp(Ordering::Greater, true, v.clone()),
                "$lt" => Op::Cmp(Ordering::Less, false, v.clone()),
                "$lte" => Op::Cmp(Ordering::Less, true, v.clone()),
                "$in" => Op::In(array(k, v)?),
                "$nin" => Op::Nin(array(k, v)?),
                "$exists" => Op::Exists(
                    v.as_bool()
                        .unwrap_or_else(|| v.as_i64().is_some_and(|n| n != 0)),
                ),
                "$regex" => {
                    let pattern = v.as_str().ok_or("$regex needs a string")?;
                    if pattern.len() > MATCH_REGEX_BYTES_MAX {
                        return Err(format!(
                            "$regex is {} bytes, at most {MATCH_REGEX_BYTES_MAX} allowed",
                            pattern.len()
                        ));
                    }
                    Op::Regex(
                        RegexBuilder::new(pattern)
                            .size_limit(MATCH_REGEX_COMPILED_BYTES_MAX)
                            .build()
                            .map_err(|e| format!("$regex: {e}"))?,
                    )
                }
                "$not" => Op::Not(compile_ops(v, depth + 1)?),
                other => return Err(format!("operator {other} is not supported")),
            })
        })
        .collect()
}

/// Collects the values at `path`, descending into arrays as MongoDB does.
fn resolve<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    let Some((head, rest)) = path.split_first() else {
        out.push(value);
        return;
    };
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(head) {
                resolve(v, rest, out);
            }
        }
        Value::Array(items) => {
            if let Some(v) = head.parse::<usize>().ok().and_then(|i| items.get(i)) {
                resolve(v, rest, out);
            }
            for item in items.iter().filter(|i| i.is_object()) {
                resolve(item, path, out);
            }
        }
        _ => {}
    }
}

/// A found value and, when it is an array, each of its elements: MongoDB matches an array
/// field when the array itself or one of its elements satisfies the operator.
fn candidates(v: &Value) -> impl Iterator<Item = &Value> {
    std::iter::once(v).chain(v.as_array().into_iter().flatten())
}

/// MongoDB equality: the value itself, or an element of an array value, numbers compared by
/// value (`1` equals `1.0`); `null` also matches a missing field.
fn equals(found: &[&Value], want: &Value) -> bool {
    if want.is_null() && found.is_empty() {
        return true;
    }
    found
        .iter()
        .any(|v| candidates(v).any(|c| c == want || (c.is_number() && c.as_f64() == want.as_f64())))
}

/// Orders two values of the same kind (numbers, strings, booleans with `false` first, or two
/// nulls); other pairs do not compare, as MongoDB's comparison operators stay within a type.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

impl Op {
    fn holds(&self, found: &[&Value]) -> bool {
        match self {
            Self::Eq(want) => equals(found, want),
            Self::Ne(want) => !equals(found, want),
            // `$gte`/`$lte` null also match a missing field, as equality to null does.
            Self::Cmp(dir, or_equal, want) => {
                (*or_equal && want.is_null() && found.is_empty())
                    || found.iter().any(|v| {
                        candidates(v).any(|c| {
                            compare(c, want)
                                .is_some_and(|o| o == *dir || (*or_equal && o == Ordering::Equal))
                        })
                    })
            }
            Self::In(list) => list.iter().any(|want| equals(found, want)),
            Self::Nin(list) => !list.iter().any(|want| equals(found, want)),
            Self::Exists(want) => found.is_empty() != *want,
            Self::Regex(re) => found
                .iter()
                .any(|v| candidates(v).any(|c| c.as_str().is_some_and(|s| re.is_match(s)))),
            Self::Not(ops) => !ops.iter().all(|op| op.holds(found)),
        }
    }
}

/// A compiled projection: keep only the listed paths, or drop them.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    /// `true`: keep the paths (and `_id` unless dropped); `false`: drop them.
    include: bool,
    /// Dotted paths, split.
    paths: Vec<Vec<String>>,
    /// Whether `_id` is dropped in inclusion mode.
    drop_id: bool,
}

impl Projection {
    /// Compiles `{"a": 1, "b.c": 1}` (inclusion) or `{"a": 0}` (exclusion).
    pub(crate) fn compile(doc: &Value) -> Result<Self, CompileError> {
        let obj = doc
            .as_object()
            .filter(|o| !o.is_empty())
            .ok_or("a projection must be a non-empty object")?;
        let flag = |v: &Value| {
            v.as_bool()
                .or_else(|| v.as_i64().map(|n| n != 0))
                .ok_or("projection values must be 0/1 or booleans")
        };
        let mut include = None;
        let mut drop_id = false;
        let mut paths = Vec::new();
        for (k, v) in obj {
            let keep = flag(v)?;
            if k == "_id" && !keep {
                drop_id = true;
                continue;
            }
            if include.is_some_and(|i| i != keep) {
                return Err("a projection cannot mix inclusion and exclusion".into());
            }
            include = Some(keep);
            paths.push(k.split('.').map(str::to_owned).collect());
        }
        match include {
            Some(include) => Ok(Self {
                include,
                paths,
                drop_id,
            }),
            None => Ok(Self {
                include: false,
                paths: vec![vec!["_id".to_owned()]],
                drop_id: false,
            }),
        }
    }

    /// Applies the projection to a document.
    pub(crate) fn apply(&self, doc: &Value) -> Value {
        if self.include {
            let mut out = Map::new();
            if let Some(id) = doc.get("_id").filter(|_| !self.drop_id) {
                out.insert("_id".into(), id.clone());
            }
            let mut out = Value::Object(out);
            for path in &self.paths {
                copy_path(doc, &mut out, path);
            }
            out
        } else {
            let mut out = doc.clone();
            for path in &self.paths {
                remove_path(&mut out, path);
            }
            out
        }
    }
}

fn copy_path(src: &Value, dst: &mut Value, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    let (Some(src_map), Some(dst_map)) = (src.as_object(), dst.as_object_mut()) else {
        return;
    };
    let Some(v) = src_map.get(head) else { return };
    if rest.is_empty() {
        dst_map.insert(head.clone(), v.clone());
        return;
    }
    match v {
        Value::Object(_) => {
            let slot = dst_map
                .entry(head.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            copy_path(v, slot, rest);
        }
        Value::Array(items) => {
            let projected: Vec<Value> = items
                .iter()
                .filter(|i| i.is_object())
                .map(|i| {
                    let mut o = Value::Object(Map::new());
                    copy_path(i, &mut o, rest);
                    o
                })
                .collect();
            dst_map.insert(head.clone(), Value::Array(projected));
        }
        _ => {}
    }
}

fn remove_path(value: &mut Value, path: &[String]) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    match value {
        Value::Object(map) if rest.is_empty() => {
            map.remove(head);
        }
        Value::Object(map) => {
            if let Some(v) = map.get_mut(head) {
                remove_path(v, rest);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| remove_path(i, path)),
        _ => {}
    }
}
