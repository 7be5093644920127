//! pprof's `debug=1` goroutine text (`/debug/pprof/goroutine?debug=1`): `goroutine profile:
//! total N`, then each distinct stack with its count, pcs, labels and frames, largest first.

use super::safe::{go_quote, text};
use crate::analyze::group::Group;
use crate::snapshot::{Goroutine, LabelStr};
use std::io::{self, Write};

/// Writes the groups (by stack) in `debug=1` form. pprof's key is the stack and the labels,
/// so a group whose members carry different labels prints once per label set.
pub fn render(groups: &[Group<'_>], total: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "goroutine profile: total {total}")?;
    for grp in groups {
        let mut by_labels: Vec<(&[(LabelStr, LabelStr)], usize)> = Vec::new();
        for g in &grp.members {
            match by_labels
                .iter_mut()
                .find(|(l, _)| *l == g.labels.as_slice())
            {
                Some((_, n)) => *n += 1,
                None => by_labels.push((&g.labels, 1)),
            }
        }
        for (labels, n) in by_labels {
            record(grp.representative(), labels, n, out)?;
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
