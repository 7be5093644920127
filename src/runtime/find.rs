//! Discovery without symbols: `runtime.firstmoduledata` and `runtime.allgs` in stripped
//! binaries (`-ldflags=-s -w`), from what survives stripping (pclntab, section headers,
//! machine code).
//!
//! Every function here is a pure function of the executable (plus, for live values, a
//! [`MemoryReader`]); every candidate is validated before it is returned, and every loop is
//! bounded. Addresses are in the executable's own numbering unless said otherwise; for PIE the
//! target address is the executable address plus the load bias.
//!
//! * [`moduledata_addr`]: Go 1.26+ puts moduledata in its own `.go.module` section; earlier
//!   versions are found by scanning writable data for a word equal to the pclntab address and
//!   validating the slices that follow it (notes §1.1).
//! * [`allgs_addr`]: decodes `runtime.allgadd` (found by name in the pclntab) and collects every
//!   absolute data address it references (RIP-relative operands on amd64, ADRP + immediate on
//!   arm64). `allgs` is the `X` with `X+8` and `X+16` also referenced (slice ptr/len/cap); it is
//!   then validated against live values (notes §1.2.6).

use super::layout::{F, Layout};
use crate::arch::{Arch, amd64, arm64};
use crate::binary::GoBinary;
use crate::target::{MemoryReader, ReadError, ReadExt};
use object::{Object, ObjectSection, SectionFlags};
use std::fmt;

/// Largest data section scanned for moduledata.
const MAX_SCAN_SECTION: u64 = 256 << 20;
/// Most validated-or-not candidate words considered while scanning for moduledata.
const MAX_MODULEDATA_CANDIDATES: usize = 64;
/// Longest `runtime.allgadd` decoded (it is a few hundred bytes in every version).
const MAX_FUNC_BYTES: u64 = 64 << 10;
/// Largest `len(allgs)` accepted.
const MAX_ALLGS: u64 = 16 << 20;
/// How many `allgs` elements are checked.
const CHECK_ELEMS: u64 = 16;
/// The function whose code references `allgs`, `allglen` and `allgptr`.
const ALLGADD: &str = "runtime.allgadd";

/// Why a runtime address could not be found without symbols.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindError {
    /// No candidate at all.
    NotFound(&'static str),
    /// Candidates were found but none validated; the string says why the last one failed.
    Invalid(&'static str, String),
    /// More than one candidate validated.
    Ambiguous(&'static str, Vec<u64>),
    /// A function is not in the pclntab.
    NoFunction(&'static str),
    /// The pclntab's text start is not set (see [`allgs_addr`]).
    TextNotSet,
    /// Bytes of the executable could not be read.
    Unreadable(&'static str, u64),
    /// An instruction could not be decoded.
    Decode(&'static str, u64),
    /// Target memory could not be read.
    Read(ReadError),
}

impl fmt::Display for FindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindError::NotFound(w) => write!(f, "{w} not found"),
            FindError::Invalid(w, why) => write!(f, "no valid {w}: {why}"),
            FindError::Ambiguous(w, c) => {
                write!(f, "{w} is ambiguous: {} candidates validate (", c.len())?;
                for (i, a) in c.iter().enumerate() {
                    write!(f, "{}{a:#x}", if i > 0 { ", " } else { "" })?;
                }
                f.write_str(")")
            }
            FindError::NoFunction(n) => write!(f, "no function {n} in the pclntab"),
            FindError::TextNotSet => f.write_str("the pclntab's text start is not set"),
            FindError::Unreadable(w, a) => {
                write!(f, "cannot read {w} at {a:#x} from the executable")
            }
            FindError::Decode(n, a) => write!(f, "cannot decode the instruction at {a:#x} in {n}"),
            FindError::Read(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FindError {}

impl From<ReadError> for FindError {
    fn from(e: ReadError) -> Self {
        FindError::Read(e)
    }
}

// ---------------------------------------------------------------------------------------------
// moduledata

/// Address of `runtime.firstmoduledata` in the executable's numbering, found without symbols.
///
/// Go 1.26+: the `.go.module` section. Earlier (or when that section is missing): the first
/// 8-byte-aligned word in `.noptrdata`, then in the other writable data sections, equal to the
/// pclntab address that validates as moduledata ([`check_moduledata`]). Field offsets come from
/// `layout` (`ModPcHeader`, `ModText`, `ModEtext`, `ModGofunc`). Words are read from the file
/// ([`read_static_u64`]), so this works before the target is touched.
pub fn moduledata_addr(bin: &GoBinary, layout: &Layout) -> Result<u64, FindError> {
    let mut last_err = None;
    if let Some(a) = bin.go_module_section {
        match check_moduledata(bin, layout, a) {
            Ok(()) => return Ok(a),
            Err(e) => last_err = Some(format!(".go.module at {a:#x}: {e}")),
        }
    }
    let elf = bin.elf();
    let mut sections: Vec<(u64, u64)> = Vec::new();
    if let Some(s) = elf.section_by_name(".noptrdata") {
        sections.push((s.address(), s.size()));
    }
    for s in elf.sections() {
        let write = match s.flags() {
            SectionFlags::Elf { sh_flags, .. } => sh_flags.contains(object::elf::SHF_WRITE),
            _ => false,
        };
        let r = (s.address(), s.size());
        if write && s.file_range().is_some() && s.address() != 0 && !sections.contains(&r) {
            sections.push(r);
        }
    }
    let target = bin.pclntab_addr;
    let mut seen = 0usize;
    for (addr, size) in sections {
        let size = size.min(MAX_SCAN_SECTION);
        let start = addr.next_multiple_of(8);
        let Some(bytes) = bin.read_static(start, (addr + size).saturating_sub(start)) else {
            continue;
        };
        let pie_relocs = bin
            .is_pie
            .then(|| relative_relocs(bin, start, start + bytes.len() as u64));
        let hits = bytes.chunks_exact(8).enumerate().filter_map(|(i, w)| {
            let a = start + 8 * i as u64;
            let v = u64::from_le_bytes(w.try_into().unwrap());
            let v = match &pie_relocs {
                Some(r) if v == 0 => r
                    .binary_search_by_key(&a, |e| e.0)
                    .map(|i| r[i].1)
                    .unwrap_or(0),
                _ => v,
            };
            (v == target).then_some(a)
        });
        for cand in hits {
            let md = cand.wrapping_sub(layout.off(F::ModPcHeader).unwrap_or(0));
            seen += 1;
            match check_moduledata(bin, layout, md) {
                Ok(()) => return Ok(md),
                Err(e) => last_err = Some(format!("candidate at {md:#x}: {e}")),
            }
            if seen >= MAX_MODULEDATA_CANDIDATES {
                break;
            }
        }
        if seen >= MAX_MODULEDATA_CANDIDATES {
            break;
        }
    }
    match last_err {
        Some(e) => Err(FindError::Invalid("moduledata", e)),
        None => Err(FindError::NotFound(
            "moduledata (no word equal to the pclntab address in writable data)",
        )),
    }
}

/// Checks that `md` (executable numbering) holds a moduledata describing this binary's
/// pclntab: `pcHeader` is the pclntab, `funcnametab.ptr` is pclntab + `funcnameOffset`,
/// `ftab` is the function table with `nfunc + 1` entries, `minpc`/`maxpc` are `text` plus the
/// first/last function-table offsets, `text <= minpc <= maxpc <= etext`, `text` agrees with the
/// header's `textStart` where that is stored (before Go 1.26), and `gofunc` is set.
pub fn check_moduledata(bin: &GoBinary, layout: &Layout, md: u64) -> Result<(), String> {
    let word = |off: u64, what: &str| {
        read_static_u64(bin, md.wrapping_add(off))
            .ok_or_else(|| format!("cannot read {what} at {:#x}", md + off))
    };
    let fld = |f: F, what: &str| {
        let off = layout
            .off(f)
            .ok_or_else(|| format!("the layout has no {what}"))?;
        word(off, what)
    };
    let pcln = bin.pclntab_addr;
    let tab = &bin.pclntab;
    let pc_header = fld(F::ModPcHeader, "pcHeader")?;
    if pc_header != pcln {
        return Err(format!(
            "pcHeader {pc_header:#x} is not the pclntab {pcln:#x}"
        ));
    }
    let funcname = pcln.wrapping_add(tab.funcname_offset());
    let fnt = fld(F::ModFuncnametab, "funcnametab")?;
    if fnt != funcname {
        return Err(format!(
            "funcnametab {fnt:#x} is not pclntab+funcnameOffset {funcname:#x}"
        ));
    }
    let pcln_off = tab.pcln_offset();
    let ftab_off = layout.off(F::ModFtab).ok_or("the layout has no ftab")?;
    let ftab = word(ftab_off, "ftab")?;
    if ftab != pcln.wrapping_add(pcln_off) {
        return Err(format!(
            "ftab {ftab:#x} is not pclntab+pclnOffset {:#x}",
            pcln.wrapping_add(pcln_off)
        ));
    }
    let nfunc = tab.nfunc() as u64;
    let ftab_len = word(ftab_off + 8, "len(ftab)")?;
    if ftab_len != nfunc + 1 {
        return Err(format!(
            "len(ftab) {ftab_len} is not nfunc+1 = {}",
            nfunc + 1
        ));
    }
    let entryoff = |i: u64| tab.entry_offset(usize::try_from(i).ok()?).map(u64::from);
    let (first, last) = match (entryoff(0), entryoff(nfunc)) {
        (Some(a), Some(b)) => (a, b),
        _ => return Err("function table is short".into()),
    };
    let text = fld(F::ModText, "text")?;
    let etext = fld(F::ModEtext, "etext")?;
    let minpc = fld(F::ModMinpc, "minpc")?;
    let maxpc = fld(F::ModMaxpc, "maxpc")?;
    if text == 0 || minpc != text.wrapping_add(first) || maxpc != text.wrapping_add(last) {
        return Err(format!(
            "minpc {minpc:#x}/maxpc {maxpc:#x} do not match text {text:#x} + function table [{first:#x}, {last:#x}]"
        ));
    }
    if !(text <= minpc && minpc <= maxpc && maxpc <= etext) {
        return Err(format!(
            "text {text:#x} etext {etext:#x} do not enclose [{minpc:#x}, {maxpc:#x}]"
        ));
    }
    let hdr_text = tab.header_text_start();
    if hdr_text != 0 && hdr_text != text {
        return Err(format!(
            "text {text:#x} is not the pclntab's textStart {hdr_text:#x}"
        ));
    }
    if fld(F::ModGofunc, "gofunc")? == 0 {
        return Err("gofunc is 0".into());
    }
    Ok(())
}

/// The little-endian word at `addr` (executable numbering) as the loaded program sees it
/// before it runs: the file's bytes, or for PIE, when the file holds 0 there, the addend of an
/// `R_*_RELATIVE` dynamic relocation of that word.
pub fn read_static_u64(bin: &GoBinary, addr: u64) -> Option<u64> {
    let v = u64::from_le_bytes(bin.read_static(addr, 8)?.try_into().ok()?);
    if v != 0 || !bin.is_pie {
        return Some(v);
    }
    Some(
        relative_relocs(bin, addr, addr + 8)
            .first()
            .map(|r| r.1)
            .unwrap_or(0),
    )
}

/// `(offset, addend)` of the `R_X86_64_RELATIVE`/`R_AARCH64_RELATIVE` dynamic relocations
/// whose offset is in `[lo, hi)`, sorted by offset.
fn relative_relocs(bin: &GoBinary, lo: u64, hi: u64) -> Vec<(u64, u64)> {
    use object::elf::{R_AARCH64_RELATIVE, R_X86_64_RELATIVE};
    let want = match bin.arch {
        Arch::Amd64 => R_X86_64_RELATIVE,
        Arch::Arm64 => R_AARCH64_RELATIVE,
    };
    let elf = bin.elf();
    let mut out = Vec::new();
    let Some(relocs) = elf.dynamic_relocations() else {
        return out;
    };
    for (off, r) in relocs {
        if off < lo || off >= hi {
            continue;
        }
        if let object::RelocationFlags::Elf { r_type } = r.flags()
            && r_type == want
        {
            out.push((off, r.addend() as u64));
        }
    }
    out.sort_unstable();
    out
}

// ---------------------------------------------------------------------------------------------
// allgs

/// Where `runtime.allgs` and its published copies live in the target (target numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllgsFound {
    /// The `allgs []*g` slice header.
    pub allgs: u64,
    /// `allglen uintptr`, if exactly one referenced word held `len(allgs)`.
    pub allglen: Option<u64>,
    /// `allgptr **g`, if exactly one referenced word held `&allgs[0]`.
    pub allgptr: Option<u64>,
}

/// Finds `runtime.allgs` by decoding `runtime.allgadd` and validates it with live values.
///
/// **Precondition:** the pclntab's text start must be set (`bin.pclntab.set_text_start`), in
/// the target's numbering, i.e. to the live `moduledata.text` (as `Runtime::open` does before
/// anything else); function entries are then target addresses and `entry - bias` is where the
/// code is in the file. `bias` is the load bias (target address = executable address + bias).
///
/// Candidates are the `X` of [`allgs_candidates`]. A candidate validates when the slice header
/// at `X + bias` reads as `len <= cap <= 16M`, `ptr != 0` and 8-aligned when `cap > 0`, and the
/// first `min(len, 16)` elements are nonzero and 8-aligned. Exactly one candidate must validate.
/// `allglen`/`allgptr` are the other referenced words whose live value is `len`/`ptr`.
pub fn allgs_addr(
    bin: &GoBinary,
    mem: &impl MemoryReader,
    bias: u64,
) -> Result<AllgsFound, FindError> {
    allgs_from_refs(&allgadd_refs(bin, bias)?, mem, bias)
}

/// The validating half of [`allgs_addr`]: picks `allgs`, `allglen` and `allgptr` among
/// `refs` (executable numbering, sorted, deduplicated, as [`allgadd_refs`] returns them) by
/// reading their live values through `mem` at `ref + bias`. Returns target addresses.
pub(crate) fn allgs_from_refs(
    refs: &[u64],
    mem: &impl MemoryReader,
    bias: u64,
) -> Result<AllgsFound, FindError> {
    let cands = allgs_candidates(refs);
    if cands.is_empty() {
        return Err(FindError::NotFound(
            "runtime.allgs (no X, X+8, X+16 referenced by runtime.allgadd)",
        ));
    }
    let mut ok = Vec::new();
    let mut last_err = String::new();
    for &x in &cands {
        match check_allgs(mem, x.wrapping_add(bias)) {
            Ok(v) => ok.push((x, v)),
            Err(FindError::Invalid(_, why)) => {
                last_err = format!("candidate {:#x}: {why}", x.wrapping_add(bias))
            }
            Err(e) => last_err = format!("candidate {:#x}: {e}", x.wrapping_add(bias)),
        }
    }
    let (x, (ptr, len)) = match ok.as_slice() {
        [one] => *one,
        [] => return Err(FindError::Invalid("runtime.allgs", last_err)),
        many => {
            return Err(FindError::Ambiguous(
                "runtime.allgs",
                many.iter().map(|(x, _)| x.wrapping_add(bias)).collect(),
            ));
        }
    };
    let others: Vec<u64> = refs
        .iter()
        .copied()
        .filter(|&r| r % 8 == 0 && !(x..x + 24).contains(&r))
        .collect();
    // The one other referenced word holding `want` (None if none or several do).
    let unique_with = |want: u64| {
        let mut hits = others
            .iter()
            .map(|r| r.wrapping_add(bias))
            .filter(|&a| mem.read_u64(a).ok() == Some(want));
        let first = hits.next();
        if hits.next().is_some() { None } else { first }
    };
    let allglen = if len > 0 { unique_with(len) } else { None };
    let allgptr = if ptr != 0 { unique_with(ptr) } else { None };
    Ok(AllgsFound {
        allgs: x.wrapping_add(bias),
        allglen,
        allgptr,
    })
}

/// Reads and checks the slice header at `addr` (target numbering); `(ptr, len)` if it looks
/// like `allgs`.
pub(crate) fn check_allgs(mem: &impl MemoryReader, addr: u64) -> Result<(u64, u64), FindError> {
    let mut h = [0u8; 24];
    mem.read_at(addr, &mut h)?;
    let w = |i: usize| u64::from_le_bytes(h[i * 8..i * 8 + 8].try_into().unwrap());
    let (ptr, len, cap) = (w(0), w(1), w(2));
    let bad = |why: String| Err(FindError::Invalid("runtime.allgs", why));
    if len > cap || cap > MAX_ALLGS {
        return bad(format!("len {len} cap {cap}"));
    }
    if cap > 0 && (ptr == 0 || ptr % 8 != 0) {
        return bad(format!("ptr {ptr:#x} with cap {cap}"));
    }
    let n = len.min(CHECK_ELEMS);
    if n > 0 {
        let mut b = vec![0u8; n as usize * 8];
        mem.read_at(ptr, &mut b)?;
        for (i, e) in b.chunks_exact(8).enumerate() {
            let g = u64::from_le_bytes(e.try_into().unwrap());
            if g == 0 || g % 8 != 0 {
                return bad(format!("allgs[{i}] = {g:#x}"));
            }
        }
    }
    Ok((ptr, len))
}

/// The `X` in `refs` (sorted, deduplicated) with `X + 8` and `X + 16` also in `refs`.
pub fn allgs_candidates(refs: &[u64]) -> Vec<u64> {
    refs.iter()
        .copied()
        .filter(|&x| {
            x % 8 == 0
                && x.checked_add(16).is_some()
                && refs.binary_search(&(x + 8)).is_ok()
                && refs.binary_search(&(x + 16)).is_ok()
        })
        .collect()
}

/// Every absolute data address `runtime.allgadd` references, in the executable's numbering,
/// sorted and deduplicated. Same precondition as [`allgs_addr`] (text start set, in target
/// numbering; `bias` = load bias).
pub fn allgadd_refs(bin: &GoBinary, bias: u64) -> Result<Vec<u64>, FindError> {
    func_refs(bin, ALLGADD, bias)
}

/// Every absolute data address the function `name` references (executable numbering).
pub(crate) fn func_refs(
    bin: &GoBinary,
    name: &'static str,
    bias: u64,
) -> Result<Vec<u64>, FindError> {
    let tab = &bin.pclntab;
    if tab.text_start() == 0 {
        return Err(FindError::TextNotSet);
    }
    let f = tab.func_by_name(name).ok_or(FindError::NoFunction(name))?;
    let (entry, end) = (
        tab.entry(f).wrapping_sub(bias),
        tab.end(f).wrapping_sub(bias),
    );
    let len = end
        .checked_sub(entry)
        .filter(|&l| l > 0 && l <= MAX_FUNC_BYTES)
        .ok_or(FindError::Unreadable(name, entry))?;
    let code = bin
        .read_static(entry, len)
        .ok_or(FindError::Unreadable(name, entry))?;
    let mut refs = match bin.arch {
        Arch::Amd64 => amd64::data_refs(code, entry).map_err(|at| FindError::Decode(name, at))?,
        Arch::Arm64 => arm64::data_refs(code, entry),
    };
    refs.sort_unstable();
    refs.dedup();
    Ok(refs)
}

/// Every absolute data address the code of `[entry, end)` references (target numbering;
/// amd64: RIP-relative operands, `LEA` or a memory operand; arm64: `ADRP` with the `ADD`,
/// load or store that completes it). Empty when the code is unreadable or an amd64
/// instruction cannot be decoded.
pub(crate) fn code_refs(bin: &GoBinary, entry: u64, end: u64, bias: u64) -> Vec<u64> {
    let at = entry.wrapping_sub(bias);
    let Some(code) = end
        .checked_sub(entry)
        .filter(|&l| l > 0 && l <= MAX_FUNC_BYTES)
        .and_then(|l| bin.read_static(at, l))
    else {
        return Vec::new();
    };
    let refs = match bin.arch {
        Arch::Amd64 => amd64::data_refs(code, at).unwrap_or_default(),
        Arch::Arm64 => arm64::data_refs(code, at),
    };
    refs.into_iter().map(|r| r.wrapping_add(bias)).collect()
}

/// Targets of the direct calls in the code of `[entry, end)` (target numbering; amd64 `CALL
/// rel32`, arm64 `BL`), in code order. Stops at the first instruction that cannot be decoded.
pub(crate) fn direct_calls(bin: &GoBinary, entry: u64, end: u64, bias: u64) -> Vec<u64> {
    let Some(code) = end
        .checked_sub(entry)
        .filter(|&l| l > 0 && l <= MAX_FUNC_BYTES)
        .and_then(|l| bin.read_static(entry.wrapping_sub(bias), l))
    else {
        return Vec::new();
    };
    match bin.arch {
        Arch::Amd64 => amd64::direct_calls(code, entry),
        Arch::Arm64 => arm64::direct_calls(code, entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A sparse fake memory: 8-byte words at addresses.
    struct Fake(HashMap<u64, u64>);

    impl MemoryReader for Fake {
        fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            let err = ReadError {
                addr,
                len: buf.len() as u64,
            };
            if !addr.is_multiple_of(8) || !buf.len().is_multiple_of(8) {
                return Err(err);
            }
            for (i, c) in buf.chunks_exact_mut(8).enumerate() {
                let w = self.0.get(&(addr + 8 * i as u64)).ok_or(err)?;
                c.copy_from_slice(&w.to_le_bytes());
            }
            Ok(())
        }
    }

    #[test]
    fn candidates_need_the_triple() {
        assert_eq!(
            allgs_candidates(&[0x100, 0x108, 0x110, 0x200, 0x208]),
            vec![0x100]
        );
        assert_eq!(allgs_candidates(&[0x100, 0x110]), Vec::<u64>::new());
    }

    #[test]
    fn allgs_validation() {
        let mut m = HashMap::new();
        // allgs at 0x1000 = {0x5000, 2, 4}; elements nonzero.
        m.extend([
            (0x1000, 0x5000),
            (0x1008, 2),
            (0x1010, 4),
            (0x5000, 0xc000_0000),
            (0x5008, 0xc000_1000),
        ]);
        // bad: len > cap
        m.extend([(0x2000, 0x5000), (0x2008, 5), (0x2010, 4)]);
        // bad: zero element
        m.extend([(0x3000, 0x6000), (0x3008, 1), (0x3010, 1), (0x6000, 0)]);
        let mem = Fake(m);
        assert_eq!(check_allgs(&mem, 0x1000), Ok((0x5000, 2)));
        assert!(matches!(
            check_allgs(&mem, 0x2000),
            Err(FindError::Invalid(..))
        ));
        assert!(matches!(
            check_allgs(&mem, 0x3000),
            Err(FindError::Invalid(..))
        ));
        assert!(matches!(check_allgs(&mem, 0x4000), Err(FindError::Read(_))));
        let e = check_allgs(&mem, 0x2000).unwrap_err().to_string();
        assert_eq!(e, "no valid runtime.allgs: len 5 cap 4");
    }

    #[test]
    fn allgs_selection() {
        let bias = 0x10_0000;
        let mut m = HashMap::new();
        // Executable numbering: allgs at 0x1000 (triple), allgptr at 0x900, allglen at 0x2000,
        // a lock word at 0x2100, a second triple at 0x3000 whose header is invalid.
        m.extend([(0x1000, 0x5000), (0x1008, 2), (0x1010, 4)]);
        m.extend([
            (0x900, 0x5000),
            (0x2000, 2),
            (0x2100, 0),
            (0x3000, 7),
            (0x3008, 9),
            (0x3010, 1),
        ]);
        let mut mem = Fake(m.into_iter().map(|(a, v)| (a + bias, v)).collect());
        // The heap (target addresses, not biased).
        mem.0.extend([(0x5000, 0xc000_0000), (0x5008, 0xc000_1000)]);
        let refs = [
            0x900, 0x1000, 0x1008, 0x1010, 0x2000, 0x2100, 0x3000, 0x3008, 0x3010,
        ];
        let found = allgs_from_refs(&refs, &mem, bias).unwrap();
        assert_eq!(
            found,
            AllgsFound {
                allgs: 0x1000 + bias,
                allglen: Some(0x2000 + bias),
                allgptr: Some(0x900 + bias)
            }
        );
        // Two words holding len(allgs): allglen is not guessed.
        let mut mem2 = Fake(mem.0.clone());
        mem2.0.insert(0x2100 + bias, 2);
        assert_eq!(allgs_from_refs(&refs, &mem2, bias).unwrap().allglen, None);
        // Without the triple there is nothing; with the only triple invalid, an error says why.
        assert_eq!(
            allgs_from_refs(&[0x900, 0x2000], &mem, bias),
            Err(FindError::NotFound(
                "runtime.allgs (no X, X+8, X+16 referenced by runtime.allgadd)"
            ))
        );
        let e = allgs_from_refs(&[0x3000, 0x3008, 0x3010], &mem, bias).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no valid runtime.allgs: candidate 0x103000: len 9 cap 1"
        );
        // Two valid triples are ambiguous.
        let mut mem3 = Fake(mem.0.clone());
        mem3.0.extend([
            (0x3000 + bias, 0x5000),
            (0x3008 + bias, 1),
            (0x3010 + bias, 1),
        ]);
        assert!(
            matches!(allgs_from_refs(&refs, &mem3, bias), Err(FindError::Ambiguous(_, v)) if v.len() == 2)
        );
    }
}
