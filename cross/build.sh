#!/usr/bin/env bash
# Cross-builds the release binary for ARM targets and prints each one's
# stripped size. Installs missing Debian packages and rustup targets first
# (only what is missing; apt needs root).
#
#   cross/build.sh                               # every target below
#   cross/build.sh aarch64-unknown-linux-musl    # one or more targets
#
# Output: target/TARGET/release/wasmgate, as `cargo build --target` puts it.
# Linkers and flags per target live in .cargo/config.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
source cross/common.sh

[ $# -gt 0 ] || set -- "${ALL_TARGETS[@]}"
for t in "$@"; do target_info "$t"; done # fail on a typo before building

sizes=()
for t in "$@"; do
    printf '\n==> %s\n' "$t"
    ensure_toolchain "$t"
    cargo_for "$t"
    "${CARGO[@]}" build --release --locked --target "$t"
    bin=target/$t/release/wasmgate
    size=$(stripped_size "$t" "$bin")
    if is_static "$t" "$bin"; then kind=static; else kind=dynamic; fi
    sizes+=("$(printf '%-32s %9s bytes  %s' "$t" "$size" "$kind")")
done

printf '\nstripped sizes:\n'
printf '  %s\n' "${sizes[@]}"
