# shellcheck shell=bash disable=SC2034,SC2016,SC2317
# (SC2317: check runs its functions indirectly; SC2034: variables are read inside eval)
# scripts/lab-demo.sh — the demo of the Direct Connect lab. Sourced by `scripts/lab.sh demo`
# once the lab is up (it uses lab.sh's ns, in_ns, sock, XPE, STATE, VIF_MTU and PYTHON).
#
# Every step prints the commands it runs (`$ ...`) and their output, then its checks. The
# last line is the verdict: `lab: all N checks passed` (exit 0) or the failed checks (exit 1).

CHECKS=0
FAILED=()
STEP=0
CAPTURES=()

# A one-line heading per step; bold on a terminal, plain in CI logs and tests.
BOLD='' PLAIN=''
if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
step() {
    STEP=$((STEP + 1))
    printf '\n%s== %d. %s%s\n' "$BOLD" "$STEP" "$*" "$PLAIN"
}
say() { printf '%s\n' "$*"; }

xpe_at() {
    local r=$1
    shift
    "$XPE" "$@" --socket "$(sock "$r")"
}
show_xpe() {
    local r=$1
    shift
    printf '$ xpe %s --socket %s\n' "$*" "$(sock "$r")"
    xpe_at "$r" "$@" 2>&1 | sed 's/^/    /'
}

# check DESCRIPTION COMMAND...: runs COMMAND; its exit status is the verdict.
check() {
    local what=$1
    shift
    CHECKS=$((CHECKS + 1))
    if "$@"; then
        printf '  [pass] %s\n' "$what"
    else
        printf '  [FAIL] %s\n' "$what"
        FAILED+=("step $STEP: $what")
    fi
}
equals() { [[ $1 == "$2" ]]; }

# counter ROUTER KEY: one number from `xpe show counters --json`. KEY is drop.REASON,
# punt.REASON, label.N, vrf.NAME or forwarded.
counter() {
    xpe_at "$1" show counters --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
kind, _, name = sys.argv[1].partition(".")
if kind == "drop":
    print(d["drops"][name])
elif kind == "punt":
    print(d["punts"][name])
elif kind == "label":
    print(sum(e["packets"] for e in d["labels"] if str(e["label"]) == name))
elif kind == "vrf":
    print(sum(e["lookups"] for e in d["vrfs"] if e["vrf"] == name))
else:
    print(d[kind])
' "$2"
}

# Echo requests the kernel of a host has received (its /proc/net/snmp).
echos_in() {
    in_ns "$1" awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["InEchos"] }' /proc/net/snmp
}
# IP packets a host's kernel refused as addressed to none of its addresses (it does not
# forward).
in_addr_errors() {
    in_ns "$1" awk '/^Ip:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["InAddrErrors"] }' /proc/net/snmp
}

# ping FROM TO [ping options]: prints the replies received; the command and what ping said
# go to the terminal (fd 3), so `got=$(replies ...)` still shows them.
exec 3>&1
replies() {
    local from=$1 to=$2
    shift 2
    local out
    printf '$ ip netns exec %s ping %s %s\n' "$(ns "$from")" "$*" "$to" >&3
    out=$(in_ns "$from" ping "$@" "$to" 2>&1 || true)
    grep -E 'bytes from|transmitted' <<<"$out" | sed 's/^/    /' >&3
    local n
    n=$(sed -n 's/.* \([0-9]\+\) received.*/\1/p' <<<"$out" | head -n 1)
    echo "${n:-0}"
}

# One line per frame of a capture: VLAN, label stack (outermost first), label TTLs, IP and
# ICMP fields; empty fields print as '-'.
FIELDS=(-e vlan.id -e mpls.label -e mpls.ttl -e ip.src -e ip.dst -e ip.ttl -e icmp.type)
decode() {
    # A missing or broken capture decodes as nothing (the checks then fail, not the script).
    { tshark -r "$1" -T fields -E header=y -E separator=/t -E occurrence=a -E aggregator=, \
        "${FIELDS[@]}" 2>/dev/null || true; } |
        sed -e '1{s/vlan.id/vlan/;s/mpls.label/labels/;s/mpls.ttl/label-ttls/;s/ip.ttl/ip-ttl/;s/icmp.type/icmp/}' |
        awk -F'\t' '{ for (i = 1; i <= NF; i++) printf "%s%s", ($i == "" ? "-" : $i), (i < NF ? "\t" : "\n") }' |
        column -t -s $'\t'
}
# The decoded frames of a capture, header dropped, fields separated by single spaces.
rows() { decode "$1" | tail -n +2 | tr -s ' '; }

# capture BRIDGE FILTER COUNT: starts tshark on a bridge of the wires namespace (bounded by
# COUNT frames and 30 s) and returns when it captures.
capture() {
    local br=$1 filter=$2 count=$3
    local pcap=$STATE/$br.pcapng
    rm -f "$pcap" "$STATE/$br.tshark"
    in_ns wires tshark -i "$br" -f "$filter" -c "$count" -a duration:30 -w "$pcap" \
        >/dev/null 2>"$STATE/$br.tshark" &
    CAPTURES+=("$!")
    for _ in $(seq 1 300); do
        grep -q 'Capturing on' "$STATE/$br.tshark" 2>/dev/null && return 0
        sleep 0.1
    done
    say "tshark did not start on $br: $(cat "$STATE/$br.tshark")"
    return 1
}
stop_captures() {
    local pid
    for pid in "${CAPTURES[@]}"; do
        # Our own tshark children: they end by themselves after COUNT frames or 30 s.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CAPTURES=()
}
trap stop_captures EXIT

say "The Direct Connect lab: two VPCs with the same CIDR (198.18.10.0/24) on two VIFs"
say "(VLANs 101 and 102 of one trunk), two customer sites with the same CIDR (198.19.20.0/24),"
say "and an MPLS core of three xpe routers between them, on BGP. VIF MTU $VIF_MTU."
say
say "  vpc-a 198.18.10.10 --VLAN 101--+                                      +-- site0 -- site-a 198.19.20.10"
say "                                 +-- dx0  pe-dx -- p1 -- pe-site core0 --+"
say "  vpc-b 198.18.10.10 --VLAN 102--+           |                          +-- site1 -- site-b 198.19.20.10"
say "                                             rr (FRR route reflector)"
say
say "VRF vpc-a: VIF VLAN 101 on pe-dx, port site0 on pe-site. VRF vpc-b: VLAN 102, port site1."
say "BGP: AWS (AS 64512, FRR) on each VIF's 169.254.10.0/30 announces the VPC's CIDR; each site's"
say "CE (AS 65001, FRR) its subnet; the PEs (AS 65000, gobgpd run by xpe) exchange VPNv4 routes"
say "with their own VPN labels, 1001/1002 on pe-dx and 2001/2002 on pe-site, through rr."
say "Transport: pe-dx -> pe-site 16003 (p1 swaps it for explicit null 0), pe-site -> pe-dx 16001"
say "(p1 pops it: penultimate hop), static LSPs to the router addresses 198.18.255.3 and .1."
say "Below, \`xpe\` is $XPE."

# ---------------------------------------------------------------------------------------
step "Each router's tables: MPLS forwarding (show labels) and the VRFs (show vrf)"
show_xpe p1 show labels
for r in pe-dx pe-site; do
    show_xpe "$r" show labels
    show_xpe "$r" show vrf vpc-a
    show_xpe "$r" show vrf vpc-b
done
check "p1 swaps 16003 for explicit null toward pe-site" \
    grep -qE '^16003 +0 +.* east +198\.18\.0\.6' <(xpe_at p1 show labels)
check "p1 pops 16001 toward pe-dx (penultimate hop)" \
    grep -qE '^16001 +Pop Label +.* west +198\.18\.0\.9' <(xpe_at p1 show labels)
check "pe-dx: both VRFs hold 198.19.20.0/24, with different VPN labels" \
    eval 'xpe_at pe-dx show vrf vpc-a | grep -q "198.19.20.0/24 .*labels 16003/2001" &&
          xpe_at pe-dx show vrf vpc-b | grep -q "198.19.20.0/24 .*labels 16003/2002"'
check "pe-site: both VRFs hold 198.18.10.0/24, with different VPN labels" \
    eval 'xpe_at pe-site show vrf vpc-a | grep -q "198.18.10.0/24 .*labels 16001/1001" &&
          xpe_at pe-site show vrf vpc-b | grep -q "198.18.10.0/24 .*labels 16001/1002"'

# ---------------------------------------------------------------------------------------
step "BGP: the sessions, the routes each PE learned, and the route reflector's VPN table"
show_xpe pe-dx show bgp
show_xpe pe-site show bgp
printf '$ vtysh --vty_socket %s -c "show bgp ipv4 vpn"\n' "$STATE/frr-rr"
RR_TABLE=$(vtysh --vty_socket "$STATE/frr-rr" -c "show bgp ipv4 vpn" 2>&1)
sed 's/^/    /' <<<"$RR_TABLE"
printf '$ vtysh --vty_socket %s -c "show bgp ipv4 unicast"   # AWS, on VIF A\n' "$STATE/frr-vpc-a"
AWS_TABLE=$(vtysh --vty_socket "$STATE/frr-vpc-a" -c "show bgp ipv4 unicast" 2>&1)
sed 's/^/    /' <<<"$AWS_TABLE"
# bgp_state ROUTER: "sessions established/total; installed per VRF" from show bgp --json.
bgp_state() {
    xpe_at "$1" show bgp --json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
peers = [p for s in d["speakers"] for p in s["peers"]]
up = sum(p["state"] == "established" for p in peers)
print(f"{up}/{len(peers)};" + ",".join(str(v["installed"]) for v in d["vrfs"]))
'
}
check "pe-dx: its 4 sessions are established (VPNv4 and VPNv6 to rr, one per VIF)" \
    eval '[[ $(bgp_state pe-dx) == 4/4\;* ]]'
check "pe-site: its 4 sessions are established (VPNv4 and VPNv6 to rr, one per site)" \
    eval '[[ $(bgp_state pe-site) == 4/4\;* ]]'
check "rr reflects each PE's VPN routes with the PE's own labels (1001, 1002, 2001, 2002)" \
    eval 'for l in 1001 1002 2001 2002; do grep -q "label=$l " <<<"$RR_TABLE" || exit 1; done'
check "no VPN route with label 0 (what GoBGP's own VRFs would announce)" \
    eval '! grep -q "label=0 " <<<"$RR_TABLE"'
check "AWS on VIF A learned site A's 198.19.20.0/24 through pe-dx, AS path 65000 65001" \
    eval 'grep -qE "198\.19\.20\.0/24 +169\.254\.10\.1 .*65000 65001" <<<"$AWS_TABLE"'
table_version() { vtysh --vty_socket "$STATE/frr-$1" -c "show bgp ipv4 unicast" | head -n 1; }
v0=$(table_version vpc-a)
sleep 2
check "settled: AWS's BGP table does not change while nothing happens (2 s)" \
    equals "$(table_version vpc-a)" "$v0"

# tcp_udp SITE VPC: a TCP transfer and a UDP exchange from SITE's host to 198.18.10.10,
# served by VPC's host, which answers with its name: "tcp VPC ok, udp VPC ok" when both
# went through whole (TCP's data checked by its SHA-256), else what went wrong.
TCP_UDP_SERVER='
import hashlib, socket, sys
name = sys.argv[1]
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("198.18.10.10", 7000)); t.listen(1); t.settimeout(10)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.18.10.10", 7001)); u.settimeout(10)
print("ready", flush=True)
c, _ = t.accept(); c.settimeout(10)
h, n = hashlib.sha256(), 0
while b := c.recv(65536):
    h.update(b); n += len(b)
c.sendall(f"{name} {n} {h.hexdigest()}".encode()); c.close()
d, peer = u.recvfrom(2048); u.sendto(name.encode() + b" " + d, peer)
'
TCP_UDP_CLIENT='
import hashlib, os, socket, sys
data = os.urandom(200000)
try:
    s = socket.create_connection(("198.18.10.10", 7000), timeout=5)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    name, n, digest = s.recv(200).decode().split()
    tcp = f"tcp {name} " + ("ok" if (int(n), digest) == (len(data), hashlib.sha256(data).hexdigest()) else "corrupt")
except (OSError, ValueError) as e:
    tcp = f"tcp failed ({e})"
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
    u.sendto(b"probe", ("198.18.10.10", 7001))
    name, echoed = u.recv(2048).decode().split()
    udp = f"udp {name} " + ("ok" if echoed == "probe" else "corrupt")
except (OSError, ValueError) as e:
    udp = f"udp failed ({e})"
print(f"{tcp}, {udp}")
'
tcp_udp() {
    local site=$1 vpc=$2 fifo
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    in_ns "$vpc" timeout 15 "$PYTHON" -c "$TCP_UDP_SERVER" "$vpc" >"$fifo" 2>/dev/null &
    local server=$!
    # Wait for "ready" (the server is listening) before the client connects.
    read -r -t 10 _ <"$fifo" || true
    in_ns "$site" timeout 15 "$PYTHON" -c "$TCP_UDP_CLIENT" 2>&1 | tail -n 1
    wait "$server" 2>/dev/null || true
    rm -f "$fifo"
}

# ---------------------------------------------------------------------------------------
step "The same address in two VPCs: site-a reaches vpc-a's 198.18.10.10, site-b reaches vpc-b's"
a0=$(echos_in vpc-a) b0=$(echos_in vpc-b)
got_a=$(replies site-a 198.18.10.10 -c 3 -i 0.2 -W 1)
a1=$(echos_in vpc-a) b1=$(echos_in vpc-b)
got_b=$(replies site-b 198.18.10.10 -c 3 -i 0.2 -W 1)
a2=$(echos_in vpc-a) b2=$(echos_in vpc-b)
say "echo requests received: vpc-a +$((a1 - a0)) then +$((a2 - a1)); vpc-b +$((b1 - b0)) then +$((b2 - b1))"
check "site-a -> 198.18.10.10: 3 of 3 replies" equals "$got_a" 3
check "site-a's pings arrived at vpc-a only (vpc-a +3, vpc-b +0)" equals "$((a1 - a0)),$((b1 - b0))" 3,0
check "site-b -> 198.18.10.10: 3 of 3 replies" equals "$got_b" 3
check "site-b's pings arrived at vpc-b only (vpc-b +3, vpc-a +0)" equals "$((b2 - b1)),$((a2 - a1))" 3,0
big=$((VIF_MTU - 28))
got_big=$(replies site-a 198.18.10.10 -c 1 -W 2 -M "do" -s "$big")
check "a full-size $VIF_MTU-byte packet (don't fragment) crosses the core" equals "$got_big" 1
say "TCP (200 kB up, a digest back) and UDP (one datagram each way) to 198.18.10.10 port 7000/7001:"
tcp_a=$(tcp_udp site-a vpc-a)
tcp_b=$(tcp_udp site-b vpc-b)
say "  site-a: $tcp_a"
say "  site-b: $tcp_b"
check "site-a's TCP and UDP are answered by vpc-a's host" equals "$tcp_a" "tcp vpc-a ok, udp vpc-a ok"
check "site-b's TCP and UDP are answered by vpc-b's host" equals "$tcp_b" "tcp vpc-b ok, udp vpc-b ok"

# ---------------------------------------------------------------------------------------
step "site-a can never reach vpc-b: two attempts, and the counters that explain the drops"
say "(a) 198.18.10.20 exists only in vpc-b. From site-a it is looked up in VRF vpc-a, carried to"
say "    pe-dx under vpc-a's VPN label 1001 and handed to AWS on VLAN 101, which has no such host."
b0=$(echos_in vpc-b)
x0=$(in_addr_errors vpc-a)
l0=$(counter pe-dx label.1001)
got=$(replies site-a 198.18.10.20 -c 3 -i 0.2 -W 1)
b1=$(echos_in vpc-b)
x1=$(in_addr_errors vpc-a)
l1=$(counter pe-dx label.1001)
say "pe-dx: label 1001 (vrf vpc-a) +$((l1 - l0)); vpc-a's IP InAddrErrors +$((x1 - x0)); vpc-b echo requests +$((b1 - b0))"
check "no reply from 198.18.10.20" equals "${got:-0}" 0
check "vpc-b's host never saw them" equals "$((b1 - b0))" 0
check "pe-dx took them in VRF vpc-a (label 1001 +3), and vpc-a refused them as not its own (+3)" \
    equals "$((l1 - l0)),$((x1 - x0))" 3,3
say
say "(b) site-a forges vpc-b's label stack (16001, 1002) to pe-site. Customer ports are edge"
say "    ports: a labelled frame is dropped as mpls-on-edge, whatever its labels say."
e0=$(counter pe-site drop.mpls-on-edge)
b0=$(echos_in vpc-b)
l0=$(counter pe-dx label.1002)
printf '$ ip netns exec %s python3   # scapy: 3 x sendp(Ether(dst=<pe-site site0>)/MPLS(16001)/MPLS(1002)/IP(dst=198.18.10.10)/ICMP())\n' "$(ns site-a)"
in_ns site-a "$PYTHON" -c '
import logging
logging.getLogger("scapy").setLevel(logging.ERROR)
from scapy.all import Ether, IP, ICMP, sendp
from scapy.contrib.mpls import MPLS
f = (Ether(src="02:00:00:00:aa:02", dst="02:00:00:00:03:02", type=0x8847)
     / MPLS(label=16001, s=0, ttl=64) / MPLS(label=1002, s=1, ttl=64)
     / IP(src="198.19.20.10", dst="198.18.10.10") / ICMP())
sendp(f, iface="eth0", count=3, verbose=False)
'
sleep 0.5
e1=$(counter pe-site drop.mpls-on-edge)
b1=$(echos_in vpc-b)
l1=$(counter pe-dx label.1002)
say "pe-site: drops mpls-on-edge +$((e1 - e0)); pe-dx label 1002 +$((l1 - l0)); vpc-b echo requests +$((b1 - b0))"
check "pe-site dropped the 3 forged frames as mpls-on-edge" equals "$((e1 - e0))" 3
check "nothing reached pe-dx's vpc-b label or vpc-b's host" equals "$((l1 - l0)),$((b1 - b0))" 0,0

# ---------------------------------------------------------------------------------------
step "The PEs' own kernels: pe-dx's mirror devices, and TCP into each VRF's namespace"
say "Each VRF attachment has a mirror device in a namespace of the VRF's own (pe-dx-vpc-a,"
say "pe-dx-vpc-b): what xpe does not answer itself goes there, and what that kernel sends goes"
say "out of the VIF or, routed by xpe, into the VPN. Both hold 169.254.10.1 and never meet. The"
say "VIFs' BGP sessions run this way (each VRF's gobgpd listens there on port 179); below, a"
say "server on port 2222 in each namespace answers with its name."
show_xpe pe-dx show interfaces
# kernel_session FROM NS: a TCP session from FROM's host to pe-dx's 169.254.10.1 port 2222,
# answered by a server in pe-dx's mirror namespace NS, which replies with its own name.
KERNEL_SERVER='
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("169.254.10.1", 2222)); s.listen(1); s.settimeout(10)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(10); c.recv(100); c.sendall(sys.argv[1].encode()); c.close()
'
KERNEL_CLIENT='
import socket
try:
    s = socket.create_connection(("169.254.10.1", 2222), timeout=5)
    s.sendall(b"hello"); print(s.recv(100).decode() or "closed")
except OSError as e:
    print(f"failed ({e})")
'
kernel_session() {
    local from=$1 ns=$2 fifo
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    in_ns "$ns" timeout 15 "$PYTHON" -c "$KERNEL_SERVER" "$ns" >"$fifo" 2>/dev/null &
    local server=$!
    read -r -t 10 _ <"$fifo" || true
    in_ns "$from" timeout 15 "$PYTHON" -c "$KERNEL_CLIENT" 2>&1 | tail -n 1
    wait "$server" 2>/dev/null || true
    rm -f "$fifo"
}
for pair in "vpc-a pe-dx-vpc-a" "vpc-b pe-dx-vpc-b" "site-a pe-dx-vpc-a" "site-b pe-dx-vpc-b"; do
    read -r from ns <<<"$pair"
    got=$(kernel_session "$from" "$ns")
    say "$from -> 169.254.10.1:2222 answered by: $got"
    check "$from's session was answered by pe-dx's kernel in $(ns "$ns")" equals "$got" "$ns"
done
say "(vpc-a and vpc-b reach the mirrors on their VLANs; site-a and site-b come across the core"
say " under the VPN labels 1001 and 1002, to the VIF subnet pe-dx exports into each VPN, and the"
say " kernel's answers go back under pe-site's.)"

# ---------------------------------------------------------------------------------------
step "One ping from each site, decoded on the VIF trunk and on both core links (tshark)"
say "The links run through bridges in namespace $(ns wires) (the lab's patch panel), where tshark"
say "captures: -i vif -f 'vlan and icmp', -i core1 -f mpls, -i core2 -f mpls, 4 frames each."
captured=no
if capture vif "vlan and icmp" 4 && capture core1 mpls 4 && capture core2 mpls 4; then
    captured=yes
    # tshark says "Capturing on" a moment before its filter is attached.
    sleep 1
fi
replies site-a 198.18.10.10 -c 1 -W 1 >/dev/null
replies site-b 198.18.10.10 -c 1 -W 1 >/dev/null
stop_captures
check "tshark captured on the trunk and both core links" equals "$captured" yes
for br in core2 core1 vif; do
    case $br in
        core2) say "core2, pe-site <-> p1: requests under transport 16001, replies under explicit null 0" ;;
        core1) say "core1, p1 <-> pe-dx: requests after p1's pop (VPN label only), replies under 16003" ;;
        vif) say "vif, the Direct Connect trunk: the same addresses, told apart only by the VLAN id" ;;
    esac
    printf '$ tshark -r %s -T fields %s\n' "$STATE/$br.pcapng" "${FIELDS[*]}"
    decode "$STATE/$br.pcapng" | sed 's/^/    /'
done
# Uniform TTL mode: each router takes one off, and the labels carry the IP TTL.
core2=$(rows "$STATE/core2.pcapng")
core1=$(rows "$STATE/core1.pcapng")
vif=$(rows "$STATE/vif.pcapng")
has() { grep -qxF -- "$2" <<<"$1"; }
check "core2: requests carry 16001 over VPN labels 1001 / 1002, TTLs 63 (pe-site is a hop)" \
    eval 'has "$core2" "- 16001,1001 63,63 198.19.20.10 198.18.10.10 63 8" &&
          has "$core2" "- 16001,1002 63,63 198.19.20.10 198.18.10.10 63 8"'
check "core2: replies carry explicit null over 2001 / 2002 after p1's swap (label TTL 62)" \
    eval 'has "$core2" "- 0,2001 62,63 198.18.10.10 198.19.20.10 63 0" &&
          has "$core2" "- 0,2002 62,63 198.18.10.10 198.19.20.10 63 0"'
check "core1: requests carry only the VPN label after p1's pop (TTL 62)" \
    eval 'has "$core1" "- 1001 62 198.19.20.10 198.18.10.10 63 8" &&
          has "$core1" "- 1002 62 198.19.20.10 198.18.10.10 63 8"'
check "core1: replies carry 16003 over 2001 / 2002 (TTLs 63)" \
    eval 'has "$core1" "- 16003,2001 63,63 198.18.10.10 198.19.20.10 63 0" &&
          has "$core1" "- 16003,2002 63,63 198.18.10.10 198.19.20.10 63 0"'
check "vif: site-a's request leaves on VLAN 101, site-b's on VLAN 102 (IP TTL 61: three hops)" \
    eval 'has "$vif" "101 - - 198.19.20.10 198.18.10.10 61 8" &&
          has "$vif" "102 - - 198.19.20.10 198.18.10.10 61 8"'

# ---------------------------------------------------------------------------------------
step "traceroute -e from each site to 198.18.10.10 (every hop answers, p1 and pe-dx with the labels they got), and tracepath to site B"
say "(Each xpe sends ICMP time exceeded. p1 sends its own on along the LSP to pe-dx, which routes it"
say " back in the VPC's VRF (RFC 3032 §2.3.2); both quote the label stack they received (RFC 4950).)"
# hop TRACE N: the address that answered hop N, and its MPLS extension if any.
hop() { awk -v n="$2" '$1 == n { print $2 ($3 ~ /^</ ? " " $3 : "") }' <<<"$1"; }
for site in site-a site-b; do
    printf '$ ip netns exec %s traceroute -e -n -q 1 -w 2 -m 8 198.18.10.10\n' "$(ns "$site")"
    trace=$(in_ns "$site" traceroute -e -n -q 1 -w 2 -m 8 198.18.10.10 2>&1 || true)
    sed 's/^/    /' <<<"$trace"
    if [[ $site == site-a ]]; then vpn=1001 vpc=vpc-a; else vpn=1002 vpc=vpc-b; fi
    check "$site hop 1: pe-site, from its address on the site's link" \
        equals "$(hop "$trace" 1)" "198.19.20.1"
    check "$site hop 2: p1, from its core address, with 16001 over $vpc's VPN label $vpn (TTLs 1)" \
        equals "$(hop "$trace" 2)" "198.18.0.5 <MPLS:L=16001,E=0,S=0,T=1/L=$vpn,E=0,S=1,T=1>"
    check "$site hop 3: pe-dx, from $vpc's VIF address, with the VPN label $vpn it popped" \
        equals "$(hop "$trace" 3)" "169.254.10.1 <MPLS:L=$vpn,E=0,S=1,T=1>"
    check "$site hop 4: the $vpc host 198.18.10.10, and the trace ends there" \
        eval '[[ $(hop "$trace" 4) == 198.18.10.10 && -z $(hop "$trace" 5) ]]'
done
say "Site B's LAN is 1500 bytes behind the $VIF_MTU-byte VIF: pe-site answers what does not fit with"
say "fragmentation needed (RFC 1191), from its site B address in vpc-b, back across the core."
if ((VIF_MTU > 1500)); then
    in_ns vpc-b ip route flush cache
    printf '$ ip netns exec %s ping -c 2 -i 0.5 -W 2 -M do -s 8000 198.19.20.10\n' "$(ns vpc-b)"
    frag=$(in_ns vpc-b ping -c 2 -i 0.5 -W 2 -M do -s 8000 198.19.20.10 2>&1 || true)
    sed 's/^/    /' <<<"$frag"
    check "vpc-b's ping -M do -s 8000 to site B gets Frag needed (mtu = 1500) from pe-site" \
        eval 'grep -q "^From 198.19.20.1 .*Frag needed and DF set (mtu = 1500)" <<<"$frag"'
    in_ns vpc-b ip route flush cache
    before=$(counter pe-site fragmented)
    printf '$ ip netns exec %s ping -c 2 -i 0.5 -W 2 -M dont -s 8000 198.19.20.10\n' "$(ns vpc-b)"
    frag=$(in_ns vpc-b ping -c 2 -i 0.5 -W 2 -M dont -s 8000 198.19.20.10 2>&1 || true)
    sed 's/^/    /' <<<"$frag"
    say "pe-site: fragmented +$(($(counter pe-site fragmented) - before)) packets"
    check "without DF, the same 8000 bytes cross: pe-site cuts them into fragments (RFC 791), site B's host answers" \
        eval 'grep -q " 2 received" <<<"$frag"'
fi
in_ns vpc-b ip route flush cache
printf '$ ip netns exec %s tracepath -n -m 8 198.19.20.10\n' "$(ns vpc-b)"
path=$(in_ns vpc-b tracepath -n -m 8 198.19.20.10 2>&1 || true)
sed 's/^/    /' <<<"$path"
check "tracepath from vpc-b finds site B's path MTU of 1500 and reaches its host in 4 hops" \
    eval 'grep -q "Resume: pmtu 1500 hops 4 " <<<"$path"'

# ---------------------------------------------------------------------------------------
step "vpc-a withdraws its CIDR: site-a loses the route and its traffic stops; then it comes back"
# aws_vpc_a COMMAND: one BGP config line on AWS's side of VIF A.
aws_vpc_a() {
    printf '$ vtysh --vty_socket %s -c "configure terminal" -c "router bgp 64512" -c "address-family ipv4 unicast" -c "%s"\n' \
        "$STATE/frr-vpc-a" "$1"
    vtysh --vty_socket "$STATE/frr-vpc-a" -c "configure terminal" -c "router bgp 64512" \
        -c "address-family ipv4 unicast" -c "$1"
}
has_vpc_route() { xpe_at pe-site show vrf vpc-a | grep -q "198.18.10.0/24"; }
# within SECONDS CONDITION...: true when the condition holds within the time; says how long.
within() {
    local limit=$1 t0 t
    shift
    t0=$(date +%s%N)
    while ! "$@"; do
        (($(date +%s%N) - t0 > limit * 1000000000)) && return 1
        sleep 0.05
    done
    t=$((($(date +%s%N) - t0) / 1000000))
    say "  (after $t ms)"
}
aws_vpc_a "no network 198.18.10.0/24"
check "pe-site's vpc-a loses 198.18.10.0/24 within 3 s" within 3 eval '! has_vpc_route'
show_xpe pe-site show vrf vpc-a
nr0=$(counter pe-site drop.no-route)
got_a=$(replies site-a 198.18.10.10 -c 3 -i 0.2 -W 1)
nr1=$(counter pe-site drop.no-route)
got_b=$(replies site-b 198.18.10.10 -c 3 -i 0.2 -W 1)
say "pe-site: drops no-route +$((nr1 - nr0))"
check "site-a's pings get no reply, dropped at pe-site as no-route (+3)" equals "$got_a,$((nr1 - nr0))" 0,3
check "site-b still reaches vpc-b (3 of 3): the other VRF is untouched" equals "$got_b" 3
aws_vpc_a "network 198.18.10.0/24"
check "the route is back in pe-site's vpc-a within 3 s" within 3 has_vpc_route
got_a=$(replies site-a 198.18.10.10 -c 3 -i 0.2 -W 1)
check "site-a reaches vpc-a again (3 of 3)" equals "$got_a" 3

# ---------------------------------------------------------------------------------------
step "Watching pe-dx: a capture of what its workers send, a live trace, and /metrics"
say "libpcap never sees what an AF_XDP socket sends; xpe capture asks the workers for copies."
pcap=$STATE/pe-dx-tx.pcapng
say "\$ xpe capture --tx --duration 2 -w $pcap --socket $(sock pe-dx)   (while each site pings once)"
xpe_at pe-dx capture --tx --duration 2 -w "$pcap" >"$STATE/pe-dx-capture.out" 2>&1 &
capture_pid=$!
sleep 0.5
replies site-a 198.18.10.10 -c 1 -W 1 >/dev/null
replies site-b 198.18.10.10 -c 1 -W 1 >/dev/null
wait "$capture_pid"
sed 's/^/    /' "$STATE/pe-dx-capture.out"
TX_FIELDS=(-e frame.interface_name -e vlan.id -e mpls.label -e ip.src -e ip.dst -e icmp.type)
printf '$ tshark -r %s -T fields %s\n' "$pcap" "${TX_FIELDS[*]}"
tx=$(tshark -r "$pcap" -T fields -E occurrence=a -E aggregator=, "${TX_FIELDS[@]}" 2>/dev/null || true)
sed 's/^/    /' <<<"$tx"
check "pe-dx sent each request into its VPC on VLAN 101 / 102 (dx0:tx)" \
    eval 'grep -qP "^dx0:tx\t101\t\t198.19.20.10\t198.18.10.10\t8$" <<<"$tx" &&
          grep -qP "^dx0:tx\t102\t\t198.19.20.10\t198.18.10.10\t8$" <<<"$tx"'
check "pe-dx sent each reply to the core under 16003 and the VPN label 2001 / 2002 (core0:tx)" \
    eval 'grep -qP "^core0:tx\t\t16003,2001\t198.18.10.10\t198.19.20.10\t0$" <<<"$tx" &&
          grep -qP "^core0:tx\t\t16003,2002\t198.18.10.10\t198.19.20.10\t0$" <<<"$tx"'
say "\$ xpe trace --live --label 1001 --count 1 --socket $(sock pe-dx)   (while site-a pings)"
xpe_at pe-dx trace --live --label 1001 --count 1 >"$STATE/pe-dx-trace.out" 2>&1 &
trace_pid=$!
sleep 0.5
replies site-a 198.18.10.10 -c 1 -W 1 >/dev/null
wait "$trace_pid"
sed 's/^/    /' "$STATE/pe-dx-trace.out"
check "the live trace pops 1001 into vpc-a and forwards on dx0" \
    eval 'grep -q "vrf vpc-a" "$STATE/pe-dx-trace.out" && grep -q "^verdict: forward on dx0" "$STATE/pe-dx-trace.out"'
metrics=$(in_ns pe-dx "$PYTHON" -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:9464/metrics").read().decode(), end="")')
say "GET http://127.0.0.1:9464/metrics in pe-dx's namespace (an excerpt):"
grep -E '^xpe_(build_info|interface_(rx|tx)_packets_total|drops_total\{reason="no-route"\}|label_packets_total|vrf_lookups_total)' <<<"$metrics" |
    sed 's/^/    /'
check "promtool check metrics accepts pe-dx's /metrics" eval 'promtool check metrics <<<"$metrics" >/dev/null 2>&1'

# ---------------------------------------------------------------------------------------
step "Every router's counters"
for r in "${ROUTERS[@]}"; do show_xpe "$r" show counters; done
for r in "${ROUTERS[@]}"; do
    check "$r: no unknown-label, bad-label-stack, mtu-exceeded or tx-ring-full" \
        eval "[[ \$(counter $r drop.unknown-label) == 0 && \$(counter $r drop.bad-label-stack) == 0 &&
                 \$(counter $r drop.mtu-exceeded) == 0 && \$(counter $r tx_ring_full) == 0 ]]"
done

# ---------------------------------------------------------------------------------------
say
if ((${#FAILED[@]} == 0)); then
    say "lab: all $CHECKS checks passed"
    say "The lab stays up: try \`ip netns exec $(ns site-a) ping 198.18.10.10\` or"
    say "\`$XPE show all --socket $(sock pe-dx)\`; \`scripts/lab.sh down\` removes it."
    exit 0
fi
say "lab: ${#FAILED[@]} of $CHECKS checks failed:"
for f in "${FAILED[@]}"; do say "  - $f"; done
say "Router logs are in $STATE; \`scripts/lab.sh down\` removes the lab."
exit 1
