//! pprof's `debug=1` goroutine text (`/debug/pprof/goroutine?debug=1`): `goroutine profile:
//! total N`, then each distinct stack with its count, pcs, labels and frames, largest first.

use super::safe::{go_quote, text};
use crate::analyze::group::Group;
use std::io::{self, Write};

/// Writes the groups (by stack) in `debug=1` form.
pub fn render(groups: &[Group<'_>], total: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "goroutine profile: total {total}")?;
    for grp in groups {
        let g = grp.representative();
        write!(out, "{} @", grp.members.len())?;
        for f in g.frames.iter().filter(|f| !f.inlined) {
            write!(out, " {:#x}", f.pc)?;
        }
        writeln!(out)?;
        if !g.labels.is_empty() {
            let l: Vec<String> = g.labels.iter().map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v))).collect();
            writeln!(out, "# labels: {{{}}}", l.join(", "))?;
        }
        // Like printStackRecord: leading runtime frames are skipped.
        let mut show = false;
        for f in &g.frames {
            if !show && !f.function.starts_with("runtime.") {
                show = true;
            }
            if show {
                writeln!(out, "#\t{:#x}\t{}+{:#x}\t{}:{}", f.pc, text(&f.function), f.pc.saturating_sub(f.entry), text(&f.file), f.line)?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}
