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
use crate::arch::Arch;
use crate::binary::GoBinary;
use crate::target::{MemoryReader, ReadError, ReadExt};
use object::{Object, ObjectSection, SectionFlags};
use std::fmt;

/// Offset of `moduledata.funcnametab` (a slice; stable Go 1.18–1.27).
const MOD_FUNCNAMETAB: u64 = 8;
/// Offset of `moduledata.ftab` (a slice; stable Go 1.18–1.27).
const MOD_FTAB: u64 = 128;
/// Offset of `moduledata.minpc` (stable Go 1.18–1.27).
const MOD_MINPC: u64 = 160;
/// Offset of `moduledata.maxpc` (stable Go 1.18–1.27).
const MOD_MAXPC: u64 = 168;

/// Largest data section scanned for moduledata.
const MAX_SCAN_SECTION: u64 = 256 << 20;
/// Most validated-or-not candidate words considered while scanning for moduledata.
const MAX_MODULEDATA_CANDIDATES: usize = 64;
/// Longest `runtime.allgadd` decoded (it is a few hundred bytes in every version).
const MAX_FUNC_BYTES: u64 = 64 << 10;
/// Most instructions decoded in one function.
const MAX_INSNS: usize = 16 << 10;
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
    let fnt = word(MOD_FUNCNAMETAB, "funcnametab")?;
    if fnt != funcname {
        return Err(format!(
            "funcnametab {fnt:#x} is not pclntab+funcnameOffset {funcname:#x}"
        ));
    }
    let pcln_off = tab.pcln_offset();
    let ftab = word(MOD_FTAB, "ftab")?;
    if ftab != pcln.wrapping_add(pcln_off) {
        return Err(format!(
            "ftab {ftab:#x} is not pclntab+pclnOffset {:#x}",
            pcln.wrapping_add(pcln_off)
        ));
    }
    let nfunc = tab.nfunc() as u64;
    let ftab_len = word(MOD_FTAB + 8, "len(ftab)")?;
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
    let minpc = word(MOD_MINPC, "minpc")?;
    let maxpc = word(MOD_MAXPC, "maxpc")?;
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
pub fn allgs_from_refs(
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
pub fn check_allgs(mem: &impl MemoryReader, addr: u64) -> Result<(u64, u64), FindError> {
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
pub fn func_refs(bin: &GoBinary, name: &'static str, bias: u64) -> Result<Vec<u64>, FindError> {
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
        Arch::Amd64 => amd64_refs(code, entry).map_err(|at| FindError::Decode(name, at))?,
        Arch::Arm64 => arm64_refs(code, entry),
    };
    refs.sort_unstable();
    refs.dedup();
    Ok(refs)
}

/// Every absolute data address the code of `[entry, end)` references (target numbering;
/// amd64: RIP-relative operands, `LEA` or a memory operand; arm64: `ADRP` with the `ADD`,
/// load or store that completes it). Empty when the code is unreadable or an amd64
/// instruction cannot be decoded.
pub fn code_refs(bin: &GoBinary, entry: u64, end: u64, bias: u64) -> Vec<u64> {
    let at = entry.wrapping_sub(bias);
    let Some(code) = end
        .checked_sub(entry)
        .filter(|&l| l > 0 && l <= MAX_FUNC_BYTES)
        .and_then(|l| bin.read_static(at, l))
    else {
        return Vec::new();
    };
    let refs = match bin.arch {
        Arch::Amd64 => amd64_refs(code, at).unwrap_or_default(),
        Arch::Arm64 => arm64_refs(code, at),
    };
    refs.into_iter().map(|r| r.wrapping_add(bias)).collect()
}

/// Targets of the direct calls in the code of `[entry, end)` (target numbering; amd64 `CALL
/// rel32`, arm64 `BL`), in code order. Stops at the first instruction that cannot be decoded.
pub fn direct_calls(bin: &GoBinary, entry: u64, end: u64, bias: u64) -> Vec<u64> {
    let Some(code) = end
        .checked_sub(entry)
        .filter(|&l| l > 0 && l <= MAX_FUNC_BYTES)
        .and_then(|l| bin.read_static(entry.wrapping_sub(bias), l))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match bin.arch {
        Arch::Amd64 => {
            let mut pos = 0usize;
            for _ in 0..MAX_INSNS {
                let Some(insn) = code.get(pos..).and_then(x86_decode) else {
                    break;
                };
                let next = entry + (pos + insn.len) as u64;
                if insn.len == 5 && code[pos] == 0xE8 {
                    let rel = i32::from_le_bytes(code[pos + 1..pos + 5].try_into().unwrap());
                    out.push(next.wrapping_add(rel as i64 as u64));
                }
                pos += insn.len;
            }
        }
        Arch::Arm64 => {
            for (i, w) in code.chunks_exact(4).enumerate().take(MAX_INSNS) {
                let insn = u32::from_le_bytes(w.try_into().unwrap());
                if insn & 0xFC00_0000 == 0x9400_0000 {
                    let off = sign_extend(u64::from(insn & 0x03FF_FFFF) << 2, 28);
                    out.push((entry + 4 * i as u64).wrapping_add(off));
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// amd64

/// One decoded amd64 instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct X86Insn {
    /// Length in bytes.
    len: usize,
    /// The signed 32-bit displacement of a RIP-relative memory operand, if any.
    rip_disp: Option<i32>,
}

/// Targets of every RIP-relative operand in `code` (which starts at `addr`), or the address of
/// the first instruction that could not be decoded. Trailing `INT3` padding is fine.
fn amd64_refs(code: &[u8], addr: u64) -> Result<Vec<u64>, u64> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..MAX_INSNS {
        if pos >= code.len() {
            return Ok(out);
        }
        let at = addr + pos as u64;
        let insn = x86_decode(&code[pos..]).ok_or(at)?;
        let next = at + insn.len as u64;
        if let Some(d) = insn.rip_disp {
            out.push(next.wrapping_add(d as i64 as u64));
        }
        pos += insn.len;
    }
    Err(addr + pos as u64)
}

/// Immediate kinds of the x86 opcode maps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Imm {
    None,
    /// 1 byte.
    B,
    /// 2 bytes.
    W,
    /// 4 bytes, 2 with an operand-size prefix.
    Z,
    /// 8 bytes with REX.W, else as `Z` (`MOV r, imm`).
    V,
    /// `ENTER`: 2 + 1 bytes.
    Enter,
    /// `MOV AL/rAX, moffs`: an 8-byte address (4 with an address-size prefix).
    Moffs,
}

/// Length-decodes one amd64 instruction (the general-purpose, x87, SSE and VEX encodings; not
/// EVEX or 3DNow!). `None` for invalid or unsupported encodings and truncated input.
fn x86_decode(c: &[u8]) -> Option<X86Insn> {
    let mut p = 0usize;
    let (mut opsize16, mut addr32) = (false, false);
    // Legacy prefixes (at most 14 in a 15-byte instruction).
    for _ in 0..14 {
        match *c.get(p)? {
            0x66 => opsize16 = true,
            0x67 => addr32 = true,
            0xF0 | 0xF2 | 0xF3 | 0x2E | 0x36 | 0x3E | 0x26 | 0x64 | 0x65 => {}
            _ => break,
        }
        p += 1;
    }
    let mut rex_w = false;
    if (0x40..=0x4F).contains(c.get(p)?) {
        rex_w = c[p] & 8 != 0;
        p += 1;
    }
    let op = *c.get(p)?;
    p += 1;
    let (modrm, imm) = match op {
        0x0F => {
            let op2 = *c.get(p)?;
            p += 1;
            match op2 {
                0x38 => {
                    p += 1;
                    (true, Imm::None)
                }
                0x3A => {
                    p += 1;
                    (true, Imm::B)
                }
                0x0F
                | 0x04
                | 0x0A
                | 0x0C
                | 0x24..=0x27
                | 0x36
                | 0x39
                | 0x3B..=0x3F
                | 0x7A
                | 0x7B
                | 0xFF => {
                    return None;
                }
                0x80..=0x8F => (false, Imm::Z),
                0x05..=0x09
                | 0x0B
                | 0x0E
                | 0x30..=0x35
                | 0x37
                | 0x77
                | 0xA0..=0xA2
                | 0xA8..=0xAA
                | 0xC8..=0xCF => (false, Imm::None),
                0x70..=0x73 | 0xA4 | 0xAC | 0xBA | 0xC2 | 0xC4..=0xC6 => (true, Imm::B),
                _ => (true, Imm::None),
            }
        }
        0xC4 | 0xC5 => {
            // VEX: 3-byte form carries the opcode map; 2-byte form means 0F.
            let map = if op == 0xC4 { *c.get(p)? & 0x1F } else { 1 };
            p += if op == 0xC4 { 2 } else { 1 };
            let op2 = *c.get(p)?;
            p += 1;
            match map {
                1 if op2 == 0x77 => (false, Imm::None), // VZEROUPPER/VZEROALL
                1 if matches!(op2, 0x70..=0x73 | 0xC2 | 0xC4..=0xC6) => (true, Imm::B),
                1 | 2 => (true, Imm::None),
                3 => (true, Imm::B),
                _ => return None,
            }
        }
        0x00..=0x3F => match op & 7 {
            0..=3 => (true, Imm::None),
            4 => (false, Imm::B),
            5 => (false, Imm::Z),
            _ => return None, // push/pop segment, BCD adjust: invalid in 64-bit mode
        },
        0x50..=0x5F
        | 0x6C..=0x6F
        | 0x90..=0x99
        | 0x9B..=0x9F
        | 0xA4..=0xA7
        | 0xAA..=0xAF
        | 0xC3
        | 0xC9
        | 0xCB
        | 0xCC
        | 0xCF
        | 0xD7
        | 0xEC..=0xEF
        | 0xF1
        | 0xF4
        | 0xF5
        | 0xF8..=0xFD => (false, Imm::None),
        0x63 | 0x84..=0x8F | 0xD0..=0xD3 | 0xD8..=0xDF | 0xFE | 0xFF => (true, Imm::None),
        0x68 => (false, Imm::Z),
        0x69 | 0x81 | 0xC7 => (true, Imm::Z),
        0x6A | 0x70..=0x7F | 0xA8 | 0xB0..=0xB7 | 0xCD | 0xE0..=0xE7 | 0xEB => (false, Imm::B),
        0x6B | 0x80 | 0x83 | 0xC0 | 0xC1 | 0xC6 => (true, Imm::B),
        0xA0..=0xA3 => (false, Imm::Moffs),
        0xA9 => (false, Imm::Z),
        0xB8..=0xBF => (false, Imm::V),
        0xC2 | 0xCA => (false, Imm::W),
        0xC8 => (false, Imm::Enter),
        0xE8 | 0xE9 => (false, Imm::Z),
        0xF6 | 0xF7 => {
            // TEST r/m, imm has reg field 0 or 1; the other group-3 forms have no immediate.
            let reg = (*c.get(p)? >> 3) & 7;
            let imm = match (reg, op) {
                (0 | 1, 0xF6) => Imm::B,
                (0 | 1, _) => Imm::Z,
                _ => Imm::None,
            };
            (true, imm)
        }
        _ => return None,
    };
    let mut rip_disp = None;
    if modrm {
        let m = *c.get(p)?;
        p += 1;
        let (md, rm) = (m >> 6, m & 7);
        if md != 3 {
            let mut disp = match md {
                1 => 1,
                2 => 4,
                _ => 0,
            };
            if rm == 4 {
                let sib = *c.get(p)?;
                p += 1;
                if md == 0 && sib & 7 == 5 {
                    disp = 4;
                }
            } else if md == 0 && rm == 5 {
                rip_disp = Some(i32::from_le_bytes(c.get(p..p + 4)?.try_into().ok()?));
                disp = 4;
            }
            p += disp;
        }
    }
    let z = if opsize16 { 2 } else { 4 };
    p += match imm {
        Imm::None => 0,
        Imm::B => 1,
        Imm::W => 2,
        Imm::Z => z,
        Imm::V if rex_w => 8,
        Imm::V => z,
        Imm::Enter => 3,
        Imm::Moffs if addr32 => 4,
        Imm::Moffs => 8,
    };
    if p > 15 || p > c.len() {
        return None;
    }
    Some(X86Insn { len: p, rip_disp })
}

// ---------------------------------------------------------------------------------------------
// arm64

/// Absolute addresses `code` (starting at `addr`) computes or accesses through `ADRP` + `ADD`
/// immediate, `LDR`/`STR` (unsigned or unscaled immediate), `LDP`/`STP`, load/store
/// exclusive/acquire/release and LSE atomics on a register whose value is known. Register
/// values are forgotten when the register is written by anything else and after calls.
fn arm64_refs(code: &[u8], addr: u64) -> Vec<u64> {
    let mut regs: [Option<u64>; 32] = [None; 32];
    let mut out = Vec::new();
    for (i, w) in code.chunks_exact(4).enumerate().take(MAX_INSNS) {
        let pc = addr + 4 * i as u64;
        let insn = u32::from_le_bytes(w.try_into().unwrap());
        let rd = (insn & 31) as usize;
        let rn = ((insn >> 5) & 31) as usize;
        let base = if rn == 31 { None } else { regs[rn] };
        let mut clobber = [Some(rd), None];
        if insn & 0x9F00_0000 == 0x9000_0000 {
            // ADRP Xd, label
            let immlo = u64::from((insn >> 29) & 3);
            let immhi = u64::from((insn >> 5) & 0x7FFFF);
            let imm = sign_extend((immhi << 2 | immlo) << 12, 33);
            regs[rd] = Some((pc & !0xFFF).wrapping_add(imm));
            continue;
        } else if insn & 0xFF80_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm{, LSL #12}
            if let Some(b) = base {
                let imm =
                    u64::from((insn >> 10) & 0xFFF) << if insn & (1 << 22) != 0 { 12 } else { 0 };
                let v = b.wrapping_add(imm);
                out.push(v);
                if rd != 31 {
                    regs[rd] = Some(v);
                }
                continue;
            }
        } else if insn & 0x3B00_0000 == 0x3900_0000 {
            // LDR/STR (unsigned immediate), integer or SIMD&FP.
            let size = insn >> 30;
            let simd = insn & (1 << 26) != 0;
            let opc = (insn >> 22) & 3;
            let scale = if simd && opc & 2 != 0 { 4 } else { size };
            if let Some(b) = base {
                out.push(b.wrapping_add(u64::from((insn >> 10) & 0xFFF) << scale));
            }
            if opc == 0 || simd {
                clobber[0] = None; // a store (or a SIMD register): no integer register written
            }
        } else if insn & 0x3B20_0000 == 0x3800_0000 {
            // LDUR/STUR and pre/post-indexed LDR/STR (9-bit signed immediate).
            let opc = (insn >> 22) & 3;
            let simd = insn & (1 << 26) != 0;
            let kind = (insn >> 10) & 3;
            if let Some(b) = base {
                let off = sign_extend(u64::from((insn >> 12) & 0x1FF), 9);
                out.push(if kind == 1 { b } else { b.wrapping_add(off) });
            }
            if opc == 0 || simd {
                clobber[0] = None;
            }
            if kind != 0 {
                clobber[1] = Some(rn); // writeback
            }
        } else if insn & 0x3A00_0000 == 0x2800_0000 {
            // LDP/STP (and LDNP/STNP), signed offset or pre/post-indexed.
            let opc = insn >> 30;
            let simd = insn & (1 << 26) != 0;
            let load = insn & (1 << 22) != 0;
            let kind = (insn >> 23) & 3;
            let scale = if simd {
                2 + opc
            } else if opc & 2 != 0 {
                3
            } else {
                2
            };
            if let Some(b) = base {
                let off = sign_extend(u64::from((insn >> 15) & 0x7F), 7) << scale;
                let a = if kind == 1 { b } else { b.wrapping_add(off) };
                out.push(a);
                out.push(a.wrapping_add(1 << scale));
            }
            let rt2 = ((insn >> 10) & 31) as usize;
            clobber = if load && !simd {
                [Some(rd), Some(rt2)]
            } else {
                [None, None]
            };
            if kind == 1 || kind == 3 {
                regs[rn] = None; // writeback
            }
        } else if insn & 0x3F00_0000 == 0x0800_0000 {
            // Load/store exclusive, load-acquire/store-release: [Xn], no offset.
            if let Some(b) = base {
                out.push(b);
            }
            let load = insn & (1 << 22) != 0;
            let rs = ((insn >> 16) & 31) as usize;
            clobber = if load {
                [Some(rd), None]
            } else {
                [Some(rs), None]
            };
        } else if insn & 0x3B20_0C00 == 0x3820_0000 {
            // LSE atomics (LDADD, SWP, ...): [Xn], Rt receives the old value.
            if let Some(b) = base {
                out.push(b);
            }
        } else if insn & 0xFC00_0000 == 0x9400_0000 || insn & 0xFFFF_FC1F == 0xD63F_0000 {
            // BL / BLR: the callee may clobber every register.
            regs = [None; 32];
            continue;
        }
        for r in clobber.into_iter().flatten() {
            if r != 31 {
                regs[r] = None;
            }
        }
    }
    out
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> u64 {
    let s = 64 - bits;
    (((v << s) as i64) >> s) as u64
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

    fn x86(bytes: &[u8]) -> (usize, Option<i32>) {
        let i = x86_decode(bytes).unwrap_or_else(|| panic!("cannot decode {bytes:02x?}"));
        (i.len, i.rip_disp)
    }

    #[test]
    fn amd64_lengths_and_rip_operands() {
        // MOVL 0x90(AX), CX
        assert_eq!(x86(&[0x8b, 0x88, 0x90, 0, 0, 0]), (6, None));
        // LEAQ runtime.allglock(SB), AX
        assert_eq!(
            x86(&[0x48, 0x8d, 0x05, 0x10, 0x20, 0x30, 0x00]),
            (7, Some(0x302010))
        );
        // MOVQ runtime.allgs+16(SB), CX
        assert_eq!(
            x86(&[0x48, 0x8b, 0x0d, 0xf8, 0xff, 0xff, 0xff]),
            (7, Some(-8))
        );
        // CMPL runtime.writeBarrier(SB), $0: the immediate follows the displacement.
        assert_eq!(x86(&[0x83, 0x3d, 0x01, 0, 0, 0, 0x00]), (7, Some(1)));
        // CMPQ runtime.allgptr(SB), BX
        assert_eq!(x86(&[0x48, 0x39, 0x1d, 4, 0, 0, 0]), (7, Some(4)));
        // XCHGQ BX, 0(CX)
        assert_eq!(x86(&[0x48, 0x87, 0x19]), (3, None));
        // CALL rel32; JMP rel8; JCC rel32
        assert_eq!(x86(&[0xe8, 1, 2, 3, 4]), (5, None));
        assert_eq!(x86(&[0xeb, 0x10]), (2, None));
        assert_eq!(x86(&[0x0f, 0x84, 1, 0, 0, 0]), (6, None));
        // MOVQ FS:0xfffffff8, R14 (SIB with no base)
        assert_eq!(
            x86(&[0x64, 0x4c, 0x8b, 0x34, 0x25, 0xf8, 0xff, 0xff, 0xff]),
            (9, None)
        );
        // XORPS X15, X15; MOVUPS X15, 0x10(SP)
        assert_eq!(x86(&[0x45, 0x0f, 0x57, 0xff]), (4, None));
        assert_eq!(x86(&[0x44, 0x0f, 0x11, 0x7c, 0x24, 0x10]), (6, None));
        // MOVQ $imm64, AX; MOVL $imm32, AX; MOVW $imm16 with 0x66
        assert_eq!(x86(&[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]), (10, None));
        assert_eq!(x86(&[0xb8, 1, 2, 3, 4]), (5, None));
        assert_eq!(x86(&[0x66, 0xc7, 0x05, 0, 0, 0, 0, 1, 2]), (9, Some(0)));
        // TESTB $1, AL vs NOTQ AX (group 3)
        assert_eq!(x86(&[0xf6, 0xc0, 0x01]), (3, None));
        assert_eq!(x86(&[0x48, 0xf7, 0xd0]), (3, None));
        // NOPW 0(AX)(AX*1); INT3
        assert_eq!(x86(&[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]), (6, None));
        assert_eq!(x86(&[0xcc]), (1, None));
        // LOCK XCHG, VEX vmovdqu (c5 fe 6f 06)
        assert_eq!(x86(&[0xf0, 0x48, 0x87, 0x05, 8, 0, 0, 0]), (8, Some(8)));
        assert_eq!(x86(&[0xc5, 0xfe, 0x6f, 0x06]), (4, None));
        // VZEROUPPER has no ModRM; VPCMPEQB; 3-byte VEX VPERMQ with imm8
        assert_eq!(x86(&[0xc5, 0xf8, 0x77]), (3, None));
        assert_eq!(x86(&[0xc5, 0xe5, 0x74, 0xc2]), (4, None));
        assert_eq!(x86(&[0xc4, 0xe3, 0xfd, 0x00, 0xc0, 0x4e]), (6, None));
        // Truncated and invalid encodings.
        assert_eq!(x86_decode(&[0x48, 0x8b, 0x05, 1, 2]), None);
        assert_eq!(x86_decode(&[0x06]), None);
        assert_eq!(x86_decode(&[0x62, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn amd64_refs_follow_instruction_boundaries() {
        // At 0x1000: LEAQ x(SB), AX (7) ; CMPL y(SB), $0 (7) ; MOVQ z(SB), CX (7) ; RET ; INT3 INT3
        let code = [
            0x48, 0x8d, 0x05, 0x00, 0x01, 0x00, 0x00, //
            0x83, 0x3d, 0x00, 0x02, 0x00, 0x00, 0x00, //
            0x48, 0x8b, 0x0d, 0x00, 0x03, 0x00, 0x00, //
            0xc3, 0xcc, 0xcc,
        ];
        assert_eq!(
            amd64_refs(&code, 0x1000),
            Ok(vec![0x1007 + 0x100, 0x100e + 0x200, 0x1015 + 0x300])
        );
        assert_eq!(amd64_refs(&[0x90, 0x06], 0x2000), Err(0x2001));
    }

    fn le(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn arm64_adrp_pairs() {
        let pc = 0x10_0000u64;
        // ADRP X27, +0x2000 page: immlo = 2 (bits 29-30), immhi = 0  => 0x2000 >> 12 = 2
        let adrp =
            |rd: u32, pages: u32| 0x9000_0000 | ((pages & 3) << 29) | ((pages >> 2) << 5) | rd;
        let add = |rd: u32, rn: u32, imm: u32| 0x9100_0000 | (imm << 10) | (rn << 5) | rd;
        let ldr64 = |rt: u32, rn: u32, off: u32| 0xF940_0000 | ((off / 8) << 10) | (rn << 5) | rt;
        let ldp64 = |rt: u32, rt2: u32, rn: u32, off: i32| {
            0xA940_0000 | ((((off / 8) as u32) & 0x7F) << 15) | (rt2 << 10) | (rn << 5) | rt
        };
        let stlr64 = |rt: u32, rn: u32| 0xC89F_FC00 | (rn << 5) | rt;
        let code = le(&[
            adrp(1, 2),        // X1 = 0x102000
            add(1, 1, 880),    // X1 = 0x102370 (ref)
            ldp64(2, 3, 1, 0), // [X1], [X1+8]
            adrp(27, 2),       // R27 = 0x102000
            ldr64(4, 27, 896), // [0x102380]
            adrp(5, 1),        // X5 = 0x101000
            add(5, 5, 120),    // 0x101078 (ref)
            stlr64(3, 5),      // [X5]
            0x9400_0010,       // BL: forget everything
            ldr64(6, 1, 8),    // X1 unknown now: no ref
            adrp(7, 2),
            0xAA0003E7, // MOV X7, X0 (ORR): X7 forgotten
            ldr64(8, 7, 8),
        ]);
        let mut refs = arm64_refs(&code, pc);
        refs.sort_unstable();
        refs.dedup();
        assert_eq!(refs, vec![0x101078, 0x102370, 0x102378, 0x102380]);
        assert_eq!(allgs_candidates(&refs), vec![0x102370]);
    }

    #[test]
    fn arm64_negative_adrp_and_unscaled() {
        // ADRP X0, -1 page at 0x5000 => 0x4000; LDUR X1, [X0, #-8] => 0x3ff8
        let adrp_neg = 0x9000_0000 | (3 << 29) | (0x7FFFF << 5);
        let ldur = 0xF840_0000 | ((0x1F8u32) << 12) | 1;
        assert_eq!(arm64_refs(&le(&[adrp_neg, ldur]), 0x5004), vec![0x3ff8]);
        assert_eq!(sign_extend(0x1FF, 9), u64::MAX);
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
