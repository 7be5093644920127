//! Why a live target could not be read, and for a refused one, what is needed
//! (privileges, Yama's ptrace scope, the target's user).

use super::STOP_TIMEOUT;
use super::freeze::named;
use crate::target::proc;
use std::fmt;

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

/// The error for a target goroscope may not read (its executable or memory refused), with
/// the hint that says what is needed.
pub(crate) fn permission_denied(pid: i32) -> LiveError {
    let uid = proc::status(pid).ok().map(|s| s.euid);
    LiveError::PermissionDenied {
        pid,
        hint: permission_hint(&PermFacts::gather(pid, uid)),
    }
}

/// What decides whether goroscope may trace the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PermFacts {
    pub(super) euid: u32,
    /// `CAP_SYS_PTRACE` (bit 19) in goroscope's effective capabilities.
    pub(super) cap_sys_ptrace: bool,
    /// `/proc/sys/kernel/yama/ptrace_scope`, `None` when Yama is not enabled.
    pub(super) yama_scope: Option<u32>,
    /// The target's effective uid, if known.
    pub(super) target_uid: Option<u32>,
    /// goroscope's `Seccomp` mode from `/proc/self/status` (0 none, 1 strict, 2 filter).
    pub(super) seccomp: Option<u32>,
    /// The target is in another user namespace than goroscope (`/proc/PID/ns/user`).
    pub(super) other_userns: bool,
}

impl PermFacts {
    pub(super) fn gather(pid: i32, target_uid: Option<u32>) -> Self {
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        let own = proc::status(std::process::id() as i32).ok();
        let cap_sys_ptrace = own.as_ref().is_some_and(|s| s.capeff & (1 << 19) != 0);
        let seccomp = own.as_ref().and_then(|s| s.seccomp);
        let yama_scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let other_userns = crate::target::ns::other_user_namespace(pid);
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
pub(super) fn yama_meaning(scope: u32) -> &'static str {
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
pub(super) fn permission_hint(f: &PermFacts) -> String {
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
