//! A snapshot file's frames as rows of a site table (file versions 3 and 4): each run of
//! goroutines the file holds starts with a table of the places its frames are at (function,
//! file, line, pc, entry, inlined), and each frame is a short row pointing into it. 100,000
//! goroutines parked at a few hundred places write and read each place once a run instead of
//! once a frame.
//!
//! ```text
//! {"sites": [["main.f", "/src/main.go", 12, 4198400, 4198320, false], ...]}
//! {"g": [..., [[0, "0x0?", 824634330824, 56, 1], [3, "...", 56, 32, 0], ...], ...]}
//! ```
//!
//! A row is `[site, args, sp, fp, flags]` (flags: 1 hidden, 2 trap), then `defers` and
//! `values` when the frame has either. From version 4, `sp` is the difference from the sp of
//! the frame before (the first frame's: from 0) and `fp` the difference from the frame's own
//! sp, both signed 64-bit numbers that wrap: a frame's size, or 0, where version 3 wrote two
//! addresses of 14 digits (100,000 goroutines of about 30 frames: 29% fewer bytes to compress,
//! a file under a third the size). A frame written whole (an object, as in JSON) is read too,
//! with or without a table, its sp and fp as they are.

use super::{Frame, FrameValue, Name, PendingDefer, Site};
use crate::unwind::PcMap;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::sync::Arc;

/// A site by its address, the bits its alignment leaves zero dropped (a map of addresses
/// hashes the low bits).
pub(crate) fn site_key(site: &Arc<Site>) -> u64 {
    Arc::as_ptr(site) as usize as u64 >> 4
}

/// One site as a table holds it: `[function, file, line, pc, entry, inlined]`.
pub(super) type Row = (Name, Name, u32, u64, u64, bool);

/// Most sites one table holds before a frame is written whole instead (a run holds far fewer:
/// its goroutines' frames).
const MAX_SITES: usize = 1 << 20;

thread_local! {
    /// The table frames deserialized on this thread point into, while [`reading`] runs.
    static READING: RefCell<Option<Reading>> = const { RefCell::new(None) };
}

/// A table being read, and the args text last read at each of its first [`MAX_ARGS_SITES`]
/// sites.
struct Reading {
    table: Table,
    last_args: Vec<Option<Name>>,
}

/// Sites of a table whose last args text is kept while a batch of its rows is read: a run's
/// table holds a few hundred; the frames at sites past this many (a hostile file's table)
/// get no sharing, and a batch of a few lines costs no more than this many slots.
const MAX_ARGS_SITES: usize = 4096;

/// A table read: its sites, in order, and whether the rows pointing into it hold their sp and
/// fp as differences (version 4).
#[derive(Clone)]
pub(super) struct Table {
    sites: Arc<[Arc<Site>]>,
    deltas: bool,
}

/// The table of `rows` as read, each site shared with the same one read before
/// ([`Site::shared`]); `deltas`: its rows hold differences.
pub(super) fn table(rows: Vec<Row>, deltas: bool) -> Table {
    let sites = rows
        .into_iter()
        .map(|(function, file, line, pc, entry, inlined)| {
            Site {
                function,
                file,
                line,
                pc,
                entry,
                inlined,
            }
            .shared()
        })
        .collect();
    Table { sites, deltas }
}

/// Runs `read` with the frames' rows it deserializes on this thread read against `table`.
pub(super) fn reading<T>(table: Table, read: impl FnOnce() -> T) -> T {
    let last_args = vec![None; table.sites.len().min(MAX_ARGS_SITES)];
    let before = READING.with(|r| r.borrow_mut().replace(Reading { table, last_args }));
    let out = read();
    READING.with(|r| *r.borrow_mut() = before);
    out
}

/// A table being written: the sites the frames written so far are at, each by the address
/// of the site the frames share (the same place under another copy of its site only costs a
/// row more).
#[derive(Default)]
pub(super) struct Writing {
    index: PcMap<u32>,
    rows: Vec<Row>,
    /// The last goroutine's frames' sites and their indices: goroutines one after the other
    /// are mostly at the same places (a pool's workers), found here without a lookup.
    last: Vec<(u64, u32)>,
}

impl Writing {
    /// Writes a goroutine's frames into `buf` as JSON, each a row of this table
    /// (`[site, args, sp, fp, flags]`, then `defers` and `values` when it has either), or all
    /// of them whole (objects) once the table is full: what serde writes for the rows, without
    /// going through it for every number (a frame is five of them, and a snapshot of 100,000
    /// goroutines three million frames).
    pub(super) fn frames(&mut self, buf: &mut Vec<u8>, frames: &[Frame]) -> std::io::Result<()> {
        let mut last = std::mem::take(&mut self.last);
        for (j, f) in frames.iter().enumerate() {
            let key = site_key(&f.site);
            let site = match last.get(j) {
                Some(&(k, i)) if k == key => i,
                _ => match self.site(key, f) {
                    Some(i) => i,
                    None => {
                        last.clear();
                        self.last = last;
                        return serde_json::to_writer(buf, frames).map_err(Into::into);
                    }
                },
            };
            match last.get_mut(j) {
                Some(slot) => *slot = (key, site),
                None => last.push((key, site)),
            }
        }
        last.truncate(frames.len());
        buf.push(b'[');
        let mut sp = 0;
        for (i, (f, &(_, site))) in frames.iter().zip(&last).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'[');
            number(buf, site);
            buf.push(b',');
            string(buf, &f.args);
            buf.push(b',');
            number(buf, f.sp.wrapping_sub(sp) as i64);
            buf.push(b',');
            number(buf, f.fp().wrapping_sub(f.sp) as i64);
            buf.push(b',');
            number(
                buf,
                if f.hidden { HIDDEN } else { 0 } | if f.trap { TRAP } else { 0 },
            );
            if f.has_defers_or_values() {
                buf.push(b',');
                serde_json::to_writer(&mut *buf, f.defers())?;
                buf.push(b',');
                serde_json::to_writer(&mut *buf, f.values())?;
            }
            buf.push(b']');
            sp = f.sp;
        }
        buf.push(b']');
        self.last = last;
        Ok(())
    }

    /// The table: the sites of the frames written, each once, in the order rows point at them.
    pub(super) fn into_rows(self) -> Vec<Row> {
        self.rows
    }

    /// The index of `f`'s site (`key`), added when new; `None` when the table is full.
    fn site(&mut self, key: u64, f: &Frame) -> Option<u32> {
        if let Some(&i) = self.index.get(&key) {
            return Some(i);
        }
        if self.rows.len() >= MAX_SITES {
            return None;
        }
        let i = self.rows.len() as u32;
        self.rows.push(row(f));
        self.index.insert(key, i);
        Some(i)
    }
}

/// The row of a table that holds `f`'s site.
pub(super) fn row(f: &Frame) -> Row {
    (
        f.function.clone(),
        f.file.clone(),
        f.line,
        f.pc,
        f.entry,
        f.inlined,
    )
}

/// Writes `n` in decimal, as serde writes a number.
pub(super) fn number(buf: &mut Vec<u8>, n: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes `s` as a JSON string, as serde writes it: as it is between quotes when it holds no
/// quote, backslash or control character (a frame's args text nearly always), else by serde.
pub(super) fn string(buf: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.reserve(s.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(s.as_bytes());
        buf.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(buf, s);
    }
}

/// A row's flags.
const HIDDEN: u8 = 1;
const TRAP: u8 = 2;

/// A goroutine's frames, each whole (an object) or a row of the table being read.
pub(super) fn deserialize_frames<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<Frame>, D::Error> {
    struct Frames;
    impl<'de> Visitor<'de> for Frames {
        type Value = Vec<Frame>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of frames")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Frame>, A::Error> {
            // The size a file claims is not trusted beyond a few frames.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            let mut sp = 0;
            while let Some(f) = seq.next_element_seed(AnyFrame { sp })? {
                sp = f.sp;
                out.push(f);
            }
            out.shrink_to_fit();
            Ok(out)
        }
    }
    de.deserialize_seq(Frames)
}

/// A frame's args text read from its row: the one read last at the same site when it is the
/// same (goroutines parked at one place mostly print the same), else a name of its own. Not
/// looked up among every text read: most are unique (pointers), and a set of them all was 8%
/// of the time `show` took.
struct Args(Option<Name>);

impl<'de> DeserializeSeed<'de> for Args {
    type Value = Name;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Name, D::Error> {
        de.deserialize_str(self)
    }
}

impl Visitor<'_> for Args {
    type Value = Name;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame's args text")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Name, E> {
        Ok(Name::again(self.0.as_ref(), s).unwrap_or_else(|| Name::from(s)))
    }
}

/// A frame read whole or from its row; `sp`: the sp of the frame before (0 for the first).
struct AnyFrame {
    sp: u64,
}

impl<'de> DeserializeSeed<'de> for AnyFrame {
    type Value = Frame;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Frame, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyFrame {
    type Value = Frame;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame (an object, or a row of the file's site table)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Frame, A::Error> {
        Frame::deserialize(de::value::MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Frame, A::Error> {
        let missing = |what: &str| de::Error::custom(format!("a frame's row has no {what}"));
        let at: u32 = seq.next_element()?.ok_or_else(|| missing("site"))?;
        let at = at as usize;
        let site = READING.with(|r| {
            let r = r.borrow();
            let r = r.as_ref()?;
            let t = &r.table;
            let last = r.last_args.get(at).cloned().flatten();
            Some((t.sites.get(at).cloned()?, t.deltas, last))
        });
        let Some((site, deltas, last)) = site else {
            return Err(de::Error::custom(
                "a frame's row points at a site its file's table does not have",
            ));
        };
        let args = seq
            .next_element_seed(Args(last))?
            .ok_or_else(|| missing("args"))?;
        READING.with(|r| {
            if let Some(slot) = r
                .borrow_mut()
                .as_mut()
                .and_then(|r| r.last_args.get_mut(at))
            {
                *slot = Some(args.clone());
            }
        });
        let (sp, fp) = if deltas {
            let sp: i64 = seq.next_element()?.ok_or_else(|| missing("sp"))?;
            let fp: i64 = seq.next_element()?.ok_or_else(|| missing("fp"))?;
            let sp = self.sp.wrapping_add(sp as u64);
            (sp, sp.wrapping_add(fp as u64))
        } else {
            let sp: u64 = seq.next_element()?.ok_or_else(|| missing("sp"))?;
            let fp: u64 = seq.next_element()?.ok_or_else(|| missing("fp"))?;
            (sp, fp)
        };
        let flags: u8 = seq.next_element()?.ok_or_else(|| missing("flags"))?;
        let defers: Vec<PendingDefer> = seq.next_element()?.unwrap_or_default();
        let values: Vec<FrameValue> = seq.next_element()?.unwrap_or_default();
        // Anything after: fields a later version adds to a row.
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        let mut f = Frame::new(site, args, sp, fp);
        (f.trap, f.hidden) = (flags & TRAP != 0, flags & HIDDEN != 0);
        f.set_defers(defers);
        f.set_values(values);
        Ok(f)
    }
}
