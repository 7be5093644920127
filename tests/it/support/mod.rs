//! Test support for goroscope's live tests: Go toolchains, the fixture program, the `Child`
//! guard that runs it, a parser for Go's traceback text and the oracle comparison.
//!
//! The oracle (DESIGN.md): the fixture under `testdata/fixture/` puts goroutines into known
//! states and prints its own `runtime.Stack(buf, true)` on request; goroscope's dump of the same
//! process must match it goroutine by goroutine.
#![allow(dead_code, unused_imports)]

pub mod child;
pub mod compare;
pub mod fixture;
pub mod probe;
pub mod procs;
pub mod require;
pub mod rng;
pub mod scratch;
pub mod toolchains;
pub mod traceback;
pub mod values;

pub use child::{Child, Info, assert_running, check_running, line_channel};
pub use compare::{compare, matches_oracle};
pub use fixture::{Flavor, build_fixture};
pub use procs::{Guard, poll, thread_states, tracer_pid, wait_frozen};
pub use require::{is_root, require, require_test_hooks, root, summary, tool, which};
pub use rng::Rng;
pub use scratch::{TempDir, patched_copy};
pub use toolchains::{Toolchain, require_toolchains};
pub use traceback::{CreatedBy, Frame, Goroutine, Traceback, parse, parse_strict};

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What goroscope prints in place of the stack of a goroutine it could not read (not read
/// consistently without stopping the target, or running: `--nonblocking`), then why.
pub const TRUNCATED: &str = "\t...stack truncated by goroscope: ";

/// A dump's text without goroscope's own [`TRUNCATED`] lines (the traceback parser knows only
/// Go's), and for each of them the goroutine it is in and the reason it gives.
pub fn split_truncated(dump: &str) -> Result<(String, Vec<(u64, String)>), String> {
    let mut text = String::new();
    let mut marked = Vec::new();
    let mut current = None;
    for line in dump.lines() {
        if let Some(rest) = line.strip_prefix("goroutine ") {
            current = rest.split(' ').next().and_then(|id| id.parse::<u64>().ok());
        }
        if let Some(why) = line.strip_prefix(TRUNCATED) {
            let id = current.ok_or_else(|| format!("a mark outside a goroutine: {line:?}"))?;
            marked.push((id, why.to_string()));
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    Ok((text, marked))
}

/// The goroscope binary cargo built for these tests.
pub fn goroscope_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_goroscope"))
}

/// Two dumps of one process taken one after the other (`(name, text)` each) list the same
/// goroutines in the same order, and every goroutine parked in both, except goroutine 1 (the
/// fixture's main goroutine, which answers the test's commands), is printed identically.
#[track_caller]
pub fn assert_same_parked(a: (&str, &str), b: (&str, &str)) {
    let (ta, tb) = (parse(a.1), parse(b.1));
    let ids = |t: &Traceback| t.goroutines.iter().map(|g| g.id).collect::<Vec<_>>();
    let both = || format!("--- {}\n{}\n--- {}\n{}", a.0, a.1, b.0, b.1);
    assert_eq!(
        ids(&ta),
        ids(&tb),
        "{} and {} list different goroutines\n{}",
        a.0,
        b.0,
        both()
    );
    let mut same = 0;
    for (x, y) in ta.goroutines.iter().zip(&tb.goroutines) {
        if x.is_parked() && y.is_parked() && x.id != 1 {
            assert_eq!(
                x.raw, y.raw,
                "goroutine {}: {} and {} differ",
                x.id, a.0, b.0
            );
            same += 1;
        }
    }
    assert!(same > 0, "no goroutine parked in both\n{}", both());
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `goroscope <args>` and waits at most `timeout`; a goroscope that hangs is killed (by
/// its pid) and reported as an error, so a broken tool can't hang the test run.
pub fn run_goroscope(args: &[&str], timeout: Duration) -> Result<Output, String> {
    run_with_timeout(Command::new(goroscope_bin()).args(args), timeout)
}

/// `goroscope <args>` within `timeout`, which must exit 0; its stdout (a panic with the status,
/// stderr and stdout otherwise).
#[track_caller]
pub fn goroscope_ok(args: &[&str], timeout: Duration) -> String {
    let out = run_goroscope(args, timeout).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "goroscope {args:?} failed: {}\nstderr:\n{}\nstdout:\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
    out.stdout
}

/// `goroscope dump -q <pid>`; Ok only if it exits 0.
pub fn goroscope_dump(pid: u32) -> Result<String, String> {
    goroscope_dump_with(pid, &[])
}

/// `goroscope dump -q <extra args> <pid>`, which must exit 0; its stdout.
pub fn goroscope_dump_with(pid: u32, extra: &[&str]) -> Result<String, String> {
    let pid = pid.to_string();
    let mut args = vec!["dump", "-q"];
    args.extend_from_slice(extra);
    args.push(&pid);
    let out = run_goroscope(&args, Duration::from_secs(60))?;
    if !out.status.success() {
        return Err(format!(
            "goroscope dump -q {pid} failed: {}\nstderr:\n{}\nstdout:\n{}",
            out.status, out.stderr, out.stdout
        ));
    }
    Ok(out.stdout)
}

/// `goroscope dump -q --system <extra args> <pid>`, repeated until no goroutine is running or
/// runnable but those in a function of `busy` (the fixture's `INFO running` ones): the
/// runtime's own goroutines (the scavenger, GC workers) run for a moment after a collection,
/// and a comparison with a later moment needs them parked. At most 200 dumps, 10 ms apart.
pub fn settled_system_dump(pid: u32, extra: &[&str], busy: &[String]) -> Result<String, String> {
    let mut args = vec!["--system"];
    args.extend_from_slice(extra);
    let mut last = String::new();
    for _ in 0..200 {
        last = goroscope_dump_with(pid, &args)?;
        let tb = parse(&last);
        if tb
            .goroutines
            .iter()
            .all(|g| !g.is_active() || busy.iter().any(|f| g.has_frame(f)))
        {
            return Ok(last);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(format!(
        "goroutines of process {pid} kept running in 200 dumps; the last:\n{last}"
    ))
}

/// Runs a command with stdout and stderr captured, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{desc}: cannot start: {e}"))?;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    // Wait in a helper thread so the timeout is a channel timeout, not a polling loop.
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = child.wait();
        let _ = tx.send(());
        r
    });
    let timed_out = rx.recv_timeout(timeout).is_err();
    if timed_out {
        // SAFETY: kill(2) on the pid of our own unreaped child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let status = waiter
        .join()
        .map_err(|_| format!("{desc}: waiter panicked"))?
        .map_err(|e| format!("{desc}: wait: {e}"))?;
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    if timed_out {
        return Err(format!(
            "{desc}: no exit after {timeout:?}, killed\nstderr:\n{stderr}\nstdout:\n{stdout}"
        ));
    }
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}
