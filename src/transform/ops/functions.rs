//! JOLT 0.1.8's modifier function library, and the table of custom functions callers can add.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// A custom modifier function: gets the evaluated arguments (a missing value is `null`) and
/// returns the value to write, or `None` to write nothing.
type CustomFn = dyn Fn(&[Value]) -> Option<Value> + Send + Sync;

/// Custom functions for modifier specs, by name (see
/// [`Spec::parse_with_functions`](crate::transform::Spec::parse_with_functions)).
#[derive(Clone, Default)]
pub struct Functions {
    map: BTreeMap<String, Arc<CustomFn>>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Functions {
    /// Adds (or replaces) the function `name`.
    pub fn insert(
        &mut self,
        name: &str,
        function: impl Fn(&[Value]) -> Option<Value> + Send + Sync + 'static,
    ) {
        self.map.insert(name.to_owned(), Arc::new(function));
    }

    /// The custom function `name`, if any.
    #[allow(
        dead_code,
        reason = "called by the modifier once function lookup is wired"
    )]
    pub(crate) fn get(&self, name: &str) -> Option<Arc<CustomFn>> {
        self.map.get(name).cloned()
    }
}
