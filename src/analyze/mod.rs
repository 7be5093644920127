//! Analysis over snapshots: grouping identical stacks, filtering, diffing two snapshots, and
//! the deadlocks lock holders prove. Pure functions of the model.

pub mod deadlock;
pub mod diff;
pub mod filter;
pub mod group;
