//! The oracle comparison (DESIGN.md "The oracle"): goroscope's dump of a fixture against the
//! fixture's own `runtime.Stack(buf, true)` taken right after it.
//!
//! - The runtime's first goroutine is the one that called `runtime.Stack` (the fixture's main
//!   goroutine serving `stack`): it moved in between, so only its presence is checked.
//! - Every other goroutine must be listed by goroscope under the same id. A parked one (any
//!   state but running/runnable, and not "running on other thread") must match exactly: state
//!   string, labels, every frame's function, argument list (every word, its `?`, `...` for
//!   more words than printed, `(...)` for an inlined frame), file, line and pc offset, the
//!   elision lines and `created by` (function, goroutine, file, line, offset). A parked
//!   goroutine's stack does not change between the two dumps, and its argument words are words
//!   of that stack.
//! - A running/runnable one must have frames in goroscope's dump, and the outermost frame
//!   must be the same function when both have frames.
//! - Each `INFO running main.X` function must be on a running/runnable goroutine in goroscope.
//! - goroscope must not list goroutines the runtime did not (system goroutines are hidden in
//!   both).

use super::child::{Child, Info};
use super::traceback::Goroutine;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// `dump` (goroscope's, just taken) against the fixture's own `runtime.Stack` taken now:
/// both must parse without a stray line, and [`compare`] must hold.
pub fn matches_oracle(child: &mut Child, dump: &str) -> Result<(), String> {
    let oracle = child.stack()?;
    let ours = super::traceback::parse(dump);
    let theirs = super::traceback::parse(&oracle);
    if !ours.errors.is_empty() {
        return Err(format!(
            "goroscope's dump has lines that are not Go traceback: {:?}\n{dump}",
            ours.errors
        ));
    }
    if !theirs.errors.is_empty() {
        return Err(format!(
            "the runtime's dump has lines that are not Go traceback: {:?}\n{oracle}",
            theirs.errors
        ));
    }
    let caller = theirs
        .goroutines
        .first()
        .map(|g| g.id)
        .ok_or("the runtime's dump lists no goroutines")?;
    compare(&ours.goroutines, &theirs.goroutines, caller, &child.info)
}

/// Ok, or every mismatch with both texts of the goroutine concerned.
pub fn compare(
    goroscope: &[Goroutine],
    runtime: &[Goroutine],
    caller_goid: u64,
    info: &Info,
) -> Result<(), String> {
    let mut problems: Vec<String> = Vec::new();
    let mut by_id: HashMap<u64, &Goroutine> = HashMap::new();
    for g in goroscope {
        if by_id.insert(g.id, g).is_some() {
            problems.push(format!("goroscope lists goroutine {} twice", g.id));
        }
    }

    match runtime.first() {
        None => problems.push("the runtime dump has no goroutines".into()),
        Some(first) if first.id != caller_goid => problems.push(format!(
            "the runtime dump starts with goroutine {}, not the caller {caller_goid}",
            first.id
        )),
        Some(_) => {}
    }
    if !by_id.contains_key(&caller_goid) {
        problems.push(format!(
            "goroutine {caller_goid} (the fixture's main goroutine) missing from goroscope's dump"
        ));
    }

    for rg in runtime.iter().skip(1) {
        let Some(gg) = by_id.get(&rg.id) else {
            problems.push(format!(
                "goroutine {} missing from goroscope's dump\n--- runtime\n{}",
                rg.id,
                indent(&rg.raw)
            ));
            continue;
        };
        let why = if rg.is_parked() {
            parked_diff(gg, rg)
        } else {
            active_diff(gg, rg)
        };
        if let Some(why) = why {
            problems.push(format!(
                "goroutine {}: {why}\n--- runtime\n{}\n+++ goroscope\n{}",
                rg.id,
                indent(&rg.raw),
                indent(&gg.raw)
            ));
        }
    }

    let runtime_ids: HashSet<u64> = runtime.iter().map(|g| g.id).collect();
    for g in goroscope {
        if !runtime_ids.contains(&g.id) {
            problems.push(format!(
                "goroutine {} is in goroscope's dump but not in the runtime's\n+++ goroscope\n{}",
                g.id,
                indent(&g.raw)
            ));
        }
    }

    for func in &info.running {
        let found = goroscope.iter().any(|g| g.is_active() && g.has_frame(func));
        if !found {
            let holders: Vec<String> = goroscope
                .iter()
                .filter(|g| g.has_frame(func))
                .map(|g| format!("goroutine {} [{}]", g.id, g.state))
                .collect();
            problems.push(format!(
                "the fixture says {func} is running, but no running/runnable goroutine in goroscope's dump has that frame (found in: {})",
                if holders.is_empty() { "none".to_string() } else { holders.join(", ") }
            ));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// `goroscope dump --system` (GOTRACEBACK=system, level 2) against the traceback the runtime
/// printed on a SIGQUIT sent right after it ([`super::traceback::signal_traceback`]):
///
/// - the same goroutines (system ones included);
/// - the parked ones (not running/runnable, not "running on other thread") in the same order,
///   `allgs` order, but for the runtime's first two: it prints the goroutine the signal
///   interrupted (a goroutine in a system call is interrupted on its own stack) and its
///   thread's current goroutine before the others (`sighandler`, `tracebacksomeothers`);
/// - each parked one printed identically, byte for byte: header with `gp= m= mp=`, every
///   frame with its arguments and `fp= sp= pc=`, created-by. It cannot have moved: nothing
///   wakes it between the two;
/// - a running or runnable one with frames in goroscope's dump.
pub fn compare_system(goroscope: &[Goroutine], runtime: &[Goroutine]) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut gids: Vec<u64> = goroscope.iter().map(|g| g.id).collect();
    let mut rids: Vec<u64> = runtime.iter().map(|g| g.id).collect();
    gids.sort_unstable();
    rids.sort_unstable();
    if gids != rids {
        problems.push(format!("goroutines {gids:?}, the runtime printed {rids:?}"));
    }
    let parked: HashSet<u64> = runtime
        .iter()
        .filter(|g| g.is_parked())
        .map(|g| g.id)
        .collect();
    let lead: Vec<u64> = runtime.iter().take(2).map(|g| g.id).collect();
    let order = |gs: &[Goroutine]| -> Vec<u64> {
        gs.iter()
            .map(|g| g.id)
            .filter(|id| parked.contains(id) && !lead.contains(id))
            .collect()
    };
    if order(goroscope) != order(runtime) {
        problems.push(format!(
            "parked goroutines (but {lead:?}) in the order {:?}, the runtime's is {:?}",
            order(goroscope),
            order(runtime)
        ));
    }
    each_identical_if_parked(goroscope, runtime, false, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// The level-2 comparison of a crash: `dump` (goroscope's, of the core or of the live process
/// just before the signal) against the crash traceback's text ([`super::traceback::signal_traceback_text`]).
/// Every goroutine of the traceback must be in the dump in the same order, and no other;
/// parked ones byte for byte, as [`compare_system`] compares them; the runtime prints running
/// ones as "running on other thread", and goroscope must list them with any stack (or say
/// they run elsewhere).
///
/// The runtime prints the goroutine of the thread that handled the signal first; goroscope
/// puts the goroutine of a core's first thread (the one that aborted) first, and lists a live
/// process in `allgs` order. For a core from Go 1.22 on those are the same thread; before, the
/// SIGQUIT was relayed from M to M and the last one aborted. With `first_may_move` the
/// runtime's first goroutine may be anywhere in goroscope's order.
pub fn compare_crash(dump: &str, oracle: &str, first_may_move: bool) -> Result<(), String> {
    let g = super::traceback::parse(dump).goroutines;
    let r = super::traceback::parse(oracle).goroutines;
    let mut problems = Vec::new();
    if r.is_empty() {
        problems.push(format!("the crash traceback has no goroutines:\n{oracle}"));
    }
    let mut gids: Vec<u64> = g.iter().map(|g| g.id).collect();
    let mut rids: Vec<u64> = r.iter().map(|g| g.id).collect();
    if first_may_move && !rids.is_empty() && gids.contains(&rids[0]) {
        let first = rids.remove(0);
        gids.retain(|&id| id != first);
    }
    if gids != rids {
        problems.push(format!("goroutines {gids:?}, the runtime printed {rids:?}"));
    }
    each_identical_if_parked(&g, &r, true, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// For each of the runtime's goroutines that goroscope lists too: a parked one must be printed
/// identically (header, arguments, `fp= sp= pc=`, created-by), a running or runnable one must
/// have frames (or, with `elsewhere_ok`, be shown as running on another thread).
fn each_identical_if_parked(
    goroscope: &[Goroutine],
    runtime: &[Goroutine],
    elsewhere_ok: bool,
    problems: &mut Vec<String>,
) {
    for rg in runtime {
        let Some(gg) = goroscope.iter().find(|g| g.id == rg.id) else {
            continue;
        };
        if rg.is_parked() {
            if gg.raw.trim_end() != rg.raw.trim_end() {
                problems.push(format!(
                    "goroutine {} differs\n--- runtime\n{}\n+++ goroscope\n{}",
                    rg.id,
                    indent(&rg.raw),
                    indent(&gg.raw)
                ));
            }
        } else if gg.frames.is_empty() && !(elsewhere_ok && gg.running_elsewhere) {
            problems.push(format!(
                "goroutine {} [{}]: goroscope shows no frames\n{}",
                rg.id,
                rg.state,
                indent(&gg.raw)
            ));
        }
    }
}

/// The first difference between two dumps of a parked goroutine, if any.
fn parked_diff(g: &Goroutine, r: &Goroutine) -> Option<String> {
    if g.state != r.state {
        return Some(format!("state {:?}, runtime says {:?}", g.state, r.state));
    }
    if g.labels != r.labels {
        return Some(format!(
            "labels {:?}, runtime says {:?}",
            g.labels, r.labels
        ));
    }
    if g.running_elsewhere {
        return Some("goroscope says running on other thread, the runtime has it parked".into());
    }
    for (i, (gf, rf)) in g.frames.iter().zip(&r.frames).enumerate() {
        let mut d = Vec::new();
        if gf.func != rf.func {
            d.push(format!("function {:?} vs runtime {:?}", gf.func, rf.func));
        }
        if gf.args != rf.args {
            d.push(format!("arguments ({}) vs runtime ({})", gf.args, rf.args));
        }
        if gf.file != rf.file {
            d.push(format!("file {:?} vs runtime {:?}", gf.file, rf.file));
        }
        if gf.line != rf.line {
            d.push(format!("line {} vs runtime {}", gf.line, rf.line));
        }
        if gf.offset != rf.offset {
            d.push(format!(
                "offset {} vs runtime {}",
                hex(gf.offset),
                hex(rf.offset)
            ));
        }
        if !d.is_empty() {
            return Some(format!("frame {i} ({}): {}", rf.func, d.join(", ")));
        }
    }
    if g.frames.len() != r.frames.len() {
        return Some(format!(
            "{} frames, runtime has {}",
            g.frames.len(),
            r.frames.len()
        ));
    }
    if g.elided != r.elided {
        return Some(format!("elided {:?}, runtime has {:?}", g.elided, r.elided));
    }
    if g.created_by != r.created_by {
        return Some(format!(
            "created by {:?}, runtime has {:?}",
            g.created_by, r.created_by
        ));
    }
    None
}

/// What must hold for a goroutine that was running or runnable.
fn active_diff(g: &Goroutine, r: &Goroutine) -> Option<String> {
    if g.frames.is_empty() {
        return Some(format!(
            "runtime has it [{}], goroscope shows no frames{}",
            r.state,
            if g.running_elsewhere {
                " (running on other thread)"
            } else {
                ""
            }
        ));
    }
    match (g.frames.last(), r.frames.last()) {
        (Some(gl), Some(rl)) if gl.func != rl.func => Some(format!(
            "outermost frame {:?}, runtime has {:?}",
            gl.func, rl.func
        )),
        _ => None,
    }
}

fn hex(o: Option<u64>) -> String {
    o.map(|o| format!("+{o:#x}"))
        .unwrap_or_else(|| "none".into())
}

fn indent(s: &str) -> String {
    let mut out = String::new();
    for l in s.lines() {
        let _ = writeln!(out, "    {l}");
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::super::traceback::parse;
    use super::*;

    const RUNTIME: &str = "goroutine 1 [running]:
main.stackText()
\t/f/main.go:187 +0x3a
main.main()
\t/f/main.go:151 +0x528

goroutine 20 [chan receive]:
main.signalCounter(...)
\t/f/main.go:98
created by main.main in goroutine 1
\t/f/main.go:121 +0x192

goroutine 21 [runnable]:
main.busySpin()
\t/f/busy.go:35 +0xf
created by main.setupBusy in goroutine 1
\t/f/busy.go:18 +0x25

goroutine 22 [select]:
main.waitAll(0x1?, {0x2, 0x3}, 0x0, ...)
\t/f/wait.go:7 +0x21
created by main.main in goroutine 1
\t/f/main.go:122 +0x1b0";

    fn info() -> Info {
        Info::from_lines(vec!["running main.busySpin".into()])
    }

    fn check(goroscope: &str) -> Result<(), String> {
        let r = parse(RUNTIME);
        compare(&parse(goroscope).goroutines, &r.goroutines, 1, &info())
    }

    #[test]
    fn equal_dumps_match() {
        let running = RUNTIME.replace("[runnable]", "[running]");
        check(&running).unwrap();
    }

    #[test]
    fn every_difference_is_caught() {
        let cases = [
            ("main.go:98\n", "main.go:99\n"),
            ("[chan receive]", "[chan receive, 1 minutes]"),
            ("main.signalCounter(...)", "main.signalCounterX(...)"),
            ("/f/main.go:121 +0x192", "/f/main.go:121 +0x193"),
            (
                "created by main.main in goroutine 1\n\t/f/main.go:121",
                "created by main.main\n\t/f/main.go:121",
            ),
            ("main.go:98\n", "main.go:98 +0x4\n"),
            (
                "goroutine 20 [chan receive]:",
                "goroutine 22 [chan receive]:",
            ),
            ("goroutine 1 [running]:", "goroutine 2 [running]:"),
            ("goroutine 21 [runnable]:", "goroutine 21 [chan receive]:"), // busy must be active
            ("main.busySpin()\n\t/f/busy.go:35 +0xf\n", ""),
            ("[chan receive]:", "[chan receive] {a: b}:"),
            ("main.signalCounter(...)", "main.signalCounter()"),
            ("main.signalCounter(...)", "main.signalCounter(0x1)"),
            (
                "(0x1?, {0x2, 0x3}, 0x0, ...)",
                "(0x1, {0x2, 0x3}, 0x0, ...)",
            ),
            (
                "(0x1?, {0x2, 0x3}, 0x0, ...)",
                "(0x1?, {0x2, 0x4}, 0x0, ...)",
            ),
            ("(0x1?, {0x2, 0x3}, 0x0, ...)", "(0x1?, {0x2, 0x3}, 0x0)"),
            (
                "(0x1?, {0x2, 0x3}, 0x0, ...)",
                "(0x1?, {0x2, 0x3}, 0x0, 0x0, ...)",
            ),
        ];
        for (from, to) in cases {
            let text = RUNTIME.replace(from, to);
            assert_ne!(text, RUNTIME, "{from}");
            let err = check(&text).expect_err(&format!("{from:?} -> {to:?} must fail"));
            assert!(err.contains("goroutine"), "{err}");
        }
        // An extra goroutine.
        let extra = format!("{RUNTIME}\n\ngoroutine 99 [sleep]:\nmain.x()\n\t/f/x.go:1 +0x1");
        assert!(
            check(&extra)
                .unwrap_err()
                .contains("goroutine 99 is in goroscope's dump")
        );
        // A missing frame.
        let short = RUNTIME.replace("main.signalCounter(...)\n\t/f/main.go:98\n", "");
        assert!(
            check(&short)
                .unwrap_err()
                .contains("0 frames, runtime has 1")
        );
    }

    const SYSTEM: &str = "goroutine 1 gp=0xc1 m=2 mp=0xc2 [syscall]:
main.read(0x0?)
\t/f/main.go:9 +0x25 fp=0x10 sp=0x8 pc=0x401025

goroutine 2 gp=0xc3 m=nil [force gc (idle)]:
runtime.gopark(0x0?, 0x0?)
\t/go/proc.go:474 +0xca fp=0x20 sp=0x18 pc=0x4300ca
created by runtime.init.7 in goroutine 1
\t/go/proc.go:339 +0x1a

goroutine 7 gp=0xc4 m=3 mp=0xc5 [running]:
main.busy()
\t/f/busy.go:3 +0x4 fp=0x30 sp=0x28 pc=0x402004";

    fn check_system(goroscope: &str, runtime: &str) -> Result<(), String> {
        compare_system(&parse(goroscope).goroutines, &parse(runtime).goroutines)
    }

    #[test]
    fn system_level_compares_parked_goroutines_byte_for_byte() {
        check_system(SYSTEM, SYSTEM).unwrap();
        // The runtime prints the interrupted goroutine first; a running one may be anywhere.
        let (head, busy) = SYSTEM.split_once("\n\ngoroutine 7 ").unwrap();
        let moved = format!(
            "goroutine 7 {}\n\n{head}",
            busy.replace("busy.go:3 +0x4", "busy.go:4 +0x9")
        );
        check_system(SYSTEM, &moved).unwrap();
        for (from, to) in [
            ("fp=0x20", "fp=0x28"),
            ("m=nil [force", "m=4 mp=0xc6 [force"),
            ("main.read(0x0?)", "main.read(0x0)"),
            ("+0x1a", "+0x1b"),
            ("[force gc (idle)]", "[force gc (idle), 1 minutes]"),
        ] {
            let other = SYSTEM.replace(from, to);
            assert!(
                check_system(&other, SYSTEM)
                    .unwrap_err()
                    .contains("differs"),
                "{from:?} -> {to:?}"
            );
        }
        let (one, rest) = SYSTEM.split_once("\n\n").unwrap();
        let (two, seven) = rest.split_once("\n\n").unwrap();
        // A parked goroutine printed first (interrupted in its system call): anywhere in ours.
        let syscall_first = format!("{one}\n\n{two}\n\n{seven}");
        check_system(&format!("{two}\n\n{seven}\n\n{one}"), &syscall_first).unwrap();
        // Past the first two, the order is allgs order.
        let three = two.replace("goroutine 2 gp=0xc3", "goroutine 3 gp=0xc7");
        let four = two.replace("goroutine 2 gp=0xc3", "goroutine 4 gp=0xc8");
        let runtime = format!("{seven}\n\n{one}\n\n{two}\n\n{three}\n\n{four}");
        check_system(
            &format!("{one}\n\n{two}\n\n{three}\n\n{four}\n\n{seven}"),
            &runtime,
        )
        .unwrap();
        let swapped = format!("{one}\n\n{two}\n\n{four}\n\n{three}\n\n{seven}");
        assert!(
            check_system(&swapped, &runtime)
                .unwrap_err()
                .contains("order")
        );
        let missing = format!("{one}\n\n{seven}");
        assert!(
            check_system(&missing, SYSTEM)
                .unwrap_err()
                .contains("the runtime printed")
        );
        let no_frames = SYSTEM.replace(
            "main.busy()\n\t/f/busy.go:3 +0x4 fp=0x30 sp=0x28 pc=0x402004",
            "",
        );
        assert!(
            check_system(no_frames.trim_end(), SYSTEM)
                .unwrap_err()
                .contains("no frames")
        );
    }

    #[test]
    fn running_goroutines_may_move() {
        let moved = RUNTIME
            .replace("/f/busy.go:35 +0xf", "/f/busy.go:36 +0x13")
            .replace("main.stackText()\n\t/f/main.go:187 +0x3a\n", "");
        check(&moved).unwrap();
    }
}
