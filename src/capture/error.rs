//! Why opening or capturing a target failed: one error type for live processes and cores.

use crate::arch::Arch;
use crate::binary::BinaryError;
use crate::runtime::RuntimeError;
use crate::target::core::CoreError;
use crate::target::live::LiveError;
use std::fmt;

/// Why a dump failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpError {
    /// Attaching to or reading the process failed.
    Live(LiveError),
    /// The executable could not be read.
    Binary(BinaryError),
    /// The runtime's data could not be found.
    Runtime(RuntimeError),
    /// The core file could not be read, or its executable not found.
    Core(CoreError),
    /// The target's architecture is not the one goroscope runs on.
    ArchMismatch {
        /// The target's.
        target: Arch,
    },
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Live(e) => e.fmt(f),
            DumpError::Binary(BinaryError::NotGo) => {
                write!(
                    f,
                    "not a Go program (its executable has no .go.buildinfo section)"
                )
            }
            DumpError::Binary(e) => e.fmt(f),
            DumpError::Runtime(e) => e.fmt(f),
            DumpError::Core(e) => e.fmt(f),
            DumpError::ArchMismatch { target } => write!(
                f,
                "the target is a linux/{target} program; a live dump needs goroscope built for the same architecture (cores of other architectures can be read with --core)"
            ),
        }
    }
}

impl std::error::Error for DumpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DumpError::Live(e) => Some(e),
            DumpError::Binary(e) => Some(e),
            DumpError::Runtime(e) => Some(e),
            DumpError::Core(e) => Some(e),
            DumpError::ArchMismatch { .. } => None,
        }
    }
}

impl From<LiveError> for DumpError {
    fn from(e: LiveError) -> Self {
        DumpError::Live(e)
    }
}

impl From<CoreError> for DumpError {
    fn from(e: CoreError) -> Self {
        DumpError::Core(e)
    }
}
