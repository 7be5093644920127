//! Targets in containers: pid, mount and time namespaces, seen through `/proc`.
//!
//! A pid names a process in goroscope's own pid namespace (its `/proc`): run in the host,
//! give the host pid; run inside the container (`kubectl debug --target`, `nsenter -p -m`),
//! give the container's pid. `NSpid` in `/proc/PID/status` lists a process's pid in every
//! namespace from goroscope's down to its own. The executable is read through
//! `/proc/PID/exe` and source files through `/proc/PID/root`, both of which cross mount
//! namespaces. The Go runtime's `nanotime` is `CLOCK_MONOTONIC` of the target's time
//! namespace, which may be offset from goroscope's (`unshare --time`, `time_namespaces(7)`).

use super::proc;
use std::path::{Path, PathBuf};

/// The process's pid in each pid namespace, from the one reading `/proc` (first) to its own
/// (last): `NSpid` of `/proc/PID/status`. One entry when it is in goroscope's namespace.
pub fn ns_pids(pid: i32) -> Option<Vec<i32>> {
    let st = proc::status(pid).ok()?;
    proc::nspid(&st).map(<[i32]>::to_vec)
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
        TidMap {
            pid,
            nested,
            theirs: Default::default(),
        }
    }

    /// Whether the process is in a pid namespace nested in goroscope's.
    pub(crate) fn nested(&self) -> bool {
        self.nested
    }

    /// Looks up the target's id of each of `tids` not known yet.
    pub(crate) fn learn(&mut self, tids: &[i32]) {
        for &t in tids {
            if self.theirs.contains_key(&t) {
                continue;
            }
            let st = proc::task_status(self.pid, t).ok();
            if let Some(&inner) = st.as_ref().and_then(proc::nspid).and_then(|p| p.last()) {
                self.theirs.insert(t, inner);
            }
        }
    }

    /// Renumbers stopped threads as the target numbers them (nothing when not nested).
    pub(crate) fn renumber_as_target(&mut self, threads: &mut [super::ThreadState]) {
        if !self.nested {
            return;
        }
        let tids: Vec<i32> = threads.iter().map(|t| t.tid).collect();
        self.learn(&tids);
        for t in threads {
            t.tid = self.theirs.get(&t.tid).copied().unwrap_or(t.tid);
        }
    }

    /// The target's id of the thread we call `tid` (`tid` itself when not nested or unknown;
    /// a thread is known once [`TidMap::learn`] saw it).
    pub(crate) fn to_target(&self, tid: i32) -> i32 {
        self.theirs.get(&tid).copied().unwrap_or(tid)
    }

    /// Our id of the thread the target calls `tid` (`tid` itself when not nested or unknown).
    pub(crate) fn to_ours(&self, tid: i32) -> i32 {
        if !self.nested {
            return tid;
        }
        self.theirs
            .iter()
            .find(|&(_, &theirs)| theirs == tid)
            .map(|(&ours, _)| ours)
            .unwrap_or(tid)
    }
}

/// The target's `CLOCK_MONOTONIC` minus goroscope's, in nanoseconds: the difference of the
/// `monotonic` lines of `/proc/PID/timens_offsets` and `/proc/self/timens_offsets`. 0 when
/// both share a time namespace, or the kernel has none (before Linux 5.6).
pub(crate) fn monotonic_offset(pid: i32) -> i64 {
    match (
        proc::timens_monotonic(&pid.to_string()),
        proc::timens_monotonic("self"),
    ) {
        (Some(target), Some(own)) => target - own,
        _ => 0,
    }
}

/// Where the target's file `path` is seen from goroscope: the same path under
/// `/proc/PID/root`, which is the target's root directory even in another mount namespace (a
/// container's image). A relative path (`-trimpath` builds) is taken from the target's working
/// directory, `/proc/PID/cwd`.
pub fn target_path(pid: i32, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) => PathBuf::from(format!("/proc/{pid}/root")).join(rel),
        Err(_) => PathBuf::from(format!("/proc/{pid}/cwd")).join(path),
    }
}

/// Most bytes read of a file a binary names (a source file for `list`).
pub(crate) const MAX_NAMED_FILE: u64 = 16 << 20;
/// Most supplementary groups taken from `/proc/PID/status` (the kernel's `NGROUPS_MAX`).
const MAX_GROUPS: usize = 65536;

/// The user and groups a file is opened as: the target's filesystem ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// Filesystem uid.
    pub uid: u32,
    /// Filesystem gid.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Ids {
    /// The ids of process `pid`: the fsuid and fsgid (fourth fields of `Uid:` and `Gid:`) and
    /// `Groups:` of `/proc/PID/status`.
    pub(crate) fn of_process(pid: i32) -> Result<Ids, String> {
        let st = proc::status(pid).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
        Ok(Ids {
            uid: st.fuid,
            gid: st.fgid,
            groups: st.groups.into_iter().take(MAX_GROUPS).collect(),
        })
    }
}

/// Opens a file the target's binary names (`path`, resolved inside `root`, the target's root
/// directory) with no more rights than `ids` have, and only when it is a regular file:
///
/// - on a thread of its own that takes `ids` as its filesystem ids and supplementary groups
///   (`setfsuid`, `setfsgid`, `setgroups` act on the calling thread only), so a root goroscope
///   opens nothing the target's user could not;
/// - `openat2` with `RESOLVE_IN_ROOT`: `..` and symlinks, absolute ones included, never
///   leave `root`, and no `/proc` magic link is followed;
/// - first as `O_PATH` (opening a FIFO would block, opening a device can act on it), then
///   reopened for reading only if it is a regular file.
///
/// Errors are one line: the path, and why.
pub(crate) fn open_confined(root: &Path, path: &Path, ids: &Ids) -> Result<std::fs::File, String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.display();
    let root_dir = std::fs::File::open(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{name}: a NUL byte in the path"))?;
    let opened = std::thread::scope(|s| {
        s.spawn(|| -> Result<OwnedFd, String> {
            take_ids(ids)?;
            let how = OpenHow { flags: (libc::O_PATH | libc::O_CLOEXEC) as u64, mode: 0, resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
            // SAFETY: openat2 reads the path and `how` (its size given) and returns a new fd.
            let fd = unsafe {
                libc::syscall(libc::SYS_openat2, root_dir.as_raw_fd(), c.as_ptr(), &how as *const OpenHow, std::mem::size_of::<OpenHow>())
            };
            if fd < 0 {
                let e = std::io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::ENOSYS) => format!("{name}: openat2 is not available (Linux 5.6 or later is needed to open it safely)"),
                    Some(libc::EXDEV) | Some(libc::ELOOP) => format!("{name}: refused, its path leaves the target's root or crosses a /proc link"),
                    _ => format!("{name}: {e}"),
                });
            }
            // SAFETY: fd was just returned by openat2 and is owned by nothing else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
            let kind = std::fs::File::from(fd.try_clone().map_err(|e| format!("{name}: {e}"))?)
                .metadata()
                .map_err(|e| format!("{name}: {e}"))?
                .file_type();
            if !kind.is_file() {
                return Err(format!("{name}: refused, not a regular file (a {})", kind_name(kind)));
            }
            // Reopening the O_PATH descriptor checks read permission with this thread's ids.
            let reopened = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
                .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .map_err(|e| format!("{name}: {e} (as uid {} gid {})", ids.uid, ids.gid))?;
            Ok(OwnedFd::from(reopened))
        })
        .join()
        .unwrap_or_else(|_| Err(format!("{name}: the opening thread failed")))
    })?;
    Ok(std::fs::File::from(opened))
}

/// `struct open_how` of `openat2(2)`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Makes `ids` the calling thread's filesystem ids and groups (raw system calls: the libc
/// wrappers of `setgroups` change every thread). A goroscope that may not take them (not
/// root, and not the target's user) refuses: it would open with rights of its own.
fn take_ids(ids: &Ids) -> Result<(), String> {
    // SAFETY: these calls change only this thread's credentials; the thread ends after the open.
    unsafe {
        // EPERM when goroscope is not root: its own groups stay, checked below by uid.
        libc::syscall(libc::SYS_setgroups, ids.groups.len(), ids.groups.as_ptr());
        libc::syscall(libc::SYS_setfsgid, ids.gid);
        libc::syscall(libc::SYS_setfsuid, ids.uid);
        // Each returns the previous value: calling them with -1 (never valid) reads it.
        let uid = libc::syscall(libc::SYS_setfsuid, u32::MAX) as u32;
        let gid = libc::syscall(libc::SYS_setfsgid, u32::MAX) as u32;
        if uid != ids.uid || gid != ids.gid {
            return Err(format!(
                "cannot take the target's user and group ({}:{}) to open its files",
                ids.uid, ids.gid
            ));
        }
    }
    Ok(())
}

/// What a file that is not a regular one is.
fn kind_name(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// The text of the target's file `path` (a source file for `list`), opened by
/// [`open_confined`] in the target's root (`/proc/PID/root`; a relative path inside its working
/// directory, `/proc/PID/cwd`) as the target's user, at most [`MAX_NAMED_FILE`] bytes of it.
pub fn read_target_file(pid: i32, path: &str) -> Result<String, String> {
    let ids = Ids::of_process(pid)?;
    let root = if path.starts_with('/') { "root" } else { "cwd" };
    read_confined(Path::new(&format!("/proc/{pid}/{root}")), path, &ids)
}

/// A file named by a binary or a dump, read inside `root` as `ids` ([`open_confined`]), at most
/// [`MAX_NAMED_FILE`] bytes of it.
pub(crate) fn read_confined(root: &Path, path: &str, ids: &Ids) -> Result<String, String> {
    use std::io::Read;
    let file = open_confined(root, Path::new(path), ids)?;
    let mut b = Vec::new();
    file.take(MAX_NAMED_FILE)
        .read_to_end(&mut b)
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// Whether the target is in another user namespace than goroscope: their `/proc/PID/ns/user`
/// links differ or, when the target's link cannot be read (reading it takes the same ptrace
/// access an attach does, so a refused attach usually cannot read it either), their
/// `uid_map`s differ. A `uid_map` is readable by anyone and shows the namespace's map as seen
/// from goroscope's namespace, so different maps mean different namespaces (equal ones prove
/// nothing, and then this says no).
pub(crate) fn other_user_namespace(pid: i32) -> bool {
    let link = |who: &str| std::fs::read_link(format!("/proc/{who}/ns/user")).ok();
    let map = proc::uid_map;
    match (link("self"), link(&pid.to_string())) {
        (Some(own), Some(target)) => own != target,
        _ => {
            matches!((map("self"), map(&pid.to_string())), (Some(own), Some(target)) if own != target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid() {
        let own = ns_pids(std::process::id() as i32).unwrap();
        assert_eq!(own.first(), Some(&(std::process::id() as i32)));
    }

    #[test]
    fn user_namespaces() {
        assert!(!other_user_namespace(std::process::id() as i32));
    }

    #[test]
    fn offsets() {
        assert_eq!(monotonic_offset(std::process::id() as i32), 0);
    }

    #[test]
    fn paths() {
        assert_eq!(
            target_path(7, Path::new("/src/main.go")),
            PathBuf::from("/proc/7/root/src/main.go")
        );
        assert_eq!(
            target_path(7, Path::new("example.com/x/main.go")),
            PathBuf::from("/proc/7/cwd/example.com/x/main.go")
        );
        let me = std::process::id() as i32;
        let this = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/target/ns.rs");
        let s = read_target_file(me, this.to_str().unwrap()).unwrap();
        assert!(s.contains("fn open_confined"));
        // Relative (-trimpath) paths are read in the working directory (cargo runs tests in the
        // crate's), and `..` stays inside it.
        assert!(
            read_target_file(me, "Cargo.toml")
                .unwrap()
                .contains("[package]")
        );
        assert_eq!(
            read_target_file(me, "../../Cargo.toml").unwrap(),
            read_target_file(me, "Cargo.toml").unwrap()
        );
        assert!(
            read_target_file(me, "/no/such/file.go")
                .unwrap_err()
                .starts_with("/no/such/file.go: ")
        );
        assert_eq!(
            read_target_file(me, "/dev/null").unwrap_err(),
            "/dev/null: refused, not a regular file (a character device)"
        );
        assert!(
            read_target_file(me, "/proc/self/root/etc/hostname")
                .unwrap_err()
                .contains("refused")
        );
    }
}
