//! Taking a snapshot of a target: a live process ([`LiveTarget`]: discovery before the stop,
//! the frozen window, the model built after the thaw) or a core file ([`CoreTarget`]), behind
//! one [`Target`]; the walk that builds the model from copied memory ([`walk`]); and the leak
//! analysis of the same instant ([`leaks`]).

mod core;
mod error;
pub mod leaks;
mod live;
pub mod walk;

pub use self::core::CoreTarget;
pub use error::DumpError;
pub use leaks::LeakAnalysis;
pub(crate) use live::Stacks;
pub use live::{Kept, LiveTarget};
pub use walk::build_snapshot;
pub(crate) use walk::{build_streamed, thread_stacks};

use crate::runtime::Runtime;
use crate::snapshot::{Snapshot, TextMapping};

/// An opened target of either kind: everything after discovery is shared.
#[allow(clippy::large_enum_variant)] // one a command; both variants are large
pub enum Target {
    /// A process, by pid.
    Live(LiveTarget),
    /// A core file and its executable.
    Core(CoreTarget),
}

impl Target {
    /// Its runtime, as discovery found it.
    pub fn rt(&self) -> &Runtime {
        match self {
            Target::Live(t) => &t.rt,
            Target::Core(t) => &t.rt,
        }
    }

    /// A snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, DumpError> {
        self.snapshot_progress(&mut ())
    }

    /// A snapshot, saying where it is on `progress`.
    pub(crate) fn snapshot_progress(
        &self,
        progress: &mut dyn Progress,
    ) -> Result<Snapshot, DumpError> {
        match self {
            Target::Live(t) => t.snapshot_progress(progress),
            Target::Core(t) => t.snapshot_progress(progress),
        }
    }

    /// A snapshot and the leaked goroutines of the same instant.
    pub fn leaks(&self, progress: &mut dyn Progress) -> Result<LeakAnalysis, String> {
        match self {
            Target::Live(t) => t.leaks(progress),
            Target::Core(t) => t.leaks(progress),
        }
    }
}

/// Where a long dump is, for a progress bar. Called on goroscope's thread between steps,
/// never inside the frozen window.
pub trait Progress {
    /// Working on `what`; `done` of `total` items (`total` 0: no count).
    fn stage(&mut self, what: &str, done: usize, total: usize);
}

impl Progress for () {
    fn stage(&mut self, _: &str, _: usize, _: usize) {}
}

/// The executable's code segment where the target has it (the load bias added).
fn text_mapping(rt: &Runtime) -> Option<TextMapping> {
    let (addr, size, offset) = rt.bin.text_segment()?;
    let start = addr.wrapping_add(rt.bias);
    Some(TextMapping {
        start,
        limit: start.wrapping_add(size),
        offset,
        build_id: rt.bin.gnu_build_id().unwrap_or_default(),
    })
}

/// [`traceback_labels`] for a NUL-separated environment block.
fn traceback_labels_env(rt: &Runtime, env: &[u8]) -> bool {
    let mut on = rt.version().at_least(27);
    let mut apply = |list: &str| {
        for kv in list.split(',') {
            match kv.trim() {
                "tracebacklabels=1" => on = true,
                "tracebacklabels=0" => on = false,
                _ => {}
            }
        }
    };
    if let Some(d) = rt.bin.build.setting("DefaultGODEBUG") {
        apply(d);
    }
    for var in env.split(|&b| b == 0) {
        if let Some(v) = var.strip_prefix(b"GODEBUG=") {
            apply(&String::from_utf8_lossy(v));
        }
    }
    on && rt.version().at_least(26)
}

/// This machine's host name.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// CLOCK_MONOTONIC now, in nanoseconds: the clock the Go runtime's `nanotime` reads.
pub(crate) fn monotonic_now() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
