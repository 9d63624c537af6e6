#!/usr/bin/env bash
# Builds the Debian packages update, update-tool and update-server into target/debian/
# (docs/packaging.md). Needs cargo-deb: `cargo install --locked cargo-deb`.
#
#   dist/deb/build.sh            release build of the three binaries, then one .deb each
#   dist/deb/build.sh --no-build package binaries already in target/release/
#
# libupdate0 and libupdate-dev (the C library, issue 15 item 1) will be added here as a fourth
# and fifth `cargo deb -p` once that crate exists (docs/packaging.md, "To come").
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v cargo-deb >/dev/null || { echo "cargo-deb is missing: cargo install --locked cargo-deb" >&2; exit 1; }
PACKAGES=(update-cli update-tool update-server)

if [ "${1:-}" != "--no-build" ]; then
    # One build per package, with the release profile of the workspace (stripped, LTO). Not
    # one build of all three: cargo would unify the features of their shared dependencies, and
    # the device binary `update` would ship with the server's (20 KB more, over its 4 MiB limit).
    for p in "${PACKAGES[@]}"; do
        cargo build --release --locked -p "$p"
    done
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
ls -l target/debian/*.deb
