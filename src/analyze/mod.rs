//! Analysis over snapshots: grouping identical stacks, filtering, and diffing two snapshots.
//! Pure functions of the model.

pub mod diff;
pub mod filter;
pub mod group;
