//! What goroutines wait on and who holds it: the channels and sync primitives they are
//! blocked on with their holders, and the file locks of a live process.

use super::Name;
use serde::{Deserialize, Serialize};

/// An object a goroutine waits on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockedOn {
    /// `chan`, `sync.Mutex`, `sync.RWMutex`, `sync.WaitGroup`, `semaphore` (shared by the
    /// waits of one kind).
    pub kind: Name,
    /// The object's address.
    pub addr: u64,
    /// The sudog the goroutine waits in (0 when not known): the runtime's record of the
    /// wait, which points at the object.
    #[serde(skip_serializing_if = "is_zero")]
    pub sudog: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A channel or sync primitive goroutines wait on, with its own state read from memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncObject {
    /// `chan`, `sync.Mutex`, `sync.RWMutex`, `sync.WaitGroup`, `semaphore`.
    pub kind: String,
    /// Address.
    pub addr: u64,
    /// Raw fields read (`qcount`, `readerCount`, ...).
    pub fields: Vec<(String, i64)>,
    /// One line describing its state.
    pub summary: String,
    /// Number of waiters by what they wait for (their state, e.g. `sync.RWMutex.RLock`).
    pub waiters: std::collections::BTreeMap<String, usize>,
    /// The goroutines known to hold it (a Mutex, an RWMutex's write or read lock).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<Holder>,
}

/// A goroutine holding a lock, the frame that holds it, and how that is known.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Holder {
    /// Goroutine id.
    pub goroutine: u64,
    /// `write` (a Mutex, an RWMutex's write lock) or `read` (an RWMutex's read lock).
    pub lock: String,
    /// The holding frame's function.
    pub function: Name,
    /// The holding frame's source file.
    pub file: Name,
    /// The holding frame's source line (where it is now).
    pub line: u32,
    /// How it is known. `defer`: the frame has a pending deferred unlock of this lock
    /// (`mu.Lock(); defer mu.Unlock()`), which is certain unless the function unlocked it by
    /// hand and left the deferred unlock pending (not told apart). Possible holders of a held
    /// lock others wait for that no deferred unlock names ([`crate::runtime::holders`]):
    /// `pointer` (the frame points at the lock or into its heap object) or `code` (the
    /// frame's code takes its address).
    pub how: String,
}

/// `rwmutexMaxReaders` (`sync/rwmutex.go`): a writer subtracts it from `readerCount`.
pub(crate) const RWMUTEX_MAX_READERS: i64 = 1 << 30;

impl SyncObject {
    /// All waiters.
    pub(crate) fn total_waiters(&self) -> usize {
        self.waiters.values().sum()
    }

    /// A field of the object's state, as read.
    fn field(&self, name: &str) -> Option<i64> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    /// Read holders of an RWMutex by its counts: `readerWait` while a writer is pending or
    /// holds it (`readerCount` < 0), else `readerCount`; `None` for another kind or without
    /// its fields. A `readerCount` below `-rwmutexMaxReaders` or above it is not a count:
    /// `None`.
    pub(crate) fn read_holders(&self) -> Option<i64> {
        if self.kind != "sync.RWMutex" {
            return None;
        }
        let (rc, rw) = (self.field("readerCount")?, self.field("readerWait")?);
        match rc {
            0..RWMUTEX_MAX_READERS => Some(rc),
            _ if (-RWMUTEX_MAX_READERS..0).contains(&rc) => Some(rw.max(0)),
            _ => None,
        }
    }

    /// Whether a holder claim agrees with the lock's own state, read from memory: a Mutex is
    /// locked; an RWMutex's write lock is taken or pending (its inner Mutex locked,
    /// `readerCount` below zero); its read lock is held by some reader. A claim the state
    /// denies (the function unlocked by hand and left its deferred unlock pending) makes no
    /// edge. Without the fields, the claim stands.
    pub(crate) fn claim_holds(&self, h: &Holder) -> bool {
        match (self.kind.as_str(), h.lock.as_str()) {
            ("sync.Mutex", _) => self.field("state").is_none_or(|s| s & 1 != 0),
            ("sync.RWMutex", "write") => {
                self.field("w.state").is_none_or(|s| s & 1 != 0)
                    && self.field("readerCount").is_none_or(|rc| rc < 0)
            }
            ("sync.RWMutex", _) => self.read_holders().is_none_or(|n| n > 0),
            _ => true,
        }
    }

    /// Whether the lock's own state says it is held: a Mutex locked; an RWMutex read-locked
    /// by its counts, or write-locked (its inner Mutex locked, `readerCount` below zero and no
    /// reader left to wait for). `None` without the fields.
    pub(crate) fn held_by_state(&self) -> Option<bool> {
        match self.kind.as_str() {
            "sync.Mutex" => Some(self.field("state")? & 1 != 0),
            "sync.RWMutex" => {
                let (ws, rc, rw) = (
                    self.field("w.state")?,
                    self.field("readerCount")?,
                    self.field("readerWait")?,
                );
                Some(self.read_holders()? > 0 || ws & 1 != 0 && rc < 0 && rw == 0)
            }
            _ => None,
        }
    }
}

/// What `/proc` says about the file locks of a live process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileLocks {
    /// Every lock the process holds, one a descriptor holding it (its `fdinfo` `lock:` lines).
    pub held: Vec<FileLock>,
    /// Every thread blocked in `flock(2)` (its `syscall` file), with the file it waits for.
    pub waits: Vec<FlockWait>,
    /// Every goroutine sleeping in a function that calls `flock` (a retry loop with
    /// `LOCK_NB`) while the process has a file it holds locked open again through another
    /// descriptor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<FlockRetry>,
    /// Why the locks could not be read all (unreadable `/proc/locks` or descriptors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A file the process holds locked through a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileLock {
    /// The descriptor.
    pub fd: i32,
    /// What it names (`/proc/PID/fd/FD`: a path, maybe with ` (deleted)`).
    pub path: String,
    /// The file's device, `major:minor` in hex as `/proc/locks` writes it (`fe:00`).
    pub dev: String,
    /// The file's inode.
    pub inode: u64,
    /// `FLOCK` (flock(2)), `POSIX` (fcntl) or `OFDLCK` (open file description lock).
    pub kind: String,
    /// `READ` (shared) or `WRITE` (exclusive).
    pub mode: String,
}

/// A goroutine sleeping in a function that calls `flock`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlockRetry {
    /// Goroutine id.
    pub goroutine: u64,
    /// The function that sleeps and calls `flock`, where it is now.
    pub function: Name,
    /// Its source file.
    pub file: Name,
    /// Its source line.
    pub line: u32,
    /// The descriptors that name a file the process holds locked (`FLOCK`) through another
    /// descriptor and hold no lock themselves: what such a loop may be retrying.
    pub opened_again: Vec<OpenFile>,
}

/// A descriptor and the file it names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenFile {
    /// The descriptor.
    pub fd: i32,
    /// The file's device, as in [`FileLock::dev`].
    pub dev: String,
    /// The file's inode.
    pub inode: u64,
}

/// A thread blocked in `flock(2)`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlockWait {
    /// Thread id.
    pub thread: i32,
    /// The goroutine the thread runs (the snapshot's).
    pub goroutine: Option<u64>,
    /// The descriptor it locks (the system call's first argument).
    pub fd: i32,
    /// `shared` (LOCK_SH) or `exclusive` (LOCK_EX).
    pub operation: String,
    /// What the descriptor names.
    pub path: String,
    /// The file's device, as in [`FileLock::dev`].
    pub dev: String,
    /// The file's inode.
    pub inode: u64,
}
