//! Aggregation expressions: parsed once, when the pipeline is built, into an [`Expr`] tree, then
//! evaluated against each document. Parsing is where MongoDB reports an unknown operator (168),
//! a wrong operand count (16020 and its kin), an undefined variable (17276) and a malformed
//! object-form operator, so those fail the pipeline before any document is read; evaluation
//! reports only what depends on the values (a type, a division by zero).
//!
//! Here: the tree, the compiler, variables (`$$ROOT`, `$$CURRENT`, `$$REMOVE`, `$let`, `$map`'s
//! and `$filter`'s `as`, `$reduce`'s `$$value`/`$$this`, a `$lookup`'s `let`), conditionals, booleans, comparisons,
//! arithmetic, arrays and objects. Strings and type conversions are in `text.rs` (and
//! `$replaceOne`/`$replaceAll` in `replace.rs`), dates in `date.rs`, `date_arith.rs` and
//! `date_parts.rs`, set operators and `$sortArray` in `sets.rs`, trigonometry in `trig.rs`,
//! regular expressions in `regex_ops.rs`, `$zip` in `zip.rs`, `$setField`/`$unsetField` in
//! `fields.rs`, `$bsonSize`/`$binarySize`/`$tsSecond`/`$tsIncrement` in `sizes.rs`, and the
//! standard deviations in `stats.rs`. A value is `None` when it is *missing* (a path that
//! reaches nothing), which MongoDB keeps apart from null.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::sync::atomic::{self, AtomicU64};

use bson::{Bson, Document, Timestamp};

use super::super::document::{self, compare, split_path};
use super::super::error::{Error, Result};
use super::super::{EXPRESSION_DEPTH_MAX, deadline, decimal, query};
use super::{
    accumulate, built_size, check_value_size, date, date_arith, date_parts, fields, percentile,
    regex_ops, replace, sets, sizes, stats, text, trig, zip,
};

/// A compiled aggregation expression.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// A constant: a literal or `$literal`'s operand.
    Const(Bson),
    /// An optional operand that was not given.
    Absent,
    /// `$a.b` or `$$CURRENT.a.b`: a path into the current document (empty: all of it).
    Field(Box<[String]>),
    /// `$$ROOT.a` (empty path: the whole document).
    Root(Box<[String]>),
    /// `$$name.a`: the variable bound in `slot`.
    Var(usize, Box<[String]>),
    /// `$$REMOVE`: missing.
    Remove,
    /// `$$name.a` of a variable a `$lookup`'s `let` binds for its sub-pipeline: the value for
    /// the document being joined (`None`: missing, or not yet known while the sub-pipeline is
    /// first checked). Constant for one run of the sub-pipeline, but never folded, since the
    /// next document binds another value.
    Bound(Option<Bson>),
    /// An object literal; a field whose value is missing is left out.
    Object(Vec<(String, Expr)>),
    /// An array literal; a missing element becomes null.
    Array(Vec<Expr>),
    /// An operator whose operands are all evaluated first.
    Op(Op, Vec<Expr>),
    /// An operator that evaluates its operands itself (short-circuits, variables).
    Lazy(Lazy, Vec<Expr>),
    /// `$regexMatch`, `$regexFind`, `$regexFindAll`, with a constant pattern compiled once.
    Regex(Box<regex_ops::RegexExpr>),
    /// `$rand`: a new double in `[0, 1)` at every evaluation; never folded.
    Rand(Box<Rand>),
}

/// The random source of one compiled `$rand`: SplitMix64 over a counter, so evaluations on
/// any thread take distinct steps without a lock. Seeded at compile time from `$$NOW` (the
/// injected clock's wall time) and the number of `$rand`s compiled before it in this process:
/// on a manual clock, a process that runs the same pipelines in the same order draws the same
/// numbers.
#[derive(Debug)]
pub(crate) struct Rand {
    counter: AtomicU64,
}

/// `$rand`s compiled in this process: part of each one's seed.
static RAND_COMPILED: AtomicU64 = AtomicU64::new(0);

/// SplitMix64's increment (2^64 / the golden ratio).
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Rand {
    fn new(now_ms: i64) -> Self {
        let n = RAND_COMPILED.fetch_add(1, atomic::Ordering::Relaxed);
        Self {
            counter: AtomicU64::new(now_ms.cast_unsigned() ^ n.wrapping_mul(SPLITMIX_GAMMA)),
        }
    }

    /// The next double in `[0, 1)`: the top 53 bits of SplitMix64's next output.
    fn next_f64(&self) -> f64 {
        let mut z = self
            .counter
            .fetch_add(SPLITMIX_GAMMA, atomic::Ordering::Relaxed)
            .wrapping_add(SPLITMIX_GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        #[expect(
            clippy::cast_precision_loss,
            reason = "a 53-bit integer converts to f64 exactly"
        )]
        let top = (z >> 11) as f64;
        top * (1.0 / (1u64 << 53) as f64)
    }
}

impl Clone for Rand {
    /// A copy continues from the same point of the sequence.
    fn clone(&self) -> Self {
        Self {
            counter: AtomicU64::new(self.counter.load(atomic::Ordering::Relaxed)),
        }
    }
}

/// Operators that evaluate every operand first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Mod,
    Abs,
    Ceil,
    Floor,
    Round,
    Trunc,
    Sqrt,
    Pow,
    Exp,
    Ln,
    Log,
    Log10,
    Sum,
    Avg,
    Max,
    Min,
    Cmp(Cmp),
    In,
    Not,
    Size,
    ArrayElemAt,
    First,
    Last,
    ConcatArrays,
    Slice,
    ReverseArray,
    Range,
    IndexOfArray,
    IsArray,
    IsNumber,
    Type,
    MergeObjects,
    ObjectToArray,
    ArrayToObject,
    GetField,
    Text(text::TextOp),
    Date(date::DateOp),
    /// `$firstN` `$lastN` `$maxN` `$minN` over an array: `[n, input]`.
    ArrayN(accumulate::ArrayN),
    /// The set operators and `$sortArray` (`sets.rs`).
    Set(sets::SetOp),
    /// `$dateAdd` `$dateSubtract` `$dateDiff` `$dateTrunc` (`date_arith.rs`).
    DateArith(date_arith::DateArith),
    /// The trigonometric operators (`trig.rs`).
    Trig(trig::TrigOp),
    /// `$replaceOne` (false) or `$replaceAll` (true): `[input, find, replacement]`.
    Replace(bool),
    /// `$stdDevPop` (false) or `$stdDevSamp` (true) over the operands.
    StdDev(bool),
    /// `$bsonSize` `$binarySize` `$tsSecond` `$tsIncrement` (`sizes.rs`).
    Sizes(sizes::SizeOp),
    /// `$percentile` (false) or `$median` (true) of `[input, p]` (`percentile.rs`).
    Quantile(bool),
}

/// The comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    /// `$cmp`: -1, 0 or 1.
    Compare,
}

/// Operators that evaluate their operands themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lazy {
    /// `[if, then, else]`.
    Cond,
    /// `[case, then, case, then, …, default or Absent]`.
    Switch,
    And,
    Or,
    IfNull,
    /// `[input, in]`, the element bound in the slot.
    Map(usize),
    /// `[input, cond, limit or Absent]`, the element bound in the slot.
    Filter(usize),
    /// `[input, initialValue, in]`, `$$value` bound in the slot and `$$this` in the next.
    Reduce(usize),
    /// `[value…, in]`, the values bound from the slot on.
    Let(usize),
    /// `[input, to, onError, onNull]`.
    Convert,
    /// `[dateString, format, timezone, onError, onNull]`.
    DateFromString,
    /// `$zip`: the first `inputs` operands are the inputs, the rest the defaults.
    Zip {
        inputs: usize,
        longest: bool,
    },
    /// `$setField`/`$unsetField`: `[field, input, value]`.
    SetField,
    /// `$dateFromParts`: `[year, month, day, hour, minute, second, millisecond, isoWeekYear,
    /// isoWeek, isoDayOfWeek, timezone]`, [`Expr::Absent`] where not given.
    DateFromParts,
    /// `$dateToParts`: `[date, timezone, iso8601]`.
    DateToParts,
}

/// An operand that was not given, for lookups that find none.
pub(crate) static ABSENT: Expr = Expr::Absent;

/// A variable of an enclosing `$lookup`'s `let`, by name, and its value for the document
/// being joined (`None`: missing, or unknown while the sub-pipeline is first checked).
pub(crate) type Binding = (String, Option<Bson>);

thread_local! {
    /// The `let` variables in scope while a `$lookup` sub-pipeline is compiled, innermost
    /// last. IMPORTANT: this is compile-time context, not state: [`with_bound`] sets it around
    /// one synchronous build and restores what was there, so it never outlives the build. It
    /// reaches every compiler of the sub-pipeline's stages (`$project`'s field tree among
    /// them) without each of them carrying the bindings as a parameter.
    static BOUND: RefCell<Vec<Binding>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// The cluster time of the write under way on this thread: `$$CLUSTER_TIME` while its
    /// expressions are compiled and `$currentDate`'s timestamp. IMPORTANT: set only by a
    /// [`ClusterTimeScope`], which a write batch holds for its whole life and which restores
    /// what was there when dropped, so it never outlives the write.
    static CLUSTER_TIME: Cell<Option<Timestamp>> = const { Cell::new(None) };
}

/// Holds a write's cluster time ([`write_cluster_time`]) on this thread while it lives; dropping
/// it restores what was in force. Not `Send`: the time it set is this thread's.
#[must_use = "the cluster time is in force only while the scope lives"]
pub(crate) struct ClusterTimeScope {
    saved: Option<Timestamp>,
    _thread: std::marker::PhantomData<*const ()>,
}

impl ClusterTimeScope {
    /// Puts `ts` (a write's cluster time) in force until the scope is dropped.
    pub(crate) fn enter(ts: Timestamp) -> Self {
        Self {
            saved: CLUSTER_TIME.with(|c| c.replace(Some(ts))),
            _thread: std::marker::PhantomData,
        }
    }
}

impl Drop for ClusterTimeScope {
    fn drop(&mut self) {
        CLUSTER_TIME.with(|c| c.set(self.saved));
    }
}

impl std::fmt::Debug for ClusterTimeScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTimeScope")
            .field("saved", &self.saved)
            .finish_non_exhaustive()
    }
}

/// The cluster time of the write under way ([`ClusterTimeScope`]), if any: what `$currentDate`
/// writes as a timestamp.
pub(crate) fn write_cluster_time() -> Option<Timestamp> {
    CLUSTER_TIME.with(Cell::get)
}

/// `$$CLUSTER_TIME`: the write's cluster time under a [`ClusterTimeScope`]; else the second of
/// `now_ms` with increment 0, a time no later than any operation of that second.
fn cluster_time(now_ms: i64) -> Timestamp {
    write_cluster_time().unwrap_or_else(|| Timestamp {
        time: u32::try_from(now_ms.div_euclid(1000).clamp(0, i64::from(u32::MAX))).unwrap_or(0),
        increment: 0,
    })
}

/// Runs `build` with `bindings` as the `let` variables `$$name` resolves to (before `$$ROOT`
/// and the other system variables; after the variables of `$let`, `$map` … inside the
/// expression, which shadow them), then restores the bindings that were in force.
pub(crate) fn with_bound<T>(bindings: Vec<Binding>, build: impl FnOnce() -> T) -> T {
    let saved = BOUND.with(|b| std::mem::replace(&mut *b.borrow_mut(), bindings));
    let out = build();
    BOUND.with(|b| *b.borrow_mut() = saved);
    out
}

/// The `let` variables in force now (for a `$lookup` nested in a sub-pipeline, which binds
/// its own on top of them).
pub(crate) fn bound_now() -> Vec<Binding> {
    BOUND.with(|b| b.borrow().clone())
}

/// The variables in scope while compiling: a user variable's slot is its position here.
#[derive(Debug, Default)]
pub(crate) struct Names {
    names: Vec<String>,
    /// `$$NOW`: the time the pipeline was built, in milliseconds since the epoch (one value
    /// for the whole pipeline, as in MongoDB).
    now_ms: i64,
    /// A command's `let` value is being compiled: it runs before any document is read, so a
    /// field path, `$$ROOT` or `$$CURRENT` is 4890500.
    no_fields: bool,
}

/// What an expression is evaluated against: the document and the variables' values.
#[derive(Debug)]
pub(crate) struct Scope<'d> {
    root: &'d Document,
    /// `$$CURRENT`, which field paths read: `root` except inside `$redact`'s descent.
    current: &'d Document,
    vars: Vec<Option<Bson>>,
}

impl<'d> Scope<'d> {
    /// A scope with `root` as `$$ROOT` and `$$CURRENT` and no user variables.
    pub(crate) fn new(root: &'d Document) -> Self {
        Self::at(root, root)
    }

    /// A scope with `$$ROOT` and `$$CURRENT` apart.
    fn at(root: &'d Document, current: &'d Document) -> Self {
        Self {
            root,
            current,
            vars: Vec::new(),
        }
    }

    fn bind(&mut self, slot: usize, v: Option<Bson>) {
        if self.vars.len() <= slot {
            self.vars.resize(slot + 1, None);
        }
        if let Some(s) = self.vars.get_mut(slot) {
            *s = v;
        }
    }
}

/// Compiles an expression; `$$NOW` is `now_ms`.
///
/// # Errors
/// MongoDB's parse errors: 168 for an unknown operator, 16020/28667 for an operand count,
/// 17276 for an undefined variable, [`Error::NestingTooDeep`] past [`EXPRESSION_DEPTH_MAX`].
pub(crate) fn compile(v: &Bson, now_ms: i64) -> Result<Expr> {
    let mut names = Names {
        names: Vec::new(),
        now_ms,
        no_fields: false,
    };
    compile_at(v, &mut names, 1)
}

/// MongoDB's 4890500: a command's `let` value reads a field.
const LET_READS_A_FIELD: &str = "Command let Expression tried to access a field, but this is not allowed because command let expressions run before the query examines any documents.";

/// The variables of a command's `let` option (`find`, `aggregate`, `update`,
/// `findAndModify`), as MongoDB seeds them: in order, each value an expression evaluated once
/// before any document is read (with `$$NOW` = `now_ms` and the variables before it), so a
/// field path in one is 4890500; each name is a user variable's (16866–16868). Run the
/// command's parsing under [`with_bound`] with the result.
///
/// # Errors
/// Those codes, and the value's own parse and evaluation errors.
pub(crate) fn command_let(vars: &Document, now_ms: i64) -> Result<Vec<Binding>> {
    // Each value compiles with the variables before it bound: they are appended to the
    // bindings in force as they are computed, and taken out at the end.
    with_bound(Vec::with_capacity(vars.len()), || {
        let empty = Document::new();
        for (name, value) in vars {
            let mut names = Names {
                names: Vec::new(),
                now_ms,
                no_fields: true,
            };
            let value = compile_at(value, &mut names, 1)?.eval(&mut Scope::new(&empty))?;
            check_variable_name(name)?;
            BOUND.with(|b| b.borrow_mut().push((name.clone(), value)));
        }
        Ok(BOUND.with(|b| std::mem::take(&mut *b.borrow_mut())))
    })
}

/// The context MongoDB gives an error its optimizer meets folding constants.
pub(crate) const OPTIMIZE_CONTEXT: &str = "Failed to optimize pipeline :: caused by :: ";

/// A parse-time error with MongoDB's code.
pub(crate) fn parse_error(code: i32, message: impl Into<String>) -> Error {
    Error::InvalidExpression {
        code,
        message: message.into(),
    }
}

/// A run-time error with MongoDB's code.
pub(crate) fn eval_error(code: i32, message: impl Into<String>) -> Error {
    Error::expression(code, message)
}

fn compile_at(v: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    if depth > EXPRESSION_DEPTH_MAX {
        return Err(Error::NestingTooDeep {
            depth,
            max: EXPRESSION_DEPTH_MAX,
        });
    }
    match v {
        Bson::String(s) if s.starts_with('$') => compile_path(s, names),
        Bson::Document(d) => match d.keys().next() {
            Some(k) if k.starts_with('$') => compile_operator(d, names, depth),
            _ => compile_object(d, names, depth + 1),
        },
        Bson::Array(a) => Ok(Expr::Array(
            a.iter()
                .map(|x| compile_at(x, names, depth + 1))
                .collect::<Result<_>>()?,
        )),
        other => Ok(Expr::Const(other.clone())),
    }
}

/// An object literal, its fields' values compiled at `depth`.
fn compile_object(d: &Document, names: &mut Names, depth: usize) -> Result<Expr> {
    let mut fields = Vec::with_capacity(d.len());
    for (k, x) in d {
        check_field_name(k)?;
        fields.push((k.clone(), compile_at(x, names, depth)?));
    }
    Ok(Expr::Object(fields))
}

/// A field name of an object literal, as MongoDB's `FieldPath` checks it.
pub(crate) fn check_field_name(k: &str) -> Result<()> {
    if k.starts_with('$') {
        return Err(parse_error(
            16410,
            "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
        ));
    }
    if k.contains('.') {
        return Err(parse_error(
            16412,
            "FieldPath field names may not contain '.'. Consider using $getField or $setField.",
        ));
    }
    if k.is_empty() {
        return Err(parse_error(
            15998,
            "FieldPath field names may not be empty strings.",
        ));
    }
    Ok(())
}

fn path_parts(path: &str) -> Result<Box<[String]>> {
    let parts = split_path(path)?;
    if parts.iter().any(|p| p.starts_with('$')) {
        return Err(parse_error(
            16410,
            "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
        ));
    }
    Ok(parts.into_iter().map(str::to_owned).collect())
}

fn compile_path(s: &str, names: &Names) -> Result<Expr> {
    let Some(var) = s.strip_prefix("$$") else {
        let path = s.get(1..).unwrap_or_default();
        if path.is_empty() {
            return Err(parse_error(16872, "'$' by itself is not a valid FieldPath"));
        }
        if names.no_fields {
            return Err(parse_error(4_890_500, LET_READS_A_FIELD));
        }
        return Ok(Expr::Field(path_parts(path)?));
    };
    let (name, rest) = var
        .split_once('.')
        .map_or((var, None), |(n, r)| (n, Some(r)));
    let parts = match rest {
        Some(r) => path_parts(r)?,
        None => Box::default(),
    };
    if name.is_empty() {
        return Err(parse_error(16869, "empty variable names are not allowed"));
    }
    if let Some(slot) = names.names.iter().rposition(|n| n == name) {
        return Ok(Expr::Var(slot, parts));
    }
    let bound = BOUND.with(|b| {
        b.borrow()
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref().and_then(|v| walk(v, &parts)))
    });
    if let Some(v) = bound {
        return Ok(Expr::Bound(v));
    }
    match name {
        "ROOT" | "CURRENT" if names.no_fields => Err(parse_error(4_890_500, LET_READS_A_FIELD)),
        "ROOT" => Ok(Expr::Root(parts)),
        "CURRENT" => Ok(Expr::Field(parts)),
        "REMOVE" => Ok(Expr::Remove),
        "NOW" | "CLUSTER_TIME" => {
            let value = if name == "NOW" {
                Bson::DateTime(bson::DateTime::from_millis(names.now_ms))
            } else {
                Bson::Timestamp(cluster_time(names.now_ms))
            };
            Ok(if parts.is_empty() {
                Expr::Const(value)
            } else {
                Expr::Remove
            })
        }
        "USER_ROLES" | "SEARCH_META" | "IS_MR" | "JS_SCOPE" => {
            Err(Error::Unsupported(format!("variable $${name}")))
        }
        _ => Err(parse_error(
            17276,
            format!("Use of undefined variable: {name}"),
        )),
    }
}

/// Checks a user variable's name as MongoDB's `validateNameForUserWrite` does.
pub(crate) fn check_variable_name(name: &str) -> Result<()> {
    let Some(first) = name.chars().next() else {
        return Err(parse_error(16866, "empty variable names are not allowed"));
    };
    if !first.is_ascii_lowercase() && first.is_ascii() {
        return Err(parse_error(
            16867,
            format!("'{name}' starts with an invalid character for a user variable name"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || !c.is_ascii()))
    {
        return Err(parse_error(
            16868,
            format!("'{name}' contains an invalid character for a variable name: '{c}'"),
        ));
    }
    Ok(())
}

/// The operands of a list-taking operator: an array's elements, or the one operand given.
fn operand_list(arg: &Bson) -> Vec<&Bson> {
    match arg {
        Bson::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// MongoDB's 16020 for an operator taking exactly `n` operands.
fn check_exact(op: &str, n: usize, got: usize) -> Result<()> {
    if n == got {
        return Ok(());
    }
    Err(parse_error(
        16020,
        format!("Expression {op} takes exactly {n} arguments. {got} were passed in."),
    ))
}

/// MongoDB's 28667 for an operator taking `min..=max` operands.
fn check_range(op: &str, min: usize, max: usize, got: usize) -> Result<()> {
    if (min..=max).contains(&got) {
        return Ok(());
    }
    Err(parse_error(
        28667,
        format!(
            "Expression {op} takes at least {min} arguments, and at most {max}, but {got} were passed in."
        ),
    ))
}

/// Operators MongoDB 7.0 has that this store does not implement: refused as unsupported
/// (code 115) rather than as unknown (168), so the message says what is missing.
const NOT_IMPLEMENTED: &[&str] = &[
    "$accumulator",
    "$function",
    "$meta",
    "$sampleRate",
    "$toHashedIndexKey",
];

/// How an operator's operands are parsed.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Literal,
    /// Any number of operands, evaluated first.
    List(Op),
    /// Any number of operands, evaluated by the operator.
    LazyList(Lazy),
    /// `min..=max` operands (`min == max`: exactly that many).
    Counted(usize, usize, Op),
    IfNull,
    Cond,
    Switch,
    Let,
    Map,
    Filter,
    Reduce,
    GetField,
    Convert,
    /// `$toInt` and its kin: `$convert` to this type.
    ConvertTo(&'static str),
    DateFromString,
    DateToString,
    Text(text::TextOp),
    DatePart(date::DateOp),
    ArrayN(accumulate::ArrayN),
    /// `$setEquals`: at least two operands.
    SetEquals,
    SortArray,
    DateArith(date_arith::DateArith),
    Regex(regex_ops::RegexKind),
    /// `$replaceOne` (false) / `$replaceAll` (true).
    Replace(bool),
    /// `$percentile` (false) / `$median` (true): `{input, p, method}`.
    Quantile(bool),
    Zip,
    /// `$setField` (false) / `$unsetField` (true).
    SetField(bool),
    DateFromParts,
    DateToParts,
    Rand,
    NotImplemented,
    Unknown,
}

/// The parse shape of the operator called `op` (a table; nothing here recurses, so the
/// recursive [`compile_operator`] keeps a small stack frame).
fn shape_of(op: &str) -> Shape {
    let exact = |n, o| Shape::Counted(n, n, o);
    match op {
        // `$const` is `$literal` under its older name, which MongoDB still parses.
        "$literal" | "$const" => Shape::Literal,
        "$add" => Shape::List(Op::Add),
        "$multiply" => Shape::List(Op::Multiply),
        "$sum" => Shape::List(Op::Sum),
        "$avg" => Shape::List(Op::Avg),
        "$max" => Shape::List(Op::Max),
        "$min" => Shape::List(Op::Min),
        "$concatArrays" => Shape::List(Op::ConcatArrays),
        "$mergeObjects" => Shape::List(Op::MergeObjects),
        "$and" => Shape::LazyList(Lazy::And),
        "$or" => Shape::LazyList(Lazy::Or),
        "$subtract" => exact(2, Op::Subtract),
        "$divide" => exact(2, Op::Divide),
        "$mod" => exact(2, Op::Mod),
        "$pow" => exact(2, Op::Pow),
        "$log" => exact(2, Op::Log),
        "$eq" => exact(2, Op::Cmp(Cmp::Eq)),
        "$ne" => exact(2, Op::Cmp(Cmp::Ne)),
        "$gt" => exact(2, Op::Cmp(Cmp::Gt)),
        "$gte" => exact(2, Op::Cmp(Cmp::Gte)),
        "$lt" => exact(2, Op::Cmp(Cmp::Lt)),
        "$lte" => exact(2, Op::Cmp(Cmp::Lte)),
        "$cmp" => exact(2, Op::Cmp(Cmp::Compare)),
        "$in" => exact(2, Op::In),
        "$arrayElemAt" => exact(2, Op::ArrayElemAt),
        "$abs" => exact(1, Op::Abs),
        "$ceil" => exact(1, Op::Ceil),
        "$floor" => exact(1, Op::Floor),
        "$sqrt" => exact(1, Op::Sqrt),
        "$exp" => exact(1, Op::Exp),
        "$ln" => exact(1, Op::Ln),
        "$log10" => exact(1, Op::Log10),
        "$not" => exact(1, Op::Not),
        "$size" => exact(1, Op::Size),
        "$first" => exact(1, Op::First),
        "$last" => exact(1, Op::Last),
        "$reverseArray" => exact(1, Op::ReverseArray),
        "$isArray" => exact(1, Op::IsArray),
        "$isNumber" => exact(1, Op::IsNumber),
        "$type" => exact(1, Op::Type),
        "$objectToArray" => exact(1, Op::ObjectToArray),
        "$arrayToObject" => exact(1, Op::ArrayToObject),
        "$round" => Shape::Counted(1, 2, Op::Round),
        "$trunc" => Shape::Counted(1, 2, Op::Trunc),
        "$slice" => Shape::Counted(2, 3, Op::Slice),
        "$range" => Shape::Counted(2, 3, Op::Range),
        "$indexOfArray" => Shape::Counted(2, 4, Op::IndexOfArray),
        "$ifNull" => Shape::IfNull,
        "$cond" => Shape::Cond,
        "$switch" => Shape::Switch,
        "$let" => Shape::Let,
        "$map" => Shape::Map,
        "$filter" => Shape::Filter,
        "$reduce" => Shape::Reduce,
        "$getField" => Shape::GetField,
        "$convert" => Shape::Convert,
        "$dateFromString" => Shape::DateFromString,
        "$dateToString" => Shape::DateToString,
        "$firstN" => Shape::ArrayN(accumulate::ArrayN::First),
        "$lastN" => Shape::ArrayN(accumulate::ArrayN::Last),
        "$maxN" => Shape::ArrayN(accumulate::ArrayN::Max),
        "$minN" => Shape::ArrayN(accumulate::ArrayN::Min),
        "$setUnion" => Shape::List(Op::Set(sets::SetOp::Union)),
        "$setIntersection" => Shape::List(Op::Set(sets::SetOp::Intersection)),
        "$setDifference" => exact(2, Op::Set(sets::SetOp::Difference)),
        "$setIsSubset" => exact(2, Op::Set(sets::SetOp::IsSubset)),
        "$anyElementTrue" => exact(1, Op::Set(sets::SetOp::AnyElementTrue)),
        "$allElementsTrue" => exact(1, Op::Set(sets::SetOp::AllElementsTrue)),
        "$setEquals" => Shape::SetEquals,
        "$sortArray" => Shape::SortArray,
        "$replaceOne" => Shape::Replace(false),
        "$replaceAll" => Shape::Replace(true),
        "$zip" => Shape::Zip,
        "$setField" => Shape::SetField(false),
        "$unsetField" => Shape::SetField(true),
        "$dateFromParts" => Shape::DateFromParts,
        "$dateToParts" => Shape::DateToParts,
        "$rand" => Shape::Rand,
        "$percentile" => Shape::Quantile(false),
        "$median" => Shape::Quantile(true),
        "$stdDevPop" => Shape::List(Op::StdDev(false)),
        "$stdDevSamp" => Shape::List(Op::StdDev(true)),
        other => {
            if let Some(to) = text::convert_shorthand(other) {
                Shape::ConvertTo(to)
            } else if let Some(t) = text::TextOp::named(other) {
                Shape::Text(t)
            } else if let Some(part) = date::DateOp::part_named(other) {
                Shape::DatePart(part)
            } else if let Some(d) = date_arith::DateArith::named(other) {
                Shape::DateArith(d)
            } else if let Some(t) = trig::TrigOp::named(other) {
                exact(t.arity(), Op::Trig(t))
            } else if let Some(k) = sizes::SizeOp::named(other) {
                exact(1, Op::Sizes(k))
            } else if let Some(k) = regex_ops::RegexKind::named(other) {
                Shape::Regex(k)
            } else if NOT_IMPLEMENTED.contains(&other) {
                Shape::NotImplemented
            } else {
                Shape::Unknown
            }
        }
    }
}

/// MongoDB's 15983 for an operator object with more than one field.
fn not_one_field(d: &Document) -> Error {
    parse_error(
        15983,
        format!(
            "An object representing an expression must have exactly one field: {}",
            document::render_value(&Bson::Document(d.clone()))
        ),
    )
}

/// The operands of a list-taking operator, compiled.
fn compile_list(arg: &Bson, names: &mut Names, depth: usize) -> Result<Vec<Expr>> {
    operand_list(arg)
        .into_iter()
        .map(|x| compile_at(x, names, depth))
        .collect()
}

/// An operator taking `min..=max` operands.
fn compile_counted(
    op: &str,
    arg: &Bson,
    names: &mut Names,
    depth: usize,
    (min, max): (usize, usize),
    o: Op,
) -> Result<Expr> {
    let args = compile_list(arg, names, depth)?;
    if min == max {
        check_exact(op, min, args.len())?;
    } else {
        check_range(op, min, max, args.len())?;
    }
    Ok(Expr::Op(o, args))
}

fn compile_if_null(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let args = compile_list(arg, names, depth)?;
    if args.len() < 2 {
        return Err(parse_error(
            1_257_300,
            format!("$ifNull needs at least two arguments, had: {}", args.len()),
        ));
    }
    Ok(Expr::Lazy(Lazy::IfNull, args))
}

/// `$toInt` and its kin: `$convert` to `to` with no `onError`/`onNull`.
fn compile_convert_to(
    op: &str,
    to: &str,
    arg: &Bson,
    names: &mut Names,
    depth: usize,
) -> Result<Expr> {
    let args = compile_list(arg, names, depth)?;
    check_exact(op, 1, args.len())?;
    let input = args.into_iter().next().unwrap_or(Expr::Absent);
    Ok(Expr::Lazy(
        Lazy::Convert,
        vec![
            input,
            Expr::Const(Bson::String(to.into())),
            Expr::Absent,
            Expr::Absent,
        ],
    ))
}

/// An operator object `{$op: operands}`. Every arm hands its work to a helper, so the frame
/// this recursion passes through stays small (the depth limit is counted in these frames).
fn compile_operator(d: &Document, names: &mut Names, depth: usize) -> Result<Expr> {
    let mut it = d.iter();
    let (Some((op, arg)), None) = (it.next(), it.next()) else {
        return Err(not_one_field(d));
    };
    let op = op.as_str();
    let next = depth + 1;
    match shape_of(op) {
        Shape::Literal => Ok(Expr::Const(arg.clone())),
        Shape::List(o) => Ok(Expr::Op(o, compile_list(arg, names, next)?)),
        Shape::LazyList(l) => Ok(Expr::Lazy(l, compile_list(arg, names, next)?)),
        Shape::Counted(min, max, o) => compile_counted(op, arg, names, next, (min, max), o),
        Shape::IfNull => compile_if_null(arg, names, next),
        Shape::Cond => compile_cond(arg, names, next),
        Shape::Switch => compile_switch(arg, names, next),
        Shape::Let => compile_let(arg, names, next),
        Shape::Map => compile_map(arg, names, next),
        Shape::Filter => compile_filter(arg, names, next),
        Shape::Reduce => compile_reduce(arg, names, next),
        Shape::GetField => compile_get_field(arg, names, next),
        Shape::Convert => text::compile_convert(arg, |x| compile_at(x, names, next)),
        Shape::ConvertTo(to) => compile_convert_to(op, to, arg, names, next),
        Shape::DateFromString => date::compile_from_string(arg, |x| compile_at(x, names, next)),
        Shape::DateToString => date::compile_to_string(arg, |x| compile_at(x, names, next)),
        Shape::Text(t) => text::compile(t, op, arg, |x| compile_at(x, names, next)),
        Shape::DatePart(p) => date::compile_part(p, op, arg, |x| compile_at(x, names, next)),
        Shape::ArrayN(k) => {
            let (n, input) = accumulate::n_operands(op, arg)?;
            Ok(Expr::Op(
                Op::ArrayN(k),
                vec![compile_at(n, names, next)?, compile_at(input, names, next)?],
            ))
        }
        Shape::SetEquals => {
            let args = compile_list(arg, names, next)?;
            if args.len() < 2 {
                return Err(parse_error(
                    17045,
                    format!(
                        "$setEquals needs at least two arguments had: {}",
                        args.len()
                    ),
                ));
            }
            Ok(Expr::Op(Op::Set(sets::SetOp::Equals), args))
        }
        Shape::SortArray => sets::compile_sort_array(arg, |x| compile_at(x, names, next)),
        Shape::DateArith(d) => date_arith::compile(d, arg, |x| compile_at(x, names, next)),
        Shape::Regex(k) => regex_ops::compile(k, arg, |x| compile_at(x, names, next)),
        Shape::Replace(all) => replace::compile(all, arg, |x| compile_at(x, names, next)),
        Shape::Zip => zip::compile(arg, |x| compile_at(x, names, next)),
        Shape::SetField(unset) => fields::compile(unset, arg, |x| compile_at(x, names, next)),
        Shape::DateFromParts => date_parts::compile_from(arg, |x| compile_at(x, names, next)),
        Shape::DateToParts => date_parts::compile_to(arg, |x| compile_at(x, names, next)),
        Shape::Rand => compile_rand(arg, names),
        Shape::Quantile(median) => {
            let spec = percentile::parse(op, arg, percentile::Form::Expression)?;
            let input = compile_at(spec.input, names, next)?;
            let ps = spec.percentiles(|p| compile_at(p, names, next))?;
            Ok(Expr::Op(
                Op::Quantile(median),
                percentile::expression_operands(&ps, input),
            ))
        }
        Shape::NotImplemented => Err(Error::Unsupported(format!("expression operator {op}"))),
        Shape::Unknown => Err(parse_error(168, format!("Unrecognized expression '{op}'"))),
    }
}

/// `$rand`: its operand is an empty document or array (MongoDB reads either as an object);
/// a non-empty one is 3040501, anything else 10065.
fn compile_rand(arg: &Bson, names: &Names) -> Result<Expr> {
    let empty = match arg {
        Bson::Document(d) => d.is_empty(),
        Bson::Array(a) => a.is_empty(),
        _ => {
            return Err(parse_error(
                10065,
                "invalid parameter: expected an object ($rand)",
            ));
        }
    };
    if !empty {
        return Err(parse_error(
            3_040_501,
            "$rand does not currently accept arguments",
        ));
    }
    Ok(Expr::Rand(Box::new(Rand::new(names.now_ms))))
}

/// The named operands of an object-form operator: each name must be one of `known`, in any
/// order; what is not given is `None`.
pub(crate) fn named_operands<'a>(
    spec: &'a Document,
    known: &[&str],
    unknown: impl Fn(&str) -> Error,
) -> Result<Vec<Option<&'a Bson>>> {
    let mut out = vec![None; known.len()];
    for (k, v) in spec {
        let Some(i) = known.iter().position(|n| *n == k.as_str()) else {
            return Err(unknown(k));
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(v);
        }
    }
    Ok(out)
}

/// `$cond`'s `[if, then, else]`, from its object or array form.
fn cond_operands(arg: &Bson) -> Result<Vec<&Bson>> {
    let Bson::Document(d) = arg else {
        let parts = operand_list(arg);
        check_exact("$cond", 3, parts.len())?;
        return Ok(parts);
    };
    let got = named_operands(d, &["if", "then", "else"], |k| {
        parse_error(17083, format!("Unrecognized parameter to $cond: {k}"))
    })?;
    let mut parts = Vec::with_capacity(3);
    for ((name, code), v) in [("if", 17080), ("then", 17081), ("else", 17082)]
        .into_iter()
        .zip(got)
    {
        parts.push(
            v.ok_or_else(|| parse_error(code, format!("Missing '{name}' parameter to $cond")))?,
        );
    }
    Ok(parts)
}

fn compile_cond(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let args = cond_operands(arg)?
        .into_iter()
        .map(|x| compile_at(x, names, depth))
        .collect::<Result<_>>()?;
    Ok(Expr::Lazy(Lazy::Cond, args))
}

/// `$switch`'s operands: each branch's `case` and `then` in turn, then `default` if given.
fn switch_operands(arg: &Bson) -> Result<(Vec<&Bson>, Option<&Bson>)> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            40060,
            format!(
                "$switch requires an object as an argument, found: {}",
                query::type_name(Some(arg))
            ),
        ));
    };
    let mut parts = Vec::new();
    let mut default = None;
    for (k, v) in spec {
        match k.as_str() {
            "branches" => {
                let Bson::Array(branches) = v else {
                    return Err(parse_error(
                        40061,
                        format!(
                            "$switch expected an array for 'branches', found: {}",
                            query::type_name(Some(v))
                        ),
                    ));
                };
                for b in branches {
                    let Bson::Document(b) = b else {
                        return Err(parse_error(
                            40062,
                            format!(
                                "$switch expected each branch to be an object, found: {}",
                                query::type_name(Some(b))
                            ),
                        ));
                    };
                    let got = named_operands(b, &["case", "then"], |k| {
                        parse_error(
                            40063,
                            format!("$switch found an unknown argument to a branch: {k}"),
                        )
                    })?;
                    let Some(case) = got.first().copied().flatten() else {
                        return Err(parse_error(
                            40064,
                            "$switch requires each branch have a 'case' expression",
                        ));
                    };
                    let Some(then) = got.get(1).copied().flatten() else {
                        return Err(parse_error(
                            40065,
                            "$switch requires each branch have a 'then' expression.",
                        ));
                    };
                    parts.push(case);
                    parts.push(then);
                }
            }
            "default" => default = Some(v),
            other => {
                return Err(parse_error(
                    40067,
                    format!("$switch found an unknown argument: {other}"),
                ));
            }
        }
    }
    if parts.is_empty() {
        return Err(parse_error(40068, "$switch requires at least one branch."));
    }
    Ok((parts, default))
}

fn compile_switch(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let (parts, default) = switch_operands(arg)?;
    let mut args = parts
        .into_iter()
        .map(|x| compile_at(x, names, depth))
        .collect::<Result<Vec<_>>>()?;
    args.push(match default {
        Some(d) => compile_at(d, names, depth)?,
        None => Expr::Absent,
    });
    Ok(Expr::Lazy(Lazy::Switch, args))
}

fn compile_let(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            16874,
            "$let only supports an object as its argument",
        ));
    };
    let got = named_operands(spec, &["vars", "in"], |k| {
        parse_error(16875, format!("Unrecognized parameter to $let: {k}"))
    })?;
    let Some(vars) = got.first().copied().flatten() else {
        return Err(parse_error(16876, "Missing 'vars' parameter to $let"));
    };
    let Some(body) = got.get(1).copied().flatten() else {
        return Err(parse_error(16877, "Missing 'in' parameter to $let"));
    };
    let Bson::Document(vars) = vars else {
        return Err(parse_error(
            10065,
            format!(
                "invalid parameter: expected an object (vars), found: {}",
                query::type_name(Some(vars))
            ),
        ));
    };
    // The values see the variables outside the $let; the body sees them all.
    let mut args = Vec::with_capacity(vars.len() + 1);
    for (name, v) in vars {
        check_variable_name(name)?;
        args.push(compile_at(v, names, depth)?);
    }
    let slot = names.names.len();
    names.names.extend(vars.keys().cloned());
    let body = compile_at(body, names, depth);
    names.names.truncate(slot);
    args.push(body?);
    Ok(Expr::Lazy(Lazy::Let(slot), args))
}

/// Compiles `body` with `bound` variables in scope from the next free slot.
fn with_variables<T>(
    names: &mut Names,
    bound: &[&str],
    body: impl FnOnce(&mut Names) -> Result<T>,
) -> Result<(usize, T)> {
    let slot = names.names.len();
    names.names.extend(bound.iter().map(|s| (*s).to_owned()));
    let out = body(names);
    names.names.truncate(slot);
    Ok((slot, out?))
}

/// The `as` name of `$map`/`$filter` (default `this`), checked.
fn as_name<'a>(v: Option<&'a Bson>, op: &str) -> Result<&'a str> {
    match v {
        None => Ok("this"),
        Some(Bson::String(s)) => {
            check_variable_name(s)?;
            Ok(s)
        }
        Some(other) => Err(parse_error(
            if op == "$map" { 16866 } else { 28649 },
            format!(
                "'as' of {op} must be a string, found: {}",
                query::type_name(Some(other))
            ),
        )),
    }
}

fn compile_map(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            16878,
            "$map only supports an object as its argument",
        ));
    };
    let got = named_operands(spec, &["input", "as", "in"], |k| {
        parse_error(16879, format!("Unrecognized parameter to $map: {k}"))
    })?;
    let Some(input) = got.first().copied().flatten() else {
        return Err(parse_error(16880, "Missing 'input' parameter to $map"));
    };
    let Some(body) = got.get(2).copied().flatten() else {
        return Err(parse_error(16882, "Missing 'in' parameter to $map"));
    };
    let name = as_name(got.get(1).copied().flatten(), "$map")?;
    let input = compile_at(input, names, depth)?;
    let (slot, body) = with_variables(names, &[name], |n| compile_at(body, n, depth))?;
    Ok(Expr::Lazy(Lazy::Map(slot), vec![input, body]))
}

fn compile_filter(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            28646,
            "$filter only supports an object as its argument",
        ));
    };
    let got = named_operands(spec, &["input", "as", "cond", "limit"], |k| {
        parse_error(28647, format!("Unrecognized parameter to $filter: {k}"))
    })?;
    let Some(input) = got.first().copied().flatten() else {
        return Err(parse_error(28648, "Missing 'input' parameter to $filter"));
    };
    let Some(cond) = got.get(2).copied().flatten() else {
        return Err(parse_error(28650, "Missing 'cond' parameter to $filter"));
    };
    let name = as_name(got.get(1).copied().flatten(), "$filter")?;
    let input = compile_at(input, names, depth)?;
    let limit = match got.get(3).copied().flatten() {
        Some(l) => compile_at(l, names, depth)?,
        None => Expr::Absent,
    };
    let (slot, cond) = with_variables(names, &[name], |n| compile_at(cond, n, depth))?;
    Ok(Expr::Lazy(Lazy::Filter(slot), vec![input, cond, limit]))
}

fn compile_reduce(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let Bson::Document(spec) = arg else {
        return Err(parse_error(
            40075,
            format!(
                "$reduce requires an object as an argument, found: {}",
                query::type_name(Some(arg))
            ),
        ));
    };
    let got = named_operands(spec, &["input", "initialValue", "in"], |k| {
        parse_error(40076, format!("$reduce found an unknown argument: {k}"))
    })?;
    let Some(input) = got.first().copied().flatten() else {
        return Err(parse_error(
            40077,
            "$reduce requires 'input' to be specified",
        ));
    };
    let Some(initial) = got.get(1).copied().flatten() else {
        return Err(parse_error(
            40078,
            "$reduce requires 'initialValue' to be specified",
        ));
    };
    let Some(body) = got.get(2).copied().flatten() else {
        return Err(parse_error(40079, "$reduce requires 'in' to be specified"));
    };
    let input = compile_at(input, names, depth)?;
    let initial = compile_at(initial, names, depth)?;
    let (slot, body) = with_variables(names, &["value", "this"], |n| compile_at(body, n, depth))?;
    Ok(Expr::Lazy(Lazy::Reduce(slot), vec![input, initial, body]))
}

/// `$getField`: `{field, input}` (input `$$CURRENT` when not given) or the field name alone;
/// the name is a constant string, as in MongoDB 7.0.
fn compile_get_field(arg: &Bson, names: &mut Names, depth: usize) -> Result<Expr> {
    let (field, input) = match arg {
        Bson::Document(spec) if !spec.keys().next().is_some_and(|k| k.starts_with('$')) => {
            let got = named_operands(spec, &["field", "input"], |k| {
                parse_error(
                    3_041_701,
                    format!("$getField found an unknown argument: {k}"),
                )
            })?;
            let Some(field) = got.first().copied().flatten() else {
                return Err(parse_error(
                    3_041_702,
                    "$getField requires 'field' to be specified",
                ));
            };
            let input = match got.get(1).copied().flatten() {
                Some(i) => compile_at(i, names, depth)?,
                None => Expr::Field(Box::default()),
            };
            (compile_at(field, names, depth)?, input)
        }
        other => (
            compile_at(other, names, depth)?,
            Expr::Field(Box::default()),
        ),
    };
    if !matches!(field.as_const(), Some(Bson::String(_))) {
        return Err(parse_error(
            5_654_602,
            "$getField requires 'field' to evaluate to a constant, but got a non-constant argument",
        ));
    }
    Ok(Expr::Op(Op::GetField, vec![field, input]))
}

/// The value at `parts` below `v`: through an array, the values reached in its elements make
/// an array (nested arrays stay nested, elements reaching nothing are left out), as MongoDB's
/// `ExpressionFieldPath::evaluatePath`.
fn walk(v: &Bson, parts: &[String]) -> Option<Bson> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(v.clone());
    };
    match v {
        Bson::Document(d) => walk(d.get(first)?, rest),
        Bson::Array(items) => Some(Bson::Array(walk_array(items, parts))),
        _ => None,
    }
}

fn walk_array(items: &[Bson], parts: &[String]) -> Vec<Bson> {
    items
        .iter()
        .filter_map(|el| match el {
            Bson::Document(_) => walk(el, parts),
            Bson::Array(inner) => Some(Bson::Array(walk_array(inner, parts))),
            _ => None,
        })
        .collect()
}

/// The value at `parts` in `doc` (empty: the whole document).
fn walk_document(doc: &Document, parts: &[String]) -> Option<Bson> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(Bson::Document(doc.clone()));
    };
    walk(doc.get(first)?, rest)
}

/// MongoDB's truthiness (`coerceToBool`): false, null, undefined, missing and numeric zero
/// are false; everything else, NaN and empty strings and arrays included, is true.
pub(crate) fn truthy(v: Option<&Bson>) -> bool {
    match v {
        None | Some(Bson::Null | Bson::Undefined) => false,
        Some(Bson::Boolean(b)) => *b,
        Some(Bson::Int32(i)) => *i != 0,
        Some(Bson::Int64(i)) => *i != 0,
        Some(Bson::Double(d)) => *d != 0.0,
        Some(d @ Bson::Decimal128(_)) => {
            decimal::compare(d, &Bson::Int32(0)) != Some(Ordering::Equal)
        }
        Some(_) => true,
    }
}

/// Whether an operand is null, `undefined` or missing (MongoDB's `nullish`).
pub(crate) fn nullish(v: Option<&Bson>) -> bool {
    matches!(v, None | Some(Bson::Null | Bson::Undefined))
}

/// Whether a value is a number.
pub(crate) fn numeric(v: &Bson) -> bool {
    document::type_rank(v) == 10
}

/// The type name MongoDB's messages give a value (`missing` for none).
pub(crate) fn type_of(v: Option<&Bson>) -> &'static str {
    query::type_name(v)
}

impl Expr {
    /// Evaluates the expression; `None` when the value is missing.
    ///
    /// # Errors
    /// [`Error::Expression`] with MongoDB's code for an operand of a type the operator does not
    /// take; [`Error::ObjectTooLarge`] for a value past the stage document limit.
    pub(crate) fn eval(&self, cx: &mut Scope<'_>) -> Result<Option<Bson>> {
        match self {
            Self::Const(v) => Ok(Some(v.clone())),
            Self::Absent | Self::Remove => Ok(None),
            Self::Bound(v) => Ok(v.clone()),
            Self::Field(parts) => Ok(walk_document(cx.current, parts)),
            Self::Root(parts) => Ok(walk_document(cx.root, parts)),
            Self::Var(slot, parts) => Ok(cx
                .vars
                .get(*slot)
                .and_then(Option::as_ref)
                .and_then(|v| walk(v, parts))),
            Self::Object(fields) => eval_object(fields, cx),
            Self::Array(items) => eval_array(items, cx),
            Self::Op(op, args) => eval_op(*op, args, cx),
            Self::Lazy(op, args) => eval_lazy(*op, args, cx),
            Self::Regex(r) => r.eval(cx),
            Self::Rand(r) => Ok(Some(Bson::Double(r.next_f64()))),
        }
    }

    /// As [`Expr::fold`], with the variables bound to a value when it was compiled (a
    /// command's `let`) read as the constants they are for the whole request, as MongoDB's
    /// optimizer reads
    /// them where an operand must be constant (`$percentile`'s `p`).
    pub(crate) fn fold_with_bound(self) -> Result<Self> {
        self.bound_as_constants().fold()
    }

    fn bound_as_constants(self) -> Self {
        let all = |items: Vec<Self>| items.into_iter().map(Self::bound_as_constants).collect();
        match self {
            // A `$lookup`'s or `$merge`'s variables are unknown (`None`) when the stage is
            // first built, and stay variables: only the command's are constants.
            Self::Bound(Some(v)) => Self::Const(v),
            Self::Object(fields) => Self::Object(
                fields
                    .into_iter()
                    .map(|(k, e)| (k, e.bound_as_constants()))
                    .collect(),
            ),
            Self::Array(items) => Self::Array(all(items)),
            Self::Op(op, args) => Self::Op(op, all(args)),
            Self::Lazy(op, args) => Self::Lazy(op, all(args)),
            leaf => leaf,
        }
    }

    /// Folds every subtree whose operands are all constants into its value, as MongoDB's
    /// optimizer does once the pipeline is parsed: an error it meets then (`{$divide: [1, 0]}`)
    /// fails the pipeline before any document is read, with MongoDB's `Failed to optimize
    /// pipeline :: caused by :: ` context.
    ///
    /// # Errors
    /// [`Error::InvalidExpression`] with the evaluation's code; [`Error::ObjectTooLarge`].
    pub(crate) fn fold(self) -> Result<Self> {
        let fold_all = |items: Vec<Self>| {
            items
                .into_iter()
                .map(Self::fold)
                .collect::<Result<Vec<_>>>()
        };
        let folded = match self {
            Self::Object(fields) => Self::Object(
                fields
                    .into_iter()
                    .map(|(k, e)| e.fold().map(|e| (k, e)))
                    .collect::<Result<_>>()?,
            ),
            Self::Array(items) => Self::Array(fold_all(items)?),
            Self::Op(op, args) => Self::Op(op, fold_all(args)?),
            Self::Lazy(op, args) => Self::Lazy(op, fold_all(args)?),
            Self::Regex(r) => return Ok(Self::Regex(Box::new(r.fold()?))),
            leaf => return Ok(leaf),
        };
        // MongoDB's optimizer leaves these operators in place over constant operands, so
        // their errors surface when a document is read, with the executor's context.
        let never_folded = matches!(
            folded,
            Self::Op(Op::Replace(_), _) | Self::Lazy(Lazy::Zip { .. } | Lazy::SetField, _)
        );
        if never_folded {
            return Ok(folded);
        }
        let constant = |e: &Self| matches!(e, Self::Const(_) | Self::Absent | Self::Remove);
        let all_constant = match &folded {
            Self::Object(fields) => fields.iter().all(|(_, e)| constant(e)),
            Self::Array(items) | Self::Op(_, items) | Self::Lazy(_, items) => {
                items.iter().all(constant)
            }
            _ => false,
        };
        if !all_constant {
            return Ok(folded);
        }
        let empty = Document::new();
        match folded.eval(&mut Scope::new(&empty)) {
            Ok(Some(v)) => Ok(Self::Const(v)),
            Ok(None) => Ok(Self::Remove),
            Err(Error::Expression { code, message }) => {
                Err(parse_error(code, format!("{OPTIMIZE_CONTEXT}{message}")))
            }
            Err(other) => Err(other),
        }
    }

    /// Evaluates the expression against a document with no variables bound.
    pub(crate) fn eval_doc(&self, doc: &Document) -> Result<Option<Bson>> {
        deadline::check()?;
        self.eval(&mut Scope::new(doc))
    }

    /// Evaluates the expression with `current` as `$$CURRENT` (what field paths read) inside
    /// `root` (`$$ROOT`), as `$redact` does at each level it descends to.
    pub(crate) fn eval_at(&self, root: &Document, current: &Document) -> Result<Option<Bson>> {
        deadline::check()?;
        self.eval(&mut Scope::at(root, current))
    }

    /// The constant this expression is, if it is one.
    pub(crate) fn as_const(&self) -> Option<&Bson> {
        match self {
            Self::Const(v) => Some(v),
            _ => None,
        }
    }
}

/// An object literal; a field whose value is missing is left out.
fn eval_object(fields: &[(String, Expr)], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let mut out = Document::new();
    let mut size = 5usize;
    for (k, e) in fields {
        if let Some(v) = e.eval(cx)? {
            size = size.saturating_add(2 + k.len() + built_size(&v, 1)?);
            check_value_size(size)?;
            out.insert(k.clone(), v);
        }
    }
    Ok(Some(Bson::Document(out)))
}

/// An array literal; a missing element becomes null.
fn eval_array(items: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let mut out = Vec::with_capacity(items.len());
    let mut size = 5usize;
    for (i, e) in items.iter().enumerate() {
        let v = e.eval(cx)?.unwrap_or(Bson::Null);
        size = size.saturating_add(2 + index_digits(i) + built_size(&v, 1)?);
        check_value_size(size)?;
        out.push(v);
    }
    Ok(Some(Bson::Array(out)))
}

/// An eager operator: its operands evaluated, then [`apply`].
fn eval_op(op: Op, args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(a.eval(cx)?);
    }
    apply(op, vals)
}

/// Digits of an array index written as a BSON element name.
fn index_digits(i: usize) -> usize {
    i.checked_ilog10().map_or(1, |d| d as usize + 1)
}

fn arg(args: &[Expr], i: usize) -> &Expr {
    args.get(i).unwrap_or(&ABSENT)
}

/// Evaluates a lazy operator. Every arm is a function of its own, so the frame each level of a
/// nested expression adds to the stack stays small (the depth limit is counted in these frames).
fn eval_lazy(op: Lazy, args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    match op {
        Lazy::Cond => eval_cond(args, cx),
        Lazy::Switch => eval_switch(args, cx),
        Lazy::And => eval_and_or(args, cx, false),
        Lazy::Or => eval_and_or(args, cx, true),
        Lazy::IfNull => eval_if_null(args, cx),
        Lazy::Map(slot) => eval_map(slot, args, cx),
        Lazy::Filter(slot) => eval_filter(slot, args, cx),
        Lazy::Reduce(slot) => eval_reduce(slot, args, cx),
        Lazy::Let(slot) => eval_let(slot, args, cx),
        Lazy::Convert => text::eval_convert(args, cx),
        Lazy::DateFromString => date::eval_from_string(args, cx),
        Lazy::Zip { inputs, longest } => zip::eval(inputs, longest, args, cx),
        Lazy::SetField => fields::eval(args, cx),
        Lazy::DateFromParts => date_parts::eval_from(args, cx),
        Lazy::DateToParts => date_parts::eval_to(args, cx),
    }
}

fn eval_cond(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let branch = if truthy(arg(args, 0).eval(cx)?.as_ref()) {
        1
    } else {
        2
    };
    arg(args, branch).eval(cx)
}

fn eval_switch(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let (default, branches) = args.split_last().unwrap_or((&ABSENT, &[]));
    for pair in branches.chunks(2) {
        if let [case, then] = pair
            && truthy(case.eval(cx)?.as_ref())
        {
            return then.eval(cx);
        }
    }
    if matches!(default, Expr::Absent) {
        return Err(eval_error(
            40066,
            "$switch could not find a matching branch for an input, and no default was specified.",
        ));
    }
    default.eval(cx)
}

/// `$and` (`stop_on` false) and `$or` (`stop_on` true): the first operand whose truth is
/// `stop_on` decides.
fn eval_and_or(args: &[Expr], cx: &mut Scope<'_>, stop_on: bool) -> Result<Option<Bson>> {
    for a in args {
        if truthy(a.eval(cx)?.as_ref()) == stop_on {
            return Ok(Some(Bson::Boolean(stop_on)));
        }
    }
    Ok(Some(Bson::Boolean(!stop_on)))
}

/// The first operand that is not null or missing, else the last one as it is.
fn eval_if_null(args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let (last, rest) = args.split_last().unwrap_or((&ABSENT, &[]));
    for a in rest {
        let v = a.eval(cx)?;
        if !nullish(v.as_ref()) {
            return Ok(v);
        }
    }
    last.eval(cx)
}

/// The `input` of `$map`/`$filter`/`$reduce`: its elements, or `None` when it is null or
/// missing (the result is then null); another type fails with `code` and `message` followed
/// by what `describe` says of it.
fn array_input(
    v: Option<Bson>,
    code: i32,
    message: &str,
    describe: fn(Option<&Bson>) -> String,
) -> Result<Option<Vec<Bson>>> {
    match v {
        Some(Bson::Array(items)) => Ok(Some(items)),
        v if nullish(v.as_ref()) => Ok(None),
        v => Err(eval_error(
            code,
            format!("{message}{}", describe(v.as_ref())),
        )),
    }
}

fn type_text(v: Option<&Bson>) -> String {
    type_of(v).to_owned()
}

fn eval_map(slot: usize, args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let input = arg(args, 0).eval(cx)?;
    let Some(items) = array_input(
        input,
        16883,
        "input to $map must be an array not ",
        type_text,
    )?
    else {
        return Ok(Some(Bson::Null));
    };
    let mut out = Vec::with_capacity(items.len());
    let mut size = 5usize;
    for (i, item) in items.into_iter().enumerate() {
        deadline::check()?;
        cx.bind(slot, Some(item));
        let v = arg(args, 1).eval(cx)?.unwrap_or(Bson::Null);
        size = size.saturating_add(2 + index_digits(i) + built_size(&v, 1)?);
        check_value_size(size)?;
        out.push(v);
    }
    Ok(Some(Bson::Array(out)))
}

/// `$filter`'s `limit`: `None` when not given, null or missing.
fn filter_limit(e: &Expr, cx: &mut Scope<'_>) -> Result<Option<usize>> {
    if matches!(e, Expr::Absent) {
        return Ok(None);
    }
    let Some(v) = e.eval(cx)?.filter(|v| !nullish(Some(v))) else {
        return Ok(None);
    };
    let n = int32_of(&v).ok_or_else(|| {
        eval_error(
            327_391,
            format!(
                "$filter: limit must be represented as a 32-bit integral value: {}",
                text::render(Some(&v))
            ),
        )
    })?;
    if n < 1 {
        return Err(eval_error(
            327_392,
            format!("$filter: limit must be greater than 0: {n}"),
        ));
    }
    Ok(usize::try_from(n).ok())
}

fn eval_filter(slot: usize, args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let input = arg(args, 0).eval(cx)?;
    let Some(items) = array_input(
        input,
        28651,
        "input to $filter must be an array not ",
        type_text,
    )?
    else {
        return Ok(Some(Bson::Null));
    };
    let limit = filter_limit(arg(args, 2), cx)?;
    let mut out = Vec::new();
    for item in items {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        deadline::check()?;
        cx.bind(slot, Some(item.clone()));
        if truthy(arg(args, 1).eval(cx)?.as_ref()) {
            out.push(item);
        }
    }
    Ok(Some(Bson::Array(out)))
}

fn eval_reduce(slot: usize, args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let input = arg(args, 0).eval(cx)?;
    let Some(items) = array_input(
        input,
        40080,
        "$reduce requires that 'input' be an array, found: ",
        text::render,
    )?
    else {
        return Ok(Some(Bson::Null));
    };
    let mut acc = arg(args, 1).eval(cx)?;
    for item in items {
        deadline::check()?;
        cx.bind(slot, acc);
        cx.bind(slot + 1, Some(item));
        acc = arg(args, 2).eval(cx)?;
        // What one step returns is the next step's `$$value`: bounding its depth here keeps
        // the loop from nesting it deeper step after step, whichever operator built it.
        if let Some(v @ (Bson::Array(_) | Bson::Document(_))) = &acc {
            built_size(v, 0)?;
        }
    }
    Ok(acc)
}

fn eval_let(slot: usize, args: &[Expr], cx: &mut Scope<'_>) -> Result<Option<Bson>> {
    let (body, values) = args.split_last().unwrap_or((&ABSENT, &[]));
    let mut bound = Vec::with_capacity(values.len());
    for v in values {
        bound.push(v.eval(cx)?);
    }
    for (i, v) in bound.into_iter().enumerate() {
        cx.bind(slot + i, v);
    }
    body.eval(cx)
}

/// A number that is an integer representable in 32 bits.
pub(crate) fn int32_of(v: &Bson) -> Option<i32> {
    match v {
        Bson::Int32(i) => Some(*i),
        Bson::Int64(i) => i32::try_from(*i).ok(),
        other if numeric(other) => {
            let d = document::as_f64(other)?;
            if d.fract() != 0.0 || !(f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(&d) {
                return None;
            }
            #[expect(
                clippy::cast_possible_truncation,
                reason = "integral and in range, checked above"
            )]
            let n = d as i32;
            Some(n)
        }
        _ => None,
    }
}

/// An operator's operands, evaluated.
type Vals = Vec<Option<Bson>>;

fn first(vals: &[Option<Bson>]) -> Option<&Bson> {
    vals.first().and_then(Option::as_ref)
}

fn second(vals: &[Option<Bson>]) -> Option<&Bson> {
    vals.get(1).and_then(Option::as_ref)
}

fn third(vals: &[Option<Bson>]) -> Option<&Bson> {
    vals.get(2).and_then(Option::as_ref)
}

fn null() -> Result<Option<Bson>> {
    Ok(Some(Bson::Null))
}

#[expect(clippy::too_many_lines, reason = "one arm per operator")]
fn apply(op: Op, vals: Vals) -> Result<Option<Bson>> {
    let some = |v: Bson| Ok(Some(v));
    match op {
        Op::Cmp(c) => {
            let o = compare_operands(first(&vals), second(&vals));
            some(match c {
                Cmp::Compare => Bson::Int32(match o {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
                Cmp::Eq => Bson::Boolean(o == Ordering::Equal),
                Cmp::Ne => Bson::Boolean(o != Ordering::Equal),
                Cmp::Gt => Bson::Boolean(o == Ordering::Greater),
                Cmp::Gte => Bson::Boolean(o != Ordering::Less),
                Cmp::Lt => Bson::Boolean(o == Ordering::Less),
                Cmp::Lte => Bson::Boolean(o != Ordering::Greater),
            })
        }
        Op::In => {
            let Some(Bson::Array(items)) = second(&vals) else {
                return Err(eval_error(
                    40081,
                    format!(
                        "$in requires an array as a second argument, found: {}",
                        type_of(second(&vals))
                    ),
                ));
            };
            let needle = first(&vals);
            some(Bson::Boolean(items.iter().any(|x| {
                compare_operands(needle, Some(x)) == Ordering::Equal
            })))
        }
        Op::Not => some(Bson::Boolean(!truthy(first(&vals)))),
        Op::Size => match first(&vals) {
            Some(Bson::Array(items)) => {
                some(Bson::Int32(i32::try_from(items.len()).unwrap_or(i32::MAX)))
            }
            other => Err(eval_error(
                17124,
                format!(
                    "The argument to $size must be an array, but was of type: {}",
                    type_of(other)
                ),
            )),
        },
        Op::Add => {
            let args = nulls_for_missing(vals);
            some(super::add_operands(&args)?)
        }
        Op::Multiply => {
            let args = nulls_for_missing(vals);
            some(super::multiply_operands(&args)?)
        }
        Op::Subtract => some(super::subtract_operands(
            first(&vals).unwrap_or(&Bson::Null),
            second(&vals).unwrap_or(&Bson::Null),
        )?),
        Op::Divide => some(super::divide_operands(
            first(&vals).unwrap_or(&Bson::Null),
            second(&vals).unwrap_or(&Bson::Null),
        )?),
        Op::Mod => modulo(first(&vals), second(&vals)),
        Op::Abs | Op::Ceil | Op::Floor | Op::Sqrt | Op::Exp | Op::Ln | Op::Log10 => {
            single_numeric(op, first(&vals))
        }
        Op::Round | Op::Trunc => round_or_trunc(op, first(&vals), vals.get(1).map(Option::as_ref)),
        Op::Pow => power(first(&vals), second(&vals)),
        Op::Log => log_base(first(&vals), second(&vals)),
        Op::Sum | Op::Avg | Op::Max | Op::Min => some(fold_numbers(op, vals)),
        Op::ArrayElemAt => element_at("$arrayElemAt", first(&vals), second(&vals)),
        Op::First | Op::Last => {
            let name = if op == Op::First { "$first" } else { "$last" };
            match first(&vals) {
                v if nullish(v) => null(),
                Some(Bson::Array(items)) => Ok(if op == Op::First {
                    items.first().cloned()
                } else {
                    items.last().cloned()
                }),
                other => Err(eval_error(
                    28689,
                    format!(
                        "{name}'s argument must be an array, but is {}",
                        type_of(other)
                    ),
                )),
            }
        }
        Op::ConcatArrays => {
            let mut out = Vec::new();
            let mut size = 5usize;
            for v in &vals {
                match v {
                    Some(Bson::Array(items)) => {
                        for item in items {
                            size = size.saturating_add(
                                2 + index_digits(out.len()) + document::value_size(item),
                            );
                            check_value_size(size)?;
                            out.push(item.clone());
                        }
                    }
                    v if nullish(v.as_ref()) => return null(),
                    other => {
                        return Err(eval_error(
                            28664,
                            format!(
                                "$concatArrays only supports arrays, not {}",
                                type_of(other.as_ref())
                            ),
                        ));
                    }
                }
            }
            some(Bson::Array(out))
        }
        Op::Slice => slice(&vals),
        Op::ReverseArray => match first(&vals) {
            v if nullish(v) => null(),
            Some(Bson::Array(items)) => some(Bson::Array(items.iter().rev().cloned().collect())),
            other => Err(eval_error(
                34435,
                format!(
                    "The argument to $reverseArray must be an array, but was of type: {}",
                    type_of(other)
                ),
            )),
        },
        Op::ArrayN(k) => accumulate::array_n(k, first(&vals), second(&vals)).map(Some),
        Op::Range => range(&vals),
        Op::IndexOfArray => index_of_array(&vals),
        Op::IsArray => some(Bson::Boolean(matches!(first(&vals), Some(Bson::Array(_))))),
        Op::IsNumber => some(Bson::Boolean(first(&vals).is_some_and(numeric))),
        Op::Type => some(Bson::String(type_of(first(&vals)).to_owned())),
        Op::MergeObjects => {
            let mut out = Document::new();
            for v in &vals {
                match v {
                    Some(Bson::Document(d)) => {
                        for (k, x) in d {
                            out.insert(k.clone(), x.clone());
                        }
                    }
                    v if nullish(v.as_ref()) => {}
                    other => {
                        return Err(eval_error(
                            40400,
                            format!(
                                "$mergeObjects requires object inputs, but input {} is of type {}",
                                text::render(other.as_ref()),
                                type_of(other.as_ref())
                            ),
                        ));
                    }
                }
            }
            check_value_size(document::bson_size(&out))?;
            some(Bson::Document(out))
        }
        Op::ObjectToArray => match first(&vals) {
            v if nullish(v) => null(),
            Some(Bson::Document(d)) => {
                let mut out = Vec::with_capacity(d.len());
                let mut size = 5usize;
                for (i, (k, v)) in d.iter().enumerate() {
                    // `{k: <name>, v: <value>}`: the value sits two levels down.
                    let pair_size = 5 + (3 + 5 + k.len()) + (3 + built_size(v, 2)?);
                    size = size.saturating_add(2 + index_digits(i) + pair_size);
                    check_value_size(size)?;
                    let mut pair = Document::new();
                    pair.insert("k", k.clone());
                    pair.insert("v", v.clone());
                    out.push(Bson::Document(pair));
                }
                some(Bson::Array(out))
            }
            other => Err(eval_error(
                40390,
                format!(
                    "$objectToArray requires a document input, found: {}",
                    type_of(other)
                ),
            )),
        },
        Op::ArrayToObject => array_to_object(first(&vals)),
        Op::GetField => {
            let Some(Bson::String(field)) = first(&vals) else {
                return Err(eval_error(
                    3_041_704,
                    format!(
                        "$getField requires 'field' to evaluate to type String, but got {}",
                        type_of(first(&vals))
                    ),
                ));
            };
            match second(&vals) {
                v if nullish(v) => null(),
                Some(Bson::Document(d)) => Ok(d.get(field).cloned()),
                _ => Ok(None),
            }
        }
        Op::Text(t) => text::apply(t, &vals),
        Op::Date(d) => date::apply(d, &vals),
        Op::Set(op) => sets::apply(op, &vals),
        Op::DateArith(d) => date_arith::apply(d, &vals),
        Op::Trig(t) => trig::apply(t, &vals),
        Op::Replace(all) => replace::apply(all, &vals),
        Op::StdDev(sample) => some(stats::std_dev(sample, &vals)),
        Op::Sizes(k) => sizes::apply(k, first(&vals)),
        Op::Quantile(median) => Ok(percentile::evaluate(median, &vals)),
    }
}

fn nulls_for_missing(vals: Vals) -> Vec<Bson> {
    vals.into_iter().map(|v| v.unwrap_or(Bson::Null)).collect()
}

/// MongoDB's order of two expression operands (its `Value::compare`): a missing value, like
/// `undefined`, sorts below null and above MinKey and equals only a missing or `undefined`
/// value; present values compare as everywhere else.
pub(crate) fn compare_operands(a: Option<&Bson>, b: Option<&Bson>) -> Ordering {
    let rank = |v: Option<&Bson>| match v {
        Some(Bson::MinKey) => 0u8,
        None | Some(Bson::Undefined) => 1,
        Some(_) => 2,
    };
    match (a, b) {
        (Some(x), Some(y)) if rank(a) == 2 && rank(b) == 2 => compare(x, y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `$sum`, `$avg`, `$max` and `$min` in their expression forms: over the operands, or over
/// the elements of a single array operand. `$sum`/`$avg` take numbers only (`$sum` of none is
/// 0, `$avg` of none null); `$max`/`$min` skip null and missing.
fn fold_numbers(op: Op, vals: Vals) -> Bson {
    let items: Vec<Bson> = match <[Option<Bson>; 1]>::try_from(vals) {
        Ok([Some(Bson::Array(items))]) => items,
        Ok([v]) => v.into_iter().collect(),
        Err(vals) => vals.into_iter().flatten().collect(),
    };
    match op {
        Op::Max | Op::Min => {
            let want = if op == Op::Max {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            items
                .into_iter()
                .filter(|v| !nullish(Some(v)))
                .reduce(|best, v| if compare(&v, &best) == want { v } else { best })
                .unwrap_or(Bson::Null)
        }
        _ => {
            let numbers: Vec<&Bson> = items.iter().filter(|v| numeric(v)).collect();
            let total = numbers
                .iter()
                .fold(Bson::Int32(0), |acc, v| super::add(&acc, v));
            if op == Op::Sum {
                return total;
            }
            let n = numbers.len();
            if n == 0 {
                return Bson::Null;
            }
            decimal::divide(&total, n as u64).unwrap_or_else(|| {
                #[expect(clippy::cast_precision_loss, reason = "an average is a double")]
                let n = n as f64;
                Bson::Double(document::as_f64(&total).unwrap_or(f64::NAN) / n)
            })
        }
    }
}

/// `$mod`: numbers of the wider type; the result has the dividend's sign.
fn modulo(a: Option<&Bson>, b: Option<&Bson>) -> Result<Option<Bson>> {
    let (Some(x), Some(y)) = (a.filter(|v| numeric(v)), b.filter(|v| numeric(v))) else {
        if nullish(a) || nullish(b) {
            return null();
        }
        return Err(eval_error(
            16611,
            format!(
                "$mod only supports numeric types, not {} and {}",
                type_of(a),
                type_of(b)
            ),
        ));
    };
    if matches!(x, Bson::Decimal128(_)) || matches!(y, Bson::Decimal128(_)) {
        if decimal::compare(y, &Bson::Int32(0)) == Some(Ordering::Equal) {
            return Err(eval_error(16610, "can't $mod by zero"));
        }
        return Ok(decimal::remainder(x, y));
    }
    match (x, y) {
        (Bson::Double(_), _) | (_, Bson::Double(_)) => {
            let (p, q) = (
                document::as_f64(x).unwrap_or(f64::NAN),
                document::as_f64(y).unwrap_or(f64::NAN),
            );
            if q == 0.0 {
                return Err(eval_error(16610, "can't $mod by zero"));
            }
            Ok(Some(Bson::Double(p % q)))
        }
        _ => {
            let (p, q) = (super::coerce_to_long(x), super::coerce_to_long(y));
            if q == 0 {
                return Err(eval_error(16610, "can't $mod by zero"));
            }
            // i64::MIN % -1 overflows in the hardware; the remainder is 0.
            let r = p.checked_rem(q).unwrap_or(0);
            Ok(Some(match (x, y) {
                (Bson::Int32(_), Bson::Int32(_)) => {
                    i32::try_from(r).map_or(Bson::Int64(r), Bson::Int32)
                }
                _ => Bson::Int64(r),
            }))
        }
    }
}

/// `$abs`, `$ceil`, `$floor`, `$sqrt`, `$exp`, `$ln`, `$log10`: one number; null or missing
/// gives null.
fn single_numeric(op: Op, v: Option<&Bson>) -> Result<Option<Bson>> {
    let name = match op {
        Op::Abs => "$abs",
        Op::Ceil => "$ceil",
        Op::Floor => "$floor",
        Op::Sqrt => "$sqrt",
        Op::Exp => "$exp",
        Op::Ln => "$ln",
        _ => "$log10",
    };
    let Some(x) = v.filter(|x| numeric(x)) else {
        if nullish(v) {
            return null();
        }
        return Err(eval_error(
            28765,
            format!("{name} only supports numeric types, not {}", type_of(v)),
        ));
    };
    let d = document::as_f64(x).unwrap_or(f64::NAN);
    // A decimal operand gives a decimal result.
    let is_decimal = matches!(x, Bson::Decimal128(_));
    Ok(Some(match op {
        Op::Abs => match x {
            Bson::Int32(i) => i
                .checked_abs()
                .map_or(Bson::Int64(i64::from(*i).abs()), Bson::Int32),
            Bson::Int64(i) => Bson::Int64(
                i.checked_abs()
                    .ok_or_else(|| eval_error(28680, "can't take $abs of long long min"))?,
            ),
            Bson::Decimal128(_) => decimal::abs(x),
            _ => Bson::Double(d.abs()),
        },
        Op::Ceil | Op::Floor => match x {
            Bson::Int32(_) | Bson::Int64(_) => x.clone(),
            Bson::Decimal128(_) => decimal::quantize(
                x,
                0,
                if op == Op::Ceil {
                    decimal::Rounding::Ceiling
                } else {
                    decimal::Rounding::Floor
                },
            ),
            _ => Bson::Double(if op == Op::Ceil { d.ceil() } else { d.floor() }),
        },
        Op::Sqrt => {
            if d < 0.0 {
                return Err(eval_error(
                    28714,
                    "$sqrt's argument must be greater than or equal to 0",
                ));
            }
            real(d.sqrt(), is_decimal)
        }
        Op::Exp => real(d.exp(), is_decimal),
        _ => {
            let (code, name) = if op == Op::Ln {
                (28766, "$ln")
            } else {
                (28761, "$log10")
            };
            if d.is_nan() || d <= 0.0 {
                return Err(eval_error(
                    code,
                    format!(
                        "{name}'s argument must be a positive number, but is {}",
                        text::render(Some(x))
                    ),
                ));
            }
            real(if op == Op::Ln { d.ln() } else { d.log10() }, is_decimal)
        }
    }))
}

/// A real result: a double, or a decimal when an operand was one (converted from the double,
/// 15 digits).
fn real(r: f64, as_decimal: bool) -> Bson {
    if as_decimal {
        decimal::to_decimal(&Bson::Double(r)).unwrap_or(Bson::Double(r))
    } else {
        Bson::Double(r)
    }
}

/// The two operands of `$log`/`$pow`, each a number (`what` names them in the message, with
/// its code); `None` when either is null or missing, which gives null.
fn numeric_pair<'a>(
    name: &str,
    (a, what_a, code_a): (Option<&'a Bson>, &str, i32),
    (b, what_b, code_b): (Option<&'a Bson>, &str, i32),
) -> Result<Option<(&'a Bson, &'a Bson)>> {
    let (Some(x), Some(y)) = (
        a.filter(|v| !nullish(Some(v))),
        b.filter(|v| !nullish(Some(v))),
    ) else {
        return Ok(None);
    };
    for (v, what, code) in [(x, what_a, code_a), (y, what_b, code_b)] {
        if !numeric(v) {
            return Err(eval_error(
                code,
                format!("{name}'s {what} must be numeric, not {}", type_of(Some(v))),
            ));
        }
    }
    Ok(Some((x, y)))
}

/// `$log`: `[number, base]`.
fn log_base(a: Option<&Bson>, b: Option<&Bson>) -> Result<Option<Bson>> {
    let Some((x, base)) = numeric_pair("$log", (a, "argument", 28756), (b, "base", 28757))? else {
        return null();
    };
    let (d, bd) = (
        document::as_f64(x).unwrap_or(f64::NAN),
        document::as_f64(base).unwrap_or(f64::NAN),
    );
    if d.is_nan() || d <= 0.0 {
        return Err(eval_error(
            28758,
            format!(
                "$log's argument must be a positive number, but is {}",
                text::render(a)
            ),
        ));
    }
    if bd.is_nan() || bd <= 0.0 || bd == 1.0 {
        return Err(eval_error(
            28759,
            format!(
                "$log's base must be a positive number not equal to 1, but is {}",
                text::render(b)
            ),
        ));
    }
    let as_decimal = matches!(x, Bson::Decimal128(_)) || matches!(base, Bson::Decimal128(_));
    Ok(Some(real(d.ln() / bd.ln(), as_decimal)))
}

/// `$pow`: integers stay integers while the result fits (an int widening to a long, then a
/// double), as MongoDB's `ExpressionPow`.
fn power(a: Option<&Bson>, b: Option<&Bson>) -> Result<Option<Bson>> {
    let Some((base, exp)) = numeric_pair("$pow", (a, "base", 28762), (b, "exponent", 28763))?
    else {
        return null();
    };
    let (bd, ed) = (
        document::as_f64(base).unwrap_or(f64::NAN),
        document::as_f64(exp).unwrap_or(f64::NAN),
    );
    if bd == 0.0 && ed < 0.0 {
        return Err(eval_error(
            28764,
            "$pow cannot take a base of 0 and a negative exponent",
        ));
    }
    if matches!(base, Bson::Decimal128(_)) || matches!(exp, Bson::Decimal128(_)) {
        return Ok(Some(real(bd.powf(ed), true)));
    }
    if matches!(base, Bson::Double(_)) || matches!(exp, Bson::Double(_)) {
        return Ok(Some(Bson::Double(bd.powf(ed))));
    }
    let (bl, el) = (super::coerce_to_long(base), super::coerce_to_long(exp));
    let both_int = matches!((base, exp), (Bson::Int32(_), Bson::Int32(_)));
    let integral = if el < 0 {
        match bl {
            1 => Some(1),
            -1 => Some(if el % 2 == 0 { 1 } else { -1 }),
            _ => None,
        }
    } else {
        u32::try_from(el).ok().and_then(|e| bl.checked_pow(e))
    };
    Ok(Some(match integral {
        Some(r) if both_int => i32::try_from(r).map_or(Bson::Int64(r), Bson::Int32),
        Some(r) => Bson::Int64(r),
        #[expect(clippy::cast_precision_loss, reason = "MongoDB falls back to a double")]
        None => Bson::Double((bl as f64).powf(el as f64)),
    }))
}

/// `$round` and `$trunc`: `[number, place]`, place an integer in -20..=100 (default 0);
/// `$round` rounds half to even. A double is rounded through its 34-digit decimal value, as
/// MongoDB does, so `$round: [2.675, 2]` gives 2.67.
fn round_or_trunc(op: Op, v: Option<&Bson>, place: Option<Option<&Bson>>) -> Result<Option<Bson>> {
    let name = if op == Op::Round { "$round" } else { "$trunc" };
    if nullish(v) {
        return null();
    }
    let Some(x) = v.filter(|x| numeric(x)) else {
        return Err(eval_error(
            51081,
            format!("{name} only supports numeric types, not {}", type_of(v)),
        ));
    };
    let mut p = 0i64;
    if let Some(place) = place {
        if nullish(place) {
            return null();
        }
        let Some(pv) = place.filter(|x| numeric(x)) else {
            return Err(eval_error(
                16004,
                format!("can't convert from BSON type {} to long", type_of(place)),
            ));
        };
        p = super::coerce_to_long(pv);
        let integral = document::as_f64(pv).is_some_and(|d| d.fract() == 0.0);
        if !integral {
            return Err(eval_error(
                51082,
                format!("precision argument to  {name} must be a integral value"),
            ));
        }
        if !(-20..=100).contains(&p) {
            return Err(eval_error(
                51083,
                format!("cannot apply {name} with precision value {p} value must be in [-20, 100]"),
            ));
        }
    }
    let mode = if op == Op::Round {
        decimal::Rounding::HalfEven
    } else {
        decimal::Rounding::Down
    };
    #[expect(
        clippy::cast_possible_truncation,
        reason = "checked to be in -20..=100 above"
    )]
    let place = p as i32;
    Ok(Some(match x {
        Bson::Int32(_) | Bson::Int64(_) if place >= 0 => x.clone(),
        Bson::Int32(i) => {
            let r = decimal::round_integer(i64::from(*i), place, mode);
            i32::try_from(r).map_or(Bson::Int64(r), Bson::Int32)
        }
        Bson::Int64(i) => Bson::Int64(decimal::round_integer(*i, place, mode)),
        Bson::Decimal128(_) => decimal::quantize(x, -place, mode),
        _ => Bson::Double(decimal::round_double(
            document::as_f64(x).unwrap_or(f64::NAN),
            place,
            mode,
        )),
    }))
}

/// `$arrayElemAt` (and its messages).
fn element_at(name: &str, a: Option<&Bson>, i: Option<&Bson>) -> Result<Option<Bson>> {
    if nullish(a) || nullish(i) {
        return null();
    }
    let Some(Bson::Array(items)) = a else {
        return Err(eval_error(
            28689,
            format!(
                "{name}'s first argument must be an array, but is {}",
                type_of(a)
            ),
        ));
    };
    let Some(iv) = i.filter(|x| numeric(x)) else {
        return Err(eval_error(
            28690,
            format!(
                "{name}'s second argument must be a numeric value, but is {}",
                type_of(i)
            ),
        ));
    };
    let Some(n) = int32_of(iv) else {
        return Err(eval_error(
            28691,
            format!(
                "{name}'s second argument must be representable as a 32-bit integer: {}",
                text::render(i)
            ),
        ));
    };
    let idx = if n < 0 {
        items.len().checked_sub(n.unsigned_abs() as usize)
    } else {
        usize::try_from(n).ok()
    };
    Ok(idx.and_then(|k| items.get(k)).cloned())
}

/// `$slice`: `[array, n]` or `[array, position, n]`.
fn slice(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    if vals.iter().any(|v| nullish(v.as_ref())) {
        return null();
    }
    let Some(Bson::Array(items)) = first(vals) else {
        return Err(eval_error(
            28724,
            format!(
                "First argument to $slice must be an array, but is of type: {}",
                type_of(first(vals))
            ),
        ));
    };
    let int_arg = |v: Option<&Bson>, which: &str, numeric_code: i32, int_code: i32| {
        let Some(x) = v.filter(|x| numeric(x)) else {
            return Err(eval_error(
                numeric_code,
                format!(
                    "{which} argument to $slice must be numeric, but is of type: {}",
                    type_of(v)
                ),
            ));
        };
        int32_of(x).ok_or_else(|| {
            eval_error(
                int_code,
                format!(
                    "{which} argument to $slice can't be represented as a 32-bit integer: {}",
                    text::render(v)
                ),
            )
        })
    };
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let (start, count) = if vals.len() == 2 {
        let n = i64::from(int_arg(second(vals), "Second", 28725, 28726)?);
        if n >= 0 {
            (0, n)
        } else {
            ((len + n).max(0), -n)
        }
    } else {
        let pos = i64::from(int_arg(second(vals), "Second", 28725, 28726)?);
        let n = int_arg(third(vals), "Third", 28727, 28728)?;
        if n <= 0 {
            return Err(eval_error(
                28729,
                format!("Third argument to $slice must be positive: {n}"),
            ));
        }
        let start = if pos >= 0 {
            pos.min(len)
        } else {
            (len + pos).max(0)
        };
        (start, i64::from(n))
    };
    let start = usize::try_from(start).unwrap_or(0);
    let count = usize::try_from(count).unwrap_or(0);
    Ok(Some(Bson::Array(
        items.iter().skip(start).take(count).cloned().collect(),
    )))
}

/// `$range`: `[start, end, step]` of 32-bit integers.
fn range(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let bound = |v: Option<&Bson>, what: &str, numeric_code: i32, int_code: i32| {
        let Some(x) = v.filter(|x| numeric(x)) else {
            return Err(eval_error(
                numeric_code,
                format!(
                    "$range requires a numeric {what} value, found value of type: {}",
                    type_of(v)
                ),
            ));
        };
        int32_of(x).ok_or_else(|| {
            let article = if what == "ending" { "an" } else { "a" };
            eval_error(
                int_code,
                format!(
                    "$range requires {article} {what} value that can be represented as a 32-bit integer, found value: {}",
                    text::render(v)
                ),
            )
        })
    };
    let start = i64::from(bound(first(vals), "starting", 34443, 34444)?);
    let end = i64::from(bound(second(vals), "ending", 34445, 34446)?);
    let step = if vals.len() > 2 {
        i64::from(bound(third(vals), "step", 34447, 34448)?)
    } else {
        1
    };
    if step == 0 {
        return Err(eval_error(34449, "$range requires a non-zero step value"));
    }
    let n = if (step > 0 && start < end) || (step < 0 && start > end) {
        ((end - start).abs() + step.abs() - 1) / step.abs()
    } else {
        0
    };
    // Each element is an int32: its name (up to 10 digits), a NUL, a type byte, 4 bytes.
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    check_value_size(n.saturating_mul(16).saturating_add(5))?;
    let mut out = Vec::with_capacity(n);
    let mut x = start;
    for _ in 0..n {
        out.push(Bson::Int32(i32::try_from(x).unwrap_or(i32::MAX)));
        x += step;
    }
    Ok(Some(Bson::Array(out)))
}

/// `$indexOfArray`: `[array, value, start, end]`.
fn index_of_array(vals: &[Option<Bson>]) -> Result<Option<Bson>> {
    let items = match first(vals) {
        v if nullish(v) => return null(),
        Some(Bson::Array(items)) => items,
        other => {
            return Err(eval_error(
                40090,
                format!(
                    "$indexOfArray requires an array as a first argument, found: {}",
                    type_of(other)
                ),
            ));
        }
    };
    let bound = |v: Option<&Bson>, what: &str| -> Result<usize> {
        let n = v.and_then(int32_of).ok_or_else(|| {
            eval_error(
                40096,
                format!(
                    // MongoDB's text, without a space after the name.
                    "$indexOfArrayrequires an integral {what}, found a value of type: {}, with value: {}",
                    type_of(v),
                    text::render(v)
                ),
            )
        })?;
        usize::try_from(n).map_err(|_| {
            eval_error(
                40097,
                format!("$indexOfArray requires a nonnegative {what}, found: {n}"),
            )
        })
    };
    let start = if vals.len() > 2 {
        bound(third(vals), "starting index")?
    } else {
        0
    };
    let end = if vals.len() > 3 {
        bound(vals.get(3).and_then(Option::as_ref), "ending index")?
    } else {
        items.len()
    };
    let needle = second(vals);
    let found = items
        .iter()
        .enumerate()
        .take(end.min(items.len()))
        .skip(start)
        .find(|(_, x)| compare_operands(needle, Some(x)) == Ordering::Equal)
        .map_or(-1, |(i, _)| i32::try_from(i).unwrap_or(i32::MAX));
    Ok(Some(Bson::Int32(found)))
}

/// `$arrayToObject`: `[[k, v], …]` or `[{k, v}, …]`; a later key replaces an earlier one.
fn array_to_object(v: Option<&Bson>) -> Result<Option<Bson>> {
    let items = match v {
        x if nullish(x) => return null(),
        Some(Bson::Array(items)) => items,
        other => {
            return Err(eval_error(
                40386,
                format!(
                    "$arrayToObject requires an array input, found: {}",
                    type_of(other)
                ),
            ));
        }
    };
    let mut out = Document::new();
    let arrays = matches!(items.first(), Some(Bson::Array(_)));
    for item in items {
        let (k, val) = match item {
            Bson::Array(pair) if arrays => {
                let [k, val] = pair.as_slice() else {
                    return Err(eval_error(
                        40397,
                        format!(
                            "$arrayToObject requires an array of size 2 arrays,found array of size: {}",
                            pair.len()
                        ),
                    ));
                };
                let Bson::String(k) = k else {
                    return Err(eval_error(
                        40395,
                        format!(
                            "$arrayToObject requires an array of key-value pairs, where the key must be of type string. Found key type: {}",
                            type_of(Some(k))
                        ),
                    ));
                };
                (k, val)
            }
            Bson::Document(pair) if !arrays => {
                if pair.len() != 2 {
                    return Err(eval_error(
                        40392,
                        format!(
                            "$arrayToObject requires an object keys of 'k' and 'v'. Found incorrect number of keys:{}",
                            pair.len()
                        ),
                    ));
                }
                let (Some(k), Some(val)) = (pair.get("k"), pair.get("v")) else {
                    return Err(eval_error(
                        40393,
                        format!(
                            "$arrayToObject requires an object with keys 'k' and 'v'. Missing either or both keys from: {}",
                            text::render(Some(item))
                        ),
                    ));
                };
                let Bson::String(k) = k else {
                    return Err(eval_error(
                        40394,
                        format!(
                            "$arrayToObject requires an object with keys 'k' and 'v', where the value of 'k' must be of type string. Found type: {}",
                            type_of(Some(k))
                        ),
                    ));
                };
                (k, val)
            }
            other => {
                return Err(eval_error(
                    40398,
                    format!(
                        "Unrecognised input type format for $arrayToObject: {}",
                        type_of(Some(other))
                    ),
                ));
            }
        };
        if k.contains('\0') {
            return Err(eval_error(
                4_940_400,
                "Key field cannot contain an embedded null byte",
            ));
        }
        out.insert(k.clone(), val.clone());
    }
    Ok(Some(Bson::Document(out)))
}
