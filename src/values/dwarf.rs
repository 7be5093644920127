//! The binary's DWARF for values: which variables a function's scope holds at a pc, where
//! each lives, and Go types by `.debug_info` offset.
//!
//! Every section is decompressed whole once (bounded by [`MAX_DWARF_SECTION`]); compile units
//! are indexed by their pc ranges, and a unit's entries are read only when a pc falls in it.

use crate::binary::GoBinary;
use crate::binary::dwarf::{MAX_DWARF_SECTION, MAX_DWARF_UNITS, small_section};
use gimli::{AttributeValue, DW_AT_location, DW_AT_name, DW_AT_type, LittleEndian, Reader as _};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The reader every DWARF section is read through: owned, shared bytes.
pub type R = gimli::EndianArcSlice<LittleEndian>;

/// Deepest nesting of lexical blocks and inlined calls followed inside one function.
pub const MAX_SCOPE_DEPTH: usize = 64;
/// Most variables collected for one scope.
pub const MAX_SCOPE_VARS: usize = 4096;
/// Most entries read while looking for the function holding a pc, in one unit.
pub const MAX_UNIT_ENTRIES: usize = 1 << 22;
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

/// Where a variable is, at the pc asked about.
#[derive(Debug, Clone)]
pub enum Where {
    /// A DWARF location expression.
    Expr(gimli::Expression<R>),
    /// Not live at the pc (no location list entry covers it, or no location at all).
    Nowhere,
}

/// A formal parameter or local variable live in a scope.
#[derive(Debug, Clone)]
pub struct Var {
    /// Its name (an escaped variable's `&x` is named `x`, with `escaped` set).
    pub name: String,
    /// Its type's offset.
    pub ty: u64,
    /// A formal parameter (or result).
    pub param: bool,
    /// The location holds the variable's address (`&x`: the compiler moved it to the heap).
    pub escaped: bool,
    /// Where it is.
    pub at: Where,
}

/// The variables of one function (or inlined call) at a pc.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The function's name as DWARF gives it.
    pub function: String,
    /// Its variables, parameters first, in DWARF's order.
    pub vars: Vec<Var>,
    /// The unit's encoding, to evaluate location expressions.
    pub encoding: gimli::Encoding,
}

/// One compile unit.
struct UnitInfo {
    /// Its `.debug_info` offset and end.
    off: u64,
    end: u64,
    unit: gimli::Unit<R>,
    /// Its pc ranges.
    ranges: Vec<gimli::Range>,
}

/// The binary's DWARF, indexed for values.
pub struct Dwarf {
    d: gimli::Dwarf<R>,
    /// By offset.
    units: Vec<UnitInfo>,
    types: Mutex<HashMap<u64, Arc<Type>>>,
    /// Type entries by name and by runtime type descriptor address, built on first use.
    names: Mutex<Option<Arc<TypeNames>>>,
}

/// Named type entries.
#[derive(Default)]
pub struct TypeNames {
    by_name: HashMap<String, u64>,
    by_rtype: HashMap<u64, u64>,
}

fn gerr(e: gimli::Error) -> String {
    format!("DWARF: {e}")
}

impl Dwarf {
    /// Reads the binary's DWARF; an error when it has none.
    pub fn load(bin: &GoBinary) -> Result<Dwarf, String> {
        use object::Object;
        let elf = bin.elf();
        if elf.section_by_name(".debug_info").is_none() {
            return Err("the binary has no DWARF (it was built with -ldflags=-w or stripped): values need DWARF".into());
        }
        let d = gimli::Dwarf::load(|id| -> Result<R, String> {
            let bytes = small_section(&elf, id.name()).map_err(|e| e.to_string())?;
            let v: Arc<[u8]> = Arc::from(&bytes[..]);
            Ok(gimli::EndianArcSlice::new(v, LittleEndian))
        })?;
        let _ = MAX_DWARF_SECTION;
        let mut units = Vec::new();
        let mut it = d.units();
        while let Some(h) = it.next().map_err(gerr)? {
            if units.len() >= MAX_DWARF_UNITS {
                return Err(format!("DWARF has more than {MAX_DWARF_UNITS} units"));
            }
            let off = h.offset().0 as u64;
            let end = off + h.length_including_self() as u64;
            let unit = d.unit(h).map_err(gerr)?;
            let mut ranges = Vec::new();
            if let Ok(mut rs) = d.unit_ranges(&unit) {
                while let Ok(Some(r)) = rs.next() {
                    if ranges.len() >= MAX_UNIT_ENTRIES {
                        break;
                    }
                    ranges.push(r);
                }
            }
            units.push(UnitInfo {
                off,
                end,
                unit,
                ranges,
            });
        }
        Ok(Dwarf {
            d,
            units,
            types: Mutex::new(HashMap::new()),
            names: Mutex::new(None),
        })
    }

    /// The unit holding the `.debug_info` offset.
    fn unit_at(&self, off: u64) -> Option<&UnitInfo> {
        let i = self.units.partition_point(|u| u.end <= off);
        self.units.get(i).filter(|u| u.off <= off)
    }

    /// The entry at a `.debug_info` offset, with its unit.
    fn entry(&self, off: u64) -> Result<(&UnitInfo, gimli::DebuggingInformationEntry<R>), String> {
        let u = self
            .unit_at(off)
            .ok_or_else(|| format!("DWARF: no unit holds offset {off:#x}"))?;
        let uo = gimli::DebugInfoOffset(off as usize)
            .to_unit_offset(&u.unit.header)
            .ok_or_else(|| format!("DWARF: bad offset {off:#x}"))?;
        let e = u.unit.entry(uo).map_err(gerr)?;
        Ok((u, e))
    }

    /// The variables of the function holding `pc` (in DWARF's numbering), at inline depth
    /// `depth`: 0 is the function itself, 1 the outermost call inlined into it at `pc`, and
    /// so on. `None` when no function holds the pc.
    pub fn scope(&self, pc: u64, depth: usize) -> Result<Option<Scope>, String> {
        for u in self.units.iter().filter(|u| in_ranges(&u.ranges, pc)) {
            let mut tree = u.unit.entries_tree(None).map_err(gerr)?;
            let root = tree.root().map_err(gerr)?;
            let mut children = root.children();
            let mut seen = 0usize;
            while let Some(child) = children.next().map_err(gerr)? {
                seen += 1;
                if seen > MAX_UNIT_ENTRIES {
                    return Err("DWARF: too many entries in one unit".into());
                }
                let e = child.entry();
                if e.tag() != gimli::DW_TAG_subprogram || !self.die_has_pc(u, e, pc) {
                    continue;
                }
                let function = self.name_of(u, e).unwrap_or_default();
                let mut walk = Walk {
                    dw: self,
                    u,
                    pc,
                    target: depth,
                    vars: Vec::new(),
                    function: function.clone(),
                    found: depth == 0,
                    origin: None,
                };
                walk.node(child, 0, 0)?;
                if !walk.found {
                    return Ok(None);
                }
                if let Some(o) = walk.origin {
                    self.add_abstract(o, &mut walk.vars)?;
                }
                return Ok(Some(Scope {
                    function: walk.function,
                    vars: walk.vars,
                    encoding: u.unit.encoding(),
                }));
            }
        }
        Ok(None)
    }

    /// The variables an inlined function declares that its inlined call has no entry for
    /// (the compiler kept them nowhere): not live.
    fn add_abstract(&self, origin: u64, vars: &mut Vec<Var>) -> Result<(), String> {
        let (u, e) = self.entry(origin)?;
        let mut tree = u.unit.entries_tree(Some(e.offset())).map_err(gerr)?;
        let root = tree.root().map_err(gerr)?;
        let mut ch = root.children();
        while let Some(c) = ch.next().map_err(gerr)? {
            let c = c.entry();
            let param = c.tag() == gimli::DW_TAG_formal_parameter;
            if (!param && c.tag() != gimli::DW_TAG_variable) || vars.len() >= MAX_SCOPE_VARS {
                continue;
            }
            let (Some(name), Some(ty)) = (self.name_of(u, c), self.ref_attr(u, c, DW_AT_type))
            else {
                continue;
            };
            if name.starts_with('~') || name.contains('.') || vars.iter().any(|v| v.name == name) {
                continue;
            }
            vars.push(Var {
                name,
                ty,
                param,
                escaped: false,
                at: Where::Nowhere,
            });
        }
        Ok(())
    }

    fn die_has_pc(&self, u: &UnitInfo, e: &gimli::DebuggingInformationEntry<R>, pc: u64) -> bool {
        let Ok(mut rs) = self.d.die_ranges(&u.unit, e) else {
            return false;
        };
        let mut n = 0;
        while let Ok(Some(r)) = rs.next() {
            n += 1;
            if n > MAX_UNIT_ENTRIES {
                break;
            }
            if r.begin <= pc && pc < r.end {
                return true;
            }
        }
        false
    }

    /// `DW_AT_name`, or the name of its `DW_AT_abstract_origin`.
    fn name_of(&self, u: &UnitInfo, e: &gimli::DebuggingInformationEntry<R>) -> Option<String> {
        if let Some(v) = e.attr_value(DW_AT_name) {
            let s = self.d.attr_string(&u.unit, v).ok()?;
            return Some(s.to_string_lossy().ok()?.into_owned());
        }
        let origin = self.ref_attr(u, e, gimli::DW_AT_abstract_origin)?;
        let (ou, oe) = self.entry(origin).ok()?;
        let v = oe.attr_value(DW_AT_name)?;
        let s = self.d.attr_string(&ou.unit, v).ok()?;
        Some(s.to_string_lossy().ok()?.into_owned())
    }

    /// A reference attribute as a `.debug_info` offset.
    fn ref_attr(
        &self,
        u: &UnitInfo,
        e: &gimli::DebuggingInformationEntry<R>,
        at: gimli::DwAt,
    ) -> Option<u64> {
        match e.attr_value(at)? {
            AttributeValue::UnitRef(r) => {
                r.to_debug_info_offset(&u.unit.header).map(|o| o.0 as u64)
            }
            AttributeValue::DebugInfoRef(r) => Some(r.0 as u64),
            _ => None,
        }
    }

    /// The type of a variable entry: its own, or its abstract origin's.
    fn var_type(&self, u: &UnitInfo, e: &gimli::DebuggingInformationEntry<R>) -> Option<u64> {
        if let Some(t) = self.ref_attr(u, e, DW_AT_type) {
            return Some(t);
        }
        let origin = self.ref_attr(u, e, gimli::DW_AT_abstract_origin)?;
        let (ou, oe) = self.entry(origin).ok()?;
        self.ref_attr(ou, &oe, DW_AT_type)
    }

    /// Where the variable entry is at `pc`.
    fn location(
        &self,
        u: &UnitInfo,
        e: &gimli::DebuggingInformationEntry<R>,
        pc: u64,
    ) -> Result<Where, String> {
        let Some(v) = e.attr_value(DW_AT_location) else {
            return Ok(Where::Nowhere);
        };
        if let AttributeValue::Exprloc(x) = v {
            return Ok(Where::Expr(x));
        }
        let Some(mut list) = self.d.attr_locations(&u.unit, v).map_err(gerr)? else {
            return Ok(Where::Nowhere);
        };
        let mut n = 0usize;
        while let Some(l) = list.next().map_err(gerr)? {
            n += 1;
            if n > MAX_UNIT_ENTRIES {
                break;
            }
            if l.range.begin <= pc && pc < l.range.end {
                return Ok(Where::Expr(l.data));
            }
        }
        Ok(Where::Nowhere)
    }

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
            gimli::DW_TAG_typedef => match (go_kind, target) {
                (Some(go_kind::INTERFACE), Some(t)) => {
                    let inner = self.read_type(t, chain + 1)?;
                    let empty = match &inner.kind {
                        Kind::Struct(f) => f.iter().any(|f| f.name == "_type"),
                        _ => false,
                    };
                    Type {
                        name,
                        size: 16,
                        kind: Kind::Iface { empty },
                    }
                }
                (Some(go_kind::MAP), _) => Type {
                    name,
                    size: 8,
                    kind: match (self.ref_attr(u, &e, DW_AT_GO_KEY), elem, target) {
                        (Some(key), Some(val), Some(hdr)) => Kind::Map { key, val, hdr },
                        _ => Kind::Other,
                    },
                },
                (Some(go_kind::CHAN), _) => {
                    let hchan = target.and_then(|t| match self.ty(t).ok()?.kind {
                        Kind::Ptr(h) => Some(h),
                        _ => None,
                    });
                    Type {
                        name,
                        size: 8,
                        kind: match elem {
                            Some(elem) => Kind::Chan { elem, hchan },
                            None => Kind::Other,
                        },
                    }
                }
                (Some(go_kind::FUNC), _) => Type {
                    name,
                    size: 8,
                    kind: Kind::Func,
                },
                (_, Some(t)) => {
                    let mut inner = self.read_type(t, chain + 1)?;
                    if !name.is_empty() {
                        inner.name = name;
                    }
                    inner
                }
                (_, None) => ty(Kind::Other),
            },
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

fn in_ranges(ranges: &[gimli::Range], pc: u64) -> bool {
    ranges.iter().any(|r| r.begin <= pc && pc < r.end)
}

/// A walk over a function's entries, collecting the variables at one inline depth.
struct Walk<'a> {
    dw: &'a Dwarf,
    u: &'a UnitInfo,
    pc: u64,
    target: usize,
    vars: Vec<Var>,
    function: String,
    /// The inlined call at the target depth was found.
    found: bool,
    /// Its abstract origin (the inlined function's own entry, which lists every variable).
    origin: Option<u64>,
}

impl Walk<'_> {
    fn node(
        &mut self,
        node: gimli::EntriesTreeNode<'_, '_, R>,
        depth: usize,
        nest: usize,
    ) -> Result<(), String> {
        if nest > MAX_SCOPE_DEPTH {
            return Ok(());
        }
        let mut ch = node.children();
        while let Some(c) = ch.next().map_err(gerr)? {
            let e = c.entry().clone();
            match e.tag() {
                gimli::DW_TAG_formal_parameter | gimli::DW_TAG_variable if depth == self.target => {
                    self.var(&e)?;
                }
                gimli::DW_TAG_lexical_block if self.dw.die_has_pc(self.u, &e, self.pc) => {
                    self.node(c, depth, nest + 1)?;
                }
                gimli::DW_TAG_inlined_subroutine
                    if depth < self.target && self.dw.die_has_pc(self.u, &e, self.pc) =>
                {
                    if depth + 1 == self.target {
                        self.found = true;
                        self.function = self.dw.name_of(self.u, &e).unwrap_or_default();
                        self.origin = self.dw.ref_attr(self.u, &e, gimli::DW_AT_abstract_origin);
                    }
                    self.node(c, depth + 1, nest + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn var(&mut self, e: &gimli::DebuggingInformationEntry<R>) -> Result<(), String> {
        if self.vars.len() >= MAX_SCOPE_VARS {
            return Ok(());
        }
        let Some(raw) = self.dw.name_of(self.u, e) else {
            return Ok(());
        };
        let (name, escaped) = match raw.strip_prefix('&') {
            Some(n) => (n.to_string(), true),
            None => (raw, false),
        };
        // The compiler's temporaries and the pieces of decomposed variables.
        if name.is_empty() || name.starts_with('~') || name.contains('.') {
            return Ok(());
        }
        let Some(ty) = self.dw.var_type(self.u, e) else {
            return Ok(());
        };
        let at = self.dw.location(self.u, e, self.pc)?;
        self.vars.push(Var {
            name,
            ty,
            param: e.tag() == gimli::DW_TAG_formal_parameter,
            escaped,
            at,
        });
        Ok(())
    }
}
