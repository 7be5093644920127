//! DWARF location expressions evaluated against one frame: its CFA (Go's frame base), the
//! registers when they are known (the innermost frame of a goroutine running on a stopped
//! thread) and memory.

use super::dwarf::R;
use crate::arch::Arch;
use crate::target::MemoryReader;
use gimli::{EvaluationResult, Location, Reader as _, Value};

/// Most operations one location expression may execute.
pub const MAX_EXPR_STEPS: u32 = 10_000;
/// Largest value assembled from pieces (bytes).
pub const MAX_PIECED: u64 = 1 << 16;

/// What a location expression needs to know of the frame.
pub struct FrameCtx<'a> {
    /// `DW_OP_call_frame_cfa`: the caller's stack pointer at the call (Go's frame pointer of
    /// the unwinder, `Frame::fp`).
    pub cfa: u64,
    /// The thread's general-purpose registers as the kernel lays them out, when known
    /// (looked up by DWARF number through [`Arch::dwarf_reg`]).
    pub regs: Option<&'a [u64]>,
    /// The thread's floating-point register set (`NT_PRFPREG`), when known (looked up through
    /// [`Arch::dwarf_fp_reg`]).
    pub fp: Option<&'a [u8]>,
    /// The architecture (register names).
    pub arch: Arch,
    /// Load bias: added to `DW_OP_addr` operands.
    pub bias: u64,
}

impl FrameCtx<'_> {
    /// The register DWARF numbers `n`: a general-purpose one, else the low bytes of a
    /// floating-point or vector one.
    fn reg(&self, n: u16) -> Option<u64> {
        let gp = self.regs.and_then(|w| self.arch.dwarf_reg(w, n));
        gp.or_else(|| self.fp.and_then(|b| self.arch.dwarf_fp_reg(b, n)))
    }
}

/// Where a variable's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// In memory at an address.
    Mem(u64),
    /// Assembled from pieces (registers, stack slots, constants).
    Bytes(Vec<u8>),
    /// Needs something this frame cannot give (a register of a parked goroutine).
    Unreadable(String),
    /// Not there at this pc.
    OptimizedOut,
}

/// A register's name, `RAX`-style, for messages.
pub fn reg_name(arch: Arch, r: u16) -> String {
    const AMD64: [&str; 17] = [
        "RAX", "RDX", "RCX", "RBX", "RSI", "RDI", "RBP", "RSP", "R8", "R9", "R10", "R11", "R12",
        "R13", "R14", "R15", "RIP",
    ];
    match arch {
        Arch::Amd64 if (r as usize) < AMD64.len() => AMD64[r as usize].into(),
        Arch::Amd64 if (17..33).contains(&r) => format!("X{}", r - 17),
        Arch::Arm64 if r <= 30 => format!("R{r}"),
        Arch::Arm64 if r == 31 => "SP".into(),
        Arch::Arm64 if (64..96).contains(&r) => format!("F{}", r - 64),
        _ => format!("register {r}"),
    }
}

/// Evaluates `expr` for a variable of `size` bytes.
pub fn eval(
    expr: &gimli::Expression<R>,
    encoding: gimli::Encoding,
    size: u64,
    f: &FrameCtx<'_>,
    mem: &dyn MemoryReader,
) -> Located {
    // An empty expression: the compiler kept the variable nowhere (Go writes one for results
    // not yet set).
    if expr.0.is_empty() {
        return Located::OptimizedOut;
    }
    let mut ev = expr.clone().evaluation(encoding);
    ev.set_max_iterations(MAX_EXPR_STEPS);
    let bad = |e: gimli::Error| Located::Unreadable(format!("bad location expression: {e}"));
    let mut r = match ev.evaluate() {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    loop {
        let next = match r {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresCallFrameCfa => ev.resume_with_call_frame_cfa(f.cfa),
            // Go's frame base is DW_OP_call_frame_cfa.
            EvaluationResult::RequiresFrameBase => ev.resume_with_frame_base(f.cfa),
            EvaluationResult::RequiresRelocatedAddress(a) => {
                ev.resume_with_relocated_address(a.wrapping_add(f.bias))
            }
            EvaluationResult::RequiresRegister { register, .. } => match f.reg(register.0) {
                Some(v) => ev.resume_with_register(Value::Generic(v)),
                None => {
                    return Located::Unreadable(format!(
                        "needs register {}",
                        reg_name(f.arch, register.0)
                    ));
                }
            },
            EvaluationResult::RequiresMemory { address, size, .. } => {
                let mut b = [0u8; 8];
                let n = (size as usize).min(8);
                if let Err(e) = mem.read_at(address, &mut b[..n]) {
                    return Located::Unreadable(e.to_string());
                }
                ev.resume_with_memory(Value::Generic(u64::from_le_bytes(b)))
            }
            other => {
                return Located::Unreadable(format!("unsupported location expression ({other:?})"));
            }
        };
        r = match next {
            Ok(r) => r,
            Err(e) => return bad(e),
        };
    }
    pieces(&ev.result(), size, f, mem)
}

/// The pieces of an evaluated location as one place.
fn pieces(ps: &[gimli::Piece<R>], size: u64, f: &FrameCtx<'_>, mem: &dyn MemoryReader) -> Located {
    if let [p] = ps
        && p.size_in_bits.is_none()
    {
        return match &p.location {
            Location::Address { address } => Located::Mem(*address),
            Location::Empty => Located::OptimizedOut,
            _ if size > 8 => {
                Located::Unreadable(format!("a {size}-byte value in one register or constant"))
            }
            loc => match piece_bytes(loc, size, f, mem) {
                Ok(b) => Located::Bytes(b),
                Err(e) => e,
            },
        };
    }
    if ps.is_empty() {
        return Located::OptimizedOut;
    }
    let mut out = Vec::new();
    for p in ps {
        let n = p.size_in_bits.map_or(size, |b| b / 8);
        if out.len() as u64 + n > MAX_PIECED {
            return Located::Unreadable("location pieces too large".into());
        }
        match piece_bytes(&p.location, n, f, mem) {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => return e,
        }
    }
    // Some Go versions describe a value with more pieces than it has words (1.19–1.21 repeat
    // a piece): such a location cannot be trusted.
    if out.len() as u64 != size {
        return Located::Unreadable(format!(
            "the DWARF location's pieces ({} bytes) do not match the type's size ({size} bytes)",
            out.len()
        ));
    }
    Located::Bytes(out)
}

fn piece_bytes(
    loc: &Location<R>,
    n: u64,
    f: &FrameCtx<'_>,
    mem: &dyn MemoryReader,
) -> Result<Vec<u8>, Located> {
    if n > MAX_PIECED {
        return Err(Located::Unreadable("location piece too large".into()));
    }
    let word = |v: u64| {
        let mut b = v.to_le_bytes().to_vec();
        b.resize(n as usize, 0);
        b
    };
    match loc {
        Location::Empty => Err(Located::OptimizedOut),
        Location::Address { address } => {
            let mut b = vec![0u8; n as usize];
            mem.read_at(*address, &mut b)
                .map_err(|e| Located::Unreadable(e.to_string()))?;
            Ok(b)
        }
        Location::Register { register } => match f.reg(register.0) {
            Some(v) if n <= 8 => Ok(word(v)),
            _ => Err(Located::Unreadable(format!(
                "needs register {}",
                reg_name(f.arch, register.0)
            ))),
        },
        Location::Value { value } => Ok(word(value.to_u64(u64::MAX).unwrap_or(0))),
        Location::Bytes { value } => {
            let mut b = value.to_slice().map(|s| s.to_vec()).unwrap_or_default();
            b.resize(n as usize, 0);
            Ok(b)
        }
        _ => Err(Located::Unreadable("unsupported location".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Windowed;
    use crate::target::image::MemoryImage;

    fn run(code: &[u8], size: u64, regs: Option<&[u64]>) -> Located {
        let enc = gimli::Encoding {
            address_size: 8,
            format: gimli::Format::Dwarf32,
            version: 4,
        };
        let bytes: std::sync::Arc<[u8]> = code.into();
        let x = gimli::Expression(gimli::EndianArcSlice::new(bytes, gimli::LittleEndian));
        let f = FrameCtx {
            cfa: 0x1010,
            regs,
            fp: None,
            arch: Arch::Amd64,
            bias: 0x10,
        };
        // Eight words from 0x1000: word i holds 0x100 + i.
        let words: Vec<u8> = (0..8u64).flat_map(|i| (0x100 + i).to_le_bytes()).collect();
        let none = MemoryImage::new();
        let mem = Windowed {
            lo: 0x1000,
            bytes: &words,
            rest: &none,
        };
        eval(&x, enc, size, &f, &mem)
    }

    const CFA: u8 = 0x9c;
    const FBREG: u8 = 0x91;
    const PIECE: u8 = 0x93;
    const REG0: u8 = 0x50;

    #[test]
    fn frame_relative_locations_are_read_from_the_cfa() {
        assert_eq!(run(&[CFA], 8, None), Located::Mem(0x1010));
        assert_eq!(run(&[FBREG, 8], 8, None), Located::Mem(0x1018));
        // fbreg -8 (sleb128 0x78)
        assert_eq!(run(&[FBREG, 0x78], 8, None), Located::Mem(0x1008));
        // DW_OP_addr gets the load bias.
        let mut addr = vec![0x03];
        addr.extend_from_slice(&0x2000u64.to_le_bytes());
        assert_eq!(run(&addr, 8, None), Located::Mem(0x2010));
    }

    #[test]
    fn pieces_are_assembled_and_unknown_registers_named() {
        // A string: pointer at fbreg+8, length at fbreg+16.
        let s = [FBREG, 8, PIECE, 8, FBREG, 16, PIECE, 8];
        let mut want = 0x103u64.to_le_bytes().to_vec();
        want.extend_from_slice(&0x104u64.to_le_bytes());
        assert_eq!(run(&s, 16, None), Located::Bytes(want));
        // The length in RBX: unknown for a parked goroutine, read when registers are known.
        let r = [FBREG, 8, PIECE, 8, REG0 + 3, PIECE, 8];
        assert_eq!(
            run(&r, 16, None),
            Located::Unreadable("needs register RBX".into())
        );
        // user_regs_struct: RBX is word 5.
        let mut words = [0u64; 27];
        words[5] = 42;
        let Located::Bytes(b) = run(&r, 16, Some(&words)) else {
            panic!("registers known")
        };
        assert_eq!(&b[8..], &42u64.to_le_bytes());
        assert_eq!(
            run(&[REG0], 8, None),
            Located::Unreadable("needs register RAX".into())
        );
    }

    #[test]
    fn what_is_not_there_is_never_guessed() {
        // No expression, an empty piece, a piece left out: optimized out.
        assert_eq!(run(&[], 8, None), Located::OptimizedOut);
        assert_eq!(run(&[PIECE, 8], 8, None), Located::OptimizedOut);
        assert_eq!(
            run(&[FBREG, 8, PIECE, 8, PIECE, 8], 16, None),
            Located::OptimizedOut
        );
        // More pieces than the type has bytes (Go 1.19–1.21 repeat a piece): unreadable.
        let dup = [FBREG, 8, PIECE, 8, FBREG, 8, PIECE, 8, FBREG, 16, PIECE, 8];
        assert!(matches!(run(&dup, 16, None), Located::Unreadable(_)));
        // A constant: DW_OP_lit5 DW_OP_stack_value.
        assert_eq!(
            run(&[0x35, 0x9f], 8, None),
            Located::Bytes(5u64.to_le_bytes().to_vec())
        );
        // Memory outside what can be read, garbage operations: unreadable, no panic.
        assert!(matches!(
            run(&[FBREG, 0x40, 0x06, PIECE, 8], 8, None),
            Located::Unreadable(_) | Located::Bytes(_)
        ));
        assert!(matches!(
            run(&[0xff, 0xfe], 8, None),
            Located::Unreadable(_)
        ));
        // A loop: bounded.
        assert!(matches!(
            run(&[0x2f, 0xfd, 0xff], 8, None),
            Located::Unreadable(_)
        ));
    }
}
