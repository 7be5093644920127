//! Go's own traceback text, as `runtime.Stack(buf, true)` and SIGQUIT print it for the
//! target's Go version (`goroutineheader`, `traceback1`, `traceback2`, `printcreatedby1` in
//! `src/runtime/traceback.go`), so panicparse and goroutine-inspect read it.

use super::safe::{BadByte, maybe_quoted, quoted, text, write_text};
use crate::snapshot::{Frame, Goroutine, Meta, Status};
use crate::unwind::symbolize::print_name;
use crate::version::GoVersion;
use std::io::{self, Write};

/// Inner and outer frames printed before and after an elision (Go 1.21+).
const INNER_FRAMES: usize = 50;
const OUTER_FRAMES: usize = 50;
/// `_TracebackMaxFrames` (Go 1.19–1.20): `gentraceback` walks at most this many physical
/// frames, and `traceback1` prints `...additional frames elided...` when it printed exactly
/// this many lines.
const MAX_FRAMES_GO119: usize = 100;

/// Options of the traceback format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// GOTRACEBACK level: 1 (single/all: runtime frames and system goroutines hidden) or 2
    /// (system: everything, with frame addresses).
    pub level: u8,
    /// Print pprof labels in headers, as the target's runtime does (`tracebacklabels`).
    pub labels: bool,
    /// Print ` (leaked)` for `_Gleaked` goroutines in every Go version, as Go 1.26+ prints
    /// it (goroutines `leaks` found leaked).
    pub leaked: bool,
}

/// Writes goroutines of a snapshot with these facts, blank-line separated, as the runtime's
/// all-goroutine traceback.
pub fn render<'g>(
    meta: &Meta,
    gs: impl IntoIterator<Item = &'g Goroutine>,
    opts: Options,
    out: &mut dyn Write,
) -> io::Result<()> {
    let v = version(meta);
    let mut first = true;
    for g in gs.into_iter().filter(|g| printed(g, opts)) {
        if !first {
            writeln!(out)?;
        }
        first = false;
        goroutine(g, v, opts, out)?;
    }
    Ok(())
}

/// Whether the traceback prints `g` at all: system goroutines only at level 2.
pub fn printed(g: &Goroutine, opts: Options) -> bool {
    !g.system || opts.level >= 2
}

/// The Go version whose format to print (1.27 when the snapshot does not say).
pub fn version(meta: &Meta) -> GoVersion {
    GoVersion::parse(&meta.go_version).unwrap_or(GoVersion::new(1, 27, 0))
}

/// Writes one goroutine: header, frames, created-by.
pub fn goroutine<W: Write + ?Sized>(
    g: &Goroutine,
    v: GoVersion,
    opts: Options,
    out: &mut W,
) -> io::Result<()> {
    header(g, v, opts, out)?;
    body(g, v, opts, out)
}

/// Frames and created-by of one goroutine.
pub fn body<W: Write + ?Sized>(
    g: &Goroutine,
    v: GoVersion,
    opts: Options,
    out: &mut W,
) -> io::Result<()> {
    // Go 1.19–1.20 stop after the first 100 physical frames (each ends with its non-inlined
    // logical frame); 1.21+ walk the whole stack and elide in the middle.
    let old = !v.at_least(21);
    let mut walked = g.frames.as_slice();
    if old
        && let Some((i, _)) = g
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.inlined)
            .nth(MAX_FRAMES_GO119 - 1)
    {
        walked = &g.frames[..=i];
    }
    let shown: Vec<&Frame> = if opts.level >= 2 {
        walked.iter().collect()
    } else {
        let visible: Vec<&Frame> = walked.iter().filter(|f| !f.hidden).collect();
        if visible.is_empty() {
            walked.iter().collect()
        } else {
            visible
        }
    };
    if shown.is_empty() && g.stack_error.is_none() && g.status == Status::RUNNING {
        writeln!(
            out,
            "\tgoroutine running on other thread; stack unavailable"
        )?;
    }
    let total = shown.len();
    if old {
        for f in &shown {
            frame(f, opts, out)?;
        }
        if total == MAX_FRAMES_GO119 {
            writeln!(out, "...additional frames elided...")?;
        }
    } else if total > INNER_FRAMES + OUTER_FRAMES {
        for f in &shown[..INNER_FRAMES] {
            frame(f, opts, out)?;
        }
        writeln!(
            out,
            "...{} frames elided...",
            total - INNER_FRAMES - OUTER_FRAMES
        )?;
        for f in &shown[total - OUTER_FRAMES..] {
            frame(f, opts, out)?;
        }
    } else {
        for f in &shown {
            frame(f, opts, out)?;
        }
    }
    if let Some(e) = &g.stack_error {
        writeln!(out, "\t...stack truncated by goroscope: {}", text(e))?;
    }
    if let Some(c) = &g.created_by
        && (!c.hidden || opts.level >= 2)
    {
        write!(out, "created by {}", text(&print_name(&c.function)))?;
        if g.parent_id != 0 && v.at_least(21) {
            write!(out, " in goroutine {}", g.parent_id)?;
        }
        write!(out, "\n\t{}:{}", text(&c.file), c.line)?;
        if c.pc > c.entry {
            write!(out, " +{:#x}", c.pc - c.entry)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The header line: `goroutine N [state, M minutes, locked to thread]:`.
pub fn header<W: Write + ?Sized>(
    g: &Goroutine,
    v: GoVersion,
    opts: Options,
    out: &mut W,
) -> io::Result<()> {
    write!(out, "goroutine {}", g.id)?;
    if opts.level >= 2 && v.at_least(22) {
        write!(out, " gp={:#x}", g.addr)?;
        match g.m_id {
            Some(id) => write!(out, " m={} mp={:#x}", id, g.m_addr)?,
            None => write!(out, " m=nil")?,
        }
    }
    write!(out, " [{}", text(&g.state))?;
    if g.status == Status::LEAKED && (v.at_least(26) || opts.leaked) {
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
        // Go 1.26: ` labels:{"k": "v", ...}` inside the brackets, always quoted (a byte that
        // is not UTF-8 as the `\ufffd` that `for range` yields for it).
        write!(out, " labels:{{")?;
        for (i, (k, val)) in g.labels.iter().enumerate() {
            let sep = if i + 1 < g.labels.len() { ", " } else { "" };
            write!(
                out,
                "{}: {}{sep}",
                quoted(k, BadByte::RuneError),
                quoted(val, BadByte::RuneError)
            )?;
        }
        write!(out, "}}")?;
    }
    write!(out, "]")?;
    if labels && v.at_least(27) {
        // Go 1.27: ` {k: v, ...}` after the brackets, quoted only where needed (a byte that
        // is not UTF-8 as `\xNN`).
        write!(out, " {{")?;
        for (i, (k, val)) in g.labels.iter().enumerate() {
            let sep = if i + 1 < g.labels.len() { ", " } else { "" };
            write!(out, "{}: {}{sep}", maybe_quoted(k), maybe_quoted(val))?;
        }
        write!(out, "}}")?;
    }
    writeln!(out, ":")
}

fn frame<W: Write + ?Sized>(f: &Frame, opts: Options, out: &mut W) -> io::Result<()> {
    // Written piece by piece: a dump prints millions of these lines.
    write_text(out, &print_name(&f.function))?;
    out.write_all(b"(")?;
    write_text(out, &f.args)?;
    out.write_all(b")\n\t")?;
    write_text(out, &f.file)?;
    out.write_all(b":")?;
    let mut buf = [0u8; 20];
    out.write_all(decimal(u64::from(f.line), &mut buf))?;
    if !f.inlined {
        if f.pc > f.entry {
            out.write_all(b" +0x")?;
            out.write_all(hex(f.pc - f.entry, &mut buf))?;
        }
        if opts.level >= 2 {
            write!(out, " fp={:#x} sp={:#x} pc={:#x}", f.fp(), f.sp(), f.pc)?;
        }
    }
    writeln!(out)
}

/// `v` in decimal, in `buf`.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// `v` in lower-case hexadecimal without a prefix, in `buf`.
fn hex(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod elision_tests {
    use super::*;

    /// A goroutine parked under `hidden` runtime frames and `visible` user frames, each
    /// physical, plus `inlined` inlined user frames on the innermost visible one.
    fn deep(hidden: usize, visible: usize, inlined: usize) -> Goroutine {
        let f = |name: &str, hidden: bool, inlined: bool| {
            let mut f = Frame::new(
                crate::snapshot::Site {
                    function: name.into(),
                    file: "/x.go".into(),
                    line: 1,
                    pc: 0x10,
                    entry: 0x1,
                    inlined,
                }
                .into(),
                Default::default(),
                0,
                0,
            );
            f.hidden = hidden;
            f
        };
        let mut frames: Vec<Frame> = (0..hidden)
            .map(|_| f("runtime.gopark", true, false))
            .collect();
        frames.extend((0..inlined).map(|_| f("main.inl", false, true)));
        frames.extend((0..visible).map(|_| f("main.rec", false, false)));
        Goroutine {
            id: 7,
            state: "chan receive".into(),
            status: Status::WAITING,
            frames,
            ..Default::default()
        }
    }

    fn text(g: &Goroutine, minor: u32) -> String {
        let mut out = Vec::new();
        body(
            g,
            GoVersion::new(1, minor, 0),
            Options {
                level: 1,
                ..Default::default()
            },
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn lines(t: &str, prefix: &str) -> usize {
        t.lines().filter(|l| l.starts_with(prefix)).count()
    }

    #[test]
    fn go119_walks_100_physical_frames_and_marks_exactly_100_printed() {
        // 3 hidden + 147 visible: 97 printed of the first 100 physical frames, no marker
        // (what Go 1.19 prints for the fixture's deep scenario).
        let t = text(&deep(3, 147, 0), 19);
        assert_eq!(lines(&t, "main.rec("), 97);
        assert!(!t.contains("elided"), "{t}");
        // 3 inlined frames make it exactly 100 printed lines: the marker follows.
        let t = text(&deep(3, 147, 3), 19);
        assert_eq!(lines(&t, "main."), 100);
        assert!(t.ends_with("...additional frames elided...\n"), "{t}");
        // Exactly 100 printed also when nothing was cut (the runtime can't tell the difference).
        let t = text(&deep(0, 100, 0), 19);
        assert!(t.ends_with("...additional frames elided...\n"), "{t}");
        let t = text(&deep(0, 99, 0), 19);
        assert!(!t.contains("elided"), "{t}");
    }

    #[test]
    fn go121_prints_50_and_50() {
        let t = text(&deep(3, 147, 0), 21);
        assert_eq!(lines(&t, "main.rec("), 100);
        assert!(t.contains("\n...47 frames elided...\n"), "{t}");
    }
}

#[cfg(test)]
mod number_tests {
    use super::*;

    #[test]
    fn numbers_print_as_format_does() {
        let mut buf = [0u8; 20];
        for v in [0u64, 1, 9, 10, 15, 16, 255, 4096, 123_456_789, u64::MAX] {
            assert_eq!(decimal(v, &mut buf), v.to_string().as_bytes());
            assert_eq!(hex(v, &mut buf), format!("{v:x}").as_bytes());
        }
    }
}
