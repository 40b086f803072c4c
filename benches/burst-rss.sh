#!/usr/bin/env bash
# RSS after a burst: does the server give memory back to the OS once a burst
# of memory-hungry requests is over?
#
#   benches/burst-rss.sh                       # the glibc release build
#   BIN=target/aarch64-unknown-linux-musl/release/wasmgate RUNNER=qemu-aarch64 \
#       benches/burst-rss.sh                   # the static musl build, emulated
#
# Serves the hostile grow function (grows its memory page by page up to its
# limit, then traps: 502 memory-limit) and echo. Measures the server's RSS
# when idle (after one call of each), then sends WAVES waves of PARALLEL
# concurrent requests (half /grow, half POST /echo with a BODY-byte body),
# and prints idle RSS, peak RSS (VmHWM) and RSS 1 s and AFTER s after the
# last wave. Under RUNNER (qemu user mode) the numbers include the
# emulator's own memory.
#
# Environment: BIN [target/release/wasmgate, built when missing], RUNNER
# [none], PARALLEL [32], WAVES [5], BODY [32768], AFTER [10], MEMORY [8MiB]
# (the functions' memory limit), PORT [18095], and any variable the server
# or its allocator reads (e.g. GLIBC_TUNABLES), passed through.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$root/target/release/wasmgate}"
RUNNER="${RUNNER:-}"
PARALLEL="${PARALLEL:-32}"
WAVES="${WAVES:-5}"
BODY="${BODY:-32768}"
AFTER="${AFTER:-10}"
MEMORY="${MEMORY:-8MiB}"
PORT="${PORT:-18095}"

if [[ ! -x "$BIN" ]]; then
    (cd "$root" && cargo build --release --bin wasmgate 2>&1 | tail -1) >&2
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/wasmgate-burst.XXXXXX")"
server=
cleanup() {
    [[ -z "$server" ]] || kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/functions"
cp "$root/functions/echo.wasm" "$root/functions/hostile/grow.wasm" "$work/functions/"
printf '[server]\nfunctions_dir = "%s"\nlisten = "127.0.0.1:%s"\nmax_body = "4MiB"\n\n[limits]\nmemory = "%s"\ntimeout = "60s"\n' \
    "$work/functions" "$PORT" "$MEMORY" >"$work/config.toml"
head -c "$BODY" /dev/zero | tr '\0' 'x' >"$work/body"

# shellcheck disable=SC2086 # RUNNER is a command prefix, possibly empty
RUST_LOG=warn $RUNNER "$BIN" serve --config "$work/config.toml" >"$work/out" 2>"$work/log" &
server=$!
for _ in $(seq 600); do
    grep -q "listening on" "$work/out" && break
    kill -0 "$server" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
    sleep 0.1
done
url="http://127.0.0.1:$PORT"

kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$server/status"; }
call() {
    if (($1 % 2)); then
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 120 "$url/grow"
    else
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 120 --data-binary "@$work/body" "$url/echo"
    fi
}

call 0 >/dev/null; call 1 >/dev/null
sleep 1
idle=$(kib VmRSS)
for _ in $(seq "$WAVES"); do
    for i in $(seq "$PARALLEL"); do call "$i" >>"$work/statuses" & done
    wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
done
sleep 1
after1=$(kib VmRSS)
sleep "$((AFTER > 1 ? AFTER - 1 : 0))"
after=$(kib VmRSS)
peak=$(kib VmHWM)

echo "binary: $BIN${RUNNER:+ (under $RUNNER)}"
echo "burst: $WAVES waves of $PARALLEL parallel requests (/grow to $MEMORY, /echo with $BODY bytes)"
echo "statuses: $(sort "$work/statuses" | uniq -c | awk '{printf "%s×%s ", $2, $1}')"
printf 'RSS  idle %6d KiB   peak %7d KiB   after 1 s %7d KiB   after %d s %7d KiB\n' \
    "$idle" "$peak" "$after1" "$AFTER" "$after"
