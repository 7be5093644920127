use super::mark::{Index, Marker};
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
