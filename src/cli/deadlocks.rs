//! `goroscope deadlocks`: the verdicts, confirmed by a second snapshot of a live target
//! when they rest on two moments.

use super::{CoreArgs, Ctx, STATUS, TargetArg, load, take};
use crate::render;
use crate::snapshot::Snapshot;
use std::io::{self, Write};

/// Pause before the second snapshot that confirms a verdict resting on two moments.
const CONFIRM_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// The deadlock verdicts of `snap`; for a live target with a verdict that must be confirmed
/// ([`crate::analyze::deadlock::needs_confirming`]), those of a second snapshot taken
/// [`CONFIRM_AFTER`] later, kept as [`crate::analyze::deadlock::confirm`] says.
fn confirmed_verdicts(
    snap: Snapshot,
    live: Option<TargetArg>,
    ro: &Ctx,
) -> Result<(Snapshot, Vec<crate::analyze::deadlock::Verdict>), String> {
    use crate::analyze::deadlock;
    let found = deadlock::find(&snap);
    let Some(target) = live.filter(|_| found.iter().any(deadlock::needs_confirming)) else {
        return Ok((snap, found));
    };
    std::thread::sleep(CONFIRM_AFTER);
    let again = take(&target, ro)?;
    let second = deadlock::confirm(&found, deadlock::find(&again));
    Ok((again, second))
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
    let (snap, live) = match target.as_deref().map(|t| (t, t.parse::<i32>())) {
        Some((file, Err(_))) => (load(std::path::Path::new(file))?, None),
        pid => {
            let target = TargetArg::new(pid.and_then(|p| p.1.ok()), core)?;
            (take(&target, ro)?, Some(target).filter(|t| !t.is_core()))
        }
    };
    let (snap, found) = confirmed_verdicts(snap, live, ro)?;
    if !found.is_empty() {
        STATUS.store(3, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(if format == "json" {
        render::deadlocks::json(&snap, &found, out)
    } else {
        render::deadlocks::plain(&snap, &found, out)
    })
}
