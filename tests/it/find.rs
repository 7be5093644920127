//! Symbol-less discovery (`goroscope::runtime::find`) against real binaries: for every
//! installed toolchain a probe is built twice, as is and with `-ldflags=-s -w`, for amd64 and
//! arm64; on the stripped one, moduledata and `allgs` found without symbols must be the
//! addresses the unstripped twin's `.symtab` names. One live test runs the stripped amd64
//! probes and validates `allgs` against their memory.

use crate::support;

use goroscope::binary::GoBinary;
use goroscope::runtime::find::{self, AllgsFound, FindError};
use goroscope::runtime::layout::{F, Layout};
use goroscope::runtime::tables::layout_table;
use goroscope::target::{MemoryReader, ReadError, ReadExt};
use object::{Object, ObjectSection};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::probe::{ARCHES, build_probe, build_probe_mode};
use support::toolchains::{self, Toolchain};

fn table_layout(bin: &GoBinary) -> Layout {
    let t = layout_table(bin.version.minor)
        .unwrap_or_else(|| panic!("no layout table for {}", bin.version));
    Layout::from_table(t)
}

/// The file as the loader maps it before the program runs: section bytes, zeros for
/// `.bss`/`.noptrbss`. No relocations (the probes are not PIE).
struct FileMem<'a>(&'a GoBinary);

impl MemoryReader for FileMem<'_> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let err = ReadError {
            addr,
            len: buf.len() as u64,
        };
        if let Some(b) = self.0.read_static(addr, buf.len() as u64) {
            buf.copy_from_slice(b);
            return Ok(());
        }
        let elf = self.0.elf();
        let end = addr.checked_add(buf.len() as u64).ok_or(err)?;
        let nobits = elf.sections().any(|s| {
            s.kind() == object::SectionKind::UninitializedData
                && s.address() <= addr
                && end <= s.address() + s.size()
        });
        if !nobits {
            return Err(err);
        }
        buf.fill(0);
        Ok(())
    }
}

struct Twins {
    full: GoBinary,
    stripped: GoBinary,
}

fn twins(tc: &Toolchain, arch: &str) -> Twins {
    let full = GoBinary::open(&build_probe(tc, arch, "")).unwrap();
    let stripped = GoBinary::open(&build_probe(tc, arch, "-s -w")).unwrap();
    assert!(full.has_symbols() && full.has_dwarf);
    assert!(
        !stripped.has_symbols() && !stripped.has_dwarf,
        "{} {arch}: the -s -w build has symbols",
        tc.name()
    );
    Twins { full, stripped }
}

fn sym(bin: &GoBinary, name: &str) -> u64 {
    bin.symbol(name)
        .unwrap_or_else(|| panic!("no {name} in {}", bin.path.display()))
        .addr
}

/// An address as (section name, offset in it).
///
/// The twins are not laid out identically: the stripped one's buildinfo records
/// `-ldflags="-s -w"`, so `.go.buildinfo` grows and every data section after it moves (by 0x20
/// or 0x1020 bytes in the probes). Addresses are therefore compared section-relative.
fn loc(bin: &GoBinary, addr: u64) -> (String, u64) {
    let elf = bin.elf();
    let s = elf
        .sections()
        .find(|s| s.address() != 0 && s.address() <= addr && addr < s.address() + s.size())
        .unwrap_or_else(|| panic!("{addr:#x} is in no section of {}", bin.path.display()));
    (s.name().unwrap().to_string(), addr - s.address())
}

/// The address in `stripped` of the symbol `name` of `full`, via its section-relative location.
fn twin_addr(full: &GoBinary, stripped: &GoBinary, name: &str) -> u64 {
    let (sect, off) = loc(full, sym(full, name));
    let elf = stripped.elf();
    let s = elf
        .section_by_name(&sect)
        .unwrap_or_else(|| panic!("no {sect} in {}", stripped.path.display()));
    s.address() + off
}

/// Checks one toolchain and arch statically; returns a description of what failed.
fn check_static(tc: &Toolchain, arch: &str) -> Result<(), String> {
    let Twins { full, mut stripped } = twins(tc, arch);
    let what = format!("{} {arch}", tc.name());
    let layout = table_layout(&stripped);
    let want_md = twin_addr(&full, &stripped, "runtime.firstmoduledata");
    let md = find::moduledata_addr(&stripped, &layout)
        .map_err(|e| format!("{what}: moduledata: {e}"))?;
    if md != want_md {
        return Err(format!(
            "{what}: moduledata {md:#x}, symtab says {want_md:#x}"
        ));
    }
    // The unstripped twin finds the same (its moduledata is at the same address).
    let md_full = find::moduledata_addr(&full, &layout)
        .map_err(|e| format!("{what} (unstripped): moduledata: {e}"))?;
    if md_full != sym(&full, "runtime.firstmoduledata") {
        return Err(format!(
            "{what} (unstripped): moduledata {md_full:#x}, symtab says {:#x}",
            sym(&full, "runtime.firstmoduledata")
        ));
    }
    if tc.minor() >= 26 && stripped.go_module_section != Some(md) {
        return Err(format!(
            "{what}: go1.26+ without a .go.module section at moduledata"
        ));
    }

    // Text base from moduledata read from the file, as the runtime would see it.
    let text = find::read_static_u64(&stripped, md + layout.off(F::ModText).unwrap())
        .ok_or("text unreadable")?;
    let want_text = twin_addr(&full, &stripped, "runtime.text");
    if text != want_text {
        return Err(format!(
            "{what}: moduledata.text {text:#x}, runtime.text is {want_text:#x}"
        ));
    }
    if stripped.pclntab.text_start() == 0
        && find::allgadd_refs(&stripped, 0) != Err(FindError::TextNotSet)
    {
        return Err(format!(
            "{what}: allgadd_refs without a text start did not fail with TextNotSet"
        ));
    }
    stripped.pclntab.set_text_start(text);

    let refs = find::allgadd_refs(&stripped, 0).map_err(|e| format!("{what}: {e}"))?;
    eprintln!(
        "{what}: moduledata {md:#x}, text {text:#x}, runtime.allgadd references {} addresses",
        refs.len()
    );
    let cands = find::allgs_candidates(&refs);
    let allgs = twin_addr(&full, &stripped, "runtime.allgs");
    if cands != [allgs] {
        return Err(format!(
            "{what}: allgs candidates {cands:x?}, symtab says {allgs:#x}; refs {refs:x?}"
        ));
    }
    for name in ["runtime.allglen", "runtime.allgptr"] {
        let want = twin_addr(&full, &stripped, name);
        if !refs.contains(&want) {
            return Err(format!(
                "{what}: runtime.allgadd does not reference {name} ({want:#x}); refs {refs:x?}"
            ));
        }
    }
    // With the file's (zero) .bss the slice is empty but well formed; nothing can be said
    // about allglen/allgptr.
    let found =
        find::allgs_addr(&stripped, &FileMem(&stripped), 0).map_err(|e| format!("{what}: {e}"))?;
    if found
        != (AllgsFound {
            allgs,
            allglen: None,
            allgptr: None,
        })
    {
        return Err(format!("{what}: allgs_addr over the file gave {found:x?}"));
    }
    // Bias: the same binary seen at another load address gives the same answer, shifted.
    let bias = 0x1000_0000u64;
    stripped.pclntab.set_text_start(text + bias);
    let refs_biased = find::allgadd_refs(&stripped, bias).map_err(|e| format!("{what}: {e}"))?;
    if refs_biased != refs {
        return Err(format!("{what}: refs differ under a load bias"));
    }
    Ok(())
}

#[test]
fn stripped_twins_match_symbols() {
    let tcs = toolchains::require_toolchains();
    let mut failures = Vec::new();
    for tc in &tcs {
        for arch in ARCHES {
            if let Err(e) = check_static(tc, arch) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn moduledata_validation_rejects_wrong_addresses() {
    let tc = toolchains::require_toolchains().pop().unwrap();
    for arch in ARCHES {
        let Twins { full, stripped } = twins(&tc, arch);
        let layout = table_layout(&stripped);
        let md = twin_addr(&full, &stripped, "runtime.firstmoduledata");
        find::check_moduledata(&stripped, &layout, md).unwrap();
        for wrong in [
            md + 8,
            md - 8,
            twin_addr(&full, &stripped, "runtime.allgs"),
            0,
        ] {
            assert!(
                find::check_moduledata(&stripped, &layout, wrong).is_err(),
                "{arch}: {wrong:#x} accepted"
            );
        }
    }
}

/// Kills and reaps the probe on every exit path.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(probe: &Path) -> Running {
    let mut child = Running(
        Command::new(probe)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", probe.display())),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("probe did not print READY within 30s");
    assert_eq!(line.trim(), "READY", "probe said {line:?}");
    child
}

#[test]
fn live_stripped_amd64() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: the host is not amd64");
        return;
    }
    for tc in toolchains::require_toolchains() {
        let Twins { full, mut stripped } = twins(&tc, "amd64");
        let what = tc.name();
        let child = start(&stripped.path.clone());
        let pid = child.0.id() as i32;
        let live = goroscope::target::live::LiveProcess::open(pid).unwrap();
        let layout = table_layout(&stripped);
        let md = find::moduledata_addr(&stripped, &layout).unwrap(); // not PIE: bias 0
        assert_eq!(
            live.read_u64(md).unwrap(),
            stripped.pclntab_addr,
            "{what}: live pcHeader"
        );
        let text = live.read_u64(md + layout.off(F::ModText).unwrap()).unwrap();
        stripped.pclntab.set_text_start(text);
        let found = find::allgs_addr(&stripped, &live, 0).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            found.allgs,
            twin_addr(&full, &stripped, "runtime.allgs"),
            "{what}"
        );
        assert_eq!(
            found.allglen,
            Some(twin_addr(&full, &stripped, "runtime.allglen")),
            "{what}"
        );
        assert_eq!(
            found.allgptr,
            Some(twin_addr(&full, &stripped, "runtime.allgptr")),
            "{what}"
        );
        let len = live.read_u64(found.allgs + 8).unwrap();
        assert!(len >= 6, "{what}: len(allgs) = {len}");
        eprintln!("{what}: live pid {pid}: {found:x?}, len(allgs) {len}");
        drop(child);
    }
}

/// Load bias of a running PIE: `AT_ENTRY` from `/proc/PID/auxv` minus the ELF entry.
fn load_bias(pid: i32, bin: &GoBinary) -> u64 {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).unwrap();
    let entry = auxv
        .chunks_exact(16)
        .find(|p| u64::from_le_bytes(p[..8].try_into().unwrap()) == 9)
        .map(|p| u64::from_le_bytes(p[8..].try_into().unwrap()))
        .expect("no AT_ENTRY");
    entry - bin.elf().entry()
}

#[test]
fn live_stripped_pie_amd64() {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipped: the host is not amd64");
        return;
    }
    for tc in toolchains::require_toolchains() {
        let what = format!("{} pie", tc.name());
        let full = GoBinary::open(&build_probe_mode(&tc, "amd64", "", "pie")).unwrap();
        let mut stripped = GoBinary::open(&build_probe_mode(&tc, "amd64", "-s -w", "pie")).unwrap();
        assert!(stripped.is_pie && !stripped.has_symbols(), "{what}");
        let layout = table_layout(&stripped);
        // Static: moduledata from the file (through R_X86_64_RELATIVE addends).
        let md =
            find::moduledata_addr(&stripped, &layout).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            md,
            twin_addr(&full, &stripped, "runtime.firstmoduledata"),
            "{what}"
        );

        let child = start(&stripped.path.clone());
        let pid = child.0.id() as i32;
        let bias = load_bias(pid, &stripped);
        assert_ne!(bias, 0, "{what}: a PIE loaded at its link address");
        let live = goroscope::target::live::LiveProcess::open(pid).unwrap();
        assert_eq!(
            live.read_u64(md + bias).unwrap(),
            stripped.pclntab_addr + bias,
            "{what}: live pcHeader"
        );
        let text = live
            .read_u64(md + bias + layout.off(F::ModText).unwrap())
            .unwrap();
        stripped.pclntab.set_text_start(text);
        let found =
            find::allgs_addr(&stripped, &live, bias).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            found.allgs,
            twin_addr(&full, &stripped, "runtime.allgs") + bias,
            "{what}"
        );
        assert_eq!(
            found.allglen,
            Some(twin_addr(&full, &stripped, "runtime.allglen") + bias),
            "{what}"
        );
        assert_eq!(
            found.allgptr,
            Some(twin_addr(&full, &stripped, "runtime.allgptr") + bias),
            "{what}"
        );
        let len = live.read_u64(found.allgs + 8).unwrap();
        assert!(len >= 6, "{what}: len(allgs) = {len}");
        eprintln!("{what}: bias {bias:#x}: {found:x?}, len(allgs) {len}");
        drop(child);
    }
}
