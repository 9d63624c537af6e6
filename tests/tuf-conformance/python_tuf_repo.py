"""Writes a TUF repository with python-tuf (the reference implementation): ECDSA P-256 keys for
the top-level roles, a delegated role signed by an RSA-PSS key, consistent snapshots.
Used by python-tuf-interop.sh to check that update-repo's client loads it.

    python python_tuf_repo.py OUT_DIR
"""

import os
import sys
from datetime import UTC, datetime, timedelta

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

out = sys.argv[1]
expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
signers = {role: CryptoSigner.generate_ecdsa() for role in ("root", "timestamp", "snapshot", "targets")}
team = CryptoSigner.generate_rsa()
os.makedirs(f"{out}/metadata", exist_ok=True)


def write(path: str, signed: object, signer: CryptoSigner) -> None:
    md = Metadata(signed)
    md.sign(signer)
    md.to_file(f"{out}/metadata/{path}", JSONSerializer(compact=False))


def add_target(role: Targets, path: str, data: bytes) -> None:
    target = TargetFile.from_data(path, data, ["sha256"])
    role.targets[path] = target
    directory, _, base = path.rpartition("/")
    os.makedirs(f"{out}/targets/{directory}", exist_ok=True)
    with open(f"{out}/targets/{directory}/{target.hashes['sha256']}.{base}", "wb") as f:
        f.write(data)


root = Root(expires=expires, consistent_snapshot=True)
for role, signer in signers.items():
    root.add_key(signer.public_key, role)

targets = Targets(expires=expires)
add_target(targets, "dir/app.bin", b"made by python-tuf\n")
targets.delegations = Delegations(
    keys={team.public_key.keyid: team.public_key},
    roles={"team": DelegatedRole("team", [team.public_key.keyid], 1, True, ["team/*"])},
)
delegated = Targets(expires=expires)
add_target(delegated, "team/fw.bin", b"delegated to an RSA-PSS key\n")

snapshot = Snapshot(expires=expires)
snapshot.meta["targets.json"] = MetaFile(1)
snapshot.meta["team.json"] = MetaFile(1)
timestamp = Timestamp(expires=expires)
timestamp.snapshot_meta = MetaFile(1)

write("1.root.json", root, signers["root"])
write("1.targets.json", targets, signers["targets"])
write("1.team.json", delegated, team)
write("1.snapshot.json", snapshot, signers["snapshot"])
write("timestamp.json", timestamp, signers["timestamp"])
print(f"python-tuf repository written to {out} (keys: ecdsa-sha2-nistp256, rsassa-pss-sha256)")
