//! Deadlocks proven by what goroscope knows for certain: a goroutine blocked on a lock (found
//! through the runtime's semaphore table) and the goroutines holding that lock through a
//! pending deferred unlock. A goroutine waiting for a lock it holds itself is a self-deadlock
//! (Lock twice; RLock again behind a pending writer, which waits for this very reader); a cycle
//! of two or more goroutines each waiting for a lock the next holds is a lock-order inversion.
//! Nothing is guessed: without holder evidence there is no verdict. Possible holders (a
//! frame keeping a pointer to the lock or taking its address in its code,
//! [`crate::runtime::holders`]) rank after certain ones: they make no self-deadlock and no
//! cycle (a waiter's own frames point at the lock it waits for), and count for held while
//! blocked only on a lock that no certain holder claims, the culprit's `how` saying which
//! evidence named it. The wait-for edges of cycles are certain ones only: a goroutine waiting to write (Lock) waits for every holder, one waiting
//! to read (RLock) for the write holders; a reader waiting for the holders of the read lock
//! through a pending writer is not followed, so some cycles through an RWMutex are not seen.
//! A goroutine waiting for a lock it holds is always deadlocked: its RLock blocks only behind
//! a pending writer, which waits for this goroutine's own read lock.
//!
//! Held while blocked: a lock others wait for (a certain edge, as above) whose holder is
//! itself blocked where no goroutine is on the other side: a channel send with the buffer full
//! (or unbuffered) and no goroutine receiving or in a select on the channel, a receive from
//! an empty channel nobody sends on, a select whose every channel is such an unbuffered one,
//! `select {}`, a nil channel. A channel wait adds no edge to the wait-for graph: who would
//! serve the channel is not in memory (a goroutine blocked on its other side would have been
//! paired with it), so a cycle through a channel (the dispatcher that would feed the workers
//! waits for their lock) is reported as held-while-blocked, never as a `cycle`. Not judged: a
//! closed channel, a receive from a channel that may be a timer's (one slot of 24 bytes, a
//! `time.Time`). A holder blocked in a file-lock self-deadlock (below) is blocked for good
//! too. A holder in a system call (a read of a pipe nobody writes) or in IO wait is judged
//! the same way, but such a call may return: on a live target the verdict must hold a moment
//! later too ([`confirm_again`], [`confirm`]), so only a long one is reported. A goroutine that runs later, a timer or a signal may still serve a channel
//! nobody waits on now: the verdict says what holds at the moment of the snapshot.
//!
//! Held by nobody: a Mutex locked (an RWMutex write-locked, or read-locked by its counts) with
//! goroutines waiting for it, that no goroutine holds by any evidence: the function that
//! locked it returned without unlocking it (a missing Unlock on an early return). The verdict
//! names the lock and its waiters; it has no culprit. Its facts are read at two moments (the
//! goroutines frozen, the lock's state after the target runs again), so a busy lock that
//! changed hands in between can look like it: `goroscope deadlocks` on a live target
//! confirms such a verdict by looking again a moment later ([`confirm_again`]): its waiters
//! have not run since, the lock's words are the same, and no goroutine that ran holds it.
//!
//! File locks (a live target's `/proc`, [`crate::snapshot::FileLocks`]): a thread blocked in
//! `flock(2)` on a file this very process holds locked through another descriptor waits for
//! itself: a file-lock self-deadlock (a database opened twice in one process). The culprit is
//! the goroutine whose pending deferred `(*os.File).Close` holds that descriptor; without one,
//! the verdict names the descriptor and the file, held by this process.

mod confirming;
mod cycles;
mod flock;
mod held;
#[cfg(test)]
mod tests;

pub use confirming::{confirm, confirm_again, needs_confirming};

use crate::snapshot::{Holder, Name, Snapshot, SyncObject};
use cycles::cycles;
use flock::file_lock_verdicts;
use held::{held_by_nobody, held_while_blocked};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The goroutine a verdict blames, at the frame holding the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Culprit {
    /// Goroutine id.
    pub goroutine: u64,
    /// The holding frame's function.
    pub function: Name,
    /// Its source file.
    pub file: Name,
    /// Its source line.
    pub line: u32,
    /// How the frame is known to hold the lock: `defer` (certain), `pointer` or `code`
    /// (possible, see [`crate::runtime::holders`]); left out for a file lock's frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
}

/// A lock a verdict names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// `sync.Mutex` or `sync.RWMutex`.
    pub kind: String,
    /// Its address.
    pub addr: u64,
    /// What holds it, when the binary's DWARF tells: `field mu of main.Room at 0xc000123450`
    /// (a frame's pointer to the struct it is a field of), `main.registry` or
    /// `main.registry+0x8` (a global).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The locks the verdicts name, each with the goroutines whose frames may say what holds it
/// (the culprit first, then the other goroutines of the verdict and its waiters): what
/// `values::name_locks` takes.
pub fn locks_to_name(verdicts: &[Verdict]) -> Vec<(u64, String, Vec<u64>)> {
    verdicts
        .iter()
        .filter_map(|v| {
            let l = v.lock.as_ref()?;
            let mut ids: Vec<u64> = v.culprit.iter().map(|c| c.goroutine).collect();
            for g in v.goroutines.iter().chain(&v.waiters) {
                if ids.len() >= MAX_NAMING_GOROUTINES {
                    break;
                }
                if !ids.contains(g) {
                    ids.push(*g);
                }
            }
            Some((l.addr, l.kind.clone(), ids))
        })
        .collect()
}

/// Goroutines whose frames are searched for what names one lock.
const MAX_NAMING_GOROUTINES: usize = 16;

/// Which of a lock's waiters a snapshot built in chunks keeps the stacks of, for naming it:
/// a verdict's waiters are in `allgs` order and [`locks_to_name`] reads the first few, so of
/// each lock the first [`MAX_NAMING_GOROUTINES`] waiters in that order. Chunks are built out
/// of order: a waiter is let go only once that many are known to wait before it (in chunks of
/// lower index built so far, and before it in its own), so a few more may be kept, never one
/// of those.
#[derive(Debug)]
pub struct FirstWaiters {
    most: usize,
    /// Per lock: (chunk index, its waiters of the lock) of each chunk seen so far.
    seen: std::sync::Mutex<HashMap<u64, Vec<(usize, usize)>>>,
}

impl Default for FirstWaiters {
    fn default() -> FirstWaiters {
        FirstWaiters::new(MAX_NAMING_GOROUTINES)
    }
}

impl FirstWaiters {
    /// Keeping the first `most` waiters of each lock.
    pub fn new(most: usize) -> FirstWaiters {
        FirstWaiters {
            most,
            seen: Default::default(),
        }
    }

    /// The g addresses of chunk `i`'s goroutines (`gs`, in `allgs` order, their waits
    /// assigned) that may be among the first waiters of a lock they wait for.
    pub fn of_chunk(&self, i: usize, gs: &[crate::snapshot::Goroutine]) -> Vec<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Per lock: waiters known before this chunk, and in it so far.
        let mut here: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut out = Vec::new();
        for g in gs {
            for b in &g.blocked_on {
                let (before, n) = here.entry(b.addr).or_insert_with(|| {
                    let earlier = seen.get(&b.addr).into_iter().flatten();
                    let before = earlier.filter(|&&(c, _)| c < i).map(|&(_, n)| n).sum();
                    (before, 0)
                });
                if *before + *n < self.most && out.last() != Some(&g.addr) {
                    out.push(g.addr);
                }
                *n += 1;
            }
        }
        for (lock, (_, n)) in here {
            seen.entry(lock).or_default().push((i, n));
        }
        out
    }
}

/// Sets the name of every lock the verdicts name that `names` (by address) has.
pub fn set_lock_names(verdicts: &mut [Verdict], names: &std::collections::HashMap<u64, String>) {
    for l in verdicts.iter_mut().filter_map(|v| v.lock.as_mut()) {
        l.name = names.get(&l.addr).cloned();
    }
}

/// What the culprit of a held-while-blocked verdict is blocked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaitsOn {
    /// Its wait: `chan send`, `chan receive`, `select`, `select (no cases)`, `chan send (nil
    /// chan)`, `chan receive (nil chan)`, `flock`: a file-lock self-deadlock (its verdict
    /// is listed too), `syscall` (in a system call) or `IO wait` (the network poller).
    pub state: Name,
    /// The channels it waits on (none for `select {}` and nil channels).
    pub chans: Vec<u64>,
    /// A system call or IO wait: the function making it (its innermost frame outside the
    /// runtime's and the raw system call wrappers, e.g. `syscall.read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<Name>,
}

/// One proven deadlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `self-deadlock`, `cycle`, `held-while-blocked`, `held-by-nobody` or `file-lock`.
    pub kind: &'static str,
    /// The goroutines deadlocked, the culprit first, then each one waiting for the lock the
    /// one before holds... in the order of the cycle. Held while blocked: the holders of the
    /// lock blocked that way, the culprit first, then by id.
    pub goroutines: Vec<u64>,
    /// The culprit: the goroutine (lowest id of a cycle or of the blocked holders) and its
    /// frame holding `lock` (or, for a file lock, the descriptor). `None`: a file lock no
    /// pending deferred Close names, a lock held by nobody.
    pub culprit: Option<Culprit>,
    /// The lock the culprit holds and (the next goroutine of the cycle, itself, or the
    /// waiters) waits for. `None` for a file lock.
    pub lock: Option<Lock>,
    /// Held while blocked, held by nobody: every other goroutine blocked on the lock, by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiters: Vec<u64>,
    /// Held while blocked: what the culprit is blocked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_on: Option<WaitsOn>,
    /// A file-lock verdict: the file, the descriptor holding it and the one waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileVerdict>,
    /// An RWMutex's lock: how many readers hold it by its counts, and how many were found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<Readers>,
}

/// The file of a file-lock verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileVerdict {
    /// What the held descriptor names.
    pub path: String,
    /// Device (`major:minor`, hex) and inode.
    pub dev: String,
    /// Inode.
    pub inode: u64,
    /// The descriptor holding the lock, its kind (`FLOCK`) and mode (`READ`, `WRITE`).
    pub fd: i32,
    /// `FLOCK`.
    pub kind: String,
    /// `READ` or `WRITE`.
    pub mode: String,
    /// `blocked`: the waiter is blocked in `flock(2)`; `retry`: it sleeps in a loop that
    /// calls flock (with `LOCK_NB`), and `waiter_fd` has the same file open (which descriptor
    /// it retries is not known).
    pub how: &'static str,
    /// The goroutine waiting (`None`: a thread running none).
    pub waiter: Option<u64>,
    /// Its thread, when blocked.
    pub thread: Option<i32>,
    /// The descriptor it locks.
    pub waiter_fd: i32,
    /// `shared` or `exclusive` (blocked), `retry`.
    pub operation: String,
    /// The waiter's frame that calls `flock`.
    pub waiting_in: Option<Culprit>,
}

/// An RWMutex's read holders: what its counts say, and how many goroutines claim one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Readers {
    /// Readers holding it by its counts: `readerWait` while a writer is pending or holds it
    /// (`readerCount` < 0), else `readerCount`.
    pub hold: i64,
    /// Goroutines found holding a read lock (pending deferred RUnlock).
    pub found: usize,
}

/// Whether a holder claim is certain (a pending deferred unlock), not a possible one (a
/// pointer to the lock or code taking its address, [`crate::runtime::holders`]).
fn certain(h: &Holder) -> bool {
    h.how == "defer"
}

/// One goroutine's wait: it waits for `lock`, which `holder` holds.
struct Edge<'a> {
    lock: &'a SyncObject,
    holder: &'a Holder,
}

/// Every verdict the snapshot proves, self-deadlocks first, then cycles, each by goroutine id.
pub fn find(snap: &Snapshot) -> Vec<Verdict> {
    let locks: BTreeMap<u64, &SyncObject> = snap
        .objects
        .iter()
        .filter(|o| !o.holders.is_empty())
        .map(|o| (o.addr, o))
        .collect();
    // waiter -> the certain holders of what it waits for; `maybe`: the possible holders of
    // what it waits for that no certain holder claims
    let mut edges: BTreeMap<u64, Vec<Edge<'_>>> = BTreeMap::new();
    let mut maybe: BTreeMap<u64, Vec<Edge<'_>>> = BTreeMap::new();
    for g in &snap.goroutines {
        if !g.blocked_on.iter().any(|b| locks.contains_key(&b.addr)) {
            continue;
        }
        // A reader waiting in RLock waits for the writers only: read holders let it in
        // (it is blocked because a writer is pending; that writer's wait is not an edge here).
        let reads = g
            .frames
            .iter()
            .any(|f| &*f.function == "sync.(*RWMutex).RLock");
        for b in &g.blocked_on {
            if let Some(o) = locks.get(&b.addr) {
                let sure = o.holders.iter().any(|h| certain(h) && o.claim_holds(h));
                for h in o
                    .holders
                    .iter()
                    .filter(|h| certain(h) == sure && o.claim_holds(h))
                    .filter(|h| !reads || h.lock == "write" || h.goroutine == g.id)
                {
                    if sure { &mut edges } else { &mut maybe }
                        .entry(g.id)
                        .or_default()
                        .push(Edge { lock: o, holder: h });
                }
            }
        }
    }
    let mut out = Vec::new();
    for (&g, es) in &edges {
        if let Some(e) = es.iter().find(|e| e.holder.goroutine == g) {
            out.push(verdict("self-deadlock", vec![g], e));
        }
    }
    out.extend(cycles(&edges));
    // Held while blocked rests on certain holders, else on possible ones (never both for
    // one lock).
    for (g, es) in maybe {
        edges.entry(g).or_default().extend(es);
    }
    out.extend(held_while_blocked(snap, &edges));
    out.extend(held_by_nobody(snap));
    out.extend(file_lock_verdicts(snap));
    out
}

/// A verdict of `kind` on `goroutines`, its culprit and lock those of the wait `e`.
fn verdict(kind: &'static str, goroutines: Vec<u64>, e: &Edge<'_>) -> Verdict {
    Verdict {
        kind,
        goroutines,
        culprit: Some(Culprit {
            goroutine: e.holder.goroutine,
            function: e.holder.function.clone(),
            file: e.holder.file.clone(),
            line: e.holder.line,
            how: Some(e.holder.how.clone()),
        }),
        lock: Some(Lock {
            kind: e.lock.kind.clone(),
            addr: e.lock.addr,
            name: None,
        }),
        waiters: Vec::new(),
        waits_on: None,
        file: None,
        readers: e.lock.read_holders().map(|hold| Readers {
            hold,
            found: e
                .lock
                .holders
                .iter()
                .filter(|h| h.lock == "read")
                .map(|h| h.goroutine)
                .collect::<BTreeSet<_>>()
                .len(),
        }),
    }
}
