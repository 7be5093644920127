//! JSON: the snapshot model as it is (`docs/json-schema.md` describes every field). Stable:
//! fields are only ever added, and the snapshot file's `version` says which schema it is.

use super::safe::write_json as json;
use crate::snapshot::store::{FORMAT, VERSION};
use crate::snapshot::{Frame, Goroutine, Snapshot, decimal};
use std::io::{self, Write};

/// Goroutines serialized together on one CPU.
const CHUNK: usize = 256;
/// Most threads serializing chunks at once.
const MAX_WRITERS: usize = 8;
/// Chunks serialized ahead of the one being written.
const AHEAD: usize = 8;

/// Writes `{"format": ..., "version": ..., "snapshot": {...}}` on one line, the snapshot
/// with only the goroutines `gs`: the fields of a serialized [`Snapshot`] in its order, the
/// goroutines serialized in chunks on every CPU and written in order.
pub fn render(snap: &Snapshot, gs: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"{\"format\":")?;
    json(out, FORMAT)?;
    write!(out, ",\"version\":{VERSION},\"snapshot\":{{\"meta\":")?;
    json(out, &snap.meta)?;
    out.write_all(b",\"goroutines\":[")?;
    let chunks: Vec<&[&Goroutine]> = gs.chunks(CHUNK).collect();
    crate::parts::in_order(
        &chunks,
        MAX_WRITERS,
        AHEAD,
        Names::default,
        |names, _, chunk| {
            // Room for what a chunk mostly takes (about 160 bytes a frame), so that it is
            // not copied as it grows (a fifth of a megabyte short, a 100,000-goroutine dump
            // copied each chunk's megabyte once more).
            let frames: usize = chunk.iter().map(|g| g.frames.len()).sum();
            let mut buf = Vec::with_capacity(chunk.len() * 1024 + frames * 256);
            for (i, g) in chunk.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                goroutine(&mut buf, g, names)?;
            }
            Ok::<_, io::Error>(buf)
        },
        |i, buf| {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(&buf?)?;
            Ok::<_, io::Error>(true)
        },
    )?;
    out.write_all(b"],\"threads\":")?;
    json(out, &snap.threads)?;
    out.write_all(b",\"objects\":")?;
    json(out, &snap.objects)?;
    if let Some(locks) = &snap.file_locks {
        out.write_all(b",\"file_locks\":")?;
        json(out, locks)?;
    }
    out.write_all(b"}}\n")
}

/// Writes `g` as [`json`] writes it (`Goroutine`'s and `Frame`'s serde), the names of its
/// fields and of its frames' fields as they are and their numbers here, everything else by
/// [`json`]: serde spent most of a JSON dump's time on the names of fields, eleven a frame and
/// three million frames at 100,000 goroutines. The test below holds it to serde's bytes.
fn goroutine(buf: &mut Vec<u8>, g: &Goroutine, names: &mut Names) -> io::Result<()> {
    buf.push(b'{');
    g.each_field(&mut Object {
        buf,
        names,
        first: true,
    })?;
    buf.push(b'}');
    Ok(())
}

/// A goroutine's fields written as a JSON object's ([`goroutine`]).
struct Object<'a> {
    buf: &'a mut Vec<u8>,
    names: &'a mut Names,
    first: bool,
}

impl Object<'_> {
    /// Writes the name of the next field.
    fn name(&mut self, name: &str) {
        if !std::mem::take(&mut self.first) {
            self.buf.push(b',');
        }
        self.buf.push(b'"');
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }
}

impl crate::snapshot::Fields for Object<'_> {
    type Error = io::Error;

    fn number(&mut self, name: &'static str, n: u64) -> io::Result<()> {
        self.name(name);
        decimal(self.buf, n);
        Ok(())
    }

    fn frames(&mut self, name: &'static str, frames: &[Frame]) -> io::Result<()> {
        self.name(name);
        self.buf.push(b'[');
        for (i, f) in frames.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            frame(self.buf, f, self.names)?;
        }
        self.buf.push(b']');
        Ok(())
    }

    fn value<T: serde::Serialize + ?Sized>(&mut self, name: &'static str, v: &T) -> io::Result<()> {
        self.name(name);
        json(self.buf, v)
    }
}

/// Most sites [`Names`] keeps the text of (a binary has far fewer places goroutines park).
const MAX_NAMES: usize = 1 << 16;

/// What each site's frames write alike, as [`json`] writes it: `"function":...,"file":...,
/// "line":...` before the args and `,"pc":...,"entry":...` after them, by the address of the
/// site the frames share ([`crate::snapshot::site_key`]). A chunk of a JSON dump writes the same
/// few hundred sites thousands of times: checking every byte of each name for what to escape
/// was a fifth of its time, and writing the three numbers in decimal a twentieth.
#[derive(Default)]
struct Names(crate::unwind::PcMap<SiteText>);

/// A site's text before and after a frame's args ([`Names`]).
struct SiteText {
    before: Vec<u8>,
    after: Vec<u8>,
}

impl SiteText {
    fn of(f: &Frame) -> io::Result<SiteText> {
        let mut before = Vec::new();
        field(&mut before, b"\"function\":", &f.function)?;
        field(&mut before, b",\"file\":", &f.file)?;
        number(&mut before, b",\"line\":", u64::from(f.line));
        let mut after = Vec::new();
        number(&mut after, b",\"pc\":", f.pc);
        number(&mut after, b",\"entry\":", f.entry);
        Ok(SiteText { before, after })
    }
}

/// Writes `f` as [`json`] writes it (a frame's serde), its site's text as `names` keeps it.
fn frame(buf: &mut Vec<u8>, f: &Frame, names: &mut Names) -> io::Result<()> {
    buf.push(b'{');
    let key = crate::snapshot::site_key(&f.site);
    let made;
    let site = match names.0.get(&key) {
        Some(t) => t,
        None if names.0.len() < MAX_NAMES => names.0.entry(key).or_insert(SiteText::of(f)?),
        None => {
            made = SiteText::of(f)?;
            &made
        }
    };
    buf.extend_from_slice(&site.before);
    field(buf, b",\"args\":", &f.args)?;
    buf.extend_from_slice(&site.after);
    number(buf, b",\"sp\":", f.sp());
    number(buf, b",\"fp\":", f.fp());
    buf.extend_from_slice(if f.inlined {
        b",\"inlined\":true"
    } else {
        b",\"inlined\":false"
    });
    if f.trap {
        buf.extend_from_slice(b",\"trap\":true");
    }
    buf.extend_from_slice(if f.hidden {
        b",\"hidden\":true"
    } else {
        b",\"hidden\":false"
    });
    if !f.defers().is_empty() {
        field(buf, b",\"defers\":", f.defers())?;
    }
    if !f.values().is_empty() {
        field(buf, b",\"values\":", f.values())?;
    }
    buf.push(b'}');
    Ok(())
}

/// Writes `key` (a field's name, as JSON has it between its neighbours) and `n` in decimal.
fn number(buf: &mut Vec<u8>, key: &[u8], n: u64) {
    buf.extend_from_slice(key);
    decimal(buf, n);
}

/// Writes `key` (as [`number`]) and `v` by [`json`].
fn field<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, key: &[u8], v: &T) -> io::Result<()> {
    buf.extend_from_slice(key);
    json(buf, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{FileLocks, LabelStr, Meta, SyncObject, Thread};
    use serde::Serialize;

    /// The document as serde writes it from one value: what [`render`] must write byte for
    /// byte.
    fn whole(snap: &Snapshot, gs: &[&Goroutine]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Part<'a> {
            meta: &'a Meta,
            goroutines: &'a [&'a Goroutine],
            threads: &'a [Thread],
            objects: &'a [SyncObject],
            #[serde(skip_serializing_if = "Option::is_none")]
            file_locks: Option<&'a FileLocks>,
        }
        #[derive(Serialize)]
        struct Doc<'a> {
            format: &'a str,
            version: u32,
            snapshot: Part<'a>,
        }
        let mut out = Vec::new();
        crate::render::safe::write_json(
            &mut out,
            &Doc {
                format: FORMAT,
                version: VERSION,
                snapshot: Part {
                    meta: &snap.meta,
                    goroutines: gs,
                    threads: &snap.threads,
                    objects: &snap.objects,
                    file_locks: snap.file_locks.as_ref(),
                },
            },
        )
        .unwrap();
        out.push(b'\n');
        out
    }

    #[test]
    fn chunks_write_the_document_serde_writes() {
        let mut snap = Snapshot::default();
        snap.meta.go_version = "go1.27.3".into();
        let g = Goroutine {
            state: "chan receive".into(),
            frames: vec![crate::snapshot::Frame::at("main.f\u{202e}", "/x.go", 3)],
            labels: vec![("k".into(), "v\u{1b}".into())],
            ..Default::default()
        };
        // Every field set, and frames with every field set.
        let mut top = Frame::at("main.top", "/src/top\u{7f}.go", 7).with_extras("\u{1b}[7", true);
        top.set_span(0xc000_0100, 0xc000_0180);
        (top.trap, top.hidden) = (true, true);
        top.args = "0x1, {0x2?}".into();
        let mut inlined = Frame::at("main.inl", "/src/top\u{7f}.go", 9);
        let site = std::sync::Arc::make_mut(&mut inlined.site);
        (site.inlined, site.pc, site.entry) = (true, 0x40_1010, 0x40_1000);
        inlined.args = "...".into();
        let (mut only_defers, mut only_values) = (top.clone(), top.clone());
        only_defers.set_values(Vec::new());
        only_values.set_defers(Vec::new());
        let rich = Goroutine {
            addr: u64::MAX,
            wait_minutes: -1,
            locked_to_thread: true,
            system: false,
            frames: vec![top, inlined, only_defers, only_values, g.frames[0].clone()],
            stack_error: Some("cut\u{85}".into()),
            start_func: "main.worker\u{2028}".into(),
            labels: vec![("u".into(), LabelStr::new(b"\xff ok".to_vec(), 40))],
            ..Goroutine::every_field_set()
        };
        // Each of its flags set in a different set of goroutines than the others'.
        let system = Goroutine {
            locked_to_thread: true,
            system: true,
            ..g.clone()
        };
        snap.goroutines = (0..CHUNK as u64 * 5 + 3)
            .map(|id| match id % 3 {
                0 => Goroutine { id, ..rich.clone() },
                1 => Goroutine {
                    id,
                    ..system.clone()
                },
                _ => Goroutine { id, ..g.clone() },
            })
            .collect();
        for n in [0, 1, CHUNK, snap.goroutines.len()] {
            let gs: Vec<&Goroutine> = snap.goroutines.iter().take(n).collect();
            for locks in [None, Some(FileLocks::default())] {
                snap.file_locks = locks;
                let mut out = Vec::new();
                render(&snap, &gs, &mut out).unwrap();
                assert!(out == whole(&snap, &gs), "{n} goroutines");
            }
        }
    }
}
