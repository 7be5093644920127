//! A snapshot file's frames as rows of a site table (from file version 3): each run of
//! goroutines the file holds starts with a table of the places its frames are at (function,
//! file, line, pc, entry, inlined), and each frame is a short row pointing into it. 100,000
//! goroutines parked at a few hundred places write and read each place once a run instead of
//! once a frame. From version 5 the table also holds the run's args texts, which rows point
//! at, and the places of the `go` statements that created its goroutines, which a
//! goroutine's `created_by` points at (`[site, flags]`, flags 1 hidden): at 100,000
//! goroutines, 58 MB of lines to compress instead of 87.
//!
//! ```text
//! {"table": {"sites": [["main.f", "/src/main.go", 12, 4198400, 4198320, false], ...], "args": ["0x0?", "..."]}}
//! {"g": [..., [[0, 0, 824634330824, 56, 1], [3, 1, 56, 32, 0], ...], ..., [7, 0], ...]}
//! ```
//!
//! A row is `[site, args, sp, fp, flags]` (flags: 1 hidden, 2 trap; args: an index into the
//! table's texts, or, before version 5 or once the table is full, the text), then `defers`
//! and `values` when the frame has either. Version 3 and 4 tables are `{"sites": [...]}`.
//! From version 4, `sp` is the difference from the sp of
//! the frame before (the first frame's: from 0) and `fp` the difference from the frame's own
//! sp, both signed 64-bit numbers that wrap: a frame's size, or 0, where version 3 wrote two
//! addresses of 14 digits (100,000 goroutines of about 30 frames: 29% fewer bytes to compress,
//! a file under a third the size). A frame written whole (an object, as in JSON) is read too,
//! with or without a table, its sp and fp as they are.

use super::{CreatedBy, Frame, FrameValue, Name, PendingDefer, Site};
use crate::unwind::PcMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// A site by its address, the bits its alignment leaves zero dropped (a map of addresses
/// hashes the low bits).
pub(crate) fn site_key(site: &Arc<Site>) -> u64 {
    Arc::as_ptr(site) as usize as u64 >> 4
}

/// One site as a table holds it: `[function, file, line, pc, entry, inlined]`.
pub(super) type Row = (Name, Name, u32, u64, u64, bool);

/// The tables a run of goroutines starts with from version 5 (`{"table": {"sites": [...],
/// "args": [...]}}`): the sites of its frames and `go` statements, and its frames' args texts.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
pub(super) struct Tables {
    pub(super) sites: Vec<Row>,
    #[serde(deserialize_with = "own_texts")]
    pub(super) args: Vec<Name>,
}

/// A table's args texts as read, each a name of its own: not looked up among every name read,
/// as other names are ([`super::reading_names`]). Most are unique (pointers), and such a set
/// held 230 MB more while `show` read a snapshot of 1,000,000 goroutines.
fn own_texts<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<Name>, D::Error> {
    struct Texts;
    impl<'de> Visitor<'de> for Texts {
        type Value = Vec<Name>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of args texts")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Name>, A::Error> {
            // The size a file claims is not trusted beyond a few texts.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(OwnText(a)) = seq.next_element()? {
                out.push(a);
            }
            Ok(out)
        }
    }
    /// One text of the list, a name of its own.
    struct OwnText(Name);
    impl<'de> Deserialize<'de> for OwnText {
        fn deserialize<D: Deserializer<'de>>(de: D) -> Result<OwnText, D::Error> {
            String::deserialize(de).map(|s| OwnText(Name::from(s)))
        }
    }
    de.deserialize_seq(Texts)
}

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

/// A table read: its sites and args texts, in order, and whether the rows pointing into it
/// hold their sp and fp as differences (version 4).
#[derive(Clone)]
pub(super) struct Table {
    sites: Arc<[Arc<Site>]>,
    args: Arc<[Name]>,
    deltas: bool,
}

/// The tables as read (before version 5: sites alone), each site shared with the same one
/// read before ([`Site::shared`]); `deltas`: its rows hold differences.
pub(super) fn table(tables: Tables, deltas: bool) -> Table {
    let sites = tables
        .sites
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
    Table {
        sites,
        args: tables.args.into(),
        deltas,
    }
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
    /// The args texts the rows point at (from version 5), each by its name's address.
    args_index: PcMap<u32>,
    args: Vec<Name>,
    /// The places goroutines were created at, by their fields, in `rows` too.
    created: HashMap<CreatedKey, u32>,
    /// The last goroutine's frames' sites and args texts, with their indices: goroutines one
    /// after the other are mostly at the same places (a pool's workers) and print the same
    /// there, found here without a lookup.
    last: Vec<Last>,
}

/// A frame of the goroutine written last: its site's key and index, its args text's key and
/// index (`u32::MAX` when written as it is).
#[derive(Clone, Copy)]
struct Last {
    site: (u64, u32),
    args: (u64, u32),
}

/// A `go` statement's place as a table finds it again: its function's and file's names (by
/// address), line, pc and entry.
type CreatedKey = (u64, u64, u32, u64, u64);

/// Most args texts one table holds before the rows write them as they are (a run of 512
/// goroutines holds a few thousand).
const MAX_ARGS: usize = 1 << 20;

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
            let before = last.get(j).copied();
            let site = match before {
                Some(l) if l.site.0 == key => l.site.1,
                _ => match self.site(key, f) {
                    Some(i) => i,
                    None => {
                        last.clear();
                        self.last = last;
                        return serde_json::to_writer(buf, frames).map_err(Into::into);
                    }
                },
            };
            let akey = f.args.key();
            let args = match before {
                Some(l) if l.args.0 == akey => l.args.1,
                _ => self.args(akey, &f.args),
            };
            let now = Last {
                site: (key, site),
                args: (akey, args),
            };
            match last.get_mut(j) {
                Some(slot) => *slot = now,
                None => last.push(now),
            }
        }
        last.truncate(frames.len());
        buf.push(b'[');
        let mut sp = 0;
        for (i, (f, l)) in frames.iter().zip(&last).enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.push(b'[');
            number(buf, l.site.1);
            buf.push(b',');
            match l.args.1 {
                u32::MAX => string(buf, &f.args),
                a => number(buf, a),
            }
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

    /// Writes where a goroutine was created: `null`, or `[site, flags]` (flags: 1 hidden), its
    /// place a site of this table (from version 5), or the object as it is once the table is
    /// full.
    pub(super) fn created_by(
        &mut self,
        buf: &mut Vec<u8>,
        c: Option<&CreatedBy>,
    ) -> std::io::Result<()> {
        let Some(c) = c else {
            buf.extend_from_slice(b"null");
            return Ok(());
        };
        let key = (c.function.key(), c.file.key(), c.line, c.pc, c.entry);
        let site = match self.created.get(&key) {
            Some(&i) => i,
            None if self.rows.len() < MAX_SITES => {
                let i = self.rows.len() as u32;
                self.rows.push(created_row(c));
                self.created.insert(key, i);
                i
            }
            None => return serde_json::to_writer(buf, c).map_err(Into::into),
        };
        buf.push(b'[');
        number(buf, site);
        buf.push(b',');
        number(buf, if c.hidden { HIDDEN } else { 0 });
        buf.push(b']');
        Ok(())
    }

    /// The tables: the sites of the frames and `go` statements written, each once, in the
    /// order rows point at them, and the args texts likewise.
    pub(super) fn into_tables(self) -> Tables {
        Tables {
            sites: self.rows,
            args: self.args,
        }
    }

    /// The index of an args text (`key`, [`Name::key`]), added when new; `u32::MAX` when
    /// the table is full (the row then holds the text).
    fn args(&mut self, key: u64, text: &Name) -> u32 {
        if let Some(&i) = self.args_index.get(&key) {
            return i;
        }
        if self.args.len() >= MAX_ARGS {
            return u32::MAX;
        }
        let i = self.args.len() as u32;
        self.args.push(text.clone());
        self.args_index.insert(key, i);
        i
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

/// The row of a table that holds the place of the `go` statement `c`.
pub(super) fn created_row(c: &CreatedBy) -> Row {
    (
        c.function.clone(),
        c.file.clone(),
        c.line,
        c.pc,
        c.entry,
        false,
    )
}

/// Writes `n` in decimal, as serde writes a number. Up to three digits (most numbers of a
/// row: a site, a frame's size, its flags) are copied as arrays of their size, not by a
/// `memcpy` call, which for eleven million numbers in a snapshot of 100,000 goroutines was 7%
/// of the time its file took.
pub(crate) fn number(buf: &mut Vec<u8>, n: impl itoa::Integer) {
    let mut digits = itoa::Buffer::new();
    match *digits.format(n).as_bytes() {
        [a] => buf.push(a),
        [a, b] => buf.extend_from_slice(&[a, b]),
        [a, b, c] => buf.extend_from_slice(&[a, b, c]),
        ref s => buf.extend_from_slice(s),
    }
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
        de.deserialize_any(self)
    }
}

impl Visitor<'_> for Args {
    type Value = Name;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame's args text, or its index in the file's table")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Name, E> {
        Ok(Name::again(self.0.as_ref(), s).unwrap_or_else(|| Name::from(s)))
    }

    fn visit_u64<E: de::Error>(self, i: u64) -> Result<Name, E> {
        READING
            .with(|r| {
                let r = r.borrow();
                r.as_ref()?
                    .table
                    .args
                    .get(usize::try_from(i).ok()?)
                    .cloned()
            })
            .ok_or_else(|| {
                E::custom("a frame's row points at an args text its file's table does not have")
            })
    }
}

/// Where a goroutine was created, as a line holds it: `null`, the object, or (from version 5)
/// `[site, flags]`, its place a site of the table being read (flags: 1 hidden).
pub(super) fn deserialize_created_by<'de, D: Deserializer<'de>>(
    de: D,
) -> Result<Option<CreatedBy>, D::Error> {
    struct Created;
    impl<'de> Visitor<'de> for Created {
        type Value = Option<CreatedBy>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("where a goroutine was created (null, an object, or [site, flags])")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
            de.deserialize_any(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            CreatedBy::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let missing = |what: &str| de::Error::custom(format!("a created-by row has no {what}"));
            let at: u64 = seq.next_element()?.ok_or_else(|| missing("site"))?;
            let flags: u8 = seq.next_element()?.ok_or_else(|| missing("flags"))?;
            while seq.next_element::<de::IgnoredAny>()?.is_some() {}
            let site = READING.with(|r| {
                let r = r.borrow();
                r.as_ref()?
                    .table
                    .sites
                    .get(usize::try_from(at).ok()?)
                    .cloned()
            });
            let Some(s) = site else {
                return Err(de::Error::custom(
                    "a created-by row points at a site its file's table does not have",
                ));
            };
            Ok(Some(CreatedBy {
                function: s.function.clone(),
                file: s.file.clone(),
                line: s.line,
                pc: s.pc,
                entry: s.entry,
                hidden: flags & HIDDEN != 0,
            }))
        }
    }
    de.deserialize_option(Created)
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
