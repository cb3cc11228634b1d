//! The pipeline's error type: invalid flow configuration (naming the flow and the field) and
//! failures of a running flow.

use std::path::PathBuf;

/// Why a flow set cannot be used or a flow stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flow's configuration is invalid; nothing was started or stopped.
    #[error("flow `{flow}`: `{field}`: {reason}")]
    Invalid {
        /// The flow's name (or its index, `#N`, when the name itself is the problem).
        flow: String,
        /// The field, spelled as in the TOML file below the flow, e.g. `sinks[latest].cache.key`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A JOLT spec file named by a flow cannot be read.
    #[error("flow `{flow}`: `{field}`: cannot read spec file {path}: {source}")]
    SpecFile {
        /// The flow's name.
        flow: String,
        /// The field naming the file.
        field: String,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// An engine behind a seam failed in a way that stops the flow (storage fault, closed log).
    #[error("flow `{flow}`: {stage} failed: {source}")]
    Engine {
        /// The flow's name.
        flow: String,
        /// What the flow was doing: `open source`, `poll`, `history commit`, ….
        stage: &'static str,
        /// The engine's error.
        #[source]
        source: SeamError,
    },
    /// A flow task ended abnormally (it panicked or was cancelled).
    #[error("flow `{flow}`: task ended abnormally: {reason}")]
    Task {
        /// The flow's name.
        flow: String,
        /// The join error's description.
        reason: String,
    },
}

/// Result alias for pipeline calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How an engine call behind a seam failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeamErrorKind {
    /// The engine refused this one input (too large, wrong type, bad key): the record goes to
    /// the dead-letter topic and the flow carries on.
    Rejected,
    /// The engine cannot work at all (storage fault, shut down): the flow stops without
    /// committing, so the batch is read again after a restart.
    Fatal,
}

/// The error every seam trait returns: a kind that decides what the flow does, and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SeamError {
    /// Dead-letter the record, or stop the flow.
    pub kind: SeamErrorKind,
    /// Human-readable cause; ends up in the dead-letter `error` header for rejections.
    pub message: String,
}

impl SeamError {
    /// A rejection of one input.
    #[must_use]
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            kind: SeamErrorKind::Rejected,
            message: message.into(),
        }
    }

    /// A failure that stops the flow.
    #[must_use]
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            kind: SeamErrorKind::Fatal,
            message: message.into(),
        }
    }

    /// Whether the flow must stop.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        self.kind == SeamErrorKind::Fatal
    }
}
