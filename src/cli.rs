//! The command line: thin commands over the library.

pub mod btvalues;
pub mod docs;
pub mod leaks;
pub mod progress;
pub mod ps;
pub mod view;

use crate::collect::{CoreSession, DumpError, LiveSession};
use crate::render;
use crate::render::safe::text;
use crate::runtime::OpenOptions;
use crate::snapshot::Snapshot;
use crate::version::GoVersion;
use clap::{Args, Parser, Subcommand};
use std::io::{self, Write};
use std::path::PathBuf;

/// `--version`: the crate's version, and `(test-hooks)` in a build with the test-only hold
/// hooks (`target::live::TEST_HOOKS`), so the tests can check the binary they run.
const VERSION: &str = if crate::target::live::TEST_HOOKS {
    concat!(env!("CARGO_PKG_VERSION"), " (test-hooks)")
} else {
    env!("CARGO_PKG_VERSION")
};

/// Look inside a running Go program from the outside: every goroutine's stack, without
/// stopping it for more than a moment.
#[derive(Debug, Parser)]
#[command(name = "goroscope", version = VERSION, about, long_about = None, after_help = top_help())]
pub struct Cli {
    /// Say nothing on stderr (no pause report, no progress line).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Also print on stderr how the runtime's data was found: every fact and its source
    /// (what `inspect` prints first).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Ignore DWARF and the symbol table: use the stripped-binary path on any binary.
    #[arg(long, global = true)]
    pub no_dwarf: bool,
    /// Never stop the target, not even for a moment (no ptrace): read it while it runs,
    /// validating each goroutine against torn reads. Goroutines that kept changing (and
    /// running ones) are shown without a stack; thread registers are not read.
    #[arg(long, global = true)]
    pub nonblocking: bool,
    /// Also unwind every thread's own stack from its registers, for `--format json` and
    /// snapshots (`threads[].frames`); `attach` always does. Copies a little more while the
    /// target is stopped.
    #[arg(long, global = true)]
    pub thread_stacks: bool,
    /// For a program built by a Go version goroscope does not support, read it with the
    /// layouts and rules of this supported version instead (e.g. 1.27 for a newer Go).
    #[arg(long, global = true, value_name = "X.Y", value_parser = parse_go_version)]
    pub force_go_version: Option<GoVersion>,
    /// Colour the delve-shaped views (grs, bt, threads, attach): auto (stdout a terminal,
    /// NO_COLOR unset), always, never.
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    pub color: render::color::When,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The top command's help after the options: examples, the supported Go versions and exit
/// codes.
fn top_help() -> String {
    format!(
        "{}\n\nReads programs built by {}, stripped or not (--force-go-version X.Y reads another\nversion with a supported version's layouts and rules).\n\n{}",
        TOP_EXAMPLES,
        crate::version::supported_versions_text(),
        TOP_EXIT
    )
}

/// The top command's examples.
const TOP_EXAMPLES: &str = "Examples:
  goroscope ps                          every Go process on this host
  goroscope dump 1234                   every goroutine of process 1234, like SIGQUIT prints them
  goroscope grs 1234                    one line a goroutine
  goroscope snapshot 1234 -o app.gsnap  save it to look at later (show, diff)
  goroscope completions bash > /etc/bash_completion.d/goroscope

A pid is one of goroscope's pid namespace: in the host, the host pid of a containerized
process (goroscope ps shows both); inside the container (kubectl debug --target), its own.";

/// The top command's exit codes.
const TOP_EXIT: &str = "Exit status:
  0  success
  1  an error, explained in one line on stderr (no such process, not a Go program, not
     permitted to trace, already traced, exited during the dump, unsupported Go version, ...)
  2  a usage error (unknown option, missing argument; a missing pid lists the Go processes)
  3  deadlocks: a deadlock was found";

/// Read a core file instead of a process.
#[derive(Debug, Clone, Args, Default)]
pub struct CoreArgs {
    /// Read this ELF core file (kernel, gcore or qemu-user) instead of a live process.
    #[arg(long, value_name = "FILE")]
    pub core: Option<PathBuf>,
    /// The core's executable (default: the path the core names, or pr_fname next to the core).
    #[arg(long, value_name = "BINARY", requires = "core")]
    pub exe: Option<PathBuf>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every goroutine in Go's own traceback format.
    #[command(
        after_help = "Examples:\n  goroscope dump 1234\n  goroscope dump --system 1234 > stacks.txt\n  goroscope dump --core core.1234 --exe ./server\n\nOn a core the default is --level 2: the format of the runtime's crash traceback (GOTRACEBACK=crash)."
    )]
    Dump {
        /// Process id (not with --core).
        #[arg(required_unless_present = "core", conflicts_with = "core")]
        pid: Option<i32>,
        /// GOTRACEBACK level: 1 (all: user goroutines and frames) or 2 (system/crash: every
        /// goroutine, `gp= m=` headers, `fp= sp= pc=`). Default 1 for a process (2 with
        /// --system), 2 for a core.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=2), conflicts_with = "system")]
        level: Option<u8>,
        /// Format, grouping, filters.
        #[command(flatten)]
        view: view::ViewArgs,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// Leaked goroutines: blocked on channels or sync objects nothing that may still run can
    /// reach (the runtime's goroutineleak profile, on every supported Go version). Exit
    /// status 0 with none, 3 with some.
    #[command(
        after_help = "Examples:\n  goroscope leaks 1234\n  goroscope leaks --format json 1234\n  goroscope leaks --core core.1234\n\nThe target stays stopped while its globals and the heap's spans that may hold pointers are copied: the pause grows with the heap (stderr says how long). With --nonblocking it is never stopped: two copies are analysed while it runs, and only the goroutines both find leaked, blocked the same way, are reported."
    )]
    Leaks {
        /// Process id (not with --core).
        #[arg(required_unless_present = "core", conflicts_with = "core")]
        pid: Option<i32>,
        /// Output: `go` (the leaked goroutines in Go's traceback format, then a summary by
        /// creation site and stack), `grouped` (identical stacks grouped), `pprof` (a gzipped
        /// goroutine profile of the leaked goroutines) or `json`.
        #[arg(long, value_name = "FORMAT", default_value = "go", value_parser = ["go", "grouped", "pprof", "json"])]
        format: String,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// One line a goroutine, like delve's `goroutines`.
    #[command(
        after_help = "Examples:\n  goroscope grs 1234\n  goroscope grs -t 1234\n  goroscope grs --json 1234 | jq '.snapshot.goroutines | length'\n  goroscope grs --core core.1234"
    )]
    Grs {
        /// Process id (not with --core).
        #[arg(required_unless_present = "core", conflicts_with = "core")]
        pid: Option<i32>,
        /// Print each goroutine's stack.
        #[arg(short = 't', long)]
        stacks: bool,
        /// Include runtime-internal goroutines.
        #[arg(long)]
        system: bool,
        /// Print the snapshot model as JSON instead (docs/json-schema.md).
        #[arg(long, conflicts_with = "stacks")]
        json: bool,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// One goroutine's stack, numbered like delve's `bt`.
    #[command(
        after_help = "Examples:\n  goroscope bt 1234 1\n  goroscope bt --full 1234 1\n  goroscope bt --json 1234 1\n  goroscope bt --core core.1234 1"
    )]
    Bt {
        /// Process id and goroutine id; only the goroutine id with --core.
        #[arg(value_name = "[PID] GOID", num_args = 1..=2, required = true)]
        ids: Vec<u64>,
        /// Print the goroutine as JSON (the snapshot model's goroutine, docs/json-schema.md).
        #[arg(long)]
        json: bool,
        /// Below each frame, its arguments, its pending defers and its arguments and locals from
        /// DWARF (as the session's `stack -full`; with --json, each frame's `values`).
        #[arg(long, short_alias = 'f')]
        full: bool,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// Save everything a dump reads to a file, to look at later (`show`, `diff`) on any machine.
    #[command(
        after_help = "Examples:\n  goroscope snapshot 1234 -o before-restart.gsnap\n  goroscope show before-restart.gsnap"
    )]
    Snapshot {
        /// Process id.
        pid: i32,
        /// The snapshot file to write (gzip-compressed JSON).
        #[arg(short, long, required_unless_present = "core")]
        output: Option<std::path::PathBuf>,
        /// Also (or only) write an ELF core of the process, taken in the same frozen window:
        /// every thread's registers, its writable and anonymous memory, NT_FILE and NT_AUXV.
        /// `goroscope dump --core`, gdb and dlv open it.
        #[arg(long, value_name = "FILE")]
        core: Option<std::path::PathBuf>,
        /// Finish the file within this long of goroscope's start (e.g. 5s, for a preStop hook's
        /// grace period): goroutines not yet written when it passes are left out, and counted
        /// on stderr and in the file. The capture itself is not cut short.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        deadline: Option<std::time::Duration>,
    },
    /// Show a snapshot file, or a Go text dump (SIGQUIT output, runtime.Stack, pprof debug=2).
    #[command(
        after_help = "Examples:\n  goroscope show app.gsnap\n  goroscope show --state 'chan send' --group-by go-statement app.gsnap\n  goroscope show --format pprof app.gsnap > goroutines.pb.gz\n  goroscope show sigquit.txt"
    )]
    Show {
        /// The snapshot file or text dump.
        file: std::path::PathBuf,
        /// Format, grouping, filters.
        #[command(flatten)]
        view: view::ViewArgs,
    },
    /// What changed between two snapshots of the same program: groups that grew, shrank,
    /// appeared or vanished.
    #[command(after_help = "Examples:\n  goroscope diff monday.gsnap tuesday.gsnap")]
    Diff {
        /// The earlier snapshot.
        before: std::path::PathBuf,
        /// The later snapshot.
        after: std::path::PathBuf,
        /// Grouping and filters.
        #[command(flatten)]
        view: view::ViewArgs,
    },
    /// Take a snapshot every interval and show which groups keep growing (a leak).
    #[command(after_help = "Examples:\n  goroscope watch 1234 --every 10s --count 6")]
    Watch {
        /// Process id.
        pid: i32,
        /// Interval between samples (e.g. 500ms, 10s, 1m).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        every: std::time::Duration,
        /// Number of samples.
        #[arg(long, default_value_t = 6)]
        count: u32,
        /// Grouping and filters.
        #[command(flatten)]
        view: view::ViewArgs,
    },
    /// An interactive session like delve's over a snapshot; the target runs on between commands.
    #[command(
        after_help = "Examples:\n  goroscope attach 1234\n  goroscope attach --hold 1234\n  echo 'grs -with state chan receive' | goroscope attach 1234 --batch -\n  goroscope attach app.gsnap\n  goroscope attach --core core.1234 --exe ./server\n\nCommands: goroutines (grs), goroutine (gr), stack (bt), frame, up, down, list, threads, thread,\nblocked, holders, refresh, diff, snapshot, help, exit (quit, detach). `help CMD` inside says more."
    )]
    Attach {
        /// Process id, or a file to explore: a snapshot (`goroscope snapshot`) or a Go text dump.
        #[arg(
            value_name = "PID|FILE",
            required_unless_present = "core",
            conflicts_with = "core"
        )]
        target: Option<String>,
        #[command(flatten)]
        core: CoreArgs,
        /// Keep the target stopped for the whole session (released on every way out).
        #[arg(long)]
        hold: bool,
        /// Run the commands in FILE (`-`: stdin), one a line, printing their output.
        #[arg(long, value_name = "FILE")]
        batch: Option<PathBuf>,
        /// For a snapshot, a text dump or a core: `list` reads the source files it names inside
        /// DIR, as you (`/`: at their paths here). Without it a saved session lists no source.
        #[arg(long, value_name = "DIR")]
        sources: Option<PathBuf>,
    },
    /// Deadlocks that locks held through pending deferred unlocks prove: a goroutine waiting
    /// for a lock it holds, goroutines waiting in a cycle for each other's locks, a lock held
    /// by a goroutine blocked on a channel nobody serves, a file the process waits in flock(2)
    /// to lock while it holds it locked itself.
    #[command(
        after_help = "Examples:\n  goroscope deadlocks 1234\n  goroscope deadlocks --format json 1234\n  goroscope deadlocks app.gsnap\n  goroscope deadlocks --core core.1234\n\nExit status: 0 no deadlock found, 3 a deadlock found (the first line names the culprit\ngoroutine, its frame holding the lock, and the lock; or a lock held by nobody), 1 an error."
    )]
    Deadlocks {
        /// Process id, or a snapshot file (`goroscope snapshot`); not with --core.
        #[arg(
            value_name = "PID|FILE",
            required_unless_present = "core",
            conflicts_with = "core"
        )]
        target: Option<String>,
        /// `text` or `json` (docs/json-schema.md).
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// Every thread: where it is and the goroutine it runs, like delve's `threads`.
    #[command(
        after_help = "Examples:\n  goroscope threads 1234\n  goroscope threads --core core.1234"
    )]
    Threads {
        /// Process id (not with --core).
        #[arg(required_unless_present = "core", conflicts_with = "core")]
        pid: Option<i32>,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// How goroscope found the runtime's data in this process.
    #[command(
        after_help = "Examples:\n  goroscope inspect 1234\n  goroscope inspect --core core.1234"
    )]
    Inspect {
        /// Process id (not with --core).
        #[arg(required_unless_present = "core", conflicts_with = "core")]
        pid: Option<i32>,
        #[command(flatten)]
        core: CoreArgs,
    },
    /// Every Go process on this host (in goroscope's pid namespace), like gops: pid, parent,
    /// threads, Go version, module, binary. Reads /proc and build info only; stops nothing.
    #[command(
        after_help = "Examples:\n  goroscope ps\n  goroscope ps --json | jq '.[] | select(.go_version < \"go1.22\")'\n\nBINARY notes: the pid inside the process's own pid namespace (a container), and `stripped`\n(no symbol table and no DWARF), `no DWARF` or `no symtab`."
    )]
    Ps(ps::PsArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    #[command(
        after_help = "Examples:\n  goroscope completions bash > /etc/bash_completion.d/goroscope\n  goroscope completions zsh > \"${fpath[1]}/_goroscope\"\n  goroscope completions fish > ~/.config/fish/completions/goroscope.fish"
    )]
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff), or write one page a command into a directory.
    #[command(
        after_help = "Examples:\n  goroscope man | man -l -\n  goroscope man --dir /usr/local/share/man/man1"
    )]
    Man(docs::ManArgs),
}

/// What a command reads: a live process or a core file.
#[derive(Debug, Clone)]
enum Target {
    Pid(i32),
    Core { core: PathBuf, exe: Option<PathBuf> },
}

impl Target {
    fn new(pid: Option<i32>, c: CoreArgs) -> Result<Target, String> {
        match (c.core, pid) {
            (Some(core), _) => Ok(Target::Core { core, exe: c.exe }),
            (None, _) if c.exe.is_some() => {
                Err("--exe names a core's executable; use it with --core (a process's executable is found from its pid)".into())
            }
            (None, Some(pid)) => Ok(Target::Pid(pid)),
            // clap requires one of them.
            (None, None) => Err("give a process id or --core FILE".into()),
        }
    }

    fn is_core(&self) -> bool {
        matches!(self, Target::Core { .. })
    }

    /// How messages name it: `process 1234`, `core core.1234`.
    fn describe(&self) -> String {
        match self {
            Target::Pid(p) => format!("process {p}"),
            Target::Core { core, .. } => format!("core {}", core.display()),
        }
    }

    /// The command-line words that select it again: `1234`, `--core core.1234`.
    fn args(&self) -> String {
        match self {
            Target::Pid(p) => p.to_string(),
            Target::Core { core, exe: None } => format!("--core {}", core.display()),
            Target::Core { core, exe: Some(e) } => {
                format!("--core {} --exe {}", core.display(), e.display())
            }
        }
    }
}

/// A discovered target of either kind: everything after discovery is shared.
#[allow(clippy::large_enum_variant)] // one a command; both variants are large
enum Session {
    Live(LiveSession),
    Core(CoreSession),
}

impl Session {
    fn rt(&self) -> &crate::runtime::Runtime {
        match self {
            Session::Live(s) => &s.rt,
            Session::Core(s) => &s.rt,
        }
    }

    fn snapshot(&self) -> Result<Snapshot, DumpError> {
        self.snapshot_progress(&mut ())
    }

    fn snapshot_progress(
        &self,
        p: &mut dyn crate::collect::Progress,
    ) -> Result<Snapshot, DumpError> {
        match self {
            Session::Live(s) => s.snapshot_progress(p),
            Session::Core(s) => s.snapshot_progress(p),
        }
    }
}

/// Pause before the second snapshot that confirms a verdict resting on two moments.
const CONFIRM_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// The deadlock verdicts of `snap`; for a live target with a verdict that must be confirmed
/// ([`crate::analyze::deadlock::needs_confirming`]), those of a second snapshot taken
/// [`CONFIRM_AFTER`] later, kept as [`crate::analyze::deadlock::confirm`] says.
fn confirmed_verdicts(
    snap: Snapshot,
    live: Option<Target>,
    ro: &Ctx,
) -> Result<(Snapshot, Vec<crate::analyze::deadlock::Verdict>), String> {
    use crate::analyze::deadlock;
    let found = deadlock::find(&snap);
    let Some(target) = live.filter(|_| found.iter().any(deadlock::needs_confirming)) else {
        return Ok((snap, found));
    };
    std::thread::sleep(CONFIRM_AFTER);
    let again = take(&target, ro)?;
    let second = deadlock::confirm(&found, deadlock::find(&again));
    Ok((again, second))
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
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let quiet = cli.quiet;
    let ro = Ctx {
        open: OpenOptions {
            stripped: cli.no_dwarf,
            force_version: cli.force_go_version,
            nonblocking: cli.nonblocking,
            thread_stacks: cli.thread_stacks,
        },
        quiet,
        verbose: cli.verbose,
    };
    let ro = &ro;
    let palette = render::color::Palette::new(cli.color);
    let res = match cli.command {
        Command::Dump {
            pid,
            level,
            mut view,
            core,
        } => {
            let target = Target::new(pid, core)?;
            // A core is a crash dump: by default print it like the crash traceback.
            view.system = match level {
                Some(l) => l >= 2,
                None => view.system || target.is_core(),
            };
            match target {
                // Go's text of a live process is streamed.
                Target::Pid(pid) if view.format(view::Format::Go) == view::Format::Go => {
                    dump_streamed(pid, &view, ro, &mut out)?
                }
                _ => {
                    let snap = take(&target, ro)?;
                    view::show(&snap, &view, view::Format::Go, &mut out)
                }
            }
        }
        Command::Snapshot {
            pid,
            output,
            core,
            deadline,
        } => {
            let deadline = deadline.map(|d| crate::startup::started() + d);
            let snap = match &core {
                None => take(&Target::Pid(pid), ro)?,
                Some(path) => snapshot_core(pid, path, ro)?,
            };
            if let Some(output) = output {
                let end = crate::snapshot::store::save(&snap, &output, deadline)
                    .map_err(|e| format!("{}: {e}", output.display()))?;
                if end.left_out > 0 {
                    // Said even with -q: the file is not the whole snapshot.
                    eprintln!(
                        "goroscope: deadline passed: wrote {} of {} goroutines to {}, {} left out",
                        end.written,
                        snap.goroutines.len(),
                        output.display(),
                        end.left_out
                    );
                } else if !quiet {
                    eprintln!("goroscope: wrote {}", output.display());
                }
            }
            Ok(())
        }
        Command::Show { file, view } => {
            let snap = load(&file)?;
            let default = if snap.goroutines.len() > 100 {
                view::Format::Grouped
            } else {
                view::Format::Go
            };
            view::show(&snap, &view, default, &mut out)
        }
        Command::Diff {
            before,
            after,
            view,
        } => {
            let (a, b) = (load(&before)?, load(&after)?);
            view::diff(&a, &b, &view, &mut out)
        }
        Command::Watch {
            pid,
            every,
            count,
            view,
        } => watch(pid, ro, every, count, &view, &mut out),
        Command::Leaks { pid, format, core } => {
            let target = Target::new(pid, core)?;
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
        } => {
            let snap = take(&Target::new(pid, core)?, ro)?;
            if json {
                view::show(
                    &snap,
                    &view::ViewArgs {
                        system,
                        ..Default::default()
                    },
                    view::Format::Json,
                    &mut out,
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
                    &mut out,
                )
            }
        }
        Command::Ps(a) => ps::run(&a, quiet, &mut out),
        Command::Completions(a) => docs::completions(&a, &mut out),
        Command::Man(a) => docs::man(&a, &mut out),
        Command::Bt {
            ids,
            json,
            full,
            core,
        } => {
            let (target, goid) = match (core.core.is_some(), ids.as_slice()) {
                (true, &[goid]) => (Target::new(None, core)?, goid),
                (false, &[pid, goid]) => {
                    let pid =
                        i32::try_from(pid).map_err(|_| format!("{pid} is not a process id"))?;
                    (Target::new(Some(pid), core)?, goid)
                }
                (true, _) => return Err(
                    "with --core, bt takes only the goroutine id: goroscope bt --core FILE GOID"
                        .into(),
                ),
                (false, _) => {
                    return Err(
                        "bt takes a process id and a goroutine id: goroscope bt PID GOID".into(),
                    );
                }
            };
            // The pause is reported only once the goroutine is found: an error stays one line.
            let (snap, session) = if full {
                let session = open(&target, &Ctx { quiet: true, ..*ro })?;
                let (snap, kept) = match &session {
                    Session::Live(l) => {
                        let (s, k) = l.snapshot_kept().map_err(|e| e.to_string())?;
                        (s, Some(k))
                    }
                    Session::Core(c) => (c.snapshot().map_err(|e| e.to_string())?, None),
                };
                (snap, Some((session, kept)))
            } else {
                (take(&target, &Ctx { quiet: true, ..*ro })?, None)
            };
            let g = snap
                .goroutines
                .iter()
                .find(|g| g.id == goid)
                .ok_or_else(|| {
                    format!(
                        "no goroutine {goid} in {}; `goroscope grs {}` lists them",
                        target.describe(),
                        target.args()
                    )
                })?;
            if !quiet {
                report(&target, &snap);
            }
            let mut g = g.clone();
            let notes = match &session {
                Some((Session::Live(l), Some(k))) => btvalues::fill(
                    &btvalues::Source {
                        rt: &l.rt,
                        snapshot: &k.image,
                        process: Some(&l.proc),
                        threads: &k.threads,
                    },
                    &mut g,
                ),
                Some((Session::Core(c), _)) => btvalues::fill(
                    &btvalues::Source {
                        rt: &c.rt,
                        snapshot: &c.mem,
                        process: None,
                        threads: c.mem.core().threads(),
                    },
                    &mut g,
                ),
                _ => btvalues::Notes::default(),
            };
            let (before, after) = (notes.before.as_deref(), notes.after);
            if json {
                // The notes go to stderr: stdout is the goroutine's JSON only.
                if !quiet {
                    for n in before.into_iter().chain(after) {
                        eprintln!("goroscope: {n}");
                    }
                }
                render::safe::write_json(&mut out, &g).and_then(|_| writeln!(out))
            } else {
                let opts = render::bt::Options {
                    palette,
                    full,
                    ..Default::default()
                };
                let line = |out: &mut dyn Write, n: Option<&str>| match n {
                    Some(n) => writeln!(out, "{n}"),
                    None => Ok(()),
                };
                line(&mut out, before)
                    .and_then(|_| render::bt::frames(&g, &opts, &mut out))
                    .and_then(|_| line(&mut out, after))
            }
        }
        Command::Deadlocks {
            target,
            format,
            core,
        } => {
            let (snap, live) = match target.as_deref().map(|t| (t, t.parse::<i32>())) {
                Some((file, Err(_))) => (load(std::path::Path::new(file))?, None),
                pid => {
                    let target = Target::new(pid.and_then(|p| p.1.ok()), core)?;
                    (take(&target, ro)?, Some(target).filter(|t| !t.is_core()))
                }
            };
            let (snap, found) = confirmed_verdicts(snap, live, ro)?;
            if !found.is_empty() {
                STATUS.store(3, std::sync::atomic::Ordering::Relaxed);
            }
            if format == "json" {
                render::deadlocks::json(&snap, &found, &mut out)
            } else {
                render::deadlocks::plain(&snap, &found, &mut out)
            }
        }
        Command::Inspect { pid, core } => inspect(&Target::new(pid, core)?, ro, &mut out),
        Command::Threads { pid, core } => {
            let snap = take(&Target::new(pid, core)?, ro)?;
            render::threads::render(&snap, None, palette, &mut out)
        }
        Command::Attach {
            target,
            core,
            hold,
            batch,
            sources,
        } => {
            drop(out);
            // `thread TID` then `bt` shows the thread's own stack.
            let ro = &Ctx {
                open: OpenOptions {
                    thread_stacks: true,
                    ..ro.open
                },
                ..*ro
            };
            let opts = crate::session::front::Options {
                hold,
                batch,
                palette,
                quiet,
            };
            let pid = target.as_deref().and_then(|t| t.parse::<i32>().ok());
            if let (Some(pid), None) = (pid, &core.core) {
                if sources.is_some() {
                    return Err("--sources is for a saved session; a process's source files are read in its own file system, as its user".into());
                }
                let live = open_live(pid, ro)?;
                return crate::session::front::attach(&live, opts);
            }
            if hold {
                return Err(
                    "--hold holds a live process; a saved snapshot or a core has none".into(),
                );
            }
            let (snap, what, session) = match target {
                Some(file) => (
                    load(std::path::Path::new(&file))?,
                    format!("snapshot {file}"),
                    None,
                ),
                None => {
                    let t = Target::new(None, core)?;
                    let (snap, session) = take_kept(&t, &Ctx { quiet: true, ..*ro })?;
                    (snap, t.describe(), Some(session))
                }
            };
            let core = match &session {
                Some(Session::Core(c)) => Some(c),
                _ => None,
            };
            return crate::session::front::explore(snap, what, sources, core, opts);
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

/// Reads a snapshot file or a Go text dump; one line on stderr when the file does not hold
/// every goroutine (cut short, or written with a deadline).
fn load(path: &std::path::Path) -> Result<Snapshot, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let loaded =
        crate::snapshot::store::read(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(n) = loaded.notice() {
        eprintln!("goroscope: {}: {n}", path.display());
    }
    Ok(loaded.snapshot)
}

/// `500ms`, `10s`, `2m`, or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: use ms, s, m or h")),
    };
    if !(secs > 0.0 && secs < 1e7) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
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
    use crate::analyze::group;
    let fail = |e: String| io::Error::other(e);
    let session = open(&Target::Pid(pid), ro).map_err(fail)?;
    let f = v.filter().map_err(fail)?;
    let by = v.group_by().map_err(fail)?;
    let mut history: Vec<std::collections::HashMap<String, usize>> = Vec::new();
    let mut examples: std::collections::HashMap<String, crate::snapshot::Goroutine> =
        Default::default();
    for i in 0..count.max(1) {
        if i > 0 {
            std::thread::sleep(every);
        }
        let snap = session.snapshot().map_err(|e| fail(e.to_string()))?;
        let mut counts = std::collections::HashMap::new();
        for g in snap.goroutines.iter().filter(|g| f.keep(g)) {
            let k = group::key(g, &by);
            *counts.entry(k.clone()).or_insert(0) += 1;
            examples.entry(k).or_insert_with(|| g.clone());
        }
        let total: usize = counts.values().sum();
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

fn open(target: &Target, ctx: &Ctx) -> Result<Session, String> {
    match target {
        Target::Pid(pid) => open_live(*pid, ctx).map(Session::Live),
        Target::Core { core, exe } => {
            let session = CoreSession::open(core, exe.as_deref(), ctx.open)
                .map_err(|e: DumpError| e.to_string())?;
            announce(&session.rt, ctx);
            Ok(Session::Core(session))
        }
    }
}

/// Opens a live process (see [`open`]).
fn open_live(pid: i32, ctx: &Ctx) -> Result<LiveSession, String> {
    let session = LiveSession::open(pid, ctx.open).map_err(|e: DumpError| e.to_string())?;
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

/// `--force-go-version`: `1.27`, `go1.27` or `1.27.3`.
fn parse_go_version(s: &str) -> Result<GoVersion, String> {
    crate::version::parse_force(s).ok_or_else(|| format!("{s:?} is not a Go version like 1.27"))
}

fn take(target: &Target, ctx: &Ctx) -> Result<Snapshot, String> {
    take_kept(target, ctx).map(|(snap, _)| snap)
}

/// [`take`], also returning the opened target (a core's memory, for values).
fn take_kept(target: &Target, ctx: &Ctx) -> Result<(Snapshot, Session), String> {
    let mut bar = progress::Bar::new(ctx.quiet);
    crate::collect::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let session = open(target, ctx)?;
    let snap = session
        .snapshot_progress(&mut bar)
        .map_err(|e| e.to_string())?;
    bar.finish();
    if !ctx.quiet {
        if let Session::Core(c) = &session {
            for p in c.mem.core().problems() {
                eprintln!("goroscope: warning: {}", text(&p.to_string()));
            }
        }
        report(target, &snap);
    }
    Ok((snap, session))
}

/// `dump` of a live target in Go's format: each goroutine is written as soon as it is built
/// and then let go, so memory does not grow with the number of goroutines.
fn dump_streamed(
    pid: i32,
    v: &view::ViewArgs,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<io::Result<()>, String> {
    // A progress line would break into the text if both go to the terminal.
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
    let mut bar = progress::Bar::new(ctx.quiet || tty);
    crate::collect::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let live = open_live(pid, ctx)?;
    let meta = live.meta(std::time::Duration::ZERO);
    let text = render::stream::GoText::new(&meta, v.filter()?, view::traceback_options(&meta, v));
    let mut w = render::stream::ChunkWriter::new(out, &text);
    let (snap, n) = live
        .stream(
            &mut bar,
            &|c: &mut render::stream::TextChunk, g| text.fold(c, g),
            &mut |c| w.write(c),
        )
        .map_err(|e| e.to_string())?;
    bar.finish();
    if !ctx.quiet {
        eprintln!("{}", render::report::pause_line(&snap, n));
    }
    Ok(w.finish())
}

/// The one stderr line after a dump: how many goroutines, and the pause (or the core).
fn report(target: &Target, snap: &Snapshot) {
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

/// A snapshot of a live process and, from the same frozen window, an ELF core at `path`.
fn snapshot_core(pid: i32, path: &std::path::Path, ro: &Ctx) -> Result<Snapshot, String> {
    let quiet = ro.quiet;
    use crate::target::core::write;
    let session = open_live(pid, ro)?;
    let arch = session.rt.bin.arch;
    let (snap, captured) = session
        .snapshot_with(|threads| write::capture(pid, arch, threads))
        .map_err(|e| e.to_string())?;
    let captured =
        captured.map_err(|e| format!("cannot read process {pid}'s memory for the core: {e}"))?;
    let size = write::write(path, &captured)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if !quiet {
        eprintln!(
            "goroscope: {} goroutines, target paused {:.1} ms; wrote core {} ({} threads, {} bytes of memory, {} bytes on disk at most)",
            snap.goroutines.len(),
            snap.meta.pause_ns as f64 / 1e6,
            path.display(),
            captured.threads.len(),
            captured.copied_bytes(),
            size
        );
    }
    Ok(snap)
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

fn inspect(target: &Target, ro: &Ctx, out: &mut dyn Write) -> io::Result<()> {
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
        Session::Core(c) => {
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
        Session::Live(_) => {
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
