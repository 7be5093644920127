//! `goroscope attach`: the session through its batch mode (commands on a pipe, read back line by
//! line) and through a real pseudo-terminal (the line editor, Ctrl-C at the prompt, a closed
//! terminal). What the session prints about goroutines is compared with the fixture's own
//! `runtime.Stack` of the same moment: ids, states, frames. `--hold` must keep every thread of
//! the target in a tracing stop (`t`) until the session ends and not a moment after, and a
//! signal sent to the held target must be delivered once it is released.
//!
//! The fixture is built by the newest installed toolchain (default build); the start locations
//! are checked with every toolchain, default and stripped builds. Every process a test
//! starts is killed by its pid and reaped by a guard, also when the test fails.

use crate::support;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support::{Child, Flavor, Guard, Traceback, poll, thread_states, toolchains, wait_frozen};

/// A command whose output, `[0 goroutines]`, ends every answer.
const END: &str = "goroutines -with state end-of-answer";

/// How long one answer of the session may take.
const TIMEOUT: Duration = Duration::from_secs(60);

fn start_fixture(scenario: &str) -> Child {
    let exe = support::build_fixture(&toolchains::newest(), Flavor::Default)
        .unwrap_or_else(|e| panic!("{e}"));
    Child::start(&exe, scenario).unwrap_or_else(|e| panic!("{e}"))
}

/// A batch session on a pipe: commands are written to its stdin, its stdout read line by line.
struct Session {
    guard: Guard,
    stdin: Option<std::process::ChildStdin>,
    lines: Receiver<String>,
}

impl Session {
    fn start(pid: u32, extra: &[&str]) -> Session {
        Session::start_env(pid, extra, &[])
    }

    /// [`Session::start`] with environment variables.
    fn start_env(pid: u32, extra: &[&str], env: &[(&str, &str)]) -> Session {
        let mut cmd = Command::new(support::goroscope_bin());
        cmd.args(["attach", "--batch", "-"])
            .args(extra)
            .arg(pid.to_string());
        cmd.envs(env.iter().copied());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut guard = Guard::spawn(&mut cmd, None);
        let stdin = guard.child().stdin.take();
        let stdout = guard.child().stdout.take().unwrap();
        Session {
            guard,
            stdin,
            lines: support::line_channel(stdout),
        }
    }

    /// Sends one command and returns its output. A second command that lists no goroutine
    /// (`[0 goroutines]`) marks where the output ends.
    fn ask(&mut self, cmd: &str) -> Vec<String> {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(format!("{cmd}\n{END}\n").as_bytes())
            .and_then(|_| w.flush())
            .expect("write to the session");
        let mut out = Vec::new();
        loop {
            match self.lines.recv_timeout(TIMEOUT) {
                Ok(l) if l == "[0 goroutines]" => return out,
                Ok(l) => out.push(l),
                Err(e) => panic!(
                    "no end of the output of {cmd:?} ({e}); so far:\n{}",
                    out.join("\n")
                ),
            }
        }
    }

    /// Sends `quit` and waits for the exit.
    fn quit(&mut self) -> std::process::ExitStatus {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(b"quit\n")
            .and_then(|_| w.flush())
            .expect("write to the session");
        self.guard
            .wait(TIMEOUT)
            .expect("the session exits after quit")
    }
}

/// A whole batch session: `script` on its stdin, then its exit status, stdout and stderr.
fn batch(args: &[&str], script: &str) -> (std::process::ExitStatus, String, String) {
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["attach", "--batch", "-"]).args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = Guard::spawn(&mut cmd, None);
    guard
        .child()
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (o, e) = (
        read(Box::new(guard.child().stdout.take().unwrap())),
        read(Box::new(guard.child().stderr.take().unwrap())),
    );
    let status = guard
        .wait(TIMEOUT)
        .expect("the batch session ends at the end of its input");
    (status, o.join().unwrap(), e.join().unwrap())
}

/// The lines that end a `goroutines` listing: how many runtime goroutines it hides, the count.
fn is_count(l: &str) -> bool {
    (l.starts_with('[') && l.ends_with(" goroutines]"))
        || (l.starts_with('(') && l.contains(" hidden, as Go's traceback hides them: "))
}

/// `Goroutine N - User: file:line func (0xpc) [state]` → (N, file:line, func, state).
fn parse_grs_line(l: &str) -> Option<(u64, String, String, String)> {
    let rest = l.get(2..)?.strip_prefix("Goroutine ")?;
    let (id, rest) = rest.split_once(" - User: ")?;
    let (loc, rest) = rest.split_once(' ')?;
    let (func, rest) = rest.split_once(" (")?;
    let state = rest.rsplit_once('[')?.1.strip_suffix(']')?;
    Some((
        id.parse().ok()?,
        loc.to_string(),
        func.to_string(),
        state.to_string(),
    ))
}

/// bt lines → (function, file:line) per frame.
fn parse_bt(lines: &[String]) -> Vec<(String, String)> {
    let mut frames = Vec::new();
    let mut it = lines.iter();
    while let Some(l) = it.next() {
        let Some((_, func)) = l.split_once(" in ") else {
            continue;
        };
        let at = it
            .next()
            .and_then(|a| a.trim().strip_prefix("at "))
            .unwrap_or_else(|| panic!("no `at` after {l:?}"));
        frames.push((func.to_string(), at.to_string()));
    }
    frames
}

/// The oracle's goroutine with a frame of `func`.
fn oracle_with<'t>(tb: &'t Traceback, func: &str) -> &'t support::Goroutine {
    tb.goroutines
        .iter()
        .find(|g| g.has_frame(func))
        .unwrap_or_else(|| panic!("no goroutine in {func} in the runtime's dump"))
}

#[test]
fn batch_lists_selects_and_walks_frames_as_the_runtime_sees_them() {
    let mut fx = start_fixture("chan");
    let mut s = Session::start(fx.pid, &["-q"]);
    let grs = s.ask("grs");
    let oracle = support::parse(&fx.stack().unwrap());

    // The same goroutines, and every parked one in the state the runtime prints.
    let listed: Vec<(u64, String, String, String)> = grs
        .iter()
        .filter(|l| !is_count(l))
        .map(|l| parse_grs_line(l).unwrap_or_else(|| panic!("not a grs line: {l:?}")))
        .collect();
    let mut ids: Vec<u64> = listed.iter().map(|g| g.0).collect();
    let mut want: Vec<u64> = oracle.goroutines.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(
        ids,
        want,
        "goroutine ids of grs and of runtime.Stack\n{}",
        grs.join("\n")
    );
    assert_eq!(grs.last().unwrap(), &format!("[{} goroutines]", want.len()));
    for g in oracle
        .goroutines
        .iter()
        .filter(|g| g.is_parked() && g.id != 1)
    {
        let l = listed.iter().find(|x| x.0 == g.id).unwrap();
        assert_eq!(l.3, g.state, "state of goroutine {}", g.id);
        // delve's user location: the first frame not inside the runtime.
        let top_user = g
            .frames
            .iter()
            .find(|f| !goroscope::snapshot::is_runtime_internal(&f.func))
            .unwrap();
        assert_eq!(
            (l.1.clone(), l.2.clone()),
            (
                format!("{}:{}", top_user.file, top_user.line),
                top_user.func.clone()
            )
        );
    }
    assert!(
        grs[0].starts_with("* Goroutine 1 - "),
        "goroutine 1 is selected first: {}",
        grs[0]
    );

    // Select the receiver and walk its frames.
    let g = oracle_with(&oracle, "main.chanRecvBlocked");
    assert_eq!(
        s.ask(&format!("gr {}", g.id)),
        vec![format!("Switched from 1 to {}", g.id)]
    );
    let bt = s.ask("bt");
    let frames = parse_bt(&bt);
    assert_eq!(
        frames.last().map(|f| f.0.as_str()),
        Some("runtime.goexit"),
        "{bt:?}"
    );
    // The runtime's frames are goroscope's in order, and what it hides is the runtime's own.
    let oracle_frames: Vec<(String, String)> = g
        .frames
        .iter()
        .map(|f| (f.func.clone(), format!("{}:{}", f.file, f.line)))
        .collect();
    let shared: Vec<(String, String)> = frames
        .iter()
        .filter(|f| oracle_frames.contains(f))
        .cloned()
        .collect();
    assert_eq!(shared, oracle_frames, "bt:\n{}", bt.join("\n"));
    // What the traceback hides: runtime frames, and the wrapper a `go` statement compiles to.
    for f in frames.iter().filter(|f| !oracle_frames.contains(f)) {
        assert!(
            f.0.starts_with("runtime.")
                || f.0
                    .rsplit('.')
                    .next()
                    .is_some_and(|l| l.starts_with("gowrap")),
            "bt shows {f:?}, which the runtime's traceback neither shows nor hides"
        );
    }
    let user = frames
        .iter()
        .position(|f| f.0 == "main.chanRecvBlocked")
        .unwrap();
    assert!(user > 0, "runtime frames above the user frame: {frames:?}");

    // frame N prints that frame and its source with `=>` on its line.
    let out = s.ask(&format!("frame {user}"));
    let (file, line) = frames[user].1.rsplit_once(':').unwrap();
    assert!(
        out[1].starts_with(&format!("Frame {user}: {} (PC: ", frames[user].1)),
        "{out:?}"
    );
    let text = std::fs::read_to_string(file).unwrap();
    let src = text
        .lines()
        .nth(line.parse::<usize>().unwrap() - 1)
        .unwrap();
    assert!(out.contains(&format!("=>{line:>4}:\t{src}")), "{out:?}");
    assert!(
        out[0].starts_with(&format!("> {}() ", frames[0].0)),
        "{out:?}"
    );
    let up = s.ask("up");
    assert!(
        up[1].starts_with(&format!("Frame {}: {}", user + 1, frames[user + 1].1)),
        "{up:?}"
    );
    let down = s.ask("down 2");
    assert!(
        down[1].starts_with(&format!("Frame {}: {}", user - 1, frames[user - 1].1)),
        "{down:?}"
    );

    // `goroutine` describes the selection; a one-shot `gr 1 bt` keeps it.
    let info = s.ask("goroutine");
    assert_eq!(info[0], format!("Goroutine {}:", g.id));
    assert_eq!(info.last().unwrap(), &format!("\tState: {}", g.state));
    let created = g.created_by.as_ref().unwrap();
    let go = format!("\tGo: {}:{} {} (", created.file, created.line, created.func);
    assert!(info.iter().any(|l| l.starts_with(&go)), "{info:?}");
    let one = s.ask("gr 1 bt 1");
    assert!(one.len() == 5 && one[4] == "(truncated)", "{one:?}");
    assert!(
        s.ask("grs -with state chan receive")
            .iter()
            .any(|l| l.starts_with(&format!("* Goroutine {} ", g.id)))
    );

    assert!(s.quit().success());
    support::assert_running(fx.pid);
    fx.ping().unwrap();
}

#[test]
fn refresh_sees_what_changed_and_diff_says_so() {
    let mut fx = start_fixture("chan");
    let mut s = Session::start(fx.pid, &["-q"]);
    let before = s.ask("grs");
    assert!(!before.iter().any(|l| l.contains("main.spawnedPark")));
    fx.spawn().unwrap();
    let oracle = support::parse(&fx.stack().unwrap());
    let new = oracle_with(&oracle, "main.spawnedPark");
    s.ask("refresh");
    let after = s.ask("grs -with userloc spawnedPark");
    let (id, loc, func, state) = parse_grs_line(&after[0]).unwrap();
    let f = new
        .frames
        .iter()
        .find(|f| f.func == "main.spawnedPark")
        .unwrap();
    assert_eq!(
        (id, loc, func, state),
        (
            new.id,
            format!("{}:{}", f.file, f.line),
            f.func.clone(),
            new.state.clone()
        )
    );
    assert_eq!(after.last().unwrap(), "[1 goroutines]");
    let diff = s.ask("diff");
    assert!(
        diff.contains(&format!("+1 appeared (0 -> 1) [{}]", new.state)),
        "{diff:?}"
    );
    assert!(s.quit().success());
    support::assert_running(fx.pid);
}

#[test]
fn hold_keeps_the_target_stopped_until_quit_and_delivers_its_signals() {
    let mut fx = start_fixture("chan");
    let before = fx.signals().unwrap();
    let mut s = Session::start(fx.pid, &["-q", "--hold"]);
    s.ask("grs");
    wait_frozen(fx.pid);
    // A signal sent while held waits in the kernel (a second SIGUSR1 would merge with it:
    // standard signals do not queue).
    // SAFETY: kill(2) on our own child fixture, which is alive (it answered above).
    assert_eq!(unsafe { libc::kill(fx.pid as i32, libc::SIGUSR1) }, 0);
    // Still held after more commands and a while.
    s.ask("bt");
    std::thread::sleep(Duration::from_millis(200));
    let states = thread_states(fx.pid);
    assert!(
        !states.is_empty() && states.iter().all(|&(_, c)| c == 't'),
        "held: {states:?}"
    );
    let status = s.quit();
    assert!(status.success(), "{status:?}");
    support::assert_running(fx.pid);
    poll(Duration::from_secs(10), || match fx.signals() {
        Ok(n) if n == before + 1 => Ok(()),
        Ok(n) => Err(format!("{n} signals, want {}", before + 1)),
        Err(e) => Err(e),
    })
    .unwrap();
}

/// goroscope on a new pseudo-terminal, as its session leader (the terminal is its controlling
/// terminal, so closing it sends SIGHUP), keeping its history under `state` (never the user's).
struct Pty {
    master: Option<OwnedFd>,
    guard: Guard,
    seen: Vec<u8>,
}

impl Pty {
    fn start(args: &[&str], state: &Path) -> Pty {
        // Both sides close-on-exec from the start: a process spawned meanwhile by another test
        // thread must not keep the terminal open.
        let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r/open on descriptors and buffers we own.
        let (master, slave) = unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0, "{}", err("posix_openpt"));
            let master = OwnedFd::from_raw_fd(m);
            assert!(
                libc::grantpt(m) == 0 && libc::unlockpt(m) == 0,
                "{}",
                err("grantpt/unlockpt")
            );
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(
                libc::ptsname_r(m, name.as_mut_ptr(), name.len()),
                0,
                "{}",
                err("ptsname_r")
            );
            let s = libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            );
            assert!(s >= 0, "{}", err("open the terminal"));
            let ws = libc::winsize {
                ws_row: 40,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(s, libc::TIOCSWINSZ, &ws);
            (master, OwnedFd::from_raw_fd(s))
        };
        let mut cmd = Command::new(support::goroscope_bin());
        cmd.args(args)
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .env("XDG_STATE_HOME", state);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; the child makes the terminal (its
        // stdin) its controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let guard = Guard::spawn(&mut cmd, None);
        drop(cmd);
        Pty {
            master: Some(master),
            guard,
            seen: Vec::new(),
        }
    }

    fn type_(&mut self, s: &str) {
        let fd = self.master.as_ref().unwrap().as_raw_fd();
        // SAFETY: writes from a live buffer to our descriptor.
        let n = unsafe { libc::write(fd, s.as_ptr().cast(), s.len()) };
        assert_eq!(n, s.len() as isize, "write to the terminal");
    }

    /// Reads until the output since the last call contains `want`; returns that output.
    fn expect(&mut self, want: &str) -> String {
        let fd = self.master.as_ref().unwrap().as_raw_fd();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = String::from_utf8_lossy(&self.seen).into_owned();
            if let Some(i) = text.find(want) {
                self.seen.drain(..i + want.len());
                return text[..i + want.len()].to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} on the terminal; got:\n{text}"
            );
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one descriptor we own.
            if unsafe { libc::poll(&mut p, 1, 100) } > 0 {
                let mut buf = [0u8; 4096];
                // SAFETY: reads into a live buffer.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                assert!(
                    n > 0,
                    "terminal closed while waiting for {want:?}; got:\n{text}"
                );
                self.seen.extend_from_slice(&buf[..n as usize]);
            }
        }
    }

    /// Closes the terminal (the last descriptor of its master side): the kernel hangs it up.
    fn hang_up(&mut self) {
        self.master = None;
    }
}

#[test]
fn terminal_prompt_ctrl_c_and_exit() {
    let fx = start_fixture("chan");
    let pid = fx.pid.to_string();
    let state = support::TempDir::new("pty-prompt");
    let mut t = Pty::start(&["attach", &pid], &state.0);
    t.expect("(goroscope) ");
    t.type_("grs\r");
    let out = t.expect("goroutines]");
    assert!(
        out.contains("Goroutine 1 - User: ") && out.contains("\x1b["),
        "coloured on a terminal: {out:?}"
    );
    t.expect("(goroscope) ");
    // Ctrl-C at the prompt cancels the line and nothing else.
    t.type_("bogus words");
    t.type_("\x03");
    t.expect("(goroscope) ");
    support::assert_running(fx.pid);
    // Completion: the common prefix of goroutine/goroutines, then both listed.
    t.type_("gorout\t");
    t.expect("goroutine");
    t.type_("\t");
    t.expect("goroutines");
    t.type_("\x15help\r"); // Ctrl-U clears what completion left
    let help = t.expect("Type help followed by a command");
    assert!(
        help.contains("goroutines (alias: grs)") && !help.contains("Command failed"),
        "{help:?}"
    );
    t.expect("(goroscope) ");
    // An empty line repeats the last command, as in delve.
    t.type_("\r");
    let again = t.expect("Type help followed by a command");
    assert!(
        again.contains("goroutines (alias: grs)") && !again.contains("Command failed"),
        "{again:?}"
    );
    t.type_("exit\r");
    let st = t.guard.wait(TIMEOUT).expect("goroscope exits after exit");
    assert!(st.success(), "{st:?}");
    support::assert_running(fx.pid);
}

#[test]
fn history_is_recalled_in_the_next_session_and_tab_completes_flags_and_keys() {
    use std::os::unix::fs::PermissionsExt;
    let fx = start_fixture("chan");
    let pid = fx.pid.to_string();
    let state = support::TempDir::new("pty-history");
    let mut t = Pty::start(&["attach", &pid], &state.0);
    t.expect("(goroscope) ");
    // Flags of a command, then the keys of -group and -with.
    t.type_("stack -f\t");
    t.expect("-full");
    t.type_("\x15goroutines -gr\t");
    t.expect("-group");
    t.type_(" curl\t");
    t.expect("curloc");
    t.type_(" -wi\t");
    t.expect("-with");
    t.type_(" runn\t");
    t.expect("running");
    t.type_("\r");
    let out = t.expect("(goroscope) ");
    assert!(
        out.contains("goroutines]") && !out.contains("Command failed"),
        "{out:?}"
    );
    t.type_("threads\r");
    t.expect("(goroscope) ");
    t.type_("exit\r");
    assert!(
        t.guard
            .wait(TIMEOUT)
            .expect("goroscope exits after exit")
            .success()
    );
    let file = state.0.join("goroscope/history");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        (mode(&state.0.join("goroscope")), mode(&file)),
        (0o700, 0o600)
    );
    // The next session recalls the last commands with Up, newest first.
    let mut t = Pty::start(&["attach", &pid], &state.0);
    t.expect("(goroscope) ");
    t.type_("\x1b[A");
    t.expect("exit");
    t.type_("\x1b[A");
    t.expect("threads");
    t.type_("\x1b[A");
    t.expect("goroutines -group curloc -with running");
    t.type_("\x15exit\r");
    assert!(
        t.guard
            .wait(TIMEOUT)
            .expect("goroscope exits after exit")
            .success()
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        saved.lines().collect::<Vec<_>>(),
        ["goroutines -group curloc -with running", "threads", "exit"],
        "{saved:?}"
    );
    // A batch does not write it.
    let mut b = Session::start_env(
        fx.pid,
        &[],
        &[("XDG_STATE_HOME", state.0.to_str().unwrap())],
    );
    b.ask("grs");
    assert!(b.quit().success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), saved);
    support::assert_running(fx.pid);
}

#[test]
fn closed_terminal_releases_a_held_target() {
    let mut fx = start_fixture("chan");
    let pid = fx.pid.to_string();
    let state = support::TempDir::new("pty-hangup");
    let mut t = Pty::start(&["attach", "--hold", &pid], &state.0);
    t.expect("(goroscope held ");
    wait_frozen(fx.pid);
    t.type_("bt\r");
    t.expect("runtime.goexit");
    // Ctrl-C at the prompt does not release the target.
    t.type_("\x03");
    t.expect("(goroscope held ");
    assert!(
        thread_states(fx.pid).iter().all(|&(_, c)| c == 't'),
        "still held after Ctrl-C"
    );
    t.hang_up();
    let st = t
        .guard
        .wait(TIMEOUT)
        .expect("goroscope exits when its terminal is closed");
    assert!(
        st.code() == Some(128 + libc::SIGHUP) || st.signal() == Some(libc::SIGHUP),
        "{st:?}"
    );
    // Its history is kept on this way out too.
    assert_eq!(
        std::fs::read_to_string(state.0.join("goroscope/history")).unwrap(),
        "bt\n"
    );
    support::assert_running(fx.pid);
    fx.ping().unwrap();
}

/// The frames of the runtime's goroutine that `bt` also shows, by `(function, file:line)`
/// (`bt` names functions by their symbols, the traceback by their print names): the indices
/// into `bt`'s frames, in order.
fn shared_frames(g: &support::Goroutine, bt: &[(String, String)]) -> Vec<usize> {
    use goroscope::unwind::symbolize::print_name;
    let mut at = 0;
    g.frames
        .iter()
        .map(|f| {
            let key = (f.func.clone(), format!("{}:{}", f.file, f.line));
            let i = at
                + bt[at..]
                    .iter()
                    .position(|b| print_name(&b.0) == key.0 && b.1 == key.1)
                    .unwrap_or_else(|| panic!("bt lacks {key:?}: {bt:?}"));
            at = i + 1;
            i
        })
        .collect()
}

/// `stack N` prints frames 0 to N, as delve does, and `(truncated)` when there are more; a
/// goroutine selected by a one-shot `frame N gr ID` is at its frame 0, whatever N was.
#[test]
fn stack_depth_and_a_goroutine_chosen_inside_frame() {
    let fx = start_fixture("chan");
    let mut s = Session::start(fx.pid, &["-q"]);
    let ids: Vec<u64> = s
        .ask("grs")
        .iter()
        .filter(|l| !is_count(l))
        .filter_map(|l| parse_grs_line(l))
        .map(|g| g.0)
        .collect();
    let stacks: Vec<(u64, Vec<(String, String)>)> = ids
        .iter()
        .map(|id| (*id, parse_bt(&s.ask(&format!("gr {id} bt 1000")))))
        .collect();
    let (deep, deep_frames) = stacks.iter().max_by_key(|g| g.1.len()).unwrap();
    let (shallow, shallow_frames) = stacks.iter().min_by_key(|g| g.1.len()).unwrap();
    assert!(
        shallow_frames.len() < deep_frames.len() && !shallow_frames.is_empty(),
        "{stacks:?}"
    );

    for depth in [0, 2, deep_frames.len() - 1] {
        let out = s.ask(&format!("gr {deep} bt {depth}"));
        let want: Vec<(String, String)> = deep_frames[..=depth].to_vec();
        assert_eq!(parse_bt(&out), want, "bt {depth}:\n{}", out.join("\n"));
        assert_eq!(
            out.last().unwrap() == "(truncated)",
            depth + 1 < deep_frames.len(),
            "bt {depth}:\n{}",
            out.join("\n")
        );
    }

    // The deep goroutine at a frame the shallow one does not have, then the shallow one chosen.
    let k = shallow_frames.len();
    s.ask(&format!("gr {deep}"));
    assert!(
        s.ask(&format!("frame {k}"))[1].starts_with(&format!("Frame {k}: {} ", deep_frames[k].1))
    );
    s.ask(&format!("frame {k} gr {shallow}"));
    let list = s.ask("list");
    let top = &shallow_frames[0];
    assert!(
        list[0].starts_with(&format!("> {}() {} (PC: ", top.0, top.1)),
        "{list:?}"
    );
    assert_eq!(s.ask("goroutine")[0], format!("Goroutine {shallow}:"));
    assert!(s.quit().success());
    support::assert_running(fx.pid);
}

/// The banner, `goroutines` (under every naming) and `goroutine N` agree on how many goroutines
/// there are and which are the runtime's: the ones shown are those of the runtime's own
/// `runtime.Stack`, the hidden ones are said to be, and `goroutines -without user` lists them.
#[test]
fn counts_agree_and_runtime_goroutines_are_named_as_hidden() {
    let mut fx = start_fixture("chan");
    let (status, stdout, stderr) = batch(
        &[&fx.pid.to_string()],
        "grs\ngrs -r\ngrs -s\ngrs -without user\n",
    );
    let oracle = support::parse(&fx.stack().unwrap());
    assert!(status.success(), "{stderr}");
    let listings: Vec<Vec<&str>> = stdout
        .split_inclusive(" goroutines]\n")
        .map(|l| l.lines().collect())
        .collect();
    assert_eq!(listings.len(), 4, "{stdout}");
    let runtime = listings[3].len() - 1;
    assert!(runtime > 0, "{stdout}");
    let note = format!(
        "({runtime} runtime goroutines hidden, as Go's traceback hides them: `goroutines -without user` lists them)"
    );
    for l in &listings[..3] {
        assert_eq!(l[l.len() - 2], note, "{stdout}");
        assert_eq!(
            l[l.len() - 1],
            format!("[{} goroutines]", oracle.goroutines.len()),
            "{stdout}"
        );
    }
    let total = oracle.goroutines.len() + runtime;
    let banner = stderr.lines().next().unwrap();
    let want = format!("goroscope: {total} goroutines, ");
    assert!(
        banner.starts_with(&want),
        "{banner:?} does not start with {want:?}"
    );
    let of_them = format!(
        " ({runtime} of them the runtime's, hidden by `goroutines` as by Go's traceback; `goroutines -without user` lists them)"
    );
    assert!(
        banner.ends_with(&of_them),
        "{banner:?} does not end with {of_them:?}"
    );

    // A runtime goroutine (one the runtime's traceback leaves out) is selected and named so.
    let mut s = Session::start(fx.pid, &["-q"]);
    let id = listings[3][0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(oracle.goroutines.iter().all(|g| g.id != id));
    let sel = s.ask(&format!("gr {id}"));
    assert_eq!(
        sel.last().unwrap(),
        &format!(
            "goroutine {id} is a runtime goroutine (hidden by `goroutines`; `goroutines -without user` lists them)"
        ),
        "{sel:?}"
    );
    assert_eq!(s.ask("goroutine")[0], format!("Goroutine {id}:"));
    assert!(s.quit().success());
    support::assert_running(fx.pid);
}

/// delve's commands that goroscope does not have fail with one line saying why and what to use
/// instead; `help CMD` prints the same line.
#[test]
fn delve_commands_goroscope_lacks_say_why() {
    let fx = start_fixture("chan");
    let words = [
        "break", "continue", "step", "next", "vars", "whatis", "x", "restart",
    ];
    let script: String = words
        .iter()
        .map(|w| format!("{w} main.main\nhelp {w}\n"))
        .collect();
    let (status, stdout, stderr) = batch(&["-q", &fx.pid.to_string()], &script);
    assert!(
        !status.success(),
        "every delve command failed, so the batch fails"
    );
    let helps: Vec<&str> = stdout.lines().collect();
    let fails: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("Command failed: "))
        .collect();
    assert_eq!(
        (helps.len(), fails.len()),
        (words.len(), words.len()),
        "{stdout}\n{stderr}"
    );
    for ((w, help), fail) in words.iter().zip(&helps).zip(&fails) {
        assert_eq!(help, fail);
        assert!(
            help.starts_with(&format!(
                "\"{w}\" is a delve command goroscope does not have: "
            )),
            "{help}"
        );
        let instead = match *w {
            "vars" | "whatis" | "x" => "`args`, `locals` and `print EXPR`",
            "break" => "--hold",
            _ => "`refresh`",
        };
        assert!(help.contains(instead), "{help}");
    }
    assert!(
        stderr.contains(&format!(
            "{} of {} commands failed",
            words.len(),
            2 * words.len()
        )),
        "{stderr}"
    );
    support::assert_running(fx.pid);
}

/// `-with`/`-without` on a location keep what contains the text, as delve does: a method's
/// `(*T)` and a generic's `[...]` are plain text; `re:` takes a regular expression. The
/// goroutines kept are those whose user frame the runtime's own traceback names so.
#[test]
fn with_and_without_match_location_text() {
    let mut fx = start_fixture("shapes");
    let mut s = Session::start(fx.pid, &["-q"]);
    let oracle = support::parse(&fx.stack().unwrap());
    let ids = |lines: &[String]| -> Vec<u64> {
        let mut v: Vec<u64> = lines
            .iter()
            .filter(|l| !is_count(l))
            .map(|l| {
                parse_grs_line(l)
                    .unwrap_or_else(|| panic!("not a grs line: {l:?}"))
                    .0
            })
            .collect();
        v.sort_unstable();
        v
    };
    // The runtime's user frame: the first one not inside the runtime.
    let user_frame_is = |p: &dyn Fn(&str) -> bool| -> Vec<u64> {
        let mut v: Vec<u64> = oracle
            .goroutines
            .iter()
            .filter(|g| {
                g.frames
                    .iter()
                    .find(|f| !goroscope::snapshot::is_runtime_internal(&f.func))
                    .is_some_and(|f| p(&f.func))
            })
            .map(|g| g.id)
            .collect();
        v.sort_unstable();
        v
    };
    let all = ids(&s.ask("grs"));

    let method = user_frame_is(&|f| f == "main.(*shapesWorker).waitPtr");
    assert!(
        !method.is_empty(),
        "the shapes scenario parks goroutines in waitPtr"
    );
    assert_eq!(
        ids(&s.ask("grs -with userloc main.(*shapesWorker).waitPtr")),
        method
    );

    let generic = user_frame_is(&|f| f.starts_with("main.shapesGeneric["));
    assert!(
        !generic.is_empty(),
        "the shapes scenario parks goroutines in shapesGeneric"
    );
    assert_eq!(
        ids(&s.ask("grs -with userloc in main.shapesGeneric[")),
        generic
    );
    assert_eq!(
        ids(&s.ask(r"grs -with userloc re:in main\.shapesGeneric\[")),
        generic
    );
    let without = ids(&s.ask("grs -without userloc main.shapesGeneric["));
    assert_eq!(
        without.len() + generic.len(),
        all.len(),
        "{without:?} {generic:?} {all:?}"
    );
    assert!(without.iter().all(|i| !generic.contains(i)));
    assert!(
        s.ask("grs -with userloc re:main.(").is_empty(),
        "a bad regular expression fails the command"
    );
    assert!(!s.quit().success(), "the failed command fails the batch");
}

/// `stack -full` prints each frame's arguments as the runtime's traceback prints them: the
/// same words and `?`, `(none)` for `()`, `(inlined)` for `(...)`. (Goroutines whose
/// traceback elides frames are left out: the frames after the elision can't be told apart.)
#[test]
fn stack_full_shows_the_runtimes_arguments() {
    let mut fx = start_fixture("all");
    let mut s = Session::start(fx.pid, &["-q"]);
    let oracle = support::parse(&fx.stack().unwrap());
    let mut checked = 0;
    for g in oracle
        .goroutines
        .iter()
        .filter(|g| g.is_parked() && g.id != oracle.goroutines[0].id && g.elided.is_empty())
    {
        let out = s.ask(&format!("gr {} bt 1000 -full", g.id));
        let frames = parse_bt(
            &out.iter()
                .filter(|l| !l.trim_start().starts_with("args: "))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let args: Vec<&str> = out
            .iter()
            .filter_map(|l| l.trim_start().strip_prefix("args: "))
            .collect();
        assert_eq!(
            args.len(),
            frames.len(),
            "an args line a frame:\n{}",
            out.join("\n")
        );
        for (f, i) in g.frames.iter().zip(shared_frames(g, &frames)) {
            let want = match f.args.as_str() {
                "" => "(none)",
                "..." if f.offset.is_none() => "(inlined)",
                a => a,
            };
            assert_eq!(
                args[i],
                want,
                "goroutine {} frame {} ({}):\n{}\n--- runtime\n{}",
                g.id,
                i,
                f.func,
                out.join("\n"),
                g.raw
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} frames compared");
    assert!(s.quit().success());
    support::assert_running(fx.pid);
}

/// `blocked` names, under a channel, every goroutine the runtime has in a channel send,
/// receive or select, in that state, and no other; and those on a nil channel or in an empty
/// select as blocked forever.
#[test]
fn blocked_lists_the_runtimes_channel_waiters() {
    let mut fx = start_fixture("chan");
    let mut s = Session::start(fx.pid, &["-q"]);
    let out = s.ask("blocked");
    let oracle = support::parse(&fx.stack().unwrap());
    let in_state = |states: &[&str]| -> std::collections::BTreeSet<(u64, String)> {
        oracle
            .goroutines
            .iter()
            .filter(|g| states.contains(&g.state.as_str()))
            .map(|g| (g.id, g.state.clone()))
            .collect()
    };
    let want = in_state(&["chan send", "chan receive", "select"]);
    let forever: Vec<u64> = in_state(&[
        "chan send (nil chan)",
        "chan receive (nil chan)",
        "select (no cases)",
    ])
    .into_iter()
    .map(|g| g.0)
    .collect();
    let line = format!(
        "{} goroutines blocked forever (nil channel or empty select): {}",
        forever.len(),
        forever
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(
        forever.len() == 3 && out.contains(&line),
        "want {line:?}:\n{}",
        out.join("\n")
    );
    let mut got = std::collections::BTreeSet::new();
    let mut under_chan = false;
    for l in &out {
        if !l.starts_with(' ') {
            under_chan = l.starts_with("chan at 0x");
        } else if let Some((n, rest)) = l.trim().split_once(" goroutine") {
            let (state, ids) = rest
                .trim_start_matches('s')
                .trim_start()
                .strip_prefix("in ")
                .and_then(|r| r.split_once(": "))
                .unwrap_or_else(|| panic!("{l:?}"));
            let ids: Vec<u64> = ids.split(' ').map(|i| i.parse().unwrap()).collect();
            assert_eq!(ids.len(), n.parse::<usize>().unwrap(), "{l:?}");
            assert!(
                under_chan,
                "{l:?} is not under a channel:\n{}",
                out.join("\n")
            );
            got.extend(ids.into_iter().map(|i| (i, state.to_string())));
        }
    }
    assert!(
        want.len() >= 4,
        "the chan scenario blocks a sender, a receiver, a select and the signal counter: {want:?}"
    );
    assert_eq!(got, want, "blocked:\n{}", out.join("\n"));
    assert!(s.quit().success());
    support::assert_running(fx.pid);
}

/// `snapshot FILE` saves the session's snapshot: `goroscope show FILE` prints the runtime's
/// own dump of the process (every parked goroutine exactly).
#[test]
fn snapshot_saves_what_the_runtime_shows() {
    let mut fx = start_fixture("all");
    let dir = support::TempDir::new("attach-snapshot");
    let file = dir.0.join("s.gsnap");
    let mut s = Session::start(fx.pid, &["-q"]);
    assert_eq!(
        s.ask(&format!("snapshot {}", file.display())),
        vec![format!("wrote {}", file.display())]
    );
    assert!(s.quit().success());
    let shown = support::run_goroscope(
        &["show", "-q", "--format", "go", file.to_str().unwrap()],
        TIMEOUT,
    )
    .unwrap();
    assert!(shown.status.success(), "{}", shown.stderr);
    support::matches_oracle(&mut fx, &shown.stdout).unwrap_or_else(|e| panic!("{e}"));
}

/// `attach FILE` explores a snapshot file, a Go text dump or (`--core`) a core: the same
/// goroutines as the runtime's own dump, every read-only command, and `refresh` says it cannot.
#[test]
fn attach_explores_a_snapshot_file_a_text_dump_and_a_core() {
    let mut fx = start_fixture("chan");
    let dir = support::TempDir::new("attach-saved");
    let (core, gsnap, text) = (
        dir.0.join("s.core"),
        dir.0.join("s.gsnap"),
        dir.0.join("s.txt"),
    );
    let (c, g, t) = (
        core.display().to_string(),
        gsnap.display().to_string(),
        text.display().to_string(),
    );
    let made = support::run_goroscope(
        &["snapshot", &fx.pid.to_string(), "--core", &c, "-o", &g],
        TIMEOUT,
    )
    .unwrap();
    assert!(made.status.success(), "{}", made.stderr);
    let stack = fx.stack().unwrap();
    std::fs::write(&text, &stack).unwrap();
    let oracle = support::parse(&stack);
    let mut want: Vec<u64> = oracle.goroutines.iter().map(|g| g.id).collect();
    want.sort_unstable();
    let exe = support::build_fixture(&toolchains::newest(), Flavor::Default).unwrap();
    let e = exe.display().to_string();
    let recv = oracle_with(&oracle, "main.chanRecvBlocked").id;
    let script = format!("grs\ngr {recv}\nbt\ngoroutine\nrefresh\n");
    let mut listings = Vec::new();
    for (args, what) in [
        (vec![g.as_str()], format!("snapshot {g}")),
        (vec!["--core", &c, "--exe", &e], format!("core {c}")),
        (vec![t.as_str()], format!("snapshot {t}")),
    ] {
        let (status, stdout, stderr) = batch(&args, &script);
        assert!(!status.success(), "refresh fails:\n{stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("goroscope: ") && first.contains(&format!(" goroutines in {what}")),
            "{first:?}"
        );
        assert!(stderr.contains(&format!("Command failed: this session explores {what}: there is no process to take a new snapshot of")), "{stderr}");
        let lines: Vec<String> = stdout.lines().map(String::from).collect();
        let end = lines
            .iter()
            .position(|l| l.ends_with(" goroutines]"))
            .unwrap_or_else(|| panic!("{stdout}"));
        let mut ids: Vec<u64> = lines[..end]
            .iter()
            .filter(|l| !is_count(l))
            .map(|l| parse_grs_line(l).unwrap_or_else(|| panic!("{l:?}")).0)
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, want, "{what}:\n{stdout}");
        assert_eq!(
            lines[end + 1],
            format!("Switched from 1 to {recv}"),
            "{what}"
        );
        let frames = parse_bt(&lines[end + 2..]);
        let g = oracle.goroutines.iter().find(|g| g.id == recv).unwrap();
        let oracle_frames: Vec<(String, String)> = g
            .frames
            .iter()
            .map(|f| (f.func.clone(), format!("{}:{}", f.file, f.line)))
            .collect();
        let shared: Vec<(String, String)> = frames
            .iter()
            .filter(|f| oracle_frames.contains(f))
            .cloned()
            .collect();
        assert_eq!(shared, oracle_frames, "{what}:\n{stdout}");
        assert!(
            lines.contains(&format!("Goroutine {recv}:")),
            "{what}:\n{stdout}"
        );
        listings.push(lines[..end].to_vec());
    }
    assert_eq!(
        listings[0], listings[1],
        "the snapshot and the core of the same moment"
    );
    support::assert_running(fx.pid);
}

/// A saved session reads source files only under `--sources DIR` (the paths a snapshot names
/// are another machine's), and there as the user: `list` without it refuses in one line, with
/// `--sources /` it shows the file at the path the runtime names.
#[test]
fn saved_session_lists_sources_only_under_sources() {
    let mut fx = start_fixture("chan");
    let dir = support::TempDir::new("attach-sources");
    let gsnap = dir.0.join("s.gsnap");
    let g = gsnap.display().to_string();
    let made = support::run_goroscope(&["snapshot", "-q", &fx.pid.to_string(), "-o", &g], TIMEOUT)
        .unwrap();
    assert!(made.status.success(), "{}", made.stderr);
    let oracle = support::parse(&fx.stack().unwrap());
    let recv = oracle_with(&oracle, "main.chanRecvBlocked");
    let user = recv
        .frames
        .iter()
        .position(|f| f.func == "main.chanRecvBlocked")
        .unwrap();
    let f = &recv.frames[user];
    let script = format!("list {}:{}\n", f.file, f.line);
    let (status, stdout, stderr) = batch(&[g.as_str()], &script);
    let refused = format!(
        "Command failed: no source: {}: a saved session reads source files only under `--sources DIR`",
        f.file
    );
    assert!(
        !status.success()
            && stderr.lines().any(|l| l.starts_with(&refused))
            && !stdout.contains("=>"),
        "{stdout}\n{stderr}"
    );
    let (status, stdout, stderr) = batch(&["--sources", "/", g.as_str()], &script);
    assert!(status.success(), "{stderr}");
    let src: Vec<String> = std::fs::read_to_string(&f.file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let want = format!("=>{:>4}:\t{}", f.line, src[f.line as usize - 1]);
    assert!(
        stdout.lines().any(|l| l == want),
        "want {want:?}:\n{stdout}"
    );
    let live = support::run_goroscope(
        &[
            "attach",
            "--batch",
            "-",
            "--sources",
            "/",
            &fx.pid.to_string(),
        ],
        TIMEOUT,
    )
    .unwrap();
    assert!(
        !live.status.success()
            && live
                .stderr
                .starts_with("goroscope: --sources is for a saved session"),
        "{}",
        live.stderr
    );
    support::assert_running(fx.pid);
}

/// `list PLACE`: a function's first line (from the function table), FILE:LINE (by its last
/// path elements) and LINE of the selected frame's file, each with `=>` on that line of the
/// file the runtime names.
#[test]
fn list_a_function_a_file_line_and_a_line() {
    let mut fx = start_fixture("chan");
    let mut s = Session::start(fx.pid, &["-q"]);
    let oracle = support::parse(&fx.stack().unwrap());
    let g = oracle_with(&oracle, "main.chanRecvBlocked");
    let file = g
        .frames
        .iter()
        .find(|f| f.func == "main.chanRecvBlocked")
        .unwrap()
        .file
        .clone();
    let src: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let marked = |out: &[String], line: usize| {
        let want = format!("=>{line:>4}:\t{}", src[line - 1]);
        assert!(
            out.contains(&want) && out[0] == format!("Showing {file}:{line}"),
            "want {want:?}:\n{}",
            out.join("\n")
        );
    };
    let start = src
        .iter()
        .position(|l| l.starts_with("func chanRecvBlocked("))
        .unwrap()
        + 1;
    marked(&s.ask("list main.chanRecvBlocked"), start);
    let tail: Vec<&str> = file.rsplit('/').take(2).collect();
    marked(
        &s.ask(&format!("list {}/{}:{}", tail[1], tail[0], start + 1)),
        start + 1,
    );
    let bt = parse_bt(&s.ask(&format!("gr {} bt 1000", g.id)));
    let user = bt
        .iter()
        .position(|f| f.0 == "main.chanRecvBlocked")
        .unwrap();
    s.ask(&format!("gr {}", g.id));
    s.ask(&format!("frame {user}"));
    marked(&s.ask("list 3"), 3);
    assert!(s.ask("list main.noSuchFunction").is_empty());
    assert!(!s.quit().success(), "the unknown function failed a command");
    support::assert_running(fx.pid);
}

/// `threads` lists every thread of the process; the one in `read(2)` of stdin (the fixture's
/// main goroutine serves its commands there) runs the goroutine that answers `stack`; `thread`
/// selects a thread and its goroutine.
#[test]
fn threads_and_thread_select_as_the_kernel_and_runtime_say() {
    let mut fx = start_fixture("chan");
    let main = support::parse(&fx.stack().unwrap()).goroutines[0].id;
    let mut s = Session::start(fx.pid, &["-q"]);
    let out = s.ask("threads");
    let mut tasks: Vec<i32> = std::fs::read_dir(format!("/proc/{}/task", fx.pid))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_str().unwrap().parse().unwrap())
        .collect();
    tasks.sort_unstable();
    let listed: Vec<(i32, Option<u64>)> = out
        .iter()
        .map(|l| {
            let rest = l
                .get(2..)
                .and_then(|r| r.strip_prefix("Thread "))
                .unwrap_or_else(|| panic!("{l:?}"));
            let goid = l
                .strip_suffix(')')
                .and_then(|r| r.rsplit_once(" (goroutine "))
                .map(|(_, g)| g.parse().unwrap());
            (rest.split(' ').next().unwrap().parse().unwrap(), goid)
        })
        .collect();
    assert_eq!(
        listed.iter().map(|t| t.0).collect::<Vec<_>>(),
        tasks,
        "{out:?}"
    );
    // read(2) (number 0) of fd 0. The fixture's main goroutine goes back to it after each
    // command, and a read the attach interrupted is restarted after the detach: wait for it.
    let in_read = |t: &i32| {
        std::fs::read_to_string(format!("/proc/{}/task/{t}/syscall", fx.pid))
            .is_ok_and(|s| s.starts_with("0 0x0 "))
    };
    let mut reader = 0;
    support::poll(Duration::from_secs(5), || {
        reader = tasks
            .iter()
            .copied()
            .find(in_read)
            .ok_or("no thread reads stdin")?;
        Ok(())
    })
    .unwrap_or_else(|e| panic!("a thread reading stdin: {e}"));
    let (tid, goid) = *listed.iter().find(|t| t.0 == reader).unwrap();
    assert_eq!(goid, Some(main), "thread {tid} reads stdin: {out:?}");
    let switched = s.ask(&format!("thread {tid}"));
    assert!(
        switched.len() == 2 && switched[0].ends_with(&format!(" to {tid}")),
        "{switched:?}"
    );
    assert_eq!(switched[1], format!("thread {tid} runs goroutine {main}"));
    assert!(
        out.iter().any(|l| l.starts_with(&format!(
            "* Thread {}",
            switched[0].split(' ').nth(2).unwrap()
        ))),
        "the thread selected before is marked: {out:?}"
    );
    assert_eq!(s.ask("goroutine")[0], format!("Goroutine {main}:"));
    assert!(
        s.ask("threads")
            .iter()
            .any(|l| l.starts_with(&format!("* Thread {tid} ")))
    );
    // After `thread TID`, `bt` shows the thread's own stack, unwound from its registers: the
    // frames the session's snapshot holds for it (the JSON's, which tests/it/claims.rs compares
    // with the runtime's crash traceback), numbered as delve numbers them. `goroutine N`
    // goes back to the goroutine's frames.
    let dir = support::TempDir::new("attach-thread-stacks");
    let saved = dir.0.join("s.gsnap");
    s.ask(&format!("snapshot {}", saved.display()));
    let json = support::run_goroscope(
        &["show", "--format", "json", saved.to_str().unwrap()],
        TIMEOUT,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let frames_of = |tid: i32| -> Vec<String> {
        let t = v["snapshot"]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tid"].as_i64() == Some(tid.into()))
            .unwrap_or_else(|| panic!("no thread {tid} in the session's snapshot"));
        let fs = t["frames"].as_array().cloned().unwrap_or_default();
        let width = fs.len().saturating_sub(1).to_string().len();
        let mut want: Vec<String> = fs
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                [
                    format!(
                        "{i:>width$}  {:#018x} in {}",
                        f["pc"].as_u64().unwrap(),
                        f["function"].as_str().unwrap()
                    ),
                    format!(
                        "{:width$}     at {}:{}",
                        "",
                        f["file"].as_str().unwrap(),
                        f["line"]
                    ),
                ]
            })
            .collect();
        if let Some(e) = t["stack_error"].as_str() {
            want.push(format!("(truncated: {e})"));
        }
        want
    };
    let mine = frames_of(tid);
    assert!(
        mine.iter().any(|l| l.ends_with(" in main.serve")),
        "the thread reading stdin has the goroutine's frames below the system call's: {mine:?}"
    );
    s.ask(&format!("thread {tid}"));
    assert_eq!(s.ask("bt 1000"), mine, "thread {tid}'s own stack");
    s.ask(&format!("goroutine {main}"));
    let g = s.ask("bt 1000");
    assert!(
        g.first().is_some_and(|l| !mine.contains(l)) || g.len() != mine.len(),
        "goroutine {main} selected: its own frames again, not the thread's: {g:?}"
    );
    // A thread running no goroutine (as `threads` says): its own stack (an idle M's scheduler
    // stack), and no goroutine to show.
    if let Some((idle, _)) = listed.iter().find(|t| t.1.is_none()) {
        assert_eq!(
            s.ask(&format!("thread {idle}"))[1],
            format!("thread {idle} runs no goroutine; `goroutine <id>` selects one")
        );
        let idle_frames = frames_of(*idle);
        assert!(!idle_frames.is_empty(), "thread {idle} has frames");
        assert_eq!(s.ask("bt 1000"), idle_frames, "thread {idle}'s own stack");
        assert!(s.ask("goroutine").is_empty(), "it fails, on stderr");
        s.ask(&format!("gr {main}"));
    }
    assert!(s.quit().success() == listed.iter().all(|t| t.1.is_some()));
    support::assert_running(fx.pid);
}

/// `goroutines -group goloc`: the goroutines the runtime says each `go` statement created.
#[test]
fn group_by_go_statement_as_the_runtime_says() {
    let mut fx = start_fixture("all");
    let mut s = Session::start(fx.pid, &["-q"]);
    let out = s.ask("grs -group goloc");
    let oracle = support::parse(&fx.stack().unwrap());
    let mut want: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for g in &oracle.goroutines {
        let title = match &g.created_by {
            Some(c) => format!("Go: {}:{} {}", c.file, c.line, c.func),
            None => "Go: ?".into(),
        };
        want.entry(title).or_default().push(g.id);
    }
    // `title`, member lines (`\t  Goroutine N - ...`, at most 5), `\tTotal: N`.
    let mut got: std::collections::BTreeMap<String, (usize, Vec<u64>)> = Default::default();
    let mut title = None;
    let mut listed = Vec::new();
    for l in out.iter().filter(|l| !l.is_empty() && !is_count(l)) {
        if let Some(n) = l.strip_prefix("\tTotal: ") {
            let t: String = title
                .take()
                .unwrap_or_else(|| panic!("Total before a title:\n{}", out.join("\n")));
            assert!(
                got.insert(t, (n.parse().unwrap(), std::mem::take(&mut listed)))
                    .is_none(),
                "a title twice:\n{}",
                out.join("\n")
            );
        } else if let Some(g) = l.strip_prefix('\t') {
            listed.push(parse_grs_line(g).unwrap_or_else(|| panic!("{l:?}")).0);
        } else {
            title = Some(l.clone());
        }
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{}",
        out.join("\n")
    );
    for (t, (n, ids)) in &got {
        let w = &want[t];
        assert!(
            *n == w.len() && ids.len() == w.len().min(5) && ids.iter().all(|i| w.contains(i)),
            "{t}: {n} {ids:?}, runtime {w:?}"
        );
    }
    assert!(s.quit().success());
}

/// `--hold` is released on SIGTERM (goroscope then exits as the signal asks, 128+15), at the
/// end of the batch input and on a panic (the `test-hooks` feature's panic at a command: Rust's
/// exit status 101), and the held target then runs and answers.
#[test]
fn hold_is_released_on_sigterm_end_of_input_and_panic() {
    support::require_test_hooks();
    let mut fx = start_fixture("chan");
    for how in ["SIGTERM", "end of input", "panic"] {
        let env = [("GOROSCOPE_TEST_PANIC_AT_COMMAND", "test-panic")];
        let mut s = Session::start_env(
            fx.pid,
            &["-q", "--hold"],
            if how == "panic" { &env } else { &[] },
        );
        s.ask("grs");
        wait_frozen(fx.pid);
        std::thread::sleep(Duration::from_millis(100));
        let states = thread_states(fx.pid);
        assert!(
            states.iter().all(|&(_, c)| c == 't'),
            "{how}: held: {states:?}"
        );
        let status = match how {
            "SIGTERM" => {
                s.guard.signal(libc::SIGTERM);
                s.guard.wait(TIMEOUT).expect("goroscope exits on SIGTERM")
            }
            "panic" => {
                let w = s.stdin.as_mut().expect("stdin open");
                w.write_all(b"test-panic\n")
                    .and_then(|_| w.flush())
                    .expect("write to the session");
                s.guard
                    .wait(TIMEOUT)
                    .expect("goroscope exits after its panic")
            }
            _ => {
                s.stdin = None;
                s.guard
                    .wait(TIMEOUT)
                    .expect("goroscope exits at the end of its input")
            }
        };
        let want = match how {
            "SIGTERM" => Some(128 + libc::SIGTERM),
            "panic" => Some(101),
            _ => Some(0),
        };
        assert_eq!(status.code(), want, "{how}: {status:?}");
        support::assert_running(fx.pid);
        fx.ping().unwrap_or_else(|e| panic!("{how}: {e}"));
    }
}

/// `list` (and `frame`) read a source file the target names through `/proc/PID/root` when it
/// is not on goroscope's file system: the fixture is built from sources in a scratch
/// directory, then runs in a mount namespace of its own where a tmpfs over that directory holds
/// them; on the host the directory is empty.
#[test]
fn list_reads_sources_through_the_targets_root() {
    let tc = toolchains::newest();
    let dir = support::TempDir::new("attach-list");
    let (src, stash) = (dir.0.join("src"), dir.0.join("stash"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&stash).unwrap();
    for e in std::fs::read_dir(support::fixture::sources_dir())
        .unwrap()
        .flatten()
    {
        if e.file_name().to_string_lossy().ends_with(".go") {
            std::fs::copy(e.path(), src.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(src.join("go.mod"), support::fixture::go_mod(&tc)).unwrap();
    let mut build = Command::new(&tc.go);
    build
        .current_dir(&src)
        .args(["build", "-o"])
        .arg(dir.0.join("fixture"))
        .arg(".");
    support::fixture::go_env(&mut build, &tc, Flavor::Default);
    let out = support::run_with_timeout(&mut build, Duration::from_secs(600)).unwrap();
    assert!(
        out.status.success(),
        "go build: {}{}",
        out.stdout,
        out.stderr
    );
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::rename(e.path(), stash.join(e.file_name())).unwrap();
    }
    let script = r#"mount -t tmpfs tmpfs "$1" && cp "$2"/*.go "$1"/ && exec "$3" "$4""#;
    let (s1, s2) = (src.to_str().unwrap(), stash.to_str().unwrap());
    let wrapper = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        script,
        "sh",
        s1,
        s2,
    ];
    let mut fx = Child::start_wrapped(&wrapper, &dir.0.join("fixture"), "chan")
        .unwrap_or_else(|e| panic!("{e}"));
    let file = src.join("chan.go");
    assert!(!file.exists(), "{} must not be on the host", file.display());
    assert!(
        Path::new(&format!("/proc/{}/root{}", fx.pid, file.display())).exists(),
        "the target sees its sources"
    );

    let oracle = support::parse(&fx.stack().unwrap());
    let g = oracle_with(&oracle, "main.chanRecvBlocked");
    let f = g
        .frames
        .iter()
        .find(|f| f.func == "main.chanRecvBlocked")
        .unwrap();
    assert_eq!(Path::new(&f.file), file);
    let mut s = Session::start(fx.pid, &["-q"]);
    s.ask(&format!("gr {}", g.id));
    let frames = parse_bt(&s.ask("bt"));
    let n = frames.iter().position(|b| b.0 == f.func).unwrap();
    let listed = s.ask(&format!("frame {n} list"));
    let text = std::fs::read_to_string(stash.join("chan.go")).unwrap();
    let line = text.lines().nth(f.line as usize - 1).unwrap();
    assert!(
        listed.contains(&format!("=>{:>4}:\t{line}", f.line)),
        "{}",
        listed.join("\n")
    );
    assert!(s.quit().success());
    support::assert_running(fx.pid);
}

/// `grs -s` names each goroutine by its start function as the runtime reports it: the fixture's
/// `runtime.FuncForPC` of the function it started (for `go f(args)`, `f`, not the compiler's
/// wrapper around the call), `FileLine` at its entry and the entry pc; `dump --group-by start`
/// groups by that function. Every toolchain, default and stripped builds.
#[test]
fn start_location_is_the_started_function_at_its_entry() {
    let mut problems = Vec::new();
    for tc in toolchains::require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped] {
            let exe = support::build_fixture(&tc, flavor).unwrap_or_else(|e| panic!("{e}"));
            let fx = Child::start(&exe, "starts").unwrap_or_else(|e| panic!("{e}"));
            let what = format!("{} {}", tc.name(), flavor.name());
            // "start <goid> <entry> <line> <function> <file>"
            let want: Vec<(u64, String, String)> = fx
                .info
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix("start "))
                .map(|l| {
                    let w: Vec<&str> = l.splitn(5, ' ').collect();
                    let [id, entry, line, func, file] = w[..] else {
                        panic!("INFO line {l:?}");
                    };
                    let id = id.parse().unwrap();
                    let loc = format!("Goroutine {id} - Start: {file}:{line} {func} ({entry}) [");
                    (id, loc, func.to_string())
                })
                .collect();
            assert_eq!(want.len(), 4, "{what}: the fixture's INFO lines");
            let pid = fx.pid.to_string();
            let (status, out, err) = batch(&["-q", &pid], "grs -s\nhelp goroutines\n");
            assert!(status.success(), "{what}: {err}");
            for (id, loc, _) in &want {
                let prefix = format!("Goroutine {id} - ");
                match out
                    .lines()
                    .map(|l| l.get(2..).unwrap_or(""))
                    .find(|l| l.starts_with(&prefix))
                {
                    Some(l) if l.starts_with(loc.as_str()) => {}
                    got => problems.push(format!("{what}: want {loc:?}, got {got:?}")),
                }
            }
            let help = out
                .lines()
                .find(|l| l.trim_start().starts_with("-s\t"))
                .unwrap_or_else(|| panic!("{what}: no -s in help goroutines:\n{out}"));
            assert!(
                help.contains("start function, at its entry") && help.contains("wrapper calls"),
                "{what}: help says {help:?}"
            );
            let groups = support::goroscope_dump_with(fx.pid, &["--group-by", "start"])
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            for (_, _, func) in &want {
                if !groups.lines().any(|l| l.trim() == func) {
                    problems.push(format!("{what}: no group of start {func}:\n{groups}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
