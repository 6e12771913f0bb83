#!/bin/sh
# Tier 3, inside the QEMU guest: kernel + bluetoothd + btvirt (two virtual LE controllers), btmon
# recording, and two `proximity node` processes (hci0, hci1) that advertise, rotate and scan.
OUT=${1:-/mnt/out}
SECONDS_RUN=$(cat "$OUT/seconds" 2>/dev/null || echo 45)
WORK=/run/proximity  # a fresh tmpfs: nothing of the host's /tmp can leak into the logs
mkdir -p "$WORK"
export HOME=$WORK TMPDIR=$WORK PYTHONDONTWRITEBYTECODE=1
log() { echo "guest: $*"; }
modprobe hci_vhci || { log "no hci_vhci"; exit 1; }
# btvirt's emulated controllers do their LE crypto through AF_ALG sockets.
for module in af_alg algif_hash algif_skcipher cmac ecb; do modprobe $module 2>/dev/null; done
sleep 1
[ -e /dev/vhci ] || log "no /dev/vhci: $(grep -c vhci /proc/modules) module(s), $(grep vhci /proc/misc)"
mkdir -p /run/dbus
dbus-daemon --system --fork --nopidfile || { log "no dbus-daemon"; exit 1; }
btvirt -l2 -L > "$OUT/btvirt.log" 2>&1 &
sleep 2
btmon -w "$OUT/capture.btsnoop" > /dev/null 2>&1 &
BTMON=$!
BLUETOOTHD=$(ls /usr/libexec/bluetooth/bluetoothd /usr/lib/bluetooth/bluetoothd 2>/dev/null | head -1)
"$BLUETOOTHD" -n -E > "$OUT/bluetoothd.log" 2>&1 &
sleep 3
for index in 0 1; do btmgmt --index $index power on > /dev/null 2>&1; done
sleep 1
log "controllers: $(ls /sys/class/bluetooth | tr '\n' ' ')"
PYTHON=$(cat "$OUT/python")
PIDS=""
for adapter in hci0 hci1; do
  "$PYTHON" -m proximity node --scheme bluezone --adapter $adapter --db "$WORK/$adapter.sqlite" \
    --keyring "$OUT/$adapter.keyring.json" --seconds "$SECONDS_RUN" > "$OUT/$adapter.out" 2> "$OUT/$adapter.err" &
  PIDS="$PIDS $!"
done
for pid in $PIDS; do wait "$pid"; echo $? >> "$OUT/node-exit-codes"; done
cp "$WORK"/hci0.sqlite* "$WORK"/hci1.sqlite* "$OUT/"
sleep 2
kill -INT $BTMON
sleep 1
log "done"
