//! The grouped view: identical stacks once, with their count, states, wait-minute range,
//! goroutine ids (abbreviated) and creator; largest group first. Like pprof's `debug=1`, but
//! in traceback shape.

use super::safe::{label, text};
use crate::analyze::group::{GroupBy, MAX_IDS, Summary, key};
use crate::snapshot::Goroutine;
use crate::unwind::symbolize::print_name;
use std::io::{self, Write};

/// Writes the groups. `by` decides whether a group shows a stack (`stack`) or only its key.
pub fn render(
    groups: &[Summary],
    by: &GroupBy,
    total: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "{} goroutines in {} group{}",
        total,
        groups.len(),
        if groups.len() == 1 { "" } else { "s" }
    )?;
    for grp in groups {
        writeln!(out)?;
        header(grp, out)?;
        if *by == GroupBy::Stack {
            stack(grp, out)?;
        } else {
            writeln!(out, "    {}", title(&grp.first, by))?;
        }
    }
    Ok(())
}

/// What the goroutines grouped with `g` by `by` share, safe to print: `label:KEY` groups as
/// `KEY=value` (the value through [`label`]), other keys through [`text`].
pub fn title(g: &Goroutine, by: &GroupBy) -> String {
    if let GroupBy::Label(k) = by
        && let Some((_, v)) = g.labels.iter().find(|(lk, _)| lk == k.as_str())
    {
        return format!("{}={}", text(k), label(v));
    }
    text(&key(g, by)).into_owned()
}

/// `N goroutines [state, M-N minutes]: ids`.
fn header(grp: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let n = grp.count;
    let states: Vec<&str> = grp.states.iter().map(|s| &**s).collect();
    write!(
        out,
        "{n} goroutine{} [{}",
        if n == 1 { "" } else { "s" },
        text(&states.join(" | "))
    )?;
    match grp.minutes {
        (0, 0) => {}
        (lo, hi) if lo == hi => write!(out, ", {lo} minutes")?,
        (lo, hi) => write!(out, ", {lo}-{hi} minutes")?,
    }
    if grp.locked > 0 {
        write!(out, ", {} locked to thread", grp.locked)?;
    }
    write!(out, "]:")?;
    for id in grp.ids.iter().take(MAX_IDS) {
        write!(out, " {id}")?;
    }
    if n > MAX_IDS {
        write!(out, " (+{} more)", n - MAX_IDS)?;
    }
    writeln!(out)
}

fn stack(grp: &Summary, out: &mut dyn Write) -> io::Result<()> {
    let g = &grp.first;
    let shown: Vec<_> = g.frames.iter().filter(|f| !f.hidden).collect();
    let frames = if shown.is_empty() {
        g.frames.iter().collect()
    } else {
        shown
    };
    for f in frames {
        writeln!(out, "    {}", text(&print_name(&f.function)))?;
        writeln!(out, "        {}:{}", text(&f.file), f.line)?;
    }
    if let Some(e) = &g.stack_error {
        writeln!(out, "    (stack truncated: {})", text(e))?;
    }
    if let Some(c) = g.created_by.as_ref().filter(|c| !c.hidden) {
        write!(out, "    created by {}", text(&print_name(&c.function)))?;
        let mut parents = grp.parents.iter();
        match (parents.next(), grp.parents.len()) {
            (None, _) => {}
            (Some(one), 1) => write!(out, " in goroutine {one}")?,
            (_, n) => write!(out, " in {n} goroutines")?,
        }
        writeln!(out)?;
        writeln!(out, "        {}:{}", text(&c.file), c.line)?;
    }
    Ok(())
}
