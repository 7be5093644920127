//! goroscope in its surroundings: `ps`, the static binary, containers (pid, mount and time
//! namespaces made with `unshare`), the command-line conventions (help examples, completions,
//! man pages, `--json`, exit codes, the progress line, `-v`) and the privilege messages.
//!
//! Expected goroutines always come from the fixture's own `runtime.Stack` (tests/it/support
//! compare). Every process a test starts is reaped by a guard, killed by its own pid. A test
//! that needs something the kernel or the machine refuses (`unshare`, a time namespace, root)
//! fails naming it, or in a partial run records a skip (`support::require`).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{Child, Flavor, Output, TempDir, toolchains, which};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn fixture_exe(tc: &toolchains::Toolchain, flavor: Flavor) -> PathBuf {
    support::build_fixture(tc, flavor).unwrap_or_else(|e| panic!("{e}"))
}

fn goroscope(args: &[&str]) -> Output {
    support::run_goroscope(args, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a command to completion (bounded), panicking if it cannot start.
fn run(cmd: &mut Command) -> Output {
    support::run_with_timeout(cmd, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

#[track_caller]
fn ok(out: &Output) -> &str {
    assert!(
        out.status.success(),
        "failed: {}\n--- stderr\n{}--- stdout\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
    &out.stdout
}

/// A non-Go process this test spawned, killed by its own pid and reaped on drop.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, not reaped yet.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// The dump of `pid` by `cmd` (a goroscope run, maybe wrapped) must match the fixture's own
/// `runtime.Stack` taken right after, goroutine by goroutine, wait minutes included.
#[track_caller]
fn assert_dump_matches(child: &mut Child, cmd: &mut Command) {
    let out = run(cmd);
    let dump = ok(&out).to_string();
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
    let oracle = child.stack().unwrap();
    let (ours, theirs) = (support::parse(&dump), support::parse(&oracle));
    assert!(ours.errors.is_empty(), "{:?}\n{dump}", ours.errors);
    assert!(theirs.errors.is_empty(), "{:?}\n{oracle}", theirs.errors);
    support::compare(
        &ours.goroutines,
        &theirs.goroutines,
        theirs.goroutines[0].id,
        &child.info,
    )
    .unwrap_or_else(|e| panic!("{e}\n--- goroscope ({cmd:?})\n{dump}"));
}

fn goroscope_cmd(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args);
    c
}

/// `unshare ARGS true` works here (root, and a kernel that allows the namespaces).
fn unshare_works(args: &[&str]) -> Result<(), String> {
    let unshare = support::tool("unshare")?;
    let out = run(Command::new(unshare).args(args).arg("true"));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`unshare {}` refused: {}",
            args.join(" "),
            out.stderr.trim()
        ))
    }
}

/// Pid namespace around the fixture; `--kill-child` so the fixture dies with its wrapper.
const PID_NS: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

// ---------------------------------------------------------------------------------------------
// ps

#[test]
fn ps_lists_every_go_fixture_and_nothing_else() {
    let tcs = toolchains::require_toolchains();
    // The oldest and newest toolchains, and a stripped build of the newest.
    let (old, new) = (tcs.first().unwrap().clone(), tcs.last().unwrap().clone());
    let runs = [
        (old.clone(), Flavor::Default),
        (new.clone(), Flavor::Default),
        (new.clone(), Flavor::Stripped),
    ];
    let children: Vec<(Child, String, Flavor)> = runs
        .iter()
        .map(|(tc, f)| {
            (
                Child::start(&fixture_exe(tc, *f), "chan").unwrap_or_else(|e| panic!("{e}")),
                tc.name(),
                *f,
            )
        })
        .collect();
    let sleep = Spawned(
        Command::new(which("sleep").expect("sleep"))
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .expect("start sleep"),
    );
    let out = goroscope(&["ps", "--json"]);
    let list: Vec<serde_json::Value> =
        serde_json::from_str(ok(&out)).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let by_pid = |pid: u32| list.iter().find(|p| p["pid"] == pid);
    for (c, version, flavor) in &children {
        let p = by_pid(c.pid)
            .unwrap_or_else(|| panic!("fixture {} ({version}) not listed: {}", c.pid, out.stdout));
        assert_eq!(p["go_version"], version.as_str(), "{p}");
        assert_eq!(p["module"], "fixture", "{p}");
        assert_eq!(p["module_version"], "(devel)", "{p}");
        assert_eq!(p["ppid"], std::process::id(), "{p}");
        assert_eq!(p["ns_pids"], serde_json::json!([c.pid]), "{p}");
        assert_eq!(p["name"], "fixture", "{p}");
        assert!(p["threads"].as_u64().unwrap() >= 2, "{p}");
        let stripped = *flavor == Flavor::Stripped;
        assert_eq!(
            (p["no_symbols"].as_bool(), p["no_dwarf"].as_bool()),
            (Some(stripped), Some(stripped)),
            "{p}"
        );
        let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid)).unwrap();
        assert_eq!(p["exe"], exe.display().to_string(), "{p}");
    }
    assert!(
        by_pid(sleep.0.id()).is_none(),
        "sleep is not Go: {}",
        out.stdout
    );
    assert!(
        by_pid(std::process::id()).is_none(),
        "the test binary is not Go"
    );
    // Everything listed is a Go program: its executable holds the build info magic.
    for p in &list {
        let pid = p["pid"].as_u64().unwrap();
        if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/exe")) {
            assert!(
                bytes.windows(14).any(|w| w == b"\xff Go buildinf:"),
                "{p} is not a Go program"
            );
        }
    }
    // The table: a header and one line for each, stripped marked.
    let table = goroscope(&["ps"]);
    let text = ok(&table);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .eq(["PID", "PPID", "THREADS", "GO", "NAME", "MODULE", "BINARY"]),
        "{text}"
    );
    for (c, version, flavor) in &children {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&c.pid.to_string()))
            .unwrap_or_else(|| panic!("{} not in the table:\n{text}", c.pid));
        assert!(
            line.contains(version.as_str()) && line.contains("fixture@(devel)"),
            "{line}"
        );
        assert_eq!(
            line.ends_with("[stripped]"),
            *flavor == Flavor::Stripped,
            "{line}"
        );
    }
    for (c, _, _) in &children {
        support::check_running(c.pid).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Containers

/// A fixture in its own pid and mount namespace (`unshare --pid --fork --mount-proc`): found by
/// its host pid from here, by its own pid from inside (`nsenter`), listed by `ps` with both,
/// its sources opened through /proc/PID/root, and both dumps equal to its runtime.Stack.
#[test]
fn pid_namespace() {
    let Some(()) = support::require(unshare_works(&PID_NS[1..])) else {
        return;
    };
    let tc = toolchains::newest();
    let mut child = Child::start_wrapped(PID_NS, &fixture_exe(&tc, Flavor::Default), "all")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        child.pid, child.ns_pid,
        "the fixture is in its own pid namespace"
    );
    println!(
        "fixture: host pid {}, pid {} in its namespace",
        child.pid, child.ns_pid
    );
    let host = child.pid.to_string();
    assert_dump_matches(
        &mut child,
        &mut goroscope_cmd(support::goroscope_bin(), &["dump", "-q", &host]),
    );

    let ns_pid = child.ns_pid.to_string();
    let nsenter = which("nsenter").expect("nsenter (util-linux)");
    let mut inside = Command::new(&nsenter);
    inside
        .args(["-t", &host, "-p", "-m", "--"])
        .arg(support::goroscope_bin())
        .args(["dump", "-q", &ns_pid]);
    assert_dump_matches(&mut child, &mut inside);

    let list: Vec<serde_json::Value> =
        serde_json::from_str(ok(&goroscope(&["ps", "--json"]))).unwrap();
    let p = list
        .iter()
        .find(|p| p["pid"] == child.pid)
        .expect("listed by ps");
    assert_eq!(
        p["ns_pids"],
        serde_json::json!([child.pid, child.ns_pid]),
        "{p}"
    );
    let table = goroscope(&["ps"]);
    assert!(
        ok(&table).contains(&format!("[pid {} in its namespace]", child.ns_pid)),
        "{}",
        table.stdout
    );

    // -v names both pids.
    let out = goroscope(&["grs", "-v", &host]);
    ok(&out);
    assert!(
        out.stderr
            .contains(&format!("{} {}", child.pid, child.ns_pid))
            && out.stderr.contains("NSpid"),
        "{}",
        out.stderr
    );

    // A source file of the dump, opened through the target's root.
    let dump = support::goroscope_dump(child.pid).unwrap();
    let file = support::parse(&dump)
        .goroutines
        .iter()
        .flat_map(|g| g.frames.clone())
        .map(|f| f.file)
        .find(|f| f.ends_with("/main.go"))
        .expect("a frame in main.go");
    let via = goroscope::target::ns::target_path(child.pid as i32, Path::new(&file));
    assert!(
        via.starts_with(format!("/proc/{}/root", child.pid)),
        "{}",
        via.display()
    );
    let text = goroscope::target::ns::read_target_file(child.pid as i32, &file).unwrap();
    assert!(text.contains("package main"), "{file}");
    support::check_running(child.pid).unwrap();
}

/// Wait minutes when the target's monotonic clock is not goroscope's: the fixture in a time
/// namespace two hours behind (less on a machine up for less: a namespace's clock cannot be
/// set before its boot), then goroscope in one two hours ahead. The runtime stamps every
/// blocked goroutine's waitsince at a GC's stack scan with the start of the previous GC
/// (`work.tstart`, 0 before the first), so after two `gc` a wrong clock shows as
/// "120 minutes" that the runtime's own dump does not have.
#[test]
fn time_namespace_wait_minutes() {
    // Whole minutes, at most two hours, and at least two minutes below the clock now.
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) },
        0
    );
    let behind = (now.tv_sec - 120).min(7200) / 60 * 60;
    let up = if behind >= 120 {
        Ok(())
    } else {
        Err(format!(
            "the monotonic clock is at {} s: a time namespace 2 minutes behind it needs the machine up 4 minutes",
            now.tv_sec
        ))
    };
    let Some(()) = support::require(up) else {
        return;
    };
    let behind_arg = format!("-{behind}");
    let time_ns = [
        "--time",
        "--fork",
        "--kill-child",
        "--monotonic",
        behind_arg.as_str(),
    ];
    let time_ns_works = unshare_works(&time_ns).map_err(|why| {
        format!("{why} (a kernel without time namespaces, before 5.6, or not root)")
    });
    let Some(()) = support::require(time_ns_works) else {
        return;
    };
    let tc = toolchains::newest();
    let exe = fixture_exe(&tc, Flavor::Default);
    let wrapper: Vec<&str> = std::iter::once("unshare").chain(time_ns).collect();
    let mut child = Child::start_wrapped(&wrapper, &exe, "all").unwrap_or_else(|e| panic!("{e}"));
    let offsets = std::fs::read_to_string(format!("/proc/{}/timens_offsets", child.pid)).unwrap();
    assert!(offsets.contains(&behind_arg), "{offsets}");
    gc_twice(&mut child);
    let pid = child.pid.to_string();
    assert_dump_matches(
        &mut child,
        &mut goroscope_cmd(support::goroscope_bin(), &["dump", "-q", &pid]),
    );
    let out = goroscope(&["inspect", &pid]);
    assert!(
        ok(&out).contains(&format!("clock offset   {behind_arg}.000 s")),
        "{}",
        out.stdout
    );
    drop(child);

    // goroscope ahead of a target in the host's time namespace.
    let mut child = Child::start(&exe, "all").unwrap_or_else(|e| panic!("{e}"));
    gc_twice(&mut child);
    let pid = child.pid.to_string();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--time",
        "--fork",
        "--kill-child",
        "--monotonic",
        "7200",
        "--",
    ])
    .arg(support::goroscope_bin())
    .args(["dump", "-q", &pid]);
    assert_dump_matches(&mut child, &mut cmd);
}

fn gc_twice(child: &mut Child) {
    child.gc().unwrap();
    child.gc().unwrap();
}

// ---------------------------------------------------------------------------------------------
// The static binary

/// `scripts/build-static.sh` (`ONLY=x86_64`; the aarch64 build is tests/it/arm64_live.rs's)
/// into a scratch directory: a binary with no interpreter and no
/// shared libraries, completions and man pages beside it; it dumps a fixture from inside the
/// fixture's pid namespace (`nsenter` into an `unshare --pid --fork --mount-proc`), by the pid
/// the fixture has there.
#[test]
fn static_binary() {
    let dist = TempDir::new("static");
    let script = support::fixture::manifest_dir().join("scripts/build-static.sh");
    let mut cmd = Command::new(&script);
    cmd.arg(&dist.0).env("ONLY", "x86_64");
    let out = support::run_with_timeout(&mut cmd, Duration::from_secs(1800))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", ok(&out));
    let bin = dist.0.join("goroscope");
    let bytes = std::fs::read(&bin).unwrap();
    use object::read::elf::{Dyn, ElfFile64, ProgramHeader};
    let elf = ElfFile64::<object::Endianness>::parse(&*bytes).unwrap();
    let e = elf.endian();
    for ph in elf.elf_program_headers() {
        assert_ne!(
            ph.p_type(e),
            object::elf::PT_INTERP,
            "a static binary has no PT_INTERP"
        );
        for d in ph.dynamic(e, &*bytes).unwrap().unwrap_or_default() {
            assert_ne!(
                d.d_tag(e),
                object::elf::DT_NEEDED,
                "a static binary needs no shared library"
            );
        }
    }
    for shell in ["bash", "zsh", "fish"] {
        let c =
            std::fs::read_to_string(dist.0.join(format!("completions/goroscope.{shell}"))).unwrap();
        assert!(
            c.contains("goroscope") && c.contains("ps") && c.contains("dump"),
            "{shell}"
        );
    }
    for page in ["goroscope.1", "goroscope-dump.1", "goroscope-ps.1"] {
        let m = std::fs::read_to_string(dist.0.join("man").join(page)).unwrap();
        assert!(m.contains(".TH goroscope"), "{page}");
    }
    shipped_binary_ignores_the_test_hooks(&bin);
    let Some(()) = support::require(unshare_works(&PID_NS[1..])) else {
        return;
    };
    let tc = toolchains::newest();
    let mut child = Child::start_wrapped(PID_NS, &fixture_exe(&tc, Flavor::Default), "chan")
        .unwrap_or_else(|e| panic!("{e}"));
    let (host, ns_pid) = (child.pid.to_string(), child.ns_pid.to_string());
    let mut inside = Command::new(which("nsenter").expect("nsenter"));
    inside
        .args(["-t", &host, "-p", "-m", "--"])
        .arg(&bin)
        .args(["dump", "-q", &ns_pid]);
    assert_dump_matches(&mut child, &mut inside);
}

/// The shipped build (`scripts/build-static.sh`, a release build without the `test-hooks`
/// feature) has no test hooks: `--version` has no mark, and asking for a 5 s hold of the
/// frozen window and of the pre-copy changes nothing: the dump is exact, reports a pause far
/// below the hold and takes less than the hold, and the pre-copy hold line never shows.
fn shipped_binary_ignores_the_test_hooks(bin: &Path) {
    use goroscope::target::live::{TEST_HOLD_ENV, TEST_HOLD_PRECOPY_ENV, TEST_PRECOPY_DONE};
    let version = run(Command::new(bin).arg("--version"));
    assert!(
        !ok(&version).contains(support::require::TEST_HOOKS_MARK),
        "{}",
        version.stdout
    );
    let tc = toolchains::newest();
    let mut child =
        Child::start(&fixture_exe(&tc, Flavor::Default), "chan").unwrap_or_else(|e| panic!("{e}"));
    let hold = Duration::from_secs(5);
    let mut cmd = goroscope_cmd(bin, &["dump", &child.pid.to_string()]);
    cmd.env(TEST_HOLD_ENV, hold.as_millis().to_string())
        .env(TEST_HOLD_PRECOPY_ENV, hold.as_millis().to_string());
    let start = std::time::Instant::now();
    let out = run(&mut cmd);
    let took = start.elapsed();
    ok(&out);
    assert!(!out.stderr.contains(TEST_PRECOPY_DONE), "{}", out.stderr);
    let pause_ms: f64 = out
        .stderr
        .split_once("target paused ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no pause on stderr: {:?}", out.stderr));
    println!(
        "shipped binary with both holds asked for {hold:?}: dump took {took:?}, target paused {pause_ms} ms"
    );
    assert!(
        pause_ms < hold.as_secs_f64() * 1000.0 && took < hold,
        "the hold was honoured: {took:?}\n{}",
        out.stderr
    );
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
    support::matches_oracle(&mut child, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// Command-line conventions

/// Every command's help has examples; the top one documents the exit codes; a usage error is
/// exit status 2 and any other error 1.
#[test]
fn help_examples_and_exit_codes() {
    use clap::CommandFactory;
    let cmd = goroscope::cli::Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(
        names.len() >= 11 && names.iter().any(|n| n == "ps"),
        "{names:?}"
    );
    for name in &names {
        let out = goroscope(&[name, "--help"]);
        let text = ok(&out);
        assert!(
            text.contains("Examples:\n  goroscope "),
            "`goroscope {name} --help` has no examples:\n{text}"
        );
    }
    let top = goroscope(&["--help"]);
    let text = ok(&top);
    for w in [
        "Examples:",
        "Exit status:",
        "  0  success",
        "  1  an error",
        "  2  a usage error",
    ] {
        assert!(
            text.contains(w),
            "{w:?} missing from goroscope --help:\n{text}"
        );
    }
    assert_eq!(
        goroscope(&["dump", "--no-such-option"]).status.code(),
        Some(2)
    );
    assert_eq!(goroscope(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(goroscope(&["show", "/no/such/file"]).status.code(), Some(1));
}

#[test]
fn completions_and_man_pages() {
    let bash = goroscope(&["completions", "bash"]);
    let script = ok(&bash);
    assert!(
        script.contains("goroscope") && script.contains("completions") && script.contains("--json")
    );
    // bash accepts it.
    let dir = TempDir::new("ecosystem-completions");
    let file = dir.0.join("goroscope.bash");
    std::fs::write(&file, script).unwrap();
    ok(&run(Command::new("bash").arg("-n").arg(&file)));
    // zsh and fish check their scripts' syntax too (last: the shells are prerequisites).
    let mut syntax = Vec::new();
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = goroscope(&["completions", shell]);
        assert!(ok(&out).contains("goroscope"), "{shell}");
        if shell != "elvish" && shell != "powershell" {
            let f = dir.0.join(format!("goroscope.{shell}"));
            std::fs::write(&f, &out.stdout).unwrap();
            syntax.push((shell, f));
        }
    }
    assert_eq!(goroscope(&["completions", "tcsh"]).status.code(), Some(2));

    let man = goroscope(&["man"]);
    let page = ok(&man);
    assert!(
        page.contains(".TH goroscope 1") && page.contains("Exit status"),
        "{page}"
    );
    let mandir = dir.0.join("man");
    ok(&goroscope(&["man", "--dir", mandir.to_str().unwrap()]));
    use clap::CommandFactory;
    for c in goroscope::cli::Cli::command().get_subcommands() {
        let p = mandir.join(format!("goroscope-{}.1", c.get_name()));
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(text.contains("Examples:"), "{}", p.display());
    }
    let Some(mancmd) = support::require(support::tool("man")) else {
        return;
    };
    let out = run(Command::new(mancmd)
        .arg("-l")
        .arg(mandir.join("goroscope-ps.1"))
        .env("MANPAGER", "cat"));
    assert!(ok(&out).contains("goroscope"), "{}", out.stdout);
    for (shell, f) in syntax {
        let Some(prog) = support::require(support::tool(shell)) else {
            return;
        };
        ok(&run(Command::new(prog).arg("-n").arg(&f)));
    }
}

/// `--json` on the listings: grs (the snapshot model), bt (one goroutine), ps (above).
#[test]
fn json_listings() {
    let tc = toolchains::newest();
    let mut child =
        Child::start(&fixture_exe(&tc, Flavor::Default), "chan").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let out = goroscope(&["grs", "-q", "--json", &pid]);
    let v: serde_json::Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(v["format"], "goroscope-snapshot");
    let gs = v["snapshot"]["goroutines"].as_array().unwrap();
    let oracle = support::parse(&child.stack().unwrap());
    for g in oracle.goroutines.iter().skip(1) {
        let j = gs
            .iter()
            .find(|j| j["id"] == g.id)
            .unwrap_or_else(|| panic!("goroutine {} missing", g.id));
        if g.is_parked() {
            assert_eq!(j["state"], g.state.as_str(), "{j}");
        }
    }
    assert!(
        gs.iter().all(|g| g["system"] == false),
        "grs hides system goroutines"
    );
    let target = oracle
        .goroutines
        .iter()
        .skip(1)
        .find(|g| g.is_parked())
        .expect("a parked goroutine");
    let out = goroscope(&["bt", "-q", "--json", &pid, &target.id.to_string()]);
    let g: serde_json::Value = serde_json::from_str(ok(&out)).unwrap();
    assert_eq!(g["id"], target.id);
    let funcs: Vec<&str> = g["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["hidden"] == false)
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = target.frames.iter().map(|f| f.func.as_str()).collect();
    assert_eq!(funcs, want);
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}

/// `-v` prints the discovery chain (what `inspect` prints first) on stderr, before the pause line.
#[test]
fn verbose_shows_the_discovery_chain() {
    let tc = toolchains::newest();
    let child =
        Child::start(&fixture_exe(&tc, Flavor::Default), "chan").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let inspect = goroscope(&["inspect", &pid]);
    let chain: Vec<&str> = ok(&inspect)
        .lines()
        .take_while(|l| !l.starts_with("goroutines "))
        .collect();
    assert!(chain.len() >= 4, "{}", inspect.stdout);
    let out = goroscope(&["dump", "-v", &pid]);
    ok(&out);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines[..chain.len()], chain[..], "{}", out.stderr);
    assert!(
        lines[chain.len()].starts_with("goroscope: ")
            && lines[chain.len()].contains("target paused"),
        "{}",
        out.stderr
    );
    let quiet = goroscope(&["dump", "-q", &pid]);
    assert!(
        ok(&quiet).contains("goroutine ") && quiet.stderr.is_empty(),
        "{}",
        quiet.stderr
    );
}

/// The progress line shows on a terminal once a dump takes over a second (the frozen window
/// is held 1.5 s by the test hook), and never with -q or when stderr is not a terminal.
#[test]
fn progress_line_only_on_a_terminal() {
    support::require_test_hooks();
    let Some(script) = support::require(support::tool("script")) else {
        return;
    };
    let tc = toolchains::newest();
    let child =
        Child::start(&fixture_exe(&tc, Flavor::Default), "chan").unwrap_or_else(|e| panic!("{e}"));
    let bin = support::goroscope_bin().display().to_string();
    let hold = ("GOROSCOPE_TEST_HOLD_FREEZE_MS", "1500");
    // On a pty (script), stdout to /dev/null so only stderr reaches the terminal.
    let on_tty = |extra: &str| {
        let line = format!("{bin} dump {extra} {} >/dev/null", child.pid);
        let out = run(Command::new(&script)
            .args(["-qec", &line, "/dev/null"])
            .env(hold.0, hold.1));
        ok(&out);
        out.stdout
    };
    let shown = on_tty("");
    assert!(
        shown.contains("\r\x1b[2Kgoroscope: unwinding goroutines"),
        "{shown:?}"
    );
    assert!(
        shown.contains("goroscope: ") && shown.contains("target paused"),
        "{shown:?}"
    );
    // Erased before the pause line.
    let last = shown.rsplit("\r\x1b[2K").next().unwrap();
    assert!(
        last.starts_with("goroscope: ") && last.contains("target paused"),
        "{shown:?}"
    );
    let quiet = on_tty("-q");
    assert!(!quiet.contains("goroscope"), "{quiet:?}");
    // Not a terminal: no progress, only the pause line.
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["dump", &child.pid.to_string()])
        .env(hold.0, hold.1);
    let piped = run(&mut cmd);
    ok(&piped);
    assert!(
        !piped.stderr.contains('\r') && !piped.stderr.contains("unwinding"),
        "{:?}",
        piped.stderr
    );
    support::check_running(child.pid).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Privileges

/// Root with CAP_SYS_PTRACE dropped (setpriv): the message says the capability is missing and
/// how to grant it.
#[test]
fn root_without_cap_sys_ptrace() {
    let Some(()) = support::require(support::root("to drop CAP_SYS_PTRACE from a root process"))
    else {
        return;
    };
    let Some(setpriv) = support::require(support::tool("setpriv")) else {
        return;
    };
    let tc = toolchains::newest();
    let mut child =
        Child::start(&fixture_exe(&tc, Flavor::Default), "chan").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let mut cmd = Command::new(setpriv);
    cmd.args(["--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", "--"])
        .arg(support::goroscope_bin())
        .args(["dump", &pid]);
    let out = run(&mut cmd);
    let msg = one_line_error(&out);
    for w in [
        &format!("not permitted to trace process {pid}"),
        "runs as root without CAP_SYS_PTRACE",
        "grant it CAP_SYS_PTRACE",
        "--cap-add SYS_PTRACE",
    ] {
        assert!(msg.contains(w), "{w:?}: {msg}");
    }
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}

/// goroscope under a seccomp filter that makes ptrace fail with EPERM (as a container
/// runtime's profile can): root with CAP_SYS_PTRACE, so the message names the filter.
#[test]
fn seccomp_filter_refusing_ptrace() {
    let Some(()) = support::require(support::root(
        "(CAP_SYS_PTRACE) so that only the filter refuses",
    )) else {
        return;
    };
    let tc = toolchains::newest();
    let mut child =
        Child::start(&fixture_exe(&tc, Flavor::Default), "chan").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["dump", &pid]);
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only prctl(2) is called, on a filter built before the fork.
    unsafe { cmd.pre_exec(deny_ptrace) };
    let out = run(&mut cmd);
    let msg = one_line_error(&out);
    for w in [
        &format!("not permitted to trace process {pid}"),
        "seccomp filter (Seccomp: 2 in /proc/self/status)",
        "seccomp=unconfined",
    ] {
        assert!(msg.contains(w), "{w:?}: {msg}");
    }
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}

/// A classic BPF seccomp filter: `ptrace` (x86_64 or aarch64 number) fails with EPERM,
/// everything else is allowed; another architecture's call is allowed (the filter only
/// narrows).
fn deny_ptrace() -> std::io::Result<()> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_EPERM: u32 = 0x0005_0000 | libc::EPERM as u32; // SECCOMP_RET_ERRNO
    let (arch, nr) = if cfg!(target_arch = "aarch64") {
        (0xc000_00b7u32, 117u32)
    } else {
        (0xc000_003eu32, 101u32)
    };
    let f = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        f(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        f(JEQ_K, 0, 3, arch),
        f(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        f(JEQ_K, 0, 1, nr),
        f(RET_K, 0, 0, RET_EPERM),
        f(RET_K, 0, 0, RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    // SAFETY: prctl with a valid filter program that outlives the call.
    let r = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const _ as usize,
            0,
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The error contract: exit 1, one `goroscope: ` line, nothing on stdout. Returns the line.
#[track_caller]
fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stderr, out.stdout);
    let msg = out.stderr.strip_suffix('\n').unwrap_or(&out.stderr);
    assert!(
        msg.starts_with("goroscope: ") && !msg.contains('\n') && out.stdout.is_empty(),
        "{}",
        out.stderr
    );
    println!("{msg}");
    msg.to_string()
}
