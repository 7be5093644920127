//! The snapshot file: gzip-compressed JSON with a format name and a schema version.
//!
//! ```text
//! gzip( {"format": "goroscope-snapshot", "version": 1, "snapshot": { meta, goroutines, threads }} )
//! ```
//!
//! Readers accept every schema version written so far (`testdata/snapshots/v*.json.gz` keep one
//! sample each) and Go's own text dumps (SIGQUIT output, `runtime.Stack`, pprof `debug=2`),
//! which [`super::text`] turns into the same model.

use super::Snapshot;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{Read, Write};

/// The format name in every snapshot file.
pub const FORMAT: &str = "goroscope-snapshot";
/// The schema version this build writes.
pub const VERSION: u32 = 1;
/// Largest decompressed snapshot accepted (a corrupt or hostile file must not exhaust memory).
pub const MAX_SNAPSHOT_BYTES: u64 = 8 << 30;

/// Why a snapshot file could not be read or written.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read or written.
    Io(std::io::Error),
    /// Not a snapshot and not a Go traceback.
    NotASnapshot,
    /// A snapshot of a schema version this build does not know.
    UnknownVersion(u32),
    /// The JSON does not match the schema.
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "{e}"),
            StoreError::NotASnapshot => write!(
                f,
                "not a goroscope snapshot nor a Go goroutine dump (runtime.Stack, SIGQUIT or pprof debug=2 text)"
            ),
            StoreError::UnknownVersion(v) => {
                write!(f, "snapshot schema version {v} is newer than this goroscope reads ({VERSION}); upgrade goroscope")
            }
            StoreError::Corrupt(e) => write!(f, "corrupt snapshot: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format: &'static str,
    version: u32,
    snapshot: &'a Snapshot,
}

/// The envelope's head, read first (the snapshot is skipped, never held as a JSON tree).
#[derive(Deserialize)]
struct EnvelopeHead {
    format: String,
    version: u32,
}

/// The envelope of a schema version 1 file.
#[derive(Deserialize)]
struct EnvelopeV1 {
    snapshot: Snapshot,
}

/// Writes a snapshot file.
pub fn write(snap: &Snapshot, out: impl Write) -> Result<(), StoreError> {
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    // serde_json writes a few bytes at a time; the compressor is much faster fed in blocks.
    let mut buf = std::io::BufWriter::with_capacity(1 << 16, &mut gz);
    serde_json::to_writer(&mut buf, &EnvelopeOut { format: FORMAT, version: VERSION, snapshot: snap })
        .map_err(|e| StoreError::Io(e.into()))?;
    buf.flush()?;
    drop(buf);
    gz.finish()?;
    Ok(())
}

/// Reads a snapshot file, or a Go text dump.
pub fn read(bytes: &[u8]) -> Result<Snapshot, StoreError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes).take(MAX_SNAPSHOT_BYTES).read_to_end(&mut json)?;
        return from_json(&json);
    }
    if bytes.first() == Some(&b'{') {
        return from_json(bytes);
    }
    let text = String::from_utf8_lossy(bytes);
    super::text::parse(&text).ok_or(StoreError::NotASnapshot)
}

fn from_json(json: &[u8]) -> Result<Snapshot, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let head: EnvelopeHead = serde_json::from_slice(json).map_err(corrupt)?;
    if head.format != FORMAT {
        return Err(StoreError::NotASnapshot);
    }
    match head.version {
        // Version 1 is the current schema; later versions add migrations here.
        1 => serde_json::from_slice::<EnvelopeV1>(json).map(|e| e.snapshot).map_err(corrupt),
        v => Err(StoreError::UnknownVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Frame, Goroutine};

    fn sample() -> Snapshot {
        let mut s = Snapshot::default();
        s.meta.go_version = "go1.27.3".into();
        s.goroutines.push(Goroutine {
            id: 7,
            state: "chan receive".into(),
            frames: vec![Frame { function: "main.f".into(), file: "/x.go".into(), line: 3, ..Default::default() }],
            ..Default::default()
        });
        s
    }

    #[test]
    fn round_trips() {
        let mut buf = Vec::new();
        write(&sample(), &mut buf).unwrap();
        assert_eq!(read(&buf).unwrap(), sample());
    }

    #[test]
    fn rejects_newer_versions_and_garbage() {
        let json = br#"{"format":"goroscope-snapshot","version":99,"snapshot":{}}"#;
        assert!(matches!(read(json), Err(StoreError::UnknownVersion(99))));
        assert!(matches!(read(b"\x1f\x8b garbage"), Err(StoreError::Io(_))));
        assert!(matches!(read(b"hello"), Err(StoreError::NotASnapshot)));
        assert!(matches!(read(br#"{"format":"x","version":1,"snapshot":{}}"#), Err(StoreError::NotASnapshot)));
    }

    #[test]
    fn reads_every_committed_schema_version() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snapshots");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".json.gz") {
                let s = read(&std::fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(!s.goroutines.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 1, "no sample snapshots in {}", dir.display());
    }
}
