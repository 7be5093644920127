//! Held while blocked (a lock's holder blocked where nobody is on the other side) and held by
//! nobody (a locked lock no goroutine holds by any evidence).

use super::flock::file_waits;
use super::{Edge, Lock, Readers, Verdict, WaitsOn, verdict};
use crate::snapshot::{Goroutine, Snapshot, Status, SyncObject};
use std::collections::BTreeMap;

/// Held-while-blocked verdicts, one a lock, by the culprit's id: the lock's holders that some
/// goroutine certainly waits for and that are blocked where nobody is on the other side.
pub(super) fn held_while_blocked(
    snap: &Snapshot,
    edges: &BTreeMap<u64, Vec<Edge<'_>>>,
) -> Vec<Verdict> {
    if edges.is_empty() {
        return Vec::new();
    }
    let by_id: BTreeMap<u64, &Goroutine> = snap.goroutines.iter().map(|g| (g.id, g)).collect();
    let objects: BTreeMap<u64, &SyncObject> = snap.objects.iter().map(|o| (o.addr, o)).collect();
    // lock -> its holders blocked that way, each with the edge naming it
    let mut stuck: BTreeMap<u64, BTreeMap<u64, &Edge<'_>>> = BTreeMap::new();
    for (&w, es) in edges {
        for e in es {
            let h = e.holder.goroutine;
            if h == w {
                continue;
            }
            if by_id
                .get(&h)
                .is_some_and(|g| blocked_for_good(snap, &objects, g).is_some())
            {
                stuck.entry(e.lock.addr).or_default().entry(h).or_insert(e);
            }
        }
    }
    let mut out = Vec::new();
    for (addr, holders) in stuck {
        let Some((&first, e)) = holders.iter().next() else {
            continue;
        };
        let waiters = snap
            .goroutines
            .iter()
            .filter(|g| !holders.contains_key(&g.id) && g.blocked_on.iter().any(|b| b.addr == addr))
            .map(|g| g.id)
            .collect();
        let mut v = verdict("held-while-blocked", holders.keys().copied().collect(), e);
        v.waiters = waiters;
        v.waits_on = by_id
            .get(&first)
            .and_then(|g| blocked_for_good(snap, &objects, g));
        out.push(v);
    }
    out.sort_by_key(|v| v.culprit.as_ref().map(|c| c.goroutine));
    out
}

/// `(qcount, dataqsiz, elemsize, closed)` of a channel object.
fn chan_fields(o: &SyncObject) -> Option<(i64, i64, i64, bool)> {
    let f = |n: &str| o.fields.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    Some((
        f("qcount")?,
        f("dataqsiz")?,
        f("elemsize")?,
        f("closed")? != 0,
    ))
}

/// What `g` is blocked on when no goroutine is on the other side of it (see [`super`]'s
/// comment), or `None`.
fn blocked_for_good(
    snap: &Snapshot,
    objects: &BTreeMap<u64, &SyncObject>,
    g: &Goroutine,
) -> Option<WaitsOn> {
    if file_waits(snap)
        .iter()
        .any(|w| w.how == "blocked" && w.goroutine == Some(g.id))
    {
        return Some(WaitsOn {
            state: "flock".into(),
            chans: Vec::new(),
            call: None,
        });
    }
    if g.status == Status::SYSCALL || g.status == Status::WAITING && &*g.state == "IO wait" {
        return Some(WaitsOn {
            state: if g.status == Status::SYSCALL {
                "syscall".into()
            } else {
                g.state.clone()
            },
            chans: Vec::new(),
            call: g
                .frames
                .iter()
                .find(|f| !call_wrapper(&f.function))
                .map(|f| f.function.clone()),
        });
    }
    if g.status != Status::WAITING {
        return None;
    }
    let state = &*g.state;
    let chans: Vec<u64> = g
        .blocked_on
        .iter()
        .filter(|b| b.kind == "chan")
        .map(|b| b.addr)
        .collect();
    let forever = matches!(
        state,
        "select (no cases)" | "chan send (nil chan)" | "chan receive (nil chan)"
    );
    let dead = |c: u64| -> bool {
        let Some((queued, cap, elemsize, closed)) = objects.get(&c).and_then(|o| chan_fields(o))
        else {
            return false;
        };
        // Anyone else blocked on it may be its other side (a select's direction is unknown).
        let others: Vec<&str> = snap
            .goroutines
            .iter()
            .filter(|o| o.id != g.id && o.blocked_on.iter().any(|b| b.addr == c))
            .map(|o| &*o.state)
            .collect();
        let other_side = |op: &str| others.iter().any(|s| *s == op || s.starts_with("select"));
        let timer = cap == 1 && elemsize == TIME_SIZE;
        !closed
            && match state {
                "chan send" => queued >= cap && !other_side("chan receive"),
                "chan receive" => queued == 0 && !timer && !other_side("chan send"),
                // Either direction: only an unbuffered channel nobody else is on.
                "select" => cap == 0 && others.is_empty(),
                _ => false,
            }
    };
    let ok = forever && chans.is_empty()
        || !chans.is_empty()
            && matches!(state, "chan send" | "chan receive" | "select")
            && chans.iter().all(|&c| dead(c));
    ok.then(|| WaitsOn {
        state: g.state.clone(),
        chans,
        call: None,
    })
}

/// Functions a system call or IO wait passes through below the one that makes it: the
/// runtime's, the raw system call wrappers (`syscall.Syscall`, `syscall.RawSyscall6`,
/// `internal/runtime/syscall.Syscall6`, ...) and the poller's own.
fn call_wrapper(function: &str) -> bool {
    let base = function.rsplit('/').next().unwrap_or(function);
    function.starts_with("runtime.")
        || function.starts_with("internal/runtime/")
        || function.starts_with("internal/poll.runtime_")
        || function.starts_with("internal/poll.(*pollDesc).")
        || base
            .strip_prefix("syscall.")
            .or_else(|| base.strip_prefix("unix."))
            .is_some_and(|n| {
                ["Syscall", "RawSyscall", "rawSyscall", "rawVforkSyscall"]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
}

/// Bytes of a `time.Time`, the element of a timer's channel.
const TIME_SIZE: i64 = 24;

/// Held-by-nobody verdicts, by the lock's address: every Mutex or RWMutex its state says is
/// held, that goroutines wait for, and that no goroutine holds by any evidence.
pub(super) fn held_by_nobody(snap: &Snapshot) -> Vec<Verdict> {
    let mut out = Vec::new();
    let nobody: Vec<&SyncObject> = snap
        .objects
        .iter()
        .filter(|o| o.holders.is_empty() && o.held_by_state() == Some(true))
        .collect();
    if nobody.is_empty() {
        return out;
    }
    // Each such lock's waiters, in one pass over the goroutines (not one per lock), the
    // locks by address (few: a search in a sorted array, no hash per wait).
    let mut waiting: Vec<(u64, Vec<u64>)> = nobody.iter().map(|o| (o.addr, Vec::new())).collect();
    waiting.sort_unstable_by_key(|&(a, _)| a);
    waiting.dedup_by_key(|&mut (a, _)| a);
    for g in &snap.goroutines {
        for b in &g.blocked_on {
            if let Ok(i) = waiting.binary_search_by_key(&b.addr, |&(a, _)| a)
                && waiting[i].1.last() != Some(&g.id)
            {
                waiting[i].1.push(g.id);
            }
        }
    }
    for o in nobody {
        let waiters = match waiting.binary_search_by_key(&o.addr, |&(a, _)| a) {
            Ok(i) => std::mem::take(&mut waiting[i].1),
            Err(_) => Vec::new(),
        };
        if waiters.is_empty() {
            continue;
        }
        out.push(Verdict {
            kind: "held-by-nobody",
            goroutines: waiters.clone(),
            culprit: None,
            lock: Some(Lock {
                kind: o.kind.clone(),
                addr: o.addr,
                name: None,
            }),
            waiters,
            waits_on: None,
            file: None,
            readers: o.read_holders().map(|hold| Readers { hold, found: 0 }),
        });
    }
    out.sort_by_key(|v| v.lock.as_ref().map(|l| l.addr));
    out
}
