//! The session's command table: names, summaries and help texts, the flags and keys the line
//! editor completes, and delve's commands goroscope does not have, with what to use instead.

use super::io;
use std::io::Write;
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
        "holders\n\nEvery sync.Mutex and sync.RWMutex a goroutine is known to hold, with the holding frame and\nhow it is known (`defer`: the frame has a pending deferred unlock of it, `mu.Lock(); defer\nmu.Unlock()`; possible holders of a lock others wait for that no deferred unlock names:\n`pointer`, the frame points at the lock or into its heap object, `code`, its code takes the\nlock's address), and the goroutines waiting for it.",
    ),
    (
        &["deadlocks"],
        "Deadlock verdicts.",
        "deadlocks\n\nThe verdicts `goroscope deadlocks` gives on the current snapshot: a goroutine waiting for a\nlock it holds, a cycle of goroutines waiting for each other, a lock held while its holder is\nblocked for good, a lock held by nobody, a file lock the process waits for while it holds it.\nA verdict that rests on two moments (held by nobody, a holder in a system call) is kept only\nwhen the snapshot before the last `refresh` had it too.",
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
pub(super) fn delve_only(word: &str) -> Option<String> {
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

pub(super) fn help(cmd: Option<&str>, out: &mut dyn Write) -> Result<(), String> {
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
