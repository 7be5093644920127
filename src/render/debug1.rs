//! pprof's `debug=1` goroutine text (`/debug/pprof/goroutine?debug=1`): `goroutine profile:
//! total N`, then each distinct stack with its count, pcs, labels and frames, largest first.

use super::safe::{go_quote, text};
use crate::analyze::group::{self, FirstSeen, GroupBy};
use crate::snapshot::{Goroutine, LabelStr};
use std::borrow::Cow;
use std::io::{self, Write};

/// The goroutines of a `debug=1` text, counted a goroutine at a time (for a whole snapshot,
/// or per chunk of a stream, merged in order): grouped by stack ([`GroupBy::Stack`]), each
/// group with its first goroutine, whose stack stands for it, and its label sets in order of
/// first appearance, each with its count. pprof's key is the stack and the labels, so a
/// group whose members carry different labels prints once per label set.
#[derive(Default)]
pub struct Records {
    groups: FirstSeen<String, Stack>,
    total: usize,
    /// The key being built ([`group::key_into`]).
    scratch: String,
}

/// One group of [`Records`].
struct Stack {
    first: Goroutine,
    count: usize,
    labels: Vec<(Vec<(LabelStr, LabelStr)>, usize)>,
}

impl Stack {
    /// Counts `n` more goroutines with `labels` (a label set seen first is added last).
    fn count_labels(&mut self, labels: Cow<'_, [(LabelStr, LabelStr)]>, n: usize) {
        match self.labels.iter_mut().find(|(l, _)| *l == *labels) {
            Some((_, m)) => *m += n,
            None => self.labels.push((labels.into_owned(), n)),
        }
    }
}

impl Records {
    /// Counts `g` in (a copy kept only when it starts a group).
    pub fn add(&mut self, g: Cow<'_, Goroutine>) {
        self.total += 1;
        group::key_into(&g, &GroupBy::Stack, &mut self.scratch);
        match self.groups.get_mut(self.scratch.as_str()) {
            Some(s) => {
                s.count += 1;
                s.count_labels(Cow::Borrowed(&g.labels), 1);
            }
            None => {
                let labels = vec![(g.labels.clone(), 1)];
                let first = g.into_owned();
                self.groups.insert(
                    self.scratch.clone(),
                    Stack {
                        first,
                        count: 1,
                        labels,
                    },
                );
            }
        }
    }

    /// Counts in `later`, whose goroutines all come after this one's.
    pub fn merge(&mut self, later: Records) {
        self.total += later.total;
        self.groups.merge(later.groups, |mine, theirs| {
            mine.count += theirs.count;
            for (labels, n) in theirs.labels {
                mine.count_labels(Cow::Owned(labels), n);
            }
        });
    }

    /// The records of `gs`.
    pub fn of<'g>(gs: impl IntoIterator<Item = &'g Goroutine>) -> Records {
        let mut r = Records::default();
        for g in gs {
            r.add(Cow::Borrowed(g));
        }
        r
    }
}

/// Writes the records in `debug=1` form: largest group first (ties: the group whose first
/// goroutine comes first), each label set of a group in order of first appearance.
pub fn render(records: &Records, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "goroutine profile: total {}", records.total)?;
    let mut groups: Vec<&Stack> = records.groups.values().iter().collect();
    // Stable: first-appearance order among equal counts.
    groups.sort_by_key(|s| std::cmp::Reverse(s.count));
    for s in groups {
        for (labels, n) in &s.labels {
            record(&s.first, labels, *n, out)?;
        }
    }
    Ok(())
}

/// One record: `N @ pcs`, `# labels: {...}` as `labelMap.String` prints them (each `%q:%q`,
/// sorted as text), then the frames.
fn record(
    g: &Goroutine,
    labels: &[(LabelStr, LabelStr)],
    n: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    write!(out, "{n} @")?;
    for f in g.frames.iter().filter(|f| !f.inlined) {
        write!(out, " {:#x}", f.pc)?;
    }
    writeln!(out)?;
    if !labels.is_empty() {
        let mut l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
            .collect();
        l.sort();
        writeln!(out, "# labels: {{{}}}", l.join(", "))?;
    }
    // Like printStackRecord: leading runtime frames are skipped.
    let mut show = false;
    for f in &g.frames {
        if !show && !f.function.starts_with("runtime.") {
            show = true;
        }
        if show {
            writeln!(
                out,
                "#\t{:#x}\t{}+{:#x}\t{}:{}",
                f.pc,
                text(&f.function),
                f.pc.saturating_sub(f.entry),
                text(&f.file),
                f.line
            )?;
        }
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Frame;

    /// Records counted from chunks merged in order print what the records of all the
    /// goroutines at once print: groups largest first (ties in order of first appearance),
    /// each group's label sets in order of first appearance with their counts.
    #[test]
    fn records_merged_from_chunks_are_the_records_of_the_whole() {
        // The group seen last grows largest: its place in the text is from its count.
        let gs: Vec<Goroutine> = (0..46u64)
            .map(|i| Goroutine {
                id: i + 1,
                state: "chan receive".into(),
                frames: vec![
                    Frame::at(
                        &format!("main.leaf{}", if i < 40 { i % 3 } else { 2 }),
                        "/src/x.go",
                        7,
                    ),
                    Frame::at("main.main", "/src/x.go", 20),
                ],
                labels: match i % 4 {
                    0 => vec![("k".into(), "a".into())],
                    1 => vec![("k".into(), "b".into())],
                    _ => Vec::new(),
                },
                ..Default::default()
            })
            .collect();
        let text = |r: &Records| {
            let mut out = Vec::new();
            render(r, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let want = text(&Records::of(&gs));
        let counts: Vec<&str> = want
            .lines()
            .filter_map(|l| l.split_once(" @").map(|(n, _)| n))
            .collect();
        // leaf2 (19: labels none, b, a), leaf0 (14: a, none, b), leaf1 (13: b, a, none).
        assert_eq!(
            counts,
            ["9", "5", "5", "4", "7", "3", "4", "3", "6"],
            "{want}"
        );
        assert!(want.starts_with("goroutine profile: total 46\n"));
        for size in [1, 3, 7, 46] {
            let mut merged = Records::default();
            for chunk in gs.chunks(size) {
                let mut r = Records::default();
                for g in chunk {
                    r.add(Cow::Owned(g.clone()));
                }
                merged.merge(r);
            }
            assert_eq!(text(&merged), want, "chunks of {size}");
        }
    }
}
