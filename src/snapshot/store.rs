//! The snapshot file: gzip-compressed JSON lines with a format name and a file version.
//!
//! ```text
//! gzip( {"format": "goroscope-snapshot", "version": 4, "goroutines": N, "snapshot": { meta, threads, objects, file_locks }}
//!       {"sites": [ site, ... ]}            the places the next run of goroutines' frames are at
//!       {"g": [ goroutine's fields ]}     one line per goroutine, N of them, in runs
//!       {"end": {"written": N, "left_out": 0}} )
//! ```
//!
//! The gzip stream may be several members one after the other (this build writes the head, each
//! run of goroutines with its site table, and the end line as members of their own, compressed
//! in parallel). A goroutine's frames are rows of the site table before it ([`super::sites`]).
//!
//! A file cut anywhere (a writer killed, a full disk, a truncated copy) still gives every
//! goroutine whose line is complete before the cut; the missing end line says it was cut.
//! Version 3 files are the same lines with each goroutine an object and each row's sp and fp
//! as addresses; version 2 files are those lines without site tables, each frame whole;
//! version 1 files are one document, `{"format", "version": 1, "snapshot": {...}}`.
//!
//! Readers accept every schema version written so far (`testdata/snapshots/v*.json.gz` keep one
//! sample each) and Go's own text dumps (SIGQUIT output, `runtime.Stack`, pprof `debug=2`),
//! which [`super::text`] turns into the same model.

use super::Snapshot;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

/// The format name in every snapshot file.
pub(crate) const FORMAT: &str = "goroscope-snapshot";
/// The schema version of the snapshot model (`--format json` and the file's snapshot).
pub(crate) const VERSION: u32 = 1;
/// The version of the file this build writes: 2 is the version 1 model written as lines
/// (head, goroutines one by one, end line), so that a cut file keeps what came before the cut;
/// 3 writes frames as rows of a site table before each run of goroutines; 4 writes a row's sp
/// and fp as differences and a goroutine as an array of its fields; 5 puts each run's args
/// texts in its table too (a row points at its text) and writes where a goroutine was created
/// as a site of the table.
pub(crate) const FILE_VERSION: u32 = 5;
/// Largest decompressed snapshot accepted (a corrupt or hostile file must not exhaust memory).
pub(crate) const MAX_SNAPSHOT_BYTES: u64 = 8 << 30;

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
                write!(
                    f,
                    "snapshot file version {v} is newer than this goroscope reads ({FILE_VERSION}); upgrade goroscope"
                )
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

/// The file's head line: the envelope and the snapshot without its goroutines.
#[derive(Serialize)]
struct HeadOut<'a> {
    format: &'static str,
    version: u32,
    goroutines: usize,
    snapshot: Part<'a>,
}

/// A snapshot without its goroutines, serialized as a [`Snapshot`] is.
#[derive(Serialize)]
struct Part<'a> {
    meta: &'a super::Meta,
    threads: &'a [super::Thread],
    objects: &'a [super::SyncObject],
    #[serde(skip_serializing_if = "Option::is_none")]
    file_locks: Option<&'a super::FileLocks>,
}

/// One line after the head: a goroutine, a site table, or the end of the file.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line<G> {
    /// One goroutine.
    G(G),
    /// The sites the next goroutines' frames are at (versions 3 and 4).
    Sites(Vec<super::sites::Row>),
    /// The sites the next goroutines' frames and `go` statements are at and their frames'
    /// args texts (from version 5).
    Table(super::sites::Tables),
    /// The last line: how many goroutines the file holds.
    End(End),
}

/// The last line of a file: it is complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Goroutines written.
    pub written: usize,
    /// Goroutines the snapshot had but that were not written (`--deadline`).
    #[serde(default)]
    pub left_out: usize,
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

/// The head line of a version 2, 3 or 4 file.
#[derive(Deserialize)]
struct HeadV2 {
    version: u32,
    goroutines: usize,
    snapshot: Snapshot,
}

/// Writes a snapshot file: every goroutine, then the end line.
pub fn write(snap: &Snapshot, out: impl Write) -> Result<(), StoreError> {
    write_until(snap, out, None).map(|_| ())
}

/// Goroutines compressed together, as one gzip member of the file.
const MEMBER: usize = 512;
/// Most threads compressing members at once.
const MAX_COMPRESSORS: usize = 8;
/// Members compressed ahead of the one being written.
const AHEAD: usize = 8;

/// Writes a snapshot file, goroutine by goroutine, stopping before the next goroutines once
/// `deadline` has passed; the end line counts those left out. Returns the end line.
///
/// The file is a series of gzip members (the head line; [`MEMBER`] goroutines each, compressed
/// on every CPU and written in order; the end line), which a gzip reader reads as one stream.
pub(crate) fn write_until(
    snap: &Snapshot,
    mut out: impl Write,
    deadline: Option<std::time::Instant>,
) -> Result<End, StoreError> {
    let part = Part {
        meta: &snap.meta,
        threads: &snap.threads,
        objects: &snap.objects,
        file_locks: snap.file_locks.as_ref(),
    };
    let head = HeadOut {
        format: FORMAT,
        version: FILE_VERSION,
        goroutines: snap.goroutines.len(),
        snapshot: part,
    };
    out.write_all(&member(&[&to_lines(std::iter::once(&head))?])?)?;
    let passed = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
    let mut written = 0;
    let chunks: Vec<&[super::Goroutine]> = snap.goroutines.chunks(MEMBER).collect();
    crate::parts::in_order(
        &chunks,
        MAX_COMPRESSORS,
        AHEAD,
        || (),
        |_, _, gs| {
            let mut sites = super::sites::Writing::default();
            let mut body = Vec::with_capacity(gs.len() * 1024);
            for g in *gs {
                goroutine_line(&mut body, g, &mut sites)?;
            }
            let table = to_lines(std::iter::once(Line::<()>::Table(sites.into_tables())))?;
            member(&[&table, &body])
        },
        |i, m| {
            if passed() {
                return Ok(false);
            }
            out.write_all(&m?)?;
            written += chunks[i].len();
            Ok::<_, StoreError>(true)
        },
    )?;
    let end = End {
        written,
        left_out: snap.goroutines.len() - written,
    };
    let end_line = to_lines(std::iter::once(&Line::<()>::End(end.clone())))?;
    out.write_all(&member(&[&end_line])?)?;
    out.flush()?;
    Ok(end)
}

/// `lines`, each as one line of JSON.
fn to_lines<T: Serialize>(lines: impl Iterator<Item = T>) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::with_capacity(1 << 16);
    for line in lines {
        serde_json::to_writer(&mut buf, &line).map_err(|e| StoreError::Io(e.into()))?;
        buf.push(b'\n');
    }
    Ok(buf)
}

/// Writes `{"g": [...]}`, a goroutine as a file's line holds it (from version 4): its fields in
/// their order, as an array (the names of a goroutine's fields were a fifth of the file before
/// compression), its frames as rows of `sites` ([`super::sites::Writing::frames`]); read back
/// as any struct is from an array. The same bytes as serde writes for `Line::G` of the fields
/// in a sequence (held to them by a test), without serde for the numbers and frames.
fn goroutine_line(
    buf: &mut Vec<u8>,
    g: &super::Goroutine,
    sites: &mut super::sites::Writing,
) -> Result<(), StoreError> {
    /// A goroutine's fields as the elements of an array.
    struct Elements<'a> {
        buf: &'a mut Vec<u8>,
        sites: &'a mut super::sites::Writing,
        first: bool,
    }
    impl Elements<'_> {
        fn next(&mut self) {
            if !std::mem::take(&mut self.first) {
                self.buf.push(b',');
            }
        }
    }
    impl super::Fields for Elements<'_> {
        type Error = std::io::Error;
        fn number(&mut self, _: &'static str, n: u64) -> std::io::Result<()> {
            self.next();
            super::sites::number(self.buf, n);
            Ok(())
        }
        fn frames(&mut self, _: &'static str, f: &[super::Frame]) -> std::io::Result<()> {
            self.next();
            self.sites.frames(self.buf, f)
        }
        fn text(&mut self, _: &'static str, s: &str) -> std::io::Result<()> {
            self.next();
            super::sites::string(self.buf, s);
            Ok(())
        }
        fn created_by(
            &mut self,
            _: &'static str,
            c: Option<&super::CreatedBy>,
        ) -> std::io::Result<()> {
            self.next();
            self.sites.created_by(self.buf, c)
        }
        fn value<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> std::io::Result<()> {
            self.next();
            serde_json::to_writer(&mut *self.buf, v).map_err(Into::into)
        }
    }
    buf.extend_from_slice(b"{\"g\":[");
    g.each_field(&mut Elements {
        buf: &mut *buf,
        sites,
        first: true,
    })?;
    buf.extend_from_slice(b"]}\n");
    Ok(())
}

/// One gzip member holding `parts`, one after the other.
fn member(parts: &[&[u8]]) -> Result<Vec<u8>, StoreError> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for p in parts {
        gz.write_all(p)?;
    }
    Ok(gz.finish()?)
}

/// Writes a snapshot file at `path` so that `path` only ever names a complete file: into a
/// temporary file beside it ([`temp_name`]), flushed to disk, then renamed over `path`, and
/// the directory flushed too. A writer killed on the way leaves at most the temporary file.
pub(crate) fn save(
    snap: &Snapshot,
    path: &Path,
    deadline: Option<std::time::Instant>,
) -> Result<End, StoreError> {
    let tmp = temp_name(path);
    use std::os::unix::fs::OpenOptionsExt;
    let res = (|| {
        // A leftover of a killed writer that had the same pid is replaced; a link is not followed.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        let end = write_until(snap, &mut w, deadline)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(end)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return res;
    }
    // The rename is durable once the directory is.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()?;
    res
}

/// The temporary file [`save`] writes before renaming it to `path`: `NAME.goroscope-tmp-PID`
/// in the same directory (so that the rename is atomic), PID being the writer's.
pub(crate) fn temp_name(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!("{TEMP_INFIX}{}", std::process::id()));
    path.with_file_name(name)
}

/// What [`temp_name`] puts between the file's name and the writer's pid.
pub const TEMP_INFIX: &str = ".goroscope-tmp-";

/// A file that ends before its end line: the goroutines before the cut were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Goroutines read.
    pub read: usize,
    /// Goroutines the snapshot had.
    pub total: usize,
}

/// What [`read`] found: the snapshot, and whether the file was cut or written only in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The snapshot (with the goroutines the file holds; none when they were streamed,
    /// [`Lines::each`]).
    pub snapshot: Snapshot,
    /// Goroutines read.
    pub read: usize,
    /// The file ends early (cut while written, or truncated since).
    pub cut: Option<Cut>,
    /// The file is complete but its writer left goroutines out (`--deadline`).
    pub left_out: usize,
}

impl Loaded {
    fn whole(snapshot: Snapshot) -> Loaded {
        Loaded {
            read: snapshot.goroutines.len(),
            snapshot,
            cut: None,
            left_out: 0,
        }
    }

    /// The one line to tell the reader about a file that does not hold every goroutine.
    pub fn notice(&self) -> Option<String> {
        if let Some(c) = &self.cut {
            return Some(format!(
                "file cut after {} of {} goroutines; showing those",
                c.read, c.total
            ));
        }
        (self.left_out > 0).then(|| {
            let n = self.read;
            format!(
                "written with a deadline: {n} of {} goroutines, {} left out",
                n + self.left_out,
                self.left_out
            )
        })
    }
}

/// A snapshot file opened ([`open`]): read whole, or a version 2, 3 or 4 file whose goroutines are
/// still to come.
pub enum Opened<'b> {
    /// Read whole (a version 1 file, a Go text dump).
    Whole(Loaded),
    /// Its head read.
    Lines(Lines<'b>),
}

/// A version 2, 3 or 4 file whose head line is read: the snapshot without its goroutines, which
/// [`Lines::each`] hands out as it reads them, never all at once.
pub struct Lines<'b> {
    head: HeadV2,
    next: NextLine<'b>,
}

/// Puts each line after a file's head into its buffer (without the newline) and says whether
/// a newline ended it; `None` after the last.
type NextLine<'b> = Box<dyn FnMut(&mut Vec<u8>) -> Option<bool> + 'b>;

impl Lines<'_> {
    /// The snapshot without its goroutines.
    pub fn snapshot(&self) -> &Snapshot {
        &self.head.snapshot
    }

    /// Goroutines the snapshot had (the file may hold fewer: cut, or written with a deadline).
    pub fn count(&self) -> usize {
        self.head.goroutines
    }

    /// Reads every goroutine line: the lines are parsed in chunks on every CPU, each goroutine
    /// handed to `fold` on the thread that parsed it, and each chunk to `sink` in the file's
    /// order. Without the end line the file was cut: every complete goroutine line before the
    /// cut is read. A line that does not parse is the cut when nothing follows it.
    ///
    /// The [`Loaded`] returned has no goroutines; it counts them and says whether the file was
    /// cut.
    pub fn each<C: Default + Send>(
        mut self,
        fold: &(dyn Fn(&mut C, super::Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<Loaded, StoreError> {
        let total = self.head.goroutines;
        let mut read = 0;
        let deltas = self.head.version >= 4;
        let end = parse_batches(&mut *self.next, deltas, fold, &mut |c, n| {
            read += n;
            sink(c);
            read
        })?;
        let snapshot = std::mem::take(&mut self.head.snapshot);
        match end {
            Some(end) if end.written != read || end.written + end.left_out != total => {
                Err(StoreError::Corrupt(format!(
                    "the end line counts {} goroutines, the file holds {read}",
                    end.written
                )))
            }
            Some(end) => Ok(Loaded {
                snapshot,
                read,
                cut: None,
                left_out: end.left_out,
            }),
            None => Ok(Loaded {
                snapshot,
                read,
                cut: Some(Cut { read, total }),
                left_out: 0,
            }),
        }
    }

    /// Reads every goroutine line into the snapshot.
    pub fn whole(self) -> Result<Loaded, StoreError> {
        let mut all = super::KeepAll::with_capacity(self.count().min(MAX_PREALLOCATED_GOROUTINES));
        let mut loaded = self.each(&super::KeepAll::fold, &mut |c| all.sink(c))?;
        loaded.snapshot.goroutines = all.into_vec();
        Ok(loaded)
    }
}

/// Reads a snapshot file, or a Go text dump. A gzip stream (of one member or several) cut
/// short is read as far as it goes.
pub fn read(bytes: &[u8]) -> Result<Loaded, StoreError> {
    super::reading_names(|| match open(bytes)? {
        Opened::Whole(l) => Ok(l),
        Opened::Lines(l) => l.whole(),
    })
}

/// Opens a snapshot file or a Go text dump: a version 2, 3 or 4 file (gzipped or not) is read up to
/// its head line, anything else whole.
pub fn open(bytes: &[u8]) -> Result<Opened<'_>, StoreError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::BufRead;
        let mut rd = std::io::BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(bytes).take(MAX_SNAPSHOT_BYTES),
        );
        let mut first = Vec::new();
        let res = rd.read_until(b'\n', &mut first);
        // A version 2, 3 or 4 file is read line by line as it is inflated, never whole.
        if res.is_ok()
            && let Ok(h) = serde_json::from_slice::<EnvelopeHead>(&first)
            && h.format == FORMAT
            && (2..=FILE_VERSION).contains(&h.version)
        {
            let mut failed = false;
            return lines(
                &first,
                Box::new(move |buf| {
                    buf.clear();
                    if failed {
                        return None;
                    }
                    match rd.read_until(b'\n', buf) {
                        Ok(0) => None,
                        Ok(_) if buf.last() == Some(&b'\n') => {
                            buf.pop();
                            Some(true)
                        }
                        Ok(_) => Some(false),
                        // The stream is cut or damaged here: what came out before is the last
                        // line.
                        Err(_) => {
                            failed = true;
                            (!buf.is_empty()).then_some(false)
                        }
                    }
                }),
            )
            .map(Opened::Lines);
        }
        let mut json = first;
        let res = res.and_then(|_| rd.read_to_end(&mut json));
        return match from_json(&json) {
            Ok(l) => Ok(Opened::Whole(l)),
            // Nothing readable came out: the decoder's error says more than the JSON's.
            Err(_) if res.is_err() && json.is_empty() => Err(res.unwrap_err().into()),
            Err(e) => Err(e),
        };
    }
    if bytes.first() == Some(&b'{') {
        return match json_lines(bytes)? {
            Some(l) => Ok(Opened::Lines(l)),
            None => from_json(bytes).map(Opened::Whole),
        };
    }
    let text = String::from_utf8_lossy(bytes);
    super::text::parse(&text)
        .map(|s| Opened::Whole(Loaded::whole(s)))
        .ok_or(StoreError::NotASnapshot)
}

/// A snapshot file's JSON, read whole (a version 2, 3 or 4 file's lines too).
fn from_json(json: &[u8]) -> Result<Loaded, StoreError> {
    if let Some(l) = json_lines(json)? {
        return l.whole();
    }
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    // A version 1 file is one JSON document, which may span lines when written by hand.
    let head: EnvelopeHead = serde_json::from_slice(json).map_err(corrupt)?;
    if head.format != FORMAT {
        return Err(StoreError::NotASnapshot);
    }
    match head.version {
        1 => serde_json::from_slice::<EnvelopeV1>(json)
            .map(|e| Loaded::whole(e.snapshot))
            .map_err(corrupt),
        v => Err(StoreError::UnknownVersion(v)),
    }
}

/// The lines of a snapshot file's JSON when its first line is a version 2, 3 or 4 head; `None` when
/// the first line is not a whole envelope head (a version 1 document).
fn json_lines(json: &[u8]) -> Result<Option<Lines<'_>>, StoreError> {
    let mut split = json.split(|&b| b == b'\n');
    let first = split.next().unwrap_or_default();
    let Ok(head) = serde_json::from_slice::<EnvelopeHead>(first) else {
        return Ok(None);
    };
    if head.format != FORMAT {
        return Err(StoreError::NotASnapshot);
    }
    match head.version {
        1 => Ok(None),
        2..=FILE_VERSION => {
            let mut rest = split.peekable();
            lines(
                first,
                Box::new(move |buf| {
                    let line = rest.next()?;
                    buf.clear();
                    buf.extend_from_slice(line);
                    Some(rest.peek().is_some())
                }),
            )
            .map(Some)
        }
        v => Err(StoreError::UnknownVersion(v)),
    }
}

/// A version 2, 3 or 4 file from its head line and the lines after it.
fn lines<'b>(head_line: &[u8], next: NextLine<'b>) -> Result<Lines<'b>, StoreError> {
    let head: HeadV2 = serde_json::from_slice(head_line)
        .map_err(|e| StoreError::Corrupt(format!("its first line is cut or damaged ({e})")))?;
    Ok(Lines { head, next })
}

/// Most threads of [`parse_batches`].
const MAX_PARSERS: usize = 8;

/// What one thread of [`parse_batches`] made of a batch of lines: its goroutines folded, how
/// many, and the line that ended it when that was not a goroutine (with whether a newline
/// ended that line).
struct Parsed<C> {
    acc: C,
    n: usize,
    stop: Option<Stop>,
}

/// A line that ends a batch of [`parse_batches`]: the end line, or one that does not parse
/// (and whether a newline ended it, so that more may follow).
enum Stop {
    End(End),
    Bad(serde_json::Error, bool),
}

/// A batch of lines for one thread of [`parse_batches`]: its place in the file, the site table
/// line its goroutines' frames point into (from version 3), and the lines with whether a newline
/// ended each.
type Batch = (usize, Option<RawTable>, Vec<(Vec<u8>, bool)>);

/// A site table line as read, shared by the batches of its run.
type RawTable = Arc<Vec<u8>>;

/// Whether a whole line is a site table (which the reader keeps for the lines after it
/// instead of parsing it in a batch).
fn is_site_table(line: &[u8]) -> bool {
    line.starts_with(br#"{"sites":"#) || line.starts_with(br#"{"table":"#)
}

/// Reads the lines `next` gives (see [`Lines`]), parses them in batches of [`CHUNK`] lines on
/// every CPU (each thread sharing the names it reads, [`super::reading_names`], and reading
/// frames against the site table before them), folds each goroutine into its batch's value
/// there, and hands the batches to `take` in order (with the number of goroutines in each;
/// `take` returns the count so far). Ends at the end line (`Ok(Some(end))`), at a cut
/// (`Ok(None)`: the lines run out, or the last one does not parse), or at a line that does not
/// parse with more after it (an error).
fn parse_batches<C: Default + Send>(
    next: &mut dyn FnMut(&mut Vec<u8>) -> Option<bool>,
    deltas: bool,
    fold: &(dyn Fn(&mut C, super::Goroutine) + Sync),
    take: &mut dyn FnMut(C, usize) -> usize,
) -> Result<Option<End>, StoreError> {
    use super::CHUNK;
    use std::sync::{Mutex, mpsc};
    let cpus = crate::parts::threads().min(MAX_PARSERS);
    let (jobs, queue) = mpsc::sync_channel::<Batch>(2 * cpus);
    let queue = Mutex::new(queue);
    let (done_tx, done) = mpsc::channel::<(usize, Parsed<C>)>();
    let parse = |lines: Vec<(Vec<u8>, bool)>| {
        let mut p = Parsed {
            acc: C::default(),
            n: 0,
            stop: None,
        };
        for (l, more) in lines {
            match serde_json::from_slice(&l) {
                Ok(Line::G(g)) => {
                    fold(&mut p.acc, g);
                    p.n += 1;
                }
                Ok(Line::End(end)) => {
                    p.stop = Some(Stop::End(end));
                    break;
                }
                // A table is kept by the reader, not parsed here: one that is the file's last
                // line (a cut right after it) or not written as this build writes them.
                Ok(Line::Sites(_) | Line::Table(_)) => {
                    let e = serde::de::Error::custom("a site table where a goroutine belongs");
                    p.stop = Some(Stop::Bad(e, more));
                    break;
                }
                Err(e) => {
                    p.stop = Some(Stop::Bad(e, more));
                    break;
                }
            }
        }
        p
    };
    // A batch's site table, parsed once by each thread that reads a batch of its run.
    use super::sites::Table;
    let table_of = |raw: &[u8]| -> Result<Table, serde_json::Error> {
        match serde_json::from_slice::<Line<super::Goroutine>>(raw)? {
            Line::Sites(sites) => Ok(super::sites::table(
                super::sites::Tables {
                    sites,
                    args: Vec::new(),
                },
                deltas,
            )),
            Line::Table(t) => Ok(super::sites::table(t, deltas)),
            _ => Err(serde::de::Error::custom("not a site table")),
        }
    };
    std::thread::scope(|s| {
        for _ in 0..cpus {
            let (queue, done_tx, parse, table_of) = (&queue, done_tx.clone(), &parse, &table_of);
            s.spawn(move || {
                super::reading_names(|| {
                    let mut last: Option<(RawTable, Result<Table, String>)> = None;
                    loop {
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((i, raw, lines)) = job else { break };
                        let parsed = match raw {
                            None => parse(lines),
                            Some(raw) => {
                                if !last.as_ref().is_some_and(|(r, _)| Arc::ptr_eq(r, &raw)) {
                                    let t = table_of(&raw).map_err(|e| e.to_string());
                                    last = Some((raw, t));
                                }
                                match last.as_ref().map(|(_, t)| t) {
                                    Some(Ok(t)) => {
                                        super::sites::reading(t.clone(), || parse(lines))
                                    }
                                    // Every line of the run points into a table that is damaged.
                                    _ => Parsed {
                                        acc: C::default(),
                                        n: 0,
                                        stop: Some(Stop::Bad(
                                            serde::de::Error::custom("a damaged site table"),
                                            true,
                                        )),
                                    },
                                }
                            }
                        };
                        if done_tx.send((i, parsed)).is_err() {
                            break;
                        }
                    }
                })
            });
        }
        drop(done_tx);
        let mut jobs = Some(jobs);
        let (mut sent, mut want) = (0usize, 0usize);
        let mut ready = std::collections::BTreeMap::new();
        // The site table of the lines being read, and the next one when it ended a batch.
        let (mut table, mut pending): (Option<RawTable>, Option<RawTable>) = (None, None);
        loop {
            // One more batch, while there are lines.
            if let Some(tx) = &jobs {
                if let Some(t) = pending.take() {
                    table = Some(t);
                }
                let mut lines = Vec::with_capacity(CHUNK);
                let mut last = false;
                while lines.len() < CHUNK && !last {
                    let mut buf = Vec::new();
                    match next(&mut buf) {
                        // A whole table: for the lines after it (a cut one is a line, the cut).
                        Some(true) if is_site_table(&buf) => {
                            if lines.is_empty() {
                                table = Some(Arc::new(buf));
                            } else {
                                pending = Some(Arc::new(buf));
                                break;
                            }
                        }
                        Some(more) => {
                            lines.push((buf, more));
                            last = !more;
                        }
                        None => last = true,
                    }
                }
                if !lines.is_empty() && tx.send((sent, table.clone(), lines)).is_ok() {
                    sent += 1;
                }
                if last {
                    jobs = None;
                }
            }
            // The batches parsed so far, in order; once every line is sent, wait for the rest.
            loop {
                while let Some(p) = ready.remove(&want) {
                    want += 1;
                    let Parsed { acc, n, stop } = p;
                    take(acc, n);
                    match stop {
                        None => {}
                        Some(Stop::End(end)) => return Ok(Some(end)),
                        // The line the cut fell in.
                        Some(Stop::Bad(_, false)) => return Ok(None),
                        Some(Stop::Bad(e, true)) => return Err(StoreError::Corrupt(e.to_string())),
                    }
                }
                if want == sent && jobs.is_none() {
                    return Ok(None);
                }
                let got = if jobs.is_none() {
                    done.recv().ok()
                } else {
                    done.try_recv().ok()
                };
                match got {
                    Some((i, parsed)) => {
                        ready.insert(i, parsed);
                    }
                    None if jobs.is_none() => return Ok(None),
                    None => break,
                }
            }
        }
    })
}

/// Goroutines a head line's count may reserve room for before any is read (the count is
/// untrusted; beyond this the vector grows as lines are read).
const MAX_PREALLOCATED_GOROUTINES: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Frame, Goroutine, LabelStr};

    fn sample() -> Snapshot {
        let mut s = Snapshot::default();
        s.meta.go_version = "go1.27.3".into();
        s.goroutines.push(Goroutine {
            id: 7,
            state: "chan receive".into(),
            frames: vec![Frame::at("main.f", "/x.go", 3)],
            labels: vec![
                ("k".into(), "v\u{1b}".into()),
                ("u".into(), LabelStr::new(b"\xff\xfe ok".to_vec(), 0)),
                ("z".into(), LabelStr::new(b"head".to_vec(), 1 << 20)),
            ],
            ..Default::default()
        });
        s
    }

    /// `snap` as [`write`] writes it, and its text decompressed.
    fn written(snap: &Snapshot) -> (Vec<u8>, String) {
        let mut buf = Vec::new();
        write(snap, &mut buf).unwrap();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&buf[..])
            .read_to_string(&mut text)
            .unwrap();
        (buf, text)
    }

    /// Labels as files of both versions wrote them (strings) are read as their bytes.
    #[test]
    fn reads_labels_of_earlier_files() {
        let want = vec![("k".into(), "v é".into())];
        let v1 = br#"{"format":"goroscope-snapshot","version":1,"snapshot":{"goroutines":[{"id":1,"labels":[["k","v \u00e9"]]}]}}"#;
        let v2 = br#"{"format":"goroscope-snapshot","version":2,"goroutines":1,"snapshot":{}}
{"g":{"id":1,"labels":[["k","v \u00e9"]]}}
{"end":{"written":1,"left_out":0}}
"#;
        for file in [&v1[..], &v2[..]] {
            let s = read(file).unwrap().snapshot;
            assert_eq!(s.goroutines[0].labels, want);
        }
    }

    #[test]
    fn round_trips() {
        let mut buf = Vec::new();
        write(&sample(), &mut buf).unwrap();
        assert_eq!(read(&buf).unwrap(), Loaded::whole(sample()));
    }

    /// Frames of every kind (inlined, hidden, a trap, with defers and values, names shared or
    /// not) come back from their rows as they were; the file holds each place once per run.
    #[test]
    fn frames_round_trip_through_site_tables() {
        let frame = |function: &str, line: u32, sp: u64| {
            let site = crate::snapshot::Site {
                function: function.into(),
                file: "/src/x.go".into(),
                line,
                pc: 0x40_1000 + u64::from(line),
                entry: 0x40_1000,
                ..Default::default()
            };
            Frame::new(site.into(), format!("{sp:#x}?").into(), sp, sp + 0x20)
        };
        let shared = frame("main.shared", 9, 0);
        let mut s = Snapshot::default();
        for id in 1..=1200u64 {
            let mut top = frame("main.top", 3 + (id % 3) as u32, 0xc000_0000 + id * 0x100);
            top.trap = id % 5 == 0;
            top.hidden = id % 7 == 0;
            let mut inl = frame("main.inlined", 4, top.sp);
            std::sync::Arc::make_mut(&mut inl.site).inlined = true;
            let mut with = frame("main.defers", 5, top.fp());
            if id % 11 == 0 {
                with = with.with_extras("7", false);
            }
            let created_by = (id % 4 != 0).then(|| crate::snapshot::CreatedBy {
                function: format!("main.spawn{}", id % 3).into(),
                file: "/src/x.go".into(),
                line: 20 + (id % 3) as u32,
                pc: 0x40_2000 + id % 3,
                entry: 0x40_2000,
                hidden: id % 8 == 1,
            });
            s.goroutines.push(Goroutine {
                id,
                state: "select".into(),
                frames: vec![top, inl, with, shared.clone(), Frame::default()],
                created_by,
                ..Default::default()
            });
        }
        let (buf, text) = written(&s);
        let tables = text
            .lines()
            .filter(|l| l.starts_with(r#"{"table":"#))
            .count();
        assert_eq!(tables, 1200usize.div_ceil(MEMBER), "one table a run");
        assert!(
            !text.contains(r#""function":"main.top""#),
            "frames are rows"
        );
        assert!(
            !text.contains(r#""function":"main.spawn"#),
            "where goroutines were created are rows"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with(r#"{"g":"#) && l.contains(r#"?""#)),
            "args texts are in the tables"
        );
        assert_eq!(read(&buf).unwrap(), Loaded::whole(s));
    }

    /// A row that points past its table, a table that does not parse, a row before any table:
    /// errors, not panics, and a cut inside a table is a cut.
    #[test]
    fn damaged_site_tables_are_errors() {
        let head = r#"{"format":"goroscope-snapshot","version":3,"goroutines":1,"snapshot":{}}"#;
        let g = r#"{"g":{"id":1,"frames":[[3,"",0,0,0]]}}"#;
        let end = r#"{"end":{"written":1,"left_out":0}}"#;
        for (table, what) in [
            (
                r#"{"sites":[["main.f","x.go",1,2,3,false]]}"#,
                "past the table",
            ),
            (r#"{"sites":[["main.f"]]}"#, "a table that does not parse"),
            ("", "no table"),
            (
                r#"{"table":{"sites":[["main.f","x.go",1,2,3,false]],"args":[]}}"#,
                "past both of version 5's tables",
            ),
        ] {
            let file = [head, table, g, end]
                .iter()
                .filter(|l| !l.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                matches!(read(file.as_bytes()), Err(StoreError::Corrupt(_))),
                "{what}"
            );
        }
        // Version 5: rows point at args texts, and where a goroutine was created at a site.
        let table = r#"{"table":{"sites":[["main.f","x.go",1,2,3,false]],"args":["0x1"]}}"#;
        for (g, what) in [
            (
                r#"{"g":{"id":1,"frames":[[0,1,0,0,0]]}}"#,
                "args past the table",
            ),
            (
                r#"{"g":{"id":1,"created_by":[1,0]}}"#,
                "created past the table",
            ),
            (
                r#"{"g":{"id":1,"created_by":[0]}}"#,
                "created without flags",
            ),
            (
                r#"{"g":{"id":1,"created_by":[0,"x"]}}"#,
                "created with bad flags",
            ),
        ] {
            let file = [head, table, g, end].join("\n");
            assert!(
                matches!(read(file.as_bytes()), Err(StoreError::Corrupt(_))),
                "{what}"
            );
        }
        let good = [
            head,
            table,
            r#"{"g":{"id":1,"frames":[[0,0,0,0,0]],"created_by":[0,1]}}"#,
            end,
        ]
        .join("\n");
        let g = &read(good.as_bytes()).unwrap().snapshot.goroutines[0];
        assert_eq!(&*g.frames[0].args, "0x1");
        let c = g.created_by.as_ref().unwrap();
        assert_eq!(
            (&*c.function, c.line, c.pc, c.entry, c.hidden),
            ("main.f", 1, 2, 3, true)
        );
        let cut = format!("{head}\n{}", r#"{"sites":[["main.f","x.go""#);
        let l = read(cut.as_bytes()).unwrap();
        assert_eq!((l.read, l.cut.map(|c| c.total)), (0, Some(1)));
    }

    #[test]
    fn rejects_newer_versions_and_garbage() {
        let json = br#"{"format":"goroscope-snapshot","version":99,"snapshot":{}}"#;
        assert!(matches!(read(json), Err(StoreError::UnknownVersion(99))));
        assert!(matches!(read(b"\x1f\x8b garbage"), Err(StoreError::Io(_))));
        assert!(matches!(read(b"hello"), Err(StoreError::NotASnapshot)));
        assert!(matches!(
            read(br#"{"format":"x","version":1,"snapshot":{}}"#),
            Err(StoreError::NotASnapshot)
        ));
    }

    #[test]
    fn reads_every_committed_schema_version() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snapshots");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".json.gz") {
                let s = read(&std::fs::read(&p).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                    .snapshot;
                assert!(!s.goroutines.is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 1, "no sample snapshots in {}", dir.display());
    }

    /// `v2.json.gz` is `v1.json.gz`'s snapshot written as lines, `v3.json.gz` the same with
    /// its frames as rows of site tables, `v4.json.gz` with the rows' sp and fp as differences,
    /// `v5.json.gz` with the args texts and where goroutines were created in the tables.
    #[test]
    fn every_committed_version_holds_the_same_snapshot() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snapshots");
        let load = |n: &str| read(&std::fs::read(dir.join(n)).unwrap()).unwrap();
        let v1 = load("v1.json.gz");
        for later in ["v2.json.gz", "v3.json.gz", "v4.json.gz", "v5.json.gz"] {
            assert_eq!(v1, load(later), "{later}");
        }
        assert_eq!(v1.snapshot.goroutines.len(), 16);
    }

    /// A goroutine's line (an array of its fields) reads back every field.
    #[test]
    fn a_goroutine_line_keeps_every_field() {
        let mut s = sample();
        let g = &mut s.goroutines[0];
        *g = Goroutine {
            frames: std::mem::take(&mut g.frames),
            labels: std::mem::take(&mut g.labels),
            ..Goroutine::every_field_set()
        };
        // Each flag set in a different set of goroutines than the others'.
        let other = Goroutine {
            id: 8,
            scan: false,
            locked_to_thread: true,
            ..s.goroutines[0].clone()
        };
        s.goroutines.push(other);
        let mut buf = Vec::new();
        write(&s, &mut buf).unwrap();
        assert_eq!(read(&buf).unwrap(), Loaded::whole(s));
    }

    /// The file as serde writes it, each goroutine `Line::G` of its fields in a sequence, each
    /// frame a row serialized as a sequence, where a goroutine was created `[site, flags]`,
    /// sites and args texts numbered in the order they are first written: what [`write`] must
    /// write byte for byte.
    fn by_serde(snap: &Snapshot) -> String {
        use crate::snapshot::sites::{Row as SiteRow, Tables};
        use serde::ser::{SerializeSeq, Serializer};
        use std::cell::RefCell;
        use std::collections::HashMap;
        /// Sites by their key (frames) or fields (created-by), args texts by their key.
        #[derive(Default)]
        struct Numbering {
            sites: HashMap<(u64, u64, u64, u32, u64, u64), u32>,
            args: HashMap<u64, u32>,
            tables: Tables,
        }
        type Index = RefCell<Numbering>;
        impl Numbering {
            fn site(&mut self, key: (u64, u64, u64, u32, u64, u64), row: SiteRow) -> u32 {
                let n = self.tables.sites.len() as u32;
                *self.sites.entry(key).or_insert_with(|| {
                    self.tables.sites.push(row);
                    n
                })
            }
            fn args(&mut self, a: &crate::snapshot::Name) -> u32 {
                let n = self.tables.args.len() as u32;
                *self.args.entry(a.key()).or_insert_with(|| {
                    self.tables.args.push(a.clone());
                    n
                })
            }
        }
        struct Row<'a>(&'a Frame, u32, u32, u64);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let (f, site, args, sp) = (self.0, self.1, self.2, self.3);
                let mut seq = ser.serialize_seq(None)?;
                seq.serialize_element(&site)?;
                seq.serialize_element(&args)?;
                seq.serialize_element(&(f.sp.wrapping_sub(sp) as i64))?;
                seq.serialize_element(&(f.fp().wrapping_sub(f.sp) as i64))?;
                seq.serialize_element(&(u8::from(f.hidden) | u8::from(f.trap) << 1))?;
                if f.has_defers_or_values() {
                    seq.serialize_element(f.defers())?;
                    seq.serialize_element(f.values())?;
                }
                seq.end()
            }
        }
        struct Rows<'a>(&'a [Frame], &'a Index);
        impl Serialize for Rows<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let mut seq = ser.serialize_seq(None)?;
                let mut sp = 0;
                for f in self.0 {
                    let mut ix = self.1.borrow_mut();
                    let key = (0, crate::snapshot::site_key(&f.site), 0, 0, 0, 0);
                    let site = ix.site(key, crate::snapshot::sites::row(f));
                    let args = ix.args(&f.args);
                    drop(ix);
                    seq.serialize_element(&Row(f, site, args, sp))?;
                    sp = f.sp;
                }
                seq.end()
            }
        }
        struct Fields<'a, A>(A, &'a Index);
        impl<A: SerializeSeq> crate::snapshot::Fields for Fields<'_, A> {
            type Error = A::Error;
            fn number(&mut self, _: &'static str, n: u64) -> Result<(), A::Error> {
                self.0.serialize_element(&n)
            }
            fn frames(&mut self, _: &'static str, f: &[Frame]) -> Result<(), A::Error> {
                self.0.serialize_element(&Rows(f, self.1))
            }
            fn created_by(
                &mut self,
                _: &'static str,
                c: Option<&crate::snapshot::CreatedBy>,
            ) -> Result<(), A::Error> {
                let Some(c) = c else {
                    return self.0.serialize_element(&None::<()>);
                };
                let key = (1, c.function.key(), c.file.key(), c.line, c.pc, c.entry);
                let row = crate::snapshot::sites::created_row(c);
                let site = self.1.borrow_mut().site(key, row);
                self.0.serialize_element(&(site, u8::from(c.hidden)))
            }
            fn value<T: Serialize + ?Sized>(
                &mut self,
                _: &'static str,
                v: &T,
            ) -> Result<(), A::Error> {
                self.0.serialize_element(v)
            }
        }
        struct G<'a>(&'a Goroutine, &'a Index);
        impl Serialize for G<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let mut fields = Fields(ser.serialize_seq(None)?, self.1);
                self.0.each_field(&mut fields)?;
                fields.0.end()
            }
        }
        let line = |v: &dyn erased::Line| v.json();
        let mut out = line(&HeadOut {
            format: FORMAT,
            version: FILE_VERSION,
            goroutines: snap.goroutines.len(),
            snapshot: Part {
                meta: &snap.meta,
                threads: &snap.threads,
                objects: &snap.objects,
                file_locks: snap.file_locks.as_ref(),
            },
        });
        for run in snap.goroutines.chunks(MEMBER) {
            let index = Index::default();
            let gs: String = run.iter().map(|g| line(&Line::G(G(g, &index)))).collect();
            out += &line(&Line::<()>::Table(index.into_inner().tables));
            out += &gs;
        }
        out + &line(&Line::<()>::End(End {
            written: snap.goroutines.len(),
            left_out: 0,
        }))
    }

    mod erased {
        /// A line of JSON of any serializable value.
        pub trait Line {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Line for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap() + "\n"
            }
        }
    }

    /// Every kind of goroutine and frame written as serde writes them (`by_serde`): the rows,
    /// the site tables in their order, the fields of a goroutine in theirs, strings that must
    /// be escaped, runs of goroutines cut in members.
    #[test]
    fn lines_are_what_serde_writes() {
        let mut s = sample();
        let mut odd = Frame::at("main.\"odd\"\u{1b}", "/src/a\\b.go", 9).with_extras("\n", true);
        odd.args = "0x1, {\"q\"\u{7}}".into();
        odd.set_span(u64::MAX - 8, 16);
        (odd.trap, odd.hidden) = (true, true);
        let mut plain = Frame::at("main.plain\u{202e}", "/src/é.go", 3);
        plain.set_span(0xc000_0100, 0xc000_0180);
        plain.args = "0xc000012345?, 0x0".into();
        // Each character serde escapes alone in one args text.
        let escaped = ["{\"q\"}", "a\\b", "\u{7f}\u{1f}"].map(|a| Frame {
            args: a.into(),
            ..plain.clone()
        });
        let rich = Goroutine {
            frames: [vec![plain.clone(), odd, plain.clone()], escaped.to_vec()].concat(),
            stack_error: Some("cut\n".into()),
            labels: s.goroutines[0].labels.clone(),
            ..Goroutine::every_field_set()
        };
        s.goroutines = (0..MEMBER as u64 * 2 + 5)
            .map(|id| match id % 3 {
                0 => Goroutine { id, ..rich.clone() },
                1 => Goroutine {
                    id,
                    frames: vec![{
                        let mut f = plain.clone();
                        f.set_span(id, plain.fp());
                        f
                    }],
                    ..Default::default()
                },
                _ => Goroutine {
                    id,
                    ..s.goroutines[0].clone()
                },
            })
            .collect();
        for snap in [Snapshot::default(), sample(), s] {
            assert!(
                written(&snap).1 == by_serde(&snap),
                "{} goroutines",
                snap.goroutines.len()
            );
        }
    }

    /// Frames whose sp and fp go down, wrap and sit at both ends of the address space read
    /// back as they were.
    #[test]
    fn rows_read_back_every_sp_and_fp() {
        let mut s = sample();
        let ends = [0, 1, 16, 0xc000_0100, 1 << 63, u64::MAX - 8, u64::MAX];
        let frame = s.goroutines[0].frames[0].clone();
        s.goroutines[0].frames = ends
            .iter()
            .flat_map(|&sp| ends.iter().map(move |&fp| (sp, fp)))
            .map(|(sp, fp)| {
                let mut f = frame.clone();
                f.set_span(sp, fp);
                f
            })
            .collect();
        let mut buf = Vec::new();
        write(&s, &mut buf).unwrap();
        assert_eq!(read(&buf).unwrap(), Loaded::whole(s));
    }

    /// Frames read at one site with the same args text share it (the one read last there),
    /// as the writer's frames did.
    #[test]
    fn args_read_at_one_site_are_shared() {
        let s = many(50);
        let mut buf = Vec::new();
        write(&s, &mut buf).unwrap();
        let read = read(&buf).unwrap().snapshot;
        assert_eq!(read, s);
        let first = &read.goroutines[0].frames[0].args;
        for g in &read.goroutines[1..] {
            assert!(
                Arc::ptr_eq(&g.frames[0].args.0, &first.0),
                "goroutine {}: its args text is a copy of its own",
                g.id
            );
        }
    }

    fn many(n: u64) -> Snapshot {
        let mut s = sample();
        let g = s.goroutines[0].clone();
        s.goroutines = (1..=n).map(|id| Goroutine { id, ..g.clone() }).collect();
        s
    }

    #[test]
    fn a_cut_file_keeps_the_goroutines_before_the_cut() {
        let full = many(200);
        let mut buf = Vec::new();
        write(&full, &mut buf).unwrap();
        let mut last = 0;
        for len in (0..buf.len()).step_by(7) {
            match read(&buf[..len]) {
                // Cut after the end line (the last deflate block's end, the gzip trailer): the
                // content is whole.
                Ok(l) if l.cut.is_none() => assert_eq!(l, Loaded::whole(full.clone())),
                Ok(l) => {
                    let c = l.cut.clone().expect("a cut file says so");
                    assert_eq!(c.total, 200);
                    assert_eq!(l.snapshot.goroutines[..], full.goroutines[..c.read]);
                    assert!(c.read >= last, "fewer goroutines from a longer prefix");
                    last = c.read;
                    assert!(
                        l.notice()
                            .unwrap()
                            .contains(&format!("cut after {} of 200", c.read))
                    );
                }
                Err(e) => assert_eq!(last, 0, "{len} bytes: {e}"),
            }
        }
        assert!(last > 150, "only {last} goroutines from the longest prefix");
        assert_eq!(read(&buf).unwrap(), Loaded::whole(full));
    }

    #[test]
    fn a_deadline_leaves_goroutines_out_and_says_so() {
        let full = many(10);
        let mut buf = Vec::new();
        let end = write_until(&full, &mut buf, Some(std::time::Instant::now())).unwrap();
        assert_eq!(
            end,
            End {
                written: 0,
                left_out: 10
            }
        );
        let l = read(&buf).unwrap();
        assert_eq!(
            (l.cut.clone(), l.left_out, l.snapshot.goroutines.len()),
            (None, 10, 0)
        );
        assert_eq!(
            l.notice().unwrap(),
            "written with a deadline: 0 of 10 goroutines, 10 left out"
        );
    }

    #[test]
    fn save_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("goroscope-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.gsnap");
        std::fs::write(&path, b"old").unwrap();
        save(&many(3), &path, None).unwrap();
        assert_eq!(
            read(&std::fs::read(&path).unwrap()).unwrap(),
            Loaded::whole(many(3))
        );
        assert!(!temp_name(&path).exists());
        assert!(
            temp_name(&path)
                .to_string_lossy()
                .ends_with(&format!("a.gsnap{TEMP_INFIX}{}", std::process::id()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
