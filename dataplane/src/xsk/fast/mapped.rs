//! An mmapable BPF array (`BPF_F_MMAPABLE`) mapped into userspace, so the fast path writes
//! its big tables (the IPv4 arenas, FECs, adjacencies) with a copy instead of one syscall per
//! element. aya has no API for this (0.14), hence this small wrapper around mmap(2).

use std::os::fd::{AsFd, AsRawFd};

use aya::maps::{Map, MapData};

/// A whole array map mapped shared and writable; unmapped on drop.
pub(super) struct Mapped {
    ptr: *mut u8,
    len: usize,
    /// Bytes from one element to the next: the value size rounded up to 8.
    stride: usize,
    /// Elements.
    entries: usize,
}

// SAFETY: the mapping is plain memory owned by this value; only `&mut self` writes it.
unsafe impl Send for Mapped {}

impl Mapped {
    /// Maps the array `map` (which must have been created with `BPF_F_MMAPABLE`).
    pub(super) fn new(map: &Map) -> Result<Mapped, String> {
        let Map::Array(data) = map else {
            return Err("not an array map".into());
        };
        Mapped::of(data)
    }

    fn of(data: &MapData) -> Result<Mapped, String> {
        let info = data.info().map_err(|e| e.to_string())?;
        let stride = (info.value_size() as usize).next_multiple_of(8);
        let entries = info.max_entries() as usize;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        let len = (stride * entries).next_multiple_of(page);
        let fd = data.fd().as_fd().as_raw_fd();
        // SAFETY: a fresh shared mapping of the map's data, which the kernel sizes to at least
        // `len` for an mmapable array; nothing else in this process aliases it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(format!("mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(Mapped {
            ptr: ptr.cast(),
            len,
            stride,
            entries,
        })
    }

    /// The array as u32 words back to back: for an array of u64 elements, two words each
    /// (the lower one first on a little-endian machine, as the program reads them).
    pub(super) fn words(&mut self) -> &mut [u32] {
        debug_assert_eq!(self.stride, 8);
        // SAFETY: the mapping is `len` bytes, page aligned, and only reachable through
        // `&mut self`; any bit pattern is a valid u32.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.cast::<u32>(), self.entries * self.stride / 4)
        }
    }

    /// The array as elements of `T`, whose size must be the stride (a multiple of 8).
    pub(super) fn elements<T: aya::Pod>(&mut self) -> &mut [T] {
        assert_eq!(std::mem::size_of::<T>(), self.stride, "element size");
        // SAFETY: as in `words`: `T` is plain data of exactly the element size, and the
        // mapping is page aligned, so every element is aligned for it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<T>(), self.entries) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `of` made; nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
