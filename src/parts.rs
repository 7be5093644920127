//! Work split over threads ([`threads`]) in consecutive parts, the results kept in order.

use std::sync::OnceLock;

/// The CPUs goroscope may use (`available_parallelism`, which reads the cgroup's CPU quota
/// files at each call), asked once: a wait list walked in rounds splits work hundreds of times.
pub(crate) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The threads goroscope splits its work over: two for each CPU it may use. The kernel shares
/// a busy CPU among the threads that want it: with a target whose goroutines keep every CPU
/// busy, one thread per CPU got goroscope one CPU of two, and the model commands took about
/// 15% longer at 100,000 goroutines (for 5% less CPU time). With an idle target of 100,000
/// goroutines the second thread of a CPU changed neither; of 1,000,000, `deadlocks` took 10%
/// longer with it (`scripts/bench.sh` runs the target busy).
pub(crate) fn threads() -> usize {
    cpus().saturating_mul(2)
}

/// Frees `value` on a thread of its own: a copy of a big process's memory is hundreds of
/// thousands of buffers, and freeing them took 20 to 30 ms at 100,000 goroutines. The caller
/// goes on at once; a one-shot command may exit before the thread is done. When no thread can
/// be made, `value` is freed here (with the closure that failed to start).
pub(crate) fn drop_aside<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("goroscope-free".into())
        .spawn(move || drop(value));
}

/// `a` on a thread of its own while `b` runs on this one, and both results: work that waits (a
/// copy, a read of the kernel's) or a second computation (DWARF read while verdicts are
/// searched) beside work that computes. When no thread can be made, `a`
/// runs here after `b`. The thread inherits the caller's signal mask; a panic in `a` is
/// raised again here.
pub(crate) fn beside<A: Send, B>(a: impl Fn() -> A + Sync, b: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|s| {
        let spawned = std::thread::Builder::new().spawn_scoped(s, &a);
        let rb = b();
        let ra = match spawned {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => a(),
        };
        (ra, rb)
    })
}

/// Runs `f` over `items` in consecutive parts, one per thread ([`threads`]) but none smaller
/// than `min_part` items (the first part on this thread), and returns the parts' results one
/// after the other, in the order of `items`. `f` gets the index of its part's first item and
/// the part. Threads made here inherit the caller's signal mask (inside the frozen window,
/// SIGINT and friends stay blocked). A panic in a part is raised again here.
pub(crate) fn in_parts<T: Sync, R: Send>(
    items: &[T],
    min_part: usize,
    f: impl Fn(usize, &[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let size = part_size(items.len(), min_part);
    on_threads(items.chunks(size).enumerate(), |(k, p)| f(k * size, p))
}

/// Items per part: one part per thread, none smaller than `min_part` items.
fn part_size(len: usize, min_part: usize) -> usize {
    let threads = threads().min(len / min_part.max(1)).max(1);
    len.div_ceil(threads).max(1)
}

/// `f` of each part, the first on this thread and the others on threads of their own, the
/// results one after the other in the parts' order; a panic in a part is raised again here.
fn on_threads<P: Send, R: Send>(
    mut parts: impl Iterator<Item = P>,
    f: impl Fn(P) -> Vec<R> + Sync,
) -> Vec<R> {
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let f = &f;
    std::thread::scope(|s| {
        let others: Vec<_> = parts.map(|p| s.spawn(move || f(p))).collect();
        let mut out = f(first);
        for h in others {
            match h.join() {
                Ok(r) => out.extend(r),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

/// Runs `f` over `chunks` on up to `max_threads` threads ([`threads`], each with its own
/// `state()`), and hands each chunk's result to `sink` on this thread, in the order of
/// `chunks`, as soon as the results before it are in. Threads take chunks in order and wait
/// while they are `ahead` chunks past the one `sink` needs next (that one is always taken, so
/// nothing waits for ever): memory holds at most that many results (a writer's output, made on
/// every CPU and written in order). No thread waits for another between chunks, as rounds of
/// one chunk per thread would (each round as slow as its slowest chunk, and a thread started
/// for each). `sink` returning `Ok(false)` stops: no chunk after that one is sunk. With one
/// thread (or one chunk) no thread is started; chunks a thread could not take are done here.
pub(crate) fn in_order<T: Sync, S, R: Send, E>(
    chunks: &[T],
    max_threads: usize,
    ahead: usize,
    state: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &T) -> R + Sync,
    mut sink: impl FnMut(usize, R) -> Result<bool, E>,
) -> Result<(), E> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, mpsc};
    let threads = threads().min(max_threads).min(chunks.len());
    let threads = if threads <= 1 { 0 } else { threads };
    let ahead = ahead.max(1);
    let next = AtomicUsize::new(0);
    // The chunk `sink` needs next; usize::MAX once it is done.
    let sunk = (Mutex::new(0usize), Condvar::new());
    let set_sunk = |v: usize| {
        *sunk.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
        sunk.1.notify_all();
    };
    /// Lets every thread go when the sink is done, however that is (stopped, failed, or
    /// panicked: the scope waits for them all).
    struct Release<'a>(&'a dyn Fn(usize));
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            (self.0)(usize::MAX);
        }
    }
    std::thread::scope(|s| {
        let _release = Release(&set_sunk);
        let (tx, rx) = mpsc::channel::<(usize, R)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, sunk, state, f) = (&next, &sunk, &state, &f);
            let spawned = std::thread::Builder::new()
                .name("goroscope-part".into())
                .spawn_scoped(s, move || {
                    let mut st = state();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(c) = chunks.get(i) else { break };
                        let mut done = sunk.0.lock().unwrap_or_else(|e| e.into_inner());
                        while i >= done.saturating_add(ahead) {
                            done = sunk.1.wait(done).unwrap_or_else(|e| e.into_inner());
                        }
                        let stopped = *done == usize::MAX;
                        drop(done);
                        if stopped || tx.send((i, f(&mut st, i, c))).is_err() {
                            break;
                        }
                    }
                });
            if spawned.is_err() {
                break;
            }
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut want = 0;
        let mut sink_next = |want: &mut usize, r: R| -> Result<bool, E> {
            let go_on = sink(*want, r)?;
            *want += 1;
            if go_on {
                set_sunk(*want);
            }
            Ok(go_on)
        };
        for (i, r) in &rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                if !sink_next(&mut want, r)? {
                    return Ok(());
                }
            }
        }
        // Chunks no thread took or finished (none was started, or could be).
        let mut st = None;
        while let Some(c) = chunks.get(want) {
            let r = match pending.remove(&want) {
                Some(r) => r,
                None => f(st.get_or_insert_with(&state), want, c),
            };
            if !sink_next(&mut want, r)? {
                return Ok(());
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_order_keeps_the_order_and_stops_when_told() {
        let items: Vec<usize> = (0..1000).collect();
        let chunks: Vec<&[usize]> = items.chunks(7).collect();
        for ahead in [1, 3, 16] {
            let mut seen = Vec::new();
            let stopped_after = std::cell::Cell::new(0);
            super::in_order(
                &chunks,
                4,
                ahead,
                || 0usize,
                |made: &mut usize, i, c: &&[usize]| {
                    *made += 1;
                    (i, c.iter().sum::<usize>())
                },
                |i, (at, sum)| {
                    assert_eq!((at, chunks[i].iter().sum::<usize>()), (i, sum));
                    seen.extend_from_slice(chunks[i]);
                    stopped_after.set(i);
                    Ok::<_, ()>(seen.len() < 500)
                },
            )
            .unwrap();
            assert_eq!(seen, (0..504).collect::<Vec<_>>(), "ahead {ahead}");
            assert_eq!(stopped_after.get(), 71);
        }
        // An error from the sink stops it too, and is returned.
        let r = super::in_order(
            &chunks,
            4,
            2,
            || (),
            |_, i, _| i,
            |i, _| match i {
                9 => Err(i),
                _ => Ok(true),
            },
        );
        assert_eq!(r, Err(9));
        // A sink that panics lets the threads go (they wait on it), and the panic goes on.
        let r = std::panic::catch_unwind(|| {
            super::in_order(
                &chunks,
                4,
                1,
                || (),
                |_, i, _| i,
                |i, _| match i {
                    3 => panic!("the sink failed"),
                    _ => Ok::<_, ()>(true),
                },
            )
        });
        assert!(r.is_err());
    }

    #[test]
    fn parts_keep_the_order_and_the_indexes() {
        let items: Vec<usize> = (0..10_000).collect();
        let out = super::in_parts(&items, 100, |first, part| {
            part.iter()
                .enumerate()
                .map(|(i, &x)| (first + i, x))
                .collect()
        });
        assert_eq!(out.len(), items.len());
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, &(at, x))| at == i && x == i)
        );
    }
}
