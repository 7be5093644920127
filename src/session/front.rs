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
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

/// A line on stderr, never a panic: the terminal may be gone (a hang-up).
macro_rules! note {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

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

/// What the main thread waits for.
enum Event {
    Line(String),
    /// Ctrl-C at the prompt.
    Cancel,
    Eof,
    Signal(i32),
}

/// The signals the session turns into events.
fn session_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a value we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The terminal's modes at the start, put back on every way out (the editor thread may be
/// in raw mode when the session ends on a signal).
struct Terminal(Option<libc::termios>);

impl Terminal {
    fn save() -> Terminal {
        // SAFETY: isatty and tcgetattr only read the descriptor's state into our value.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            Terminal((libc::isatty(0) == 1 && libc::tcgetattr(0, &mut t) == 0).then_some(t))
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restores modes read from the same descriptor.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

/// Words the completer offers after each command.
#[derive(Default)]
struct Words {
    goroutines: Vec<String>,
    threads: Vec<String>,
}

struct Completer(Arc<Mutex<Words>>);

impl rustyline::completion::Completer for Completer {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
        let word = &head[start..];
        let before: Vec<&str> = head[..start].split_whitespace().collect();
        let words = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let strings = |w: &[&str]| w.iter().map(|n| n.to_string()).collect();
        let flags = |cmd: &str| {
            super::FLAGS
                .iter()
                .find(|(c, _)| super::command_name(cmd) == Some(*c))
                .map(|(_, f)| strings(f))
        };
        let pool: Vec<String> = match before.as_slice() {
            [] | ["help" | "h"] => super::COMMANDS
                .iter()
                .flat_map(|(names, _, _)| names.iter().map(|n| n.to_string()))
                .collect(),
            ["goroutine" | "gr"] => words.goroutines.clone(),
            ["thread" | "tr"] => words.threads.clone(),
            [_, .., "-group"] => strings(super::GROUP_KEYS),
            [_, .., "-with" | "-w" | "-without" | "-wo"] => strings(super::COND_KEYS),
            [cmd, ..] if word.starts_with('-') => flags(cmd).unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok((
            start,
            pool.into_iter().filter(|c| c.starts_with(word)).collect(),
        ))
    }
}

impl rustyline::hint::Hinter for Completer {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completer {}
impl rustyline::validate::Validator for Completer {}
impl rustyline::Helper for Completer {}

/// The most history entries kept (the oldest go first).
const MAX_HISTORY: usize = 1000;

/// The most bytes read from the history file: its end is kept when it is longer.
const MAX_HISTORY_BYTES: u64 = 256 * 1024;

/// The commands typed at the prompt, kept across sessions in
/// `$XDG_STATE_HOME/goroscope/history` (`~/.local/state/goroscope/history` by default), one a
/// line. A file that cannot be read or written costs at most one line on stderr (none with -q).
struct History {
    path: Option<PathBuf>,
    lines: Vec<String>,
    quiet: bool,
    warned: bool,
}

impl History {
    fn load(quiet: bool) -> History {
        let dir = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|d| d.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".local/state"))
                    .filter(|d| d.is_absolute())
            });
        let mut h = History {
            path: dir.map(|d| d.join("goroscope/history")),
            lines: Vec::new(),
            quiet,
            warned: false,
        };
        if let Some(path) = h.path.clone() {
            match Self::read(&path) {
                Ok(lines) => h.lines = lines,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => h.warn(&format!("{}: {e}", path.display())),
            }
        }
        h
    }

    fn read(path: &std::path::Path) -> std::io::Result<Vec<String>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(path)?;
        let len = f.metadata()?.len();
        let skip = len.saturating_sub(MAX_HISTORY_BYTES);
        f.seek(SeekFrom::Start(skip))?;
        let mut bytes = Vec::new();
        f.take(MAX_HISTORY_BYTES).read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<&str> = text.lines().collect();
        if skip > 0 && !lines.is_empty() {
            lines.remove(0); // cut in the middle
        }
        let lines: Vec<String> = lines
            .into_iter()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        Ok(lines[lines.len().saturating_sub(MAX_HISTORY)..].to_vec())
    }

    /// Keeps a typed line (not an empty one, nor the same line twice in a row).
    fn add(&mut self, line: &str) {
        let line = line.trim();
        if !line.is_empty() && self.lines.last().map(String::as_str) != Some(line) {
            self.lines.push(line.to_string());
            if self.lines.len() > MAX_HISTORY {
                self.lines.drain(..self.lines.len() - MAX_HISTORY);
            }
        }
    }

    fn save(&mut self) {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let Some(path) = self.path.clone() else {
            return;
        };
        let r = (|| {
            if let Some(dir) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(
                self.lines
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .as_bytes(),
            )
        })();
        if let Err(e) = r {
            self.warn(&format!("{}: {e}", path.display()));
        }
    }

    fn warn(&mut self, what: &str) {
        if !self.quiet && !self.warned {
            note!("history not kept: {what}");
        }
        self.warned = true;
    }
}

/// The editor thread: reads one line for each prompt it is sent.
/// `history` is what the editor recalls first.
fn spawn_editor(
    tx: Sender<Event>,
    words: Arc<Mutex<Words>>,
    history: Vec<String>,
) -> Sender<String> {
    let (ptx, prx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let builder = rustyline::Config::builder()
            .auto_add_history(true)
            .completion_type(rustyline::CompletionType::List);
        let config = builder
            .clone()
            .max_history_size(MAX_HISTORY)
            .unwrap_or(builder)
            .build();
        let mut ed =
            match rustyline::Editor::<Completer, rustyline::history::DefaultHistory>::with_config(
                config,
            ) {
                Ok(e) => e,
                Err(_) => {
                    let _ = tx.send(Event::Eof);
                    return;
                }
            };
        ed.set_helper(Some(Completer(words)));
        for l in history {
            let _ = ed.add_history_entry(l);
        }
        for prompt in prx {
            let ev = match ed.readline(&prompt) {
                Ok(l) => Event::Line(l),
                Err(rustyline::error::ReadlineError::Interrupted) => Event::Cancel,
                Err(rustyline::error::ReadlineError::Eof) => Event::Eof,
                // The terminal is gone (its read fails before or instead of the SIGHUP
                // arriving): the same as a hang-up.
                Err(_) => Event::Signal(libc::SIGHUP),
            };
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    ptx
}

/// The batch thread: every non-empty, non-comment line of the file (or stdin), then Eof.
fn spawn_batch(path: PathBuf, tx: Sender<Event>) -> Result<(), String> {
    let input: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?,
        ))
    };
    std::thread::spawn(move || {
        for line in input.lines() {
            let Ok(line) = line else { break };
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if tx.send(Event::Line(l.to_string())).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::Eof);
    });
    Ok(())
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

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut waiting = false;
    let mut failed = 0usize;
    let mut commands = 0usize;
    let mut signal = None;
    let mut last: Option<String> = None;
    loop {
        if let Some(p) = &prompts
            && !waiting
        {
            {
                let mut w = words.lock().unwrap_or_else(|e| e.into_inner());
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
        match rx.recv() {
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
                commands += 1;
                crate::target::live::test_panic_at_command(&line);
                match exec(&mut st, &line, env, &mut out) {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(e) => {
                        let _ = out.flush();
                        failed += 1;
                        note!("Command failed: {e}");
                    }
                }
                let _ = out.flush();
            }
            Ok(Event::Cancel) => waiting = false,
            Ok(Event::Eof) | Err(_) => break,
            // Ctrl-C while a command ran (the prompt reads it as a key): nothing to cancel.
            Ok(Event::Signal(libc::SIGINT)) if prompts.is_some() => {}
            Ok(Event::Signal(s)) => {
                signal = Some(s);
                break;
            }
        }
    }
    let _ = out.flush();
    drop(out);
    let left = env.leave();
    if let Some(h) = &mut history {
        h.save();
    }
    drop(terminal);
    if let Some(l) = left.filter(|_| !opts.quiet) {
        note!("{l}");
    }
    if let Some(s) = signal {
        // Detached: now leave the way the signal asks.
        std::process::exit(128 + s);
    }
    // SAFETY: restores the mask saved above on this same thread.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old_mask, std::ptr::null_mut()) };
    if failed > 0 && opts.batch.is_some() {
        return Err(format!(
            "{failed} of {commands} commands failed (see above)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
