//! Fuzz smoke run on stable Rust: the same target functions as the `cargo fuzz` project
//! (`goroscope::fuzzing`), over seeds from real files (the fixture binary built by the newest
//! and oldest Go toolchains, its pclntab and buildinfo, an empty Go program, a core written by
//! goroscope's core writer, the committed snapshot, text dumps rendered from it, the memory a
//! dump of the running fixture reads), each mutated by a deterministic mutator for a few
//! thousand iterations within a time budget.
//!
//! A panic, or an input slower than [`SLOW`], fails the test and leaves the input in
//! `target/fuzz-smoke/<target>/`. Inputs that once failed are kept in `testdata/fuzz/<target>/`
//! and replayed by `regressions`. `GOROSCOPE_FUZZ_CORPUS=DIR` also writes every seed to
//! `DIR/<target>/` (how `scripts/fuzz.sh` seeds `cargo fuzz`).

use crate::support;

use goroscope::arch::{Arch, Regs};
use goroscope::fuzzing::{self, UnwindSetup, ValuesSetup, WalkSetup, unwind_flag, walk_flag};
use goroscope::target::MemoryReader;
use goroscope::target::core::write::{Captured, encode_regs};
use goroscope::target::proc::Mapping;
use object::{Object, ObjectSection};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::{Flavor, TempDir, fixture::fixtures_root, fixture::manifest_dir};

/// Mutated inputs per target (fewer when the time budget runs out first).
const ITERATIONS: usize = 4000;
/// Time budget per target.
const BUDGET: Duration = Duration::from_secs(8);
/// One input taking longer than this counts as a hang.
const SLOW: Duration = Duration::from_secs(2);

/// A fuzz target: takes one input, panics on a bug.
type FuzzTarget = Box<dyn Fn(&[u8])>;

/// The fuzz targets by name (the names of `fuzz/fuzz_targets/*.rs` and `testdata/fuzz/*`).
fn target(name: &str) -> FuzzTarget {
    match name {
        "pclntab" => Box::new(fuzzing::pclntab),
        "buildinfo" => Box::new(fuzzing::buildinfo),
        "go_binary" => Box::new(fuzzing::go_binary),
        "core_file" => Box::new(fuzzing::core_file),
        "snapshot_file" => Box::new(fuzzing::snapshot_file),
        "text_dump" => Box::new(fuzzing::text_dump),
        "values" => Box::new(fuzzing::values),
        "value_decode" => {
            let setup = values_setup();
            Box::new(move |d| setup.run(d))
        }
        "unwind" => {
            let setup = unwind_setup();
            Box::new(move |d| setup.run(d))
        }
        "runtime_walk" => {
            let setup = walk_setup();
            Box::new(move |d| setup.run(d))
        }
        other => panic!("no fuzz target {other}"),
    }
}

/// xorshift64*: deterministic, so a failure reproduces run after run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    16,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fff0,
    0xffff_fff1,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 7,
];

/// A position: anywhere, or near the start or the end, where headers and tables live.
fn pos(rng: &mut Rng, len: usize) -> usize {
    match rng.below(4) {
        0 => rng.below(len.min(4096)),
        1 => len - 1 - rng.below(len.min(4096)),
        _ => rng.below(len),
    }
}

/// One to four mutations of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if d.is_empty() {
            d.push(rng.next() as u8);
            continue;
        }
        let len = d.len();
        let p = pos(rng, len);
        match rng.below(8) {
            0 => d[p] ^= 1 << rng.below(8),
            1 => d[p] = rng.next() as u8,
            2..=4 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let w = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = v.to_le_bytes();
                for (k, b) in bytes[..w].iter().enumerate() {
                    if let Some(x) = d.get_mut(p + k) {
                        *x = *b;
                    }
                }
            }
            5 => d.truncate(p),
            6 => {
                let n = rng.below((len - p).min(64)) + 1;
                d.drain(p..p + n);
            }
            _ => {
                let from = rng.below(len);
                let n = rng.below((len - from).min(64)) + 1;
                let chunk = d[from..from + n].to_vec();
                d.splice(p..p, chunk);
            }
        }
    }
    d
}

/// Runs `name`'s target on `input`; a panic or a hang is saved and reported.
fn check(name: &str, f: &dyn Fn(&[u8]), input: &[u8], what: &str) {
    let t = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| f(input)));
    let slow = t.elapsed() > SLOW;
    if r.is_ok() && !slow {
        return;
    }
    let dir = manifest_dir().join("target/fuzz-smoke").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("crash-{:016x}", fnv(input)));
    let _ = std::fs::write(&file, input);
    let why = if slow {
        format!("took {:?}", t.elapsed())
    } else {
        "panicked".into()
    };
    panic!(
        "fuzz target {name} {why} on {what}; input saved as {}",
        file.display()
    );
}

fn fnv(d: &[u8]) -> u64 {
    d.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The smoke run of one target over its seeds.
fn smoke(name: &str, seeds: Vec<Vec<u8>>) {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    if let Some(dir) = std::env::var_os("GOROSCOPE_FUZZ_CORPUS") {
        let dir = PathBuf::from(dir).join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for s in &seeds {
            std::fs::write(dir.join(format!("seed-{:016x}", fnv(s))), s).unwrap();
        }
    }
    let f = target(name);
    for (i, s) in seeds.iter().enumerate() {
        check(name, &*f, s, &format!("seed {i}"));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ fnv(name.as_bytes()));
    let start = Instant::now();
    let mut n = 0;
    while n < ITERATIONS && start.elapsed() < BUDGET {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        check(name, &*f, &input, &format!("iteration {n}"));
        n += 1;
    }
    eprintln!(
        "fuzz smoke {name}: {} seeds, {n} mutated inputs in {:.1?}",
        seeds.len(),
        start.elapsed()
    );
}

/// The fixture binaries seeds come from: default builds by the newest and oldest toolchains,
/// and the newest's stripped build.
fn fixtures() -> &'static [PathBuf] {
    static F: OnceLock<Vec<PathBuf>> = OnceLock::new();
    F.get_or_init(|| {
        let tcs = support::require_toolchains();
        let newest = tcs.last().unwrap();
        let mut out = vec![support::build_fixture(newest, Flavor::Default).unwrap()];
        out.push(support::build_fixture(newest, Flavor::Stripped).unwrap());
        if tcs.len() > 1 {
            out.push(support::build_fixture(&tcs[0], Flavor::Default).unwrap());
        }
        out
    })
}

/// A Go program with an empty main built by the newest toolchain, as it is and stripped: whole
/// binaries small enough (about 1.5 MB) for thousands of `go_binary` inputs in its budget.
fn tiny_binaries() -> &'static [PathBuf] {
    static T: OnceLock<Vec<PathBuf>> = OnceLock::new();
    T.get_or_init(|| {
        let tc = support::require_toolchains().pop().unwrap();
        let dir = fixtures_root().join(&tc.version).join("tiny");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.go"), "package main\n\nfunc main() {}\n").unwrap();
        std::fs::write(
            dir.join("go.mod"),
            format!("module tiny\n\ngo 1.{}\n", tc.minor()),
        )
        .unwrap();
        [
            ("tiny", &[][..]),
            ("tiny-stripped", &["-ldflags=-s -w"][..]),
        ]
        .into_iter()
        .map(|(name, flags)| {
            let bin = dir.join(name);
            if bin.is_file() {
                return bin;
            }
            let tmp = format!("{name}.tmp-{}", std::process::id());
            let mut cmd = Command::new(&tc.go);
            cmd.current_dir(&dir)
                .arg("build")
                .args(flags)
                .args(["-o", &tmp, "."]);
            support::fixture::go_env(&mut cmd, &tc, Flavor::Default);
            let out = support::run_with_timeout(&mut cmd, Duration::from_secs(300)).unwrap();
            assert!(out.status.success(), "building {name}: {}", out.stderr);
            std::fs::rename(dir.join(&tmp), &bin).unwrap();
            bin
        })
        .collect()
    })
}

fn unwind_setup() -> &'static UnwindSetup {
    static S: OnceLock<UnwindSetup> = OnceLock::new();
    S.get_or_init(|| UnwindSetup::new(&fixtures()[0]).unwrap())
}

fn values_setup() -> &'static ValuesSetup {
    static S: OnceLock<ValuesSetup> = OnceLock::new();
    S.get_or_init(|| ValuesSetup::new(&fixtures()[0]).unwrap())
}

fn walk_setup() -> &'static WalkSetup {
    static S: OnceLock<WalkSetup> = OnceLock::new();
    S.get_or_init(|| WalkSetup::new(&fixtures()[0]).unwrap())
}

/// Reads a running process and keeps every range read, by address and length.
struct Recorder {
    proc: goroscope::target::live::LiveProcess,
    seen: std::sync::Mutex<std::collections::BTreeMap<(u64, u64), Vec<u8>>>,
}

impl Recorder {
    fn keep(&self, addr: u64, bytes: &[u8]) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((addr, bytes.len() as u64))
            .or_insert_with(|| bytes.to_vec());
    }

    /// A copy function over the process that keeps what it copied.
    fn copy(&self, reqs: &[(u64, u64)], img: &mut goroscope::target::image::MemoryImage) {
        self.proc.copy_into(reqs, img);
        for &(a, len) in reqs {
            if let Some(b) = img.slice(a, len) {
                self.keep(a, b);
            }
        }
    }
}

impl goroscope::target::MemoryReader for Recorder {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), goroscope::target::ReadError> {
        self.proc.read_at(addr, buf)?;
        self.keep(addr, buf);
        Ok(())
    }
}

/// Seeds for the runtime walk: the memory a dump of the fixture's "all" scenario (every
/// goroutine state, labels, channels, sync primitives) reads, recorded from the running
/// process without stopping it, for each way of copying; its threads with the pc and sp
/// `/proc/PID/task/TID/syscall` shows.
fn walk_seeds() -> Vec<Vec<u8>> {
    use goroscope::runtime::goroutines::{self, PreCopy};
    use goroscope::runtime::{OpenOptions, Runtime, blocked};
    let exe = &fixtures()[0];
    let child = support::Child::start(exe, "all").unwrap();
    let rec = Recorder {
        proc: goroscope::target::live::LiveProcess::open(child.pid as i32).unwrap(),
        seen: Default::default(),
    };
    for stripped in [true, false] {
        let bin = goroscope::binary::GoBinary::open(exe).unwrap();
        let rt = Runtime::open(
            bin,
            &rec,
            0,
            OpenOptions {
                stripped,
                ..Default::default()
            },
        )
        .unwrap();
        let copy = |reqs: &[(u64, u64)], img: &mut goroscope::target::image::MemoryImage| {
            rec.copy(reqs, img)
        };
        let pre = PreCopy::take(&rt, &copy);
        let image = goroutines::capture(&rt, &[], &copy, Some(&pre)).finish(Some(pre));
        let mut snap =
            goroscope::capture::build_snapshot(&rt, &image, &[], 0, Default::default(), &mut ())
                .unwrap();
        blocked::analyze(&rt, &image, &mut snap.goroutines, &[], &copy);
    }
    let threads: Vec<(i32, u64, u64)> = rec
        .proc
        .thread_ids()
        .unwrap()
        .into_iter()
        .map(|tid| {
            let sys = std::fs::read_to_string(format!("/proc/{}/task/{tid}/syscall", child.pid))
                .unwrap_or_default();
            let w: Vec<u64> = sys
                .split_whitespace()
                .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
                .collect();
            let (sp, pc) = if w.len() >= 3 {
                (w[w.len() - 2], w[w.len() - 1])
            } else {
                (0, 0)
            };
            (tid, pc, sp)
        })
        .collect();
    drop(child);
    let seen = rec.seen.into_inner().unwrap_or_else(|e| e.into_inner());
    let records: Vec<(u64, &[u8])> = seen.iter().map(|(&(a, _), b)| (a, &b[..])).collect();
    [
        0,
        walk_flag::PRECOPY,
        walk_flag::NONBLOCKING,
        walk_flag::STRIPPED | walk_flag::PRECOPY,
    ]
    .into_iter()
    .map(|flags| fuzzing::walk_input(flags, &threads, &records))
    .collect()
}

fn section(exe: &Path, names: &[&str]) -> Vec<u8> {
    let bytes = std::fs::read(exe).unwrap();
    let elf = object::File::parse(&*bytes).unwrap();
    let s = names.iter().find_map(|n| elf.section_by_name(n)).unwrap();
    s.data().unwrap().to_vec()
}

fn sample_snapshot() -> Vec<u8> {
    std::fs::read(manifest_dir().join("testdata/snapshots/v1.json.gz")).unwrap()
}

/// Text dumps: the committed snapshot rendered at both traceback levels, and a SIGQUIT dump.
fn text_dumps() -> Vec<Vec<u8>> {
    use goroscope::render::traceback::{Options, render};
    let snap = goroscope::snapshot::store::read(&sample_snapshot())
        .unwrap()
        .snapshot;
    let mut out = Vec::new();
    for (level, labels) in [(1, false), (2, true)] {
        let mut b = Vec::new();
        render(
            &snap.meta,
            &snap.goroutines,
            Options {
                level,
                labels,
                ..Default::default()
            },
            &mut b,
        )
        .unwrap();
        out.push(b);
    }
    out.push(
        b"SIGQUIT: quit\nPC=0x46f3a1 m=0 sigcode=0\n\ngoroutine 1 gp=0xc000002380 m=nil [chan receive, 3 minutes, \
          locked to thread] {k: v, \"a b\": \"c\\\"d\"}:\nmain.main()\n\t/app/main.go:12 +0x25 fp=0xc sp=0xd pc=0x1\n\n\
          goroutine 7 [select]:\nmain.(*S).run(0xc000010000, {0x1, 0x2})\n\t/app/s.go:40 +0x1a\nmain.helper(...)\n\t\
          /app/s.go:9\n...additional frames elided...\ncreated by main.start in goroutine 1\n\t/app/main.go:30 +0x9f\n"
            .to_vec(),
    );
    out
}

/// A small core in goroscope's own core format: the fixture's first page and a stack with
/// environment strings, two threads, `NT_AUXV` pointing into the stack, for both arches.
fn cores() -> Vec<Vec<u8>> {
    let exe = &fixtures()[0];
    let head = std::fs::read(exe).unwrap()[..4096].to_vec();
    let dir = TempDir::new("fuzz-smoke-core");
    let stack_at = 0x00c0_0000_0000_u64;
    let mut stack = vec![0u8; 0x2000];
    let env = b"prog\0HOME=/root\0GOTRACEBACK=crash\0/bin/prog\0";
    let env_at = stack.len() - env.len();
    stack[env_at..].copy_from_slice(env);
    let execfn = stack_at + (stack.len() - b"/bin/prog\0".len()) as u64;
    let mut auxv = Vec::new();
    for (k, v) in [(9u64, 0x401000u64), (31, execfn), (6, 4096), (0, 0)] {
        auxv.extend_from_slice(&k.to_le_bytes());
        auxv.extend_from_slice(&v.to_le_bytes());
    }
    let mut out = Vec::new();
    for arch in [Arch::Amd64, Arch::Arm64] {
        let regs = |pc, sp| {
            encode_regs(
                arch,
                &Regs {
                    pc,
                    sp,
                    fp: sp + 0x40,
                    lr: pc + 4,
                    g: stack_at + 0x100,
                },
            )
        };
        let c = Captured {
            arch,
            pid: 4242,
            ids: (0, 0),
            maps: vec![
                Mapping {
                    start: 0x400000,
                    end: 0x500000,
                    perms: "r-xp".into(),
                    offset: 0,
                    path: exe.display().to_string(),
                },
                Mapping {
                    start: stack_at,
                    end: stack_at + stack.len() as u64,
                    perms: "rw-p".into(),
                    offset: 0,
                    path: String::new(),
                },
            ],
            bytes: vec![head.clone(), stack.clone()],
            threads: vec![
                (4242, regs(0x401000, stack_at + 0x800), Vec::new()),
                (4243, regs(0x402000, stack_at + 0x1000), Vec::new()),
            ],
            auxv: auxv.clone(),
            comm: "fixture".into(),
            cmdline: "fixture sleep".into(),
            ppid: 1,
        };
        let path = dir.0.join(format!("{arch}.core"));
        goroscope::target::core::write::write(&path, &c).unwrap();
        out.push(std::fs::read(&path).unwrap());
    }
    out
}

#[test]
fn pclntab() {
    let seeds = fixtures()
        .iter()
        .chain(tiny_binaries())
        .map(|f| section(f, &[".gopclntab", ".data.rel.ro.gopclntab"]))
        .collect();
    smoke("pclntab", seeds);
}

#[test]
fn buildinfo() {
    let seeds = fixtures()
        .iter()
        .chain(tiny_binaries())
        .map(|f| section(f, &[".go.buildinfo"]))
        .collect();
    smoke("buildinfo", seeds);
}

#[test]
fn go_binary() {
    smoke(
        "go_binary",
        tiny_binaries()
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect(),
    );
}

#[test]
fn core_file() {
    smoke("core_file", cores());
}

#[test]
fn snapshot_file() {
    let gz = sample_snapshot();
    let json = {
        use std::io::Read;
        let mut j = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut j)
            .unwrap();
        j
    };
    let mut seeds = vec![[&[1u8][..], &gz].concat(), [&[0u8][..], &json].concat()];
    seeds.extend(text_dumps().iter().map(|t| [&[1u8][..], t].concat()));
    smoke("snapshot_file", seeds);
}

#[test]
fn text_dump() {
    smoke("text_dump", text_dumps());
}

/// Values decoded from memory the input gives: for each fuzzed type, a window whose words point
/// back into it (so pointers, slices, strings, maps and interfaces lead somewhere), with small
/// counts and lengths mixed in.
#[test]
fn value_decode() {
    let mut rng = Rng(11);
    let mut seeds = Vec::new();
    for pick in 0..fuzzing::VALUE_TYPES.len() as u8 {
        for round in 0..4u64 {
            let mut s = vec![pick];
            for i in 0..64u64 {
                let w = match (i + round) % 3 {
                    0 => fuzzing::VALUE_BASE + 8 * (rng.next() % 64),
                    1 => rng.next() % 5,
                    _ => rng.next(),
                };
                s.extend_from_slice(&w.to_le_bytes());
            }
            seeds.push(s);
        }
    }
    smoke("value_decode", seeds);
}

/// `print` expressions, and the location expressions Go's compiler writes (frame base plus
/// offset, registers, pieces, constants).
#[test]
fn values() {
    let mut seeds: Vec<Vec<u8>> = [
        "r.At.Y",
        "rooms[1].Name",
        "(*main.T)(0xc000010000).f",
        "len(*p)",
    ]
    .iter()
    .map(|e| [&[0u8][..], e.as_bytes()].concat())
    .collect();
    seeds.extend([
        vec![1, 0x9c],
        vec![2, 0x91, 8, 0x93, 8, 0x91, 16, 0x93, 8],
        vec![2, 0x50, 0x93, 8, 0x53, 0x93, 8],
        vec![3, 0x91, 0x78, 0x93, 8, 0x93, 8, 0x93, 8],
        vec![1, 0x35, 0x9f],
        vec![1, 0x91, 0x10, 0x06, 0x23, 8],
    ]);
    smoke("values", seeds);
}

#[test]
fn unwind() {
    let setup = unwind_setup();
    let mut rng = Rng(7);
    let mut seeds = Vec::new();
    for flags in [
        0,
        unwind_flag::TRAP,
        unwind_flag::SYSCALL,
        unwind_flag::JUMP,
        unwind_flag::PC_ZERO,
        unwind_flag::ARM64,
        unwind_flag::RAW_SP,
    ] {
        for depth in [1, 4, 16] {
            seeds.push(setup.seed(flags, depth, || rng.next()));
        }
    }
    // A stack at the very top of the address space.
    let mut top = setup.seed(unwind_flag::RAW_SP, 4, || rng.next());
    top[24..32].copy_from_slice(&(u64::MAX - 63).to_le_bytes());
    seeds.push(top);
    smoke("unwind", seeds);
}

#[test]
fn runtime_walk() {
    let seeds = walk_seeds();
    eprintln!("fuzz smoke runtime_walk: seeds of {} bytes", seeds[0].len());
    smoke("runtime_walk", seeds);
}

/// Every input that once made a target fail, replayed. The folder must hold some: a missing
/// or empty one would check nothing.
#[test]
fn regressions() {
    let root = manifest_dir().join("testdata/fuzz");
    let dirs = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let mut replayed = 0;
    for d in dirs {
        let d = d.unwrap().path();
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        let f = target(&name);
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            check(
                &name,
                &*f,
                &std::fs::read(&p).unwrap(),
                &p.display().to_string(),
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs in {}", root.display());
    eprintln!("fuzz regressions: {replayed} inputs replayed");
}

/// A section whose address range wraps past the top of the address space (found by reading
/// `GoBinary::read_static`): looked up without an overflow.
#[test]
fn section_wrapping_the_address_space() {
    let exe = &fixtures()[1];
    let mut bytes = std::fs::read(exe).unwrap();
    let shdr = {
        let elf = object::File::parse(&*bytes).unwrap();
        let s = elf.section_by_name(".go.buildinfo").unwrap();
        let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
        shoff + s.index().0 * 64
    };
    bytes[shdr + 16..shdr + 24].copy_from_slice(&(u64::MAX - 15).to_le_bytes());
    let bin = goroscope::binary::GoBinary::from_bytes(Path::new("wrapped"), &bytes).unwrap();
    assert_eq!(bin.read_static(u64::MAX - 8, 4), None);
    fuzzing::go_binary(&bytes);
}

/// A compressed DWARF section declaring a terabyte uncompressed: refused before anything
/// that size is reserved.
#[test]
fn dwarf_section_declaring_a_huge_size() {
    let exe = &fixtures()[0];
    let mut bytes = std::fs::read(exe).unwrap();
    let at = {
        let elf = object::File::parse(&*bytes).unwrap();
        elf.section_by_name(".debug_info")
            .unwrap()
            .compressed_file_range()
            .unwrap()
            .offset as usize
    };
    // Elf64_Chdr: ch_type u32, ch_reserved u32, ch_size u64.
    let at = at - 24;
    bytes[at + 8..at + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let bin = goroscope::binary::GoBinary::from_bytes(Path::new("huge-dwarf"), &bytes).unwrap();
    let err = goroscope::runtime::layout::Layout::from_dwarf(&bin).unwrap_err();
    assert!(
        err.to_string().contains("1099511627776 bytes uncompressed"),
        "{err}"
    );
}
