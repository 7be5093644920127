//! Building the model from copied (or core) memory: the goroutine walk in chunks on every
//! CPU, thread stacks, start locations and wait minutes.

use super::Progress;
use crate::runtime::goroutines::{self, RawG, RawM};
use crate::runtime::{Runtime, RuntimeError, status};
use crate::snapshot::{Goroutine, KeepAll, Meta, Name, Snapshot, Thread};
use crate::target::image::MemoryImage;
use crate::target::{Layered, MemoryReader, ThreadState, Windowed};
use crate::unwind::symbolize::Symbolizer;
use crate::unwind::{self, JumpTo, Limits, StackEnd, Start};
use std::collections::HashMap;
use std::sync::Mutex;

/// Builds the snapshot from a copied (or core) memory image.
pub fn build_snapshot(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    threads: &[ThreadState],
    nanotime: i64,
    meta: Meta,
    progress: &mut dyn Progress,
) -> Result<Snapshot, RuntimeError> {
    let mut all = KeepAll::default();
    let (mut snap, _) = build_streamed(
        rt,
        mem,
        None,
        threads,
        nanotime,
        meta,
        progress,
        &KeepAll::fold,
        &mut |v| all.sink(v),
    )?;
    snap.goroutines = all.into_vec();
    Ok(snap)
}

/// [`build_snapshot`] with the goroutines going to `fold` and `sink` as [`walk`] builds them,
/// not kept: the snapshot returned has none; the count is how many there were.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_streamed<M: MemoryReader + Sync, C: Default + Send>(
    rt: &Runtime,
    mem: &M,
    each: Option<&Each<'_>>,
    threads: &[ThreadState],
    nanotime: i64,
    meta: Meta,
    progress: &mut dyn Progress,
    fold: &(dyn Fn(&mut C, Goroutine) + Sync),
    sink: &mut dyn FnMut(C),
) -> Result<(Snapshot, usize), RuntimeError> {
    let walked = walk(rt, mem, each, threads, nanotime, progress, fold, sink)?;
    let tid_goid: HashMap<i32, u64> = walked.on_threads.into_iter().collect();
    let code = rt.code();
    let threads = threads
        .iter()
        .map(|t| {
            let func = code.tab.func_for_pc(t.regs.pc);
            let at = func.and_then(|f| {
                code.tab
                    .frames_at(f, t.regs.pc)
                    .first()
                    .map(|s| (s.file.to_string(), s.line))
            });
            let (file, line) = at.unwrap_or_default();
            Thread {
                tid: t.tid,
                pc: t.regs.pc,
                sp: t.regs.sp,
                function: func.map(|f| code.tab.name(f).to_string()),
                file,
                line,
                goid: tid_goid.get(&t.tid).copied(),
                ..Thread::default()
            }
        })
        .collect();
    Ok((
        Snapshot {
            meta,
            goroutines: Vec::new(),
            threads,
            objects: Vec::new(),
            file_locks: None,
        },
        walked.count,
    ))
}

/// Adds to `snap.threads` (built from `threads`, in the same order) every thread's own stack:
/// its M, the stack it is on, and its frames unwound from its registers over `mem`, which
/// holds what [`crate::runtime::threads::capture`] copied with the same `seeds` (or is a
/// core). The unwind follows the runtime's crash traceback of that thread (`tracebacktrap`):
/// from the interrupted instruction, staying on the stack it starts on (a system stack ends at
/// `systemstack`, `mcall` or `mstart`, not continued on the goroutine's stack, which its own
/// frames show).
pub(crate) fn thread_stacks(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    threads: &[ThreadState],
    seeds: &[u64],
    snap: &mut Snapshot,
) {
    use crate::runtime::threads::{self, MAX_THREAD_STACK_COPY, OnStack};
    let mut none = crate::target::image::MemoryImage::new();
    let ms = threads::find_ms(rt, threads, seeds, mem, &mut none, &());
    let code = rt.code();
    let mut sym = Symbolizer::new(code);
    let mut cache = unwind::UnwindCache::default();
    for (t, out) in threads.iter().zip(snap.threads.iter_mut()) {
        let Some(place) = threads::place(rt, mem, &ms, t) else {
            out.stack_error = Some(
                "no M of the runtime has this thread id (a thread the Go runtime did not start, or whose M was not found)".into(),
            );
            continue;
        };
        out.m_id = Some(place.m.id);
        let Some((on, _, hi)) = place.on else {
            out.stack_error = Some(format!(
                "its stack pointer {:#x} is on none of its M's stacks (g0, gsignal, its goroutine's): not Go code's stack",
                t.regs.sp
            ));
            continue;
        };
        out.stack = on.name().into();
        if code.tab.func_for_pc(t.regs.pc).is_none() {
            out.stack_error = Some(format!(
                "pc {:#x} is not in Go code (C or the kernel's code: goroscope unwinds Go frames only)",
                t.regs.pc
            ));
            continue;
        }
        let start = Start {
            pc: t.regs.pc,
            sp: t.regs.sp,
            lr: t.regs.lr,
            syscall: false,
            trap: true,
        };
        // Read first through a slice of what was copied of the stack (of a system stack, at
        // most MAX_THREAD_STACK_COPY bytes from sp); beyond it reads fall to `mem`, where a live
        // copy has nothing more, so a deeper unwind ends saying the stack is unreadable.
        let copied = if on == OnStack::Goroutine {
            hi
        } else {
            hi.min(t.regs.sp.saturating_add(MAX_THREAD_STACK_COPY))
        };
        let window = mem.slice(t.regs.sp, copied - t.regs.sp);
        let stack = Windowed {
            lo: t.regs.sp,
            bytes: window.unwrap_or(&[]),
            rest: mem,
        };
        let unwound = unwind::unwind(code, &stack, start, None, Limits::default(), &mut cache);
        if let StackEnd::Truncated(e) = unwound.end {
            out.stack_error = Some(e.to_string());
        }
        out.frames = sym.logical_frames(&stack, &unwound);
    }
}

/// See [`Each::step`].
pub(crate) type ChunkStep<'a> =
    dyn Fn(usize, &(dyn MemoryReader + Sync), &mut [Goroutine]) -> Vec<u64> + Sync + 'a;

/// What a model's [`walk`] does with each chunk of goroutines as it is built, while the
/// chunk's stacks are still at hand.
pub(crate) struct Each<'a> {
    /// Each chunk's stacks (by chunk index), taken out of the copy the walk reads: a chunk's
    /// are let go once it is built, but for those of the goroutines `step` names. Empty: the
    /// copy holds every stack.
    pub stacks: Vec<Mutex<MemoryImage>>,
    /// Runs on a chunk's goroutines (its index, its memory, its goroutines) before they go to
    /// `fold`: reads what needs their stacks; returns the g addresses whose stacks must stay.
    pub step: &'a ChunkStep<'a>,
    /// The stacks that stayed.
    pub kept: Mutex<MemoryImage>,
    /// Bytes of stacks let go since the allocator last gave memory back.
    pub freed: std::sync::atomic::AtomicU64,
}

/// Bytes of stacks a [`walk`] lets go between two times the allocator gives freed memory
/// back ([`crate::startup::release_freed`]): the threads that build the goroutines allocate
/// from their own arenas, not from those the copy's threads freed into.
const RELEASE_EVERY: u64 = 64 << 20;

impl Each<'_> {
    /// Chunk `i`'s stacks, taken (empty when there are none apart).
    fn take(&self, i: usize) -> MemoryImage {
        self.stacks
            .get(i)
            .map(|m| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }

    /// Moves the stacks of `keep` (g addresses, read through `mem`) out of `part` into
    /// `kept`; the rest of `part` is let go (and, every [`RELEASE_EVERY`] bytes, given back).
    fn keep(&self, rt: &Runtime, mem: &impl MemoryReader, mut part: MemoryImage, keep: &[u64]) {
        use std::sync::atomic::Ordering;
        if !keep.is_empty() && part.total_bytes() > 0 {
            self.keep_only(rt, mem, &mut part, keep);
        }
        let n = part.total_bytes();
        drop(part);
        if self.freed.fetch_add(n, Ordering::Relaxed) + n >= RELEASE_EVERY {
            self.freed.store(0, Ordering::Relaxed);
            crate::startup::release_freed();
        }
    }

    /// [`Each::keep`]: the stacks of `keep` moved from `part` to `kept`.
    fn keep_only(
        &self,
        rt: &Runtime,
        mem: &impl MemoryReader,
        part: &mut MemoryImage,
        keep: &[u64],
    ) {
        let mut bounds: Vec<(u64, u64)> = keep
            .iter()
            .filter_map(|&g| goroutines::read_g(rt, mem, g).ok())
            .map(|raw| raw.stack)
            .filter(|&(lo, hi)| lo < hi)
            .collect();
        bounds.sort_unstable();
        let stay = part.take_where(|a, bytes| inside(&bounds, a, bytes.len() as u64));
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .absorb(stay);
    }
}

/// Whether `[a, a+len)` lies inside one of `bounds` (sorted `[lo, hi)` ranges that do not
/// overlap): the index of that one.
pub(crate) fn inside_which(bounds: &[(u64, u64)], a: u64, len: u64) -> Option<usize> {
    let i = bounds.partition_point(|&(lo, _)| lo <= a);
    (i > 0 && a.saturating_add(len) <= bounds[i - 1].1).then(|| i - 1)
}

fn inside(bounds: &[(u64, u64)], a: u64, len: u64) -> bool {
    inside_which(bounds, a, len).is_some()
}

/// What a [`walk`] tells besides the goroutines themselves.
pub struct Walked {
    /// Goroutines built.
    pub count: usize,
    /// (thread id, goroutine id) of every goroutine running on a thread.
    pub on_threads: Vec<(i32, u64)>,
}

/// Goroutines built at a time by one thread of a [`walk`].
pub(super) use crate::snapshot::CHUNK;
/// Chunks a [`walk`] builds ahead of the one its sink waits for: the memory a streamed dump
/// holds besides the copy.
const AHEAD: usize = 16;
/// Most threads a [`walk`] uses.
const MAX_WALKERS: usize = 8;

/// Builds every goroutine of `allgs` (dead ones left out) from copied memory, on as many
/// threads as there are CPUs, in chunks: `fold` adds each goroutine to its chunk's value (it
/// may keep it, or render it and let it go), and `sink` gets the chunks in `allgs` order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk<M, C>(
    rt: &Runtime,
    mem: &M,
    each: Option<&Each<'_>>,
    threads: &[ThreadState],
    nanotime: i64,
    progress: &mut dyn Progress,
    fold: &(dyn Fn(&mut C, Goroutine) + Sync),
    sink: &mut dyn FnMut(C),
) -> Result<Walked, RuntimeError>
where
    M: MemoryReader + Sync,
    C: Default + Send,
{
    let gs = goroutines::all_g_addrs(rt, mem).map_err(RuntimeError::Read)?;
    let total = gs.len();
    let by_tid: HashMap<u64, &ThreadState> = threads.iter().map(|t| (t.tid as u64, t)).collect();
    let chunks: Vec<&[u64]> = gs.chunks(CHUNK).collect();
    // A chunk's goroutines, each counted and added to the chunk's value.
    let fold_all = |acc: &mut C, n: &mut Walked, gs: &mut dyn Iterator<Item = Goroutine>| {
        for gr in gs {
            n.count += 1;
            if let Some(t) = gr.thread {
                n.on_threads.push((t, gr.id));
            }
            fold(acc, gr);
        }
    };
    let build = |w: &mut Walker<'_>, i: usize, chunk: &[u64]| {
        let mut acc = C::default();
        let mut n = Walked {
            count: 0,
            on_threads: Vec::new(),
        };
        match each {
            None => fold_all(
                &mut acc,
                &mut n,
                &mut chunk.iter().filter_map(|&g| w.goroutine(mem, g)),
            ),
            Some(each) => {
                let part = each.take(i);
                let rd = Layered(&part, mem);
                let mut gs: Vec<Goroutine> =
                    chunk.iter().filter_map(|&g| w.goroutine(&rd, g)).collect();
                let keep = (each.step)(i, &rd, &mut gs);
                each.keep(rt, mem, part, &keep);
                fold_all(&mut acc, &mut n, &mut gs.into_iter());
            }
        }
        (acc, n)
    };
    let mut walked = Walked {
        count: 0,
        on_threads: Vec::new(),
    };
    let mut add = |n: Walked| {
        walked.count += n.count;
        walked.on_threads.extend(n.on_threads);
    };
    let _ = crate::parts::in_order(
        &chunks,
        MAX_WALKERS,
        AHEAD,
        || Walker::new(rt, &by_tid, nanotime),
        |w, i, chunk| build(w, i, chunk),
        |i, (acc, n)| {
            add(n);
            sink(acc);
            progress.stage("unwinding goroutines", (i + 1) * CHUNK, total);
            Ok::<_, std::convert::Infallible>(true)
        },
    );
    Ok(walked)
}

/// The goroutines whose g structs are at `gs` (dead ones left out), built from copied memory
/// on one thread: for a few, where [`walk`] builds them all.
pub(crate) fn goroutines_at<M: MemoryReader>(
    rt: &Runtime,
    mem: &M,
    threads: &[ThreadState],
    nanotime: i64,
    gs: &[u64],
) -> Vec<Goroutine> {
    let by_tid: HashMap<u64, &ThreadState> = threads.iter().map(|t| (t.tid as u64, t)).collect();
    let mut w = Walker::new(rt, &by_tid, nanotime);
    gs.iter().filter_map(|&g| w.goroutine(mem, g)).collect()
}

/// Builds goroutines from copied memory: reads each g, unwinds and symbolizes its stack.
/// Each thread of a [`walk`] has its own (its caches are not shared).
struct Walker<'a> {
    rt: &'a Runtime,
    by_tid: &'a HashMap<u64, &'a ThreadState>,
    nanotime: i64,
    sym: Symbolizer<'a>,
    unwinds: unwind::UnwindCache,
    /// Header states by (status, wait reason).
    states: HashMap<(u32, u8), Name>,
}

impl<'a> Walker<'a> {
    fn new(rt: &'a Runtime, by_tid: &'a HashMap<u64, &'a ThreadState>, nanotime: i64) -> Self {
        Walker {
            rt,
            by_tid,
            nanotime,
            sym: Symbolizer::new(rt.code()),
            unwinds: Default::default(),
            states: HashMap::new(),
        }
    }

    /// The goroutine whose g is at `g`, read from `mem`; `None` for a dead one.
    fn goroutine<M: MemoryReader>(&mut self, mem: &M, g: u64) -> Option<Goroutine> {
        let rt = self.rt;
        let raw = match goroutines::read_g(rt, mem, g) {
            Ok(r) => r,
            Err(e) => {
                return Some(Goroutine {
                    addr: g,
                    state: "unreadable".into(),
                    stack_error: Some(e.to_string()),
                    ..Default::default()
                });
            }
        };
        if status::is_dead(raw.status, rt.version()) {
            return None;
        }
        let m = goroutines::read_m(rt, mem, raw.m);
        Some(self.build(mem, &raw, m.as_ref()))
    }

    fn build<M: MemoryReader>(&mut self, mem: &M, raw: &RawG, m: Option<&RawM>) -> Goroutine {
        let rt = self.rt;
        let code = rt.code();
        let v = rt.version();
        let (start, jump) = start_of(rt, mem, raw, m, self.by_tid, &mut self.unwinds);
        // The goroutine's own stack from where the unwind starts, read without a lookup in
        // the whole image for every word.
        let window = if (raw.stack.0..raw.stack.1).contains(&start.sp) {
            mem.slice(start.sp, raw.stack.1 - start.sp)
        } else {
            None
        };
        let stack = Windowed {
            lo: start.sp,
            bytes: window.unwrap_or(&[]),
            rest: mem,
        };
        // A running goroutine whose saved registers are cleared and whose thread could not be
        // used has no stack to show: printed as the runtime does ("stack unavailable").
        let unwound = if raw.status == status::RUNNING && start.sp == 0 {
            unwind::Unwound {
                frames: &[],
                end: StackEnd::Complete { sp: 0 },
            }
        } else {
            unwind::unwind(
                code,
                &stack,
                start,
                jump,
                Limits::default(),
                &mut self.unwinds,
            )
        };
        let stack_error = match unwound.end {
            StackEnd::Truncated(e) => Some(e.to_string()),
            _ => None,
        };
        let frames = self.sym.logical_frames(&stack, &unwound);
        let waiting =
            raw.status == status::WAITING || (raw.status == status::LEAKED && v.at_least(26));
        let reason = if waiting { raw.waitreason } else { 0 };
        let state = self
            .states
            .entry((raw.status, reason))
            .or_insert_with(|| match reason {
                0 => status::status_name(raw.status, v).into(),
                r => rt
                    .wait_reasons
                    .get(r as usize)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown wait reason")
                    .into(),
            })
            .clone();
        let wait_minutes = wait_minutes(raw.status, raw.waitsince, self.nanotime);
        let (start, system) = self.sym.start(raw.startpc);
        Goroutine {
            id: raw.goid,
            addr: raw.addr,
            status: crate::snapshot::Status(raw.status),
            scan: raw.scan,
            state,
            wait_minutes,
            locked_to_thread: raw.locked,
            system,
            m_id: m.map(|m| m.id),
            m_addr: raw.m,
            thread: m
                .filter(|m| m.curg == raw.addr)
                .and_then(|m| i32::try_from(m.procid).ok())
                .filter(|&t| t != 0),
            frames,
            stack_error,
            created_by: self.sym.created_by(raw.goid, raw.gopc),
            parent_id: raw.parent_goid,
            start_func: start.function,
            start_file: start.file,
            start_line: start.line,
            start_pc: start.entry,
            labels: crate::runtime::labels::read(rt, mem, raw.labels),
            blocked_on: Vec::new(),
        }
    }
}

/// Minutes a waiting (or in-syscall) goroutine has waited at `nanotime`; 0 when the runtime
/// has not recorded since when.
fn wait_minutes(st: u32, waitsince: i64, nanotime: i64) -> i64 {
    if (st == status::WAITING || st == status::SYSCALL) && waitsince != 0 {
        // int64 arithmetic as the runtime does it (a torn or hostile waitsince wraps).
        nanotime.wrapping_sub(waitsince) / 60_000_000_000
    } else {
        0
    }
}

/// Where the runtime's traceback would start for this goroutine (`traceback1`, `initAt`),
/// improved for goroutines running on a thread: their thread's registers, or, when the thread
/// is in the signal handler, the registers the signal interrupted.
fn start_of(
    rt: &Runtime,
    mem: &impl MemoryReader,
    raw: &RawG,
    m: Option<&RawM>,
    by_tid: &HashMap<u64, &ThreadState>,
    unwinds: &mut unwind::UnwindCache,
) -> (Start, Option<JumpTo>) {
    let sched = Start {
        pc: raw.sched.0,
        sp: raw.sched.1,
        lr: raw.sched.2,
        syscall: false,
        trap: false,
    };
    if raw.status == status::SYSCALL {
        return (
            Start {
                pc: raw.syscall.0,
                sp: raw.syscall.1,
                lr: 0,
                syscall: true,
                trap: false,
            },
            None,
        );
    }
    if let Some(m) = m {
        if m.vdso.0 != 0 {
            return (
                Start {
                    pc: m.vdso.1,
                    sp: m.vdso.0,
                    lr: 0,
                    syscall: false,
                    trap: false,
                },
                None,
            );
        }
        if raw.status == status::RUNNING
            && m.curg == raw.addr
            && let Some(t) = by_tid.get(&m.procid)
        {
            let r = t.regs;
            let mut start = Start {
                pc: r.pc,
                sp: r.sp,
                lr: r.lr,
                syscall: false,
                trap: true,
            };
            if (m.gsignal_stack.0..m.gsignal_stack.1).contains(&start.sp)
                && let Some(s) = unwind::interrupted(rt.code(), mem, start, unwinds)
            {
                start = s;
            }
            if (raw.stack.0..raw.stack.1).contains(&start.sp) {
                return (start, None);
            }
            if (m.g0_stack.0..m.g0_stack.1).contains(&start.sp)
                && rt.code().tab.func_for_pc(start.pc).is_some()
            {
                let jump = JumpTo {
                    pc: raw.sched.0,
                    sp: raw.sched.1,
                    lr: raw.sched.2,
                };
                return (start, Some(jump));
            }
        }
    }
    if raw.syscall.1 != 0 {
        return (
            Start {
                pc: raw.syscall.0,
                sp: raw.syscall.1,
                lr: 0,
                syscall: true,
                trap: false,
            },
            None,
        );
    }
    (sched, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: a `waitsince` far from the clock overflowed `nanotime - waitsince`.
    #[test]
    fn wait_minutes_wrap_on_a_hostile_waitsince() {
        assert_eq!(
            wait_minutes(status::WAITING, 60_000_000_000, 3 * 60_000_000_000),
            2
        );
        assert_eq!(
            wait_minutes(status::WAITING, i64::MIN, 0),
            i64::MIN / 60_000_000_000
        );
        assert_eq!(
            wait_minutes(status::SYSCALL, -1, i64::MAX),
            i64::MIN / 60_000_000_000
        );
        assert_eq!(wait_minutes(status::RUNNING, i64::MIN, 0), 0);
    }
}
