//! Scratch files for tests: a temporary directory, and fixture copies that claim another Go
//! version.

use std::path::{Path, PathBuf};

/// A directory under the system temp dir, removed on drop unless the test failed (so what it
/// holds, cores and binaries, can be looked at).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh `goroscope-<tag>-<pid>` directory.
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("goroscope-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Rewrites the minor version in `.go.buildinfo` (magic `\xff Go buildinf:`, inline strings
/// since Go 1.18: a one-byte length at +32, the version at +33) to `minor`, keeping the
/// length. The runtime never reads it, so the program runs as before. Returns (old, new).
pub fn patch_go_minor(bin: &mut [u8], minor: u32) -> (String, String) {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    let at = bin
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .expect(".go.buildinfo magic");
    assert_ne!(
        bin[at + 15] & 2,
        0,
        "buildinfo must hold inline strings (Go >= 1.18)"
    );
    let len = bin[at + 32] as usize;
    assert!(len < 0x80, "version string length is one varint byte");
    let v = at + 33;
    let old = String::from_utf8(bin[v..v + len].to_vec()).unwrap();
    let (_, rest) = old
        .strip_prefix("go1.")
        .and_then(|r| r.split_once('.'))
        .expect("go1.X.Y version");
    let new = format!("go1.{minor}.{rest}");
    assert_eq!(new.len(), old.len(), "{old} → {new} must keep the length");
    bin[v..v + len].copy_from_slice(new.as_bytes());
    (old, new)
}

/// An executable copy of `exe` in `dir` claiming Go 1.`minor`; returns its path, the old and
/// the new version strings.
pub fn patched_copy(
    exe: &Path,
    minor: u32,
    dir: &TempDir,
    name: &str,
) -> (PathBuf, String, String) {
    let mut bytes = std::fs::read(exe).unwrap();
    let (old, new) = patch_go_minor(&mut bytes, minor);
    let out = dir.0.join(name);
    std::fs::write(&out, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).unwrap();
    (out, old, new)
}
