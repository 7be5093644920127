//! `goroscope attach`: a delve-like session over a snapshot. The target is stopped only while a
//! snapshot is taken (or for the whole session with `--hold`); every command reads the
//! snapshot. [`exec`] is a function of (state, command line) to output text, with the effects
//! a command may need (a new snapshot, a source file) behind [`Env`]; [`front`] is the line
//! editor and the batch reader around it.

mod commands;
pub mod front;
mod listing;
mod source;
mod values;

pub use commands::{COMMANDS, COND_KEYS, FLAGS, GROUP_KEYS, command_name};
pub use source::file_matches;

use commands::{delve_only, help};
use listing::{SHOW_RUNTIME, goroutines, group_by};
use source::{list, place_of, source_lines};

use crate::analyze::filter::Filter;
use crate::analyze::group::GroupBy;
use crate::render::color::Palette;
use crate::render::safe::{go_quote, text};
use crate::render::{blocked, bt};
use crate::snapshot::{Goroutine, Loc, Snapshot};
use std::io::Write;

/// What the session is looking at.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The current snapshot.
    pub snap: Snapshot,
    /// The one before the last `refresh`, for `diff`.
    pub prev: Option<Snapshot>,
    /// The selected goroutine.
    pub goroutine: Option<u64>,
    /// The selected frame of it (0 = innermost).
    pub frame: usize,
    /// The selected thread.
    pub thread: Option<i32>,
    /// The frame commands show the selected thread's own stack (after `thread TID`), not the
    /// selected goroutine's.
    pub on_thread: bool,
    /// Colours.
    pub palette: Palette,
    /// Limits of the values `print`, `args`, `locals` and `stack -full` read (`config`).
    pub values: crate::values::Config,
}

/// The effects commands may need.
pub trait Env {
    /// Takes a new snapshot of the target (`refresh`), returning it and a one-line report.
    fn refresh(&mut self) -> Result<(Snapshot, String), String>;
    /// The text of a source file of the target, read in its own file system as its user
    /// ([`crate::target::ns::read_target_file`]).
    fn source(&self, path: &str) -> Result<String, String>;
    /// Where a function starts (file, line), from the binary's function table; `None` without
    /// one (a saved snapshot).
    fn function_start(&self, _name: &str) -> Option<Result<(String, u32), String>> {
        None
    }
    /// The files of the binary's functions that are `name` or end with `/name` (where the
    /// functions start); `None` without a function table.
    fn binary_files(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
    /// What values are read with: the binary's DWARF and the snapshot's memory (then the
    /// process's); why not when there are none.
    fn values(&self) -> Result<(&crate::values::Program, crate::values::Memory<'_>), String> {
        Err("a saved snapshot holds no memory: values are read only from a process".into())
    }
    /// The name of the function holding `pc`, from the binary's function table.
    fn func_name(&self, _pc: u64) -> Option<String> {
        None
    }
    /// Thread `tid` at the snapshot: its registers as the kernel lays them out (the
    /// general-purpose words, and the floating-point set when read); `None` when not known.
    fn thread_state(&self, _tid: i32) -> Option<crate::target::ThreadState> {
        None
    }
}

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Detach and leave.
    Quit,
}

/// Frames `bt` shows by default (delve's default).
const BT_DEPTH: usize = 50;

impl State {
    /// A state over a first snapshot: goroutine 1 (else the first) selected, and its thread.
    pub fn new(snap: Snapshot, palette: Palette) -> State {
        let mut s = State {
            snap,
            palette,
            ..Default::default()
        };
        s.goroutine = s
            .snap
            .goroutines
            .iter()
            .find(|g| g.id == 1)
            .or(s.snap.goroutines.first())
            .map(|g| g.id);
        s.thread = s
            .selected()
            .and_then(|g| g.thread)
            .or(s.snap.threads.first().map(|t| t.tid));
        s
    }

    /// The selected goroutine.
    pub fn selected(&self) -> Option<&Goroutine> {
        self.goroutine
            .and_then(|id| self.snap.goroutines.iter().find(|g| g.id == id))
    }

    fn need_selected(&self) -> Result<&Goroutine, String> {
        self.selected().ok_or_else(|| match (self.goroutine, self.thread) {
            (None, Some(t)) => format!("thread {t} runs no goroutine: `goroutine <id>` selects one (`goroutines` lists them)"),
            _ => "no goroutine selected: `goroutine <id>` selects one (`goroutines` lists them)".into(),
        })
    }

    /// The frames the frame commands show, and what they are of (`goroutine 7`, `thread 12`):
    /// the selected thread's own after `thread TID`, else the selected goroutine's.
    fn stack_view(&self) -> Result<(std::borrow::Cow<'_, Goroutine>, String), String> {
        use std::borrow::Cow;
        if self.on_thread
            && let Some(t) = self
                .thread
                .and_then(|tid| self.snap.threads.iter().find(|t| t.tid == tid))
        {
            // Not read (a snapshot saved without --thread-stacks): its goroutine's, if any.
            if t.frames.is_empty() && t.stack_error.is_none() {
                if let Some(g) = self.selected() {
                    return Ok((Cow::Borrowed(g), format!("goroutine {}", g.id)));
                }
                return Err(format!(
                    "thread {} runs no goroutine, and its own stack was not read in this snapshot (`goroscope snapshot --thread-stacks` saves it); `goroutine <id>` selects a goroutine",
                    t.tid
                ));
            }
            let g = Goroutine {
                id: t.goid.unwrap_or(0),
                frames: t.frames.clone(),
                stack_error: t.stack_error.clone(),
                thread: Some(t.tid),
                ..Goroutine::default()
            };
            return Ok((Cow::Owned(g), format!("thread {}", t.tid)));
        }
        let g = self.need_selected()?;
        Ok((Cow::Borrowed(g), format!("goroutine {}", g.id)))
    }

    fn goroutine(&self, id: u64) -> Result<&Goroutine, String> {
        self.snap
            .goroutines
            .iter()
            .find(|g| g.id == id)
            .ok_or_else(|| format!("no goroutine {id} in this snapshot; `goroutines` lists them"))
    }
}

/// Runs one command line against the state, writing its output.
pub fn exec(
    st: &mut State,
    line: &str,
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<Flow, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Ok(Flow::Continue);
    };
    let name = command_name(cmd).ok_or_else(|| {
        delve_only(cmd)
            .unwrap_or_else(|| format!("unknown command {cmd:?}; `help` lists the commands"))
    })?;
    let w = |r: std::io::Result<()>| r.map_err(io);
    match name {
        "goroutines" => goroutines(st, args, out)?,
        "goroutine" => return goroutine(st, args, env, out),
        "stack" => stack(st, args, env, out)?,
        "args" | "locals" => {
            if !args.is_empty() {
                return Err(format!("usage: {name}"));
            }
            values::args_or_locals(st, env, name == "args", out)?;
        }
        "print" => {
            // The expression as typed (a map key may hold spaces).
            let expr = line.trim_start().strip_prefix(cmd).unwrap_or_default();
            values::print(st, env, expr.trim(), out)?
        }
        "config" => values::config(st, args, out)?,
        "frame" | "up" | "down" => return frame(st, name, args, env, out),
        "list" => match args {
            [] => w(list(st, env, true, out))?,
            [place] => {
                let (file, line) = place_of(st, env, place)?;
                w(writeln!(out, "Showing {}:{line}", text(&file)))?;
                match env.source(&file) {
                    Ok(src) => w(source_lines(&src, line, st.palette, out))?,
                    Err(e) => return Err(format!("no source: {}", text(&e))),
                }
            }
            _ => return Err("usage: list [FUNCTION | FILE:LINE | LINE]".into()),
        },
        "threads" => w(crate::render::threads::render(
            &st.snap, st.thread, st.palette, out,
        ))?,
        "thread" => thread(st, args, out)?,
        "blocked" => w(blocked::render(&st.snap, |g| !g.system, out))?,
        "holders" => w(blocked::holders(&st.snap, |g| !g.system, out))?,
        "deadlocks" => deadlocks(st, env, args, out)?,
        "refresh" => refresh_cmd(st, env, out)?,
        "diff" => diff(st, args, out)?,
        "snapshot" => {
            let [file] = args else {
                return Err("usage: snapshot <file>".into());
            };
            crate::snapshot::store::save(&st.snap, std::path::Path::new(file), None)
                .map_err(|e| format!("{file}: {e}"))?;
            w(writeln!(out, "wrote {file}"))?;
        }
        "help" => help(args.first().copied(), out)?,
        "exit" => return Ok(Flow::Quit),
        _ => unreachable!("every command name is handled"),
    }
    Ok(Flow::Continue)
}

/// `stack [N] [-full]`: the selected goroutine's (or thread's) frames 0 to N, with values and
/// pending defers under `-full`.
fn stack(
    st: &mut State,
    args: &[&str],
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<(), String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    let (g, _) = st.stack_view()?;
    let (depth, full) = stack_args(args)?;
    // delve's depth is the deepest frame number shown: `stack 5` prints frames 0 to 5.
    let shown = depth.saturating_add(1);
    let mut g = g.into_owned();
    let notes = if full {
        values::stack_values(st, env, &mut g, shown)
    } else {
        values::StackNotes::default()
    };
    if let Some(why) = &notes.before {
        w(writeln!(out, "{}", text(why)))?;
    }
    let o = bt::Options {
        depth: Some(shown),
        full,
        palette: st.palette,
        indent: 0,
        delve_cut: true,
    };
    w(bt::frames(&g, &o, out))?;
    for l in &notes.after {
        w(writeln!(out, "{l}"))?;
    }
    Ok(())
}

/// `thread TID`: selects the thread, and the goroutine it runs (none when it runs none).
fn thread(st: &mut State, args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    let [tid] = args else {
        return Err("you must specify a thread: thread <tid> (`threads` lists them)".into());
    };
    let tid: i32 = tid
        .parse()
        .map_err(|_| format!("{tid:?} is not a thread id"))?;
    let t = st
        .snap
        .threads
        .iter()
        .find(|t| t.tid == tid)
        .ok_or_else(|| format!("no thread {tid} in this snapshot; `threads` lists them"))?;
    let goid = t.goid;
    let old = st
        .thread
        .map(|t| t.to_string())
        .unwrap_or_else(|| "<none>".into());
    st.thread = Some(tid);
    st.on_thread = true;
    // The selection follows the thread: none when it runs no goroutine.
    st.goroutine = goid;
    st.frame = 0;
    w(writeln!(out, "Switched from {old} to {tid}"))?;
    match goid {
        Some(id) => w(writeln!(out, "thread {tid} runs goroutine {id}"))?,
        None => w(writeln!(
            out,
            "thread {tid} runs no goroutine; `goroutine <id>` selects one"
        ))?,
    }
    Ok(())
}

/// `refresh`: a new snapshot from the process, the old one kept for `diff`.
fn refresh_cmd(st: &mut State, env: &mut dyn Env, out: &mut dyn Write) -> Result<(), String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    let (snap, report) = env.refresh()?;
    refresh(st, snap);
    w(writeln!(out, "{report}"))?;
    if let Some(old) = st
        .prev
        .as_ref()
        .and(st.goroutine.filter(|_| st.selected().is_none()))
    {
        w(writeln!(out, "goroutine {old} is gone"))?;
    }
    Ok(())
}

/// `diff [-group KEY]`: what changed between the previous snapshot and this one.
fn diff(st: &State, args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    let prev = st
        .prev
        .as_ref()
        .ok_or("no earlier snapshot: `refresh` takes a new one, then `diff` compares the two")?;
    let by = match args {
        [] => GroupBy::Stack,
        ["-group", key @ ..] => group_by(key)?,
        _ => return Err("usage: diff [-group KEY]".into()),
    };
    let keep = Filter::default();
    let tally = |s: &crate::snapshot::Snapshot| {
        crate::analyze::group::Tally::counting(s.goroutines.iter().filter(|g| keep.keep(g)), &by)
    };
    w(crate::render::diff::render(
        &tally(prev),
        &tally(&st.snap),
        &by,
        out,
    ))?;
    Ok(())
}

/// `deadlocks`: the verdicts on the current snapshot, as `goroscope deadlocks` prints them. A
/// verdict that rests on two moments (held by nobody, a holder in a system call or IO wait)
/// is kept only when the snapshot before the last `refresh` had it too; without an earlier
/// snapshot it is shown, and a last line says how to confirm it.
fn deadlocks(st: &State, env: &dyn Env, args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    use crate::analyze::deadlock;
    if !args.is_empty() {
        return Err("usage: deadlocks".into());
    }
    let w = |r: std::io::Result<()>| r.map_err(io);
    let mut found = deadlock::find(&st.snap);
    values::name_locks(st, env, &mut found);
    let (verdicts, unconfirmed) = match &st.prev {
        Some(prev) => (deadlock::confirm(&deadlock::find(prev), found), 0),
        None => {
            let n = found
                .iter()
                .filter(|v| deadlock::needs_confirming(v))
                .count();
            (found, n)
        }
    };
    w(crate::render::deadlocks::plain(&st.snap, &verdicts, out))?;
    if unconfirmed > 0 && st.snap.meta.source == crate::snapshot::Source::Live {
        w(writeln!(
            out,
            "{unconfirmed} of these verdicts rest on one moment: `refresh`, then `deadlocks` again, confirms them."
        ))?;
    }
    Ok(())
}

/// Replaces the snapshot, keeping the selection where it still exists.
fn refresh(st: &mut State, snap: Snapshot) {
    let old = std::mem::replace(&mut st.snap, snap);
    st.prev = Some(old);
    match st.selected() {
        Some(g) if st.frame < g.frames.len() => {}
        Some(_) => st.frame = 0,
        None => st.frame = 0,
    }
    if st
        .thread
        .is_some_and(|t| !st.snap.threads.iter().any(|x| x.tid == t))
    {
        st.thread = st
            .selected()
            .and_then(|g| g.thread)
            .or(st.snap.threads.first().map(|t| t.tid));
    }
}

/// An output error as a command error.
fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn stack_args(args: &[&str]) -> Result<(usize, bool), String> {
    let mut depth = BT_DEPTH;
    let mut full = false;
    for a in args {
        match *a {
            "-full" => full = true,
            n => {
                depth = n.parse().map_err(|_| {
                    format!("{n:?}: depth must be a number (usage: stack [<depth>] [-full])")
                })?
            }
        }
    }
    Ok((depth, full))
}

/// `goroutine`, `goroutine <id>`, `goroutine <id> <command>`.
fn goroutine(
    st: &mut State,
    args: &[&str],
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<Flow, String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    let Some((id, rest)) = args.split_first() else {
        let g = st.need_selected()?;
        let p = st.palette;
        let loc = |l: Loc| match g.location(l) {
            Some(x) if x.file.is_empty() => p.function(&x.function, &x.function),
            Some(x) => format!(
                "{}:{} {} ({:#x})",
                text(&x.file),
                x.line,
                p.function(&x.function, &x.function),
                x.pc
            ),
            None => "?".into(),
        };
        let mut s = format!("Goroutine {}:\n", g.id);
        for l in [Loc::Current, Loc::User, Loc::Go, Loc::Start] {
            s.push_str(&format!("\t{}: {}\n", l.title(), loc(l)));
        }
        let minutes = if g.wait_minutes >= 1 {
            format!(", {} minutes", g.wait_minutes)
        } else {
            String::new()
        };
        s.push_str(&format!("\tState: {}{minutes}\n", text(&g.state)));
        if let Some(t) = g.thread {
            s.push_str(&format!("\tThread: {t}\n"));
        }
        if !g.labels.is_empty() {
            let l: Vec<String> = g
                .labels
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            s.push_str(&format!("\tLabels: {}\n", l.join(", ")));
        }
        w(out.write_all(s.as_bytes()))?;
        return Ok(Flow::Continue);
    };
    let id: u64 = id
        .parse()
        .map_err(|_| format!("{id:?} is not a goroutine id"))?;
    let g = st.goroutine(id)?;
    let thread = g.thread;
    if rest.is_empty() {
        let old = st.goroutine.unwrap_or(0);
        st.goroutine = Some(id);
        st.on_thread = false;
        st.frame = 0;
        if thread.is_some() {
            st.thread = thread;
        }
        let on = thread.map(|t| format!(" (thread {t})")).unwrap_or_default();
        w(writeln!(out, "Switched from {old} to {id}{on}"))?;
        if st.selected().is_some_and(|g| g.system) {
            w(writeln!(
                out,
                "goroutine {id} is a runtime goroutine (hidden by `goroutines`; {SHOW_RUNTIME} lists them)"
            ))?;
        }
        return Ok(Flow::Continue);
    }
    // A one-shot command on another goroutine: the selection is kept.
    let saved = (st.goroutine, st.frame, st.on_thread);
    st.goroutine = Some(id);
    st.frame = 0;
    st.on_thread = false;
    let r = exec(st, &rest.join(" "), env, out);
    if st.goroutine == Some(id) {
        (st.goroutine, st.frame, st.on_thread) = saved;
    }
    r
}

/// `frame <n> [cmd]`, `up [n] [cmd]`, `down [n] [cmd]`.
fn frame(
    st: &mut State,
    name: &str,
    args: &[&str],
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<Flow, String> {
    let (n, rest) = match args.split_first() {
        Some((n, rest)) if n.parse::<i64>().is_ok() => (n.parse::<i64>().unwrap_or(0), rest),
        _ if name == "frame" => return Err("not enough arguments: frame <n> [command]".into()),
        _ => (1, args),
    };
    let target = match name {
        "up" => st.frame as i64 + n,
        "down" => st.frame as i64 - n,
        _ => n,
    };
    let (g, of) = st.stack_view()?;
    if target < 0 || target as usize >= g.frames.len() {
        return Err(format!(
            "Invalid frame {target}: {of} has frames 0 to {}",
            g.frames.len().saturating_sub(1)
        ));
    }
    if !rest.is_empty() {
        let saved = (st.goroutine, st.frame);
        st.frame = target as usize;
        let r = exec(st, &rest.join(" "), env, out);
        // The one-shot frame is undone unless the command selected another goroutine (whose
        // frame it chose): an old frame number means nothing there.
        if st.goroutine == saved.0 {
            st.frame = saved.1;
        }
        return r;
    }
    st.frame = target as usize;
    list(st, env, false, out).map_err(|e| e.to_string())?;
    Ok(Flow::Continue)
}

/// The session's report on a new snapshot: `line` and how many of its goroutines are the
/// runtime's own, which `goroutines` hides.
pub fn snapshot_report(snap: &Snapshot, line: String) -> String {
    match snap.goroutines.iter().filter(|g| g.system).count() {
        0 => line,
        n => format!(
            "{line} ({n} of them the runtime's, hidden by `goroutines` as by Go's traceback; {SHOW_RUNTIME} lists them)"
        ),
    }
}

#[cfg(test)]
mod tests;
