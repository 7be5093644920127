//! Binary info: the Go executable's ELF, buildinfo, pclntab, symbols and DWARF.

pub mod buildinfo;
pub mod pclntab;
