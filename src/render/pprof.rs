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

use crate::snapshot::{Frame, Goroutine, LabelStr, Name, Snapshot, TextMapping};
use std::collections::HashMap;
use std::io::{self, Write};

/// The id of the executable's mapping (the first: pprof takes it as the main binary).
const MAIN_MAPPING: u64 = 1;

/// Writes the gzipped profile of the goroutines `keep` accepts.
pub fn render(
    snap: &Snapshot,
    keep: impl Fn(&Goroutine) -> bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let bytes = encode(snap, keep);
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?;
    Ok(())
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
pub(crate) fn encode(snap: &Snapshot, keep: impl Fn(&Goroutine) -> bool) -> Vec<u8> {
    let mut t = Tables::default();
    t.strings.id("");
    let mut samples: HashMap<SampleKey, u64> = HashMap::new();
    let mut order: Vec<SampleKey> = Vec::new();
    let text = snap
        .meta
        .text
        .as_ref()
        .filter(|_| !snap.meta.exe.is_empty());

    for g in snap.goroutines.iter().filter(|g| !g.system && keep(g)) {
        let locs = physical(&g.frames)
            .into_iter()
            .map(|chunk| t.location(chunk, text))
            .collect();
        let k = (locs, g.labels.clone());
        let c = samples.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            0
        });
        *c += 1;
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
        let m = mapping(snap, text, &mut t.strings);
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
    field_varint(&mut p, 9, snap.meta.time_unix.saturating_mul(1_000_000_000));
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
fn mapping(snap: &Snapshot, t: &TextMapping, strings: &mut Strings) -> Vec<u8> {
    // The path as the process saw it, without the kernel's mark of a replaced file.
    let exe = snap
        .meta
        .exe
        .strip_suffix(" (deleted)")
        .unwrap_or(&snap.meta.exe);
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

    #[test]
    fn physical_chunks_end_with_the_real_frame() {
        let f = |inl| Frame {
            site: crate::snapshot::Site {
                inlined: inl,
                ..Default::default()
            }
            .into(),
            ..Default::default()
        };
        let frames = vec![f(true), f(false), f(false), f(true), f(true), f(false)];
        let c: Vec<usize> = physical(&frames).iter().map(|c| c.len()).collect();
        assert_eq!(c, vec![2, 1, 3]);
    }
}
