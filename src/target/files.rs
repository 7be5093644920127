//! The file locks of a live process, from [`super::proc`]: the locks it holds, one a
//! descriptor (the `lock:` lines of `/proc/PID/fdinfo/FD`, with what the descriptor names),
//! and its threads blocked in `flock(2)` (`/proc/PID/task/TID/syscall`: the call's number and
//! its first two arguments, the descriptor and the operation), with the file each waits for.
//! `/proc/locks` is read first: a process holding no lock costs nothing more. Read after the snapshot, while the target runs: a hung
//! process's locks and waits do not change.

use super::proc;
use crate::snapshot::{FileLock, FileLocks, FlockRetry, FlockWait, OpenFile, Snapshot, Status};
use std::time::{Duration, Instant};

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

/// The descriptors of `pid` that hold no lock and name a file it holds `FLOCK`ed through
/// another descriptor, by descriptor.
fn opened_again(pid: i32, held: &[FileLock]) -> Vec<OpenFile> {
    let locked: Vec<(&str, u64)> = held
        .iter()
        .filter(|h| h.kind == "FLOCK")
        .map(|h| (h.dev.as_str(), h.inode))
        .collect();
    proc::fds(pid)
        .unwrap_or_default()
        .into_iter()
        .filter(|fd| !held.iter().any(|h| h.fd == *fd))
        .filter_map(|fd| {
            let (_, (major, minor), inode) = proc::fd_file(pid, fd).ok()?;
            let dev = dev(major, minor);
            locked
                .contains(&(dev.as_str(), inode))
                .then_some(OpenFile { fd, dev, inode })
        })
        .collect()
}

/// A thread blocked in flock with these arguments (`fd`, operation), and the file `fd` names.
fn wait(pid: i32, tid: i32, goroutine: Option<u64>, args: [u64; 6]) -> Option<FlockWait> {
    let fd = args[0] as i32;
    let (path, (major, minor), inode) = proc::fd_file(pid, fd).ok()?;
    Some(FlockWait {
        thread: tid,
        goroutine,
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
    })
}

/// The file locks `pid` holds, by descriptor.
fn held(pid: i32) -> Result<Vec<FileLock>, String> {
    let fds = proc::fds(pid).map_err(|e| format!("/proc/{pid}/fd: {e}"))?;
    let mut held = Vec::new();
    for fd in fds {
        let Ok(locks) = proc::fd_locks(pid, fd) else {
            continue; // closed since the listing
        };
        if locks.is_empty() {
            continue;
        }
        let path = proc::fd_file(pid, fd).map(|f| f.0).unwrap_or_default();
        held.extend(locks.into_iter().map(|l| FileLock {
            fd,
            path: path.clone(),
            dev: dev(l.devmaj, l.devmin),
            inode: l.inode,
            kind: l.lock_type.as_str().to_string(),
            mode: l.kind.as_str().to_string(),
        }));
    }
    Ok(held)
}

/// The threads of `pid` waiting in flock(2), tied to their goroutines; a thread whose
/// goroutine `snap` saw in a system call is read again for a while (see [`SYSCALL_SETTLE`]).
fn flock_waits(pid: i32, snap: &Snapshot, tids: Vec<i32>) -> Vec<FlockWait> {
    let nr = match snap.meta.arch.as_str() {
        "arm64" => SYS_FLOCK_ARM64,
        _ => SYS_FLOCK_AMD64,
    };
    let mut waits = Vec::new();
    let goid = |tid: i32| {
        snap.threads
            .iter()
            .find(|t| t.tid == tid)
            .and_then(|t| t.goid)
    };
    let in_syscall = |tid: i32| {
        goid(tid).is_some_and(|id| {
            snap.goroutines
                .iter()
                .any(|g| g.id == id && g.status == Status::SYSCALL)
        })
    };
    let deadline = Instant::now() + SYSCALL_SETTLE;
    let mut pending = tids;
    while !pending.is_empty() {
        let mut again = Vec::new();
        for tid in pending {
            let call = match proc::task_syscall(pid, tid) {
                Ok(proc::Syscall::Blocked {
                    syscall_number,
                    argument_registers,
                    ..
                }) => (syscall_number, argument_registers),
                Ok(_) if in_syscall(tid) => {
                    again.push(tid);
                    continue;
                }
                _ => continue,
            };
            if call.0 != nr {
                continue;
            }
            if let Some(w) = wait(pid, tid, goid(tid), call.1) {
                waits.push(w);
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        pending = again;
        if !pending.is_empty() {
            std::thread::sleep(SYSCALL_POLL);
        }
    }
    waits
}

/// How long a thread the snapshot saw in a system call, interrupted by the stop, is given
/// to be back in it (its `syscall` file reads `running` until then).
const SYSCALL_SETTLE: Duration = Duration::from_millis(200);
/// Pause between two reads of such a thread's `syscall` file.
const SYSCALL_POLL: Duration = Duration::from_millis(2);

/// `/proc/locks` read on a thread of its own, for [`read`]: reading it took 11 to 17 ms on a
/// 2-CPU VM with no lock in the table, nearly all of it waiting in the kernel, time the caller
/// can use.
pub struct LockTable(Option<std::thread::JoinHandle<std::io::Result<Vec<proc::FileLockLine>>>>);

impl LockTable {
    /// Starts reading it (when no thread can be made, [`read`] reads it).
    pub fn start() -> LockTable {
        let reading = std::thread::Builder::new()
            .name("goroscope-locks".into())
            .spawn(proc::locks);
        LockTable(reading.ok())
    }

    /// What was read.
    fn get(self) -> std::io::Result<Vec<proc::FileLockLine>> {
        match self.0 {
            Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => proc::locks(),
        }
    }
}

/// The file locks of process `pid` (`table`: `/proc/locks`, read after the snapshot's
/// window), the waiting threads tied to the goroutines `snap` has them running. `retries`
/// ([`crate::runtime::blocked::flock_retries`]) is asked only when the process holds a lock;
/// each gets the descriptors it may be retrying.
pub fn read(
    pid: i32,
    snap: &Snapshot,
    retries: impl FnOnce() -> Vec<FlockRetry>,
    table: LockTable,
) -> FileLocks {
    let mut out = FileLocks::default();
    let all = match table.get() {
        Ok(l) => l,
        Err(e) => {
            out.error = Some(format!("/proc/locks: {e}"));
            return out;
        }
    };
    let mut errors: Vec<String> = Vec::new();
    if all.iter().any(|l| !l.blocked && l.lock.pid == Some(pid)) {
        match held(pid) {
            Ok(h) => out.held = h,
            Err(e) => errors.push(e),
        }
    }
    // Only a lock of its own can make the process wait for itself. Not gated on a `->` line
    // of its own: a thread our stop interrupted in flock restarts the call when it runs
    // again, and until it has, /proc/locks shows no waiter and its syscall file says
    // `running`: a thread whose goroutine the snapshot saw in a system call is read again
    // for a while.
    if !out.held.is_empty() {
        match proc::tasks(pid) {
            Ok(tids) => out.waits = flock_waits(pid, snap, tids),
            Err(e) => errors.push(format!("/proc/{pid}/task: {e}")),
        }
    }
    if !out.held.is_empty() {
        let mut retries = retries();
        if !retries.is_empty() {
            let again = opened_again(pid, &out.held);
            if !again.is_empty() {
                for r in &mut retries {
                    r.opened_again = again.clone();
                }
                out.retries = retries;
            }
        }
    }
    if !errors.is_empty() {
        out.error = Some(errors.join("; "));
    }
    out
}
