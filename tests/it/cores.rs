//! Core files: `goroscope dump --core` against the runtime's own crash traceback.
//!
//! * amd64, kernel cores: the fixture runs with `GOTRACEBACK=crash` and `ulimit -c unlimited`
//!   in a directory of its own; SIGQUIT makes the runtime print every goroutine (level 2, the
//!   oracle) and then abort, and the kernel writes its core there. That needs
//!   `kernel.core_pattern` to be a plain file name (`scripts/test.sh` sets `core` as root);
//!   a pattern that pipes cores away (systemd-coredump, apport) or writes them elsewhere fails
//!   the test, naming it.
//! * amd64, gdb's `gcore` of a live fixture, oracle the fixture's own `runtime.Stack`.
//! * arm64, qemu-user cores: the fixture cross-built with `GOARCH=arm64` runs under
//!   `qemu-aarch64`, which writes `qemu_fixture_<date>_<pid>.core` on the abort. Nothing can
//!   ptrace an arm64 process here, so cores are how the arm64 unwinder is tested.
//! * Truncated and corrupted cores: a one-line error or a partial dump, never a panic.
//!
//! Comparison (level 2, `compare_crash`): the oracle is the crash traceback up to the first
//! register dump, without `goroutine 0` (a g0, not in `allgs`). Every goroutine must be in
//! goroscope's dump in the same order; a parked one (not running/runnable) must be printed
//! identically, byte for byte: header with `gp= m= mp=`, arguments, `fp= sp= pc=`, created-by.
//! The runtime prints running goroutines as "running on other thread": goroscope must list
//! them, with any stack.

use crate::support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::compare::compare_crash;
use support::traceback::signal_traceback_text;
use support::{Flavor, TempDir};

/// What a crashed fixture left: its stderr (the crash traceback) and its core, if any.
struct Crash {
    stderr: String,
    core: Option<PathBuf>,
}

/// Runs `exe scenario` (under `qemu-aarch64` when `qemu`) in `dir` with GOTRACEBACK=crash and
/// unlimited cores, waits for READY, sends SIGQUIT and waits for the process to die.
/// Waits until a thread of `pid` is blocked in `read(0, ...)` (x86_64's syscall 0 on fd 0,
/// as `/proc/PID/task/TID/syscall` shows it, for a native process and for qemu-user's
/// emulated one alike), or `most` has passed.
fn wait_reading_stdin(pid: i32, most: Duration) {
    let deadline = Instant::now() + most;
    while Instant::now() < deadline {
        let reading = fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| s.starts_with("0 0x0 "))
            });
        if reading {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn crash(exe: &Path, scenario: &str, dir: &Path, qemu: bool) -> Result<Crash, String> {
    let mut cmd = Command::new("sh");
    let script = if qemu {
        "ulimit -c unlimited; exec qemu-aarch64 \"$0\" \"$@\""
    } else {
        "ulimit -c unlimited; exec \"$0\" \"$@\""
    };
    let errf = fs::File::create(dir.join("stderr.txt")).map_err(|e| e.to_string())?;
    cmd.arg("-c")
        .arg(script)
        .arg(exe)
        .arg(scenario)
        .current_dir(dir)
        .env("GOTRACEBACK", "crash")
        .env_remove("GODEBUG")
        .env_remove("GOMAXPROCS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(errf));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", exe.display()))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let pid = child.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(if qemu { 120 } else { 30 });
    let ready = loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) if l.starts_with("READY ") => break Ok(()),
            Ok(_) => continue,
            Err(_) => break Err(format!("{} {scenario}: no READY", exe.display())),
        }
    };
    if let Err(e) = ready {
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = child.wait();
        return Err(format!(
            "{e}\nstderr:\n{}",
            fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default()
        ));
    }
    // The fixture writes READY, then returns from that write and waits for commands on
    // stdin. A SIGQUIT before it is back in that read can find its main goroutine still in the
    // write, which then returns between the traceback and the core: wait for the read.
    wait_reading_stdin(pid, Duration::from_secs(if qemu { 20 } else { 5 }));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = child.wait();
                return Err(format!(
                    "{}: still running 120 s after SIGQUIT",
                    exe.display()
                ));
            }
        }
    }
    drop(stdin);
    let stderr = fs::read_to_string(dir.join("stderr.txt")).map_err(|e| e.to_string())?;
    let mut core = None;
    for e in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // The directory is the crash's own: besides stderr.txt, only the core is written
        // there, under whatever name core_pattern gives it.
        let hit = if qemu {
            name.starts_with("qemu_") && name.ends_with(".core")
        } else {
            name != "stderr.txt"
        };
        if hit {
            core = Some(e.path());
        } else if qemu && (name == "core" || name.starts_with("core.")) {
            // The kernel's core of qemu itself (it aborts too): not ours, and big.
            let _ = fs::remove_file(e.path());
        }
    }
    Ok(Crash { stderr, core })
}

fn dump_core(core: &Path, exe: Option<&Path>, extra: &[&str]) -> Result<support::Output, String> {
    let mut args = vec![
        "dump".to_string(),
        "-q".into(),
        "--core".into(),
        core.display().to_string(),
    ];
    if let Some(e) = exe {
        args.push("--exe".into());
        args.push(e.display().to_string());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    support::run_goroscope(&a, Duration::from_secs(120))
}

/// The scenario the crash tests use: every scenario at once.
const SCENARIO: &str = "all";

/// One crash of one build, compared; Err describes what went wrong.
fn crash_and_compare(
    name: &str,
    exe: &Path,
    qemu: bool,
    pass_exe: bool,
    minor: u32,
) -> Result<bool, String> {
    let dir = TempDir::new(&format!("core-{name}"));
    let r = crash_and_compare_in(&dir.0, name, exe, qemu, pass_exe, minor);
    if r.is_err() {
        // Keep the core and the traceback for a look.
        eprintln!("{name}: kept {}", dir.0.display());
        std::mem::forget(dir);
    }
    r
}

fn crash_and_compare_in(
    dir: &Path,
    name: &str,
    exe: &Path,
    qemu: bool,
    pass_exe: bool,
    minor: u32,
) -> Result<bool, String> {
    let c = crash(exe, SCENARIO, dir, qemu)?;
    let Some(core) = c.core else {
        if qemu {
            return Err(format!("{name}: qemu wrote no core\nstderr:\n{}", c.stderr));
        }
        return Ok(false);
    };
    let out = dump_core(&core, pass_exe.then_some(exe), &[])?;
    if !out.status.success() {
        return Err(format!(
            "{name}: goroscope dump --core failed: {}\n{}",
            out.status, out.stderr
        ));
    }
    compare_crash(&out.stdout, &signal_traceback_text(&c.stderr), minor < 22)
        .map_err(|e| format!("{name}:\n{e}"))?;
    Ok(true)
}

fn core_pattern() -> String {
    fs::read_to_string("/proc/sys/kernel/core_pattern")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn amd64_kernel_core_matches_crash_traceback() {
    let Some(()) = support::require(support::require::cores_in_working_directory()) else {
        return;
    };
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for tc in support::require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped] {
            let name = format!("{}-{}", tc.version, flavor.name());
            let exe = match support::build_fixture(&tc, flavor) {
                Ok(e) => e,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            // Default: the executable from NT_FILE; stripped: given with --exe.
            match crash_and_compare(
                &format!("amd64-{name}"),
                &exe,
                false,
                flavor == Flavor::Stripped,
                tc.minor(),
            ) {
                Ok(true) => table.push(format!("{name}: exact")),
                Ok(false) => {
                    table.push(format!("{name}: NO CORE"));
                    failures.push(format!(
                        "amd64-{name}: the kernel wrote no core (core_pattern {:?}, RLIMIT_CORE unlimited)",
                        core_pattern()
                    ));
                }
                Err(e) => {
                    table.push(format!("{name}: DIFFERENT"));
                    failures.push(e);
                }
            }
        }
    }
    eprintln!("amd64 kernel cores:\n  {}", table.join("\n  "));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn gcore_core_matches_runtime_stack() {
    let Some(gcore) = support::require(support::tool("gcore")) else {
        return;
    };
    let tc = support::toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap();
    let mut child = support::Child::start(&exe, SCENARIO).unwrap();
    let stack = child.stack().unwrap();
    let dir = TempDir::new(&format!("core-{}", "gcore"));
    let prefix = dir.0.join("gcore");
    let out = support::run_with_timeout(
        Command::new(gcore)
            .arg("-o")
            .arg(&prefix)
            .arg(child.pid.to_string()),
        Duration::from_secs(120),
    )
    .unwrap();
    let core = dir.0.join(format!("gcore.{}", child.pid));
    assert!(
        core.is_file(),
        "gcore wrote no core: {}\n{}",
        out.stdout,
        out.stderr
    );
    support::assert_running(child.pid);
    let dump = dump_core(&core, None, &["--level", "1"]).unwrap();
    assert!(dump.status.success(), "{}", dump.stderr);
    let g = support::parse(&dump.stdout);
    let r = support::parse(&stack);
    support::compare(&g.goroutines, &r.goroutines, 1, &child.info).unwrap();
    // The live dump right after agrees with the core on every parked goroutine too.
    let live = support::goroscope_dump(child.pid).unwrap();
    support::assert_same_parked(("the core", &dump.stdout), ("the live dump", &live));
    drop(child);
}

/// gdb script for [`core_of_a_thread_in_the_signal_handler_matches_runtime_stack`]: finds the
/// thread running `main.busySpin`, sends it SIGURG (Go's preemption signal, which the runtime
/// handles and goes on after), stops it in `runtime.sighandler` and writes the core. Prints
/// `IN HANDLER` when it did, `NO BUSY THREAD` when no thread was in busySpin at the attach.
const GDB_STOP_IN_HANDLER: &str = r#"
import gdb
gdb.execute("set pagination off")
gdb.execute("handle SIGURG nostop noprint pass")
busy = None
for t in gdb.selected_inferior().threads():
    t.switch()
    name = gdb.newest_frame().name()
    if name and name.endswith("busySpin"):
        busy = t
if busy is None:
    print("NO BUSY THREAD")
else:
    busy.switch()
    gdb.execute("break runtime.sighandler thread %d" % busy.num)
    gdb.execute("signal SIGURG")
    if gdb.selected_thread().num == busy.num and gdb.newest_frame().name() == "runtime.sighandler":
        print("IN HANDLER")
        gdb.execute("delete")
        gdb.execute("gcore " + CORE)
"#;

#[test]
fn core_of_a_thread_in_the_signal_handler_matches_runtime_stack() {
    // A goroutine running on a thread that a signal interrupted: the thread's registers are
    // the handler's, on the signal stack; its goroutine's frames start where the signal
    // frame says the thread was.
    let Some(gdb) = support::require(support::tool("gdb")) else {
        return;
    };
    let tc = support::toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap();
    let mut child = support::Child::start(&exe, SCENARIO).unwrap();
    let stack = child.stack().unwrap();
    let dir = TempDir::new("core-handler");
    let core = dir.0.join("core");
    let script = dir.0.join("stop.py");
    fs::write(
        &script,
        format!(
            "CORE = {:?}\n{GDB_STOP_IN_HANDLER}",
            core.display().to_string()
        ),
    )
    .unwrap();
    // The busy goroutine may be between two runs of busySpin at the attach: try again then.
    let mut said = String::new();
    for _ in 0..10 {
        let out = support::run_with_timeout(
            Command::new(&gdb)
                .args(["-q", "-batch", "-nx", "-p"])
                .arg(child.pid.to_string())
                .arg("-ex")
                .arg(format!("source {}", script.display())),
            Duration::from_secs(120),
        )
        .unwrap();
        said = format!("{}\n{}", out.stdout, out.stderr);
        if !said.contains("NO BUSY THREAD") {
            break;
        }
    }
    assert!(
        said.contains("IN HANDLER") && core.is_file(),
        "gdb did not stop the busy thread in the signal handler:\n{said}"
    );
    support::assert_running(child.pid);
    let core_arg = core.display().to_string();
    let threads =
        support::run_goroscope(&["threads", "--core", &core_arg], Duration::from_secs(120))
            .unwrap();
    assert!(
        threads.stdout.contains("runtime.sighandler"),
        "no thread of the core is in the signal handler:\n{}{}",
        threads.stdout,
        threads.stderr
    );
    let dump = dump_core(&core, None, &["--level", "1"]).unwrap();
    assert!(dump.status.success(), "{}", dump.stderr);
    let g = support::parse(&dump.stdout);
    let r = support::parse(&stack);
    support::compare(&g.goroutines, &r.goroutines, 1, &child.info).unwrap();
    drop(child);
}

#[test]
fn arm64_qemu_core_matches_crash_traceback() {
    // scripts/test.sh installs qemu-user; without it there is no arm64 to test.
    let Some(_) = support::require(support::tool("qemu-aarch64")) else {
        return;
    };
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for tc in support::require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped] {
            let name = format!("{}-{}", tc.version, flavor.name());
            let exe = match support::fixture::build_fixture_arm64(&tc, flavor) {
                Ok(e) => e,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            match crash_and_compare(&format!("arm64-{name}"), &exe, true, true, tc.minor()) {
                Ok(_) => table.push(format!("{name}: exact")),
                Err(e) => {
                    table.push(format!("{name}: DIFFERENT"));
                    failures.push(e);
                }
            }
        }
    }
    eprintln!("arm64 qemu cores:\n  {}", table.join("\n  "));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs goroscope on a damaged core: it must exit 0 (a partial dump) or 1 with one line on
/// stderr, never panic or hang.
fn check_damaged(core: &Path, exe: &Path, what: &str) -> Result<(), String> {
    let out = dump_core(core, Some(exe), &[])?;
    let code = out.status.code();
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.starts_with("goroscope: warning: "))
        .collect();
    let ok = match code {
        Some(0) => true,
        Some(1) => lines.len() == 1 && lines[0].starts_with("goroscope: "),
        _ => false,
    };
    if !ok || out.stderr.contains("panicked") {
        return Err(format!("{what}: exit {:?}\nstderr:\n{}", code, out.stderr));
    }
    Ok(())
}

/// `(offset, size)` of the PT_NOTE segment and of the program header table of a core.
fn note_and_phdrs(b: &[u8]) -> ((usize, usize), (usize, usize)) {
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let phoff = u64_at(32);
    let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
    let mut note = (0, 0);
    for i in 0..phnum {
        let p = phoff + i * 56;
        if u32::from_le_bytes(b[p..p + 4].try_into().unwrap()) == 4 {
            note = (u64_at(p + 8), u64_at(p + 32));
        }
    }
    (note, (phoff, phnum * 56))
}

#[test]
fn damaged_cores_fail_cleanly() {
    // A real core to damage: a gcore of a small fixture (works under any core_pattern).
    let Some(gcore) = support::require(support::tool("gcore")) else {
        return;
    };
    let tc = support::toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap();
    let child = support::Child::start(&exe, "sleep").unwrap();
    let dir = TempDir::new(&format!("core-{}", "damaged"));
    let out = support::run_with_timeout(
        Command::new(gcore)
            .arg("-o")
            .arg(dir.0.join("gcore"))
            .arg(child.pid.to_string()),
        Duration::from_secs(120),
    )
    .unwrap();
    let core = dir.0.join(format!("gcore.{}", child.pid));
    assert!(core.is_file(), "gcore wrote no core: {}", out.stderr);
    drop(child);
    let good = fs::read(&core).unwrap();
    let ((note_off, note_len), (ph_off, ph_len)) = note_and_phdrs(&good);
    assert!(note_len > 0);
    let bad = dir.0.join("bad.core");
    let mut failures = Vec::new();

    // Truncations: inside the header, the program headers, the notes, and the memory.
    let mut cuts = vec![
        0,
        1,
        4,
        63,
        64,
        ph_off + ph_len / 2,
        ph_off + ph_len,
        note_off + 20,
        note_off + note_len / 2,
    ];
    cuts.extend([
        note_off + note_len,
        good.len() / 4,
        good.len() / 2,
        good.len() * 3 / 4,
        good.len() - 1,
    ]);
    for cut in cuts {
        fs::write(&bad, &good[..cut.min(good.len())]).unwrap();
        if let Err(e) = check_damaged(&bad, &exe, &format!("truncated at {cut}")) {
            failures.push(e);
        }
    }

    // Random byte changes in the notes and program headers, for a few seconds.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // (The parsers themselves are fuzzed in-process by the unit tests in src/target/core.rs;
    // here every run is a whole goroscope process on a big core.)
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut runs = 0;
    let mut m = good.clone();
    while (Instant::now() < deadline || runs < 20) && runs < 300 {
        m.copy_from_slice(&good);
        for _ in 0..1 + next() % 8 {
            let r = next();
            let (base, len) = if r % 3 == 0 {
                (ph_off, ph_len)
            } else {
                (note_off, note_len)
            };
            let i = base + (next() as usize) % len;
            m[i] = match r % 5 {
                0 => 0xff,
                1 => 0,
                _ => (next() >> 24) as u8,
            };
        }
        fs::write(&bad, &m).unwrap();
        if let Err(e) = check_damaged(&bad, &exe, &format!("mutation run {runs}")) {
            failures.push(e);
        }
        runs += 1;
    }
    eprintln!("damaged cores: {runs} random mutations");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn core_errors_are_one_line() {
    let dir = TempDir::new(&format!("core-{}", "errors"));
    let tc = support::toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (dir.0.join("missing"), "cannot read core file"),
        (exe.clone(), "not a core"),
        (
            {
                let p = dir.0.join("text");
                fs::write(
                    &p,
                    "hello, this is not a core file at all; it is long enough to be one",
                )
                .unwrap();
                p
            },
            "is not a core file",
        ),
    ];
    for (path, want) in cases {
        let out = dump_core(&path, None, &[]).unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains(want), "want {want:?}: {}", out.stderr);
    }
    // Both a pid and --core, or bt with two ids and --core: usage errors.
    let out =
        support::run_goroscope(&["dump", "1", "--core", "x"], Duration::from_secs(10)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

#[test]
fn snapshot_core_round_trip() {
    let tc = support::toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap();
    let child = support::Child::start(&exe, SCENARIO).unwrap();
    let dir = TempDir::new(&format!("core-{}", "snapshot"));
    let core = dir.0.join("snap.core");
    let gsnap = dir.0.join("snap.gsnap");
    let pid = child.pid.to_string();
    let (c, g) = (core.display().to_string(), gsnap.display().to_string());
    let threads_before = thread_count(child.pid);
    let out = support::run_goroscope(
        &["snapshot", &pid, "--core", &c, "-o", &g],
        Duration::from_secs(120),
    )
    .unwrap();
    let threads_after = thread_count(child.pid);
    assert!(out.status.success(), "{}", out.stderr);
    support::assert_running(child.pid);
    // `wrote core FILE (N threads, ...)`: every thread of the process at that moment.
    let captured: usize = out
        .stderr
        .split_once(" (")
        .and_then(|(_, r)| r.split_once(" threads"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no thread count in {:?}", out.stderr));
    let (lo, hi) = (
        threads_before.min(threads_after),
        threads_before.max(threads_after),
    );
    assert!(
        (lo..=hi).contains(&captured),
        "the core has {captured} threads, the process had {threads_before} before and {threads_after} after"
    );
    // The core and the snapshot come from the same frozen window: identical dumps, running
    // goroutines included, at both levels.
    for level in ["1", "2"] {
        let from_core = dump_core(&core, None, &["--level", level]).unwrap();
        assert!(from_core.status.success(), "{}", from_core.stderr);
        let system = if level == "2" {
            vec!["--system"]
        } else {
            vec![]
        };
        let mut args = vec!["show", "--format", "go"];
        args.extend(system);
        args.push(&g);
        let shown = support::run_goroscope(&args, Duration::from_secs(60)).unwrap();
        assert!(shown.status.success(), "{}", shown.stderr);
        assert_eq!(
            from_core.stdout, shown.stdout,
            "level {level}: dump --core differs from the snapshot taken with it"
        );
    }
    // And the live process, dumped again, agrees on every parked goroutine.
    let live = support::goroscope_dump(child.pid).unwrap();
    let from_core = dump_core(&core, None, &["--level", "1"]).unwrap().stdout;
    support::assert_same_parked(("the core", &from_core), ("the live dump", &live));
    // gdb opens it and sees every thread.
    let Some(gdb) = support::require(support::tool("gdb")) else {
        return;
    };
    {
        let out = support::run_with_timeout(
            Command::new(gdb)
                .args(["-nx", "-batch", "-ex", "info threads", "-c"])
                .arg(&core)
                .arg(&exe),
            Duration::from_secs(120),
        )
        .unwrap();
        let threads = out
            .stdout
            .lines()
            .filter(|l| {
                l.trim_start()
                    .trim_start_matches('*')
                    .trim_start()
                    .starts_with(char::is_numeric)
                    && l.contains("LWP")
            })
            .count();
        assert_eq!(
            threads, captured,
            "gdb's threads in the core, goroscope wrote {captured}; gdb info threads:\n{}\n{}",
            out.stdout, out.stderr
        );
    }
    drop(child);
}

/// The threads of a process now (`/proc/PID/task`).
fn thread_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"))
}
