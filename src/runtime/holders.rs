//! Possible holders of a lock no pending deferred unlock names: the goroutines whose frames
//! keep a pointer to it or take its address in their code (`mu.Lock()` with the `Unlock` later
//! in the function, or in another). Only locks that matter are searched: a Mutex or RWMutex
//! its state says is held, that goroutines wait for, and that no certain holder (a deferred
//! unlock the state agrees with) claims.
//!
//! Evidence, for each goroutine not itself waiting for the lock (blocked on it, or its
//! runtime and sync frames, as frozen, pointing at it), frame by frame (innermost
//! first; frames of `runtime`, `sync` and `internal/sync` never count, the registers a
//! `runtime.asyncPreempt` frame saved count for the frame it interrupted):
//!
//! - `pointer`: a live pointer slot of the frame (by its pointer maps at the call it is
//!   stopped at, as the garbage collector scans it; every aligned word of a frame not stopped
//!   at a call: the innermost, one an asynchronous preemption interrupted, one without maps)
//!   or, for the innermost frame of a goroutine running on a thread, a register of that
//!   thread, points at the lock or into the heap object that contains it (object bounds from
//!   the heap's spans, [`super::leaks::objects_of`]);
//! - `code`: the frame's function references the lock's own bytes in its code (a global lock:
//!   amd64 RIP-relative `LEA` or memory operand, arm64 `ADRP` pair; [`super::find::code_refs`]).
//!
//! A goroutine is a possible holder in its innermost frame with evidence, `pointer` when that
//! frame has a pointer. This says a frame can reach the lock, not that it holds it: a
//! possible holder never makes a self-deadlock or a cycle, and ranks after every certain one
//! ([`crate::analyze::deadlock`]).

use super::Runtime;
use crate::snapshot::{Goroutine, Holder, Status, SyncObject};
use crate::target::image::MemoryImage;
use crate::target::{CopyInto, MemoryReader, ReadExt, ThreadState, Windowed};
use crate::unwind::PcMap;
use std::collections::HashMap;

/// Most bytes of one frame scanned for pointers.
const MAX_FRAME_SCAN: u64 = 1 << 20;
/// Most bytes of one goroutine's frames scanned for pointers.
const MAX_STACK_SCAN: u64 = 64 << 20;
/// Most locks searched for possible holders in one snapshot.
const MAX_TARGETS: usize = 4096;
/// Fewest goroutines searched by one thread.
const SEARCH_PART: usize = 2048;

/// A lock searched for: its address, the ranges a pointer to it may point into, the range
/// code may reference, and the lock kind a holder is said to hold.
struct Target {
    kind: &'static str,
    addr: u64,
    pointee: Vec<(u64, u64)>,
    code: (u64, u64),
    lock: &'static str,
}

/// Whether a frame's function belongs to the runtime or the sync package (never a holder).
fn internal(function: &str) -> bool {
    ["runtime.", "sync.", "internal/sync.", "sync/atomic."]
        .iter()
        .any(|p| function.starts_with(p))
}

/// Adds the possible holders of every lock that matters (see the module's comment) to
/// `objects`. `mem` holds the goroutines' stacks as frozen (or a core); `threads` are the
/// stopped threads' registers; `fetch` copies the heap's span tables of a live target (a core
/// is read through `mem`).
pub(crate) fn add(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    gs: &[Goroutine],
    objects: &mut [SyncObject],
    threads: &[ThreadState],
    fetch: &dyn CopyInto,
) {
    let Some(finder) = Finder::new(rt, mem, fetch, targets(objects)) else {
        return;
    };
    // A big process's goroutines are searched in parts on every CPU, each with its own caches.
    let found = crate::parts::in_parts(gs, SEARCH_PART, |_, part| {
        finder.search(rt, mem, part, threads)
    });
    finder.attach(found, objects);
}

/// The locks that matter (see the module's comment), at most [`MAX_TARGETS`].
fn targets(objects: &[SyncObject]) -> Vec<Target> {
    objects
        .iter()
        .filter(|o| {
            o.held_by_state() == Some(true)
                && o.total_waiters() > 0
                && !o.holders.iter().any(|h| o.claim_holds(h))
        })
        .take(MAX_TARGETS)
        .filter_map(Target::of)
        .collect()
}

impl Target {
    /// A Mutex or RWMutex held by its state, with its own bytes as the range pointers and
    /// code must reach; `None` for another object.
    fn of(o: &SyncObject) -> Option<Target> {
        let (kind, size) = match o.kind.as_str() {
            "sync.Mutex" => ("sync.Mutex", 8),
            "sync.RWMutex" => ("sync.RWMutex", 24),
            _ => return None,
        };
        let read = kind == "sync.RWMutex" && o.read_holders().is_some_and(|n| n > 0);
        Some(Target {
            kind,
            addr: o.addr,
            pointee: vec![(o.addr, o.addr.saturating_add(size))],
            code: (o.addr, o.addr.saturating_add(size)),
            lock: if read { "read" } else { "write" },
        })
    }
}

/// A search for the possible holders of some locks, ready to run over goroutines: over all
/// of them at once ([`add`]), or chunk by chunk as they are built, for locks that may turn
/// out to matter ([`Finder::of_locks`], then [`Finder::attach`] keeps those that do).
pub(crate) struct Finder {
    targets: Vec<Target>,
    reach: Reach,
}

/// Possible holders found by [`Finder::search`]: (index of the target, holder).
pub(crate) type Found = Vec<(usize, Holder)>;

impl Finder {
    /// The search for `targets` (with their heap objects, when the heap's spans can be read);
    /// `None` without targets.
    fn new(
        rt: &Runtime,
        mem: &impl MemoryReader,
        fetch: &dyn CopyInto,
        mut targets: Vec<Target>,
    ) -> Option<Finder> {
        if targets.is_empty() {
            return None;
        }
        heap_objects(rt, mem, fetch, &mut targets);
        let reach = Reach::of(&targets);
        Some(Finder { targets, reach })
    }

    /// The search for the Mutexes and RWMutexes of `locks` (objects read before the
    /// goroutines are built, held by their state); `None` when there are none, or more than a
    /// search looks for at once (then the goroutines are searched after, [`add`]).
    pub(crate) fn of_locks(
        rt: &Runtime,
        mem: &impl MemoryReader,
        fetch: &dyn CopyInto,
        locks: &[SyncObject],
    ) -> Option<Finder> {
        if locks.len() > MAX_TARGETS {
            return None;
        }
        Finder::new(
            rt,
            mem,
            fetch,
            locks.iter().filter_map(Target::of).collect(),
        )
    }

    /// Possible holders among `gs`, built from `mem` (which holds their stacks as frozen, or
    /// is a core); `threads` are the stopped threads' registers. On this thread.
    pub(crate) fn search(
        &self,
        rt: &Runtime,
        mem: &(impl MemoryReader + ?Sized),
        gs: &[Goroutine],
        threads: &[ThreadState],
    ) -> Found {
        let targets = &self.targets;
        let mut refs: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut slots = Slots::default();
        let mut reach = self.reach.clone();
        let mut found = Vec::new();
        for g in gs
            .iter()
            .filter(|g| g.status != Status::DEAD && g.status != Status::IDLE)
        {
            // Its frames' words are read through a slice of its stack's copy.
            let lo = g.frames.iter().find(|f| !f.inlined).map_or(0, |f| f.sp());
            let hi = g.frames.iter().map(|f| f.fp()).max().unwrap_or(lo).max(lo);
            let stack = Windowed {
                lo,
                bytes: mem.slice(lo, hi - lo).unwrap_or(&[]),
                rest: mem,
            };
            if !reach.may_hold(rt, g, targets, &stack, hi - lo, &mut refs) {
                continue;
            }
            let Some(s) = Search::new(rt, &stack, g, targets, &mut slots) else {
                continue;
            };
            // Each target's first frame with evidence, and whether it is a pointer.
            let mut best: HashMap<usize, (usize, bool)> = HashMap::new();
            s.scan_stack(rt, &stack, &mut slots, &mut best);
            s.scan_registers(threads, &mut best);
            s.scan_code(rt, &mut refs, &mut best);
            for (t, (frame, pointer)) in best {
                let f = &g.frames[frame];
                found.push((
                    t,
                    Holder {
                        goroutine: g.id,
                        lock: targets[t].lock.into(),
                        function: f.function.clone(),
                        file: f.file.clone(),
                        line: f.line,
                        how: if pointer { "pointer" } else { "code" }.into(),
                    },
                ));
            }
        }
        found
    }

    /// Adds each holder `found` to its lock among `objects`, for the locks that matter there
    /// (see the module's comment): in order of lock address, then goroutine id.
    pub(crate) fn attach(&self, found: Found, objects: &mut [SyncObject]) {
        let matter: Vec<(&str, u64)> = targets(objects).iter().map(|t| (t.kind, t.addr)).collect();
        let mut found: Vec<(u64, Holder)> = found
            .into_iter()
            .filter_map(|(t, h)| {
                let t = &self.targets[t];
                matter.contains(&(t.kind, t.addr)).then_some((t.addr, h))
            })
            .collect();
        found.sort_by_key(|(a, h)| (*a, h.goroutine));
        for (addr, h) in found {
            if let Some(o) = objects.iter_mut().find(|o| o.addr == addr) {
                o.holders.push(h);
            }
        }
    }
}

/// Records evidence that `frame` holds target `t` (`pointer`: a pointer, else code): the
/// innermost frame with evidence wins, and in one frame a pointer wins over code.
fn note(best: &mut HashMap<usize, (usize, bool)>, t: usize, frame: usize, pointer: bool) {
    let e = best.entry(t).or_insert((frame, pointer));
    if frame < e.0 || frame == e.0 && pointer {
        *e = (frame, pointer);
    }
}

/// One goroutine searched for the targets it may hold.
struct Search<'a> {
    g: &'a Goroutine,
    targets: &'a [Target],
    /// Physical frames, innermost first: (index of the logical frame to name, sp, fp).
    physical: Vec<(usize, u64, u64)>,
    /// The targets it does not wait for itself.
    candidates: Vec<usize>,
}

impl<'a> Search<'a> {
    /// The search of `g`, `None` when it waits for every target itself.
    fn new(
        rt: &Runtime,
        mem: &impl MemoryReader,
        g: &'a Goroutine,
        targets: &'a [Target],
        slots: &mut Slots,
    ) -> Option<Self> {
        let physical: Vec<(usize, u64, u64)> = g
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.inlined)
            .map(|(i, f)| (i, f.sp(), f.fp()))
            .collect();
        // What its frozen frames wait for: the live pointers of its runtime and sync frames
        // stopped at a call (the lock a `lockSlow` or `semacquire1` frame waits on). The
        // semaphore table is read after the target runs again, so `blocked_on` alone may
        // name a later wait.
        let mut waits: Vec<u64> = Vec::new();
        if g.status == Status::WAITING {
            for (k, &(i, _, _)) in physical.iter().enumerate() {
                if k > 0 && internal(&g.frames[i].function) {
                    slots.of(rt, &g.frames[i], &mut waits);
                }
            }
            waits.retain_mut(|a| mem.read_u64(*a).map(|w| *a = w).is_ok());
        }
        let candidates: Vec<usize> = (0..targets.len())
            .filter(|&t| {
                let (lo, hi) = targets[t].code;
                !g.blocked_on.iter().any(|b| b.addr == targets[t].addr)
                    && !waits.iter().any(|&w| w >= lo && w < hi)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(Search {
            g,
            targets,
            physical,
            candidates,
        })
    }

    /// The candidates a word points into (the lock or its heap object).
    fn hits(&self, w: u64) -> impl Iterator<Item = usize> + '_ {
        self.candidates.iter().copied().filter(move |&t| {
            self.targets[t]
                .pointee
                .iter()
                .any(|&(lo, hi)| w >= lo && w < hi)
        })
    }

    /// The frame a physical frame's words count for: itself, or for asyncPreempt the frame
    /// it interrupted; none for runtime and sync frames.
    fn owner(&self, k: usize) -> Option<usize> {
        let (i, _, _) = self.physical[k];
        let f = &*self.g.frames[i].function;
        if f == "runtime.asyncPreempt" {
            return self.physical.get(k + 1).map(|p| p.0);
        }
        (!internal(f)).then_some(i)
    }

    /// Pointer evidence on the stack: the live pointer slots of a frame stopped at a call,
    /// every word of any other frame.
    fn scan_stack(
        &self,
        rt: &Runtime,
        mem: &impl MemoryReader,
        slots: &mut Slots,
        best: &mut HashMap<usize, (usize, bool)>,
    ) {
        let (g, physical) = (self.g, &self.physical);
        let mut scanned = 0u64;
        let mut slot_addrs = Vec::new();
        for (k, &(i, sp, fp)) in physical.iter().enumerate() {
            let Some(frame) = self.owner(k) else {
                continue;
            };
            if internal(&g.frames[frame].function) {
                continue;
            }
            // A frame stopped at a call: its live pointer slots; else all of its words.
            let callee = k.checked_sub(1).map(|c| &*g.frames[physical[c].0].function);
            let at_call = frame == i
                && k > 0
                && !matches!(callee, Some("runtime.asyncPreempt" | "runtime.sigpanic"));
            slot_addrs.clear();
            if at_call && slots.of(rt, &g.frames[i], &mut slot_addrs) {
                for &a in &slot_addrs {
                    if let Ok(w) = mem.read_u64(a) {
                        for t in self.hits(w) {
                            note(best, t, frame, true);
                        }
                    }
                }
                continue;
            }
            let len = fp.saturating_sub(sp).min(MAX_FRAME_SCAN) & !7;
            if len == 0 || scanned + len > MAX_STACK_SCAN || sp % 8 != 0 {
                continue;
            }
            scanned += len;
            let mut buf = vec![0u8; len as usize];
            if mem.read_at(sp, &mut buf).is_err() {
                continue;
            }
            for w in buf.chunks_exact(8) {
                let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
                for t in self.hits(w) {
                    note(best, t, frame, true);
                }
            }
        }
    }

    /// Pointer evidence in the registers of the thread running the goroutine, for its
    /// innermost frame that counts.
    fn scan_registers(&self, threads: &[ThreadState], best: &mut HashMap<usize, (usize, bool)>) {
        let (g, physical) = (self.g, &self.physical);
        if g.status == Status::RUNNING
            && let Some(regs) = g
                .thread
                .and_then(|tid| threads.iter().find(|t| t.tid == tid))
            && let Some(frame) = (0..physical.len()).find_map(|k| self.owner(k))
        {
            for &w in &regs.words {
                for t in self.hits(w) {
                    note(best, t, frame, true);
                }
            }
        }
    }

    /// Code evidence: a frame whose function's code references the lock's own bytes
    /// (`refs` keeps each function's references, found once).
    fn scan_code(
        &self,
        rt: &Runtime,
        refs: &mut HashMap<u64, Vec<u64>>,
        best: &mut HashMap<usize, (usize, bool)>,
    ) {
        let (g, physical, targets) = (self.g, &self.physical, self.targets);
        for (k, &(i, _, _)) in physical.iter().enumerate() {
            let Some(frame) = self.owner(k).filter(|&o| o == i) else {
                continue;
            };
            let code = code_refs(rt, refs, g.frames[frame].entry);
            for &t in &self.candidates {
                let (lo, hi) = targets[t].code;
                let i = code.partition_point(|&r| r < lo);
                if code.get(i).is_some_and(|&r| r < hi) {
                    note(best, t, frame, false);
                }
            }
        }
    }
}

/// The addresses a function's code references, sorted, by the entry the unwinder gave its
/// frame: found once per function (`refs` keeps them).
fn code_refs<'r>(rt: &Runtime, refs: &'r mut HashMap<u64, Vec<u64>>, entry: u64) -> &'r [u64] {
    let tab = &rt.bin.pclntab;
    refs.entry(entry).or_insert_with(|| {
        let Some(func) = tab.func_for_pc(entry).filter(|&f| tab.entry(f) == entry) else {
            return Vec::new();
        };
        let mut r = super::find::code_refs(&rt.bin, entry, tab.end(func), rt.bias);
        r.sort_unstable();
        r.dedup();
        r
    })
}

/// Where any target's evidence may be, merged and sorted: a goroutine none of whose stack
/// words points into one and none of whose functions' code references one holds nothing,
/// and is not searched frame by frame.
#[derive(Clone)]
struct Reach {
    pointee: Vec<(u64, u64)>,
    /// The lowest and highest address `pointee` covers: most words are outside.
    span: (u64, u64),
    code: Vec<(u64, u64)>,
    /// By function entry: whether its code references a `code` range.
    refers: PcMap<bool>,
}

impl Reach {
    fn of(targets: &[Target]) -> Self {
        let merged = |mut v: Vec<(u64, u64)>| {
            v.sort_unstable();
            let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
            for (lo, hi) in v {
                match out.last_mut() {
                    Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                    _ => out.push((lo, hi)),
                }
            }
            out
        };
        let pointee = merged(targets.iter().flat_map(|t| t.pointee.clone()).collect());
        Reach {
            span: (
                pointee.first().map_or(0, |r| r.0),
                pointee.last().map_or(0, |r| r.1),
            ),
            pointee,
            code: merged(targets.iter().map(|t| t.code).collect()),
            refers: PcMap::default(),
        }
    }

    /// Whether `w` points into a range of `ranges` (sorted, disjoint).
    fn within(ranges: &[(u64, u64)], w: u64) -> bool {
        let i = ranges.partition_point(|&(_, hi)| hi <= w);
        ranges.get(i).is_some_and(|&(lo, _)| lo <= w)
    }

    /// Whether the search of `g` may find evidence: false only when it cannot. Every word
    /// the search reads lies in `stack`'s window of `len` bytes (the frames from the innermost
    /// sp to the outermost fp): a frame's words, its live locals (below its varp) and its
    /// arguments (in its caller's frame). Only the outermost frame's arguments lie above,
    /// and a running goroutine's registers elsewhere: those are searched in any case. `refs`
    /// is the search's cache of code references.
    fn may_hold<M: MemoryReader + ?Sized>(
        &mut self,
        rt: &Runtime,
        g: &Goroutine,
        targets: &[Target],
        stack: &Windowed<'_, M>,
        len: u64,
        refs: &mut HashMap<u64, Vec<u64>>,
    ) -> bool {
        // One waiting for every target itself holds none.
        if g.blocked_on.len() >= targets.len()
            && targets
                .iter()
                .all(|t| g.blocked_on.iter().any(|b| b.addr == t.addr))
        {
            return false;
        }
        let outermost = g.frames.iter().rev().find(|f| !f.inlined);
        if g.status == Status::RUNNING
            || stack.bytes.len() as u64 != len
            || !stack.lo.is_multiple_of(8)
            || outermost.is_some_and(|f| !internal(&f.function))
        {
            return true;
        }
        let (lo, hi) = self.span;
        let points = stack.bytes.chunks_exact(8).any(|w| {
            let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
            w >= lo && w < hi && Self::within(&self.pointee, w)
        });
        if points {
            return true;
        }
        let mut last = u64::MAX;
        for f in &g.frames {
            // A goroutine's frames repeat a few functions: each asked once in a row.
            if f.inlined || f.entry == last || internal(&f.function) {
                continue;
            }
            last = f.entry;
            let code = &self.code;
            if *self.refers.entry(f.entry).or_insert_with(|| {
                code_refs(rt, refs, f.entry)
                    .iter()
                    .any(|&r| Self::within(code, r))
            }) {
                return true;
            }
        }
        false
    }
}

/// Most bits of one pointer map read.
const MAX_MAP_BITS: u32 = 1 << 20;

/// The live pointer slots of a frame stopped at one pc, as word indexes: of the locals map
/// (counted up from `varp` minus the map's size) and of the arguments map (up from `argp`).
#[derive(Debug, Default)]
struct SlotMap {
    locals_bits: u32,
    locals: Vec<u32>,
    args: Vec<u32>,
}

/// Pointer maps decoded once per pc: the frames of a big process stop at a few hundred.
#[derive(Default)]
struct Slots {
    maps: HashMap<u64, Option<SlotMap>>,
}

impl Slots {
    /// The addresses of the slots of a frame stopped at a call that hold a live pointer
    /// there, as the runtime's garbage collector scans them: its locals pointer map (below
    /// `varp`) and its arguments pointer map (from `argp`), both at the index
    /// `PCDATA_StackMapIndex` gives for the call, added to `out`. False without the maps. The
    /// contents of address-taken locals (stack objects) are not read.
    fn of(&mut self, rt: &Runtime, f: &crate::snapshot::Frame, out: &mut Vec<u64>) -> bool {
        let Some(map) = self.maps.entry(f.pc).or_insert_with(|| slot_map(rt, f.pc)) else {
            return false;
        };
        let varp = super::defers::frame_varp(rt, f);
        if varp > f.sp() {
            let base = varp.wrapping_sub(u64::from(map.locals_bits) * 8);
            out.extend(
                map.locals
                    .iter()
                    .map(|&j| base.wrapping_add(8 * u64::from(j))),
            );
        }
        let argp = f.fp().wrapping_add(rt.bin.arch.min_frame_size());
        out.extend(
            map.args
                .iter()
                .map(|&j| argp.wrapping_add(8 * u64::from(j))),
        );
        true
    }
}

/// The pointer maps of a frame stopped at `pc` ([`Slots::of`]).
fn slot_map(rt: &Runtime, pc: u64) -> Option<SlotMap> {
    use crate::binary::pclntab::{
        FUNCDATA_ARGS_POINTER_MAPS, FUNCDATA_LOCALS_POINTER_MAPS, PCDATA_STACK_MAP_INDEX,
    };
    let tab = &rt.bin.pclntab;
    let func = tab.func_for_pc(pc)?;
    let target = if pc == tab.entry(func) { pc } else { pc - 1 };
    let idx = tab
        .pcdata(func, PCDATA_STACK_MAP_INDEX, target)
        .filter(|&i| i >= 0)
        .unwrap_or(0);
    // One bitmap of a `runtime.stackmap`: {n int32, nbit int32, bytedata [n][(nbit+7)/8]}.
    let bitmap = |data: &[u8]| -> Option<(u32, Vec<u32>)> {
        let word = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
        let (n, nbit) = (word(0)?, word(4)?);
        if idx as u32 >= n || nbit > MAX_MAP_BITS {
            return None;
        }
        let len = nbit.div_ceil(8) as usize;
        let at = 8usize.checked_add((idx as usize).checked_mul(len)?)?;
        let bytes = data.get(at..at.checked_add(len)?)?;
        Some((
            nbit,
            (0..nbit)
                .filter(|&j| bytes[j as usize / 8] & (1 << (j % 8)) != 0)
                .collect(),
        ))
    };
    let locals = tab.funcdata_bytes(func, FUNCDATA_LOCALS_POINTER_MAPS);
    let args = tab.funcdata_bytes(func, FUNCDATA_ARGS_POINTER_MAPS);
    if locals.is_none() && args.is_none() {
        return None;
    }
    let (locals_bits, locals) = locals.and_then(bitmap).unwrap_or_default();
    let args = args.and_then(bitmap).map(|(_, a)| a).unwrap_or_default();
    Some(SlotMap {
        locals_bits,
        locals,
        args,
    })
}

/// Adds to each target outside the globals the heap object containing it, when the heap's
/// spans can be read (else a pointer must point at the lock itself).
fn heap_objects(
    rt: &Runtime,
    mem: &impl MemoryReader,
    fetch: &dyn CopyInto,
    targets: &mut [Target],
) {
    // What `fetch` does not bring (a core) is read through `mem`.
    let both = |reqs: &[(u64, u64)], img: &mut MemoryImage| {
        fetch.copy_into(reqs, img);
        for &(a, l) in reqs {
            if img.contains(a, l) {
                continue;
            }
            let Ok(n) = usize::try_from(l) else { continue };
            let mut buf = vec![0u8; n];
            if mem.read_at(a, &mut buf).is_ok() {
                img.insert(a, buf);
            }
        }
    };
    let addrs: Vec<u64> = targets.iter().map(|t| t.addr).collect();
    let Ok(heap) = super::leaks::copy_spans(rt, &both, &addrs) else {
        return;
    };
    let Ok(objects) = super::leaks::objects_of(&heap, &addrs) else {
        return;
    };
    for (t, o) in targets.iter_mut().zip(objects) {
        if let Some((base, size)) = o {
            t.pointee.push((base, base.saturating_add(size)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_mutex(addr: u64) -> SyncObject {
        SyncObject {
            kind: "sync.Mutex".into(),
            addr,
            fields: vec![("state".into(), 1)],
            waiters: [("sync.Mutex.Lock".to_string(), 2)].into(),
            ..Default::default()
        }
    }

    fn holder(goroutine: u64) -> Holder {
        Holder {
            goroutine,
            lock: "write".into(),
            how: "pointer".into(),
            ..Default::default()
        }
    }

    /// A search run for locks that may turn out to matter (before the walk, every kind of
    /// lock a semaphore may belong to) attaches only the holders of those that do: here the
    /// held Mutex with waiters, not the RWMutex read at the same address, nor a Mutex nobody
    /// waits for; in order of address, then goroutine.
    #[test]
    fn attach_keeps_the_holders_of_the_locks_that_matter() {
        let (a, b, c) = (0x1000, 0x2000, 0x3000);
        let mut rw = held_mutex(a);
        rw.kind = "sync.RWMutex".into();
        let locks = [
            held_mutex(a),
            rw,
            held_mutex(b),
            SyncObject {
                waiters: Default::default(),
                ..held_mutex(c)
            },
        ];
        let targets: Vec<Target> = locks.iter().filter_map(Target::of).collect();
        let finder = Finder {
            reach: Reach::of(&targets),
            targets,
        };
        let mut objects = vec![held_mutex(a), held_mutex(b), locks[3].clone()];
        let found = vec![
            (2, holder(9)),
            (1, holder(8)),
            (0, holder(7)),
            (3, holder(6)),
            (0, holder(5)),
        ];
        finder.attach(found, &mut objects);
        let ids = |o: &SyncObject| o.holders.iter().map(|h| h.goroutine).collect::<Vec<_>>();
        assert_eq!(ids(&objects[0]), [5, 7]);
        assert_eq!(ids(&objects[1]), [9]);
        assert_eq!(ids(&objects[2]), Vec::<u64>::new());
    }
}
