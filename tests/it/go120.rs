//! Go 1.20 on real Go 1.20 programs. No Go 1.20 toolchain can be installed here, so there is no
//! fixture: the programs are esbuild's stripped static linux/amd64 builds from the npm registry
//! (`@esbuild/linux-x64` 0.17.19, built by go1.20.4, and 0.18.20, by go1.20.7, and their
//! `@esbuild/linux-arm64` twins), installed by `scripts/install-esbuild.sh` into
//! `<cache>/esbuild/<version>/esbuild` and `esbuild-arm64`.
//!
//! `esbuild --serve` runs an HTTP server for as long as its stdin stays open. Each test starts
//! it on a small bundle, opens live-reload event streams (`GET /esbuild`: handlers that stay in
//! the middle of serving their request, parked in `select`) and keep-alive connections, and
//! serves requests on other connections from a load thread. The oracle is the runtime's own
//! traceback on SIGQUIT (level 2: every goroutine, arguments, `fp= sp= pc=`).
//!
//! * Live (`GOTRACEBACK=all`): while the load runs, `dump`, `grs` and `dump --nonblocking`
//!   must succeed, leave the target running, and show every goroutine that is parked in the
//!   same state in the final traceback at the same frames. Then the load stops (the event
//!   streams and idle connections stay open), and once two level-2 dumps in a row agree,
//!   goroscope takes `dump --level 2`, `dump --nonblocking --level 2`, `dump`, `grs` and `bt`
//!   of every goroutine, and SIGQUIT makes the runtime print its traceback: the level-2
//!   dumps must equal it byte for byte on every parked goroutine (`support::crash`), the
//!   level-1 dump must be it as GOTRACEBACK=all shows it (runtime-internal frames and wrappers
//!   hidden, system goroutines left out), `grs` and `bt` must name the same frames and pcs.
//! * Core (`GOTRACEBACK=crash`, `ulimit -c unlimited`): the kernel's core, read by
//!   `dump --core` with no other option, equals the crash traceback (`support::crash`). So does
//!   the core `qemu-aarch64` writes for esbuild's linux/arm64 build of the same version.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::compare::compare_crash;
use support::traceback::signal_traceback_text;
use support::{Goroutine, Guard, TempDir, Traceback};

/// The esbuild versions read; keep in step with `scripts/install-esbuild.sh`.
const ESBUILD_VERSIONS: &[&str] = &["0.17.19", "0.18.20"];

/// Live-reload event streams held open (each is a handler goroutine and its helper).
const EVENT_STREAMS: usize = 3;
/// Keep-alive connections that serve a few requests before the load and then stay idle.
const IDLE_CONNS: usize = 3;
/// goroscope runs (dump, grs, dump --nonblocking in turn) while the load runs, at least.
const UNDER_LOAD_RUNS: usize = 12;
/// Requests served while goroscope runs, at least (more runs are made until then).
const UNDER_LOAD_REQUESTS: u64 = 200;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The installed esbuild binary of `version` (linux/amd64, or linux/arm64 when `arm64`); panics
/// with what to do when it is missing.
fn esbuild_exe(version: &str, arm64: bool) -> PathBuf {
    let name = if arm64 { "esbuild-arm64" } else { "esbuild" };
    let exe = support::toolchains::cache_dir()
        .join("esbuild")
        .join(version)
        .join(name);
    assert!(
        exe.is_file(),
        "{} is missing: run scripts/install-esbuild.sh (scripts/test.sh does)",
        exe.display()
    );
    exe
}

/// The binary is a stripped Go 1.20 build: no DWARF, no symbols.
fn check_binary(exe: &Path) -> String {
    let bin =
        goroscope::binary::GoBinary::open(exe).unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
    assert_eq!(
        (bin.version.major, bin.version.minor),
        (1, 20),
        "{}: built by {}",
        exe.display(),
        bin.version
    );
    assert!(
        !bin.has_dwarf && bin.symbols.is_empty(),
        "{}: not stripped",
        exe.display()
    );
    bin.build.go_version.clone()
}

/// How esbuild runs: live with GOTRACEBACK=all, or with GOTRACEBACK=crash and unlimited cores,
/// natively (the kernel writes `core`) or under `qemu-aarch64` (which writes
/// `qemu_esbuild_<date>_<pid>.core`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Live,
    KernelCore,
    QemuCore,
}

/// A running `esbuild --serve`, killed (by its pid) and reaped on drop.
struct Esbuild {
    guard: Guard,
    /// Held open: esbuild serves until its stdin closes.
    _stdin: ChildStdin,
    port: u16,
    stderr: PathBuf,
    what: String,
}

impl Esbuild {
    /// Starts `exe` in `dir` (a bundle `in.js` and `index.html` are written there) as `run`
    /// says, and waits for its "Local:" line.
    fn start(exe: &Path, dir: &Path, run: Run) -> Esbuild {
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(
            dir.join("in.js"),
            "export const answer = 42;\nconsole.log(answer);\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("www/index.html"),
            "<script src=\"in.js\"></script>\n",
        )
        .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let serve = format!("--serve=127.0.0.1:{port}");
        let args = [
            "in.js",
            "--bundle",
            "--outdir=www",
            "--servedir=www",
            &serve,
        ];
        let (mut cmd, traceback) = match run {
            Run::Live => (Command::new(exe), "all"),
            Run::KernelCore | Run::QemuCore => {
                let mut c = Command::new("sh");
                let script = if run == Run::QemuCore {
                    "ulimit -c unlimited; exec qemu-aarch64 \"$0\" \"$@\""
                } else {
                    "ulimit -c unlimited; exec \"$0\" \"$@\""
                };
                c.arg("-c").arg(script).arg(exe);
                (c, "crash")
            }
        };
        let stderr = dir.join("stderr.txt");
        cmd.args(args)
            .current_dir(dir)
            .env("GOTRACEBACK", traceback)
            .env_remove("GODEBUG")
            .env_remove("GOMAXPROCS")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()));
        let what = format!("{} {}", exe.display(), args.join(" "));
        let mut guard = Guard::spawn(&mut cmd, None);
        let stdin = guard.child().stdin.take().unwrap();
        let mut e = Esbuild {
            guard,
            _stdin: stdin,
            port,
            stderr,
            what,
        };
        let want = format!("http://127.0.0.1:{port}/");
        let wait = Duration::from_secs(if run == Run::QemuCore { 120 } else { 30 });
        let deadline = Instant::now() + wait;
        while !e.stderr_text().contains(&want) {
            if let Some(st) = e.guard.wait(Duration::ZERO) {
                panic!(
                    "{}: exited ({st}) before serving; stderr:\n{}",
                    e.what,
                    e.stderr_text()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: no \"Local: {want}\" within {wait:?}; stderr:\n{}",
                    e.what,
                    e.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        e
    }

    fn pid(&self) -> u32 {
        self.guard.pid() as u32
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("{}: connect: {e}", self.what));
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// A live-reload event stream, once its first event arrived (the handler is running).
    fn event_stream(&self) -> TcpStream {
        let mut s = self.connect();
        s.write_all(
            b"GET /esbuild HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        )
        .unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = r
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("{}: event stream: {e}", self.what));
            assert!(n > 0, "{}: event stream closed", self.what);
            if line.starts_with("retry:") {
                return s;
            }
        }
    }

    /// SIGQUIT, then waits for the process to end; its stderr.
    fn quit(mut self) -> String {
        self.guard.signal(libc::SIGQUIT);
        let st = self.guard.wait(Duration::from_secs(60));
        assert!(
            st.is_some(),
            "{}: still running 60 s after SIGQUIT",
            self.what
        );
        self.stderr_text()
    }
}

/// One `GET path` on a keep-alive connection; Err unless the answer is a 200 with its whole body.
fn get(s: &mut TcpStream, path: &str) -> Result<(), String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Ok(_) => return Err(format!("GET {path}: connection closed")),
            Err(e) => return Err(format!("GET {path}: {e}")),
        }
        if head.len() > 64 << 10 {
            return Err(format!("GET {path}: no end of headers"));
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .filter(|&n| n <= 1 << 20)
        .ok_or_else(|| format!("GET {path}: no Content-Length (up to 1 MiB) in {head:?}"))?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .map_err(|e| format!("GET {path}: body: {e}"))
}

/// Requests from a thread until stopped: a fresh connection every few requests.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (st, sv) = (stop.clone(), served.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let mut s =
                    TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.set_nodelay(true).unwrap();
                for path in ["/", "/in.js", "/index.html", "/in.js"] {
                    get(&mut s, path)?;
                    sv.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        });
        Load {
            stop,
            served,
            thread: Some(thread),
        }
    }

    /// Requests served so far.
    fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops the load after the request in flight; how many requests were served.
    fn finish(mut self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        let r = self
            .thread
            .take()
            .unwrap()
            .join()
            .map_err(|_| "the load thread panicked".to_string())?;
        r.map(|()| self.served.load(Ordering::Relaxed))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn goroscope(args: &[&str]) -> String {
    support::goroscope_ok(args, RUN_TIMEOUT)
}

/// A system goroutine as GOTRACEBACK=all leaves it out: it was started by a runtime function
/// other than runtime.main (the frame under `runtime.goexit`).
fn is_system(g: &Goroutine) -> bool {
    let n = g.frames.len();
    let start = match g.frames.last() {
        Some(f) if f.func == "runtime.goexit" && n >= 2 => &g.frames[n - 2].func,
        Some(f) => &f.func,
        None => return false,
    };
    start.starts_with("runtime.") && start != "runtime.main"
}

/// Which frames GOTRACEBACK=all hides from a parked goroutine (`showframe`): unexported runtime
/// functions, names without a package, and wrappers: functions whose funcID in the binary's
/// pclntab is `wrapper` (`<autogenerated>` methods, ABI wrappers, the closures of `go`
/// statements with arguments), found, as the runtime finds them, by the frame's pc.
struct Level1 {
    bin: goroscope::binary::GoBinary,
    wrapper: u8,
}

impl Level1 {
    fn of(exe: &Path) -> Level1 {
        let bin = goroscope::binary::GoBinary::open(exe)
            .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        let wrapper = goroscope::unwind::FuncIds::from_pclntab(&bin.pclntab)
            .wrapper
            .expect("no wrapper funcID");
        Level1 { bin, wrapper }
    }

    /// `pc` is the `pc=` the runtime printed for the frame (for an inlined frame, that of its
    /// physical frame: inlined wrappers are not looked for).
    fn hidden(&self, f: &support::Frame, pc: u64) -> bool {
        let unexported_runtime = f
            .func
            .strip_prefix("runtime.")
            .is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_uppercase()));
        let tab = &self.bin.pclntab;
        let wrapper = f.offset.is_some()
            && tab
                .func_for_pc(pc)
                .is_some_and(|p| tab.func_id(p) == self.wrapper);
        unexported_runtime || !f.func.contains('.') || wrapper
    }

    /// The frames of a level-2 goroutine that GOTRACEBACK=all prints (all of them when it
    /// would hide every one).
    fn frames<'a>(&self, r: &'a Goroutine) -> Vec<&'a support::Frame> {
        let pcs = frame_pcs(r);
        let shown: Vec<&support::Frame> = r
            .frames
            .iter()
            .zip(&pcs)
            .filter(|(f, pc)| !self.hidden(f, **pc))
            .map(|(f, _)| f)
            .collect();
        if shown.is_empty() {
            r.frames.iter().collect()
        } else {
            shown
        }
    }
}

/// The pc of each frame of a level-2 goroutine: its own `pc=`, or for an inlined frame that of
/// the physical frame it is inlined into (the next one with a `pc=`).
fn frame_pcs(g: &Goroutine) -> Vec<u64> {
    let mut pcs: Vec<Option<u64>> = Vec::new();
    let mut lines = g.raw.lines().skip(1).peekable();
    while let Some(l) = lines.next() {
        if l.starts_with("created by ") || l.starts_with("...") {
            break;
        }
        let file_line = lines.next().unwrap_or("");
        pcs.push(
            file_line
                .split(' ')
                .find_map(|w| w.strip_prefix("pc=0x"))
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
        );
    }
    let mut out = vec![0; pcs.len()];
    let mut next = 0;
    for (i, pc) in pcs.iter().enumerate().rev() {
        if let Some(pc) = pc {
            next = *pc;
        }
        out[i] = next;
    }
    out
}

/// The level-1 dump against the level-2 oracle: the same goroutines but system ones, in the same
/// order (the runtime's first may move), and each parked one as GOTRACEBACK=all prints it: the
/// oracle's header, its frames without the hidden ones (all of them when every one is hidden),
/// arguments, lines and offsets as printed, and its created-by.
fn compare_level1(dump: &Traceback, oracle: &Traceback, level1: &Level1) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut want: Vec<u64> = oracle
        .goroutines
        .iter()
        .filter(|g| !is_system(g))
        .map(|g| g.id)
        .collect();
    let mut have: Vec<u64> = dump.goroutines.iter().map(|g| g.id).collect();
    if let Some(first) = oracle.goroutines.first().map(|g| g.id) {
        want.retain(|&id| id != first);
        have.retain(|&id| id != first);
    }
    if have != want {
        problems.push(format!(
            "goroutines {have:?}, the runtime's user goroutines are {want:?}"
        ));
    }
    for g in &dump.goroutines {
        let Some(r) = oracle.goroutines.iter().find(|r| r.id == g.id) else {
            continue;
        };
        if !r.is_parked() {
            if g.frames.is_empty() {
                problems.push(format!(
                    "goroutine {} [{}]: no frames\n{}",
                    g.id, r.state, g.raw
                ));
            }
            continue;
        }
        let frames = level1.frames(r);
        let same_frames = frames.len() == g.frames.len()
            && frames.iter().zip(&g.frames).all(|(a, b)| {
                (&a.func, &a.args, &a.file, a.line, a.offset)
                    == (&b.func, &b.args, &b.file, b.line, b.offset)
            });
        let head = |t: &str| t.lines().next().unwrap_or("").to_string();
        if head(&g.raw) != head(&r.raw)
            || !same_frames
            || g.created_by != r.created_by
            || !g.elided.is_empty()
        {
            problems.push(format!(
                "goroutine {} differs\n--- runtime (level 2)\n{}\n+++ goroscope\n{}",
                g.id, r.raw, g.raw
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// `grs`: one line for each goroutine of the level-1 dump, naming its user frame (the first
/// not inside the runtime) with the oracle's file, line, function and pc, and its state.
fn compare_grs(grs: &str, dump: &Traceback, oracle: &Traceback) -> Result<(), String> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = grs
        .lines()
        .filter(|l| l.trim_start().starts_with("Goroutine "))
        .collect();
    let ids: Vec<u64> = lines
        .iter()
        .filter_map(|l| {
            l.trim_start()
                .strip_prefix("Goroutine ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let want: Vec<u64> = dump.goroutines.iter().map(|g| g.id).collect();
    if ids != want {
        problems.push(format!("grs lists {ids:?}, dump {want:?}"));
    }
    if !grs
        .trim_end()
        .ends_with(&format!("[{} goroutines]", want.len()))
    {
        problems.push(format!("grs does not end with [{} goroutines]", want.len()));
    }
    for (line, id) in lines.iter().zip(&ids) {
        let Some(r) = oracle.goroutines.iter().find(|r| r.id == *id) else {
            problems.push(format!(
                "grs: goroutine {id} is not in the runtime's traceback"
            ));
            continue;
        };
        if !r.is_parked() {
            continue;
        }
        let pcs = frame_pcs(r);
        let Some(i) = r
            .frames
            .iter()
            .position(|f| !goroscope::snapshot::is_runtime_internal(&f.func))
            .or((!r.frames.is_empty()).then_some(0))
        else {
            problems.push(format!("goroutine {id}: the runtime printed no frames"));
            continue;
        };
        let f = &r.frames[i];
        let want = format!(
            "Goroutine {id} - User: {}:{} {} ({:#x})",
            f.file,
            f.line,
            f.func,
            pcs.get(i).copied().unwrap_or(0)
        );
        let body = line.trim_start();
        let ok = body.starts_with(&want) && body.ends_with(&format!("[{}]", r.state));
        if !ok {
            problems.push(format!(
                "grs line {body:?}, runtime wants {want:?} … [{}]\n{}",
                r.state, r.raw
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// `bt`: every frame of the oracle (level 2 shows them all), numbered, with its pc, function,
/// file and line.
fn compare_bt(bt: &str, r: &Goroutine) -> Result<(), String> {
    let pcs = frame_pcs(r);
    let mut want = String::new();
    let width = r.frames.len().saturating_sub(1).to_string().len().max(1);
    for (i, (f, pc)) in r.frames.iter().zip(&pcs).enumerate() {
        want.push_str(&format!(
            "{i:>width$}  {pc:#018x} in {}\n{:width$}     at {}:{}\n",
            f.func, "", f.file, f.line
        ));
    }
    if bt.trim_end() == want.trim_end() {
        Ok(())
    } else {
        Err(format!(
            "bt of goroutine {}:\n{bt}\nthe runtime printed:\n{}",
            r.id, r.raw
        ))
    }
}

/// Every goroutine parked in `dump` (taken under load) and parked in the same state in the final
/// oracle under the same id sits at the same frames there (functions, files, lines, offsets,
/// created-by; arguments may differ between two parkings at the same place). A goroutine the
/// load moves (the accept loop, caught in `accept4` as `[syscall]`) is in another state.
fn same_frames_as_oracle(
    dump: &str,
    oracle: &Traceback,
    level1: &Level1,
    what: &str,
) -> Result<(), String> {
    // `--nonblocking` marks a goroutine it could not read consistently with a line of its own
    // (the traceback parser knows only Go's lines); such a goroutine has no frames.
    let text: String = dump
        .lines()
        .filter(|l| {
            !(l.starts_with("\t...stack truncated by goroscope: ") && l.contains("(--nonblocking)"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let d = support::parse_strict(&text).map_err(|e| format!("{what}: {e}\n{dump}"))?;
    let mut problems = Vec::new();
    for g in d
        .goroutines
        .iter()
        .filter(|g| g.is_parked() && !g.frames.is_empty())
    {
        let Some(r) = oracle
            .goroutines
            .iter()
            .find(|r| r.id == g.id && r.is_parked() && r.state == g.state)
        else {
            continue;
        };
        let visible = level1.frames(r);
        let frames = |fs: &[&support::Frame]| -> Vec<(String, String, u32, Option<u64>)> {
            fs.iter()
                .map(|f| (f.func.clone(), f.file.clone(), f.line, f.offset))
                .collect()
        };
        let mine: Vec<&support::Frame> = g.frames.iter().collect();
        if frames(&mine) != frames(&visible) || g.created_by != r.created_by {
            problems.push(format!(
                "{what}: goroutine {} differs\n--- runtime (later)\n{}\n+++ goroscope\n{}",
                g.id, r.raw, g.raw
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n\n"))
    }
}

/// Level-2 dumps half a second apart until two in a row are the same (bounded): the
/// goroutines that served the last requests are parked again, and the one esbuild's serve mode
/// starts after a build (it sleeps 250 ms before dropping the build's result) has ended.
fn settle(pid: &str) {
    let mut last = String::new();
    for _ in 0..40 {
        let d = goroscope(&["dump", "-q", "--level", "2", pid]);
        if d == last {
            return;
        }
        last = d;
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("the target never stood still for two dumps in a row; last:\n{last}");
}

fn live_one(version: &str) -> Result<String, String> {
    let exe = esbuild_exe(version, false);
    let go = check_binary(&exe);
    let dir = TempDir::new(&format!("go120-live-{version}"));
    let es = Esbuild::start(&exe, &dir.0, Run::Live);
    let pid = es.pid().to_string();
    let _streams: Vec<TcpStream> = (0..EVENT_STREAMS).map(|_| es.event_stream()).collect();
    let mut idle: Vec<TcpStream> = (0..IDLE_CONNS).map(|_| es.connect()).collect();
    for s in &mut idle {
        for path in ["/", "/in.js"] {
            get(s, path)?;
        }
    }

    // Under load.
    let load = Load::start(es.port);
    let mut under_load = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while i < UNDER_LOAD_RUNS || (load.served() < UNDER_LOAD_REQUESTS && Instant::now() < deadline)
    {
        let out = match i % 3 {
            0 => goroscope(&["dump", "-q", &pid]),
            1 => goroscope(&["grs", "-q", &pid]),
            _ => goroscope(&["dump", "-q", "--nonblocking", &pid]),
        };
        support::check_running(es.pid())?;
        if i % 3 != 1 {
            under_load.push(out);
        }
        i += 1;
    }
    let runs = i;
    let served = load.finish()?;

    // Idle: the oracle's moment.
    settle(&pid);
    let level2 = goroscope(&["dump", "-q", "--level", "2", &pid]);
    let nonblocking = goroscope(&["dump", "-q", "--nonblocking", "--level", "2", &pid]);
    let level1 = goroscope(&["dump", "-q", &pid]);
    let grs = goroscope(&["grs", "-q", &pid]);
    let dump = support::parse_strict(&level1)?;
    let bts: Vec<(u64, String)> = dump
        .goroutines
        .iter()
        .map(|g| {
            let out = support::run_goroscope(&["bt", "-q", &pid, &g.id.to_string()], RUN_TIMEOUT)
                .unwrap();
            (
                g.id,
                if out.status.success() {
                    out.stdout
                } else {
                    format!(
                        "FAILED {}\n{level1}\n{}",
                        out.stderr,
                        goroscope(&["dump", "-q", "--level", "2", &pid])
                    )
                },
            )
        })
        .collect();
    support::check_running(es.pid())?;
    let stderr = es.quit();
    let oracle_text = signal_traceback_text(&stderr);
    let oracle = support::parse_strict(&oracle_text)
        .map_err(|e| format!("the runtime's traceback: {e}\n{stderr}"))?;

    let mut problems = Vec::new();
    let mut check = |what: &str, r: Result<(), String>| {
        if let Err(e) = r {
            problems.push(format!("{what}:\n{e}"));
        }
    };
    check("dump --level 2", compare_crash(&level2, &oracle_text, true));
    check(
        "dump --nonblocking --level 2",
        compare_crash(&nonblocking, &oracle_text, true),
    );
    let level1 = Level1::of(&exe);
    check("dump", compare_level1(&dump, &oracle, &level1));
    check("grs", compare_grs(&grs, &dump, &oracle));
    for (id, bt) in &bts {
        if let Some(r) = oracle
            .goroutines
            .iter()
            .find(|r| r.id == *id && r.is_parked())
        {
            check("bt", compare_bt(bt, r));
        }
    }
    for (i, d) in under_load.iter().enumerate() {
        check(
            "under load",
            same_frames_as_oracle(d, &oracle, &level1, &format!("dump {i} under load")),
        );
    }
    let parked = oracle.goroutines.iter().filter(|g| g.is_parked()).count();
    if problems.is_empty() {
        Ok(format!(
            "esbuild {version} ({go}): {} goroutines ({parked} parked, {} user), {served} requests served during {runs} goroscope runs: exact",
            oracle.goroutines.len(),
            dump.goroutines.len()
        ))
    } else {
        Err(format!(
            "esbuild {version} ({go}):\n{}\n\nthe runtime's traceback:\n{oracle_text}\n\ngoroscope dump --level 2:\n{level2}",
            problems.join("\n\n")
        ))
    }
}

#[test]
fn live_dump_grs_bt_nonblocking_match_sigquit_traceback() {
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for v in ESBUILD_VERSIONS {
        match live_one(v) {
            Ok(line) => report.push(line),
            Err(e) => failures.push(e),
        }
    }
    eprintln!("live Go 1.20:\n  {}", report.join("\n  "));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One crash of esbuild `version` (arm64 under qemu when `arm64`) and its core against the
/// crash traceback.
fn core_one(version: &str, arm64: bool) -> Result<String, String> {
    let exe = esbuild_exe(version, arm64);
    let go = check_binary(&exe);
    let arch = if arm64 { "arm64" } else { "amd64" };
    let dir = TempDir::new(&format!("go120-core-{version}-{arch}"));
    let es = Esbuild::start(
        &exe,
        &dir.0,
        if arm64 {
            Run::QemuCore
        } else {
            Run::KernelCore
        },
    );
    let _streams: Vec<TcpStream> = (0..EVENT_STREAMS).map(|_| es.event_stream()).collect();
    let mut idle: Vec<TcpStream> = (0..IDLE_CONNS).map(|_| es.connect()).collect();
    for s in &mut idle {
        get(s, "/in.js")?;
    }
    let load = Load::start(es.port);
    std::thread::sleep(Duration::from_millis(300));
    let pid = es.pid();
    let stderr = es.quit();
    // The load meets a dead server: whatever it says is not the point.
    let _ = load.finish();
    let core = std::fs::read_dir(&dir.0)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if arm64 {
                name.starts_with("qemu_") && name.ends_with(".core")
            } else {
                name == "core" || name == format!("core.{pid}")
            }
        });
    let Some(core) = core else {
        let writer = if arm64 { "qemu" } else { "the kernel" };
        return Err(format!(
            "esbuild {version} {}: {writer} wrote no core\nstderr:\n{stderr}",
            if arm64 { "arm64" } else { "amd64" }
        ));
    };
    let core_arg = core.display().to_string();
    let exe_arg = exe.display().to_string();
    // No option but the core: the executable comes from the core's NT_FILE. qemu writes no
    // NT_FILE, and its core lies elsewhere than the executable: that one is named.
    let mut args = vec!["dump", "-q", "--core", &core_arg];
    if arm64 {
        args.extend(["--exe", &exe_arg]);
    }
    let out = support::run_goroscope(&args, RUN_TIMEOUT)?;
    if !out.status.success() {
        return Err(format!(
            "esbuild {version} {arch}: goroscope dump --core failed: {}\n{}",
            out.status, out.stderr
        ));
    }
    let oracle = signal_traceback_text(&stderr);
    compare_crash(&out.stdout, &oracle, true).map_err(|e| {
        format!("esbuild {version} {arch} ({go}) core:\n{e}\n\nthe crash traceback:\n{oracle}")
    })?;
    let n = support::parse(&oracle).goroutines.len();
    Ok(format!(
        "esbuild {version} {arch} ({go}): core of {n} goroutines: exact"
    ))
}

#[test]
fn core_matches_crash_traceback() {
    let Some(()) = support::require(support::require::cores_in_working_directory()) else {
        return;
    };
    cores_of_every_version(false);
}

/// arm64: esbuild's linux/arm64 builds of the same versions under `qemu-aarch64`, whose cores
/// goroscope reads on this amd64 host.
#[test]
fn arm64_qemu_core_matches_crash_traceback() {
    // scripts/test.sh installs qemu-user; without it there is no arm64 to test.
    let Some(_) = support::require(support::tool("qemu-aarch64")) else {
        return;
    };
    cores_of_every_version(true);
}

/// [`core_one`] for every esbuild version, all reported, every failure named.
fn cores_of_every_version(arm64: bool) {
    let (mut report, mut failures) = (Vec::new(), Vec::new());
    for v in ESBUILD_VERSIONS {
        match core_one(v, arm64) {
            Ok(line) => report.push(line),
            Err(e) => failures.push(e),
        }
    }
    let what = if arm64 { "arm64 qemu" } else { "kernel" };
    eprintln!("Go 1.20 {what} cores:\n  {}", report.join("\n  "));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `--help` names the supported versions, Go 1.20 among them.
#[test]
fn help_names_the_supported_versions() {
    let out = support::run_goroscope(&["--help"], RUN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("Reads programs built by go1.19 to go1.27"),
        "{}",
        out.stdout
    );
}
