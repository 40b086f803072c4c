#!/usr/bin/env bash
# Builds a minimal bootable aarch64 system that runs wasmgate: Debian's
# arm64 kernel plus an initramfs with busybox, the static wasmgate binary,
# the example functions and a config. Boot it with cross/image/smoke.sh.
#
#   cross/image/build.sh
#
# Output in target/image/:
#   Image.gz             the kernel (Debian's arm64 Image, gzip; qemu's
#                        -kernel unpacks it)
#   initramfs.cpio.gz    the whole root filesystem (runs from RAM)
#   rootfs/              what went into the initramfs
#   debs/                cached downloads (kernel, busybox-static: arm64)
#
# Installs cpio, gzip and the static aarch64 toolchain when missing (apt
# needs root). The arm64 packages are fetched with apt-get download against a
# private apt state in target/image/apt (arm64 only), so the machine's dpkg
# architectures and apt lists are left as they are. Once downloaded, the
# .debs are reused; IMAGE_REFRESH=1 fetches the current ones again.
set -euo pipefail
cd "$(dirname "$0")/../.."
source cross/common.sh

T=$SHIPPED_TARGET # aarch64-unknown-linux-musl: static, runs on busybox alone
OUT=target/image
DEBS=$OUT/debs
ROOT=$OUT/rootfs
# Loaded at boot, with what they depend on (the PCI host, the PL011 console,
# devtmpfs and the initramfs support are built into Debian's kernel).
MODULES=(virtio_pci virtio_net virtio_rng)

step() { printf '\n==> %s\n' "$*"; }
start=$SECONDS

step "tools"
ensure_apt cpio gzip
command -v dpkg-deb >/dev/null || die "dpkg-deb not found"

step "wasmgate for $T (cross/build.sh)"
cross/build.sh "$T"
bin=target/$T/release/wasmgate
is_static "$T" "$bin" || die "$bin is not statically linked"

step "arm64 packages: kernel, busybox-static (cache: $DEBS)"
mkdir -p "$DEBS"
APT_DIR=$(realpath -m "$OUT/apt")
APT_OPTS=(
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::State::status=$APT_DIR/status"
    -o "Dir::Cache=$APT_DIR/cache"
    -o APT::Architecture=arm64
    -o APT::Architectures::=arm64
    -o Acquire::Languages=none
    -o APT::Sandbox::User=root
)
apt_arm64_update() {
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
    touch "$APT_DIR/status"
    apt-get "${APT_OPTS[@]}" update -qq
}
newest() { compgen -G "$1" | LC_ALL=C sort -V | tail -n 1; }
kdeb=$(newest "$DEBS/linux-image-*-arm64_*_arm64.deb" || true)
bbdeb=$(newest "$DEBS/busybox-static_*_arm64.deb" || true)
if [ "${IMAGE_REFRESH:-0}" = 1 ] || [ -z "$kdeb" ] || [ -z "$bbdeb" ]; then
    apt_arm64_update
    # linux-image-arm64 is the metapackage; it depends on the current kernel.
    kpkg=$(apt-cache "${APT_OPTS[@]}" depends linux-image-arm64 |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-arm64\)$/\1/p' | head -n 1)
    [ -n "$kpkg" ] || die "cannot resolve linux-image-arm64 to a kernel package"
    rm -f "$DEBS"/*.deb
    (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "$kpkg" busybox-static)
    kdeb=$(newest "$DEBS/${kpkg}_*_arm64.deb") || die "download of $kpkg failed"
    bbdeb=$(newest "$DEBS/busybox-static_*_arm64.deb") || die "download of busybox-static failed"
    echo "downloaded: ${kdeb##*/} ${bbdeb##*/}"
else
    echo "cached: ${kdeb##*/} ${bbdeb##*/}"
fi

step "kernel and modules"
KX=$OUT/kernel-extract
rm -rf "$KX"
mkdir -p "$KX"
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$KX" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/*'
vmlinuz=$(ls "$KX"/boot/vmlinuz-*)
kver=${vmlinuz##*/vmlinuz-}
# Debian's arm64 vmlinuz is the uncompressed Image; gzip it (qemu, like
# U-Boot's booti with a compressed kernel, unpacks it when loading).
gzip -9 -n -c "$vmlinuz" >"$OUT/Image.gz"
echo "kernel $kver: $(stat -c %s "$vmlinuz") bytes, gzip $(stat -c %s "$OUT/Image.gz") bytes"

# Module name -> .ko path (relative to lib/modules/KVER); names use '_'
# where file names may use '-'.
declare -A ko_path=()
while IFS= read -r f; do
    name=$(basename "$f" .ko)
    ko_path[${name//-/_}]=${f#"$KX/lib/modules/$kver/"}
done < <(find "$KX/lib/modules/$kver/kernel" -name '*.ko')
[ ${#ko_path[@]} -gt 0 ] || die "no modules in $kdeb (compressed modules are not handled)"
# The dependencies of a module from its .modinfo section ("depends=a,b").
ko_depends() {
    tr '\0' '\n' <"$KX/lib/modules/$kver/${ko_path[$1]}" | sed -n 's/^depends=//p' | tr ',' ' '
}
declare -A loaded=()
order=()
add_module() {
    local m=${1//-/_} d
    [ -n "${loaded[$m]:-}" ] && return 0
    [ -n "${ko_path[$m]:-}" ] || die "module $m not found in $kdeb"
    loaded[$m]=1
    for d in $(ko_depends "$m"); do add_module "$d"; done
    order+=("${ko_path[$m]}")
}
for m in "${MODULES[@]}"; do add_module "$m"; done

step "root filesystem ($ROOT)"
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc/wasmgate,srv/wasmgate/functions,srv/wasmgate/hostile,dev,proc,sys,run,tmp}
mkdir -p "$ROOT/lib/modules/$kver"
dpkg-deb --fsys-tarfile "$bbdeb" | tar -x -O ./bin/busybox >"$ROOT/bin/busybox"
chmod 755 "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh" # /init's interpreter; /init installs the other applets
install -m 755 cross/image/init "$ROOT/init"
install -m 755 cross/image/wasmgate-supervise "$ROOT/usr/sbin/wasmgate-supervise"
install -m 755 "$bin" "$ROOT/usr/local/bin/wasmgate"
install -m 644 cross/image/wasmgate.toml "$ROOT/etc/wasmgate/wasmgate.toml"
install -m 644 functions/*.wasm "$ROOT/srv/wasmgate/functions/"
install -m 644 functions/hostile/loop.wasm "$ROOT/srv/wasmgate/hostile/"
for ko in "${order[@]}"; do
    mkdir -p "$ROOT/lib/modules/$kver/$(dirname "$ko")"
    cp "$KX/lib/modules/$kver/$ko" "$ROOT/lib/modules/$kver/$ko"
done
printf '%s\n' "${order[@]}" >"$ROOT/lib/modules/$kver/load-order"
echo "modules (load order): $(printf '%s ' "${order[@]##*/}")"
# The kernel opens /dev/console for init before /init mounts devtmpfs.
# Creating the node needs root; without it /init still reopens the console.
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || echo "(no /dev/console node: not root)"
rm -rf "$KX"

step "initramfs"
(cd "$ROOT" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null --create --format=newc --owner=0:0 --reproducible --quiet) |
    gzip -9 -n >"$OUT/initramfs.cpio.gz"

kernel_bytes=$(stat -c %s "$OUT/Image.gz")
initrd_bytes=$(stat -c %s "$OUT/initramfs.cpio.gz")
total=$((kernel_bytes + initrd_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
du_b() { du -sb "$@" | awk '{ s += $1 } END { print s }'; }
printf '\ncontents (uncompressed):\n'
printf '  %-38s %9s bytes\n' \
    "wasmgate ($T)" "$(stat -c %s "$ROOT/usr/local/bin/wasmgate")" \
    "busybox (busybox-static arm64)" "$(stat -c %s "$ROOT/bin/busybox")" \
    "kernel modules (${#order[@]})" "$(du_b "$ROOT/lib/modules")" \
    "functions ($(find "$ROOT/srv" -name '*.wasm' | wc -l) .wasm)" "$(du_b "$ROOT/srv")" \
    "/init, supervisor, config" "$(du_b "$ROOT/init" "$ROOT/usr/sbin/wasmgate-supervise" "$ROOT/etc")"
printf '\nimage (%s, built in %d s):\n' "$OUT" $((SECONDS - start))
printf '  %-20s %10s bytes  %s\n' \
    "Image.gz (kernel)" "$kernel_bytes" "$(mib "$kernel_bytes")" \
    "initramfs.cpio.gz" "$initrd_bytes" "$(mib "$initrd_bytes")" \
    "total" "$total" "$(mib "$total")"
