//! goroscope's own start-up time: from the start of the process to the moment it first touches
//! the target's goroutines (the start of the copy before the freeze), i.e. reading the
//! executable and discovering the runtime. Shown by `goroscope inspect` and recorded in
//! `Meta::startup_ns`.
//!
//! The clock starts at [`mark_start`], which `main` calls first; a library user that never
//! calls it gets the time from its first [`LiveTarget::open`](crate::capture::LiveTarget::open).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();
static READY_NS: AtomicU64 = AtomicU64::new(0);

/// Starts the clock (only the first call counts).
pub fn mark_start() {
    START.get_or_init(Instant::now);
}

/// Lets the C allocator grow its heaps in large steps. A model of 100,000 goroutines is a few
/// hundred MB of small allocations made on every CPU; glibc's per-thread heaps otherwise grow
/// 128 KiB at a time, each step an `mprotect` that takes the process's memory-map lock, and
/// that was a fifth of the time of `dump --blocked` at that size. Address space only: pages
/// count once touched. And it keeps one heap per CPU, which the two threads of the work on
/// it share ([`crate::parts::threads`]): glibc's default of eight per CPU gave each
/// short-lived worker thread a heap of its own, whose freed memory stayed with it (at 100,000
/// goroutines, `grs` peaked 45 MB higher; a heap per thread of the work, 30 to 60 MB higher at
/// 1,000,000).
pub fn tune_allocator() {
    let heaps = i32::try_from(crate::parts::cpus()).unwrap_or(i32::MAX);
    // SAFETY: mallopt before any thread is started; a failure leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        libc::mallopt(libc::M_ARENA_MAX, heaps);
    }
}

/// Gives memory freed in the middle of the C allocator's heaps back to the kernel (glibc's
/// `malloc_trim`), when a large part of what was copied or built is let go and more is about
/// to be allocated: freed small blocks otherwise stay in the process's resident set, and the
/// next large allocations take fresh pages beside them. A few milliseconds at 100,000
/// goroutines.
pub fn release_freed() {
    // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// When goroscope started ([`mark_start`], else now).
pub fn started() -> Instant {
    *START.get_or_init(Instant::now)
}

/// Records that discovery is over and the target is about to be copied (the latest call counts).
pub(crate) fn mark_ready() {
    let ns = START
        .get()
        .map(|s| s.elapsed().as_nanos() as u64)
        .unwrap_or(0);
    READY_NS.store(ns, Ordering::Relaxed);
}

/// Nanoseconds from [`mark_start`] to the latest [`mark_ready`]; 0 before either.
pub(crate) fn ready_ns() -> u64 {
    READY_NS.load(Ordering::Relaxed)
}
