#!/usr/bin/env bash
# Benchmark: install a 1 GiB ext4 rootfs image into a slot on a loop device with the native
# engine (`update --now --noreboot`), and measure the machine's own limits in the same run:
#   - dd of the same image to the same device with O_DIRECT (the write limit),
#   - sha256sum of the image (the hashing limit of coreutils).
# Reports throughput, the ratios native/dd and native/sha256sum, and peak RSS (median of RUNS).
# Needs root (loop devices). Usage: bench/install.sh [RUNS] (default 3). Results: docs/benchmarks.md.
set -euo pipefail
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=${BENCH_DIR:-/var/tmp/libupdate-bench}
cd "$HERE"
cargo build -q --release -p update-cli -p update-tool -p update-test
BIN=$HERE/target/release
rm -rf "$W"; mkdir -p "$W"
cleanup() { "$BIN/update-sim" --root "$W/dev" destroy >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== building a 1 GiB ext4 rootfs image (about 60% full: text, binaries-like noise, zeros)"
SRC=$W/rootfs.d; mkdir -p "$SRC/usr/lib" "$SRC/usr/share" "$SRC/etc"
echo 2.0.0 > "$SRC/etc/version"; echo ok > "$SRC/etc/health"
head -c 300M /dev/urandom > "$SRC/usr/lib/blob.bin"
yes "libupdate benchmark rootfs: the quick brown fox jumps over the lazy dog 0123456789" | head -c 300M > "$SRC/usr/share/text.txt" || true
mkfs.ext4 -q -F -L rootfs -d "$SRC" "$W/rootfs.img" 1024M
rm -rf "$SRC"
head -c 8M /dev/urandom > "$W/kernel.img"
IMG_BYTES=$(stat -c %s "$W/rootfs.img")

echo "== simulated device: GPT image on a loop device, 1100 MiB rootfs slots"
"$BIN/update-sim" --root "$W/dev" create --rootfs-mib 1100 >/dev/null
"$BIN/update-tool" key generate bench --out "$W/keys" >/dev/null
"$BIN/update" --root "$W/dev" config key add bench "@$W/keys/bench.pub" >/dev/null
"$BIN/update" --root "$W/dev" config source file:///srv/update >/dev/null
mkdir -p "$W/dev/srv/update"
BUNDLE=$W/dev/srv/update/bench.bundle
T0=$(date +%s.%N)
"$BIN/update-tool" bundle create --out "$BUNDLE" --version 2.0.0 --compatible demo-board \
  --key "$W/keys/bench.key" --image rootfs="$W/rootfs.img" --image kernel="$W/kernel.img" >/dev/null
T1=$(date +%s.%N)
BUNDLE_BYTES=$(stat -c %s "$BUNDLE")
TARGET=$(readlink -f "$W/dev/dev/disk/by-partlabel/rootfs-b")
echo "image $IMG_BYTES bytes, bundle $BUNDLE_BYTES bytes (created in $(echo "$T1 - $T0" | bc) s), target $TARGET"

rate() { echo "scale=1; $1 / 1048576 / $2" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/native.txt"; : > "$W/dd.txt"; : > "$W/sha.txt"; : > "$W/rss.txt"
for i in $(seq "$RUNS"); do
  # The device limit: the same image, same device, O_DIRECT, from a warm page cache.
  cat "$W/rootfs.img" > /dev/null
  s=$(date +%s.%N); dd if="$W/rootfs.img" of="$TARGET" bs=4M oflag=direct conv=fsync status=none; e=$(date +%s.%N)
  echo "$e - $s" | bc >> "$W/dd.txt"
  s=$(date +%s.%N); sha256sum "$W/rootfs.img" > /dev/null; e=$(date +%s.%N)
  echo "$e - $s" | bc >> "$W/sha.txt"
  # Native: reset the device to 1.0 in A, then install 2.0 into B.
  "$BIN/update-sim" --root "$W/dev" reset >/dev/null
  cat "$BUNDLE" > /dev/null
  s=$(date +%s.%N)
  /usr/bin/time -f %M -o "$W/rss.one" "$BIN/update" --root "$W/dev" --now --noreboot > /dev/null
  e=$(date +%s.%N)
  echo "$e - $s" | bc >> "$W/native.txt"
  cat "$W/rss.one" >> "$W/rss.txt"
done
N=$(median < "$W/native.txt"); D=$(median < "$W/dd.txt"); S=$(median < "$W/sha.txt"); R=$(median < "$W/rss.txt")
NR=$(rate "$IMG_BYTES" "$N"); DR=$(rate "$IMG_BYTES" "$D"); SR=$(rate "$IMG_BYTES" "$S")
echo
echo "runs: $RUNS (median)"
echo "native install  : $N s  = $NR MiB/s (stream+verify+write+fsync+read-back hash)"
echo "dd oflag=direct : $D s  = $DR MiB/s"
echo "sha256sum       : $S s  = $SR MiB/s"
echo "ratio native/dd        : $(echo "scale=2; $D / $N" | bc)"
echo "ratio native/sha256sum : $(echo "scale=2; $S / $N" | bc)"
echo "peak RSS native : $R KiB"
