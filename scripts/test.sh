#!/usr/bin/env bash
# scripts/test.sh — the one test command for xpe (README and .ci/run call it).
#
# Installs what is missing (scripts/setup.sh, needs root), then builds the
# whole workspace, runs its tests, clippy with warnings denied, and rustfmt's
# check. Exits non-zero on the first failing step.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

# CI's environment may lack ~/.cargo/bin on PATH.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -d "$CARGO_BIN" && ":$PATH:" != *":$CARGO_BIN:"* ]]; then
    export PATH="$CARGO_BIN:$PATH"
fi

STEP=0
heading() {
    STEP=$((STEP + 1))
    printf '\n==> [%d] %s\n' "$STEP" "$*"
}

# Run a command under a one-line heading and report how long it took.
step() {
    local t0=$SECONDS
    heading "$*"
    "$@"
    printf '==> [%d] ok (%ds)\n' "$STEP" "$((SECONDS - t0))"
}

step scripts/setup.sh

# Use --locked only when a Cargo.lock is committed (decided at run time).
LOCKED=()
if [[ -n "$(git -C "$ROOT" ls-files -- Cargo.lock 2>/dev/null || true)" ]]; then
    LOCKED=(--locked)
fi

step cargo build --workspace --all-targets "${LOCKED[@]}"
step cargo test --workspace "${LOCKED[@]}"
step cargo clippy --workspace --all-targets "${LOCKED[@]}" -- -D warnings
step cargo fmt --all -- --check

# A bounded run of every cargo-fuzz target over whole frames (nightly, AddressSanitizer):
# no input may panic the pipeline. FUZZ_SECONDS per target, 30 by default.
step scripts/fuzz-smoke.sh

# The eBPF build (nightly + rust-src + bpf-linker) runs inside step 2 through dataplane/build.rs,
# and the root-only tests (XDP on a veth in a namespace) inside step 3.

printf '\n==> all %d steps passed\n' "$STEP"
