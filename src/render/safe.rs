//! Text from outside goroscope, made safe for output. Everything a target, a binary, `/proc`
//! or a snapshot file names (labels, function names, file and module paths, build settings,
//! comm and exe paths, wait reasons, source lines) passes through here before a human format
//! prints it, so no control character, escape sequence, bidirectional override or endless
//! string reaches a terminal:
//!
//! - [`text`] / [`write_text`]: an unquoted field (a function name, a path, a table cell).
//!   Printable characters pass as they are; every other one is escaped as Go escapes it
//!   (`\x1b`, `\n`, `\u202e`), and a field longer than [`MAX_SHOWN`] bytes is cut with a
//!   `...(+N bytes)` marker.
//! - [`quoted`] / [`maybe_quoted`]: the runtime's `printquoted` (pprof labels in traceback
//!   headers): only printable ASCII passes.
//! - [`go_quote`]: Go's `%q` (`strconv.Quote`), as `runtime/pprof` prints labels in `debug=1`.
//!
//! - [`write_json`]: JSON, with every non-printable character escaped as `\uXXXX` (JSON's own
//!   escape; serde_json alone leaves DEL, C1 controls and bidirectional overrides raw).
//!
//! "Printable" is Unicode's letters, marks, numbers, punctuation, symbols and the ASCII space
//! (Go's `strconv.IsPrint`; the same set Rust's `escape_debug` leaves alone). pprof profiles
//! store the strings as they are: their readers render them.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Longest field, in bytes, a human format prints of one string from outside goroscope; the
/// rest is cut with a `...(+N bytes)` marker. PATH_MAX, so that no real path is cut.
pub const MAX_SHOWN: usize = 4096;

/// Whether `c` prints as itself: Go's `strconv.IsPrint`.
pub fn printable(c: char) -> bool {
    if c.is_ascii() {
        return c == ' ' || c.is_ascii_graphic();
    }
    // `str::escape_debug` escapes a non-printable character after the first one, and leaves
    // a printable one (combining marks included) alone.
    let mut buf = [b'x'; 5];
    let n = c.encode_utf8(&mut buf[1..]).len();
    std::str::from_utf8(&buf[..=n]).is_ok_and(|s| s.escape_debug().nth(1) == Some(c))
}

/// Whether `s` is printed as it is by [`text`] (with `tabs`: by [`source_line`]).
fn clean(s: &str, tabs: bool) -> bool {
    let ok = |c: char| printable(c) || (tabs && c == '\t');
    s.len() <= MAX_SHOWN
        && (s
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) || (tabs && b == b'\t'))
            || s.chars().all(ok))
}

/// `s` cut at a character boundary at most [`MAX_SHOWN`] bytes in, and how many bytes were cut.
fn head(s: &str) -> (&str, usize) {
    if s.len() <= MAX_SHOWN {
        return (s, 0);
    }
    let mut end = MAX_SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], s.len() - end)
}

fn cut_marker(o: &mut String, cut: usize) {
    if cut > 0 {
        let _ = write!(o, "...(+{cut} bytes)");
    }
}

/// Go's escape of a non-printable character: `\a \b \f \n \r \t \v`, `\xNN` below 0x80,
/// `\uNNNN`, `\UNNNNNNNN`.
fn escape(o: &mut String, c: char) {
    let _ = match c {
        '\x07' => write!(o, "\\a"),
        '\x08' => write!(o, "\\b"),
        '\x0c' => write!(o, "\\f"),
        '\n' => write!(o, "\\n"),
        '\r' => write!(o, "\\r"),
        '\t' => write!(o, "\\t"),
        '\x0b' => write!(o, "\\v"),
        _ if (c as u32) < 0x80 => write!(o, "\\x{:02x}", c as u32),
        _ if (c as u32) < 0x1_0000 => write!(o, "\\u{:04x}", c as u32),
        _ => write!(o, "\\U{:08x}", c as u32),
    };
}

/// An unquoted field from outside goroscope, safe to print: non-printable characters escaped,
/// cut after [`MAX_SHOWN`] bytes. Borrowed (no copy) when there is nothing to change.
pub fn text(s: &str) -> Cow<'_, str> {
    escaped(s, false)
}

/// A line of a source file, as [`text`] but with its tabs (Go's indentation) kept.
pub fn source_line(s: &str) -> Cow<'_, str> {
    escaped(s, true)
}

fn escaped(s: &str, tabs: bool) -> Cow<'_, str> {
    if clean(s, tabs) {
        return Cow::Borrowed(s);
    }
    let (h, cut) = head(s);
    let mut o = String::with_capacity(h.len() + 16);
    for c in h.chars() {
        if printable(c) || (tabs && c == '\t') {
            o.push(c)
        } else {
            escape(&mut o, c)
        }
    }
    cut_marker(&mut o, cut);
    Cow::Owned(o)
}

/// Writes [`text`] of `s`.
pub fn write_text<W: Write + ?Sized>(out: &mut W, s: &str) -> io::Result<()> {
    out.write_all(text(s).as_bytes())
}

/// The runtime's `printquoted`: only printable ASCII passes unescaped; cut after
/// [`MAX_SHOWN`] bytes, the marker after the closing quote.
pub fn quoted(s: &str) -> String {
    let (h, cut) = head(s);
    let mut o = String::from("\"");
    for r in h.chars() {
        match r {
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\\' | '"' => {
                o.push('\\');
                o.push(r);
            }
            ' '..='~' => o.push(r),
            _ if (r as u32) < 127 => {
                let _ = write!(o, "\\x{:02x}", r as u32);
            }
            _ if (r as u32) < 0x1_0000 => {
                let _ = write!(o, "\\u{:04x}", r as u32);
            }
            _ => {
                let _ = write!(o, "\\U{:08x}", r as u32);
            }
        }
    }
    o.push('"');
    cut_marker(&mut o, cut);
    o
}

/// The runtime's `tracebackStringNeedsQuoting`, then [`quoted`].
pub fn maybe_quoted(s: &str) -> Cow<'_, str> {
    let plain = s.len() <= MAX_SHOWN
        && s.chars()
            .all(|r| r.is_ascii_alphanumeric() || matches!(r, '.' | '/' | '_'));
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(quoted(s))
    }
}

/// Go's `%q` of a string (`strconv.Quote`): printable characters pass, `"` and `\` are
/// escaped, every other one as Go escapes it; cut after [`MAX_SHOWN`] bytes, the marker after
/// the closing quote.
pub fn go_quote(s: &str) -> String {
    let (h, cut) = head(s);
    let mut o = String::with_capacity(h.len() + 2);
    o.push('"');
    for c in h.chars() {
        match c {
            '"' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            _ if printable(c) => o.push(c),
            _ => escape(&mut o, c),
        }
    }
    o.push('"');
    cut_marker(&mut o, cut);
    o
}

/// serde_json's formatter, but every non-printable character of a string as `\uXXXX`.
struct SafeJson;

impl serde_json::ser::Formatter for SafeJson {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has escaped `"`, `\` and C0 controls already: fragments have none.
        if fragment.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if !printable(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                for unit in c.encode_utf16(&mut [0u16; 2]) {
                    write!(w, "\\u{unit:04x}")?;
                }
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// Writes `value` as JSON on `out` (no newline), non-printable characters escaped.
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, SafeJson);
    value.serialize(&mut ser).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_is_go_is_print() {
        for c in ['a', ' ', '~', 'é', '世', '\u{301}', '\u{fffd}', '😀'] {
            assert!(printable(c), "{c:?}");
        }
        for c in [
            '\0',
            '\x1b',
            '\x7f',
            '\u{85}',
            '\u{a0}',
            '\u{200b}',
            '\u{202e}',
            '\u{2028}',
            '\u{feff}',
            '\u{e0001}',
        ] {
            assert!(!printable(c), "{c:?}");
        }
    }

    #[test]
    fn text_escapes_and_cuts() {
        assert!(matches!(text("main.main"), Cow::Borrowed(_)));
        assert!(matches!(text("/home/josé/x.go"), Cow::Borrowed(_)));
        assert_eq!(
            text("a\x1b]0;x\x07b\r\n\t\0"),
            "a\\x1b]0;x\\ab\\r\\n\\t\\x00"
        );
        assert_eq!(text("\u{202e}gnp.exe"), "\\u202egnp.exe");
        assert!(matches!(source_line("\tx := 1"), Cow::Borrowed(_)));
        assert_eq!(source_line("\tx\x1b[2J\r"), "\tx\\x1b[2J\\r");
        assert_eq!(text("\u{9b}2J"), "\\u009b2J");
        let long = "é".repeat(MAX_SHOWN);
        let t = text(&long);
        assert!(
            t.ends_with(&format!("...(+{} bytes)", MAX_SHOWN)),
            "{}",
            &t[t.len() - 30..]
        );
        assert!(t.len() < MAX_SHOWN + 20);
    }

    #[test]
    fn json_escapes_what_json_allows_raw() {
        let mut out = Vec::new();
        write_json(&mut out, &["a\x1b\x7f\u{9b}\u{202e}é\u{e0001}\"\n"]).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"["a\u001b\u007f\u009b\u202eé\udb40\udc01\"\n"]"#
        );
        let back: Vec<String> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back[0], "a\x1b\x7f\u{9b}\u{202e}é\u{e0001}\"\n");
    }

    #[test]
    fn quoting() {
        assert_eq!(quoted("a\"\\\x1bé"), "\"a\\\"\\\\\\x1b\\u00e9\"");
        assert_eq!(maybe_quoted("req/path_1.x"), "req/path_1.x");
        assert_eq!(maybe_quoted("a b"), "\"a b\"");
        assert_eq!(
            go_quote("a\"\x1b\x07\u{fffd}é\u{202e}\0"),
            "\"a\\\"\\x1b\\a\u{fffd}é\\u202e\\x00\""
        );
        let q = quoted(&"x".repeat(MAX_SHOWN + 3));
        assert!(q.ends_with("x\"...(+3 bytes)"));
    }
}
