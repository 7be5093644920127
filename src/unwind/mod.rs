//! The goroutine stack unwinder: a pure function of (start registers, memory, function table).
//!
//! It follows `unwinder` in Go's `src/runtime/traceback.go` (`initAt`, `resolveInternal`,
//! `next`) rule for rule: frame size from pcsp, the return address at the frame top on amd64
//! or from LR/the frame bottom on arm64, injected calls (sigpanic, asyncPreempt, debugCallV2)
//! whose caller pc is not a return address, TopFrame functions ending the stack, SPWrite
//! functions ending it, and the jump from the system stack back to the goroutine stack at
//! `systemstack`/`morestack`. A corrupt stack ends as [`StackEnd::Truncated`] with every frame
//! found before it kept.

pub mod symbolize;

use crate::arch::Arch;
use crate::binary::pclntab::{Func, Pclntab, func_flag};
use crate::target::{MemoryReader, ReadExt};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by code addresses.
pub(crate) type PcMap<V> = HashMap<u64, V, BuildHasherDefault<AddrHasher>>;

/// A hasher for addresses: one multiply, as they are already well spread.
#[derive(Default)]
pub struct AddrHasher(u64);

impl AddrHasher {
    /// Starting from `seed` instead of 0.
    pub(crate) fn seeded(seed: u64) -> AddrHasher {
        AddrHasher(seed)
    }
}

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A hash for texts that come from the target or a file (names, the grouped view's keys built
/// of a stack's frames): eight bytes at a time (the standard hash took most of the time of
/// grouping 100,000 goroutines, and a tenth of reading their snapshot), from a seed drawn once
/// a run, so that no keys chosen beforehand all fall together.
#[derive(Debug, Clone)]
pub(crate) struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        Seeded(*SEED.get_or_init(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0u8)
        }))
    }
}

impl std::hash::BuildHasher for Seeded {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(AddrHasher::seeded(self.0))
    }
}

/// See [`Seeded`]: the address hasher's mix, fed eight bytes at a time (a number: one word).
pub(crate) struct WordHasher(AddrHasher);

impl std::hash::Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.0
                .write_u64(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        self.0.write_u64(u64::from_le_bytes(last));
        self.0.write_u64(bytes.len() as u64);
    }

    fn write_u64(&mut self, v: u64) {
        self.0.write_u64(v);
    }

    fn write_u8(&mut self, v: u8) {
        self.0.write_u64(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.0.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.0.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        // The low bits pick the bucket: every bit of the state reaches them.
        let mut h = self.0.finish();
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// What unwinding learned about each pc it met: the function holding it and the frame size
/// there (its pcsp value). Kept between the unwinds of one walk: goroutines parked at the
/// same places share their pcs. A cache only; [`unwind`] is a function of its inputs. It also
/// holds the frames of the last unwind, in a buffer each unwind reuses: growing a new one for
/// every stack was a tenth of a 100,000-goroutine walk's time.
#[derive(Default)]
pub struct UnwindCache {
    pcs: PcMap<(Option<Func>, Option<i32>)>,
    frames: Vec<PhysFrame>,
}

impl UnwindCache {
    /// The function holding `pc`.
    fn func(&mut self, tab: &Pclntab, pc: u64) -> Option<Func> {
        self.at(tab, pc).0
    }

    /// The frame size (pcsp value) at `pc`, in the function holding it.
    fn sp_delta(&mut self, tab: &Pclntab, pc: u64) -> Option<i32> {
        self.at(tab, pc).1
    }

    fn at(&mut self, tab: &Pclntab, pc: u64) -> (Option<Func>, Option<i32>) {
        *self.pcs.entry(pc).or_insert_with(|| {
            let f = tab.func_for_pc(pc);
            (f, f.and_then(|f| tab.pcsp(f, pc)))
        })
    }
}

/// FuncID values of the special runtime functions, as numbered by the binary's Go version.
/// Read from the binary itself (each function's own `_func.funcID`), so no version table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct FuncIds {
    pub asm_cgocall: Option<u8>,
    pub async_preempt: Option<u8>,
    pub cgocallback: Option<u8>,
    pub debug_call_v2: Option<u8>,
    pub gopanic: Option<u8>,
    pub morestack: Option<u8>,
    pub panicwrap: Option<u8>,
    pub runtime_main: Option<u8>,
    pub corostart: Option<u8>,
    pub handle_async_event: Option<u8>,
    pub run_finalizers: Option<u8>,
    pub run_cleanups: Option<u8>,
    pub sigpanic: Option<u8>,
    pub systemstack: Option<u8>,
    pub systemstack_switch: Option<u8>,
    /// `FuncIDWrapper`: the enum value right after systemstack_switch in every version.
    pub wrapper: Option<u8>,
    /// Go 1.19–1.20: the runtime's traceback is `gentraceback`, whose rules differ from the
    /// unwinder of 1.21+ in two places. Only a `sigpanic` callee makes its caller's pc a trap
    /// pc (symbolized without backing up); asyncPreempt and debugCallV2 callers back up like
    /// any return address (from 1.21 all injected calls do, `unwindTrap`). And argument
    /// liveness is looked up at the outermost inlined call site of a frame's pc (its
    /// `tracepc` after the inline walk), not at the pc itself. Set by the caller.
    pub gentraceback: bool,
}

impl FuncIds {
    /// Looks the special functions up by name and records their funcIDs.
    pub fn from_pclntab(tab: &Pclntab) -> FuncIds {
        const NAMES: [&str; 16] = [
            "runtime.asmcgocall",
            "runtime.asyncPreempt",
            "runtime.cgocallback",
            "runtime.debugCallV2",
            "runtime.gopanic",
            "runtime.morestack",
            "runtime.panicwrap",
            "runtime.main",
            "runtime.corostart",
            "runtime.handleAsyncEvent",
            "runtime.runFinalizers",
            "runtime.runfinq",
            "runtime.runCleanups",
            "runtime.sigpanic",
            "runtime.systemstack",
            "runtime.systemstack_switch",
        ];
        // One pass over the function table for all of them.
        let found = tab.funcs_by_names(&NAMES);
        let id = |name: &str| {
            let i = NAMES.iter().position(|n| *n == name)?;
            found[i].map(|f| tab.func_id(f)).filter(|&i| i != 0)
        };
        let systemstack_switch = id("runtime.systemstack_switch");
        FuncIds {
            asm_cgocall: id("runtime.asmcgocall"),
            async_preempt: id("runtime.asyncPreempt"),
            cgocallback: id("runtime.cgocallback"),
            debug_call_v2: id("runtime.debugCallV2"),
            gopanic: id("runtime.gopanic"),
            morestack: id("runtime.morestack"),
            panicwrap: id("runtime.panicwrap"),
            runtime_main: id("runtime.main"),
            corostart: id("runtime.corostart"),
            handle_async_event: id("runtime.handleAsyncEvent"),
            run_finalizers: id("runtime.runFinalizers").or_else(|| id("runtime.runfinq")),
            run_cleanups: id("runtime.runCleanups"),
            sigpanic: id("runtime.sigpanic"),
            systemstack: id("runtime.systemstack"),
            systemstack_switch,
            wrapper: systemstack_switch.map(|v| v + 1),
            gentraceback: false,
        }
    }

    /// `isInjectedCall`: functions the runtime calls by faking a call from a trapping pc.
    pub(crate) fn is_injected(&self, id: u8) -> bool {
        id != 0
            && (Some(id) == self.sigpanic
                || Some(id) == self.async_preempt
                || Some(id) == self.debug_call_v2)
    }
}

/// Everything the unwinder needs about code: the function table and the special funcIDs.
#[derive(Clone, Copy)]
pub struct Code<'a> {
    /// Architecture.
    pub arch: Arch,
    /// Function table.
    pub tab: &'a Pclntab,
    /// Special funcIDs.
    pub ids: &'a FuncIds,
}

/// Where to start unwinding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Start {
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Link register (arm64; 0 when unknown).
    pub lr: u64,
    /// The pc/sp came from `g.syscallpc/syscallsp` (SPWrite is then ignored for the first frame).
    pub syscall: bool,
    /// The pc is an interrupted instruction (thread registers), not a return address.
    pub trap: bool,
}

/// Where the goroutine's own stack continues when the unwind starts on its thread's system
/// stack (g0): the goroutine's saved `sched` registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JumpTo {
    /// `curg.sched.pc`.
    pub pc: u64,
    /// `curg.sched.sp`.
    pub sp: u64,
    /// `curg.sched.lr`.
    pub lr: u64,
}

/// Most physical frames one unwind returns by default: Go's maximum stack is 1 GB, and a
/// deeper unwind than this is not worth printing.
pub(crate) const MAX_FRAMES: usize = 100_000;

/// Hard limits for one unwind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum physical frames.
    pub max_frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frames: MAX_FRAMES,
        }
    }
}

/// One physical frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysFrame {
    /// The function.
    pub func: Func,
    /// Program counter in the frame (a return address unless `trap`).
    pub pc: u64,
    /// Stack pointer of the frame.
    pub sp: u64,
    /// Frame pointer (caller's sp) of the frame.
    pub fp: u64,
    /// `pc` is the instruction itself (trap or entry): symbolize at `pc`, not `pc-1`.
    pub trap: bool,
    /// funcID of the physical callee (the previous frame).
    pub callee_id: u8,
}

impl PhysFrame {
    /// `symPC`: the pc to symbolize (the CALL instruction for return addresses).
    pub(crate) fn sym_pc(&self, tab: &Pclntab) -> u64 {
        if !self.trap && self.pc > tab.entry(self.func) {
            self.pc - 1
        } else {
            self.pc
        }
    }
}

/// Why an unwind stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnwindError {
    /// The start pc is not in any Go function.
    UnknownPc(u64),
    /// A return address is not in any Go function.
    UnknownReturnPc(u64),
    /// Stack memory could not be read.
    Unreadable(u64),
    /// The next frame is the same as the current one.
    Stuck(u64),
    /// The stack pointer moved backwards.
    SpBackwards(u64),
    /// More frames than the limit.
    TooManyFrames,
}

impl fmt::Display for UnwindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnwindError::UnknownPc(pc) => write!(f, "unknown pc {pc:#x}"),
            UnwindError::UnknownReturnPc(pc) => write!(f, "unexpected return pc {pc:#x}"),
            UnwindError::Unreadable(a) => write!(f, "stack unreadable at {a:#x}"),
            UnwindError::Stuck(sp) => write!(f, "traceback stuck at sp {sp:#x}"),
            UnwindError::SpBackwards(sp) => write!(f, "stack pointer moved backwards to {sp:#x}"),
            UnwindError::TooManyFrames => write!(f, "too many frames"),
        }
    }
}

/// How an unwind ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackEnd {
    /// The bottom of the stack (a TopFrame function, or no return address).
    Complete {
        /// Stack pointer after the last frame (equals `g.stktopsp` for a full goroutine stack).
        sp: u64,
    },
    /// An SPWrite function: the runtime stops here too.
    SpWrite,
    /// Stopped early; the frames before are kept.
    Truncated(UnwindError),
}

/// The result of an unwind: frames innermost first (held by the [`UnwindCache`] until its
/// next unwind), and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwound<'c> {
    /// Physical frames, innermost first.
    pub frames: &'c [PhysFrame],
    /// How it ended.
    pub end: StackEnd,
}

/// Unwinds one stack. Never panics; corrupt input ends in [`StackEnd::Truncated`]. `cache`
/// remembers what was decoded about each pc, for the next unwind.
pub fn unwind<'c>(
    code: Code<'_>,
    mem: &impl MemoryReader,
    start: Start,
    jump: Option<JumpTo>,
    lim: Limits,
    cache: &'c mut UnwindCache,
) -> Unwound<'c> {
    let mut frames = std::mem::take(&mut cache.frames);
    frames.clear();
    let end = match Cursor::start(code, mem, start, jump, cache) {
        Ok(mut cur) => loop {
            if frames.len() >= lim.max_frames {
                break StackEnd::Truncated(UnwindError::TooManyFrames);
            }
            if let Some(end) = cur.frame(code, mem, cache, &mut frames) {
                break end;
            }
        },
        Err(e) => StackEnd::Truncated(e),
    };
    cache.frames = frames;
    Unwound {
        frames: &cache.frames,
        end,
    }
}

/// Most frames from a thread's registers in Go's signal handler down to `runtime.sigtramp`
/// (sigtramp, sigtrampgo, sighandler and the few calls it makes).
const MAX_HANDLER_FRAMES: usize = 64;

/// The registers a signal interrupted, for a thread in Go's signal handler: `start` is the
/// thread's registers, on its signal stack. The handler's unwind ends at `runtime.sigtramp`,
/// and the kernel's signal frame just above it holds what the thread was running
/// ([`crate::arch::Arch::interrupted_regs_at`]). `None` when the unwind ends anywhere else or
/// the frame cannot be read.
pub fn interrupted(
    code: Code<'_>,
    mem: &impl MemoryReader,
    start: Start,
    cache: &mut UnwindCache,
) -> Option<Start> {
    let lim = Limits {
        max_frames: MAX_HANDLER_FRAMES,
    };
    let u = unwind(code, mem, start, None, lim, cache);
    let (StackEnd::Complete { sp: top }, Some(last)) = (u.end, u.frames.last()) else {
        return None;
    };
    if code.tab.name(last.func) != "runtime.sigtramp" {
        return None;
    }
    let (pc, sp, lr) = code.arch.interrupted_regs_at(top);
    Some(Start {
        pc: mem.read_u64(pc).ok()?,
        sp: mem.read_u64(sp).ok()?,
        lr: match lr {
            Some(lr) => mem.read_u64(lr).ok()?,
            None => 0,
        },
        syscall: false,
        trap: true,
    })
}

/// Where an unwind is: the frame being resolved (`traceback.go`'s `unwinder`: `frame`,
/// `calleeFuncID`, the pending jump back from the system stack).
struct Cursor {
    func: Func,
    pc: u64,
    sp: u64,
    lr: u64,
    trap: bool,
    innermost: bool,
    syscall: bool,
    callee_id: u8,
    jump: Option<JumpTo>,
}

impl Cursor {
    /// `initAt`: the first frame; a zero pc (a nil function call) starts in the caller's.
    fn start(
        code: Code<'_>,
        mem: &impl MemoryReader,
        start: Start,
        jump: Option<JumpTo>,
        cache: &mut UnwindCache,
    ) -> Result<Cursor, UnwindError> {
        let arch = code.arch;
        let (mut pc, mut sp, mut lr) = (
            start.pc,
            start.sp,
            if arch.uses_lr() { start.lr } else { 0 },
        );
        if pc == 0 {
            pc = mem.read_u64(sp).map_err(|_| UnwindError::Unreadable(sp))?;
            if arch.uses_lr() {
                lr = 0;
            } else {
                sp = sp.wrapping_add(arch.ptr_size());
            }
        }
        let func = cache.func(code.tab, pc).ok_or(UnwindError::UnknownPc(pc))?;
        Ok(Cursor {
            func,
            pc,
            sp,
            lr,
            trap: start.trap,
            innermost: true,
            syscall: start.syscall,
            callee_id: 0,
            jump,
        })
    }

    /// Resolves the current frame, pushes it and moves to its caller; the end of the stack
    /// when there is none (`resolveInternal` then `next`).
    fn frame(
        &mut self,
        code: Code<'_>,
        mem: &impl MemoryReader,
        cache: &mut UnwindCache,
        frames: &mut Vec<PhysFrame>,
    ) -> Option<StackEnd> {
        let tab = code.tab;
        if tab.pcsp_table(self.func) == 0 {
            // No frame information: external code.
            return Some(StackEnd::Complete { sp: self.sp });
        }
        let id = tab.func_id(self.func);
        let flag = match self.switch_stack(code, cache, id) {
            Ok(flag) => flag,
            Err(e) => return Some(StackEnd::Truncated(e)),
        };
        let Some(delta) = cache.sp_delta(tab, self.pc) else {
            return Some(StackEnd::Truncated(UnwindError::UnknownPc(self.pc)));
        };
        let Some(mut fp) = self.sp.checked_add_signed(delta as i64) else {
            return Some(StackEnd::Truncated(UnwindError::Unreadable(self.sp)));
        };
        if !code.arch.uses_lr() {
            fp = fp.wrapping_add(code.arch.ptr_size());
        }
        let return_pc = self.return_pc(code.arch, mem, flag, fp);
        frames.push(PhysFrame {
            func: self.func,
            pc: self.pc,
            sp: self.sp,
            fp,
            trap: self.trap,
            callee_id: self.callee_id,
        });
        let end = match return_pc {
            Ok(end) => end,
            Err(e) => return Some(StackEnd::Truncated(e)),
        };
        self.next(code, mem, cache, id, fp, end)
    }

    /// The frame's flags, and the switch from the system stack back to the goroutine's at
    /// `morestack` and `systemstack` (`resolveInternal`; delve's `switchStack`).
    fn switch_stack(
        &mut self,
        code: Code<'_>,
        cache: &mut UnwindCache,
        id: u8,
    ) -> Result<u8, UnwindError> {
        let tab = code.tab;
        let mut flag = tab.flag(self.func);
        if id != 0 && Some(id) == code.ids.cgocallback {
            flag &= !func_flag::SP_WRITE;
        }
        if self.innermost && self.syscall {
            flag &= !func_flag::SP_WRITE;
        }
        let Some(j) = self.jump else {
            return Ok(flag);
        };
        if id != 0 && Some(id) == code.ids.morestack {
            self.pc = j.pc;
            self.sp = j.sp;
            self.lr = if code.arch.uses_lr() { j.lr } else { 0 };
            self.jump = None;
            self.func = cache
                .func(tab, self.pc)
                .ok_or(UnwindError::UnknownPc(self.pc))?;
            flag = tab.flag(self.func);
        } else if id != 0 && Some(id) == code.ids.systemstack {
            if !(code.arch.uses_lr() && cache.sp_delta(tab, self.pc) == Some(0)) {
                self.sp = j.sp;
                self.jump = None;
            }
            flag &= !func_flag::SP_WRITE;
        }
        Ok(flag)
    }

    /// Reads the frame's return address into `lr` (from the stack at `sp` on LR machines
    /// when it is not in the link register, below `fp` on x86); no caller for a TopFrame or
    /// SPWrite function, where the runtime stops too (with printing flags, at any SPWrite
    /// function, innermost included).
    fn return_pc(
        &mut self,
        arch: crate::arch::Arch,
        mem: &impl MemoryReader,
        flag: u8,
        fp: u64,
    ) -> Result<Option<StackEnd>, UnwindError> {
        if flag & func_flag::TOP_FRAME != 0 {
            self.lr = 0;
            return Ok(None);
        }
        if flag & func_flag::SP_WRITE != 0 {
            self.lr = 0;
            return Ok(Some(StackEnd::SpWrite));
        }
        let at = if arch.uses_lr() {
            ((self.innermost && self.sp < fp) || self.lr == 0).then_some(self.sp)
        } else {
            (self.lr == 0).then(|| fp.wrapping_sub(arch.ptr_size()))
        };
        if let Some(at) = at {
            self.lr = mem.read_u64(at).map_err(|_| UnwindError::Unreadable(at))?;
        }
        Ok(None)
    }

    /// Moves to the caller (`next`): the return address's function, or, when the system
    /// stack ended (mcall, mstart, ...) with the goroutine's own stack still to come, its
    /// saved registers. On LR machines a frame the signal handler injected saved LR on the
    /// stack before faking the call.
    fn next(
        &mut self,
        code: Code<'_>,
        mem: &impl MemoryReader,
        cache: &mut UnwindCache,
        id: u8,
        fp: u64,
        end: Option<StackEnd>,
    ) -> Option<StackEnd> {
        let (arch, tab) = (code.arch, code.tab);
        let truncated = |e| Some(StackEnd::Truncated(e));
        if self.lr == 0 {
            let Some(j) = self.jump.take() else {
                return Some(end.unwrap_or(StackEnd::Complete { sp: fp }));
            };
            let Some(f) = cache.func(tab, j.pc) else {
                return truncated(UnwindError::UnknownPc(j.pc));
            };
            self.callee_id = id;
            self.func = f;
            self.pc = j.pc;
            self.sp = j.sp;
            self.lr = if arch.uses_lr() { j.lr } else { 0 };
            self.trap = false;
            self.innermost = true;
            return None;
        }
        let Some(flr) = cache.func(tab, self.lr) else {
            return truncated(UnwindError::UnknownReturnPc(self.lr));
        };
        if self.pc == self.lr && self.sp == fp {
            return truncated(UnwindError::Stuck(self.sp));
        }
        if fp < self.sp {
            return truncated(UnwindError::SpBackwards(fp));
        }
        let injected = code.ids.is_injected(id);
        self.trap = if code.ids.gentraceback {
            id != 0 && Some(id) == code.ids.sigpanic
        } else {
            injected
        };
        self.callee_id = id;
        self.func = flr;
        self.pc = self.lr;
        self.lr = 0;
        self.sp = fp;
        self.innermost = false;
        if arch.uses_lr() && injected {
            let Ok(x) = mem.read_u64(self.sp) else {
                return truncated(UnwindError::Unreadable(self.sp));
            };
            self.sp = self.sp.wrapping_add(16); // alignUp(MinFrameSize, StackAlign)
            match cache.func(tab, self.pc) {
                None => self.pc = x,
                Some(_) => {
                    if cache.sp_delta(tab, self.pc) == Some(0) {
                        self.lr = x;
                    }
                }
            }
            match cache.func(tab, self.pc) {
                Some(f) => self.func = f,
                None => return truncated(UnwindError::UnknownPc(self.pc)),
            }
        }
        None
    }
}
