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
//! the same way, but such a call may return: on a live target the verdict must be seen again
//! a moment later ([`confirm`]), so only a long one is reported. A goroutine that runs later, a timer or a signal may still serve a channel
//! nobody waits on now: the verdict says what holds at the moment of the snapshot.
//!
//! Held by nobody: a Mutex locked (an RWMutex write-locked, or read-locked by its counts) with
//! goroutines waiting for it, that no goroutine holds by any evidence: the function that
//! locked it returned without unlocking it (a missing Unlock on an early return). The verdict
//! names the lock and its waiters; it has no culprit. Its facts are read at two moments (the
//! goroutines frozen, the lock's state after the target runs again), so a busy lock that
//! changed hands in between can look like it: `goroscope deadlocks` on a live target
//! confirms such a verdict with a second snapshot ([`confirm`]).
//!
//! File locks (a live target's `/proc`, [`crate::snapshot::FileLocks`]): a thread blocked in
//! `flock(2)` on a file this very process holds locked through another descriptor waits for
//! itself: a file-lock self-deadlock (a database opened twice in one process). The culprit is
//! the goroutine whose pending deferred `(*os.File).Close` holds that descriptor; without one,
//! the verdict names the descriptor and the file, held by this process.

use crate::snapshot::{FileLock, Goroutine, Holder, Name, Snapshot, Status, SyncObject};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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
    // Cycles of two or more: every strongly connected component of the wait-for graph (self
    // loops left out) with more than one goroutine.
    let graph: BTreeMap<u64, BTreeSet<u64>> = edges
        .iter()
        .map(|(&g, es)| {
            (
                g,
                es.iter()
                    .map(|e| e.holder.goroutine)
                    .filter(|&h| h != g)
                    .collect(),
            )
        })
        .collect();
    for scc in components(&graph) {
        if scc.len() < 2 {
            continue;
        }
        let members: BTreeSet<u64> = scc.iter().copied().collect();
        let start = scc[0];
        let order = cycle_from(&graph, &members, start);
        // The culprit holds the lock the goroutine before it in the cycle waits for.
        let before = *order.last().unwrap_or(&start);
        let Some(e) = edges
            .get(&before)
            .and_then(|es| es.iter().find(|e| e.holder.goroutine == start))
        else {
            continue;
        };
        out.push(verdict("cycle", order, e));
    }
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

/// Held-by-nobody verdicts, by the lock's address: every Mutex or RWMutex its state says is
/// held, that goroutines wait for, and that no goroutine holds by any evidence.
fn held_by_nobody(snap: &Snapshot) -> Vec<Verdict> {
    let mut out = Vec::new();
    for o in &snap.objects {
        if !o.holders.is_empty() || o.held_by_state() != Some(true) {
            continue;
        }
        let waiters: Vec<u64> = snap
            .goroutines
            .iter()
            .filter(|g| g.blocked_on.iter().any(|b| b.addr == o.addr))
            .map(|g| g.id)
            .collect();
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

/// Whether a verdict must be seen again in a second snapshot: held by nobody, whose facts
/// are read at two moments (see the module's comment), and a holder blocked in a system
/// call or IO wait, which may yet return: a long one is seen in both.
pub fn needs_confirming(v: &Verdict) -> bool {
    v.kind == "held-by-nobody"
        || v.waits_on
            .as_ref()
            .is_some_and(|w| matches!(&*w.state, "syscall" | "IO wait"))
}

/// The verdicts of a second snapshot taken a moment after the first: each that
/// [`needs_confirming`] is kept only when the first had it too, on the same lock, and its
/// waiters then still wait now.
pub fn confirm(first: &[Verdict], second: Vec<Verdict>) -> Vec<Verdict> {
    second
        .into_iter()
        .filter(|v| {
            !needs_confirming(v)
                || first.iter().any(|f| {
                    f.kind == v.kind
                        && f.lock == v.lock
                        && f.culprit.as_ref().map(|c| c.goroutine)
                            == v.culprit.as_ref().map(|c| c.goroutine)
                        && f.waiters.iter().all(|w| v.waiters.contains(w))
                })
        })
        .collect()
}

/// A goroutine (or thread) waiting for a file lock the process holds through another
/// descriptor: blocked in `flock(2)`, or retrying it in a sleep loop.
struct FileWait<'a> {
    goroutine: Option<u64>,
    thread: Option<i32>,
    fd: i32,
    operation: &'a str,
    how: &'static str,
    /// The frame that calls flock.
    frame: Option<Culprit>,
    held: &'a FileLock,
}

/// Every file-lock self-wait: each thread blocked in `flock(2)` on a file the process holds
/// locked (with a conflicting mode) through another descriptor, then each goroutine retrying
/// flock in a sleep loop while a file the process holds `WRITE`-locked is open again through
/// another descriptor (the first such descriptor is the one named).
fn file_waits(snap: &Snapshot) -> Vec<FileWait<'_>> {
    let Some(files) = &snap.file_locks else {
        return Vec::new();
    };
    let conflicting = |fd: i32, dev: &str, inode: u64, exclusive: bool| {
        files.held.iter().find(move |h| {
            h.kind == "FLOCK"
                && h.fd != fd
                && h.dev == dev
                && h.inode == inode
                && (h.mode == "WRITE" || exclusive)
        })
    };
    let mut out = Vec::new();
    for w in &files.waits {
        let Some(held) = conflicting(w.fd, &w.dev, w.inode, w.operation == "exclusive") else {
            continue;
        };
        let frame = w
            .goroutine
            .and_then(|id| snap.goroutines.iter().find(|g| g.id == id))
            .and_then(|g| {
                let at = g
                    .frames
                    .iter()
                    .rposition(|f| f.function.ends_with(".Flock"))?;
                Some(frame_of(g, g.frames.get(at + 1)?))
            });
        out.push(FileWait {
            goroutine: w.goroutine,
            thread: Some(w.thread),
            fd: w.fd,
            operation: &w.operation,
            how: "blocked",
            frame,
            held,
        });
    }
    for r in &files.retries {
        // Which descriptor the loop retries is not known: any file it may be is one held
        // WRITE-locked, which no flock through another descriptor gets.
        let Some((fd, held)) = r.opened_again.iter().find_map(|o| {
            let held = conflicting(o.fd, &o.dev, o.inode, false)?;
            (held.mode == "WRITE").then_some((o.fd, held))
        }) else {
            continue;
        };
        out.push(FileWait {
            goroutine: Some(r.goroutine),
            thread: None,
            fd,
            operation: "retry",
            how: "retry",
            frame: Some(Culprit {
                goroutine: r.goroutine,
                function: r.function.clone(),
                file: r.file.clone(),
                line: r.line,
                how: None,
            }),
            held,
        });
    }
    out
}

/// A goroutine's frame as a [`Culprit`].
fn frame_of(g: &Goroutine, f: &crate::snapshot::Frame) -> Culprit {
    Culprit {
        goroutine: g.id,
        function: f.function.clone(),
        file: f.file.clone(),
        line: f.line,
        how: None,
    }
}

/// File-lock self-deadlocks: [`file_waits`], the culprit found by its deferred Close.
fn file_lock_verdicts(snap: &Snapshot) -> Vec<Verdict> {
    let mut out = Vec::new();
    for w in file_waits(snap) {
        let held = w.held;
        let culprit = snap.goroutines.iter().find_map(|g| {
            g.frames.iter().find_map(|f| {
                f.defers
                    .iter()
                    .any(|d| &*d.function == "os.(*File).Close" && d.fd == Some(i64::from(held.fd)))
                    .then(|| frame_of(g, f))
            })
        });
        let mut goroutines: Vec<u64> = culprit.iter().map(|c| c.goroutine).collect();
        goroutines.extend(w.goroutine.filter(|g| !goroutines.contains(g)));
        out.push(Verdict {
            kind: "file-lock",
            goroutines,
            culprit,
            lock: None,
            waiters: Vec::new(),
            waits_on: None,
            readers: None,
            file: Some(FileVerdict {
                path: held.path.clone(),
                dev: held.dev.clone(),
                inode: held.inode,
                fd: held.fd,
                kind: held.kind.clone(),
                mode: held.mode.clone(),
                how: w.how,
                waiter: w.goroutine,
                thread: w.thread,
                waiter_fd: w.fd,
                operation: w.operation.to_string(),
                waiting_in: w.frame,
            }),
        });
    }
    out
}

/// Held-while-blocked verdicts, one a lock, by the culprit's id: the lock's holders that some
/// goroutine certainly waits for and that are blocked where nobody is on the other side.
fn held_while_blocked(snap: &Snapshot, edges: &BTreeMap<u64, Vec<Edge<'_>>>) -> Vec<Verdict> {
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

/// What `g` is blocked on when no goroutine is on the other side of it (see the module's
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

/// Strongly connected components (Tarjan's, iterative), each sorted, lowest id first.
fn components(graph: &BTreeMap<u64, BTreeSet<u64>>) -> Vec<Vec<u64>> {
    let mut index: BTreeMap<u64, usize> = BTreeMap::new();
    let mut low: BTreeMap<u64, usize> = BTreeMap::new();
    let mut on_stack: BTreeSet<u64> = BTreeSet::new();
    let mut stack: Vec<u64> = Vec::new();
    let mut out = Vec::new();
    let next = |v: u64| -> Vec<u64> {
        graph
            .get(&v)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    };
    for &root in graph.keys() {
        if index.contains_key(&root) {
            continue;
        }
        // (node, its successors, position in them)
        let mut work: Vec<(u64, Vec<u64>, usize)> = vec![(root, next(root), 0)];
        index.insert(root, index.len());
        low.insert(root, index[&root]);
        stack.push(root);
        on_stack.insert(root);
        while let Some((v, succ, pos)) = work.last_mut() {
            let v = *v;
            if let Some(&w) = succ.get(*pos) {
                *pos += 1;
                if !index.contains_key(&w) {
                    let i = index.len();
                    index.insert(w, i);
                    low.insert(w, i);
                    stack.push(w);
                    on_stack.insert(w);
                    work.push((w, next(w), 0));
                } else if on_stack.contains(&w) {
                    let l = low[&v].min(index[&w]);
                    low.insert(v, l);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                let l = low[parent].min(low[&v]);
                low.insert(*parent, l);
            }
            if low[&v] == index[&v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack.remove(&w);
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                scc.sort_unstable();
                out.push(scc);
            }
        }
    }
    out.sort();
    out
}

/// A cycle through `start` inside `members` (a strongly connected component), in wait order:
/// `start` waits for the second, ..., the last waits for `start`. The shortest one (BFS).
fn cycle_from(
    graph: &BTreeMap<u64, BTreeSet<u64>>,
    members: &BTreeSet<u64>,
    start: u64,
) -> Vec<u64> {
    let mut prev: BTreeMap<u64, u64> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in graph.get(&v).into_iter().flatten() {
            if !members.contains(&w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                let mut at = v;
                while at != start {
                    at = prev[&at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                e.insert(v);
                queue.push_back(w);
            }
        }
    }
    members.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{BlockedOn, Goroutine};

    fn holder(g: u64, f: &str) -> Holder {
        Holder {
            goroutine: g,
            lock: "write".into(),
            function: f.into(),
            file: "f.go".into(),
            line: 1,
            how: "defer".into(),
        }
    }

    fn waiter(id: u64, addr: u64) -> Goroutine {
        Goroutine {
            id,
            blocked_on: vec![BlockedOn {
                kind: "sync.Mutex".into(),
                addr,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn lock(addr: u64, holders: Vec<Holder>) -> SyncObject {
        SyncObject {
            kind: "sync.Mutex".into(),
            addr,
            holders,
            ..Default::default()
        }
    }

    #[test]
    fn self_deadlock_cycle_and_a_plain_wait() {
        let snap = Snapshot {
            goroutines: vec![
                waiter(5, 0x10),
                waiter(7, 0x20),
                waiter(9, 0x30),
                waiter(11, 0x40),
            ],
            objects: vec![
                lock(0x10, vec![holder(5, "main.twice")]),
                lock(0x20, vec![holder(9, "main.b")]),
                lock(0x30, vec![holder(7, "main.a")]),
                lock(0x40, vec![holder(3, "main.busy")]),
            ],
            ..Default::default()
        };
        let v = find(&snap);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(
            (v[0].kind, &v[0].goroutines[..]),
            ("self-deadlock", &[5][..])
        );
        assert_eq!(
            v[0].culprit.as_ref().unwrap().function.as_ref(),
            "main.twice"
        );
        assert_eq!((v[1].kind, &v[1].goroutines[..]), ("cycle", &[7, 9][..]));
        assert_eq!(
            (
                v[1].culprit.as_ref().unwrap().goroutine,
                v[1].lock.as_ref().unwrap().addr
            ),
            (7, 0x30),
            "7 holds 0x30, which 9 waits for"
        );
    }

    /// A claim the lock's own state denies makes no edge: an unlocked Mutex, an RWMutex no
    /// reader holds by its counts. The readers a verdict reports come from the counts.
    #[test]
    fn claims_checked_against_the_state() {
        let with = |kind: &str, fields: Vec<(&str, i64)>, how: &str| Snapshot {
            goroutines: vec![waiter(5, 0x10)],
            objects: vec![SyncObject {
                kind: kind.into(),
                fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                holders: vec![Holder {
                    lock: how.into(),
                    ..holder(5, "main.f")
                }],
                ..lock(0x10, vec![])
            }],
            ..Default::default()
        };
        assert_eq!(
            find(&with("sync.Mutex", vec![("state", 1)], "write")).len(),
            1
        );
        assert!(find(&with("sync.Mutex", vec![("state", 0)], "write")).is_empty());
        let rw =
            |rc: i64, wait: i64| vec![("w.state", 1), ("readerCount", rc), ("readerWait", wait)];
        let max = crate::snapshot::RWMUTEX_MAX_READERS;
        let v = find(&with("sync.RWMutex", rw(3 - max, 2), "read"));
        assert_eq!(v[0].readers, Some(Readers { hold: 2, found: 1 }));
        assert!(find(&with("sync.RWMutex", rw(1 - max, 0), "read")).is_empty());
        assert_eq!(find(&with("sync.RWMutex", rw(-max, 0), "write")).len(), 1);
        assert!(find(&with("sync.RWMutex", rw(2, 0), "write")).is_empty());
    }

    /// A locked Mutex with waiters and no holder: held by nobody, no culprit; unlocked, or
    /// with a holder, or without waiters: no verdict. A second snapshot confirms it only when
    /// the first had it with the same waiters still waiting.
    #[test]
    fn held_by_nobody_and_its_confirmation() {
        let snap = |state: i64, holders: Vec<Holder>, waiting: bool| Snapshot {
            goroutines: if waiting {
                vec![waiter(4, 0x10), waiter(6, 0x10)]
            } else {
                vec![]
            },
            objects: vec![SyncObject {
                fields: vec![("state".into(), state)],
                ..lock(0x10, holders)
            }],
            ..Default::default()
        };
        let v = find(&snap(0x11, vec![], true));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].kind, &v[0].waiters[..], v[0].culprit.is_none()),
            ("held-by-nobody", &[4, 6][..], true)
        );
        assert_eq!(v[0].lock.as_ref().unwrap().addr, 0x10);
        assert!(find(&snap(0x10, vec![], true)).is_empty());
        assert!(find(&snap(0x11, vec![], false)).is_empty());
        let held = find(&snap(0x11, vec![holder(3, "main.busy")], true));
        assert!(held.iter().all(|v| v.kind != "held-by-nobody"), "{held:?}");
        assert!(needs_confirming(&v[0]));
        assert_eq!(confirm(&v, v.clone()), v);
        assert!(confirm(&[], v.clone()).is_empty());
        let mut fewer = v.clone();
        fewer[0].waiters = vec![4];
        assert!(confirm(&v, fewer.clone()).is_empty());
        assert_eq!(confirm(&fewer, v.clone()), v);
    }

    /// Possible holders (a pointer, code) rank after certain ones: they never make a
    /// self-deadlock or a cycle, and count for held while blocked only on a lock no certain
    /// holder claims, the culprit saying how it is known.
    #[test]
    fn possible_holders_rank_after_certain_ones() {
        let maybe = |g: u64, f: &str| Holder {
            how: "pointer".into(),
            ..holder(g, f)
        };
        // 5 and 7 each possibly hold what the other waits for, 9 possibly holds its own.
        let snap = Snapshot {
            goroutines: vec![waiter(5, 0x10), waiter(7, 0x20), waiter(9, 0x30)],
            objects: vec![
                lock(0x10, vec![maybe(7, "main.a")]),
                lock(0x20, vec![maybe(5, "main.b")]),
                lock(0x30, vec![maybe(9, "main.c")]),
            ],
            ..Default::default()
        };
        assert!(find(&snap).is_empty(), "{:?}", find(&snap));
        // A holder blocked for good: with a certain holder beside it, the certain one is the
        // culprit; alone, the possible one is, `how` saying so.
        let blocked = |holders: Vec<Holder>| Snapshot {
            goroutines: vec![
                on_chan(3, "chan receive", 0x100),
                on_chan(4, "chan receive", 0x100),
                waiter(8, 0x10),
            ],
            objects: vec![lock(0x10, holders), chan_obj(0x100, 0, 0)],
            ..Default::default()
        };
        let v = find(&blocked(vec![maybe(3, "main.p"), holder(4, "main.d")]));
        let c = v[0].culprit.as_ref().unwrap();
        assert_eq!((c.goroutine, c.how.as_deref()), (4, Some("defer")), "{v:?}");
        assert_eq!(v[0].goroutines, [4]);
        let v = find(&blocked(vec![maybe(3, "main.p")]));
        let c = v[0].culprit.as_ref().unwrap();
        assert_eq!(
            (c.goroutine, c.how.as_deref()),
            (3, Some("pointer")),
            "{v:?}"
        );
    }

    /// A holder in a system call: held while blocked, the call its innermost frame outside
    /// the runtime and the raw system call wrappers, and a verdict to confirm.
    #[test]
    fn holder_in_a_system_call() {
        use crate::snapshot::Frame;
        let frame = |f: &str| Frame {
            function: f.into(),
            ..Default::default()
        };
        let reader = Goroutine {
            id: 3,
            status: Status::SYSCALL,
            state: "syscall".into(),
            frames: [
                "internal/runtime/syscall.Syscall6",
                "syscall.Syscall",
                "syscall.read",
                "syscall.Read",
                "main.read",
            ]
            .into_iter()
            .map(frame)
            .collect(),
            ..Default::default()
        };
        let snap = Snapshot {
            goroutines: vec![reader, waiter(4, 0x10)],
            objects: vec![lock(0x10, vec![holder(3, "main.read")])],
            ..Default::default()
        };
        let v = find(&snap);
        assert_eq!(v.len(), 1, "{v:?}");
        let w = v[0].waits_on.as_ref().unwrap();
        assert_eq!(
            (v[0].kind, &*w.state, w.call.as_deref()),
            ("held-while-blocked", "syscall", Some("syscall.read"))
        );
        assert!(needs_confirming(&v[0]));
    }

    fn chan_obj(addr: u64, queued: i64, cap: i64) -> SyncObject {
        SyncObject {
            kind: "chan".into(),
            addr,
            fields: vec![
                ("qcount".into(), queued),
                ("dataqsiz".into(), cap),
                ("elemsize".into(), 8),
                ("closed".into(), 0),
            ],
            ..Default::default()
        }
    }

    fn on_chan(id: u64, state: &str, addr: u64) -> Goroutine {
        Goroutine {
            id,
            status: Status::WAITING,
            state: state.into(),
            blocked_on: vec![BlockedOn {
                kind: "chan".into(),
                addr,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// A holder sending on a full channel nobody receives from, a writer waiting for it: held
    /// while blocked. With a receiver on the channel, or a free slot, no verdict.
    #[test]
    fn held_while_blocked_only_when_nobody_is_on_the_other_side() {
        let snap = |receiver: bool, queued: i64| Snapshot {
            goroutines: [
                vec![on_chan(3, "chan send", 0x100), waiter(4, 0x10)],
                if receiver {
                    vec![on_chan(5, "select", 0x100)]
                } else {
                    vec![]
                },
            ]
            .concat(),
            objects: vec![
                lock(0x10, vec![holder(3, "main.send")]),
                chan_obj(0x100, queued, 2),
            ],
            ..Default::default()
        };
        let v = find(&snap(false, 2));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(
            (v[0].kind, &v[0].goroutines[..], &v[0].waiters[..]),
            ("held-while-blocked", &[3][..], &[4][..])
        );
        assert_eq!(v[0].waits_on.as_ref().unwrap().chans, [0x100]);
        assert!(find(&snap(true, 2)).is_empty());
        assert!(find(&snap(false, 1)).is_empty());
    }

    /// A thread in flock on a file another descriptor of the process holds: the goroutine
    /// whose deferred Close holds that descriptor is the culprit; without one, no culprit;
    /// a shared wait on a shared lock, or the same descriptor, is no verdict.
    #[test]
    fn file_lock_self_deadlock() {
        use crate::snapshot::{FileLock, FileLocks, FlockWait, Frame, PendingDefer};
        let held = |mode: &str| FileLock {
            fd: 5,
            path: "/db".into(),
            dev: "fe:00".into(),
            inode: 9,
            kind: "FLOCK".into(),
            mode: mode.into(),
        };
        let wait = |fd: i32, op: &str| FlockWait {
            thread: 100,
            goroutine: Some(7),
            fd,
            operation: op.into(),
            path: "/db".into(),
            dev: "fe:00".into(),
            inode: 9,
        };
        let closer = |fd: i64| Goroutine {
            id: 7,
            frames: vec![
                Frame {
                    function: "syscall.Flock".into(),
                    ..Default::default()
                },
                Frame {
                    function: "main.again".into(),
                    ..Default::default()
                },
                Frame {
                    function: "main.open".into(),
                    defers: vec![PendingDefer {
                        function: "os.(*File).Close".into(),
                        fd: Some(fd),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let snap = |g: Goroutine, h: FileLock, w: FlockWait| Snapshot {
            goroutines: vec![g],
            file_locks: Some(FileLocks {
                held: vec![h],
                waits: vec![w],
                retries: Vec::new(),
                error: None,
            }),
            ..Default::default()
        };
        let v = find(&snap(closer(5), held("WRITE"), wait(8, "exclusive")));
        assert_eq!(v.len(), 1, "{v:?}");
        let c = v[0].culprit.as_ref().unwrap();
        assert_eq!(
            (v[0].kind, c.goroutine, &*c.function),
            ("file-lock", 7, "main.open")
        );
        let f = v[0].file.as_ref().unwrap();
        assert_eq!((f.fd, f.waiter_fd), (5, 8));
        assert_eq!(&*f.waiting_in.as_ref().unwrap().function, "main.again");
        let v = find(&snap(closer(6), held("WRITE"), wait(8, "exclusive")));
        assert_eq!(v.len(), 1);
        assert!(v[0].culprit.is_none() && v[0].goroutines == [7]);
        // Holding a Mutex another goroutine waits for, while in that flock: held while
        // blocked too, listed before the file-lock verdict.
        let mut both = snap(closer(5), held("WRITE"), wait(8, "exclusive"));
        both.goroutines[0].status = Status::SYSCALL;
        both.goroutines.push(waiter(11, 0x10));
        both.objects.push(lock(0x10, vec![holder(7, "main.open")]));
        let v = find(&both);
        assert_eq!(
            v.iter().map(|v| v.kind).collect::<Vec<_>>(),
            ["held-while-blocked", "file-lock"]
        );
        assert_eq!(&*v[0].waits_on.as_ref().unwrap().state, "flock");
        assert_eq!(v[0].waiters, [11]);
        assert!(find(&snap(closer(5), held("READ"), wait(8, "shared"))).is_empty());
        // Retrying in a sleep loop while fd 8 has the file open again.
        let mut retry = snap(closer(5), held("WRITE"), wait(8, "exclusive"));
        let files = retry.file_locks.as_mut().unwrap();
        files.waits.clear();
        files.retries.push(crate::snapshot::FlockRetry {
            goroutine: 7,
            function: "main.retry".into(),
            opened_again: vec![crate::snapshot::OpenFile {
                fd: 8,
                dev: "fe:00".into(),
                inode: 9,
            }],
            ..Default::default()
        });
        let v = find(&retry);
        let f = v[0].file.as_ref().unwrap();
        assert_eq!((f.how, f.waiter_fd, f.thread), ("retry", 8, None));
        retry.file_locks.as_mut().unwrap().held[0].mode = "READ".into();
        assert!(find(&retry).is_empty(), "a shared lock may let a retry in");
        assert!(find(&snap(closer(5), held("WRITE"), wait(5, "exclusive"))).is_empty());
    }
}
