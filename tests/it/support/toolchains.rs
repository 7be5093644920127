//! The Go toolchains fixtures are built with, as installed by `scripts/install-go.sh` into
//! `$GOROSCOPE_CACHE`, else `$XDG_CACHE_HOME/goroscope`, else `~/.cache/goroscope`
//! (`<cache>/go/<version>/go/bin/go`). `GOROSCOPE_GO_VERSIONS=1.27.3,1.21.13` narrows the set.

use std::path::PathBuf;

/// Versions the project supports; keep in step with `GO_VERSIONS` in `scripts/lib.sh`.
pub const GO_VERSIONS: &[&str] = &[
    "1.19.8", "1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3",
];

/// One installed toolchain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// "1.27.3"
    pub version: String,
    /// `[1, 27, 3]`
    pub numbers: Vec<u32>,
    /// The toolchain's GOROOT.
    pub goroot: PathBuf,
    /// `<goroot>/bin/go`
    pub go: PathBuf,
}

impl Toolchain {
    /// The minor version: 27 for 1.27.3.
    pub fn minor(&self) -> u32 {
        self.numbers.get(1).copied().unwrap_or(0)
    }

    /// "go1.27.3", as in reports.
    pub fn name(&self) -> String {
        format!("go{}", self.version)
    }

    /// "go1_27_3", as in test names.
    pub fn ident(&self) -> String {
        format!("go{}", self.version.replace('.', "_"))
    }
}

/// goroscope's cache directory (same rule as `scripts/lib.sh`).
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GOROSCOPE_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("goroscope");
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache").join("goroscope")
}

/// Parses "1.27.3" into `[1, 27, 3]`.
pub fn parse_version(v: &str) -> Option<Vec<u32>> {
    let n: Option<Vec<u32>> = v.split('.').map(|p| p.parse().ok()).collect();
    n.filter(|n| n.len() >= 2)
}

/// The versions `GOROSCOPE_GO_VERSIONS` asks for, if set.
fn requested() -> Option<Vec<String>> {
    let v = std::env::var("GOROSCOPE_GO_VERSIONS").ok()?;
    let list: Vec<String> = v
        .split(',')
        .map(|s| s.trim().trim_start_matches("go").to_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Installed toolchains in version order, filtered by `GOROSCOPE_GO_VERSIONS`.
pub fn installed() -> Vec<Toolchain> {
    let root = cache_dir().join("go");
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&root) else {
        return out;
    };
    for e in entries.flatten() {
        let version = e.file_name().to_string_lossy().into_owned();
        let Some(numbers) = parse_version(&version) else {
            continue;
        };
        let goroot = e.path().join("go");
        let go = goroot.join("bin").join("go");
        if go.is_file() {
            out.push(Toolchain {
                version,
                numbers,
                goroot,
                go,
            });
        }
    }
    if let Some(want) = requested() {
        out.retain(|t| want.contains(&t.version));
    }
    out.sort_by(|a, b| a.numbers.cmp(&b.numbers));
    out
}

/// Installed toolchains; panics with what to do if there are none, or if
/// `GOROSCOPE_GO_VERSIONS` names one that is not installed. Without that variable every
/// supported version is a prerequisite ([`super::require`]): one missing fails the test, or
/// in a partial run is recorded as a skip and the test goes on with the others.
pub fn require_toolchains() -> Vec<Toolchain> {
    let have = installed();
    if requested().is_none() {
        let missing: Vec<&str> = GO_VERSIONS
            .iter()
            .copied()
            .filter(|v| !have.iter().any(|t| t.version == *v))
            .collect();
        if !missing.is_empty() {
            super::require(Err::<(), _>(format!(
                "Go {missing:?} not installed in {}: run scripts/install-go.sh (scripts/test.sh does)",
                cache_dir().join("go").display()
            )));
        }
    }
    if let Some(want) = requested() {
        let missing: Vec<&String> = want
            .iter()
            .filter(|w| !have.iter().any(|t| &t.version == *w))
            .collect();
        assert!(
            missing.is_empty(),
            "GOROSCOPE_GO_VERSIONS asks for Go {missing:?}, not installed in {}: run scripts/install-go.sh {}",
            cache_dir().join("go").display(),
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    assert!(
        !have.is_empty(),
        "no Go toolchain installed in {}: run scripts/install-go.sh (scripts/test.sh does)",
        cache_dir().join("go").display()
    );
    have
}

/// The newest installed toolchain (after the filter).
pub fn newest() -> Toolchain {
    require_toolchains().pop().unwrap()
}

/// The installed toolchain of Go 1.`minor` (after the filter), a prerequisite
/// ([`super::require`]): `None` only when a partial run skips the test.
pub fn require_minor(minor: u32) -> Option<Toolchain> {
    let tc = require_toolchains()
        .into_iter()
        .find(|t| t.minor() == minor);
    super::require(tc.ok_or_else(|| {
        let why = if requested().is_some() {
            "left out by GOROSCOPE_GO_VERSIONS"
        } else {
            "not installed"
        };
        format!("Go 1.{minor} {why}: run scripts/install-go.sh (scripts/test.sh does)")
    }))
}
