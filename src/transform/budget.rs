//! The copy budget: every value an apply copies out of the document or context counts against
//! [`COPY_VALUES_MAX`](super::COPY_VALUES_MAX), and its strings and keys against
//! [`COPY_BYTES_MAX`](super::COPY_BYTES_MAX), so a spec that copies a document (or one long
//! string) into itself over and over fails with an error instead of exhausting memory.

use std::cell::Cell;

use serde_json::Value;

use super::error::Error;

/// Which limit a [`Budget`] ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exhausted {
    Values,
    Bytes,
}

/// Values and bytes left to copy during one apply.
#[derive(Debug)]
pub(crate) struct Budget {
    values_left: Cell<usize>,
    bytes_left: Cell<usize>,
    max_values: usize,
    max_bytes: usize,
    exhausted: Cell<Option<Exhausted>>,
}

impl Budget {
    pub(crate) fn new(max_values: usize, max_bytes: usize) -> Self {
        Budget {
            values_left: Cell::new(max_values),
            bytes_left: Cell::new(max_bytes),
            max_values,
            max_bytes,
            exhausted: Cell::new(None),
        }
    }

    /// Copies `value` if the budget allows; otherwise marks the budget exhausted and returns
    /// null (the caller reports the error when its operation ends).
    pub(crate) fn copy(&self, value: &Value) -> Value {
        if self.exhausted.get().is_some() {
            return Value::Null;
        }
        match cost_within(value, self.values_left.get(), self.bytes_left.get()) {
            Ok((values, bytes)) => {
                self.values_left.set(self.values_left.get() - values);
                self.bytes_left.set(self.bytes_left.get() - bytes);
                value.clone()
            }
            Err(which) => {
                self.exhausted.set(Some(which));
                Value::Null
            }
        }
    }

    /// The error for operation `operation` when the budget ran out (`None` while it has not).
    pub(crate) fn error(&self, operation: usize) -> Option<Error> {
        Some(match self.exhausted.get()? {
            Exhausted::Values => Error::TooManyCopies {
                operation,
                max: self.max_values,
            },
            Exhausted::Bytes => Error::CopiedTooManyBytes {
                operation,
                max: self.max_bytes,
            },
        })
    }
}

/// The values in `value` (itself included) and the bytes of its strings and object keys, or
/// which limit it passes.
fn cost_within(
    value: &Value,
    max_values: usize,
    max_bytes: usize,
) -> Result<(usize, usize), Exhausted> {
    let mut values = 0usize;
    let mut bytes = 0usize;
    let mut add = |values_more: usize, bytes_more: usize| {
        values = values.saturating_add(values_more);
        bytes = bytes.saturating_add(bytes_more);
        if values > max_values {
            Err(Exhausted::Values)
        } else if bytes > max_bytes {
            Err(Exhausted::Bytes)
        } else {
            Ok(())
        }
    };
    // A scalar needs no walk.
    let mut stack = match value {
        Value::Array(_) | Value::Object(_) => vec![value],
        Value::String(s) => return add(1, s.len()).map(|()| (values, bytes)),
        _ => return add(1, 0).map(|()| (values, bytes)),
    };
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => {
                add(1, 0)?;
                stack.extend(items.iter());
            }
            Value::Object(map) => {
                add(1, 0)?;
                for (key, item) in map {
                    add(0, key.len())?;
                    stack.push(item);
                }
            }
            Value::String(s) => add(1, s.len())?,
            _ => add(1, 0)?,
        }
    }
    Ok((values, bytes))
}
