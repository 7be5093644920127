//! `goroutines`: delve's list of goroutines, its flags, conditions and groups.

use super::{State, io};
use crate::analyze::filter::{Cond, Filter, LocMatch};
use crate::analyze::group::{self, GroupBy};
use crate::render::grs;
use crate::render::safe::{go_quote, text};
use crate::snapshot::{Goroutine, Loc};
use regex::Regex;
use std::io::Write;
/// Frames `goroutines -t` shows by default (delve's default).
const GRS_DEPTH: usize = 10;

/// Goroutines listed per group (delve's default).
const GROUP_MEMBERS: usize = 5;

/// The `-group` key of delve's words (and goroscope's `--group-by` names).
pub(super) fn group_by(words: &[&str]) -> Result<GroupBy, String> {
    Ok(match words {
        ["userloc"] => GroupBy::UserFrame,
        ["curloc"] => GroupBy::CurrentFrame,
        ["goloc" | "go"] => GroupBy::GoStatement,
        ["startloc"] => GroupBy::Start,
        ["running"] => GroupBy::Running,
        ["user"] => GroupBy::System,
        ["label", key] => GroupBy::Label(key.to_string()),
        [one] => GroupBy::parse(one)?,
        _ => return Err("-group takes userloc, curloc, goloc, startloc, running, user, state, stack or label KEY".into()),
    })
}

/// Parsed `goroutines` arguments.
#[derive(Debug, Default)]
pub(super) struct GrsArgs {
    pub(super) loc: Loc,
    pub(super) stacks: Option<usize>,
    pub(super) labels: bool,
    pub(super) filter: Filter,
    pub(super) group: Option<GroupBy>,
}

pub(super) fn grs_args(args: &[&str]) -> Result<GrsArgs, String> {
    let mut a = GrsArgs::default();
    let mut i = 0;
    // The words after a flag, up to the next flag.
    let operand = |i: &mut usize| -> Vec<&str> {
        let start = *i;
        while *i < args.len() && !args[*i].starts_with('-') {
            *i += 1;
        }
        args[start..*i].to_vec()
    };
    while i < args.len() {
        let flag = args[i];
        i += 1;
        match flag {
            "-u" => a.loc = Loc::User,
            "-r" => a.loc = Loc::Current,
            "-g" => a.loc = Loc::Go,
            "-s" => a.loc = Loc::Start,
            "-l" => a.labels = true,
            "-t" => {
                let depth = args.get(i).and_then(|d| d.parse().ok());
                if depth.is_some() {
                    i += 1;
                }
                a.stacks = Some(depth.unwrap_or(GRS_DEPTH));
            }
            "-with" | "-w" | "-without" | "-wo" => {
                let with = matches!(flag, "-with" | "-w");
                let words = operand(&mut i);
                // delve's match is a substring; `re:` asks for a regular expression.
                let pattern = |w: &[&str]| -> Result<LocMatch, String> {
                    let p = w.join(" ");
                    match p.strip_prefix("re:") {
                        Some(re) => Regex::new(re)
                            .map(LocMatch::Regex)
                            .map_err(|e| format!("{flag}: {}", e.to_string().replace('\n', " "))),
                        None => Ok(LocMatch::Contains(p)),
                    }
                };
                let cond = match words.as_slice() {
                    ["userloc" | "user", p @ ..] if !p.is_empty() => {
                        Cond::Loc(Loc::User, pattern(p)?)
                    }
                    ["curloc", p @ ..] if !p.is_empty() => Cond::Loc(Loc::Current, pattern(p)?),
                    ["goloc" | "go", p @ ..] if !p.is_empty() => Cond::Loc(Loc::Go, pattern(p)?),
                    ["startloc", p @ ..] if !p.is_empty() => Cond::Loc(Loc::Start, pattern(p)?),
                    ["label", kv] => match kv.split_once('=') {
                        Some((k, v)) => Cond::Label(k.into(), Some(v.into())),
                        None => Cond::Label(kv.to_string(), None),
                    },
                    ["running"] => Cond::Running,
                    ["user"] => Cond::User,
                    ["state", s @ ..] if !s.is_empty() => Cond::State(s.join(" ")),
                    _ => {
                        return Err(format!(
                            "{flag} takes userloc|curloc|goloc|startloc TEXT, label K[=V], running, user or state STATE"
                        ));
                    }
                };
                a.filter.conds.push((with, cond));
            }
            "-group" => a.group = Some(group_by(&operand(&mut i))?),
            other => {
                return Err(format!(
                    "unknown flag {other:?}; `help goroutines` lists them"
                ));
            }
        }
    }
    // Runtime goroutines are hidden, as Go's traceback hides them, unless a condition asks
    // about that classification.
    a.filter.system = a.filter.conds.iter().any(|(_, c)| matches!(c, Cond::User));
    Ok(a)
}

pub(super) fn goroutines(st: &State, args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let a = grs_args(args)?;
    list_goroutines(st, &a, out).map_err(io)
}

fn list_goroutines(st: &State, a: &GrsArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let opts = grs::Options {
        stacks: a.stacks.is_some(),
        depth: a.stacks,
        system: true,
        selected: st.goroutine,
        loc: a.loc,
        palette: st.palette,
    };
    let mut gs: Vec<&Goroutine> = st
        .snap
        .goroutines
        .iter()
        .filter(|g| a.filter.keep(g))
        .collect();
    gs.sort_by_key(|g| g.id);
    let with_labels =
        |gs: &[&Goroutine], indent: &str, out: &mut dyn Write| -> std::io::Result<()> {
            for g in gs {
                grs::list(&[g], opts, indent, out)?;
                if a.labels && !g.labels.is_empty() {
                    let l: Vec<String> = g
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                        .collect();
                    writeln!(out, "{indent}\tLabels: {}", l.join(", "))?;
                }
            }
            Ok(())
        };
    match &a.group {
        None => with_labels(&gs, "", out)?,
        Some(by) => {
            let groups = group::group(gs.iter().copied(), by);
            for (i, grp) in groups.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{}", group_title(grp.representative(), by))?;
                let shown: Vec<&Goroutine> =
                    grp.members.iter().copied().take(GROUP_MEMBERS).collect();
                with_labels(&shown, "\t", out)?;
                writeln!(out, "\tTotal: {}", grp.members.len())?;
            }
        }
    }
    // The runtime goroutines the listing would have shown but for Go's rule of hiding them.
    let mut all = a.filter.clone();
    all.system = true;
    let hidden = if a.filter.system {
        0
    } else {
        st.snap
            .goroutines
            .iter()
            .filter(|g| g.system && all.keep(g))
            .count()
    };
    if hidden > 0 {
        writeln!(
            out,
            "({hidden} runtime goroutine{} hidden, as Go's traceback hides them: {SHOW_RUNTIME} lists them)",
            if hidden == 1 { "" } else { "s" }
        )?;
    }
    writeln!(out, "[{} goroutines]", gs.len())
}

/// The command that lists runtime goroutines.
pub(super) const SHOW_RUNTIME: &str = "`goroutines -without user`";

/// A group's heading, safe to print: the location it shares, or its key.
fn group_title(rep: &Goroutine, by: &GroupBy) -> String {
    let loc = match by {
        GroupBy::UserFrame => Loc::User,
        GroupBy::CurrentFrame => Loc::Current,
        GroupBy::GoStatement => Loc::Go,
        GroupBy::Start => Loc::Start,
        GroupBy::Stack => {
            let at = rep
                .location(Loc::User)
                .map(|l| format!("{}:{} {}", l.file, l.line, l.function))
                .unwrap_or_default();
            return text(&format!("Identical stacks [{}] at {at}", rep.state)).into_owned();
        }
        _ => return crate::render::grouped::title(rep, by),
    };
    let title = match rep.location(loc) {
        Some(l) if l.file.is_empty() => format!("{}: {}", loc.title(), l.function),
        Some(l) => format!("{}: {}:{} {}", loc.title(), l.file, l.line, l.function),
        None => format!("{}: ?", loc.title()),
    };
    text(&title).into_owned()
}
