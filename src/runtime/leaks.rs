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

use super::Runtime;
use super::goroutines::CopyFn;
use super::layout::F;
use crate::arch::Arch;
use crate::snapshot::{Goroutine, Status};
use crate::target::image::MemoryImage;
use crate::target::{MemoryReader, ReadExt};
use std::collections::{HashMap, HashSet};

/// Most heap arenas read (64 MiB each: 4 TiB of heap).
pub const MAX_ARENAS: u64 = 1 << 16;
/// Most in-use spans indexed.
pub const MAX_SPANS: usize = 1 << 23;
/// Most bytes of scan spans copied (a larger heap is refused, not cut: a span left out could
/// hold the only pointer to a channel).
pub const MAX_HEAP_BYTES: u64 = 64 << 30;
/// Most bytes of in-use spans, scan and noscan (the page index has a slot a page).
pub const MAX_SPAN_BYTES: u64 = 256 << 30;
/// Most bytes of globals (data and bss of every module) copied.
pub const MAX_GLOBALS_BYTES: u64 = 1 << 30;
/// Most modules followed through `moduledata.next`.
pub const MAX_MODULES: usize = 256;
/// Most heap objects indexed, one mark bit each (one per 16 bytes of the largest heap accepted).
pub const MAX_MARKED: usize = (MAX_HEAP_BYTES / 16) as usize;
/// Most rounds of "blocked goroutines whose object became reachable become roots": each
/// round after the first adds at least one goroutine, so this also bounds the goroutines.
pub const MAX_ROUNDS: usize = 1 << 24;

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
pub const MAX_SPECIALS: usize = 1 << 22;

/// Where a version keeps what the analysis reads of a `runtime.special` record and its
/// kinds (`_KindSpecial*` in `src/runtime/mheap.go`): the header's size (the `offset` field
/// was a `uint16` up to Go 1.23, a `uintptr` from 1.24), and the kinds that are roots with
/// the words after the header to mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SpecialKinds {
    header: u64,
    kind_at: u64,
    finalizer: u8,
    /// `specialWeakHandle.handle` (Go 1.23+).
    weak_handle: Option<u8>,
    /// `specialCleanup` (Go 1.24+) and its words before `id`.
    cleanup: Option<(u8, u64)>,
}

/// Words of a `specialfinalizer` after its header: `fn`, `nret`, `fint`, `ot`.
const FINALIZER_WORDS: u64 = 4;

fn special_kinds(minor: u32) -> SpecialKinds {
    let (header, kind_at) = if minor >= 24 { (24, 16) } else { (16, 10) };
    let (finalizer, weak_handle, cleanup) = match minor {
        ..=22 => (1, None, None),
        23 => (1, Some(2), None),
        24 => (1, Some(2), Some((6, 1))),
        // `fn`; from Go 1.26 a `cleanupFn` of `call`, `fn` and `arg`.
        25 => (2, Some(3), Some((7, 1))),
        _ => (2, Some(3), Some((7, 3))),
    };
    SpecialKinds {
        header,
        kind_at,
        finalizer,
        weak_handle,
        cleanup,
    }
}

/// `arenaBaseOffset`: arena `i` starts at `i * heapArenaBytes + arenaBaseOffset`.
fn arena_base_offset(arch: Arch) -> u64 {
    match arch {
        Arch::Amd64 => 0xffff_8000_0000_0000,
        Arch::Arm64 => 0,
    }
}

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

/// Object lookup and mark bits over the spans of a [`Heap`]: the span of a page by its arena
/// and page number, each span's objects one bit each.
struct Index<'h> {
    heap: &'h Heap,
    /// `[lo, hi)` covers every span: most words that are not pointers fail this first.
    lo: u64,
    hi: u64,
    /// Arena number (address / 64 MiB) of `lo`.
    first_arena: u64,
    /// By arena number from `first_arena` (the arenas `lo`–`hi` span): its index in `pages`
    /// + 1 (0: none).
    arenas: Vec<u32>,
    /// For each page of an arena, span index + 1 (0: none).
    pages: Vec<Vec<u32>>,
    /// Each span's first bit in `bits`.
    first_bit: Vec<usize>,
    /// Each span's `divMul` (`^uint32(0)/elemsize + 1`, as the runtime's `mspan.divMul`):
    /// an object's index is `offset * divMul >> 32` for any offset inside a small-object span;
    /// 0 for spans of large objects, whose offsets are divided.
    div_mul: Vec<u64>,
    /// Each scan span's bytes, when copied in one piece (the usual case).
    span_bytes: Vec<Option<&'h [u8]>>,
    /// Mark bits, one per object.
    bits: Vec<u64>,
    /// Objects that are marked but never scanned, one bit per object as in `bits`.
    opaque: Vec<u64>,
}

impl<'h> Index<'h> {
    /// Indexes `heap`'s spans; `opaque` are the objects to mark but never scan.
    fn new(heap: &'h Heap, opaque: impl IntoIterator<Item = u64>) -> Result<Index<'h>, String> {
        let lo = heap.spans.first().map_or(0, |s| s.start);
        let hi = heap.spans.last().map_or(0, |s| s.end);
        let first_arena = lo / HEAP_ARENA_BYTES;
        let n_arenas = (hi.div_ceil(HEAP_ARENA_BYTES)).saturating_sub(first_arena);
        if n_arenas > MAX_ARENAS {
            return Err(format!(
                "the heap's spans are spread over more than {MAX_ARENAS} arenas"
            ));
        }
        let mut arenas = vec![0u32; n_arenas as usize];
        let mut pages: Vec<Vec<u32>> = Vec::new();
        let mut first_bit = Vec::with_capacity(heap.spans.len());
        let mut div_mul = Vec::with_capacity(heap.spans.len());
        let mut nbits = 0usize;
        for (i, s) in heap.spans.iter().enumerate() {
            first_bit.push(nbits);
            div_mul.push(if s.elemsize <= SMALL_OBJECT_MAX {
                u64::from(u32::MAX) / s.elemsize + 1
            } else {
                0
            });
            nbits = nbits.saturating_add(((s.end - s.start) / s.elemsize) as usize);
            if nbits > MAX_MARKED {
                return Err(format!("more than {MAX_MARKED} heap objects"));
            }
            let mut page = s.start;
            while page < s.end {
                let a = (page / HEAP_ARENA_BYTES - first_arena) as usize;
                if arenas[a] == 0 {
                    pages.push(vec![0; PAGES_PER_ARENA as usize]);
                    arenas[a] = pages.len() as u32;
                }
                pages[arenas[a] as usize - 1][((page % HEAP_ARENA_BYTES) / PAGE_SIZE) as usize] =
                    i as u32 + 1;
                page += PAGE_SIZE;
            }
        }
        let mut index = Index {
            heap,
            lo,
            hi,
            first_arena,
            arenas,
            pages,
            first_bit,
            div_mul,
            span_bytes: heap
                .spans
                .iter()
                .map(|s| {
                    s.scan
                        .then(|| heap.image.slice(s.start, s.end - s.start))
                        .flatten()
                })
                .collect(),
            bits: vec![0; nbits.div_ceil(64)],
            opaque: vec![0; nbits.div_ceil(64)],
        };
        for p in opaque {
            if let Some((bit, _, _)) = index.object_of(p) {
                index.opaque[bit / 64] |= 1 << (bit % 64);
            }
        }
        Ok(index)
    }

    /// The object `p` points into: its bit, base address and span index.
    fn object_of(&self, p: u64) -> Option<(usize, u64, usize)> {
        if p < self.lo || p >= self.hi {
            return None;
        }
        let a = *self
            .arenas
            .get((p / HEAP_ARENA_BYTES - self.first_arena) as usize)?;
        let slots = &self.pages[a.checked_sub(1)? as usize];
        let i = slots[((p % HEAP_ARENA_BYTES) / PAGE_SIZE) as usize].checked_sub(1)? as usize;
        let s = &self.heap.spans[i];
        let off = p - s.start;
        let n = match self.div_mul[i] {
            0 => off / s.elemsize,
            m => (off * m) >> 32,
        };
        let base = s.start + n * s.elemsize;
        (base.checked_add(s.elemsize)? <= s.end).then_some((
            self.first_bit[i] + n as usize,
            base,
            i,
        ))
    }
}

/// Copies what the analysis reads: every module's data and bss, the heap's arena and span
/// metadata and the bytes of every in-use scan span, in a few batched rounds through `fetch`
/// (inside the frozen window for a live target). `mem` reads what `fetch` copied.
pub fn copy_heap(rt: &Runtime, fetch: &mut CopyFn<'_>) -> Result<Heap, String> {
    let (mut h, specials) = spans(rt, fetch)?;
    // Then the special records, a round for each record of the longest list.
    copy_specials(rt, fetch, &mut h, &specials)?;
    // Last rounds: the scan spans' bytes.
    for s in &h.spans {
        if s.scan {
            h.heap_bytes += s.end - s.start;
        } else {
            h.noscan_bytes += s.end - s.start;
        }
    }
    if h.heap_bytes > MAX_HEAP_BYTES {
        return Err(format!(
            "the heap's scan spans hold {} bytes, more than goroscope copies ({MAX_HEAP_BYTES})",
            h.heap_bytes
        ));
    }
    copy_scan_spans(fetch, &mut h)?;
    Ok(h)
}

/// The globals and the heap's in-use spans as [`copy_heap`] copies them, without the spans'
/// bytes and special records: enough to tell which object an address is in
/// ([`objects_of`]).
pub fn copy_spans(rt: &Runtime, fetch: &mut CopyFn<'_>) -> Result<Heap, String> {
    spans(rt, fetch).map(|(h, _)| h)
}

/// The heap object each of `addrs` points into, `(base, elemsize)` (`None`: not in an in-use
/// span), by the spans of `heap`.
pub fn objects_of(heap: &Heap, addrs: &[u64]) -> Result<Vec<Option<(u64, u64)>>, String> {
    let index = Index::new(heap, [])?;
    Ok(addrs
        .iter()
        .map(|&a| {
            let (_, base, i) = index.object_of(a)?;
            Some((base, heap.spans[i].elemsize))
        })
        .collect())
}

/// Span records: `(start, end, elemsize, first special record)`.
type SpecialsOf = Vec<(u64, u64, u64, u64)>;

/// [`copy_spans`], and the spans with special records.
fn spans(rt: &Runtime, fetch: &mut CopyFn<'_>) -> Result<(Heap, SpecialsOf), String> {
    let l = &rt.layout;
    let need = |f: F| {
        l.off(f).ok_or_else(|| {
            format!(
                "the runtime layout of go1.{} lacks {f:?}; leak analysis needs it",
                rt.bin.version.minor
            )
        })
    };
    let (arenas_off, all_off, spans_off) = (
        need(F::MheapArenas)?,
        l.off(F::MheapAllArenas)
            .map_or_else(|| need(F::MheapHeapArenas), Ok)?,
        need(F::HeapArenaSpans)?,
    );
    for f in [
        F::ModData,
        F::ModEdata,
        F::ModBss,
        F::ModEbss,
        F::MspanStartAddr,
        F::MspanNpages,
        F::MspanElemsize,
        F::MspanSpanclass,
        F::MspanState,
        F::MspanSpecials,
    ] {
        need(f)?;
    }
    let mut h = Heap::default();
    // `&mheap_.arenas` and `&mheap_.allArenas` (see `layout::ARCH_DEPENDENT`).
    let arenas_at = match rt.bin.symbol("runtime.mheap_") {
        Some(s) if l.source == super::layout::LayoutSource::Dwarf => {
            s.addr.wrapping_add(rt.bias).wrapping_add(arenas_off)
        }
        _ => find_arenas(rt, fetch, &mut h.image)?,
    };
    let all_at = arenas_at.wrapping_add(all_off).wrapping_sub(arenas_off);
    // Round 1: the module list and the heap's roots of its arena tables.
    let mut mods = Vec::new();
    let mut md = rt.moduledata;
    while md != 0 && mods.len() < MAX_MODULES && !mods.contains(&md) {
        fetch(&[(md, l.moduledata_size.max(8))], &mut h.image);
        mods.push(md);
        md = l.read(F::ModNext, &h.image, md).unwrap_or(0);
    }
    fetch(&[(arenas_at, 8), (all_at, 24)], &mut h.image);
    let mut reqs = Vec::new();
    let mut total = 0u64;
    for &md in &mods {
        for (lo, hi) in [(F::ModData, F::ModEdata), (F::ModBss, F::ModEbss)] {
            let (Some(a), Some(b)) = (l.read(lo, &h.image, md), l.read(hi, &h.image, md)) else {
                return Err(format!("cannot read moduledata at {md:#x}"));
            };
            if a % 8 != 0 || b < a {
                return Err(format!("moduledata at {md:#x}: globals {a:#x}-{b:#x}"));
            }
            total = total.saturating_add(b - a);
            if total > MAX_GLOBALS_BYTES {
                return Err("the globals are larger than goroscope accepts".into());
            }
            h.globals.push((a, b));
            reqs.push((a, b - a));
        }
    }
    let unread = |what: &str| format!("cannot read {what} of the heap (runtime.mheap_)");
    let l2 = h.image.read_u64(arenas_at).map_err(|_| unread("arenas"))?;
    let (ptr, len) = (
        h.image.read_u64(all_at).map_err(|_| unread("allArenas"))?,
        h.image
            .read_u64(all_at.wrapping_add(8))
            .map_err(|_| unread("allArenas"))?,
    );
    if len > MAX_ARENAS || l2 == 0 || (len > 0 && ptr == 0) {
        return Err(format!(
            "the heap's arena list does not look right: {len} arenas at {ptr:#x}"
        ));
    }
    // Round 2: the globals and the arena indexes.
    reqs.push((ptr, len * 8));
    fetch(&reqs, &mut h.image);
    h.semtable = super::blocked::semtable(rt, &h.image, fetch, &mut MemoryImage::new())
        .map(|(a, n)| (a, a.saturating_add(n)));
    let idxs: Vec<u64> = (0..len)
        .filter_map(|i| h.image.read_u64(ptr.wrapping_add(i * 8)).ok())
        .filter(|&i| i < 1 << 32)
        .collect();
    // Round 3: each arena's heapArena pointer.
    fetch(
        &idxs
            .iter()
            .map(|&i| (l2.wrapping_add(i * 8), 8))
            .collect::<Vec<_>>(),
        &mut h.image,
    );
    let arenas: Vec<(u64, u64)> = idxs
        .iter()
        .filter_map(|&i| {
            let ha = h
                .image
                .read_u64(l2.wrapping_add(i * 8))
                .ok()
                .filter(|&a| a != 0)?;
            let base = i
                .wrapping_mul(HEAP_ARENA_BYTES)
                .wrapping_add(arena_base_offset(rt.bin.arch));
            Some((base, ha))
        })
        .collect();
    // Round 4: the span pointer of every page.
    fetch(
        &arenas
            .iter()
            .map(|&(_, ha)| (ha.wrapping_add(spans_off), PAGES_PER_ARENA * 8))
            .collect::<Vec<_>>(),
        &mut h.image,
    );
    let mut span_ptrs = HashSet::new();
    for &(_, ha) in &arenas {
        let Some(b) = h
            .image
            .slice(ha.wrapping_add(spans_off), PAGES_PER_ARENA * 8)
        else {
            continue;
        };
        let mut prev = 0;
        for w in b.chunks_exact(8) {
            let p = u64::from_le_bytes(w.try_into().unwrap_or_default());
            if p != 0 && p != prev {
                span_ptrs.insert(p);
                if span_ptrs.len() > MAX_SPANS {
                    return Err(format!("the heap has more than {MAX_SPANS} spans"));
                }
            }
            prev = p;
        }
    }
    // Round 5: the spans.
    let mut specials = Vec::new();
    let mut span_ptrs: Vec<u64> = span_ptrs.into_iter().collect();
    span_ptrs.sort_unstable();
    fetch(
        &span_ptrs
            .iter()
            .map(|&s| (s, MSPAN_READ))
            .collect::<Vec<_>>(),
        &mut h.image,
    );
    let in_arena = |a: u64| {
        arenas
            .iter()
            .any(|&(base, _)| a >= base && a - base < HEAP_ARENA_BYTES)
    };
    for &sp in &span_ptrs {
        let r = |f| l.read(f, &h.image, sp);
        let (Some(start), Some(npages), Some(elemsize), Some(class), Some(state)) = (
            r(F::MspanStartAddr),
            r(F::MspanNpages),
            r(F::MspanElemsize),
            r(F::MspanSpanclass),
            r(F::MspanState),
        ) else {
            continue;
        };
        let Some(end) = npages
            .checked_mul(PAGE_SIZE)
            .and_then(|n| start.checked_add(n))
        else {
            continue;
        };
        if state == SPAN_MANUAL && npages != 0 && in_arena(start) {
            h.stack_spans.push((start, end));
        }
        if state != SPAN_IN_USE
            || npages == 0
            || elemsize == 0
            || start % PAGE_SIZE != 0
            || !in_arena(start)
        {
            continue;
        }
        h.spans.push(Span {
            start,
            end,
            elemsize,
            scan: class & 1 == 0,
        });
        if let Some(first) = r(F::MspanSpecials).filter(|&p| p != 0) {
            specials.push((start, end, elemsize, first));
        }
    }
    h.stack_spans.sort_unstable();
    h.stack_spans.dedup();
    h.spans.sort_unstable_by_key(|s| s.start);
    h.spans.dedup_by_key(|s| s.start);
    // Overlapping spans would be a torn or hostile read: keep the first of each overlap.
    let mut last_end = 0;
    h.spans.retain(|s| {
        let ok = s.start >= last_end;
        if ok {
            last_end = s.end;
        }
        ok
    });
    let span_bytes = h
        .spans
        .iter()
        .fold(0u64, |n, s| n.saturating_add(s.end - s.start));
    if span_bytes > MAX_SPAN_BYTES {
        return Err(format!(
            "the heap's spans hold {span_bytes} bytes, more than goroscope indexes ({MAX_SPAN_BYTES})"
        ));
    }
    Ok((h, specials))
}

/// Size classes of the spans copied whole: those of `runtime.sudog` and `runtime.hchan`
/// (88 to 112 bytes in Go 1.19–1.27), whose fields the wait analysis reads from the copy.
const WHOLE_SPAN_ELEMSIZES: [u64; 2] = [96, 112];
/// Bytes of the other scan spans copied at a time, then reduced to their pointer-like words.
const SPARSE_CHUNK: u64 = 32 << 20;

/// Copies the scan spans: whole for the size classes of sudogs and channels, and as the words
/// that fall in the heap's (and its stacks') address range for the others, a chunk at a time:
/// only those words are ever marked from, and most of a heap's words are not pointers.
fn copy_scan_spans(fetch: &mut CopyFn<'_>, h: &mut Heap) -> Result<(), String> {
    let lo = h.spans.first().map_or(0, |s| s.start);
    let hi = h.spans.last().map_or(0, |s| s.end);
    let (lo, hi) = h
        .stack_spans
        .iter()
        .fold((lo, hi), |(lo, hi), &(a, b)| (lo.min(a), hi.max(b)));
    // Whole: sudog and hchan classes, and spans too large for 32-bit offsets.
    let whole = |s: &Span| {
        WHOLE_SPAN_ELEMSIZES.contains(&s.elemsize) || s.end - s.start > u64::from(u32::MAX)
    };
    let reqs: Vec<(u64, u64)> = h
        .spans
        .iter()
        .filter(|s| s.scan && whole(s))
        .map(|s| (s.start, s.end - s.start))
        .collect();
    fetch(&reqs, &mut h.image);
    let parts: Vec<usize> = (0..h.spans.len())
        .filter(|&i| h.spans[i].scan && !whole(&h.spans[i]))
        .collect();
    // Chunks of about SPARSE_CHUNK bytes: each copied on this thread while another reduces the
    // one before (the copy is what the target waits for).
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &i in &parts {
        if bytes == 0 {
            chunks.push(Vec::new());
        }
        if let Some(c) = chunks.last_mut() {
            c.push(i);
        }
        bytes += h.spans[i].end - h.spans[i].start;
        if bytes >= SPARSE_CHUNK {
            bytes = 0;
        }
    }
    let spans = &h.spans;
    let reduced = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(&[usize], MemoryImage)>(1);
        let reducer = scope.spawn(move || {
            let mut sparse = vec![SparseSpan::default(); spans.len()];
            for (chunk, tmp) in rx {
                for &i in chunk {
                    let s = &spans[i];
                    for (at, b) in tmp.ranges_in(s.start, s.end) {
                        sparse[i].extend((at - s.start) as u32, b, lo, hi);
                    }
                }
            }
            sparse
        });
        for chunk in &chunks {
            let reqs: Vec<(u64, u64)> = chunk
                .iter()
                .map(|&i| (spans[i].start, spans[i].end - spans[i].start))
                .collect();
            let mut tmp = MemoryImage::new();
            fetch(&reqs, &mut tmp);
            if tx.send((chunk, tmp)).is_err() {
                break;
            }
        }
        drop(tx);
        reducer.join()
    });
    h.sparse = reduced.map_err(|_| "reducing the heap's copy failed".to_string())?;
    Ok(())
}

/// Follows the `specials` lists of `spans` (`(start, end, elemsize, first record)`) and
/// keeps what is a root of the heap: the words of finalizer, cleanup and weak-handle records,
/// and the objects finalizers are set on.
fn copy_specials(
    rt: &Runtime,
    fetch: &mut CopyFn<'_>,
    h: &mut Heap,
    spans: &[(u64, u64, u64, u64)],
) -> Result<(), String> {
    let k = special_kinds(rt.bin.version.minor);
    let read_len = k.header + 8 * FINALIZER_WORDS;
    let mut cursors: Vec<(usize, u64)> = spans.iter().map(|s| s.3).enumerate().collect();
    let mut seen = HashSet::new();
    while !cursors.is_empty() {
        let reqs: Vec<(u64, u64)> = cursors.iter().map(|&(_, r)| (r, read_len)).collect();
        fetch(&reqs, &mut h.image);
        let mut next = Vec::new();
        for (i, rec) in cursors {
            if !seen.insert(rec) {
                continue;
            }
            if seen.len() > MAX_SPECIALS {
                return Err(format!(
                    "the heap has more than {MAX_SPECIALS} special records"
                ));
            }
            let Some(b) = h.image.slice(rec, read_len) else {
                continue;
            };
            let word = |at: u64| {
                b.get(at as usize..at as usize + 8)
                    .map_or(0, |w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            };
            let words = |n: u64| (0..n).map(move |j| word(k.header + 8 * j));
            let kind = b.get(k.kind_at as usize).copied().unwrap_or(0);
            let (start, end, elemsize, _) = spans[i];
            if kind == k.finalizer {
                let offset = if k.header == 16 {
                    word(8) & 0xffff
                } else {
                    word(8)
                };
                if offset < end - start {
                    h.finalized.push(start + offset / elemsize * elemsize);
                }
                h.special_words.extend(words(FINALIZER_WORDS));
            } else if Some(kind) == k.weak_handle {
                h.special_words.extend(words(1));
            } else if let Some((c, n)) = k.cleanup
                && c == kind
            {
                h.special_words.extend(words(n));
            }
            let nx = word(0);
            if nx != 0 {
                next.push((i, nx));
            }
        }
        cursors = next;
    }
    Ok(())
}

/// `&runtime.mheap_.arenas` without symbols or DWARF offsets: the data address
/// `runtime.findObject` references (its inlined `spanOf` loads `mheap_.arenas[0]`) whose
/// `allArenas` (at the layout's distance from `arenas`) and first arena read as the heap's.
/// Exactly one candidate must validate.
fn find_arenas(rt: &Runtime, fetch: &mut CopyFn<'_>, img: &mut MemoryImage) -> Result<u64, String> {
    let l = &rt.layout;
    let (Some(arenas_off), Some(all_off)) = (
        l.off(F::MheapArenas),
        l.off(F::MheapAllArenas).or(l.off(F::MheapHeapArenas)),
    ) else {
        return Err("no layout for runtime.mheap".into());
    };
    let delta = all_off.wrapping_sub(arenas_off);
    let refs = super::find::func_refs(&rt.bin, "runtime.findObject", rt.bias)
        .map_err(|e| format!("cannot find runtime.mheap_: {e}"))?;
    let cands: Vec<u64> = refs.iter().map(|r| r.wrapping_add(rt.bias)).collect();
    fetch(
        &cands
            .iter()
            .flat_map(|&c| [(c, 8), (c.wrapping_add(delta), 24)])
            .collect::<Vec<_>>(),
        img,
    );
    let firsts: Vec<(u64, u64, u64)> = cands
        .iter()
        .filter_map(|&c| {
            let all = c.wrapping_add(delta);
            let l2 = img.read_u64(c).ok()?;
            let ptr = img.read_u64(all).ok()?;
            let len = img.read_u64(all.wrapping_add(8)).ok()?;
            let cap = img.read_u64(all.wrapping_add(16)).ok()?;
            let ok = l2 != 0
                && l2 % 8 == 0
                && ptr != 0
                && ptr % 8 == 0
                && len >= 1
                && len <= cap
                && cap <= MAX_ARENAS;
            ok.then_some((c, l2, ptr))
        })
        .collect();
    fetch(
        &firsts.iter().map(|&(_, _, p)| (p, 8)).collect::<Vec<_>>(),
        img,
    );
    let seconds: Vec<(u64, u64)> = firsts
        .iter()
        .filter_map(|&(c, l2, p)| {
            let i = img.read_u64(p).ok().filter(|&i| i < 1 << 32)?;
            Some((c, l2.wrapping_add(i * 8)))
        })
        .collect();
    fetch(
        &seconds.iter().map(|&(_, a)| (a, 8)).collect::<Vec<_>>(),
        img,
    );
    let ok: Vec<u64> = seconds
        .iter()
        .filter(|&&(_, a)| img.read_u64(a).is_ok_and(|ha| ha != 0 && ha % 8 == 0))
        .map(|&(c, _)| c)
        .collect();
    match ok[..] {
        [one] => Ok(one),
        _ => Err(format!(
            "cannot find runtime.mheap_ without symbols: {} of {} candidates validate",
            ok.len(),
            cands.len()
        )),
    }
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
            .filter(|b| kinds.contains(&b.kind.as_str()))
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

/// The part of a goroutine's stack that holds its frames, as the runtime's `scanstack` scans
/// it: from `syscallsp` (in a system call) or `sched.sp` up to `stack.hi`. What lies below is
/// left over from calls that returned, or from the goroutine that ran on this stack before
/// (dead gs keep their stacks for the next `go` statement), and would keep alive what the
/// program can no longer reach. A running goroutine's `sched.sp` is stale: its whole stack is
/// scanned (its thread's registers are roots too).
fn live_stack(raw: &super::goroutines::RawG) -> (u64, u64) {
    let (lo, hi) = (raw.stack.0, raw.stack.1.max(raw.stack.0));
    let sp = if raw.syscall.1 != 0 {
        raw.syscall.1
    } else {
        raw.sched.1
    };
    if raw.status == Status::RUNNING.0 || sp < lo || sp > hi {
        return (lo, hi);
    }
    (sp, hi)
}

/// The mark state: marked objects and the objects still to scan.
struct Marker<'h> {
    index: Index<'h>,
    marked: usize,
    /// Objects to scan: base and span index.
    queue: Vec<(u64, u32)>,
}

impl Marker<'_> {
    /// Marks the object of every aligned word of `bytes` (at `at`).
    /// A word that follows the `lo` of a stack's bounds (a g's `stack`, wherever that g is:
    /// the goroutines', the Ms' g0 and gsignal, `runtime.gcrash`) is its `hi`, the end of the
    /// stack: not a pointer, but it would point at the first heap object after the stack.
    fn scan(&mut self, at: u64, bytes: &[u8]) {
        let skip = ((8 - at % 8) % 8) as usize;
        let mut prev = 0;
        for w in bytes.get(skip..).unwrap_or_default().chunks_exact(8) {
            let p = u64::from_le_bytes(w.try_into().unwrap_or_default());
            if !self.stack_bounds(prev, p) {
                self.mark(p);
            }
            prev = p;
        }
    }

    /// `lo` and `hi` bound a stack: a power of two of at least [`MIN_STACK`] bytes inside one
    /// span of stacks.
    fn stack_bounds(&self, lo: u64, hi: u64) -> bool {
        if hi <= lo || !(hi - lo).is_power_of_two() || hi - lo < MIN_STACK {
            return false;
        }
        let spans = &self.index.heap.stack_spans;
        let i = spans.partition_point(|&(start, _)| start <= lo);
        i > 0 && hi <= spans[i - 1].1
    }

    fn mark(&mut self, p: u64) {
        let Some((bit, base, i)) = self.index.object_of(p) else {
            return;
        };
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.index.bits[word] & mask == 0 {
            self.index.bits[word] |= mask;
            self.marked += 1;
            if self.index.heap.spans[i].scan && self.index.opaque[word] & mask == 0 {
                self.queue.push((base, i as u32));
            }
        }
    }

    /// Scans queued objects until none is left (each object is queued once: the queue never
    /// holds more than the objects there are).
    fn drain(&mut self) {
        while let Some((base, i)) = self.queue.pop() {
            self.scan_object(base, i as usize);
        }
    }

    /// Marks what the object at `base`, in span `i`, points to.
    fn scan_object(&mut self, base: u64, i: usize) {
        let heap = self.index.heap;
        let s = &heap.spans[i];
        let at = (base - s.start) as usize;
        if let Some(bytes) =
            self.index.span_bytes[i].and_then(|b| b.get(at..at + s.elemsize as usize))
        {
            return self.scan(base, bytes);
        }
        if let Some(sp) = heap.sparse.get(i)
            && !sp.offs.is_empty()
        {
            let (from, to) = (at as u64, at as u64 + s.elemsize);
            let mut k = sp.offs.partition_point(|&o| u64::from(o) < from);
            let mut prev = (u32::MAX, 0u64);
            while k < sp.offs.len() && u64::from(sp.offs[k]) < to {
                let (o, w) = (sp.offs[k], sp.words[k]);
                let before = if prev.0.wrapping_add(8) == o {
                    prev.1
                } else {
                    0
                };
                if !self.stack_bounds(before, w) {
                    self.mark(w);
                }
                prev = (o, w);
                k += 1;
            }
            return;
        }
        for (a, b) in heap.image.ranges_in(base, base + s.elemsize) {
            self.scan(a, b);
        }
    }

    /// `isMarkedOrNotInHeap`.
    fn reachable(&self, p: u64) -> bool {
        match self.index.object_of(p) {
            Some((bit, _, _)) => self.index.bits[bit / 64] & (1 << (bit % 64)) != 0,
            None => true,
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
                grp.objects.push((b.kind.clone(), b.addr));
            }
        }
    }
    out.sort_by_key(|g| std::cmp::Reverse(g.count));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A heap of two spans: 64-byte objects that may hold pointers at 0xc000000000 and
    /// pointer-free ones at 0xc000002000.
    fn heap(words: &[(u64, u64)]) -> Heap {
        let scan = 0xc0_0000_0000;
        let noscan = scan + PAGE_SIZE;
        // The words first, then zeros around them (earlier bytes win): objects holding a
        // word are split over ranges, as a copy in several reads can leave them.
        let mut image = MemoryImage::new();
        for &(at, v) in words {
            image.insert(at, v.to_le_bytes().to_vec());
        }
        let mut zeros = MemoryImage::new();
        zeros.insert(scan, vec![0; 2 * PAGE_SIZE as usize]);
        image.absorb(zeros);
        Heap {
            image,
            spans: vec![
                Span {
                    start: scan,
                    end: scan + PAGE_SIZE,
                    elemsize: 64,
                    scan: true,
                },
                Span {
                    start: noscan,
                    end: noscan + PAGE_SIZE,
                    elemsize: 64,
                    scan: false,
                },
            ],
            ..Heap::default()
        }
    }

    fn marker<'h>(h: &'h Heap, opaque: &[u64]) -> Marker<'h> {
        Marker {
            index: Index::new(h, opaque.iter().copied()).unwrap(),
            marked: 0,
            queue: Vec::new(),
        }
    }

    #[test]
    fn marks_through_scan_objects_only() {
        let s = 0xc0_0000_0000u64;
        let n = s + PAGE_SIZE;
        // object 1 -> interior of object 2 -> noscan object 0, whose word points at object 5.
        let h = heap(&[(s + 64, s + 130), (s + 128, n), (n, s + 5 * 64)]);
        let mut m = marker(&h, &[]);
        m.mark(s + 70);
        m.drain();
        assert!(m.reachable(s + 64) && m.reachable(s + 128) && m.reachable(n + 10));
        assert!(!m.reachable(s + 5 * 64), "a noscan object was scanned");
        assert!(!m.reachable(s), "an unreferenced object was marked");
        assert!(
            m.reachable(0x1000),
            "an address outside the heap is reachable"
        );
        assert_eq!(m.marked, 3);
    }

    #[test]
    fn the_end_of_a_stack_marks_nothing() {
        // Stacks in the four pages before the scan span: a g-like object (lo, hi) whose hi is
        // the scan span's first object, and a real pointer to its second object.
        let s = 0xc0_0000_0000u64;
        let mut h = heap(&[]);
        h.stack_spans = vec![(s - 4 * PAGE_SIZE, s)];
        let mut m = marker(&h, &[]);
        let mut g = Vec::new();
        for w in [s - 8192, s, s + 64] {
            g.extend_from_slice(&w.to_le_bytes());
        }
        m.scan(0x1000, &g);
        assert!(!m.reachable(s), "a stack's end marked the object after it");
        assert!(m.reachable(s + 64));
        // Not a stack's bounds: not a power of two, or not inside the stack span.
        let mut m = marker(&h, &[]);
        let mut w = Vec::new();
        for x in [s - 3000, s, 8, s - 8 * PAGE_SIZE, s] {
            w.extend_from_slice(&x.to_le_bytes());
        }
        m.scan(0x1000, &w[..16]);
        assert!(m.reachable(s) && m.marked == 1);
        let mut m = marker(&h, &[]);
        m.scan(0x1000, &w[16..]);
        assert!(m.reachable(s), "{:?}", h.stack_spans);
    }

    #[test]
    fn sparse_spans_mark_as_whole_ones() {
        // The same words as a whole span and as a sparse one: the same marks.
        let s = 0xc0_0000_0000u64;
        let n = s + PAGE_SIZE;
        let words = [(s + 64, s + 130), (s + 128, n), (n, s + 5 * 64)];
        let whole = heap(&words);
        let mut sparse = heap(&[]);
        sparse.sparse = vec![SparseSpan::default(); 2];
        let mut bytes = vec![0u8; PAGE_SIZE as usize];
        for &(at, v) in &words[..2] {
            let o = (at - s) as usize;
            bytes[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
        bytes[200..208].copy_from_slice(&7u64.to_le_bytes()); // not a pointer: left out
        sparse.sparse[0].extend(0, &bytes, s, n + PAGE_SIZE);
        assert_eq!(sparse.sparse[0].offs, [64, 128]);
        sparse.image = MemoryImage::new();
        let marks = |h: &Heap| {
            let mut m = marker(h, &[]);
            m.mark(s + 70);
            m.drain();
            (
                m.marked,
                m.reachable(s + 128),
                m.reachable(n + 10),
                m.reachable(s),
            )
        };
        assert_eq!(marks(&sparse), marks(&whole));
        assert_eq!(marks(&sparse), (3, true, true, false));
    }

    #[test]
    fn opaque_objects_are_marked_not_scanned() {
        let s = 0xc0_0000_0000u64;
        let h = heap(&[(s + 64, s + 128)]);
        let mut m = marker(&h, &[s + 64]);
        m.mark(s + 64);
        m.drain();
        assert!(m.reachable(s + 64));
        assert!(!m.reachable(s + 128));
    }

    #[test]
    fn what_goroutines_wait_on() {
        use crate::snapshot::BlockedOn;
        let g = |status, state: &str, on: &[(&str, u64)]| Goroutine {
            status,
            state: state.into(),
            blocked_on: on
                .iter()
                .map(|&(kind, addr)| BlockedOn {
                    kind: kind.into(),
                    addr,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let w = Status::WAITING;
        assert_eq!(classify(&g(Status::RUNNING, "running", &[])), Wait::Root);
        assert_eq!(classify(&g(w, "select (no cases)", &[])), Wait::Never);
        assert_eq!(classify(&g(w, "chan send (nil chan)", &[])), Wait::Never);
        assert_eq!(classify(&g(w, "chan receive", &[])), Wait::Root);
        assert_eq!(
            classify(&g(w, "select", &[("chan", 1), ("chan", 2)])),
            Wait::On(vec![1, 2])
        );
        assert_eq!(
            classify(&g(w, "semacquire", &[("sync.WaitGroup", 8)])),
            Wait::On(vec![8])
        );
        assert_eq!(
            classify(&g(w, "semacquire", &[("semaphore", 8)])),
            Wait::Root
        );
        assert_eq!(classify(&g(w, "sleep", &[("chan", 8)])), Wait::Root);
    }

    #[test]
    fn unaligned_ranges_scan_aligned_words() {
        let s = 0xc0_0000_0000u64;
        let h = heap(&[]);
        let mut m = marker(&h, &[]);
        let mut bytes = vec![0u8; 4];
        bytes.extend_from_slice(&(s + 192).to_le_bytes());
        m.scan(0x1004, &bytes);
        assert!(m.reachable(s + 192) && m.marked == 1);
    }
}
