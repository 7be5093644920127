//! The ELF parts of a core read by hand, each bounded by the file: the header, program
//! headers, notes and the `NT_FILE` table.

use super::{
    EHDR_SIZE, FileMapping, MAX_FILE_MAPPINGS, MAX_PROBLEMS, MAX_SEGMENTS, NT_AUXV, NT_FILE,
    NT_PRFPREG, NT_PRPSINFO, NT_PRSTATUS, PHDR_SIZE,
};
use super::{
    MAX_THREADS, PRPSINFO_FNAME, PRPSINFO_PID, PRPSINFO_UID, PRSTATUS_CURSIG, PRSTATUS_PID,
    PRSTATUS_REG,
};
use crate::arch::{Arch, Regs};
use crate::target::{ThreadState, proc};

pub(super) fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        d.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
pub(super) fn u32_at(d: &[u8], off: usize) -> Option<u32> {
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
pub(super) struct Ehdr {
    pub(super) e_type: u16,
    pub(super) machine: u16,
    pub(super) phoff: u64,
    pub(super) phnum: usize,
}

type ElfHeader = object::elf::FileHeader64<object::LittleEndian>;
type ProgramHeader = object::elf::ProgramHeader64<object::LittleEndian>;

/// The ELF header, read by `object`: magic, 64-bit little-endian, the program header count
/// (`PN_XNUM` resolved through section header 0) and entry size.
pub(super) fn parse_ehdr(d: &[u8]) -> Result<Ehdr, String> {
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
pub(super) fn parse_phdrs(d: &[u8], eh: &Ehdr, problems: &mut Vec<String>) -> Vec<[u64; 6]> {
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

pub(super) fn push_problem(problems: &mut Vec<String>, p: String) {
    if problems.len() < MAX_PROBLEMS {
        problems.push(p);
    }
}

/// Clamps `[offset, offset+size)` to the file; the number of bytes present.
pub(super) fn present(file_len: u64, offset: u64, size: u64) -> u64 {
    if offset >= file_len {
        0
    } else {
        size.min(file_len - offset)
    }
}

/// The notes in `d`: `(n_type, name, desc)`; stops at the first malformed one.
pub(super) fn parse_notes<'a>(
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
pub(super) fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses an `NT_FILE` descriptor.
pub(super) fn parse_nt_file(desc: &[u8]) -> Result<Vec<FileMapping>, String> {
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
pub(super) struct Parsed {
    pub(super) threads: Vec<ThreadState>,
    pub(super) signal: Option<i32>,
    pub(super) files: Vec<FileMapping>,
    pub(super) auxv: Vec<(u64, u64)>,
    pub(super) pid: Option<i32>,
    pub(super) fname: Option<String>,
    pub(super) ids: Option<(u32, u32)>,
    /// Whether the last `NT_PRSTATUS` gave a thread (its `NT_PRFPREG` follows it).
    status_kept: bool,
}

impl Parsed {
    /// Takes what a `CORE` note says: a thread's registers and the signal (`NT_PRSTATUS`), its
    /// floating-point registers (`NT_PRFPREG`, right after its `NT_PRSTATUS`), the process (`NT_PRPSINFO`), the auxiliary vector (`NT_AUXV`) and the file mappings
    /// (`NT_FILE`); what is unreadable goes to `problems`.
    pub(super) fn note(&mut self, arch: Arch, ty: u32, desc: &[u8], problems: &mut Vec<String>) {
        if ty == NT_PRSTATUS {
            self.status_kept = false;
        }
        match ty {
            NT_PRFPREG if self.status_kept => {
                if let Some(t) = self.threads.last_mut().filter(|t| t.fp.is_empty()) {
                    t.fp = desc[..desc.len().min(arch.fp_regset_size())].to_vec();
                }
            }
            NT_PRSTATUS => {
                let regs = desc.get(PRSTATUS_REG..).and_then(|r| Regs::decode(arch, r));
                let tid = u32_at(desc, PRSTATUS_PID).map(|p| p as i32);
                match (regs, tid) {
                    (Some(regs), Some(tid)) if self.threads.len() < MAX_THREADS => {
                        if self.signal.is_none() {
                            self.signal = u16_at(desc, PRSTATUS_CURSIG)
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
                        self.threads.push(ThreadState {
                            tid,
                            regs,
                            words,
                            fp: Vec::new(),
                        });
                        self.status_kept = true;
                    }
                    (Some(_), Some(_)) => {}
                    _ => push_problem(
                        problems,
                        format!(
                            "NT_PRSTATUS note of {} bytes is too short for {} registers ({} needed); thread skipped",
                            desc.len(),
                            arch,
                            PRSTATUS_REG + arch.regset_size()
                        ),
                    ),
                }
            }
            NT_PRPSINFO => {
                self.pid = u32_at(desc, PRPSINFO_PID)
                    .map(|p| p as i32)
                    .filter(|&p| p > 0);
                self.ids = u32_at(desc, PRPSINFO_UID).zip(u32_at(desc, PRPSINFO_UID + 4));
                self.fname = desc
                    .get(PRPSINFO_FNAME..PRPSINFO_FNAME + 16)
                    .map(c_string)
                    .filter(|s| !s.is_empty());
            }
            NT_AUXV => {
                self.auxv = proc::parse_auxv(desc);
            }
            NT_FILE => match parse_nt_file(desc) {
                Ok(f) => self.files = f,
                Err(e) => push_problem(problems, format!("NT_FILE note unreadable ({e}); ignored")),
            },
            _ => {}
        }
    }
}
