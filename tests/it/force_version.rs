//! `--force-go-version`: a program built by a Go version goroscope does not support is refused
//! with an error that names the supported versions and the flag; with the flag it is read with
//! the named version's layouts and rules, a warning says so, and the dump is exact when the
//! named version really is the right one.
//!
//! Unsupported programs are made by patching the Go version in a fixture copy's `.go.buildinfo`
//! (the runtime never reads it): go1.21.x → go1.18.x (older than the oldest table) and
//! go1.27.x → go1.28.x (newer than the newest table).

use crate::support;

use std::path::PathBuf;
use std::time::Duration;
use support::{Child, Flavor, Output, TempDir, Toolchain, toolchains};

/// A copy of the toolchain's fixture (flavor `flavor`) claiming Go 1.`minor`.
fn patched_fixture(tc: &Toolchain, flavor: Flavor, minor: u32, dir: &TempDir) -> (PathBuf, String) {
    let exe = support::build_fixture(tc, flavor).unwrap_or_else(|e| panic!("{e}"));
    let (out, _, new) = support::patched_copy(
        &exe,
        minor,
        dir,
        &format!("fixture-{}-go1.{minor}", flavor.name()),
    );
    (out, new)
}

fn goroscope(args: &[&str]) -> Output {
    support::run_goroscope(args, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"))
}

/// One error line on stderr, nothing on stdout, a non-zero exit.
fn assert_error(out: &Output, want: &[&str]) {
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    for w in want {
        assert!(lines[0].contains(w), "{:?} lacks {w:?}", lines[0]);
    }
}

/// The forced dump of a running patched fixture equals its own runtime.Stack.
fn forced_dump_matches(child: &mut Child, force: &str, extra: &[&str], claimed: &str) {
    let pid = child.pid.to_string();
    let mut args = vec!["dump", "-q", "--force-go-version", force];
    args.extend_from_slice(extra);
    args.push(&pid);
    let out = goroscope(&args);
    assert!(out.status.success(), "{out:?}");
    let warning = format!("goroscope: warning: {claimed} is not supported; reading it with go1.");
    assert!(
        out.stderr.starts_with(&warning) && out.stderr.lines().count() == 1,
        "{:?}",
        out.stderr
    );
    support::check_running(child.pid).unwrap();
    child.ping().unwrap();
    support::matches_oracle(child, &out.stdout)
        .unwrap_or_else(|e| panic!("--force-go-version {force} {extra:?}: {e}"));
}

/// go1.21 claiming go1.18: refused; forced to 1.21 it is exact, with DWARF and without.
#[test]
fn go118_refused_and_forced_to_121() {
    let Some(tc) = toolchains::require_minor(21) else {
        return;
    };
    let dir = TempDir::new("force-118");
    let (exe, claimed) = patched_fixture(&tc, Flavor::Default, 18, &dir);
    let mut child = Child::start(&exe, "all").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();

    for cmd in ["dump", "grs", "inspect"] {
        let out = goroscope(&[cmd, &pid]);
        assert_error(
            &out,
            &[
                "unsupported Go version",
                &claimed,
                "go1.19 to go1.27",
                "--force-go-version",
            ],
        );
    }
    // A forced version must itself be supported.
    let out = goroscope(&["dump", "--force-go-version", "1.18", &pid]);
    assert_error(&out, &["--force-go-version go1.18", "go1.19 to go1.27"]);
    let out = goroscope(&["dump", "--force-go-version", "x", &pid]);
    assert!(
        !out.status.success() && out.stderr.contains("not a Go version"),
        "{out:?}"
    );

    forced_dump_matches(&mut child, "1.21", &[], &claimed);
    forced_dump_matches(&mut child, "go1.21", &["--no-dwarf"], &claimed);

    let out = goroscope(&["inspect", "--force-go-version", "1.21", &pid]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("--force-go-version (go1.18"),
        "{}",
        out.stdout
    );
    support::check_running(child.pid).unwrap();
}

/// go1.27 claiming go1.28 (newer than the newest table): forced to 1.27 it is exact.
#[test]
fn go128_forced_to_127() {
    let Some(tc) = toolchains::require_minor(27) else {
        return;
    };
    let dir = TempDir::new("force-128");
    let (exe, claimed) = patched_fixture(&tc, Flavor::Stripped, 28, &dir);
    let mut child = Child::start(&exe, "all").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    assert_error(
        &goroscope(&["dump", &pid]),
        &["unsupported Go version", &claimed, "--force-go-version"],
    );
    forced_dump_matches(&mut child, "1.27", &[], &claimed);
}

/// On a supported program the flag changes nothing but says it was ignored: the dump is the
/// runtime's own, and the same as a dump without the flag right after.
#[test]
fn force_on_a_supported_version_is_ignored() {
    let tc = toolchains::newest();
    let exe = support::build_fixture(&tc, Flavor::Default).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Child::start(&exe, "chan").unwrap_or_else(|e| panic!("{e}"));
    let pid = child.pid.to_string();
    let out = goroscope(&["dump", "-q", "--force-go-version", "1.19", &pid]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("--force-go-version go1.19 ignored") && out.stderr.contains(&tc.name()),
        "{:?}",
        out.stderr
    );
    let plain = support::goroscope_dump(child.pid).unwrap();
    child.ping().unwrap();
    support::assert_same_parked(
        ("with --force-go-version 1.19", &out.stdout),
        ("without it", &plain),
    );
    support::matches_oracle(&mut child, &out.stdout)
        .unwrap_or_else(|e| panic!("--force-go-version 1.19: {e}"));
}
