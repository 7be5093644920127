//! From physical frames to the logical frames a traceback prints, with the runtime's rules
//! for which frames its default traceback hides (`showfuncinfo`, `isSystemGoroutine`,
//! `printcreatedby` in `src/runtime/traceback.go`).

use super::{AddrHasher, Code, PcMap, PhysFrame, Unwound};
use crate::binary::pclntab::{FUNCDATA_ARG_INFO, FUNCDATA_ARG_LIVE_INFO, PCDATA_ARG_LIVE_INDEX};
use crate::snapshot::{CreatedBy, Frame, Name, SharedNames, Site};
use crate::target::{MemoryReader, ReadExt};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::rc::Rc;
use std::sync::Arc;

/// Symbolizes pcs into the model's frames, each distinct pc once: a process with 100,000
/// goroutines parked at a few hundred places decodes a few hundred pcs, and every function
/// and file name is one shared [`Name`]. One per thread (it is not shared).
pub struct Symbolizer<'a> {
    code: Code<'a>,
    /// Source frames by the physical frame's symbolization pc.
    pcs: PcMap<Rc<PcFrames<'a>>>,
    /// Interned names, by the address of the name's bytes in the function table.
    names: HashMap<(usize, usize), Name, BuildHasherDefault<AddrHasher>>,
    /// `go` statements by `gopc`.
    go_stmts: PcMap<Option<CreatedBy>>,
    /// Start functions and whether they make a system goroutine, by start pc.
    starts: PcMap<(StartFunc, bool)>,
    /// Argument texts printed so far, shared (at most [`MAX_ARGS_SHARED`]).
    args: SharedNames,
    /// `...`, what every inlined call prints.
    dots: Name,
}

/// Most distinct argument texts a [`Symbolizer`] shares: parked goroutines print a few forms
/// (`0x0?, 0x0?`) over and over; past this many, a new text is held by its frame alone.
const MAX_ARGS_SHARED: usize = 1 << 16;

/// The logical frames at one pc, innermost first, the physical function last.
struct PcFrames<'a> {
    frames: Box<[SrcFrame]>,
    /// How the physical function's arguments print, at this pc.
    args: ArgInfo<'a>,
    /// The argument text last printed at this pc: goroutines parked at one place mostly
    /// print the same, which is then shared without a lookup.
    last_args: std::cell::RefCell<Option<Name>>,
}

/// One logical frame at a pc.
struct SrcFrame {
    /// Where it is, shared by every frame at this pc (of the pc this cache entry was made
    /// for; another pc of the same symbolic pc gets a site of its own).
    site: Arc<Site>,
    func_id: u8,
    vis: Visibility,
}

impl<'a> Symbolizer<'a> {
    /// An empty cache over `code`.
    pub fn new(code: Code<'a>) -> Self {
        Symbolizer {
            code,
            pcs: PcMap::default(),
            names: HashMap::default(),
            go_stmts: PcMap::default(),
            starts: PcMap::default(),
            args: SharedNames::new(MAX_ARGS_SHARED),
            dots: Name::from("..."),
        }
    }

    /// The code it symbolizes.
    pub fn code(&self) -> Code<'a> {
        self.code
    }

    /// `s` as a shared name; `s` must be a name of the function table (interned by address).
    fn name(&mut self, s: &'a str) -> Name {
        self.names
            .entry((s.as_ptr() as usize, s.len()))
            .or_insert_with(|| Name::from(s))
            .clone()
    }

    fn pc_frames(&mut self, pf: &PhysFrame) -> Rc<PcFrames<'a>> {
        let tab = self.code.tab;
        let sym_pc = pf.sym_pc(tab);
        if let Some(p) = self.pcs.get(&sym_pc) {
            return p.clone();
        }
        let src = tab.frames_at(pf.func, sym_pc);
        // Go 1.19–1.20's gentraceback looks argument liveness up at the outermost inlined
        // call site (its tracepc after the inline walk); 1.21+ at the frame's own pc. Go 1.20
        // has 1.21's pclntab format but 1.19's rule here.
        let live_pc = match src.iter().find(|sf| !sf.inlined) {
            Some(sf) if self.code.ids.gentraceback => sf.pc,
            _ => sym_pc,
        };
        let args = ArgInfo::at(tab, pf.func, live_pc);
        let entry = tab.entry(pf.func);
        let frames = src
            .iter()
            .map(|sf| SrcFrame {
                site: Arc::new(Site {
                    function: self.name(sf.name),
                    file: self.name(sf.file),
                    line: sf.line,
                    pc: pf.pc,
                    entry,
                    inlined: sf.inlined,
                }),
                func_id: sf.func_id,
                vis: Visibility::of(sf.name),
            })
            .collect();
        let p = Rc::new(PcFrames {
            frames,
            args,
            last_args: Default::default(),
        });
        self.pcs.insert(sym_pc, p.clone());
        p
    }

    /// Logical frames of an unwound stack, innermost first, with `hidden` set as the
    /// runtime's default (GOTRACEBACK=single/all) traceback would hide them.
    pub(crate) fn logical_frames(
        &mut self,
        mem: &impl MemoryReader,
        unwound: &Unwound,
    ) -> Vec<Frame> {
        let code = self.code;
        let mut out = Vec::with_capacity(unwound.frames.len() * 2);
        let mut callee = 0u8;
        let mut shown = 0usize;
        let mut scratch = String::with_capacity(64);
        for pf in unwound.frames {
            let pcf = self.pc_frames(pf);
            for sf in pcf.frames.iter() {
                let show = sf.vis.shown(code, sf.func_id, shown == 0, callee);
                callee = sf.func_id;
                if show {
                    shown += 1;
                }
                // Written into one buffer, then shared with the frames that print the same.
                let args = if sf.site.inlined {
                    self.dots.clone()
                } else {
                    print_args(code, mem, pf, &pcf.args, &mut scratch);
                    let mut last = pcf.last_args.borrow_mut();
                    match Name::again(last.as_ref(), &scratch) {
                        Some(n) => n,
                        None => last.insert(self.args.get(&scratch)).clone(),
                    }
                };
                let site = if sf.site.pc == pf.pc {
                    sf.site.clone()
                } else {
                    Arc::new(Site {
                        pc: pf.pc,
                        ..(*sf.site).clone()
                    })
                };
                let mut f = Frame::new(site, args, pf.sp, pf.fp);
                (f.trap, f.hidden) = (pf.trap, !show);
                out.push(f);
            }
        }
        // Kept in the model of every goroutine: no room left over.
        out.shrink_to_fit();
        out
    }

    /// `printcreatedby`: the `go` statement at `gopc`, for any goroutine but goroutine 1.
    pub fn created_by(&mut self, goid: u64, gopc: u64) -> Option<CreatedBy> {
        if goid == 1 {
            return None;
        }
        if let Some(c) = self.go_stmts.get(&gopc) {
            return c.clone();
        }
        let code = self.code;
        let tab = code.tab;
        let c = tab.func_for_pc(gopc).map(|f| {
            let entry = tab.entry(f);
            let name = tab.name(f);
            let hidden = !Visibility::of(name).shown(code, tab.func_id(f), false, 0);
            let tracepc = if gopc > entry {
                gopc - code.arch.pc_quantum()
            } else {
                gopc
            };
            let (file, line) = match tab.file_line(f, tracepc) {
                Some((file, line)) => (self.name(file), line),
                None => (Name::from("?"), 0),
            };
            CreatedBy {
                function: self.name(name),
                file,
                line,
                pc: gopc,
                entry,
                hidden,
            }
        });
        self.go_stmts.insert(gopc, c.clone());
        c
    }

    /// The start function at `startpc` (empty when unknown) and whether it makes a system
    /// goroutine (`isSystemGoroutine` with `fixed == false`): goroutines started in the
    /// runtime are hidden from default tracebacks, except `runtime.main`, coroutines and
    /// async event handlers. The finalizer and cleanup goroutines count as system goroutines
    /// here; the runtime shows them only while they run user code.
    ///
    /// A `go` statement with arguments starts a compiler-made wrapper (`main.main.gowrap1`,
    /// or a `funcN` closure before Go 1.21); when it calls a named function or method, the
    /// compiler records that function's entry in the wrapper's `FUNCDATA_WrapInfo` (every
    /// supported version, stripped binaries too), and the start is that function, as delve
    /// names it. Wrappers of other calls (a function value, an interface method) stay as
    /// they are.
    pub fn start(&mut self, startpc: u64) -> (StartFunc, bool) {
        if let Some(s) = self.starts.get(&startpc) {
            return s.clone();
        }
        let tab = self.code.tab;
        let ids = self.code.ids;
        let s = match tab.func_for_pc(startpc) {
            None => (StartFunc::default(), false),
            Some(f) => {
                let id = tab.func_id(f);
                let name = tab.name(f);
                let exempt = id != 0
                    && (Some(id) == ids.runtime_main
                        || Some(id) == ids.corostart
                        || Some(id) == ids.handle_async_event);
                let system = !exempt && name.starts_with("runtime.");
                let shown = tab
                    .wrapped_entry(f)
                    .and_then(|w| tab.func_for_pc(w).filter(|&g| tab.entry(g) == w))
                    .unwrap_or(f);
                let entry = tab.entry(shown);
                let (file, line) = match tab.file_line(shown, entry) {
                    Some((file, line)) => (self.name(file), line),
                    None => (Name::from(""), 0),
                };
                let function = self.name(tab.name(shown));
                (
                    StartFunc {
                        function,
                        file,
                        line,
                        entry,
                    },
                    system,
                )
            }
        };
        self.starts.insert(startpc, s.clone());
        s
    }
}

/// A goroutine's start function, at its entry.
#[derive(Debug, Clone, Default)]
pub struct StartFunc {
    /// Its name.
    pub function: Name,
    /// Source file at its entry.
    pub file: Name,
    /// Source line at its entry.
    pub line: u32,
    /// Its entry pc.
    pub entry: u64,
}

/// Where a function's arguments are and which are live at a pc: `FUNCDATA_ArgInfo` (at most
/// [`TRACE_ARGS_MAX_LEN`] bytes), `FUNCDATA_ArgLiveInfo`, and the liveness index
/// `PCDATA_ArgLiveIndex` at the pc (-1 when none).
pub struct ArgInfo<'a> {
    info: Option<&'a [u8]>,
    live: Option<&'a [u8]>,
    live_idx: i32,
}

impl<'a> ArgInfo<'a> {
    /// The argument information of `f`, liveness at `pc`.
    pub fn at(
        tab: &'a crate::binary::pclntab::Pclntab,
        f: crate::binary::pclntab::Func,
        pc: u64,
    ) -> ArgInfo<'a> {
        ArgInfo {
            info: tab
                .funcdata_bytes(f, FUNCDATA_ARG_INFO)
                .map(|p| &p[..p.len().min(TRACE_ARGS_MAX_LEN)]),
            live: tab.funcdata_bytes(f, FUNCDATA_ARG_LIVE_INFO),
            live_idx: tab.pcdata(f, PCDATA_ARG_LIVE_INDEX, pc).unwrap_or(-1),
        }
    }
}

/// Most argument-info bytes read (`abi.TraceArgsMaxLen`: (5*3+2)*10+1).
const TRACE_ARGS_MAX_LEN: usize = 171;

/// `printArgs`: the argument words of a physical frame as the runtime prints them, from
/// `FUNCDATA_ArgInfo` and the spill slots at `argp = fp + MinFrameSize`; `?` marks a slot
/// that is not live at the frame's pc (see [`ArgInfo`]). `...` when the frame's memory cannot
/// be read.
pub(crate) fn print_args(
    code: Code<'_>,
    mem: &impl MemoryReader,
    pf: &PhysFrame,
    info: &ArgInfo<'_>,
    out: &mut String,
) {
    args_into(
        mem,
        pf.fp.wrapping_add(code.arch.min_frame_size()),
        info,
        out,
    )
}

/// [`print_args`] with the spill slots at `argp`, as a new string.
#[cfg(test)]
fn args_at(mem: &impl MemoryReader, argp: u64, info: &ArgInfo<'_>) -> String {
    let mut out = String::new();
    args_into(mem, argp, info, &mut out);
    out
}

/// [`print_args`] with the spill slots at `argp`, written to `out` (emptied first).
fn args_into(mem: &impl MemoryReader, argp: u64, info: &ArgInfo<'_>, out: &mut String) {
    out.clear();
    let Some(p) = info.info else {
        return;
    };
    let (live, live_idx) = (info.live, info.live_idx);
    let start_offset = live.and_then(|l| l.first().copied()).unwrap_or(0xff);
    let is_live = |off: u8, slot: u8| -> bool {
        let Some(l) = live else { return true };
        if live_idx <= 0 || off < start_offset {
            return true;
        }
        match l.get(live_idx as usize + (slot / 8) as usize) {
            Some(bits) => bits & (1 << (slot % 8)) != 0,
            None => true,
        }
    };
    let mut start = true;
    let mut slot = 0u8;
    let mut i = 0usize;
    while let Some(&o) = p.get(i) {
        i += 1;
        let comma = |out: &mut String, start: bool| {
            if !start {
                out.push_str(", ");
            }
        };
        match o {
            0xff => break,
            0xfe => {
                comma(out, start);
                out.push('{');
                start = true;
                continue;
            }
            0xfd => out.push('}'),
            0xfc => {
                comma(out, start);
                out.push_str("...");
            }
            0xfb => {
                comma(out, start);
                out.push('_');
            }
            _ => {
                comma(out, start);
                let Some(&sz) = p.get(i) else { break };
                i += 1;
                let Ok(mut x) = mem.read_u64(argp.wrapping_add(o as u64)) else {
                    out.clear();
                    out.push_str("...");
                    return;
                };
                if sz < 8 {
                    // Real sizes are 1, 2 and 4 here; a corrupt 0 keeps nothing.
                    let shift = 64 - u32::from(sz) * 8;
                    x = x.checked_shl(shift).map_or(0, |v| v >> shift);
                }
                push_hex(out, x);
                if !is_live(o, slot) {
                    out.push('?');
                }
                if o >= start_offset {
                    slot = slot.wrapping_add(1);
                }
            }
        }
        start = false;
    }
}

/// Appends `0x` and `v` in lower-case hexadecimal (`{:#x}` without the formatting machinery:
/// a dump prints millions of argument words).
fn push_hex(out: &mut String, v: u64) {
    out.push_str("0x");
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(char::from(
            b"0123456789abcdef"[((v >> (i * 4)) & 15) as usize],
        ));
    }
}

/// What `showfuncinfo` (traceback level 1) decides from a function's name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visibility {
    /// Shown unless an elided wrapper: a package-qualified name outside the runtime, an
    /// exported runtime function, or (Go 1.25+) the finalizer and cleanup runners.
    by_name: bool,
    /// `runtime.gopanic`: shown except as the innermost frame.
    gopanic: bool,
}

impl Visibility {
    /// The name-based part of `showfuncinfo` for `name`.
    pub fn of(name: &str) -> Visibility {
        let runners = name == "runtime.runFinalizers" || name == "runtime.runCleanups";
        let qualified =
            name.contains('.') && (!name.starts_with("runtime.") || is_exported_runtime(name));
        Visibility {
            by_name: runners || qualified,
            gopanic: name == "runtime.gopanic",
        }
    }

    /// `showfuncinfo` at traceback level 1 for a frame of this function with `func_id`,
    /// innermost shown frame or not, whose callee has funcID `callee`.
    pub fn shown(self, code: Code<'_>, func_id: u8, first_frame: bool, callee: u8) -> bool {
        let ids = code.ids;
        if func_id != 0 && Some(func_id) == ids.wrapper {
            let elide = !(callee != 0
                && (Some(callee) == ids.gopanic
                    || Some(callee) == ids.sigpanic
                    || Some(callee) == ids.panicwrap));
            if elide {
                return false;
            }
        }
        self.by_name || (self.gopanic && !first_frame)
    }
}

/// `isExportedRuntime`: `runtime.X` or `runtime.(*T).X` / `runtime.T.X` with exported names.
pub(crate) fn is_exported_runtime(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("runtime.") else {
        return false;
    };
    let (mut rcvr, fname) = match rest.rfind('.') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    if rcvr.len() >= 3 && rcvr.starts_with("(*") && rcvr.ends_with(')') {
        rcvr = &rcvr[2..rcvr.len() - 1];
    }
    let upper = |s: &str| s.as_bytes().first().is_some_and(|c| c.is_ascii_uppercase());
    upper(fname) && (rcvr.is_empty() || upper(rcvr))
}

/// The name a traceback prints: generic shapes as `[...]` (`funcNameForPrint`), and
/// `runtime.gopanic` as `panic` (`printFuncName`).
pub fn print_name(name: &str) -> Cow<'_, str> {
    if name == "runtime.gopanic" {
        return Cow::Borrowed("panic");
    }
    let Some(i) = name.find('[') else {
        return Cow::Borrowed(name);
    };
    let Some(j) = name.rfind(']') else {
        return Cow::Borrowed(name);
    };
    if j <= i {
        return Cow::Borrowed(name);
    }
    let interior = &name[i + 1..j];
    if !interior.contains('[') {
        return Cow::Owned(format!("{}[...]{}", &name[..i], &name[j + 1..]));
    }
    // A generic method of a generic type: "...]___[..." inside the outer brackets.
    let mut depth = 1i32;
    let (mut rbr, mut lbr) = (None, None);
    for (k, c) in interior.char_indices() {
        if c == '[' {
            depth += 1;
            if depth != 1 {
                continue;
            }
            lbr = Some(k);
            break;
        }
        if c == ']' {
            depth -= 1;
            if depth < 0 {
                break;
            }
            if depth != 0 {
                continue;
            }
            rbr = Some(k);
        }
    }
    if depth == 1 {
        match (rbr, lbr) {
            (Some(r), Some(l)) if l > r => {
                return Cow::Owned(format!(
                    "{}[...]{}[...]{}",
                    &name[..i],
                    &interior[r + 1..l],
                    &name[j + 1..]
                ));
            }
            (None, None) => return Cow::Owned(format!("{}[...]{}", &name[..i], &name[j + 1..])),
            _ => {}
        }
    }
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_words_print_as_format_does() {
        for v in [0u64, 1, 0xf, 0x10, 0xc000012345, u64::MAX] {
            let mut s = String::new();
            push_hex(&mut s, v);
            assert_eq!(s, format!("{v:#x}"));
        }
    }

    /// Found by fuzzing: a corrupt argument size of 0 shifted a word by 64 bits.
    #[test]
    fn an_argument_size_of_0_keeps_nothing() {
        let mut mem = crate::target::image::MemoryImage::new();
        mem.insert(0x1000, 0x1122_3344_5566_7788u64.to_le_bytes().to_vec());
        let args = |info: &[u8]| {
            args_at(
                &mem,
                0x1000,
                &ArgInfo {
                    info: Some(info),
                    live: None,
                    live_idx: -1,
                },
            )
        };
        assert_eq!(args(&[0, 4, 0xff]), "0x55667788");
        assert_eq!(args(&[0, 0, 0xff]), "0x0");
    }

    #[test]
    fn exported_runtime_names() {
        assert!(is_exported_runtime("runtime.Gosched"));
        assert!(is_exported_runtime("runtime.(*Frames).Next"));
        assert!(!is_exported_runtime("runtime.gopark"));
        assert!(!is_exported_runtime("runtime.(*mheap).alloc"));
        assert!(!is_exported_runtime("main.main"));
    }

    #[test]
    fn generic_names_print_with_dots() {
        assert_eq!(print_name("main.Map[go.shape.int]"), "main.Map[...]");
        assert_eq!(
            print_name("main.(*List[go.shape.int]).Push"),
            "main.(*List[...]).Push"
        );
        assert_eq!(
            print_name("main.G[go.shape.int].M[go.shape.string]"),
            "main.G[...].M[...]"
        );
        assert_eq!(print_name("runtime.gopanic"), "panic");
        assert_eq!(print_name("main.f"), "main.f");
    }
}
