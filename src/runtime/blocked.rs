//! What blocked goroutines wait on: the channel behind a channel wait (`g.waiting` → sudog →
//! `hchan`), the semaphore behind a sync wait (the runtime's `semtable` treaps of sudogs keyed
//! by semaphore address, `src/runtime/sema.go`), and the state of each object read from
//! memory: channel counts, Mutex state bits, RWMutex reader count and pending writer. Also
//! who holds the Mutexes and RWMutexes: the frames with a pending deferred unlock of one
//! ([`super::defers`]).
//!
//! This reads the target after it runs again (or a core): the objects of a hung program do
//! not move, and every sudog found is checked against the frozen goroutine list (its g must
//! be a goroutine the snapshot shows waiting), so a stale entry is dropped, never misreported.

use super::Runtime;
use super::layout::{F, Layout};
use crate::snapshot::{BlockedOn, FlockRetry, Goroutine, Holder, Name, SyncObject};
use crate::target::CopyInto;
use crate::target::image::MemoryImage;
use crate::target::{Layered, MemoryReader, ReadExt, ThreadState};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most sudogs visited in the semaphore table.
const MAX_SUDOGS: usize = 4 << 20;
/// Most cases of one select followed.
const MAX_SELECT_CASES: usize = 1024;
/// Entries of `runtime.semtable` (`semTabSize`).
const SEM_TAB_SIZE: u64 = 251;

/// Fills `blocked_on` of the goroutines (and their frames' pending defers,
/// [`super::defers::read`]) and returns the objects they wait on, with their holders (possible
/// ones by [`super::holders::add`], whose pointers may be in `threads`' registers).
///
/// `mem` reads the goroutines' g structs (as frozen) and whatever else it holds; `fetch`
/// copies more of the target into a local image, in batched rounds (one per level of the
/// structures walked), so a live target costs a few `process_vm_readv` calls, not one per
/// word. For a core, `fetch` does nothing and everything is read from `mem`.
pub fn analyze(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    gs: &mut [Goroutine],
    threads: &[ThreadState],
    fetch: &dyn CopyInto,
) -> Vec<SyncObject> {
    super::defers::read(rt, mem, gs, fetch);
    let semas = Semas::read(rt, mem, fetch);
    semas.assign(gs);
    let frontier = chan_frontier(rt, mem, gs);
    let chans = chan_waits(rt, mem, gs, fetch, frontier);
    objects(rt, mem, gs, threads, fetch, semas, chans, None)
}

/// [`analyze`] once the goroutines' pending defers are read, their semaphore waits assigned
/// ([`Semas::assign`], `semas` with the words of the locks it names when
/// [`Semas::read_locks`] read them) and their channel waits (`chans`, [`chan_waits`]).
/// `found`: the possible holders, when a search for the locks read then ran as the
/// goroutines were built; else they are searched now.
#[allow(clippy::too_many_arguments)]
pub(crate) fn objects(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    gs: &mut [Goroutine],
    threads: &[ThreadState],
    fetch: &dyn CopyInto,
    semas: Semas,
    chans: Vec<u64>,
    found: Option<(super::holders::Finder, super::holders::Found)>,
) -> Vec<SyncObject> {
    // The lock words read before are the ones the objects show (earlier bytes win).
    let mut local = semas.locks;
    let mut objects: BTreeMap<u64, SyncObject> = BTreeMap::new();
    let hchan_len = hchan_len(&rt.layout);

    fetch.copy_into(
        &chans.iter().map(|&c| (c, hchan_len)).collect::<Vec<_>>(),
        &mut local,
    );
    for &c in &chans {
        objects.insert(c, chan(rt, &Layered(&local, mem), c));
    }

    // The sync objects of the semaphore waits (every wait but a channel's).
    let mut prims: Vec<(&'static str, u64)> = gs
        .iter()
        .flat_map(|g| &g.blocked_on)
        .filter_map(|b| Some((sema_kind(&b.kind)?, b.addr)))
        .collect();
    let held = holders(gs);
    prims.extend(held.iter().map(|&(kind, a, _)| (kind, a)));
    prims.sort_unstable();
    prims.dedup();
    fetch.copy_into(
        &prims.iter().map(|&(_, a)| (a, 24)).collect::<Vec<_>>(),
        &mut local,
    );
    for &(kind, a) in &prims {
        objects
            .entry(a)
            .or_insert_with(|| primitive(&Layered(&local, mem), kind, a));
    }

    for (_, a, h) in held {
        if let Some(o) = objects.get_mut(&a) {
            o.holders.push(h);
        }
    }

    // Waiter counts per object, by what each waiter does.
    for g in gs.iter() {
        for b in &g.blocked_on {
            if let Some(o) = objects.get_mut(&b.addr) {
                match o.waiters.get_mut(&*g.state) {
                    Some(n) => *n += 1,
                    None => {
                        o.waiters.insert(g.state.to_string(), 1);
                    }
                }
            }
        }
    }
    let mut out: Vec<SyncObject> = objects.into_values().collect();
    match found {
        Some((finder, found)) => finder.attach(found, &mut out),
        None => super::holders::add(rt, mem, gs, &mut out, threads, fetch),
    }
    for o in &mut out {
        o.summary = summary(o);
    }
    out.sort_by(|a, b| {
        b.total_waiters()
            .cmp(&a.total_waiters())
            .then(a.addr.cmp(&b.addr))
    });
    out
}

/// Each of `locks` (objects an earlier snapshot read) read again now, its waiters as counted
/// then, with the holders it has among `gs` by any evidence: a pending deferred unlock, a
/// pointer or code ([`super::holders`]). `gs` are goroutines built from the copy `mem` of now
/// (their pending defers are read into them).
pub fn locks_again(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    gs: &mut [Goroutine],
    threads: &[ThreadState],
    fetch: &dyn CopyInto,
    locks: &[&SyncObject],
) -> Vec<SyncObject> {
    super::defers::read(rt, mem, gs, fetch);
    let mut local = MemoryImage::new();
    fetch.copy_into(
        &locks.iter().map(|o| (o.addr, 24)).collect::<Vec<_>>(),
        &mut local,
    );
    let held = holders(gs);
    let mut out: Vec<SyncObject> = locks
        .iter()
        .map(|o| SyncObject {
            waiters: o.waiters.clone(),
            holders: held
                .iter()
                .filter(|(_, a, _)| *a == o.addr)
                .map(|(_, _, h)| h.clone())
                .collect(),
            ..primitive(&Layered(&local, mem), &o.kind, o.addr)
        })
        .collect();
    super::holders::add(rt, mem, gs, &mut out, threads, fetch);
    out
}

/// The first sudog of each channel wait: (index in `gs`, its goroutine's `g.waiting`, read
/// through `mem`, the copy of its g struct), for [`chan_waits`].
pub(crate) fn chan_frontier(
    rt: &Runtime,
    mem: &impl MemoryReader,
    gs: &[Goroutine],
) -> Vec<(usize, u64)> {
    let l = &rt.layout;
    // Channels: g.waiting is the sudog of a channel operation (a list, for select).
    if l.off(F::SudogCVu).or(l.off(F::SudogC)).is_none() {
        return Vec::new();
    }
    gs.iter()
        .enumerate()
        .filter(|(_, g)| is_chan_wait(&g.state))
        .filter_map(|(i, g)| Some((i, l.read(F::GWaiting, mem, g.addr).filter(|&w| w != 0)?)))
        .collect()
}

/// Channel waits: each channel a waiting goroutine's sudogs name (from `frontier`,
/// [`chan_frontier`], following `waitlink` for a select) added to its `blocked_on`; returns
/// the channels, sorted, each once. A live target's model reads them a chunk of goroutines at
/// a time, as the chunk is built: the sudogs are copied (each alone: a chunk's are few, and a
/// long-running process's are anywhere in its heap), and let go before it returns.
pub(crate) fn chan_waits(
    rt: &Runtime,
    mem: &impl MemoryReader,
    gs: &mut [Goroutine],
    fetch: &dyn CopyInto,
    mut frontier: Vec<(usize, u64)>,
) -> Vec<u64> {
    let mut local = MemoryImage::new();
    let l = &rt.layout;
    let sudog_len = sudog_len(l);
    let c_off = l.off(F::SudogCVu).or(l.off(F::SudogC));
    let mut chans: Vec<u64> = Vec::new();
    let kind = Name::from("chan");
    for _ in 0..MAX_SELECT_CASES {
        if frontier.is_empty() {
            break;
        }
        fetch.copy_into(
            &frontier
                .iter()
                .map(|&(_, s)| (s, sudog_len))
                .collect::<Vec<_>>(),
            &mut local,
        );
        let rd = Layered(&local, mem);
        let mut next = Vec::new();
        for (i, sg) in frontier {
            if l.read(F::SudogG, &rd, sg) != Some(gs[i].addr) {
                continue;
            }
            if let Ok(c) = rd.read_u64(sg.wrapping_add(c_off.unwrap_or(0)))
                && c != 0
            {
                push_exact(
                    &mut gs[i].blocked_on,
                    BlockedOn {
                        kind: kind.clone(),
                        addr: c,
                        sudog: sg,
                    },
                );
                chans.push(c);
            }
            if let Some(w) = l.read(F::SudogWaitlink, &rd, sg).filter(|&w| w != 0) {
                next.push((i, w));
            }
        }
        frontier = next;
    }
    chans.sort_unstable();
    chans.dedup();
    chans
}

/// The waits of the semaphore table (`runtime.semtable`), read once; each is given to the
/// goroutine it belongs to by [`Semas::assign`].
#[derive(Debug, Default)]
pub(crate) struct Semas {
    /// Each sudog of the table, in the order walked: (its g, the address it waits on, itself).
    waits: Vec<(u64, u64, u64)>,
    /// Indices in `waits` by g address (in walk order for each g).
    by_g: Vec<(u64, usize)>,
    /// The first 24 bytes of the Mutexes and RWMutexes the waiters wait for, when
    /// [`Semas::read_locks`] read them: the objects show these, not a later read.
    locks: MemoryImage,
}

impl Semas {
    /// Walks every treap of the semaphore table and each address's wait list, a round of
    /// reads for the sudogs on pages not copied yet; the pages are let go after.
    pub(crate) fn read(rt: &Runtime, mem: &impl MemoryReader, fetch: &dyn CopyInto) -> Semas {
        let mut pages = MemoryImage::new();
        let local = &mut pages;
        let l = &rt.layout;
        let sudog_len = sudog_len(l);
        let mut waits = Vec::new();
        if let (Some((base, size)), Some(treap_off)) =
            (semtable(rt, mem, fetch, local), l.off(F::SemaRootTreap))
        {
            let stride = size / SEM_TAB_SIZE;
            fetch.copy_into(&[(base, stride * SEM_TAB_SIZE)], local);
            let rd = Layered(&*local, mem);
            let mut frontier: Vec<u64> = (0..SEM_TAB_SIZE)
                .filter_map(|i| {
                    rd.read_u64(
                        base.wrapping_add(i.wrapping_mul(stride))
                            .wrapping_add(treap_off),
                    )
                    .ok()
                })
                .filter(|&t| t != 0)
                .collect();
            let elem_off = l.off(F::SudogElemVu).or(l.off(F::SudogElem)).unwrap_or(0);
            let mut visited = HashSet::new();
            while !frontier.is_empty() && visited.len() < MAX_SUDOGS {
                frontier.retain(|n| !visited.contains(n));
                copy_pages(
                    fetch,
                    &frontier.iter().map(|&n| (n, sudog_len)).collect::<Vec<_>>(),
                    local,
                );
                let rd = Layered(&*local, mem);
                // A sudog whose child is in the copy already walks it in the same round: a
                // wait list on pages read before costs no read of the target.
                let mut work = std::mem::take(&mut frontier);
                while let Some(node) = work.pop() {
                    if visited.len() >= MAX_SUDOGS || !visited.insert(node) {
                        continue;
                    }
                    for f in [F::SudogPrev, F::SudogNext, F::SudogWaitlink] {
                        if let Some(child) = l
                            .read(f, &rd, node)
                            .filter(|&c| c != 0 && !visited.contains(&c))
                        {
                            if local.contains(child, sudog_len) {
                                work.push(child);
                            } else {
                                frontier.push(child);
                            }
                        }
                    }
                    if let (Some(g), Ok(addr)) = (
                        l.read(F::SudogG, &rd, node),
                        rd.read_u64(node.wrapping_add(elem_off)),
                    ) {
                        waits.push((g, addr, node));
                    }
                }
            }
        }
        drop(pages);
        crate::startup::release_freed();
        let mut by_g: Vec<(u64, usize)> = waits
            .iter()
            .enumerate()
            .map(|(i, &(g, _, _))| (g, i))
            .collect();
        by_g.sort_unstable();
        Semas {
            waits,
            by_g,
            locks: MemoryImage::new(),
        }
    }

    /// Reads the first words of every Mutex and RWMutex a wait of the table may belong to
    /// (which one depends on the waiter's frames: its semaphore is `sema`, `w.sema`,
    /// `writerSem` or `readerSem`); the objects [`objects`] shows are read from these words.
    /// Returns those held by their state: the locks whose possible holders may be searched.
    pub(crate) fn read_locks(
        &mut self,
        mem: &impl MemoryReader,
        fetch: &dyn CopyInto,
    ) -> Vec<SyncObject> {
        let mut semas: Vec<u64> = self.waits.iter().map(|&(_, a, _)| a).collect();
        semas.sort_unstable();
        semas.dedup();
        // [sema - 12, sema + 20): the 24 bytes of an RWMutex at sema - 12, - 8 or - 4, the
        // 8 of a Mutex at sema - 4.
        fetch.copy_into(
            &semas
                .iter()
                .map(|&a| (a.wrapping_sub(12), 32))
                .collect::<Vec<_>>(),
            &mut self.locks,
        );
        let rd = Layered(&self.locks, mem);
        let mut locks: Vec<(&'static str, u64)> = semas
            .iter()
            .flat_map(|&s| {
                [
                    ("sync.Mutex", s.wrapping_sub(4)),
                    ("sync.RWMutex", s.wrapping_sub(4)),
                    ("sync.RWMutex", s.wrapping_sub(8)),
                    ("sync.RWMutex", s.wrapping_sub(12)),
                ]
            })
            .collect();
        locks.sort_unstable();
        locks.dedup();
        locks
            .into_iter()
            .map(|(kind, a)| primitive(&rd, kind, a))
            .filter(|o| o.held_by_state() == Some(true))
            .collect()
    }

    /// Adds each wait whose g is a goroutine of `gs` the snapshot shows waiting to its
    /// `blocked_on`, as the sync object its frames say the address belongs to (once each).
    pub(crate) fn assign(&self, gs: &mut [Goroutine]) {
        let mut kinds: HashMap<&'static str, Name> = HashMap::new();
        for g in gs
            .iter_mut()
            .filter(|g| g.status == crate::snapshot::Status::WAITING)
        {
            let first = self.by_g.partition_point(|&(a, _)| a < g.addr);
            for &(_, i) in self.by_g[first..].iter().take_while(|&&(a, _)| a == g.addr) {
                let (_, addr, node) = self.waits[i];
                let (kind, obj) = sync_object(g, addr);
                if !g.blocked_on.iter().any(|b| b.addr == obj) {
                    let name = kinds.entry(kind).or_insert_with(|| Name::from(kind));
                    push_exact(
                        &mut g.blocked_on,
                        BlockedOn {
                            kind: name.clone(),
                            addr: obj,
                            sudog: node,
                        },
                    );
                }
            }
        }
    }
}

/// The kind of a semaphore wait's object, as [`sync_object`] names it; `None` for a channel.
fn sema_kind(kind: &str) -> Option<&'static str> {
    ["sync.RWMutex", "sync.Mutex", "sync.WaitGroup", "semaphore"]
        .into_iter()
        .find(|&k| k == kind)
}

/// Bytes [`copy_pages`] copies at a time (aligned): the Go heap's page, the unit of its spans,
/// so a block holds only objects of the sudog's own size class.
const PAGE: u64 = 8 << 10;
/// Most bytes [`copy_pages`] lets its image hold in whole blocks; past this (sudogs strewn
/// over the address space, as a hostile target may have them) only the ranges asked for.
const MAX_PAGED: u64 = 64 << 20;

/// Copies the whole blocks that hold `ranges` into `local`, those it does not hold yet.
/// Sudogs are allocated side by side: a block read for one serves its neighbours, so a
/// semaphore's wait list of 100,000 waiters is walked in a few hundred rounds of reads, not
/// one per waiter.
fn copy_pages(fetch: &dyn CopyInto, ranges: &[(u64, u64)], local: &mut MemoryImage) {
    if local.total_bytes() > MAX_PAGED {
        fetch.copy_into(ranges, local);
        return;
    }
    let mut pages: Vec<u64> = ranges
        .iter()
        .flat_map(|&(a, len)| {
            let end = a.saturating_add(len);
            (a & !(PAGE - 1)..end).step_by(PAGE as usize)
        })
        .filter(|&p| !local.contains(p, PAGE))
        .collect();
    pages.sort_unstable();
    pages.dedup();
    if !pages.is_empty() {
        fetch.copy_into(&pages.iter().map(|&p| (p, PAGE)).collect::<Vec<_>>(), local);
    }
}

/// Adds `b` to a goroutine's waits with room for it alone: most wait on one object (a
/// select on a few), and a vector's first push makes room for four.
fn push_exact(waits: &mut Vec<BlockedOn>, b: BlockedOn) {
    waits.reserve_exact(1);
    waits.push(b);
}

/// The bytes of a sudog read: up to the end of the last field the walks read.
fn sudog_len(l: &Layout) -> u64 {
    [
        F::SudogG,
        F::SudogNext,
        F::SudogPrev,
        F::SudogElemVu,
        F::SudogElem,
        F::SudogWaitlink,
        F::SudogCVu,
        F::SudogC,
    ]
    .iter()
    .filter_map(|&f| l.off(f))
    .max()
    .unwrap_or(0)
        + 8
}

/// The bytes of an hchan read: up to the end of the last count or flag read.
fn hchan_len(l: &Layout) -> u64 {
    [
        F::HchanQcount,
        F::HchanDataqsiz,
        F::HchanElemsize,
        F::HchanClosed,
    ]
    .iter()
    .filter_map(|&f| l.off(f))
    .max()
    .unwrap_or(0)
        + 8
}

/// Locks held through pending deferred unlocks: (kind, address, holder), one per defer.
/// A goroutine inside `sync.(*Cond).Wait` has released the Cond's Locker, which may be the
/// lock a frame outside the wait defers unlocking: those frames claim nothing.
fn holders(gs: &[Goroutine]) -> Vec<(&'static str, u64, Holder)> {
    let mut out = Vec::new();
    for g in gs
        .iter()
        .filter(|g| g.frames.iter().any(|f| !f.defers().is_empty()))
    {
        let waits = g
            .frames
            .iter()
            .position(|f| &*f.function == "sync.(*Cond).Wait");
        for (fi, f) in g.frames.iter().enumerate() {
            if waits.is_some_and(|w| w < fi) {
                break;
            }
            for d in f.defers() {
                let (kind, lock) = match &*d.function {
                    "sync.(*Mutex).Unlock" => ("sync.Mutex", "write"),
                    "sync.(*RWMutex).Unlock" => ("sync.RWMutex", "write"),
                    "sync.(*RWMutex).RUnlock" => ("sync.RWMutex", "read"),
                    _ => continue,
                };
                let Some(a) = d.arg.filter(|&a| a != 0) else {
                    continue;
                };
                out.push((
                    kind,
                    a,
                    Holder {
                        goroutine: g.id,
                        lock: lock.into(),
                        function: f.function.clone(),
                        file: f.file.clone(),
                        line: f.line,
                        how: "defer".into(),
                    },
                ));
            }
        }
    }
    out
}

/// Whether naming a lock after the goroutines are built may read `g`'s stack: it has a
/// pending deferred call (a holder's frames name the lock), or waits in `flock(2)` (a file
/// lock's waiter).
pub(crate) fn reads_stack_later(g: &Goroutine) -> bool {
    g.frames
        .iter()
        .any(|f| !f.defers().is_empty() || FLOCK_FUNCS.contains(&&*f.function))
}

/// Functions whose call is `flock(2)`.
const FLOCK_FUNCS: [&str; 2] = ["syscall.Flock", "golang.org/x/sys/unix.Flock"];

/// Goroutines sleeping (`time.Sleep`) in a function whose code calls `flock` directly: a
/// retry loop with `LOCK_NB`, the descriptors it may retry left empty (see
/// [`crate::target::files`]).
pub(crate) fn flock_retries(rt: &Runtime, gs: &[Goroutine]) -> Vec<FlockRetry> {
    let tab = &rt.bin.pclntab;
    let flock: Vec<u64> = tab
        .funcs_by_names(&FLOCK_FUNCS)
        .into_iter()
        .flatten()
        .map(|f| tab.entry(f))
        .collect();
    if flock.is_empty() {
        return Vec::new();
    }
    let mut calls: HashMap<u64, bool> = HashMap::new();
    let mut out = Vec::new();
    for g in gs.iter().filter(|g| &*g.state == "sleep") {
        let Some(at) = g.frames.iter().position(|f| &*f.function == "time.Sleep") else {
            continue;
        };
        // The sleeping function: the next frame; its physical function's code is searched.
        let Some(f) = g.frames.get(at + 1) else {
            continue;
        };
        let yes = *calls.entry(f.entry).or_insert_with(|| {
            tab.func_for_pc(f.entry).is_some_and(|func| {
                super::find::direct_calls(&rt.bin, tab.entry(func), tab.end(func), rt.bias)
                    .iter()
                    .any(|c| flock.contains(c))
            })
        });
        if yes {
            out.push(FlockRetry {
                goroutine: g.id,
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                opened_again: Vec::new(),
            });
        }
    }
    out
}

/// `runtime.semtable` in the target, `(address, bytes)`: its symbol, or in a binary without
/// symbols the one data address that both `runtime.semacquire1` and `runtime.semrelease1`
/// reference (their inlined `semtable.rootFor`) and that reads as a table of 251 semaphore
/// roots, each an 8-aligned treap pointer or nil with a plausible waiter count. Several such
/// addresses are ambiguous unless only one has waiters; none or an ambiguous pick: `None`.
pub(crate) fn semtable(
    rt: &Runtime,
    mem: &impl MemoryReader,
    fetch: &dyn CopyInto,
    local: &mut MemoryImage,
) -> Option<(u64, u64)> {
    if let Some(s) = rt.bin.symbol("runtime.semtable") {
        return Some((s.addr.wrapping_add(rt.bias), s.size.max(64 * SEM_TAB_SIZE)));
    }
    let treap_off = rt.layout.off(F::SemaRootTreap)?;
    // `cpu.CacheLinePadSize`: 64 on amd64, 128 on arm64 from Go 1.21.
    let stride = match rt.bin.arch {
        crate::arch::Arch::Arm64 if rt.version().at_least(21) => 128,
        _ => 64,
    };
    let size = stride * SEM_TAB_SIZE;
    let refs = |name| super::find::func_refs(&rt.bin, name, rt.bias).unwrap_or_default();
    let release = refs("runtime.semrelease1");
    let cands: Vec<u64> = refs("runtime.semacquire1")
        .into_iter()
        .filter(|r| release.binary_search(r).is_ok())
        .map(|r| r.wrapping_add(rt.bias))
        .collect();
    fetch.copy_into(&cands.iter().map(|&c| (c, size)).collect::<Vec<_>>(), local);
    let rd = Layered(&*local, mem);
    let mut valid: Vec<(u64, bool)> = Vec::new();
    for &c in &cands {
        let mut busy = false;
        let ok = (0..SEM_TAB_SIZE).all(|i| {
            let e = c.wrapping_add(i * stride);
            match (
                rd.read_u64(e.wrapping_add(treap_off)),
                rd.read_u32(e.wrapping_add(treap_off + 8)),
            ) {
                (Ok(t), Ok(n)) => {
                    busy |= t != 0;
                    t % 8 == 0 && n < 1 << 24
                }
                _ => false,
            }
        });
        if ok {
            valid.push((c, busy));
        }
    }
    let busy: Vec<u64> = valid.iter().filter(|v| v.1).map(|v| v.0).collect();
    match (&valid[..], &busy[..]) {
        ([(one, _)], _) | (_, [one]) => Some((*one, size)),
        _ => None,
    }
}

fn is_chan_wait(state: &str) -> bool {
    state.starts_with("chan ") || state.starts_with("select")
}

/// Which primitive a semaphore address belongs to, from the waiter's own frames: the
/// innermost `sync` function on the stack says which method it is blocked in.
fn sync_object(g: &Goroutine, sema: u64) -> (&'static str, u64) {
    let funcs = || g.frames.iter().map(|f| &*f.function);
    let has = |name: &str| funcs().any(|f| f == name);
    if has("sync.(*RWMutex).RLock") {
        return ("sync.RWMutex", sema.wrapping_sub(12)); // readerSem
    }
    if has("sync.(*RWMutex).Lock") {
        // Either waiting for readers (writerSem, +8) or for another writer (w.sema, +4).
        let in_mutex =
            funcs().any(|f| f.ends_with("(*Mutex).lockSlow") || f.ends_with("(*Mutex).Lock"));
        return (
            "sync.RWMutex",
            sema.wrapping_sub(if in_mutex { 4 } else { 8 }),
        );
    }
    if funcs().any(|f| {
        f.ends_with("(*Mutex).lockSlow")
            || f == "sync.(*Mutex).Lock"
            || f == "internal/sync.(*Mutex).Lock"
    }) {
        return ("sync.Mutex", sema.wrapping_sub(4));
    }
    if has("sync.(*WaitGroup).Wait") {
        return ("sync.WaitGroup", sema.wrapping_sub(8));
    }
    ("semaphore", sema)
}

fn chan(rt: &Runtime, mem: &impl MemoryReader, c: u64) -> SyncObject {
    let l = &rt.layout;
    let mut o = SyncObject {
        kind: "chan".into(),
        addr: c,
        ..Default::default()
    };
    for (name, f) in [
        ("qcount", F::HchanQcount),
        ("dataqsiz", F::HchanDataqsiz),
        ("elemsize", F::HchanElemsize),
        ("closed", F::HchanClosed),
    ] {
        if let Some(v) = l.read(f, mem, c) {
            o.fields.push((name.into(), v as i64));
        }
    }
    o
}

fn primitive(mem: &impl MemoryReader, kind: &str, addr: u64) -> SyncObject {
    let mut o = SyncObject {
        kind: kind.into(),
        addr,
        ..Default::default()
    };
    let i32_at = |off: u64| {
        mem.read_u32(addr.wrapping_add(off))
            .ok()
            .map(|v| v as i32 as i64)
    };
    let fields: &[(&str, u64)] = match kind {
        "sync.Mutex" => &[("state", 0)],
        "sync.RWMutex" => &[("w.state", 0), ("readerCount", 16), ("readerWait", 20)],
        _ => &[],
    };
    for &(name, off) in fields {
        if let Some(v) = i32_at(off) {
            o.fields.push((name.into(), v));
        }
    }
    if kind == "sync.WaitGroup"
        && let Ok(state) = mem.read_u64(addr)
    {
        let (counter, waiters) = waitgroup_counts(state);
        o.fields.push(("counter".into(), i64::from(counter)));
        o.fields.push(("waiters".into(), waiters as i64));
    }
    o
}

/// One line describing an object's own state.
fn summary(o: &SyncObject) -> String {
    let f = |n: &str| o.fields.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    match o.kind.as_str() {
        "chan" => {
            let (q, cap, closed) = (
                f("qcount").unwrap_or(0),
                f("dataqsiz").unwrap_or(0),
                f("closed").unwrap_or(0) != 0,
            );
            let kind = if cap == 0 {
                "unbuffered".to_string()
            } else {
                format!("buffered {cap}")
            };
            format!("{kind}, {q}/{cap} queued, closed={closed}")
        }
        "sync.Mutex" => {
            let s = f("state").unwrap_or(0);
            format!(
                "state={s:#x}: {}{}{}, {} waiters",
                if s & 1 != 0 { "locked" } else { "unlocked" },
                if s & 2 != 0 { ", woken" } else { "" },
                if s & 4 != 0 { ", starving" } else { "" },
                s >> 3
            )
        }
        "sync.RWMutex" => {
            let rc = f("readerCount").unwrap_or(0);
            let rw = f("readerWait").unwrap_or(0);
            let ws = f("w.state").unwrap_or(0);
            if rc < 0 {
                format!(
                    "readerCount={rc}: 1 writer waiting for {rw} reader{} to leave, {} readers counted (holding or queued behind the writer); writer lock {}",
                    if rw == 1 { "" } else { "s" },
                    rc + crate::snapshot::RWMUTEX_MAX_READERS,
                    if ws & 1 != 0 { "held" } else { "free" }
                )
            } else {
                format!(
                    "readerCount={rc}: {rc} readers hold it, no writer pending; writer lock {}",
                    if ws & 1 != 0 { "held" } else { "free" }
                )
            }
        }
        "sync.WaitGroup" => format!(
            "counter={}, waiters={}",
            f("counter").unwrap_or(0),
            f("waiters").unwrap_or(0)
        ),
        _ => String::new(),
    }
}

/// The waiter count's bits of a WaitGroup's state word: the low 31 (Go 1.25 keeps a synctest
/// bubble flag in bit 31; before, the low 32 bits count waiters, and bit 31 would take 2^31
/// goroutines waiting).
const WAITGROUP_WAITERS: u64 = 0x7fff_ffff;

/// A WaitGroup's counter (the high 32 bits, signed) and waiters from its state word.
pub(crate) fn waitgroup_counts(state: u64) -> (i32, u64) {
    ((state >> 32) as u32 as i32, state & WAITGROUP_WAITERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before the walk the waiters' frames are not known, so every lock a semaphore may
    /// belong to is read, and those held by their state are the ones searched: here a
    /// Mutex whose `sema` it is (state locked) among the RWMutexes the same semaphore could
    /// be `w.sema`, `writerSem` or `readerSem` of (none held by their words).
    #[test]
    fn read_locks_finds_the_held_lock_a_semaphore_may_belong_to() {
        let s = 0x10_0000u64;
        let mut mem = MemoryImage::new();
        let mut words = vec![0u8; 32];
        // [s - 12, s + 20): the Mutex's state at s - 4.
        words[8] = 1;
        mem.insert(s - 12, words);
        let mut semas = Semas {
            waits: vec![(0xc000, s, 0xd000)],
            by_g: vec![(0xc000, 0)],
            locks: MemoryImage::new(),
        };
        // The target's memory, read through `fetch` (what it copies is kept for the objects).
        let target = |mem: &MemoryImage| {
            let mem = mem.clone();
            move |reqs: &[(u64, u64)], img: &mut MemoryImage| {
                for &(a, l) in reqs {
                    let mut b = vec![0u8; l as usize];
                    if mem.read_at(a, &mut b).is_ok() {
                        img.insert(a, b);
                    }
                }
            }
        };
        let locks = semas.read_locks(&MemoryImage::new(), &target(&mem));
        let found: Vec<(&str, u64)> = locks.iter().map(|o| (o.kind.as_str(), o.addr)).collect();
        assert_eq!(found, [("sync.Mutex", s - 4)]);
        // The words read are the ones the objects are read from after.
        assert!(semas.locks.contains(s - 12, 32));
        // A writer holding an RWMutex whose readerSem it is: w.state locked, readerCount
        // negative (pending writer), readerWait 0.
        let mut words = vec![0u8; 32];
        words[0] = 1;
        words[16..20].copy_from_slice(&(-(1i32 << 30)).to_le_bytes());
        let mut mem = MemoryImage::new();
        mem.insert(s - 12, words);
        semas.locks = MemoryImage::new();
        let locks = semas.read_locks(&MemoryImage::new(), &target(&mem));
        let found: Vec<(&str, u64)> = locks.iter().map(|o| (o.kind.as_str(), o.addr)).collect();
        assert_eq!(found, [("sync.RWMutex", s - 12)]);
    }

    /// Found by fuzzing: a hostile sudog's element pointer at the top of the address space
    /// overflowed the field offsets of the primitive it names.
    #[test]
    fn primitive_at_the_end_of_the_address_space() {
        for kind in ["sync.Mutex", "sync.RWMutex", "sync.WaitGroup"] {
            let o = primitive(&MemoryImage::new(), kind, u64::MAX - 15);
            assert!(o.fields.is_empty(), "{kind}: {:?}", o.fields);
        }
    }
}
