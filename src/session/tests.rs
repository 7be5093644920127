use super::listing::{group_by, grs_args};
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
    Frame::new(
        crate::snapshot::Site {
            function: f.into(),
            file: file.into(),
            line,
            pc: 0x1000 + line as u64,
            ..Default::default()
        }
        .into(),
        Default::default(),
        0,
        0,
    )
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
    assert!(
        grs.starts_with(
            "* Goroutine 1 - User: /src/main.go:12 main.main (0x100c) [chan receive, 3 minutes]\n"
        ),
        "{grs}"
    );
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
    let frame = |function: &str, line| {
        Frame::new(
            crate::snapshot::Site {
                function: function.into(),
                file: "/go/src/runtime/proc.go".into(),
                line,
                pc: 0x4000 + u64::from(line),
                ..Default::default()
            }
            .into(),
            Default::default(),
            0,
            0,
        )
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
