//! The one-line reports goroscope prints on stderr about a snapshot it took.

use crate::snapshot::Snapshot;

/// `goroscope: N goroutines, target paused X ms`: the report after a live snapshot of `n`
/// goroutines.
pub(crate) fn pause_line(snap: &Snapshot, n: usize) -> String {
    let s = if n == 1 { "" } else { "s" };
    if snap.meta.nonblocking {
        let u = snap.meta.unsettled;
        return format!(
            "goroscope: {n} goroutine{s}, target not stopped (--nonblocking), {u} not read consistently"
        );
    }
    format!(
        "goroscope: {n} goroutine{s}, target paused {:.1} ms",
        snap.meta.pause_ns as f64 / 1e6
    )
}
