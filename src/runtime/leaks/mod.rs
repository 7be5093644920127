//! Leaked goroutines by reachability, from the outside: the analysis the Go 1.27 runtime runs
//! for its `goroutineleak` profile (`findGoroutineLeaks`, `findMaybeRunnableGoroutines` and
//! `isMaybeRunnable` in `src/runtime/mgc.go`), done on a copy of the target's memory for every
//! supported Go version.
//!
//! Roots are the globals that may hold pointers (`moduledata.data`–`edata` and `bss`–`ebss` of
//! every module, without `runtime.semtable`, whose sudogs point at every semaphore), the
//! finalizer, cleanup and weak-handle records of the spans (the objects with a finalizer are
//! scanned, not marked, as the runtime's `markrootSpans` does), the registers of every thread
//! of a live target that runs a goroutine, and the stack (from its saved sp up, as the
//! runtime's `scanstack`) and g of every goroutine that may still run: running, runnable, in a
//! system call, or waiting on anything but a channel or a sync object.
//!
//! Marking is conservative: every aligned word that points into an in-use heap span marks the
//! object it points into (object bounds from the span's start and element size), and marked
//! objects of scan spans are scanned in turn; noscan spans are never read. Three kinds of word
//! are passed over: the end of a stack that follows its start (a g's `stack.hi`, which points
//! just past the stack), and the g structs and sudogs of the goroutines, which are marked when
//! reached through the heap (`allgs`, a channel's wait queue) but never scanned: a sudog points
//! at the channel or semaphore it waits on, which is what the runtime hides from its own
//! marking for this analysis.
//!
//! Then a goroutine blocked on a channel (any channel of its select) or sync object that is
//! marked, or not in the heap at all, becomes a root, and marking goes on until nothing
//! changes. Goroutines left blocked only on unmarked objects are leaked, as are those blocked
//! forever by definition (`select {}`, a nil channel) and those the runtime's own leak GC left
//! in the `leaked` status, except the main goroutine in `select {}`, which the runtime does not
//! report either.
//!
//! A word that only looks like a pointer marks an object the program cannot reach, so the
//! analysis may miss a leak but never invents one, provided everything it reads is of one
//! instant: a live target's globals, span metadata and scan spans are copied inside the frozen
//! window ([`copy_heap`]), with the goroutines and their stacks.

mod copy;
mod mark;
#[cfg(test)]
mod tests;

pub(crate) use copy::{copy_heap, copy_spans};

use super::Runtime;
use crate::snapshot::{Goroutine, Status};
use crate::target::MemoryReader;
use crate::target::image::MemoryImage;
use mark::{Index, Marker, live_stack};
use std::collections::HashMap;

/// Most heap arenas read (64 MiB each: 4 TiB of heap).
pub(crate) const MAX_ARENAS: u64 = 1 << 16;
/// Most in-use spans indexed.
pub(crate) const MAX_SPANS: usize = 1 << 23;
/// Most bytes of scan spans copied (a larger heap is refused, not cut: a span left out could
/// hold the only pointer to a channel).
pub(crate) const MAX_HEAP_BYTES: u64 = 64 << 30;
/// Most bytes of in-use spans, scan and noscan (the page index has a slot a page).
pub(crate) const MAX_SPAN_BYTES: u64 = 256 << 30;
/// Most bytes of globals (data and bss of every module) copied.
pub(crate) const MAX_GLOBALS_BYTES: u64 = 1 << 30;
/// Most modules followed through `moduledata.next`.
pub(crate) const MAX_MODULES: usize = 256;
/// Most heap objects indexed, one mark bit each (one per 16 bytes of the largest heap accepted).
pub(crate) const MAX_MARKED: usize = (MAX_HEAP_BYTES / 16) as usize;
/// Most rounds of "blocked goroutines whose object became reachable become roots": each
/// round after the first adds at least one goroutine, so this also bounds the goroutines.
pub(crate) const MAX_ROUNDS: usize = 1 << 24;

/// `heapArenaBytes` on 64-bit Linux.
const HEAP_ARENA_BYTES: u64 = 64 << 20;
/// `pageSize`.
const PAGE_SIZE: u64 = 8192;
/// `pagesPerArena`.
const PAGES_PER_ARENA: u64 = HEAP_ARENA_BYTES / PAGE_SIZE;
/// `maxSmallSize`: the largest object of a size class (spans of them are at most 10 pages, so
/// the runtime's 32-bit `divMul` is exact for their offsets).
const SMALL_OBJECT_MAX: u64 = 32768;
/// `mSpanInUse`.
const SPAN_IN_USE: u64 = 1;
/// `mSpanManual`: stacks, among others.
const SPAN_MANUAL: u64 = 2;
/// Smallest goroutine stack (`fixedStack` on Linux).
const MIN_STACK: u64 = 2048;
/// Longest `runtime.mspan` read (the fields used are in its first 144 bytes).
const MSPAN_READ: u64 = 160;
/// Most special records (finalizers, cleanups, weak handles, profile samples) followed
/// through the spans' `specials` lists.
pub(crate) const MAX_SPECIALS: usize = 1 << 22;

/// One in-use span of the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// `startAddr`.
    pub start: u64,
    /// `startAddr + npages * pageSize`.
    pub end: u64,
    /// `elemsize`.
    pub elemsize: u64,
    /// Objects may hold pointers (the span class's noscan bit is clear).
    pub scan: bool,
}

/// The words of a scan span that may point into the heap (or at a stack), by offset: all that
/// marking reads of it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SparseSpan {
    /// Offsets from the span's start, ascending.
    pub offs: Vec<u32>,
    /// The word at each offset.
    pub words: Vec<u64>,
}

impl SparseSpan {
    /// Keeps the aligned words of `bytes` (the span's bytes from offset `at`) in `[lo, hi)`.
    fn extend(&mut self, at: u32, bytes: &[u8], lo: u64, hi: u64) {
        let skip = ((8 - at % 8) % 8) as usize;
        let width = hi.saturating_sub(lo);
        for (k, w) in bytes
            .get(skip..)
            .unwrap_or_default()
            .chunks_exact(8)
            .enumerate()
        {
            let v = u64::from_le_bytes(w.try_into().unwrap_or_default());
            if v.wrapping_sub(lo) < width {
                self.offs.push(at + skip as u32 + 8 * k as u32);
                self.words.push(v);
            }
        }
    }
}

/// The target's heap and globals as copied for the analysis.
#[derive(Debug, Default)]
pub struct Heap {
    /// Globals, span metadata, and the bytes of the scan spans kept whole (those of the size
    /// classes of sudogs and channels, which the wait analysis reads field by field).
    pub image: MemoryImage,
    /// The other scan spans, by index in `spans`, as the words that may be pointers (empty
    /// for spans kept whole in `image` and for noscan spans).
    pub sparse: Vec<SparseSpan>,
    /// In-use spans, sorted by start, not overlapping.
    pub spans: Vec<Span>,
    /// `[lo, hi)` of every module's data and bss.
    pub globals: Vec<(u64, u64)>,
    /// `runtime.semtable`'s bytes, left out of the roots.
    pub semtable: Option<(u64, u64)>,
    /// Spans of manually managed memory (stacks), sorted by start.
    pub stack_spans: Vec<(u64, u64)>,
    /// Words of the spans' finalizer, cleanup and weak-handle records (their functions,
    /// closures and handles): marked as roots, as the runtime's `markrootSpans` does.
    pub special_words: Vec<u64>,
    /// Objects with a finalizer: scanned as roots but not marked themselves (what they point
    /// to stays alive until the finalizer has run).
    pub finalized: Vec<u64>,
    /// The registers of every stopped thread, as words, by thread id: a running goroutine may
    /// hold the only pointer to an object in one.
    pub registers: Vec<(i32, Vec<u64>)>,
    /// Bytes of scan spans copied.
    pub heap_bytes: u64,
    /// Bytes of noscan spans not copied.
    pub noscan_bytes: u64,
}

/// What a goroutine waits on, as the runtime's `isMaybeRunnable` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wait {
    /// May run: a root.
    Root,
    /// Never runs again (`select {}`, a nil channel).
    Never,
    /// Runs again once one of these objects is reachable.
    On(Vec<u64>),
}

fn classify(g: &Goroutine) -> Wait {
    // Found leaked by the runtime's own leak GC (Go 1.26+): it stays so until the next one.
    if g.status == Status::LEAKED {
        return Wait::Never;
    }
    // Its stack could not be read (`--nonblocking`: it kept changing): it may run.
    if g.frames.is_empty() && g.stack_error.is_some() {
        return Wait::Root;
    }
    if g.status != Status::WAITING {
        return Wait::Root;
    }
    let state = &*g.state;
    let objs = |kinds: &[&str]| -> Vec<u64> {
        g.blocked_on
            .iter()
            .filter(|b| kinds.contains(&&*b.kind))
            .map(|b| b.addr)
            .collect()
    };
    let objs = match state {
        "select (no cases)" | "chan send (nil chan)" | "chan receive (nil chan)" => {
            return Wait::Never;
        }
        "chan receive" | "chan send" | "select" => objs(&["chan"]),
        // The sync waits (`isSyncWait`); before Go 1.20 WaitGroup.Wait and Mutex.Lock waited
        // as `semacquire`, told apart here by the frames (`blocked::sync_object`).
        "semacquire"
        | "sync.Mutex.Lock"
        | "sync.RWMutex.Lock"
        | "sync.RWMutex.RLock"
        | "sync.WaitGroup.Wait"
        | "sync.Cond.Wait" => objs(&["sync.Mutex", "sync.RWMutex", "sync.WaitGroup"]),
        _ => return Wait::Root,
    };
    // Nothing known to wait on (not found, or a wait the runtime does not judge): a root.
    if objs.is_empty() {
        Wait::Root
    } else {
        Wait::On(objs)
    }
}

/// The heap object each of `addrs` points into, `(base, elemsize)` (`None`: not in an in-use
/// span), by the spans of `heap`.
pub(crate) fn objects_of(heap: &Heap, addrs: &[u64]) -> Result<Vec<Option<(u64, u64)>>, String> {
    let index = Index::new(heap, [])?;
    Ok(addrs
        .iter()
        .map(|&a| {
            let (_, base, i) = index.object_of(a)?;
            Some((base, heap.spans[i].elemsize))
        })
        .collect())
}

/// The analysis' result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Indexes (into the goroutines analysed) of the leaked ones, in their order.
    pub leaked: Vec<usize>,
    /// Goroutines that were roots at the end.
    pub roots: usize,
    /// Rounds of the fixed point.
    pub rounds: usize,
    /// Objects marked.
    pub marked: usize,
    /// In-use spans, and how many of them are scan spans.
    pub spans: (usize, usize),
    /// Bytes of scan spans copied and of noscan spans not copied.
    pub heap_bytes: (u64, u64),
}

/// Finds the leaked goroutines of `gs` (with `blocked_on` filled by `blocked::analyze`).
/// `stacks` holds the goroutines' g structs and stacks as copied with `heap`.
pub fn find(
    rt: &Runtime,
    heap: &Heap,
    stacks: &MemoryImage,
    gs: &[Goroutine],
) -> Result<Report, String> {
    // The goroutines' g structs, and the sudogs they wait in, are marked but never scanned:
    // a sudog points at the channel or semaphore its goroutine waits on, which the runtime
    // hides from its own marking for this analysis (Go 1.27's `maybeTraceablePtr` in
    // `sudog.elem` and `sudog.c`); from a stale word elsewhere it would make a leaked
    // goroutine's channel look reachable.
    let opaque = gs
        .iter()
        .map(|g| g.addr)
        .chain(gs.iter().flat_map(|g| g.blocked_on.iter().map(|b| b.sudog)))
        .filter(|&a| a != 0);
    let mut m = Marker {
        index: Index::new(heap, opaque)?,
        marked: 0,
        queue: Vec::new(),
    };
    mark_global_roots(&mut m, heap, gs);
    let waits: Vec<Wait> = gs.iter().map(classify).collect();
    let mut rooted = vec![false; gs.len()];
    let root = |m: &mut Marker, i: usize| {
        let g = &gs[i];
        if let Ok(raw) = super::goroutines::read_g(rt, stacks, g.addr) {
            let (lo, hi) = live_stack(&raw);
            for (at, bytes) in stacks.ranges_in(lo, hi) {
                m.scan(at, bytes);
            }
        }
        if let Some(b) = stacks.slice(g.addr, rt.layout.g_size) {
            m.scan(g.addr, b);
        }
    };
    for i in 0..gs.len() {
        if waits[i] == Wait::Root {
            rooted[i] = true;
            root(&mut m, i);
        }
    }
    m.drain();
    let mut rounds = 1;
    loop {
        let mut more = false;
        for i in 0..gs.len() {
            if rooted[i] {
                continue;
            }
            if let Wait::On(objs) = &waits[i]
                && objs.iter().any(|&o| m.reachable(o))
            {
                rooted[i] = true;
                more = true;
                root(&mut m, i);
            }
        }
        if !more {
            break;
        }
        m.drain();
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(format!("no fixed point after {MAX_ROUNDS} rounds"));
        }
    }
    let leaked = (0..gs.len())
        .filter(|&i| !rooted[i])
        .filter(|&i| !(gs[i].id == 1 && &*gs[i].state == "select (no cases)"))
        .collect();
    Ok(Report {
        leaked,
        roots: rooted.iter().filter(|&&r| r).count(),
        rounds,
        marked: m.marked,
        spans: (
            heap.spans.len(),
            heap.spans.iter().filter(|s| s.scan).count(),
        ),
        heap_bytes: (heap.heap_bytes, heap.noscan_bytes),
    })
}

/// Marks from every root that is not a goroutine's stack: the globals (without the
/// semaphore table), the finalizer, cleanup and weak-handle records, and the registers of the
/// threads running a goroutine.
fn mark_global_roots(m: &mut Marker<'_>, heap: &Heap, gs: &[Goroutine]) {
    // Globals, without the semaphore table.
    for &(lo, hi) in &heap.globals {
        let mut cut = vec![(lo, hi)];
        if let Some((slo, shi)) = heap.semtable
            && slo < hi
            && shi > lo
        {
            cut = vec![(lo, slo.max(lo)), (shi.min(hi), hi)];
        }
        for (a, b) in cut {
            for (at, bytes) in heap.image.ranges_in(a, b) {
                m.scan(at, bytes);
            }
        }
    }
    // The finalizer, cleanup and weak-handle records; objects with a finalizer are scanned,
    // not marked.
    for &w in &heap.special_words {
        m.mark(w);
    }
    for &p in &heap.finalized {
        if let Some((_, base, i)) = m.index.object_of(p)
            && heap.spans[i].scan
        {
            m.scan_object(base, i);
        }
    }
    // The registers of threads running a goroutine, as the runtime sees them when it stops
    // one to scan its stack. An idle thread's, or one in a system call, hold words left over
    // from the scheduler or the call's arguments, which the runtime never reads. All threads
    // when a running goroutine's thread is not known.
    let running: Vec<Option<i32>> = gs
        .iter()
        .filter(|g| g.status == Status::RUNNING)
        .map(|g| g.thread)
        .collect();
    for (tid, words) in &heap.registers {
        if running.contains(&None) || running.contains(&Some(*tid)) {
            for &w in words {
                m.mark(w);
            }
        }
    }
}

/// Leaked goroutines grouped by creation site and stack, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// How many.
    pub count: usize,
    /// Their wait reason.
    pub state: String,
    /// `created by` function and file:line.
    pub created_by: String,
    /// Their frames as the traceback shows them, function and file:line.
    pub frames: Vec<String>,
    /// What they wait on: kind and address of each object.
    pub objects: Vec<(String, u64)>,
    /// Their goroutine ids.
    pub ids: Vec<u64>,
}

/// Groups leaked goroutines by creation site, frames and wait reason (largest group first).
pub fn groups<'g>(leaked: impl IntoIterator<Item = &'g Goroutine>) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut by_key: HashMap<(String, String, Vec<String>), usize> = HashMap::new();
    for g in leaked {
        let created_by = g
            .created_by
            .as_ref()
            .map(|c| format!("{} {}:{}", c.function, c.file, c.line))
            .unwrap_or_default();
        let frames: Vec<String> = g
            .frames
            .iter()
            .filter(|f| !f.hidden)
            .map(|f| format!("{} {}:{}", f.function, f.file, f.line))
            .collect();
        let key = (created_by.clone(), g.state.to_string(), frames.clone());
        let i = *by_key.entry(key).or_insert_with(|| {
            out.push(Group {
                count: 0,
                state: g.state.to_string(),
                created_by,
                frames,
                objects: Vec::new(),
                ids: Vec::new(),
            });
            out.len() - 1
        });
        let grp = &mut out[i];
        grp.count += 1;
        grp.ids.push(g.id);
        for b in &g.blocked_on {
            if !grp.objects.iter().any(|(_, a)| *a == b.addr) {
                grp.objects.push((b.kind.to_string(), b.addr));
            }
        }
    }
    out.sort_by_key(|g| std::cmp::Reverse(g.count));
    out
}
