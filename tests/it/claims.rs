//! What the README promises about the one-shot commands, against the runtime's (and the
//! kernel's) own account of the same process:
//!
//! - `threads`: every thread of `/proc/PID/task`; a thread blocked in a system call is where
//!   the kernel says (`/proc/PID/task/TID/syscall`: its pc), and a thread in a `read(2)` whose
//!   stack pointer is on a goroutine's stack (the runtime prints every frame's sp and fp) runs
//!   that goroutine.
//! - `grs -t`: every goroutine's frames, runtime frames included, as the runtime's
//!   GOTRACEBACK=system traceback prints them.
//! - `--group-by` user-frame, current-frame, go-statement, start, running and system: the
//!   groups the runtime's traceback makes when keyed the same way.
//! - `--wait-min`: exactly the goroutines the runtime prints with that many wait minutes.
//! - A process of a thousand threads (half in `read(2)`, half running goroutines locked to
//!   them, two busy): `dump` equals its own `runtime.Stack`, `threads` lists every thread, and
//!   the target runs on.
//! - A deleted or replaced executable is read through `/proc/PID/exe`.
//! - A target in a user namespace goroscope's capabilities do not cover: the refusal says so.
//!
//! The oracle of the first three is the SIGQUIT traceback of a fixture started with
//! GOTRACEBACK=system, sent after goroscope's commands: every goroutine of the `syscall`
//! scenario is parked (in a channel receive, or in `read(2)` on stdin and on a pipe), so
//! nothing moves in between. Every process a test starts is killed by its pid and reaped.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{Child, Flavor, TempDir, Toolchain, toolchains};

const RUN: Duration = Duration::from_secs(120);

fn exe(tc: &Toolchain) -> PathBuf {
    support::build_fixture(tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"))
}

/// `goroscope <args>`, which must exit 0; its stdout.
fn goroscope(args: &[&str]) -> String {
    support::goroscope_ok(args, RUN)
}

/// Every thread id of `pid`, sorted.
fn tids(pid: u32) -> Vec<i32> {
    let mut t: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    t.sort_unstable();
    t
}

/// `/proc/PID/task/TID/syscall` of every thread: `nr arg1..arg6 sp pc` of a thread blocked in
/// a system call.
fn syscalls(pid: u32) -> BTreeMap<i32, String> {
    tids(pid)
        .into_iter()
        .filter_map(|t| {
            Some((
                t,
                std::fs::read_to_string(format!("/proc/{pid}/task/{t}/syscall"))
                    .ok()?
                    .trim()
                    .to_string(),
            ))
        })
        .collect()
}

/// [`syscalls`] once no thread is `running`, within 5 s (else the last reading): a dump
/// interrupts the system calls of every thread, and each one is restarted only when that
/// thread next gets a CPU, which takes a while on a busy machine. In a scenario whose
/// goroutines are all parked, every thread then waits in a system call.
fn quiet_syscalls(pid: u32) -> BTreeMap<i32, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let now = syscalls(pid);
        if std::time::Instant::now() >= deadline || !now.values().any(|s| s == "running") {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn hex(w: &str) -> Option<u64> {
    u64::from_str_radix(w.strip_prefix("0x")?, 16).ok()
}

/// One line of `threads`: `  Thread TID at 0xPC file:line func (goroutine N)`.
#[derive(Debug)]
struct ThreadLine {
    tid: i32,
    pc: u64,
    goid: Option<u64>,
}

fn parse_threads(text: &str) -> Vec<ThreadLine> {
    text.lines()
        .map(|l| {
            let rest = l
                .get(2..)
                .and_then(|r| r.strip_prefix("Thread "))
                .unwrap_or_else(|| panic!("not a thread line: {l:?}"));
            let (tid, rest) = rest.split_once(" at ").unwrap();
            let pc = rest
                .split(' ')
                .next()
                .and_then(hex)
                .unwrap_or_else(|| panic!("no pc: {l:?}"));
            let goid = l
                .strip_suffix(')')
                .and_then(|r| r.rsplit_once(" (goroutine "))
                .map(|(_, g)| g.parse().unwrap());
            ThreadLine {
                tid: tid.parse().unwrap(),
                pc,
                goid,
            }
        })
        .collect()
}

/// `grs -t`: goroutine id → its frames `(pc, function, file:line)`.
fn parse_grs_stacks(text: &str) -> BTreeMap<u64, Vec<(u64, String, String)>> {
    let mut out: BTreeMap<u64, Vec<(u64, String, String)>> = BTreeMap::new();
    let mut cur = None;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if let Some(rest) = l.get(2..).and_then(|r| r.strip_prefix("Goroutine ")) {
            let id: u64 = rest.split(' ').next().unwrap().parse().unwrap();
            out.insert(id, Vec::new());
            cur = Some(id);
        } else if let Some((n, f)) = l
            .trim_start()
            .split_once("  0x")
            .filter(|_| l.starts_with("    "))
        {
            assert!(n.trim().parse::<usize>().is_ok(), "{l:?}");
            let (pc, func) = f.split_once(" in ").unwrap_or_else(|| panic!("{l:?}"));
            let at = lines
                .next()
                .and_then(|a| a.trim().strip_prefix("at "))
                .unwrap_or_else(|| panic!("no `at` after {l:?}"));
            out.get_mut(&cur.expect("a goroutine line first"))
                .unwrap()
                .push((
                    u64::from_str_radix(pc, 16).unwrap(),
                    func.to_string(),
                    at.to_string(),
                ));
        } else {
            assert!(
                l.starts_with('[') && l.ends_with(" goroutines]"),
                "unexpected line in grs -t: {l:?}"
            );
        }
    }
    out
}

/// The grouped view: key → (members, ids listed).
fn parse_groups(text: &str) -> BTreeMap<String, (usize, Vec<u64>)> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().skip(1).filter(|l| !l.is_empty());
    while let Some(h) = lines.next() {
        let n: usize = h
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("group header {h:?}\n{text}"));
        let (_, ids) = h.rsplit_once("]:").unwrap_or_else(|| panic!("{h:?}"));
        let ids: Vec<u64> = ids
            .split_whitespace()
            .take_while(|w| !w.starts_with('('))
            .map(|w| w.parse().unwrap())
            .collect();
        let key = lines
            .next()
            .and_then(|k| k.strip_prefix("    "))
            .unwrap_or_else(|| panic!("no key after {h:?}\n{text}"));
        assert!(
            out.insert(key.to_string(), (n, ids)).is_none(),
            "key {key:?} twice\n{text}"
        );
    }
    out
}

/// `{func} {file}:{line}` of a frame, as the groups name locations.
fn loc(f: &support::Frame) -> String {
    format!("{} {}:{}", f.func, f.file, f.line)
}

/// The lowest `sp=` and highest `fp=` of a goroutine's frames in a level-2 traceback.
fn stack_span(g: &support::Goroutine) -> Option<(u64, u64)> {
    let words = |key: &str| -> Vec<u64> {
        g.raw
            .split_whitespace()
            .filter_map(|w| w.strip_prefix(key))
            .filter_map(hex)
            .collect()
    };
    Some((
        words("sp=").into_iter().min()?,
        words("fp=").into_iter().max()?,
    ))
}

/// The function a goroutine started in: the frame above `runtime.goexit`, or, when that frame
/// is the compiler's wrapper of its `go` statement, the frame the wrapper calls. A wrapper is
/// named `<creator>.gowrapN` since Go 1.21; before, it is a `funcN` closure whose line is the
/// `go` statement's (as the traceback prints it under `created by`).
fn start_func(g: &support::Goroutine) -> String {
    let i = g
        .frames
        .iter()
        .position(|f| f.func == "runtime.goexit")
        .unwrap_or_else(|| panic!("no goexit frame:\n{}", g.raw));
    let i = i
        .checked_sub(1)
        .unwrap_or_else(|| panic!("nothing above goexit:\n{}", g.raw));
    let top = &g.frames[i];
    let gowrap = top
        .func
        .rsplit_once(".gowrap")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let wrapper = gowrap
        || g.created_by
            .as_ref()
            .is_some_and(|c| c.file == top.file && c.line == top.line);
    match i.checked_sub(1) {
        Some(j) if wrapper => g.frames[j].func.clone(),
        _ => top.func.clone(),
    }
}

/// One toolchain: the views goroscope prints of one moment against the SIGQUIT traceback.
fn views_of_one_moment(tc: &Toolchain) -> Result<(), String> {
    let mut fx = Child::start_env(&exe(tc), "syscall", &[("GOTRACEBACK", "system")])?;
    fx.gc()?;
    let user: BTreeSet<u64> = support::parse_strict(&fx.stack()?)?
        .goroutines
        .iter()
        .map(|g| g.id)
        .collect();
    let pid = fx.pid.to_string();
    // The collection woke the runtime's own goroutines: wait until they are parked again.
    support::settled_system_dump(fx.pid, &[], &[])?;
    let (tids_before, sys_before) = (tids(fx.pid), quiet_syscalls(fx.pid));
    let threads = goroscope(&["threads", "-q", &pid]);
    let grs = goroscope(&["grs", "-q", "-t", "--system", &pid]);
    let keys = [
        "user-frame",
        "current-frame",
        "go-statement",
        "start",
        "running",
        "system",
    ];
    let groups: Vec<String> = keys
        .iter()
        .map(|k| goroscope(&["dump", "-q", "--system", "--group-by", k, &pid]))
        .collect();
    let (tids_after, sys_after) = (tids(fx.pid), quiet_syscalls(fx.pid));
    support::check_running(fx.pid)?;
    let rt = support::traceback::signal_traceback(&fx.sigquit()?)?;
    let mut problems = Vec::new();
    if let Some(g) = rt.goroutines.iter().find(|g| !g.is_parked()) {
        return Err(format!(
            "the syscall scenario has a goroutine that is not parked:\n{}",
            g.raw
        ));
    }

    // threads: every thread; pcs of the kernel; the goroutine of each read(2).
    let ts = parse_threads(&threads);
    let listed: Vec<i32> = ts.iter().map(|t| t.tid).collect();
    if listed != tids_before || tids_before != tids_after {
        problems.push(format!(
            "threads lists {listed:?}; /proc/{pid}/task had {tids_before:?}, then {tids_after:?}"
        ));
    }
    let still: BTreeMap<i32, Vec<&str>> = sys_before
        .iter()
        .filter(|(t, s)| {
            sys_after.get(t) == Some(s)
                && s.split(' ')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .map(|(t, s)| (*t, s.split(' ').collect()))
        .collect();
    let mut in_syscall = 0;
    for t in &ts {
        if let Some(words) = still.get(&t.tid) {
            in_syscall += 1;
            let kernel_pc = words.last().and_then(|w| hex(w));
            if kernel_pc != Some(t.pc) {
                problems.push(format!(
                    "thread {}: pc {:#x}, the kernel says {}",
                    t.tid,
                    t.pc,
                    words.join(" ")
                ));
            }
        }
    }
    if in_syscall < 2 {
        problems.push(format!(
            "only {in_syscall} threads stayed in one system call: {sys_before:?} then {sys_after:?}"
        ));
    }
    // A thread in a system call made on a goroutine's stack (a raw `read(2)`) has its user sp
    // just below that goroutine's innermost frame: the runtime prints every frame's sp and fp.
    let mut reads = 0;
    for (tid, words) in &still {
        let Some(sp) = words.len().checked_sub(2).and_then(|i| hex(words[i])) else {
            continue;
        };
        let hit: Vec<u64> = rt
            .goroutines
            .iter()
            .filter(|g| g.state.starts_with("syscall"))
            .filter(|g| {
                stack_span(g).is_some_and(|(lo, hi)| lo.saturating_sub(1024) < sp && sp <= hi)
            })
            .map(|g| g.id)
            .collect();
        match hit[..] {
            [] => {}
            [id] => {
                reads += 1;
                let said = ts.iter().find(|t| t.tid == *tid).and_then(|t| t.goid);
                if said != Some(id) {
                    problems.push(format!("thread {tid} ({}) is on the stack of goroutine {id}, threads says goroutine {said:?}\n{threads}", words.join(" ")));
                }
            }
            _ => problems.push(format!(
                "thread {tid}'s sp {sp:#x} is on the stacks of goroutines {hit:?}"
            )),
        }
    }
    if reads < 2 {
        problems.push(format!("{reads} threads found on a goroutine's stack in a system call; the scenario has two (stdin, a pipe): {still:?}"));
    }

    // grs -t: every goroutine, every frame the runtime prints at level 2.
    let stacks = parse_grs_stacks(&grs);
    let ids: BTreeSet<u64> = rt.goroutines.iter().map(|g| g.id).collect();
    if stacks.keys().copied().collect::<BTreeSet<u64>>() != ids {
        problems.push(format!(
            "grs -t lists {:?}, the runtime printed {ids:?}",
            stacks.keys().collect::<Vec<_>>()
        ));
    }
    for g in &rt.goroutines {
        let want: Vec<(String, String)> = g
            .frames
            .iter()
            .map(|f| (f.func.clone(), format!("{}:{}", f.file, f.line)))
            .collect();
        let got: Vec<(String, String)> = stacks
            .get(&g.id)
            .map(|s| s.iter().map(|(_, f, at)| (f.clone(), at.clone())).collect())
            .unwrap_or_default();
        if got != want {
            problems.push(format!(
                "grs -t of goroutine {}: {got:?}\n--- runtime\n{}",
                g.id, g.raw
            ));
        }
    }

    // --group-by: the runtime's goroutines keyed the same way.
    let with_m = tc.minor() >= 22; // `m=` in headers
    for (key, text) in keys.iter().zip(&groups) {
        if *key == "running" && !with_m {
            continue;
        }
        let mut want: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for g in &rt.goroutines {
            let k = match *key {
                "user-frame" => g
                    .frames
                    .iter()
                    .find(|f| !goroscope::snapshot::is_runtime_internal(&f.func))
                    .map(loc)
                    .unwrap_or_else(|| "(no user frame)".into()),
                "current-frame" => loc(&g.frames[0]),
                "go-statement" => g
                    .created_by
                    .as_ref()
                    .map(|c| format!("{} {}:{}", c.func, c.file, c.line))
                    .unwrap_or_else(|| "(no go statement)".into()),
                "start" => start_func(g),
                "running" => (if g.header_extra.contains(" m=nil") {
                    "not running"
                } else {
                    "running on a thread"
                })
                .into(),
                _ => (if user.contains(&g.id) {
                    "user goroutine"
                } else {
                    "runtime goroutine"
                })
                .into(),
            };
            want.entry(k).or_default().insert(g.id);
        }
        let got = parse_groups(text);
        let same = got.len() == want.len()
            && got.iter().all(|(k, (n, listed))| {
                want.get(k).is_some_and(|w| {
                    w.len() == *n
                        && listed.len() == (*n).min(10)
                        && listed.iter().all(|id| w.contains(id))
                })
            });
        if !same {
            problems.push(format!(
                "--group-by {key}: goroscope\n{text}\nthe runtime's goroutines keyed so: {want:#?}"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// `threads`, `grs -t` and `--group-by` on every toolchain.
#[test]
fn threads_grs_and_groups_match_the_runtime() {
    let mut failures = Vec::new();
    for tc in toolchains::require_toolchains() {
        if let Err(e) = views_of_one_moment(&tc) {
            failures.push(format!("=== {} ===\n{e}", tc.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `--wait-min M` keeps exactly the goroutines the runtime prints with at least M wait
/// minutes. Two collections stamp every blocked goroutine's `waitsince` (with the start of
/// the first); a minute later the runtime counts one minute for each, and none for a goroutine
/// that blocked after them.
#[test]
fn wait_min_keeps_what_the_runtime_counts_minutes_for() {
    let mut fx =
        Child::start(&exe(&toolchains::newest()), "chan").unwrap_or_else(|e| panic!("{e}"));
    fx.gc().unwrap();
    fx.gc().unwrap();
    std::thread::sleep(Duration::from_secs(61));
    fx.spawn().unwrap();
    let rt = support::parse_strict(&fx.stack().unwrap()).unwrap();
    let caller = rt.goroutines[0].id;
    let pid = fx.pid.to_string();
    let minutes = |g: &support::Goroutine| -> u64 {
        g.state
            .split(", ")
            .find_map(|p| p.strip_suffix(" minutes"))
            .map(|m| m.parse().unwrap())
            .unwrap_or(0)
    };
    for m in [1u64, 2] {
        let want: BTreeMap<u64, String> = rt
            .goroutines
            .iter()
            .filter(|g| g.id != caller && minutes(g) >= m)
            .map(|g| (g.id, g.state.clone()))
            .collect();
        let text = goroscope(&["dump", "-q", "--wait-min", &m.to_string(), &pid]);
        let got: BTreeMap<u64, String> = support::parse(&text)
            .goroutines
            .into_iter()
            .filter(|g| g.id != caller)
            .map(|g| (g.id, g.state))
            .collect();
        assert_eq!(got, want, "--wait-min {m}\n{text}");
        if m == 1 {
            assert!(
                want.len() >= 3,
                "the runtime counts a minute for the chan scenario's goroutines: {want:?}"
            );
            let spawned = rt
                .goroutines
                .iter()
                .find(|g| g.has_frame("main.spawnedPark"))
                .unwrap();
            assert_eq!(minutes(spawned), 0, "{}", spawned.raw);
        }
    }
    support::assert_running(fx.pid);
}

/// A program whose executable was deleted, or replaced by another file (a deploy renames the
/// new binary over it), is read through `/proc/PID/exe`: its dump is its runtime's.
#[test]
fn deleted_or_replaced_executable() {
    let dir = TempDir::new("claims-exe");
    let original = exe(&toolchains::newest());
    for how in ["deleted", "replaced"] {
        let path = dir.0.join(format!("fixture-{how}"));
        std::fs::copy(&original, &path).unwrap();
        let mut fx = Child::start(&path, "all").unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&path).unwrap();
        if how == "replaced" {
            let new = dir.0.join("new");
            std::fs::write(&new, "#!/bin/sh\necho not the program\n").unwrap();
            std::fs::rename(&new, &path).unwrap();
        }
        let link = std::fs::read_link(format!("/proc/{}/exe", fx.pid)).unwrap();
        assert!(
            link.to_string_lossy().ends_with(" (deleted)"),
            "{how}: /proc/PID/exe is {}",
            link.display()
        );
        let dump = support::goroscope_dump(fx.pid).unwrap_or_else(|e| panic!("{how}: {e}"));
        support::matches_oracle(&mut fx, &dump).unwrap_or_else(|e| panic!("{how}: {e}"));
    }
}

/// goroscope in a user namespace of its own (root there, with every capability, but not in
/// the target's namespace, the host's): the attach is refused and the message says why.
#[test]
fn target_in_a_user_namespace_goroscope_does_not_own() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test needs root: the target runs as root in the host's user namespace"
    );
    let probe = support::run_with_timeout(
        Command::new("unshare").args(["--user", "--map-root-user", "true"]),
        RUN,
    )
    .unwrap();
    assert!(
        probe.status.success(),
        "unshare --user (util-linux) must work here: {}",
        probe.stderr
    );
    let mut fx =
        Child::start(&exe(&toolchains::newest()), "chan").unwrap_or_else(|e| panic!("{e}"));
    let pid = fx.pid.to_string();
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--"])
        .arg(support::goroscope_bin())
        .args(["dump", &pid]);
    let out = support::run_with_timeout(&mut cmd, RUN).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stderr, out.stdout);
    let msg = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    assert!(
        msg.starts_with("goroscope: ") && !msg.contains('\n') && out.stdout.is_empty(),
        "{}",
        out.stderr
    );
    for w in [
        &format!("not permitted to trace process {pid}"),
        "another user namespace",
        "run goroscope in the target's user namespace",
    ] {
        assert!(msg.contains(w), "{w:?}: {msg}");
    }
    support::check_running(fx.pid).unwrap();
    fx.ping().unwrap();
}

/// Each thread's own stack (`--thread-stacks`: the JSON's `threads[].frames`, what the
/// session's `thread TID` then `bt` shows) against the crash traceback of the same moment:
/// with GOTRACEBACK=crash, SIGQUIT is relayed from M to M and each prints the stack it was on
/// when the signal arrived (`goroutine 0 [idle]:` and its g0 frames for an idle M). The
/// `locked` scenario is quiet: its threads are idle Ms (in `stopm`, `templateThread`,
/// `sysmon`), the thread of a goroutine wired to it by LockOSThread (idle in `stoplockedm`),
/// and goroutine 1's thread blocked in `read(2)` on stdin.
///
/// Exact where the runtime prints: function, arguments, file:line, `+0x`, `fp= sp= pc=`. Two
/// rules of the runtime's own are followed, not worked around:
/// - A goroutine in a system call is printed from where it entered it (`g.syscallpc/sp`,
///   `traceback1`), not from its thread's registers: its frames must be the thread's from
///   the frame that entered the call (same function, same sp and fp) outwards.
/// - The kernel rewinds a thread interrupted in a restartable system call to the `SYSCALL`
///   instruction before it runs the signal handler, so the runtime's innermost pc is 2 bytes
///   before the one ptrace shows (after the instruction): the only difference accepted, and
///   only when those 2 bytes of the executable are `SYSCALL` (0f 05); that frame's
///   function, arguments and sp/fp must still be the same.
///
/// A thread the signal found elsewhere (it moved between the two moments) is not compared,
/// but the blocked `read(2)`, the LockOSThread thread and an idle M must be.
#[test]
fn thread_stacks_match_the_crash_traceback() {
    let mut failures = Vec::new();
    for tc in toolchains::require_toolchains() {
        if let Err(e) = thread_stacks_of_one_moment(&tc) {
            failures.push(format!("=== {} ===\n{e}", tc.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A frame of goroscope's JSON as the runtime's crash traceback prints it.
fn crash_frame(f: &serde_json::Value) -> String {
    let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
    let n = |k: &str| f[k].as_u64().unwrap_or_default();
    if f["inlined"].as_bool() == Some(true) {
        return format!("{}(...)\n\t{}:{}", s("function"), s("file"), n("line"));
    }
    format!(
        "{}({})\n\t{}:{} +{:#x} fp={:#x} sp={:#x} pc={:#x}",
        s("function"),
        s("args"),
        s("file"),
        n("line"),
        n("pc") - n("entry"),
        n("fp"),
        n("sp"),
        n("pc")
    )
}

/// The runtime's frames of a crash section: two lines each (the header, and the goroutine's
/// `created by`, which is not a frame of the thread, left out).
fn runtime_frames(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().skip(1).collect();
    lines
        .chunks(2)
        .map(|c| c.join("\n"))
        .filter(|f| !f.starts_with("created by "))
        .collect()
}

/// The two bytes of the executable at `addr` (a non-PIE build: addresses are the ELF's).
fn code_bytes(exe: &std::path::Path, addr: u64) -> Option<[u8; 2]> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(exe).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let sec = file
        .sections()
        .find(|s| s.address() <= addr && addr + 2 <= s.address() + s.size())?;
    let bytes = sec.data().ok()?;
    let i = (addr - sec.address()) as usize;
    Some([bytes[i], bytes[i + 1]])
}

fn thread_stacks_of_one_moment(tc: &Toolchain) -> Result<(), String> {
    let exe = exe(tc);
    let mut fx = Child::start_env(&exe, "locked", &[("GOTRACEBACK", "crash")])?;
    let pid = fx.pid.to_string();
    support::settled_system_dump(fx.pid, &[], &[])?;
    let quiet = quiet_syscalls(fx.pid);
    let json = goroscope(&["dump", "-q", "--format", "json", "--thread-stacks", &pid]);
    // The stripped path (no symbol table: Ms found through the threads' g registers and
    // `alllink`; layouts from the built-in tables) finds the same stacks.
    let stripped = goroscope(&[
        "dump",
        "-q",
        "--no-dwarf",
        "--format",
        "json",
        "--thread-stacks",
        &pid,
    ]);
    // Every thread back in its system call before the signal: the freeze interrupted them.
    let _ = quiet_syscalls(fx.pid);
    let stderr = fx.sigquit()?;
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let snap = &v["snapshot"];
    let threads = snap["threads"].as_array().ok_or("no threads")?;
    let locked: Vec<u64> = snap["goroutines"]
        .as_array()
        .ok_or("no goroutines")?
        .iter()
        .filter(|g| {
            g["locked_to_thread"].as_bool() == Some(true)
                && g["frames"]
                    .as_array()
                    .is_some_and(|fs| fs.iter().any(|f| f["function"] == "main.lockedThreadWait"))
        })
        .filter_map(|g| g["addr"].as_u64())
        .collect();
    let sections = support::traceback::crash_threads(&stderr);
    let mut problems = Vec::new();
    let sv: serde_json::Value = serde_json::from_str(&stripped).map_err(|e| e.to_string())?;
    let key = |t: &serde_json::Value| (t["tid"].clone(), t["pc"].clone());
    for t in sv["snapshot"]["threads"].as_array().ok_or("no threads")? {
        let Some(d) = threads.iter().find(|d| key(d) == key(t)) else {
            continue;
        };
        for f in ["m_id", "stack", "frames", "stack_error"] {
            if t[f] != d[f] {
                problems.push(format!(
                    "thread {}: --no-dwarf gives {f} {}, with DWARF {}",
                    t["tid"], t[f], d[f]
                ));
            }
        }
    }
    let (mut compared, mut moved) = (Vec::new(), Vec::new());
    for sec in &sections {
        let Some(t) = threads.iter().find(|t| t["m_id"].as_i64() == Some(sec.m)) else {
            problems.push(format!(
                "the runtime printed m={} but goroscope names no thread with that M\n{}",
                sec.m, sec.text
            ));
            continue;
        };
        let tid = t["tid"].as_i64().unwrap_or_default();
        let pc = t["pc"].as_u64().unwrap_or_default();
        let restarted = pc == sec.pc + 2 && code_bytes(&exe, sec.pc) == Some([0x0f, 0x05]);
        if pc != sec.pc && !restarted {
            moved.push(format!(
                "thread {tid} (m={}): pc {pc:#x}, at the signal {:#x}",
                sec.m, sec.pc
            ));
            continue;
        }
        let mine: Vec<String> = t["frames"]
            .as_array()
            .map(|fs| fs.iter().map(crash_frame).collect())
            .unwrap_or_default();
        let theirs = runtime_frames(&sec.text);
        let header = sec.text.lines().next().unwrap_or_default();
        let on = t["stack"].as_str().unwrap_or_default();
        // The runtime's first frame's position in goroscope's frames, and how it must match.
        let first_fn = |f: &str| f.split('(').next().unwrap_or_default().to_string();
        let sp_fp = |f: &str| f.split_once(" fp=").map(|(_, r)| r.to_string());
        let (offset, whole_first) = if header.starts_with("goroutine 0 ") {
            if on != "g0" {
                problems.push(format!(
                    "thread {tid} (m={}): goroscope says it is on its {on:?} stack, the runtime printed its g0\n{}",
                    sec.m, sec.text
                ));
                continue;
            }
            (0, !restarted)
        } else {
            // A goroutine in a system call: printed from g.syscallpc/sp.
            let i = theirs.first().and_then(|f0| {
                mine.iter().position(|m| {
                    first_fn(m) == first_fn(f0)
                        && sp_fp(m).is_some_and(|s| {
                            sp_fp(f0).is_some_and(|r| {
                                // fp and sp equal; pc differs (the call into the system call).
                                s.split(" pc=").next() == r.split(" pc=").next()
                            })
                        })
                })
            });
            match i {
                Some(i) => (i, false),
                None => {
                    problems.push(format!(
                        "thread {tid} (m={}): the runtime printed its goroutine from where it entered the system call; no frame of goroscope's is that one\n--- runtime\n{}\n+++ goroscope\n{}",
                        sec.m,
                        sec.text,
                        mine.join("\n")
                    ));
                    continue;
                }
            }
        };
        let mut diff = Vec::new();
        let rest = &mine[offset.min(mine.len())..];
        if rest.len() != theirs.len() {
            diff.push(format!(
                "{} frames from there, the runtime printed {}",
                rest.len(),
                theirs.len()
            ));
        }
        for (i, (m, r)) in rest.iter().zip(&theirs).enumerate() {
            let same = if i == 0 && !whole_first {
                // Same function, arguments (first line), file and sp/fp.
                m.lines().next() == r.lines().next()
                    && m.split(':').next() == r.split(':').next()
                    && sp_fp(m).map(|s| s.split(" pc=").next().map(String::from))
                        == sp_fp(r).map(|s| s.split(" pc=").next().map(String::from))
            } else {
                m == r
            };
            if !same {
                diff.push(format!("frame {i}:\n  goroscope {m:?}\n  runtime   {r:?}"));
            }
        }
        if diff.is_empty() {
            compared.push((tid, sec.text.clone()));
        } else {
            problems.push(format!(
                "thread {tid} (m={}) differs: {}\n--- runtime\n{}\n+++ goroscope\n{}",
                sec.m,
                diff.join("\n"),
                sec.text,
                mine.join("\n")
            ));
        }
    }
    let has = |needle: &str| compared.iter().any(|(_, text)| text.contains(needle));
    let locked_m = compared.iter().any(|(_, text)| {
        text.contains("runtime.stoplockedm")
            && locked
                .iter()
                .any(|g| text.contains(&format!("runtime.park_m({g:#x}")))
    });
    if !locked_m {
        problems.push(format!(
            "the LockOSThread goroutine's thread (idle in stoplockedm, parking goroutine at {locked:x?}) was not compared"
        ));
    }
    if !has("main.serve(") {
        problems.push("goroutine 1's thread, in read(2), was not compared".into());
    }
    if !has("goroutine 0 ")
        || !(has("runtime.stopm()") || has("runtime.templateThread()") || has("runtime.sysmon()"))
    {
        problems.push("no idle M was compared".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n\ncompared threads {:?}; moved between the two moments: {moved:?}; the system calls before: {quiet:?}\n\nthe crash:\n{stderr}",
            problems.join("\n\n"),
            compared.iter().map(|c| c.0).collect::<Vec<_>>()
        ))
    }
}

/// A thread left asleep in `read(2)` by a dump's freeze that runs anyway (a signal arrives
/// for it inside the window): the dump sees it ran and takes its copy again with every thread
/// stopped, that one too; the dump is exact and the signal is delivered. The signal is SIGURG,
/// which the runtime handles on the thread itself (a preemption request) without waking a
/// goroutine: a SIGUSR1 would wake the fixture's os/signal goroutine, which then runs right
/// after the first thaw, so the two moments compared would differ for a reason of the test's
/// own making.
#[test]
fn a_thread_woken_while_left_asleep_is_copied_again() {
    support::require_test_hooks();
    let tc = toolchains::newest();
    let mut fx = Child::start_args(&exe(&tc), "threads", &["-n", "20"])
        .unwrap_or_else(|e| panic!("{}: {e}", tc.name()));
    let pid = fx.pid.to_string();
    let read = libc::SYS_read.to_string();
    let asleep = quiet_syscalls(fx.pid)
        .into_iter()
        .find(|(_, s)| s.split(' ').next() == Some(read.as_str()))
        .map(|(t, _)| t)
        .expect("a thread asleep in read(2)");
    let dir = TempDir::new("woken");
    let out_path = dir.0.join("dump.txt");
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["dump", "-q", &pid])
        .env("GOROSCOPE_TEST_HOLD_FREEZE_MS", "1500")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null());
    let mut gs = support::Guard::spawn(&mut cmd, None);
    let state = |tid: i32| {
        support::thread_states(fx.pid)
            .into_iter()
            .find(|(t, _)| *t == tid.to_string())
            .map(|(_, c)| c)
    };
    // Inside the first window: some thread is stopped, the reader is not.
    support::poll(Duration::from_secs(20), || {
        let s = support::thread_states(fx.pid);
        match s.iter().any(|&(_, c)| c == 't') {
            true => Ok(()),
            false => Err(format!("no thread stopped yet: {s:?}")),
        }
    })
    .unwrap();
    assert_eq!(state(asleep), Some('S'), "the reader left asleep");
    // SAFETY: tgkill(2) of a thread of the fixture this test started.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, fx.pid as i32, asleep, libc::SIGURG) };
    assert_eq!(r, 0, "tgkill: {}", std::io::Error::last_os_error());
    // The copy is taken again with every thread stopped: the reader too.
    support::poll(Duration::from_secs(20), || match state(asleep) {
        Some('t') => Ok(()),
        s => Err(format!("the reader is {s:?}")),
    })
    .unwrap();
    let st = gs.wait(Duration::from_secs(60)).expect("goroscope done");
    assert!(st.success(), "{st}");
    let dump = std::fs::read_to_string(&out_path).unwrap();
    support::check_running(fx.pid).unwrap();
    support::matches_oracle(&mut fx, &dump).unwrap_or_else(|e| panic!("{e}"));
    let status = std::fs::read_to_string(format!("/proc/{}/task/{asleep}/status", fx.pid)).unwrap();
    let pending = status
        .lines()
        .find_map(|l| l.strip_prefix("SigPnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .expect("SigPnd");
    assert_eq!(
        pending & (1 << (libc::SIGURG - 1)),
        0,
        "the signal was delivered, not left pending"
    );
}

/// The fixture's "threads" scenario with 1,000 threads, on the newest and the oldest toolchain.
#[test]
fn a_thousand_threads_dump_exactly() {
    let all = support::require_toolchains();
    let mut tcs = vec![toolchains::newest()];
    tcs.extend(all.first().filter(|t| t.name() != tcs[0].name()).cloned());
    for tc in &tcs {
        let mut fx = Child::start_args(&exe(tc), "threads", &["-n", "1000"])
            .unwrap_or_else(|e| panic!("{}: {e}", tc.name()));
        let pid = fx.pid.to_string();
        let dump = goroscope(&["dump", "-q", &pid]);
        support::matches_oracle(&mut fx, &dump).unwrap_or_else(|e| panic!("{}: {e}", tc.name()));
        // Every thread, when none started or ended meanwhile (the runtime may start one now
        // and then: then again).
        let mut checked = false;
        for _ in 0..5 {
            let before = tids(fx.pid);
            assert!(
                before.len() >= 1000,
                "{}: {} threads",
                tc.name(),
                before.len()
            );
            let mut listed: Vec<i32> = parse_threads(&goroscope(&["threads", "-q", &pid]))
                .iter()
                .map(|t| t.tid)
                .collect();
            listed.sort_unstable();
            // A dump leaves threads asleep in a blocking call unstopped: they are listed too.
            let json: serde_json::Value =
                serde_json::from_str(&goroscope(&["dump", "-q", "--format", "json", &pid]))
                    .unwrap();
            let mut dumped: Vec<i32> = json["snapshot"]["threads"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t["tid"].as_i64())
                .map(|t| t as i32)
                .collect();
            dumped.sort_unstable();
            if tids(fx.pid) == before {
                assert_eq!(listed, before, "{}: threads", tc.name());
                assert_eq!(dumped, before, "{}: threads of the dump", tc.name());
                checked = true;
                break;
            }
        }
        assert!(checked, "{}: the threads kept changing", tc.name());
        support::check_running(fx.pid).unwrap_or_else(|e| panic!("{}: {e}", tc.name()));
        fx.ping().unwrap_or_else(|e| panic!("{}: {e}", tc.name()));
    }
}
