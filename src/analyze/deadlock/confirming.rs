//! Confirming a verdict whose facts may change a moment later: by a second look at what it
//! rests on ([`confirm_again`], `goroscope deadlocks`), or by the verdicts of a second
//! snapshot ([`confirm`], a session's `refresh`).

use super::Verdict;
use crate::snapshot::{Snapshot, SyncObject};
use std::collections::HashSet;

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

/// The verdicts of `first` a while later, from a second look at the target: each that
/// [`needs_confirming`] is kept only when no goroutine it names ran since (`moved`, by id:
/// each of `first`'s that the second look did not find unchanged), its lock's words read
/// again (`again`, by address) are those `first` read, and, for a lock held by nobody, no
/// goroutine that ran holds it now by any evidence.
/// A goroutine that did not run holds now what it held then: by the verdict, nothing.
pub fn confirm_again(
    first: &Snapshot,
    verdicts: Vec<Verdict>,
    moved: &HashSet<u64>,
    again: &[SyncObject],
) -> Vec<Verdict> {
    verdicts
        .into_iter()
        .filter(|v| {
            if !needs_confirming(v) {
                return true;
            }
            let named = v
                .culprit
                .iter()
                .map(|c| c.goroutine)
                .chain(v.goroutines.iter().copied())
                .chain(v.waiters.iter().copied());
            let Some(lock) = &v.lock else { return false };
            let then = first.objects.iter().find(|o| o.addr == lock.addr);
            let now = again.iter().find(|o| o.addr == lock.addr);
            let (Some(then), Some(now)) = (then, now) else {
                return false;
            };
            named.into_iter().all(|g| !moved.contains(&g))
                && then.fields == now.fields
                && (v.kind != "held-by-nobody" || now.holders.is_empty())
        })
        .collect()
}
