//! Analysis against the stories it is for (issue 4): the fixture's story scenarios
//! (`testdata/fixture/stories.go`) put goroutines into deadlocks and leaks they describe in INFO
//! lines (the mutex and channel addresses, how many goroutines hold, wait, send, receive), and
//! goroscope's blocked-on objects, groups, filters, diffs, pprof profiles and text imports must
//! find exactly that. Expected values come only from what the fixture reports, from the
//! runtime's own `runtime.Stack` text of the same process, or from the toolchain's own sources
//! and tools (`rwmutexMaxReaders` in `sync/rwmutex.go`, `go tool pprof`); never typed-in
//! addresses or offsets.
//!
//! Stories run on the newest installed toolchain (`GOROSCOPE_GO_VERSIONS=1.19.8` picks another);
//! labels on every installed toolchain (the map form up to 1.23, the slice form from 1.24).

use crate::support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Flavor, Toolchain, toolchains};

/// How long to wait for READY and for each answer of the fixture.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long one goroscope command may take.
const GOROSCOPE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `go tool pprof` may take (from Go 1.25 the first call builds the tool).
const PPROF_TIMEOUT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// The fixture, with arguments and the `leaked` command.

/// A running fixture scenario. Dropping it sends `quit`, then kills it by pid and reaps it, also
/// while a failed assertion unwinds.
struct Fixture {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    pid: u32,
    what: String,
    /// Every INFO line, in order.
    info: Vec<String>,
}

impl Fixture {
    /// Builds the fixture with `tc`, starts `fixture <scenario> <args>` and waits for READY.
    fn start(tc: &Toolchain, scenario: &str, args: &[&str]) -> Fixture {
        Fixture::start_flavor(tc, Flavor::Default, scenario, args)
    }

    /// [`Fixture::start`] with the fixture built as `flavor`.
    fn start_flavor(tc: &Toolchain, flavor: Flavor, scenario: &str, args: &[&str]) -> Fixture {
        let exe = support::build_fixture(tc, flavor).unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new(&exe)
            .arg(scenario)
            .args(args)
            .env_remove("GOTRACEBACK")
            .env_remove("GODEBUG")
            .env_remove("GOMAXPROCS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} {scenario}: {e}", exe.display()));
        let rx = support::child::line_channel(child.stdout.take().unwrap());
        let (stderr, stderr_thread) = support::child::collect_text(child.stderr.take().unwrap());
        let pid = child.id();
        let mut fx = Fixture {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stderr,
            stderr_thread: Some(stderr_thread),
            pid,
            what: format!(
                "{} {} {scenario} {}",
                tc.name(),
                flavor.name(),
                args.join(" ")
            ),
            info: Vec::new(),
        };
        loop {
            let line = fx.recv("READY");
            if let Some(text) = line.strip_prefix("INFO ") {
                fx.info.push(text.to_string());
            } else if let Some(p) = line.strip_prefix("READY ") {
                assert_eq!(
                    p.trim(),
                    pid.to_string(),
                    "{}",
                    fx.failure("READY names another pid")
                );
                break;
            } else {
                panic!(
                    "{}",
                    fx.failure(&format!("unexpected line before READY: {line:?}"))
                );
            }
        }
        fx
    }

    fn pid(&self) -> String {
        self.pid.to_string()
    }

    /// Sends a command and returns the answer line.
    fn ask(&mut self, cmd: &str) -> String {
        let r = match self.stdin.as_mut() {
            Some(w) => w
                .write_all(format!("{cmd}\n").as_bytes())
                .and_then(|_| w.flush()),
            None => panic!("{}", self.failure("stdin closed")),
        };
        if let Err(e) = r {
            panic!("{}", self.failure(&format!("sending {cmd:?}: {e}")));
        }
        self.recv(cmd)
    }

    /// `leaked` → `LEAKED <n>`.
    fn leaked(&mut self) -> u64 {
        let l = self.ask("leaked");
        l.strip_prefix("LEAKED ")
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}", self.failure(&format!("want LEAKED <n>, got {l:?}"))))
    }

    /// The fixture's own `runtime.Stack(buf, true)`.
    fn stack(&mut self) -> String {
        let first = self.ask("stack");
        assert_eq!(first, "BEGIN STACK", "{}", self.failure("stack"));
        let mut text = String::new();
        loop {
            let line = self.recv("END STACK");
            if line == "END STACK" {
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        text.trim_end_matches('\n').to_string()
    }

    /// Sends SIGQUIT, waits for the runtime to print every goroutine and exit, and returns what
    /// it wrote to stderr.
    fn sigquit(&mut self) -> String {
        // SAFETY: kill(2) on the pid of our own child, not reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGQUIT) };
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                self.failure("no exit after SIGQUIT")
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(
            !status.success(),
            "{}",
            self.failure(&format!("SIGQUIT: {status}"))
        );
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        self.stderr.lock().unwrap().clone()
    }

    fn recv(&mut self, waiting_for: &str) -> String {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}",
                self.failure(&format!("no answer to {waiting_for:?} within {TIMEOUT:?}"))
            ),
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "{}",
                    self.failure(&format!("stdout closed waiting for {waiting_for:?}"))
                )
            }
        }
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "fixture {} (pid {}): {what}\nfixture stderr:\n{}",
            self.what,
            self.pid,
            self.stderr.lock().unwrap()
        )
    }

    /// The INFO lines that start with `word `, split into words.
    fn info_words(&self, word: &str) -> Vec<Vec<String>> {
        self.info
            .iter()
            .filter(|l| l.split(' ').next() == Some(word))
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect()
    }

    /// The one `rwmutex` INFO line.
    fn rwmutex(&self) -> RwInfo {
        let all = self.info_words("rwmutex");
        assert_eq!(all.len(), 1, "one rwmutex INFO line: {:?}", self.info);
        let w = &all[0];
        let n = kv(&w[3..]);
        RwInfo {
            addr: hex(&w[2]),
            holders: n["holders"],
            recursive: n["recursive"],
            writers: n["writers"],
            lockers: n["lockers"],
            queued: n["queued"],
        }
    }

    /// The `chan` INFO line named `name`.
    fn chan(&self, name: &str) -> ChanInfo {
        let w = self
            .info_words("chan")
            .into_iter()
            .find(|w| w.get(1).map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no `chan {name}` INFO line: {:?}", self.info));
        let n = kv(&w[3..]);
        ChanInfo {
            addr: hex(&w[2]),
            cap: n["cap"],
            queued: n["queued"],
            senders: n["senders"],
            receivers: n["receivers"],
        }
    }

    /// `label k=v n` INFO lines: (k, v) → n.
    fn labels(&self) -> BTreeMap<(String, String), usize> {
        self.info
            .iter()
            .filter_map(|l| l.strip_prefix("label "))
            .map(|l| {
                let (kv, n) = l.rsplit_once(' ').unwrap();
                let (k, v) = kv.split_once('=').unwrap();
                ((k.to_string(), v.to_string()), n.parse().unwrap())
            })
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut w) = self.stdin.take() {
            let _ = w.write_all(b"quit\n");
            let _ = w.flush();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => break,
            }
        }
        // SAFETY: kill(2) on the pid of our own child, not reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// What `INFO rwmutex <name> <addr> holders H recursive R writers W lockers L queued Q` says.
#[derive(Debug, Clone, Copy)]
struct RwInfo {
    addr: u64,
    /// Hold a read lock and wait elsewhere.
    holders: usize,
    /// Hold a read lock and wait in a second RLock.
    recursive: usize,
    /// Wait in Lock for the readers to leave (0 or 1).
    writers: usize,
    /// Wait in Lock behind the first writer (on the inner Mutex).
    lockers: usize,
    /// Wait in RLock behind the writer, holding nothing.
    queued: usize,
}

/// What `INFO chan <name> <addr> cap C queued N senders S receivers R` says.
#[derive(Debug, Clone, Copy)]
struct ChanInfo {
    addr: u64,
    cap: usize,
    queued: usize,
    senders: usize,
    receivers: usize,
}

fn kv(words: &[String]) -> BTreeMap<String, usize> {
    words
        .chunks(2)
        .map(|p| {
            (
                p[0].clone(),
                p.get(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("bad INFO pair {p:?}")),
            )
        })
        .collect()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("not a hex address: {s:?}"))
}

// ---------------------------------------------------------------------------------------------
// Running goroscope and go tool pprof.

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let d =
            std::env::temp_dir().join(format!("goroscope-analysis-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `goroscope <args>`, which must exit 0; its stdout.
fn goroscope(args: &[&str]) -> String {
    support::goroscope_ok(args, GOROSCOPE_TIMEOUT)
}

/// `goroscope <args>` with `--format json`: the snapshot inside the envelope.
fn goroscope_json(args: &[&str]) -> Value {
    let text = goroscope(args);
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("goroscope {args:?}: not JSON: {e}\n{text}"));
    assert_eq!(v["format"], "goroscope-snapshot", "goroscope {args:?}");
    assert_eq!(v["version"], 1, "goroscope {args:?}");
    v["snapshot"].clone()
}

/// Runs a command with stdout written to `stdout_file` (binary output), killing it after
/// `timeout`; its status and stderr.
fn run_to_file(cmd: &mut Command, stdout_file: &Path, timeout: Duration) -> (ExitStatus, String) {
    let desc = format!("{cmd:?}");
    let file = std::fs::File::create(stdout_file).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{desc}: {e}"));
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
            panic!("{desc}: no exit after {timeout:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, t.join().unwrap_or_default())
}

/// `goroscope show --format pprof <snap>` written to `out`.
fn pprof_file(snap: &Path, out: &Path) {
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["show", "--format", "pprof"]).arg(snap);
    let (status, stderr) = run_to_file(&mut cmd, out, GOROSCOPE_TIMEOUT);
    assert!(
        status.success(),
        "goroscope show --format pprof {}: {status}\n{stderr}",
        snap.display()
    );
}

/// `go tool pprof <args>` of `tc`, which must exit 0; its stdout.
fn go_pprof(tc: &Toolchain, args: &[&str]) -> String {
    let mut cmd = Command::new(&tc.go);
    cmd.args(["tool", "pprof"]).args(args);
    support::fixture::go_env(&mut cmd, tc, Flavor::Default);
    let out = support::run_with_timeout(&mut cmd, PPROF_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "go tool pprof {args:?} ({}): {}\n{}\n{}",
        tc.name(),
        out.status,
        out.stderr,
        out.stdout
    );
    out.stdout
}

/// `go tool pprof -raw`: every sample as (count, labels line or "").
fn pprof_samples(tc: &Toolchain, file: &Path) -> Vec<(u64, String)> {
    let raw = go_pprof(tc, &["-raw", file.to_str().unwrap()]);
    let mut lines = raw.lines().skip_while(|l| *l != "Samples:").skip(1);
    assert_eq!(
        lines.next(),
        Some("goroutine/count"),
        "pprof -raw of {}:\n{raw}",
        file.display()
    );
    let sample = regex::Regex::new(r"^(\d+):( \d+)* ?$").unwrap();
    let mut out: Vec<(u64, String)> = Vec::new();
    for l in lines.take_while(|l| *l != "Locations") {
        let t = l.trim();
        match sample.captures(t) {
            Some(c) => out.push((c[1].parse().unwrap(), String::new())),
            None => {
                out.last_mut()
                    .unwrap_or_else(|| panic!("pprof -raw: labels before a sample: {l:?}\n{raw}"))
                    .1 = t.to_string()
            }
        }
    }
    assert!(
        !out.is_empty(),
        "pprof -raw of {} has no samples:\n{raw}",
        file.display()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The snapshot model (docs/json-schema.md).

fn goroutines(snap: &Value) -> &Vec<Value> {
    snap["goroutines"].as_array().expect("goroutines")
}

fn has_frame(g: &Value, func: &str) -> bool {
    g["frames"]
        .as_array()
        .is_some_and(|fs| fs.iter().any(|f| f["function"] == func))
}

fn blocked_on(g: &Value, addr: u64) -> Vec<String> {
    g["blocked_on"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .filter(|b| b["addr"].as_u64() == Some(addr))
                .map(|b| b["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn ids_blocked_on(snap: &Value, addr: u64, kind: &str) -> BTreeSet<u64> {
    goroutines(snap)
        .iter()
        .filter(|g| blocked_on(g, addr).iter().any(|k| k == kind))
        .map(|g| g["id"].as_u64().unwrap())
        .collect()
}

fn object(snap: &Value, addr: u64) -> &Value {
    snap["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["addr"].as_u64() == Some(addr))
        .unwrap_or_else(|| {
            panic!(
                "no object at {addr:#x} in {}",
                serde_json::to_string_pretty(&snap["objects"]).unwrap()
            )
        })
}

fn field(o: &Value, name: &str) -> i64 {
    o["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f[0] == name))
        .and_then(|f| f[1].as_i64())
        .unwrap_or_else(|| panic!("object has no field {name}: {o}"))
}

fn waiters(o: &Value) -> BTreeMap<String, usize> {
    o["waiters"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as usize))
                .collect()
        })
        .unwrap_or_default()
}

fn labels_of(g: &Value) -> Vec<(String, String)> {
    g["labels"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    (
                        l[0].as_str().unwrap().to_string(),
                        l[1].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `grs` lines (`  Goroutine 7 - User: file:line func (0xpc) [chan send]`): (id, state
/// without wait minutes) each; the last line counts them (`[9 goroutines]`).
fn parse_grs(text: &str) -> Vec<(u64, String)> {
    let re = regex::Regex::new(r"^\s*Goroutine (\d+) - .* \[([^\]]*)\]$").unwrap();
    let (body, last) = text
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("grs:\n{text}"));
    let list: Vec<(u64, String)> = body
        .lines()
        .map(|l| {
            let c = re
                .captures(l)
                .unwrap_or_else(|| panic!("not a grs line: {l:?}\n{text}"));
            (
                c[1].parse().unwrap(),
                c[2].split(", ").next().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(last, format!("[{} goroutines]", list.len()), "grs:\n{text}");
    list
}

/// The state word of a runtime traceback header (`chan send, 3 minutes` → `chan send`).
fn runtime_state(g: &support::Goroutine) -> String {
    g.state.split(", ").next().unwrap_or("").to_string()
}

/// Whether the toolchain's runtime prints goroutine labels in tracebacks by default: its own
/// `runtime/runtime1.go` declares the `tracebacklabels` GODEBUG with `def: 1`.
fn prints_labels_by_default(tc: &Toolchain) -> bool {
    let p = tc.goroot.join("src/runtime/runtime1.go");
    let src = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    src.lines()
        .any(|l| l.contains("name: \"tracebacklabels\"") && l.contains("def: 1"))
}

/// `rwmutexMaxReaders` from the toolchain's own `sync/rwmutex.go`.
fn rwmutex_max_readers(tc: &Toolchain) -> i64 {
    let p = tc.goroot.join("src/sync/rwmutex.go");
    let src = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let expr = src
        .lines()
        .find_map(|l| l.trim().strip_prefix("const rwmutexMaxReaders = "))
        .unwrap_or_else(|| panic!("no rwmutexMaxReaders in {}", p.display()));
    match expr.trim().split_once("<<") {
        Some((a, b)) => a.trim().parse::<i64>().unwrap() << b.trim().parse::<u32>().unwrap(),
        None => expr.trim().parse().unwrap(),
    }
}

// ---------------------------------------------------------------------------------------------
// Blocked-on checks.

/// The story's RWMutex as goroscope found it in `snap`, against the fixture's INFO and the
/// runtime's own dump `rt` of the same (hung) moment.
fn check_rwmutex(tc: &Toolchain, snap: &Value, rw: &RwInfo, rt: &support::Traceback, what: &str) {
    let ctx = format!("{what}: RWMutex at {:#x} ({rw:?})", rw.addr);
    // The runtime's view: every goroutine inside RWMutex.RLock/Lock waits on the story's mutex
    // (the fixture uses no other RWMutex); lockers are also inside Mutex.Lock.
    let in_rlock: Vec<&support::Goroutine> = rt
        .goroutines
        .iter()
        .filter(|g| g.has_frame("sync.(*RWMutex).RLock"))
        .collect();
    let in_lock: Vec<&support::Goroutine> = rt
        .goroutines
        .iter()
        .filter(|g| g.has_frame("sync.(*RWMutex).Lock"))
        .collect();
    let lockers = in_lock
        .iter()
        .filter(|g| g.has_frame("sync.(*Mutex).Lock"))
        .count();
    assert_eq!(
        in_rlock.len(),
        rw.recursive + rw.queued,
        "{ctx}: the runtime's dump disagrees with the fixture's INFO"
    );
    assert_eq!(
        in_lock.len(),
        rw.writers + rw.lockers,
        "{ctx}: the runtime's dump disagrees with the fixture's INFO"
    );
    assert_eq!(
        lockers, rw.lockers,
        "{ctx}: the runtime's dump disagrees with the fixture's INFO"
    );
    let mut want_waiters: BTreeMap<String, usize> = BTreeMap::new();
    for g in in_rlock.iter().chain(&in_lock) {
        *want_waiters.entry(runtime_state(g)).or_insert(0) += 1;
    }
    let want_ids: BTreeSet<u64> = in_rlock.iter().chain(&in_lock).map(|g| g.id).collect();

    let o = object(snap, rw.addr);
    assert_eq!(o["kind"], "sync.RWMutex", "{ctx}: {o}");
    assert_eq!(waiters(o), want_waiters, "{ctx}: waiters by state: {o}");
    assert_eq!(
        ids_blocked_on(snap, rw.addr, "sync.RWMutex"),
        want_ids,
        "{ctx}: goroutines whose blocked_on names it"
    );

    // Its own state: readerCount counts every reader (holding, or queued behind the writer),
    // minus rwmutexMaxReaders while a writer is pending; readerWait is the readers the writer
    // waits for.
    let max = rwmutex_max_readers(tc);
    let counted = (rw.holders + 2 * rw.recursive + rw.queued) as i64;
    let rc = field(o, "readerCount");
    let rwait = field(o, "readerWait");
    if rw.writers == 1 {
        assert!(
            rc < 0,
            "{ctx}: readerCount {rc} must be negative with a pending writer: {o}"
        );
        assert_eq!(
            rc + max,
            counted,
            "{ctx}: readerCount {rc} + rwmutexMaxReaders {max}: {o}"
        );
        assert_eq!(
            rwait,
            (rw.holders + rw.recursive) as i64,
            "{ctx}: readerWait: {o}"
        );
        assert_eq!(
            field(o, "w.state") & 1,
            1,
            "{ctx}: the writer holds the inner Mutex: {o}"
        );
        let summary = o["summary"].as_str().unwrap_or("");
        let want = format!("1 writer waiting for {rwait} reader");
        assert!(
            summary.contains(&want),
            "{ctx}: summary {summary:?} lacks {want:?}"
        );
        assert!(
            summary.contains(&format!("{counted} readers counted")),
            "{ctx}: summary {summary:?}"
        );
    } else {
        assert_eq!(rc, counted, "{ctx}: readerCount: {o}");
    }
}

/// A story's channel as goroscope found it.
fn check_chan(snap: &Value, c: &ChanInfo, what: &str) {
    let ctx = format!("{what}: chan at {:#x} ({c:?})", c.addr);
    let o = object(snap, c.addr);
    assert_eq!(o["kind"], "chan", "{ctx}: {o}");
    assert_eq!(field(o, "dataqsiz"), c.cap as i64, "{ctx}: {o}");
    assert_eq!(field(o, "qcount"), c.queued as i64, "{ctx}: {o}");
    assert_eq!(field(o, "closed"), 0, "{ctx}: {o}");
    let mut want = BTreeMap::new();
    if c.senders > 0 {
        want.insert("chan send".to_string(), c.senders);
    }
    if c.receivers > 0 {
        want.insert("chan receive".to_string(), c.receivers);
    }
    assert_eq!(waiters(o), want, "{ctx}: waiters by state: {o}");
    assert_eq!(
        ids_blocked_on(snap, c.addr, "chan").len(),
        c.senders + c.receivers,
        "{ctx}: goroutines whose blocked_on names it"
    );
    let summary = o["summary"].as_str().unwrap_or("");
    let want = format!("{}/{} queued", c.queued, c.cap);
    assert!(
        summary.contains(&want),
        "{ctx}: summary {summary:?} lacks {want:?}"
    );
}

/// The story's RWMutex's holders: every reader that holds it does so through a pending
/// deferred RUnlock, so goroscope must name exactly as many read holders as the fixture says
/// hold it (holders and recursive readers), each a goroutine the runtime's own dump shows in
/// the claimed function; the readers still queued in RLock (their defer not reached) hold
/// nothing.
fn check_rwmutex_holders(snap: &Value, rw: &RwInfo, rt: &support::Traceback, what: &str) {
    let o = object(snap, rw.addr);
    let holders = o["holders"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        holders.len(),
        rw.holders + rw.recursive,
        "{what}: holders of the RWMutex: {holders:?}"
    );
    let mut ids = BTreeSet::new();
    for h in &holders {
        let id = h["goroutine"].as_u64().unwrap();
        assert!(
            ids.insert(id),
            "{what}: goroutine {id} named twice: {holders:?}"
        );
        assert_eq!(
            (&h["lock"], &h["how"]),
            (&Value::from("read"), &Value::from("defer")),
            "{what}: {h:?}"
        );
        let func = h["function"].as_str().unwrap();
        let g = rt
            .goroutines
            .iter()
            .find(|g| g.id == id)
            .unwrap_or_else(|| panic!("{what}: holder {id} is not in the runtime's dump"));
        assert!(
            g.frames.iter().any(|f| f.func == func),
            "{what}: the runtime's dump of goroutine {id} has no frame {func}"
        );
    }
}

/// Every check of a story, on a live dump and on a snapshot file shown later.
fn blocked_story(test: &str, scenario: &str, chans: &[&str]) {
    let tc = toolchains::newest();
    let dir = Scratch::new(test);
    let mut fx = Fixture::start(&tc, scenario, &[]);
    let rw = fx.rwmutex();
    let cs: Vec<ChanInfo> = chans.iter().map(|c| fx.chan(c)).collect();
    let pid = fx.pid();

    let live = goroscope_json(&["dump", "-q", "--format", "json", &pid]);
    let rt = support::parse(&fx.stack());
    assert!(rt.errors.is_empty(), "runtime dump: {:?}", rt.errors);
    check_rwmutex(&tc, &live, &rw, &rt, "dump --format json");
    check_rwmutex_holders(&live, &rw, &rt, "dump --format json");
    for (c, name) in cs.iter().zip(chans) {
        check_chan(&live, c, &format!("dump --format json, chan {name}"));
    }

    let file = dir.path("story.gsnap");
    goroscope(&["snapshot", "-q", &pid, "-o", file.to_str().unwrap()]);
    let shown = goroscope_json(&["show", "--format", "json", file.to_str().unwrap()]);
    check_rwmutex(&tc, &shown, &rw, &rt, "snapshot + show --format json");
    for (c, name) in cs.iter().zip(chans) {
        check_chan(&shown, c, &format!("snapshot + show, chan {name}"));
    }

    // The blocked view lists the objects among its suspects with their waiter counts.
    let text = goroscope(&["show", "--blocked", file.to_str().unwrap()]);
    let suspects: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("suspects"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let total = rw.recursive + rw.queued + rw.writers + rw.lockers;
    let want = format!(
        "  sync.RWMutex at {:#x}: {total} waiter{}",
        rw.addr,
        if total == 1 { "" } else { "s" }
    );
    assert!(
        suspects.iter().any(|l| l.starts_with(&want)),
        "show --blocked: no suspect line {want:?}:\n{text}"
    );
    for c in &cs {
        let n = c.senders + c.receivers;
        let want = format!(
            "  chan at {:#x}: {n} waiter{}",
            c.addr,
            if n == 1 { "" } else { "s" }
        );
        assert!(
            suspects.iter().any(|l| l.starts_with(&want)),
            "show --blocked: no suspect line {want:?}:\n{text}"
        );
    }
    support::assert_running(fx.pid);
}

/// Recursive RLock behind a pending writer: the RWMutex at the fixture's address, 1 writer
/// waiting for the K readers, K+N readers in RLock, W writers on the inner Mutex.
#[test]
fn blocked_on_rlock_recursive() {
    blocked_story("rlock", "rlock-recursive", &[]);
}

/// A broadcaster holding the read lock across a send nobody receives.
#[test]
fn blocked_on_broadcast() {
    blocked_story("broadcast", "broadcast", &["events"]);
}

/// Workers holding the read lock while they wait for jobs; the dispatcher waits for the write
/// lock; the producer blocks on the full queue.
#[test]
fn blocked_on_pool() {
    blocked_story("pool", "pool", &["jobs", "queue"]);
}

/// The leak's channel: as many senders as the fixture had leaked at the freeze.
#[test]
fn blocked_on_leak_channel() {
    let tc = toolchains::newest();
    let mut fx = Fixture::start(&tc, "leak", &[]);
    let leak = fx.info_words("leak");
    assert_eq!(leak.len(), 1, "{:?}", fx.info);
    let addr = hex(&leak[0][1]);
    // Let it leak a few first.
    let start = Instant::now();
    while fx.leaked() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the leak does not grow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = fx.leaked() as usize;
    let snap = goroscope_json(&["dump", "-q", "--format", "json", &fx.pid()]);
    let after = fx.leaked() as usize;
    let o = object(&snap, addr);
    assert_eq!(o["kind"], "chan", "{o}");
    assert_eq!(
        (field(o, "dataqsiz"), field(o, "qcount"), field(o, "closed")),
        (0, 0, 0),
        "{o}"
    );
    let w = waiters(o);
    assert_eq!(
        w.keys().collect::<Vec<_>>(),
        vec!["chan send"],
        "only senders: {o}"
    );
    let senders = w["chan send"];
    assert!(
        (before..=after).contains(&senders),
        "{senders} senders on the leak's channel, the fixture had leaked {before}..={after}: {o}"
    );
    let blocked = ids_blocked_on(&snap, addr, "chan");
    assert_eq!(
        blocked.len(),
        senders,
        "goroutines whose blocked_on names the channel"
    );
    let leakers: BTreeSet<u64> = goroutines(&snap)
        .iter()
        .filter(|g| has_frame(g, "main.leakSend"))
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        blocked, leakers,
        "every leaked goroutine, and only those, is blocked on the channel"
    );
    support::assert_running(fx.pid);
}

// ---------------------------------------------------------------------------------------------
// Grouping and filters.

/// One group of the grouped view: count, header, and the indented lines under it.
#[derive(Debug)]
struct Group {
    count: usize,
    header: String,
    body: Vec<String>,
}

/// Parses `T goroutines in G groups` and the groups after it.
fn parse_grouped(text: &str) -> (usize, Vec<Group>) {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let total: usize = first
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .filter(|_| first.contains(" goroutines in ") || first.contains(" goroutine in "))
        .unwrap_or_else(|| panic!("grouped view starts with {first:?}:\n{text}"));
    let mut groups: Vec<Group> = Vec::new();
    for l in lines {
        if l.is_empty() {
            continue;
        }
        if !l.starts_with(' ') {
            let count = l
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("group header {l:?}:\n{text}"));
            groups.push(Group {
                count,
                header: l.to_string(),
                body: Vec::new(),
            });
        } else {
            groups
                .last_mut()
                .unwrap_or_else(|| panic!("stack line before a group: {l:?}\n{text}"))
                .body
                .push(l.trim().to_string());
        }
    }
    let sum: usize = groups.iter().map(|g| g.count).sum();
    assert_eq!(sum, total, "group counts add up to the total:\n{text}");
    (total, groups)
}

/// `--group`: the largest group is the N readers queued behind the writer; totals match the
/// runtime's own dump; filters by state, function and healthy-stack rules.
#[test]
fn grouping_and_filters_rlock_recursive() {
    let tc = toolchains::newest();
    let dir = Scratch::new("group");
    let mut fx = Fixture::start(&tc, "rlock-recursive", &[]);
    let rw = fx.rwmutex();
    let pid = fx.pid();
    let rt = support::parse(&fx.stack());

    let text = goroscope(&["dump", "-q", "--group", &pid]);
    let (total, groups) = parse_grouped(&text);
    assert_eq!(
        total,
        rt.goroutines.len(),
        "goroutines in the grouped view vs the runtime's dump:\n{text}"
    );
    assert_eq!(
        groups[0].count, rw.queued,
        "the largest group is the queued readers ({rw:?}):\n{text}"
    );
    assert!(
        groups[0].body.iter().any(|l| l == "main.rrQueued"),
        "largest group's stack:\n{text}"
    );
    assert!(
        groups.windows(2).all(|w| w[0].count >= w[1].count),
        "largest group first:\n{text}"
    );
    let recursive = groups
        .iter()
        .find(|g| g.body.iter().any(|l| l == "main.rrReadAgain"))
        .expect("the recursive readers' group");
    assert_eq!(recursive.count, rw.recursive, "{text}");

    // --group-by state: the states of the runtime's dump, counted (but for the goroutine that
    // ran runtime.Stack: it was reading stdin at goroscope's dump).
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for g in rt.goroutines.iter().filter(|g| g.is_parked()) {
        *want.entry(runtime_state(g)).or_insert(0) += 1;
    }
    let active: Vec<u64> = rt
        .goroutines
        .iter()
        .filter(|g| !g.is_parked())
        .map(|g| g.id)
        .collect();
    let (_, by_state) = parse_grouped(&goroscope(&["dump", "-q", "--group-by", "state", &pid]));
    let mut got: BTreeMap<String, usize> = by_state
        .iter()
        .map(|g| (g.body[0].clone(), g.count))
        .collect();
    for g in goroutines(&goroscope_json(&["dump", "-q", "--format", "json", &pid])) {
        if active.contains(&g["id"].as_u64().unwrap()) {
            let st = g["state"].as_str().unwrap();
            *got.get_mut(st).unwrap() -= 1;
            got.retain(|_, n| *n > 0);
        }
    }
    assert_eq!(
        got, want,
        "--group-by state vs the runtime's dump (parked goroutines)"
    );

    // Filters.
    let rlock_state = runtime_state(
        rt.goroutines
            .iter()
            .find(|g| g.has_frame("main.rrQueued"))
            .unwrap(),
    );
    assert!(
        groups[0].header.contains(&format!(" [{rlock_state}]: ")),
        "largest group's state:\n{text}"
    );
    let n = |args: &[&str]| {
        let mut a = vec!["dump", "-q", "--format", "json"];
        a.extend_from_slice(args);
        a.push(&pid);
        goroutines(&goroscope_json(&a)).len()
    };
    assert_eq!(n(&["--func", "^main\\.rrQueued$"]), rw.queued, "--func");
    let in_state = rt
        .goroutines
        .iter()
        .filter(|g| g.is_parked() && runtime_state(g) == rlock_state)
        .count();
    assert!(in_state >= rw.queued + rw.recursive);
    assert_eq!(
        n(&["--state", rlock_state.as_str()]),
        in_state,
        "--state {rlock_state:?}"
    );
    let rules = dir.path("healthy.rules");
    std::fs::write(&rules, "# the queued readers are known\nsync\\.\\(\\*RWMutex\\)\\.RLock\nmain\\.rrQueued\n\n# and the writer\nmain\\.rrWriter\n").unwrap();
    assert_eq!(
        n(&["--exclude-file", rules.to_str().unwrap()]),
        total - rw.queued - rw.writers,
        "--exclude-file"
    );

    // A snapshot file is shown as it is read (its goroutines never all held); the same
    // snapshot read whole (its JSON document) shows the same in every view that streams.
    let file = dir.path("group.gsnap");
    let whole = dir.path("group.json");
    goroscope(&["snapshot", "-q", &pid, "-o", file.to_str().unwrap()]);
    std::fs::write(
        &whole,
        goroscope(&[
            "show",
            "--system",
            "--format",
            "json",
            file.to_str().unwrap(),
        ]),
    )
    .unwrap();
    let views: [&[&str]; 9] = [
        &[],
        &["--group"],
        &["--group-by", "state"],
        &["--group-by", "user-frame", "--system"],
        &["--format", "grs"],
        &["--format", "grs", "--system"],
        &["--format", "go", "--func", "^main\\.rr"],
        &["--group", "--state", rlock_state.as_str()],
        &["--format", "debug1"],
    ];
    for view in views {
        let show = |f: &Path| {
            let mut a = vec!["show", "-q"];
            a.extend_from_slice(view);
            a.push(f.to_str().unwrap());
            goroscope(&a)
        };
        let (streamed, read_whole) = (show(&file), show(&whole));
        assert!(!streamed.is_empty(), "show {view:?}");
        assert_eq!(
            streamed, read_whole,
            "show {view:?}: streamed vs read whole"
        );
    }
    let same = goroscope(&["diff", file.to_str().unwrap(), whole.to_str().unwrap()]);
    let n = parse_grouped(&goroscope(&[
        "show",
        "-q",
        "--group",
        file.to_str().unwrap(),
    ]))
    .0;
    assert_eq!(
        same,
        format!("goroutines: {n} -> {n} (+0)\nno group changed\n"),
        "diff of a snapshot file and its own JSON"
    );
    support::assert_running(fx.pid);
}

/// `--group-by label:tenant` and `--label k=v` against the labels the fixture set.
fn check_labels(pid: &str, want: &BTreeMap<(String, String), usize>, what: &str) {
    let text = goroscope(&["dump", "-q", "--group-by", "label:tenant", pid]);
    let (total, groups) = parse_grouped(&text);
    let got: BTreeMap<String, usize> = groups
        .iter()
        .map(|g| (g.body[0].clone(), g.count))
        .collect();
    let tenants: usize = want
        .iter()
        .filter(|((k, _), _)| k == "tenant")
        .map(|(_, n)| n)
        .sum();
    let mut expect: BTreeMap<String, usize> = want
        .iter()
        .filter(|((k, _), _)| k == "tenant")
        .map(|((k, v), n)| (format!("{k}={v}"), *n))
        .collect();
    expect.insert("tenant unset".into(), total - tenants);
    assert_eq!(got, expect, "{what}: --group-by label:tenant\n{text}");

    for ((k, v), n) in want {
        let snap = goroscope_json(&[
            "dump",
            "-q",
            "--format",
            "json",
            "--label",
            &format!("{k}={v}"),
            pid,
        ]);
        let gs = goroutines(&snap);
        assert_eq!(gs.len(), *n, "{what}: --label {k}={v}");
        for g in gs {
            let ls = labels_of(g);
            assert!(
                ls.contains(&(k.clone(), v.clone())),
                "{what}: --label {k}={v} kept {g}"
            );
            assert!(
                ls.contains(&("job".into(), "x y".into())),
                "{what}: every labelled goroutine has job=\"x y\": {g}"
            );
            assert!(has_frame(g, "main.labelsPark"), "{what}: {g}");
        }
    }
}

/// Labels on the newest toolchain: grouping and filtering by label.
#[test]
fn grouping_and_filters_by_label() {
    let tc = toolchains::newest();
    let fx = Fixture::start(&tc, "labels", &[]);
    let want = fx.labels();
    assert_eq!(want.len(), 3, "{:?}", fx.info);
    check_labels(&fx.pid(), &want, &tc.name());
    support::assert_running(fx.pid);
}

/// Labels as each runtime keeps them: a map up to Go 1.23, a sorted slice from 1.24.
#[test]
fn labels_across_go_versions() {
    let all = toolchains::require_toolchains();
    let ranges = [
        ("1.19", 19..=19),
        ("1.21", 21..=21),
        ("1.22-1.23", 22..=23),
        ("1.24+", 24..=u32::MAX),
    ];
    for (name, fits) in ranges {
        let picked: Vec<&Toolchain> = all.iter().filter(|t| fits.contains(&t.minor())).collect();
        if picked.is_empty() {
            // Only a partial run leaves a range out (require_toolchains fails a full one).
            support::require(Err::<(), _>(format!(
                "no Go {name} toolchain in this run; labels not tested there"
            )));
        }
        for tc in picked {
            let fx = Fixture::start(tc, "labels", &["-a", "4", "-b", "1"]);
            let want = fx.labels();
            assert_eq!(
                want[&("tenant".to_string(), "a".to_string())],
                4,
                "{:?}",
                fx.info
            );
            check_labels(&fx.pid(), &want, &tc.name());
            support::assert_running(fx.pid);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Diff, watch and pprof.

/// Waits until the leak has just grown (so the next moments are free of new leaks), then takes
/// a snapshot; returns the leak count right before and right after it.
fn leak_snapshot(fx: &mut Fixture, file: &Path) -> (u64, u64, Duration) {
    let seen = fx.leaked();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fx.leaked() == seen {
        assert!(
            Instant::now() < deadline,
            "the leak stopped growing at {seen}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let before = fx.leaked();
    let t = Instant::now();
    goroscope(&["snapshot", "-q", &fx.pid(), "-o", file.to_str().unwrap()]);
    let took = t.elapsed();
    (before, fx.leaked(), took)
}

/// Parses `goroscope diff` output into (delta, what, before, after, state, description).
fn parse_diff(text: &str) -> Vec<(i64, String, usize, usize, String, Vec<String>)> {
    let re = regex::Regex::new(
        r"^([+-]\d+) (grew|shrank|appeared|vanished) \((\d+) -> (\d+)\) \[(.*)\]$",
    )
    .unwrap();
    let mut out: Vec<(i64, String, usize, usize, String, Vec<String>)> = Vec::new();
    for l in text.lines().skip(1) {
        if let Some(c) = re.captures(l) {
            out.push((
                c[1].parse().unwrap(),
                c[2].to_string(),
                c[3].parse().unwrap(),
                c[4].parse().unwrap(),
                c[5].to_string(),
                Vec::new(),
            ));
        } else if !l.is_empty() {
            out.last_mut()
                .unwrap_or_else(|| panic!("diff: line before a change: {l:?}\n{text}"))
                .5
                .push(l.trim().to_string());
        }
    }
    out
}

/// Two snapshots of the leak ~2 s apart: `diff` shows the leaking group grew by what the
/// fixture leaked in between; `watch` sees it grow; pprof profiles of both snapshots count every
/// goroutine, and `go tool pprof -diff_base` shows the growth.
#[test]
fn diff_watch_and_pprof_of_a_leak() {
    let tc = toolchains::newest();
    let dir = Scratch::new("diff");
    // Slow enough that a snapshot taken right after a leak is done before the next one.
    let mut fx = Fixture::start(&tc, "leak", &["-every", "400ms"]);
    let (a, b) = (dir.path("a.gsnap"), dir.path("b.gsnap"));
    let (a0, a1, ta) = leak_snapshot(&mut fx, &a);
    std::thread::sleep(Duration::from_millis(1600));
    let (b0, b1, tb) = leak_snapshot(&mut fx, &b);
    let exact = a0 == a1 && b0 == b1;
    eprintln!(
        "leak: {a0}..={a1} at snapshot a ({ta:?}), {b0}..={b1} at b ({tb:?}){}",
        if exact { ", exact" } else { "" }
    );

    let text = goroscope(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    let changes = parse_diff(&text);
    let leak: Vec<_> = changes
        .iter()
        .filter(|c| c.5.iter().any(|l| l == "main.leakSend"))
        .collect();
    assert_eq!(leak.len(), 1, "one change of the leaking group:\n{text}");
    let (delta, what, before, after, state, _) = leak[0];
    assert_eq!(what, "grew", "{text}");
    assert_eq!(state, "chan send", "{text}");
    assert!(
        (a0..=a1).contains(&(*before as u64)),
        "leaking group in a: {before}, fixture leaked {a0}..={a1}\n{text}"
    );
    assert!(
        (b0..=b1).contains(&(*after as u64)),
        "leaking group in b: {after}, fixture leaked {b0}..={b1}\n{text}"
    );
    assert_eq!(*delta, *after as i64 - *before as i64, "{text}");
    if exact {
        assert_eq!(*delta, (b0 - a0) as i64, "{text}");
    }
    assert!(*delta > 0, "{text}");
    // The total line counts every goroutine of both snapshots.
    let count = |p: &Path| {
        goroutines(&goroscope_json(&[
            "show",
            "--format",
            "json",
            p.to_str().unwrap(),
        ]))
        .len()
    };
    let (na, nb) = (count(&a), count(&b));
    assert!(
        text.starts_with(&format!(
            "goroutines: {na} -> {nb} ({:+})\n",
            nb as i64 - na as i64
        )),
        "{text}"
    );

    // pprof: every non-system goroutine of the snapshot is one count of a sample.
    let (pa, pb) = (dir.path("a.pb.gz"), dir.path("b.pb.gz"));
    for (snap, prof, n) in [(&a, &pa, na), (&b, &pb, nb)] {
        pprof_file(snap, prof);
        let json = goroscope_json(&["show", "--format", "json", snap.to_str().unwrap()]);
        assert!(goroutines(&json).iter().all(|g| g["system"] != true));
        let samples = pprof_samples(&tc, prof);
        let sum: u64 = samples.iter().map(|s| s.0).sum();
        assert_eq!(
            sum as usize,
            n,
            "pprof samples of {} vs its goroutines: {samples:?}",
            snap.display()
        );
    }
    // -diff_base: the growth is the leak.
    let top = go_pprof(
        &tc,
        &[
            "-top",
            "-diff_base",
            pa.to_str().unwrap(),
            pb.to_str().unwrap(),
        ],
    );
    let row = top
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() >= 6 && w[5] == "main.leakSend")
        .unwrap_or_else(|| {
            panic!("go tool pprof -top -diff_base has no main.leakSend row:\n{top}")
        });
    let cum: i64 = row[3]
        .parse()
        .unwrap_or_else(|_| panic!("cum of {row:?}\n{top}"));
    assert_eq!(
        cum, *delta,
        "pprof -diff_base delta of main.leakSend vs goroscope diff:\n{top}\n{text}"
    );

    // watch: the leaking group grows from sample to sample.
    let w0 = fx.leaked();
    let watch = goroscope(&["watch", &fx.pid(), "--every", "500ms", "--count", "3"]);
    let w1 = fx.leaked();
    let lines: Vec<&str> = watch.lines().collect();
    let i3 = lines
        .iter()
        .position(|l| l.starts_with("sample 3: "))
        .unwrap_or_else(|| panic!("watch:\n{watch}"));
    let re = regex::Regex::new(r"^  \+(\d+) since sample 1 \((\d+) -> (\d+) -> (\d+)\):$").unwrap();
    let row = lines[i3..]
        .windows(2)
        .find_map(|w| re.captures(w[0]).filter(|_| w[1].trim() == "main.leakSend"))
        .unwrap_or_else(|| {
            panic!("watch shows no growing main.leakSend group after sample 3:\n{watch}")
        });
    let s: Vec<u64> = (1..=4).map(|i| row[i].parse().unwrap()).collect();
    assert!(
        s[1] <= s[2] && s[2] <= s[3] && s[0] == s[3] - s[1] && s[0] > 0,
        "watch series {s:?}:\n{watch}"
    );
    assert!(
        w0 <= s[1] && s[3] <= w1,
        "watch saw {s:?}, the fixture leaked {w0}..={w1}:\n{watch}"
    );
    support::assert_running(fx.pid);
}

/// A pprof profile of a labelled snapshot: samples add up to the goroutines goroscope lists,
/// and carry the labels with the fixture's counts.
#[test]
fn pprof_counts_and_labels() {
    let tc = toolchains::newest();
    let dir = Scratch::new("pprof");
    let fx = Fixture::start(&tc, "labels", &[]);
    let want = fx.labels();
    let snap = dir.path("labels.gsnap");
    goroscope(&["snapshot", "-q", &fx.pid(), "-o", snap.to_str().unwrap()]);
    drop(fx);
    let json = goroscope_json(&["show", "--format", "json", snap.to_str().unwrap()]);
    let n = goroutines(&json)
        .iter()
        .filter(|g| g["system"] != true)
        .count();
    assert_eq!(
        n,
        goroutines(&json).len(),
        "show hides system goroutines by default"
    );
    let prof = dir.path("labels.pb.gz");
    pprof_file(&snap, &prof);
    let samples = pprof_samples(&tc, &prof);
    let sum: u64 = samples.iter().map(|s| s.0).sum();
    assert_eq!(sum as usize, n, "pprof samples vs goroutines: {samples:?}");
    for ((k, v), count) in &want {
        let tag = format!("{k}:[{v}]");
        let got: u64 = samples
            .iter()
            .filter(|s| s.1.contains(&tag))
            .map(|s| s.0)
            .sum();
        assert_eq!(got as usize, *count, "samples labelled {tag}: {samples:?}");
    }
    // The same through pprof's own label report.
    let tags = go_pprof(&tc, &["-tags", prof.to_str().unwrap()]);
    for ((k, v), count) in &want {
        if k == "tenant" {
            // `3 (37.50%): a`; pprof before Go 1.25 prints `3.0 (60.00%): a`.
            let line = tags.lines().find(|l| {
                let t = l.trim();
                t.ends_with(&format!(": {v}"))
                    && t.split(' ').next().and_then(|n| n.parse::<f64>().ok())
                        == Some(*count as f64)
            });
            assert!(
                line.is_some(),
                "go tool pprof -tags: no {count} for {k}={v}:\n{tags}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text dumps and old snapshots.

/// The fixture's own runtime.Stack text, saved to a file, reads back goroutine by goroutine;
/// the analysis works on it.
#[test]
fn show_reads_the_runtimes_own_text() {
    let tc = toolchains::newest();
    let dir = Scratch::new("text");
    let mut fx = Fixture::start(&tc, "rlock-recursive", &[]);
    let rw = fx.rwmutex();
    let text = fx.stack();
    drop(fx);
    let rt = support::parse(&text);
    assert!(rt.errors.is_empty(), "{:?}", rt.errors);
    let file = dir.path("stack.txt");
    std::fs::write(&file, format!("{text}\n")).unwrap();
    let f = file.to_str().unwrap();

    let snap = goroscope_json(&["show", "--format", "json", f]);
    assert_eq!(snap["meta"]["source"], "text");
    let got: Vec<(u64, String, Vec<String>)> = goroutines(&snap)
        .iter()
        .map(|g| {
            let fns = g["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["function"].as_str().unwrap().to_string())
                .collect();
            (
                g["id"].as_u64().unwrap(),
                g["state"].as_str().unwrap().to_string(),
                fns,
            )
        })
        .collect();
    let want: Vec<(u64, String, Vec<String>)> = rt
        .goroutines
        .iter()
        .map(|g| {
            (
                g.id,
                runtime_state(g),
                g.frames.iter().map(|f| f.func.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got, want,
        "show of runtime.Stack text: (id, state, functions) per goroutine"
    );
    for (g, r) in goroutines(&snap).iter().zip(&rt.goroutines) {
        let lines: Vec<u64> = g["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["line"].as_u64().unwrap())
            .collect();
        assert_eq!(
            lines,
            r.frames
                .iter()
                .map(|f| u64::from(f.line))
                .collect::<Vec<_>>(),
            "lines of goroutine {}",
            r.id
        );
        let created = g["created_by"]["function"].as_str().map(str::to_string);
        assert_eq!(
            created,
            r.created_by.as_ref().map(|c| c.func.clone()),
            "created by, goroutine {}",
            r.id
        );
    }

    let (total, groups) = parse_grouped(&goroscope(&["show", "--group", f]));
    assert_eq!(total, rt.goroutines.len());
    assert_eq!(
        groups[0].count, rw.queued,
        "largest group of the text dump: the queued readers"
    );
    assert!(groups[0].body.iter().any(|l| l == "main.rrQueued"));

    // The other formats work on a text dump too: grs lists the runtime's goroutines with
    // their states, debug=1 counts, and a profile pprof opens.
    let want: Vec<(u64, String)> = rt
        .goroutines
        .iter()
        .map(|g| (g.id, runtime_state(g)))
        .collect();
    assert_eq!(
        parse_grs(&goroscope(&["show", "--format", "grs", f])),
        want,
        "grs of the runtime's text"
    );
    let d1 = goroscope(&["show", "--format", "debug1", f]);
    assert_eq!(
        d1.lines().next(),
        Some(format!("goroutine profile: total {total}").as_str()),
        "{d1}"
    );
    assert!(
        d1.lines()
            .any(|l| l.starts_with(&format!("{} @", rw.queued))),
        "{d1}"
    );
    let prof = dir.path("stack.pb.gz");
    pprof_file(&file, &prof);
    let samples = pprof_samples(&tc, &prof);
    assert_eq!(
        samples.iter().map(|s| s.0).sum::<u64>() as usize,
        total,
        "pprof of a text dump: {samples:?}"
    );
    assert!(
        samples.iter().any(|s| s.0 as usize == rw.queued),
        "pprof of a text dump: {samples:?}"
    );
}

/// A SIGQUIT dump (the runtime's preamble, then every goroutine) reads back the same way.
#[test]
fn show_reads_a_sigquit_dump() {
    let tc = toolchains::newest();
    let dir = Scratch::new("sigquit");
    let mut fx = Fixture::start(&tc, "rlock-recursive", &[]);
    let rw = fx.rwmutex();
    let text = fx.sigquit();
    drop(fx);
    assert!(text.starts_with("SIGQUIT: quit"), "{text}");
    let rt = support::parse(&text);
    let file = dir.path("sigquit.txt");
    std::fs::write(&file, &text).unwrap();
    let f = file.to_str().unwrap();
    let snap = goroscope_json(&["show", "--format", "json", "--system", f]);
    let got: Vec<(u64, String)> = goroutines(&snap)
        .iter()
        .map(|g| {
            (
                g["id"].as_u64().unwrap(),
                g["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, String)> = rt
        .goroutines
        .iter()
        .map(|g| (g.id, runtime_state(g)))
        .collect();
    assert!(
        want.len() > rw.recursive + rw.queued + rw.writers + rw.lockers,
        "{text}"
    );
    assert_eq!(
        got, want,
        "show of a SIGQUIT dump: (id, state) per goroutine"
    );
    let (_, groups) = parse_grouped(&goroscope(&["show", "--group", f]));
    assert_eq!(
        groups[0].count, rw.queued,
        "largest group of the SIGQUIT dump: the queued readers"
    );
    assert!(groups[0].body.iter().any(|l| l == "main.rrQueued"));
}

/// Labels printed in the runtime's own traceback (Go 1.27: `{k: v}` after the state) read back
/// from the text. The newest toolchain must print them (a partial run narrowed to an older one
/// skips).
#[test]
fn show_reads_labels_from_the_runtimes_text() {
    let tc = toolchains::newest();
    let prints = if prints_labels_by_default(&tc) {
        Ok(())
    } else {
        Err(format!(
            "{} does not print labels in tracebacks (tracebacklabels is off by default)",
            tc.name()
        ))
    };
    let Some(()) = support::require(prints) else {
        return;
    };
    let dir = Scratch::new("textlabels");
    let mut fx = Fixture::start(&tc, "labels", &[]);
    let want = fx.labels();
    let text = fx.stack();
    drop(fx);
    let rt = support::parse(&text);
    let labelled = rt
        .goroutines
        .iter()
        .filter(|g| !g.labels.is_empty())
        .count();
    let tenants: usize = want
        .iter()
        .filter(|((k, _), _)| k == "tenant")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        labelled,
        tenants,
        "goroutines with labels (every one has a tenant) in {}'s own text:\n{text}",
        tc.name()
    );
    let file = dir.path("stack.txt");
    std::fs::write(&file, format!("{text}\n")).unwrap();
    for ((k, v), n) in &want {
        let snap = goroscope_json(&[
            "show",
            "--format",
            "json",
            "--label",
            &format!("{k}={v}"),
            file.to_str().unwrap(),
        ]);
        assert_eq!(
            goroutines(&snap).len(),
            *n,
            "--label {k}={v} on the runtime's text"
        );
    }
}

/// The committed schema-1 sample still reads, in every format.
#[test]
fn reads_the_v1_snapshot_sample() {
    let p = support::fixture::manifest_dir().join("testdata/snapshots/v1.json.gz");
    let f = p.to_str().unwrap();
    let snap = goroscope_json(&["show", "--format", "json", f]);
    let n = goroutines(&snap).len();
    assert!(n > 0, "no goroutines in {f}");
    let go = goroscope(&["show", "--format", "go", f]);
    let tb = support::parse(&go);
    assert_eq!(tb.goroutines.len(), n, "show --format go of {f}:\n{go}");
    assert_eq!(
        tb.goroutines.iter().map(|g| g.id).collect::<Vec<_>>(),
        goroutines(&snap)
            .iter()
            .map(|g| g["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    );
    let (total, _) = parse_grouped(&goroscope(&["show", "--group", f]));
    assert_eq!(total, n);
    // grs: the goroutines the traceback has, with its states.
    let states: Vec<(u64, String)> = tb
        .goroutines
        .iter()
        .map(|g| (g.id, runtime_state(g)))
        .collect();
    assert_eq!(
        parse_grs(&goroscope(&["show", "--format", "grs", f])),
        states,
        "grs of {f}"
    );
    // debug=1: the total, and records whose counts add up to it.
    let d1 = goroscope(&["show", "--format", "debug1", f]);
    assert_eq!(
        d1.lines().next(),
        Some(format!("goroutine profile: total {n}").as_str()),
        "{d1}"
    );
    let counted: usize = d1
        .lines()
        .filter_map(|l| l.split_once(" @ "))
        .map(|(c, _)| c.parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, n, "debug1 of {f}:\n{d1}");
    // blocked: every goroutine it names is one of the sample's, blocked forever exactly those
    // parked on a nil channel or an empty select.
    let blocked = goroscope(&["show", "--format", "blocked", f]);
    let ids_after = |prefix: &str| -> Vec<u64> {
        let line = blocked
            .lines()
            .find(|l| l.contains(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{blocked}"));
        let list = line.split_once(": ").unwrap().1;
        list.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let forever: Vec<u64> = tb
        .goroutines
        .iter()
        .filter(|g| g.state.contains("(nil chan)") || g.state.starts_with("select (no cases)"))
        .map(|g| g.id)
        .collect();
    assert!(
        !forever.is_empty(),
        "the sample has goroutines on nil channels:\n{go}"
    );
    assert_eq!(ids_after("blocked forever"), forever, "{blocked}");
    for id in ids_after("could not identify") {
        assert!(
            states.iter().any(|(i, _)| *i == id),
            "goroutine {id} is not in {f}:\n{blocked}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pending defers: the locks goroutines hold through `defer mu.Unlock()`.

/// A lock a goroutine of the `holders` scenario says it holds:
/// `INFO holds <goid> <unlock method> <addr> <plain|loop> <function>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    goid: u64,
    method: String,
    addr: u64,
    /// How goroscope must have found it: `open-coded` for a plain defer, `record` for one in
    /// a loop (never open-coded).
    how: String,
    function: String,
}

fn held_info(fx: &Fixture) -> BTreeSet<Held> {
    fx.info_words("holds")
        .into_iter()
        .map(|w| Held {
            goid: w[1].parse().unwrap(),
            method: w[2].clone(),
            addr: hex(&w[3]),
            how: if w[4] == "loop" {
                "record"
            } else {
                "open-coded"
            }
            .into(),
            function: w[5].clone(),
        })
        .collect()
}

/// Every pending deferred unlock of a sync lock in a snapshot, as the same tuples.
fn deferred_unlocks(snap: &Value) -> BTreeSet<Held> {
    let mut out = BTreeSet::new();
    for g in goroutines(snap) {
        for f in g["frames"].as_array().unwrap() {
            for d in f["defers"].as_array().into_iter().flatten() {
                let method = d["function"].as_str().unwrap();
                if method.starts_with("sync.") && method.ends_with("Unlock") {
                    out.insert(Held {
                        goid: g["id"].as_u64().unwrap(),
                        method: method.into(),
                        addr: d["arg"].as_u64().unwrap_or(0),
                        how: d["how"].as_str().unwrap().into(),
                        function: f["function"].as_str().unwrap().into(),
                    });
                }
            }
        }
    }
    out
}

/// The `holders` scenario on every toolchain, with and without DWARF: the pending deferred
/// unlocks goroscope finds are exactly the locks each goroutine says it holds (its id from its
/// own traceback header, the lock's address from `%p`), in the frame that deferred them; `bt
/// --full` prints them, and a snapshot file keeps them.
#[test]
fn pending_defers_name_the_locks_held() {
    let dir = Scratch::new("defers");
    for tc in toolchains::require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped] {
            let fx = Fixture::start_flavor(&tc, flavor, "holders", &[]);
            let want = held_info(&fx);
            assert_eq!(want.len(), 10, "{}: INFO {:?}", fx.what, fx.info);
            let pid = fx.pid();
            let live = goroscope_json(&["dump", "-q", "--format", "json", &pid]);
            let got = deferred_unlocks(&live);
            assert_eq!(got, want, "{}: pending deferred unlocks", fx.what);

            // A deferred call that is not a wrapped unlock names no argument word.
            let other: Vec<&Value> = goroutines(&live)
                .iter()
                .flat_map(|g| g["frames"].as_array().unwrap())
                .filter(|f| f["function"] == "main.hoNotUnlock")
                .flat_map(|f| f["defers"].as_array().into_iter().flatten())
                .collect();
            assert_eq!(other.len(), 1, "{}: main.hoNotUnlock's defer", fx.what);
            assert!(other[0]["arg"].is_null(), "{}: {:?}", fx.what, other[0]);

            let h = want.iter().find(|h| h.function == "main.hoMutex").unwrap();
            let text = goroscope(&["bt", "-q", "--full", &pid, &h.goid.to_string()]);
            let line = format!("defers: {}({:#x})", h.method, h.addr);
            assert!(
                text.lines().any(|l| l.trim() == line),
                "{}: bt --full lacks {line:?}:\n{text}",
                fx.what
            );

            // Holders: every lock the fixture holds, by the goroutine and frame holding it.
            let holders: BTreeSet<(u64, u64, String, String)> = live["objects"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|o| {
                    let addr = o["addr"].as_u64().unwrap();
                    o["holders"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |h| {
                            assert_eq!(h["how"], "defer", "{h:?}");
                            (
                                addr,
                                h["goroutine"].as_u64().unwrap(),
                                h["function"].as_str().unwrap().to_string(),
                                h["lock"].as_str().unwrap().to_string(),
                            )
                        })
                })
                .collect();
            let truth: BTreeSet<(u64, u64, String, String)> = want
                .iter()
                .map(|h| {
                    let lock = if h.method.ends_with("RUnlock") {
                        "read"
                    } else {
                        "write"
                    };
                    (h.addr, h.goid, h.function.clone(), lock.to_string())
                })
                .collect();
            assert_eq!(holders, truth, "{}: holders", fx.what);

            // Beside the waiter of hoMutex's lock in the blocked view (with or without symbols:
            // the semaphore table is found either way), and in the session.
            let blocked = goroscope(&["dump", "-q", "--blocked", &pid]);
            let held = format!(
                "    held by goroutine {} (write lock) in main.hoMutex at ",
                h.goid
            );
            let section: Vec<&str> = blocked
                .split("\n\n")
                .find(|s| s.starts_with(&format!("sync.Mutex at {:#x} ", h.addr)))
                .unwrap_or_else(|| panic!("{}: no section for {:#x}:\n{blocked}", fx.what, h.addr))
                .lines()
                .collect();
            assert!(
                section.iter().any(|l| l.starts_with(&held))
                    && section.iter().any(|l| l.starts_with("    1 goroutine in ")),
                "{}: dump --blocked: {held:?} beside the waiter:\n{blocked}",
                fx.what
            );
            let script = dir.path("holders.batch");
            std::fs::write(&script, "holders\n").unwrap();
            let session = goroscope(&["attach", "-q", &pid, "--batch", script.to_str().unwrap()]);
            for (addr, goid, function, lock) in &truth {
                let line = format!("    held by goroutine {goid} ({lock} lock) in {function} at ");
                assert!(
                    session.lines().any(|l| l.starts_with(&line)),
                    "{}: session `holders` lacks {line:?} (lock {addr:#x}):\n{session}",
                    fx.what
                );
            }

            let file = dir.path(&format!("{}-{}.gsnap", tc.version, flavor.name()));
            goroscope(&["snapshot", "-q", &pid, "-o", file.to_str().unwrap()]);
            let shown = goroscope_json(&["show", "--format", "json", file.to_str().unwrap()]);
            assert_eq!(deferred_unlocks(&shown), want, "{}: snapshot", fx.what);
            support::assert_running(fx.pid);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deadlocks proven by lock holders.

/// Every toolchain, each with a default and a stripped build.
fn with_and_without_symbols() -> Vec<(Toolchain, Flavor)> {
    toolchains::require_toolchains()
        .into_iter()
        .flat_map(|tc| [(tc.clone(), Flavor::Default), (tc, Flavor::Stripped)])
        .collect()
}

/// `goroscope deadlocks <args>`: its exit code and stdout.
fn deadlocks(args: &[&str]) -> (i32, String) {
    let mut all = vec!["deadlocks", "-q"];
    all.extend_from_slice(args);
    let out = support::run_goroscope(&all, GOROSCOPE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || code == 3,
        "goroscope {all:?}: {}\nstderr:\n{}",
        out.status,
        out.stderr
    );
    (code, out.stdout)
}

/// `goroscope deadlocks --format json` of a running fixture, which must exit with `code`.
fn deadlocks_json(fx: &Fixture, code: i32) -> Value {
    let (got, json) = deadlocks(&["--format", "json", &fx.pid()]);
    assert_eq!(got, code, "{}: exit code\n{json}", fx.what);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{}: {e}\n{json}", fx.what))
}

/// A verdict as the fixture states it (`INFO verdict ...`) or as goroscope's JSON has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct VerdictInfo {
    kind: String,
    culprit: u64,
    function: String,
    lock: u64,
    goroutines: Vec<u64>,
    /// An RWMutex's readers: how many hold it by its counts, how many goroutines were found
    /// holding it (the fixture's count for both).
    readers: Option<(u64, u64)>,
}

/// What a held-while-blocked verdict adds: how many wait for the lock, and the culprit's wait
/// (its state and channel).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct BlockedInfo {
    waiters: usize,
    state: String,
    chan: u64,
}

/// The verdicts the fixture states: `verdict <kind> culprit <goid> <function> lock <addr>
/// goroutines <goid>... [waiters <n> waits <state> <chan>]`.
fn fixture_verdicts(fx: &Fixture) -> Vec<(VerdictInfo, Option<BlockedInfo>)> {
    fx.info_words("verdict")
        .into_iter()
        .map(|w| {
            let end = w.iter().position(|x| x == "waiters").unwrap_or(w.len());
            let blocked = (end < w.len()).then(|| BlockedInfo {
                waiters: w[end + 1].parse().unwrap(),
                state: w[end + 3..w.len() - 1].join(" "),
                chan: hex(&w[w.len() - 1]),
            });
            let v = VerdictInfo {
                kind: w[1].clone(),
                culprit: w[3].parse().unwrap(),
                function: w[4].clone(),
                lock: hex(&w[6]),
                goroutines: w[8..end].iter().map(|g| g.parse().unwrap()).collect(),
                readers: None,
            };
            (v, blocked)
        })
        .collect()
}

fn verdicts_json(v: &Value) -> BTreeSet<VerdictInfo> {
    v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| VerdictInfo {
            kind: v["kind"].as_str().unwrap().into(),
            culprit: v["culprit"]["goroutine"].as_u64().unwrap(),
            function: v["culprit"]["function"].as_str().unwrap().into(),
            lock: v["lock"]["addr"].as_u64().unwrap(),
            goroutines: v["goroutines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_u64().unwrap())
                .collect(),
            readers: v
                .get("readers")
                .map(|r| (r["hold"].as_u64().unwrap(), r["found"].as_u64().unwrap())),
        })
        .collect()
}

/// The output lines of `goroscope attach -q PID --batch` running `script` on a fixture.
fn session_lines(fx: &Fixture, script: &str) -> Vec<String> {
    let dir = Scratch::new(&format!("deadlocks-session-{}", fx.pid));
    let file = dir.path("script.batch");
    std::fs::write(&file, script).unwrap();
    let out = goroscope(&["attach", "-q", &fx.pid(), "--batch", file.to_str().unwrap()]);
    out.lines().map(String::from).collect()
}

/// What names each lock, as the fixture states it (`lockname <addr> <name...>`).
fn fixture_lock_names(fx: &Fixture) -> BTreeMap<u64, String> {
    fx.info_words("lockname")
        .into_iter()
        .map(|w| (hex(&w[1]), w[2..].join(" ")))
        .collect()
}

/// The names goroscope's JSON gives the verdicts' locks, by address.
fn json_lock_names(v: &Value) -> BTreeMap<u64, String> {
    v["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| {
            let l = &v["lock"];
            Some((l["addr"].as_u64()?, l["name"].as_str()?.to_string()))
        })
        .collect()
}

/// A lock's name as the text prints it after its address: ` (name)`, or nothing.
fn named(names: &BTreeMap<u64, String>, addr: u64) -> String {
    names
        .get(&addr)
        .map(|n| format!(" ({n})"))
        .unwrap_or_default()
}

/// Both outputs of `deadlocks` on a running fixture: the verdicts of the JSON (whose holders
/// must be the holders the snapshot's objects name), and the text's exit code and first line.
fn deadlock_verdicts(
    pid: &str,
    what: &str,
) -> (BTreeSet<VerdictInfo>, i32, String, BTreeMap<u64, String>) {
    let (code, json) = deadlocks(&["--format", "json", pid]);
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{what}: {e}\n{json}"));
    for h in v["holders"].as_array().unwrap() {
        assert!(
            ["defer", "pointer", "code"].contains(&h["how"].as_str().unwrap_or_default()),
            "{what}: {h:?}"
        );
    }
    let found = verdicts_json(&v);
    let names = json_lock_names(&v);
    assert_eq!(
        code,
        if found.is_empty() { 0 } else { 3 },
        "{what}: exit code"
    );
    let (text_code, text) = deadlocks(&[pid]);
    assert_eq!(text_code, code, "{what}: exit code of the text output");
    (
        found,
        code,
        text.lines().next().unwrap_or_default().to_string(),
        names,
    )
}

/// A goroutine that takes a Mutex it holds, and two that take two Mutexes in opposite orders:
/// on every toolchain, with and without symbols, exactly the verdict the fixture states, the
/// culprit, its holding frame and the lock on the first line, exit status 3.
#[test]
fn deadlocks_lock_twice_and_lock_order() {
    for tc in toolchains::require_toolchains() {
        // Stripped too: the semaphore table, and so the waiters, are found without symbols.
        for (flavor, scenario) in [
            (Flavor::Default, "lock-twice"),
            (Flavor::Stripped, "lock-twice"),
            (Flavor::Default, "lock-order"),
            (Flavor::Stripped, "lock-order"),
        ] {
            let fx = Fixture::start_flavor(&tc, flavor, scenario, &[]);
            let want: BTreeSet<VerdictInfo> =
                fixture_verdicts(&fx).into_iter().map(|(v, _)| v).collect();
            assert_eq!(want.len(), 1, "{}: {:?}", fx.what, fx.info);
            let (found, _, first, names) = deadlock_verdicts(&fx.pid(), &fx.what);
            assert_eq!(found, want, "{}: verdicts", fx.what);
            // With DWARF the lock is named as the fixture names it; stripped, not at all.
            let mut stated = fixture_lock_names(&fx);
            if flavor == Flavor::Stripped {
                stated.clear();
            }
            stated.retain(|a, _| found.iter().any(|v| v.lock == *a));
            assert_eq!(names, stated, "{}: the lock's name", fx.what);
            let v = want.first().unwrap();
            let lock = format!(
                "holds sync.Mutex at {:#x}{} in {} at ",
                v.lock,
                named(&names, v.lock),
                v.function
            );
            assert!(
                first.contains(&format!("goroutine {} {lock}", v.culprit)),
                "{}: first line {first:?} lacks the culprit {} and {lock:?}",
                fx.what,
                v.culprit
            );
            // The session's `deadlocks` says the same.
            let session = session_lines(&fx, "deadlocks\n");
            assert_eq!(
                session.first(),
                Some(&first),
                "{}: session `deadlocks`:\n{}",
                fx.what,
                session.join("\n")
            );
            support::assert_running(fx.pid);
        }
    }
}

/// Recursive RLock behind a pending writer: each of the K readers holding the read lock (a
/// pending deferred RUnlock in main.rrRecursive) waits in a second RLock: K self-deadlocks,
/// the goroutines the runtime's own dump shows in main.rrReadAgain; with and without symbols.
#[test]
fn deadlocks_rlock_recursive() {
    for (tc, flavor) in with_and_without_symbols() {
        let mut fx = Fixture::start_flavor(&tc, flavor, "rlock-recursive", &[]);
        let rw = fx.rwmutex();
        let rt = support::parse(&fx.stack());
        let again: Vec<u64> = rt
            .goroutines
            .iter()
            .filter(|g| g.frames.iter().any(|f| f.func == "main.rrReadAgain"))
            .map(|g| g.id)
            .collect();
        assert_eq!(again.len(), rw.recursive, "{}: the runtime's dump", fx.what);
        let want: BTreeSet<VerdictInfo> = again
            .iter()
            .map(|&g| VerdictInfo {
                kind: "self-deadlock".into(),
                culprit: g,
                function: "main.rrRecursive".into(),
                lock: rw.addr,
                goroutines: vec![g],
                readers: Some((rw.recursive as u64, rw.recursive as u64)),
            })
            .collect();
        let (found, _, first, names) = deadlock_verdicts(&fx.pid(), &fx.what);
        assert_eq!(found, want, "{}: verdicts", fx.what);
        assert!(
            first.starts_with("self-deadlock: goroutine ")
                && first.contains(&format!(
                    " holds sync.RWMutex at {:#x}{} in main.rrRecursive at ",
                    rw.addr,
                    named(&names, rw.addr)
                )),
            "{}: first line {first:?}",
            fx.what
        );
    }
}

/// Busy locks, and a goroutine waiting for a Mutex another holds while it sleeps: no verdict,
/// exit status 0.
#[test]
fn deadlocks_none_in_a_healthy_program() {
    for (tc, flavor) in with_and_without_symbols() {
        let fx = Fixture::start_flavor(&tc, flavor, "locks-busy", &[]);
        for _ in 0..5 {
            let (found, code, first, _) = deadlock_verdicts(&fx.pid(), &fx.what);
            assert!(found.is_empty() && code == 0, "{}: {found:?}", fx.what);
            assert!(
                first.starts_with("no deadlock found"),
                "{}: {first:?}",
                fx.what
            );
        }
        support::assert_running(fx.pid);
    }
}

/// A Mutex locked by a function that returned without unlocking it (an early return), other
/// goroutines waiting for it: on every toolchain, with and without symbols, one verdict
/// `held-by-nobody` naming the lock and exactly the waiters the fixture states (their ids from
/// their own traceback headers), no culprit, no holder of any kind, exit status 3, and a first
/// line saying so.
#[test]
fn deadlocks_held_by_nobody() {
    for (tc, flavor) in with_and_without_symbols() {
        let fx = Fixture::start_flavor(&tc, flavor, "never-unlocked", &[]);
        let stated = fx.info_words("verdict");
        assert_eq!(stated.len(), 1, "{}: {:?}", fx.what, fx.info);
        let w = &stated[0];
        assert_eq!(
            (&*w[1], &*w[2], &*w[4]),
            ("held-by-nobody", "lock", "waiters")
        );
        let lock = hex(&w[3]);
        let waiters: Vec<u64> = w[5..].iter().map(|g| g.parse().unwrap()).collect();
        let v = deadlocks_json(&fx, 3);
        let json = v.to_string();
        let verdicts = v["verdicts"].as_array().unwrap();
        assert_eq!(verdicts.len(), 1, "{}: {json}", fx.what);
        let got = &verdicts[0];
        assert_eq!(got["kind"], "held-by-nobody", "{}: {got}", fx.what);
        assert!(got["culprit"].is_null(), "{}: {got}", fx.what);
        assert_eq!(
            (&got["lock"]["kind"], got["lock"]["addr"].as_u64()),
            (&Value::from("sync.Mutex"), Some(lock)),
            "{}: {got}",
            fx.what
        );
        assert_eq!(got["waiters"], serde_json::json!(waiters), "{}", fx.what);
        assert!(
            v["holders"].as_array().unwrap().is_empty(),
            "{}: {json}",
            fx.what
        );
        let (text_code, text) = deadlocks(&[&fx.pid()]);
        assert_eq!(text_code, 3, "{}: exit code of the text output", fx.what);
        let want = format!(
            "held by nobody: sync.Mutex at {lock:#x}{} is locked and {} goroutines wait for it, but no goroutine holds it",
            named(&json_lock_names(&v), lock),
            waiters.len()
        );
        assert!(
            text.lines().next().unwrap_or_default().starts_with(&want),
            "{}: want {want:?}...:\n{text}",
            fx.what
        );
        // In a session, the verdict is shown with a word on confirming it, then, after a
        // `refresh`, confirmed by the two snapshots.
        let session = session_lines(&fx, "deadlocks\nrefresh\ndeadlocks\n");
        let all = session.join("\n");
        let verdicts = session.iter().filter(|l| l.starts_with(&want)).count();
        let notes = session
            .iter()
            .filter(|l| l.contains("rest on one moment: `refresh`, then `deadlocks` again"))
            .count();
        assert_eq!((verdicts, notes), (2, 1), "{}: session:\n{all}", fx.what);
        support::assert_running(fx.pid);
    }
}

/// Mutexes held without a deferred unlock (Lock, then Unlock in code that never runs) by
/// goroutines blocked on a channel nobody sends on, others waiting for them: a global Mutex
/// and one inside a heap object (not its first field). On every toolchain, with and without
/// symbols: exactly the verdicts the fixture states (culprit from its own traceback header,
/// its frame, the lock, how many wait, the channel), each culprit a possible holder (`pointer`
/// or `code`), the only holder of its lock, and no holder claimed certain; exit status 3.
#[test]
fn deadlocks_held_without_defer() {
    for (tc, flavor) in with_and_without_symbols() {
        let fx = Fixture::start_flavor(&tc, flavor, "no-defer", &[]);
        let stated = fixture_verdicts(&fx);
        assert_eq!(stated.len(), 2, "{}: {:?}", fx.what, fx.info);
        let v = deadlocks_json(&fx, 3);
        let json = v.to_string();
        let want: BTreeSet<VerdictInfo> = stated.iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(verdicts_json(&v), want, "{}: verdicts\n{json}", fx.what);
        for (want, blocked) in &stated {
            let blocked = blocked.as_ref().unwrap();
            let got = v["verdicts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["lock"]["addr"].as_u64() == Some(want.lock))
                .unwrap();
            let how = got["culprit"]["how"].as_str().unwrap_or_default();
            assert!(
                how == "pointer" || how == "code",
                "{}: culprit {got}",
                fx.what
            );
            assert_eq!(
                got["waiters"].as_array().map(Vec::len),
                Some(blocked.waiters),
                "{}: {got}",
                fx.what
            );
            assert_eq!(
                (&got["waits_on"]["state"], &got["waits_on"]["chans"]),
                (
                    &Value::from(blocked.state.as_str()),
                    &serde_json::json!([blocked.chan])
                ),
                "{}: {got}",
                fx.what
            );
            let holders: Vec<(u64, &str)> = v["holders"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["object"].as_u64() == Some(want.lock))
                .map(|h| (h["goroutine"].as_u64().unwrap(), h["how"].as_str().unwrap()))
                .collect();
            assert_eq!(holders, [(want.culprit, how)], "{}: holders", fx.what);
        }
        assert!(
            v["holders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["how"] != "defer"),
            "{}: {json}",
            fx.what
        );
        // With DWARF each lock is named as the fixture names it (the global; the field of the
        // heap object the holder's receiver points to); stripped, not at all.
        let names = json_lock_names(&v);
        let mut stated_names = fixture_lock_names(&fx);
        if flavor == Flavor::Stripped {
            stated_names.clear();
        }
        assert_eq!(names, stated_names, "{}: the locks' names", fx.what);
        let (_, text) = deadlocks(&[&fx.pid()]);
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("held while blocked: goroutine ") && first.contains(", possibly: "),
            "{}: first line {first:?}",
            fx.what
        );
        for (addr, _) in &stated {
            let lock = format!(
                "sync.Mutex at {:#x}{} (",
                addr.lock,
                named(&names, addr.lock)
            );
            assert!(
                text.lines().any(|l| l.contains(&lock)),
                "{}: no line names {lock:?}:\n{text}",
                fx.what
            );
        }
        support::assert_running(fx.pid);
    }
}

/// A healthy program under lock contention: 1,000 goroutines take and release 100 Mutexes all
/// the time (Lock and Unlock; a deferred Unlock on some of the heap objects' locks), never
/// holding one while blocked. On every toolchain, with and without symbols, over many runs:
/// no verdict (exit status 0), every holder `defer`, `pointer` or `code`, and every deferred
/// unlock claim true as far as one snapshot can tell: in main.(*lmLock).bumpDeferred (the one
/// function that defers an unlock), on a heap object's Mutex the fixture names, at most one
/// goroutine claiming each Mutex. Goroutines must have been seen waiting for the locks.
#[test]
fn deadlocks_none_under_contention() {
    const RUNS: usize = 8;
    for (tc, flavor) in with_and_without_symbols() {
        let fx = Fixture::start_flavor(&tc, flavor, "locks-many", &[]);
        let heap: BTreeSet<u64> = fx
            .info_words("heap-lock")
            .iter()
            .map(|w| hex(&w[1]))
            .collect();
        assert_eq!(heap.len(), 84, "{}: {:?}", fx.what, fx.info.len());
        let mut waited = 0;
        for run in 0..RUNS {
            let what = format!("{} run {run}", fx.what);
            let v = deadlocks_json(&fx, 0);
            assert!(v["verdicts"].as_array().unwrap().is_empty(), "{what}: {v}");
            let snap = goroscope_json(&["dump", "-q", "--format", "json", &fx.pid()]);
            let objects = snap["objects"].as_array().unwrap();
            waited += objects
                .iter()
                .filter(|o| o["kind"] == "sync.Mutex")
                .map(|o| waiters(o).values().sum::<usize>())
                .sum::<usize>();
            // Each snapshot's holders as (lock, holder): the deadlocks JSON's, then the dump's.
            let listed: Vec<(u64, &Value)> = v["holders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h["object"].as_u64().unwrap(), h))
                .collect();
            let nested: Vec<(u64, &Value)> = objects
                .iter()
                .flat_map(|o| {
                    let addr = o["addr"].as_u64().unwrap();
                    o["holders"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(move |h| (addr, h))
                })
                .collect();
            for holders in [listed, nested] {
                let mut claims: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
                for (object, h) in holders {
                    let how = h["how"].as_str().unwrap_or_default();
                    assert!(["defer", "pointer", "code"].contains(&how), "{what}: {h}");
                    if how == "defer" {
                        assert!(
                            heap.contains(&object)
                                && h["function"] == "main.(*lmLock).bumpDeferred",
                            "{what}: a deferred unlock claim the fixture never made: {h}"
                        );
                        claims
                            .entry(object)
                            .or_default()
                            .insert(h["goroutine"].as_u64().unwrap());
                    }
                }
                for (object, gs) in &claims {
                    assert!(
                        gs.len() == 1,
                        "{what}: goroutines {gs:?} all claim the Mutex at {object:#x}"
                    );
                }
            }
        }
        assert!(
            waited > 0,
            "{}: no goroutine seen waiting for a lock",
            fx.what
        );
        support::assert_running(fx.pid);
    }
}

/// Locks held (deferred unlocks) by goroutines blocked for good outside Go's own waits: one in
/// read(2) on a pipe nobody writes, one in IO wait on a poller's pipe nobody writes, others
/// waiting for each lock. On every toolchain, with and without symbols: exactly the verdicts
/// the fixture states (culprit from its own traceback header, its frame, the lock, how many
/// wait), the culprit's wait as the runtime's own traceback header has it (`syscall`, `IO
/// wait`), the call named one of the culprit's frames in that traceback; exit status 3.
#[test]
fn deadlocks_holder_in_a_system_call_or_io_wait() {
    for (tc, flavor) in with_and_without_symbols() {
        let mut fx = Fixture::start_flavor(&tc, flavor, "syscall-holder", &[]);
        let stated = fx.info_words("verdict");
        assert_eq!(stated.len(), 2, "{}: {:?}", fx.what, fx.info);
        let rt = support::parse(&fx.stack());
        let v = deadlocks_json(&fx, 3);
        let json = v.to_string();
        let verdicts = v["verdicts"].as_array().unwrap();
        assert_eq!(verdicts.len(), 2, "{}: {json}", fx.what);
        for w in &stated {
            let (culprit, lock): (u64, u64) = (w[3].parse().unwrap(), hex(&w[6]));
            let (waiters, state) = (w[10].parse::<usize>().unwrap(), w[12..].join(" "));
            let got = verdicts
                .iter()
                .find(|g| g["lock"]["addr"].as_u64() == Some(lock))
                .unwrap_or_else(|| panic!("{}: no verdict on {lock:#x}: {json}", fx.what));
            assert_eq!(
                (
                    &got["kind"],
                    got["culprit"]["goroutine"].as_u64(),
                    &got["culprit"]["function"],
                    &got["culprit"]["how"],
                    &got["goroutines"],
                ),
                (
                    &Value::from(w[1].as_str()),
                    Some(culprit),
                    &Value::from(w[4].as_str()),
                    &Value::from("defer"),
                    &serde_json::json!([culprit]),
                ),
                "{}: {got}",
                fx.what
            );
            assert_eq!(
                got["waiters"].as_array().map(Vec::len),
                Some(waiters),
                "{}: {got}",
                fx.what
            );
            let g = rt.goroutines.iter().find(|g| g.id == culprit).unwrap();
            assert_eq!(runtime_state(g), state, "{}: the runtime's header", fx.what);
            assert_eq!(
                got["waits_on"]["state"],
                state.as_str(),
                "{}: {got}",
                fx.what
            );
            let call = got["waits_on"]["call"].as_str().unwrap_or_default();
            assert!(
                g.frames.iter().any(|f| f.func == call),
                "{}: call {call:?} is not a frame of goroutine {culprit}: {got}",
                fx.what
            );
        }
        let (_, text) = deadlocks(&[&fx.pid()]);
        assert!(
            text.lines()
                .any(|l| l.starts_with("held while blocked: goroutine ")
                    && l.contains(" and is blocked in a system call (")),
            "{}:\n{text}",
            fx.what
        );
        support::assert_running(fx.pid);
    }
}

/// A lock held by goroutines blocked on a channel nobody serves, others waiting for it: the
/// broadcaster holding the read lock while it sends on a channel nobody reads (subscribers
/// want the write lock), and the pool's workers holding the read lock while they wait for jobs
/// the dispatcher, waiting for the write lock, would forward (a cycle through a lock and a
/// channel, reported as held-while-blocked: a channel wait has no edge). On every toolchain,
/// with and without symbols: exactly the verdict the fixture states (culprit, its frame, the
/// lock, the holders blocked, how many wait, what the culprit waits on), exit status 3, and
/// the first line naming them.
#[test]
fn deadlocks_held_while_blocked() {
    for (tc, flavor) in with_and_without_symbols() {
        for scenario in ["broadcast", "pool"] {
            let fx = Fixture::start_flavor(&tc, flavor, scenario, &[]);
            let stated = fixture_verdicts(&fx);
            assert_eq!(stated.len(), 1, "{}: {:?}", fx.what, fx.info);
            let (mut want, blocked) = stated[0].clone();
            let rw = fx.rwmutex();
            want.readers = Some((rw.holders as u64, rw.holders as u64));
            let blocked = blocked.unwrap();
            let (code, json) = deadlocks(&["--format", "json", &fx.pid()]);
            assert_eq!(code, 3, "{}: exit code\n{json}", fx.what);
            let v: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(
                verdicts_json(&v),
                BTreeSet::from([want.clone()]),
                "{}: verdicts",
                fx.what
            );
            let got = &v["verdicts"][0];
            assert_eq!(
                got["waiters"].as_array().map(Vec::len),
                Some(blocked.waiters),
                "{}: waiters {got}",
                fx.what
            );
            assert_eq!(
                got["waits_on"]["state"],
                blocked.state.as_str(),
                "{}",
                fx.what
            );
            assert_eq!(
                got["waits_on"]["chans"],
                serde_json::json!([blocked.chan]),
                "{}",
                fx.what
            );
            let (text_code, text) = deadlocks(&[&fx.pid()]);
            assert_eq!(text_code, 3, "{}: exit code of the text output", fx.what);
            let first = text.lines().next().unwrap_or_default();
            let lock = format!(
                "held while blocked: goroutine {} holds sync.RWMutex at {:#x}{} (read lock) in {} at ",
                want.culprit,
                want.lock,
                named(&json_lock_names(&v), want.lock),
                want.function
            );
            assert!(
                first.starts_with(&lock)
                    && first.contains(&format!(
                        "is blocked in {} on chan at {:#x} ",
                        blocked.state, blocked.chan
                    ))
                    && first.ends_with(&format!(
                        "; {} goroutine{} for the lock",
                        blocked.waiters,
                        if blocked.waiters == 1 {
                            " waits"
                        } else {
                            "s wait"
                        }
                    )),
                "{}: first line {first:?}, want {lock:?}...",
                fx.what
            );
            let second = text.lines().nth(1).unwrap_or_default();
            assert!(
                second.starts_with(&format!("    {} reader", rw.holders))
                    && second.contains(&format!("), {} found", rw.holders)),
                "{}: second line {second:?}",
                fx.what
            );
            support::assert_running(fx.pid);
        }
    }
}

/// A file-lock self-deadlock: a goroutine holds a file flock'ed through one descriptor (with a
/// pending deferred Close) and waits in flock(2) for the same file through another, or
/// retries flock with LOCK_NB in a sleep loop. On every toolchain, with and without symbols:
/// the fixture's truth (culprit, its frame, both descriptors, the inode, the waiting frame,
/// from its own runtime.Stack header and fstat) in the JSON, the first line, exit status 3;
/// the same verdict from a snapshot of it; and from a core (newest toolchain, gcore) no
/// file-lock verdict, but a line saying that part needs a live target.
#[test]
fn deadlocks_file_lock() {
    for tc in toolchains::require_toolchains() {
        for (flavor, scenario) in [
            (Flavor::Default, "flock"),
            (Flavor::Stripped, "flock"),
            (Flavor::Default, "flock-retry"),
            (Flavor::Stripped, "flock-retry"),
        ] {
            let retry = scenario == "flock-retry";
            let fx = Fixture::start_flavor(&tc, flavor, scenario, &[]);
            let w = fx.info_words("verdict");
            assert_eq!(w.len(), 1, "{}: {:?}", fx.what, fx.info);
            let w = &w[0];
            let [
                culprit,
                function,
                fd,
                waiter,
                waiter_fd,
                path,
                inode,
                waiting_in,
            ] = [3, 4, 6, 8, 10, 12, 14, 16].map(|i| w[i].as_str());
            assert_eq!(w[1], "file-lock", "{}", fx.what);
            let (code, json) = deadlocks(&["--format", "json", &fx.pid()]);
            assert_eq!(code, 3, "{}: exit code\n{json}", fx.what);
            let v: Value = serde_json::from_str(&json).unwrap();
            let verdicts = v["verdicts"].as_array().unwrap();
            assert_eq!(verdicts.len(), 1, "{}: {json}", fx.what);
            let got = &verdicts[0];
            let f = &got["file"];
            let num = |x: &str| serde_json::json!(x.parse::<u64>().unwrap());
            assert_eq!(
                (
                    &got["kind"],
                    &got["culprit"]["goroutine"],
                    &got["culprit"]["function"],
                    &f["fd"],
                    &f["waiter"],
                    &f["waiter_fd"],
                    &f["inode"],
                    &f["kind"],
                    &f["mode"],
                    &f["operation"],
                    &f["how"],
                    &f["waiting_in"]["function"],
                ),
                (
                    &serde_json::json!("file-lock"),
                    &num(culprit),
                    &serde_json::json!(function),
                    &num(fd),
                    &num(waiter),
                    &num(waiter_fd),
                    &num(inode),
                    &serde_json::json!("FLOCK"),
                    &serde_json::json!("WRITE"),
                    &serde_json::json!(if retry { "retry" } else { "exclusive" }),
                    &serde_json::json!(if retry { "retry" } else { "blocked" }),
                    &serde_json::json!(waiting_in),
                ),
                "{}: {got}",
                fx.what
            );
            assert!(
                f["path"].as_str().unwrap().starts_with(path),
                "{}: {f}",
                fx.what
            );
            assert_eq!(got["goroutines"], serde_json::json!([num(culprit)]));
            let held = v["file_locks"]["held"].as_array().unwrap();
            assert!(
                held.iter()
                    .any(|h| h["fd"] == num(fd) && h["inode"] == num(inode)),
                "{}: {held:?}",
                fx.what
            );
            let first_line = |text: &str| text.lines().next().unwrap_or_default().to_string();
            let want = format!("file-lock self-deadlock: goroutine {culprit} holds {path}");
            let held_by = format!("locked through fd {fd} in {function} at ");
            let waits = if retry {
                format!("retries flock(2) for it in a sleep loop in {waiting_in} at ")
            } else {
                format!(
                    "waits for it in flock(2) (exclusive) through fd {waiter_fd} in {waiting_in} at "
                )
            };
            let (text_code, text) = deadlocks(&[&fx.pid()]);
            let first = first_line(&text);
            assert!(
                text_code == 3
                    && first.starts_with(&want)
                    && first.contains(&held_by)
                    && first.contains(&waits),
                "{}: exit {text_code}, first line {first:?}",
                fx.what
            );
            // A snapshot keeps the file locks.
            let dir = Scratch::new(&format!("{scenario}-{}-{}", tc.version, flavor.name()));
            let snap = dir.path("flock.gsnap");
            goroscope(&["snapshot", "-q", &fx.pid(), "-o", snap.to_str().unwrap()]);
            let (code, saved) = deadlocks(&[snap.to_str().unwrap()]);
            assert_eq!(
                (code, first_line(&saved)),
                (3, first.clone()),
                "{}: from the snapshot",
                fx.what
            );
            if flavor == Flavor::Default && !retry && tc == toolchains::newest() {
                core_has_no_file_locks(&fx, &dir);
            }
            support::assert_running(fx.pid);
        }
    }
}

/// `deadlocks --core` of a gcore of the flock fixture: no verdict, and the last line says the
/// file-lock part needs a live target (a core has no /proc).
fn core_has_no_file_locks(fx: &Fixture, dir: &Scratch) {
    let Some(gcore) = support::require(support::tool("gcore")) else {
        return;
    };
    let prefix = dir.path("core");
    let out = support::run_with_timeout(
        Command::new(gcore).arg("-o").arg(&prefix).arg(fx.pid()),
        GOROSCOPE_TIMEOUT,
    )
    .unwrap();
    let core = dir.path(&format!("core.{}", fx.pid));
    assert!(
        core.is_file(),
        "gcore wrote no core: {}\n{}",
        out.stdout,
        out.stderr
    );
    let core = core.to_str().unwrap();
    let (code, text) = deadlocks(&["--core", core]);
    assert_eq!(code, 0, "{}: from the core\n{text}", fx.what);
    assert_eq!(
        text.lines().last(),
        Some("file locks not checked: a core has no /proc; the file-lock part needs a live target"),
        "{}: {text}",
        fx.what
    );
    let (_, json) = deadlocks(&["--format", "json", "--core", core]);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["file_locks"], Value::Null, "{}", fx.what);
}
