//! The command line: thin commands over the library.

use crate::collect::{DumpError, LiveSession};
use crate::render;
use crate::runtime::OpenOptions;
use crate::snapshot::Snapshot;
use clap::{Parser, Subcommand};
use std::io::{self, Write};

/// Look inside a running Go program from the outside: every goroutine's stack, without
/// stopping it for more than a moment.
#[derive(Debug, Parser)]
#[command(name = "goroscope", version, about, long_about = None)]
pub struct Cli {
    /// Say nothing on stderr (no pause report).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Ignore DWARF and the symbol table: use the stripped-binary path on any binary.
    #[arg(long, global = true)]
    pub no_dwarf: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every goroutine in Go's own traceback format.
    #[command(after_help = "Examples:\n  goroscope dump 1234\n  goroscope dump --system 1234 > stacks.txt")]
    Dump {
        /// Process id.
        pid: i32,
        /// Show runtime-internal goroutines and frames too (like GOTRACEBACK=system).
        #[arg(long)]
        system: bool,
    },
    /// One line a goroutine, like delve's `goroutines`.
    #[command(after_help = "Examples:\n  goroscope grs 1234\n  goroscope grs -t 1234")]
    Grs {
        /// Process id.
        pid: i32,
        /// Print each goroutine's stack.
        #[arg(short = 't', long)]
        stacks: bool,
        /// Include runtime-internal goroutines.
        #[arg(long)]
        system: bool,
    },
    /// One goroutine's stack, numbered like delve's `bt`.
    #[command(after_help = "Examples:\n  goroscope bt 1234 1")]
    Bt {
        /// Process id.
        pid: i32,
        /// Goroutine id.
        goid: u64,
    },
    /// How goroscope found the runtime's data in this process.
    #[command(after_help = "Examples:\n  goroscope inspect 1234")]
    Inspect {
        /// Process id.
        pid: i32,
    },
}

/// Runs a parsed command line. Errors come back as one-line messages.
pub fn run(cli: Cli) -> Result<(), String> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let quiet = cli.quiet;
    let ro = OpenOptions { stripped: cli.no_dwarf };
    let res = match cli.command {
        Command::Dump { pid, system } => {
            let snap = take(pid, ro, quiet)?;
            let opts =
                render::traceback::Options { level: if system { 2 } else { 1 }, labels: snap.meta.traceback_labels };
            render::traceback::render(&snap, opts, &mut out)
        }
        Command::Grs { pid, stacks, system } => {
            let snap = take(pid, ro, quiet)?;
            render::grs::render(&snap, render::grs::Options { stacks, system, selected: None }, &mut out)
        }
        Command::Bt { pid, goid } => {
            let snap = take(pid, ro, quiet)?;
            let g = snap
                .goroutines
                .iter()
                .find(|g| g.id == goid)
                .ok_or_else(|| format!("no goroutine {goid} in process {pid}; `goroscope grs {pid}` lists them"))?;
            render::bt::frames(g, 0, &mut out)
        }
        Command::Inspect { pid } => inspect(pid, ro, &mut out),
    };
    res.and_then(|_| out.flush()).or_else(|e| if e.kind() == io::ErrorKind::BrokenPipe { Ok(()) } else { Err(e.to_string()) })
}

fn open(pid: i32, ro: OpenOptions) -> Result<LiveSession, String> {
    LiveSession::open(pid, ro).map_err(|e: DumpError| e.to_string())
}

fn take(pid: i32, ro: OpenOptions, quiet: bool) -> Result<Snapshot, String> {
    let session = open(pid, ro)?;
    let snap = session.snapshot().map_err(|e| e.to_string())?;
    if !quiet {
        let n = snap.goroutines.len();
        eprintln!(
            "goroscope: {} goroutine{}, target paused {:.1} ms",
            n,
            if n == 1 { "" } else { "s" },
            snap.meta.pause_ns as f64 / 1e6
        );
    }
    Ok(snap)
}

fn inspect(pid: i32, ro: OpenOptions, out: &mut dyn Write) -> io::Result<()> {
    let session = match open(pid, ro) {
        Ok(s) => s,
        Err(e) => return Err(io::Error::other(e)),
    };
    for d in &session.rt.discovery {
        writeln!(out, "{:<14} {:<24} ({})", d.what, d.value, d.source)?;
    }
    let snap = session.snapshot().map_err(|e| io::Error::other(e.to_string()))?;
    writeln!(out, "{:<14} {:<24} (allgs, not dead)", "goroutines", snap.goroutines.len())?;
    writeln!(out, "{:<14} {:<24} (frozen window)", "pause", format!("{:.2} ms", snap.meta.pause_ns as f64 / 1e6))?;
    writeln!(out, "{:<14} {:<24} (copied in the frozen window)", "copied", format!("{} bytes", snap.meta.copied_bytes))?;
    writeln!(out, "threads        {}", snap.threads.len())?;
    for t in &snap.threads {
        let g = t.goid.map(|g| format!("goroutine {g}")).unwrap_or_else(|| "no goroutine".into());
        writeln!(out, "  tid {:<8} pc {:#x} {:<40} {}", t.tid, t.pc, t.function.as_deref().unwrap_or("(not Go code)"), g)?;
    }
    Ok(())
}
