//! Writing an ELF core of a live process: `goroscope snapshot <pid> --core FILE`.
//!
//! [`capture`] runs inside the frozen window (every thread stopped by the live backend): it
//! reads `/proc/PID/maps`, the registers of every thread, and the bytes of every mapping the
//! kernel itself would dump by default (`coredump_filter` 0x33): readable mappings that are
//! writable or anonymous, plus the first page of each file mapping at offset 0 (the ELF
//! header). Read-only file-backed mappings (text, rodata) are described but not copied, as
//! in kernel cores; `NT_FILE` names their files, so goroscope (through [`super::SplicedMemory`])
//! and gdb read them from there. [`write`] then writes the file after the thaw: one `PT_NOTE`
//! (`NT_PRSTATUS` and, when read, `NT_PRFPREG` for each thread, the main thread first;
//! `NT_PRPSINFO`, `NT_AUXV`, `NT_FILE`)
//! and one `PT_LOAD` a mapping. Pages that cannot be read are written as zeros, and all-zero
//! pages are left as holes in a sparse file, both as the kernel does.
//!
//! Memory: everything copied is held in memory until it is written (it must be taken while
//! the process is stopped, and writing to disk in the window would lengthen the pause).

use super::{
    NT_AUXV, NT_FILE, NT_PRFPREG, NT_PRPSINFO, NT_PRSTATUS, PRPSINFO_FNAME, PRPSINFO_PID,
    PRPSINFO_UID, PRSTATUS_PID, PRSTATUS_REG,
};
use crate::arch::{Arch, Regs};
use crate::target::ThreadState;
use crate::target::proc::{self, Mapping};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

const PAGE: u64 = 4096;
/// Largest piece read from `/proc/PID/mem` at once.
const CHUNK: u64 = 1 << 20;

impl Mapping {
    fn readable(&self) -> bool {
        self.perms.starts_with('r')
    }
    fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    fn file_backed(&self) -> bool {
        self.path.starts_with('/')
    }
    /// `PF_*` flags.
    fn flags(&self) -> u32 {
        let b = self.perms.as_bytes();
        (if b.first() == Some(&b'r') { 4 } else { 0 })
            | (if b.get(1) == Some(&b'w') { 2 } else { 0 })
            | (if b.get(2) == Some(&b'x') { 1 } else { 0 })
    }
    /// How many bytes of it a core holds: all of it, the ELF header page, or nothing.
    fn dump_len(&self) -> u64 {
        let len = self.end - self.start;
        if !self.readable()
            || matches!(
                self.path.as_str(),
                "[vvar]" | "[vvar_vclock]" | "[vsyscall]"
            )
        {
            0
        } else if self.writable() || !self.file_backed() {
            len
        } else if self.offset == 0 {
            len.min(PAGE)
        } else {
            0
        }
    }
}

/// Everything a core needs, taken in the frozen window.
#[derive(Debug)]
pub struct Captured {
    /// Architecture.
    pub arch: Arch,
    /// Process id.
    pub pid: i32,
    /// Every mapping, in address order.
    pub maps: Vec<Mapping>,
    /// Copied bytes of each mapping (`dump_len` bytes; unreadable pages zero).
    pub bytes: Vec<Vec<u8>>,
    /// Threads: tid, raw register set and raw floating-point register set (empty when not
    /// read), the main thread first.
    pub threads: Vec<(i32, Vec<u8>, Vec<u8>)>,
    /// `/proc/PID/auxv`.
    pub auxv: Vec<u8>,
    /// `/proc/PID/comm` (at most 15 bytes).
    pub comm: String,
    /// `/proc/PID/cmdline`, NULs as spaces.
    pub cmdline: String,
    /// Parent pid.
    pub ppid: i32,
    /// Real uid and gid (`Uid:`, `Gid:` of `/proc/PID/status`), as the kernel's `pr_uid`.
    pub ids: (u32, u32),
}

impl Captured {
    /// Bytes of memory copied.
    pub(crate) fn copied_bytes(&self) -> u64 {
        self.bytes.iter().map(|b| b.len() as u64).sum()
    }
}

/// A raw register set from decoded registers, for threads whose full set could not be read
/// again: pc, sp, frame pointer, link register and g, the rest zero (segment selectors set
/// so debuggers accept it).
pub fn encode_regs(arch: Arch, r: &Regs) -> Vec<u8> {
    let mut v = vec![0u8; arch.regset_size()];
    let mut put = |i: usize, w: u64| v[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    match arch {
        Arch::Amd64 => {
            put(16, r.pc);
            put(19, r.sp);
            put(4, r.fp);
            put(1, r.g);
            put(17, 0x33); // cs
            put(20, 0x2b); // ss
            put(18, 0x246); // eflags
        }
        Arch::Arm64 => {
            put(32, r.pc);
            put(31, r.sp);
            put(29, r.fp);
            put(30, r.lr);
            put(28, r.g);
        }
    }
    v
}

/// Takes everything for a core of `pid`, whose `threads` are stopped. Call it inside the
/// frozen window, on the thread that froze the process.
pub fn capture(pid: i32, arch: Arch, threads: &[ThreadState]) -> io::Result<Captured> {
    let maps = proc::maps(pid)?;
    let mem = File::open(format!("/proc/{pid}/mem"))?;
    let pagemap = File::open(format!("/proc/{pid}/pagemap")).ok();
    let mut bytes = Vec::with_capacity(maps.len());
    for m in &maps {
        let n = m.dump_len();
        let mut buf = vec![0u8; n as usize];
        // Anonymous pages never touched read as zeros: only read runs of pages that are
        // present or swapped (pagemap bits 63 and 62), so a Go heap's large reserved-but-unused
        // arenas cost nothing in the frozen window. Without pagemap, read everything.
        let runs = match (&pagemap, m.file_backed()) {
            (Some(pm), false) => used_runs(pm, m.start, n).unwrap_or_else(|| vec![(0, n)]),
            _ => vec![(0, n)],
        };
        for (run_off, run_len) in runs {
            read_run(&mem, m.start, &mut buf, run_off, run_len);
        }
        bytes.push(buf);
    }
    let mut ts: Vec<(i32, Vec<u8>, Vec<u8>)> = threads
        .iter()
        .map(|t| {
            // The whole register set the freeze read; the decoded registers when it has none.
            let raw = if t.words.len() * 8 >= arch.regset_size() {
                t.words
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .take(arch.regset_size())
                    .collect()
            } else {
                encode_regs(arch, &t.regs)
            };
            (t.tid, raw, t.fp.clone())
        })
        .collect();
    ts.sort_by_key(|(tid, _, _)| (*tid != pid, *tid));
    let status = proc::status(pid).ok();
    let ppid = status.as_ref().map_or(0, |s| s.ppid);
    let cmdline = proc::cmdline(pid).unwrap_or_default();
    let ids = status
        .as_ref()
        .map_or((u32::MAX, u32::MAX), |s| (s.ruid, s.rgid));
    Ok(Captured {
        arch,
        pid,
        maps,
        bytes,
        threads: ts,
        auxv: proc::auxv_bytes(pid).unwrap_or_default(),
        comm: proc::comm(pid).unwrap_or_default(),
        cmdline: String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .trim_end()
            .to_string(),
        ppid,
        ids,
    })
}

/// Reads `[off, off+n)` of a mapping starting at `start` into `buf`, in chunks; pages that
/// cannot be read stay zero.
fn read_run(mem: &File, start: u64, buf: &mut [u8], off: u64, n: u64) {
    let mut done = 0u64;
    while done < n {
        let len = (n - done).min(CHUNK);
        let at = off + done;
        let dst = &mut buf[at as usize..(at + len) as usize];
        if mem.read_exact_at(dst, start + at).is_err() {
            for p in (0..len).step_by(PAGE as usize) {
                let pl = (len - p).min(PAGE) as usize;
                let d = &mut dst[p as usize..p as usize + pl];
                if mem.read_exact_at(d, start + at + p).is_err() {
                    d.fill(0);
                }
            }
        }
        done += len;
    }
}

/// Runs `(offset, len)` of pages in `[start, start+n)` that are present or swapped.
fn used_runs(pagemap: &File, start: u64, n: u64) -> Option<Vec<(u64, u64)>> {
    let pages = n.div_ceil(PAGE);
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut entries = vec![0u8; (pages.min(1 << 16) * 8) as usize];
    let mut p = 0u64;
    while p < pages {
        let k = (pages - p).min(1 << 16);
        let b = &mut entries[..(k * 8) as usize];
        pagemap.read_exact_at(b, (start / PAGE + p) * 8).ok()?;
        for (i, e) in b.chunks_exact(8).enumerate() {
            let e = u64::from_le_bytes(e.try_into().unwrap());
            if e & (3 << 62) == 0 {
                continue;
            }
            let off = (p + i as u64) * PAGE;
            let len = PAGE.min(n - off);
            match runs.last_mut() {
                Some((o, l)) if *o + *l == off => *l += len,
                _ => runs.push((off, len)),
            }
        }
        p += k;
    }
    Some(runs)
}

fn note(out: &mut Vec<u8>, ty: u32, desc: &[u8]) {
    out.extend_from_slice(&5u32.to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(b"CORE\0\0\0\0");
    out.extend_from_slice(desc);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn prstatus(c: &Captured, tid: i32, regs: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; PRSTATUS_REG + c.arch.regset_size() + 8];
    d[PRSTATUS_PID..PRSTATUS_PID + 4].copy_from_slice(&tid.to_le_bytes());
    d[PRSTATUS_PID + 4..PRSTATUS_PID + 8].copy_from_slice(&c.ppid.to_le_bytes());
    d[PRSTATUS_PID + 8..PRSTATUS_PID + 12].copy_from_slice(&c.pid.to_le_bytes()); // pgrp: unknown, pid
    d[PRSTATUS_PID + 12..PRSTATUS_PID + 16].copy_from_slice(&c.pid.to_le_bytes());
    d[PRSTATUS_REG..PRSTATUS_REG + regs.len()].copy_from_slice(regs);
    d
}

fn prpsinfo(c: &Captured) -> Vec<u8> {
    let mut d = vec![0u8; 136];
    d[1] = b'R'; // pr_sname
    d[PRPSINFO_PID..PRPSINFO_PID + 4].copy_from_slice(&c.pid.to_le_bytes());
    d[PRPSINFO_PID + 4..PRPSINFO_PID + 8].copy_from_slice(&c.ppid.to_le_bytes());
    d[PRPSINFO_UID..PRPSINFO_UID + 4].copy_from_slice(&c.ids.0.to_le_bytes());
    d[PRPSINFO_UID + 4..PRPSINFO_UID + 8].copy_from_slice(&c.ids.1.to_le_bytes());
    let name = c.comm.as_bytes();
    let n = name.len().min(15);
    d[PRPSINFO_FNAME..PRPSINFO_FNAME + n].copy_from_slice(&name[..n]);
    let args = c.cmdline.as_bytes();
    let n = args.len().min(79);
    d[56..56 + n].copy_from_slice(&args[..n]);
    d
}

fn nt_file(c: &Captured) -> Vec<u8> {
    let files: Vec<&Mapping> = c.maps.iter().filter(|m| m.file_backed()).collect();
    let mut d = Vec::new();
    d.extend_from_slice(&(files.len() as u64).to_le_bytes());
    d.extend_from_slice(&PAGE.to_le_bytes());
    for m in &files {
        for w in [m.start, m.end, m.offset / PAGE] {
            d.extend_from_slice(&w.to_le_bytes());
        }
    }
    for m in &files {
        d.extend_from_slice(m.path.as_bytes());
        d.push(0);
    }
    d
}

/// Writes the captured process as an ELF core; returns the file's size.
pub fn write(path: &Path, c: &Captured) -> io::Result<u64> {
    let mut notes = Vec::new();
    let mut threads = c.threads.iter();
    // A thread's NT_PRFPREG follows its NT_PRSTATUS, as the kernel writes them.
    let thread_notes = |notes: &mut Vec<u8>, (tid, regs, fp): &(i32, Vec<u8>, Vec<u8>)| {
        note(notes, NT_PRSTATUS, &prstatus(c, *tid, regs));
        if !fp.is_empty() {
            note(notes, NT_PRFPREG, fp);
        }
    };
    if let Some(t) = threads.next() {
        thread_notes(&mut notes, t);
    }
    note(&mut notes, NT_PRPSINFO, &prpsinfo(c));
    if !c.auxv.is_empty() {
        note(&mut notes, NT_AUXV, &c.auxv);
    }
    note(&mut notes, NT_FILE, &nt_file(c));
    for t in threads {
        thread_notes(&mut notes, t);
    }

    let phnum = 1 + c.maps.len();
    if phnum >= 0xffff {
        return Err(io::Error::other(format!(
            "{} mappings: too many for a core without PN_XNUM",
            c.maps.len()
        )));
    }
    let headers = 64 + phnum as u64 * 56;
    let notes_off = headers;
    let mut data_off = (notes_off + notes.len() as u64).div_ceil(PAGE) * PAGE;

    let mut eh = vec![0u8; 64];
    eh[..4].copy_from_slice(b"\x7fELF");
    eh[4] = 2; // ELFCLASS64
    eh[5] = 1; // little-endian
    eh[6] = 1; // EV_CURRENT
    eh[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    let machine: u16 = match c.arch {
        Arch::Amd64 => 62,
        Arch::Arm64 => 183,
    };
    eh[18..20].copy_from_slice(&machine.to_le_bytes());
    eh[20..24].copy_from_slice(&1u32.to_le_bytes());
    eh[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    eh[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    eh[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    eh[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());

    let mut ph = Vec::with_capacity(phnum * 56);
    let mut phdr =
        |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64| {
            ph.extend_from_slice(&ty.to_le_bytes());
            ph.extend_from_slice(&flags.to_le_bytes());
            for w in [off, vaddr, 0, filesz, memsz, align] {
                ph.extend_from_slice(&w.to_le_bytes());
            }
        };
    phdr(4, 0, notes_off, 0, notes.len() as u64, 0, 4);
    let mut offsets = Vec::with_capacity(c.maps.len());
    for (m, b) in c.maps.iter().zip(&c.bytes) {
        phdr(
            1,
            m.flags(),
            data_off,
            m.start,
            b.len() as u64,
            m.end - m.start,
            PAGE,
        );
        offsets.push(data_off);
        data_off += (b.len() as u64).div_ceil(PAGE) * PAGE;
    }

    let mut f = File::create(path)?;
    f.write_all(&eh)?;
    f.write_all(&ph)?;
    f.write_all(&notes)?;
    for (b, off) in c.bytes.iter().zip(offsets) {
        // All-zero pages stay holes (a sparse file), like the kernel's dump_skip.
        for (i, page) in b.chunks(PAGE as usize).enumerate() {
            if page.iter().any(|&x| x != 0) {
                f.seek(SeekFrom::Start(off + i as u64 * PAGE))?;
                f.write_all(page)?;
            }
        }
    }
    f.set_len(data_off)?;
    f.sync_all()?;
    Ok(data_off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::MemoryReader;
    use crate::target::core::CoreFile;
    use crate::target::proc::parse_maps;

    #[test]
    fn maps_parse_and_choose() {
        let maps = parse_maps(
            "00400000-00401000 r--p 00000000 08:01 123 /bin/x\n\
             00401000-00500000 r-xp 00001000 08:01 123 /bin/x\n\
             00600000-00610000 rw-p 00100000 08:01 123 /bin/x\n\
             c000000000-c004000000 rw-p 00000000 00:00 0 \n\
             7ffd000-7ffe000 r--p 00000000 00:00 0  [vvar]\n\
             7fff000-8000000 rw-p 00000000 00:00 0  [stack]\n",
        );
        let lens: Vec<u64> = maps.iter().map(|m| m.dump_len()).collect();
        assert_eq!(lens, vec![4096, 0, 0x10000, 0x4000000, 0, 0x1000]);
        assert_eq!(maps[5].path, "[stack]");
        assert_eq!(maps[3].path, "");
    }

    #[test]
    fn written_core_reads_back() {
        let regs = Regs {
            pc: 0x401000,
            sp: 0x7fff100,
            fp: 0x7fff180,
            lr: 0,
            g: 0xc000002000,
        };
        let mut stack = vec![0u8; 0x1000];
        stack[0x100..0x108].copy_from_slice(&0xdead_beefu64.to_le_bytes());
        let c = Captured {
            arch: Arch::Amd64,
            pid: 42,
            maps: parse_maps(
                "00400000-00401000 r--p 00000000 08:01 1 /bin/x\n07fff000-08000000 rw-p 00000000 00:00 0  [stack]\n",
            ),
            bytes: vec![
                b"\x7fELF"
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, 4092))
                    .collect(),
                stack,
            ],
            threads: vec![
                (42, encode_regs(Arch::Amd64, &regs), Vec::new()),
                (
                    43,
                    encode_regs(Arch::Amd64, &Regs::default()),
                    vec![7u8; Arch::Amd64.fp_regset_size()],
                ),
            ],
            auxv: [9u64, 0x401000, 0, 0]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect(),
            comm: "x".into(),
            cmdline: "/bin/x a".into(),
            ppid: 1,
            ids: (0, 0),
        };
        let dir = std::env::temp_dir().join(format!("goroscope-core-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("w.core");
        write(&p, &c).unwrap();
        let core = CoreFile::open(&p).unwrap();
        assert!(core.problems().is_empty(), "{:?}", core.problems());
        assert_eq!(core.threads().len(), 2);
        assert_eq!(core.threads()[0].tid, 42);
        assert_eq!(core.threads()[0].regs, regs);
        assert!(core.threads()[0].fp.is_empty());
        assert_eq!(
            core.threads()[1].fp,
            vec![7u8; Arch::Amd64.fp_regset_size()]
        );
        assert_eq!(core.pid(), Some(42));
        assert_eq!(core.fname(), Some("x"));
        assert_eq!(core.exe_path_hint(), Some("/bin/x"));
        let mut b = [0u8; 8];
        core.read_at(0x7fff100, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0xdead_beef);
        core.read_at(0x400000, &mut b[..4]).unwrap();
        assert_eq!(&b[..4], b"\x7fELF");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
