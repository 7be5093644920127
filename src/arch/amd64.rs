//! amd64 machine code: an instruction length decoder, the data addresses a function's code
//! references (RIP-relative operands), and its direct calls. Pure functions of the bytes,
//! bounded by [`super::MAX_INSNS`].

use super::MAX_INSNS;

/// One decoded amd64 instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Length in bytes.
    pub len: usize,
    /// The signed 32-bit displacement of a RIP-relative memory operand, if any.
    pub rip_disp: Option<i32>,
}

/// Targets of every RIP-relative operand in `code` (which starts at `addr`), or the address of
/// the first instruction that could not be decoded. Trailing `INT3` padding is fine.
pub(crate) fn data_refs(code: &[u8], addr: u64) -> Result<Vec<u64>, u64> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..MAX_INSNS {
        if pos >= code.len() {
            return Ok(out);
        }
        let at = addr + pos as u64;
        let insn = decode(&code[pos..]).ok_or(at)?;
        let next = at + insn.len as u64;
        if let Some(d) = insn.rip_disp {
            out.push(next.wrapping_add(d as i64 as u64));
        }
        pos += insn.len;
    }
    Err(addr + pos as u64)
}

/// Immediate kinds of the x86 opcode maps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Imm {
    None,
    /// 1 byte.
    B,
    /// 2 bytes.
    W,
    /// 4 bytes, 2 with an operand-size prefix.
    Z,
    /// 8 bytes with REX.W, else as `Z` (`MOV r, imm`).
    V,
    /// `ENTER`: 2 + 1 bytes.
    Enter,
    /// `MOV AL/rAX, moffs`: an 8-byte address (4 with an address-size prefix).
    Moffs,
}

/// Length-decodes one amd64 instruction (the general-purpose, x87, SSE and VEX encodings; not
/// EVEX or 3DNow!). `None` for invalid or unsupported encodings and truncated input.
pub(crate) fn decode(c: &[u8]) -> Option<Insn> {
    let pre = Prefixes::read(c)?;
    let mut p = pre.len;
    let op = *c.get(p)?;
    p += 1;
    let (modrm, imm) = match op {
        0x0F => {
            let op2 = *c.get(p)?;
            p += 1;
            // 0F 38 and 0F 3A carry one more opcode byte.
            if matches!(op2, 0x38 | 0x3A) {
                p += 1;
            }
            map_0f(op2)?
        }
        0xC4 | 0xC5 => {
            // VEX: 3-byte form carries the opcode map; 2-byte form means 0F.
            let map = if op == 0xC4 { *c.get(p)? & 0x1F } else { 1 };
            p += if op == 0xC4 { 2 } else { 1 };
            let op2 = *c.get(p)?;
            p += 1;
            vex(map, op2)?
        }
        0xF6 | 0xF7 => {
            // TEST r/m, imm has reg field 0 or 1; the other group-3 forms have no immediate.
            let reg = (*c.get(p)? >> 3) & 7;
            let imm = match (reg, op) {
                (0 | 1, 0xF6) => Imm::B,
                (0 | 1, _) => Imm::Z,
                _ => Imm::None,
            };
            (true, imm)
        }
        _ => one_byte(op)?,
    };
    let mut rip_disp = None;
    if modrm {
        let (len, disp) = operand(c.get(p..)?)?;
        p += len;
        rip_disp = disp;
    }
    p += pre.imm_len(imm);
    if p > 15 || p > c.len() {
        return None;
    }
    Some(Insn { len: p, rip_disp })
}

/// The prefixes of an instruction: legacy ones, then REX.
struct Prefixes {
    /// Their bytes.
    len: usize,
    /// Operand-size prefix (`66`).
    opsize16: bool,
    /// Address-size prefix (`67`).
    addr32: bool,
    /// REX.W.
    rex_w: bool,
}

impl Prefixes {
    /// The prefixes at the start of `c`; `None` when `c` ends inside them.
    fn read(c: &[u8]) -> Option<Prefixes> {
        let mut pre = Prefixes {
            len: 0,
            opsize16: false,
            addr32: false,
            rex_w: false,
        };
        // Legacy prefixes (at most 14 in a 15-byte instruction).
        for _ in 0..14 {
            match *c.get(pre.len)? {
                0x66 => pre.opsize16 = true,
                0x67 => pre.addr32 = true,
                0xF0 | 0xF2 | 0xF3 | 0x2E | 0x36 | 0x3E | 0x26 | 0x64 | 0x65 => {}
                _ => break,
            }
            pre.len += 1;
        }
        if (0x40..=0x4F).contains(c.get(pre.len)?) {
            pre.rex_w = c[pre.len] & 8 != 0;
            pre.len += 1;
        }
        Some(pre)
    }

    /// Bytes of an immediate of kind `imm` under these prefixes.
    fn imm_len(&self, imm: Imm) -> usize {
        let z = if self.opsize16 { 2 } else { 4 };
        match imm {
            Imm::None => 0,
            Imm::B => 1,
            Imm::W => 2,
            Imm::Z => z,
            Imm::V if self.rex_w => 8,
            Imm::V => z,
            Imm::Enter => 3,
            Imm::Moffs if self.addr32 => 4,
            Imm::Moffs => 8,
        }
    }
}

/// Whether an opcode of the `0F` map has a ModRM byte, and its immediate; `None` for an
/// invalid or unsupported one.
fn map_0f(op2: u8) -> Option<(bool, Imm)> {
    Some(match op2 {
        0x38 => (true, Imm::None),
        0x3A => (true, Imm::B),
        0x0F
        | 0x04
        | 0x0A
        | 0x0C
        | 0x24..=0x27
        | 0x36
        | 0x39
        | 0x3B..=0x3F
        | 0x7A
        | 0x7B
        | 0xFF => {
            return None;
        }
        0x80..=0x8F => (false, Imm::Z),
        0x05..=0x09
        | 0x0B
        | 0x0E
        | 0x30..=0x35
        | 0x37
        | 0x77
        | 0xA0..=0xA2
        | 0xA8..=0xAA
        | 0xC8..=0xCF => (false, Imm::None),
        0x70..=0x73 | 0xA4 | 0xAC | 0xBA | 0xC2 | 0xC4..=0xC6 => (true, Imm::B),
        _ => (true, Imm::None),
    })
}

/// Whether a VEX opcode of map `map` has a ModRM byte (always), and its immediate.
fn vex(map: u8, op2: u8) -> Option<(bool, Imm)> {
    Some(match map {
        1 if op2 == 0x77 => (false, Imm::None), // VZEROUPPER/VZEROALL
        1 if matches!(op2, 0x70..=0x73 | 0xC2 | 0xC4..=0xC6) => (true, Imm::B),
        1 | 2 => (true, Imm::None),
        3 => (true, Imm::B),
        _ => return None,
    })
}

/// Whether a one-byte opcode (not `0F`, VEX or group 3) has a ModRM byte, and its
/// immediate; `None` for one invalid in 64-bit mode or unsupported.
fn one_byte(op: u8) -> Option<(bool, Imm)> {
    Some(match op {
        0x00..=0x3F => match op & 7 {
            0..=3 => (true, Imm::None),
            4 => (false, Imm::B),
            5 => (false, Imm::Z),
            _ => return None, // push/pop segment, BCD adjust: invalid in 64-bit mode
        },
        0x50..=0x5F
        | 0x6C..=0x6F
        | 0x90..=0x99
        | 0x9B..=0x9F
        | 0xA4..=0xA7
        | 0xAA..=0xAF
        | 0xC3
        | 0xC9
        | 0xCB
        | 0xCC
        | 0xCF
        | 0xD7
        | 0xEC..=0xEF
        | 0xF1
        | 0xF4
        | 0xF5
        | 0xF8..=0xFD => (false, Imm::None),
        0x63 | 0x84..=0x8F | 0xD0..=0xD3 | 0xD8..=0xDF | 0xFE | 0xFF => (true, Imm::None),
        0x68 => (false, Imm::Z),
        0x69 | 0x81 | 0xC7 => (true, Imm::Z),
        0x6A | 0x70..=0x7F | 0xA8 | 0xB0..=0xB7 | 0xCD | 0xE0..=0xE7 | 0xEB => (false, Imm::B),
        0x6B | 0x80 | 0x83 | 0xC0 | 0xC1 | 0xC6 => (true, Imm::B),
        0xA0..=0xA3 => (false, Imm::Moffs),
        0xA9 => (false, Imm::Z),
        0xB8..=0xBF => (false, Imm::V),
        0xC2 | 0xCA => (false, Imm::W),
        0xC8 => (false, Imm::Enter),
        0xE8 | 0xE9 => (false, Imm::Z),
        _ => return None,
    })
}

/// The bytes of a memory or register operand from its ModRM byte at `c[0]` (with its SIB
/// byte and displacement), and the displacement of a RIP-relative one.
fn operand(c: &[u8]) -> Option<(usize, Option<i32>)> {
    let m = *c.first()?;
    let mut p = 1;
    let (md, rm) = (m >> 6, m & 7);
    if md == 3 {
        return Some((p, None));
    }
    let mut rip_disp = None;
    let mut disp = match md {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if rm == 4 {
        let sib = *c.get(p)?;
        p += 1;
        if md == 0 && sib & 7 == 5 {
            disp = 4;
        }
    } else if md == 0 && rm == 5 {
        rip_disp = Some(i32::from_le_bytes(c.get(p..p + 4)?.try_into().ok()?));
        disp = 4;
    }
    Some((p + disp, rip_disp))
}

/// Targets of the direct calls (`CALL rel32`) in `code` (which starts at `entry`), in code
/// order; stops at the first instruction that cannot be decoded.
pub(crate) fn direct_calls(code: &[u8], entry: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    for _ in 0..MAX_INSNS {
        let Some(insn) = code.get(pos..).and_then(decode) else {
            break;
        };
        let next = entry + (pos + insn.len) as u64;
        if insn.len == 5 && code[pos] == 0xE8 {
            let rel = i32::from_le_bytes(code[pos + 1..pos + 5].try_into().unwrap());
            out.push(next.wrapping_add(rel as i64 as u64));
        }
        pos += insn.len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86(bytes: &[u8]) -> (usize, Option<i32>) {
        let i = decode(bytes).unwrap_or_else(|| panic!("cannot decode {bytes:02x?}"));
        (i.len, i.rip_disp)
    }

    #[test]
    fn amd64_lengths_and_rip_operands() {
        // MOVL 0x90(AX), CX
        assert_eq!(x86(&[0x8b, 0x88, 0x90, 0, 0, 0]), (6, None));
        // LEAQ runtime.allglock(SB), AX
        assert_eq!(
            x86(&[0x48, 0x8d, 0x05, 0x10, 0x20, 0x30, 0x00]),
            (7, Some(0x302010))
        );
        // MOVQ runtime.allgs+16(SB), CX
        assert_eq!(
            x86(&[0x48, 0x8b, 0x0d, 0xf8, 0xff, 0xff, 0xff]),
            (7, Some(-8))
        );
        // CMPL runtime.writeBarrier(SB), $0: the immediate follows the displacement.
        assert_eq!(x86(&[0x83, 0x3d, 0x01, 0, 0, 0, 0x00]), (7, Some(1)));
        // CMPQ runtime.allgptr(SB), BX
        assert_eq!(x86(&[0x48, 0x39, 0x1d, 4, 0, 0, 0]), (7, Some(4)));
        // XCHGQ BX, 0(CX)
        assert_eq!(x86(&[0x48, 0x87, 0x19]), (3, None));
        // CALL rel32; JMP rel8; JCC rel32
        assert_eq!(x86(&[0xe8, 1, 2, 3, 4]), (5, None));
        assert_eq!(x86(&[0xeb, 0x10]), (2, None));
        assert_eq!(x86(&[0x0f, 0x84, 1, 0, 0, 0]), (6, None));
        // MOVQ FS:0xfffffff8, R14 (SIB with no base)
        assert_eq!(
            x86(&[0x64, 0x4c, 0x8b, 0x34, 0x25, 0xf8, 0xff, 0xff, 0xff]),
            (9, None)
        );
        // XORPS X15, X15; MOVUPS X15, 0x10(SP)
        assert_eq!(x86(&[0x45, 0x0f, 0x57, 0xff]), (4, None));
        assert_eq!(x86(&[0x44, 0x0f, 0x11, 0x7c, 0x24, 0x10]), (6, None));
        // MOVQ $imm64, AX; MOVL $imm32, AX; MOVW $imm16 with 0x66
        assert_eq!(x86(&[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]), (10, None));
        assert_eq!(x86(&[0xb8, 1, 2, 3, 4]), (5, None));
        assert_eq!(x86(&[0x66, 0xc7, 0x05, 0, 0, 0, 0, 1, 2]), (9, Some(0)));
        // TESTB $1, AL vs NOTQ AX (group 3)
        assert_eq!(x86(&[0xf6, 0xc0, 0x01]), (3, None));
        assert_eq!(x86(&[0x48, 0xf7, 0xd0]), (3, None));
        // NOPW 0(AX)(AX*1); INT3
        assert_eq!(x86(&[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]), (6, None));
        assert_eq!(x86(&[0xcc]), (1, None));
        // LOCK XCHG, VEX vmovdqu (c5 fe 6f 06)
        assert_eq!(x86(&[0xf0, 0x48, 0x87, 0x05, 8, 0, 0, 0]), (8, Some(8)));
        assert_eq!(x86(&[0xc5, 0xfe, 0x6f, 0x06]), (4, None));
        // VZEROUPPER has no ModRM; VPCMPEQB; 3-byte VEX VPERMQ with imm8
        assert_eq!(x86(&[0xc5, 0xf8, 0x77]), (3, None));
        assert_eq!(x86(&[0xc5, 0xe5, 0x74, 0xc2]), (4, None));
        assert_eq!(x86(&[0xc4, 0xe3, 0xfd, 0x00, 0xc0, 0x4e]), (6, None));
        // Truncated and invalid encodings.
        assert_eq!(decode(&[0x48, 0x8b, 0x05, 1, 2]), None);
        assert_eq!(decode(&[0x06]), None);
        assert_eq!(decode(&[0x62, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn amd64_refs_follow_instruction_boundaries() {
        // At 0x1000: LEAQ x(SB), AX (7) ; CMPL y(SB), $0 (7) ; MOVQ z(SB), CX (7) ; RET ; INT3 INT3
        let code = [
            0x48, 0x8d, 0x05, 0x00, 0x01, 0x00, 0x00, //
            0x83, 0x3d, 0x00, 0x02, 0x00, 0x00, 0x00, //
            0x48, 0x8b, 0x0d, 0x00, 0x03, 0x00, 0x00, //
            0xc3, 0xcc, 0xcc,
        ];
        assert_eq!(
            data_refs(&code, 0x1000),
            Ok(vec![0x1007 + 0x100, 0x100e + 0x200, 0x1015 + 0x300])
        );
        assert_eq!(data_refs(&[0x90, 0x06], 0x2000), Err(0x2001));
    }
}
