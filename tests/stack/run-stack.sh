#!/usr/bin/env bash
# Tier 3 (`make test-ble-stack`): the full Linux Bluetooth stack (kernel + bluetoothd + btvirt) in a QEMU
# guest (TCG: KVM hangs on this machine kind), two `proximity node`s on two virtual controllers, then
# tests/stack/check.py on the btmon capture and both logs. Skips cleanly (exit 0, saying why) where qemu,
# the kernel package or the BlueZ tools are missing; PROXIMITY_STACK_INSTALL=1 installs them with apt-get.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
SECONDS_RUN=${PROXIMITY_STACK_SECONDS:-45}
PACKAGES="qemu-system-x86 linux-image-amd64 bluez bluez-test-tools busybox-static dbus kmod"

skip() { echo "test-ble-stack: SKIPPED: $*"; exit 0; }

find_kernel() { ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -1; }

missing() {
  local m=()
  command -v qemu-system-x86_64 > /dev/null || m+=(qemu-system-x86_64)
  [ -n "$(find_kernel)" ] || m+=("a Debian amd64 kernel in /boot")
  for tool in btvirt btmon btmgmt dbus-daemon busybox modprobe; do command -v $tool > /dev/null || m+=($tool); done
  [ -x /usr/libexec/bluetooth/bluetoothd ] || [ -x /usr/lib/bluetooth/bluetoothd ] || m+=(bluetoothd)
  echo "${m[*]:-}"
}

if [ -n "$(missing)" ] && [ "${PROXIMITY_STACK_INSTALL:-0}" = 1 ] && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
  echo "test-ble-stack: installing $PACKAGES (Debian packages, ~160 MB)"
  # A fresh machine's package lists may be empty or stale: update first. A failed install is a skip
  # (named below), not a failure of the tests.
  apt-get update -qq > /dev/null 2>&1 || echo "test-ble-stack: apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES > /dev/null \
    || echo "test-ble-stack: apt-get install failed"
fi
[ -z "$(missing)" ] || skip "missing $(missing) (Debian: apt-get install $PACKAGES, or PROXIMITY_STACK_INSTALL=1)"

KERNEL=$(find_kernel)
VERSION=${KERNEL#/boot/vmlinuz-}
MODULES=/lib/modules/$VERSION
[ -e "$MODULES/kernel/drivers/bluetooth/hci_vhci.ko" ] || [ -e "$MODULES/kernel/drivers/bluetooth/hci_vhci.ko.xz" ] \
  || skip "kernel $VERSION has no hci_vhci module"

WORK=$(mktemp -d /tmp/proximity-stack.XXXXXX)
trap 'rm -rf "$WORK/initramfs" "$WORK/initrd.gz"' EXIT
OUT=$WORK/out
mkdir -p "$OUT" "$WORK/initramfs"/{bin,proc,sys,dev,modules}

# initramfs: static busybox, the modules for virtio-9p + overlay (in load order), our init.
cp "$(command -v busybox)" "$WORK/initramfs/bin/busybox"
for module in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -S "$VERSION" --show-depends "$module" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' > "$WORK/modules.list"
: > "$WORK/initramfs/modules.order"
while read -r path; do
  name=$(basename "$path")
  case "$name" in
    *.xz) xz -dc "$path" > "$WORK/initramfs/modules/${name%.xz}"; name=${name%.xz} ;;
    *.zst) zstd -qdc "$path" > "$WORK/initramfs/modules/${name%.zst}"; name=${name%.zst} ;;
    *) cp "$path" "$WORK/initramfs/modules/$name" ;;
  esac
  echo "$name" >> "$WORK/initramfs/modules.order"
done < "$WORK/modules.list"
cp tests/stack/init "$WORK/initramfs/init"
(cd "$WORK/initramfs" && find . | cpio -o -H newc --quiet | gzip -1 > "$WORK/initrd.gz")

# Key rings with 10-second Bluezone slots (8640 IDs a day), so a run of seconds sees several rotations.
"$PYTHON" tests/stack/check.py prepare "$OUT"
echo "$SECONDS_RUN" > "$OUT/seconds"
echo "$PYTHON" > "$OUT/python"

echo "test-ble-stack: booting $VERSION under qemu (TCG), ~$((SECONDS_RUN + 60)) s; results in $OUT"
timeout $((SECONDS_RUN + 600)) qemu-system-x86_64 -accel tcg -cpu ${PROXIMITY_STACK_CPU:-Nehalem} -m 1536 -smp 2 -nographic -no-reboot \
  -kernel "$KERNEL" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 proximity.guest=${PROXIMITY_STACK_GUEST:-$PWD/tests/stack/guest.sh}" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$OUT",mount_tag=out,security_model=none \
  > "$OUT/console.log" 2>&1 || { tail -30 "$OUT/console.log"; echo "test-ble-stack: qemu failed"; exit 1; }
grep -E "^(guest|init):" "$OUT/console.log" || true
"$PYTHON" tests/stack/check.py check "$OUT"
