# shellcheck shell=bash disable=SC2034 # sets variables for the scripts that source it
# Shared by cross/build.sh, cross/check-size.sh and cross/test-emulated.sh
# (sourced, not run). One table of what each ARM target needs, and helpers
# that install it only when it is missing.

# The targets `cross/build.sh` builds when given none.
ALL_TARGETS=(
    aarch64-unknown-linux-musl
    aarch64-unknown-linux-gnu
    armv7-unknown-linux-gnueabihf
    armv7-unknown-linux-musleabihf
)

# The binary the size budget applies to: what ships to aarch64 boards.
SHIPPED_TARGET=aarch64-unknown-linux-musl

die() {
    echo "cross: $*" >&2
    exit 1
}

# Sets, for target $1:
#   GCC_PREFIX  binutils/gcc prefix (linker, strip, readelf)
#   QEMU_ARCH   qemu user-mode emulator name without qemu- / -static
#   LD_PREFIX   root of the target's shared libraries for qemu -L (glibc only)
#   APT_PKGS    Debian packages it needs (name:arch for foreign libraries)
#   BUILD_STD   1 if, when `rustup target add` cannot fetch its rust-std,
#               std may be built from source instead (nightly -Zbuild-std)
target_info() {
    BUILD_STD=0
    LD_PREFIX=
    case "$1" in
    aarch64-unknown-linux-gnu)
        GCC_PREFIX=aarch64-linux-gnu QEMU_ARCH=aarch64 LD_PREFIX=/usr/aarch64-linux-gnu
        APT_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    aarch64-unknown-linux-musl)
        # Rust's rust-std for this target carries musl's libc.a and crt
        # objects; gcc only drives the link and brings libgcc.
        GCC_PREFIX=aarch64-linux-gnu QEMU_ARCH=aarch64
        APT_PKGS=(gcc-aarch64-linux-gnu) ;;
    armv7-unknown-linux-gnueabihf)
        GCC_PREFIX=arm-linux-gnueabihf QEMU_ARCH=arm LD_PREFIX=/usr/arm-linux-gnueabihf
        APT_PKGS=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross) ;;
    armv7-unknown-linux-musleabihf)
        # Linked by cross/armv7-musl-gcc against Debian's armhf musl
        # (musl-dev:armhf). Where rustup cannot fetch rust-std for it (as on
        # our CI machine), std is built from source with nightly.
        GCC_PREFIX=arm-linux-gnueabihf QEMU_ARCH=arm BUILD_STD=1
        APT_PKGS=(gcc-arm-linux-gnueabihf musl-dev:armhf) ;;
    *) die "unknown target '$1' (known: ${ALL_TARGETS[*]})" ;;
    esac
}

# Installs the Debian packages in APT_PKGS that are not installed yet.
# Runs apt-get update only when something is missing.
ensure_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    echo "cross: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "${missing[@]}"; do
        case "$pkg" in
        *:armhf) dpkg --print-foreign-architectures | grep -qx armhf || dpkg --add-architecture armhf ;;
        esac
    done
    # A mirror caught mid-sync can fail one index (seen with
    # bookworm-security's armhf list); the install below still fails
    # loudly if a package really cannot be found.
    apt-get update -qq || echo "cross: apt-get update reported errors; trying the install anyway" >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Makes sure everything target $1 needs to build is present.
ensure_toolchain() {
    target_info "$1"
    ensure_apt "${APT_PKGS[@]}"
    rustup target list --installed | grep -qx "$1" && return 0
    if rustup target add "$1" 2>/dev/null; then return 0; fi
    [ "$BUILD_STD" = 1 ] || die "rustup target add $1 failed"
    echo "cross: no rust-std for $1 from rustup; building std from source (nightly, rust-src)" >&2
    rustup toolchain list | grep -q '^nightly' ||
        rustup toolchain install nightly --profile minimal
    rustup +nightly component list --installed | grep -qx rust-src ||
        rustup +nightly component add rust-src
}

# Sets CARGO to the cargo command line for target $1 (an array): plain
# cargo when rustup has the target's rust-std, else nightly cargo building
# std from source.
cargo_for() {
    if rustup target list --installed | grep -qx "$1"; then
        CARGO=(cargo)
    else
        CARGO=(cargo +nightly "-Zbuild-std=std,panic_abort")
    fi
}

# Prints the size in bytes of binary $2 of target $1 once stripped (the
# release profile already strips; this measures the same either way).
stripped_size() {
    target_info "$1"
    local tmp
    tmp=$(mktemp)
    "$GCC_PREFIX-strip" -o "$tmp" "$2"
    stat -c %s "$tmp"
    rm -f "$tmp"
}

# Succeeds if binary $2 of target $1 is statically linked (no ELF
# interpreter, no NEEDED libraries).
is_static() {
    target_info "$1"
    local headers
    headers=$("$GCC_PREFIX-readelf" -lW -dW "$2")
    ! grep -qE 'INTERP|\(NEEDED\)' <<<"$headers"
}

# Sets QEMU to the qemu user-mode command prefix for target $1 (a string:
# cargo and the tests split it on spaces), installing qemu-user-static if
# no emulator is found.
qemu_for() {
    target_info "$1"
    local q
    q=$(command -v "qemu-$QEMU_ARCH-static" || command -v "qemu-$QEMU_ARCH" || true)
    if [ -z "$q" ]; then
        ensure_apt qemu-user-static
        q=$(command -v "qemu-$QEMU_ARCH-static") || die "qemu-$QEMU_ARCH-static not found"
    fi
    QEMU=$q
    [ -n "$LD_PREFIX" ] && QEMU="$q -L $LD_PREFIX"
    return 0
}

# The variable cargo reads for a target's runner (or linker, ...):
# CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER for $1 = the triple, $2 = RUNNER.
cargo_target_var() {
    local triple=${1^^}
    echo "CARGO_TARGET_${triple//-/_}_$2"
}
