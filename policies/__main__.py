"""Entry point the Pulumi CLI runs for ``--policy-pack policies``: build the pack, nothing else.

The CLI runs this file by path with only this folder on sys.path; the pack imports itself as
the ``policies`` package (the same import path the gate and the tests use), so its parent,
the repository root, goes on sys.path first. The pack reads the repository's
platform.lock.yaml, so it always runs from inside the repository.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack  # noqa: E402

from policies.pack import DEFAULT_LEVEL, PACK_NAME, build_policies  # noqa: E402

PolicyPack(name=PACK_NAME, enforcement_level=DEFAULT_LEVEL, policies=build_policies())
