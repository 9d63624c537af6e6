#!/usr/bin/env bash
# Builds the Debian packages into target/debian/ (docs/packaging.md): update, update-tool,
# update-server, update-dbus, and the C library's libupdate1 and libupdate-dev. Needs cargo-deb
# (`cargo install --locked cargo-deb`) and dpkg-dev.
#
#   dist/deb/build.sh            release builds, then one .deb each
#   dist/deb/build.sh --no-build package what target/release/ and target/release-capi/ hold
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo-deb >/dev/null || { echo "cargo-deb is missing: cargo install --locked cargo-deb" >&2; exit 1; }
PACKAGES=(update-cli update-tool update-server update-dbus)

if [ "${1:-}" != "--no-build" ]; then
    # One build per package, with the release profile of the workspace (stripped, LTO). Not
    # one build of all three: cargo would unify the features of their shared dependencies, and
    # the device binary `update` would ship with the server's (20 KB more, over its 4 MiB limit).
    for p in "${PACKAGES[@]}"; do
        cargo build --release --locked -p "$p"
    done
    # The C library: the release profile with unwinding (Cargo.toml, [profile.release-capi]).
    cargo build --profile release-capi --locked -p update-capi
fi
# The man pages and completions the packages install must be the generated ones.
for f in docs/man/update.1 docs/man/update.toml.5 docs/man/update-tool.1 docs/man/update-server.8 \
    docs/completions/update docs/completions/_update docs/completions/update.fish; do
    [ -s "$f" ] || { echo "$f is missing: run cargo xtask docs" >&2; exit 1; }
done

mkdir -p target/debian
for p in "${PACKAGES[@]}"; do
    cargo deb --no-build --locked -p "$p" --output target/debian/
done

# libupdate1 and libupdate-dev: libraries under /usr/lib/<multiarch>/ (--multiarch=same).
version=$(cargo pkgid -p update-capi | sed 's/.*[#@]//')
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
sed -e "s|@MULTIARCH@|$multiarch|" -e "s|@VERSION@|$version|" dist/deb/libupdate-dev/libupdate.pc.in \
    > target/release-capi/libupdate.pc
# The runtime's exact version is written in the -dev package's Depends (Cargo.toml).
grep -qF "depends = \"libupdate1 (= $version-1)\"" crates/update-capi/Cargo.toml \
    || { echo "crates/update-capi/Cargo.toml: libupdate-dev must depend on libupdate1 (= $version-1)" >&2; exit 1; }
lib_deb=$(cargo deb --no-build --locked -p update-capi --profile release-capi --multiarch=same --output target/debian/)
dev_deb=$(cargo deb --no-build --locked -p update-capi --profile release-capi --multiarch=same --variant dev --output target/debian/)

# What cargo-deb cannot say for the library packages, added by unpacking and packing again:
# their own synopses (cargo-deb takes the crate's description for both); for libupdate1 the
# `shlibs` file (which tells dpkg-shlibdeps what a program built against libupdate.so.1 must
# depend on), the `triggers` file (ldconfig after install and removal) and its Depends, which
# `$auto` leaves empty for a library (dpkg-shlibdeps on the library itself).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog --file dist/deb/changelog --show-field Timestamp)
export SOURCE_DATE_EPOCH
# $work/debian/ as in a source tree, where dpkg-shlibdeps expects a package's files.
mkdir -p "$work/debian"
printf 'Source: libupdate\n\nPackage: libupdate1\nArchitecture: any\n' > "$work/debian/control"
repack() { # DEB PACKAGE SYNOPSIS: unpacks DEB into $work/debian/PACKAGE and sets its synopsis
    pkg=$work/debian/$2
    dpkg-deb --raw-extract "$1" "$pkg"
    sed -i "s|^Description: .*|Description: $3|" "$pkg/DEBIAN/control"
}
pack() { # DEB: packs $pkg into DEB
    dpkg-deb --root-owner-group -Zxz --build "$pkg" "$1" >/dev/null
}

repack "$lib_deb" libupdate1 "over-the-air update library for Linux devices"
sed "s|@VERSION@|$version|" dist/deb/libupdate1/shlibs.in > "$pkg/DEBIAN/shlibs"
cp dist/deb/libupdate1/triggers "$pkg/DEBIAN/triggers"
chmod 644 "$pkg/DEBIAN/shlibs" "$pkg/DEBIAN/triggers"
depends=$(cd "$work" && dpkg-shlibdeps -O "debian/libupdate1/usr/lib/$multiarch/libupdate.so.1" | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "dpkg-shlibdeps found no dependencies of libupdate.so.1" >&2; exit 1; }
sed -i "s|^Depends:.*|Depends: $depends|" "$pkg/DEBIAN/control"
pack "$lib_deb"

repack "$dev_deb" libupdate-dev "over-the-air update library for Linux devices - development files"
# The archive without debug sections and compiler notes, as dh_strip leaves static libraries
# (21.7 MB → 14.5 MB); its symbols stay.
strip --strip-debug --remove-section=.comment --remove-section=.note --enable-deterministic-archives \
    "$pkg/usr/lib/$multiarch/libupdate.a"
pack "$dev_deb"
ls -l target/debian/*.deb
