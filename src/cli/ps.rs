//! `goroscope ps`: the table and JSON of [`crate::ps::scan`].

use crate::ps::{self, GoProcess};
use crate::render::safe::text;
use clap::Args;
use std::io::{self, Write};

/// `ps` options.
#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Print a JSON array of processes (docs/json-schema.md, "ps").
    #[arg(long)]
    pub json: bool,
}

/// Scans `/proc` and prints every Go process.
pub fn run(args: &PsArgs, quiet: bool, out: &mut dyn Write) -> io::Result<()> {
    let scan = ps::scan(std::path::Path::new("/proc"))?;
    if args.json {
        crate::render::safe::write_json(out, &scan.processes)?;
        writeln!(out)?;
    } else {
        table(&scan.processes, out)?;
    }
    if !quiet && let Some(note) = denied_note(&scan) {
        eprintln!("{note}");
    }
    Ok(())
}

/// The line about processes whose executable goroscope may not open, if there are any.
fn denied_note(scan: &ps::Scan) -> Option<String> {
    let n = scan.denied.len();
    if n == 0 {
        return None;
    }
    let (s, list) = (
        if n == 1 { "" } else { "es" },
        scan.denied
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
    );
    // SAFETY: geteuid cannot fail.
    let why = if unsafe { libc::geteuid() } == 0 {
        "not dumpable, or in a user namespace goroscope's does not own"
    } else {
        "run as root to see every process"
    };
    Some(format!(
        "goroscope: {n} process{s} not shown, /proc/PID/exe refused ({why}): {}",
        list.join(" ")
    ))
}

/// For a command given no pid (`cmd`; `None`: no command at all): the Go processes goroscope
/// can see, in `ps`'s table, and the command line that picks the first of them.
pub fn pick(cmd: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    let scan = ps::scan(std::path::Path::new("/proc"))?;
    let Some(first) = scan.processes.first().map(|p| p.pid) else {
        writeln!(
            out,
            "goroscope sees no Go process in its pid namespace (`goroscope ps` lists them when there are)."
        )?;
        if let Some(note) = denied_note(&scan) {
            writeln!(out, "{note}")?;
        }
        return Ok(());
    };
    writeln!(out, "The Go processes goroscope can see (`goroscope ps`):")?;
    table(&scan.processes, out)?;
    if let Some(note) = denied_note(&scan) {
        writeln!(out, "{note}")?;
    }
    let pick = match cmd {
        None => {
            format!("goroscope dump {first}, goroscope grs {first} or goroscope attach {first}")
        }
        Some("bt") => format!("goroscope bt {first} GOID (goroutine ids: goroscope grs {first})"),
        Some("snapshot") => format!("goroscope snapshot {first} -o app.gsnap"),
        Some(c) => format!("goroscope {c} {first}"),
    };
    writeln!(out, "Give one of their pids, e.g. {pick}")
}

/// Columns: PID, PPID, THREADS, GO, NAME, MODULE, BINARY (with the in-container pid and the
/// stripped state in brackets when there is something to say).
fn table(procs: &[GoProcess], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{:>7} {:>7} {:>7}  {:<10} {:<16} {:<32} BINARY",
        "PID", "PPID", "THREADS", "GO", "NAME", "MODULE"
    )?;
    for p in procs {
        let module = match (&p.module, &p.module_version) {
            (Some(m), Some(v)) if !v.is_empty() => format!("{m}@{v}"),
            (Some(m), _) => m.clone(),
            (None, _) => p.path.clone(),
        };
        let module = text(&module);
        let mut notes = Vec::new();
        if p.ns_pids.len() > 1 {
            notes.push(format!(
                "pid {} in its namespace",
                p.ns_pids[p.ns_pids.len() - 1]
            ));
        }
        if !p.stripped_word().is_empty() {
            notes.push(p.stripped_word().to_string());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        writeln!(
            out,
            "{:>7} {:>7} {:>7}  {:<10} {:<16} {:<32} {}{}",
            p.pid,
            p.ppid,
            p.threads,
            text(&p.go_version),
            text(&p.name),
            module,
            text(&p.exe),
            notes
        )?;
    }
    Ok(())
}
