//! The blocked-on view: every channel and sync primitive goroutines wait on, with its own
//! state, its waiters grouped by what they wait for, and a short list of suspects (objects
//! with the most waiters) first; beside each, the goroutines known to hold it.

use super::safe::text;
use crate::snapshot::{Goroutine, Holder, Snapshot, SyncObject};
use std::io::{self, Write};

/// Goroutine ids listed per line before abbreviating.
const MAX_IDS: usize = 10;
/// Suspects listed.
const SUSPECTS: usize = 5;

/// Writes the view for the goroutines `keep` accepts.
pub fn render(
    snap: &Snapshot,
    keep: impl Fn(&Goroutine) -> bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let gs: Vec<&Goroutine> = snap.goroutines.iter().filter(|g| keep(g)).collect();
    let objects: Vec<&SyncObject> = snap
        .objects
        .iter()
        .filter(|o| {
            gs.iter()
                .any(|g| g.blocked_on.iter().any(|b| b.addr == o.addr))
        })
        .collect();
    write_suspects(&gs, &objects, out)?;
    for o in &objects {
        write_object(&gs, o, out)?;
    }
    write_idle(snap, &objects, out)?;
    write_unidentified(&gs, out)?;
    Ok(())
}

/// The suspects: the first objects (most waiters first) with their waiter counts and longest
/// wait, or a line saying no goroutine is blocked on an object goroscope identified.
fn write_suspects(
    gs: &[&Goroutine],
    objects: &[&SyncObject],
    out: &mut dyn Write,
) -> io::Result<()> {
    if objects.is_empty() {
        writeln!(
            out,
            "no goroutine is blocked on a channel or sync primitive goroscope could identify"
        )?;
    } else {
        writeln!(out, "suspects (most waiters first):")?;
        for o in objects.iter().take(SUSPECTS) {
            let members: Vec<&&Goroutine> = gs
                .iter()
                .filter(|g| g.blocked_on.iter().any(|b| b.addr == o.addr))
                .collect();
            let minutes = members.iter().map(|g| g.wait_minutes).max().unwrap_or(0);
            write!(
                out,
                "  {} at {:#x}: {} waiter{}",
                text(&o.kind),
                o.addr,
                members.len(),
                if members.len() == 1 { "" } else { "s" }
            )?;
            if minutes > 0 {
                write!(out, ", blocked up to {minutes} minutes")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// One object: its state, its holders, and its waiters by what they wait for.
fn write_object(gs: &[&Goroutine], o: &SyncObject, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    write!(out, "{} at {:#x}", text(&o.kind), o.addr)?;
    if !o.summary.is_empty() {
        write!(out, " ({})", text(&o.summary))?;
    }
    if o.kind == "chan" {
        let n = |s: &str| {
            gs.iter()
                .filter(|g| g.state.starts_with(s) && g.blocked_on.iter().any(|b| b.addr == o.addr))
                .count()
        };
        write!(
            out,
            ": {} senders, {} receivers, {} in select",
            n("chan send"),
            n("chan receive"),
            n("select")
        )?;
    }
    writeln!(out)?;
    write_holders(o, out)?;
    let mut states: Vec<&str> = Vec::new();
    for g in gs {
        if g.blocked_on.iter().any(|b| b.addr == o.addr) && !states.contains(&&*g.state) {
            states.push(&g.state);
        }
    }
    for st in states {
        let ids: Vec<u64> = gs
            .iter()
            .filter(|g| *g.state == *st && g.blocked_on.iter().any(|b| b.addr == o.addr))
            .map(|g| g.id)
            .collect();
        write!(
            out,
            "    {} goroutine{} in {}:",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" },
            text(st)
        )?;
        write_ids(&ids, out)?;
    }
    Ok(())
}

/// The locks held that none of the goroutines shown waits for, with their holders.
fn write_idle(snap: &Snapshot, objects: &[&SyncObject], out: &mut dyn Write) -> io::Result<()> {
    let idle: Vec<&SyncObject> = snap
        .objects
        .iter()
        .filter(|o| !o.holders.is_empty() && !objects.iter().any(|w| w.addr == o.addr))
        .collect();
    if !idle.is_empty() {
        writeln!(out)?;
        writeln!(out, "locks held, no waiter identified:")?;
        for o in idle {
            writeln!(out, "  {} at {:#x}", text(&o.kind), o.addr)?;
            write_holders(o, out)?;
        }
    }
    Ok(())
}

/// The goroutines blocked forever (a nil channel, an empty select), then those blocked on
/// an object goroscope could not identify.
fn write_unidentified(gs: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    let forever: Vec<&&Goroutine> = gs.iter().filter(|g| is_forever(&g.state)).collect();
    if !forever.is_empty() {
        writeln!(out)?;
        write!(
            out,
            "{} goroutine{} blocked forever (nil channel or empty select):",
            forever.len(),
            if forever.len() == 1 { "" } else { "s" }
        )?;
        for g in forever.iter().take(MAX_IDS) {
            write!(out, " {}", g.id)?;
        }
        if forever.len() > MAX_IDS {
            write!(out, " (+{} more)", forever.len() - MAX_IDS)?;
        }
        writeln!(out)?;
    }
    let unknown: Vec<&&Goroutine> = gs
        .iter()
        .filter(|g| g.blocked_on.is_empty() && is_sync_wait(&g.state) && !is_forever(&g.state))
        .collect();
    if !unknown.is_empty() {
        writeln!(out)?;
        write!(
            out,
            "{} goroutine{} blocked on an object goroscope could not identify:",
            unknown.len(),
            if unknown.len() == 1 { "" } else { "s" }
        )?;
        for g in unknown.iter().take(MAX_IDS) {
            write!(out, " {} [{}]", g.id, text(&g.state))?;
        }
        if unknown.len() > MAX_IDS {
            write!(out, " (+{} more)", unknown.len() - MAX_IDS)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `    held by goroutine 7 (read lock) in main.f at /src/f.go:12 [defer]`, one line a holder.
fn write_holders(o: &SyncObject, out: &mut dyn Write) -> io::Result<()> {
    for h in &o.holders {
        writeln!(
            out,
            "    held by goroutine {} ({} lock) in {}",
            h.goroutine,
            text(&h.lock),
            holding_frame(h)
        )?;
    }
    Ok(())
}

/// Where a holder holds its lock, and how that is known: `main.f at /src/f.go:12 [defer]`.
pub(crate) fn holding_frame(h: &Holder) -> String {
    format!(
        "{} at {}:{} [{}]",
        text(&h.function),
        text(&h.file),
        h.line,
        text(&h.how)
    )
}

/// The holders view (the session's `holders`): every lock known to be held, its holders, and
/// who waits for it.
pub fn holders(
    snap: &Snapshot,
    keep: impl Fn(&Goroutine) -> bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let held: Vec<&SyncObject> = snap
        .objects
        .iter()
        .filter(|o| !o.holders.is_empty())
        .collect();
    if held.is_empty() {
        return writeln!(
            out,
            "no goroutine is known to hold a lock (goroscope knows holders by their pending deferred unlocks)"
        );
    }
    for (i, o) in held.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write!(out, "{} at {:#x}", text(&o.kind), o.addr)?;
        if !o.summary.is_empty() {
            write!(out, " ({})", text(&o.summary))?;
        }
        writeln!(out)?;
        write_holders(o, out)?;
        let ids: Vec<u64> = snap
            .goroutines
            .iter()
            .filter(|g| keep(g) && g.blocked_on.iter().any(|b| b.addr == o.addr))
            .map(|g| g.id)
            .collect();
        write!(
            out,
            "    {} goroutine{} waiting",
            ids.len(),
            if ids.len() == 1 { "" } else { "s" }
        )?;
        if !ids.is_empty() {
            write!(out, ":")?;
        }
        write_ids(&ids, out)?;
    }
    Ok(())
}

/// Waits nothing can end: nil-channel operations and `select {}`.
/// Goroutine ids on the rest of a line, at most [`MAX_IDS`] of them, and the line's end.
fn write_ids(ids: &[u64], out: &mut dyn Write) -> io::Result<()> {
    for id in ids.iter().take(MAX_IDS) {
        write!(out, " {id}")?;
    }
    if ids.len() > MAX_IDS {
        write!(out, " (+{} more)", ids.len() - MAX_IDS)?;
    }
    writeln!(out)
}

fn is_forever(state: &str) -> bool {
    state.ends_with("(nil chan)") || state == "select (no cases)"
}

fn is_sync_wait(state: &str) -> bool {
    state.starts_with("chan ")
        || state.starts_with("select")
        || state.starts_with("sync.")
        || state == "semacquire"
}
