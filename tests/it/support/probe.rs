//! The probe: a tiny Go program built per toolchain, architecture and flags (cached under the
//! temp dir), whose executables the stripped-binary and layout tests read.

use super::toolchains::Toolchain;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The probe: five goroutines blocked on a channel, main asleep (a pending timer keeps the
/// runtime's deadlock detector quiet), "READY" on stdout once they are started.
pub const PROBE_GO: &str = r#"package main

import (
	"syscall"
	"time"
)

//go:noinline
func worker(c chan int) { <-c }

func main() {
	c := make(chan int)
	for i := 0; i < 5; i++ {
		go worker(c)
	}
	syscall.Write(1, []byte("READY\n"))
	for {
		time.Sleep(time.Hour)
	}
}
"#;

pub const ARCHES: &[&str] = &["amd64", "arm64"];

static BUILD_LOCK: Mutex<()> = Mutex::new(());

fn fnv(parts: &[&str]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// Builds the probe (cached under the temp dir by source, toolchain, arch and flags).
pub fn build_probe(tc: &Toolchain, arch: &str, ldflags: &str) -> PathBuf {
    build_probe_mode(tc, arch, ldflags, "exe")
}

/// As [`build_probe`] with a `-buildmode`. One lock for every build: tests on several
/// threads ask for the same probe.
pub fn build_probe_mode(tc: &Toolchain, arch: &str, ldflags: &str, buildmode: &str) -> PathBuf {
    let key = if buildmode == "exe" {
        fnv(&[PROBE_GO, &tc.version, arch, ldflags])
    } else {
        fnv(&[PROBE_GO, &tc.version, arch, ldflags, buildmode])
    };
    let dir = std::env::temp_dir()
        .join("goroscope-strip-probes")
        .join(format!("{}-{arch}-{key:016x}", tc.version));
    let out = dir.join("probe");
    let _g = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go.mod"), "module probe\n\ngo 1.21\n").unwrap();
    std::fs::write(dir.join("main.go"), PROBE_GO).unwrap();
    let tmp = dir.join(format!("probe.tmp{}", std::process::id()));
    let res = Command::new(&tc.go)
        .current_dir(&dir)
        .args(["build", "-buildmode", buildmode, "-ldflags", ldflags, "-o"])
        .arg(&tmp)
        .arg(".")
        .env_remove("GOFLAGS")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOOS", "linux")
        .env("GOARCH", arch)
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", std::env::temp_dir().join("gocache-strip"))
        .env("GOPATH", std::env::temp_dir().join("gopath-strip"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tc.go.display()));
    assert!(
        res.status.success(),
        "{} build {arch} {ldflags:?}: {}",
        tc.name(),
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}
