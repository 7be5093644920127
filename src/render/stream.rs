//! Go's traceback text of a streamed dump: goroutines rendered chunk by chunk on the walk's
//! threads as they are built, then written in order.

use super::traceback;
use crate::analyze::filter::Filter;
use crate::snapshot::{Goroutine, Meta};
use crate::version::GoVersion;
use std::io::{self, Write};

/// Go's traceback text of goroutines as a streamed dump builds them
/// ([`crate::capture::LiveTarget::stream`]): each kept goroutine is rendered into its chunk.
pub struct GoText {
    filter: Filter,
    opts: traceback::Options,
    version: GoVersion,
    /// Buffers of chunks already written, to render the next ones into (fresh ones would
    /// cost a page fault every 4 KiB of a dump of hundreds of megabytes).
    spare: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// Bytes a chunk's text buffer starts with.
const CHUNK_TEXT: usize = 256 << 10;

/// Text of a chunk of goroutines, and how many it holds.
#[derive(Default)]
pub struct TextChunk {
    text: Vec<u8>,
    n: usize,
}

impl GoText {
    /// The text of the goroutines `filter` keeps, in the traceback format `opts`, for a
    /// snapshot with these facts.
    pub fn new(meta: &Meta, filter: Filter, opts: traceback::Options) -> GoText {
        GoText {
            filter,
            opts,
            version: traceback::version(meta),
            spare: Default::default(),
        }
    }

    /// Renders `g` into `chunk` if the filter keeps it and the traceback prints it.
    pub fn fold(&self, chunk: &mut TextChunk, g: Goroutine) {
        if !self.filter.keep(&g) || !traceback::printed(&g, self.opts) {
            return;
        }
        if chunk.n > 0 {
            chunk.text.push(b'\n');
        } else if chunk.text.capacity() == 0 {
            let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
            chunk.text = spare.unwrap_or_else(|| Vec::with_capacity(CHUNK_TEXT));
        }
        chunk.n += 1;
        // Writing into a Vec cannot fail.
        let _ = traceback::goroutine(&g, self.version, self.opts, &mut chunk.text);
    }
}

/// Writes chunks of text blank-line separated, keeping the first error, and hands their
/// buffers back to the [`GoText`] that rendered them.
pub struct ChunkWriter<'w> {
    out: &'w mut dyn Write,
    text: &'w GoText,
    written: bool,
    result: io::Result<()>,
}

impl<'w> ChunkWriter<'w> {
    /// A writer to `out` of chunks `text` renders.
    pub fn new(out: &'w mut dyn Write, text: &'w GoText) -> Self {
        ChunkWriter {
            out,
            text,
            written: false,
            result: Ok(()),
        }
    }

    /// Writes one chunk (nothing after an error).
    pub fn write(&mut self, mut c: TextChunk) {
        if c.n > 0 && self.result.is_ok() {
            if self.written {
                self.result = self.out.write_all(b"\n");
            }
            self.written = true;
            if self.result.is_ok() {
                self.result = self.out.write_all(&c.text);
            }
        }
        if c.text.capacity() > 0
            && let Ok(mut spare) = self.text.spare.lock()
        {
            c.text.clear();
            spare.push(c.text);
        }
    }

    /// The first error, if any.
    pub fn finish(self) -> io::Result<()> {
        self.result
    }
}
