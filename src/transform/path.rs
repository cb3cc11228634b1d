//! The JOLT path grammar shared by every operation: left-hand keys (`*`, `a*b`, `a|b`, `&`, `@`,
//! `@(N,path)`, `$`, `$(N,M)`, `#literal`, `[N]`, `\` escapes), right-hand output paths
//! (`a.b`, `a[]`, `a[N]`, `a[&N]`, `a[#N]`, `&(N,M)`, `@(N,path)`), and the walked path that
//! references (`&`, `$`, `@`, `#`) are evaluated against.
//!
//! Parsing is pure and returns a reason string on failure; the caller attaches the JSON Pointer.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;

use serde_json::Value;

use super::REGEX_COMPILED_BYTES_MAX;
use super::ops::{java_string, utf16_cmp};

/// A back reference `&(up, group)` or `$(up, group)`: `up` levels above the current one in the
/// walked path, capture `group` of the key matched there (0 = the whole key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ref {
    pub(crate) up: usize,
    pub(crate) group: usize,
}

/// One piece of a key template: literal text or a `&` reference.
#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Amp(Ref),
}

/// Text with embedded `&` references, e.g. `rating-&(1,0)-x`.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// How specific a star pattern is; lower sorts first among computed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StarKind {
    /// Three or more stars.
    Regex,
    /// Two stars.
    Double,
    /// One star plus literal text.
    Single,
}

/// A key pattern with `*` wildcards that each match one or more characters, lazily.
#[derive(Debug, Clone)]
pub(crate) struct StarPattern {
    regex: regex::Regex,
    pub(crate) kind: StarKind,
    pub(crate) canonical: String,
}

/// `@`, `@N`, `@path` or `@(N,path)`: the data `up` levels above, then down `path`.
#[derive(Debug, Clone)]
pub(crate) struct Transpose {
    pub(crate) up: usize,
    path: Vec<Rhs>,
}

/// What a bracketed array step holds.
#[derive(Debug, Clone)]
pub(crate) enum ArrayStep {
    /// `[]`: append.
    Append,
    /// `[N]`.
    Index(usize),
    /// `[&N]`, `[&(N,M)]`: the index is a matched key.
    Ref(Ref),
    /// `[#N]`: the number of matches so far at level N.
    Hash(usize),
    /// `[@(N,path)]`: the index is a value from the input.
    Transpose(Transpose),
}

/// One element of a right-hand (output or lookup) path.
#[derive(Debug, Clone)]
pub(crate) enum Rhs {
    /// A literal map key.
    Literal(String),
    /// A map key built from `&` references.
    Template(Template),
    /// A map key read from the input with `@`.
    Transpose(Transpose),
    /// An array step.
    Array(ArrayStep),
}

/// A left-hand key, classified the way JOLT classifies it.
#[derive(Debug, Clone)]
pub(crate) enum Key {
    /// Matches exactly this text.
    Literal(String),
    /// `*`: matches anything.
    StarAll,
    /// `a*b`, `*a*`, …
    Star(StarPattern),
    /// `a|b*`: the first alternative that matches.
    Or(Vec<Key>),
    /// A key with `&` references, matched literally after evaluation.
    Amp(Template),
    /// `@`: the current input.
    At,
    /// `@(N,path)`: input from elsewhere.
    Transpose(Transpose),
    /// `$`, `$N`, `$(N,M)`: a matched key as data.
    Dollar(Ref),
    /// `#literal`: the literal as data.
    Hash(String),
    /// `[N]` (modify only).
    Array(usize),
}

/// The star captures of a matched key.
#[derive(Debug, Clone)]
pub(crate) enum Groups {
    /// No captures (a literal, a lone `*`, `&`, `$` or `#` key).
    None,
    /// The byte ranges of each star's capture.
    Ranges(Vec<Range<usize>>),
}

/// The result of matching a key: the key text and its star captures.
#[derive(Debug, Clone)]
pub(crate) struct Matched<'a> {
    pub(crate) key: Cow<'a, str>,
    pub(crate) groups: Groups,
}

impl<'a> Matched<'a> {
    /// A match with no captures.
    pub(crate) fn plain(key: Cow<'a, str>) -> Self {
        Matched {
            key,
            groups: Groups::None,
        }
    }

    /// Capture `group` (0 = the whole key).
    pub(crate) fn group(&self, group: usize) -> Option<&str> {
        if group == 0 {
            return Some(&self.key);
        }
        match &self.groups {
            Groups::None => None,
            Groups::Ranges(ranges) => self.key.get(ranges.get(group - 1)?.clone()),
        }
    }
}

/// Array positions below this have their key text in [`INDEX_TEXT`] and cost no allocation.
const INDEX_KEYS_STATIC: usize = 1000;
/// Bytes of "0123…999": 10 one-digit, 90 two-digit and 900 three-digit numbers.
const INDEX_TEXT_BYTES: usize = 10 + 90 * 2 + 900 * 3;

/// The decimal text of every index below [`INDEX_KEYS_STATIC`], concatenated.
const fn index_text() -> [u8; INDEX_TEXT_BYTES] {
    let mut out = [0u8; INDEX_TEXT_BYTES];
    let mut at = 0;
    let mut i = 0;
    while i < INDEX_KEYS_STATIC {
        let (digits, mut div) = if i < 10 {
            (1, 1)
        } else if i < 100 {
            (2, 10)
        } else {
            (3, 100)
        };
        let mut d = 0;
        while d < digits {
            // In bounds: `at` advances by each number's digit count, summing to the array length.
            #[allow(
                clippy::indexing_slicing,
                clippy::cast_possible_truncation,
                reason = "const evaluation: an out-of-bounds index fails the build, never a run; the digit is below 10"
            )]
            {
                out[at] = b'0' + ((i / div) % 10) as u8;
            }
            at += 1;
            div /= 10;
            d += 1;
        }
        i += 1;
    }
    out
}

static INDEX_BYTES: [u8; INDEX_TEXT_BYTES] = index_text();

/// The key text of array position `i`: borrowed from a static table for the common small
/// positions, so walking an array does not allocate a `String` per element.
pub(crate) fn index_key(i: usize) -> Cow<'static, str> {
    let (start, len) = match i {
        0..10 => (i, 1),
        10..100 => (10 + (i - 10) * 2, 2),
        100..INDEX_KEYS_STATIC => (190 + (i - 100) * 3, 3),
        _ => return Cow::Owned(i.to_string()),
    };
    match INDEX_BYTES
        .get(start..start + len)
        .and_then(|b| std::str::from_utf8(b).ok())
    {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(i.to_string()),
    }
}

/// Read access to the walked path that references are evaluated against; level 0 is the
/// innermost.
pub(crate) trait Walk<'v> {
    /// The match at `up` levels above the current one.
    fn matched(&self, up: usize) -> Option<&Matched<'_>>;
    /// How many children have matched so far at `up` levels above.
    fn hash_count(&self, up: usize) -> Option<usize>;
    /// The input data at `up` levels above.
    fn tree(&self, up: usize) -> Option<&'v Value>;
}

/// One level of a walked path over borrowed input.
#[derive(Debug)]
pub(crate) struct Level<'a> {
    pub(crate) tree: &'a Value,
    pub(crate) matched: Matched<'a>,
    pub(crate) hash: Cell<usize>,
}

/// A walked path over borrowed input (shift and cardinality).
#[derive(Debug, Default)]
pub(crate) struct WalkedPath<'a> {
    levels: Vec<Level<'a>>,
}

impl<'a> WalkedPath<'a> {
    /// An empty walked path with room for `levels` levels.
    pub(crate) fn with_capacity(levels: usize) -> Self {
        WalkedPath {
            levels: Vec::with_capacity(levels),
        }
    }

    pub(crate) fn push(&mut self, tree: &'a Value, matched: Matched<'a>) {
        self.levels.push(Level {
            tree,
            matched,
            hash: Cell::new(0),
        });
    }

    pub(crate) fn pop(&mut self) {
        self.levels.pop();
    }

    /// Counts one more matched child at the innermost level.
    pub(crate) fn count_match(&self) {
        if let Some(level) = self.levels.last() {
            level.hash.set(level.hash.get().saturating_add(1));
        }
    }

    fn level(&self, up: usize) -> Option<&Level<'a>> {
        let index = self.levels.len().checked_sub(up.checked_add(1)?)?;
        self.levels.get(index)
    }
}

impl<'a> Walk<'a> for WalkedPath<'a> {
    fn matched(&self, up: usize) -> Option<&Matched<'_>> {
        self.level(up).map(|l| &l.matched)
    }
    fn hash_count(&self, up: usize) -> Option<usize> {
        self.level(up).map(|l| l.hash.get())
    }
    fn tree(&self, up: usize) -> Option<&'a Value> {
        self.level(up).map(|l| l.tree)
    }
}

/// A walked path of matched keys only, for operations that edit their input in place
/// (`cardinality`); `@` lookups find nothing here.
#[derive(Debug, Default)]
pub(crate) struct KeyWalk {
    levels: Vec<Matched<'static>>,
}

impl KeyWalk {
    pub(crate) fn push(&mut self, matched: Matched<'_>) {
        self.levels.push(Matched {
            key: Cow::Owned(matched.key.into_owned()),
            groups: matched.groups,
        });
    }

    pub(crate) fn pop(&mut self) {
        self.levels.pop();
    }
}

impl<'v> Walk<'v> for KeyWalk {
    fn matched(&self, up: usize) -> Option<&Matched<'_>> {
        let index = self.levels.len().checked_sub(up.checked_add(1)?)?;
        self.levels.get(index)
    }
    fn hash_count(&self, _up: usize) -> Option<usize> {
        None
    }
    fn tree(&self, _up: usize) -> Option<&'v Value> {
        None
    }
}

/// A character of a key with whether it was escaped with `\`.
type Chars = Vec<(char, bool)>;

/// Splits `\x` escapes: each escaped character is flagged.
fn unescape(raw: &str) -> Chars {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some(n) => out.push((n, true)),
                None => out.push(('\\', true)),
            }
        } else {
            out.push((c, false));
        }
    }
    out
}

fn text(chars: &[(char, bool)]) -> String {
    chars.iter().map(|(c, _)| *c).collect()
}

fn has(chars: &[(char, bool)], wanted: char) -> bool {
    chars.iter().any(|&(c, e)| c == wanted && !e)
}

fn starts(chars: &[(char, bool)], wanted: char) -> bool {
    matches!(chars.first(), Some(&(c, false)) if c == wanted)
}

/// Parses the reference after `&` or `$` starting at `chars[at]`; returns it and the index after it.
fn parse_ref(chars: &[(char, bool)], mut at: usize) -> Result<(Ref, usize), String> {
    let digits = |from: usize| {
        let mut end = from;
        while matches!(chars.get(end), Some(&(c, false)) if c.is_ascii_digit()) {
            end += 1;
        }
        end
    };
    let number = |from: usize, to: usize| -> Result<usize, String> {
        let s: String = chars.get(from..to).map(text).unwrap_or_default();
        s.parse::<usize>()
            .map_err(|_| format!("`{s}` is not a level number"))
    };
    if matches!(chars.get(at), Some(&('(', false))) {
        at += 1;
        let end = digits(at);
        if end == at {
            return Err("a reference `(N,M)` needs a level number".into());
        }
        let up = number(at, end)?;
        at = end;
        let mut group = 0;
        if matches!(chars.get(at), Some(&(',', false))) {
            at += 1;
            let end = digits(at);
            if end == at {
                return Err("a reference `(N,M)` needs a group number after the comma".into());
            }
            group = number(at, end)?;
            at = end;
        }
        if !matches!(chars.get(at), Some(&(')', false))) {
            return Err("a reference `(N,M)` is missing its closing `)`".into());
        }
        return Ok((Ref { up, group }, at + 1));
    }
    let end = digits(at);
    if end == at {
        return Ok((Ref { up: 0, group: 0 }, at));
    }
    Ok((
        Ref {
            up: number(at, end)?,
            group: 0,
        },
        end,
    ))
}

impl Template {
    fn parse(chars: &[(char, bool)]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while let Some(&(c, escaped)) = chars.get(i) {
            if c == '&' && !escaped {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                let (r, next) = parse_ref(chars, i + 1)?;
                parts.push(Part::Amp(r));
                i = next;
            } else {
                lit.push(c);
                i += 1;
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// Evaluates the template; `None` when a reference points past the walked path.
    pub(crate) fn eval<'v>(&self, walk: &impl Walk<'v>) -> Option<String> {
        self.try_eval(walk).ok()
    }

    /// Evaluates the template; `Err` names the first reference that points past the walked
    /// path or past the capture groups of the key matched at its level.
    pub(crate) fn try_eval<'v>(&self, walk: &impl Walk<'v>) -> Result<String, Ref> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Amp(r) => out.push_str(eval_ref(*r, walk).ok_or(*r)?),
            }
        }
        Ok(out)
    }

    fn canonical(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Amp(r) => out.push_str(&format!("&({},{})", r.up, r.group)),
            }
        }
        out
    }
}

/// The text of capture `r.group` of the key matched `r.up` levels up.
pub(crate) fn eval_ref<'w, 'v>(r: Ref, walk: &'w impl Walk<'v>) -> Option<&'w str> {
    walk.matched(r.up)?.group(r.group)
}

impl StarPattern {
    fn parse(chars: &[(char, bool)]) -> Result<Self, String> {
        // `(?s)`: a star matches any character, newlines included, as JOLT's prefix/suffix tests do.
        let mut pattern = String::from("(?s)^");
        let mut literal = String::new();
        let mut stars = 0usize;
        for &(c, escaped) in chars {
            if c == '*' && !escaped {
                pattern.push_str(&regex::escape(&literal));
                literal.clear();
                pattern.push_str("(.+?)");
                stars += 1;
            } else {
                literal.push(c);
            }
        }
        pattern.push_str(&regex::escape(&literal));
        pattern.push('$');
        let kind = match stars {
            0 | 1 => StarKind::Single,
            2 => StarKind::Double,
            _ => StarKind::Regex,
        };
        let regex = regex::RegexBuilder::new(&pattern)
            .size_limit(REGEX_COMPILED_BYTES_MAX)
            .build()
            .map_err(|e| format!("star pattern is too complex: {e}"))?;
        Ok(StarPattern {
            regex,
            kind,
            canonical: text(chars),
        })
    }

    /// Matches `key`, returning the capture ranges of each star.
    pub(crate) fn captures(&self, key: &str) -> Option<Vec<Range<usize>>> {
        let caps = self.regex.captures(key)?;
        Some(
            caps.iter()
                .skip(1)
                .map(|m| m.map(|m| m.range()).unwrap_or(0..0))
                .collect(),
        )
    }

    /// Whether `key` matches.
    pub(crate) fn is_match(&self, key: &str) -> bool {
        self.regex.is_match(key)
    }
}

impl Transpose {
    /// Parses `@…` from its raw text (escapes intact).
    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let Some(rest) = raw.strip_prefix('@') else {
            return Err(format!("`{raw}` must start with `@`"));
        };
        if rest.is_empty() {
            return Err("a lone `@` is not valid here; use `@0` or `@(N,path)`".into());
        }
        if rest.contains('@') {
            return Err(format!("`{raw}`: an `@` lookup cannot contain another `@`"));
        }
        if rest.contains('*') || rest.contains("[]") {
            return Err(format!("`{raw}`: an `@` lookup cannot contain `*` or `[]`"));
        }
        let meat = if let Some(inner) = rest.strip_prefix('(') {
            inner
                .strip_suffix(')')
                .ok_or_else(|| format!("`{raw}` is missing its closing `)`"))?
        } else {
            rest
        };
        let digits_end = meat
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(meat.len());
        if digits_end == 0 {
            return Ok(Transpose {
                up: 0,
                path: parse_rhs_path(meat)?,
            });
        }
        let (num, tail) = meat.split_at(digits_end);
        let up = num
            .parse::<usize>()
            .map_err(|_| format!("`{num}` is not a level number"))?;
        let path = if tail.is_empty() {
            Vec::new()
        } else if let Some(p) = tail.strip_prefix(',') {
            parse_rhs_path(p)?
        } else {
            return Err(format!(
                "`{raw}`: a level number must be followed by `,` or `)`"
            ));
        };
        Ok(Transpose { up, path })
    }

    /// The path walked down from the level `up` levels above.
    pub(crate) fn sub_path(&self) -> &[Rhs] {
        &self.path
    }

    /// Looks the data up; `None` when any step is missing.
    pub(crate) fn read<'v>(&self, walk: &impl Walk<'v>) -> Option<&'v Value> {
        let root = walk.tree(self.up)?;
        read_path(root, &self.path, walk)
    }

    /// The data as a key: strings as they are, numbers as their integer part (they are meant
    /// as array indices), booleans as text.
    pub(crate) fn read_key<'v>(&self, walk: &impl Walk<'v>) -> Option<String> {
        match self.read(walk)? {
            Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "Java's Number.intValue() wraps the same way"
                )]
                (Some(i), _) => (i as i32).to_string(),
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "Java's Number.intValue() saturates the same way"
                )]
                (None, Some(f)) => (f as i32).to_string(),
                _ => n.to_string(),
            }),
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Walks `path` down from `root`; used by `@` lookups and `^` context lookups.
///
/// Each step reads one container type, as jolt-core's traversal steps do: a key step
/// (literal, `&` or `@`) reads only an object's member, even one named like a number, and an
/// array step `[…]` reads only an array's element.
pub(crate) fn read_path<'v>(
    root: &'v Value,
    path: &[Rhs],
    walk: &impl Walk<'v>,
) -> Option<&'v Value> {
    let mut cur = root;
    for step in path {
        cur = match (step, cur) {
            (Rhs::Literal(s), Value::Object(map)) => map.get(s)?,
            (Rhs::Template(t), Value::Object(map)) => map.get(&t.eval(walk)?)?,
            (Rhs::Transpose(t), Value::Object(map)) => map.get(&t.read_key(walk)?)?,
            (Rhs::Array(a), Value::Array(list)) => list.get(array_index(a, walk)??)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// One step from a container to a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    /// An object's member.
    Key(String),
    /// An array's element.
    Index(usize),
}

impl Seg {
    /// The child of `v` this step leads to, if `v` is the right kind of container and has it.
    pub(crate) fn read<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        match (self, v) {
            (Seg::Key(k), Value::Object(map)) => map.get(k),
            (Seg::Index(i), Value::Array(list)) => list.get(*i),
            _ => None,
        }
    }

    /// As [`Seg::read`], mutably.
    pub(crate) fn read_mut<'v>(&self, v: &'v mut Value) -> Option<&'v mut Value> {
        match (self, v) {
            (Seg::Key(k), Value::Object(map)) => map.get_mut(k),
            (Seg::Index(i), Value::Array(list)) => list.get_mut(*i),
            _ => None,
        }
    }
}

/// Like [`read_path`], but returns the steps taken instead of the value found.
pub(crate) fn locate_path<'v>(
    root: &'v Value,
    path: &[Rhs],
    walk: &impl Walk<'v>,
) -> Option<Vec<Seg>> {
    let mut cur = root;
    let mut segs = Vec::with_capacity(path.len());
    for step in path {
        let seg = match (step, cur) {
            (Rhs::Literal(s), Value::Object(_)) => Seg::Key(s.clone()),
            (Rhs::Template(t), Value::Object(_)) => Seg::Key(t.eval(walk)?),
            (Rhs::Transpose(t), Value::Object(_)) => Seg::Key(t.read_key(walk)?),
            (Rhs::Array(a), Value::Array(_)) => Seg::Index(array_index(a, walk)??),
            _ => return None,
        };
        cur = seg.read(cur)?;
        segs.push(seg);
    }
    Some(segs)
}

/// The child of `v` named `key`: a map entry, or a list element when `key` is an index.
pub(crate) fn child<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Object(map) => map.get(key),
        Value::Array(list) => list.get(key.parse::<usize>().ok()?),
        _ => None,
    }
}

/// Evaluates an array step to an index: `Some(None)` for append, `None` when it cannot be evaluated.
pub(crate) fn array_index<'v>(step: &ArrayStep, walk: &impl Walk<'v>) -> Option<Option<usize>> {
    match step {
        ArrayStep::Append => Some(None),
        ArrayStep::Index(i) => Some(Some(*i)),
        ArrayStep::Ref(r) => eval_ref(*r, walk)?.parse::<usize>().ok().map(Some),
        ArrayStep::Hash(up) => walk.hash_count(*up).map(Some),
        ArrayStep::Transpose(t) => t.read_key(walk)?.parse::<usize>().ok().map(Some),
    }
}

/// The text JOLT uses when a scalar becomes a key (`input.toString()`: a double as Java's
/// `Double.toString` spells it, `1.0E7`); `None` for null, arrays and objects.
pub(crate) fn scalar_key(v: &Value) -> Option<String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(java_string(v)),
        _ => None,
    }
}

/// Splits an output path into raw elements at unescaped dots, putting `[…]` into elements of
/// their own and keeping `@(…)` whole. Escapes stay in the element text.
fn split_rhs(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = it.next() {
                    cur.push(n);
                }
            }
            '.' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                cur.push('[');
                let mut closed = false;
                let mut parens = 0usize;
                while let Some(n) = it.next() {
                    cur.push(n);
                    match n {
                        '\\' => {
                            if let Some(e) = it.next() {
                                cur.push(e);
                            }
                        }
                        '(' => parens += 1,
                        ')' => parens = parens.saturating_sub(1),
                        ']' if parens == 0 => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return Err(format!("`{raw}` has a `[` without its `]`"));
                }
                out.push(std::mem::take(&mut cur));
            }
            '@' => {
                if !cur.is_empty() {
                    return Err(format!("`{raw}`: `@` can only start a path element"));
                }
                cur.push('@');
                if it.peek() == Some(&'(') {
                    let mut depth = 0usize;
                    let mut closed = false;
                    for n in it.by_ref() {
                        cur.push(n);
                        match n {
                            '(' => depth += 1,
                            ')' => {
                                depth = depth.saturating_sub(1);
                                if depth == 0 {
                                    closed = true;
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    if !closed {
                        return Err(format!("`{raw}` has a `@(` without its `)`"));
                    }
                } else {
                    while let Some(&n) = it.peek() {
                        if n == '.' || n == '[' {
                            break;
                        }
                        cur.push(n);
                        it.next();
                    }
                }
                out.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn parse_array_step(inner: &str) -> Result<ArrayStep, String> {
    if inner.is_empty() {
        return Ok(ArrayStep::Append);
    }
    if inner.bytes().all(|b| b.is_ascii_digit()) {
        return inner
            .parse::<usize>()
            .map(ArrayStep::Index)
            .map_err(|_| format!("`[{inner}]` is not a valid array index"));
    }
    if inner.starts_with('&') {
        let chars = unescape(inner);
        let (r, end) = parse_ref(&chars, 1)?;
        if end != chars.len() {
            return Err(format!("`[{inner}]` has text after its reference"));
        }
        return Ok(ArrayStep::Ref(r));
    }
    if let Some(n) = inner.strip_prefix('#') {
        if n.is_empty() {
            return Ok(ArrayStep::Hash(0));
        }
        return n
            .parse::<usize>()
            .map(ArrayStep::Hash)
            .map_err(|_| format!("`[{inner}]`: `#` must be followed by a level number"));
    }
    if inner.starts_with('@') {
        return Transpose::parse(inner).map(ArrayStep::Transpose);
    }
    Err(format!(
        "`[{inner}]` is not an array index, `[]`, `[&N]`, `[#N]` or `[@…]`"
    ))
}

fn parse_rhs_element(raw: &str) -> Result<Rhs, String> {
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("`{raw}` is missing its `]`"))?;
        return parse_array_step(inner).map(Rhs::Array);
    }
    if raw.starts_with('@') {
        return Transpose::parse(raw).map(Rhs::Transpose);
    }
    let chars = unescape(raw);
    for bad in ['*', '$'] {
        if has(&chars, bad) {
            return Err(format!("`{raw}`: `{bad}` is not valid in an output path"));
        }
    }
    if has(&chars, '&') {
        return Template::parse(&chars).map(Rhs::Template);
    }
    // JOLT reads an element with `#` as a `#literal` key, which only a left-hand side takes.
    if has(&chars, '#') {
        return Err(format!(
            "`{raw}`: `#` is not valid in an output path (except in `[#N]`)"
        ));
    }
    // `|` separates alternatives only in spec keys; here it is a plain character.
    Ok(Rhs::Literal(text(&chars)))
}

/// Parses a dotted output path such as `a.&1.b[]`; the empty string is the root.
pub(crate) fn parse_rhs_path(raw: &str) -> Result<Vec<Rhs>, String> {
    // `PathEvaluatingTraversal` reads a blank path (`StringTools.isBlank`) as the root, as it
    // does an empty one.
    if raw.chars().all(java_whitespace) {
        return Ok(Vec::new());
    }
    let elements = split_rhs(raw)?;
    if elements.len() > crate::transform::PATH_ELEMENTS_MAX {
        return Err(format!(
            "a path has {} elements, more than the limit of {}",
            elements.len(),
            crate::transform::PATH_ELEMENTS_MAX
        ));
    }
    elements.iter().map(|e| parse_rhs_element(e)).collect()
}

/// Java's `Character.isWhitespace`: Unicode space, line and paragraph separators except the
/// non-breaking ones, and the ASCII controls `\t \n \u000B \f \r \u001C`–`\u001F`.
fn java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{1C}'..='\u{1F}'
    ) || (c.is_whitespace() && !matches!(c, '\u{85}' | '\u{A0}' | '\u{2007}' | '\u{202F}'))
}

/// Splits a spec key at unescaped `|` into its alternatives, escapes intact: JOLT's spec
/// builders turn `a|b*` into one child per alternative. As their `String.split` does, trailing
/// empty alternatives are dropped (`a|` is `a` alone, and a key of bars only is none), while the
/// empty key is itself.
pub(crate) fn split_alternatives(raw: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '|' {
            out.push(raw.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    out.push(raw.get(start..).unwrap_or_default());
    if !raw.is_empty() {
        while out.last().is_some_and(|a| a.is_empty()) {
            out.pop();
        }
    }
    out
}

/// Parses a `remove` key as `RemovrSpec` reads it: split at every `|` (`String.split`, so
/// trailing empty alternatives are dropped), each alternative `*`, a star pattern or a literal.
/// A backslash is a plain character there, escaping nothing, not even `|`.
pub(crate) fn parse_remove_key(raw: &str) -> Result<Key, String> {
    let mut alternatives: Vec<&str> = raw.split('|').collect();
    if !raw.is_empty() {
        while alternatives.last().is_some_and(|a| a.is_empty()) {
            alternatives.pop();
        }
    }
    match alternatives.as_slice() {
        [one] => parse_star_or_literal(one),
        // Several alternatives, or none (bars only: nothing matches).
        many => many
            .iter()
            .map(|a| parse_star_or_literal(a))
            .collect::<Result<Vec<_>, _>>()
            .map(Key::Or),
    }
}

/// Parses one left-hand key.
pub(crate) fn parse_key(raw: &str) -> Result<Key, String> {
    let chars = unescape(raw);
    let inspect: Chars = chars.iter().copied().filter(|(_, e)| !e).collect();
    let inspect_text = text(&inspect);
    if inspect_text == "@" {
        return Ok(Key::At);
    }
    if inspect_text == "*" {
        return Ok(Key::StarAll);
    }
    if starts(&chars, '[') {
        let inner = raw
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .ok_or_else(|| format!("`{raw}` is missing its `]`"))?;
        return match parse_array_step(inner)? {
            ArrayStep::Index(i) => Ok(Key::Array(i)),
            _ => Err(format!(
                "`{raw}`: only an explicit index `[N]` can be a key"
            )),
        };
    }
    if starts(&chars, '@') {
        return Transpose::parse(raw).map(Key::Transpose);
    }
    if has(&chars, '@') {
        return Err(format!("`{raw}`: `@` can only start a key"));
    }
    if starts(&chars, '$') {
        let (r, end) = parse_ref(&chars, 1)?;
        if end != chars.len() {
            return Err(format!("`{raw}` has text after its `$` reference"));
        }
        return Ok(Key::Dollar(r));
    }
    if has(&chars, '$') {
        return Err(format!("`{raw}`: `$` can only start a key"));
    }
    // As in JOLT, `&` and `*` classify a key before `#` does.
    if has(&chars, '#') && !has(&chars, '&') && !has(&chars, '*') {
        return parse_hash_key(&text(&chars)).map(Key::Hash);
    }
    if has(&chars, '|') {
        let mut alternatives = Vec::new();
        for alt in chars.split(|&(c, e)| c == '|' && !e) {
            let key = parse_plain_key(alt)?;
            alternatives.push(key);
        }
        return Ok(Key::Or(alternatives));
    }
    parse_plain_key(&chars)
}

/// The literal of a `#literal` or `#(literal)` key (`HashPathElement`): the key must start
/// with `#` and have something after it, and parentheses right after the `#` are stripped.
fn parse_hash_key(key: &str) -> Result<String, String> {
    let Some(rest) = key.strip_prefix('#') else {
        return Err(format!("`{key}`: `#` can only start a key"));
    };
    if rest.is_empty() {
        return Err("a lone `#` is not a key; use `#literal`".into());
    }
    match rest.strip_prefix('(') {
        Some(inner) => inner
            .strip_suffix(')')
            .map(str::to_owned)
            .ok_or_else(|| format!("`{key}` is missing its closing `)`")),
        None => Ok(rest.to_owned()),
    }
}

/// A key as JOLT's cardinality transform reads it (`CardinalitySpec.parse`): `@` alone, `*`,
/// a star pattern, or else the key's text as a literal. Nothing else is special there: `|`
/// does not split alternatives, `&`, `$` and `#` are plain characters, and a backslash is
/// not an escape.
pub(crate) fn parse_verbatim_key(raw: &str) -> Result<Key, String> {
    if raw.contains('@') {
        return if raw == "@" {
            Ok(Key::At)
        } else {
            Err(format!("`{raw}`: `@` must be the whole key"))
        };
    }
    parse_star_or_literal(raw)
}

/// A key read verbatim: `*`, a star pattern, or else its text as a literal (no escapes).
fn parse_star_or_literal(raw: &str) -> Result<Key, String> {
    if raw == "*" {
        return Ok(Key::StarAll);
    }
    let chars: Chars = raw.chars().map(|c| (c, false)).collect();
    if raw.contains('*') {
        return StarPattern::parse(&chars).map(Key::Star);
    }
    Ok(Key::Literal(raw.to_owned()))
}

/// A key without `@`, `$`, `#` or `|`: literal, star pattern or `&` template.
fn parse_plain_key(chars: &[(char, bool)]) -> Result<Key, String> {
    if chars.len() == 1 && starts(chars, '*') {
        return Ok(Key::StarAll);
    }
    if has(chars, '*') {
        if has(chars, '&') {
            return Err(format!("`{}`: a key cannot mix `*` and `&`", text(chars)));
        }
        return StarPattern::parse(chars).map(Key::Star);
    }
    if has(chars, '&') {
        return Template::parse(chars).map(Key::Amp);
    }
    Ok(Key::Literal(text(chars)))
}

impl Key {
    /// Matches `input_key` against this key; references are evaluated against `walk`, whose
    /// innermost level is the parent of the key being matched.
    pub(crate) fn matches<'a, 'v>(
        &'a self,
        input_key: &Cow<'a, str>,
        walk: &impl Walk<'v>,
    ) -> Option<Matched<'a>> {
        match self {
            Key::Literal(s) => (s.as_str() == input_key.as_ref())
                .then(|| Matched::plain(Cow::Borrowed(s.as_str()))),
            // A lone `*` captures nothing: its match is the key alone, as jolt-core's
            // `StarAllPathElement` records it, so `&(0,1)` names no group.
            Key::StarAll => Some(Matched::plain(input_key.clone())),
            Key::Star(p) => {
                let groups = p.captures(input_key)?;
                Some(Matched {
                    key: input_key.clone(),
                    groups: Groups::Ranges(groups),
                })
            }
            Key::Or(alternatives) => alternatives.iter().find_map(|k| k.matches(input_key, walk)),
            Key::Amp(t) => {
                let wanted = t.eval(walk)?;
                (wanted == input_key.as_ref()).then(|| Matched::plain(input_key.clone()))
            }
            // `@` and `@(N,path)` stand for their parent's match, captures included.
            Key::At | Key::Transpose(_) => walk
                .matched(0)
                .map(|m| Matched {
                    key: Cow::Owned(m.key.to_string()),
                    groups: m.groups.clone(),
                })
                .or_else(|| Some(Matched::plain(input_key.clone()))),
            Key::Dollar(r) => Some(Matched::plain(Cow::Owned(eval_ref(*r, walk)?.to_owned()))),
            Key::Hash(s) => Some(Matched::plain(Cow::Borrowed(s.as_str()))),
            Key::Array(i) => (input_key.parse::<usize>().ok() == Some(*i))
                .then(|| Matched::plain(input_key.clone())),
        }
    }

    /// Whether a plain string matches without any walked path (for `*`, star patterns, `|`
    /// and literals); references never match here.
    pub(crate) fn matches_str(&self, key: &str) -> bool {
        match self {
            Key::Literal(s) => s == key,
            Key::StarAll => true,
            Key::Star(p) => p.is_match(key),
            Key::Or(alternatives) => alternatives.iter().any(|k| k.matches_str(key)),
            _ => false,
        }
    }

    /// Rank among computed keys (lower is tried first), then canonical text for tie-breaks.
    pub(crate) fn precedence(&self) -> (u8, String) {
        match self {
            Key::Amp(t) => (1, t.canonical()),
            Key::Array(i) => (1, format!("[{i}]")),
            Key::Star(p) => match p.kind {
                StarKind::Regex => (2, p.canonical.clone()),
                StarKind::Double => (3, p.canonical.clone()),
                StarKind::Single => (4, p.canonical.clone()),
            },
            Key::Or(alts) => (
                5,
                alts.iter()
                    .map(|a| a.precedence().1)
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            Key::StarAll => (6, "*".into()),
            Key::Literal(s) => (7, s.clone()),
            _ => (8, String::new()),
        }
    }
}

/// Sorts computed children: by kind, then longest canonical form first, then alphabetically,
/// as `ComputedKeysComparator` does with Java strings: lengths in UTF-16 code units (`é` is
/// one, not two bytes) and order by `String.compareTo`.
pub(crate) fn precedence_order(a: &Key, b: &Key) -> std::cmp::Ordering {
    let (ra, ca) = a.precedence();
    let (rb, cb) = b.precedence();
    ra.cmp(&rb)
        .then_with(|| cb.encode_utf16().count().cmp(&ca.encode_utf16().count()))
        .then_with(|| utf16_cmp(&ca, &cb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhs_split_handles_escapes_brackets_and_transpose() {
        assert_eq!(split_rhs("a.b").unwrap(), vec!["a", "b"]);
        assert_eq!(split_rhs("a\\.b").unwrap(), vec!["a\\.b"]);
        assert_eq!(
            split_rhs("foo[&1].bar").unwrap(),
            vec!["foo", "[&1]", "bar"]
        );
        assert_eq!(
            split_rhs("test.@(2,foo\\.bar)").unwrap(),
            vec!["test", "@(2,foo\\.bar)"]
        );
        assert_eq!(split_rhs("@abc.def").unwrap(), vec!["@abc", "def"]);
        assert!(split_rhs("a[1").is_err());
    }

    #[test]
    fn keys_classify_like_jolt() {
        assert!(matches!(parse_key("*").unwrap(), Key::StarAll));
        assert!(matches!(parse_key("\\*").unwrap(), Key::Literal(s) if s == "*"));
        assert!(matches!(parse_key("a*").unwrap(), Key::Star(_)));
        assert!(matches!(parse_key("a|b").unwrap(), Key::Or(_)));
        assert!(matches!(
            parse_key("$(0,1)").unwrap(),
            Key::Dollar(Ref { up: 0, group: 1 })
        ));
        assert!(matches!(parse_key("&1").unwrap(), Key::Amp(_)));
        assert!(matches!(parse_key("@(1,a)").unwrap(), Key::Transpose(_)));
        assert!(matches!(parse_key("#x").unwrap(), Key::Hash(s) if s == "x"));
        assert!(matches!(parse_key("[3]").unwrap(), Key::Array(3)));
        assert!(parse_key("a@b").is_err());
    }

    #[test]
    fn index_keys_are_the_decimal_text_of_each_position() {
        for i in 0..INDEX_KEYS_STATIC + 10 {
            assert_eq!(index_key(i), i.to_string());
            assert_eq!(
                matches!(index_key(i), Cow::Borrowed(_)),
                i < INDEX_KEYS_STATIC
            );
        }
    }

    #[test]
    fn a_lone_star_captures_nothing() {
        let key = Cow::Borrowed("abc");
        let m = Key::StarAll.matches(&key, &KeyWalk::default()).unwrap();
        assert_eq!(m.group(0), Some("abc"));
        assert_eq!(m.group(1), None);
    }

    #[test]
    fn star_needs_one_character_per_star() {
        let Key::Star(p) = parse_key("a*b").unwrap() else {
            panic!()
        };
        assert!(p.is_match("axb"));
        assert!(!p.is_match("ab"));
        assert_eq!(p.captures("axxb").unwrap(), vec![1..3]);
    }
}
