#!/usr/bin/env bash
# Side-by-side install benchmark (issue 4): the same 1 GiB ext4 rootfs image into the same
# loop-device slot with the native engine, RAUC and SWUpdate, alternating, RUNS times each.
# Reports median wall time, throughput and peak RSS of each and the ratios native/RAUC and
# native/SWUpdate. Every tool verifies a signature and writes the slot:
#   native   : `update --now --noreboot` (ed25519 bundle, zstd chunks, O_DIRECT, read-back check)
#   RAUC     : `rauc install` to `rauc service` on a private D-Bus bus (plain bundle, CMS signature,
#              squashfs with zstd; raw slot); peak RSS is the service's VmHWM
#   SWUpdate : `swupdate -i` (CMS-signed sw-description, zstd-compressed raw image)
# Needs root. Usage: bench/compare-install.sh [RUNS] (default 3). Results: docs/benchmarks.md.
set -euo pipefail
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=${BENCH_DIR:-/var/tmp/libupdate-compare}
cd "$HERE"
for t in rauc swupdate dbus-daemon openssl mksquashfs cpio zstd; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install rauc swupdate dbus squashfs-tools openssl cpio zstd)"; exit 2; }
done
cargo build -q --release -p update-cli -p update-tool -p update-test
BIN=$HERE/target/release
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done
  "$BIN/update-sim" --root "$W/dev" destroy >/dev/null 2>&1 || true
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W"

echo "== input: a 1 GiB ext4 rootfs image (300 MiB random, 300 MiB text, free space)"
SRC=$W/rootfs.d; mkdir -p "$SRC/usr/lib" "$SRC/usr/share" "$SRC/etc"
echo 2.0.0 > "$SRC/etc/version"; echo ok > "$SRC/etc/health"
head -c 300M /dev/urandom > "$SRC/usr/lib/blob.bin"
yes "libupdate benchmark rootfs: the quick brown fox jumps over the lazy dog 0123456789" 2>/dev/null | head -c 300M > "$SRC/usr/share/text.txt" || true
mkfs.ext4 -q -F -L rootfs -d "$SRC" "$W/rootfs.img" 1024M
rm -rf "$SRC"
IMG=$W/rootfs.img; IMG_BYTES=$(stat -c %s "$IMG")

echo "== the device: update-sim GPT image on a loop device (rootfs slots 1100 MiB)"
"$BIN/update-sim" --root "$W/dev" create --rootfs-mib 1100 >/dev/null
SLOT_A=$(readlink -f "$W/dev/dev/disk/by-partlabel/rootfs-a")
SLOT_B=$(readlink -f "$W/dev/dev/disk/by-partlabel/rootfs-b")
echo "target slot: $SLOT_B"

echo "== native bundle"
"$BIN/update-tool" key generate bench --out "$W/keys" >/dev/null
"$BIN/update" --root "$W/dev" config key add bench "@$W/keys/bench.pub" >/dev/null
"$BIN/update" --root "$W/dev" config source file:///srv/update >/dev/null
mkdir -p "$W/dev/srv/update"
# The native bundle also carries the kernel slot group; give it a 1-byte-sized kernel image.
head -c 4096 /dev/urandom > "$W/kernel.img"
"$BIN/update-tool" bundle create --out "$W/dev/srv/update/bench.bundle" --version 2.0.0 --compatible demo-board \
  --key "$W/keys/bench.key" --image rootfs="$IMG" --image kernel="$W/kernel.img" >/dev/null

echo "== PKI for RAUC and SWUpdate (self-signed, codeSigning/emailProtection)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 30 -subj "/CN=bench" \
  -addext "keyUsage=digitalSignature" -addext "extendedKeyUsage=emailProtection,codeSigning" 2>/dev/null

echo "== RAUC bundle (plain, squashfs zstd)"
mkdir -p "$W/rauc/bundle"
ln "$IMG" "$W/rauc/bundle/rootfs.img"
printf '[update]\ncompatible=bench\nversion=2.0.0\n\n[image.rootfs]\nfilename=rootfs.img\n' > "$W/rauc/bundle/manifest.raucm"
rauc bundle --cert="$W/cert.pem" --key="$W/key.pem" --mksquashfs-args="-comp zstd" "$W/rauc/bundle" "$W/rauc/bench.raucb" >/dev/null 2>&1
grub-editenv "$W/rauc/grubenv" create
cat > "$W/rauc/system.conf" <<CONF
[system]
compatible=bench
bootloader=grub
grubenv=$W/rauc/grubenv
statusfile=$W/rauc/status

[keyring]
path=$W/cert.pem

[slot.rootfs.0]
device=$SLOT_A
type=raw
bootname=A

[slot.rootfs.1]
device=$SLOT_B
type=raw
bootname=B
CONF
cat > "$W/rauc/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=$W/rauc/bus.socket</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>
CONF
dbus-daemon --config-file="$W/rauc/bus.conf" --nofork --print-address > "$W/rauc/bus.addr" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$W/rauc/bus.addr" ] && break; sleep 0.1; done
export DBUS_SYSTEM_BUS_ADDRESS=$(head -1 "$W/rauc/bus.addr")

echo "== SWUpdate image (.swu: CMS-signed sw-description, zstd raw image)"
mkdir -p "$W/swu"
zstd -q -3 -T0 "$IMG" -o "$W/swu/rootfs.img.zst"
SHA=$(sha256sum "$W/swu/rootfs.img.zst" | cut -d' ' -f1)
cat > "$W/swu/sw-description" <<DESC
software =
{
	version = "2.0.0";
	hardware-compatibility = [ "1.0" ];
	images: (
		{
			filename = "rootfs.img.zst";
			device = "$SLOT_B";
			type = "raw";
			compressed = "zstd";
			sha256 = "$SHA";
		}
	);
}
DESC
openssl cms -sign -in "$W/swu/sw-description" -out "$W/swu/sw-description.sig" -signer "$W/cert.pem" \
  -inkey "$W/key.pem" -outform DER -nosmimecap -binary
(cd "$W/swu" && printf 'sw-description\nsw-description.sig\nrootfs.img.zst\n' | cpio -o -H crc --quiet > bench.swu)
echo "sizes: native $(stat -c %s "$W/dev/srv/update/bench.bundle"), rauc $(stat -c %s "$W/rauc/bench.raucb"), swupdate $(stat -c %s "$W/swu/bench.swu") bytes"

now() { date +%s.%N; }
wipe_b() { dd if=/dev/zero of="$SLOT_B" bs=4M count=8 oflag=direct status=none; }
check_b() { cmp -n "$IMG_BYTES" "$IMG" "$SLOT_B" >/dev/null || { echo "slot B does not hold the image after $1"; exit 1; }; }
: > "$W/native.t"; : > "$W/rauc.t"; : > "$W/swu.t"; : > "$W/native.m"; : > "$W/rauc.m"; : > "$W/swu.m"
for i in $(seq "$RUNS"); do
  echo "-- run $i"
  # native
  wipe_b; "$BIN/update-sim" --root "$W/dev" reset >/dev/null; cat "$W/dev/srv/update/bench.bundle" > /dev/null
  s=$(now); /usr/bin/time -f %M -o "$W/m" "$BIN/update" --root "$W/dev" --now --noreboot >/dev/null; e=$(now)
  echo "$e - $s" | bc >> "$W/native.t"; cat "$W/m" >> "$W/native.m"; check_b native
  # RAUC: a fresh service per run so VmHWM is this install's peak.
  wipe_b; rm -f "$W/rauc/status"; cat "$W/rauc/bench.raucb" > /dev/null
  rauc --conf="$W/rauc/system.conf" service --override-boot-slot=A > "$W/rauc/service.log" 2>&1 &
  SVC=$!; PIDS+=($SVC)
  for _ in $(seq 100); do rauc --conf="$W/rauc/system.conf" status >/dev/null 2>&1 && break; sleep 0.1; done
  s=$(now); rauc --conf="$W/rauc/system.conf" install "$W/rauc/bench.raucb" >/dev/null; e=$(now)
  echo "$e - $s" | bc >> "$W/rauc.t"; awk '/VmHWM/ {print $2}' /proc/$SVC/status >> "$W/rauc.m"
  kill $SVC; wait $SVC 2>/dev/null || true; check_b rauc
  # SWUpdate
  wipe_b; cat "$W/swu/bench.swu" > /dev/null
  s=$(now); /usr/bin/time -f %M -o "$W/m" swupdate -k "$W/cert.pem" -H bench:1.0 -i "$W/swu/bench.swu" >/dev/null 2>&1; e=$(now)
  echo "$e - $s" | bc >> "$W/swu.t"; cat "$W/m" >> "$W/swu.m"; check_b swupdate
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
N=$(median < "$W/native.t"); R=$(median < "$W/rauc.t"); S=$(median < "$W/swu.t")
NM=$(median < "$W/native.m"); RM=$(median < "$W/rauc.m"); SM=$(median < "$W/swu.m")
rate() { echo "scale=1; $IMG_BYTES / 1048576 / $1" | bc; }
echo
echo "runs: $RUNS (median), image $IMG_BYTES bytes"
echo "native   : $N s = $(rate "$N") MiB/s, peak RSS $NM KiB"
echo "RAUC     : $R s = $(rate "$R") MiB/s, peak RSS $RM KiB (service)"
echo "SWUpdate : $S s = $(rate "$S") MiB/s, peak RSS $SM KiB"
echo "throughput ratio native/RAUC     : $(echo "scale=2; $R / $N" | bc)"
echo "throughput ratio native/SWUpdate : $(echo "scale=2; $S / $N" | bc)"
