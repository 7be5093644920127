//! JSON: the snapshot model as it is (`docs/json-schema.md` describes every field). Stable:
//! fields are only ever added, and the snapshot file's `version` says which schema it is.

use super::safe::write_json as json;
use crate::snapshot::store::{FORMAT, VERSION};
use crate::snapshot::{Goroutine, Snapshot};
use std::io::{self, Write};

/// Goroutines serialized together on one CPU.
const CHUNK: usize = 256;
/// Most threads serializing chunks at once.
const MAX_WRITERS: usize = 8;

/// Writes `{"format": ..., "version": ..., "snapshot": {...}}` on one line, the snapshot
/// with only the goroutines `gs`: the fields of a serialized [`Snapshot`] in its order, the
/// goroutines serialized in chunks on every CPU and written in order.
pub fn render(snap: &Snapshot, gs: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"{\"format\":")?;
    json(out, FORMAT)?;
    write!(out, ",\"version\":{VERSION},\"snapshot\":{{\"meta\":")?;
    json(out, &snap.meta)?;
    out.write_all(b",\"goroutines\":[")?;
    let mut first = true;
    crate::parts::in_rounds(
        gs,
        CHUNK,
        MAX_WRITERS,
        |chunk| {
            let mut buf = Vec::with_capacity(chunk.len() * 4096);
            crate::snapshot::escaping(super::safe::json_string, || {
                for (i, g) in chunk.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    json(&mut buf, g)?;
                }
                Ok::<_, io::Error>(())
            })?;
            Ok::<_, io::Error>(buf)
        },
        |_, buf| {
            if !std::mem::take(&mut first) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{FileLocks, Meta, SyncObject, Thread};
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
        snap.goroutines = (0..CHUNK as u64 * 5 + 3)
            .map(|id| Goroutine { id, ..g.clone() })
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
