//! Snapshot files survive their writer, end to end with the real binary and the Go fixture of
//! the newest installed toolchain:
//!
//! - `goroscope snapshot` SIGKILLed at random moments never leaves a file under the final name
//!   that `show` cannot read whole; what it leaves is at most `NAME.goroscope-tmp-PID`;
//! - a snapshot file cut anywhere: `show` prints every goroutine whose line was complete before
//!   the cut, exactly as the whole file has it, with one line on stderr saying it was cut;
//! - `snapshot --deadline`: what the deadline left out is counted on stderr and in the file;
//! - goroscopes on one target take turns: four `dump`s started while a `snapshot` holds the
//!   target all wait, say so, and then dump exactly what the runtime's `runtime.Stack` shows;
//!   the wait is bounded by `MAX_TURN_WAIT`, then the usual "already traced" error.
//!
//! Random moments come from a seeded generator; the seed is printed, and
//! `GOROSCOPE_SAFETY_SEED=<seed>` replays it. Every process a test starts is killed by its
//! pid and reaped by a guard, also when the test fails.

use crate::support;

use goroscope::snapshot::store::{self, TEMP_INFIX};
use goroscope::snapshot::{Goroutine, Snapshot};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Child, Flavor, Guard, Rng, TempDir, toolchains};

/// How long any single goroscope run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn fixture() -> PathBuf {
    support::build_fixture(&toolchains::newest(), Flavor::Default).unwrap_or_else(|e| panic!("{e}"))
}

/// `goroscope <args>`, which must exit 0; (stdout, stderr).
fn ok(args: &[&str]) -> (String, String) {
    let out = support::run_goroscope(args, RUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("goroscope {args:?}: {e}"));
    assert!(
        out.status.success(),
        "goroscope {args:?}: {}\n{}",
        out.status,
        out.stderr
    );
    (out.stdout, out.stderr)
}

/// `show --system --format json FILE`: the snapshot model show read, and its stderr.
fn show(file: &Path) -> (Snapshot, String) {
    let (json, err) = ok(&[
        "show",
        "--system",
        "--format",
        "json",
        &file.to_string_lossy(),
    ]);
    let snap = store::read(json.as_bytes())
        .unwrap_or_else(|e| panic!("show's JSON: {e}"))
        .snapshot;
    (snap, err)
}

/// A snapshot of the fixture's "many" scenario: enough goroutines that writing the file takes
/// a while.
fn many() -> Child {
    Child::start_args(&fixture(), "many", &["-n", "20000", "-busy", "0"])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// SIGKILL at a random moment of `goroscope snapshot`, 24 times: the final name is either
/// absent or a whole snapshot (`show` reads it, no cut notice, every goroutine); anything else
/// left in the directory is the killed writer's `NAME.goroscope-tmp-PID`. The moments are
/// spread over a whole run's duration, measured first.
#[test]
fn a_killed_snapshot_never_leaves_a_partial_file_under_its_name() {
    let child = many();
    let pid = child.pid.to_string();
    let dir = TempDir::new("durability-kill");
    let full = dir.0.join("full.gsnap");
    let t0 = Instant::now();
    ok(&["snapshot", "-q", &pid, "-o", &full.to_string_lossy()]);
    let whole = t0.elapsed();
    let n = show(&full).0.goroutines.len();
    assert!(n >= 20000, "{n} goroutines");
    let mut rng = Rng::new("a_killed_snapshot_never_leaves_a_partial_file_under_its_name");
    let (mut finals, mut temps, mut none) = (0, 0, 0);
    for i in 0..24 {
        let out = dir.0.join(format!("{i}.gsnap"));
        let mut gs = Guard::spawn(
            Command::new(support::goroscope_bin())
                .args(["snapshot", "-q", &pid, "-o", &out.to_string_lossy()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            None,
        );
        let at = rng.duration_below(whole * 11 / 10);
        std::thread::sleep(at);
        let killed_pid = gs.pid();
        let status = match gs.wait(Duration::ZERO) {
            Some(st) => st,
            None => {
                gs.signal(libc::SIGKILL);
                gs.wait(RUN_TIMEOUT)
                    .expect("goroscope did not die of SIGKILL")
            }
        };
        support::check_running(child.pid)
            .unwrap_or_else(|e| panic!("run {i}, killed at {at:?}: {e}"));
        let temp = dir.0.join(format!("{i}.gsnap{TEMP_INFIX}{killed_pid}"));
        let mut left: Vec<String> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&format!("{i}.")))
            .collect();
        left.sort();
        if out.exists() {
            let (snap, err) = show(&out);
            assert!(!err.contains("cut"), "run {i}, killed at {at:?}: {err}");
            assert!(
                snap.goroutines.len() >= 20000,
                "run {i}: {} goroutines",
                snap.goroutines.len()
            );
            finals += 1;
        }
        if !out.exists() && !temp.exists() {
            none += 1;
        }
        if temp.exists() {
            temps += 1;
            std::fs::remove_file(&temp).unwrap();
        }
        left.retain(|f| *f != format!("{i}.gsnap") && Path::new(f) != temp.file_name().unwrap());
        assert!(
            left.is_empty(),
            "run {i} ({status}), killed at {at:?}: unexpected files {left:?}"
        );
    }
    println!(
        "whole run {:.0} ms; of 24 kills: {finals} left the whole file, {temps} a temporary file, {none} nothing",
        whole.as_secs_f64() * 1e3
    );
}

/// The head line's end and the goroutine lines' ends in the decompressed file, in order:
/// goroutine k was fully written once the decompressed stream reaches `ends[k]`.
fn line_ends(gz: &[u8]) -> (usize, Vec<usize>) {
    let mut json = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut json)
        .unwrap();
    let mut start = 0;
    let mut ends = Vec::new();
    for (i, _) in json.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        // The table before each run of goroutines (`sites` before file version 5) is not a
        // goroutine.
        let line = &json[start..];
        if !line.starts_with(br#"{"table":"#) && !line.starts_with(br#"{"sites":"#) {
            ends.push(i + 1);
        }
        start = i + 1;
    }
    // The first line is the head, the last the end line.
    let head = ends.remove(0);
    ends.pop();
    (head, ends)
}

/// How many bytes of decompressed text a prefix of the file yields.
fn decompressed_len(prefix: &[u8]) -> usize {
    let mut json = Vec::new();
    let _ = flate2::read::MultiGzDecoder::new(prefix).read_to_end(&mut json);
    json.len()
}

/// A real snapshot cut at 60 points: `show` exits 0, says on one stderr line that the file was
/// cut after N of M goroutines, and prints exactly the first N goroutines of the whole file,
/// N being every goroutine whose line the prefix holds whole.
#[test]
fn a_cut_snapshot_shows_every_goroutine_before_the_cut() {
    let child = Child::start(&fixture(), "all").unwrap_or_else(|e| panic!("{e}"));
    let dir = TempDir::new("durability-cut");
    let full = dir.0.join("full.gsnap");
    ok(&[
        "snapshot",
        "-q",
        &child.pid.to_string(),
        "-o",
        &full.to_string_lossy(),
    ]);
    let bytes = std::fs::read(&full).unwrap();
    let (whole, err) = show(&full);
    assert_eq!(err, "");
    let (head, ends) = line_ends(&bytes);
    assert_eq!(ends.len(), whole.goroutines.len());
    let cut = dir.0.join("cut.gsnap");
    let mut seen = std::collections::BTreeSet::new();
    for k in 1..=60 {
        let len = bytes.len() * k / 61;
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let got = decompressed_len(&bytes[..len]);
        let written = ends.iter().filter(|&&e| e <= got).count();
        let out = support::run_goroscope(
            &[
                "show",
                "--system",
                "--format",
                "json",
                &cut.to_string_lossy(),
            ],
            RUN_TIMEOUT,
        )
        .unwrap();
        // Cut inside the head line (its newline excepted): nothing to show, one line of error.
        if got < head - 1 {
            assert_eq!(out.status.code(), Some(1), "{len} bytes: {}", out.stderr);
            assert!(
                out.stderr.starts_with("goroscope: ") && out.stderr.lines().count() == 1,
                "{}",
                out.stderr
            );
            continue;
        }
        assert!(
            out.status.success(),
            "{len} of {} bytes: {}\n{}",
            bytes.len(),
            out.status,
            out.stderr
        );
        let shown: Vec<Goroutine> = store::read(out.stdout.as_bytes())
            .unwrap()
            .snapshot
            .goroutines;
        assert_eq!(shown.len(), written, "{len} of {} bytes", bytes.len());
        assert_eq!(
            shown[..],
            whole.goroutines[..written],
            "{len} bytes: not the whole file's first goroutines"
        );
        let want = format!(
            "goroscope: {}: file cut after {written} of {} goroutines; showing those\n",
            cut.display(),
            ends.len()
        );
        assert_eq!(out.stderr, want, "{len} bytes");
        seen.insert(written);
    }
    assert!(
        seen.len() > 5,
        "the cuts fell on only {seen:?} goroutine counts"
    );
    println!(
        "{} goroutines, {} bytes; cuts showed {seen:?} goroutines",
        ends.len(),
        bytes.len()
    );
}

/// `snapshot --deadline` with a deadline already past when the capture ends: the file holds
/// the metadata and no goroutine, `snapshot` says how many it left out (even with -q), and
/// `show` says so too.
#[test]
fn a_deadline_writes_what_it_has_and_says_so() {
    let child = Child::start(&fixture(), "all").unwrap_or_else(|e| panic!("{e}"));
    let dir = TempDir::new("durability-deadline");
    let file = dir.0.join("d.gsnap");
    let (_, err) = ok(&[
        "snapshot",
        "-q",
        "--deadline",
        "1ms",
        &child.pid.to_string(),
        "-o",
        &file.to_string_lossy(),
    ]);
    let (snap, shown_err) = show(&file);
    assert!(
        snap.goroutines.is_empty(),
        "{} goroutines written",
        snap.goroutines.len()
    );
    assert_eq!(snap.meta.pid, Some(child.pid as i32));
    let n: usize = err
        .split(" of ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(n > 10, "{err}");
    assert_eq!(
        err,
        format!(
            "goroscope: deadline passed: wrote 0 of {n} goroutines to {}, {n} left out\n",
            file.display()
        )
    );
    assert_eq!(
        shown_err,
        format!(
            "goroscope: {}: written with a deadline: 0 of {n} goroutines, {n} left out\n",
            file.display()
        )
    );
    // A generous deadline writes them all.
    let (_, err) = ok(&[
        "snapshot",
        "-q",
        "--deadline",
        "60s",
        &child.pid.to_string(),
        "-o",
        &file.to_string_lossy(),
    ]);
    assert_eq!(err, "");
    assert!(show(&file).0.goroutines.len() > 10);
}

/// A `snapshot` holds the target frozen for 800 ms (the test-only hold); four `dump`s started
/// meanwhile each print the one waiting line, then succeed, and each dump matches the
/// fixture's own `runtime.Stack`. The snapshot succeeds too and reads whole. A `--nonblocking`
/// dump started meanwhile does not wait.
#[test]
fn concurrent_goroscopes_take_turns() {
    support::require_test_hooks();
    let mut child = Child::start(&fixture(), "all").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let dir = TempDir::new("durability-turns");
    let file = dir.0.join("held.gsnap");
    let mut holder = Guard::spawn(
        Command::new(support::goroscope_bin())
            .args(["snapshot", "-q", &pid, "-o", &file.to_string_lossy()])
            .env(goroscope::target::live::TEST_HOLD_ENV, "800")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
        None,
    );
    support::poll(Duration::from_secs(20), || {
        if support::tracer_pid(child.pid) > 0 {
            Ok(())
        } else {
            Err("the snapshot has not frozen the target".into())
        }
    })
    .unwrap();
    let (dumps, nonblocking) = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| support::run_goroscope(&["dump", &pid], RUN_TIMEOUT).unwrap()))
            .collect();
        // --nonblocking does not stop the target, so it has no turn to wait for.
        let nb = support::run_goroscope(&["dump", "--nonblocking", &pid], RUN_TIMEOUT).unwrap();
        let dumps: Vec<support::Output> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        (dumps, nb)
    });
    assert!(
        nonblocking.status.success(),
        "--nonblocking: {}",
        nonblocking.stderr
    );
    assert!(
        !nonblocking.stderr.contains("waiting"),
        "--nonblocking waited: {}",
        nonblocking.stderr
    );
    let st = holder
        .wait(RUN_TIMEOUT)
        .expect("the snapshot did not finish");
    let mut err = String::new();
    holder
        .child()
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(st.success(), "snapshot: {st}\n{err}");
    assert!(show(&file).0.goroutines.len() > 10);
    let waiting = format!("goroscope: waiting for another goroscope on pid {pid}\n");
    for (i, d) in dumps.iter().enumerate() {
        assert!(d.status.success(), "dump {i}: {}\n{}", d.status, d.stderr);
        assert!(
            d.stderr.starts_with(&waiting),
            "dump {i} did not wait: {}",
            d.stderr
        );
        assert_eq!(
            d.stderr.matches("waiting").count(),
            1,
            "dump {i}: {}",
            d.stderr
        );
        support::matches_oracle(&mut child, &d.stdout).unwrap_or_else(|e| panic!("dump {i}: {e}"));
    }
    support::check_running(child.pid).unwrap();
}

/// The wait is bounded: while a `snapshot` holds the target longer than [`MAX_TURN_WAIT`], a
/// `dump` waits that long, then fails as it would have without waiting, one line naming the
/// goroscope that traces the target. The holder is then SIGKILLed: the target runs on.
#[test]
fn the_wait_for_a_turn_is_bounded() {
    use goroscope::target::turn::MAX_TURN_WAIT;
    support::require_test_hooks();
    let child = Child::start(&fixture(), "all").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let dir = TempDir::new("durability-bound");
    let hold = (MAX_TURN_WAIT + Duration::from_secs(15))
        .as_millis()
        .to_string();
    let mut holder = Guard::spawn(
        Command::new(support::goroscope_bin())
            .args([
                "snapshot",
                "-q",
                &pid,
                "-o",
                &dir.0.join("held.gsnap").to_string_lossy(),
            ])
            .env(goroscope::target::live::TEST_HOLD_ENV, &hold)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        None,
    );
    support::poll(Duration::from_secs(20), || {
        if support::tracer_pid(child.pid) > 0 {
            Ok(())
        } else {
            Err("the snapshot has not frozen the target".into())
        }
    })
    .unwrap();
    let t0 = Instant::now();
    let out = support::run_goroscope(&["dump", "-q", &pid], RUN_TIMEOUT).unwrap();
    let waited = t0.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert_eq!(
        lines[0],
        format!("goroscope: waiting for another goroscope on pid {pid}")
    );
    let by = format!(
        "goroscope: process {pid} is already traced by {} (goroscope",
        holder.pid()
    );
    assert!(lines[1].starts_with(&by), "{}", out.stderr);
    assert!(
        waited >= MAX_TURN_WAIT && waited < MAX_TURN_WAIT + Duration::from_secs(10),
        "waited {waited:?}"
    );
    holder.signal(libc::SIGKILL);
    holder
        .wait(RUN_TIMEOUT)
        .expect("the holder did not die of SIGKILL");
    support::poll(Duration::from_secs(5), || support::check_running(child.pid)).unwrap();
}
