//! File-lock self-deadlocks: a thread of the process waiting in `flock(2)` (or retrying it) for
//! a file the process holds locked through another descriptor.

use super::{Culprit, FileVerdict, Verdict};
use crate::snapshot::{FileLock, Goroutine, Snapshot};

/// A goroutine (or thread) waiting for a file lock the process holds through another
/// descriptor: blocked in `flock(2)`, or retrying it in a sleep loop.
pub(super) struct FileWait<'a> {
    pub(super) goroutine: Option<u64>,
    thread: Option<i32>,
    fd: i32,
    operation: &'a str,
    pub(super) how: &'static str,
    /// The frame that calls flock.
    frame: Option<Culprit>,
    held: &'a FileLock,
}

/// Every file-lock self-wait: each thread blocked in `flock(2)` on a file the process holds
/// locked (with a conflicting mode) through another descriptor, then each goroutine retrying
/// flock in a sleep loop while a file the process holds `WRITE`-locked is open again through
/// another descriptor (the first such descriptor is the one named).
pub(super) fn file_waits(snap: &Snapshot) -> Vec<FileWait<'_>> {
    let Some(files) = &snap.file_locks else {
        return Vec::new();
    };
    let conflicting = |fd: i32, dev: &str, inode: u64, exclusive: bool| {
        files.held.iter().find(move |h| {
            h.kind == "FLOCK"
                && h.fd != fd
                && h.dev == dev
                && h.inode == inode
                && (h.mode == "WRITE" || exclusive)
        })
    };
    let mut out = Vec::new();
    for w in &files.waits {
        let Some(held) = conflicting(w.fd, &w.dev, w.inode, w.operation == "exclusive") else {
            continue;
        };
        let frame = w
            .goroutine
            .and_then(|id| snap.goroutines.iter().find(|g| g.id == id))
            .and_then(|g| {
                let at = g
                    .frames
                    .iter()
                    .rposition(|f| f.function.ends_with(".Flock"))?;
                Some(frame_of(g, g.frames.get(at + 1)?))
            });
        out.push(FileWait {
            goroutine: w.goroutine,
            thread: Some(w.thread),
            fd: w.fd,
            operation: &w.operation,
            how: "blocked",
            frame,
            held,
        });
    }
    for r in &files.retries {
        // Which descriptor the loop retries is not known: any file it may be is one held
        // WRITE-locked, which no flock through another descriptor gets.
        let Some((fd, held)) = r.opened_again.iter().find_map(|o| {
            let held = conflicting(o.fd, &o.dev, o.inode, false)?;
            (held.mode == "WRITE").then_some((o.fd, held))
        }) else {
            continue;
        };
        out.push(FileWait {
            goroutine: Some(r.goroutine),
            thread: None,
            fd,
            operation: "retry",
            how: "retry",
            frame: Some(Culprit {
                goroutine: r.goroutine,
                function: r.function.clone(),
                file: r.file.clone(),
                line: r.line,
                how: None,
            }),
            held,
        });
    }
    out
}

/// A goroutine's frame as a [`Culprit`].
fn frame_of(g: &Goroutine, f: &crate::snapshot::Frame) -> Culprit {
    Culprit {
        goroutine: g.id,
        function: f.function.clone(),
        file: f.file.clone(),
        line: f.line,
        how: None,
    }
}

/// File-lock self-deadlocks: [`file_waits`], the culprit found by its deferred Close.
pub(super) fn file_lock_verdicts(snap: &Snapshot) -> Vec<Verdict> {
    let mut out = Vec::new();
    for w in file_waits(snap) {
        let held = w.held;
        let culprit = snap.goroutines.iter().find_map(|g| {
            g.frames.iter().find_map(|f| {
                f.defers()
                    .iter()
                    .any(|d| &*d.function == "os.(*File).Close" && d.fd == Some(i64::from(held.fd)))
                    .then(|| frame_of(g, f))
            })
        });
        let mut goroutines: Vec<u64> = culprit.iter().map(|c| c.goroutine).collect();
        goroutines.extend(w.goroutine.filter(|g| !goroutines.contains(g)));
        out.push(Verdict {
            kind: "file-lock",
            goroutines,
            culprit,
            lock: None,
            waiters: Vec::new(),
            waits_on: None,
            readers: None,
            file: Some(FileVerdict {
                path: held.path.clone(),
                dev: held.dev.clone(),
                inode: held.inode,
                fd: held.fd,
                kind: held.kind.clone(),
                mode: held.mode.clone(),
                how: w.how,
                waiter: w.goroutine,
                thread: w.thread,
                waiter_fd: w.fd,
                operation: w.operation.to_string(),
                waiting_in: w.frame,
            }),
        });
    }
    out
}
