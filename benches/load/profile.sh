#!/usr/bin/env bash
# Reproducible measurements behind benches/PERFORMANCE.md, with the `probe`
# example (benches/load/probe.rs) built with symbols:
#
#   benches/load/profile.sh                 # all of the below, ~3 minutes
#   benches/load/profile.sh annotate hello  # callgrind profile of one path
#
# 1. Fuel metering overhead in instructions (callgrind): sieve on engines
#    that differ only in consume_fuel, and through the server's sliced path.
#    Per-request cost = (Ir of 3N requests - Ir of N requests) / 2N.
# 2. Engine memory: RSS after N loads of hello.wasm, modules dropped (what
#    the LRU does) with one shared engine vs one engine per load; and N
#    modules kept alive (a full module cache) both ways.
# 3. With qemu-aarch64-static and the aarch64 musl/gnu targets installed:
#    page faults per instantiation on the static musl build vs glibc
#    (SMALL_MODULE=FILE adds a second module, e.g. hello with a small stack).
#
# Output goes to stdout and to OUT [benches/results/<timestamp>]/profile.txt.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="$root/target/profile"
probe="$target/release/examples/probe"

build() {
    (cd "$root" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo build -q --release --example probe --target-dir "$target" "$@")
}

ir() { # ir PATH N: total instructions of `probe PATH N`
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$probe" "$1" "$2" 2>&1 |
        awk '/refs:/ {gsub(",", "", $NF); print $NF}'
}

command -v valgrind >/dev/null || { echo "profile.sh: valgrind not found (apt-get install valgrind)" >&2; exit 1; }
build

if [[ "${1:-}" == annotate ]]; then
    what="${2:-hello}" n="${3:-500}"
    out="${TMPDIR:-/tmp}/callgrind.$what.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$probe" "$what" "$n" 2>&1 | grep refs
    callgrind_annotate --inclusive=yes "$out" | grep -v "'2" | head -60
    echo "full profile: $out (callgrind_annotate --tree=calling $out)"
    exit 0
fi

OUT="${OUT:-$root/benches/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"
exec > >(tee "$OUT/profile.txt")

echo "## 1. Fuel metering: instructions per sieve request (n=1000000, ~37.8M fuel)"
declare -A per
for what in sieve_fuel_off sieve_fuel_on sieve; do
    a=$(ir "$what" 2); b=$(ir "$what" 6)
    per[$what]=$(((b - a) / 4))
    printf '%-15s %12d instructions per request\n' "$what" "${per[$what]}"
done
awk -v off="${per[sieve_fuel_off]}" -v on="${per[sieve_fuel_on]}" -v sl="${per[sieve]}" 'BEGIN {
    printf "metering overhead: +%.1f%% (unsliced), +%.1f%% (server path, 100,000-fuel slices)\n",
        (on / off - 1) * 100, (sl / off - 1) * 100 }'

echo
echo "## 2. Engine memory (hello.wasm, 22 KiB)"
for what in reload reload_engine keep_modules keep_engines; do
    for n in 1 64 1000; do
        "$probe" "$what" "$n" 2>&1 | sed 's/ iterations, [^,]* each, fuel [0-9]*,/ loads,/'
    done
done

echo
faults() { # faults BINARY MODULE N: minor page faults of `probe instantiate N`
    PROBE_MODULE="$2" QEMU_LD_PREFIX=/usr/aarch64-linux-gnu \
        /usr/bin/time -f '%R' qemu-aarch64-static "$1" instantiate "$3" 2>&1 | tail -1
}
echo "## 3. Page faults per instantiation, aarch64 musl vs glibc (qemu user mode)"
if command -v qemu-aarch64-static >/dev/null &&
    rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-musl; then
    for t in aarch64-unknown-linux-musl aarch64-unknown-linux-gnu; do
        build --target "$t" 2>/dev/null || { echo "$t: build failed (linker?)"; continue; }
        bin="$target/$t/release/examples/probe"
        modules=("")
        [[ -z "${SMALL_MODULE:-}" ]] || modules+=("$SMALL_MODULE")
        for module in "${modules[@]}"; do
            a=$(faults "$bin" "$module" 100); b=$(faults "$bin" "$module" 600)
            echo "$t ${module:-functions/hello.wasm}: $(((b - a) / 500)) minor faults per instantiation"
        done
    done
else
    echo "skipped: needs qemu-aarch64-static and the aarch64-unknown-linux-musl target"
fi
echo
echo "written to $OUT/profile.txt"
