#!/usr/bin/env bash
# Benchmark: delta updates of real Debian root filesystems (issue 13, "The data path").
#
# Builds with debootstrap (bookworm, minbase + a small server set) four rootfs trees:
#   base      the base system
#   onepkg    base + `curl` (one package, with the libraries it pulls in)
#   security  base with the bookworm-security update of libssl3 applied (a one-library update)
#   pkgs20    base + about 20 packages
# makes a deterministic 1 GiB ext4 image of each (mkfs.ext4 -d, fixed UUID and hash seed, faked
# time, clamped mtimes; built twice to check), and reports for each pair (base -> new) the bytes
# to download and the HTTP requests of:
#   ours      `cargo xtask delta-measure` (fixed 4 KiB blocks and FastCDC 4..64 KiB; index counted)
#   casync    blob index of the new image, chunks the old image (seed) does not provide
#   zchunk    `zck_delta_size old.zck new.zck`
#   zstd      `zstd -19 --long=27 --patch-from=old new`
#   xdelta3   `xdelta3 -9 -e -B <image size> -s old new`
#   full      our bundle today (`update-tool bundle create`, zstd 3 and 19) and the zchunk file
# The denominator is the new image compressed whole with `zstd -19 --long=27`.
#
# Needs root (debootstrap, chroot) and the Debian packages debootstrap casync zchunk xdelta3
# zstd e2fsprogs (installed when missing). Usage: bench/delta.sh
# Environment: UPDATE_TOOL (an update-tool binary; default: build it with --release), WORK
# (default /var/tmp/libupdate-delta; trees are cached there, delete
# $WORK/trees to rebuild them), MIRROR, SECURITY_MIRROR. Results: $WORK/results/, the table
# for docs/benchmarks.md on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/var/tmp/libupdate-delta}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
EPOCH=1700000000
IMG_SIZE=1G
FS_UUID=6c1b5f2e-4b7a-4d43-9d1e-2f0a8c1e7d10
BASE_PKGS=systemd,systemd-sysv,udev,dbus,kmod,iproute2,iputils-ping,ifupdown,isc-dhcp-client,openssh-server,ca-certificates,python3,less,nano,procps,netbase,tzdata
ONE_PKG=curl
SECURITY_PKG=libssl3
PKGS20="jq wget rsync sudo htop tmux lsof strace tcpdump file bzip2 xz-utils zstd unzip sqlite3 nftables psmisc ethtool pciutils bc"
PAIRS="onepkg security pkgs20"

[ "$(id -u)" = 0 ] || { echo "bench/delta.sh: needs root (debootstrap, chroot)" >&2; exit 2; }
need=()
for t in debootstrap:debootstrap casync:casync zck:zchunk xdelta3:xdelta3 zstd:zstd mkfs.ext4:e2fsprogs; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -q "${need[@]}"; fi

mkdir -p "$WORK/trees" "$WORK/images" "$WORK/results"
MOUNTED=()
cleanup() {
  local m
  for m in "${MOUNTED[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT

sources() {
  cat > "$1/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $SECURITY_MIRROR $SUITE-security main
EOF
}

# Runs a command in a tree with /proc and /dev, no daemons started.
in_chroot() {
  local t=$1; shift
  mount -t proc proc "$t/proc"; MOUNTED+=("$t/proc")
  mount --bind /dev "$t/dev"; MOUNTED+=("$t/dev")
  cp /etc/resolv.conf "$t/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$t/usr/sbin/policy-rc.d"; chmod 755 "$t/usr/sbin/policy-rc.d"
  chroot "$t" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"
  rm -f "$t/usr/sbin/policy-rc.d"
  umount "$t/dev" "$t/proc"
  MOUNTED=()
}

# What an image build leaves out: package lists and caches (the same for every tree).
tidy() {
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb
  : > "$1/etc/resolv.conf"
  find "$1" -xdev -newermt "@$EPOCH" -exec touch -h -d "@$EPOCH" {} +
}

build_base() {
  local t=$WORK/trees/base
  [ -f "$t.done" ] && return
  rm -rf "$t"
  echo "== debootstrap $SUITE minbase + $BASE_PKGS"
  debootstrap --variant=minbase --include="$BASE_PKGS" "$SUITE" "$t" "$MIRROR" > "$WORK/trees/base.log" 2>&1
  sources "$t"
  tidy "$t"
  touch "$t.done"
}

# build_variant NAME APT-ARGS...: a copy of base with `apt-get APT-ARGS` applied.
build_variant() {
  local name=$1; shift
  local t=$WORK/trees/$name
  [ -f "$t.done" ] && return
  rm -rf "$t"
  echo "== $name: base + apt-get $*"
  cp -a "$WORK/trees/base" "$t"
  in_chroot "$t" sh -c "apt-get update -q && apt-get $* && apt-get clean" > "$WORK/trees/$name.log" 2>&1
  tidy "$t"
  touch "$t.done"
}

# make_image TREE IMG: a deterministic ext4 image (same size for every tree). mke2fs 1.47.0 copies
# atime and ctime from the tree (ctime cannot be set from user space, and differs between copies
# of a tree), so both are then clamped to $EPOCH with debugfs, as a build pipeline would clamp
# them (later e2fsprogs clamp with SOURCE_DATE_EPOCH themselves).
make_image() {
  rm -f "$2"
  truncate -s "$IMG_SIZE" "$2"
  E2FSPROGS_FAKE_TIME=$EPOCH SOURCE_DATE_EPOCH=$EPOCH mkfs.ext4 -q -F -b 4096 -L rootfs \
    -U "$FS_UUID" -E "hash_seed=$FS_UUID,root_owner=0:0" -d "$1" "$2"
  (cd "$1" && find . -printf '%P\n') | LC_ALL=C sort |
    awk -v e="$EPOCH" '{ printf "sif \"/%s\" atime @%s\nsif \"/%s\" ctime @%s\n", $0, e, $0, e }' > "$2.sif"
  E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f "$2.sif" "$2" > /dev/null 2> "$2.sif.err"
  if grep -v '^debugfs ' "$2.sif.err" | grep -q .; then
    echo "debugfs could not clamp times in $2:" >&2; head "$2.sif.err" >&2; exit 1
  fi
  rm -f "$2.sif" "$2.sif.err"
}

STAGE=${1:-all}
t0=$(date +%s)
build_base
build_variant onepkg "install -y -q --no-install-recommends $ONE_PKG"
build_variant security "install -y -q --no-install-recommends -t $SUITE-security $SECURITY_PKG"
build_variant pkgs20 "install -y -q --no-install-recommends $PKGS20"
echo "trees built in $(( $(date +%s) - t0 )) s: $(du -sh --apparent-size "$WORK"/trees/*/ | tr '\n' ' ')"
[ "$STAGE" = trees ] && exit 0

# --- images -----------------------------------------------------------------------------------
cd "$HERE"
cargo build -q -p xtask
XTASK=$HERE/target/debug/xtask   # dev profile: its dependencies (sha2, zstd, fastcdc) are optimised
IMG=$WORK/images
for name in base $PAIRS; do
  if [ ! -f "$IMG/$name.img" ] || [ "$WORK/trees/$name.done" -nt "$IMG/$name.img" ]; then
    make_image "$WORK/trees/$name" "$IMG/$name.img"
  fi
done
make_image "$WORK/trees/base" "$IMG/base.again.img"
h1=$(sha256sum < "$IMG/base.img"); h2=$(sha256sum < "$IMG/base.again.img")
if [ "$h1" = "$h2" ]; then DETERMINISM="same sha256 twice (${h1:0:16}…)"; else DETERMINISM="NOT deterministic: ${h1:0:16} vs ${h2:0:16}"; fi
rm -f "$IMG/base.again.img"
echo "== images: $DETERMINISM; used: $(for n in base $PAIRS; do printf '%s %s MiB, ' "$n" $(( $(du -B1 "$WORK/trees/$n" -s --apparent-size | cut -f1) / 1048576 )); done)"
[ "$STAGE" = images ] && exit 0

# --- peers ------------------------------------------------------------------------------------
timed() { local t=$(date +%s.%N); "$@"; echo "$(date +%s.%N) - $t" | bc >> "$R/times.$1" 2>/dev/null || true; }
size() { stat -c %s "$1"; }

# casync: the old image's store is made once; a chunk the seed (old image) provides is one whose
# id is in that store (casync extract --seed chunks the seed with the same parameters).
if [ ! -f "$WORK/casync-old/old.caibx" ]; then
  rm -rf "$WORK/casync-old"; mkdir -p "$WORK/casync-old"
  casync make --store="$WORK/casync-old/store" "$WORK/casync-old/old.caibx" "$IMG/base.img" > /dev/null
fi
[ -f "$IMG/base.zck" ] || zck -o "$IMG/base.zck" "$IMG/base.img" > /dev/null

for pair in $PAIRS; do
  R=$WORK/results/$pair; rm -rf "$R"; mkdir -p "$R"
  OLD=$IMG/base.img NEW=$IMG/$pair.img
  echo "== $pair"
  s=$(date +%s); zstd -q -19 --long=27 -T1 -c "$NEW" > "$R/new.zst"; echo "whole_z19 $(size "$R/new.zst") $(( $(date +%s) - s ))" > "$R/peers"
  rm -f "$R/new.zst"
  full=(); [ "$pair" = pkgs20 ] && full=(--full)
  s=$(date +%s); "$XTASK" delta-measure "$OLD" "$NEW" --json "${full[@]}" > "$R/ours.json"; echo "ours_seconds $(( $(date +%s) - s ))" >> "$R/peers"
  s=$(date +%s)
  casync make --store="$R/casync-store" "$R/new.caibx" "$NEW" > /dev/null
  find "$WORK/casync-old/store" -name '*.cacnk' -printf '%f\n' | sort > "$R/casync-old.ids"
  find "$R/casync-store" -name '*.cacnk' -printf '%f %s\n' | sort > "$R/casync-new.ids"
  join -v1 "$R/casync-new.ids" "$R/casync-old.ids" > "$R/casync-missing"
  echo "casync $(( $(size "$R/new.caibx") + $(awk '{s+=$2} END {print s+0}' "$R/casync-missing") )) $(( $(wc -l < "$R/casync-missing") + 1 )) $(wc -l < "$R/casync-new.ids") $(( $(date +%s) - s ))" >> "$R/peers"
  rm -rf "$R/casync-store"
  s=$(date +%s)
  zck -o "$R/new.zck" "$NEW" > /dev/null
  zck_delta_size "$IMG/base.zck" "$R/new.zck" > "$R/zck_delta_size.txt"
  echo "zck_full $(size "$R/new.zck")" >> "$R/peers"
  echo "zck_seconds $(( $(date +%s) - s ))" >> "$R/peers"
  rm -f "$R/new.zck"
  s=$(date +%s); zstd -q -19 --long=27 -T1 --patch-from="$OLD" "$NEW" -o "$R/patch.zst"
  echo "zstd_patch $(size "$R/patch.zst") $(( $(date +%s) - s ))" >> "$R/peers"; rm -f "$R/patch.zst"
  s=$(date +%s); xdelta3 -9 -e -f -B "$(size "$OLD")" -s "$OLD" "$NEW" "$R/patch.xd3"
  echo "xdelta3 $(size "$R/patch.xd3") $(( $(date +%s) - s ))" >> "$R/peers"; rm -f "$R/patch.xd3"
  cat "$R/peers" "$R/zck_delta_size.txt"
done
# --- our full bundle: the current format (update-tool bundle create, independent zstd chunks) --
UT=${UPDATE_TOOL:-}
if [ -z "$UT" ]; then cargo build -q --release -p update-tool; UT=$HERE/target/release/update-tool; fi
rm -rf "$WORK/keys"; "$UT" key generate bench --out "$WORK/keys" > /dev/null
for pair in $PAIRS; do
  R=$WORK/results/$pair
  sed -i '/^bundle_/d' "$R/peers"
  for level in 3 19; do
    s=$(date +%s)
    "$UT" bundle create --out "$R/full.bundle" --version 2.0.0 --compatible bench --key "$WORK/keys/bench.key" \
      --image rootfs="$IMG/$pair.img" --level "$level" > /dev/null
    echo "bundle_z$level $(size "$R/full.bundle") $(( $(date +%s) - s ))" >> "$R/peers"
    rm -f "$R/full.bundle"
  done
done
echo "== report"
python3 "$HERE/bench/delta-report.py" "$WORK/results" "$DETERMINISM" $PAIRS
