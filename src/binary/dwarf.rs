//! Struct layouts from DWARF: member offsets of named Go types (`runtime.g`, ...).
//!
//! Only the types asked for are collected, and the scan stops once all are found. Every loop
//! is bounded by the DWARF data itself (gimli never reads past a section).

use super::GoBinary;
use gimli::{EndianSlice, LittleEndian};
use object::{Object, ObjectSection};
use std::borrow::Cow;
use std::collections::HashMap;

/// One member of a struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member name.
    pub name: String,
    /// Byte offset in the struct.
    pub offset: u64,
    /// Name of the member's type (`runtime.gobuf`, `uintptr`, ...), when it has one.
    pub type_name: Option<String>,
    /// Byte size of the member's type, when DWARF gives it.
    pub size: Option<u64>,
    /// Offset of the member's type entry in `.debug_info`.
    type_ref: Option<u64>,
}

/// A struct type's layout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StructLayout {
    /// `DW_AT_byte_size`.
    pub size: u64,
    /// Members in declaration order.
    pub members: Vec<Member>,
}

impl StructLayout {
    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }
}

/// Why DWARF could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwarfError(pub String);

impl std::fmt::Display for DwarfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot read DWARF: {}", self.0)
    }
}

impl std::error::Error for DwarfError {}

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Largest uncompressed size accepted for one DWARF section: a compressed section's header
/// declares its size, and that much is reserved before decompressing.
pub const MAX_DWARF_SECTION: u64 = 1 << 30;

/// Collects the layouts of the named struct types. Types not found are absent from the map.
pub fn struct_layouts(bin: &GoBinary, names: &[&str]) -> Result<HashMap<String, StructLayout>, DwarfError> {
    let elf = bin.elf();
    let mut owned: HashMap<gimli::SectionId, Cow<'_, [u8]>> = HashMap::new();
    for id in [
        gimli::SectionId::DebugInfo,
        gimli::SectionId::DebugAbbrev,
        gimli::SectionId::DebugStr,
        gimli::SectionId::DebugStrOffsets,
        gimli::SectionId::DebugLineStr,
        gimli::SectionId::DebugAddr,
        gimli::SectionId::DebugLine,
        gimli::SectionId::DebugRngLists,
        gimli::SectionId::DebugRanges,
        gimli::SectionId::DebugLocLists,
        gimli::SectionId::DebugLoc,
    ] {
        let data = match elf.section_by_name(id.name()) {
            Some(s) => {
                let declared = s.compressed_data().map_err(|e| DwarfError(e.to_string()))?.uncompressed_size;
                if declared > MAX_DWARF_SECTION {
                    return Err(DwarfError(format!("{} declares {declared} bytes uncompressed", id.name())));
                }
                s.uncompressed_data().map_err(|e| DwarfError(e.to_string()))?
            }
            None => Cow::Borrowed(&[][..]),
        };
        owned.insert(id, data);
    }
    let dwarf = gimli::Dwarf::load(|id| -> Result<Slice<'_>, gimli::Error> {
        Ok(EndianSlice::new(owned.get(&id).map(|c| &c[..]).unwrap_or(&[]), LittleEndian))
    })
    .map_err(|e| DwarfError(e.to_string()))?;
    collect(&dwarf, names).map_err(|e| DwarfError(e.to_string()))
}

fn collect(dwarf: &gimli::Dwarf<Slice<'_>>, names: &[&str]) -> gimli::Result<HashMap<String, StructLayout>> {
    let mut out = HashMap::new();
    let mut struct_at: HashMap<u64, String> = HashMap::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let mut cursor = unit.entries();
        // The unit's root, then its top-level entries; subtrees are skipped.
        if cursor.next_dfs()?.is_none() {
            continue;
        }
        let mut next = cursor.next_dfs()?.map(|e| e.offset());
        while let Some(offset) = next {
            let entry = unit.entry(offset)?;
            // Go names a struct twice: the struct type and a typedef members refer to.
            if entry.tag() == gimli::DW_TAG_typedef {
                if let Some(name) = attr_string(dwarf, &unit, &entry, gimli::DW_AT_name)? {
                    if let (true, Some(g)) = (names.contains(&name.as_str()), global(&unit, offset)) {
                        struct_at.insert(g, name);
                    }
                }
            }
            if entry.tag() == gimli::DW_TAG_structure_type {
                if let Some(name) = attr_string(dwarf, &unit, &entry, gimli::DW_AT_name)? {
                    if names.contains(&name.as_str()) && !out.contains_key(&name) {
                        let size = entry.attr_value(gimli::DW_AT_byte_size).and_then(|v| v.udata_value()).unwrap_or(0);
                        let layout = read_members(dwarf, &unit, offset, size)?;
                        if let Some(g) = global(&unit, offset) {
                            struct_at.insert(g, name.clone());
                        }
                        out.insert(name, layout);
                    }
                }
            }
            next = cursor.next_sibling()?.map(|e| e.offset());
        }
        if out.len() == names.len() {
            break;
        }
    }
    // Member types defined in other units are referenced by .debug_info offset: name them now.
    for layout in out.values_mut() {
        for m in &mut layout.members {
            if m.type_name.is_none() {
                m.type_name = m.type_ref.and_then(|r| struct_at.get(&r).cloned());
            }
        }
    }
    Ok(out)
}

fn global(unit: &gimli::Unit<Slice<'_>>, off: gimli::UnitOffset) -> Option<u64> {
    off.to_debug_info_offset(&unit.header).map(|o| o.0 as u64)
}

fn read_members(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    offset: gimli::UnitOffset,
    size: u64,
) -> gimli::Result<StructLayout> {
    let mut tree = unit.entries_tree(Some(offset))?;
    let root = tree.root()?;
    let mut children = root.children();
    let mut members = Vec::new();
    while let Some(child) = children.next()? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        let name = attr_string(dwarf, unit, e, gimli::DW_AT_name)?.unwrap_or_default();
        let off = e.attr_value(gimli::DW_AT_data_member_location).and_then(|v| v.udata_value()).unwrap_or(0);
        let (mut type_name, mut tsize, mut type_ref) = (None, None, None);
        match e.attr_value(gimli::DW_AT_type) {
            Some(gimli::AttributeValue::UnitRef(tref)) => {
                let t = unit.entry(tref)?;
                type_name = attr_string(dwarf, unit, &t, gimli::DW_AT_name)?;
                tsize = t.attr_value(gimli::DW_AT_byte_size).and_then(|v| v.udata_value());
                type_ref = global(unit, tref);
            }
            Some(gimli::AttributeValue::DebugInfoRef(r)) => type_ref = Some(r.0 as u64),
            _ => {}
        }
        members.push(Member { name, offset: off, type_name, size: tsize, type_ref });
    }
    Ok(StructLayout { size, members })
}

fn attr_string(
    dwarf: &gimli::Dwarf<Slice<'_>>,
    unit: &gimli::Unit<Slice<'_>>,
    entry: &gimli::DebuggingInformationEntry<Slice<'_>>,
    at: gimli::DwAt,
) -> gimli::Result<Option<String>> {
    match entry.attr_value(at) {
        Some(v) => match dwarf.attr_string(unit, v) {
            Ok(s) => Ok(Some(s.to_string_lossy().into_owned())),
            Err(_) => Ok(None),
        },
        None => Ok(None),
    }
}
