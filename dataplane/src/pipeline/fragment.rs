//! IPv4 fragmentation (RFC 791 §2.3 and §3.2, RFC 1812 §5.2.6): a frame whose IPv4 packet
//! without DF is too big for its egress port ([`Verdict::Fragment`]) is cut into fragments,
//! each a whole frame with the same link headers and labels. Pure bytes: the caller gives
//! each fragment a buffer of its own (a worker's free UMEM frame, a replay's capture).
//!
//! Written here rather than taken from a crate: the fragments must keep the frame's link
//! headers and label stack in front of each piece and go straight into AF_XDP buffers, and
//! the IPv4 crates at hand (etherparse) defragment but do not fragment.
//!
//! [`Verdict::Fragment`]: super::Verdict::Fragment

use super::counters::Counters;
use super::MAX_LABEL_DEPTH;
use crate::tables::PortId;
use crate::wire::ethernet::{self, EtherType};
use crate::wire::{ipv4, mpls, vlan};

/// The longest IPv4 header (IHL 15).
const MAX_HEADER: usize = 60;
/// IPv4 option types: end of list, no operation; the copied flag (RFC 791 §3.1).
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
const OPTION_COPIED: u8 = 0x80;

/// Cuts `frame` (Ethernet, maybe an 802.1Q tag, maybe labels, then an IPv4 packet) into
/// fragments whose labels and IP packet fit `port_mtu` (the egress port's MTU, which counts
/// labels and IP), and hands each to `out` in three parts: the headers before the IPv4
/// header, the fragment's IPv4 header, its data. `out` returns false when it has
/// no room, which ends the cut. The fragments made are counted on `port` and in
/// `counters.fragments`, those `out` had no room for in `fragments_dropped`. Returns how
/// many were handed over (0 for a frame that is not such a packet).
///
/// Every fragment but the last carries a multiple of 8 bytes; offsets continue those of a
/// packet that was a fragment already, and more-fragments stays set when it was. The first
/// fragment keeps every option; the others only those with the copied flag, the rest
/// overwritten with no-operation so that all headers have the same length (as Linux does).
pub fn fragment(
    frame: &[u8],
    port_mtu: usize,
    port: PortId,
    counters: &mut Counters,
    out: &mut dyn FnMut(&[&[u8]; 3]) -> bool,
) -> usize {
    let Some((l2, ip)) = ipv4_at(frame) else {
        return 0;
    };
    let mtu = port_mtu.saturating_sub(ip - l2);
    let (links, packet) = frame.split_at(ip);
    let Ok(view) = ipv4::Packet::new_checked(packet) else {
        return 0;
    };
    let ihl = view.header_len();
    let total = usize::from(view.total_len()).min(packet.len());
    if ihl > MAX_HEADER || mtu < ihl + 8 || total <= ihl {
        return 0;
    }
    let (offset, more) = (usize::from(view.frag_offset()), view.more_frags());
    let data = &packet[ihl..total];
    let mut first = [0u8; MAX_HEADER];
    first[..ihl].copy_from_slice(&packet[..ihl]);
    let mut others = first;
    strip_uncopied_options(&mut others[ipv4::HEADER_LEN..ihl]);
    let per = (mtu - ihl) & !7;
    let pieces = data.len().div_ceil(per);
    counters.fragmented += 1;
    let mut sent = 0;
    for (i, piece) in data.chunks(per).enumerate() {
        let mut header = if i == 0 { first } else { others };
        {
            let mut h = ipv4::Packet::new_unchecked(&mut header[..ihl]);
            h.set_total_len((ihl + piece.len()) as u16);
            h.set_dont_frag(false);
            h.set_more_frags(more || i + 1 < pieces);
            h.set_frag_offset((offset + i * per / 8) as u16);
            h.fill_checksum();
        }
        if !out(&[links, &header[..ihl], piece]) {
            counters.fragments_dropped += (pieces - i) as u64;
            break;
        }
        sent += 1;
        counters.fragments += 1;
        if let Some(p) = counters.ports.get_mut(usize::from(port.0)) {
            p.tx_packets += 1;
            p.tx_bytes += (ip + ihl + piece.len()) as u64;
        }
    }
    sent
}

/// Where the labels and the IPv4 header of a frame start: after Ethernet and one 802.1Q tag,
/// and after the label stack.
fn ipv4_at(frame: &[u8]) -> Option<(usize, usize)> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let (mut ethertype, mut at) = (eth.ethertype_raw(), ethernet::HEADER_LEN);
    if ethertype == EtherType::Vlan.to_u16() {
        ethertype = vlan::Tag::new_checked(eth.payload())
            .ok()?
            .inner_ethertype_raw();
        at += vlan::HEADER_LEN;
    }
    let l2 = at;
    if ethertype == EtherType::Mpls.to_u16() {
        at += mpls::stack_depth(frame.get(at..)?, MAX_LABEL_DEPTH).ok()? * mpls::HEADER_LEN;
    } else if ethertype != EtherType::Ipv4.to_u16() {
        return None;
    }
    Some((l2, at))
}

/// Overwrites the options without the copied flag with no-operation (RFC 791 §3.1: only
/// copied options go into every fragment).
fn strip_uncopied_options(options: &mut [u8]) {
    let mut i = 0;
    while i < options.len() {
        match options[i] {
            OPTION_END => break,
            OPTION_NOP => i += 1,
            kind => {
                let len = options
                    .get(i + 1)
                    .map_or(options.len() - i, |&l| usize::from(l).max(2))
                    .min(options.len() - i);
                if kind & OPTION_COPIED == 0 {
                    options[i..i + len].fill(OPTION_NOP);
                }
                i += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    /// An Ethernet + one label + IPv4 frame with `options` and `payload` bytes of data.
    fn frame(options: &[u8], payload: usize, frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x8847u16.to_be_bytes());
        f.extend_from_slice(&(16003u32 << 12 | 1 << 8 | 64).to_be_bytes());
        let ihl = 20 + options.len();
        let mut h = vec![0u8; 20];
        h[0] = 0x40 | (ihl / 4) as u8;
        h[2..4].copy_from_slice(&((ihl + payload) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = 63;
        h[9] = 17;
        h[12..16].copy_from_slice(&[198, 19, 20, 5]);
        h[16..20].copy_from_slice(&[198, 18, 10, 7]);
        h.extend_from_slice(options);
        let sum = checksum::fold(checksum::sum(&h));
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend((0..payload).map(|i| i as u8));
        f
    }

    fn cut(f: &[u8], mtu: usize, room: usize) -> (Vec<Vec<u8>>, Counters) {
        let mut c = Counters::new(1);
        let mut got = Vec::new();
        // One label: the port's MTU counts it.
        fragment(f, mtu + 4, PortId(0), &mut c, &mut |parts| {
            if got.len() == room {
                return false;
            }
            got.push(parts.concat());
            true
        });
        (got, c)
    }

    #[test]
    fn pieces_are_multiples_of_eight_and_put_back_together() {
        let f = frame(&[], 3000, 0);
        let (got, c) = cut(&f, 1500, 99);
        assert_eq!(got.len(), 3);
        let mut data = Vec::new();
        for (i, g) in got.iter().enumerate() {
            assert_eq!(&g[..18], &f[..18], "the same link header and label");
            let ip = ipv4::Packet::new_checked(&g[18..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.ident(), 0x1234);
            assert_eq!(usize::from(ip.frag_offset()) * 8, data.len());
            assert_eq!(ip.more_frags(), i < 2);
            assert!(usize::from(ip.total_len()) <= 1500);
            if i < 2 {
                assert_eq!((usize::from(ip.total_len()) - 20) % 8, 0);
            }
            data.extend_from_slice(ip.payload());
        }
        assert_eq!(data, f[38..]);
        assert_eq!((c.fragments, c.ports[0].tx_packets), (3, 3));
        let bytes: usize = got.iter().map(Vec::len).sum();
        assert_eq!(c.ports[0].tx_bytes, bytes as u64);
    }

    #[test]
    fn a_fragment_is_cut_again_within_its_place() {
        // Offset 100 (800 bytes in), more fragments set: every piece keeps MF.
        let f = frame(&[], 1600, 0x2000 | 100);
        let (got, _) = cut(&f, 1000, 99);
        assert_eq!(got.len(), 2);
        for (g, off) in got.iter().zip([100, 100 + 976 / 8]) {
            let ip = ipv4::Packet::new_checked(&g[18..]).unwrap();
            assert_eq!(usize::from(ip.frag_offset()), off);
            assert!(ip.more_frags());
        }
    }

    #[test]
    fn only_copied_options_follow_the_first_fragment() {
        // Security (130, copied, 11 bytes) and record route (7, not copied, 7 bytes), then
        // padding: 20 bytes of options.
        let mut options = vec![130, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        options.extend_from_slice(&[7, 7, 4, 0, 0, 0, 0]);
        options.extend_from_slice(&[1, 0]);
        let f = frame(&options, 2000, 0);
        let (got, _) = cut(&f, 1500, 99);
        assert_eq!(&got[0][38..58], &options[..]);
        let mut stripped = options.clone();
        stripped[11..18].fill(OPTION_NOP);
        assert_eq!(&got[1][38..58], &stripped[..]);
    }

    #[test]
    fn no_room_is_counted_and_ends_the_cut() {
        let (got, c) = cut(&frame(&[], 3000, 0), 1500, 1);
        assert_eq!(got.len(), 1);
        assert_eq!((c.fragments, c.fragments_dropped), (1, 2));
    }

    #[test]
    fn what_is_not_ipv4_is_not_cut() {
        let mut f = frame(&[], 3000, 0);
        f[18] = 0x60;
        assert!(cut(&f, 1500, 99).0.is_empty());
        assert!(cut(&f[..30], 1500, 99).0.is_empty());
    }
}
