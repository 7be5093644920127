//! A parser for Go's traceback text: what `runtime.Stack(buf, true)`, SIGQUIT and
//! `goroscope dump` print (`src/runtime/traceback.go`: `goroutineheader`, `traceback2`,
//! `printcreatedby`). It never panics: lines it does not understand go to `Traceback::errors`.
//!
//! ```text
//! goroutine 18 [chan receive, 3 minutes, locked to thread]:
//! goroutine 18 gp=0xc000007a40 m=nil [chan receive]:          (1.22+, traceback level >= 2)
//! goroutine 45 [chan receive] {scenario: shapes, "k 2": "v"}:  (1.27 pprof labels)
//! main.f(0x1, {0x2, 0x3}, ...)
//!         /path/to/file.go:12 +0x2a
//! main.g(...)                                                  (inlined: no +0x offset)
//!         /path/to/file.go:20
//! ...52 frames elided...
//! created by main.main in goroutine 1
//!         /path/to/main.go:30 +0x45
//! ```

use std::fmt;

/// A parsed traceback: goroutines in printed order, plus every line that did not fit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traceback {
    pub goroutines: Vec<Goroutine>,
    /// `"line N: why: text"` for each line the parser could not place.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Goroutine {
    pub id: u64,
    /// Text between the id and `[`, e.g. `gp=0xc000007a40 m=nil` (level >= 2), else empty.
    pub header_extra: String,
    /// The whole bracket content, e.g. `chan receive, 3 minutes, locked to thread`.
    pub state: String,
    /// Text after `]` and before the final `:`, e.g. `{scenario: shapes}` (1.27), else empty.
    pub labels: String,
    pub frames: Vec<Frame>,
    /// `(number of frames before it, the line)` for `...N frames elided...` and
    /// `...additional frames elided...`.
    pub elided: Vec<(usize, String)>,
    pub created_by: Option<CreatedBy>,
    /// `goroutine running on other thread; stack unavailable`.
    pub running_elsewhere: bool,
    /// The goroutine's lines as printed, for diffs.
    pub raw: String,
}

impl Goroutine {
    /// Running or runnable: its stack may move between two dumps.
    pub fn is_active(&self) -> bool {
        is_active_state(&self.state)
    }

    /// Parked in a way that two dumps must agree on exactly. A GC worker the runtime calls
    /// active is not: it is waiting only in name, so that the collector may scan its stack
    /// while its thread marks on the system stack (`casGToWaitingForGC`); it goes idle or
    /// running again when it likes.
    pub fn is_parked(&self) -> bool {
        !self.running_elsewhere && !self.is_active() && self.state != "GC worker (active)"
    }

    pub fn has_frame(&self, func: &str) -> bool {
        self.frames.iter().any(|f| f.func == func)
    }
}

/// `running`, `runnable`, with any suffix (`running, locked to thread`).
pub fn is_active_state(state: &str) -> bool {
    state.starts_with("running") || state.starts_with("runnable")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// The function line up to its last top-level `(`: `main.(*T).m`, `main.gen[...]`, `panic`.
    pub func: String,
    /// Inside the parentheses: `0x1, {0x2, 0x3}`, `...`, or empty.
    pub args: String,
    pub file: String,
    pub line: u32,
    /// `+0x2a`; None for inlined frames, which print no offset.
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedBy {
    pub func: String,
    /// `in goroutine N` (Go 1.21+).
    pub goroutine: Option<u64>,
    pub file: String,
    pub line: u32,
    pub offset: Option<u64>,
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({})\n\t{}:{}",
            self.func, self.args, self.file, self.line
        )?;
        if let Some(o) = self.offset {
            write!(f, " +{o:#x}")?;
        }
        Ok(())
    }
}

/// What the next tab-indented file line belongs to.
enum Pending {
    None,
    Frame(Frame),
    CreatedBy(CreatedBy),
}

/// [`parse`] of a dump that must be nothing but Go traceback: no line it cannot read, at least
/// one goroutine, no goroutine id twice.
pub fn parse_strict(text: &str) -> Result<Traceback, String> {
    let tb = parse(text);
    if !tb.errors.is_empty() {
        return Err(format!("lines that are not Go traceback: {:?}", tb.errors));
    }
    if tb.goroutines.is_empty() {
        return Err("no goroutines".into());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(g) = tb.goroutines.iter().find(|g| !seen.insert(g.id)) {
        return Err(format!("goroutine {} listed twice", g.id));
    }
    Ok(tb)
}

/// The goroutines of the traceback the runtime prints when a signal kills it (SIGQUIT with
/// GOTRACEBACK=system or crash), from the stderr that holds it, parsed by [`parse_strict`]:
/// the preamble before the first goroutine (`SIGQUIT: quit`, `PC=.. m=.. sigcode=..`, maybe
/// `signal arrived during cgo execution`) and everything from the first register dump on
/// (`rax`, `r0`, `x0`, or a `-----` between threads of a crash) are left out, and so is
/// goroutine 0 (the signal thread's g0, which is not in `allgs`).
pub fn signal_traceback(stderr: &str) -> Result<Traceback, String> {
    parse_strict(&signal_traceback_text(stderr))
        .map_err(|e| format!("the signal traceback: {e}\n{stderr}"))
}

/// The text of [`signal_traceback`]: its goroutines as the runtime printed them, separated by
/// blank lines, without the preamble, the register dumps and goroutine 0.
pub fn signal_traceback_text(stderr: &str) -> String {
    let mut text = String::new();
    let mut started = false;
    for line in stderr.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if matches!(first, "rax" | "r0" | "x0" | "-----") {
            break;
        }
        started |= line.starts_with("goroutine ");
        if started {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty() && !b.starts_with("goroutine 0 "))
        .map(|b| b.trim_end())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// What one M printed of itself in a crash traceback (GOTRACEBACK=crash: the signal is relayed
/// from M to M, and each prints `PC=.. m=N sigcode=..` and the stack it was on when the signal
/// arrived: `goroutine 0 [idle]:` for its g0, else the goroutine it ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashThread {
    /// The signal's pc (`PC=`).
    pub pc: u64,
    /// `m.id`.
    pub m: i64,
    /// Its first goroutine block as printed (header and frames).
    pub text: String,
}

/// Every M's own section of a crash traceback's stderr ([`CrashThread`]), in printed order.
pub fn crash_threads(stderr: &str) -> Vec<CrashThread> {
    let mut out = Vec::new();
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("PC=0x") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let pc = words.next().and_then(|w| u64::from_str_radix(w, 16).ok());
        let m = words
            .next()
            .and_then(|w| w.strip_prefix("m="))
            .and_then(|w| w.parse().ok());
        let (Some(pc), Some(m)) = (pc, m) else {
            continue;
        };
        // Up to the first goroutine header, then its lines up to a blank line or the registers.
        while lines.peek().is_some_and(|l| !l.starts_with("goroutine ")) {
            lines.next();
        }
        let mut text = String::new();
        let end = |l: &str| {
            l.trim().is_empty()
                || matches!(
                    l.split_whitespace().next(),
                    Some("rax" | "r0" | "x0" | "-----")
                )
        };
        while let Some(l) = lines.next_if(|l| !end(l)) {
            text.push_str(l);
            text.push('\n');
        }
        out.push(CrashThread { pc, m, text });
    }
    out
}

/// Parses a whole traceback text. Blank lines separate goroutines.
pub fn parse(text: &str) -> Traceback {
    let mut tb = Traceback::default();
    let mut cur: Option<Goroutine> = None;
    let mut pending = Pending::None;

    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut err = |why: &str| tb.errors.push(format!("line {n}: {why}: {line:?}"));

        if line.trim().is_empty() {
            flush_pending(&mut cur, &mut pending, &mut err);
            if let Some(g) = cur.take() {
                tb.goroutines.push(g);
            }
            continue;
        }
        if let Some(g) = parse_header(line) {
            flush_pending(&mut cur, &mut pending, &mut err);
            if let Some(prev) = cur.replace(g) {
                tb.goroutines.push(prev);
            }
            continue;
        }
        let Some(g) = cur.as_mut() else {
            err("outside a goroutine");
            continue;
        };
        g.raw.push('\n');
        g.raw.push_str(line);

        if let Some(rest) = line.strip_prefix('\t') {
            if rest.trim() == "goroutine running on other thread; stack unavailable" {
                g.running_elsewhere = true;
                continue;
            }
            match (
                std::mem::replace(&mut pending, Pending::None),
                parse_file_line(rest),
            ) {
                (Pending::Frame(mut f), Some((file, l, off))) => {
                    (f.file, f.line, f.offset) = (file, l, off);
                    g.frames.push(f);
                }
                (Pending::CreatedBy(mut c), Some((file, l, off))) => {
                    (c.file, c.line, c.offset) = (file, l, off);
                    g.created_by = Some(c);
                }
                (p, None) => {
                    pending = p;
                    err("bad file line");
                }
                (Pending::None, Some(_)) => err("file line without a function"),
            }
            continue;
        }

        // A new function line: a pending one without its file line is kept, but reported.
        if !matches!(pending, Pending::None) {
            let g = cur.as_mut().unwrap();
            match std::mem::replace(&mut pending, Pending::None) {
                Pending::Frame(f) => g.frames.push(f),
                Pending::CreatedBy(c) => g.created_by = Some(c),
                Pending::None => {}
            }
            err("previous function has no file line");
        }
        let g = cur.as_mut().unwrap();
        if let Some(rest) = line.strip_prefix("created by ") {
            let (func, goroutine) = match rest.rsplit_once(" in goroutine ") {
                Some((f, id)) => match id.trim().parse() {
                    Ok(id) => (f.to_string(), Some(id)),
                    Err(_) => (rest.to_string(), None),
                },
                None => (rest.to_string(), None),
            };
            pending = Pending::CreatedBy(CreatedBy {
                func,
                goroutine,
                ..Default::default()
            });
        } else if line.starts_with("...") && line.ends_with("...") && line.contains("elided") {
            g.elided.push((g.frames.len(), line.to_string()));
        } else if let Some((func, args)) = split_call(line) {
            pending = Pending::Frame(Frame {
                func,
                args,
                ..Default::default()
            });
        } else {
            err("unknown line");
        }
    }
    let mut err = |why: &str| tb.errors.push(format!("end: {why}"));
    flush_pending(&mut cur, &mut pending, &mut err);
    if let Some(g) = cur.take() {
        tb.goroutines.push(g);
    }
    tb
}

fn flush_pending(cur: &mut Option<Goroutine>, pending: &mut Pending, err: &mut impl FnMut(&str)) {
    match std::mem::replace(pending, Pending::None) {
        Pending::None => {}
        Pending::Frame(f) => {
            err("function without a file line");
            if let Some(g) = cur.as_mut() {
                g.frames.push(f);
            }
        }
        Pending::CreatedBy(c) => {
            err("created by without a file line");
            if let Some(g) = cur.as_mut() {
                g.created_by = Some(c);
            }
        }
    }
}

/// `goroutine N [state]:`, `goroutine N gp=.. m=.. [state]:`, `goroutine N [state] {labels}:`.
fn parse_header(line: &str) -> Option<Goroutine> {
    let rest = line.strip_prefix("goroutine ")?;
    let body = rest.strip_suffix(':')?;
    let digits = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let id: u64 = body[..digits].parse().ok()?;
    let after_id = &body[digits..];
    let open = after_id.find('[')?;
    let close = open + after_id[open..].find(']')?;
    let header_extra = after_id[..open].trim().to_string();
    Some(Goroutine {
        id,
        header_extra,
        state: after_id[open + 1..close].to_string(),
        labels: after_id[close + 1..].trim().to_string(),
        raw: line.to_string(),
        ..Default::default()
    })
}

/// Splits `main.(*T).m[...](0x1, {0x2})` at the `(` matching the final `)`.
fn split_call(line: &str) -> Option<(String, String)> {
    let body = line.strip_suffix(')')?;
    let mut depth = 0usize;
    for (i, c) in body.char_indices().rev() {
        match c {
            ')' | '}' | ']' => depth += 1,
            '(' | '{' | '[' if depth > 0 => depth -= 1,
            '(' => {
                let func = &body[..i];
                if func.is_empty() || func.contains(char::is_whitespace) {
                    return None;
                }
                return Some((func.to_string(), body[i + 1..].to_string()));
            }
            _ => {}
        }
    }
    None
}

/// `/path/file.go:12 +0x2a` (maybe followed by ` fp=.. sp=.. pc=..`), `/path/file.go:12`.
fn parse_file_line(s: &str) -> Option<(String, u32, Option<u64>)> {
    let s = s.trim_start_matches('\t');
    let mut words = s.split(' ');
    let loc = words.next()?;
    let mut offset = None;
    for w in words {
        if let Some(hex) = w.strip_prefix("+0x") {
            offset = Some(u64::from_str_radix(hex, 16).ok()?);
        } else if !(w.starts_with("fp=") || w.starts_with("sp=") || w.starts_with("pc=")) {
            return None;
        }
    }
    let (file, line) = loc.rsplit_once(':')?;
    Some((file.to_string(), line.parse().ok()?, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_function_names() {
        let cases = [
            ("main.f()", "main.f", ""),
            (
                "main.(*T).m(0xc000010000, 0x1?)",
                "main.(*T).m",
                "0xc000010000, 0x1?",
            ),
            (
                "main.gen[...](0x0?, {0x6d30c0?, 0x3})",
                "main.gen[...]",
                "0x0?, {0x6d30c0?, 0x3}",
            ),
            ("main.(*box[...]).wait(...)", "main.(*box[...]).wait", "..."),
            (
                "panic({0x9953d0?, 0x6f3200?})",
                "panic",
                "{0x9953d0?, 0x6f3200?}",
            ),
            (
                "runtime/pprof.Do({0x1?, 0x2?}, {{0x3?, 0x0?, 0x0?}}, 0x4)",
                "runtime/pprof.Do",
                "{0x1?, 0x2?}, {{0x3?, 0x0?, 0x0?}}, 0x4",
            ),
            ("main.main.func1.1()", "main.main.func1.1", ""),
        ];
        for (line, func, args) in cases {
            assert_eq!(
                split_call(line),
                Some((func.to_string(), args.to_string())),
                "{line}"
            );
        }
        assert_eq!(split_call("not a call"), None);
        assert_eq!(split_call("(0x1)"), None);
    }

    #[test]
    fn headers() {
        let g = parse_header("goroutine 18 [chan receive, 3 minutes, locked to thread]:").unwrap();
        assert_eq!(
            (
                g.id,
                g.state.as_str(),
                g.header_extra.as_str(),
                g.labels.as_str()
            ),
            (18, "chan receive, 3 minutes, locked to thread", "", "")
        );
        let g = parse_header("goroutine 1 gp=0xc000002380 m=0 mp=0x5a1f20 [running]:").unwrap();
        assert_eq!(
            (g.id, g.state.as_str(), g.header_extra.as_str()),
            (1, "running", "gp=0xc000002380 m=0 mp=0x5a1f20")
        );
        let g =
            parse_header(r#"goroutine 45 [chan receive] {scenario: shapes, "worker id": "7 b"}:"#)
                .unwrap();
        assert_eq!(
            (g.state.as_str(), g.labels.as_str()),
            ("chan receive", r#"{scenario: shapes, "worker id": "7 b"}"#)
        );
        assert!(parse_header("goroutine x [running]:").is_none());
        assert!(parse_header("goroutine 1 [running]").is_none());
    }

    #[test]
    fn file_lines() {
        assert_eq!(
            parse_file_line("/a/b.go:12 +0x2a"),
            Some(("/a/b.go".into(), 12, Some(0x2a)))
        );
        assert_eq!(
            parse_file_line("/a/b.go:12"),
            Some(("/a/b.go".into(), 12, None))
        );
        assert_eq!(
            parse_file_line("/a/b.go:12 +0x2a fp=0xc000 sp=0xc001 pc=0x4000"),
            Some(("/a/b.go".into(), 12, Some(0x2a)))
        );
        assert_eq!(
            parse_file_line("C:/x.go:7 +0x1"),
            Some(("C:/x.go".into(), 7, Some(1)))
        );
        assert_eq!(parse_file_line("/a/b.go"), None);
        assert_eq!(parse_file_line("/a/b.go:12 junk"), None);
    }

    #[test]
    fn garbage_is_reported_not_fatal() {
        let text = "hello\ngoroutine 3 [sleep]:\nmain.f(\n\t/x.go:1 +0x1\n\tno line here\nmain.g()\ncreated by\n\n\n";
        let tb = parse(text);
        assert_eq!(tb.goroutines.len(), 1);
        assert!(tb.errors.len() >= 3, "{:#?}", tb.errors);
        // Arbitrary bytes must not panic.
        for s in [
            "",
            "\n\n",
            "goroutine",
            "goroutine 1 [",
            "\t",
            ")))(((",
            "...",
            "created by x in goroutine y\n\t:",
        ] {
            let _ = parse(s);
        }
    }

    #[test]
    fn parses_go1_27_runtime_text() {
        let tb = parse(samples::GO1_27);
        assert!(tb.errors.is_empty(), "{:#?}", tb.errors);
        let ids: Vec<u64> = tb.goroutines.iter().map(|g| g.id).collect();
        assert_eq!(ids, [1, 19, 20, 21, 28, 32, 35, 43, 44, 45, 47]);
        let g = &tb.goroutines[0];
        assert_eq!(g.state, "running");
        assert_eq!(g.frames.len(), 3);
        assert_eq!(g.frames[1].func, "main.serve");
        assert_eq!(g.created_by, None);

        let sig = &tb.goroutines[1];
        assert_eq!(sig.state, "syscall");
        let c = sig.created_by.as_ref().unwrap();
        assert_eq!(
            (c.func.as_str(), c.goroutine, c.line, c.offset),
            ("os/signal.Notify.func2.1", Some(1), 164, Some(0x1f))
        );

        let inl = &tb.goroutines[2];
        assert_eq!(inl.frames[0].func, "main.signalCounter");
        assert_eq!(
            (inl.frames[0].args.as_str(), inl.frames[0].offset),
            ("...", None)
        );

        let busy = &tb.goroutines[3];
        assert!(busy.is_active() && !busy.is_parked());

        let deep = &tb.goroutines[4];
        assert_eq!(deep.elided, vec![(3, "...52 frames elided...".to_string())]);
        assert_eq!(deep.frames.len(), 5);
        assert_eq!(deep.frames.last().unwrap().func, "main.deepLong");

        let panicking = &tb.goroutines[5];
        let funcs: Vec<&str> = panicking.frames.iter().map(|f| f.func.as_str()).collect();
        assert_eq!(
            funcs,
            ["main.deferBlockPanicking", "panic", "main.deferDuringPanic"]
        );

        let locked = &tb.goroutines[6];
        assert_eq!(locked.state, "chan receive, locked to thread");
        assert!(locked.raw.starts_with("goroutine 35 ") && locked.raw.ends_with("+0x65"));

        let generic = &tb.goroutines[7];
        assert_eq!(generic.frames[0].func, "main.(*shapesBox[...]).wait");
        let inlined = &tb.goroutines[8];
        assert_eq!(inlined.frames[0].func, "main.shapesInlinedRecv");
        assert_eq!(inlined.frames[0].offset, None);
        assert_eq!(inlined.frames[1].offset, Some(0x25));

        let labeled = &tb.goroutines[9];
        assert_eq!(labeled.state, "chan receive");
        assert_eq!(labeled.labels, r#"{scenario: shapes, "worker id": "7 b"}"#);
        assert_eq!(labeled.frames[1].func, "runtime/pprof.Do");
        assert_eq!(
            labeled.frames[1].args,
            "{0x9d9790?, 0xa4b700?}, {{0x36d44be2c080?, 0x0?, 0x0?}}, 0x36d44be68f68"
        );

        let mutex = &tb.goroutines[10];
        assert_eq!(mutex.state, "sync.Mutex.Lock");
        assert_eq!(mutex.frames.len(), 5);
        assert_eq!(mutex.frames[3].func, "sync.(*Mutex).Lock");
    }

    #[test]
    fn parses_go1_21_and_crash_text() {
        let tb = parse(samples::GO1_21);
        assert!(tb.errors.is_empty(), "{:#?}", tb.errors);
        assert_eq!(tb.goroutines.len(), 3);
        let io = &tb.goroutines[1];
        assert_eq!(
            (io.id, io.state.as_str(), io.frames.len()),
            (17, "IO wait", 7)
        );
        assert_eq!(io.frames[2].func, "internal/poll.(*pollDesc).waitRead");
        assert_eq!(io.frames[6].func, "main.ioConnRead");
        assert_eq!(io.frames[6].args, "{0x73d418, 0xc000144000}");

        let tb = parse(samples::CRASH);
        // The preamble and the register dump are not goroutines.
        assert_eq!(tb.errors.len(), 4, "{:#?}", tb.errors);
        assert_eq!(tb.goroutines.len(), 2);
        let g = &tb.goroutines[0];
        assert_eq!(g.header_extra, "gp=0x189ce2d00d20 m=nil");
        assert_eq!((g.frames.len(), g.frames[0].offset), (6, Some(0xca)));
        assert_eq!(g.frames[5].func, "runtime.goexit");
        assert_eq!(g.frames[5].args, "{}");
        let other = &tb.goroutines[1];
        assert_eq!(
            other.header_extra,
            "gp=0x189ce2d00f00 m=3 mp=0x189ce2c79008"
        );
        assert!(other.running_elsewhere && !other.is_parked());
        assert!(other.frames.is_empty());
        assert_eq!(other.created_by.as_ref().unwrap().goroutine, Some(1));
    }

    #[test]
    fn crash_threads_takes_each_ms_first_block_up_to_its_registers() {
        let second = "\n-----\n\nSIGQUIT: quit\nPC=0x48f601 m=2 sigcode=0\n\ngoroutine 0 gp=0x1 m=2 mp=0x2 [idle]:\nruntime.futex(0x1)\n\t/x.s:575 +0x21 fp=0x10 sp=0x8 pc=0x48f601\nrax    0xca\n";
        let ts = crash_threads(&format!("{}{second}", samples::CRASH));
        assert_eq!(ts.len(), 2);
        assert_eq!((ts[0].pc, ts[0].m), (0x48bd81, 0));
        assert!(ts[0].text.starts_with("goroutine 22 gp="));
        assert!(ts[0].text.ends_with("/tmp/fxt/main.go:121 +0x192\n"));
        assert_eq!((ts[1].pc, ts[1].m), (0x48f601, 2));
        assert_eq!(
            ts[1].text,
            "goroutine 0 gp=0x1 m=2 mp=0x2 [idle]:\nruntime.futex(0x1)\n\t/x.s:575 +0x21 fp=0x10 sp=0x8 pc=0x48f601\n"
        );
    }

    #[test]
    fn signal_traceback_leaves_out_preamble_registers_and_g0() {
        let tb = signal_traceback(samples::CRASH).unwrap();
        let ids: Vec<u64> = tb.goroutines.iter().map(|g| g.id).collect();
        assert_eq!(ids, [22, 23]);
        let g0 = samples::CRASH.replace("\ngoroutine 22 ", "\ngoroutine 0 gp=0x1 m=0 mp=0x2 [idle]:\nruntime.futex()\n\t/x.s:1 +0x21\n\ngoroutine 22 ");
        assert_eq!(signal_traceback(&g0).unwrap(), tb);
        assert!(
            signal_traceback("SIGQUIT: quit\nPC=0x1 m=0 sigcode=0\n\nrax 0x0\n").is_err(),
            "no goroutines"
        );
        let stray = samples::CRASH.replace("runtime.chanrecv2(", "junk\nruntime.chanrecv2(");
        assert!(signal_traceback(&stray).is_err(), "a stray line");
    }

    /// Real text, captured from the fixture (`fixture all`, then `stack`), trimmed.
    mod samples {
        pub const GO1_27: &str = r#"goroutine 1 [running]:
main.stackText()
	/tmp/fxt/main.go:187 +0x3a
main.serve(0x36d44be2c0c0)
	/tmp/fxt/main.go:160 +0x155
main.main()
	/tmp/fxt/main.go:151 +0x528

goroutine 19 [syscall]:
os/signal.signal_recv()
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/sigqueue.go:152 +0x98
os/signal.loop()
	/root/.cache/goroscope/go/1.27.3/go/src/os/signal/signal_unix.go:23 +0x13
created by os/signal.Notify.func2.1 in goroutine 1
	/root/.cache/goroscope/go/1.27.3/go/src/os/signal/signal.go:164 +0x1f

goroutine 20 [chan receive]:
main.signalCounter(...)
	/tmp/fxt/main.go:98
created by main.main in goroutine 1
	/tmp/fxt/main.go:121 +0x192

goroutine 21 [runnable]:
main.busySpin()
	/tmp/fxt/busy.go:1 +0x10
created by main.setupBusy in goroutine 1
	/tmp/fxt/busy.go:18 +0x25

goroutine 28 [chan receive]:
main.deepRecurseLong(0x0?, 0x0?)
	/tmp/fxt/deep.go:23 +0x29
main.deepRecurseLong(0x0?, 0x0?)
	/tmp/fxt/deep.go:25 +0x3c
main.deepRecurseLong(0x0?, 0x0?)
	/tmp/fxt/deep.go:25 +0x3c
...52 frames elided...
main.deepRecurseLong(0x36d44be02100?, 0x1?)
	/tmp/fxt/deep.go:25 +0x3c
main.deepLong(...)
	/tmp/fxt/deep.go:17
created by main.setupDeep in goroutine 1
	/tmp/fxt/deep.go:10 +0x69

goroutine 32 [chan receive]:
main.deferBlockPanicking(0x36d44be3e1e0?)
	/tmp/fxt/defer.go:48 +0x15
panic({0x9953d0?, 0x6f3200?})
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/panic.go:859 +0x125
main.deferDuringPanic(0x0?)
	/tmp/fxt/defer.go:43 +0x4d
created by main.setupDefer in goroutine 1
	/tmp/fxt/defer.go:12 +0x10d

goroutine 35 [chan receive, locked to thread]:
main.lockedThreadWait(0x36d44bdd8460)
	/tmp/fxt/locked.go:19 +0x25
created by main.setupLocked in goroutine 1
	/tmp/fxt/locked.go:12 +0x65

goroutine 43 [chan receive]:
main.(*shapesBox[...]).wait(0x0, 0x0?)
	/tmp/fxt/shapes.go:47 +0x1d
created by main.setupShapes in goroutine 1
	/tmp/fxt/shapes.go:93 +0x365

goroutine 44 [chan receive]:
main.shapesInlinedRecv(...)
	/tmp/fxt/shapes.go:54
main.shapesInlinedCaller(0x0?)
	/tmp/fxt/shapes.go:61 +0x25
created by main.setupShapes in goroutine 1
	/tmp/fxt/shapes.go:94 +0x3ab

goroutine 45 [chan receive] {scenario: shapes, "worker id": "7 b"}:
main.shapesLabeled.func1({0x9d98a8?, 0x36d44be422d0?})
	/tmp/fxt/shapes.go:68 +0x19
runtime/pprof.Do({0x9d9790?, 0xa4b700?}, {{0x36d44be2c080?, 0x0?, 0x0?}}, 0x36d44be68f68)
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/pprof/runtime.go:57 +0x8c
main.shapesLabeled(0x36d44bdd84d0)
	/tmp/fxt/shapes.go:67 +0xbf
created by main.setupShapes in goroutine 1
	/tmp/fxt/shapes.go:95 +0x3f6

goroutine 47 [sync.Mutex.Lock]:
internal/sync.runtime_SemacquireMutex(0x0?, 0x0?, 0x0?)
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/sema.go:95 +0x25
internal/sync.(*Mutex).lockSlow(0xa4b800)
	/root/.cache/goroscope/go/1.27.3/go/src/internal/sync/mutex.go:149 +0x15a
internal/sync.(*Mutex).Lock(...)
	/root/.cache/goroscope/go/1.27.3/go/src/internal/sync/mutex.go:70
sync.(*Mutex).Lock(...)
	/root/.cache/goroscope/go/1.27.3/go/src/sync/mutex.go:46
main.syncMutexLock()
	/tmp/fxt/sync.go:42 +0x35
created by main.setupSync in goroutine 1
	/tmp/fxt/sync.go:21 +0x4a

"#;
        pub const GO1_21: &str = r#"goroutine 1 [running]:
main.stackText()
	/tmp/fxt/main.go:187 +0x3a
main.serve(0xc000080240?)
	/tmp/fxt/main.go:160 +0x14b
main.main()
	/tmp/fxt/main.go:151 +0x4eb

goroutine 17 [IO wait]:
internal/poll.runtime_pollWait(0x7ff0ee8125e8, 0x72)
	/root/.cache/goroscope/go/1.21.13/go/src/runtime/netpoll.go:343 +0x85
internal/poll.(*pollDesc).wait(0xc0000b6080?, 0xc000172040?, 0x0)
	/root/.cache/goroscope/go/1.21.13/go/src/internal/poll/fd_poll_runtime.go:84 +0x27
internal/poll.(*pollDesc).waitRead(...)
	/root/.cache/goroscope/go/1.21.13/go/src/internal/poll/fd_poll_runtime.go:89
internal/poll.(*FD).Read(0xc0000b6080, {0xc000172040, 0x40, 0x40})
	/root/.cache/goroscope/go/1.21.13/go/src/internal/poll/fd_unix.go:164 +0x27a
net.(*netFD).Read(0xc0000b6080, {0xc000172040?, 0x7ff0a7dac268?, 0x7ff0ee98c5b8?})
	/root/.cache/goroscope/go/1.21.13/go/src/net/fd_posix.go:55 +0x25
net.(*conn).Read(0xc000144000, {0xc000172040?, 0x665e80?, 0x1?})
	/root/.cache/goroscope/go/1.21.13/go/src/net/net.go:185 +0x45
main.ioConnRead({0x73d418, 0xc000144000})
	/tmp/fxt/io.go:38 +0x47
created by main.setupIO in goroutine 1
	/tmp/fxt/io.go:30 +0x20b

goroutine 8 [chan receive]:
main.signalCounter(0x0?)
	/tmp/fxt/main.go:98 +0x45
created by main.main in goroutine 1
	/tmp/fxt/main.go:121 +0x16b
"#;
        /// SIGQUIT with GOTRACEBACK=system (Go 1.27): gp=/m= headers, fp/sp/pc on file lines,
        /// register dump after. Goroutine 23's "running on other thread" block is written by
        /// hand after `tracebacksomeothers` (traceback.go:1423): it is rare to catch.
        pub const CRASH: &str = r#"SIGQUIT: quit
PC=0x48bd81 m=0 sigcode=0

goroutine 22 gp=0x189ce2d00d20 m=nil [chan receive]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/proc.go:474 +0xca fp=0x189ce2c72f08 sp=0x189ce2c72ee8 pc=0x48382a
runtime.chanrecv(0x189ce2d4a000, 0x189ce2c72fb8, 0x1)
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/chan.go:667 +0x4ae fp=0x189ce2c72f80 sp=0x189ce2c72f08 pc=0x41642e
runtime.chanrecv2(0x0?, 0x0?)
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/chan.go:514 +0x12 fp=0x189ce2c72fa8 sp=0x189ce2c72f80 pc=0x415f72
main.signalCounter(...)
	/tmp/fxt/main.go:98
main.main.gowrap1()
	/tmp/fxt/main.go:121 +0x46 fp=0x189ce2c72fe0 sp=0x189ce2c72fa8 pc=0x669fe6
runtime.goexit({})
	/root/.cache/goroscope/go/1.27.3/go/src/runtime/asm_amd64.s:1264 +0x1 fp=0x189ce2c72fe8 sp=0x189ce2c72fe0 pc=0x48a241
created by main.main in goroutine 1
	/tmp/fxt/main.go:121 +0x192

goroutine 23 gp=0x189ce2d00f00 m=3 mp=0x189ce2c79008 [running]:
	goroutine running on other thread; stack unavailable
created by main.setupBusy in goroutine 1
	/tmp/fxt/busy.go:18 +0x25

rax    0xca
rbx    0x0
"#;
    }
}
