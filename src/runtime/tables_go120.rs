//! The runtime layout of Go 1.20 for binaries without DWARF.
//!
//! Unlike `tables.rs`, this table is not generated: no Go 1.20 toolchain can be installed
//! here, so there is no probe to read DWARF from. The offsets follow the go1.20 runtime sources
//! (`runtime2.go`, `symtab.go`, `chan.go`, `sema.go`, `os_linux.go`) and were measured in the
//! machine code of stripped Go 1.20.4 and 1.20.7 binaries (esbuild 0.17.19 and 0.18.20): struct
//! sizes from the `runtime.g` and `runtime.m` type descriptors that `malg` and `allocm` pass to
//! `newobject`, `atomicstatus` from `allgadd`'s first load, `m.curg`, `m.vdsoSP` and `m.vdsoPC`
//! from `nanotime1`, `m.procid` from `minit`, `m.id` from `mcommoninit`, `moduledata.next`
//! from `modulesinit`. `tests/it/go120.rs` checks dumps of those programs, live and from cores,
//! against their runtime's own tracebacks.
//!
//! Go 1.20 sits between its neighbours:
//! * `runtime.g` is 1.19's, field for field (392 bytes): 1.20 changed only types and names
//!   (`goid` uint64, `atomicstatus` atomic.Uint32, `runnableStamp` → `trackingStamp`);
//!   1.21 moved the trace fields out and added `parentGoid`, which shifted `lockedm` onward.
//! * `runtime.m` has 1.19's offsets up to `vdsoPC` (1.21's trace state moved them by 8; `gsignal`
//!   and `alllink`, before it, are the same in 1.19 and 1.21), but
//!   is 1000 bytes, not 1008 as in both 1.19 and 1.21: `mOS.profileTimerValid` became an
//!   `atomic.Bool`, which shortened the tail.
//! * `runtime.moduledata` has 1.21's `gofunc` (320, after the `covctrs`/`ecovctrs` pair new in
//!   1.20) but not its `inittasks` slice: 568 bytes, against 552 (1.19) and 592 (1.21).
//! * `sudog`, `hchan`, `semaRoot` and `_defer` are the same in 1.19, 1.20 and 1.21 (as is
//!   `g._defer`, at 40 in every version).
//! * `moduledata.data`, `edata`, `bss`, `ebss` follow `text` and `etext` (with `noptrdata`,
//!   `enoptrdata` between) as in 1.19 and 1.21, and `next` is its last word, as in both
//!   (568 - 8).
//! * The heap's layout (`mheap`, `heapArena`, `mspan`), which `leaks` needs, differs between
//!   1.19 and 1.21 and is not in this table: `leaks` on a Go 1.20 binary needs its DWARF.

use super::layout::{F, LayoutTable};

/// The Go 1.20 layout.
pub(crate) const GO120: LayoutTable = LayoutTable {
    minor_lo: 20,
    minor_hi: 20,
    g_size: 392,
    m_size: 1000,
    moduledata_size: 568,
    fields: &[
        (F::GStackLo, 0),
        (F::GStackHi, 8),
        (F::GM, 48),
        (F::GSchedSp, 56),
        (F::GSchedPc, 64),
        (F::GSchedLr, 96),
        (F::GSchedBp, 104),
        (F::GSyscallSp, 112),
        (F::GSyscallPc, 120),
        (F::GStktopSp, 128),
        (F::GAtomicStatus, 144),
        (F::GGoid, 152),
        (F::GWaitSince, 168),
        (F::GWaitReason, 176),
        (F::GLockedM, 232),
        (F::GGopc, 296),
        (F::GStartPc, 312),
        (F::GWaiting, 328),
        (F::GLabels, 360),
        (F::GTrackingSeq, 189),
        (F::MG0, 0),
        (F::MProcId, 72),
        (F::MCurG, 192),
        (F::MId, 232),
        (F::MVdsoSp, 800),
        (F::MVdsoPc, 808),
        (F::MGsignal, 80),
        (F::MAlllink, 336),
        (F::ModPcHeader, 0),
        (F::ModFuncnametab, 8),
        (F::ModFtab, 128),
        (F::ModMinpc, 160),
        (F::ModMaxpc, 168),
        (F::ModText, 176),
        (F::ModEtext, 184),
        (F::ModGofunc, 320),
        (F::ModData, 208),
        (F::ModEdata, 216),
        (F::ModBss, 224),
        (F::ModEbss, 232),
        (F::ModNext, 560),
        (F::SudogG, 0),
        (F::SudogNext, 8),
        (F::SudogPrev, 16),
        (F::SudogElem, 24),
        (F::SudogWaitlink, 64),
        (F::SudogC, 80),
        (F::HchanQcount, 0),
        (F::HchanDataqsiz, 8),
        (F::HchanElemsize, 24),
        (F::HchanClosed, 28),
        (F::SemaRootTreap, 8),
        (F::GDefer, 40),
        (F::DeferStarted, 0),
        (F::DeferOpenDefer, 2),
        (F::DeferSp, 8),
        (F::DeferFn, 24),
        (F::DeferLink, 40),
    ],
};

#[cfg(test)]
mod tests {
    use super::super::layout::{F, Layout, builtin_table};

    #[test]
    fn go120_is_a_builtin_table_between_the_generated_ones() {
        let t = builtin_table(20).expect("a table for go1.20");
        assert_eq!((t.minor_lo, t.minor_hi, t.m_size), (20, 20, 1000));
        for minor in [19, 21] {
            assert_eq!(
                builtin_table(minor).map(|t| (t.minor_lo, t.minor_hi)),
                Some((minor, minor))
            );
        }
        // Every manifest field but the optional ones (parentGoid is new in 1.21, `_defer`'s
        // rangefunc in 1.22) and the heap's (see the module's doc) has an offset.
        let l = Layout::from_table(t);
        let missing: Vec<_> = l
            .entries()
            .into_iter()
            .filter(|(_, o)| o.is_none())
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            missing,
            [
                F::GParentGoid,
                F::SudogElemVu,
                F::SudogCVu,
                F::DeferRangefunc,
                F::MheapArenas,
                F::MheapAllArenas,
                F::MheapHeapArenas,
                F::HeapArenaSpans,
                F::MspanStartAddr,
                F::MspanNpages,
                F::MspanElemsize,
                F::MspanSpanclass,
                F::MspanState,
                F::MspanSpecials,
            ]
        );
    }
}
