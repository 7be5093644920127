//! `goroscope attach`: a delve-like session over a snapshot. The target is stopped only while a
//! snapshot is taken (or for the whole session with `--hold`); every command reads the
//! snapshot. [`exec`] is a function of (state, command line) to output text, with the effects
//! a command may need (a new snapshot, a source file) behind [`Env`]; [`front`] is the line
//! editor and the batch reader around it.

pub mod front;
mod values;

use crate::analyze::filter::{Cond, Filter, LocMatch};
use crate::analyze::group::{self, GroupBy};
use crate::render::color::Palette;
use crate::render::safe::{go_quote, text};
use crate::render::{blocked, bt, grs};
use crate::snapshot::{Goroutine, Loc, Snapshot};
use regex::Regex;
use std::io::Write;

/// What the session is looking at.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The current snapshot.
    pub snap: Snapshot,
    /// The one before the last `refresh`, for `diff`.
    pub prev: Option<Snapshot>,
    /// The selected goroutine.
    pub goroutine: Option<u64>,
    /// The selected frame of it (0 = innermost).
    pub frame: usize,
    /// The selected thread.
    pub thread: Option<i32>,
    /// The frame commands show the selected thread's own stack (after `thread TID`), not the
    /// selected goroutine's.
    pub on_thread: bool,
    /// Colours.
    pub palette: Palette,
    /// Limits of the values `print`, `args`, `locals` and `stack -full` read (`config`).
    pub values: crate::values::Config,
}

/// The effects commands may need.
pub trait Env {
    /// Takes a new snapshot of the target (`refresh`), returning it and a one-line report.
    fn refresh(&mut self) -> Result<(Snapshot, String), String>;
    /// The text of a source file of the target, read in its own file system as its user
    /// ([`crate::target::ns::read_target_file`]).
    fn source(&self, path: &str) -> Result<String, String>;
    /// Where a function starts (file, line), from the binary's function table; `None` without
    /// one (a saved snapshot).
    fn function_start(&self, _name: &str) -> Option<Result<(String, u32), String>> {
        None
    }
    /// The files of the binary's functions that are `name` or end with `/name` (where the
    /// functions start); `None` without a function table.
    fn binary_files(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
    /// What values are read with: the binary's DWARF and the snapshot's memory (then the
    /// process's); why not when there are none.
    fn values(&self) -> Result<(&crate::values::Program, crate::values::Memory<'_>), String> {
        Err("a saved snapshot holds no memory: values are read only from a process".into())
    }
    /// The name of the function holding `pc`, from the binary's function table.
    fn func_name(&self, _pc: u64) -> Option<String> {
        None
    }
    /// Thread `tid` at the snapshot: its registers as the kernel lays them out (the
    /// general-purpose words, and the floating-point set when read); `None` when not known.
    fn thread_state(&self, _tid: i32) -> Option<crate::target::ThreadState> {
        None
    }
}

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Detach and leave.
    Quit,
}

/// Lines of source shown on each side of the current one (delve's default).
const LIST_CONTEXT: u32 = 5;
/// Frames `bt` shows by default (delve's default).
const BT_DEPTH: usize = 50;
/// Frames `goroutines -t` shows by default (delve's default).
const GRS_DEPTH: usize = 10;
/// Goroutines listed per group (delve's default).
const GROUP_MEMBERS: usize = 5;

/// Every command: names (first is the main one), one-line summary, usage and details.
pub const COMMANDS: &[(&[&str], &str, &str)] = &[
    (
        &["goroutines", "grs"],
        "List the snapshot's goroutines.",
        "goroutines [-u|-r|-g|-s] [-t [depth]] [-l] [-with COND] [-without COND] [-group KEY]\n\n\t-u\tname each goroutine by its topmost frame in user code (default)\n\t-r\tby its topmost frame (runtime frames included)\n\t-g\tby the go statement that created it\n\t-s\tby its start function, at its entry (for `go f(args)`, the f the compiler's wrapper calls)\n\t-t\tprint each stack too (depth frames, default 10)\n\t-l\tprint labels\n\nCOND (-with/-w keeps, -without/-wo drops; repeatable):\n\tuserloc|curloc|goloc|startloc TEXT    the location (`file:line in function`) contains TEXT\n\t                                       (also: user TEXT, go TEXT); re:REGEX for a regular expression\n\tlabel KEY[=VALUE]                      has the pprof label\n\trunning                                runs on an OS thread\n\tuser                                   is a user goroutine (runtime ones are hidden unless asked for: -without user)\n\tstate STATE                            e.g. -with state chan receive\n\nKEY of -group: userloc, curloc, goloc (go), startloc, running, user, state, stack, label KEY.\nStates and wait minutes are the runtime's own, as its traceback prints them.",
    ),
    (
        &["goroutine", "gr"],
        "Show or change the selected goroutine.",
        "goroutine\ngoroutine <id>\ngoroutine <id> <command>\n\nWithout arguments: the selected goroutine's locations, state and labels. With an id: select\nit (frame 0). With a command: run it on that goroutine, keeping the selection.",
    ),
    (
        &["stack", "bt"],
        "Print the selected goroutine's stack.",
        "stack [<depth>] [-full]\n\nFrames 0 to depth, innermost first, runtime frames included (default depth 50); a last line\n`(truncated)` when the stack goes deeper.\n-full adds each frame's arguments: the words in the argument slots as the runtime's traceback\nprints them (`?` where not live), or `(inlined)` for a call inlined into its caller (the\ntraceback prints `(...)` there), the frame's pending defers, in the order they will run\n(`defers: sync.(*Mutex).Unlock(0xc000012340)`: the method a `defer mu.Unlock()` wraps and the\nreceiver its closure holds; a deferred `(*os.File).Close` adds the file's descriptor,\n`[fd 5]`), then its arguments and locals from DWARF as `args` and `locals`\nprint them.",
    ),
    (
        &["args"],
        "Print the selected frame's arguments.",
        "args\n\nEach formal parameter of the selected frame's function (or inlined call), `name = value`, from\nthe binary's DWARF: its location at the frame's pc, read from the snapshot's copy of the stack\n(memory it points to from the process, said once under the output when read after the\nsnapshot). `(optimized out)`: not live at this pc; `(unreadable: needs register RAX)`: only in\na register the snapshot does not hold (registers are known for the innermost frame of a\ngoroutine running on a thread, not for a parked goroutine or an outer frame).",
    ),
    (
        &["locals"],
        "Print the selected frame's local variables.",
        "locals\n\nAs `args`, for the local variables in scope at the frame's pc.",
    ),
    (
        &["print", "p"],
        "Print the value of an expression in the selected frame.",
        "print EXPR\n\nEXPR: a variable, a field `a.b.c` (through pointers), an index `s[3]`, `*p`, `len(x)`,\n`cap(x)`, or a typed address `(*main.T)(0xc000123000)`. Values are printed as delve prints\nthem; limits: `config`.",
    ),
    (
        &["config"],
        "Show or change the limits of printed values.",
        "config\nconfig max-string-len N\nconfig max-array-values N\n\nBytes of a string and elements of an array, slice or map read and shown (default 64 each).",
    ),
    (
        &["frame"],
        "Select a frame of the selected goroutine.",
        "frame <n>\nframe <n> <command>\n\nSelect frame n and show its source, or run a command (stack, list) on frame n.",
    ),
    (
        &["up"],
        "Move the selected frame up (towards the caller).",
        "up [<n>]\nup [<n>] <command>",
    ),
    (
        &["down"],
        "Move the selected frame down (towards the callee).",
        "down [<n>]\ndown [<n>] <command>",
    ),
    (
        &["list", "ls", "l"],
        "Show source around the selected frame.",
        "list [FUNCTION | FILE:LINE | LINE]\n\nWithout a place: source lines around the selected frame's line, `=>` on it, read from the file named in the\nbinary in the target's own file system (/proc/PID/root), as the target's user; regular files only.\nA place: a function's first line, FILE:LINE (FILE as the binary names it, or its last path\nelements) or LINE of the selected frame's file.",
    ),
    (
        &["threads"],
        "List the target's threads.",
        "threads\n\nEvery thread of the snapshot: where it was, and the goroutine it ran.",
    ),
    (
        &["thread", "tr"],
        "Select a thread (and the goroutine it runs).",
        "thread <tid>\n\nSelects the thread and the goroutine it runs (none for an idle thread). `stack`/`bt`, `frame`,\n`up`, `down` and `list` then show the thread's own stack, unwound from its registers: for an\nidle M its scheduler stack (runtime.futex ... runtime.schedule), for a thread in a system call\nthe call's frames, then its goroutine's. As in the runtime's crash traceback, a system stack\nends where it was entered (systemstack, mcall, mstart); `goroutine <id>` shows the goroutine's\nframes again. Frames outside Go code (C, a thread the runtime did not start) are not unwound:\nthe stack says where it stops and why.",
    ),
    (
        &["blocked"],
        "What blocked goroutines wait on.",
        "blocked\n\nChannels and sync primitives goroutines wait on, with their state read from memory, and\nbeside each lock the goroutines known to hold it.",
    ),
    (
        &["holders"],
        "Who holds the locks.",
        "holders\n\nEvery sync.Mutex and sync.RWMutex a goroutine is known to hold, with the holding frame and\nhow it is known (`defer`: the frame has a pending deferred unlock of it, `mu.Lock(); defer\nmu.Unlock()`), and the goroutines waiting for it.",
    ),
    (
        &["refresh"],
        "Take a new snapshot.",
        "refresh\n\nStop the target for a moment, copy its goroutines, let it go on (with --hold: release it,\nthen hold it again). The old snapshot is kept for `diff`; the selection is kept when the\ngoroutine still exists.",
    ),
    (
        &["diff"],
        "What changed since the previous snapshot.",
        "diff [-group KEY]\n\nStack groups that grew, shrank, appeared or vanished between the snapshot before the last\n`refresh` and the current one (KEY as in goroutines -group; default: identical stacks).",
    ),
    (
        &["snapshot"],
        "Save the snapshot to a file.",
        "snapshot <file>\n\nWrites the current snapshot (gzip JSON); `goroscope show FILE` reads it anywhere.",
    ),
    (&["help", "h"], "Print help.", "help [command]"),
    (
        &["exit", "quit", "q", "detach"],
        "Detach and leave; the target runs on.",
        "exit\n\nDetaches (never kills): the target runs on as before.",
    ),
];

/// The flags of the commands that take any (by main name), as their parsers accept them; the
/// line editor completes them.
pub const FLAGS: &[(&str, &[&str])] = &[
    (
        "goroutines",
        &[
            "-u", "-r", "-g", "-s", "-t", "-l", "-with", "-w", "-without", "-wo", "-group",
        ],
    ),
    ("stack", &["-full"]),
    ("diff", &["-group"]),
];

/// The first word of a `-group` key ([`group_by`]).
pub const GROUP_KEYS: &[&str] = &[
    "userloc", "curloc", "goloc", "go", "startloc", "running", "user", "state", "stack", "label",
];

/// The first word of a `-with`/`-without` condition ([`grs_args`]).
pub const COND_KEYS: &[&str] = &[
    "userloc", "user", "curloc", "goloc", "go", "startloc", "label", "running", "state",
];

/// delve's commands goroscope does not have: names, and why with what to use instead.
pub const DELVE_ONLY: &[(&[&str], &str)] = &[
    (
        &[
            "continue",
            "c",
            "next",
            "n",
            "step",
            "s",
            "stepout",
            "so",
            "step-instruction",
            "si",
            "next-instruction",
            "ni",
            "rev",
            "rewind",
            "rw",
            "call",
            "checkpoint",
        ],
        "goroscope never runs the target step by step: it stops it only while a snapshot is taken (or holds it stopped with --hold); `refresh` takes a new snapshot and `diff` shows what changed since the previous one.",
    ),
    (
        &[
            "break",
            "b",
            "breakpoints",
            "bp",
            "clear",
            "clearall",
            "condition",
            "cond",
            "on",
            "trace",
            "t",
            "watch",
            "toggle",
        ],
        "goroscope sets no breakpoints: it never writes the target's memory. `--hold` keeps the target stopped at the moment of a snapshot; `refresh` takes a new one and `diff` compares the two.",
    ),
    (
        &["restart", "r"],
        "goroscope never restarts or kills the target; `refresh` takes a new snapshot of it as it runs.",
    ),
    (
        &["vars", "display", "whatis", "examinemem", "x"],
        "goroscope prints the values of a frame's variables only: `args`, `locals` and `print EXPR` (package variables, types and raw memory are not shown).",
    ),
    (&["set"], "goroscope never writes the target's memory."),
    (
        &["regs"],
        "registers are not shown; `threads` shows where each thread is, `stack` a goroutine's frames.",
    ),
];

/// Why a delve command is not one of goroscope's, if it is delve's.
fn delve_only(word: &str) -> Option<String> {
    DELVE_ONLY
        .iter()
        .find(|(names, _)| names.contains(&word))
        .map(|(_, why)| format!("{word:?} is a delve command goroscope does not have: {why}"))
}

/// The main name of a command word, if it is one.
pub fn command_name(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(names, _, _)| names.contains(&word))
        .map(|(names, _, _)| names[0])
}

impl State {
    /// A state over a first snapshot: goroutine 1 (else the first) selected, and its thread.
    pub fn new(snap: Snapshot, palette: Palette) -> State {
        let mut s = State {
            snap,
            palette,
            ..Default::default()
        };
        s.goroutine = s
            .snap
            .goroutines
            .iter()
            .find(|g| g.id == 1)
            .or(s.snap.goroutines.first())
            .map(|g| g.id);
        s.thread = s
            .selected()
            .and_then(|g| g.thread)
            .or(s.snap.threads.first().map(|t| t.tid));
        s
    }

    /// The selected goroutine.
    pub fn selected(&self) -> Option<&Goroutine> {
        self.goroutine
            .and_then(|id| self.snap.goroutines.iter().find(|g| g.id == id))
    }

    fn need_selected(&self) -> Result<&Goroutine, String> {
        self.selected().ok_or_else(|| match (self.goroutine, self.thread) {
            (None, Some(t)) => format!("thread {t} runs no goroutine: `goroutine <id>` selects one (`goroutines` lists them)"),
            _ => "no goroutine selected: `goroutine <id>` selects one (`goroutines` lists them)".into(),
        })
    }

    /// The frames the frame commands show, and what they are of (`goroutine 7`, `thread 12`):
    /// the selected thread's own after `thread TID`, else the selected goroutine's.
    fn stack_view(&self) -> Result<(std::borrow::Cow<'_, Goroutine>, String), String> {
        use std::borrow::Cow;
        if self.on_thread
            && let Some(t) = self
                .thread
                .and_then(|tid| self.snap.threads.iter().find(|t| t.tid == tid))
        {
            // Not read (a snapshot saved without --thread-stacks): its goroutine's, if any.
            if t.frames.is_empty() && t.stack_error.is_none() {
                if let Some(g) = self.selected() {
                    return Ok((Cow::Borrowed(g), format!("goroutine {}", g.id)));
                }
                return Err(format!(
                    "thread {} runs no goroutine, and its own stack was not read in this snapshot (`goroscope snapshot --thread-stacks` saves it); `goroutine <id>` selects a goroutine",
                    t.tid
                ));
            }
            let g = Goroutine {
                id: t.goid.unwrap_or(0),
                frames: t.frames.clone(),
                stack_error: t.stack_error.clone(),
                thread: Some(t.tid),
                ..Goroutine::default()
            };
            return Ok((Cow::Owned(g), format!("thread {}", t.tid)));
        }
        let g = self.need_selected()?;
        Ok((Cow::Borrowed(g), format!("goroutine {}", g.id)))
    }

    fn goroutine(&self, id: u64) -> Result<&Goroutine, String> {
        self.snap
            .goroutines
            .iter()
            .find(|g| g.id == id)
            .ok_or_else(|| format!("no goroutine {id} in this snapshot; `goroutines` lists them"))
    }
}

/// Runs one command line against the state, writing its output.
pub fn exec(
    st: &mut State,
    line: &str,
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<Flow, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Ok(Flow::Continue);
    };
    let name = command_name(cmd).ok_or_else(|| {
        delve_only(cmd)
            .unwrap_or_else(|| format!("unknown command {cmd:?}; `help` lists the commands"))
    })?;
    let w = |r: std::io::Result<()>| r.map_err(io);
    match name {
        "goroutines" => goroutines(st, args, out)?,
        "goroutine" => return goroutine(st, args, env, out),
        "stack" => {
            let (g, _) = st.stack_view()?;
            let (depth, full) = stack_args(args)?;
            // delve's depth is the deepest frame number shown: `stack 5` prints frames 0 to 5.
            let shown = depth.saturating_add(1);
            let mut g = g.into_owned();
            let notes = if full {
                values::stack_values(st, env, &mut g, shown)
            } else {
                values::StackNotes::default()
            };
            if let Some(why) = &notes.before {
                w(writeln!(out, "{}", text(why)))?;
            }
            let o = bt::Options {
                depth: Some(shown),
                full,
                palette: st.palette,
                indent: 0,
                delve_cut: true,
            };
            w(bt::frames(&g, &o, out))?;
            for l in &notes.after {
                w(writeln!(out, "{l}"))?;
            }
        }
        "args" | "locals" => {
            if !args.is_empty() {
                return Err(format!("usage: {name}"));
            }
            values::args_or_locals(st, env, name == "args", out)?;
        }
        "print" => {
            // The expression as typed (a map key may hold spaces).
            let expr = line.trim_start().strip_prefix(cmd).unwrap_or_default();
            values::print(st, env, expr.trim(), out)?
        }
        "config" => values::config(st, args, out)?,
        "frame" | "up" | "down" => return frame(st, name, args, env, out),
        "list" => match args {
            [] => w(list(st, env, true, out))?,
            [place] => {
                let (file, line) = place_of(st, env, place)?;
                w(writeln!(out, "Showing {}:{line}", text(&file)))?;
                match env.source(&file) {
                    Ok(src) => w(source_lines(&src, line, st.palette, out))?,
                    Err(e) => return Err(format!("no source: {}", text(&e))),
                }
            }
            _ => return Err("usage: list [FUNCTION | FILE:LINE | LINE]".into()),
        },
        "threads" => w(crate::render::threads::render(
            &st.snap, st.thread, st.palette, out,
        ))?,
        "thread" => {
            let [tid] = args else {
                return Err(
                    "you must specify a thread: thread <tid> (`threads` lists them)".into(),
                );
            };
            let tid: i32 = tid
                .parse()
                .map_err(|_| format!("{tid:?} is not a thread id"))?;
            let t = st
                .snap
                .threads
                .iter()
                .find(|t| t.tid == tid)
                .ok_or_else(|| format!("no thread {tid} in this snapshot; `threads` lists them"))?;
            let goid = t.goid;
            let old = st
                .thread
                .map(|t| t.to_string())
                .unwrap_or_else(|| "<none>".into());
            st.thread = Some(tid);
            st.on_thread = true;
            // The selection follows the thread: none when it runs no goroutine.
            st.goroutine = goid;
            st.frame = 0;
            w(writeln!(out, "Switched from {old} to {tid}"))?;
            match goid {
                Some(id) => w(writeln!(out, "thread {tid} runs goroutine {id}"))?,
                None => w(writeln!(
                    out,
                    "thread {tid} runs no goroutine; `goroutine <id>` selects one"
                ))?,
            }
        }
        "blocked" => w(blocked::render(&st.snap, |g| !g.system, out))?,
        "holders" => w(blocked::holders(&st.snap, |g| !g.system, out))?,
        "refresh" => {
            let (snap, report) = env.refresh()?;
            refresh(st, snap);
            w(writeln!(out, "{report}"))?;
            if let Some(old) = st
                .prev
                .as_ref()
                .and(st.goroutine.filter(|_| st.selected().is_none()))
            {
                w(writeln!(out, "goroutine {old} is gone"))?;
            }
        }
        "diff" => {
            let prev = st.prev.as_ref().ok_or(
                "no earlier snapshot: `refresh` takes a new one, then `diff` compares the two",
            )?;
            let by = match args {
                [] => GroupBy::Stack,
                ["-group", key @ ..] => group_by(key)?,
                _ => return Err("usage: diff [-group KEY]".into()),
            };
            w(crate::render::diff::render(
                prev,
                &st.snap,
                &Filter::default(),
                &by,
                out,
            ))?;
        }
        "snapshot" => {
            let [file] = args else {
                return Err("usage: snapshot <file>".into());
            };
            crate::snapshot::store::save(&st.snap, std::path::Path::new(file), None)
                .map_err(|e| format!("{file}: {e}"))?;
            w(writeln!(out, "wrote {file}"))?;
        }
        "help" => help(args.first().copied(), out)?,
        "exit" => return Ok(Flow::Quit),
        _ => unreachable!("every command name is handled"),
    }
    Ok(Flow::Continue)
}

/// Where `list PLACE` points: `LINE` in the selected frame's file, `FILE:LINE` (a file the
/// binary names, or its last path elements), or a function's first line.
fn place_of(st: &State, env: &dyn Env, place: &str) -> Result<(String, u32), String> {
    let number = |n: &str| n.parse::<u32>().ok().filter(|n| *n > 0);
    if let Some(line) = number(place) {
        let (g, of) = st.stack_view()?;
        let f = g
            .frames
            .get(st.frame)
            .ok_or_else(|| format!("{of} has no frame {}", st.frame))?;
        return Ok((f.file.to_string(), line));
    }
    if let Some((file, line)) = place
        .rsplit_once(':')
        .and_then(|(f, l)| Some((f, number(l)?)))
    {
        return Ok((known_file(st, env, file)?, line));
    }
    match env.function_start(place) {
        Some(r) => r,
        None => Err(format!(
            "{place:?}: a saved snapshot has no function table; list FILE:LINE or LINE"
        )),
    }
}

/// The file the binary names that is `name` or ends with `/name`: from the function table when
/// there is one, else from the snapshot's frames.
pub fn file_matches(file: &str, name: &str) -> bool {
    file == name
        || file
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('/'))
}

/// The one file [`file_matches`] `name`.
fn known_file(st: &State, env: &dyn Env, name: &str) -> Result<String, String> {
    let mut found: Vec<String> = match env.binary_files(name) {
        Some(files) => files,
        None => st
            .snap
            .goroutines
            .iter()
            .flat_map(|g| g.frames.iter().map(|f| f.file.to_string()))
            .filter(|f| file_matches(f, name))
            .collect(),
    };
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no file {name:?} in the binary (a saved snapshot: in its stacks)"
        )),
        many => Err(format!(
            "{name:?} names several files: {}",
            many.iter().map(|f| text(f)).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Replaces the snapshot, keeping the selection where it still exists.
fn refresh(st: &mut State, snap: Snapshot) {
    let old = std::mem::replace(&mut st.snap, snap);
    st.prev = Some(old);
    match st.selected() {
        Some(g) if st.frame < g.frames.len() => {}
        Some(_) => st.frame = 0,
        None => st.frame = 0,
    }
    if st
        .thread
        .is_some_and(|t| !st.snap.threads.iter().any(|x| x.tid == t))
    {
        st.thread = st
            .selected()
            .and_then(|g| g.thread)
            .or(st.snap.threads.first().map(|t| t.tid));
    }
}

fn help(cmd: Option<&str>, out: &mut dyn Write) -> Result<(), String> {
    if let Some(c) = cmd {
        let Some((_, summary, usage)) = COMMANDS.iter().find(|(names, _, _)| names.contains(&c))
        else {
            return match delve_only(c) {
                Some(why) => writeln!(out, "{why}").map_err(io),
                None => Err(format!("unknown command {c:?}; `help` lists the commands")),
            };
        };
        return writeln!(
            out,
            "{summary}\n\n\t{}",
            usage.replace('\n', "\n\t").replace("\n\t\n", "\n\n")
        )
        .map_err(io);
    }
    help_all(out).map_err(io)
}

/// An output error as a command error.
fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn help_all(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "The following commands are available:\n")?;
    for (names, summary, _) in COMMANDS {
        let n = if names.len() > 1 {
            format!("{} (alias: {})", names[0], names[1..].join(" | "))
        } else {
            names[0].to_string()
        };
        writeln!(out, "    {n:<36} {summary}")?;
    }
    writeln!(
        out,
        "\nEvery command reads the snapshot; the target runs on between commands unless --hold."
    )?;
    writeln!(
        out,
        "delve's commands that run, stop or change the target are not goroscope's: help CMD says why and what to use."
    )?;
    writeln!(
        out,
        "Type help followed by a command for full documentation."
    )
}

fn stack_args(args: &[&str]) -> Result<(usize, bool), String> {
    let mut depth = BT_DEPTH;
    let mut full = false;
    for a in args {
        match *a {
            "-full" => full = true,
            n => {
                depth = n.parse().map_err(|_| {
                    format!("{n:?}: depth must be a number (usage: stack [<depth>] [-full])")
                })?
            }
        }
    }
    Ok((depth, full))
}

/// `goroutine`, `goroutine <id>`, `goroutine <id> <command>`.
fn goroutine(
    st: &mut State,
    args: &[&str],
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<Flow, String> {
    let w = |r: std::io::Result<()>| r.map_err(io);
    let Some((id, rest)) = args.split_first() else {
        let g = st.need_selected()?;
        let p = st.palette;
        let loc = |l: Loc| match g.location(l) {
            Some(x) if x.file.is_empty() => p.function(&x.function, &x.function),
            Some(x) => format!(
                "{}:{} {} ({:#x})",
                text(&x.file),
                x.line,
                p.function(&x.function, &x.function),
                x.pc
            ),
            None => "?".into(),
        };
        let mut s = format!("Goroutine {}:\n", g.id);
        for l in [Loc::Current, Loc::User, Loc::Go, Loc::Start] {
            s.push_str(&format!("\t{}: {}\n", l.title(), loc(l)));
        }
        let minutes = if g.wait_minutes >= 1 {
            format!(", {} minutes", g.wait_minutes)
        } else {
            String::new()
        };
        s.push_str(&format!("\tState: {}{minutes}\n", text(&g.state)));
        if let Some(t) = g.thread {
            s.push_str(&format!("\tThread: {t}\n"));
        }
        if !g.labels.is_empty() {
            let l: Vec<String> = g
                .labels
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            s.push_str(&format!("\tLabels: {}\n", l.join(", ")));
        }
        w(out.write_all(s.as_bytes()))?;
        return Ok(Flow::Continue);
    };
    let id: u64 = id
        .parse()
        .map_err(|_| format!("{id:?} is not a goroutine id"))?;
    let g = st.goroutine(id)?;
    let thread = g.thread;
    if rest.is_empty() {
        let old = st.goroutine.unwrap_or(0);
        st.goroutine = Some(id);
        st.on_thread = false;
        st.frame = 0;
        if thread.is_some() {
            st.thread = thread;
        }
        let on = thread.map(|t| format!(" (thread {t})")).unwrap_or_default();
        w(writeln!(out, "Switched from {old} to {id}{on}"))?;
        if st.selected().is_some_and(|g| g.system) {
            w(writeln!(
                out,
                "goroutine {id} is a runtime goroutine (hidden by `goroutines`; {SHOW_RUNTIME} lists them)"
            ))?;
        }
        return Ok(Flow::Continue);
    }
    // A one-shot command on another goroutine: the selection is kept.
    let saved = (st.goroutine, st.frame, st.on_thread);
    st.goroutine = Some(id);
    st.frame = 0;
    st.on_thread = false;
    let r = exec(st, &rest.join(" "), env, out);
    if st.goroutine == Some(id) {
        (st.goroutine, st.frame, st.on_thread) = saved;
    }
    r
}

/// `frame <n> [cmd]`, `up [n] [cmd]`, `down [n] [cmd]`.
fn frame(
    st: &mut State,
    name: &str,
    args: &[&str],
    env: &mut dyn Env,
    out: &mut dyn Write,
) -> Result<Flow, String> {
    let (n, rest) = match args.split_first() {
        Some((n, rest)) if n.parse::<i64>().is_ok() => (n.parse::<i64>().unwrap_or(0), rest),
        _ if name == "frame" => return Err("not enough arguments: frame <n> [command]".into()),
        _ => (1, args),
    };
    let target = match name {
        "up" => st.frame as i64 + n,
        "down" => st.frame as i64 - n,
        _ => n,
    };
    let (g, of) = st.stack_view()?;
    if target < 0 || target as usize >= g.frames.len() {
        return Err(format!(
            "Invalid frame {target}: {of} has frames 0 to {}",
            g.frames.len().saturating_sub(1)
        ));
    }
    if !rest.is_empty() {
        let saved = (st.goroutine, st.frame);
        st.frame = target as usize;
        let r = exec(st, &rest.join(" "), env, out);
        // The one-shot frame is undone unless the command selected another goroutine (whose
        // frame it chose): an old frame number means nothing there.
        if st.goroutine == saved.0 {
            st.frame = saved.1;
        }
        return r;
    }
    st.frame = target as usize;
    list(st, env, false, out).map_err(|e| e.to_string())?;
    Ok(Flow::Continue)
}

/// The selected frame's position and its source: `list` (`scoped` headers as delve's `list`)
/// and `frame`/`up`/`down` (delve's `Frame N:` header).
fn list(st: &State, env: &dyn Env, is_list: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let (g, of) = match st.stack_view() {
        Ok(v) => v,
        Err(e) => return writeln!(out, "{e}"),
    };
    let Some(f) = g.frames.get(st.frame) else {
        return writeln!(out, "{of} has no frames");
    };
    let p = st.palette;
    if let Some(top) = g.frames.first()
        && !(is_list && st.frame > 0)
    {
        writeln!(
            out,
            "> {}() {}:{} (PC: {:#x})",
            p.function(&top.function, &top.function),
            text(&top.file),
            top.line,
            top.pc
        )?;
    }
    if is_list && st.frame > 0 {
        let mut of = of;
        if let Some(c) = of.get_mut(..1) {
            c.make_ascii_uppercase();
        }
        writeln!(
            out,
            "{of} frame {} at {}:{} (PC: {:#x})",
            st.frame,
            text(&f.file),
            f.line,
            f.pc
        )?;
    } else if !is_list {
        writeln!(
            out,
            "Frame {}: {}:{} (PC: {:x})",
            st.frame,
            text(&f.file),
            f.line,
            f.pc
        )?;
    }
    match env.source(&f.file) {
        Ok(text) => source_lines(&text, f.line, p, out),
        Err(e) => writeln!(out, "(no source: {})", text(&e)),
    }
}

/// Lines `line-5 ..= line+5` of `text`, delve's way: `=>` on `line`, then `%4d:\t`.
fn source_lines(text: &str, line: u32, p: Palette, out: &mut dyn Write) -> std::io::Result<()> {
    let first = line.saturating_sub(LIST_CONTEXT).max(1);
    for (i, l) in text
        .lines()
        .enumerate()
        .skip(first as usize - 1)
        .take((line + LIST_CONTEXT + 1 - first) as usize)
    {
        let n = i as u32 + 1;
        let arrow = if n == line { p.mark("=>") } else { "  ".into() };
        writeln!(
            out,
            "{arrow}{n:>4}:\t{}",
            crate::render::safe::source_line(l)
        )?;
    }
    Ok(())
}

/// The `-group` key of delve's words (and goroscope's `--group-by` names).
fn group_by(words: &[&str]) -> Result<GroupBy, String> {
    Ok(match words {
        ["userloc"] => GroupBy::UserFrame,
        ["curloc"] => GroupBy::CurrentFrame,
        ["goloc" | "go"] => GroupBy::GoStatement,
        ["startloc"] => GroupBy::Start,
        ["running"] => GroupBy::Running,
        ["user"] => GroupBy::System,
        ["label", key] => GroupBy::Label(key.to_string()),
        [one] => GroupBy::parse(one)?,
        _ => return Err("-group takes userloc, curloc, goloc, startloc, running, user, state, stack or label KEY".into()),
    })
}

/// Parsed `goroutines` arguments.
#[derive(Debug, Default)]
struct GrsArgs {
    loc: Loc,
    stacks: Option<usize>,
    labels: bool,
    filter: Filter,
    group: Option<GroupBy>,
}

fn grs_args(args: &[&str]) -> Result<GrsArgs, String> {
    let mut a = GrsArgs::default();
    let mut i = 0;
    // The words after a flag, up to the next flag.
    let operand = |i: &mut usize| -> Vec<&str> {
        let start = *i;
        while *i < args.len() && !args[*i].starts_with('-') {
            *i += 1;
        }
        args[start..*i].to_vec()
    };
    while i < args.len() {
        let flag = args[i];
        i += 1;
        match flag {
            "-u" => a.loc = Loc::User,
            "-r" => a.loc = Loc::Current,
            "-g" => a.loc = Loc::Go,
            "-s" => a.loc = Loc::Start,
            "-l" => a.labels = true,
            "-t" => {
                let depth = args.get(i).and_then(|d| d.parse().ok());
                if depth.is_some() {
                    i += 1;
                }
                a.stacks = Some(depth.unwrap_or(GRS_DEPTH));
            }
            "-with" | "-w" | "-without" | "-wo" => {
                let with = matches!(flag, "-with" | "-w");
                let words = operand(&mut i);
                // delve's match is a substring; `re:` asks for a regular expression.
                let pattern = |w: &[&str]| -> Result<LocMatch, String> {
                    let p = w.join(" ");
                    match p.strip_prefix("re:") {
                        Some(re) => Regex::new(re)
                            .map(LocMatch::Regex)
                            .map_err(|e| format!("{flag}: {}", e.to_string().replace('\n', " "))),
                        None => Ok(LocMatch::Contains(p)),
                    }
                };
                let cond = match words.as_slice() {
                    ["userloc" | "user", p @ ..] if !p.is_empty() => {
                        Cond::Loc(Loc::User, pattern(p)?)
                    }
                    ["curloc", p @ ..] if !p.is_empty() => Cond::Loc(Loc::Current, pattern(p)?),
                    ["goloc" | "go", p @ ..] if !p.is_empty() => Cond::Loc(Loc::Go, pattern(p)?),
                    ["startloc", p @ ..] if !p.is_empty() => Cond::Loc(Loc::Start, pattern(p)?),
                    ["label", kv] => match kv.split_once('=') {
                        Some((k, v)) => Cond::Label(k.into(), Some(v.into())),
                        None => Cond::Label(kv.to_string(), None),
                    },
                    ["running"] => Cond::Running,
                    ["user"] => Cond::User,
                    ["state", s @ ..] if !s.is_empty() => Cond::State(s.join(" ")),
                    _ => {
                        return Err(format!(
                            "{flag} takes userloc|curloc|goloc|startloc TEXT, label K[=V], running, user or state STATE"
                        ));
                    }
                };
                a.filter.conds.push((with, cond));
            }
            "-group" => a.group = Some(group_by(&operand(&mut i))?),
            other => {
                return Err(format!(
                    "unknown flag {other:?}; `help goroutines` lists them"
                ));
            }
        }
    }
    // Runtime goroutines are hidden, as Go's traceback hides them, unless a condition asks
    // about that classification.
    a.filter.system = a.filter.conds.iter().any(|(_, c)| matches!(c, Cond::User));
    Ok(a)
}

fn goroutines(st: &State, args: &[&str], out: &mut dyn Write) -> Result<(), String> {
    let a = grs_args(args)?;
    list_goroutines(st, &a, out).map_err(io)
}

fn list_goroutines(st: &State, a: &GrsArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let opts = grs::Options {
        stacks: a.stacks.is_some(),
        depth: a.stacks,
        system: true,
        selected: st.goroutine,
        loc: a.loc,
        palette: st.palette,
    };
    let mut gs: Vec<&Goroutine> = st
        .snap
        .goroutines
        .iter()
        .filter(|g| a.filter.keep(g))
        .collect();
    gs.sort_by_key(|g| g.id);
    let with_labels =
        |gs: &[&Goroutine], indent: &str, out: &mut dyn Write| -> std::io::Result<()> {
            for g in gs {
                grs::list(&[g], opts, indent, out)?;
                if a.labels && !g.labels.is_empty() {
                    let l: Vec<String> = g
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                        .collect();
                    writeln!(out, "{indent}\tLabels: {}", l.join(", "))?;
                }
            }
            Ok(())
        };
    match &a.group {
        None => with_labels(&gs, "", out)?,
        Some(by) => {
            let groups = group::group(gs.iter().copied(), by);
            for (i, grp) in groups.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{}", group_title(grp.representative(), by))?;
                let shown: Vec<&Goroutine> =
                    grp.members.iter().copied().take(GROUP_MEMBERS).collect();
                with_labels(&shown, "\t", out)?;
                writeln!(out, "\tTotal: {}", grp.members.len())?;
            }
        }
    }
    // The runtime goroutines the listing would have shown but for Go's rule of hiding them.
    let mut all = a.filter.clone();
    all.system = true;
    let hidden = if a.filter.system {
        0
    } else {
        st.snap
            .goroutines
            .iter()
            .filter(|g| g.system && all.keep(g))
            .count()
    };
    if hidden > 0 {
        writeln!(
            out,
            "({hidden} runtime goroutine{} hidden, as Go's traceback hides them: {SHOW_RUNTIME} lists them)",
            if hidden == 1 { "" } else { "s" }
        )?;
    }
    writeln!(out, "[{} goroutines]", gs.len())
}

/// The command that lists runtime goroutines.
const SHOW_RUNTIME: &str = "`goroutines -without user`";

/// The session's report on a new snapshot: `line` and how many of its goroutines are the
/// runtime's own, which `goroutines` hides.
pub fn snapshot_report(snap: &Snapshot, line: String) -> String {
    match snap.goroutines.iter().filter(|g| g.system).count() {
        0 => line,
        n => format!(
            "{line} ({n} of them the runtime's, hidden by `goroutines` as by Go's traceback; {SHOW_RUNTIME} lists them)"
        ),
    }
}

/// A group's heading, safe to print: the location it shares, or its key.
fn group_title(rep: &Goroutine, by: &GroupBy) -> String {
    let loc = match by {
        GroupBy::UserFrame => Loc::User,
        GroupBy::CurrentFrame => Loc::Current,
        GroupBy::GoStatement => Loc::Go,
        GroupBy::Start => Loc::Start,
        GroupBy::Stack => {
            let at = rep
                .location(Loc::User)
                .map(|l| format!("{}:{} {}", l.file, l.line, l.function))
                .unwrap_or_default();
            return text(&format!("Identical stacks [{}] at {at}", rep.state)).into_owned();
        }
        _ => return crate::render::grouped::title(rep, by),
    };
    let title = match rep.location(loc) {
        Some(l) if l.file.is_empty() => format!("{}: {}", loc.title(), l.function),
        Some(l) => format!("{}: {}:{} {}", loc.title(), l.file, l.line, l.function),
        None => format!("{}: ?", loc.title()),
    };
    text(&title).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{CreatedBy, Frame, Thread};

    struct NoEnv;
    impl Env for NoEnv {
        fn refresh(&mut self) -> Result<(Snapshot, String), String> {
            let mut s = sample();
            s.goroutines.retain(|g| g.id != 7);
            s.threads.clear();
            Ok((s, "refreshed".into()))
        }
        fn source(&self, path: &str) -> Result<String, String> {
            if path == "/src/main.go" {
                Ok((1..=30).map(|i| format!("line {i}\n")).collect())
            } else {
                Err(format!("{path}: no such file"))
            }
        }
    }

    #[test]
    fn completed_flags_and_keys_are_the_parsers_own() {
        for (cmd, flags) in FLAGS {
            assert!(command_name(cmd) == Some(*cmd), "{cmd}");
            for f in *flags {
                let ok = match *cmd {
                    "goroutines" => grs_args(&[f, "label", "k"]).is_ok() || grs_args(&[f]).is_ok(),
                    "stack" => stack_args(&[f]).is_ok(),
                    _ => group_by(&["stack"]).is_ok() && *f == "-group",
                };
                assert!(ok, "{cmd} {f}");
            }
        }
        for k in GROUP_KEYS {
            assert!(
                group_by(&[k]).is_ok() || group_by(&[k, "k"]).is_ok(),
                "-group {k}"
            );
        }
        for k in COND_KEYS {
            assert!(
                grs_args(&["-with", k]).is_ok() || grs_args(&["-with", k, "x"]).is_ok(),
                "-with {k}"
            );
        }
    }

    fn frame(f: &str, file: &str, line: u32) -> Frame {
        Frame {
            function: f.into(),
            file: file.into(),
            line,
            pc: 0x1000 + line as u64,
            ..Default::default()
        }
    }

    fn sample() -> Snapshot {
        let mut s = Snapshot::default();
        s.goroutines.push(Goroutine {
            id: 1,
            state: "chan receive".into(),
            wait_minutes: 3,
            frames: vec![
                frame("runtime.gopark", "/go/proc.go", 400),
                frame("main.main", "/src/main.go", 12),
            ],
            ..Default::default()
        });
        s.goroutines.push(Goroutine {
            id: 7,
            state: "running".into(),
            thread: Some(42),
            frames: vec![
                frame("main.spin", "/src/main.go", 20),
                frame("main.loop", "/src/main.go", 25),
            ],
            created_by: Some(CreatedBy {
                function: "main.main".into(),
                file: "/src/main.go".into(),
                line: 10,
                ..Default::default()
            }),
            labels: vec![("tenant".into(), "a".into())],
            ..Default::default()
        });
        s.goroutines.push(Goroutine {
            id: 2,
            state: "force gc (idle)".into(),
            system: true,
            frames: vec![frame("runtime.forcegchelper", "/go/proc.go", 300)],
            ..Default::default()
        });
        s.threads.push(Thread {
            tid: 42,
            pc: 0x1014,
            function: Some("main.spin".into()),
            file: "/src/main.go".into(),
            line: 20,
            goid: Some(7),
            ..Default::default()
        });
        s
    }

    fn run(st: &mut State, line: &str) -> Result<String, String> {
        let mut out = Vec::new();
        exec(st, line, &mut NoEnv, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn select_walk_and_list() {
        let mut st = State::new(sample(), Palette::default());
        assert_eq!(st.goroutine, Some(1));
        let grs = run(&mut st, "grs").unwrap();
        assert!(grs.starts_with("* Goroutine 1 - User: /src/main.go:12 main.main (0x100c) [chan receive, 3 minutes]\n"), "{grs}");
        assert!(grs.ends_with("(1 runtime goroutine hidden, as Go's traceback hides them: `goroutines -without user` lists them)\n[2 goroutines]\n"), "{grs}");
        assert!(run(&mut st, "gr 2").unwrap().ends_with("goroutine 2 is a runtime goroutine (hidden by `goroutines`; `goroutines -without user` lists them)\n"));
        run(&mut st, "gr 1").unwrap();
        assert_eq!(
            run(&mut st, "gr 7").unwrap(),
            "Switched from 1 to 7 (thread 42)\n"
        );
        let up = run(&mut st, "up").unwrap();
        assert!(
            up.starts_with(
                "> main.spin() /src/main.go:20 (PC: 0x1014)\nFrame 1: /src/main.go:25 (PC: 1019)\n"
            ),
            "{up}"
        );
        assert!(
            up.contains("=>  25:\tline 25\n")
                && up.contains("    20:\tline 20\n")
                && up.ends_with("    30:\tline 30\n"),
            "{up}"
        );
        assert!(run(&mut st, "up").unwrap_err().contains("Invalid frame 2"));
        assert!(
            run(&mut st, "list")
                .unwrap()
                .starts_with("Goroutine 7 frame 1 at /src/main.go:25")
        );
        let bt = run(&mut st, "gr 1 bt").unwrap();
        assert!(
            bt.starts_with("0  0x0000000000001190 in runtime.gopark\n      at /go/proc.go:400\n"),
            "{bt}"
        );
        assert_eq!(
            (st.goroutine, st.frame),
            (Some(7), 1),
            "one-shot keeps the selection"
        );
        assert!(
            run(&mut st, "frame 0 list")
                .unwrap()
                .starts_with("> main.spin()")
        );
        assert_eq!(st.frame, 1);
        assert!(
            run(&mut st, "gr 1 list")
                .unwrap()
                .contains("(no source: /go/proc.go: no such file)")
        );
    }

    #[test]
    fn filters_groups_and_refresh() {
        let mut st = State::new(sample(), Palette::default());
        let out = run(&mut st, "grs -with running").unwrap();
        assert!(
            out.contains("Goroutine 7 ")
                && !out.contains("Goroutine 1 ")
                && out.ends_with("[1 goroutines]\n"),
            "{out}"
        );
        let out = run(&mut st, "grs -with state chan receive").unwrap();
        assert!(
            out.contains("Goroutine 1 ") && out.ends_with("[1 goroutines]\n"),
            "{out}"
        );
        let out = run(&mut st, "grs -without user").unwrap();
        assert!(
            out.contains("Goroutine 2 - User: /go/proc.go:300 runtime.forcegchelper")
                && out.ends_with("[1 goroutines]\n"),
            "{out}"
        );
        let out = run(&mut st, "grs -with label tenant=a -l").unwrap();
        assert!(
            out.contains("\tLabels: \"tenant\":\"a\"\n") && out.ends_with("[1 goroutines]\n"),
            "{out}"
        );
        let out = run(&mut st, "grs -with go main.main -g").unwrap();
        assert!(
            out.contains("Goroutine 7 - Go: /src/main.go:10 main.main"),
            "{out}"
        );
        let out = run(&mut st, "grs -with go re:main\\.ma[i]n$ -g").unwrap();
        assert!(
            out.contains("Goroutine 7 - Go: ") && out.ends_with("[1 goroutines]\n"),
            "{out}"
        );
        let out = run(&mut st, "grs -with userloc main.go:20 in main.spin").unwrap();
        assert!(
            out.contains("Goroutine 7 - User: ") && out.ends_with("[1 goroutines]\n"),
            "{out}"
        );
        assert_eq!(
            run(&mut st, "grs -with userloc main.(").unwrap(),
            "[0 goroutines]\n"
        );
        assert!(
            run(&mut st, "grs -with userloc re:main.(")
                .unwrap_err()
                .starts_with("-with: regex parse error")
        );
        let out = run(&mut st, "grs -group running").unwrap();
        assert!(
            out.contains("not running\n\t* Goroutine 1 ") && out.contains("\tTotal: 1\n"),
            "{out}"
        );
        assert!(run(&mut st, "diff").is_err());
        run(&mut st, "gr 7").unwrap();
        let out = run(&mut st, "refresh").unwrap();
        assert_eq!(out, "refreshed\ngoroutine 7 is gone\n");
        let d = run(&mut st, "diff").unwrap();
        assert!(
            d.contains("goroutines: 2 -> 1 (-1)") && d.contains("vanished"),
            "{d}"
        );
        assert!(run(&mut st, "bt").is_err());
        assert_eq!(
            run(&mut st, "thread 42").unwrap_err(),
            "no thread 42 in this snapshot; `threads` lists them"
        );
        st.snap.threads.push(Thread {
            tid: 43,
            ..Default::default()
        });
        assert_eq!(
            run(&mut st, "thread 43").unwrap(),
            "Switched from <none> to 43\nthread 43 runs no goroutine; `goroutine <id>` selects one\n"
        );
        assert!(
            run(&mut st, "goroutine")
                .unwrap_err()
                .starts_with("thread 43 runs no goroutine")
        );
        assert!(
            run(&mut st, "bt")
                .unwrap_err()
                .starts_with("thread 43 runs no goroutine")
        );
    }

    #[test]
    fn thread_shows_its_own_stack_until_a_goroutine_is_selected() {
        let mut st = State::new(sample(), Palette::default());
        let frame = |function: &str, line| Frame {
            function: function.into(),
            file: "/go/src/runtime/proc.go".into(),
            line,
            pc: 0x4000 + u64::from(line),
            ..Default::default()
        };
        st.snap.threads.push(Thread {
            tid: 44,
            m_id: Some(3),
            stack: "g0".into(),
            frames: vec![
                frame("runtime.stopm", 3023),
                frame("runtime.schedule", 4179),
            ],
            stack_error: Some("unexpected return pc 0x1".into()),
            ..Default::default()
        });
        run(&mut st, "thread 44").unwrap();
        assert_eq!(
            run(&mut st, "bt").unwrap(),
            "0  0x0000000000004bcf in runtime.stopm\n      at /go/src/runtime/proc.go:3023\n1  0x0000000000005053 in runtime.schedule\n      at /go/src/runtime/proc.go:4179\n(truncated: unexpected return pc 0x1)\n"
        );
        assert!(
            run(&mut st, "up")
                .unwrap()
                .contains("Frame 1: /go/src/runtime/proc.go:4179 (PC: 5053)")
        );
        assert_eq!(
            run(&mut st, "frame 2").unwrap_err(),
            "Invalid frame 2: thread 44 has frames 0 to 1"
        );
        assert!(
            run(&mut st, "goroutine")
                .unwrap_err()
                .starts_with("thread 44 runs no goroutine")
        );
        // A one-shot goroutine command shows the goroutine's frames and keeps the thread's.
        assert!(run(&mut st, "gr 7 bt").unwrap().contains("main.spin"));
        assert!(run(&mut st, "bt").unwrap().contains("runtime.stopm"));
        run(&mut st, "gr 7").unwrap();
        assert!(!run(&mut st, "bt").unwrap().contains("runtime.stopm"));
    }

    #[test]
    fn a_goroutine_chosen_in_a_one_shot_frame_stays_selected_at_frame_0() {
        let mut st = State::new(sample(), Palette::default());
        run(&mut st, "gr 7").unwrap();
        run(&mut st, "frame 1").unwrap();
        run(&mut st, "frame 1 gr 2").unwrap();
        assert_eq!((st.goroutine, st.frame), (Some(2), 0));
        assert!(
            run(&mut st, "list")
                .unwrap()
                .starts_with("> runtime.forcegchelper() /go/proc.go:300")
        );
        run(&mut st, "gr 7").unwrap();
        run(&mut st, "frame 1").unwrap();
        run(&mut st, "frame 0 gr 7 bt").unwrap();
        assert_eq!(
            st.frame, 1,
            "a one-shot on the same goroutine keeps the frame"
        );
    }

    #[test]
    fn stack_depth_is_the_deepest_frame_shown() {
        let mut st = State::new(sample(), Palette::default());
        let frames = |s: &str| s.lines().filter(|l| l.contains(" in ")).count();
        let one = run(&mut st, "bt 0").unwrap();
        assert_eq!(
            (frames(&one), one.ends_with("(truncated)\n")),
            (1, true),
            "{one}"
        );
        let two = run(&mut st, "bt 1").unwrap();
        assert_eq!(
            (frames(&two), two.contains("truncated")),
            (2, false),
            "{two}"
        );
        assert!(run(&mut st, "help stack").unwrap().contains("`(inlined)`"));
    }

    #[test]
    fn help_and_errors() {
        let mut st = State::new(sample(), Palette::default());
        assert!(
            run(&mut st, "help")
                .unwrap()
                .contains("goroutines (alias: grs)")
        );
        assert!(run(&mut st, "help bt").unwrap().contains("-full"));
        assert!(
            run(&mut st, "nope")
                .unwrap_err()
                .contains("unknown command")
        );
        let why = run(&mut st, "break main.go:12").unwrap_err();
        assert!(
            why.starts_with("\"break\" is a delve command goroscope does not have: ")
                && why.contains("--hold")
                && !why.contains('\n'),
            "{why}"
        );
        assert!(run(&mut st, "next").unwrap_err().contains("`refresh`"));
        // Without memory (a saved snapshot) the value commands say why, in one line.
        for cmd in ["locals", "args", "print x"] {
            let why = run(&mut st, cmd).unwrap_err();
            assert!(
                why.contains("holds no memory") && !why.contains('\n'),
                "{why}"
            );
        }
        assert!(
            run(&mut st, "print")
                .unwrap_err()
                .starts_with("usage: print")
        );
        assert_eq!(
            run(&mut st, "help whatis").unwrap().trim_end(),
            run(&mut st, "whatis x").unwrap_err()
        );
        assert!(run(&mut st, "config max-string-len 3").is_ok());
        assert_eq!(st.values.max_string_len, 3);
        assert!(run(&mut st, "config max-string-len x").is_err());
        assert!(
            run(&mut st, "bt -full")
                .unwrap()
                .contains("(values: a saved snapshot holds no memory")
        );
        assert!(run(&mut st, "grs -x").unwrap_err().contains("unknown flag"));
        assert_eq!(
            exec(&mut st, "quit", &mut NoEnv, &mut Vec::new()),
            Ok(Flow::Quit)
        );
        assert!(
            run(&mut st, "threads")
                .unwrap()
                .contains("Thread 42 at 0x1014 /src/main.go:20 main.spin (goroutine 7)")
        );
        assert!(run(&mut st, "bt -full").unwrap().contains("args: (none)"));
    }
}
