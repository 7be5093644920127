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
//! - [`label`]: a pprof label's key or value as [`text`]. Labels are the target's bytes
//!   ([`LabelStr`]): a byte that is not UTF-8 is escaped as `\xNN`, and the marker of a label
//!   read only in part counts the bytes of the whole label.
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

use crate::snapshot::LabelStr;
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Longest field, in bytes, a human format prints of one string from outside goroscope; the
/// rest is cut with a `...(+N bytes)` marker. PATH_MAX, so that no real path is cut.
pub(crate) const MAX_SHOWN: usize = 4096;

/// Whether `c` prints as itself: Go's `strconv.IsPrint`.
pub(crate) fn printable(c: char) -> bool {
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
    s.len() <= MAX_SHOWN && (printable_ascii(s.as_bytes(), tabs) || s.chars().all(ok))
}

/// Whether every byte is printable ASCII (or, with `tabs`, a tab). A dump asks this of
/// millions of names: without tabs, eight bytes are checked at a time.
fn printable_ascii(b: &[u8], tabs: bool) -> bool {
    let ok = |b: &u8| (0x20..0x7f).contains(b) || (tabs && *b == b'\t');
    if tabs {
        return b.iter().all(ok);
    }
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let words = b.chunks_exact(8);
    let rest = words.remainder();
    // A byte below 0x20 borrows in `w - 0x20` (and no byte borrows unless one is below);
    // one of 0x7f or above sets its high bit in `w + 1` or in `w` (and none carries over
    // unless one is 0xff). Either way a high bit is set.
    let bad = words.fold(0u64, |bad, w| {
        let w = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
        bad | (w.wrapping_sub(ONES * 0x20) & !w) | w.wrapping_add(ONES) | w
    });
    bad & HIGH == 0 && rest.iter().all(ok)
}

/// Bytes from outside goroscope on their way out: not always UTF-8, and perhaps only the
/// first bytes of a longer string (a label read in part).
#[derive(Debug, Clone, Copy)]
pub struct Outside<'a> {
    bytes: &'a [u8],
    /// The whole length (at least `bytes.len()`).
    len: u64,
}

impl<'a> From<&'a str> for Outside<'a> {
    fn from(s: &'a str) -> Outside<'a> {
        Outside {
            bytes: s.as_bytes(),
            len: s.len() as u64,
        }
    }
}

impl<'a> From<&'a [u8]> for Outside<'a> {
    fn from(bytes: &'a [u8]) -> Outside<'a> {
        Outside {
            bytes,
            len: bytes.len() as u64,
        }
    }
}

impl<'a> From<&'a LabelStr> for Outside<'a> {
    fn from(l: &'a LabelStr) -> Outside<'a> {
        Outside {
            bytes: l.bytes(),
            len: l.len(),
        }
    }
}

impl<'a> Outside<'a> {
    /// The text, when the bytes are whole and valid UTF-8.
    fn as_str(self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes)
            .ok()
            .filter(|_| self.len == self.bytes.len() as u64)
    }
}

/// One unit of text as Go's `for range` over a string yields it: a character, or a byte that
/// is not part of valid UTF-8 (`utf8.RuneError` of width 1).
#[derive(Debug, Clone, Copy)]
enum Piece {
    Char(char),
    Byte(u8),
}

/// Calls `f` on each piece of the first [`MAX_SHOWN`] bytes of `o` (none cut in two) and
/// returns how many bytes of the whole are left out.
fn each_shown(o: Outside<'_>, mut f: impl FnMut(Piece)) -> u64 {
    let mut at = 0usize;
    for chunk in o.bytes.utf8_chunks() {
        let pieces = chunk
            .valid()
            .chars()
            .map(Piece::Char)
            .chain(chunk.invalid().iter().map(|&b| Piece::Byte(b)));
        for p in pieces {
            let width = match p {
                Piece::Char(c) => c.len_utf8(),
                Piece::Byte(_) => 1,
            };
            if at + width > MAX_SHOWN {
                return o.len - at as u64;
            }
            at += width;
            f(p);
        }
    }
    o.len - at as u64
}

fn cut_marker(o: &mut String, cut: u64) {
    if cut > 0 {
        let _ = write!(o, "...(+{cut} bytes)");
    }
}

/// Go's escape of a non-printable character: `\a \b \f \n \r \t \v`, `\xNN` below 0x80,
/// `\uNNNN`, `\UNNNNNNNN`; of a byte that is not UTF-8, `\xNN` (`strconv.Quote`).
fn escape(o: &mut String, p: Piece) {
    let c = match p {
        Piece::Char(c) => c,
        Piece::Byte(b) => {
            let _ = write!(o, "\\x{b:02x}");
            return;
        }
    };
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
    escaped_str(s, false)
}

/// A pprof label's key or value as [`text`]: bytes that are not UTF-8 as `\xNN`, and the cut
/// marker counting the bytes of the whole label left out.
pub fn label(l: &LabelStr) -> Cow<'_, str> {
    escaped(l.into(), false)
}

/// A line of a source file, as [`text`] but with its tabs (Go's indentation) kept.
pub(crate) fn source_line(s: &str) -> Cow<'_, str> {
    escaped_str(s, true)
}

/// [`escaped`] of a string, not decoded again when it prints as it is.
fn escaped_str(s: &str, tabs: bool) -> Cow<'_, str> {
    if clean(s, tabs) {
        return Cow::Borrowed(s);
    }
    escaped(s.into(), tabs)
}

fn escaped(o: Outside<'_>, tabs: bool) -> Cow<'_, str> {
    if let Some(s) = o.as_str()
        && clean(s, tabs)
    {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(o.bytes.len().min(MAX_SHOWN) + 16);
    let cut = each_shown(o, |p| match p {
        Piece::Char(c) if printable(c) || (tabs && c == '\t') => out.push(c),
        _ => escape(&mut out, p),
    });
    cut_marker(&mut out, cut);
    Cow::Owned(out)
}

/// Writes [`text`] of `s`.
pub(crate) fn write_text<W: Write + ?Sized>(out: &mut W, s: &str) -> io::Result<()> {
    out.write_all(text(s).as_bytes())
}

/// How the runtime's `printquoted` prints a byte that is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadByte {
    /// `\ufffd`, the `utf8.RuneError` `for range` yields (Go 1.26).
    RuneError,
    /// `\xNN`, the byte itself (Go 1.27).
    Hex,
}

/// The runtime's `printquoted`: only printable ASCII passes unescaped, a byte that is not
/// UTF-8 as `bad` says; cut after [`MAX_SHOWN`] bytes, the marker after the closing quote.
pub fn quoted<'a>(s: impl Into<Outside<'a>>, bad: BadByte) -> String {
    let mut o = String::from("\"");
    let cut = each_shown(s.into(), |p| {
        let r = match p {
            Piece::Char(r) => r,
            Piece::Byte(b) if bad == BadByte::Hex => {
                let _ = write!(o, "\\x{b:02x}");
                return;
            }
            Piece::Byte(_) => char::REPLACEMENT_CHARACTER,
        };
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
    });
    o.push('"');
    cut_marker(&mut o, cut);
    o
}

/// The runtime's `tracebackStringNeedsQuoting`, then [`quoted`] (Go 1.27: bytes that are not
/// UTF-8 as `\xNN`).
pub(crate) fn maybe_quoted<'a>(s: impl Into<Outside<'a>>) -> Cow<'a, str> {
    let s = s.into();
    match s.as_str() {
        Some(plain)
            if plain.len() <= MAX_SHOWN
                && plain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'_')) =>
        {
            Cow::Borrowed(plain)
        }
        _ => Cow::Owned(quoted(s, BadByte::Hex)),
    }
}

/// Go's `%q` of a string (`strconv.Quote`): printable characters pass, `"` and `\` are
/// escaped, every other one as Go escapes it (a byte that is not UTF-8 as `\xNN`); cut after
/// [`MAX_SHOWN`] bytes, the marker after the closing quote.
pub(crate) fn go_quote<'a>(s: impl Into<Outside<'a>>) -> String {
    let s = s.into();
    let mut o = String::with_capacity(s.bytes.len().min(MAX_SHOWN) + 2);
    o.push('"');
    let cut = each_shown(s, |p| match p {
        Piece::Char(c @ ('"' | '\\')) => {
            o.push('\\');
            o.push(c);
        }
        Piece::Char(c) if printable(c) => o.push(c),
        _ => escape(&mut o, p),
    });
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
        // serde_json has escaped `"`, `\` and C0 controls already: fragments have none, so
        // ASCII without DEL is printable (checked eight bytes at a time, in one pass).
        if printable_ascii(fragment.as_bytes(), false) {
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
pub(crate) fn write_json<W: Write + ?Sized, T: serde::Serialize + ?Sized>(
    out: &mut W,
    value: &T,
) -> io::Result<()> {
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
    fn printable_ascii_is_each_byte_printable() {
        // Every byte value at every place of a string of two words and a rest, among
        // printable neighbours of both ends of the range.
        for b in 0..=255u8 {
            for at in 0..19 {
                for fill in [b' ', b'~', b'a'] {
                    let mut s = vec![fill; 19];
                    s[at] = b;
                    let want = (0x20..0x7f).contains(&b);
                    assert_eq!(printable_ascii(&s, false), want, "{b:#x} at {at}");
                    assert_eq!(
                        printable_ascii(&s, true),
                        want || b == b'\t',
                        "{b:#x} at {at}"
                    );
                }
            }
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
        assert_eq!(
            quoted("a\"\\\x1bé", BadByte::Hex),
            "\"a\\\"\\\\\\x1b\\u00e9\""
        );
        assert_eq!(maybe_quoted("req/path_1.x"), "req/path_1.x");
        assert_eq!(maybe_quoted("a b"), "\"a b\"");
        assert_eq!(
            go_quote("a\"\x1b\x07\u{fffd}é\u{202e}\0"),
            "\"a\\\"\\x1b\\a\u{fffd}é\\u202e\\x00\""
        );
        let q = quoted("x".repeat(MAX_SHOWN + 3).as_str(), BadByte::Hex);
        assert!(q.ends_with("x\"...(+3 bytes)"));
    }

    /// Bytes that are not UTF-8, one escape per byte as Go's `for range` yields them, next to
    /// a valid U+FFFD; and a label read in part, whose marker counts the bytes never read.
    #[test]
    fn labels_as_bytes() {
        let l = LabelStr::new(b"\xff\xe2\x82a\xef\xbf\xbd\x1b".to_vec(), 0);
        assert_eq!(label(&l), "\\xff\\xe2\\x82a\u{fffd}\\x1b");
        assert_eq!(go_quote(&l), "\"\\xff\\xe2\\x82a\u{fffd}\\x1b\"");
        assert_eq!(quoted(&l, BadByte::Hex), "\"\\xff\\xe2\\x82a\\ufffd\\x1b\"");
        assert_eq!(
            quoted(&l, BadByte::RuneError),
            "\"\\ufffd\\ufffd\\ufffda\\ufffd\\x1b\""
        );
        assert_eq!(maybe_quoted(&l), quoted(&l, BadByte::Hex));
        assert_eq!(maybe_quoted(&LabelStr::from("a.b/c_1")), "a.b/c_1");
        let part = LabelStr::new(vec![b'x'; MAX_SHOWN + 10], 1 << 20);
        let want = format!("...(+{} bytes)", (1 << 20) - MAX_SHOWN);
        assert!(label(&part).ends_with(&want));
        assert!(go_quote(&part).ends_with(&format!("\"{want}")));
        assert!(maybe_quoted(&part).ends_with(&format!("\"{want}")));
        // Whole and valid: borrowed, as any text.
        assert!(matches!(label(&LabelStr::from("tenant")), Cow::Borrowed(_)));
    }
}
