//! How a snapshot is shown: output format, grouping and filters, shared by `dump`, `show`,
//! `diff` and `watch`.

use crate::analyze::filter::{self, Filter};
use crate::analyze::group::{self, GroupBy};
use crate::render;
use crate::snapshot::{Goroutine, Snapshot};
use clap::{Args, ValueEnum};
use std::borrow::Cow::Owned;
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
    pub(crate) fn group_by(&self) -> Result<GroupBy, String> {
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

/// The traceback format the options ask for, for a snapshot with these facts.
pub(crate) fn traceback_options(
    meta: &crate::snapshot::Meta,
    v: &ViewArgs,
) -> render::traceback::Options {
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
            let groups = group::Tally::of(kept, &by);
            render::grouped::render(&groups, &by, n, out)
        }
        Format::Debug1 => render::debug1::render(&render::debug1::Records::of(kept), out),
        Format::Pprof => render::pprof::render(snap, |g| f.keep(g), out),
        Format::Blocked => render::blocked::render(snap, |g| f.keep(g), out),
    }
}

/// Goroutines handed out in chunks as they are built or read, never all kept: a live dump
/// ([`crate::capture::LiveTarget::stream`]) or a snapshot file
/// ([`crate::snapshot::store::Lines::each`]).
pub trait Stream {
    /// What the stream ends with (the dump's facts, the file's).
    type Done;
    /// The facts of the snapshot a stream ended with.
    fn meta(done: &Self::Done) -> &crate::snapshot::Meta;

    /// Hands every goroutine to `fold` (on the thread that built or read it, into its
    /// chunk's value) and each chunk to `sink`, in order.
    fn each<C: Default + Send>(
        self,
        fold: &(dyn Fn(&mut C, Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<Self::Done, String>;
}

/// Whether goroutines can be shown in `format` as a [`Stream`] hands them out.
pub fn streams(format: Format) -> bool {
    matches!(
        format,
        Format::Go | Format::Grs | Format::Grouped | Format::Pprof | Format::Debug1
    )
}

/// [`show`] for goroutines from a stream, of a snapshot with the facts `meta`, in `format`
/// (one that [`streams`]).
pub fn show_stream<S: Stream>(
    meta: &crate::snapshot::Meta,
    stream: S,
    v: &ViewArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<(S::Done, io::Result<()>), String> {
    let f = v.filter()?;
    match format {
        Format::Grouped => {
            let by = v.group_by()?;
            let (done, all) = tally_stream(stream, &f, &by)?;
            let n = all.total();
            Ok((
                done,
                render::grouped::render(&all.into_sorted(), &by, n, out),
            ))
        }
        Format::Grs => {
            let opts = render::grs::Options {
                system: v.system,
                ..Default::default()
            };
            stream_text(&render::stream::Text::grs(f, opts), stream, out)
        }
        Format::Pprof => {
            use render::pprof::Samples;
            let (done, all) = count_stream(
                stream,
                &f,
                &|s: &mut Samples, g| s.add(Owned(g)),
                |s, later| s.merge(later),
            )?;
            let r = render::pprof::write(S::meta(&done), &all, out);
            Ok((done, r))
        }
        Format::Debug1 => {
            use render::debug1::Records;
            let (done, all) = count_stream(
                stream,
                &f,
                &|r: &mut Records, g| r.add(Owned(g)),
                |r, later| r.merge(later),
            )?;
            Ok((done, render::debug1::render(&all, out)))
        }
        _ => {
            let opts = traceback_options(meta, v);
            stream_text(&render::stream::Text::go(meta, f, opts), stream, out)
        }
    }
}

/// The goroutines from `stream` that `f` keeps, grouped by `by`.
pub fn tally_stream<S: Stream>(
    stream: S,
    f: &Filter,
    by: &GroupBy,
) -> Result<(S::Done, group::Tally), String> {
    count_stream(
        stream,
        f,
        &|t: &mut group::Tally, g| t.add(Owned(g), by),
        |t, later| t.merge(later),
    )
}

/// The goroutines from `stream` that `f` keeps, counted into a `C` per chunk (`add`, on the
/// thread that built or read them), the chunks merged in order (`merge`).
fn count_stream<S: Stream, C: Default + Send>(
    stream: S,
    f: &Filter,
    add: &(dyn Fn(&mut C, Goroutine) + Sync),
    mut merge: impl FnMut(&mut C, C),
) -> Result<(S::Done, C), String> {
    let mut all = C::default();
    let done = stream.each(
        &|c: &mut C, g| {
            if f.keep(&g) {
                add(c, g);
            }
        },
        &mut |c| merge(&mut all, c),
    )?;
    Ok((done, all))
}

/// Writes `text` of the goroutines from `stream`, each chunk as soon as it is its turn.
pub fn stream_text<S: Stream>(
    text: &render::stream::Text,
    stream: S,
    out: &mut dyn Write,
) -> Result<(S::Done, io::Result<()>), String> {
    let mut w = render::stream::ChunkWriter::new(out, text);
    let done = stream.each(&|c, g| text.fold(c, g), &mut |c| w.write(c))?;
    Ok((done, w.finish()))
}
