#!/usr/bin/env bash
# scripts/bench-punt.sh — the punt path's goals (issue 13). Read shared/MEASURING.md first.
#
#   [host ns] h --veth-- t [dut ns: xpe] i --veth-- g [gen ns]
#                                         f --veth-- F [gen ns]
#                                         o --veth-- s [sink ns]
#
# xpe has VRF a (VLAN 101 on i: 198.18.30.1/30; 198.19.0.0/16 through the core o to the
# sink, labels 16001/2001) and VRF h (VLAN 103 on t: 198.18.34.1/30, the host's VIF). The
# phases, each printed with its figures:
#   1. tcp:     a bulk TCP transfer (BYTES, 200 MB) from the host to 198.18.34.1 port 179,
#               which a server in VRF h's mirror namespace reads: Mbit/s, and the punt path's
#               frames per second (to the kernel and back) from the mirror's counters;
#   2. flood:   `xpe gen` as fast as it goes (UDP, on F into port f, VRF a's untagged
#               attachment) at 198.18.32.1, the PE's own address, for SECS (5) while a TCP
#               session (port 179, class routing) from the host exchanges a message every
#               second: the longest gap between its replies, what xpe took, and how the
#               `other` class policed it;
#   3. transit: gen at PPS (300,000) through VRF a to the sink alone, then the same with the
#               flood beside it: transit delivered both times, and the flood's share of what
#               the worker took.
#
# Placement (2 cores): CPU1 runs xpe's worker (--cores 1) and the sink's XDP drop; CPU0
# everything else (generators, the host, the mirror thread, the kernel's TCP).
#
# Needs root; builds the release binary. Namespaces xpb<pid>-*, all removed on exit; every
# process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PPS="${PPS:-300000}"
SECS="${SECONDS_RUN:-5}"
BYTES="${BYTES:-200000000}"
[[ $EUID -eq 0 ]] || { echo "bench-punt: needs root" >&2; exit 1; }
PYTHON=/usr/bin/python3

cargo build -q --release -p xpe-control --bin xpe
XPE="$PWD/target/release/xpe"
P="xpb$$"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    for ns in host gen dut sink dut-a dut-h; do ip netns del "$P-$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

MAC_G=02:00:00:00:0d:01 MAC_I=02:00:00:00:0d:02 MAC_O=02:00:00:00:0d:03 MAC_S=02:00:00:00:0d:04
MAC_H=02:00:00:00:0d:05 MAC_T=02:00:00:00:0d:06 MAC_FG=02:00:00:00:0d:07 MAC_F=02:00:00:00:0d:08
for ns in host gen dut sink; do ip netns add "$P-$ns"; done
ip link add "${P}h" netns "$P-host" address $MAC_H type veth peer name "${P}t" netns "$P-dut" address $MAC_T
ip link add "${P}g" netns "$P-gen" address $MAC_G type veth peer name "${P}i" netns "$P-dut" address $MAC_I
ip link add "${P}o" netns "$P-dut" address $MAC_O type veth peer name "${P}s" netns "$P-sink" address $MAC_S
ip link add "${P}F" netns "$P-gen" address $MAC_FG type veth peer name "${P}f" netns "$P-dut" address $MAC_F
for pair in host:h dut:t gen:g dut:i dut:o sink:s gen:F dut:f; do
    ns="$P-${pair%%:*}"; dev="$P${pair#*:}"
    ip netns exec "$ns" ethtool -K "$dev" rxvlan off txvlan off > /dev/null
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$ns" link set "$dev" up
done
ip -n "$P-host" link set lo up
ip -n "$P-host" addr add 198.18.34.2/30 dev "${P}h"
ip netns exec "$P-host" ethtool -K "${P}h" tx off > /dev/null
ip netns exec "$P-host" "$XPE" host-vlan "${P}h" 103 > /dev/null

cat > "$WORK/xpb.toml" <<EOF
[router]
name = "xpb"

[[interface]]
name = "${P}t"
kind = "edge"

[[interface]]
name = "${P}i"
kind = "edge"

[[interface]]
name = "${P}f"
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
name = "a"
namespace = "$P-dut-a"

[[vrf.attachment]]
interface = "${P}i"
vlan = 101
address = "198.18.30.1/30"

[[vrf.attachment]]
interface = "${P}f"
address = "198.18.32.1/30"

[[vrf.route]]
prefix = "198.19.0.0/16"
via = "198.18.31.2"
labels = [16001, 2001]

[[vrf]]
name = "h"
namespace = "$P-dut-h"

[[vrf.attachment]]
interface = "${P}t"
vlan = 103
address = "198.18.34.1/30"
EOF

SOCK="$WORK/xpb.sock"
ip netns exec "$P-dut" "$XPE" run "$WORK/xpb.toml" --cores 1 --socket "$SOCK" > "$WORK/run.log" 2>&1 &
XPE_PID=$!
PIDS+=("$XPE_PID")
for _ in $(seq 200); do
    "$XPE" show counters --socket "$SOCK" > /dev/null 2>&1 && break
    kill -0 "$XPE_PID" 2>/dev/null || { cat "$WORK/run.log" >&2; exit 1; }
    sleep 0.1
done
for task in /proc/"$XPE_PID"/task/*; do
    # A thread may end meanwhile (a control connection's).
    comm=$(cat "$task/comm" 2>/dev/null) || continue
    [[ "$comm" == xpe-worker* ]] || taskset -pc 0 "${task##*/}" > /dev/null 2>&1 || true
done
ip netns exec "$P-sink" taskset -c 0 "$XPE" sink --dev "${P}s" > "$WORK/sink.log" 2>&1 &
PIDS+=("$!")
sleep 1
ip netns exec "$P-host" ping -c 2 -W 1 198.18.34.1 > /dev/null || true

counters() { "$XPE" show counters --json --socket "$SOCK"; }
interfaces() { "$XPE" show interfaces --json --socket "$SOCK"; }
delivered() { ip netns exec "$P-sink" ethtool -S "${P}s" | awk '$1 ~ /^rx_queue_[0-9]+_xdp_drops:$/ {s += $2} END {print s + 0}'; }

SERVER='
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.34.1", 179)); s.listen(1); s.settimeout(60)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(60)
if sys.argv[1] == "bulk":
    n = 0
    while b := c.recv(1 << 20):
        n += len(b)
    c.sendall(str(n).encode())
else:
    f = c.makefile("rwb")
    for line in f:
        f.write(line); f.flush()
'
BULK='
import socket, sys, time
n = int(sys.argv[1]); chunk = b"x" * (1 << 20)
s = socket.create_connection(("198.18.34.1", 179), timeout=10)
t = time.time(); left = n
while left > 0:
    s.sendall(chunk[:min(left, len(chunk))]); left -= min(left, len(chunk))
s.shutdown(socket.SHUT_WR); got = int(s.recv(100)); dt = time.time() - t
print(f"{got} {dt:.3f}")
'
SESSION='
import socket, sys, time
seconds = float(sys.argv[1])
s = socket.create_connection(("198.18.34.1", 179), timeout=10); f = s.makefile("rwb")
n, gap, last, end = 0, 0.0, time.time(), time.time() + seconds
while time.time() < end:
    f.write(b"keepalive\n"); f.flush()
    if not f.readline():
        break
    n += 1; now = time.time(); gap = max(gap, now - last); last = now
    time.sleep(1)
print(f"{n} {gap:.3f}")
'
server() { # MODE: a server in VRF h's mirror namespace; waits until it listens
    local fifo
    fifo="$WORK/server.fifo"
    rm -f "$fifo"; mkfifo "$fifo"
    ip netns exec "$P-dut-h" taskset -c 0 "$PYTHON" -c "$SERVER" "$1" > "$fifo" 2>/dev/null &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    read -r -t 10 _ < "$fifo"
}
mirror_of_h() { interfaces | "$PYTHON" -c '
import json, sys
m = next(m for m in json.load(sys.stdin)["mirrors"] if m["vrf"] == "h")
print(m["punted"], m["injected"])'; }

echo "== 1. TCP through the punt path: $BYTES bytes from the host to 198.18.34.1:179"
server bulk
read -r p0 i0 < <(mirror_of_h)
r0=$(counters)
read -r got secs < <(ip netns exec "$P-host" taskset -c 0 "$PYTHON" -c "$BULK" "$BYTES")
read -r p1 i1 < <(mirror_of_h)
r1=$(counters)
wait "$SERVER_PID" || true
"$PYTHON" -c '
import json, sys
got, secs, p, i = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c0, c1 = json.loads(sys.argv[5]), json.loads(sys.argv[6])
passed, dropped = (c1["policed"]["routing"][f] - c0["policed"]["routing"][f] for f in ("passed", "dropped"))
print(f"tcp: {got} bytes in {secs:.2f} s = {got * 8 / secs / 1e6:.0f} Mbit/s; "
      f"punt path {p / secs / 1e3:.1f} kpps to the kernel, {i / secs / 1e3:.1f} kpps back; "
      f"routing class passed {passed}, dropped {dropped}")' \
    "$got" "$secs" "$((p1 - p0))" "$((i1 - i0))" "$r0" "$r1"

flood() { # SECONDS: as fast as gen goes, at the PE's own address on port f
    ip netns exec "$P-gen" taskset -c 0 "$XPE" gen --dev "${P}F" --dst-mac $MAC_F \
        --src 198.18.32.2 --dst 198.18.32.1 --dport 9 --duration "$1" --json
}
transit() { # SECONDS
    ip netns exec "$P-gen" taskset -c 0 "$XPE" gen --dev "${P}g" --dst-mac $MAC_I \
        --src 198.18.30.2 --dst 198.19.0.1 --flows 256 --vary dst,ports --vlan 101 \
        --rate "$PPS" --duration "$1" --json
}

echo
echo "== 2. A flood at the PE's own address while a TCP session (port 179) talks every second"
server echo
c0=$(counters)
ip netns exec "$P-host" taskset -c 0 "$PYTHON" -c "$SESSION" "$((SECS + 3))" > "$WORK/session.out" &
SESSION_PID=$!
sleep 1
flood "$SECS" > "$WORK/flood.json"
wait "$SESSION_PID"
c1=$(counters)
"$PYTHON" - "$c0" "$c1" "$(cat "$WORK/flood.json")" "$(cat "$WORK/session.out")" "$SECS" "${P}f" <<'EOF'
import json, sys
c0, c1, gen = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
replies, gap = sys.argv[4].split()
secs, dev = float(sys.argv[5]), sys.argv[6]
rx = lambda c: next(i["rx_packets"] for i in c["interfaces"] if i["interface"] == dev)
pol = lambda c, k, f: c["policed"][k][f]
taken = rx(c1) - rx(c0)
passed = pol(c1, "other", "passed") - pol(c0, "other", "passed")
dropped = pol(c1, "other", "dropped") - pol(c0, "other", "dropped")
routing = pol(c1, "routing", "passed") - pol(c0, "routing", "passed")
print(f"flood: offered {gen['sent'] / secs / 1e6:.2f} Mpps ({gen['sent']} frames); xpe took {taken} ({taken / secs / 1e6:.3f} Mpps)")
print(f"  policed as other: {passed} passed to the kernel, {dropped} dropped; routing class passed {routing}")
print(f"  the TCP session: {replies} replies, longest gap {float(gap):.2f} s")
EOF

echo
echo "== 3. Transit at $PPS pps alone, then with the flood beside it"
transit_phase() { # NAME WITH_FLOOD
    local d0 d1 c0 c1 fl=""
    c0=$(counters); d0=$(delivered)
    if [[ $2 == 1 ]]; then
        flood "$SECS" > "$WORK/flood2.json" &
        fl=$!
    fi
    transit "$SECS" > "$WORK/transit.json"
    [[ -n "$fl" ]] && wait "$fl"
    sleep 0.5
    c1=$(counters); d1=$(delivered)
    "$PYTHON" - "$1" "$c0" "$c1" "$(cat "$WORK/transit.json")" "$((d1 - d0))" "${P}i" "${P}f" \
        "$( [[ -n "$fl" ]] && cat "$WORK/flood2.json" || echo '{"sent": 0}')" <<'EOF'
import json, sys
name, c0, c1, tr, delivered, dev, fdev, fl = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7], json.loads(sys.argv[8])
rx = lambda c, d: next(i["rx_packets"] for i in c["interfaces"] if i["interface"] == d)
taken = rx(c1, dev) - rx(c0, dev) + rx(c1, fdev) - rx(c0, fdev)
forwarded = c1["forwarded"] - c0["forwarded"]
policed = sum(c1["policed"][k][f] - c0["policed"][k][f] for k in c1["policed"] for f in ("passed", "dropped"))
share = policed / taken if taken else 0
print(f"{name}: transit offered {tr['sent']}, delivered {delivered} ({delivered / max(tr['sent'], 1) * 100:.1f}%); "
      f"flood offered {fl['sent']}; xpe took {taken}, of which the flood (policed) {policed} = {share * 100:.1f}% of the worker's frames")
EOF
}
transit_phase "transit alone" 0
transit_phase "transit + flood" 1
