//! Text of a streamed dump (Go's traceback, or delve's goroutine list): goroutines rendered
//! chunk by chunk on the threads that build or read them, then written in order.

use super::{grs, traceback};
use crate::analyze::filter::Filter;
use crate::snapshot::{Goroutine, Meta};
use crate::version::GoVersion;
use std::io::{self, Write};

/// How each goroutine of a streamed text is written.
enum Shape {
    /// Go's traceback, goroutines blank-line separated.
    Go(traceback::Options, GoVersion),
    /// delve's goroutine list, `[N goroutines]` at the end.
    Grs(grs::Options),
}

/// The text of goroutines as a stream hands them out
/// ([`crate::capture::LiveTarget::stream`], [`crate::snapshot::store::Lines::each`]): each
/// kept goroutine is rendered into its chunk.
pub struct Text {
    filter: Filter,
    shape: Shape,
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

impl Text {
    /// Go's traceback text of the goroutines `filter` keeps, in the format `opts`, for a
    /// snapshot with these facts.
    pub fn go(meta: &Meta, filter: Filter, opts: traceback::Options) -> Text {
        Text::new(filter, Shape::Go(opts, traceback::version(meta)))
    }

    /// delve's goroutine list of the goroutines `filter` keeps, as `opts` say.
    pub fn grs(filter: Filter, opts: grs::Options) -> Text {
        Text::new(filter, Shape::Grs(opts))
    }

    fn new(filter: Filter, shape: Shape) -> Text {
        Text {
            filter,
            shape,
            spare: Default::default(),
        }
    }

    /// Renders `g` into `chunk` if the filter keeps it and the format prints it.
    pub fn fold(&self, chunk: &mut TextChunk, g: Goroutine) {
        let printed = match &self.shape {
            Shape::Go(opts, _) => traceback::printed(&g, *opts),
            Shape::Grs(opts) => opts.system || !g.system,
        };
        if !self.filter.keep(&g) || !printed {
            return;
        }
        if chunk.n > 0 {
            if let Shape::Go(..) = self.shape {
                chunk.text.push(b'\n');
            }
        } else if chunk.text.capacity() == 0 {
            let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
            chunk.text = spare.unwrap_or_else(|| Vec::with_capacity(CHUNK_TEXT));
        }
        chunk.n += 1;
        // Writing into a Vec cannot fail.
        let _ = match &self.shape {
            Shape::Go(opts, version) => traceback::goroutine(&g, *version, *opts, &mut chunk.text),
            Shape::Grs(opts) => grs::list(&[&g], *opts, "", &mut chunk.text),
        };
    }
}

/// Writes chunks of text in order (blank-line separated for Go's traceback), keeping the
/// first error, and hands their buffers back to the [`Text`] that rendered them.
pub struct ChunkWriter<'w> {
    out: &'w mut dyn Write,
    text: &'w Text,
    written: usize,
    result: io::Result<()>,
}

impl<'w> ChunkWriter<'w> {
    /// A writer to `out` of chunks `text` renders.
    pub fn new(out: &'w mut dyn Write, text: &'w Text) -> Self {
        ChunkWriter {
            out,
            text,
            written: 0,
            result: Ok(()),
        }
    }

    /// Writes one chunk (nothing after an error).
    pub fn write(&mut self, mut c: TextChunk) {
        if c.n > 0 && self.result.is_ok() {
            if self.written > 0 && matches!(self.text.shape, Shape::Go(..)) {
                self.result = self.out.write_all(b"\n");
            }
            self.written += c.n;
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

    /// Ends the text (the goroutine list's count), and returns the first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if self.result.is_ok() && matches!(self.text.shape, Shape::Grs(_)) {
            self.result = grs::count(self.written, self.out);
        }
        self.result
    }
}
