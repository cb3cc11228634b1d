//! `modify-overwrite-beta`, `modify-default-beta` and `modify-define-beta` (JOLT's Modifier).

use serde_json::Value;

use crate::transform::error::Result;
use crate::transform::spec::invalid;

/// Which modifier flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModifyMode {
    Overwrite,
    Default,
    Define,
}

/// A parsed modifier spec.
#[derive(Debug)]
pub(crate) struct Modify {
    _mode: ModifyMode,
}

impl Modify {
    pub(crate) fn parse(
        _spec: &Value,
        _mode: ModifyMode,
        _functions: &super::Functions,
        path: &str,
    ) -> Result<Self> {
        Err(invalid(path, "modify is not supported yet"))
    }

    pub(crate) fn apply(&self, _doc: &mut Value, _context: &Value) {}
}
