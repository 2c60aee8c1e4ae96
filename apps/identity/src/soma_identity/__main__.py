"""``python -m soma_identity [serve]`` runs the service; ``keys ...`` manages the signing key in Vault.

  serve                          the HTTP service (default)
  keys ensure [--auto-rotate P]  create the transit key if missing (non-exportable; P e.g. 720h for Vault's own
                                 automatic rotation)
  keys rotate                    add a key version (published now, signing after key_publish_delay_seconds)
  keys retire [--trim]           stop verifying versions whose tokens have all expired (--trim deletes them)
  openapi                        print the OpenAPI document (generated from the code; needs no settings)

All read the same SOMA_* settings; ``keys`` needs a Vault token with the rotation policy (docs/apps.md).
"""

from __future__ import annotations

import argparse
import json
import sys

from soma_service import SettingsError, run

from .settings import IdentitySettings

# Only to render the OpenAPI document: nothing is connected. Federation on, so the exchange grant is listed.
DOCUMENTATION_SETTINGS = IdentitySettings(
    issuer="https://identity.example", allowed_audiences=["soma-api"], vault_addr="http://vault:8200",
    vault_kubernetes_role="identity", database_dsn="host=postgres dbname=identity",
    federation_issuer="https://idp.example", federation_jwks_url="https://idp.example/jwks",
    federation_audience="soma", federation_tenant_claim="tenant")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m soma_identity")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve")
    keys = commands.add_parser("keys").add_subparsers(dest="action", required=True)
    ensure = keys.add_parser("ensure")
    ensure.add_argument("--auto-rotate", default=None)
    keys.add_parser("rotate")
    retire = keys.add_parser("retire")
    retire.add_argument("--trim", action="store_true")
    commands.add_parser("openapi")
    args = parser.parse_args(argv)
    if args.command == "openapi":
        from .app import build_app
        print(json.dumps(build_app(DOCUMENTATION_SETTINGS, configure_logging=False).openapi(), indent=2, sort_keys=True))
        return 0
    try:
        settings = IdentitySettings.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if args.command in (None, "serve"):
        from .app import build_app
        run(build_app(settings))
        return 0
    from .app import signer_for, vault_client
    signer = signer_for(settings, vault_client(settings))
    if args.action == "ensure":
        signer.ensure_key(auto_rotate_period=args.auto_rotate)
    elif args.action == "rotate":
        signer.rotate()
    else:
        signer.retire(settings.key_grace_seconds, trim=args.trim)
    print(json.dumps({"key": signer.key_name, "kids": [k["kid"] for k in signer.jwks()["keys"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
