//! Go types from DWARF: what Go's linker writes for each type (`cmd/link/internal/ld/dwarf.go`:
//! base types, pointers, structs, and typedefs marked with `DW_AT_go_kind` for strings, slices,
//! interfaces, maps and channels), read by `.debug_info` offset into [`Type`], and named types
//! found by name or by their runtime descriptor.

use super::dwarf::{Dwarf, MAX_UNIT_ENTRIES, R, UnitInfo, gerr};
use gimli::{AttributeValue, DW_AT_type};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

/// Longest chain of typedefs followed to a type's definition.
const MAX_TYPEDEF_CHAIN: usize = 16;
/// Most struct members read for one type.
pub const MAX_FIELDS: usize = 4096;

/// `DW_AT_go_kind` and friends (Go's linker, `cmd/internal/dwarf`).
const DW_AT_GO_KIND: gimli::DwAt = gimli::DwAt(0x2900);
const DW_AT_GO_KEY: gimli::DwAt = gimli::DwAt(0x2901);
const DW_AT_GO_ELEM: gimli::DwAt = gimli::DwAt(0x2902);
const DW_AT_GO_EMBEDDED: gimli::DwAt = gimli::DwAt(0x2903);
/// The address of the type's runtime descriptor (`*_type`).
const DW_AT_GO_RUNTIME_TYPE: gimli::DwAt = gimli::DwAt(0x2904);

/// Go's kinds (`internal/abi.Kind`) as `DW_AT_go_kind` gives them.
mod go_kind {
    pub const CHAN: u64 = 18;
    pub const FUNC: u64 = 19;
    pub const INTERFACE: u64 = 20;
    pub const MAP: u64 = 21;
    pub const SLICE: u64 = 23;
    pub const STRING: u64 = 24;
}

/// A Go type, as DWARF describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    /// Go's name for it (`main.T`, `[]int`, `*main.T`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// What it is.
    pub kind: Kind,
}

/// The shape of a type; other types are named by their `.debug_info` offset.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Bool,
    Int,
    Uint,
    Float,
    Complex,
    String,
    /// A pointer to the type at the offset.
    Ptr(u64),
    /// `unsafe.Pointer`, or a pointer DWARF gives no target for.
    UnsafePtr,
    Struct(Vec<Field>),
    /// A slice of the type at the offset.
    Slice(u64),
    Array {
        elem: u64,
        len: u64,
    },
    /// An interface: `runtime.eface` (`empty`) or `runtime.iface`.
    Iface {
        empty: bool,
    },
    /// A map: its key and value types, and the pointer type to the runtime's map header.
    Map {
        key: u64,
        val: u64,
        hdr: u64,
    },
    /// A channel of the element type; `hchan` is the runtime's `hchan` struct type, when known.
    Chan {
        elem: u64,
        hchan: Option<u64>,
    },
    Func,
    /// Something goroscope does not decode.
    Other,
}

/// A struct member.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub offset: u64,
    pub ty: u64,
    /// An embedded field.
    pub embedded: bool,
}

/// Named type entries.
#[derive(Default)]
pub struct TypeNames {
    by_name: HashMap<String, u64>,
    by_rtype: HashMap<u64, u64>,
}

/// What a typedef entry says.
struct Typedef {
    name: String,
    go_kind: Option<u64>,
    target: Option<u64>,
    elem: Option<u64>,
    key: Option<u64>,
}

impl Dwarf {
    /// The type at a `.debug_info` offset.
    pub fn ty(&self, off: u64) -> Result<Arc<Type>, String> {
        let cached = |d: &Dwarf| {
            d.types
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&off)
                .cloned()
        };
        if let Some(t) = cached(self) {
            return Ok(t);
        }
        let t = Arc::new(self.read_type(off, 0)?);
        self.types
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(off, t.clone());
        Ok(t)
    }

    fn read_type(&self, off: u64, chain: usize) -> Result<Type, String> {
        if chain > MAX_TYPEDEF_CHAIN {
            return Err(format!("DWARF: typedef chain too long at {off:#x}"));
        }
        let (u, e) = self.entry(off)?;
        let name = self.name_of(u, &e).unwrap_or_default();
        let size = e
            .attr_value(gimli::DW_AT_byte_size)
            .and_then(|v| v.udata_value())
            .unwrap_or(0);
        let go_kind = e.attr_value(DW_AT_GO_KIND).and_then(|v| v.udata_value());
        let target = self.ref_attr(u, &e, DW_AT_type);
        let elem = self.ref_attr(u, &e, DW_AT_GO_ELEM);
        let ty = |kind| Type {
            name: name.clone(),
            size,
            kind,
        };
        Ok(match e.tag() {
            gimli::DW_TAG_typedef => {
                let t = Typedef {
                    name,
                    go_kind,
                    target,
                    elem,
                    key: self.ref_attr(u, &e, DW_AT_GO_KEY),
                };
                self.read_typedef(t, chain)?
            }
            gimli::DW_TAG_base_type => {
                let enc = match e.attr_value(gimli::DW_AT_encoding) {
                    Some(AttributeValue::Encoding(x)) => x,
                    _ => gimli::DwAte(0),
                };
                ty(match enc {
                    gimli::DW_ATE_boolean => Kind::Bool,
                    gimli::DW_ATE_float => Kind::Float,
                    gimli::DW_ATE_complex_float => Kind::Complex,
                    gimli::DW_ATE_signed | gimli::DW_ATE_signed_char => Kind::Int,
                    gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char => Kind::Uint,
                    _ => Kind::Other,
                })
            }
            gimli::DW_TAG_pointer_type => Type {
                size: if size == 0 { 8 } else { size },
                ..ty(match target {
                    Some(t) => Kind::Ptr(t),
                    None => Kind::UnsafePtr,
                })
            },
            gimli::DW_TAG_subroutine_type => Type {
                size: 8,
                ..ty(Kind::Func)
            },
            gimli::DW_TAG_array_type => {
                let len = self.array_len(u, &e)?;
                ty(match target {
                    Some(elem) => Kind::Array { elem, len },
                    None => Kind::Other,
                })
            }
            gimli::DW_TAG_structure_type => {
                let fields = self.fields(u, &e)?;
                let kind = if go_kind == Some(go_kind::STRING) || name == "string" {
                    Kind::String
                } else if go_kind == Some(go_kind::SLICE) || name.starts_with("[]") {
                    let from_array = || {
                        let f = fields.iter().find(|f| f.name == "array")?;
                        match self.ty(f.ty).ok()?.kind {
                            Kind::Ptr(t) => Some(t),
                            _ => None,
                        }
                    };
                    match elem.or_else(from_array) {
                        Some(t) => Kind::Slice(t),
                        None => Kind::Other,
                    }
                } else {
                    Kind::Struct(fields)
                };
                ty(kind)
            }
            _ => ty(Kind::Other),
        })
    }

    /// A typedef: Go's name for the type it refers to, or (by its `DW_AT_go_kind`) an
    /// interface, map, channel or func, whose shape the runtime's structs give.
    fn read_typedef(&self, t: Typedef, chain: usize) -> Result<Type, String> {
        let Typedef {
            name,
            go_kind,
            target,
            elem,
            key,
        } = t;
        let ty = |name, size, kind| Type { name, size, kind };
        Ok(match (go_kind, target) {
            (Some(go_kind::INTERFACE), Some(t)) => {
                let inner = self.read_type(t, chain + 1)?;
                let empty = match &inner.kind {
                    Kind::Struct(f) => f.iter().any(|f| f.name == "_type"),
                    _ => false,
                };
                ty(name, 16, Kind::Iface { empty })
            }
            (Some(go_kind::MAP), _) => ty(
                name,
                8,
                match (key, elem, target) {
                    (Some(key), Some(val), Some(hdr)) => Kind::Map { key, val, hdr },
                    _ => Kind::Other,
                },
            ),
            (Some(go_kind::CHAN), _) => {
                let hchan = target.and_then(|t| match self.ty(t).ok()?.kind {
                    Kind::Ptr(h) => Some(h),
                    _ => None,
                });
                let kind = match elem {
                    Some(elem) => Kind::Chan { elem, hchan },
                    None => Kind::Other,
                };
                ty(name, 8, kind)
            }
            (Some(go_kind::FUNC), _) => ty(name, 8, Kind::Func),
            (_, Some(t)) => {
                let mut inner = self.read_type(t, chain + 1)?;
                if !name.is_empty() {
                    inner.name = name;
                }
                inner
            }
            (_, None) => ty(name, 0, Kind::Other),
        })
    }

    fn array_len(
        &self,
        u: &UnitInfo,
        e: &gimli::DebuggingInformationEntry<R>,
    ) -> Result<u64, String> {
        let mut tree = u.unit.entries_tree(Some(e.offset())).map_err(gerr)?;
        let root = tree.root().map_err(gerr)?;
        let mut ch = root.children();
        while let Some(c) = ch.next().map_err(gerr)? {
            let c = c.entry();
            if c.tag() == gimli::DW_TAG_subrange_type {
                if let Some(n) = c
                    .attr_value(gimli::DW_AT_count)
                    .and_then(|v| v.udata_value())
                {
                    return Ok(n);
                }
                if let Some(n) = c
                    .attr_value(gimli::DW_AT_upper_bound)
                    .and_then(|v| v.udata_value())
                {
                    return Ok(n.saturating_add(1));
                }
            }
        }
        Ok(0)
    }

    fn fields(
        &self,
        u: &UnitInfo,
        e: &gimli::DebuggingInformationEntry<R>,
    ) -> Result<Vec<Field>, String> {
        let mut tree = u.unit.entries_tree(Some(e.offset())).map_err(gerr)?;
        let root = tree.root().map_err(gerr)?;
        let mut ch = root.children();
        let mut out = Vec::new();
        while let Some(c) = ch.next().map_err(gerr)? {
            let c = c.entry();
            if c.tag() != gimli::DW_TAG_member {
                continue;
            }
            if out.len() >= MAX_FIELDS {
                return Err(format!(
                    "DWARF: a struct with more than {MAX_FIELDS} fields"
                ));
            }
            let Some(ty) = self.ref_attr(u, c, DW_AT_type) else {
                continue;
            };
            out.push(Field {
                name: self.name_of(u, c).unwrap_or_default(),
                offset: c
                    .attr_value(gimli::DW_AT_data_member_location)
                    .and_then(|v| v.udata_value())
                    .unwrap_or(0),
                ty,
                embedded: c
                    .attr_value(DW_AT_GO_EMBEDDED)
                    .and_then(|v| v.udata_value())
                    .is_some_and(|v| v != 0)
                    || matches!(
                        c.attr_value(DW_AT_GO_EMBEDDED),
                        Some(AttributeValue::Flag(true))
                    ),
            });
        }
        Ok(out)
    }

    /// Named types by name and runtime descriptor address, read once from the units' top
    /// level.
    pub fn type_names(&self) -> Result<Arc<TypeNames>, String> {
        if let Some(n) = self
            .names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(n.clone());
        }
        let mut names = TypeNames::default();
        for u in &self.units {
            let mut tree = u.unit.entries_tree(None).map_err(gerr)?;
            let root = tree.root().map_err(gerr)?;
            let mut ch = root.children();
            let mut seen = 0usize;
            while let Some(c) = ch.next().map_err(gerr)? {
                seen += 1;
                if seen > MAX_UNIT_ENTRIES {
                    break;
                }
                let e = c.entry();
                if e.tag() == gimli::DW_TAG_subprogram || e.tag() == gimli::DW_TAG_variable {
                    continue;
                }
                let Some(off) = e
                    .offset()
                    .to_debug_info_offset(&u.unit.header)
                    .map(|o| o.0 as u64)
                else {
                    continue;
                };
                if let Some(AttributeValue::Addr(a) | AttributeValue::Udata(a)) =
                    e.attr_value(DW_AT_GO_RUNTIME_TYPE)
                {
                    names.by_rtype.entry(a).or_insert(off);
                }
                if let Some(n) = self.name_of(u, e) {
                    // The typedef comes before the struct it names; the first entry wins.
                    names.by_name.entry(n).or_insert(off);
                }
            }
        }
        let n = Arc::new(names);
        *self.names.lock().unwrap_or_else(PoisonError::into_inner) = Some(n.clone());
        Ok(n)
    }
}

impl TypeNames {
    /// The type entry named `name`.
    pub fn by_name(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).copied()
    }
    /// The type entry whose runtime descriptor is at `addr` (in the binary's numbering).
    pub fn by_rtype(&self, addr: u64) -> Option<u64> {
        self.by_rtype.get(&addr).copied()
    }
}
