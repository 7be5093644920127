//! Every thread's own stack, unwound from its registers: which M each thread is (`m.procid`),
//! which of that M's stacks its stack pointer is on (its goroutine's, `g0`'s, `gsignal`'s),
//! and, in the frozen window, a bounded copy of the part of a system stack the unwind reads
//! (goroutine stacks are copied by the goroutine walk already).
//!
//! The Ms are found without walking anything unbounded: from `runtime.allm` when the symbol
//! table has it, from the g each thread's g register holds (r14 on amd64, x28 on arm64: in
//! Go code and in the runtime's assembly it is the g running on that thread, `g0` for an idle
//! M), from the goroutines' Ms, and from each M's `alllink` (the M created before it).

use super::Runtime;
use super::goroutines::{self, RawM};
use super::layout::F;
use crate::target::CopyInto;
use crate::target::image::MemoryImage;
use crate::target::{Layered, MemoryReader, ReadExt, ThreadState};
use std::collections::{BTreeSet, HashMap};

/// Most Ms read (Go's default thread limit, `debug.SetMaxThreads`, is 10,000): a corrupt
/// `alllink` chain must not make the walk unbounded.
pub(crate) const MAX_MS: usize = 10_000;

/// Most rounds of following `alllink` to Ms not found otherwise (each round is one copy
/// inside the frozen window): the threads' g registers and the goroutines find nearly every M
/// at once, and a chain longer than this is not followed further.
pub(crate) const MAX_M_ROUNDS: usize = 256;

/// Most bytes of one thread's system stack (`g0` or `gsignal`) copied, from its stack
/// pointer up: an idle M uses well under a KiB of its `g0` stack, a signal handler a few.
/// A deeper stack is unwound as far as this reaches, and the rest is said to be unread.
pub(crate) const MAX_THREAD_STACK_COPY: u64 = 64 << 10;

/// Which stack a thread's stack pointer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStack {
    /// The goroutine the M runs (`m.curg`).
    Goroutine,
    /// The M's scheduler stack.
    G0,
    /// The M's signal-handler stack.
    Gsignal,
}

impl OnStack {
    /// The name the snapshot records.
    pub fn name(self) -> &'static str {
        match self {
            OnStack::Goroutine => "goroutine",
            OnStack::G0 => "g0",
            OnStack::Gsignal => "gsignal",
        }
    }
}

/// Where one thread is, as far as the runtime's data says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadPlace {
    /// Its M.
    pub m: RawM,
    /// The stack its stack pointer is on, with the stack's (lo, hi); `None` when on none of
    /// the M's stacks (C code on a stack the runtime does not describe).
    pub on: Option<(OnStack, u64, u64)>,
}

/// Finds every M it can (see the module comment) and returns them by `m.procid`. `base` is
/// memory already copied (or a core, or a finished image); what is missing is copied into
/// `img` with `copy` (a no-op when `base` has everything), in a few batched rounds: the
/// threads' gs and `allm`, the Ms, each new M's `alllink` until none is new, then every M's
/// `g0` and `gsignal`.
pub(crate) fn find_ms(
    rt: &Runtime,
    threads: &[ThreadState],
    seeds: &[u64],
    base: &dyn MemoryReader,
    img: &mut MemoryImage,
    copy: &dyn CopyInto,
) -> HashMap<u64, RawM> {
    let l = &rt.layout;
    // Only what neither `base` nor `img` holds yet is copied.
    let missing = |img: &MemoryImage, reqs: &mut Vec<(u64, u64)>| {
        let mut b = Vec::new();
        reqs.retain(|&(a, n)| {
            b.resize(n as usize, 0);
            Layered(img, base).read_at(a, &mut b).is_err()
        });
    };
    let mut reqs: Vec<(u64, u64)> = threads
        .iter()
        .map(|t| t.regs.g)
        .filter(|&g| g != 0)
        .map(|g| (g, l.g_size))
        .chain(rt.allm.map(|a| (a, 8)))
        .collect();
    missing(img, &mut reqs);
    copy.copy_into(&reqs, img);
    let mut next: BTreeSet<u64> = {
        let mem = Layered(&*img, base);
        threads
            .iter()
            .filter(|t| t.regs.g != 0)
            .filter_map(|t| l.read(F::GM, &mem, t.regs.g))
            .chain(rt.allm.and_then(|a| mem.read_u64(a).ok()))
            .chain(seeds.iter().copied())
            .filter(|&m| m != 0)
            .collect()
    };
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut rounds = 0;
    while !next.is_empty() && seen.len() < MAX_MS && rounds < MAX_M_ROUNDS {
        rounds += 1;
        let room = MAX_MS - seen.len();
        let round: Vec<u64> = next.into_iter().take(room).collect();
        let mut reqs: Vec<(u64, u64)> = round.iter().map(|&m| (m, l.m_size)).collect();
        missing(img, &mut reqs);
        copy.copy_into(&reqs, img);
        seen.extend(&round);
        let mem = Layered(&*img, base);
        next = round
            .iter()
            .filter_map(|&m| l.read(F::MAlllink, &mem, m))
            .filter(|m| *m != 0 && !seen.contains(m))
            .collect();
    }
    // Every M's g0 and gsignal, for their stack bounds.
    let mut reqs: Vec<(u64, u64)> = {
        let mem = Layered(&*img, base);
        seen.iter()
            .flat_map(|&m| [l.read(F::MG0, &mem, m), l.read(F::MGsignal, &mem, m)])
            .flatten()
            .filter(|&g| g != 0)
            .map(|g| (g, l.g_size))
            .collect()
    };
    missing(img, &mut reqs);
    copy.copy_into(&reqs, img);
    let mem = Layered(&*img, base);
    seen.iter()
        .filter_map(|&m| goroutines::read_m(rt, &mem, m))
        .filter(|m| m.procid != 0)
        .map(|m| (m.procid, m))
        .collect()
}

/// Where `t` is: its M (by `m.procid`) and the stack its stack pointer is on. `None` when no M
/// found has its id (a thread the runtime did not start, or whose M was not found).
pub fn place(
    rt: &Runtime,
    mem: &impl MemoryReader,
    ms: &HashMap<u64, RawM>,
    t: &ThreadState,
) -> Option<ThreadPlace> {
    let m = *ms.get(&(t.tid as u64))?;
    let sp = t.regs.sp;
    let curg = match m.curg {
        0 => None,
        g => goroutines::read_g(rt, mem, g).ok().map(|g| g.stack),
    };
    let on = [
        (OnStack::Goroutine, curg.unwrap_or((0, 0))),
        (OnStack::G0, m.g0_stack),
        (OnStack::Gsignal, m.gsignal_stack),
    ]
    .into_iter()
    .find(|(_, (lo, hi))| lo < hi && (*lo..*hi).contains(&sp))
    .map(|(k, (lo, hi))| (k, lo, hi));
    Some(ThreadPlace { m, on })
}

/// Copies, inside the frozen window, what the thread stacks need beyond what the goroutine
/// walk copied (`base`): the Ms and their g0 and gsignal structs, and of every thread on a
/// system stack that stack from its stack pointer up, at most [`MAX_THREAD_STACK_COPY`]
/// bytes. `seeds` are Ms already known (those of the goroutines on threads).
pub fn capture(
    rt: &Runtime,
    threads: &[ThreadState],
    seeds: &[u64],
    base: &dyn MemoryReader,
    copy: &dyn CopyInto,
) -> MemoryImage {
    let mut img = MemoryImage::new();
    let ms = find_ms(rt, threads, seeds, base, &mut img, copy);
    let reqs: Vec<(u64, u64)> = {
        let mem = Layered(&img, base);
        threads
            .iter()
            .filter_map(|t| Some((t, place(rt, &mem, &ms, t)?)))
            .filter_map(|(t, p)| match p.on {
                Some((OnStack::G0 | OnStack::Gsignal, _, hi)) => {
                    let sp = t.regs.sp;
                    Some((sp, (hi - sp).min(MAX_THREAD_STACK_COPY)))
                }
                _ => None,
            })
            .collect()
    };
    copy.copy_into(&reqs, &mut img);
    img
}
