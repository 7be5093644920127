//! `goroscope bt --full`: the goroutine's frames with their arguments and locals from DWARF
//! ([`crate::values`]), read from the snapshot's memory (then the process) or the core.

use crate::runtime::Runtime;
use crate::snapshot::Goroutine;
use crate::target::{MemoryReader, ThreadState};
use crate::values::{self, Config, Memory, Program};
use std::cell::Cell;

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
    let words = g
        .thread
        .and_then(|t| src.threads.iter().find(|x| x.tid == t))
        .map(|t| &t.words[..]);
    let func_name = |pc: u64| values::func_name(src.rt, pc);
    let c = values::Ctx {
        prog: &prog,
        mem: &mem,
        cfg: Config::default(),
        func_name: &func_name,
        thread: words,
    };
    values::fill_frames(&c, &mut g.frames, usize::MAX);
    Notes {
        before: None,
        after: mem.read_later.get().then_some(values::READ_LATER_NOTE),
    }
}
