//! `sync.Mutex`, `sync.RWMutex` and `sync.WaitGroup` shown by what their state words mean
//! (`sync/mutex.go`, `sync/rwmutex.go`, `sync/waitgroup.go`; from Go 1.24 the Mutex's state is
//! in its `internal/sync.Mutex`), with member offsets from DWARF: `{locked: true, waiters: 0,
//! starving: false}`, `{w: {...}, readers: 2, writer: false}`, `{counter: 1, waiters: 2}`.

use super::show::{Reader, Val};
use super::types::{Field, Kind};
use std::fmt::Write as _;

/// `mutexLocked`, `mutexStarving` and `mutexWaiterShift` of `sync/mutex.go`.
const MUTEX_LOCKED: u64 = 1;
const MUTEX_STARVING: u64 = 4;
const MUTEX_WAITER_SHIFT: u64 = 3;

/// Whether a struct type is one shown decoded.
pub fn is_lock(name: &str) -> bool {
    name == "sync.Mutex" || name == "sync.RWMutex" || name == "sync.WaitGroup"
}

fn field<'f>(f: &'f [Field], name: &str) -> Option<&'f Field> {
    f.iter().find(|x| x.name == name)
}

fn fields_of(r: &Reader<'_>, ty: u64) -> Option<Vec<Field>> {
    let t = r.dw.ty(ty).ok()?;
    match &t.kind {
        Kind::Struct(f) => Some(f.clone()),
        _ => None,
    }
}

/// An int32 at `off` (sign-extended).
fn int32(r: &Reader<'_>, v: &Val, off: u64) -> Result<i64, String> {
    Ok(i64::from(r.uint(v, off, 4)? as u32 as i32))
}

/// The Mutex's state word: its own `state`, or its `mu`'s (Go 1.24 on).
fn mutex_state(r: &Reader<'_>, v: &Val, fields: &[Field]) -> Result<u64, String> {
    if let Some(f) = field(fields, "state") {
        return r.uint(v, f.offset, 4);
    }
    let mu = field(fields, "mu").ok_or("sync.Mutex without state or mu")?;
    let inner = fields_of(r, mu.ty).ok_or("sync.Mutex's mu is not a struct")?;
    let st = field(&inner, "state").ok_or("internal/sync.Mutex without state")?;
    r.uint(v, mu.offset + st.offset, 4)
}

fn write_mutex(r: &Reader<'_>, v: &Val, fields: &[Field], out: &mut String) -> Result<(), String> {
    out.push_str(&mutex_text(mutex_state(r, v, fields)?));
    Ok(())
}

/// What a Mutex's state word says.
fn mutex_text(s: u64) -> String {
    format!(
        "{{locked: {}, waiters: {}, starving: {}}}",
        s & MUTEX_LOCKED != 0,
        s >> MUTEX_WAITER_SHIFT,
        s & MUTEX_STARVING != 0
    )
}

/// An RWMutex's active readers and whether a writer holds it or waits, from `readerCount`.
fn readers(count: i64) -> (i64, bool) {
    if count < 0 {
        (count + crate::snapshot::RWMUTEX_MAX_READERS, true)
    } else {
        (count, false)
    }
}

fn waitgroup_text(state: u64) -> String {
    let (counter, waiters) = crate::runtime::blocked::waitgroup_counts(state);
    format!("{{counter: {counter}, waiters: {waiters}}}")
}

/// A WaitGroup's state word: `state` (an `atomic.Uint64` whose `v` holds it, Go 1.20 on), or
/// Go 1.19's `state1`, which 64-bit platforms always align to 8 and so use as the word itself.
fn waitgroup_state(r: &Reader<'_>, v: &Val, fields: &[Field]) -> Result<u64, String> {
    if let Some(f) = field(fields, "state1") {
        return r.uint(v, f.offset, 8);
    }
    let st = field(fields, "state").ok_or("sync.WaitGroup without state or state1")?;
    let inner = fields_of(r, st.ty)
        .and_then(|f| field(&f, "v").map(|x| x.offset))
        .unwrap_or(0);
    r.uint(v, st.offset + inner, 8)
}

/// Writes a lock's decoded state (the type name already written, if wanted).
pub fn write_lock(
    r: &Reader<'_>,
    v: &Val,
    name: &str,
    fields: &[Field],
    out: &mut String,
) -> Result<(), String> {
    if name == "sync.Mutex" {
        return write_mutex(r, v, fields, out);
    }
    if name == "sync.WaitGroup" {
        out.push_str(&waitgroup_text(waitgroup_state(r, v, fields)?));
        return Ok(());
    }
    let w = field(fields, "w").ok_or("sync.RWMutex without w")?;
    let wf = fields_of(r, w.ty).ok_or("sync.RWMutex's w is not a struct")?;
    // readerCount is an atomic.Int32 (a struct whose v holds it) or a plain int32.
    let count = field(fields, "readerCount").ok_or("sync.RWMutex without readerCount")?;
    let inner = fields_of(r, count.ty)
        .and_then(|f| field(&f, "v").map(|x| x.offset))
        .unwrap_or(0);
    let n = int32(r, v, count.offset + inner)?;
    // A writer (holding or waiting) makes readerCount negative by rwmutexMaxReaders.
    let (readers, writer) = readers(n);
    out.push_str("{w: ");
    write_mutex(r, &r.at(v, w.offset, w.ty), &wf, out)?;
    let _ = write!(out, ", readers: {readers}, writer: {writer}}}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{mutex_text, readers, waitgroup_text};

    #[test]
    fn lock_words_decoded_as_sync_defines_them() {
        assert_eq!(
            mutex_text(0),
            "{locked: false, waiters: 0, starving: false}"
        );
        // Locked, woken, starving, two waiters.
        assert_eq!(
            mutex_text(1 | 2 | 4 | (2 << 3)),
            "{locked: true, waiters: 2, starving: true}"
        );
        assert_eq!(readers(3), (3, false));
        // A writer holds it (no readers), or waits for two readers to leave.
        assert_eq!(readers(-(1 << 30)), (0, true));
        assert_eq!(readers(2 - (1 << 30)), (2, true));
    }

    #[test]
    fn waitgroup_words_decoded_as_sync_defines_them() {
        assert_eq!(waitgroup_text(0), "{counter: 0, waiters: 0}");
        // Add(2), then one Wait: the counter above, the waiters below.
        assert_eq!(waitgroup_text(2 << 32 | 1), "{counter: 2, waiters: 1}");
        // Go 1.25's synctest bubble flag is not a waiter.
        assert_eq!(
            waitgroup_text(1 << 32 | 0x8000_0000 | 3),
            "{counter: 1, waiters: 3}"
        );
        // A counter gone negative (Add panics then) shows as Go's int32 does.
        assert_eq!(
            waitgroup_text(u64::from(u32::MAX) << 32),
            "{counter: -1, waiters: 0}"
        );
    }
}
