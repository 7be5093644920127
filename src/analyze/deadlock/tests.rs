use super::*;
use crate::snapshot::{BlockedOn, Goroutine, Status};
use std::collections::HashSet;

fn holder(g: u64, f: &str) -> Holder {
    Holder {
        goroutine: g,
        lock: "write".into(),
        function: f.into(),
        file: "f.go".into(),
        line: 1,
        how: "defer".into(),
    }
}

fn waiter(id: u64, addr: u64) -> Goroutine {
    Goroutine {
        id,
        blocked_on: vec![BlockedOn {
            kind: "sync.Mutex".into(),
            addr,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn lock(addr: u64, holders: Vec<Holder>) -> SyncObject {
    SyncObject {
        kind: "sync.Mutex".into(),
        addr,
        holders,
        ..Default::default()
    }
}

#[test]
fn self_deadlock_cycle_and_a_plain_wait() {
    let snap = Snapshot {
        goroutines: vec![
            waiter(5, 0x10),
            waiter(7, 0x20),
            waiter(9, 0x30),
            waiter(11, 0x40),
        ],
        objects: vec![
            lock(0x10, vec![holder(5, "main.twice")]),
            lock(0x20, vec![holder(9, "main.b")]),
            lock(0x30, vec![holder(7, "main.a")]),
            lock(0x40, vec![holder(3, "main.busy")]),
        ],
        ..Default::default()
    };
    let v = find(&snap);
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(
        (v[0].kind, &v[0].goroutines[..]),
        ("self-deadlock", &[5][..])
    );
    assert_eq!(
        v[0].culprit.as_ref().unwrap().function.as_ref(),
        "main.twice"
    );
    assert_eq!((v[1].kind, &v[1].goroutines[..]), ("cycle", &[7, 9][..]));
    assert_eq!(
        (
            v[1].culprit.as_ref().unwrap().goroutine,
            v[1].lock.as_ref().unwrap().addr
        ),
        (7, 0x30),
        "7 holds 0x30, which 9 waits for"
    );
}

/// A claim the lock's own state denies makes no edge: an unlocked Mutex, an RWMutex no
/// reader holds by its counts. The readers a verdict reports come from the counts.
#[test]
fn claims_checked_against_the_state() {
    let with = |kind: &str, fields: Vec<(&str, i64)>, how: &str| Snapshot {
        goroutines: vec![waiter(5, 0x10)],
        objects: vec![SyncObject {
            kind: kind.into(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            holders: vec![Holder {
                lock: how.into(),
                ..holder(5, "main.f")
            }],
            ..lock(0x10, vec![])
        }],
        ..Default::default()
    };
    assert_eq!(
        find(&with("sync.Mutex", vec![("state", 1)], "write")).len(),
        1
    );
    assert!(find(&with("sync.Mutex", vec![("state", 0)], "write")).is_empty());
    let rw = |rc: i64, wait: i64| vec![("w.state", 1), ("readerCount", rc), ("readerWait", wait)];
    let max = crate::snapshot::RWMUTEX_MAX_READERS;
    let v = find(&with("sync.RWMutex", rw(3 - max, 2), "read"));
    assert_eq!(v[0].readers, Some(Readers { hold: 2, found: 1 }));
    assert!(find(&with("sync.RWMutex", rw(1 - max, 0), "read")).is_empty());
    assert_eq!(find(&with("sync.RWMutex", rw(-max, 0), "write")).len(), 1);
    assert!(find(&with("sync.RWMutex", rw(2, 0), "write")).is_empty());
}

/// Several locks held by nobody, listed out of address order: each gets its own waiters
/// (a goroutine waiting on two is a waiter of both, one waiting twice on one counts once), a
/// lock nobody waits for or that is unlocked gets no verdict, and the verdicts come by
/// address.
#[test]
fn locks_held_by_nobody_each_with_its_waiters() {
    let locked = |addr: u64| SyncObject {
        fields: vec![("state".into(), 0x1)],
        ..lock(addr, vec![])
    };
    let mut both = waiter(8, 0x30);
    both.blocked_on.push(waiter(8, 0x10).blocked_on.remove(0));
    let mut twice = waiter(9, 0x20);
    twice.blocked_on.push(waiter(9, 0x20).blocked_on.remove(0));
    let snap = Snapshot {
        goroutines: vec![
            waiter(2, 0x10),
            both,
            twice,
            waiter(4, 0x50),
            waiter(5, 0x30),
        ],
        objects: vec![
            locked(0x30),
            locked(0x40),
            locked(0x10),
            SyncObject {
                fields: vec![("state".into(), 0)],
                ..lock(0x50, vec![])
            },
            locked(0x20),
        ],
        ..Default::default()
    };
    let got: Vec<(u64, Vec<u64>)> = find(&snap)
        .into_iter()
        .map(|v| {
            assert_eq!(v.kind, "held-by-nobody");
            assert_eq!(v.goroutines, v.waiters);
            (v.lock.unwrap().addr, v.waiters)
        })
        .collect();
    assert_eq!(
        got,
        vec![(0x10, vec![2, 8]), (0x20, vec![9]), (0x30, vec![8, 5])]
    );
}

/// A locked Mutex with waiters and no holder: held by nobody, no culprit; unlocked, or
/// with a holder, or without waiters: no verdict. A second snapshot confirms it only when
/// the first had it with the same waiters still waiting.
#[test]
fn held_by_nobody_and_its_confirmation() {
    let snap = |state: i64, holders: Vec<Holder>, waiting: bool| Snapshot {
        goroutines: if waiting {
            vec![waiter(4, 0x10), waiter(6, 0x10)]
        } else {
            vec![]
        },
        objects: vec![SyncObject {
            fields: vec![("state".into(), state)],
            ..lock(0x10, holders)
        }],
        ..Default::default()
    };
    let v = find(&snap(0x11, vec![], true));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].kind, &v[0].waiters[..], v[0].culprit.is_none()),
        ("held-by-nobody", &[4, 6][..], true)
    );
    assert_eq!(v[0].lock.as_ref().unwrap().addr, 0x10);
    assert!(find(&snap(0x10, vec![], true)).is_empty());
    assert!(find(&snap(0x11, vec![], false)).is_empty());
    let held = find(&snap(0x11, vec![holder(3, "main.busy")], true));
    assert!(held.iter().all(|v| v.kind != "held-by-nobody"), "{held:?}");
    assert!(needs_confirming(&v[0]));
    assert_eq!(confirm(&v, v.clone()), v);
    assert!(confirm(&[], v.clone()).is_empty());
    let mut fewer = v.clone();
    fewer[0].waiters = vec![4];
    assert!(confirm(&v, fewer.clone()).is_empty());
    assert_eq!(confirm(&fewer, v.clone()), v);

    // A second look: kept when its waiters did not run, the lock's words are the same and
    // no goroutine that ran holds it now.
    let first = snap(0x11, vec![], true);
    let again = |state: i64, holders: Vec<Holder>| {
        vec![SyncObject {
            fields: vec![("state".into(), state)],
            ..lock(0x10, holders)
        }]
    };
    let none: HashSet<u64> = [9].into();
    assert_eq!(
        confirm_again(&first, v.clone(), &none, &again(0x11, vec![])),
        v
    );
    let ran: HashSet<u64> = [6].into();
    assert!(confirm_again(&first, v.clone(), &ran, &again(0x11, vec![])).is_empty());
    assert!(confirm_again(&first, v.clone(), &none, &again(0x19, vec![])).is_empty());
    let taken = again(0x11, vec![holder(3, "main.busy")]);
    assert!(confirm_again(&first, v.clone(), &none, &taken).is_empty());
    assert!(confirm_again(&first, v.clone(), &none, &[]).is_empty());
}

/// Possible holders (a pointer, code) rank after certain ones: they never make a
/// self-deadlock or a cycle, and count for held while blocked only on a lock no certain
/// holder claims, the culprit saying how it is known.
#[test]
fn possible_holders_rank_after_certain_ones() {
    let maybe = |g: u64, f: &str| Holder {
        how: "pointer".into(),
        ..holder(g, f)
    };
    // 5 and 7 each possibly hold what the other waits for, 9 possibly holds its own.
    let snap = Snapshot {
        goroutines: vec![waiter(5, 0x10), waiter(7, 0x20), waiter(9, 0x30)],
        objects: vec![
            lock(0x10, vec![maybe(7, "main.a")]),
            lock(0x20, vec![maybe(5, "main.b")]),
            lock(0x30, vec![maybe(9, "main.c")]),
        ],
        ..Default::default()
    };
    assert!(find(&snap).is_empty(), "{:?}", find(&snap));
    // A holder blocked for good: with a certain holder beside it, the certain one is the
    // culprit; alone, the possible one is, `how` saying so.
    let blocked = |holders: Vec<Holder>| Snapshot {
        goroutines: vec![
            on_chan(3, "chan receive", 0x100),
            on_chan(4, "chan receive", 0x100),
            waiter(8, 0x10),
        ],
        objects: vec![lock(0x10, holders), chan_obj(0x100, 0, 0)],
        ..Default::default()
    };
    let v = find(&blocked(vec![maybe(3, "main.p"), holder(4, "main.d")]));
    let c = v[0].culprit.as_ref().unwrap();
    assert_eq!((c.goroutine, c.how.as_deref()), (4, Some("defer")), "{v:?}");
    assert_eq!(v[0].goroutines, [4]);
    let v = find(&blocked(vec![maybe(3, "main.p")]));
    let c = v[0].culprit.as_ref().unwrap();
    assert_eq!(
        (c.goroutine, c.how.as_deref()),
        (3, Some("pointer")),
        "{v:?}"
    );
}

/// A holder in a system call: held while blocked, the call its innermost frame outside
/// the runtime and the raw system call wrappers, and a verdict to confirm.
#[test]
fn holder_in_a_system_call() {
    use crate::snapshot::Frame;
    let frame = |f: &str| {
        Frame::new(
            crate::snapshot::Site {
                function: f.into(),
                ..Default::default()
            }
            .into(),
            Default::default(),
            0,
            0,
        )
    };
    let reader = Goroutine {
        id: 3,
        status: Status::SYSCALL,
        state: "syscall".into(),
        frames: [
            "internal/runtime/syscall.Syscall6",
            "syscall.Syscall",
            "syscall.read",
            "syscall.Read",
            "main.read",
        ]
        .into_iter()
        .map(frame)
        .collect(),
        ..Default::default()
    };
    let snap = Snapshot {
        goroutines: vec![reader, waiter(4, 0x10)],
        objects: vec![lock(0x10, vec![holder(3, "main.read")])],
        ..Default::default()
    };
    let v = find(&snap);
    assert_eq!(v.len(), 1, "{v:?}");
    let w = v[0].waits_on.as_ref().unwrap();
    assert_eq!(
        (v[0].kind, &*w.state, w.call.as_deref()),
        ("held-while-blocked", "syscall", Some("syscall.read"))
    );
    assert!(needs_confirming(&v[0]));
}

fn chan_obj(addr: u64, queued: i64, cap: i64) -> SyncObject {
    SyncObject {
        kind: "chan".into(),
        addr,
        fields: vec![
            ("qcount".into(), queued),
            ("dataqsiz".into(), cap),
            ("elemsize".into(), 8),
            ("closed".into(), 0),
        ],
        ..Default::default()
    }
}

fn on_chan(id: u64, state: &str, addr: u64) -> Goroutine {
    Goroutine {
        id,
        status: Status::WAITING,
        state: state.into(),
        blocked_on: vec![BlockedOn {
            kind: "chan".into(),
            addr,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A holder sending on a full channel nobody receives from, a writer waiting for it: held
/// while blocked. With a receiver on the channel, or a free slot, no verdict.
#[test]
fn held_while_blocked_only_when_nobody_is_on_the_other_side() {
    let snap = |receiver: bool, queued: i64| Snapshot {
        goroutines: [
            vec![on_chan(3, "chan send", 0x100), waiter(4, 0x10)],
            if receiver {
                vec![on_chan(5, "select", 0x100)]
            } else {
                vec![]
            },
        ]
        .concat(),
        objects: vec![
            lock(0x10, vec![holder(3, "main.send")]),
            chan_obj(0x100, queued, 2),
        ],
        ..Default::default()
    };
    let v = find(&snap(false, 2));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].kind, &v[0].goroutines[..], &v[0].waiters[..]),
        ("held-while-blocked", &[3][..], &[4][..])
    );
    assert_eq!(v[0].waits_on.as_ref().unwrap().chans, [0x100]);
    assert!(find(&snap(true, 2)).is_empty());
    assert!(find(&snap(false, 1)).is_empty());
}

/// A thread in flock on a file another descriptor of the process holds: the goroutine
/// whose deferred Close holds that descriptor is the culprit; without one, no culprit;
/// a shared wait on a shared lock, or the same descriptor, is no verdict.
#[test]
fn file_lock_self_deadlock() {
    use crate::snapshot::{FileLock, FileLocks, FlockWait, Frame, PendingDefer};
    let held = |mode: &str| FileLock {
        fd: 5,
        path: "/db".into(),
        dev: "fe:00".into(),
        inode: 9,
        kind: "FLOCK".into(),
        mode: mode.into(),
    };
    let wait = |fd: i32, op: &str| FlockWait {
        thread: 100,
        goroutine: Some(7),
        fd,
        operation: op.into(),
        path: "/db".into(),
        dev: "fe:00".into(),
        inode: 9,
    };
    let closer = |fd: i64| Goroutine {
        id: 7,
        frames: vec![
            Frame::new(
                crate::snapshot::Site {
                    function: "syscall.Flock".into(),
                    ..Default::default()
                }
                .into(),
                Default::default(),
                0,
                0,
            ),
            Frame::new(
                crate::snapshot::Site {
                    function: "main.again".into(),
                    ..Default::default()
                }
                .into(),
                Default::default(),
                0,
                0,
            ),
            {
                let mut f = Frame::at("main.open", "", 0);
                f.set_defers(vec![PendingDefer {
                    function: "os.(*File).Close".into(),
                    fd: Some(fd),
                    ..Default::default()
                }]);
                f
            },
        ],
        ..Default::default()
    };
    let snap = |g: Goroutine, h: FileLock, w: FlockWait| Snapshot {
        goroutines: vec![g],
        file_locks: Some(FileLocks {
            held: vec![h],
            waits: vec![w],
            retries: Vec::new(),
            error: None,
        }),
        ..Default::default()
    };
    let v = find(&snap(closer(5), held("WRITE"), wait(8, "exclusive")));
    assert_eq!(v.len(), 1, "{v:?}");
    let c = v[0].culprit.as_ref().unwrap();
    assert_eq!(
        (v[0].kind, c.goroutine, &*c.function),
        ("file-lock", 7, "main.open")
    );
    let f = v[0].file.as_ref().unwrap();
    assert_eq!((f.fd, f.waiter_fd), (5, 8));
    assert_eq!(&*f.waiting_in.as_ref().unwrap().function, "main.again");
    let v = find(&snap(closer(6), held("WRITE"), wait(8, "exclusive")));
    assert_eq!(v.len(), 1);
    assert!(v[0].culprit.is_none() && v[0].goroutines == [7]);
    // Holding a Mutex another goroutine waits for, while in that flock: held while
    // blocked too, listed before the file-lock verdict.
    let mut both = snap(closer(5), held("WRITE"), wait(8, "exclusive"));
    both.goroutines[0].status = Status::SYSCALL;
    both.goroutines.push(waiter(11, 0x10));
    both.objects.push(lock(0x10, vec![holder(7, "main.open")]));
    let v = find(&both);
    assert_eq!(
        v.iter().map(|v| v.kind).collect::<Vec<_>>(),
        ["held-while-blocked", "file-lock"]
    );
    assert_eq!(&*v[0].waits_on.as_ref().unwrap().state, "flock");
    assert_eq!(v[0].waiters, [11]);
    assert!(find(&snap(closer(5), held("READ"), wait(8, "shared"))).is_empty());
    // Retrying in a sleep loop while fd 8 has the file open again.
    let mut retry = snap(closer(5), held("WRITE"), wait(8, "exclusive"));
    let files = retry.file_locks.as_mut().unwrap();
    files.waits.clear();
    files.retries.push(crate::snapshot::FlockRetry {
        goroutine: 7,
        function: "main.retry".into(),
        opened_again: vec![crate::snapshot::OpenFile {
            fd: 8,
            dev: "fe:00".into(),
            inode: 9,
        }],
        ..Default::default()
    });
    let v = find(&retry);
    let f = v[0].file.as_ref().unwrap();
    assert_eq!((f.how, f.waiter_fd, f.thread), ("retry", 8, None));
    retry.file_locks.as_mut().unwrap().held[0].mode = "READ".into();
    assert!(find(&retry).is_empty(), "a shared lock may let a retry in");
    assert!(find(&snap(closer(5), held("WRITE"), wait(5, "exclusive"))).is_empty());
}

/// Chunks built out of order keep, of each lock, every one of its first waiters in `allgs`
/// order (the ones a verdict is named from), and let go of those known to come after them.
#[test]
fn first_waiters_of_chunks_built_out_of_order() {
    // The waiters of 0x10 (g address = id * 0x100): chunk 0 has 3, chunk 1 has 3 (and one of
    // 0x20), chunk 2 has 1; the first two in allgs order are 1 and 2.
    let with_addr = |id: u64, lock: u64| Goroutine {
        addr: id * 0x100,
        ..waiter(id, lock)
    };
    let chunks = [
        vec![with_addr(1, 0x10), with_addr(2, 0x10), with_addr(3, 0x10)],
        vec![
            with_addr(4, 0x10),
            with_addr(5, 0x20),
            with_addr(6, 0x10),
            with_addr(7, 0x10),
        ],
        vec![with_addr(8, 0x10)],
    ];
    let first = FirstWaiters::new(2);
    // Chunk 1 before chunk 0: nothing known before it, so its first two stay (and the first
    // waiter of 0x20).
    assert_eq!(first.of_chunk(1, &chunks[1]), [0x400, 0x500, 0x600]);
    assert_eq!(first.of_chunk(0, &chunks[0]), [0x100, 0x200]);
    // Six waiters of 0x10 known before chunk 2.
    assert_eq!(first.of_chunk(2, &chunks[2]), Vec::<u64>::new());
}
