//! goroscope never harms its target (issue 7), end to end with the real binary and the Go
//! fixture of the newest installed toolchain:
//!
//! - goroscope SIGKILLed at random moments of the dump, inside the frozen window too: the
//!   target is never left stopped or traced, and the next dump is exact;
//! - a stream of SIGUSR1, SIGURG and SIGCHLD during 100 dumps: the target counts every one;
//! - an HTTP server on 127.0.0.1 under a bounded load while dumped every 100 ms: every request
//!   is served, and the latency with and without dumps is reported;
//! - goroutines and OS threads starting and ending at a high rate: every dump ends, and each
//!   is consistent on its own;
//! - the target SIGKILLed at random moments of the dump: a complete dump or the one-line
//!   "exited" error, nothing in between;
//! - a thread in uninterruptible sleep: the freeze gives up after `STOP_TIMEOUT` with a
//!   one-line error, and releases the target.
//!
//! Random moments come from a seeded generator; each test prints its seed, and
//! `GOROSCOPE_SAFETY_SEED=<seed>` replays it. Every process a test starts is killed by its pid
//! and reaped by a guard (`Child`, `Guard`), also when the test fails.

use crate::support;

use goroscope::target::live::{STOP_TIMEOUT, TEST_HOLD_ENV};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Child, Flavor, Guard, Output, Rng, poll, toolchains};

/// How long any single goroscope run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Support

fn fixture_exe(flavor: Flavor) -> PathBuf {
    support::build_fixture(&toolchains::newest(), flavor).unwrap_or_else(|e| panic!("{e}"))
}

fn start(scenario: &str) -> Child {
    Child::start(&fixture_exe(Flavor::Default), scenario).unwrap_or_else(|e| panic!("{e}"))
}

/// A random moment of a dump to kill something at, and the frozen-window hold that goes with it.
struct Moment {
    /// `GOROSCOPE_TEST_HOLD_FREEZE_MS` for the run (0: none).
    hold_ms: u64,
    /// How long after goroscope starts, or (`in_window`) after the target is seen frozen.
    delay: Duration,
    in_window: bool,
}

impl Moment {
    /// A third each: anywhere in an unheld dump of `wall` (start-up, attach, copy, thaw,
    /// output); anywhere in a dump held 5..40 ms; inside a held window, once it is seen.
    fn pick(rng: &mut Rng, wall: Duration) -> Moment {
        let hold_ms = 5 + rng.next() % 36;
        match rng.next() % 3 {
            0 => Moment {
                hold_ms: 0,
                delay: rng.duration_below(wall),
                in_window: false,
            },
            1 => Moment {
                hold_ms,
                delay: rng.duration_below(wall + Duration::from_millis(hold_ms)),
                in_window: false,
            },
            _ => Moment {
                hold_ms,
                delay: rng.duration_below(Duration::from_millis(hold_ms)),
                in_window: true,
            },
        }
    }

    /// Sleeps until the moment, goroscope having just been started against `pid`.
    fn wait(&self, pid: u32) {
        if self.in_window {
            support::wait_frozen(pid);
        }
        std::thread::sleep(self.delay);
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = if self.in_window {
            "the target was seen frozen"
        } else {
            "goroscope started"
        };
        write!(
            f,
            "hold {} ms, {:.2} ms after {from}",
            self.hold_ms,
            ms(self.delay)
        )
    }
}

/// `goroscope dump <pid>` started in the background (output discarded), with the test hook
/// holding the frozen window open `hold_ms` (0: no hold).
fn spawn_dump(pid: u32, hold_ms: u64) -> Guard {
    let mut cmd = Command::new(support::goroscope_bin());
    cmd.args(["dump", "-q", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if hold_ms > 0 {
        cmd.env(TEST_HOLD_ENV, hold_ms.to_string());
    } else {
        cmd.env_remove(TEST_HOLD_ENV);
    }
    Guard::spawn(&mut cmd, None)
}

/// The median wall time of three `goroscope dump` runs of `pid`.
fn dump_wall_time(pid: u32) -> Duration {
    let mut t: Vec<Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            support::goroscope_dump(pid).unwrap_or_else(|e| panic!("{e}"));
            start.elapsed()
        })
        .collect();
    t.sort();
    t[1]
}

/// `goroscope dump <pid>` (not quiet: stderr says the pause); the dump and the pause in ms.
fn dump_with_pause(pid: u32) -> Result<(String, f64), String> {
    let out = support::run_goroscope(&["dump", &pid.to_string()], RUN_TIMEOUT)?;
    if !out.status.success() {
        return Err(format!(
            "goroscope dump {pid}: {}\n{}",
            out.status, out.stderr
        ));
    }
    let pause = out
        .stderr
        .split_once("target paused ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .ok_or_else(|| format!("no pause on stderr: {:?}", out.stderr))?;
    Ok((out.stdout, pause))
}

/// `p`-th percentile (0..=100) of sorted values.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Thread ids of `pid` now.
fn task_ids(pid: u32) -> Vec<u32> {
    support::thread_states(pid)
        .iter()
        .filter_map(|(t, _)| t.parse().ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// goroscope SIGKILLed at a random moment of its dump ([`Moment`]), many times: before the
/// freeze, inside the frozen window (held open 5..40 ms by the test hook in two thirds of the
/// runs), after the thaw, or not at all. Every time, the target runs at
/// once with no thread stopped or traced, and the next dump equals its own runtime.Stack.
#[test]
fn sigkill_of_goroscope_at_random_moments() {
    const RUNS: usize = 30;
    support::require_test_hooks();
    let mut rng = Rng::new("sigkill_of_goroscope_at_random_moments");
    let mut child = start("all");
    let pid = child.pid;
    let wall = dump_wall_time(pid);
    println!("a dump takes {:.1} ms wall", ms(wall));
    let (mut before, mut frozen, mut finished) = (0, 0, 0);
    for run in 0..RUNS {
        let at = Moment::pick(&mut rng, wall);
        let what = format!("run {run}: SIGKILL of goroscope, {at}");
        let mut gs = spawn_dump(pid, at.hold_ms);
        at.wait(pid);
        // Where the kill lands, as near as /proc tells: goroscope holds the target (traced),
        // or has not seized it yet / is done with it.
        let traced = support::tracer_pid(pid) == gs.pid();
        gs.signal(libc::SIGKILL);
        let st = gs
            .wait(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{what}: goroscope still there"));
        match st.signal() {
            Some(libc::SIGKILL) if traced => frozen += 1,
            Some(libc::SIGKILL) => before += 1,
            None if st.success() => finished += 1,
            _ => panic!("{what}: goroscope ended with {st}"),
        }
        poll(Duration::from_secs(2), || support::check_running(pid))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        child.ping().unwrap_or_else(|e| panic!("{what}: {e}"));
        let dump =
            support::goroscope_dump(pid).unwrap_or_else(|e| panic!("{what}: next dump: {e}"));
        support::check_running(pid).unwrap_or_else(|e| panic!("{what}: after the next dump: {e}"));
        support::matches_oracle(&mut child, &dump)
            .unwrap_or_else(|e| panic!("{what}: next dump: {e}"));
    }
    println!(
        "{RUNS} runs: killed while it held the target {frozen}, killed outside the window {before}, \
         finished before the kill {finished}; the target ran on and the next dump was exact every time"
    );
    assert!(frozen > 0, "no kill landed inside the frozen window");
}

/// A stream of SIGUSR1, SIGURG and SIGCHLD while goroscope dumps the target 100 times in a
/// row: each dump exits 0 and the target counts every signal. Linux (and Go's signal queue)
/// merge pending signals of one number, so each round sends the three only after the previous
/// three were counted; a signal swallowed in a freeze shows as a count that never catches up.
/// The runtime's own preemption signals are SIGURG too: the fixture runs without them
/// (GODEBUG=asyncpreemptoff=1), so every SIGURG it counts is one the test sent.
#[test]
fn signal_stream_during_100_dumps_loses_nothing() {
    const DUMPS: usize = 100;
    const SIGNALS: [i32; 3] = [libc::SIGUSR1, libc::SIGURG, libc::SIGCHLD];
    let exe = fixture_exe(Flavor::Default);
    let mut child = Child::start_env(&exe, "signals", &[("GODEBUG", "asyncpreemptoff=1")])
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid;
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (sent, dumps) = std::thread::scope(|s| {
        let sender = s.spawn(|| -> Result<u64, String> {
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for sig in SIGNALS {
                    // SAFETY: kill(2) on our own live child's pid.
                    if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
                        return Err(format!("kill: {}", std::io::Error::last_os_error()));
                    }
                }
                sent += 1;
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let seen = child.sig_counts()?;
                    if seen == [sent; 3] {
                        break;
                    }
                    if seen.iter().any(|&n| n > sent) || Instant::now() > deadline {
                        return Err(format!(
                            "round {sent}: the fixture counted SIGUSR1/SIGURG/SIGCHLD {seen:?}, want {sent} each"
                        ));
                    }
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Ok(sent)
        });
        let dumps = (|| -> Result<(), String> {
            for i in 0..DUMPS {
                support::goroscope_dump(pid).map_err(|e| format!("dump {i}: {e}"))?;
                support::check_running(pid).map_err(|e| format!("after dump {i}: {e}"))?;
            }
            Ok(())
        })();
        stop.store(true, Ordering::SeqCst);
        (sender.join().unwrap(), dumps)
    });
    dumps.unwrap();
    let sent = sent.unwrap();
    println!(
        "{sent} each of SIGUSR1, SIGURG, SIGCHLD sent and counted during {DUMPS} dumps ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    assert!(
        sent >= DUMPS as u64,
        "only {sent} rounds of signals during {DUMPS} dumps"
    );
    assert_eq!(
        child.sig_counts().unwrap(),
        [sent; 3],
        "signals sent vs counted"
    );
    child.ping().unwrap();
}

/// What one load run saw.
struct Load {
    /// Every request's latency, sorted.
    latencies: Vec<Duration>,
    errors: Vec<String>,
    wall: Duration,
}

impl Load {
    fn summary(&self) -> String {
        let l = &self.latencies;
        format!(
            "{} requests in {:.2} s, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors",
            l.len(),
            self.wall.as_secs_f64(),
            ms(percentile(l, 50)),
            ms(percentile(l, 99)),
            ms(percentile(l, 100)),
            self.errors.len()
        )
    }
}

/// One HTTP/1.1 request on a keep-alive connection: the response must be 200 with the
/// fixture's "served N" body.
fn http_get(conn: &mut BufReader<TcpStream>) -> Result<(), String> {
    conn.get_mut()
        .write_all(b"GET /safety HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut line = String::new();
    let mut status = String::new();
    let mut len = None;
    loop {
        line.clear();
        if conn
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?
            == 0
        {
            return Err("connection closed".into());
        }
        let l = line.trim_end();
        if status.is_empty() {
            status = l.to_string();
        } else if l.is_empty() {
            break;
        } else if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let len = len.ok_or_else(|| format!("{status}: no Content-Length"))?;
    let mut body = vec![0u8; len];
    std::io::Read::read_exact(conn, &mut body).map_err(|e| format!("read body: {e}"))?;
    if !status.starts_with("HTTP/1.1 200") || !body.starts_with(b"served ") {
        return Err(format!("{status}: {:?}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

/// `clients` keep-alive connections, `requests` requests each, one after the other. An error
/// is counted and the connection opened again.
fn http_load(addr: &str, clients: usize, requests: usize) -> Load {
    let start = Instant::now();
    let per_client: Vec<(Vec<Duration>, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                s.spawn(move || {
                    let connect = || -> Result<BufReader<TcpStream>, String> {
                        let t =
                            TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
                        t.set_read_timeout(Some(Duration::from_secs(10)))
                            .map_err(|e| e.to_string())?;
                        t.set_nodelay(true).map_err(|e| e.to_string())?;
                        Ok(BufReader::new(t))
                    };
                    let (mut lat, mut errs) = (Vec::with_capacity(requests), Vec::new());
                    let mut conn = None;
                    for r in 0..requests {
                        let t0 = Instant::now();
                        let res = match conn.as_mut() {
                            Some(c) => http_get(c),
                            None => connect().and_then(|mut c| {
                                let r = http_get(&mut c);
                                conn = Some(c);
                                r
                            }),
                        };
                        lat.push(t0.elapsed());
                        if let Err(e) = res {
                            errs.push(format!("client {c} request {r}: {e}"));
                            conn = None;
                        }
                    }
                    (lat, errs)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = start.elapsed();
    let mut latencies: Vec<Duration> = per_client
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    latencies.sort();
    let errors = per_client.into_iter().flat_map(|(_, e)| e).collect();
    Load {
        latencies,
        errors,
        wall,
    }
}

/// An HTTP server under a bounded load (8 keep-alive clients, a fixed number of requests
/// each) first alone, then while goroscope dumps it every 100 ms: every request is answered
/// without error in both runs. The latencies of both runs are printed side by side.
#[test]
fn http_server_under_load_while_dumped_every_100ms() {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 5000;
    let mut child = start("http");
    let pid = child.pid;
    let addr = child
        .info
        .lines
        .iter()
        .find_map(|l| l.strip_prefix("addr "))
        .unwrap_or_else(|| panic!("the fixture names no address: {:?}", child.info.lines))
        .to_string();

    let alone = http_load(&addr, CLIENTS, REQUESTS);
    let done = AtomicBool::new(false);
    let (dumped, pauses) = std::thread::scope(|s| {
        let dumper = s.spawn(|| -> Result<Vec<f64>, String> {
            let mut pauses = Vec::new();
            let mut next = Instant::now();
            while !done.load(Ordering::SeqCst) {
                let (_, pause) =
                    dump_with_pause(pid).map_err(|e| format!("dump {}: {e}", pauses.len()))?;
                support::check_running(pid)
                    .map_err(|e| format!("after dump {}: {e}", pauses.len()))?;
                pauses.push(pause);
                next += Duration::from_millis(100);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Ok(pauses)
        });
        let load = http_load(&addr, CLIENTS, REQUESTS);
        done.store(true, Ordering::SeqCst);
        (load, dumper.join().unwrap())
    });
    let pauses = pauses.unwrap_or_else(|e| panic!("{e}"));
    let max_pause = pauses.iter().copied().fold(0.0, f64::max);
    println!("{CLIENTS} clients x {REQUESTS} requests on {addr}");
    println!("  without dumps: {}", alone.summary());
    println!("  dumped every 100 ms: {}", dumped.summary());
    println!(
        "  {} dumps during the load, longest pause {max_pause:.1} ms",
        pauses.len()
    );
    assert!(
        alone.errors.is_empty(),
        "errors without dumps:\n{}",
        alone.errors.join("\n")
    );
    assert!(
        dumped.errors.is_empty(),
        "errors while dumped:\n{}",
        dumped.errors.join("\n")
    );
    assert_eq!(dumped.latencies.len(), CLIENTS * REQUESTS);
    assert!(
        pauses.len() >= 2,
        "the load ended before goroscope dumped it twice; make it longer"
    );
    support::check_running(pid).unwrap();
    child.ping().unwrap();
}

/// A dump of a target whose goroutines and threads churn must stand on its own: every line is
/// Go traceback, no goroutine twice, and every goroutine has frames unless it is running on
/// another thread (the runtime's own form for a stack that is not there to read).
fn self_consistent(dump: &str) -> Result<Vec<u64>, String> {
    let tb = support::parse_strict(dump)?;
    for g in &tb.goroutines {
        if g.frames.is_empty() && !g.running_elsewhere {
            return Err(format!("goroutine {} has no frames:\n{}", g.id, g.raw));
        }
        if g.running_elsewhere && !g.is_active() {
            return Err(format!(
                "goroutine {} is [{}] but running on another thread:\n{}",
                g.id, g.state, g.raw
            ));
        }
    }
    Ok(tb.goroutines.iter().map(|g| g.id).collect())
}

/// Goroutines and OS threads start and end at a high rate (the fixture's "churn" scenario:
/// goroutines that end at once, and locked ones whose thread ends with them) while goroscope
/// dumps the process 40 times: every dump exits 0 in time, leaves the target running, and is
/// self-consistent.
#[test]
fn goroutine_and_thread_churn_gives_consistent_dumps() {
    const DUMPS: usize = 40;
    let mut child = start("churn");
    let pid = child.pid;
    let start = Instant::now();
    let mut tids: BTreeSet<u32> = task_ids(pid).into_iter().collect();
    let (mut first_max, mut max_seen, mut goroutines, mut slowest) = (0, 0, 0, Duration::ZERO);
    for i in 0..DUMPS {
        let t0 = Instant::now();
        let out = support::run_goroscope(&["dump", "-q", &pid.to_string()], RUN_TIMEOUT)
            .unwrap_or_else(|e| panic!("dump {i}: {e}"));
        slowest = slowest.max(t0.elapsed());
        assert!(
            out.status.success(),
            "dump {i}: {}\n{}",
            out.status,
            out.stderr
        );
        support::check_running(pid).unwrap_or_else(|e| panic!("after dump {i}: {e}"));
        let ids = self_consistent(&out.stdout)
            .unwrap_or_else(|e| panic!("dump {i}: {e}\n--- dump\n{}", out.stdout));
        // goids only grow (each P takes batches from sched.goidgen), so the highest one seen
        // bounds from below how many goroutines were started meanwhile.
        let max = ids.iter().copied().max().unwrap_or(0);
        if i == 0 {
            first_max = max;
        }
        max_seen = max_seen.max(max);
        goroutines += ids.len();
        tids.extend(task_ids(pid));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{DUMPS} dumps in {secs:.1} s (slowest {:.0} ms), {:.0} goroutines each on average; \
         meanwhile at least {} goroutines were started ({:.0}/s) and {} distinct threads were seen",
        ms(slowest),
        goroutines as f64 / DUMPS as f64,
        max_seen - first_max,
        (max_seen - first_max) as f64 / secs,
        tids.len()
    );
    assert!(
        max_seen > first_max,
        "no goroutine started during the dumps was ever seen in one"
    );
    child.ping().unwrap();
}

/// The target SIGKILLed at a random moment of goroscope's dump ([`Moment`]: start-up, attach,
/// the frozen window, copy, after the thaw): goroscope gives a complete dump (exit 0,
/// every line Go traceback) or the one-line "exited" error (exit 1), never a panic, a hang or
/// a partial dump.
#[test]
fn target_killed_at_random_moments_of_the_dump() {
    const RUNS: usize = 20;
    support::require_test_hooks();
    let mut rng = Rng::new("target_killed_at_random_moments_of_the_dump");
    let exe = fixture_exe(Flavor::Default);
    let (mut dumped, mut refused) = (0, 0);
    let mut wall = None;
    for run in 0..RUNS {
        let child = Child::start(&exe, "chan").unwrap_or_else(|e| panic!("{e}"));
        let pid = child.pid;
        let wall = *wall.get_or_insert_with(|| dump_wall_time(pid));
        let at = Moment::pick(&mut rng, wall);
        let what = format!("run {run}: SIGKILL of the target, {at}");
        let out = std::thread::scope(|s| {
            let run = s.spawn(|| {
                let mut cmd = Command::new(support::goroscope_bin());
                cmd.args(["dump", &pid.to_string()])
                    .env(TEST_HOLD_ENV, at.hold_ms.to_string());
                support::run_with_timeout(&mut cmd, RUN_TIMEOUT)
            });
            at.wait(pid);
            // SAFETY: kill(2) on the fixture we started; `child` reaps it on drop.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
            run.join().unwrap()
        });
        let out: Output = out.unwrap_or_else(|e| panic!("{what}: {e}"));
        let ctx = || {
            format!(
                "{what}: {}\n--- stderr\n{}--- stdout\n{}",
                out.status, out.stderr, out.stdout
            )
        };
        assert!(!out.stderr.contains("panicked"), "{}", ctx());
        if out.status.success() {
            self_consistent(&out.stdout).unwrap_or_else(|e| panic!("{}\n{e}", ctx()));
            dumped += 1;
        } else {
            assert_eq!(out.status.code(), Some(1), "{}", ctx());
            let exited = format!(
                "goroscope: process {pid} exited while goroscope was reading it; nothing to dump\n"
            );
            // Killed before goroscope looked at it: a zombie until `child` reaps it.
            let me = std::fs::read_to_string("/proc/self/comm").unwrap();
            let zombie = format!(
                "goroscope: process {pid} (fixture) is a zombie: it has exited and its parent {} ({}) has not reaped it yet; nothing is left to dump\n",
                std::process::id(),
                me.trim_end()
            );
            assert!(out.stderr == exited || out.stderr == zombie, "{}", ctx());
            assert!(out.stdout.is_empty(), "{}", ctx());
            refused += 1;
        }
        drop(child);
    }
    println!("{RUNS} runs: complete dump {dumped}, one-line exited error {refused}");
}

/// A thread in uninterruptible sleep (a vfork parent whose child waits 5 s; the cgo fixture's
/// "dstate" scenario) cannot be stopped. goroscope waits `STOP_TIMEOUT`, then fails with one
/// line naming the thread; the other threads were released at once, and once goroscope has
/// exited no thread is traced, and the late one runs on when its sleep ends, never stopped.
#[test]
fn thread_in_uninterruptible_sleep_times_out_the_freeze() {
    let exe = fixture_exe(Flavor::Cgo);
    let mut child = Child::start(&exe, "dstate").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid;
    let in_d = || {
        support::thread_states(pid)
            .into_iter()
            .filter(|&(_, c)| c == 'D')
            .map(|(t, _)| t)
            .collect::<Vec<_>>()
    };
    // Catch a D period at its start (the fixture sleeps 50 ms between them), so it outlasts
    // goroscope's wait.
    poll(Duration::from_secs(20), || {
        if in_d().is_empty() {
            Ok(())
        } else {
            Err("a thread is in D".into())
        }
    })
    .unwrap();
    poll(Duration::from_secs(20), || {
        if in_d().is_empty() {
            Err("no thread in D".into())
        } else {
            Ok(())
        }
    })
    .unwrap();
    let d_started = Instant::now();
    let late = in_d();
    let t0 = Instant::now();
    let out = support::run_goroscope(&["dump", &pid.to_string()], RUN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let took = t0.elapsed();
    let ctx = || {
        format!(
            "{}\n--- stderr\n{}--- stdout\n{}",
            out.status, out.stderr, out.stdout
        )
    };
    assert_eq!(out.status.code(), Some(1), "{}", ctx());
    assert!(out.stdout.is_empty(), "{}", ctx());
    let want = format!(
        "goroscope: thread {} of process {pid} did not stop within {} ms (state D: ",
        late[0],
        STOP_TIMEOUT.as_millis()
    );
    assert!(
        out.stderr.starts_with(&want) && out.stderr.lines().count() == 1,
        "want {want:?}...\n{}",
        ctx()
    );
    assert!(
        took >= STOP_TIMEOUT && took < STOP_TIMEOUT + Duration::from_secs(10),
        "took {took:?}"
    );
    println!(
        "goroscope gave up after {:.0} ms: {}",
        ms(took),
        out.stderr.trim_end()
    );
    assert!(
        d_started.elapsed() < Duration::from_millis(4500),
        "the D period ended before the check; too slow a machine"
    );
    // goroscope is gone: nothing traced, nothing stopped, the late thread still in D.
    support::check_running(pid).unwrap();
    assert_eq!(
        in_d(),
        late,
        "the late thread left D too early for this check"
    );
    child.ping().unwrap();
    // Its D period ends: it runs on (the fixture sleeps between vforks), never stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut checks = 0;
    while !in_d().is_empty() {
        support::check_running(pid).unwrap();
        checks += 1;
        assert!(
            Instant::now() < deadline,
            "the late thread is still in D after 10 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..20 {
        support::check_running(pid).unwrap();
        checks += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    println!(
        "the late thread left D {:.1} s after its sleep began; {checks} checks saw nothing stopped",
        d_started.elapsed().as_secs_f64()
    );
    child.ping().unwrap();
}
