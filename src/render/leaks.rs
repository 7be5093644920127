//! `goroscope leaks` in Go's format: the leaked goroutines as the runtime's goroutineleak
//! profile prints them at debug=2, then a summary by creation site and stack.

use super::safe::text;
use crate::snapshot::{Goroutine, Meta};
use std::io::{self, Write};

/// The leaked goroutines as the runtime prints them, then one paragraph a group.
pub fn render(meta: &Meta, leaked: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    let opts = super::traceback::Options {
        level: 1,
        labels: meta.traceback_labels,
        leaked: true,
    };
    super::traceback::render(meta, leaked.iter().copied(), opts, out)?;
    let groups = crate::runtime::leaks::groups(leaked.iter().copied());
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{} leaked goroutine{} in {} group{}:",
        leaked.len(),
        if leaked.len() == 1 { "" } else { "s" },
        groups.len(),
        if groups.len() == 1 { "" } else { "s" }
    )?;
    for g in &groups {
        writeln!(out, "\n{} [{}]", g.count, text(&g.state))?;
        for f in &g.frames {
            writeln!(out, "\t{}", text(f))?;
        }
        if !g.created_by.is_empty() {
            writeln!(out, "\tcreated by {}", text(&g.created_by))?;
        }
        for (kind, addr) in &g.objects {
            writeln!(out, "\twaiting on {} {addr:#x}", text(kind))?;
        }
        let ids: Vec<String> = g.ids.iter().map(|i| i.to_string()).collect();
        writeln!(out, "\tgoroutines {}", ids.join(" "))?;
    }
    Ok(())
}
