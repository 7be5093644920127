//! One goroscope at a time stops a given process: a second one waits its turn instead of
//! failing because the first is tracing it.
//!
//! The turn is an `flock` on a file named after the target's pid and its start time (field 22
//! of `/proc/PID/stat`, so a reused pid is another target), `goroscope-PID-START.lock` in
//! `/run/goroscope` when goroscope may write there (root, the usual case in a container), else
//! in `$XDG_RUNTIME_DIR/goroscope`, else in `goroscope-UID` under the temp directory. The file
//! is never removed (removing it would let a third goroscope lock a new file while the second
//! holds the old one); it is empty, one per target.
//!
//! Goroscopes that do not share that directory (other containers in the same pid namespace,
//! with their own `/run`; other users) do not see each other's files; for them the wait also
//! covers a target whose tracer is a process named `goroscope`. Either way the wait is bounded
//! by [`MAX_TURN_WAIT`], after which the attach goes ahead and fails as it would have.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Longest wait for another goroscope to let go of the target: a dump of a million goroutines
/// stops its target for well under a second, so this is a goroscope that holds it
/// (`attach --hold`), not one that is slow.
pub const MAX_TURN_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting goroscope looks again.
const POLL: Duration = Duration::from_millis(5);

/// This goroscope's turn on a target, held until dropped (the descriptor's close releases it).
#[derive(Debug)]
pub struct Turn {
    _file: Option<std::fs::File>,
}

impl Turn {
    /// Waits until no other goroscope holds the target `pid`'s turn nor traces it, saying so
    /// once on stderr, for at most [`MAX_TURN_WAIT`]; then takes the turn. Never fails: when
    /// no lock file can be made, or the wait ends, the turn is taken without it.
    pub fn take(pid: i32) -> Turn {
        let file = lock_file(pid);
        let start = Instant::now();
        let mut said = false;
        loop {
            let locked = file.as_ref().is_none_or(|f| {
                // SAFETY: flock on a descriptor we own.
                unsafe {
                    libc::flock(
                        std::os::fd::AsRawFd::as_raw_fd(f),
                        libc::LOCK_EX | libc::LOCK_NB,
                    ) == 0
                }
            });
            if locked && !traced_by_goroscope(pid) {
                return Turn { _file: file };
            }
            if start.elapsed() >= MAX_TURN_WAIT {
                return Turn {
                    _file: locked.then_some(file).flatten(),
                };
            }
            if !said {
                said = true;
                if first_wait_in_a_while(pid) {
                    eprintln!("goroscope: waiting for another goroscope on pid {pid}");
                }
            }
            // Not holding the lock while waiting for the other tracer to go: release it.
            if let (true, Some(f)) = (locked, &file) {
                // SAFETY: as above.
                unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(f), libc::LOCK_UN) };
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Whether this process has not said it waits for `pid` in the last [`MAX_TURN_WAIT`]: a
/// command that takes its turn twice (a dump that copies again with every thread stopped, the
/// second look of `deadlocks`) says it once; a session's command minutes later says it again.
fn first_wait_in_a_while(pid: i32) -> bool {
    static LAST: std::sync::Mutex<Option<(i32, Instant)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let recent = last.is_some_and(|(p, at)| p == pid && at.elapsed() < MAX_TURN_WAIT);
    *last = Some((pid, Instant::now()));
    !recent
}

/// Whether the target's tracer is a process named `goroscope` (one this goroscope's lock
/// directory does not show).
pub(crate) fn traced_by_goroscope(pid: i32) -> bool {
    match super::proc::status(pid).map(|s| s.tracerpid) {
        Ok(t) if t > 0 => super::proc::comm(t).is_some_and(|c| c == "goroscope"),
        _ => false,
    }
}

/// The target's start time in clock ticks after boot (field 22 of `/proc/PID/stat`).
fn start_time(pid: i32) -> Option<u64> {
    super::proc::stat(pid).ok().map(|s| s.starttime)
}

/// The directories a turn's file may live in, first choice first.
fn lock_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/run/goroscope")];
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d).join("goroscope"));
    }
    // SAFETY: getuid cannot fail.
    dirs.push(std::env::temp_dir().join(format!("goroscope-{}", unsafe { libc::getuid() })));
    dirs
}

/// Opens (creating it if need be) the target's lock file in the first directory that allows it.
fn lock_file(pid: i32) -> Option<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let name = format!("goroscope-{pid}-{}.lock", start_time(pid)?);
    lock_dirs().into_iter().find_map(|dir| {
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir.join(&name))
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_start_time_and_names_a_file_per_target() {
        let own = std::process::id() as i32;
        assert!(start_time(own).is_some_and(|t| t > 0));
        assert_eq!(start_time(-1), None);
        let f = lock_file(own).expect("a lock file in one of the directories");
        // A second turn of the same target, from another descriptor, is refused while held.
        assert_eq!(
            unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&f),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            },
            0
        );
        let g = lock_file(own).unwrap();
        assert_ne!(
            unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&g),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            },
            0
        );
        drop(f);
        assert_eq!(
            unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&g),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            },
            0
        );
    }
}
