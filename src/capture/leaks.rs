//! `goroscope leaks`: a snapshot and the heap of the same instant, live (copied in the frozen
//! window, or twice without stopping) or from a core, marked after the thaw.

use super::{CoreTarget, Kept, LiveTarget, Progress};
use crate::runtime::Runtime;
use crate::runtime::blocked;
use crate::runtime::goroutines;
use crate::runtime::leaks;
use crate::snapshot::KeepAll;
use crate::snapshot::{Goroutine, Snapshot};
use crate::target::image::MemoryImage;
use crate::target::{CopyInto, Layered};
use std::collections::HashSet;
use std::time::Duration;

/// A snapshot with the leak analysis of the same instant (`goroscope leaks`).
#[derive(Debug)]
pub struct LeakAnalysis {
    /// The snapshot; leaked goroutines have the status `_Gleaked` and no wait minutes.
    pub snap: Snapshot,
    /// The analysis.
    pub report: leaks::Report,
    /// Time spent copying the heap and globals (inside the frozen window for a live target).
    pub heap_copy: Duration,
    /// Time spent marking, after the thaw.
    pub analysis: Duration,
    /// `--nonblocking`: how many goroutines the first of its two passes found leaked (the
    /// report keeps those the second found leaked too, blocked the same way).
    pub first_pass: Option<usize>,
}

impl LeakAnalysis {
    fn new(
        rt: &Runtime,
        snap: Snapshot,
        heap: &leaks::Heap,
        stacks: &MemoryImage,
        heap_copy: Duration,
    ) -> Result<LeakAnalysis, String> {
        Ok(LeakAnalysis::unmarked(rt, snap, heap, stacks, heap_copy)?.mark_leaked())
    }

    /// The analysis, the leaked goroutines' status left as read.
    fn unmarked(
        rt: &Runtime,
        snap: Snapshot,
        heap: &leaks::Heap,
        stacks: &MemoryImage,
        heap_copy: Duration,
    ) -> Result<LeakAnalysis, String> {
        let start = std::time::Instant::now();
        let report = leaks::find(rt, heap, stacks, &snap.goroutines)?;
        Ok(LeakAnalysis {
            snap,
            report,
            heap_copy,
            analysis: start.elapsed(),
            first_pass: None,
        })
    }

    /// Gives the leaked goroutines the status `_Gleaked`, as the runtime's own leak GC does.
    fn mark_leaked(mut self) -> LeakAnalysis {
        for &i in &self.report.leaked {
            let g = &mut self.snap.goroutines[i];
            g.status = crate::snapshot::Status::LEAKED;
            g.wait_minutes = 0;
        }
        self
    }

    /// What must be the same in both passes of `--nonblocking` for a leak to be reported:
    /// the goroutine (g and id), its wait, what it waits on and where (its frames' pcs).
    fn leak_key(g: &Goroutine) -> (u64, u64, String, Vec<u64>, Vec<u64>) {
        (
            g.addr,
            g.id,
            g.state.to_string(),
            g.blocked_on.iter().map(|b| b.addr).collect(),
            g.frames.iter().map(|f| f.pc).collect(),
        )
    }
}

impl LiveTarget {
    /// A snapshot and the leaked goroutines of the same instant: the globals, the heap's span
    /// metadata and its scan spans are copied inside the frozen window with the goroutines
    /// (the pause grows with the heap), then marked after the thaw.
    pub fn leaks(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        if self.nonblocking {
            return self.leaks_nonblocking(progress);
        }
        let (freeze, copy) = self
            .frozen_copy(progress, super::live::Stop::All)
            .map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        let mut heap = leaks::copy_heap(&self.rt, &self.proc);
        if let Ok(h) = &mut heap {
            // Every register of every thread, as the freeze read them: a running goroutine's
            // only pointer to an object may be in one.
            h.registers = freeze
                .threads()
                .iter()
                .map(|t| (t.tid, t.words.clone()))
                .collect();
        }
        let heap_copy = start.elapsed();
        let pause = freeze.thaw();
        let heap = heap?;
        let mut all = KeepAll::default();
        let (mut snap, _, Kept { image, threads, .. }, _) = self
            .build_with(copy, pause, progress, None, &KeepAll::fold, &mut |v| {
                all.sink(v)
            })
            .map_err(|e| e.to_string())?;
        snap.goroutines = all.into_vec();
        progress.stage("marking the heap", 0, 0);
        // Sudogs and the semaphore table come from the frozen copy; only what it lacks (the
        // counts of a channel of pointer-free elements, in a noscan span) is read now.
        let frozen = Layered(&image, &heap.image);
        snap.objects = blocked::analyze(
            &self.rt,
            &frozen,
            &mut snap.goroutines,
            &threads,
            &|reqs: &[(u64, u64)], img: &mut MemoryImage| {
                let missing: Vec<(u64, u64)> = reqs
                    .iter()
                    .copied()
                    .filter(|&(a, l)| !image.contains(a, l) && !heap.image.contains(a, l))
                    .collect();
                self.proc.copy_into(&missing, img);
            },
        );
        LeakAnalysis::new(&self.rt, snap, &heap, &image, heap_copy)
    }

    /// `leaks --nonblocking`: two analyses of copies read while the target runs (each can be
    /// torn: a pointer moved during the copy can be missed), and only the goroutines both
    /// find leaked, blocked the same way on the same objects at the same pcs, are reported.
    fn leaks_nonblocking(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        let first = self.leaks_unstopped(progress)?;
        let confirmed: HashSet<_> = first
            .report
            .leaked
            .iter()
            .map(|&i| LeakAnalysis::leak_key(&first.snap.goroutines[i]))
            .collect();
        let mut second = self.leaks_unstopped(progress)?;
        let gs = &second.snap.goroutines;
        second
            .report
            .leaked
            .retain(|&i| confirmed.contains(&LeakAnalysis::leak_key(&gs[i])));
        second.first_pass = Some(first.report.leaked.len());
        second.heap_copy += first.heap_copy;
        second.analysis += first.analysis;
        Ok(second.mark_leaked())
    }

    /// One pass of `leaks --nonblocking`: the goroutines, then the heap, copied while the
    /// target runs, and marked. A goroutine whose stack kept changing is a root.
    fn leaks_unstopped(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        progress.stage("copying while the target runs", 0, 0);
        let start = std::time::Instant::now();
        let (snap, image) = self.nonblocking_copy().map_err(|e| e.to_string())?;
        let heap = leaks::copy_heap(&self.rt, &self.proc)?;
        let heap_copy = start.elapsed();
        progress.stage("marking the heap", 0, 0);
        LeakAnalysis::unmarked(&self.rt, snap, &heap, &image, heap_copy)
    }
}

impl CoreTarget {
    /// [`LiveTarget::leaks`] for a core: everything is read from the core.
    pub fn leaks(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        let snap = self
            .snapshot_progress(progress)
            .map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        let heap = leaks::copy_heap(&self.rt, &self.mem)?;
        // The g structs and whole stacks of the goroutines.
        let mut reqs = Vec::new();
        for g in &snap.goroutines {
            reqs.push((g.addr, self.rt.layout.g_size));
            if let Ok(raw) = goroutines::read_g(&self.rt, &self.mem, g.addr)
                && raw.stack.1 > raw.stack.0
                && raw.stack.1 - raw.stack.0 <= goroutines::MAX_STACK_COPY
            {
                reqs.push((raw.stack.0, raw.stack.1 - raw.stack.0));
            }
        }
        let mut stacks = MemoryImage::new();
        self.mem.copy_into(&reqs, &mut stacks);
        LeakAnalysis::new(&self.rt, snap, &heap, &stacks, start.elapsed())
    }
}
