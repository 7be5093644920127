//! delve's `bt`: numbered frames, `N  0xpc in func` / `at file:line`.

use super::color::Palette;
use super::safe::text;
use crate::snapshot::Goroutine;
use std::io::{self, Write};

/// Options of the frame list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Levels of four spaces before every line.
    pub indent: usize,
    /// Frames shown at most (all when `None`); the rest is counted on one line.
    pub depth: Option<usize>,
    /// Mark a cut stack with delve's `(truncated)` line instead of counting what was cut.
    pub delve_cut: bool,
    /// Below each frame, its arguments as the runtime's traceback prints them (the words in
    /// the argument spill slots, `?` where not live; `(inlined)` where the traceback prints `(...)`),
    /// then the frame's pending defers, in the order they will run, then its `values` (`name =
    /// value`, as the caller read them: the renderer reads no memory).
    pub full: bool,
    /// Colours.
    pub palette: Palette,
}

/// Writes a goroutine's frames, every frame (runtime ones included).
pub fn frames(g: &Goroutine, opts: &Options, out: &mut dyn Write) -> io::Result<()> {
    let pad = "    ".repeat(opts.indent);
    let shown = opts.depth.unwrap_or(usize::MAX).min(g.frames.len());
    let width = shown.saturating_sub(1).to_string().len().max(1);
    let p = opts.palette;
    for (i, f) in g.frames.iter().take(shown).enumerate() {
        writeln!(
            out,
            "{pad}{i:>width$}  {:#018x} in {}",
            f.pc,
            p.function(&f.function, &f.function)
        )?;
        writeln!(
            out,
            "{pad}{:width$}     at {}:{}",
            "",
            text(&f.file),
            f.line
        )?;
        if opts.full {
            let args = if f.inlined {
                "(inlined)"
            } else if f.args.is_empty() {
                "(none)"
            } else {
                &f.args
            };
            writeln!(out, "{pad}{:width$}         args: {}", "", text(args))?;
            if !f.defers().is_empty() {
                let d: Vec<String> = f.defers().iter().map(|d| d.to_string()).collect();
                writeln!(
                    out,
                    "{pad}{:width$}         defers: {}",
                    "",
                    text(&d.join(", "))
                )?;
            }
            for v in f.values() {
                let l = if v.name.is_empty() {
                    v.text.clone()
                } else {
                    format!("{} = {}", v.name, v.text)
                };
                writeln!(out, "{pad}{:width$}         {}", "", text(&l))?;
            }
        }
    }
    if shown < g.frames.len() {
        if opts.delve_cut {
            writeln!(out, "{pad}(truncated)")?;
        } else {
            writeln!(out, "{pad}(... {} more frames)", g.frames.len() - shown)?;
        }
    }
    if let Some(e) = &g.stack_error {
        writeln!(out, "{pad}(truncated: {})", text(e))?;
    }
    Ok(())
}
