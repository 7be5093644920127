//! The session's front: a line editor (history kept across sessions, completion of commands,
//! their flags and keys, goroutine and thread ids) or a batch of commands from a file or
//! stdin, around [`super::exec`].
//!
//! # Threads, signals and the held target
//!
//! The main thread owns the target: it takes every snapshot and, with `--hold`, keeps the
//! [`Freeze`] (ptrace requests must come from the thread that seized). Lines come from a reader
//! thread (the editor or the batch file), signals from a thread in `sigwait`: SIGINT, SIGTERM
//! and SIGHUP are blocked in every thread of the session, so they arrive as events on the same
//! channel as the lines and the main thread always detaches before leaving: on `exit`, end of
//! input, a closed terminal (SIGHUP, or the editor's read failing), SIGTERM, and while a panic
//! unwinds (the [`Freeze`] detaches in `Drop`). A signal sent to a held target stays pending in
//! the kernel and is delivered at the detach. Ctrl-C at the prompt only cancels the line (the
//! editor reads it as a key, as delve does).

use super::{Env, Flow, State, exec};
use crate::capture::{CoreTarget, Kept, LiveTarget};
use crate::render::color::Palette;
use crate::snapshot::Snapshot;
use crate::target::live::Freeze;
use crate::values::{Memory, Program};
use std::cell::{Cell, OnceCell};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A line on stderr, never a panic: the terminal may be gone (a hang-up).
macro_rules! note {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod input;

use input::{Event, History, Terminal, Words, session_signals, spawn_batch, spawn_editor};

/// How the session runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keep the target stopped for the whole session.
    pub hold: bool,
    /// Read commands from this file (`-` for stdin) instead of a prompt.
    pub batch: Option<PathBuf>,
    /// Colours.
    pub palette: Palette,
    /// No reports on stderr.
    pub quiet: bool,
}

/// The live target behind a session.
struct LiveEnv<'a> {
    live: &'a LiveTarget,
    /// The freeze holding the target (`--hold`).
    hold: Option<Freeze<'a>>,
    held: bool,
    /// What the current snapshot copied for values: its memory (stacks and g structs) and the
    /// stopped threads' registers.
    kept: Kept,
    /// The binary's DWARF for values, read on first use.
    program: OnceCell<Result<Program, String>>,
}

impl LiveEnv<'_> {
    fn take(&mut self) -> Result<(Snapshot, String), String> {
        if !self.held {
            let (snap, kept) = self.live.snapshot_kept().map_err(|e| e.to_string())?;
            self.kept = kept;
            let line = super::snapshot_report(
                &snap,
                crate::render::report::pause_line(&snap, snap.goroutines.len()),
            );
            return Ok((snap, line));
        }
        // Release the old hold first: the target runs only between the two freezes.
        if let Some(f) = self.hold.take() {
            f.thaw();
        }
        let (snap, kept, freeze) = self.live.snapshot_held_kept().map_err(|e| e.to_string())?;
        self.hold = Some(freeze);
        self.kept = kept;
        let n = snap.goroutines.len();
        let line = super::snapshot_report(
            &snap,
            format!("goroscope: {n} goroutines; target held (stopped) until the session ends"),
        );
        Ok((snap, line))
    }

    /// Detaches now (idempotent); how long the target was held, if it was.
    fn release(&mut self) -> Option<std::time::Duration> {
        self.hold.take().map(|f| f.thaw())
    }
}

impl Env for LiveEnv<'_> {
    fn refresh(&mut self) -> Result<(Snapshot, String), String> {
        self.take()
    }

    fn source(&self, path: &str) -> Result<String, String> {
        crate::target::ns::read_target_file(self.live.proc.pid(), path)
    }

    fn function_start(&self, name: &str) -> Option<Result<(String, u32), String>> {
        let t = &self.live.rt.bin.pclntab;
        let at = t
            .func_by_name(name)
            .and_then(|f| t.file_line(f, t.entry(f)));
        Some(
            at.map(|(file, line)| (file.to_string(), line))
                .ok_or_else(|| format!("no function {name:?} in the binary")),
        )
    }

    fn values(&self) -> Result<(&Program, Memory<'_>), String> {
        let prog = crate::values::program_in(&self.program, &self.live.rt)?;
        let mem = Memory {
            snapshot: &self.kept.image,
            rest: Some(&self.live.proc),
            // A held target has not run since the snapshot.
            rest_is_later: self.hold.is_none(),
            read_later: Cell::new(false),
        };
        Ok((prog, mem))
    }

    fn func_name(&self, pc: u64) -> Option<String> {
        crate::values::func_name(&self.live.rt, pc)
    }

    fn thread_state(&self, tid: i32) -> Option<crate::target::ThreadState> {
        self.kept.threads.iter().find(|t| t.tid == tid).cloned()
    }

    fn binary_files(&self, name: &str) -> Option<Vec<String>> {
        let t = &self.live.rt.bin.pclntab;
        let mut files: Vec<String> = Vec::new();
        // One pass over the function table (its size is bounded by the parsed table).
        for f in t.funcs() {
            if let Some((file, _)) = t.file_line(f, t.entry(f))
                && super::file_matches(file, name)
                && !files.iter().any(|x| x == file)
            {
                files.push(file.to_string());
            }
        }
        Some(files)
    }
}

/// What a session explores, as the front sees it: the prompt, the first snapshot, the way out.
trait Explored: Env {
    /// The first snapshot and its report.
    fn first(&mut self) -> Result<(Snapshot, String), String>;
    /// The banner after the report (interactive sessions only).
    fn banner(&self) -> String;
    /// The prompt.
    fn prompt(&self) -> String;
    /// Lets the target go (idempotent); what to say about it.
    fn leave(&mut self) -> Option<String>;
}

impl Explored for LiveEnv<'_> {
    fn first(&mut self) -> Result<(Snapshot, String), String> {
        self.take()
    }

    fn banner(&self) -> String {
        let how = if self.held {
            "held (stopped) until you leave"
        } else {
            "running; `refresh` takes a new snapshot"
        };
        format!(
            "goroscope: attached to process {}, which is {how}. Type 'help' for list of commands.",
            self.live.proc.pid()
        )
    }

    fn prompt(&self) -> String {
        match &self.hold {
            Some(f) => format!("(goroscope held {:.1}s) ", f.held_for().as_secs_f64()),
            None => "(goroscope) ".to_string(),
        }
    }

    fn leave(&mut self) -> Option<String> {
        let pid = self.live.proc.pid();
        Some(match self.release() {
            Some(d) => format!(
                "goroscope: released process {pid} after holding it {:.1} s",
                d.as_secs_f64()
            ),
            None => format!("goroscope: detached from process {pid}, which runs on"),
        })
    }
}

/// A snapshot with no process behind it: a snapshot file, a Go text dump, a core.
struct Saved<'a> {
    snap: Option<Snapshot>,
    /// The core the snapshot was taken from, whose memory values are read from.
    core: Option<&'a CoreTarget>,
    /// The binary's DWARF for values, read on first use.
    program: OnceCell<Result<Program, String>>,
    /// What it is, e.g. `snapshot app.gsnap`.
    what: String,
    /// Where `list` reads source files (`--sources`): the snapshot's paths inside it.
    sources: Option<PathBuf>,
}

impl Env for Saved<'_> {
    fn refresh(&mut self) -> Result<(Snapshot, String), String> {
        Err(format!(
            "this session explores {}: there is no process to take a new snapshot of",
            self.what
        ))
    }

    fn source(&self, path: &str) -> Result<String, String> {
        // The paths a saved snapshot names are another machine's, and the file may come from
        // anyone: read only under the directory the user names, as the user.
        let Some(root) = &self.sources else {
            return Err(format!(
                "{path}: a saved session reads source files only under `--sources DIR` (`--sources /` reads the paths as they are, here)"
            ));
        };
        let ids = crate::target::ns::Ids::of_process(std::process::id() as i32)?;
        crate::target::ns::read_confined(root, path, &ids)
    }

    fn values(&self) -> Result<(&Program, Memory<'_>), String> {
        let Some(core) = self.core else {
            return Err(
                "a saved snapshot holds no memory: values are read from a process or a core, or saved by `goroscope snapshot --values`"
                    .into(),
            );
        };
        let prog = crate::values::program_in(&self.program, &core.rt)?;
        let mem = Memory {
            snapshot: &core.mem,
            rest: None,
            rest_is_later: false,
            read_later: Cell::new(false),
        };
        Ok((prog, mem))
    }

    fn func_name(&self, pc: u64) -> Option<String> {
        crate::values::func_name(&self.core?.rt, pc)
    }

    fn thread_state(&self, tid: i32) -> Option<crate::target::ThreadState> {
        let threads = self.core?.mem.core().threads();
        threads.iter().find(|t| t.tid == tid).cloned()
    }
}

impl Explored for Saved<'_> {
    fn first(&mut self) -> Result<(Snapshot, String), String> {
        let snap = self.snap.take().ok_or("the snapshot was read already")?;
        let n = snap.goroutines.len();
        let line =
            super::snapshot_report(&snap, format!("goroscope: {n} goroutines in {}", self.what));
        Ok((snap, line))
    }

    fn banner(&self) -> String {
        format!(
            "goroscope: exploring {} (no process: `refresh` cannot take a new snapshot). Type 'help' for list of commands.",
            self.what
        )
    }

    fn prompt(&self) -> String {
        format!("(goroscope {}) ", crate::render::safe::text(&self.what))
    }

    fn leave(&mut self) -> Option<String> {
        None
    }
}

/// Runs a session on an opened live target until `exit`, end of input or a signal. The
/// target is detached on every way out.
pub fn attach(live: &LiveTarget, opts: Options) -> Result<(), String> {
    let hold = opts.hold;
    run(
        &mut LiveEnv {
            live,
            hold: None,
            held: hold,
            kept: Kept::default(),
            program: OnceCell::new(),
        },
        opts,
    )
}

/// Runs a session over a saved snapshot (`what` says what it is, e.g. `snapshot app.gsnap`);
/// `list` reads source files inside `sources` only; values are read from `core`, the core the
/// snapshot was taken from, if any.
pub fn explore(
    snap: Snapshot,
    what: String,
    sources: Option<PathBuf>,
    core: Option<&CoreTarget>,
    opts: Options,
) -> Result<(), String> {
    run(
        &mut Saved {
            core,
            program: OnceCell::new(),
            snap: Some(snap),
            what,
            sources,
        },
        opts,
    )
}

fn run(env: &mut dyn Explored, opts: Options) -> Result<(), String> {
    let set = session_signals();
    // SAFETY: blocks the signals on this thread; threads spawned below inherit the mask.
    let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old_mask) };
    let terminal = Terminal::save();
    let (tx, rx) = mpsc::channel::<Event>();
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        loop {
            let mut sig = 0;
            // SAFETY: sigwait on a set we own; the signals are blocked in every session thread.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0
                && sig_tx.send(Event::Signal(sig)).is_err()
            {
                break;
            }
        }
    });

    let (snap, report) = env.first()?;
    if !opts.quiet {
        note!("{report}");
    }
    let mut st = State::new(snap, opts.palette);
    let words = Arc::new(Mutex::new(Words::default()));
    // Never in a batch.
    let mut history = None;
    let prompts = match &opts.batch {
        Some(path) => {
            spawn_batch(path.clone(), tx.clone())?;
            None
        }
        None => {
            if !opts.quiet {
                note!("{}", env.banner());
            }
            let h = history.insert(History::load(opts.quiet));
            Some(spawn_editor(
                tx.clone(),
                Arc::clone(&words),
                h.lines.clone(),
            ))
        }
    };
    drop(tx);

    let input = Input {
        events: rx,
        prompts,
        words,
    };
    let end = serve(&mut st, env, &input, history.as_mut());
    let left = env.leave();
    if let Some(h) = &mut history {
        h.save();
    }
    drop(terminal);
    if let Some(l) = left.filter(|_| !opts.quiet) {
        note!("{l}");
    }
    if let Some(s) = end.signal {
        // Detached: now leave the way the signal asks.
        std::process::exit(128 + s);
    }
    // SAFETY: restores the mask saved above on this same thread.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
    if end.failed > 0 && opts.batch.is_some() {
        return Err(format!(
            "{} of {} commands failed (see above)",
            end.failed, end.commands
        ));
    }
    Ok(())
}

/// Where the session's lines come from.
struct Input {
    /// Lines, Ctrl-C, end of input and signals.
    events: mpsc::Receiver<Event>,
    /// The editor's prompt (none in a batch).
    prompts: Option<mpsc::Sender<String>>,
    /// What the editor completes.
    words: Arc<Mutex<Words>>,
}

/// How the session's loop ended.
struct End {
    failed: usize,
    commands: usize,
    /// The signal that ended it.
    signal: Option<i32>,
}

/// Runs every line as a command until `exit`, end of input or a signal.
fn serve(
    st: &mut State,
    env: &mut dyn Explored,
    input: &Input,
    mut history: Option<&mut History>,
) -> End {
    let mut out = crate::stdout::writer();
    let mut waiting = false;
    let mut end = End {
        failed: 0,
        commands: 0,
        signal: None,
    };
    let mut last: Option<String> = None;
    loop {
        if let Some(p) = &input.prompts
            && !waiting
        {
            {
                let mut w = input.words.lock().unwrap_or_else(|e| e.into_inner());
                w.goroutines = st
                    .snap
                    .goroutines
                    .iter()
                    .map(|g| g.id.to_string())
                    .collect();
                w.threads = st.snap.threads.iter().map(|t| t.tid.to_string()).collect();
            }
            if p.send(env.prompt()).is_err() {
                break;
            }
            waiting = true;
        }
        match input.events.recv() {
            Ok(Event::Line(mut line)) => {
                waiting = false;
                if let Some(h) = &mut history {
                    h.add(&line);
                }
                // At the prompt, an empty line repeats the last command, as in delve (a batch
                // skips empty lines).
                if line.trim().is_empty() {
                    match &last {
                        Some(l) => line = l.clone(),
                        None => continue,
                    }
                } else {
                    last = Some(line.clone());
                }
                end.commands += 1;
                crate::target::live::test_panic_at_command(&line);
                match exec(st, &line, env, &mut out) {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(e) => {
                        let _ = out.flush();
                        end.failed += 1;
                        note!("Command failed: {e}");
                    }
                }
                let _ = out.flush();
            }
            Ok(Event::Cancel) => waiting = false,
            Ok(Event::Eof) | Err(_) => break,
            // Ctrl-C while a command ran (the prompt reads it as a key): nothing to cancel.
            Ok(Event::Signal(libc::SIGINT)) if input.prompts.is_some() => {}
            Ok(Event::Signal(s)) => {
                end.signal = Some(s);
                break;
            }
        }
    }
    let _ = out.flush();
    end
}

#[cfg(test)]
mod tests;
