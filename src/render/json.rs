//! JSON: the snapshot model as it is (`docs/json-schema.md` describes every field). Stable:
//! fields are only ever added, and the snapshot file's `version` says which schema it is.

use crate::snapshot::Snapshot;
use crate::snapshot::store::{FORMAT, VERSION};
use std::io::{self, Write};

/// Writes `{"format": ..., "version": ..., "snapshot": {...}}` on one line.
pub fn render(snap: &Snapshot, out: &mut dyn Write) -> io::Result<()> {
    let v = serde_json::json!({ "format": FORMAT, "version": VERSION, "snapshot": snap });
    serde_json::to_writer(&mut *out, &v)?;
    writeln!(out)
}
