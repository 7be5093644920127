//! `goroscope diff`, `watch` and the session's `diff`: the groups that appeared, vanished, grew
//! or shrank between two snapshots.

use super::safe::text;
use crate::analyze::diff;
use crate::analyze::group::{GroupBy, Tally};
use crate::snapshot::Goroutine;
use std::io::{self, Write};

/// What changed between two snapshots, group by group: their goroutines grouped by `by`
/// (the ones a filter keeps), each in order of first appearance.
pub fn render(a: &Tally, b: &Tally, by: &GroupBy, out: &mut dyn Write) -> io::Result<()> {
    let changes = diff::diff(a.groups(), b.groups());
    writeln!(
        out,
        "goroutines: {} -> {} ({:+})",
        a.total(),
        b.total(),
        b.total() as i64 - a.total() as i64
    )?;
    if changes.is_empty() {
        return writeln!(out, "no group changed");
    }
    for c in &changes {
        let what = match (c.before, c.after) {
            (0, _) => "appeared",
            (_, 0) => "vanished",
            (x, y) if y > x => "grew",
            _ => "shrank",
        };
        writeln!(
            out,
            "\n{:+} {} ({} -> {}) [{}]",
            c.delta(),
            what,
            c.before,
            c.after,
            text(&c.example.state)
        )?;
        describe(c.example, by, out)?;
    }
    Ok(())
}

/// A group's identity in a few lines: its key, or the representative's shown frames.
pub fn describe(g: &Goroutine, by: &GroupBy, out: &mut dyn Write) -> io::Result<()> {
    if *by != GroupBy::Stack {
        return writeln!(out, "    {}", super::grouped::title(g, by));
    }
    for f in g.frames.iter().filter(|f| !f.hidden).take(8) {
        writeln!(
            out,
            "    {}\n        {}:{}",
            text(&crate::unwind::symbolize::print_name(&f.function)),
            text(&f.file),
            f.line
        )?;
    }
    if let Some(c) = &g.created_by {
        writeln!(
            out,
            "    created by {}\n        {}:{}",
            text(&c.function),
            text(&c.file),
            c.line
        )?;
    }
    Ok(())
}
