//! Diff of two snapshots of the same program: which stack groups grew, shrank, appeared or
//! vanished. A leak shows as a group that grows from one snapshot to the next.

use super::group::Summary;
use crate::snapshot::Goroutine;
use std::collections::HashMap;

/// One group's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'s> {
    /// Members in the first snapshot.
    pub before: usize,
    /// Members in the second snapshot.
    pub after: usize,
    /// A member of the group (the second snapshot's first when it has one).
    pub example: &'s Goroutine,
}

impl Change<'_> {
    /// `after - before`.
    pub fn delta(&self) -> i64 {
        self.after as i64 - self.before as i64
    }
}

/// Changes of every group whose size changed between the groups of two snapshots (each in
/// order of first appearance, [`super::group::Tally::groups`]), biggest change first (growth before
/// shrinkage at equal size; then the first snapshot's groups in their order, then the new ones).
pub fn diff<'s>(a: &'s [Summary], b: &'s [Summary]) -> Vec<Change<'s>> {
    let in_b: HashMap<&str, &Summary> = b.iter().map(|s| (s.key.as_str(), s)).collect();
    let in_a: HashMap<&str, &Summary> = a.iter().map(|s| (s.key.as_str(), s)).collect();
    let change = |before: Option<&'s Summary>, after: Option<&'s Summary>| {
        let example = after.or(before).map(|s| &s.first)?;
        let (before, after) = (before.map_or(0, |s| s.count), after.map_or(0, |s| s.count));
        (before != after).then_some(Change {
            before,
            after,
            example,
        })
    };
    let mut out: Vec<Change<'s>> = a
        .iter()
        .filter_map(|s| change(Some(s), in_b.get(s.key.as_str()).copied()))
        .chain(
            b.iter()
                .filter(|s| !in_a.contains_key(s.key.as_str()))
                .filter_map(|s| change(None, Some(s))),
        )
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
    use crate::analyze::group::{GroupBy, Tally};
    use crate::snapshot::{Frame, Snapshot};

    fn snap(spec: &[(&str, usize)]) -> Snapshot {
        let mut s = Snapshot::default();
        let mut id = 1;
        for (f, n) in spec {
            for _ in 0..*n {
                s.goroutines.push(Goroutine {
                    id,
                    state: "chan send".into(),
                    frames: vec![Frame::new(
                        crate::snapshot::Site {
                            function: (*f).into(),
                            ..Default::default()
                        }
                        .into(),
                        Default::default(),
                        0,
                        0,
                    )],
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
        let by = GroupBy::Stack;
        let (a, b) = (
            Tally::counting(&a.goroutines, &by),
            Tally::counting(&b.goroutines, &by),
        );
        let d = diff(a.groups(), b.groups());
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
