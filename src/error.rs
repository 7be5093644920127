//! An I/O error that error enums can hold and still derive `Clone` and `PartialEq`: it keeps
//! the `io::Error` itself (its kind, its errno, and as the enum's `source()`), shared.

use std::fmt;
use std::io;
use std::sync::Arc;

/// A shared `io::Error`. Two are equal when their kind, errno and text are.
#[derive(Debug, Clone)]
pub struct IoError(Arc<io::Error>);

impl IoError {
    /// The error's kind (`PermissionDenied` for both `EACCES` and `EPERM`).
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }

    /// The error itself, for `source()`.
    pub fn as_io(&self) -> &io::Error {
        &self.0
    }
}

impl From<io::Error> for IoError {
    fn from(e: io::Error) -> Self {
        IoError(Arc::new(e))
    }
}

impl PartialEq for IoError {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind()
            && self.0.raw_os_error() == other.0.raw_os_error()
            && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for IoError {}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
