#!/usr/bin/env bash
# Live worker cost: xpe (LSR swap, PE imposition) next to the trivial AF_XDP forwarder
# (benches/src/bin/xpe-fwd.rs, the same I/O loop with a MAC rewrite only), trafgen as the
# generator. Read shared/MEASURING.md first; this is the placement it calls P0 with the
# sink's receive work on the DUT core:
#
#   [gen] gen0 --veth-- in0 [dut] out0 --veth-- sink0 [sink]
#   trafgen pinned to CPU0 (the DUT's XDP + AF_XDP copy of each frame runs there too, inside
#   trafgen's send), the DUT worker pinned to CPU1, the sink's kernel drop on CPU1 as softirq.
#
# trafgen offers about 0.5-0.8 Mpps here, below what either DUT can take, so Mpps mostly shows
# "keeps up"; the figure that compares DUTs is busy TSC cycles per packet of the worker (time
# in polls that found work / packets), as `xpe show runtime` reports it.
#
# usage: scripts/bench-live.sh [--runs N] [--packets N] [--json FILE]
# Needs root and a release build (it builds one). Namespaces and veths are named xbl<pid>-*
# and removed on exit; every process it starts is stopped by PID.
set -euo pipefail

RUNS=3
PACKETS=3000000
JSON=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --packets) PACKETS="$2"; shift 2 ;;
        --json) JSON="$2"; shift 2 ;;
        *) echo "usage: $0 [--runs N] [--packets N] [--json FILE]" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "bench-live.sh needs root (namespaces, XDP, AF_XDP)" >&2; exit 1; }
command -v trafgen >/dev/null || { echo "trafgen is missing: run scripts/setup.sh" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release --locked -q -p xpe-control --bin xpe -p xpe-benches --bin xpe-fwd
XPE="$ROOT/target/release/xpe"
FWD="$ROOT/target/release/xpe-fwd"

P="xbl$$"
WORK=$(mktemp -d "/tmp/$P.XXXX")
DUT_PID=""
cleanup() {
    if [[ -n "$DUT_PID" ]] && kill -0 "$DUT_PID" 2>/dev/null; then
        kill -TERM "$DUT_PID" 2>/dev/null || true
        wait "$DUT_PID" 2>/dev/null || true
    fi
    for ns in gen dut sink; do ip netns del "$P-$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for ns in gen dut sink; do ip netns add "$P-$ns"; done
ip link add gen0 netns "$P-gen" type veth peer name in0 netns "$P-dut"
ip link add out0 netns "$P-dut" type veth peer name sink0 netns "$P-sink"
for pair in gen:gen0 dut:in0 dut:out0 sink:sink0; do
    ns="$P-${pair%%:*}"; dev="${pair#*:}"
    ip netns exec "$ns" ethtool -K "$dev" rxvlan off txvlan off >/dev/null
    ip -n "$ns" link set "$dev" up
done
mac() { ip netns exec "$P-$1" cat "/sys/class/net/$2/address"; }
IN_MAC=$(mac dut in0)
SINK_MAC=$(mac sink sink0)

# The DUT configs: one per scenario; both leave on out0 toward the sink (static neighbour).
SINK_SIDE=$(cat <<EOF
[[interface]]
name = "out0"
kind = "core"
address = "198.18.31.1/30"
[[neighbor]]
interface = "out0"
ip = "198.18.31.2"
mac = "$SINK_MAC"
EOF
)
cat >"$WORK/swap.toml" <<EOF
[router]
name = "$P-swap"
[[interface]]
name = "in0"
kind = "core"
address = "198.18.30.1/30"
$SINK_SIDE
[[label]]
in = 16002
action = "swap"
out = [16003]
via = "198.18.31.2"
EOF
cat >"$WORK/impose.toml" <<EOF
[router]
name = "$P-impose"
[[interface]]
name = "in0"
kind = "edge"
$SINK_SIDE
[[vrf]]
name = "vpc-a"
table_label = 1001
[[vrf.attachment]]
interface = "in0"
vlan = 101
address = "198.18.30.1/30"
[[vrf.route]]
prefix = "198.18.40.0/24"
via = "198.18.31.2"
labels = [16002, 2001]
EOF

# The frames (60 bytes before the FCS), as trafgen byte lists, built with scapy.
/usr/bin/python3 - "$IN_MAC" "$WORK" <<'EOF'
import sys
from scapy.all import Ether, Dot1Q, IP, UDP, Raw
from scapy.contrib.mpls import MPLS
dst, work = sys.argv[1], sys.argv[2]
src = "02:00:00:00:00:01"
ip = IP(src="198.18.30.2", dst="198.18.40.1", ttl=64) / UDP(sport=1024, dport=9)
frames = {
    "swap": Ether(src=src, dst=dst) / MPLS(label=16002, s=1, ttl=64) / ip,
    "impose": Ether(src=src, dst=dst) / Dot1Q(vlan=101) / ip,
}
for name, f in frames.items():
    b = bytes(f)
    b += b"\x00" * max(0, 60 - len(b))
    with open(f"{work}/{name}.cfg", "w") as out:
        out.write("{ " + ", ".join(f"0x{x:02x}" for x in b) + " }\n")
EOF

stat() { ip netns exec "$P-$1" cat "/sys/class/net/$2/statistics/$3"; }

# start_dut KIND SCENARIO: runs the DUT in the background on CPU1.
start_dut() {
    local kind=$1 scenario=$2
    if [[ $kind == xpe ]]; then
        ip netns exec "$P-dut" "$XPE" run "$WORK/$scenario.toml" --cores 1 --socket "$WORK/dut.sock" \
            >"$WORK/dut.log" 2>&1 &
        DUT_PID=$!
        for _ in $(seq 100); do
            "$XPE" show runtime --socket "$WORK/dut.sock" >/dev/null 2>&1 && return 0
            sleep 0.1
        done
        echo "xpe did not start:" >&2; cat "$WORK/dut.log" >&2; exit 1
    else
        ip netns exec "$P-dut" "$FWD" in0 out0 --dst-mac "$SINK_MAC" --cores 1 --json \
            >"$WORK/dut.log" 2>&1 &
        DUT_PID=$!
        sleep 1
    fi
}

# stop_dut KIND: writes "cycles_per_packet average_batch" to $WORK/dut.figures (run in this
# shell, not a subshell: it must wait for its own child).
stop_dut() {
    local kind=$1 line
    if [[ $kind == xpe ]]; then
        line=$("$XPE" show runtime --json --socket "$WORK/dut.sock")
    fi
    kill -TERM "$DUT_PID"
    wait "$DUT_PID" || { echo "the DUT failed:" >&2; cat "$WORK/dut.log" >&2; exit 1; }
    DUT_PID=""
    if [[ $kind != xpe ]]; then
        line=$(grep '^{' "$WORK/dut.log" | head -1)
    fi
    /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
w = d["workers"][0] if "workers" in d else d
print("%.0f %.1f" % (w["busy_cycles_per_packet"], w["average_batch"]))' "$line" >"$WORK/dut.figures"
}

RESULTS="$WORK/results.txt"
: >"$RESULTS"
# The DUTs alternate run by run, so the machine's drift falls on both alike.
for scenario in swap impose; do
    for run in $(seq "$RUNS"); do
        for dut in forwarder xpe; do
            start_dut "$dut" "$scenario"
            # trafgen sometimes gives up early when its TX ring flush meets a full ring
            # (EAGAIN): such an attempt is repeated, up to three times.
            for attempt in 1 2 3; do
                tx0=$(stat gen gen0 tx_packets); rx0=$(stat sink sink0 rx_packets)
                t0=$(date +%s.%N)
                # --no-sock-mem: leave the system's socket memory settings alone.
                taskset -c 0 ip netns exec "$P-gen" trafgen -o gen0 -c "$WORK/$scenario.cfg" -n "$PACKETS" -P 1 -q -C --no-sock-mem \
                    >"$WORK/trafgen.log" 2>&1 || true
                t1=$(date +%s.%N)
                sleep 0.2
                tx1=$(stat gen gen0 tx_packets); rx1=$(stat sink sink0 rx_packets)
                if (( (tx1 - tx0) * 100 >= PACKETS * 99 )); then
                    break
                fi
                echo "trafgen sent $((tx1 - tx0)) of $PACKETS frames ($scenario, $dut, run $run, attempt $attempt)" >&2
                if (( attempt == 3 )); then
                    cat "$WORK/trafgen.log" >&2; exit 1
                fi
            done
            stop_dut "$dut"
            read -r cpp batch <"$WORK/dut.figures"
            echo "$scenario $dut $run $t0 $t1 $((tx1 - tx0)) $((rx1 - rx0)) $cpp $batch" | tee -a "$RESULTS" >&2
        done
    done
done

/usr/bin/python3 - "$RESULTS" "$JSON" "$(nproc)" <<'EOF'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
out = []
print("| scenario | DUT | offered Mpps | delivered Mpps | busy cycles/packet | avg batch |")
print("|---|---|---|---|---|---|")
by = {}
for scen, dut, run, t0, t1, tx, rx, cpp, batch in rows:
    secs = float(t1) - float(t0)
    by.setdefault((scen, dut), []).append((int(tx) / secs / 1e6, int(rx) / secs / 1e6, float(cpp), float(batch)))
def cell(xs):
    return f"{statistics.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"
for (scen, dut), runs in by.items():
    off, dl, cpp, b = (list(x) for x in zip(*runs))
    print(f"| {scen} | {dut} | {cell(off)} | {cell(dl)} | {statistics.median(cpp):.0f} ({min(cpp):.0f}-{max(cpp):.0f}) | {statistics.median(b):.1f} |")
    out.append({"scenario": scen, "dut": dut, "offered_mpps": off, "delivered_mpps": dl, "busy_cycles_per_packet": cpp, "average_batch": b})
for scen in sorted({s for s, _ in by}):
    f, x = by.get((scen, "forwarder")), by.get((scen, "xpe"))
    if f and x:
        cf = statistics.median([r[2] for r in f]); cx = statistics.median([r[2] for r in x])
        print(f"\n{scen}: xpe {cx:.0f} vs forwarder {cf:.0f} busy cycles/packet: {100 * (cx / cf - 1):+.1f}%")
if sys.argv[2]:
    json.dump(out, open(sys.argv[2], "w"), indent=1)
EOF
