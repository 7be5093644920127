//! How a snapshot is shown: output format, grouping and filters, shared by `dump`, `show`,
//! `diff` and `watch`.

use crate::analyze::diff;
use crate::analyze::filter::{self, Filter};
use crate::analyze::group::{self, GroupBy};
use crate::render;
use crate::render::safe::text;
use crate::snapshot::{Goroutine, Snapshot};
use clap::{Args, ValueEnum};
use std::io::{self, Write};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Go's own traceback text (what runtime.Stack / SIGQUIT print).
    Go,
    /// Identical stacks grouped, largest group first.
    Grouped,
    /// One line a goroutine, like delve's `goroutines`.
    Grs,
    /// The snapshot model as JSON (docs/json-schema.md).
    Json,
    /// A gzipped pprof goroutine profile (profile.proto); opens in `go tool pprof`.
    Pprof,
    /// pprof's `debug=1` goroutine text.
    Debug1,
    /// What blocked goroutines wait on: channels and sync primitives with their state.
    Blocked,
}

/// Format, grouping and filter options.
#[derive(Debug, Clone, Args, Default)]
pub struct ViewArgs {
    /// Output format [default: go for dump, grouped for show when over 100 goroutines].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Group identical stacks (same as --format grouped).
    #[arg(long)]
    pub group: bool,
    /// Show what blocked goroutines wait on (same as --format blocked).
    #[arg(long)]
    pub blocked: bool,
    /// Group by: stack, user-frame, current-frame, go-statement, start, state, running, system,
    /// label:KEY (implies --group).
    #[arg(long, value_name = "KEY")]
    pub group_by: Option<String>,
    /// Only goroutines in this state (wait reason), e.g. "chan receive"; repeatable.
    #[arg(long, value_name = "STATE")]
    pub state: Vec<String>,
    /// Only goroutines blocked at least this many minutes.
    #[arg(long, value_name = "M")]
    pub wait_min: Option<i64>,
    /// Only goroutines with a frame whose function matches this regular expression.
    #[arg(long = "func", value_name = "REGEX")]
    pub func: Option<String>,
    /// Only goroutines with this pprof label; repeatable.
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Leave out goroutines matching the healthy-stack rules in this file (blocks of regular
    /// expressions, blank-line separated, each matching a frame in stack order).
    #[arg(long, value_name = "RULES")]
    pub exclude_file: Option<std::path::PathBuf>,
    /// Show runtime-internal goroutines and frames too (like GOTRACEBACK=system).
    #[arg(long)]
    pub system: bool,
}

impl ViewArgs {
    /// The filter these options describe.
    pub fn filter(&self) -> Result<Filter, String> {
        let func = match &self.func {
            Some(r) => Some(regex::Regex::new(r).map_err(|e| format!("--func: {e}"))?),
            None => None,
        };
        let exclude = match &self.exclude_file {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                filter::parse_rules(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => Vec::new(),
        };
        let labels = self
            .label
            .iter()
            .map(|l| filter::parse_label(l))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            states: self.state.clone(),
            wait_min: self.wait_min,
            func,
            labels,
            exclude,
            system: self.system,
            conds: Vec::new(),
        })
    }

    /// The grouping key.
    pub fn group_by(&self) -> Result<GroupBy, String> {
        self.group_by
            .as_deref()
            .map(GroupBy::parse)
            .unwrap_or(Ok(GroupBy::Stack))
    }

    /// The format to use, given the command's default.
    pub fn format(&self, default: Format) -> Format {
        if self.blocked {
            return Format::Blocked;
        }
        if self.group || self.group_by.is_some() {
            return Format::Grouped;
        }
        self.format.unwrap_or(default)
    }
}

/// Go's traceback text of goroutines as a streamed dump builds them
/// ([`crate::collect::LiveSession::stream`]): each kept goroutine is rendered into its chunk.
pub struct GoText {
    filter: Filter,
    opts: render::traceback::Options,
    version: crate::version::GoVersion,
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
    /// The text the options ask for, for a snapshot with these facts.
    pub fn new(meta: &crate::snapshot::Meta, v: &ViewArgs) -> Result<GoText, String> {
        Ok(GoText {
            filter: v.filter()?,
            opts: traceback_options(meta, v),
            version: render::traceback::version(meta),
            spare: Default::default(),
        })
    }

    /// Renders `g` into `chunk` if the filter keeps it and the traceback prints it.
    pub fn fold(&self, chunk: &mut TextChunk, g: Goroutine) {
        if !self.filter.keep(&g) || !render::traceback::printed(&g, self.opts) {
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
        let _ = render::traceback::goroutine(&g, self.version, self.opts, &mut chunk.text);
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

/// The traceback format the options ask for, for a snapshot with these facts.
pub fn traceback_options(meta: &crate::snapshot::Meta, v: &ViewArgs) -> render::traceback::Options {
    render::traceback::Options {
        level: if v.system { 2 } else { 1 },
        labels: meta.traceback_labels,
        leaked: false,
    }
}

/// Renders a snapshot as the options say.
pub fn show(snap: &Snapshot, v: &ViewArgs, default: Format, out: &mut dyn Write) -> io::Result<()> {
    let f = v.filter().map_err(io::Error::other)?;
    let by = v.group_by().map_err(io::Error::other)?;
    let kept: Vec<&Goroutine> = snap.goroutines.iter().filter(|g| f.keep(g)).collect();
    match v.format(default) {
        Format::Go => {
            render::traceback::render(&snap.meta, kept, traceback_options(&snap.meta, v), out)
        }
        Format::Grs => {
            let opts = render::grs::Options {
                system: v.system,
                ..Default::default()
            };
            render::grs::render(kept, opts, out)
        }
        Format::Json => render::json::render(snap, &kept, out),
        Format::Grouped => {
            let n = kept.len();
            let groups = group::group(kept, &by);
            render::grouped::render(&groups, &by, n, out)
        }
        Format::Debug1 => {
            let n = kept.len();
            let groups = group::group(kept, &GroupBy::Stack);
            render::debug1::render(&groups, n, out)
        }
        Format::Pprof => render::pprof::render(snap, |g| f.keep(g), out),
        Format::Blocked => render::blocked::render(snap, |g| f.keep(g), out),
    }
}

/// Prints what changed between two snapshots, group by group.
pub fn diff(a: &Snapshot, b: &Snapshot, v: &ViewArgs, out: &mut dyn Write) -> io::Result<()> {
    let f = v.filter().map_err(io::Error::other)?;
    let by = v.group_by().map_err(io::Error::other)?;
    diff_by(a, b, &f, &by, out)
}

/// [`diff`] with the filter and grouping already parsed.
pub fn diff_by(
    a: &Snapshot,
    b: &Snapshot,
    f: &Filter,
    by: &GroupBy,
    out: &mut dyn Write,
) -> io::Result<()> {
    let changes = diff::diff(a, b, by, |g| f.keep(g));
    let total = |s: &Snapshot| s.goroutines.iter().filter(|g| f.keep(g)).count();
    writeln!(
        out,
        "goroutines: {} -> {} ({:+})",
        total(a),
        total(b),
        total(b) as i64 - total(a) as i64
    )?;
    if changes.is_empty() {
        return writeln!(out, "no group changed");
    }
    for c in &changes {
        let what = match (c.before, c.after) {
            (0, _) => "appeared",
            (_, 0) => "vanished",
            (x, y) if y > x => "grew",
            _ => "shrank",
        };
        writeln!(
            out,
            "\n{:+} {} ({} -> {}) [{}]",
            c.delta(),
            what,
            c.before,
            c.after,
            text(&c.example.state)
        )?;
        describe(c.example, by, out)?;
    }
    Ok(())
}

/// A group's identity in a few lines: its key, or the representative's shown frames.
pub fn describe(g: &Goroutine, by: &GroupBy, out: &mut dyn Write) -> io::Result<()> {
    if *by != GroupBy::Stack {
        return writeln!(out, "    {}", render::grouped::title(g, by));
    }
    for f in g.frames.iter().filter(|f| !f.hidden).take(8) {
        writeln!(
            out,
            "    {}\n        {}:{}",
            text(&crate::unwind::symbolize::print_name(&f.function)),
            text(&f.file),
            f.line
        )?;
    }
    if let Some(c) = &g.created_by {
        writeln!(
            out,
            "    created by {}\n        {}:{}",
            text(&c.function),
            text(&c.file),
            c.line
        )?;
    }
    Ok(())
}
