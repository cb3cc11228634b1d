//! One-operand expressions that read a value's encoding: `$bsonSize` (a document's BSON size in
//! bytes, an int; 31393), `$binarySize` (a string's UTF-8 bytes or a BinData's bytes, an int;
//! 51276), `$tsSecond` and `$tsIncrement` (a BSON Timestamp's seconds or increment, a long;
//! 5687301/5687302). Null or missing gives null. As MongoDB 7.0's `expression.cpp`.

use bson::Bson;

use super::super::document;
use super::super::error::Result;
use super::expr::{eval_error, nullish, type_of};

/// Which size or part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeOp {
    BsonSize,
    BinarySize,
    TsSecond,
    TsIncrement,
}

impl SizeOp {
    /// The operator called `name`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        Some(match name {
            "$bsonSize" => Self::BsonSize,
            "$binarySize" => Self::BinarySize,
            "$tsSecond" => Self::TsSecond,
            "$tsIncrement" => Self::TsIncrement,
            _ => return None,
        })
    }
}

fn int(n: usize) -> Bson {
    Bson::Int32(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Evaluates the operator over its one evaluated operand.
///
/// # Errors
/// MongoDB's code for an operand of another type.
pub(crate) fn apply(op: SizeOp, v: Option<&Bson>) -> Result<Option<Bson>> {
    if nullish(v) {
        return Ok(Some(Bson::Null));
    }
    Ok(Some(match (op, v) {
        (SizeOp::BsonSize, Some(Bson::Document(d))) => int(document::bson_size(d)),
        (SizeOp::BsonSize, _) => {
            return Err(eval_error(
                31393,
                format!("$bsonSize requires a document input, found: {}", type_of(v)),
            ));
        }
        (SizeOp::BinarySize, Some(Bson::String(s))) => int(s.len()),
        (SizeOp::BinarySize, Some(Bson::Binary(b))) => int(b.bytes.len()),
        (SizeOp::BinarySize, _) => {
            return Err(eval_error(
                51276,
                format!(
                    "$binarySize requires a string or BinData argument, found: {}",
                    type_of(v)
                ),
            ));
        }
        (SizeOp::TsSecond, Some(Bson::Timestamp(t))) => Bson::Int64(i64::from(t.time)),
        (SizeOp::TsIncrement, Some(Bson::Timestamp(t))) => Bson::Int64(i64::from(t.increment)),
        (SizeOp::TsSecond | SizeOp::TsIncrement, _) => {
            let (code, name) = if op == SizeOp::TsSecond {
                (5_687_301, "$tsSecond")
            } else {
                (5_687_302, "$tsIncrement")
            };
            return Err(eval_error(
                code,
                format!(
                    " Argument to {name} must be a timestamp, but is {}",
                    type_of(v)
                ),
            ));
        }
    }))
}
