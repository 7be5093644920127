//! The core-file backend: an ELF core (kernel, `gcore`, qemu-user) read in place.
//!
//! [`CoreFile::open`] maps the file and parses only headers and notes: the architecture from
//! `e_machine`, memory from the `PT_LOAD` segments (read straight out of the map, nothing
//! copied), one [`ThreadState`] a `NT_PRSTATUS` note, the file mappings (`NT_FILE`), the
//! process info (`NT_PRPSINFO`) and the auxiliary vector (`NT_AUXV`).
//!
//! Every offset and size read from the file is checked against the file before it is used,
//! so a truncated or corrupt core gives a [`CoreError`] or a partial result (listed by
//! [`CoreFile::problems`]), never a panic or an unbounded allocation:
//!
//! * a segment that extends past the end of the file is kept up to the end of the file; the
//!   rest reads as missing, like the part of a segment beyond its `p_filesz`;
//! * a malformed note ends the note walk; the notes before it are kept;
//! * notes of the wrong size are skipped.
//!
//! Cores leave out what the kernel can find again in files: the executable's text and
//! read-only data are usually absent (`p_filesz` 0, or just the ELF header page).
//! [`SplicedMemory`] reads the core first and falls back to the executable's own read-only
//! `PT_LOAD` segments, placed at the load bias.

mod elf;
mod spliced;
#[cfg(test)]
mod tests;
pub mod write;

use elf::{Parsed, parse_ehdr, parse_notes, parse_phdrs, present, push_problem};
pub use spliced::SplicedMemory;

use super::{MemoryReader, ReadError, ThreadState};
use crate::arch::Arch;
use std::fmt;
use std::path::{Path, PathBuf};

/// `NT_PRSTATUS`: one thread's status and registers.
pub(crate) const NT_PRSTATUS: u32 = 1;
/// `NT_PRFPREG`: one thread's floating-point registers, after its `NT_PRSTATUS`.
pub(crate) const NT_PRFPREG: u32 = 2;
/// `NT_PRPSINFO`: process info (pid, command name).
pub(crate) const NT_PRPSINFO: u32 = 3;
/// `NT_AUXV`: the auxiliary vector.
pub const NT_AUXV: u32 = 6;
/// `NT_FILE`: file-backed mappings.
pub const NT_FILE: u32 = 0x4649_4c45;

pub use super::proc::AT_ENTRY;
/// `AT_EXECFN`: address of the executable's file name on the initial stack.
pub(crate) const AT_EXECFN: u64 = 31;

/// Offset of `pr_pid` in a 64-bit `elf_prstatus`.
pub(crate) const PRSTATUS_PID: usize = 32;
/// Offset of `pr_cursig` in a 64-bit `elf_prstatus`.
pub(crate) const PRSTATUS_CURSIG: usize = 12;
/// Offset of `pr_reg` in a 64-bit `elf_prstatus`.
pub(crate) const PRSTATUS_REG: usize = 112;
/// Offset of `pr_uid` (then `pr_gid`) in a 64-bit `elf_prpsinfo`.
pub(crate) const PRPSINFO_UID: usize = 16;
/// Offset of `pr_pid` in a 64-bit `elf_prpsinfo`.
pub(crate) const PRPSINFO_PID: usize = 24;
/// Offset of `pr_fname` (16 bytes) in a 64-bit `elf_prpsinfo`.
pub(crate) const PRPSINFO_FNAME: usize = 40;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_W: u32 = 2;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ET_CORE: u16 = 4;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Most program headers accepted (a kernel core has one per mapping; 2^20 is far beyond any
/// process's `vm.max_map_count` default of 65530).
pub(crate) const MAX_SEGMENTS: usize = 1 << 20;
/// Most threads accepted.
pub(crate) const MAX_THREADS: usize = 1 << 16;
/// Most `NT_FILE` entries accepted.
pub(crate) const MAX_FILE_MAPPINGS: usize = 1 << 20;
/// Most bytes below `AT_EXECFN` searched for environment strings ([`CoreFile::environ`]).
pub(crate) const MAX_ENVIRON_BYTES: u64 = 256 << 10;
/// Most problems recorded (the rest are counted in the last one).
const MAX_PROBLEMS: usize = 32;

/// Why a core file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreError {
    /// The file could not be opened or mapped.
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: crate::error::IoError,
    },
    /// Not a 64-bit little-endian ELF file.
    NotElf {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An ELF file, but not a core.
    NotCore {
        /// The path.
        path: PathBuf,
    },
    /// A core of a machine goroscope does not read.
    UnsupportedArch {
        /// `e_machine`.
        machine: u16,
    },
    /// The headers are damaged beyond use.
    Malformed {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The core does not say where its executable is, or that file is missing.
    NoExecutable {
        /// A path the core names, if any.
        named: Option<String>,
    },
    /// The executable the core names may not be opened as the core's process's user, or is
    /// not a regular file.
    ExeRefused {
        /// Why, with the path.
        why: String,
    },
    /// The executable given or found does not belong to this core.
    ExeMismatch {
        /// The executable.
        exe: PathBuf,
        /// What disagrees.
        why: String,
    },
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::Io { path, error } => {
                write!(
                    f,
                    "cannot read core file {}: {error}; check the path and its permissions",
                    path.display()
                )
            }
            CoreError::NotElf { path, why } => write!(
                f,
                "{} is not a core file ({why}); pass a core written by the kernel, gcore or qemu",
                path.display()
            ),
            CoreError::NotCore { path } => write!(
                f,
                "{} is an ELF file but not a core; give the core with --core and the executable with --exe",
                path.display()
            ),
            CoreError::UnsupportedArch { machine } => write!(
                f,
                "core of an unsupported machine (e_machine {machine}); goroscope reads x86_64 and aarch64 cores"
            ),
            CoreError::Malformed { path, why } => {
                write!(
                    f,
                    "core file {} is damaged: {why}; it may be truncated, take it again",
                    path.display()
                )
            }
            CoreError::NoExecutable { named: Some(p) } => write!(
                f,
                "the core's executable {p} is not on this machine; pass the program's binary with --exe"
            ),
            CoreError::ExeRefused { why } => write!(
                f,
                "the core's executable {why}; pass the program's binary with --exe"
            ),
            CoreError::NoExecutable { named: None } => {
                write!(
                    f,
                    "the core does not say where its executable is; pass the program's binary with --exe"
                )
            }
            CoreError::ExeMismatch { exe, why } => write!(
                f,
                "{} is not the executable of this core ({why}); pass the exact binary that ran with --exe",
                exe.display()
            ),
        }
    }
}

impl std::error::Error for CoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CoreError::Io { error, .. } => Some(error.as_io()),
            _ => None,
        }
    }
}

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Address in the process.
    pub vaddr: u64,
    /// Size in the process.
    pub memsz: u64,
    /// Offset of its bytes in the file.
    pub offset: u64,
    /// Bytes present in the file (clamped to the end of the file).
    pub filesz: u64,
    /// `p_flags` (`PF_R` 4, `PF_W` 2, `PF_X` 1).
    pub flags: u32,
}

/// One `NT_FILE` entry: a file-backed mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    /// First address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Offset in the file, in bytes.
    pub offset: u64,
    /// The file's path as the process saw it.
    pub path: String,
}

/// An ELF core file, mapped and parsed.
pub struct CoreFile {
    path: PathBuf,
    data: memmap2::Mmap,
    arch: Arch,
    /// Sorted by `vaddr`.
    segments: Vec<Segment>,
    threads: Vec<ThreadState>,
    signal: Option<i32>,
    files: Vec<FileMapping>,
    auxv: Vec<(u64, u64)>,
    pid: Option<i32>,
    fname: Option<String>,
    ids: Option<(u32, u32)>,
    problems: Vec<String>,
}

impl fmt::Debug for CoreFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreFile")
            .field("path", &self.path)
            .field("arch", &self.arch)
            .field("segments", &self.segments.len())
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl CoreFile {
    /// Maps and parses a core file.
    pub fn open(path: &Path) -> Result<CoreFile, CoreError> {
        let io = |e: std::io::Error| CoreError::Io {
            path: path.to_path_buf(),
            error: e.into(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(CoreError::NotElf {
                path: path.to_path_buf(),
                why: "not a regular file".into(),
            });
        }
        if meta.len() < EHDR_SIZE as u64 {
            return Err(CoreError::NotElf {
                path: path.to_path_buf(),
                why: format!("{} bytes, shorter than an ELF header", meta.len()),
            });
        }
        // SAFETY: a read-only private map; a core truncated while goroscope reads it can fault,
        // the risk every debugger mapping its input takes.
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(path.to_path_buf(), data)
    }

    /// Parses a core held in memory (`path` only names it in messages).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<CoreFile, CoreError> {
        let data = crate::binary::map_copy(bytes).map_err(|e| CoreError::Io {
            path: path.to_path_buf(),
            error: e.into(),
        })?;
        Self::parse(path.to_path_buf(), data)
    }

    fn parse(path: PathBuf, data: memmap2::Mmap) -> Result<CoreFile, CoreError> {
        let d: &[u8] = &data;
        let eh = parse_ehdr(d).map_err(|why| CoreError::NotElf {
            path: path.clone(),
            why,
        })?;
        if eh.e_type != ET_CORE {
            return Err(CoreError::NotCore { path });
        }
        let arch = match eh.machine {
            EM_X86_64 => Arch::Amd64,
            EM_AARCH64 => Arch::Arm64,
            m => return Err(CoreError::UnsupportedArch { machine: m }),
        };
        let mut problems = Vec::new();
        let phdrs = parse_phdrs(d, &eh, &mut problems);
        if phdrs.is_empty() {
            return Err(CoreError::Malformed {
                path,
                why: "no program headers".into(),
            });
        }
        let (kept, note_blobs) = segments(d.len() as u64, &phdrs, &mut problems);

        let mut core = Parsed::default();
        for (off, len) in note_blobs {
            let blob = &d[off as usize..(off + len) as usize];
            for (ty, name, desc) in parse_notes(blob, &mut problems, off) {
                // Core notes are named "CORE" (kernel, gdb, qemu); "LINUX" ones are extra regsets.
                if name != b"CORE" {
                    continue;
                }
                core.note(arch, ty, desc, &mut problems);
            }
        }
        if core.threads.is_empty() {
            push_problem(
                &mut problems,
                "no thread registers (NT_PRSTATUS) in the core; running goroutines show no stack"
                    .into(),
            );
        }
        if core.pid.is_none() {
            core.pid = core.threads.first().map(|t| t.tid).filter(|&t| t > 0);
        }
        Ok(CoreFile {
            path,
            data,
            arch,
            segments: kept,
            threads: core.threads,
            signal: core.signal,
            files: core.files,
            auxv: core.auxv,
            pid: core.pid,
            fname: core.fname,
            ids: core.ids,
            problems,
        })
    }

    /// The path it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its architecture (`e_machine`).
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Every thread with its registers, in note order (the kernel writes the thread that took
    /// the fatal signal first).
    pub fn threads(&self) -> &[ThreadState] {
        &self.threads
    }

    /// The signal that caused the dump (`pr_cursig` of the first thread), if recorded.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// The `PT_LOAD` segments, sorted by address.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// File-backed mappings (`NT_FILE`); empty when the core has none (qemu).
    pub fn files(&self) -> &[FileMapping] {
        &self.files
    }

    /// The auxiliary vector.
    pub fn auxv(&self) -> &[(u64, u64)] {
        &self.auxv
    }

    /// A value from the auxiliary vector.
    pub(crate) fn auxv_value(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The process id (`NT_PRPSINFO`, else the first thread's).
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The process's user and group (`pr_uid`, `pr_gid` of `NT_PRPSINFO`).
    pub fn ids(&self) -> Option<(u32, u32)> {
        self.ids
    }

    /// The command name (`pr_fname`, at most 15 bytes).
    pub(crate) fn fname(&self) -> Option<&str> {
        self.fname.as_deref()
    }

    /// What was wrong but did not stop the parse (truncation, bad notes).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The size of the file.
    pub(crate) fn file_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Where the executable is, as the core says: the `NT_FILE` mapping holding `AT_ENTRY`,
    /// else the first `NT_FILE` mapping.
    pub(crate) fn exe_path_hint(&self) -> Option<&str> {
        let entry = self.auxv_value(AT_ENTRY);
        entry
            .and_then(|e| self.files.iter().find(|f| f.start <= e && e < f.end))
            .or_else(|| self.files.first())
            .map(|f| f.path.as_str())
    }

    /// The bytes of `[addr, addr+n)` if one segment holds them all in the file.
    pub fn slice(&self, addr: u64, n: u64) -> Option<&[u8]> {
        let i = self
            .segments
            .partition_point(|s| s.vaddr <= addr)
            .checked_sub(1)?;
        let s = &self.segments[i];
        let rel = addr - s.vaddr;
        if rel.checked_add(n)? > s.filesz {
            return None;
        }
        let start = usize::try_from(s.offset.checked_add(rel)?).ok()?;
        self.data.get(start..start.checked_add(n as usize)?)
    }

    /// Environment strings `NAME=value` on the initial stack, found from `AT_EXECFN`: the
    /// kernel (and qemu) put argv and envp strings right before the executable's name at the
    /// top of the main thread's stack. Best effort, bounded by [`MAX_ENVIRON_BYTES`]; argv strings shaped
    /// like `NAME=value` are indistinguishable and included.
    pub(crate) fn environ(&self) -> Vec<String> {
        let Some(execfn) = self.auxv_value(AT_EXECFN) else {
            return Vec::new();
        };
        let Some(i) = self
            .segments
            .partition_point(|s| s.vaddr <= execfn)
            .checked_sub(1)
        else {
            return Vec::new();
        };
        let s = self.segments[i];
        let lo = execfn.saturating_sub(MAX_ENVIRON_BYTES).max(s.vaddr);
        let Some(bytes) = self.slice(lo, execfn - lo) else {
            return Vec::new();
        };
        let mut out: Vec<String> = bytes
            .split(|&b| b == 0)
            .skip(usize::from(lo != s.vaddr)) // the first piece may be cut
            .filter(|v| !v.is_empty() && v.contains(&b'='))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        out.retain(|v| {
            v.split('=')
                .next()
                .is_some_and(|k| !k.is_empty() && !k.contains(' '))
        });
        out
    }
}

/// The `PT_LOAD` segments (sorted, the part the file holds, overlaps dropped) and the
/// `PT_NOTE` blobs (offset, length) of a core's program headers.
fn segments(
    file_len: u64,
    phdrs: &[[u64; 6]],
    problems: &mut Vec<String>,
) -> (Vec<Segment>, Vec<(u64, u64)>) {
    let mut segments = Vec::new();
    let mut truncated = 0u64;
    let mut note_blobs = Vec::new();
    for &[ty, flags, offset, vaddr, filesz, memsz] in phdrs {
        let have = present(file_len, offset, filesz);
        truncated = truncated.saturating_add(filesz - have);
        match ty as u32 {
            PT_LOAD if memsz > 0 => segments.push(Segment {
                vaddr,
                memsz,
                offset,
                filesz: have.min(memsz),
                flags: flags as u32,
            }),
            PT_NOTE if have > 0 => note_blobs.push((offset, have)),
            _ => {}
        }
    }
    if truncated > 0 {
        push_problem(
            problems,
            format!("the core is truncated: {truncated} bytes of its segments are missing"),
        );
    }
    segments.sort_by_key(|s| s.vaddr);
    // Overlapping segments would make reads ambiguous: keep the first of each overlap.
    let mut kept: Vec<Segment> = Vec::with_capacity(segments.len());
    for s in segments {
        match kept.last() {
            Some(p) if p.vaddr.saturating_add(p.memsz) > s.vaddr => {
                push_problem(
                    problems,
                    format!("segment at {:#x} overlaps the one before; ignored", s.vaddr),
                );
            }
            _ => kept.push(s),
        }
    }
    (kept, note_blobs)
}

impl MemoryReader for CoreFile {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let err = ReadError {
            addr,
            len: buf.len() as u64,
        };
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.checked_add(done as u64).ok_or(err)?;
            let i = self
                .segments
                .partition_point(|s| s.vaddr <= a)
                .checked_sub(1)
                .ok_or(err)?;
            let s = &self.segments[i];
            let rel = a - s.vaddr;
            if rel >= s.filesz {
                return Err(err);
            }
            let n = ((s.filesz - rel) as usize).min(buf.len() - done);
            let start = usize::try_from(s.offset + rel).map_err(|_| err)?;
            let src = self.data.get(start..start + n).ok_or(err)?;
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(())
    }
}
