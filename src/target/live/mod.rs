//! The live-process backend: a short ptrace freeze, then batched memory copies.
//!
//! # Contract
//!
//! [`LiveProcess::open`] only looks at `/proc`; it never stops anything. [`LiveProcess::freeze`]
//! stops every thread of the target and reads its registers; the caller then copies what it
//! needs with [`LiveProcess::copy_into`] and calls [`Freeze::thaw`] (or drops the [`Freeze`]).
//! Everything after that reads the copied [`MemoryImage`], never the live process.
//! [`LiveProcess::freeze_leaving`] leaves threads asleep in a blocking call unstopped, for a
//! caller that checks after the thaw that they slept throughout ([`asleep`]).
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
//!   delivered on that restart: goroscope only looks at stops (`waitid(WNOWAIT)`), and never
//!   collects one, which would clear the signal the kernel keeps for the tracee. The
//!   integration tests prove the target keeps running.
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

pub mod asleep;
mod error;
mod freeze;
#[cfg(test)]
mod tests;

pub use asleep::{Asleep, Survey, survey};
pub use error::LiveError;
pub(crate) use error::permission_denied;
pub(crate) use freeze::has_exited;
pub use freeze::{Freeze, StopCause};

use freeze::{errno_of, has_live_task, io_err, is_gone, list_tasks, state_letter};

use super::image::MemoryImage;
use super::proc;
use super::{MemoryReader, ReadError};
use crate::arch::Arch;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// How many times `/proc/PID/task` is re-listed while threads keep appearing.
pub(crate) const MAX_ATTACH_ROUNDS: usize = 100;

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
pub(crate) const TEST_PANIC_COMMAND_ENV: &str = "GOROSCOPE_TEST_PANIC_AT_COMMAND";

/// Panics when `line` is the command [`TEST_PANIC_COMMAND_ENV`] names; never without
/// [`TEST_HOOKS`].
pub(crate) fn test_panic_at_command(line: &str) {
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
pub(crate) fn test_hold_after_precopy() {
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
        self.freeze_leaving(Survey::default())
    }

    /// [`LiveProcess::freeze`], leaving the threads the survey found asleep in a blocking
    /// call unstopped (see [`asleep`]): the caller checks after the thaw that each is still
    /// asleep. Those it found running are interrupted first and let go last.
    pub fn freeze_leaving(&self, survey: Survey) -> Result<Freeze<'_>, LiveError> {
        if self.pid == std::process::id() as i32 {
            return Err(LiveError::PermissionDenied {
                pid: self.pid,
                hint: "goroscope cannot freeze its own process".into(),
            });
        }
        let turn = super::turn::Turn::take(self.pid);
        let mut f = Freeze::new(self, turn, survey);
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
        let threads = crate::parts::threads().min(MAX_COPY_THREADS);
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
        // Ranges read, ascending, added to `image` together (before any slow path's).
        let mut read: Vec<(u64, Vec<u8>)> = Vec::new();
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
                    read.push((a, buf));
                    push_range(&mut got, a, e);
                    continue;
                }
                // Partial or failed element: keep the prefix, slow-path the rest.
                if left > 0 {
                    read.push((a, buf));
                    push_range(&mut got, a, a + left as u64);
                }
                image.extend(std::mem::take(&mut read));
                let start = a + left as u64;
                if !self.slow_copy(start, e, image, &mut got) {
                    gone = true;
                }
                next = i + k + 1;
                break;
            }
            i = next;
        }
        image.extend(read);
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

/// One `process_vm_readv` of every piece (at most [`IOV_MAX`]) into its buffer: whether all
/// their bytes were read.
fn vm_read_pieces(pid: i32, pieces: &mut [(u64, &mut [u8])]) -> bool {
    let want: usize = pieces.iter().map(|(_, b)| b.len()).sum();
    let remote: Vec<libc::iovec> = pieces
        .iter()
        .map(|(a, b)| libc::iovec {
            iov_base: *a as usize as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let local: Vec<libc::iovec> = pieces
        .iter_mut()
        .map(|(_, b)| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let n = local.len().min(IOV_MAX);
    // SAFETY: each local iovec describes one buffer of `pieces`, exclusively borrowed for the call.
    let r =
        unsafe { libc::process_vm_readv(pid, local.as_ptr(), n as _, remote.as_ptr(), n as _, 0) };
    usize::try_from(r).is_ok_and(|r| r == want) && n == local.len()
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

impl super::CopyInto for LiveProcess {
    fn copy_into(&self, ranges: &[(u64, u64)], image: &mut MemoryImage) {
        LiveProcess::copy_into(self, ranges, image);
    }

    fn read_in_place(&self, pieces: &mut [(u64, &mut [u8])]) -> bool {
        pieces
            .chunks_mut(IOV_MAX)
            .all(|batch| vm_read_pieces(self.pid, batch))
    }
}
