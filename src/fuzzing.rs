//! Fuzz targets: one function per parser of untrusted bytes, shared by the `cargo fuzz`
//! project in `fuzz/` and the stable smoke test `tests/it/fuzz_smoke.rs`, so both run exactly
//! the same code.
//!
//! Each target feeds its bytes to one library entry point and then uses what came back the
//! way goroscope does, so a parse that "succeeds" with inconsistent tables is exercised too.
//! A target may return errors freely; it must never panic, hang or allocate without bound.

use crate::arch::Arch;
use crate::binary::GoBinary;
use crate::binary::buildinfo::BuildInfo;
use crate::binary::pclntab::Pclntab;
use crate::runtime::{OpenOptions, Runtime};
use crate::target::MemoryReader;
use crate::target::core::CoreFile;
use crate::target::image::MemoryImage;
use crate::unwind::{self, Code, FuncIds, JumpTo, Limits, Start, symbolize};
use std::path::Path;

/// Most functions of a fuzzed pclntab whose tables are walked (the rest are only counted).
pub(crate) const MAX_FUZZ_FUNCS: usize = 256;
/// Frames one fuzzed unwind may produce (the default limit is sized for real 1 GB stacks,
/// far more than a fuzz input can describe).
pub(crate) const MAX_FUZZ_FRAMES: usize = 1024;

fn word(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    for (k, v) in b.iter_mut().enumerate() {
        *v = data.get(i * 8 + k).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// The pclntab parser: parses `data`, uses the same bytes as the `gofunc` area, and looks up
/// functions, pc-value tables and inlined frames at pcs taken from the input itself.
pub fn pclntab(data: &[u8]) {
    let Ok(mut tab) = Pclntab::parse(data.to_vec()) else {
        return;
    };
    tab.set_gofunc(0, data.to_vec());
    let text = tab.text_start();
    let pcs =
        (0..data.len().min(64 * 8) / 8).map(|i| text.wrapping_add(word(data, i) & 0xffff_ffff));
    for pc in pcs {
        if let Some(f) = tab.func_for_pc(pc) {
            let _ = tab.frames_at(f, pc);
        }
    }
    for f in tab.funcs().take(MAX_FUZZ_FUNCS) {
        let (entry, end) = (tab.entry(f), tab.end(f));
        for pc in [
            entry,
            entry.wrapping_add(1),
            end.wrapping_sub(1),
            end,
            entry.wrapping_add(end.wrapping_sub(entry) / 2),
        ] {
            let _ = tab.pcsp(f, pc);
            let _ = tab.file_line(f, pc);
            let _ = tab.frames_at(f, pc);
        }
        let _ = (
            tab.wrapped_entry(f),
            tab.args(f),
            tab.deferreturn(f),
            tab.start_line(f),
        );
        let name = tab.name(f).to_string();
        let _ = tab.func_by_name(&name);
    }
}

/// The `.go.buildinfo` parser.
pub fn buildinfo(data: &[u8]) {
    if let Ok(bi) = BuildInfo::parse(data) {
        let _ = bi.setting("GOARCH");
    }
}

/// An executable opened as a Go binary ([`GoBinary::from_bytes`]), then its runtime layouts
/// read from DWARF and its static data read.
pub fn go_binary(data: &[u8]) {
    let Ok(bin) = GoBinary::from_bytes(Path::new("fuzz"), data) else {
        return;
    };
    let _ = crate::runtime::layout::Layout::from_dwarf(&bin);
    let _ = bin.read_static(bin.pclntab_addr, 64);
    let _ = bin.read_static(u64::MAX - 8, 16);
    if let Some(s) = bin.symbol("runtime.allgs") {
        let _ = bin.read_static(s.addr, s.size.min(64));
    }
}

/// A core file ([`CoreFile::from_bytes`]), then its memory, threads and environment read.
pub fn core_file(data: &[u8]) {
    let Ok(core) = CoreFile::from_bytes(Path::new("fuzz"), data) else {
        return;
    };
    let mut buf = [0u8; 64];
    let probes: Vec<u64> = core
        .segments()
        .iter()
        .take(16)
        .flat_map(|s| [s.vaddr, s.vaddr.wrapping_add(s.memsz).wrapping_sub(8)])
        .chain(core.threads().iter().take(16).map(|t| t.regs.sp))
        .collect();
    for a in probes {
        let _ = core.read_at(a, &mut buf);
        let _ = core.slice(a, 16);
    }
    let _ = (
        core.environ(),
        core.exe_path_hint(),
        core.pid(),
        core.fname(),
        core.signal(),
    );
}

/// A snapshot file as `goroscope show` reads it ([`crate::snapshot::store::read`]). The first
/// byte picks how the rest is given: 0 gzip-compresses it first (so the JSON schema is fuzzed
/// behind a valid gzip frame), anything else passes it as it is (gzip, JSON or text).
pub fn snapshot_file(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode == 0 {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if gz.write_all(rest).is_err() {
            return;
        }
        match gz.finish() {
            Ok(b) => b,
            Err(_) => return,
        }
    } else {
        rest.to_vec()
    };
    let _ = crate::snapshot::store::read(&bytes);
}

/// The value readers' parsers: with a first byte of 0, the rest is a `print` expression
/// ([`crate::values::expr::parse`]); otherwise the first byte gives a value's size in words and
/// the rest is a DWARF location expression evaluated ([`crate::values::loc::eval`]) against a
/// frame whose stack is the input itself.
pub fn values(data: &[u8]) {
    use crate::values::loc::{FrameCtx, eval};
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    if first == 0 {
        let _ = crate::values::expr::parse(&String::from_utf8_lossy(rest));
        return;
    }
    let none = MemoryImage::new();
    let mem = crate::target::Windowed {
        lo: 0x1000,
        bytes: data,
        rest: &none,
    };
    let words: Vec<u64> = (0..34).map(|r| 0x1000 + r).collect();
    for regs in [None, Some(&words[..])] {
        let f = FrameCtx {
            cfa: 0x1010,
            regs,
            fp: None,
            arch: Arch::Amd64,
            bias: 0,
        };
        let bytes: std::sync::Arc<[u8]> = rest.into();
        let x = gimli::Expression(gimli::EndianArcSlice::new(bytes, gimli::LittleEndian));
        let enc = gimli::Encoding {
            address_size: 8,
            format: gimli::Format::Dwarf32,
            version: 4,
        };
        let _ = eval(&x, enc, u64::from(first) * 8, &f, &mem);
    }
}

/// Types of the fixture's "values" scenario the value decoders are fuzzed with: every shape
/// [`crate::values::show`] decodes (structs, pointers, slices, arrays, strings, both map layouts
/// through the binary's own, interfaces, channels, locks and WaitGroups, times and durations).
pub const VALUE_TYPES: [&str; 13] = [
    "main.vaRoom",
    "*main.vaRoom",
    "[]*main.vaRoom",
    "map[string]int",
    "map[int]string",
    "interface {}",
    "fmt.Stringer",
    "chan int",
    "sync.RWMutex",
    "sync.WaitGroup",
    "*main.vaClock",
    "string",
    "[3]int",
];

/// Where a fuzzed value's memory starts.
pub const VALUE_BASE: u64 = 0x1000;

/// The value decoders over memory from the input, with the DWARF of a real fixture binary: the
/// first byte picks a type of [`VALUE_TYPES`], the rest is memory at [`VALUE_BASE`] holding the
/// value and everything it points to (pointers outside it fail to read).
pub struct ValuesSetup {
    prog: crate::values::Program,
    types: Vec<u64>,
}

impl ValuesSetup {
    /// Reads the binary's DWARF and finds the types.
    pub fn new(exe: &Path) -> Result<ValuesSetup, String> {
        let bin = GoBinary::open(exe).map_err(|e| e.to_string())?;
        let prog = crate::values::Program::load(&bin, 0)?;
        let names = prog.dw.type_names()?;
        let types: Vec<u64> = VALUE_TYPES
            .iter()
            .filter_map(|n| names.by_name(n))
            .collect();
        if types.is_empty() {
            return Err(format!("{}: none of the fuzzed types", exe.display()));
        }
        Ok(ValuesSetup { prog, types })
    }

    /// Decodes and writes one value, then looks a key up in it.
    pub fn run(&self, data: &[u8]) {
        use crate::values::show::{Config, Place, Reader, Val};
        let Some((&pick, rest)) = data.split_first() else {
            return;
        };
        let none = MemoryImage::new();
        let mem = crate::target::Windowed {
            lo: VALUE_BASE,
            bytes: rest,
            rest: &none,
        };
        let cfg = Config {
            max_recurse: 3,
            ..Config::default()
        };
        let name = |_: u64| None;
        let r = Reader::new(&self.prog.dw, &mem, cfg, 0, self.prog.types, &name);
        let v = Val {
            ty: self.types[pick as usize % self.types.len()],
            place: Place::Mem(VALUE_BASE),
        };
        let _ = r.show(&v);
        for k in [
            crate::values::maps::Key::Int(7),
            crate::values::maps::Key::Str("two".into()),
        ] {
            let _ = crate::values::maps::lookup(&r, &v, &k);
        }
    }
}

/// The importer of Go's own text dumps ([`crate::snapshot::text::parse`]).
pub fn text_dump(data: &[u8]) {
    let _ = crate::snapshot::text::parse(&String::from_utf8_lossy(data));
}

/// Where the fuzzed stack lives in the unwinder target's address space.
pub(crate) const FUZZ_STACK_BASE: u64 = 0x00c0_0010_0000;
/// Size of the fixed part of an unwinder input before its stack bytes.
pub(crate) const UNWIND_HEADER: usize = 32;
/// Flag bits of an unwinder input's first byte.
pub mod unwind_flag {
    /// `Start::syscall`.
    pub const SYSCALL: u8 = 1;
    /// `Start::trap`.
    pub const TRAP: u8 = 2;
    /// Start on a system stack and jump to the goroutine's saved registers.
    pub const JUMP: u8 = 4;
    /// Start at pc 0 (a nil function call).
    pub const PC_ZERO: u8 = 8;
    /// Unwind with arm64's rules.
    pub const ARM64: u8 = 16;
    /// Place the stack at the (8-aligned) raw sp word instead of [`super::FUZZ_STACK_BASE`].
    pub const RAW_SP: u8 = 32;
}
/// A stack word whose top byte is this is a "pc token": its low 32 bits pick a function,
/// the next 16 an offset into it, so inputs name real return addresses of any binary.
pub(crate) const PC_TOKEN: u8 = 0xfe;

/// The unwinder over random memory: a real Go binary's function table, registers and stack
/// bytes from the input.
pub struct UnwindSetup {
    bin: GoBinary,
    ids: FuncIds,
}

impl UnwindSetup {
    /// Opens the Go binary whose function table the unwinds use (unstripped, for the text and
    /// `gofunc` symbols).
    pub fn new(exe: &Path) -> Result<UnwindSetup, String> {
        let mut bin = GoBinary::open(exe).map_err(|e| e.to_string())?;
        let text = bin
            .symbol("runtime.text")
            .ok_or("no runtime.text symbol (stripped binary?)")?;
        bin.pclntab.set_text_start(text.addr);
        let gofunc = bin.symbol("go:func.*").or_else(|| bin.symbol("go.func.*"));
        if let Some(tail) = gofunc
            .and_then(|g| crate::runtime::section_tail(&bin, g.addr).map(|b| (g.addr, b.to_vec())))
        {
            bin.pclntab.set_gofunc(tail.0, tail.1);
        }
        let ids = FuncIds::from_pclntab(&bin.pclntab);
        Ok(UnwindSetup { bin, ids })
    }

    /// The pc a token names (see [`PC_TOKEN`]).
    fn token_pc(&self, w: u64) -> u64 {
        let tab = &self.bin.pclntab;
        let n = tab.nfunc().max(1);
        let Some(f) = tab.func_at((w & 0xffff_ffff) as usize % n) else {
            return 0;
        };
        let len = tab.end(f).wrapping_sub(tab.entry(f)).clamp(1, 1 << 20);
        tab.entry(f).wrapping_add(((w >> 32) & 0xffff) % len)
    }

    /// A word of the input: a pc token becomes its pc, anything else stays.
    fn resolve(&self, w: u64) -> u64 {
        if (w >> 56) as u8 == PC_TOKEN {
            self.token_pc(w)
        } else {
            w
        }
    }

    /// Unwinds and symbolizes one input: `[flags, _ x7]`, pc, lr and sp words, then the
    /// stack bytes at [`FUZZ_STACK_BASE`] (sp is an offset into them unless
    /// [`unwind_flag::RAW_SP`]); with [`unwind_flag::JUMP`] the goroutine's saved registers
    /// are the lr word and the sp word's next 16 bits.
    pub fn run(&self, data: &[u8]) {
        let flags = data.first().copied().unwrap_or(0);
        let stack = data.get(UNWIND_HEADER..).unwrap_or(&[]);
        let mut mem = MemoryImage::new();
        let words: Vec<u8> = stack
            .chunks(8)
            .flat_map(|c| {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                self.resolve(u64::from_le_bytes(b))
                    .to_le_bytes()
                    .into_iter()
                    .take(c.len())
            })
            .collect();
        let base = if flags & unwind_flag::RAW_SP != 0 {
            word(data, 3) & !7
        } else {
            FUZZ_STACK_BASE
        };
        mem.insert(base, words);
        let sp_at = |w: u64| {
            if base == FUZZ_STACK_BASE {
                base.wrapping_add(w & 0xffff)
            } else {
                base
            }
        };
        let start = Start {
            pc: if flags & unwind_flag::PC_ZERO != 0 {
                0
            } else {
                self.resolve(word(data, 1))
            },
            lr: self.resolve(word(data, 2)),
            sp: sp_at(word(data, 3)),
            syscall: flags & unwind_flag::SYSCALL != 0,
            trap: flags & unwind_flag::TRAP != 0,
        };
        let jump = (flags & unwind_flag::JUMP != 0).then(|| JumpTo {
            pc: self.resolve(word(data, 2)),
            sp: sp_at(word(data, 3) >> 16),
            lr: 0,
        });
        let arch = if flags & unwind_flag::ARM64 != 0 {
            Arch::Arm64
        } else {
            self.bin.arch
        };
        let code = Code {
            arch,
            tab: &self.bin.pclntab,
            ids: &self.ids,
        };
        let mut cache = unwind::UnwindCache::default();
        let unwound = unwind::unwind(
            code,
            &mem,
            start,
            jump,
            Limits {
                max_frames: MAX_FUZZ_FRAMES,
            },
            &mut cache,
        );
        let _ = symbolize::Symbolizer::new(code).logical_frames(&mem, &unwound);
    }

    /// A seed input: a consistent amd64 stack of up to `depth` frames, each function and pc
    /// picked by `pick`, its return address stored where its pcsp frame size puts it.
    pub fn seed(&self, flags: u8, depth: usize, mut pick: impl FnMut() -> u64) -> Vec<u8> {
        let tab = &self.bin.pclntab;
        let token = |w: u64| (w & 0x0000_ffff_ffff_ffff) | (u64::from(PC_TOKEN) << 56);
        let mut d = vec![0u8; UNWIND_HEADER];
        d[0] = flags;
        let mut stack: Vec<u64> = Vec::new();
        let mut tok = token(pick());
        d[8..16].copy_from_slice(&tok.to_le_bytes());
        let mut sp = 0usize;
        for _ in 0..depth {
            let pc = self.token_pc(tok);
            let Some(delta) = tab.func_for_pc(pc).and_then(|f| tab.pcsp(f, pc)) else {
                break;
            };
            let Ok(delta) = usize::try_from(delta) else {
                break;
            };
            if delta > 1 << 12 {
                break;
            }
            let slot = (sp + delta) / 8;
            stack.resize(stack.len().max(slot + 1), 0);
            tok = token(pick());
            stack[slot] = tok;
            sp += delta + 8;
        }
        d.extend(stack.iter().flat_map(|w| w.to_le_bytes()));
        d
    }
}

/// Flag bits of a runtime walk input's first byte.
pub mod walk_flag {
    /// Discover as for a stripped binary (`--no-dwarf`): layout tables, moduledata found by a
    /// scan, `allgs` by decoding `runtime.allgadd` and validating it in the fuzzed memory.
    pub const STRIPPED: u8 = 1;
    /// Copy the goroutines twice, the second time against the first (the pre-copy and frozen
    /// window of a live dump), before the walk.
    pub const PRECOPY: u8 = 2;
    /// Read the copy as `--nonblocking` does (`PreCopy::unstopped`).
    pub const NONBLOCKING: u8 = 4;
}
/// Threads described by a runtime walk input's header.
pub(crate) const WALK_THREADS: usize = 4;
/// Size of the fixed part of a runtime walk input: the flags word, then per thread its tid,
/// pc and sp words.
pub(crate) const WALK_HEADER: usize = 8 + WALK_THREADS * 24;
/// Size of a record's header in a runtime walk input: address (8 bytes), length (4).
pub(crate) const WALK_RECORD_HEADER: usize = 12;

/// The runtime discovery and goroutine walk over memory from the input: a real Go binary
/// (non-PIE) whose static data (its writable and read-only segments, `.bss` zeroed) is
/// overlaid with the input's records, so that `runtime::find`, `runtime::goroutines`,
/// `runtime::blocked` and `runtime::labels` read hostile g structs, stacks, Ms, sudogs,
/// channels and labels. Each input runs the copy plan of a dump
/// ([`crate::runtime::goroutines::capture`], with a pre-copy or non-blocking as the flags
/// say), [`crate::capture::build_snapshot`] and [`crate::runtime::blocked::analyze`] with a
/// [`Runtime`]: discovered on the input's memory by [`Runtime::open`] as for a stripped
/// binary ([`walk_flag::STRIPPED`]), else the one discovered from DWARF and symbols when the
/// setup was made (reading layouts from DWARF takes tens of milliseconds, and reads no
/// target memory).
pub struct WalkSetup {
    exe: std::path::PathBuf,
    /// The executable's non-executable `PT_LOAD` segments at their addresses.
    segments: Vec<(u64, Vec<u8>)>,
    base: MemoryImage,
    rt: Runtime,
}

impl WalkSetup {
    /// Reads the static data of the Go binary the walks discover (unstripped, not PIE).
    pub fn new(exe: &Path) -> Result<WalkSetup, String> {
        use object::{Object, ObjectSegment, SegmentFlags};
        let bin = GoBinary::open(exe).map_err(|e| e.to_string())?;
        if bin.is_pie {
            return Err(format!(
                "{}: a PIE binary; the walk target wants one loaded at its own addresses",
                exe.display()
            ));
        }
        let mut segments = Vec::new();
        for s in bin.elf().segments() {
            let exec = matches!(s.flags(), SegmentFlags::Elf { p_flags, .. } if p_flags.contains(object::elf::PF_X));
            if exec {
                continue;
            }
            let mut bytes = s.data().map_err(|e| e.to_string())?.to_vec();
            // .bss: zeroes up to the segment's size in memory.
            bytes.resize(
                usize::try_from(s.size())
                    .map_err(|e| e.to_string())?
                    .max(bytes.len()),
                0,
            );
            segments.push((s.address(), bytes));
        }
        let mut base = MemoryImage::new();
        for (a, b) in &segments {
            base.insert(*a, b.clone());
        }
        let rt = Runtime::open(bin, &base, 0, OpenOptions::default()).map_err(|e| e.to_string())?;
        Ok(WalkSetup {
            exe: exe.to_path_buf(),
            segments,
            base,
            rt,
        })
    }

    /// Runs one input: `[flags, _ x7]`, [`WALK_THREADS`] times `(tid, pc, sp)` words, then
    /// records `(addr: u64, len: u32, bytes)` laid over the static data (earlier records win).
    pub fn run(&self, data: &[u8]) {
        use crate::capture::build_snapshot;
        use crate::runtime::blocked;
        use crate::runtime::goroutines::{self, PreCopy};
        use crate::target::{Layered, ThreadState};
        let flags = data.first().copied().unwrap_or(0);
        let threads: Vec<ThreadState> = (0..WALK_THREADS)
            .map(|i| {
                let w = |k: usize| word(data, 1 + i * 3 + k);
                let regs = crate::arch::Regs {
                    pc: w(1),
                    sp: w(2),
                    ..Default::default()
                };
                ThreadState {
                    tid: w(0) as i32,
                    regs,
                    words: Vec::new(),
                    fp: Vec::new(),
                }
            })
            .collect();
        let records = walk_records(data.get(WALK_HEADER..).unwrap_or(&[]));
        let mut overlay = MemoryImage::new();
        for (a, b) in &records {
            overlay.insert(*a, b.to_vec());
        }
        let mem = Layered(&overlay, &self.base);
        // What a live copy does: the parts of each request the memory holds.
        let copy = |reqs: &[(u64, u64)], img: &mut MemoryImage| {
            for &(a, len) in reqs {
                let pieces = records
                    .iter()
                    .map(|(s, b)| (*s, *b))
                    .chain(self.segments.iter().map(|(s, b)| (*s, &b[..])));
                for (s, b) in pieces {
                    let lo = a.max(s);
                    let hi = a.saturating_add(len).min(s.saturating_add(b.len() as u64));
                    if lo < hi {
                        img.insert(lo, b[(lo - s) as usize..(hi - s) as usize].to_vec());
                    }
                }
            }
        };
        let opened;
        let rt = if flags & walk_flag::STRIPPED != 0 {
            let Ok(bin) = GoBinary::open(&self.exe) else {
                return;
            };
            let opts = OpenOptions {
                stripped: true,
                ..Default::default()
            };
            let Ok(rt) = Runtime::open(bin, &mem, 0, opts) else {
                return;
            };
            opened = rt;
            &opened
        } else {
            &self.rt
        };
        let image = if flags & walk_flag::NONBLOCKING != 0 {
            PreCopy::unstopped(rt, &copy, 3).0
        } else {
            let pre = (flags & walk_flag::PRECOPY != 0).then(|| PreCopy::take(rt, &copy));
            let cap = goroutines::capture(rt, &threads, &copy, pre.as_ref());
            cap.finish(pre)
        };
        let Ok(mut snap) = build_snapshot(rt, &image, &threads, 0, Default::default(), &mut ())
        else {
            return;
        };
        snap.objects = blocked::analyze(rt, &image, &mut snap.goroutines, &threads, &copy);
    }
}

/// The records of a runtime walk input after its header: `(addr, bytes)`, the last one cut
/// short by the end of the input.
fn walk_records(mut d: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    while d.len() > WALK_RECORD_HEADER {
        let addr = u64::from_le_bytes(d[..8].try_into().unwrap_or_default());
        let len = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default()) as usize;
        let body = &d[WALK_RECORD_HEADER..];
        let n = len.min(body.len());
        out.push((addr, &body[..n]));
        d = &body[n..];
    }
    out
}

/// A runtime walk input (the inverse of what [`WalkSetup::run`] reads): `flags`, threads as
/// `(tid, pc, sp)` (at most [`WALK_THREADS`]), and memory records.
pub fn walk_input(flags: u8, threads: &[(i32, u64, u64)], records: &[(u64, &[u8])]) -> Vec<u8> {
    let mut d = vec![0u8; WALK_HEADER];
    d[0] = flags;
    for (i, &(tid, pc, sp)) in threads.iter().take(WALK_THREADS).enumerate() {
        for (k, w) in [tid as u32 as u64, pc, sp].into_iter().enumerate() {
            let at = 8 + (i * 3 + k) * 8;
            d[at..at + 8].copy_from_slice(&w.to_le_bytes());
        }
    }
    for (a, b) in records {
        for (k, piece) in b.chunks(u32::MAX as usize).enumerate() {
            d.extend_from_slice(&a.wrapping_add(k as u64 * u64::from(u32::MAX)).to_le_bytes());
            d.extend_from_slice(&(piece.len() as u32).to_le_bytes());
            d.extend_from_slice(piece);
        }
    }
    d
}
