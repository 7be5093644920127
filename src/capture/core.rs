//! A core file as a target: its executable, its memory spliced with the executable's, and
//! the same walk as a live target.

use super::{
    DumpError, Progress, build_snapshot, text_mapping, thread_stacks, traceback_labels_env,
};
use crate::binary::GoBinary;
use crate::runtime::blocked;
use crate::runtime::goroutines;
use crate::runtime::{OpenOptions, Runtime, RuntimeError};
use crate::snapshot::{Meta, Snapshot};
use crate::target::MemoryReader;
use crate::target::core::{self as corefile, CoreError, CoreFile, SplicedMemory};

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
pub struct CoreTarget {
    /// The core's memory, with the executable behind it.
    pub mem: SplicedMemory,
    /// Its runtime.
    pub rt: Runtime,
    /// The executable the core names, as opened for its user (read through `/proc/self/fd`).
    _exe: Option<std::fs::File>,
    /// Unwind every thread's own stack too ([`OpenOptions::thread_stacks`]).
    pub thread_stacks: bool,
    /// Read the stacks only ([`OpenOptions::stacks_only`]).
    pub stacks_only: bool,
}

impl CoreTarget {
    /// Opens a core file and its executable (`exe`, else the path the core names) and does
    /// discovery on the core's memory.
    pub fn open(
        core: &std::path::Path,
        exe: Option<&std::path::Path>,
        opts: OpenOptions,
    ) -> Result<CoreTarget, DumpError> {
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
        Ok(CoreTarget {
            mem,
            rt,
            _exe: exe_file,
            thread_stacks: opts.thread_stacks,
            stacks_only: opts.stacks_only,
        })
    }

    /// Builds the snapshot from the core.
    pub fn snapshot(&self) -> Result<Snapshot, DumpError> {
        self.snapshot_progress(&mut ())
    }

    /// [`CoreTarget::snapshot`], saying where it is on `progress`.
    pub(crate) fn snapshot_progress(
        &self,
        progress: &mut dyn Progress,
    ) -> Result<Snapshot, DumpError> {
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
        if !self.stacks_only {
            snap.objects =
                blocked::analyze(&self.rt, &self.mem, &mut snap.goroutines, threads, &());
        }
        // The crash traceback prints the goroutine of the thread that took the signal first.
        // From Go 1.22 that thread is also the one that aborts, whose NT_PRSTATUS is the
        // core's first; before, SIGQUIT was relayed from M to M and the last one aborted. A
        // core taken without a crash (gcore, `snapshot --core`: no signal) keeps allgs order.
        if self.rt.version().at_least(22)
            && core.signal().is_some()
            && let Some(first) = snap.threads.first().and_then(|t| t.goid)
            && let Some(i) = snap.goroutines.iter().position(|g| g.id == first)
        {
            let g = snap.goroutines.remove(i);
            snap.goroutines.insert(0, g);
        }
        Ok(snap)
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
/// [`CoreTarget`]); 0 when none has one, so no minutes are printed.
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
