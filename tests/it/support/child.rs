//! `Child`: a running fixture process (rbspy's `RubyScript`). Spawned with stdin and stdout
//! piped, it is ready once it printed `READY <pid>`; commands are lines on stdin. Dropping the
//! guard sends `quit`, then kills the process by its pid and reaps it, also during a panic.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long to wait for READY and for each answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What the fixture said before READY.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// Every `INFO` line's text, in order.
    pub lines: Vec<String>,
    /// From `INFO running main.X`: goroutines that never park, by function.
    pub running: Vec<String>,
}

impl Info {
    pub fn from_lines(lines: Vec<String>) -> Info {
        let running = lines
            .iter()
            .filter_map(|l| l.strip_prefix("running "))
            .map(|f| f.trim().to_string())
            .collect();
        Info { lines, running }
    }
}

/// A running fixture.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// The thread that copies the fixture's stderr into `stderr`; it ends at the pipe's end.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    /// The fixture's pid in the tests' pid namespace (checked against its READY line).
    pub pid: u32,
    /// The pid the fixture sees itself as (its READY line): `pid` unless it runs in another pid
    /// namespace (started by [`Child::start_wrapped`]).
    pub ns_pid: u32,
    pub scenario: String,
    pub info: Info,
}

impl Child {
    /// Starts `exe <scenario>` and waits for READY.
    pub fn start(exe: &Path, scenario: &str) -> Result<Child, String> {
        Self::launch(&[], exe, scenario, &[], &[])
    }

    /// Starts `exe <scenario> <args...>` (e.g. `many -n 5000`) and waits for READY.
    pub fn start_args(exe: &Path, scenario: &str, args: &[&str]) -> Result<Child, String> {
        Self::launch(&[], exe, scenario, args, &[])
    }

    /// [`Child::start`] with these environment variables set (after GOTRACEBACK, GODEBUG and
    /// GOMAXPROCS are removed from the inherited environment).
    pub fn start_env(exe: &Path, scenario: &str, env: &[(&str, &str)]) -> Result<Child, String> {
        Self::launch(&[], exe, scenario, &[], env)
    }

    /// Starts `wrapper... exe <scenario>` (e.g. `unshare --pid --fork --kill-child ...`) and
    /// waits for READY. With a wrapper, the fixture is the wrapper's child, possibly in another
    /// pid namespace; `pid` is then found as the wrapper's child whose innermost `NSpid` is the
    /// pid READY names. The wrapper must make the fixture die with it (`--kill-child`): on
    /// drop, the wrapper (our own child) is what is killed and reaped.
    pub fn start_wrapped(wrapper: &[&str], exe: &Path, scenario: &str) -> Result<Child, String> {
        Self::launch(wrapper, exe, scenario, &[], &[])
    }

    fn launch(
        wrapper: &[&str],
        exe: &Path,
        scenario: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Child, String> {
        let mut cmd = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        cmd.arg(scenario)
            .args(args)
            .env_remove("GOTRACEBACK")
            .env_remove("GODEBUG")
            .env_remove("GOMAXPROCS")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A file just written (a patched copy) can be briefly "busy": another test thread's
        // fork between its open and exec holds a write descriptor to it. Try again then.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => break r.map_err(|e| format!("start {} {scenario}: {e}", exe.display()))?,
            }
        };
        let stdout = child.stdout.take().unwrap();
        let stderr_pipe = child.stderr.take().unwrap();
        let rx = line_channel(stdout);
        let (stderr, stderr_reader) = collect_text(stderr_pipe);
        let pid = child.id();
        let mut c = Child {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stderr,
            stderr_reader: Some(stderr_reader),
            pid,
            ns_pid: pid,
            scenario: scenario.to_string(),
            info: Info::default(),
        };
        let mut info = Vec::new();
        loop {
            let line = c.recv_line("READY")?;
            if let Some(text) = line.strip_prefix("INFO ") {
                info.push(text.to_string());
            } else if let Some(p) = line.strip_prefix("READY ") {
                if wrapper.is_empty() {
                    if p.trim() != pid.to_string() {
                        return Err(c.failure(&format!("READY names pid {p}, spawned {pid}")));
                    }
                } else {
                    let ns_pid: u32 = p
                        .trim()
                        .parse()
                        .map_err(|_| c.failure(&format!("READY {p}")))?;
                    c.pid = wrapped_pid(pid, ns_pid).ok_or_else(|| {
                        c.failure(&format!(
                            "no child of wrapper {pid} has innermost NSpid {ns_pid}"
                        ))
                    })?;
                    c.ns_pid = ns_pid;
                }
                break;
            } else {
                return Err(c.failure(&format!("unexpected line before READY: {line:?}")));
            }
        }
        c.info = Info::from_lines(info);
        Ok(c)
    }

    /// The fixture's own `runtime.Stack(buf, true)`, without trailing newlines.
    pub fn stack(&mut self) -> Result<String, String> {
        let text = self.block("stack", "STACK")?;
        Ok(text.trim_end_matches('\n').to_string())
    }

    /// Sends `cmd` and returns the lines between `BEGIN <name>` and `END <name>`.
    fn block(&mut self, cmd: &str, name: &str) -> Result<String, String> {
        self.send(cmd)?;
        let (begin, end) = (format!("BEGIN {name}"), format!("END {name}"));
        let first = self.recv_line(&begin)?;
        if first != begin {
            return Err(self.failure(&format!("want {begin}, got {first:?}")));
        }
        let mut text = String::new();
        loop {
            let line = self.recv_line(&end)?;
            if line == end {
                return Ok(text);
            }
            text.push_str(&line);
            text.push('\n');
        }
    }

    /// The fixture's own goroutine profile at debug=1 (`pprof.Lookup("goroutine").WriteTo(w, 1)`).
    pub fn pprof_debug1(&mut self) -> Result<String, String> {
        self.block("pprof1", "PPROF1")
    }

    /// The fixture's runtime's goroutineleak profile at debug=2 (empty where it has none).
    pub fn leak_profile(&mut self) -> Result<String, String> {
        self.block("leakprof", "LEAKPROF")
    }

    /// `ping` → `PONG`: the fixture's main goroutine still runs.
    pub fn ping(&mut self) -> Result<(), String> {
        self.send("ping")?;
        let l = self.recv_line("PONG")?;
        if l == "PONG" {
            Ok(())
        } else {
            Err(self.failure(&format!("want PONG, got {l:?}")))
        }
    }

    /// `gc` → `GC`: the fixture ran `runtime.GC()`.
    pub fn gc(&mut self) -> Result<(), String> {
        self.send("gc")?;
        let l = self.recv_line("GC")?;
        if l == "GC" {
            Ok(())
        } else {
            Err(self.failure(&format!("want GC, got {l:?}")))
        }
    }

    /// How many SIGUSR1 the fixture has received.
    pub fn signals(&mut self) -> Result<u64, String> {
        let [n] = self.numbers("signals", "SIGNALS")?;
        Ok(n)
    }

    /// How many SIGUSR1, SIGURG and SIGCHLD the fixture has received (the last two are
    /// counted by the "signals" scenario only).
    pub fn sig_counts(&mut self) -> Result<[u64; 3], String> {
        self.numbers("sigcounts", "SIGCOUNTS")
    }

    /// `spawn` → `SPAWNED <n>`: one more goroutine parked in `main.spawnedPark`; returns n.
    pub fn spawn(&mut self) -> Result<u64, String> {
        let [n] = self.numbers("spawn", "SPAWNED")?;
        Ok(n)
    }

    /// `move` → `MOVED <n>`: the "move" scenario's goroutines parked somewhere else; returns n
    /// once all of them are (an error in another scenario, or the second time).
    pub fn move_parked(&mut self) -> Result<u64, String> {
        self.send("move")?;
        let l = self.recv_line("MOVED")?;
        match l
            .strip_prefix("MOVED ")
            .and_then(|n| n.trim().parse::<u64>().ok())
        {
            Some(n) => Ok(n),
            None => Err(self.failure(&format!("want MOVED and a count, got {l:?}"))),
        }
    }

    /// Sends `cmd` and parses the answer line `<answer> <n1> ... <nN>`.
    fn numbers<const N: usize>(&mut self, cmd: &str, answer: &str) -> Result<[u64; N], String> {
        self.send(cmd)?;
        let l = self.recv_line(answer)?;
        let parsed: Option<Vec<u64>> = l
            .strip_prefix(answer)
            .filter(|r| r.starts_with(' '))
            .and_then(|r| r.split_whitespace().map(|w| w.parse().ok()).collect());
        parsed
            .and_then(|v| <[u64; N]>::try_from(v).ok())
            .ok_or_else(|| self.failure(&format!("want {answer} and {N} numbers, got {l:?}")))
    }

    /// Sends SIGQUIT and waits (at most [`TIMEOUT`]) for the fixture to exit, which the
    /// runtime does after printing its traceback (at the GOTRACEBACK level the fixture was
    /// started with, [`Child::start_env`]); returns everything the fixture wrote to stderr.
    pub fn sigquit(&mut self) -> Result<String, String> {
        // SAFETY: kill(2) on the pid of our own child, not reaped yet (reaping needs &mut self).
        if unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) } != 0 {
            return Err(self.failure(&format!("SIGQUIT: {}", std::io::Error::last_os_error())));
        }
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    return Err(self.failure(&format!("still running {TIMEOUT:?} after SIGQUIT")));
                }
                Err(e) => return Err(self.failure(&format!("wait: {e}"))),
            }
        };
        if status.success() {
            return Err(self.failure(&format!("exited with {status} after SIGQUIT")));
        }
        // The process is gone: the reader sees the end of the pipe and stops.
        if let Some(t) = self.stderr_reader.take() {
            let _ = t.join();
        }
        Ok(self.stderr())
    }

    /// What the fixture wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn send(&mut self, cmd: &str) -> Result<(), String> {
        let r = match self.stdin.as_mut() {
            Some(w) => w
                .write_all(format!("{cmd}\n").as_bytes())
                .and_then(|_| w.flush()),
            None => return Err(self.failure("stdin already closed")),
        };
        r.map_err(|e| self.failure(&format!("sending {cmd:?}: {e}")))
    }

    fn recv_line(&mut self, waiting_for: &str) -> Result<String, String> {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => {
                Err(self.failure(&format!("no {waiting_for} within {TIMEOUT:?}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                // The fixture closed stdout: it is exiting. Say how, if it is done within a second.
                let deadline = Instant::now() + Duration::from_secs(1);
                let status = loop {
                    match self.child.try_wait() {
                        Ok(Some(s)) => break s.to_string(),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        _ => break "still running".to_string(),
                    }
                };
                Err(self.failure(&format!(
                    "stdout closed waiting for {waiting_for} ({status})"
                )))
            }
        }
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "fixture {} (pid {}): {what}\nfixture stderr:\n{}",
            self.scenario,
            self.pid,
            self.stderr()
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(mut w) = self.stdin.take() {
            let _ = w.write_all(b"quit\n");
            let _ = w.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
        // Still there (or wedged, e.g. left stopped): SIGKILL our own child (the fixture, or
        // its wrapper, which takes the fixture with it) by pid, then reap.
        // SAFETY: kill(2) on the pid of our own child, which is not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
/// The lines of `r` (a child's stdout), read by a thread, as they come.
pub fn line_channel(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Everything `r` gives until its end, as text, gathered by a thread (join it to have all).
pub fn collect_text(
    mut r: impl Read + Send + 'static,
) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (text, reader)
}

/// The child of `parent` whose innermost `NSpid` (its pid in its own namespace) is `ns_pid`.
fn wrapped_pid(parent: u32, ns_pid: u32) -> Option<u32> {
    let kids = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    kids.split_whitespace()
        .filter_map(|k| k.parse().ok())
        .find(|&k: &u32| {
            std::fs::read_to_string(format!("/proc/{k}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("NSpid:"))
                        .map(str::to_string)
                })
                .and_then(|v| v.split_whitespace().last().and_then(|p| p.parse().ok()))
                == Some(ns_pid)
        })
}

/// The `State:` line of /proc/PID/status, e.g. "S (sleeping)".
pub fn proc_state(pid: u32) -> Result<String, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .map(|s| s.trim().to_string())
        .ok_or_else(|| format!("/proc/{pid}/status has no State line"))
}

/// Ok if the process and all its threads are neither stopped (`T`) nor traced (`t`).
pub fn check_running(pid: u32) -> Result<(), String> {
    let state = proc_state(pid)?;
    if state.starts_with('T') || state.starts_with('t') {
        return Err(format!("pid {pid} left stopped: State {state}"));
    }
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let tid = t.file_name().to_string_lossy().into_owned();
            let Ok(s) = std::fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            if let Some(st) = s.lines().find_map(|l| l.strip_prefix("State:")) {
                let st = st.trim();
                if st.starts_with('T') || st.starts_with('t') {
                    return Err(format!("pid {pid} thread {tid} left stopped: State {st}"));
                }
            }
            if let Some(tp) = s.lines().find_map(|l| l.strip_prefix("TracerPid:"))
                && tp.trim() != "0"
            {
                return Err(format!(
                    "pid {pid} thread {tid} still traced by {}",
                    tp.trim()
                ));
            }
        }
    }
    Ok(())
}

/// Panics unless `check_running(pid)` is Ok.
pub fn assert_running(pid: u32) {
    if let Err(e) = check_running(pid) {
        panic!("{e}");
    }
}
