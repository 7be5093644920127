//! Confirming a verdict whose facts may change a moment later with a second snapshot.

use super::Verdict;

/// Whether a verdict must be seen again in a second snapshot: held by nobody, whose facts
/// are read at two moments (see [`super`]'s comment), and a holder blocked in a system
/// call or IO wait, which may yet return: a long one is seen in both.
pub fn needs_confirming(v: &Verdict) -> bool {
    v.kind == "held-by-nobody"
        || v.waits_on
            .as_ref()
            .is_some_and(|w| matches!(&*w.state, "syscall" | "IO wait"))
}

/// The verdicts of a second snapshot taken a moment after the first: each that
/// [`needs_confirming`] is kept only when the first had it too, on the same lock (its
/// address and kind: a name is given after), and its waiters then still wait now.
pub fn confirm(first: &[Verdict], second: Vec<Verdict>) -> Vec<Verdict> {
    second
        .into_iter()
        .filter(|v| {
            !needs_confirming(v)
                || first.iter().any(|f| {
                    f.kind == v.kind
                        && f.lock.as_ref().map(|l| (l.addr, &l.kind))
                            == v.lock.as_ref().map(|l| (l.addr, &l.kind))
                        && f.culprit.as_ref().map(|c| c.goroutine)
                            == v.culprit.as_ref().map(|c| c.goroutine)
                        && f.waiters.iter().all(|w| v.waiters.contains(w))
                })
        })
        .collect()
}
