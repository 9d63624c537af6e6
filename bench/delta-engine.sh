#!/usr/bin/env bash
# The real delta engine on real root filesystem pairs (docs/delta.md, docs/benchmarks.md "Delta").
# For each pair base → NEW made by bench/delta.sh, a simulated device runs base.img in slot A
# (1 GiB slots), NEW is published as a format 3 bundle (zstd -19, 1 MiB chunks, --delta-base
# base.img) in a signed repository on the real update-server, and the device installs it over
# mutual TLS through a loopback relay that counts every byte from the server (TLS, metadata,
# head, index, blocks). The slot is compared with NEW afterwards.
#
# Usage: bash bench/delta-engine.sh [PAIR …]   (default: onepkg security pkgs20)
# Environment: WORK (default /var/tmp/libupdate-delta, as bench/delta.sh), LEVEL (default 19).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/libupdate-delta}
LEVEL=${LEVEL:-19}
PAIRS=${*:-onepkg security pkgs20}
IMG=$WORK/images
[ -f "$IMG/base.img" ] || { echo "no $IMG/base.img: run bench/delta.sh first (STAGE=images)" >&2; exit 2; }
cd "$HERE"
mkdir -p "$WORK/results"
for pair in $PAIRS; do
  out=$WORK/results/$pair/engine.json
  mkdir -p "$(dirname "$out")"
  UPDATE_BENCH_OLD=$IMG/base.img UPDATE_BENCH_NEW=$IMG/$pair.img UPDATE_BENCH_LEVEL=$LEVEL \
    cargo test -q --release -p update-test --test native bench_delta_install -- --ignored --nocapture \
    | grep '^{' > "$out"
  python3 - "$pair" "$out" "$WORK/results/$pair/peers" <<'PY'
import json, sys
pair, out, peers = sys.argv[1:]
d = json.load(open(out))
z19 = None
try:
    for line in open(peers):
        f = line.split()
        if f and f[0] == "whole_z19":
            z19 = int(f[1])
except FileNotFoundError:
    pass
pct = lambda n: f" ({100 * n / z19:.1f}% of zstd -19)" if z19 else ""
print(f"{pair}: network {d['network-bytes']:,}{pct(d['network-bytes'])}; engine index + pieces "
      f"{d['index-bytes'] + d['fetch-bytes']:,}{pct(d['index-bytes'] + d['fetch-bytes'])} in "
      f"{d['range-requests']} range requests + 1 for the index; full payload {d['full-payload-bytes']:,}"
      f"{pct(d['full-payload-bytes'])}; install {d['install-seconds']:.1f} s")
PY
done
