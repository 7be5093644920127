//! Struct layouts from DWARF: member offsets of named Go types (`runtime.g`, ...).
//!
//! Only the types asked for are collected, and only as much of `.debug_info` is decompressed
//! and read as finding them takes. Every loop is bounded by the DWARF data itself (gimli never
//! reads past a section, decompression never past the declared size).

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
/// declares its size, and no more than that is ever decompressed.
pub(crate) const MAX_DWARF_SECTION: u64 = 1 << 30;

/// How much of a compressed `.debug_info` is inflated at a time. Entries are read as soon as
/// they are whole, and the rest of the section is never decompressed once the types are found.
const INFLATE_STEP: usize = 128 << 10;

/// Most compile units read (Go binaries have hundreds to a few thousand).
pub(crate) const MAX_DWARF_UNITS: usize = 1 << 20;

/// Most abbreviation tables kept parsed at once (Go's linker writes one; C compilers one a
/// unit): beyond it the cache starts over.
const MAX_ABBREV_TABLES: usize = 1024;

/// Bytes of a unit's start copied to parse its header (the longest DWARF 5 unit header, 64-bit,
/// is 40 bytes).
const HEADER_PROBE: usize = 64;

/// Collects the layouts of the `required` and `optional` named struct types; those not found
/// are absent from the map.
///
/// `.debug_info` is read in order, decompressed as it goes, and the scan stops as soon as every
/// type asked for is found, even in the middle of a unit (Go's linker writes every type entry
/// into one compile unit, the runtime's, and the runtime's own types near its start). When some
/// optional type is missing, the scan stops at the end of the unit in which the last required
/// type was found: an optional type not seen by then is not in the binary.
pub(crate) fn struct_layouts(
    bin: &GoBinary,
    required: &[&str],
    optional: &[&str],
) -> Result<HashMap<String, StructLayout>, DwarfError> {
    struct_layouts_tuned(bin, required, optional, INFLATE_STEP, RUNTIME_UNIT)
}

/// [`struct_layouts`] decompressing `step` bytes at a time (at least 1) and reading the units
/// named `first_pass` first. For tests: the result must not depend on either.
#[doc(hidden)]
pub fn struct_layouts_tuned(
    bin: &GoBinary,
    required: &[&str],
    optional: &[&str],
    step: usize,
    first_pass: &'static str,
) -> Result<HashMap<String, StructLayout>, DwarfError> {
    let step = step.max(1);
    let elf = bin.elf();
    let err = |e: gimli::Error| DwarfError(e.to_string());
    let mut info = match elf.section_by_name(".debug_info") {
        Some(s) => Info::open(&s)?,
        None => return Ok(HashMap::new()),
    };
    let abbrev = small_section(&elf, ".debug_abbrev")?;
    let strings = Strings {
        str: small_section(&elf, ".debug_str")?,
        str_offsets: small_section(&elf, ".debug_str_offsets")?,
        line_str: small_section(&elf, ".debug_line_str")?,
    };
    let debug_abbrev = gimli::DebugAbbrev::new(&abbrev, LittleEndian);
    let mut abbrevs: HashMap<u64, gimli::Abbreviations> = HashMap::new();
    let wanted = Wanted { required, optional };
    let mut found = Found::default();
    let have_required = |found: &Found| wanted.required.iter().all(|n| found.out.contains_key(*n));
    // First pass: the units named "runtime" only (Go's linker puts the type entries in one of
    // them); the others are passed over, decompressed but not read.
    let mut skipped: Vec<UnitStart> = Vec::new();
    // Each unit advances `off` by at least 4 bytes, within the declared size.
    let mut off = 0usize;
    let mut units = 0usize;
    loop {
        units += 1;
        if units > MAX_DWARF_UNITS {
            return Err(DwarfError(format!(
                ".debug_info has more than {MAX_DWARF_UNITS} units"
            )));
        }
        info.fill_to(off.saturating_add(HEADER_PROBE), step)?;
        let Some(unit) = UnitStart::parse(info.bytes(), off, info.declared).map_err(err)? else {
            break;
        };
        let ab = abbrevs_for(&mut abbrevs, &debug_abbrev, &unit)?;
        let mut scan = UnitScan {
            only_named: Some(first_pass),
            ..UnitScan::default()
        };
        loop {
            let avail = info.bytes().len().min(unit.end);
            let complete = avail == unit.end;
            if let Some(header) = unit.prefix(info.bytes(), avail) {
                let view = UnitView {
                    header: &header,
                    abbrevs: ab,
                    strings: &strings,
                };
                match scan_unit(view, &mut scan, complete, &wanted, &mut found).map_err(err)? {
                    Scan::AllFound => return Ok(found.finish()),
                    Scan::Done => break,
                    Scan::NeedMore if complete => break,
                    Scan::NeedMore => {}
                }
            }
            info.fill_to(avail.saturating_add(step), step)?;
            if info.bytes().len() <= avail {
                return Err(DwarfError(format!(
                    ".debug_info ends inside the unit at {off:#x}"
                )));
            }
        }
        off = unit.end;
        if scan.skipped {
            skipped.push(unit);
        } else if have_required(&found) {
            // Found in this unit: an optional type not seen by its end is not in the binary.
            return Ok(found.finish());
        }
    }
    // Second pass, for binaries not laid out that way: the other units, now all decompressed.
    for unit in &skipped {
        let ab = abbrevs_for(&mut abbrevs, &debug_abbrev, unit)?;
        let mut scan = UnitScan::default();
        let Some(header) = unit.prefix(info.bytes(), unit.end) else {
            return Err(DwarfError(format!(
                ".debug_info ends inside the unit at {:#x}",
                unit.off
            )));
        };
        let view = UnitView {
            header: &header,
            abbrevs: ab,
            strings: &strings,
        };
        if let Scan::AllFound =
            scan_unit(view, &mut scan, true, &wanted, &mut found).map_err(err)?
        {
            break;
        }
        if have_required(&found) {
            break;
        }
    }
    Ok(found.finish())
}

/// The name of the compile units the first pass reads.
const RUNTIME_UNIT: &str = "runtime";

/// The unit's abbreviations, parsed once per `.debug_abbrev` offset.
fn abbrevs_for<'m>(
    cache: &'m mut HashMap<u64, gimli::Abbreviations>,
    debug_abbrev: &gimli::DebugAbbrev<Slice<'_>>,
    unit: &UnitStart,
) -> Result<&'m gimli::Abbreviations, DwarfError> {
    let off = unit.header.debug_abbrev_offset().0 as u64;
    if !cache.contains_key(&off) {
        if cache.len() >= MAX_ABBREV_TABLES {
            cache.clear();
        }
        let a = unit
            .header
            .abbreviations(debug_abbrev)
            .map_err(|e| DwarfError(e.to_string()))?;
        cache.insert(off, a);
    }
    Ok(&cache[&off])
}

impl Found {
    /// The layouts, member types defined in other units named.
    fn finish(self) -> HashMap<String, StructLayout> {
        let Found { mut out, struct_at } = self;
        // Member types defined in other units are referenced by .debug_info offset: name them now.
        for layout in out.values_mut() {
            for m in &mut layout.members {
                if m.type_name.is_none() {
                    m.type_name = m.type_ref.and_then(|r| struct_at.get(&r).cloned());
                }
            }
        }
        out
    }
}

/// The type names asked for.
struct Wanted<'a> {
    required: &'a [&'a str],
    optional: &'a [&'a str],
}

impl Wanted<'_> {
    fn contains(&self, name: &str) -> bool {
        self.required.contains(&name) || self.optional.contains(&name)
    }

    fn all_in(&self, found: &Found) -> bool {
        self.required
            .iter()
            .chain(self.optional)
            .all(|n| found.out.contains_key(*n))
    }
}

/// A unit of `.debug_info` whose header has been read (its entries may not all be there yet).
struct UnitStart {
    /// The header as parsed from the unit's first bytes (its length is not the unit's).
    header: gimli::UnitHeader<Slice<'static>>,
    /// Offset of the unit in `.debug_info`.
    off: usize,
    /// Offset of the unit's end.
    end: usize,
    /// Size of its header.
    header_size: usize,
}

impl UnitStart {
    /// Reads the header of the unit at `off` from what has been decompressed; `None` at the end
    /// of the section, or when the unit's length is past the declared size.
    fn parse(bytes: &[u8], off: usize, declared: usize) -> gimli::Result<Option<UnitStart>> {
        let Some(len) = bytes.get(off..off.saturating_add(4)) else {
            return Ok(None);
        };
        let len32 = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let (init, total) = if len32 == 0xffff_ffff {
            let Some(l) = bytes.get(off + 4..off + 12) else {
                return Ok(None);
            };
            let mut w = [0u8; 8];
            w.copy_from_slice(l);
            (12usize, u64::from_le_bytes(w).checked_add(12))
        } else {
            (4usize, Some(u64::from(len32) + 4))
        };
        let Some(end) = total
            .and_then(|t| usize::try_from(t).ok())
            .and_then(|t| off.checked_add(t))
        else {
            return Ok(None);
        };
        if end > declared {
            return Ok(None);
        }
        // Parse the header from a copy of the unit's first bytes whose length field says the
        // unit ends there: gimli checks that a unit's whole length is present.
        let probe_len = (end - off).min(HEADER_PROBE).min(bytes.len() - off);
        if probe_len < init {
            return Ok(None);
        }
        let mut probe = bytes[off..off + probe_len].to_vec();
        if init == 12 {
            probe[4..12].copy_from_slice(&((probe_len - 12) as u64).to_le_bytes());
        } else {
            probe[..4].copy_from_slice(&((probe_len - 4) as u32).to_le_bytes());
        }
        let h = gimli::DebugInfo::new(&probe[..], LittleEndian)
            .header_from_offset(gimli::DebugInfoOffset(0))?;
        let header_size = h.size_of_header();
        let header = gimli::UnitHeader::new(
            h.encoding(),
            0,
            h.type_(),
            h.debug_abbrev_offset(),
            gimli::SectionId::DebugInfo,
            gimli::UnitSectionOffset(off),
            EndianSlice::new(&[][..], LittleEndian),
        );
        Ok(Some(UnitStart {
            header,
            off,
            end,
            header_size,
        }))
    }

    /// The unit as far as `bytes[..avail]` holds it: a header whose length ends at `avail`.
    /// `None` when not even the header is there.
    fn prefix<'d>(&self, bytes: &'d [u8], avail: usize) -> Option<gimli::UnitHeader<Slice<'d>>> {
        let h = &self.header;
        let init = h.format().initial_length_size() as usize;
        let entries = bytes.get(self.off.checked_add(self.header_size)?..avail)?;
        Some(gimli::UnitHeader::new(
            h.encoding(),
            avail.checked_sub(self.off)?.checked_sub(init)?,
            h.type_(),
            h.debug_abbrev_offset(),
            gimli::SectionId::DebugInfo,
            gimli::UnitSectionOffset(self.off),
            EndianSlice::new(entries, LittleEndian),
        ))
    }
}

/// `.debug_info`, decompressed on demand.
struct Info<'a> {
    /// Decompressed so far (or the whole section, when it is not compressed).
    buf: Cow<'a, [u8]>,
    /// The zlib stream still being inflated.
    zlib: Option<(&'a [u8], flate2::Decompress)>,
    /// The size the section header declares.
    declared: usize,
}

impl<'a> Info<'a> {
    fn open(s: &object::read::Section<'a, '_, &'a [u8]>) -> Result<Info<'a>, DwarfError> {
        let c = s.compressed_data().map_err(|e| DwarfError(e.to_string()))?;
        if c.uncompressed_size > MAX_DWARF_SECTION {
            return Err(DwarfError(format!(
                ".debug_info declares {} bytes uncompressed",
                c.uncompressed_size
            )));
        }
        let declared = c.uncompressed_size as usize;
        match c.format {
            object::CompressionFormat::None => Ok(Info {
                buf: Cow::Borrowed(c.data),
                zlib: None,
                declared: c.data.len(),
            }),
            object::CompressionFormat::Zlib => Ok(Info {
                buf: Cow::Owned(Vec::new()),
                zlib: Some((c.data, flate2::Decompress::new(true))),
                declared,
            }),
            // Other formats: all at once, as the object crate decompresses them.
            _ => {
                let all = c.decompress().map_err(|e| DwarfError(e.to_string()))?;
                let declared = all.len();
                Ok(Info {
                    buf: all,
                    zlib: None,
                    declared,
                })
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Decompresses, at least `step` bytes at a time, until `want` bytes are there, the stream
    /// ends or the declared size is reached. Each step produces bytes, consumes input or ends the stream, so the loop is
    /// bounded by the input and the declared size.
    fn fill_to(&mut self, want: usize, step: usize) -> Result<(), DwarfError> {
        let want = want.min(self.declared);
        while self.buf.len() < want {
            let Some((input, z)) = self.zlib.as_mut() else {
                return Ok(());
            };
            let buf = self.buf.to_mut();
            let have = buf.len();
            let step = (want - have).max(step).min(self.declared - have);
            buf.resize(have + step, 0);
            let (in0, out0) = (z.total_in(), z.total_out());
            let consumed = usize::try_from(in0).unwrap_or(usize::MAX).min(input.len());
            let status = z.decompress(
                &input[consumed..],
                &mut buf[have..],
                flate2::FlushDecompress::None,
            );
            let produced = usize::try_from(z.total_out() - out0).unwrap_or(0).min(step);
            buf.truncate(have + produced);
            match status {
                Ok(flate2::Status::StreamEnd) => self.zlib = None,
                Ok(_) if produced > 0 || z.total_in() > in0 => {}
                Ok(_) => {
                    self.zlib = None;
                    return Err(DwarfError(
                        ".debug_info: the compressed data ends early".into(),
                    ));
                }
                Err(e) => {
                    self.zlib = None;
                    return Err(DwarfError(format!(".debug_info: {e}")));
                }
            }
        }
        Ok(())
    }
}

/// A DWARF section, decompressed whole (empty when absent; at most [`MAX_DWARF_SECTION`]).
pub(crate) fn small_section<'a>(
    elf: &object::File<'a>,
    name: &str,
) -> Result<Cow<'a, [u8]>, DwarfError> {
    let Some(s) = elf.section_by_name(name) else {
        return Ok(Cow::Borrowed(&[][..]));
    };
    let declared = s
        .compressed_data()
        .map_err(|e| DwarfError(e.to_string()))?
        .uncompressed_size;
    if declared > MAX_DWARF_SECTION {
        return Err(DwarfError(format!(
            "{name} declares {declared} bytes uncompressed"
        )));
    }
    s.uncompressed_data().map_err(|e| DwarfError(e.to_string()))
}

/// The string sections names may point into.
struct Strings<'a> {
    str: Cow<'a, [u8]>,
    str_offsets: Cow<'a, [u8]>,
    line_str: Cow<'a, [u8]>,
}

/// One unit (or the part of it decompressed so far) and what reading its entries needs.
#[derive(Clone, Copy)]
struct UnitView<'u, 'd> {
    header: &'u gimli::UnitHeader<Slice<'d>>,
    abbrevs: &'u gimli::Abbreviations,
    strings: &'u Strings<'u>,
}

/// Where the scan of one unit is.
#[derive(Default)]
struct UnitScan {
    /// The root entry was read.
    started: bool,
    /// The next top-level entry to read.
    next: Option<gimli::UnitOffset>,
    /// The root's `DW_AT_str_offsets_base`.
    str_offsets_base: Option<gimli::DebugStrOffsetsBase<usize>>,
    /// Read only a unit with this name (the root's `DW_AT_name`); others are skipped.
    only_named: Option<&'static str>,
    /// The unit was skipped for its name.
    skipped: bool,
}

/// How a unit's scan ended.
enum Scan {
    /// The unit was read to its end.
    Done,
    /// The bytes decompressed so far end inside the unit.
    NeedMore,
    /// Every type asked for was found.
    AllFound,
}

/// What the scan found so far.
#[derive(Default)]
struct Found {
    out: HashMap<String, StructLayout>,
    /// Offsets of the wanted types' entries (struct and typedef) in `.debug_info`.
    struct_at: HashMap<u64, String>,
}

/// Reads the unit's top-level entries from where `st` left off. When the unit is not
/// `complete` (its bytes end early), what an entry yields is kept only once the entry after it
/// was read whole, so a struct cut short is read again with more bytes.
fn scan_unit(
    unit: UnitView<'_, '_>,
    st: &mut UnitScan,
    complete: bool,
    wanted: &Wanted<'_>,
    found: &mut Found,
) -> gimli::Result<Scan> {
    let end_or_more = if complete { Scan::Done } else { Scan::NeedMore };
    let more = |e: gimli::Error| match e {
        gimli::Error::UnexpectedEof(_) | gimli::Error::OffsetOutOfBounds(_) if !complete => {
            Ok(Scan::NeedMore)
        }
        e => Err(e),
    };
    if !st.started {
        // The unit's root, then its top-level entries; subtrees are skipped.
        let mut cursor = unit.header.entries(unit.abbrevs);
        match cursor.next_dfs() {
            Ok(Some(root)) => {
                if let Some(gimli::AttributeValue::DebugStrOffsetsBase(b)) =
                    root.attr_value(gimli::DW_AT_str_offsets_base)
                {
                    st.str_offsets_base = Some(b);
                }
                if let Some(want) = st.only_named {
                    let strs = StrCtx {
                        strings: unit.strings,
                        format: unit.header.format(),
                        base: st.str_offsets_base,
                    };
                    if attr_string(&strs, root, gimli::DW_AT_name).as_deref() != Some(want) {
                        st.skipped = true;
                        return Ok(Scan::Done);
                    }
                }
            }
            Ok(None) => return Ok(end_or_more),
            Err(e) => return more(e),
        }
        match cursor.next_dfs() {
            Ok(Some(e)) => st.next = Some(e.offset()),
            Ok(None) => return Ok(end_or_more),
            Err(e) => return more(e),
        }
        st.started = true;
    }
    let strs = StrCtx {
        strings: unit.strings,
        format: unit.header.format(),
        base: st.str_offsets_base,
    };
    while let Some(offset) = st.next {
        let mut cursor = match unit.header.entries_at_offset(unit.abbrevs, offset) {
            Ok(c) => c,
            Err(e) => return more(e),
        };
        let entry = match cursor.next_dfs() {
            Ok(Some(e)) => e.clone(),
            Ok(None) => return Ok(end_or_more),
            Err(e) => return more(e),
        };
        // Go names a struct twice: the struct type and a typedef members refer to.
        let mut typedef = None;
        let mut strukt = None;
        let tag = entry.tag();
        if (tag == gimli::DW_TAG_typedef || tag == gimli::DW_TAG_structure_type)
            && let Some(name) = attr_string(&strs, &entry, gimli::DW_AT_name)
            && wanted.contains(&name)
        {
            let g = global(unit.header, offset);
            if tag == gimli::DW_TAG_typedef {
                typedef = g.map(|g| (g, name));
            } else if !found.out.contains_key(&name) {
                let size = entry
                    .attr_value(gimli::DW_AT_byte_size)
                    .and_then(|v| v.udata_value())
                    .unwrap_or(0);
                match read_members(unit, &strs, offset, size) {
                    Ok(layout) => strukt = Some((name, layout, g)),
                    Err(e) => return more(e),
                }
            }
        }
        st.next = match cursor.next_sibling() {
            Ok(Some(e)) => Some(e.offset()),
            Ok(None) if complete => None,
            Ok(None) => return Ok(Scan::NeedMore),
            Err(e) => return more(e),
        };
        if let Some((g, name)) = typedef {
            found.struct_at.insert(g, name);
        }
        if let Some((name, layout, g)) = strukt {
            if let Some(g) = g {
                found.struct_at.insert(g, name.clone());
            }
            found.out.insert(name, layout);
            if wanted.all_in(found) {
                return Ok(Scan::AllFound);
            }
        }
    }
    Ok(end_or_more)
}

fn global(header: &gimli::UnitHeader<Slice<'_>>, off: gimli::UnitOffset) -> Option<u64> {
    off.to_debug_info_offset(header).map(|o| o.0 as u64)
}

fn read_members(
    unit: UnitView<'_, '_>,
    strs: &StrCtx<'_>,
    offset: gimli::UnitOffset,
    size: u64,
) -> gimli::Result<StructLayout> {
    let mut tree = unit.header.entries_tree(unit.abbrevs, Some(offset))?;
    let root = tree.root()?;
    let mut children = root.children();
    let mut members = Vec::new();
    while let Some(child) = children.next()? {
        let e = child.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        let name = attr_string(strs, e, gimli::DW_AT_name).unwrap_or_default();
        let off = e
            .attr_value(gimli::DW_AT_data_member_location)
            .and_then(|v| v.udata_value())
            .unwrap_or(0);
        let (mut type_name, mut tsize, mut type_ref) = (None, None, None);
        match e.attr_value(gimli::DW_AT_type) {
            Some(gimli::AttributeValue::UnitRef(tref)) => {
                let t = unit.header.entry(unit.abbrevs, tref)?;
                type_name = attr_string(strs, &t, gimli::DW_AT_name);
                tsize = t
                    .attr_value(gimli::DW_AT_byte_size)
                    .and_then(|v| v.udata_value());
                type_ref = global(unit.header, tref);
            }
            Some(gimli::AttributeValue::DebugInfoRef(r)) => type_ref = Some(r.0 as u64),
            _ => {}
        }
        members.push(Member {
            name,
            offset: off,
            type_name,
            size: tsize,
            type_ref,
        });
    }
    Ok(StructLayout { size, members })
}

/// What reading a unit's string attributes needs.
struct StrCtx<'a> {
    strings: &'a Strings<'a>,
    format: gimli::Format,
    base: Option<gimli::DebugStrOffsetsBase<usize>>,
}

/// A string attribute: inline, or in `.debug_str` / `.debug_line_str` (directly or through
/// `.debug_str_offsets`). `None` when absent or unreadable.
fn attr_string(
    strs: &StrCtx<'_>,
    entry: &gimli::DebuggingInformationEntry<Slice<'_>>,
    at: gimli::DwAt,
) -> Option<String> {
    let s = strs.strings;
    let debug_str = gimli::DebugStr::new(&s.str, LittleEndian);
    let bytes = match entry.attr_value(at)? {
        gimli::AttributeValue::String(v) => v,
        gimli::AttributeValue::DebugStrRef(o) => debug_str.get_str(o).ok()?,
        gimli::AttributeValue::DebugLineStrRef(o) => {
            gimli::DebugLineStr::new(&s.line_str, LittleEndian)
                .get_str(o)
                .ok()?
        }
        gimli::AttributeValue::DebugStrOffsetsIndex(i) => {
            let offsets =
                gimli::DebugStrOffsets::from(EndianSlice::new(&s.str_offsets, LittleEndian));
            debug_str
                .get_str(offsets.get_str_offset(strs.format, strs.base?, i).ok()?)
                .ok()?
        }
        _ => return None,
    };
    Some(bytes.to_string_lossy().into_owned())
}
