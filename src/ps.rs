//! `goroscope ps`: every Go process in goroscope's pid namespace, found from `/proc` and each
//! executable's build info alone. Nothing is attached, stopped or read from process memory.
//!
//! For each process: `/proc/PID/status` (name, ppid, threads, `NSpid`), the executable through
//! `/proc/PID/exe` (so a deleted binary or one in a container's mount namespace is read), and
//! of that file only the ELF headers and `.go.buildinfo` ([`crate::binary::peek`]). A binary
//! shared by many processes is read once. Kernel threads (no executable) and processes that
//! exit during the scan are skipped; processes goroscope may not look at are counted.

use crate::binary;
use crate::target::proc;
use serde::Serialize;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

/// One Go process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoProcess {
    /// Pid in goroscope's pid namespace (what the other commands take).
    pub pid: i32,
    /// Parent pid (0 when the parent is outside goroscope's pid namespace).
    pub ppid: i32,
    /// Its pid in each nested pid namespace down to its own (`NSpid`); `[pid]` when it is in
    /// goroscope's namespace.
    pub ns_pids: Vec<i32>,
    /// `comm`: the process name.
    pub name: String,
    /// Number of threads.
    pub threads: u32,
    /// Go version from the build info, e.g. `go1.27.3`.
    pub go_version: String,
    /// Main package path from the build info.
    pub path: String,
    /// Main module path and version, if the build info has a `mod` line.
    pub module: Option<String>,
    /// Main module version (`(devel)` for a local build).
    pub module_version: Option<String>,
    /// The executable as the process sees it (`/proc/PID/exe`; ` (deleted)` when replaced).
    pub exe: String,
    /// The executable has no symbol table.
    pub no_symbols: bool,
    /// The executable has no DWARF.
    pub no_dwarf: bool,
}

impl GoProcess {
    /// `stripped`, `no DWARF`, `no symtab` or empty: what a reader of the binary will miss.
    pub fn stripped_word(&self) -> &'static str {
        match (self.no_symbols, self.no_dwarf) {
            (true, true) => "stripped",
            (false, true) => "no DWARF",
            (true, false) => "no symtab",
            (false, false) => "",
        }
    }
}

/// The result of a scan.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Go processes, by pid.
    pub processes: Vec<GoProcess>,
    /// Processes whose executable goroscope was not allowed to open.
    pub denied: Vec<i32>,
}

/// Lists every Go process under `proc_root` (normally `/proc`).
pub fn scan(proc_root: &std::path::Path) -> std::io::Result<Scan> {
    let pids = proc::pids(proc_root)?;
    let own = std::process::id() as i32;
    let mut by_file: HashMap<(u64, u64), Option<binary::Peek>> = HashMap::new();
    let mut out = Scan::default();
    for pid in pids {
        if pid == own {
            continue;
        }
        let dir = proc_root.join(pid.to_string());
        let exe = dir.join("exe");
        // Kernel threads have no executable; a vanished process has nothing at all.
        let meta = match std::fs::metadata(&exe) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                out.denied.push(pid);
                continue;
            }
            Err(_) => continue,
        };
        let peek = by_file
            .entry((meta.dev(), meta.ino()))
            .or_insert_with(|| binary::peek(&exe).ok())
            .clone();
        let Some(peek) = peek else { continue };
        let Ok(status) = proc::read(dir.join("status")).and_then(|b| proc::parse_status(&b)) else {
            continue;
        };
        let ns_pids: Vec<i32> = proc::nspid(&status).map_or_else(|| vec![pid], <[i32]>::to_vec);
        let (module, module_version) = match &peek.build.main_module {
            Some((p, v)) => (Some(p.clone()), Some(v.clone())),
            None => (None, None),
        };
        out.processes.push(GoProcess {
            pid,
            ppid: status.ppid,
            ns_pids,
            name: proc::comm_in(&dir).unwrap_or(status.name),
            threads: u32::try_from(status.threads).unwrap_or(u32::MAX),
            go_version: peek.build.go_version.clone(),
            path: peek.build.path.clone(),
            module,
            module_version,
            exe: std::fs::read_link(&exe)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            no_symbols: !peek.has_symbols,
            no_dwarf: !peek.has_dwarf,
        });
    }
    Ok(out)
}
