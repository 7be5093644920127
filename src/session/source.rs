//! `list`: source lines around a frame, a function or a `file:line`, read through the
//! session's [`Env`](super::Env) (the target's own file system, or `--sources`).

use super::{Env, State};
use crate::render::color::Palette;
use crate::render::safe::text;
use std::io::Write;
/// Lines of source shown on each side of the current one (delve's default).
const LIST_CONTEXT: u32 = 5;

/// Where `list PLACE` points: `LINE` in the selected frame's file, `FILE:LINE` (a file the
/// binary names, or its last path elements), or a function's first line.
pub(super) fn place_of(st: &State, env: &dyn Env, place: &str) -> Result<(String, u32), String> {
    let number = |n: &str| n.parse::<u32>().ok().filter(|n| *n > 0);
    if let Some(line) = number(place) {
        let (g, of) = st.stack_view()?;
        let f = g
            .frames
            .get(st.frame)
            .ok_or_else(|| format!("{of} has no frame {}", st.frame))?;
        return Ok((f.file.to_string(), line));
    }
    if let Some((file, line)) = place
        .rsplit_once(':')
        .and_then(|(f, l)| Some((f, number(l)?)))
    {
        return Ok((known_file(st, env, file)?, line));
    }
    match env.function_start(place) {
        Some(r) => r,
        None => Err(format!(
            "{place:?}: a saved snapshot has no function table; list FILE:LINE or LINE"
        )),
    }
}

/// The file the binary names that is `name` or ends with `/name`: from the function table when
/// there is one, else from the snapshot's frames.
pub fn file_matches(file: &str, name: &str) -> bool {
    file == name
        || file
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('/'))
}

/// The one file [`file_matches`] `name`.
fn known_file(st: &State, env: &dyn Env, name: &str) -> Result<String, String> {
    let mut found: Vec<String> = match env.binary_files(name) {
        Some(files) => files,
        None => st
            .snap
            .goroutines
            .iter()
            .flat_map(|g| g.frames.iter().map(|f| f.file.to_string()))
            .filter(|f| file_matches(f, name))
            .collect(),
    };
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no file {name:?} in the binary (a saved snapshot: in its stacks)"
        )),
        many => Err(format!(
            "{name:?} names several files: {}",
            many.iter().map(|f| text(f)).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The selected frame's position and its source: `list` (`scoped` headers as delve's `list`)
/// and `frame`/`up`/`down` (delve's `Frame N:` header).
pub(super) fn list(
    st: &State,
    env: &dyn Env,
    is_list: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let (g, of) = match st.stack_view() {
        Ok(v) => v,
        Err(e) => return writeln!(out, "{e}"),
    };
    let Some(f) = g.frames.get(st.frame) else {
        return writeln!(out, "{of} has no frames");
    };
    let p = st.palette;
    if let Some(top) = g.frames.first()
        && !(is_list && st.frame > 0)
    {
        writeln!(
            out,
            "> {}() {}:{} (PC: {:#x})",
            p.function(&top.function, &top.function),
            text(&top.file),
            top.line,
            top.pc
        )?;
    }
    if is_list && st.frame > 0 {
        let mut of = of;
        if let Some(c) = of.get_mut(..1) {
            c.make_ascii_uppercase();
        }
        writeln!(
            out,
            "{of} frame {} at {}:{} (PC: {:#x})",
            st.frame,
            text(&f.file),
            f.line,
            f.pc
        )?;
    } else if !is_list {
        writeln!(
            out,
            "Frame {}: {}:{} (PC: {:x})",
            st.frame,
            text(&f.file),
            f.line,
            f.pc
        )?;
    }
    match env.source(&f.file) {
        Ok(text) => source_lines(&text, f.line, p, out),
        Err(e) => writeln!(out, "(no source: {})", text(&e)),
    }
}

/// Lines `line-5 ..= line+5` of `text`, delve's way: `=>` on `line`, then `%4d:\t`.
pub(super) fn source_lines(
    text: &str,
    line: u32,
    p: Palette,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let first = line.saturating_sub(LIST_CONTEXT).max(1);
    for (i, l) in text
        .lines()
        .enumerate()
        .skip(first as usize - 1)
        .take((line + LIST_CONTEXT + 1 - first) as usize)
    {
        let n = i as u32 + 1;
        let arrow = if n == line { p.mark("=>") } else { "  ".into() };
        writeln!(
            out,
            "{arrow}{n:>4}:\t{}",
            crate::render::safe::source_line(l)
        )?;
    }
    Ok(())
}
