//! The freeze: seize and interrupt every thread, read their registers, detach them all
//! (signals re-injected, group-stops kept), with goroscope's own terminating signals blocked
//! meanwhile. See the contract in [`super`].

use super::asleep::{Asleep, Survey};
use super::error::{PermFacts, permission_hint};
use super::{LiveError, LiveProcess, MAX_ATTACH_ROUNDS, STOP_TIMEOUT};
use crate::arch::Regs;
use crate::target::ThreadState;
use crate::target::proc;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

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
    /// Interrupted, stop not yet seen ([`wait_one`]).
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
    /// Threads left asleep, not stopped ([`super::asleep`]).
    asleep: Vec<Asleep>,
    /// Threads found running before the stop: interrupted first, detached last.
    running: HashSet<i32>,
    threads: Vec<ThreadState>,
    first_interrupt: Option<Instant>,
    paused: Option<Duration>,
    /// Stops of the same copy before this one, each thawed and taken again
    /// ([`Freeze::stopped_before`]): part of the pause reported.
    before: Duration,
    /// Whether this freeze holds a reference on the thread's signal block (see [`SigBlock`]).
    blocked: bool,
    /// This thread's nice value before the freeze raised its priority ([`Priority`]).
    priority: Option<Priority>,
    /// ptrace requests must come from the seizing thread.
    _not_send: PhantomData<*const ()>,
    /// This goroscope's turn on the target, let go after the detach (fields drop after `drop`).
    _turn: crate::target::turn::Turn,
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
    pub(super) fn new(
        process: &'p LiveProcess,
        turn: crate::target::turn::Turn,
        survey: Survey,
    ) -> Self {
        Freeze {
            _turn: turn,
            process,
            tracees: Vec::new(),
            asleep: survey.asleep,
            running: survey.running.into_iter().collect(),
            threads: Vec::new(),
            first_interrupt: None,
            paused: None,
            before: Duration::ZERO,
            blocked: SigBlock::acquire(),
            priority: Priority::raise(),
            _not_send: PhantomData,
        }
    }

    /// Every thread with its registers, by ascending tid: the stopped ones, and those left
    /// asleep with only the stack pointer and program counter of their call.
    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    /// The threads left asleep, not stopped: the copy taken is the target's state only if
    /// each is [`Asleep::still`] asleep after the thaw.
    pub fn asleep(&self) -> &[Asleep] {
        &self.asleep
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
        let n = getregset(tid, libc::NT_PRFPREG, &mut raw).ok()?;
        raw.truncate(n);
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
    pub(crate) fn held_for(&self) -> Duration {
        self.before
            + self
                .first_interrupt
                .map(|t| t.elapsed())
                .unwrap_or_default()
    }

    /// Counts `pause`, the stops of a copy thawed and taken again with this freeze, in the
    /// pause this freeze reports.
    pub(crate) fn stopped_before(&mut self, pause: Duration) {
        self.before += pause;
    }

    /// Detaches every thread now; returns how long the target was stopped (from the first
    /// `PTRACE_INTERRUPT` to the last detach, and the stops before it this freeze counts).
    pub fn thaw(mut self) -> Duration {
        self.detach_all();
        self.before + self.paused.unwrap_or_default()
    }

    /// Seizes and interrupts every thread, re-listing until no new thread appears.
    pub(super) fn stop_all(&mut self) -> Result<(), LiveError> {
        let pid = self.process.pid;
        let mut seen: HashSet<i32> = self.asleep.iter().map(|a| a.tid).collect();
        for _round in 0..MAX_ATTACH_ROUNDS {
            let tids = list_tasks(pid).map_err(|e| match e {
                LiveError::NoSuchProcess { .. } => LiveError::Exited { pid },
                e => e,
            })?;
            let mut fresh: Vec<i32> = tids.into_iter().filter(|t| !seen.contains(t)).collect();
            // Those on a CPU first: stopped, they give it to the ones woken to stop.
            fresh.sort_by_key(|t| !self.running.contains(t));
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
                    // ESRCH: it exited after the seize; wait_one reaps the exit.
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

    /// Looks for the stop of every interrupted thread ([`wait_one`] of each in turn,
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
                // 20 us .. 80 us: the whole target waits on the last thread to stop, so a
                // stop that comes just after a long sleep would lengthen its pause.
                let us = 20u64 << (passes - 50).min(2);
                std::thread::sleep(Duration::from_micros(us));
            }
        }
    }

    /// `PTRACE_GETREGSET(NT_PRSTATUS)` for every stopped thread.
    pub(super) fn read_registers(&mut self) -> Result<(), LiveError> {
        let arch = self.process.arch;
        let mut threads = Vec::new();
        for t in self.tracees.iter_mut() {
            if !matches!(t.state, TState::Stopped(_)) {
                continue;
            }
            let mut bytes = [0u8; 1024];
            let n = match getregset(t.tid, libc::NT_PRSTATUS, &mut bytes) {
                Ok(n) => n,
                // Killed (SIGKILL wakes even stopped tracees): reap it at detach.
                Err(libc::ESRCH) => {
                    t.state = TState::Dying;
                    continue;
                }
                Err(errno) => {
                    return Err(LiveError::Ptrace {
                        op: "getregset",
                        tid: t.tid,
                        errno,
                    });
                }
            };
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
        if threads.is_empty() {
            return Err(LiveError::Exited {
                pid: self.process.pid,
            });
        }
        threads.extend(self.asleep.iter().map(|a| ThreadState {
            tid: a.tid,
            regs: Regs {
                pc: a.pc,
                sp: a.sp,
                ..Default::default()
            },
            words: Vec::new(),
            fp: Vec::new(),
        }));
        threads.sort_by_key(|t| t.tid);
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
        // Those found running last: let go, they take a CPU this thread may then wait for.
        let running = std::mem::take(&mut self.running);
        // Until the last detach and the pause's end are taken, no thread it lets go preempts
        // this one (see [`Realtime`]).
        let realtime = Realtime::raise();
        self.tracees.sort_by_key(|t| running.contains(&t.tid));
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
        drop(realtime);
        if let Some(p) = self.priority.take() {
            p.restore();
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

/// The freezing thread's priority, raised (nice -20) while the target is stopped: on a
/// machine whose CPUs the target's own busy threads fill, a thread it lets go (or wakes to
/// stop) would otherwise take this thread's CPU for a time slice of several milliseconds
/// while the others stay stopped. Raised only where permitted (`CAP_SYS_NICE`); the nice
/// value from before is restored after the last detach.
struct Priority(i32);

impl Priority {
    /// Raises this thread's priority; `None` when not permitted or already at the top.
    fn raise() -> Option<Priority> {
        // SAFETY: gettid and get/setpriority on this very thread; errno is read right after.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let old = libc::getpriority(libc::PRIO_PROCESS, tid);
            if *libc::__errno_location() != 0 || old <= -20 {
                return None;
            }
            (libc::setpriority(libc::PRIO_PROCESS, tid, -20) == 0).then_some(Priority(old))
        }
    }

    fn restore(self) {
        // SAFETY: as in `raise`.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, self.0);
        }
    }
}

/// The freezing thread in the real-time class (`SCHED_FIFO`, the lowest priority) while it
/// lets the target's threads go. A thread let go is woken on a CPU; were it this thread's CPU,
/// the scheduler may give it this thread's place (a woken thread keeps the lag it was owed),
/// and this thread, preempted between two detaches, would leave the threads not yet let go
/// stopped until its next turn: a timer tick later (4 ms at 250 Hz) on a machine whose CPUs
/// the target's busy threads fill, whatever its nice value. A real-time thread is not
/// preempted by them. Held only for the detaches, a few microseconds each: nothing this
/// thread starts inherits it. Raised only where permitted (`CAP_SYS_NICE`); the policy and
/// priority from before are restored on drop.
struct Realtime {
    policy: i32,
    param: libc::sched_param,
}

impl Realtime {
    /// Puts this thread in `SCHED_FIFO`; `None` when not permitted or not in the normal class
    /// (already real-time, a deadline, or run as batch or idle on purpose).
    fn raise() -> Option<Realtime> {
        // SAFETY: scheduling calls on this very thread (pid 0) with a param on the stack.
        unsafe {
            let policy = libc::sched_getscheduler(0);
            let mut param: libc::sched_param = std::mem::zeroed();
            if policy & !libc::SCHED_RESET_ON_FORK != libc::SCHED_OTHER
                || libc::sched_getparam(0, &mut param) != 0
            {
                return None;
            }
            let fifo = libc::sched_param { sched_priority: 1 };
            (libc::sched_setscheduler(0, libc::SCHED_FIFO, &fifo) == 0)
                .then_some(Realtime { policy, param })
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        // SAFETY: as in `raise`; the nice value is kept by the kernel across the change.
        unsafe {
            libc::sched_setscheduler(0, self.policy, &self.param);
        }
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

/// One non-blocking look at an interrupted thread: its new state, or `None` if still running.
///
/// A stop is only looked at (`waitid(WNOWAIT)`), never collected: collecting a
/// signal-delivery-stop clears the signal the kernel keeps for the tracee (`wait_task_stopped`
/// zeroes `exit_code`), and were goroscope killed before its `PTRACE_DETACH(sig)` the tracee
/// would then wake without it. A Go runtime that loses a preemption `SIGURG` so never signals
/// that thread again (`m.signalPending` stays set) and its next stop-the-world can hang. Left
/// uncollected, the signal is delivered when the kernel detaches a dead tracer's tracees. An
/// exit is collected (reaped).
fn wait_one(tid: i32) -> Option<TState> {
    loop {
        // SAFETY: an all-zero siginfo_t is valid; waitid writes at most one into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WSTOPPED | libc::__WALL | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: as above.
        let r = unsafe { libc::waitid(libc::P_PID, tid as libc::id_t, &mut info, flags) };
        if r < 0 {
            if nix::errno::Errno::last_raw() == libc::EINTR {
                continue;
            }
            return Some(TState::Gone); // ECHILD: no longer ours (auto-reaped)
        }
        // SAFETY: waitid filled the CLD_* fields of the union, or left it zero (nothing to report).
        let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
        if who == 0 {
            return None;
        }
        match info.si_code {
            libc::CLD_TRAPPED => return Some(TState::Stopped(stop_cause(status))),
            libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED => {
                reap_briefly(tid);
                return Some(TState::Gone);
            }
            _ => return None, // not a ptrace-stop nor an exit: keep waiting
        }
    }
}

/// How a thread came to its ptrace-stop, from the stop's code (`waitid`'s `si_status`: the
/// signal, and the ptrace event above it).
fn stop_cause(status: i32) -> StopCause {
    let sig = status & 0xff;
    let event = (status >> 8) & 0xff;
    if event == libc::PTRACE_EVENT_STOP {
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
pub(super) fn state_letter(st: &proc::Status) -> char {
    st.state.chars().next().unwrap_or('?')
}

/// The errno of an I/O error (`EIO` when it has none).
pub(super) fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The state letter of a task from `/proc/PID/task/TID/stat`, `None` if it is gone.
pub(super) fn task_state(pid: i32, tid: i32) -> Option<char> {
    proc::task_stat(pid, tid).ok().map(|s| s.state)
}

/// Whether any task of `pid` is not a zombie (a leader that called pthread_exit is one while
/// other threads still run).
pub(super) fn has_live_task(pid: i32) -> bool {
    list_tasks(pid)
        .map(|ts| {
            ts.iter()
                .any(|&t| !matches!(task_state(pid, t), None | Some('Z' | 'X' | 'x')))
        })
        .unwrap_or(false)
}

pub(super) fn is_gone(errno: i32) -> bool {
    errno == libc::ENOENT || errno == libc::ESRCH
}

pub(super) fn io_err(what: String, errno: i32) -> LiveError {
    LiveError::Io { what, errno }
}

pub(super) fn list_tasks(pid: i32) -> Result<Vec<i32>, LiveError> {
    proc::tasks(pid).map_err(|e| {
        let errno = errno_of(&e);
        if is_gone(errno) {
            LiveError::NoSuchProcess { pid }
        } else {
            io_err(format!("/proc/{pid}/task"), errno)
        }
    })
}

/// Whether the process has exited or is exiting: every task is gone, a zombie waiting to be
/// reaped, or on its way out. A process being killed (SIGKILL, `exit_group`) loses
/// `/proc/PID/exe` and its memory while its tasks still show as running: the one in `do_exit`
/// has `PF_EXITING`, the others a SIGKILL pending (`complete_signal`, `zap_other_threads`).
pub(crate) fn has_exited(pid: i32) -> bool {
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
pub(super) fn sigkill_pending(pid: i32, tid: i32) -> bool {
    proc::task_status(pid, tid).map_or(true, |st| proc::signal_pending(&st, libc::SIGKILL))
}

/// ` (comm)` of a process for messages, or nothing when it cannot be read.
pub(super) fn named(pid: i32) -> String {
    proc::comm(pid)
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

/// `PTRACE_GETREGSET` of register set `note` (`NT_PRSTATUS`, `NT_PRFPREG`) of stopped thread
/// `tid` into `buf`: the bytes the kernel wrote, or the errno.
fn getregset(tid: i32, note: libc::c_int, buf: &mut [u8]) -> Result<usize, i32> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: the kernel writes at most iov_len bytes into `buf` and updates iov_len.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            note as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec as *mut libc::c_void,
        )
    };
    if r < 0 {
        return Err(nix::errno::Errno::last_raw());
    }
    Ok(iov.iov_len.min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};

    static SIGNALLED: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_usr1(_: libc::c_int) {
        // SAFETY: write(2) is async-signal-safe; the pipe outlives the handler's process.
        unsafe { libc::write(SIGNALLED.load(Ordering::Relaxed), b"s".as_ptr().cast(), 1) };
    }

    /// Reads one byte from `fd` within `ms` milliseconds.
    fn byte_within(fd: i32, ms: i32) -> Option<u8> {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let mut b = 0u8;
        // SAFETY: poll of one pollfd, read of one byte into a local.
        unsafe {
            (libc::poll(&mut p, 1, ms) == 1 && libc::read(fd, (&mut b as *mut u8).cast(), 1) == 1)
                .then_some(b)
        }
    }

    /// The detaches' real-time class is this thread's only while held: raised (where
    /// permitted) to `SCHED_FIFO`, then the policy, priority and nice value from before.
    #[test]
    fn realtime_is_held_only_while_it_lives() {
        // SAFETY: scheduling queries and changes of this test's own thread.
        let now = || unsafe {
            let mut p: libc::sched_param = std::mem::zeroed();
            libc::sched_getparam(0, &mut p);
            *libc::__errno_location() = 0;
            let nice = libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t);
            (libc::sched_getscheduler(0), p.sched_priority, nice)
        };
        // SAFETY: as above; a nice value above the current one needs no privilege.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 5) };
        let before = now();
        assert_eq!(before.0, libc::SCHED_OTHER);
        let rt = Realtime::raise();
        if rt.is_some() {
            assert_eq!(now().0, libc::SCHED_FIFO);
            assert_eq!(now().1, 1);
            assert!(Realtime::raise().is_none(), "already real-time");
            drop(rt);
            let zero = libc::sched_param { sched_priority: 0 };
            // SAFETY: as above.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &zero) };
            assert!(Realtime::raise().is_none(), "batch on purpose");
            // SAFETY: as above.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &zero) };
        } else {
            assert_eq!(now(), before, "not permitted: nothing changed");
        }
        assert_eq!(now(), before);
    }

    /// A tracer killed while it holds a thread in a signal-delivery-stop it has seen does not
    /// take the signal with it: the thread handles it once the kernel lets it go. (Collecting
    /// the stop with waitpid loses it; the Go runtime then never preempts that thread again.)
    #[test]
    fn a_signal_stop_seen_is_delivered_when_the_tracer_dies() {
        let mut fds = [0i32; 2];
        // SAFETY: pipe2 writes two fds; fork children below call only async-signal-safe
        // functions (sigaction, write, pause, ptrace, kill, waitid, usleep, _exit) before _exit.
        unsafe {
            assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
            SIGNALLED.store(fds[1], Ordering::Relaxed);
            let target = libc::fork();
            assert!(target >= 0);
            if target == 0 {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_usr1 as *const () as usize;
                libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
                libc::write(fds[1], b"r".as_ptr().cast(), 1);
                loop {
                    libc::pause();
                }
            }
            let ready = byte_within(fds[0], 5000);
            let tracer = if ready == Some(b'r') {
                libc::fork()
            } else {
                -1
            };
            if tracer == 0 {
                if ptrace_raw(libc::PTRACE_SEIZE, target, 0).is_err() {
                    libc::_exit(2);
                }
                libc::kill(target, libc::SIGUSR1);
                for _ in 0..5000 {
                    match wait_one(target) {
                        // Dies holding the stop, as a SIGKILLed goroscope would.
                        Some(TState::Stopped(StopCause::Signal(libc::SIGUSR1))) => libc::_exit(0),
                        Some(_) => libc::_exit(3),
                        None => libc::usleep(1000),
                    };
                }
                libc::_exit(4);
            }
            let mut st = 0;
            let traced = tracer > 0 && libc::waitpid(tracer, &mut st, 0) == tracer;
            let handled = byte_within(fds[0], 5000);
            libc::kill(target, libc::SIGKILL);
            libc::waitpid(target, std::ptr::null_mut(), 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
            assert_eq!(ready, Some(b'r'), "the target did not start");
            assert!(traced && libc::WIFEXITED(st), "tracer: {st:#x}");
            assert_eq!(
                libc::WEXITSTATUS(st),
                0,
                "the tracer saw no signal-delivery-stop"
            );
            assert_eq!(handled, Some(b's'), "the signal was lost with the tracer");
        }
    }
}
