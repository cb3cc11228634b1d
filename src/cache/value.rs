//! The value types a key can hold: binary-safe strings, hashes, lists and sets.

use std::collections::VecDeque;

use bytes::Bytes;
use hashbrown::{HashMap, HashSet};

/// A key's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A binary-safe string (also holds integers and floats as their decimal text).
    Str(Vec<u8>),
    /// Field → value.
    Hash(Box<HashMap<Bytes, Bytes>>),
    /// An ordered sequence, pushed and popped at both ends.
    #[expect(
        clippy::box_collection,
        reason = "boxed so a Value stays one word plus a Vec, which keeps string entries small"
    )]
    List(Box<VecDeque<Bytes>>),
    /// Unordered unique members.
    Set(Box<HashSet<Bytes>>),
}

/// Bytes of bookkeeping counted per collection element on top of its data.
const ELEMENT_OVERHEAD_BYTES: usize = 48;

impl Value {
    /// The Redis type name (`TYPE`).
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::Str(_) => "string",
            Self::Hash(_) => "hash",
            Self::List(_) => "list",
            Self::Set(_) => "set",
        }
    }

    /// The encoding `OBJECT ENCODING` reports, as Redis 7.0 would for this size.
    pub(crate) fn encoding(&self) -> &'static str {
        match self {
            Self::Str(s) => Self::str_encoding(s),
            Self::Hash(h) => {
                if h.len() <= 128 && h.iter().all(|(k, v)| k.len() <= 64 && v.len() <= 64) {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
            Self::List(_) => "quicklist",
            Self::Set(s) => {
                if s.len() <= 512
                    && s.iter()
                        .all(|m| crate::cache::resp::frame::parse_i64(m).is_some())
                {
                    "intset"
                } else if s.len() <= 128 {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
        }
    }

    /// The encoding Redis 7.0 reports for a string of these bytes.
    pub(crate) fn str_encoding(s: &[u8]) -> &'static str {
        if s.len() <= 20 && crate::cache::resp::frame::parse_i64(s).is_some() {
            "int"
        } else if s.len() <= 44 {
            "embstr"
        } else {
            "raw"
        }
    }

    /// Estimated heap bytes of the value (exact for strings, per-element estimate for
    /// collections so that accounting stays O(1) per write).
    pub(crate) fn mem_bytes(&self) -> usize {
        match self {
            Self::Str(s) => s.len(),
            Self::Hash(h) => h.len().saturating_mul(ELEMENT_OVERHEAD_BYTES * 2),
            Self::List(l) => l.len().saturating_mul(ELEMENT_OVERHEAD_BYTES),
            Self::Set(s) => s.len().saturating_mul(ELEMENT_OVERHEAD_BYTES),
        }
    }

    /// Whether a collection has become empty (Redis deletes such keys).
    pub(crate) fn is_empty_collection(&self) -> bool {
        match self {
            Self::Str(_) => false,
            Self::Hash(h) => h.is_empty(),
            Self::List(l) => l.is_empty(),
            Self::Set(s) => s.is_empty(),
        }
    }
}
