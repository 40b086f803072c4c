#!/usr/bin/env bash
# Soak test: a long mixed load against the release build, watching for leaks.
#
#   benches/soak.sh                       # 10 minutes (the recorded run)
#   DURATION=60 benches/soak.sh           # a quick look
#
# Serves hello, echo, tax and the hostile loop and grow functions from one
# directory with the default limits, and drives all five at once with wrk
# (one process each, for DURATION seconds):
#   hello  GET /hello?name=Pi                 HELLO_CONNS [8] connections
#   echo   POST /echo, ECHO_BODY [16384] bytes ECHO_CONNS [4]
#   tax    POST /tax, a JSON order             TAX_CONNS [4]
#   loop   GET /loop (runs out of fuel: 504)   LOOP_CONNS [2]
#   grow   GET /grow (hits its memory limit: 502)  GROW_CONNS [2]
# Every SAMPLE [10] seconds it records the server's RSS (VmRSS) and open file
# descriptors, and times one GET /hello with curl. At the end it prints the
# curve, the requests answered by status, and a verdict:
#   - the server is still running and /hello answers 200 after the load;
#   - RSS is stable: the last third of the samples stays within RSS_SLACK
#     [25]% (and at least RSS_SLACK_MIB [8] MiB) of the highest sample of the
#     first third after warm-up (the first minute, or the first sample when
#     shorter), i.e. no growth proportional to time;
#   - open fds are stable: after the load stops they are back within FD_SLACK
#     [4] of the idle count before it (connections do not leak).
# Exit status 0 when every check passes, 1 otherwise.
#
# Environment: DURATION [600] seconds, SAMPLE [10], PORT [18090], NICE [0]
# (niceness of the server and wrk), OUT [benches/results/soak-<timestamp>]
# keeps the raw wrk outputs, the samples (samples.tsv) and the server log tail.
# Needs: cargo, wrk, curl.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

DURATION="${DURATION:-600}"
SAMPLE="${SAMPLE:-10}"
PORT="${PORT:-18090}"
NICE="${NICE:-0}"
HELLO_CONNS="${HELLO_CONNS:-8}"
ECHO_CONNS="${ECHO_CONNS:-4}"
TAX_CONNS="${TAX_CONNS:-4}"
LOOP_CONNS="${LOOP_CONNS:-2}"
GROW_CONNS="${GROW_CONNS:-2}"
ECHO_BODY="${ECHO_BODY:-16384}"
RSS_SLACK="${RSS_SLACK:-25}"
RSS_SLACK_MIB="${RSS_SLACK_MIB:-8}"
FD_SLACK="${FD_SLACK:-4}"
OUT="${OUT:-$root/benches/results/soak-$(date +%Y%m%d-%H%M%S)}"

log() { printf '[soak] %s\n' "$*" >&2; }
for tool in wrk curl cargo; do
    command -v "$tool" >/dev/null || { log "$tool not found"; exit 1; }
done
mkdir -p "$OUT"
work="$(mktemp -d "${TMPDIR:-/tmp}/wasmgate-soak.XXXXXX")"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

log "building the release binary"
(cd "$root" && cargo build --release --bin wasmgate 2>&1 | tail -1) >&2
wasmgate="$root/target/release/wasmgate"

mkdir "$work/functions"
for f in hello echo tax; do cp "$root/functions/$f.wasm" "$work/functions/"; done
for f in loop grow; do cp "$root/functions/hostile/$f.wasm" "$work/functions/"; done

addr="127.0.0.1:$PORT"
RUST_LOG=warn nice -n "$NICE" "$wasmgate" serve "$work/functions" --listen "$addr" \
    >"$work/server.out" 2>"$work/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 100); do
    grep -q "listening on" "$work/server.out" && break
    kill -0 "$server" 2>/dev/null || { log "server exited: $(tail -3 "$work/server.log")"; exit 1; }
    sleep 0.1
done

{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc --version)"
    echo "binary: $(stat -c %s "$wasmgate") bytes"
    echo "settings: DURATION=$DURATION SAMPLE=$SAMPLE HELLO_CONNS=$HELLO_CONNS ECHO_CONNS=$ECHO_CONNS TAX_CONNS=$TAX_CONNS LOOP_CONNS=$LOOP_CONNS GROW_CONNS=$GROW_CONNS ECHO_BODY=$ECHO_BODY NICE=$NICE"
} | tee "$OUT/machine.txt" >&2

rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$server/status" 2>/dev/null || echo 0; }
fds() { find "/proc/$server/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
hello_ms() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 "http://$addr/hello?name=soak" |
        awk '{printf "%s %.1f", $1, $2 * 1000}' || echo "000 -"
}

# Warm every function once (compiled into the module cache), then idle.
curl -s -o /dev/null "http://$addr/hello"
curl -s -o /dev/null -d x "http://$addr/echo"
curl -s -o /dev/null -d '{"id":"A1","value":100}' "http://$addr/tax"
curl -s -o /dev/null "http://$addr/loop"
curl -s -o /dev/null "http://$addr/grow"
sleep 1
idle_rss=$(rss_kib); idle_fds=$(fds)
log "idle: RSS $idle_rss KiB, $idle_fds fds"

# load NAME CONNS PATH [METHOD BODY]
load() {
    local name="$1" conns="$2" path="$3"
    WRK_METHOD="${4:-GET}" WRK_BODY="${5:-}" WRK_COUNT_STATUS=1 \
        nice -n "$NICE" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 15s \
        -s "$here/load/stats.lua" "http://$addr$path" >"$OUT/$name.wrk" 2>&1 &
    pids+=("$!")
    wrk_pids+=("$!")
}
wrk_pids=()
load hello "$HELLO_CONNS" "/hello?name=Pi"
load echo "$ECHO_CONNS" /echo POST "$(head -c "$ECHO_BODY" /dev/zero | tr '\0' 'x')"
load tax "$TAX_CONNS" /tax POST '{"id":"A1","value":100}'
load loop "$LOOP_CONNS" /loop
load grow "$GROW_CONNS" /grow

samples="$OUT/samples.tsv"
printf 't_s\trss_kib\tfds\thello_status\thello_ms\n' >"$samples"
start=$(date +%s)
while :; do
    sleep "$SAMPLE"
    t=$(($(date +%s) - start))
    kill -0 "$server" 2>/dev/null || { log "server died at ${t}s"; break; }
    line="$t	$(rss_kib)	$(fds)	$(hello_ms | tr ' ' '\t')"
    echo "$line" >>"$samples"
    log "$(tr '\t' ' ' <<<"$line")"
    ((t < DURATION)) || break
done
for pid in "${wrk_pids[@]}"; do wait "$pid" || true; done
sleep 10

alive=1; kill -0 "$server" 2>/dev/null || alive=0
after_rss=0; after_fds=0; after_hello="000 -"
if ((alive)); then after_rss=$(rss_kib); after_fds=$(fds); after_hello=$(hello_ms); fi
tail -20 "$work/server.log" >"$OUT/server.log-tail" || true

# --- report --------------------------------------------------------------------
echo
echo "# soak: $(sed -n 's/^commit: //p' "$OUT/machine.txt"), ${DURATION}s"
echo "idle before load: RSS $((idle_rss / 1024)) MiB ($idle_rss KiB), $idle_fds fds"
echo
printf '%6s %10s %5s %12s\n' t_s rss_mib fds hello
awk -F'\t' 'NR > 1 {printf "%6d %10.1f %5d %5s %5s ms\n", $1, $2 / 1024, $3, $4, $5}' "$samples"
echo
echo "after load (10 s later): RSS $((after_rss / 1024)) MiB ($after_rss KiB), $after_fds fds, /hello $after_hello ms"
echo
echo "requests (wrk, by status; 503 and 504 split by x-wasmgate-error):"
for name in hello echo tax loop grow; do
    r=$(grep '^RESULT' "$OUT/$name.wrk" || echo "RESULT (no result: $(tail -1 "$OUT/$name.wrk"))")
    printf '  %-6s %s\n' "$name" "$(sed 's/^RESULT //; s/ p90_us=[^ ]*//; s/ max_us=[^ ]*//' <<<"$r")"
done

# Verdict.
verdict=PASS
check() { # check OK MESSAGE
    if [[ "$1" == 1 ]]; then echo "  ok    $2"; else echo "  FAIL  $2"; verdict=FAIL; fi
}
n=$(awk 'END {print NR - 1}' "$samples")
read -r ref_rss last_max < <(awk -F'\t' -v n="$n" -v sample="$SAMPLE" '
    NR == 1 {next}
    { i = NR - 1; rss[i] = $2; t[i] = $1 }
    END {
        # reference: highest RSS among samples after the first minute and in
        # the first third (or the first sample when the run is short)
        first = 1; for (i = 1; i <= n; i++) if (t[i] >= 60) { first = i; break }
        third = int(n / 3); if (third < first) third = first
        ref = 0; for (i = first; i <= third; i++) if (rss[i] > ref) ref = rss[i]
        last = 0; for (i = n - int(n / 3); i <= n; i++) if (i >= 1 && rss[i] > last) last = rss[i]
        print ref, last
    }' "$samples")
allowed=$(awk -v r="$ref_rss" -v p="$RSS_SLACK" -v m="$RSS_SLACK_MIB" \
    'BEGIN {a = r * p / 100; if (a < m * 1024) a = m * 1024; printf "%d", r + a}')
hello_ok=0; [[ "$after_hello" == 200* ]] && hello_ok=1
fd_ok=0; ((alive && after_fds <= idle_fds + FD_SLACK)) && fd_ok=1
rss_ok=0; ((n >= 1 && last_max <= allowed)) && rss_ok=1
unanswered=$(awk -F'\t' 'NR > 1 && $4 != 200' "$samples" | wc -l)
echo
echo "verdict:"
check "$alive" "server still running after ${DURATION}s"
check "$hello_ok" "/hello answers 200 after the load ($after_hello ms)"
check "$rss_ok" "RSS stable: last third peaks at $((last_max / 1024)) MiB, allowed $((allowed / 1024)) MiB (reference $((ref_rss / 1024)) MiB + max(${RSS_SLACK}%, ${RSS_SLACK_MIB} MiB))"
check "$fd_ok" "fds back to idle after the load: $after_fds (idle $idle_fds, slack $FD_SLACK)"
check "$([[ $unanswered == 0 ]] && echo 1 || echo 0)" "/hello answered 200 at every sample during the load ($unanswered misses)"
echo "SOAK $verdict"
[[ "$verdict" == PASS ]]
