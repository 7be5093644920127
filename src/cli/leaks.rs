//! `goroscope leaks`: the leaked goroutines of a process or core, in Go's traceback format (as
//! the runtime's goroutineleak profile prints them at debug=2) then a summary, grouped, as a
//! pprof goroutine profile, or as JSON.

use super::{Ctx, TargetArg, open, progress};
use crate::capture::LeakAnalysis;
use crate::snapshot::Goroutine;
use std::io::{self, Write};

/// Runs the analysis and writes what it found; the number of leaked goroutines.
pub(super) fn run(
    target: &TargetArg,
    format: &str,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<io::Result<usize>, String> {
    let mut bar = progress::Bar::new(ctx.quiet);
    crate::capture::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let a = open(target, ctx)?.leaks(&mut bar)?;
    bar.finish();
    if !ctx.quiet {
        eprintln!("{}", stats_line(&a));
    }
    let leaked: Vec<&Goroutine> = a
        .report
        .leaked
        .iter()
        .map(|&i| &a.snap.goroutines[i])
        .collect();
    let res = match format {
        "json" => crate::render::json::render(&a.snap, &leaked, out),
        "grouped" => {
            let by = crate::analyze::group::GroupBy::Stack;
            let groups = crate::analyze::group::Tally::of(leaked.iter().copied(), &by);
            crate::render::grouped::render(&groups, &by, leaked.len(), out)
        }
        "pprof" => {
            let ids: std::collections::HashSet<u64> = leaked.iter().map(|g| g.id).collect();
            crate::render::pprof::render(&a.snap, |g| ids.contains(&g.id), out)
        }
        _ => crate::render::leaks::render(&a.snap.meta, &leaked, out),
    };
    Ok(res.map(|()| leaked.len()))
}

/// One line on stderr: how many leaked, the pause and what it copied, the analysis time.
fn stats_line(a: &LeakAnalysis) -> String {
    let r = &a.report;
    let n = a.snap.goroutines.len();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let pause = if a.snap.meta.source == crate::snapshot::Source::Core {
        "from a core".to_string()
    } else if let Some(first) = a.first_pass {
        format!(
            "target not stopped (--nonblocking: of {first} found leaked in a first copy, {} leaked the same way in a second)",
            r.leaked.len()
        )
    } else {
        format!(
            "target paused {:.1} ms (of which {:.1} ms copying the heap)",
            a.snap.meta.pause_ns as f64 / 1e6,
            a.heap_copy.as_secs_f64() * 1e3
        )
    };
    format!(
        "goroscope: {} leaked of {n} goroutines; {pause}: {:.1} MiB of scan spans ({} of {} spans, {:.1} MiB noscan not read); marking {:.1} ms, {} objects, {} rounds",
        r.leaked.len(),
        mib(r.heap_bytes.0),
        r.spans.1,
        r.spans.0,
        mib(r.heap_bytes.1),
        a.analysis.as_secs_f64() * 1e3,
        r.marked,
        r.rounds,
    )
}
