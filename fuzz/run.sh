#!/usr/bin/env bash
# Builds every fuzz target and runs each for a bounded time; exits non-zero
# on the first crash (panic, abort, out-of-memory, leak or timeout), leaving
# the input in fuzz/artifacts/TARGET/. CI runs it (.ci/run); developers too.
#
#   fuzz/run.sh                       # every target, FUZZ_SECONDS each
#   FUZZ_SECONDS=600 fuzz/run.sh http_request
#
# Each run starts from the committed seeds (fuzz/corpus/TARGET, read only)
# plus what earlier runs found (FUZZ_WORK/TARGET, kept between runs).
#
# Environment: FUZZ_SECONDS [45], FUZZ_TIMEOUT [10] seconds one input may
# take, FUZZ_RSS_MB [2048], FUZZ_TARGET_DIR [fuzz/target] (CI keeps it
# outside the clone so a second run does not rebuild), FUZZ_WORK
# [target/fuzz-corpus]. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
FUZZ_RSS_MB="${FUZZ_RSS_MB:-2048}"
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-fuzz/target}"
FUZZ_WORK="${FUZZ_WORK:-target/fuzz-corpus}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(http_request config toml native_response wasi_stdout module_load)
fi

# Release build with overflow checks and debug assertions: unchecked
# arithmetic on fuzzed input is a crash too.
fuzz=(cargo +nightly fuzz)
build_flags=(-O --debug-assertions --target-dir "$FUZZ_TARGET_DIR")
"${fuzz[@]}" build "${build_flags[@]}"

status=0
for t in "${targets[@]}"; do
    mkdir -p "$FUZZ_WORK/$t"
    echo "--- fuzz $t for ${FUZZ_SECONDS}s"
    # -max_len: request streams and configs beyond 4 KiB add nothing the
    # fuzzer cannot reach with shorter ones; wasm-smith needs more bytes.
    max_len=4096
    [ "$t" = module_load ] && max_len=16384
    if ! "${fuzz[@]}" run "${build_flags[@]}" "$t" "$FUZZ_WORK/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
        -max_len="$max_len" -print_final_stats=1 >"$FUZZ_WORK/$t.log" 2>&1; then
        tail -60 "$FUZZ_WORK/$t.log"
        echo "fuzz $t: CRASH (input in fuzz/artifacts/$t/)" >&2
        status=1
        continue
    fi
    grep -E '^(#[0-9]+\s+DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' "$FUZZ_WORK/$t.log" || true
done
exit "$status"
