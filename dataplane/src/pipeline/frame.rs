//! A frame in a buffer with headroom, so labels and VLAN tags are pushed by moving its start.

/// A frame at `buf[start..]`; the bytes before `start` are headroom.
///
/// `buf` ends where the frame ends (truncation shortens the slice itself), so the frame is
/// one range check away: every accessor on the per-packet path costs a compare, not two.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The buffer up to the end of the frame. Invariant: `start <= buf.len()`.
    buf: &'a mut [u8],
    start: usize,
}

impl Default for Frame<'_> {
    /// An empty frame in an empty buffer (a placeholder in a batch array).
    fn default() -> Self {
        Frame {
            buf: Default::default(),
            start: 0,
        }
    }
}

impl<'a> Frame<'a> {
    /// The frame `buf[start..start + len]`; `None` if that does not fit in `buf`.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        let buf = buf.get_mut(..end)?;
        Some(Frame { buf, start })
    }
    /// The frame bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    /// The frame bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
    /// Frame length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }
    /// Whether the frame is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Offset of the frame in its buffer (the headroom left).
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }
    /// Replaces the first `old` bytes with `new` bytes of unspecified content, by moving the
    /// frame start; returns false (and changes nothing) if `old > len` or the headroom is short.
    #[inline]
    pub fn resize_head(&mut self, old: usize, new: usize) -> bool {
        if old > self.len() || self.start + old < new {
            return false;
        }
        self.start = self.start + old - new;
        true
    }
    /// Cuts the frame to `len` bytes (Ethernet padding after an IP packet is not forwarded).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            let buf = core::mem::take(&mut self.buf);
            self.buf = buf.get_mut(..self.start + len).unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_start_within_headroom_only() {
        let mut buf = [0u8; 64];
        let mut f = Frame::new(&mut buf, 8, 32).unwrap();
        assert!(f.resize_head(14, 22));
        assert_eq!((f.start(), f.len()), (0, 40));
        assert!(!f.resize_head(0, 1), "no headroom left");
        assert!(f.resize_head(22, 4));
        assert_eq!((f.start(), f.len()), (18, 22));
        assert!(!f.resize_head(23, 0), "cannot drop more than the frame");
        f.truncate(10);
        assert_eq!(f.len(), 10);
        assert!(Frame::new(&mut buf, 60, 5).is_none());
    }
}
