//! One worker's UMEM: an anonymous mapping cut into equal frames, registered with the kernel
//! once and shared by all of the worker's sockets (XDP_SHARED_UMEM), so a frame received on
//! one interface is transmitted on another without a copy.
//!
//! Frames that user space owns sit on a free list of chunk addresses; the others are on a
//! fill, RX, TX or completion ring. [`FrameLedger`] counts the moves so a test can check that
//! no frame is ever lost.

use core::ptr::NonNull;

use xdpilone::{Umem as XUmem, UmemConfig};

use super::XskError;

/// Bytes per frame (chunk). The kernel puts received data at 256 bytes (XDP_PACKET_HEADROOM)
/// into the chunk, which is the headroom labels and VLAN tags are pushed into.
pub const FRAME_SIZE: u32 = 4096;
/// The kernel's headroom in front of received data (XDP_PACKET_HEADROOM).
pub const KERNEL_HEADROOM: u32 = 256;
/// The longest frame one chunk holds: the rest after the kernel's headroom.
pub const MAX_FRAME: u32 = FRAME_SIZE - KERNEL_HEADROOM;
/// Chunks in one jumbo region: consecutive chunks a multi-buffer frame is gathered into, so
/// the pipeline sees every frame as one slice.
pub const REGION_CHUNKS: u32 = 4;
/// Bytes of a jumbo region.
pub const REGION_SIZE: u32 = REGION_CHUNKS * FRAME_SIZE;
/// The longest frame a jumbo region holds after the same headroom as a chunk.
pub const MAX_JUMBO_FRAME: u32 = REGION_SIZE - KERNEL_HEADROOM;

/// An anonymous, page-aligned mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> Result<Mapping, XskError> {
        // SAFETY: an anonymous private mapping at an address the kernel picks; the result is
        // checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(XskError::UmemMap {
                bytes: len,
                source: std::io::Error::last_os_error(),
            });
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(XskError::UmemNull)?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and the mapping is unmapped once.
        // The kernel pins the pages it registered, so sockets still closing cannot fault.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Where the chunks of a UMEM are; between two loop iterations the totals add up to
/// [`Umem::frames`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameLedger {
    /// Owned by user space and idle (free list and idle jumbo regions).
    pub free: u64,
    /// Put on fill rings and not yet received back.
    pub in_fill: u64,
    /// Put on TX rings and not yet completed.
    pub in_tx: u64,
    /// Received pieces of a multi-buffer frame whose last piece has not arrived yet.
    pub held: u64,
}

impl FrameLedger {
    /// All chunks accounted for.
    pub fn total(&self) -> u64 {
        self.free + self.in_fill + self.in_tx + self.held
    }
}

/// A registered UMEM and its free list.
pub struct Umem {
    // Field order is drop order: the kernel registration goes before the memory.
    inner: XUmem,
    free: Vec<u64>,
    frames: u32,
    regions: u32,
    mapping: Mapping,
}

impl Umem {
    /// Maps and registers `frames` frames of [`FRAME_SIZE`] bytes, all on the free list, and
    /// after them `regions` jumbo regions of [`REGION_SIZE`] bytes (never on a fill ring);
    /// `ring_size` sizes each socket's fill and completion rings.
    pub fn new(frames: u32, regions: u32, ring_size: u32) -> Result<Umem, XskError> {
        let total = frames as usize * FRAME_SIZE as usize + regions as usize * REGION_SIZE as usize;
        let mapping = Mapping::new(total)?;
        let config = UmemConfig {
            fill_size: ring_size,
            complete_size: ring_size,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        let area = NonNull::slice_from_raw_parts(mapping.ptr, mapping.len);
        // SAFETY: `area` is the page-aligned mapping made above, valid for its whole length,
        // and `mapping` lives in the same struct, dropped after `inner` (field order).
        let inner = unsafe { XUmem::new(config, area) }.map_err(|e| XskError::UmemRegister {
            source: std::io::Error::from_raw_os_error(e.get_raw()),
        })?;
        let free = (0..u64::from(frames))
            .rev()
            .map(|i| i * u64::from(FRAME_SIZE))
            .collect();
        Ok(Umem {
            inner,
            free,
            frames,
            regions,
            mapping,
        })
    }

    /// The xdpilone handle, for creating sockets on it.
    pub(crate) fn inner(&self) -> &XUmem {
        &self.inner
    }

    /// Chunks in this UMEM, those of the jumbo regions included.
    pub fn frames(&self) -> u32 {
        self.frames + self.regions * REGION_CHUNKS
    }

    /// Jumbo regions.
    pub fn regions(&self) -> u32 {
        self.regions
    }

    /// The address of jumbo region 0; chunks from here on belong to regions.
    pub fn regions_base(&self) -> u64 {
        u64::from(self.frames) * u64::from(FRAME_SIZE)
    }

    /// The jumbo region an address is in, if any.
    #[inline]
    pub fn region_of(&self, addr: u64) -> Option<usize> {
        let off = addr.checked_sub(self.regions_base())?;
        let r = (off / u64::from(REGION_SIZE)) as usize;
        (r < self.regions as usize).then_some(r)
    }

    /// Jumbo region `r` as a byte slice.
    ///
    /// # Safety
    /// `r` must be below [`Umem::regions`], user space must own the region (it is not on a
    /// TX ring), and no other live slice may cover it.
    #[inline]
    pub(crate) unsafe fn region_mut<'a>(&self, r: usize) -> &'a mut [u8] {
        debug_assert!(r < self.regions as usize);
        let at = self.regions_base() as usize + r * REGION_SIZE as usize;
        // SAFETY: in bounds (the mapping holds `regions` regions after the frames) and
        // exclusively owned by the caller's contract above.
        unsafe {
            core::slice::from_raw_parts_mut(self.mapping.ptr.as_ptr().add(at), REGION_SIZE as usize)
        }
    }

    /// The free list: chunk base addresses user space owns.
    pub(crate) fn free_list(&mut self) -> &mut Vec<u64> {
        &mut self.free
    }

    /// Frames on the free list.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// The chunk base of any address inside a chunk.
    #[inline]
    pub fn chunk_of(addr: u64) -> u64 {
        addr & !u64::from(FRAME_SIZE - 1)
    }

    /// The chunk starting at `base` as a byte slice.
    ///
    /// # Safety
    /// `base` must be a chunk base of this UMEM (a multiple of [`FRAME_SIZE`] below the size)
    /// whose frame user space owns: it was read from an RX or completion ring or taken from
    /// the free list and is not on any ring, so the kernel does not write it meanwhile; and no
    /// other live slice may cover the same chunk.
    #[inline]
    pub(crate) unsafe fn chunk_mut<'a>(&self, base: u64) -> &'a mut [u8] {
        debug_assert!(base.is_multiple_of(u64::from(FRAME_SIZE)) && base < self.regions_base());
        // SAFETY: in bounds and exclusively owned by the caller's contract above.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.mapping.ptr.as_ptr().add(base as usize),
                FRAME_SIZE as usize,
            )
        }
    }

    /// Asks the CPU to start loading the cache line at `addr` (a frame's first bytes) without
    /// waiting for it. An address outside the UMEM is ignored.
    ///
    /// Why: the kernel copies a received frame into the UMEM on the CPU that ran the sender's
    /// transmit (on veth, the generator's core), so the worker's first read of each header is
    /// a miss on another core's cache. In the pps harness (P0s1, swap, 64 bytes) perf put 90%
    /// of `process_batch`'s samples on that one load, about a quarter of the worker's time.
    /// Prefetching every frame of a batch before processing any lets those misses overlap.
    #[inline]
    pub(crate) fn prefetch(&self, addr: u64) {
        if addr >= self.mapping.len as u64 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `addr` is inside the mapping (checked above), so the pointer is in
            // bounds of one allocation; a prefetch neither reads nor writes memory as far as
            // the program is concerned, so it cannot race the kernel or another slice.
            unsafe {
                let p = self.mapping.ptr.as_ptr().add(addr as usize);
                core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
            }
        }
    }

    /// Whether `addr` lies in this UMEM (a check on what the kernel hands back).
    #[inline]
    pub fn contains(&self, addr: u64) -> bool {
        addr < self.mapping.len as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_of_rounds_down_to_the_frame() {
        assert_eq!(Umem::chunk_of(0), 0);
        assert_eq!(Umem::chunk_of(256), 0);
        assert_eq!(Umem::chunk_of(4096 + 300), 4096);
        assert_eq!(Umem::chunk_of(3 * 4096 - 1), 2 * 4096);
    }
}
