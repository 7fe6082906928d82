//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum is the ones'-complement of the ones'-complement sum of the data taken
//! as big-endian 16-bit words. It is split in two steps so that pieces can be summed
//! separately and added (a pseudo-header plus a payload, say): [`sum`] adds words
//! without folding, [`fold`] folds the carries back in and complements. IPv4 headers
//! and ICMPv4 messages use it; the IPv4 TTL rewrite on the forwarding path uses
//! [`update`] so that it touches one word instead of re-reading the header.

/// Adds `data` as big-endian 16-bit words and returns the unfolded sum.
///
/// An odd trailing byte is padded with a zero byte on the right (RFC 1071 §4.1).
/// Results of several calls may be added together (with ordinary `+`, as long as the
/// total stays below 2^32, i.e. for less than about 128 KiB of data in all) before
/// passing the total to [`fold`]. For a single input longer than 131 070 bytes the
/// carries are end-around folded into 32 bits, which leaves the ones'-complement
/// result unchanged.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    // A u64 accumulator cannot overflow for any slice that fits in memory.
    let mut acc: u64 = 0;
    for word in &mut words {
        acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    // 2^32 is congruent to 1 modulo 0xffff, so adding the high half to the low half
    // preserves the ones'-complement value. Two rounds always reach 32 bits.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// The unfolded [`sum`] of the IPv6 pseudo-header (RFC 8200 §8.1) for an upper-layer
/// packet of `len` bytes with protocol `next_header` between `src` and `dst`: add it to the
/// sum of the packet itself before [`fold`].
#[inline]
pub fn ipv6_pseudo_header(
    src: &core::net::Ipv6Addr,
    dst: &core::net::Ipv6Addr,
    next_header: u8,
    len: u32,
) -> u32 {
    // 16 words of at most 0xffff and three more: far below 2^32.
    sum(&src.octets()) + sum(&dst.octets()) + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

/// Folds a [`sum`] to 16 bits and returns its complement: the value to write in a checksum field.
///
/// The returned value is **complemented** (`!folded`). So:
/// - to fill a checksum, zero the field, then store `fold(sum(bytes))`;
/// - to verify one, `fold(sum(bytes_including_the_field)) == 0` means correct.
///
/// Data that sums to zero (all zero bytes) yields `0xffff`, never `0x0000`.
#[inline]
pub const fn fold(sum: u32) -> u16 {
    // Two rounds suffice: after the first the value is at most 0x1_fffe, after the
    // second at most 0xffff.
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// Returns the checksum after one 16-bit word covered by it changed from `old_word` to `new_word`.
///
/// Implements RFC 1624 eqn. 3, `HC' = ~(~HC + ~m + m')`, which (unlike eqn. 2 of
/// RFC 1141) never produces `0xffff` where a full recomputation gives `0x0000`.
/// `old_checksum` and the result are the values as stored in the header (already
/// complemented), so the result can be written back directly.
#[inline]
pub const fn update(old_checksum: u16, old_word: u16, new_word: u16) -> u16 {
    fold((!old_checksum) as u32 + (!old_word) as u32 + new_word as u32)
}

/// The checksum of `data`, `fold(sum(data))`, computed over 32-bit words.
///
/// Big-endian 32-bit words add up to the same ones'-complement value as their 16-bit halves
/// (2^16 is congruent to 1 modulo 0xffff), so a 20-byte IPv4 header takes five additions
/// instead of ten. A header whose checksum field is correct gives 0.
#[inline]
pub fn compute(data: &[u8]) -> u16 {
    // A u64 accumulator cannot overflow for any slice that fits in memory.
    let mut acc: u64 = 0;
    // The first 20 bytes (an IPv4 header without options) as five straight-line additions:
    // the loop below costs several instructions a word more (callgrind).
    let rest = match data.split_first_chunk::<20>() {
        Some((head, rest)) => {
            for w in head.as_chunks::<4>().0 {
                acc += u64::from(u32::from_be_bytes(*w));
            }
            rest
        }
        None => data,
    };
    let mut words = rest.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    acc += u64::from(sum(words.remainder()));
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    fold(acc as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 1071 §3 numerical example: the bytes 00 01 f2 03 f4 f5 f6 f7.
    static RFC1071_EXAMPLE: [u8; 8] = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];

    #[test]
    fn rfc1071_example() {
        // The RFC adds to 2ddf0 and folds to ddf2; the checksum is its complement.
        assert_eq!(sum(&RFC1071_EXAMPLE), 0x2ddf0);
        assert_eq!(fold(sum(&RFC1071_EXAMPLE)), !0xddf2);
        assert_eq!(fold(sum(&RFC1071_EXAMPLE)), 0x220d);
    }

    #[test]
    fn odd_length_pads_on_the_right() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x00, 0x01, 0xab]), 0x0001 + 0xab00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn zero_data_checksums_to_all_ones() {
        assert_eq!(fold(sum(&[0; 20])), 0xffff);
        assert_eq!(fold(0), 0xffff);
        assert_eq!(fold(0xffff), 0x0000);
        assert_eq!(fold(0xffff_ffff), 0x0000);
    }

    #[test]
    fn verifying_a_filled_checksum_gives_zero() {
        let mut data = RFC1071_EXAMPLE;
        data[2..4].copy_from_slice(&[0, 0]);
        let ck = fold(sum(&data));
        data[2..4].copy_from_slice(&ck.to_be_bytes());
        assert_eq!(fold(sum(&data)), 0);
    }

    #[test]
    fn rfc1624_section4_example() {
        // RFC 1624 §4: the other header words sum to 0xcd7a, a field changes from
        // 0x5555 to 0x3285. The old checksum is 0xdd2f and the new one must be 0x0000
        // (eqn. 2 would give 0xffff).
        let old = fold(0xcd7a + 0x5555);
        assert_eq!(old, 0xdd2f);
        assert_eq!(fold(0xcd7a + 0x3285), 0x0000);
        assert_eq!(update(old, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn long_input_does_not_overflow() {
        let data = [0xffu8; 300_000];
        // 150 000 words of 0xffff: ones'-complement "negative zero", checksum 0.
        assert_eq!(fold(sum(&data)), 0);
    }

    proptest! {
    /// `compute` is `fold(sum(..))` for every input, odd lengths included.
    #[test]
    fn compute_agrees_with_fold_of_sum(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(compute(&data), fold(sum(&data)));
    }

        #[test]
        fn matches_etherparse(data in prop::collection::vec(any::<u8>(), 0..200)) {
            // etherparse sums native-endian words and swaps once at the end (RFC 1071
            // §2(B) byte-order independence), as its own header code does with `to_be`.
            let reference = etherparse::checksum::Sum16BitWords::new()
                .add_slice(&data)
                .ones_complement()
                .to_be();
            prop_assert_eq!(fold(sum(&data)), reference);
        }

        #[test]
        fn sums_of_pieces_add_up(data in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..100) {
            // Splitting at an even offset keeps every word intact.
            let cut = (cut * 2).min(data.len() & !1);
            prop_assert_eq!(fold(sum(&data[..cut]) + sum(&data[cut..])), fold(sum(&data)));
        }

        #[test]
        fn update_matches_recomputation(
            mut words in prop::collection::vec(any::<u16>(), 1..40),
            index in any::<prop::sample::Index>(),
            new_word in any::<u16>(),
        ) {
            let i = index.index(words.len());
            let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
            let old_ck = fold(sum(&bytes(&words)));
            let old_word = words[i];
            words[i] = new_word;
            let full = fold(sum(&bytes(&words)));
            let incremental = update(old_ck, old_word, new_word);
            let all_zero_before = words.iter().enumerate().all(|(j, w)| if j == i { old_word == 0 } else { *w == 0 });
            let all_zero_after = words.iter().all(|w| *w == 0);
            if all_zero_before || all_zero_after {
                // Only all-zero data has a checksum of 0xffff, the other representation
                // of ones'-complement zero; the two results are then equal modulo 0xffff.
                prop_assert_eq!(full % 0xffff, incremental % 0xffff);
            } else {
                prop_assert_eq!(full, incremental);
            }
        }
    }
}
