//! Work split over every CPU in consecutive parts, the results kept in order.

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
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / min_part.max(1));
    if threads <= 1 {
        return f(0, items);
    }
    let size = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let mut parts = items.chunks(size);
        let first = parts.next().unwrap_or(&[]);
        let others: Vec<_> = parts
            .enumerate()
            .map(|(k, p)| s.spawn(move || f((k + 1) * size, p)))
            .collect();
        let mut out = f(0, first);
        for h in others {
            match h.join() {
                Ok(r) => out.extend(r),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
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
