#!/usr/bin/env bash
# The load benchmark: wasmgate against a native baseline server, on loopback.
#
#   benches/load/run.sh                      # every scenario, ~5 minutes
#   SCENARIOS="hello tax" benches/load/run.sh
#
# Builds the release binary and the baseline (`--example baseline`: the same
# smol executor, HTTP framing, trace ids and access log as wasmgate, with
# plain Rust handlers), starts both pinned to CPU 0 and drives them with wrk
# (one thread, pinned to CPU 1), alternating A/B runs. Prints a table of
# req/s, p50/p99 latency and peak RSS, with the wasmgate/native ratio, and
# keeps every raw output in benches/results/<timestamp>/.
#
# Scenarios (SCENARIOS, space-separated, default all):
#   hello        GET /hello?name=Pi, native ABI, default logging (info)
#   hello-quiet  the same with RUST_LOG=warn on both servers (no access log)
#   echo         POST /echo with a 1 KiB body, native ABI (memory limit
#                SMALL_MEMORY [4MiB], see below)
#   tax          POST /tax with a JSON order, wasi-json ABI (SMALL_MEMORY)
#   tax-defaults the same on wasmgate alone with the default config: counts
#                the 503 overloaded answers
#   fairness     wasmgate hello latency while 2 clients loop on a sieve that
#                burns FAIR_FUEL fuel; default fuel_slice vs the largest
#                fuel_slice allowed (FAIR_MAX_SLICE)
#   density      DENSITY_FUNCS copies of hello.wasm in a directory: idle RSS,
#                RSS after the first module_cache and DENSITY_CALLED distinct
#                ones were called once
#   overload     OVERLOAD_CONNECTIONS connections on /sieve (more than
#                max_in_flight): statuses by kind, peak RSS
#   workers      hello and tax on wasmgate with `workers = 1` and
#                `workers = 2` (SMALL_MEMORY, max_in_flight = CONNECTIONS),
#                alternating; nothing pinned (a second worker needs the
#                second core, which wrk shares): req/s, the scaling ratio
#                (2 workers / 1), peak and final RSS. Not in the default
#                list.
#
# Environment (defaults in brackets): DURATION [6] seconds per measured run,
# WARMUP [2], ROUNDS [3] A/B pairs per scenario, CONNECTIONS [32],
# FAIR_CONNECTIONS [8], FAIR_FUEL [2000000000], FAIR_SLICE [100000, the
# default fuel_slice], FAIR_MAX_SLICE [10000000, the largest fuel_slice], DENSITY_FUNCS [10000],
# DENSITY_CALLED [1000], OVERLOAD_CONNECTIONS [128], PORT [18080] (and
# PORT+1), PIN [1] (0: no CPU pinning), OUT [benches/results/<timestamp>].
#
# Needs: cargo, wrk (installed with apt-get when missing), curl, taskset.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-32}"
FAIR_CONNECTIONS="${FAIR_CONNECTIONS:-8}"
FAIR_FUEL="${FAIR_FUEL:-2000000000}"
FAIR_MAX_SLICE="${FAIR_MAX_SLICE:-10000000}"
FAIR_SLICE="${FAIR_SLICE:-100000}"
DENSITY_FUNCS="${DENSITY_FUNCS:-10000}"
DENSITY_CALLED="${DENSITY_CALLED:-1000}"
OVERLOAD_CONNECTIONS="${OVERLOAD_CONNECTIONS:-128}"
PORT="${PORT:-18080}"
PIN="${PIN:-1}"
SCENARIOS="${SCENARIOS:-hello hello-quiet echo tax tax-defaults fairness density overload}"
OUT="${OUT:-$root/benches/results/$(date +%Y%m%d-%H%M%S)}"

wg_addr="127.0.0.1:$PORT"
nat_addr="127.0.0.1:$((PORT + 1))"
mkdir -p "$OUT"
work="$(mktemp -d "${TMPDIR:-/tmp}/wasmgate-load.XXXXXX")"
summary="$OUT/summary.tsv"
printf 'scenario\tserver\trps\tp50_us\tp99_us\tpeak_rss_kib\tcpu_pct\terrors\tnon2xx\n' >"$summary"

log() { printf '[load] %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk"
    sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
    $sudo apt-get install -y wrk >/dev/null 2>&1 ||
        { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi
for tool in wrk curl cargo; do
    command -v "$tool" >/dev/null || { log "$tool not found"; exit 1; }
done
server_cpu=(); client_cpu=()
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
    server_cpu=(taskset -c 0); client_cpu=(taskset -c 1)
fi

log "building release binaries"
(cd "$root" && cargo build --release --bin wasmgate --example baseline 2>&1 | tail -1) >&2
wasmgate="$root/target/release/wasmgate"
baseline="$root/target/release/examples/baseline"

{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo ' (src modified)')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo "kernel: $(uname -sr)"
    echo "rustc: $(rustc --version)"
    echo "wrk: $(wrk --version 2>&1 | head -1)"
    echo "settings: DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS FAIR_CONNECTIONS=$FAIR_CONNECTIONS FAIR_FUEL=$FAIR_FUEL FAIR_SLICE=$FAIR_SLICE DENSITY_FUNCS=$DENSITY_FUNCS DENSITY_CALLED=$DENSITY_CALLED OVERLOAD_CONNECTIONS=$OVERLOAD_CONNECTIONS PIN=$PIN"
    echo "binary: $(stat -c %s "$wasmgate") bytes"
} >"$OUT/machine.txt"

# --- servers -----------------------------------------------------------------
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# start NAME RUST_LOG CMD...: starts a server pinned to the server CPU, waits
# for its "listening" line and sets $started_pid.
start() {
    local name="$1" level="$2"; shift 2
    : >"$work/$name.out"
    RUST_LOG="$level" "${server_cpu[@]}" "$@" >"$work/$name.out" 2>"$work/$name.log" &
    started_pid=$!
    pids+=("$started_pid")
    local i
    for i in $(seq 100); do
        grep -q "listening on" "$work/$name.out" && return 0
        kill -0 "$started_pid" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not start:"; tail -5 "$work/$name.log" >&2; exit 1
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench SCENARIO SERVER PID URL CONNECTIONS: one measured wrk run; appends a
# row (peak RSS is filled in later) and keeps the raw output.
bench() {
    local scenario="$1" server="$2" pid="$3" url="$4" conns="$5"
    local raw t0 t1 line
    raw="$OUT/$scenario.$server.$(date +%s%N).wrk"
    t0=$(cpu_ticks "$pid")
    "${client_cpu[@]}" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 10s --latency \
        -s "$here/stats.lua" "$url" >"$raw" 2>&1
    t1=$(cpu_ticks "$pid")
    line=$(grep '^RESULT' "$raw") || { log "wrk failed: $(tail -3 "$raw")"; exit 1; }
    local cpu
    cpu=$(awk -v a="$t0" -v b="$t1" -v d="$DURATION" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.0f", (b - a) / hz / d * 100}')
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    printf '%s\t%s\t%s\t%s\t%s\t-\t%s\t%s\t%s\n' "$scenario" "$server" "$(field rps)" \
        "$(field p50_us)" "$(field p99_us)" "$cpu" "$(field errors)" "$(field non2xx)" >>"$summary"
    log "$scenario $server: $(field rps) req/s, p50 $(field p50_us) us, p99 $(field p99_us) us, cpu $cpu%, errors $(field errors), non-2xx $(field non2xx)"
}

warm() {
    "${client_cpu[@]}" wrk -t1 -c"$2" -d"${WARMUP}s" -s "$here/stats.lua" "$1" >/dev/null 2>&1
}

# ab SCENARIO RUST_LOG CONFIG PATH [METHOD BODY]: wasmgate (serving
# functions/, with the config file CONFIG unless it is -) vs native,
# alternating.
ab() {
    local scenario="$1" level="$2" config="$3" path="$4"
    export WRK_METHOD="${5:-GET}" WRK_BODY="${6:-}"
    local args=(serve "$root/functions")
    [[ "$config" == - ]] || args=(serve --config "$config")
    start "$scenario-wasmgate" "$level" "$wasmgate" "${args[@]}" --listen "$wg_addr"
    local wg=$started_pid
    start "$scenario-native" "$level" "$baseline" "$nat_addr"
    local nat=$started_pid
    warm "http://$wg_addr$path" "$CONNECTIONS"
    warm "http://$nat_addr$path" "$CONNECTIONS"
    local r
    for r in $(seq "$ROUNDS"); do
        if ((r % 2)); then
            bench "$scenario" wasmgate "$wg" "http://$wg_addr$path" "$CONNECTIONS"
            bench "$scenario" native "$nat" "http://$nat_addr$path" "$CONNECTIONS"
        else
            bench "$scenario" native "$nat" "http://$nat_addr$path" "$CONNECTIONS"
            bench "$scenario" wasmgate "$wg" "http://$wg_addr$path" "$CONNECTIONS"
        fi
    done
    echo "$scenario wasmgate $(kib "$wg" VmHWM)" >>"$work/peaks"
    echo "$scenario native $(kib "$nat" VmHWM)" >>"$work/peaks"
    tail -3 "$work/$scenario-wasmgate.log" >"$OUT/$scenario.wasmgate.log-tail" || true
    local fuel
    fuel=$(grep -m1 -o ' fuel=[0-9]*' "$work/$scenario-wasmgate.log" | cut -d= -f2 || true)
    [[ -z "$fuel" ]] || echo "$scenario: $fuel fuel per request" >>"$OUT/fuel.txt"
    tail -3 "$work/$scenario-native.log" >"$OUT/$scenario.native.log-tail" || true
    stop "$wg"; stop "$nat"
    rm -f "$work"/*.log
    unset WRK_METHOD WRK_BODY
}

# --- scenarios ---------------------------------------------------------------
scenario_fairness() {
    local slice
    export WRK_METHOD=GET WRK_BODY=''
    for slice in default budget; do
        local cfg="$work/fair-$slice.toml" fuel_slice
        fuel_slice=$([[ $slice == default ]] && echo "$FAIR_SLICE" || echo "$FAIR_MAX_SLICE")
        cat >"$cfg" <<EOF
[server]
functions_dir = "$root/functions"

[[function]]
route = "/sieve"
module = "$root/functions/sieve.wasm"
limits = { fuel = $FAIR_FUEL, fuel_slice = $fuel_slice, timeout = "120s" }
EOF
        start "fair-$slice" info "$wasmgate" serve --config "$cfg" --listen "$wg_addr"
        local wg=$started_pid
        warm "http://$wg_addr/hello?name=Pi" "$FAIR_CONNECTIONS"
        if [[ $slice == default ]]; then
            # The same server without the CPU-heavy clients: the reference.
            bench fairness-idle wasmgate "$wg" "http://$wg_addr/hello?name=Pi" "$FAIR_CONNECTIONS"
        fi
        local loops=() i codes="$OUT/fairness-$slice.sieve-statuses"
        : >"$codes"
        for i in 1 2; do
            (while [[ ! -e "$work/stop-sieve" ]]; do
                curl -s -o /dev/null -w '%{http_code} %{time_total}s\n' --max-time 120 \
                    "http://$wg_addr/sieve?n=50000000" >>"$codes" || true
            done) &
            loops+=($!)
        done
        sleep 0.5
        bench "fairness-slice-$slice" wasmgate "$wg" "http://$wg_addr/hello?name=Pi" "$FAIR_CONNECTIONS"
        touch "$work/stop-sieve"
        for i in "${loops[@]}"; do wait "$i" 2>/dev/null || true; done
        rm -f "$work/stop-sieve"
        echo "fairness-slice-$slice wasmgate $(kib "$wg" VmHWM)" >>"$work/peaks"
        [[ $slice == default ]] && echo "fairness-idle wasmgate $(kib "$wg" VmHWM)" >>"$work/peaks"
        log "fairness ($slice slice): sieve requests finished: $(awk '{print $1}' "$codes" | sort | uniq -c | tr '\n' ' ')"
        stop "$wg"
    done
    unset WRK_METHOD WRK_BODY
}

# curl_all ADDR PREFIX FROM TO: GET /PREFIX{FROM..TO} on one keep-alive
# connection; prints the status codes, counted.
curl_all() {
    local addr="$1" prefix="$2" from="$3" to="$4" cfg="$work/curl.cfg" i
    : >"$cfg"
    for ((i = from; i <= to; i++)); do
        printf 'url = "http://%s/%s%05d"\noutput = "/dev/null"\n' "$addr" "$prefix" "$i" >>"$cfg"
    done
    curl -s -K "$cfg" -w '%{http_code}\n' | sort | uniq -c | tr -s ' ' | tr '\n' ' '
}

scenario_density() {
    local dir="$work/density" i
    mkdir -p "$dir"
    log "density: writing $DENSITY_FUNCS copies of hello.wasm"
    # shellcheck disable=SC2016 # $0 and $f belong to the inner sh
    for ((i = 0; i < DENSITY_FUNCS; i++)); do
        printf '%s/f%05d.wasm\n' "$dir" "$i"
    done | xargs -n 500 -P 2 sh -c 'for f; do cp "$0" "$f"; done' "$root/functions/hello.wasm"
    local cache=64 rows="$OUT/density.tsv"
    start density-native info "$baseline" "$nat_addr"
    local nat=$started_pid
    start density-wasmgate info "$wasmgate" serve "$dir" --listen "$wg_addr"
    local wg=$started_pid
    sleep 1
    printf 'state\twasmgate_rss_kib\tnative_rss_kib\n' >"$rows"
    printf 'idle after start (%d files)\t%s\t%s\n' "$DENSITY_FUNCS" "$(kib "$wg" VmRSS)" "$(kib "$nat" VmRSS)" >>"$rows"
    log "density: 1 call: $(curl_all "$wg_addr" f 0 0)"
    printf 'after 1 function called\t%s\t-\n' "$(kib "$wg" VmRSS)" >>"$rows"
    log "density: $cache calls: $(curl_all "$wg_addr" f 1 $((cache - 1)))"
    printf 'after %d distinct (= module_cache)\t%s\t-\n' "$cache" "$(kib "$wg" VmRSS)" >>"$rows"
    log "density: $DENSITY_CALLED calls: $(curl_all "$wg_addr" f "$cache" $((DENSITY_CALLED - 1)))"
    printf 'after %d distinct\t%s\t-\n' "$DENSITY_CALLED" "$(kib "$wg" VmRSS)" >>"$rows"
    local more=$((DENSITY_CALLED * 2 - 1))
    ((more < DENSITY_FUNCS)) || more=$((DENSITY_FUNCS - 1))
    log "density: up to $((more + 1)) calls: $(curl_all "$wg_addr" f "$DENSITY_CALLED" "$more")"
    printf 'after %d distinct\t%s\t-\n' "$((more + 1))" "$(kib "$wg" VmRSS)" >>"$rows"
    printf 'peak (VmHWM)\t%s\t%s\n' "$(kib "$wg" VmHWM)" "$(kib "$nat" VmHWM)" >>"$rows"
    stop "$wg"; stop "$nat"
    rm -rf "$dir"
}

# workers: hello and tax with workers = 1 and 2. Both servers run at once
# (the idle one costs nothing) so that the runs alternate.
scenario_workers() {
    local saved_server=("${server_cpu[@]}") saved_client=("${client_cpu[@]}")
    server_cpu=(); client_cpu=()
    local fn path w r
    for fn in hello tax; do
        case $fn in
            hello) path="/hello?name=Pi"; export WRK_METHOD=GET WRK_BODY='' ;;
            tax) path="/tax"; export WRK_METHOD=POST WRK_BODY="$order" ;;
        esac
        local addrs=("$wg_addr" "$nat_addr") pids_w=()
        for w in 1 2; do
            local cfg="$work/workers-$fn-$w.toml"
            # Every connection may be in flight (tax yields once per
            # request), within the memory budget: no 503 to flatter either.
            printf '[server]\nfunctions_dir = "%s"\nworkers = %d\nmax_in_flight = %d\n\n[limits]\nmemory = "%s"\n' \
                "$root/functions" "$w" "$CONNECTIONS" "${SMALL_MEMORY:-4MiB}" >"$cfg"
            start "workers-$fn-$w" info "$wasmgate" serve --config "$cfg" --listen "${addrs[w - 1]}"
            pids_w+=("$started_pid")
            warm "http://${addrs[w - 1]}$path" "$CONNECTIONS"
        done
        local label=("1-worker" "2-workers")
        for r in $(seq "$ROUNDS"); do
            for w in $( ((r % 2)) && echo 0 1 || echo 1 0); do
                bench "workers-$fn" "${label[w]}" "${pids_w[w]}" "http://${addrs[w]}$path" "$CONNECTIONS"
            done
        done
        for w in 0 1; do
            echo "workers-$fn ${label[w]} $(kib "${pids_w[w]}" VmHWM)" >>"$work/peaks"
            echo "workers-$fn ${label[w]}: VmRSS $(kib "${pids_w[w]}" VmRSS) KiB at the end, VmHWM $(kib "${pids_w[w]}" VmHWM) KiB, $(ls "/proc/${pids_w[w]}/task" | wc -l) threads" >>"$OUT/workers.txt"
            tail -3 "$work/workers-$fn-$((w + 1)).log" >"$OUT/workers-$fn.${label[w]}.log-tail" || true
            stop "${pids_w[w]}"
        done
        rm -f "$work"/*.log
    done
    server_cpu=("${saved_server[@]}"); client_cpu=("${saved_client[@]}")
    unset WRK_METHOD WRK_BODY
}

scenario_overload() {
    export WRK_METHOD=GET WRK_BODY='' WRK_COUNT_STATUS=1
    start overload-wasmgate info "$wasmgate" serve "$root/functions" --listen "$wg_addr"
    local wg=$started_pid
    local raw="$OUT/overload.wasmgate.wrk"
    "${client_cpu[@]}" wrk -t1 -c"$OVERLOAD_CONNECTIONS" -d"${DURATION}s" --timeout 10s \
        -s "$here/stats.lua" "http://$wg_addr/sieve?n=1000000" >"$raw" 2>&1
    local line statuses
    line=$(grep '^RESULT' "$raw")
    statuses=$(grep -o 'status:[^ ]*' <<<"$line" | sed 's/status://' | tr '\n' ' ')
    {
        echo "connections: $OVERLOAD_CONNECTIONS, path: /sieve?n=1000000"
        echo "statuses: $statuses"
        echo "$line"
        echo "peak_rss_kib: $(kib "$wg" VmHWM)"
        echo "rss_after_kib: $(kib "$wg" VmRSS)"
    } >"$OUT/overload.txt"
    # Requests whose client went away still run to the end: measure how long
    # until /hello is admitted again.
    local t0 code i
    t0=$(date +%s%N)
    for i in $(seq 200); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$wg_addr/hello") || true
        [[ "$code" == 200 ]] && break
        sleep 0.05
    done
    echo "after wrk stopped: /hello answers $code after $((($(date +%s%N) - t0) / 1000000)) ms" >>"$OUT/overload.txt"
    log "overload: $statuses, peak RSS $(kib "$wg" VmHWM) KiB"
    stop "$wg"
    unset WRK_METHOD WRK_BODY WRK_COUNT_STATUS
}

# status_run SCENARIO PATH METHOD BODY: one wasmgate run with the default
# config, counting responses by status and error kind.
status_run() {
    local scenario="$1" path="$2"
    export WRK_METHOD="$3" WRK_BODY="$4" WRK_COUNT_STATUS=1
    start "$scenario" info "$wasmgate" serve "$root/functions" --listen "$wg_addr"
    local wg=$started_pid raw="$OUT/$scenario.wasmgate.wrk"
    warm "http://$wg_addr$path" "$CONNECTIONS"
    "${client_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
        -s "$here/stats.lua" "http://$wg_addr$path" >"$raw" 2>&1
    local line
    line=$(grep '^RESULT' "$raw")
    echo "$scenario: $line" >>"$OUT/statuses.txt"
    log "$scenario: $(grep -o 'rps=[^ ]*\|status:[^ ]*' <<<"$line" | tr '\n' ' ')"
    stop "$wg"
    unset WRK_METHOD WRK_BODY WRK_COUNT_STATUS
}

# The echo and tax scenarios give functions a 4 MiB memory limit (they need
# ~1.1 MiB): with the defaults (16 MiB each, 256 MiB memory_budget) only 16
# requests fit the budget, and a request over one fuel slice (100,000; tax
# uses ~124,000 fuel, echo of 1 KiB ~800,000) yields, so 32 connections keep
# more than 16 in flight and the rest get 503 overloaded. `tax-defaults`
# shows that case.
small_config="$work/small-memory.toml"
printf '[server]\nfunctions_dir = "%s"\n\n[limits]\nmemory = "%s"\n' \
    "$root/functions" "${SMALL_MEMORY:-4MiB}" >"$small_config"
order='{"id":"A1","value":100}'

for s in $SCENARIOS; do
    log "scenario $s"
    case "$s" in
        hello) ab hello info - "/hello?name=Pi" ;;
        hello-quiet) ab hello-quiet warn - "/hello?name=Pi" ;;
        echo) ab echo info "$small_config" "/echo" POST "$(head -c 1024 /dev/zero | tr '\0' 'x')" ;;
        tax) ab tax info "$small_config" "/tax" POST "$order" ;;
        tax-defaults) status_run tax-defaults "/tax" POST "$order" ;;
        fairness) scenario_fairness ;;
        density) scenario_density ;;
        overload) scenario_overload ;;
        workers) scenario_workers ;;
        *) log "unknown scenario $s"; exit 2 ;;
    esac
done

# --- report ------------------------------------------------------------------
# Fill in peak RSS per scenario and server, then print the table.
if [[ -f "$work/peaks" ]]; then
    awk 'NR == FNR {peak[$1 "\t" $2] = $3; next}
         FNR == 1 {print; next}
         {k = $1 "\t" $2; if (k in peak) $6 = peak[k]; print}' OFS='\t' \
        "$work/peaks" "$summary" >"$summary.tmp" && mv "$summary.tmp" "$summary"
fi

"$here/report.sh" "$OUT" | tee "$OUT/summary.md"
log "raw outputs in $OUT"
