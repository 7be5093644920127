//! delve's `bt`: numbered frames, `N  0xpc in func` / `at file:line`.

use crate::snapshot::Goroutine;
use std::io::{self, Write};

/// Writes a goroutine's frames, every frame (runtime ones included), indented by `indent`
/// levels of four spaces.
pub fn frames(g: &Goroutine, indent: usize, out: &mut dyn Write) -> io::Result<()> {
    let pad = "    ".repeat(indent);
    let width = g.frames.len().saturating_sub(1).to_string().len().max(1);
    for (i, f) in g.frames.iter().enumerate() {
        writeln!(out, "{pad}{i:>width$}  {:#018x} in {}", f.pc, f.function)?;
        writeln!(out, "{pad}{:width$}     at {}:{}", "", f.file, f.line)?;
    }
    if let Some(e) = &g.stack_error {
        writeln!(out, "{pad}(truncated: {e})")?;
    }
    Ok(())
}
