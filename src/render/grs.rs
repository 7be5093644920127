//! delve's `goroutines` list: one line a goroutine, `[N goroutines]` at the end; `-t` adds
//! each goroutine's stack in the `bt` shape.

use super::bt;
use super::color::Palette;
use super::safe::text;
use crate::snapshot::{Goroutine, Loc};
use std::io::{self, Write};

/// Options of the goroutine list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Print each goroutine's stack below it.
    pub stacks: bool,
    /// Frames of each stack shown at most (all when `None`).
    pub depth: Option<usize>,
    /// Include runtime-internal goroutines.
    pub system: bool,
    /// The goroutine to mark with `*`.
    pub selected: Option<u64>,
    /// Which location names a goroutine.
    pub loc: Loc,
    /// Colours.
    pub palette: Palette,
}

/// Writes the list.
pub fn render<'g>(
    gs: impl IntoIterator<Item = &'g Goroutine>,
    opts: Options,
    out: &mut dyn Write,
) -> io::Result<()> {
    let gs: Vec<&Goroutine> = gs
        .into_iter()
        .filter(|g| opts.system || !g.system)
        .collect();
    list(&gs, opts, "", out)?;
    count(gs.len(), out)
}

/// The list's last line: `[N goroutines]`.
pub fn count(n: usize, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "[{n} goroutines]")
}

/// Writes one line per goroutine (and its stack with `stacks`), each line after `indent`.
pub fn list(gs: &[&Goroutine], opts: Options, indent: &str, out: &mut dyn Write) -> io::Result<()> {
    for g in gs {
        let mark = if opts.selected == Some(g.id) {
            opts.palette.mark("* ")
        } else {
            "  ".to_string()
        };
        writeln!(
            out,
            "{indent}{mark}{}",
            line_with(g, opts.loc, opts.palette)
        )?;
        if opts.stacks {
            let o = bt::Options {
                indent: 1,
                depth: opts.depth,
                full: false,
                palette: opts.palette,
                delve_cut: false,
            };
            bt::frames(g, &o, out)?;
        }
    }
    Ok(())
}

/// `Goroutine N - User: file:line func (0xpc) [state, M minutes]`, naming the goroutine by
/// `loc`, in colours.
pub(crate) fn line_with(g: &Goroutine, loc: Loc, p: Palette) -> String {
    let mut s = format!("Goroutine {} - {}: ", g.id, loc.title());
    match g.location(loc) {
        Some(l) if l.file.is_empty() => s.push_str(&p.function(&l.function, &l.function)),
        Some(l) => s.push_str(&format!(
            "{}:{} {} ({:#x})",
            text(&l.file),
            l.line,
            p.function(&l.function, &l.function),
            l.pc
        )),
        None => s.push('?'),
    }
    if let Some(t) = g.thread {
        s.push_str(&format!(" (thread {t})"));
    }
    let mut state = format!("[{}", g.state);
    if g.wait_minutes >= 1 {
        state.push_str(&format!(", {} minutes", g.wait_minutes));
    }
    if g.locked_to_thread {
        state.push_str(", locked to thread");
    }
    state.push(']');
    s.push(' ');
    s.push_str(&p.state(&state));
    s
}
