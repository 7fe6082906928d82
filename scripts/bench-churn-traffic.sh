#!/usr/bin/env bash
# scripts/bench-churn-traffic.sh [PPS] — route churn while xpe forwards: does an update cost
# frames? Read shared/MEASURING.md first.
#
#   [gen ns] g --veth-- i [dut ns: xpe] o --veth-- s [sink ns]
#
# xpe's VRF v holds ROUTES routes (1,000,000 by default: a /32 host route for each of the
# 65,536 destinations the flows send to, the rest random prefixes with a public table's
# length mix), loaded from a route file at start. `xpe gen` offers PPS frames per second
# (200,000 by default: a rate the worker takes without loss here; check the baseline's
# accounting) of 65,536 flows on VLAN 101 for SECONDS (10) plus a second of warm-up, twice:
#   1. baseline: no route changes;
#   2. churn: benches/examples/route_feed streams RATE (100,000) route changes per second
#      for the same SECONDS: the flows' own host routes replaced by routes with other labels
#      and back (every frame's route changes under it, none goes away), and other prefixes
#      removed and put back.
# Printed for each: the delivered rate in the window and, over the whole run, every frame
# accounted for: offered = taken by xpe + refused before it; taken = forwarded + xpe's drops
# by reason; forwarded = delivered at the sink. A frame lost because of an update would show
# as a gap or as a drop with no route behind it (the flows' routes never go away).
#
# Placement (2 cores): CPU1 runs xpe's worker (busy polling, --cores 1) and, as softirq in
# its transmit, the sink's XDP drop; CPU0 runs the generator, xpe's other threads (route
# committer, control socket), route_feed and the generator's XDP work in the DUT's receive.
#
# Needs root; builds the release binaries. Namespaces xct<pid>-*, veths xct<pid>{g,i,o,s},
# all removed on exit; every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PPS="${1:-200000}"
ROUTES="${ROUTES:-1000000}"
RATE="${RATE:-100000}"
SECS="${SECONDS_RUN:-10}"
[[ $EUID -eq 0 ]] || { echo "bench-churn-traffic: needs root" >&2; exit 1; }

cargo build -q --release -p xpe-control --bin xpe
cargo build -q --release -p xpe-benches --example route_feed
XPE="$PWD/target/release/xpe"
FEED="$PWD/target/release/examples/route_feed"
P="xct$$"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    for ns in gen dut sink; do ip netns del "$P-$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

MAC_G=02:00:00:00:0c:01 MAC_I=02:00:00:00:0c:02 MAC_O=02:00:00:00:0c:03 MAC_S=02:00:00:00:0c:04
for ns in gen dut sink; do ip netns add "$P-$ns"; done
ip link add "${P}g" netns "$P-gen" address $MAC_G type veth peer name "${P}i" netns "$P-dut" address $MAC_I
ip link add "${P}o" netns "$P-dut" address $MAC_O type veth peer name "${P}s" netns "$P-sink" address $MAC_S
for pair in gen:g dut:i dut:o sink:s; do
    ns="$P-${pair%%:*}"; dev="$P${pair#*:}"
    ip netns exec "$ns" ethtool -K "$dev" rxvlan off txvlan off > /dev/null
    # No IPv6 on the links: its router solicitations would be frames nobody offered.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set "$dev" up
done

cat > "$WORK/xct.toml" <<EOF
[router]
name = "$P"

[[interface]]
name = "${P}i"
kind = "edge"

[[interface]]
name = "${P}o"
kind = "core"
address = "198.18.31.1/30"

[[neighbor]]
interface = "${P}o"
ip = "198.18.31.2"
mac = "$MAC_S"

[[vrf]]
name = "v"

[[vrf.attachment]]
interface = "${P}i"
vlan = 101
address = "198.18.30.1/30"
EOF
python3 - "$ROUTES" "$WORK" <<'EOF'
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
hosts = [f"198.19.{i >> 8}.{i & 255}/32" for i in range(65536)]
lens = [16] * 10 + [19] * 30 + [20] * 20 + [21] * 40 + [22] * 90 + [23] * 80 + [24] * 600
seen, others = set(), []
while len(others) < n - len(hosts):
    ln = rng.choice(lens)
    addr = rng.randrange(1 << 24, 224 << 24) & ((0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF)
    if (addr >> 17) == (0xC612 >> 1) or (addr, ln) in seen:  # not inside 198.18.0.0/15
        continue
    seen.add((addr, ln))
    others.append(f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/{ln}")
via = "via 198.18.31.2 labels"
with open(f"{work}/xct.routes", "w") as f:
    for p in hosts:
        f.write(f"v {p} {via} 16001/2001\n")
    for p in others:
        f.write(f"v {p} {via} 16001/2002\n")
# The churn: 4,000 of the flows' host routes to other labels, 4,000 other prefixes
# removed, the host routes back, the prefixes back; over and over.
h, o = hosts[::16][:4000], others[::max(1, len(others) // 4000)][:4000]
with open(f"{work}/churn.routes", "w") as f:
    f.writelines(f"v {p} {via} 16001/2003\n" for p in h)
    f.writelines(f"del v {p}\n" for p in o)
    f.writelines(f"v {p} {via} 16001/2001\n" for p in h)
    f.writelines(f"v {p} {via} 16001/2002\n" for p in o)
EOF

SOCK="$WORK/xct.sock"
# XPE_ARGS: more `xpe run` arguments (e.g. "--fast-path xdp": the sink's XDP program lets the
# kernel send to it, so the flows are forwarded in the kernel and the worker sees none).
env ${XPE_ENV:-} ip netns exec "$P-dut" "$XPE" run "$WORK/xct.toml" --cores 1 --socket "$SOCK" \
    --routes "$WORK/xct.routes" ${XPE_ARGS:-} > "$WORK/run.log" 2>&1 &
XPE_PID=$!
PIDS+=("$XPE_PID")
for _ in $(seq 1200); do
    "$XPE" show counters --socket "$SOCK" > /dev/null 2>&1 && break
    kill -0 "$XPE_PID" 2>/dev/null || { cat "$WORK/run.log" >&2; exit 1; }
    sleep 0.1
done
# Every xpe thread but the worker to CPU0 (connection threads started later inherit it).
for task in /proc/"$XPE_PID"/task/*; do
    [[ "$(cat "$task/comm")" == xpe-worker* ]] || taskset -pc 0 "${task##*/}" > /dev/null
done
ip netns exec "$P-sink" taskset -c 0 "$XPE" sink --dev "${P}s" > "$WORK/sink.log" 2>&1 &
PIDS+=("$!")
sleep 1
grep -m1 "routes from" "$WORK/run.log" || true

stat_sum() { # NS DEV REGEX: the sum of the ethtool counters matching REGEX
    ip netns exec "$1" ethtool -S "$2" | awk -v re="$3" '$1 ~ re {s += $2} END {print s + 0}'
}
offered() { stat_sum "$P-gen" "${P}g" '^tx_queue_[0-9]+_xdp_xmit(_errors)?:$'; }
delivered() { stat_sum "$P-sink" "${P}s" '^rx_queue_[0-9]+_xdp_drops:$'; }
counters() { "$XPE" show counters --json --socket "$SOCK"; }
# TLB shootdowns and function-call interrupts CPU1 (the worker's) has taken.
interrupts() { awk '$1 == "TLB:" || $1 == "CAL:" {s += $3} END {print s + 0}' /proc/interrupts; }

run_phase() { # NAME CHURN(0/1)
    local o0 d0 c0 w0 w1 wd0 wd1 o1 d1 c1
    o0=$(offered); d0=$(delivered); c0=$(counters)
    ip netns exec "$P-gen" taskset -c 0 "$XPE" gen --dev "${P}g" --dst-mac $MAC_I \
        --src 198.18.0.1 --dst 198.19.0.0 --flows 65536 --vary src,dst,ports --vlan 101 \
        --rate "$PPS" --duration "$((SECS + 2))" > "$WORK/gen.log" 2>&1 &
    local gen=$!
    PIDS+=("$gen")
    sleep 1
    w0=$(offered); wd0=$(delivered)
    local i0 i1
    i0=$(interrupts)
    local t0 feed=""
    t0=$(date +%s.%N)
    if [[ $2 == 1 ]]; then
        taskset -c 0 "$FEED" "$SOCK" "$WORK/churn.routes" "$RATE" "$SECS" > "$WORK/feed.log" 2>&1 &
        feed=$!
        PIDS+=("$feed")
    fi
    sleep "$SECS"
    w1=$(offered); wd1=$(delivered)
    i1=$(interrupts)
    local t1
    t1=$(date +%s.%N)
    wait "$gen" || { cat "$WORK/gen.log" >&2; exit 1; }
    [[ -n "$feed" ]] && { wait "$feed" || { cat "$WORK/feed.log" >&2; exit 1; }; }
    sleep 0.5
    o1=$(offered); d1=$(delivered); c1=$(counters)
    python3 - "$1" "$o0" "$o1" "$d0" "$d1" "$w0" "$w1" "$wd0" "$wd1" "$t0" "$t1" "${P}i" "$c0" "$c1" "$((i1 - i0))" <<'EOF'
import json, sys
name, o0, o1, d0, d1, w0, w1, wd0, wd1, t0, t1, dev = sys.argv[1:13]
c0, c1 = json.loads(sys.argv[13]), json.loads(sys.argv[14])
ipis = int(sys.argv[15])
o0, o1, d0, d1, w0, w1, wd0, wd1 = map(int, (o0, o1, d0, d1, w0, w1, wd0, wd1))
secs = float(t1) - float(t0)
rx = lambda c: next(i["rx_packets"] for i in c["interfaces"] if i["interface"] == dev)
taken = rx(c1) - rx(c0)
fwd = c1["forwarded"] - c0["forwarded"]
drops = {k: v - c0["drops"].get(k, 0) for k, v in c1["drops"].items() if v - c0["drops"].get(k, 0)}
punts = sum(c1["punts"].values()) - sum(c0["punts"].values())
offered, delivered = o1 - o0, d1 - d0
print(f"{name}: offered {(w1 - w0) / secs / 1e6:.3f} Mpps, delivered {(wd1 - wd0) / secs / 1e6:.3f} Mpps in the {secs:.1f} s window; "
      f"CPU1 took {ipis / secs:.0f} TLB-shootdown and call interrupts/s")
print(f"  whole run: offered {offered}, taken by xpe {taken}, refused before xpe {offered - taken}; "
      f"forwarded {fwd}, dropped by xpe {sum(drops.values())} {drops or ''}, punted {punts}; delivered {delivered}")
# Every frame xpe took is forwarded or counted, every forwarded one arrives, and what it did
# not take the kernel counted (refused by the generator's link or xpe's full receive ring).
ok = taken == fwd + sum(drops.values()) + punts and fwd == delivered
fast = lambda c: (c.get("fast_path") or {}).get("forwarded", 0)
if c1.get("fast_path"):
    print(f"  of the forwarded, {fast(c1) - fast(c0)} went through the XDP fast path (--fast-path xdp)")
print(f"  accounted: {'every frame' if ok else 'NOT every frame'} "
      f"(offered - delivered = {offered - delivered}, counted = {offered - taken + sum(drops.values()) + punts})")
print(f"WINDOW {name} {(wd1 - wd0) / secs}")
EOF
    [[ $2 == 1 ]] && sed 's/^/  /' "$WORK/feed.log"
    return 0
}
echo "xpe: $ROUTES routes in VRF v; gen $PPS pps, 65536 flows, ${SECS} s (+1 s warm-up)"
run_phase baseline 0 | tee "$WORK/base.out" | grep -v "^WINDOW"
run_phase churn 1 | tee "$WORK/churn.out" | grep -v "^WINDOW"
b=$(awk '/^WINDOW/ {print $3}' "$WORK/base.out")
c=$(awk '/^WINDOW/ {print $3}' "$WORK/churn.out")
python3 -c "import sys; b, c = float(sys.argv[1]), float(sys.argv[2]); print(f'dip in delivered pps under churn: {(1 - c / b) * 100:.2f}% ({b / 1e6:.3f} -> {c / 1e6:.3f} Mpps)')" "$b" "$c"
