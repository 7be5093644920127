//! Go maps: their length (the first word of the runtime's map header in every version:
//! `hmap.count` up to Go 1.23, `maps.Map.used` of the Swiss tables from 1.24).

use super::dwarf::Type;
use super::show::{Place, Reader, Val};
use std::fmt::Write as _;

/// A map's length; `None` for a nil map.
pub fn map_len(r: &Reader<'_>, v: &Val) -> Result<Option<u64>, String> {
    let p = r.uint(v, 0, 8)?;
    if p == 0 {
        return Ok(None);
    }
    let hdr = Val {
        ty: v.ty,
        place: Place::Mem(p),
    };
    r.uint(&hdr, 0, 8).map(Some)
}

/// A non-nil map's entries as delve writes them when it loads none: `[...]` (the length is
/// what `len(m)` prints).
pub fn write_map(
    r: &Reader<'_>,
    v: &Val,
    _t: &Type,
    _level: usize,
    out: &mut String,
) -> Result<(), String> {
    match map_len(r, v)? {
        Some(0) | None => out.push_str("[]"),
        Some(n) => {
            let _ = write!(out, "[...+{n} more]");
        }
    }
    Ok(())
}
