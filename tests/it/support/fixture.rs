//! Builds the Go fixture program (`testdata/fixture/*.go`) with one toolchain and one set of
//! build flags, cached under `target/go-fixtures/<goversion>/<flavor>/` (delve's
//! `BuildFixture`): the sources are copied to `src/` next to a `go.mod` whose `go` line matches
//! the toolchain (so its default GODEBUGs apply, as for a real service), and `go build` writes
//! `fixture`. A build is skipped when the key (sources, toolchain, flags) is unchanged. Builds
//! of one directory are serialized with flock(2), so parallel tests and processes are safe.

use super::toolchains::Toolchain;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The build-flag axes (ANCHORS-STYLE §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `go build`, cgo off.
    Default,
    /// `-ldflags=-s -w`: no symbol table, no DWARF.
    Stripped,
    /// `-buildmode=pie`.
    Pie,
    /// `-trimpath`: file paths in the binary lose their prefix.
    Trimpath,
    /// `-race` (needs cgo).
    Race,
    /// `CGO_ENABLED=1`: the runtime starts through libc.
    Cgo,
    /// `GOAMD64=v3`: the compiler may use AVX2, BMI2, FMA, MOVBE (needs such a CPU).
    V3,
}

impl Flavor {
    pub const ALL: &[Flavor] = &[
        Flavor::Default,
        Flavor::Stripped,
        Flavor::Pie,
        Flavor::Trimpath,
        Flavor::Race,
        Flavor::Cgo,
        Flavor::V3,
    ];

    /// Directory and test-name component.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Default => "default",
            Flavor::Stripped => "stripped",
            Flavor::Pie => "pie",
            Flavor::Trimpath => "trimpath",
            Flavor::Race => "race",
            Flavor::Cgo => "cgo",
            Flavor::V3 => "v3",
        }
    }

    /// Extra `go build` arguments.
    pub fn build_args(self) -> &'static [&'static str] {
        match self {
            Flavor::Default | Flavor::Cgo | Flavor::V3 => &[],
            Flavor::Stripped => &["-ldflags=-s -w"],
            Flavor::Pie => &["-buildmode=pie"],
            Flavor::Trimpath => &["-trimpath"],
            Flavor::Race => &["-race"],
        }
    }

    /// The `GOAMD64` value (empty: the toolchain's default, v1).
    pub fn goamd64(self) -> &'static str {
        match self {
            Flavor::V3 => "v3",
            _ => "",
        }
    }

    /// The `CGO_ENABLED` value. Explicit, so whether gcc is installed doesn't change the build.
    pub fn cgo_enabled(self) -> &'static str {
        match self {
            Flavor::Race | Flavor::Cgo => "1",
            _ => "0",
        }
    }
}

/// The crate root.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the fixture's Go sources live.
pub fn sources_dir() -> PathBuf {
    manifest_dir().join("testdata").join("fixture")
}

/// `target/go-fixtures` under the crate root (not under CARGO_TARGET_DIR: scripts share it).
pub fn fixtures_root() -> PathBuf {
    manifest_dir().join("target").join("go-fixtures")
}

/// The directory one (toolchain, flavor) builds into.
pub fn build_dir(tc: &Toolchain, flavor: Flavor) -> PathBuf {
    fixtures_root().join(&tc.version).join(flavor.name())
}

/// The `go.mod` the fixture is built with.
pub fn go_mod(tc: &Toolchain) -> String {
    format!("module fixture\n\ngo 1.{}\n", tc.minor())
}

/// Builds (or reuses) the fixture binary and returns its path.
pub fn build_fixture(tc: &Toolchain, flavor: Flavor) -> Result<PathBuf, String> {
    build(tc, flavor, build_dir(tc, flavor), None)
}

/// Cross-builds (or reuses) the fixture for linux/arm64 (`GOARCH=arm64`), in
/// `target/go-fixtures/<version>/arm64-<flavor>/`.
pub fn build_fixture_arm64(tc: &Toolchain, flavor: Flavor) -> Result<PathBuf, String> {
    let dir = fixtures_root()
        .join(&tc.version)
        .join(format!("arm64-{}", flavor.name()));
    build(tc, flavor, dir, Some("arm64"))
}

fn build(
    tc: &Toolchain,
    flavor: Flavor,
    dir: PathBuf,
    goarch: Option<&str>,
) -> Result<PathBuf, String> {
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let _lock = Flock::exclusive(&dir.join(".lock"))?;

    let sources = read_sources()?;
    let gomod = go_mod(tc);
    let key = build_key(tc, flavor, goarch, &sources, &gomod);
    let bin = dir.join("fixture");
    let key_file = dir.join("fixture.key");
    if bin.is_file() && fs::read_to_string(&key_file).ok().as_deref() == Some(key.as_str()) {
        return Ok(bin);
    }

    let src = dir.join("src");
    if src.exists() {
        fs::remove_dir_all(&src).map_err(|e| format!("remove {}: {e}", src.display()))?;
    }
    fs::create_dir_all(&src).map_err(|e| format!("create {}: {e}", src.display()))?;
    for (name, text) in &sources {
        fs::write(src.join(name), text).map_err(|e| format!("write {name}: {e}"))?;
    }
    fs::write(src.join("go.mod"), &gomod).map_err(|e| format!("write go.mod: {e}"))?;

    let tmp_name = format!("fixture.tmp-{}", std::process::id());
    let mut cmd = Command::new(&tc.go);
    cmd.current_dir(&src)
        .arg("build")
        .args(flavor.build_args())
        .arg("-o")
        .arg(Path::new("..").join(&tmp_name))
        .arg(".");
    go_env(&mut cmd, tc, flavor);
    if let Some(arch) = goarch {
        cmd.env("GOARCH", arch);
    }
    let out = super::run_with_timeout(&mut cmd, Duration::from_secs(600))?;
    let tmp = dir.join(&tmp_name);
    if !out.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "building the fixture with {} ({}{}) failed: {}\n{}{}",
            tc.name(),
            flavor.name(),
            goarch.map(|a| format!(", GOARCH={a}")).unwrap_or_default(),
            out.status,
            out.stdout,
            out.stderr
        ));
    }
    fs::rename(&tmp, &bin).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
    fs::write(&key_file, &key).map_err(|e| format!("write {}: {e}", key_file.display()))?;
    Ok(bin)
}

/// The environment `go` runs with: this toolchain only, no network, no inherited GOFLAGS.
pub fn go_env(cmd: &mut Command, tc: &Toolchain, flavor: Flavor) {
    for v in [
        "GOFLAGS",
        "GOROOT",
        "GOPATH",
        "GOOS",
        "GOARCH",
        "GOEXPERIMENT",
        "GODEBUG",
        "GOAMD64",
        "CC",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("GOTELEMETRY", "off")
        .env("CGO_ENABLED", flavor.cgo_enabled())
        .env("PATH", path_with(&tc.goroot.join("bin")));
    if !flavor.goamd64().is_empty() {
        cmd.env("GOAMD64", flavor.goamd64());
    }
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut parts = vec![dir.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        parts.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(parts).unwrap_or_default()
}

/// `(file name, contents)` of every `*.go` file, sorted by name.
fn read_sources() -> Result<Vec<(String, Vec<u8>)>, String> {
    let dir = sources_dir();
    let mut out = Vec::new();
    let entries = fs::read_dir(&dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".go") {
            let text = fs::read(e.path()).map_err(|e| format!("read {name}: {e}"))?;
            out.push((name, text));
        }
    }
    if out.is_empty() {
        return Err(format!("no .go files in {}", dir.display()));
    }
    out.sort();
    Ok(out)
}

/// A stable hash (FNV-1a 64) over everything that changes the binary.
fn build_key(
    tc: &Toolchain,
    flavor: Flavor,
    goarch: Option<&str>,
    sources: &[(String, Vec<u8>)],
    gomod: &str,
) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write(b"fixture-v1\0");
    if let Some(arch) = goarch {
        h.write(b"GOARCH=");
        h.write(arch.as_bytes());
        h.write(b"\0");
    }
    h.write(tc.version.as_bytes());
    h.write(b"\0");
    h.write(tc.go.to_string_lossy().as_bytes());
    h.write(b"\0");
    h.write(flavor.name().as_bytes());
    h.write(b"\0");
    for a in flavor.build_args() {
        h.write(a.as_bytes());
        h.write(b"\0");
    }
    h.write(gomod.as_bytes());
    for (name, text) in sources {
        h.write(name.as_bytes());
        h.write(b"\0");
        h.write(&(text.len() as u64).to_le_bytes());
        h.write(text);
    }
    format!("{:016x}\n", h.0)
}

struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// An exclusive flock(2) on a file, released on drop (closing the file releases it).
struct Flock(File);

impl Flock {
    fn exclusive(path: &Path) -> Result<Flock, String> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        loop {
            // SAFETY: flock on a file descriptor we own.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(Flock(f));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("flock {}: {e}", path.display()));
            }
        }
    }
}
