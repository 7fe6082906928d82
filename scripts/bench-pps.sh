#!/usr/bin/env bash
# scripts/bench-pps.sh — packets per second: xpe next to the trivial AF_XDP forwarder, Open
# vSwitch (AF_XDP), the Linux kernel and in-kernel XDP redirect, in one run (issue 4).
#
#   [gen ns] g0 --veth-- in [dut ns] out --veth-- s0 [sink ns]
#   xpe gen (XDP live frames) on CPU0, the DUT on CPU1, xpe sink counting at the end.
#
# Installs what it needs (scripts/setup.sh --bench: Open vSwitch among the rest), builds xpe
# and xpe-fwd (release), then runs scripts/bench_pps.py, which explains the placements, the
# counting and the output check of each DUT. Prints a markdown table and the goal ratios, and
# writes benches/results/pps.{json,md,png}.
#
# usage: scripts/bench-pps.sh [--runs N] [--seconds S] [--duts LIST] [--scenarios LIST]
#                             [--sizes LIST] [--placements LIST] [--flows N] [--out DIR]
#                             [--interleave]
# (--help lists all.) The full matrix takes about 40 minutes. Needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -d "$CARGO_BIN" && ":$PATH:" != *":$CARGO_BIN:"* ]]; then
    export PATH="$CARGO_BIN:$PATH"
fi
[[ $(id -u) == 0 ]] || { echo "bench-pps.sh needs root (namespaces, XDP, AF_XDP); run it with sudo" >&2; exit 1; }

echo "bench-pps: setup (installs only what is missing)" >&2
scripts/setup.sh --bench | tail -n 2 >&2
echo "bench-pps: building xpe and xpe-fwd (release)" >&2
LOCKED=()
[[ -n "$(git ls-files -- Cargo.lock 2>/dev/null || true)" ]] && LOCKED=(--locked)
cargo build --release -q "${LOCKED[@]}" -p xpe-control --bin xpe -p xpe-benches --bin xpe-fwd
# Let the build's writeback finish before the first row: in one run the first DUT measured
# right after a build delivered 13% less than the same binary a few minutes later.
sync
sleep 10

exec /usr/bin/python3 scripts/bench_pps.py --xpe target/release/xpe --fwd target/release/xpe-fwd "$@"
