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

pub mod write;

use super::{MemoryReader, ReadError, ThreadState};
use crate::arch::{Arch, Regs};
use std::fmt;
use std::path::{Path, PathBuf};

/// `NT_PRSTATUS`: one thread's status and registers.
pub const NT_PRSTATUS: u32 = 1;
/// `NT_PRFPREG`: one thread's floating-point registers, after its `NT_PRSTATUS`.
pub const NT_PRFPREG: u32 = 2;
/// `NT_PRPSINFO`: process info (pid, command name).
pub const NT_PRPSINFO: u32 = 3;
/// `NT_AUXV`: the auxiliary vector.
pub const NT_AUXV: u32 = 6;
/// `NT_FILE`: file-backed mappings.
pub const NT_FILE: u32 = 0x4649_4c45;

pub use super::proc::AT_ENTRY;
/// `AT_EXECFN`: address of the executable's file name on the initial stack.
pub const AT_EXECFN: u64 = 31;

/// Offset of `pr_pid` in a 64-bit `elf_prstatus`.
pub const PRSTATUS_PID: usize = 32;
/// Offset of `pr_cursig` in a 64-bit `elf_prstatus`.
pub const PRSTATUS_CURSIG: usize = 12;
/// Offset of `pr_reg` in a 64-bit `elf_prstatus`.
pub const PRSTATUS_REG: usize = 112;
/// Offset of `pr_uid` (then `pr_gid`) in a 64-bit `elf_prpsinfo`.
pub const PRPSINFO_UID: usize = 16;
/// Offset of `pr_pid` in a 64-bit `elf_prpsinfo`.
pub const PRPSINFO_PID: usize = 24;
/// Offset of `pr_fname` (16 bytes) in a 64-bit `elf_prpsinfo`.
pub const PRPSINFO_FNAME: usize = 40;

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
pub const MAX_SEGMENTS: usize = 1 << 20;
/// Most threads accepted.
pub const MAX_THREADS: usize = 1 << 16;
/// Most `NT_FILE` entries accepted.
pub const MAX_FILE_MAPPINGS: usize = 1 << 20;
/// Most bytes below `AT_EXECFN` searched for environment strings ([`CoreFile::environ`]).
pub const MAX_ENVIRON_BYTES: u64 = 256 << 10;
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

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        d.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(d: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        d.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The parts of a 64-bit little-endian ELF header goroscope uses.
struct Ehdr {
    e_type: u16,
    machine: u16,
    phoff: u64,
    phnum: usize,
}

type ElfHeader = object::elf::FileHeader64<object::LittleEndian>;
type ProgramHeader = object::elf::ProgramHeader64<object::LittleEndian>;

/// The ELF header, read by `object`: magic, 64-bit little-endian, the program header count
/// (`PN_XNUM` resolved through section header 0) and entry size.
fn parse_ehdr(d: &[u8]) -> Result<Ehdr, String> {
    use object::read::elf::FileHeader;
    let le = object::LittleEndian;
    if d.len() < 4 || d[..4] != *b"\x7fELF" {
        return Err("no ELF magic".into());
    }
    if d.len() < EHDR_SIZE {
        return Err(format!("{} bytes, shorter than an ELF header", d.len()));
    }
    let eh = ElfHeader::parse(d).map_err(|_| "not a 64-bit little-endian ELF file".to_string())?;
    let phnum = eh
        .phnum(le, d)
        .map_err(|_| "program header count (PN_XNUM) points outside the file".to_string())?
        as usize;
    let phentsize = eh.e_phentsize.get(le);
    if phnum > 0 && phentsize as usize != PHDR_SIZE {
        return Err(format!(
            "program header size {phentsize}, expected {PHDR_SIZE}"
        ));
    }
    if phnum > MAX_SEGMENTS {
        return Err(format!("{phnum} program headers"));
    }
    Ok(Ehdr {
        e_type: eh.e_type.get(le).0,
        machine: eh.e_machine.get(le).0,
        phoff: eh.e_phoff.get(le),
        phnum,
    })
}

/// Program headers: `(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz)`, read by
/// `object`. Those past the end of the file (a truncated core) are dropped and reported; the
/// ones before them are kept.
fn parse_phdrs(d: &[u8], eh: &Ehdr, problems: &mut Vec<String>) -> Vec<[u64; 6]> {
    use object::read::ReadRef;
    let le = object::LittleEndian;
    let fit = usize::try_from(eh.phoff)
        .ok()
        .and_then(|o| d.len().checked_sub(o))
        .map_or(0, |room| room / PHDR_SIZE)
        .min(eh.phnum);
    if fit < eh.phnum {
        push_problem(
            problems,
            format!(
                "program headers {fit}..{} are past the end of the file",
                eh.phnum
            ),
        );
    }
    let Ok(phdrs) = d.read_slice_at::<ProgramHeader>(eh.phoff, fit) else {
        return Vec::new();
    };
    phdrs
        .iter()
        .map(|p| {
            [
                u64::from(p.p_type.get(le).0),
                u64::from(p.p_flags.get(le).0),
                p.p_offset.get(le),
                p.p_vaddr.get(le),
                p.p_filesz.get(le),
                p.p_memsz.get(le),
            ]
        })
        .collect()
}

fn push_problem(problems: &mut Vec<String>, p: String) {
    if problems.len() < MAX_PROBLEMS {
        problems.push(p);
    }
}

/// Clamps `[offset, offset+size)` to the file; the number of bytes present.
fn present(file_len: u64, offset: u64, size: u64) -> u64 {
    if offset >= file_len {
        0
    } else {
        size.min(file_len - offset)
    }
}

/// The notes in `d`: `(n_type, name, desc)`; stops at the first malformed one.
fn parse_notes<'a>(
    d: &'a [u8],
    problems: &mut Vec<String>,
    at: u64,
) -> Vec<(u32, &'a [u8], &'a [u8])> {
    let align4 = |n: usize| n.checked_add(3).map(|v| v & !3);
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < d.len() {
        let hdr = (u32_at(d, pos), u32_at(d, pos + 4), u32_at(d, pos + 8));
        let (Some(namesz), Some(descsz), Some(ty)) = hdr else {
            push_problem(
                problems,
                format!("note at file offset {:#x} is cut short", at + pos as u64),
            );
            break;
        };
        let name_start = pos + 12;
        let name_end = name_start.checked_add(namesz as usize);
        let desc_start = name_end.and_then(align4);
        let desc_end = desc_start.and_then(|s| s.checked_add(descsz as usize));
        let (Some(name_end), Some(desc_start), Some(desc_end)) = (name_end, desc_start, desc_end)
        else {
            push_problem(
                problems,
                format!(
                    "note at file offset {:#x} has impossible sizes",
                    at + pos as u64
                ),
            );
            break;
        };
        if desc_end > d.len() {
            push_problem(
                problems,
                format!(
                    "note at file offset {:#x} runs past its segment (the core is truncated?)",
                    at + pos as u64
                ),
            );
            break;
        }
        let mut name = &d[name_start..name_end];
        while let [rest @ .., 0] = name {
            name = rest;
        }
        out.push((ty, name, &d[desc_start..desc_end]));
        pos = match align4(desc_end) {
            Some(p) => p,
            None => break,
        };
    }
    out
}

/// A NUL-terminated string from a fixed-size field.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses an `NT_FILE` descriptor.
fn parse_nt_file(desc: &[u8]) -> Result<Vec<FileMapping>, String> {
    let count = u64_at(desc, 0).ok_or("no count")?;
    let page = u64_at(desc, 8).ok_or("no page size")?;
    if count > MAX_FILE_MAPPINGS as u64 {
        return Err(format!("{count} entries"));
    }
    let count = count as usize;
    let names_at = count
        .checked_mul(24)
        .and_then(|n| n.checked_add(16))
        .ok_or("too many entries")?;
    if names_at > desc.len() {
        return Err(format!(
            "{count} entries do not fit in {} bytes",
            desc.len()
        ));
    }
    let mut names = desc[names_at..].split(|&b| b == 0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let e = 16 + i * 24;
        let (start, end, pgoff) = (u64_at(desc, e), u64_at(desc, e + 8), u64_at(desc, e + 16));
        let (Some(start), Some(end), Some(pgoff)) = (start, end, pgoff) else {
            break;
        };
        let Some(name) = names.next() else {
            return Err(format!("entry {i} has no file name"));
        };
        out.push(FileMapping {
            start,
            end,
            offset: pgoff.saturating_mul(page),
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(out)
}

/// What the notes said.
#[derive(Default)]
struct Parsed {
    threads: Vec<ThreadState>,
    signal: Option<i32>,
    files: Vec<FileMapping>,
    auxv: Vec<(u64, u64)>,
    pid: Option<i32>,
    fname: Option<String>,
    ids: Option<(u32, u32)>,
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
        let file_len = d.len() as u64;
        let mut segments = Vec::new();
        let mut truncated = 0u64;
        let mut note_blobs = Vec::new();
        for &[ty, flags, offset, vaddr, filesz, memsz] in &phdrs {
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
                &mut problems,
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
                        &mut problems,
                        format!("segment at {:#x} overlaps the one before; ignored", s.vaddr),
                    );
                }
                _ => kept.push(s),
            }
        }

        let mut core = Parsed::default();
        let regset = arch.regset_size();
        // Whether the last NT_PRSTATUS gave a thread (its NT_PRFPREG follows it).
        let mut status_kept = false;
        for (off, len) in note_blobs {
            let blob = &d[off as usize..(off + len) as usize];
            for (ty, name, desc) in parse_notes(blob, &mut problems, off) {
                // Core notes are named "CORE" (kernel, gdb, qemu); "LINUX" ones are extra regsets.
                if name != b"CORE" {
                    continue;
                }
                if ty == NT_PRSTATUS {
                    status_kept = false;
                }
                match ty {
                    NT_PRFPREG if status_kept => {
                        if let Some(t) = core.threads.last_mut().filter(|t| t.fp.is_empty()) {
                            t.fp = desc[..desc.len().min(arch.fp_regset_size())].to_vec();
                        }
                    }
                    NT_PRSTATUS => {
                        let regs = desc.get(PRSTATUS_REG..).and_then(|r| Regs::decode(arch, r));
                        let tid = u32_at(desc, PRSTATUS_PID).map(|p| p as i32);
                        match (regs, tid) {
                            (Some(regs), Some(tid)) if core.threads.len() < MAX_THREADS => {
                                if core.signal.is_none() {
                                    core.signal = u16_at(desc, PRSTATUS_CURSIG)
                                        .map(|s| s as i32)
                                        .filter(|&s| s != 0);
                                }
                                let words = desc
                                    .get(PRSTATUS_REG..)
                                    .unwrap_or_default()
                                    .chunks_exact(8)
                                    .take(arch.regset_size() / 8)
                                    .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
                                    .collect();
                                core.threads.push(ThreadState {
                                    tid,
                                    regs,
                                    words,
                                    fp: Vec::new(),
                                });
                                status_kept = true;
                            }
                            (Some(_), Some(_)) => {}
                            _ => push_problem(
                                &mut problems,
                                format!(
                                    "NT_PRSTATUS note of {} bytes is too short for {} registers ({} needed); thread skipped",
                                    desc.len(),
                                    arch,
                                    PRSTATUS_REG + regset
                                ),
                            ),
                        }
                    }
                    NT_PRPSINFO => {
                        core.pid = u32_at(desc, PRPSINFO_PID)
                            .map(|p| p as i32)
                            .filter(|&p| p > 0);
                        core.ids = u32_at(desc, PRPSINFO_UID).zip(u32_at(desc, PRPSINFO_UID + 4));
                        core.fname = desc
                            .get(PRPSINFO_FNAME..PRPSINFO_FNAME + 16)
                            .map(c_string)
                            .filter(|s| !s.is_empty());
                    }
                    NT_AUXV => {
                        core.auxv = super::proc::parse_auxv(desc);
                    }
                    NT_FILE => match parse_nt_file(desc) {
                        Ok(f) => core.files = f,
                        Err(e) => push_problem(
                            &mut problems,
                            format!("NT_FILE note unreadable ({e}); ignored"),
                        ),
                    },
                    _ => {}
                }
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
    pub fn segments(&self) -> &[Segment] {
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
    pub fn auxv_value(&self, key: u64) -> Option<u64> {
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
    pub fn fname(&self) -> Option<&str> {
        self.fname.as_deref()
    }

    /// What was wrong but did not stop the parse (truncation, bad notes).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The size of the file.
    pub fn file_len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Where the executable is, as the core says: the `NT_FILE` mapping holding `AT_ENTRY`,
    /// else the first `NT_FILE` mapping.
    pub fn exe_path_hint(&self) -> Option<&str> {
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
    pub fn environ(&self) -> Vec<String> {
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

/// One read-only file-backed range of the executable, in target addresses.
#[derive(Debug, Clone, Copy)]
struct ExeRange {
    addr: u64,
    len: u64,
    offset: u64,
}

/// A core's memory with the holes filled from the executable: reads try the core, then the
/// executable's read-only `PT_LOAD` segments (text, rodata, pclntab) placed at the load bias.
/// Writable segments never come from the file: their bytes in the file are stale.
pub struct SplicedMemory {
    core: CoreFile,
    exe: Option<(memmap2::Mmap, Vec<ExeRange>)>,
}

impl fmt::Debug for SplicedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplicedMemory")
            .field("core", &self.core)
            .field("exe_ranges", &self.exe.as_ref().map(|e| e.1.len()))
            .finish()
    }
}

impl SplicedMemory {
    /// The core, then the executable at `exe` loaded at `bias`. Checks that the executable
    /// is the core's where the core kept its first page (the ELF header the kernel dumps).
    pub fn new(core: CoreFile, exe: &Path, bias: u64) -> Result<SplicedMemory, CoreError> {
        let io = |e: std::io::Error| CoreError::Io {
            path: exe.to_path_buf(),
            error: e.into(),
        };
        let file = std::fs::File::open(exe).map_err(io)?;
        // SAFETY: read-only map of the executable, as GoBinary does.
        let data = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let mismatch = |why: String| CoreError::ExeMismatch {
            exe: exe.to_path_buf(),
            why,
        };
        let eh = parse_ehdr(&data)
            .map_err(|w| mismatch(format!("not a 64-bit little-endian ELF file: {w}")))?;
        if eh.e_type != ET_EXEC && eh.e_type != ET_DYN {
            return Err(mismatch("not an executable".into()));
        }
        let want = match core.arch {
            Arch::Amd64 => EM_X86_64,
            Arch::Arm64 => EM_AARCH64,
        };
        if eh.machine != want {
            return Err(mismatch(format!(
                "e_machine {}, the core is {}",
                eh.machine, core.arch
            )));
        }
        let mut ignored = Vec::new();
        let mut ranges = Vec::new();
        let flen = data.len() as u64;
        for [ty, flags, offset, vaddr, filesz, _] in parse_phdrs(&data, &eh, &mut ignored) {
            if ty as u32 != PT_LOAD || flags as u32 & PF_W != 0 {
                continue;
            }
            let len = present(flen, offset, filesz);
            if len > 0 {
                ranges.push(ExeRange {
                    addr: vaddr.wrapping_add(bias),
                    len,
                    offset,
                });
            }
        }
        ranges.sort_by_key(|r| r.addr);
        // Where the core kept the first page of the executable's first segment, it must match.
        if let Some(r) = ranges.iter().find(|r| r.offset == 0) {
            let n = r.len.min(4096);
            if let Some(in_core) = core.slice(r.addr, n)
                && in_core != &data[..n as usize]
            {
                return Err(mismatch(format!(
                    "its first page differs from the core's copy at {:#x}",
                    r.addr
                )));
            }
        }
        Ok(SplicedMemory {
            core,
            exe: Some((data, ranges)),
        })
    }

    /// The core.
    pub fn core(&self) -> &CoreFile {
        &self.core
    }

    fn read_exe(&self, addr: u64, buf: &mut [u8]) -> bool {
        let Some((data, ranges)) = &self.exe else {
            return false;
        };
        let Some(i) = ranges.partition_point(|r| r.addr <= addr).checked_sub(1) else {
            return false;
        };
        let r = ranges[i];
        let rel = addr - r.addr;
        let Some(end) = rel.checked_add(buf.len() as u64) else {
            return false;
        };
        if end > r.len {
            return false;
        }
        let start = (r.offset + rel) as usize;
        match data.get(start..start + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }
}

impl MemoryReader for SplicedMemory {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        if self.core.read_at(addr, buf).is_ok() {
            return Ok(());
        }
        // Piecewise: each page from the core if it has it, else from the executable.
        let err = ReadError {
            addr,
            len: buf.len() as u64,
        };
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.checked_add(done as u64).ok_or(err)?;
            let page_end = (a | 0xfff).saturating_add(1);
            let n = ((page_end - a) as usize).min(buf.len() - done);
            let piece = &mut buf[done..done + n];
            if self.core.read_at(a, piece).is_err() && !self.read_exe(a, piece) {
                return Err(err);
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ReadExt;

    /// A minimal core: one PT_NOTE with the given notes, PT_LOADs with the given bytes.
    pub(crate) fn build_core(
        machine: u16,
        notes: &[(u32, &[u8])],
        loads: &[(u64, &[u8], u64)],
    ) -> Vec<u8> {
        let mut note_bytes = Vec::new();
        for (ty, desc) in notes {
            note_bytes.extend_from_slice(&5u32.to_le_bytes());
            note_bytes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            note_bytes.extend_from_slice(&ty.to_le_bytes());
            note_bytes.extend_from_slice(b"CORE\0\0\0\0");
            note_bytes.extend_from_slice(desc);
            while note_bytes.len() % 4 != 0 {
                note_bytes.push(0);
            }
        }
        let phnum = 1 + loads.len();
        let mut out = vec![0u8; EHDR_SIZE + phnum * PHDR_SIZE];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&ET_CORE.to_le_bytes());
        out[18..20].copy_from_slice(&machine.to_le_bytes());
        out[32..40].copy_from_slice(&(EHDR_SIZE as u64).to_le_bytes());
        out[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut body = note_bytes.clone();
        let phdr = |i: usize,
                    ty: u32,
                    flags: u32,
                    off: u64,
                    vaddr: u64,
                    filesz: u64,
                    memsz: u64,
                    out: &mut Vec<u8>| {
            let p = EHDR_SIZE + i * PHDR_SIZE;
            out[p..p + 4].copy_from_slice(&ty.to_le_bytes());
            out[p + 4..p + 8].copy_from_slice(&flags.to_le_bytes());
            out[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            out[p + 16..p + 24].copy_from_slice(&vaddr.to_le_bytes());
            out[p + 32..p + 40].copy_from_slice(&filesz.to_le_bytes());
            out[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        let base = out.len() as u64;
        phdr(0, PT_NOTE, 0, base, 0, note_bytes.len() as u64, 0, &mut out);
        for (i, (vaddr, bytes, memsz)) in loads.iter().enumerate() {
            let off = base + body.len() as u64;
            phdr(
                i + 1,
                PT_LOAD,
                6,
                off,
                *vaddr,
                bytes.len() as u64,
                *memsz,
                &mut out,
            );
            body.extend_from_slice(bytes);
        }
        out.extend_from_slice(&body);
        out
    }

    fn prstatus(arch: Arch, tid: u32, words: &[(usize, u64)]) -> Vec<u8> {
        let mut v = vec![0u8; PRSTATUS_REG + arch.regset_size() + 8];
        v[PRSTATUS_PID..PRSTATUS_PID + 4].copy_from_slice(&tid.to_le_bytes());
        for &(i, w) in words {
            let o = PRSTATUS_REG + i * 8;
            v[o..o + 8].copy_from_slice(&w.to_le_bytes());
        }
        v
    }

    fn open_bytes(bytes: &[u8]) -> Result<CoreFile, CoreError> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("goroscope-core-unit-{}-{n}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        let r = CoreFile::open(&p);
        let _ = std::fs::remove_file(&p);
        r
    }

    #[test]
    fn parses_threads_memory_and_files() {
        let st = prstatus(
            Arch::Arm64,
            77,
            &[(32, 0x71000), (31, 0x4000), (30, 0x72000), (28, 0x9000)],
        );
        let mut nt_file = Vec::new();
        for w in [1u64, 4096, 0x10000, 0x20000, 2] {
            nt_file.extend_from_slice(&w.to_le_bytes());
        }
        nt_file.extend_from_slice(b"/bin/prog\0");
        let auxv: Vec<u8> = [AT_ENTRY, 0x10100, 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let mem: Vec<u8> = (0..64u8).collect();
        // The thread's floating-point registers: V1's low bytes hold 2.5.
        let mut fp = vec![0u8; Arch::Arm64.fp_regset_size()];
        fp[16..24].copy_from_slice(&2.5f64.to_bits().to_le_bytes());
        let bytes = build_core(
            EM_AARCH64,
            &[
                (NT_PRSTATUS, &st),
                (NT_PRFPREG, &fp),
                (NT_AUXV, &auxv),
                (NT_FILE, &nt_file),
            ],
            &[(0x4000, &mem, 128)],
        );
        let c = open_bytes(&bytes).unwrap();
        assert_eq!(c.arch(), Arch::Arm64);
        assert_eq!(c.threads().len(), 1);
        let v1 = Arch::Arm64.dwarf_fp_reg(&c.threads()[0].fp, 65);
        assert_eq!(v1.map(f64::from_bits), Some(2.5));
        assert_eq!(c.threads()[0].tid, 77);
        assert_eq!(c.threads()[0].regs.pc, 0x71000);
        assert_eq!(c.threads()[0].regs.lr, 0x72000);
        assert_eq!(c.auxv_value(AT_ENTRY), Some(0x10100));
        assert_eq!(c.exe_path_hint(), Some("/bin/prog"));
        assert_eq!(c.files()[0].offset, 2 * 4096);
        assert_eq!(c.read_u8(0x4005).unwrap(), 5);
        assert_eq!(
            c.read_u64(0x4038).unwrap(),
            u64::from_le_bytes([56, 57, 58, 59, 60, 61, 62, 63])
        );
        // Beyond p_filesz (64) but inside p_memsz (128): missing.
        assert!(c.read_u8(0x4040).is_err());
        assert!(c.read_u64(0x403c).is_err());
        assert!(c.read_u8(0x3fff).is_err());
        assert_eq!(c.pid(), Some(77));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn rejects_what_is_not_a_core() {
        assert!(matches!(
            open_bytes(b"hello"),
            Err(CoreError::NotElf { .. })
        ));
        let mut b = build_core(EM_X86_64, &[], &[(0x1000, &[1; 8], 8)]);
        assert!(open_bytes(&b).is_ok());
        b[16] = ET_EXEC as u8;
        assert!(matches!(open_bytes(&b), Err(CoreError::NotCore { .. })));
        b[16] = ET_CORE as u8;
        b[18] = 40; // EM_ARM
        assert!(matches!(
            open_bytes(&b),
            Err(CoreError::UnsupportedArch { machine: 40 })
        ));
        let e = open_bytes(&b).unwrap_err().to_string();
        assert!(
            !e.contains('\n') && e.starts_with(char::is_lowercase),
            "{e}"
        );
    }

    #[test]
    fn truncation_and_garbage_never_panic() {
        let st = prstatus(Arch::Amd64, 5, &[(16, 0x401000)]);
        let mem = vec![7u8; 300];
        let bytes = build_core(
            EM_X86_64,
            &[(NT_PRSTATUS, &st), (NT_PRSTATUS, &st)],
            &[(0x1000, &mem, 300)],
        );
        for cut in 0..bytes.len() {
            if let Ok(c) = open_bytes(&bytes[..cut]) {
                let mut b = [0u8; 16];
                let _ = c.read_at(0x1000, &mut b);
                let _ = c.environ();
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut m = bytes.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % m.len() as u64) as usize;
                m[i] = (x >> 32) as u8;
            }
            if let Ok(c) = open_bytes(&m) {
                let mut b = [0u8; 64];
                let _ = c.read_at(0x1000, &mut b);
            }
        }
    }
}
