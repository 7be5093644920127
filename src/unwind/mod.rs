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

/// What unwinding learned about each pc it met: the function holding it and the frame size
/// there (its pcsp value). Kept between the unwinds of one walk: goroutines parked at the
/// same places share their pcs. A cache only; [`unwind`] is a function of its inputs.
#[derive(Default)]
pub struct UnwindCache {
    pcs: PcMap<(Option<Func>, Option<i32>)>,
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

/// The result of an unwind: frames innermost first, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwound {
    /// Physical frames, innermost first.
    pub frames: Vec<PhysFrame>,
    /// How it ended.
    pub end: StackEnd,
}

/// Unwinds one stack. Never panics; corrupt input ends in [`StackEnd::Truncated`]. `cache`
/// remembers what was decoded about each pc, for the next unwind.
pub fn unwind(
    code: Code<'_>,
    mem: &impl MemoryReader,
    start: Start,
    mut jump: Option<JumpTo>,
    lim: Limits,
    cache: &mut UnwindCache,
) -> Unwound {
    let arch = code.arch;
    let tab = code.tab;
    let ptr = arch.ptr_size();
    let mut frames = Vec::new();
    let done = |frames, end| Unwound { frames, end };

    let (mut pc, mut sp, mut lr) = (
        start.pc,
        start.sp,
        if arch.uses_lr() { start.lr } else { 0 },
    );
    // A zero pc is likely a nil function call: start in the caller's frame (initAt).
    if pc == 0 {
        match mem.read_u64(sp) {
            Ok(v) => pc = v,
            Err(_) => return done(frames, StackEnd::Truncated(UnwindError::Unreadable(sp))),
        }
        if arch.uses_lr() {
            lr = 0;
        } else {
            sp = sp.wrapping_add(ptr);
        }
    }
    let Some(mut func) = cache.func(tab, pc) else {
        return done(frames, StackEnd::Truncated(UnwindError::UnknownPc(pc)));
    };
    let mut innermost = true;
    let mut trap = start.trap;
    let mut callee_id = 0u8;
    let mut fp: u64;

    loop {
        if frames.len() >= lim.max_frames {
            return done(frames, StackEnd::Truncated(UnwindError::TooManyFrames));
        }
        // resolveInternal
        if tab.pcsp_table(func) == 0 {
            // No frame information: external code.
            return done(frames, StackEnd::Complete { sp });
        }
        let id = tab.func_id(func);
        let mut flag = tab.flag(func);
        if id != 0 && Some(id) == code.ids.cgocallback {
            flag &= !func_flag::SP_WRITE;
        }
        if innermost && start.syscall {
            flag &= !func_flag::SP_WRITE;
        }
        // Jump from the system stack back to the goroutine's stack.
        if let Some(j) = jump {
            if id != 0 && Some(id) == code.ids.morestack {
                pc = j.pc;
                sp = j.sp;
                lr = if arch.uses_lr() { j.lr } else { 0 };
                jump = None;
                match cache.func(tab, pc) {
                    Some(f) => func = f,
                    None => return done(frames, StackEnd::Truncated(UnwindError::UnknownPc(pc))),
                }
                flag = tab.flag(func);
            } else if id != 0 && Some(id) == code.ids.systemstack {
                if arch.uses_lr() && cache.sp_delta(tab, pc) == Some(0) {
                    flag &= !func_flag::SP_WRITE;
                } else {
                    sp = j.sp;
                    jump = None;
                    flag &= !func_flag::SP_WRITE;
                }
            }
        }
        let Some(delta) = cache.sp_delta(tab, pc) else {
            return done(frames, StackEnd::Truncated(UnwindError::UnknownPc(pc)));
        };
        fp = match sp.checked_add_signed(delta as i64) {
            Some(v) => v,
            None => return done(frames, StackEnd::Truncated(UnwindError::Unreadable(sp))),
        };
        if !arch.uses_lr() {
            fp = fp.wrapping_add(ptr);
        }
        let mut end = None;
        if flag & func_flag::TOP_FRAME != 0 {
            lr = 0;
        } else if flag & func_flag::SP_WRITE != 0 {
            // With printing flags the runtime stops at any SPWrite function, innermost included.
            lr = 0;
            end = Some(StackEnd::SpWrite);
        } else if arch.uses_lr() {
            if (innermost && sp < fp) || lr == 0 {
                match mem.read_u64(sp) {
                    Ok(v) => lr = v,
                    Err(_) => {
                        frames.push(PhysFrame {
                            func,
                            pc,
                            sp,
                            fp,
                            trap,
                            callee_id,
                        });
                        return done(frames, StackEnd::Truncated(UnwindError::Unreadable(sp)));
                    }
                }
            }
        } else if lr == 0 {
            match mem.read_u64(fp.wrapping_sub(ptr)) {
                Ok(v) => lr = v,
                Err(_) => {
                    frames.push(PhysFrame {
                        func,
                        pc,
                        sp,
                        fp,
                        trap,
                        callee_id,
                    });
                    return done(
                        frames,
                        StackEnd::Truncated(UnwindError::Unreadable(fp.wrapping_sub(ptr))),
                    );
                }
            }
        }
        frames.push(PhysFrame {
            func,
            pc,
            sp,
            fp,
            trap,
            callee_id,
        });

        // next
        if lr == 0 {
            // The system stack ended (mcall, mstart, ...) while the goroutine's own stack is
            // still to come: continue at its saved registers.
            if let Some(j) = jump.take() {
                let Some(f) = cache.func(tab, j.pc) else {
                    return done(frames, StackEnd::Truncated(UnwindError::UnknownPc(j.pc)));
                };
                callee_id = id;
                func = f;
                pc = j.pc;
                sp = j.sp;
                lr = if arch.uses_lr() { j.lr } else { 0 };
                trap = false;
                innermost = true;
                continue;
            }
            return done(frames, end.unwrap_or(StackEnd::Complete { sp: fp }));
        }
        let Some(flr) = cache.func(tab, lr) else {
            return done(
                frames,
                StackEnd::Truncated(UnwindError::UnknownReturnPc(lr)),
            );
        };
        if pc == lr && sp == fp {
            return done(frames, StackEnd::Truncated(UnwindError::Stuck(sp)));
        }
        if fp < sp {
            return done(frames, StackEnd::Truncated(UnwindError::SpBackwards(fp)));
        }
        let injected = code.ids.is_injected(id);
        trap = if code.ids.gentraceback {
            id != 0 && Some(id) == code.ids.sigpanic
        } else {
            injected
        };
        callee_id = id;
        func = flr;
        pc = lr;
        lr = 0;
        sp = fp;
        innermost = false;
        // On LR machines the signal handler saved LR on the stack before faking the call.
        if arch.uses_lr() && injected {
            let x = match mem.read_u64(sp) {
                Ok(v) => v,
                Err(_) => return done(frames, StackEnd::Truncated(UnwindError::Unreadable(sp))),
            };
            sp = sp.wrapping_add(16); // alignUp(MinFrameSize, StackAlign)
            match cache.func(tab, pc) {
                None => pc = x,
                Some(_) => {
                    if cache.sp_delta(tab, pc) == Some(0) {
                        lr = x;
                    }
                }
            }
            match cache.func(tab, pc) {
                Some(f) => func = f,
                None => return done(frames, StackEnd::Truncated(UnwindError::UnknownPc(pc))),
            }
        }
    }
}
