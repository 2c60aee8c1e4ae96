"""Print the Vault policy the Pulumi deployer needs for a stack, derived from what the program writes.

``python -m tools.deployer_policy --stack prod`` renders the stack offline, takes every KV secret
the program writes (``vault:kv/secretV2:SecretV2``: mount and path) and prints the writer policy
for exactly those paths (``vault_access.writer_policy_hcl``: create and update, no read, no list,
no delete). A Vault administrator installs it once per stack, and again whenever the program
declares a new secret (the render of the change shows the new path):

    python -m tools.deployer_policy --stack prod > deployer.hcl
    vault policy write pulumi-deployer-prod deployer.hcl

Nothing in it is typed by hand, so it cannot drift from what ``pulumi up`` writes.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from components.core.secrets.vault_access import writer_policy_for_paths

SECRET_TYPE = "vault:kv/secretV2:SecretV2"


def written_paths(plan: dict[str, Any]) -> dict[str, list[str]]:
    """mount -> the KV paths the program writes under it."""
    found: dict[str, set[str]] = {}
    for resource in plan["resources"]:
        if resource["type"] == SECRET_TYPE:
            found.setdefault(resource["inputs"]["mount"], set()).add(resource["inputs"]["name"])
    return {mount: sorted(paths) for mount, paths in found.items()}


def deployer_policy(plan: dict[str, Any]) -> str:
    written = written_paths(plan)
    if not written:
        raise SystemExit(f"stack {plan['stack']}: the program writes no KV secret, so the deployer needs no policy")
    return "\n".join(writer_policy_for_paths(mount, paths) for mount, paths in sorted(written.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    from tools.render import RenderError, render

    try:
        plan = render(args.stack)
    except RenderError as err:
        print(f"deployer-policy {args.stack}: {err}", file=sys.stderr)
        return 1
    print(deployer_policy(plan), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
