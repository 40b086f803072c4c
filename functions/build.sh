#!/usr/bin/env bash
# Builds every guest module in functions/ from source:
#
#   functions/{hello,echo,sieve}.wasm   example functions, native ABI (Rust)
#   functions/hostile/*.wasm            hostile fixtures (from hostile/*.wat)
#   functions/hostile/invalid.wasm      not a valid module at all
#
# Needs: cargo with the wasm32-unknown-unknown target, and wabt (wat2wasm,
# wasm2wat, wasm-objdump). Uses `wasm-opt -Oz` (binaryen) if it is on PATH.
#
# The output is deterministic for a given toolchain: paths that would leak
# into panic messages are remapped, and running the script twice gives the
# same bytes. The committed .wasm files were built with the versions the
# script prints; a different rustc, wabt or wasm-opt may give other bytes.
#
# Usage: functions/build.sh   (from any directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Native-ABI examples, built for wasm32-unknown-unknown.
native_examples=(hello echo sieve)
# The exports a native example must have, no more and no fewer.
native_exports="memory wasmgate_abi_v1 wasmgate_alloc wasmgate_handle"

for tool in cargo wat2wasm wasm2wat wasm-objdump; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found on PATH" >&2; exit 1; }
done
echo "build.sh: $(rustc --version), wabt $(wat2wasm --version)"
wasm_opt=""
if command -v wasm-opt >/dev/null; then
    wasm_opt="wasm-opt"
    echo "build.sh: shrinking with $(wasm-opt --version)"
fi

# Exact, space-separated sorted list of a module's export names.
exports_of() {
    wasm-objdump -x -j Export "$1" 2>/dev/null |
        sed -n 's/^ - .* -> "\(.*\)"$/\1/p' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}

# Import modules of a module, one per line, deduplicated.
import_modules_of() {
    wasm-objdump -x -j Import "$1" 2>/dev/null |
        sed -n 's/^ - .* <- \([^.]*\)\..*$/\1/p' | LC_ALL=C sort -u
}

# Fails unless $1 has exactly the native exports and imports only `wasmgate`.
check_native() {
    local wasm="$1" exports imports
    exports="$(exports_of "$wasm")"
    if [[ "$exports" != "$native_exports" ]]; then
        echo "build.sh: $wasm exports [$exports], expected [$native_exports]" >&2
        exit 1
    fi
    imports="$(import_modules_of "$wasm" | grep -vx wasmgate || true)"
    if [[ -n "$imports" ]]; then
        echo "build.sh: $wasm imports from [$imports]; only wasmgate is allowed" >&2
        exit 1
    fi
}

# --- Rust examples ---------------------------------------------------------
# Remap the absolute paths of this checkout and of the cargo registry (they
# end up in panic location strings) so the bytes do not depend on where the
# repository or CARGO_HOME live. CARGO_ENCODED_RUSTFLAGS wins over any
# RUSTFLAGS in the caller's environment and copes with spaces in paths; with
# --target it applies to the wasm code only, not to build scripts.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
CARGO_ENCODED_RUSTFLAGS="$(printf '%s\x1f%s' \
    "--remap-path-prefix=$cargo_home=/cargo" \
    "--remap-path-prefix=$here=/functions")"
export CARGO_ENCODED_RUSTFLAGS
target_dir="$here/target"

package_args=()
for name in "${native_examples[@]}"; do package_args+=(-p "$name"); done
cargo build --quiet --locked --release --target wasm32-unknown-unknown \
    --target-dir "$target_dir" "${package_args[@]}"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

for name in "${native_examples[@]}"; do
    built="$target_dir/wasm32-unknown-unknown/release/$name.wasm"
    cp "$built" "$tmp/$name.wasm"
    if [[ -n "$wasm_opt" ]]; then
        # Features rustc enables by default for wasm32-unknown-unknown; the
        # target_features section that would say so is stripped.
        "$wasm_opt" -Oz --enable-bulk-memory --enable-sign-ext \
            --enable-mutable-globals --enable-nontrapping-float-to-int \
            --enable-multivalue --enable-reference-types \
            "$tmp/$name.wasm" -o "$tmp/$name.opt.wasm"
        mv "$tmp/$name.opt.wasm" "$tmp/$name.wasm"
    fi
    # rustc (before rust-lang/rust#156174) exports the linker globals
    # __data_end and __heap_base from every wasm32-unknown-unknown cdylib and
    # offers no flag against it. A wasm2wat/wat2wasm round trip drops them so
    # the module exports only the ABI.
    wasm2wat "$tmp/$name.wasm" -o "$tmp/$name.wat"
    grep -Ev '^[[:space:]]*\(export "__(data_end|heap_base)" \(global [0-9]+\)\)$' \
        "$tmp/$name.wat" >"$tmp/$name.stripped.wat" || true
    wat2wasm "$tmp/$name.stripped.wat" -o "$tmp/$name.wasm"
    check_native "$tmp/$name.wasm"
    install -m 644 "$tmp/$name.wasm" "$here/$name.wasm"
    echo "build.sh: $name.wasm ($(wc -c <"$here/$name.wasm") bytes)"
done

# --- WASI examples ---------------------------------------------------------
# HOOK: the wasi-json examples (`tax`, `headers`, `env`) go here. They are
# WASI preview1 command modules: build them with
#     cargo build --locked --release --target wasm32-wasip1 -p tax -p headers -p env
# (same CARGO_ENCODED_RUSTFLAGS, same --target-dir), copy
# target/wasm32-wasip1/release/NAME.wasm to functions/NAME.wasm, and check
# that they export `_start` and import only from wasi_snapshot_preview1.

# --- Hostile fixtures ------------------------------------------------------
for wat in "$here"/hostile/*.wat; do
    wasm="${wat%.wat}.wasm"
    wat2wasm "$wat" -o "$wasm"
    echo "build.sh: hostile/$(basename "$wasm") ($(wc -c <"$wasm") bytes)"
done

# invalid.wasm: the Wasm magic and version, then a section id (0xff) that does
# not exist and bytes that are not a module. Loading it must fail cleanly.
printf '\0asm\1\0\0\0\377\377\377\377not a wasm module\n' >"$here/hostile/invalid.wasm"
echo "build.sh: hostile/invalid.wasm ($(wc -c <"$here/hostile/invalid.wasm") bytes)"
