//! Prerequisites of tests (a tool, root, a kernel setting, a Go toolchain, a build feature).
//! A missing prerequisite fails the test with a message naming it: a test never passes
//! because it could not run. The one exception is a partial run, which a developer asks for
//! on purpose (`scripts/test.sh --quick`, `GOROSCOPE_GO_VERSIONS=...`, or
//! `GOROSCOPE_PARTIAL=1`): there the test is skipped, and the skip is appended to
//! [`skips_file`] (`target/test-skips.txt`), which `scripts/test.sh` counts and prints at the
//! end. With `CI=true` a run is never partial, so every skip is a failure.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where skips are recorded, one line each: `<test binary> <test>: <what is missing>`.
pub fn skips_file() -> PathBuf {
    super::fixture::manifest_dir()
        .join("target")
        .join("test-skips.txt")
}

/// Whether this run is a partial one, where a missing prerequisite is skipped (and recorded)
/// instead of failing: `GOROSCOPE_PARTIAL=1` or `GOROSCOPE_GO_VERSIONS` set, and not `CI=true`.
pub fn partial_run() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    !ci && (set("GOROSCOPE_PARTIAL") || set("GOROSCOPE_GO_VERSIONS"))
}

/// A prerequisite: `Ok(value)` when present, `Err(what is missing and how to get it)` when
/// not. Present: its value. Missing: the test fails with the reason, or, in a
/// [`partial_run`], the skip is recorded and `None` is returned, so the test returns:
///
/// ```ignore
/// let Some(strace) = support::require(support::tool("strace")) else { return };
/// ```
#[track_caller]
pub fn require<T>(prereq: Result<T, String>) -> Option<T> {
    let why = match prereq {
        Ok(v) => return Some(v),
        Err(why) => why,
    };
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| {
            s.rsplit_once('-')
                .map_or(s.clone(), |(name, _hash)| name.to_string())
        })
        .unwrap_or_default();
    if !partial_run() {
        panic!(
            "missing prerequisite: {why}\n(a test fails when it cannot run; only a partial run, \
             GOROSCOPE_PARTIAL=1 or GOROSCOPE_GO_VERSIONS without CI=true, skips it)"
        );
    }
    let path = skips_file();
    if let Err(e) = append_line(&path, &format!("{binary} {test}: {why}")) {
        panic!(
            "skipping ({why}) but cannot record it in {}: {e}",
            path.display()
        );
    }
    eprintln!(
        "SKIP {binary} {test}: {why} (recorded in {})",
        path.display()
    );
    None
}

/// Where tests record a one-line summary of a long run (`arm64 live: 24/24 fixtures exact
/// ...`), which `scripts/test.sh` prints at the end: cargo shows nothing of a passing test.
pub fn summary_file() -> PathBuf {
    super::fixture::manifest_dir()
        .join("target")
        .join("test-summary.txt")
}

/// Prints `line` on stderr and appends it to [`summary_file`].
pub fn summary(line: &str) {
    eprintln!("{line}");
    let path = summary_file();
    if let Err(e) = append_line(&path, line) {
        panic!("cannot record the summary in {}: {e}", path.display());
    }
}

/// Appends `line` and a newline to `path` (created with its directory) in one write in append
/// mode, so that the lines of tests running in parallel do not interleave.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
}

/// A program in `PATH`, else what is missing (`scripts/test.sh` installs every tool the tests
/// run).
pub fn tool(name: &str) -> Result<PathBuf, String> {
    which(name)
        .ok_or_else(|| format!("`{name}` is not installed (scripts/test.sh installs it as root)"))
}

/// A program in `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Root, needed `for_what`.
pub fn root(for_what: &str) -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err(format!("not root: needs root {for_what}"))
    }
}

/// What `goroscope --version` prints when the binary was built with the `test-hooks` feature.
pub const TEST_HOOKS_MARK: &str = "test-hooks";

/// The goroscope binary under test, and this test's own copy of the library, honour the
/// test-only hold variables (`GOROSCOPE_TEST_HOLD_FREEZE_MS`, `GOROSCOPE_TEST_HOLD_PRECOPY_MS`):
/// built with the `test-hooks` feature. Not a prerequisite a partial run may skip: building
/// with it is always possible, so a test that needs it fails naming the feature.
pub fn require_test_hooks() {
    let hint =
        "build and run the tests with `cargo test --features test-hooks` (scripts/test.sh does)";
    let built_with_hooks = goroscope::target::live::TEST_HOOKS;
    assert!(
        built_with_hooks,
        "this test's goroscope library was built without the `test-hooks` feature: {hint}"
    );
    let out = super::run_goroscope(&["--version"], std::time::Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.stdout.contains(TEST_HOOKS_MARK),
        "{} was built without the `test-hooks` feature (`--version`: {:?}): {hint}",
        super::goroscope_bin().display(),
        out.stdout.trim()
    );
}

/// `kernel.core_pattern` writes a crashing process's core into its working directory (a plain
/// file name, no pipe, no directory), where the core tests look for it.
pub fn cores_in_working_directory() -> Result<(), String> {
    let path = Path::new("/proc/sys/kernel/core_pattern");
    let pattern = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pattern = pattern.trim();
    if pattern.is_empty() || pattern.starts_with('|') || pattern.contains('/') {
        return Err(format!(
            "kernel.core_pattern is {pattern:?}: kernel cores do not land in the crashing process's \
             directory; set it to `core` (scripts/test.sh does as root: echo core > {})",
            path.display()
        ));
    }
    Ok(())
}
