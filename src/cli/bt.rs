//! `goroscope bt`: one goroutine's frames, delve's `bt` shape, with `--full` values and
//! pending defers, or its JSON.

use super::{CoreArgs, Ctx, TargetArg, btvalues, open, report, take};
use crate::capture::Target;
use crate::render;
use std::io::{self, Write};

/// Runs `bt` on `ids` (`PID GOID`, or `GOID` with `--core`).
pub(super) fn run(
    ids: &[u64],
    json: bool,
    full: bool,
    core: CoreArgs,
    ro: &Ctx,
    palette: render::color::Palette,
    out: &mut dyn Write,
) -> Result<io::Result<()>, String> {
    let quiet = ro.quiet;
    let (target, goid) = match (core.core.is_some(), ids) {
        (true, &[goid]) => (TargetArg::new(None, core)?, goid),
        (false, &[pid, goid]) => {
            let pid = i32::try_from(pid).map_err(|_| format!("{pid} is not a process id"))?;
            (TargetArg::new(Some(pid), core)?, goid)
        }
        (true, _) => {
            return Err(
                "with --core, bt takes only the goroutine id: goroscope bt --core FILE GOID".into(),
            );
        }
        (false, _) => {
            return Err("bt takes a process id and a goroutine id: goroscope bt PID GOID".into());
        }
    };
    // The pause is reported only once the goroutine is found: an error stays one line.
    let (snap, session) = if full {
        let mut session = open(&target, &Ctx { quiet: true, ..*ro })?;
        if let Target::Live(l) = &mut session {
            l.fp_registers = true;
        }
        let (snap, kept) = match &session {
            Target::Live(l) => {
                let (s, k) = l.snapshot_kept().map_err(|e| e.to_string())?;
                (s, Some(k))
            }
            Target::Core(c) => (c.snapshot().map_err(|e| e.to_string())?, None),
        };
        (snap, Some((session, kept)))
    } else {
        (take(&target, &Ctx { quiet: true, ..*ro })?, None)
    };
    let g = snap
        .goroutines
        .iter()
        .find(|g| g.id == goid)
        .ok_or_else(|| {
            format!(
                "no goroutine {goid} in {}; `goroscope grs {}` lists them",
                target.describe(),
                target.args()
            )
        })?;
    if !quiet {
        report(&target, &snap);
    }
    let mut g = g.clone();
    let notes = match &session {
        Some((Target::Live(l), Some(k))) => btvalues::fill(
            &btvalues::Source {
                rt: &l.rt,
                snapshot: &k.image,
                process: Some(&l.proc),
                threads: &k.threads,
            },
            &mut g,
        ),
        Some((Target::Core(c), _)) => btvalues::fill(
            &btvalues::Source {
                rt: &c.rt,
                snapshot: &c.mem,
                process: None,
                threads: c.mem.core().threads(),
            },
            &mut g,
        ),
        _ => btvalues::Notes::default(),
    };
    let (before, after) = (notes.before.as_deref(), notes.after);
    if json {
        // The notes go to stderr: stdout is the goroutine's JSON only.
        if !quiet {
            for n in before.into_iter().chain(after) {
                eprintln!("goroscope: {n}");
            }
        }
        Ok(render::safe::write_json(out, &g).and_then(|_| writeln!(out)))
    } else {
        let opts = render::bt::Options {
            palette,
            full,
            ..Default::default()
        };
        let line = |out: &mut dyn Write, n: Option<&str>| match n {
            Some(n) => writeln!(out, "{n}"),
            None => Ok(()),
        };
        Ok(line(out, before)
            .and_then(|_| render::bt::frames(&g, &opts, out))
            .and_then(|_| line(out, after)))
    }
}
