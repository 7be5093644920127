//! delve's `goroutines` list: one line a goroutine, `[N goroutines]` at the end; `-t` adds
//! each goroutine's stack in the `bt` shape.

use super::bt;
use crate::snapshot::{Goroutine, Snapshot};
use std::io::{self, Write};

/// Options of the goroutine list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Print each goroutine's stack below it.
    pub stacks: bool,
    /// Include runtime-internal goroutines.
    pub system: bool,
    /// The goroutine to mark with `*`.
    pub selected: Option<u64>,
}

/// Writes the list.
pub fn render(snap: &Snapshot, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let mut n = 0usize;
    for g in snap.goroutines.iter().filter(|g| opts.system || !g.system) {
        n += 1;
        let mark = if opts.selected == Some(g.id) { "* " } else { "  " };
        writeln!(out, "{mark}{}", line(g))?;
        if opts.stacks {
            bt::frames(g, 1, out)?;
        }
    }
    writeln!(out, "[{n} goroutines]")
}

/// `Goroutine N - User: file:line func (0xpc) [state, M minutes]`.
pub fn line(g: &Goroutine) -> String {
    let mut s = format!("Goroutine {} - User: ", g.id);
    match g.user_frame() {
        Some(f) => s.push_str(&format!("{}:{} {} ({:#x})", f.file, f.line, f.function, f.pc)),
        None => s.push_str("?"),
    }
    if let Some(t) = g.thread {
        s.push_str(&format!(" (thread {t})"));
    }
    s.push_str(&format!(" [{}", g.state));
    if g.wait_minutes >= 1 {
        s.push_str(&format!(", {} minutes", g.wait_minutes));
    }
    if g.locked_to_thread {
        s.push_str(", locked to thread");
    }
    s.push(']');
    s
}
