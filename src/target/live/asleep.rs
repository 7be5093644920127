//! Threads a freeze need not stop: asleep in a system call that only an event from outside
//! the stopped threads ends (a read of a pipe or socket, an accept, a futex wait without a
//! timeout: a thread locked to a parked goroutine, an idle M). While every thread that could
//! wake them is stopped, they stay asleep, run no code and change no memory; when one is woken
//! anyway (data arrives, a signal), [`Asleep::still`] says so after the fact, from the kernel's
//! count of its turns on a CPU, and the caller copies again with every thread stopped.
//! A thread asleep in a call with a timeout (`nanosleep`: sysmon; a futex or epoll wait with
//! one) wakes on its own and is always stopped.
//!
//! Such a thread's registers are not read: it is listed with the stack pointer and program
//! counter `/proc/PID/task/TID/syscall` gives, those of the call it sleeps in. The main thread
//! is always stopped.

use crate::target::proc;

/// A thread asleep in a blocking system call ([`blocking_call`]), as `/proc` showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asleep {
    /// Thread id.
    pub tid: i32,
    /// The call's number and arguments.
    call: (i64, [u64; 6]),
    /// Its stack pointer and program counter at the call.
    pub sp: u64,
    pub pc: u64,
    /// Its time on a CPU (ns) and how many times it was given one (`schedstat`).
    runs: (u64, u64),
}

impl Asleep {
    /// Thread `tid` of `pid`, if it is asleep in a blocking call now. The call is read first,
    /// then the CPU counts: a run that began before those counts is over by then.
    pub fn now(pid: i32, tid: i32) -> Option<Asleep> {
        match look(pid, tid) {
            Look::Asleep(a) => Some(a),
            _ => None,
        }
    }

    /// Whether the thread has not run since `self` was read: still asleep in the same call
    /// at the same place (read first), and neither a new turn on a CPU nor more time on one
    /// (read after: a run under way when `self` was read ended before the call was read
    /// again, which adds its time).
    pub fn still(&self, pid: i32) -> bool {
        Asleep::now(pid, self.tid).as_ref() == Some(self)
    }
}

/// What `/proc` shows of a thread.
enum Look {
    Asleep(Asleep),
    /// On a CPU.
    Running,
    Other,
}

/// Thread `tid` of `pid` now: its call is read first, then its CPU counts (see
/// [`Asleep::now`]).
fn look(pid: i32, tid: i32) -> Look {
    let Ok(call) = proc::task_syscall(pid, tid) else {
        return Look::Other;
    };
    let proc::Syscall::Blocked {
        syscall_number,
        argument_registers,
        stack_pointer,
        program_counter,
    } = call
    else {
        return Look::Running;
    };
    if !blocking_call(syscall_number, &argument_registers) {
        return Look::Other;
    }
    let Ok(s) = proc::task_schedstat(pid, tid) else {
        return Look::Other;
    };
    Look::Asleep(Asleep {
        tid,
        call: (syscall_number, argument_registers),
        sp: stack_pointer,
        pc: program_counter,
        runs: (s.sum_exec_runtime, s.pcount),
    })
}

/// The threads of a process as a freeze finds them just before it stops them.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// Those asleep in a blocking call, left so; never the main thread, which a freeze always
    /// stops: its `TracerPid` (the process's, in `/proc/PID/status`) then names the goroscope
    /// holding the target, which other goroscopes wait for ([`crate::target::turn`]).
    pub asleep: Vec<Asleep>,
    /// Those on a CPU: interrupted first and let go last. A thread let go that runs on keeps
    /// a CPU, which the goroscope letting the others go then waits for on a busy machine.
    pub running: Vec<i32>,
}

/// [`Survey`] of the threads `tids` of `pid`.
pub fn survey(pid: i32, tids: &[i32]) -> Survey {
    let mut out = Survey::default();
    for &t in tids {
        match look(pid, t) {
            Look::Asleep(a) if t != pid => out.asleep.push(a),
            Look::Running => out.running.push(t),
            _ => {}
        }
    }
    out
}

/// `FUTEX_WAIT` and `FUTEX_WAIT_BITSET`, without `FUTEX_PRIVATE_FLAG` and
/// `FUTEX_CLOCK_REALTIME` (`linux/futex.h`).
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_CMD_MASK: u64 = !(128 | 256);

/// A system call that sleeps until something outside the thread happens, with no timeout:
/// `read`, `readv`, `pread64`, `recvfrom`, `recvmsg`, `accept`, `accept4`, or a futex wait
/// whose timeout is null.
pub fn blocking_call(nr: i64, args: &[u64; 6]) -> bool {
    let reads = [
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_recvfrom,
        libc::SYS_recvmsg,
        libc::SYS_accept,
        libc::SYS_accept4,
    ];
    if reads.contains(&nr) {
        return true;
    }
    nr == libc::SYS_futex
        && matches!(args[1] & FUTEX_CMD_MASK, FUTEX_WAIT | FUTEX_WAIT_BITSET)
        && args[3] == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_calls() {
        let futex = |op: u64, timeout: u64| [0x1000, op, 1, timeout, 0, 0];
        assert!(blocking_call(libc::SYS_read, &[3, 0, 0, 0, 0, 0]));
        assert!(blocking_call(libc::SYS_futex, &futex(128, 0)));
        assert!(blocking_call(libc::SYS_futex, &futex(9 | 128 | 256, 0)));
        assert!(!blocking_call(libc::SYS_futex, &futex(128, 0x7fff_0000)));
        assert!(!blocking_call(libc::SYS_futex, &futex(1 | 128, 0)));
        assert!(!blocking_call(libc::SYS_nanosleep, &[0; 6]));
        assert!(!blocking_call(libc::SYS_epoll_pwait, &[0; 6]));
        assert!(!blocking_call(-1, &[0; 6]));
    }

    /// A thread of this process asleep in a read of a pipe nobody writes is found, keeps
    /// being found the same while it sleeps, and no longer once woken.
    #[test]
    fn a_thread_asleep_in_read() {
        use std::io::{Read, Write};
        let (mut r, mut w) = std::io::pipe().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() }).unwrap();
            let mut b = [0u8; 1];
            r.read_exact(&mut b).unwrap();
        });
        let tid = rx.recv().unwrap();
        let pid = std::process::id() as i32;
        let mut found = None;
        for _ in 0..200 {
            found = Asleep::now(pid, tid);
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let a = found.expect("the reader asleep in read(2)");
        assert_eq!(a.call.0, libc::SYS_read);
        assert!(survey(pid, &[tid]).asleep.contains(&a));
        assert!(
            survey(pid, &[pid]).asleep.is_empty(),
            "never the main thread"
        );
        assert!(a.still(pid));
        w.write_all(b"x").unwrap();
        t.join().unwrap();
        assert!(!a.still(pid));
    }
}
