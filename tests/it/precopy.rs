//! The copy taken before the stop (`PreCopy`): a goroutine that parks somewhere else between
//! that copy and the frozen window has its stack copied again in the window, never taken
//! from the older copy.
//!
//! The test-only hook `GOROSCOPE_TEST_HOLD_PRECOPY_MS` holds goroscope between its pre-copy and
//! the freeze; meanwhile the fixture's "move" scenario moves its parked goroutines (same depth
//! from another line, deeper, shallower), and goroscope's dump must then equal the fixture's
//! own `runtime.Stack` taken after the move.

use crate::support;

use goroscope::target::live::{TEST_HOLD_ENV, TEST_HOLD_PRECOPY_ENV, TEST_PRECOPY_DONE};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Child, Flavor, Guard, toolchains};

/// How long goroscope holds between its pre-copy and the freeze: ample for the move (a few ms).
const HOLD: Duration = Duration::from_secs(3);

/// The fixture's "move" goroutines (those with a `main.moveG` frame) in a traceback: id and
/// frames as `function file:line`.
fn movers(text: &str) -> HashMap<u64, Vec<String>> {
    let tb = support::parse(text);
    assert!(
        tb.errors.is_empty(),
        "lines that are not Go traceback: {:?}\n{text}",
        tb.errors
    );
    tb.goroutines
        .iter()
        .filter(|g| g.has_frame("main.moveG"))
        .map(|g| {
            (
                g.id,
                g.frames
                    .iter()
                    .map(|f| format!("{} {}:{}", f.func, f.file, f.line))
                    .collect(),
            )
        })
        .collect()
}

/// goroscope copies every g and stack while the target runs, then holds (the hook); the
/// fixture's parked goroutines move to other parked places and say so; goroscope freezes and
/// dumps. The goroutines that moved (their `StackKey` changed) must have had their stacks
/// copied again: the dump equals the runtime's own after the move, every moved goroutine shows
/// its new place (not the one the runtime showed before the move), and the snapshot counts
/// none of them among the stacks taken from the pre-copy, while the others were.
#[test]
fn goroutines_moved_after_the_precopy_are_copied_again() {
    support::require_test_hooks();
    let exe = support::build_fixture(&toolchains::newest(), Flavor::Default)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = Child::start(&exe, "move").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid;
    let before = movers(&child.stack().unwrap());
    assert_eq!(before.len(), 30, "the fixture's movers before the move");

    let mut cmd = Command::new(support::goroscope_bin());
    // Every goroutine, system ones too, so the snapshot holds all that the walk counted.
    cmd.args([
        "dump",
        "-q",
        "--system",
        "--format",
        "json",
        &pid.to_string(),
    ])
    .env(TEST_HOLD_PRECOPY_ENV, HOLD.as_millis().to_string())
    .env_remove(TEST_HOLD_ENV)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut gs = Guard::spawn(&mut cmd, None);
    let stdout = support::line_channel(gs.child().stdout.take().unwrap());
    let stderr = support::line_channel(gs.child().stderr.take().unwrap());
    let line = stderr
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("no line from goroscope on stderr: {e}"));
    assert_eq!(line, TEST_PRECOPY_DONE);
    let held = Instant::now();
    assert_eq!(
        support::tracer_pid(pid),
        0,
        "the target is traced before the hold ended"
    );

    let moved = child.move_parked().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved as usize, before.len());
    // Still before the freeze: the move happened between the pre-copy and the window.
    assert_eq!(
        support::tracer_pid(pid),
        0,
        "goroscope froze the target before the move was done"
    );
    assert!(
        held.elapsed() < HOLD,
        "the move took {:?}, longer than the hold; too slow a machine",
        held.elapsed()
    );

    let st = gs
        .wait(HOLD + Duration::from_secs(60))
        .unwrap_or_else(|| panic!("goroscope did not finish"));
    let rest: Vec<String> = stderr.iter().collect();
    assert!(st.success(), "goroscope: {st}\nstderr: {rest:?}");
    support::check_running(pid).unwrap();
    let json: Vec<String> = stdout.iter().collect();
    let snap = goroscope::snapshot::store::read(json.join("\n").as_bytes())
        .unwrap_or_else(|e| panic!("the JSON snapshot: {e}"))
        .snapshot;
    let mut text = Vec::new();
    let opts = goroscope::render::traceback::Options {
        level: 1,
        labels: snap.meta.traceback_labels,
        ..Default::default()
    };
    goroscope::render::traceback::render(&snap.meta, &snap.goroutines, opts, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();

    // The oracle: the runtime's own dump, after the move.
    support::matches_oracle(&mut child, &text)
        .unwrap_or_else(|e| panic!("{e}\n--- goroscope\n{text}"));
    let after = movers(&text);
    assert_eq!(after.len(), before.len(), "movers in goroscope's dump");
    for (id, frames) in &after {
        assert_ne!(
            Some(frames),
            before.get(id),
            "goroutine {id} is shown where it was before the move:\n{text}"
        );
    }
    let live = snap.goroutines.len() as u64;
    assert!(
        snap.meta.stacks_reused + moved <= live,
        "{} of {live} stacks taken from the pre-copy, but {moved} goroutines moved since",
        snap.meta.stacks_reused
    );
    assert!(
        snap.meta.stacks_reused > 0,
        "no stack taken from the pre-copy: the reuse was not exercised"
    );
    println!(
        "{moved} goroutines moved during a {} ms hold after the pre-copy: copied again; {} of {live} stacks reused",
        HOLD.as_millis(),
        snap.meta.stacks_reused
    );
}

/// The fixture's "move" scenario running, read by the library: the process and its runtime.
fn movers_target() -> (
    Child,
    goroscope::target::live::LiveProcess,
    goroscope::runtime::Runtime,
) {
    use goroscope::runtime::{OpenOptions, Runtime};
    let exe = support::build_fixture(&toolchains::newest(), Flavor::Default)
        .unwrap_or_else(|e| panic!("{e}"));
    let child = Child::start(&exe, "move").unwrap_or_else(|e| panic!("{e}"));
    let proc = goroscope::target::live::LiveProcess::open(child.pid as i32).unwrap();
    let bin = goroscope::binary::GoBinary::open(&exe).unwrap();
    let rt = Runtime::open(bin, &proc, 0, OpenOptions::default()).unwrap();
    (child, proc, rt)
}

/// A second look at a target (`deadlocks` confirming a verdict) stands an earlier copy in for
/// its pre-copy. When that copy let its g structs go, the window reads them again through a
/// small buffer and keeps only the gs that changed: it must find the same goroutines changed
/// as a copy that kept its g structs, and hold the g struct of each (the walk reads them).
/// The fixture's movers park somewhere else between the copy and the look.
#[test]
fn a_copy_that_let_its_g_structs_go_finds_the_same_goroutines_moved() {
    use goroscope::runtime::goroutines::{self, PreCopy};
    use goroscope::target::MemoryReader;
    let (mut child, proc, rt) = movers_target();
    let g_size = rt.layout.g_size;
    let movers: Vec<u64> = movers(&child.stack().unwrap()).into_keys().collect();
    assert_eq!(movers.len(), 30, "the fixture's movers");

    // The first copy (the movers are parked: read while the target runs, it is whole).
    let mut first = goroutines::capture(&rt, &[], &proc, None);
    let keys = std::mem::take(&mut first.keys);
    let image = first.finish(None);
    let snap = goroscope::capture::build_snapshot(&rt, &image, &[], 0, Default::default(), &mut ())
        .unwrap();
    let addr = |id: u64| snap.goroutines.iter().find(|g| g.id == id).map(|g| g.addr);
    let moving: Vec<u64> = movers.iter().filter_map(|&id| addr(id)).collect();
    assert_eq!(moving.len(), movers.len(), "the movers in the first copy");
    let kept = PreCopy::of_copy(&rt, image.clone(), Some(keys.clone()), Vec::new());
    let mut gone_img = image;
    let gone = goroutines::let_go_of_gs(&mut gone_img, &keys);
    assert!(!gone.is_empty(), "no g struct let go");
    assert!(
        moving.iter().all(|&g| gone_img.slice(g, g_size).is_none()),
        "a mover's g struct stayed in the copy that let them go"
    );
    let through = PreCopy::of_copy(&rt, gone_img, Some(keys), gone);

    let moved = child.move_parked().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved as usize, movers.len());

    let by_kept = goroutines::capture_unstopped(&rt, &proc, &kept);
    let by_through = goroutines::capture_unstopped(&rt, &proc, &through);
    let (ran_kept, _) = kept.ran_since(&rt, &by_kept.keys);
    let (ran_through, still_through) = through.ran_since(&rt, &by_through.keys);
    for g in &moving {
        assert!(
            ran_kept.contains(g),
            "mover at {g:#x} not seen to move (g structs kept)"
        );
        assert!(
            ran_through.contains(g),
            "mover at {g:#x} not seen to move (let go)"
        );
    }
    // Both looks agree on every goroutine that did not change between them.
    let same: std::collections::HashSet<u64> = by_kept
        .keys
        .iter()
        .zip(&by_through.keys)
        .filter(|(a, b)| a == b)
        .map(|(a, _)| a.0)
        .collect();
    let agreed = |ran: &[u64]| {
        let mut v: Vec<u64> = ran.iter().copied().filter(|g| same.contains(g)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(agreed(&ran_kept), agreed(&ran_through));
    // What the look walks is whole; what it does not walk was not kept.
    for g in &ran_through {
        assert!(
            by_through.gs_img.slice(*g, g_size).is_some(),
            "the g struct at {g:#x} that moved is missing"
        );
    }
    // Those parked with the same key (the others, on a thread, are looked at).
    let parked: Vec<u64> = by_through
        .keys
        .iter()
        .filter(|(g, k)| still_through.contains(g) && k.is_some_and(|k| k.parked()))
        .map(|&(g, _)| g)
        .collect();
    assert!(!parked.is_empty(), "no goroutine stayed parked");
    assert!(
        parked
            .iter()
            .all(|&g| by_through.gs_img.slice(g, g_size).is_none()),
        "a g struct that did not change was kept"
    );
    support::check_running(child.pid).unwrap();
}

/// The window reads every g struct again but keeps only those whose key changed or that are
/// not parked: every other goroutine's g struct is the pre-copy's. What the model reads of a
/// g must then be what the target holds, after a GC (which sets `waitsince` of parked
/// goroutines, part of the key) and a move, both between the pre-copy and the window.
#[test]
fn g_structs_kept_from_the_precopy_are_those_of_now() {
    use goroscope::runtime::goroutines::{self, PreCopy};
    use goroscope::runtime::layout::F;
    use goroscope::target::ReadExt;
    let (mut child, proc, rt) = movers_target();

    let pre = PreCopy::take(&rt, &proc);
    // A GC sets `waitsince` to when the GC before it ended: the first GC sets 0.
    for _ in 0..2 {
        child.gc().unwrap_or_else(|e| panic!("{e}"));
    }
    let moved = child.move_parked().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(moved, 30);
    // The runtime's goroutines (sweeper, scavenger) run for a moment after a collection: the
    // copy is compared with a later moment, so it is taken once every goroutine is parked.
    support::settled_system_dump(child.pid, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
    let cap = goroutines::capture_unstopped(&rt, &proc, &pre);
    let (ran, still) = pre.ran_since(&rt, &cap.keys);
    let keys = cap.keys.clone();
    let image = cap.finish(Some(pre));

    let fields = [
        F::GGoid,
        F::GStackLo,
        F::GStackHi,
        F::GSchedSp,
        F::GSchedPc,
        F::GWaitSince,
        F::GWaiting,
        F::GLabels,
        F::GDefer,
        F::GM,
        F::GGopc,
        F::GStartPc,
    ];
    let mut waited = 0;
    for (g, key) in &keys {
        if key.is_none() {
            continue;
        }
        for f in fields {
            let Some(off) = rt.layout.off(f) else {
                continue;
            };
            let (copied, now) = (image.read_u64(g + off), proc.read_u64(g + off));
            assert_eq!(
                copied.ok(),
                now.ok(),
                "{f:?} of the g at {g:#x} ({} since the pre-copy)",
                if ran.contains(g) { "ran" } else { "still" }
            );
        }
        if proc
            .read_u64(g + rt.layout.off(F::GWaitSince).unwrap())
            .unwrap_or(0)
            != 0
        {
            waited += 1;
        }
    }
    assert!(!still.is_empty(), "no goroutine stayed parked");
    assert!(waited > 0, "the GC set no goroutine's waitsince");
    support::check_running(child.pid).unwrap();
}

/// Goroutines started between the pre-copy and the next look. While `allgs` stays where it
/// was, the look reads only the elements added since (the pre-copy holds the others; `allgs`
/// only grows); once it has moved (grown past its capacity), the whole array again. Either
/// way the copy holds every goroutine the runtime lists: the fixture's spawned goroutines
/// in a model built from the copy are those of its own `runtime.Stack`.
#[test]
fn goroutines_started_after_the_precopy_are_in_the_copy() {
    use goroscope::runtime::goroutines::{self, PreCopy};
    use goroscope::target::ReadExt;
    const SPAWNED: &str = "main.spawnedPark";
    let (mut child, proc, rt) = movers_target();
    let allgs = |proc: &goroscope::target::live::LiveProcess| {
        let word = |off| proc.read_u64(rt.allgs + off).unwrap();
        (word(0), word(8))
    };
    for moved in [false, true] {
        let pre = PreCopy::take(&rt, &proc);
        let (at, len) = allgs(&proc);
        // Start goroutines until allgs is longer where it was (first) or has moved (then).
        let mut started = 0;
        loop {
            child.spawn().unwrap_or_else(|e| panic!("{e}"));
            started += 1;
            let (now_at, now_len) = allgs(&proc);
            if (now_at != at) == moved && now_len > len {
                break;
            }
            assert!(
                started < 5000 && (moved || now_at == at),
                "allgs {} after {started} goroutines started",
                if moved {
                    "did not move"
                } else {
                    "moved before it grew"
                }
            );
        }
        let cap = goroutines::capture_unstopped(&rt, &proc, &pre);
        let image = cap.finish(Some(pre));
        let snap =
            goroscope::capture::build_snapshot(&rt, &image, &[], 0, Default::default(), &mut ())
                .unwrap_or_else(|e| panic!("allgs moved: {moved}: {e}"));
        let mut copied: Vec<u64> = snap
            .goroutines
            .iter()
            .filter(|g| g.frames.iter().any(|f| &*f.site.function == SPAWNED))
            .map(|g| g.id)
            .collect();
        let tb = support::parse(&child.stack().unwrap());
        let mut listed: Vec<u64> = tb
            .goroutines
            .iter()
            .filter(|g| g.has_frame(SPAWNED))
            .map(|g| g.id)
            .collect();
        copied.sort_unstable();
        listed.sort_unstable();
        assert!(
            !listed.is_empty(),
            "no spawned goroutine in the runtime's dump"
        );
        assert_eq!(
            copied, listed,
            "spawned goroutines in the copy (allgs moved: {moved}, {started} started)"
        );
        println!(
            "allgs {}: {started} goroutines started after the pre-copy, all {} spawned in the copy",
            if moved { "moved" } else { "stayed" },
            listed.len()
        );
    }
    support::check_running(child.pid).unwrap();
}
