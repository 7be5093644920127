//! Target access: one small trait for "memory I can read", and the backends behind it.
//!
//! Everything past the frozen window reads through [`MemoryReader`], never through ptrace, so
//! the same walk and unwinder run on a live process's copied image and on a core file
//! ([`core::SplicedMemory`]).

pub mod core;
pub mod files;
pub mod image;
pub mod live;
pub mod ns;
pub mod proc;
pub mod turn;

use crate::arch::Regs;
use std::fmt;

/// A failed read of target memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadError {
    /// First address asked for.
    pub addr: u64,
    /// Number of bytes asked for.
    pub len: u64,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read {} bytes of target memory at {:#x}",
            self.len, self.addr
        )
    }
}

impl std::error::Error for ReadError {}

/// Something that copies ranges of a target's memory into a [`MemoryImage`](image::MemoryImage):
/// the live process (batched `process_vm_readv`), a core's memory, `()` (nothing: the reader
/// already holds everything), or a function doing one of these.
pub trait CopyInto {
    /// Copies what can be read of each `(address, length)` range into `image`; what cannot
    /// be read is left out (the image then has a hole there).
    fn copy_into(&self, ranges: &[(u64, u64)], image: &mut image::MemoryImage);

    /// Reads the bytes at each piece's address into its buffer, a buffer the caller already
    /// holds (its pages already faulted in); whether every byte of every piece was read.
    fn read_in_place(&self, pieces: &mut [(u64, &mut [u8])]) -> bool {
        pieces.iter_mut().all(|(addr, buf)| {
            let mut img = image::MemoryImage::new();
            self.copy_into(&[(*addr, buf.len() as u64)], &mut img);
            match img.slice(*addr, buf.len() as u64) {
                Some(b) => {
                    buf.copy_from_slice(b);
                    true
                }
                None => false,
            }
        })
    }
}

impl CopyInto for () {
    fn copy_into(&self, _: &[(u64, u64)], _: &mut image::MemoryImage) {}
}

impl<F: Fn(&[(u64, u64)], &mut image::MemoryImage)> CopyInto for F {
    fn copy_into(&self, ranges: &[(u64, u64)], image: &mut image::MemoryImage) {
        self(ranges, image)
    }
}

/// Something whose memory can be read: a live process, a copied image, a core file.
pub trait MemoryReader {
    /// Fills `buf` with the bytes at `addr`; all of them or an error.
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError>;

    /// `[addr, addr+len)` without a copy, when the reader holds it in one piece.
    fn slice(&self, _addr: u64, _len: u64) -> Option<&[u8]> {
        None
    }
}

impl<T: MemoryReader + ?Sized> MemoryReader for &T {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        (**self).read_at(addr, buf)
    }
    fn slice(&self, addr: u64, len: u64) -> Option<&[u8]> {
        (**self).slice(addr, len)
    }
}

/// Reads `[lo, lo + bytes.len())` from `bytes` and anything else from `rest`: one goroutine's
/// stack read by the unwinder without a lookup in the whole image for every word.
pub struct Windowed<'a, M: ?Sized> {
    /// Address of `bytes[0]`.
    pub lo: u64,
    /// The window's bytes.
    pub bytes: &'a [u8],
    /// Everything else.
    pub rest: &'a M,
}

impl<M: MemoryReader + ?Sized> MemoryReader for Windowed<'_, M> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        if let Some(off) = addr.checked_sub(self.lo)
            && let Ok(off) = usize::try_from(off)
            && let Some(b) = off
                .checked_add(buf.len())
                .and_then(|end| self.bytes.get(off..end))
        {
            buf.copy_from_slice(b);
            return Ok(());
        }
        self.rest.read_at(addr, buf)
    }
    fn slice(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.rest.slice(addr, len)
    }
}

/// Reads from the first reader that has the bytes: a frozen copy first, the target itself
/// after it (for data read after the thaw).
pub struct Layered<A, B>(pub A, pub B);

impl<A: MemoryReader, B: MemoryReader> MemoryReader for Layered<A, B> {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        self.0
            .read_at(addr, buf)
            .or_else(|_| self.1.read_at(addr, buf))
    }
    fn slice(&self, addr: u64, len: u64) -> Option<&[u8]> {
        self.0.slice(addr, len).or_else(|| self.1.slice(addr, len))
    }
}

/// Fixed-width little-endian reads on top of [`MemoryReader`] (both supported arches are LE).
pub trait ReadExt: MemoryReader {
    /// Reads a `u8`.
    fn read_u8(&self, addr: u64) -> Result<u8, ReadError> {
        let mut b = [0u8; 1];
        self.read_at(addr, &mut b)?;
        Ok(b[0])
    }
    /// Reads a little-endian `u32`.
    fn read_u32(&self, addr: u64) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.read_at(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// Reads a little-endian `u64` (also a pointer: both arches are 64-bit).
    fn read_u64(&self, addr: u64) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read_at(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// Reads an unsigned integer of `size` bytes (1, 2, 4 or 8).
    fn read_uint(&self, addr: u64, size: u64) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        let n = size.min(8) as usize;
        self.read_at(addr, &mut b[..n])?;
        Ok(u64::from_le_bytes(b))
    }
}

impl<T: MemoryReader + ?Sized> ReadExt for T {}

/// One thread of the target, stopped, with its registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadState {
    /// Linux thread id.
    pub tid: i32,
    /// Decoded registers.
    pub regs: Regs,
    /// The whole general-purpose register set as read, word by word (`user_regs_struct` /
    /// `user_pt_regs`; empty when not read): DWARF's register numbers index it through
    /// [`crate::arch::Arch::dwarf_reg`].
    pub words: Vec<u64>,
    /// The floating-point register set as read (`NT_PRFPREG`), when read: only for threads
    /// running a goroutine, and only when values are asked for (a core's note otherwise);
    /// [`crate::arch::Arch::dwarf_fp_reg`] reads it.
    pub fp: Vec<u8>,
}
