//! Reading goroutines: the copy plan for the frozen window, and reading each `runtime.g`
//! (and its `m`) back out of the copy.
//!
//! The copy happens in a few batched rounds, each depending on the last: the `allgs` slice
//! header, the array of g pointers, every g, the Ms of goroutines that are on a thread (and
//! their g0 for system-stack unwinding), then the used part of every stack.

use super::Runtime;
use super::layout::F;
use super::status;
use crate::target::image::MemoryImage;
use crate::target::{MemoryReader, ReadExt, ThreadState};
use std::collections::{BTreeSet, HashMap};

/// Most goroutines accepted from `allgs` (a corrupt length must not allocate unbounded).
pub const MAX_GOROUTINES: u64 = 16 << 20;
/// Largest goroutine stack copied (Go's own maximum on 64-bit is 1 GB).
pub const MAX_STACK_COPY: u64 = 1 << 30;

/// Copies byte ranges of the target into an image: `(addr, len)` requests.
pub type CopyFn<'a> = dyn FnMut(&[(u64, u64)], &mut MemoryImage) + 'a;

/// One g as read from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawG {
    /// Address of the g.
    pub addr: u64,
    /// Status with the scan bit removed.
    pub status: u32,
    /// The scan bit was set.
    pub scan: bool,
    /// Goroutine id.
    pub goid: u64,
    /// `stack.lo`, `stack.hi`.
    pub stack: (u64, u64),
    /// `sched.pc`, `sched.sp`, `sched.lr`.
    pub sched: (u64, u64, u64),
    /// `syscallpc`, `syscallsp`.
    pub syscall: (u64, u64),
    /// `stktopsp`.
    pub stktopsp: u64,
    /// `waitsince` (nanotime; 0 until a GC cycle records it).
    pub waitsince: i64,
    /// `waitreason`.
    pub waitreason: u8,
    /// `lockedm != 0`.
    pub locked: bool,
    /// `parentGoid` (0 when the version has none).
    pub parent_goid: u64,
    /// `gopc`: pc of the `go` statement.
    pub gopc: u64,
    /// `startpc`: the goroutine's function.
    pub startpc: u64,
    /// `m` (0 when not on a thread).
    pub m: u64,
    /// `labels` pointer.
    pub labels: u64,
    /// `waiting` (the first sudog).
    pub waiting: u64,
}

/// One m as read from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawM {
    /// Address.
    pub addr: u64,
    /// `m.id`.
    pub id: i64,
    /// `m.procid`: the Linux thread id.
    pub procid: u64,
    /// `m.g0`.
    pub g0: u64,
    /// `m.curg`.
    pub curg: u64,
    /// `m.vdsoSP`, `m.vdsoPC`.
    pub vdso: (u64, u64),
    /// `g0.stack` (lo, hi), when g0 could be read.
    pub g0_stack: (u64, u64),
}

/// Performs the copy plan against a stopped target. `threads` are its stopped threads.
/// Returns the image; reads that fail leave holes that later show as unreadable goroutines.
pub fn capture(rt: &Runtime, threads: &[ThreadState], copy: &mut CopyFn<'_>) -> MemoryImage {
    let mut img = MemoryImage::new();
    let l = &rt.layout;
    copy(&[(rt.allgs, 24)], &mut img);
    let (ptr, len) = match (img.read_u64(rt.allgs), img.read_u64(rt.allgs + 8)) {
        (Ok(p), Ok(n)) if n <= MAX_GOROUTINES => (p, n),
        _ => return img,
    };
    copy(&[(ptr, len * 8)], &mut img);
    let gs: Vec<u64> = (0..len).filter_map(|i| img.read_u64(ptr + i * 8).ok()).filter(|&g| g != 0).collect();
    let reqs: Vec<(u64, u64)> = gs.iter().map(|&g| (g, l.g_size)).collect();
    copy(&reqs, &mut img);

    // Ms of goroutines that are on a thread, and their g0 structs.
    let mut gbuf = vec![0u8; l.g_size as usize];
    let mut ms = BTreeSet::new();
    for &g in &gs {
        if img.read_at(g, &mut gbuf).is_ok() {
            let m = l.get(F::GM, &gbuf);
            if m != 0 {
                ms.insert(m);
            }
        }
    }
    let reqs: Vec<(u64, u64)> = ms.iter().map(|&m| (m, l.m_size)).collect();
    copy(&reqs, &mut img);
    let g0s: Vec<(u64, u64)> =
        ms.iter().filter_map(|&m| img.read_u64(m + l.off(F::MG0)?).ok()).filter(|&g| g != 0).map(|g| (g, l.g_size)).collect();
    copy(&g0s, &mut img);

    // pprof labels.
    let lptrs: Vec<u64> =
        gs.iter().filter_map(|&g| img.read_u64(g + l.off(F::GLabels)?).ok()).filter(|&p| p != 0).collect();
    super::labels::capture(rt, &lptrs, &mut img, copy);

    // The used part of every stack.
    let by_tid: HashMap<u64, &ThreadState> = threads.iter().map(|t| (t.tid as u64, t)).collect();
    let mut reqs = Vec::with_capacity(gs.len());
    for &g in &gs {
        let Ok(raw) = read_g(rt, &img, g) else { continue };
        if status::is_dead(raw.status, rt.version()) {
            continue;
        }
        let (lo, hi) = raw.stack;
        if lo >= hi || hi - lo > MAX_STACK_COPY {
            continue;
        }
        let mut sps = vec![raw.sched.1, raw.syscall.1];
        if let Some(m) = read_m(rt, &img, raw.m) {
            if let Some(t) = by_tid.get(&m.procid) {
                let sp = t.regs.sp;
                if (lo..hi).contains(&sp) {
                    sps.push(sp);
                } else if (m.g0_stack.0..m.g0_stack.1).contains(&sp) {
                    reqs.push((sp, m.g0_stack.1 - sp));
                }
            }
            if m.vdso.0 != 0 {
                sps.push(m.vdso.0);
            }
        }
        // Copy from the lowest stack pointer any unwind may start at, up to the stack top.
        if let Some(sp) = sps.into_iter().filter(|sp| (lo..hi).contains(sp)).min() {
            reqs.push((sp, hi - sp));
        }
    }
    copy(&reqs, &mut img);
    img
}

/// Whether a running goroutine was caught between states: its thread's stack pointer is on
/// neither its own stack nor (with valid saved registers) its thread's g0 stack, e.g. inside
/// a signal handler while its `sched` is cleared. Its stack cannot be read at this instant.
pub fn in_transition(rt: &Runtime, mem: &impl MemoryReader, threads: &[ThreadState]) -> bool {
    let Ok(gs) = all_g_addrs(rt, mem) else { return false };
    let by_tid: HashMap<u64, &ThreadState> = threads.iter().map(|t| (t.tid as u64, t)).collect();
    gs.iter().any(|&g| {
        let Ok(raw) = read_g(rt, mem, g) else { return false };
        if raw.status != status::RUNNING {
            return false;
        }
        let Some(m) = read_m(rt, mem, raw.m).filter(|m| m.curg == g) else { return false };
        let Some(t) = by_tid.get(&m.procid) else { return false };
        let sp = t.regs.sp;
        let on_own = (raw.stack.0..raw.stack.1).contains(&sp);
        let sched_ok = (raw.stack.0..raw.stack.1).contains(&raw.sched.1);
        let on_g0 = (m.g0_stack.0..m.g0_stack.1).contains(&sp);
        !(on_own || m.vdso.0 != 0 || (on_g0 && sched_ok))
    })
}

/// Addresses of every g in `allgs`, read from the image.
pub fn all_g_addrs(rt: &Runtime, mem: &impl MemoryReader) -> Result<Vec<u64>, String> {
    let ptr = mem.read_u64(rt.allgs).map_err(|e| e.to_string())?;
    let len = mem.read_u64(rt.allgs + 8).map_err(|e| e.to_string())?;
    let cap = mem.read_u64(rt.allgs + 16).map_err(|e| e.to_string())?;
    if len > cap || len > MAX_GOROUTINES {
        return Err(format!("runtime.allgs looks corrupt (len {len}, cap {cap})"));
    }
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len {
        let g = mem.read_u64(ptr + i * 8).map_err(|e| e.to_string())?;
        if g != 0 {
            out.push(g);
        }
    }
    Ok(out)
}

/// Reads one g.
pub fn read_g(rt: &Runtime, mem: &impl MemoryReader, addr: u64) -> Result<RawG, crate::target::ReadError> {
    let l = &rt.layout;
    let mut b = vec![0u8; l.g_size as usize];
    mem.read_at(addr, &mut b)?;
    let st = l.get(F::GAtomicStatus, &b) as u32;
    Ok(RawG {
        addr,
        status: st & !status::SCAN,
        scan: st & status::SCAN != 0,
        goid: l.get(F::GGoid, &b),
        stack: (l.get(F::GStackLo, &b), l.get(F::GStackHi, &b)),
        sched: (l.get(F::GSchedPc, &b), l.get(F::GSchedSp, &b), l.get(F::GSchedLr, &b)),
        syscall: (l.get(F::GSyscallPc, &b), l.get(F::GSyscallSp, &b)),
        stktopsp: l.get(F::GStktopSp, &b),
        waitsince: l.get(F::GWaitSince, &b) as i64,
        waitreason: l.get(F::GWaitReason, &b) as u8,
        locked: l.get(F::GLockedM, &b) != 0,
        parent_goid: l.get(F::GParentGoid, &b),
        gopc: l.get(F::GGopc, &b),
        startpc: l.get(F::GStartPc, &b),
        m: l.get(F::GM, &b),
        labels: l.get(F::GLabels, &b),
        waiting: l.get(F::GWaiting, &b),
    })
}

/// Reads one m (and its g0's stack bounds); `None` for a null or unreadable m.
pub fn read_m(rt: &Runtime, mem: &impl MemoryReader, addr: u64) -> Option<RawM> {
    if addr == 0 {
        return None;
    }
    let l = &rt.layout;
    let mut b = vec![0u8; l.m_size as usize];
    mem.read_at(addr, &mut b).ok()?;
    let g0 = l.get(F::MG0, &b);
    let g0_stack = match (l.off(F::GStackLo), l.off(F::GStackHi)) {
        (Some(lo), Some(hi)) if g0 != 0 => (mem.read_u64(g0 + lo).unwrap_or(0), mem.read_u64(g0 + hi).unwrap_or(0)),
        _ => (0, 0),
    };
    Some(RawM {
        addr,
        id: l.get(F::MId, &b) as i64,
        procid: l.get(F::MProcId, &b),
        g0,
        curg: l.get(F::MCurG, &b),
        vdso: (l.get(F::MVdsoSp, &b), l.get(F::MVdsoPc, &b)),
        g0_stack,
    })
}
