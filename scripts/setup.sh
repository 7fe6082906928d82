#!/usr/bin/env bash
# scripts/setup.sh — install everything xpe needs to build and test.
#
# For a Debian 12 (bookworm) machine, run as root (CI runs as root). Safe to run
# again: it skips what is already there, so a second run takes seconds.
#
# Installs:
#   * Debian packages (apt-get --no-install-recommends, only the missing ones):
#     tshark python3-scapy iproute2 iputils-ping traceroute iputils-tracepath ethtool netsniff-ng
#     gnuplot-nox procps bsdextrautils pkg-config prometheus (promtool and the server the
#     metrics test scrapes xpe with; the package's own service is never started here)
#     m4 make gcc libelf-dev zlib1g-dev; for BGP (docs/bgp.md) gobgpd (the daemon xpe runs),
#     golang-github-osrg-gobgp-dev (GoBGP's proto files, compiled into xpe at build time),
#     protobuf-compiler and libprotobuf-dev (protoc and the well-known types), and frr (the
#     route reflector and CEs of the tests and the lab; its daemons are never started by the
#     package here); and for the eBPF build
#     clang-22 llvm-22 llvm-22-dev libclang-22-dev. The LLVM 22 packages come
#     from bookworm-security (suite already in the stock sources: no extra apt
#     source, no pinning).
#   * rust-src for the nightly toolchain (needed by the eBPF build, -Z build-std).
#   * bpf-linker 0.13.0, built against Debian's LLVM 22 (/usr/lib/llvm-22).
#   * cargo-fuzz 0.13.2, for the fuzz smoke run of scripts/test.sh.
#
# If LLVM 22 cannot be found in the configured apt sources, the eBPF toolchain
# part is skipped with a one-line notice and everything else still installs.
#
# Options:
#   --bench          also what scripts/bench-pps.sh compares xpe with: openvswitch-switch
#                    (its daemons are never started by the package: the harness runs its own)
#
# Environment knobs:
#   XPE_SETUP_JOBS   cargo build jobs for `cargo install bpf-linker` (default 2)
set -euo pipefail

BENCH=0
for arg in "$@"; do
    case "$arg" in
        --bench) BENCH=1 ;;
        *) printf 'setup: ERROR: unknown option %s (usage: setup.sh [--bench])\n' "$arg" >&2; exit 2 ;;
    esac
done

log()  { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
die()  { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ "$(id -u)" -ne 0 ]]; then
    die "must run as root (it installs Debian packages with apt-get); re-run as root, e.g. 'sudo $0'"
fi

if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    if [[ "${ID:-}" != "debian" || "${VERSION_CODENAME:-}" != "bookworm" ]]; then
        warn "written for Debian 12 (bookworm); this is '${PRETTY_NAME:-unknown}'. Continuing anyway."
    fi
fi

export DEBIAN_FRONTEND=noninteractive

BASE_PKGS=(
    gobgpd golang-github-osrg-gobgp-dev protobuf-compiler libprotobuf-dev frr
    tshark python3-scapy iproute2 iputils-ping traceroute iputils-tracepath ethtool netsniff-ng
    gnuplot-nox procps bsdextrautils pkg-config m4 make gcc libelf-dev zlib1g-dev
    prometheus
)
LLVM_PKGS=(clang-22 llvm-22 llvm-22-dev libclang-22-dev)
BENCH_PKGS=(openvswitch-switch)
if ((BENCH)); then
    BASE_PKGS+=("${BENCH_PKGS[@]}")
fi
LLVM_PREFIX_DIR=/usr/lib/llvm-22
BPF_LINKER_VERSION=0.13.0

EBPF_SKIP_REASON=""

# ---------------------------------------------------------------- helpers ---

# True when the Debian package is installed (status "install ok installed").
pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# True when apt knows an installable candidate version for the package.
pkg_has_candidate() {
    local cand
    cand="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
    [[ -n "$cand" && "$cand" != "(none)" ]]
}

is_llvm_pkg() {
    case "$1" in
        clang-22 | llvm-22 | llvm-22-dev | libclang-22-dev) return 0 ;;
        *) return 1 ;;
    esac
}

# Simulate the install first and refuse anything that would remove packages
# or take packages from outside Debian 12's own suites (bookworm,
# bookworm-updates, bookworm-security). Upgrades *within* those suites are
# ordinary stable/security updates and are allowed (they are logged).
apt_safe_install() {
    local sim bad removals upgrades
    sim="$(apt-get install -s -y --no-install-recommends "$@")" \
        || die "apt-get simulation failed for: $*"
    removals="$(grep '^Remv ' <<<"$sim" || true)"
    if [[ -n "$removals" ]]; then
        printf '%s\n' "$removals" >&2
        die "installing [$*] would REMOVE packages (listed above); refusing."
    fi
    bad="$(grep '^Inst ' <<<"$sim" | grep -Ev ' (Debian|Debian-Security):12[./]' || true)"
    if [[ -n "$bad" ]]; then
        printf '%s\n' "$bad" >&2
        die "installing [$*] would take packages from outside Debian 12 (listed above); refusing."
    fi
    upgrades="$(grep -E '^Inst [^ ]+ \[' <<<"$sim" || true)"
    if [[ -n "$upgrades" ]]; then
        log "note: these installed packages get Debian 12 stable/security updates as dependencies:"
        printf '  %s\n' "$upgrades"
    fi
    # Packages with daemons (openvswitch-switch) must not start them: the bench harness starts
    # its own, in a namespace, and stops them by PID. policy-rc.d says so for this install only.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" || rc=$?
    ((made_policy)) && rm -f "$policy"
    return "$rc"
}

# ------------------------------------------------------- Debian packages ---

missing=()
for p in "${BASE_PKGS[@]}" "${LLVM_PKGS[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    log "Debian packages: all present"
else
    log "Debian packages missing: ${missing[*]}"
    # Keep tshark's install non-interactive and non-setuid (we capture as root).
    echo 'wireshark-common wireshark-common/install-setuid boolean false' \
        | debconf-set-selections
    log "apt-get update"
    apt-get update -q

    # LLVM 22 comes as a set: if any of it has no candidate, install none of it.
    for p in "${LLVM_PKGS[@]}"; do
        if ! pkg_installed "$p" && ! pkg_has_candidate "$p"; then
            EBPF_SKIP_REASON="Debian package $p is not available from the configured apt sources (expected in bookworm-security)"
        fi
    done
    to_install=()
    for p in "${missing[@]}"; do
        if [[ -n "$EBPF_SKIP_REASON" ]] && is_llvm_pkg "$p"; then
            continue
        fi
        to_install+=("$p")
    done

    if ((${#to_install[@]} > 0)); then
        log "apt-get install --no-install-recommends ${to_install[*]}"
        apt_safe_install "${to_install[@]}"
    fi
fi

# Sanity checks on what the tests use. scapy comes from python3-scapy, so it is
# importable by Debian's /usr/bin/python3 (python3 on PATH may be a pyenv one).
command -v tshark >/dev/null || die "tshark not found after install"
/usr/bin/python3 -c 'import scapy.all' 2>/dev/null \
    || die "/usr/bin/python3 cannot import scapy.all (python3-scapy broken?)"

# ------------------------------------------------------------------ Rust ---

# CI's environment may lack ~/.cargo/bin on PATH.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -d "$CARGO_BIN" && ":$PATH:" != *":$CARGO_BIN:"* ]]; then
    export PATH="$CARGO_BIN:$PATH"
fi
command -v cargo >/dev/null || die "cargo not found (expected rustup's toolchain in $CARGO_BIN)"
command -v rustup >/dev/null || die "rustup not found (expected in $CARGO_BIN)"

if [[ -z "$EBPF_SKIP_REASON" ]]; then
    for p in "${LLVM_PKGS[@]}"; do
        pkg_installed "$p" || EBPF_SKIP_REASON="Debian package $p is not installed"
    done
fi
if [[ -z "$EBPF_SKIP_REASON" && ! -x "$LLVM_PREFIX_DIR/bin/llvm-config" ]]; then
    EBPF_SKIP_REASON="$LLVM_PREFIX_DIR/bin/llvm-config not found"
fi
if [[ -z "$EBPF_SKIP_REASON" ]] && ! rustup toolchain list | grep -q '^nightly-'; then
    EBPF_SKIP_REASON="no nightly Rust toolchain installed (the image should carry one)"
fi

if [[ -n "$EBPF_SKIP_REASON" ]]; then
    log "eBPF toolchain SKIPPED (nightly rust-src, bpf-linker $BPF_LINKER_VERSION): $EBPF_SKIP_REASON"
else
    if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
        log "nightly rust-src: present"
    else
        log "rustup component add rust-src --toolchain nightly"
        rustup component add rust-src --toolchain nightly
    fi

    if bpf-linker --version 2>/dev/null | grep -qw "$BPF_LINKER_VERSION"; then
        log "bpf-linker $BPF_LINKER_VERSION: present"
    else
        log "cargo install bpf-linker $BPF_LINKER_VERSION (LLVM_PREFIX=$LLVM_PREFIX_DIR, about a minute)"
        LLVM_PREFIX="$LLVM_PREFIX_DIR" cargo install bpf-linker \
            --version "$BPF_LINKER_VERSION" --locked --force \
            --no-default-features --features llvm-22 \
            --jobs "${XPE_SETUP_JOBS:-2}"
        bpf-linker --version | grep -qw "$BPF_LINKER_VERSION" \
            || die "bpf-linker --version does not report $BPF_LINKER_VERSION after install"
    fi
fi

# cargo-fuzz drives the fuzz smoke run of scripts/test.sh (pinned for a reproducible build).
CARGO_FUZZ_VERSION=0.13.2
if cargo fuzz --version 2>/dev/null | grep -qw "$CARGO_FUZZ_VERSION"; then
    log "cargo-fuzz $CARGO_FUZZ_VERSION: present"
else
    log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION (about two minutes)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --jobs "${XPE_SETUP_JOBS:-2}"
fi

log "done"
