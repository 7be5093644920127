//! `goroscope attach`: the session through its batch mode (commands on a pipe, read back line by
//! line) and through a real pseudo-terminal (the line editor, Ctrl-C at the prompt, a closed
//! terminal). What the session prints about goroutines is compared with the fixture's own
//! `runtime.Stack` of the same moment: ids, states, frames. `--hold` must keep every thread of
//! the target in a tracing stop (`t`) until the session ends and not a moment after, and a
//! signal sent to the held target must be delivered once it is released.
//!
//! The fixture is built by the newest installed toolchain (default build). Every process a test
//! starts is killed by its pid and reaped by a guard, also when the test fails.

mod support;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support::{Child, Flavor, Guard, Traceback, poll, thread_states, toolchains, wait_frozen};

/// A command whose output, `[0 goroutines]`, ends every answer.
const END: &str = "goroutines -with state end-of-answer";

/// How long one answer of the session may take.
const TIMEOUT: Duration = Duration::from_secs(60);

fn start_fixture(scenario: &str) -> Child {
    let exe = support::build_fixture(&toolchains::newest(), Flavor::Default).unwrap_or_else(|e| panic!("{e}"));
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
        let mut cmd = Command::new(support::goroscope_bin());
        cmd.args(["attach", "--batch", "-"]).args(extra).arg(pid.to_string());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut guard = Guard::spawn(&mut cmd, None);
        let stdin = guard.child().stdin.take();
        let stdout = guard.child().stdout.take().unwrap();
        Session { guard, stdin, lines: support::line_channel(stdout) }
    }

    /// Sends one command and returns its output. A second command that lists no goroutine
    /// (`[0 goroutines]`) marks where the output ends.
    fn ask(&mut self, cmd: &str) -> Vec<String> {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(format!("{cmd}\n{END}\n").as_bytes()).and_then(|_| w.flush()).expect("write to the session");
        let mut out = Vec::new();
        loop {
            match self.lines.recv_timeout(TIMEOUT) {
                Ok(l) if l == "[0 goroutines]" => return out,
                Ok(l) => out.push(l),
                Err(e) => panic!("no end of the output of {cmd:?} ({e}); so far:\n{}", out.join("\n")),
            }
        }
    }

    /// Sends `quit` and waits for the exit.
    fn quit(&mut self) -> std::process::ExitStatus {
        let w = self.stdin.as_mut().expect("stdin open");
        w.write_all(b"quit\n").and_then(|_| w.flush()).expect("write to the session");
        self.guard.wait(TIMEOUT).expect("the session exits after quit")
    }
}

fn is_count(l: &str) -> bool {
    l.starts_with('[') && l.ends_with(" goroutines]")
}

/// `Goroutine N - User: file:line func (0xpc) [state]` → (N, file:line, func, state).
fn parse_grs_line(l: &str) -> Option<(u64, String, String, String)> {
    let rest = l.get(2..)?.strip_prefix("Goroutine ")?;
    let (id, rest) = rest.split_once(" - User: ")?;
    let (loc, rest) = rest.split_once(' ')?;
    let (func, rest) = rest.split_once(" (")?;
    let state = rest.rsplit_once('[')?.1.strip_suffix(']')?;
    Some((id.parse().ok()?, loc.to_string(), func.to_string(), state.to_string()))
}

/// bt lines → (function, file:line) per frame.
fn parse_bt(lines: &[String]) -> Vec<(String, String)> {
    let mut frames = Vec::new();
    let mut it = lines.iter();
    while let Some(l) = it.next() {
        let Some((_, func)) = l.split_once(" in ") else { continue };
        let at = it.next().and_then(|a| a.trim().strip_prefix("at ")).unwrap_or_else(|| panic!("no `at` after {l:?}"));
        frames.push((func.to_string(), at.to_string()));
    }
    frames
}

/// The oracle's goroutine with a frame of `func`.
fn oracle_with<'t>(tb: &'t Traceback, func: &str) -> &'t support::Goroutine {
    tb.goroutines.iter().find(|g| g.has_frame(func)).unwrap_or_else(|| panic!("no goroutine in {func} in the runtime's dump"))
}

#[test]
fn batch_lists_selects_and_walks_frames_as_the_runtime_sees_them() {
    let mut fx = start_fixture("chan");
    let mut s = Session::start(fx.pid, &["-q"]);
    let grs = s.ask("grs");
    let oracle = support::parse(&fx.stack().unwrap());

    // The same goroutines, and every parked one in the state the runtime prints.
    let listed: Vec<(u64, String, String, String)> =
        grs.iter().filter(|l| !is_count(l)).map(|l| parse_grs_line(l).unwrap_or_else(|| panic!("not a grs line: {l:?}"))).collect();
    let mut ids: Vec<u64> = listed.iter().map(|g| g.0).collect();
    let mut want: Vec<u64> = oracle.goroutines.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    want.sort_unstable();
    assert_eq!(ids, want, "goroutine ids of grs and of runtime.Stack\n{}", grs.join("\n"));
    assert_eq!(grs.last().unwrap(), &format!("[{} goroutines]", want.len()));
    for g in oracle.goroutines.iter().filter(|g| g.is_parked() && g.id != 1) {
        let l = listed.iter().find(|x| x.0 == g.id).unwrap();
        assert_eq!(l.3, g.state, "state of goroutine {}", g.id);
        // delve's user location: the first frame not inside the runtime.
        let top_user = g.frames.iter().find(|f| !goroscope::snapshot::is_runtime_internal(&f.func)).unwrap();
        assert_eq!((l.1.clone(), l.2.clone()), (format!("{}:{}", top_user.file, top_user.line), top_user.func.clone()));
    }
    assert!(grs[0].starts_with("* Goroutine 1 - "), "goroutine 1 is selected first: {}", grs[0]);

    // Select the receiver and walk its frames.
    let g = oracle_with(&oracle, "main.chanRecvBlocked");
    assert_eq!(s.ask(&format!("gr {}", g.id)), vec![format!("Switched from 1 to {}", g.id)]);
    let bt = s.ask("bt");
    let frames = parse_bt(&bt);
    assert_eq!(frames.last().map(|f| f.0.as_str()), Some("runtime.goexit"), "{bt:?}");
    // The runtime's frames are goroscope's in order, and what it hides is the runtime's own.
    let oracle_frames: Vec<(String, String)> = g.frames.iter().map(|f| (f.func.clone(), format!("{}:{}", f.file, f.line))).collect();
    let shared: Vec<(String, String)> = frames.iter().filter(|f| oracle_frames.contains(f)).cloned().collect();
    assert_eq!(shared, oracle_frames, "bt:\n{}", bt.join("\n"));
    // What the traceback hides: runtime frames, and the wrapper a `go` statement compiles to.
    for f in frames.iter().filter(|f| !oracle_frames.contains(f)) {
        assert!(
            f.0.starts_with("runtime.") || f.0.rsplit('.').next().is_some_and(|l| l.starts_with("gowrap")),
            "bt shows {f:?}, which the runtime's traceback neither shows nor hides"
        );
    }
    let user = frames.iter().position(|f| f.0 == "main.chanRecvBlocked").unwrap();
    assert!(user > 0, "runtime frames above the user frame: {frames:?}");

    // frame N prints that frame and its source with `=>` on its line.
    let out = s.ask(&format!("frame {user}"));
    let (file, line) = frames[user].1.rsplit_once(':').unwrap();
    assert!(out[1].starts_with(&format!("Frame {user}: {} (PC: ", frames[user].1)), "{out:?}");
    let text = std::fs::read_to_string(file).unwrap();
    let src = text.lines().nth(line.parse::<usize>().unwrap() - 1).unwrap();
    assert!(out.contains(&format!("=>{line:>4}:\t{src}")), "{out:?}");
    assert!(out[0].starts_with(&format!("> {}() ", frames[0].0)), "{out:?}");
    let up = s.ask("up");
    assert!(up[1].starts_with(&format!("Frame {}: {}", user + 1, frames[user + 1].1)), "{up:?}");
    let down = s.ask("down 2");
    assert!(down[1].starts_with(&format!("Frame {}: {}", user - 1, frames[user - 1].1)), "{down:?}");

    // `goroutine` describes the selection; a one-shot `gr 1 bt` keeps it.
    let info = s.ask("goroutine");
    assert_eq!(info[0], format!("Goroutine {}:", g.id));
    assert_eq!(info.last().unwrap(), &format!("\tState: {}", g.state));
    let created = g.created_by.as_ref().unwrap();
    let go = format!("\tGo: {}:{} {} (", created.file, created.line, created.func);
    assert!(info.iter().any(|l| l.starts_with(&go)), "{info:?}");
    let one = s.ask("gr 1 bt 1");
    assert!(one.len() == 3 && one[2].starts_with("(... "), "{one:?}");
    assert!(s.ask("grs -with state chan receive").iter().any(|l| l.starts_with(&format!("* Goroutine {} ", g.id))));

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
    let f = new.frames.iter().find(|f| f.func == "main.spawnedPark").unwrap();
    assert_eq!((id, loc, func, state), (new.id, format!("{}:{}", f.file, f.line), f.func.clone(), new.state.clone()));
    assert_eq!(after.last().unwrap(), "[1 goroutines]");
    let diff = s.ask("diff");
    assert!(diff.contains(&format!("+1 appeared (0 -> 1) [{}]", new.state)), "{diff:?}");
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
    assert!(!states.is_empty() && states.iter().all(|&(_, c)| c == 't'), "held: {states:?}");
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
/// terminal, so closing it sends SIGHUP).
struct Pty {
    master: Option<OwnedFd>,
    guard: Guard,
    seen: Vec<u8>,
}

impl Pty {
    fn start(args: &[&str]) -> Pty {
        // Both sides close-on-exec from the start: a process spawned meanwhile by another test
        // thread must not keep the terminal open.
        let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r/open on descriptors and buffers we own.
        let (master, slave) = unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0, "{}", err("posix_openpt"));
            let master = OwnedFd::from_raw_fd(m);
            assert!(libc::grantpt(m) == 0 && libc::unlockpt(m) == 0, "{}", err("grantpt/unlockpt"));
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0, "{}", err("ptsname_r"));
            let s = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(s >= 0, "{}", err("open the terminal"));
            let ws = libc::winsize { ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
            libc::ioctl(s, libc::TIOCSWINSZ, &ws);
            (master, OwnedFd::from_raw_fd(s))
        };
        let mut cmd = Command::new(support::goroscope_bin());
        cmd.args(args).env("TERM", "xterm").env_remove("NO_COLOR");
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
        Pty { master: Some(master), guard, seen: Vec::new() }
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
            assert!(Instant::now() < deadline, "no {want:?} on the terminal; got:\n{text}");
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: poll on one descriptor we own.
            if unsafe { libc::poll(&mut p, 1, 100) } > 0 {
                let mut buf = [0u8; 4096];
                // SAFETY: reads into a live buffer.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                assert!(n > 0, "terminal closed while waiting for {want:?}; got:\n{text}");
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
    let mut t = Pty::start(&["attach", &pid]);
    t.expect("(goroscope) ");
    t.type_("grs\r");
    let out = t.expect("goroutines]");
    assert!(out.contains("Goroutine 1 - User: ") && out.contains("\x1b["), "coloured on a terminal: {out:?}");
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
    assert!(help.contains("goroutines (alias: grs)") && !help.contains("Command failed"), "{help:?}");
    t.type_("exit\r");
    let st = t.guard.wait(TIMEOUT).expect("goroscope exits after exit");
    assert!(st.success(), "{st:?}");
    support::assert_running(fx.pid);
}

#[test]
fn closed_terminal_releases_a_held_target() {
    let mut fx = start_fixture("chan");
    let pid = fx.pid.to_string();
    let mut t = Pty::start(&["attach", "--hold", &pid]);
    t.expect("(goroscope held ");
    wait_frozen(fx.pid);
    t.type_("bt\r");
    t.expect("runtime.goexit");
    // Ctrl-C at the prompt does not release the target.
    t.type_("\x03");
    t.expect("(goroscope held ");
    assert!(thread_states(fx.pid).iter().all(|&(_, c)| c == 't'), "still held after Ctrl-C");
    t.hang_up();
    let st = t.guard.wait(TIMEOUT).expect("goroscope exits when its terminal is closed");
    assert!(st.code() == Some(128 + libc::SIGHUP) || st.signal() == Some(libc::SIGHUP), "{st:?}");
    support::assert_running(fx.pid);
    fx.ping().unwrap();
}
