//! The integration tests, one module a subject, linked into one test binary.

mod support;

mod analysis;
mod arm64_live;
mod attach;
mod claims;
mod cli_errors;
mod conformance;
mod cores;
mod durability;
mod ecosystem;
mod find;
mod force_version;
mod fuzz_smoke;
mod go120;
mod hostile;
mod layouts;
mod leaks;
mod live_freeze;
mod nonblocking;
mod pclntab;
mod pprof;
mod precopy;
mod safety;
mod values;
