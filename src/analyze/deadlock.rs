//! Deadlocks proven by what goroscope knows for certain: a goroutine blocked on a lock (found
//! through the runtime's semaphore table) and the goroutines holding that lock through a
//! pending deferred unlock. A goroutine waiting for a lock it holds itself is a self-deadlock
//! (Lock twice; RLock again behind a pending writer, which waits for this very reader); a cycle
//! of two or more goroutines each waiting for a lock the next holds is a lock-order inversion.
//! Nothing is guessed: without holder evidence there is no verdict. The wait-for edges are
//! certain ones only: a goroutine waiting to write (Lock) waits for every holder, one waiting
//! to read (RLock) for the write holders; a reader waiting for the holders of the read lock
//! through a pending writer is not followed, so some cycles through an RWMutex are not seen.
//! A goroutine waiting for a lock it holds is always deadlocked: its RLock blocks only behind
//! a pending writer, which waits for this goroutine's own read lock.

use crate::snapshot::{Holder, Name, Snapshot, SyncObject};
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
}

/// A lock a verdict names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// `sync.Mutex` or `sync.RWMutex`.
    pub kind: String,
    /// Its address.
    pub addr: u64,
}

/// One proven deadlock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `self-deadlock` or `cycle`.
    pub kind: &'static str,
    /// The goroutines deadlocked, the culprit first, then each one waiting for the lock the
    /// one before holds... in the order of the cycle.
    pub goroutines: Vec<u64>,
    /// The culprit: the goroutine (lowest id of a cycle) and its frame holding `lock`.
    pub culprit: Culprit,
    /// The lock the culprit holds and (the next goroutine of the cycle, or itself) waits for.
    pub lock: Lock,
}

/// One goroutine's certain wait: it waits for `lock`, which `holder` holds.
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
    // waiter -> the holders of what it waits for
    let mut edges: BTreeMap<u64, Vec<Edge<'_>>> = BTreeMap::new();
    for g in &snap.goroutines {
        // A reader waiting in RLock waits for the writers only: read holders let it in
        // (it is blocked because a writer is pending; that writer's wait is not an edge here).
        let reads = g
            .frames
            .iter()
            .any(|f| &*f.function == "sync.(*RWMutex).RLock");
        for b in &g.blocked_on {
            if let Some(o) = locks.get(&b.addr) {
                for h in o
                    .holders
                    .iter()
                    .filter(|h| !reads || h.lock == "write" || h.goroutine == g.id)
                {
                    edges
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
    out
}

fn verdict(kind: &'static str, goroutines: Vec<u64>, e: &Edge<'_>) -> Verdict {
    Verdict {
        kind,
        goroutines,
        culprit: Culprit {
            goroutine: e.holder.goroutine,
            function: e.holder.function.clone(),
            file: e.holder.file.clone(),
            line: e.holder.line,
        },
        lock: Lock {
            kind: e.lock.kind.clone(),
            addr: e.lock.addr,
        },
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
        assert_eq!(v[0].culprit.function.as_ref(), "main.twice");
        assert_eq!((v[1].kind, &v[1].goroutines[..]), ("cycle", &[7, 9][..]));
        assert_eq!(
            (v[1].culprit.goroutine, v[1].lock.addr),
            (7, 0x30),
            "7 holds 0x30, which 9 waits for"
        );
    }
}
