//! Live attach on arm64, in an arm64 Linux VM (`scripts/arm64-vm.sh`: Debian's arm64 kernel
//! and busybox under qemu-system-aarch64, TCG). The fixture built by every toolchain for
//! `GOARCH=arm64` (default, stripped, PIE) runs in the VM with GOTRACEBACK=system;
//! goroscope-aarch64 (`scripts/build-static.sh`, `ONLY=aarch64`) takes `dump --system` of it,
//! then SIGQUIT makes the runtime print its own traceback of the next moment (the oracle).
//! Both come back on the VM's console and are compared on the host by
//! [`support::compare::compare_system`]: the same goroutines, every parked one byte for byte
//! (header with `gp= m= mp=`, arguments, `fp= sp= pc=`, created-by).
//!
//! One boot for all the fixtures: `testdata/arm64/dump-each.sh` runs them one after another.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::Flavor;

/// The whole VM run: boot, every fixture (each dump is slow under TCG), power off.
const VM_TIMEOUT: Duration = Duration::from_secs(1800);

/// Builds goroscope-aarch64 into `target/arm64-live/` with scripts/build-static.sh. The
/// prerequisite is Debian's Rust and the aarch64 cross toolchain, or root (the script installs
/// them); a failing build with them present fails the test.
fn build_goroscope_aarch64() -> Result<PathBuf, String> {
    let root = support::fixture::manifest_dir();
    let dist = root.join("target").join("arm64-live");
    let mut cmd = Command::new(root.join("scripts").join("build-static.sh"));
    cmd.arg(&dist).env("ONLY", "aarch64");
    let out = support::run_with_timeout(&mut cmd, Duration::from_secs(3600))?;
    if !out.status.success() {
        panic!(
            "scripts/build-static.sh (ONLY=aarch64) failed: {}\n{}{}",
            out.status, out.stdout, out.stderr
        );
    }
    Ok(dist.join("goroscope-aarch64"))
}

/// Debian's rustc and the aarch64 linker, or root to install them.
fn cross_toolchain() -> Result<(), String> {
    let have = std::path::Path::new("/usr/bin/rustc").is_file()
        && support::which("aarch64-linux-gnu-gcc").is_some();
    if have || support::is_root() {
        Ok(())
    } else {
        Err("the aarch64 build needs Debian's rustc-web, cargo-web, libstd-rust-web-dev:arm64, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (or root to install them)".into())
    }
}

/// One fixture's results in the VM's output (see testdata/arm64/dump-each.sh).
struct Case {
    name: String,
    dump_status: Option<i32>,
    dumps: u32,
    dump_ms: u64,
    dump: String,
    dump_stderr: String,
    traceback: String,
}

fn parse_cases(out: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    let mut section = "";
    for line in out.lines() {
        if let Some(name) = line
            .strip_prefix("@@CASE ")
            .and_then(|l| l.strip_suffix("@@"))
        {
            cur = Some(Case {
                name: name.to_string(),
                dump_status: None,
                dumps: 0,
                dump_ms: 0,
                dump: String::new(),
                dump_stderr: String::new(),
                traceback: String::new(),
            });
            section = "";
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        if let Some(rest) = line
            .strip_prefix("@@DUMP ")
            .and_then(|l| l.strip_suffix("@@"))
        {
            let f: Vec<&str> = rest.split_whitespace().collect();
            c.dump_status = f.first().and_then(|s| s.parse().ok());
            c.dumps = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            c.dump_ms = f.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
            section = "dump";
        } else if line == "@@STDERR@@" {
            section = "stderr";
        } else if line.starts_with("@@TRACEBACK ") {
            section = "traceback";
        } else if line == "@@END@@" {
            cases.extend(cur.take());
        } else {
            let s = match section {
                "dump" => &mut c.dump,
                "stderr" => &mut c.dump_stderr,
                "traceback" => &mut c.traceback,
                _ => continue,
            };
            s.push_str(line);
            s.push('\n');
        }
    }
    cases
}

fn check(c: &Case) -> Result<(), String> {
    if c.dump_status != Some(0) {
        return Err(format!(
            "goroscope dump --system exited {:?}\n{}\n--- the fixture's stderr\n{}",
            c.dump_status, c.dump_stderr, c.traceback
        ));
    }
    let ours =
        support::parse_strict(&c.dump).map_err(|e| format!("goroscope's dump: {e}\n{}", c.dump))?;
    let theirs = support::traceback::signal_traceback(&c.traceback)?;
    support::compare::compare_system(&ours.goroutines, &theirs.goroutines).map_err(|e| {
        format!(
            "{e}\n--- goroscope dump --system\n{}\n--- the runtime's SIGQUIT traceback\n{}",
            c.dump, c.traceback
        )
    })
}

#[test]
fn arm64_vm_dump_matches_sigquit_traceback() {
    let Some(()) = support::require(cross_toolchain()) else {
        return;
    };
    let qemu = support::which("qemu-system-aarch64").is_some() || support::is_root();
    let Some(()) = support::require(if qemu {
        Ok(())
    } else {
        Err("qemu-system-aarch64 (Debian qemu-system-arm, or root to install it)".into())
    }) else {
        return;
    };
    let started = Instant::now();
    let goroscope = build_goroscope_aarch64().unwrap();
    let dir = support::TempDir::new("arm64-live");
    let mut fixtures = Vec::new();
    for tc in support::require_toolchains() {
        for flavor in [Flavor::Default, Flavor::Stripped, Flavor::Pie] {
            let exe = support::fixture::build_fixture_arm64(&tc, flavor).unwrap();
            let name = format!("fixture-{}-{}", tc.version, flavor.name());
            fs::copy(&exe, dir.0.join(&name)).unwrap();
            fixtures.push(name);
        }
    }
    let built = started.elapsed();

    let root = support::fixture::manifest_dir();
    let script = root.join("testdata").join("arm64").join("dump-each.sh");
    let mut cmd = Command::new(root.join("scripts").join("arm64-vm.sh"));
    cmd.env("GOROSCOPE_AARCH64", &goroscope)
        .env("ARM64_VM_TIMEOUT", VM_TIMEOUT.as_secs().to_string())
        .arg("--add")
        .arg(&script);
    for f in &fixtures {
        cmd.arg("--add").arg(dir.0.join(f));
    }
    let args: Vec<String> = fixtures.iter().map(|f| format!("/add/{f}")).collect();
    cmd.arg("--")
        .arg(format!("sh /add/dump-each.sh {}", args.join(" ")));
    let vm_started = Instant::now();
    let out = support::run_with_timeout(&mut cmd, VM_TIMEOUT + Duration::from_secs(120)).unwrap();
    let vm_time = vm_started.elapsed();
    assert!(
        out.status.success(),
        "scripts/arm64-vm.sh: {}\n{}{}",
        out.status,
        out.stdout,
        out.stderr
    );

    let cases = parse_cases(&out.stdout);
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for f in &fixtures {
        let Some(c) = cases.iter().find(|c| &c.name == f) else {
            failures.push(format!("{f}: no results in the VM's output"));
            table.push(format!("{f}: NO RESULT"));
            continue;
        };
        match check(c) {
            Ok(()) => table.push(format!(
                "{f}: exact ({} dumps, the last {} ms)",
                c.dumps, c.dump_ms
            )),
            Err(e) => {
                table.push(format!("{f}: DIFFERENT"));
                failures.push(format!("{f}: {e}"));
            }
        }
    }
    eprintln!(
        "arm64 VM, live dump --system vs SIGQUIT traceback (builds {:.0?}, VM {:.0?}):\n  {}",
        built,
        vm_time,
        table.join("\n  ")
    );
    if !failures.is_empty() {
        let _ = fs::write(dir.0.join("vm-stdout.txt"), &out.stdout);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
