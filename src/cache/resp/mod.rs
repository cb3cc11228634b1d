//! RESP: the frame codec and the command table.

pub(crate) mod categories;
pub(crate) mod cmddocs;
pub(crate) mod cmdflags;
pub(crate) mod command;
pub(crate) mod frame;
pub(crate) mod keyspecs;

/// The row named `name` in `table`, a generated command table sorted by name (the key specs,
/// flags and documentation tables; a test holds them sorted).
pub(crate) fn by_name<T>(
    table: &'static [T],
    name: &str,
    name_of: impl Fn(&T) -> &str,
) -> Option<&'static T> {
    let at = table.binary_search_by(|row| name_of(row).cmp(name)).ok()?;
    table.get(at)
}
