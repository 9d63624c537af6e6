#!/usr/bin/env bash
# Interoperability with the reference implementation: python-tuf writes a repository with
# ECDSA P-256 top-level keys and a delegated role signed by an RSA-PSS key
# (python_tuf_repo.py); our client (update-repo through crates/tuf-conformance-client) must
# load it, download both targets and persist the delegated role. Then a tampered copy must
# be refused. Uses the venv of run.sh (python-tuf 7 comes with the conformance suite), or
# makes one with `pip install tuf`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
venv="$repo/target/tuf-conformance-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tuf" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "tuf>=5" "securesystemslib[crypto]"
fi
cargo build -q -p tuf-conformance-client
client="$repo/target/debug/tuf-conformance-client"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$repo/tests/tuf-conformance/python_tuf_repo.py" "$work/repo"
mkdir -p "$work/metadata" "$work/targets"
"$client" --metadata-dir "$work/metadata" init "$work/repo/metadata/1.root.json"
"$client" --metadata-dir "$work/metadata" --metadata-url "file://$work/repo/metadata" refresh
"$client" --metadata-dir "$work/metadata" --metadata-url "file://$work/repo/metadata" \
  --target-name dir/app.bin --target-name team/fw.bin \
  --target-base-url "file://$work/repo/targets" --target-dir "$work/targets" download
grep -qx "made by python-tuf" "$work/targets/dir%2Fapp.bin"
grep -qx "delegated to an RSA-PSS key" "$work/targets/team%2Ffw.bin"
[ -f "$work/metadata/team.json" ] || { echo "FAIL: the delegated role was not persisted" >&2; exit 1; }
grep -q '"keytype": "ecdsa"' "$work/metadata/root.json"

# Tampered: one byte of the delegated target changes; a fresh client must refuse it.
f=$(ls "$work/repo/targets/team/"*.fw.bin)
printf 'X' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
rm -rf "$work/metadata2" "$work/targets2"; mkdir -p "$work/metadata2" "$work/targets2"
"$client" --metadata-dir "$work/metadata2" init "$work/repo/metadata/1.root.json"
if "$client" --metadata-dir "$work/metadata2" --metadata-url "file://$work/repo/metadata" \
  --target-name team/fw.bin --target-base-url "file://$work/repo/targets" --target-dir "$work/targets2" download 2>/dev/null; then
  echo "FAIL: a tampered target was accepted" >&2; exit 1
fi
echo "python-tuf interop: OK (ECDSA P-256 root/timestamp/snapshot/targets, RSA-PSS delegated role)"
