#!/usr/bin/python3
"""Writes examples/dx-pe-sample.pcapng: the frames the README demo replays through
examples/dx-pe.toml, one case per frame, each on the interface it arrives on.

The frames are built with scapy (a packet builder we did not write), so the demo and the
tests check xpe against bytes it did not make. Scapy 2.5 writes only one unnamed pcapng
interface, so the blocks (SHB, one IDB per interface with if_name, EPBs with a comment
saying what each frame is) are packed here by hand (pcapng spec, draft-ietf-opsawg-pcapng).

Run with Debian's python3 (scapy comes from python3-scapy): /usr/bin/python3 scripts/make-sample.py
"""
import struct
import sys

from scapy.all import ARP, ICMP, IP, UDP, Dot1Q, Ether, IPv6, load_contrib

load_contrib("mpls")
from scapy.contrib.mpls import MPLS  # noqa: E402

PE_CORE = "02:00:00:00:01:01"   # core0
PE_EDGE = "02:00:00:00:01:02"   # dx0
P_ROUTER = "02:00:00:00:02:01"  # 198.18.0.2 on core0
VGW_A = "02:00:00:00:aa:01"     # 169.254.10.2 on VLAN 101 (vpc-a)
VGW_B = "02:00:00:00:bb:01"     # 169.254.10.2 on VLAN 102 (vpc-b)

def vif(vlan, src):
    return Ether(src=src, dst=PE_EDGE) / Dot1Q(vlan=vlan, prio=0)

def core():
    return Ether(src=P_ROUTER, dst=PE_CORE)

FRAMES = [
    ("dx0", "vpc-a host to remote site: impose 16001/2001",
     vif(101, VGW_A) / IP(src="198.18.10.5", dst="198.19.20.5", ttl=64, tos=0xb8) / UDP(sport=40000, dport=5001) / b"vpc-a"),
    ("dx0", "vpc-b host, same addresses: impose 16001/2002",
     vif(102, VGW_B) / IP(src="198.18.10.5", dst="198.19.20.5", ttl=64) / UDP(sport=40000, dport=5001) / b"vpc-b"),
    ("dx0", "vpc-a IPv6 to remote site: impose 16001/2001",
     vif(101, VGW_A) / IPv6(src="2001:db8:10::5", dst="2001:db8:20::1", hlim=64) / UDP(sport=40000, dport=5001)),
    ("core0", "VPN label 1001 from the core: pop, vpc-a lookup, VLAN 101",
     core() / MPLS(label=1001, cos=5, s=1, ttl=61) / IP(src="198.19.20.5", dst="198.18.10.5", ttl=62) / UDP(sport=5001, dport=40000) / b"to-a"),
    ("core0", "VPN label 1002, same destination: VLAN 102",
     core() / MPLS(label=1002, cos=0, s=1, ttl=61) / IP(src="198.19.20.5", dst="198.18.10.5", ttl=62) / UDP(sport=5001, dport=40000) / b"to-b"),
    ("core0", "transit label 16002: swap to 16003",
     core() / MPLS(label=16002, cos=3, s=0, ttl=20) / MPLS(label=3001, s=1, ttl=20) / IP(src="198.19.30.1", dst="198.19.40.1") / UDP()),
    ("core0", "transit label 16004: penultimate-hop pop",
     core() / MPLS(label=16004, cos=0, s=1, ttl=20) / IP(src="198.19.30.1", dst="198.19.40.1", ttl=30) / UDP()),
    ("dx0", "ARP request for our VLAN 101 address: reply",
     Ether(src=VGW_A, dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=101) / ARP(op=1, hwsrc=VGW_A, psrc="169.254.10.2", pdst="169.254.10.1")),
    ("dx0", "ping to our VLAN 102 address: echo reply",
     vif(102, VGW_B) / IP(src="169.254.10.2", dst="169.254.10.1", ttl=64) / ICMP(type=8, id=7, seq=1) / b"ping"),
    ("dx0", "TTL 1 from vpc-a: ttl-expired",
     vif(101, VGW_A) / IP(src="198.18.10.5", dst="198.19.20.5", ttl=1) / UDP()),
    ("dx0", "VLAN 103 has no attachment: unknown-vlan",
     vif(103, VGW_A) / IP(src="198.18.10.5", dst="198.19.20.5") / UDP()),
    ("core0", "label 99999 is not in the ILM: unknown-label",
     core() / MPLS(label=99999, s=1, ttl=64) / IP(src="198.19.20.5", dst="198.18.10.5") / UDP()),
    ("dx0", "vpc-b has no route to 203.0.113.9: no-route",
     vif(102, VGW_B) / IP(src="198.18.10.5", dst="203.0.113.9") / UDP()),
]


def block(btype, body):
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", btype, total) + body + b"\0" * pad + struct.pack("<I", total)


def option(code, value):
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


END = option(0, b"")


def main(path):
    names = []
    for ifname, _, _ in FRAMES:
        if ifname not in names:
            names.append(ifname)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for n in names:
        # linktype 1 (Ethernet), snaplen 0; if_name (2), if_tsresol (9) = 10^-6
        out += block(1, struct.pack("<HHI", 1, 0, 0) + option(2, n.encode()) + option(9, b"\x06") + END)
    t0 = 1_790_000_000_000_000  # microseconds
    for i, (ifname, comment, pkt) in enumerate(FRAMES):
        raw = bytes(pkt)
        ts = t0 + i * 1000
        body = struct.pack("<IIIII", names.index(ifname), ts >> 32, ts & 0xFFFFFFFF, len(raw), len(raw))
        body += raw + b"\0" * ((-len(raw)) % 4)
        body += option(1, comment.encode()) + END
        out += block(6, body)
    with open(path, "wb") as f:
        f.write(out)
    print(f"wrote {path}: {len(FRAMES)} frames on {', '.join(names)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/dx-pe-sample.pcapng")
