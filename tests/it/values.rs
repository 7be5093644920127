//! Values from DWARF in `goroscope attach`: `args`, `locals`, `print EXPR` and `stack -full`
//! on the fixture's "values" scenario, for every toolchain (default builds, optimized). The
//! fixture prints the truth of each expression from its own variables (`value <goid>
//! <function> <expr>\t<text>`); every value goroscope prints must be that text, unless it says
//! the variable is not there (`(optimized out)`, `(unreadable: ...)`). The variables in
//! [`ALWAYS_LIVE`] must be readable with every toolchain. A stripped build says, in one line,
//! that values need DWARF, and keeps the runtime's argument words.

use crate::support;

use std::time::Duration;
use support::values::{self, ALWAYS_LIVE, Key, LIVE_FROM_1_22, Truths, not_there};
use support::{Child, Flavor, TempDir, require_toolchains};

/// How long one batch session may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// A command whose output, `[0 goroutines]`, ends every answer.
const END: &str = "goroutines -with state end-of-answer";

fn truths(child: &Child) -> Truths {
    values::truths(&child.info.lines)
}

/// The fixture's "values" scenario built by the newest toolchain (`flavor`), and its truths.
fn start_newest(flavor: Flavor) -> (std::path::PathBuf, Child, Truths) {
    let tc = support::toolchains::newest();
    let exe = support::build_fixture(&tc, flavor).unwrap_or_else(|e| panic!("{e}"));
    let child = Child::start(&exe, "values").unwrap_or_else(|e| panic!("{e}"));
    let truths = truths(&child);
    (exe, child, truths)
}

/// Runs `commands` in one batch session on a process, each answer cut at [`END`]; also stderr.
fn session(pid: u32, commands: &[String], dir: &TempDir) -> (Vec<Vec<String>>, String) {
    session_on(&[&pid.to_string()], commands, dir)
}

/// [`session`] on what `target` names (a pid, `--core FILE --exe EXE`).
fn session_on(target: &[&str], commands: &[String], dir: &TempDir) -> (Vec<Vec<String>>, String) {
    let script: String = commands.iter().map(|c| format!("{c}\n{END}\n")).collect();
    let file = dir.0.join("script");
    std::fs::write(&file, script).unwrap();
    let mut args = vec!["attach", "--batch", file.to_str().unwrap()];
    args.extend_from_slice(target);
    let out = support::run_goroscope(&args, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let mut answers = vec![Vec::new()];
    for l in out.stdout.lines() {
        if l == "[0 goroutines]" {
            answers.push(Vec::new());
        } else {
            answers.last_mut().unwrap().push(l.to_string());
        }
    }
    // The first answer holds the snapshot report line too.
    if let Some(first) = answers.first_mut() {
        first.retain(|l| !l.starts_with("goroscope: "));
    }
    (answers, out.stderr)
}

/// The frame number of `func` in a `stack` answer.
fn frame_of(stack: &[String], func: &str) -> Option<usize> {
    stack.iter().find_map(|l| {
        let (n, rest) = l.trim_start().split_once("  ")?;
        let f = rest.rsplit(" in ").next()?;
        (f == func).then(|| n.parse().ok())?
    })
}

const NOTE: &str = "(values outside the snapshot's stacks";

/// What each command of a session asked: about which goroutine's function, and, for `print`,
/// the expression and the fixture's text (`None`: `args` or `locals`).
type Asked<'a> = Vec<(&'a (u64, String), Option<(String, String)>)>;

/// The commands that check `key`'s truths in frame `n`.
fn commands_for<'a>(
    truths: &'a Truths,
    key: &'a (u64, String),
    n: usize,
    commands: &mut Vec<String>,
    asked: &mut Asked<'a>,
) {
    let id = key.0;
    for cmd in ["args", "locals"] {
        commands.push(format!("goroutine {id} frame {n} {cmd}"));
        asked.push((key, None));
    }
    for (expr, text) in &truths[key] {
        commands.push(format!("goroutine {id} frame {n} print {expr}"));
        asked.push((key, Some((expr.clone(), text.clone()))));
    }
}

/// Compares a session's answers with the truths: failures, and (function, expr) printed right.
fn evaluate(
    tc: &str,
    truths: &Truths,
    asked: &Asked<'_>,
    answers: &[Vec<String>],
    stderr: &str,
    failures: &mut Vec<String>,
    readable: &mut Vec<(String, String)>,
) {
    for (i, (key, what)) in asked.iter().enumerate() {
        let lines: Vec<&String> = answers[i].iter().filter(|l| !l.starts_with(NOTE)).collect();
        let ctx = format!("{tc} goroutine {} {}", key.0, key.1);
        match what {
            // `args` and `locals`: every variable the fixture gave a truth of.
            None => {
                for l in lines {
                    let Some((name, value)) = l.split_once(" = ") else {
                        continue;
                    };
                    let truth = truths[*key].iter().find(|(e, _)| e == name);
                    if let Some((_, t)) = truth
                        && value != t
                        && !not_there(value)
                    {
                        failures.push(format!("{ctx}: {name} = {value}, the fixture says {t}"));
                    }
                }
            }
            Some((expr, t)) => match lines.as_slice() {
                [v] if *v == t => readable.push((key.1.clone(), expr.clone())),
                [v] if not_there(v) => {}
                // print failed (on stderr): going through a variable that is not there.
                [] => {}
                other => failures.push(format!(
                    "{ctx}: print {expr} gave {other:?}, the fixture says {t}"
                )),
            },
        }
    }
    for l in stderr.lines().filter(|l| l.starts_with("Command failed: ")) {
        if !l.contains("(optimized out)") && !l.contains("(unreadable") {
            failures.push(format!("{tc}: {l}"));
        }
    }
}

/// Most sessions tried before a running goroutine is caught with its function at the frame
/// the commands were written for (it moves between snapshots). With Go 1.19, `vaSpin` is at
/// frame 0 (its loop's pc) in about half the snapshots and at frame 1 (under the inlined
/// `atomic.Bool.Load`) in the other half (9 and 11 of 20 on an idle machine), so a try, which
/// guesses one of the two, misses about one time in two: 10 tries missed every time once in a
/// CI run (odds of 2^-10 at that rate, more when a busy machine catches it elsewhere), 40 miss
/// with odds of 2^-40. Each try is a session of a few tens of milliseconds, and the loop ends at
/// the first catch.
const RUNNING_TRIES: usize = 40;

/// Most snapshots taken of a running goroutine until the values it keeps in registers were
/// read (each must be, exactly): a snapshot that catches it preempted, or at a pc where a
/// variable is not in a register, reads none of them. With Go 1.19, `vaSpin`'s `y` is in a
/// register at one pc of its loop only, and the thread stops there in about one snapshot of
/// six (60 snapshots, idle or with both CPUs busy): 30 tries missed it once in a CI run, 200
/// miss it with odds below 10^-15 at that rate. Each try is a `bt` of about 45 ms, and the loop
/// ends as soon as every value was read.
const REGISTER_TRIES: usize = 200;

/// Checks one toolchain's default build.
fn check_toolchain(tc: &support::Toolchain, dir: &TempDir) -> Vec<String> {
    let exe = support::build_fixture(tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"));
    let child = Child::start(&exe, "values").unwrap_or_else(|e| panic!("{e}"));
    let truths = truths(&child);
    let running = |f: &String| child.info.running.contains(f);
    let (parked, moving): (Vec<&Key>, Vec<&Key>) = truths.keys().partition(|(_, f)| !running(f));
    let mut failures = Vec::new();
    let mut readable = Vec::new();
    // Parked goroutines stay where they are: their frames are found in one session.
    let stacks: Vec<String> = parked
        .iter()
        .map(|(id, _)| format!("goroutine {id} stack"))
        .collect();
    let (answers, _) = session(child.pid, &stacks, dir);
    let (mut commands, mut asked) = (Vec::new(), Asked::new());
    for (i, key) in parked.iter().enumerate() {
        let n = frame_of(&answers[i], &key.1)
            .unwrap_or_else(|| panic!("{}: no frame {} in {:?}", tc.name(), key.1, answers[i]));
        commands_for(&truths, key, n, &mut commands, &mut asked);
    }
    let (answers, stderr) = session(child.pid, &commands, dir);
    evaluate(
        &tc.name(),
        &truths,
        &asked,
        &answers,
        &stderr,
        &mut failures,
        &mut readable,
    );
    // A running goroutine moves: its stack is read in the same session (one snapshot) as the
    // commands, and the session counts only when its function is at the frame they name.
    for key in moving {
        let caught = (0..RUNNING_TRIES).any(|t| {
            let n = t % 2;
            let (mut commands, mut asked) =
                (vec![format!("goroutine {} stack", key.0)], Asked::new());
            commands_for(&truths, key, n, &mut commands, &mut asked);
            let (answers, stderr) = session(child.pid, &commands, dir);
            if frame_of(&answers[0], &key.1) != Some(n) {
                return false;
            }
            evaluate(
                &tc.name(),
                &truths,
                &asked,
                &answers[1..],
                &stderr,
                &mut failures,
                &mut readable,
            );
            true
        });
        assert!(caught, "{}: {} never at frame 0 or 1", tc.name(), key.1);
        // Some of its variables are in registers at some pcs of its loop only, and a snapshot
        // that finds it asynchronously preempted has them in the preemption's frame: `bt
        // --full --json` (every frame's values from one snapshot) until those that must be
        // read were.
        for _ in 0..REGISTER_TRIES {
            let all_read = ALWAYS_LIVE
                .iter()
                .filter(|(f, _)| *f == key.1)
                .all(|(f, e)| readable.iter().any(|(g, x)| g == f && x == e));
            if all_read {
                break;
            }
            let (pid, id) = (child.pid.to_string(), key.0.to_string());
            let json = support::goroscope_ok(&["bt", "-q", "--full", "--json", &pid, &id], TIMEOUT);
            let g: serde_json::Value = serde_json::from_str(&json).unwrap();
            values::compare_frames(key.0, &g, &truths, &mut readable, &mut failures);
        }
    }
    let from_1_22 = if tc.minor() >= 22 {
        LIVE_FROM_1_22
    } else {
        &[]
    };
    for (func, expr) in ALWAYS_LIVE.iter().chain(from_1_22) {
        if !readable.iter().any(|(f, e)| f == func && e == expr) {
            failures.push(format!(
                "{}: {func} {expr} was not printed as the fixture's value",
                tc.name()
            ));
        }
    }
    support::summary(&format!(
        "values {}: {} of {} expressions read",
        tc.name(),
        readable.len(),
        truths.values().map(Vec::len).sum::<usize>()
    ));
    failures
}

#[test]
fn args_locals_and_print_show_the_fixtures_values() {
    let dir = TempDir::new("values");
    let mut failures = Vec::new();
    for tc in require_toolchains() {
        failures.extend(check_toolchain(&tc, &dir));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stack_full_shows_values_under_each_frame() {
    let dir = TempDir::new("values-full");
    let (_, child, truths) = start_newest(Flavor::Default);
    let (id, _) = truths
        .keys()
        .find(|(_, f)| f == "main.vaBasic")
        .expect("vaBasic reports");
    let (answers, _) = session(child.pid, &[format!("goroutine {id} stack -full")], &dir);
    let text = answers[0].join("\n");
    // The runtime's argument words stay, and the values follow them.
    assert!(text.contains("args: "), "{text}");
    for (func, expr) in [("main.vaBasic", "word"), ("main.vaOuter", "label")] {
        let t = &truths[&(*id, func.to_string())]
            .iter()
            .find(|(e, _)| e == expr)
            .unwrap()
            .1;
        assert!(
            text.contains(&format!("{expr} = {t}")),
            "{func} {expr}: {text}"
        );
    }
}

#[test]
fn stripped_binaries_say_values_need_dwarf() {
    let dir = TempDir::new("values-stripped");
    let (_, child, truths) = start_newest(Flavor::Stripped);
    let (id, _) = truths.keys().next().unwrap();
    let (answers, stderr) = session(
        child.pid,
        &[
            format!("goroutine {id} stack -full"),
            format!("goroutine {id} args"),
        ],
        &dir,
    );
    let full = &answers[0];
    let need: Vec<&String> = full
        .iter()
        .filter(|l| l.contains("values need DWARF"))
        .collect();
    assert_eq!(need.len(), 1, "one line says why: {full:?}");
    assert!(
        full.iter().any(|l| l.trim_start().starts_with("args: ")),
        "{full:?}"
    );
    assert!(answers[1].is_empty(), "{:?}", answers[1]);
    assert!(
        stderr.contains("Command failed: ") && stderr.contains("values need DWARF"),
        "{stderr}"
    );
}

/// A core written by `goroscope snapshot --core` holds the values of its moment: `attach
/// --core` prints them from the core's memory, with no note about reading a process later.
#[test]
fn a_core_holds_the_values() {
    let dir = TempDir::new("values-core");
    let (exe, child, truths) = start_newest(Flavor::Default);
    let core = dir.0.join("core");
    let (core_s, pid) = (core.to_str().unwrap(), child.pid.to_string());
    support::goroscope_ok(&["snapshot", "-q", &pid, "--core", core_s], TIMEOUT);
    let target = ["--core", core_s, "--exe", exe.to_str().unwrap()];
    let keys: Vec<&(u64, String)> = truths.keys().collect();
    let stacks: Vec<String> = keys
        .iter()
        .map(|(id, _)| format!("goroutine {id} stack"))
        .collect();
    let (answers, _) = session_on(&target, &stacks, &dir);
    let mut commands = Vec::new();
    let mut want = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let n = frame_of(&answers[i], &key.1).unwrap_or_else(|| panic!("{answers:?}"));
        for (expr, text) in &truths[*key] {
            commands.push(format!("goroutine {} frame {n} print {expr}", key.0));
            want.push((expr, text));
        }
    }
    let (answers, _) = session_on(&target, &commands, &dir);
    let mut read = 0;
    for (a, (expr, text)) in answers.iter().zip(&want) {
        assert!(!a.iter().any(|l| l.starts_with(NOTE)), "{a:?}");
        match a.as_slice() {
            [v] if v == *text => read += 1,
            [v] if not_there(v) => {}
            [] => {}
            other => panic!("print {expr} gave {other:?}, the fixture says {text}"),
        }
    }
    assert!(
        read >= ALWAYS_LIVE.len(),
        "only {read} values read from the core"
    );
}

/// `goroscope bt --full` shows the same values under each frame, and `--json` carries them in
/// each frame's `values`.
#[test]
fn bt_full_and_its_json_carry_the_values() {
    let (_, child, truths) = start_newest(Flavor::Default);
    let key = truths.keys().find(|(_, f)| f == "main.vaBasic").unwrap();
    let word = &truths[key].iter().find(|(e, _)| e == "word").unwrap().1;
    let (pid, id) = (child.pid.to_string(), key.0.to_string());
    let text = support::goroscope_ok(&["bt", "-q", "--full", &pid, &id], TIMEOUT);
    assert!(text.contains(&format!("word = {word}")), "{text}");
    let json = support::goroscope_ok(&["bt", "-q", "--full", "--json", &pid, &id], TIMEOUT);
    let g: serde_json::Value = serde_json::from_str(&json).unwrap();
    let frame = g["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "main.vaBasic")
        .unwrap_or_else(|| panic!("{json}"));
    let v = frame["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "word")
        .unwrap_or_else(|| panic!("{frame}"));
    assert_eq!(v["text"], word.as_str());
    assert_eq!(v["param"], false);
}

/// The `name = value` lines under frame `n` of goroutine `id` in `show --full`'s output.
fn shown_values(text: &str, id: u64, n: usize) -> Vec<String> {
    let Some(block) = text
        .split("\n\n")
        .find(|b| b.starts_with(&format!("goroutine {id} [")))
    else {
        return Vec::new();
    };
    let mut in_frame = false;
    let mut vals = Vec::new();
    for l in block.lines().skip(1) {
        let t = l.trim_start();
        if let Some((num, rest)) = t.split_once("  ")
            && rest.starts_with("0x")
            && let Ok(k) = num.parse::<usize>()
        {
            in_frame = k == n;
        } else if in_frame && t.contains(" = ") {
            vals.push(t.to_string());
        }
    }
    vals
}

/// One toolchain's `snapshot --values`: the file, read once the process is gone, gives in
/// `attach FILE` the `args` and `locals` a live session gave of each parked frame (the
/// fixture's truth wherever it has one), `print NAME` of a saved variable, and `show --full`
/// the same lines under each frame.
fn check_file(tc: &support::Toolchain, dir: &TempDir) -> Vec<String> {
    let exe = support::build_fixture(tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"));
    let child = Child::start(&exe, "values").unwrap_or_else(|e| panic!("{e}"));
    let truths = truths(&child);
    let file = dir.0.join(format!("{}.gsnap", tc.name()));
    let (file_s, pid) = (file.to_str().unwrap(), child.pid.to_string());
    support::goroscope_ok(&["snapshot", "-q", "--values", &pid, "-o", file_s], TIMEOUT);
    // The parked goroutines' values, as a live session prints them.
    let parked: Vec<&Key> = truths
        .keys()
        .filter(|(_, f)| !child.info.running.contains(f))
        .collect();
    let stacks: Vec<String> = parked
        .iter()
        .map(|(id, _)| format!("goroutine {id} stack"))
        .collect();
    let (answers, _) = session(child.pid, &stacks, dir);
    let frames: Vec<usize> = parked
        .iter()
        .zip(&answers)
        .map(|(key, a)| frame_of(a, &key.1).unwrap_or_else(|| panic!("{}: {a:?}", tc.name())))
        .collect();
    let listing = |key: &Key, n: usize| {
        ["args", "locals"].map(|c| format!("goroutine {} frame {n} {c}", key.0))
    };
    let commands: Vec<String> = parked
        .iter()
        .zip(&frames)
        .flat_map(|(key, n)| listing(key, *n))
        .collect();
    let (live, _) = session(child.pid, &commands, dir);
    drop(child);
    let mut failures = Vec::new();
    let mut readable = Vec::new();
    let (saved, stderr) = session_on(&[file_s], &commands, dir);
    let asked: Asked<'_> = parked
        .iter()
        .flat_map(|k| [(*k, None), (*k, None)])
        .collect();
    evaluate(
        &tc.name(),
        &truths,
        &asked,
        &saved,
        &stderr,
        &mut failures,
        &mut readable,
    );
    let shown = support::goroscope_ok(&["show", "--full", file_s], TIMEOUT);
    let values_only = |a: &[String]| -> Vec<String> {
        a.iter().filter(|l| !l.starts_with(NOTE)).cloned().collect()
    };
    let mut prints = Vec::new();
    for (i, (key, n)) in parked.iter().zip(&frames).enumerate() {
        let ctx = format!("{} goroutine {} {}", tc.name(), key.0, key.1);
        let (l, s) = (&live[2 * i..2 * i + 2], &saved[2 * i..2 * i + 2]);
        let (l, s) = (
            [values_only(&l[0]), values_only(&l[1])].concat(),
            [values_only(&s[0]), values_only(&s[1])].concat(),
        );
        if l != s {
            failures.push(format!("{ctx}: live {l:?}, saved {s:?}"));
        }
        let vars: Vec<&String> = s.iter().filter(|l| l.contains(" = ")).collect();
        let under = shown_values(&shown, key.0, *n);
        if under.iter().collect::<Vec<_>>() != vars {
            failures.push(format!("{ctx}: show --full {under:?}, attach {vars:?}"));
        }
        for (name, value) in vars.iter().filter_map(|v| v.split_once(" = ")) {
            prints.push((
                format!("goroutine {} frame {n} print {name}", key.0),
                value.to_string(),
            ));
            if truths[*key].iter().any(|(e, t)| e == name && t == value) {
                readable.push((key.1.clone(), name.to_string()));
            }
        }
    }
    // `print NAME` gives the saved text.
    let commands: Vec<String> = prints.iter().map(|(c, _)| c.clone()).collect();
    let (answers, _) = session_on(&[file_s], &commands, dir);
    for ((c, want), a) in prints.iter().zip(&answers) {
        if values_only(a) != [want.clone()] {
            failures.push(format!("{}: {c} gave {a:?}, args/locals {want}", tc.name()));
        }
    }
    // The plain variables every toolchain keeps live are in the file.
    for (func, expr) in ALWAYS_LIVE {
        let plain = expr.chars().all(|c| c.is_alphanumeric() || c == '_');
        let running = func == &"main.vaSpin";
        if plain && !running && !readable.iter().any(|(f, e)| f == func && e == expr) {
            failures.push(format!(
                "{}: {func} {expr} is not in the file as the fixture's value",
                tc.name()
            ));
        }
    }
    support::summary(&format!(
        "values file {}: {} variables saved as the fixture's values",
        tc.name(),
        readable.len()
    ));
    failures
}

#[test]
fn a_snapshot_file_holds_the_values() {
    let dir = TempDir::new("values-file");
    let mut failures = Vec::new();
    for tc in require_toolchains() {
        failures.extend(check_file(&tc, &dir));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
