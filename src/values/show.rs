//! Values read from memory and written as delve writes them: `main.T {A: 1, B: "x"}`,
//! `[]int len: 3, cap: 4, [1,2,3]`, `*main.T {...}`, `interface {}(main.T) {...}`,
//! `chan int 2/4` (`chan int 1/2 (closed)`, `chan int 0/0 (2 receivers waiting)`),
//! `map[string]int ["a": 1, ]`; `time.Duration`, `time.Time` and the `sync` types decoded.
//!
//! Every read goes through [`Reader::read`], which counts against [`MAX_READS`]; every loop
//! over elements is bounded by the configured limits.

use super::dwarf::Dwarf;
use super::types::{Field, Kind, Type};
use crate::render::safe::go_quote;
use crate::target::MemoryReader;
use std::cell::Cell;
use std::fmt::Write as _;
use std::rc::Rc;

/// delve's default `MaxStringLen`: bytes of a string read and shown.
pub const DEFAULT_MAX_STRING_LEN: usize = 64;
/// delve's default `MaxArrayValues`: elements of an array, slice or map shown.
pub const DEFAULT_MAX_ARRAY_VALUES: usize = 64;
/// delve's default `MaxVariableRecurse`: nesting levels of structs and elements loaded.
pub const DEFAULT_MAX_RECURSE: usize = 1;
/// Largest `config max-string-len` / `max-array-values` accepted.
pub const MAX_CONFIG_LIMIT: usize = 1 << 20;
/// Most memory reads for one printed value.
pub const MAX_READS: usize = 100_000;
/// Longest text of one printed value; the rest is cut with `...`.
pub const MAX_VALUE_TEXT: usize = 1 << 20;
/// Largest single read (a string's shown bytes, an element).
pub const MAX_READ: u64 = 1 << 20;
/// Most bytes read for one printed value, all reads together.
pub const MAX_READ_BYTES: u64 = 64 << 20;
/// Most goroutines counted in one of a channel's wait queues.
pub const MAX_CHAN_WAITERS: u64 = 10_000;

/// A channel's state, as [`Reader::chan_state`] reads it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChanState {
    /// Queued elements.
    pub len: u64,
    /// Capacity.
    pub cap: u64,
    /// Closed (when DWARF gives the field).
    pub closed: Option<bool>,
    /// Goroutines waiting to receive (when DWARF gives the queue's types).
    pub receivers: Option<u64>,
    /// Goroutines waiting to send.
    pub senders: Option<u64>,
}

/// The limits of what is read and shown (the session's `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub max_string_len: usize,
    pub max_array_values: usize,
    pub max_recurse: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_string_len: DEFAULT_MAX_STRING_LEN,
            max_array_values: DEFAULT_MAX_ARRAY_VALUES,
            max_recurse: DEFAULT_MAX_RECURSE,
        }
    }
}

/// Where a value's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In the target's memory.
    Mem(u64),
    /// Already in hand (a register, pieces, a constant): the bytes from `.1` on.
    Bytes(Rc<Vec<u8>>, usize),
}

/// A typed value somewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Val {
    /// Its type's `.debug_info` offset.
    pub ty: u64,
    pub place: Place,
}

/// What a value is read with.
pub struct Reader<'a> {
    pub dw: &'a Dwarf,
    pub mem: &'a dyn MemoryReader,
    pub cfg: Config,
    /// Load bias (runtime type addresses in memory are the target's).
    pub bias: u64,
    /// `runtime.types` in the executable's numbering.
    pub types: Option<u64>,
    /// A function's name from its entry pc, for func values.
    pub func_name: &'a dyn Fn(u64) -> Option<String>,
    reads: Cell<usize>,
    read_bytes: Cell<u64>,
}

/// How a value is written (delve's pretty-print flags).
#[derive(Debug, Clone, Copy)]
struct Flags {
    with_type: bool,
}

impl<'a> Reader<'a> {
    pub fn new(
        dw: &'a Dwarf,
        mem: &'a dyn MemoryReader,
        cfg: Config,
        bias: u64,
        types: Option<u64>,
        func_name: &'a dyn Fn(u64) -> Option<String>,
    ) -> Reader<'a> {
        Reader {
            dw,
            mem,
            cfg,
            bias,
            types,
            func_name,
            reads: Cell::new(0),
            read_bytes: Cell::new(0),
        }
    }

    /// `len` bytes at `off` into the value.
    pub fn read(&self, v: &Val, off: u64, len: u64) -> Result<Vec<u8>, String> {
        if len > MAX_READ {
            return Err(format!("a read of {len} bytes"));
        }
        match &v.place {
            Place::Mem(a) => {
                let n = self.reads.get() + 1;
                let total = self.read_bytes.get().saturating_add(len);
                if n > MAX_READS || total > MAX_READ_BYTES {
                    return Err("too much memory read for one value".into());
                }
                self.reads.set(n);
                self.read_bytes.set(total);
                let mut b = vec![0u8; len as usize];
                let addr = a.checked_add(off).ok_or("address overflow")?;
                self.mem
                    .read_at(addr, &mut b)
                    .map_err(|e| format!("could not read {len:#x} bytes at {addr:#x}: {e}"))?;
                Ok(b)
            }
            Place::Bytes(b, start) => {
                let s = start.saturating_add(off as usize);
                b.get(s..s.saturating_add(len as usize))
                    .map(|x| x.to_vec())
                    .ok_or_else(|| "value smaller than its type".to_string())
            }
        }
    }

    /// An unsigned word of `size` bytes at `off`.
    pub fn uint(&self, v: &Val, off: u64, size: u64) -> Result<u64, String> {
        let b = self.read(v, off, size.min(8))?;
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(&b);
        Ok(u64::from_le_bytes(w))
    }

    /// The value at `off` into `v`, of type `ty`.
    pub fn at(&self, v: &Val, off: u64, ty: u64) -> Val {
        let place = match &v.place {
            Place::Mem(a) => Place::Mem(a.wrapping_add(off)),
            Place::Bytes(b, s) => Place::Bytes(b.clone(), s.saturating_add(off as usize)),
        };
        Val { ty, place }
    }

    pub fn ty(&self, v: &Val) -> Result<std::sync::Arc<Type>, String> {
        self.dw.ty(v.ty)
    }

    /// The value's text at the top level (`print x`, `x = ...`).
    pub fn show(&self, v: &Val) -> String {
        let mut s = String::new();
        self.write(v, Flags { with_type: true }, 0, &mut s);
        s
    }

    /// A value without its type (an element, a map key or value) at nesting `level`.
    pub fn write_plain(&self, v: &Val, level: usize, out: &mut String) {
        self.write(v, Flags { with_type: false }, level, out);
    }

    fn write(&self, v: &Val, fl: Flags, level: usize, out: &mut String) {
        if out.len() > MAX_VALUE_TEXT {
            return;
        }
        let t = match self.ty(v) {
            Ok(t) => t,
            Err(e) => {
                let _ = write!(out, "(unreadable: {e})");
                return;
            }
        };
        if let Err(e) = self.write_kind(v, &t, fl, level, out) {
            let _ = write!(out, "(unreadable: {e})");
        }
    }

    fn write_kind(
        &self,
        v: &Val,
        t: &Type,
        fl: Flags,
        level: usize,
        out: &mut String,
    ) -> Result<(), String> {
        let name = &t.name;
        let typed = |out: &mut String| {
            if fl.with_type {
                out.push_str(name);
                out.push(' ');
            }
        };
        let nil = |out: &mut String| {
            typed(out);
            out.push_str("nil");
        };
        match &t.kind {
            Kind::Int if name == "time.Duration" => {
                let d = self.uint(v, 0, 8)? as i64;
                out.push_str(&super::gotime::duration_text(d));
            }
            Kind::Bool
            | Kind::Int
            | Kind::Uint
            | Kind::Float
            | Kind::Complex
            | Kind::String
            | Kind::UnsafePtr
            | Kind::Func => out.push_str(&self.scalar(v, t)?),
            Kind::Ptr(to) => {
                let p = self.uint(v, 0, 8)?;
                if p == 0 {
                    nil(out);
                } else if level > self.cfg.max_recurse + 1 {
                    let _ = write!(out, "({name})({p:#x})");
                } else {
                    out.push('*');
                    let child = Val {
                        ty: *to,
                        place: Place::Mem(p),
                    };
                    self.write(&child, fl, level, out);
                }
            }
            Kind::Struct(fields) if name == "time.Time" => {
                super::gotime::write_time(self, v, fields, out)?;
            }
            Kind::Struct(fields) if super::sync::is_lock(name) => {
                typed(out);
                super::sync::write_lock(self, v, name, fields, out)?;
            }
            Kind::Struct(fields) => self.write_struct(v, t, fields, fl, level, out)?,
            Kind::Slice(elem) => {
                let (base, len, cap) = (
                    self.uint(v, 0, 8)?,
                    self.uint(v, 8, 8)?,
                    self.uint(v, 16, 8)?,
                );
                if fl.with_type {
                    let _ = write!(out, "{name} len: {len}, cap: {cap}, ");
                }
                if base == 0 {
                    out.push_str("nil");
                } else {
                    let arr = Val {
                        ty: *elem,
                        place: Place::Mem(base),
                    };
                    self.write_elems(&arr, *elem, len, level, out)?;
                }
            }
            Kind::Array { elem, len } => {
                typed(out);
                self.write_elems(&self.at(v, 0, *elem), *elem, *len, level, out)?;
            }
            Kind::Iface { .. } => self.write_iface(v, t, fl, level, out)?,
            Kind::Chan { hchan, .. } => {
                let p = self.uint(v, 0, 8)?;
                if p == 0 {
                    nil(out);
                } else {
                    let c = self.chan_state(p, *hchan)?;
                    let _ = write!(out, "{name} {}/{}", c.len, c.cap);
                    if c.closed == Some(true) {
                        out.push_str(" (closed)");
                    }
                    for (n, one, many) in [
                        (c.receivers, "receiver", "receivers"),
                        (c.senders, "sender", "senders"),
                    ] {
                        match n.unwrap_or(0) {
                            0 => {}
                            1 => {
                                let _ = write!(out, " (1 {one} waiting)");
                            }
                            MAX_CHAN_WAITERS.. => {
                                let _ = write!(out, " ({MAX_CHAN_WAITERS}+ {many} waiting)");
                            }
                            n => {
                                let _ = write!(out, " ({n} {many} waiting)");
                            }
                        }
                    }
                }
            }
            Kind::Map { .. } => {
                let p = self.uint(v, 0, 8)?;
                typed(out);
                if p == 0 {
                    out.push_str("nil");
                } else {
                    super::maps::write_map(self, v, t, level, out)?;
                }
            }
            Kind::Other => {
                let _ = write!(out, "({name}: a type goroscope does not decode)");
            }
        }
        Ok(())
    }

    /// A boolean, number, string, `unsafe.Pointer` or func (its function's name).
    fn scalar(&self, v: &Val, t: &Type) -> Result<String, String> {
        Ok(match &t.kind {
            Kind::Bool => if self.uint(v, 0, 1)? != 0 {
                "true"
            } else {
                "false"
            }
            .to_string(),
            Kind::Int => {
                let size = t.size.clamp(1, 8);
                let u = self.uint(v, 0, size)?;
                let shift = 64 - 8 * size;
                (((u << shift) as i64) >> shift).to_string()
            }
            Kind::Uint => self.uint(v, 0, t.size.clamp(1, 8))?.to_string(),
            Kind::Float => self.float(v, 0, t.size)?,
            Kind::Complex => {
                let h = t.size / 2;
                let (re, im) = (self.float(v, 0, h)?, self.float(v, h, h)?);
                format!("({re} + {im}i)")
            }
            Kind::String => self.string(v)?,
            Kind::UnsafePtr => match self.uint(v, 0, 8)? {
                0 => "unsafe.Pointer(nil)".to_string(),
                p => format!("unsafe.Pointer({p:#x})"),
            },
            Kind::Func => match self.uint(v, 0, 8)? {
                0 => "nil".to_string(),
                p => {
                    let fv = Val {
                        ty: v.ty,
                        place: Place::Mem(p),
                    };
                    let pc = self.uint(&fv, 0, 8)?;
                    (self.func_name)(pc).unwrap_or_else(|| format!("{}({pc:#x})", t.name))
                }
            },
            _ => return Err(format!("{} is not a scalar", t.name)),
        })
    }

    fn write_struct(
        &self,
        v: &Val,
        t: &Type,
        fields: &[Field],
        fl: Flags,
        level: usize,
        out: &mut String,
    ) -> Result<(), String> {
        if level > self.cfg.max_recurse && !fields.is_empty() {
            match v.place {
                Place::Mem(a) => {
                    let _ = write!(out, "(*{})({a:#x})", t.name);
                }
                Place::Bytes(..) => {
                    let _ = write!(out, "{} {{...}}", t.name);
                }
            }
            return Ok(());
        }
        if fl.with_type {
            out.push_str(&t.name);
            out.push(' ');
        }
        out.push('{');
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}: ", f.name);
            let fv = self.at(v, f.offset, f.ty);
            self.write(&fv, Flags { with_type: true }, level + 1, out);
            if out.len() > MAX_VALUE_TEXT {
                break;
            }
        }
        out.push('}');
        Ok(())
    }

    /// `[e0,e1,...]` for `len` elements of type `elem` from `first` on.
    fn write_elems(
        &self,
        first: &Val,
        elem: u64,
        len: u64,
        level: usize,
        out: &mut String,
    ) -> Result<(), String> {
        out.push('[');
        if level > self.cfg.max_recurse && len > 0 {
            out.push_str("...]");
            return Ok(());
        }
        let size = self.dw.ty(elem)?.size;
        let shown = len.min(self.cfg.max_array_values as u64);
        for i in 0..shown {
            if i > 0 {
                out.push(',');
            }
            let e = self.at(first, i.saturating_mul(size), elem);
            self.write(&e, Flags { with_type: false }, level + 1, out);
            if out.len() > MAX_VALUE_TEXT {
                break;
            }
        }
        if shown < len {
            if shown > 0 {
                out.push(',');
            }
            let _ = write!(out, "...+{} more", len - shown);
        }
        out.push(']');
        Ok(())
    }

    fn write_iface(
        &self,
        v: &Val,
        t: &Type,
        fl: Flags,
        level: usize,
        out: &mut String,
    ) -> Result<(), String> {
        match self.dynamic(v)? {
            None => {
                if fl.with_type {
                    let _ = write!(out, "{} ", t.name);
                }
                out.push_str("nil");
            }
            Some(d) => {
                let dt = self.dw.ty(d.ty)?;
                if fl.with_type {
                    let _ = write!(out, "{}({}) ", t.name, dt.name);
                }
                self.write(
                    &d,
                    Flags {
                        with_type: !fl.with_type,
                    },
                    level,
                    out,
                );
            }
        }
        Ok(())
    }

    /// The dynamic value of an interface: `None` for nil.
    pub fn dynamic(&self, v: &Val) -> Result<Option<Val>, String> {
        let t = self.ty(v)?;
        let Kind::Iface { empty } = t.kind else {
            return Err(format!("{} is not an interface", t.name));
        };
        let (w0, data) = (self.uint(v, 0, 8)?, self.uint(v, 8, 8)?);
        if w0 == 0 {
            return Ok(None);
        }
        // iface: the itab's second word is the dynamic type.
        let rtype = if empty {
            w0
        } else {
            self.uint(
                &Val {
                    ty: v.ty,
                    place: Place::Mem(w0),
                },
                8,
                8,
            )?
        };
        let names = self.dw.type_names()?;
        // DWARF gives the descriptor as an offset from runtime.types.
        let exe = rtype.wrapping_sub(self.bias);
        let dty = self
            .types
            .and_then(|base| names.by_rtype(exe.wrapping_sub(base)))
            .or_else(|| names.by_rtype(exe))
            .ok_or_else(|| format!("no DWARF type for the runtime type at {rtype:#x}"))?;
        let place = if self.pointer_shaped(dty, 0)? {
            Place::Bytes(Rc::new(data.to_le_bytes().to_vec()), 0)
        } else {
            Place::Mem(data)
        };
        Ok(Some(Val { ty: dty, place }))
    }

    /// The compiler's `isdirectiface`: a type stored in an interface's data word itself.
    fn pointer_shaped(&self, ty: u64, depth: usize) -> Result<bool, String> {
        if depth > 16 {
            return Ok(false);
        }
        let t = self.dw.ty(ty)?;
        Ok(match &t.kind {
            Kind::Ptr(_) | Kind::UnsafePtr | Kind::Chan { .. } | Kind::Map { .. } | Kind::Func => {
                true
            }
            Kind::Array { elem, len: 1 } => self.pointer_shaped(*elem, depth + 1)?,
            Kind::Struct(f) if f.len() == 1 => self.pointer_shaped(f[0].ty, depth + 1)?,
            _ => false,
        })
    }

    /// A channel's state from its `hchan`: queued elements and capacity, and, when DWARF
    /// gives the `hchan` struct, whether it is closed and the goroutines queued to receive
    /// and to send.
    pub fn chan_state(&self, hchan: u64, ty: Option<u64>) -> Result<ChanState, String> {
        let h = Val {
            ty: 0,
            place: Place::Mem(hchan),
        };
        let Some(f) = ty
            .map(|t| self.dw.ty(t))
            .transpose()?
            .and_then(|t| match &t.kind {
                Kind::Struct(f) => Some(f.clone()),
                _ => None,
            })
        else {
            return Ok(ChanState {
                len: self.uint(&h, 0, 8)?,
                cap: self.uint(&h, 8, 8)?,
                ..ChanState::default()
            });
        };
        let off = |n: &str| f.iter().find(|x| x.name == n).map(|x| x.offset);
        let closed = match off("closed") {
            Some(o) => Some(self.uint(&h, o, 4)? != 0),
            None => None,
        };
        Ok(ChanState {
            len: self.uint(&h, off("qcount").unwrap_or(0), 8)?,
            cap: self.uint(&h, off("dataqsiz").unwrap_or(8), 8)?,
            closed,
            receivers: self.queued(&h, &f, "recvq")?,
            senders: self.queued(&h, &f, "sendq")?,
        })
    }

    /// The goroutines queued on a channel's `recvq` or `sendq` (`q`, a `waitq` among the
    /// `hchan` fields `f`): its sudogs, `first` then each `next`, at most
    /// [`MAX_CHAN_WAITERS`]; `None` when DWARF does not give the queue's types.
    fn queued(&self, h: &Val, f: &[Field], q: &str) -> Result<Option<u64>, String> {
        let member = |fields: &[Field], n: &str| fields.iter().find(|x| x.name == n).cloned();
        let struct_fields = |ty: u64| -> Result<Option<Vec<Field>>, String> {
            Ok(match &self.dw.ty(ty)?.kind {
                Kind::Struct(f) => Some(f.clone()),
                _ => None,
            })
        };
        let Some(waitq) = member(f, q) else {
            return Ok(None);
        };
        let Some(first) = struct_fields(waitq.ty)?.and_then(|w| member(&w, "first")) else {
            return Ok(None);
        };
        let Kind::Ptr(sudog) = self.dw.ty(first.ty)?.kind else {
            return Ok(None);
        };
        let Some(next) = struct_fields(sudog)?.and_then(|s| member(&s, "next")) else {
            return Ok(None);
        };
        let mut p = self.uint(h, waitq.offset + first.offset, 8)?;
        let mut n = 0;
        while p != 0 && n < MAX_CHAN_WAITERS {
            n += 1;
            let sg = Val {
                ty: 0,
                place: Place::Mem(p),
            };
            p = self.uint(&sg, next.offset, 8)?;
        }
        Ok(Some(n))
    }

    fn float(&self, v: &Val, off: u64, size: u64) -> Result<String, String> {
        let u = self.uint(v, off, size.clamp(4, 8))?;
        Ok(if size == 4 {
            go_float(f64::from(f32::from_bits(u as u32)), true)
        } else {
            go_float(f64::from_bits(u), false)
        })
    }

    /// A string's shown bytes, quoted, `...+N more` inside the quotes as delve writes it.
    fn string(&self, v: &Val) -> Result<String, String> {
        let (ptr, len) = (self.uint(v, 0, 8)?, self.uint(v, 8, 8)?);
        let shown = len.min(self.cfg.max_string_len as u64);
        let mut b = if shown == 0 {
            Vec::new()
        } else {
            self.read(
                &Val {
                    ty: v.ty,
                    place: Place::Mem(ptr),
                },
                0,
                shown,
            )?
        };
        if shown < len {
            b.extend_from_slice(format!("...+{} more", len - shown).as_bytes());
        }
        Ok(go_quote(&b[..]))
    }
}

/// delve's float text, Go's `strconv.FormatFloat(f, 'f', -1, bits)`: the shortest digits
/// that read back as the same value, never in exponent form.
pub fn go_float(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let e = if single {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if mant.starts_with('-') { "-" } else { "" };
    let nd = digits.len() as i32;
    let point = exp + 1;
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= nd {
        format!("{sign}{digits}{}", "0".repeat((point - nd) as usize))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{sign}{a}.{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::go_float;

    #[test]
    fn floats_as_go_formats_them() {
        assert_eq!(go_float(2.5, false), "2.5");
        assert_eq!(go_float(-3.0, false), "-3");
        assert_eq!(go_float(1e21, false), "1000000000000000000000");
        assert_eq!(go_float(0.0001, false), "0.0001");
        assert_eq!(go_float(0.00001, false), "0.00001");
        assert_eq!(go_float(-1.25e-7, false), "-0.000000125");
        assert_eq!(go_float(0.1, true), "0.1");
        assert_eq!(go_float(f64::NAN, false), "NaN");
        assert_eq!(go_float(f64::NEG_INFINITY, false), "-Inf");
        assert_eq!(go_float(0.0, false), "0");
    }
}
