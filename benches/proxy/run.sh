#!/usr/bin/env bash
# The proxy benchmark (issue 13): wasmgate in front of an upstream, against
# the upstream alone and against nginx as the reference reverse proxy, all in
# one run on loopback.
#
#   benches/proxy/run.sh                 # ~5 minutes
#   ROUNDS=3 DURATION=8 benches/proxy/run.sh
#
# Rows (each driven by wrk, one thread, CONNECTIONS keep-alive connections,
# POST with a BODY_BYTES body):
#   direct        wrk → upstream
#   nginx         wrk → nginx (worker_processes 1, proxy_pass to a keepalive
#                 upstream block) → upstream
#   passthrough   wrk → wasmgate [[proxy]] → upstream
#   hmac          the same with the hmac-verify middleware (a valid
#                 X-Signature over the body)
#   three         hmac-verify, waf and cors in front of the upstream
#
# The upstream is a second nginx (worker_processes 1) answering `return 200`
# with a small body. This machine has 2 cores: the proxy under test (wasmgate
# or nginx) is pinned to CPU 0, the upstream and wrk share CPU 1, for every
# row alike. "CPU/req" is the proxy's CPU time (user + system, /proc) per
# request; "added" is a row's p50 minus direct's p50. A second table
# measures each row at one connection (wrk -c1, the same rounds): there a
# proxy is not saturated and its "added" is the latency it adds to a
# request, where at CONNECTIONS its p50 follows its req/s. Raw outputs go to
# benches/results/proxy-<timestamp>/.
#
# Environment (defaults in brackets): DURATION [6], WARMUP [2], ROUNDS [2]
# alternating rounds over all rows, CONNECTIONS [16], BODY_BYTES [1024],
# PORT [18180] (PORT..PORT+2), PIN [1], OUT.
#
# Needs: cargo, wrk, nginx (apt-get install wrk nginx), taskset, python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-6}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
BODY_BYTES="${BODY_BYTES:-1024}"
PORT="${PORT:-18180}"
PIN="${PIN:-1}"
OUT="${OUT:-$root/benches/results/proxy-$(date +%Y%m%d-%H%M%S)}"
ROWS="${ROWS:-direct nginx passthrough hmac three}"

up_port=$PORT; nginx_port=$((PORT + 1)); wg_port=$((PORT + 2))
mkdir -p "$OUT"
work="$(mktemp -d "${TMPDIR:-/tmp}/wasmgate-proxy.XXXXXX")"
summary="$OUT/summary.tsv"
printf 'row\trps\tp50_us\tp99_us\tcpu_us_per_req\terrors\tnon2xx\n' >"$summary"
log() { printf '[proxy] %s\n' "$*" >&2; }

for tool in wrk nginx cargo python3; do
    command -v "$tool" >/dev/null || { log "$tool not found (apt-get install wrk nginx)"; exit 1; }
done
proxy_cpu=(); side_cpu=()
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
    proxy_cpu=(taskset -c 0); side_cpu=(taskset -c 1)
fi

log "building the release binary"
(cd "$root" && cargo build --release --bin wasmgate 2>&1 | tail -1) >&2
wasmgate="$root/target/release/wasmgate"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo -)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*: //')"
    echo "settings: DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS BODY_BYTES=$BODY_BYTES PIN=$PIN"
} >"$OUT/machine.txt"

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    log "nothing listens on port $1"; exit 1
}

# nginx_conf NAME BODY: a one-worker nginx config in $work/NAME.
nginx_conf() {
    mkdir -p "$work/$1"
    cat >"$work/$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 1024; }
http {
    access_log $work/$1/access.log;
    client_body_temp_path $work/$1;
    proxy_temp_path $work/$1;
    fastcgi_temp_path $work/$1;
    uwsgi_temp_path $work/$1;
    scgi_temp_path $work/$1;
    keepalive_requests 1000000;
$2
}
CONF
}

nginx_conf upstream "    server {
        listen 127.0.0.1:$up_port;
        client_body_buffer_size 64k;
        location / { default_type application/json; return 200 '{\"ok\":true,\"from\":\"upstream\"}'; }
    }"
nginx_conf proxy "    upstream backend { server 127.0.0.1:$up_port; keepalive 32; }
    server {
        listen 127.0.0.1:$nginx_port;
        client_body_buffer_size 64k;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }"

export WEBHOOK_SECRET="bench-secret"
has() { [[ " $ROWS " == *" $1 "* ]]; }
# Each middleware instance reserves its `memory` limit in memory_budget
# while its request runs: with the default (8 MiB), three middleware on
# CONNECTIONS requests in flight would not fit the default 256 MiB budget.
mw_limits='limits = { memory = "4MiB" }'
wants_wasmgate=0
for row in passthrough hmac three; do has "$row" && wants_wasmgate=1; done
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n' "$wg_port"
    printf '[[proxy]]\nroute = "/direct/*"\nupstream = "http://127.0.0.1:%s"\n\n' "$up_port"
    if has hmac || has three; then
        printf '[[proxy]]\nroute = "/hmac/*"\nupstream = "http://127.0.0.1:%s"\nmiddleware = ["verify"]\n\n' "$up_port"
        printf '[[middleware]]\nname = "verify"\nmodule = "%s/functions/hmac-verify.wasm"\n' "$root"
        printf 'config = { header = "x-signature", secret_env = "WEBHOOK_SECRET" }\n%s\n\n' "$mw_limits"
    fi
    if has three; then
        printf '[[proxy]]\nroute = "/three/*"\nupstream = "http://127.0.0.1:%s"\nmiddleware = ["verify", "waf", "cors"]\n\n' "$up_port"
        printf '[[middleware]]\nname = "waf"\nmodule = "%s/functions/waf.wasm"\n%s\n\n' "$root" "$mw_limits"
        printf '[[middleware]]\nname = "cors"\nmodule = "%s/functions/cors.wasm"\n' "$root"
        printf 'config = { allowed_origins = ["https://example.com"] }\n%s\n' "$mw_limits"
    fi
} >"$work/wasmgate.toml"

"${side_cpu[@]}" nginx -c "$work/upstream/nginx.conf" -e "$work/upstream/error.log" &
pids+=($!)
"${proxy_cpu[@]}" nginx -c "$work/proxy/nginx.conf" -e "$work/proxy/error.log" &
pids+=($!); nginx_pid=$!
wg_pid=""
if ((wants_wasmgate)); then
    "${proxy_cpu[@]}" "$wasmgate" serve --config "$work/wasmgate.toml" 2>"$work/wasmgate.log" &
    pids+=($!); wg_pid=$!
    wait_port "$wg_port"
fi
wait_port "$up_port"; wait_port "$nginx_port"
# nginx's master forks the worker that serves: measure the worker's CPU.
sleep 0.5
nginx_worker=$(pgrep -P "$nginx_pid" | head -1)

body=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x')
signature="sha256=$(printf '%s' "$body" | python3 -c 'import hmac, hashlib, sys; print(hmac.new(b"bench-secret", sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')"
export WRK_METHOD=POST WRK_BODY="$body" WRK_CTYPE=application/octet-stream
export WRK_HEADER="X-Signature: $signature"

url_of() {
    case "$1" in
        direct) echo "http://127.0.0.1:$up_port/api/orders" ;;
        nginx) echo "http://127.0.0.1:$nginx_port/api/orders" ;;
        passthrough) echo "http://127.0.0.1:$wg_port/direct/orders" ;;
        hmac) echo "http://127.0.0.1:$wg_port/hmac/orders" ;;
        three) echo "http://127.0.0.1:$wg_port/three/orders" ;;
    esac
}
pid_of() {
    case "$1" in
        direct) echo "" ;;
        nginx) echo "$nginx_worker" ;;
        *) echo "$wg_pid" ;;
    esac
}
cpu_ticks() { [[ -z "$1" ]] && echo 0 || awk '{print $14 + $15}' "/proc/$1/stat"; }

# A check before measuring: every row answers 200.
for row in $ROWS; do
    code=$(curl -s -o "$work/check.out" -w '%{http_code}' -X POST -H "$WRK_HEADER" \
        -H 'Origin: https://example.com' --data-binary "$body" "$(url_of "$row")")
    [[ "$code" == 200 ]] || { log "$row answers $code: $(head -c 300 "$work/check.out")"; tail -5 "$work/wasmgate.log" >&2; exit 1; }
done

for row in $ROWS; do
    "${side_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -s "$root/benches/load/stats.lua" "$(url_of "$row")" >/dev/null 2>&1
done
# The rows in round R's order: odd rounds as given, even ones reversed.
round_order() {
    if (($1 % 2)); then echo "$ROWS"; else tr ' ' '\n' <<<"$ROWS" | tac | tr '\n' ' '; fi
}
# Field NAME of the RESULT line of the last wrk run (in $line).
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
# awk: the median of a[k, 1..m], for both tables.
median_awk='
    function median(a, k, m,    i, j, t, v) {
        for (i = 1; i <= m; i++) v[i] = a[k, i] + 0
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }'
for r in $(seq "$ROUNDS"); do
    for row in $(round_order "$r"); do
        pid=$(pid_of "$row")
        raw="$OUT/$row.$r.wrk"
        t0=$(cpu_ticks "$pid")
        "${side_cpu[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency \
            -s "$root/benches/load/stats.lua" "$(url_of "$row")" >"$raw" 2>&1
        t1=$(cpu_ticks "$pid")
        line=$(grep '^RESULT' "$raw") || { log "wrk failed: $(tail -3 "$raw")"; exit 1; }
        cpu_req=$(awk -v a="$t0" -v b="$t1" -v n="$(field requests)" -v hz="$(getconf CLK_TCK)" \
            'BEGIN {printf "%.1f", (n > 0 && b > a) ? (b - a) / hz * 1e6 / n : 0}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$(field rps)" "$(field p50_us)" "$(field p99_us)" \
            "$cpu_req" "$(field errors)" "$(field non2xx)" >>"$summary"
        log "$row: $(field rps) req/s, p50 $(field p50_us) us, p99 $(field p99_us) us, proxy CPU $cpu_req us/req, errors $(field errors), non-2xx $(field non2xx)"
    done
done
# Latency at one connection: what each proxy adds to a request when it is
# not saturated (at 16 connections every row runs at full load, so its p50
# follows its req/s). Rounds alternate as above.
latency="$OUT/latency.tsv"
printf 'row\trps\tp50_us\tp99_us\n' >"$latency"
for r in $(seq "$ROUNDS"); do
    for row in $(round_order "$r"); do
        raw="$OUT/$row.$r.c1.wrk"
        "${side_cpu[@]}" wrk -t1 -c1 -d"${DURATION}s" --timeout 10s --latency \
            -s "$root/benches/load/stats.lua" "$(url_of "$row")" >"$raw" 2>&1
        line=$(grep '^RESULT' "$raw") || { log "wrk failed: $(tail -3 "$raw")"; exit 1; }
        printf '%s\t%s\t%s\t%s\n' "$row" "$(field rps)" "$(field p50_us)" "$(field p99_us)" >>"$latency"
        log "$row, one connection: $(field rps) req/s, p50 $(field p50_us) us, p99 $(field p99_us) us"
    done
done
[[ -z "$wg_pid" ]] || echo "wasmgate peak RSS: $(awk '$1 == "VmHWM:" {print $2}' "/proc/$wg_pid/status") KiB" >>"$OUT/machine.txt"
echo "nginx worker peak RSS: $(awk '$1 == "VmHWM:" {print $2}' "/proc/$nginx_worker/status") KiB" >>"$OUT/machine.txt"

# The table: medians per row; added latency against direct's p50.
awk -F'\t' "$median_awk"'
    NR == 1 {next}
    { k = $1; n[k]++; m = n[k]; rps[k, m] = $2; p50[k, m] = $3; p99[k, m] = $4; cpu[k, m] = $5
      err[k] += $6; bad[k] += $7; if (!(k in seen)) { seen[k] = 1; order[++ns] = k } }
    END {
        d50 = ("direct" in n) ? median(p50, "direct", n["direct"]) : 0
        ng = ("nginx" in n) ? median(rps, "nginx", n["nginx"]) : 0
        ng50 = ("nginx" in n) ? median(p50, "nginx", n["nginx"]) - d50 : 0
        print "| row | req/s | × nginx req/s | p50 | p99 | p50 added over direct | × nginx added | proxy CPU/req | errors | non-2xx |"
        print "|---|---|---|---|---|---|---|---|---|---|"
        for (i = 1; i <= ns; i++) {
            k = order[i]; m = n[k]
            r = median(rps, k, m); a = median(p50, k, m) - d50
            printf "| %s | %.0f | %s | %d µs | %d µs | %s | %s | %s | %d | %d |\n", k, r,
                (ng > 0 && k != "direct") ? sprintf("%.2f", r / ng) : "-",
                median(p50, k, m), median(p99, k, m),
                (k == "direct") ? "-" : sprintf("%d µs", a),
                (ng50 > 0 && k != "direct") ? sprintf("%.2f", a / ng50) : "-",
                (k == "direct") ? "-" : sprintf("%.1f µs", median(cpu, k, m)), err[k], bad[k]
        }
    }' "$summary" | tee "$OUT/summary.md"
# The same at one connection: medians; latency added against direct's.
echo >>"$OUT/summary.md"
awk -F'\t' "$median_awk"'
    NR == 1 {next}
    { k = $1; n[k]++; m = n[k]; rps[k, m] = $2; p50[k, m] = $3; p99[k, m] = $4
      if (!(k in seen)) { seen[k] = 1; order[++ns] = k } }
    END {
        d50 = ("direct" in n) ? median(p50, "direct", n["direct"]) : 0
        ng50 = ("nginx" in n) ? median(p50, "nginx", n["nginx"]) - d50 : 0
        print "| row, one connection | req/s | p50 | p99 | p50 added over direct | × nginx added |"
        print "|---|---|---|---|---|---|"
        for (i = 1; i <= ns; i++) {
            k = order[i]; m = n[k]; a = median(p50, k, m) - d50
            printf "| %s | %.0f | %d µs | %d µs | %s | %s |\n", k, median(rps, k, m),
                median(p50, k, m), median(p99, k, m),
                (k == "direct") ? "-" : sprintf("%d µs", a),
                (ng50 > 0 && k != "direct") ? sprintf("%.2f", a / ng50) : "-"
        }
    }' "$latency" | tee -a "$OUT/summary.md"
cat "$OUT/machine.txt" >&2
log "raw outputs in $OUT"
