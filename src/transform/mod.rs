//! The JOLT engine: specs parsed and validated once, applied to JSON many times.
//!
//! A [`Spec`] is a chain of operations in NiFi's `JoltTransformJSON` form
//! (`[{"operation": "shift", "spec": {…}}, …]`): `shift`, `default`, `remove`, `cardinality`,
//! `sort`, `modify-overwrite-beta`, `modify-default-beta` and `modify-define-beta`, with JOLT's
//! full path grammar (`*`, `&`, `&(N,M)`, `@`, `@(N,path)`, `$`, `$(N,M)`, `#`, `|`, `[]`,
//! `[N]`, `[#N]`, `\` escapes, `^` context lookups) and JOLT 0.1.8's modifier functions.
//!
//! Parsing validates the whole spec and reports the JSON Pointer of the first fault. Applying
//! never panics, is deterministic, and leaves its input untouched.
//!
//! ```
//! use serde_json::json;
//! use streamcache::transform::Spec;
//!
//! let spec = Spec::parse_str(r#"[{"operation": "shift", "spec": {"a": "b.c"}}]"#)?;
//! assert_eq!(spec.apply(&json!({"a": 1}))?, json!({"b": {"c": 1}}));
//! # Ok::<(), streamcache::transform::Error>(())
//! ```

mod apply;
mod budget;
mod error;
mod ops;
mod path;
mod spec;

pub use error::{Error, Result};
pub use ops::Functions;

// ---- Limits -------------------------------------------------------------------------------

/// Longest spec text accepted by [`Spec::parse_str`], in bytes: a spec is configuration, and
/// the largest real NiFi specs are tens of kilobytes.
pub const SPEC_BYTES_MAX: usize = 1 << 20;
/// Deepest container nesting in a spec (the chain array counts as one level); spec walking
/// recurses along it.
pub const SPEC_DEPTH_MAX: usize = 64;
/// Most operations in one chain.
pub const SPEC_OPERATIONS_MAX: usize = 64;
/// Most elements in one output or lookup path (`a.b.c` has three): bounds how much deeper an
/// operation can make a document.
pub const PATH_ELEMENTS_MAX: usize = 64;
/// Deepest container nesting accepted in an input or context document; matches serde_json's
/// own parser recursion limit, and bounds the recursion of `sort` and of dropping values.
pub const INPUT_DEPTH_MAX: usize = 128;
/// Deepest nesting a document may reach between operations of a chain.
pub const DOCUMENT_DEPTH_MAX: usize = 512;
/// Largest array index an operation may write to (arrays are padded with nulls up to it).
pub const ARRAY_INDEX_MAX: usize = 65_535;
/// Most JSON values (each scalar, array and object counts one) one apply may copy out of its
/// input, document or context: a spec that copies a document into itself repeatedly grows it
/// exponentially, and this turns that into an error instead of an out-of-memory abort.
pub const COPY_VALUES_MAX: usize = 1 << 21;
/// Most bytes of strings and object keys one apply may copy out of its input, document or
/// context: a spec that copies one long string into many places (or doubles it with `concat`,
/// operation after operation) counts few values but many bytes, and this turns that into an
/// error instead of an out-of-memory abort.
pub const COPY_BYTES_MAX: usize = 64 << 20;
/// Longest regular expression `split` compiles from its separator, which may come from the
/// input, in bytes; with a longer one the function fails as with an invalid one (the value is
/// left as it was).
pub const SPLIT_REGEX_BYTES_MAX: usize = 4096;
/// Largest compiled regular expression — `split`'s separator, a spec key's `*` pattern — in
/// bytes (the `regex` crate's size limit), so a short pattern cannot blow up memory either.
pub const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;
/// Widest padding `leftPad`/`rightPad` produce, in UTF-16 code units, as in JOLT; a wider one
/// (the width may come from the input) fails the function (nothing written).
pub const PAD_WIDTH_MAX: usize = 500;

const _: () = assert!(SPEC_DEPTH_MAX <= INPUT_DEPTH_MAX);
const _: () = assert!(INPUT_DEPTH_MAX + PATH_ELEMENTS_MAX <= DOCUMENT_DEPTH_MAX);

/// The reference pipeline's order spec: a `shift` that keeps a classicmodels order's identity,
/// dates, status, customer (flattening `customer.*`) and order lines, and a `remove` that drops
/// the free-text `comments`.
pub const REFERENCE_ORDER_SPEC: &str = include_str!("reference_order_spec.json");

/// A parsed, validated JOLT chain. Cheap to share: `Send + Sync`, applied through `&self`.
///
/// ```
/// use serde_json::json;
/// use streamcache::transform::{REFERENCE_ORDER_SPEC, Spec};
///
/// let spec = Spec::parse_str(REFERENCE_ORDER_SPEC)?;
/// let order = json!({"orderNumber": 7, "comments": "rush", "customer": {"city": "Nantes"},
///                    "orderLines": [{"productCode": "S10_1678", "orderLineNumber": 1}]});
/// let out = spec.apply(&order)?;
/// assert_eq!(out, json!({"orderNumber": 7, "city": "Nantes",
///                        "orderLines": [{"productCode": "S10_1678"}]}));
///
/// // A rejected spec names the JSON Pointer of its fault.
/// let err = Spec::parse_str(r#"[{"operation": "remove", "spec": {"a": 1}}]"#).unwrap_err();
/// assert!(err.to_string().contains("/0/spec/a"));
/// # Ok::<(), streamcache::transform::Error>(())
/// ```
#[derive(Debug)]
pub struct Spec {
    operations: Vec<spec::Operation>,
}

// IMPORTANT: the pipeline shares one parsed spec across threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Spec>();
};

impl Spec {
    /// Parses spec text (a chain array, or one `{"operation", "spec"}` object).
    ///
    /// # Errors
    /// [`Error::SpecTooLarge`], [`Error::SpecJson`], [`Error::SpecTooDeep`],
    /// [`Error::TooManyOperations`] or [`Error::InvalidSpec`] naming the JSON Pointer of the fault.
    pub fn parse_str(text: &str) -> Result<Spec> {
        Ok(Spec {
            operations: spec::parse_str(text, &Functions::default())?,
        })
    }

    /// Parses an already-decoded spec value.
    ///
    /// # Errors
    /// As [`Spec::parse_str`], except the text-level errors.
    pub fn parse(value: &serde_json::Value) -> Result<Spec> {
        Ok(Spec {
            operations: spec::parse(value, &Functions::default())?,
        })
    }

    /// Parses a spec value whose modifier operations may also call the custom `functions`
    /// (like functions added to JOLT's `Modifier` function table); a custom function shadows a
    /// stock one of the same name.
    ///
    /// # Errors
    /// As [`Spec::parse`].
    pub fn parse_with_functions(value: &serde_json::Value, functions: &Functions) -> Result<Spec> {
        Ok(Spec {
            operations: spec::parse(value, functions)?,
        })
    }

    /// Number of operations in the chain.
    #[must_use]
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Always false: a chain has at least one operation.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Applies the chain to `input` with an empty context.
    ///
    /// # Errors
    /// [`Error::InputTooDeep`], [`Error::ArrayIndexTooLarge`] or [`Error::Transform`].
    pub fn apply(&self, input: &serde_json::Value) -> Result<serde_json::Value> {
        self.apply_range(0..self.operations.len(), input, &serde_json::Value::Null)
    }

    /// Applies the chain to `input`; modifier specs read `context` with `^path`.
    ///
    /// # Errors
    /// As [`Spec::apply`], plus [`Error::ContextTooDeep`].
    pub fn apply_with_context(
        &self,
        input: &serde_json::Value,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.apply_range(0..self.operations.len(), input, context)
    }

    /// Applies only operations `range` of the chain (JOLT's `transform(from, to, …)`); an
    /// empty or out-of-bounds range applies what exists of it.
    ///
    /// # Errors
    /// As [`Spec::apply_with_context`].
    pub fn apply_range(
        &self,
        range: std::ops::Range<usize>,
        input: &serde_json::Value,
        context: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        apply::apply(&self.operations, range, input, context)
    }
}

/// Fuzz body for spec parsing: any bytes, never panics.
///
/// Bytes that are UTF-8 are parsed as spec text; the result is ignored.
pub fn fuzz_jolt_spec(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Spec::parse_str(text);
    }
}

/// Fuzz body for applying: the bytes up to the first newline are a spec, the rest an input
/// document; when both parse, the spec is applied (with the input also as context). Never
/// panics.
pub fn fuzz_jolt_apply(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (spec_text, input_text) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(spec) = Spec::parse_str(spec_text) else {
        return;
    };
    let Ok(input) = serde_json::from_str::<serde_json::Value>(input_text) else {
        return;
    };
    let _ = spec.apply_with_context(&input, &input);
}
