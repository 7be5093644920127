//! A live process: discovery before the stop, the frozen window (pre-copy, freeze, copy,
//! thaw, retried when a goroutine is caught between states), the non-blocking copy, held
//! snapshots, and building the model after the target runs again.

use super::walk::{self, CHUNK};
use super::{
    DumpError, Progress, build_snapshot, build_streamed, hostname, monotonic_now, text_mapping,
    thread_stacks, traceback_labels_env,
};
use crate::arch::Arch;
use crate::binary::{BinaryError, GoBinary};
use crate::runtime::Discovery;
use crate::runtime::goroutines;
use crate::runtime::{OpenOptions, Runtime};
use crate::runtime::{blocked, holders};
use crate::snapshot::KeepAll;
use crate::snapshot::{Goroutine, Meta, Snapshot, SyncObject};
use crate::target::ThreadState;
use crate::target::files;
use crate::target::image::MemoryImage;
use crate::target::live::{self, Freeze, LiveError, LiveProcess};
use crate::target::ns;
use crate::target::proc;
use std::collections::HashSet;
use std::time::Duration;

/// A live target, discovered and ready to be frozen.
pub struct LiveTarget {
    /// The process.
    pub proc: LiveProcess,
    /// Its runtime.
    pub rt: Runtime,
    /// Never stop the target ([`LiveTarget::snapshot_nonblocking`]).
    pub nonblocking: bool,
    /// Its time namespace's `CLOCK_MONOTONIC` minus goroscope's, in nanoseconds.
    pub clock_offset: i64,
    /// Unwind every thread's own stack too ([`OpenOptions::thread_stacks`]).
    pub thread_stacks: bool,
    /// Read, inside the frozen window, the floating-point registers of the threads that run a
    /// goroutine (for values: `bt --full`, `attach`, `snapshot --values`); a plain dump does
    /// not read them.
    pub fp_registers: bool,
    /// Read the stacks only ([`OpenOptions::stacks_only`]).
    pub stacks_only: bool,
}

/// Copy rounds of a non-blocking snapshot before a goroutine that keeps changing is given up.
const NONBLOCKING_ROUNDS: u32 = 3;

impl LiveTarget {
    /// Opens a process and does all discovery, without stopping it.
    pub fn open(pid: i32, opts: OpenOptions) -> Result<LiveTarget, DumpError> {
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
        Ok(LiveTarget {
            proc,
            rt,
            nonblocking: opts.nonblocking,
            clock_offset,
            thread_stacks: opts.thread_stacks,
            fp_registers: false,
            stacks_only: opts.stacks_only,
        })
    }

    /// Freezes the target, copies what the walk needs, thaws it, and builds the snapshot
    /// (without any stop when the session is non-blocking).
    pub fn snapshot(&self) -> Result<Snapshot, DumpError> {
        self.snapshot_progress(&mut ())
    }

    /// [`LiveTarget::snapshot`], saying where it is on `progress`.
    pub(crate) fn snapshot_progress(
        &self,
        progress: &mut dyn Progress,
    ) -> Result<Snapshot, DumpError> {
        if self.nonblocking {
            return self.snapshot_nonblocking();
        }
        let (copy, pause) = self.copy_thawed(None, progress)?;
        self.build(copy, pause, progress)
    }

    /// A snapshot read without stopping the target at all (no ptrace): every g and stack is
    /// copied while it runs, then every g read again; a goroutine whose key fields (status,
    /// goid, saved registers, stack bounds, `trackingSeq`, m) are the same before and after
    /// its stack's copy is shown, one that kept changing over a few rounds (or was running)
    /// gets no frames and a `stack_error` saying so. Threads and their registers are not
    /// read, so running goroutines have no stack.
    pub(crate) fn snapshot_nonblocking(&self) -> Result<Snapshot, DumpError> {
        self.nonblocking_copy().map(|(snap, _)| snap)
    }

    /// [`LiveTarget::snapshot_nonblocking`] and the copy of the g structs and stacks it was
    /// built from.
    pub(super) fn nonblocking_copy(&self) -> Result<(Snapshot, MemoryImage), DumpError> {
        let pid = self.proc.pid();
        let exited = || DumpError::Live(LiveError::Exited { pid });
        crate::startup::mark_ready();
        let start = std::time::Instant::now();
        let (image, unsettled) =
            goroutines::PreCopy::unstopped(&self.rt, &self.proc, NONBLOCKING_ROUNDS);
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
        if !self.stacks_only {
            let table = files::LockTable::start();
            snap.objects =
                blocked::analyze(&self.rt, &image, &mut snap.goroutines, &[], &self.proc);
            let retries = || blocked::flock_retries(&self.rt, &snap.goroutines);
            snap.file_locks = Some(files::read(pid, &snap, retries, table));
        }
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

    /// [`LiveTarget::snapshot`], also running `in_window` with the freeze (its stopped
    /// threads) inside the frozen window (after the copy, before the thaw), e.g. to capture a
    /// core.
    pub(crate) fn snapshot_with<T>(
        &self,
        in_window: impl FnOnce(&Freeze<'_>) -> T,
    ) -> Result<(Snapshot, T), DumpError> {
        let (freeze, copy) = self.frozen_copy(&mut (), Stop::All)?;
        let extra = in_window(&freeze);
        let pause = freeze.thaw();
        self.build(copy, pause, &mut ()).map(|snap| (snap, extra))
    }

    /// A snapshot taken like [`LiveTarget::snapshot`], but the target stays stopped: the
    /// returned [`Freeze`] holds it until it is thawed or dropped (`attach --hold`), with what
    /// values read. The snapshot's pause is the time stopped when it was built.
    pub(crate) fn snapshot_held_kept(&self) -> Result<(Snapshot, Kept, Freeze<'_>), DumpError> {
        let (freeze, copy) = self.frozen_copy(&mut (), Stop::All)?;
        let (snap, kept) = self.build_kept(copy, freeze.held_for(), &mut (), Stacks::Kept)?;
        Ok((snap, kept, freeze))
    }

    /// [`LiveTarget::snapshot`], also returning the copied memory (stacks and g structs, for
    /// values). A non-blocking snapshot keeps no copy: its memory is empty.
    pub(crate) fn snapshot_kept(&self) -> Result<(Snapshot, Kept), DumpError> {
        self.snapshot_kept_progress(&mut (), Stacks::Kept)
    }

    /// [`LiveTarget::snapshot_kept`], saying how far it got to `progress`, keeping the stacks
    /// `stacks` says.
    pub(crate) fn snapshot_kept_progress(
        &self,
        progress: &mut dyn Progress,
        stacks: Stacks,
    ) -> Result<(Snapshot, Kept), DumpError> {
        if self.nonblocking {
            let (snap, image) = self.nonblocking_copy()?;
            let threads = Vec::new();
            return Ok((
                snap,
                Kept {
                    image,
                    threads,
                    ..Kept::default()
                },
            ));
        }
        let (copy, pause) = self.copy_thawed(None, progress)?;
        self.build_kept(copy, pause, progress, stacks)
    }

    /// A second look at the target some time after a snapshot of it (`first`, its copy
    /// `kept`), for confirming what the first showed: which of its goroutines it did not
    /// find unchanged, as ran since or gone (ids; [`goroutines::StackKey::ran_since`]), and
    /// `locks` (objects of `first`) read again, each with the holders it now has among the
    /// goroutines that did run, by any evidence ([`blocked::locks_again`]). The target is
    /// frozen again as for a snapshot (with the first copy standing in for the pre-copy: only
    /// the stacks of goroutines that ran are copied), or with `--nonblocking` read while it
    /// runs; also returned: how long it was stopped.
    pub(crate) fn look_again(
        &self,
        first: &Snapshot,
        kept: Kept,
        locks: &[&SyncObject],
    ) -> Result<(HashSet<u64>, Vec<SyncObject>, Duration), DumpError> {
        let pre = goroutines::PreCopy::of_copy(&self.rt, kept.image, kept.keys, kept.gs_gone);
        let mut pause = Duration::ZERO;
        let (cap, pre, threads, tids, nanotime) = if self.nonblocking {
            let cap = goroutines::capture_unstopped(&self.rt, &self.proc, &pre);
            let nanotime = monotonic_now() + self.clock_offset;
            (
                cap,
                pre,
                Vec::new(),
                ns::TidMap::new(self.proc.pid()),
                nanotime,
            )
        } else {
            let (copy, paused) = self.copy_thawed(Some(pre), &mut ())?;
            pause = paused;
            (copy.cap, copy.pre, copy.threads, copy.tids, copy.nanotime)
        };
        if cap.keys.is_empty() && live::has_exited(self.proc.pid()) {
            return Err(DumpError::Live(LiveError::Exited {
                pid: self.proc.pid(),
            }));
        }
        let (ran, mut still) = pre.ran_since(&self.rt, &cap.keys);
        let image = cap.finish(Some(pre));
        let mut gs = walk::goroutines_at(&self.rt, &image, &threads, nanotime, &ran);
        for g in &mut gs {
            g.thread = g.thread.map(|t| tids.to_ours(t));
        }
        let threads: Vec<ThreadState> = threads
            .into_iter()
            .map(|t| ThreadState {
                tid: tids.to_ours(t.tid),
                ..t
            })
            .collect();
        let again = blocked::locks_again(&self.rt, &image, &mut gs, &threads, &self.proc, locks);
        still.sort_unstable();
        let moved = first
            .goroutines
            .iter()
            .filter(|g| still.binary_search(&g.addr).is_err())
            .map(|g| g.id)
            .collect();
        crate::parts::drop_aside((image, gs));
        Ok((moved, again, pause))
    }

    /// Freezes the target (the threads `stop` says) and copies what the walk needs; the
    /// target is still stopped.
    pub(super) fn frozen_copy(
        &self,
        progress: &mut dyn Progress,
        stop: Stop,
    ) -> Result<(Freeze<'_>, FrozenCopy), DumpError> {
        // Most of the copy is taken before the stop, while the target runs; the window then
        // copies the g structs and only the stacks of goroutines that moved since.
        progress.stage("copying while the target runs", 0, 0);
        crate::startup::mark_ready();
        let pre_start = std::time::Instant::now();
        let pre = goroutines::PreCopy::take(&self.rt, &self.proc);
        let precopy_ns = pre_start.elapsed().as_nanos() as u64;
        live::test_hold_after_precopy();
        self.frozen_copy_after(pre, precopy_ns, progress, stop)
    }

    /// Freezes the target leaving the threads asleep in a blocking call unstopped
    /// ([`Stop::Awake`]), copies, thaws, and checks that each of them slept throughout: if
    /// one woke, the copy is taken again with every thread stopped. The copy (with the
    /// pre-copy `pre` if given, else one taken now) and how long the target was stopped (the
    /// sum of both pauses when the copy was taken again).
    fn copy_thawed(
        &self,
        pre: Option<goroutines::PreCopy>,
        progress: &mut dyn Progress,
    ) -> Result<(FrozenCopy, Duration), DumpError> {
        let (freeze, copy) = match pre {
            Some(pre) => self.frozen_copy_after(pre, 0, progress, Stop::Awake)?,
            None => self.frozen_copy(progress, Stop::Awake)?,
        };
        let asleep = freeze.asleep().to_vec();
        let pause = freeze.thaw();
        let pid = self.proc.pid();
        if asleep.iter().all(|a| a.still(pid)) {
            return Ok((copy, pause));
        }
        // Killed meanwhile (a SIGKILL wakes every thread): nothing to stop again.
        if live::has_exited(pid) {
            return Err(DumpError::Live(LiveError::Exited { pid }));
        }
        // The settled Ms are the pre-copy's: gone with the freeze that left their threads be.
        // With every thread stopped, frozen_copy_after settles no M.
        let FrozenCopy {
            pre, precopy_ns, ..
        } = copy;
        pre.recycle(&self.rt);
        let (freeze, copy) = self.frozen_copy_after(pre, precopy_ns, progress, Stop::All)?;
        Ok((copy, pause + freeze.thaw()))
    }

    /// [`LiveTarget::frozen_copy`] once the pre-copy (`pre`, taken in `precopy_ns`) is there.
    fn frozen_copy_after(
        &self,
        pre: goroutines::PreCopy,
        precopy_ns: u64,
        progress: &mut dyn Progress,
        stop: Stop,
    ) -> Result<(Freeze<'_>, FrozenCopy), DumpError> {
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
        // Thread stacks need every thread's registers.
        let mut survey = match stop {
            Stop::Awake if !self.thread_stacks => {
                live::survey(self.proc.pid(), &self.proc.thread_ids().unwrap_or_default())
            }
            _ => live::Survey::default(),
        };
        let mut pre = pre;
        let asleep_tids = |asleep: &[live::Asleep]| -> HashSet<u64> {
            asleep
                .iter()
                .map(|a| tids.to_target(a.tid) as u64)
                .collect()
        };
        pre.settle(&self.rt, &self.proc, &asleep_tids(&survey.asleep));
        // The stops thawed to be taken again count in the pause reported.
        let mut before = Duration::ZERO;
        loop {
            let mut freeze = self.proc.freeze_leaving(survey.clone())?;
            freeze.stopped_before(before);
            let mut threads = freeze.threads().to_vec();
            tids.renumber_as_target(&mut threads);
            // The target's nanotime: its time namespace's monotonic clock.
            let nanotime = monotonic_now() + self.clock_offset;
            let copy_start = std::time::Instant::now();
            let cap = goroutines::capture(&self.rt, &threads, &self.proc, Some(&pre));
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
                    &self.proc,
                );
                (img, seeds)
            });
            let copy_ns = copy_start.elapsed().as_nanos() as u64;
            // A goroutine running on a thread left asleep (asleep without leaving Go code: a
            // raw system call, a runtime lock): its registers are needed, so every thread is
            // stopped (once: then none is left asleep).
            let asleep_running = cap.running_on.iter().any(|&t| {
                survey
                    .asleep
                    .iter()
                    .any(|a| a.tid == tids.to_ours(t as i32))
            });
            if asleep_running {
                before = freeze.thaw();
                pre.recycle(&self.rt);
                survey.asleep.clear();
                pre.settle(&self.rt, &self.proc, &HashSet::new());
                continue;
            }
            if attempt < MAX_ATTEMPTS && cap.in_transition {
                before = freeze.thaw();
                pre.recycle(&self.rt);
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            if self.fp_registers {
                running_fp(&self.rt, &freeze, &cap, &tids, &mut threads);
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

    /// [`LiveTarget::snapshot_progress`] for output that does not need every goroutine at
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
        let (copy, pause) = self.copy_thawed(None, progress)?;
        let (snap, n, ..) = self.build_with(copy, pause, progress, None, fold, sink)?;
        Ok((snap, n))
    }

    /// Builds the snapshot from a copy (the target may run again, or still be held).
    fn build(
        &self,
        copy: FrozenCopy,
        pause: Duration,
        progress: &mut dyn Progress,
    ) -> Result<Snapshot, DumpError> {
        self.build_kept(copy, pause, progress, Stacks::LetGo)
            .map(|(snap, kept)| {
                crate::parts::drop_aside(kept);
                snap
            })
    }

    /// [`LiveTarget::build`], also returning the copied memory (g structs, and the stacks
    /// `stacks` says).
    fn build_kept(
        &self,
        copy: FrozenCopy,
        pause: Duration,
        progress: &mut dyn Progress,
        stacks: Stacks,
    ) -> Result<(Snapshot, Kept), DumpError> {
        let mut all = KeepAll::default();
        let model = (!self.stacks_only).then_some(stacks);
        // Read meanwhile, for the file locks after the walk.
        let table = model.map(|_| files::LockTable::start());
        let (mut snap, _, mut kept, waits) =
            self.build_with(copy, pause, progress, model, &KeepAll::fold, &mut |v| {
                all.sink(v)
            })?;
        snap.goroutines = all.into_vec();
        let (
            Some(Waits {
                semas,
                found,
                chans,
                apart,
            }),
            Some(table),
        ) = (waits, table)
        else {
            return Ok((snap, kept));
        };
        // What blocked goroutines wait on: read after the thaw, validated against the copy.
        progress.stage("reading what blocked goroutines wait on", 0, 0);
        let gs = &mut snap.goroutines;
        // The walk was the copy's last reader when its stacks went during it.
        if apart && stacks == Stacks::LetGo {
            kept.image = MemoryImage::new();
            crate::startup::release_freed();
        }
        // Naming reads only stacks from the copy after this; a second look reads the g
        // structs again.
        if let (true, Stacks::Naming, Some(keys)) = (apart, stacks, &kept.keys) {
            kept.gs_gone = goroutines::let_go_of_gs(&mut kept.image, keys);
            crate::startup::release_freed();
        }
        snap.objects = blocked::objects(
            &self.rt,
            &kept.image,
            gs,
            &kept.threads,
            &self.proc,
            semas,
            chans,
            found,
        );
        let retries = || blocked::flock_retries(&self.rt, &snap.goroutines);
        snap.file_locks = Some(files::read(self.proc.pid(), &snap, retries, table));
        Ok((snap, kept))
    }

    /// Builds the snapshot from a copy, its goroutines going to `fold` and `sink` (see
    /// [`LiveTarget::stream`]); also returns their count, the copied memory and the threads.
    /// For a model (`model`, what to keep of the stacks) the semaphore table is read before
    /// the goroutines are built, and each chunk's pending defers, semaphore waits and possible
    /// holders as it is built (while its stacks are at hand); what was read is returned for
    /// [`blocked::objects`].
    pub(super) fn build_with<C: Default + Send>(
        &self,
        copy: FrozenCopy,
        pause: Duration,
        progress: &mut dyn Progress,
        model: Option<Stacks>,
        fold: &(dyn Fn(&mut C, Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<(Snapshot, usize, Kept, Option<Waits>), DumpError> {
        let FrozenCopy {
            threads,
            tids,
            nanotime,
            mut cap,
            threads_img,
            pre,
            copy_ns,
            precopy_ns,
        } = copy;
        let copied_bytes =
            cap.copied_bytes() + threads_img.as_ref().map_or(0, |(i, _)| i.total_bytes());
        let stacks_reused = cap.reused() as u64;
        let keys = Some(std::mem::take(&mut cap.keys));
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
        let rt = &self.rt;
        // For a model, the semaphore table and the locks its waits may belong to are read
        // before the goroutines are built; each chunk's pending defers, semaphore waits and
        // possible holders of those locks as it is built, while its stacks are at hand.
        let pre = model.map(|stacks| {
            progress.stage("reading what blocked goroutines wait on", 0, 0);
            let keys = keys.as_deref();
            let spans = || match stacks {
                Stacks::LetGo | Stacks::Naming => stack_spans(rt, &image, keys),
                Stacks::Kept => None,
            };
            // Where each chunk's stacks lie is found on a thread of its own meanwhile.
            let (spans, (semas, locks, finder)) = crate::parts::beside(spans, || {
                let mut semas = blocked::Semas::read(rt, &image, &self.proc);
                let locks = semas.read_locks(&image, &self.proc);
                let finder = holders::Finder::of_locks(rt, &image, &self.proc, &locks);
                (semas, locks, finder)
            });
            // The stacks go chunk by chunk, unless values are read from them after, or the
            // possible holders are searched after (too many locks to search for).
            let apart = match spans {
                Some(spans) if locks.is_empty() || finder.is_some() => {
                    stacks_apart(&mut image, keys.map_or(0, <[_]>::len), &spans)
                }
                _ => Vec::new(),
            };
            (semas, finder, apart)
        });
        let (pre, apart) = match pre {
            Some((semas, finder, apart)) => (Some((semas, finder)), Some(apart)),
            None => (None, None),
        };
        let found = std::sync::Mutex::new(holders::Found::new());
        let naming = model == Some(Stacks::Naming);
        let first_waiters = crate::analyze::deadlock::FirstWaiters::default();
        let chans = std::sync::Mutex::new(Vec::new());
        let step =
            |i: usize, rd: &(dyn crate::target::MemoryReader + Sync), gs: &mut [Goroutine]| {
                crate::runtime::defers::read(rt, &rd, gs, &self.proc);
                // What is read after the walk: the stack a thread is on; for naming locks, the
                // frames of their holders and first waiters, and of a file lock's waiters.
                let mut keep = HashSet::new();
                if let Some((semas, finder)) = &pre {
                    semas.assign(gs);
                    if let Some(f) = finder {
                        let mut hs = f.search(rt, rd, gs, &threads);
                        if naming {
                            keep.extend(hs.iter().filter_map(|(_, h)| {
                                Some(gs.iter().find(|g| g.id == h.goroutine)?.addr)
                            }));
                        }
                        found
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .append(&mut hs);
                    }
                }
                if naming {
                    keep.extend(first_waiters.of_chunk(i, gs));
                }
                // The chunk's channel waits (sudogs read from the running target), last: what
                // is done above sees the semaphore waits alone, as it did when these were read
                // after the walk.
                let frontier = blocked::chan_frontier(rt, &rd, gs);
                let mut c = blocked::chan_waits(rt, &rd, gs, &self.proc, frontier);
                chans
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .append(&mut c);
                gs.iter()
                    .filter(|g| {
                        g.thread.is_some()
                            || keep.contains(&g.addr)
                            || naming && blocked::reads_stack_later(g)
                    })
                    .map(|g| g.addr)
                    .collect()
            };
        let apart_any = apart.as_ref().is_some_and(|a| !a.is_empty());
        let each = apart.map(|stacks| walk::Each {
            stacks,
            step: &step,
            kept: Default::default(),
            freed: Default::default(),
        });
        let built = build_streamed(
            rt,
            &image,
            each.as_ref(),
            &threads,
            nanotime,
            meta,
            progress,
            &ours,
            sink,
        );
        if let Some(each) = each {
            image.absorb(each.kept.into_inner().unwrap_or_else(|e| e.into_inner()));
            crate::startup::release_freed();
        }
        let (mut snap, n) = built.map_err(|e| {
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
        let waits = pre.map(|(semas, finder)| {
            let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
            let mut chans = chans.into_inner().unwrap_or_else(|e| e.into_inner());
            chans.sort_unstable();
            chans.dedup();
            Waits {
                semas,
                found: finder.map(|f| (f, found)),
                chans,
                apart: apart_any,
            }
        });
        Ok((
            snap,
            n,
            Kept {
                image,
                threads,
                keys,
                gs_gone: Vec::new(),
            },
            waits,
        ))
    }
}

/// What a model build read as it built the goroutines, for [`blocked::objects`]: the
/// semaphore table, and the search for possible holders with what it found.
pub(super) struct Waits {
    semas: blocked::Semas,
    found: Option<(holders::Finder, holders::Found)>,
    /// The channels goroutines wait on ([`blocked::chan_waits`]), sorted, each once.
    chans: Vec<u64>,
    /// The stacks were apart, let go chunk by chunk ([`Stacks`]).
    apart: bool,
}

/// What a model build keeps of the copied stacks once its goroutines are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stacks {
    /// Every stack: values are read from them after.
    Kept,
    /// Only those of goroutines on a thread (their threads' stacks are unwound after the
    /// walk): every other goes as soon as its chunk of goroutines is built.
    LetGo,
    /// [`Stacks::LetGo`], also keeping those whose frames may name a lock or a file lock: its
    /// holders ([`blocked::reads_stack_later`], the possible holders found), its first waiters
    /// ([`crate::analyze::deadlock::FirstWaiters`]), a file lock's waiters. The g structs go
    /// once the goroutines are built (their channel waits read with them); a second look reads
    /// them again ([`Kept::gs_gone`]).
    Naming,
}

/// Where the copied stacks of `image`'s goroutines lie, for [`stacks_apart`]: (lowest
/// address, end, chunk of a walk) of every stack that is not dead, by `keys` (each g of
/// `allgs` in order with its key as copied), ascending. `None` when the keys are not those of
/// the image's `allgs`, or two goroutines' stacks overlap (then which is whose is not certain).
fn stack_spans(
    rt: &Runtime,
    image: &MemoryImage,
    keys: Option<&[(u64, Option<goroutines::StackKey>)]>,
) -> Option<Vec<(u64, u64, usize)>> {
    let (Some(keys), Ok(gs)) = (keys, goroutines::all_g_addrs(rt, image)) else {
        return None;
    };
    if !keys.iter().map(|&(g, _)| g).eq(gs.iter().copied()) {
        return None;
    }
    let mut bounds: Vec<(u64, u64, usize)> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, (_, k))| {
            let k = k.as_ref()?;
            let (lo, hi) = k.stack();
            (lo < hi && !k.dead(rt.version())).then_some((lo, hi, i / CHUNK))
        })
        .collect();
    bounds.sort_unstable();
    if bounds.windows(2).any(|w| w[1].0 < w[0].1) {
        return None;
    }
    Some(bounds)
}

/// The copied stacks of `image`'s `n` goroutines moved out of it, one image per chunk of a
/// walk, by where they lie (`bounds`, [`stack_spans`]).
fn stacks_apart(
    image: &mut MemoryImage,
    n: usize,
    bounds: &[(u64, u64, usize)],
) -> Vec<std::sync::Mutex<MemoryImage>> {
    let spans: Vec<(u64, u64)> = bounds.iter().map(|&(lo, hi, _)| (lo, hi)).collect();
    let parts = image.split_by(n.div_ceil(CHUNK), |a, bytes| {
        walk::inside_which(&spans, a, bytes.len() as u64).map(|j| bounds[j].2)
    });
    parts.into_iter().map(std::sync::Mutex::new).collect()
}

/// What a snapshot copied besides its model, kept for values: the memory (stacks and g
/// structs) and the stopped threads' registers (thread ids as goroscope numbers them).
#[derive(Debug, Default)]
pub struct Kept {
    pub image: MemoryImage,
    pub threads: Vec<ThreadState>,
    /// Each g of `allgs` with its key as copied, when the copy was taken frozen: a second
    /// look ([`LiveTarget::look_again`]) checks against them.
    pub keys: Option<Vec<(u64, Option<goroutines::StackKey>)>>,
    /// Where the g structs lay, when they were let go ([`goroutines::let_go_of_gs`]): a
    /// second look reads them again through a small buffer.
    pub gs_gone: Vec<(u64, u64)>,
}

impl Kept {
    /// Lets go of the copied stacks of every goroutine but those of `keep` (g addresses):
    /// what is left reads their frames, and serves a second look ([`LiveTarget::look_again`]
    /// walks only the goroutines that ran since, whose stacks it copies again). The Ms,
    /// thread stacks and g structs (unless let go already: [`Kept::gs_gone`]) stay. Without
    /// keys nothing is let go.
    pub(crate) fn keep_stacks_of(&mut self, keep: &HashSet<u64, crate::unwind::Seeded>) {
        let Some(keys) = &self.keys else { return };
        let mut stacks: Vec<(u64, u64)> = keys
            .iter()
            .filter(|(g, _)| !keep.contains(g))
            .filter_map(|(_, k)| Some(k.as_ref()?.stack()))
            .filter(|&(lo, hi)| lo < hi)
            .collect();
        stacks.sort_unstable();
        let gone = self
            .image
            .take_where(|a, bytes| walk::inside_which(&stacks, a, bytes.len() as u64).is_some());
        drop(gone);
        crate::startup::release_freed();
    }
}

impl LiveTarget {
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

/// Reads the floating-point registers of the threads (target ids, as `threads` has them) whose
/// M runs a goroutine, while `freeze` holds them: their registers change once it thaws.
fn running_fp(
    rt: &Runtime,
    freeze: &Freeze<'_>,
    cap: &goroutines::Capture,
    tids: &ns::TidMap,
    threads: &mut [ThreadState],
) {
    for (_, key) in &cap.keys {
        let Some(m) = key.as_ref().map(|k| k.m()).filter(|&m| m != 0) else {
            continue;
        };
        let Some(m) = goroutines::read_m(rt, &cap.gs_img, m) else {
            continue;
        };
        let Some(t) = threads.iter_mut().find(|t| t.tid as u64 == m.procid) else {
            continue;
        };
        if t.fp.is_empty() {
            t.fp = freeze.fp_registers(tids.to_ours(t.tid)).unwrap_or_default();
        }
    }
}

/// What the frozen window copied, and the pre-copy it completes.
pub(super) struct FrozenCopy {
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

/// Which threads a freeze stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Every thread: all their registers are needed (a core's, the leak search's roots,
    /// thread stacks), or the target stays stopped (`attach --hold`).
    All,
    /// The threads that may run: those asleep in a blocking call are left so
    /// ([`live::asleep`]) and checked after the thaw ([`LiveTarget::copy_thawed`]).
    Awake,
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

/// Whether the runtime prints labels in tracebacks: GODEBUG `tracebacklabels`, default 0
/// before Go 1.27 and 1 from it, then the binary's DefaultGODEBUG, then the process's
/// GODEBUG environment variable, in the order the runtime applies them (`parsedebugvars`).
fn traceback_labels(rt: &Runtime, pid: i32) -> bool {
    let env = proc::environ(pid).unwrap_or_default();
    traceback_labels_env(rt, &env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MemoryReader;

    /// Only the copied stacks of the goroutines not kept go: g structs, Ms, a kept goroutine's
    /// stack and a range that runs past a stack's end stay.
    #[test]
    fn keep_stacks_of_lets_go_of_other_stacks_only() {
        let (g1, g2, g3) = (0x1000, 0x1200, 0x1400);
        let mut image = MemoryImage::new();
        for (addr, len) in [
            (g1, 456), // g structs
            (g2, 456),
            (g3, 456),
            (0x11800, 0x800), // g1's stack, its used top
            (0x21c00, 0x400), // g2's stack
            (0x30000, 0x100), // an M
            (0x41f00, 0x200), // starts in g3's stack, ends past it
        ] {
            image.insert(addr, vec![7; len]);
        }
        let mut kept = Kept {
            image,
            threads: Vec::new(),
            keys: Some(vec![
                (g1, Some(goroutines::StackKey::of_stack(0x10000, 0x12000))),
                (g2, Some(goroutines::StackKey::of_stack(0x20000, 0x22000))),
                (g3, Some(goroutines::StackKey::of_stack(0x40000, 0x42000))),
                (0x1600, None),
            ]),
            gs_gone: Vec::new(),
        };
        kept.keep_stacks_of(&[g2].into_iter().collect());
        let has =
            |kept: &Kept, a: u64, len: usize| kept.image.read_at(a, &mut vec![0; len]).is_ok();
        assert!(has(&kept, g1, 456) && has(&kept, g2, 456) && has(&kept, g3, 456));
        assert!(!has(&kept, 0x11800, 1), "g1's stack was not kept");
        assert!(has(&kept, 0x21c00, 0x400), "g2's stack was kept");
        assert!(has(&kept, 0x30000, 0x100));
        assert!(has(&kept, 0x41f00, 0x200));
        // Without keys nothing goes.
        kept.keys = None;
        kept.keep_stacks_of(&Default::default());
        assert!(has(&kept, 0x21c00, 0x400));
    }
}
