//! Live attach on arm64, in an arm64 Linux VM (`scripts/arm64-vm.sh`: Debian's arm64 kernel
//! and busybox under qemu-system-aarch64, TCG), booted once for everything below. The fixture
//! built by every toolchain for `GOARCH=arm64` (default, stripped, PIE) runs in the VM with
//! GOTRACEBACK=crash, and goroscope-aarch64 (`scripts/build-static.sh`, `ONLY=aarch64`) takes
//! (`testdata/arm64/live-each.sh`):
//!
//! - `dump --nonblocking`, against the fixture's own `runtime.Stack` right after it
//!   ([`support::compare::compare`]; only the busy goroutine, whose stack is not read while
//!   it runs or changes, may be marked as not read);
//! - `attach --batch` (`grs`, `gr P`, `bt`, `frame 1`, `gr B`, `bt`, `threads`), `grs -t`,
//!   `bt` and `threads`: the same goroutines and states as `runtime.Stack`, the parked
//!   goroutine P's frames as the runtime prints them, and the busy goroutine B, running on
//!   another thread, with its real stack read from that thread's registers (pc, sp, and the
//!   link register: `main.busySpin` is a frameless leaf): the frames the runtime prints for it
//!   in the crash traceback (from its own thread if it still ran; the crash preempts it first,
//!   see [`busy_oracle`]), only its innermost pc having moved;
//! - `dump --system` against the crash traceback SIGQUIT makes the runtime print next
//!   ([`support::compare::compare_system`]: every parked goroutine byte for byte), and B's
//!   frames with the same `fp=` and `sp=` as its thread printed;
//! - `snapshot -o FILE --core CORE` right before the SIGQUIT: both files come back to the
//!   host, where `goroscope dump --core CORE --exe BIN` must equal the crash traceback the same
//!   way, and `goroscope show FILE` must print what `dump --core --level 1` prints.
//!
//! Then, in the same boot, `testdata/arm64/values.sh` (newest toolchain, default build): the
//! fixture's "values" scenario and `goroscope bt --full --json` of each goroutine that reported
//! the truth of its variables; on the host every value printed of such a variable must be that
//! truth unless it says it is not there, and the plain variables every toolchain keeps readable
//! ([`support::values::ALWAYS_LIVE`]) of the parked goroutines must be read ([`check_values`]).
//!
//! Then `testdata/arm64/safety.sh` (newest toolchain, default build): goroscope SIGKILLed at
//! random moments of its dumps, and while an `attach --hold` session holds the target after a
//! SIGUSR1 was sent to it, leaves the target running, untraced and answering, every SIGUSR1
//! counted, and the next dump equals its `runtime.Stack`; SIGUSR1, SIGURG and SIGCHLD sent
//! during dumps are all counted by the target. (The shipped aarch64 build has no test hooks to
//! hold a dump's freeze open, and a shell polling /proc under TCG is too slow to catch the
//! short freeze reliably: the held session is the freeze that lasts.)
//!
//! The test ends with one line, `arm64 live: N/N fixtures exact ...`, on stderr and in
//! `target/test-summary.txt`, which `scripts/test.sh` prints at the end.

use crate::support;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::traceback::{Goroutine, signal_traceback, signal_traceback_text};
use support::values::{ALWAYS_LIVE, LIVE_FROM_1_22, compare_frames};
use support::{Flavor, Info};

/// The whole VM run: boot, every fixture (each goroscope run is slow under TCG), the safety
/// runs, power off.
const VM_TIMEOUT: Duration = Duration::from_secs(1800);

/// How many times the safety run SIGKILLs goroscope, and how many dumps the signal stream
/// runs over.
const KILLS: u32 = 20;
const SIGNAL_DUMPS: u32 = 30;

/// The function of the fixture's busy goroutine and of the parked one the session selects
/// (the names live-each.sh looks for).
const BUSY: &str = "main.busySpin";
const PARKED: &str = "main.chanRecvBlocked";

/// Builds goroscope-aarch64 into `target/arm64-live/` with scripts/build-static.sh. The
/// prerequisite is Debian's Rust and the aarch64 cross toolchain, or root (the script installs
/// them); a failing build with them present fails the test.
fn build_goroscope_aarch64() -> Result<PathBuf, String> {
    let root = support::fixture::manifest_dir();
    let dist = root.join("target").join("arm64-live");
    let mut cmd = Command::new(root.join("scripts").join("build-static.sh"));
    cmd.arg(&dist).env("ONLY", "aarch64");
    let out = support::run_with_timeout(&mut cmd, Duration::from_secs(3600))?;
    if !out.status.success() {
        panic!(
            "scripts/build-static.sh (ONLY=aarch64) failed: {}\n{}{}",
            out.status, out.stdout, out.stderr
        );
    }
    Ok(dist.join("goroscope-aarch64"))
}

/// Debian's rustc and the aarch64 linker, or root to install them.
fn cross_toolchain() -> Result<(), String> {
    let have =
        Path::new("/usr/bin/rustc").is_file() && support::which("aarch64-linux-gnu-gcc").is_some();
    if have || support::is_root() {
        Ok(())
    } else {
        Err("the aarch64 build needs Debian's rustc-web, cargo-web, libstd-rust-web-dev:arm64, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (or root to install them)".into())
    }
}

/// The shipped aarch64 binary is static: no program interpreter, no dynamic section.
fn check_static(exe: &Path) -> Result<(), String> {
    use object::read::elf::ProgramHeader;
    use object::{Object, elf};
    let data = fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let file = object::read::elf::ElfFile64::<object::Endianness>::parse(&*data)
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if file.architecture() != object::Architecture::Aarch64 {
        return Err(format!("{}: not aarch64", exe.display()));
    }
    let endian = file.endian();
    for seg in file.elf_program_headers() {
        match seg.p_type(endian) {
            elf::PT_INTERP => return Err(format!("{}: has PT_INTERP", exe.display())),
            elf::PT_DYNAMIC => return Err(format!("{}: has PT_DYNAMIC", exe.display())),
            _ => {}
        }
    }
    if file.section_by_name(".dynamic").is_some() {
        return Err(format!("{}: has a .dynamic section", exe.display()));
    }
    Ok(())
}

/// One fixture's results in the VM's output: `@@NAME args@@` starts section NAME (see
/// testdata/arm64/live-each.sh and safety.sh).
#[derive(Default)]
struct Case {
    name: String,
    /// Section name → (the words after the name, the text).
    sections: HashMap<String, (Vec<String>, String)>,
}

impl Case {
    fn text(&self, name: &str) -> &str {
        self.sections.get(name).map_or("", |s| s.1.as_str())
    }

    /// The section's first word as an exit status.
    fn status(&self, name: &str) -> Option<i32> {
        self.word(name, 0)
    }

    fn word<T: std::str::FromStr>(&self, name: &str, i: usize) -> Option<T> {
        self.sections.get(name)?.0.get(i)?.parse().ok()
    }

    /// The goroscope run of section `name` exited 0, or why not.
    fn ran(&self, name: &str) -> Result<&str, String> {
        match self.status(name) {
            Some(0) => Ok(self.text(name)),
            st => Err(format!(
                "{name}: goroscope exited {st:?}\n{}\n--- the fixture's stderr\n{}",
                self.text(&format!("{name}-ERR")),
                self.text("TRACEBACK")
            )),
        }
    }
}

/// Splits the VM's output into cases (`@@CASE name@@` .. `@@END@@`) and what is outside any
/// case (the safety run's), which is returned last, named "".
fn parse_cases(out: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut outside = Case::default();
    let mut cur: Option<Case> = None;
    let mut section: Option<String> = None;
    for line in out.lines() {
        let marker = line.strip_prefix("@@").and_then(|l| l.strip_suffix("@@"));
        if let Some(name) = marker.and_then(|m| m.strip_prefix("CASE ")) {
            cases.extend(cur.replace(Case {
                name: name.to_string(),
                ..Case::default()
            }));
            section = None;
            continue;
        }
        if marker == Some("END") {
            cases.extend(cur.take());
            section = None;
            continue;
        }
        let case = cur.as_mut().unwrap_or(&mut outside);
        if let Some(m) = marker {
            let mut words = m.split_whitespace().map(str::to_string);
            let name = words.next().unwrap_or_default();
            case.sections
                .insert(name.clone(), (words.collect(), String::new()));
            section = Some(name);
            continue;
        }
        if let Some(s) = section.as_ref().and_then(|s| case.sections.get_mut(s)) {
            s.1.push_str(line);
            s.1.push('\n');
        }
    }
    cases.extend(cur);
    cases.push(outside);
    cases
}

/// The goroutines each thread printed for itself after the first `-----` of a crash
/// traceback (GOTRACEBACK=crash: every thread that gets the relayed SIGQUIT prints the
/// goroutine it was running, then its registers), goroutine 0 (a g0) left out.
fn crash_thread_goroutines(stderr: &str) -> Vec<Goroutine> {
    let mut text = String::new();
    let (mut after_first, mut inside) = (false, false);
    for line in stderr.lines() {
        if line == "-----" {
            after_first = true;
            continue;
        }
        if !after_first {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        if line.starts_with("goroutine ") {
            if inside {
                text.push('\n');
            }
            inside = true;
        } else if inside && (line.is_empty() || matches!(first, "x0" | "r0" | "rax")) {
            inside = false;
            text.push('\n');
        }
        if inside {
            text.push_str(line);
            text.push('\n');
        }
    }
    support::parse(&text)
        .goroutines
        .into_iter()
        .filter(|g| g.id != 0)
        .collect()
}

/// Whether `func` is one of the frames an asynchronous preemption pushes on a goroutine's
/// stack (`runtime.asyncPreempt`, which calls `asyncPreempt2`).
fn is_preempt(func: &str) -> bool {
    func == "runtime.asyncPreempt" || func == "runtime.asyncPreempt2"
}

/// A busy goroutine's stack as it ran: without the frames of an asynchronous preemption on
/// top (there when it was caught runnable, preempted, rather than running), in `frames` and
/// in `raw` (a frame is two lines after the header). Its thread may also be caught in the
/// scheduler the preemption called, on the system stack (`mcall` into `gopreempt_m`), the
/// goroutine still running: those runtime frames above the preemption's are its too.
fn without_preempt(mut g: Goroutine) -> Goroutine {
    let pushed = match g
        .frames
        .iter()
        .position(|f| f.func == "runtime.asyncPreempt")
    {
        Some(i) if g.frames[..i].iter().all(|f| f.func.starts_with("runtime.")) => i + 1,
        _ => g.frames.iter().take_while(|f| is_preempt(&f.func)).count(),
    };
    if pushed > 0 {
        g.frames.drain(..pushed);
        let lines: Vec<&str> = g.raw.lines().collect();
        g.raw = std::iter::once(lines[0])
            .chain(lines[1 + 2 * pushed..].iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
    }
    g
}

/// The busy goroutine as the runtime printed it in the crash traceback: from its own thread
/// when it was running, else from the full traceback. The crash preempts every goroutine
/// before it prints them (`freezetheworld`), so the runtime usually prints it runnable, under
/// the preemption's frames: [`without_preempt`] leaves them out.
fn busy_oracle(traceback: &str, busy: u64) -> Result<Goroutine, String> {
    let own = crash_thread_goroutines(traceback);
    let g = match own.into_iter().find(|g| g.id == busy) {
        Some(g) => g,
        None => signal_traceback(traceback)?
            .goroutines
            .into_iter()
            .find(|g| g.id == busy && !g.frames.is_empty())
            .ok_or_else(|| format!("the crash traceback has no stack of goroutine {busy}"))?,
    };
    Ok(without_preempt(g))
}

/// A level-2 goroutine's text with what changes while it runs left out: the calls inlined at
/// the innermost pc, the innermost frame's line, offset and pc (its `fp=` and `sp=` stay), and
/// the header's `m=`, `mp=` and state (running, or runnable once preempted).
fn running_view(g: &Goroutine) -> String {
    let mut out = Vec::new();
    let lines: Vec<&str> = g.raw.lines().collect();
    // The calls inlined at the innermost pc (printed `(...)` without an offset) come and go
    // with the pc.
    let mut first = 1;
    while lines.get(first).is_some_and(|l| l.ends_with("(...)"))
        && lines.get(first + 1).is_some_and(|l| !l.contains(" +0x"))
    {
        first += 2;
    }
    let kept = lines[..1].iter().chain(&lines[first.min(lines.len())..]);
    for (i, line) in kept.enumerate() {
        match i {
            0 => out.push(
                line.split(' ')
                    .take_while(|w| !w.starts_with('['))
                    .filter(|w| !w.starts_with("m=") && !w.starts_with("mp="))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            2 => out.push(
                line.split(' ')
                    .enumerate()
                    .filter_map(|(j, w)| match j {
                        0 => w.rsplit_once(':').map(|(f, _)| f.to_string()),
                        _ if w.starts_with("fp=") || w.starts_with("sp=") => Some(w.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => out.push(line.to_string()),
        }
    }
    out.join("\n")
}

/// The busy goroutine of a level-2 dump (`dump --system`, `dump --core`) against the
/// runtime's own print of it ([`busy_oracle`]): identical but for what moves
/// ([`running_view`]), both without preemption frames ([`without_preempt`]). Returns whether
/// the dump has it running (its stack from its thread's registers) rather than runnable.
fn busy_matches(dump: &str, oracle: &Goroutine, what: &str) -> Result<bool, String> {
    let tb = support::parse(dump);
    let g = tb
        .goroutines
        .into_iter()
        .find(|g| g.id == oracle.id)
        .ok_or_else(|| format!("{what}: no goroutine {}", oracle.id))?;
    let running = g.state.starts_with("running");
    let g = without_preempt(g);
    if running_view(&g) != running_view(oracle) {
        return Err(format!(
            "{what}: the busy goroutine {} differs from the runtime's print of it\n--- runtime\n{}\n+++ goroscope\n{}",
            oracle.id, oracle.raw, g.raw
        ));
    }
    Ok(running)
}

/// delve-style frames (`N  0xpc in func` / `at file:line`) → (pc, function, file:line).
fn parse_bt(text: &str) -> Vec<(u64, String, String)> {
    let mut frames = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let t = l.trim_start();
        let Some((n, rest)) = t.split_once("  0x") else {
            continue;
        };
        if n.parse::<usize>().is_err() {
            continue;
        }
        let Some((pc, func)) = rest.split_once(" in ") else {
            continue;
        };
        let Ok(pc) = u64::from_str_radix(pc, 16) else {
            continue;
        };
        let at = lines
            .next()
            .and_then(|a| a.trim().strip_prefix("at "))
            .unwrap_or_default();
        frames.push((pc, func.to_string(), at.to_string()));
    }
    frames
}

/// The busy goroutine's delve-style frames against the runtime's print of it: the same
/// functions, the same file:line but for the innermost frame's line; preemption frames on top
/// and the calls inlined at the innermost pc (which come and go with it) left out.
fn bt_matches(bt: &[(u64, String, String)], oracle: &Goroutine, what: &str) -> Result<(), String> {
    let want: Vec<(String, String)> = oracle
        .frames
        .iter()
        .skip_while(|f| f.offset.is_none())
        .map(|f| (f.func.clone(), format!("{}:{}", f.file, f.line)))
        .collect();
    let bt: Vec<(u64, String, String)> = bt
        .iter()
        .skip_while(|f| is_preempt(&f.1))
        .cloned()
        .collect();
    // A call inlined at a pc is listed at the same pc as its caller, before it.
    let inlined = bt.windows(2).take_while(|w| w[0].0 == w[1].0).count();
    let bt: Vec<(String, String)> = bt[inlined..]
        .iter()
        .map(|f| (f.1.clone(), f.2.clone()))
        .collect();
    let file = |at: &str| at.rsplit_once(':').map_or(at, |(f, _)| f).to_string();
    let same = bt.len() == want.len()
        && bt.iter().zip(&want).enumerate().all(|(i, (a, b))| {
            a.0 == b.0
                && if i == 0 {
                    file(&a.1) == file(&b.1)
                } else {
                    a.1 == b.1
                }
        });
    if same {
        Ok(())
    } else {
        Err(format!(
            "{what}: goroutine {} shows {bt:?}, its thread printed {want:?}",
            oracle.id
        ))
    }
}

/// `Goroutine N - User: loc func (0xpc) [(thread T)] [state]` lines → (N, thread, state).
fn parse_grs(text: &str) -> Vec<(u64, Option<u32>, String)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.get(2..)?.strip_prefix("Goroutine ")?;
            let (id, rest) = rest.split_once(" - ")?;
            let state = rest.rsplit_once('[')?.1.strip_suffix(']')?;
            let thread = rest
                .split_once(" (thread ")
                .and_then(|(_, t)| t.split_once(')'))
                .and_then(|(t, _)| t.parse().ok());
            Some((id.parse().ok()?, thread, state.to_string()))
        })
        .collect()
}

/// `grs` against the runtime's `runtime.Stack` (`oracle`): the same goroutines, each parked
/// one in the same state. Returns the busy goroutine's thread, if it was running.
fn grs_matches(
    grs: &str,
    oracle: &[Goroutine],
    busy: u64,
    what: &str,
) -> Result<Option<u32>, String> {
    let listed = parse_grs(grs);
    let mut ids: Vec<u64> = listed.iter().map(|g| g.0).collect();
    let mut want: Vec<u64> = oracle.iter().map(|g| g.id).collect();
    ids.sort_unstable();
    want.sort_unstable();
    if ids != want {
        return Err(format!(
            "{what}: goroutines {ids:?}, runtime.Stack has {want:?}\n{grs}"
        ));
    }
    for g in oracle.iter().filter(|g| g.is_parked() && g.id != 1) {
        let l = listed.iter().find(|l| l.0 == g.id).unwrap();
        if l.2 != g.state {
            return Err(format!(
                "{what}: goroutine {} [{}], runtime.Stack says [{}]",
                g.id, l.2, g.state
            ));
        }
    }
    let b = listed.iter().find(|l| l.0 == busy).unwrap();
    match (b.1, b.2.as_str()) {
        (Some(t), "running") => Ok(Some(t)),
        (None, "runnable") => Ok(None),
        _ => Err(format!(
            "{what}: the busy goroutine {busy} [{}] on thread {:?}\n{grs}",
            b.2, b.1
        )),
    }
}

/// `threads`: the thread running the busy goroutine, in its function or in the runtime's
/// `asyncPreempt`, which the runtime's preemption signal makes the goroutine call from where it
/// was interrupted (`tid`: that thread, when known from the same snapshot). Whether one does
/// (none when it was runnable, which only a known `tid` rules out).
fn threads_match(threads: &str, tid: Option<u32>, busy: u64, what: &str) -> Result<bool, String> {
    let on = threads
        .lines()
        .find(|l| l.ends_with(&format!(" (goroutine {busy})")));
    let want = tid.map(|t| format!("Thread {t} at "));
    match (on, want) {
        (None, None) => Ok(false),
        (Some(l), want)
            if (l.contains(&format!(" {BUSY} (goroutine"))
                || l.contains(" runtime.asyncPreempt (goroutine"))
                && want
                    .as_ref()
                    .is_none_or(|w| l.get(2..).is_some_and(|r| r.starts_with(w))) =>
        {
            Ok(true)
        }
        _ => Err(format!(
            "{what}: the thread running goroutine {busy} (thread {tid:?}) in {BUSY} is not listed so\n{threads}"
        )),
    }
}

/// The fixture's own goroutines (`runtime.Stack`) and its INFO lines.
fn oracle_stack(c: &Case) -> Result<Vec<Goroutine>, String> {
    let t = support::parse_strict(c.text("STACK")).map_err(|e| format!("runtime.Stack: {e}"))?;
    Ok(t.goroutines)
}

fn goid_with(gs: &[Goroutine], func: &str) -> Result<u64, String> {
    gs.iter()
        .find(|g| g.has_frame(func))
        .map(|g| g.id)
        .ok_or_else(|| format!("runtime.Stack has no goroutine in {func}"))
}

/// A `--nonblocking` dump against `runtime.Stack`: the goroutines it marks as not read are
/// active ones (the busy goroutine: running, or changed while read); the rest must match as
/// `dump` does ([`support::compare::compare`]).
fn nonblocking_matches(dump: &str, oracle: &[Goroutine], info: &Info) -> Result<(), String> {
    let (text, marked) = support::split_truncated(dump)?;
    let ours = support::parse_strict(&text)?.goroutines;
    for (id, why) in &marked {
        let r = oracle.iter().find(|g| g.id == *id);
        // Its stack is not read while it runs, nor when it ran between the two reads of its g
        // (preempted, rescheduled): the two reasons goroscope gives.
        let reason = why.starts_with("running;") || why.starts_with("changed while being read");
        if !r.is_some_and(|g| g.is_active()) || !reason {
            return Err(format!(
                "goroutine {id} marked ({why}), runtime.Stack has it {:?}",
                r.map(|g| &g.state)
            ));
        }
    }
    let unread = |g: &&Goroutine| !marked.iter().any(|m| m.0 == g.id);
    let ours: Vec<Goroutine> = ours.iter().filter(unread).cloned().collect();
    let theirs: Vec<Goroutine> = oracle.iter().filter(unread).cloned().collect();
    let info = Info::from_lines(
        info.lines
            .iter()
            .filter(|l| {
                !l.strip_prefix("running ")
                    .is_some_and(|f| oracle.iter().any(|g| g.has_frame(f.trim()) && !unread(&g)))
            })
            .cloned()
            .collect(),
    );
    let caller = theirs.first().map(|g| g.id).unwrap_or(1);
    support::compare(&ours, &theirs, caller, &info)
}

/// Everything checked of one fixture; the names of the parts that held.
/// Of the views that say whether the busy goroutine was running (`dump --system`, `grs -t`,
/// `threads`, the session's `grs`, the core): how many there are.
const BUSY_VIEWS: u32 = 5;

/// Everything checked of one fixture; how many of the [`BUSY_VIEWS`] caught the busy
/// goroutine running on its thread (at least one must: its stack then comes from that
/// thread's registers), rather than runnable, preempted.
fn check(c: &Case, exe: &Path, cores: &Path) -> Result<u32, String> {
    let oracle = oracle_stack(c)?;
    let info = Info::from_lines(
        c.text("INFO")
            .lines()
            .filter_map(|l| l.strip_prefix("INFO "))
            .map(str::to_string)
            .collect(),
    );
    let busy = goid_with(&oracle, BUSY)?;
    let parked = goid_with(&oracle, PARKED)?;
    let traceback = c.text("TRACEBACK");
    let crash = signal_traceback(traceback)?;
    let busy_own = busy_oracle(traceback, busy)?;

    // dump --system, and the running goroutine's frames from its thread's registers.
    let dump = c.ran("DUMP")?;
    let ours = support::parse_strict(dump).map_err(|e| format!("goroscope's dump: {e}\n{dump}"))?;
    support::compare::compare_system(&ours.goroutines, &crash.goroutines)
        .map_err(|e| format!("dump --system: {e}\n--- the crash traceback\n{traceback}"))?;
    let mut on_thread = busy_matches(dump, &busy_own, "dump --system")? as u32;

    // dump --nonblocking against runtime.Stack.
    nonblocking_matches(c.ran("NONBLOCKING")?, &oracle, &info).map_err(|e| {
        format!(
            "dump --nonblocking: {e}\n--- runtime.Stack\n{}",
            c.text("STACK")
        )
    })?;

    // grs -t, bt, threads.
    let grs = c.ran("GRS")?;
    let tid = grs_matches(grs, &oracle, busy, "grs -t")?;
    let head = |l: &str| parse_grs(l).first().map(|g| g.0);
    let stacks: String = grs
        .lines()
        .skip_while(|l| head(l) != Some(busy))
        .skip(1)
        .take_while(|l| head(l).is_none())
        .map(|l| format!("{l}\n"))
        .collect();
    bt_matches(&parse_bt(&stacks), &busy_own, "grs -t")?;
    on_thread += tid.is_some() as u32;
    bt_matches(&parse_bt(c.ran("BT")?), &busy_own, "bt")?;
    // Another moment: the goroutine may run on another thread by then.
    on_thread += threads_match(c.ran("THREADS")?, None, busy, "threads")? as u32;

    // The session: grs | gr P, bt, frame 1 | gr B, bt, threads.
    let session = c.ran("ATTACH")?;
    let parts: Vec<&str> = session.split("Switched from ").collect();
    let [grs, p, b] = parts[..] else {
        return Err(format!("attach: not three parts\n{session}"));
    };
    let tid = grs_matches(grs, &oracle, busy, "attach grs")?;
    on_thread += tid.is_some() as u32;
    let pbt: Vec<(String, String)> = parse_bt(p).into_iter().map(|f| (f.1, f.2)).collect();
    let pg = oracle.iter().find(|g| g.id == parked).unwrap();
    let want: Vec<(String, String)> = pg
        .frames
        .iter()
        .map(|f| (f.func.clone(), format!("{}:{}", f.file, f.line)))
        .collect();
    let shared: Vec<(String, String)> = pbt.iter().filter(|f| want.contains(f)).cloned().collect();
    if shared != want || pbt.last().map(|f| f.0.as_str()) != Some("runtime.goexit") {
        return Err(format!(
            "attach: bt of goroutine {parked} is {pbt:?}, runtime.Stack has {want:?}"
        ));
    }
    let frame1 = format!("Frame 1: {} (PC: ", pbt.get(1).map_or("", |f| f.1.as_str()));
    if !p.lines().any(|l| l.starts_with(&frame1)) {
        return Err(format!("attach: no {frame1:?} line after `frame 1`\n{p}"));
    }
    let is_thread = |l: &str| l.get(2..).is_some_and(|r| r.starts_with("Thread "));
    let bbt: String = b
        .lines()
        .take_while(|l| !is_thread(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let bthreads: String = b
        .lines()
        .skip_while(|l| !is_thread(l))
        .map(|l| format!("{l}\n"))
        .collect();
    bt_matches(&parse_bt(&bbt), &busy_own, "attach bt")?;
    if threads_match(&bthreads, tid, busy, "attach threads")? != tid.is_some() {
        return Err(format!(
            "attach: grs says goroutine {busy} runs on thread {tid:?}, threads does not\n{bthreads}"
        ));
    }

    // The core written by snapshot --core, read on the host.
    c.ran("CORE")?;
    let core = cores.join(format!("{}.core", c.name));
    let gz = fs::File::open(core.with_extension("core.gz")).map_err(|e| format!("{e}"))?;
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw)
        .map_err(|e| format!("the gzipped core: {e}"))?;
    fs::write(&core, raw).map_err(|e| format!("{e}"))?;
    let dump_core = |level: &str| {
        let (core, exe) = (core.to_string_lossy(), exe.to_string_lossy());
        support::run_goroscope(
            &["dump", "--level", level, "--core", &core, "--exe", &exe],
            Duration::from_secs(120),
        )
    };
    let out = dump_core("2")?;
    if !out.status.success() {
        return Err(format!("dump --core: {}\n{}", out.status, out.stderr));
    }
    let from_core = support::parse_strict(&out.stdout)?;
    support::compare::compare_system(&from_core.goroutines, &crash.goroutines).map_err(|e| {
        format!(
            "dump --core: {e}\n--- the crash traceback\n{}",
            signal_traceback_text(traceback)
        )
    })?;
    on_thread += busy_matches(&out.stdout, &busy_own, "dump --core")? as u32;
    if on_thread == 0 {
        return Err(format!(
            "the busy goroutine {busy} was runnable in all {BUSY_VIEWS} views: never read from its thread"
        ));
    }

    // The snapshot file of the same frozen window: `show` prints what `dump --core --level 1`
    // does.
    let level1 = dump_core("1")?;
    let snap = cores.join(format!("{}.gsnap", c.name));
    let show = support::run_goroscope(
        &["show", "--format", "go", &snap.to_string_lossy()],
        Duration::from_secs(120),
    )?;
    // The same goroutines, each printed identically; the order differs where the core's puts
    // the goroutine of its first thread (the one that crashed, in a kernel core) first.
    let blocks = |t: &str| {
        let mut b: Vec<String> = t.split("\n\n").map(|b| b.trim().to_string()).collect();
        b.sort();
        b
    };
    if !level1.status.success()
        || !show.status.success()
        || blocks(&level1.stdout) != blocks(&show.stdout)
    {
        return Err(format!(
            "show of the snapshot ({}) differs from dump --core --level 1 ({})\n--- show\n{}{}\n--- dump --core\n{}{}",
            show.status, level1.status, show.stdout, show.stderr, level1.stdout, level1.stderr
        ));
    }
    let _ = fs::remove_file(&core);
    Ok(on_thread)
}

/// The safety run's results (the lines outside any fixture's case); a summary or why not.
fn check_safety(c: &Case) -> Result<String, String> {
    let mut held = 0;
    let kills: Vec<&str> = c.text("KILLS").lines().collect();
    if kills.len() != KILLS as usize {
        return Err(format!(
            "{} kill runs reported, want {KILLS}\n{}",
            kills.len(),
            c.text("KILLS")
        ));
    }
    for k in &kills {
        // run, delay us, held, goroscope's status, running, pong, next dump's status
        let w: Vec<i64> = k.split(' ').filter_map(|w| w.parse().ok()).collect();
        let [_, _, h, gs, running, pong, next] = w[..] else {
            return Err(format!("kill run {k:?}: not 7 numbers"));
        };
        if !(gs == 137 || gs == 0) || running != 1 || pong != 1 || next != 0 {
            return Err(format!(
                "kill run {k:?} (run, delay us, held, goroscope's status, running, pong, next dump): the target was harmed"
            ));
        }
        held += (h == 1 && gs == 137) as u32;
    }
    if held < KILLS / 2 {
        return Err(format!(
            "only {held} SIGKILLs landed while goroscope held the target\n{}",
            kills.join("\n")
        ));
    }
    let (sent, counted) = (c.word::<u32>("USR1", 0), c.word::<u32>("USR1", 1));
    if sent != Some(KILLS / 2) || counted != sent {
        return Err(format!(
            "SIGUSR1 sent while goroscope held the target: {sent:?}, counted by the target {counted:?}"
        ));
    }
    let stack = c.text("KILL-STACK");
    let info = Info::from_lines(
        stack
            .lines()
            .filter_map(|l| l.strip_prefix("INFO "))
            .map(str::to_string)
            .collect(),
    );
    let stack: String = stack
        .lines()
        .filter(|l| !l.starts_with("INFO "))
        .map(|l| format!("{l}\n"))
        .collect();
    let theirs = support::parse_strict(&stack)?.goroutines;
    let ours = support::parse_strict(c.text("KILL-DUMP"))?.goroutines;
    support::compare(&ours, &theirs, theirs[0].id, &info)
        .map_err(|e| format!("the dump after the last kill: {e}"))?;

    // rounds sent, usr1, urg, chld counted, dumps failed, dumps after which it was stopped
    let n = |i| c.word::<u64>("SIGNALS", i);
    let (Some(sent), Some(u), Some(r), Some(h), Some(failed), Some(stopped)) =
        (n(0), n(1), n(2), n(3), n(4), n(5))
    else {
        return Err(format!("no SIGNALS line: {:?}", c.sections.get("SIGNALS")));
    };
    if [u, r, h] != [sent; 3] || sent == 0 || failed != 0 || stopped != 0 {
        return Err(format!(
            "signals: {sent} rounds of SIGUSR1, SIGURG, SIGCHLD sent, counted {u}/{r}/{h}; \
             {failed} of {SIGNAL_DUMPS} dumps failed, after {stopped} the target was not running"
        ));
    }
    Ok(format!(
        "{KILLS} SIGKILLs of goroscope ({held} while it held the target, each after a SIGUSR1 the target then counted) left it running ({} ms); \
         {sent} rounds of SIGUSR1/SIGURG/SIGCHLD during {SIGNAL_DUMPS} dumps all counted ({} ms)",
        c.word::<u64>("KILLS-MS", 0).unwrap_or(0),
        c.word::<u64>("SIGNALS-MS", 0).unwrap_or(0)
    ))
}

#[test]
fn arm64_vm_live_commands_match_the_runtime() {
    let Some(()) = support::require(cross_toolchain()) else {
        return;
    };
    let qemu = support::which("qemu-system-aarch64").is_some() || support::is_root();
    let Some(()) = support::require(if qemu {
        Ok(())
    } else {
        Err("qemu-system-aarch64 (Debian qemu-system-arm, or root to install it)".into())
    }) else {
        return;
    };
    let started = Instant::now();
    let goroscope = build_goroscope_aarch64().unwrap();
    check_static(&goroscope).unwrap();
    let dir = support::TempDir::new("arm64-live");
    let cores = dir.0.join("cores");
    fs::create_dir(&cores).unwrap();
    let mut fixtures = Vec::new();
    let toolchains = support::require_toolchains();
    for tc in &toolchains {
        for flavor in [Flavor::Default, Flavor::Stripped, Flavor::Pie] {
            let exe = support::fixture::build_fixture_arm64(tc, flavor).unwrap();
            let name = format!("fixture-{}-{}", tc.version, flavor.name());
            fs::copy(&exe, dir.0.join(&name)).unwrap();
            fixtures.push(name);
        }
    }
    let newest = format!(
        "/add/fixture-{}-default",
        toolchains.last().unwrap().version
    );
    let built = started.elapsed();

    let root = support::fixture::manifest_dir();
    let scripts = root.join("testdata").join("arm64");
    let mut cmd = Command::new(root.join("scripts").join("arm64-vm.sh"));
    cmd.env("GOROSCOPE_AARCH64", &goroscope)
        .env("ARM64_VM_TIMEOUT", VM_TIMEOUT.as_secs().to_string())
        .arg("--get")
        .arg(&cores);
    for s in ["lib.sh", "live-each.sh", "values.sh", "safety.sh"] {
        cmd.arg("--add").arg(scripts.join(s));
    }
    for f in &fixtures {
        cmd.arg("--add").arg(dir.0.join(f));
    }
    let args: Vec<String> = fixtures.iter().map(|f| format!("/add/{f}")).collect();
    cmd.arg("--").arg(format!(
        "sh /add/live-each.sh {}; sh /add/values.sh {newest}; sh /add/safety.sh {newest} {KILLS} {SIGNAL_DUMPS}",
        args.join(" ")
    ));
    let vm_started = Instant::now();
    let out = support::run_with_timeout(&mut cmd, VM_TIMEOUT + Duration::from_secs(120)).unwrap();
    let vm_time = vm_started.elapsed();
    let _ = fs::write(dir.0.join("vm-stdout.txt"), &out.stdout);
    assert!(
        out.status.success(),
        "scripts/arm64-vm.sh: {}\n{}{}",
        out.status,
        out.stdout,
        out.stderr
    );

    let cases = parse_cases(&out.stdout);
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for f in &fixtures {
        let Some(c) = cases.iter().find(|c| &c.name == f) else {
            failures.push(format!("{f}: no results in the VM's output"));
            table.push(format!("{f}: NO RESULT"));
            continue;
        };
        match check(c, &dir.0.join(f), &cores) {
            Ok(n) => table.push(format!(
                "{f}: exact (busy goroutine on its thread in {n}/{BUSY_VIEWS} views; {} dumps --system, the last {} ms; {} ms in the VM)",
                c.word::<u32>("DUMP", 1).unwrap_or(0),
                c.word::<u64>("DUMP", 2).unwrap_or(0),
                c.word::<u64>("MS", 0).unwrap_or(0)
            )),
            Err(e) => {
                table.push(format!("{f}: DIFFERENT"));
                failures.push(format!("{f}: {e}"));
            }
        }
    }
    let values = cases
        .iter()
        .find(|c| c.name == "values")
        .map(|c| check_values(c, toolchains.last().unwrap().minor()))
        .unwrap_or_else(|| Err("no results in the VM's output".into()));
    table.push(format!(
        "values ({}): {}",
        toolchains.last().unwrap().name(),
        match &values {
            Ok(s) => s.clone(),
            Err(_) => "DIFFERENT".into(),
        }
    ));
    if let Err(e) = &values {
        failures.push(format!("values: {e}"));
    }
    let safety = cases
        .iter()
        .find(|c| c.name.is_empty())
        .map(check_safety)
        .unwrap_or_else(|| Err("no safety results".into()));
    let exact = fixtures.len() - failures.len() + usize::from(values.is_err());
    eprintln!(
        "arm64 VM (builds {:.0?}, VM {:.0?}):\n  {}",
        built,
        vm_time,
        table.join("\n  ")
    );
    let summary = format!(
        "arm64 live: {exact}/{} fixtures exact (dump --system, --nonblocking, attach --batch, grs -t, bt, threads, snapshot --core read on the host); values: {}; safety: {}; VM {:.0?}",
        fixtures.len(),
        match &values {
            Ok(s) => s.clone(),
            Err(_) => "FAILED".into(),
        },
        match &safety {
            Ok(s) => s.clone(),
            Err(_) => "FAILED".into(),
        },
        vm_time
    );
    support::summary(&summary);
    if let Err(e) = safety {
        failures.push(format!("safety: {e}"));
    }
    assert!(
        failures.is_empty(),
        "{}\n(the VM's output: {})",
        failures.join("\n\n"),
        dir.0.join("vm-stdout.txt").display()
    );
}

/// The "values" case (testdata/arm64/values.sh) against the truths the fixture printed, for a
/// fixture built by Go 1.`minor`: every value `bt --full --json` printed of a variable with a
/// truth is that truth unless it says it is not there, and every plain variable of
/// [`ALWAYS_LIVE`] (and from 1.22 [`LIVE_FROM_1_22`]) of a goroutine that does not run was
/// printed as its truth. Says how many were.
fn check_values(c: &Case, minor: u32) -> Result<String, String> {
    let lines = c
        .text("INFO")
        .lines()
        .filter_map(|l| l.strip_prefix("INFO "))
        .map(str::to_string)
        .collect();
    let info = Info::from_lines(lines);
    let truths = support::values::truths(&info.lines);
    let mut failures = Vec::new();
    let mut readable: Vec<(String, String)> = Vec::new();
    let goids: std::collections::BTreeSet<u64> = truths.keys().map(|k| k.0).collect();
    for g in goids {
        let section = format!("VALUES-{g}");
        let json = c.ran(&section)?;
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("{section}: {e}\n{json}"))?;
        compare_frames(g, &v, &truths, &mut readable, &mut failures);
    }
    let plain = |e: &str| e.chars().all(|c| c.is_alphanumeric() || c == '_');
    let from_1_22 = if minor >= 22 { LIVE_FROM_1_22 } else { &[] };
    for (func, expr) in ALWAYS_LIVE.iter().chain(from_1_22) {
        let running = info.running.iter().any(|r| r == func);
        if plain(expr) && !running && !readable.iter().any(|(f, e)| f == func && e == expr) {
            failures.push(format!(
                "{func} {expr} was not printed as the fixture's value"
            ));
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    Ok(format!(
        "{} variables printed as the fixture's values",
        readable.len()
    ))
}

/// The busy goroutine's comparison leaves out only what moves while it runs: preemption frames
/// pushed on top, calls inlined at the innermost pc, that frame's line, offset and pc, the
/// header's M and state. Its frames' `fp=` and `sp=`, the outer frames and created-by stay.
#[test]
fn busy_comparison_leaves_out_only_what_moves() {
    const OURS: &str = "goroutine 21 gp=0xc1 m=7 mp=0xc2 [running]:
main.busySpin()
\t/f/busy.go:35 +0x14 fp=0xd0 sp=0xd0 pc=0x257134
runtime.goexit({})
\t/go/asm_arm64.s:1039 +0x4 fp=0xd0 sp=0xd0 pc=0x97f24
created by main.setupBusy in goroutine 1
\t/f/busy.go:18 +0x28";
    const PREEMPTED: &str = "goroutine 21 gp=0xc1 m=nil [runnable]:
runtime.asyncPreempt2()
\t/go/preempt.go:320 +0x18 fp=0xa0 sp=0x90 pc=0x59678
runtime.asyncPreempt()
\t/go/preempt_arm64.s:44 +0x88 fp=0xd0 sp=0xa0 pc=0x98718
sync/atomic.(*Int32).Store(...)
\t/go/type.go:73
main.busySpin()
\t/f/busy.go:34 +0x10 fp=0xd0 sp=0xd0 pc=0x257130
runtime.goexit({})
\t/go/asm_arm64.s:1039 +0x4 fp=0xd0 sp=0xd0 pc=0x97f24
created by main.setupBusy in goroutine 1
\t/f/busy.go:18 +0x28";
    let one = |t: &str| support::parse(t).goroutines.remove(0);
    let oracle = without_preempt(one(PREEMPTED));
    assert_eq!(busy_matches(OURS, &oracle, "t"), Ok(true));
    for (from, to) in [
        ("fp=0xd0 sp=0xd0 pc=0x257134", "fp=0xd8 sp=0xd0 pc=0x257134"),
        ("fp=0xd0 sp=0xd0 pc=0x257134", "fp=0xd0 sp=0xc8 pc=0x257134"),
        ("main.busySpin()", "main.busySpinX()"),
        ("/f/busy.go:35", "/f/other.go:35"),
        ("asm_arm64.s:1039 +0x4", "asm_arm64.s:1039 +0x8"),
        ("busy.go:18 +0x28", "busy.go:19 +0x28"),
        ("gp=0xc1", "gp=0xc3"),
    ] {
        let changed = OURS.replace(from, to);
        assert!(
            busy_matches(&changed, &oracle, "t").is_err(),
            "{from:?} -> {to:?}"
        );
    }
    // delve's view: the inlined call shares its caller's pc.
    let bt = "0  0x0000000000257130 in sync/atomic.(*Int32).Store
      at /go/type.go:73
1  0x0000000000257130 in main.busySpin
      at /f/busy.go:34
2  0x0000000000097f24 in runtime.goexit
      at /go/asm_arm64.s:1039
";
    bt_matches(&parse_bt(bt), &oracle, "t").unwrap();
    let moved = bt.replace("asm_arm64.s:1039", "asm_arm64.s:1040");
    assert!(bt_matches(&parse_bt(&moved), &oracle, "t").is_err());
}
