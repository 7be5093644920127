//! The snapshot model: what one dump read, independent of where it came from. Renderers and
//! analyses read only this. [`store`] writes and reads it as a versioned file.

mod sites;
pub(crate) use sites::{number as decimal, site_key};
pub mod store;
mod sync;
pub mod text;

pub(crate) use sync::RWMUTEX_MAX_READERS;
pub use sync::{
    BlockedOn, FileLock, FileLocks, FlockRetry, FlockWait, Holder, OpenFile, SyncObject,
};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most labels a goroutine is given (read from a target or a text dump).
pub(crate) const MAX_LABELS: u64 = 1024;

/// A name shared by every frame that has it (function and file names, states): a snapshot of
/// 100,000 goroutines holds a few hundred distinct ones, and a frame holds two. One pointer
/// wide (a shared `str` would be two): a string in files and JSON.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Arc<Box<str>>);

impl Default for Name {
    fn default() -> Name {
        Name::from("")
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Name {
    /// The name by its address: the same for every clone of one name (a map of addresses
    /// hashes the low bits, which the alignment leaves zero).
    pub(crate) fn key(&self) -> u64 {
        Arc::as_ptr(&self.0) as usize as u64 >> 3
    }

    /// `last` again when it is `text`: for a place whose frames mostly print what the frame
    /// there before printed (a frame's args at one pc, or at one site of a snapshot file).
    /// Compared a byte at a time, not by a `memcmp` call: these texts are a few bytes, and a
    /// call for each of a million and a half frames was 7% of a 100,000-goroutine JSON dump's
    /// CPU samples.
    pub(crate) fn again(last: Option<&Name>, text: &str) -> Option<Name> {
        last.filter(|n| n.as_bytes().iter().eq(text.as_bytes()))
            .cloned()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::new(Box::from(s)))
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(Arc::new(s.into_boxed_str()))
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, s: &str) -> bool {
        **self.0 == *s
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, s: &&str) -> bool {
        **self.0 == **s
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Name, D::Error> {
        de.deserialize_str(NameVisitor)
    }
}

/// Goroutines handed out at a time: by one thread of a walk, or of a snapshot file's reader.
pub(crate) const CHUNK: usize = 256;

/// Every goroutine a walk or a file's reader hands out in chunks, kept in order: the fold and
/// sink for callers that keep the whole model. Each chunk's goroutines are one allocation of
/// [`CHUNK`], not grown a goroutine at a time.
#[derive(Default)]
pub(crate) struct KeepAll(Vec<Goroutine>);

impl KeepAll {
    /// Room for `n` goroutines before any comes.
    pub(crate) fn with_capacity(n: usize) -> KeepAll {
        KeepAll(Vec::with_capacity(n))
    }

    pub(crate) fn fold(chunk: &mut Vec<Goroutine>, g: Goroutine) {
        if chunk.capacity() == 0 {
            chunk.reserve_exact(CHUNK);
        }
        chunk.push(g);
    }

    pub(crate) fn sink(&mut self, chunk: Vec<Goroutine>) {
        self.0.extend(chunk);
    }

    pub(crate) fn into_vec(self) -> Vec<Goroutine> {
        self.0
    }
}

/// Reads a [`Name`], shared with the same name read before while [`reading_names`] runs.
struct NameVisitor;

impl serde::de::Visitor<'_> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Name, E> {
        Ok(READ_NAMES.with(|t| match &mut *t.borrow_mut() {
            Some(seen) => seen.get(s),
            None => Name::from(s),
        }))
    }
}

/// Values made so far (names, sites), each handed out again for an equal one; at most `cap`
/// of them kept, so that ever new ones (a hostile file's, a hostile target's) get no more
/// sharing past it.
#[derive(Debug)]
pub(crate) struct Shared<T> {
    seen: std::collections::HashSet<T, crate::unwind::Seeded>,
    cap: usize,
}

/// Names shared by their text.
pub(crate) type SharedNames = Shared<Name>;

impl<T: Clone + Eq + std::hash::Hash> Shared<T> {
    /// None yet, keeping at most `cap`.
    pub(crate) fn new(cap: usize) -> Shared<T> {
        Shared {
            seen: Default::default(),
            cap,
        }
    }

    /// The value equal to `key` made before, or `make(key)`, kept for the next.
    pub(crate) fn get_or<Q>(&mut self, key: &Q, make: impl FnOnce(&Q) -> T) -> T
    where
        T: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        if let Some(v) = self.seen.get(key) {
            return v.clone();
        }
        let v = make(key);
        if self.seen.len() < self.cap {
            self.seen.insert(v.clone());
        }
        v
    }
}

impl SharedNames {
    /// `text` as a name, shared with the same text made before.
    pub(crate) fn get(&mut self, text: &str) -> Name {
        self.get_or(text, |t| Name::from(t))
    }
}

/// Distinct names [`reading_names`] keeps for sharing.
const MAX_READ_NAMES: usize = 1 << 20;

thread_local! {
    /// The names read so far while [`reading_names`] runs on this thread.
    static READ_NAMES: std::cell::RefCell<Option<SharedNames>> =
        const { std::cell::RefCell::new(None) };
    /// The sites read so far while [`reading_names`] runs on this thread.
    static READ_SITES: std::cell::RefCell<Option<Shared<Arc<Site>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `read` with every [`Name`] (and frame [`Site`]) it deserializes on this thread shared
/// with the same one read before (a snapshot file of 100,000 goroutines repeats a few hundred names millions of
/// times), then forgets them.
pub(crate) fn reading_names<T>(read: impl FnOnce() -> T) -> T {
    READ_NAMES.with(|t| *t.borrow_mut() = Some(SharedNames::new(MAX_READ_NAMES)));
    READ_SITES.with(|t| *t.borrow_mut() = Some(Shared::new(MAX_READ_NAMES)));
    let out = read();
    READ_NAMES.with(|t| *t.borrow_mut() = None);
    READ_SITES.with(|t| *t.borrow_mut() = None);
    out
}

/// One dump of a Go process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Facts about the process and the dump.
    pub meta: Meta,
    /// Every goroutine that is not dead, in `allgs` order.
    pub goroutines: Vec<Goroutine>,
    /// Every thread, with the goroutine it was running.
    pub threads: Vec<Thread>,
    /// Channels and sync primitives goroutines are blocked on or hold through a pending
    /// deferred unlock, most waiters first.
    pub objects: Vec<SyncObject>,
    /// The file locks the process holds and its threads blocked in `flock(2)`, from `/proc`
    /// after the snapshot; `None` when not read (a core, a text dump, an older snapshot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_locks: Option<FileLocks>,
}

/// Where a snapshot came from (`live`, `core` or `text` in files and JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A running process.
    #[default]
    Live,
    /// A core file.
    Core,
    /// A Go traceback text.
    Text,
    /// A file that names another source.
    #[serde(other)]
    Unknown,
}

/// A goroutine's status by the runtime's numbers (`_Grunning` ... in `runtime2.go`), the GC's
/// scan bit removed. A number in files and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Status(pub u32);

impl Status {
    /// `_Gidle`.
    pub(crate) const IDLE: Status = Status(0);
    /// `_Grunnable`.
    pub(crate) const RUNNABLE: Status = Status(1);
    /// `_Grunning`.
    pub(crate) const RUNNING: Status = Status(2);
    /// `_Gsyscall`.
    pub const SYSCALL: Status = Status(3);
    /// `_Gwaiting`.
    pub(crate) const WAITING: Status = Status(4);
    /// `_Gdead`.
    pub(crate) const DEAD: Status = Status(6);
    /// `_Gcopystack`.
    pub(crate) const COPYSTACK: Status = Status(8);
    /// `_Gpreempted`.
    pub const PREEMPTED: Status = Status(9);
    /// `_Gleaked` (Go 1.26+).
    pub const LEAKED: Status = Status(10);
    /// `_Gdeadextra` (Go 1.26+): a dead g attached to a cgo extra M.
    pub const DEAD_EXTRA: Status = Status(11);
}

/// Facts about the process and the dump.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// Where the snapshot came from.
    pub source: Source,
    /// Host name of the machine the target ran on.
    pub host: String,
    /// When it was taken, seconds since the Unix epoch.
    pub time_unix: u64,
    /// Process id (live targets).
    pub pid: Option<i32>,
    /// Executable path as the target saw it.
    pub exe: String,
    /// Go version string from buildinfo (`go1.27.3`).
    pub go_version: String,
    /// `amd64` or `arm64`.
    pub arch: String,
    /// How long the target was stopped, in nanoseconds.
    pub pause_ns: u64,
    /// Of the stop, nanoseconds spent copying memory (the rest is stopping and resuming
    /// the threads).
    pub copy_ns: u64,
    /// Bytes copied during the stop.
    pub copied_bytes: u64,
    /// Nanoseconds spent copying before the stop, while the target ran.
    pub precopy_ns: u64,
    /// Nanoseconds from goroscope's start to the start of this snapshot's copy: reading the
    /// executable and discovering the runtime, before the target is touched (0 when unknown:
    /// cores, text dumps, older files). In a run that takes several snapshots it counts from
    /// the start of the run.
    pub startup_ns: u64,
    /// Goroutines whose stack was taken from the copy made before the stop (they had not
    /// run since), not copied again during it.
    pub stacks_reused: u64,
    /// Whether the target's runtime prints labels in tracebacks (GODEBUG `tracebacklabels`).
    pub traceback_labels: bool,
    /// Read without stopping the target (`--nonblocking`).
    pub nonblocking: bool,
    /// Of a non-blocking snapshot, goroutines whose stack could not be read consistently.
    pub unsettled: u64,
    /// Where the executable's code was mapped (none for text dumps and older files).
    pub text: Option<TextMapping>,
    /// Every frame carries its arguments and locals (`snapshot --values`), read after the
    /// thaw: a frame with no `values` has no variables.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub values: bool,
}

/// The executable's code segment as the process mapped it: what a profile's main mapping
/// says, so that tools find the binary's instructions for the sampled addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TextMapping {
    /// Address of the segment in the process (its ELF address plus the load bias).
    pub start: u64,
    /// End of the segment in the process (exclusive).
    pub limit: u64,
    /// Offset of the segment in the file.
    pub offset: u64,
    /// The executable's GNU build id in hex (empty when it has none).
    pub build_id: String,
}

/// One goroutine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Goroutine {
    /// Goroutine id.
    pub id: u64,
    /// Address of its `runtime.g`.
    pub addr: u64,
    /// Raw status (scan bit removed).
    pub status: Status,
    /// The GC was scanning its stack.
    pub scan: bool,
    /// What the traceback header shows: the wait reason when waiting, else the status name.
    pub state: Name,
    /// Whole minutes blocked, as the runtime computes them (0 when unknown or under a minute).
    pub wait_minutes: i64,
    /// `LockOSThread` in effect.
    pub locked_to_thread: bool,
    /// A runtime-internal goroutine (hidden by default, as Go hides it).
    pub system: bool,
    /// `m.id` of the thread running it, if any.
    pub m_id: Option<i64>,
    /// Address of that m.
    pub m_addr: u64,
    /// Linux thread id running it, if any.
    pub thread: Option<i32>,
    /// Logical frames, innermost first.
    #[serde(deserialize_with = "sites::deserialize_frames")]
    pub frames: Vec<Frame>,
    /// Why the stack could not be read to its end, if it could not.
    pub stack_error: Option<String>,
    /// Where it was created (`go` statement), except for goroutine 1.
    #[serde(deserialize_with = "sites::deserialize_created_by")]
    pub created_by: Option<CreatedBy>,
    /// The goroutine that created it (0 when unknown).
    pub parent_id: u64,
    /// Name of its start function: for a `go` statement's wrapper, the function it wraps
    /// (`FUNCDATA_WrapInfo`), as delve names it.
    pub start_func: Name,
    /// Source file of the start function's entry (empty when unknown).
    pub start_file: Name,
    /// Source line of the start function's entry, as `runtime.Func.FileLine` gives it.
    pub start_line: u32,
    /// Entry pc of the start function (0 when unknown).
    pub start_pc: u64,
    /// pprof labels (key, value), in the runtime's order.
    pub labels: Vec<(LabelStr, LabelStr)>,
    /// What it is blocked on (one entry per channel of a select).
    pub blocked_on: Vec<BlockedOn>,
}

/// A pprof label's key or value as the target holds it: its bytes, which need not be UTF-8, and
/// its whole length when only its first bytes were read.
///
/// In JSON it is a string when its bytes are whole, valid UTF-8 (the only form older files
/// have); otherwise an object: `{"hex": "fffe"}` for bytes that are not UTF-8,
/// `{"text": "...", "len": N}` or `{"hex": "...", "len": N}` for the first bytes of a label of
/// `N` bytes (docs/json-schema.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LabelStr {
    bytes: Vec<u8>,
    len: u64,
}

impl LabelStr {
    /// The first `bytes` of a string of `len` bytes (a `len` below `bytes.len()` counts as
    /// `bytes.len()`).
    pub fn new(bytes: Vec<u8>, len: u64) -> LabelStr {
        let len = len.max(bytes.len() as u64);
        LabelStr { bytes, len }
    }

    /// The bytes read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole length in the target (more than `bytes().len()` when only a head was read).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it is the empty string.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every byte was read.
    pub(crate) fn is_whole(&self) -> bool {
        self.len == self.bytes.len() as u64
    }

    /// The text, when the label is whole and valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes)
            .ok()
            .filter(|_| self.is_whole())
    }
}

impl From<&str> for LabelStr {
    fn from(s: &str) -> LabelStr {
        LabelStr::new(s.as_bytes().to_vec(), 0)
    }
}

impl From<String> for LabelStr {
    fn from(s: String) -> LabelStr {
        LabelStr::new(s.into_bytes(), 0)
    }
}

impl PartialEq<str> for LabelStr {
    fn eq(&self, s: &str) -> bool {
        self.is_whole() && self.bytes == s.as_bytes()
    }
}

impl Serialize for LabelStr {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Some(s) = self.as_str() {
            return ser.serialize_str(s);
        }
        let whole = self.is_whole();
        let mut m = ser.serialize_map(Some(if whole { 1 } else { 2 }))?;
        match std::str::from_utf8(&self.bytes) {
            Ok(s) => m.serialize_entry("text", s)?,
            Err(_) => {
                let mut hex = String::with_capacity(self.bytes.len() * 2);
                for b in &self.bytes {
                    hex.push_str(&format!("{b:02x}"));
                }
                m.serialize_entry("hex", &hex)?
            }
        }
        if !whole {
            m.serialize_entry("len", &self.len)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for LabelStr {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<LabelStr, D::Error> {
        de.deserialize_any(LabelVisitor)
    }
}

/// Reads both JSON forms of a [`LabelStr`].
struct LabelVisitor;

impl<'de> serde::de::Visitor<'de> for LabelVisitor {
    type Value = LabelStr;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(r#"a label: a string, or {"text" or "hex", "len"}"#)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<LabelStr, E> {
        Ok(s.into())
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<LabelStr, E> {
        Ok(s.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<LabelStr, A::Error> {
        use serde::de::Error;
        let (mut bytes, mut len) = (None, 0u64);
        // Each known field once; unknown ones are skipped, so the loop ends with the map.
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "text" if bytes.is_none() => bytes = Some(map.next_value::<String>()?.into_bytes()),
                "hex" if bytes.is_none() => {
                    let hex = map.next_value::<String>()?;
                    bytes =
                        Some(unhex(&hex).ok_or_else(|| A::Error::custom("label hex: not hex"))?);
                }
                "text" | "hex" => return Err(A::Error::custom("label: both text and hex")),
                "len" => len = map.next_value()?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let bytes = bytes.ok_or_else(|| A::Error::missing_field("text or hex"))?;
        Ok(LabelStr::new(bytes, len))
    }
}

/// The bytes of a string of hex digit pairs.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect()
}

/// What few frames have: deferred calls not run yet, values read from DWARF, an fp too far
/// from the sp for the frame's 32 bits. Held behind one pointer, none for most frames.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Extra {
    defers: Vec<PendingDefer>,
    values: Vec<FrameValue>,
    /// The fp when the frame's size is [`FAR`], else 0.
    fp: u64,
}

/// Where a frame is: what the frames of every goroutine at the same pc and inlining depth
/// share, held once for all of them ([`Frame::site`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Site {
    /// Function name as stored in the binary.
    pub function: Name,
    /// Source file.
    pub file: Name,
    /// Source line.
    pub line: u32,
    /// Program counter of the physical frame.
    pub pc: u64,
    /// Entry of the physical function.
    pub entry: u64,
    /// An inlined call (no own physical frame).
    pub inlined: bool,
}

impl Site {
    /// This site, shared with the same site read before while [`reading_names`] runs.
    pub(crate) fn shared(self) -> Arc<Site> {
        READ_SITES.with(|t| match &mut *t.borrow_mut() {
            Some(seen) => seen.get_or(&self, |s| Arc::new(s.clone())),
            None => Arc::new(self),
        })
    }
}

/// One logical frame (an inlined call is a frame of its own). Its [`Site`]'s fields read as
/// its own (`frame.function`, `frame.line`); in JSON it is one object with all of them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// Where it is: function, file, line, pc, entry, inlined.
    pub site: Arc<Site>,
    /// Argument words as the runtime prints them (`...` for inlined calls); shared by the
    /// frames that print the same (most print one of a few forms, such as `0x0?, 0x0?`).
    pub args: Name,
    /// Stack pointer of the physical frame ([`Frame::sp`]).
    sp: u64,
    /// The physical frame's size, fp - sp ([`Frame::fp`]), when it fits in 32 bits, as every
    /// frame of a real stack does (a goroutine's stack is at most 1 GB); else [`FAR`], and the
    /// fp is in `extra`. A frame is 40 bytes, not 48: 240 MB at 1,000,000 goroutines.
    size: i32,
    /// `pc` is the interrupted instruction itself (a thread's registers, a signal), not a
    /// return address: DWARF is looked up at `pc`, not at the call before it.
    pub trap: bool,
    /// Hidden in the runtime's default traceback (runtime-internal, or an elided wrapper).
    pub hidden: bool,
    /// Its deferred calls and values, when it has any ([`Frame::defers`], [`Frame::values`]),
    /// and its fp when its size is [`FAR`].
    extra: Option<Box<Extra>>,
}

/// [`Frame`]'s `size` when fp - sp does not fit in 32 bits (a corrupt stack, or a dump's text).
const FAR: i32 = i32::MIN;

impl Frame {
    /// A frame at `site` printing `args`, its physical frame from `sp` to `fp`; not a trap,
    /// not hidden, no defers or values.
    pub fn new(site: Arc<Site>, args: Name, sp: u64, fp: u64) -> Frame {
        let mut f = Frame {
            site,
            args,
            sp,
            size: 0,
            trap: false,
            hidden: false,
            extra: None,
        };
        f.set_span(sp, fp);
        f
    }

    /// Stack pointer of the physical frame.
    pub fn sp(&self) -> u64 {
        self.sp
    }

    /// Frame pointer (the caller's sp) of the physical frame.
    pub fn fp(&self) -> u64 {
        match &self.extra {
            Some(e) if self.size == FAR => e.fp,
            _ => self.sp.wrapping_add(self.size as i64 as u64),
        }
    }

    /// Sets the physical frame's sp and fp.
    pub fn set_span(&mut self, sp: u64, fp: u64) {
        self.sp = sp;
        let size = i32::try_from(fp.wrapping_sub(sp) as i64)
            .ok()
            .filter(|&s| s != FAR);
        self.size = size.unwrap_or(FAR);
        match size {
            Some(_) => {
                if self.extra.is_some() {
                    self.with_extra(|e| e.fp = 0);
                }
            }
            None => self.with_extra(|e| e.fp = fp),
        }
    }

    /// Whether it has deferred calls or values (a snapshot row then has two more fields).
    pub(crate) fn has_defers_or_values(&self) -> bool {
        self.extra
            .as_ref()
            .is_some_and(|e| !e.defers.is_empty() || !e.values.is_empty())
    }

    /// A frame in `function` at `file:line`, all else unknown (zero, empty).
    pub fn at(function: &str, file: &str, line: u32) -> Frame {
        Frame {
            site: Arc::new(Site {
                function: function.into(),
                file: file.into(),
                line,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The frame's deferred calls that have not run yet, in the order they will run (the
    /// last deferred first). On the physical frame only (an inlined call has none).
    pub fn defers(&self) -> &[PendingDefer] {
        self.extra.as_ref().map_or(&[], |e| &e.defers)
    }

    /// Its arguments and locals read from DWARF (`bt --full`, the session's `stack -full`);
    /// empty unless asked for.
    pub fn values(&self) -> &[FrameValue] {
        self.extra.as_ref().map_or(&[], |e| &e.values)
    }

    /// Its deferred calls, to change them in place.
    pub fn defers_mut(&mut self) -> &mut [PendingDefer] {
        self.extra.as_mut().map_or(&mut [], |e| &mut e.defers)
    }

    /// Sets its deferred calls.
    pub fn set_defers(&mut self, defers: Vec<PendingDefer>) {
        if !defers.is_empty() || self.extra.is_some() {
            self.with_extra(|e| e.defers = defers);
        }
    }

    /// Sets its values.
    pub fn set_values(&mut self, values: Vec<FrameValue>) {
        if !values.is_empty() || self.extra.is_some() {
            self.with_extra(|e| e.values = values);
        }
    }

    /// With a pending `sync.(*Mutex).Unlock` and one value, `n`, of text `text` (read `later`
    /// or not): a frame with both, for the tests of the forms it is written in.
    #[cfg(test)]
    pub(crate) fn with_extras(mut self, text: &str, later: bool) -> Frame {
        self.set_defers(vec![PendingDefer {
            function: "sync.(*Mutex).Unlock".into(),
            arg: Some(0xc0ff),
            how: "open-coded".into(),
            ..Default::default()
        }]);
        self.set_values(vec![FrameValue {
            name: "n".into(),
            param: true,
            text: text.into(),
            later,
        }]);
        self
    }

    /// Changes its [`Extra`], which is kept only when it holds something.
    fn with_extra(&mut self, change: impl FnOnce(&mut Extra)) {
        let mut e = self.extra.take().unwrap_or_default();
        change(&mut e);
        if !e.defers.is_empty() || !e.values.is_empty() || self.size == FAR {
            self.extra = Some(e);
        }
    }
}

impl std::ops::Deref for Frame {
    type Target = Site;
    fn deref(&self) -> &Site {
        &self.site
    }
}

/// A frame as JSON has it: one object, its site's fields among its own.
#[derive(Serialize)]
struct FrameOut<'a> {
    function: &'a Name,
    file: &'a Name,
    line: u32,
    args: &'a Name,
    pc: u64,
    entry: u64,
    sp: u64,
    fp: u64,
    inlined: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    trap: bool,
    hidden: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    defers: &'a [PendingDefer],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    values: &'a [FrameValue],
}

/// [`FrameOut`] read back.
#[derive(Deserialize, Default)]
#[serde(default)]
struct FrameIn {
    function: Name,
    file: Name,
    line: u32,
    args: Name,
    pc: u64,
    entry: u64,
    sp: u64,
    fp: u64,
    inlined: bool,
    trap: bool,
    hidden: bool,
    defers: Vec<PendingDefer>,
    values: Vec<FrameValue>,
}

impl Serialize for Frame {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        FrameOut {
            function: &self.function,
            file: &self.file,
            line: self.line,
            args: &self.args,
            pc: self.pc,
            entry: self.entry,
            sp: self.sp,
            fp: self.fp(),
            inlined: self.inlined,
            trap: self.trap,
            hidden: self.hidden,
            defers: self.defers(),
            values: self.values(),
        }
        .serialize(ser)
    }
}

impl<'de> Deserialize<'de> for Frame {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Frame, D::Error> {
        let f = FrameIn::deserialize(de)?;
        let site = Site {
            function: f.function,
            file: f.file,
            line: f.line,
            pc: f.pc,
            entry: f.entry,
            inlined: f.inlined,
        }
        .shared();
        let mut out = Frame::new(site, f.args, f.sp, f.fp);
        out.trap = f.trap;
        out.hidden = f.hidden;
        out.set_defers(f.defers);
        out.set_values(f.values);
        Ok(out)
    }
}

/// One variable of a frame and its value as delve prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameValue {
    /// The variable's name; empty for a line saying why the frame's values could not be read.
    pub name: String,
    /// A formal parameter (`args`), else a local (`locals`).
    pub param: bool,
    /// Its value (`main.T {A: 1}`, `(optimized out)`, `(unreadable: needs register RAX)`), or
    /// why there are none.
    pub text: String,
    /// Reading it went to the process after the snapshot (memory the snapshot had not
    /// copied, read once the target ran on).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub later: bool,
}

/// A deferred call its frame has made and the runtime has not run yet.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PendingDefer {
    /// The function the deferred call runs: for the closure the compiler makes of a deferred
    /// call (`defer mu.Unlock()` becomes `main.f.func1` up to Go 1.21, `main.f.deferwrap1`
    /// from 1.22) or of a method value (`sync.(*Mutex).Unlock-fm`), the function it wraps
    /// (`sync.(*Mutex).Unlock`); otherwise the closure's own function.
    pub function: Name,
    /// The closure's own function, when it is a wrapper resolved to `function`.
    pub closure: Option<Name>,
    /// The first word the wrapper's closure holds after its code pointer: the receiver or
    /// first argument of the wrapped call (`&mu`), as stored. Only for resolved wrappers.
    pub arg: Option<u64>,
    /// `open-coded` (the frame's `deferBits` and closure slots) or `record` (a `_defer`
    /// record on the goroutine's list).
    pub how: String,
    /// A deferred `(*os.File).Close`: the descriptor the file holds (`-1` once closed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<i64>,
}

impl std::fmt::Display for PendingDefer {
    /// `sync.(*Mutex).Unlock(0xc000012345)`, or the function alone without an argument word;
    /// a deferred Close of a file adds its descriptor (`os.(*File).Close(0xc000064028) [fd 5]`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.arg {
            Some(a) => write!(f, "{}({a:#x})", self.function)?,
            None => f.write_str(&self.function)?,
        }
        match self.fd {
            Some(fd) => write!(f, " [fd {fd}]"),
            None => Ok(()),
        }
    }
}

/// The `go` statement that created a goroutine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatedBy {
    /// Function containing the `go` statement.
    pub function: Name,
    /// Source file.
    pub file: Name,
    /// Source line.
    pub line: u32,
    /// `gopc`.
    pub pc: u64,
    /// Entry of the function.
    pub entry: u64,
    /// Hidden in the runtime's default traceback (created by the runtime).
    pub hidden: bool,
}

/// One thread of the process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Thread {
    /// Linux thread id.
    pub tid: i32,
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Function at pc, when it is Go code.
    pub function: Option<String>,
    /// Source file at pc (innermost inlined call), empty outside Go code.
    pub file: String,
    /// Source line at pc, 0 outside Go code.
    pub line: u32,
    /// Goroutine it runs, if any.
    pub goid: Option<u64>,
    /// `m.id` of the runtime's M with this thread id, when one was found (only read with
    /// thread stacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m_id: Option<i64>,
    /// The stack its stack pointer is on: `goroutine` (the one it runs), `g0` (its M's
    /// scheduler stack), `gsignal` (its signal stack); empty when unknown or not read.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stack: String,
    /// Its own frames, unwound from its registers, innermost first (empty unless thread
    /// stacks were asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Frame>,
    /// Why its frames are missing or stop early, when they were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_error: Option<String>,
}

/// What takes a goroutine's fields one by one, in their order ([`Goroutine::each_field`]): the
/// writer of one format.
pub(crate) trait Fields {
    type Error;
    /// A field that is an unsigned number.
    fn number(&mut self, name: &'static str, n: u64) -> Result<(), Self::Error>;
    /// The frames.
    fn frames(&mut self, name: &'static str, frames: &[Frame]) -> Result<(), Self::Error>;
    /// A field that is a string (as [`Fields::value`] writes it unless told otherwise).
    fn text(&mut self, name: &'static str, s: &str) -> Result<(), Self::Error> {
        self.value(name, s)
    }
    /// Where the goroutine was created (as [`Fields::value`] writes it unless told otherwise).
    fn created_by(&mut self, name: &'static str, c: Option<&CreatedBy>) -> Result<(), Self::Error> {
        self.value(name, &c)
    }
    /// Any other field.
    fn value<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Self::Error>;
}

impl Goroutine {
    /// A goroutine with every field set but its frames and labels (each u64 another value,
    /// `scan` and `system` set, `locked_to_thread` not), for the tests of the forms it is
    /// written in.
    #[cfg(test)]
    pub(crate) fn every_field_set() -> Goroutine {
        Goroutine {
            id: 7,
            addr: 0xc000_0010,
            status: Status(4),
            scan: true,
            state: "select".into(),
            wait_minutes: 3,
            locked_to_thread: false,
            system: true,
            m_id: Some(5),
            m_addr: 0xc000_0020,
            thread: Some(4242),
            frames: Vec::new(),
            stack_error: Some("cut".into()),
            created_by: Some(CreatedBy {
                function: "main.main".into(),
                file: "/src/main.go".into(),
                line: 12,
                pc: 0x40_1000,
                entry: 0x40_0f00,
                hidden: true,
            }),
            parent_id: 1,
            start_func: "main.worker".into(),
            start_file: "/src/worker.go".into(),
            start_line: 30,
            start_pc: 0x40_2000,
            labels: Vec::new(),
            blocked_on: vec![BlockedOn {
                kind: "chan".into(),
                addr: 0xc000_0030,
                sudog: 0xc000_0040,
            }],
        }
    }

    /// Hands every field to `to` in the order of their declaration, which serde's object (JSON)
    /// and array (a snapshot file's line) follow: a field added to `Goroutine` and not here
    /// does not compile.
    pub(crate) fn each_field<F: Fields>(&self, to: &mut F) -> Result<(), F::Error> {
        let Goroutine {
            id,
            addr,
            status,
            scan,
            state,
            wait_minutes,
            locked_to_thread,
            system,
            m_id,
            m_addr,
            thread,
            frames,
            stack_error,
            created_by,
            parent_id,
            start_func,
            start_file,
            start_line,
            start_pc,
            labels,
            blocked_on,
        } = self;
        to.number("id", *id)?;
        to.number("addr", *addr)?;
        to.value("status", status)?;
        to.value("scan", scan)?;
        to.text("state", state)?;
        to.value("wait_minutes", wait_minutes)?;
        to.value("locked_to_thread", locked_to_thread)?;
        to.value("system", system)?;
        to.value("m_id", m_id)?;
        to.number("m_addr", *m_addr)?;
        to.value("thread", thread)?;
        to.frames("frames", frames)?;
        to.value("stack_error", stack_error)?;
        to.created_by("created_by", created_by.as_ref())?;
        to.number("parent_id", *parent_id)?;
        to.text("start_func", start_func)?;
        to.text("start_file", start_file)?;
        to.number("start_line", u64::from(*start_line))?;
        to.number("start_pc", *start_pc)?;
        to.value("labels", labels)?;
        to.value("blocked_on", blocked_on)
    }
}

impl Goroutine {
    /// The first frame that is not runtime-internal (delve's "user" location).
    pub(crate) fn user_frame(&self) -> Option<&Frame> {
        self.frames
            .iter()
            .find(|f| !is_runtime_internal(&f.function))
            .or_else(|| self.frames.first())
    }

    /// One of the locations that name a goroutine in delve's lists, if known.
    pub fn location(&self, loc: Loc) -> Option<Location> {
        let frame = |f: &Frame| Location {
            file: f.file.clone(),
            line: f.line,
            function: f.function.clone(),
            pc: f.pc,
        };
        match loc {
            Loc::User => self.user_frame().map(frame),
            Loc::Current => self.frames.first().map(frame),
            Loc::Go => self.created_by.as_ref().map(|c| Location {
                file: c.file.clone(),
                line: c.line,
                function: c.function.clone(),
                pc: c.pc,
            }),
            Loc::Start => (!self.start_func.is_empty()).then(|| Location {
                file: self.start_file.clone(),
                line: self.start_line,
                function: self.start_func.clone(),
                pc: self.start_pc,
            }),
        }
    }
}

/// Which location names a goroutine (delve's `goroutines -u|-r|-g|-s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loc {
    /// The topmost frame not inside the runtime (`User:`).
    #[default]
    User,
    /// The topmost frame (`Runtime:`).
    Current,
    /// The `go` statement that created it (`Go:`).
    Go,
    /// Its start function, at its entry (`Start:`); a `go` statement's wrapper is named by
    /// the function it wraps.
    Start,
}

impl Loc {
    /// The title delve prints before the location.
    pub fn title(self) -> &'static str {
        match self {
            Loc::User => "User",
            Loc::Current => "Runtime",
            Loc::Go => "Go",
            Loc::Start => "Start",
        }
    }
}

/// A code location: `file:line function (pc)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// Source file (empty when only the function is known).
    pub file: Name,
    /// Source line.
    pub line: u32,
    /// Function.
    pub function: Name,
    /// Program counter (0 when unknown).
    pub pc: u64,
}

/// Whether a function is part of the runtime or internal packages (delve's rule for the user
/// location: runtime.* unless exported, internal/*, runtime/internal/*).
pub fn is_runtime_internal(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix("runtime.") {
        return !rest.starts_with(|c: char| c.is_ascii_uppercase());
    }
    name.starts_with("internal/") || name.starts_with("runtime/internal/") || !name.contains('.')
}

#[cfg(test)]
mod tests;
