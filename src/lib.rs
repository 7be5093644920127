//! goroscope: look inside a running Go program from the outside.
//!
//! Rooms: [`target`] (reading a process or core), [`binary`] (the executable's metadata),
//! [`runtime`] (Go runtime layouts and goroutine walk), [`unwind`] (stack unwinding),
//! [`snapshot`] (the model), [`render`] (output formats), [`session`] (`attach`).

mod analyze;
pub mod arch;
pub mod binary;
pub mod capture;
pub mod cli;
mod error;
pub mod fuzzing;
mod parts;
mod ps;
pub mod render;
pub mod runtime;
mod session;
pub mod snapshot;
pub mod startup;
mod stdout;
pub mod target;
pub mod unwind;
mod values;
pub mod version;
