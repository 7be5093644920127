//! Copying what the analysis reads: the arenas' span tables, the in-use spans, the scan
//! spans' pointer-like words, the globals and the specials (finalizers, cleanups, weak
//! handles), inside the frozen window of a live target.

use super::{
    HEAP_ARENA_BYTES, Heap, MAX_ARENAS, MAX_GLOBALS_BYTES, MAX_HEAP_BYTES, MAX_MODULES,
    MAX_SPAN_BYTES, MAX_SPANS, MAX_SPECIALS, MSPAN_READ, PAGE_SIZE, PAGES_PER_ARENA, SPAN_IN_USE,
    SPAN_MANUAL, Span, SparseSpan,
};
use crate::arch::Arch;
use crate::runtime::{F, Runtime};
use crate::target::CopyInto;
use crate::target::image::MemoryImage;
use crate::target::{MemoryReader, ReadExt};
use std::collections::HashSet;
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

/// The first rounds of [`copy_heap`] (globals, arena index, span table, spans): the heap
/// with its in-use spans, and the spans with special records.
/// With `only`, just the spans that hold those addresses, and no globals: what
/// [`copy_spans`] needs, a few reads instead of every span of the heap.
fn spans(
    rt: &Runtime,
    fetch: &dyn CopyInto,
    only: Option<&[u64]>,
) -> Result<(Heap, SpecialsOf), String> {
    let (arenas_off, all_off, spans_off) = needed_fields(rt)?;
    let l = &rt.layout;
    let mut h = Heap::default();
    // `&mheap_.arenas` and `&mheap_.allArenas` (see `layout::ARCH_DEPENDENT`).
    let arenas_at = match rt.bin.symbol("runtime.mheap_") {
        Some(s) if l.source == crate::runtime::layout::LayoutSource::Dwarf => {
            s.addr.wrapping_add(rt.bias).wrapping_add(arenas_off)
        }
        _ => find_arenas(rt, fetch, &mut h.image)?,
    };
    let all_at = arenas_at.wrapping_add(all_off).wrapping_sub(arenas_off);
    let (l2, ptr, len) = copy_globals(rt, fetch, &mut h, arenas_at, all_at, only.is_none())?;
    let mut arenas = copy_arena_index(rt, fetch, &mut h, l2, ptr, len);
    let span_ptrs = match only {
        None => copy_span_table(fetch, &mut h, &arenas, spans_off)?,
        Some(addrs) => {
            arenas.retain(|&(base, _)| addrs.iter().any(|&a| in_arena(base, a)));
            span_entries(fetch, &mut h, &arenas, spans_off, addrs)
        }
    };
    let specials = copy_span_records(rt, fetch, &mut h, &arenas, span_ptrs)?;
    Ok((h, specials))
}

/// The heap's in-use spans that hold `addrs`, as [`copy_heap`] copies them, without globals,
/// the spans' bytes and special records: enough to tell which object each of `addrs` is in
/// ([`super::objects_of`]).
pub(crate) fn copy_spans(
    rt: &Runtime,
    fetch: &dyn CopyInto,
    addrs: &[u64],
) -> Result<Heap, String> {
    spans(rt, fetch, Some(addrs)).map(|(h, _)| h)
}

/// Whether `a` is in the arena that starts at `base`.
fn in_arena(base: u64, a: u64) -> bool {
    a >= base && a - base < HEAP_ARENA_BYTES
}

/// The span pointers of the pages of `addrs` in `arenas` (every page of an in-use span
/// points to it).
fn span_entries(
    fetch: &dyn CopyInto,
    h: &mut Heap,
    arenas: &[(u64, u64)],
    spans_off: u64,
    addrs: &[u64],
) -> HashSet<u64> {
    let entries: Vec<u64> = addrs
        .iter()
        .filter_map(|&a| {
            let &(base, ha) = arenas.iter().find(|&&(base, _)| in_arena(base, a))?;
            Some(
                ha.wrapping_add(spans_off)
                    .wrapping_add((a - base) / PAGE_SIZE * 8),
            )
        })
        .collect();
    fetch.copy_into(
        &entries.iter().map(|&e| (e, 8)).collect::<Vec<_>>(),
        &mut h.image,
    );
    entries
        .iter()
        .filter_map(|&e| h.image.read_u64(e).ok().filter(|&p| p != 0))
        .collect()
}

/// Span records: `(start, end, elemsize, first special record)`.
type SpecialsOf = Vec<(u64, u64, u64, u64)>;

/// Copies what the analysis reads: every module's data and bss, the heap's arena and span
/// metadata and the bytes of every in-use scan span, in a few batched rounds through `fetch`
/// (inside the frozen window for a live target). `mem` reads what `fetch` copied.
pub(crate) fn copy_heap(rt: &Runtime, fetch: &dyn CopyInto) -> Result<Heap, String> {
    let (mut h, specials) = spans(rt, fetch, None)?;
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

/// The layout fields the copy needs, or which one the version's layout lacks; the offsets of
/// `mheap_.arenas`, `mheap_.allArenas` (or `heapArenas`) and `heapArena.spans`.
fn needed_fields(rt: &Runtime) -> Result<(u64, u64, u64), String> {
    let l = &rt.layout;
    let need = |f: F| {
        l.off(f).ok_or_else(|| {
            format!(
                "the runtime layout of go1.{} lacks {f:?}; leak analysis needs it",
                rt.bin.version.minor
            )
        })
    };
    let offs = (
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
    Ok(offs)
}

/// The module list, the globals of every module and the arena list; the top-level arena
/// table (`arenas[0]`), and the list's pointer and length.
fn copy_globals(
    rt: &Runtime,
    fetch: &dyn CopyInto,
    h: &mut Heap,
    arenas_at: u64,
    all_at: u64,
    globals: bool,
) -> Result<(u64, u64, u64), String> {
    let l = &rt.layout;
    let mut mods = Vec::new();
    let mut md = rt.moduledata;
    while md != 0 && mods.len() < MAX_MODULES && !mods.contains(&md) {
        fetch.copy_into(&[(md, l.moduledata_size.max(8))], &mut h.image);
        mods.push(md);
        md = l.read(F::ModNext, &h.image, md).unwrap_or(0);
    }
    fetch.copy_into(&[(arenas_at, 8), (all_at, 24)], &mut h.image);
    let mut reqs = Vec::new();
    let mut total = 0u64;
    for &md in mods.iter().filter(|_| globals) {
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
    reqs.push((ptr, len * 8));
    fetch.copy_into(&reqs, &mut h.image);
    if globals {
        h.semtable =
            crate::runtime::blocked::semtable(rt, &h.image, fetch, &mut MemoryImage::new())
                .map(|(a, n)| (a, a.saturating_add(n)));
    }
    Ok((l2, ptr, len))
}

/// Each listed arena's `heapArena` pointer; the arenas' base addresses and `heapArena`s.
fn copy_arena_index(
    rt: &Runtime,
    fetch: &dyn CopyInto,
    h: &mut Heap,
    l2: u64,
    ptr: u64,
    len: u64,
) -> Vec<(u64, u64)> {
    let idxs: Vec<u64> = (0..len)
        .filter_map(|i| h.image.read_u64(ptr.wrapping_add(i * 8)).ok())
        .filter(|&i| i < 1 << 32)
        .collect();
    fetch.copy_into(
        &idxs
            .iter()
            .map(|&i| (l2.wrapping_add(i * 8), 8))
            .collect::<Vec<_>>(),
        &mut h.image,
    );
    idxs.iter()
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
        .collect()
}

/// The span pointer of every page of every arena; the distinct spans.
fn copy_span_table(
    fetch: &dyn CopyInto,
    h: &mut Heap,
    arenas: &[(u64, u64)],
    spans_off: u64,
) -> Result<HashSet<u64>, String> {
    fetch.copy_into(
        &arenas
            .iter()
            .map(|&(_, ha)| (ha.wrapping_add(spans_off), PAGES_PER_ARENA * 8))
            .collect::<Vec<_>>(),
        &mut h.image,
    );
    let mut span_ptrs = HashSet::new();
    for &(_, ha) in arenas {
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
    Ok(span_ptrs)
}

/// The spans: in-use ones indexed (sorted, overlaps dropped), stack spans noted; the
/// first special record of each span that has one.
fn copy_span_records(
    rt: &Runtime,
    fetch: &dyn CopyInto,
    h: &mut Heap,
    arenas: &[(u64, u64)],
    span_ptrs: HashSet<u64>,
) -> Result<SpecialsOf, String> {
    let l = &rt.layout;
    let mut specials = Vec::new();
    let mut span_ptrs: Vec<u64> = span_ptrs.into_iter().collect();
    span_ptrs.sort_unstable();
    fetch.copy_into(
        &span_ptrs
            .iter()
            .map(|&s| (s, MSPAN_READ))
            .collect::<Vec<_>>(),
        &mut h.image,
    );
    let in_any_arena = |a: u64| arenas.iter().any(|&(base, _)| in_arena(base, a));
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
        if state == SPAN_MANUAL && npages != 0 && in_any_arena(start) {
            h.stack_spans.push((start, end));
        }
        if state != SPAN_IN_USE
            || npages == 0
            || elemsize == 0
            || start % PAGE_SIZE != 0
            || !in_any_arena(start)
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
    Ok(specials)
}

/// Size classes of the spans copied whole: those of `runtime.sudog` and `runtime.hchan`
/// (88 to 112 bytes in Go 1.19–1.27), whose fields the wait analysis reads from the copy.
const WHOLE_SPAN_ELEMSIZES: [u64; 2] = [96, 112];

/// Bytes of the other scan spans copied at a time, then reduced to their pointer-like words.
const SPARSE_CHUNK: u64 = 32 << 20;

/// Copies the scan spans: whole for the size classes of sudogs and channels, and as the words
/// that fall in the heap's (and its stacks') address range for the others, a chunk at a time:
/// only those words are ever marked from, and most of a heap's words are not pointers.
fn copy_scan_spans(fetch: &dyn CopyInto, h: &mut Heap) -> Result<(), String> {
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
    fetch.copy_into(&reqs, &mut h.image);
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
            fetch.copy_into(&reqs, &mut tmp);
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
    fetch: &dyn CopyInto,
    h: &mut Heap,
    spans: &[(u64, u64, u64, u64)],
) -> Result<(), String> {
    let k = special_kinds(rt.bin.version.minor);
    let read_len = k.header + 8 * FINALIZER_WORDS;
    let mut cursors: Vec<(usize, u64)> = spans.iter().map(|s| s.3).enumerate().collect();
    let mut seen = HashSet::new();
    while !cursors.is_empty() {
        let reqs: Vec<(u64, u64)> = cursors.iter().map(|&(_, r)| (r, read_len)).collect();
        fetch.copy_into(&reqs, &mut h.image);
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
fn find_arenas(rt: &Runtime, fetch: &dyn CopyInto, img: &mut MemoryImage) -> Result<u64, String> {
    let l = &rt.layout;
    let (Some(arenas_off), Some(all_off)) = (
        l.off(F::MheapArenas),
        l.off(F::MheapAllArenas).or(l.off(F::MheapHeapArenas)),
    ) else {
        return Err("no layout for runtime.mheap".into());
    };
    let delta = all_off.wrapping_sub(arenas_off);
    let refs = crate::runtime::find::func_refs(&rt.bin, "runtime.findObject", rt.bias)
        .map_err(|e| format!("cannot find runtime.mheap_: {e}"))?;
    let cands: Vec<u64> = refs.iter().map(|r| r.wrapping_add(rt.bias)).collect();
    fetch.copy_into(
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
    fetch.copy_into(
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
    fetch.copy_into(
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
