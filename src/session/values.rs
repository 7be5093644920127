//! The session's value commands: `args`, `locals`, `print EXPR`, `config`, and the values
//! `stack -full` shows under each frame ([`crate::values`] reads them).

use super::{Env, State, io};
use crate::render::safe::text;
use crate::snapshot::Frame;
use crate::values::{self, FrameValue, show::MAX_CONFIG_LIMIT};
use std::io::Write;

/// Runs `f` with what values are read with, then says once if it read the process after the
/// snapshot.
fn with_ctx<T>(
    st: &State,
    env: &dyn Env,
    out: &mut dyn Write,
    f: impl FnOnce(&values::Ctx<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let (prog, mem) = env.values()?;
    let func_name = |pc: u64| env.func_name(pc);
    // The registers of the thread the viewed goroutine runs on (its innermost frame's).
    let thread = st
        .stack_view()
        .ok()
        .and_then(|(g, _)| g.thread)
        .and_then(|tid| env.thread_state(tid));
    let c = values::Ctx {
        prog,
        mem: &mem,
        cfg: st.values,
        func_name: &func_name,
        thread: thread.as_ref(),
    };
    let r = f(&c);
    if mem.read_later.get() {
        writeln!(out, "{}", values::READ_LATER_NOTE).map_err(io)?;
    }
    r
}

/// The selected frame's frames and index.
fn selected_frames(st: &State) -> Result<(Vec<Frame>, usize), String> {
    let (g, of) = st.stack_view()?;
    if st.frame >= g.frames.len() {
        return Err(format!("{of} has no frame {}", st.frame));
    }
    Ok((g.frames.clone(), st.frame))
}

/// The values `frames[i]` carries when the snapshot holds them (`snapshot --values`): `None`
/// when they are read now; an error when they could not be read when it was taken.
fn stored(st: &State, frames: &[Frame], i: usize) -> Option<Result<Vec<FrameValue>, String>> {
    if !st.snap.meta.values {
        return None;
    }
    let vals = frames[i].values().to_vec();
    Some(match vals.iter().find(|v| v.name.is_empty()) {
        Some(why) => Err(why.text.clone()),
        None => Ok(vals),
    })
}

/// The note said once under values of which `later` holds some.
fn note_if_later<'a>(vals: impl IntoIterator<Item = &'a FrameValue>, out: &mut Vec<u8>) {
    if vals.into_iter().any(|v| v.later) {
        out.extend_from_slice(values::READ_LATER_NOTE.as_bytes());
        out.push(b'\n');
    }
}

/// `args` (params) or `locals`.
pub fn args_or_locals(
    st: &State,
    env: &dyn Env,
    params: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    let (frames, i) = selected_frames(st)?;
    let mut lines = Vec::new();
    let vals = match stored(st, &frames, i) {
        Some(vals) => vals?,
        None => with_ctx(st, env, &mut lines, |c| values::frame_values(c, &frames, i))?,
    };
    let mine: Vec<&FrameValue> = vals.iter().filter(|v| v.param == params).collect();
    if st.snap.meta.values {
        note_if_later(mine.iter().copied(), &mut lines);
    }
    let w = |r: std::io::Result<()>| r.map_err(io);
    if mine.is_empty() {
        w(writeln!(
            out,
            "{}",
            if params { "(no args)" } else { "(no locals)" }
        ))?;
    }
    for v in mine {
        w(writeln!(out, "{} = {}", text(&v.name), text(&v.text)))?;
    }
    w(out.write_all(&lines))
}

/// `print EXPR`.
pub fn print(st: &State, env: &dyn Env, expr: &str, out: &mut dyn Write) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("usage: print EXPR".into());
    }
    let (frames, i) = selected_frames(st)?;
    let mut lines = Vec::new();
    let v = match stored(st, &frames, i) {
        // The snapshot holds each variable's text, not the memory to evaluate more.
        Some(vals) => {
            let vals = vals?;
            let v = vals.iter().rev().find(|v| v.name == expr).ok_or_else(|| {
                format!("this snapshot holds the frames' arguments and locals only: print takes one of their names, not {expr:?}")
            })?;
            note_if_later([v], &mut lines);
            v.text.clone()
        }
        None => with_ctx(st, env, &mut lines, |c| values::print(c, &frames, i, expr))?,
    };
    writeln!(out, "{}", text(&v)).map_err(io)?;
    out.write_all(&lines).map_err(io)
}

/// `config [max-string-len N | max-array-values N]`.
pub fn config(st: &mut State, args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    match args {
        [] => {
            let c = st.values;
            w(writeln!(out, "max-string-len\t{}", c.max_string_len))?;
            w(writeln!(out, "max-array-values\t{}", c.max_array_values))
        }
        [key, n] => {
            let n: usize = n
                .parse()
                .ok()
                .filter(|n| *n <= MAX_CONFIG_LIMIT)
                .ok_or_else(|| format!("{n:?}: a number from 0 to {MAX_CONFIG_LIMIT}"))?;
            match *key {
                "max-string-len" => st.values.max_string_len = n,
                "max-array-values" => st.values.max_array_values = n,
                _ => {
                    return Err(format!(
                        "unknown setting {key:?}: max-string-len or max-array-values"
                    ));
                }
            }
            Ok(())
        }
        _ => Err("usage: config [max-string-len N | max-array-values N]".into()),
    }
}

/// What `stack -full` says besides the frames.
#[derive(Debug, Default)]
pub struct StackNotes {
    /// Why no values can be read at all (a stripped binary, a saved snapshot).
    pub before: Option<String>,
    /// Notes after the stack (memory read after the snapshot).
    pub after: Vec<String>,
}

/// Fills the values of the first `shown` frames of `g`.
pub fn stack_values(
    st: &State,
    env: &dyn Env,
    g: &mut crate::snapshot::Goroutine,
    shown: usize,
) -> StackNotes {
    let mut notes = Vec::new();
    let mut sn = StackNotes::default();
    if st.snap.meta.values {
        // Saved with the snapshot: the frames carry them.
        note_if_later(
            g.frames.iter().take(shown).flat_map(|f| f.values()),
            &mut notes,
        );
        sn.after = String::from_utf8_lossy(&notes)
            .lines()
            .map(str::to_string)
            .collect();
        return sn;
    }
    let r = with_ctx(st, env, &mut notes, |c| {
        values::fill_frames(c, &mut g.frames, shown);
        Ok(())
    });
    if let Err(e) = r {
        sn.before = Some(format!("(values: {e})"));
    }
    sn.after = String::from_utf8_lossy(&notes)
        .lines()
        .map(str::to_string)
        .collect();
    sn
}

/// Names the locks of `verdicts` ([`values::name_locks`]) from the session's snapshot; without
/// DWARF (or a saved snapshot's memory) they keep no name.
pub(super) fn name_locks(
    st: &State,
    env: &dyn Env,
    verdicts: &mut [crate::analyze::deadlock::Verdict],
) {
    use crate::analyze::deadlock;
    let locks = deadlock::locks_to_name(verdicts);
    if locks.is_empty() {
        return;
    }
    let Ok((prog, mem)) = env.values() else {
        return;
    };
    let func_name = |pc: u64| env.func_name(pc);
    let thread = |g: &crate::snapshot::Goroutine| g.thread.and_then(|t| env.thread_state(t));
    let names = values::name_locks(prog, &mem, &func_name, &st.snap.goroutines, &thread, &locks);
    deadlock::set_lock_names(verdicts, &names);
}
