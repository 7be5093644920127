//! `goroscope deadlocks`: the verdicts of [`crate::analyze::deadlock`], the culprit first, and
//! the lock holders they rest on.

use super::safe::{text, write_json};
use crate::analyze::deadlock::{Culprit, FileVerdict, Lock, Verdict};
use crate::snapshot::{FileLocks, Name, Snapshot};
use serde::Serialize;
use std::io::{self, Write};

/// One holder as `deadlocks --format json` lists it.
#[derive(Serialize)]
struct HolderRow<'a> {
    object: u64,
    kind: &'a str,
    goroutine: u64,
    lock: &'a str,
    how: &'a str,
    function: &'a Name,
    file: &'a Name,
    line: u32,
}

#[derive(Serialize)]
struct Report<'a> {
    verdicts: &'a [Verdict],
    holders: Vec<HolderRow<'a>>,
    /// `null` when not read (a core, a snapshot without them).
    file_locks: Option<&'a FileLocks>,
}

/// `{"verdicts": [...], "holders": [...]}` and a newline.
pub fn json(snap: &Snapshot, verdicts: &[Verdict], out: &mut dyn Write) -> io::Result<()> {
    let holders = snap
        .objects
        .iter()
        .flat_map(|o| {
            o.holders.iter().map(move |h| HolderRow {
                object: o.addr,
                kind: &o.kind,
                goroutine: h.goroutine,
                lock: &h.lock,
                how: &h.how,
                function: &h.function,
                file: &h.file,
                line: h.line,
            })
        })
        .collect();
    write_json(
        out,
        &Report {
            verdicts,
            holders,
            file_locks: snap.file_locks.as_ref(),
        },
    )?;
    writeln!(out)
}

/// One paragraph a verdict: its first line names the culprit, its holding frame and the lock;
/// then one line a goroutine of the cycle. Without a verdict, one line saying so. Last, when
/// the snapshot has no file locks read, a line saying so.
pub fn plain(snap: &Snapshot, verdicts: &[Verdict], out: &mut dyn Write) -> io::Result<()> {
    if verdicts.is_empty() {
        let holds = snap.objects.iter().flat_map(|o| &o.holders);
        let held = holds.clone().filter(|h| h.how == "defer").count();
        let possible = holds.count() - held;
        writeln!(
            out,
            "no deadlock found ({held} lock hold{} known from pending deferred unlocks, {possible} possible by pointer or code; no goroutine waits for a lock it holds, and no wait cycle)",
            if held == 1 { "" } else { "s" }
        )?;
    }
    for (i, v) in verdicts.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        if let Some(f) = &v.file {
            file_lock(v, f, out)?;
            continue;
        }
        if v.kind == "held-by-nobody" {
            held_by_nobody(v, out)?;
            continue;
        }
        let (Some(c), Some(l)) = (&v.culprit, &v.lock) else {
            continue;
        };
        let lock = lock_text(l);
        let at = frame(c);
        if v.kind == "self-deadlock" {
            writeln!(
                out,
                "self-deadlock: goroutine {} holds {lock} in {at} and waits for it again",
                c.goroutine
            )?;
            readers(v, out)?;
            continue;
        }
        if v.kind == "held-while-blocked" {
            held_while_blocked(snap, v, c, l, out)?;
            continue;
        }
        let ids: Vec<String> = v.goroutines.iter().map(|g| g.to_string()).collect();
        writeln!(
            out,
            "deadlock (cycle of {}): goroutine {} holds {lock} in {at}; goroutines {} wait for each other",
            v.goroutines.len(),
            c.goroutine,
            ids.join(" -> ")
        )?;
        readers(v, out)?;
        for (k, g) in v.goroutines.iter().enumerate() {
            let next = v.goroutines[(k + 1) % v.goroutines.len()];
            for o in snap.objects.iter().filter(|o| {
                o.holders.iter().any(|h| h.goroutine == next)
                    && snap
                        .goroutines
                        .iter()
                        .any(|w| w.id == *g && w.blocked_on.iter().any(|b| b.addr == o.addr))
            }) {
                for h in o.holders.iter().filter(|h| h.goroutine == next) {
                    writeln!(
                        out,
                        "    goroutine {g} waits for {} at {:#x}, held by goroutine {next} in {}",
                        text(&o.kind),
                        o.addr,
                        super::blocked::holding_frame(h)
                    )?;
                }
            }
        }
    }
    if snap.file_locks.is_none() {
        writeln!(
            out,
            "file locks not checked: {}",
            match snap.meta.source {
                crate::snapshot::Source::Core =>
                    "a core has no /proc; the file-lock part needs a live target",
                _ => "this snapshot has none recorded (they are read from a live target's /proc)",
            }
        )?;
    } else if let Some(e) = snap.file_locks.as_ref().and_then(|f| f.error.as_ref()) {
        writeln!(out, "file locks read in part: {}", text(e))?;
    }
    Ok(())
}

/// The line on an RWMutex's readers: how many hold it by its own counts, how many were found.
fn readers(v: &Verdict, out: &mut dyn Write) -> io::Result<()> {
    let Some(r) = v.readers else {
        return Ok(());
    };
    writeln!(
        out,
        "    {} reader{} hold{} it (its readerCount and readerWait), {} found (pending deferred RUnlock)",
        r.hold,
        if r.hold == 1 { "" } else { "s" },
        if r.hold == 1 { "s" } else { "" },
        r.found
    )
}

/// `function at file:line`.
fn frame(c: &Culprit) -> String {
    format!("{} at {}:{}", text(&c.function), text(&c.file), c.line)
}

/// A file-lock paragraph: the culprit goroutine and its frame holding the file through a
/// descriptor (or the descriptor alone), then the goroutine waiting in flock.
fn file_lock(v: &Verdict, f: &FileVerdict, out: &mut dyn Write) -> io::Result<()> {
    let file = format!(
        "{} ({} {}, inode {}:{})",
        text(&f.path),
        text(&f.kind),
        text(&f.mode),
        text(&f.dev),
        f.inode
    );
    let waiter = match f.waiter {
        Some(g) => format!("goroutine {g}"),
        None => format!("thread {}", f.thread.unwrap_or_default()),
    };
    let at = f
        .waiting_in
        .as_ref()
        .map(|c| format!(" in {}", frame(c)))
        .unwrap_or_default();
    let waiting = if f.how == "retry" {
        format!(
            "retries flock(2) for it in a sleep loop{at} (fd {} has the same file open)",
            f.waiter_fd
        )
    } else {
        format!(
            "waits for it in flock(2) ({}) through fd {}{at}",
            text(&f.operation),
            f.waiter_fd
        )
    };
    match &v.culprit {
        Some(c) if Some(c.goroutine) == f.waiter => writeln!(
            out,
            "file-lock self-deadlock: goroutine {} holds {file} locked through fd {} in {} [deferred Close] and {waiting}",
            c.goroutine,
            f.fd,
            frame(c)
        ),
        Some(c) => writeln!(
            out,
            "file-lock self-deadlock: goroutine {} holds {file} locked through fd {} in {} [deferred Close]; {waiter} of the same process {waiting}",
            c.goroutine,
            f.fd,
            frame(c)
        ),
        None => writeln!(
            out,
            "file-lock self-deadlock: fd {} holds {file} locked, held by this process (no pending deferred Close names it); {waiter} {waiting}",
            f.fd
        ),
    }
}

/// Ids, at most [`MAX_IDS_SHOWN`], then how many more.
fn ids(gs: &[u64]) -> String {
    let mut s: Vec<String> = gs.iter().take(MAX_IDS_SHOWN).map(u64::to_string).collect();
    if gs.len() > MAX_IDS_SHOWN {
        s.push(format!("(+{} more)", gs.len() - MAX_IDS_SHOWN));
    }
    s.join(" ")
}

/// Goroutine ids listed in a line before the rest are counted.
const MAX_IDS_SHOWN: usize = 10;

/// A held-while-blocked paragraph: the culprit, its holding frame, the lock, what it is
/// blocked on and how many wait behind it; then the other holders blocked the same way and
/// the waiters.
fn held_while_blocked(
    snap: &Snapshot,
    v: &Verdict,
    c: &Culprit,
    l: &Lock,
    out: &mut dyn Write,
) -> io::Result<()> {
    let lock = lock_text(l);
    let at = frame(c);
    let how = snap
        .objects
        .iter()
        .find(|o| o.addr == l.addr)
        .and_then(|o| o.holders.iter().find(|h| h.goroutine == c.goroutine))
        .map(|h| match &*h.how {
            "pointer" => format!(
                " ({} lock, possibly: this frame keeps a pointer to it)",
                text(&h.lock)
            ),
            "code" => format!(
                " ({} lock, possibly: this frame's code takes its address)",
                text(&h.lock)
            ),
            _ => format!(" ({} lock)", text(&h.lock)),
        })
        .unwrap_or_default();
    let on = match &v.waits_on {
        Some(w) if &*w.state == "flock" => {
            "blocked in flock(2) on a file this process holds locked (file-lock self-deadlock, below)"
                .into()
        }
        Some(w) if &*w.state == "syscall" || &*w.state == "IO wait" => format!(
            "blocked in {} ({})",
            if &*w.state == "syscall" {
                "a system call"
            } else {
                "IO wait"
            },
            w.call.as_deref().map(text).unwrap_or_default()
        ),
        Some(w) if w.chans.is_empty() => format!("blocked forever in {}", text(&w.state)),
        Some(w) => {
            let chans: Vec<String> = w
                .chans
                .iter()
                .map(|&a| {
                    let state = snap
                        .objects
                        .iter()
                        .find(|o| o.addr == a)
                        .map(|o| format!(" ({})", text(&o.summary)))
                        .unwrap_or_default();
                    format!("chan at {a:#x}{state}")
                })
                .collect();
            format!(
                "blocked in {} on {} with no goroutine on the other side",
                text(&w.state),
                chans.join(", ")
            )
        }
        None => "blocked".into(),
    };
    let n = v.waiters.len();
    writeln!(
        out,
        "held while blocked: goroutine {} holds {lock}{how} in {at} and is {on}; {n} goroutine{} wait{} for the lock",
        c.goroutine,
        if n == 1 { "" } else { "s" },
        if n == 1 { "s" } else { "" },
    )?;
    readers(v, out)?;
    if v.goroutines.len() > 1 {
        writeln!(
            out,
            "    holding it too, each blocked with no goroutine on the other side: goroutines {}",
            ids(&v.goroutines[1..])
        )?;
    }
    if n > 0 {
        writeln!(out, "    waiting for it: goroutines {}", ids(&v.waiters))?;
    }
    Ok(())
}

/// `sync.Mutex at 0x…`, then what holds it in parentheses when known.
fn lock_text(l: &Lock) -> String {
    match &l.name {
        Some(n) => format!("{} at {:#x} ({})", text(&l.kind), l.addr, text(n)),
        None => format!("{} at {:#x}", text(&l.kind), l.addr),
    }
}

/// A held-by-nobody paragraph: the lock, its state, and its waiters.
fn held_by_nobody(v: &Verdict, out: &mut dyn Write) -> io::Result<()> {
    let Some(l) = &v.lock else {
        return Ok(());
    };
    let n = v.waiters.len();
    writeln!(
        out,
        "held by nobody: {} is locked and {n} goroutine{} wait{} for it, but no goroutine holds it (no pending deferred unlock, pointer or code names it): a missing Unlock",
        lock_text(l),
        if n == 1 { "" } else { "s" },
        if n == 1 { "s" } else { "" },
    )?;
    readers(v, out)?;
    writeln!(out, "    waiting for it: goroutines {}", ids(&v.waiters))
}
