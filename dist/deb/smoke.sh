#!/usr/bin/env bash
# Installs the packages built by dist/deb/build.sh (target/debian/*.deb) with apt-get and runs
# smoke commands from the installed paths (docs/packaging.md). Starts no service and touches
# nothing on the host beyond what installing the packages does: every `update` command here runs
# under --root in a temporary directory. Run as root (or with sudo available).
#
#   dist/deb/smoke.sh            install, then check
#   dist/deb/smoke.sh --no-install   check packages that are already installed
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
step() { echo "smoke: $*"; }

if [ "${1:-}" != "--no-install" ]; then
    shopt -s nullglob
    debs=(target/debian/*.deb)
    [ "${#debs[@]}" -ge 6 ] || fail "expected the update, update-tool, update-server, update-dbus, libupdate1 and libupdate-dev .debs in target/debian/ (run dist/deb/build.sh)"
    # Units are installed disabled and not started (the packages say so); policy-rc.d is not needed.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${debs[@]/#/./}"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "binaries from /usr/bin"
[ "$(command -v update)" = /usr/bin/update ] || fail "update is not /usr/bin/update: $(command -v update)"
/usr/bin/update --version | grep -q '^update ' || fail "update --version"
/usr/bin/update-tool --version | grep -q '^update-tool ' || fail "update-tool --version"
/usr/bin/update-server --help | grep -q 'serve' || fail "update-server --help does not list serve"

step "update --root $tmp/empty status: no driver there, exit 4 with a JSON error (nothing on the host read or written)"
host_config_sum=$(sha256sum /etc/update/update.toml)
set +e
out=$(/usr/bin/update --root "$tmp/empty" --json status)
rc=$?
set -e
[ "$rc" = 4 ] || fail "update --root EMPTY --json status: exit $rc, expected 4 (no driver): $out"
echo "$out" | grep -q '"kind": "not-implemented"' || fail "no not-implemented error: $out"

step "the shipped /etc/update/update.toml is valid, and update config writes under --root only"
mkdir -p "$tmp/dev/etc/update"
cp /etc/update/update.toml "$tmp/dev/etc/update/"
/usr/bin/update --root "$tmp/dev" config show | grep -q '^schedule = "off"' || fail "shipped config: config show"
/usr/bin/update --root "$tmp/dev" config schedule daily 1 >/dev/null
grep -q '^schedule = "daily 1"' "$tmp/dev/etc/update/update.toml" || fail "config schedule did not write under --root"
grep -q '^# /etc/update/update.toml' "$tmp/dev/etc/update/update.toml" || fail "config schedule dropped the file's comments"
[ "$(sha256sum /etc/update/update.toml)" = "$host_config_sum" ] || fail "the host's /etc/update/update.toml changed"

step "conffile, units (disabled), tmpfiles.d, logrotate, system user"
dpkg-query --showformat='${Conffiles}\n' --show update | grep -q '/etc/update/update.toml' || fail "update.toml is not a conffile"
dpkg-query --showformat='${Conffiles}\n' --show update-server | grep -q '/etc/default/update-server' || fail "/etc/default/update-server is not a conffile"
for f in /usr/lib/systemd/system/update-daemon.service /usr/lib/tmpfiles.d/update.conf /etc/logrotate.d/update \
    /usr/lib/systemd/system/update-server.service /usr/lib/tmpfiles.d/update-server.conf /usr/lib/sysusers.d/update-server.conf; do
    [ -f "$f" ] || fail "$f is not installed"
done
for u in update-daemon update-server; do
    [ ! -e "/etc/systemd/system/multi-user.target.wants/$u.service" ] || fail "$u.service was enabled by the package"
done
getent passwd update-server >/dev/null || fail "no update-server system user"
[ "$(getent passwd update-server | cut -d: -f6)" = /var/lib/update-server ] || fail "update-server's home is not /var/lib/update-server"
! grep -q 'audit.jsonl' <(grep -v '^#' /etc/logrotate.d/update) || fail "the logrotate rule rotates the audit log"

step "man pages"
for p in update update.toml update-tool update-server; do
    page=$(man -w "$p") || fail "man -w $p"
    case $page in /usr/share/man/*.gz) ;; *) fail "man -w $p: $page is not a gzipped page under /usr/share/man" ;; esac
done
man -w 5 update.toml | grep -q man5 || fail "update.toml is not in section 5"
man -w 8 update-server | grep -q man8 || fail "update-server is not in section 8"
MANWIDTH=80 man update 2>/dev/null | grep -q 'EXIT STATUS' || fail "man update does not render"

step "completions"
for pkg_file in \
    update:/usr/share/bash-completion/completions/update \
    update:/usr/share/zsh/vendor-completions/_update \
    update:/usr/share/fish/vendor_completions.d/update.fish \
    update-tool:/usr/share/bash-completion/completions/update-tool \
    update-server:/usr/share/bash-completion/completions/update-server; do
    dpkg -L "${pkg_file%%:*}" | grep -qx "${pkg_file#*:}" || fail "dpkg -L ${pkg_file%%:*} has no ${pkg_file#*:}"
done
bash -c 'source /usr/share/bash-completion/completions/update && complete -p update' | grep -q '_update_with_key_names' \
    || fail "bash completion does not register update"
if command -v fish >/dev/null; then
    values=$(fish -c 'complete -C "update config verify "' | cut -f1 | sort | tr '\n' ' ')
    [ "$values" = "false true " ] || fail "fish: update config verify completes '$values'"
fi

step "libupdate1: libupdate.so.1 in the multiarch directory, known to ldconfig, with shlibs"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$multiarch
dpkg -L libupdate1 | grep -qx "$libdir/libupdate.so.1" || fail "libupdate1 does not install $libdir/libupdate.so.1"
readelf -d "$libdir/libupdate.so.1" | grep -q 'Library soname: \[libupdate.so.1\]' || fail "libupdate.so.1 has another SONAME"
# (/lib is /usr/lib on a merged-/usr system; ldconfig names either.)
/sbin/ldconfig -p | grep -Eq "libupdate\.so\.1 .*=> (/usr)?/lib/$multiarch/libupdate\.so\.1\$" \
    || fail "ldconfig does not know libupdate.so.1 (the trigger did not run)"
shlibs=$(dpkg-query --control-path libupdate1 shlibs) || fail "libupdate1 has no shlibs file"
grep -qx "libupdate 1 libupdate1 (>= $(dpkg-query --showformat='${source:Upstream-Version}' --show libupdate1))" "$shlibs" \
    || fail "libupdate1's shlibs: $(cat "$shlibs")"
dpkg-query --control-path libupdate1 triggers >/dev/null || fail "libupdate1 has no triggers file"

step "libupdate-dev: pkg-config, a program built against the installed header and libraries"
[ -f /usr/include/update.h ] || fail "no /usr/include/update.h"
[ "$(readlink "$libdir/libupdate.so")" = libupdate.so.1 ] || fail "$libdir/libupdate.so is not a link to libupdate.so.1"
[ "$(pkg-config --variable=libdir libupdate)" = "$libdir" ] || fail "pkg-config libupdate: libdir $(pkg-config --variable=libdir libupdate)"
mkdir -p "$tmp/empty-root" "$tmp/c/debian"
gcc -std=c11 -Wall -Wextra -Werror dist/deb/smoke.c -o "$tmp/c/smoke" $(pkg-config --cflags --libs libupdate) \
    || fail "gcc against libupdate.so (pkg-config)"
readelf -d "$tmp/c/smoke" | grep -q 'Shared library: \[libupdate.so.1\]' || fail "the program does not record libupdate.so.1"
env -u LD_LIBRARY_PATH "$tmp/c/smoke" "$tmp/empty-root" || fail "the program built against libupdate.so.1"
# Statically: the archive, then what it needs (libupdate.pc's Libs.private).
gcc -std=c11 -Wall -Wextra -Werror dist/deb/smoke.c -o "$tmp/c/smoke-static" $(pkg-config --cflags libupdate) \
    "$libdir/libupdate.a" $(pkg-config --static --libs-only-l libupdate | sed 's/-lupdate //') \
    || fail "gcc against libupdate.a"
! readelf -d "$tmp/c/smoke-static" | grep -q 'libupdate.so' || fail "the static program still needs libupdate.so"
"$tmp/c/smoke-static" "$tmp/empty-root" || fail "the program built against libupdate.a"
# What a package of that program would depend on: dpkg-shlibdeps reads libupdate1's shlibs.
mkdir -p "$tmp/c/debian/smoke/usr/bin" "$tmp/c/debian/smoke/DEBIAN"   # DEBIAN: where dpkg-shlibdeps finds the package root
cp "$tmp/c/smoke" "$tmp/c/debian/smoke/usr/bin/"
printf 'Source: smoke\n\nPackage: smoke\nArchitecture: any\n' > "$tmp/c/debian/control"
deps=$(cd "$tmp/c" && dpkg-shlibdeps -O debian/smoke/usr/bin/smoke) || fail "dpkg-shlibdeps"
echo "$deps" | grep -q 'libupdate1 (>= ' || fail "dpkg-shlibdeps does not name libupdate1: $deps"

step "update-dbus: the service, its unit (not enabled), bus policy, activation and polkit actions"
/usr/libexec/update-dbus --version | grep -q '^update-dbus ' || fail "update-dbus --version"
man -w 8 update-dbus | grep -q 'man8/update-dbus.8.gz' || fail "no update-dbus(8)"
for f in /usr/lib/systemd/system/update-dbus.service /usr/share/dbus-1/system-services/org.libupdate.Update1.service \
    /usr/share/dbus-1/system.d/org.libupdate.Update1.conf /usr/share/polkit-1/actions/org.libupdate.update.policy; do
    [ -f "$f" ] || fail "$f is not installed"
done
grep -qx 'SystemdService=update-dbus.service' /usr/share/dbus-1/system-services/org.libupdate.Update1.service \
    || fail "the activation file does not name update-dbus.service"
[ ! -e /etc/systemd/system/dbus-org.libupdate.Update1.service ] || fail "update-dbus.service was enabled by the package"

echo "smoke: all checks passed"
