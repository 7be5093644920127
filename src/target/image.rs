//! A copied image of target memory: the ranges read during the frozen window.
//!
//! After the target is thawed, every walker reads this image, so what it sees is the state of
//! one instant even though the target has moved on.

use super::{MemoryReader, ReadError};
use std::collections::BTreeMap;

/// [`MemoryImage::extend`] rebuilds the tree with ranges past it when they are at least one
/// in this many of the ranges it holds.
const REBUILD_SHARE: usize = 8;

/// Non-overlapping copied ranges of target memory, keyed by start address.
#[derive(Debug, Default, Clone)]
pub struct MemoryImage {
    ranges: BTreeMap<u64, Vec<u8>>,
    bytes: u64,
}

impl MemoryImage {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a copied range. Parts already covered by earlier ranges keep their earlier bytes.
    pub fn insert(&mut self, addr: u64, mut data: Vec<u8>) {
        // Nothing past the end of the address space: `start + len` never overflows below.
        if let Ok(room) = usize::try_from(u64::MAX - addr) {
            data.truncate(room);
        }
        if data.is_empty() {
            return;
        }
        let end = addr + data.len() as u64;
        // The common case: no overlap with a neighbour, so the buffer is kept as it is.
        let before_ok = self
            .ranges
            .range(..addr)
            .next_back()
            .is_none_or(|(a, v)| a + v.len() as u64 <= addr);
        let after_ok = self
            .ranges
            .range(addr..)
            .next()
            .is_none_or(|(a, _)| *a >= end);
        if before_ok && after_ok {
            self.bytes += data.len() as u64;
            self.ranges.insert(addr, data);
            return;
        }
        // Trim or split against existing ranges so the map stays non-overlapping.
        let mut pieces: Vec<(u64, u64)> = vec![(addr, end)];
        let overl: Vec<(u64, u64)> = self
            .ranges
            .range(..end)
            .rev()
            .take_while(|(a, v)| *a + v.len() as u64 > addr || **a >= addr)
            .map(|(a, v)| (*a, *a + v.len() as u64))
            .filter(|(a, e)| *e > addr && *a < end)
            .collect();
        for (oa, oe) in overl {
            let mut next = Vec::new();
            for (pa, pe) in pieces {
                if oe <= pa || oa >= pe {
                    next.push((pa, pe));
                    continue;
                }
                if pa < oa {
                    next.push((pa, oa));
                }
                if oe < pe {
                    next.push((oe, pe));
                }
            }
            pieces = next;
        }
        for (pa, pe) in pieces {
            let off = (pa - addr) as usize;
            let len = (pe - pa) as usize;
            self.bytes += len as u64;
            self.ranges.insert(pa, data[off..off + len].to_vec());
        }
    }

    /// Adds every range of `other` (as [`MemoryImage::insert`] does, earlier bytes win).
    pub(crate) fn absorb(&mut self, mut other: MemoryImage) {
        if self.ranges.is_empty() {
            std::mem::swap(self, &mut other);
            return;
        }
        if other
            .ranges
            .first_key_value()
            .is_some_and(|(&a, _)| self.ends_by(a))
        {
            self.add_past(other.ranges);
            return;
        }
        for (a, v) in other.ranges {
            self.insert(a, v);
        }
    }

    /// Adds `ranges` as [`MemoryImage::insert`] adds each; built in bulk when they come in
    /// ascending order, apart, and past every range held (a copy's ranges as it read them: a
    /// search of the tree for each, to find none in the way, was a twentieth of a big dump's
    /// time).
    pub(crate) fn extend(&mut self, ranges: Vec<(u64, Vec<u8>)>) {
        let apart = ranges.windows(2).all(|w| {
            let end = w[0].0.checked_add(w[0].1.len() as u64);
            end.is_some_and(|e| e <= w[1].0)
        });
        let last_fits = ranges
            .last()
            .is_none_or(|(a, v)| a.checked_add(v.len() as u64).is_some());
        let past = ranges.first().is_none_or(|&(a, _)| self.ends_by(a));
        if !(apart && last_fits && past) {
            for (a, v) in ranges {
                self.insert(a, v);
            }
            return;
        }
        self.add_past(ranges.into_iter().filter(|(_, v)| !v.is_empty()).collect());
    }

    /// Adds `more` (non-empty ranges apart from each other, past every range held, none past
    /// the end of the address space): the tree rebuilt with them when they are many beside it
    /// (appending rebuilds it, so for a few it costs as much as the whole tree: a wait list
    /// followed a few pages at a time into one image made `dump --blocked` of a million
    /// goroutines take a minute), else each inserted without looking for neighbours.
    fn add_past(&mut self, mut more: BTreeMap<u64, Vec<u8>>) {
        if more.len().saturating_mul(REBUILD_SHARE) < self.ranges.len() {
            for (a, v) in more {
                self.bytes += v.len() as u64;
                self.ranges.insert(a, v);
            }
            return;
        }
        self.bytes += more.values().map(|v| v.len() as u64).sum::<u64>();
        self.ranges.append(&mut more);
    }

    /// Whether every range held ends by `addr`.
    fn ends_by(&self, addr: u64) -> bool {
        self.ranges
            .last_key_value()
            .is_none_or(|(&a, v)| a.checked_add(v.len() as u64).is_some_and(|e| e <= addr))
    }

    /// Adds every range of `other`, its bytes replacing those already held at the same
    /// addresses (a later copy of the same memory).
    pub(crate) fn overwrite(&mut self, other: MemoryImage) {
        if self.ranges.is_empty() {
            *self = other;
            return;
        }
        for (a, v) in other.ranges {
            let end = a.saturating_add(v.len() as u64);
            let first = self.ranges.range(..a).next_back().map_or(a, |(s, _)| *s);
            for (s, held) in self.ranges.range_mut(first..end) {
                let held_end = *s + held.len() as u64;
                if held_end <= a {
                    continue;
                }
                let (lo, hi) = ((*s).max(a), held_end.min(end));
                held[(lo - *s) as usize..(hi - *s) as usize]
                    .copy_from_slice(&v[(lo - a) as usize..(hi - a) as usize]);
            }
            self.insert(a, v);
        }
    }

    /// Whether `[addr, addr+len)` is fully present.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        let mut a = addr;
        let end = addr.saturating_add(len);
        while a < end {
            match self.ranges.range(..=a).next_back() {
                Some((s, v)) if *s + v.len() as u64 > a => a = *s + v.len() as u64,
                _ => return false,
            }
        }
        true
    }

    /// The held bytes of `[lo, hi)`, one piece per copied range, each clipped to it.
    pub(crate) fn ranges_in(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, &[u8])> {
        let first = self.ranges.range(..=lo).next_back().map_or(lo, |(s, _)| *s);
        self.ranges
            .range(first..hi.max(first))
            .filter_map(move |(s, v)| {
                let (a, b) = ((*s).max(lo), (s + v.len() as u64).min(hi));
                (a < b).then(|| (a, &v[(a - s) as usize..(b - s) as usize]))
            })
    }

    /// Moves the ranges `take` says yes to out, into an image of their own.
    pub(crate) fn take_where(&mut self, mut take: impl FnMut(u64, &[u8]) -> bool) -> MemoryImage {
        let mut taken = MemoryImage::new();
        self.ranges.retain(|&a, v| {
            if !take(a, v) {
                return true;
            }
            taken.bytes += v.len() as u64;
            taken.ranges.insert(a, std::mem::take(v));
            false
        });
        self.bytes -= taken.bytes;
        taken
    }

    /// Moves each range `part` places (an index below `n`) out, into `n` images of their own
    /// (in one pass, each built from its ranges in order); the others stay.
    pub(crate) fn split_by(
        &mut self,
        n: usize,
        mut part: impl FnMut(u64, &[u8]) -> Option<usize>,
    ) -> Vec<MemoryImage> {
        let mut parts: Vec<Vec<(u64, Vec<u8>)>> = (0..n).map(|_| Vec::new()).collect();
        let mut stay = Vec::new();
        for (a, v) in std::mem::take(&mut self.ranges) {
            match part(a, &v).and_then(|i| parts.get_mut(i)) {
                Some(p) => {
                    self.bytes -= v.len() as u64;
                    p.push((a, v));
                }
                None => stay.push((a, v)),
            }
        }
        self.ranges = stay.into_iter().collect();
        parts
            .into_iter()
            .map(|p| MemoryImage {
                bytes: p.iter().map(|(_, v)| v.len() as u64).sum(),
                ranges: p.into_iter().collect(),
            })
            .collect()
    }

    /// Total bytes held.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of ranges held (how requests were merged).
    #[cfg(test)]
    pub(crate) fn range_count(&self) -> usize {
        self.ranges.len()
    }
}

impl MemoryReader for MemoryImage {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let err = ReadError {
            addr,
            len: buf.len() as u64,
        };
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.checked_add(done as u64).ok_or(err)?;
            let (s, v) = self.ranges.range(..=a).next_back().ok_or(err)?;
            let off = (a - s) as usize;
            if off >= v.len() {
                return Err(err);
            }
            let n = (v.len() - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&v[off..off + n]);
            done += n;
        }
        Ok(())
    }

    /// The bytes of `[addr, addr+len)` when one copied range holds all of them.
    fn slice(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let (s, v) = self.ranges.range(..=addr).next_back()?;
        let off = usize::try_from(addr - s).ok()?;
        let end = off.checked_add(usize::try_from(len).ok()?)?;
        v.get(off..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ReadExt;

    #[test]
    fn split_by_moves_each_range_to_its_part_and_keeps_the_rest() {
        let mut m = MemoryImage::new();
        m.insert(0x1000, vec![1; 16]);
        m.insert(0x2000, vec![2; 8]);
        m.insert(0x3000, vec![3; 4]);
        m.insert(0x4000, vec![4; 2]);
        let parts = m.split_by(2, |a, _| match a {
            0x1000 | 0x4000 => Some(1),
            0x3000 => Some(0),
            // Past the last part: stays.
            0x2000 => Some(2),
            _ => None,
        });
        assert_eq!(parts.len(), 2);
        assert_eq!(m.total_bytes(), 8);
        assert!(m.contains(0x2000, 8) && !m.contains(0x1000, 1) && !m.contains(0x3000, 1));
        assert_eq!(parts[0].total_bytes(), 4);
        assert_eq!(parts[0].read_u32(0x3000).unwrap(), 0x0303_0303);
        assert_eq!(parts[1].total_bytes(), 18);
        assert_eq!(parts[1].read_u64(0x1008).unwrap(), 0x0101_0101_0101_0101);
        assert!(parts[1].contains(0x4000, 2) && !parts[1].contains(0x2000, 1));
    }

    #[test]
    fn reads_within_and_across_adjacent_ranges() {
        let mut m = MemoryImage::new();
        m.insert(0x1000, vec![1; 16]);
        m.insert(0x1010, vec![2; 16]);
        let mut b = [0u8; 4];
        m.read_at(0x100e, &mut b).unwrap();
        assert_eq!(b, [1, 1, 2, 2]);
        assert!(m.read_at(0x101e, &mut b).is_err());
        assert!(m.read_at(0xfff, &mut b).is_err());
    }

    #[test]
    fn overwrite_replaces_held_bytes_and_adds_the_rest() {
        let mut m = MemoryImage::new();
        m.insert(0x1000, vec![1; 16]);
        m.insert(0x1020, vec![1; 16]);
        let mut newer = MemoryImage::new();
        newer.insert(0x1008, vec![2; 32]);
        m.overwrite(newer);
        let mut b = [0u8; 48];
        m.read_at(0x1000, &mut b).unwrap();
        assert_eq!(b[..8], [1; 8]);
        assert_eq!(b[8..40], [2; 32]);
        assert_eq!(b[40..], [1; 8]);
        assert_eq!(m.total_bytes(), 48);
    }

    #[test]
    fn nothing_is_held_past_the_end_of_the_address_space() {
        let mut m = MemoryImage::new();
        m.insert(u64::MAX - 3, vec![1; 16]);
        m.insert(u64::MAX - 7, vec![2; 16]);
        assert_eq!(m.total_bytes(), 7);
        assert_eq!(m.read_u8(u64::MAX - 4).unwrap(), 2);
        assert_eq!(m.read_u8(u64::MAX - 1).unwrap(), 1);
        assert!(m.contains(u64::MAX - 7, 7));
    }

    /// Ranges added together hold what inserting each would: in bulk when they come in order
    /// past what is held, one by one otherwise (overlapping, out of order, empty, or running
    /// past the end of the address space); an image absorbed likewise.
    #[test]
    fn extend_and_absorb_hold_what_inserting_each_holds() {
        // One range held, or many (then a few ranges past them are inserted, not rebuilt).
        for many in [false, true] {
            let held = || {
                let mut m = MemoryImage::new();
                m.insert(0x1000, vec![1; 16]);
                if many {
                    for k in 0..64 {
                        m.insert(0x100 + k * 2, vec![9; 1]);
                    }
                }
                m
            };
            let cases: Vec<Vec<(u64, Vec<u8>)>> = vec![
                vec![
                    (0x1010, vec![2; 8]),
                    (0x1020, vec![3; 8]),
                    (0x1028, vec![4; 8]),
                ],
                vec![(0x1008, vec![2; 16]), (0x1020, vec![3; 8])],
                vec![(0x1020, vec![3; 8]), (0x1010, vec![2; 16])],
                vec![(0x1010, vec![2; 16]), (0x1018, vec![3; 16])],
                vec![(0x1010, vec![]), (0x1020, vec![3; 8])],
                vec![(0x2000, vec![2; 8]), (u64::MAX - 3, vec![5; 16])],
                vec![],
            ];
            let dump = |m: &MemoryImage| -> Vec<(u64, Vec<u8>)> {
                m.ranges_in(0, u64::MAX)
                    .map(|(a, b)| (a, b.to_vec()))
                    .collect()
            };
            for ranges in cases {
                let mut one_by_one = held();
                for (a, v) in ranges.clone() {
                    one_by_one.insert(a, v);
                }
                let mut together = held();
                together.extend(ranges.clone());
                assert_eq!(dump(&together), dump(&one_by_one), "{ranges:x?}");
                assert_eq!(together.total_bytes(), one_by_one.total_bytes());
                let mut other = MemoryImage::new();
                for (a, v) in ranges.clone() {
                    other.insert(a, v);
                }
                let mut absorbed = held();
                absorbed.absorb(other.clone());
                let mut expected = held();
                for (a, b) in dump(&other) {
                    expected.insert(a, b);
                }
                assert_eq!(dump(&absorbed), dump(&expected), "{ranges:x?}");
                assert_eq!(absorbed.total_bytes(), expected.total_bytes());
            }
        }
    }

    #[test]
    fn overlapping_insert_keeps_first_bytes() {
        let mut m = MemoryImage::new();
        m.insert(0x1008, vec![1; 8]);
        m.insert(0x1000, vec![2; 32]);
        assert_eq!(m.read_u8(0x1000).unwrap(), 2);
        assert_eq!(m.read_u8(0x1008).unwrap(), 1);
        assert_eq!(m.read_u8(0x1010).unwrap(), 2);
        assert_eq!(m.total_bytes(), 32);
        assert!(m.contains(0x1000, 32));
        assert!(!m.contains(0x1000, 33));
    }
}
