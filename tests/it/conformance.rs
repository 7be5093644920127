//! Conformance: `goroscope dump` of a fixture must print what the fixture's own
//! `runtime.Stack(buf, true)` prints (DESIGN.md "The oracle"), for every installed Go toolchain
//! and every fixture scenario. Failures are collected and reported at the end as one
//! version × scenario table, so a single run shows the whole matrix.

use crate::support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use support::{Child, Flavor, Toolchain, toolchains};

/// Scenarios compared one by one; `all` (every one in one process) runs as well.
const SCENARIOS: &[&str] = &[
    "chan", "sync", "sleep", "io", "syscall", "busy", "locked", "shapes", "deep", "defer", "all",
];

/// Concurrent fixture cases (the machine has two cores).
const THREADS: usize = 2;

struct Case {
    tc: Toolchain,
    flavor: Flavor,
    scenario: &'static str,
    /// Extra `goroscope dump` arguments (`--no-dwarf`).
    args: &'static [&'static str],
}

impl Case {
    fn name(&self) -> String {
        format!(
            "{}::{}_amd64_{}{}",
            self.scenario,
            self.tc.ident(),
            self.flavor.name(),
            self.args.join("")
        )
    }

    /// The row of the report table: scenario, and the build flavor when it is not the default.
    fn row(&self) -> String {
        let mut r = self.scenario.to_string();
        if self.flavor != Flavor::Default {
            r = format!("{r} {}", self.flavor.name());
        }
        for a in self.args {
            r = format!("{r} {a}");
        }
        r
    }
}

fn cases(scenarios: &[&'static str], flavor: Flavor) -> Vec<Case> {
    cases_with(scenarios, flavor, &[])
}

fn cases_with(
    scenarios: &[&'static str],
    flavor: Flavor,
    args: &'static [&'static str],
) -> Vec<Case> {
    let mut out = Vec::new();
    for tc in toolchains::require_toolchains() {
        for &scenario in scenarios {
            out.push(Case {
                tc: tc.clone(),
                flavor,
                scenario,
                args,
            });
        }
    }
    out
}

/// Runs `f` on every case with a small thread pool; a panic in a case is that case's failure.
fn run_matrix(
    cases: &[Case],
    f: impl Fn(&Case) -> Result<(), String> + Sync,
) -> Vec<Result<(), String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<(), String>>>> =
        Mutex::new(cases.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(cases.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let start = Instant::now();
                    let r = catch_unwind(AssertUnwindSafe(|| f(case))).unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "panic".into());
                        Err(format!("panicked: {msg}"))
                    });
                    println!(
                        "{} {} ({:.1}s)",
                        case.name(),
                        if r.is_ok() { "ok" } else { "FAIL" },
                        start.elapsed().as_secs_f64()
                    );
                    results.lock().unwrap()[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

/// Prints the version × scenario table and panics with every failure if there is one.
fn report(title: &str, cases: &[Case], results: &[Result<(), String>]) {
    let mut versions: Vec<String> = Vec::new();
    let mut scenarios: Vec<String> = Vec::new();
    for c in cases {
        if !versions.contains(&c.tc.name()) {
            versions.push(c.tc.name());
        }
        if !scenarios.contains(&c.row()) {
            scenarios.push(c.row());
        }
    }
    let w = scenarios.iter().map(|s| s.len()).max().unwrap_or(4).max(4);
    let mut table = format!("{title}\n{:<w$}", "");
    for v in &versions {
        table.push_str(&format!(" {v:>10}"));
    }
    table.push('\n');
    for s in &scenarios {
        table.push_str(&format!("{s:<w$}"));
        for v in &versions {
            let cell = cases
                .iter()
                .zip(results)
                .find(|(c, _)| &c.tc.name() == v && &c.row() == s)
                .map(|(_, r)| if r.is_ok() { "ok" } else { "FAIL" })
                .unwrap_or("-");
            table.push_str(&format!(" {cell:>10}"));
        }
        table.push('\n');
    }
    println!("{table}");
    let failures: Vec<String> = cases
        .iter()
        .zip(results)
        .filter_map(|(c, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("=== {} ===\n{e}", c.name()))
        })
        .collect();
    if !failures.is_empty() {
        panic!(
            "{} of {} cases failed\n{table}\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n\n")
        );
    }
}

/// Starts the fixture of a case.
fn start(case: &Case) -> Result<Child, String> {
    let exe = support::build_fixture(&case.tc, case.flavor)?;
    Child::start(&exe, case.scenario)
}

/// Parses a dump and insists that every line was understood.
fn parse_strict(who: &str, text: &str) -> Result<Vec<support::Goroutine>, String> {
    let tb = support::parse(text);
    if !tb.errors.is_empty() {
        return Err(format!(
            "{who}'s dump has lines that are not Go traceback:\n{}\n--- text\n{text}",
            tb.errors.join("\n")
        ));
    }
    if tb.goroutines.is_empty() {
        return Err(format!("{who}'s dump lists no goroutines:\n{text}"));
    }
    Ok(tb.goroutines)
}

/// One conformance case: goroscope's dump, then the runtime's, compared.
fn conformance_case(case: &Case) -> Result<(), String> {
    let mut child = start(case)?;
    let dump = support::goroscope_dump_with(child.pid, case.args)?;
    support::check_running(child.pid)?;
    child.ping()?;
    let oracle = child.stack()?;
    let ours = parse_strict("goroscope", &dump)?;
    let theirs = parse_strict("runtime", &oracle)?;
    support::compare(&ours, &theirs, theirs[0].id, &child.info)
}

/// goroscope matches the runtime for every installed toolchain and scenario.
#[test]
fn goroscope_matches_runtime() {
    let cases = cases(SCENARIOS, Flavor::Default);
    let results = run_matrix(&cases, conformance_case);
    report(
        "goroscope dump vs runtime.Stack (default build)",
        &cases,
        &results,
    );
}

/// The production build flavors (stripped, PIE, -trimpath, -race, cgo, GOAMD64=v3) and the
/// stripped path forced on a default build, on the scenario that holds every state at once;
/// plus the `cgo` scenario (a goroutine blocked in C) on the builds that have cgo.
#[test]
fn goroscope_matches_runtime_build_flavors() {
    let mut all = cases_with(&["all"], Flavor::Default, &["--no-dwarf"]);
    for &f in Flavor::ALL.iter().filter(|&&f| f != Flavor::Default) {
        all.extend(cases(&["all"], f));
    }
    // A goroutine blocked inside a C function (only cgo builds have the scenario; -race
    // builds use cgo too).
    all.extend(cases(&["cgo"], Flavor::Cgo));
    all.extend(cases(&["cgo"], Flavor::Race));
    let results = run_matrix(&all, conformance_case);
    report(
        "goroscope dump vs runtime.Stack (build flavors)",
        &all,
        &results,
    );
}

/// `--nonblocking` (no stop at all) on every scenario without a running goroutine (those
/// are shown without a stack when the target is not stopped): every parked goroutine exact.
#[test]
fn nonblocking_matches_runtime() {
    let quiet: Vec<&'static str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| !matches!(*s, "busy" | "all"))
        .collect();
    let cases = cases_with(&quiet, Flavor::Default, &["--nonblocking"]);
    let results = run_matrix(&cases, conformance_case);
    report(
        "goroscope dump --nonblocking vs runtime.Stack",
        &cases,
        &results,
    );
}

/// One `--system` case: the fixture runs with GOTRACEBACK=system; goroscope's `dump --system`,
/// then SIGQUIT, whose traceback (the runtime's level 2: system goroutines and frames,
/// `gp= m=`, `fp= sp= pc=`) the runtime prints before it exits; compared by
/// [`support::compare::compare_system`].
fn system_case(case: &Case) -> Result<(), String> {
    let exe = support::build_fixture(&case.tc, case.flavor)?;
    let mut child = Child::start_env(&exe, case.scenario, &[("GOTRACEBACK", "system")])?;
    // A collection first, so that the runtime's GC workers exist too; what it woke is let
    // settle before the dump that counts.
    child.gc()?;
    let dump = support::settled_system_dump(child.pid, case.args, &child.info.running)?;
    support::check_running(child.pid)?;
    let stderr = child.sigquit()?;
    let ours = parse_strict("goroscope", &dump)?;
    let theirs = support::traceback::signal_traceback(&stderr)?;
    support::compare::compare_system(&ours, &theirs.goroutines)
        .map_err(|e| format!("{e}\n--- goroscope dump --system\n{dump}\n--- the runtime's SIGQUIT traceback\n{stderr}"))
}

/// `dump --system` against the runtime's own GOTRACEBACK=system traceback of the next moment,
/// byte for byte for every parked goroutine, on every toolchain and build flavor (and the
/// stripped path forced on a default build), with a goroutine blocked in C on the cgo builds.
#[test]
fn system_matches_sigquit_traceback() {
    let mut all = cases(&["all"], Flavor::Default);
    all.extend(cases_with(&["all"], Flavor::Default, &["--no-dwarf"]));
    for &f in Flavor::ALL.iter().filter(|&&f| f != Flavor::Default) {
        all.extend(cases(&["all"], f));
    }
    all.extend(cases(&["cgo"], Flavor::Cgo));
    all.extend(cases(&["cgo"], Flavor::Race));
    let results = run_matrix(&all, system_case);
    report(
        "goroscope dump --system vs the runtime's SIGQUIT traceback (GOTRACEBACK=system)",
        &all,
        &results,
    );
}

/// Self-check of the fixtures and the harness, independent of goroscope: two consecutive
/// runtime dumps compare equal, i.e. every fixture is quiescent when it says READY.
#[test]
fn oracle_is_stable() {
    let mut scenarios = SCENARIOS.to_vec();
    scenarios.push("demo");
    let cases = cases(&scenarios, Flavor::Default);
    let results = run_matrix(&cases, |case| {
        let mut child = start(case)?;
        let first = child.stack()?;
        support::check_running(child.pid)?;
        child.ping()?;
        let second = child.stack()?;
        let a = parse_strict("runtime (first)", &first)?;
        let b = parse_strict("runtime (second)", &second)?;
        support::compare(&b, &a, a[0].id, &child.info)
            .map_err(|e| format!("{e}\n--- first dump\n{first}\n--- second dump\n{second}"))
    });
    report("runtime.Stack twice (fixture self-check)", &cases, &results);
}

/// Dumping never leaves the target stopped or traced, and it keeps serving.
#[test]
fn dump_leaves_target_running() {
    let tc = toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap();
    let mut child = Child::start(&exe, "all").unwrap();
    for i in 0..3 {
        let dump = support::goroscope_dump(child.pid).unwrap_or_else(|e| panic!("dump {i}: {e}"));
        assert!(!dump.trim().is_empty(), "dump {i} printed nothing");
        support::assert_running(child.pid);
        child.ping().unwrap();
    }
    let stack = child.stack().unwrap();
    assert!(stack.starts_with("goroutine "), "{stack}");
}
