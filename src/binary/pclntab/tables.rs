//! A function's tables: pc-value tables (sp delta, file, line, pcdata), funcdata, the
//! inlining tree, argument info and open-coded defers.

use super::{
    FUNCDATA_INL_TREE, FUNCDATA_OPEN_CODED_DEFER_INFO, FUNCDATA_WRAP_INFO, Func, MAX_INLINE_DEPTH,
    OpenCodedDefers, PCDATA_INL_TREE_INDEX, Pclntab, SrcFrame, cstr, rd_u32, uvarint32,
};

impl Pclntab {
    #[inline]
    fn npcdata(&self, f: Func) -> u32 {
        self.field_u32(f, 28).unwrap_or(0)
    }

    #[inline]
    fn nfuncdata(&self, f: Func) -> u8 {
        self.field_u8(f, if self.go120 { 43 } else { 39 })
    }

    /// Evaluates the pc-value table at pctab offset `off` for function `f` at `target`.
    /// `None` if there is no table (offset 0), it is corrupt, or does not cover `target`.
    #[inline]
    fn pcvalue(&self, f: Func, off: u32, target: u64) -> Option<i32> {
        if off == 0 {
            return None;
        }
        let entry = self.entry(f);
        if target < entry {
            return None;
        }
        let start = self.pctab.start.checked_add(off as usize)?;
        let p = self.data.get(start..self.pctab.end)?;
        let quantum = u64::from(self.min_lc);
        let mut pos = 0usize;
        let mut pc = entry;
        let mut val: i32 = -1;
        // Every iteration consumes at least two bytes of `p`, so this terminates.
        loop {
            let first = pc == entry;
            let uv = uvarint32(p, &mut pos)?;
            if uv == 0 && !first {
                return None;
            }
            val = val.wrapping_add((-((uv & 1) as i32)) ^ ((uv >> 1) as i32));
            let pcd = uvarint32(p, &mut pos)?;
            pc = pc.wrapping_add(u64::from(pcd) * quantum);
            if target < pc {
                return Some(val);
            }
        }
    }

    /// SP delta (frame size so far) at `pc`, from the pcsp table.
    pub fn pcsp(&self, f: Func, pc: u64) -> Option<i32> {
        let off = self.field_u32(f, 16)?;
        self.pcvalue(f, off, pc)
    }

    /// Offset of the function's pcsp table; 0 means the function has no frame information
    /// (external code), where the runtime's unwinder stops.
    pub(crate) fn pcsp_table(&self, f: Func) -> u32 {
        self.field_u32(f, 16).unwrap_or(0)
    }

    /// Source file and line at `pc` (pcfile → cutab → filetab; pcln).
    pub fn file_line(&self, f: Func, pc: u64) -> Option<(&str, u32)> {
        let fileno = self.pcvalue(f, self.field_u32(f, 20)?, pc)?;
        let line = self.pcvalue(f, self.field_u32(f, 24)?, pc)?;
        if fileno < 0 || line < 0 {
            return None;
        }
        let cu = self.field_u32(f, 32)?;
        let idx = (cu as usize).checked_add(fileno as usize)?;
        let at = self.cutab.start.checked_add(idx.checked_mul(4)?)?;
        if at.checked_add(4)? > self.cutab.end {
            return None;
        }
        let fileoff = rd_u32(&self.data, at)?;
        if fileoff == u32::MAX {
            return None;
        }
        let file = cstr(&self.data, &self.filetab, fileoff as usize)?;
        Some((file, line as u32))
    }

    /// Value of `PCDATA` table `table` at `pc`.
    pub(crate) fn pcdata(&self, f: Func, table: u32, pc: u64) -> Option<i32> {
        if table >= self.npcdata(f) {
            return None;
        }
        let at = self.func_size().checked_add(table as usize * 4)?;
        let off = self.field_u32(f, at)?;
        self.pcvalue(f, off, pc)
    }

    /// Offset (relative to `moduledata.gofunc`) of `FUNCDATA` `index`; `None` if absent.
    pub(crate) fn funcdata_offset(&self, f: Func, index: u8) -> Option<u32> {
        if index >= self.nfuncdata(f) {
            return None;
        }
        let npc = self.npcdata(f) as usize;
        let at = self
            .func_size()
            .checked_add(npc.checked_mul(4)?)?
            .checked_add(usize::from(index) * 4)?;
        match self.field_u32(f, at)? {
            u32::MAX => None,
            o => Some(o),
        }
    }

    /// Bytes of the gofunc area starting at `FUNCDATA` `index` of `f`.
    pub(crate) fn funcdata_bytes(&self, f: Func, index: u8) -> Option<&[u8]> {
        let off = self.funcdata_offset(f, index)?;
        let (_, bytes) = self.gofunc.as_ref()?;
        bytes.get(off as usize..)
    }

    /// Reads inline-tree record `ix`: `(funcID, nameOff, parentPc, startLine)`.
    fn inl_record(&self, tree: &[u8], ix: i32) -> Option<(u8, i32, i32, i32)> {
        let ix = usize::try_from(ix).ok()?;
        if self.go120 {
            let base = ix.checked_mul(16)?;
            let r = tree.get(base..base.checked_add(16)?)?;
            let name = rd_u32(r, 4)? as i32;
            let parent_pc = rd_u32(r, 8)? as i32;
            let start_line = rd_u32(r, 12)? as i32;
            Some((r[0], name, parent_pc, start_line))
        } else {
            // {parent i16, funcID u8, _ u8, file i32, line i32, nameOff i32, parentPc i32}
            let base = ix.checked_mul(20)?;
            let r = tree.get(base..base.checked_add(20)?)?;
            let name = rd_u32(r, 12)? as i32;
            let parent_pc = rd_u32(r, 16)? as i32;
            Some((r[2], name, parent_pc, 0))
        }
    }

    /// Logical frames at `pc` of physical function `f`, innermost first, the physical function
    /// last (`inlined == false`), following the runtime's inline unwinder. The file and line of
    /// every frame come from the physical function's tables at that frame's PC (for inlined
    /// callers, `entry + parentPc`). Without gofunc bytes or an inline tree, only the physical
    /// frame is returned. At most [`MAX_INLINE_DEPTH`] frames.
    pub fn frames_at(&self, f: Func, pc: u64) -> Vec<SrcFrame<'_>> {
        let mut out = Vec::new();
        let tree = self.funcdata_bytes(f, FUNCDATA_INL_TREE);
        let entry = self.entry(f);
        let mut pc = pc;
        let mut ix = match tree {
            Some(_) => self.pcdata(f, PCDATA_INL_TREE_INDEX, pc).unwrap_or(-1),
            None => -1,
        };
        while out.len() + 1 < MAX_INLINE_DEPTH {
            let (file, line) = self.file_line(f, pc).unwrap_or(("?", 0));
            let rec = match tree {
                Some(t) if ix >= 0 => self.inl_record(t, ix),
                _ => None,
            };
            let Some((func_id, name_off, parent_pc, start_line)) = rec else {
                break;
            };
            out.push(SrcFrame {
                name: self.name_at(name_off).unwrap_or(""),
                func_id,
                file,
                line,
                start_line,
                inlined: true,
                pc,
            });
            pc = entry.wrapping_add(parent_pc as i64 as u64);
            ix = self.pcdata(f, PCDATA_INL_TREE_INDEX, pc).unwrap_or(-1);
        }
        let (file, line) = self.file_line(f, pc).unwrap_or(("?", 0));
        out.push(SrcFrame {
            name: self.name(f),
            func_id: self.func_id(f),
            file,
            line,
            start_line: self.start_line(f),
            inlined: false,
            pc,
        });
        out
    }

    /// The open-coded defers of `f` (`FUNCDATA_OpenCodedDeferInfo`, written by the compiler's
    /// `emitOpenDeferInfo`, read by the runtime's panic code): where the frame keeps its
    /// `deferBits` byte and each defer's closure pointer, as offsets below the frame's `varp`.
    /// Up to Go 1.21 the funcdata is `deferBitsOffset, nDefers` and then one closure offset
    /// per defer, last defer first (`runOpenDeferFrame`); from 1.22 (`slots`) it is
    /// `deferBitsOffset, slotsOffset`, defer `i`'s closure at `varp - slotsOffset + 8*i`
    /// (`(*_panic).nextDefer`). `None` when `f` has no open-coded defers. A frame has at most
    /// 8 (one bit each in `deferBits`).
    pub(crate) fn open_coded_defers(&self, f: Func, slots: bool) -> Option<OpenCodedDefers> {
        let b = self.funcdata_bytes(f, FUNCDATA_OPEN_CODED_DEFER_INFO)?;
        let mut pos = 0;
        let bits = uvarint32(b, &mut pos)?;
        let mut closures = [None; 8];
        if slots {
            let base = uvarint32(b, &mut pos)?;
            for (i, c) in closures.iter_mut().enumerate() {
                *c = base.checked_sub(8 * i as u32);
            }
        } else {
            let n = uvarint32(b, &mut pos)?.min(8) as usize;
            for i in (0..n).rev() {
                closures[i] = Some(uvarint32(b, &mut pos)?);
            }
        }
        Some(OpenCodedDefers { bits, closures })
    }

    /// For wrapper functions, the absolute entry PC of the wrapped function
    /// (`FUNCDATA_WrapInfo`, a `u32` text offset). Needs gofunc bytes.
    pub fn wrapped_entry(&self, f: Func) -> Option<u64> {
        let b = self.funcdata_bytes(f, FUNCDATA_WRAP_INFO)?;
        let off = rd_u32(b, 0)?;
        Some(self.text_start.wrapping_add(u64::from(off)))
    }
}
