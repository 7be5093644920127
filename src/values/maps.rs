//! Go maps, read through the runtime structures DWARF describes: the bucket maps of Go up to
//! 1.23 (`hash<K,V>`: `count`, `B`, `buckets`, `oldbuckets`; buckets of eight `tophash`
//! bytes, keys, values and an `overflow` pointer) and the Swiss tables from 1.24 (`map<K,V>`:
//! `used`, `dirPtr`, `dirLen`; a directory of tables of groups, each group eight control bytes
//! and eight key/value slots; a small map is one group without a table). Member offsets come
//! from DWARF, never from version tables. The length is the header's first word in both.

use super::show::{Place, Reader, Val};
use super::types::{Field, Kind, Type};
use std::collections::HashSet;
use std::fmt::Write as _;

/// Most buckets (bucket maps) or groups (Swiss tables) visited in one map.
pub const MAX_MAP_GROUPS: u64 = 1 << 16;
/// Longest overflow chain followed from one bucket.
pub const MAX_OVERFLOW_CHAIN: usize = 1 << 10;
/// Most directory entries of a Swiss map read.
pub const MAX_MAP_DIRECTORY: u64 = 1 << 12;
/// `minTopHash`: a bucket slot whose tophash is below it holds no entry.
const MIN_TOP_HASH: u8 = 5;
/// A Swiss group's control byte with the high bit set is empty or deleted.
const CTRL_FREE_BIT: u8 = 0x80;
/// Slots in a bucket or group.
const SLOTS: u64 = 8;

/// One entry: its key and value.
pub type Entry = (Val, Val);

/// A map's length; `None` for a nil map.
pub fn map_len(r: &Reader<'_>, v: &Val) -> Result<Option<u64>, String> {
    let p = r.uint(v, 0, 8)?;
    if p == 0 {
        return Ok(None);
    }
    r.uint(&mem(p), 0, 8).map(Some)
}

fn mem(a: u64) -> Val {
    Val {
        ty: 0,
        place: Place::Mem(a),
    }
}

/// The struct fields of the type at `ty`, through typedefs and `want` levels of pointers.
fn struct_of(r: &Reader<'_>, mut ty: u64, ptrs: usize) -> Result<(u64, Vec<Field>), String> {
    for _ in 0..ptrs {
        match r.dw.ty(ty)?.kind {
            Kind::Ptr(t) => ty = t,
            _ => return Err("map: unexpected runtime type in DWARF".into()),
        }
    }
    match &r.dw.ty(ty)?.kind {
        Kind::Struct(f) => Ok((ty, f.clone())),
        _ => Err("map: unexpected runtime type in DWARF".into()),
    }
}

fn field<'f>(f: &'f [Field], name: &str) -> Result<&'f Field, String> {
    f.iter()
        .find(|x| x.name == name)
        .ok_or_else(|| format!("map: no field {name} in the runtime's map type"))
}

/// Calls `each` on the entries of a non-nil map, in memory order, until it returns false.
pub fn for_each(
    r: &Reader<'_>,
    v: &Val,
    each: &mut dyn FnMut(Entry) -> bool,
) -> Result<(), String> {
    let t = r.dw.ty(v.ty)?;
    let Kind::Map { key, val, hdr } = t.kind else {
        return Err(format!("{} is not a map", t.name));
    };
    let hdr_ptr = r.uint(v, 0, 8)?;
    // The typedef's target is a pointer to the runtime's header struct.
    let (_, hdr) = struct_of(r, hdr, 1)?;
    let h = mem(hdr_ptr);
    let kv = KeyVal { key, val };
    if hdr.iter().any(|f| f.name == "buckets") {
        buckets(r, &h, &hdr, kv, each)
    } else if hdr.iter().any(|f| f.name == "dirPtr") {
        swiss(r, &h, &hdr, kv, each)
    } else {
        Err("map: a runtime map layout goroscope does not know".into())
    }
}

#[derive(Clone, Copy)]
struct KeyVal {
    key: u64,
    val: u64,
}

/// A slot's key or value: stored in place, or through a pointer when the runtime stores it
/// indirectly (a slot type that is a pointer to the map's own key or value type).
fn slot(r: &Reader<'_>, at: &Val, off: u64, stored: u64, want: u64) -> Result<Val, String> {
    let v = r.at(at, off, stored);
    if stored == want {
        return Ok(v);
    }
    match r.dw.ty(stored)?.kind {
        Kind::Ptr(t) if r.dw.ty(t)?.name == r.dw.ty(want)?.name => Ok(Val {
            ty: want,
            place: Place::Mem(r.uint(&v, 0, 8)?),
        }),
        _ => Ok(r.at(at, off, want)),
    }
}

/// Bucket maps (Go up to 1.23).
fn buckets(
    r: &Reader<'_>,
    h: &Val,
    hdr: &[Field],
    kv: KeyVal,
    each: &mut dyn FnMut(Entry) -> bool,
) -> Result<(), String> {
    let b = r.uint(h, field(hdr, "B")?.offset, 1)?;
    let bf = field(hdr, "buckets")?;
    let (_, bucket) = struct_of(r, bf.ty, 1)?;
    let bsize = r.dw.ty(struct_of(r, bf.ty, 1)?.0)?.size;
    let (tophash, keys, vals, over) = (
        field(&bucket, "tophash")?.offset,
        field(&bucket, "keys")?,
        field(&bucket, "values")?,
        field(&bucket, "overflow")?.offset,
    );
    let elem = |f: &Field| -> Result<(u64, u64), String> {
        match r.dw.ty(f.ty)?.kind {
            Kind::Array { elem, .. } => Ok((elem, r.dw.ty(elem)?.size)),
            _ => Err("map: bucket keys are not an array".into()),
        }
    };
    let ((kt, ks), (vt, vs)) = (elem(keys)?, elem(vals)?);
    let n = 1u64 << b.min(62);
    if n > MAX_MAP_GROUPS {
        return Err(format!("map: more than {MAX_MAP_GROUPS} buckets"));
    }
    // While the map grows, entries not yet moved are still in the old buckets (their tophash
    // is not an "evacuated" mark): both arrays are read, and every entry is in exactly one.
    let old = r.uint(h, field(hdr, "oldbuckets")?.offset, 8)?;
    let arrays = [(r.uint(h, bf.offset, 8)?, n), (old, (n / 2).max(1))];
    for (base, count) in arrays {
        if base == 0 {
            continue;
        }
        for i in 0..count {
            let mut at = base.wrapping_add(i.wrapping_mul(bsize));
            let mut chain = 0;
            while at != 0 {
                chain += 1;
                if chain > MAX_OVERFLOW_CHAIN {
                    return Err("map: overflow chain too long".into());
                }
                let bv = mem(at);
                let th = r.read(&bv, tophash, SLOTS)?;
                for (j, &t) in th.iter().enumerate() {
                    if t < MIN_TOP_HASH {
                        continue;
                    }
                    let j = j as u64;
                    let k = slot(r, &bv, keys.offset + j * ks, kt, kv.key)?;
                    let v = slot(r, &bv, vals.offset + j * vs, vt, kv.val)?;
                    if !each((k, v)) {
                        return Ok(());
                    }
                }
                at = r.uint(&bv, over, 8)?;
            }
        }
    }
    Ok(())
}

/// Swiss tables (Go 1.24 on).
fn swiss(
    r: &Reader<'_>,
    h: &Val,
    hdr: &[Field],
    kv: KeyVal,
    each: &mut dyn FnMut(Entry) -> bool,
) -> Result<(), String> {
    let dir = field(hdr, "dirPtr")?;
    let dir_ptr = r.uint(h, dir.offset, 8)?;
    let dir_len = r.uint(h, field(hdr, "dirLen")?.offset, 8)?;
    let (_, table) = struct_of(r, dir.ty, 2)?;
    let groups = field(&table, "groups")?;
    let (_, gref) = struct_of(r, groups.ty, 0)?;
    let data = field(&gref, "data")?;
    let (gty, group) = struct_of(r, data.ty, 1)?;
    let gsize = r.dw.ty(gty)?.size;
    let ctrl = field(&group, "ctrl")?.offset;
    let slots = field(&group, "slots")?;
    let (sty, ssize) = match r.dw.ty(slots.ty)?.kind {
        Kind::Array { elem, .. } => (elem, r.dw.ty(elem)?.size),
        _ => return Err("map: group slots are not an array".into()),
    };
    let (_, sf) = struct_of(r, sty, 0)?;
    let (skey, sval) = (field(&sf, "key")?, field(&sf, "elem")?);
    let mut group_at = |g: u64, budget: &mut u64| -> Result<bool, String> {
        *budget += 1;
        if *budget > MAX_MAP_GROUPS {
            return Err(format!("map: more than {MAX_MAP_GROUPS} groups"));
        }
        let gv = mem(g);
        let c = r.read(&gv, ctrl, SLOTS)?;
        for (j, &b) in c.iter().enumerate() {
            if b & CTRL_FREE_BIT != 0 {
                continue;
            }
            let s = r.at(&gv, slots.offset + j as u64 * ssize, sty);
            let k = slot(r, &s, skey.offset, skey.ty, kv.key)?;
            let v = slot(r, &s, sval.offset, sval.ty, kv.val)?;
            if !each((k, v)) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let mut budget = 0u64;
    if dir_ptr == 0 {
        return Ok(());
    }
    // A small map: dirPtr is its one group.
    if dir_len == 0 {
        group_at(dir_ptr, &mut budget)?;
        return Ok(());
    }
    if dir_len > MAX_MAP_DIRECTORY {
        return Err(format!(
            "map: a directory of more than {MAX_MAP_DIRECTORY} tables"
        ));
    }
    // Several directory entries may share a table.
    let mut seen = HashSet::new();
    for i in 0..dir_len {
        let tp = r.uint(&mem(dir_ptr), i * 8, 8)?;
        if tp == 0 || !seen.insert(tp) {
            continue;
        }
        let tv = mem(tp);
        let gdata = r.uint(&tv, groups.offset + data.offset, 8)?;
        let mask = r.uint(&tv, groups.offset + field(&gref, "lengthMask")?.offset, 8)?;
        if mask >= MAX_MAP_GROUPS {
            return Err(format!("map: a table of more than {MAX_MAP_GROUPS} groups"));
        }
        for g in 0..=mask {
            if !group_at(gdata.wrapping_add(g.wrapping_mul(gsize)), &mut budget)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A non-nil map's entries as delve writes them: `["a": 1, "b": 2, ]`, then `,...+N more`
/// past the shown limit.
pub fn write_map(
    r: &Reader<'_>,
    v: &Val,
    _t: &Type,
    level: usize,
    out: &mut String,
) -> Result<(), String> {
    let len = map_len(r, v)?.unwrap_or(0);
    let limit = r.cfg.max_array_values as u64;
    let mut shown = Vec::new();
    if level <= r.cfg.max_recurse {
        for_each(r, v, &mut |e| {
            shown.push(e);
            (shown.len() as u64) < limit.min(len)
        })?;
    }
    out.push('[');
    for (k, val) in &shown {
        r.write_plain(k, level + 1, out);
        out.push_str(": ");
        r.write_plain(val, level + 1, out);
        out.push_str(", ");
    }
    let n = shown.len() as u64;
    if n != len {
        if n != 0 {
            out.push(',');
            let _ = write!(out, "...+{} more", len.saturating_sub(n));
        } else {
            out.push_str("...");
        }
    }
    out.push(']');
    Ok(())
}

/// A map key given in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Int(i64),
    Str(String),
}

/// Most entries compared when looking a key up.
pub const MAX_MAP_LOOKUP: u64 = 1 << 20;

/// `m[key]`: the value of the entry whose key equals `key`.
pub fn lookup(r: &Reader<'_>, v: &Val, key: &Key) -> Result<Val, String> {
    if r.uint(v, 0, 8)? == 0 {
        return Err("key not found in a nil map".into());
    }
    let mut found = None;
    let mut err = None;
    let mut seen = 0u64;
    for_each(r, v, &mut |(k, val)| {
        seen += 1;
        match key_equals(r, &k, key) {
            Ok(true) => {
                found = Some(val);
                false
            }
            Ok(false) => seen < MAX_MAP_LOOKUP,
            Err(e) => {
                err = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    found.ok_or_else(|| format!("key {key:?} not found"))
}

fn key_equals(r: &Reader<'_>, k: &Val, key: &Key) -> Result<bool, String> {
    let t = r.dw.ty(k.ty)?;
    Ok(match (&t.kind, key) {
        (Kind::String, Key::Str(s)) => {
            let len = r.uint(k, 8, 8)?;
            len == s.len() as u64
                && (len == 0 || r.read(&mem(r.uint(k, 0, 8)?), 0, len)? == s.as_bytes())
        }
        (Kind::Int, Key::Int(n)) => {
            let size = t.size.clamp(1, 8);
            let shift = 64 - 8 * size;
            ((r.uint(k, 0, size)? << shift) as i64) >> shift == *n
        }
        (Kind::Uint, Key::Int(n)) => *n >= 0 && r.uint(k, 0, t.size.clamp(1, 8))? == *n as u64,
        _ => return Err(format!("a {} key cannot be given in an expression", t.name)),
    })
}
