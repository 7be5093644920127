//! The session's input: the line editor (its completion and the history kept across
//! sessions) or a batch of commands, and the signals, all as [`Event`]s on one channel.

use crate::session;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

/// What the main thread waits for.
pub(super) enum Event {
    Line(String),
    /// Ctrl-C at the prompt.
    Cancel,
    Eof,
    Signal(i32),
}

/// The signals the session turns into events.
pub(super) fn session_signals() -> libc::sigset_t {
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
pub(super) struct Terminal(Option<libc::termios>);

impl Terminal {
    pub(super) fn save() -> Terminal {
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
pub(super) struct Words {
    pub(super) goroutines: Vec<String>,
    pub(super) threads: Vec<String>,
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
            session::FLAGS
                .iter()
                .find(|(c, _)| session::command_name(cmd) == Some(*c))
                .map(|(_, f)| strings(f))
        };
        let pool: Vec<String> = match before.as_slice() {
            [] | ["help" | "h"] => session::COMMANDS
                .iter()
                .flat_map(|(names, _, _)| names.iter().map(|n| n.to_string()))
                .collect(),
            ["goroutine" | "gr"] => words.goroutines.clone(),
            ["thread" | "tr"] => words.threads.clone(),
            [_, .., "-group"] => strings(session::GROUP_KEYS),
            [_, .., "-with" | "-w" | "-without" | "-wo"] => strings(session::COND_KEYS),
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
pub(super) const MAX_HISTORY: usize = 1000;

/// The most bytes read from the history file: its end is kept when it is longer.
pub(super) const MAX_HISTORY_BYTES: u64 = 256 * 1024;

/// The commands typed at the prompt, kept across sessions in
/// `$XDG_STATE_HOME/goroscope/history` (`~/.local/state/goroscope/history` by default), one a
/// line. A file that cannot be read or written costs at most one line on stderr (none with -q).
pub(super) struct History {
    pub(super) path: Option<PathBuf>,
    pub(super) lines: Vec<String>,
    pub(super) quiet: bool,
    pub(super) warned: bool,
}

impl History {
    pub(super) fn load(quiet: bool) -> History {
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

    pub(super) fn read(path: &std::path::Path) -> std::io::Result<Vec<String>> {
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
    pub(super) fn add(&mut self, line: &str) {
        let line = line.trim();
        if !line.is_empty() && self.lines.last().map(String::as_str) != Some(line) {
            self.lines.push(line.to_string());
            if self.lines.len() > MAX_HISTORY {
                self.lines.drain(..self.lines.len() - MAX_HISTORY);
            }
        }
    }

    pub(super) fn save(&mut self) {
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
pub(super) fn spawn_editor(
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
pub(super) fn spawn_batch(path: PathBuf, tx: Sender<Event>) -> Result<(), String> {
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
