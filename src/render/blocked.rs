//! The blocked-on view: every channel and sync primitive goroutines wait on, with its own
//! state, its waiters grouped by what they wait for, and a short list of suspects (objects
//! with the most waiters) first; beside each, the goroutines known to hold it.

use super::safe::text;
use crate::snapshot::{Goroutine, Holder, Snapshot, SyncObject};
use std::collections::HashMap;
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
    let waiting = waiters(gs.iter().copied());
    let objects: Vec<(&SyncObject, &[&Goroutine])> = snap
        .objects
        .iter()
        .filter_map(|o| Some((o, waiting.get(&o.addr)?.as_slice())))
        .collect();
    write_suspects(&objects, out)?;
    for (o, members) in &objects {
        write_object(o, members, out)?;
    }
    write_idle(snap, &waiting, out)?;
    write_unidentified(&gs, out)?;
    Ok(())
}

/// The goroutines of `gs` that wait on each object (its address), in the order of `gs`, each
/// once: every list of the view is read from here, in one pass over the goroutines (a pass
/// for each object took as long as the dump with thousands of objects).
fn waiters<'a>(gs: impl Iterator<Item = &'a Goroutine>) -> HashMap<u64, Vec<&'a Goroutine>> {
    let mut by: HashMap<u64, Vec<&Goroutine>> = HashMap::new();
    for g in gs {
        for (i, b) in g.blocked_on.iter().enumerate() {
            if g.blocked_on[..i].iter().all(|e| e.addr != b.addr) {
                by.entry(b.addr).or_default().push(g);
            }
        }
    }
    by
}

/// The suspects: the first objects (most waiters first) with their waiter counts and longest
/// wait, or a line saying no goroutine is blocked on an object goroscope identified.
fn write_suspects(objects: &[(&SyncObject, &[&Goroutine])], out: &mut dyn Write) -> io::Result<()> {
    if objects.is_empty() {
        writeln!(
            out,
            "no goroutine is blocked on a channel or sync primitive goroscope could identify"
        )?;
    } else {
        writeln!(out, "suspects (most waiters first):")?;
        for (o, members) in objects.iter().take(SUSPECTS) {
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

/// One object: its state, its holders, and its waiters (`members`) by what they wait for.
fn write_object(o: &SyncObject, members: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    writeln!(out)?;
    write!(out, "{} at {:#x}", text(&o.kind), o.addr)?;
    if !o.summary.is_empty() {
        write!(out, " ({})", text(&o.summary))?;
    }
    if o.kind == "chan" {
        let n = |s: &str| members.iter().filter(|g| g.state.starts_with(s)).count();
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
    for g in members {
        if !states.contains(&&*g.state) {
            states.push(&g.state);
        }
    }
    for st in states {
        let ids: Vec<u64> = members
            .iter()
            .filter(|g| *g.state == *st)
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

/// The locks held that none of the goroutines shown waits for (`waiting`, [`waiters`]), with
/// their holders.
fn write_idle(
    snap: &Snapshot,
    waiting: &HashMap<u64, Vec<&Goroutine>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let idle: Vec<&SyncObject> = snap
        .objects
        .iter()
        .filter(|o| !o.holders.is_empty() && !waiting.contains_key(&o.addr))
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
    let waiting = waiters(snap.goroutines.iter().filter(|g| keep(g)));
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
        let ids: Vec<u64> = waiting
            .get(&o.addr)
            .map_or(&[][..], Vec::as_slice)
            .iter()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{BlockedOn, Goroutine};

    fn waiting(id: u64, state: &str, on: &[u64], system: bool) -> Goroutine {
        Goroutine {
            id,
            state: state.into(),
            system,
            wait_minutes: id as i64,
            blocked_on: on
                .iter()
                .map(|&addr| BlockedOn {
                    kind: "chan".into(),
                    addr,
                    sudog: 0,
                })
                .collect(),
            ..Goroutine::default()
        }
    }

    fn view(snap: &Snapshot, holders_view: bool) -> String {
        let mut out = Vec::new();
        let keep = |g: &Goroutine| !g.system;
        if holders_view {
            holders(snap, keep, &mut out).unwrap();
        } else {
            render(snap, keep, &mut out).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    /// Each object's waiters are those the filter keeps, in the snapshot's order, a goroutine
    /// counted once however many of its waits name the object; a held lock with no waiter
    /// kept is idle.
    #[test]
    fn each_object_lists_its_kept_waiters_once_in_order() {
        let mutex = SyncObject {
            kind: "sync.Mutex".into(),
            addr: 0x20,
            holders: vec![Holder {
                goroutine: 9,
                lock: "write".into(),
                function: "main.f".into(),
                file: "/src/f.go".into(),
                line: 3,
                how: "defer".into(),
            }],
            ..SyncObject::default()
        };
        let idle = SyncObject {
            addr: 0x30,
            ..mutex.clone()
        };
        let snap = Snapshot {
            goroutines: vec![
                waiting(4, "chan receive", &[0x10], false),
                waiting(5, "select", &[0x10, 0x10], false),
                waiting(6, "sync.Mutex.Lock", &[0x20], false),
                waiting(7, "chan receive", &[0x10], true),
                waiting(8, "select", &[0x10, 0x20], false),
                waiting(9, "sync.Mutex.Lock", &[0x30], true),
            ],
            objects: vec![
                SyncObject {
                    kind: "chan".into(),
                    addr: 0x10,
                    ..SyncObject::default()
                },
                mutex,
                idle,
            ],
            ..Snapshot::default()
        };
        // The reference: each object's waiters by a filter of the snapshot's goroutines (kept,
        // naming the object in any of their waits), ids in the snapshot's order.
        let ids = |addr: u64, state: Option<&str>| -> Vec<u64> {
            snap.goroutines
                .iter()
                .filter(|g| !g.system && g.blocked_on.iter().any(|b| b.addr == addr))
                .filter(|g| state.is_none_or(|s| *g.state == *s))
                .map(|g| g.id)
                .collect()
        };
        let list = |v: &[u64]| v.iter().map(|i| format!(" {i}")).collect::<String>();
        let blocked = view(&snap, false);
        for (addr, kind) in [(0x10, "chan"), (0x20, "sync.Mutex")] {
            let n = ids(addr, None).len();
            assert!(
                blocked.contains(&format!("  {kind} at {addr:#x}: {n} waiters")),
                "{blocked}"
            );
            for state in ["chan receive", "select", "sync.Mutex.Lock"] {
                let v = ids(addr, Some(state));
                let (m, s) = (v.len(), if v.len() == 1 { "" } else { "s" });
                let line = format!("    {m} goroutine{s} in {state}:{}\n", list(&v));
                assert_eq!(blocked.contains(&line), m > 0, "{line}\n{blocked}");
            }
        }
        assert!(
            blocked.contains("0 senders, 1 receivers, 2 in select"),
            "{blocked}"
        );
        // The lock nobody kept waits for is idle.
        assert!(
            blocked.ends_with("locks held, no waiter identified:\n  sync.Mutex at 0x30\n    held by goroutine 9 (write lock) in main.f at /src/f.go:3 [defer]\n"),
            "{blocked}"
        );
        let held = view(&snap, true);
        for addr in [0x20, 0x30] {
            let v = ids(addr, None);
            let (m, s) = (v.len(), if v.len() == 1 { "" } else { "s" });
            let colon = if v.is_empty() { "" } else { ":" };
            let line = format!("    {m} goroutine{s} waiting{colon}{}\n", list(&v));
            assert!(held.contains(&line), "{line}\n{held}");
        }
    }
}
