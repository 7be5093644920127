//! Runtime layout: what goroscope knows about the Go runtime of one target, and the
//! goroutine walk.
//!
//! [`Runtime::open`] does all discovery before the target is stopped: layouts, moduledata
//! (text base, `gofunc`), the address of `runtime.allgs`, wait-reason strings, special
//! funcIDs. [`goroutines`] then plans and performs the copy in the frozen window and reads
//! the goroutines back out of the copy.

pub mod blocked;
pub mod defers;
pub mod find;
pub mod goroutines;
pub mod holders;
pub mod labels;
pub mod layout;
pub mod leaks;
pub mod status;
pub mod tables;
pub mod tables_go120;
pub mod threads;
pub mod waitreasons;

use crate::binary::GoBinary;
use crate::target::{MemoryReader, ReadExt};
use crate::unwind::{Code, FuncIds};
use crate::version::{self, GoVersion};
use layout::{F, Layout, LayoutError};
use std::fmt;

/// Why the runtime's data could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The Go version is outside the supported range.
    UnsupportedVersion(GoVersion),
    /// `--force-go-version` names a version goroscope has no rules for.
    BadForcedVersion(GoVersion),
    /// Layouts could not be had.
    Layout(LayoutError),
    /// moduledata did not validate.
    BadModuledata(String),
    /// Target memory could not be read.
    Read(String),
    /// A runtime structure could not be found without symbols.
    Find(find::FindError),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::UnsupportedVersion(v) => write!(
                f,
                "unsupported Go version {v}; goroscope reads programs built by {} (--force-go-version 1.N tries go1.N's layouts and rules instead)",
                version::supported_versions_text()
            ),
            RuntimeError::BadForcedVersion(v) => write!(
                f,
                "--force-go-version go1.{}: goroscope has rules for {} only",
                v.minor,
                version::supported_versions_text()
            ),
            RuntimeError::Layout(e) => e.fmt(f),
            RuntimeError::BadModuledata(e) => {
                write!(f, "runtime.firstmoduledata does not look right: {e}")
            }
            RuntimeError::Read(e) => write!(f, "cannot read the Go runtime's data: {e}"),
            RuntimeError::Find(e) => write!(
                f,
                "cannot find the Go runtime's data in this stripped binary: {e}"
            ),
        }
    }
}

impl std::error::Error for RuntimeError {}

/// Where a discovered fact came from (shown by `goroscope inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// What was found.
    pub what: &'static str,
    /// Its value.
    pub value: String,
    /// Where it came from.
    pub source: String,
}

/// Everything known about one target's runtime, found before stopping it.
pub struct Runtime {
    /// The executable (its pclntab's text base and gofunc are set).
    pub bin: GoBinary,
    /// Offsets of the fields read.
    pub layout: Layout,
    /// Load bias: target address minus executable address (non-zero for PIE).
    pub bias: u64,
    /// Address of the `runtime.allgs` slice header in the target.
    pub allgs: u64,
    /// Address of `runtime.allm` (the newest M, each linking the one before) in the target,
    /// when the symbol table has it (thread stacks find the Ms through it and the threads'
    /// g registers).
    pub allm: Option<u64>,
    /// Address of `runtime.firstmoduledata` in the target.
    pub moduledata: u64,
    /// Wait-reason strings indexed by `g.waitreason`.
    pub wait_reasons: Vec<String>,
    /// funcIDs of the special runtime functions.
    pub ids: FuncIds,
    /// The discovery chain.
    pub discovery: Vec<Discovery>,
    /// Set when `--force-go-version` replaced the binary's unsupported version: the binary's
    /// own version (its layouts and rules were not used; `bin.version` is the forced one).
    pub forced_from: Option<GoVersion>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("bin", &self.bin)
            .field("allgs", &self.allgs)
            .finish()
    }
}

/// Longest wait-reason string accepted from target memory.
const MAX_WAIT_REASON_LEN: u64 = 128;
/// Most wait reasons accepted from target memory.
const MAX_WAIT_REASONS: u64 = 256;

/// How discovery may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    /// Ignore DWARF and the symbol table, as if the binary were stripped (`--no-dwarf`).
    pub stripped: bool,
    /// `--force-go-version`: for a binary whose Go version is not supported, use this
    /// (supported) version's tables and rules instead. Ignored for supported versions.
    pub force_version: Option<GoVersion>,
    /// `--nonblocking`: read a live target without stopping it at all (see
    /// `LiveTarget::snapshot_nonblocking`).
    pub nonblocking: bool,
    /// Also unwind every thread's own stack from its registers (the session; `--thread-stacks`
    /// for JSON and snapshots): copies a little more inside the frozen window.
    pub thread_stacks: bool,
    /// Read the goroutines and their stacks only, not what blocked goroutines wait on, the
    /// pending defers, the holders of locks and the file locks (`objects`, `blocked_on`,
    /// `defers`, `file_locks`): views of stacks alone (`grs`, `threads`, Go's text, grouped,
    /// pprof) do without them; the analyses, `bt`, JSON and snapshots need them.
    pub stacks_only: bool,
}

impl Runtime {
    /// Discovers the runtime of a target whose executable is `bin`, reading `mem` (the live,
    /// still running process, or a core). `bias` is the load bias of the executable.
    ///
    /// Each fact comes from the binary's own metadata when it has it (DWARF for layouts,
    /// `.symtab` for addresses) and otherwise from the stripped path: per-version layout tables,
    /// moduledata found by a validated scan, `allgs` by decoding `runtime.allgadd`.
    pub fn open(
        mut bin: GoBinary,
        mem: &impl MemoryReader,
        bias: u64,
        opts: OpenOptions,
    ) -> Result<Runtime, RuntimeError> {
        let forced_from = force_version(&mut bin, opts)?;
        let v = bin.version;
        let mut discovery = binary_discovery(&bin, bias, forced_from);
        if opts.stripped {
            bin.has_dwarf = false;
            bin.symbols.clear();
        }
        let layout = match Layout::from_dwarf(&bin) {
            Ok(l) => l,
            Err(LayoutError::NoDwarf) => match layout::builtin_table(v.minor) {
                Some(t) => Layout::from_table(t),
                None => return Err(RuntimeError::Layout(LayoutError::NoDwarf)),
            },
            Err(e) => return Err(RuntimeError::Layout(e)),
        };
        discovery.push(Discovery {
            what: "layouts",
            value: format!("g {} bytes, m {} bytes", layout.g_size, layout.m_size),
            source: layout.source.to_string(),
        });
        let md = read_moduledata(&mut bin, mem, bias, &layout, &mut discovery)?;
        let (allgs, allgs_source) = match bin.symbol("runtime.allgs") {
            Some(s) => (s.addr.wrapping_add(bias), "symbol runtime.allgs"),
            None => (
                find::allgs_addr(&bin, mem, bias)
                    .map_err(RuntimeError::Find)?
                    .allgs,
                "decoded runtime.allgadd",
            ),
        };
        discovery.push(Discovery {
            what: "allgs",
            value: format!("{allgs:#x}"),
            source: allgs_source.into(),
        });
        let allm = bin
            .symbol("runtime.allm")
            .map(|s| s.addr.wrapping_add(bias));
        let (wait_reasons, wr_source) = wait_reasons(&bin, mem, bias);
        discovery.push(Discovery {
            what: "wait reasons",
            value: wait_reasons.len().to_string(),
            source: wr_source,
        });
        let mut ids = FuncIds::from_pclntab(&bin.pclntab);
        ids.gentraceback = !v.at_least(21);
        Ok(Runtime {
            bin,
            layout,
            bias,
            allgs,
            allm,
            moduledata: md,
            wait_reasons,
            ids,
            discovery,
            forced_from,
        })
    }

    /// The code view the unwinder needs.
    pub fn code(&self) -> Code<'_> {
        Code {
            arch: self.bin.arch,
            tab: &self.bin.pclntab,
            ids: &self.ids,
        }
    }

    /// The Go version (the forced one under `--force-go-version`).
    pub fn version(&self) -> GoVersion {
        self.bin.version
    }

    /// The version string a snapshot records (`Meta::go_version`): buildinfo's, or under
    /// `--force-go-version` the forced version first (renderers choose the format by it),
    /// then the binary's: `go1.27.0 (forced; built by go1.28.1)`.
    pub(crate) fn go_version_string(&self) -> String {
        match self.forced_from {
            Some(_) => format!(
                "{} (forced; built by {})",
                self.version(),
                self.bin.build.go_version
            ),
            None => self.bin.build.go_version.clone(),
        }
    }
}

/// `--force-go-version` applied: the binary's version replaced by the forced one when its own
/// is not supported (the real one returned); an unsupported version without it is an error.
fn force_version(bin: &mut GoBinary, opts: OpenOptions) -> Result<Option<GoVersion>, RuntimeError> {
    if version::is_supported(bin.version) {
        return Ok(None);
    }
    match opts.force_version {
        Some(f) if version::is_supported(f) => Ok(Some(std::mem::replace(&mut bin.version, f))),
        Some(f) => Err(RuntimeError::BadForcedVersion(f)),
        None => Err(RuntimeError::UnsupportedVersion(bin.version)),
    }
}

/// What discovery says of the executable itself (`-v`).
fn binary_discovery(bin: &GoBinary, bias: u64, forced_from: Option<GoVersion>) -> Vec<Discovery> {
    let mut discovery = vec![
        Discovery {
            what: "executable",
            value: bin.path.display().to_string(),
            source: "target".into(),
        },
        Discovery {
            what: "go version",
            value: bin.build.go_version.clone(),
            source: ".go.buildinfo".into(),
        },
        Discovery {
            what: "arch",
            value: bin.arch.to_string(),
            source: "ELF header".into(),
        },
        Discovery {
            what: "pclntab",
            value: format!("{:#x}", bin.pclntab_addr.wrapping_add(bias)),
            source: ".gopclntab".into(),
        },
    ];
    if let Some(real) = forced_from {
        discovery.push(Discovery {
            what: "rules",
            value: format!("go1.{}", bin.version.minor),
            source: format!("--force-go-version ({real} is not supported)"),
        });
    }
    if bias != 0 {
        discovery.push(Discovery {
            what: "load bias",
            value: format!("{bias:#x}"),
            source: "auxv AT_ENTRY".into(),
        });
    }
    discovery
}

/// Finds the first moduledata (symbol, or the stripped search), checks that it names this
/// pclntab, and gives the pclntab its `text` and `gofunc`; the moduledata's address.
fn read_moduledata(
    bin: &mut GoBinary,
    mem: &impl MemoryReader,
    bias: u64,
    layout: &Layout,
    discovery: &mut Vec<Discovery>,
) -> Result<u64, RuntimeError> {
    let (md, md_source) = match bin.symbol("runtime.firstmoduledata") {
        Some(s) => (s.addr.wrapping_add(bias), "symbol runtime.firstmoduledata"),
        None => {
            let a = find::moduledata_addr(bin, layout).map_err(RuntimeError::Find)?;
            let src = if bin.go_module_section == Some(a) {
                "section .go.module"
            } else {
                "scan for the pclntab address"
            };
            (a.wrapping_add(bias), src)
        }
    };
    let rd = |a: u64| {
        mem.read_u64(a)
            .map_err(|e| RuntimeError::Read(e.to_string()))
    };
    let off = |f: F| layout.off(f).unwrap_or(0);
    let pcheader = rd(md + off(F::ModPcHeader))?;
    if pcheader != bin.pclntab_addr.wrapping_add(bias) {
        return Err(RuntimeError::BadModuledata(format!(
            "pcHeader {pcheader:#x} is not the pclntab at {:#x}",
            bin.pclntab_addr.wrapping_add(bias)
        )));
    }
    let text = rd(md + off(F::ModText))?;
    let gofunc = rd(md + off(F::ModGofunc))?;
    for (what, value, source) in [
        ("moduledata", md, md_source),
        ("text", text, "moduledata.text"),
        ("gofunc", gofunc, "moduledata.gofunc"),
    ] {
        discovery.push(Discovery {
            what,
            value: format!("{value:#x}"),
            source: source.into(),
        });
    }
    bin.pclntab.set_text_start(text);
    if let Some(bytes) = section_tail(bin, gofunc.wrapping_sub(bias)) {
        let bytes = bytes.to_vec();
        bin.pclntab.set_gofunc(gofunc, bytes);
    }
    Ok(md)
}

/// The wait reasons' strings: the binary's own `runtime.waitReasonStrings` when it has the
/// symbol and it reads, else the table for its version; and where they came from.
fn wait_reasons(bin: &GoBinary, mem: &impl MemoryReader, bias: u64) -> (Vec<String>, String) {
    let v = bin.version;
    bin.symbol("runtime.waitReasonStrings")
        .and_then(|s| read_string_array(mem, s.addr.wrapping_add(bias), s.size / 16))
        .map(|w| (w, "runtime.waitReasonStrings".to_string()))
        .unwrap_or_else(|| {
            (
                status::wait_reason_table(v),
                format!("table for go1.{}", v.minor),
            )
        })
}

/// Bytes from `addr` (executable numbering) to the end of its section.
/// The executable's bytes from `addr` to the end of the section holding it.
pub(crate) fn section_tail(bin: &GoBinary, addr: u64) -> Option<&[u8]> {
    use object::{Object, ObjectSection};
    let elf = bin.elf();
    let s = elf.sections().find(|s| {
        s.address() <= addr && s.address().checked_add(s.size()).is_some_and(|e| addr < e)
    })?;
    let len = s.address() + s.size() - addr;
    bin.read_static(addr, len)
}

fn read_string_array(mem: &impl MemoryReader, addr: u64, n: u64) -> Option<Vec<String>> {
    if n == 0 || n > MAX_WAIT_REASONS {
        return None;
    }
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let p = mem.read_u64(addr + i * 16).ok()?;
        let l = mem.read_u64(addr + i * 16 + 8).ok()?;
        if l > MAX_WAIT_REASON_LEN {
            return None;
        }
        let mut b = vec![0u8; l as usize];
        if l > 0 {
            mem.read_at(p, &mut b).ok()?;
        }
        out.push(String::from_utf8_lossy(&b).into_owned());
    }
    Some(out)
}
