//! `goroscope bt --full`: the goroutine's frames with their arguments and locals from DWARF
//! ([`crate::values`]), read from the snapshot's memory (then the process) or the core;
//! `snapshot --values` keeps them in the file and `show --full` prints them.

use super::view::{ViewArgs, traceback_options};
use crate::render::{self, color::Palette, traceback};
use crate::runtime::Runtime;
use crate::snapshot::{Goroutine, Snapshot};
use crate::target::{MemoryReader, ThreadState};
use crate::values::{self, Config, Memory, Program};
use std::cell::Cell;
use std::io::Write;

/// Where the values of a `bt --full` are read.
pub struct Source<'a> {
    pub rt: &'a Runtime,
    /// The snapshot's memory, or the core's.
    pub snapshot: &'a dyn MemoryReader,
    /// The running process, for what the snapshot did not copy.
    pub process: Option<&'a dyn MemoryReader>,
    /// The stopped threads (their registers).
    pub threads: &'a [ThreadState],
}

/// What to say besides the frames.
#[derive(Debug, Default)]
pub struct Notes {
    /// Why there are no values (a binary without DWARF).
    pub before: Option<String>,
    /// Memory was read from the process after the snapshot.
    pub after: Option<&'static str>,
}

/// Fills the values of every frame of `g`.
pub fn fill(src: &Source<'_>, g: &mut Goroutine) -> Notes {
    fill_all(src, std::slice::from_mut(g))
}

/// Fills the values of every frame of every goroutine in `gs` (`snapshot --values`), with
/// the binary's DWARF read once.
pub fn fill_all(src: &Source<'_>, gs: &mut [Goroutine]) -> Notes {
    let prog = match Program::load(&src.rt.bin, src.rt.bias) {
        Ok(p) => p,
        Err(e) => {
            return Notes {
                before: Some(format!("(values: {e})")),
                after: None,
            };
        }
    };
    let mem = Memory {
        snapshot: src.snapshot,
        rest: src.process,
        rest_is_later: src.process.is_some(),
        read_later: Cell::new(false),
    };
    let func_name = |pc: u64| values::func_name(src.rt, pc);
    for g in gs {
        let thread = g
            .thread
            .and_then(|t| src.threads.iter().find(|x| x.tid == t));
        let c = values::Ctx {
            prog: &prog,
            mem: &mem,
            cfg: Config::default(),
            func_name: &func_name,
            thread,
        };
        values::fill_frames(&c, &mut g.frames, usize::MAX);
    }
    Notes {
        before: None,
        after: mem.read_later.get().then_some(values::READ_LATER_NOTE),
    }
}

/// `goroscope show --full`: each goroutine the view keeps, its header as Go's traceback
/// writes it, then its frames as `bt --full` prints them, with the values a snapshot taken
/// with `--values` holds; the note about memory read after the snapshot once at the end.
pub fn show_full(
    snap: &Snapshot,
    v: &ViewArgs,
    palette: Palette,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let f = v.filter().map_err(std::io::Error::other)?;
    let opts = traceback_options(&snap.meta, v);
    let version = traceback::version(&snap.meta);
    if !snap.meta.values {
        writeln!(out, "{NO_VALUES}")?;
    }
    let bt = render::bt::Options {
        palette,
        full: true,
        ..Default::default()
    };
    let mut later = false;
    let kept = snap
        .goroutines
        .iter()
        .filter(|g| f.keep(g) && traceback::printed(g, opts));
    for (i, g) in kept.enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        traceback::header(g, version, opts, out)?;
        render::bt::frames(g, &bt, out)?;
        later |= g.frames.iter().flat_map(|f| f.values()).any(|v| v.later);
    }
    if later {
        writeln!(out, "{}", values::READ_LATER_NOTE)?;
    }
    Ok(())
}

/// What `show --full` says of a snapshot taken without `--values`.
pub const NO_VALUES: &str =
    "(values: this snapshot holds none; `goroscope snapshot --values` saves them)";
