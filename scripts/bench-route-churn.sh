#!/usr/bin/env bash
# scripts/bench-route-churn.sh [ROUTES] [CHANGES] — route changes at scale in a running xpe:
# starts it with an empty VRF, loads ROUTES routes (1,000,000 by default) from a route file
# with `xpe route load` (timed end to end: reading, sending, checking, RIB, FIB, publish),
# then CHANGES times (500) one `xpe route del` and one `xpe route add` of a route of that
# VRF, each timed by the daemon ("published in") and by the client (round trip of the
# command); then, for CHURN_SECONDS (10), a route stream of RATE (100,000) changes per second
# (half remove routes, half put them back), each timed from its writing to its publication.
# Prints p50/p99/max and the daemon's RSS after each phase. Needs root; builds the release
# binary.
#
# Everything lives in one network namespace named xrc<pid> with one veth pair in it, removed
# on exit. No traffic is sent: the routes are table entries only (random prefixes outside
# 198.18.0.0/15, with a public table's length mix, all via the core neighbour 198.18.0.2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUTES="${1:-1000000}"
CHANGES="${2:-500}"
# IPv6 routes in a second VRF, for the IPv6 single changes.
V6ROUTES="${V6ROUTES:-100000}"
# The sustained phase: RATE changes per second streamed for CHURN_SECONDS seconds.
RATE="${RATE:-100000}"
CHURN_SECONDS="${CHURN_SECONDS:-10}"
[[ $EUID -eq 0 ]] || { echo "bench-route-churn: needs root (xpe run)" >&2; exit 1; }

cargo build -q --release -p xpe-control --bin xpe
cargo build -q --release -p xpe-benches --example route_feed
XPE="$PWD/target/release/xpe"
FEED="$PWD/target/release/examples/route_feed"
NS="xrc$$"
WORK="$(mktemp -d)"
PID=""
cleanup() {
    [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link add a0 type veth peer name a1
ip -n "$NS" link set a0 up
ip -n "$NS" link set a1 up
ip -n "$NS" link set lo up

python3 - "$ROUTES" "$WORK" "$V6ROUTES" <<'EOF'
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
lens = [16] * 10 + [19] * 30 + [20] * 20 + [21] * 40 + [22] * 90 + [23] * 80 + [24] * 600
seen = set()
with open(f"{work}/xrc.toml", "w") as f:
    f.write('[router]\nname = "xrc"\n\n[[interface]]\nname = "a0"\nkind = "edge"\n\n'
            '[[interface]]\nname = "a1"\nkind = "core"\naddress = "198.18.0.1/30"\n\n'
            '[[vrf]]\nname = "v"\n\n[[vrf.attachment]]\ninterface = "a0"\nvlan = 10\naddress = "198.18.1.1/24"\n\n'
            '[[vrf]]\nname = "w"\n\n[[vrf.attachment]]\ninterface = "a0"\nvlan = 20\naddress = "198.18.2.1/24"\n')
with open(f"{work}/xrc.routes", "w") as f, open(f"{work}/picks", "w") as picks:
    while len(seen) < n:
        ln = rng.choice(lens)
        addr = rng.randrange(1 << 24, 224 << 24) & ((0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF)
        if (addr >> 17) == (0xC612 >> 1) or (addr, ln) in seen:
            continue
        seen.add((addr, ln))
        a = f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/{ln}"
        f.write(f"v {a} via 198.18.0.2 labels 16001/2001\n")
        if len(seen) % max(1, n // 4000) == 0:
            picks.write(a + "\n")
# IPv6: V6ROUTES prefixes of /48, /56 and /64 inside 2001:db8::/32 in VRF w.
n6 = int(sys.argv[3])
seen = set()
with open(f"{work}/xrc6.routes", "w") as f, open(f"{work}/picks6", "w") as picks:
    while len(seen) < n6:
        ln = rng.choice([48] * 3 + [56] * 2 + [64] * 5)
        bits = rng.getrandbits(ln - 32) << (128 - ln)
        if (bits, ln) in seen:
            continue
        seen.add((bits, ln))
        words = [0x2001, 0x0db8] + [(bits >> (16 * i)) & 0xFFFF for i in range(5, 1, -1)]
        a = ":".join(f"{w:x}" for w in words) + f"::/{ln}"
        f.write(f"w {a} via 198.18.0.2 labels 16001/2002\n")
        if len(seen) % max(1, n6 // 4000) == 0:
            picks.write(a + "\n")
EOF

SOCK="$WORK/xrc.sock"
ip netns exec "$NS" "$XPE" run "$WORK/xrc.toml" --socket "$SOCK" > "$WORK/run.log" 2>&1 &
PID=$!
for _ in $(seq 600); do
    [[ -S "$SOCK" ]] && "$XPE" show counters --socket "$SOCK" > /dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/run.log" >&2; exit 1; }
    sleep 0.1
done
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status"; }
echo "xpe run, empty VRF: RSS $(rss)"
t0=$(date +%s.%N)
loaded=$("$XPE" route load "$WORK/xrc.routes" --socket "$SOCK")
t1=$(date +%s.%N)
echo "xpe route load of $ROUTES routes ($(du -h "$WORK/xrc.routes" | cut -f1)): $(echo "$t1 - $t0" | bc) s end to end; $loaded"
echo "RSS with $ROUTES routes: $(rss)"
: > "$WORK/daemon.ms"
: > "$WORK/client.ms"
mapfile -t PICKS < "$WORK/picks"
for i in $(seq 0 $((CHANGES - 1))); do
    p="${PICKS[$((i % ${#PICKS[@]}))]}"
    for cmd in "del $p --vrf v" "add $p --via 198.18.0.2 --labels 16001,2001 --vrf v"; do
        s=$(date +%s%N)
        # shellcheck disable=SC2086
        out=$("$XPE" route $cmd --socket "$SOCK")
        e=$(date +%s%N)
        echo "$out" | sed -n 's/.*published in \([0-9.]*\) ms.*/\1/p' >> "$WORK/daemon.ms"
        echo "scale=3; ($e - $s) / 1000000" | bc >> "$WORK/client.ms"
    done
done
stats() {
    sort -n "$1" | awk -v what="$2" '{v[NR] = $1} END {
        printf "%s: %d changes, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", what, NR,
            v[int((NR - 1) * 0.5) + 1], v[int((NR - 1) * 0.99) + 1], v[NR] }'
}
stats "$WORK/daemon.ms" "validate, RIB, FIB and publish (daemon)"
stats "$WORK/client.ms" "xpe route del/add round trip (client)"
echo "RSS after the changes: $(rss)"

# IPv6: V6ROUTES routes into VRF w, then CHANGES single removals and additions there.
echo "xpe route load of $V6ROUTES IPv6 routes: $("$XPE" route load "$WORK/xrc6.routes" --socket "$SOCK")"
: > "$WORK/daemon6.ms"
mapfile -t PICKS6 < "$WORK/picks6"
for i in $(seq 0 $((CHANGES - 1))); do
    p="${PICKS6[$((i % ${#PICKS6[@]}))]}"
    for cmd in "del $p --vrf w" "add $p --via 198.18.0.2 --labels 16001,2002 --vrf w"; do
        # shellcheck disable=SC2086
        "$XPE" route $cmd --socket "$SOCK" | sed -n 's/.*published in \([0-9.]*\) ms.*/\1/p' >> "$WORK/daemon6.ms"
    done
done
stats "$WORK/daemon6.ms" "IPv6, $V6ROUTES routes: validate, RIB, FIB and publish (daemon)"

# Sustained churn: a paced stream of changes (half removing routes, half putting them back)
# at RATE changes/s for CHURN_SECONDS, each timed from its writing to the daemon's
# acknowledgement that it is published (benches/examples/route_feed.rs).
awk '{print "del v " $1}' "$WORK/picks" > "$WORK/churn.routes"
awk '{print "v " $1 " via 198.18.0.2 labels 16001/2001"}' "$WORK/picks" >> "$WORK/churn.routes"
"$FEED" "$SOCK" "$WORK/churn.routes" "$RATE" "$CHURN_SECONDS"
echo "RSS after the churn: $(rss)"
