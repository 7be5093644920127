//! Marking: the object index over the copied spans, and the conservative mark from the roots.

use super::{
    HEAP_ARENA_BYTES, Heap, MAX_ARENAS, MAX_MARKED, MIN_STACK, PAGE_SIZE, PAGES_PER_ARENA,
    SMALL_OBJECT_MAX,
};
use crate::snapshot::Status;
use crate::target::MemoryReader;
/// Object lookup and mark bits over the spans of a [`Heap`]: the span of a page by its arena
/// and page number, each span's objects one bit each.
pub(super) struct Index<'h> {
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
    pub(super) fn new(
        heap: &'h Heap,
        opaque: impl IntoIterator<Item = u64>,
    ) -> Result<Index<'h>, String> {
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
    pub(super) fn object_of(&self, p: u64) -> Option<(usize, u64, usize)> {
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

/// The part of a goroutine's stack that holds its frames, as the runtime's `scanstack` scans
/// it: from `syscallsp` (in a system call) or `sched.sp` up to `stack.hi`. What lies below is
/// left over from calls that returned, or from the goroutine that ran on this stack before
/// (dead gs keep their stacks for the next `go` statement), and would keep alive what the
/// program can no longer reach. A running goroutine's `sched.sp` is stale: its whole stack is
/// scanned (its thread's registers are roots too).
pub(super) fn live_stack(raw: &crate::runtime::goroutines::RawG) -> (u64, u64) {
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
pub(super) struct Marker<'h> {
    pub(super) index: Index<'h>,
    pub(super) marked: usize,
    /// Objects to scan: base and span index.
    pub(super) queue: Vec<(u64, u32)>,
}

impl Marker<'_> {
    /// Marks the object of every aligned word of `bytes` (at `at`).
    /// A word that follows the `lo` of a stack's bounds (a g's `stack`, wherever that g is:
    /// the goroutines', the Ms' g0 and gsignal, `runtime.gcrash`) is its `hi`, the end of the
    /// stack: not a pointer, but it would point at the first heap object after the stack.
    pub(super) fn scan(&mut self, at: u64, bytes: &[u8]) {
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

    pub(super) fn mark(&mut self, p: u64) {
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
    pub(super) fn drain(&mut self) {
        while let Some((base, i)) = self.queue.pop() {
            self.scan_object(base, i as usize);
        }
    }

    /// Marks what the object at `base`, in span `i`, points to.
    pub(super) fn scan_object(&mut self, base: u64, i: usize) {
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
    pub(super) fn reachable(&self, p: u64) -> bool {
        match self.index.object_of(p) {
            Some((bit, _, _)) => self.index.bits[bit / 64] & (1 << (bit % 64)) != 0,
            None => true,
        }
    }
}
