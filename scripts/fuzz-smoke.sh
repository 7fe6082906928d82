#!/usr/bin/env bash
# scripts/fuzz-smoke.sh — a short, time-bounded run of every cargo-fuzz target.
#
# Finds every fuzz crate of the repository (a `fuzz/Cargo.toml` with `cargo-fuzz = true`,
# today dataplane/fuzz) and runs each of its targets for FUZZ_SECONDS with
#   cargo +nightly fuzz run <target> -- -max_total_time=FUZZ_SECONDS [-dict=fuzz/<target>.dict]
# A crash, a failed assertion or a timeout fails the script: libFuzzer exits non-zero and
# leaves the input in <crate>/fuzz/artifacts/<target>/ (reproduce with
# `cargo +nightly fuzz run <target> <that file>`). The corpus grows in
# <crate>/fuzz/corpus/<target>/ (git-ignored) and seeds the next run.
#
# Needs the nightly toolchain (cargo-fuzz builds with -Z flags and AddressSanitizer);
# installs cargo-fuzz with `cargo install cargo-fuzz --locked` when it is missing.
# The time limit counts fuzzing only: the first build of a target takes a few minutes more.
#
# Environment knobs:
#   FUZZ_SECONDS   seconds of fuzzing per target (default 30)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"

log() { printf 'fuzz-smoke: %s\n' "$*"; }
die() { printf 'fuzz-smoke: ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$FUZZ_SECONDS" =~ ^[1-9][0-9]*$ ]] \
    || die "FUZZ_SECONDS must be a positive whole number of seconds, not '$FUZZ_SECONDS'"

# CI's environment may lack ~/.cargo/bin on PATH.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
if [[ -d "$CARGO_BIN" && ":$PATH:" != *":$CARGO_BIN:"* ]]; then
    export PATH="$CARGO_BIN:$PATH"
fi

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
rustup run nightly rustc --version >/dev/null 2>&1 \
    || die "the nightly toolchain is missing: run 'rustup toolchain install nightly'"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

mapfile -t FUZZ_DIRS < <(
    find . \( -name target -o -name .git \) -prune -o -path '*/fuzz/Cargo.toml' \
        -exec grep -l '^cargo-fuzz = true' {} + \
        | sed 's|/Cargo.toml$||' \
        | sort
)
[[ ${#FUZZ_DIRS[@]} -gt 0 ]] || die "no fuzz crate found under $ROOT"

for dir in "${FUZZ_DIRS[@]}"; do
    crate="$(dirname "$dir")"
    cd "$ROOT/$crate"
    mapfile -t targets < <(cargo +nightly fuzz list)
    [[ ${#targets[@]} -gt 0 ]] || die "$dir has no fuzz targets"
    for target in "${targets[@]}"; do
        args=(-max_total_time="$FUZZ_SECONDS")
        if [[ -f "fuzz/$target.dict" ]]; then
            args+=(-dict="fuzz/$target.dict")
        fi
        log "${crate#./}: $target for ${FUZZ_SECONDS}s"
        cargo +nightly fuzz run "$target" -- "${args[@]}"
    done
done
log "ok: no crash in ${#FUZZ_DIRS[@]} fuzz crate(s)"
