//! Rendering: each output format from a [`Snapshot`](crate::snapshot::Snapshot), into any
//! writer. Pure functions of the model.

pub mod bt;
pub mod grs;
pub mod traceback;
