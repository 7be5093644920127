//! Rendering: each output format from a [`Snapshot`](crate::snapshot::Snapshot), into any
//! writer. Pure functions of the model.

pub mod blocked;
pub mod bt;
pub mod color;
pub mod deadlocks;
pub mod debug1;
pub mod diff;
pub mod grouped;
pub mod grs;
pub mod json;
pub mod leaks;
pub mod pprof;
pub mod report;
pub mod safe;
pub mod stream;
pub mod threads;
pub mod traceback;
