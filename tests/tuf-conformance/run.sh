#!/usr/bin/env bash
# Runs the public TUF conformance suite (theupdateframework/tuf-conformance) against
# update-repo's verifier, through our client-under-test binary (crates/tuf-conformance-client).
#
#   tests/tuf-conformance/run.sh [pytest arguments…]     e.g.  -k test_keytype_and_scheme -rA
#
# The suite is not part of this repository: it is read from $TUF_CONFORMANCE, else
# ../shared/third-party/tuf-conformance (beside the checkout), else
# /work/shared/third-party/tuf-conformance. A Python venv is made in target/tuf-conformance-venv.
# Needs python3 (>= 3.10) with venv, and faketime. Expected failures, with their reasons, are in
# tests/tuf-conformance/tuf-conformance-client.xfails (docs/security.md, "TUF conformance").
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

suite="${TUF_CONFORMANCE:-}"
for candidate in "$repo/../shared/third-party/tuf-conformance" /work/shared/third-party/tuf-conformance; do
  [ -n "$suite" ] && break
  [ -f "$candidate/pyproject.toml" ] && suite="$candidate"
done
[ -n "$suite" ] && [ -f "$suite/pyproject.toml" ] || { echo "run.sh: tuf-conformance not found (set TUF_CONFORMANCE)" >&2; exit 2; }
command -v faketime >/dev/null || { echo "run.sh: faketime is required (apt-get install faketime)" >&2; exit 2; }

venv="$repo/target/tuf-conformance-venv"
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -e "$suite"
fi

cargo build -q -p tuf-conformance-client
# The suite finds expected failures in "<entrypoint>.xfails": run the binary through a link
# beside the list kept in this directory.
work="$repo/target/tuf-conformance"
mkdir -p "$work"
ln -sf "$repo/target/debug/tuf-conformance-client" "$work/tuf-conformance-client"
cp "$repo/tests/tuf-conformance/tuf-conformance-client.xfails" "$work/tuf-conformance-client.xfails"

cd "$suite"
exec "$venv/bin/pytest" -p no:cacheprovider tuf_conformance --entrypoint "$work/tuf-conformance-client" "$@"
