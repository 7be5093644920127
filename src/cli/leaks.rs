//! `goroscope leaks`: the leaked goroutines of a process or core, in Go's traceback format (as
//! the runtime's goroutineleak profile prints them at debug=2) then a summary, or as JSON.

use super::{Ctx, Session, Target, open, progress};
use crate::collect::LeakAnalysis;
use crate::render::safe::text;
use crate::snapshot::Goroutine;
use std::io::{self, Write};

/// Runs the analysis and writes what it found; the number of leaked goroutines.
pub(super) fn run(
    target: &Target,
    json: bool,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<io::Result<usize>, String> {
    let mut bar = progress::Bar::new(ctx.quiet);
    crate::collect::Progress::stage(&mut bar, "reading the executable", 0, 0);
    let session = open(target, ctx)?;
    let a = match &session {
        Session::Live(s) => s.leaks(&mut bar)?,
        Session::Core(s) => s.leaks(&mut bar)?,
    };
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
    let res = if json {
        crate::render::json::render(&a.snap, &leaked, out)
    } else {
        write_text(&a, &leaked, out)
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

/// The leaked goroutines as the runtime prints them, then one paragraph a group.
fn write_text(a: &LeakAnalysis, leaked: &[&Goroutine], out: &mut dyn Write) -> io::Result<()> {
    let opts = crate::render::traceback::Options {
        level: 1,
        labels: a.snap.meta.traceback_labels,
        leaked: true,
    };
    crate::render::traceback::render(&a.snap.meta, leaked.iter().copied(), opts, out)?;
    let groups = crate::runtime::leaks::groups(leaked.iter().copied());
    if groups.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{} leaked goroutine{} in {} group{}:",
        leaked.len(),
        if leaked.len() == 1 { "" } else { "s" },
        groups.len(),
        if groups.len() == 1 { "" } else { "s" }
    )?;
    for g in &groups {
        writeln!(out, "\n{} [{}]", g.count, text(&g.state))?;
        for f in &g.frames {
            writeln!(out, "\t{}", text(f))?;
        }
        if !g.created_by.is_empty() {
            writeln!(out, "\tcreated by {}", text(&g.created_by))?;
        }
        for (kind, addr) in &g.objects {
            writeln!(out, "\twaiting on {} {addr:#x}", text(kind))?;
        }
        let ids: Vec<String> = g.ids.iter().map(|i| i.to_string()).collect();
        writeln!(out, "\tgoroutines {}", ids.join(" "))?;
    }
    Ok(())
}
