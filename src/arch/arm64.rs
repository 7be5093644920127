//! arm64 machine code: the data addresses a function's code references (`ADRP` pairs and the
//! loads, stores and atomics on them), and its direct calls. Pure functions of the bytes,
//! bounded by [`super::MAX_INSNS`].

use super::MAX_INSNS;

/// Absolute addresses `code` (starting at `addr`) computes or accesses through `ADRP` + `ADD`
/// immediate, `LDR`/`STR` (unsigned or unscaled immediate), `LDP`/`STP`, load/store
/// exclusive/acquire/release and LSE atomics on a register whose value is known. Register
/// values are forgotten when the register is written by anything else and after calls.
pub(crate) fn data_refs(code: &[u8], addr: u64) -> Vec<u64> {
    let mut regs: [Option<u64>; 32] = [None; 32];
    let mut out = Vec::new();
    for (i, w) in code.chunks_exact(4).enumerate().take(MAX_INSNS) {
        let pc = addr + 4 * i as u64;
        let insn = u32::from_le_bytes(w.try_into().unwrap());
        let rd = (insn & 31) as usize;
        let rn = ((insn >> 5) & 31) as usize;
        let base = if rn == 31 { None } else { regs[rn] };
        let mut clobber = [Some(rd), None, None];
        if insn & 0x9F00_0000 == 0x9000_0000 {
            // ADRP Xd, label
            let immlo = u64::from((insn >> 29) & 3);
            let immhi = u64::from((insn >> 5) & 0x7FFFF);
            let imm = sign_extend((immhi << 2 | immlo) << 12, 33);
            regs[rd] = Some((pc & !0xFFF).wrapping_add(imm));
            continue;
        } else if insn & 0xFF80_0000 == 0x9100_0000 {
            // ADD Xd, Xn, #imm{, LSL #12}
            if let Some(b) = base {
                let imm =
                    u64::from((insn >> 10) & 0xFFF) << if insn & (1 << 22) != 0 { 12 } else { 0 };
                let v = b.wrapping_add(imm);
                out.push(v);
                if rd != 31 {
                    regs[rd] = Some(v);
                }
                continue;
            }
        } else if let Some(written) = memory_access(insn, base, &mut out) {
            clobber = written;
        } else if insn & 0xFC00_0000 == 0x9400_0000 || insn & 0xFFFF_FC1F == 0xD63F_0000 {
            // BL / BLR: the callee may clobber every register.
            regs = [None; 32];
            continue;
        }
        for r in clobber.into_iter().flatten() {
            if r != 31 {
                regs[r] = None;
            }
        }
    }
    out
}

/// The addresses a load, store or atomic `insn` accesses through base register value `base`
/// (when known), pushed to `out`, and the registers it writes; `None` when `insn` is no
/// memory access.
fn memory_access(insn: u32, base: Option<u64>, out: &mut Vec<u64>) -> Option<[Option<usize>; 3]> {
    let rd = (insn & 31) as usize;
    let rn = ((insn >> 5) & 31) as usize;
    let mut clobber = [Some(rd), None, None];
    if insn & 0x3B00_0000 == 0x3900_0000 {
        // LDR/STR (unsigned immediate), integer or SIMD&FP.
        let size = insn >> 30;
        let simd = insn & (1 << 26) != 0;
        let opc = (insn >> 22) & 3;
        let scale = if simd && opc & 2 != 0 { 4 } else { size };
        if let Some(b) = base {
            out.push(b.wrapping_add(u64::from((insn >> 10) & 0xFFF) << scale));
        }
        if opc == 0 || simd {
            clobber[0] = None; // a store (or a SIMD register): no integer register written
        }
    } else if insn & 0x3B20_0000 == 0x3800_0000 {
        // LDUR/STUR and pre/post-indexed LDR/STR (9-bit signed immediate).
        let opc = (insn >> 22) & 3;
        let simd = insn & (1 << 26) != 0;
        let kind = (insn >> 10) & 3;
        if let Some(b) = base {
            let off = sign_extend(u64::from((insn >> 12) & 0x1FF), 9);
            out.push(if kind == 1 { b } else { b.wrapping_add(off) });
        }
        if opc == 0 || simd {
            clobber[0] = None;
        }
        if kind != 0 {
            clobber[1] = Some(rn); // writeback
        }
    } else if insn & 0x3A00_0000 == 0x2800_0000 {
        clobber = load_store_pair(insn, base, out);
    } else if insn & 0x3F00_0000 == 0x0800_0000 {
        // Load/store exclusive, load-acquire/store-release: [Xn], no offset.
        if let Some(b) = base {
            out.push(b);
        }
        let load = insn & (1 << 22) != 0;
        let rs = ((insn >> 16) & 31) as usize;
        clobber[0] = Some(if load { rd } else { rs });
    } else if insn & 0x3B20_0C00 == 0x3820_0000 {
        // LSE atomics (LDADD, SWP, ...): [Xn], Rt receives the old value.
        if let Some(b) = base {
            out.push(b);
        }
    } else {
        return None;
    }
    Some(clobber)
}

/// LDP/STP (and LDNP/STNP), signed offset or pre/post-indexed: the two addresses, pushed to
/// `out`, and the registers written (a load's pair, the base on writeback).
fn load_store_pair(insn: u32, base: Option<u64>, out: &mut Vec<u64>) -> [Option<usize>; 3] {
    let rd = (insn & 31) as usize;
    let rn = ((insn >> 5) & 31) as usize;
    let opc = insn >> 30;
    let simd = insn & (1 << 26) != 0;
    let load = insn & (1 << 22) != 0;
    let kind = (insn >> 23) & 3;
    let scale = if simd {
        2 + opc
    } else if opc & 2 != 0 {
        3
    } else {
        2
    };
    if let Some(b) = base {
        let off = sign_extend(u64::from((insn >> 15) & 0x7F), 7) << scale;
        let a = if kind == 1 { b } else { b.wrapping_add(off) };
        out.push(a);
        out.push(a.wrapping_add(1 << scale));
    }
    let rt2 = ((insn >> 10) & 31) as usize;
    let writeback = (kind == 1 || kind == 3).then_some(rn);
    if load && !simd {
        [Some(rd), Some(rt2), writeback]
    } else {
        [None, None, writeback]
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sign_extend(v: u64, bits: u32) -> u64 {
    let s = 64 - bits;
    (((v << s) as i64) >> s) as u64
}

/// Targets of the direct calls (`BL`) in `code` (which starts at `entry`), in code order.
pub(crate) fn direct_calls(code: &[u8], entry: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (i, w) in code.chunks_exact(4).enumerate().take(MAX_INSNS) {
        let insn = u32::from_le_bytes(w.try_into().unwrap());
        if insn & 0xFC00_0000 == 0x9400_0000 {
            let off = sign_extend(u64::from(insn & 0x03FF_FFFF) << 2, 28);
            out.push((entry + 4 * i as u64).wrapping_add(off));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn arm64_adrp_pairs() {
        let pc = 0x10_0000u64;
        // ADRP X27, +0x2000 page: immlo = 2 (bits 29-30), immhi = 0  => 0x2000 >> 12 = 2
        let adrp =
            |rd: u32, pages: u32| 0x9000_0000 | ((pages & 3) << 29) | ((pages >> 2) << 5) | rd;
        let add = |rd: u32, rn: u32, imm: u32| 0x9100_0000 | (imm << 10) | (rn << 5) | rd;
        let ldr64 = |rt: u32, rn: u32, off: u32| 0xF940_0000 | ((off / 8) << 10) | (rn << 5) | rt;
        let ldp64 = |rt: u32, rt2: u32, rn: u32, off: i32| {
            0xA940_0000 | ((((off / 8) as u32) & 0x7F) << 15) | (rt2 << 10) | (rn << 5) | rt
        };
        let stlr64 = |rt: u32, rn: u32| 0xC89F_FC00 | (rn << 5) | rt;
        let code = le(&[
            adrp(1, 2),        // X1 = 0x102000
            add(1, 1, 880),    // X1 = 0x102370 (ref)
            ldp64(2, 3, 1, 0), // [X1], [X1+8]
            adrp(27, 2),       // R27 = 0x102000
            ldr64(4, 27, 896), // [0x102380]
            adrp(5, 1),        // X5 = 0x101000
            add(5, 5, 120),    // 0x101078 (ref)
            stlr64(3, 5),      // [X5]
            0x9400_0010,       // BL: forget everything
            ldr64(6, 1, 8),    // X1 unknown now: no ref
            adrp(7, 2),
            0xAA0003E7, // MOV X7, X0 (ORR): X7 forgotten
            ldr64(8, 7, 8),
        ]);
        let mut refs = data_refs(&code, pc);
        refs.sort_unstable();
        refs.dedup();
        assert_eq!(refs, vec![0x101078, 0x102370, 0x102378, 0x102380]);
        assert_eq!(
            crate::runtime::find::allgs_candidates(&refs),
            vec![0x102370]
        );
    }

    #[test]
    fn arm64_negative_adrp_and_unscaled() {
        // ADRP X0, -1 page at 0x5000 => 0x4000; LDUR X1, [X0, #-8] => 0x3ff8
        let adrp_neg = 0x9000_0000 | (3 << 29) | (0x7FFFF << 5);
        let ldur = 0xF840_0000 | ((0x1F8u32) << 12) | 1;
        assert_eq!(data_refs(&le(&[adrp_neg, ldur]), 0x5004), vec![0x3ff8]);
        assert_eq!(sign_extend(0x1FF, 9), u64::MAX);
    }
}
