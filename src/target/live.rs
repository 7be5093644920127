//! The live-process backend: a short ptrace freeze, then batched memory copies.
//!
//! # Contract
//!
//! [`LiveProcess::open`] only looks at `/proc`; it never stops anything. [`LiveProcess::freeze`]
//! stops every thread of the target and reads its registers; the caller then copies what it
//! needs with [`LiveProcess::copy_into`] and calls [`Freeze::thaw`] (or drops the [`Freeze`]).
//! Everything after that reads the copied [`MemoryImage`], never the live process.
//!
//! # How the target is stopped, and why it is safe
//!
//! * Each thread is attached with `PTRACE_SEIZE` (no options) and stopped with
//!   `PTRACE_INTERRUPT`. No `PTRACE_ATTACH` and no `SIGSTOP`: nothing is queued to the target, so
//!   nothing has to be cleaned up, and the stops are not group-stops (ptrace(2), "Attaching and
//!   detaching"). `/proc/PID/task` is listed again after each round until a listing shows no
//!   new thread, so threads cloned by a thread that was not yet interrupted are caught
//!   (bounded by [`MAX_ATTACH_ROUNDS`]; like remoteprocess's `Process::lock`).
//! * Signals sent to the target while it is frozen are not lost: a thread in a ptrace-stop does
//!   not dequeue signals, so they stay pending in the kernel and are delivered normally once the
//!   thread is detached and returns to user space. A signal that the kernel had already
//!   dequeued when our interrupt arrived shows up as a signal-delivery-stop; it is recorded
//!   ([`StopCause::Signal`]) and re-injected with `PTRACE_DETACH(data = sig)`, so it is never
//!   swallowed.
//! * Group-stops (someone else sent `SIGSTOP`/`SIGTSTP`/`SIGTTIN`/`SIGTTOU`) are reported to a
//!   seizing tracer as `PTRACE_EVENT_STOP` with the stop signal ([`StopCause::GroupStop`]). They
//!   are detached with no signal: the kernel re-arms the group-stop on detach
//!   (`__ptrace_unlink` sets `JOBCTL_STOP_PENDING` while `SIGNAL_STOP_STOPPED`), so a process
//!   that was stopped by its owner stays stopped, and one that was running keeps running.
//!   A `SIGSTOP` caught in a signal-delivery-stop is re-injected like any other signal, so its
//!   group-stop then happens as the sender intended.
//! * While a [`Freeze`] exists, `SIGINT`, `SIGTERM` and `SIGHUP` are blocked on the calling
//!   thread (`pthread_sigmask`), so goroscope is not killed between seize and detach by them;
//!   the old mask is restored after the last detach (of the last freeze alive on that thread),
//!   and a signal that arrived meanwhile then takes effect. The mask is per thread: the freeze must run on a thread that would receive
//!   these signals (the CLI's main thread, with no other threads that leave them unblocked).
//! * If goroscope dies anyway (`SIGKILL`), the kernel detaches every tracee and lets it run
//!   (`exit_ptrace`; ptrace(2): "If the tracer dies, all tracees are automatically detached and
//!   restarted, unless they were in group-stop"), and a signal held in a signal-delivery-stop is
//!   delivered on that restart. The integration tests prove the target keeps running.
//! * [`Freeze`] detaches in `Drop`, so error and panic paths never leave the target stopped.
//!   ptrace requests are only accepted from the thread that seized, so [`Freeze`] is `!Send`.
//!
//! * A thread that does not stop within [`STOP_TIMEOUT`] of its interrupt (in uninterruptible
//!   sleep, state `D`: a hung disk or NFS read, a `vfork` parent waiting for its child) fails the
//!   freeze with [`LiveError::StopTimeout`]; every thread that did stop is detached at once, so
//!   the target is paused at most that long. The late thread itself cannot be detached (only a
//!   tracee in a ptrace-stop can be) and stays seized, its stop pending, until the thread that
//!   seized it exits: the kernel then detaches it and drops the pending stop (`exit_ptrace`,
//!   `__ptrace_unlink` clears `JOBCTL_TRAP_MASK`), so it runs on as if nothing happened. The CLI
//!   exits right after printing the error; a long-lived caller should freeze from a thread it
//!   lets exit after such an error.

use super::image::MemoryImage;
use super::proc;
use super::{MemoryReader, ReadError, ThreadState};
use crate::arch::{Arch, Regs};
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How many times `/proc/PID/task` is re-listed while threads keep appearing.
pub const MAX_ATTACH_ROUNDS: usize = 100;

/// How long the freeze waits for interrupted threads to stop before it gives up with
/// [`LiveError::StopTimeout`] (the other threads are released). A running or sleeping thread
/// stops within microseconds; only one in uninterruptible sleep takes longer. This bounds the
/// target's pause in that case.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Most iovecs per `process_vm_readv` call (`UIO_MAXIOV`).
const IOV_MAX: usize = 1024;
/// Gap below which neighbouring copy requests are merged into one read.
const MERGE_GAP: u64 = 512;

/// Most threads one big copy is split over.
const MAX_COPY_THREADS: usize = 4;

/// Granularity of the slow path after a failed batched read.
const PAGE: u64 = 4096;

/// Largest piece the slow path reads at once.
const SLOW_CHUNK: u64 = 1 << 20;

/// Upper bound for the test-only hold hooks, so a stray environment variable cannot keep a
/// production target stopped, or a dump waiting, for long.
const MAX_TEST_HOLD_MS: u64 = 60_000;

/// Whether the test-only hold hooks below exist in this build: only with the `test-hooks`
/// cargo feature, which the tests use and release builds, `scripts/build-static.sh` and
/// `cargo install` never enable. Without it the variables are ignored.
pub const TEST_HOOKS: bool = cfg!(feature = "test-hooks");

/// Test-only (`test-hooks` feature): when set to a number of milliseconds,
/// [`LiveProcess::freeze`] sleeps that long after every thread is stopped and before it
/// returns. Used by the integration tests to kill goroscope or send signals inside the frozen
/// window.
pub const TEST_HOLD_ENV: &str = "GOROSCOPE_TEST_HOLD_FREEZE_MS";

/// Test-only (`test-hooks` feature): when set to a number of milliseconds, a snapshot that stops the target writes
/// [`TEST_PRECOPY_DONE`] on stderr once its copy taken while the target runs is complete, then
/// sleeps that long before it stops the target ([`test_hold_after_precopy`]). Used by the
/// integration tests to change the target between the pre-copy and the frozen window. Bounded
/// like [`TEST_HOLD_ENV`].
pub const TEST_HOLD_PRECOPY_ENV: &str = "GOROSCOPE_TEST_HOLD_PRECOPY_MS";

/// The stderr line of [`TEST_HOLD_PRECOPY_ENV`]: the pre-copy is done, the hold begins.
pub const TEST_PRECOPY_DONE: &str = "goroscope: test hold: pre-copy done";

/// Test-only (`test-hooks` feature): a session (`goroscope attach`) panics when it is given a
/// command line equal to this variable's value, so the tests can check that a held target is
/// released on a panic too.
pub const TEST_PANIC_COMMAND_ENV: &str = "GOROSCOPE_TEST_PANIC_AT_COMMAND";

/// Panics when `line` is the command [`TEST_PANIC_COMMAND_ENV`] names; never without
/// [`TEST_HOOKS`].
pub fn test_panic_at_command(line: &str) {
    if TEST_HOOKS && std::env::var(TEST_PANIC_COMMAND_ENV).is_ok_and(|v| v == line.trim()) {
        panic!("test hook: panic at the session command {line:?}");
    }
}

/// The milliseconds a test-only hold variable asks for, at most [`MAX_TEST_HOLD_MS`]; never
/// any without [`TEST_HOOKS`].
fn test_hold(var: &str) -> Option<Duration> {
    if !TEST_HOOKS {
        return None;
    }
    let ms = std::env::var(var).ok()?.trim().parse::<u64>().ok()?;
    Some(Duration::from_millis(ms.min(MAX_TEST_HOLD_MS)))
}

/// The test-only hold of [`TEST_HOLD_PRECOPY_ENV`], called between the pre-copy and the
/// freeze; nothing when the variable is unset.
pub fn test_hold_after_precopy() {
    if let Some(d) = test_hold(TEST_HOLD_PRECOPY_ENV) {
        eprintln!("{TEST_PRECOPY_DONE}");
        std::thread::sleep(d);
    }
}

/// Without the `test-hooks` feature (every build that is not a test run) the hold variables
/// change nothing.
#[cfg(all(test, not(feature = "test-hooks")))]
mod without_test_hooks {
    #[test]
    fn hold_variables_are_ignored() {
        // SAFETY: set_var in a test that reads it back on this thread only; no other test
        // of this module reads these variables.
        unsafe {
            std::env::set_var(super::TEST_HOLD_ENV, "5000");
            std::env::set_var(super::TEST_HOLD_PRECOPY_ENV, "5000");
        }
        const { assert!(!super::TEST_HOOKS) };
        assert_eq!(super::test_hold(super::TEST_HOLD_ENV), None);
        assert_eq!(super::test_hold(super::TEST_HOLD_PRECOPY_ENV), None);
        // SAFETY: as above.
        unsafe { std::env::set_var(super::TEST_PANIC_COMMAND_ENV, "grs") };
        super::test_panic_at_command("grs");
    }
}

/// Why the live target could not be opened, frozen or listed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LiveError {
    /// There is no process with this pid (in goroscope's pid namespace).
    NoSuchProcess {
        /// The pid asked for.
        pid: i32,
    },
    /// The kernel refused to let goroscope trace the process.
    PermissionDenied {
        /// The target pid.
        pid: i32,
        /// What is needed, from euid, `CAP_SYS_PTRACE` and Yama's `ptrace_scope`.
        hint: String,
    },
    /// Another tracer (a debugger, strace) is attached; a thread can have only one tracer.
    AlreadyTraced {
        /// The target pid.
        pid: i32,
        /// `TracerPid` from `/proc/PID/status` (a thread id of the tracer).
        tracer: i32,
    },
    /// The target exited (or became a zombie) before or during the dump.
    Exited {
        /// The target pid.
        pid: i32,
    },
    /// The pid is a thread of another process, not a process.
    NotAProcess {
        /// The thread id asked for.
        tid: i32,
        /// The process it belongs to (`Tgid`).
        pid: i32,
    },
    /// The pid is a kernel thread: no program, no user memory.
    KernelThread {
        /// The pid asked for.
        pid: i32,
    },
    /// The process has exited and its parent has not reaped it yet.
    Zombie {
        /// The pid asked for.
        pid: i32,
        /// Its parent, which is to reap it.
        ppid: i32,
    },
    /// The pid is goroscope's own process (or one of its threads).
    Itself {
        /// The pid asked for.
        pid: i32,
    },
    /// A ptrace request failed unexpectedly.
    Ptrace {
        /// The request: `seize`, `interrupt`, `getregset`, `waitpid`.
        op: &'static str,
        /// The thread it was made for.
        tid: i32,
        /// The errno it failed with.
        errno: i32,
    },
    /// A thread did not stop within [`STOP_TIMEOUT`]; every other thread was released.
    StopTimeout {
        /// The target pid.
        pid: i32,
        /// The thread that did not stop.
        tid: i32,
        /// Its state letter from `/proc/PID/task/TID/stat` when the wait gave up (`D`:
        /// uninterruptible sleep), `?` if unknown.
        state: char,
    },
    /// Reading something under `/proc` failed.
    Io {
        /// What was being read.
        what: String,
        /// The errno it failed with.
        errno: i32,
    },
}

/// `strerror` with a lowercase first letter, for one-line lowercase messages.
fn errno_text(errno: i32) -> String {
    let s = nix::errno::Errno::from_raw(errno).desc();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::NoSuchProcess { pid } => {
                write!(
                    f,
                    "no process with pid {pid}; check the pid (goroscope must run in the target's pid namespace)"
                )
            }
            LiveError::PermissionDenied { pid, hint } => {
                write!(f, "not permitted to trace process {pid}; {hint}")
            }
            LiveError::AlreadyTraced { pid, tracer } => {
                // TracerPid is the tracing thread; name its process, which is what to detach.
                let tgid = proc::status(*tracer).map(|s| s.tgid).unwrap_or(0);
                let (proc_pid, thread) = if tgid > 0 && tgid != *tracer {
                    (tgid, Some(*tracer))
                } else {
                    (*tracer, None)
                };
                write!(f, "process {pid} is already traced by {proc_pid}")?;
                match (proc::comm(proc_pid), thread) {
                    (Some(comm), Some(t)) => write!(f, " ({comm}, thread {t})")?,
                    (Some(comm), None) => write!(f, " ({comm})")?,
                    (None, Some(t)) => write!(f, " (thread {t})")?,
                    (None, None) => {}
                }
                write!(f, "; detach that tracer first")
            }
            LiveError::Exited { pid } => {
                write!(
                    f,
                    "process {pid} exited while goroscope was reading it; nothing to dump"
                )
            }
            LiveError::NotAProcess { tid, pid } => {
                write!(
                    f,
                    "{tid} is a thread of process {pid}{}, not a process; give the process id {pid}",
                    named(*pid)
                )
            }
            LiveError::KernelThread { pid } => write!(
                f,
                "process {pid}{} is a kernel thread: it has no program or memory of its own to read; `goroscope ps` lists the Go processes",
                named(*pid)
            ),
            LiveError::Zombie { pid, ppid } => write!(
                f,
                "process {pid}{} is a zombie: it has exited and its parent {ppid}{} has not reaped it yet; nothing is left to dump",
                named(*pid),
                named(*ppid)
            ),
            LiveError::Itself { pid } => {
                write!(
                    f,
                    "pid {pid} is goroscope itself; give the pid of a Go program (`goroscope ps` lists them)"
                )
            }
            LiveError::Ptrace { op, tid, errno } => write!(
                f,
                "ptrace {op} of thread {tid} failed: {} (errno {errno}); the target was released, try again",
                errno_text(*errno)
            ),
            LiveError::StopTimeout { pid, tid, state } => {
                write!(
                    f,
                    "thread {tid} of process {pid} did not stop within {} ms",
                    STOP_TIMEOUT.as_millis()
                )?;
                match state {
                    'D' => write!(
                        f,
                        " (state D: uninterruptible sleep, waiting on a disk, NFS or a vfork child)"
                    )?,
                    '?' => {}
                    c => write!(f, " (state {c})")?,
                }
                write!(
                    f,
                    "; the target was released, try again when that thread is out of the kernel"
                )
            }
            LiveError::Io { what, errno } => {
                write!(
                    f,
                    "cannot read {what}: {} (errno {errno})",
                    errno_text(*errno)
                )
            }
        }
    }
}

impl std::error::Error for LiveError {}

/// A running process goroscope may freeze and read. Opening it changes nothing in the target.
#[derive(Debug)]
pub struct LiveProcess {
    pid: i32,
    arch: Arch,
    /// `/proc/PID/mem`, opened on first use by the read fallback (`None` if it cannot be).
    mem: OnceLock<Option<File>>,
}

impl LiveProcess {
    /// Checks that `pid` is a live process that nobody else traces. Does not stop anything.
    ///
    /// Refused, each with its own error: a thread id that is not its process's pid, a kernel
    /// thread, a zombie, and goroscope's own process.
    pub fn open(pid: i32) -> Result<LiveProcess, LiveError> {
        let Some(arch) = Arch::host() else {
            return Err(LiveError::Io {
                what: "the host architecture (goroscope traces only amd64 and arm64)".into(),
                errno: libc::ENOSYS,
            });
        };
        if pid <= 0 {
            return Err(LiveError::NoSuchProcess { pid });
        }
        let st = proc::status(pid).map_err(|e| {
            let errno = errno_of(&e);
            if is_gone(errno) {
                LiveError::NoSuchProcess { pid }
            } else {
                io_err(format!("/proc/{pid}/status"), errno)
            }
        })?;
        let own = std::process::id() as i32;
        if pid == own || st.tgid == own {
            return Err(LiveError::Itself { pid });
        }
        if st.tgid > 0 && st.tgid != pid {
            return Err(LiveError::NotAProcess {
                tid: pid,
                pid: st.tgid,
            });
        }
        if proc::task_stat(pid, pid).is_ok_and(|s| s.flags & proc::PF_KTHREAD != 0) {
            return Err(LiveError::KernelThread { pid });
        }
        if matches!(state_letter(&st), 'Z' | 'X' | 'x') && !has_live_task(pid) {
            return Err(LiveError::Zombie { pid, ppid: st.ppid });
        }
        // Another goroscope's freeze ends soon: the freeze waits for it (`super::turn`).
        if st.tracerpid != 0 && !super::turn::traced_by_goroscope(pid) {
            return Err(LiveError::AlreadyTraced {
                pid,
                tracer: st.tracerpid,
            });
        }
        Ok(LiveProcess {
            pid,
            arch,
            mem: OnceLock::new(),
        })
    }

    /// The target's pid (thread-group id).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// `/proc/PID/exe`: opens the target's executable even if it was deleted or lives in
    /// another mount namespace.
    pub fn exe_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/exe", self.pid))
    }

    /// The target's architecture, which is the host's (ptrace cannot cross architectures).
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The thread ids in `/proc/PID/task`, ascending ([`LiveError::Exited`] once it is gone).
    pub fn thread_ids(&self) -> Result<Vec<i32>, LiveError> {
        list_tasks(self.pid).map_err(|e| match e {
            LiveError::NoSuchProcess { pid } => LiveError::Exited { pid },
            e => e,
        })
    }

    /// Stops every thread and reads its registers. See the module docs for the exact semantics.
    ///
    /// On error, everything already attached has been detached again.
    pub fn freeze(&self) -> Result<Freeze<'_>, LiveError> {
        if self.pid == std::process::id() as i32 {
            return Err(LiveError::PermissionDenied {
                pid: self.pid,
                hint: "goroscope cannot freeze its own process".into(),
            });
        }
        let turn = super::turn::Turn::take(self.pid);
        let mut f = Freeze::new(self, turn);
        f.stop_all()?;
        f.read_registers()?;
        if let Some(d) = test_hold(TEST_HOLD_ENV) {
            std::thread::sleep(d);
        }
        Ok(f)
    }

    /// Batched copy into `image`. Each `(addr, len)` request is read with `process_vm_readv`
    /// (up to 1024 iovecs per call; overlapping and adjacent requests are merged first). A
    /// range the batch cannot read completely is retried alone, then through `/proc/PID/mem`,
    /// skipping unreadable pages. Returns how many requests could not be read completely;
    /// their unreadable parts simply stay absent from `image`. Zero-length requests are ignored.
    pub fn copy_into(&self, reqs: &[(u64, u64)], image: &mut MemoryImage) -> usize {
        // Sorted, merged, non-overlapping ranges [start, end).
        let mut failed = 0usize;
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(reqs.len());
        for &(a, l) in reqs {
            if l == 0 {
                continue;
            }
            match a.checked_add(l) {
                Some(e) if usize::try_from(l).is_ok() => ranges.push((a, e)),
                _ => failed += 1,
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        // Ranges closer than MERGE_GAP are read as one: the kernel's cost is per iovec more
        // than per byte (g structs sit 24 bytes apart in their spans).
        for (a, e) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(MERGE_GAP) => last.1 = last.1.max(e),
                _ => merged.push((a, e)),
            }
        }

        // Big copies (every stack of a big process) are split over threads: the kernel's work
        // per page and per iovec runs on every CPU. Threads made here inherit the caller's
        // signal mask (inside the frozen window, SIGINT and friends stay blocked).
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_COPY_THREADS);
        let mut got = if threads > 1 && merged.len() >= 2 * IOV_MAX {
            let part = merged.len().div_ceil(threads);
            let mut parts = merged.chunks(part);
            let mine = parts.next().unwrap_or(&[]);
            let (mut got, others) = std::thread::scope(|s| {
                let handles: Vec<_> = parts
                    .map(|p| {
                        s.spawn(move || {
                            let mut img = MemoryImage::new();
                            let got = self.copy_ranges(p, &mut img);
                            (img, got)
                        })
                    })
                    .collect();
                let got = self.copy_ranges(mine, image);
                (
                    got,
                    handles
                        .into_iter()
                        .filter_map(|h| h.join().ok())
                        .collect::<Vec<_>>(),
                )
            });
            for (img, g) in others {
                image.absorb(img);
                got.extend(g);
            }
            got
        } else {
            self.copy_ranges(&merged, image)
        };

        got.sort_unstable();
        for &(a, l) in reqs {
            if l == 0 {
                continue;
            }
            if let Some(e) = a.checked_add(l)
                && !covered(&got, a, e)
            {
                failed += 1;
            }
        }
        failed
    }

    /// Copies sorted, merged, non-overlapping `merged` ranges into `image`, in batches of
    /// [`IOV_MAX`] iovecs; a range a batch cannot read completely goes through the slow path.
    /// Returns the ranges copied (stops early when the process is gone).
    fn copy_ranges(&self, merged: &[(u64, u64)], image: &mut MemoryImage) -> Vec<(u64, u64)> {
        let mut got: Vec<(u64, u64)> = Vec::new(); // ranges successfully copied, ascending
        let mut i = 0;
        let mut gone = false;
        while i < merged.len() && !gone {
            let batch = &merged[i..(i + IOV_MAX).min(merged.len())];
            let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(batch.len());
            for &(a, e) in batch {
                let mut v = Vec::new();
                if v.try_reserve_exact((e - a) as usize).is_err() {
                    break; // too large to hold: the rest of the batch counts as unread
                }
                // Not zero-filled: the kernel writes the bytes, and only the bytes it reports
                // written become part of the vector (set_len below).
                bufs.push(v);
            }
            if bufs.is_empty() {
                i += 1; // the first range alone is too large; it stays unread
                continue;
            }
            let n = bufs.len();
            let local: Vec<libc::iovec> = bufs
                .iter_mut()
                .zip(batch)
                .map(|(b, &(a, e))| libc::iovec {
                    iov_base: b.spare_capacity_mut().as_mut_ptr().cast(),
                    iov_len: (e - a) as usize,
                })
                .collect();
            let remote: Vec<libc::iovec> = batch[..n]
                .iter()
                .map(|&(a, e)| libc::iovec {
                    iov_base: a as usize as *mut libc::c_void,
                    iov_len: (e - a) as usize,
                })
                .collect();
            // SAFETY: every local iovec points at the spare capacity (iov_len bytes) of a live, exclusively borrowed buffer.
            let r = unsafe {
                libc::process_vm_readv(self.pid, local.as_ptr(), n as _, remote.as_ptr(), n as _, 0)
            };
            let done = if r < 0 {
                match nix::errno::Errno::last_raw() {
                    libc::ESRCH => break, // the process is gone
                    // The first range is unreadable (EFAULT) or the syscall is unusable (ENOSYS,
                    // EPERM under some sandboxes): fall back for the first range only, so the
                    // rest still gets a batched try.
                    _ => 0usize,
                }
            } else {
                r as usize
            };
            // The first `done` bytes of the concatenated local buffers are valid.
            let mut left = done;
            let mut next = i + n;
            for (k, (mut buf, &(a, e))) in bufs.into_iter().zip(batch).enumerate() {
                let len = (e - a) as usize;
                // SAFETY: the kernel wrote the first `done` bytes of the concatenated buffers;
                // this buffer's first min(left, len) bytes are among them, and its capacity is len.
                unsafe { buf.set_len(left.min(len)) };
                if left >= len {
                    left -= len;
                    image.insert(a, buf);
                    push_range(&mut got, a, e);
                    continue;
                }
                // Partial or failed element: keep the prefix, slow-path the rest.
                if left > 0 {
                    image.insert(a, buf);
                    push_range(&mut got, a, a + left as u64);
                }
                let start = a + left as u64;
                if !self.slow_copy(start, e, image, &mut got) {
                    gone = true;
                }
                next = i + k + 1;
                break;
            }
            i = next;
        }
        got
    }

    /// Copies what can be read of `[start, end)` piece by piece: `process_vm_readv` on the whole
    /// rest, then `/proc/PID/mem`, else skip to the next page. Returns false if the process is gone.
    fn slow_copy(
        &self,
        start: u64,
        end: u64,
        image: &mut MemoryImage,
        got: &mut Vec<(u64, u64)>,
    ) -> bool {
        let mut scratch = vec![0u8; (end - start).min(SLOW_CHUNK) as usize];
        let mut a = start;
        while a < end {
            let want = (end - a).min(SLOW_CHUNK) as usize;
            let buf = &mut scratch[..want];
            let mut n = match vm_read(self.pid, a, buf) {
                Ok(n) => n,
                Err(libc::ESRCH) => return false,
                Err(_) => 0,
            };
            if n == 0 {
                n = self.mem_read(a, buf).unwrap_or(0);
            }
            if n > 0 {
                image.insert(a, buf[..n].to_vec());
                push_range(got, a, a + n as u64);
                a += n as u64;
            } else {
                // Unreadable: skip to the next page boundary.
                a = (a / PAGE + 1).saturating_mul(PAGE).min(end);
            }
        }
        true
    }

    /// `pread` on `/proc/PID/mem`, retrying short reads; bytes read from the start of `buf`.
    fn mem_read(&self, addr: u64, buf: &mut [u8]) -> Option<usize> {
        let f = self
            .mem
            .get_or_init(|| File::open(format!("/proc/{}/mem", self.pid)).ok())
            .as_ref()?;
        let mut done = 0;
        while done < buf.len() {
            match f.read_at(&mut buf[done..], addr.checked_add(done as u64)?) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        Some(done)
    }
}

impl MemoryReader for LiveProcess {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let err = ReadError {
            addr,
            len: buf.len() as u64,
        };
        if buf.is_empty() {
            return Ok(());
        }
        addr.checked_add(buf.len() as u64).ok_or(err)?;
        if let Ok(n) = vm_read(self.pid, addr, buf)
            && n == buf.len()
        {
            return Ok(());
        }
        match self.mem_read(addr, buf) {
            Some(n) if n == buf.len() => Ok(()),
            _ => Err(err),
        }
    }
}

/// One `process_vm_readv` of `buf.len()` bytes at `addr`: bytes read, or the errno.
fn vm_read(pid: i32, addr: u64, buf: &mut [u8]) -> Result<usize, i32> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, which is exclusively borrowed for the call.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if r < 0 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(r as usize)
    }
}

/// Adds `[a, e)` to an interval list (merged lazily by [`covered`] after sorting).
fn push_range(got: &mut Vec<(u64, u64)>, a: u64, e: u64) {
    if a < e {
        got.push((a, e));
    }
}

/// Whether sorted intervals `got` cover `[a, e)` completely.
fn covered(got: &[(u64, u64)], a: u64, e: u64) -> bool {
    let mut pos = a;
    // First interval that could contain `pos`: the last one starting at or before it.
    let mut idx = got.partition_point(|&(s, _)| s <= pos).saturating_sub(1);
    while pos < e {
        let mut advanced = false;
        while idx < got.len() && got[idx].0 <= pos {
            if got[idx].1 > pos {
                pos = got[idx].1;
                advanced = true;
            }
            idx += 1;
        }
        if !advanced {
            return false;
        }
    }
    true
}

/// How a thread came to be stopped by a [`Freeze`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// Our `PTRACE_INTERRUPT` (a `PTRACE_EVENT_STOP` with `SIGTRAP`): the normal case.
    Interrupt,
    /// A signal-delivery-stop: the thread was about to handle this signal. It is re-injected
    /// at detach.
    Signal(i32),
    /// The thread was in (or entering) a group-stop caused by this stop signal, sent by
    /// someone else. It is left stopped at detach.
    GroupStop(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TState {
    /// Seized, not yet interrupted.
    Seized,
    /// Interrupted, stop not yet collected with waitpid.
    Interrupted,
    /// In a ptrace-stop.
    Stopped(StopCause),
    /// Killed while stopped: to be reaped, cannot be detached.
    Dying,
    /// Interrupted, but did not stop within [`STOP_TIMEOUT`]: cannot be detached, left seized
    /// (see the module docs) and never waited for again.
    Late,
    /// Exited and reaped, or never attached; nothing to do.
    Gone,
}

#[derive(Debug)]
struct Tracee {
    tid: i32,
    state: TState,
}

/// The target, stopped. Drop (or [`Freeze::thaw`]) detaches every thread.
pub struct Freeze<'p> {
    process: &'p LiveProcess,
    tracees: Vec<Tracee>,
    threads: Vec<ThreadState>,
    first_interrupt: Option<Instant>,
    paused: Option<Duration>,
    /// Whether this freeze holds a reference on the thread's signal block (see [`SigBlock`]).
    blocked: bool,
    /// ptrace requests must come from the seizing thread.
    _not_send: PhantomData<*const ()>,
    /// This goroscope's turn on the target, let go after the detach (fields drop after `drop`).
    _turn: super::turn::Turn,
}

impl fmt::Debug for Freeze<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Freeze")
            .field("pid", &self.process.pid)
            .field("tracees", &self.tracees)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl<'p> Freeze<'p> {
    fn new(process: &'p LiveProcess, turn: super::turn::Turn) -> Self {
        Freeze {
            _turn: turn,
            process,
            tracees: Vec::new(),
            threads: Vec::new(),
            first_interrupt: None,
            paused: None,
            blocked: SigBlock::acquire(),
            _not_send: PhantomData,
        }
    }

    /// Every stopped thread with its registers, by ascending tid.
    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    /// `PTRACE_GETREGSET(NT_PRFPREG)` of stopped thread `tid`: its floating-point and vector
    /// registers as the kernel lays them out ([`crate::arch::Arch::dwarf_fp_reg`]); `None`
    /// when it is not stopped or the read fails. Read only when values are asked for.
    pub fn fp_registers(&self, tid: i32) -> Option<Vec<u8>> {
        let stopped = self
            .tracees
            .iter()
            .any(|t| t.tid == tid && matches!(t.state, TState::Stopped(_)));
        if !stopped {
            return None;
        }
        let mut raw = vec![0u8; self.process.arch.fp_regset_size()];
        let mut iov = libc::iovec {
            iov_base: raw.as_mut_ptr().cast(),
            iov_len: raw.len(),
        };
        // SAFETY: NT_PRFPREG writes at most iov_len bytes into `raw` and updates iov_len.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGSET,
                tid,
                libc::NT_PRFPREG as usize as *mut libc::c_void,
                &mut iov as *mut libc::iovec as *mut libc::c_void,
            )
        };
        if r < 0 {
            return None;
        }
        raw.truncate(iov.iov_len.min(raw.len()));
        Some(raw)
    }

    /// How thread `tid` came to be stopped; `None` if it is not one of [`Freeze::threads`].
    pub fn stop_cause(&self, tid: i32) -> Option<StopCause> {
        self.tracees
            .iter()
            .find(|t| t.tid == tid)
            .and_then(|t| match t.state {
                TState::Stopped(c) => Some(c),
                _ => None,
            })
    }

    /// How long the target has been stopped so far (from the first `PTRACE_INTERRUPT`): what
    /// a session holding the freeze (`attach --hold`) shows. Signals sent to the target
    /// meanwhile stay pending in the kernel and are delivered at the detach.
    pub fn held_for(&self) -> Duration {
        self.first_interrupt
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }

    /// Detaches every thread now; returns how long the target was stopped (from the first
    /// `PTRACE_INTERRUPT` to the last detach).
    pub fn thaw(mut self) -> Duration {
        self.detach_all();
        self.paused.unwrap_or_default()
    }

    /// Seizes and interrupts every thread, re-listing until no new thread appears.
    fn stop_all(&mut self) -> Result<(), LiveError> {
        let pid = self.process.pid;
        let mut seen: HashSet<i32> = HashSet::new();
        for _round in 0..MAX_ATTACH_ROUNDS {
            let tids = list_tasks(pid).map_err(|e| match e {
                LiveError::NoSuchProcess { .. } => LiveError::Exited { pid },
                e => e,
            })?;
            let fresh: Vec<i32> = tids.into_iter().filter(|t| !seen.contains(t)).collect();
            if fresh.is_empty() {
                break;
            }
            let mut err = None;
            for tid in fresh {
                seen.insert(tid);
                match ptrace_raw(libc::PTRACE_SEIZE, tid, 0) {
                    Ok(()) => {}
                    Err(libc::ESRCH) => continue, // vanished
                    Err(libc::EPERM) => match self.classify_eperm(tid) {
                        None => continue, // exiting thread
                        Some(e) => {
                            err = Some(e);
                            break;
                        }
                    },
                    Err(errno) => {
                        err = Some(LiveError::Ptrace {
                            op: "seize",
                            tid,
                            errno,
                        });
                        break;
                    }
                }
                self.tracees.push(Tracee {
                    tid,
                    state: TState::Seized,
                });
                self.first_interrupt.get_or_insert_with(Instant::now);
                let last = self.tracees.len() - 1;
                match ptrace_raw(libc::PTRACE_INTERRUPT, tid, 0) {
                    // ESRCH: it exited after the seize; waitpid collects the exit.
                    Ok(()) | Err(libc::ESRCH) => self.tracees[last].state = TState::Interrupted,
                    Err(errno) => {
                        err = Some(LiveError::Ptrace {
                            op: "interrupt",
                            tid,
                            errno,
                        });
                        break;
                    }
                }
            }
            // Always collect the stops of what was interrupted, so Drop can detach it.
            let late = self.wait_interrupted();
            if let Some(e) = err {
                return Err(e);
            }
            if let Some(tid) = late {
                let state = task_state(pid, tid).unwrap_or('?');
                return Err(LiveError::StopTimeout { pid, tid, state });
            }
        }
        // After MAX_ATTACH_ROUNDS, threads still being created are left running: the walk
        // treats their goroutines like any torn state.
        if !self
            .tracees
            .iter()
            .any(|t| matches!(t.state, TState::Stopped(_)))
        {
            return Err(LiveError::Exited { pid });
        }
        Ok(())
    }

    /// EPERM from `PTRACE_SEIZE`: another tracer, an exiting thread (`None`), or no permission.
    fn classify_eperm(&self, tid: i32) -> Option<LiveError> {
        let pid = self.process.pid;
        let st = proc::task_status(pid, tid).ok();
        if let Some(st) = &st
            && st.tracerpid != 0
        {
            return Some(LiveError::AlreadyTraced {
                pid,
                tracer: st.tracerpid,
            });
        }
        // An exiting thread refuses attach (PF_EXITING); it is about to vanish.
        for _ in 0..3 {
            match task_state(pid, tid) {
                None | Some('Z' | 'X' | 'x') => return None,
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        Some(LiveError::PermissionDenied {
            pid,
            hint: permission_hint(&PermFacts::gather(pid, st.map(|s| s.euid))),
        })
    }

    /// Collects the stop of every interrupted thread (`waitpid(tid, __WALL | WNOHANG)` in turn,
    /// backing off while some are still running). Threads still not stopped after
    /// [`STOP_TIMEOUT`] become [`TState::Late`]; the lowest such tid is returned.
    fn wait_interrupted(&mut self) -> Option<i32> {
        let pid = self.process.pid;
        let mut passes: u32 = 0;
        let start = Instant::now();
        let mut last_zombie_check = start;
        loop {
            let mut pending = false;
            for t in self
                .tracees
                .iter_mut()
                .filter(|t| matches!(t.state, TState::Interrupted))
            {
                if let Some(s) = wait_one(t.tid) {
                    t.state = s;
                } else {
                    pending = true;
                }
            }
            if !pending {
                return None;
            }
            if start.elapsed() >= STOP_TIMEOUT {
                let mut late = None;
                for t in self
                    .tracees
                    .iter_mut()
                    .filter(|t| matches!(t.state, TState::Interrupted))
                {
                    t.state = TState::Late;
                    late = Some(late.map_or(t.tid, |l: i32| l.min(t.tid)));
                }
                return late;
            }
            // A group leader that exits while other threads live is not reported by waitpid
            // until they exit (delay_group_leader), and they are stopped by us: give it up.
            if last_zombie_check.elapsed() > Duration::from_millis(10) {
                last_zombie_check = Instant::now();
                for t in self
                    .tracees
                    .iter_mut()
                    .filter(|t| matches!(t.state, TState::Interrupted))
                {
                    let st = task_state(pid, t.tid);
                    if st.is_none() || (t.tid == pid && matches!(st, Some('Z' | 'X' | 'x'))) {
                        t.state = TState::Gone;
                    }
                }
            }
            passes = passes.saturating_add(1);
            if passes < 50 {
                std::thread::yield_now();
            } else {
                let us = 20u64 << (passes - 50).min(6); // 20 us .. 1.28 ms
                std::thread::sleep(Duration::from_micros(us));
            }
        }
    }

    /// `PTRACE_GETREGSET(NT_PRSTATUS)` for every stopped thread.
    fn read_registers(&mut self) -> Result<(), LiveError> {
        let arch = self.process.arch;
        let mut threads = Vec::new();
        for t in self.tracees.iter_mut() {
            if !matches!(t.state, TState::Stopped(_)) {
                continue;
            }
            let mut raw = [0u64; 128];
            let mut iov = libc::iovec {
                iov_base: raw.as_mut_ptr().cast(),
                iov_len: std::mem::size_of_val(&raw),
            };
            // SAFETY: NT_PRSTATUS writes at most iov_len bytes into `raw` and updates iov_len.
            let r = unsafe {
                libc::ptrace(
                    libc::PTRACE_GETREGSET,
                    t.tid,
                    libc::NT_PRSTATUS as usize as *mut libc::c_void,
                    &mut iov as *mut libc::iovec as *mut libc::c_void,
                )
            };
            if r < 0 {
                match nix::errno::Errno::last_raw() {
                    // Killed (SIGKILL wakes even stopped tracees): reap it at detach.
                    libc::ESRCH => {
                        t.state = TState::Dying;
                        continue;
                    }
                    errno => {
                        return Err(LiveError::Ptrace {
                            op: "getregset",
                            tid: t.tid,
                            errno,
                        });
                    }
                }
            }
            let bytes: Vec<u8> = raw.iter().flat_map(|w| w.to_ne_bytes()).collect();
            let n = iov.iov_len.min(bytes.len());
            let regs = Regs::decode(arch, &bytes[..n]).ok_or(LiveError::Ptrace {
                op: "getregset",
                tid: t.tid,
                errno: libc::EIO,
            })?;
            let words = bytes[..n]
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
                .collect();
            threads.push(ThreadState {
                tid: t.tid,
                regs,
                words,
                fp: Vec::new(),
            });
        }
        threads.sort_by_key(|t| t.tid);
        if threads.is_empty() {
            return Err(LiveError::Exited {
                pid: self.process.pid,
            });
        }
        self.threads = threads;
        Ok(())
    }

    /// Detaches everything still attached, re-injecting held signals; records the pause and
    /// restores the signal mask. Idempotent; never panics.
    fn detach_all(&mut self) {
        // A seized thread can only be detached from a ptrace-stop: stop it first.
        for t in self
            .tracees
            .iter_mut()
            .filter(|t| t.state == TState::Seized)
        {
            t.state = match ptrace_raw(libc::PTRACE_INTERRUPT, t.tid, 0) {
                Ok(()) | Err(libc::ESRCH) => TState::Interrupted,
                Err(_) => TState::Gone, // cannot happen for our own tracee; nothing else to try
            };
        }
        // Bounded too: a thread that will not stop is left seized (module docs).
        self.wait_interrupted();
        for t in self.tracees.iter_mut() {
            let sig = match t.state {
                TState::Stopped(StopCause::Signal(s)) => s,
                TState::Stopped(_) => 0,
                TState::Dying => {
                    reap_briefly(t.tid);
                    t.state = TState::Gone;
                    continue;
                }
                _ => continue,
            };
            // For a group-stop, sig 0 and the kernel re-arms the stop (__ptrace_unlink).
            match ptrace_raw(libc::PTRACE_DETACH, t.tid, sig as usize) {
                Ok(()) => {}
                // Killed while stopped: it is exiting and ours to reap.
                Err(_) => reap_briefly(t.tid),
            }
            t.state = TState::Gone;
        }
        if self.paused.is_none() {
            self.paused = Some(
                self.first_interrupt
                    .map(|t| t.elapsed())
                    .unwrap_or_default(),
            );
        }
        if std::mem::take(&mut self.blocked) {
            // A SIGINT/SIGTERM/SIGHUP that arrived meanwhile is delivered here, after the detach.
            SigBlock::release();
        }
    }
}

impl Drop for Freeze<'_> {
    fn drop(&mut self) {
        self.detach_all();
    }
}

/// SIGINT, SIGTERM and SIGHUP blocked on this thread while any [`Freeze`] made on it lives.
/// Counted, so freezes of several processes may end in any order; the mask from before the
/// first one is restored when the last one ends.
struct SigBlock;

thread_local! {
    static SIG_BLOCK: std::cell::Cell<(usize, Option<libc::sigset_t>)> = const { std::cell::Cell::new((0, None)) };
}

impl SigBlock {
    /// Blocks the signals (first holder only); true if a reference was taken.
    fn acquire() -> bool {
        SIG_BLOCK.with(|c| {
            let (depth, saved) = c.get();
            if depth > 0 {
                c.set((depth + 1, saved));
                return true;
            }
            // SAFETY: sigset manipulation on stack values; pthread_sigmask affects this thread only.
            let old = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                let mut old: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigaddset(&mut set, libc::SIGHUP);
                (libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) == 0).then_some(old)
            };
            c.set((1, old));
            true
        })
    }

    /// Drops a reference; the last one restores the saved mask.
    fn release() {
        SIG_BLOCK.with(|c| {
            let (depth, saved) = c.get();
            if depth > 1 {
                c.set((depth - 1, saved));
                return;
            }
            c.set((0, None));
            if let Some(old) = saved {
                // SAFETY: restores a mask saved by pthread_sigmask on this same thread.
                unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
            }
        })
    }
}

/// A ptrace request with `addr = 0`; the errno on failure.
fn ptrace_raw(req: libc::c_uint, tid: i32, data: usize) -> Result<(), i32> {
    // SAFETY: SEIZE, INTERRUPT and DETACH take no pointers (data is an option word or a signal).
    let r = unsafe {
        libc::ptrace(
            req,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            data as *mut libc::c_void,
        )
    };
    if r < 0 {
        Err(nix::errno::Errno::last_raw())
    } else {
        Ok(())
    }
}

/// One non-blocking wait for an interrupted thread: its new state, or `None` if still running.
fn wait_one(tid: i32) -> Option<TState> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes one int.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == 0 {
            return None;
        }
        if r < 0 {
            if nix::errno::Errno::last_raw() == libc::EINTR {
                continue;
            }
            return Some(TState::Gone); // ECHILD: no longer ours (auto-reaped)
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            return Some(TState::Gone);
        }
        if !libc::WIFSTOPPED(status) {
            return None; // WIFCONTINUED: not a stop, keep waiting
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        let cause = if event == libc::PTRACE_EVENT_STOP {
            match sig {
                libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
                    StopCause::GroupStop(sig)
                }
                _ => StopCause::Interrupt,
            }
        } else if event == 0 {
            StopCause::Signal(sig)
        } else {
            StopCause::Interrupt // no other events are enabled (options 0)
        };
        return Some(TState::Stopped(cause));
    }
}

/// Reaps a tracee that was killed while stopped, waiting at most ~100 ms for its exit report.
fn reap_briefly(tid: i32) {
    for _ in 0..100 {
        let mut status = 0;
        // SAFETY: waitpid writes one int.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The state letter of a status (`R`, `S`, `t`, `Z`, ...; `?` when empty).
fn state_letter(st: &proc::Status) -> char {
    st.state.chars().next().unwrap_or('?')
}

/// The errno of an I/O error (`EIO` when it has none).
fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The state letter of a task from `/proc/PID/task/TID/stat`, `None` if it is gone.
fn task_state(pid: i32, tid: i32) -> Option<char> {
    proc::task_stat(pid, tid).ok().map(|s| s.state)
}

/// Whether any task of `pid` is not a zombie (a leader that called pthread_exit is one while
/// other threads still run).
fn has_live_task(pid: i32) -> bool {
    list_tasks(pid)
        .map(|ts| {
            ts.iter()
                .any(|&t| !matches!(task_state(pid, t), None | Some('Z' | 'X' | 'x')))
        })
        .unwrap_or(false)
}

fn is_gone(errno: i32) -> bool {
    errno == libc::ENOENT || errno == libc::ESRCH
}

fn io_err(what: String, errno: i32) -> LiveError {
    LiveError::Io { what, errno }
}

fn list_tasks(pid: i32) -> Result<Vec<i32>, LiveError> {
    proc::tasks(pid).map_err(|e| {
        let errno = errno_of(&e);
        if is_gone(errno) {
            LiveError::NoSuchProcess { pid }
        } else {
            io_err(format!("/proc/{pid}/task"), errno)
        }
    })
}

/// The error for a target goroscope may not read (its executable or memory refused), with
/// the hint that says what is needed.
pub fn permission_denied(pid: i32) -> LiveError {
    let uid = proc::status(pid).ok().map(|s| s.euid);
    LiveError::PermissionDenied {
        pid,
        hint: permission_hint(&PermFacts::gather(pid, uid)),
    }
}

/// Whether the process has exited or is exiting: every task is gone, a zombie waiting to be
/// reaped, or on its way out. A process being killed (SIGKILL, `exit_group`) loses
/// `/proc/PID/exe` and its memory while its tasks still show as running: the one in `do_exit`
/// has `PF_EXITING`, the others a SIGKILL pending (`complete_signal`, `zap_other_threads`).
pub fn has_exited(pid: i32) -> bool {
    let Ok(tids) = list_tasks(pid) else {
        return true;
    };
    tids.iter().all(|&t| match proc::task_stat(pid, t) {
        Err(_) => true,
        Ok(st) => {
            matches!(st.state, 'Z' | 'X' | 'x')
                || st.flags & proc::PF_EXITING != 0
                || sigkill_pending(pid, t)
        }
    })
}

/// Whether a SIGKILL is pending for a task (`SigPnd` or `ShdPnd` in its status; gone counts).
fn sigkill_pending(pid: i32, tid: i32) -> bool {
    proc::task_status(pid, tid).map_or(true, |st| proc::signal_pending(&st, libc::SIGKILL))
}

/// ` (comm)` of a process for messages, or nothing when it cannot be read.
fn named(pid: i32) -> String {
    proc::comm(pid)
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

/// What decides whether goroscope may trace the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PermFacts {
    euid: u32,
    /// `CAP_SYS_PTRACE` (bit 19) in goroscope's effective capabilities.
    cap_sys_ptrace: bool,
    /// `/proc/sys/kernel/yama/ptrace_scope`, `None` when Yama is not enabled.
    yama_scope: Option<u32>,
    /// The target's effective uid, if known.
    target_uid: Option<u32>,
    /// goroscope's `Seccomp` mode from `/proc/self/status` (0 none, 1 strict, 2 filter).
    seccomp: Option<u32>,
    /// The target is in another user namespace than goroscope (`/proc/PID/ns/user`).
    other_userns: bool,
}

impl PermFacts {
    fn gather(pid: i32, target_uid: Option<u32>) -> Self {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        let own = proc::status(std::process::id() as i32).ok();
        let cap_sys_ptrace = own.as_ref().is_some_and(|s| s.capeff & (1 << 19) != 0);
        let seccomp = own.as_ref().and_then(|s| s.seccomp);
        let yama_scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let other_userns = super::ns::other_user_namespace(pid);
        PermFacts {
            euid,
            cap_sys_ptrace,
            yama_scope,
            target_uid: target_uid.filter(|&u| u != u32::MAX),
            seccomp,
            other_userns,
        }
    }
}

/// What Yama's `ptrace_scope` value means (Documentation/admin-guide/LSM/Yama.rst).
fn yama_meaning(scope: u32) -> &'static str {
    match scope {
        0 => "classic: any process may attach to another of the same uid",
        1 => "restricted: without CAP_SYS_PTRACE only an ancestor of the target may attach",
        2 => "admin-only: only processes with CAP_SYS_PTRACE may attach",
        3 => "no attach: nobody may trace, not even root, until reboot",
        _ => "unknown value",
    }
}

/// One line saying why tracing was refused and what to do, from the facts: capabilities,
/// Yama, seccomp, user namespaces. (Another tracer is [`LiveError::AlreadyTraced`].)
fn permission_hint(f: &PermFacts) -> String {
    let mut parts: Vec<String> = Vec::new();
    let who = if f.euid == 0 {
        "root".to_string()
    } else {
        format!("uid {}", f.euid)
    };
    if !f.cap_sys_ptrace {
        let fix = if f.euid == 0 {
            "grant it CAP_SYS_PTRACE"
        } else {
            "run it as root or grant CAP_SYS_PTRACE"
        };
        parts.push(format!(
            "goroscope runs as {who} without CAP_SYS_PTRACE: {fix} \
             (docker: --cap-add SYS_PTRACE; kubernetes: kubectl debug --profile=general)"
        ));
        if let Some(t) = f.target_uid
            && t != f.euid
        {
            parts.push(format!(
                "the target runs as uid {t}, so without CAP_SYS_PTRACE only that uid may trace it"
            ));
        }
    }
    let yama = |n: u32| format!("kernel.yama.ptrace_scope is {n} ({})", yama_meaning(n));
    match f.yama_scope {
        Some(1) if !f.cap_sys_ptrace => {
            parts.push(format!("{}; use CAP_SYS_PTRACE or set it to 0", yama(1)))
        }
        Some(2) if !f.cap_sys_ptrace => parts.push(yama(2)),
        // Nothing lifts it: say it first, it is the whole answer.
        Some(3) => parts.insert(0, format!("{}; only a reboot lifts it", yama(3))),
        Some(n @ 4..) => parts.push(yama(n)),
        _ => {}
    }
    if f.seccomp.is_some_and(|m| m != 0) {
        parts.push(format!(
            "goroscope runs under a seccomp {} (Seccomp: {} in /proc/self/status) that may refuse ptrace: \
             run it without that policy (docker: --security-opt seccomp=unconfined)",
            if f.seccomp == Some(1) { "strict mode" } else { "filter" },
            f.seccomp.unwrap_or(0)
        ));
    }
    if f.cap_sys_ptrace && parts.is_empty() {
        parts.push(if f.other_userns {
            "goroscope has CAP_SYS_PTRACE, but the target is in another user namespace where it does not \
             count: run goroscope in the target's user namespace or in one that owns it"
                .into()
        } else {
            let yama = f.yama_scope.map(|n| format!(" and {}", yama(n))).unwrap_or_else(|| " and Yama is off".into());
            format!(
                "goroscope has CAP_SYS_PTRACE{yama}, so a security module (AppArmor, SELinux) or a \
                 container boundary refuses the attach"
            )
        });
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ReadExt;

    /// This test process, which [`LiveProcess::open`] refuses: its memory is read here.
    fn own() -> LiveProcess {
        assert_eq!(
            LiveProcess::open(std::process::id() as i32).unwrap_err(),
            LiveError::Itself {
                pid: std::process::id() as i32
            }
        );
        LiveProcess {
            pid: std::process::id() as i32,
            arch: Arch::host().unwrap(),
            mem: OnceLock::new(),
        }
    }

    /// Three pages: the middle one unmapped.
    struct Hole {
        base: *mut u8,
    }
    impl Hole {
        fn new() -> Hole {
            // SAFETY: anonymous private mapping of three pages; the middle one is then replaced
            // by a page of a one-page memfd at offset 4096, i.e. wholly past the end of the
            // file: any read of it faults, but the address range stays reserved, so no other
            // test thread's mapping can land in the hole.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    3 * 4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                ) as *mut u8;
                assert!(p as isize != -1);
                for i in 0..3 * 4096 {
                    *p.add(i) = (i % 251) as u8;
                }
                let fd = libc::memfd_create(c"goroscope-hole".as_ptr(), 0);
                assert!(fd >= 0);
                assert_eq!(libc::ftruncate(fd, 4096), 0);
                let q = libc::mmap(
                    p.add(4096).cast(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    4096,
                );
                assert!(q as isize != -1);
                libc::close(fd);
                Hole { base: p }
            }
        }
        fn addr(&self, off: u64) -> u64 {
            self.base as u64 + off
        }
    }
    impl Drop for Hole {
        fn drop(&mut self) {
            // SAFETY: unmaps what `new` mapped (the hole is already unmapped; munmap tolerates it).
            unsafe { libc::munmap(self.base.cast(), 3 * 4096) };
        }
    }

    #[test]
    fn read_at_own_memory() {
        let p = own();
        let v: u64 = 0x1122_3344_5566_7788;
        assert_eq!(p.read_u64(&v as *const u64 as u64).unwrap(), v);
        assert!(p.read_u64(0).is_err());
    }

    #[test]
    fn copy_into_batches_and_partial_reads() {
        let p = own();
        let h = Hole::new();
        let mut img = MemoryImage::new();
        let reqs = [
            (h.addr(0), 100),        // fine
            (h.addr(50), 100),       // overlaps the first
            (h.addr(4000), 200),     // runs into the hole
            (h.addr(4096 + 10), 10), // inside the hole
            (h.addr(8192 - 8), 16),  // starts in the hole, ends in page 3
            (h.addr(8192), 4096),    // page 3
            (h.addr(8192 + 5), 0),   // empty: ignored
            (u64::MAX - 4, 10),      // overflows
        ];
        let failed = p.copy_into(&reqs, &mut img);
        assert_eq!(failed, 4);
        assert!(img.contains(h.addr(0), 150));
        assert!(img.contains(h.addr(4000), 96));
        assert!(!img.contains(h.addr(4096), 1));
        assert!(img.contains(h.addr(8192), 4096));
        assert_eq!(
            img.read_u8(h.addr(8192 + 7)).unwrap(),
            ((8192 + 7) % 251) as u8
        );
        assert_eq!(img.read_u8(h.addr(4095)).unwrap(), (4095 % 251) as u8);
    }

    #[test]
    fn copy_into_many_requests_crosses_batches() {
        let p = own();
        let stride = MERGE_GAP + 512;
        let data: Vec<u8> = (0..1500 * stride).map(|i| (i % 256) as u8).collect();
        // 1500 disjoint 1-byte requests with gaps wider than MERGE_GAP: more than one batch of
        // 1024 iovecs.
        let reqs: Vec<(u64, u64)> = (0..1500)
            .map(|i| (data.as_ptr() as u64 + stride * i, 1))
            .collect();
        let mut img = MemoryImage::new();
        assert_eq!(p.copy_into(&reqs, &mut img), 0);
        assert_eq!(img.range_count(), 1500);
        let last = (1499 * stride) as usize;
        assert_eq!(
            img.read_u8(data.as_ptr() as u64 + last as u64).unwrap(),
            data[last]
        );
    }

    #[test]
    fn copy_into_merges_close_requests() {
        let p = own();
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 256) as u8).collect();
        // g structs of 456 bytes in 480-byte slots: one read.
        let reqs: Vec<(u64, u64)> = (0..8)
            .map(|i| (data.as_ptr() as u64 + 480 * i, 456))
            .collect();
        let mut img = MemoryImage::new();
        assert_eq!(p.copy_into(&reqs, &mut img), 0);
        assert_eq!(img.range_count(), 1);
        assert_eq!(
            img.read_u8(data.as_ptr() as u64 + 480 * 7 + 455).unwrap(),
            data[480 * 7 + 455]
        );
    }

    #[test]
    fn prot_none_is_read_through_proc_mem() {
        let p = own();
        // SAFETY: one anonymous page, filled, then made inaccessible to normal reads.
        let page = unsafe {
            let q = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            std::ptr::write_bytes(q, 0xab, 4096);
            libc::mprotect(q.cast(), 4096, libc::PROT_NONE);
            q
        };
        let mut img = MemoryImage::new();
        assert_eq!(p.copy_into(&[(page as u64, 64)], &mut img), 0);
        assert_eq!(img.read_u8(page as u64 + 63).unwrap(), 0xab);
        assert_eq!(p.read_u8(page as u64).unwrap(), 0xab);
        // SAFETY: unmaps the page mapped above.
        unsafe { libc::munmap(page.cast(), 4096) };
    }

    #[test]
    fn covered_intervals() {
        let got = [(0, 10), (5, 20), (20, 30), (40, 50)];
        assert!(covered(&got, 0, 30));
        assert!(covered(&got, 12, 25));
        assert!(!covered(&got, 25, 41));
        assert!(covered(&got, 45, 50));
        assert!(!covered(&got, 45, 51));
    }

    #[test]
    fn open_errors() {
        assert_eq!(
            LiveProcess::open(-3).unwrap_err(),
            LiveError::NoSuchProcess { pid: -3 }
        );
        assert_eq!(
            LiveProcess::open(0x3fff_fff0).unwrap_err(),
            LiveError::NoSuchProcess { pid: 0x3fff_fff0 }
        );
        let p = own();
        assert_eq!(
            p.exe_path(),
            PathBuf::from(format!("/proc/{}/exe", std::process::id()))
        );
        assert!(
            p.thread_ids()
                .unwrap()
                .contains(&(std::process::id() as i32))
        );
        assert!(matches!(
            p.freeze(),
            Err(LiveError::PermissionDenied { .. })
        ));
    }

    #[test]
    fn exiting_processes() {
        let me = std::process::id() as i32;
        let st = proc::task_stat(me, me).unwrap();
        assert!(matches!(st.state, 'R' | 'S'), "{}", st.state);
        assert_eq!(st.flags & proc::PF_EXITING, 0);
        assert!(!has_exited(me));
        assert!(!sigkill_pending(me, me));
        assert!(has_exited(0x3fff_fff0));
    }

    #[test]
    fn display_lines() {
        let e = LiveError::AlreadyTraced {
            pid: 123,
            tracer: 0x3fff_fff0,
        };
        assert_eq!(
            e.to_string(),
            "process 123 is already traced by 1073741808; detach that tracer first"
        );
        let e = LiveError::StopTimeout {
            pid: 5,
            tid: 7,
            state: 'D',
        };
        assert_eq!(
            e.to_string(),
            "thread 7 of process 5 did not stop within 1000 ms (state D: uninterruptible sleep, waiting on a disk, \
             NFS or a vfork child); the target was released, try again when that thread is out of the kernel"
        );
        let e = LiveError::Ptrace {
            op: "seize",
            tid: 9,
            errno: libc::ESRCH,
        };
        assert_eq!(
            e.to_string(),
            "ptrace seize of thread 9 failed: no such process (errno 3); the target was released, try again"
        );
        for e in [
            LiveError::NoSuchProcess { pid: 1 },
            LiveError::Exited { pid: 1 },
            LiveError::Io {
                what: "/proc/1/task".into(),
                errno: libc::EACCES,
            },
            LiveError::StopTimeout {
                pid: 1,
                tid: 2,
                state: 'D',
            },
            LiveError::StopTimeout {
                pid: 1,
                tid: 2,
                state: '?',
            },
        ] {
            let s = e.to_string();
            assert!(
                s.starts_with(|c: char| c.is_lowercase()) && !s.contains('\n') && !s.ends_with('.'),
                "{s}"
            );
        }
    }

    #[test]
    fn permission_hints() {
        let facts = |euid, cap, yama, target| PermFacts {
            euid,
            cap_sys_ptrace: cap,
            yama_scope: yama,
            target_uid: target,
            seccomp: Some(0),
            other_userns: false,
        };
        let h = permission_hint(&facts(1000, false, Some(1), Some(0)));
        assert!(h.contains("uid 1000 without CAP_SYS_PTRACE"), "{h}");
        assert!(h.contains("target runs as uid 0"), "{h}");
        assert!(h.contains("ptrace_scope is 1 (restricted"), "{h}");
        let h = permission_hint(&facts(0, true, Some(3), Some(0)));
        assert!(
            h.starts_with("kernel.yama.ptrace_scope is 3 (no attach"),
            "{h}"
        );
        assert!(permission_hint(&facts(0, true, None, None)).contains("security module"));
        let h = permission_hint(&facts(0, false, Some(2), None));
        assert!(
            h.contains("runs as root without CAP_SYS_PTRACE") && h.contains("admin-only"),
            "{h}"
        );
    }

    /// Every Yama value, with and without CAP_SYS_PTRACE: the value and its meaning are named
    /// whenever they are (part of) the reason, and every message says what to do.
    #[test]
    fn yama_values() {
        for scope in 0..=4 {
            for cap in [false, true] {
                let f = PermFacts {
                    euid: 1000,
                    cap_sys_ptrace: cap,
                    yama_scope: Some(scope),
                    target_uid: Some(1000),
                    seccomp: Some(0),
                    other_userns: false,
                };
                let h = permission_hint(&f);
                println!("scope {scope} cap {cap}: {h}");
                assert!(
                    !h.is_empty() && !h.contains('\n') && !h.ends_with('.'),
                    "{h}"
                );
                let named = h.contains(&format!(
                    "kernel.yama.ptrace_scope is {scope} ({})",
                    yama_meaning(scope)
                ));
                assert!(
                    named || (scope == 0 && !cap),
                    "scope {scope} cap {cap}: {h}"
                );
                // With the capability, scopes 0-2 allow the attach, so something else refused it.
                match (scope, cap) {
                    (3, _) => assert!(
                        h.starts_with("kernel.yama.ptrace_scope is 3 (no attach")
                            && h.contains("reboot"),
                        "{h}"
                    ),
                    (1, false) => assert!(
                        h.contains("set it to 0") && h.contains("CAP_SYS_PTRACE"),
                        "{h}"
                    ),
                    (2, false) => assert!(
                        h.contains("admin-only")
                            && h.contains("run it as root or grant CAP_SYS_PTRACE"),
                        "{h}"
                    ),
                    (0, false) => assert!(
                        h.contains("run it as root or grant CAP_SYS_PTRACE") && !h.contains("yama"),
                        "{h}"
                    ),
                    (0..=2, true) => assert!(named && h.contains("security module"), "{h}"),
                    (4, _) => assert!(h.contains("unknown value"), "{h}"),
                    _ => unreachable!(),
                }
            }
        }
    }

    #[test]
    fn seccomp_and_user_namespaces() {
        let base = PermFacts {
            euid: 0,
            cap_sys_ptrace: true,
            yama_scope: None,
            target_uid: Some(0),
            seccomp: Some(2),
            other_userns: false,
        };
        let h = permission_hint(&base);
        assert!(
            h.contains("seccomp filter (Seccomp: 2") && h.contains("seccomp=unconfined"),
            "{h}"
        );
        assert!(
            !h.contains("security module"),
            "the filter is the reason: {h}"
        );
        let h = permission_hint(&PermFacts {
            seccomp: Some(1),
            ..base
        });
        assert!(h.contains("seccomp strict mode"), "{h}");
        let h = permission_hint(&PermFacts {
            seccomp: Some(0),
            other_userns: true,
            ..base
        });
        assert!(h.contains("another user namespace"), "{h}");
        let h = permission_hint(&PermFacts {
            seccomp: None,
            ..base
        });
        assert!(
            h.contains("Yama is off") && h.contains("security module"),
            "{h}"
        );
    }
}
