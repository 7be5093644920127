//! Pending defers: the deferred calls each frame has made and the runtime has not run yet,
//! the first evidence of who holds a lock (`mu.Lock(); defer mu.Unlock()`).
//!
//! Two kinds (`src/runtime/panic.go`):
//! * open-coded defers: the frame's `deferBits` byte and closure slots, found through the
//!   function's `FUNCDATA_OpenCodedDeferInfo` ([`Pclntab::open_coded_defers`]); a set bit is a
//!   defer that was reached and has not run (the runtime clears the bit before it calls the
//!   closure). They live in the stack copy.
//! * `_defer` records on the goroutine's `g._defer` list (a defer in a loop, or a function
//!   with too many defers), each tied to the frame whose sp is the record's `sp`. A record is
//!   unlinked before its call runs; up to Go 1.21 a record made by a panic for a frame of
//!   open-coded defers (`openDefer`) or whose call has started (`started`) is skipped, from
//!   1.22 a range-over-func list head (`rangefunc`).
//!
//! Either way the defer is a closure (`funcval`): a code pointer, then the captured words.
//! The compiler wraps `defer mu.Unlock()` into a closure capturing the evaluated receiver
//! (`main.f.func1` up to Go 1.21, `main.f.deferwrap1` from 1.22, both marked as wrappers), and
//! a method value into `sync.(*Mutex).Unlock-fm` with the receiver captured: such a closure is
//! resolved to the function it wraps and its first captured word (the receiver, as stored).
//!
//! Stack-allocated records and closures are in the frozen copy. Heap ones are read after the
//! target runs again, then the goroutine's g is read again: a goroutine that was not parked at
//! the freeze, or whose stack key changed since (it ran), loses the defers that needed such a
//! read, so no defer is reported that the frozen moment did not have.
//!
//! [`Pclntab::open_coded_defers`]: crate::binary::pclntab::Pclntab::open_coded_defers

use super::Runtime;
use super::find;
use super::goroutines::StackKey;
use super::layout::F;
use crate::arch::Arch;
use crate::binary::pclntab::{OpenCodedDefers, PCDATA_INL_TREE_INDEX};
use crate::snapshot::{Goroutine, Name, PendingDefer};
use crate::target::CopyInto;
use crate::target::image::MemoryImage;
use crate::target::{Layered, MemoryReader, ReadExt};
use crate::unwind::PcMap;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Most `_defer` records followed on one goroutine's list.
pub(crate) const MAX_DEFER_RECORDS: usize = 4096;
/// Most pending defers read in one snapshot (a hostile list must not allocate unbounded).
pub(crate) const MAX_DEFERS: usize = 1 << 20;
/// Longest wrapper whose code is searched for the call it wraps (the compiler's defer and
/// method-value wrappers are a few dozen instructions).
const MAX_WRAPPER_BYTES: u64 = 4096;

/// One pending defer found, before its closure is read.
struct Found {
    g: usize,
    frame: usize,
    closure: u64,
    how: &'static str,
    /// Needed a read after the freeze.
    late: bool,
}

/// What a closure's code pointer resolves to.
#[derive(Clone)]
struct Resolved {
    function: Name,
    /// The wrapper itself, when `function` is what it wraps.
    closure: Option<Name>,
}

/// Fills `defers` of the goroutines' frames. `mem` holds the frozen copy (g structs and
/// stacks) or a core; `fetch` copies more of a live target (see [`super::blocked::analyze`]).
pub fn read(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    gs: &mut [Goroutine],
    fetch: &dyn CopyInto,
) {
    let mut local = MemoryImage::new();
    let mut found = open_coded(rt, mem, gs);
    records(rt, mem, gs, fetch, &mut local, &mut found);
    if found.is_empty() {
        return;
    }

    // The closures: a code pointer and the first captured word.
    let missing: BTreeSet<u64> = found
        .iter()
        .map(|f| f.closure)
        .filter(|&c| Layered(&local, mem).read_u64(c).is_err())
        .collect();
    if !missing.is_empty() {
        fetch.copy_into(
            &missing.iter().map(|&c| (c, 16)).collect::<Vec<_>>(),
            &mut local,
        );
        for f in &mut found {
            f.late |= missing.contains(&f.closure);
        }
    }

    // A goroutine that ran since the freeze may have run, freed or reused what was read late.
    let late: BTreeSet<usize> = found.iter().filter(|f| f.late).map(|f| f.g).collect();
    let g_size = rt.layout.g_size;
    let mut fresh = MemoryImage::new();
    if !late.is_empty() {
        fetch.copy_into(
            &late
                .iter()
                .map(|&i| (gs[i].addr, g_size))
                .collect::<Vec<_>>(),
            &mut fresh,
        );
    }
    let key = |m: &dyn Fn(u64, &mut [u8]) -> bool, g: u64| {
        let mut b = vec![0u8; g_size as usize];
        m(g, &mut b).then(|| StackKey::of(rt, &b))
    };
    let unchanged: BTreeSet<usize> = late
        .iter()
        .copied()
        .filter(|&i| {
            let before = key(&|a, b| mem.read_at(a, b).is_ok(), gs[i].addr);
            let after = key(&|a, b| fresh.read_at(a, b).is_ok(), gs[i].addr);
            before.is_some_and(|k| k.parked()) && before == after
        })
        .collect();

    let rd = Layered(&local, mem);
    let mut cache: HashMap<u64, Option<Resolved>> = HashMap::new();
    // Each pending `(*os.File).Close` with its receiver: (goroutine, frame, defer, receiver).
    let mut closes: Vec<(usize, usize, usize, u64)> = Vec::new();
    for f in found {
        if f.late && !unchanged.contains(&f.g) {
            continue;
        }
        let Ok(pc) = rd.read_u64(f.closure) else {
            continue;
        };
        let Some(r) = cache.entry(pc).or_insert_with(|| resolve(rt, pc)).clone() else {
            continue;
        };
        // A wrapper's first captured word; a closure in the executable's own data is a
        // static funcval, which captures nothing.
        let captures = rt
            .bin
            .read_static(f.closure.wrapping_sub(rt.bias), 16)
            .is_none();
        let arg = match (&r.closure, captures) {
            (Some(_), true) => rd.read_u64(f.closure.wrapping_add(8)).ok(),
            _ => None,
        };
        // Few frames have any: each is added to its frame's own list.
        let frame = &mut gs[f.g].frames[f.frame];
        let mut list = frame.defers().to_vec();
        if let Some(a) = arg.filter(|&a| a != 0 && &*r.function == "os.(*File).Close") {
            closes.push((f.g, f.frame, list.len(), a));
        }
        list.push(PendingDefer {
            function: r.function,
            closure: r.closure,
            arg,
            how: f.how.into(),
            fd: None,
        });
        frame.set_defers(list);
    }
    close_fds(mem, gs, &closes, fetch, &mut local);
}

/// Offset of the descriptor in the `os.file` an `*os.File` points to: `file` begins with its
/// `poll.FD`, whose `fdmu fdMutex` (a uint64 and two uint32) comes before `Sysfd int`, on
/// every supported Go version (`internal/poll/fd_unix.go`).
const OS_FILE_SYSFD_OFFSET: u64 = 16;

/// The descriptor of every pending deferred `(*os.File).Close` in `closes` (goroutine,
/// frame, defer, receiver): its receiver `*os.File` points to the `*file` whose `poll.FD`
/// holds it. Both are on the heap, read after the target runs again (a file closed since
/// reads `-1`).
fn close_fds(
    mem: &impl MemoryReader,
    gs: &mut [Goroutine],
    closes: &[(usize, usize, usize, u64)],
    fetch: &dyn CopyInto,
    local: &mut MemoryImage,
) {
    if closes.is_empty() {
        return;
    }
    fetch.copy_into(&closes.iter().map(|c| (c.3, 8)).collect::<Vec<_>>(), local);
    let files: Vec<Option<u64>> = closes
        .iter()
        .map(|c| Layered(&*local, mem).read_u64(c.3).ok().filter(|&p| p != 0))
        .collect();
    fetch.copy_into(
        &files
            .iter()
            .flatten()
            .map(|&p| (p.wrapping_add(OS_FILE_SYSFD_OFFSET), 8))
            .collect::<Vec<_>>(),
        local,
    );
    let rd = Layered(&*local, mem);
    for (c, file) in closes.iter().zip(files) {
        if let Some(fd) = file.and_then(|p| rd.read_u64(p.wrapping_add(OS_FILE_SYSFD_OFFSET)).ok())
            && let Some(d) = gs[c.0].frames[c.1].defers_mut().get_mut(c.2)
        {
            d.fd = Some(fd as i64);
        }
    }
}

/// The runtime's `frame.varp` of a physical frame: below the return address (amd64) and the
/// saved frame pointer, when the frame has one.
pub(crate) fn frame_varp(rt: &Runtime, fr: &crate::snapshot::Frame) -> u64 {
    let ret_addr = if rt.bin.arch == Arch::Amd64 { 8 } else { 0 };
    let varp = fr.fp().wrapping_sub(ret_addr);
    if varp > fr.sp() {
        varp.wrapping_sub(8)
    } else {
        varp
    }
}

/// Pending open-coded defers of every physical frame, read from the stack copy, in the order
/// they will run (highest bit first).
fn open_coded(rt: &Runtime, mem: &(impl MemoryReader + Sync), gs: &[Goroutine]) -> Vec<Found> {
    // A big process's goroutines in parts on every CPU: the pass touches every frame.
    let mut out = crate::parts::in_parts(gs, PART, |first, part| {
        open_coded_part(rt, mem, part, first)
    });
    out.truncate(MAX_DEFERS);
    out
}

/// Fewest goroutines [`open_coded`] gives a thread.
const PART: usize = 4096;

/// [`open_coded`] of `gs`, the goroutines from index `first` on.
fn open_coded_part(
    rt: &Runtime,
    mem: &impl MemoryReader,
    gs: &[Goroutine],
    first: usize,
) -> Vec<Found> {
    let tab = &rt.bin.pclntab;
    let slots = rt.version().at_least(22);
    let mut out = Vec::new();
    // By function entry: most frames of a big process share a few hundred functions.
    let mut infos: PcMap<Option<OpenCodedDefers>> = PcMap::default();
    for (gi, g) in gs.iter().enumerate() {
        let mut physical = 0usize;
        for (fi, fr) in g.frames.iter().enumerate() {
            if fr.inlined {
                continue;
            }
            physical += 1;
            // The innermost frame may not have run its prologue (which clears deferBits)
            // yet, nor may a frame interrupted by an asynchronous preemption or a fault.
            let callee = fi.checked_sub(1).map(|i| &*g.frames[i].function);
            if physical == 1 || matches!(callee, Some("runtime.asyncPreempt" | "runtime.sigpanic"))
            {
                continue;
            }
            let Some(info) = *infos.entry(fr.entry).or_insert_with(|| {
                tab.func_for_pc(fr.entry)
                    .and_then(|f| tab.open_coded_defers(f, slots))
            }) else {
                continue;
            };
            let varp = frame_varp(rt, fr);
            let Ok(bits) = mem.read_u8(varp.wrapping_sub(u64::from(info.bits))) else {
                continue;
            };
            for i in (0..8).rev() {
                if bits & (1 << i) == 0 || out.len() >= MAX_DEFERS {
                    continue;
                }
                let Some(off) = info.closures[i] else {
                    continue;
                };
                if let Ok(c) = mem.read_u64(varp.wrapping_sub(u64::from(off)))
                    && c != 0
                {
                    out.push(Found {
                        g: first + gi,
                        frame: fi,
                        closure: c,
                        how: "open-coded",
                        late: false,
                    });
                }
            }
        }
    }
    out
}

/// Pending defers on every goroutine's `_defer` list, most recent (first to run) first; the
/// records are read one level of every list per round.
fn records(
    rt: &Runtime,
    mem: &impl MemoryReader,
    gs: &[Goroutine],
    fetch: &dyn CopyInto,
    local: &mut MemoryImage,
    out: &mut Vec<Found>,
) {
    let l = &rt.layout;
    let (Some(_), Some(sp_off), Some(fn_off), Some(link_off)) = (
        l.off(F::GDefer),
        l.off(F::DeferSp),
        l.off(F::DeferFn),
        l.off(F::DeferLink),
    ) else {
        return;
    };
    let len = [sp_off, fn_off, link_off].into_iter().max().unwrap_or(0) + 8;
    // (goroutine, record, read late)
    let mut frontier: Vec<(usize, u64, bool)> = gs
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            Some((
                i,
                l.read(F::GDefer, mem, g.addr).filter(|&d| d != 0)?,
                false,
            ))
        })
        .collect();
    let mut visited: HashSet<u64> = HashSet::new();
    for _ in 0..MAX_DEFER_RECORDS {
        // A record is read once (a hostile list may loop or be shared), and at most
        // MAX_DEFERS records in all.
        frontier.retain(|&(_, d, _)| visited.len() < MAX_DEFERS && visited.insert(d));
        if frontier.is_empty() || out.len() >= MAX_DEFERS {
            break;
        }
        let missing: Vec<(u64, u64)> = frontier
            .iter()
            .filter(|&&(_, d, _)| !readable(&Layered(&*local, mem), d, len))
            .map(|&(_, d, _)| (d, len))
            .collect();
        if !missing.is_empty() {
            fetch.copy_into(&missing, local);
        }
        let missing: HashSet<u64> = missing.into_iter().map(|(a, _)| a).collect();
        let rd = Layered(&*local, mem);
        let mut next = Vec::new();
        for (gi, d, late) in frontier {
            let late = late || missing.contains(&d);
            let flag = |f: F| l.read(f, &rd, d).is_some_and(|v| v != 0);
            let (Some(sp), Some(closure), Some(link)) = (
                l.read(F::DeferSp, &rd, d),
                l.read(F::DeferFn, &rd, d),
                l.read(F::DeferLink, &rd, d),
            ) else {
                continue;
            };
            let skip = flag(F::DeferStarted) || flag(F::DeferOpenDefer) || flag(F::DeferRangefunc);
            if !skip
                && closure != 0
                && let Some(fi) = gs[gi]
                    .frames
                    .iter()
                    .position(|f| !f.inlined && f.sp() == sp)
            {
                out.push(Found {
                    g: gi,
                    frame: fi,
                    closure,
                    how: "record",
                    late,
                });
            }
            if link != 0 {
                next.push((gi, link, late));
            }
        }
        frontier = next;
    }
}

fn readable(mem: &impl MemoryReader, addr: u64, len: u64) -> bool {
    let mut b = vec![0u8; len as usize];
    mem.read_at(addr, &mut b).is_ok()
}

/// The function a closure's code pointer names, and for a wrapper the function it wraps.
fn resolve(rt: &Runtime, pc: u64) -> Option<Resolved> {
    let tab = &rt.bin.pclntab;
    let f = tab.func_for_pc(pc).filter(|&f| tab.entry(f) == pc)?;
    let name = tab.name(f);
    let own: Name = name.into();
    if let Some(m) = name.strip_suffix("-fm") {
        return Some(Resolved {
            function: m.into(),
            closure: Some(own),
        });
    }
    if rt.ids.wrapper.is_none() || Some(tab.func_id(f)) != rt.ids.wrapper {
        return Some(Resolved {
            function: own,
            closure: None,
        });
    }
    let entry_name = |e: u64| {
        tab.func_for_pc(e)
            .filter(|&g| tab.entry(g) == e)
            .map(|g| tab.name(g))
    };
    let end = tab.end(f).min(pc.saturating_add(MAX_WRAPPER_BYTES));
    // The wrapped function as the binary records it (`FUNCDATA_WrapInfo`), else the call
    // inlined into the wrapper (the outermost inlined frame), else its first direct call
    // outside the runtime (the wrapper's prologue calls `runtime.morestack`).
    let wrapped = tab
        .wrapped_entry(f)
        .and_then(entry_name)
        .or_else(|| {
            let step = u64::from(tab.min_lc().max(1));
            (0..(end - pc) / step)
                .map(|k| pc + k * step)
                .find_map(|at| {
                    if tab.pcdata(f, PCDATA_INL_TREE_INDEX, at).unwrap_or(-1) < 0 {
                        return None;
                    }
                    let frames = tab.frames_at(f, at);
                    frames.len().checked_sub(2).map(|i| frames[i].name)
                })
        })
        .or_else(|| {
            find::direct_calls(&rt.bin, pc, end, rt.bias)
                .into_iter()
                .filter_map(entry_name)
                .find(|n| !n.starts_with("runtime."))
        });
    Some(match wrapped {
        Some(w) => Resolved {
            function: w.into(),
            closure: Some(own),
        },
        None => Resolved {
            function: own,
            closure: None,
        },
    })
}
