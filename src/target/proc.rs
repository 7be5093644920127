//! `/proc`, read in one place: every file goroscope reads about a process or thread (status,
//! stat, tasks, maps, auxv, comm, cmdline, environ, `NSpid`, `syscall`, `schedstat`, the descriptors and
//! their `fdinfo`, `/proc/locks`) goes through here, parsed by the
//! `procfs` crate's parsers over bytes read with a size bound. Errors keep their
//! `io::ErrorKind` and errno (a process that is gone is `NotFound`); text the kernel wrote in
//! a form the parser does not take is `InvalidData`.

use procfs::FromRead;
use std::io::{self, Read};

pub use procfs::Lock;
pub use procfs::process::{Schedstat, Stat, Status, Syscall};

/// Bytes read of one `/proc` file at most: status and stat are a few KiB, maps a few hundred
/// KiB for a big process; anything longer is cut there.
pub(crate) const MAX_PROC_FILE: u64 = 64 << 20;

/// Descriptors of one process looked at, at most (`/proc/PID/fd`).
pub(crate) const MAX_FDS: usize = 1 << 20;

/// Auxiliary vector entries read at most (the kernel writes about 40).
pub(crate) const MAX_AUXV: usize = 256;

/// `AT_ENTRY`: the executable's entry point, as loaded.
pub const AT_ENTRY: u64 = 9;

/// `PF_EXITING` in a task's flags (`include/linux/sched.h`): set by `do_exit` before it lets
/// go of the memory, the executable and the files, so well before the task is a zombie.
pub(crate) const PF_EXITING: u32 = 0x4;

/// `PF_KTHREAD` in a task's flags (`include/linux/sched.h`): a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// The whole file at `path`, at most [`MAX_PROC_FILE`] bytes.
pub fn read(path: impl AsRef<std::path::Path>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_PROC_FILE)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Parses with `procfs`'s parser for `T`. Invalid UTF-8 (a process name may hold any byte)
/// is replaced first: the parsers read text lines and would refuse the whole file.
fn parse<T: FromRead>(bytes: &[u8], what: &str) -> io::Result<T> {
    let text = String::from_utf8_lossy(bytes);
    T::from_read(text.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}")))
}

/// `/proc/PID/status`.
pub fn status(pid: i32) -> io::Result<Status> {
    let path = format!("/proc/{pid}/status");
    parse(&read(&path)?, &path)
}

/// `/proc/PID/task/TID/status`.
pub(crate) fn task_status(pid: i32, tid: i32) -> io::Result<Status> {
    let path = format!("/proc/{pid}/task/{tid}/status");
    parse(&read(&path)?, &path)
}

/// Parses the text of a status file.
pub(crate) fn parse_status(text: &[u8]) -> io::Result<Status> {
    parse(text, "status")
}

/// `/proc/PID/stat`.
pub fn stat(pid: i32) -> io::Result<Stat> {
    let path = format!("/proc/{pid}/stat");
    parse(&read(&path)?, &path)
}

/// `/proc/PID/task/TID/stat`.
pub(crate) fn task_stat(pid: i32, tid: i32) -> io::Result<Stat> {
    let path = format!("/proc/{pid}/task/{tid}/stat");
    parse(&read(&path)?, &path)
}

/// The thread ids of a process (`/proc/PID/task`), sorted.
pub fn tasks(pid: i32) -> io::Result<Vec<i32>> {
    let mut tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// The process ids under a `/proc` (normally `/proc` itself), sorted.
pub fn pids(proc_root: &std::path::Path) -> io::Result<Vec<i32>> {
    let mut pids: Vec<i32> = std::fs::read_dir(proc_root)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// `/proc/TID/comm` (any thread id works), without its newline; `None` when unreadable or
/// empty.
pub fn comm(tid: i32) -> Option<String> {
    comm_in(std::path::Path::new(&format!("/proc/{tid}")))
}

/// The `comm` file in a process directory of a `/proc` (see [`comm`]). Not the status
/// file's `Name`, which that file's parser cuts at a `:`.
pub(crate) fn comm_in(dir: &std::path::Path) -> Option<String> {
    let b = read(dir.join("comm")).ok()?;
    let s = String::from_utf8_lossy(&b);
    let s = s.trim_end_matches('\n');
    (!s.is_empty()).then(|| s.to_string())
}

/// `/proc/PID/maps`.
pub fn maps(pid: i32) -> io::Result<Vec<Mapping>> {
    Ok(parse_maps(&String::from_utf8_lossy(&read(format!(
        "/proc/{pid}/maps"
    ))?)))
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// `rwxp` flags.
    pub perms: String,
    /// File offset.
    pub offset: u64,
    /// The path, `[heap]`-style name, or empty for anonymous memory.
    pub path: String,
}

/// Parses `/proc/PID/maps` text; lines it cannot read are left out. Not the `procfs` crate's
/// parser: that one panics on a mapped file whose name starts with `/SYSV` and is shorter
/// than a System V segment's name, and a target chooses the names of the files it maps.
pub(crate) fn parse_maps(text: &str) -> Vec<Mapping> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(off)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (_dev, _inode) = (f.next(), f.next());
        let path = f.next().unwrap_or("").trim_start().to_string();
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(offset)) = (
            u64::from_str_radix(a, 16),
            u64::from_str_radix(b, 16),
            u64::from_str_radix(off, 16),
        ) else {
            continue;
        };
        if end > start {
            out.push(Mapping {
                start,
                end,
                perms: perms.to_string(),
                offset,
                path,
            });
        }
    }
    out
}

/// `/proc/PID/auxv`, raw (as a core's `NT_AUXV` note holds it).
pub(crate) fn auxv_bytes(pid: i32) -> io::Result<Vec<u8>> {
    read(format!("/proc/{pid}/auxv"))
}

/// The entries of a raw auxiliary vector (64-bit little-endian pairs), up to `AT_NULL`, at
/// most [`MAX_AUXV`]: the one parser for `/proc/PID/auxv` and a core's `NT_AUXV`.
pub(crate) fn parse_auxv(raw: &[u8]) -> Vec<(u64, u64)> {
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    raw.chunks_exact(16)
        .map(|p| (word(&p[..8]), word(&p[8..])))
        .take_while(|&(k, _)| k != 0)
        .take(MAX_AUXV)
        .collect()
}

/// `/proc/PID/cmdline`, raw (NUL-separated).
pub fn cmdline(pid: i32) -> io::Result<Vec<u8>> {
    read(format!("/proc/{pid}/cmdline"))
}

/// `/proc/PID/environ`, raw (NUL-separated).
pub(crate) fn environ(pid: i32) -> io::Result<Vec<u8>> {
    read(format!("/proc/{pid}/environ"))
}

/// The process's pid in each pid namespace, from the one reading `/proc` (first) to its own
/// (last); `None` when the kernel does not say.
pub(crate) fn nspid(st: &Status) -> Option<&[i32]> {
    st.nspid.as_deref().filter(|p| !p.is_empty())
}

/// Whether `signal` is pending for the task (thread or process-wide).
pub(crate) fn signal_pending(st: &Status, signal: i32) -> bool {
    let bit = 1u64 << (signal - 1);
    (st.sigpnd | st.shdpnd) & bit != 0
}

/// The `monotonic` offset of a time namespace (`/proc/WHO/timens_offsets`, WHO a pid or
/// `self`), in nanoseconds; `None` when the file is missing (before Linux 5.6) or unreadable.
pub(crate) fn timens_monotonic(who: &str) -> Option<i64> {
    let b = read(format!("/proc/{who}/timens_offsets")).ok()?;
    parse_monotonic(&String::from_utf8_lossy(&b))
}

/// The `monotonic <secs> <nanosecs>` line of a `timens_offsets` file, in nanoseconds.
fn parse_monotonic(text: &str) -> Option<i64> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("monotonic"))?;
    let mut it = line.split_whitespace().skip(1);
    let secs: i64 = it.next()?.parse().ok()?;
    let nanos: i64 = it.next()?.parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The entries of `/proc/WHO/uid_map` (WHO a pid or `self`), `None` when unreadable.
pub(crate) fn uid_map(who: &str) -> Option<Vec<Vec<u64>>> {
    let b = read(format!("/proc/{who}/uid_map")).ok()?;
    Some(uid_map_entries(&String::from_utf8_lossy(&b)))
}

/// The entries of a `uid_map` (`inside outside count` a line, space-padded), as numbers.
fn uid_map_entries(text: &str) -> Vec<Vec<u64>> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .filter(|e: &Vec<u64>| !e.is_empty())
        .collect()
}

/// A file lock as `/proc/locks` and the `lock:` lines of `/proc/PID/fdinfo/FD` write it.
#[derive(Debug, Clone)]
pub struct FileLockLine {
    /// A `->` line: a waiter blocked on the lock of the line before, not a lock held.
    pub blocked: bool,
    /// The lock: FLOCK, POSIX or OFDLCK; READ or WRITE; the pid; the device and inode.
    pub lock: Lock,
}

/// Parses lines of the `/proc/locks` form (`1: FLOCK  ADVISORY  WRITE 42 fe:00:1234 0 EOF`,
/// `1: -> FLOCK ...`) with `procfs`'s parser, one line at a time; lines it does not take are
/// left out.
pub(crate) fn parse_locks<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<FileLockLine> {
    use procfs::FromBufRead;
    lines
        .filter_map(|line| {
            let line = line.trim();
            let blocked = line.split_whitespace().nth(1) == Some("->");
            let procfs::Locks(mut v) = procfs::Locks::from_buf_read(line.as_bytes()).ok()?;
            (v.len() == 1).then(|| FileLockLine {
                blocked,
                lock: v.remove(0),
            })
        })
        .collect()
}

/// `/proc/locks`: every file lock of the system (pids as this `/proc` sees them).
pub fn locks() -> io::Result<Vec<FileLockLine>> {
    Ok(parse_locks(
        String::from_utf8_lossy(&read("/proc/locks")?).lines(),
    ))
}

/// The locks held through one descriptor: the `lock:` lines of `/proc/PID/fdinfo/FD`.
pub(crate) fn fd_locks(pid: i32, fd: i32) -> io::Result<Vec<Lock>> {
    let text = String::from_utf8_lossy(&read(format!("/proc/{pid}/fdinfo/{fd}"))?).into_owned();
    Ok(
        parse_locks(text.lines().filter_map(|l| l.strip_prefix("lock:")))
            .into_iter()
            .filter(|l| !l.blocked)
            .map(|l| l.lock)
            .collect(),
    )
}

/// A process's open descriptors (`/proc/PID/fd`), sorted, at most [`MAX_FDS`].
pub(crate) fn fds(pid: i32) -> io::Result<Vec<i32>> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))?
        .take(MAX_FDS)
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// What a descriptor names (`/proc/PID/fd/FD`'s link: a path, `pipe:[N]`, a path with
/// ` (deleted)`...), and the device (major, minor) and inode of the file it has open.
pub(crate) fn fd_file(pid: i32, fd: i32) -> io::Result<(String, (u32, u32), u64)> {
    use std::os::unix::fs::MetadataExt;
    let link = format!("/proc/{pid}/fd/{fd}");
    let path = std::fs::read_link(&link)?.to_string_lossy().into_owned();
    let st = std::fs::metadata(&link)?;
    let dev = st.dev();
    Ok((path, (libc::major(dev), libc::minor(dev)), st.ino()))
}

/// `/proc/PID/task/TID/syscall`: the system call a thread is blocked in and its arguments.
pub(crate) fn task_syscall(pid: i32, tid: i32) -> io::Result<Syscall> {
    let path = format!("/proc/{pid}/task/{tid}/syscall");
    parse(&read(&path)?, &path)
}

/// `/proc/PID/task/TID/schedstat`: a thread's time on a CPU, its time waiting for one, and
/// how many times it was given one.
pub(crate) fn task_schedstat(pid: i32, tid: i32) -> io::Result<Schedstat> {
    let path = format!("/proc/{pid}/task/{tid}/schedstat");
    parse(&read(&path)?, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tfix (x)\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t42\nNgid:\t0\nPid:\t43\nPPid:\t1\nTracerPid:\t7\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\nFDSize:\t64\nGroups:\t5 27 \nNStgid:\t42\t3\nNSpid:\t43\t4\nNSpgid:\t42\t3\nNSsid:\t42\t3\nThreads:\t9\nSigQ:\t0/1000\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\nSigBlk:\t0\nSigIgn:\t0\nSigCgt:\t0\nCapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\t0\n";

    #[test]
    fn status_fields() {
        let st = parse_status(STATUS.as_bytes()).unwrap();
        assert_eq!((st.tgid, st.pid, st.ppid, st.tracerpid), (42, 43, 1, 7));
        assert_eq!((st.euid, st.fuid, st.fgid), (1001, 1003, 8));
        assert_eq!(st.groups, vec![5, 27]);
        assert_eq!(nspid(&st), Some(&[43, 4][..]));
        assert_eq!(st.threads, 9);
        assert_eq!(st.state.chars().next(), Some('S'));
        assert!(signal_pending(&st, libc::SIGKILL));
        assert!(!signal_pending(&st, libc::SIGTERM));
        let odd = STATUS.replace("fix (x)", "a:\u{1b}]0;b").into_bytes();
        let mut odd = odd;
        odd.insert(8, 0xff);
        assert_eq!(parse_status(&odd).unwrap().tgid, 42);
        assert_eq!(
            parse_status(b"garbage").unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn own_files() {
        let me = std::process::id() as i32;
        assert_eq!(status(me).unwrap().tgid, me);
        let st = task_stat(me, me).unwrap();
        assert!(matches!(st.state, 'R' | 'S'), "{}", st.state);
        assert_eq!(st.flags & PF_KTHREAD, 0);
        assert!(tasks(me).unwrap().contains(&me));
        assert!(maps(me).unwrap().len() > 3);
        let odd = parse_maps(
            "1000-2000 rw-s 00000000 00:01 5 /SYSV\n3000-4000 r--p 0 08:01 9 /a b (deleted)\n",
        );
        assert_eq!(odd[0].path, "/SYSV");
        assert_eq!(odd[1].path, "/a b (deleted)");
        let auxv = parse_auxv(&auxv_bytes(me).unwrap());
        assert!(auxv.iter().any(|&(k, v)| k == AT_ENTRY && v != 0));
        assert_eq!(
            status(i32::MAX).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn auxv_bounded() {
        let mut raw = Vec::new();
        for i in 1..=1000u64 {
            raw.extend_from_slice(&i.to_le_bytes());
            raw.extend_from_slice(&(i * 2).to_le_bytes());
        }
        raw.extend_from_slice(&[1, 2, 3]);
        assert_eq!(parse_auxv(&raw).len(), MAX_AUXV);
        assert_eq!(parse_auxv(&raw[..32]), vec![(1, 2), (2, 4)]);
        assert!(parse_auxv(&[0; 40]).is_empty());
    }

    #[test]
    fn user_namespace_maps() {
        assert_eq!(
            uid_map_entries("         0          0 4294967295\n"),
            vec![vec![0, 0, 4_294_967_295]]
        );
        assert_eq!(
            uid_map_entries("0 1000 1\n1 100000 65536\n"),
            vec![vec![0, 1000, 1], vec![1, 100_000, 65_536]]
        );
        assert!(uid_map("self").is_some());
    }

    #[test]
    fn time_namespace_offsets() {
        assert_eq!(
            parse_monotonic("monotonic           0         0\nboottime  0 0\n"),
            Some(0)
        );
        assert_eq!(
            parse_monotonic("boottime 1 0\nmonotonic -3600 5\n"),
            Some(-3_599_999_999_995)
        );
        assert_eq!(parse_monotonic("monotonic x 0\n"), None);
        assert_eq!(parse_monotonic(""), None);
    }

    #[test]
    fn lock_lines() {
        let v = parse_locks(
            "1: FLOCK  ADVISORY  WRITE 42 fe:00:1234 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 42 fe:00:1234 0 EOF\nlock:\tgarbage\n2: OFDLCK ADVISORY  READ  -1 00:06:9 0 EOF"
                .lines(),
        );
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(!v[0].blocked && v[1].blocked && !v[2].blocked);
        assert_eq!(
            (v[0].lock.pid, v[0].lock.devmaj, v[0].lock.inode),
            (Some(42), 0xfe, 1234)
        );
        assert_eq!(v[0].lock.lock_type.as_str(), "FLOCK");
        assert_eq!(v[2].lock.kind.as_str(), "READ");
    }

    /// A file this test process locks: its descriptor's `lock:` line and `/proc/locks` name
    /// the inode the descriptor has open.
    #[test]
    fn own_file_lock() {
        use std::os::fd::AsRawFd;
        let me = std::process::id() as i32;
        let path = std::env::temp_dir().join(format!("goroscope-proc-test-{me}"));
        let f = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let fd = f.as_raw_fd();
        // SAFETY: flock on a descriptor this test owns.
        assert_eq!(unsafe { libc::flock(fd, libc::LOCK_EX) }, 0);
        let (name, dev, ino) = fd_file(me, fd).unwrap();
        assert!(name.ends_with(" (deleted)"), "{name}");
        let held = fd_locks(me, fd).unwrap();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(
            (held[0].devmaj, held[0].devmin, held[0].inode),
            (dev.0, dev.1, ino)
        );
        assert_eq!(held[0].lock_type.as_str(), "FLOCK");
        assert_eq!(held[0].kind.as_str(), "WRITE");
        assert!(fds(me).unwrap().contains(&fd));
        assert!(
            locks()
                .unwrap()
                .iter()
                .any(|l| !l.blocked && l.lock.inode == ino && l.lock.pid == Some(me))
        );
    }
}
