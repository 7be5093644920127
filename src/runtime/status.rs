//! Goroutine status values and the names Go prints for them (`src/runtime/runtime2.go`,
//! `gStatusStrings` in `src/runtime/traceback.go`).

use super::waitreasons::WAIT_REASONS;
use crate::snapshot::Status;
use crate::version::GoVersion;

// The raw numbers as read from a g; the model's typed `Status` defines them.
/// `_Gidle`.
pub(crate) const IDLE: u32 = Status::IDLE.0;
/// `_Grunnable`.
pub(crate) const RUNNABLE: u32 = Status::RUNNABLE.0;
/// `_Grunning`.
pub(crate) const RUNNING: u32 = Status::RUNNING.0;
/// `_Gsyscall`.
pub const SYSCALL: u32 = Status::SYSCALL.0;
/// `_Gwaiting`.
pub(crate) const WAITING: u32 = Status::WAITING.0;
/// `_Gdead`.
pub(crate) const DEAD: u32 = Status::DEAD.0;
/// `_Gcopystack`.
pub(crate) const COPYSTACK: u32 = Status::COPYSTACK.0;
/// `_Gpreempted`.
pub const PREEMPTED: u32 = Status::PREEMPTED.0;
/// `_Gleaked` (Go 1.26+).
pub const LEAKED: u32 = Status::LEAKED.0;
/// `_Gdeadextra` (Go 1.26+): a dead g attached to a cgo extra M.
pub const DEAD_EXTRA: u32 = Status::DEAD_EXTRA.0;
/// `_Gscan`, OR-ed into the status while the GC scans the stack.
pub(crate) const SCAN: u32 = 0x1000;

/// The name `goroutineheader` prints for a status (scan bit removed), for Go version `v`.
pub fn status_name(status: u32, v: GoVersion) -> &'static str {
    match status {
        IDLE => "idle",
        RUNNABLE => "runnable",
        RUNNING => "running",
        SYSCALL => "syscall",
        WAITING => "waiting",
        DEAD => "dead",
        COPYSTACK => "copystack",
        PREEMPTED => "preempted",
        LEAKED if v.at_least(26) => "leaked",
        DEAD_EXTRA if v.at_least(26) => "waiting for cgo callback",
        _ => "???",
    }
}

/// Whether the status is a dead one, skipped by dumps.
pub(crate) fn is_dead(status: u32, v: GoVersion) -> bool {
    status == DEAD || (status == DEAD_EXTRA && v.at_least(26))
}

/// The built-in wait-reason table for a version (used without a symbol table).
pub fn wait_reason_table(v: GoVersion) -> Vec<String> {
    WAIT_REASONS
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&v.minor))
        .map(|(_, _, t)| t.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_cover_supported_versions() {
        for minor in crate::version::MIN_SUPPORTED_MINOR..=crate::version::MAX_SUPPORTED_MINOR {
            let t = wait_reason_table(GoVersion::new(1, minor, 0));
            assert!(t.len() > if minor < 21 { 25 } else { 30 }, "go1.{minor}");
            assert_eq!(t[0], "");
            assert_eq!(t[2], "IO wait");
        }
        assert_eq!(
            wait_reason_table(GoVersion::new(1, 27, 3))[19],
            "chan receive"
        );
    }

    #[test]
    fn leaked_only_from_1_26() {
        assert_eq!(status_name(LEAKED, GoVersion::new(1, 25, 0)), "???");
        assert_eq!(status_name(LEAKED, GoVersion::new(1, 26, 0)), "leaked");
    }
}
