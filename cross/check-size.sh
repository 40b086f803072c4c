#!/usr/bin/env bash
# Builds the shipped binary (static aarch64-unknown-linux-musl, release) and
# fails if its stripped size is over the budget in cross/size-budget.
set -euo pipefail
cd "$(dirname "$0")/.."
source cross/common.sh

t=$SHIPPED_TARGET
budget=$(grep -Ev '^[[:space:]]*(#|$)' cross/size-budget | head -n 1 | tr -d '[:space:]')
[[ "$budget" =~ ^[0-9]+$ ]] || die "cross/size-budget: expected a number of bytes, found '$budget'"

ensure_toolchain "$t"
cargo_for "$t"
"${CARGO[@]}" build --release --locked --target "$t"
bin=target/$t/release/wasmgate
is_static "$t" "$bin" || die "$bin is not statically linked"
size=$(stripped_size "$t" "$bin")
headroom=$((budget - size))

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
echo "binary:   $bin (static, stripped)"
echo "size:     $size bytes ($(kib "$size"))"
echo "budget:   $budget bytes ($(kib "$budget"), cross/size-budget)"
if [ "$headroom" -lt 0 ]; then
    echo "headroom: $headroom bytes" >&2
    echo "SIZE BUDGET EXCEEDED: the $t binary is $((-headroom)) bytes ($(kib $((-headroom)))) over budget." >&2
    echo "Make it smaller, or raise cross/size-budget in the same commit and say why." >&2
    exit 1
fi
echo "headroom: $headroom bytes ($(kib "$headroom"), $((headroom * 100 / budget)) % of the budget)"
