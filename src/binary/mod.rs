//! Binary info: the Go executable's ELF, buildinfo, pclntab, symbols and DWARF.
//!
//! Everything here is static: it is read before the target is stopped, from the file (for a
//! live process, `/proc/PID/exe`, which works when the file was deleted or replaced and
//! across mount namespaces).

pub mod buildinfo;
pub mod dwarf;
pub mod pclntab;

use crate::arch::Arch;
use crate::version::GoVersion;
use buildinfo::BuildInfo;
use object::{Object, ObjectSection, ObjectSymbol};
use pclntab::{PclnBytes, Pclntab};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why an executable could not be read as a Go binary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BinaryError {
    /// The file could not be opened or mapped.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: crate::error::IoError,
    },
    /// Not an ELF file goroscope understands.
    NotElf(String),
    /// An ELF file of an architecture goroscope does not read.
    UnsupportedArch(String),
    /// No `.go.buildinfo`: not a Go program.
    NotGo,
    /// The buildinfo could not be read.
    BuildInfo(buildinfo::BuildInfoError),
    /// The Go version string could not be understood.
    BadVersion(String),
    /// No pclntab, or a corrupt one.
    Pclntab(String),
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::Io { path, error } => {
                write!(f, "cannot read {}: {}", path.display(), error)
            }
            BinaryError::NotElf(e) => write!(f, "not an ELF executable: {e}"),
            BinaryError::UnsupportedArch(a) => {
                write!(
                    f,
                    "unsupported architecture {a}; goroscope reads linux/amd64 and linux/arm64 Go programs"
                )
            }
            BinaryError::NotGo => write!(f, "not a Go program (no .go.buildinfo section)"),
            BinaryError::BuildInfo(e) => write!(f, "cannot read the Go build info: {e}"),
            BinaryError::BadVersion(v) => write!(f, "cannot understand the Go version {v:?}"),
            BinaryError::Pclntab(e) => write!(f, "cannot read the Go pclntab: {e}"),
        }
    }
}

impl std::error::Error for BinaryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BinaryError::Io { error, .. } => Some(error.as_io()),
            BinaryError::BuildInfo(e) => Some(e),
            _ => None,
        }
    }
}

/// A read-only anonymous map holding a copy of `bytes`: file parsers that keep their input
/// mapped take bytes from memory (tests, fuzzing) through it too.
pub(crate) fn map_copy(bytes: &[u8]) -> std::io::Result<memmap2::Mmap> {
    let mut map = memmap2::MmapMut::map_anon(bytes.len())?;
    map.copy_from_slice(bytes);
    map.make_read_only()
}

/// What `goroscope ps` learns about an executable without mapping or parsing all of it: the
/// ELF header, the section headers and the `.go.buildinfo` bytes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// Build info (Go version, main module).
    pub build: BuildInfo,
    /// Whether it has a `.symtab`.
    pub has_symbols: bool,
    /// Whether it has DWARF (`.debug_info` or `.zdebug_info`).
    pub has_dwarf: bool,
}

/// How much of the first writable segment is searched for the build info when the section
/// headers do not name `.go.buildinfo` (what Go's `debug/buildinfo` reads there).
const BUILDINFO_SEARCH: u64 = 64 * 1024;

/// Reads an executable's build info and whether it is stripped, reading only the headers and
/// the build info through `pread` (a huge binary is never mapped or read whole).
/// [`BinaryError::NotGo`] for anything that is not a Go program.
pub fn peek(path: &Path) -> Result<Peek, BinaryError> {
    let io = |e: std::io::Error| BinaryError::Io {
        path: path.to_path_buf(),
        error: e.into(),
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let cache = object::ReadCache::new(file);
    let elf = object::File::parse(&cache).map_err(|e| BinaryError::NotElf(e.to_string()))?;
    let has = |name: &str| elf.section_by_name(name).is_some();
    let (has_symbols, has_dwarf) = (has(".symtab"), has(".debug_info") || has(".zdebug_info"));
    let data: Vec<u8> = match elf.section_by_name(".go.buildinfo") {
        Some(s) => s.data().map_err(|_| BinaryError::NotGo)?.to_vec(),
        // No section headers (or a tool dropped the name): the build info starts the first
        // writable PT_LOAD segment, as `debug/buildinfo` assumes.
        None => {
            use object::read::{ObjectSegment, ReadRef};
            let seg = elf.segments().find(|s| {
                matches!(s.flags(), object::SegmentFlags::Elf { p_flags, .. } if p_flags.0 & object::elf::PF_W.0 != 0)
            });
            let Some((off, size)) = seg.map(|s| s.file_range()) else {
                return Err(BinaryError::NotGo);
            };
            cache
                .read_bytes_at(off, size.min(BUILDINFO_SEARCH))
                .map_err(|_| BinaryError::NotGo)?
                .to_vec()
        }
    };
    let build = match BuildInfo::parse(&data) {
        Ok(b) => b,
        Err(buildinfo::BuildInfoError::BadMagic | buildinfo::BuildInfoError::Truncated) => {
            return Err(BinaryError::NotGo);
        }
        Err(e) => return Err(BinaryError::BuildInfo(e)),
    };
    Ok(Peek {
        build,
        has_symbols,
        has_dwarf,
    })
}

/// A symbol from the ELF symbol table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    /// Address, in the executable's own numbering (add the load bias for PIE).
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A Go executable, opened and parsed.
pub struct GoBinary {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its architecture.
    pub arch: Arch,
    /// Build info (Go version, main module, settings).
    pub build: BuildInfo,
    /// The Go version that built it.
    pub version: GoVersion,
    /// The function table. Its text base and `gofunc` data are set from moduledata once the
    /// target's memory can be read (see `runtime::Runtime::open`).
    pub pclntab: Pclntab,
    /// Address of the pclntab, in the executable's numbering.
    pub pclntab_addr: u64,
    /// Whether the executable is position independent (ET_DYN).
    pub is_pie: bool,
    /// Whether it carries DWARF.
    pub has_dwarf: bool,
    /// Data and function symbols from `.symtab`, by name (empty when stripped).
    pub symbols: HashMap<String, Symbol>,
    /// Address of the `.go.module` section (Go 1.26+), in the executable's numbering.
    pub go_module_section: Option<u64>,
    data: Arc<memmap2::Mmap>,
}

impl fmt::Debug for GoBinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoBinary")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish()
    }
}

impl GoBinary {
    /// Opens and parses an executable.
    pub fn open(path: &Path) -> Result<GoBinary, BinaryError> {
        let io = |e: std::io::Error| BinaryError::Io {
            path: path.to_path_buf(),
            error: e.into(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only; a file truncated under us can fault, which is the same
        // risk every debugger that maps its target's executable takes.
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(path.to_path_buf(), data)
    }

    /// Parses an executable held in memory (`path` only names it in messages).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<GoBinary, BinaryError> {
        let data = map_copy(bytes).map_err(|e| BinaryError::Io {
            path: path.to_path_buf(),
            error: e.into(),
        })?;
        Self::parse(path.to_path_buf(), data)
    }

    fn parse(path: PathBuf, data: memmap2::Mmap) -> Result<GoBinary, BinaryError> {
        let data = Arc::new(data);
        let elf = object::File::parse(&data[..]).map_err(|e| BinaryError::NotElf(e.to_string()))?;
        if elf.format() != object::BinaryFormat::Elf {
            return Err(BinaryError::NotElf(format!("{:?} file", elf.format())));
        }
        let arch = match elf.architecture() {
            object::Architecture::X86_64 => Arch::Amd64,
            object::Architecture::Aarch64 => Arch::Arm64,
            a => {
                return Err(BinaryError::UnsupportedArch(
                    format!("{a:?}").to_lowercase(),
                ));
            }
        };
        let bi_sec = elf
            .section_by_name(".go.buildinfo")
            .ok_or(BinaryError::NotGo)?;
        let bi_data = bi_sec.data().map_err(|_| BinaryError::NotGo)?;
        let build = BuildInfo::parse(bi_data).map_err(BinaryError::BuildInfo)?;
        let version = GoVersion::parse(&build.go_version)
            .ok_or_else(|| BinaryError::BadVersion(build.go_version.clone()))?;

        let pcln_sec = elf
            .section_by_name(".gopclntab")
            .or_else(|| elf.section_by_name(".data.rel.ro.gopclntab"))
            .ok_or_else(|| BinaryError::Pclntab("no .gopclntab section".into()))?;
        // The pclntab stays in the map: it is read where the unwinder needs it, never copied.
        let pcln_len = pcln_sec
            .data()
            .map_err(|e| BinaryError::Pclntab(e.to_string()))?
            .len();
        let pcln_bytes = match pcln_sec.file_range() {
            Some((off, _)) => {
                let start =
                    usize::try_from(off).map_err(|e| BinaryError::Pclntab(e.to_string()))?;
                PclnBytes::Mapped(Arc::clone(&data), start..start.saturating_add(pcln_len))
            }
            None => {
                return Err(BinaryError::Pclntab(
                    "the pclntab section has no file data".into(),
                ));
            }
        };
        let pclntab =
            Pclntab::parse(pcln_bytes).map_err(|e| BinaryError::Pclntab(e.to_string()))?;
        let pclntab_addr = pcln_sec.address();

        let mut symbols = HashMap::new();
        for s in elf.symbols() {
            if let Ok(name) = s.name()
                && (name.starts_with("runtime.")
                    || name.starts_with("go:")
                    || name.starts_with("go."))
            {
                symbols.insert(
                    name.to_string(),
                    Symbol {
                        addr: s.address(),
                        size: s.size(),
                    },
                );
            }
        }
        let has_dwarf = elf.section_by_name(".debug_info").is_some()
            || elf.section_by_name(".zdebug_info").is_some();
        let is_pie = elf.kind() == object::ObjectKind::Dynamic;
        let go_module_section = elf.section_by_name(".go.module").map(|s| s.address());
        drop(elf);
        Ok(GoBinary {
            path,
            arch,
            build,
            version,
            pclntab,
            pclntab_addr,
            is_pie,
            has_dwarf,
            symbols,
            go_module_section,
            data,
        })
    }

    /// The raw bytes of the executable file.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The ELF, parsed again (cheap: headers only).
    pub fn elf(&self) -> object::File<'_> {
        object::File::parse(&self.data[..]).expect("parsed once already")
    }

    /// The executable `PT_LOAD` segment (the first with `PF_X`, which holds `.text`): its
    /// address in the executable's numbering, its size in memory and its file offset.
    pub(crate) fn text_segment(&self) -> Option<(u64, u64, u64)> {
        use object::read::ObjectSegment;
        let elf = self.elf();
        let seg = elf.segments().find(|s| {
            matches!(s.flags(), object::SegmentFlags::Elf { p_flags, .. } if p_flags.0 & object::elf::PF_X.0 != 0)
        })?;
        Some((seg.address(), seg.size(), seg.file_range().0))
    }

    /// The GNU build id (`NT_GNU_BUILD_ID` note) in lowercase hex, the id pprof and perf know
    /// a binary by; `None` when the binary has none (Go's linker writes one from Go 1.24 on).
    pub(crate) fn gnu_build_id(&self) -> Option<String> {
        let id = self.elf().build_id().ok()??;
        Some(id.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A symbol by name.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.symbols.get(name).copied()
    }

    /// The mapped file, shared: what reads it later ([`data_symbols`]) without the
    /// [`GoBinary`].
    pub(crate) fn file(&self) -> Arc<memmap2::Mmap> {
        Arc::clone(&self.data)
    }

    /// Whether the executable has a symbol table.
    pub fn has_symbols(&self) -> bool {
        !self.symbols.is_empty()
    }

    /// Bytes of the file-backed section holding `[addr, addr+len)` (executable numbering).
    pub fn read_static(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let elf = self.elf();
        for s in elf.sections() {
            let (a, sz) = (s.address(), s.size());
            let Some(end) = a.checked_add(sz) else {
                continue;
            };
            if a <= addr && addr.checked_add(len)? <= end {
                let (off, fsz) = s.file_range()?;
                if (addr - a).checked_add(len)? > fsz {
                    return None;
                }
                let start = usize::try_from(off.checked_add(addr - a)?).ok()?;
                return self
                    .data
                    .get(start..start.checked_add(usize::try_from(len).ok()?)?);
            }
        }
        None
    }
}

/// The data symbols (globals) of an executable's `.symtab` with a size, `(address, size,
/// name)` in the executable's numbering, by address; empty when stripped. [`GoBinary::symbols`]
/// keeps only the runtime's.
pub(crate) fn data_symbols(file: &[u8]) -> Vec<(u64, u64, String)> {
    use object::{Object, ObjectSymbol};
    let Ok(elf) = object::File::parse(file) else {
        return Vec::new();
    };
    let mut v: Vec<(u64, u64, String)> = elf
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Data && s.size() > 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_refuses_what_is_not_go() {
        // This test binary: an ELF, but not a Go program.
        let me = std::env::current_exe().unwrap();
        assert_eq!(peek(&me), Err(BinaryError::NotGo));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(matches!(peek(&src), Err(BinaryError::NotElf(_))));
        assert!(matches!(
            peek(Path::new("/no/such/binary")),
            Err(BinaryError::Io { .. })
        ));
    }
}
