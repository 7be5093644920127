//! delve's `threads` listing, for `goroscope threads` and the session.

use super::color::Palette;
use super::safe::text;
use crate::snapshot::Snapshot;
use std::io::{self, Write};

/// delve's `threads`: `* Thread TID at 0xpc file:line function`, and the goroutine it runs;
/// `*` on `selected`.
pub fn render(
    snap: &Snapshot,
    selected: Option<i32>,
    p: Palette,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut ts: Vec<_> = snap.threads.iter().collect();
    ts.sort_by_key(|t| t.tid);
    for t in ts {
        let mark = if selected == Some(t.tid) { "* " } else { "  " };
        match &t.function {
            Some(f) => write!(
                out,
                "{mark}Thread {} at {:#x} {}:{} {}",
                t.tid,
                t.pc,
                text(&t.file),
                t.line,
                p.function(f, f)
            )?,
            None => write!(out, "{mark}Thread {} at {:#x} (not Go code)", t.tid, t.pc)?,
        }
        match t.goid {
            Some(g) => writeln!(out, " (goroutine {g})")?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}
