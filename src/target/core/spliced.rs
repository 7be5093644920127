//! [`SplicedMemory`]: a core's memory with the holes filled from the executable.

use super::{
    CoreError, CoreFile, EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC, PF_W, PT_LOAD, parse_ehdr,
    parse_phdrs, present,
};
use crate::arch::Arch;
use crate::target::{MemoryReader, ReadError};
use std::fmt;
use std::path::Path;

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

/// Copies from the core (and the executable behind it), range by range.
impl crate::target::CopyInto for SplicedMemory {
    fn copy_into(&self, ranges: &[(u64, u64)], image: &mut crate::target::image::MemoryImage) {
        for &(a, l) in ranges {
            let Ok(n) = usize::try_from(l) else { continue };
            let mut buf = vec![0u8; n];
            if self.read_at(a, &mut buf).is_ok() {
                image.insert(a, buf);
            }
        }
    }
}
