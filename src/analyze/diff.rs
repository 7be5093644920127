//! Diff of two snapshots of the same program: which stack groups grew, shrank, appeared or
//! vanished. A leak shows as a group that grows from one snapshot to the next.

use super::group::{GroupBy, key};
use crate::snapshot::{Goroutine, Snapshot};
use std::collections::HashMap;

/// One group's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'s> {
    /// Members in the first snapshot.
    pub before: usize,
    /// Members in the second snapshot.
    pub after: usize,
    /// A member of the group (from the second snapshot when it has one).
    pub example: &'s Goroutine,
}

impl Change<'_> {
    /// `after - before`.
    pub fn delta(&self) -> i64 {
        self.after as i64 - self.before as i64
    }
}

/// Changes of every group whose size changed, biggest change first (growth before shrinkage
/// at equal size).
pub fn diff<'s>(
    a: &'s Snapshot,
    b: &'s Snapshot,
    by: &GroupBy,
    keep: impl Fn(&Goroutine) -> bool,
) -> Vec<Change<'s>> {
    let mut m: HashMap<String, Change<'s>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for g in a.goroutines.iter().filter(|g| keep(g)) {
        let k = key(g, by);
        m.entry(k.clone())
            .or_insert_with(|| {
                order.push(k);
                Change {
                    before: 0,
                    after: 0,
                    example: g,
                }
            })
            .before += 1;
    }
    for g in b.goroutines.iter().filter(|g| keep(g)) {
        let k = key(g, by);
        let c = m.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            Change {
                before: 0,
                after: 0,
                example: g,
            }
        });
        if c.after == 0 {
            c.example = g;
        }
        c.after += 1;
    }
    let mut out: Vec<Change<'s>> = order
        .into_iter()
        .filter_map(|k| m.remove(&k))
        .filter(|c| c.before != c.after)
        .collect();
    out.sort_by(|x, y| {
        y.delta()
            .abs()
            .cmp(&x.delta().abs())
            .then(y.delta().cmp(&x.delta()))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Frame;

    fn snap(spec: &[(&str, usize)]) -> Snapshot {
        let mut s = Snapshot::default();
        let mut id = 1;
        for (f, n) in spec {
            for _ in 0..*n {
                s.goroutines.push(Goroutine {
                    id,
                    state: "chan send".into(),
                    frames: vec![Frame {
                        function: (*f).into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                id += 1;
            }
        }
        s
    }

    #[test]
    fn growth_shrinkage_appearance() {
        let a = snap(&[("main.leak", 10), ("main.worker", 4), ("main.gone", 1)]);
        let b = snap(&[("main.leak", 30), ("main.worker", 4), ("main.new", 2)]);
        let d = diff(&a, &b, &GroupBy::Stack, |_| true);
        let got: Vec<(String, usize, usize)> = d
            .iter()
            .map(|c| (c.example.frames[0].function.to_string(), c.before, c.after))
            .collect();
        assert_eq!(
            got,
            vec![
                ("main.leak".into(), 10, 30),
                ("main.new".into(), 0, 2),
                ("main.gone".into(), 1, 0)
            ]
        );
    }
}
