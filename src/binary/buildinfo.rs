//! Reader for the `.go.buildinfo` section: Go version string and module/build information.
//!
//! Format (Go 1.18+, see `debug/buildinfo`): a 32-byte header starting with the 14-byte magic
//! `"\xff Go buildinf:"`, pointer size at +14 and flags at +15. Flag bit 2 (`flagsVersionInl`)
//! means the version string and the modinfo string follow the header inline, each as a
//! uvarint length followed by that many bytes. The modinfo string is framed by 16-byte
//! sentinels at both ends and contains tab-separated lines such as `path\t…`, `mod\t…`,
//! `dep\t…` and `build\tKEY=VALUE`.

use std::fmt;

/// The 14-byte magic at the start of the build info blob.
pub(crate) const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

const HEADER_SIZE: usize = 32;
const ALIGN: usize = 16;
const FLAGS_VERSION_INL: u8 = 0x2;

/// Errors from [`BuildInfo::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildInfoError {
    /// No `"\xff Go buildinf:"` magic at a 16-byte aligned offset.
    BadMagic,
    /// The data ends inside the header or a string.
    Truncated,
    /// A format this reader does not handle; the string names it.
    UnsupportedFormat(&'static str),
    /// A string length is not a valid uvarint.
    BadVarint,
    /// The version string is empty.
    EmptyVersion,
    /// The version or modinfo string is not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for BuildInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildInfoError::BadMagic => f.write_str("no go build info magic"),
            BuildInfoError::Truncated => f.write_str("go build info is truncated"),
            BuildInfoError::UnsupportedFormat(what) => {
                write!(f, "unsupported go build info format: {what}")
            }
            BuildInfoError::BadVarint => f.write_str("bad string length in go build info"),
            BuildInfoError::EmptyVersion => f.write_str("empty go version in build info"),
            BuildInfoError::InvalidUtf8 => f.write_str("go build info string is not valid utf-8"),
        }
    }
}

impl std::error::Error for BuildInfoError {}

/// Parsed `.go.buildinfo` contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInfo {
    /// Toolchain version, e.g. `go1.27.3` or `go1.26.10-X:goroutineleakprofile`.
    pub go_version: String,
    /// Main package path (`path` line), e.g. `example.com/cmd/x` or `command-line-arguments`.
    pub path: String,
    /// Main module `(path, version)` from the `mod` line, if any.
    pub main_module: Option<(String, String)>,
    /// `build` settings as `(key, value)`, values unquoted, in order.
    pub settings: Vec<(String, String)>,
    /// The module info text with its sentinels stripped (empty if absent or malformed).
    pub mod_info: String,
}

/// Reads a uvarint (at most 10 bytes).
fn uvarint(b: &[u8]) -> Result<(u64, usize), BuildInfoError> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            return Err(BuildInfoError::BadVarint);
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if b.len() < 10 {
        Err(BuildInfoError::Truncated)
    } else {
        Err(BuildInfoError::BadVarint)
    }
}

/// Reads uvarint-length-prefixed bytes at `pos`, returning them and the position after them.
fn read_bytes(b: &[u8], pos: usize) -> Result<(&[u8], usize), BuildInfoError> {
    let rest = b.get(pos..).ok_or(BuildInfoError::Truncated)?;
    let (len, n) = uvarint(rest)?;
    let start = pos + n;
    let len = usize::try_from(len).map_err(|_| BuildInfoError::Truncated)?;
    let end = start.checked_add(len).ok_or(BuildInfoError::Truncated)?;
    let s = b.get(start..end).ok_or(BuildInfoError::Truncated)?;
    Ok((s, end))
}

/// Unquotes a Go double-quoted or back-quoted string (the subset `strconv.Quote` produces).
fn unquote(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 {
        return None;
    }
    let (q, last) = (bytes[0], bytes[bytes.len() - 1]);
    if q != last {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    if q == b'`' {
        return if inner.contains('`') {
            None
        } else {
            Some(inner.replace('\r', ""))
        };
    }
    if q != b'"' {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let b = inner.as_bytes();
    let mut i = 0;
    let hex = |s: &[u8]| -> Option<u32> {
        let t = std::str::from_utf8(s).ok()?;
        u32::from_str_radix(t, 16).ok()
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\n' {
            return None;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1)?;
        i += 2;
        let simple = match e {
            b'a' => Some(7u8),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            continue;
        }
        match e {
            b'x' => {
                let v = hex(b.get(i..i + 2)?)?;
                out.push(v as u8);
                i += 2;
            }
            b'0'..=b'7' => {
                let d = b.get(i - 1..i + 2)?;
                let mut v = 0u32;
                for &x in d {
                    if !(b'0'..=b'7').contains(&x) {
                        return None;
                    }
                    v = v * 8 + u32::from(x - b'0');
                }
                out.push(u8::try_from(v).ok()?);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if e == b'u' { 4 } else { 8 };
                let v = hex(b.get(i..i + n)?)?;
                let ch = char::from_u32(v)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

fn parse_setting(kv: &str) -> Option<(String, String)> {
    let (key, raw_value) = match kv.as_bytes().first()? {
        b'"' | b'`' => {
            // Quoted key: find the end of the quoted prefix.
            let q = kv.as_bytes()[0];
            let mut i = 1;
            let b = kv.as_bytes();
            while i < b.len() {
                if b[i] == b'\\' && q == b'"' {
                    i += 2;
                    continue;
                }
                if b[i] == q {
                    break;
                }
                i += 1;
            }
            let end = i.checked_add(1)?;
            let raw_key = kv.get(..end)?;
            let rest = kv.get(end..)?;
            let value = rest.strip_prefix('=')?;
            (unquote(raw_key)?, value)
        }
        _ => {
            let (k, v) = kv.split_once('=')?;
            (k.to_string(), v)
        }
    };
    let value = match raw_value.as_bytes().first() {
        Some(b'"' | b'`') => unquote(raw_value).unwrap_or_else(|| raw_value.to_string()),
        _ => raw_value.to_string(),
    };
    Some((key, value))
}

impl BuildInfo {
    /// Parses the contents of the `.go.buildinfo` section (the blob may also start at any
    /// 16-byte aligned offset within `section`). Only the inline-string format of Go 1.18+
    /// is supported.
    pub fn parse(section: &[u8]) -> Result<BuildInfo, BuildInfoError> {
        let start = (0..section.len())
            .step_by(ALIGN)
            .find(|&o| section[o..].starts_with(BUILDINFO_MAGIC))
            .ok_or(if section.len() < BUILDINFO_MAGIC.len() {
                BuildInfoError::Truncated
            } else {
                BuildInfoError::BadMagic
            })?;
        let blob = &section[start..];
        if blob.len() < HEADER_SIZE {
            return Err(BuildInfoError::Truncated);
        }
        let flags = blob[15];
        if flags & FLAGS_VERSION_INL == 0 {
            return Err(BuildInfoError::UnsupportedFormat(
                "pointer-based version strings (go1.17 or older)",
            ));
        }
        let (vers, pos) = read_bytes(blob, HEADER_SIZE)?;
        let (mb, _) = read_bytes(blob, pos)?;
        let vers = std::str::from_utf8(vers).map_err(|_| BuildInfoError::InvalidUtf8)?;
        if vers.is_empty() {
            return Err(BuildInfoError::EmptyVersion);
        }
        let mod_info = if mb.len() >= 33 && mb[mb.len() - 17] == b'\n' {
            // The 16-byte sentinels are binary (not UTF-8): strip them before validating.
            std::str::from_utf8(&mb[16..mb.len() - 16])
                .map_err(|_| BuildInfoError::InvalidUtf8)?
                .to_string()
        } else {
            String::new()
        };
        let mut bi = BuildInfo {
            go_version: vers.to_string(),
            mod_info,
            ..Default::default()
        };
        for line in bi.mod_info.split('\n') {
            if let Some(p) = line.strip_prefix("path\t") {
                bi.path = p.to_string();
            } else if let Some(m) = line.strip_prefix("mod\t") {
                let mut it = m.split('\t');
                let path = it.next().unwrap_or("").to_string();
                let version = it.next().unwrap_or("").to_string();
                bi.main_module = Some((path, version));
            } else if let Some(kv) = line.strip_prefix("build\t")
                && let Some(s) = parse_setting(kv)
            {
                bi.settings.push(s);
            }
        }
        Ok(bi)
    }

    /// Value of the build setting `key` (e.g. `GOARCH`, `CGO_ENABLED`, `DefaultGODEBUG`).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &[u8; 16] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8; 16] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";

    fn blob(vers: &str, modinfo: &[u8]) -> Vec<u8> {
        let mut b = BUILDINFO_MAGIC.to_vec();
        b.push(8);
        b.push(FLAGS_VERSION_INL);
        b.resize(32, 0);
        b.push(vers.len() as u8);
        b.extend_from_slice(vers.as_bytes());
        let n = modinfo.len();
        b.push((n as u8) | 0x80);
        b.push((n >> 7) as u8);
        b.extend_from_slice(modinfo);
        b
    }

    fn framed(text: &str) -> Vec<u8> {
        let mut m = START.to_vec();
        m.extend_from_slice(text.as_bytes());
        m.extend_from_slice(END);
        m
    }

    #[test]
    fn parses() {
        let text = "path\texample.com/x\nmod\texample.com/x\t(devel)\t\ndep\tfoo\tv1\th1:x\n\
                    build\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\nbuild\tGOARCH=amd64\n\
                    build\tDefaultGODEBUG=asynctimerchan=1,panicnil=1\nbuild\t\"we ird\"=`v`\n";
        let bi =
            BuildInfo::parse(&blob("go1.26.10-X:goroutineleakprofile", &framed(text))).unwrap();
        assert_eq!(bi.go_version, "go1.26.10-X:goroutineleakprofile");
        assert_eq!(bi.path, "example.com/x");
        assert_eq!(
            bi.main_module,
            Some(("example.com/x".into(), "(devel)".into()))
        );
        assert_eq!(bi.setting("-ldflags"), Some("-s -w"));
        assert_eq!(bi.setting("CGO_ENABLED"), Some("0"));
        assert_eq!(
            bi.setting("DefaultGODEBUG"),
            Some("asynctimerchan=1,panicnil=1")
        );
        assert_eq!(bi.setting("we ird"), Some("v"));
        assert_eq!(bi.setting("nope"), None);
        assert_eq!(bi.mod_info, text);
        // At an aligned offset.
        let mut b = vec![0u8; 32];
        b.extend(blob("go1.21.13", &framed(text)));
        assert_eq!(BuildInfo::parse(&b).unwrap().go_version, "go1.21.13");
        // No module info.
        let bi = BuildInfo::parse(&blob("go1.22.1", b"")).unwrap();
        assert_eq!(bi.mod_info, "");
        assert!(bi.settings.is_empty());
    }

    #[test]
    fn unquotes() {
        assert_eq!(
            unquote(r#""a\tb\x41\101\u00e9\"""#).as_deref(),
            Some("a\tbAAé\"")
        );
        assert_eq!(unquote("`x`").as_deref(), Some("x"));
        assert_eq!(unquote("\"x"), None);
        assert_eq!(unquote("\"\\"), None);
        assert_eq!(unquote("\"\\x4\""), None);
        assert_eq!(unquote("\"\\777\""), None);
    }

    #[test]
    fn errors() {
        assert_eq!(BuildInfo::parse(b""), Err(BuildInfoError::Truncated));
        assert_eq!(BuildInfo::parse(&[0u8; 64]), Err(BuildInfoError::BadMagic));
        let good = blob("go1.27.3", &framed("path\tx\n"));
        for n in 0..good.len() {
            assert!(BuildInfo::parse(&good[..n]).is_err(), "len {n}");
        }
        let mut b = good.clone();
        b[15] = 0;
        assert!(matches!(
            BuildInfo::parse(&b),
            Err(BuildInfoError::UnsupportedFormat(_))
        ));
        let mut b = good.clone();
        b.truncate(32);
        b.extend_from_slice(&[0xff; 11]);
        assert_eq!(BuildInfo::parse(&b), Err(BuildInfoError::BadVarint));
        let mut b = good.clone();
        b.truncate(32);
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(BuildInfo::parse(&b), Err(BuildInfoError::Truncated));
        assert_eq!(
            BuildInfo::parse(&blob("", b"")),
            Err(BuildInfoError::EmptyVersion)
        );
        let mut b = blob("go1.2x", b"");
        let at = b.len() - 3;
        b[at] = 0xff;
        assert_eq!(BuildInfo::parse(&b), Err(BuildInfoError::InvalidUtf8));
    }
}
