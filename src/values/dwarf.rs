//! The binary's DWARF for values: which variables a function's scope holds at a pc, where
//! each lives, and Go types by `.debug_info` offset.
//!
//! Every section is decompressed whole once (bounded by
//! [`crate::binary::dwarf::MAX_DWARF_SECTION`]); compile units
//! are indexed by their pc ranges, and a unit's entries are read only when a pc falls in it.

use super::types::{Type, TypeNames};
use crate::binary::GoBinary;
use crate::binary::dwarf::{MAX_DWARF_UNITS, small_section};
use gimli::{AttributeValue, DW_AT_location, DW_AT_name, DW_AT_type, LittleEndian, Reader as _};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The reader every DWARF section is read through: owned, shared bytes.
pub type R = gimli::EndianArcSlice<LittleEndian>;

/// Deepest nesting of lexical blocks and inlined calls followed inside one function.
pub const MAX_SCOPE_DEPTH: usize = 64;
/// Most variables collected for one scope.
pub const MAX_SCOPE_VARS: usize = 4096;
/// Most entries read while looking for the function holding a pc, in one unit.
pub const MAX_UNIT_ENTRIES: usize = 1 << 22;

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
    /// The function's variables, parameters first, in DWARF's order.
    pub vars: Vec<Var>,
    /// The unit's encoding, to evaluate location expressions.
    pub encoding: gimli::Encoding,
}

/// One compile unit.
pub(super) struct UnitInfo {
    /// Its `.debug_info` offset and end.
    off: u64,
    end: u64,
    pub(super) unit: gimli::Unit<R>,
    /// Its pc ranges.
    ranges: Vec<gimli::Range>,
    /// Its functions' pc ranges, each with the function's entry, in the unit's order: built
    /// on first use ([`Dwarf::functions`]).
    functions: std::sync::OnceLock<Vec<(u64, u64, gimli::UnitOffset)>>,
}

/// The binary's DWARF, indexed for values.
pub struct Dwarf {
    pub(super) d: gimli::Dwarf<R>,
    /// By offset.
    pub(super) units: Vec<UnitInfo>,
    pub(super) types: Mutex<HashMap<u64, Arc<Type>>>,
    /// Type entries by name and by runtime type descriptor address, built on first use.
    pub(super) names: Mutex<Option<Arc<TypeNames>>>,
}

pub(super) fn gerr(e: gimli::Error) -> String {
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
        let section = |name: &str| -> Result<R, String> {
            let bytes = small_section(&elf, name).map_err(|e| e.to_string())?;
            let v: Arc<[u8]> = Arc::from(&bytes[..]);
            Ok(gimli::EndianArcSlice::new(v, LittleEndian))
        };
        // The largest section is decompressed on a thread of its own while the others are (a
        // little over half of the bytes between them): `deadlocks` waits for this DWARF to
        // name a lock, and its search for verdicts takes less time than one thread reading it.
        let (info, d) = crate::parts::beside(
            || section(".debug_info"),
            || {
                gimli::Dwarf::load(|id| match id {
                    gimli::SectionId::DebugInfo => {
                        Ok(gimli::EndianArcSlice::new(Arc::from(&[][..]), LittleEndian))
                    }
                    _ => section(id.name()),
                })
            },
        );
        let mut d = d?;
        d.debug_info = gimli::DebugInfo::from(info?);
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
                functions: Default::default(),
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
    pub(super) fn entry(
        &self,
        off: u64,
    ) -> Result<(&UnitInfo, gimli::DebuggingInformationEntry<R>), String> {
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
            // The first function of the unit holding the pc.
            let Some(off) = self
                .functions(u)?
                .iter()
                .filter(|&&(begin, end, _)| begin <= pc && pc < end)
                .map(|&(_, _, off)| off)
                .min()
            else {
                continue;
            };
            let mut tree = u.unit.entries_tree(Some(off)).map_err(gerr)?;
            let mut walk = Walk {
                dw: self,
                u,
                pc,
                target: depth,
                vars: Vec::new(),
                found: depth == 0,
                origin: None,
            };
            walk.node(tree.root().map_err(gerr)?, 0, 0)?;
            if !walk.found {
                return Ok(None);
            }
            if let Some(o) = walk.origin {
                self.add_abstract(o, &mut walk.vars)?;
            }
            return Ok(Some(Scope {
                vars: walk.vars,
                encoding: u.unit.encoding(),
            }));
        }
        Ok(None)
    }

    /// The pc ranges of the unit's functions (its top-level subprograms), each with the
    /// function's entry: read once, at most [`MAX_UNIT_ENTRIES`] entries and ranges.
    fn functions<'u>(
        &self,
        u: &'u UnitInfo,
    ) -> Result<&'u [(u64, u64, gimli::UnitOffset)], String> {
        if let Some(f) = u.functions.get() {
            return Ok(f);
        }
        let mut out = Vec::new();
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
            if e.tag() != gimli::DW_TAG_subprogram {
                continue;
            }
            let Ok(mut rs) = self.d.die_ranges(&u.unit, e) else {
                continue;
            };
            while let Ok(Some(r)) = rs.next() {
                if out.len() >= MAX_UNIT_ENTRIES {
                    return Err("DWARF: too many function ranges in one unit".into());
                }
                out.push((r.begin, r.end, e.offset()));
            }
        }
        Ok(u.functions.get_or_init(|| out))
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
    pub(super) fn name_of(
        &self,
        u: &UnitInfo,
        e: &gimli::DebuggingInformationEntry<R>,
    ) -> Option<String> {
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
    pub(super) fn ref_attr(
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
