use super::error::{PermFacts, permission_hint, yama_meaning};
use super::freeze::sigkill_pending;
use super::*;
use crate::target::ReadExt;

/// This test process, which [`LiveProcess::open`] refuses: its memory is read here.
fn own() -> LiveProcess {
    assert_eq!(
        LiveProcess::open(std::process::id() as i32).unwrap_err(),
        LiveError::Itself {
            pid: std::process::id() as i32
        }
    );
    LiveProcess {
        pid: std::process::id() as i32,
        arch: Arch::host().unwrap(),
        mem: OnceLock::new(),
    }
}

/// Three pages: the middle one unmapped.
struct Hole {
    base: *mut u8,
}
impl Hole {
    fn new() -> Hole {
        // SAFETY: anonymous private mapping of three pages; the middle one is then replaced
        // by a page of a one-page memfd at offset 4096, i.e. wholly past the end of the
        // file: any read of it faults, but the address range stays reserved, so no other
        // test thread's mapping can land in the hole.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                3 * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            assert!(p as isize != -1);
            for i in 0..3 * 4096 {
                *p.add(i) = (i % 251) as u8;
            }
            let fd = libc::memfd_create(c"goroscope-hole".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, 4096), 0);
            let q = libc::mmap(
                p.add(4096).cast(),
                4096,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                4096,
            );
            assert!(q as isize != -1);
            libc::close(fd);
            Hole { base: p }
        }
    }
    fn addr(&self, off: u64) -> u64 {
        self.base as u64 + off
    }
}
impl Drop for Hole {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped (the hole is already unmapped; munmap tolerates it).
        unsafe { libc::munmap(self.base.cast(), 3 * 4096) };
    }
}

#[test]
fn read_at_own_memory() {
    let p = own();
    let v: u64 = 0x1122_3344_5566_7788;
    assert_eq!(p.read_u64(&v as *const u64 as u64).unwrap(), v);
    assert!(p.read_u64(0).is_err());
}

#[test]
fn copy_into_batches_and_partial_reads() {
    let p = own();
    let h = Hole::new();
    let mut img = MemoryImage::new();
    let reqs = [
        (h.addr(0), 100),        // fine
        (h.addr(50), 100),       // overlaps the first
        (h.addr(4000), 200),     // runs into the hole
        (h.addr(4096 + 10), 10), // inside the hole
        (h.addr(8192 - 8), 16),  // starts in the hole, ends in page 3
        (h.addr(8192), 4096),    // page 3
        (h.addr(8192 + 5), 0),   // empty: ignored
        (u64::MAX - 4, 10),      // overflows
    ];
    let failed = p.copy_into(&reqs, &mut img);
    assert_eq!(failed, 4);
    assert!(img.contains(h.addr(0), 150));
    assert!(img.contains(h.addr(4000), 96));
    assert!(!img.contains(h.addr(4096), 1));
    assert!(img.contains(h.addr(8192), 4096));
    assert_eq!(
        img.read_u8(h.addr(8192 + 7)).unwrap(),
        ((8192 + 7) % 251) as u8
    );
    assert_eq!(img.read_u8(h.addr(4095)).unwrap(), (4095 % 251) as u8);
}

#[test]
fn copy_into_many_requests_crosses_batches() {
    let p = own();
    let stride = MERGE_GAP + 512;
    let data: Vec<u8> = (0..1500 * stride).map(|i| (i % 256) as u8).collect();
    // 1500 disjoint 1-byte requests with gaps wider than MERGE_GAP: more than one batch of
    // 1024 iovecs.
    let reqs: Vec<(u64, u64)> = (0..1500)
        .map(|i| (data.as_ptr() as u64 + stride * i, 1))
        .collect();
    let mut img = MemoryImage::new();
    assert_eq!(p.copy_into(&reqs, &mut img), 0);
    assert_eq!(img.range_count(), 1500);
    let last = (1499 * stride) as usize;
    assert_eq!(
        img.read_u8(data.as_ptr() as u64 + last as u64).unwrap(),
        data[last]
    );
}

#[test]
fn copy_into_merges_close_requests() {
    let p = own();
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 256) as u8).collect();
    // g structs of 456 bytes in 480-byte slots: one read.
    let reqs: Vec<(u64, u64)> = (0..8)
        .map(|i| (data.as_ptr() as u64 + 480 * i, 456))
        .collect();
    let mut img = MemoryImage::new();
    assert_eq!(p.copy_into(&reqs, &mut img), 0);
    assert_eq!(img.range_count(), 1);
    assert_eq!(
        img.read_u8(data.as_ptr() as u64 + 480 * 7 + 455).unwrap(),
        data[480 * 7 + 455]
    );
}

#[test]
fn prot_none_is_read_through_proc_mem() {
    let p = own();
    // SAFETY: one anonymous page, filled, then made inaccessible to normal reads.
    let page = unsafe {
        let q = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        std::ptr::write_bytes(q, 0xab, 4096);
        libc::mprotect(q.cast(), 4096, libc::PROT_NONE);
        q
    };
    let mut img = MemoryImage::new();
    assert_eq!(p.copy_into(&[(page as u64, 64)], &mut img), 0);
    assert_eq!(img.read_u8(page as u64 + 63).unwrap(), 0xab);
    assert_eq!(p.read_u8(page as u64).unwrap(), 0xab);
    // SAFETY: unmaps the page mapped above.
    unsafe { libc::munmap(page.cast(), 4096) };
}

#[test]
fn covered_intervals() {
    let got = [(0, 10), (5, 20), (20, 30), (40, 50)];
    assert!(covered(&got, 0, 30));
    assert!(covered(&got, 12, 25));
    assert!(!covered(&got, 25, 41));
    assert!(covered(&got, 45, 50));
    assert!(!covered(&got, 45, 51));
}

#[test]
fn open_errors() {
    assert_eq!(
        LiveProcess::open(-3).unwrap_err(),
        LiveError::NoSuchProcess { pid: -3 }
    );
    assert_eq!(
        LiveProcess::open(0x3fff_fff0).unwrap_err(),
        LiveError::NoSuchProcess { pid: 0x3fff_fff0 }
    );
    let p = own();
    assert_eq!(
        p.exe_path(),
        PathBuf::from(format!("/proc/{}/exe", std::process::id()))
    );
    assert!(
        p.thread_ids()
            .unwrap()
            .contains(&(std::process::id() as i32))
    );
    assert!(matches!(
        p.freeze(),
        Err(LiveError::PermissionDenied { .. })
    ));
}

#[test]
fn exiting_processes() {
    let me = std::process::id() as i32;
    let st = proc::task_stat(me, me).unwrap();
    assert!(matches!(st.state, 'R' | 'S'), "{}", st.state);
    assert_eq!(st.flags & proc::PF_EXITING, 0);
    assert!(!has_exited(me));
    assert!(!sigkill_pending(me, me));
    assert!(has_exited(0x3fff_fff0));
}

#[test]
fn display_lines() {
    let e = LiveError::AlreadyTraced {
        pid: 123,
        tracer: 0x3fff_fff0,
    };
    assert_eq!(
        e.to_string(),
        "process 123 is already traced by 1073741808; detach that tracer first"
    );
    let e = LiveError::StopTimeout {
        pid: 5,
        tid: 7,
        state: 'D',
    };
    assert_eq!(
        e.to_string(),
        "thread 7 of process 5 did not stop within 1000 ms (state D: uninterruptible sleep, waiting on a disk, \
         NFS or a vfork child); the target was released, try again when that thread is out of the kernel"
    );
    let e = LiveError::Ptrace {
        op: "seize",
        tid: 9,
        errno: libc::ESRCH,
    };
    assert_eq!(
        e.to_string(),
        "ptrace seize of thread 9 failed: no such process (errno 3); the target was released, try again"
    );
    for e in [
        LiveError::NoSuchProcess { pid: 1 },
        LiveError::Exited { pid: 1 },
        LiveError::Io {
            what: "/proc/1/task".into(),
            errno: libc::EACCES,
        },
        LiveError::StopTimeout {
            pid: 1,
            tid: 2,
            state: 'D',
        },
        LiveError::StopTimeout {
            pid: 1,
            tid: 2,
            state: '?',
        },
    ] {
        let s = e.to_string();
        assert!(
            s.starts_with(|c: char| c.is_lowercase()) && !s.contains('\n') && !s.ends_with('.'),
            "{s}"
        );
    }
}

#[test]
fn permission_hints() {
    let facts = |euid, cap, yama, target| PermFacts {
        euid,
        cap_sys_ptrace: cap,
        yama_scope: yama,
        target_uid: target,
        seccomp: Some(0),
        other_userns: false,
    };
    let h = permission_hint(&facts(1000, false, Some(1), Some(0)));
    assert!(h.contains("uid 1000 without CAP_SYS_PTRACE"), "{h}");
    assert!(h.contains("target runs as uid 0"), "{h}");
    assert!(h.contains("ptrace_scope is 1 (restricted"), "{h}");
    let h = permission_hint(&facts(0, true, Some(3), Some(0)));
    assert!(
        h.starts_with("kernel.yama.ptrace_scope is 3 (no attach"),
        "{h}"
    );
    assert!(permission_hint(&facts(0, true, None, None)).contains("security module"));
    let h = permission_hint(&facts(0, false, Some(2), None));
    assert!(
        h.contains("runs as root without CAP_SYS_PTRACE") && h.contains("admin-only"),
        "{h}"
    );
}

/// Every Yama value, with and without CAP_SYS_PTRACE: the value and its meaning are named
/// whenever they are (part of) the reason, and every message says what to do.
#[test]
fn yama_values() {
    for scope in 0..=4 {
        for cap in [false, true] {
            let f = PermFacts {
                euid: 1000,
                cap_sys_ptrace: cap,
                yama_scope: Some(scope),
                target_uid: Some(1000),
                seccomp: Some(0),
                other_userns: false,
            };
            let h = permission_hint(&f);
            println!("scope {scope} cap {cap}: {h}");
            assert!(
                !h.is_empty() && !h.contains('\n') && !h.ends_with('.'),
                "{h}"
            );
            let named = h.contains(&format!(
                "kernel.yama.ptrace_scope is {scope} ({})",
                yama_meaning(scope)
            ));
            assert!(
                named || (scope == 0 && !cap),
                "scope {scope} cap {cap}: {h}"
            );
            // With the capability, scopes 0-2 allow the attach, so something else refused it.
            match (scope, cap) {
                (3, _) => assert!(
                    h.starts_with("kernel.yama.ptrace_scope is 3 (no attach")
                        && h.contains("reboot"),
                    "{h}"
                ),
                (1, false) => assert!(
                    h.contains("set it to 0") && h.contains("CAP_SYS_PTRACE"),
                    "{h}"
                ),
                (2, false) => assert!(
                    h.contains("admin-only")
                        && h.contains("run it as root or grant CAP_SYS_PTRACE"),
                    "{h}"
                ),
                (0, false) => assert!(
                    h.contains("run it as root or grant CAP_SYS_PTRACE") && !h.contains("yama"),
                    "{h}"
                ),
                (0..=2, true) => assert!(named && h.contains("security module"), "{h}"),
                (4, _) => assert!(h.contains("unknown value"), "{h}"),
                _ => unreachable!(),
            }
        }
    }
}

#[test]
fn seccomp_and_user_namespaces() {
    let base = PermFacts {
        euid: 0,
        cap_sys_ptrace: true,
        yama_scope: None,
        target_uid: Some(0),
        seccomp: Some(2),
        other_userns: false,
    };
    let h = permission_hint(&base);
    assert!(
        h.contains("seccomp filter (Seccomp: 2") && h.contains("seccomp=unconfined"),
        "{h}"
    );
    assert!(
        !h.contains("security module"),
        "the filter is the reason: {h}"
    );
    let h = permission_hint(&PermFacts {
        seccomp: Some(1),
        ..base
    });
    assert!(h.contains("seccomp strict mode"), "{h}");
    let h = permission_hint(&PermFacts {
        seccomp: Some(0),
        other_userns: true,
        ..base
    });
    assert!(h.contains("another user namespace"), "{h}");
    let h = permission_hint(&PermFacts {
        seccomp: None,
        ..base
    });
    assert!(
        h.contains("Yama is off") && h.contains("security module"),
        "{h}"
    );
}
