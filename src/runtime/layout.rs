//! The layout of the runtime types goroscope reads, behind one type.
//!
//! [`MANIFEST`] is the single list of every runtime field goroscope reads. A [`Layout`] holds
//! their offsets for one binary: resolved by name from the binary's DWARF, or (for stripped
//! binaries) from per-version tables generated from the same manifest.

use crate::binary::GoBinary;
use crate::binary::dwarf::{self, StructLayout};
use std::collections::HashMap;
use std::fmt;

/// A field goroscope reads. The discriminant indexes [`Layout`]'s offset table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum F {
    GStackLo,
    GStackHi,
    GM,
    GSchedSp,
    GSchedPc,
    GSchedLr,
    GSchedBp,
    GSyscallSp,
    GSyscallPc,
    GStktopSp,
    GAtomicStatus,
    GGoid,
    GWaitSince,
    GWaitReason,
    GLockedM,
    GParentGoid,
    GGopc,
    GStartPc,
    GWaiting,
    GLabels,
    GTrackingSeq,
    MG0,
    MProcId,
    MCurG,
    MId,
    MVdsoSp,
    MVdsoPc,
    MGsignal,
    MAlllink,
    ModPcHeader,
    ModFuncnametab,
    ModFtab,
    ModMinpc,
    ModMaxpc,
    ModText,
    ModEtext,
    ModGofunc,
    ModData,
    ModEdata,
    ModBss,
    ModEbss,
    ModNext,
    SudogG,
    SudogNext,
    SudogPrev,
    SudogElem,
    SudogElemVu,
    SudogWaitlink,
    SudogC,
    SudogCVu,
    HchanQcount,
    HchanDataqsiz,
    HchanElemsize,
    HchanClosed,
    SemaRootTreap,
    GDefer,
    DeferStarted,
    DeferOpenDefer,
    DeferRangefunc,
    DeferSp,
    DeferFn,
    DeferLink,
    MheapArenas,
    MheapAllArenas,
    MheapHeapArenas,
    HeapArenaSpans,
    MspanStartAddr,
    MspanNpages,
    MspanElemsize,
    MspanSpanclass,
    MspanState,
    MspanSpecials,
}

/// Number of fields in [`F`].
pub(crate) const FIELD_COUNT: usize = F::MspanSpecials as usize + 1;

/// One manifest entry: which struct, which (dotted) member path, its width, whether optional.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// The field.
    pub field: F,
    /// The Go struct type name.
    pub strukt: &'static str,
    /// Member path, dotted through nested structs (`sched.sp`).
    pub path: &'static str,
    /// Width in bytes of the value read.
    pub width: u8,
    /// Absent in some supported versions.
    pub optional: bool,
}

const fn spec(
    field: F,
    strukt: &'static str,
    path: &'static str,
    width: u8,
    optional: bool,
) -> FieldSpec {
    FieldSpec {
        field,
        strukt,
        path,
        width,
        optional,
    }
}

/// The width of every field, indexed by [`F`] (from [`MANIFEST`]).
const WIDTHS: [u8; FIELD_COUNT] = {
    let mut w = [8u8; FIELD_COUNT];
    let mut i = 0;
    while i < MANIFEST.len() {
        w[MANIFEST[i].field as usize] = MANIFEST[i].width;
        i += 1;
    }
    w
};

/// Every runtime field goroscope reads (sources: `src/runtime/runtime2.go`, `symtab.go`).
pub const MANIFEST: &[FieldSpec] = &[
    spec(F::GStackLo, "runtime.g", "stack.lo", 8, false),
    spec(F::GStackHi, "runtime.g", "stack.hi", 8, false),
    spec(F::GM, "runtime.g", "m", 8, false),
    spec(F::GSchedSp, "runtime.g", "sched.sp", 8, false),
    spec(F::GSchedPc, "runtime.g", "sched.pc", 8, false),
    spec(F::GSchedLr, "runtime.g", "sched.lr", 8, false),
    spec(F::GSchedBp, "runtime.g", "sched.bp", 8, false),
    spec(F::GSyscallSp, "runtime.g", "syscallsp", 8, false),
    spec(F::GSyscallPc, "runtime.g", "syscallpc", 8, false),
    spec(F::GStktopSp, "runtime.g", "stktopsp", 8, false),
    spec(F::GAtomicStatus, "runtime.g", "atomicstatus", 4, false),
    spec(F::GGoid, "runtime.g", "goid", 8, false),
    spec(F::GWaitSince, "runtime.g", "waitsince", 8, false),
    spec(F::GWaitReason, "runtime.g", "waitreason", 1, false),
    spec(F::GLockedM, "runtime.g", "lockedm", 8, false),
    spec(F::GParentGoid, "runtime.g", "parentGoid", 8, true),
    spec(F::GGopc, "runtime.g", "gopc", 8, false),
    spec(F::GStartPc, "runtime.g", "startpc", 8, false),
    spec(F::GWaiting, "runtime.g", "waiting", 8, false),
    spec(F::GLabels, "runtime.g", "labels", 8, false),
    // Counts the goroutine's transitions out of running (mod 256): a parked goroutine whose
    // count and saved registers did not change has not run.
    spec(F::GTrackingSeq, "runtime.g", "trackingSeq", 1, false),
    spec(F::MG0, "runtime.m", "g0", 8, false),
    spec(F::MProcId, "runtime.m", "procid", 8, false),
    spec(F::MCurG, "runtime.m", "curg", 8, false),
    spec(F::MId, "runtime.m", "id", 8, false),
    spec(F::MVdsoSp, "runtime.m", "vdsoSP", 8, false),
    spec(F::MVdsoPc, "runtime.m", "vdsoPC", 8, false),
    // A thread's own stacks (its signal stack) and the list of every M (`runtime.allm`),
    // read only for thread stacks.
    spec(F::MGsignal, "runtime.m", "gsignal", 8, true),
    spec(F::MAlllink, "runtime.m", "alllink", 8, true),
    spec(F::ModPcHeader, "runtime.moduledata", "pcHeader", 8, false),
    // What the stripped-binary search checks a moduledata candidate against (`find`).
    spec(
        F::ModFuncnametab,
        "runtime.moduledata",
        "funcnametab",
        8,
        false,
    ),
    spec(F::ModFtab, "runtime.moduledata", "ftab", 8, false),
    spec(F::ModMinpc, "runtime.moduledata", "minpc", 8, false),
    spec(F::ModMaxpc, "runtime.moduledata", "maxpc", 8, false),
    spec(F::ModText, "runtime.moduledata", "text", 8, false),
    spec(F::ModEtext, "runtime.moduledata", "etext", 8, false),
    spec(F::ModGofunc, "runtime.moduledata", "gofunc", 8, false),
    // The globals that may hold pointers (`leaks` scans them as roots), and the next module.
    spec(F::ModData, "runtime.moduledata", "data", 8, true),
    spec(F::ModEdata, "runtime.moduledata", "edata", 8, true),
    spec(F::ModBss, "runtime.moduledata", "bss", 8, true),
    spec(F::ModEbss, "runtime.moduledata", "ebss", 8, true),
    spec(F::ModNext, "runtime.moduledata", "next", 8, true),
    // What blocked goroutines wait on (`src/runtime/runtime2.go` sudog, `chan.go` hchan,
    // `sema.go` semaRoot). From Go 1.26 sudog.elem and sudog.c are {vp, vu} pairs whose `vu`
    // always holds the address.
    spec(F::SudogG, "runtime.sudog", "g", 8, false),
    spec(F::SudogNext, "runtime.sudog", "next", 8, false),
    spec(F::SudogPrev, "runtime.sudog", "prev", 8, false),
    spec(F::SudogElem, "runtime.sudog", "elem", 8, false),
    spec(F::SudogElemVu, "runtime.sudog", "elem.vu", 8, true),
    spec(F::SudogWaitlink, "runtime.sudog", "waitlink", 8, false),
    spec(F::SudogC, "runtime.sudog", "c", 8, false),
    spec(F::SudogCVu, "runtime.sudog", "c.vu", 8, true),
    spec(F::HchanQcount, "runtime.hchan", "qcount", 8, false),
    spec(F::HchanDataqsiz, "runtime.hchan", "dataqsiz", 8, false),
    spec(F::HchanElemsize, "runtime.hchan", "elemsize", 2, false),
    spec(F::HchanClosed, "runtime.hchan", "closed", 4, false),
    spec(F::SemaRootTreap, "runtime.semaRoot", "treap", 8, false),
    // Pending defers that are not open-coded: the g's chain of `_defer` records
    // (`src/runtime/runtime2.go`). Up to Go 1.21 a record may be one a panic made for a frame
    // of open-coded defers (`openDefer`) or one whose call has started (`started`); from 1.22
    // a `rangefunc` record heads a range-over-func loop's own list.
    spec(F::GDefer, "runtime.g", "_defer", 8, false),
    spec(F::DeferStarted, "runtime._defer", "started", 1, true),
    spec(F::DeferOpenDefer, "runtime._defer", "openDefer", 1, true),
    spec(F::DeferRangefunc, "runtime._defer", "rangefunc", 1, true),
    spec(F::DeferSp, "runtime._defer", "sp", 8, false),
    spec(F::DeferFn, "runtime._defer", "fn", 8, false),
    spec(F::DeferLink, "runtime._defer", "link", 8, false),
    // The heap's spans, for `leaks` (`src/runtime/mheap.go`): `mheap_.arenas` (one L2 array on
    // 64-bit Linux), `mheap_.allArenas` (a slice of arena indexes), `heapArena.spans` (one
    // `*mspan` a page), and of each span its bounds, object size, class and state. Optional:
    // only `leaks` needs them.
    spec(F::MheapArenas, "runtime.mheap", "arenas", 8, true),
    spec(F::MheapAllArenas, "runtime.mheap", "allArenas", 8, true),
    // `allArenas` renamed in Go 1.25.
    spec(F::MheapHeapArenas, "runtime.mheap", "heapArenas", 8, true),
    spec(F::HeapArenaSpans, "runtime.heapArena", "spans", 8, true),
    spec(F::MspanStartAddr, "runtime.mspan", "startAddr", 8, true),
    spec(F::MspanNpages, "runtime.mspan", "npages", 8, true),
    spec(F::MspanElemsize, "runtime.mspan", "elemsize", 8, true),
    spec(F::MspanSpanclass, "runtime.mspan", "spanclass", 1, true),
    spec(F::MspanState, "runtime.mspan", "state", 1, true),
    // The span's finalizer, cleanup and other special records: roots for `leaks`.
    spec(F::MspanSpecials, "runtime.mspan", "specials", 8, true),
];

/// Fields whose offsets differ between linux/amd64 and linux/arm64: `runtime.mheap` pads its
/// `central` array to the cache line (64 bytes on amd64, 128 on arm64 from Go 1.21). The
/// tables hold amd64's offsets; their difference is the same on both, and is all that may be
/// used of them without DWARF.
pub const ARCH_DEPENDENT: &[F] = &[F::MheapArenas, F::MheapAllArenas, F::MheapHeapArenas];

/// Where a layout came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutSource {
    /// The binary's own DWARF.
    Dwarf,
    /// A built-in table generated from the DWARF of the given Go versions.
    Table {
        /// First Go minor version of the table.
        minor_lo: u32,
        /// Last Go minor version of the table.
        minor_hi: u32,
    },
}

impl fmt::Display for LayoutSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutSource::Dwarf => f.write_str("DWARF"),
            LayoutSource::Table { minor_lo, minor_hi } if minor_lo == minor_hi => {
                write!(f, "table for go1.{minor_lo}")
            }
            LayoutSource::Table { minor_lo, minor_hi } => {
                write!(f, "table for go1.{minor_lo}-go1.{minor_hi}")
            }
        }
    }
}

/// A built-in layout: offsets of the manifest fields for a range of Go minor versions
/// (generated from DWARF; see `tests/it/layouts.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutTable {
    /// First Go minor version it applies to.
    pub minor_lo: u32,
    /// Last Go minor version it applies to.
    pub minor_hi: u32,
    /// `sizeof(runtime.g)`.
    pub g_size: u64,
    /// `sizeof(runtime.m)`.
    pub m_size: u64,
    /// `sizeof(runtime.moduledata)`.
    pub moduledata_size: u64,
    /// Offsets of the fields this version has.
    pub fields: &'static [(F, u32)],
}

/// The built-in layout for Go `1.minor`: the tables generated from toolchains' DWARF
/// (`tables.rs`), else the hand-checked Go 1.20 one (`tables_go120.rs`).
pub(crate) fn builtin_table(minor: u32) -> Option<&'static LayoutTable> {
    use super::tables_go120::GO120;
    super::tables::layout_table(minor).or_else(|| (minor == GO120.minor_lo).then_some(&GO120))
}

/// Largest runtime struct size accepted from DWARF (`runtime.g` is under 500 bytes and
/// `runtime.m` under 2 KiB in every supported version): one such struct is copied a goroutine
/// or a thread, so a corrupt `DW_AT_byte_size` must not size those buffers.
pub(crate) const MAX_STRUCT_SIZE: u64 = 64 << 10;

/// Why a layout could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// The binary has no DWARF (and no table applies).
    NoDwarf,
    /// DWARF could not be parsed.
    Dwarf(String),
    /// A required field is missing.
    MissingField(&'static str, &'static str),
    /// A struct's DWARF size is larger than [`MAX_STRUCT_SIZE`].
    TooLarge(&'static str, u64),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::NoDwarf => write!(
                f,
                "the binary has no DWARF and no built-in layout table fits its Go version"
            ),
            LayoutError::Dwarf(e) => write!(f, "cannot read runtime layouts from DWARF: {e}"),
            LayoutError::MissingField(s, p) => {
                write!(f, "runtime layout: DWARF has no field {s}.{p}")
            }
            LayoutError::TooLarge(s, n) => write!(f, "runtime layout: DWARF says {s} is {n} bytes"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// Offsets of every manifest field for one binary, plus struct sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Where the offsets came from.
    pub source: LayoutSource,
    offsets: [Option<u32>; FIELD_COUNT],
    /// `sizeof(runtime.g)`.
    pub g_size: u64,
    /// `sizeof(runtime.m)`.
    pub m_size: u64,
    /// `sizeof(runtime.moduledata)`.
    pub moduledata_size: u64,
}

impl Layout {
    /// The bytes of an m that its fields read here lie in (from its start to the end of the
    /// last of them): what the frozen window copies of each M (the rest of a Go 1.27 m,
    /// more than half of its 1,832 bytes, is read by no one).
    pub fn m_read_len(&self) -> u64 {
        [
            F::MG0,
            F::MProcId,
            F::MCurG,
            F::MId,
            F::MVdsoSp,
            F::MVdsoPc,
            F::MGsignal,
            F::MAlllink,
        ]
        .iter()
        .filter_map(|&f| Some(self.off(f)? + u64::from(WIDTHS[f as usize])))
        .max()
        .unwrap_or(0)
        .min(self.m_size)
    }

    /// Offset of a field, `None` when the field does not exist in this version.
    pub fn off(&self, f: F) -> Option<u64> {
        self.offsets[f as usize].map(u64::from)
    }

    /// Reads field `f` from a local copy of the struct's bytes; 0 when absent or out of range.
    pub fn get(&self, f: F, bytes: &[u8]) -> u64 {
        let Some(off) = self.off(f) else { return 0 };
        let width = WIDTHS[f as usize] as usize;
        let off = off as usize;
        let Some(b) = bytes.get(off..off + width) else {
            return 0;
        };
        // Fixed widths first: this runs for every field of every g, in the frozen window too.
        match *b {
            [a, b2, c, d, e, f2, g, h] => u64::from_le_bytes([a, b2, c, d, e, f2, g, h]),
            [a, b2, c, d] => u64::from(u32::from_le_bytes([a, b2, c, d])),
            [a] => u64::from(a),
            _ => {
                let mut w = [0u8; 8];
                w[..width].copy_from_slice(b);
                u64::from_le_bytes(w)
            }
        }
    }

    /// Reads field `f` of the struct at `base` from target memory; `None` when the field is
    /// unknown for this version or the memory unreadable.
    pub fn read(&self, f: F, mem: &impl crate::target::MemoryReader, base: u64) -> Option<u64> {
        let off = self.off(f)?;
        let width = u64::from(WIDTHS[f as usize]);
        crate::target::ReadExt::read_uint(mem, base.checked_add(off)?, width).ok()
    }

    /// Every manifest field with its offset (`None` where the version lacks it).
    pub fn entries(&self) -> Vec<(F, Option<u32>)> {
        MANIFEST
            .iter()
            .map(|s| (s.field, self.offsets[s.field as usize]))
            .collect()
    }

    /// A layout from a built-in table.
    pub fn from_table(t: &LayoutTable) -> Layout {
        let mut offsets = [None; FIELD_COUNT];
        for &(f, o) in t.fields {
            offsets[f as usize] = Some(o);
        }
        Layout {
            source: LayoutSource::Table {
                minor_lo: t.minor_lo,
                minor_hi: t.minor_hi,
            },
            offsets,
            g_size: t.g_size,
            m_size: t.m_size,
            moduledata_size: t.moduledata_size,
        }
    }

    /// Resolves the manifest from the binary's DWARF.
    pub fn from_dwarf(bin: &GoBinary) -> Result<Layout, LayoutError> {
        if !bin.has_dwarf {
            return Err(LayoutError::NoDwarf);
        }
        let mut wanted: Vec<&str> = MANIFEST.iter().map(|s| s.strukt).collect();
        wanted.extend(["runtime.gobuf", "runtime.stack"]);
        wanted.sort();
        wanted.dedup();
        // The types of `sudog.elem` and `sudog.c` from Go 1.26 (the optional `.vu` fields):
        // not looked for in older binaries, which do not have them.
        let optional: &[&str] = if bin.version.at_least(26) {
            &["runtime.maybeTraceablePtr", "runtime.maybeTraceableChan"]
        } else {
            &[]
        };
        let types =
            dwarf::struct_layouts(bin, &wanted, optional).map_err(|e| LayoutError::Dwarf(e.0))?;
        Self::from_structs(&types)
    }

    fn from_structs(types: &HashMap<String, StructLayout>) -> Result<Layout, LayoutError> {
        let mut offsets = [None; FIELD_COUNT];
        for s in MANIFEST {
            match resolve(types, s.strukt, s.path) {
                Some(o) => offsets[s.field as usize] = Some(o as u32),
                None if s.optional => {}
                None => return Err(LayoutError::MissingField(s.strukt, s.path)),
            }
        }
        let size = |n: &'static str| match types.get(n).map(|t| t.size).unwrap_or(0) {
            s if s > MAX_STRUCT_SIZE => Err(LayoutError::TooLarge(n, s)),
            s => Ok(s),
        };
        Ok(Layout {
            source: LayoutSource::Dwarf,
            offsets,
            g_size: size("runtime.g")?,
            m_size: size("runtime.m")?,
            moduledata_size: size("runtime.moduledata")?,
        })
    }
}

/// Offset of a dotted member path, following member types through nested structs.
fn resolve(types: &HashMap<String, StructLayout>, strukt: &str, path: &str) -> Option<u64> {
    let mut t = types.get(strukt)?;
    let mut off = 0u64;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        let m = t.member(p)?;
        off = off.checked_add(m.offset)?;
        if parts.peek().is_some() {
            t = types.get(m.type_name.as_deref()?)?;
        }
    }
    u32::try_from(off).ok().map(u64::from)
}
