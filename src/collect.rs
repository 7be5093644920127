//! Taking a snapshot: discovery before the stop, the frozen window (freeze, copy, thaw), and
//! building the model from the copy after the target runs again.

use crate::arch::Arch;
use crate::binary::{BinaryError, GoBinary};
use crate::runtime::Discovery;
use crate::runtime::blocked;
use crate::runtime::goroutines::{self, RawG, RawM};
use crate::runtime::leaks;
use crate::runtime::{OpenOptions, Runtime, RuntimeError, status};
use crate::snapshot::{Goroutine, Meta, Name, Snapshot, TextMapping, Thread};
use crate::target::core::{self as corefile, CoreError, CoreFile, SplicedMemory};
use crate::target::image::MemoryImage;
use crate::target::live::{self, Freeze, LiveError, LiveProcess};
use crate::target::ns;
use crate::target::proc;
use crate::target::{Layered, MemoryReader, ThreadState, Windowed};
use crate::unwind::symbolize::Symbolizer;
use crate::unwind::{self, JumpTo, Limits, StackEnd, Start};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

/// Why a dump failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum DumpError {
    /// Attaching to or reading the process failed.
    Live(LiveError),
    /// The executable could not be read.
    Binary(BinaryError),
    /// The runtime's data could not be found.
    Runtime(RuntimeError),
    /// The core file could not be read, or its executable not found.
    Core(CoreError),
    /// The target's architecture is not the one goroscope runs on.
    ArchMismatch {
        /// The target's.
        target: Arch,
    },
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Live(e) => e.fmt(f),
            DumpError::Binary(BinaryError::NotGo) => {
                write!(
                    f,
                    "not a Go program (its executable has no .go.buildinfo section)"
                )
            }
            DumpError::Binary(e) => e.fmt(f),
            DumpError::Runtime(e) => e.fmt(f),
            DumpError::Core(e) => e.fmt(f),
            DumpError::ArchMismatch { target } => write!(
                f,
                "the target is a linux/{target} program; a live dump needs goroscope built for the same architecture (cores of other architectures can be read with --core)"
            ),
        }
    }
}

impl std::error::Error for DumpError {}

impl From<LiveError> for DumpError {
    fn from(e: LiveError) -> Self {
        DumpError::Live(e)
    }
}

/// Where a long dump is, for a progress bar. Called on goroscope's thread between steps,
/// never inside the frozen window.
pub trait Progress {
    /// Working on `what`; `done` of `total` items (`total` 0: no count).
    fn stage(&mut self, what: &str, done: usize, total: usize);
}

impl Progress for () {
    fn stage(&mut self, _: &str, _: usize, _: usize) {}
}

/// A live target, discovered and ready to be frozen.
pub struct LiveSession {
    /// The process.
    pub proc: LiveProcess,
    /// Its runtime.
    pub rt: Runtime,
    /// Never stop the target ([`LiveSession::snapshot_nonblocking`]).
    pub nonblocking: bool,
    /// Its time namespace's `CLOCK_MONOTONIC` minus goroscope's, in nanoseconds.
    pub clock_offset: i64,
    /// Unwind every thread's own stack too ([`OpenOptions::thread_stacks`]).
    pub thread_stacks: bool,
}

/// Copy rounds of a non-blocking snapshot before a goroutine that keeps changing is given up.
const NONBLOCKING_ROUNDS: u32 = 3;

impl LiveSession {
    /// Opens a process and does all discovery, without stopping it.
    pub fn open(pid: i32, opts: OpenOptions) -> Result<LiveSession, DumpError> {
        crate::startup::mark_start();
        let proc = LiveProcess::open(pid)?;
        let bin = match GoBinary::open(&proc.exe_path()) {
            Ok(b) => b,
            // A process that vanished between the checks looks like an unreadable file.
            Err(_) if live::has_exited(pid) => {
                return Err(DumpError::Live(LiveError::Exited { pid }));
            }
            Err(BinaryError::Io { error, .. })
                if error.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                return Err(DumpError::Live(live::permission_denied(pid)));
            }
            Err(e) => return Err(DumpError::Binary(e)),
        };
        if Some(bin.arch) != Arch::host() {
            return Err(DumpError::ArchMismatch { target: bin.arch });
        }
        let bias = load_bias(pid, &bin);
        let mut rt = Runtime::open(bin, &proc, bias, opts).map_err(|e| match e {
            _ if live::has_exited(pid) => DumpError::Live(LiveError::Exited { pid }),
            e => DumpError::Runtime(e),
        })?;
        let clock_offset = ns::monotonic_offset(pid);
        let pids = ns::ns_pids(pid).unwrap_or_default();
        if pids.len() > 1 {
            let list = pids
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ");
            rt.discovery.insert(
                0,
                Discovery {
                    what: "pid",
                    value: list,
                    source: "NSpid, /proc/PID/status: here, then each nested pid namespace".into(),
                },
            );
        }
        if clock_offset != 0 {
            rt.discovery.push(Discovery {
                what: "clock offset",
                value: format!("{:+.3} s", clock_offset as f64 / 1e9),
                source:
                    "monotonic, /proc/PID/timens_offsets minus goroscope's: the target's nanotime"
                        .into(),
            });
        }
        Ok(LiveSession {
            proc,
            rt,
            nonblocking: opts.nonblocking,
            clock_offset,
            thread_stacks: opts.thread_stacks,
        })
    }

    /// Freezes the target, copies what the walk needs, thaws it, and builds the snapshot
    /// (without any stop when the session is non-blocking).
    pub fn snapshot(&self) -> Result<Snapshot, DumpError> {
        self.snapshot_progress(&mut ())
    }

    /// [`LiveSession::snapshot`], saying where it is on `progress`.
    pub fn snapshot_progress(&self, progress: &mut dyn Progress) -> Result<Snapshot, DumpError> {
        if self.nonblocking {
            return self.snapshot_nonblocking();
        }
        let (freeze, copy) = self.frozen_copy(progress)?;
        let pause = freeze.thaw();
        self.build(copy, pause, progress)
    }

    /// A snapshot read without stopping the target at all (no ptrace): every g and stack is
    /// copied while it runs, then every g read again; a goroutine whose key fields (status,
    /// goid, saved registers, stack bounds, `trackingSeq`, m) are the same before and after
    /// its stack's copy is shown, one that kept changing over a few rounds (or was running)
    /// gets no frames and a `stack_error` saying so. Threads and their registers are not
    /// read, so running goroutines have no stack.
    pub fn snapshot_nonblocking(&self) -> Result<Snapshot, DumpError> {
        self.nonblocking_copy().map(|(snap, _)| snap)
    }

    /// [`LiveSession::snapshot_nonblocking`] and the copy of the g structs and stacks it was
    /// built from.
    fn nonblocking_copy(&self) -> Result<(Snapshot, MemoryImage), DumpError> {
        let pid = self.proc.pid();
        let exited = || DumpError::Live(LiveError::Exited { pid });
        crate::startup::mark_ready();
        let start = std::time::Instant::now();
        let (image, unsettled) = goroutines::PreCopy::unstopped(
            &self.rt,
            &mut |reqs, img| {
                self.proc.copy_into(reqs, img);
            },
            NONBLOCKING_ROUNDS,
        );
        let nanotime = monotonic_now() + self.clock_offset;
        if image.total_bytes() == 0 && live::has_exited(pid) {
            return Err(exited());
        }
        let mut meta = self.meta(Duration::ZERO);
        meta.nonblocking = true;
        meta.precopy_ns = start.elapsed().as_nanos() as u64;
        let mut snap =
            build_snapshot(&self.rt, &image, &[], nanotime, meta, &mut ()).map_err(|e| {
                if live::has_exited(pid) {
                    exited()
                } else {
                    DumpError::Runtime(e)
                }
            })?;
        snap.meta.unsettled = unsettled.len() as u64;
        snap.objects = blocked::analyze(
            &self.rt,
            &image,
            &mut snap.goroutines,
            &[],
            &mut |reqs, img| {
                self.proc.copy_into(reqs, img);
            },
        );
        let retries = || blocked::flock_retries(&self.rt, &snap.goroutines);
        snap.file_locks = Some(crate::target::files::read(pid, &snap, retries));
        let unsettled: HashSet<u64> = unsettled.into_iter().collect();
        for g in snap
            .goroutines
            .iter_mut()
            .filter(|g| unsettled.contains(&g.addr))
        {
            g.frames.clear();
            g.stack_error = Some(if g.status == crate::snapshot::Status::RUNNING {
                "running; its stack is not read without stopping the target (--nonblocking)".into()
            } else {
                "changed while being read without stopping the target (--nonblocking); stack not shown".into()
            });
        }
        Ok((snap, image))
    }

    /// [`LiveSession::snapshot`], also running `in_window` with the stopped threads inside
    /// the frozen window (after the copy, before the thaw), e.g. to capture a core.
    pub fn snapshot_with<T>(
        &self,
        in_window: impl FnOnce(&[ThreadState]) -> T,
    ) -> Result<(Snapshot, T), DumpError> {
        let (freeze, copy) = self.frozen_copy(&mut ())?;
        let extra = in_window(freeze.threads());
        let pause = freeze.thaw();
        self.build(copy, pause, &mut ()).map(|snap| (snap, extra))
    }

    /// A snapshot taken like [`LiveSession::snapshot`], but the target stays stopped: the
    /// returned [`Freeze`] holds it until it is thawed or dropped (`attach --hold`). The
    /// snapshot's pause is the time stopped when it was built.
    pub fn snapshot_held(&self) -> Result<(Snapshot, Freeze<'_>), DumpError> {
        let (snap, _, freeze) = self.snapshot_held_kept()?;
        Ok((snap, freeze))
    }

    /// [`LiveSession::snapshot_held`], also returning what values read.
    pub fn snapshot_held_kept(&self) -> Result<(Snapshot, Kept, Freeze<'_>), DumpError> {
        let (freeze, copy) = self.frozen_copy(&mut ())?;
        let (snap, kept) = self.build_kept(copy, freeze.held_for(), &mut ())?;
        Ok((snap, kept, freeze))
    }

    /// [`LiveSession::snapshot`], also returning the copied memory (stacks and g structs, for
    /// values). A non-blocking snapshot keeps no copy: its memory is empty.
    pub fn snapshot_kept(&self) -> Result<(Snapshot, Kept), DumpError> {
        if self.nonblocking {
            return Ok((self.snapshot_nonblocking()?, Kept::default()));
        }
        let (freeze, copy) = self.frozen_copy(&mut ())?;
        let pause = freeze.thaw();
        self.build_kept(copy, pause, &mut ())
    }

    /// Freezes the target and copies what the walk needs; the target is still stopped.
    fn frozen_copy(
        &self,
        progress: &mut dyn Progress,
    ) -> Result<(Freeze<'_>, FrozenCopy), DumpError> {
        // Most of the copy is taken before the stop, while the target runs; the window then
        // copies the g structs and only the stacks of goroutines that moved since.
        progress.stage("copying while the target runs", 0, 0);
        crate::startup::mark_ready();
        let pre_start = std::time::Instant::now();
        let pre = goroutines::PreCopy::take(&self.rt, &mut |reqs, img| {
            self.proc.copy_into(reqs, img);
        });
        let precopy_ns = pre_start.elapsed().as_nanos() as u64;
        live::test_hold_after_precopy();
        progress.stage("stopping the target", 0, 0);
        // A goroutine caught between states (its thread in a signal handler or a stack
        // switch, its saved registers already cleared) has no stack to read at that instant;
        // such moments last microseconds, so thaw and take the copy again, a few times at most.
        let mut attempt = 1;
        // In another pid namespace, the runtime's m.procid is the thread's id there: the walk
        // sees the threads by those ids (looked up before the stop; new threads in it).
        let mut tids = ns::TidMap::new(self.proc.pid());
        if tids.nested() {
            tids.learn(&self.proc.thread_ids().unwrap_or_default());
        }
        loop {
            let freeze = self.proc.freeze()?;
            let mut threads = freeze.threads().to_vec();
            tids.to_target(&mut threads);
            // The target's nanotime: its time namespace's monotonic clock.
            let nanotime = monotonic_now() + self.clock_offset;
            let copy_start = std::time::Instant::now();
            let cap = goroutines::capture(
                &self.rt,
                &threads,
                &mut |reqs, img| {
                    self.proc.copy_into(reqs, img);
                },
                Some(&pre),
            );
            // Thread stacks: the Ms and the used part of their system stacks, only when asked.
            let threads_img = self.thread_stacks.then(|| {
                let seeds: Vec<u64> = cap
                    .keys
                    .iter()
                    .filter_map(|(_, k)| Some(k.as_ref()?.m()))
                    .filter(|&m| m != 0)
                    .collect();
                let img = crate::runtime::threads::capture(
                    &self.rt,
                    &threads,
                    &seeds,
                    &cap.gs_img,
                    &mut |reqs, img| {
                        self.proc.copy_into(reqs, img);
                    },
                );
                (img, seeds)
            });
            let copy_ns = copy_start.elapsed().as_nanos() as u64;
            if attempt < MAX_ATTEMPTS && cap.in_transition {
                freeze.thaw();
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            return Ok((
                freeze,
                FrozenCopy {
                    threads,
                    tids,
                    nanotime,
                    cap,
                    threads_img,
                    pre,
                    copy_ns,
                    precopy_ns,
                },
            ));
        }
    }

    /// [`LiveSession::snapshot_progress`] for output that does not need every goroutine at
    /// once: goroutines are built in chunks on every CPU and handed to `fold`, then each chunk
    /// to `sink` in `allgs` order, and not kept. The snapshot returned has no goroutines and
    /// no objects; the count is how many goroutines there were.
    pub fn stream<C: Default + Send>(
        &self,
        progress: &mut dyn Progress,
        fold: &(dyn Fn(&mut C, Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<(Snapshot, usize), DumpError> {
        if self.nonblocking {
            let mut snap = self.snapshot_nonblocking()?;
            let gs = std::mem::take(&mut snap.goroutines);
            let n = gs.len();
            let mut acc = C::default();
            for (i, g) in gs.into_iter().enumerate() {
                fold(&mut acc, g);
                if (i + 1) % CHUNK == 0 {
                    sink(std::mem::take(&mut acc));
                }
            }
            sink(acc);
            return Ok((snap, n));
        }
        let (freeze, copy) = self.frozen_copy(progress)?;
        let pause = freeze.thaw();
        let (snap, n, _) = self.build_with(copy, pause, progress, fold, sink)?;
        Ok((snap, n))
    }

    /// Builds the snapshot from a copy (the target may run again, or still be held).
    fn build(
        &self,
        copy: FrozenCopy,
        pause: Duration,
        progress: &mut dyn Progress,
    ) -> Result<Snapshot, DumpError> {
        self.build_kept(copy, pause, progress).map(|(snap, _)| snap)
    }

    /// [`LiveSession::build`], also returning the copied memory (stacks and g structs).
    fn build_kept(
        &self,
        copy: FrozenCopy,
        pause: Duration,
        progress: &mut dyn Progress,
    ) -> Result<(Snapshot, Kept), DumpError> {
        let mut gs = Vec::new();
        let keep = |v: &mut Vec<Goroutine>, g| v.push(g);
        let (mut snap, _, kept) =
            self.build_with(copy, pause, progress, &keep, &mut |v| gs.extend(v))?;
        let image = &kept.image;
        snap.goroutines = gs;
        // What blocked goroutines wait on: read after the thaw, validated against the copy.
        progress.stage("reading what blocked goroutines wait on", 0, 0);
        let threads = &kept.threads;
        snap.objects = blocked::analyze(
            &self.rt,
            image,
            &mut snap.goroutines,
            threads,
            &mut |reqs, img| {
                self.proc.copy_into(reqs, img);
            },
        );
        let retries = || blocked::flock_retries(&self.rt, &snap.goroutines);
        snap.file_locks = Some(crate::target::files::read(self.proc.pid(), &snap, retries));
        Ok((snap, kept))
    }

    /// Builds the snapshot from a copy, its goroutines going to `fold` and `sink` (see
    /// [`LiveSession::stream`]); also returns their count, the copied memory and the threads.
    fn build_with<C: Default + Send>(
        &self,
        copy: FrozenCopy,
        pause: Duration,
        progress: &mut dyn Progress,
        fold: &(dyn Fn(&mut C, Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<(Snapshot, usize, Kept), DumpError> {
        let FrozenCopy {
            threads,
            tids,
            nanotime,
            cap,
            threads_img,
            pre,
            copy_ns,
            precopy_ns,
        } = copy;
        let copied_bytes =
            cap.copied_bytes() + threads_img.as_ref().map_or(0, |(i, _)| i.total_bytes());
        let stacks_reused = cap.reused() as u64;
        let mut image = cap.finish(Some(pre));
        let seeds = threads_img.map(|(t, seeds)| {
            image.overwrite(t);
            seeds
        });
        let pid = self.proc.pid();
        let exited = || DumpError::Live(LiveError::Exited { pid });
        if copied_bytes == 0 && live::has_exited(pid) {
            return Err(exited());
        }
        let mut meta = self.meta(pause);
        meta.copy_ns = copy_ns;
        meta.copied_bytes = copied_bytes;
        meta.precopy_ns = precopy_ns;
        meta.stacks_reused = stacks_reused;
        // Thread ids as goroscope's namespace (and the pid it was given) numbers them.
        let ours = |acc: &mut C, mut g: Goroutine| {
            g.thread = g.thread.map(|t| tids.to_ours(t));
            fold(acc, g)
        };
        let (mut snap, n) = build_streamed(
            &self.rt, &image, &threads, nanotime, meta, progress, &ours, sink,
        )
        .map_err(|e| {
            if live::has_exited(pid) {
                exited()
            } else {
                DumpError::Runtime(e)
            }
        })?;
        if self.thread_stacks {
            thread_stacks(
                &self.rt,
                &image,
                &threads,
                &seeds.unwrap_or_default(),
                &mut snap,
            );
        }
        for t in &mut snap.threads {
            t.tid = tids.to_ours(t.tid);
        }
        let threads = threads
            .into_iter()
            .map(|t| ThreadState {
                tid: tids.to_ours(t.tid),
                ..t
            })
            .collect();
        Ok((snap, n, Kept { image, threads }))
    }
}

/// What a snapshot copied besides its model, kept for values: the memory (stacks and g
/// structs) and the stopped threads' registers (thread ids as goroscope numbers them).
#[derive(Debug, Default)]
pub struct Kept {
    pub image: MemoryImage,
    pub threads: Vec<ThreadState>,
}

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

impl LiveSession {
    /// A snapshot and the leaked goroutines of the same instant: the globals, the heap's span
    /// metadata and its scan spans are copied inside the frozen window with the goroutines
    /// (the pause grows with the heap), then marked after the thaw.
    pub fn leaks(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        if self.nonblocking {
            return self.leaks_nonblocking(progress);
        }
        let (freeze, copy) = self.frozen_copy(progress).map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        let mut heap = leaks::copy_heap(&self.rt, &mut |reqs, img| {
            self.proc.copy_into(reqs, img);
        });
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
        let mut gs = Vec::new();
        let keep = |v: &mut Vec<Goroutine>, g| v.push(g);
        let (mut snap, _, Kept { image, threads }) = self
            .build_with(copy, pause, progress, &keep, &mut |v| gs.extend(v))
            .map_err(|e| e.to_string())?;
        snap.goroutines = gs;
        progress.stage("marking the heap", 0, 0);
        // Sudogs and the semaphore table come from the frozen copy; only what it lacks (the
        // counts of a channel of pointer-free elements, in a noscan span) is read now.
        let frozen = Layered(&image, &heap.image);
        snap.objects = blocked::analyze(
            &self.rt,
            &frozen,
            &mut snap.goroutines,
            &threads,
            &mut |reqs, img| {
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
        let heap = leaks::copy_heap(&self.rt, &mut |reqs, img| {
            self.proc.copy_into(reqs, img);
        })?;
        let heap_copy = start.elapsed();
        progress.stage("marking the heap", 0, 0);
        LeakAnalysis::unmarked(&self.rt, snap, &heap, &image, heap_copy)
    }
}

impl LiveSession {
    /// The facts of a snapshot of this process taken now, `pause` long stopped.
    pub fn meta(&self, pause: Duration) -> Meta {
        Meta {
            source: crate::snapshot::Source::Live,
            host: hostname(),
            time_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            pid: Some(self.proc.pid()),
            exe: std::fs::read_link(self.proc.exe_path())
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| self.rt.bin.path.display().to_string()),
            go_version: self.rt.go_version_string(),
            arch: self.rt.bin.arch.to_string(),
            pause_ns: pause.as_nanos() as u64,
            traceback_labels: traceback_labels(&self.rt, self.proc.pid()),
            startup_ns: crate::startup::ready_ns(),
            text: text_mapping(&self.rt),
            ..Meta::default()
        }
    }
}

/// What the frozen window copied, and the pre-copy it completes.
struct FrozenCopy {
    /// The stopped threads, numbered as the target's pid namespace numbers them.
    threads: Vec<ThreadState>,
    tids: ns::TidMap,
    nanotime: i64,
    cap: goroutines::Capture,
    /// What thread stacks need besides (when asked for), and the Ms of the goroutines on
    /// threads that seeded the search for every M.
    threads_img: Option<(MemoryImage, Vec<u64>)>,
    pre: goroutines::PreCopy,
    copy_ns: u64,
    precopy_ns: u64,
}

impl From<CoreError> for DumpError {
    fn from(e: CoreError) -> Self {
        DumpError::Core(e)
    }
}

/// A core file, discovered: the same [`Runtime`] and [`build_snapshot`] as a live target,
/// reading the core's memory (spliced with the executable's read-only segments) instead of a
/// copy made in a frozen window.
///
/// A core has no clock: the dump instant's `nanotime` is taken as the largest `g.waitsince`
/// in the core (the start of the last GC that saw a goroutine blocked), a lower bound. Wait
/// minutes are therefore "at least": exact while a GC ran in the last minute before the
/// dump, smaller than the runtime's otherwise, and never invented.
///
/// Goroutines come in `allgs` order except that, from Go 1.22, the one running on the thread
/// that took the fatal signal (the core's first `NT_PRSTATUS`) comes first, as in the crash
/// traceback. (Before 1.22 the thread that printed the traceback is not the one that aborted,
/// and the core does not say which it was.)
pub struct CoreSession {
    /// The core's memory, with the executable behind it.
    pub mem: SplicedMemory,
    /// Its runtime.
    pub rt: Runtime,
    /// The executable the core names, as opened for its user (read through `/proc/self/fd`).
    _exe: Option<std::fs::File>,
    /// Unwind every thread's own stack too ([`OpenOptions::thread_stacks`]).
    pub thread_stacks: bool,
}

impl CoreSession {
    /// Opens a core file and its executable (`exe`, else the path the core names) and does
    /// discovery on the core's memory.
    pub fn open(
        core: &std::path::Path,
        exe: Option<&std::path::Path>,
        opts: OpenOptions,
    ) -> Result<CoreSession, DumpError> {
        let core = CoreFile::open(core)?;
        let (exe_path, exe_source, exe_file) = match exe {
            Some(p) => (p.to_path_buf(), "--exe", None),
            None => core_exe(&core)?,
        };
        // A named executable is read through the descriptor opened for the core's user.
        let open_path = match &exe_file {
            Some(f) => std::path::PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(f)
            )),
            None => exe_path.clone(),
        };
        let mut bin = GoBinary::open(&open_path).map_err(DumpError::Binary)?;
        bin.path = exe_path.clone();
        if bin.arch != core.arch() {
            return Err(DumpError::Core(CoreError::ExeMismatch {
                exe: exe_path,
                why: format!(
                    "it is a linux/{} program, the core is {}",
                    bin.arch,
                    core.arch()
                ),
            }));
        }
        let bias = match (bin.is_pie, core.auxv_value(corefile::AT_ENTRY)) {
            (true, Some(entry)) => {
                use object::Object;
                entry.wrapping_sub(bin.elf().entry())
            }
            _ => 0,
        };
        let mem = SplicedMemory::new(core, &open_path, bias).map_err(|e| match e {
            CoreError::ExeMismatch { why, .. } => CoreError::ExeMismatch {
                exe: exe_path.clone(),
                why,
            },
            e => e,
        })?;
        let mut rt = Runtime::open(bin, &mem, bias, opts).map_err(|e| match e {
            RuntimeError::BadModuledata(why) => DumpError::Core(CoreError::ExeMismatch {
                exe: exe_path.clone(),
                why: format!("moduledata: {why}"),
            }),
            e => DumpError::Runtime(e),
        })?;
        if let Some(d) = rt.discovery.first_mut() {
            d.source = exe_source.into();
        }
        rt.discovery.insert(
            0,
            crate::runtime::Discovery {
                what: "core",
                value: mem.core().path().display().to_string(),
                source: format!(
                    "{} threads, {} segments, {} bytes",
                    mem.core().threads().len(),
                    mem.core().segments().len(),
                    mem.core().file_len()
                ),
            },
        );
        Ok(CoreSession {
            mem,
            rt,
            _exe: exe_file,
            thread_stacks: opts.thread_stacks,
        })
    }

    /// Builds the snapshot from the core.
    pub fn snapshot(&self) -> Result<Snapshot, DumpError> {
        self.snapshot_progress(&mut ())
    }

    /// [`CoreSession::snapshot`], saying where it is on `progress`.
    pub fn snapshot_progress(&self, progress: &mut dyn Progress) -> Result<Snapshot, DumpError> {
        let core = self.mem.core();
        let threads = core.threads();
        let nanotime = core_nanotime(&self.rt, &self.mem);
        let environ: Vec<u8> = core.environ().join("\0").into_bytes();
        let meta = Meta {
            source: crate::snapshot::Source::Core,
            // A core does not name its host.
            host: String::new(),
            // When the core was written, as near as the file says.
            time_unix: std::fs::metadata(core.path())
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0),
            pid: core.pid(),
            exe: self.rt.bin.path.display().to_string(),
            go_version: self.rt.go_version_string(),
            arch: self.rt.bin.arch.to_string(),
            pause_ns: 0,
            traceback_labels: traceback_labels_env(&self.rt, &environ),
            text: text_mapping(&self.rt),
            ..Meta::default()
        };
        let mut snap = build_snapshot(&self.rt, &self.mem, threads, nanotime, meta, progress)
            .map_err(DumpError::Runtime)?;
        if self.thread_stacks {
            let seeds: Vec<u64> = snap.goroutines.iter().map(|g| g.m_addr).collect();
            thread_stacks(&self.rt, &self.mem, threads, &seeds, &mut snap);
        }
        snap.objects = blocked::analyze(
            &self.rt,
            &self.mem,
            &mut snap.goroutines,
            threads,
            &mut |_, _| {},
        );
        // The crash traceback prints the goroutine of the thread that took the signal first.
        // From Go 1.22 that thread is also the one that aborts, whose NT_PRSTATUS is the
        // core's first; before, SIGQUIT was relayed from M to M and the last one aborted.
        if self.rt.version().at_least(22)
            && let Some(first) = snap.threads.first().and_then(|t| t.goid)
            && let Some(i) = snap.goroutines.iter().position(|g| g.id == first)
        {
            let g = snap.goroutines.remove(i);
            snap.goroutines.insert(0, g);
        }
        Ok(snap)
    }
}

impl CoreSession {
    /// [`LiveSession::leaks`] for a core: everything is read from the core.
    pub fn leaks(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        let snap = self
            .snapshot_progress(progress)
            .map_err(|e| e.to_string())?;
        let start = std::time::Instant::now();
        let mut from_core = |reqs: &[(u64, u64)], img: &mut MemoryImage| {
            for &(a, l) in reqs {
                let Ok(n) = usize::try_from(l) else { continue };
                let mut buf = vec![0u8; n];
                if self.mem.read_at(a, &mut buf).is_ok() {
                    img.insert(a, buf);
                }
            }
        };
        let heap = leaks::copy_heap(&self.rt, &mut from_core)?;
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
        from_core(&reqs, &mut stacks);
        LeakAnalysis::new(&self.rt, snap, &heap, &stacks, start.elapsed())
    }
}

/// The executable a core names: the `NT_FILE` mapping holding the entry point (kernel and
/// gdb cores), else `pr_fname` next to the core (qemu cores have no `NT_FILE`).
///
/// The `NT_FILE` path is opened as the core's process's user would open it (`pr_uid`,
/// `pr_gid`), a regular file only ([`crate::target::ns::open_confined`]): a core is no way
/// to read a file its process could not.
fn core_exe(
    core: &CoreFile,
) -> Result<(std::path::PathBuf, &'static str, Option<std::fs::File>), DumpError> {
    if let Some(p) = core.exe_path_hint() {
        let path = std::path::PathBuf::from(p);
        if !path.exists() {
            return Err(DumpError::Core(CoreError::NoExecutable {
                named: Some(p.to_string()),
            }));
        }
        let Some((uid, gid)) = core.ids() else {
            return Err(DumpError::Core(CoreError::ExeRefused {
                why: format!("{p}: the core does not say its process's user (no NT_PRPSINFO)"),
            }));
        };
        let ids = crate::target::ns::Ids {
            uid,
            gid,
            groups: vec![gid],
        };
        let file = crate::target::ns::open_confined(std::path::Path::new("/"), &path, &ids)
            .map_err(|why| DumpError::Core(CoreError::ExeRefused { why }))?;
        return Ok((path, "core NT_FILE", Some(file)));
    }
    if let (Some(name), Some(dir)) = (core.fname(), core.path().parent()) {
        let path = dir.join(name);
        if !name.contains('/') && path.is_file() {
            return Ok((path, "core pr_fname, next to the core", None));
        }
    }
    Err(DumpError::Core(CoreError::NoExecutable { named: None }))
}

/// The instant of a core, in `nanotime`: the largest `waitsince` of any goroutine (see
/// [`CoreSession`]); 0 when none has one, so no minutes are printed.
fn core_nanotime(rt: &Runtime, mem: &impl MemoryReader) -> i64 {
    let Ok(gs) = goroutines::all_g_addrs(rt, mem) else {
        return 0;
    };
    gs.iter()
        .filter_map(|&g| goroutines::read_g(rt, mem, g).ok())
        .map(|g| g.waitsince)
        .max()
        .unwrap_or(0)
        .max(0)
}

/// Freezes tried when a running goroutine is caught between states.
const MAX_ATTEMPTS: u32 = 4;

/// Load bias of the executable in the process: `AT_ENTRY` from `/proc/PID/auxv` minus the
/// ELF entry point (0 for non-PIE executables).
fn load_bias(pid: i32, bin: &GoBinary) -> u64 {
    use object::Object;
    if !bin.is_pie {
        return 0;
    }
    let Ok(auxv) = proc::auxv_bytes(pid) else {
        return 0;
    };
    proc::parse_auxv(&auxv)
        .into_iter()
        .find(|&(k, _)| k == proc::AT_ENTRY)
        .map_or(0, |(_, v)| v.wrapping_sub(bin.elf().entry()))
}

/// The executable's code segment where the target has it (the load bias added).
fn text_mapping(rt: &Runtime) -> Option<TextMapping> {
    let (addr, size, offset) = rt.bin.text_segment()?;
    let start = addr.wrapping_add(rt.bias);
    Some(TextMapping {
        start,
        limit: start.wrapping_add(size),
        offset,
        build_id: rt.bin.gnu_build_id().unwrap_or_default(),
    })
}

/// Whether the runtime prints labels in tracebacks: GODEBUG `tracebacklabels`, default 0
/// before Go 1.27 and 1 from it, then the binary's DefaultGODEBUG, then the process's
/// GODEBUG environment variable, in the order the runtime applies them (`parsedebugvars`).
fn traceback_labels(rt: &Runtime, pid: i32) -> bool {
    let env = proc::environ(pid).unwrap_or_default();
    traceback_labels_env(rt, &env)
}

/// [`traceback_labels`] for a NUL-separated environment block.
fn traceback_labels_env(rt: &Runtime, env: &[u8]) -> bool {
    let mut on = rt.version().at_least(27);
    let mut apply = |list: &str| {
        for kv in list.split(',') {
            match kv.trim() {
                "tracebacklabels=1" => on = true,
                "tracebacklabels=0" => on = false,
                _ => {}
            }
        }
    };
    if let Some(d) = rt.bin.build.setting("DefaultGODEBUG") {
        apply(d);
    }
    for var in env.split(|&b| b == 0) {
        if let Some(v) = var.strip_prefix(b"GODEBUG=") {
            apply(&String::from_utf8_lossy(v));
        }
    }
    on && rt.version().at_least(26)
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock the Go runtime's `nanotime` reads.
pub fn monotonic_now() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Builds the snapshot from a copied (or core) memory image.
pub fn build_snapshot(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    threads: &[ThreadState],
    nanotime: i64,
    meta: Meta,
    progress: &mut dyn Progress,
) -> Result<Snapshot, RuntimeError> {
    let mut out = Vec::new();
    let keep = |v: &mut Vec<Goroutine>, g| v.push(g);
    let (mut snap, _) = build_streamed(
        rt,
        mem,
        threads,
        nanotime,
        meta,
        progress,
        &keep,
        &mut |v| out.extend(v),
    )?;
    snap.goroutines = out;
    Ok(snap)
}

/// [`build_snapshot`] with the goroutines going to `fold` and `sink` as [`walk`] builds them,
/// not kept: the snapshot returned has none; the count is how many there were.
#[allow(clippy::too_many_arguments)]
pub fn build_streamed<M: MemoryReader + Sync, C: Default + Send>(
    rt: &Runtime,
    mem: &M,
    threads: &[ThreadState],
    nanotime: i64,
    meta: Meta,
    progress: &mut dyn Progress,
    fold: &(dyn Fn(&mut C, Goroutine) + Sync),
    sink: &mut dyn FnMut(C),
) -> Result<(Snapshot, usize), RuntimeError> {
    let walked = walk(rt, mem, threads, nanotime, progress, fold, sink)?;
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
pub fn thread_stacks(
    rt: &Runtime,
    mem: &(impl MemoryReader + Sync),
    threads: &[ThreadState],
    seeds: &[u64],
    snap: &mut Snapshot,
) {
    use crate::runtime::threads::{self, MAX_THREAD_STACK_COPY, OnStack};
    let mut none = crate::target::image::MemoryImage::new();
    let ms = threads::find_ms(rt, threads, seeds, mem, &mut none, &mut |_, _| {});
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

/// What a [`walk`] tells besides the goroutines themselves.
pub struct Walked {
    /// Goroutines built.
    pub count: usize,
    /// (thread id, goroutine id) of every goroutine running on a thread.
    pub on_threads: Vec<(i32, u64)>,
}

/// Goroutines built at a time by one thread of a [`walk`].
const CHUNK: usize = 256;
/// Chunks a [`walk`] builds ahead of the one its sink waits for: the memory a streamed dump
/// holds besides the copy.
const AHEAD: usize = 16;
/// Most threads a [`walk`] uses.
const MAX_WALKERS: usize = 8;

/// Builds every goroutine of `allgs` (dead ones left out) from copied memory, on as many
/// threads as there are CPUs, in chunks: `fold` adds each goroutine to its chunk's value (it
/// may keep it, or render it and let it go), and `sink` gets the chunks in `allgs` order.
pub fn walk<M, C>(
    rt: &Runtime,
    mem: &M,
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, mpsc};

    let gs = goroutines::all_g_addrs(rt, mem).map_err(RuntimeError::Read)?;
    let total = gs.len();
    let by_tid: HashMap<u64, &ThreadState> = threads.iter().map(|t| (t.tid as u64, t)).collect();
    let chunks: Vec<&[u64]> = gs.chunks(CHUNK).collect();
    let build = |w: &mut Walker<'_, M>, chunk: &[u64]| {
        let mut acc = C::default();
        let mut n = Walked {
            count: 0,
            on_threads: Vec::new(),
        };
        for &g in chunk {
            if let Some(gr) = w.goroutine(g) {
                n.count += 1;
                if let Some(t) = gr.thread {
                    n.on_threads.push((t, gr.id));
                }
                fold(&mut acc, gr);
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
    // With one CPU (or one chunk) no thread is started: the loop at the end does them all.
    let walkers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WALKERS)
        .min(chunks.len());
    let walkers = if walkers <= 1 { 0 } else { walkers };
    // Workers take chunks in order, and wait while they are AHEAD chunks past the one the
    // sink needs next (that one is always taken, so nothing waits for ever).
    let next = AtomicUsize::new(0);
    let sunk = (Mutex::new(0usize), Condvar::new());
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, C, Walked)>();
        for _ in 0..walkers {
            let tx = tx.clone();
            let (next, sunk, chunks, by_tid, build) = (&next, &sunk, &chunks, &by_tid, &build);
            let spawned = std::thread::Builder::new()
                .name("goroscope-walk".into())
                .spawn_scoped(s, move || {
                    let mut w = Walker::new(rt, mem, by_tid, nanotime);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(chunk) = chunks.get(i) else { break };
                        let mut done = sunk.0.lock().unwrap_or_else(|e| e.into_inner());
                        while i >= *done + AHEAD {
                            done = sunk.1.wait(done).unwrap_or_else(|e| e.into_inner());
                        }
                        drop(done);
                        let (acc, n) = build(&mut w, chunk);
                        if tx.send((i, acc, n)).is_err() {
                            break;
                        }
                    }
                });
            if spawned.is_err() {
                break;
            }
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut want = 0;
        for (i, acc, n) in rx {
            pending.insert(i, (acc, n));
            while let Some((acc, n)) = pending.remove(&want) {
                add(n);
                sink(acc);
                want += 1;
                *sunk.0.lock().unwrap_or_else(|e| e.into_inner()) = want;
                sunk.1.notify_all();
                progress.stage("unwinding goroutines", want * CHUNK, total);
            }
        }
        // Chunks no thread took (none was started, or could be): on this one.
        if want < chunks.len() {
            let mut w = Walker::new(rt, mem, &by_tid, nanotime);
            for chunk in &chunks[want..] {
                progress.stage("unwinding goroutines", want * CHUNK, total);
                let (acc, n) = build(&mut w, chunk);
                add(n);
                sink(acc);
                want += 1;
            }
        }
    });
    Ok(walked)
}

/// Builds goroutines from copied memory: reads each g, unwinds and symbolizes its stack.
/// Each thread of a [`walk`] has its own (its caches are not shared).
struct Walker<'a, M> {
    rt: &'a Runtime,
    mem: &'a M,
    by_tid: &'a HashMap<u64, &'a ThreadState>,
    nanotime: i64,
    sym: Symbolizer<'a>,
    unwinds: unwind::UnwindCache,
    /// Header states by (status, wait reason).
    states: HashMap<(u32, u8), Name>,
}

impl<'a, M: MemoryReader> Walker<'a, M> {
    fn new(
        rt: &'a Runtime,
        mem: &'a M,
        by_tid: &'a HashMap<u64, &'a ThreadState>,
        nanotime: i64,
    ) -> Self {
        Walker {
            rt,
            mem,
            by_tid,
            nanotime,
            sym: Symbolizer::new(rt.code()),
            unwinds: Default::default(),
            states: HashMap::new(),
        }
    }

    /// The goroutine whose g is at `g`; `None` for a dead one.
    fn goroutine(&mut self, g: u64) -> Option<Goroutine> {
        let (rt, mem) = (self.rt, self.mem);
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
        Some(self.build(&raw, m.as_ref()))
    }

    fn build(&mut self, raw: &RawG, m: Option<&RawM>) -> Goroutine {
        let (rt, mem) = (self.rt, self.mem);
        let code = rt.code();
        let v = rt.version();
        let (start, jump) = start_of(rt, raw, m, self.by_tid);
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
                frames: Vec::new(),
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
/// improved for goroutines running on a thread: their thread's registers.
fn start_of(
    rt: &Runtime,
    raw: &RawG,
    m: Option<&RawM>,
    by_tid: &HashMap<u64, &ThreadState>,
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
            let start = Start {
                pc: r.pc,
                sp: r.sp,
                lr: r.lr,
                syscall: false,
                trap: true,
            };
            if (raw.stack.0..raw.stack.1).contains(&r.sp) {
                return (start, None);
            }
            if (m.g0_stack.0..m.g0_stack.1).contains(&r.sp)
                && rt.code().tab.func_for_pc(r.pc).is_some()
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
