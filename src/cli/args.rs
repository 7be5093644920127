//! The command line's grammar: the commands, their options and help texts (clap), and the
//! parsers of option values.

use super::{docs, ps, view};
use crate::render;
use crate::version::GoVersion;
use clap::{Args, Parser, Subcommand};
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
        /// every thread's registers (floating-point ones too), its writable and anonymous
        /// memory, NT_FILE and NT_AUXV. `goroscope dump --core`, gdb and dlv open it.
        #[arg(long, value_name = "FILE")]
        core: Option<std::path::PathBuf>,
        /// Finish the file within this long of goroscope's start (e.g. 5s, for a preStop hook's
        /// grace period): goroutines not yet written when it passes are left out, and counted
        /// on stderr and in the file. The capture itself is not cut short.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        deadline: Option<std::time::Duration>,
        /// Also save every frame's arguments and locals from DWARF, read once the target runs
        /// again (the pause does not grow), for `show --full` and `attach FILE` (`args`,
        /// `locals`, `stack -full`). Not with --core: a core holds the memory itself.
        #[arg(long, conflicts_with = "core")]
        values: bool,
    },
    /// Show a snapshot file, or a Go text dump (SIGQUIT output, runtime.Stack, pprof debug=2).
    #[command(
        after_help = "Examples:\n  goroscope show app.gsnap\n  goroscope show --state 'chan send' --group-by go-statement app.gsnap\n  goroscope show --format pprof app.gsnap > goroutines.pb.gz\n  goroscope show sigquit.txt"
    )]
    Show {
        /// The snapshot file or text dump.
        file: std::path::PathBuf,
        /// Each goroutine's frames as `bt --full` prints them: numbered, with their arguments,
        /// pending defers and the values a `snapshot --values` file holds.
        #[arg(long)]
        full: bool,
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

/// `--force-go-version`: `1.27`, `go1.27` or `1.27.3`.
fn parse_go_version(s: &str) -> Result<GoVersion, String> {
    crate::version::parse_force(s).ok_or_else(|| format!("{s:?} is not a Go version like 1.27"))
}
