//! `time.Duration` and `time.Time` shown readably. A Duration is written as Go's own
//! `Duration.String` writes it (`1h2m3.5s`, `150ms`, `0s`). A Time is written in delve's shape
//! for it, `time.Time(<RFC 3339 instant>)`, with the nanoseconds as Go's `RFC3339Nano` writes
//! them and, when the Time carries a monotonic reading, that reading as Go's `Time.String`
//! writes it (`, m=+0.012345678`).
//!
//! A Time's words are decoded as `time/time.go` defines them: `wall` holds the hasMonotonic
//! bit (63); with it, 33 bits of seconds since 1885 above 30 bits of nanoseconds, and `ext` is
//! the monotonic reading in nanoseconds; without it, `ext` is the seconds since year 1. Its
//! `loc` gives the offset: UTC when nil or a Location without zones (`utcLoc`), else the zone
//! the Location caches when the instant falls in the cached range (a fixed zone always does),
//! else the text says the zone was not read and shows the instant in UTC.

use super::show::{Reader, Val};
use super::types::{Field, Kind};
use std::fmt::Write as _;

/// `hasMonotonic` of `time/time.go`: the top bit of `wall`.
const HAS_MONOTONIC: u64 = 1 << 63;
/// `nsecShift`: `wall`'s seconds field starts at this bit.
const NSEC_SHIFT: u32 = 30;
/// `nsecMask`: `wall`'s nanoseconds.
const NSEC_MASK: u64 = (1 << NSEC_SHIFT) - 1;
/// Unix time of 1885-01-01T00:00:00Z, the origin of `wall`'s seconds (`wallToInternal` +
/// `internalToUnix`).
const WALL_EPOCH_UNIX: i64 = -2_682_288_000;
/// Unix time of 0001-01-01T00:00:00Z, the origin of `ext`'s seconds (`internalToUnix`).
const INTERNAL_EPOCH_UNIX: i64 = -62_135_596_800;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `d` as Go's `time.Duration.String` writes it.
pub fn duration_text(d: i64) -> String {
    let u = d.unsigned_abs();
    let sign = if d < 0 { "-" } else { "" };
    if u == 0 {
        return "0s".into();
    }
    if u < NANOS_PER_SECOND {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (int, frac) = split_fraction(u, prec);
        return format!("{sign}{int}{frac}{unit}");
    }
    let (secs, frac) = split_fraction(u, 9);
    let (mins, hours) = (secs / 60, secs / 3600);
    let mut s = sign.to_string();
    if hours > 0 {
        let _ = write!(s, "{hours}h");
    }
    if mins > 0 {
        let _ = write!(s, "{}m", mins % 60);
    }
    let _ = write!(s, "{}{frac}s", secs % 60);
    s
}

/// `v / 10^prec`, and the fraction's digits after a point without trailing zeros (empty when
/// the fraction is 0), as Go's `fmtFrac` splits them.
fn split_fraction(v: u64, prec: u32) -> (u64, String) {
    let p = 10u64.pow(prec);
    let (int, frac) = (v / p, v % p);
    if frac == 0 {
        return (int, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (int, format!(".{}", digits.trim_end_matches('0')))
}

/// What a Time's `wall` and `ext` say: Unix seconds, nanoseconds and the monotonic reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    pub unix: i64,
    pub nsec: u32,
    pub mono: Option<i64>,
}

/// Decodes a Time's `wall` and `ext` words.
pub fn instant(wall: u64, ext: i64) -> Instant {
    let nsec = (wall & NSEC_MASK) as u32;
    if wall & HAS_MONOTONIC != 0 {
        let secs = ((wall << 1) >> (NSEC_SHIFT + 1)) as i64;
        Instant {
            unix: secs + WALL_EPOCH_UNIX,
            nsec,
            mono: Some(ext),
        }
    } else {
        Instant {
            unix: ext.wrapping_add(INTERNAL_EPOCH_UNIX),
            nsec,
            mono: None,
        }
    }
}

/// Year, month and day of a count of days since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    // Eras of 400 years (146,097 days) from 0000-03-01, so that a leap day ends each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `appendInt(b, x, 4)` for a year: a sign, then at least four digits.
fn year_text(y: i64) -> String {
    if y < 0 {
        format!("-{:04}", y.unsigned_abs())
    } else {
        format!("{y:04}")
    }
}

/// The instant at `offset` seconds east of UTC as Go's `Format(time.RFC3339Nano)` writes it.
pub fn rfc3339_nano(unix: i64, nsec: u32, offset: i64) -> String {
    let local = unix.saturating_add(offset);
    let (days, secs) = (
        local.div_euclid(SECONDS_PER_DAY),
        local.rem_euclid(SECONDS_PER_DAY),
    );
    let (y, m, d) = civil(days);
    let mut s = format!(
        "{}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        year_text(y),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    s.push_str(&split_fraction(u64::from(nsec), 9).1);
    if offset == 0 {
        s.push('Z');
    } else {
        // Whole minutes, as Go's "Z07:00" (seconds of an offset are not written).
        let minutes = offset / 60;
        let sign = if minutes < 0 { '-' } else { '+' };
        let m = minutes.unsigned_abs();
        let _ = write!(s, "{sign}{:02}:{:02}", m / 60, m % 60);
    }
    s
}

/// A monotonic reading as Go's `Time.String` writes it after `m=`.
fn mono_text(ext: i64) -> String {
    let sign = if ext < 0 { '-' } else { '+' };
    let u = ext.unsigned_abs();
    format!("{sign}{}.{:09}", u / NANOS_PER_SECOND, u % NANOS_PER_SECOND)
}

/// Where a Time's offset comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// Seconds east of UTC.
    Offset(i64),
    /// The Location (named so, quoted) was not read far enough to know.
    NotRead(String),
}

/// A Time's text inside `time.Time(...)`.
pub fn time_text(i: Instant, zone: &Zone) -> String {
    let mut s = match zone {
        Zone::Offset(o) => rfc3339_nano(i.unix, i.nsec, *o),
        Zone::NotRead(name) => format!("{}, zone {name} not read", rfc3339_nano(i.unix, i.nsec, 0)),
    };
    if let Some(m) = i.mono {
        let _ = write!(s, ", m={}", mono_text(m));
    }
    s
}

fn field<'f>(f: &'f [Field], name: &str) -> Result<&'f Field, String> {
    f.iter()
        .find(|x| x.name == name)
        .ok_or_else(|| format!("no {name} in time's struct"))
}

fn struct_fields(r: &Reader<'_>, ty: u64) -> Result<Vec<Field>, String> {
    match &r.dw.ty(ty)?.kind {
        Kind::Struct(f) => Ok(f.clone()),
        _ => Err("time's Location is not a struct".into()),
    }
}

/// The offset `loc` gives at `unix`, as `Location.lookup` finds it without walking the
/// transitions: no zones is UTC, else the cached zone when `unix` is in its range.
fn zone_of(r: &Reader<'_>, v: &Val, fields: &[Field], unix: i64) -> Result<Zone, String> {
    let loc = field(fields, "loc")?;
    let p = r.uint(v, loc.offset, 8)?;
    if p == 0 {
        return Ok(Zone::Offset(0));
    }
    let Kind::Ptr(lt) = r.dw.ty(loc.ty)?.kind else {
        return Err("time.Time's loc is not a pointer".into());
    };
    let l = Val {
        ty: lt,
        place: super::show::Place::Mem(p),
    };
    let lf = struct_fields(r, lt)?;
    let name = field(&lf, "name")?;
    let name_len = r.uint(&l, name.offset + 8, 8)?;
    let zones = r.uint(&l, field(&lf, "zone")?.offset + 8, 8)?;
    if zones == 0 && name_len > 0 {
        // utcLoc, or Local when the system gave no zone: Go names both "UTC" here.
        return Ok(Zone::Offset(0));
    }
    let cached = field(&lf, "cacheZone")?;
    let z = r.uint(&l, cached.offset, 8)?;
    let start = r.uint(&l, field(&lf, "cacheStart")?.offset, 8)? as i64;
    let end = r.uint(&l, field(&lf, "cacheEnd")?.offset, 8)? as i64;
    if zones > 0 && z != 0 && start <= unix && unix < end {
        let Kind::Ptr(zt) = r.dw.ty(cached.ty)?.kind else {
            return Err("time.Location's cacheZone is not a pointer".into());
        };
        let zf = struct_fields(r, zt)?;
        let zv = Val {
            ty: zt,
            place: super::show::Place::Mem(z),
        };
        let off = r.uint(&zv, field(&zf, "offset")?.offset, 8)? as i64;
        return Ok(Zone::Offset(off));
    }
    Ok(Zone::NotRead(r.show(&r.at(&l, name.offset, name.ty))))
}

/// Writes a `time.Time` as `time.Time(...)`.
pub fn write_time(
    r: &Reader<'_>,
    v: &Val,
    fields: &[Field],
    out: &mut String,
) -> Result<(), String> {
    let wall = r.uint(v, field(fields, "wall")?.offset, 8)?;
    let ext = r.uint(v, field(fields, "ext")?.offset, 8)? as i64;
    let i = instant(wall, ext);
    let zone = zone_of(r, v, fields, i.unix)?;
    let _ = write!(out, "time.Time({})", time_text(i, &zone));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go_writes_them() {
        // Each case's text is what Go's Duration.String gives for it.
        let s = 1_000_000_000;
        for (d, t) in [
            (0, "0s"),
            (1, "1ns"),
            (-999, "-999ns"),
            (1_500, "1.5µs"),
            (150_000_000, "150ms"),
            (1_000_001, "1.000001ms"),
            (s, "1s"),
            (3_723 * s + s / 2, "1h2m3.5s"),
            (3_605 * s, "1h0m5s"),
            (-90 * s, "-1m30s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(duration_text(d), t, "{d}");
        }
    }

    #[test]
    fn times_as_go_formats_them() {
        // time.Time{}: ext 0 is year 1.
        assert_eq!(
            time_text(instant(0, 0), &Zone::Offset(0)),
            "0001-01-01T00:00:00Z"
        );
        // time.Date(2009, 11, 10, 23, 4, 5, 6e8, time.UTC): ext = seconds since year 1.
        let unix = 1_257_894_245;
        let i = instant(600_000_000, unix - INTERNAL_EPOCH_UNIX);
        assert_eq!(i.unix, unix);
        assert_eq!(time_text(i, &Zone::Offset(0)), "2009-11-10T23:04:05.6Z");
        assert_eq!(
            time_text(i, &Zone::Offset(-(5 * 3600 + 30 * 60))),
            "2009-11-10T17:34:05.6-05:30"
        );
        // With a monotonic reading: seconds since 1885 in wall.
        let wall = HAS_MONOTONIC | (((unix - WALL_EPOCH_UNIX) as u64) << NSEC_SHIFT) | 7;
        let i = instant(wall, 1_234_567_890);
        assert_eq!(
            time_text(i, &Zone::Offset(3600)),
            "2009-11-11T00:04:05.000000007+01:00, m=+1.234567890"
        );
        assert_eq!(
            time_text(instant(wall, -5), &Zone::NotRead("\"Local\"".into())),
            "2009-11-10T23:04:05.000000007Z, zone \"Local\" not read, m=-0.000000005"
        );
        // Leap day, and before 1970.
        assert_eq!(rfc3339_nano(951_782_400, 0, 0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_nano(-1, 0, 0), "1969-12-31T23:59:59Z");
    }
}
