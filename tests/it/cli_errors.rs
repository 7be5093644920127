//! Every user-facing error of the real `goroscope` binary: a non-zero exit, exactly one line on
//! stderr starting with `goroscope: `, no panic, nothing on stdout, and a message that says what
//! happened and what to do. Also the SIGKILL-in-the-frozen-window guarantee, end to end.
//!
//! Targets are the Go fixture (newest installed toolchain, default build), `sleep`, a fixture
//! copy with a patched Go version, and `strace` as a second tracer. Every process a test starts
//! is killed (by the pid it started, never by name) and reaped by a guard's `Drop`, also when the
//! test fails. Waits are bounded polls of `/proc`, never fixed sleeps.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Child, Flavor, Guard, Output, TempDir, poll, toolchains, tracer_pid, wait_frozen};

/// How long any single goroscope run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Support

/// The fixture binary of the newest installed toolchain, default build.
fn fixture_exe() -> PathBuf {
    let tc = toolchains::newest();
    support::build_fixture(&tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"))
}

fn start_fixture(scenario: &str) -> Child {
    Child::start(&fixture_exe(), scenario).unwrap_or_else(|e| panic!("{e}"))
}

fn goroscope(args: &[&str]) -> Output {
    support::run_goroscope(args, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// goroscope with extra environment, run to completion.
fn goroscope_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    support::run_with_timeout(&mut cmd, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// The error contract: failed, one `goroscope: ` line on stderr containing every word of
/// `want` (case-insensitive), no panic, nothing on stdout. Returns the message.
#[track_caller]
fn assert_error(out: &Output, want: &[&str]) -> String {
    let ctx = || {
        format!(
            "status {}\n--- stderr\n{}--- stdout\n{}",
            out.status, out.stderr, out.stdout
        )
    };
    assert!(
        !out.status.success(),
        "goroscope succeeded, want an error\n{}",
        ctx()
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "want exit status 1 (not a signal, not clap's 2)\n{}",
        ctx()
    );
    assert!(
        !out.stderr.contains("panicked"),
        "goroscope panicked\n{}",
        ctx()
    );
    let msg = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    assert!(
        !msg.is_empty() && !msg.contains('\n'),
        "want exactly one line on stderr\n{}",
        ctx()
    );
    assert!(
        msg.starts_with("goroscope: "),
        "stderr must start with `goroscope: `\n{}",
        ctx()
    );
    assert!(
        out.stdout.is_empty(),
        "an error must not print a partial dump\n{}",
        ctx()
    );
    let lower = msg.to_lowercase();
    for w in want {
        assert!(
            lower.contains(&w.to_lowercase()),
            "message lacks {w:?}: {msg}"
        );
    }
    println!("{msg}");
    msg.to_string()
}

/// Copies `src` to `dst` with mode 0755.
fn copy_exe(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(src, dst)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o755)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Tests

/// A pid nobody has: the highest free number below `pid_max` (allocated last, so it stays free).
#[test]
fn no_such_pid() {
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let pid = (300..pid_max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid");
    let pid = pid.to_string();
    for args in [
        &["dump", &pid][..],
        &["grs", &pid],
        &["bt", &pid, "1"],
        &["inspect", &pid],
    ] {
        let msg = assert_error(&goroscope(args), &["no process with pid", &pid]);
        assert!(msg.contains("check the pid"), "{msg}");
    }
    // Nonsense pids are the same error, not a crash.
    assert_error(&goroscope(&["dump", "0"]), &["no process with pid 0"]);
    assert_error(
        &goroscope(&["dump", "--", "-1"]),
        &["no process with pid -1"],
    );
}

#[test]
fn not_a_go_program() {
    let sleep = support::which("sleep").expect("sleep in PATH");
    let mut cmd = Command::new(&sleep);
    cmd.arg("1000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let g = Guard::spawn(&mut cmd, None);
    let pid = g.pid() as u32;
    // Until the exec is done, /proc/PID/exe is this test binary (a Rust program, also not Go).
    poll(Duration::from_secs(10), || {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| e.to_string())?;
        if exe.file_name() == sleep.canonicalize().unwrap().file_name() {
            Ok(())
        } else {
            Err(format!("exe is {}", exe.display()))
        }
    })
    .unwrap();
    let pid = pid.to_string();
    for args in [
        &["dump", &pid][..],
        &["grs", &pid],
        &["bt", &pid, "1"],
        &["inspect", &pid],
    ] {
        let msg = assert_error(&goroscope(args), &["not a go program"]);
        assert!(msg.contains(".go.buildinfo"), "say why: {msg}");
    }
    let pid = g.pid() as u32;
    // It only looked: sleep runs on, untraced.
    support::check_running(pid).unwrap();
}

#[test]
fn permission_denied_for_unprivileged_user() {
    let Some(()) = support::require(support::root("to run goroscope as uid 65534 (setpriv)"))
    else {
        return;
    };
    let Some(setpriv) = support::require(support::tool("setpriv")) else {
        return;
    };
    let child = start_fixture("chan");
    // The test's goroscope may live under a directory nobody cannot enter: run a world-readable copy.
    let dir = TempDir::new("cli-errors-perm");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.0.join("goroscope");
    copy_exe(support::goroscope_bin(), &exe);
    let pid = child.pid.to_string();
    let mut cmd = Command::new(setpriv);
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["dump", &pid]);
    let out = support::run_with_timeout(&mut cmd, RUN_TIMEOUT).unwrap();
    let msg = assert_error(
        &out,
        &[
            "not permitted to trace process",
            &pid,
            "CAP_SYS_PTRACE",
            "uid 65534",
        ],
    );
    assert!(msg.contains("root"), "say how to get the permission: {msg}");
    assert!(
        msg.contains("the target runs as uid 0"),
        "say whose process it is: {msg}"
    );
    support::check_running(child.pid).unwrap();
}

#[test]
fn already_traced_by_strace() {
    let Some(strace) = support::require(support::tool("strace")) else {
        return;
    };
    let mut child = start_fixture("chan");
    let mut cmd = Command::new(strace);
    cmd.args(["-p", &child.pid.to_string(), "-o", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let tracer = Guard::spawn(&mut cmd, Some(libc::SIGINT));
    poll(Duration::from_secs(20), || match tracer_pid(child.pid) {
        0 => Err("TracerPid still 0".into()),
        _ => Ok(()),
    })
    .unwrap();
    assert_eq!(
        tracer_pid(child.pid),
        tracer.pid(),
        "the tracer is our strace"
    );
    let pid = child.pid.to_string();
    for args in [&["dump", &pid][..], &["grs", &pid], &["inspect", &pid]] {
        let msg = assert_error(
            &goroscope(args),
            &["already traced by", &tracer.pid().to_string(), "strace"],
        );
        assert!(msg.contains("detach that tracer"), "say what to do: {msg}");
    }
    // Once strace is gone, goroscope works again.
    drop(tracer);
    poll(Duration::from_secs(10), || {
        support::check_running(child.pid)
    })
    .unwrap();
    support::goroscope_dump(child.pid).unwrap();
    child.ping().unwrap();
}

#[test]
fn target_exits_during_the_dump() {
    support::require_test_hooks();
    let child = start_fixture("chan");
    let pid = child.pid;
    let out = std::thread::scope(|s| {
        let run = s.spawn(|| {
            goroscope_env(
                &["dump", &pid.to_string()],
                &[("GOROSCOPE_TEST_HOLD_FREEZE_MS", "3000")],
            )
        });
        wait_frozen(pid);
        // SAFETY: kill(2) on the fixture we started; `child` reaps it on drop.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        let start = Instant::now();
        let out = run.join().unwrap();
        println!("goroscope finished {:?} after the kill", start.elapsed());
        out
    });
    assert_error(&out, &["process", &pid.to_string(), "exited"]);
    drop(child);
}

#[test]
fn unsupported_go_version() {
    let dir = TempDir::new("cli-errors-version");
    let (exe, old, new) = support::patched_copy(&fixture_exe(), 17, &dir, "fixture-go117");
    let mut child = Child::start(&exe, "chan")
        .unwrap_or_else(|e| panic!("the patched fixture ({old} → {new}) does not run: {e}"));
    let pid = child.pid.to_string();
    for args in [&["dump", &pid][..], &["grs", &pid], &["inspect", &pid]] {
        let msg = assert_error(
            &goroscope(args),
            &["unsupported Go version", &new, "go1.19 to go1."],
        );
        assert!(!msg.contains(&old), "{msg}");
    }
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}

/// SIGKILL of goroscope while it holds the target frozen: the kernel detaches, the target runs
/// on at once, and the next dump is correct.
#[test]
fn sigkill_of_goroscope_in_the_frozen_window() {
    support::require_test_hooks();
    let mut child = start_fixture("all");
    let pid = child.pid;
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["dump", &pid.to_string()])
        .env("GOROSCOPE_TEST_HOLD_FREEZE_MS", "5000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut gs = Guard::spawn(&mut cmd, None);
    wait_frozen(pid);
    assert_eq!(tracer_pid(pid), gs.pid(), "goroscope is the tracer");
    gs.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    let st = gs
        .wait(Duration::from_secs(10))
        .expect("goroscope gone after SIGKILL");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st}");
    poll(Duration::from_secs(2), || support::check_running(pid)).unwrap();
    println!(
        "target running again {:?} after the SIGKILL",
        killed_at.elapsed()
    );
    assert!(killed_at.elapsed() < Duration::from_secs(2));
    child.ping().unwrap();

    let dump = support::goroscope_dump(pid).unwrap();
    support::check_running(pid).unwrap();
    child.ping().unwrap();
    support::matches_oracle(&mut child, &dump).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn bt_of_a_goroutine_that_does_not_exist() {
    let mut child = start_fixture("chan");
    let pid = child.pid.to_string();
    let want = [
        "no goroutine 987654321",
        &pid,
        &format!("`goroscope grs {pid}`"),
    ];
    assert_error(&goroscope(&["-q", "bt", &pid, "987654321"]), &want);
    // Without -q too: the pause is reported only once the goroutine is found, so the error
    // is the only line.
    assert_error(&goroscope(&["bt", &pid, "987654321"]), &want);
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}

/// The commands that take a pid, each as it is run on `pid`.
fn pid_commands(pid: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["dump", pid],
        vec!["grs", pid],
        vec!["bt", pid, "1"],
        vec!["inspect", pid],
        vec!["attach", pid],
        vec!["leaks", pid],
    ]
}

#[test]
fn a_kernel_thread() {
    // kthreadd: pid 2 wherever the kernel's threads are visible (not in a container's pid namespace).
    let flags: Option<u64> = std::fs::read_to_string("/proc/2/stat").ok().and_then(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse().ok())
    });
    const PF_KTHREAD: u64 = 0x0020_0000;
    if flags.is_none_or(|f| f & PF_KTHREAD == 0) {
        println!("SKIP: pid 2 is not a kernel thread here (a pid namespace of its own?)");
        return;
    }
    for args in pid_commands("2") {
        let msg = assert_error(
            &goroscope(&args),
            &["process 2 (kthreadd) is a kernel thread", "goroscope ps"],
        );
        assert!(!msg.contains("/proc/2/exe"), "{msg}");
    }
}

#[test]
fn a_zombie() {
    // `true` exits at once and stays a zombie until this test reaps it (the guard, also on
    // failure).
    let mut cmd = Command::new("true");
    let mut z = Guard::spawn(&mut cmd, None);
    let pid = z.pid() as u32;
    poll(
        Duration::from_secs(10),
        || match support::child::proc_state(pid) {
            Ok(s) if s.starts_with('Z') => Ok(()),
            s => Err(format!("state {s:?}")),
        },
    )
    .unwrap();
    let (pid, me) = (pid.to_string(), std::process::id().to_string());
    for args in pid_commands(&pid) {
        let want = [
            &format!("process {pid} (true) is a zombie")[..],
            "has exited",
            &format!("its parent {me}"),
            "not reaped",
        ];
        assert_error(&goroscope(&args), &want);
    }
    assert!(z.wait(Duration::from_secs(5)).is_some(), "reaped");
}

#[test]
fn goroscope_itself() {
    // The shell's pid is the pid goroscope runs as once the shell execs it.
    let exe = support::goroscope_bin().to_str().unwrap();
    for cmd in ["dump", "grs", "inspect", "attach"] {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("echo $$ >&2; exec \"$0\" {cmd} $$"))
            .arg(exe);
        let out = support::run_with_timeout(&mut sh, RUN_TIMEOUT).unwrap();
        let (pid, rest) = out
            .stderr
            .split_once('\n')
            .expect("the shell's pid, then goroscope's line");
        let out = Output {
            stderr: rest.to_string(),
            ..out
        };
        assert_error(
            &out,
            &[&format!("pid {pid} is goroscope itself"), "goroscope ps"],
        );
    }
}

#[test]
fn a_thread_that_is_not_its_process() {
    let mut child = start_fixture("chan");
    let pid = child.pid;
    let tasks = |pid: u32| -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let tid = tasks(pid)
        .into_iter()
        .find(|&t| t != pid)
        .expect("the Go runtime runs more than one thread");
    let (pid_s, tid_s) = (pid.to_string(), tid.to_string());
    for args in pid_commands(&tid_s) {
        let want = [
            &format!("{tid} is a thread of process {pid} (fixture)")[..],
            "not a process",
            &format!("give the process id {pid_s}"),
        ];
        assert_error(&goroscope(&args), &want);
    }
    support::check_running(pid).unwrap();
    child.ping().unwrap();
}

/// `goroscope` alone, or a pid command without its pid: clap's usage error (status 2), then the
/// Go processes to pick from, as `ps` lists them, and a command line that picks one.
#[test]
fn no_pid_lists_the_go_processes() {
    let mut child = start_fixture("chan");
    let pid = child.pid.to_string();
    let row = |stderr: &str| {
        stderr.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.first() == Some(&pid.as_str()) && w.contains(&"fixture")
        })
    };
    for (args, want) in [
        (
            &[][..],
            &[
                "Usage: goroscope [OPTIONS] <COMMAND>",
                "goroscope dump ",
                "goroscope attach ",
            ][..],
        ),
        (
            &["dump"],
            &[
                "required arguments were not provided",
                "<PID>",
                "goroscope dump ",
            ],
        ),
        (
            &["grs"],
            &[
                "required arguments were not provided",
                "<PID>",
                "goroscope grs ",
            ],
        ),
        (
            &["-q", "attach"],
            &[
                "required arguments were not provided",
                "<PID|FILE>",
                "goroscope attach ",
            ],
        ),
        (
            &["bt"],
            &["required arguments were not provided", "goroscope bt "],
        ),
    ] {
        let out = goroscope(args);
        let ctx = format!(
            "goroscope {args:?}: status {}\n--- stderr\n{}--- stdout\n{}",
            out.status, out.stderr, out.stdout
        );
        assert_eq!(out.status.code(), Some(2), "a usage error\n{ctx}");
        assert!(out.stdout.is_empty(), "{ctx}");
        assert!(!out.stderr.contains("panicked"), "{ctx}");
        for w in want {
            assert!(out.stderr.contains(w), "lacks {w:?}\n{ctx}");
        }
        assert!(
            out.stderr.contains("PID    PPID THREADS  GO"),
            "ps's table\n{ctx}"
        );
        assert!(row(&out.stderr), "the fixture's row\n{ctx}");
        assert!(
            out.stderr
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("Give one of their pids, e.g. goroscope")),
            "{ctx}"
        );
    }
    // Other usage errors stay clap's alone.
    let out = goroscope(&["dump", "--no-such-option", &pid]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.contains("PPID"), "{}", out.stderr);
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}
