//! The file locks of a live process, from [`super::proc`]: the locks it holds, one a
//! descriptor (the `lock:` lines of `/proc/PID/fdinfo/FD`, with what the descriptor names),
//! and its threads blocked in `flock(2)` (`/proc/PID/task/TID/syscall`: the call's number and
//! its first two arguments, the descriptor and the operation), with the file each waits for.
//! `/proc/locks` is read first: a process with no lock line of its own (held or `->`
//! blocked) costs nothing more. Read after the snapshot, while the target runs: a hung
//! process's locks and waits do not change.

use super::proc;
use crate::snapshot::{FileLock, FileLocks, FlockWait, Snapshot};

/// `flock`'s system call number on amd64 (`arch/x86/entry/syscalls/syscall_64.tbl`).
const SYS_FLOCK_AMD64: i64 = 73;
/// `flock`'s system call number on arm64 (`include/uapi/asm-generic/unistd.h`).
const SYS_FLOCK_ARM64: i64 = 32;
/// `LOCK_SH`, `LOCK_EX` (`include/uapi/asm-generic/fcntl.h`); `LOCK_NB` is 4.
const LOCK_SH: u64 = 1;
const LOCK_EX: u64 = 2;

/// `major:minor` as `/proc/locks` writes a device (`%02x:%02x`).
fn dev(major: u32, minor: u32) -> String {
    format!("{major:02x}:{minor:02x}")
}

/// The file locks of process `pid`, the waiting threads tied to the goroutines `snap` has
/// them running.
pub fn read(pid: i32, snap: &Snapshot) -> FileLocks {
    let mut out = FileLocks::default();
    let all = match proc::locks() {
        Ok(l) => l,
        Err(e) => {
            out.error = Some(format!("/proc/locks: {e}"));
            return out;
        }
    };
    let ours = |blocked: bool| {
        all.iter()
            .any(|l| l.blocked == blocked && l.lock.pid == Some(pid))
    };
    let mut errors: Vec<String> = Vec::new();
    if ours(false) {
        match proc::fds(pid) {
            Ok(fds) => {
                for fd in fds {
                    let Ok(locks) = proc::fd_locks(pid, fd) else {
                        continue; // closed since the listing
                    };
                    if locks.is_empty() {
                        continue;
                    }
                    let path = proc::fd_file(pid, fd).map(|f| f.0).unwrap_or_default();
                    out.held.extend(locks.into_iter().map(|l| FileLock {
                        fd,
                        path: path.clone(),
                        dev: dev(l.devmaj, l.devmin),
                        inode: l.inode,
                        kind: l.lock_type.as_str().to_string(),
                        mode: l.kind.as_str().to_string(),
                    }));
                }
            }
            Err(e) => errors.push(format!("/proc/{pid}/fd: {e}")),
        }
    }
    if ours(true) {
        let nr = match snap.meta.arch.as_str() {
            "arm64" => SYS_FLOCK_ARM64,
            _ => SYS_FLOCK_AMD64,
        };
        match proc::tasks(pid) {
            Ok(tids) => {
                for tid in tids {
                    let Ok(proc::Syscall::Blocked {
                        syscall_number,
                        argument_registers: args,
                        ..
                    }) = proc::task_syscall(pid, tid)
                    else {
                        continue;
                    };
                    if syscall_number != nr {
                        continue;
                    }
                    let fd = args[0] as i32;
                    let Ok((path, (major, minor), inode)) = proc::fd_file(pid, fd) else {
                        continue;
                    };
                    out.waits.push(FlockWait {
                        thread: tid,
                        goroutine: snap
                            .threads
                            .iter()
                            .find(|t| t.tid == tid)
                            .and_then(|t| t.goid),
                        fd,
                        operation: match args[1] & (LOCK_SH | LOCK_EX) {
                            LOCK_SH => "shared",
                            LOCK_EX => "exclusive",
                            _ => "unknown",
                        }
                        .into(),
                        path,
                        dev: dev(major, minor),
                        inode,
                    });
                }
            }
            Err(e) => errors.push(format!("/proc/{pid}/task: {e}")),
        }
    }
    if !errors.is_empty() {
        out.error = Some(errors.join("; "));
    }
    out
}
