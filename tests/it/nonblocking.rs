//! `--nonblocking` end to end, with the real binary and the Go fixture of the newest installed
//! toolchain:
//!
//! - it never stops or traces the target: sampled under `/proc` for the whole run of a dump of
//!   thousands of goroutines, no thread is ever in a stop and none has a tracer, and the dump
//!   equals the runtime's own for every (parked) goroutine;
//! - under goroutine and thread churn, dump after dump ends in time, exits 0, and prints only
//!   well-formed goroutines, those it could not read consistently marked as such.
//!
//! Every process a test starts is killed by its pid and reaped by a guard, also on failure.

use crate::support;

use goroscope::runtime::status;
use goroscope::version::GoVersion;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Child, Flavor, toolchains};

/// How long any single goroscope run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn fixture() -> std::path::PathBuf {
    support::build_fixture(&toolchains::newest(), Flavor::Default).unwrap_or_else(|e| panic!("{e}"))
}

/// A non-blocking dump of a process with 20,000 parked goroutines (the fixture's "many"
/// scenario without busy ones), while another thread samples every thread of the target
/// under `/proc` as fast as it can (`check_running`: no thread in a stop, `t` or `T`, and no
/// `TracerPid`) from before goroscope starts until after it exits. No sample may see the target
/// stopped or traced, and the dump must equal the runtime's own `runtime.Stack` goroutine by
/// goroutine.
#[test]
fn nonblocking_never_stops_or_traces_the_target() {
    const GOROUTINES: &str = "20000";
    let mut child = Child::start_args(&fixture(), "many", &["-n", GOROUTINES, "-busy", "0"])
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid;
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let (out, samples) = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let (mut n, mut bad) = (0u64, Vec::new());
            while !done.load(Ordering::SeqCst) {
                if let Err(e) = support::check_running(pid) {
                    bad.push(format!(
                        "{:.1} ms: {e}",
                        start.elapsed().as_secs_f64() * 1e3
                    ));
                }
                n += 1;
            }
            (n, bad)
        });
        let out = support::run_goroscope(&["dump", "--nonblocking", &pid.to_string()], RUN_TIMEOUT);
        done.store(true, Ordering::SeqCst);
        (out, sampler.join().unwrap())
    });
    let wall = start.elapsed();
    let out = out.unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{}\n{}", out.status, out.stderr);
    let (n, bad) = samples;
    assert!(
        bad.is_empty(),
        "the target was seen stopped or traced during a --nonblocking dump:\n{}",
        bad.join("\n")
    );
    assert!(n >= 100, "only {n} samples in {wall:?}: too few to tell");
    assert!(
        out.stderr
            .contains("target not stopped (--nonblocking), 0 not read consistently"),
        "{}",
        out.stderr
    );
    support::matches_oracle(&mut child, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{} parked goroutines dumped in {:.0} ms; {n} samples of every thread, none stopped or traced",
        GOROUTINES,
        wall.as_secs_f64() * 1e3
    );
    child.ping().unwrap();
}

/// The states `goroutineheader` can print for Go `v`: status names and wait reasons.
fn known_states(v: GoVersion) -> HashSet<String> {
    let mut s: HashSet<String> = status::wait_reason_table(v)
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    for st in 0..=status::DEAD_EXTRA {
        s.insert(status::status_name(st, v).to_string());
    }
    s.remove("???");
    s
}

/// Checks one non-blocking dump (GOTRACEBACK level 2: every goroutine) of a churning target:
/// every goroutine has a positive id listed once and a known state; one marked as not read
/// consistently has no frames; every other one has frames, each with a file and a line. Returns
/// how many goroutines and how many marked.
fn well_formed(dump: &str, known: &HashSet<String>) -> Result<(usize, usize), String> {
    let (text, marks) = support::split_truncated(dump)?;
    let mut marked = HashSet::new();
    for (id, why) in marks {
        if !why.contains("without stopping the target (--nonblocking)") {
            return Err(format!(
                "goroutine {id}: stack truncated for another reason: {why:?}"
            ));
        }
        marked.insert(id);
    }
    let tb = support::parse_strict(&text)?;
    for g in &tb.goroutines {
        if g.id == 0 {
            return Err(format!("goroutine id 0:\n{}", g.raw));
        }
        let state = g.state.split(", ").next().unwrap_or_default();
        if !known.contains(state) {
            return Err(format!(
                "goroutine {}: unknown state {:?}:\n{}",
                g.id, g.state, g.raw
            ));
        }
        if marked.contains(&g.id) {
            if !g.frames.is_empty() {
                return Err(format!(
                    "goroutine {} is marked as not read consistently but has frames:\n{}",
                    g.id, g.raw
                ));
            }
            continue;
        }
        if g.frames.is_empty() {
            return Err(format!(
                "goroutine {} has no frames and no mark:\n{}",
                g.id, g.raw
            ));
        }
        if let Some(f) = g.frames.iter().find(|f| f.file.is_empty() || f.line == 0) {
            return Err(format!(
                "goroutine {}: frame {f} has no file:line:\n{}",
                g.id, g.raw
            ));
        }
    }
    Ok((tb.goroutines.len(), marked.len()))
}

/// The fixture's "churn" scenario (goroutines, and threads with them, starting and ending at a
/// high rate) dumped with `--nonblocking` many times: every run exits 0 within its timeout,
/// leaves the target running, and prints only well-formed goroutines ([`well_formed`]); the
/// goroutines it marks as not read consistently are exactly as many as its report on stderr
/// says; at least one goroutine is marked over the runs (dumping on until one is, within a
/// bound); and all the runs together take a bounded time.
#[test]
fn nonblocking_under_churn_gives_well_formed_dumps() {
    // At least DUMPS; more, up to MAX_DUMPS, until one catches a goroutine changing under it
    // (the churn is random: most runs see one within the first 60, a few do not).
    const DUMPS: usize = 60;
    const MAX_DUMPS: usize = 1000;
    const TOTAL: Duration = Duration::from_secs(120);
    let tc = toolchains::newest();
    let known = known_states(GoVersion::parse(&format!("go{}", tc.version)).unwrap());
    let mut child = Child::start(&fixture(), "churn").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let start = Instant::now();
    let (mut goroutines, mut marked, mut slowest, mut dumps) = (0, 0, Duration::ZERO, 0);
    for i in 0..MAX_DUMPS {
        if i >= DUMPS && marked > 0 {
            break;
        }
        dumps += 1;
        let t0 = Instant::now();
        let out = support::run_goroscope(
            &["dump", "--nonblocking", "--level", "2", &pid],
            RUN_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("dump {i}: {e}"));
        slowest = slowest.max(t0.elapsed());
        assert!(
            out.status.success(),
            "dump {i}: {}\n{}",
            out.status,
            out.stderr
        );
        support::check_running(child.pid).unwrap_or_else(|e| panic!("after dump {i}: {e}"));
        let (n, m) = well_formed(&out.stdout, &known)
            .unwrap_or_else(|e| panic!("dump {i}: {e}\n--- dump\n{}", out.stdout));
        // goroscope: N goroutines, target not stopped (--nonblocking), U not read consistently
        let said = out
            .stderr
            .split_once("(--nonblocking), ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .and_then(|u| u.parse::<usize>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "dump {i}: no count of goroutines not read consistently: {:?}",
                    out.stderr
                )
            });
        assert_eq!(
            m, said,
            "dump {i}: goroutines marked vs the count on stderr {:?}",
            out.stderr
        );
        goroutines += n;
        marked += m;
    }
    let took = start.elapsed();
    println!(
        "{dumps} --nonblocking dumps in {:.1} s (slowest {:.0} ms), {:.0} goroutines each on average, {marked} marked as not read consistently in all",
        took.as_secs_f64(),
        slowest.as_secs_f64() * 1e3,
        goroutines as f64 / dumps as f64
    );
    assert!(
        took < TOTAL,
        "{dumps} dumps took {took:?}, more than {TOTAL:?}"
    );
    assert!(
        marked > 0,
        "no goroutine was ever marked as not read consistently: the churn was never seen"
    );
    child.ping().unwrap();
}
