//! Hostile targets: what a program, its binary, `/proc` or a file can put in front of goroscope
//! never reaches the output raw, and `list` opens only what the target's user could read in
//! the target's own file system.
//!
//! The fixture's "hostile" scenario (testdata/fixture/hostile.go) parks goroutines under pprof
//! labels full of escape sequences, CR, LF, BEL, NUL, invalid UTF-8, a right-to-left override
//! and an 8 KiB and a 1 MiB value, and in functions whose `//line` directives name
//! `/etc/shadow`, `/dev/zero` and files under `/tmp/goroscope-hostile` that the tests make (a
//! root-only secret, a FIFO, a file seen differently in another mount namespace) and a file
//! name with an escape sequence. Every command and format runs on it, on a process whose
//! executable's name is an escape sequence, and on crafted snapshot and text-dump files.

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{Child, Flavor, Output, TempDir, toolchains};

const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// Where the fixture's `//line` directives point (testdata/fixture/hostile.go).
const DIR: &str = "/tmp/goroscope-hostile";
/// The first line of the root-only secret the tests write.
const SECRET: &str = "SECRET-ONLY-ROOT-MAY-READ";
/// Tests that set up DIR or start targets that read it run one at a time.
static LOCK: Mutex<()> = Mutex::new(());

fn fixture_exe() -> PathBuf {
    let tc = toolchains::newest();
    support::build_fixture(&tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"))
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn goroscope(args: &[&str]) -> Output {
    support::run_goroscope(args, RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
}

fn goroscope_stdin(args: &[&str], input: &str) -> Output {
    let dir = TempDir::new("hostile-batch");
    let file = dir.0.join("commands");
    std::fs::write(&file, input).unwrap();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--batch", file.to_str().unwrap()]);
    goroscope(&all)
}

/// Removes DIR when dropped.
struct Files;

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(DIR);
    }
}

/// The files the fixture's `//line` directives name: a root-only secret (mode 0600), a FIFO,
/// and a world-readable file that another mount namespace shows differently; removed when the
/// result is dropped.
#[must_use]
fn make_files() -> Files {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_dir_all(DIR);
    std::fs::create_dir_all(DIR).unwrap();
    std::fs::set_permissions(DIR, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = Path::new(DIR).join("secret.go");
    std::fs::write(
        &secret,
        format!("{SECRET}\n{SECRET} line 2\n{SECRET} line 3\n"),
    )
    .unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let view = Path::new(DIR).join("view.go");
    std::fs::write(
        &view,
        "HOST-VIEW line 1\nHOST-VIEW line 2\nHOST-VIEW line 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&view, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fifo = std::ffi::CString::new(format!("{DIR}/fifo.go")).unwrap();
    // SAFETY: mkfifo reads the path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o666) }, 0, "mkfifo");
    Files
}

/// A copy of the fixture that uid 65534 can run.
fn world_readable_fixture(dir: &TempDir) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.0.join("fixture");
    std::fs::copy(fixture_exe(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    exe
}

/// The hostile fixture run as uid 65534 (nobody), through setpriv, which execs it in place.
fn start_as_nobody(exe: &Path) -> Child {
    let setpriv = which("setpriv").expect("setpriv (util-linux)");
    let args = [
        "--regid=65534",
        "--clear-groups",
        exe.to_str().unwrap(),
        "hostile",
    ];
    Child::start_args(&setpriv, "--reuid=65534", &args).unwrap_or_else(|e| panic!("{e}"))
}

/// Characters that must never reach a terminal: C0 controls but the layout's LF and TAB, DEL,
/// C1 controls, bidirectional and invisible formatting characters. JSON escapes them too.
fn bad_chars(text: &str) -> Vec<(usize, char)> {
    text.char_indices()
        .filter(|&(_, c)| {
            let u = c as u32;
            (u < 0x20 && c != '\n' && c != '\t')
                || (0x7f..0xa0).contains(&u)
                || matches!(u, 0x061c | 0x200b..=0x200f | 0x2028..=0x202e | 0x2060..=0x206f | 0xfeff)
        })
        .take(5)
        .collect()
}

#[track_caller]
fn assert_safe(what: &str, out: &Output) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let bad = bad_chars(text);
        assert!(
            bad.is_empty(),
            "{what}: {stream} has raw control characters {bad:?}:\n{}",
            excerpt(text, bad[0].0)
        );
        assert!(
            !text.lines().any(|l| l.starts_with("goroutine 999 [fake]")),
            "{what}: a label forged a line:\n{text}"
        );
        // JSON keeps every string whole (escaped): it is data. Human formats cut.
        let json = text.starts_with('{') || text.starts_with('[');
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        assert!(
            json || longest < 200_000,
            "{what}: {stream} has a {longest}-byte line: a long string was not cut"
        );
    }
}

fn excerpt(text: &str, at: usize) -> String {
    let mut a = at.saturating_sub(200);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (at + 200).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    format!("{:?}", &text[a..b])
}

#[track_caller]
fn ok<'o>(what: &str, out: &'o Output) -> &'o str {
    assert!(
        out.status.success(),
        "{what}: {}\nstderr: {}\nstdout: {}",
        out.status,
        out.stderr,
        excerpt(&out.stdout, 0)
    );
    &out.stdout
}

const FORMATS: &[&str] = &["go", "grouped", "grs", "json", "pprof", "debug1", "blocked"];
const GROUPINGS: &[&str] = &[
    "stack",
    "user-frame",
    "current-frame",
    "go-statement",
    "start",
    "state",
    "running",
    "system",
    "label:path",
    "label:long",
    "label:rlo",
    "label:utf8",
    "label:huge",
    "label:k\x1b[31m",
];

/// Every view of one source (`dump PID`, `show FILE`): each format and grouping.
fn every_view(cmd: &str, source: &[&str]) {
    let run = |extra: &[&str]| {
        let mut args = vec![cmd, "-q"];
        args.extend_from_slice(extra);
        args.extend_from_slice(source);
        let out = goroscope(&args);
        let what = args.join(" ");
        ok(&what, &out);
        (what, out)
    };
    for f in FORMATS {
        let (what, out) = run(&["--format", f]);
        // A pprof profile is gzip-compressed protobuf, for pprof to read (below).
        if *f != "pprof" {
            assert_safe(&what, &out);
        }
    }
    for by in GROUPINGS {
        let (what, out) = run(&["--group-by", by]);
        assert_safe(&what, &out);
    }
    let (what, out) = run(&["--group-by", "label:long"]);
    assert!(
        out.stdout.contains("...(+"),
        "{what}: the 8 KiB label is not cut with a marker:\n{}",
        out.stdout
    );
}

#[test]
fn no_hostile_string_reaches_any_output() {
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Child::start(&fixture_exe(), "hostile").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();

    // The runtime quotes labels in its own traceback; goroscope's dump shows the same header.
    let dump = goroscope(&["dump", "-q", &pid]);
    assert_safe("dump", &dump);
    every_view("dump", &[&pid]);
    let out = goroscope(&["dump", "-q", "--system", &pid]);
    assert_safe("dump --system", &out);
    let out = goroscope(&["dump", "-q", "--label", "path=x", &pid]);
    assert_safe("dump --label", &out);

    // The profile stores the label as the target has it; pprof's readers render it.
    let prof = std::process::Command::new(support::goroscope_bin())
        .args(["dump", "-q", "--format", "pprof", &pid])
        .output()
        .unwrap();
    assert!(prof.status.success());
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&prof.stdout[..]),
        &mut raw,
    )
    .unwrap();
    let label = b"/x\x1b]0;pwned\x07\x1b[2J\r\ngoroutine 999 [fake]:\n";
    assert!(
        raw.windows(label.len()).any(|w| w == label),
        "the profile does not hold the label's bytes"
    );

    for args in [
        &["grs", "-q"][..],
        &["grs", "-q", "-t"],
        &["threads", "-q"],
        &["inspect", "-q"],
    ] {
        let mut a = args.to_vec();
        a.push(&pid);
        let out = goroscope(&a);
        assert_safe(&a.join(" "), &out);
        ok(&a.join(" "), &out);
    }
    let out = goroscope(&["grs", "-q", "--json", &pid]);
    assert_safe("grs --json", &out);
    let out = goroscope(&["dump", "-q", "--thread-stacks", "--format", "json", &pid]);
    assert_safe("dump --thread-stacks --format json", &out);
    ok("dump --thread-stacks --format json", &out);
    // Exit 3 says there is a finding; either way the output is safe. The hostile fixture has no
    // leaked goroutine and no deadlock, so this covers only the no-finding output and stderr.
    for f in ["go", "grouped", "json"] {
        let out = goroscope(&["leaks", "-q", "--format", f, &pid]);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "leaks --format {f}: {}\nstderr: {}",
            out.status,
            out.stderr
        );
        assert_safe(&format!("leaks --format {f}"), &out);
    }
    for f in ["text", "json"] {
        let out = goroscope(&["deadlocks", "-q", "--format", f, &pid]);
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "deadlocks --format {f}: {}\nstderr: {}",
            out.status,
            out.stderr
        );
        assert_safe(&format!("deadlocks --format {f}"), &out);
    }
    let grs = goroscope(&["grs", "-q", &pid]).stdout;
    let ids: Vec<String> = grs
        .lines()
        .filter(|l| l.contains("main.hostile"))
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect();
    assert!(ids.len() >= 10, "hostile goroutines in grs:\n{grs}");
    for id in &ids {
        for args in [
            &["bt", "-q", &pid, id][..],
            &["bt", "-q", "--json", &pid, id],
            &["bt", "-q", "--full", &pid, id],
        ] {
            let out = goroscope(args);
            ok(&args.join(" "), &out);
            assert_safe(&args.join(" "), &out);
        }
    }

    // Snapshots of it: show, diff and watch.
    let dir = TempDir::new("hostile-snap");
    let a = dir.0.join("a.gsnap");
    let b = dir.0.join("b.gsnap");
    for f in [&a, &b] {
        let out = goroscope(&["snapshot", "-q", &pid, "-o", f.to_str().unwrap()]);
        ok("snapshot", &out);
    }
    every_view("show", &[a.to_str().unwrap()]);
    let out = goroscope(&["diff", "-q", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_safe("diff", &out);
    let out = goroscope(&[
        "diff",
        "-q",
        "--group-by",
        "label:path",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert_safe("diff --group-by label:path", &out);
    let out = goroscope(&[
        "watch",
        "-q",
        &pid,
        "--every",
        "100ms",
        "--count",
        "2",
        "--group-by",
        "label:path",
    ]);
    assert_safe("watch", &out);

    // Every session command, on every hostile goroutine.
    let mut script = String::from(
        "grs\ngrs -t\ngrs -l\ngrs -group label:path\ngrs -group label:long\ngrs -group label:rlo\n",
    );
    script.push_str("grs -group userloc\ngrs -group goloc\ngrs -group startloc\ngrs -s\nthreads\nblocked\nholders\nrefresh\ndiff\nhelp\n");
    for id in &ids {
        script.push_str(&format!("gr {id}\ngr\nbt\nbt -full\nstack -full 3\nframe 3\nlist\nup\ndown\nframe 0 list\ngr {id} bt\n"));
    }
    let threads = goroscope(&["threads", "-q", &pid]).stdout;
    for tid in threads.lines().filter_map(|l| {
        l.trim_start_matches(['*', ' '])
            .strip_prefix("Thread ")?
            .split_whitespace()
            .next()
    }) {
        script.push_str(&format!("thread {tid}\nbt\nframe 1\n"));
    }
    script.push_str(&format!(
        "snapshot {}\n",
        dir.0.join("session.gsnap").display()
    ));
    let out = goroscope_stdin(&["attach", "-q", &pid], &script);
    ok("attach", &out);
    assert_safe("attach", &out);
    assert!(
        out.stdout.contains("...(+"),
        "attach: the 8 KiB label is not cut:\n{}",
        out.stdout
    );
    for want in [
        "Switched from",
        "Frame 3:",
        "args:",
        "Labels: ",
        "Thread ",
        "Total: ",
    ] {
        assert!(
            out.stdout.contains(want),
            "attach: no {want:?} in:\n{}",
            excerpt(&out.stdout, 0)
        );
    }

    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
}

/// `--format debug1` prints labels as the target's own `pprof.Lookup("goroutine").WriteTo(w, 1)`,
/// bytes that are not UTF-8 included (`\xff`), and the traceback header as the runtime's own
/// (Go 1.26 prints such a byte as `\ufffd`, 1.27 as `\xff`), with every toolchain (label maps
/// before Go 1.24, slices after; headers with labels from 1.26, asked for with GODEBUG). A
/// label longer than goroscope prints (4096 bytes, where the runtime prints it whole) is cut
/// after the same start, its marker counting the bytes of the whole label; and the pprof
/// profile holds the labels' own bytes.
#[test]
fn debug1_labels_are_pprofs() {
    for tc in support::require_toolchains() {
        let exe = support::build_fixture(&tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"));
        let mut child = Child::start_env(&exe, "hostile", &[("GODEBUG", "tracebacklabels=1")])
            .unwrap_or_else(|e| panic!("{e}"));
        let pid = child.pid.to_string();
        let theirs = child.pprof_debug1().unwrap();
        let ours = goroscope(&["dump", "-q", "--format", "debug1", &pid]);
        let ours = ok("dump --format debug1", &ours);
        let line = |text: &str, key: &str| -> String {
            text.lines()
                .find(|l| l.starts_with("# labels: ") && l.contains(key))
                .unwrap_or_else(|| {
                    panic!(
                        "{}: no labels line with {key} in:\n{}",
                        tc.name(),
                        excerpt(text, 0)
                    )
                })
                .to_string()
        };
        for key in ["\"k\\x1b[31m\":\"red\"", "\"utf8\":"] {
            assert_eq!(line(ours, key), line(&theirs, key), "{}", tc.name());
        }
        // A value longer than goroscope prints is cut after the same quoted start, and the
        // marker counts the rest of the whole value (the 1 MiB one is read only in part).
        for key in ["\"long\":", "\"huge\":"] {
            let (o, t) = (line(ours, key), line(&theirs, key));
            let cut = o.find("\"...(+").expect("cut marker");
            assert!(
                t.starts_with(&o[..cut]),
                "{}: {o:.200}\n{t:.200}",
                tc.name()
            );
            let rest: usize = o[cut + 6..o.find(" bytes)").unwrap()].parse().unwrap();
            let shown = unquote(&o[key.len() + 12..cut]).len();
            let whole = unquote(&t[key.len() + 12..t.len() - 2]).len();
            assert_eq!(shown + rest, whole, "{}: {o:.200}", tc.name());
        }

        // The profile holds the labels' bytes as the runtime quotes them in debug1 (the 1 MiB
        // value: its first bytes, as many as goroscope reads).
        let prof = std::process::Command::new(support::goroscope_bin())
            .args(["dump", "-q", "--format", "pprof", &pid])
            .output()
            .unwrap();
        assert!(prof.status.success(), "{}", tc.name());
        let labels = profile_labels(&prof.stdout);
        for key in ["utf8", "long", "huge"] {
            let t = line(&theirs, &format!("\"{key}\":"));
            let want = unquote(&t[key.len() + 15..t.len() - 2]);
            let got = labels
                .iter()
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("{}: no label {key} in the profile", tc.name()));
            if key == "huge" {
                assert!(
                    got.len() >= 4096 && want.starts_with(got),
                    "{}: {} bytes of {key}",
                    tc.name(),
                    got.len()
                );
            } else {
                assert_eq!(*got, want, "{}: {key}", tc.name());
            }
        }

        // The traceback header quotes them as the runtime's own, where the runtime prints them.
        let stack = child.stack().unwrap();
        let dump = goroscope(&["dump", "-q", &pid]);
        let dump = ok("dump", &dump);
        for key in ["k\\x1b[31m", "utf8"] {
            let header = |text: &str| {
                text.lines()
                    .find(|l| l.starts_with("goroutine ") && l.contains(key))
                    .map(str::to_string)
            };
            assert_eq!(header(dump), header(&stack), "{}", tc.name());
            assert_eq!(
                header(&stack).is_some(),
                tc.minor() >= 26,
                "{}: labels in the runtime's header",
                tc.name()
            );
        }
        child.ping().unwrap();
    }
}

/// The bytes of a Go `%q` string's body (`strconv.Unquote` without the quotes).
fn unquote(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> u32 {
        let digits: String = chars.take(n).collect();
        u32::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("escape in {s:.100}"))
    };
    let push =
        |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(&mut out, c);
            continue;
        }
        match chars.next() {
            Some('a') => out.push(7),
            Some('b') => out.push(8),
            Some('f') => out.push(12),
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('v') => out.push(11),
            Some('x') => out.push(hex(&mut chars, 2) as u8),
            Some('u') => push(&mut out, char::from_u32(hex(&mut chars, 4)).unwrap()),
            Some('U') => push(&mut out, char::from_u32(hex(&mut chars, 8)).unwrap()),
            Some(e) => push(&mut out, e),
            None => panic!("a lone backslash ends {s:.100}"),
        }
    }
    out
}

/// Every sample label (key, value) of a gzipped pprof profile, as bytes (profile.proto: the
/// string table is field 6, samples field 2, a sample's labels its field 3 with the key's and
/// the value's string index in fields 1 and 2).
fn profile_labels(gz: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).unwrap();
    let top = proto_fields(&raw);
    let strings: Vec<&[u8]> = top
        .iter()
        .filter_map(|(f, v)| (*f == 6).then_some(*v))
        .collect();
    let mut out = Vec::new();
    for (_, sample) in top.iter().filter(|(f, _)| *f == 2) {
        for (_, label) in proto_fields(sample).iter().filter(|(f, _)| *f == 3) {
            let idx = |want: u64| {
                proto_fields(label)
                    .iter()
                    .find(|(f, _)| *f == want)
                    .map_or(0, |(_, v)| varint(&mut &v[..]) as usize)
            };
            out.push((strings[idx(1)].to_vec(), strings[idx(2)].to_vec()));
        }
    }
    out
}

/// A protobuf message's fields: number and bytes (a varint's own bytes, for [`varint`]).
fn proto_fields(mut b: &[u8]) -> Vec<(u64, &[u8])> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b);
        let v = match tag & 7 {
            0 => {
                let n = b.iter().position(|x| x & 0x80 == 0).unwrap() + 1;
                &b[..n]
            }
            2 => {
                let n = varint(&mut b) as usize;
                &b[..n]
            }
            w => panic!("wire type {w} in a goroscope profile"),
        };
        b = &b[v.len()..];
        out.push((tag >> 3, v));
    }
    out
}

fn varint(b: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate() {
        v |= u64::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            *b = &b[i + 1..];
            return v;
        }
    }
    panic!("a varint runs off the end");
}

/// The `list` frames of the fixture's `//line` directives, run as `goroscope attach --batch`.
fn list_of(pid: u32, function: &str) -> Output {
    let p = pid.to_string();
    let grs = goroscope(&["grs", "-q", &p]).stdout;
    let id = grs
        .lines()
        .find(|l| l.contains(function))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no {function} in:\n{grs}"))
        .to_string();
    let bt = goroscope(&["bt", "-q", &p, &id]).stdout;
    let frame = bt
        .lines()
        .find(|l| l.ends_with(&format!(" in {function}")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {function} frame in:\n{bt}"))
        .to_string();
    let start = Instant::now();
    let out = goroscope_stdin(
        &["attach", "-q", &p],
        &format!("gr {id}\nframe {frame} list\n"),
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "list of {function} took {:?}",
        start.elapsed()
    );
    ok(&format!("list of {function}"), &out);
    assert_safe(&format!("list of {function}"), &out);
    out
}

/// A root goroscope and a target run as nobody: `list` shows nothing nobody could not read,
/// and no FIFO or device, each refused in one line.
#[test]
fn list_opens_only_what_the_targets_user_could() {
    if !is_root() || which("setpriv").is_none() {
        println!("SKIP: needs root and setpriv to run the fixture as uid 65534");
        return;
    }
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _files = make_files();
    let dir = TempDir::new("hostile-nobody");
    let mut child = start_as_nobody(&world_readable_fixture(&dir));
    let shadow_head = std::fs::read_to_string("/etc/shadow")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string));

    let out = list_of(child.pid, "main.hostileShadow");
    assert!(
        out.stdout
            .contains("(no source: /etc/shadow: Permission denied"),
        "{}",
        out.stdout
    );
    if let Some(h) = shadow_head.filter(|h| !h.is_empty()) {
        assert!(!out.stdout.contains(&h), "{}", out.stdout);
    }
    let out = list_of(child.pid, "main.hostileSecret");
    assert!(!out.stdout.contains(SECRET), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("(no source: {DIR}/secret.go: Permission denied")),
        "{}",
        out.stdout
    );
    let out = list_of(child.pid, "main.hostileFifo");
    assert!(
        out.stdout.contains(&format!(
            "(no source: {DIR}/fifo.go: refused, not a regular file (a FIFO))"
        )),
        "{}",
        out.stdout
    );
    let out = list_of(child.pid, "main.hostileZero");
    assert!(
        out.stdout
            .contains("(no source: /dev/zero: refused, not a regular file (a character device))"),
        "{}",
        out.stdout
    );
    let out = list_of(child.pid, "main.hostileView");
    assert!(
        out.stdout.contains("HOST-VIEW line 2"),
        "a file nobody may read is shown:\n{}",
        out.stdout
    );
    let out = list_of(child.pid, "main.hostileEscapedFile");
    assert!(out.stdout.contains("\\x1b]0;pwned\\a.go"), "{}", out.stdout);
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
    drop(child);

    // The same secret is shown to a target that may read it (root), so the refusal above was
    // the user's, not a blanket one.
    let mut child = Child::start(&fixture_exe(), "hostile").unwrap_or_else(|e| panic!("{e}"));
    let out = list_of(child.pid, "main.hostileSecret");
    assert!(
        out.stdout.contains(&format!("=>   2:\t{SECRET} line 2")),
        "{}",
        out.stdout
    );
    child.ping().unwrap();
}

/// A target in another mount namespace: `list` reads its view of a path, never the host's.
#[test]
fn list_reads_the_targets_mount_namespace() {
    let Some(unshare) = which("unshare") else {
        println!("SKIP: unshare (util-linux) is not installed");
        return;
    };
    if !is_root() {
        println!("SKIP: needs root for a mount namespace");
        return;
    }
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _files = make_files();
    // In its namespace, a tmpfs over DIR holds another view.go and no secret.
    let script = format!(
        "mount -t tmpfs tmpfs {DIR} && printf 'TARGET-VIEW line 1\\nTARGET-VIEW line 2\\nTARGET-VIEW line 3\\n' > {DIR}/view.go && exec \"$0\" \"$@\""
    );
    let exe = fixture_exe();
    let args = [
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
        exe.to_str().unwrap(),
        "hostile",
    ];
    let mut child = match Child::start_args(&unshare, "-m", &args) {
        Ok(c) => c,
        Err(e) => {
            println!("SKIP: cannot start a fixture in a mount namespace: {e}");
            return;
        }
    };
    let out = list_of(child.pid, "main.hostileView");
    assert!(
        out.stdout.contains("TARGET-VIEW line 2") && !out.stdout.contains("HOST-VIEW"),
        "{}",
        out.stdout
    );
    let out = list_of(child.pid, "main.hostileSecret");
    assert!(
        out.stdout
            .contains(&format!("(no source: {DIR}/secret.go: No such file")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(SECRET), "{}", out.stdout);
    child.ping().unwrap();
}

/// A process whose executable's name is an escape sequence: `ps` shows it escaped.
#[test]
fn ps_escapes_names_and_paths() {
    let dir = TempDir::new("hostile-ps");
    let name = "fx\x1b]0;pwned\x07\x1b[2J\r";
    let exe = dir.0.join(name);
    std::fs::copy(fixture_exe(), &exe).unwrap();
    let mut child = Child::start(&exe, "chan").unwrap_or_else(|e| panic!("{e}"));
    let out = goroscope(&["ps", "-q"]);
    assert_safe("ps", &out);
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{} ", child.pid)))
        .expect("listed");
    assert!(line.contains("fx\\x1b]0;pwned\\a\\x1b[2J\\r"), "{line}");
    let out = goroscope(&["ps", "-q", "--json"]);
    assert_safe("ps --json", &out);
    let list: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let p = list
        .iter()
        .find(|p| p["pid"] == child.pid)
        .expect("listed by ps --json");
    assert_eq!(
        p["exe"].as_str().unwrap(),
        exe.to_str().unwrap(),
        "JSON keeps the name, escaped by JSON's rules"
    );
    child.ping().unwrap();
}

/// Go's own text dumps and snapshot files are read from anywhere: crafted ones with hostile
/// names, paths, states and labels, and 1 MB strings.
#[test]
fn crafted_files_are_shown_safely() {
    let dir = TempDir::new("hostile-files");
    let evil = "\x1b]0;pwned\x07\x1b[2J\r\u{202e}\u{9b}31m\0";
    let huge = "\x1b".repeat(1 << 20);
    let text = format!(
        "goroutine 1 [chan receive{evil}]:\nmain.f{evil}(0x1)\n\t/src/{evil}.go:1 +0x1\nmain.g{huge}()\n\t/src/{huge}.go:2 +0x2\ncreated by main.h{evil} in goroutine 0\n\t/src/h{evil}.go:3 +0x3\n\ngoroutine 2 [select]:\nmain.k()\n\t/src/k.go:1 +0x1\n"
    );
    let dump = dir.0.join("dump.txt");
    std::fs::write(&dump, &text).unwrap();
    let out = goroscope(&["show", "-q", dump.to_str().unwrap()]);
    ok("show dump.txt", &out);
    assert_safe("show dump.txt", &out);
    assert!(
        out.stdout.contains("...(+"),
        "1 MB name not cut:\n{}",
        excerpt(&out.stdout, 0)
    );
    for f in FORMATS {
        let out = goroscope(&["show", "-q", "--format", f, dump.to_str().unwrap()]);
        ok(&format!("show --format {f}"), &out);
        if *f != "pprof" {
            assert_safe(&format!("show dump.txt --format {f}"), &out);
        }
    }

    // A snapshot: the model as JSON, every string hostile.
    let json = goroscope(&["show", "-q", "--format", "json", dump.to_str().unwrap()]);
    let mut model: serde_json::Value =
        serde_json::from_str(ok("show --format json", &json)).unwrap();
    fn poison(v: &mut serde_json::Value, evil: &str, huge: &str, depth: usize) {
        match v {
            serde_json::Value::String(s) => {
                s.push_str(if depth.is_multiple_of(2) { evil } else { huge });
            }
            serde_json::Value::Array(a) => {
                a.iter_mut().for_each(|x| poison(x, evil, huge, depth + 1))
            }
            serde_json::Value::Object(o) => o
                .iter_mut()
                .for_each(|(_, x)| poison(x, evil, huge, depth + 1)),
            _ => {}
        }
    }
    // Not the envelope's format and version, which decide whether it is read at all.
    poison(&mut model["snapshot"], evil, &huge[..4 << 10], 0);
    if let Some(g) = model["goroutines"].get_mut(0) {
        g["labels"] =
            serde_json::json!([[format!("path{evil}"), format!("v{evil}")], ["big", huge]]);
    }
    let snap = dir.0.join("evil.json");
    std::fs::write(&snap, serde_json::to_vec(&model).unwrap()).unwrap();
    let out = goroscope(&["show", "-q", snap.to_str().unwrap()]);
    ok("show evil.json", &out);
    assert_safe("show evil.json", &out);
    every_view("show", &[snap.to_str().unwrap()]);
    let out = goroscope(&["diff", "-q", dump.to_str().unwrap(), snap.to_str().unwrap()]);
    assert_safe("diff", &out);
}

/// The executable a core names is opened as the core's process's user: a core of a process run
/// as nobody does not open a binary nobody could not read, unless `--exe` names it.
#[test]
fn core_executable_is_opened_as_the_cores_user() {
    if !is_root() || which("setpriv").is_none() {
        println!("SKIP: needs root and setpriv to run the fixture as uid 65534");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("hostile-core");
    let exe = world_readable_fixture(&dir);
    let mut child = start_as_nobody(&exe);
    let core = dir.0.join("core");
    let out = goroscope(&[
        "snapshot",
        "-q",
        &child.pid.to_string(),
        "--core",
        core.to_str().unwrap(),
    ]);
    ok("snapshot --core", &out);
    child.ping().unwrap();
    drop(child);
    let out = goroscope(&["grs", "-q", "--core", core.to_str().unwrap()]);
    assert!(
        ok("grs --core", &out).contains("main.hostileShadow"),
        "{}",
        out.stdout
    );

    // Now only root may read it: the core's process (nobody) could not have.
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = goroscope(&["grs", "-q", "--core", core.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", out.stdout);
    let msg = out.stderr.trim_end();
    assert!(
        !msg.contains('\n') && msg.starts_with("goroscope: "),
        "{msg}"
    );
    assert!(
        msg.contains("Permission denied") && msg.contains("--exe") && msg.contains("uid 65534"),
        "{msg}"
    );
    let out = goroscope(&[
        "grs",
        "-q",
        "--core",
        core.to_str().unwrap(),
        "--exe",
        exe.to_str().unwrap(),
    ]);
    assert!(
        ok("grs --core --exe", &out).contains("main.hostileShadow"),
        "{}",
        out.stdout
    );
}
