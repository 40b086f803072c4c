#!/usr/bin/env bash
# Prints the markdown report of one load-benchmark run from its raw outputs:
#
#   benches/load/report.sh benches/results/<timestamp>
#
# run.sh calls it at the end (and saves the output as summary.md).
#
# Each scenario row is the median of its alternating runs. "CPU/req" is the
# server's CPU time (user + system, from /proc) per request: on a shared VM
# the servers are sometimes latency-bound rather than CPU-bound (see the
# "server CPU" column), and CPU per request is the steadier comparison.
set -euo pipefail
OUT="${1:?usage: report.sh RESULTS_DIR}"

setting() { sed -n "s/.*[ :]$1=\([^ ]*\).*/\1/p" "$OUT/machine.txt" | head -1; }

echo "## Load benchmark, $(sed -n 's/^date: \(.\{10\}\).*/\1/p' "$OUT/machine.txt")"
echo
sed 's/^/    /' "$OUT/machine.txt"
echo
echo "Medians over $(setting ROUNDS) alternating runs of $(setting DURATION)s each;"
echo "ratio = wasmgate / native (for CPU/req: how many times more CPU per request);"
echo "scaling = 2 workers / 1 worker (workers scenarios)."
echo
awk -F'\t' '
    NR == 1 {next}
    {
        k = $1 SUBSEP $2
        n[k]++; m = n[k]
        rps[k, m] = $3; p50[k, m] = $4; p99[k, m] = $5; cpu[k, m] = $7
        cpureq[k, m] = ($3 > 0) ? $7 / 100 * 1e6 / $3 : 0
        peak[k] = $6; err[k] += $8; non2xx[k] += $9
        if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1 }
    }
    function median(a, k, m,    i, j, t, v) {
        for (i = 1; i <= m; i++) v[i] = a[k, i] + 0
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    function ms(us) { return sprintf("%.2f ms", us / 1000) }
    function mib(kib) { return (kib == "-" || kib == "") ? "-" : sprintf("%.1f MiB", kib / 1024) }
    function ratio(a, b) { return (b > 0) ? sprintf("%.2f×", a / b) : "-" }
    BEGIN {
        print "| scenario | server | req/s | p50 | p99 | CPU/req | server CPU | peak RSS | errors / non-2xx |"
        print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    }
    END {
        for (i = 1; i <= ns; i++) {
            s = order[i]
            split("wasmgate native 1-worker 2-workers", names, " ")
            for (srv = 1; srv <= 4; srv++) {
                name = names[srv]; k = s SUBSEP name
                if (!(k in n)) continue
                m = n[k]
                R[name] = median(rps, k, m); P50[name] = median(p50, k, m)
                P99[name] = median(p99, k, m); C[name] = median(cpureq, k, m)
                printf "| %s | %s | %.0f | %s | %s | %.1f µs | %d%% | %s | %d / %d |\n", s, name, R[name], ms(P50[name]), ms(P99[name]), C[name], median(cpu, k, m), mib(peak[k]), err[k], non2xx[k]
            }
            if ((s SUBSEP "native") in n && (s SUBSEP "wasmgate") in n)
                printf "| %s | **ratio** | **%s** | %s | **%s** | %s | | | |\n", s, ratio(R["wasmgate"], R["native"]), ratio(P50["wasmgate"], P50["native"]), ratio(P99["wasmgate"], P99["native"]), ratio(C["wasmgate"], C["native"])
            if ((s SUBSEP "1-worker") in n && (s SUBSEP "2-workers") in n)
                printf "| %s | **scaling** | **%s** | %s | %s | %s | | | |\n", s, ratio(R["2-workers"], R["1-worker"]), ratio(P50["2-workers"], P50["1-worker"]), ratio(P99["2-workers"], P99["1-worker"]), ratio(C["2-workers"], C["1-worker"])
        }
    }' "$OUT/summary.tsv"

if [[ -f "$OUT/density.tsv" ]]; then
    echo
    echo "Density ($(setting DENSITY_FUNCS) copies of hello.wasm, module_cache = 64):"
    echo
    echo "| state | wasmgate RSS | native RSS |"
    echo "|---|---:|---:|"
    awk -F'\t' 'function mib(k) { return (k == "-") ? "-" : sprintf("%.1f MiB", k / 1024) }
        NR > 1 {printf "| %s | %s | %s |\n", $1, mib($2), mib($3)}' "$OUT/density.tsv"
fi
for f in fuel statuses overload workers; do
    [[ -f "$OUT/$f.txt" ]] || continue
    echo
    case $f in
        fuel) echo "Guest work (fuel per request, from the access log):" ;;
        statuses) echo "Responses by status:" ;;
        overload) echo "Overload ($(setting OVERLOAD_CONNECTIONS) connections, max_in_flight 32):" ;;
        workers) echo "Workers (memory at the end of each server's runs):" ;;
    esac
    echo
    sed 's/^/    /' "$OUT/$f.txt"
done
for f in "$OUT"/fairness-*.sieve-statuses; do
    [[ -f "$f" ]] || continue
    echo
    echo "$(basename "$f" .sieve-statuses): CPU-heavy requests finished during the run (count, status): $(awk '{print $1}' "$f" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
done
