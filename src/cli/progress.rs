//! A progress line on stderr for dumps that take more than a second (a huge binary's DWARF,
//! tens of thousands of goroutines). Drawn only when stderr is a terminal and not with `-q`;
//! nothing is drawn during the first second, and the line is erased when the dump is done.
//! It is drawn from the command's own thread between steps (no drawing thread, which would
//! leave SIGINT unblocked during the frozen window), never while the target is stopped.

use crate::capture::Progress;
use std::io::Write;
use std::time::{Duration, Instant};

/// Nothing is shown before this.
const DELAY: Duration = Duration::from_secs(1);
/// At most one redraw in this interval (a new stage redraws at once).
const EVERY: Duration = Duration::from_millis(100);
/// Width of the bar itself.
const WIDTH: usize = 24;

/// The progress line.
pub struct Bar {
    start: Instant,
    enabled: bool,
    last: Option<(Instant, String)>,
}

impl Bar {
    /// A bar for one command; drawn only if `!quiet` and stderr is a terminal.
    pub fn new(quiet: bool) -> Bar {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
        Bar {
            start: Instant::now(),
            enabled: !quiet && tty,
            last: None,
        }
    }

    /// Erases the line if it was drawn (before the dump's own stderr line).
    pub fn finish(&mut self) {
        if self.last.take().is_some() {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}

/// The text of the line: `goroscope: unwinding goroutines 2048/20000 [##----] 10%`.
pub fn line(what: &str, done: usize, total: usize, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if total == 0 {
        return format!("goroscope: {what} ({secs:.1} s)");
    }
    let done = done.min(total);
    let filled = done * WIDTH / total;
    format!(
        "goroscope: {what} {done}/{total} [{}{}] {}% ({secs:.1} s)",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        done * 100 / total
    )
}

impl Progress for Bar {
    fn stage(&mut self, what: &str, done: usize, total: usize) {
        let elapsed = self.start.elapsed();
        if !self.enabled || elapsed < DELAY {
            return;
        }
        if let Some((at, last)) = &self.last
            && last == what
            && at.elapsed() < EVERY
        {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K{}", line(what, done, total, elapsed));
        let _ = e.flush();
        self.last = Some((Instant::now(), what.to_string()));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = Duration::from_millis(1500);
        assert_eq!(
            line("unwinding goroutines", 5, 20, t),
            "goroscope: unwinding goroutines 5/20 [######------------------] 25% (1.5 s)"
        );
        assert_eq!(
            line("stopping the target", 0, 0, t),
            "goroscope: stopping the target (1.5 s)"
        );
        assert!(line("x", 30, 20, t).contains("20/20 [########################] 100%"));
    }

    #[test]
    fn quiet_draws_nothing() {
        let mut b = Bar::new(true);
        b.start -= Duration::from_secs(5);
        b.stage("x", 1, 2);
        assert!(b.last.is_none());
    }
}
