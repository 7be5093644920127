//! The two architectures goroscope reads, register sets decoded from raw bytes, and the
//! machine-code decoders ([`amd64`], [`arm64`]) that find data addresses and calls in a
//! function's code (stripped binaries' discovery).
//!
//! Register sets arrive as the kernel lays them out (`user_regs_struct` on x86_64,
//! `user_pt_regs` on arm64); the same bytes are in `PTRACE_GETREGSET(NT_PRSTATUS)` and in a
//! core file's `NT_PRSTATUS` note, so both backends share this decoder and the arm64 path is
//! tested on any host.

pub mod amd64;
pub mod arm64;

use std::fmt;

/// Most instructions the machine-code decoders read in one function.
pub(crate) const MAX_INSNS: usize = 16 << 10;

/// A target architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86_64 / amd64.
    Amd64,
    /// aarch64 / arm64.
    Arm64,
}

impl Arch {
    /// The architecture goroscope itself was built for, if it can trace it.
    pub fn host() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::Amd64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Arm64)
        } else {
            None
        }
    }

    /// Size of a pointer in bytes.
    pub fn ptr_size(self) -> u64 {
        8
    }

    /// The pc quantum (minimum instruction size), `sys.PCQuantum`.
    pub(crate) fn pc_quantum(self) -> u64 {
        match self {
            Arch::Amd64 => 1,
            Arch::Arm64 => 4,
        }
    }

    /// Whether calls leave the return address in a link register (`sys.usesLR`).
    pub(crate) fn uses_lr(self) -> bool {
        matches!(self, Arch::Arm64)
    }

    /// `sys.MinFrameSize`: the space a frame reserves below its arguments for the saved LR.
    pub(crate) fn min_frame_size(self) -> u64 {
        match self {
            Arch::Amd64 => 0,
            Arch::Arm64 => 8,
        }
    }

    /// The register DWARF numbers `n` (amd64: 0 RAX, 1 RDX, 2 RCX, 3 RBX, 4 RSI, 5 RDI, 6 RBP,
    /// 7 RSP, 8–15 R8–R15, 16 RIP; arm64: 0–30 X0–X30, 31 SP), from the raw register set's
    /// words; `None` for the others (floating-point and vector registers are not in it).
    pub(crate) fn dwarf_reg(self, words: &[u64], n: u16) -> Option<u64> {
        // Word index in user_regs_struct of each amd64 DWARF register.
        const AMD64: [usize; 17] = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0, 16];
        let i = match self {
            Arch::Amd64 => *AMD64.get(usize::from(n))?,
            Arch::Arm64 if n <= 31 => usize::from(n),
            Arch::Arm64 => return None,
        };
        words.get(i).copied()
    }

    /// The low eight bytes of the floating-point or vector register DWARF numbers `n` (amd64:
    /// 17–32 XMM0–XMM15; arm64: 64–95 V0–V31), from the raw floating-point register set
    /// (`NT_PRFPREG`: amd64's `user_fpregs_struct`, its XMM registers from byte 160; arm64's
    /// `user_fpsimd_state`, its V registers from byte 0), sixteen bytes each; `None` for the
    /// others. Go keeps a float in the low bytes.
    pub fn dwarf_fp_reg(self, fp: &[u8], n: u16) -> Option<u64> {
        let at = match self {
            Arch::Amd64 if (17..=32).contains(&n) => 160 + 16 * usize::from(n - 17),
            Arch::Arm64 if (64..=95).contains(&n) => 16 * usize::from(n - 64),
            _ => return None,
        };
        let b = fp.get(at..at + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// Size of the raw floating-point register set (`NT_PRFPREG`).
    pub fn fp_regset_size(self) -> usize {
        match self {
            // user_fpregs_struct: the FXSAVE area.
            Arch::Amd64 => 512,
            // user_fpsimd_state: 32 V registers, fpsr, fpcr, padding.
            Arch::Arm64 => 528,
        }
    }

    /// Where the kernel saved the registers a signal interrupted: the addresses of the saved
    /// pc, sp and link register (none on amd64). `top` is where the unwind of Go's signal
    /// handler ends, the stack pointer just above `runtime.sigtramp`'s frame, where the
    /// kernel's `rt_sigframe` lies. On amd64 that is its `ucontext` (the restorer's return
    /// address is the word below); on arm64 a 128-byte `siginfo` comes first. The registers
    /// are in the ucontext's `uc_mcontext`: at 40 on amd64 (`rsp`, `rip` its 16th and 17th
    /// words), at 176 on arm64 (after room for a 1024-bit signal mask, 16-byte aligned; its
    /// `regs[31]` follow `fault_address`, then `sp` and `pc`).
    pub(crate) fn interrupted_regs_at(self, top: u64) -> (u64, u64, Option<u64>) {
        match self {
            Arch::Amd64 => {
                let mc = top.wrapping_add(40);
                (mc.wrapping_add(16 * 8), mc.wrapping_add(15 * 8), None)
            }
            Arch::Arm64 => {
                let regs = top.wrapping_add(128 + 176 + 8);
                (
                    regs.wrapping_add(32 * 8),
                    regs.wrapping_add(31 * 8),
                    Some(regs.wrapping_add(30 * 8)),
                )
            }
        }
    }

    /// Size of the raw general-purpose register set (`user_regs_struct` / `user_pt_regs`).
    pub(crate) fn regset_size(self) -> usize {
        match self {
            Arch::Amd64 => 27 * 8,
            Arch::Arm64 => 34 * 8,
        }
    }

    /// The name Go uses (`GOARCH`).
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.go_name())
    }
}

/// The registers the unwinder and goroutine walk need, decoded from a raw register set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Regs {
    /// Program counter.
    pub pc: u64,
    /// Stack pointer.
    pub sp: u64,
    /// Frame pointer (rbp / x29).
    pub fp: u64,
    /// Link register (x30); 0 on amd64.
    pub lr: u64,
    /// The register Go code keeps the current g in (r14 on amd64, x28 on arm64).
    pub g: u64,
}

impl Regs {
    /// Decodes a raw `user_regs_struct` (amd64) or `user_pt_regs` (arm64), little-endian.
    /// Returns `None` when `raw` is too short.
    pub(crate) fn decode(arch: Arch, raw: &[u8]) -> Option<Regs> {
        if raw.len() < arch.regset_size() {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        Some(match arch {
            // r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ...
            Arch::Amd64 => Regs {
                pc: word(16),
                sp: word(19),
                fp: word(4),
                lr: 0,
                g: word(1),
            },
            // x0..x30, sp, pc, pstate
            Arch::Arm64 => Regs {
                pc: word(32),
                sp: word(31),
                fp: word(29),
                lr: word(30),
                g: word(28),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(words: &[(usize, u64)], n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n * 8];
        for &(i, w) in words {
            v[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        v
    }

    #[test]
    fn decodes_amd64() {
        let raw = blob(
            &[
                (16, 0x401000),
                (19, 0xc000010000),
                (4, 0xc000010040),
                (1, 0xc000002000),
            ],
            27,
        );
        let r = Regs::decode(Arch::Amd64, &raw).unwrap();
        assert_eq!(
            r,
            Regs {
                pc: 0x401000,
                sp: 0xc000010000,
                fp: 0xc000010040,
                lr: 0,
                g: 0xc000002000
            }
        );
    }

    #[test]
    fn decodes_arm64() {
        let raw = blob(
            &[
                (32, 0x71000),
                (31, 0x4000),
                (29, 0x4010),
                (30, 0x72000),
                (28, 0x9000),
            ],
            34,
        );
        let r = Regs::decode(Arch::Arm64, &raw).unwrap();
        assert_eq!(
            r,
            Regs {
                pc: 0x71000,
                sp: 0x4000,
                fp: 0x4010,
                lr: 0x72000,
                g: 0x9000
            }
        );
    }

    #[test]
    fn short_input_is_none() {
        assert!(Regs::decode(Arch::Arm64, &[0u8; 100]).is_none());
    }
}
