//! Grouping goroutines: identical stacks together (ignoring argument values and wait
//! minutes), largest group first; or by another key (`--group-by`).

use crate::snapshot::{Goroutine, Name, is_runtime_internal};
use std::collections::HashMap;

/// What makes two goroutines the same group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// State and every shown frame (function, file, line) and the creating `go` statement.
    Stack,
    /// The first frame that is not runtime-internal (delve's user location).
    UserFrame,
    /// The topmost frame (delve's current location).
    CurrentFrame,
    /// Whether it runs on an OS thread.
    Running,
    /// Whether it is a runtime-internal goroutine.
    System,
    /// The `go` statement that created it.
    GoStatement,
    /// Its start function.
    Start,
    /// Its state (wait reason).
    State,
    /// The value of one pprof label.
    Label(String),
}

impl GroupBy {
    /// Parses `stack|user-frame|go-statement|start|state|label:KEY`.
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        Ok(match s {
            "stack" => GroupBy::Stack,
            "user-frame" => GroupBy::UserFrame,
            "current-frame" => GroupBy::CurrentFrame,
            "running" => GroupBy::Running,
            "system" => GroupBy::System,
            "go-statement" => GroupBy::GoStatement,
            "start" => GroupBy::Start,
            "state" => GroupBy::State,
            _ => match s.strip_prefix("label:") {
                Some(k) if !k.is_empty() => GroupBy::Label(k.to_string()),
                _ => {
                    return Err(format!(
                        "unknown grouping {s:?}: use stack, user-frame, current-frame, go-statement, start, state, running, system or label:KEY"
                    ));
                }
            },
        })
    }
}

/// One group with every member, for the views that list members (pprof's `debug=1`, the
/// session's `goroutines -group`); the grouped view and diffs count them in a [`Tally`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'s> {
    /// The key: what the members share (`render::grouped::title` prints it).
    pub key: String,
    /// Members, in snapshot order.
    pub members: Vec<&'s Goroutine>,
}

impl<'s> Group<'s> {
    /// The first member, whose stack stands for the group.
    pub fn representative(&self) -> &'s Goroutine {
        self.members[0]
    }
}

/// The key of one goroutine. Stacks ignore argument values and wait minutes.
pub fn key(g: &Goroutine, by: &GroupBy) -> String {
    let mut k = String::new();
    key_into(g, by, &mut k);
    k
}

/// [`key`] written into `k` (cleared first), whose room is used again: grouping a big
/// snapshot builds one key a goroutine and keeps only the new ones.
pub(crate) fn key_into(g: &Goroutine, by: &GroupBy, k: &mut String) {
    use std::fmt::Write;
    k.clear();
    let place = |k: &mut String, function: &str, file: &str, line: u32| {
        k.push_str(function);
        k.push(' ');
        k.push_str(file);
        // Writing into a String cannot fail.
        let _ = write!(k, ":{line}");
    };
    match by {
        GroupBy::Stack => {
            k.push_str(&g.state);
            for f in g.frames.iter().filter(|f| !f.hidden) {
                k.push('\n');
                place(k, &f.function, &f.file, f.line);
            }
            if let Some(c) = &g.created_by {
                k.push_str("\ncreated by ");
                place(k, &c.function, &c.file, c.line);
            }
        }
        GroupBy::UserFrame => match g.frames.iter().find(|f| !is_runtime_internal(&f.function)) {
            Some(f) => place(k, &f.function, &f.file, f.line),
            None => k.push_str("(no user frame)"),
        },
        GroupBy::CurrentFrame => match g.frames.first() {
            Some(f) => place(k, &f.function, &f.file, f.line),
            None => k.push_str("(no frame)"),
        },
        GroupBy::Running => k.push_str(if g.thread.is_some() {
            "running on a thread"
        } else {
            "not running"
        }),
        GroupBy::System => k.push_str(if g.system {
            "runtime goroutine"
        } else {
            "user goroutine"
        }),
        GroupBy::GoStatement => match &g.created_by {
            Some(c) => place(k, &c.function, &c.file, c.line),
            None => k.push_str("(no go statement)"),
        },
        GroupBy::Start if g.start_func.is_empty() => k.push_str("(unknown start)"),
        GroupBy::Start => k.push_str(&g.start_func),
        GroupBy::State => k.push_str(&g.state),
        // The value's bytes, every one kept apart (`\\` for a backslash, `\xff` for a byte
        // that is not ASCII), and the whole length of one read in part; shown by
        // `render::grouped::title`.
        GroupBy::Label(key) => {
            let _ = match g.labels.iter().find(|(lk, _)| lk == key.as_str()) {
                Some((_, v)) if v.is_whole() => write!(k, "{key}={}", v.bytes().escape_ascii()),
                Some((_, v)) => write!(k, "{key}={}...{}", v.bytes().escape_ascii(), v.len()),
                None => write!(k, "{key} unset"),
            };
        }
    }
}

/// Groups the goroutines, largest group first (ties: the group whose first member comes first).
pub fn group<'s>(gs: impl IntoIterator<Item = &'s Goroutine>, by: &GroupBy) -> Vec<Group<'s>> {
    let mut groups: FirstSeen<String, Group<'s>> = FirstSeen::default();
    for g in gs {
        let k = key(g, by);
        match groups.get_mut(&k) {
            Some(grp) => grp.members.push(g),
            None => groups.insert(
                k.clone(),
                Group {
                    key: k,
                    members: vec![g],
                },
            ),
        }
    }
    // Stable sort keeps first-appearance order among equal counts.
    let mut groups = groups.into_values();
    groups.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    groups
}

/// Goroutine ids a [`Summary`] keeps (the grouped view lists this many, then a count).
pub const MAX_IDS: usize = 10;

/// What the grouped view shows of one group, built a goroutine at a time in snapshot order
/// ([`Tally`]): its first member whole, and of the others only counts and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The key: what the members share (`render::grouped::title` prints it).
    pub key: String,
    /// The first member, whose stack stands for the group.
    pub first: Goroutine,
    /// Members.
    pub count: usize,
    /// Distinct states of the members, in order of first appearance.
    pub states: Vec<Name>,
    /// Smallest and largest wait minutes.
    pub minutes: (i64, i64),
    /// Members locked to their thread.
    pub locked: usize,
    /// The first [`MAX_IDS`] members' ids.
    pub ids: Vec<u64>,
    /// The members' creators (`parent_id`, 0 left out), sorted, each once.
    pub parents: std::collections::BTreeSet<u64>,
}

impl Summary {
    /// A group of one.
    fn new(key: String, g: Goroutine) -> Summary {
        let mut s = Summary {
            key,
            count: 0,
            states: Vec::new(),
            minutes: (g.wait_minutes, g.wait_minutes),
            locked: 0,
            ids: Vec::new(),
            parents: Default::default(),
            first: Goroutine::default(),
        };
        s.add(&g);
        s.first = g;
        s
    }

    /// Counts `g` in.
    fn add(&mut self, g: &Goroutine) {
        self.count += 1;
        if !self.states.contains(&g.state) {
            self.states.push(g.state.clone());
        }
        self.minutes = (
            self.minutes.0.min(g.wait_minutes),
            self.minutes.1.max(g.wait_minutes),
        );
        self.locked += usize::from(g.locked_to_thread);
        if self.ids.len() < MAX_IDS {
            self.ids.push(g.id);
        }
        if g.parent_id != 0 {
            self.parents.insert(g.parent_id);
        }
    }

    /// Counts in the members of `later`, a group of the same key whose members all come after
    /// this one's.
    fn merge(&mut self, later: Summary) {
        self.count += later.count;
        for st in later.states {
            if !self.states.contains(&st) {
                self.states.push(st);
            }
        }
        self.minutes = (
            self.minutes.0.min(later.minutes.0),
            self.minutes.1.max(later.minutes.1),
        );
        self.locked += later.locked;
        let room = MAX_IDS.saturating_sub(self.ids.len());
        self.ids.extend(later.ids.into_iter().take(room));
        self.parents.extend(later.parents);
    }
}

/// Values by key in order of first appearance, merged in order: the shape of every grouping
/// built a goroutine at a time, for a whole snapshot or per chunk of a stream (the grouped
/// view's [`Tally`], a profile's samples).
#[derive(Debug)]
pub struct FirstSeen<K, V> {
    index: HashMap<K, usize, crate::unwind::Seeded>,
    values: Vec<V>,
}

impl<K, V> Default for FirstSeen<K, V> {
    fn default() -> Self {
        FirstSeen {
            index: HashMap::default(),
            values: Vec::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V> FirstSeen<K, V> {
    /// The value of `key`, if it has one.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let &i = self.index.get(key)?;
        self.values.get_mut(i)
    }

    /// Adds `value` for `key`, which has none yet.
    pub fn insert(&mut self, key: K, value: V) {
        self.index.insert(key, self.values.len());
        self.values.push(value);
    }

    /// Adds the values of `later`, whose keys all first appeared after this one's: a key both
    /// have gets `combine` of the two values.
    pub fn merge(&mut self, later: FirstSeen<K, V>, mut combine: impl FnMut(&mut V, V)) {
        let mut keys: Vec<(usize, K)> = later.index.into_iter().map(|(k, i)| (i, k)).collect();
        keys.sort_unstable_by_key(|&(i, _)| i);
        for ((_, k), v) in keys.into_iter().zip(later.values) {
            match self.get_mut(&k) {
                Some(mine) => combine(mine, v),
                None => self.insert(k, v),
            }
        }
    }

    /// The values in order of first appearance.
    pub fn values(&self) -> &[V] {
        &self.values
    }

    /// The values in order of first appearance, taken.
    pub fn into_values(self) -> Vec<V> {
        self.values
    }
}

/// Goroutines grouped as they come ([`Summary`] per group), in snapshot order: one for a
/// whole snapshot, or one per chunk of a streamed dump merged in order.
#[derive(Debug, Default)]
pub struct Tally {
    groups: FirstSeen<String, Summary>,
    total: usize,
    /// The key being built ([`key_into`]).
    scratch: String,
}

impl Tally {
    /// Counts `g` into its group by `by` (a copy of it kept only when it starts a group).
    pub fn add(&mut self, g: std::borrow::Cow<'_, Goroutine>, by: &GroupBy) {
        key_into(&g, by, &mut self.scratch);
        self.total += 1;
        match self.groups.get_mut(self.scratch.as_str()) {
            Some(s) => s.add(&g),
            None => {
                let k = self.scratch.clone();
                self.groups
                    .insert(k.clone(), Summary::new(k, g.into_owned()));
            }
        }
    }

    /// Counts in `later`, whose goroutines all come after this one's.
    pub fn merge(&mut self, later: Tally) {
        self.total += later.total;
        self.groups.merge(later.groups, Summary::merge);
    }

    /// The groups in order of first appearance.
    pub fn groups(&self) -> &[Summary] {
        self.groups.values()
    }

    /// Goroutines counted.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The groups, largest first (ties: the group whose first member comes first).
    pub fn into_sorted(self) -> Vec<Summary> {
        let mut groups = self.groups.into_values();
        groups.sort_by_key(|g| std::cmp::Reverse(g.count));
        groups
    }

    /// The groups of `gs` by `by`, largest first.
    pub fn of<'s>(gs: impl IntoIterator<Item = &'s Goroutine>, by: &GroupBy) -> Vec<Summary> {
        Tally::counting(gs, by).into_sorted()
    }

    /// The tally of `gs` by `by`.
    pub fn counting<'s>(gs: impl IntoIterator<Item = &'s Goroutine>, by: &GroupBy) -> Tally {
        let mut t = Tally::default();
        for g in gs {
            t.add(std::borrow::Cow::Borrowed(g), by);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Frame;

    fn g(id: u64, state: &str, f: &str, minutes: i64) -> Goroutine {
        Goroutine {
            id,
            state: state.into(),
            wait_minutes: minutes,
            frames: vec![Frame::new(
                crate::snapshot::Site {
                    function: f.into(),
                    file: "a.go".into(),
                    line: 1,
                    ..Default::default()
                }
                .into(),
                format!("{id:#x}").into(),
                0,
                0,
            )],
            ..Default::default()
        }
    }

    #[test]
    fn groups_ignore_args_and_minutes_largest_first() {
        let gs = vec![
            g(1, "select", "main.a", 0),
            g(2, "chan send", "main.b", 1),
            g(3, "chan send", "main.b", 9),
        ];
        let groups = group(&gs, &GroupBy::Stack);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].members.iter().map(|g| g.id).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(groups[1].members[0].id, 1);
    }

    #[test]
    fn a_tally_merged_from_chunks_is_the_tally_of_the_whole() {
        let mut gs: Vec<Goroutine> = (1..=40)
            .map(|i| {
                let mut x = g(
                    i,
                    ["select", "chan send", "sleep"][i as usize % 3],
                    "main.b",
                    0,
                );
                x.wait_minutes = (i as i64 * 7) % 11;
                x.locked_to_thread = i % 4 == 0;
                x.parent_id = i % 5;
                x
            })
            .collect();
        gs.push(g(41, "select", "main.a", 0));
        for by in [GroupBy::Stack, GroupBy::State, GroupBy::CurrentFrame] {
            let whole = Tally::of(&gs, &by);
            for size in [1, 3, 7, 16, 41] {
                let mut merged = Tally::default();
                for chunk in gs.chunks(size) {
                    let mut t = Tally::default();
                    for x in chunk {
                        t.add(std::borrow::Cow::Owned(x.clone()), &by);
                    }
                    merged.merge(t);
                }
                assert_eq!(merged.total(), gs.len());
                assert_eq!(merged.into_sorted(), whole, "{by:?} in chunks of {size}");
            }
        }
        let by_state = Tally::of(&gs, &GroupBy::State);
        // Equal counts keep the order of first appearance: goroutine 1 waits in "chan send".
        assert_eq!(by_state[0].key, "chan send");
        let select = &by_state[1];
        assert_eq!((select.key.as_str(), select.count), ("select", 14));
        assert_eq!(select.ids, vec![3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
        assert_eq!(select.minutes, (0, 10));
    }

    #[test]
    fn parses_group_by() {
        assert_eq!(
            GroupBy::parse("label:tenant").unwrap(),
            GroupBy::Label("tenant".into())
        );
        assert!(GroupBy::parse("label:").is_err());
        assert!(GroupBy::parse("nope").is_err());
    }
}
