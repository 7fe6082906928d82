#!/usr/bin/env bash
# scripts/demo.sh — the README's main job: a Direct Connect PE, offline.
#
# Installs what is missing (scripts/setup.sh, as root), builds xpe, shows the tables of
# examples/dx-pe.toml (two VPC VRFs with the same CIDRs on VLANs 101/102, an MPLS core),
# replays examples/dx-pe-sample.pcapng through the pipeline and decodes what came out with
# tshark: label stacks, TTLs, VLAN ids, and the reason of every drop.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -d "$CARGO_BIN" && ":$PATH:" != *":$CARGO_BIN:"* ]]; then
    export PATH="$CARGO_BIN:$PATH"
fi

heading() { printf '\n=== %s\n' "$*"; }

heading "setup (installs only what is missing)"
scripts/setup.sh | tail -n 3

heading "build"
cargo build --release -q -p xpe-control
XPE=target/release/xpe
CONFIG=examples/dx-pe.toml
SAMPLE=examples/dx-pe-sample.pcapng

WORK=$(mktemp -d /tmp/xpe-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

heading "xpe check $CONFIG"
"$XPE" check "$CONFIG"

heading "xpe show --config $CONFIG"
"$XPE" show --config "$CONFIG"

decode() {
    # One line per frame; several labels show outermost first, joined by ','.
    tshark -r "$1" -T fields -E header=y -E separator=/t -E occurrence=a -E aggregator=, \
        -e frame.number -e frame.interface_name -e vlan.id -e vlan.priority \
        -e mpls.label -e mpls.exp -e mpls.bottom -e mpls.ttl -e ip.ttl -e ipv6.hlim \
        -e ip.src -e ip.dst -e ipv6.dst -e _ws.col.Protocol 2>/dev/null |
        sed -e '1{s/frame.number/no/;s/frame.interface_name/if/;s/vlan.id/vlan/;s/vlan.priority/pcp/;s/mpls.label/labels/;s/mpls.exp/tc/;s/mpls.bottom/s/;s/mpls.ttl/label-ttl/;s/ip.ttl/ttl/;s/ipv6.hlim/hlim/;s/ipv6.dst/ipv6-dst/;s/_ws.col.Protocol/proto/}' |
        awk -F'\t' '{ for (i = 1; i <= NF; i++) printf "%s%s", ($i == "" ? "-" : $i), (i < NF ? "\t" : "\n") }' |
        column -t -s $'\t'
}
heading "input: $SAMPLE (each frame's comment says what it is)"
tshark -r "$SAMPLE" -T fields -e frame.number -e frame.interface_name -e frame.comment 2>/dev/null |
    awk -F'\t' '{ printf "  %2s  %-6s %s\n", $1, $2, $3 }'

heading "xpe trace: frame 1 step by step"
FRAME1=$(/usr/bin/python3 -c 'import sys; from scapy.utils import rdpcap; print(bytes(rdpcap(sys.argv[1])[0]).hex())' "$SAMPLE" 2>/dev/null)
"$XPE" trace "$CONFIG" --interface dx0 --frame "$FRAME1"

heading "xpe replay $CONFIG --in $SAMPLE"
"$XPE" replay "$CONFIG" --in "$SAMPLE" --out "$WORK/out.pcapng" --drops "$WORK/drops.pcapng"

heading "what came out (decoded by tshark)"
decode "$WORK/out.pcapng"

heading "what was dropped or punted, and why (the packet comment)"
tshark -r "$WORK/drops.pcapng" -T fields -e frame.number -e frame.interface_name -e frame.comment 2>/dev/null |
    awk -F'\t' '{ printf "  %2s  %-6s %s\n", $1, $2, $3 }'

printf '\ndemo: done\n'
