//! RESP: the frame codec and the command table.

pub(crate) mod categories;
pub(crate) mod cmddocs;
pub(crate) mod cmdflags;
pub(crate) mod command;
pub(crate) mod frame;
pub(crate) mod keyspecs;
