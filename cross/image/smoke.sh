#!/usr/bin/env bash
# Boots the minimal image (cross/image/build.sh) in qemu-system-aarch64
# (TCG: no KVM needed) and checks it over the host-forwarded port:
#
#   1. GET /hello answers 200 "Hello from wasmgate!" (waits for the boot,
#      at most WASMGATE_SMOKE_BOOT_TIMEOUT s, default 240)
#   2. GET /loop answers 504 with x-wasmgate-error: deadline
#   3. supervision: `kill-wasmgate` on the console SIGKILLs the server; the
#      console must show the supervisor's "wasmgate exited ... restarting"
#      and /hello must answer 200 again
#   4. `poweroff` on the console; qemu must exit
#
#   cross/image/smoke.sh                       # after cross/image/build.sh
#   WASMGATE_SMOKE_PORT=18080 cross/image/smoke.sh
#
# qemu is always killed on exit (trap). The console log is kept in
# target/image/smoke-console.log. Installs qemu-system-arm and curl when
# missing (apt needs root).
set -euo pipefail
cd "$(dirname "$0")/../.."
source cross/common.sh

OUT=target/image
KERNEL=$OUT/Image.gz
INITRD=$OUT/initramfs.cpio.gz
CONSOLE=$OUT/smoke-console.log
BOOT_TIMEOUT=${WASMGATE_SMOKE_BOOT_TIMEOUT:-240}
STEP_TIMEOUT=${WASMGATE_SMOKE_STEP_TIMEOUT:-120}

if [ ! -f "$KERNEL" ] || [ ! -f "$INITRD" ]; then
    die "no image in $OUT: run cross/image/build.sh first"
fi
command -v qemu-system-aarch64 >/dev/null || ensure_apt qemu-system-arm
command -v curl >/dev/null || ensure_apt curl

# A free loopback port: one nothing answers on (qemu fails loudly if it
# is taken by the time it binds).
port=${WASMGATE_SMOKE_PORT:-}
if [ -z "$port" ]; then
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            port=$p
            break
        fi
    done
    [ -n "$port" ] || die "no free port found"
fi
URL=http://127.0.0.1:$port

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
since_ms() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
fail() {
    echo "SMOKE FAILED: $*" >&2
    if [ -f "$CONSOLE" ]; then
        echo "--- last 40 lines of the console ($CONSOLE) ---" >&2
        tail -n 40 "$CONSOLE" | tr -d '\r' >&2
    fi
    exit 1
}

work=$(mktemp -d)
qemu_pid=
cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$qemu_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$qemu_pid" 2>/dev/null || true
        echo "qemu (pid $qemu_pid) killed"
    fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The console: qemu's stdio (-nographic) reads commands from a fifo and
# writes the serial output to $CONSOLE.
mkfifo "$work/console.in"
: >"$CONSOLE"
append="console=ttyAMA0 panic=-1 ${WASMGATE_SMOKE_APPEND:-}"
# shellcheck disable=SC2054 # the commas are qemu's option syntax
qemu=(qemu-system-aarch64 -M virt -cpu cortex-a53 -m 512 -nographic -no-reboot
    -kernel "$KERNEL" -initrd "$INITRD" -append "$append"
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:8080"
    -device virtio-net-pci,netdev=n0,romfile=
    -device virtio-rng-pci)
echo "qemu: ${qemu[*]}"
t0=$(now)
"${qemu[@]}" <"$work/console.in" >"$CONSOLE" 2>&1 &
qemu_pid=$!
exec 3>"$work/console.in" # keeps qemu's stdin open; commands go here
console_cmd() { printf '%s\n' "$1" >&3; }

# curl_get PATH [MAX_SECONDS]: sets STATUS, BODY, HEADERS (file); STATUS
# is 000 when nothing answered.
curl_get() {
    rm -f "$work/headers" "$work/body"
    STATUS=$(curl -s --max-time "${2:-30}" -D "$work/headers" -o "$work/body" -w '%{http_code}' "$URL$1" || true)
    BODY=$(cat "$work/body" 2>/dev/null || true)
    HEADERS=$work/headers
}
# wait_hello TIMEOUT: until GET /hello answers 200, or fail.
wait_hello() {
    local deadline=$((SECONDS + $1))
    while :; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited"
        # Short: before the guest listens, qemu's user-mode network accepts
        # the connection and then waits on the guest (retransmitting a SYN).
        curl_get /hello 2
        [ "$STATUS" = 200 ] && return 0
        [ "$SECONDS" -lt "$deadline" ] || fail "no 200 from $URL/hello within $1 s (last status $STATUS)"
        sleep 0.5
    done
}
# wait_console PATTERN TIMEOUT: until the console log has a line matching
# the extended regex PATTERN, or fail.
wait_console() {
    local deadline=$((SECONDS + $2))
    until tr -d '\r' <"$CONSOLE" | grep -qE "$1"; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "qemu exited"
        [ "$SECONDS" -lt "$deadline" ] || fail "no console line matching '$1' within $2 s"
        sleep 0.5
    done
}
console_line() { tr -d '\r' <"$CONSOLE" | grep -E "$1" | tail -n 1; }

echo
echo "== boot (up to $BOOT_TIMEOUT s)"
wait_hello "$BOOT_TIMEOUT"
t_boot=$(since "$t0")
echo "first answer from /hello after $t_boot s"
console_line '^init: started'
console_line '^init: eth0 up'
console_line '^supervisor: starting wasmgate'
console_line 'wasmgate listening on'

echo
echo "== GET /hello"
body=$(printf '%s' "$BODY" | tr -d '\r\n')
echo "status $STATUS, body: $body"
[ "$STATUS" = 200 ] || fail "GET /hello: status $STATUS, want 200"
[ "$body" = "Hello from wasmgate!" ] || fail "GET /hello: body '$body', want 'Hello from wasmgate!'"

echo
echo "== GET /loop"
t=$(now)
curl_get /loop
t_loop=$(since_ms "$t")
kind=$(tr -d '\r' <"$HEADERS" | awk -F': *' 'tolower($1) == "x-wasmgate-error" { print $2 }')
echo "status $STATUS, x-wasmgate-error: ${kind:-<none>}, after $t_loop ms"
echo "body: $BODY"
[ "$STATUS" = 504 ] || fail "GET /loop: status $STATUS, want 504"
[ "$kind" = deadline ] || fail "GET /loop: x-wasmgate-error '${kind}', want 'deadline'"

echo
echo "== supervision: kill wasmgate in the guest"
starts_before=$(tr -d '\r' <"$CONSOLE" | grep -c '^supervisor: starting wasmgate' || true)
[ "$starts_before" -ge 1 ] || fail "no 'supervisor: starting wasmgate' line on the console"
t=$(now)
console_cmd kill-wasmgate
wait_console '^supervisor: wasmgate exited' "$STEP_TIMEOUT"
console_line '^init: killing wasmgate'
console_line '^supervisor: wasmgate exited'
wait_console "^supervisor: starting wasmgate \(start #$((starts_before + 1))," "$STEP_TIMEOUT"
console_line '^supervisor: starting wasmgate'
wait_hello "$STEP_TIMEOUT"
t_restart=$(since "$t")
body=$(printf '%s' "$BODY" | tr -d '\r\n')
echo "after the restart: status $STATUS, body: $body ($t_restart s after the kill)"
[ "$body" = "Hello from wasmgate!" ] || fail "GET /hello after restart: body '$body'"

echo
echo "== poweroff"
t=$(now)
console_cmd poweroff
for _ in $(seq 300); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$qemu_pid" 2>/dev/null; then
    echo "qemu still running 30 s after poweroff; killing it"
else
    wait "$qemu_pid" || true
    qemu_pid=
    echo "qemu exited $(since "$t") s after poweroff"
fi

echo
echo "smoke: OK (boot to first /hello $t_boot s, /loop $t_loop ms," \
    "restart $t_restart s, total $(since "$t0") s; console: $CONSOLE)"
