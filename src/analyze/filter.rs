//! Filters: by state, wait minutes, function, label, and a rules file of stacks known to be
//! healthy (so the unknown ones stand out).

use crate::snapshot::{Goroutine, Loc};
use regex::Regex;

/// Which goroutines to keep. Every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Keep goroutines whose state is one of these (exact, or a prefix followed by " (").
    pub states: Vec<String>,
    /// Keep goroutines blocked at least this many minutes.
    pub wait_min: Option<i64>,
    /// Keep goroutines with a frame whose function matches.
    pub func: Option<Regex>,
    /// Keep goroutines with all these labels.
    pub labels: Vec<(String, String)>,
    /// Drop goroutines that match one of these healthy-stack rules.
    pub exclude: Vec<Rule>,
    /// Keep runtime-internal goroutines too.
    pub system: bool,
    /// delve's `goroutines -with` (true) and `-without` (false) conditions.
    pub conds: Vec<(bool, Cond)>,
}

/// A condition of delve's `goroutines -with COND` / `-without COND`.
#[derive(Debug, Clone)]
pub enum Cond {
    /// The location (`userloc`, `curloc`, `goloc`, `startloc`), written as delve writes it
    /// for this match (`file:line in function`), matches.
    Loc(Loc, LocMatch),
    /// Has the label `key` (with this value, if given).
    Label(String, Option<String>),
    /// Running on an OS thread.
    Running,
    /// A user goroutine (not runtime-internal).
    User,
    /// In this state (wait reason or status, as the traceback header prints it).
    State(String),
}

/// How a location is matched.
#[derive(Debug, Clone)]
pub enum LocMatch {
    /// Contains this text (delve's way).
    Contains(String),
    /// The regular expression matches somewhere in it.
    Regex(Regex),
}

impl LocMatch {
    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        match self {
            LocMatch::Contains(s) => text.contains(s.as_str()),
            LocMatch::Regex(re) => re.is_match(text),
        }
    }
}

impl Cond {
    /// Whether the goroutine satisfies the condition.
    pub fn holds(&self, g: &Goroutine) -> bool {
        match self {
            Cond::Loc(loc, m) => g
                .location(*loc)
                .is_some_and(|l| m.is_match(&format!("{}:{} in {}", l.file, l.line, l.function))),
            Cond::Label(k, v) => g
                .labels
                .iter()
                .any(|(lk, lv)| lk == k.as_str() && v.as_ref().is_none_or(|v| lv == v.as_str())),
            Cond::Running => g.thread.is_some(),
            Cond::User => !g.system,
            Cond::State(s) => *g.state == **s,
        }
    }
}

/// A healthy-stack rule: regular expressions that must each match a frame, in stack order
/// (innermost first), against `function` or `file:line`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The patterns, innermost first.
    pub patterns: Vec<Regex>,
}

impl Filter {
    /// Whether a goroutine passes.
    pub fn keep(&self, g: &Goroutine) -> bool {
        if g.system && !self.system {
            return false;
        }
        if !self.states.is_empty() && !self.states.iter().any(|s| *g.state == **s) {
            return false;
        }
        if let Some(m) = self.wait_min
            && g.wait_minutes < m
        {
            return false;
        }
        if let Some(re) = &self.func
            && !g.frames.iter().any(|f| re.is_match(&f.function))
        {
            return false;
        }
        for (k, v) in &self.labels {
            if !g
                .labels
                .iter()
                .any(|(lk, lv)| lk == k.as_str() && lv == v.as_str())
            {
                return false;
            }
        }
        if !self.conds.iter().all(|(with, c)| c.holds(g) == *with) {
            return false;
        }
        !self.exclude.iter().any(|r| r.matches(g))
    }
}

impl Rule {
    /// Whether every pattern matches a frame, in order.
    pub fn matches(&self, g: &Goroutine) -> bool {
        let mut frames = g.frames.iter();
        self.patterns.iter().all(|re| {
            frames
                .any(|f| re.is_match(&f.function) || re.is_match(&format!("{}:{}", f.file, f.line)))
        })
    }
}

/// Parses a rules file: blocks of regular expressions separated by blank lines, one block a
/// rule; `#` starts a comment line.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut cur = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        if l.is_empty() {
            if !cur.is_empty() {
                rules.push(Rule {
                    patterns: std::mem::take(&mut cur),
                });
            }
            continue;
        }
        cur.push(Regex::new(l).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    if !cur.is_empty() {
        rules.push(Rule { patterns: cur });
    }
    Ok(rules)
}

/// Parses `k=v`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label {s:?} is not k=v"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Frame;

    fn g(state: &str, funcs: &[&str]) -> Goroutine {
        Goroutine {
            state: state.into(),
            frames: funcs.iter().map(|f| Frame::at(f, "x.go", 4)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_in_order() {
        let rules = parse_rules(
            "# healthy\nnet/http\\.\\(\\*conn\\)\\.serve\n\nmain\\.idle\nmain\\.loop\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        let f = Filter {
            exclude: rules,
            ..Default::default()
        };
        assert!(!f.keep(&g("IO wait", &["net.read", "net/http.(*conn).serve"])));
        assert!(!f.keep(&g("select", &["main.idle", "main.loop"])));
        assert!(f.keep(&g("select", &["main.loop", "main.idle"])));
        assert!(parse_rules("(").is_err());
    }

    #[test]
    fn states_minutes_funcs_labels() {
        let mut x = g("chan send", &["main.produce"]);
        x.wait_minutes = 5;
        x.labels = vec![("tenant".into(), "a".into())];
        let f = Filter {
            states: vec!["chan send".into()],
            wait_min: Some(3),
            func: Some(Regex::new("produce").unwrap()),
            labels: vec![parse_label("tenant=a").unwrap()],
            ..Default::default()
        };
        assert!(f.keep(&x));
        assert!(
            !Filter {
                wait_min: Some(6),
                ..Default::default()
            }
            .keep(&x)
        );
        assert!(
            !Filter {
                labels: vec![("tenant".into(), "b".into())],
                ..Default::default()
            }
            .keep(&x)
        );
    }
}
