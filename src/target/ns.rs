//! Targets in containers: pid, mount and time namespaces, seen through `/proc`.
//!
//! A pid names a process in goroscope's own pid namespace (its `/proc`): run in the host,
//! give the host pid; run inside the container (`kubectl debug --target`, `nsenter -p -m`),
//! give the container's pid. `NSpid` in `/proc/PID/status` lists a process's pid in every
//! namespace from goroscope's down to its own. The executable is read through
//! `/proc/PID/exe` and source files through `/proc/PID/root`, both of which cross mount
//! namespaces. The Go runtime's `nanotime` is `CLOCK_MONOTONIC` of the target's time
//! namespace, which may be offset from goroscope's (`unshare --time`, `time_namespaces(7)`).

use std::path::{Path, PathBuf};

/// The process's pid in each pid namespace, from the one reading `/proc` (first) to its own
/// (last): `NSpid` of `/proc/PID/status`. One entry when it is in goroscope's namespace.
pub fn ns_pids(pid: i32) -> Option<Vec<i32>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_nspid(&s)
}

fn parse_nspid(status: &str) -> Option<Vec<i32>> {
    let v = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let pids: Vec<i32> = v.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    if pids.is_empty() { None } else { Some(pids) }
}

/// Thread ids of a process in another pid namespace: ours (goroscope's `/proc`) and its own
/// (the innermost `NSpid` of `/proc/PID/task/TID/status`, what `gettid` returns there and the
/// Go runtime stores in `m.procid`).
#[derive(Debug, Clone, Default)]
pub struct TidMap {
    pid: i32,
    nested: bool,
    /// Ours to the target's.
    theirs: std::collections::HashMap<i32, i32>,
}

impl TidMap {
    /// The map for `pid`, empty; [`TidMap::nested`] says whether it is needed at all.
    pub fn new(pid: i32) -> TidMap {
        let nested = ns_pids(pid).is_some_and(|p| p.len() > 1);
        TidMap { pid, nested, theirs: Default::default() }
    }

    /// Whether the process is in a pid namespace nested in goroscope's.
    pub fn nested(&self) -> bool {
        self.nested
    }

    /// Looks up the target's id of each of `tids` not known yet.
    pub fn learn(&mut self, tids: &[i32]) {
        for &t in tids {
            if self.theirs.contains_key(&t) {
                continue;
            }
            let s = std::fs::read_to_string(format!("/proc/{}/task/{t}/status", self.pid)).unwrap_or_default();
            if let Some(&inner) = parse_nspid(&s).as_deref().and_then(|p| p.last()) {
                self.theirs.insert(t, inner);
            }
        }
    }

    /// Renumbers stopped threads as the target numbers them (nothing when not nested).
    pub fn to_target(&mut self, threads: &mut [super::ThreadState]) {
        if !self.nested {
            return;
        }
        let tids: Vec<i32> = threads.iter().map(|t| t.tid).collect();
        self.learn(&tids);
        for t in threads {
            t.tid = self.theirs.get(&t.tid).copied().unwrap_or(t.tid);
        }
    }

    /// Our id of the thread the target calls `tid` (`tid` itself when not nested or unknown).
    pub fn to_ours(&self, tid: i32) -> i32 {
        if !self.nested {
            return tid;
        }
        self.theirs.iter().find(|&(_, &theirs)| theirs == tid).map(|(&ours, _)| ours).unwrap_or(tid)
    }
}

/// The target's `CLOCK_MONOTONIC` minus goroscope's, in nanoseconds: the difference of the
/// `monotonic` lines of `/proc/PID/timens_offsets` and `/proc/self/timens_offsets`. 0 when
/// both share a time namespace, or the kernel has none (before Linux 5.6).
pub fn monotonic_offset(pid: i32) -> i64 {
    let read = |who: &str| {
        std::fs::read_to_string(format!("/proc/{who}/timens_offsets")).ok().and_then(|s| parse_monotonic(&s))
    };
    match (read(&pid.to_string()), read("self")) {
        (Some(target), Some(own)) => target - own,
        _ => 0,
    }
}

/// The `monotonic <secs> <nanosecs>` line of a `timens_offsets` file, in nanoseconds.
fn parse_monotonic(text: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("monotonic"))?;
    let mut it = line.split_whitespace().skip(1);
    let secs: i64 = it.next()?.parse().ok()?;
    let nanos: i64 = it.next()?.parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Where goroscope can open a file the target names by `path` (a source file in its pcln
/// table, for `list`): the same path under `/proc/PID/root`, which is the target's root
/// directory even in another mount namespace (a container's image). A relative path
/// (`-trimpath` builds) is resolved against the target's working directory, `/proc/PID/cwd`.
pub fn target_path(pid: i32, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) => PathBuf::from(format!("/proc/{pid}/root")).join(rel),
        Err(_) => PathBuf::from(format!("/proc/{pid}/cwd")).join(path),
    }
}

/// The target's source file `path`, opened through [`target_path`]; when the target's root
/// does not have it (a container image holds no sources), goroscope's own filesystem.
pub fn open_source(pid: i32, path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(target_path(pid, path)).or_else(|e| if path.is_absolute() { std::fs::File::open(path) } else { Err(e) })
}

/// Whether the target is in another user namespace than goroscope: their `/proc/PID/ns/user`
/// links differ or, when the target's link cannot be read (reading it takes the same ptrace
/// access an attach does, so a refused attach usually cannot read it either), their
/// `uid_map`s differ. A `uid_map` is readable by anyone and shows the namespace's map as seen
/// from goroscope's namespace, so different maps mean different namespaces (equal ones prove
/// nothing, and then this says no).
pub fn other_user_namespace(pid: i32) -> bool {
    let link = |who: &str| std::fs::read_link(format!("/proc/{who}/ns/user")).ok();
    let map = |who: &str| std::fs::read_to_string(format!("/proc/{who}/uid_map")).ok().map(|m| uid_map_entries(&m));
    match (link("self"), link(&pid.to_string())) {
        (Some(own), Some(target)) => own != target,
        _ => matches!((map("self"), map(&pid.to_string())), (Some(own), Some(target)) if own != target),
    }
}

/// The entries of a `uid_map` (`inside outside count` a line, space-padded), as numbers.
fn uid_map_entries(text: &str) -> Vec<Vec<u64>> {
    text.lines().map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()).collect()).filter(|e: &Vec<u64>| !e.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid() {
        assert_eq!(parse_nspid("Name:\tx\nNSpid:\t4242\t7\t1\n"), Some(vec![4242, 7, 1]));
        assert_eq!(parse_nspid("NSpid:\t12\n"), Some(vec![12]));
        assert_eq!(parse_nspid("Name:\tx\n"), None);
        let own = ns_pids(std::process::id() as i32).unwrap();
        assert_eq!(own.first(), Some(&(std::process::id() as i32)));
    }

    #[test]
    fn user_namespaces() {
        assert_eq!(uid_map_entries("         0          0 4294967295\n"), vec![vec![0, 0, 4_294_967_295]]);
        assert_eq!(uid_map_entries("0 1000 1\n1 100000 65536\n"), vec![vec![0, 1000, 1], vec![1, 100_000, 65_536]]);
        assert!(!other_user_namespace(std::process::id() as i32));
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_monotonic("monotonic           0         0\nboottime  0 0\n"), Some(0));
        assert_eq!(parse_monotonic("boottime 1 0\nmonotonic -3600 5\n"), Some(-3_599_999_999_995));
        assert_eq!(parse_monotonic("monotonic x 0\n"), None);
        assert_eq!(parse_monotonic(""), None);
        assert_eq!(monotonic_offset(std::process::id() as i32), 0);
    }

    #[test]
    fn paths() {
        assert_eq!(target_path(7, Path::new("/src/main.go")), PathBuf::from("/proc/7/root/src/main.go"));
        assert_eq!(target_path(7, Path::new("example.com/x/main.go")), PathBuf::from("/proc/7/cwd/example.com/x/main.go"));
        let me = std::process::id() as i32;
        let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/target/ns.rs");
        let mut f = open_source(me, &this).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut f, &mut s).unwrap();
        assert!(s.contains("fn open_source"));
        assert!(open_source(me, Path::new("/no/such/file.go")).is_err());
    }
}
