//! A goroutine profile in pprof's profile.proto (gzipped), like `/debug/pprof/goroutine`
//! with `debug=0`: one sample per distinct (stack, labels) with its goroutine count; sample
//! and period type `goroutine`/`count`. `go tool pprof` opens it, and `-diff_base` works
//! across two snapshots.
//!
//! When the snapshot knows where the executable's code was mapped, the profile carries it as
//! its main mapping (path, build id, addresses and file offset, marked as already symbolized),
//! so `go tool pprof -disasm` and `-weblist` find the binary's instructions when the binary is
//! at that path or named on pprof's command line.
//!
//! Field numbers are those of `profile.proto` (github.com/google/pprof/proto/profile.proto).

use crate::analyze::group::FirstSeen;
use crate::snapshot::{Frame, Goroutine, LabelStr, Meta, Name, Site, Snapshot, TextMapping};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

/// The id of the executable's mapping (the first: pprof takes it as the main binary).
const MAIN_MAPPING: u64 = 1;

/// Writes the gzipped profile of the goroutines `keep` accepts.
pub fn render(
    snap: &Snapshot,
    keep: impl Fn(&Goroutine) -> bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut samples = Samples::default();
    for g in &snap.goroutines {
        if keep(g) {
            samples.add(Cow::Borrowed(g));
        }
    }
    write(&snap.meta, &samples, out)
}

/// Writes the gzipped profile of `samples`, of a snapshot with the facts `meta`.
pub fn write(meta: &Meta, samples: &Samples, out: &mut dyn Write) -> io::Result<()> {
    let bytes = encode(meta, samples);
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?;
    Ok(())
}

/// Goroutines counted by stack (every frame's place) and labels, in order of first
/// appearance, each such stack with its first goroutine: what a profile's samples are made
/// of, built a goroutine at a time (for a whole snapshot, or per chunk of a stream, merged in
/// order). Runtime-internal goroutines are left out, as the runtime's profile leaves them.
#[derive(Default)]
pub struct Samples {
    stacks: FirstSeen<StackId, (Goroutine, u64)>,
}

/// What makes two goroutines the same stack of [`Samples`].
type StackId = (Vec<Arc<Site>>, Vec<(LabelStr, LabelStr)>);

impl Samples {
    /// Counts `g` in (a copy kept only when it starts a stack).
    pub fn add(&mut self, g: Cow<'_, Goroutine>) {
        if g.system {
            return;
        }
        let id = (
            g.frames.iter().map(|f| f.site.clone()).collect(),
            g.labels.clone(),
        );
        match self.stacks.get_mut(&id) {
            Some((_, n)) => *n += 1,
            None => self.stacks.insert(id, (g.into_owned(), 1)),
        }
    }

    /// Counts in `later`, whose goroutines all come after this one's.
    pub fn merge(&mut self, later: Samples) {
        self.stacks.merge(later.stacks, |(_, n), (_, m)| *n += m);
    }
}

/// The profile's string table. Its strings are bytes: a label's are the target's own, UTF-8
/// or not (only the bytes read of a label read in part).
#[derive(Default)]
struct Strings {
    index: HashMap<Vec<u8>, u64>,
    table: Vec<Vec<u8>>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u64 {
        self.bytes_id(s.as_bytes())
    }

    fn bytes_id(&mut self, s: &[u8]) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as u64;
        self.table.push(s.to_vec());
        self.index.insert(s.to_vec(), i);
        i
    }
}

/// The frames of a goroutine cut into physical frames: each chunk ends with its non-inlined
/// frame and starts with the innermost call inlined into it.
fn physical(frames: &[Frame]) -> Vec<&[Frame]> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, f) in frames.iter().enumerate() {
        if !f.inlined {
            out.push(&frames[start..=i]);
            start = i + 1;
        }
    }
    if start < frames.len() {
        out.push(&frames[start..]);
    }
    out
}

/// A sample's identity: its location ids, innermost first, and its labels.
type SampleKey = (Vec<u64>, Vec<(LabelStr, LabelStr)>);

/// The profile's functions and locations, each message once, by its id.
#[derive(Default)]
struct Tables {
    strings: Strings,
    functions: HashMap<(Name, Name), u64>,
    function_msgs: Vec<Vec<u8>>,
    locations: HashMap<String, u64>,
    location_msgs: Vec<Vec<u8>>,
}

impl Tables {
    /// The id of a frame's function (by name and file).
    fn function(&mut self, f: &Frame) -> u64 {
        let fk = (f.function.clone(), f.file.clone());
        if let Some(&x) = self.functions.get(&fk) {
            return x;
        }
        let x = self.function_msgs.len() as u64 + 1;
        let mut fm = Vec::new();
        field_varint(&mut fm, 1, x);
        field_varint(&mut fm, 2, self.strings.id(&f.function));
        field_varint(&mut fm, 3, self.strings.id(&f.function));
        field_varint(&mut fm, 4, self.strings.id(&f.file));
        self.function_msgs.push(fm);
        self.functions.insert(fk, x);
        x
    }

    /// The id of a physical frame's location (its pc and every logical frame in it), in the
    /// main mapping when its pc is in `text`.
    fn location(&mut self, chunk: &[Frame], text: Option<&TextMapping>) -> u64 {
        let phys = chunk.last().expect("chunks are not empty");
        let key = format!(
            "{:#x}|{}",
            phys.pc,
            chunk
                .iter()
                .map(|f| format!("{} {}:{}", f.function, f.file, f.line))
                .collect::<Vec<_>>()
                .join("|")
        );
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let id = self.location_msgs.len() as u64 + 1;
        let mut loc = Vec::new();
        field_varint(&mut loc, 1, id);
        if text.is_some_and(|t| (t.start..t.limit).contains(&phys.pc)) {
            field_varint(&mut loc, 2, MAIN_MAPPING);
        }
        field_varint(&mut loc, 3, phys.pc);
        for f in chunk {
            let fid = self.function(f);
            let mut line = Vec::new();
            field_varint(&mut line, 1, fid);
            field_varint(&mut line, 2, u64::from(f.line));
            field_bytes(&mut loc, 4, &line);
        }
        self.location_msgs.push(loc);
        self.locations.insert(key, id);
        id
    }
}

/// The uncompressed profile.
pub(crate) fn encode(meta: &Meta, stacks: &Samples) -> Vec<u8> {
    let mut t = Tables::default();
    t.strings.id("");
    let mut samples: HashMap<SampleKey, u64> = HashMap::new();
    let mut order: Vec<SampleKey> = Vec::new();
    let text = meta.text.as_ref().filter(|_| !meta.exe.is_empty());

    for (g, n) in stacks.stacks.values() {
        let locs = physical(&g.frames)
            .into_iter()
            .map(|chunk| t.location(chunk, text))
            .collect();
        let k = (locs, g.labels.clone());
        let c = samples.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            0
        });
        *c += n;
    }

    let mut p = Vec::new();
    let goroutine = t.strings.id("goroutine");
    let count = t.strings.id("count");
    let mut vt = Vec::new();
    field_varint(&mut vt, 1, goroutine);
    field_varint(&mut vt, 2, count);
    field_bytes(&mut p, 1, &vt);
    for k in &order {
        let s = sample(k, samples[k], &mut t.strings);
        field_bytes(&mut p, 2, &s);
    }
    if let Some(text) = text {
        let m = mapping(meta, text, &mut t.strings);
        field_bytes(&mut p, 3, &m);
    }
    for l in &t.location_msgs {
        field_bytes(&mut p, 4, l);
    }
    for f in &t.function_msgs {
        field_bytes(&mut p, 5, f);
    }
    for s in &t.strings.table {
        field_bytes(&mut p, 6, s);
    }
    field_varint(&mut p, 9, meta.time_unix.saturating_mul(1_000_000_000));
    field_bytes(&mut p, 11, &vt);
    field_varint(&mut p, 12, 1);
    p
}

/// A sample message: its locations, its goroutine count, its labels.
fn sample(k: &SampleKey, n: u64, strings: &mut Strings) -> Vec<u8> {
    let mut s = Vec::new();
    let mut packed = Vec::new();
    for &l in &k.0 {
        varint(&mut packed, l);
    }
    field_bytes(&mut s, 1, &packed);
    let mut vals = Vec::new();
    varint(&mut vals, n);
    field_bytes(&mut s, 2, &vals);
    for (lk, lv) in &k.1 {
        let mut label = Vec::new();
        field_varint(&mut label, 1, strings.bytes_id(lk.bytes()));
        field_varint(&mut label, 2, strings.bytes_id(lv.bytes()));
        field_bytes(&mut s, 3, &label);
    }
    s
}

/// The main mapping's message: the executable's code as mapped.
fn mapping(meta: &Meta, t: &TextMapping, strings: &mut Strings) -> Vec<u8> {
    // The path as the process saw it, without the kernel's mark of a replaced file.
    let exe = meta.exe.strip_suffix(" (deleted)").unwrap_or(&meta.exe);
    let mut m = Vec::new();
    field_varint(&mut m, 1, MAIN_MAPPING);
    field_varint(&mut m, 2, t.start);
    field_varint(&mut m, 3, t.limit);
    field_varint(&mut m, 4, t.offset);
    field_varint(&mut m, 5, strings.id(exe));
    field_varint(&mut m, 6, strings.id(&t.build_id));
    // has_functions, has_filenames, has_line_numbers, has_inline_frames: the locations
    // are symbolized already, inlined calls included; pprof must not do it again.
    for field in 7..=10 {
        field_varint(&mut m, field, 1);
    }
    m
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
    }

    /// A profile built from chunks of goroutines merged in order is the profile of all of
    /// them at once: same samples, counts, order and tables.
    #[test]
    fn samples_merged_from_chunks_make_the_same_profile() {
        let frame = |function: &str, pc: u64| {
            Frame::new(
                Site {
                    function: function.into(),
                    file: "/src/x.go".into(),
                    line: pc as u32,
                    pc,
                    ..Default::default()
                }
                .into(),
                Default::default(),
                0,
                0,
            )
        };
        let gs: Vec<Goroutine> = (0..50u64)
            .map(|i| Goroutine {
                id: i + 1,
                system: i % 13 == 0,
                frames: vec![frame("main.leaf", 10 + i % 4), frame("main.main", 99)],
                labels: if i % 5 == 0 {
                    vec![("k".into(), format!("v{}", i % 2).as_str().into())]
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
            .collect();
        let meta = Meta::default();
        let mut whole = Samples::default();
        for g in &gs {
            whole.add(Cow::Borrowed(g));
        }
        let want = encode(&meta, &whole);
        for size in [1, 4, 7, 50] {
            let mut merged = Samples::default();
            for chunk in gs.chunks(size) {
                let mut s = Samples::default();
                for g in chunk {
                    s.add(Cow::Owned(g.clone()));
                }
                merged.merge(s);
            }
            assert!(encode(&meta, &merged) == want, "chunks of {size}");
        }
        let counted: u64 = whole.stacks.values().iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 46, "runtime goroutines left out");
    }

    #[test]
    fn physical_chunks_end_with_the_real_frame() {
        let f = |inl| {
            Frame::new(
                crate::snapshot::Site {
                    inlined: inl,
                    ..Default::default()
                }
                .into(),
                Default::default(),
                0,
                0,
            )
        };
        let frames = vec![f(true), f(false), f(false), f(true), f(true), f(false)];
        let c: Vec<usize> = physical(&frames).iter().map(|c| c.len()).collect();
        assert_eq!(c, vec![2, 1, 3]);
    }
}
