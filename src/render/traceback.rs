//! Go's own traceback text, as `runtime.Stack(buf, true)` and SIGQUIT print it for the
//! target's Go version (`goroutineheader`, `traceback1`, `traceback2`, `printcreatedby1` in
//! `src/runtime/traceback.go`), so panicparse and goroutine-inspect read it.

use crate::snapshot::{Frame, Goroutine, Snapshot};
use crate::unwind::symbolize::print_name;
use crate::version::GoVersion;
use std::io::{self, Write};

/// Inner and outer frames printed before and after an elision (Go 1.21+).
const INNER_FRAMES: usize = 50;
const OUTER_FRAMES: usize = 50;

/// Options of the traceback format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// GOTRACEBACK level: 1 (single/all: runtime frames and system goroutines hidden) or 2
    /// (system: everything, with frame addresses).
    pub level: u8,
    /// Print pprof labels in headers, as the target's runtime does (`tracebacklabels`).
    pub labels: bool,
}

/// Writes every goroutine, blank-line separated, as the runtime's all-goroutine traceback.
pub fn render(snap: &Snapshot, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let v = GoVersion::parse(&snap.meta.go_version).unwrap_or(GoVersion::new(1, 27, 0));
    let mut first = true;
    for g in &snap.goroutines {
        if g.system && opts.level < 2 {
            continue;
        }
        if !first {
            writeln!(out)?;
        }
        first = false;
        goroutine(g, v, opts, out)?;
    }
    Ok(())
}

/// Writes one goroutine: header, frames, created-by.
pub fn goroutine(g: &Goroutine, v: GoVersion, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    header(g, v, opts, out)?;
    body(g, v, opts, out)
}

/// Frames and created-by of one goroutine.
pub fn body(g: &Goroutine, v: GoVersion, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    let shown: Vec<&Frame> = if opts.level >= 2 {
        g.frames.iter().collect()
    } else {
        let visible: Vec<&Frame> = g.frames.iter().filter(|f| !f.hidden).collect();
        if visible.is_empty() { g.frames.iter().collect() } else { visible }
    };
    if shown.is_empty() && g.stack_error.is_none() && g.status == crate::runtime::status::RUNNING {
        writeln!(out, "\tgoroutine running on other thread; stack unavailable")?;
    }
    let total = shown.len();
    if total > INNER_FRAMES + OUTER_FRAMES {
        for f in &shown[..INNER_FRAMES] {
            frame(f, opts, out)?;
        }
        writeln!(out, "...{} frames elided...", total - INNER_FRAMES - OUTER_FRAMES)?;
        for f in &shown[total - OUTER_FRAMES..] {
            frame(f, opts, out)?;
        }
    } else {
        for f in &shown {
            frame(f, opts, out)?;
        }
    }
    if let Some(e) = &g.stack_error {
        writeln!(out, "\t...stack truncated by goroscope: {e}")?;
    }
    if let Some(c) = &g.created_by {
        if !c.hidden || opts.level >= 2 {
            write!(out, "created by {}", print_name(&c.function))?;
            if g.parent_id != 0 && v.at_least(21) {
                write!(out, " in goroutine {}", g.parent_id)?;
            }
            write!(out, "\n\t{}:{}", c.file, c.line)?;
            if c.pc > c.entry {
                write!(out, " +{:#x}", c.pc - c.entry)?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The header line: `goroutine N [state, M minutes, locked to thread]:`.
pub fn header(g: &Goroutine, v: GoVersion, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "goroutine {}", g.id)?;
    if opts.level >= 2 && v.at_least(22) {
        write!(out, " gp={:#x}", g.addr)?;
        match g.m_id {
            Some(id) => write!(out, " m={} mp={:#x}", id, g.m_addr)?,
            None => write!(out, " m=nil")?,
        }
    }
    write!(out, " [{}", g.state)?;
    if g.status == crate::runtime::status::LEAKED && v.at_least(26) {
        write!(out, " (leaked)")?;
    }
    if g.scan {
        write!(out, " (scan)")?;
    }
    if g.wait_minutes >= 1 {
        write!(out, ", {} minutes", g.wait_minutes)?;
    }
    if g.locked_to_thread {
        write!(out, ", locked to thread")?;
    }
    let labels = opts.labels && !g.labels.is_empty();
    if labels && !v.at_least(27) {
        // Go 1.26: ` labels:{"k": "v", ...}` inside the brackets, always quoted.
        write!(out, " labels:{{")?;
        for (i, (k, val)) in g.labels.iter().enumerate() {
            let sep = if i + 1 < g.labels.len() { ", " } else { "" };
            write!(out, "{}: {}{sep}", quoted(k), quoted(val))?;
        }
        write!(out, "}}")?;
    }
    write!(out, "]")?;
    if labels && v.at_least(27) {
        // Go 1.27: ` {k: v, ...}` after the brackets, quoted only where needed.
        write!(out, " {{")?;
        for (i, (k, val)) in g.labels.iter().enumerate() {
            let sep = if i + 1 < g.labels.len() { ", " } else { "" };
            write!(out, "{}: {}{sep}", maybe_quoted(k), maybe_quoted(val))?;
        }
        write!(out, "}}")?;
    }
    writeln!(out, ":")
}

/// `tracebackStringNeedsQuoting`, then `printquoted`.
fn maybe_quoted(s: &str) -> String {
    let plain = s.chars().all(|r| r.is_ascii_alphanumeric() || matches!(r, '.' | '/' | '_'));
    if plain { s.to_string() } else { quoted(s) }
}

/// The runtime's `printquoted`: only printable ASCII passes unescaped.
fn quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for r in s.chars() {
        match r {
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\\' | '"' => {
                o.push('\\');
                o.push(r);
            }
            ' '..='~' => o.push(r),
            _ if (r as u32) < 127 => o.push_str(&format!("\\x{:02x}", r as u32)),
            _ if (r as u32) < 0x1_0000 => o.push_str(&format!("\\u{:04x}", r as u32)),
            _ => o.push_str(&format!("\\U{:08x}", r as u32)),
        }
    }
    o.push('"');
    o
}

fn frame(f: &Frame, opts: Options, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}({})", print_name(&f.function), f.args)?;
    write!(out, "\t{}:{}", f.file, f.line)?;
    if !f.inlined {
        if f.pc > f.entry {
            write!(out, " +{:#x}", f.pc - f.entry)?;
        }
        if opts.level >= 2 {
            write!(out, " fp={:#x} sp={:#x} pc={:#x}", f.fp, f.sp, f.pc)?;
        }
    }
    writeln!(out)
}
