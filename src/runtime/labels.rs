//! pprof goroutine labels (`g.labels`, set by `runtime/pprof.SetGoroutineLabels` / `pprof.Do`).
//!
//! Go 1.24+: `labelMap` is a slice of `{key, value string}` sorted by key
//! (`src/runtime/pprof/label.go`; 1.27 `internal/runtime/pprof/label.Set`). Up to 1.23 it is a
//! `*labelMap` whose `labelMap` is a `map[string]string` (one more pointer), read here from its buckets (`src/runtime/map.go`: `hmap`, buckets of
//! 8 tophash bytes, 8 keys, 8 values and an overflow pointer). Label maps are never changed
//! after they are published (pprof copies on write), so one consistent copy is easy to get.

use super::Runtime;
use crate::snapshot::LabelStr;
use crate::snapshot::MAX_LABELS;
use crate::target::CopyInto;
use crate::target::image::MemoryImage;
use crate::target::{MemoryReader, ReadExt};

/// Most bytes read of one label key or value. A longer one keeps its first bytes and its whole
/// length ([`LabelStr::len`]), which renderers count in their cut marker.
pub(crate) const MAX_LABEL_BYTES: u64 = 64 << 10;
/// Largest `B` (log2 of bucket count) of a label map accepted.
const MAX_MAP_B: u8 = 6;
/// Longest overflow chain followed per bucket.
const MAX_OVERFLOW: usize = 8;
/// `hmap`: count +0, B +9, buckets +16, oldbuckets +24.
const HMAP_SIZE: u64 = 48;
/// A `map[string]string` bucket: 8 tophash bytes, 8 keys, 8 values, overflow pointer.
const BUCKET_SIZE: u64 = 8 + 8 * 16 + 8 * 16 + 8;
/// Smallest tophash of a full slot (`minTopHash`).
const MIN_TOP_HASH: u8 = 5;

fn uses_slice(rt: &Runtime) -> bool {
    rt.version().at_least(24)
}

/// Copies the labels of the goroutines whose `g.labels` are `ptrs` into the image, in a few
/// batched rounds (header, entries or buckets, overflow buckets, strings).
pub fn capture(rt: &Runtime, ptrs: &[u64], img: &mut MemoryImage, copy: &dyn CopyInto) {
    if ptrs.is_empty() {
        return;
    }
    let head = if uses_slice(rt) { 24 } else { 8 };
    copy.copy_into(&ptrs.iter().map(|&p| (p, head)).collect::<Vec<_>>(), img);
    let mut string_headers: Vec<(u64, u64)> = Vec::new();
    if uses_slice(rt) {
        let arrays: Vec<(u64, u64)> = ptrs
            .iter()
            .filter_map(|&p| Some((img.read_u64(p).ok()?, img.read_u64(p.wrapping_add(8)).ok()?)))
            .filter(|&(a, n)| a != 0 && n <= MAX_LABELS)
            .map(|(a, n)| (a, n * 32))
            .collect();
        copy.copy_into(&arrays, img);
        for &(a, bytes) in &arrays {
            string_headers.extend((0..bytes / 16).map(|i| (a.wrapping_add(i * 16), 0)));
        }
    } else {
        // g.labels points to the map variable, which points to the hmap.
        let hmaps: Vec<u64> = ptrs
            .iter()
            .filter_map(|&p| img.read_u64(p).ok())
            .filter(|&h| h != 0)
            .collect();
        copy.copy_into(
            &hmaps.iter().map(|&h| (h, HMAP_SIZE)).collect::<Vec<_>>(),
            img,
        );
        let mut buckets: Vec<(u64, u64)> = Vec::new();
        for &p in &hmaps {
            let Ok(b) = img.read_u8(p.wrapping_add(9)) else {
                continue;
            };
            if b > MAX_MAP_B {
                continue;
            }
            for off in [16, 24] {
                if let Ok(a) = img.read_u64(p.wrapping_add(off))
                    && a != 0
                {
                    buckets.push((a, BUCKET_SIZE << b));
                }
            }
        }
        copy.copy_into(&buckets, img);
        let mut all: Vec<u64> = buckets
            .iter()
            .flat_map(|&(a, n)| (0..n / BUCKET_SIZE).map(move |i| a.wrapping_add(i * BUCKET_SIZE)))
            .collect();
        let mut frontier = all.clone();
        for _ in 0..MAX_OVERFLOW {
            let next: Vec<u64> = frontier
                .iter()
                .filter_map(|&b| img.read_u64(b.wrapping_add(BUCKET_SIZE - 8)).ok())
                .filter(|&o| o != 0)
                .collect();
            if next.is_empty() {
                break;
            }
            copy.copy_into(
                &next.iter().map(|&b| (b, BUCKET_SIZE)).collect::<Vec<_>>(),
                img,
            );
            all.extend(&next);
            frontier = next;
        }
        for b in all {
            for i in 0..8 {
                if img
                    .read_u8(b.wrapping_add(i))
                    .is_ok_and(|t| t >= MIN_TOP_HASH)
                {
                    string_headers.push((b.wrapping_add(8 + i * 16), 0));
                    string_headers.push((b.wrapping_add(8 + 128 + i * 16), 0));
                }
            }
        }
    }
    let strs: Vec<(u64, u64)> = string_headers
        .iter()
        .filter_map(|&(h, _)| Some((img.read_u64(h).ok()?, img.read_u64(h.wrapping_add(8)).ok()?)))
        .filter(|&(p, n)| p != 0 && n > 0)
        .map(|(p, n)| (p, n.min(MAX_LABEL_BYTES)))
        .collect();
    copy.copy_into(&strs, img);
}

/// The Go string whose header is at `at`: its bytes as they are (UTF-8 or not), at most
/// [`MAX_LABEL_BYTES`] of them, and its whole length.
fn string_at(mem: &impl MemoryReader, at: u64) -> Option<LabelStr> {
    let p = mem.read_u64(at).ok()?;
    let len = mem.read_u64(at.wrapping_add(8)).ok()?;
    let mut b = vec![0u8; len.min(MAX_LABEL_BYTES) as usize];
    if !b.is_empty() {
        mem.read_at(p, &mut b).ok()?;
    }
    Some(LabelStr::new(b, len))
}

/// Reads a goroutine's labels, sorted by key (the order Go 1.24+ keeps and prints). Empty on
/// a null pointer or unreadable memory.
pub fn read(rt: &Runtime, mem: &impl MemoryReader, labels: u64) -> Vec<(LabelStr, LabelStr)> {
    if labels == 0 {
        return Vec::new();
    }
    let mut out = if uses_slice(rt) {
        read_slice(mem, labels)
    } else {
        read_map(mem, labels)
    };
    out.sort();
    out
}

fn read_slice(mem: &impl MemoryReader, p: u64) -> Vec<(LabelStr, LabelStr)> {
    let (Ok(a), Ok(n)) = (mem.read_u64(p), mem.read_u64(p.wrapping_add(8))) else {
        return Vec::new();
    };
    if n > MAX_LABELS {
        return Vec::new();
    }
    (0..n)
        .map_while(|i| {
            Some((
                string_at(mem, a.wrapping_add(i * 32))?,
                string_at(mem, a.wrapping_add(i * 32 + 16))?,
            ))
        })
        .collect()
}

fn read_map(mem: &impl MemoryReader, labels: u64) -> Vec<(LabelStr, LabelStr)> {
    let Ok(p) = mem.read_u64(labels) else {
        return Vec::new();
    };
    let Ok(b) = mem.read_u8(p.wrapping_add(9)) else {
        return Vec::new();
    };
    if b > MAX_MAP_B {
        return Vec::new();
    }
    let mut out = Vec::new();
    for off in [16u64, 24] {
        let Ok(base) = mem.read_u64(p.wrapping_add(off)) else {
            continue;
        };
        if base == 0 {
            continue;
        }
        for i in 0..(1u64 << b) {
            let mut bucket = base.wrapping_add(i * BUCKET_SIZE);
            for _ in 0..=MAX_OVERFLOW {
                for slot in 0..8 {
                    if mem
                        .read_u8(bucket.wrapping_add(slot))
                        .is_ok_and(|t| t >= MIN_TOP_HASH)
                        && let (Some(k), Some(v)) = (
                            string_at(mem, bucket.wrapping_add(8 + slot * 16)),
                            string_at(mem, bucket.wrapping_add(8 + 128 + slot * 16)),
                        )
                        && !out.iter().any(|(ek, _)| *ek == k)
                        && (out.len() as u64) < MAX_LABELS
                    {
                        out.push((k, v));
                    }
                }
                match mem.read_u64(bucket.wrapping_add(BUCKET_SIZE - 8)) {
                    Ok(o) if o != 0 => bucket = o,
                    _ => break,
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ReadError;
    use std::collections::HashMap;

    /// Memory holding the given little-endian words, zeroes everywhere else (up to the last byte
    /// of the address space).
    struct Words(HashMap<u64, u64>);

    impl MemoryReader for Words {
        fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            let err = ReadError {
                addr,
                len: buf.len() as u64,
            };
            for (i, b) in buf.iter_mut().enumerate() {
                let a = addr.checked_add(i as u64).ok_or(err)?;
                *b = self
                    .0
                    .get(&(a & !7))
                    .map_or(0, |w| w.to_le_bytes()[(a & 7) as usize]);
            }
            Ok(())
        }
    }

    /// A label longer than [`MAX_LABEL_BYTES`] keeps its first bytes and its whole length, and
    /// the labels after it are read; bytes that are not UTF-8 are kept as they are.
    #[test]
    fn long_and_invalid_labels_are_read() {
        let huge = u64::MAX / 2;
        let mem = Words(
            [
                (0x1000, 0x2000),
                (0x1008, 2),
                // Entry 0: "k" (at 0x3000) = 1 MiB of 'x' (at 0x10000, zeroes: read as 0).
                (0x2000, 0x3000),
                (0x2008, 1),
                (0x2010, 0x10000),
                (0x2018, huge),
                // Entry 1: "l" = "\xff\xfe".
                (0x2020, 0x3008),
                (0x2028, 1),
                (0x2030, 0x3010),
                (0x2038, 2),
                (0x3000, u64::from(b'k')),
                (0x3008, u64::from(b'l')),
                (0x3010, 0xfeff),
            ]
            .into_iter()
            .collect(),
        );
        let l = read_slice(&mem, 0x1000);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].0, *"k");
        assert_eq!(l[0].1.bytes().len() as u64, MAX_LABEL_BYTES);
        assert_eq!(l[0].1.len(), huge);
        assert_eq!(l[1], ("l".into(), LabelStr::new(vec![0xff, 0xfe], 2)));
    }

    /// Found by fuzzing: label slices, maps and buckets at the top of the address space
    /// overflowed the address arithmetic.
    #[test]
    fn labels_at_the_end_of_the_address_space() {
        let mem = |words: &[(u64, u64)]| Words(words.iter().copied().collect());
        assert!(read_slice(&mem(&[]), u64::MAX - 7).is_empty());
        // Entries wrap to address 0 like any pointer read from the target (empty strings here).
        assert_eq!(
            read_slice(&mem(&[(0x1000, u64::MAX - 31), (0x1008, 2)]), 0x1000).len(),
            2
        );
        assert!(read_map(&mem(&[(0x1000, u64::MAX - 8)]), 0x1000).is_empty());
        assert!(read_map(&mem(&[(0x1000, 0x2000), (0x2010, u64::MAX - 15)]), 0x1000).is_empty());
    }
}
