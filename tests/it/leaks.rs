//! `goroscope leaks` against the fixture's "leaks" scenario (`testdata/fixture/leaks.go`):
//! goroutines that leak in the known ways (a Mutex whose holder returned among them), ones
//! blocked on channels kept by a global, a finalizer and a cleanup, and one whose channel is
//! left only in dead words of a sleeping goroutine's stack, below its frames,
//! each naming its own goroutine id (from its `runtime.Stack` header) in an INFO line. Every leaked
//! one must be reported, and nothing else; the "healthy" and "churn" scenarios, busy and
//! leak-free, must report nothing. Where the toolchain has the runtime's goroutineleak
//! profile, every goroutine it reports leaked must be among goroscope's. Every installed
//! toolchain (`GOROSCOPE_GO_VERSIONS` narrows), default and stripped builds.

use crate::support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{Child, Flavor, Toolchain, build_fixture, require_toolchains, run_goroscope};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `f` while another thread samples every thread of `pid` under `/proc`; what `f`
/// returned and every sample that saw a thread stopped or traced.
fn never_stopped<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> (T, Vec<String>) {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut bad = Vec::new();
            while !done.load(Ordering::SeqCst) {
                if let Err(e) = support::check_running(pid) {
                    bad.push(e);
                }
            }
            bad
        });
        let out = f();
        done.store(true, Ordering::SeqCst);
        (out, sampler.join().unwrap())
    })
}

/// The traceback part of `leaks` output (before the summary) and the goroutines in it.
fn reported(stdout: &str) -> (BTreeSet<u64>, Vec<support::Goroutine>) {
    let cut = stdout
        .lines()
        .position(|l| l.contains(" leaked goroutine") && l.ends_with(':'))
        .unwrap_or(usize::MAX);
    let text: String = stdout.lines().take(cut).map(|l| format!("{l}\n")).collect();
    let gs = support::parse(&text).goroutines;
    (gs.iter().map(|g| g.id).collect(), gs)
}

fn leaks_once(tc: &Toolchain, flavor: Flavor) {
    let what = format!("{} {}", tc.name(), flavor.name());
    let exe = build_fixture(tc, flavor).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut child = Child::start(&exe, "leaks").unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut leaked = BTreeSet::new();
    let mut kept = BTreeSet::new();
    for l in &child.info.lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f[..] {
            ["leak", _, id] => leaked.insert(id.parse::<u64>().unwrap()),
            ["kept", _, id] => kept.insert(id.parse::<u64>().unwrap()),
            _ => continue,
        };
    }
    assert_eq!(leaked.len(), 8, "{what}: {:?}", child.info.lines);
    // Through a global and a finalizer; through a cleanup from Go 1.24 (`runtime.AddCleanup`).
    let cleanups = usize::from(tc.minor() >= 24);
    assert_eq!(kept.len(), 2 + cleanups, "{what}: {:?}", child.info.lines);
    let pid = child.pid.to_string();
    let out = run_goroscope(&["leaks", &pid], TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (ids, gs) = reported(&out.stdout);
    assert_eq!(
        ids, leaked,
        "{what}: goroscope leaks reported other goroutines than the leaked ones\n{}\n{}",
        out.stdout, out.stderr
    );
    assert_eq!(out.status.code(), Some(3), "{what}: {}", out.stderr);
    for g in &gs {
        assert!(
            g.state.ends_with(" (leaked)"),
            "{what}: goroutine {} header: {}",
            g.id,
            g.raw
        );
    }
    assert!(
        out.stderr.contains("target paused"),
        "{what}: {}",
        out.stderr
    );
    // --nonblocking: the same goroutines, confirmed by a second pass, the target never
    // stopped or traced (sampled under /proc for the whole run).
    let (nb, bad) = never_stopped(child.pid, || {
        run_goroscope(&["leaks", "--nonblocking", &pid], TIMEOUT)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    });
    assert!(bad.is_empty(), "{what}: the target was stopped: {bad:?}");
    assert_eq!(nb.status.code(), Some(3), "{what}: {}", nb.stderr);
    assert_eq!(
        reported(&nb.stdout).0,
        leaked,
        "{what}: --nonblocking\n{}",
        nb.stdout
    );
    assert!(
        nb.stderr.contains("target not stopped (--nonblocking"),
        "{what}: {}",
        nb.stderr
    );
    // The same goroutines in JSON, with the leaked status.
    let json = run_goroscope(&["leaks", "--format", "json", "-q", &pid], TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(json.status.code(), Some(3), "{what}: {}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    let jids: BTreeSet<u64> = v["snapshot"]["goroutines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    assert_eq!(jids, leaked, "{what}: JSON\n{}", json.stdout);
    // Grouped: the same goroutines, by identical stacks.
    let grouped = run_goroscope(&["leaks", "--format", "grouped", "-q", &pid], TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(grouped.status.code(), Some(3), "{what}: {}", grouped.stderr);
    assert!(
        grouped
            .stdout
            .starts_with(&format!("{} goroutines in ", leaked.len())),
        "{what}: grouped\n{}",
        grouped.stdout
    );
    let gids: BTreeSet<u64> = grouped
        .stdout
        .lines()
        .filter(|l| l.contains(" goroutine") && l.contains("]:"))
        .flat_map(|l| l.rsplit_once("]:").unwrap().1.split_whitespace())
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(gids, leaked, "{what}: grouped\n{}", grouped.stdout);
    // pprof: a gzipped profile naming the leaked goroutines' functions.
    let prof = std::process::Command::new(support::goroscope_bin())
        .args(["leaks", "--format", "pprof", "-q", &pid])
        .output()
        .unwrap();
    assert_eq!(prof.status.code(), Some(3), "{what}: leaks --format pprof");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&prof.stdout[..]),
        &mut raw,
    )
    .unwrap_or_else(|e| panic!("{what}: the pprof output is not gzip: {e}"));
    for g in &gs {
        let f = g
            .frames
            .iter()
            .find(|f| f.func.starts_with("main."))
            .unwrap();
        assert!(
            raw.windows(f.func.len()).any(|w| w == f.func.as_bytes()),
            "{what}: the profile lacks {}",
            f.func
        );
    }
    // The runtime's own profile, where it has one: goroscope reports at least what it does.
    let prof = child
        .leak_profile()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if tc.minor() >= 27 {
        let runtime_leaked: BTreeSet<u64> = support::parse(&prof)
            .goroutines
            .iter()
            .filter(|g| g.state.contains("(leaked)"))
            .map(|g| g.id)
            .collect();
        assert!(
            !runtime_leaked.is_empty(),
            "{what}: the runtime's profile reports no leak\n{prof}"
        );
        assert!(
            runtime_leaked.is_subset(&ids),
            "{what}: the runtime reports {runtime_leaked:?}, goroscope {ids:?}\n{prof}"
        );
        // The runtime's leak GC left its leaked goroutines in the `leaked` status: goroscope
        // shows them as the runtime does and still counts them.
        let again =
            run_goroscope(&["leaks", &pid], TIMEOUT).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(again.status.code(), Some(3), "{what}: {}", again.stderr);
        let (again_ids, _) = reported(&again.stdout);
        assert!(
            runtime_leaked.is_subset(&again_ids) && again_ids.is_subset(&leaked),
            "{what}: after the runtime's profile: {again_ids:?}\n{}",
            again.stdout
        );
        let dump = support::goroscope_ok(&["dump", &pid], TIMEOUT);
        for id in &runtime_leaked {
            let g = support::parse(&dump)
                .goroutines
                .into_iter()
                .find(|g| g.id == *id)
                .unwrap_or_else(|| panic!("{what}: goroutine {id} not in the dump"));
            assert!(g.state.ends_with(" (leaked)"), "{what}: {}", g.raw);
        }
    }
}

#[test]
fn leaks_found_default_and_stripped() {
    for tc in require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped] {
            leaks_once(&tc, flavor);
        }
    }
}

#[test]
fn healthy_reports_nothing() {
    for tc in require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped] {
            let what = format!("{} {}", tc.name(), flavor.name());
            let exe = build_fixture(&tc, flavor).unwrap_or_else(|e| panic!("{what}: {e}"));
            for scenario in ["healthy", "churn"] {
                let child = Child::start(&exe, scenario).unwrap_or_else(|e| panic!("{what}: {e}"));
                for _ in 0..3 {
                    let out = run_goroscope(&["leaks", &child.pid.to_string()], TIMEOUT)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(
                        out.status.code(),
                        Some(0),
                        "{what} {scenario}: reported leaks\n{}\n{}",
                        out.stdout,
                        out.stderr
                    );
                    assert!(out.stdout.is_empty(), "{what} {scenario}: {}", out.stdout);
                }
            }
        }
    }
}

/// 10,000 goroutines parked where running ones reach them, with a heap that churns (the GC
/// runs while goroscope looks): no leak reported, 100 runs in a row (every tenth with
/// `--nonblocking`), on the newest toolchain.
#[test]
fn healthy_with_many_goroutines_reports_nothing_100_times() {
    let tc = support::toolchains::newest();
    let exe = build_fixture(&tc, Flavor::Default).unwrap();
    let child = Child::start_args(&exe, "healthy", &["-n", "10000"]).unwrap();
    let pid = child.pid.to_string();
    for run in 0..100 {
        // Every tenth run without stopping the target.
        let args: &[&str] = if run % 10 == 9 {
            &["leaks", "--nonblocking", "-q", &pid]
        } else {
            &["leaks", "-q", &pid]
        };
        let out = run_goroscope(args, TIMEOUT).unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: reported leaks\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(out.stdout.is_empty(), "run {run}: {}", out.stdout);
    }
}

#[test]
fn leaks_from_a_core() {
    let tc = support::toolchains::newest();
    let exe = build_fixture(&tc, Flavor::Default).unwrap();
    let child = Child::start(&exe, "leaks").unwrap();
    let leaked: BTreeSet<u64> = child
        .info
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("leak "))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    let dir = support::TempDir::new("leaks-core");
    let core = dir.0.join("leaks.core").display().to_string();
    let out = run_goroscope(
        &["snapshot", &child.pid.to_string(), "--core", &core],
        TIMEOUT,
    )
    .unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    let out = run_goroscope(&["leaks", "--core", &core], TIMEOUT).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr);
    let (ids, _) = reported(&out.stdout);
    assert_eq!(ids, leaked, "{}\n{}", out.stdout, out.stderr);
}
