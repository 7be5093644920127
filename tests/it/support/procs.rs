//! Processes a test starts besides the fixture (goroscope itself, strace, sleep): a guard
//! that kills and reaps them by pid, and bounded polls of their state under `/proc`.

use std::process::Command;
use std::time::{Duration, Instant};

/// A process this test spawned: SIGKILLed by its pid (still ours: not reaped yet) and reaped on
/// drop. `soft` is sent first and given a moment (strace detaches cleanly on SIGINT).
pub struct Guard {
    child: std::process::Child,
    soft: Option<i32>,
    what: String,
}

impl Guard {
    /// The process, e.g. to take its pipes.
    pub fn child(&mut self) -> &mut std::process::Child {
        &mut self.child
    }

    pub fn spawn(cmd: &mut Command, soft: Option<i32>) -> Guard {
        let what = format!("{cmd:?}");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        Guard { child, soft, what }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child, which is not reaped yet (reaping needs &mut self).
        let r = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(
            r,
            0,
            "kill({}, {sig}) of {}: {}",
            self.pid(),
            self.what,
            std::io::Error::last_os_error()
        );
    }

    /// Waits for the exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(sig) = self.soft {
            // SAFETY: as in `signal`: our own unreaped child.
            unsafe { libc::kill(self.pid(), sig) };
            if self.wait(Duration::from_secs(2)).is_some() {
                return;
            }
        }
        // SAFETY: as in `signal`: our own unreaped child.
        unsafe { libc::kill(self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Polls `f` every 2 ms until it is Ok; Err with the last reason after `timeout`.
pub fn poll(timeout: Duration, mut f: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(format!("after {timeout:?}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// `(tid, state letter)` of every thread of `pid`.
pub fn thread_states(pid: u32) -> Vec<(String, char)> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some((t.file_name().to_string_lossy().into_owned(), state))
        })
        .collect()
}

/// Waits until goroscope holds `pid` in its frozen window: some thread is in a tracing stop
/// (`t`) and every other one is asleep in a blocking call, which a dump's freeze leaves
/// unstopped ([`goroscope::target::live::Asleep`]).
pub fn wait_frozen(pid: u32) {
    poll(Duration::from_secs(20), || {
        let s = thread_states(pid);
        let stopped = s.iter().any(|&(_, c)| c == 't');
        let asleep = |t: &str| {
            t.parse()
                .is_ok_and(|t| goroscope::target::live::Asleep::now(pid as i32, t).is_some())
        };
        if stopped && s.iter().all(|(t, c)| *c == 't' || asleep(t)) {
            Ok(())
        } else {
            Err(format!("threads of {pid} not all frozen or asleep: {s:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The tracer of `pid`: the largest `TracerPid` of its threads (a dump's freeze leaves the
/// threads asleep in a blocking call untraced; 0 when none is traced, -1 when none is read).
pub fn tracer_pid(pid: u32) -> i32 {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return -1;
    };
    rd.flatten()
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("status")).ok()?;
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .max()
        .unwrap_or(-1)
}
