"""Building a running identity app on the test servers (shared by the identity test modules)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jwt
from fastapi.testclient import TestClient
from jwt import PyJWK

from soma_identity.app import build_app, signer_for, vault_client
from soma_identity.settings import IdentitySettings

ISSUER = "https://identity.dev.soma.local"
AUDIENCE = "soma-api"
_keys = itertools.count()


def settings_for(vault, postgres, secrets_dir: Path, **extra) -> IdentitySettings:
    address, root_client = vault
    (secrets_dir / "vault_token").write_text(root_client.token + "\n")
    env = {"SOMA_ISSUER": ISSUER, "SOMA_ALLOWED_AUDIENCES": json.dumps([AUDIENCE, "soma-internal"]),
           "SOMA_VAULT_ADDR": address, "SOMA_DATABASE_DSN": postgres, "SOMA_SECRETS_DIR": str(secrets_dir),
           "SOMA_SIGNING_KEY_NAME": f"identity-test-{next(_keys)}", "SOMA_KEY_PUBLISH_DELAY_SECONDS": "0",
           "SOMA_JWKS_CACHE_SECONDS": "0", "SOMA_ACCESS_TOKEN_TTL_SECONDS": "120", "SOMA_CLOCK_SKEW_SECONDS": "0",
           **{f"SOMA_{k.upper()}": v for k, v in extra.items()}}
    return IdentitySettings.from_env(env)


def running(settings: IdentitySettings) -> TestClient:
    signer_for(settings, vault_client(settings)).ensure_key()  # what `python -m soma_identity keys ensure` does
    return TestClient(build_app(settings, configure_logging=False))


def verify_independently(client: TestClient, token: str, audience: str = AUDIENCE) -> dict:
    """Verify as the edge would: the JWKS endpoint's keys and PyJWT, no Vault."""
    jwks = client.get("/.well-known/jwks.json").json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(token, PyJWK(key).key, algorithms=["ES256"], audience=audience, issuer=ISSUER)
