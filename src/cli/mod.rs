//! The command line: thin commands over the library.

mod args;
mod attach;
mod bt;
pub mod btvalues;
mod deadlocks;
pub mod docs;
pub mod leaks;
pub mod progress;
pub mod ps;
mod snapshot;
pub mod view;

use crate::capture::{CoreTarget, DumpError, LiveTarget, Target};
use crate::render;
use crate::render::safe::text;
use crate::runtime::OpenOptions;
use crate::snapshot::Snapshot;
pub use args::{Cli, Command, CoreArgs};

use clap::Parser;
use std::io::{self, Write};
use std::path::PathBuf;

/// What a command reads: a live process or a core file.
#[derive(Debug, Clone)]
enum TargetArg {
    Pid(i32),
    Core { core: PathBuf, exe: Option<PathBuf> },
}

impl TargetArg {
    fn new(pid: Option<i32>, c: CoreArgs) -> Result<TargetArg, String> {
        match (c.core, pid) {
            (Some(core), _) => Ok(TargetArg::Core { core, exe: c.exe }),
            (None, _) if c.exe.is_some() => {
                Err("--exe names a core's executable; use it with --core (a process's executable is found from its pid)".into())
            }
            (None, Some(pid)) => Ok(TargetArg::Pid(pid)),
            // clap requires one of them.
            (None, None) => Err("give a process id or --core FILE".into()),
        }
    }

    fn is_core(&self) -> bool {
        matches!(self, TargetArg::Core { .. })
    }

    /// How messages name it: `process 1234`, `core core.1234`.
    fn describe(&self) -> String {
        match self {
            TargetArg::Pid(p) => format!("process {p}"),
            TargetArg::Core { core, .. } => format!("core {}", core.display()),
        }
    }

    /// The command-line words that select it again: `1234`, `--core core.1234`.
    fn args(&self) -> String {
        match self {
            TargetArg::Pid(p) => p.to_string(),
            TargetArg::Core { core, exe: None } => format!("--core {}", core.display()),
            TargetArg::Core { core, exe: Some(e) } => {
                format!("--core {} --exe {}", core.display(), e.display())
            }
        }
    }
}

/// The exit status of a command that succeeded (`deadlocks`: 3 when it found one).
static STATUS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The exit status [`run`] asks for when it returns `Ok`.
pub fn status() -> i32 {
    STATUS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Parses the command line, exiting on a usage error with clap's message and status 2. When
/// what is missing is the process id (or the command), the Go processes to pick from follow it.
pub fn parse() -> Cli {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ErrorKind};
    let err = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    let missing_pid = err.kind() == ErrorKind::MissingRequiredArgument
        && err
            .get(ContextKind::InvalidArg)
            .is_some_and(|v| v.to_string().contains("PID"));
    let no_command = matches!(
        err.kind(),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !missing_pid && !no_command {
        err.exit();
    }
    let _ = err.print();
    let cmd = missing_pid
        .then(|| {
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            std::env::args().skip(1).find(|a| names.contains(a))
        })
        .flatten();
    let mut stderr = io::stderr().lock();
    let _ = writeln!(stderr);
    if let Err(e) = ps::pick(cmd.as_deref(), &mut stderr) {
        let _ = writeln!(stderr, "goroscope: cannot list the Go processes: {e}");
    }
    std::process::exit(2);
}

/// Runs a parsed command line. Errors come back as one-line messages.
pub fn run(cli: Cli) -> Result<(), String> {
    let mut out = crate::stdout::writer();
    let quiet = cli.quiet;
    let ro = &Ctx::of(&cli);
    let palette = render::color::Palette::new(cli.color);
    let res = match cli.command {
        Command::Dump {
            pid,
            level,
            view,
            core,
        } => dump(&TargetArg::new(pid, core)?, level, view, ro, &mut out)?,
        Command::Snapshot {
            pid,
            output,
            core,
            deadline,
            values,
        } => {
            snapshot::snapshot(pid, output, core, deadline, values, ro)?;
            Ok(())
        }
        Command::Show { file, full, view } => show(&file, full, &view, palette, &mut out)?,
        Command::Diff {
            before,
            after,
            view,
        } => {
            let (f, by) = (view.filter()?, view.group_by()?);
            let (a, b) = (tally(&before, &f, &by)?, tally(&after, &f, &by)?);
            let r = render::diff::render(&a, &b, &by, &mut out);
            let_go((a, b));
            r
        }
        Command::Watch {
            pid,
            every,
            count,
            view,
        } => watch(pid, ro, every, count, &view, &mut out),
        Command::Leaks { pid, format, core } => {
            let target = TargetArg::new(pid, core)?;
            match leaks::run(&target, &format, ro, &mut out)? {
                Ok(n) if n > 0 => out.flush().map(|()| std::process::exit(3)),
                r => r.map(|_| ()),
            }
        }
        Command::Grs {
            pid,
            stacks,
            system,
            json,
            core,
        } => grs(
            &TargetArg::new(pid, core)?,
            stacks,
            system,
            json,
            ro,
            palette,
            &mut out,
        )?,
        Command::Ps(a) => ps::run(&a, quiet, &mut out),
        Command::Completions(a) => docs::completions(&a, &mut out),
        Command::Man(a) => docs::man(&a, &mut out),
        Command::Bt {
            ids,
            json,
            full,
            core,
        } => bt::run(&ids, json, full, core, ro, palette, &mut out)?,
        Command::Deadlocks {
            target,
            format,
            core,
        } => deadlocks::deadlocks(target, &format, core, ro, &mut out)?,
        Command::Inspect { pid, core } => inspect(&TargetArg::new(pid, core)?, ro, &mut out),
        Command::Threads { pid, core } => {
            let snap = take(&TargetArg::new(pid, core)?, &ro.stacks_only(true))?;
            let r = render::threads::render(&snap, None, palette, &mut out);
            let_go(snap);
            r
        }
        Command::Attach {
            target,
            core,
            hold,
            batch,
            sources,
        } => {
            drop(out);
            return attach::run(target, core, hold, batch, sources, ro, palette);
        }
    };
    res.and_then(|_| out.flush()).or_else(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e.to_string())
        }
    })
}

/// `goroscope dump`: Go's traceback (streamed for a live process) or another format. A core
/// is a crash dump: by default it prints like the crash traceback (level 2).
fn dump(
    target: &TargetArg,
    level: Option<u8>,
    mut view: view::ViewArgs,
    ro: &Ctx,
    out: &mut dyn Write,
) -> Result<io::Result<()>, String> {
    view.system = match level {
        Some(l) => l >= 2,
        None => view.system || target.is_core(),
    };
    match target {
        TargetArg::Pid(pid) if view::streams(view.format(view::Format::Go)) => {
            let format = view.format(view::Format::Go);
            let text_out = matches!(format, view::Format::Go | view::Format::Grs);
            live_streamed(*pid, ro, text_out, |meta, live| {
                view::show_stream(meta, live, &view, format, out)
            })
        }
        _ => {
            let objects = matches!(
                view.format(view::Format::Go),
                view::Format::Json | view::Format::Blocked
            );
            let snap = take(target, &ro.stacks_only(!objects))?;
            let r = view::show(&snap, &view, view::Format::Go, out);
            let_go(snap);
            Ok(r)
        }
    }
}

/// `goroscope show`: a snapshot file or text dump, grouped by default when the snapshot had
/// over 100 goroutines; with `full`, as `bt --full` prints each goroutine. A snapshot file's
/// goroutines are shown as they are read when the format allows ([`view::streams`]).
fn show(
    file: &std::path::Path,
    full: bool,
    view: &view::ViewArgs,
    palette: render::color::Palette,
    out: &mut dyn Write,
) -> Result<io::Result<()>, String> {
    use crate::snapshot::store::{self, Opened};
    let bytes = file_bytes(file)?;
    let failed = |e: store::StoreError| about(file, e);
    let default = |n: usize| {
        if n > 100 {
            view::Format::Grouped
        } else {
            view::Format::Go
        }
    };
    let loaded = match store::open(&bytes).map_err(failed)? {
        Opened::Lines(lines) if !full && view::streams(view.format(default(lines.count()))) => {
            let format = view.format(default(lines.count()));
            let meta = lines.snapshot().meta.clone();
            let (loaded, r) = view::show_stream(&meta, FileStream(lines), view, format, out)?;
            notice(file, &loaded);
            return Ok(r);
        }
        Opened::Lines(lines) => lines.whole().map_err(failed)?,
        Opened::Whole(loaded) => loaded,
    };
    notice(file, &loaded);
    let snap = loaded.snapshot;
    let r = if !full {
        Ok(view::show(&snap, view, default(snap.goroutines.len()), out))
    } else if view.format(view::Format::Go) == view::Format::Go {
        Ok(btvalues::show_full(&snap, view, palette, out))
    } else {
        Err("--full prints goroutines as bt --full does; --format json carries the values in each frame".into())
    };
    let_go(snap);
    r
}

/// The goroutines of a snapshot file or text dump that `f` keeps, grouped by `by`: a snapshot
/// file's as they are read, never all held.
fn tally(
    file: &std::path::Path,
    f: &crate::analyze::filter::Filter,
    by: &crate::analyze::group::GroupBy,
) -> Result<crate::analyze::group::Tally, String> {
    use crate::snapshot::store::{self, Opened};
    let bytes = file_bytes(file)?;
    let (loaded, tally) = match store::open(&bytes).map_err(|e| about(file, e))? {
        Opened::Lines(lines) => view::tally_stream(FileStream(lines), f, by)?,
        Opened::Whole(loaded) => {
            let gs = loaded.snapshot.goroutines.iter().filter(|g| f.keep(g));
            let tally = crate::analyze::group::Tally::counting(gs, by);
            (loaded, tally)
        }
    };
    notice(file, &loaded);
    Ok(tally)
}

/// A snapshot file's goroutines as a [`view::Stream`].
struct FileStream<'b>(crate::snapshot::store::Lines<'b>);

impl view::Stream for FileStream<'_> {
    type Done = crate::snapshot::store::Loaded;

    fn meta(done: &Self::Done) -> &crate::snapshot::Meta {
        &done.snapshot.meta
    }

    fn each<C: Default + Send>(
        self,
        fold: &(dyn Fn(&mut C, crate::snapshot::Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<Self::Done, String> {
        self.0.each(fold, sink).map_err(|e| e.to_string())
    }
}

/// A live target's goroutines as a [`view::Stream`], its progress on `bar`.
struct LiveStream<'a> {
    live: &'a LiveTarget,
    bar: &'a mut progress::Bar,
}

impl view::Stream for LiveStream<'_> {
    type Done = (Snapshot, usize);

    fn meta(done: &Self::Done) -> &crate::snapshot::Meta {
        &done.0.meta
    }

    fn each<C: Default + Send>(
        self,
        fold: &(dyn Fn(&mut C, crate::snapshot::Goroutine) + Sync),
        sink: &mut dyn FnMut(C),
    ) -> Result<Self::Done, String> {
        self.live
            .stream(self.bar, fold, sink)
            .map_err(|e| e.to_string())
    }
}

/// `goroscope grs`: delve's goroutine list, or its JSON.
fn grs(
    target: &TargetArg,
    stacks: bool,
    system: bool,
    json: bool,
    ro: &Ctx,
    palette: render::color::Palette,
    out: &mut dyn Write,
) -> Result<io::Result<()>, String> {
    if let (TargetArg::Pid(pid), false) = (target, json) {
        let v = view::ViewArgs {
            system,
            ..Default::default()
        };
        let text = render::stream::Text::grs(
            v.filter()?,
            render::grs::Options {
                stacks,
                system,
                palette,
                ..Default::default()
            },
        );
        return live_streamed(*pid, ro, true, |_, live| {
            view::stream_text(&text, live, out)
        });
    }
    // JSON carries the objects.
    let snap = take(target, &ro.stacks_only(!json))?;
    let r = if json {
        view::show(
            &snap,
            &view::ViewArgs {
                system,
                ..Default::default()
            },
            view::Format::Json,
            out,
        )
    } else {
        render::grs::render(
            &snap.goroutines,
            render::grs::Options {
                stacks,
                system,
                palette,
                ..Default::default()
            },
            out,
        )
    };
    let_go(snap);
    Ok(r)
}

/// Lets a one-shot command's model go without freeing it: the process exits next, and
/// freeing the frames of 100,000 goroutines one by one takes longer than the whole exit.
pub(super) fn let_go<T>(model: T) {
    std::mem::forget(model);
}

/// Reads a snapshot file or a Go text dump whole; one line on stderr when the file does not
/// hold every goroutine (cut short, or written with a deadline).
fn load(path: &std::path::Path) -> Result<Snapshot, String> {
    let bytes = file_bytes(path)?;
    let loaded = crate::snapshot::store::read(&bytes).map_err(|e| about(path, e))?;
    notice(path, &loaded);
    Ok(loaded.snapshot)
}

/// The bytes of a snapshot file or text dump.
fn file_bytes(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| about(path, e))
}

/// An error about a file, as one line: `PATH: what`.
fn about(path: &std::path::Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// One line on stderr when a file read does not hold every goroutine.
fn notice(path: &std::path::Path, loaded: &crate::snapshot::store::Loaded) {
    if let Some(n) = loaded.notice() {
        eprintln!("goroscope: {}: {n}", path.display());
    }
}

/// Samples `count` snapshots and, after each, prints the groups whose size changed since the
/// first, with their sizes at every sample so far.
fn watch(
    pid: i32,
    ro: &Ctx,
    every: std::time::Duration,
    count: u32,
    v: &view::ViewArgs,
    out: &mut dyn Write,
) -> io::Result<()> {
    let fail = |e: String| io::Error::other(e);
    let live = open_live(pid, ro).map_err(fail)?;
    let f = v.filter().map_err(fail)?;
    let by = v.group_by().map_err(fail)?;
    let mut history: Vec<std::collections::HashMap<String, usize>> = Vec::new();
    let mut examples: std::collections::HashMap<String, crate::snapshot::Goroutine> =
        Default::default();
    for i in 0..count.max(1) {
        if i > 0 {
            std::thread::sleep(every);
        }
        let mut bar = progress::Bar::new(true);
        let ((snap, _), tally) = view::tally_stream(
            LiveStream {
                live: &live,
                bar: &mut bar,
            },
            &f,
            &by,
        )
        .map_err(fail)?;
        let total = tally.total();
        let mut counts = std::collections::HashMap::new();
        for grp in tally.into_sorted() {
            counts.insert(grp.key.clone(), grp.count);
            examples.entry(grp.key).or_insert(grp.first);
        }
        history.push(counts);
        writeln!(
            out,
            "sample {}: {} goroutines, target paused {:.1} ms",
            i + 1,
            total,
            snap.meta.pause_ns as f64 / 1e6
        )?;
        if i == 0 {
            continue;
        }
        let first = &history[0];
        let last = &history[history.len() - 1];
        let mut keys: Vec<&String> = last.keys().chain(first.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut rows: Vec<(i64, &String)> = keys
            .into_iter()
            .map(|k| {
                (
                    *last.get(k).unwrap_or(&0) as i64 - *first.get(k).unwrap_or(&0) as i64,
                    k,
                )
            })
            .filter(|(d, _)| *d != 0)
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (d, k) in rows.iter().take(5) {
            let series: Vec<String> = history
                .iter()
                .map(|h| h.get(*k).copied().unwrap_or(0).to_string())
                .collect();
            writeln!(out, "  {d:+} since sample 1 ({}):", series.join(" -> "))?;
            render::diff::describe(&examples[*k], &by, out)?;
        }
        out.flush()?;
    }
    Ok(())
}

/// The global options every command that reads a target uses.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    open: OpenOptions,
    quiet: bool,
    verbose: bool,
}

impl Ctx {
    /// These options, reading the stacks only or not ([`OpenOptions::stacks_only`]).
    fn stacks_only(&self, stacks_only: bool) -> Ctx {
        Ctx {
            open: OpenOptions {
                stacks_only,
                ..self.open
            },
            ..*self
        }
    }

    /// The global options of a command line.
    fn of(cli: &Cli) -> Ctx {
        Ctx {
            open: OpenOptions {
                stripped: cli.no_dwarf,
                force_version: cli.force_go_version,
                nonblocking: cli.nonblocking,
                thread_stacks: cli.thread_stacks,
                stacks_only: false,
            },
            quiet: cli.quiet,
            verbose: cli.verbose,
        }
    }
}

fn open(target: &TargetArg, ctx: &Ctx) -> Result<Target, String> {
    match target {
        TargetArg::Pid(pid) => open_live(*pid, ctx).map(Target::Live),
        TargetArg::Core { core, exe } => {
            let session = CoreTarget::open(core, exe.as_deref(), ctx.open)
                .map_err(|e: DumpError| e.to_string())?;
            announce(&session.rt, ctx);
            Ok(Target::Core(session))
        }
    }
}

/// Opens a live process (see [`open`]).
fn open_live(pid: i32, ctx: &Ctx) -> Result<LiveTarget, String> {
    let session = LiveTarget::open(pid, ctx.open).map_err(|e: DumpError| e.to_string())?;
    announce(&session.rt, ctx);
    Ok(session)
}

/// What an opened target's runtime says before anything is read: its discovery with `-v`,
/// and the warnings of `--force-go-version`.
fn announce(rt: &crate::runtime::Runtime, ctx: &Ctx) {
    let ro = ctx.open;
    if ctx.verbose {
        let _ = write_discovery(rt, &mut io::stderr().lock());
    }
    // Printed even with -q: the output may be wrong, and this says why.
    match (ro.force_version, rt.forced_from) {
        (Some(_), Some(real)) => eprintln!(
            "goroscope: warning: {real} is not supported; reading it with go1.{}'s layouts and rules (--force-go-version)",
            rt.version().minor
        ),
        (Some(f), None) => eprintln!(
            "goroscope: warning: --force-go-version go1.{} ignored: {} is supported",
            f.minor,
            text(&rt.bin.build.go_version)
        ),
        _ => {}
    }
}

fn take(target: &TargetArg, ctx: &Ctx) -> Result<Snapshot, String> {
    take_kept(target, ctx).map(|(snap, _)| snap)
}

/// [`take`], also returning the opened target (a core's memory, for values).
fn take_kept(target: &TargetArg, ctx: &Ctx) -> Result<(Snapshot, Target), String> {
    let mut bar = progress::Bar::new(ctx.quiet);
    crate::capture::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let session = open(target, ctx)?;
    let snap = session
        .snapshot_progress(&mut bar)
        .map_err(|e| e.to_string())?;
    bar.finish();
    if !ctx.quiet {
        warn_core_problems(&session);
        report(target, &snap);
    }
    Ok((snap, session))
}

/// One line on stderr for each problem a core's reader met (a note cut short, a segment
/// beyond the file's end).
fn warn_core_problems(target: &Target) {
    if let Target::Core(c) = target {
        for p in c.mem.core().problems() {
            eprintln!("goroscope: warning: {}", text(&p.to_string()));
        }
    }
}

/// Shows a live target's goroutines with `show` as they are built (each let go once
/// rendered or counted, so memory does not grow with the number of goroutines), then the
/// pause line. `text_out`: the output is written while the dump goes, so no progress line
/// when both go to the terminal.
fn live_streamed(
    pid: i32,
    ctx: &Ctx,
    text_out: bool,
    show: impl FnOnce(
        &crate::snapshot::Meta,
        LiveStream<'_>,
    ) -> Result<((Snapshot, usize), io::Result<()>), String>,
) -> Result<io::Result<()>, String> {
    // SAFETY: isatty only inspects the descriptor.
    let tty = text_out && unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
    let mut bar = progress::Bar::new(ctx.quiet || tty);
    crate::capture::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let live = open_live(pid, ctx)?;
    let meta = live.meta(std::time::Duration::ZERO);
    let ((snap, n), r) = show(
        &meta,
        LiveStream {
            live: &live,
            bar: &mut bar,
        },
    )?;
    bar.finish();
    if !ctx.quiet {
        eprintln!("{}", render::report::pause_line(&snap, n));
    }
    Ok(r)
}

/// The one stderr line after a dump: how many goroutines, and the pause (or the core).
fn report(target: &TargetArg, snap: &Snapshot) {
    let n = snap.goroutines.len();
    if snap.meta.source == crate::snapshot::Source::Core {
        eprintln!(
            "goroscope: {n} goroutine{}, from {}",
            if n == 1 { "" } else { "s" },
            target.describe()
        );
    } else {
        eprintln!("{}", render::report::pause_line(snap, n));
    }
}

/// The discovery chain: every fact found about the runtime and where it came from.
fn write_discovery(rt: &crate::runtime::Runtime, out: &mut dyn Write) -> io::Result<()> {
    for d in &rt.discovery {
        writeln!(
            out,
            "{:<14} {:<24} ({})",
            d.what,
            text(&d.value),
            text(&d.source)
        )?;
    }
    Ok(())
}

fn inspect(target: &TargetArg, ro: &Ctx, out: &mut dyn Write) -> io::Result<()> {
    // The chain is this command's output: not twice with -v.
    let session = match open(
        target,
        &Ctx {
            verbose: false,
            ..*ro
        },
    ) {
        Ok(s) => s,
        Err(e) => return Err(io::Error::other(e)),
    };
    write_discovery(session.rt(), out)?;
    let snap = session
        .snapshot()
        .map_err(|e| io::Error::other(e.to_string()))?;
    writeln!(
        out,
        "{:<14} {:<24} (allgs, not dead)",
        "goroutines",
        snap.goroutines.len()
    )?;
    match &session {
        Target::Core(c) => {
            let core = c.mem.core();
            if let Some(sig) = core.signal() {
                writeln!(
                    out,
                    "{:<14} {:<24} (pr_cursig of the first thread)",
                    "signal", sig
                )?;
            }
            for p in core.problems() {
                writeln!(out, "{:<14} {}", "problem", text(&p.to_string()))?;
            }
        }
        Target::Live(_) => {
            let m = &snap.meta;
            let startup = format!("{:.2} ms", m.startup_ns as f64 / 1e6);
            writeln!(
                out,
                "{:<14} {:<24} (goroscope's start to the first copy: reading the executable, discovery)",
                "startup", startup
            )?;
            let pause = format!("{:.2} ms", m.pause_ns as f64 / 1e6);
            writeln!(
                out,
                "{:<14} {:<24} (frozen window; {:.2} ms of it copying)",
                "pause",
                pause,
                m.copy_ns as f64 / 1e6
            )?;
            writeln!(
                out,
                "{:<14} {:<24} (copied in the frozen window)",
                "copied",
                format!("{} bytes", m.copied_bytes)
            )?;
            writeln!(
                out,
                "{:<14} {:<24} (stacks taken from the copy made before the stop, in {:.2} ms)",
                "precopied",
                format!("{} goroutines", m.stacks_reused),
                m.precopy_ns as f64 / 1e6
            )?;
        }
    }
    writeln!(out, "threads        {}", snap.threads.len())?;
    for t in &snap.threads {
        let g = t
            .goid
            .map(|g| format!("goroutine {g}"))
            .unwrap_or_else(|| "no goroutine".into());
        writeln!(
            out,
            "  tid {:<8} pc {:#x} {:<40} {}",
            t.tid,
            t.pc,
            text(t.function.as_deref().unwrap_or("(not Go code)")),
            g
        )?;
    }
    Ok(())
}
