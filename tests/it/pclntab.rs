//! Checks the pclntab and buildinfo readers against real binaries built with every installed
//! Go toolchain (`~/.cache/goroscope/go/<version>/go/bin/go`).

use crate::support;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use goroscope::binary::buildinfo::BuildInfo;
use goroscope::binary::pclntab::{Pclntab, func_flag};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

const MAIN_GO: &str = r#"package main

import (
	"fmt"
	"os"
)

//go:noinline
func sink(x int) int { return x * 3 }

func helper(x int) int {
	return sink(x) + 1 // HELPER_LINE
}

//go:noinline
func caller(x int) int {
	return helper(x) * 2 // CALLER_LINE
}

type T struct{ n int }

//go:noinline
func (t *T) Method(k int) int { return t.n + k }

//go:noinline
func Gen[E any](xs []E) int { return len(xs) }

//go:noinline
func worker(n int, done chan int) { done <- n }

var fv func(int) int

func main() {
	t := &T{n: 2}
	fv = func(y int) int { return caller(y) + t.Method(y) }
	done := make(chan int)
	go worker(len(os.Args), done)
	fmt.Println(fv(len(os.Args)), Gen([]string{"a"}), Gen([]int{1, 2}), <-done)
}
"#;

const MODULE: &str = "goroscope.test/pcln";

fn line_of(needle: &str) -> u32 {
    MAIN_GO
        .lines()
        .position(|l| l.contains(needle))
        .expect(needle) as u32
        + 1
}

/// Every toolchain to test with, as (version, go command).
fn toolchains() -> Vec<(String, PathBuf)> {
    support::require_toolchains()
        .into_iter()
        .map(|t| (t.version, t.go))
        .collect()
}

fn build(go: &Path, version: &str, arch: &str, work: &Path) -> Result<PathBuf, String> {
    let src = work.join(format!("src-{version}-{arch}"));
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    std::fs::write(src.join("go.mod"), format!("module {MODULE}\n\ngo 1.21\n"))
        .map_err(|e| e.to_string())?;
    std::fs::write(src.join("main.go"), MAIN_GO).map_err(|e| e.to_string())?;
    let out = src.join("prog");
    let res = Command::new(go)
        .current_dir(&src)
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .env_remove("GOFLAGS")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOARCH", arch)
        .env("GOOS", "linux")
        .env("CGO_ENABLED", "0")
        .env(
            "GOCACHE",
            std::env::temp_dir().join("goroscope-gocache-pcln"),
        )
        .env("GOPATH", std::env::temp_dir().join("goroscope-gopath-pcln"))
        .output()
        .map_err(|e| format!("running {}: {e}", go.display()))?;
    if !res.status.success() {
        return Err(format!(
            "go build failed: {}",
            String::from_utf8_lossy(&res.stderr)
        ));
    }
    Ok(out)
}

/// Checks one binary; returns a short summary.
fn check(version: &str, arch: &str, bin: &Path, src_file: &Path) -> Result<String, String> {
    let data = std::fs::read(bin).map_err(|e| e.to_string())?;
    let elf = object::File::parse(&*data).map_err(|e| e.to_string())?;
    let sym = |name: &str| elf.symbols().find(|s| s.name() == Ok(name));

    // pclntab bytes, from runtime.pclntab if present, else the section start.
    let sect = elf.section_by_name(".gopclntab").ok_or("no .gopclntab")?;
    let sdata = sect.data().map_err(|e| e.to_string())?;
    let start = sym("runtime.pclntab").map_or(0, |s| (s.address() - sect.address()) as usize);
    let mut tab = Pclntab::parse(sdata[start..].to_vec()).map_err(|e| e.to_string())?;
    let text = sym("runtime.text").ok_or("no runtime.text")?.address();
    let (minor, want_lc) = (
        version.split('.').nth(1).unwrap().parse::<u32>().unwrap(),
        if arch == "arm64" { 4 } else { 1 },
    );
    assert_eq!(tab.min_lc(), want_lc, "{version}/{arch} minLC");
    assert_eq!(tab.ptr_size(), 8);
    assert_eq!(tab.is_go120(), minor >= 20);
    if minor >= 26 {
        assert_eq!(tab.header_text_start(), 0, "{version}: header textStart");
    } else {
        assert_eq!(tab.header_text_start(), text, "{version}: header textStart");
    }
    tab.set_text_start(text);
    let gofunc = sym("go:func.*")
        .or_else(|| sym("go.func.*"))
        .ok_or("no go:func.* symbol")?;
    let gsect = elf
        .section_by_index(gofunc.section_index().ok_or("go:func.* has no section")?)
        .map_err(|e| e.to_string())?;
    let gdata = gsect.data().map_err(|e| e.to_string())?;
    let goff = (gofunc.address() - gsect.address()) as usize;
    tab.set_gofunc(gofunc.address(), gdata[goff..].to_vec());

    // Every main.* / runtime.* text symbol maps back to itself.
    let mut checked = 0;
    for s in elf.symbols() {
        let Ok(name) = s.name() else { continue };
        if s.kind() != SymbolKind::Text
            || !(name.starts_with("main.") || name.starts_with("runtime."))
        {
            continue;
        }
        if matches!(name, "runtime.text" | "runtime.etext") {
            continue;
        }
        let f = tab
            .func_for_pc(s.address())
            .ok_or_else(|| format!("{version}/{arch}: no func for {name} at {:#x}", s.address()))?;
        // The ELF symbol table names ABI0 (assembly) functions with an ".abi0" suffix.
        let name = name.strip_suffix(".abi0").unwrap_or(name);
        // Go 1.19's pclntab already stores generic shapes as "[...]"; its symtab keeps them.
        let name = if tab.name(f).contains("[...]") {
            goroscope::unwind::symbolize::print_name(name).into_owned()
        } else {
            name.to_string()
        };
        assert_eq!(
            tab.name(f),
            name,
            "{version}/{arch}: func_for_pc({:#x})",
            s.address()
        );
        assert_eq!(
            tab.entry(f),
            s.address(),
            "{version}/{arch}: entry of {name}"
        );
        assert!(tab.end(f) > tab.entry(f));
        checked += 1;
    }
    assert!(
        checked > 500,
        "{version}/{arch}: only {checked} symbols checked"
    );
    assert_eq!(tab.funcs().count(), tab.nfunc());

    for name in [
        "main.main",
        "main.caller",
        "main.(*T).Method",
        "main.main.func1",
        "main.worker",
    ] {
        assert!(
            tab.func_by_name(name).is_some(),
            "{version}/{arch}: func_by_name({name})"
        );
    }
    assert!(
        tab.funcs().any(|f| tab.name(f).starts_with("main.Gen[")),
        "{version}/{arch}: generic instantiation"
    );
    let goexit = tab
        .func_by_name("runtime.goexit")
        .ok_or("no runtime.goexit")?;
    assert_ne!(
        tab.flag(goexit) & func_flag::TOP_FRAME,
        0,
        "{version}/{arch}: goexit flag"
    );
    let sys = tab
        .func_by_name("runtime.systemstack")
        .ok_or("no runtime.systemstack")?;
    assert_ne!(
        tab.flag(sys) & func_flag::SP_WRITE,
        0,
        "{version}/{arch}: systemstack flag"
    );

    // file/line of main.main's entry.
    let main = tab.func_by_name("main.main").unwrap();
    let (file, line) = tab
        .file_line(main, tab.entry(main))
        .ok_or("no file/line for main.main")?;
    assert_eq!(
        Path::new(file),
        src_file,
        "{version}/{arch}: main.main file"
    );
    assert_eq!(
        line,
        line_of("func main()"),
        "{version}/{arch}: main.main line"
    );
    if minor >= 20 {
        assert_eq!(tab.start_line(main), line_of("func main()") as i32);
    }
    assert_eq!(tab.pcsp(main, tab.entry(main)), Some(0));

    // The inlined helper call inside main.caller.
    let caller = tab.func_by_name("main.caller").unwrap();
    let mut pc = tab.entry(caller);
    let mut found = None;
    while pc < tab.end(caller) {
        let fr = tab.frames_at(caller, pc);
        assert!(!fr.last().unwrap().inlined);
        assert_eq!(fr.last().unwrap().name, "main.caller");
        if fr.len() > 1 {
            found = Some(fr);
            break;
        }
        pc += u64::from(tab.min_lc());
    }
    let fr = found.ok_or_else(|| format!("{version}/{arch}: no inlined frame in main.caller"))?;
    assert_eq!(fr.len(), 2, "{version}/{arch}: {fr:?}");
    assert_eq!(fr[0].name, "main.helper");
    assert!(fr[0].inlined);
    assert_eq!(fr[0].line, line_of("HELPER_LINE"));
    assert_eq!(fr[1].line, line_of("CALLER_LINE"));
    assert_eq!(Path::new(fr[0].file), src_file);
    if minor >= 20 {
        assert_eq!(fr[0].start_line, line_of("func helper(") as i32);
    }

    // The `go worker(...)` wrapper (main.main.gowrap1 from 1.22, main.main.funcN before) points
    // at main.worker.
    let worker = tab.func_by_name("main.worker").unwrap();
    let mut wrap = "none";
    for f in tab
        .funcs()
        .filter(|&f| tab.name(f).starts_with("main.main."))
    {
        if let Some(target) = tab.wrapped_entry(f) {
            assert_eq!(
                target,
                tab.entry(worker),
                "{version}/{arch}: wrapinfo of {}",
                tab.name(f)
            );
            wrap = tab.name(f);
        }
    }
    if minor >= 22 {
        assert_eq!(wrap, "main.main.gowrap1", "{version}/{arch}: wrapinfo");
    }

    // Build info.
    let bsect = elf
        .section_by_name(".go.buildinfo")
        .ok_or("no .go.buildinfo")?;
    let bi =
        BuildInfo::parse(bsect.data().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    assert_eq!(bi.go_version, format!("go{version}"));
    assert_eq!(bi.path, MODULE);
    assert_eq!(bi.main_module.as_ref().map(|m| m.0.as_str()), Some(MODULE));
    assert_eq!(bi.setting("GOARCH"), Some(arch));
    assert_eq!(bi.setting("CGO_ENABLED"), Some("0"));

    Ok(format!(
        "{version}/{arch}: {} funcs, {checked} symbols ok, inline ok at {pc:#x}, wrapinfo {wrap}",
        tab.nfunc()
    ))
}

#[test]
fn real_binaries() {
    let chains = toolchains();
    let work = std::env::temp_dir().join(format!("goroscope-pclntab-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    // amd64 for every toolchain; arm64 (minLC 4) for the oldest and newest.
    let mut jobs: Vec<(String, PathBuf, &str)> = chains
        .iter()
        .map(|(v, g)| (v.clone(), g.clone(), "amd64"))
        .collect();
    for (v, g) in [chains.first().unwrap(), chains.last().unwrap()] {
        jobs.push((v.clone(), g.clone(), "arm64"));
    }
    let jobs = Mutex::new(jobs);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some((v, go, arch)) = jobs.lock().unwrap().pop() else {
                        break;
                    };
                    let r = build(&go, &v, arch, &work).and_then(|bin| {
                        let src =
                            std::fs::canonicalize(bin.parent().unwrap().join("main.go")).unwrap();
                        std::panic::catch_unwind(AssertUnwindSafe(|| check(&v, arch, &bin, &src)))
                            .unwrap_or_else(|p| {
                                let msg = p
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                    .unwrap_or_default();
                                Err(format!("{v}/{arch}: {msg}"))
                            })
                    });
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&work);
    let mut failed = vec![];
    for r in results.into_inner().unwrap() {
        match r {
            Ok(s) => eprintln!("{s}"),
            Err(e) => failed.push(e),
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
