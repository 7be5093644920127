//! Reader for the Go "pclntab" (program counter / line table) of Go 1.18 and later.
//!
//! The pclntab is the one piece of metadata every Go binary keeps, even when stripped: it maps
//! program counters to functions, and for each function holds its name, SP-delta table, file and
//! line tables, `PCDATA` tables, `FUNCDATA` offsets, funcID and flags.
//!
//! Layout (all offsets relative to the start of the pclntab, i.e. the `pcHeader`):
//!
//! * `pcHeader`: magic `u32`, two zero pad bytes, `minLC` (PC quantum), `ptrSize`, then
//!   pointer-sized words `nfunc`, `nfiles`, `textStart` (0 from Go 1.26), and the offsets of
//!   `funcnametab`, `cutab`, `filetab`, `pctab` and the function table.
//! * function table: `nfunc + 1` pairs `{entryoff u32, funcoff u32}`, then the `_func` records
//!   (`funcoff` is relative to the start of the function table).
//! * `_func`: 40 bytes (Go 1.18/1.19) or 44 bytes (Go 1.20+, with `startLine`), followed by
//!   `npcdata` `u32` pctab offsets and `nfuncdata` `u32` offsets from `moduledata.gofunc`.
//!
//! Every read is bounds-checked: corrupt input yields errors or `None`, never a panic.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// `PCDATA` table index: stack map index.
pub(crate) const PCDATA_STACK_MAP_INDEX: u32 = 1;
/// `PCDATA` table index: index into the inline tree (`-1` = not inlined).
pub(crate) const PCDATA_INL_TREE_INDEX: u32 = 2;
/// `PCDATA` table index: argument liveness index.
pub(crate) const PCDATA_ARG_LIVE_INDEX: u32 = 3;

/// `FUNCDATA` index: argument pointer maps.
pub(crate) const FUNCDATA_ARGS_POINTER_MAPS: u8 = 0;
/// `FUNCDATA` index: locals pointer maps.
pub(crate) const FUNCDATA_LOCALS_POINTER_MAPS: u8 = 1;
/// `FUNCDATA` index: inline tree.
pub(crate) const FUNCDATA_INL_TREE: u8 = 3;
/// `FUNCDATA` index: open-coded defer info.
pub(crate) const FUNCDATA_OPEN_CODED_DEFER_INFO: u8 = 4;
/// `FUNCDATA` index: argument info (for printing arguments in tracebacks).
pub(crate) const FUNCDATA_ARG_INFO: u8 = 5;
/// `FUNCDATA` index: argument liveness info.
pub(crate) const FUNCDATA_ARG_LIVE_INFO: u8 = 6;
/// `FUNCDATA` index: wrapper info (text offset of the wrapped function).
pub(crate) const FUNCDATA_WRAP_INFO: u8 = 7;

/// Magic of the Go 1.18 and 1.19 pclntab.
pub(crate) const MAGIC_GO118: u32 = 0xFFFF_FFF0;
/// Magic of the Go 1.20+ pclntab.
pub(crate) const MAGIC_GO120: u32 = 0xFFFF_FFF1;

/// Maximum number of logical (inlined) frames [`Pclntab::frames_at`] returns for one PC.
pub(crate) const MAX_INLINE_DEPTH: usize = 64;

/// `_func.flag` bits (stable across Go 1.18–1.27).
pub mod func_flag {
    /// The function is the top of a stack: unwinding must stop here (e.g. `runtime.goexit`).
    pub const TOP_FRAME: u8 = 1;
    /// The function writes SP arbitrarily (e.g. `runtime.systemstack`); unwinding through it is unsafe.
    pub const SP_WRITE: u8 = 2;
}

/// Errors from [`Pclntab::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PclntabError {
    /// The data ends before the header or the function table.
    Truncated,
    /// The first four bytes are not a known pclntab magic (little-endian).
    BadMagic(u32),
    /// A pclntab from a Go version older than 1.18 (magic `0xFFFFFFFB` or `0xFFFFFFFA`).
    UnsupportedVersion,
    /// A header field is invalid; the string names it.
    BadHeader(&'static str),
}

impl fmt::Display for PclntabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PclntabError::Truncated => f.write_str("pclntab is truncated"),
            PclntabError::BadMagic(m) => write!(f, "bad pclntab magic {m:#010x}"),
            PclntabError::UnsupportedVersion => {
                f.write_str("unsupported pclntab version (go1.17 or older)")
            }
            PclntabError::BadHeader(what) => write!(f, "bad pclntab header: {what}"),
        }
    }
}

impl std::error::Error for PclntabError {}

/// A function of the pclntab: its index in the function table and the location of its
/// `_func` record. Obtained from [`Pclntab::func_for_pc`], [`Pclntab::func_by_name`] or
/// [`Pclntab::funcs`]; only meaningful with the [`Pclntab`] that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Func {
    idx: u32,
    /// Offset of the `_func` record in `Pclntab::data` (its fixed part is known to be in bounds).
    off: u32,
}

impl Func {
    /// Index of the function in the function table (`0..nfunc`), usable as a cache key.
    pub fn index(self) -> usize {
        self.idx as usize
    }
}

/// One logical (source-level) frame at a PC, see [`Pclntab::frames_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrcFrame<'a> {
    /// Function name (`""` if unreadable).
    pub name: &'a str,
    /// The function's funcID (version-dependent numbering).
    pub func_id: u8,
    /// Source file of the PC in this frame (`"?"` if unknown).
    pub file: &'a str,
    /// Source line of the PC in this frame (0 if unknown).
    pub line: u32,
    /// Line of the `func` keyword (0 before Go 1.20).
    pub start_line: i32,
    /// True for frames of inlined calls, false for the physical function.
    pub inlined: bool,
    /// The pc this frame's file and line were looked up at (for the physical function under
    /// inlined calls: the outermost call site).
    pub pc: u64,
}

/// The bytes of a pclntab: its own copy, or a range of the executable's read-only map (shared
/// with the `GoBinary` that maps it, so a large pclntab is neither copied nor read whole).
pub enum PclnBytes {
    /// A copy.
    Owned(Vec<u8>),
    /// `range` of a map of the executable.
    Mapped(Arc<memmap2::Mmap>, Range<usize>),
}

impl Deref for PclnBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PclnBytes::Owned(v) => v,
            PclnBytes::Mapped(m, r) => m.get(r.clone()).unwrap_or(&[]),
        }
    }
}

impl From<Vec<u8>> for PclnBytes {
    fn from(v: Vec<u8>) -> Self {
        PclnBytes::Owned(v)
    }
}

/// Where a frame keeps its open-coded defers ([`Pclntab::open_coded_defers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenCodedDefers {
    /// `deferBits` is the byte at `varp - bits`; bit `i` set: defer `i` is pending.
    pub bits: u32,
    /// Defer `i`'s closure pointer is the word at `varp - closures[i]`.
    pub closures: [Option<u32>; 8],
}

/// A parsed pclntab. Holds the pclntab bytes and, optionally, a copy of the target's
/// `moduledata.gofunc` area (needed for inline trees and wrapper info).
pub struct Pclntab {
    data: PclnBytes,
    go120: bool,
    ptr_size: u8,
    min_lc: u8,
    nfunc: usize,
    header_text: u64,
    text_start: u64,
    funcnametab: Range<usize>,
    cutab: Range<usize>,
    filetab: Range<usize>,
    pctab: Range<usize>,
    /// Function table followed by the `_func` records (to the end of `data`).
    functab: Range<usize>,
    gofunc: Option<(u64, Vec<u8>)>,
}

impl fmt::Debug for Pclntab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pclntab")
            .field("len", &self.data.len())
            .field("go120", &self.go120)
            .field("ptr_size", &self.ptr_size)
            .field("min_lc", &self.min_lc)
            .field("nfunc", &self.nfunc)
            .field("text_start", &format_args!("{:#x}", self.text_start))
            .field("gofunc", &self.gofunc.as_ref().map(|(a, b)| (*a, b.len())))
            .finish()
    }
}

#[inline]
fn rd_u32(d: &[u8], off: usize) -> Option<u32> {
    let b = d.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[inline]
fn rd_word(d: &[u8], off: usize, ptr: u8) -> Option<u64> {
    if ptr == 4 {
        return rd_u32(d, off).map(u64::from);
    }
    let b = d.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// NUL-terminated string at `off` within `region` of `d`.
#[inline]
fn cstr<'a>(d: &'a [u8], region: &Range<usize>, off: usize) -> Option<&'a str> {
    let start = region.start.checked_add(off)?;
    if start >= region.end {
        return None;
    }
    let s = d.get(start..region.end)?;
    let n = s.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&s[..n]).ok()
}

/// Reads a uvarint truncated to 32 bits the way the Go runtime does; `None` if it runs off the end.
#[inline(always)]
fn uvarint32(p: &[u8], pos: &mut usize) -> Option<u32> {
    let b = *p.get(*pos)?;
    *pos += 1;
    if b & 0x80 == 0 {
        return Some(u32::from(b));
    }
    let mut v = u32::from(b & 0x7f);
    let mut shift = 7u32;
    loop {
        let b = *p.get(*pos)?;
        *pos += 1;
        v |= u32::from(b & 0x7f) << (shift & 31);
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift = shift.wrapping_add(7);
    }
}

impl Pclntab {
    /// Parses a pclntab; `data` starts at the `pcHeader`. Accepts the Go 1.18/1.19
    /// (`0xFFFFFFF0`) and Go 1.20+ (`0xFFFFFFF1`) formats, little-endian.
    /// The text start is initialised from the header (which is 0 from Go 1.26 on):
    /// call [`Pclntab::set_text_start`] with `moduledata.text`.
    pub fn parse(data: impl Into<PclnBytes>) -> Result<Pclntab, PclntabError> {
        let data: PclnBytes = data.into();
        let magic = rd_u32(&data, 0).ok_or(PclntabError::Truncated)?;
        let go120 = match magic {
            MAGIC_GO118 => false,
            MAGIC_GO120 => true,
            0xFFFF_FFFB | 0xFFFF_FFFA => return Err(PclntabError::UnsupportedVersion),
            m => return Err(PclntabError::BadMagic(m)),
        };
        if data.len() < 8 {
            return Err(PclntabError::Truncated);
        }
        if data[4] != 0 || data[5] != 0 {
            return Err(PclntabError::BadHeader("nonzero padding"));
        }
        let min_lc = data[6];
        let ptr_size = data[7];
        if !matches!(min_lc, 1 | 2 | 4) {
            return Err(PclntabError::BadHeader("bad minLC"));
        }
        if !matches!(ptr_size, 4 | 8) {
            return Err(PclntabError::BadHeader("bad ptrSize"));
        }
        let ps = usize::from(ptr_size);
        let hdr_len = 8 + 8 * ps;
        if data.len() < hdr_len {
            return Err(PclntabError::Truncated);
        }
        let word = |i: usize| rd_word(&data, 8 + i * ps, ptr_size).ok_or(PclntabError::Truncated);
        let nfunc = word(0)?;
        let header_text = word(2)?;
        let mut offs = [0u64; 5];
        for (i, o) in offs.iter_mut().enumerate() {
            *o = word(3 + i)?;
        }
        let len = data.len() as u64;
        for &o in &offs {
            if o < hdr_len as u64 || o > len {
                return Err(PclntabError::BadHeader("table offset out of range"));
            }
        }
        // Each table ends where the next-higher table starts (or at the end of the data).
        let region = |i: usize| -> Range<usize> {
            let start = offs[i];
            let end = offs
                .iter()
                .copied()
                .filter(|&o| o > start)
                .min()
                .unwrap_or(len);
            start as usize..end as usize
        };
        let functab = offs[4] as usize..data.len();
        // nfunc + 1 entries of 8 bytes must fit.
        let ft_bytes = nfunc
            .checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .ok_or(PclntabError::BadHeader("nfunc too large"))?;
        if nfunc > u64::from(u32::MAX) || ft_bytes > (functab.end - functab.start) as u64 {
            return Err(PclntabError::BadHeader("nfunc too large"));
        }
        if data.len() > u32::MAX as usize {
            return Err(PclntabError::BadHeader("pclntab larger than 4 GiB"));
        }
        Ok(Pclntab {
            go120,
            ptr_size,
            min_lc,
            nfunc: nfunc as usize,
            header_text,
            text_start: header_text,
            funcnametab: region(0),
            cutab: region(1),
            filetab: region(2),
            pctab: region(3),
            functab,
            gofunc: None,
            data,
        })
    }

    /// True for the Go 1.20+ format (44-byte `_func` with `startLine`, 16-byte inline records).
    pub fn is_go120(&self) -> bool {
        self.go120
    }

    /// Pointer size from the header (8 on amd64/arm64).
    pub fn ptr_size(&self) -> u8 {
        self.ptr_size
    }

    /// PC quantum from the header (1 on amd64, 4 on arm64).
    pub fn min_lc(&self) -> u8 {
        self.min_lc
    }

    /// Number of functions in the function table.
    pub fn nfunc(&self) -> usize {
        self.nfunc
    }

    /// The text start stored in the header (0 from Go 1.26 on).
    pub fn header_text_start(&self) -> u64 {
        self.header_text
    }

    /// Sets the real text base (`moduledata.text`) used to turn entry offsets into PCs.
    pub fn set_text_start(&mut self, text: u64) {
        self.text_start = text;
    }

    /// The text base in use.
    pub fn text_start(&self) -> u64 {
        self.text_start
    }

    /// Supplies the bytes of target memory starting at `moduledata.gofunc` (address `addr`),
    /// which hold inline trees and wrapper info.
    pub fn set_gofunc(&mut self, addr: u64, bytes: Vec<u8>) {
        self.gofunc = Some((addr, bytes));
    }

    /// `pcHeader.funcnameOffset`: where the function names start, from the header.
    pub(crate) fn funcname_offset(&self) -> u64 {
        self.funcnametab.start as u64
    }

    /// `pcHeader.pclnOffset`: where the function table starts, from the header.
    pub(crate) fn pcln_offset(&self) -> u64 {
        self.functab.start as u64
    }

    /// The entry offset (from the text start) of function table entry `i`, `0..=nfunc` (the
    /// last is the end of the text).
    pub(crate) fn entry_offset(&self, i: usize) -> Option<u32> {
        self.ft_entryoff(i)
    }

    /// The raw pclntab bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    #[inline]
    fn func_size(&self) -> usize {
        if self.go120 { 44 } else { 40 }
    }

    /// `entryoff` of function-table entry `i` (`i <= nfunc`, checked at parse time).
    #[inline]
    fn ft_entryoff(&self, i: usize) -> Option<u32> {
        rd_u32(&self.data, self.functab.start + i * 8)
    }

    /// The function at index `i` of the function table, if its record is readable.
    pub(crate) fn func_at(&self, i: usize) -> Option<Func> {
        if i >= self.nfunc {
            return None;
        }
        let funcoff = rd_u32(&self.data, self.functab.start + i * 8 + 4)?;
        let off = self.functab.start.checked_add(funcoff as usize)?;
        if off.checked_add(self.func_size())? > self.data.len() {
            return None;
        }
        Some(Func {
            idx: i as u32,
            off: off as u32,
        })
    }

    /// The function containing `pc` (`entry <= pc < next entry`), by binary search.
    pub fn func_for_pc(&self, pc: u64) -> Option<Func> {
        if self.nfunc == 0 {
            return None;
        }
        let rel = pc.checked_sub(self.text_start)?;
        let rel = u32::try_from(rel).ok()?;
        if rel < self.ft_entryoff(0)? || rel >= self.ft_entryoff(self.nfunc)? {
            return None;
        }
        // Largest i in [0, nfunc) with entryoff(i) <= rel.
        let (mut lo, mut hi) = (0usize, self.nfunc);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.ft_entryoff(mid)? <= rel {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if rel >= self.ft_entryoff(lo + 1)? {
            return None;
        }
        self.func_at(lo)
    }

    /// The function with exactly this name (the first one in table order if several share
    /// it). A pass over the function table: to look up several names, use
    /// [`Pclntab::funcs_by_names`].
    pub fn func_by_name(&self, name: &str) -> Option<Func> {
        self.funcs_by_names(&[name])[0]
    }

    /// The functions with exactly these names (each the first one in table order), in one pass
    /// over the function table that stops once all are found. Names are compared in place,
    /// their common prefix first, so a name that cannot match costs one short comparison.
    pub(crate) fn funcs_by_names(&self, names: &[&str]) -> Vec<Option<Func>> {
        let mut out = vec![None; names.len()];
        let Some(first) = names.first() else {
            return out;
        };
        let prefix = names.iter().fold(first.as_bytes(), |p, n| {
            let common = p
                .iter()
                .zip(n.as_bytes())
                .take_while(|(a, b)| a == b)
                .count();
            &p[..common]
        });
        let mut left = names.len();
        for f in self.funcs() {
            let Some(name_off) = self.field_u32(f, 4) else {
                continue;
            };
            let Some(start) = self.funcnametab.start.checked_add(name_off as usize) else {
                continue;
            };
            let Some(s) = self.data.get(start..self.funcnametab.end) else {
                continue;
            };
            if !s.starts_with(prefix) {
                continue;
            }
            for (slot, n) in out.iter_mut().zip(names) {
                if slot.is_none() && s.starts_with(n.as_bytes()) && s.get(n.len()) == Some(&0) {
                    *slot = Some(f);
                    left -= 1;
                }
            }
            if left == 0 {
                break;
            }
        }
        out
    }

    /// All readable functions, in function-table (address) order.
    pub fn funcs(&self) -> impl Iterator<Item = Func> + '_ {
        (0..self.nfunc).filter_map(move |i| self.func_at(i))
    }

    #[inline]
    fn field_u32(&self, f: Func, at: usize) -> Option<u32> {
        rd_u32(&self.data, f.off as usize + at)
    }

    #[inline]
    fn field_u8(&self, f: Func, at: usize) -> u8 {
        self.data.get(f.off as usize + at).copied().unwrap_or(0)
    }

    /// Entry offset from the text start.
    #[inline]
    fn entry_off(&self, f: Func) -> u32 {
        self.field_u32(f, 0).unwrap_or(0)
    }

    /// Absolute entry PC (`text_start + entryoff`).
    pub fn entry(&self, f: Func) -> u64 {
        self.text_start.wrapping_add(u64::from(self.entry_off(f)))
    }

    /// Absolute end PC (the next function's entry, or the end of text for the last one).
    pub fn end(&self, f: Func) -> u64 {
        let off = self
            .ft_entryoff(f.idx as usize + 1)
            .unwrap_or_else(|| self.entry_off(f));
        self.text_start.wrapping_add(u64::from(off))
    }

    /// The function's name (`""` if unreadable).
    pub fn name(&self, f: Func) -> &str {
        self.field_u32(f, 4)
            .and_then(|o| cstr(&self.data, &self.funcnametab, o as usize))
            .unwrap_or("")
    }

    /// Name at an offset into the function-name table (as used by inline tree records).
    pub(crate) fn name_at(&self, name_off: i32) -> Option<&str> {
        let o = usize::try_from(name_off).ok()?;
        cstr(&self.data, &self.funcnametab, o)
    }

    /// The funcID (version-dependent numbering; see the notes).
    pub fn func_id(&self, f: Func) -> u8 {
        self.field_u8(f, if self.go120 { 40 } else { 36 })
    }

    /// The flag byte (see [`func_flag`]).
    pub fn flag(&self, f: Func) -> u8 {
        self.field_u8(f, if self.go120 { 41 } else { 37 })
    }

    /// Argument size in bytes (`i32::MIN` = unknown, for assembly functions).
    pub fn args(&self, f: Func) -> i32 {
        self.field_u32(f, 8).unwrap_or(0) as i32
    }

    /// Line of the `func` keyword (0 before Go 1.20).
    pub fn start_line(&self, f: Func) -> i32 {
        if self.go120 {
            self.field_u32(f, 36).unwrap_or(0) as i32
        } else {
            0
        }
    }

    /// Offset from entry of the deferreturn call (0 = none).
    pub(crate) fn deferreturn(&self, f: Func) -> u32 {
        self.field_u32(f, 12).unwrap_or(0)
    }
}

mod tables;
#[cfg(test)]
mod tests;
