//! `--format pprof` opened by the Go toolchain's own `go tool pprof`: the profile's main
//! mapping names the fixture binary, so `-disasm` and `-weblist` find its instructions.
//!
//! Oracles: the instructions are `go tool objdump`'s for the same function of the same binary,
//! and the instruction that carries the goroutine's sample is the one at the function's entry
//! plus the `+0x..` offset the fixture's own `runtime.Stack` prints for that frame. A PIE build
//! checks the mapping's addresses and offset (pprof finds the sample only through them).
//! Every toolchain (`GOROSCOPE_GO_VERSIONS` narrows them), default and PIE builds, each opened
//! by its own toolchain's pprof (but Go 1.19's, which cannot place PIE samples); the profile of
//! a live dump and the one of a snapshot file shown later.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{Child, Flavor, TempDir, Toolchain, require_toolchains};

/// How long any single command may take before it counts as hung (from Go 1.25 the first
/// `go tool pprof` builds the tool).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The fixture function whose instructions are looked at: one goroutine of the `chan`
/// scenario parks in it for good.
const FUNC: &str = "main.chanNilRecv";

/// Runs a command to completion within [`RUN_TIMEOUT`]; its stdout, or a panic with everything.
fn run_ok(cmd: &mut Command) -> String {
    let desc = format!("{cmd:?}");
    let out = support::run_with_timeout(cmd, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{desc}: {}\n--- stderr\n{}--- stdout\n{}",
        out.status,
        out.stderr,
        out.stdout
    );
    out.stdout
}

/// `goroscope ARGS > file` (pprof output is binary: the shell writes it, not a pipe to a String).
fn goroscope_to_file(args: &[&str], file: &Path) {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("out=$1; shift; exec \"$@\" > \"$out\"")
        .arg("sh")
        .arg(file)
        .arg(support::goroscope_bin())
        .args(args);
    run_ok(&mut sh);
}

/// `go tool pprof ARGS` of this toolchain, its scratch files kept in `dir`.
fn pprof(tc: &Toolchain, dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(&tc.go);
    cmd.args(["tool", "pprof"])
        .args(args)
        .env("PPROF_TMPDIR", dir);
    support::fixture::go_env(&mut cmd, tc, Flavor::Default);
    run_ok(&mut cmd)
}

/// `(address, instruction)` of every instruction `go tool objdump` prints for `FUNC`.
fn objdump(tc: &Toolchain, exe: &Path) -> Vec<(u64, String)> {
    let re = format!("^{}$", FUNC.replace('.', "\\."));
    let mut cmd = Command::new(&tc.go);
    cmd.args(["tool", "objdump", "-s", &re]).arg(exe);
    support::fixture::go_env(&mut cmd, tc, Flavor::Default);
    let text = run_ok(&mut cmd);
    // "  chan.go:51\t\t0x66976e\t\t31c0\t\t\tXORL AX, AX\t\t\t"
    let insts: Vec<(u64, String)> = text
        .lines()
        .filter(|l| !l.starts_with("TEXT "))
        .filter_map(|l| {
            let cols: Vec<&str> = l
                .split('\t')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let addr = u64::from_str_radix(cols.get(1)?.strip_prefix("0x")?, 16).ok()?;
            Some((addr, cols.get(3)?.to_string()))
        })
        .collect();
    assert!(
        insts.len() > 3,
        "objdump of {FUNC} in {}:\n{text}",
        exe.display()
    );
    insts
}

/// `(address, cum, instruction)` of every instruction line of `FUNC`'s routine in pprof's
/// `-disasm` output: `         .          1     669777: ADDQ $0x10, SP     ;main.f chan.go:52`.
fn disasm_lines(text: &str) -> Vec<(u64, String, String)> {
    let mut lines = text
        .lines()
        .skip_while(|l| !(l.starts_with("ROUTINE ") && l.ends_with(&format!(" {FUNC}"))));
    assert!(
        lines.next().is_some(),
        "no ROUTINE for {FUNC} in pprof -disasm:\n{text}"
    );
    lines
        .take_while(|l| !l.starts_with("ROUTINE "))
        .filter_map(|l| {
            let (counts, inst) = l.split_once(": ")?;
            let mut words = counts.split_whitespace();
            let (_flat, cum, addr) = (words.next()?, words.next()?, words.next()?);
            let addr = u64::from_str_radix(addr, 16).ok()?;
            let inst = inst.split(" ;").next().unwrap_or(inst).trim_end();
            Some((addr, cum.to_string(), inst.to_string()))
        })
        .collect()
}

/// The `+0x..` offset of `FUNC`'s frame in the fixture's own `runtime.Stack`.
fn runtime_offset(child: &mut Child) -> u64 {
    let stack = child.stack().unwrap_or_else(|e| panic!("{e}"));
    let tb = support::parse(&stack);
    let frames: Vec<&support::Frame> = tb
        .goroutines
        .iter()
        .flat_map(|g| &g.frames)
        .filter(|f| f.func == FUNC)
        .collect();
    assert_eq!(frames.len(), 1, "one goroutine in {FUNC}:\n{stack}");
    frames[0]
        .offset
        .unwrap_or_else(|| panic!("{FUNC} is not inlined:\n{stack}"))
}

/// The GNU build id `readelf -n` reads from the binary (None without readelf or a note).
fn readelf_build_id(exe: &Path) -> Option<String> {
    let out = Command::new("readelf").arg("-n").arg(exe).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Build ID: ")
            .map(|s| s.trim().to_string())
    })
}

/// Dumps the `chan` fixture of one build as a profile (live, and from a snapshot file) and
/// opens each with `go tool pprof -disasm`, `-weblist` and `-raw` of `tool`'s toolchain.
fn check(tc: &Toolchain, flavor: Flavor, tool: &Toolchain) {
    let what = format!(
        "go{} {} (pprof of go{})",
        tc.version,
        flavor.name(),
        tool.version
    );
    let exe: PathBuf = support::build_fixture(tc, flavor).unwrap_or_else(|e| panic!("{what}: {e}"));
    let insts = objdump(tool, &exe);
    let entry = insts[0].0;
    let mut child = Child::start(&exe, "chan").unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.pid.to_string();
    let sampled = entry + runtime_offset(&mut child);
    let dir = TempDir::new("pprof");
    let live = dir.0.join("live.pb.gz");
    goroscope_to_file(&["dump", "-q", "--format", "pprof", &pid], &live);
    let snap = dir.0.join("app.gsnap");
    run_ok(
        Command::new(support::goroscope_bin())
            .args(["snapshot", "-q", &pid, "-o"])
            .arg(&snap),
    );
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
    drop(child);
    let shown = dir.0.join("shown.pb.gz");
    goroscope_to_file(
        &["show", "--format", "pprof", snap.to_str().unwrap()],
        &shown,
    );

    // pprof matches the regexp against the node's name, which at its address granularity is
    // `ADDRESS FUNC FILE:LINE`, and against the binary's symbols.
    let re = format!("(^| ){}( |$)", FUNC.replace('.', "\\."));
    let build_id = readelf_build_id(&exe);
    for prof in [&live, &shown] {
        let prof = prof.to_str().unwrap();
        let ctx = format!("{what}, {prof}");

        // The main mapping: the binary's path and build id, symbolized already.
        let raw = pprof(tool, &dir.0, &["-raw", prof]);
        let mapping = raw
            .lines()
            .skip_while(|l| *l != "Mappings")
            .nth(1)
            .unwrap_or_else(|| panic!("{ctx}: no mapping:\n{raw}"));
        let words: Vec<&str> = mapping.split_whitespace().collect();
        assert_eq!(words.get(2).copied(), exe.to_str(), "{ctx}: {mapping}");
        if let Some(id) = &build_id {
            assert_eq!(
                words.get(3),
                Some(&id.as_str()),
                "{ctx}: the GNU build id: {mapping}"
            );
        }
        assert!(mapping.ends_with("[FN][FL][LN][IN]"), "{ctx}: {mapping}");

        // -disasm: objdump's instructions, the sample on the one the runtime's offset names.
        let text = pprof(tool, &dir.0, &[&format!("-disasm={re}"), prof]);
        let lines = disasm_lines(&text);
        let mut got: Vec<(u64, &str)> = lines.iter().map(|(a, _, i)| (*a, i.as_str())).collect();
        let want: Vec<(u64, &str)> = insts.iter().map(|(a, i)| (*a, i.as_str())).collect();
        // pprof decodes up to the symbol's last byte but one (`End: Start + Size - 1`), so
        // the function's last instruction comes out cut short, as `?`.
        if let (Some(g), Some(w)) = (got.last_mut(), want.last())
            && g.1 == "?"
        {
            g.1 = w.1;
        }
        assert_eq!(
            got, want,
            "{ctx}: pprof -disasm against go tool objdump:\n{text}"
        );
        let hit: Vec<(u64, &str)> = lines
            .iter()
            .filter(|(_, c, _)| c != ".")
            .map(|(a, c, _)| (*a, c.as_str()))
            .collect();
        assert_eq!(
            hit,
            vec![(sampled, "1")],
            "{ctx}: the goroutine's sample sits at entry {entry:#x} + the runtime's offset:\n{text}"
        );
        println!(
            "{ctx}: {} instructions, sample at {sampled:#x}",
            lines.len()
        );

        // -weblist: the same instruction under its source line.
        let html = dir.0.join("list.html");
        pprof(
            tool,
            &dir.0,
            &[
                &format!("-weblist={re}"),
                &format!("-output={}", html.display()),
                prof,
            ],
        );
        let html = std::fs::read_to_string(&html).unwrap();
        let inst = &insts
            .iter()
            .find(|(a, _)| *a == sampled)
            .expect("the sampled pc is an instruction")
            .1;
        let line = html
            .lines()
            .find(|l| l.contains(&format!("{sampled:x}:")))
            .unwrap_or_else(|| panic!("{ctx}: {sampled:x} not in -weblist:\n{html}"));
        assert!(
            line.contains(inst.as_str()),
            "{ctx}: {inst:?} not in {line:?}"
        );
    }
}

#[test]
fn pprof_disasm_and_weblist_find_the_binary() {
    let newest = support::toolchains::newest();
    for tc in require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Pie] {
            // Each build's own toolchain opens its profile, except that Go 1.19's pprof does not
            // move a sample's address by the load bias (its `ObjAddr` returns it unchanged), so
            // it cannot place any PIE sample; the newest pprof opens that one.
            let tool = if flavor == Flavor::Pie && tc.minor() < 21 {
                &newest
            } else {
                &tc
            };
            check(&tc, flavor, tool);
        }
    }
}
