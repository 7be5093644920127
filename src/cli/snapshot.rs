//! `goroscope snapshot`: a snapshot file of a process, with every frame's values or with a
//! core written in the same frozen window.

use super::{Ctx, TargetArg, btvalues, open_live, report, take};
use crate::render::safe::text;
use crate::snapshot::Snapshot;
use std::path::PathBuf;

/// `goroscope snapshot`: a snapshot of a process (and with `--core`, a core file written in
/// the same frozen window; with `values`, every frame's values), saved to `output` within `deadline`.
pub(super) fn snapshot(
    pid: i32,
    output: Option<PathBuf>,
    core: Option<PathBuf>,
    deadline: Option<std::time::Duration>,
    values: bool,
    ro: &Ctx,
) -> Result<(), String> {
    let quiet = ro.quiet;
    let deadline = deadline.map(|d| crate::startup::started() + d);
    let snap = match &core {
        None if values => snapshot_values(pid, ro)?,
        None => take(&TargetArg::Pid(pid), ro)?,
        Some(path) => snapshot_core(pid, path, ro)?,
    };
    if let Some(output) = output {
        let end = crate::snapshot::store::save(&snap, &output, deadline)
            .map_err(|e| format!("{}: {e}", output.display()))?;
        if end.left_out > 0 {
            // Said even with -q: the file is not the whole snapshot.
            eprintln!(
                "goroscope: deadline passed: wrote {} of {} goroutines to {}, {} left out",
                end.written,
                snap.goroutines.len(),
                output.display(),
                end.left_out
            );
        } else if !quiet {
            eprintln!("goroscope: wrote {}", output.display());
        }
    }
    super::let_go(snap);
    Ok(())
}

/// `snapshot --values`: a snapshot of a live process, then, once it runs again, every frame's
/// values read from the copy (then the process). Without DWARF the snapshot is kept and says
/// so on stderr.
fn snapshot_values(pid: i32, ro: &Ctx) -> Result<Snapshot, String> {
    let mut live = open_live(pid, ro)?;
    live.fp_registers = true;
    let (mut snap, kept) = live.snapshot_kept().map_err(|e| e.to_string())?;
    if !ro.quiet {
        report(&TargetArg::Pid(pid), &snap);
    }
    let src = btvalues::Source {
        rt: &live.rt,
        snapshot: &kept.image,
        process: Some(&live.proc),
        threads: &kept.threads,
    };
    match btvalues::fill_all(&src, &mut snap.goroutines).before {
        Some(why) => eprintln!("goroscope: warning: no values saved: {}", text(&why)),
        None => snap.meta.values = true,
    }
    Ok(snap)
}

/// A snapshot of a live process and, from the same frozen window, an ELF core at `path`.
fn snapshot_core(pid: i32, path: &std::path::Path, ro: &Ctx) -> Result<Snapshot, String> {
    let quiet = ro.quiet;
    use crate::target::core::write;
    let session = open_live(pid, ro)?;
    let arch = session.rt.bin.arch;
    let (snap, captured) = session
        .snapshot_with(|freeze| {
            // A core holds every thread's floating-point registers too (NT_PRFPREG).
            let threads: Vec<_> = freeze
                .threads()
                .iter()
                .map(|t| crate::target::ThreadState {
                    fp: freeze.fp_registers(t.tid).unwrap_or_default(),
                    ..t.clone()
                })
                .collect();
            write::capture(pid, arch, &threads)
        })
        .map_err(|e| e.to_string())?;
    let captured =
        captured.map_err(|e| format!("cannot read process {pid}'s memory for the core: {e}"))?;
    let size = write::write(path, &captured)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !quiet {
        eprintln!(
            "goroscope: {} goroutines, target paused {:.1} ms; wrote core {} ({} threads, {} bytes of memory, {} bytes on disk at most)",
            snap.goroutines.len(),
            snap.meta.pause_ns as f64 / 1e6,
            path.display(),
            captured.threads.len(),
            captured.copied_bytes(),
            size
        );
    }
    Ok(snap)
}
