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
    let p = std::env::temp_dir().join(format!("goroscope-core-unit-{}-{n}", std::process::id()));
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
