//! Values of a frame's arguments and locals, from the binary's DWARF: which variables a
//! frame's function holds at its pc ([`dwarf`]), where each is ([`loc`], evaluated against the
//! frame's CFA, the unwinder's `fp`), and their text as delve prints it ([`show`]); `print`'s
//! expressions ([`expr`]).
//!
//! Stack bytes come from the snapshot's copy; memory outside it (what a value points to) is
//! read through [`Memory`], which says whether it had to read the process after the snapshot.

pub mod dwarf;
pub mod expr;
pub mod gotime;
pub mod loc;
pub mod maps;
pub mod show;
pub mod sync;
pub mod types;

use crate::arch::Arch;
use crate::binary::GoBinary;
use crate::snapshot::Frame;
use crate::target::{MemoryReader, ReadError, ThreadState};
use dwarf::{Dwarf, Scope, Var, Where};
use expr::Expr;
use loc::{FrameCtx, Located};
pub use show::Config;
use show::{Place, Reader, Val};
use std::cell::Cell;
use std::rc::Rc;
use types::Kind;

/// What values are read with: the binary's DWARF and where the executable is loaded.
pub struct Program {
    pub dw: Dwarf,
    pub arch: Arch,
    /// Load bias: target address minus executable address.
    pub bias: u64,
    /// `runtime.types` in the executable's numbering: Go's DWARF gives each type's runtime
    /// descriptor as an offset from it.
    pub types: Option<u64>,
    /// The executable file, for its data symbols ([`Program::globals`]).
    exe: std::sync::Arc<memmap2::Mmap>,
    /// Its data symbols, read on first use.
    globals: std::sync::OnceLock<Vec<(u64, u64, String)>>,
}

impl Program {
    /// Reads the binary's DWARF; an error (one line) when it has none.
    pub fn load(bin: &GoBinary, bias: u64) -> Result<Program, String> {
        Ok(Program {
            dw: Dwarf::load(bin)?,
            arch: bin.arch,
            bias,
            types: bin.symbols.get("runtime.types").map(|s| s.addr),
            exe: bin.file(),
            globals: std::sync::OnceLock::new(),
        })
    }
}

impl Program {
    /// The data symbols with a size, `(address, size, name)` in the executable's numbering,
    /// by address: what names a global. Read from the file on first use (only naming a lock
    /// needs them).
    fn globals(&self) -> &[(u64, u64, String)] {
        self.globals
            .get_or_init(|| crate::binary::data_symbols(&self.exe[..]))
    }
}

/// The program of a target's runtime, read on first use into `cell` (a session keeps it).
pub fn program_in<'a>(
    cell: &'a std::cell::OnceCell<Result<Program, String>>,
    rt: &crate::runtime::Runtime,
) -> Result<&'a Program, String> {
    cell.get_or_init(|| Program::load(&rt.bin, rt.bias))
        .as_ref()
        .map_err(|e| e.clone())
}

/// The name of the function holding `pc`, from the runtime's function table (func values).
pub fn func_name(rt: &crate::runtime::Runtime, pc: u64) -> Option<String> {
    let t = &rt.bin.pclntab;
    t.func_for_pc(pc).map(|f| t.name(f).to_string())
}

/// Memory as values read it: the snapshot's copy first, then (for what it does not hold)
/// the process as it is now, remembering that it did.
pub struct Memory<'a> {
    /// The snapshot's memory (stacks, g structs).
    pub snapshot: &'a dyn MemoryReader,
    /// The process or core, for memory the snapshot did not copy.
    pub rest: Option<&'a dyn MemoryReader>,
    /// Whether `rest` is the process running on after the snapshot (reads from it are marked).
    pub rest_is_later: bool,
    /// A read went to `rest` while it was later than the snapshot.
    pub read_later: Cell<bool>,
}

impl MemoryReader for Memory<'_> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        match self.snapshot.read_at(addr, buf) {
            Ok(()) => Ok(()),
            Err(e) => match self.rest {
                Some(r) => {
                    r.read_at(addr, buf)?;
                    if self.rest_is_later {
                        self.read_later.set(true);
                    }
                    Ok(())
                }
                None => Err(e),
            },
        }
    }
}

/// The line said once under output that read memory after the snapshot.
pub const READ_LATER_NOTE: &str =
    "(values outside the snapshot's stacks were read from the process after the snapshot)";

pub use crate::snapshot::FrameValue;

/// A frame's scope and what evaluating its locations needs.
struct FrameScope<'a> {
    scope: Scope,
    ctx: FrameCtx<'a>,
}

/// The thread whose registers `frames[i]` can use: the thread's, when the frame is (an
/// inlined call in) the innermost physical frame, unwound from those very registers (a trap
/// pc equal to the thread's). Any other frame's registers were overwritten by the calls it
/// made.
fn frame_regs<'a>(
    arch: Arch,
    frames: &[Frame],
    i: usize,
    thread: Option<&'a ThreadState>,
) -> Option<&'a ThreadState> {
    let t = thread?;
    let first = frames.first()?;
    let bytes: Vec<u8> = t.words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let pc = crate::arch::Regs::decode(arch, &bytes)?.pc;
    let innermost = frames[..i].iter().all(|f| f.inlined);
    (first.trap && pc == first.pc && innermost).then_some(t)
}

/// The DWARF scope of `frames[i]` (an inlined call's own scope for an inlined frame).
fn frame_scope<'a>(c: &Ctx<'a>, frames: &[Frame], i: usize) -> Result<FrameScope<'a>, String> {
    let p = c.prog;
    let regs = frame_regs(p.arch, frames, i, c.thread);
    let f = frames.get(i).ok_or_else(|| format!("no frame {i}"))?;
    // A return address is looked up at the call instruction, as the traceback symbolizes it.
    let pc = if f.trap || f.pc <= f.entry {
        f.pc
    } else {
        f.pc - 1
    };
    let depth = frames[i..].iter().take_while(|f| f.inlined).count();
    let scope =
        p.dw.scope(pc.wrapping_sub(p.bias), depth)?
            .ok_or_else(|| format!("no DWARF for {} at {:#x}", f.function, f.pc))?;
    Ok(FrameScope {
        scope,
        ctx: FrameCtx {
            cfa: f.fp(),
            regs: regs.map(|t| &t.words[..]),
            fp: regs.map(|t| &t.fp[..]).filter(|b| !b.is_empty()),
            arch: p.arch,
            bias: p.bias,
        },
    })
}

/// Where a variable's value is: `Err` is the text to print instead (`(optimized out)`).
fn var_val(r: &Reader<'_>, fs: &FrameScope<'_>, v: &Var) -> Result<Val, String> {
    let Where::Expr(x) = &v.at else {
        return Err("(optimized out)".into());
    };
    let ty = r.dw.ty(v.ty).map_err(|e| format!("(unreadable: {e})"))?;
    let size = if v.escaped { 8 } else { ty.size };
    let place = match loc::eval(x, fs.scope.encoding, size, &fs.ctx, r.mem) {
        Located::Mem(a) => Place::Mem(a),
        Located::Bytes(b) => Place::Bytes(Rc::new(b), 0),
        Located::Unreadable(s) => return Err(format!("(unreadable: {s})")),
        Located::OptimizedOut => return Err("(optimized out)".into()),
    };
    let val = Val { ty: v.ty, place };
    if !v.escaped {
        return Ok(val);
    }
    // `&x`: the variable lives where this pointer points.
    match ty.kind {
        Kind::Ptr(to) => {
            let p = r
                .uint(&val, 0, 8)
                .map_err(|e| format!("(unreadable: {e})"))?;
            if p == 0 {
                return Err("(optimized out)".into());
            }
            Ok(Val {
                ty: to,
                place: Place::Mem(p),
            })
        }
        _ => Err("(unreadable: an escaped variable whose type is not a pointer)".into()),
    }
}

/// Everything one value needs besides the frame.
pub struct Ctx<'a> {
    pub prog: &'a Program,
    pub mem: &'a Memory<'a>,
    pub cfg: Config,
    /// A function's name from its entry pc (func values).
    pub func_name: &'a dyn Fn(u64) -> Option<String>,
    /// The thread running the goroutine whose frames are read, its registers as the kernel
    /// lays them out: they belong to its innermost physical frame only.
    pub thread: Option<&'a ThreadState>,
}

impl Ctx<'_> {
    fn reader(&self) -> Reader<'_> {
        Reader::new(
            &self.prog.dw,
            self.mem,
            self.cfg,
            self.prog.bias,
            self.prog.types,
            self.func_name,
        )
    }
}

/// The arguments and locals of `frames[i]`, in DWARF's order (parameters first).
pub fn frame_values(c: &Ctx<'_>, frames: &[Frame], i: usize) -> Result<Vec<FrameValue>, String> {
    let fs = frame_scope(c, frames, i)?;
    let r = c.reader();
    Ok(fs
        .scope
        .vars
        .iter()
        .map(|v| {
            // Whether this value read the process after the snapshot; the flag of the whole
            // read keeps what came before.
            let before = c.mem.read_later.replace(false);
            let text = match var_val(&r, &fs, v) {
                Ok(val) => r.show(&val),
                Err(t) => t,
            };
            let later = c.mem.read_later.get();
            c.mem.read_later.set(before || later);
            FrameValue {
                name: v.name.clone(),
                param: v.param,
                text,
                later,
            }
        })
        .collect())
}

/// Fills the `values` of the first `shown` frames; a frame whose values cannot be read gets
/// one value with no name saying why.
pub fn fill_frames(c: &Ctx<'_>, frames: &mut [Frame], shown: usize) {
    let copy = frames.to_vec();
    for (i, f) in frames.iter_mut().enumerate().take(shown) {
        f.set_values(frame_values(c, &copy, i).unwrap_or_else(|e| {
            vec![FrameValue {
                text: format!("(values: {e})"),
                ..FrameValue::default()
            }]
        }));
    }
}

/// Frames of a goroutine searched for what names a lock ([`lock_name`]).
const LOCK_NAME_FRAMES: usize = 12;

/// Structs nested in one another that [`lock_name`] follows to the lock's field.
const LOCK_NAME_DEPTH: usize = 8;

/// What holds the lock of type `kind` (`sync.Mutex`, `sync.RWMutex`) at `addr`, named by the
/// variables of the first frames of a goroutine: a pointer to a struct with the lock as a
/// field (nested ones followed), `field mu of main.Room at 0xc000123450`. `None` when no
/// variable tells.
fn lock_name(c: &Ctx<'_>, frames: &[Frame], addr: u64, kind: &str) -> Option<String> {
    let r = c.reader();
    for i in 0..frames.len().min(LOCK_NAME_FRAMES) {
        let Ok(fs) = frame_scope(c, frames, i) else {
            continue;
        };
        for v in &fs.scope.vars {
            let Ok(val) = var_val(&r, &fs, v) else {
                continue;
            };
            let Ok(ty) = r.dw.ty(v.ty) else { continue };
            let Kind::Ptr(to) = ty.kind else { continue };
            let (Ok(p), Ok(st)) = (r.uint(&val, 0, 8), r.dw.ty(to)) else {
                continue;
            };
            if p == 0 || addr < p || addr - p >= st.size {
                continue;
            }
            if let Some(path) = field_path(r.dw, to, addr - p, kind, 0) {
                return Some(format!("field {path} of {} at {p:#x}", st.name));
            }
        }
    }
    None
}

/// The field path (`mu`, `inner.mu`) to a field of type `kind` at offset `off` of the struct
/// type `ty`.
fn field_path(dw: &Dwarf, ty: u64, off: u64, kind: &str, depth: usize) -> Option<String> {
    if depth >= LOCK_NAME_DEPTH {
        return None;
    }
    let Kind::Struct(fields) = &dw.ty(ty).ok()?.kind else {
        return None;
    };
    for f in fields {
        let fty = dw.ty(f.ty).ok()?;
        if off < f.offset || off - f.offset >= fty.size.max(1) {
            continue;
        }
        if off == f.offset && fty.name == kind {
            return Some(f.name.clone());
        }
        if let Some(rest) = field_path(dw, f.ty, off - f.offset, kind, depth + 1) {
            return Some(format!("{}.{rest}", f.name));
        }
    }
    None
}

/// The global holding `addr` (target numbering), by the binary's symbols: `main.registry`,
/// or `main.registry+0x8` inside it.
fn global_name(prog: &Program, addr: u64) -> Option<String> {
    let a = addr.wrapping_sub(prog.bias);
    let globals = prog.globals();
    let i = globals.partition_point(|s| s.0 <= a);
    // Symbols inside a bigger one come after its start: a few are looked at.
    let (start, _, name) = globals[..i].iter().rev().take(16).find(|s| a - s.0 < s.1)?;
    Some(match a - start {
        0 => name.clone(),
        off => format!("{name}+{off:#x}"),
    })
}

/// Names locks: for each `(address, kind, goroutine ids)`, [`lock_name`] in the frames of
/// those goroutines of `gs`, in order, else the global holding it ([`global_name`]). `thread`
/// gives a goroutine's thread registers (its innermost frame's). Locks without a name are
/// left out.
pub fn name_locks(
    prog: &Program,
    mem: &Memory<'_>,
    func_name: &dyn Fn(u64) -> Option<String>,
    gs: &[crate::snapshot::Goroutine],
    thread: &dyn Fn(&crate::snapshot::Goroutine) -> Option<ThreadState>,
    locks: &[(u64, String, Vec<u64>)],
) -> std::collections::HashMap<u64, String> {
    let mut out = std::collections::HashMap::new();
    for (addr, kind, ids) in locks {
        let by_frames = ids.iter().find_map(|id| {
            let g = gs.iter().find(|g| g.id == *id)?;
            let t = thread(g);
            let c = Ctx {
                prog,
                mem,
                cfg: Config::default(),
                func_name,
                thread: t.as_ref(),
            };
            lock_name(&c, &g.frames, *addr, kind)
        });
        if let Some(n) = by_frames.or_else(|| global_name(prog, *addr)) {
            out.insert(*addr, n);
        }
    }
    out
}

/// `print EXPR` in `frames[i]`.
pub fn print(c: &Ctx<'_>, frames: &[Frame], i: usize, text: &str) -> Result<String, String> {
    let e = expr::parse(text)?;
    let fs = frame_scope(c, frames, i)?;
    let r = c.reader();
    // A variable that is not there prints as `args` prints it; only going through one fails.
    if let Expr::Var(n) = &e
        && let Some(v) = fs.scope.vars.iter().rev().find(|v| &v.name == n)
    {
        return Ok(match var_val(&r, &fs, v) {
            Ok(val) => r.show(&val),
            Err(t) => t,
        });
    }
    match eval(&r, &fs, &e)? {
        Ev::Val(v) => Ok(r.show(&v)),
        Ev::Int(n) => Ok(n.to_string()),
    }
}

/// What an expression evaluates to.
enum Ev {
    Val(Val),
    Int(u64),
}

fn eval(r: &Reader<'_>, fs: &FrameScope<'_>, e: &Expr) -> Result<Ev, String> {
    let val = |e: &Expr| match eval(r, fs, e)? {
        Ev::Val(v) => Ok(v),
        Ev::Int(_) => Err("an integer has no fields, elements or pointee".to_string()),
    };
    Ok(match e {
        Expr::Var(n) => {
            let v = fs
                .scope
                .vars
                .iter()
                .rev()
                .find(|v| &v.name == n)
                .ok_or_else(|| format!("could not find symbol value for {n}"))?;
            Ev::Val(var_val(r, fs, v).map_err(|t| format!("{n} is {t}"))?)
        }
        Expr::Field(inner, name) => Ev::Val(field(r, val(inner)?, name)?),
        Expr::Index(inner, k) => Ev::Val(index(r, val(inner)?, k)?),
        Expr::Deref(inner) => Ev::Val(deref(r, &val(inner)?)?),
        Expr::Len(inner) | Expr::Cap(inner) => {
            Ev::Int(len_cap(r, &val(inner)?, matches!(e, Expr::Cap(_)))?)
        }
        Expr::Cast(ty, addr) => {
            let names = r.dw.type_names()?;
            let t = names
                .by_name(ty)
                .ok_or_else(|| format!("no type {ty} in the binary's DWARF"))?;
            match names.by_name(&format!("*{ty}")) {
                Some(p) => Ev::Val(Val {
                    ty: p,
                    place: Place::Bytes(Rc::new(addr.to_le_bytes().to_vec()), 0),
                }),
                None => Ev::Val(Val {
                    ty: t,
                    place: Place::Mem(*addr),
                }),
            }
        }
    })
}

fn deref(r: &Reader<'_>, v: &Val) -> Result<Val, String> {
    let t = r.ty(v)?;
    let Kind::Ptr(to) = t.kind else {
        return Err(format!("{} is not a pointer", t.name));
    };
    let p = r.uint(v, 0, 8)?;
    if p == 0 {
        return Err("nil pointer dereference".into());
    }
    Ok(Val {
        ty: to,
        place: Place::Mem(p),
    })
}

fn field(r: &Reader<'_>, v: Val, name: &str) -> Result<Val, String> {
    let mut v = v;
    if matches!(r.ty(&v)?.kind, Kind::Iface { .. }) {
        v = r
            .dynamic(&v)?
            .ok_or_else(|| "nil interface has no fields".to_string())?;
    }
    if matches!(r.ty(&v)?.kind, Kind::Ptr(_)) {
        v = deref(r, &v)?;
    }
    let t = r.ty(&v)?;
    let Kind::Struct(fields) = &t.kind else {
        return Err(format!("{} has no fields", t.name));
    };
    if let Some(f) = fields.iter().find(|f| f.name == name) {
        return Ok(r.at(&v, f.offset, f.ty));
    }
    // A field promoted from an embedded struct, one level down.
    for f in fields.iter().filter(|f| f.embedded) {
        if let Ok(x) = field(r, r.at(&v, f.offset, f.ty), name) {
            return Ok(x);
        }
    }
    Err(format!("{} has no field {name}", t.name))
}

fn index(r: &Reader<'_>, v: Val, k: &expr::Key) -> Result<Val, String> {
    let t = r.ty(&v)?;
    if let Kind::Map { .. } = t.kind {
        return maps::lookup(r, &v, k);
    }
    let expr::Key::Int(i) = *k else {
        return Err(format!("{} cannot be indexed by a string", t.name));
    };
    let (first, elem, len) = match t.kind {
        Kind::Array { elem, len } => (v.clone(), elem, len),
        Kind::Slice(elem) => (
            Val {
                ty: elem,
                place: Place::Mem(r.uint(&v, 0, 8)?),
            },
            elem,
            r.uint(&v, 8, 8)?,
        ),
        Kind::Ptr(_) => return index(r, deref(r, &v)?, k),
        _ => return Err(format!("{} cannot be indexed", t.name)),
    };
    if i < 0 || i as u64 >= len {
        return Err(format!("index {i} out of bounds [0:{len}]"));
    }
    let size = r.dw.ty(elem)?.size;
    Ok(r.at(&first, (i as u64).saturating_mul(size), elem))
}

fn len_cap(r: &Reader<'_>, v: &Val, cap: bool) -> Result<u64, String> {
    let t = r.ty(v)?;
    match (&t.kind, cap) {
        (Kind::String, false) => r.uint(v, 8, 8),
        (Kind::Slice(_), false) => r.uint(v, 8, 8),
        (Kind::Slice(_), true) => r.uint(v, 16, 8),
        (Kind::Array { len, .. }, _) => Ok(*len),
        (Kind::Map { .. }, false) => Ok(maps::map_len(r, v)?.unwrap_or(0)),
        (Kind::Chan { hchan, .. }, _) => {
            let p = r.uint(v, 0, 8)?;
            if p == 0 {
                return Ok(0);
            }
            let c = r.chan_state(p, *hchan)?;
            Ok(if cap { c.cap } else { c.len })
        }
        _ => Err(format!(
            "invalid argument {} (type {}) for {}",
            t.name,
            t.name,
            if cap { "cap" } else { "len" }
        )),
    }
}
