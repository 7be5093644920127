//! Reading goroutines: the copy plan for the frozen window, and reading each `runtime.g`
//! (and its `m`) back out of the copy.
//!
//! The copy happens in a few batched rounds, each depending on the last: the `allgs` slice
//! header, the array of g pointers, every g, the Ms of goroutines that are on a thread (and
//! their g0 for system-stack unwinding), then the used part of every stack.

use super::Runtime;
use super::layout::F;
use super::status;
use crate::target::image::MemoryImage;
use crate::target::{CopyInto, Layered, MemoryReader, ReadExt, ThreadState};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

/// Most goroutines accepted from `allgs` (a corrupt length must not allocate unbounded).
pub(crate) const MAX_GOROUTINES: u64 = 16 << 20;
/// Largest goroutine stack copied (Go's own maximum on 64-bit is 1 GB).
pub(crate) const MAX_STACK_COPY: u64 = 1 << 30;

/// One g as read from memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawG {
    /// Address of the g.
    pub addr: u64,
    /// Status with the scan bit removed.
    pub status: u32,
    /// The scan bit was set.
    pub scan: bool,
    /// Goroutine id.
    pub goid: u64,
    /// `stack.lo`, `stack.hi`.
    pub stack: (u64, u64),
    /// `sched.pc`, `sched.sp`, `sched.lr`.
    pub sched: (u64, u64, u64),
    /// `syscallpc`, `syscallsp`.
    pub syscall: (u64, u64),
    /// `stktopsp`.
    pub stktopsp: u64,
    /// `waitsince` (nanotime; 0 until a GC cycle records it).
    pub waitsince: i64,
    /// `waitreason`.
    pub waitreason: u8,
    /// `lockedm != 0`.
    pub locked: bool,
    /// `parentGoid` (0 when the version has none).
    pub parent_goid: u64,
    /// `gopc`: pc of the `go` statement.
    pub gopc: u64,
    /// `startpc`: the goroutine's function.
    pub startpc: u64,
    /// `m` (0 when not on a thread).
    pub m: u64,
    /// `labels` pointer.
    pub labels: u64,
    /// `waiting` (the first sudog).
    pub waiting: u64,
}

/// One m as read from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawM {
    /// Address.
    pub addr: u64,
    /// `m.id`.
    pub id: i64,
    /// `m.procid`: the Linux thread id.
    pub procid: u64,
    /// `m.g0`.
    pub g0: u64,
    /// `m.curg`.
    pub curg: u64,
    /// `m.vdsoSP`, `m.vdsoPC`.
    pub vdso: (u64, u64),
    /// `g0.stack` (lo, hi), when g0 could be read.
    pub g0_stack: (u64, u64),
    /// `m.gsignal` (0 when the layout lacks it).
    pub gsignal: u64,
    /// `gsignal.stack` (lo, hi), when gsignal could be read.
    pub gsignal_stack: (u64, u64),
    /// `m.alllink`: the M created before this one (0 for the first, or when unknown).
    pub alllink: u64,
}

/// The g fields a goroutine's stack, labels and g struct depend on: while they are all
/// unchanged and the goroutine is parked off any thread, it has not run (its `trackingSeq`
/// counts every transition out of running, its saved registers would differ after a re-park
/// elsewhere), its stack has not moved (a GC shrink changes the bounds), its labels are the
/// same immutable object, and the one field others write while it stays parked (`waitsince`,
/// which a GC sets on the first scan of its stack) is the same. A copy of its stack and g
/// struct taken earlier is then the stack and g struct of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackKey([u64; 13]);

impl StackKey {
    pub(crate) fn of(rt: &Runtime, g: &[u8]) -> StackKey {
        let l = &rt.layout;
        StackKey([
            l.get(F::GAtomicStatus, g) & !u64::from(status::SCAN),
            l.get(F::GGoid, g),
            l.get(F::GStackLo, g),
            l.get(F::GStackHi, g),
            l.get(F::GSchedPc, g),
            l.get(F::GSchedSp, g),
            l.get(F::GSchedLr, g),
            l.get(F::GSchedBp, g),
            l.get(F::GSyscallSp, g),
            l.get(F::GM, g),
            l.get(F::GTrackingSeq, g),
            l.get(F::GLabels, g),
            l.get(F::GWaitSince, g),
        ])
    }

    /// Status, without the scan bit.
    fn status(&self) -> u32 {
        self.0[0] as u32
    }

    /// Whether the goroutine is dead (`v`: the target's Go version).
    pub(crate) fn dead(&self, v: crate::version::GoVersion) -> bool {
        status::is_dead(self.status(), v)
    }

    /// Its stack's bounds, `[lo, hi)`.
    pub fn stack(&self) -> (u64, u64) {
        (self.0[2], self.0[3])
    }

    /// A key with only its stack's bounds set.
    #[cfg(test)]
    pub(crate) fn of_stack(lo: u64, hi: u64) -> StackKey {
        let mut k = [0; 13];
        (k[2], k[3]) = (lo, hi);
        StackKey(k)
    }

    /// The m running it (0 for none).
    pub fn m(&self) -> u64 {
        self.0[9]
    }

    /// Whether the goroutine ran between an earlier key of its g (`earlier`) and this one:
    /// another goroutine in the same g (its id), another status, m or resume point, or a
    /// transition out of running counted (`trackingSeq`). A stack moved by the GC (the
    /// bounds, sp and bp) while it was parked is not running.
    pub(crate) fn ran_since(&self, earlier: &StackKey) -> bool {
        // status, goid, sched.pc, sched.lr, syscallsp, m, trackingSeq
        [0, 1, 4, 6, 8, 9, 10]
            .iter()
            .any(|&i| self.0[i] != earlier.0[i])
    }

    /// Parked off any thread: not running, not in a system call, not dead, no m.
    pub fn parked(&self) -> bool {
        let st = self.0[0] as u32;
        self.0[9] == 0 && matches!(st, status::WAITING | status::RUNNABLE | status::LEAKED)
    }

    /// Parked, or in a system call: its frames above `syscallsp` do not change until it
    /// returns, which changes its key unless it re-enters at the same place with the same
    /// stack (the accepted risk of reading without stopping the target).
    fn stable_unstopped(&self) -> bool {
        self.parked() || self.0[0] as u32 == status::SYSCALL
    }

    /// Its [`Print`].
    fn print(&self) -> Print {
        let k = print_key();
        let word = |i: usize| self.0.get(i).copied().unwrap_or(0).wrapping_add(k[i]);
        let sum = (0..PRINT_KEY_WORDS / 2).fold(0u128, |sum, i| {
            sum.wrapping_add(u128::from(word(2 * i)) * u128::from(word(2 * i + 1)))
        });
        Print([sum as u64, (sum >> 64) as u64])
    }
}

/// A [`StackKey`]'s fingerprint, what the frozen window compares with the pre-copy's for each
/// g: 16 bytes to stream through the cache instead of 104 (at 100,000 goroutines the old keys
/// alone were a tenth of the window). NH, UMAC's universal hash, under a key drawn once per
/// process that the target never sees: two different keys, whatever they are, give the same
/// print with probability at most 2^-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Print([u64; 2]);

/// Words of [`print_key`]: a key's, rounded up to pairs.
const PRINT_KEY_WORDS: usize = 14;

/// The key of every [`Print`] of this process, drawn at its first use (before any window).
fn print_key() -> &'static [u64; PRINT_KEY_WORDS] {
    static KEY: std::sync::OnceLock<[u64; PRINT_KEY_WORDS]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        use std::hash::BuildHasher;
        let seed = std::hash::RandomState::new();
        std::array::from_fn(|i| seed.hash_one(i))
    })
}

/// A copy of the goroutines taken while the target runs (before the freeze): its bytes may
/// be torn, so the frozen window keeps a goroutine's stack and labels from it only when the
/// goroutine's [`StackKey`] is the same in the pre-copy and in the window.
#[derive(Debug, Default)]
pub struct PreCopy {
    /// The g structs, stacks and labels, and the settled Ms with their g0s. The window reads
    /// the g structs again, keeping those whose key changed or that are not parked: the
    /// others are this copy's.
    img: MemoryImage,
    /// Each g of `allgs`, in its order (which never changes: `allgs` only grows), with its key.
    keys: Vec<(u64, Option<StackKey>)>,
    /// Ms whose thread is left asleep through the window ([`PreCopy::settle`]).
    settled: HashSet<u64>,
    /// The `allgs` array `img` holds whole: its address and length (elements). `allgs` only
    /// grows and its elements are never written again, so the window reads only the ones
    /// added since ([`copy_allgs_since`]) while the array stays where it was.
    allgs: Option<(u64, u64)>,
    /// Where the g structs lie, for the window to read them again; taken by the first window.
    spare: Mutex<Option<Spare>>,
}

/// Where the g structs of a pre-copy lie, where each of its keyed gs lies in them, and room
/// for the window's keys.
#[derive(Debug)]
struct Spare {
    /// How the window reads the g structs again.
    plan: ReadPlan,
    /// The keyed gs' addresses, ascending (apart from their keys: the window walks them
    /// all, and this array is a third of the size).
    addrs: Vec<u64>,
    /// For each of `addrs`: its index in `allgs`, the print of its key then.
    then: Vec<(usize, Print)>,
    /// The pre-copy's gs in `allgs` order (those of `keys`, apart: the window compares them
    /// with its own `allgs`, and this array is a fourteenth of the size).
    gs: Vec<u64>,
    /// The pre-copy's keys, to become the window's where they changed.
    keys: Vec<(u64, Option<StackKey>)>,
    /// Indices of the gs the pre-copy could not key.
    unkeyed: Vec<usize>,
}

/// Whether a range (its address and bytes) holds a g of `keys` (each g of `allgs` with its
/// key).
fn holds_a_g(keys: &[(u64, Option<StackKey>)]) -> impl Fn(u64, &[u8]) -> bool + use<> {
    let mut addrs: Vec<u64> = keys.iter().map(|&(g, _)| g).collect();
    addrs.sort_unstable();
    move |a, b| {
        let end = a.saturating_add(b.len() as u64);
        let i = addrs.partition_point(|&g| g < a);
        addrs.get(i).is_some_and(|&g| g < end)
    }
}

/// The ranges of `img` that hold a g of `keys`, moved out of it.
fn take_gs(img: &mut MemoryImage, keys: &[(u64, Option<StackKey>)]) -> MemoryImage {
    img.take_where(holds_a_g(keys))
}

/// The g structs of `img` (a whole copy) moved out of it and let go: where they lay, for a
/// later window to read them again ([`PreCopy::of_copy`]). `keys`: each g of `allgs` with
/// its key.
pub fn let_go_of_gs(img: &mut MemoryImage, keys: &[(u64, Option<StackKey>)]) -> Vec<(u64, u64)> {
    ranges_of(&take_gs(img, keys))
}

/// Each range of `img`: its address and length.
fn ranges_of(img: &MemoryImage) -> Vec<(u64, u64)> {
    img.ranges_in(0, u64::MAX)
        .map(|(a, b)| (a, b.len() as u64))
        .collect()
}

impl Spare {
    /// The g structs of `keys` (a copy's keys), in `ranges` (only ranges that hold a g,
    /// ascending: where its g structs lie).
    fn of(rt: &Runtime, ranges: &[(u64, u64)], keys: &[(u64, Option<StackKey>)]) -> Spare {
        // Sorted as (address, index) pairs, a seventh of the bytes of whole keys to move.
        let mut by_addr: Vec<(u64, usize)> = keys
            .iter()
            .enumerate()
            .filter(|(_, (_, k))| k.is_some())
            .map(|(i, &(g, _))| (g, i))
            .collect();
        by_addr.sort_unstable();
        let addrs: Vec<u64> = by_addr.iter().map(|&(g, _)| g).collect();
        let then: Vec<(usize, Print)> = by_addr
            .into_iter()
            .filter_map(|(_, i)| Some((i, keys[i].1?.print())))
            .collect();
        let unkeyed = (0..keys.len()).filter(|&i| keys[i].1.is_none()).collect();
        Spare {
            plan: ReadPlan::of(ranges, &addrs, &then, rt.layout.g_size),
            addrs,
            then,
            gs: keys.iter().map(|&(g, _)| g).collect(),
            keys: keys.to_vec(),
            unkeyed,
        }
    }

    /// The ranges of `img` that hold a g of `keys`.
    fn in_image(rt: &Runtime, img: &MemoryImage, keys: &[(u64, Option<StackKey>)]) -> Spare {
        let holds = holds_a_g(keys);
        let ranges: Vec<(u64, u64)> = img
            .ranges_in(0, u64::MAX)
            .filter(|&(a, b)| holds(a, b))
            .map(|(a, b)| (a, b.len() as u64))
            .collect();
        Spare::of(rt, &ranges, keys)
    }
}

/// What [`recopy_keyed`] read.
struct Recopied {
    /// The g structs kept (of the gs to look at, and what lies between gs).
    img: MemoryImage,
    /// Every g of `allgs` with its key.
    keys: Vec<(u64, Option<StackKey>)>,
    /// Indices in `keys` of the gs to look at: key changed since the pre-copy, not parked,
    /// or not in it. Every other g is parked with its pre-copy's key.
    look: Vec<usize>,
    /// Bytes read and not kept in `img`.
    not_kept: u64,
}

impl PreCopy {
    /// Copies every g, the used part of every stack, and the labels, without stopping anything.
    pub fn take(rt: &Runtime, copy: &(dyn CopyInto + Sync)) -> PreCopy {
        // The g structs are read again in the window, through a small buffer of each
        // reading thread: the bytes of parked gs whose key is the same are this copy's.
        let (
            Capture {
                keys, mut gs_img, ..
            },
            stacks,
        ) = capture_but_stacks(rt, &[], copy, None, false);
        // The g structs stay, and the `allgs` array (not the Ms, which the window reads
        // again). Their read plan is made while the stacks are copied (a third of the time
        // of that copy, at 100,000 goroutines).
        let (mut img, (g_img, spare)) = crate::parts::beside(
            || stacks.copy(rt, copy),
            || {
                let g_img = take_gs(&mut gs_img, &keys);
                let spare = Spare::of(rt, &ranges_of(&g_img), &keys);
                (g_img, spare)
            },
        );
        img.absorb(g_img);
        let allgs = held_allgs(rt, &gs_img, &spare.gs);
        if let Some((ptr, len)) = allgs
            && let Some(b) = gs_img.slice(ptr, len * 8)
        {
            img.insert(ptr, b.to_vec());
        }
        PreCopy {
            img,
            keys,
            settled: HashSet::new(),
            allgs,
            spare: Mutex::new(Some(spare)),
        }
    }

    /// The pre-copy's g structs; once.
    fn take_spare(&self) -> Option<Spare> {
        self.spare.lock().ok()?.take()
    }

    /// Readies this copy for the next window when a window's copy was thrown away (the
    /// freeze is taken again); run after the thaw.
    pub(crate) fn recycle(&self, rt: &Runtime) {
        if let Ok(mut spare) = self.spare.lock() {
            *spare = Some(Spare::in_image(rt, &self.img, &self.keys));
        }
    }

    /// An earlier snapshot's copy (its g structs and stacks, taken while the target was
    /// frozen) standing in for the pre-copy of the next: the goroutines that have not run
    /// since need not be copied again. `keys`: its goroutines' keys when the copy kept them,
    /// else they are read from its g structs. `gs_gone`: where its g structs lay when the
    /// copy let them go ([`let_go_of_gs`]; then `keys` are needed): the window keeps only
    /// the gs that changed or are not parked, which is all a second look walks.
    pub fn of_copy(
        rt: &Runtime,
        img: MemoryImage,
        keys: Option<Vec<(u64, Option<StackKey>)>>,
        gs_gone: Vec<(u64, u64)>,
    ) -> PreCopy {
        let keys = keys.unwrap_or_else(|| {
            let gs = all_g_addrs(rt, &img).unwrap_or_default();
            keys_of(rt, &img, &gs)
        });
        let spare = if gs_gone.is_empty() {
            Spare::in_image(rt, &img, &keys)
        } else {
            Spare::of(rt, &gs_gone, &keys)
        };
        let allgs = held_allgs(rt, &img, &spare.gs);
        PreCopy {
            img,
            keys,
            settled: HashSet::new(),
            allgs,
            spare: Mutex::new(Some(spare)),
        }
    }

    /// Copies now, while the target runs, the Ms of the goroutines the pre-copy saw on a
    /// thread whose thread is one of `asleep` (ids as the target numbers them), and their
    /// g0s. Those threads are left asleep through the window, unstopped, and checked after
    /// the thaw to have slept from before this copy on: the fields read of an M (its ids,
    /// g0, gsignal, curg, vdso pc and sp, the next M) change only when its own thread runs,
    /// so the window need not copy them again. A goroutine in a system call on such an M,
    /// whose key is the pre-copy's (it has not left the call since: leaving and entering
    /// again counts in `trackingSeq`), keeps its stack above the call from the pre-copy too.
    pub fn settle(&mut self, rt: &Runtime, copy: &dyn CopyInto, asleep: &HashSet<u64>) {
        self.settled.clear();
        if asleep.is_empty() {
            return;
        }
        let l = &rt.layout;
        let ms: BTreeSet<u64> = self
            .keys
            .iter()
            .filter_map(|(_, k)| k.map(|k| k.m()))
            .filter(|&m| m != 0)
            .collect();
        let mut img = MemoryImage::new();
        let len = l.m_read_len();
        copy.copy_into(&ms.iter().map(|&m| (m, len)).collect::<Vec<_>>(), &mut img);
        let procid = |m: u64| img.read_u64(m.wrapping_add(l.off(F::MProcId)?)).ok();
        let settled: Vec<u64> = ms
            .into_iter()
            .filter(|&m| procid(m).is_some_and(|t| asleep.contains(&t)))
            .collect();
        let g0s: Vec<(u64, u64)> = settled
            .iter()
            .filter_map(|&m| img.read_u64(m.wrapping_add(l.off(F::MG0)?)).ok())
            .filter(|&g| g != 0)
            .map(|g| (g, l.g_size))
            .collect();
        copy.copy_into(&g0s, &mut img);
        let mut keep = MemoryImage::new();
        let ranges = settled.iter().map(|&m| (m, len)).chain(g0s.iter().copied());
        for (a, size) in ranges {
            if let Some(b) = img.slice(a, size) {
                keep.insert(a, b.to_vec());
            }
        }
        self.img.overwrite(keep);
        self.settled = settled.into_iter().collect();
    }

    /// The live goroutines of `now` (each g with its key, in `allgs` order), g addresses,
    /// split in two: those that ran since this copy was taken ([`StackKey::ran_since`]) or
    /// were not in it, and those that did not.
    pub fn ran_since(&self, rt: &Runtime, now: &[(u64, Option<StackKey>)]) -> (Vec<u64>, Vec<u64>) {
        let (mut ran, mut still) = (Vec::new(), Vec::new());
        for (i, &(g, key)) in now.iter().enumerate() {
            let Some(key) = key else { continue };
            if status::is_dead(key.status(), rt.version()) {
                continue;
            }
            match self.key(i, g) {
                Some(before) if !key.ran_since(before) => still.push(g),
                _ => ran.push(g),
            }
        }
        (ran, still)
    }

    /// A copy taken entirely without stopping the target: every g and stack copied, then
    /// every g read again, up to `rounds` times, until every goroutine's key was the same
    /// on both sides of its stack's copy. Returns the image and the goroutines (g
    /// addresses) that kept changing: their stacks are not consistent.
    pub(crate) fn unstopped(
        rt: &Runtime,
        copy: &(dyn CopyInto + Sync),
        rounds: u32,
    ) -> (MemoryImage, Vec<u64>) {
        let mut pre = PreCopy::take(rt, copy);
        let mut round = 1;
        loop {
            let mut cap = capture_with(rt, &[], copy, Some(&pre), true);
            if cap.fresh.is_empty() || round >= rounds {
                let fresh = std::mem::take(&mut cap.fresh);
                return (cap.finish(Some(pre)), fresh);
            }
            // The g structs just read become the keys the next round checks against.
            let keys = std::mem::take(&mut cap.keys);
            let (img, _) = cap.merge(pre);
            pre = PreCopy {
                img,
                keys,
                ..Default::default()
            };
            round += 1;
        }
    }

    /// The key of the i-th g of `allgs`, if that is still the g at `addr`.
    fn key(&self, i: usize, addr: u64) -> Option<&StackKey> {
        match self.keys.get(i) {
            Some((a, Some(k))) if *a == addr => Some(k),
            _ => None,
        }
    }
}

/// What the frozen window copied, to be completed with what it may still take from the
/// pre-copy once the target runs again ([`Capture::finish`]).
#[derive(Debug, Default)]
pub struct Capture {
    /// `allgs`, the g structs, the Ms of goroutines on threads and their g0s.
    pub gs_img: MemoryImage,
    /// Stacks and labels copied (of goroutines not validated against the pre-copy).
    pub img: MemoryImage,
    /// Every g address in `allgs`, with its key.
    pub keys: Vec<(u64, Option<StackKey>)>,
    /// Goroutines whose stack and labels are the pre-copy's.
    reused: usize,
    /// Bytes of g structs read again and not kept (parked with the pre-copy's key).
    not_kept: u64,
    /// Live goroutines (g addresses) whose stack was copied now, not validated against the
    /// pre-copy.
    pub fresh: Vec<u64>,
    /// A running goroutine was caught between states: its thread's stack pointer is on
    /// neither its own stack nor (with valid saved registers) its thread's g0 stack, e.g.
    /// inside a signal handler while its `sched` is cleared. Its stack cannot be read at this
    /// instant; such moments last microseconds, so the caller thaws and tries again.
    pub in_transition: bool,
    /// The threads (ids as the target's namespace numbers them) of the Ms running a
    /// goroutine: their registers are needed.
    pub running_on: Vec<u64>,
}

impl Capture {
    /// Goroutines whose stack came from the pre-copy.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// Bytes copied.
    pub(crate) fn copied_bytes(&self) -> u64 {
        self.gs_img.total_bytes() + self.img.total_bytes() + self.not_kept
    }

    /// The whole image: the pre-copy's g structs, stacks and labels (those of goroutines
    /// parked with the same key are read from there), with everything copied now in place of
    /// what the pre-copy had at the same addresses. Run after the thaw; consumes the pre-copy.
    pub fn finish(self, pre: Option<PreCopy>) -> MemoryImage {
        let (mut img, gs_img) = match pre {
            Some(pre) => self.merge(pre),
            None => (self.img, self.gs_img),
        };
        img.overwrite(gs_img);
        img
    }

    /// The pre-copy's g structs, stacks and labels with the stacks and labels copied now over
    /// them, and what the window copied of the g structs (to go over them too).
    fn merge(self, pre: PreCopy) -> (MemoryImage, MemoryImage) {
        let mut img = pre.img;
        img.overwrite(self.img);
        (img, self.gs_img)
    }
}

/// Performs the copy plan. Against a stopped target, `threads` are its stopped threads and
/// `pre` an earlier [`PreCopy`] whose still-valid parts need not be copied again inside the
/// window; [`PreCopy::take`] runs it against a running target. Reads that fail leave holes
/// that later show as unreadable goroutines.
pub fn capture(
    rt: &Runtime,
    threads: &[ThreadState],
    copy: &(dyn CopyInto + Sync),
    pre: Option<&PreCopy>,
) -> Capture {
    capture_with(rt, threads, copy, pre, false)
}

/// [`capture`] against a running target, with an earlier copy (`pre`) standing in for the
/// pre-copy: the g structs and the stacks of goroutines whose key changed, read while the
/// target runs (such a stack may be torn; the others are the earlier copy's).
pub fn capture_unstopped(rt: &Runtime, copy: &(dyn CopyInto + Sync), pre: &PreCopy) -> Capture {
    capture_with(rt, &[], copy, Some(pre), true)
}

/// [`capture`]; `unstopped`: the target is running, so goroutines in a system call count as
/// unchanged too when their key is (nothing better can be had without stopping it).
fn capture_with(
    rt: &Runtime,
    threads: &[ThreadState],
    copy: &(dyn CopyInto + Sync),
    pre: Option<&PreCopy>,
    unstopped: bool,
) -> Capture {
    let (mut cap, stacks) = capture_but_stacks(rt, threads, copy, pre, unstopped);
    cap.img = stacks.copy(rt, copy);
    cap
}

/// The stacks and labels a capture copies last ([`capture_but_stacks`]).
#[derive(Default)]
struct StackReads {
    /// Label maps' addresses.
    labels: Vec<u64>,
    /// Used parts of stacks: (lowest address, length).
    stacks: Vec<(u64, u64)>,
}

impl StackReads {
    /// Copies them into an image.
    fn copy(&self, rt: &Runtime, copy: &(dyn CopyInto + Sync)) -> MemoryImage {
        let mut img = MemoryImage::new();
        super::labels::capture(rt, &self.labels, &mut img, copy);
        copy.copy_into(&self.stacks, &mut img);
        img
    }
}

/// [`capture_with`] but for the stacks and labels, which it says to copy (the capture's image
/// is empty).
fn capture_but_stacks(
    rt: &Runtime,
    threads: &[ThreadState],
    copy: &(dyn CopyInto + Sync),
    pre: Option<&PreCopy>,
    unstopped: bool,
) -> (Capture, StackReads) {
    let mut gimg = MemoryImage::new();
    let l = &rt.layout;
    let mut spare = pre.and_then(|p| p.take_spare());
    let header = copy_allgs_header(rt, copy, &mut gimg);
    let since = match (header, spare.as_mut(), pre.and_then(|p| p.allgs)) {
        (Some(now), Some(s), Some(held)) => copy_allgs_since(copy, &mut gimg, now, held, &mut s.gs),
        _ => None,
    };
    let extended = since.is_some();
    let Some(gs) = since.or_else(|| header.map(|now| copy_allgs(copy, &mut gimg, now))) else {
        let cap = Capture {
            gs_img: gimg,
            ..Default::default()
        };
        return (cap, StackReads::default());
    };
    // Every g struct and its key (inside the frozen window: into the pre-copy's buffers when
    // it has them, each piece keyed as soon as it is read), then the Ms of goroutines that
    // are on a thread, and their g0 structs. The pre-copy's are of use while `allgs` begins
    // with the gs it keyed (as it does when it is theirs extended).
    let recopied = spare
        .filter(|s| extended || gs.starts_with(&s.gs))
        .and_then(|spare| recopy_keyed(rt, copy, spare, &gs));
    // The gs to look at below (every other one is parked with the pre-copy's key).
    let (keys, look, not_kept) = match recopied {
        Some(Recopied {
            img,
            keys,
            look,
            not_kept,
        }) => {
            gimg.absorb(img);
            (keys, look, not_kept)
        }
        None => {
            let reqs: Vec<(u64, u64)> = gs.iter().map(|&g| (g, l.g_size)).collect();
            copy.copy_into(&reqs, &mut gimg);
            (keys_of(rt, &gimg, &gs), (0..gs.len()).collect(), 0)
        }
    };
    let settled = pre.map(|p| &p.settled);
    let ms = look.iter().filter_map(|&i| Some(keys[i].1?.m()));
    copy_ms(rt, copy, &mut gimg, ms, settled);

    // The used part of every stack, and the labels: none for goroutines whose key is the
    // pre-copy's (their stack and labels are in it).
    let by_tid: HashMap<u64, &ThreadState> = threads.iter().map(|t| (t.tid as u64, t)).collect();
    let mut reqs = Vec::new();
    let (mut reused, mut lptrs, mut fresh) = (keys.len() - look.len(), Vec::new(), Vec::new());
    let mut in_transition = false;
    let mut running_on = Vec::new();
    // The settled Ms are in the pre-copy.
    let no_ms = MemoryImage::new();
    let settled_ms = pre.map_or(&no_ms, |p| &p.img);
    for &i in &look {
        let (g, key) = keys[i];
        let Some(key) = key else { continue };
        if status::is_dead(key.status(), rt.version()) {
            continue;
        }
        let valid = pre.is_some_and(|pre| {
            let on_settled = key.status() == status::SYSCALL && pre.settled.contains(&key.m());
            (key.parked() || on_settled || (unstopped && key.stable_unstopped()))
                && pre.key(i, g) == Some(&key)
        });
        if valid {
            reused += 1;
            continue;
        }
        fresh.push(g);
        let Some(gb) = gimg.slice(g, l.g_size) else {
            continue;
        };
        let raw = decode_g(rt, g, gb);
        if raw.labels != 0 {
            lptrs.push(raw.labels);
        }
        let (lo, hi) = raw.stack;
        if lo >= hi || hi - lo > MAX_STACK_COPY {
            continue;
        }
        let mut sps = [raw.sched.1, raw.syscall.1, 0, 0];
        if let Some(m) = read_m(rt, &Layered(&gimg, settled_ms), raw.m) {
            if raw.status == status::RUNNING && m.curg == raw.addr {
                running_on.push(m.procid);
            }
            if let Some(t) = by_tid.get(&m.procid) {
                let sp = t.regs.sp;
                if (lo..hi).contains(&sp) {
                    sps[2] = sp;
                } else if (m.g0_stack.0..m.g0_stack.1).contains(&sp)
                    && m.g0_stack.1 - sp <= MAX_STACK_COPY
                {
                    reqs.push((sp, m.g0_stack.1 - sp));
                }
            }
            if m.vdso.0 != 0 {
                sps[3] = m.vdso.0;
            }
            in_transition |= caught_between(&raw, &m, &by_tid) || resuming(rt, &raw, &m, &by_tid);
        }
        // Copy from the lowest stack pointer any unwind may start at, up to the stack top.
        if let Some(sp) = sps.into_iter().filter(|sp| (lo..hi).contains(sp)).min() {
            reqs.push((sp, hi - sp));
        }
    }
    let cap = Capture {
        gs_img: gimg,
        img: MemoryImage::new(),
        keys,
        reused,
        not_kept,
        fresh,
        in_transition,
        running_on,
    };
    let stacks = StackReads {
        labels: lptrs,
        stacks: reqs,
    };
    (cap, stacks)
}

/// Copies `allgs`' header into `gimg`: its array's address and length, `None` when the header
/// is unreadable or the length too long.
fn copy_allgs_header(
    rt: &Runtime,
    copy: &dyn CopyInto,
    gimg: &mut MemoryImage,
) -> Option<(u64, u64)> {
    copy.copy_into(&[(rt.allgs, 24)], gimg);
    let (ptr, len) = (
        gimg.read_u64(rt.allgs).ok()?,
        gimg.read_u64(rt.allgs + 8).ok()?,
    );
    (len <= MAX_GOROUTINES).then_some((ptr, len))
}

/// Copies the `allgs` array (`now`: its address and length) into `gimg`; the g addresses.
fn copy_allgs(copy: &dyn CopyInto, gimg: &mut MemoryImage, now: (u64, u64)) -> Vec<u64> {
    let (ptr, len) = now;
    copy.copy_into(&[(ptr, len * 8)], gimg);
    let mut gs = Vec::new();
    push_elements(gimg, ptr, len, &mut gs);
    gs
}

/// When the `allgs` array (`now`: its address and length) is the one a pre-copy held whole
/// (`held`) and has not shrunk, copies into `gimg` only the elements added since: the g
/// addresses are then `before` (the pre-copy's, taken) followed by those. `None` (and
/// `before` left as it is) otherwise.
fn copy_allgs_since(
    copy: &dyn CopyInto,
    gimg: &mut MemoryImage,
    now: (u64, u64),
    held: (u64, u64),
    before: &mut Vec<u64>,
) -> Option<Vec<u64>> {
    let (ptr, len) = now;
    if ptr != held.0 || len < held.1 {
        return None;
    }
    let added = len - held.1;
    let at = ptr.checked_add(held.1 * 8)?;
    copy.copy_into(&[(at, added * 8)], gimg);
    let mut gs = std::mem::take(before);
    push_elements(gimg, at, added, &mut gs);
    Some(gs)
}

/// Appends to `gs` the g addresses in the `n` `allgs` elements at `at`, as copied into `gimg`
/// (zeros skipped): all of them when they were copied whole, else those before the first
/// hole (as `all_g_addrs` reads them back), without trying each of up to `MAX_GOROUTINES`
/// missing ones.
fn push_elements(gimg: &MemoryImage, at: u64, n: u64, gs: &mut Vec<u64>) {
    let nonzero = |&g: &u64| g != 0;
    match gimg.slice(at, n * 8) {
        Some(b) => gs.extend(
            b.chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
                .filter(nonzero),
        ),
        None => gs.extend(
            (0..n)
                .map_while(|i| gimg.read_u64(at.wrapping_add(i * 8)).ok())
                .filter(nonzero),
        ),
    }
}

/// The `allgs` array `img` holds whole (its address and length) when its g addresses are
/// `gs`, those a copy keyed; `None` when the header or any element is missing.
fn held_allgs(rt: &Runtime, img: &MemoryImage, gs: &[u64]) -> Option<(u64, u64)> {
    let (ptr, len) = (
        img.read_u64(rt.allgs).ok()?,
        img.read_u64(rt.allgs + 8).ok()?,
    );
    let b = img.slice(ptr, len.checked_mul(8)?)?;
    let held = b
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
        .filter(|&g| g != 0);
    held.eq(gs.iter().copied()).then_some((ptr, len))
}

/// Most bytes of g structs [`recopy_keyed`] reads in one system call: few enough that its
/// gs are keyed while its bytes are still in the CPU's cache.
const RECOPY_PIECE: u64 = 256 << 10;

/// How a window reads a pre-copy's g structs again: every byte of every range that holds a
/// g, in reads of up to [`RECOPY_PIECE`] bytes, a range cut at the start of a g so that no g
/// straddles two reads. Made with the pre-copy, outside the window.
#[derive(Debug, Default)]
struct ReadPlan {
    reads: Vec<Read>,
    /// Indices in `allgs` of keyed gs in no range (none, as a spare is made; read after).
    outside: Vec<usize>,
    /// Bytes the reads read.
    bytes: u64,
}

/// A read of a [`ReadPlan`]: its pieces (address, length) and the keyed gs (indices in
/// [`Spare::addrs`]) they hold.
type Read = (Vec<(u64, u64)>, std::ops::Range<usize>);

impl ReadPlan {
    /// The reads of `ranges` (only ranges that hold a g, ascending), for the keyed gs at
    /// `addrs` (ascending; `then`: theirs, each with its index in `allgs`).
    fn of(ranges: &[(u64, u64)], by: &[u64], then: &[(usize, Print)], g_size: u64) -> ReadPlan {
        let mut reads = Vec::new();
        let (mut cur, mut cur_len, mut cur_first) = (Vec::new(), 0u64, 0usize);
        let mut j = 0;
        let mut outside = Vec::new();
        for &(a, len) in ranges {
            let end = a.saturating_add(len);
            while by.get(j).is_some_and(|&g| g < a) {
                outside.push(then[j].0);
                j += 1;
            }
            if cur.is_empty() {
                cur_first = j;
            }
            let mut start = a;
            loop {
                // Where this read must end within the range: before the first g that would
                // not fit, else the range's end.
                let room = RECOPY_PIECE.saturating_sub(cur_len);
                let mut cut = None;
                while j < by.len() && by[j] < end {
                    let g = by[j];
                    if g > start && g.saturating_add(g_size) - start > room {
                        cut = Some(g);
                        break;
                    }
                    j += 1;
                }
                match cut {
                    Some(g) => {
                        cur.push((start, g - start));
                        reads.push((std::mem::take(&mut cur), cur_first..j));
                        (start, cur_len, cur_first) = (g, 0, j);
                    }
                    None => {
                        cur_len += end - start;
                        cur.push((start, end - start));
                        if cur_len >= RECOPY_PIECE || cur.len() >= RECOPY_IOVS {
                            reads.push((std::mem::take(&mut cur), cur_first..j));
                            (cur_len, cur_first) = (0, j);
                        }
                        break;
                    }
                }
            }
        }
        if !cur.is_empty() {
            reads.push((cur, cur_first..j));
        }
        outside.extend(then[j..].iter().map(|&(i, _)| i));
        ReadPlan {
            reads,
            outside,
            bytes: ranges.iter().map(|&(_, n)| n).sum(),
        }
    }
}

/// Reads the g structs again as `spare`'s plan says, in pieces over every CPU, each piece
/// into a small buffer of its thread and its gs keyed right after reading it (the window's
/// copy stays in the CPU's cache). Kept of each piece: the gs whose key changed or that are
/// not parked, and the gaps between gs that could hold one (a g0 or a signal g, which are not
/// in `allgs`); every other g is parked with the pre-copy's key, its g struct the
/// pre-copy's. The gs of `gs` outside those ranges (new since the pre-copy) are copied
/// after. `None` when a piece could not be read.
fn recopy_keyed(
    rt: &Runtime,
    copy: &(dyn CopyInto + Sync),
    mut spare: Spare,
    gs: &[u64],
) -> Option<Recopied> {
    let g_size = rt.layout.g_size;
    let by = &spare.addrs;
    // On every CPU: the gs to look at (index, key now; no key when not whole in a piece),
    // the bytes kept, and an error when a read failed.
    enum Seen {
        Look(usize, Option<StackKey>),
        Bytes(u64, Vec<u8>),
        Failed,
    }
    let plan = std::mem::take(&mut spare.plan);
    let looked = crate::parts::in_parts(&plan.reads, RECOPY_READS_PER_THREAD, |_, part| {
        let mut seen = Vec::new();
        let mut own = Vec::new();
        for (pieces, held) in part.iter() {
            let total: u64 = pieces.iter().map(|&(_, n)| n).sum();
            own.resize(total as usize, 0u8);
            let mut free = own.as_mut_slice();
            let mut views: Vec<(u64, &mut [u8])> = Vec::with_capacity(pieces.len());
            for &(a, n) in pieces {
                let (h, t) = std::mem::take(&mut free).split_at_mut(n as usize);
                views.push((a, h));
                free = t;
            }
            if !copy.read_in_place(&mut views) {
                seen.push(Seen::Failed);
                break;
            }
            let then = &spare.then[held.clone()];
            let held = &by[held.clone()];
            for (addr, buf) in &views {
                let end = addr.saturating_add(buf.len() as u64);
                let lo = held.partition_point(|&g| g < *addr);
                let hi = held.partition_point(|&g| g < end);
                // From the piece's start, the end of the last g seen.
                let mut from = *addr;
                for (&g, &(i, was)) in held[lo..hi].iter().zip(&then[lo..hi]) {
                    if g.saturating_sub(from) >= g_size {
                        let gap = &buf[(from - addr) as usize..(g - addr) as usize];
                        seen.push(Seen::Bytes(from, gap.to_vec()));
                    }
                    let off = (g - addr) as usize;
                    from = from.max(g.saturating_add(g_size));
                    let Some(b) = buf.get(off..off.saturating_add(g_size as usize)) else {
                        seen.push(Seen::Look(i, None));
                        continue;
                    };
                    let now = StackKey::of(rt, b);
                    if now.print() != was || !now.parked() {
                        seen.push(Seen::Look(i, Some(now)));
                        seen.push(Seen::Bytes(g, b.to_vec()));
                    }
                }
                if end.saturating_sub(from) >= g_size {
                    let gap = &buf[(from - addr) as usize..];
                    seen.push(Seen::Bytes(from, gap.to_vec()));
                }
            }
        }
        seen
    });
    // The pre-copy's keys, the changed ones replaced; the gs the pieces did not hold (new
    // since, or not whole in a range) read after.
    let mut keys = std::mem::take(&mut spare.keys);
    keys.truncate(gs.len());
    let mut after: Vec<usize> = (keys.len()..gs.len())
        .chain(spare.unkeyed)
        .chain(plan.outside)
        .collect();
    keys.extend(gs[keys.len()..].iter().map(|&g| (g, None)));
    let mut look = Vec::new();
    let mut img = MemoryImage::new();
    for s in looked {
        match s {
            Seen::Look(i, k) => {
                match k {
                    Some(_) => look.push(i),
                    None => after.push(i),
                }
                keys[i].1 = k;
            }
            Seen::Bytes(a, b) => img.insert(a, b),
            Seen::Failed => return None,
        }
    }
    let not_kept = plan.bytes.saturating_sub(img.total_bytes());
    if !after.is_empty() {
        let reqs: Vec<(u64, u64)> = after.iter().map(|&i| (keys[i].0, g_size)).collect();
        let mut more = MemoryImage::new();
        copy.copy_into(&reqs, &mut more);
        for &i in &after {
            let g = keys[i].0;
            keys[i].1 = more.slice(g, g_size).map(|b| StackKey::of(rt, b));
        }
        img.overwrite(more);
        look.extend(after);
    }
    look.sort_unstable();
    Some(Recopied {
        img,
        keys,
        look,
        not_kept,
    })
}

/// Copies into `gimg` the Ms of the goroutines that are on a thread (by their keys), and
/// their g0 structs, but for the `settled` ones ([`PreCopy::settle`]).
fn copy_ms(
    rt: &Runtime,
    copy: &dyn CopyInto,
    gimg: &mut MemoryImage,
    ms: impl Iterator<Item = u64>,
    settled: Option<&HashSet<u64>>,
) {
    let l = &rt.layout;
    let ms: BTreeSet<u64> = ms
        .filter(|&m| m != 0 && !settled.is_some_and(|s| s.contains(&m)))
        .collect();
    let reqs: Vec<(u64, u64)> = ms.iter().map(|&m| (m, l.m_read_len())).collect();
    copy.copy_into(&reqs, gimg);
    let g0s: Vec<(u64, u64)> = ms
        .iter()
        .filter_map(|&m| gimg.read_u64(m.wrapping_add(l.off(F::MG0)?)).ok())
        .filter(|&g| g != 0)
        .map(|g| (g, l.g_size))
        .collect();
    copy.copy_into(&g0s, gimg);
}

/// Fewest reads (of up to [`RECOPY_PIECE`] bytes each) [`recopy_keyed`] gives a thread.
const RECOPY_READS_PER_THREAD: usize = 16;
/// Most ranges [`recopy_keyed`] reads in one system call.
const RECOPY_IOVS: usize = 64;

/// Goroutines whose keys one thread reads in [`keys_of`].
const KEYS_PER_THREAD: usize = 16 * 1024;

/// The key of every g in `gs`, read from `img`; on every CPU when there are many (inside
/// the frozen window, this walk over every copied g is most of the time after the copy).
fn keys_of(rt: &Runtime, img: &MemoryImage, gs: &[u64]) -> Vec<(u64, Option<StackKey>)> {
    let g_size = rt.layout.g_size;
    let one = |part: &[u64]| -> Vec<(u64, Option<StackKey>)> {
        part.iter()
            .map(|&g| (g, img.slice(g, g_size).map(|b| StackKey::of(rt, b))))
            .collect()
    };
    crate::parts::in_parts(gs, KEYS_PER_THREAD, |_, part| one(part))
}

/// [`Capture::in_transition`] for one goroutine and its m.
fn caught_between(raw: &RawG, m: &RawM, by_tid: &HashMap<u64, &ThreadState>) -> bool {
    if raw.status != status::RUNNING || m.curg != raw.addr {
        return false;
    }
    let Some(t) = by_tid.get(&m.procid) else {
        return false;
    };
    let sp = t.regs.sp;
    let on_own = (raw.stack.0..raw.stack.1).contains(&sp);
    let sched_ok = (raw.stack.0..raw.stack.1).contains(&raw.sched.1);
    let on_g0 = (m.g0_stack.0..m.g0_stack.1).contains(&sp);
    !(on_own || m.vdso.0 != 0 || (on_g0 && sched_ok))
}

/// Whether the thread of a running goroutine is in `gogo`, on its way into the goroutine's
/// saved context: its registers are the scheduler's until the jump, the goroutine's frames
/// are the saved ones. It lasts a few instructions: the freeze is taken again (the goroutine
/// is [`Capture::in_transition`]).
fn resuming(rt: &Runtime, raw: &RawG, m: &RawM, by_tid: &HashMap<u64, &ThreadState>) -> bool {
    if raw.status != status::RUNNING || m.curg != raw.addr {
        return false;
    }
    let Some(t) = by_tid.get(&m.procid) else {
        return false;
    };
    let tab = &rt.bin.pclntab;
    tab.func_for_pc(t.regs.pc)
        .is_some_and(|f| matches!(tab.name(f), "gogo" | "runtime.gogo"))
}

/// Addresses of every g in `allgs`, read from the image: the array in one read (a read of each
/// element, a lookup in an image of 100,000 stacks, took 9 ms at 100,000 goroutines), else
/// element by element, which says which one cannot be read.
pub(crate) fn all_g_addrs(rt: &Runtime, mem: &impl MemoryReader) -> Result<Vec<u64>, String> {
    let ptr = mem.read_u64(rt.allgs).map_err(|e| e.to_string())?;
    let len = mem.read_u64(rt.allgs + 8).map_err(|e| e.to_string())?;
    let cap = mem.read_u64(rt.allgs + 16).map_err(|e| e.to_string())?;
    if len > cap || len > MAX_GOROUTINES {
        return Err(format!(
            "runtime.allgs looks corrupt (len {len}, cap {cap})"
        ));
    }
    let mut out = Vec::with_capacity(len as usize);
    let mut whole = vec![0u8; len as usize * 8];
    if mem.read_at(ptr, &mut whole).is_ok() {
        out.extend(
            whole
                .chunks_exact(8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
                .filter(|&g| g != 0),
        );
        return Ok(out);
    }
    for i in 0..len {
        let g = mem
            .read_u64(ptr.wrapping_add(i * 8))
            .map_err(|e| e.to_string())?;
        if g != 0 {
            out.push(g);
        }
    }
    Ok(out)
}

/// Reads one g.
pub(crate) fn read_g(
    rt: &Runtime,
    mem: &impl MemoryReader,
    addr: u64,
) -> Result<RawG, crate::target::ReadError> {
    if let Some(b) = mem.slice(addr, rt.layout.g_size) {
        return Ok(decode_g(rt, addr, b));
    }
    let mut b = vec![0u8; rt.layout.g_size as usize];
    mem.read_at(addr, &mut b)?;
    Ok(decode_g(rt, addr, &b))
}

/// Decodes the bytes of one g (at least `g_size` of them).
pub(crate) fn decode_g(rt: &Runtime, addr: u64, b: &[u8]) -> RawG {
    let l = &rt.layout;
    let st = l.get(F::GAtomicStatus, b) as u32;
    RawG {
        addr,
        status: st & !status::SCAN,
        scan: st & status::SCAN != 0,
        goid: l.get(F::GGoid, b),
        stack: (l.get(F::GStackLo, b), l.get(F::GStackHi, b)),
        sched: (
            l.get(F::GSchedPc, b),
            l.get(F::GSchedSp, b),
            l.get(F::GSchedLr, b),
        ),
        syscall: (l.get(F::GSyscallPc, b), l.get(F::GSyscallSp, b)),
        stktopsp: l.get(F::GStktopSp, b),
        waitsince: l.get(F::GWaitSince, b) as i64,
        waitreason: l.get(F::GWaitReason, b) as u8,
        locked: l.get(F::GLockedM, b) != 0,
        parent_goid: l.get(F::GParentGoid, b),
        gopc: l.get(F::GGopc, b),
        startpc: l.get(F::GStartPc, b),
        m: l.get(F::GM, b),
        labels: l.get(F::GLabels, b),
        waiting: l.get(F::GWaiting, b),
    }
}

/// Reads one m (and its g0's stack bounds); `None` for a null or unreadable m.
pub(crate) fn read_m(rt: &Runtime, mem: &impl MemoryReader, addr: u64) -> Option<RawM> {
    if addr == 0 {
        return None;
    }
    let l = &rt.layout;
    let mut b = vec![0u8; l.m_read_len() as usize];
    mem.read_at(addr, &mut b).ok()?;
    let g0 = l.get(F::MG0, &b);
    let gsignal = l.get(F::MGsignal, &b);
    let stack_of = |g: u64| match (l.off(F::GStackLo), l.off(F::GStackHi)) {
        (Some(lo), Some(hi)) if g != 0 => (
            mem.read_u64(g.wrapping_add(lo)).unwrap_or(0),
            mem.read_u64(g.wrapping_add(hi)).unwrap_or(0),
        ),
        _ => (0, 0),
    };
    Some(RawM {
        addr,
        id: l.get(F::MId, &b) as i64,
        procid: l.get(F::MProcId, &b),
        g0,
        curg: l.get(F::MCurG, &b),
        vdso: (l.get(F::MVdsoSp, &b), l.get(F::MVdsoPc, &b)),
        g0_stack: stack_of(g0),
        gsignal,
        gsignal_stack: stack_of(gsignal),
        alllink: l.get(F::MAlllink, &b),
    })
}

#[cfg(test)]
mod tests {
    use super::StackKey;

    /// Keys that differ in any one word, by its lowest bit, by a high bit, or by a whole
    /// pointer, print differently; the same key prints the same.
    #[test]
    fn a_changed_word_changes_the_print() {
        let key = StackKey(std::array::from_fn(|i| 0xc000_1000_0000 + 0x1f8 * i as u64));
        assert_eq!(key.print(), StackKey(key.0).print());
        for i in 0..key.0.len() {
            for change in [1, 1 << 12, 1 << 40, 1 << 63, key.0[i]] {
                let mut other = key;
                other.0[i] ^= change;
                assert_ne!(key.print(), other.print(), "word {i} xor {change:#x}");
            }
        }
    }
}
