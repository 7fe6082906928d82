#!/usr/bin/env bash
# scripts/lab.sh up | demo | down | status — the Direct Connect lab (examples/lab/README.md).
#
# Two VPCs with the same CIDR reach two customer sites with the same CIDR across an MPLS
# core of three xpe routers, each in its own network namespace, on BGP: AWS's side of each
# VIF and each site's CE run FRR's bgpd (eBGP to the PEs), and the PEs exchange VPN routes
# through an FRR route reflector on the pe-dx - p1 link (docs/bgp.md):
#
#   vpc-a --VLAN 101--+                                                  +-- site0 -- site-a
#                     +-- trunk dx0 -- pe-dx -- core1 -- p1 -- core2 -- pe-site
#   vpc-b --VLAN 102--+                            |                     +-- site1 -- site-b
#                                                  rr
#
#   up      builds xpe if needed (and runs scripts/setup.sh first), creates the namespaces and
#           links, starts the three routers, waits until both VPCs answer both sites.
#           Harmless when the lab is already up.
#   demo    brings the lab up if it is not, then shows tables, pings, isolation, decoded
#           label stacks, traceroute -e from both sites and every counter; checks each step and
#           ends with `lab: all N checks passed` (exit 0) or the failures (exit 1).
#           The lab stays up afterwards for you to explore.
#   down    stops the routers and the FRR daemons (by the PIDs `up` recorded) and removes
#           every namespace the lab made, whatever state `up` reached.
#   status  says whether the lab is up and lists its routers.
#
# Environment:
#   LAB_VIF_MTU      MTU of the VIFs and site A: 9001 (default, Direct Connect jumbo) or 1500
#                    (site B's LAN is always 1500);
#                    the core links get 100 more (room for the label stack).
#   XPE              an xpe binary to use (default: build target/release/xpe).
#   XPE_LAB_PREFIX   prefix for namespace, socket and state names (tests use one so that a
#                    user's lab and a test's lab never meet; default none).
#
# Test traffic stays inside the lab's namespaces; all addresses are in 198.18.0.0/15.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -d "$CARGO_BIN" && ":$PATH:" != *":$CARGO_BIN:"* ]]; then
    export PATH="$CARGO_BIN:$PATH"
fi

P=${XPE_LAB_PREFIX:-}
VIF_MTU=${LAB_VIF_MTU:-9001}
SITE_B_MTU=1500
STATE=/run/xpe-lab/${P:-lab}
SOCKETS=/run/xpe
ROUTERS=(pe-dx p1 pe-site)
NAMESPACES=(vpc-a vpc-b wires pe-dx p1 pe-site site-a site-b rr)
# FRR's bgpd, one per namespace: AWS's side of each VIF, each site's CE, the route reflector.
SPEAKERS=(vpc-a vpc-b site-a site-b rr)
# The PEs' mirror namespaces (their kernels' side of each VRF), made by xpe run; listed here
# so `down` removes them also after a router was killed.
MIRROR_NAMESPACES=(pe-dx-vpc-a pe-dx-vpc-b pe-site-vpc-a pe-site-vpc-b)
# Scapy is in Debian's python3; a pyenv `python3` earlier on PATH would not have it.
PYTHON=/usr/bin/python3

die() {
    printf 'lab: %s\n' "$1" >&2
    [[ -n ${2:-} ]] && printf 'hint: %s\n' "$2" >&2
    exit 1
}

ns() { printf '%s%s' "$P" "$1"; }
in_ns() {
    local n=$1
    shift
    ip netns exec "$(ns "$n")" "$@"
}
sock() { printf '%s/%s%s.sock' "$SOCKETS" "$P" "$1"; }

need_root() {
    [[ $(id -u) == 0 ]] || die "the lab needs root (network namespaces, XDP, AF_XDP)" \
        "run it with sudo: sudo scripts/lab.sh ${1:-up}"
}

check_mtu() {
    [[ $VIF_MTU =~ ^[0-9]+$ ]] && ((VIF_MTU >= 1280 && VIF_MTU <= 9001)) && return
    die "LAB_VIF_MTU=$VIF_MTU is not an MTU the lab uses" \
        "Direct Connect VIFs use 1500 or 9001 (any value 1280..9001 works here)"
}

# The xpe binary: $XPE, or a release build (after scripts/setup.sh on a fresh machine).
find_xpe() {
    if [[ -n ${XPE:-} ]]; then
        [[ -x $XPE ]] || die "XPE=$XPE is not an executable" "unset XPE to build xpe"
        return
    fi
    echo "lab: setup (installs only what is missing)"
    scripts/setup.sh | tail -n 3
    echo "lab: building xpe (release)"
    cargo build --release -q -p xpe-control
    XPE=$ROOT/target/release/xpe
}

# veth DEV_A in namespace A (MAC_A) <-> DEV_B in namespace B (MAC_B), MTU, both up. VLAN
# offloads off, so tags stay in the frame data wherever XDP or a bridge looks.
link() {
    local a=$1 dev_a=$2 mac_a=$3 b=$4 dev_b=$5 mac_b=$6 mtu=$7
    ip link add "$dev_a" netns "$(ns "$a")" address "$mac_a" mtu "$mtu" type veth \
        peer name "$dev_b" netns "$(ns "$b")" address "$mac_b" mtu "$mtu"
    local n d
    for n in "$a:$dev_a" "$b:$dev_b"; do
        d=${n#*:}
        in_ns "${n%%:*}" ethtool -K "$d" rxvlan off txvlan off >/dev/null
        in_ns "${n%%:*}" ip link set "$d" up
    done
}

# A bridge NAME over PORTS in the wires namespace: the patch panel where the demo captures.
bridge() {
    local name=$1 mtu=$2
    shift 2
    in_ns wires ip link add "$name" mtu "$mtu" type bridge
    local p
    for p in "$@"; do in_ns wires ip link set "$p" master "$name"; done
    in_ns wires ip link set "$name" up
}

# A Linux host: address(es), default route, and optionally 802.1Q tagging with `xpe host-vlan`
# (a tc eBPF program: this kernel has no VLAN devices).
host() {
    local n=$1 gw=$2 vid=$3
    shift 3
    local a
    for a in "$@"; do in_ns "$n" ip addr add "$a" dev eth0; done
    in_ns "$n" ip route add default via "$gw"
    # TX checksum offload off: with it on (a veth's default), the host's TCP and UDP leave
    # with the checksum left for a device to finish, and xpe's AF_XDP copy forwards them as
    # they are, so the far host drops them (ping has no such checksum and works either way).
    in_ns "$n" ethtool -K eth0 tx off >/dev/null
    [[ $vid == - ]] || in_ns "$n" "$XPE" host-vlan eth0 "$vid" >/dev/null
}

# The BGP speakers' configs (FRR): AWS (AS 64512) in each VPC announces the VPC's CIDR, each
# site's CE (AS 65001) its subnet; the route reflector serves both PEs, VPNv4 and VPNv6.
frr_conf() {
    local n=$1
    printf 'frr defaults traditional\nhostname %s\n' "$n"
    case $n in
        rr)
            printf 'router bgp 65000\n bgp router-id 198.18.0.11\n no bgp default ipv4-unicast\n'
            local pe af
            for pe in 198.18.255.1 198.18.255.3; do printf ' neighbor %s remote-as 65000\n' "$pe"; done
            for af in "ipv4 vpn" "ipv6 vpn"; do
                printf ' address-family %s\n' "$af"
                for pe in 198.18.255.1 198.18.255.3; do
                    printf '  neighbor %s activate\n  neighbor %s route-reflector-client\n' "$pe" "$pe"
                done
                printf ' exit-address-family\n'
            done
            ;;
        vpc-a | vpc-b)
            printf 'router bgp 64512\n bgp router-id 169.254.10.2\n no bgp ebgp-requires-policy\n'
            printf ' no bgp network import-check\n neighbor 169.254.10.1 remote-as 65000\n'
            [[ $n == vpc-b ]] && printf ' neighbor 169.254.10.1 password lab-vif-b\n'
            printf ' address-family ipv4 unicast\n  network 198.18.10.0/24\n exit-address-family\n'
            ;;
        site-a | site-b)
            printf 'router bgp 65001\n bgp router-id 198.19.20.10\n no bgp ebgp-requires-policy\n'
            printf ' no bgp network import-check\n neighbor 198.19.20.1 remote-as 65000\n'
            printf ' address-family ipv4 unicast\n  network 198.19.20.0/24\n exit-address-family\n'
            ;;
    esac
}

# FRR's bgpd in namespace N, without zebra (this kernel has no MPLS or VRFs for it to
# program; the routes stay in BGP); its vty is `vtysh --vty_socket $STATE/frr-N`.
start_speaker() {
    local n=$1 dir=$STATE/frr-$1
    mkdir -p "$dir"
    frr_conf "$n" >"$dir/bgpd.conf"
    setsid ip netns exec "$(ns "$n")" /usr/lib/frr/bgpd -Z -S -f "$dir/bgpd.conf" \
        -i "$dir/bgpd.pid" --vty_socket "$dir" -P 0 </dev/null >"$dir/log" 2>&1 &
    echo $! >"$STATE/frr-$n.pid"
}

# True if PID is the bgpd this lab started for speaker N.
is_our_bgpd() {
    local pid=$1 n=$2
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STATE/frr-$n/bgpd.conf"
}

# Waits until every BGP session of both PEs is established and every VRF has its routes.
wait_bgp() {
    local r
    for r in pe-dx pe-site; do
        for _ in $(seq 1 900); do
            "$XPE" show bgp --json --socket "$(sock "$r")" 2>/dev/null | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
up = all(p["state"] == "established" for s in d["speakers"] for p in s["peers"])
sys.exit(0 if up and all(v["installed"] >= 2 and v["stale"] == 0 for v in d["vrfs"]) else 1)
' && continue 2
            sleep 0.1
        done
        "$XPE" show bgp --socket "$(sock "$r")" 2>&1 | sed 's/^/  /' >&2
        die "$r's BGP did not converge in 90 s (above; gobgpd's logs in $(sock "$r" | sed 's/\.sock$/.bgp/'), FRR's in $STATE/frr-*)"
    done
}

# The routers' configs, from examples/lab/, with the lab's MTUs.
configs() {
    local core_mtu=$((VIF_MTU + 100)) r
    for r in "${ROUTERS[@]}"; do
        sed -e "s/^mtu = 9001 /mtu = $VIF_MTU /" -e "s/^mtu = 9100 /mtu = $core_mtu /" \
            "examples/lab/$r.toml" >"$STATE/$r.toml"
    done
}

start_router() {
    local r=$1
    # `ip netns exec` execs xpe, so $! is xpe's own PID; setsid keeps it out of our job control.
    # Each router serves /metrics on 127.0.0.1:9464 of its own namespace.
    setsid ip netns exec "$(ns "$r")" "$XPE" run "$STATE/$r.toml" --socket "$(sock "$r")" \
        --netns-prefix "$P" --metrics 127.0.0.1:9464 </dev/null >"$STATE/$r.log" 2>&1 &
    echo $! >"$STATE/$r.pid"
}

wait_router() {
    local r=$1 pid
    pid=$(<"$STATE/$r.pid")
    for _ in $(seq 1 200); do
        "$XPE" show runtime --socket "$(sock "$r")" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/  /' "$STATE/$r.log" >&2
    die "router $r did not start (its log is above, and in $STATE/$r.log)"
}

# Pings until the first reply: ARP on the VIFs and the core takes a second or two.
converge() {
    local from=$1 to=$2
    for _ in $(seq 1 40); do
        in_ns "$from" ping -c 1 -W 0.5 -q "$to" >/dev/null 2>&1 && return 0
    done
    die "$from never reached $to" "see the routers' logs in $STATE, or run: scripts/lab.sh down"
}

is_up() {
    [[ -f $STATE/up ]] || return 1
    local r pid
    for r in "${ROUTERS[@]}"; do
        pid=$(cat "$STATE/$r.pid" 2>/dev/null) || return 1
        is_our_xpe "$pid" "$r" || return 1
    done
    for r in "${SPEAKERS[@]}"; do
        pid=$(cat "$STATE/frr-$r.pid" 2>/dev/null) || return 1
        is_our_bgpd "$pid" "$r" || return 1
    done
}

# True if PID is the xpe this lab started for router R (a recycled PID is left alone).
is_our_xpe() {
    local pid=$1 r=$2
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--socket $(sock "$r")"
}

cmd_up() {
    need_root up
    check_mtu
    find_xpe
    if is_up; then
        echo "lab: already up (routers ${ROUTERS[*]}; scripts/lab.sh down removes it)"
        return 0
    fi
    # Whatever an earlier, interrupted `up` left is removed first.
    cmd_down >/dev/null
    mkdir -p "$STATE" "$SOCKETS"
    echo "$XPE" >"$STATE/xpe"
    # Any failure from here on (a command under set -e, or die) removes what up made.
    trap '[[ -f $STATE/up ]] || { echo "lab: up failed; removing what it made" >&2; cmd_down >/dev/null; }' EXIT
    local n core_mtu=$((VIF_MTU + 100))
    for n in "${NAMESPACES[@]}"; do
        ip netns add "$(ns "$n")"
        in_ns "$n" ip link set lo up
        # IPv4 only: without IPv6 the hosts and bridges send no router solicitations or MLD
        # reports, so the routers' punt counters show mostly what the demo does. The routers'
        # own namespaces keep it: xpe routes the kernel's traffic into it through a link-local
        # gateway (docs/runtime.md, "Mirror interfaces").
        [[ " ${ROUTERS[*]} " == *" $n "* ]] && continue
        in_ns "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    # The Direct Connect trunk: both VIFs on one veth into pe-dx, through the wires bridge.
    link vpc-a eth0 02:00:00:00:aa:01 wires vif-a 02:00:00:00:f0:01 "$VIF_MTU"
    link vpc-b eth0 02:00:00:00:bb:01 wires vif-b 02:00:00:00:f0:02 "$VIF_MTU"
    link pe-dx dx0 02:00:00:00:01:02 wires vif-pe 02:00:00:00:f0:03 "$VIF_MTU"
    bridge vif "$VIF_MTU" vif-a vif-b vif-pe
    # The core: pe-dx - p1 - pe-site, each link through its own bridge; the route reflector
    # on the first.
    link pe-dx core0 02:00:00:00:01:01 wires c1-pe 02:00:00:00:f1:01 "$core_mtu"
    link p1 west 02:00:00:00:02:01 wires c1-p 02:00:00:00:f1:02 "$core_mtu"
    link rr eth0 02:00:00:00:04:01 wires c1-rr 02:00:00:00:f1:03 "$core_mtu"
    bridge core1 "$core_mtu" c1-pe c1-p c1-rr
    link p1 east 02:00:00:00:02:02 wires c2-p 02:00:00:00:f2:01 "$core_mtu"
    link pe-site core0 02:00:00:00:03:01 wires c2-pe 02:00:00:00:f2:02 "$core_mtu"
    bridge core2 "$core_mtu" c2-p c2-pe
    # The sites: untagged, one port each; the port decides the VRF.
    link pe-site site0 02:00:00:00:03:02 site-a eth0 02:00:00:00:aa:02 "$VIF_MTU"
    # Site B's LAN stays at 1500 behind the jumbo VIF (pe-site.toml): an MTU step for tracepath.
    link pe-site site1 02:00:00:00:03:03 site-b eth0 02:00:00:00:bb:02 "$SITE_B_MTU"
    # The same addresses on both sides of both VRFs: each VIF's peering /30, and behind AWS's
    # side the VPC's host 198.18.10.10 (on lo: the VPC's CIDR is announced over BGP). vpc-b has
    # one more address, 198.18.10.20, that vpc-a does not: the demo tries to reach it from site-a.
    host vpc-a 169.254.10.1 101 169.254.10.2/30
    host vpc-b 169.254.10.1 102 169.254.10.2/30
    in_ns vpc-a ip addr add 198.18.10.10/32 dev lo
    in_ns vpc-b ip addr add 198.18.10.10/32 dev lo
    in_ns vpc-b ip addr add 198.18.10.20/32 dev lo
    host site-a 198.19.20.1 - 198.19.20.10/24
    host site-b 198.19.20.1 - 198.19.20.10/24
    # The route reflector: on the pe-dx - p1 link, the PEs' router addresses through their
    # core ports (pe-site's across p1).
    in_ns rr ip addr add 198.18.0.11/29 dev eth0
    in_ns rr ip route add 198.18.255.1/32 via 198.18.0.9
    in_ns rr ip route add 198.18.255.3/32 via 198.18.0.10
    in_ns rr ethtool -K eth0 tx off >/dev/null
    configs
    local r n
    for n in "${SPEAKERS[@]}"; do start_speaker "$n"; done
    for r in "${ROUTERS[@]}"; do start_router "$r"; done
    for r in "${ROUTERS[@]}"; do wait_router "$r"; done
    wait_bgp
    converge site-a 198.18.10.10
    converge site-b 198.18.10.10
    touch "$STATE/up"
    echo "lab: up — namespaces ${NAMESPACES[*]/#/$P}; VIF MTU $VIF_MTU"
    echo "lab: routers answer on $(sock pe-dx), $(sock p1), $(sock pe-site)"
}

# end_pid PID TENTHS: SIGTERM, then SIGKILL if it is still there after TENTHS tenths of a second.
end_pid() {
    local pid=$1 tenths=$2
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$tenths"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
    need_root down
    local r pid n
    for r in "${ROUTERS[@]}"; do
        pid=$(cat "$STATE/$r.pid" 2>/dev/null) || continue
        if is_our_xpe "$pid" "$r"; then end_pid "$pid" 50; fi
    done
    for n in "${SPEAKERS[@]}"; do
        pid=$(cat "$STATE/frr-$n.pid" 2>/dev/null) || continue
        if is_our_bgpd "$pid" "$n"; then end_pid "$pid" 30; fi
    done
    for n in "${NAMESPACES[@]}" "${MIRROR_NAMESPACES[@]}"; do
        ip netns del "$(ns "$n")" 2>/dev/null || true
    done
    for r in "${ROUTERS[@]}"; do rm -f "$(sock "$r")"; done
    rm -rf "$STATE"
    echo "lab: down"
}

cmd_status() {
    if is_up; then
        echo "lab: up"
        local r
        for r in "${ROUTERS[@]}"; do
            printf '  %-8s pid %-7s socket %s\n' "$r" "$(<"$STATE/$r.pid")" "$(sock "$r")"
        done
        for r in "${SPEAKERS[@]}"; do
            printf '  %-8s pid %-7s FRR bgpd: vtysh --vty_socket %s\n' "$r" "$(<"$STATE/frr-$r.pid")" "$STATE/frr-$r"
        done
    else
        echo "lab: not up (scripts/lab.sh up)"
        return 1
    fi
}

case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    demo)
        need_root demo
        cmd_up
        XPE=$(<"$STATE/xpe")
        source scripts/lab-demo.sh
        ;;
    *) die "usage: scripts/lab.sh up | demo | down | status" "see examples/lab/README.md" ;;
esac
