#!/usr/bin/env bash
# Benchmark: the same 1 GiB ext4 rootfs image (as bench/install.sh) installed by the native
# engine into the same slot of a loop device, alternately
#   - from a local file (`file:///srv/update`: a pre-pass over every chunk hash, then the stream),
#   - streamed from `update-server` over HTTPS with mutual TLS on loopback (a signed repository;
#     the bundle is read by HTTP Range while it is written, nothing stored on the device),
# and reports the median time of each, the ratio streamed/local (goal: at most 1.05), the
# peak RSS of each (goal: under 32 MiB), and the bytes the streamed install moved from the server.
# Needs root (loop devices). Usage: bench/stream.sh [RUNS] (default 3). Results: docs/benchmarks.md.
set -euo pipefail
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=${BENCH_DIR:-/var/tmp/libupdate-bench-stream}
cd "$HERE"
cargo build -q --release -p update-cli -p update-tool -p update-test -p update-server
BIN=$HERE/target/release
rm -rf "$W"; mkdir -p "$W"
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  "$BIN/update-sim" --root "$W/dev" destroy >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== building a 1 GiB ext4 rootfs image (300 MiB random, 300 MiB text, the rest free)"
SRC=$W/rootfs.d; mkdir -p "$SRC/usr/lib" "$SRC/usr/share" "$SRC/etc"
echo 2.0.0 > "$SRC/etc/version"; echo ok > "$SRC/etc/health"
head -c 300M /dev/urandom > "$SRC/usr/lib/blob.bin"
yes "libupdate benchmark rootfs: the quick brown fox jumps over the lazy dog 0123456789" | head -c 300M > "$SRC/usr/share/text.txt" || true
mkfs.ext4 -q -F -L rootfs -d "$SRC" "$W/rootfs.img" 1024M
rm -rf "$SRC"
head -c 8M /dev/urandom > "$W/kernel.img"
IMG_BYTES=$(stat -c %s "$W/rootfs.img")

echo "== simulated device, keys, bundle, signed repository, fleet PKI"
"$BIN/update-sim" --root "$W/dev" create --rootfs-mib 1100 >/dev/null
"$BIN/update-tool" key generate bench --out "$W/keys" >/dev/null
"$BIN/update" --root "$W/dev" config key add bench "@$W/keys/bench.pub" >/dev/null
mkdir -p "$W/dev/srv/update"
BUNDLE=$W/dev/srv/update/bench.bundle
"$BIN/update-tool" bundle create --out "$BUNDLE" --version 2.0.0 --compatible demo-board \
  --key "$W/keys/bench.key" --image rootfs="$W/rootfs.img" --image kernel="$W/kernel.img" >/dev/null
BUNDLE_BYTES=$(stat -c %s "$BUNDLE")
"$BIN/update-tool" repo init "$W/repo" --key "$W/keys/bench.key" >/dev/null
"$BIN/update-tool" repo add "$W/repo" "$BUNDLE" --key "$W/keys/bench.key" >/dev/null
"$BIN/update-tool" cert ca fleet-ca --out "$W/pki" >/dev/null
"$BIN/update-tool" cert issue server --ca "$W/pki/fleet-ca" --out "$W/pki" --server-name localhost >/dev/null
"$BIN/update-tool" cert issue device-0001 --ca "$W/pki/fleet-ca" --out "$W/pki" >/dev/null
mkdir -p "$W/dev/etc/update/tls"
cp "$W/pki/fleet-ca.crt" "$W/pki/device-0001.crt" "$W/pki/device-0001.key" "$W/dev/etc/update/tls/"
PORT=$((20000 + RANDOM % 20000))
"$BIN/update-server" serve --repo "$W/repo" --listen "127.0.0.1:$PORT" --db "sqlite:$W/server.db" \
  --tls-cert "$W/pki/server.crt" --tls-key "$W/pki/server.key" --client-ca "$W/pki/fleet-ca.crt" \
  > "$W/server.log" 2>&1 &
SERVER=$!
sleep 1
"$BIN/update" --root "$W/dev" config server-ca /etc/update/tls/fleet-ca.crt >/dev/null
"$BIN/update" --root "$W/dev" config client-cert /etc/update/tls/device-0001.crt >/dev/null
"$BIN/update" --root "$W/dev" config client-key /etc/update/tls/device-0001.key >/dev/null
"$BIN/update" --root "$W/dev" config secure true >/dev/null
"$BIN/update" --root "$W/dev" config log /var/log/update.log >/dev/null
echo "image $IMG_BYTES bytes, bundle $BUNDLE_BYTES bytes, server https://localhost:$PORT/repo/ (mutual TLS)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/local.txt"; : > "$W/stream.txt"; : > "$W/local-rss.txt"; : > "$W/stream-rss.txt"
one() { # $1: source URL, $2: times file, $3: rss file
  "$BIN/update-sim" --root "$W/dev" reset >/dev/null
  "$BIN/update" --root "$W/dev" config source "$1" >/dev/null
  cat "$BUNDLE" > /dev/null # the same warm page cache for both (the server reads the same file)
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f %M -o "$W/rss.one" "$BIN/update" --root "$W/dev" --now --noreboot > "$W/out.one" 2>&1 \
    || { cat "$W/out.one"; exit 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc >> "$2"
  cat "$W/rss.one" >> "$3"
}
# One install of each first, not counted: caches, loop device and TLS warm.
one "file:///srv/update" "$W/warm.txt" "$W/warm-rss.txt"
one "https://localhost:$PORT/repo/" "$W/warm.txt" "$W/warm-rss.txt"
for i in $(seq "$RUNS"); do
  one "file:///srv/update" "$W/local.txt" "$W/local-rss.txt"
  one "https://localhost:$PORT/repo/" "$W/stream.txt" "$W/stream-rss.txt"
  grep -q "while streaming" "$W/dev/var/log/update.log" || { echo "the install did not stream"; exit 1; }
  if ls "$W/dev/var/cache/update/"* >/dev/null 2>&1; then echo "the streamed install stored files"; exit 1; fi
done
L=$(median < "$W/local.txt"); S=$(median < "$W/stream.txt")
LR=$(median < "$W/local-rss.txt"); SR=$(median < "$W/stream-rss.txt")
echo
echo "runs: $RUNS (median)"
echo "local file install : $L s, peak RSS $LR KiB"
echo "streamed (HTTPS)   : $S s, peak RSS $SR KiB"
echo "ratio streamed/local: $(echo "scale=3; $S / $L" | bc) (goal <= 1.05)"
