//! Lock-order inversions: cycles of the wait-for graph of certain holders.

use super::{Edge, Verdict, verdict};
use std::collections::{BTreeMap, BTreeSet};

/// Cycle verdicts of two or more goroutines, by goroutine id: every strongly connected
/// component of the wait-for graph (self loops left out) with more than one goroutine.
pub(super) fn cycles(edges: &BTreeMap<u64, Vec<Edge<'_>>>) -> Vec<Verdict> {
    let mut out = Vec::new();
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
