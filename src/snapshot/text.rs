//! Go's own goroutine dumps as snapshots: the text `runtime.Stack(buf, true)`, a SIGQUIT or
//! crash traceback, or pprof's `debug=2` profile print (and what `goroscope dump` prints), so
//! existing dumps get the same analysis as live ones.
//!
//! Lines that are not part of a goroutine block (a SIGQUIT preamble, register dumps) are
//! skipped. Elision lines are kept as frames named by their text.

use super::{CreatedBy, Frame, Goroutine, LabelStr, Meta, Snapshot, Source, Status};

/// Most goroutines read from one text dump.
pub(crate) const MAX_GOROUTINES: usize = 16 << 20;

/// Parses a text dump; `None` when it holds no goroutine at all.
pub fn parse(text: &str) -> Option<Snapshot> {
    let mut gs: Vec<Goroutine> = Vec::new();
    let mut cur: Option<Goroutine> = None;
    let mut pending_func: Option<(String, String)> = None;
    let mut in_created_by = false;
    let lines = text.lines().peekable();
    for line in lines {
        if let Some(g) = header(line) {
            if let Some(done) = cur.take() {
                gs.push(done);
            }
            if gs.len() >= MAX_GOROUTINES {
                break;
            }
            cur = Some(g);
            pending_func = None;
            in_created_by = false;
            continue;
        }
        let Some(g) = cur.as_mut() else { continue };
        if line.is_empty() {
            if let Some(done) = cur.take() {
                gs.push(done);
            }
            continue;
        }
        if let Some(loc) = line.strip_prefix('\t') {
            if loc.starts_with("goroutine running on other thread") {
                continue;
            }
            let (file, line_no, offset) = location(loc);
            if in_created_by {
                if let Some(c) = g.created_by.as_mut() {
                    c.file = file.into();
                    c.line = line_no;
                    c.pc = offset.unwrap_or(0);
                }
                in_created_by = false;
            } else if let Some((function, args)) = pending_func.take() {
                let inlined = args == "...";
                g.frames.push(Frame {
                    site: crate::snapshot::Site {
                        function: function.into(),
                        file: file.into(),
                        line: line_no,
                        inlined,
                        // Text has offsets, not addresses: pc - entry with entry 0.
                        pc: offset.unwrap_or(0),
                        ..Default::default()
                    }
                    .shared(),
                    args: args.into(),
                    ..Default::default()
                });
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("created by ") {
            let (function, parent) = match rest.split_once(" in goroutine ") {
                Some((f, n)) => (f.to_string(), n.trim().parse().unwrap_or(0)),
                None => (rest.to_string(), 0),
            };
            g.parent_id = parent;
            g.created_by = Some(CreatedBy {
                function: function.into(),
                ..Default::default()
            });
            in_created_by = true;
            continue;
        }
        if line.starts_with("...") && line.ends_with("...") {
            g.frames.push(Frame {
                site: crate::snapshot::Site {
                    function: line.into(),
                    ..Default::default()
                }
                .into(),
                hidden: false,
                ..Default::default()
            });
            continue;
        }
        // A function line: name(args).
        if let Some((name, args)) = split_call(line) {
            pending_func = Some((name, args));
        }
    }
    if let Some(done) = cur.take() {
        gs.push(done);
    }
    if gs.is_empty() {
        return None;
    }
    for g in &mut gs {
        // The text has no start pc: the outermost frame is the closest thing to it.
        g.start_func = g
            .frames
            .last()
            .map(|f| f.function.clone())
            .unwrap_or_default();
    }
    Some(Snapshot {
        meta: Meta {
            source: Source::Text,
            ..Default::default()
        },
        goroutines: gs,
        threads: Vec::new(),
        objects: Vec::new(),
        file_locks: None,
    })
}

/// `goroutine N [state...]:` (with ` gp=.. m=.. mp=..` and labels in any version's form).
fn header(line: &str) -> Option<Goroutine> {
    let rest = line.strip_prefix("goroutine ")?;
    let line = line.strip_suffix(':')?;
    let (id_part, _) = rest.split_once(' ')?;
    let id: u64 = id_part.parse().ok()?;
    let open = line.find(" [")?;
    let close = line.rfind(']')?;
    if close <= open {
        return None;
    }
    let inside = &line[open + 2..close];
    let after = line[close + 1..].trim();
    let mut g = Goroutine {
        id,
        ..Default::default()
    };
    // Go 1.27 labels after the brackets: ` {k: v, ...}`.
    if let Some(l) = after.strip_prefix('{').and_then(|a| a.strip_suffix('}')) {
        g.labels = labels(l);
    }
    let mut parts: Vec<&str> = Vec::new();
    let mut inside = inside;
    // Go 1.26 labels inside the brackets: ` labels:{"k": "v"}`.
    if let Some(i) = inside.find(" labels:{") {
        if let Some(l) = inside[i + 9..].strip_suffix('}') {
            g.labels = labels(l);
        }
        inside = &inside[..i];
    }
    for p in inside.split(", ") {
        parts.push(p);
    }
    let mut state = parts.first().copied().unwrap_or("").to_string();
    for suffix in [" (scan)", " (leaked)"] {
        if let Some(s) = state.strip_suffix(suffix) {
            if suffix == " (scan)" {
                g.scan = true;
            }
            state = s.to_string();
        }
    }
    for p in parts.iter().skip(1) {
        if let Some(m) = p.strip_suffix(" minutes") {
            g.wait_minutes = m.parse().unwrap_or(0);
        } else if *p == "locked to thread" {
            g.locked_to_thread = true;
        }
    }
    g.status = match state.as_str() {
        "idle" => Status::IDLE,
        "runnable" => Status::RUNNABLE,
        "running" => Status::RUNNING,
        "syscall" => Status::SYSCALL,
        "dead" => Status::DEAD,
        "copystack" => Status::COPYSTACK,
        "preempted" => Status::PREEMPTED,
        _ => Status::WAITING,
    };
    g.state = state.into();
    if let Some(m) = rest.split(" m=").nth(1).and_then(|m| m.split(' ').next()) {
        g.m_id = m.parse().ok();
    }
    Some(g)
}

/// `k: v, "k 2": "v"` as printed by Go 1.26/1.27.
fn labels(s: &str) -> Vec<(LabelStr, LabelStr)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() && out.len() < super::MAX_LABELS as usize {
        let (k, r) = token(rest);
        let Some(r) = r.strip_prefix(": ") else { break };
        let (v, r) = token(r);
        out.push((k, v));
        rest = r.strip_prefix(", ").unwrap_or(r).trim_start();
        if r.len() == rest.len() && !rest.is_empty() && !r.starts_with(", ") {
            break;
        }
    }
    out
}

/// One label key or value: a quoted string with the runtime's escapes (`\xNN` a byte, which
/// need not be UTF-8; `\uNNNN`, `\UNNNNNNNN` a character), or a bare word.
fn token(s: &str) -> (LabelStr, &str) {
    let Some(body) = s.strip_prefix('"') else {
        let end = s.find([':', ',']).unwrap_or(s.len());
        return (s[..end].trim().into(), &s[end..]);
    };
    let mut out = Vec::new();
    let mut chars = body.char_indices();
    // `n` hex digits after an escape's letter, as a number.
    let hex = |chars: &mut std::str::CharIndices<'_>, n: usize| -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| Some(v * 16 + chars.next()?.1.to_digit(16)?))
    };
    let push =
        |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (LabelStr::new(out, 0), &body[i + 1..]),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('a') => out.push(0x07),
                Some('b') => out.push(0x08),
                Some('f') => out.push(0x0c),
                Some('n') => out.push(b'\n'),
                Some('r') => out.push(b'\r'),
                Some('t') => out.push(b'\t'),
                Some('v') => out.push(0x0b),
                Some('x') => out.extend(hex(&mut chars, 2).map(|b| b as u8)),
                Some('u') => push(
                    &mut out,
                    hex(&mut chars, 4)
                        .and_then(char::from_u32)
                        .unwrap_or('\u{fffd}'),
                ),
                Some('U') => push(
                    &mut out,
                    hex(&mut chars, 8)
                        .and_then(char::from_u32)
                        .unwrap_or('\u{fffd}'),
                ),
                Some(e) => push(&mut out, e),
                None => break,
            },
            c => push(&mut out, c),
        }
    }
    (LabelStr::new(out, 0), "")
}

/// `name(args)` → (name, args), splitting at the last top-level `(`.
fn split_call(line: &str) -> Option<(String, String)> {
    let body = line.strip_suffix(')')?;
    let mut depth = 0i32;
    for (i, c) in body.char_indices().rev() {
        match c {
            ')' | '}' => depth += 1,
            '{' => depth -= 1,
            '(' if depth == 0 => return Some((body[..i].to_string(), body[i + 1..].to_string())),
            '(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `file:line +0xoff fp=.. sp=.. pc=..` → (file, line, offset).
fn location(s: &str) -> (String, u32, Option<u64>) {
    let mut words = s.split(' ');
    let fl = words.next().unwrap_or("");
    let (file, line) = match fl.rsplit_once(':') {
        Some((f, l)) => (f.to_string(), l.parse().unwrap_or(0)),
        None => (fl.to_string(), 0),
    };
    let offset = words
        .find_map(|w| w.strip_prefix("+0x"))
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    (file, line, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "SIGQUIT: quit\nPC=0x46f3a1 m=0 sigcode=0\n\ngoroutine 1 gp=0xc000002380 m=nil [chan receive, 3 minutes, locked to thread] {k: v, \"a b\": \"c\\\"d\"}:\nmain.main()\n\t/app/main.go:12 +0x25 fp=0xc sp=0xd pc=0x1\n\ngoroutine 7 [select]:\nmain.(*S).run(0xc000010000, {0x1, 0x2})\n\t/app/s.go:40 +0x1a\nmain.helper(...)\n\t/app/s.go:9\ncreated by main.start in goroutine 1\n\t/app/main.go:30 +0x9f\n";

    #[test]
    fn parses_sigquit_and_stack_text() {
        let s = parse(DUMP).unwrap();
        assert_eq!(s.goroutines.len(), 2);
        let g = &s.goroutines[0];
        assert_eq!(
            (g.id, &*g.state, g.wait_minutes, g.locked_to_thread),
            (1, "chan receive", 3, true)
        );
        assert_eq!(
            g.labels,
            vec![("k".into(), "v".into()), ("a b".into(), "c\"d".into())]
        );
        assert_eq!(&*g.frames[0].function, "main.main");
        assert_eq!((&*g.frames[0].file, g.frames[0].line), ("/app/main.go", 12));
        let g = &s.goroutines[1];
        assert_eq!(&*g.frames[0].function, "main.(*S).run");
        assert_eq!(&*g.frames[0].args, "0xc000010000, {0x1, 0x2}");
        assert!(g.frames[1].inlined);
        let c = g.created_by.as_ref().unwrap();
        assert_eq!((&*c.function, c.line, g.parent_id), ("main.start", 30, 1));
    }

    /// Go 1.27 prints a label byte that is not UTF-8 as `\xNN`: read back as that byte.
    #[test]
    fn label_escapes_are_bytes() {
        let g = header(r#"goroutine 5 [select] {"a\x1b": "\xff\xfe ok\u00e9\U0001f600\t\"\\"}:"#)
            .unwrap();
        assert_eq!(
            g.labels,
            vec![(
                "a\x1b".into(),
                LabelStr::new([&b"\xff\xfe ok"[..], "é😀\t\"\\".as_bytes()].concat(), 0)
            )]
        );
    }

    #[test]
    fn garbage_is_none() {
        assert!(parse("hello\nworld\n").is_none());
        assert!(parse("goroutine x [y]:\n").is_none());
    }
}
