#!/usr/bin/env bash
# Cross-compiles the test suite for an ARM target and runs it under qemu
# user-mode emulation (no ARM machine and no binfmt_misc needed).
#
#   cross/test-emulated.sh TARGET [CARGO TEST ARGS...]
#   cross/test-emulated.sh aarch64-unknown-linux-musl
#   cross/test-emulated.sh armv7-unknown-linux-gnueabihf -- --test-threads=1
#
# Sets CARGO_TARGET_<TRIPLE>_RUNNER (so cargo runs every test binary under
# qemu) and WASMGATE_TEST_RUNNER (so the integration tests start the server
# binary, which is also an ARM binary, under qemu too). glibc targets get
# `-L /usr/<gnu-triple>` so qemu finds the ARM dynamic loader and libc.
#
# Each test binary runs under `timeout` (WASMGATE_EMULATED_TIMEOUT seconds,
# default 600): qemu-user can deadlock in a fork of a multi-threaded guest,
# and a hung run must fail CI, not eat its time limit. `timeout` kills the
# whole process group, emulated server included.
set -euo pipefail
cd "$(dirname "$0")/.."
source cross/common.sh

[ $# -ge 1 ] || die "usage: cross/test-emulated.sh TARGET [CARGO TEST ARGS...]"
t=$1
shift

ensure_toolchain "$t"
cargo_for "$t"
qemu_for "$t"

runner_var=$(cargo_target_var "$t" RUNNER)
export "$runner_var=timeout --kill-after=10 ${WASMGATE_EMULATED_TIMEOUT:-600} $QEMU"
export WASMGATE_TEST_RUNNER=$QEMU
echo "$runner_var=${!runner_var}"
echo "WASMGATE_TEST_RUNNER=$WASMGATE_TEST_RUNNER"

start=$SECONDS
"${CARGO[@]}" test --locked --target "$t" --no-run
built=$SECONDS
log=target/emulated-test-$t.log
mkdir -p target
status=0
"${CARGO[@]}" test --locked --no-fail-fast --target "$t" "$@" 2>&1 | tee "$log" || status=$?
# "test result: ok. 27 passed; 0 failed; ..." lines; a test binary killed
# by the timeout has none (its exit status still fails the run).
counts=$(awk '/^test result: / { p += $4; f += $6 } END { print p + 0, f + 0 }' "$log")
read -r passed failed <<<"$counts"
echo "emulated tests ($t): $passed passed, $failed failed;" \
    "build $((built - start)) s, run $((SECONDS - built)) s (log: $log)"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "emulated tests ($t): a test binary ended without a result (crashed," \
        "or killed after WASMGATE_EMULATED_TIMEOUT=${WASMGATE_EMULATED_TIMEOUT:-600} s): see the log" >&2
fi
exit "$status"
