//! `goroscope deadlocks`: the verdicts, confirmed by a second look at a live target when
//! they rest on one moment, each lock named by what holds it when DWARF tells.

use super::{CoreArgs, Ctx, STATUS, TargetArg, load, open, progress, report, warn_core_problems};
use crate::analyze::deadlock::{self, Verdict};
use crate::capture::{Kept, Target};
use crate::render;
use crate::snapshot::{Snapshot, SyncObject};
use crate::unwind::Seeded;
use crate::values;
use std::collections::HashSet;
use std::io::{self, Write};

/// Least time from the end of the first snapshot's pause to the second look that confirms
/// a verdict resting on one moment.
const CONFIRM_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// A snapshot of a process or a core and the verdicts on it, their locks named
/// ([`name_locks`]); for a live target, each verdict that must be confirmed
/// ([`deadlock::needs_confirming`]) kept only when a second look at the target, at least
/// [`CONFIRM_AFTER`] after the first snapshot's pause, finds what it rests on unchanged
/// ([`deadlock::confirm_again`]).
fn verdicts_of(target: &TargetArg, ro: &Ctx) -> Result<(Snapshot, Vec<Verdict>), String> {
    let mut bar = progress::Bar::new(ro.quiet);
    crate::capture::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let opened = open(target, ro)?;
    let (snap, mut kept) = match &opened {
        Target::Live(l) => {
            let (s, k) = l
                .snapshot_kept_progress(&mut bar, crate::capture::Stacks::Naming)
                .map_err(|e| e.to_string())?;
            (s, Some(k))
        }
        Target::Core(c) => (
            c.snapshot_progress(&mut bar).map_err(|e| e.to_string())?,
            None,
        ),
    };
    bar.finish();
    if !ro.quiet {
        warn_core_problems(&opened);
        report(target, &snap);
    }
    // A lock held with waiters makes a verdict likely: the DWARF that names locks is read
    // beside the search for them.
    let likely = snap
        .objects
        .iter()
        .any(|o| o.held_by_state() == Some(true) && o.total_waiters() > 0);
    let rt = opened.rt();
    let (prog, mut found) = crate::parts::beside(
        || likely.then(|| values::Program::load(&rt.bin, rt.bias)),
        || {
            let found = deadlock::find(&snap);
            // Only the frames of the goroutines the verdicts name are read from the copy now.
            if let Some(k) = &mut kept {
                k.keep_stacks_of(&naming_goroutines(&snap, &found));
            }
            found
        },
    );
    name_locks(&opened, prog, kept.as_ref(), &snap, &mut found);
    let (Target::Live(live), Some(kept)) = (&opened, kept) else {
        return Ok((snap, found));
    };
    if !found.iter().any(deadlock::needs_confirming) {
        return Ok((snap, found));
    }
    // The first snapshot's pause ended this long after goroscope started.
    let m = &snap.meta;
    let thawed = crate::startup::started()
        + std::time::Duration::from_nanos(m.startup_ns + m.precopy_ns + m.pause_ns);
    std::thread::sleep(CONFIRM_AFTER.saturating_sub(thawed.elapsed()));
    let locks: Vec<&SyncObject> = found
        .iter()
        .filter(|v| deadlock::needs_confirming(v))
        .filter_map(|v| v.lock.as_ref())
        .filter_map(|l| snap.objects.iter().find(|o| o.addr == l.addr))
        .collect();
    let (moved, again, pause) = live
        .look_again(&snap, kept, &locks)
        .map_err(|e| e.to_string())?;
    if !ro.quiet {
        eprintln!(
            "goroscope: looked again to confirm {} verdict{} resting on one moment, target {}",
            locks.len(),
            if locks.len() == 1 { "" } else { "s" },
            if live.nonblocking {
                "not stopped (--nonblocking)".to_string()
            } else {
                format!("paused {:.1} ms", pause.as_secs_f64() * 1e3)
            }
        );
    }
    let confirmed = deadlock::confirm_again(&snap, found, &moved, &again);
    Ok((snap, confirmed))
}

/// The g addresses of the goroutines whose frames [`name_locks`] reads.
fn naming_goroutines(snap: &Snapshot, verdicts: &[Verdict]) -> HashSet<u64, Seeded> {
    let ids: HashSet<u64, Seeded> = deadlock::locks_to_name(verdicts)
        .into_iter()
        .flat_map(|(_, _, ids)| ids)
        .collect();
    snap.goroutines
        .iter()
        .filter(|g| ids.contains(&g.id))
        .map(|g| g.addr)
        .collect()
}

/// Names the verdicts' locks from the binary's DWARF ([`values::name_locks`]; `prog`, when
/// read already): the frames of the goroutines they name, read from the snapshot's copy
/// (`kept`, a live target's) or the core. Without DWARF the locks keep no name.
fn name_locks(
    opened: &Target,
    prog: Option<Result<values::Program, String>>,
    kept: Option<&Kept>,
    snap: &Snapshot,
    verdicts: &mut [Verdict],
) {
    let locks = deadlock::locks_to_name(verdicts);
    if locks.is_empty() {
        return;
    }
    let rt = opened.rt();
    let Ok(prog) = prog.unwrap_or_else(|| values::Program::load(&rt.bin, rt.bias)) else {
        return;
    };
    let (snapshot, rest, threads): (&dyn crate::target::MemoryReader, _, _) = match (opened, kept) {
        (Target::Live(l), Some(k)) => (
            &k.image,
            Some(&l.proc as &dyn crate::target::MemoryReader),
            &k.threads[..],
        ),
        (Target::Core(c), _) => (&c.mem, None, c.mem.core().threads()),
        _ => return,
    };
    let mem = values::Memory {
        snapshot,
        rest,
        rest_is_later: rest.is_some(),
        read_later: std::cell::Cell::new(false),
    };
    let func_name = |pc: u64| values::func_name(rt, pc);
    let thread = |g: &crate::snapshot::Goroutine| {
        g.thread
            .and_then(|t| threads.iter().find(|x| x.tid == t))
            .cloned()
    };
    let names = values::name_locks(&prog, &mem, &func_name, &snap.goroutines, &thread, &locks);
    deadlock::set_lock_names(verdicts, &names);
}

/// `goroscope deadlocks`: the verdicts on a process, a core, a snapshot file or a text dump;
/// the exit status 3 when there is one.
pub(super) fn deadlocks(
    target: Option<String>,
    format: &str,
    core: CoreArgs,
    ro: &Ctx,
    out: &mut dyn Write,
) -> Result<io::Result<()>, String> {
    let (snap, found) = match target.as_deref().map(|t| (t, t.parse::<i32>())) {
        Some((file, Err(_))) => {
            let snap = load(std::path::Path::new(file))?;
            let found = deadlock::find(&snap);
            (snap, found)
        }
        pid => verdicts_of(&TargetArg::new(pid.and_then(|p| p.1.ok()), core)?, ro)?,
    };
    if !found.is_empty() {
        STATUS.store(3, std::sync::atomic::Ordering::Relaxed);
    }
    let r = if format == "json" {
        render::deadlocks::json(&snap, &found, out)
    } else {
        render::deadlocks::plain(&snap, &found, out)
    };
    super::let_go(snap);
    Ok(r)
}
