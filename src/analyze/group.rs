//! Grouping goroutines: identical stacks together (ignoring argument values and wait
//! minutes), largest group first; or by another key (`--group-by`).

use crate::snapshot::{Goroutine, is_runtime_internal};
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

/// One group.
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

    /// Distinct states of the members, in order of first appearance.
    pub fn states(&self) -> Vec<&'s str> {
        let mut v: Vec<&str> = Vec::new();
        for g in &self.members {
            if !v.contains(&&*g.state) {
                v.push(&g.state);
            }
        }
        v
    }

    /// Smallest and largest wait minutes.
    pub fn minutes(&self) -> (i64, i64) {
        let it = self.members.iter().map(|g| g.wait_minutes);
        (it.clone().min().unwrap_or(0), it.max().unwrap_or(0))
    }
}

/// The key of one goroutine. Stacks ignore argument values and wait minutes.
pub fn key(g: &Goroutine, by: &GroupBy) -> String {
    match by {
        GroupBy::Stack => {
            let mut k = g.state.to_string();
            for f in g.frames.iter().filter(|f| !f.hidden) {
                k.push('\n');
                k.push_str(&format!("{} {}:{}", f.function, f.file, f.line));
            }
            if let Some(c) = &g.created_by {
                k.push_str(&format!(
                    "\ncreated by {} {}:{}",
                    c.function, c.file, c.line
                ));
            }
            k
        }
        GroupBy::UserFrame => g
            .frames
            .iter()
            .find(|f| !is_runtime_internal(&f.function))
            .map(|f| format!("{} {}:{}", f.function, f.file, f.line))
            .unwrap_or_else(|| "(no user frame)".into()),
        GroupBy::CurrentFrame => match g.frames.first() {
            Some(f) => format!("{} {}:{}", f.function, f.file, f.line),
            None => "(no frame)".into(),
        },
        GroupBy::Running => (if g.thread.is_some() {
            "running on a thread"
        } else {
            "not running"
        })
        .into(),
        GroupBy::System => (if g.system {
            "runtime goroutine"
        } else {
            "user goroutine"
        })
        .into(),
        GroupBy::GoStatement => match &g.created_by {
            Some(c) => format!("{} {}:{}", c.function, c.file, c.line),
            None => "(no go statement)".into(),
        },
        GroupBy::Start => {
            if g.start_func.is_empty() {
                "(unknown start)".into()
            } else {
                g.start_func.to_string()
            }
        }
        GroupBy::State => g.state.to_string(),
        // The value's bytes, every one kept apart (`\\` for a backslash, `\xff` for a byte
        // that is not ASCII), and the whole length of one read in part; shown by
        // `render::grouped::title`.
        GroupBy::Label(k) => match g.labels.iter().find(|(lk, _)| lk == k.as_str()) {
            Some((_, v)) if v.is_whole() => format!("{k}={}", v.bytes().escape_ascii()),
            Some((_, v)) => format!("{k}={}...{}", v.bytes().escape_ascii(), v.len()),
            None => format!("{k} unset"),
        },
    }
}

/// Groups the goroutines, largest group first (ties: the group whose first member comes first).
pub fn group<'s>(gs: impl IntoIterator<Item = &'s Goroutine>, by: &GroupBy) -> Vec<Group<'s>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Group<'s>> = Vec::new();
    for g in gs {
        let k = key(g, by);
        match index.get(&k) {
            Some(&i) => groups[i].members.push(g),
            None => {
                index.insert(k.clone(), groups.len());
                groups.push(Group {
                    key: k,
                    members: vec![g],
                });
            }
        }
    }
    // Stable sort keeps first-appearance order among equal counts.
    groups.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    groups
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
            frames: vec![Frame {
                function: f.into(),
                file: "a.go".into(),
                line: 1,
                args: format!("{id:#x}").into(),
                ..Default::default()
            }],
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
        assert_eq!(groups[0].minutes(), (1, 9));
        assert_eq!(groups[1].members[0].id, 1);
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
