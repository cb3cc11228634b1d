//! `modify-overwrite-beta`, `modify-default-beta` and `modify-define-beta` (JOLT's Modifier):
//! writes values computed by functions, `@` lookups, `^` context lookups or literals into the
//! input, creating containers on the way.
//!
//! Overwrite always writes; default writes where the value is missing or null; define writes
//! only where the key is missing (for arrays: where the index is past the input's length). A
//! key may override the flavour with a `+`, `~` or `_` prefix, and a `?` suffix applies it only
//! when the key is present. Children run in JOLT's order: all literal keys, then each input key
//! against the computed keys (`[N]`, star patterns, `*`); for define over an array, each index
//! goes to its literal key if there is one, else to the computed keys.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::functions::{
    CustomFn, Functions, Stock, literal_number, squash_nulls, squash_nulls_deep,
};
use crate::transform::budget::Budget;
use crate::transform::error::Result;
use crate::transform::path::{
    Key, Matched, Rhs, Seg, Transpose, Walk, child, locate_path, parse_key, parse_rhs_path,
    precedence_order, read_path, split_alternatives,
};
use crate::transform::spec::{invalid, pointer};

/// Which modifier flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModifyMode {
    /// `modify-overwrite-beta`, key prefix `+`.
    Overwrite,
    /// `modify-default-beta`, key prefix `~`.
    Default,
    /// `modify-define-beta`, key prefix `_`.
    Define,
}

/// A parsed modifier spec.
#[derive(Debug)]
pub(crate) struct Modify {
    root: Composite,
}

#[derive(Debug)]
struct Node {
    key: Key,
    mode: ModifyMode,
    /// `?` suffix: apply only when the key is present.
    check: bool,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// Evaluators tried in order; the first that yields a value wins.
    Leaf(Vec<Eval>),
    Composite(Composite),
}

#[derive(Debug, Clone, Copy)]
enum DataType {
    Map,
    /// An array, expanded to hold the largest explicit index.
    List(Option<usize>),
    /// Only `*` children: whatever the input is, as long as it is not null.
    Runtime,
}

#[derive(Debug, Clone, Copy)]
enum Strategy {
    AllLiterals,
    Computed,
    Conflict,
    AllLiteralsWithComputed,
}

#[derive(Debug)]
struct Composite {
    literals: Vec<(String, Node)>,
    computed: Vec<Node>,
    data_type: DataType,
    strategy: Strategy,
}

enum Func {
    Stock(Stock),
    Custom(Arc<CustomFn>),
    /// JOLT quietly evaluates to the first argument when the function name is unknown.
    Unknown,
}

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Func::Stock(stock) => write!(f, "{stock:?}"),
            Func::Custom(_) => f.write_str("Custom"),
            Func::Unknown => f.write_str("Unknown"),
        }
    }
}

#[derive(Debug)]
enum Arg {
    Literal(Value),
    /// `@(N,path)` over the input.
    SelfLookup(Transpose),
    /// `^path` over the context.
    Context(Vec<Rhs>),
}

#[derive(Debug)]
enum Eval {
    Arg(Arg),
    Call { func: Func, args: Vec<Arg> },
}

/// What evaluation reads besides the document: the context, and the copy budget.
struct Env<'e> {
    context: &'e Value,
    budget: &'e Budget,
}

#[derive(Debug)]
struct Level {
    matched: Matched<'static>,
    /// For a level whose value is an array: its length before the spec expanded it.
    orig_size: Option<usize>,
}

/// The walked path of a modify run: matches per level plus the steps from the root, so that
/// `@` lookups read the document as it is being modified.
#[derive(Debug, Default)]
struct ModWalk {
    levels: Vec<Level>,
    segs: Vec<Seg>,
}

/// Read-only view of the document and walked path for evaluating references.
struct View<'v> {
    root: &'v Value,
    walk: &'v ModWalk,
}

impl<'v> Walk<'v> for View<'v> {
    fn matched(&self, up: usize) -> Option<&Matched<'_>> {
        let index = self.walk.levels.len().checked_sub(up.checked_add(1)?)?;
        self.walk.levels.get(index).map(|l| &l.matched)
    }
    fn hash_count(&self, _up: usize) -> Option<usize> {
        None
    }
    /// A level's value; a leaf whose key is missing reads as null, as JOLT's walked path holds
    /// a null tree reference for it.
    fn tree(&self, up: usize) -> Option<&'v Value> {
        Some(nav(self.root, self.tree_segs(up)?).unwrap_or(&Value::Null))
    }
}

impl View<'_> {
    /// The steps from the root to the level `up` levels above the current one.
    fn tree_segs(&self, up: usize) -> Option<&[Seg]> {
        let index = self.walk.levels.len().checked_sub(up.checked_add(1)?)?;
        // Levels 0 and 1 are both the root, as in JOLT.
        let depth = index.saturating_sub(1);
        self.walk.segs.get(..depth)
    }
}

fn nav<'v>(root: &'v Value, segs: &[Seg]) -> Option<&'v Value> {
    segs.iter().try_fold(root, |cur, seg| seg.read(cur))
}

fn nav_mut<'v>(root: &'v mut Value, segs: &[Seg]) -> Option<&'v mut Value> {
    segs.iter().try_fold(root, |cur, seg| seg.read_mut(cur))
}

impl Modify {
    /// Parses a modifier spec of flavour `mode`; `path` is the JSON Pointer of `spec`.
    pub(crate) fn parse(
        spec: &Value,
        mode: ModifyMode,
        functions: &Functions,
        path: &str,
    ) -> Result<Self> {
        let Value::Object(map) = spec else {
            return Err(invalid(path, "a modify spec must be a JSON object"));
        };
        Ok(Modify {
            root: Composite::parse(map, mode, functions, path)?,
        })
    }

    /// Applies the spec to `doc` in place; `context` is what `^` reads.
    pub(crate) fn apply(
        &self,
        doc: &mut Value,
        context: &Value,
        op: usize,
        budget: &Budget,
    ) -> Result<()> {
        let env = Env { context, budget };
        self.apply_inner(doc, &env);
        if let Some(e) = budget.error(op) {
            return Err(e);
        }
        Ok(())
    }

    fn apply_inner(&self, doc: &mut Value, context: &Env<'_>) {
        let root_match = || Matched::plain(Cow::Borrowed("root"));
        if !self.root.data_type.compatible(Some(&*doc)) || doc.is_null() {
            return;
        }
        let orig_size = self.root.expand(doc);
        let mut walk = ModWalk::default();
        walk.levels.push(Level {
            matched: root_match(),
            orig_size: None,
        });
        walk.levels.push(Level {
            matched: root_match(),
            orig_size,
        });
        self.root.process(doc, &mut walk, context);
    }
}

fn parse_mode_key(
    raw: &str,
    inherited: ModifyMode,
) -> std::result::Result<(Key, ModifyMode, bool), String> {
    let (mode, rest) = match raw.chars().next() {
        Some('+') => (ModifyMode::Overwrite, raw.get(1..).unwrap_or_default()),
        Some('~') => (ModifyMode::Default, raw.get(1..).unwrap_or_default()),
        Some('_') => (ModifyMode::Define, raw.get(1..).unwrap_or_default()),
        _ => (inherited, raw),
    };
    let (rest, check) = match rest.strip_suffix('?') {
        Some(stripped) if !stripped.ends_with('\\') && !stripped.is_empty() => (stripped, true),
        _ => (rest, false),
    };
    let key = parse_key(rest)?;
    match key {
        Key::Literal(_) | Key::StarAll | Key::Star(_) => Ok((key, mode, check)),
        Key::Array(i) if i <= crate::transform::ARRAY_INDEX_MAX => Ok((key, mode, check)),
        Key::Array(i) => Err(format!(
            "index {i} is more than the limit of {}",
            crate::transform::ARRAY_INDEX_MAX
        )),
        _ => Err(format!(
            "`{raw}`: a modify key must be a literal, `[N]`, `*` or a star pattern"
        )),
    }
}

impl Composite {
    fn parse(
        map: &Map<String, Value>,
        mode: ModifyMode,
        functions: &Functions,
        path: &str,
    ) -> Result<Self> {
        let mut literals: Vec<(String, Node)> = Vec::new();
        let mut computed = Vec::new();
        let mut map_at: Option<String> = None;
        let mut array_at: Option<String> = None;
        let mut max_index: Option<usize> = None;
        let mut seen = std::collections::HashSet::new();
        for (raw_key, value) in map {
            let node_path = pointer(path, raw_key);
            for raw in split_alternatives(raw_key) {
                let (key, child_mode, check) =
                    parse_mode_key(raw, mode).map_err(|reason| invalid(&node_path, &reason))?;
                let body = match value {
                    Value::Object(children) if !children.is_empty() => Body::Composite(
                        Composite::parse(children, child_mode, functions, &node_path)?,
                    ),
                    leaf => Body::Leaf(
                        parse_rhs(leaf, functions)
                            .map_err(|reason| invalid(&node_path, &reason))?,
                    ),
                };
                let literal = match &key {
                    Key::Literal(s) => {
                        map_at = Some(raw.to_owned());
                        Some(s.clone())
                    }
                    Key::Array(i) => {
                        array_at = Some(raw.to_owned());
                        if !check {
                            max_index = Some(max_index.map_or(*i, |m| m.max(*i)));
                        }
                        Some(i.to_string())
                    }
                    Key::Star(_) => {
                        map_at = Some(raw.to_owned());
                        None
                    }
                    _ => None,
                };
                if let (Some(m), Some(a)) = (&map_at, &array_at) {
                    return Err(invalid(
                        &node_path,
                        &format!(
                            "cannot mix array index `{a}` and map key `{m}` among the same children"
                        ),
                    ));
                }
                if !seen.insert(key.precedence()) {
                    return Err(invalid(
                        &node_path,
                        &format!("key `{raw}` duplicates another key"),
                    ));
                }
                let node = Node {
                    key,
                    mode: child_mode,
                    check,
                    body,
                };
                match literal {
                    Some(name) => literals.push((name, node)),
                    None => computed.push(node),
                }
            }
        }
        computed.sort_by(|a: &Node, b: &Node| precedence_order(&a.key, &b.key));
        let data_type = if array_at.is_some() {
            DataType::List(max_index)
        } else if map_at.is_some() {
            DataType::Map
        } else {
            DataType::Runtime
        };
        let strategy = if computed.is_empty() {
            Strategy::AllLiterals
        } else if literals.is_empty() {
            Strategy::Computed
        } else if mode == ModifyMode::Define && matches!(data_type, DataType::List(_)) {
            Strategy::Conflict
        } else {
            Strategy::AllLiteralsWithComputed
        };
        Ok(Composite {
            literals,
            computed,
            data_type,
            strategy,
        })
    }

    /// Expands an array to hold the spec's largest explicit index; returns the array's length
    /// before (for arrays).
    fn expand(&self, value: &mut Value) -> Option<usize> {
        let Value::Array(list) = value else {
            return None;
        };
        let orig = list.len();
        if let DataType::List(Some(max)) = self.data_type
            && list.len() <= max
        {
            list.resize(max + 1, Value::Null);
        }
        Some(orig)
    }

    fn process(&self, root: &mut Value, walk: &mut ModWalk, context: &Env<'_>) {
        let orig = walk.levels.last().and_then(|l| l.orig_size);
        // The keys of this level with whether each is present (an expanded array slot is not).
        let keys_now = |root: &Value, walk: &ModWalk| -> Vec<(String, bool)> {
            match nav(root, &walk.segs) {
                Some(Value::Object(map)) => map.keys().map(|k| (k.clone(), true)).collect(),
                Some(Value::Array(list)) => list
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        (
                            i.to_string(),
                            !(v.is_null() && orig.is_some_and(|o| i >= o)),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let Some(here) = nav(root, &walk.segs) else {
            return;
        };
        if !here.is_array() && !here.is_object() {
            return;
        }
        let is_list = here.is_array();
        let present = |root: &Value, walk: &ModWalk, key: &str| -> bool {
            match nav(root, &walk.segs) {
                Some(Value::Object(map)) => map.contains_key(key),
                Some(Value::Array(list)) => key.parse::<usize>().ok().is_some_and(|i| {
                    list.get(i)
                        .is_some_and(|v| !(v.is_null() && orig.is_some_and(|o| i >= o)))
                }),
                _ => false,
            }
        };
        let literals_phase = |root: &mut Value, walk: &mut ModWalk| {
            for (key, node) in &self.literals {
                if is_list && key.parse::<usize>().is_err() {
                    continue;
                }
                let is_present = present(root, walk, key);
                node.apply(key, is_present, root, walk, context);
            }
        };
        match self.strategy {
            Strategy::AllLiterals => literals_phase(root, walk),
            Strategy::Computed => self.computed_phase(&keys_now(root, walk), root, walk, context),
            Strategy::AllLiteralsWithComputed => {
                literals_phase(root, walk);
                // Literal children may have added or filled keys: iterate them as they are now.
                self.computed_phase(&keys_now(root, walk), root, walk, context);
            }
            Strategy::Conflict => {
                for (key, is_present) in &keys_now(root, walk) {
                    match self.literals.iter().find(|(k, _)| k == key) {
                        Some((_, node)) => {
                            node.apply(key, *is_present, root, walk, context);
                        }
                        None => self.first_computed(key, *is_present, root, walk, context),
                    }
                }
            }
        }
    }

    fn computed_phase(
        &self,
        keys: &[(String, bool)],
        root: &mut Value,
        walk: &mut ModWalk,
        context: &Env<'_>,
    ) {
        for (key, is_present) in keys {
            self.first_computed(key, *is_present, root, walk, context);
        }
    }

    fn first_computed(
        &self,
        key: &str,
        is_present: bool,
        root: &mut Value,
        walk: &mut ModWalk,
        context: &Env<'_>,
    ) {
        for node in &self.computed {
            if node.apply(key, is_present, root, walk, context) {
                break;
            }
        }
    }
}

impl DataType {
    fn compatible(self, input: Option<&Value>) -> bool {
        match (self, input) {
            (DataType::Map, None | Some(Value::Null | Value::Object(_))) => true,
            (DataType::List(_), None | Some(Value::Null | Value::Array(_))) => true,
            (DataType::Runtime, Some(v)) => !v.is_null(),
            _ => false,
        }
    }
}

impl ModifyMode {
    /// Whether a write of `key` into `parent` may happen (`orig` is an array's original length).
    fn applicable(self, parent: &Value, key: &str, orig: Option<usize>) -> bool {
        match parent {
            Value::Object(map) => match self {
                ModifyMode::Overwrite => true,
                ModifyMode::Default => map.get(key).is_none_or(Value::is_null),
                ModifyMode::Define => !map.contains_key(key),
            },
            Value::Array(list) => {
                let Ok(index) = key.parse::<usize>() else {
                    return false;
                };
                let Some(current) = list.get(index) else {
                    return false;
                };
                match self {
                    ModifyMode::Overwrite => true,
                    ModifyMode::Default => current.is_null(),
                    ModifyMode::Define => index >= orig.unwrap_or(list.len()) && current.is_null(),
                }
            }
            _ => false,
        }
    }
}

/// Puts `value` at `key` of the container at `segs`, if the mode allows.
fn set(
    root: &mut Value,
    segs: &[Seg],
    key: &str,
    value: Value,
    mode: ModifyMode,
    orig: Option<usize>,
) -> bool {
    let Some(parent) = nav_mut(root, segs) else {
        return false;
    };
    if !mode.applicable(parent, key, orig) {
        return false;
    }
    match parent {
        Value::Object(map) => {
            map.insert(key.to_owned(), value);
            true
        }
        Value::Array(list) => match key.parse::<usize>().ok().and_then(|i| list.get_mut(i)) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        },
        _ => false,
    }
}

impl Node {
    /// Applies this child to `key`; returns whether the key matched.
    fn apply(
        &self,
        key: &str,
        is_present: bool,
        root: &mut Value,
        walk: &mut ModWalk,
        context: &Env<'_>,
    ) -> bool {
        let matched = {
            let view = View { root, walk };
            match self.key.matches(&Cow::Borrowed(key), &view) {
                Some(m) => Matched {
                    key: Cow::Owned(m.key.into_owned()),
                    groups: m.groups,
                },
                None => return false,
            }
        };
        if self.check && !is_present {
            return true;
        }
        let parent_is_list = matches!(nav(root, &walk.segs), Some(Value::Array(_)));
        let seg = if parent_is_list {
            match key.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => return true,
            }
        } else {
            Seg::Key(key.to_owned())
        };
        let parent_orig = walk.levels.last().and_then(|l| l.orig_size);
        match &self.body {
            Body::Leaf(evals) => {
                walk.levels.push(Level {
                    matched,
                    orig_size: None,
                });
                walk.segs.push(seg);
                let found = {
                    let view = View { root, walk };
                    let input = if is_present { view.tree(0) } else { None };
                    evals.iter().find_map(|e| {
                        let value = e.eval(input, &view, context)?;
                        Some((value, e.squashed_in_place(input.is_some(), &view)))
                    })
                };
                if let Some((_, Some(squashed))) = &found {
                    squashed.apply(root);
                }
                walk.segs.pop();
                walk.levels.pop();
                if let Some((value, _)) = found {
                    set(root, &walk.segs, key, value, self.mode, parent_orig);
                }
            }
            Body::Composite(composite) => {
                let input = if is_present {
                    nav(root, &walk.segs).and_then(|p| child(p, key))
                } else {
                    None
                };
                if !composite.data_type.compatible(input) {
                    return true;
                }
                if input.is_none_or(Value::is_null) {
                    let fresh = match composite.data_type {
                        DataType::Map => Value::Object(Map::new()),
                        DataType::List(_) => Value::Array(Vec::new()),
                        DataType::Runtime => return true,
                    };
                    if !set(root, &walk.segs, key, fresh, self.mode, parent_orig) {
                        return true;
                    }
                }
                walk.segs.push(seg);
                let orig_size = nav_mut(root, &walk.segs).and_then(|v| composite.expand(v));
                walk.levels.push(Level { matched, orig_size });
                composite.process(root, walk, context);
                walk.levels.pop();
                walk.segs.pop();
            }
        }
        true
    }
}

/// Parses a leaf's right-hand side.
fn parse_rhs(value: &Value, functions: &Functions) -> std::result::Result<Vec<Eval>, String> {
    match value {
        Value::String(s) => Ok(vec![parse_expression(s, functions)?]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => parse_expression(s, functions),
                other => Ok(Eval::Arg(Arg::Literal(other.clone()))),
            })
            .collect(),
        other => Ok(vec![Eval::Arg(Arg::Literal(other.clone()))]),
    }
}

fn parse_expression(s: &str, functions: &Functions) -> std::result::Result<Eval, String> {
    let Some(call) = s.strip_prefix('=') else {
        return parse_arg(s, false).map(Eval::Arg);
    };
    let lookup = |name: &str| match functions.get(name) {
        Some(custom) => Func::Custom(custom),
        None => Stock::by_name(name).map_or(Func::Unknown, Func::Stock),
    };
    if !call.contains('(') && !call.ends_with(')') {
        return Ok(Eval::Call {
            func: lookup(call),
            args: Vec::new(),
        });
    }
    let (name, args) = split_call(call)?;
    let args = args
        .iter()
        .map(|a| parse_arg(a, true))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Eval::Call {
        func: lookup(name),
        args,
    })
}

/// Splits `name(a, b, …)` at top-level commas outside quotes, trimming each argument.
fn split_call(call: &str) -> std::result::Result<(&str, Vec<String>), String> {
    let open = call
        .find('(')
        .ok_or_else(|| format!("`={call}` is missing its `(`"))?;
    let name = call.get(..open).unwrap_or_default();
    let inner = call
        .get(open + 1..)
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("`={call}` is missing its closing `)`"))?;
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_parens = false;
    let mut in_quotes = false;
    for c in inner.chars() {
        match c {
            '(' if !in_quotes => in_parens = true,
            ')' if !in_quotes => in_parens = false,
            '\'' => in_quotes = !in_quotes,
            ',' if !in_parens && !in_quotes => {
                args.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    args.push(cur.trim().to_owned());
    Ok((name, args))
}

fn parse_arg(s: &str, in_function: bool) -> std::result::Result<Arg, String> {
    if let Some(path) = s.strip_prefix('^') {
        return parse_rhs_path(path).map(Arg::Context);
    }
    if s.starts_with('@') {
        return Transpose::parse(s).map(Arg::SelfLookup);
    }
    if !in_function {
        return Ok(Arg::Literal(Value::from(s)));
    }
    if s.is_empty() {
        return Ok(Arg::Literal(Value::Null));
    }
    if let Some(quoted) = s.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
        return Ok(Arg::Literal(Value::from(quoted)));
    }
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return Ok(Arg::Literal(Value::Bool(s.eq_ignore_ascii_case("true"))));
    }
    Ok(Arg::Literal(
        literal_number(s).unwrap_or_else(|| Value::from(s)),
    ))
}

impl Arg {
    fn eval(&self, view: &View<'_>, context: &Env<'_>) -> Option<Value> {
        match self {
            Arg::Literal(v) => Some(context.budget.copy(v)),
            Arg::SelfLookup(t) => t.read(view).map(|v| context.budget.copy(v)),
            Arg::Context(path) => {
                read_path(context.context, path, view).map(|v| context.budget.copy(v))
            }
        }
    }
}

/// Values of the document a squashing function edited in place.
struct Squashed {
    deep: bool,
    targets: Vec<Vec<Seg>>,
}

impl Squashed {
    fn apply(&self, root: &mut Value) {
        for target in &self.targets {
            if let Some(value) = nav_mut(root, target) {
                if self.deep {
                    squash_nulls_deep(value);
                } else {
                    squash_nulls(value);
                }
            }
        }
    }
}

impl Arg {
    /// Where in the document an `@` argument's value is.
    fn locate(&self, view: &View<'_>) -> Option<Vec<Seg>> {
        let Arg::SelfLookup(t) = self else {
            return None;
        };
        let mut segs = view.tree_segs(t.up)?.to_vec();
        let base = nav(view.root, &segs)?;
        segs.extend(locate_path(base, t.sub_path(), view)?);
        Some(segs)
    }
}

impl Eval {
    /// For a call that yielded a value: the document values it squashed in place. JOLT's
    /// `squashNulls` and `recursivelySquashNulls` edit their argument, and the argument is the
    /// document's own value (the current one, or an `@` lookup), so the source is squashed
    /// whether or not the flavour writes the result. With several arguments (none null, or
    /// there is no value) the outer list is a fresh one: `squashNulls` leaves the arguments
    /// alone, `recursivelySquashNulls` squashes each.
    fn squashed_in_place(&self, input_present: bool, view: &View<'_>) -> Option<Squashed> {
        let Eval::Call {
            func: Func::Stock(stock @ (Stock::SquashNulls | Stock::RecursivelySquashNulls)),
            args,
        } = self
        else {
            return None;
        };
        let deep = *stock == Stock::RecursivelySquashNulls;
        let targets = match args.as_slice() {
            [] => input_present
                .then(|| view.walk.segs.clone())
                .into_iter()
                .collect(),
            [one] => one.locate(view).into_iter().collect(),
            many if deep => many.iter().filter_map(|a| a.locate(view)).collect(),
            _ => Vec::new(),
        };
        Some(Squashed { deep, targets })
    }

    fn eval(&self, input: Option<&Value>, view: &View<'_>, context: &Env<'_>) -> Option<Value> {
        match self {
            Eval::Arg(arg) => arg.eval(view, context),
            Eval::Call {
                func: Func::Unknown,
                args,
            } => args.first()?.eval(view, context),
            Eval::Call { func, args } => {
                let values: Vec<Value> = match args.as_slice() {
                    [] => input.map(|v| context.budget.copy(v)).into_iter().collect(),
                    [one] => one.eval(view, context).into_iter().collect(),
                    many => many
                        .iter()
                        .map(|a| a.eval(view, context).unwrap_or(Value::Null))
                        .collect(),
                };
                match func {
                    Func::Stock(stock) => stock.call(&values),
                    Func::Custom(custom) => custom(&values),
                    Func::Unknown => None,
                }
            }
        }
    }
}
