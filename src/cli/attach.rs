//! `goroscope attach`: a session over a live process, a snapshot file, a text dump or a core.

use super::{CoreArgs, Ctx, TargetArg, load, open_live, take_kept};
use crate::capture::Target;
use crate::render;
use crate::runtime::OpenOptions;
use std::path::PathBuf;

/// Opens what `target`/`core` name and runs the session on it.
pub(super) fn run(
    target: Option<String>,
    core: CoreArgs,
    hold: bool,
    batch: Option<PathBuf>,
    sources: Option<PathBuf>,
    ro: &Ctx,
    palette: render::color::Palette,
) -> Result<(), String> {
    let quiet = ro.quiet;
    // `thread TID` then `bt` shows the thread's own stack.
    let ro = &Ctx {
        open: OpenOptions {
            thread_stacks: true,
            ..ro.open
        },
        ..*ro
    };
    let opts = crate::session::front::Options {
        hold,
        batch,
        palette,
        quiet,
    };
    let pid = target.as_deref().and_then(|t| t.parse::<i32>().ok());
    if let (Some(pid), None) = (pid, &core.core) {
        if sources.is_some() {
            return Err("--sources is for a saved session; a process's source files are read in its own file system, as its user".into());
        }
        let mut live = open_live(pid, ro)?;
        live.fp_registers = true;
        return crate::session::front::attach(&live, opts);
    }
    if hold {
        return Err("--hold holds a live process; a saved snapshot or a core has none".into());
    }
    let (snap, what, session) = match target {
        Some(file) => (
            load(std::path::Path::new(&file))?,
            format!("snapshot {file}"),
            None,
        ),
        None => {
            let t = TargetArg::new(None, core)?;
            let (snap, session) = take_kept(&t, &Ctx { quiet: true, ..*ro })?;
            (snap, t.describe(), Some(session))
        }
    };
    let core = match &session {
        Some(Target::Core(c)) => Some(c),
        _ => None,
    };
    crate::session::front::explore(snap, what, sources, core, opts)
}
