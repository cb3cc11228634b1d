//! One file per JOLT operation. Each exposes a parsed form with `parse(spec, pointer)` and an
//! `apply` that never panics.

mod cardinality;
mod default;
mod functions;
mod modify;
mod remove;
mod shift;
mod sort;

pub(crate) use cardinality::Cardinality;
pub(crate) use default::Default;
pub use functions::Functions;
pub(crate) use functions::{java_string, utf16_cmp};
pub(crate) use modify::{Modify, ModifyMode};
pub(crate) use remove::Remove;
pub(crate) use shift::Shift;
pub(crate) use sort::sort;
