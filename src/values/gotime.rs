//! `time.Duration` and `time.Time` shown readably. A Duration is written as Go's own
//! `Duration.String` writes it (`1h2m3.5s`, `150ms`, `0s`). A Time is written in delve's shape
//! for it, `time.Time(<RFC 3339 instant>)`, with the nanoseconds as Go's `RFC3339Nano` writes
//! them and, when the Time carries a monotonic reading, that reading as Go's `Time.String`
//! writes it (`, m=+0.012345678`).
//!
//! A Time's words are decoded as `time/time.go` defines them: `wall` holds the hasMonotonic
//! bit (63); with it, 33 bits of seconds since 1885 above 30 bits of nanoseconds, and `ext` is
//! the monotonic reading in nanoseconds; without it, `ext` is the seconds since year 1. Its
//! `loc` gives the offset as `(*Location).lookup` of `time/zoneinfo.go` finds it: UTC when nil
//! or a Location without zones (`utcLoc`); the zone the Location caches when the instant falls
//! in the cached range (a fixed zone always does); else its transitions (`tx`, the last one at
//! or before the instant; before the first, the zone `lookupFirstZone` picks), and after the
//! last transition the POSIX TZ rule of `extend` ([`tz_rule_offset`]). When the Location
//! cannot be read that far (too many transitions, a rule that does not parse), the text says
//! the zone was not read and shows the instant in UTC.

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

/// Most zones of a Location read (`zoneTrans.index` is a byte: 256 can be named).
pub const MAX_ZONES: u64 = 256;
/// Most transitions of a Location read; tzdata's zones have a few hundred at most.
pub const MAX_TRANSITIONS: u64 = 4096;
/// Longest `extend` TZ rule read (tzdata's are under 64 bytes).
pub const MAX_TZ_RULE: u64 = 256;

/// One of a Location's zones: seconds east of UTC, and whether it is daylight time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneInfo {
    pub offset: i64,
    pub dst: bool,
}

/// What `lookup` reads of a Location besides its cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    pub zones: Vec<ZoneInfo>,
    /// Transitions in time order: (Unix seconds, index into `zones`).
    pub tx: Vec<(i64, u8)>,
    /// The POSIX TZ rule for instants after the last transition (empty: none).
    pub extend: String,
}

impl Zones {
    /// The offset at Unix second `sec`, as `lookup` finds it past its cache; `None` when an
    /// index is out of range.
    pub fn offset_at(&self, sec: i64) -> Option<i64> {
        // Transitions at or before `sec`: the last of them is in effect.
        let after = self.tx.partition_point(|t| t.0 <= sec);
        if after == 0 {
            return Some(self.zones.get(self.first_zone())?.offset);
        }
        let index = self.tx[after - 1].1;
        if after == self.tx.len()
            && !self.extend.is_empty()
            && let Some(o) = tz_rule_offset(&self.extend, sec)
        {
            return Some(o);
        }
        Some(self.zones.get(usize::from(index))?.offset)
    }

    /// The zone before the first transition (`lookupFirstZone`, after tzcode): the first zone
    /// if no transition uses it; else the nearest standard zone before a first transition to
    /// daylight time; else the first standard zone; else the first.
    fn first_zone(&self) -> usize {
        if !self.tx.iter().any(|t| t.1 == 0) {
            return 0;
        }
        let std = |i: &usize| self.zones.get(*i).is_some_and(|z| !z.dst);
        if let Some(&(_, first)) = self.tx.first()
            && self.zones.get(usize::from(first)).is_some_and(|z| z.dst)
            && let Some(i) = (0..usize::from(first)).rev().find(std)
        {
            return i;
        }
        (0..self.zones.len()).find(std).unwrap_or(0)
    }
}

/// When a TZ rule switches: `Jn` (day 1–365, February 29 never counted), `n` (day 0–365,
/// counting it) or `Mm.w.d` (weekday `d` of week `w` of month `m`, week 5 the last), at
/// `time` seconds of local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleDay {
    Julian(i64),
    Day(i64),
    MonthWeekDay { month: u32, week: u32, weekday: i64 },
}

/// A small TZ-string reader: numbers, names, offsets and rules as `tzset` accepts them.
struct TzText<'a>(&'a str);

impl TzText<'_> {
    fn eat(&mut self, c: char) -> bool {
        match self.0.strip_prefix(c) {
            Some(r) => {
                self.0 = r;
                true
            }
            None => false,
        }
    }

    fn at(&self, c: char) -> bool {
        self.0.starts_with(c)
    }

    /// A decimal number from `min` to `max`, at least one digit.
    fn num(&mut self, min: i64, max: i64) -> Option<i64> {
        let digits = self.0.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut n: i64 = 0;
        for b in self.0[..digits].bytes() {
            n = n * 10 + i64::from(b - b'0');
            if n > max {
                return None;
            }
        }
        self.0 = &self.0[digits..];
        (n >= min).then_some(n)
    }

    /// A zone name: `<...>` quoted, or three or more characters up to a digit, sign or comma.
    fn name(&mut self) -> Option<()> {
        if self.eat('<') {
            let end = self.0.find('>')?;
            self.0 = &self.0[end + 1..];
            return Some(());
        }
        let end = self
            .0
            .find(|c: char| c.is_ascii_digit() || matches!(c, ',' | '-' | '+'))
            .unwrap_or(self.0.len());
        if end < 3 {
            return None;
        }
        self.0 = &self.0[end..];
        Some(())
    }

    /// `[+-]hh[:mm[:ss]]` in seconds, hours up to a week as tzcode allows.
    fn offset(&mut self) -> Option<i64> {
        let neg = if self.eat('-') {
            true
        } else {
            self.eat('+');
            false
        };
        let mut secs = self.num(0, 24 * 7)? * 3600;
        if self.eat(':') {
            secs += self.num(0, 59)? * 60;
            if self.eat(':') {
                secs += self.num(0, 59)?;
            }
        }
        Some(if neg { -secs } else { secs })
    }

    /// A rule and its time of day (02:00 when not given).
    fn rule(&mut self) -> Option<(RuleDay, i64)> {
        let day = if self.eat('J') {
            RuleDay::Julian(self.num(1, 365)?)
        } else if self.eat('M') {
            let month = self.num(1, 12)? as u32;
            if !self.eat('.') {
                return None;
            }
            let week = self.num(1, 5)? as u32;
            if !self.eat('.') {
                return None;
            }
            let weekday = self.num(0, 6)?;
            RuleDay::MonthWeekDay {
                month,
                week,
                weekday,
            }
        } else {
            RuleDay::Day(self.num(0, 365)?)
        };
        let time = if self.eat('/') {
            self.offset()?
        } else {
            2 * 3600
        };
        Some((day, time))
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days since 1970-01-01 of a date (proleptic Gregorian), the inverse of [`civil`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds from the start of `year` (UTC) to when `rule` switches, in a zone `off` seconds east.
fn rule_time(year: i64, (day, time): (RuleDay, i64), off: i64) -> i64 {
    let jan1 = days_from_civil(year, 1, 1);
    let yday = match day {
        RuleDay::Julian(n) => n - 1 + i64::from(is_leap(year) && n >= 60),
        RuleDay::Day(n) => n,
        RuleDay::MonthWeekDay {
            month,
            week,
            weekday,
        } => {
            let first = days_from_civil(year, month, 1);
            let next = if month == 12 {
                days_from_civil(year + 1, 1, 1)
            } else {
                days_from_civil(year, month + 1, 1)
            };
            // 1970-01-01 was a Thursday (4).
            let mut d = (weekday - (first + 4).rem_euclid(7)).rem_euclid(7);
            for _ in 1..week {
                if d + 7 >= next - first {
                    break;
                }
                d += 7;
            }
            first - jan1 + d
        }
    };
    yday * SECONDS_PER_DAY + time - off
}

/// The offset a POSIX TZ rule (`EST5EDT,M3.2.0,M11.1.0`, a Location's `extend`) gives at Unix
/// second `sec`, as `tzset` of `time/zoneinfo.go` reads it; `None` when it does not parse.
pub fn tz_rule_offset(rule: &str, sec: i64) -> Option<i64> {
    let mut t = TzText(rule);
    t.name()?;
    // The rule's offsets are west of UTC; Go's are east.
    let std = -t.offset()?;
    if t.0.is_empty() || t.at(',') {
        return Some(std);
    }
    t.name()?;
    let dst = if t.0.is_empty() || t.at(',') {
        std + 3600
    } else {
        -t.offset()?
    };
    let mut t = if t.0.is_empty() {
        // tzcode's default rules.
        TzText(",M3.2.0,M11.1.0")
    } else {
        t
    };
    if !t.eat(',') && !t.eat(';') {
        return None;
    }
    let start = t.rule()?;
    if !t.eat(',') {
        return None;
    }
    let end = t.rule()?;
    if !t.0.is_empty() {
        return None;
    }
    let (year, _, _) = civil(sec.div_euclid(SECONDS_PER_DAY));
    // Go's `sec % secondsPerDay` truncates, as Rust's `%` does.
    let ysec = (sec.div_euclid(SECONDS_PER_DAY) - days_from_civil(year, 1, 1)) * SECONDS_PER_DAY
        + sec % SECONDS_PER_DAY;
    let (mut a, mut b) = (rule_time(year, start, std), rule_time(year, end, dst));
    let (mut inside, mut outside) = (dst, std);
    // A rule whose daylight time spans the new year (the southern hemisphere).
    if b < a {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut inside, &mut outside);
    }
    Some(if a <= ysec && ysec < b {
        inside
    } else {
        outside
    })
}

/// A Go slice's data pointer and length at `off` into `v`.
fn slice_at(r: &Reader<'_>, v: &Val, off: u64) -> Result<(u64, u64), String> {
    Ok((r.uint(v, off, 8)?, r.uint(v, off + 8, 8)?))
}

/// The element type and its size of a slice field.
fn slice_elem(r: &Reader<'_>, f: &Field) -> Result<(u64, u64), String> {
    match r.dw.ty(f.ty)?.kind {
        Kind::Slice(e) => Ok((e, r.dw.ty(e)?.size)),
        _ => Err(format!("time.Location's {} is not a slice", f.name)),
    }
}

/// A Location's zones, transitions and rule; `None` when there are more than goroscope reads.
fn read_zones(r: &Reader<'_>, l: &Val, lf: &[Field]) -> Result<Option<Zones>, String> {
    let (zf, txf, ef) = (field(lf, "zone")?, field(lf, "tx")?, field(lf, "extend")?);
    let (zp, zn) = slice_at(r, l, zf.offset)?;
    let (tp, tn) = slice_at(r, l, txf.offset)?;
    let (ep, en) = slice_at(r, l, ef.offset)?;
    if zn > MAX_ZONES || tn > MAX_TRANSITIONS || en > MAX_TZ_RULE {
        return Ok(None);
    }
    let mem = |p: u64| Val {
        ty: 0,
        place: super::show::Place::Mem(p),
    };
    let (zt, zsize) = slice_elem(r, zf)?;
    let zfields = struct_fields(r, zt)?;
    let (offset, dst) = (field(&zfields, "offset")?, field(&zfields, "isDST")?);
    let zb = mem(zp);
    let zones = (0..zn)
        .map(|i| {
            Ok(ZoneInfo {
                offset: r.uint(&zb, i * zsize + offset.offset, 8)? as i64,
                dst: r.uint(&zb, i * zsize + dst.offset, 1)? != 0,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (tt, tsize) = slice_elem(r, txf)?;
    let tfields = struct_fields(r, tt)?;
    let (when, index) = (field(&tfields, "when")?, field(&tfields, "index")?);
    // One read of the whole table.
    let tb = Val {
        ty: 0,
        place: super::show::Place::Bytes(std::rc::Rc::new(r.read(&mem(tp), 0, tn * tsize)?), 0),
    };
    let tx = (0..tn)
        .map(|i| {
            Ok((
                r.uint(&tb, i * tsize + when.offset, 8)? as i64,
                r.uint(&tb, i * tsize + index.offset, 1)? as u8,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let extend = String::from_utf8_lossy(&r.read(&mem(ep), 0, en)?).into_owned();
    Ok(Some(Zones { zones, tx, extend }))
}

/// The offset `loc` gives at `unix`, as `Location.lookup` finds it.
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
    if zones > 0
        && let Some(o) = read_zones(r, &l, &lf)?.and_then(|zs| zs.offset_at(unix))
    {
        return Ok(Zone::Offset(o));
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
    fn tz_rules_that_do_not_parse_give_no_offset() {
        for bad in [
            "",
            "E5",
            "EST",
            "EST5EDT,M3.2.0",
            "EST5EDT,M13.2.0,M11.1.0",
            "EST5EDT,M3.6.0,M11.1.0",
            "EST5EDT,M3.2.0,M11.1.0x",
            "EST5EDT;J400,J1",
            "<EST5",
            "EST169",
        ] {
            assert_eq!(tz_rule_offset(bad, 0), None, "{bad}");
        }
        // Without daylight time the rule is its offset, east of UTC.
        assert_eq!(tz_rule_offset("<+0330>-3:30", 0), Some(3 * 3600 + 1800));
    }

    #[test]
    fn days_from_civil_inverts_civil() {
        for days in [-800_000, -719_468, -1, 0, 59, 11_016, 2_932_896] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
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
