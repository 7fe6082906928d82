#!/usr/bin/env bash
# scripts/bench-bgp.sh [ROUTES] — BGP at scale into a running xpe (issue: BGP/MPLS VPNs):
# a remote PE (a gobgpd made one by benches' bgp-inject) announces ROUTES VPNv4 routes
# (1,000,000 by default) for one VRF of an xpe PE, then withdraws them all, while a paced
# stream of traffic crosses the PE on another route of that VRF. Prints, for each phase:
#   - when the PE's gobgpd had every route (its neighbour's accepted count), and when xpe had
#     them all in its FIB (show bgp's installed count), each from the start of the stream;
#   - where xpe's route owner spent its time (show bgp's work line);
#   - the RSS of xpe and of its gobgpd;
#   - the traffic sent and received (every frame must arrive).
# First one route alone is announced and withdrawn, timed the same way (the 3-second goal).
# Needs root; builds the release binaries.
#
# Namespaces (removed on exit, also on failure), every name prefixed xbg<pid>-:
#   host ─ a0 [pe] core0 ─ inj (gobgpd, the remote PE, 198.18.9.2)
#                 core1 ─ sink (xpe sink: counts the traffic)
# No traffic goes to the injected prefixes (10.0.0.0/24 upward, table entries only); the
# traffic's route is 198.19.99.0/24, labelled toward the sink.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUTES="${1:-1000000}"
RATE="${RATE:-50000}"
[[ $EUID -eq 0 ]] || { echo "bench-bgp: needs root (xpe run, namespaces)" >&2; exit 1; }
command -v gobgpd >/dev/null || { echo "bench-bgp: gobgpd missing: run scripts/setup.sh" >&2; exit 1; }

cargo build -q --release -p xpe-control --bin xpe
cargo build -q --release -p xpe-benches --bin bgp-inject
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
XPE="$TARGET/release/xpe"
INJECT="$TARGET/release/bgp-inject"
P="xbg$$"
DIR=$(mktemp -d "/tmp/$P.XXXXXX")
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for n in host pe inj sink pe-v; do ip netns del "$P-$n" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

for n in host pe inj sink; do ip netns add "$P-$n"; ip -n "$P-$n" link set lo up; done
link() {
    ip link add "$2" netns "$P-$1" address "$3" type veth peer name "$5" netns "$P-$4" address "$6"
    ip -n "$P-$1" link set "$2" up
    ip -n "$P-$4" link set "$5" up
}
link host eth0 02:00:00:00:0b:01 pe a0 02:00:00:00:0b:02
link pe core0 02:00:00:00:0b:03 inj eth0 02:00:00:00:0b:04
link pe core1 02:00:00:00:0b:05 sink eth0 02:00:00:00:0b:06
ip -n "$P-host" addr add 198.19.9.2/24 dev eth0
ip -n "$P-inj" addr add 198.18.9.2/30 dev eth0
ip -n "$P-inj" route add 198.51.100.1/32 via 198.18.9.1
ip netns exec "$P-inj" ethtool -K eth0 tx off >/dev/null

cat >"$DIR/pe.toml" <<EOF
[router]
name = "pe"                     # its VRF's mirror namespace is then $P-pe-v
address = "198.51.100.1"

[bgp]
asn = 65000

[[bgp.neighbor]]
address = "198.18.9.2"

[[interface]]
name = "core0"
kind = "core"
mac = "02:00:00:00:0b:03"
address = "198.18.9.1/30"

[[interface]]
name = "core1"
kind = "core"
mac = "02:00:00:00:0b:05"
address = "198.18.9.5/30"

[[interface]]
name = "a0"
kind = "edge"
mac = "02:00:00:00:0b:02"

[[neighbor]]
interface = "core1"
ip = "198.18.9.6"
mac = "02:00:00:00:0b:06"

[[neighbor]]
interface = "a0"
ip = "198.19.9.2"
mac = "02:00:00:00:0b:01"

[[vrf]]
name = "v"
table_label = 1009
rd = "65000:9"
import = ["65000:1"]

[[vrf.attachment]]
interface = "a0"
address = "198.19.9.1/24"

[[vrf.route]]
prefix = "198.19.99.0/24"
via = "198.18.9.6"
labels = [16009]
EOF

ip netns exec "$P-pe" "$XPE" run "$DIR/pe.toml" --cores 1 --socket "$DIR/pe.sock" \
    --netns-prefix "$P-" >"$DIR/pe.log" 2>&1 &
PIDS+=($!)
XPE_PID=$!
ip netns exec "$P-inj" gobgpd --api-hosts "unix://$DIR/inj.sock" --pprof-disable --log-plain \
    --log-level warn >"$DIR/inj.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
    [[ -S $DIR/pe.sock && -S $DIR/inj.sock ]] && break
    sleep 0.1
done
[[ -S $DIR/pe.sock ]] || { echo "bench-bgp: xpe did not start:" >&2; cat "$DIR/pe.log" >&2; exit 1; }
[[ -S $DIR/inj.sock ]] || { echo "bench-bgp: the injector's gobgpd did not start:" >&2; cat "$DIR/inj.log" >&2; exit 1; }
show_bgp() { "$XPE" show bgp --json --socket "$DIR/pe.sock"; }
field() { show_bgp | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
core_sock=$(field 'd["speakers"][0]["api"]' | sed 's#^unix://##')
accepted() {
    gobgp --target "unix://$core_sock" -j neighbor 2>/dev/null | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(a.get("state", {}).get("accepted", 0) for p in d for a in p.get("afi_safis", [])))'
}
installed() { field 'd["vrfs"][0]["installed"]'; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status"; }
gobgpd_pid() { field 'd["speakers"][0]["pid"]'; }

"$INJECT" --api "$DIR/inj.sock" --router-id 198.18.9.2 --peer 198.51.100.1 --next-hop 198.18.9.2 \
    --count 0 >/dev/null
for _ in $(seq 1 300); do
    [[ $(field 'd["speakers"][0]["peers"][0]["state"]') == established ]] && break
    sleep 0.1
done
[[ $(field 'd["speakers"][0]["peers"][0]["state"]') == established ]] ||
    { echo "bench-bgp: the session to the injector did not come up" >&2; cat "$DIR/pe.log" >&2; exit 1; }
echo "bench-bgp: xpe $(rss "$XPE_PID"), gobgpd $(rss "$(gobgpd_pid)") before the routes"

# timed PHASE WANT: runs the injector (announce or withdraw) and waits until GoBGP accepted
# and xpe installed what the phase leads to.
timed() {
    local phase=$1 want=$2
    shift 2
    local t0 t_gobgp="" t_fib=""
    t0=$(date +%s%N)
    "$INJECT" --api "$DIR/inj.sock" --no-setup --next-hop 198.18.9.2 --count "$ROUTES" "$@" &
    local inj=$!
    while [[ -z $t_fib ]]; do
        local now a i
        now=$(date +%s%N)
        a=$(accepted)
        i=$(installed)
        [[ -z $t_gobgp && $a == "$want" ]] && t_gobgp=$now
        [[ -n $t_gobgp && $i == "$want" ]] && t_fib=$now
        ((now - t0 > 600000000000)) && { echo "bench-bgp: $phase did not finish in 600 s (GoBGP $a, xpe $i)" >&2; exit 1; }
        sleep 0.2
    done
    wait "$inj"
    printf 'bench-bgp: %s: GoBGP had it all after %.2f s, xpe'"'"'s FIB after %.2f s (%.2f s after GoBGP)\n' \
        "$phase" "$(((t_gobgp - t0) / 1000000))e-3" "$(((t_fib - t0) / 1000000))e-3" \
        "$(((t_fib - t_gobgp) / 1000000))e-3"
    echo "bench-bgp:   $("$XPE" show bgp --socket "$DIR/pe.sock" | grep '^work:')"
    echo "bench-bgp:   RSS: xpe $(rss "$XPE_PID"), gobgpd $(rss "$(gobgpd_pid)")"
}

# Traffic on the other route for the whole run: host -> pe (vrf v) -> core1 -> sink.
# GoBGP takes about 10,000 routes a second here, each way: the traffic outlasts both phases.
DURATION=$((ROUTES / 4000 + 60))
ip netns exec "$P-sink" "$XPE" sink --dev eth0 --duration $((DURATION + 5)) >"$DIR/sink.out" 2>&1 &
SINK=$!
PIDS+=($SINK)
sleep 1
ip netns exec "$P-host" "$XPE" gen --dev eth0 --src 198.19.9.2 --dst 198.19.99.1 \
    --dst-mac 02:00:00:00:0b:02 --rate "$RATE" --duration "$DURATION" --json >"$DIR/gen.out" 2>&1 &
GEN=$!
PIDS+=($GEN)

timed "announce 1 route" 1 --count 1 --start 10.255.255.0
timed "withdraw it" 0 --count 1 --start 10.255.255.0 --withdraw
timed "announce $ROUTES routes" "$ROUTES"
timed "withdraw them" 0 --withdraw
echo "bench-bgp: waiting for the traffic to end (${DURATION} s in all)"
wait "$GEN" || true
wait "$SINK" || true
sent=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["sent"])' "$DIR/gen.out")
got=$(sed -n 's/.*: \([0-9]\+\) frames.*/\1/p' "$DIR/sink.out" | tail -n 1)
got=${got:-0}
if ((got >= sent)); then
    # The sink also counts what the PE's own kernel sends on that link (neighbour discovery).
    echo "bench-bgp: traffic on the other route at $RATE pps: $sent frames sent, all received (the sink counted $((got - sent)) more: the PE kernel's own frames)"
else
    echo "bench-bgp: traffic on the other route at $RATE pps: $sent frames sent, $got received, $((sent - got)) lost"
fi
# Where any loss happened: the PE's AF_XDP sockets, and each veth on the way.
echo "bench-bgp: the PE's sockets: $("$XPE" show interfaces --json --socket "$DIR/pe.sock" | /usr/bin/python3 -c '
import json, sys
for i in json.load(sys.stdin)["interfaces"]:
    print("%s rx_dropped %d rx_ring_full %d fill_ring_empty %d;" % (i["interface"], i["rx_dropped"], i["rx_ring_full"], i["rx_fill_ring_empty"]), end=" ")')"
veth_drops() {
    ip -n "$P-$1" -s -j link show dev "$2" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)[0]["stats64"]
print("rx_dropped %d tx_dropped %d" % (s["rx"]["dropped"], s["tx"]["dropped"]))'
}
echo "bench-bgp: veth drops: host eth0 $(veth_drops host eth0); pe a0 $(veth_drops pe a0); pe core1 $(veth_drops pe core1); sink eth0 $(veth_drops sink eth0)"
echo "bench-bgp: xpe's drops: $("$XPE" show counters --json --socket "$DIR/pe.sock" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: v for k, v in d["drops"].items() if v} or "none")')"
