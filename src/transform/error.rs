//! The transform module's error type: every spec fault names the JSON Pointer of the spec value
//! that caused it; apply-time failures name the limit that was hit.

/// Everything that can go wrong while parsing or applying a JOLT spec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec text is longer than [`super::SPEC_BYTES_MAX`].
    #[error("spec is {len} bytes, more than the limit of {max}")]
    SpecTooLarge {
        /// Length of the spec text in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The spec text is not JSON.
    #[error("spec is not valid JSON: {source}")]
    SpecJson {
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The spec nests deeper than [`super::SPEC_DEPTH_MAX`].
    #[error("spec at {path} nests deeper than the limit of {max}")]
    SpecTooDeep {
        /// JSON Pointer of the first value past the limit.
        path: String,
        /// The limit.
        max: usize,
    },
    /// The chain has more operations than [`super::SPEC_OPERATIONS_MAX`].
    #[error("spec has {len} operations, more than the limit of {max}")]
    TooManyOperations {
        /// Number of operations in the chain.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The spec is JSON but not a valid JOLT spec.
    #[error("invalid spec at {path}: {reason}")]
    InvalidSpec {
        /// JSON Pointer (RFC 6901) of the offending spec value or key, e.g. `/0/spec/rating/*`.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The input nests deeper than [`super::INPUT_DEPTH_MAX`].
    #[error("input nests deeper than the limit of {max}")]
    InputTooDeep {
        /// The limit.
        max: usize,
    },
    /// The context nests deeper than [`super::INPUT_DEPTH_MAX`].
    #[error("context nests deeper than the limit of {max}")]
    ContextTooDeep {
        /// The limit.
        max: usize,
    },
    /// A computed output array index is larger than [`super::ARRAY_INDEX_MAX`].
    #[error("operation {operation} would write array index {index}, more than the limit of {max}")]
    ArrayIndexTooLarge {
        /// Position of the operation in the chain.
        operation: usize,
        /// The requested index.
        index: usize,
        /// The limit.
        max: usize,
    },
    /// The chain copied more values than [`super::COPY_VALUES_MAX`].
    #[error("operation {operation} copied more than the limit of {max} values")]
    TooManyCopies {
        /// Position of the operation in the chain where the budget ran out.
        operation: usize,
        /// The limit.
        max: usize,
    },
    /// The chain copied more string and key bytes than [`super::COPY_BYTES_MAX`].
    #[error("operation {operation} copied more than the limit of {max} bytes of strings and keys")]
    CopiedTooManyBytes {
        /// Position of the operation in the chain where the budget ran out.
        operation: usize,
        /// The limit.
        max: usize,
    },
    /// The input does not fit the operation, e.g. a top-level array given to a `default` spec
    /// that has no array form.
    #[error("operation {operation} cannot transform this input: {reason}")]
    Transform {
        /// Position of the operation in the chain.
        operation: usize,
        /// Why the input was rejected.
        reason: String,
    },
}

/// The transform module's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
