//! Work split over every CPU in consecutive parts, the results kept in order.

use std::sync::OnceLock;

/// The CPUs goroscope may use (`available_parallelism`, which reads the cgroup's CPU quota
/// files at each call), asked once: a wait list walked in rounds splits work hundreds of times.
pub(crate) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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

/// Runs `f` over `items` in consecutive parts, one per CPU but none smaller than `min_part`
/// items (the first part on this thread), and returns the parts' results one after the other,
/// in the order of `items`. `f` gets the index of its part's first item and the part. Threads
/// made here inherit the caller's signal mask (inside the frozen window, SIGINT and friends
/// stay blocked). A panic in a part is raised again here.
pub(crate) fn in_parts<T: Sync, R: Send>(
    items: &[T],
    min_part: usize,
    f: impl Fn(usize, &[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let size = part_size(items.len(), min_part);
    on_threads(items.chunks(size).enumerate(), |(k, p)| f(k * size, p))
}

/// Items per part: one part per CPU, none smaller than `min_part` items.
fn part_size(len: usize, min_part: usize) -> usize {
    let threads = cpus().min(len / min_part.max(1)).max(1);
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

/// Runs `f` over `items` in chunks of `chunk` items, a round of one chunk per CPU (at most
/// `max_threads`) at a time, and hands each chunk with its result to `sink` in the order of
/// `items`: memory holds one round's results, not every chunk's (a writer's output, made on
/// every CPU and written in order). `sink` returning `Ok(false)` stops before the next chunk.
pub(crate) fn in_rounds<T: Sync, R: Send, E>(
    items: &[T],
    chunk: usize,
    max_threads: usize,
    f: impl Fn(&[T]) -> R + Sync,
    mut sink: impl FnMut(&[T], R) -> Result<bool, E>,
) -> Result<(), E> {
    let cpus = cpus().min(max_threads).max(1);
    let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
    for round in chunks.chunks(cpus) {
        let results = in_parts(round, 1, |_, part| part.iter().map(|c| f(c)).collect());
        for (c, r) in round.iter().zip(results) {
            if !sink(c, r)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rounds_keep_the_order_and_stop_when_told() {
        let items: Vec<usize> = (0..1000).collect();
        let mut seen = Vec::new();
        super::in_rounds(
            &items,
            7,
            4,
            |c| c.iter().sum::<usize>(),
            |c, sum| {
                assert_eq!(c.iter().sum::<usize>(), sum);
                seen.extend_from_slice(c);
                Ok::<_, ()>(seen.len() < 500)
            },
        )
        .unwrap();
        assert_eq!(seen, (0..504).collect::<Vec<_>>());
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
