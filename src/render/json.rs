//! JSON: the snapshot model as it is (`docs/json-schema.md` describes every field). Stable:
//! fields are only ever added, and the snapshot file's `version` says which schema it is.

use crate::snapshot::store::{FORMAT, VERSION};
use crate::snapshot::{FileLocks, Goroutine, Meta, Snapshot, SyncObject, Thread};
use serde::Serialize;
use std::io::{self, Write};

/// A snapshot with some of its goroutines, serialized as a [`Snapshot`] is.
#[derive(Serialize)]
struct Part<'a> {
    meta: &'a Meta,
    goroutines: &'a [&'a Goroutine],
    threads: &'a [Thread],
    objects: &'a [SyncObject],
    #[serde(skip_serializing_if = "Option::is_none")]
    file_locks: Option<&'a FileLocks>,
}

/// Writes `{"format": ..., "version": ..., "snapshot": {...}}` on one line, the snapshot
/// with only the goroutines `gs`.
pub fn render(snap: &Snapshot, gs: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        format: &'a str,
        version: u32,
        snapshot: Part<'a>,
    }
    let snapshot = Part {
        meta: &snap.meta,
        goroutines: gs,
        threads: &snap.threads,
        objects: &snap.objects,
        file_locks: snap.file_locks.as_ref(),
    };
    super::safe::write_json(
        out,
        &Doc {
            format: FORMAT,
            version: VERSION,
            snapshot,
        },
    )?;
    writeln!(out)
}
